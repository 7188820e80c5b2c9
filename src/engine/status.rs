//! Reading the world: every environment's version, state and metrics, and
//! what promoting each would ship (plans with their gates).

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, EnvStatus, MetricsSnapshot, Status, hostname};
use crate::backends::BackendError;
use crate::domain::{
    ApprovalRule, DeployRecord, EnvState, Health, PromotionInput, PromotionPlan, StageInfo,
    Version, plan_promotion,
};
use crate::store::LockInfo;

impl Engine {
    pub(super) fn stages(
        &self,
        versions: &[Result<Version, BackendError>],
        deploys: &[DeployRecord],
    ) -> Vec<StageInfo> {
        let cfg = &self.inner.config;
        cfg.environments
            .iter()
            .enumerate()
            .map(|(i, e)| StageInfo {
                name: e.name().to_string(),
                version: versions[i].as_ref().ok().cloned(),
                last_deploy_at: deploys
                    .iter()
                    .filter(|d| d.env == e.name())
                    .map(|d| d.at)
                    .max(),
                approval: e.gates.requires_approval.then(|| ApprovalRule {
                    stage: e
                        .gates
                        .approval_stage
                        .as_ref()
                        .and_then(|s| cfg.index_of(s.get_ref()))
                        .unwrap_or(i.saturating_sub(1)),
                }),
                low_traffic: e.gates.low_traffic_window,
            })
            .collect()
    }

