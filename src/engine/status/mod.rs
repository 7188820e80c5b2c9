//! Reading the world: every environment's version, state and metrics, and
//! what promoting each would ship (plans with their gates).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::clock;

use super::{Engine, EngineError, EnvStatus, MetricsSnapshot, RollbackTarget, Status};
use crate::backends::BackendError;
use crate::domain::baseline::{incident_periods, lookback, plan_baseline};
use crate::domain::health::{HealthInput, Traffic, assess};
use crate::domain::policy::{self, SelfApproval};
use crate::domain::state::{StateInput, WindowRecord, drift, env_state, unwatched};
use crate::domain::{
    ApprovalRule, DeployRecord, EnvState, Health, PromotionInput, PromotionPlan, RollbackInput,
    StageInfo, Version, WindowVerdict, apply_evidence, plan_promotion, plan_rollback,
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
            .map(|(i, e)| {
                // One pass over the stage's recorded deploys: the newest in
                // the store's order, the newest date, whether all are ordered.
                let (mut seq, mut at, mut ordered, mut last) = (None, None, true, None);
                for d in deploys.iter().filter(|d| d.env == e.name()) {
                    last = Some(d);
                    seq = seq.max(d.seq);
                    at = at.max(Some(d.at));
                    ordered &= d.seq.is_some();
                }
                StageInfo {
                    name: e.name().to_string(),
                    version: versions[i].as_ref().ok().cloned(),
                    last_deploy_seq: seq,
                    last_deploy_at: at,
                    deploys_ordered: ordered,
                    last_deploy: last.cloned(),
                    approval: e.gates.requires_approval.then(|| ApprovalRule {
                        stage: e
                            .gates
                            .approval_stage
                            .as_ref()
                            .and_then(|s| cfg.index_of(s.get_ref()))
                            .unwrap_or(i.saturating_sub(1)),
                    }),
                    low_traffic: e.gates.low_traffic_window,
                }
            })
            .collect()
    }

    pub(super) async fn foreign_lock(
        &self,
        env: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LockInfo>, EngineError> {
        Ok(self
            .inner
            .store
            .lock_of(env, now)
            .await?
            .filter(|l| !is_mine(l)))
    }

    /// The deploy or rollback of `env` a killed shipdeck left without
    /// outcome and that may still run in its backend ([`unsettled`]), as
    /// a warning to show before acting on `env` again: a rollback during
    /// an incident goes ahead once the engineer has seen it.
    pub async fn unsettled_deploy(&self, env: &str) -> Result<Option<String>, EngineError> {
        let idx = self.index(env)?;
        let reports = self.inner.envs[idx].strategy.read_version().await.ok();
        if let Some(v) = &reports {
            self.reconcile_env(env, v).await;
        }
        let lock = self.inner.store.lock_of(env, Utc::now()).await?;
        let unfinished = self.inner.store.unfinished().await?;
        Ok(unsettled(env, reports.as_ref(), &unfinished, lock.as_ref()))
    }

    /// `being promoted by alice (pid 4242 on build-7) since 14:03:12 UTC`:
    /// what the holder of `env`'s lock is doing, read from its started
    /// record (a lock taken a moment before its record reads "deployed").
    pub(super) async fn lock_text(&self, env: &str, l: &LockInfo) -> String {
        // The holder writes its started record right after it takes the
        // lock: a refusal in between waits a moment for it.
        let mut verb = None;
        for attempt in 0..4 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            verb = self.inner.store.unfinished().await.ok().and_then(|u| {
                u.iter()
                    .rev()
                    .find(|u| {
                        !u.unknown && u.env == env && u.actor == l.holder && l.guards(u.id, u.at)
                    })
                    .map(|u| match u.action {
                        crate::domain::ActionKind::Rollback => "rolled back",
                        _ => "promoted",
                    })
            });
            if verb.is_some() {
                break;
            }
        }
        format!(
            "being {} by {} since {} UTC",
            verb.unwrap_or("deployed"),
            l.describe(),
            l.acquired_at.format("%H:%M:%S")
        )
    }

    pub(super) async fn plan_with(
        &self,
        idx: usize,
        explicit: Option<&Version>,
        versions: &[Result<Version, BackendError>],
        deploys: &[DeployRecord],
        now: DateTime<Utc>,
    ) -> Result<PromotionPlan, EngineError> {
        let env = self.inner.config.environments[idx].name();
        let approvals = self.inner.store.approvals(env).await?;
        self.plan_given(
            idx, explicit, versions, deploys, &approvals, None, None, now, true,
        )
        .await
    }

    /// [`Self::plan_with`] with the approvals of the environment already
    /// read (a status view reads them once per environment), and its lock
    /// when read too (`Some`: as the view's reads found it), and the
    /// environment's unsettled deploy ([`unsettled`]) when the view found
    /// it (`Some`; else read here). With `wait`
    /// the evidence (stage verdict, CI, review) is waited for; without, what
    /// is known now ("checking…" until its source answers).
    #[allow(clippy::too_many_arguments)]
    async fn plan_given(
        &self,
        idx: usize,
        explicit: Option<&Version>,
        versions: &[Result<Version, BackendError>],
        deploys: &[DeployRecord],
        approvals: &[crate::domain::Approval],
        lock: Option<Option<LockInfo>>,
        unsettled_seen: Option<Option<&str>>,
        now: DateTime<Utc>,
        wait: bool,
    ) -> Result<PromotionPlan, EngineError> {
        let stages = self.stages(versions, deploys);
        let env = &stages[idx].name;
        let lock = match lock {
            Some(read) => read,
            None => self.inner.store.lock_of(env, now).await?,
        };
        // A deploy a killed shipdeck left without outcome may still run
        // in the backend: promoting beside it is confirmed, not assumed.
        let unsettled_read;
        let unsettled_text = match unsettled_seen {
            Some(u) => u,
            None => {
                let unfinished = self.inner.store.unfinished().await?;
                unsettled_read = unsettled(
                    env,
                    stages[idx].version.as_ref(),
                    &unfinished,
                    lock.as_ref(),
                );
                unsettled_read.as_deref()
            }
        };
        let lock = lock.filter(|l| !is_mine(l));
        let holder = match &lock {
            Some(l) => Some(self.lock_text(env, l).await),
            None => None,
        };
        // A canary left with traffic by a promotion no live process runs
        // (a live holder is refused by the lock gate already).
        let unjudged_canary = match &lock {
            Some(_) => None,
            None => self.unjudged_canary(idx).await?,
        };
        // The version the approval stage runs is the one a valid Go is for.
        let self_approval = stages[idx]
            .approval
            .as_ref()
            .filter(|_| !self.inner.config.policy.allow_self_approval)
            .map(|rule| {
                let stage = &stages[rule.stage];
                SelfApproval {
                    actor: &self.inner.actor,
                    stage: &stage.name,
                    stage_promoter: stage
                        .version
                        .as_ref()
                        .and_then(|v| policy::stage_promoter(deploys, &stage.name, v)),
                }
            });
        let input = PromotionInput {
            stages: &stages,
            target: idx,
            explicit,
            approvals,
            lock_holder: holder.as_deref(),
            unjudged_canary: unjudged_canary.as_deref(),
            unsettled: unsettled_text.filter(|_| lock.is_none()),
            baseline: self.baseline_check(idx, now).await,
            self_approval,
            now,
        };
        match plan_promotion(&input) {
            Ok(p) => {
                let evidence = self.evidence_for(&p, &stages, idx, deploys, wait).await;
                let mut p = apply_evidence(p, self.requirements(idx), evidence);
                self.release_gates(idx, &mut p, now, None).await;
                Ok(p)
            }
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
        let span = clock::delta(self.inner.config.monitor.baseline.0);
        let have = self
            .inner
            .store
            .samples(e.name(), clock::before(now, span), now)
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

    /// Why a Go from this actor for promoting environment `idx` would be
    /// refused by `[policy] allow_self_approval = false`, if it would.
    fn go_refusal(
        &self,
        idx: usize,
        versions: &[Result<Version, BackendError>],
        deploys: &[DeployRecord],
    ) -> Option<crate::domain::Gate> {
        let cfg = &self.inner.config;
        if cfg.policy.allow_self_approval {
            return None;
        }
        let rule = self.stages(versions, deploys)[idx].approval.clone()?;
        let stage = cfg.environments[rule.stage].name();
        let version = versions[rule.stage].as_ref().ok()?;
        let p = SelfApproval {
            actor: &self.inner.actor,
            stage,
            stage_promoter: policy::stage_promoter(deploys, stage, version),
        };
        policy::go_refusal(&p, version, cfg.environments[idx].name())
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
        let evidence_wait = self.waits_for_evidence();
        let labels: Vec<(String, String)> = self
            .inner
            .config
            .environments
            .iter()
            .map(|e| (e.label().to_string(), e.name().to_string()))
            .collect();
        let ((versions, mut slots_read), reading) =
            tokio::join!(self.observe_for_status(), async {
                match &self.inner.sampler {
                    Ok(s) => Ok(s.read(&labels, &self.inner.store).await),
                    Err(e) => Err(e.to_string()),
                }
            });
        let checked_at = Utc::now();
        let mut store_error = None;
        // Every store read of the view at once (one round trip to a
        // shared store): what each environment ran, its locks, last
        // window, decisions, who else is watching, the deploys without
        // outcome (settled here against what the environments report, and
        // read again if that wrote anything) and the store's integrity.
        // Decisions are read about what each environment and the stage
        // before it run (the promotion's version), besides its recent
        // deploys (the rollback targets): all the view can ask about.
        let live = |i: usize| versions[i].as_ref().ok().map(|v| v.to_string());
        let keys: Vec<(String, String, Vec<String>)> = self
            .inner
            .config
            .environments
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let asked = [Some(i), i.checked_sub(1)]
                    .into_iter()
                    .flatten()
                    .filter_map(live)
                    .collect();
                (
                    e.name().to_string(),
                    super::watch::watch_key(e.name()),
                    asked,
                )
            })
            .collect();
        let n_envs = keys.len();
        let fresh = clock::before(now, clock::delta(super::PRESENCE_STALE));
        let store = &self.inner.store;
        let mut reads = store
            .status_reads(keys.clone(), ROLLBACK_HISTORY, now, fresh)
            .await;
        // The unfinished deploys also say what a lock held elsewhere is
        // for: its holder's started record (see `lock_action`).
        let mut unfinished = Vec::new();
        if let Ok(r) = &mut reads {
            unfinished = r.unfinished.clone();
            if self
                .reconcile_read(&versions, std::mem::take(&mut r.unfinished))
                .await
            {
                reads = store.status_reads(keys, ROLLBACK_HISTORY, now, fresh).await;
                if let Ok(r) = &reads {
                    unfinished = r.unfinished.clone();
                }
            }
        }
        let (deploys, mut per_env, present, reads_error, integrity) = match reads {
            Ok(r) => (r.latest, r.envs, Ok(r.present), None, r.integrity),
            Err(e) => {
                store_error = Some(e.to_string());
                let engine_error = EngineError::from(e).to_string();
                (
                    Vec::new(),
                    vec![crate::store::EnvReads::default(); n_envs],
                    Err(engine_error.clone()),
                    Some(engine_error),
                    store.integrity().await,
                )
            }
        };
        let cfg = &self.inner.config;
        let last = cfg.environments.len().saturating_sub(1);
        let window = clock::delta(cfg.monitor.window.0);
        // First what each environment runs, its state and its traffic …
        let mut seen = Vec::with_capacity(cfg.environments.len());
        for (i, e) in cfg.environments.iter().enumerate() {
            let name = e.name();
            let version = versions[i].as_ref().ok().cloned();
            let last_deploy = deploys.iter().rev().find(|d| d.env == name).cloned();
            let read = std::mem::take(&mut per_env[i]);
            let ended = read.last_monitor.as_ref().and_then(ended_window);
            let last_window = read.last_monitor.and_then(window_of);
            let claim = read.watch;
            let locked_since = read.lock.as_ref().map(|l| l.acquired_at);
            let locked_for = read
                .lock
                .as_ref()
                .and_then(|l| lock_action(name, l, &unfinished));
            let activity = self
                .inner
                .activity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)
                .copied();
            let (state, state_since) = env_state(&StateInput {
                activity,
                locked_since,
                locked_for,
                version: version.as_ref(),
                last_window: last_window.as_ref(),
                watcher_alive: claim.is_some(),
                last_deploy: last_deploy.as_ref(),
                window,
                now,
            });
            // A deploy or rollback no live process runs and whose outcome
            // is not known: never read as idle and done.
            let unsettled_rec = (state != EnvState::Deploying)
                .then(|| unsettled_record(name, &unfinished, read.lock.as_ref()))
                .flatten();
            let unsettled = unsettled_rec.and_then(|u| unsettled_text(name, version.as_ref(), u));
            let (state, state_since) = match (&unsettled, state) {
                (Some(_), EnvState::Idle) => (EnvState::Unsettled, None),
                _ => (state, state_since),
            };
            // A release a killed rollback was taking away is no release
            // nobody watches: no console starts a window on it.
            let unwatched = unwatched(
                e.monitored,
                version.as_ref(),
                last_deploy.as_ref(),
                last_window.as_ref(),
                claim.is_some(),
                window,
                now,
            ) && !unsettled_rec
                .is_some_and(|u| u.action == crate::domain::ActionKind::Rollback);
            let history = read.recent;
            let approvals_read = match &reads_error {
                None => Ok(read.approvals),
                Some(e) => Err(e.clone()),
            };
            let approvals = approvals_read.clone().unwrap_or_default();
            // What the rollback reads as caught (every failed window, among
            // the versions it can pick here), so the target offered is one
            // it accepts; and a regression still running is an incident
            // (and no rollback target) before its window records a failure.
            let mut caught: Vec<Version> = read.caught;
            if let Some(w) = last_window
                .as_ref()
                .filter(|w| state == EnvState::Regression && w.verdict == WindowVerdict::Regression)
                && !caught.contains(&w.version)
            {
                caught.push(w.version.clone());
            }
            let rollback = (!history.is_empty()).then(|| {
                match plan_rollback(&RollbackInput {
                    env: name,
                    current: version.as_ref(),
                    history: &history,
                    to: None,
                    approvals: &approvals,
                    caught: &caught,
                }) {
                    Ok(p) => RollbackTarget {
                        detail: format!(
                            "{} → {}, the last known-good version",
                            p.from
                                .as_ref()
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "?".into()),
                            p.to
                        ),
                        to: Some(p.to),
                    },
                    Err(e) => RollbackTarget {
                        to: None,
                        detail: e.to_string(),
                    },
                }
            });
            let (traffic, first_sample) = self
                .traffic_since(name, &history, &caught, checked_at)
                .await;
            seen.push(Seen {
                unsettled,
                lock: read.lock,
                history,
                caught,
                version,
                last_deploy,
                state,
                state_since,
                watcher: claim.map(|l| l.describe()),
                unwatched,
                traffic,
                first_sample,
                approvals: approvals_read,
                rollback,
                ended,
            });
        }
        let prod_idx = cfg
            .environments
            .iter()
            .enumerate()
            .rposition(|(i, e)| e.production.unwrap_or(i == last));
        let baseline_span = format!(
            "last {}",
            crate::domain::HumanDuration(cfg.monitor.baseline.0)
        );
        let (production_traffic, production_skipped) = match prod_idx {
            Some(p) => {
                let name = cfg.environments[p].name();
                self.production_reference(name, &seen[p], &baseline_span, checked_at)
                    .await
            }
            None => (None, None),
        };
        // The reading warms up while the source answers and this process
        // has polled it fewer times than a baseline takes: what is missing
        // for that reason is pending, not unknown. (Not while the store,
        // which keeps the samples, cannot be read.)
        let warming_up = match (&reading, &self.inner.sampler, &store_error) {
            (Ok(r), Ok(s), None) => warm_up_of(r, s.source()),
            _ => None,
        };
        let warm_up_span = clock::times(clock::delta(cfg.metrics.step.0), WARM_UP_POLLS as i32);
        // … then health, plans and approvals.
        let mut environments = Vec::with_capacity(cfg.environments.len());
        for ((i, e), seen) in cfg.environments.iter().enumerate().zip(seen) {
            let name = e.name();
            let Seen {
                lock,
                history: _,
                caught: _,
                version,
                last_deploy,
                state,
                state_since,
                watcher,
                unwatched,
                traffic,
                first_sample,
                approvals,
                rollback,
                ended,
                unsettled,
            } = seen;
            let version_error = versions[i].as_ref().err().map(|e| e.to_string());
            let (promotion, promotion_error) = if i == 0 {
                (
                    None,
                    Some(format!(
                        "{name} is the first stage: promote it with --version"
                    )),
                )
            } else {
                let planned = match &approvals {
                    Ok(a) => self
                        .plan_given(
                            i,
                            None,
                            &versions,
                            &deploys,
                            a,
                            Some(lock),
                            Some(unsettled.as_deref()),
                            now,
                            evidence_wait,
                        )
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.clone()),
                };
                match planned {
                    Ok(p) => (Some(p), None),
                    Err(e) => (None, Some(e)),
                }
            };
            // The decision that matters: about what promoting would ship, or
            // else about what it runs.
            let about = promotion.as_ref().map(|p| &p.version).or(version.as_ref());
            let approval = about.and_then(|v| {
                approvals
                    .unwrap_or_default()
                    .into_iter()
                    .rfind(|a| &a.version == v)
            });
            let (metrics, metrics_error, metrics_note) = match &reading {
                Err(e) => (MetricsSnapshot::default(), Some(e.clone()), None),
                Ok(r) => {
                    let m = r
                        .points
                        .get(e.label())
                        .map(|p| p.to_snapshot())
                        .unwrap_or_default();
                    let (err, note) = match (r.error_for(e.label()), m.as_of) {
                        (Some((at, why)), _) => (
                            Some(format!("{why} (since {})", at.format("%H:%M:%S UTC"))),
                            None,
                        ),
                        (None, None) if warming_up.is_some_and(|w| w.first_scrape) => (
                            None,
                            Some(crate::domain::health::WarmUpReason::FirstScrape.describe()),
                        ),
                        (None, _) => (None, None),
                    };
                    (m, err, note)
                }
            };
            let assessed = assess(&HealthInput {
                reachable: version.is_some(),
                reach_error: version_error.as_deref(),
                state: Some(state),
                // A source is always configured ([metrics] has defaults):
                // one that cannot be built is an error to show, never
                // "no metrics source configured".
                metrics_configured: true,
                recent: traffic.map(|t| t.0),
                baseline: traffic.and_then(|t| t.1),
                baseline_span: &baseline_span,
                production: production_traffic.filter(|_| prod_idx.is_some_and(|p| i < p)),
                production_skipped: production_skipped
                    .as_deref()
                    .filter(|_| prod_idx.is_some_and(|p| i < p)),
                max_error_rate: cfg.monitor.max_error_rate,
                max_p95_ms: cfg.monitor.max_p95_ms,
                metrics_failed: metrics_error.as_deref(),
                // A first scrape that found a step (a cached previous one)
                // has a rate: only its baseline can be warming up — and only
                // while the samples kept of it are young too (one-shot
                // `status` runs, each polling once, are not forever
                // pending: past that, no baseline is unknown).
                // (Never while its own read fails: that is unknown.)
                warming_up: warming_up
                    .filter(|_| metrics_error.is_none())
                    .and_then(|w| {
                        let first_scrape = w.first_scrape && metrics.as_of.is_none();
                        let young = first_sample.is_none_or(|f| checked_at - f < warm_up_span);
                        (first_scrape || young).then(|| crate::domain::health::WarmingUp {
                            first_scrape,
                            since: first_sample.map_or(w.since, |f| f.min(w.since)),
                        })
                    }),
            });
            let drift = drift(version.as_ref(), last_deploy.as_ref());
            // While a live promotion moves the canary on, it is judged.
            let canary = self.canary_status(i).await.map(|mut c| {
                if state == crate::domain::EnvState::Deploying || c.weight == 0 {
                    c.unjudged = None;
                }
                c
            });
            let release = match &promotion {
                Some(p) => Some(
                    self.release_facts(name, p.current.as_ref(), &p.version)
                        .await,
                ),
                None => None,
            };
            let rollback_schema = match (&version, rollback.as_ref().and_then(|r| r.to.as_ref())) {
                (Some(cur), Some(to)) => self.schema_notice(name, cur, to).await.ok().flatten(),
                _ => None,
            };
            let revert = self
                .strategy_status(
                    i,
                    slots_read[i].take(),
                    rollback.as_ref().and_then(|r| r.to.as_ref()),
                    version.as_ref(),
                    last_deploy.as_ref(),
                    canary.as_ref().map(|c| c.weight),
                    now,
                )
                .await;
            environments.push(EnvStatus {
                name: name.to_string(),
                production: e.production.unwrap_or(i == last),
                monitored: e.monitored,
                reachable: version.is_some(),
                version,
                version_error,
                health: assessed.health,
                health_detail: assessed.detail,
                health_basis: assessed.comparison,
                warm_up: assessed.warm_up,
                checked_at,
                state,
                state_since,
                watcher,
                unwatched,
                drift,
                rollback,
                metrics,
                metrics_error,
                metrics_note,
                lock_lost: self.lock_lost(name).map(|l| l.line()),
                approval,
                deploy_url: last_deploy.as_ref().and_then(|d| d.url.clone()),
                last_deploy,
                go_refusal: self.go_refusal(i, &versions, &deploys),
                promotion,
                promotion_error,
                // A canary left with traffic says it (above) instead: what
                // its promotion was for runs on the canary, not the
                // stable track the environment's version reports.
                unsettled: unsettled
                    .filter(|_| canary.as_ref().is_none_or(|c| c.unjudged.is_none())),
                canary,
                release,
                rollback_schema,
                freeze: self.freeze_of(name, now),
                revert,
                last_window: ended,
                schema_ahead: None,
            });
        }
        for e in &mut environments {
            e.schema_ahead = schema_ahead(e);
        }
        // A stage whose own evidence since it got what it runs is a
        // regression is not healthy, whatever its recent baseline says.
        let verdicts: Vec<_> = environments
            .iter()
            .filter_map(|e| e.promotion.as_ref()?.evidence.stage_verdict.clone())
            .collect();
        // The stages no promotion asks about (production above all) are
        // judged the same way, on what they run: their own recent baseline
        // compares a release live for longer than it with itself, so a bad
        // release whose window could not judge it (too few baseline steps)
        // read healthy at 8% errors. Only where health could be wrong that
        // way (healthy, warming up, unknown), and all at once.
        let stages = self.stages(&versions, &deploys);
        let unjudged: Vec<(usize, Version)> = environments
            .iter()
            .enumerate()
            .filter(|(_, e)| e.monitored && !verdicts.iter().any(|v| v.stage == e.name))
            .filter(|(_, e)| {
                matches!(
                    e.health,
                    Health::Healthy | Health::WarmingUp | Health::Unknown
                )
            })
            .filter_map(|(i, e)| Some((i, e.version.clone()?)))
            .collect();
        let own =
            futures_util::future::join_all(unjudged.iter().map(|(i, runs)| {
                self.stage_verdict(&stages[*i], *i, runs, &deploys, evidence_wait)
            }))
            .await;
        let verdicts: Vec<_> = verdicts.into_iter().chain(own).collect();
        for v in &verdicts {
            if let Some(e) = environments.iter_mut().find(|e| e.name == v.stage) {
                let a = crate::domain::health::with_go_live_verdict(
                    crate::domain::health::HealthAssessment {
                        health: e.health,
                        comparison: e.health_basis,
                        detail: std::mem::take(&mut e.health_detail),
                        warm_up: e.warm_up.take(),
                    },
                    e.version.as_ref().map(|v| v.as_str()),
                    Some(v),
                );
                (e.health, e.health_basis, e.health_detail, e.warm_up) =
                    (a.health, a.comparison, a.detail, a.warm_up);
            }
        }
        // The pending release: the promotion closest to production that ships something new.
        let pending = environments
            .iter()
            .rev()
            .filter_map(|e| e.promotion.as_ref().map(|p| (p, &e.release)))
            .find(|(p, _)| p.current.as_ref() != Some(&p.version))
            .map(|(p, r)| {
                Box::new(super::Pending {
                    plan: p.clone(),
                    release: r.clone().unwrap_or_default(),
                })
            });
        // None found while a stage after the first could not be planned
        // (what the stage before runs, or the store, could not be read):
        // what is pending is unknown — "nothing" would be a claim no read
        // supports. The one closest to production says why.
        let pending_unknown = match pending {
            Some(_) => None,
            None => environments
                .iter()
                .enumerate()
                .rev()
                .filter(|(i, e)| *i > 0 && e.promotion.is_none())
                .find_map(|(_, e)| Some(format!("{}: {}", e.name, e.promotion_error.as_ref()?))),
        };
        // Logged once per outage (the view says it on every refresh).
        let seen = self.inner.watching_down.seen(
            "who else is watching",
            present.as_ref().map(drop).map_err(|e| e.as_str()),
        );
        match (&present, seen) {
            (Err(_), Some(line)) => tracing::warn!("{line}"),
            (Ok(_), Some(line)) => tracing::info!("{line}"),
            (_, None) => {}
        }
        let watching = present.map(super::others).unwrap_or_default();
        let store_unreachable_since = match &store_error {
            Some(_) => self.inner.store.unreachable_since().await,
            None => None,
        };
        Status {
            project: cfg.project.clone(),
            generated_at: now,
            actor: self.inner.actor.clone(),
            environments,
            pending,
            pending_unknown,
            store_error,
            store_unreachable_since,
            integrity,
            watching,
        }
    }

    /// What a pre-production stage is compared with: production's
    /// known-good traffic — its baseline with known incidents left out, and
    /// while it is itself unwell (degraded, a regression, a window still
    /// judging its version) the time since the deploy of what it runs too.
    /// When that cannot be told (a bad version deployed outside shipdeck),
    /// no comparison, and why.
    async fn production_reference(
        &self,
        name: &str,
        prod: &Seen,
        baseline_span: &str,
        now: DateTime<Utc>,
    ) -> (Option<Traffic>, Option<String>) {
        let cfg = &self.inner.config;
        let own = assess(&HealthInput {
            reachable: prod.version.is_some(),
            state: Some(prod.state),
            metrics_configured: true,
            recent: prod.traffic.map(|t| t.0),
            baseline: prod.traffic.and_then(|t| t.1),
            baseline_span,
            max_error_rate: cfg.monitor.max_error_rate,
            max_p95_ms: cfg.monitor.max_p95_ms,
            ..HealthInput::default()
        });
        let unproven = matches!(prod.state, EnvState::Monitoring | EnvState::Regression);
        if own.health != Health::Degraded && !unproven {
            let known = prod.traffic.and_then(|t| t.1);
            let fallback = prod
                .traffic
                .map(|t| t.0)
                .filter(|_| own.health == Health::Healthy);
            return (known.or(fallback), None);
        }
        let why = if own.health == Health::Degraded {
            format!("production is degraded itself ({})", own.detail)
        } else {
            "production's own window is still judging what it runs".to_string()
        };
        // Its deploy is known: the baseline before it is known-good.
        let deployed = prod
            .version
            .as_ref()
            .filter(|v| prod.history.last().is_some_and(|d| &d.version == *v));
        let Some(running) = deployed else {
            return (None, Some(why));
        };
        let mut caught = prod.caught.clone();
        caught.push(running.clone());
        match self
            .traffic(name, &prod.history, &caught, now)
            .await
            .and_then(|t| t.1)
            .filter(|b| b.steps >= crate::domain::health::MIN_BASELINE_STEPS)
        {
            Some(before) => (Some(before), None),
            None => (None, Some(why)),
        }
    }

    /// The last few steps of `env` and its own baseline before them (known
    /// incidents left out, older clean data in their place), from the
    /// samples the sampler keeps. `now` must be taken after the sampler's
    /// read, so that the point it just took counts.
    async fn traffic(
        &self,
        env: &str,
        history: &[DeployRecord],
        caught: &[Version],
        now: DateTime<Utc>,
    ) -> Option<(Traffic, Option<Traffic>)> {
        self.traffic_since(env, history, caught, now).await.0
    }

    /// [`Self::traffic`], and when the oldest sample kept of `env` (within
    /// what a baseline may reach back to) was taken: when reading its
    /// metrics began, as far as the store knows.
    async fn traffic_since(
        &self,
        env: &str,
        history: &[DeployRecord],
        caught: &[Version],
        now: DateTime<Utc>,
    ) -> (Option<(Traffic, Option<Traffic>)>, Option<DateTime<Utc>>) {
        if self.inner.sampler.is_err() {
            return (None, None);
        }
        let cfg = &self.inner.config;
        let step = clock::delta(cfg.metrics.step.0);
        let span = clock::delta(cfg.monitor.baseline.0).min(chrono::Duration::hours(24));
        let recent_from = clock::before(now, clock::times(step, RECENT_STEPS + 1));
        let Ok(samples) = self
            .inner
            .store
            .samples(env, clock::before(recent_from, clock::times(span, 4)), now)
            .await
        else {
            return (None, None);
        };
        let first = samples.iter().map(|(at, _)| *at).min();
        let (recent, older): (Vec<_>, Vec<_>) =
            samples.into_iter().partition(|(at, _)| *at > recent_from);
        let recent: Vec<_> = recent.into_iter().map(|(_, s)| s).collect();
        if recent.is_empty() {
            return (None, first);
        }
        let bad = incident_periods(history, caught, now, step * 2);
        let plan = plan_baseline(recent_from, span, lookback(span), &bad);
        let baseline: Vec<_> = older
            .into_iter()
            .filter(|(at, _)| plan.place(*at).is_some())
            .map(|(_, s)| s)
            .collect();
        (
            Some((
                Traffic::of(&recent),
                (!baseline.is_empty()).then(|| Traffic::of(&baseline)),
            )),
            first,
        )
    }
}

