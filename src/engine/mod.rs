//! The engine: everything shipdeck does — status, promote, approve, roll
//! back, watch — for the CLI and the TUI alike. It gathers observations from
//! the backends, asks the pure rules in [`crate::domain`] what is allowed,
//! writes the audit record before it calls a backend, and reports an action
//! as done only once the environment itself reports the new version.

mod error;
mod sampler;
mod types;
mod watch;

pub use error::EngineError;
pub use sampler::{Reading, Sampler};
pub use types::{EnvStatus, Event, MetricsSnapshot, Status};
pub use watch::WatchOutcome;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::backends::BackendError;
use crate::backends::deploy::DeployTarget;
use crate::backends::metrics::MetricsSource;
use crate::backends::version::VersionSource;
use crate::config::Config;
use crate::domain::{
    ActionKind, Approval, ApprovalRule, AuditEntry, Decision, DeployRecord, EnvState, Gate, Health,
    Outcome, PromotionInput, PromotionPlan, StageInfo, Version, plan_promotion, plan_rollback,
};
use crate::store::{LockInfo, NewAudit, SqliteStore, Store};

/// Where the engine reports progress; the TUI turns each event into a `Msg`.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<Event>;

/// This machine's name (moved to [`crate::host`]; re-exported here).
pub use crate::host::hostname;

/// Who acts: `[identity] name`, else `$USER@hostname`, sanitised.
pub fn actor_from(config: &Config) -> String {
    crate::host::actor(config.identity.name.as_deref())
}

/// The default embedded store file.
pub fn default_store_path() -> Option<PathBuf> {
    crate::paths::data_dir().map(|d| d.join("shipdeck.db"))
}

struct Env {
    version: VersionSource,
    deploy: DeployTarget,
}

struct Inner {
    config: Config,
    actor: String,
    store: Arc<dyn Store>,
    envs: Vec<Env>,
    /// The metrics source, polled at most once per step; `Err` when the
    /// `[metrics]` section cannot be used.
    sampler: Result<Sampler, String>,
    /// What this process is doing to each environment right now.
    activity: Mutex<HashMap<String, (EnvState, DateTime<Utc>)>>,
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Open the engine on `config`, with the store it names (or the default one).
    pub fn open(config: Config) -> Result<Engine, EngineError> {
        if let Some(url) = &config.store.url {
            return Err(EngineError::Usage(format!(
                "[store] url = {:?}: this build keeps state in the embedded store only; remove url (or set path)",
                crate::backends::show_url_public(url)
            )));
        }
        let path = match &config.store.path {
            Some(p) => p.clone(),
            None => default_store_path().ok_or_else(|| {
                EngineError::Usage(
                    "no platform data directory: set [store] path or $XDG_DATA_HOME".into(),
                )
            })?,
        };
        let store = SqliteStore::open(&path)?;
        Ok(Engine::with_store(config, Arc::new(store)))
    }

