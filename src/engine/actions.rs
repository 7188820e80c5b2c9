//! The actions a human (or a pipeline) takes: promote, approve, roll back,
//! and the audit log they leave.

use chrono::Utc;

use super::{Engine, EngineError, EventSink};
use crate::domain::policy;
use crate::domain::{
    ActionKind, Approval, AuditEntry, Decision, DeployRecord, Gate, Outcome, PromotionPlan,
    RollbackInput, RollbackPlan, Version, plan_rollback,
};
use crate::store::NewAudit;

/// How many of an environment's last deploys a rollback plan looks at: the
/// versions `rollback --to` may name.
const ROLLBACK_HISTORY: usize = 500;

/// What a human was shown before saying yes to a promotion. The engine
/// ships exactly this or refuses: between the plan shown and the deploy,
/// another engineer (or a deploy elsewhere) may have changed what ships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The version shown.
    pub version: Version,
    /// The stage it was shown coming from (`None` for the first stage).
    pub from: Option<String>,
    /// The warning gates shown and accepted, by name.
    pub accepted: Vec<String>,
}

impl Expect {
    /// What a human agrees to by saying yes to `plan`: its version, its
    /// source and every warning it showed.
    pub fn from_plan(plan: &PromotionPlan) -> Expect {
        Expect {
            version: plan.version.clone(),
            from: plan.from.clone(),
            accepted: plan.warnings().map(|g| g.name.clone()).collect(),
        }
    }
}

