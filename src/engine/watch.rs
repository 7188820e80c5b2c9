//! The monitoring window: baseline before the deploy, window after it, the
//! detector judging every step, and the rollback on a confirmed regression.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::clock;
use serde::Serialize;

use super::{Engine, EngineError, Event, EventSink, hostname};
use crate::backends::metrics::SeasonalReference;
use crate::domain::baseline::{BaselinePlan, incident_periods, plan_baseline};
use crate::domain::{ActionKind, DeployRecord, EnvState, Gate, Outcome, Version, WindowVerdict};
use crate::monitor::{Detector, DetectorConfig, Sample, Verdict, VerdictKind};
use crate::store::{LockInfo, MonitorRecord, NewAudit, StoreError};

mod record;
use record::{VerdictWrites, Written};

/// The key of an environment's monitoring claim among the store's locks
/// (environment names cannot contain `#`).
pub(super) fn watch_key(env: &str) -> String {
    format!("{env}#watch")
}

/// How long a watcher's claim lives without a heartbeat: a watcher on
/// another machine that died is seen gone after this (one on this machine
/// as soon as its process is gone).
fn claim_ttl(step: Duration) -> chrono::Duration {
    clock::delta(step.saturating_mul(3).max(Duration::from_secs(30)))
}

/// How a monitoring window ended.
#[derive(Clone, Debug, Serialize)]
pub struct WatchOutcome {
    pub env: String,
    pub version: Version,
    pub deploy_at: DateTime<Utc>,
    pub verdict: Verdict,
    /// What the baseline was ("baseline: 30m before 14:02:10 UTC, excluding …").
    pub baseline: String,
    /// The automatic rollback, when one ran: its record or why it failed.
    pub rolled_back: Option<DeployRecord>,
    pub rollback_error: Option<String>,
    /// Why the verdict (and what follows it) is not in the store: it
    /// was still unreachable when the window's retries ran out.
    pub unrecorded: Option<String>,
    /// Why the window judged without its claim: the store refused it for
    /// good mid-window (permission denied, a read-only store). Its verdict
    /// stands, but nothing was rolled back automatically (no lock).
    pub claim_refused: Option<String>,
}

/// The gate that refuses a second watcher of one deploy, and its wording.
const WATCHER_GATE: &str = "watcher";
const ALREADY_WATCHED_BY: &str = " is already watched by ";

/// The gate refusing a watch of `env` because `holder` watches it.
pub fn watcher_refusal(env: &str, holder: &str) -> Gate {
    Gate::block(
        WATCHER_GATE,
        false,
        format!("{env}{ALREADY_WATCHED_BY}{holder}"),
    )
}

impl Engine {
    /// The detector settings from `[monitor]`, with `window` overridden.
    pub fn detector_config(&self, window: Option<Duration>) -> DetectorConfig {
        self.inner.config.monitor.detector_config(window)
    }

