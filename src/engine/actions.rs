//! The actions a human (or a pipeline) takes: promote, approve, roll back,
//! and the audit log they leave.

use chrono::Utc;

use super::{Engine, EngineError, EventSink};
use crate::domain::{
    ActionKind, Approval, AuditEntry, Decision, DeployRecord, Gate, Outcome, Version, plan_rollback,
};
use crate::store::NewAudit;

/// How many of an environment's last deploys a rollback plan looks at: the
/// versions `rollback --to` may name.
const ROLLBACK_HISTORY: usize = 500;

impl Engine {
    pub(super) async fn refuse(
        &self,
        action: ActionKind,
        env: &str,
        version: Option<&Version>,
        from: Option<&Version>,
        gate: Gate,
    ) -> EngineError {
        // The refusal itself is part of the record; a store failure here is
        // reported in its place.
        let rec = NewAudit {
            at: Utc::now(),
            actor: &self.inner.actor,
            action,
            env,
            version,
            from_version: from,
            outcome: Outcome::Refused,
            detail: &format!("{}: {}", gate.name, gate.detail),
        };
        match self.inner.store.audit_start(&rec).await {
            Ok(_) => EngineError::Refused { gate },
            Err(e) => EngineError::Store(e),
        }
    }

    /// Deploy the version promoting `env` ships (or `version`), once every
    /// gate allows it. `accept_warnings` answers the "ask again" of warning
    /// gates (low-traffic window).
    pub async fn promote(
        &self,
        env: &str,
        version: Option<Version>,
        accept_warnings: bool,
        events: Option<EventSink>,
    ) -> Result<DeployRecord, EngineError> {
        let idx = self.index(env)?;
        let versions = self.observe().await;
        if let Err(e) = &versions[idx] {
            // Without reading the target we could never confirm the deploy.
            return Err(EngineError::Backend(e.clone()));
        }
        self.reconcile(&versions).await;
        let deploys = self.inner.store.latest_deploys().await?;
        let plan = self
            .plan_with(idx, version.as_ref(), &versions, &deploys, Utc::now())
            .await?;
        if let Some(g) = plan.refusal() {
            return Err(self
                .refuse(
                    ActionKind::Promote,
                    env,
                    Some(&plan.version),
                    plan.current.as_ref(),
                    g.clone(),
                )
                .await);
        }
        let warnings: Vec<Gate> = plan.warnings().cloned().collect();
        if !warnings.is_empty() && !accept_warnings {
            return Err(EngineError::NeedsConfirmation { warnings });
        }
        let mut detail = match &plan.from {
            Some(f) => format!("promote {} from {f} to {env}", plan.version),
            None => format!("deploy {} to {env}", plan.version),
        };
        if !plan.skips.is_empty() {
            detail.push_str(&format!(" (skips {})", plan.skips.join(", ")));
        }
        for w in &warnings {
            detail.push_str(&format!("; confirmed despite: {}", w.detail));
        }
        self.deploy(
            idx,
            ActionKind::Promote,
            &plan.version,
            plan.current.as_ref(),
            &detail,
            events,
        )
        .await
    }

    /// Record a Go (or No-Go) for the version promoting `env` would ship:
    /// what the stage before it runs now.
    pub async fn approve(
        &self,
        env: &str,
        decision: Decision,
        note: Option<String>,
    ) -> Result<Approval, EngineError> {
        let idx = self.index(env)?;
        let cfg_env = &self.inner.config.environments[idx];
        let source = match &cfg_env.gates.approval_stage {
            Some(s) => self.index(s.get_ref())?,
            None if idx > 0 => idx - 1,
            None => {
                return Err(EngineError::Usage(format!(
                    "{env} is the first stage: nothing before it to approve"
                )));
            }
        };
        let version = self.inner.envs[source].version.read().await?;
        let note = note
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control() || *c == ' ')
                    .collect::<String>()
            })
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let a = Approval {
            env: env.to_string(),
            version,
            decision,
            actor: self.inner.actor.clone(),
            at: Utc::now(),
            note,
        };
        self.inner.store.record_approval(&a).await?;
        Ok(a)
    }

    /// Return `env` to the version it ran before its last deploy, or to `to`.
    pub async fn rollback(
        &self,
        env: &str,
        to: Option<Version>,
        events: Option<EventSink>,
    ) -> Result<DeployRecord, EngineError> {
        let idx = self.index(env)?;
        let current = self.inner.envs[idx].version.read().await?;
        self.reconcile_env(env, &current).await;
        let deploys = self
            .inner
            .store
            .recent_deploys(env, ROLLBACK_HISTORY)
            .await?;
        let plan = match plan_rollback(env, Some(&current), &deploys, to.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                let gate = Gate::block("rollback_target", false, e.to_string());
                self.refuse(ActionKind::Rollback, env, to.as_ref(), Some(&current), gate)
                    .await;
                return Err(e.into());
            }
        };
        if let Some(l) = self.foreign_lock(env, Utc::now()).await? {
            let gate = Gate::block(
                "lock",
                false,
                format!("{env} is locked by {}", l.describe()),
            );
            return Err(self
                .refuse(
                    ActionKind::Rollback,
                    env,
                    Some(&plan.to),
                    Some(&current),
                    gate,
                )
                .await);
        }
        let detail = format!("roll {env} back from {current} to {} (redeploy)", plan.to);
        self.deploy(
            idx,
            ActionKind::Rollback,
            &plan.to,
            Some(&current),
            &detail,
            events,
        )
        .await
    }

    /// Walk the audit log's hash chain from its first record.
    pub async fn verify_audit(&self) -> Result<crate::store::ChainReport, EngineError> {
        Ok(self.inner.store.verify().await?)
    }

    /// The audit log, newest first.
    pub async fn history(
        &self,
        env: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, EngineError> {
        if let Some(e) = env {
            self.index(e)?;
        }
        Ok(self.inner.store.history(env, limit).await?)
    }
}
