//! The opening of a monitoring window: its claim, its baseline (and the
//! seasonal reference), the known-good version a store-less rollback would
//! go back to, the window's records, and the steps already past.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::WatchClaim;
use crate::backends::metrics::SeasonalReference;
use crate::domain::clock;
use crate::domain::{ActionKind, EnvState, Outcome, Version, WindowVerdict};
use crate::engine::{Engine, EngineError, Event};
use crate::monitor::{Detector, Sample};
use crate::store::{MonitorRecord, NewAudit};

/// An opened monitoring window: what its sampling loop, its regression
/// response and its finish go on with.
pub(super) struct OpenWindow {
    pub(super) idx: usize,
    pub(super) label: String,
    pub(super) version: Version,
    pub(super) deploy_at: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
    /// Fed with the baseline and the steps already past.
    pub(super) detector: Detector,
    pub(super) seasonal: Option<SeasonalReference>,
    pub(super) baseline_note: String,
    /// The known-good version a regression found while the store is
    /// unreachable rolls back to (see `rollback_unreachable`).
    pub(super) fallback: Option<Version>,
    /// The window's audit record.
    pub(super) started: i64,
    /// Since when the store has been unreachable (and when that was last
    /// said), if it was at the opening.
    pub(super) opened_down: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The last step already past that the detector was fed.
    pub(super) last_t: f64,
    pub(super) claim: WatchClaim,
}

/// The seasonal reference of the step at `at` (`t` into the window).
pub(super) fn reference(
    seasonal: &Option<SeasonalReference>,
    at: DateTime<Utc>,
    t: f64,
) -> Option<Sample> {
    seasonal.as_ref().and_then(|r| r.sample_at(at, t))
}

impl Engine {
    /// The version a window of `env` judges: what the environment runs,
    /// or — a canary with traffic — what the canary runs, the release
    /// being judged (the environment's own version source reports the
    /// stable track). The canary's version as this process's flow gives
    /// it, else as its version source reports it (or, that read failing,
    /// as the audit log last recorded it). Whether it is the canary's
    /// (a window opened mid-canary) comes with it.
    async fn judged_version(&self, env: &str, idx: usize) -> Result<(Version, bool), EngineError> {
        let strategy = &self.inner.envs[idx].strategy;
        if let crate::engine::strategy::Strategy::Canary { canary, .. } = strategy {
            if let Some(s) = self.canary_state(env) {
                if s.weight > 0 {
                    return Ok((s.version, true));
                }
            } else if let Ok(Some((weight, recorded))) = self.recorded_canary(env).await
                && weight > 0
            {
                match canary.version.read().await {
                    Ok(v) => return Ok((v, true)),
                    Err(e) => {
                        tracing::warn!(
                            env,
                            "monitoring window: what the canary runs could not be read ({e})"
                        );
                        if let Some(v) = recorded {
                            return Ok((v, true));
                        }
                    }
                }
            }
        }
        Ok((strategy.read_version().await?, false))
    }

    /// The deploy time of a window opened mid-canary: when the canary's
    /// run of `version` first took traffic, as the store's weight history
    /// records it; else `now`, with the line saying why (the baseline may
    /// then hold the canary's earlier traffic).
    async fn canary_deploy_time(
        &self,
        env: &str,
        version: &Version,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, Option<String>) {
        let cannot = |why: String| {
            tracing::warn!(env, "monitoring window: {why}");
            format!(
                "deploy time: now, {why}: the baseline may include the canary's earlier traffic"
            )
        };
        match self.canary_traffic_since(env, version).await {
            Ok(Some(at)) if at <= now => (
                at,
                Some(format!(
                    "deploy time: the canary's first traffic at {}",
                    at.format("%H:%M:%S UTC")
                )),
            ),
            Ok(_) => (
                now,
                Some(cannot(format!(
                    "the store records no canary traffic of {version}"
                ))),
            ),
            Err(e) => (
                now,
                Some(cannot(format!(
                    "the canary's weight history could not be read ({e})"
                ))),
            ),
        }
    }

    /// Claim the window of `env`, read its baseline and known-good
    /// version, record its opening and feed the detector the steps
    /// already past.
    pub(super) async fn open_window(
        &self,
        env: &str,
        idx: usize,
        window: Option<Duration>,
        emit: &(dyn Fn(Event) + Sync),
    ) -> Result<OpenWindow, EngineError> {
        let cfg_env = &self.inner.config.environments[idx];
        let label = cfg_env.label().to_string();
        let dcfg = self.detector_config(window);
        let window_d = clock::secs_f64(dcfg.window_s);
        let baseline_d = clock::secs_f64(dcfg.baseline_s);
        let (version, mid_canary) = self.judged_version(env, idx).await?;
        let mut claim = self.claim_watch(env).await?;
        let now = Utc::now();
        let last = self.inner.store.recent_deploys(env, 1).await?.pop();
        // A window opened mid-canary (a console restarted, a second one,
        // `watch` started while the canary has traffic) has no deploy
        // record of the version yet: its deploy time is when the canary
        // first took traffic, so that its baseline holds none of the
        // canary's — as the window of one who never restarted. "Now" only
        // when the store cannot say, and then the baseline line says so.
        let (deploy_at, deploy_note) = match &last {
            _ if mid_canary => self.canary_deploy_time(env, &version, now).await,
            Some(d) if d.version == version && now - d.at < window_d => (d.at, None),
            _ => (now, None),
        };
        let end = clock::after(deploy_at, window_d);

        let mut detector = Detector::new(dcfg.clone());
        let (baseline, plan) = self.baseline(env, &label, deploy_at, baseline_d).await?;
        let (seasonal, seasonal_note) = self.seasonal(&label, &plan, end).await;
        for (at, s) in &baseline {
            detector.push_with_reference(*s, reference(&seasonal, *at, s.t));
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
        if let Some(note) = deploy_note {
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
                crate::engine::strategy::Strategy::Canary { .. }
            ) {
            match self.rollback_plan_from(env, &version, None).await {
                Ok(Ok(plan)) => Some(plan.to),
                _ => None,
            }
        } else {
            None
        };
        // Linked to the claim (in the append's own transaction), so that
        // every process reads the window live by the claim's link, not by
        // comparing clocks: a claim taken anew after the server restarted
        // is dated then, long after this record.
        let started = self
            .inner
            .store
            .audit_start_held(
                &NewAudit {
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
                },
                &claim.lock,
            )
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
                // The window's own start: its place in the store's order.
                seq: Some(started),
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
                detector.push_with_reference(s, reference(&seasonal, at, s.t));
            }
        }
        Ok(OpenWindow {
            idx,
            label,
            version,
            deploy_at,
            end,
            detector,
            seasonal,
            baseline_note,
            fallback,
            started,
            opened_down,
            last_t,
            claim,
        })
    }
}