    /// Samples of `env` in `(from, to]` with their times: from the
    /// source's history where it has one, else from the store.
    pub(super) async fn samples_at(
        &self,
        env: &str,
        label: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Sample)>, EngineError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let step = self.inner.config.metrics.step.0;
        if let Ok(sampler) = &self.inner.sampler
            && let Some(points) = sampler
                .source()
                .history(label, from, to, step)
                .await
                .map_err(EngineError::Metrics)?
        {
            return Ok(points
                .iter()
                .map(|p| {
                    (
                        p.at,
                        super::sampler::per_step(p.clone(), step).to_sample(p.at),
                    )
                })
                .collect());
        }
        Ok(self.inner.store.samples(env, from, to).await?)
    }

    /// The baseline before `deploy_at`, with known-bad periods (caught
    /// windows, the time until a rollback, a regression) left out and
    /// older clean data in their place.
    async fn baseline(
        &self,
        env: &str,
        label: &str,
        deploy_at: DateTime<Utc>,
        span: chrono::Duration,
    ) -> Result<(Vec<(DateTime<Utc>, Sample)>, BaselinePlan), EngineError> {
        self.baseline_timed(env, label, deploy_at, span, incident_periods)
            .await
    }

    /// [`Self::baseline`] leaving out the periods `bad` finds in the
    /// environment's history (`incident_periods`, or for the approval
    /// stage's verdict `caught_periods`).
    pub(super) async fn baseline_without(
        &self,
        env: &str,
        label: &str,
        deploy_at: DateTime<Utc>,
        span: chrono::Duration,
        bad: crate::domain::baseline::BadPeriods,
    ) -> Result<(Vec<Sample>, BaselinePlan), EngineError> {
        let (timed, plan) = self
            .baseline_timed(env, label, deploy_at, span, bad)
            .await?;
        Ok((timed.into_iter().map(|(_, s)| s).collect(), plan))
    }

    /// [`Self::baseline_without`] with the time each sample stands for
    /// (where the seasonal reference is looked up).
    async fn baseline_timed(
        &self,
        env: &str,
        label: &str,
        deploy_at: DateTime<Utc>,
        span: chrono::Duration,
        bad: crate::domain::baseline::BadPeriods,
    ) -> Result<(Vec<(DateTime<Utc>, Sample)>, BaselinePlan), EngineError> {
        let history = self.inner.store.recent_deploys(env, 100).await?;
        let caught = self.caught_versions(env).await?;
        let step = clock::delta(self.inner.config.metrics.step.0);
        let bad = bad(&history, &caught, Utc::now(), clock::times(step, 2));
        let lookback = clock::times(span, 4).min(chrono::Duration::hours(24));
        let plan = plan_baseline(deploy_at, span, lookback, &bad);
        let mut out = Vec::new();
        for r in &plan.ranges {
            for (at, mut s) in self.samples_at(env, label, r.from, r.to).await? {
                if let Some(t) = plan.place(at) {
                    s.t = t;
                    out.push((at, s));
                }
            }
        }
        out.sort_by(|a, b| a.1.t.total_cmp(&b.1.t));
        // Steps whose count was no number are gaps; they void the baseline
        // only when too few usable steps remain (the detector's minimum).
        let samples: Vec<Sample> = out.iter().map(|(_, s)| *s).collect();
        let cfg = self.detector_config(None);
        if let Err(why) = crate::monitor::baseline_gaps(&samples, &cfg) {
            return Err(EngineError::NoBaseline {
                env: env.to_string(),
                plan: plan.describe(),
                from: self
                    .inner
                    .sampler
                    .as_ref()
                    .map_or_else(|_| "the store".into(), |s| s.source().describe()),
                why,
            });
        }
        Ok((out, plan))
    }

    /// The seasonal reference of a window (Prometheus only: the same steps
    /// a day and a week earlier) over the baseline's ranges and the
    /// window, and the line saying what it was. A reference that cannot be
    /// read leaves the window without one (and says so); it never stops it.
    async fn seasonal(
        &self,
        label: &str,
        plan: &BaselinePlan,
        end: DateTime<Utc>,
    ) -> (Option<SeasonalReference>, Option<String>) {
        let Ok(sampler) = &self.inner.sampler else {
            return (None, None);
        };
        let mut ranges: Vec<(DateTime<Utc>, DateTime<Utc>)> =
            plan.ranges.iter().map(|r| (r.from, r.to)).collect();
        ranges.push((plan.deploy_at, end));
        let step = self.inner.config.metrics.step.0;
        match sampler
            .source()
            .seasonal_reference(label, &ranges, step)
            .await
        {
            Ok(Some(r)) => {
                let note = r.describe();
                (Some(r).filter(|r| !r.offsets.is_empty()), Some(note))
            }
            Ok(None) => (None, None),
            Err(e) => {
                tracing::warn!(label, "monitoring window: no seasonal reference ({e})");
                (
                    None,
                    Some(format!("seasonal reference: none (Prometheus failed: {e})")),
                )
            }
        }
    }

    /// Who watches `env` right now (a live owner of its monitoring claim),
    /// as "alice (pid 4242 on build-7)".
    pub async fn watcher(&self, env: &str) -> Option<String> {
        self.watch_claim(env, Utc::now())
            .await
            .map(|l| l.describe())
    }

    pub(super) async fn watch_claim(&self, env: &str, now: DateTime<Utc>) -> Option<LockInfo> {
        self.inner
            .store
            .lock_of(&watch_key(env), now)
            .await
            .ok()
            .flatten()
    }

    /// Who holds the window when `e` is the refusal of a watch because
    /// someone else watches already (one watcher per deploy): that is no
    /// failure, another watcher does the job.
    pub fn watched_elsewhere(e: &EngineError) -> Option<&str> {
        match e {
            EngineError::Refused { gate } if gate.name == WATCHER_GATE => gate
                .detail
                .split_once(ALREADY_WATCHED_BY)
                .map(|(_, holder)| holder),
            _ => None,
        }
    }

    /// Claim the monitoring window of `env` for this process: refused when
    /// someone else alive holds it (one watcher per deploy); within this
    /// process a newer window takes over from an older one.
    async fn claim_watch(&self, env: &str) -> Result<WatchClaim, EngineError> {
        let now = Utc::now();
        let step = self.inner.config.metrics.step.0;
        let lock = LockInfo {
            env: watch_key(env),
            holder: self.inner.actor.clone(),
            pid: std::process::id(),
            host: hostname(),
            acquired_at: now,
            expires_at: clock::after(now, claim_ttl(step)),
        };
        if let Err(held) = self.inner.store.try_lock(&lock).await? {
            let gate = watcher_refusal(env, &held.describe());
            return Err(self
                .refuse(ActionKind::Monitor, env, None, None, gate)
                .await);
        }
        let id = self
            .inner
            .next_watch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .watching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(env.to_string(), id);
        Ok(WatchClaim {
            engine: self.clone(),
            env: env.to_string(),
            id,
            lock,
            opened: None,
            finished: false,
        })
    }

    /// Run the monitoring window of `env`: from its last recorded deploy if
    /// that is within the window, else from now (a deploy made elsewhere).
    /// On a regression it rolls back at once when `auto_rollback` is set.
    pub async fn watch(
        &self,
        env: &str,
        window: Option<Duration>,
        events: Option<EventSink>,
    ) -> Result<WatchOutcome, EngineError> {
        let idx = self.index(env)?;
        let cfg_env = &self.inner.config.environments[idx];
        let label = cfg_env.label().to_string();
        let sampler = match &self.inner.sampler {
            Ok(s) => s,
            Err(e) => return Err(EngineError::Metrics(e.clone())),
        };
        let dcfg = self.detector_config(window);
        let window_d = clock::secs_f64(dcfg.window_s);
        let baseline_d = clock::secs_f64(dcfg.baseline_s);
        let version = self.inner.envs[idx].strategy.read_version().await?;
        let mut claim = self.claim_watch(env).await?;
        let now = Utc::now();
        let last = self.inner.store.recent_deploys(env, 1).await?.pop();
        let deploy_at = match &last {
            Some(d) if d.version == version && now - d.at < window_d => d.at,
            _ => now,
        };
        let end = clock::after(deploy_at, window_d);
        let emit = |ev: Event| {
            if let Some(tx) = &events {
                let _ = tx.send(ev);
            }
        };

        let mut detector = Detector::new(dcfg.clone());
        let (baseline, plan) = self.baseline(env, &label, deploy_at, baseline_d).await?;
        let (seasonal, seasonal_note) = self.seasonal(&label, &plan, end).await;
        let reference =
            |at: DateTime<Utc>, t: f64| seasonal.as_ref().and_then(|r| r.sample_at(at, t));
        for (at, s) in &baseline {
            detector.push_with_reference(*s, reference(*at, s.t));
        }
        let baseline: Vec<Sample> = baseline.into_iter().map(|(_, s)| s).collect();
        let mut baseline_note = format!(
            "{} ({} step{})",
            plan.describe(),
            baseline.len(),
            if baseline.len() == 1 { "" } else { "s" }
        );
        if let Ok(Some(note)) = crate::monitor::baseline_gaps(&baseline, &dcfg) {
            baseline_note = format!("{baseline_note}; {note}");
        }
        if let Some(note) = crate::monitor::latency_gap_note(&baseline, dcfg.min_baseline_steps) {
            baseline_note = format!("{baseline_note}; {note}");
        }
        if let Some(note) = seasonal_note {
            baseline_note = format!("{baseline_note}; {note}");
        }
        // The known-good version before the one judged, read while the
        // store answers (before the window's record: once that is written,
        // the window is open and an outage does not end it): a regression found while it is unreachable rolls
        // back to it without the store (see `rollback_unreachable`). Not
        // for a canary: its rollback takes the canary's traffic away,
        // which needs the weight the store recorded.
        let fallback = if self.inner.config.monitor.auto_rollback
            && !matches!(
                self.inner.envs[idx].strategy,
                super::strategy::Strategy::Canary { .. }
            ) {
            match self.rollback_plan_from(env, &version, None).await {
                Ok(Ok(plan)) => Some(plan.to),
                _ => None,
            }
        } else {
            None
        };
        let started = self
            .inner
            .store
            .audit_start(&NewAudit {
                at: now,
                actor: &self.inner.actor,
                action: ActionKind::Monitor,
                env,
                version: Some(&version),
                from_version: last.as_ref().and_then(|d| d.from_version.as_ref()),
                outcome: Outcome::Started,
                detail: &format!(
                    "monitoring window of {} for {version}; {baseline_note}",
                    crate::domain::HumanDuration(Duration::from_secs_f64(dcfg.window_s)),
                ),
            })
            .await?;
        claim.opened = Some((started, version.clone(), deploy_at));
        // From here the window is open: an outage of the store (the server
        // gone a moment after the record above) does not end it — the
        // metrics and the detector need no store, and the verdict is
        // recorded when it is back. A refusal that waiting will not heal
        // still does.
        let opening = self
            .inner
            .store
            .record_monitor(&MonitorRecord {
                env: env.to_string(),
                version: version.clone(),
                started_at: deploy_at,
                finished_at: None,
                verdict: WindowVerdict::Monitoring.as_str().into(),
                metric: None,
                reason: format!("window ends {}", end.format("%H:%M:%S UTC")),
            })
            .await;
        let mut opened_down = match opening {
            Ok(()) => None,
            Err(e) if e.heals_by_waiting() => {
                tracing::warn!(
                    env,
                    "monitoring window: store unreachable at its opening ({e})"
                );
                let now = Utc::now();
                Some((now, now - chrono::Duration::seconds(60)))
            }
            Err(e) => return Err(e.into()),
        };
        self.set_activity(env, Some(EnvState::Monitoring));
        emit(Event::MonitorStarted {
            env: env.to_string(),
            version: version.clone(),
            deploy_at,
            window_s: dcfg.window_s,
            baseline: baseline.clone(),
            baseline_note: baseline_note.clone(),
        });
        // Window steps already past (a console started mid-window).
        let past = match self.samples_at(env, &label, deploy_at, now.min(end)).await {
            Ok(past) => past,
            Err(EngineError::Store(e)) if e.heals_by_waiting() => {
                tracing::warn!(
                    env,
                    "monitoring window: past steps unread, store unreachable ({e})"
                );
                let now = Utc::now();
                opened_down.get_or_insert((now, now - chrono::Duration::seconds(60)));
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let mut last_t = 0.0_f64;
        for (at, mut s) in past {
            s.t = (at - deploy_at).num_milliseconds() as f64 / 1000.0;
            if s.t > 0.0 {
                last_t = s.t;
                detector.push_with_reference(s, reference(at, s.t));
            }
        }

        let labels = vec![(label.clone(), env.to_string())];
        let step = self.inner.config.metrics.step.0;
        let step_d = clock::delta(step);
        // Check twice a step so that no point of the shared sampler is missed.
        let mut ticker = tokio::time::interval((step / 2).max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut consumed = clock::after(deploy_at, clock::secs_f64(last_t));
        let mut last_new = Utc::now();
        // The metrics source's last failure, named in a verdict that could
        // not be reached (rather than a bare "not enough data").
        let mut source_error: Option<String> = None;
        // Since when the store has been unreachable, if it is: the window
        // goes on without it (the metrics and the detector need no store).
        let mut store_down: Option<(DateTime<Utc>, DateTime<Utc>)> = opened_down;
        // The store's refusal of the claim, once it refused it for good:
        // the window judges on without it (and without auto-rollback).
        let mut claim_refused: Option<StoreError> = None;
        let mut verdict = loop {
            if detector.verdict().kind == VerdictKind::Regression || Utc::now() >= end {
                break detector.verdict().clone();
            }
            // The window ends on time, whatever the step: a tick due after
            // the end (a 1 h step, a 5 s window) is not waited for.
            let left = (end - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if tokio::time::timeout(left + Duration::from_millis(10), ticker.tick())
                .await
                .is_err()
            {
                continue;
            }
            let kept = match claim_refused {
                Some(_) => Ok(()),
                None => claim.keep_alive().await,
            };
            match kept {
                Ok(()) if claim_refused.is_some() => {}
                Ok(()) => {
                    if let Some((since, _)) = store_down.take() {
                        emit(Event::StoreOutage {
                            env: env.to_string(),
                            detail: format!(
                                "{env}: the store is back after {}; the monitoring window goes on",
                                outage_for(since)
                            ),
                        });
                    }
                }
                // Not an outage: a store that refuses the claim for good
                // (permission denied, a newer schema, a read-only or
                // replaced file). Said at once, as what it is; the window
                // still judges to its end (the metrics, the detector and
                // [[notify]] need no store) so that a regression is told,
                // but it rolls nothing back (no lock without the store).
                Err(EngineError::Store(e)) if !e.heals_by_waiting() => {
                    let t = (Utc::now() - deploy_at).num_milliseconds() as f64 / 1000.0;
                    let detail = format!(
                        "{env}: at t=+{t:.0}s {}: the monitoring window judges on to its end without its claim; a regression will be told and notified but not rolled back automatically",
                        refused_for_good(&e)
                    );
                    tracing::error!(env, "monitoring window: {detail}");
                    emit(Event::StoreOutage {
                        env: env.to_string(),
                        detail,
                    });
                    store_down = None;
                    claim_refused = Some(e);
                }
                Err(EngineError::Store(e)) => {
                    let how = match e {
                        StoreError::Unreachable { .. } => "is unreachable",
                        _ => "fails",
                    };
                    let now = Utc::now();
                    let (since, said) =
                        store_down.get_or_insert((now, now - chrono::Duration::seconds(60)));
                    // Said at once, then every 10 s while it lasts.
                    if now - *said >= chrono::Duration::seconds(10) {
                        *said = now;
                        emit(Event::StoreOutage {
                            env: env.to_string(),
                            detail: format!(
                                "{env}: the store {how} for {} (since {}): the monitoring window goes on and records its verdict when the store is back ({e})",
                                outage_for(*since),
                                since.format("%H:%M:%S UTC")
                            ),
                        });
                    }
                    tracing::warn!(env, "monitoring window: store unreachable ({e})");
                }
                Err(e) => return Err(e),
            }
            let reading = sampler.read(&labels, &self.inner.store).await;
            if let Some((_, why)) = reading.error_for(&label) {
                source_error = Some(why.clone());
            }
            let fresh = sampler.points_since(&label, consumed).await;
            let mut samples: Vec<(Sample, Option<Sample>)> = fresh
                .iter()
                .filter(|p| p.at > deploy_at)
                .map(|p| {
                    let s = p.to_sample(deploy_at);
                    (s, reference(p.at, s.t))
                })
                .collect();
            if let Some(p) = fresh.last() {
                consumed = p.at;
                last_new = Utc::now();
            } else if Utc::now() - last_new > step_d * 2 {
                // The source failed or has nothing for this environment: a
                // gap, which the detector counts as missing data, never as health.
                if let Some((_, why)) = reading.error_for(&label) {
                    tracing::warn!(env, "monitoring window: no sample ({why})");
                }
                let now = Utc::now();
                let gap = Sample {
                    t: (now - deploy_at).num_milliseconds() as f64 / 1000.0,
                    requests: f64::NAN,
                    errors: f64::NAN,
                    p50_ms: None,
                    p95_ms: None,
                    p99_ms: None,
                };
                samples.push((gap, None));
                consumed = consumed.max(now);
                last_new = now;
            }
            for (sample, reference) in samples {
                let verdict = detector.push_with_reference(sample, reference).clone();
                emit(Event::MonitorSample {
                    env: env.to_string(),
                    sample,
                    verdict,
                    baseline: detector.baseline(),
                });
            }
        };
        if matches!(
            verdict.kind,
            VerdictKind::InsufficientData | VerdictKind::Collecting
        ) && let Some(why) = &source_error
        {
            verdict.reason = format!("{}; the metrics source failed: {why}", verdict.reason);
        }
        let finished = Utc::now();
        let regression = verdict.kind == VerdictKind::Regression;
        let record = MonitorRecord {
            env: env.to_string(),
            version: version.clone(),
            started_at: deploy_at,
            finished_at: Some(finished),
            verdict: match verdict.kind {
                VerdictKind::Regression => WindowVerdict::Regression,
                VerdictKind::Healthy => WindowVerdict::Healthy,
                VerdictKind::InsufficientData | VerdictKind::Collecting => {
                    WindowVerdict::InsufficientData
                }
            }
            .as_str()
            .into(),
            metric: verdict.metric.map(|m| m.as_str().to_string()),
            reason: format!("{}; {baseline_note}", verdict.reason),
        };
        let audit_outcome = match verdict.kind {
            VerdictKind::Healthy => Outcome::Succeeded,
            VerdictKind::Regression => Outcome::Failed,
            _ => Outcome::Unknown,
        };
        let audit_detail = format!(
            "{}: {}; {baseline_note}",
            verdict_word(&verdict),
            verdict.reason
        );
        // A release the window caught is blocked until someone records a
        // new Go for it: roll back, and it must not be re-promoted by reflex.
        let no_go = regression.then(|| crate::domain::Approval {
            env: env.to_string(),
            version: version.clone(),
            decision: crate::domain::Decision::NoGo,
            actor: format!("{} (monitoring window)", self.inner.actor),
            at: Utc::now(),
            note: Some(format!("regression: {}", verdict.reason)),
        });
        let mut verdict_writes = VerdictWrites {
            record: &record,
            started,
            finished,
            outcome: audit_outcome,
            detail: &audit_detail,
            no_go: no_go.as_ref(),
            rollback: None,
        };
        let mut written = Written::default();
        // A regression rolls back before any retry: its failed write is
        // settled (retried or said) after the rollback, with the rollback's
        // own records.
        let mut failed = self
            .write_verdict(&verdict_writes, &mut written)
            .await
            .err();
        let mut unrecorded = None;
        if !regression {
            unrecorded = self
                .settle_verdict(env, &verdict_writes, &mut written, failed.take(), &emit)
                .await;
        }
        if regression {
            self.notify(
                crate::config::NotifyEvent::Regression,
                env,
                Some(&version),
                None,
                "regression",
                &verdict.reason,
            );
        }
        // Judged: the claim ends here (the rollback below takes the deploy lock).
        claim.finished = true;
        drop(claim);
        self.set_activity(env, regression.then_some(EnvState::Regression));
        emit(Event::MonitorFinished {
            env: env.to_string(),
            verdict: verdict.clone(),
        });
        let mut outcome = WatchOutcome {
            env: env.to_string(),
            version,
            deploy_at,
            verdict,
            baseline: baseline_note,
            rolled_back: None,
            rollback_error: None,
            unrecorded: None,
            claim_refused: claim_refused.as_ref().map(refused_for_good),
        };
        // A rollback that ran but whose record the store would not take.
        let mut rollback_unrecorded: Option<String> = None;
        // Release safety before bookkeeping: a regression rolls back even
        // when its verdict is not recorded yet, and is recorded after.
        if regression
            && self.inner.config.monitor.auto_rollback
            && let Some(e) = &claim_refused
        {
            // No claim, no lock: a rollback now could race a deploy by
            // someone the store does not refuse.
            outcome.rollback_error = Some(format!(
                "not rolled back automatically: {}; roll back by hand (`shipdeck rollback {env}` once the store is fixed, or through the deploy system itself)",
                refused_for_good(e)
            ));
        } else if regression && self.inner.config.monitor.auto_rollback {
            self.set_activity(env, None);
            let tried = self.rollback(env, None, events.clone()).await;
            // Only a store that cannot be reached: a refusal, a held lock or
            // a tampered chain still stops the rollback, as it says.
            let res = match (tried, &fallback) {
                (Err(EngineError::Store(e @ StoreError::Unreachable { .. })), Some(to))
                    if e.heals_by_waiting() =>
                {
                    let offline = self
                        .rollback_unreachable(idx, to, &outcome.version, &events)
                        .await;
                    let res = offline.result.clone().map_err(|(_, _, e)| e);
                    verdict_writes.rollback = Some(offline);
                    res
                }
                // A store that refuses for good: the rollback needs the
                // deploy lock and its audit record there, and a rollback
                // without them could race a deploy others can still make.
                // (A store error after acting is `Unrecorded`, below: these
                // are refusals before anything was rolled back.)
                (Err(EngineError::Store(e)), _) if !e.heals_by_waiting() => Err(format!(
                    "not rolled back: {}; roll back once the store is fixed (`shipdeck rollback {env}`) or through the deploy system itself",
                    refused_for_good(&e)
                )),
                // Rolled back (a canary's weight is 0, the stable track
                // redeployed), but the store would not take its record.
                (
                    Err(EngineError::Unrecorded {
                        version: to, cause, ..
                    }),
                    _,
                ) => {
                    rollback_unrecorded = Some(format!(
                        "the rollback to {to} ran, but the store would not take its record: {cause}"
                    ));
                    Ok(DeployRecord {
                        env: env.to_string(),
                        version: to,
                        from_version: Some(outcome.version.clone()),
                        at: Utc::now(),
                        actor: self.inner.actor.clone(),
                        kind: crate::domain::DeployKind::Rollback,
                        url: None,
                    })
                }
                (r, _) => r.map_err(|e| e.to_string()),
            };
            match res {
                Ok(rec) => outcome.rolled_back = Some(rec),
                Err(e) => {
                    self.set_activity(env, Some(EnvState::Regression));
                    outcome.rollback_error = Some(e);
                }
            }
        }
        // A rollback run while the store was unreachable is recorded after
        // the verdict, through the same retries: whether to retry is
        // decided by that write's own error (the verdict may have gone in
        // before the store dropped).
        if regression {
            if verdict_writes.rollback.is_some() && failed.is_none() {
                failed = self
                    .write_verdict(&verdict_writes, &mut written)
                    .await
                    .err();
            }
            unrecorded = self
                .settle_verdict(env, &verdict_writes, &mut written, failed, &emit)
                .await;
        }
        outcome.unrecorded = match (unrecorded, rollback_unrecorded) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        Ok(outcome)
    }
}

/// A store error waiting will not heal, in words that say so.
fn refused_for_good(e: &StoreError) -> String {
    format!("the store refuses it, and waiting will not heal that: {e}")
}

/// "14s", "2m 5s": how long the store has been away.
fn outage_for(since: DateTime<Utc>) -> String {
    let secs = (Utc::now() - since).num_seconds().max(0) as u64;
    crate::domain::HumanDuration(Duration::from_secs(secs)).to_string()
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v.kind {
        VerdictKind::Regression => "regression",
        VerdictKind::Healthy => "healthy",
        VerdictKind::InsufficientData => "insufficient data",
        VerdictKind::Collecting => "still collecting",
    }
}

/// This process's claim on an environment's monitoring window. It is kept
/// alive (a heartbeat renews its expiry) while the window runs; dropping it
/// unfinished — a signal, a cancelled task, an error — ends the window's
/// record as interrupted and the audit record as unknown, and either way
/// releases the claim, so that `status` never shows a window nobody watches.
struct WatchClaim {
    engine: Engine,
    env: String,
    id: u64,
    lock: LockInfo,
    /// The audit record, version and deploy time of the opened window.
    opened: Option<(i64, Version, DateTime<Utc>)>,
    finished: bool,
}

impl WatchClaim {
    /// Still ours in this process (no newer window took over)?
    fn current(&self) -> bool {
        self.engine
            .inner
            .watching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.env)
            == Some(&self.id)
    }

    /// Renew the claim's expiry; fails when another window took over.
    async fn keep_alive(&mut self) -> Result<(), EngineError> {
        if !self.current() {
            return Err(EngineError::Refused {
                gate: Gate::block(
                    "watcher",
                    false,
                    format!("a newer monitoring window of {} took over", self.env),
                ),
            });
        }
        let now = Utc::now();
        self.lock.expires_at =
            clock::after(now, claim_ttl(self.engine.inner.config.metrics.step.0));
        // Dated when sent: the lifetime asked for is `expires_at -
        // acquired_at` (see `hold_lock`).
        self.lock.acquired_at = now;
        if let Err(held) = self.engine.inner.store.try_lock(&self.lock).await? {
            return Err(EngineError::Refused {
                gate: Gate::block(
                    "watcher",
                    false,
                    format!(
                        "{} is watched by {} now (this window's claim lapsed)",
                        self.env,
                        held.describe()
                    ),
                ),
            });
        }
        Ok(())
    }
}

impl Drop for WatchClaim {
    fn drop(&mut self) {
        let mine = self.current();
        if mine {
            self.engine
                .inner
                .watching
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.env);
        }
        let opened = self.opened.take();
        let interrupted = !self.finished;
        if interrupted && opened.is_some() && mine {
            self.engine.set_activity(&self.env, None);
        }
        let (env, key, pid, host) = (
            self.env.clone(),
            self.lock.env.clone(),
            self.lock.pid,
            self.lock.host.clone(),
        );
        self.engine.inner.store.detach(move |s| {
            if interrupted && let Some((started, version, deploy_at)) = opened {
                let now = Utc::now();
                let why = match mine {
                    true => "interrupted: the window's watcher stopped before a verdict",
                    false => "ended: a newer window of this process took over",
                }
                .to_string();
                // A newer window took over: its record is the live one.
                if mine
                    && let Err(e) = s.record_monitor(&MonitorRecord {
                        env: env.clone(),
                        version,
                        started_at: deploy_at,
                        finished_at: Some(now),
                        verdict: WindowVerdict::Interrupted.as_str().into(),
                        metric: None,
                        reason: why.clone(),
                    })
                {
                    tracing::error!("cannot end the monitoring window of {env}: {e}");
                }
                if let Err(e) = s.audit_finish(started, now, Outcome::Unknown, &why) {
                    tracing::error!("cannot record the outcome of audit #{started}: {e}");
                }
            }
            if mine {
                let _ = s.unlock(&key, pid, &host);
            }
        });
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "watch_offline_tests.rs"]
mod offline_tests;
