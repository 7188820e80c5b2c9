//! The monitoring window: baseline before the deploy, window after it, the
//! detector judging every step, and the rollback on a confirmed regression.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::clock;
use serde::Serialize;

use super::{Engine, EngineError, Event, EventSink, hostname};
use crate::backends::metrics::SeasonalReference;
use crate::domain::baseline::{BaselinePlan, incident_periods, lookback, plan_baseline};
use crate::domain::{ActionKind, DeployRecord, Gate, Outcome, Version, WindowVerdict};
use crate::monitor::{DetectorConfig, Sample, Verdict, VerdictKind};
use crate::store::{LockInfo, MonitorRecord, StoreError};

mod finish;
mod open;
mod record;
mod respond;
mod sampling;

pub(super) use crate::store::watch_key;

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
    /// Why the window stopped judging before its end: the environment no
    /// longer runs the version it watched (recorded as interrupted, with
    /// no verdict, No-Go or rollback for that version).
    pub superseded: Option<String>,
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
        Ok(self
            .samples_or_no_series(env, label, from, to)
            .await?
            .unwrap_or_default())
    }

    /// [`Self::samples_at`], or the source's [`MetricsError::NoSeries`]
    /// when it has no series of this label in the range, others beside
    /// (logged): no steps there, which the caller may name.
    ///
    /// [`MetricsError::NoSeries`]: crate::backends::metrics::MetricsError::NoSeries
    async fn samples_or_no_series(
        &self,
        env: &str,
        label: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<
        Result<Vec<(DateTime<Utc>, Sample)>, crate::backends::metrics::MetricsError>,
        EngineError,
    > {
        if to <= from {
            return Ok(Ok(Vec::new()));
        }
        let step = self.inner.config.metrics.step.0;
        if let Ok(sampler) = &self.inner.sampler
            && let Some(points) = match sampler.source().history(label, from, to, step).await {
                Err(e @ crate::backends::metrics::MetricsError::NoSeries { .. }) => {
                    tracing::warn!(env, "no metrics from {from} to {to}: {e}");
                    return Ok(Err(e));
                }
                other => other.map_err(EngineError::Metrics)?,
            }
        {
            return Ok(Ok(points
                .iter()
                .map(|p| {
                    (
                        p.at,
                        super::sampler::per_step(p.clone(), step).to_sample(p.at),
                    )
                })
                .collect()));
        }
        Ok(Ok(self.inner.store.samples(env, from, to).await?))
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
        let plan = plan_baseline(deploy_at, span, lookback(span), &bad);
        let mut out = Vec::new();
        // The first range the source had no series of this label for,
        // others beside.
        let mut no_series = None;
        for r in &plan.ranges {
            let samples = match self.samples_or_no_series(env, label, r.from, r.to).await? {
                Ok(samples) => samples,
                Err(e) => {
                    no_series.get_or_insert(e);
                    Vec::new()
                }
            };
            for (at, mut s) in samples {
                if let Some(t) = plan.place(at) {
                    s.t = t;
                    out.push((at, s));
                }
            }
        }
        out.sort_by(|a, b| a.1.t.total_cmp(&b.1.t));
        let no_baseline = |why: String, fix| EngineError::NoBaseline {
            env: env.to_string(),
            plan: plan.describe(),
            from: self
                .inner
                .sampler
                .as_ref()
                .map_or_else(|_| "the store".into(), |s| s.source().describe()),
            why,
            fix,
        };
        // Not one step of the label over the whole baseline, while the
        // source has series of others: a label that does not match (a
        // mistyped metrics_label), said now rather than when the window
        // ends. (A source with no series at all, a Prometheus that has not
        // scraped yet, names nothing: its window's polls name the label.)
        if out.is_empty()
            && let Some(e) = no_series
        {
            return Err(no_baseline(
                format!("not one step has the environment's metrics: {e}"),
                crate::backends::metrics::MetricsFix::Label,
            ));
        }
        // Steps whose count was no number are gaps; they void the baseline
        // only when too few usable steps remain (the detector's minimum).
        let samples: Vec<Sample> = out.iter().map(|(_, s)| *s).collect();
        let cfg = self.detector_config(None);
        if let Err(why) = crate::monitor::baseline_gaps(&samples, &cfg) {
            return Err(no_baseline(why, crate::backends::metrics::MetricsFix::Data));
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
            pid_space: None,
            env: watch_key(env),
            holder: self.inner.actor.clone(),
            pid: std::process::id(),
            host: hostname(),
            acquired_at: now,
            audit_id: None,
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
        let sampler = match &self.inner.sampler {
            Ok(s) => s,
            Err(e) => return Err(EngineError::Metrics(e.clone())),
        };
        let emit = |ev: Event| {
            if let Some(tx) = &events {
                let _ = tx.send(ev);
            }
        };
        // Each phase boxed: one future nesting them all is too deep for
        // the compiler's layout queries in the callers' async blocks.
        let mut opened = Box::pin(self.open_window(env, idx, window, &emit)).await?;
        let sampled = Box::pin(self.sample_window(env, sampler, &mut opened, &emit)).await?;
        Ok(Box::pin(self.finish_window(env, opened, sampled, &events, &emit)).await)
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

/// "regression: error rate …": the verdict's word and its reason, the word
/// once when the reason starts with it already ("insufficient data: the
/// baseline has …").
fn verdict_said(v: &Verdict) -> String {
    let word = verdict_word(v);
    match v.reason.strip_prefix(word) {
        Some(rest) if rest.starts_with(':') => v.reason.clone(),
        _ => format!("{word}: {}", v.reason),
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
                        seq: Some(started),
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
#[path = "watch_tests/mod.rs"]
mod tests;

#[cfg(test)]
#[path = "watch_offline_tests.rs"]
mod offline_tests;
