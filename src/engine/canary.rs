//! The canary strategy's flow (SPEC §2): deploy the canary, raise its
//! traffic weight step by step while the canary judge
//! ([`crate::monitor::CanaryJudge`]) compares it with the stable track at
//! the same time, and after the last step give the stable track the
//! version and return the canary's weight to 0. A regression sets the
//! weight to 0 at once (`auto_rollback`) or leaves it for the engineer's
//! rollback, which for a canary is "weight → 0". Every step and decision
//! is its own audit record (action `canary`), written before the backend
//! is called or the decision acted on.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::strategy::{StepFailure, Steps, follow_ready, wait_until_reported};
use super::{Engine, EngineError, Event};
use crate::backends::BackendError;
use crate::backends::deploy::DeployTarget;
use crate::backends::metrics::TrackSelector;
use crate::backends::version::VersionSource;
use crate::backends::weight::WeightHook;
use crate::config::{Config, EnvironmentConfig};
use crate::domain::{ActionKind, Outcome, Version};
use crate::monitor::{CanaryJudge, CanaryJudgeConfig, Sample, TrackPair, Verdict, VerdictKind};
use crate::store::NewAudit;

/// A step that never gets enough canary traffic is held this many extra
/// `step_time`s; then the canary is stopped (weight 0) as inconclusive.
pub const MAX_HOLDS: u32 = 3;
/// Attempts at setting the weight to 0 when the weight backend fails.
const STOP_ATTEMPTS: u32 = 10;
/// Canary and promotion records read back for the canary's recorded
/// weight ([`crate::store::Store::canary_history`]): the newest weight
/// record is a few step records back, whatever else the log holds.
const CANARY_LOOKBACK: usize = 200;

/// The canary backends of one environment.
pub(super) struct CanaryBackends {
    pub version: VersionSource,
    pub deploy: DeployTarget,
    pub weight: WeightHook,
    pub steps: Vec<u8>,
    pub step_time: Duration,
}

impl CanaryBackends {
    pub(super) fn from_config(e: &EnvironmentConfig, client: &reqwest::Client) -> Option<Self> {
        let c = e.canary.as_ref()?.get_ref();
        let name = e.name();
        Some(CanaryBackends {
            version: VersionSource::from_config(name, c.version.get_ref(), client.clone()),
            deploy: DeployTarget::from_config(name, c.deploy.get_ref(), client.clone()),
            weight: WeightHook::from_config(name, c.weight.get_ref(), client.clone()),
            steps: c
                .steps
                .get_ref()
                .iter()
                .map(|s| (*s).clamp(0, 100) as u8)
                .collect(),
            step_time: c.step_time.0,
        })
    }
}

/// Every canary environment's metrics, read by track.
pub(super) fn track_selectors(config: &Config) -> Vec<TrackSelector> {
    config
        .environments
        .iter()
        .filter_map(|e| {
            e.canary.as_ref().map(|c| TrackSelector {
                env: e.label().to_string(),
                label: c.get_ref().track_label.clone(),
            })
        })
        .collect()
}

/// Where a canary stands (`status --json` `canary`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryState {
    /// What the canary runs (or is being given).
    pub version: Version,
    /// Its share of the traffic, in percent.
    pub weight: u8,
    /// 1-based step, 0 before the first weight is set.
    pub step: usize,
    pub steps: usize,
    /// When the current step's judgement ends (holds push it back).
    pub step_ends_at: Option<DateTime<Utc>>,
    /// The judge's latest verdict.
    pub verdict: Option<Verdict>,
    /// Why no shipdeck judges the canary's traffic, while it has some and
    /// no live promotion moves it on: its promotion's shipdeck is gone
    /// (killed outright), or the canary caught it and kept its traffic.
    /// `None` while a live promotion moves it on, or without traffic.
    pub unjudged: Option<String>,
}

/// How a canary's judging ended.
enum Judged {
    Passed,
    Regression(Verdict),
    Inconclusive(Verdict),
}

impl Engine {
    /// The canary this process runs in `env`, if any.
    pub fn canary_state(&self, env: &str) -> Option<CanaryState> {
        self.canaries().get(env).cloned()
    }