/// Steps that make up an environment's "now" for its health.
const RECENT_STEPS: i32 = 5;

/// Successful polls after which this process has read enough steps for
/// a baseline ([`RECENT_STEPS`] and the step before them, then
/// [`crate::domain::health::MIN_BASELINE_STEPS`] more, and one for the
/// first scrape that gives no step): missing data past them is not
/// warm-up.
pub(super) const WARM_UP_POLLS: usize =
    RECENT_STEPS as usize + 1 + crate::domain::health::MIN_BASELINE_STEPS + 1;

/// Whether `r` is still warming up (see [`WARM_UP_POLLS`]): never while
/// the source fails.
fn warm_up_of(
    r: &super::sampler::Reading,
    source: &crate::backends::metrics::MetricsSource,
) -> Option<crate::domain::health::WarmingUp> {
    if r.error.is_some() || r.ok_polls >= WARM_UP_POLLS {
        return None;
    }
    Some(crate::domain::health::WarmingUp {
        since: r.started?,
        first_scrape: r.ok_polls < 2
            && matches!(source, crate::backends::metrics::MetricsSource::Scrape(_)),
    })
}

/// What `status` learns about one environment before judging its health.
struct Seen {
    /// Its deploy lock, as the view's reads found it.
    lock: Option<LockInfo>,
    history: Vec<DeployRecord>,
    caught: Vec<Version>,
    version: Option<Version>,
    last_deploy: Option<DeployRecord>,
    state: EnvState,
    state_since: Option<DateTime<Utc>>,
    watcher: Option<String>,
    unwatched: bool,
    traffic: Option<(Traffic, Option<Traffic>)>,
    /// The oldest sample kept of it (see [`Engine::traffic_since`]).
    first_sample: Option<DateTime<Utc>>,
    /// As read once for both the rollback target and the promotion plan.
    approvals: Result<Vec<crate::domain::Approval>, String>,
    rollback: Option<RollbackTarget>,
    /// The newest window that ended on it, as recorded.
    ended: Option<super::LastWindow>,
    /// Its deploy or rollback whose outcome nobody knows (see [`unsettled`]).
    unsettled: Option<String>,
}