/// How a promotion was confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// A human saw a plan and said yes to exactly it.
    Seen(Expect),
    /// Nobody was shown a plan (a script): ship what the plan says now;
    /// `accept_warnings` (`--yes`) answers the "ask again" of warning gates.
    Unseen { accept_warnings: bool },
    /// Nobody was asked, but the log printed this plan (a script's
    /// `promote`): ship exactly it — refused, like [`Confirm::Seen`], if
    /// what promoting ships changed since it was printed, so a pipeline's
    /// log never names one version while another ships; `accept_warnings`
    /// (`--yes`) answers the "ask again" of warning gates.
    Printed {
        expect: Expect,
        accept_warnings: bool,
    },
}

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
    /// gate allows it. With [`Confirm::Seen`] (or [`Confirm::Printed`]) the
    /// plan must still be the one the human saw (or the log printed) — same version from the same stage, no warning they
    /// did not accept — else it is refused (exit 3) and the refusal audited.
    pub async fn promote(
        &self,
        env: &str,
        version: Option<Version>,
        confirm: Confirm,
        events: Option<EventSink>,
    ) -> Result<DeployRecord, EngineError> {
        self.promote_breaking(env, version, confirm, None, events)
            .await
    }

    /// [`Self::promote`], breaking the freeze that holds for `env` (if one
    /// does) for `break_freeze`, a reason: the audit record says who broke
    /// which freeze and why. A migration release to an environment with
    /// `requires_backup` gets its backup first; a failed backup deploys
    /// nothing (exit 3).
    pub async fn promote_breaking(
        &self,
        env: &str,
        version: Option<Version>,
        confirm: Confirm,
        break_freeze: Option<String>,
        events: Option<EventSink>,
    ) -> Result<DeployRecord, EngineError> {
        let idx = self.index(env)?;
        let break_freeze = human_text("the reason for breaking the freeze", break_freeze)?;
        let versions = self.observe().await;
        if let Err(e) = &versions[idx] {
            // Without reading the target we could never confirm the deploy.
            return Err(EngineError::Backend(e.clone()));
        }
        self.reconcile(&versions).await;
        let deploys = self.inner.store.latest_deploys().await?;
        let now = Utc::now();
        let mut plan = self
            .plan_with(idx, version.as_ref(), &versions, &deploys, now)
            .await?;
        let facts = self
            .release_gates(idx, &mut plan, now, break_freeze.as_deref())
            .await;
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
        let shown = match &confirm {
            Confirm::Seen(expect) => Some((expect, "you confirmed")),
            Confirm::Printed { expect, .. } => Some((expect, "the plan printed above ships")),
            Confirm::Unseen { .. } => None,
        };
        if let Some((expect, said)) = shown
            && let Some(gate) = self.changed_since_shown(&plan, expect, said, &versions)
        {
            return Err(self
                .refuse(
                    ActionKind::Promote,
                    env,
                    Some(&expect.version),
                    plan.current.as_ref(),
                    gate,
                )
                .await);
        }
        let warnings: Vec<Gate> = plan.warnings().cloned().collect();
        let unaccepted: Vec<Gate> = match &confirm {
            Confirm::Seen(expect) => warnings
                .iter()
                .filter(|w| !expect.accepted.contains(&w.name))
                .cloned()
                .collect(),
            Confirm::Unseen { accept_warnings }
            | Confirm::Printed {
                accept_warnings, ..
            } if *accept_warnings => Vec::new(),
            Confirm::Unseen { .. } | Confirm::Printed { .. } => warnings.clone(),
        };
        if !unaccepted.is_empty() {
            return Err(EngineError::NeedsConfirmation {
                warnings: unaccepted,
            });
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
        if let (Some(f), Some(why)) = (self.freeze_of(env, now), &break_freeze) {
            detail.push_str(&format!(
                "; {} broke the freeze \"{}\" ({} to {}) because: {why}",
                self.inner.actor, f.reason, f.from, f.to
            ));
        }
        if let Some(b) = self
            .backup_before_deploy(idx, &plan, facts.as_ref())
            .await?
        {
            detail.push_str(&format!(
                "; database backup {} taken at {} first",
                b.id,
                b.at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
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

    /// Why the plan is not the one a human was shown, as a refusing gate.
    fn changed_since_shown(
        &self,
        plan: &PromotionPlan,
        expect: &Expect,
        said: &str,
        versions: &[Result<Version, crate::backends::BackendError>],
    ) -> Option<Gate> {
        if plan.version == expect.version && plan.from == expect.from {
            return None;
        }
        let runs = |stage: &str| {
            self.inner
                .config
                .index_of(stage)
                .and_then(|i| versions[i].as_ref().ok())
                .map(|v| v.to_string())
                .unwrap_or_else(|| "an unknown version".into())
        };
        let detail = match &expect.from {
            Some(stage) => format!(
                "{stage} now runs {}, {said} {}",
                runs(stage),
                expect.version
            ),
            None => format!(
                "promoting {} now ships {}, {said} {}",
                plan.to, plan.version, expect.version
            ),
        };
        Some(Gate::block("exact_version", false, detail))
    }

    /// Record a Go (or No-Go) for the version promoting `env` would ship:
    /// what the stage before it runs now. With `expected`, the version the
    /// human saw, a mismatch is refused (exit 3) and the refusal audited.
    pub async fn approve(
        &self,
        env: &str,
        decision: Decision,
        expected: Option<&Version>,
        note: Option<String>,
    ) -> Result<Approval, EngineError> {
        let idx = self.index(env)?;
        let note = human_text("the note", note)?;
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
        let version = self.inner.envs[source].strategy.read_version().await?;
        if let Some(want) = expected
            && want != &version
        {
            let gate = Gate::block(
                "exact_version",
                false,
                format!(
                    "{} now runs {version}, you approved {want}",
                    self.inner.config.environments[source].name()
                ),
            );
            let action = match decision {
                Decision::Go => ActionKind::Approve,
                Decision::NoGo => ActionKind::Reject,
            };
            return Err(self.refuse(action, env, Some(want), None, gate).await);
        }
        if decision == Decision::Go
            && let Some(gate) = self.self_approval_refusal(env, source, &version).await?
        {
            return Err(self
                .refuse(ActionKind::Approve, env, Some(&version), None, gate)
                .await);
        }
        let a = Approval {
            seq: None,
            env: env.to_string(),
            version,
            decision,
            actor: self.inner.actor.clone(),
            at: Utc::now(),
            note,
        };
        self.inner.store.record_approval(&a).await?;
        let kind = match decision {
            Decision::Go => crate::config::NotifyEvent::Approve,
            Decision::NoGo => crate::config::NotifyEvent::NoGo,
        };
        self.notify(
            kind,
            env,
            Some(&a.version),
            None,
            "recorded",
            a.note.as_deref().unwrap_or(""),
        );
        Ok(a)
    }

    /// Under `[policy] allow_self_approval = false`, why this actor may not
    /// give `version` its Go for `env`: they promoted it into the approval
    /// stage (`source`).
    async fn self_approval_refusal(
        &self,
        env: &str,
        source: usize,
        version: &Version,
    ) -> Result<Option<Gate>, EngineError> {
        if self.inner.config.policy.allow_self_approval {
            return Ok(None);
        }
        let stage = self.inner.config.environments[source].name();
        let deploys = self.inner.store.recent_deploys(stage, 1).await?;
        let p = policy::SelfApproval {
            actor: &self.inner.actor,
            stage,
            stage_promoter: policy::stage_promoter(&deploys, stage, version),
        };
        Ok(policy::go_refusal(&p, version, env))
    }

    /// What rolling `env` back would do: from what it runs to its last
    /// known-good version (or `to`, which must be one it ran and known-good).
    pub async fn rollback_plan(
        &self,
        env: &str,
        to: Option<&Version>,
    ) -> Result<RollbackPlan, EngineError> {
        let idx = self.index(env)?;
        let current = self.inner.envs[idx].strategy.read_version().await?;
        // A canary with traffic is rolled back by its weight going to 0,
        // known-good target or not: from the canary's version to the
        // stable track's, what runs.
        if to.is_none_or(|v| v == &current)
            && matches!(
                self.inner.envs[idx].strategy,
                super::strategy::Strategy::Canary { .. }
            )
            && let Some((weight, version)) = self.recorded_canary(env).await?
            && weight > 0
        {
            return Ok(RollbackPlan {
                env: env.to_string(),
                from: Some(version.unwrap_or_else(|| current.clone())),
                to: current,
            });
        }
        Ok(self.rollback_plan_from(env, &current, to).await??)
    }

    pub(super) async fn rollback_plan_from(
        &self,
        env: &str,
        current: &Version,
        to: Option<&Version>,
    ) -> Result<Result<RollbackPlan, crate::domain::PlanError>, EngineError> {
        let deploys = self
            .inner
            .store
            .recent_deploys(env, ROLLBACK_HISTORY)
            .await?;
        let approvals = self.inner.store.approvals(env).await?;
        let caught = self.caught_versions(env).await?;
        Ok(plan_rollback(&RollbackInput {
            env,
            current: Some(current),
            history: &deploys,
            to,
            approvals: &approvals,
            caught: &caught,
        }))
    }

    /// Return `env` to its last known-good version (never one a monitoring
    /// window caught, a No-Go blocks, or it was rolled back from), or to `to`.
    ///
    /// A canary's rollback whose outcome the store does not take at once
    /// (its weight already 0) is retried while the store heals by waiting,
    /// for at most [`super::canary::OWED_END_RETRY`]; then it is
    /// [`EngineError::Unrecorded`], naming the record left without outcome
    /// and how the next run settles it.
    pub async fn rollback(
        &self,
        env: &str,
        to: Option<Version>,
        events: Option<EventSink>,
    ) -> Result<DeployRecord, EngineError> {
        self.rollback_owing(env, to, events, true, false).await
    }

    /// [`Self::rollback`]; without `retry_owed` a canary rollback's
    /// unrecorded outcome is returned at once in [`EngineError::Unrecorded`]
    /// (`owed`), for a monitoring window to write with its verdict,
    /// through the window's own retries. `automatic`: the window's own
    /// rollback on its regression, which its audit record says (the actor
    /// is the same as a hand's).
    pub(super) async fn rollback_owing(
        &self,
        env: &str,
        to: Option<Version>,
        events: Option<EventSink>,
        retry_owed: bool,
        automatic: bool,
    ) -> Result<DeployRecord, EngineError> {
        let idx = self.index(env)?;
        let current = self.inner.envs[idx].strategy.read_version().await?;
        // A canary with traffic is rolled back by taking its traffic away
        // (also when asked for the stable track's version by name, as the
        // confirmed plan above names it).
        if to.as_ref().is_none_or(|v| v == &current)
            && let Some(rec) = self
                .rollback_canary(idx, &current, events.clone(), retry_owed, automatic)
                .await?
        {
            return Ok(rec);
        }
        self.reconcile_env(env, &current).await;
        let plan = match self.rollback_plan_from(env, &current, to.as_ref()).await? {
            Ok(p) => p,
            Err(e) => {
                let gate = Gate::block("rollback_target", false, e.to_string());
                let refused = self
                    .refuse(ActionKind::Rollback, env, to.as_ref(), Some(&current), gate)
                    .await;
                return Err(match refused {
                    EngineError::Store(s) => EngineError::Store(s),
                    _ => e.into(),
                });
            }
        };
        if let Some(l) = self.foreign_lock(env, Utc::now()).await? {
            let gate = Gate::block(
                "lock",
                false,
                format!("{env} is {}", self.lock_text(env, &l).await),
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
        let strategy = self.inner.config.environments[idx].strategy().as_str();
        let detail = if automatic {
            format!(
                "roll {env} back automatically from {current} to {} ({strategy}; the monitoring window caught a regression of {current})",
                plan.to
            )
        } else {
            format!("roll {env} back from {current} to {} ({strategy})", plan.to)
        };
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

    /// Versions a monitoring window caught in `env`, from the audit log.
    pub(super) async fn caught_versions(&self, env: &str) -> Result<Vec<Version>, EngineError> {
        Ok(self.inner.store.caught_versions(env).await?)
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

/// Longest note or freeze-breaking reason, in characters: a few sentences
/// and a ticket link (the console's field holds less). The command line
/// took 100 KB and more, stored for good, shown in every history and sent
/// to every notification receiver.
pub const MAX_HUMAN_TEXT: usize = 1000;

/// A note or reason typed by a human, stored for good and shown on every
/// terminal: through the one sanitiser (escape sequences, BiDi controls),
/// trimmed, empty as none, and at most [`MAX_HUMAN_TEXT`] characters.
fn human_text(what: &str, text: Option<String>) -> Result<Option<String>, EngineError> {
    let Some(text) = text.map(|t| crate::text::sanitize(&t).trim().to_string()) else {
        return Ok(None);
    };
    let n = text.chars().count();
    if n > MAX_HUMAN_TEXT {
        return Err(EngineError::Usage(format!(
            "{what} is {n} characters long: keep it to {MAX_HUMAN_TEXT} (link to a ticket for more)"
        )));
    }
    Ok(Some(text).filter(|t| !t.is_empty()))
}