    fn canaries(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, CanaryState>> {
        self.inner
            .canaries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_canary(&self, env: &str, state: Option<CanaryState>) {
        let mut c = self.canaries();
        match state {
            Some(s) => {
                c.insert(env.to_string(), s);
            }
            None => {
                c.remove(env);
            }
        }
    }

    /// After this process's promotion was interrupted mid-canary: every
    /// canary it was moving on whose recorded weight is still above 0 has
    /// its traffic sent back to the stable track — a rollback like any
    /// (audited, under the deploy lock) — since nobody judges that share of
    /// the traffic any more. Each environment with what became of it.
    pub async fn stop_abandoned_canaries(
        &self,
    ) -> Vec<(String, Result<crate::domain::DeployRecord, EngineError>)> {
        let envs: Vec<String> = self.canaries().keys().cloned().collect();
        let mut out = Vec::new();
        for env in envs {
            self.set_canary(&env, None);
            // The weight is audited before it is set: the record says
            // whether traffic may have moved, whatever this process saw.
            match self.recorded_canary(&env).await {
                Ok(Some((w, _))) if w > 0 => {}
                Ok(_) => continue,
                Err(e) => {
                    out.push((env, Err(e)));
                    continue;
                }
            }
            let r = self.rollback(&env, None, None).await;
            out.push((env, r));
        }
        out
    }

    /// One audit record of the canary flow, complete in itself.
    async fn canary_record(
        &self,
        env: &str,
        version: &Version,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), EngineError> {
        self.inner
            .store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: &self.inner.actor,
                action: ActionKind::Canary,
                env,
                version: Some(version),
                from_version: None,
                outcome,
                detail,
            })
            .await?;
        Ok(())
    }

    /// The canary of environment `idx` for `status`: this process's own
    /// flow when it runs one, else what the canary's version source says
    /// and the weight the audit log last recorded. `None` for an
    /// environment without a canary.
    pub(super) async fn canary_status(&self, idx: usize) -> Option<CanaryState> {
        let super::strategy::Strategy::Canary { canary, .. } = &self.inner.envs[idx].strategy
        else {
            return None;
        };
        let env = self.inner.config.environments[idx].name();
        if let Some(s) = self.canary_state(env) {
            return Some(s);
        }
        let h = self
            .inner
            .store
            .canary_history(env, CANARY_LOOKBACK)
            .await
            .ok();
        let recorded = h.as_deref().and_then(|h| {
            last_weight(
                h.iter()
                    .filter(|e| e.action == ActionKind::Canary)
                    .map(|e| (e.outcome, e.detail.as_str(), e.version.as_ref())),
            )
        });
        let version = match canary.version.read().await {
            Ok(v) => v,
            Err(_) => recorded.as_ref().and_then(|(_, v)| v.clone())?,
        };
        Some(CanaryState {
            version,
            weight: recorded.map_or(0, |(w, _)| w),
            step: 0,
            steps: canary.steps.len(),
            step_ends_at: None,
            verdict: None,
            unjudged: h.as_deref().and_then(why_unjudged),
        })
    }

    /// The canary of `env` no shipdeck moves on, as a promotion gate
    /// says it: its version, its weight and why nobody judges it — `None`
    /// when it has no traffic, when this process runs it, or for an
    /// environment without a canary. The caller knows no live process
    /// (another's) holds `env`'s lock.
    pub(super) async fn unjudged_canary(&self, idx: usize) -> Result<Option<String>, EngineError> {
        let super::strategy::Strategy::Canary { .. } = &self.inner.envs[idx].strategy else {
            return Ok(None);
        };
        let env = self.inner.config.environments[idx].name();
        if self.canary_state(env).is_some() {
            return Ok(None);
        }
        let h = self
            .inner
            .store
            .canary_history(env, CANARY_LOOKBACK)
            .await?;
        let Some(why) = why_unjudged(&h) else {
            return Ok(None);
        };
        let Some((weight, version)) = last_weight(
            h.iter()
                .filter(|e| e.action == ActionKind::Canary)
                .map(|e| (e.outcome, e.detail.as_str(), e.version.as_ref())),
        ) else {
            return Ok(None);
        };
        let version = version.map_or_else(|| "an unknown version".into(), |v| v.to_string());
        Ok(Some(format!(
            "{env}'s canary still sends {weight}% of the traffic to {version} and no shipdeck is judging it: {why}; `shipdeck rollback {env}` sends it back to the stable track first"
        )))
    }