/// A lock this very process holds (not another promoter's, nor one of
/// another container with this host name and pid).
fn is_mine(l: &LockInfo) -> bool {
    l.is_this_process()
}

/// How many of an environment's last deploys a status view reads: enough
/// to plan its rollback.
const ROLLBACK_HISTORY: usize = 50;

/// A stored monitoring window, typed; `None` for a verdict this version
/// does not know.
/// The window `m` records, once it ended with a verdict it can name.
fn ended_window(m: &crate::store::MonitorRecord) -> Option<super::LastWindow> {
    let verdict = WindowVerdict::parse(&m.verdict)?;
    if verdict == WindowVerdict::Monitoring {
        return None;
    }
    Some(super::LastWindow {
        version: m.version.clone(),
        started_at: m.started_at,
        finished_at: m.finished_at?,
        verdict,
        reason: m.reason.clone(),
    })
}

fn window_of(m: crate::store::MonitorRecord) -> Option<WindowRecord> {
    Some(WindowRecord {
        verdict: WindowVerdict::parse(&m.verdict)?,
        version: m.version,
        started_at: m.started_at,
        finished_at: m.finished_at,
        seq: m.seq,
    })
}

/// What the deploy lock `lock` on `env` is held for: the action of its
/// holder's started record that has no outcome yet (not one that reads
/// "unknown": its process is gone), the one the lock is linked to, or
/// for an unlinked lock one written right after the lock was taken
/// ([`LockInfo::guards`]; the last appended, when there are several). `None` —
/// read as a deploy — in the moment between the two, or for a lock whose
/// record is not among `unfinished`. Public for the store suite, which checks every
/// store's status reads against this very function.
pub fn lock_action(
    env: &str,
    lock: &LockInfo,
    unfinished: &[crate::store::Unfinished],
) -> Option<crate::domain::DeployKind> {
    unfinished
        .iter()
        .filter(|u| !u.unknown && u.env == env && u.actor == lock.holder && lock.guards(u.id, u.at))
        // The last in the store's order, not the latest-dated: two
        // machines of one holder date their records by their own clocks.
        .max_by_key(|u| u.id)
        .and_then(|u| match u.action {
            crate::domain::ActionKind::Promote => Some(crate::domain::DeployKind::Promote),
            crate::domain::ActionKind::Rollback => Some(crate::domain::DeployKind::Rollback),
            _ => None,
        })
}