    pub(super) async fn foreign_lock(
        &self,
        env: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LockInfo>, EngineError> {
        let host = hostname();
        let pid = std::process::id();
        Ok(self
            .inner
            .store
            .lock_of(env, now)
            .await?
            .filter(|l| !(l.pid == pid && l.host == host)))
    }

    pub(super) async fn plan_with(
        &self,
        idx: usize,
        explicit: Option<&Version>,
        versions: &[Result<Version, BackendError>],
        deploys: &[DeployRecord],
        now: DateTime<Utc>,
    ) -> Result<PromotionPlan, EngineError> {
        let stages = self.stages(versions, deploys);
        let env = &stages[idx].name;
        let approvals = self.inner.store.approvals(env).await?;
        let lock = self.foreign_lock(env, now).await?;
        let holder = lock.as_ref().map(LockInfo::describe);
        let input = PromotionInput {
            stages: &stages,
            target: idx,
            explicit,
            approvals: &approvals,
            lock_holder: holder.as_deref(),
            baseline: self.baseline_check(idx, now).await,
            now,
        };
        match plan_promotion(&input) {
            Ok(p) => Ok(p),
            // The source stage's version could not be read: that is the backend's failure.
            Err(crate::domain::PlanError::SourceUnknown { .. }) if idx > 0 => {
                match &versions[idx - 1] {
                    Err(e) => Err(EngineError::Backend(e.clone())),
                    Ok(_) => Err(EngineError::Usage("source version unknown".into())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// For a monitored environment whose metrics source has no history of
    /// its own (scrape): baseline steps kept so far, and how many the
    /// detector needs.
    pub(super) async fn baseline_check(
        &self,
        idx: usize,
        now: DateTime<Utc>,
    ) -> Option<(usize, usize)> {
        let e = &self.inner.config.environments[idx];
        let scrape = self.inner.config.metrics.source == crate::config::MetricsSourceKind::Scrape;
        if !e.monitored || !scrape {
            return None;
        }
        let span = chrono::Duration::from_std(self.inner.config.monitor.baseline.0).ok()?;
        let have = self
            .inner
            .store
            .samples(e.name(), now - span, now)
            .await
            .ok()?
            .iter()
            .filter(|(_, s)| s.requests.is_finite())
            .count();
        Some((
            have,
            crate::monitor::DetectorConfig::default().min_baseline_steps,
        ))
    }

    /// What promoting `env` would ship, with every gate checked.
    pub async fn plan(
        &self,
        env: &str,
        version: Option<&Version>,
    ) -> Result<PromotionPlan, EngineError> {
        let idx = self.index(env)?;
        let versions = self.observe().await;
        let deploys = self.inner.store.latest_deploys().await?;
        self.plan_with(idx, version, &versions, &deploys, Utc::now())
            .await
    }

    /// One snapshot of all environments and the pending release. Never
    /// fails: what could not be read is reported per environment.
    pub async fn status(&self) -> Status {
        let now = Utc::now();
        let labels: Vec<(String, String)> = self
            .inner
            .config
            .environments
            .iter()
            .map(|e| (e.label().to_string(), e.name().to_string()))
            .collect();
        let (versions, reading) = tokio::join!(self.observe(), async {
            match &self.inner.sampler {
                Ok(s) => Ok(s.read(&labels, &self.inner.store).await),
                Err(e) => Err(e.clone()),
            }
        });
        let checked_at = Utc::now();
        self.reconcile(&versions).await;
        let mut store_error = None;
        let deploys = self.inner.store.latest_deploys().await.unwrap_or_else(|e| {
            store_error = Some(e.to_string());
            Vec::new()
        });
        let cfg = &self.inner.config;
        let last = cfg.environments.len().saturating_sub(1);
        let mut environments = Vec::with_capacity(cfg.environments.len());
        for (i, e) in cfg.environments.iter().enumerate() {
            let name = e.name();
            let version = versions[i].as_ref().ok().cloned();
            let version_error = versions[i].as_ref().err().map(|e| e.to_string());
            let last_deploy = deploys.iter().rev().find(|d| d.env == name).cloned();
            let (state, state_since) = self
                .state_of(name, version.as_ref(), last_deploy.as_ref(), now)
                .await;
            let (promotion, promotion_error) = if i == 0 {
                (
                    None,
                    Some(format!(
                        "{name} is the first stage: promote it with --version"
                    )),
                )
            } else {
                match self.plan_with(i, None, &versions, &deploys, now).await {
                    Ok(p) => (Some(p), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            };
            // The decision that matters: about what promoting would ship, or
            // else about what it runs.
            let about = promotion.as_ref().map(|p| &p.version).or(version.as_ref());
            let approval = match about {
                Some(v) => self.inner.store.approvals(name).await.ok().and_then(|all| {
                    all.into_iter()
                        .filter(|a| &a.version == v)
                        .max_by_key(|a| a.at)
                }),
                None => None,
            };
            let (metrics, metrics_error) = match &reading {
                Err(e) => (MetricsSnapshot::default(), Some(e.clone())),
                Ok(r) => {
                    let m = r
                        .points
                        .get(e.label())
                        .map(|p| p.to_snapshot())
                        .unwrap_or_default();
                    let err = match (&r.error, m.as_of) {
                        (Some((at, why)), _) => {
                            Some(format!("{why} (since {})", at.format("%H:%M:%S UTC")))
                        }
                        (None, None) => Some("no data yet: rates need two scrapes".into()),
                        (None, Some(_)) => None,
                    };
                    (m, err)
                }
            };
            let guard_breached = match (metrics.error_rate, cfg.monitor.max_error_rate) {
                (Some(r), Some(max)) => r > max,
                _ => false,
            } || match (metrics.p95_ms, cfg.monitor.max_p95_ms) {
                (Some(p), Some(max)) => p > max,
                _ => false,
            };
            let health = match (&version, state) {
                (None, _) => Health::Down,
                (Some(_), EnvState::Regression) => Health::Degraded,
                (Some(_), _) if guard_breached => Health::Degraded,
                (Some(_), _) => Health::Healthy,
            };
            environments.push(EnvStatus {
                name: name.to_string(),
                production: e.production.unwrap_or(i == last),
                monitored: e.monitored,
                version,
                version_error,
                health,
                checked_at,
                state,
                state_since,
                metrics,
                metrics_error,
                approval,
                last_deploy,
                promotion,
                promotion_error,
            });
        }
        // The pending release: the promotion closest to production that ships something new.
        let pending = environments
            .iter()
            .rev()
            .filter_map(|e| e.promotion.as_ref())
            .find(|p| p.current.as_ref() != Some(&p.version))
            .cloned();
        // Last: reading approvals above is what notices an edited table.
        let integrity = self.inner.store.integrity().await;
        Status {
            project: cfg.project.clone(),
            generated_at: now,
            actor: self.inner.actor.clone(),
            environments,
            pending,
            store_error,
            integrity,
        }
    }

    pub(super) async fn state_of(
        &self,
        env: &str,
        version: Option<&Version>,
        last_deploy: Option<&DeployRecord>,
        now: DateTime<Utc>,
    ) -> (EnvState, Option<DateTime<Utc>>) {
        let active = self
            .inner
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(env)
            .copied();
        if let Some((s, since)) = active {
            return (s, Some(since));
        }
        if let Ok(Some(l)) = self.inner.store.lock_of(env, now).await {
            return (EnvState::Deploying, Some(l.acquired_at));
        }
        if let Ok(Some(m)) = self.inner.store.last_monitor(env).await
            && Some(&m.version) == version
        {
            let window = chrono::Duration::from_std(self.inner.config.monitor.window.0)
                .unwrap_or(chrono::Duration::hours(24));
            if m.verdict == "regression" {
                return (EnvState::Regression, m.finished_at.or(Some(m.started_at)));
            }
            if m.verdict == "monitoring" && m.finished_at.is_none() && m.started_at + window > now {
                return (EnvState::Monitoring, Some(m.started_at));
            }
        }
        match last_deploy {
            Some(d) if d.kind == "rollback" => (EnvState::RolledBack, Some(d.at)),
            _ => (EnvState::Idle, None),
        }
    }
}