    /// The canary's weight as the audit log last recorded it (`None`
    /// without any weight record): what a rollback from another process
    /// must undo. Step records ("step 2/3 at 50% passed") are skipped.
    pub(super) async fn recorded_canary(
        &self,
        env: &str,
    ) -> Result<Option<(u8, Option<Version>)>, EngineError> {
        if let Some(s) = self.canary_state(env) {
            return Ok(Some((s.weight, Some(s.version))));
        }
        let h = self
            .inner
            .store
            .canary_history(env, CANARY_LOOKBACK)
            .await?;
        Ok(last_weight(
            h.iter()
                .filter(|e| e.action == ActionKind::Canary)
                .map(|e| (e.outcome, e.detail.as_str(), e.version.as_ref())),
        ))
    }

    /// When the canary's current run of `version` first took traffic in
    /// `env`, as the audit log records it (see [`first_traffic`]): the
    /// deploy time of a monitoring window opened mid-canary. `None` when
    /// the log records no such weight.
    pub(super) async fn canary_traffic_since(
        &self,
        env: &str,
        version: &Version,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        let h = self
            .inner
            .store
            .canary_history(env, CANARY_LOOKBACK)
            .await?;
        Ok(first_traffic(
            h.iter()
                .filter(|e| e.action == ActionKind::Canary)
                .map(|e| (e.at, e.outcome, e.detail.as_str(), e.version.as_ref())),
            version,
        ))
    }