/// The deploy or rollback of `env` whose outcome is not known — its
/// shipdeck killed outright or interrupted before the environment
/// reported it, so reconcile left it "unknown" — while no live lock
/// (`lock`, as read) runs it and no later deploy or rollback followed it:
/// what it was, what the environment reports now, and what to do. It may
/// still be under way in its backend (a webhook accepted, a pipeline
/// running): never read as idle and done. `None` when there is none (one
/// the environment confirmed is settled by reconcile before this reads).
pub(super) fn unsettled(
    env: &str,
    reports: Option<&Version>,
    unfinished: &[crate::store::Unfinished],
    lock: Option<&LockInfo>,
) -> Option<String> {
    unsettled_text(env, reports, unsettled_record(env, unfinished, lock)?)
}

/// The record [`unsettled`] speaks of.
fn unsettled_record<'a>(
    env: &str,
    unfinished: &'a [crate::store::Unfinished],
    lock: Option<&LockInfo>,
) -> Option<&'a crate::store::Unfinished> {
    unfinished
        .iter()
        .filter(|u| u.env == env && u.superseded_by.is_none())
        .filter(|u| !lock.is_some_and(|l| l.guards(u.id, u.at)))
        // The store's order, not the records' dates: two machines' clocks
        // differ.
        .max_by_key(|u| u.id)
}

