//! The sampling loop of a monitoring window: a step at a time until a
//! regression or the window's end, the claim kept alive through a store
//! outage, a missing step counted as a gap.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::open::{OpenWindow, reference};
use super::{outage_for, refused_for_good};
use crate::domain::clock;
use crate::engine::{Engine, EngineError, Event, Sampler};
use crate::monitor::stats::fmt_steps;
use crate::monitor::{Sample, Verdict, VerdictKind};
use crate::store::StoreError;

/// How the sampling loop ended.
pub(super) struct Sampled {
    pub(super) verdict: Verdict,
    /// The store's refusal of the claim, once it refused it for good.
    pub(super) claim_refused: Option<StoreError>,
    /// Why the window stopped judging: the environment no longer runs
    /// the version it watches ("production now runs v1.7.3, not v1.8.0: …").
    pub(super) superseded: Option<String>,
}

impl Engine {
    /// Judge the window's steps until a regression or its end.
    pub(super) async fn sample_window(
        &self,
        env: &str,
        sampler: &Sampler,
        w: &mut OpenWindow,
        emit: &(dyn Fn(Event) + Sync),
    ) -> Result<Sampled, EngineError> {
        let (label, deploy_at, end) = (w.label.clone(), w.deploy_at, w.end);
        // A notice about the window: logged, and shown where the window is.
        let warn = |detail: String| {
            tracing::warn!(env, "monitoring window: {detail}");
            emit(Event::WindowNotice {
                env: env.to_string(),
                detail,
            });
        };
        let labels = vec![(label.clone(), env.to_string())];
        let step = self.inner.config.metrics.step.0;
        let step_d = clock::delta(step);
        // Check twice a step so that no point of the shared sampler is missed.
        let mut ticker = tokio::time::interval((step / 2).max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut consumed = clock::after(deploy_at, clock::secs_f64(w.last_t));
        let mut last_new = Utc::now();
        // The metrics source's last failure, named in a verdict that could
        // not be reached (rather than a bare "not enough data").
        let mut source_error: Option<String> = None;
        // Whether the source's lack of the label's series was said.
        let mut said_unmatched = false;
        // Since when the store has been unreachable, if it is: the window
        // goes on without it (the metrics and the detector need no store).
        let mut store_down: Option<(DateTime<Utc>, DateTime<Utc>)> = w.opened_down;
        // The store's refusal of the claim, once it refused it for good:
        // the window judges on without it (and without auto-rollback).
        let mut claim_refused: Option<StoreError> = None;
        // A canary with traffic: the window's steps carry its track. The
        // environment's own series (both tracks together) is still judged
        // while the canary's track is gone — a failing canary shows in it,
        // diluted by its weight — but a window that ends healthy after
        // `gap_steps` such steps in a row did not judge the canary's own
        // traffic: insufficient data, never health on the aggregate alone.
        // Its weight as recorded when the window starts, then as this
        // process changes it (its own rollback sets it to 0), or — another
        // process's flow — as the store records it, read once a step. Unknown
        // (`None`) while the store that records it cannot be read: learnt
        // once it answers again, so that an outage at the opening does not
        // leave the check off for the whole window.
        let is_canary = matches!(
            self.inner.envs[w.idx].strategy,
            crate::engine::strategy::Strategy::Canary { .. }
        );
        let mut canary_weight = match is_canary {
            true => self.canary_weight_now(env).await,
            false => Some(0),
        };
        // Whether this process's own canary flow gave the weight.
        let mut own_canary = self.canary_state(env).is_some();
        let mut tracks_consumed = consumed;
        // Track steps in a row without the canary's data: a new series
        // (a weight just set) has none for one step, so two make it gone.
        let mut canary_missing = 0_usize;
        // Why the canary's metrics are gone, while they are, and the last
        // such cause (named in a verdict that could not be reached).
        let mut canary_gone: Option<String> = None;
        let mut canary_error: Option<String> = None;
        // Window steps judged while the canary's metrics were gone: in a
        // row now, and the longest run.
        let (mut canary_run, mut canary_most) = (0_usize, 0_usize);
        let gap_steps = w.detector.config().gap_steps.max(1);
        // Window steps the detector was given (the past ones a console
        // started mid-window read included): none at the end is a window
        // shorter than a step, which is said as such.
        let mut window_steps = usize::from(w.last_t > 0.0);
        let window_len = end - deploy_at;
        // What the environment runs is read once a step, with the metrics'
        // poll: another version there ends the window (it would judge a
        // version no longer running). A read that fails is no change.
        let (idx, version) = (w.idx, w.version.clone());
        let mut version_due = Utc::now();
        let mut superseded: Option<String> = None;
        let detector = &mut w.detector;
        let seasonal = &w.seasonal;
        let claim = &mut w.claim;
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
            if Utc::now() >= version_due {
                version_due = Utc::now() + step_d;
                // Another process's canary flow (a second console,
                // `shipdeck watch`) changes the weight in the store only:
                // it is read again with the version, once a step, so that
                // the flow's end (weight 0, the stable track on the
                // version) or its rollback (weight 0, the canary left on
                // the version) is seen. A read that fails keeps the last
                // known weight.
                if is_canary
                    && !own_canary
                    && store_down.is_none()
                    && let Some(now) = self.recorded_weight_within(env, step).await
                {
                    if canary_weight.is_some_and(|w| w != now) {
                        tracing::info!(
                            env,
                            "monitoring window: the canary's weight is {now}% now (recorded by another process's canary flow)"
                        );
                    }
                    canary_weight = Some(now);
                }
                if let Some(line) = self
                    .runs_another(env, idx, &version, step, canary_weight)
                    .await
                {
                    superseded = Some(line);
                    break detector.verdict().clone();
                }
            }
            let reading = sampler.read(&labels, &self.inner.store).await;
            if let Some((_, why)) = reading.error_for(&label) {
                source_error = Some(why.clone());
                // A label the source has no series of, others beside (a
                // mistyped metrics_label): said at once, not only in the
                // verdict when the window ends; once per window.
                if reading.unmatched.contains(&label) && !said_unmatched {
                    said_unmatched = true;
                    let detail = format!(
                        "{env}: {why}; the window goes on, counting every step without the environment's metrics as missing data (a window without them ends as insufficient data)"
                    );
                    warn(detail);
                }
            }
            if canary_weight.is_none() && store_down.is_none() {
                canary_weight = self.canary_weight_now(env).await;
                if let Some(weight) = canary_weight.filter(|w| *w > 0) {
                    tracing::info!(
                        env,
                        "monitoring window: the canary's weight, unknown while the store was away, is {weight}%"
                    );
                }
            }
            match self.canary_state(env) {
                Some(s) => {
                    canary_weight = Some(s.weight);
                    own_canary = true;
                }
                // This process's canary flow ended (its weight back to
                // 0, or left to a rollback): the weight is the store's
                // again, learnt at the next step rather than kept.
                None if own_canary => {
                    own_canary = false;
                    canary_weight = self.canary_weight_now(env).await;
                }
                None => {}
            }
            let weight = canary_weight.unwrap_or(0);
            let gone = match weight {
                0 => None,
                _ => match reading.track_error_for(&label) {
                    Some((_, why)) => Some(format!("its track read failed: {why}")),
                    None => {
                        for ts in sampler.track_steps_since(&label, tracks_consumed).await {
                            tracks_consumed = ts.at;
                            canary_missing = match ts.canary {
                                Some(_) => 0,
                                None => canary_missing + 1,
                            };
                        }
                        (canary_missing >= 2).then(|| "its track has no data".to_string())
                    }
                },
            };
            match (&gone, &canary_gone) {
                (Some(why), None) => {
                    let detail = format!(
                        "{env}: the canary ({weight}% of the traffic) has no metrics: {why}; the window judges the environment's series as a whole meanwhile, and without the canary's own metrics for {} in a row it cannot call the release healthy (insufficient data)",
                        fmt_steps(gap_steps)
                    );
                    warn(detail);
                    canary_error = gone.clone();
                }
                (None, Some(_)) if weight > 0 => emit(Event::WindowNotice {
                    env: env.to_string(),
                    detail: format!(
                        "{env}: the canary's metrics are back; the window judges its steps again"
                    ),
                }),
                // Its weight back at 0 (ended or rolled back): no metrics are
                // expected of it now, and none came back.
                (None, Some(_)) => tracing::info!(
                    env,
                    "monitoring window: the canary's weight is 0%: its metrics are no longer expected"
                ),
                _ => {}
            }
            canary_gone = gone;
            let fresh = sampler.points_since(&label, consumed).await;
            let mut samples: Vec<(Sample, Option<Sample>)> = fresh
                .iter()
                .filter(|p| p.at > deploy_at)
                .map(|p| {
                    let s = p.to_sample(deploy_at);
                    (s, reference(seasonal, p.at, s.t))
                })
                .collect();
            for (s, _) in &samples {
                if !s.requests.is_nan() {
                    canary_run = if canary_gone.is_some() {
                        canary_run + 1
                    } else {
                        0
                    };
                    canary_most = canary_most.max(canary_run);
                }
            }
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
                samples.push((
                    gap((now - deploy_at).num_milliseconds() as f64 / 1000.0),
                    None,
                ));
                consumed = consumed.max(now);
                last_new = now;
            }
            for (sample, reference) in samples {
                window_steps += usize::from(sample.t > 0.0);
                let verdict = detector.push_with_reference(sample, reference).clone();
                emit(Event::MonitorSample {
                    env: env.to_string(),
                    sample,
                    verdict,
                    baseline: detector.baseline(),
                });
            }
        };
        // A regression is recorded (a No-Go, perhaps a rollback) against
        // the version judged: checked to run still, whatever the last read.
        if superseded.is_none() && verdict.kind == VerdictKind::Regression {
            superseded = self
                .runs_another(env, idx, &version, step, canary_weight)
                .await;
        }
        if let Some(line) = &superseded {
            warn(line.clone());
            return Ok(Sampled {
                verdict: Verdict {
                    kind: VerdictKind::InsufficientData,
                    metric: None,
                    detected_at: None,
                    reason: line.clone(),
                },
                claim_refused,
                superseded,
            });
        }
        if verdict.kind == VerdictKind::Collecting && window_steps == 0 {
            let len = window_len.to_std().unwrap_or(Duration::ZERO);
            verdict.reason = format!(
                "no step of the window was read: it ended after {} (the window's length), before its first metrics step (every {}); {}",
                crate::domain::HumanDuration(len),
                crate::domain::HumanDuration(step),
                verdict.reason
            );
        }
        if matches!(
            verdict.kind,
            VerdictKind::InsufficientData | VerdictKind::Collecting
        ) && let Some(why) = &source_error
        {
            verdict.reason = format!("{}; the metrics source failed: {why}", verdict.reason);
        }
        if matches!(verdict.kind, VerdictKind::Healthy | VerdictKind::Collecting)
            && canary_most >= gap_steps
            && let Some(why) = &canary_error
        {
            verdict = Verdict {
                kind: VerdictKind::InsufficientData,
                metric: None,
                detected_at: None,
                reason: format!(
                    "insufficient data: the canary had no metrics for {} in a row ({why}); the environment as a whole read: {}",
                    fmt_steps(canary_most),
                    verdict.reason
                ),
            };
        } else if matches!(
            verdict.kind,
            VerdictKind::InsufficientData | VerdictKind::Collecting
        ) && let Some(why) = &canary_error
        {
            verdict.reason = format!("{}; the canary had no metrics: {why}", verdict.reason);
        }
        Ok(Sampled {
            verdict,
            claim_refused,
            superseded: None,
        })
    }

    /// The line ending a window of `version` when `env` runs another one
    /// now; `None` while it runs `version` or cannot be read (an endpoint
    /// down is a gap in what is known, not a change). A canary environment
    /// runs `version` while its stable track reports it or its canary,
    /// with traffic (`canary_weight` above 0, or unknown), does: the
    /// window of a canary outlives the canary's last step (the stable
    /// track gets the version), and ends when a third version comes. Each
    /// read is bounded (a step, at least 2 s) so that a hanging endpoint
    /// does not stall the window.
    async fn runs_another(
        &self,
        env: &str,
        idx: usize,
        version: &crate::domain::Version,
        step: Duration,
        canary_weight: Option<u8>,
    ) -> Option<String> {
        let strategy = &self.inner.envs[idx].strategy;
        let bound = step.max(Duration::from_secs(2));
        match tokio::time::timeout(bound, strategy.read_version()).await {
            Ok(Ok(live)) if &live != version => {
                let canary = match strategy {
                    crate::engine::strategy::Strategy::Canary { canary, .. }
                        if canary_weight != Some(0) =>
                    {
                        match tokio::time::timeout(bound, canary.version.read()).await {
                            Ok(Ok(v)) if &v == version => return None,
                            Ok(Ok(v)) => format!(" (its canary {v})"),
                            Ok(Err(e)) => {
                                tracing::warn!(
                                    env,
                                    "monitoring window: what {env}'s canary runs could not be read ({e}); judging on"
                                );
                                return None;
                            }
                            Err(_) => {
                                tracing::warn!(
                                    env,
                                    "monitoring window: what {env}'s canary runs could not be read in time; judging on"
                                );
                                return None;
                            }
                        }
                    }
                    _ => String::new(),
                };
                Some(format!(
                    "superseded: {env} now runs {live}{canary}, not {version}: the window stopped judging (no verdict, No-Go or rollback is recorded for {version})"
                ))
            }
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                tracing::warn!(
                    env,
                    "monitoring window: what {env} runs could not be read ({e}); judging on"
                );
                None
            }
            Err(_) => {
                tracing::warn!(
                    env,
                    "monitoring window: what {env} runs could not be read in time; judging on"
                );
                None
            }
        }
    }

    /// The canary's weight as the store records it now (0 when nothing is
    /// recorded), read within a step (at least 2 s, as `runs_another`
    /// reads); `None` when the store does not say it in time or fails:
    /// the caller keeps the weight it knew.
    async fn recorded_weight_within(&self, env: &str, step: Duration) -> Option<u8> {
        let bound = step.max(Duration::from_secs(2));
        match tokio::time::timeout(bound, self.recorded_canary(env)).await {
            Ok(Ok(recorded)) => Some(recorded.map_or(0, |(weight, _)| weight)),
            Ok(Err(e)) => {
                tracing::warn!(
                    env,
                    "monitoring window: the canary's weight could not be read again ({e}); keeping the last known"
                );
                None
            }
            Err(_) => {
                tracing::warn!(
                    env,
                    "monitoring window: the canary's weight could not be read again in time; keeping the last known"
                );
                None
            }
        }
    }

    /// The canary's weight as the store records it (0 when nothing is
    /// recorded), or `None` when the store cannot say now: unknown, to be
    /// asked again once the store answers. A refusal that waiting does not
    /// heal is said in the log and read as none (as before: no canary
    /// check rather than a window that never ends asking).
    pub(super) async fn canary_weight_now(&self, env: &str) -> Option<u8> {
        match self.recorded_canary(env).await {
            Ok(recorded) => Some(recorded.map_or(0, |(weight, _)| weight)),
            Err(EngineError::Store(e)) if e.heals_by_waiting() => {
                tracing::warn!(
                    env,
                    "monitoring window: the canary's weight is unknown until the store answers ({e})"
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    env,
                    "monitoring window: the canary's weight cannot be read: {e}"
                );
                Some(0)
            }
        }
    }
}

/// A step without data at `t`: the detector counts it as missing, never as
/// health.
fn gap(t: f64) -> Sample {
    Sample {
        t,
        requests: f64::NAN,
        errors: f64::NAN,
        p50_ms: None,
        p95_ms: None,
        p99_ms: None,
    }
}