    /// Set the canary's weight, audited first ("weight N%: why"); its
    /// outcome finishes that record, so the history reads one change that
    /// succeeded or failed — not a "started" one left without outcome, read
    /// "unknown: the process ended" once the flow's lock is gone. Without
    /// the first record (the store refused it) the outcome is one complete
    /// record of its own.
    async fn set_weight(
        &self,
        env: &str,
        version: &Version,
        hook: &WeightHook,
        weight: u8,
        why: &str,
    ) -> Result<String, BackendError> {
        let detail = format!("weight {weight}%: {why}");
        let started = self
            .inner
            .store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: &self.inner.actor,
                action: ActionKind::Canary,
                env,
                version: Some(version),
                from_version: None,
                outcome: Outcome::Started,
                detail: &detail,
            })
            .await;
        if let Err(e) = &started {
            tracing::error!(env, "cannot record the canary weight change: {e}");
        }
        let r = hook.set(weight).await;
        let (outcome, ended) = match &r {
            Ok(done) => (Outcome::Succeeded, done.to_string()),
            Err(e) => (Outcome::Failed, format!("failed: {e}")),
        };
        let recorded = match started {
            Ok(id) => self
                .inner
                .store
                .audit_finish(id, Utc::now(), outcome, &ended)
                .await
                .map_err(EngineError::from),
            Err(_) => {
                let line = match &r {
                    Ok(_) => format!("{detail} ({ended})"),
                    Err(_) => format!("{detail}: {ended}"),
                };
                self.canary_record(env, version, outcome, &line).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(env, "cannot record the canary weight change: {e}");
        }
        r
    }

    /// Weight → 0, retried (each attempt audited) until the backend accepts
    /// or [`STOP_ATTEMPTS`] attempts failed.
    pub(super) async fn stop_canary(
        &self,
        env: &str,
        version: &Version,
        hook: &WeightHook,
        why: &str,
    ) -> Result<String, BackendError> {
        let mut last = None;
        for attempt in 1..=STOP_ATTEMPTS {
            let why = if attempt == 1 {
                why.to_string()
            } else {
                format!("{why} (attempt {attempt} of {STOP_ATTEMPTS})")
            };
            match self.set_weight(env, version, hook, 0, &why).await {
                Ok(done) => {
                    if let Some(mut s) = self.canary_state(env) {
                        s.weight = 0;
                        self.set_canary(env, Some(s));
                    }
                    return Ok(done);
                }
                Err(e) => {
                    tracing::warn!(env, attempt, "cannot set the canary weight to 0: {e}");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| BackendError::Command {
            backend: hook.name().to_string(),
            cause: "no attempt made".into(),
        }))
    }

    /// The canary flow inside the audited deploy frame (see the module
    /// documentation). Ok once the stable track reports the version and
    /// the canary weight is back to 0.
    pub(super) async fn canary_steps(
        &self,
        idx: usize,
        s: &Steps<'_>,
        stable: (&VersionSource, &DeployTarget),
        c: &CanaryBackends,
    ) -> Result<String, StepFailure> {
        let (env, version) = (s.env, s.version);
        let fail = |detail: String| StepFailure {
            outcome: Outcome::Failed,
            detail: detail.clone(),
            error: EngineError::DeployFailed {
                env: env.to_string(),
                version: version.clone(),
                detail,
            },
            tell_backend: false,
        };
        let sampler = match &self.inner.sampler {
            Ok(sm) => sm,
            Err(e) => {
                return Err(fail(format!(
                    "a canary is judged on metrics, and [metrics] cannot be used: {e}"
                )));
            }
        };
        let mut state = CanaryState {
            version: version.clone(),
            weight: 0,
            step: 0,
            steps: c.steps.len(),
            step_ends_at: None,
            verdict: None,
            unjudged: None,
        };
        self.set_canary(env, Some(state.clone()));
        let r = self
            .canary_flow(idx, s, stable, c, sampler, &mut state)
            .await;
        if r.is_ok() {
            self.set_canary(env, None);
        }
        r.map_err(|e| match e {
            Flow::Failed(f) => f,
            Flow::Detail(d) => fail(d),
        })
    }

    async fn canary_flow(
        &self,
        idx: usize,
        s: &Steps<'_>,
        (stable_version, stable_deploy): (&VersionSource, &DeployTarget),
        c: &CanaryBackends,
        sampler: &super::Sampler,
        state: &mut CanaryState,
    ) -> Result<String, Flow> {
        let (env, version) = (s.env, s.version);
        let t0 = Instant::now();
        // 1. The canary gets the version (no traffic yet).
        let report = |progress: crate::backends::deploy::Progress| {
            (s.emit)(Event::DeployProgress {
                env: env.to_string(),
                progress,
            });
        };
        let started = c
            .deploy
            .start(env, version, &report)
            .await
            .map_err(|e| Flow::Failed(StepFailure::backend(e)))?;
        let (mut accepted, mut ended) = (started.line, started.ended);
        if let Some(note) = follow_ready(s, c.deploy.ready(), &accepted, " (the canary)")
            .await
            .map_err(Flow::Failed)?
        {
            ended = true;
            accepted = format!("{accepted}; {note}");
        }
        wait_reports(s, &c.version, "the canary")
            .await
            .map_err(|f| unreported(f, s, c.deploy.name(), ended, &accepted))?;
        let _ = self
            .canary_record(
                env,
                version,
                Outcome::Succeeded,
                &format!("canary deployed: the canary reports {version}; {accepted}"),
            )
            .await;

        // 2. Weight step by step, each judged against stable at the same time.
        let label = self.inner.config.environments[idx].label().to_string();
        let labels = vec![(label.clone(), env.to_string())];
        let auto = self.inner.config.monitor.auto_rollback;
        let mut judge = CanaryJudge::new(CanaryJudgeConfig::default());
        let step = self.inner.config.metrics.step.0;
        let tick = (step / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let origin = Utc::now();
        let n = c.steps.len();
        let judged = 'steps: {
            for (i, &w) in c.steps.iter().enumerate() {
                let why = format!(
                    "step {}/{n} of the canary of {version}, judged for {}",
                    i + 1,
                    crate::domain::HumanDuration(c.step_time)
                );
                if let Err(e) = self.set_weight(env, version, &c.weight, w, &why).await {
                    let stopped = self
                        .stop_canary(env, version, &c.weight, "the weight could not be raised")
                        .await;
                    return Err(Flow::Detail(format!(
                        "canary of {version}: setting the weight to {w}% failed: {e}; {}",
                        stop_words(&stopped, "")
                    )));
                }
                // Points read before the new weight carry the old one.
                let mut consumed = Utc::now();
                let step_t = (consumed - origin).num_milliseconds() as f64 / 1000.0;
                judge.begin_step(w);
                let mut ends = Instant::now() + c.step_time;
                let mut holds = 0;
                state.weight = w;
                state.step = i + 1;
                state.step_ends_at = Some(Utc::now() + super::clock_delta(c.step_time));
                state.verdict = Some(judge.verdict().clone());
                self.set_canary(env, Some(state.clone()));
                loop {
                    tokio::time::sleep(tick).await;
                    let _ = sampler.read(&labels, &self.inner.store).await;
                    let mut pairs = Vec::new();
                    for ts in sampler.track_steps_since(&label, consumed).await {
                        consumed = ts.at;
                        let t = (ts.at - origin).num_milliseconds() as f64 / 1000.0;
                        let p = pair(t, &ts);
                        judge.push(p);
                        pairs.push(p);
                    }
                    let v = judge.verdict().clone();
                    state.verdict = Some(v.clone());
                    self.set_canary(env, Some(state.clone()));
                    (s.emit)(Event::CanaryStep {
                        env: env.to_string(),
                        version: version.clone(),
                        weight: w,
                        step: i + 1,
                        steps: n,
                        left_s: ends.saturating_duration_since(Instant::now()).as_secs_f64(),
                        verdict: v.clone(),
                        started: origin,
                        step_t,
                        pairs,
                    });
                    if v.kind == VerdictKind::Regression {
                        break 'steps Judged::Regression(v);
                    }
                    if Instant::now() < ends {
                        continue;
                    }
                    if v.kind == VerdictKind::Healthy {
                        let _ = self
                            .canary_record(
                                env,
                                version,
                                Outcome::Succeeded,
                                &format!("step {}/{n} at {w}% passed: {}", i + 1, v.reason),
                            )
                            .await;
                        break;
                    }
                    if holds >= MAX_HOLDS {
                        break 'steps Judged::Inconclusive(v);
                    }
                    holds += 1;
                    ends += c.step_time;
                    state.step_ends_at = Some(Utc::now() + super::clock_delta(c.step_time));
                    let _ = self
                        .canary_record(
                            env,
                            version,
                            Outcome::Succeeded,
                            &format!(
                                "step {}/{n} at {w}% held ({holds} of {MAX_HOLDS}): {}",
                                i + 1,
                                v.reason
                            ),
                        )
                        .await;
                }
            }
            Judged::Passed
        };
        match judged {
            Judged::Passed => {}
            Judged::Regression(v) => {
                let at = format!("at {}% (step {}/{n})", state.weight, state.step);
                let _ = self
                    .canary_record(
                        env,
                        version,
                        Outcome::Failed,
                        &format!("regression {at}: {}", v.reason),
                    )
                    .await;
                // A release the canary caught is blocked like one any
                // monitoring window caught: a No-Go, so it is not
                // re-promoted by reflex — someone records a new Go first.
                let no_go = crate::domain::Approval {
                    seq: None,
                    env: env.to_string(),
                    version: version.clone(),
                    decision: crate::domain::Decision::NoGo,
                    actor: format!("{} (monitoring window)", self.inner.actor),
                    at: Utc::now(),
                    note: Some(format!("regression of the canary {at}: {}", v.reason)),
                };
                let mut no_go_failed = self.inner.store.record_approval(&no_go).await.err();
                self.set_activity(env, Some(crate::domain::EnvState::Regression));
                if !auto {
                    return Err(Flow::Detail(format!(
                        "canary of {version} caught {at}: {}; the canary keeps {}% of the traffic until rolled back (r, or `shipdeck rollback {env}`: weight → 0){}",
                        v.reason,
                        state.weight,
                        no_go_missing(env, version, no_go_failed.as_ref())
                    )));
                }
                let stopped = self
                    .stop_canary(
                        env,
                        version,
                        &c.weight,
                        "regression: rolled back automatically",
                    )
                    .await;
                // The traffic is safe first; then the No-Go is tried again
                // (a store blip), and said when it still could not be
                // written: without it the release could be re-promoted.
                for _ in 0..NO_GO_RETRIES {
                    if no_go_failed.is_none() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    no_go_failed = self.inner.store.record_approval(&no_go).await.err();
                }
                return Err(Flow::Detail(format!(
                    "canary of {version} caught {at}: {}; {}{}",
                    v.reason,
                    stop_words(&stopped, " automatically (auto_rollback)"),
                    no_go_missing(env, version, no_go_failed.as_ref())
                )));
            }
            Judged::Inconclusive(v) => {
                let stopped = self
                    .stop_canary(
                        env,
                        version,
                        &c.weight,
                        "inconclusive: too little canary traffic, stepped back automatically",
                    )
                    .await;
                // The flow's own step-back, as a caught canary's says it:
                // history after the night must not read it as a hand's.
                return Err(Flow::Detail(format!(
                    "canary of {version} inconclusive at {}% after {} holds: {}; {}; nothing promoted",
                    state.weight,
                    MAX_HOLDS,
                    v.reason,
                    stop_words(
                        &stopped,
                        " automatically (too little canary traffic to judge)"
                    )
                )));
            }
        }

        // 3. The stable track gets the version; then the canary steps aside.
        // Its deploy is a deploy of its own: the deploy's timeout again,
        // counted from now (the steps took their own time; the deploy's
        // lock is renewed while they run, see `Engine::holding`).
        let s = &Steps {
            deadline: Instant::now() + s.timeout,
            ..*s
        };
        let started = stable_deploy
            .start(env, version, &report)
            .await
            .map_err(|e| Flow::Failed(StepFailure::backend(e)))?;
        let (mut accepted, mut ended) = (started.line, started.ended);
        if let Some(note) = follow_ready(s, stable_deploy.ready(), &accepted, " (the stable track)")
            .await
            .map_err(Flow::Failed)?
        {
            ended = true;
            accepted = format!("{accepted}; {note}");
        }
        wait_reports(s, stable_version, "the stable track")
            .await
            .map_err(|f| unreported(f, s, stable_deploy.name(), ended, &accepted))?;
        let stopped = self
            .stop_canary(env, version, &c.weight, "the stable track runs the version")
            .await;
        if let Err(e) = &stopped {
            return Err(Flow::Detail(format!(
                "{env}'s stable track reports {version}, but the canary weight could not return to 0: {e}"
            )));
        }
        Ok(format!(
            "canary of {version} passed {} in {:.0}s; {env}'s stable track reports it; canary weight back to 0; {accepted}",
            c.steps
                .iter()
                .map(|w| format!("{w}%"))
                .collect::<Vec<_>>()
                .join("→"),
            t0.elapsed().as_secs_f64()
        ))
    }
}