    pub fn with_store(config: Config, store: Arc<dyn Store>) -> Engine {
        let client = crate::backends::http::client(Duration::from_secs(5), None)
            .unwrap_or_else(|_| reqwest::Client::new());
        let envs = config
            .environments
            .iter()
            .map(|e| Env {
                version: VersionSource::from_config(e.name(), e.version.get_ref(), client.clone()),
                deploy: DeployTarget::from_config(e.name(), e.deploy.get_ref(), client.clone()),
            })
            .collect();
        let sampler = MetricsSource::from_config(&config.metrics)
            .map(|src| match src {
                MetricsSource::Scrape(s) => match crate::paths::state_dir() {
                    Some(d) => MetricsSource::Scrape(s.with_cache(d.join("scrape-cache.json"))),
                    None => MetricsSource::Scrape(s),
                },
                other => other,
            })
            .map(|src| Sampler::new(src, config.metrics.step.0))
            .map_err(|e| e.to_string());
        Engine {
            inner: Arc::new(Inner {
                sampler,
                actor: actor_from(&config),
                config,
                store,
                envs,
                activity: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn actor(&self) -> &str {
        &self.inner.actor
    }

    pub fn store_location(&self) -> String {
        self.inner.store.describe()
    }

    fn index(&self, env: &str) -> Result<usize, EngineError> {
        self.inner
            .config
            .index_of(env)
            .ok_or_else(|| EngineError::UnknownEnv {
                name: env.to_string(),
                known: self.inner.config.names().join(", "),
            })
    }

    /// Read every environment's version at once.
    async fn observe(&self) -> Vec<Result<Version, BackendError>> {
        let mut set = tokio::task::JoinSet::new();
        for (i, e) in self.inner.envs.iter().enumerate() {
            let src = e.version.clone();
            set.spawn(async move { (i, src.read().await) });
        }
        let mut out: Vec<Option<Result<Version, BackendError>>> =
            (0..self.inner.envs.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| {
                    Err(BackendError::Command {
                        backend: self.inner.envs[i].version.name().to_string(),
                        cause: "the read task ended unexpectedly".into(),
                    })
                })
            })
            .collect()
    }

    fn stages(
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

    fn foreign_lock(&self, env: &str, now: DateTime<Utc>) -> Result<Option<LockInfo>, EngineError> {
        let host = hostname();
        let pid = std::process::id();
        Ok(self
            .inner
            .store
            .lock_of(env, now)?
            .filter(|l| !(l.pid == pid && l.host == host)))
    }

    fn plan_with(
        &self,
        idx: usize,
        explicit: Option<&Version>,
        versions: &[Result<Version, BackendError>],
        deploys: &[DeployRecord],
        now: DateTime<Utc>,
    ) -> Result<PromotionPlan, EngineError> {
        let stages = self.stages(versions, deploys);
        let env = &stages[idx].name;
        let approvals = self.inner.store.approvals(env)?;
        let lock = self.foreign_lock(env, now)?;
        let holder = lock.as_ref().map(LockInfo::describe);
        let input = PromotionInput {
            stages: &stages,
            target: idx,
            explicit,
            approvals: &approvals,
            lock_holder: holder.as_deref(),
            baseline: self.baseline_check(idx, now),
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
    fn baseline_check(&self, idx: usize, now: DateTime<Utc>) -> Option<(usize, usize)> {
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
        let deploys = self.inner.store.deploys(None)?;
        self.plan_with(idx, version, &versions, &deploys, Utc::now())
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
                Ok(s) => Ok(s.read(&labels, &*self.inner.store).await),
                Err(e) => Err(e.clone()),
            }
        });
        let checked_at = Utc::now();
        let mut store_error = None;
        let deploys = self.inner.store.deploys(None).unwrap_or_else(|e| {
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
            let (state, state_since) =
                self.state_of(name, version.as_ref(), last_deploy.as_ref(), now);
            let (promotion, promotion_error) = if i == 0 {
                (
                    None,
                    Some(format!(
                        "{name} is the first stage: promote it with --version"
                    )),
                )
            } else {
                match self.plan_with(i, None, &versions, &deploys, now) {
                    Ok(p) => (Some(p), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            };
            // The decision that matters: about what promoting would ship, or
            // else about what it runs.
            let about = promotion.as_ref().map(|p| &p.version).or(version.as_ref());
            let approval = about.and_then(|v| {
                self.inner
                    .store
                    .approvals(name)
                    .ok()?
                    .into_iter()
                    .filter(|a| &a.version == v)
                    .max_by_key(|a| a.at)
            });
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
        Status {
            project: cfg.project.clone(),
            generated_at: now,
            actor: self.inner.actor.clone(),
            environments,
            pending,
            store_error,
        }
    }

    fn state_of(
        &self,
        env: &str,
        version: Option<&Version>,
        last_deploy: Option<&DeployRecord>,
        now: DateTime<Utc>,
    ) -> (EnvState, Option<DateTime<Utc>>) {
        if let Some(&(s, since)) = self
            .inner
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(env)
        {
            return (s, Some(since));
        }
        if let Ok(Some(l)) = self.inner.store.lock_of(env, now) {
            return (EnvState::Deploying, Some(l.acquired_at));
        }
        if let Ok(Some(m)) = self.inner.store.last_monitor(env)
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

    fn set_activity(&self, env: &str, state: Option<EnvState>) {
        let mut a = self
            .inner
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match state {
            Some(s) => {
                a.insert(env.to_string(), (s, Utc::now()));
            }
            None => {
                a.remove(env);
            }
        }
    }

    fn refuse(
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
        match self.inner.store.audit_start(&rec) {
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
        let deploys = self.inner.store.deploys(None)?;
        let plan = self.plan_with(idx, version.as_ref(), &versions, &deploys, Utc::now())?;
        if let Some(g) = plan.refusal() {
            return Err(self.refuse(
                ActionKind::Promote,
                env,
                Some(&plan.version),
                plan.current.as_ref(),
                g.clone(),
            ));
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
        self.inner.store.record_approval(&a)?;
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
        let deploys = self.inner.store.deploys(Some(env))?;
        let plan = match plan_rollback(env, Some(&current), &deploys, to.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                let gate = Gate::block("rollback_target", false, e.to_string());
                self.refuse(ActionKind::Rollback, env, to.as_ref(), Some(&current), gate);
                return Err(e.into());
            }
        };
        if let Some(l) = self.foreign_lock(env, Utc::now())? {
            let gate = Gate::block(
                "lock",
                false,
                format!("{env} is locked by {}", l.describe()),
            );
            return Err(self.refuse(
                ActionKind::Rollback,
                env,
                Some(&plan.to),
                Some(&current),
                gate,
            ));
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

    /// The audit log, newest first.
    pub async fn history(
        &self,
        env: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, EngineError> {
        if let Some(e) = env {
            self.index(e)?;
        }
        Ok(self.inner.store.history(env, limit)?)
    }

    /// Take the lock, audit, start the deploy and poll until the environment
    /// reports `version` or the deploy timeout passes.
    async fn deploy(
        &self,
        idx: usize,
        action: ActionKind,
        version: &Version,
        from: Option<&Version>,
        detail: &str,
        events: Option<EventSink>,
    ) -> Result<DeployRecord, EngineError> {
        let cfg_env = &self.inner.config.environments[idx];
        let env = cfg_env.name();
        let backend = &self.inner.envs[idx];
        let timeout = cfg_env.deploy.get_ref().timeout.0;
        let poll = cfg_env
            .deploy
            .get_ref()
            .poll
            .0
            .max(Duration::from_millis(100));
        let now = Utc::now();
        let host = hostname();
        let pid = std::process::id();
        let lock = LockInfo {
            env: env.to_string(),
            holder: self.inner.actor.clone(),
            pid,
            host: host.clone(),
            acquired_at: now,
            expires_at: now
                + chrono::Duration::from_std(timeout + Duration::from_secs(120))
                    .unwrap_or(chrono::Duration::hours(1)),
        };
        if let Err(held) = self.inner.store.try_lock(&lock)? {
            let gate = Gate::block(
                "lock",
                false,
                format!("{env} is locked by {}", held.describe()),
            );
            return Err(self.refuse(action, env, Some(version), from, gate));
        }
        let started = match self.inner.store.audit_start(&NewAudit {
            at: Utc::now(),
            actor: &self.inner.actor,
            action,
            env,
            version: Some(version),
            from_version: from,
            outcome: Outcome::Started,
            detail,
        }) {
            Ok(id) => id,
            Err(e) => {
                let _ = self.inner.store.unlock(env, pid, &host);
                return Err(e.into());
            }
        };
        let rolling_back = action == ActionKind::Rollback;
        let mut guard = InFlight {
            engine: self,
            env,
            started,
            host,
            pid,
            finished: false,
        };
        self.set_activity(
            env,
            Some(if rolling_back {
                EnvState::RollingBack
            } else {
                EnvState::Deploying
            }),
        );
        let emit = |ev: Event| {
            if let Some(tx) = &events {
                let _ = tx.send(ev);
            }
        };
        emit(Event::DeployStarted {
            env: env.to_string(),
            version: version.clone(),
            from: from.cloned(),
            rollback: rolling_back,
        });
        let fail = |guard: &mut InFlight<'_>, detail: String| {
            guard.finish(Outcome::Failed, &detail);
            emit(Event::DeployFinished {
                env: env.to_string(),
                version: version.clone(),
                ok: false,
                detail: detail.clone(),
            });
        };
        let accepted = match backend.deploy.start(env, version).await {
            Ok(a) => a,
            Err(e) => {
                fail(&mut guard, e.to_string());
                return Err(e.into());
            }
        };
        tracing::info!(env, %version, "{accepted}");
        let t0 = Instant::now();
        let mut observed: Option<Version> = None;
        let mut last_error: Option<String>;
        loop {
            match backend.version.read().await {
                Ok(v) if &v == version => break,
                Ok(v) => {
                    observed = Some(v);
                    last_error = None;
                }
                Err(e) => last_error = Some(e.to_string()),
            }
            let elapsed = t0.elapsed();
            if elapsed >= timeout {
                let mut why = format!(
                    "{env} still reports {} after {}s",
                    observed
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "no version".into()),
                    timeout.as_secs()
                );
                if let Some(e) = &last_error {
                    why.push_str(&format!(" (last read failed: {e})"));
                }
                fail(&mut guard, why.clone());
                return Err(EngineError::DeployFailed {
                    env: env.to_string(),
                    version: version.clone(),
                    detail: why,
                });
            }
            emit(Event::DeployWaiting {
                env: env.to_string(),
                elapsed_s: elapsed.as_secs_f64(),
                observed: observed.clone(),
            });
            tokio::time::sleep(poll.min(timeout.saturating_sub(elapsed))).await;
        }
        let rec = DeployRecord {
            env: env.to_string(),
            version: version.clone(),
            from_version: from.cloned(),
            at: Utc::now(),
            actor: self.inner.actor.clone(),
            kind: if rolling_back { "rollback" } else { "promote" }.to_string(),
        };
        let took = t0.elapsed().as_secs_f64();
        let done = format!("{env} reports {version} after {took:.1}s");
        if let Err(e) = self.inner.store.record_deploy(started, &rec, &done) {
            // Deployed but not recorded: say so; the started record reads unknown.
            guard.finished = true;
            let _ = self.inner.store.unlock(env, pid, &guard.host);
            self.set_activity(env, None);
            return Err(e.into());
        }
        guard.finished = true;
        drop(guard);
        emit(Event::DeployFinished {
            env: env.to_string(),
            version: version.clone(),
            ok: true,
            detail: done,
        });
        Ok(rec)
    }
}

/// An audited action in flight. Finishing it writes the outcome; dropping it
/// unfinished (Ctrl-C, a cancelled task) writes "unknown" so the audit log
/// says what happened. Either way the lock is released.
struct InFlight<'a> {
    engine: &'a Engine,
    env: &'a str,
    started: i64,
    host: String,
    pid: u32,
    finished: bool,
}

impl InFlight<'_> {
    fn finish(&mut self, outcome: Outcome, detail: &str) {
        if let Err(e) =
            self.engine
                .inner
                .store
                .audit_finish(self.started, Utc::now(), outcome, detail)
        {
            tracing::error!("cannot record the outcome of audit #{}: {e}", self.started);
        }
        self.finished = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(
                Outcome::Unknown,
                "interrupted before the environment reported the new version; check it with `shipdeck status`",
            );
        }
        let _ = self
            .engine
            .inner
            .store
            .unlock(self.env, self.pid, &self.host);
        self.engine.set_activity(self.env, None);
    }
}