/// What [`unsettled`] says of `u`.
fn unsettled_text(
    env: &str,
    reports: Option<&Version>,
    u: &crate::store::Unfinished,
) -> Option<String> {
    let (what, again) = match u.action {
        crate::domain::ActionKind::Promote => (
            "promotion",
            format!("`shipdeck promote {env}`, or `shipdeck rollback {env}`"),
        ),
        crate::domain::ActionKind::Rollback => {
            ("rollback", format!("`shipdeck rollback {env}` again"))
        }
        _ => return None,
    };
    let from = u
        .from_version
        .as_ref()
        .map(|v| format!(" (from {v})"))
        .unwrap_or_default();
    let now = match reports {
        Some(v) => format!("{env} reports {v}"),
        None => format!("{env}'s version cannot be read"),
    };
    Some(format!(
        "the {what} to {}{from} by {} at {} UTC has no outcome: the shipdeck running it stopped (killed outright, or interrupted) before {env} reported {}, and {now}; it may still be under way in the deploy backend, or never have started — check the backend, then {again}",
        u.version,
        crate::text::sanitize(&u.actor),
        u.at.format("%H:%M:%S"),
        u.version,
    ))
}

#[cfg(test)]
mod tests;

/// The schema a rollback left ahead of the code: the environment was
/// rolled back from a release whose migrations ran with its deploy (the
/// release promoting would ship again, whose migrations the repository
/// names), and a code rollback does not undo them. After the monitoring
/// window's own rollback of the demo's v1.8.0 the card read `v1.7.3 ⚠ db→`
/// ("the next release brings a migration") while 0003 was in the database.
pub fn schema_ahead(env: &EnvStatus) -> Option<String> {
    let d = env.last_deploy.as_ref()?;
    let from = d.from_version.as_ref()?;
    if d.kind != crate::domain::DeployKind::Rollback || env.version.as_ref() != Some(&d.version) {
        return None;
    }
    let p = env.promotion.as_ref().filter(|p| &p.version == from)?;
    let r = env.release.as_ref().filter(|r| r.migration_release)?;
    if r.migrations.is_empty() || p.current.as_ref() != Some(&d.version) {
        return None;
    }
    Some(format!(
        "{from}'s migrations ({}) ran before the rollback to {} and stay: the database is ahead of the code",
        r.migrations.join(", "),
        d.version
    ))
}