impl Engine {
    /// A rollback of a canary environment whose canary still has traffic:
    /// weight → 0 (audited as a rollback, each attempt as a canary
    /// record). `None` when the canary has no traffic (or the environment
    /// is no canary one): the rollback is then the stable track's.
    ///
    /// It holds the environment's deploy lock like any rollback: another
    /// process promoting or rolling it back refuses it (exit 3, the holder
    /// named, the refusal audited). A canary run by this very process
    /// already holds that lock — its own auto-rollback (`stop_canary` in
    /// the canary flow) runs under it and takes nothing — so a rollback
    /// asked for here while it runs shares that lock: it renews it while it
    /// runs, like its taker (the canary may end first), and the last of the
    /// two to end releases it.
    pub(super) async fn rollback_canary(
        &self,
        idx: usize,
        stable: &Version,
        events: Option<super::EventSink>,
        retry_owed: bool,
        automatic: bool,
    ) -> Result<Option<crate::domain::DeployRecord>, EngineError> {
        let super::strategy::Strategy::Canary { canary, .. } = &self.inner.envs[idx].strategy
        else {
            return Ok(None);
        };
        let env = self.inner.config.environments[idx].name();
        let Some((weight, version)) = self.recorded_canary(env).await? else {
            return Ok(None);
        };
        if weight == 0 {
            return Ok(None);
        }
        let version = version.unwrap_or_else(|| stable.clone());
        let detail = canary_rollback_detail(env, weight, &version, stable, automatic);
        let lock = self.new_lock(env, self.inner.lock_timing.margin);
        let (host, pid, now) = (lock.host.clone(), lock.pid, lock.acquired_at);
        // Ours only when an action of this engine instance holds it now
        // (shared in the same step, so it cannot be released in between)
        // and the store still has it as ours (not lost): a lock with this
        // pid and host alone may be a killed predecessor's (a restarted
        // container, pid 1), which is taken over and released like any.
        let shared = self.share_lock(env);
        let held = if shared {
            self.inner
                .store
                .lock_of(env, now)
                .await
                .ok()
                .flatten()
                .filter(|l| l.pid == pid && l.host == host)
        } else {
            None
        };
        if shared && held.is_none() {
            self.release_lock(env, pid, &host);
        }
        // The lock this rollback keeps while it runs: the row as the store
        // has it when shared (its time taken and expiry kept), else the one
        // it takes now. Shared or not, the rollback renews it: the action
        // it shares it with may end first (the canary gives up while the
        // weight hook still runs), and nobody else would.
        // A shared store dates the row's expiry on its own clock: the
        // renewals count on this one (what the lock asks for now), never
        // comparing the server's time with ours.
        let lock = match held {
            Some(row) => crate::store::LockInfo {
                expires_at: lock.expires_at,
                ..row
            },
            None => {
                if let Err(held) = self.inner.store.try_lock(&lock).await? {
                    let gate = crate::domain::Gate::block(
                        "lock",
                        false,
                        format!("{env} is {}", self.lock_text(env, &held).await),
                    );
                    return Err(self
                        .refuse(
                            ActionKind::Rollback,
                            env,
                            Some(stable),
                            Some(&version),
                            gate,
                        )
                        .await);
                }
                self.hold_lock(env);
                lock
            }
        };
        let _release = super::deploy::LockRelease {
            engine: self,
            env,
            pid,
            host,
        };
        let rec = NewAudit {
            at: Utc::now(),
            actor: &self.inner.actor,
            action: ActionKind::Rollback,
            env,
            version: Some(stable),
            from_version: Some(&version),
            outcome: Outcome::Started,
            detail: &detail,
        };
        // A lock taken for this rollback is linked to its record; a shared
        // one stays linked to the action it was taken for (a later record
        // of its holder counts as the lock's too: `LockInfo::guards`).
        let started = if shared {
            self.inner.store.audit_start(&rec).await?
        } else {
            self.inner.store.audit_start_held(&rec, &lock).await?
        };
        self.set_activity(env, Some(crate::domain::EnvState::RollingBack));
        let stop = self.stop_canary(env, &version, &canary.weight, "rollback");
        let emit = |ev: super::Event| {
            if let Some(tx) = &events {
                let _ = tx.send(ev);
            }
        };
        let r = self.keep_lock(lock, &emit, stop).await;
        self.set_activity(env, None);
        let (outcome, line) = match &r {
            Ok(done) => (Outcome::Succeeded, format!("{detail}: {done}")),
            Err(e) => (Outcome::Failed, format!("{detail}: failed: {e}")),
        };
        let line = self.with_lost_note(env, &line);
        // After acting: a store that will not take the outcome does not
        // undo it. A weight set to 0 is a rollback that happened, told as
        // unrecorded (as a deploy is), never as one that did not run.
        let ended = Utc::now();
        let mut recorded = self
            .inner
            .store
            .audit_finish(started, ended, outcome, &line)
            .await;
        if retry_owed
            && let Err(e) = &recorded
            && e.heals_by_waiting()
        {
            recorded = self
                .retry_owed_end(env, started, ended, outcome, &line, &emit)
                .await;
        }
        if let Err(e) = &recorded {
            tracing::error!(env, "canary rollback done but not recorded: {e}");
        }
        match r {
            Ok(_) => {
                self.set_canary(env, None);
                if let Err(cause) = recorded {
                    return Err(EngineError::Unrecorded {
                        env: env.to_string(),
                        version: stable.clone(),
                        cause: Box::new(cause),
                        owed: Some(Box::new(super::error::OwedEnd {
                            started,
                            at: ended,
                            outcome,
                            detail: line,
                        })),
                    });
                }
                Ok(Some(crate::domain::DeployRecord {
                    seq: None,
                    env: env.to_string(),
                    version: stable.clone(),
                    from_version: Some(version),
                    at: Utc::now(),
                    actor: self.inner.actor.clone(),
                    kind: crate::domain::DeployKind::Rollback,
                    url: None,
                }))
            }
            Err(e) => Err(EngineError::DeployFailed {
                env: env.to_string(),
                version: stable.clone(),
                detail: format!("setting the canary weight to 0 failed: {e}"),
            }),
        }
    }
}

impl Engine {
    /// Write a canary rollback's outcome (the end of record `started`)
    /// once a second while the store heals by waiting, for at most
    /// [`OWED_END_RETRY`]; the last error when it never went in. The
    /// outcome is idempotent in both stores: a retry whose first attempt
    /// went in (its reply lost) is done, not written twice.
    async fn retry_owed_end(
        &self,
        env: &str,
        started: i64,
        at: chrono::DateTime<Utc>,
        outcome: Outcome,
        line: &str,
        emit: &(dyn Fn(super::Event) + Sync),
    ) -> Result<(), crate::store::StoreError> {
        let since = Utc::now();
        emit(super::Event::StoreOutage {
            env: env.to_string(),
            detail: format!(
                "{env}: the canary's weight is 0, but the store did not take the rollback's outcome: retrying to record it for up to {}",
                crate::domain::HumanDuration(OWED_END_RETRY)
            ),
        });
        let deadline = tokio::time::Instant::now() + OWED_END_RETRY;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match self
                .inner
                .store
                .audit_finish(started, at, outcome, line)
                .await
            {
                Ok(()) => {
                    emit(super::Event::StoreOutage {
                        env: env.to_string(),
                        detail: format!(
                            "{env}: the store is back after {}s; the rollback's outcome is recorded",
                            (Utc::now() - since).num_seconds()
                        ),
                    });
                    return Ok(());
                }
                Err(e) if !e.heals_by_waiting() || tokio::time::Instant::now() >= deadline => {
                    return Err(e);
                }
                Err(e) => tracing::warn!(env, "canary rollback: outcome not recorded yet ({e})"),
            }
        }
    }
}

/// How long a canary rollback run outside a monitoring window retries
/// writing its outcome while the store heals by waiting (a window writes
/// it with its verdict, through its own retries).
pub const OWED_END_RETRY: Duration = Duration::from_secs(30);

/// How often the No-Go of a caught canary is tried again, a second apart,
/// once its traffic is back on the stable track.
const NO_GO_RETRIES: usize = 10;

/// What a caught canary's outcome adds when its No-Go could not be
/// written: the release is not blocked, and how to block it.
fn no_go_missing(
    env: &str,
    version: &Version,
    failed: Option<&crate::store::StoreError>,
) -> String {
    match failed {
        None => String::new(),
        Some(e) => {
            tracing::warn!("{env}: the No-Go for the caught canary could not be recorded: {e}");
            format!(
                "; the No-Go that blocks it could not be recorded ({e}): record one with `shipdeck approve {env} --reject --version {version}`"
            )
        }
    }
}

/// Whether `detail`, a rollback's "started" record of `env` as history
/// reads it, is a canary rollback's (weight → 0, the stable track
/// untouched): its detail is [`canary_rollback_detail`]'s, where a rollback
/// of the stable track reads "roll ENV back from …".
///
/// A monitoring window's own rollback reads "roll ENV back automatically:
/// canary weight …"; records stored before it said so read "roll ENV back:
/// canary weight …", and are recognised still.
pub(super) fn is_canary_rollback(env: &str, detail: &str) -> bool {
    [": canary weight ", " automatically: canary weight "]
        .iter()
        .any(|rest| detail.starts_with(&format!("roll {env} back{rest}")))
}

/// The "started" detail of `env`'s canary rollback from `weight`%;
/// `automatic`: a monitoring window's own, on the regression it caught.
fn canary_rollback_detail(
    env: &str,
    weight: u8,
    version: &Version,
    stable: &Version,
    automatic: bool,
) -> String {
    let (how, why) = if automatic {
        (
            " automatically",
            format!("; the monitoring window caught a regression of {version}"),
        )
    } else {
        ("", String::new())
    };
    format!(
        "roll {env} back{how}: canary weight {weight}% → 0 ({version} on the canary; the stable track stays on {stable}{why}) (canary)"
    )
}

pub(super) enum Flow {
    Failed(StepFailure),
    Detail(String),
}

/// What became of setting the weight to 0; `how` says how it was decided
/// (" automatically (auto_rollback)" for a caught canary's step-back).
fn stop_words(r: &Result<String, BackendError>, how: &str) -> String {
    match r {
        Ok(_) => format!("canary weight set to 0{how}"),
        Err(e) => format!(
            "ALARM: the canary weight could not be set to 0 after {STOP_ATTEMPTS} attempts ({e})"
        ),
    }
}

/// A track step as the judge's pair; a track without data is a gap.
fn pair(t: f64, ts: &super::TrackStep) -> TrackPair {
    let gap = Sample {
        t,
        requests: f64::NAN,
        errors: f64::NAN,
        p50_ms: None,
        p95_ms: None,
        p99_ms: None,
    };
    let sample = |p: &Option<crate::backends::metrics::MetricPoint>| {
        p.as_ref().map_or(gap, |p| Sample {
            t,
            ..p.to_sample(p.at)
        })
    };
    TrackPair {
        t,
        canary: sample(&ts.canary),
        stable: sample(&ts.stable),
    }
}

/// A version not reported in time after a deploy the backend only
/// accepted (a webhook, Vercel) may still land: unknown, not failed (see
/// `strategy::not_reported`); after one it saw end, the failure stands.
fn unreported(f: Flow, s: &Steps<'_>, backend: &str, ended: bool, accepted: &str) -> Flow {
    match f {
        Flow::Detail(why) if !ended => Flow::Failed(super::strategy::not_reported(
            s.env,
            s.version,
            backend,
            format!("{why}; {accepted}"),
            false,
        )),
        other => other,
    }
}

/// Poll `source` until it reports the version or the deploy's time is up
/// (`s.deadline`).
async fn wait_reports(s: &Steps<'_>, source: &VersionSource, what: &str) -> Result<(), Flow> {
    wait_until_reported(s, Instant::now(), || source.read())
        .await
        .map_err(|still| Flow::Detail(still.why(&format!("{what} of {}", s.env), "", s.timeout)))
}

mod weights;
pub(super) use weights::{first_traffic, last_weight, why_unjudged};

#[cfg(test)]
mod tests;
