//! The strategy seam (SPEC §2): how an environment's version is read and
//! how a deploy or a rollback reaches it. The audited frame around a deploy
//! — lock, started record, events, outcome record, "unknown" when
//! interrupted — is the same for every strategy ([`Engine::deploy`]); what
//! happens inside it is the strategy's.

use std::time::{Duration, Instant};

use super::{Engine, EngineError, Event};
use crate::backends::BackendError;
use crate::backends::deploy::ready::{ReadyCheck, Rollout};
use crate::backends::deploy::{DeployTarget, Progress};
use crate::backends::slots::BlueGreen;
use crate::backends::version::VersionSource;
use crate::config::{DeployConfig, EnvironmentConfig, VersionSourceConfig};
use crate::domain::strategy::{BlueGreenMove, BlueGreenRollback, blue_green_rollback, idle_slot};
use crate::domain::{ActionKind, Outcome, Version};

/// One environment's backends, by strategy.
// One per environment, built once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Strategy {
    /// Deploy (and roll back) through the environment's deploy backend;
    /// its version source says what it runs.
    Redeploy {
        version: VersionSource,
        deploy: DeployTarget,
    },
    /// The canary (see [`super::canary`]): the env's own version source and
    /// deploy are the stable track's.
    Canary {
        version: VersionSource,
        deploy: DeployTarget,
        canary: Box<super::canary::CanaryBackends>,
    },
    /// Deploy the idle slot and switch traffic to it; roll back by
    /// switching back while the old slot is warm.
    BlueGreen {
        backends: BlueGreen,
        keep_warm: Duration,
        /// How long a switch may take until the live slot reads the new one.
        switch_timeout: Duration,
    },
}

impl Strategy {
    /// `repo` (`[release] git`) resolves versions to commits for a deploy
    /// backend that needs one (CodePipeline).
    pub(super) fn from_config(
        e: &EnvironmentConfig,
        client: &reqwest::Client,
        repo: Option<&crate::backends::vcs::git::GitRepo>,
    ) -> Strategy {
        let name = e.name();
        if let Some(bg) = &e.blue_green
            && e.strategy() == crate::config::RollbackStrategy::BlueGreen
        {
            let cfg = bg.get_ref();
            return Strategy::BlueGreen {
                backends: BlueGreen::from_config(name, cfg, client.clone()),
                keep_warm: cfg.keep_warm.0,
                switch_timeout: cfg.switch.get_ref().timeout.0,
            };
        }
        // A validated config always has both; a config built in code
        // without them gets sources that fail with "empty command".
        let version = e
            .version
            .as_ref()
            .map(|v| v.get_ref().clone())
            .unwrap_or_else(empty_source);
        let deploy = e
            .deploy
            .as_ref()
            .map(|d| d.get_ref().clone())
            .unwrap_or_else(empty_hook);
        let version = VersionSource::from_config(name, &version, client.clone());
        let deploy = DeployTarget::from_config(name, &deploy, client.clone()).with_repo(repo);
        match super::canary::CanaryBackends::from_config(e, client) {
            Some(c) if e.strategy() == crate::config::RollbackStrategy::Canary => {
                Strategy::Canary {
                    version,
                    deploy,
                    canary: Box::new(c),
                }
            }
            _ => Strategy::Redeploy { version, deploy },
        }
    }

    /// What the environment runs.
    pub(super) async fn read_version(&self) -> Result<Version, BackendError> {
        match self {
            Strategy::Redeploy { version, .. } | Strategy::Canary { version, .. } => {
                version.read().await
            }
            Strategy::BlueGreen { backends, .. } => backends.live_version().await,
        }
    }

    /// What the environment runs, for a status: a blue-green one has all
    /// its sources read once (the live slot and both slots, at once), and
    /// the reading is kept for its rollback plan.
    pub(super) async fn read_for_status(
        &self,
    ) -> (
        Result<Version, BackendError>,
        Option<crate::backends::slots::SlotsReading>,
    ) {
        match self {
            Strategy::BlueGreen { backends, .. } => {
                let reading = backends.read_all().await;
                (reading.live_version(), Some(reading))
            }
            _ => (self.read_version().await, None),
        }
    }

    /// The backend that says what the environment runs, for messages.
    pub(super) fn version_name(&self) -> &str {
        match self {
            Strategy::Redeploy { version, .. } | Strategy::Canary { version, .. } => version.name(),
            Strategy::BlueGreen { backends, .. } => backends.live_name(),
        }
    }

    /// Answer the review the deploy in flight waits for in its CI/CD system
    /// (see [`DeployTarget::review`]).
    pub(super) async fn review(
        &self,
        answer: &crate::backends::deploy::Review,
    ) -> Result<String, BackendError> {
        match self {
            Strategy::Redeploy { deploy, .. } => deploy.review(answer).await,
            Strategy::Canary { .. } => Err(BackendError::Command {
                backend: "canary".into(),
                cause: "nothing waits for an answer here: the canary is judged on its metrics"
                    .into(),
            }),
            Strategy::BlueGreen { .. } => Err(BackendError::Command {
                backend: "blue-green".into(),
                cause:
                    "nothing waits for an answer here: slot deploys have no approvals of their own"
                        .into(),
            }),
        }
    }

    /// Tell the backend how the deploy ended (see [`DeployTarget::finished`]).
    pub(super) async fn finished(&self, ok: bool, detail: &str) {
        match self {
            Strategy::Redeploy { deploy, .. } | Strategy::Canary { deploy, .. } => {
                deploy.finished(ok, detail).await
            }
            Strategy::BlueGreen { .. } => {}
        }
    }
}

/// The deploy's timeout and poll interval.
pub(super) fn deploy_timing(e: &EnvironmentConfig) -> (Duration, Duration) {
    let d = match &e.blue_green {
        Some(bg) if e.deploy.is_none() => Some(bg.get_ref().deploy.get_ref()),
        _ => e.deploy.as_ref().map(|d| d.get_ref()),
    };
    let timeout = d.map(|d| d.timeout.0).unwrap_or(Duration::from_secs(120));
    let poll = d.map(|d| d.poll.0).unwrap_or(Duration::from_secs(1));
    (timeout, poll.max(Duration::from_millis(100)))
}

fn empty_source() -> VersionSourceConfig {
    VersionSourceConfig {
        url: None,
        pointer: "/version".into(),
        command: Some(Vec::new()),
        token_env: None,
        timeout: crate::domain::HumanDuration::from_secs(5),
        vercel: None,
    }
}

fn empty_hook() -> DeployConfig {
    DeployConfig {
        webhook: None,
        command: Some(Vec::new()),
        token_env: None,
        github_actions: None,
        jenkins: None,
        vercel: None,
        codepipeline: None,
        ready: None,
        timeout: crate::domain::HumanDuration::from_secs(120),
        poll: crate::domain::HumanDuration::from_secs(1),
    }
}

/// How the steps inside an audited deploy ended, when not well.
pub(super) struct StepFailure {
    /// `Failed`, or `Unknown` when a call that changes something lost its answer.
    pub outcome: Outcome,
    /// The audit record's detail.
    pub detail: String,
    pub error: EngineError,
    /// Tell the deploy backend it failed (after the audit record).
    pub tell_backend: bool,
}

impl StepFailure {
    pub(super) fn backend(e: BackendError) -> StepFailure {
        let outcome = match e {
            BackendError::OutcomeUnknown { .. } => Outcome::Unknown,
            _ => Outcome::Failed,
        };
        StepFailure {
            outcome,
            detail: e.to_string(),
            error: e.into(),
            tell_backend: false,
        }
    }
}

/// What a deploy's steps need from the frame around them.
pub(super) struct Steps<'a> {
    pub env: &'a str,
    /// Promote or Rollback.
    pub action: ActionKind,
    pub version: &'a Version,
    /// The deploy's timeout (until the environment reports the version).
    pub timeout: Duration,
    /// When that time is up: `timeout` after the deploy began. It bounds
    /// the deploy call, its ready check and the wait for the version
    /// together — one clock, so the deploy's lock (taken for `timeout`
    /// and a margin) cannot lapse between them. The canary's stable track
    /// is a deploy of its own, with a deadline of its own.
    pub deadline: Instant,
    /// How often the version is polled while deploying.
    pub poll: Duration,
    pub emit: &'a (dyn Fn(Event) + Send + Sync),
    /// A rollback (a backend with its own rollback uses it: Vercel).
    pub rollback: bool,
}

/// What a version source last showed when a wait for the deploy's version
/// ran out of time: the other version it reported, and why its last read
/// failed (when it did).
pub(super) struct StillReports {
    observed: Option<Version>,
    last_error: Option<String>,
}

impl StillReports {
    /// "`subject` still reports v1 after 60s`context` (last read failed: …)".
    pub(super) fn why(&self, subject: &str, context: &str, timeout: Duration) -> String {
        let mut why = format!(
            "{subject} still reports {} after {}s{context}",
            self.observed
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "no version".into()),
            timeout.as_secs()
        );
        if let Some(e) = &self.last_error {
            why.push_str(&format!(" (last read failed: {e})"));
        }
        why
    }
}

/// Read through `read` until it reports `s.version`, at most until
/// `s.deadline` (at least once), telling the console what it sees between
/// reads (time counted from `shown_since`) every `s.poll`. The deadline
/// bounds each read too: a read that hangs is cut at the time left (the
/// read's own timeout, 5 s, ran an 8 s deploy to 12 s), not waited out;
/// an answer already there is still taken with no time left.
pub(super) async fn wait_until_reported<E, F>(
    s: &Steps<'_>,
    shown_since: Instant,
    mut read: impl FnMut() -> F,
) -> Result<(), StillReports>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<Version, E>>,
{
    let mut observed: Option<Version> = None;
    let mut last_error: Option<String>;
    loop {
        let left = s.deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, read()).await {
            Ok(Ok(v)) if &v == s.version => return Ok(()),
            Ok(Ok(v)) => {
                observed = Some(v);
                last_error = None;
            }
            Ok(Err(e)) => last_error = Some(e.to_string()),
            Err(_) => {
                last_error =
                    Some("no answer before the deploy's timeout (the read was cut there)".into())
            }
        }
        let left = s.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StillReports {
                observed,
                last_error,
            });
        }
        (s.emit)(Event::DeployWaiting {
            env: s.env.to_string(),
            elapsed_s: shown_since.elapsed().as_secs_f64(),
            observed: observed.clone(),
        });
        tokio::time::sleep(s.poll.min(left)).await;
    }
}

/// After a deploy call returned while its rollout may go on: poll the
/// deploy's ready check (`ready = { command }`), if it has one, every
/// `s.poll` until it says the rollout is done — before `s.deadline` (the
/// deploy's timeout, counted from the deploy's start), telling the
/// console "rolling out (ready check: still going, 40s)" between runs.
/// Ok(None) without a check; Ok(Some(note)) once done, the note for the
/// audit record. The check says the rollout failed: the deploy failed.
/// Time runs out, or the check cannot tell (another exit, cannot run):
/// unknown — the rollout was not cancelled and may still land. `context`
/// ends every message (" (slot green; traffic stays on blue)").
pub(super) async fn follow_ready(
    s: &Steps<'_>,
    check: Option<&ReadyCheck>,
    accepted: &str,
    context: &str,
) -> Result<Option<String>, StepFailure> {
    let Some(check) = check else {
        return Ok(None);
    };
    let (env, version) = (s.env, s.version);
    let deadline = s.deadline;
    let t0 = Instant::now();
    let mut runs = 0u32;
    let mut last: Option<String> = None;
    let said = |d: &Option<String>| d.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
    let unknown = |cause: String| {
        let cause = format!(
            "{cause}{context}; the deploy was not cancelled, so it may still land: look before deploying again; {accepted}"
        );
        StepFailure {
            outcome: Outcome::Unknown,
            detail: format!("{}: outcome unknown: {cause}", check.name),
            error: EngineError::Backend(BackendError::OutcomeUnknown {
                backend: check.name.clone(),
                cause,
            }),
            tell_backend: false,
        }
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(unknown(format!(
                "still rolling out when the deploy's timeout ({}s) passed (ready check: still going{}, {})",
                s.timeout.as_secs(),
                said(&last),
                runs_word(runs)
            )));
        }
        runs += 1;
        let (state, detail) = match check.check(version, left).await {
            Ok(a) => match a.rollout {
                Rollout::Done => {
                    let took = t0.elapsed().as_secs_f64();
                    (s.emit)(Event::DeployProgress {
                        env: env.to_string(),
                        progress: Progress::rolling_out("done", took, a.detail.clone()),
                    });
                    return Ok(Some(format!(
                        "rolled out: the ready check said done after {took:.1}s ({}){}",
                        runs_word(runs),
                        said(&a.detail)
                    )));
                }
                Rollout::Failed => {
                    let detail = format!(
                        "the ready check says the rollout failed after {:.1}s{}{context}; {accepted}",
                        t0.elapsed().as_secs_f64(),
                        said(&a.detail)
                    );
                    return Err(StepFailure {
                        outcome: Outcome::Failed,
                        error: EngineError::DeployFailed {
                            env: env.to_string(),
                            version: version.clone(),
                            detail: detail.clone(),
                        },
                        detail,
                        tell_backend: true,
                    });
                }
                Rollout::Going => ("still going", a.detail),
            },
            // Cut short by its own `timeout` with time left: ask again.
            Err(BackendError::Timeout { after, .. }) if Instant::now() < deadline => (
                "no answer",
                Some(format!("a run took longer than {}s", after.as_secs_f64())),
            ),
            Err(BackendError::Timeout { .. }) => continue,
            Err(e) => {
                return Err(unknown(format!(
                    "the ready check could not tell where the rollout is ({e})"
                )));
            }
        };
        tracing::debug!(env, %version, "ready check: {state}{}", said(&detail));
        (s.emit)(Event::DeployProgress {
            env: env.to_string(),
            progress: Progress::rolling_out(state, t0.elapsed().as_secs_f64(), detail.clone()),
        });
        last = detail;
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(s.poll.min(left)).await;
    }
}

/// "1 run", "3 runs".
fn runs_word(n: u32) -> String {
    if n == 1 {
        "1 run".into()
    } else {
        format!("{n} runs")
    }
}

impl Engine {
    /// The steps of a deploy or rollback inside the audited frame: Ok with
    /// the line the audit record keeps once the environment reports the
    /// version, and the deploy's page where the backend gave one.
    pub(super) async fn run_steps(
        &self,
        idx: usize,
        steps: &Steps<'_>,
    ) -> Result<(String, Option<String>), StepFailure> {
        match &self.inner.envs[idx].strategy {
            Strategy::Redeploy { version, deploy } => redeploy_steps(steps, version, deploy).await,
            // A rollback of the stable track (the canary already at 0) is a redeploy.
            Strategy::Canary {
                version, deploy, ..
            } if steps.rollback => redeploy_steps(steps, version, deploy).await,
            Strategy::Canary {
                version,
                deploy,
                canary,
            } => self
                .canary_steps(idx, steps, (version, deploy), canary)
                .await
                .map(|line| (line, None)),
            Strategy::BlueGreen {
                backends,
                keep_warm,
                switch_timeout,
            } => {
                self.blue_green_steps(steps, backends, *keep_warm, *switch_timeout)
                    .await
            }
        }
    }
}

/// Redeploy: start the deploy through the backend, then poll the version
/// source until it reports the version or the timeout passes.
async fn redeploy_steps(
    s: &Steps<'_>,
    source: &VersionSource,
    deploy: &DeployTarget,
) -> Result<(String, Option<String>), StepFailure> {
    let (env, version) = (s.env, s.version);
    let report = |progress: crate::backends::deploy::Progress| {
        tracing::debug!(env, "{}", progress.line());
        (s.emit)(Event::DeployProgress {
            env: env.to_string(),
            progress,
        });
    };
    let asked = if s.rollback {
        deploy.rollback(env, version, &report).await
    } else {
        deploy.start(env, version, &report).await
    };
    let asked = asked.map_err(StepFailure::backend)?;
    let (mut accepted, url, mut ended) = (asked.line, asked.url, asked.ended);
    tracing::info!(env, %version, "{accepted}");
    if let Some(note) = follow_ready(s, deploy.ready(), &accepted, "").await? {
        // The rollout was seen to end: a version still not reported is a failure.
        ended = true;
        accepted = format!("{accepted}; {note}");
    }
    let t0 = Instant::now();
    if let Err(still) = wait_until_reported(s, t0, || source.read()).await {
        let why = format!("{}; {accepted}", still.why(env, "", s.timeout));
        return Err(not_reported(env, version, deploy.name(), why, ended));
    }
    let took = t0.elapsed().as_secs_f64();
    // The backend's answer (a CI run's or build's URL) goes into the audit record.
    Ok((
        format!("{env} reports {version} after {took:.1}s; {accepted}"),
        url,
    ))
}

/// The environment did not report the version before the deploy's
/// timeout. When the backend saw its work end (a command exited, a run or
/// build succeeded), the deploy failed. When it only accepted the work (a
/// webhook's 2xx, Vercel's promote), that work was not cancelled and may
/// still land: by the one rule of `call::lost_track`, the outcome is
/// unknown — never "failed", and never repeated blindly.
pub(super) fn not_reported(
    env: &str,
    version: &Version,
    backend: &str,
    why: String,
    ended: bool,
) -> StepFailure {
    if ended {
        return StepFailure {
            outcome: Outcome::Failed,
            detail: why.clone(),
            error: EngineError::DeployFailed {
                env: env.to_string(),
                version: version.clone(),
                detail: why,
            },
            tell_backend: true,
        };
    }
    let cause = format!(
        "{why}; it was accepted and shipdeck did not cancel it, so it may still land: look before deploying again"
    );
    StepFailure {
        outcome: Outcome::Unknown,
        detail: cause.clone(),
        error: EngineError::Backend(BackendError::OutcomeUnknown {
            backend: backend.to_string(),
            cause,
        }),
        // Neither failed nor done: the backend's own record is not told.
        tell_backend: false,
    }
}

/// A failed step, named: which slot, which step.
fn step_failed(env: &str, version: &Version, detail: String) -> StepFailure {
    StepFailure {
        outcome: Outcome::Failed,
        error: EngineError::DeployFailed {
            env: env.to_string(),
            version: version.clone(),
            detail: detail.clone(),
        },
        detail,
        tell_backend: false,
    }
}

/// A backend's failure in a named step: unknown stays unknown.
fn step_error(env: &str, version: &Version, step: String, e: BackendError) -> StepFailure {
    let unknown = matches!(e, BackendError::OutcomeUnknown { .. });
    let detail = format!("{step}: {e}");
    StepFailure {
        outcome: if unknown {
            Outcome::Unknown
        } else {
            Outcome::Failed
        },
        error: if unknown {
            EngineError::Backend(e)
        } else {
            EngineError::DeployFailed {
                env: env.to_string(),
                version: version.clone(),
                detail: detail.clone(),
            }
        },
        detail,
        tell_backend: false,
    }
}

/// The next pause while waiting for something that usually answers at
/// once (a switch): 10 ms, doubling up to `cap`.
fn next_pause(pause: Duration, cap: Duration) -> Duration {
    (pause * 2).min(cap.max(Duration::from_millis(10)))
}

impl Engine {
    /// Blue-green: deploy the idle slot and wait until it reports the
    /// version (skipped for a rollback while the old slot is warm), switch
    /// traffic to it, and wait until the live slot reads it.
    async fn blue_green_steps(
        &self,
        s: &Steps<'_>,
        bg: &BlueGreen,
        keep_warm: Duration,
        switch_timeout: Duration,
    ) -> Result<(String, Option<String>), StepFailure> {
        let (env, version) = (s.env, s.version);
        let mut url = None;
        let t0 = Instant::now();
        // The live slot and what the slots run, read at once, not one
        // after the other; what the live slot runs only for a rollback,
        // which asks whether the old slot is warm — a promotion does not
        // wait for that read.
        let rollback = s.action == ActionKind::Rollback;
        let (live, versions) = bg.read_for_step(rollback).await;
        let live = live.map_err(|e| step_error(env, version, "reading the live slot".into(), e))?;
        let Some(idle) = idle_slot(bg.slots(), &live).map(str::to_string) else {
            return Err(step_failed(
                env,
                version,
                format!("the live slot {live:?} is not one of the slots"),
            ));
        };
        // What the idle slot runs now: a slot that already answers with
        // the version takes the traffic without a redeploy. Deploying it
        // again could not be waited for — it would report the version
        // before that deploy finished — and traffic would switch to a slot
        // in the middle of a deploy.
        let runs = |slot: &str| {
            let i = bg.slots().iter().position(|s| s == slot)?;
            versions[i].as_ref()?.as_ref().ok().cloned()
        };
        let idle_runs = runs(&idle);
        let step = if rollback {
            let live_runs = runs(&live);
            // Traffic left the idle slot when the live slot's version went
            // live: the environment's last recorded deploy.
            let left_idle_at = self
                .inner
                .store
                .recent_deploys(env, 1)
                .await
                .ok()
                .and_then(|mut d| d.pop())
                .filter(|d| Some(&d.version) == live_runs.as_ref())
                .map(|d| d.at);
            blue_green_rollback(&BlueGreenRollback {
                slots: bg.slots(),
                live: &live,
                idle_runs: idle_runs.as_ref(),
                target: version,
                left_idle_at,
                keep_warm,
                now: chrono::Utc::now(),
            })
        } else {
            Some(BlueGreenMove::DeployAndSwitch {
                slot: idle.clone(),
                why: String::new(),
            })
        };
        let mut notes = Vec::new();
        match step {
            Some(BlueGreenMove::SwitchBack { .. }) => {
                notes.push(format!(
                    "{idle} still runs {version} and is warm: switched back, nothing redeployed"
                ));
            }
            Some(BlueGreenMove::DeployAndSwitch { why, .. })
                if idle_runs.as_ref() == Some(version) =>
            {
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                };
                notes.push(format!(
                    "{idle} already runs {version} and answers{why}: switched without redeploying"
                ));
            }
            Some(BlueGreenMove::DeployAndSwitch { why, .. }) => {
                if !why.is_empty() {
                    notes.push(format!("old slot not warm ({why})"));
                }
                let report = |progress: crate::backends::deploy::Progress| {
                    tracing::debug!(env, slot = %idle, "{}", progress.line());
                    (s.emit)(Event::DeployProgress {
                        env: env.to_string(),
                        progress,
                    });
                };
                let started = bg.deploy(&idle, version, &report).await.map_err(|e| {
                    step_error(
                        env,
                        version,
                        format!("deploying {version} to slot {idle} (traffic stays on {live})"),
                        e,
                    )
                })?;
                let (mut accepted, mut ended) = (started.line, started.ended);
                url = started.url;
                tracing::info!(env, %version, slot = %idle, "{accepted}");
                let context = format!(" (slot {idle}; traffic stays on {live})");
                if let Some(note) = follow_ready(s, bg.ready(&idle), &accepted, &context).await? {
                    ended = true;
                    accepted = format!("{accepted}; {note}");
                }
                let t_deploy = Instant::now();
                if let Err(still) = wait_until_reported(s, t0, || bg.version_of(&idle)).await {
                    let why = still.why(
                        &format!("slot {idle}"),
                        &format!(" (traffic stays on {live})"),
                        s.timeout,
                    );
                    let why = format!("{why}; {accepted}");
                    if ended {
                        return Err(step_failed(env, version, why));
                    }
                    return Err(not_reported(
                        env,
                        version,
                        &format!("slot {idle} of {env}"),
                        why,
                        false,
                    ));
                }
                notes.push(format!(
                    "deployed {version} to {idle}, which reports it after {:.1}s; {accepted}",
                    t_deploy.elapsed().as_secs_f64()
                ));
            }
            None => {
                return Err(step_failed(
                    env,
                    version,
                    format!("the live slot {live:?} is not one of the slots"),
                ));
            }
        }
        // The switch, then the live slot read back.
        let t_switch = Instant::now();
        // A switch whose outcome is unknown (its answer lost, a 5xx, a
        // command stopped at its timeout) may have been made: the live
        // slot read back settles it, as for one accepted.
        let mut unsure = None;
        match bg.switch(&idle).await {
            Ok(_) => {}
            Err(e @ BackendError::OutcomeUnknown { .. }) => unsure = Some(e),
            Err(e) => {
                let now_live = match bg.live().await {
                    Ok(l) if l == live => format!("{env} stays live on {live}"),
                    Ok(l) => format!("the live slot now reads {l}"),
                    Err(r) => format!("the live slot cannot be read ({r})"),
                };
                let mut f = step_error(env, version, format!("switching traffic to {idle}"), e);
                f.detail = format!("{}; {now_live}", f.detail);
                if let EngineError::DeployFailed { detail, .. } = &mut f.error {
                    *detail = f.detail.clone();
                }
                return Err(f);
            }
        }
        let mut pause = Duration::from_millis(10);
        loop {
            let read = bg.live().await;
            if matches!(&read, Ok(l) if *l == idle) {
                break;
            }
            let elapsed = t_switch.elapsed();
            if elapsed >= switch_timeout {
                let now = match read {
                    Ok(l) => format!("reads {l}"),
                    Err(e) => format!("cannot be read ({e})"),
                };
                // The switch was accepted (or may have been) and not seen
                // to land: traffic may still move (a load balancer that is
                // slow to apply it), so the outcome is unknown, never
                // "failed".
                let asked = match &unsure {
                    None => format!("switched traffic to {idle}, but"),
                    Some(e) => format!("switching traffic to {idle}: {e}; and"),
                };
                return Err(not_reported(
                    env,
                    version,
                    &format!("traffic switch of {env}"),
                    format!(
                        "{asked} after {}s the live slot still {now}",
                        switch_timeout.as_secs()
                    ),
                    false,
                ));
            }
            tokio::time::sleep(pause.min(switch_timeout.saturating_sub(elapsed))).await;
            pause = next_pause(pause, s.poll);
        }
        if let Some(e) = &unsure {
            notes.push(format!(
                "the switch's own answer left it unsure ({e}), the live slot read back says it was made"
            ));
        }
        notes.push(crate::domain::strategy::switch_note(
            &idle,
            t_switch.elapsed().as_secs_f64(),
        ));
        let line = format!(
            "{env} live on {idle} ({version}) after {:.1}s, was {live}: {}",
            t0.elapsed().as_secs_f64(),
            notes.join("; ")
        );
        Ok((line, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A ready check running `script` under sh with `$1` = env and `$2` =
    /// version; a file in `dir` counts its runs.
    fn check(script: &str) -> ReadyCheck {
        ReadyCheck::new(
            "prod",
            &crate::config::ReadyConfig {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    script.into(),
                    "ready".into(),
                    "{env}".into(),
                    "{version}".into(),
                ],
                timeout: None,
            },
        )
    }

    /// Follow `check` with the deploy's `timeout`; the events it emitted.
    async fn follow(
        check: Option<&ReadyCheck>,
        timeout: Duration,
    ) -> (Result<Option<String>, StepFailure>, Vec<Event>) {
        let seen = Mutex::new(Vec::new());
        let emit = |ev: Event| seen.lock().unwrap().push(ev);
        let version = Version::parse("v2.0.0").unwrap();
        let s = Steps {
            env: "prod",
            action: ActionKind::Promote,
            version: &version,
            timeout,
            deadline: Instant::now() + timeout,
            poll: Duration::from_millis(50),
            emit: &emit,
            rollback: false,
        };
        let r = follow_ready(&s, check, "deploy exited 0", "").await;
        (r, seen.into_inner().unwrap())
    }

    fn lines(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::DeployProgress { progress, .. } => Some(progress.line_at(0.0)),
                _ => None,
            })
            .collect()
    }

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_rollout_is_done_once_the_check_says_so_and_says_where_it_was_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let n = dir.path().join("runs");
        let script = format!(
            "n=$(cat {n} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {n}; \
             if [ $n -lt 3 ]; then echo \"$n of 3 pods run $2\"; exit 3; fi; echo \"$1 rolled out\"",
            n = n.display()
        );
        let (r, events) = follow(Some(&check(&script)), LONG).await;
        let note = r.ok().flatten().expect("done");
        assert!(
            note.starts_with("rolled out: the ready check said done after")
                && note.ends_with("(3 runs): prod rolled out"),
            "{note}"
        );
        assert_eq!(
            lines(&events),
            [
                "rolling out (ready check: still going, 0s) — 1 of 3 pods run v2.0.0",
                "rolling out (ready check: still going, 0s) — 2 of 3 pods run v2.0.0",
                "rolling out (ready check: done, 0s) — prod rolled out",
            ]
        );
        // No check: nothing to follow, nothing said.
        let (r, events) = follow(None, LONG).await;
        assert!(matches!(r, Ok(None)) && events.is_empty());
    }

    #[tokio::test]
    async fn a_failed_rollout_fails_the_deploy_and_a_late_or_mute_one_is_unknown() {
        let (r, _) = follow(
            Some(&check("echo 'progress deadline exceeded'; exit 1")),
            LONG,
        )
        .await;
        let f = r.expect_err("failed");
        assert_eq!(f.outcome, Outcome::Failed);
        assert!(f.tell_backend);
        assert!(
            matches!(&f.error, EngineError::DeployFailed { detail, .. } if detail == &f.detail),
            "{}",
            f.detail
        );
        assert!(
            f.detail
                .starts_with("the ready check says the rollout failed after")
                && f.detail
                    .ends_with(": progress deadline exceeded; deploy exited 0"),
            "{}",
            f.detail
        );
        // Still going when the deploy's time is up: unknown, not failed.
        let (r, events) =
            follow(Some(&check("echo waiting; exit 3")), Duration::from_secs(2)).await;
        let f = r.expect_err("unknown");
        assert_eq!(f.outcome, Outcome::Unknown);
        assert!(!f.tell_backend);
        assert!(matches!(
            f.error,
            EngineError::Backend(BackendError::OutcomeUnknown { .. })
        ));
        assert!(
            f.detail
                .contains("still rolling out when the deploy's timeout")
                && f.detail.contains("(ready check: still going: waiting, ")
                && f.detail.contains("may still land"),
            "{}",
            f.detail
        );
        assert!(!events.is_empty());
        // A run that outlives the deploy's time is stopped: unknown too.
        let (r, _) = follow(Some(&check("sleep 30")), Duration::from_millis(300)).await;
        assert_eq!(r.expect_err("unknown").outcome, Outcome::Unknown);
        // A run cut short by the check's own timeout counts as still going.
        let mut slow = check("sleep 5");
        slow.run_timeout = Some(Duration::from_millis(150));
        let (r, events) = follow(Some(&slow), Duration::from_secs(2)).await;
        assert_eq!(r.expect_err("unknown").outcome, Outcome::Unknown);
        assert_eq!(
            lines(&events).first().map(String::as_str),
            Some("rolling out (ready check: no answer, 0s) — a run took longer than 0.15s")
        );
        // A check that cannot tell (another exit): unknown at once, with why.
        let (r, _) = follow(Some(&check("echo broken >&2; exit 2")), LONG).await;
        let f = r.expect_err("unknown");
        assert_eq!(f.outcome, Outcome::Unknown);
        assert!(
            f.detail.contains("could not tell") && f.detail.contains("exit code 2"),
            "{}",
            f.detail
        );
    }

    /// The deploy call, the ready check and the version wait share one
    /// deadline: with the deploy's time used up, the check is not run and
    /// the version is read once, not for another whole timeout.
    #[tokio::test]
    async fn with_the_deploys_time_used_up_nothing_waits_on() {
        let dir = tempfile::tempdir().unwrap();
        let n = dir.path().join("runs");
        let script = format!("echo run >> {}; exit 0", n.display());
        let emit = |_: Event| {};
        let version = Version::parse("v2.0.0").unwrap();
        let s = Steps {
            env: "prod",
            action: ActionKind::Promote,
            version: &version,
            timeout: LONG,
            // Began a whole timeout ago.
            deadline: Instant::now(),
            poll: Duration::from_millis(50),
            emit: &emit,
            rollback: false,
        };
        let r = follow_ready(&s, Some(&check(&script)), "deploy exited 0", "").await;
        let f = r.expect_err("unknown");
        assert_eq!(f.outcome, Outcome::Unknown);
        assert!(
            f.detail
                .contains("still rolling out when the deploy's timeout (60s) passed")
                && f.detail.contains("0 runs"),
            "{}",
            f.detail
        );
        assert!(!n.exists(), "the check ran");
        let reads = std::sync::atomic::AtomicU32::new(0);
        let still = wait_until_reported(&s, Instant::now(), || {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, String>(Version::parse("v1.0.0").unwrap()) }
        })
        .await
        .expect_err("not reported");
        assert_eq!(reads.into_inner(), 1);
        assert_eq!(
            still.why("prod", "", s.timeout),
            "prod still reports v1.0.0 after 60s"
        );
        // Time left: the version is read until it is reported.
        let s = Steps {
            deadline: Instant::now() + LONG,
            ..s
        };
        let reads = std::sync::atomic::AtomicU32::new(0);
        let r = wait_until_reported(&s, Instant::now(), || {
            let n = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let v = if n < 2 { "v1.0.0" } else { "v2.0.0" };
            async move { Ok::<_, String>(Version::parse(v).unwrap()) }
        })
        .await;
        assert!(r.is_ok());
        assert_eq!(reads.into_inner(), 3);
    }

    /// The timeout is a deadline: a version read that hangs (its own
    /// timeout longer than what is left) is cut when the deploy's time is
    /// up, and the failure says the read got no answer. Without the bound
    /// this wait never ends (the outer 30 s guard fails the test).
    #[tokio::test]
    async fn a_hanging_last_read_is_cut_at_the_deploys_deadline() {
        let emit = |_: Event| {};
        let version = Version::parse("v2.0.0").unwrap();
        let s = Steps {
            env: "prod",
            action: ActionKind::Promote,
            version: &version,
            timeout: Duration::from_millis(300),
            deadline: Instant::now() + Duration::from_millis(300),
            poll: Duration::from_millis(50),
            emit: &emit,
            rollback: false,
        };
        let reads = std::sync::atomic::AtomicU32::new(0);
        let waited = tokio::time::timeout(
            Duration::from_secs(30),
            wait_until_reported(&s, Instant::now(), || {
                let n = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if n == 0 {
                        return Ok::<_, String>(Version::parse("v1.0.0").unwrap());
                    }
                    std::future::pending().await
                }
            }),
        )
        .await
        .expect("the wait ends at the deploy's deadline");
        let still = waited.expect_err("not reported");
        assert_eq!(still.observed, Some(Version::parse("v1.0.0").unwrap()));
        let err = still.last_error.unwrap_or_default();
        assert!(
            err == "no answer before the deploy's timeout (the read was cut there)",
            "{err}"
        );
        assert!(Instant::now() >= s.deadline);
    }

    /// The three waits (redeploy, blue-green slot, canary track) share this
    /// sentence; each adds its own subject and context.
    #[test]
    fn a_timed_out_wait_says_what_was_seen_and_why_the_last_read_failed() {
        let seen = StillReports {
            observed: Some(Version::parse("v1").unwrap()),
            last_error: None,
        };
        assert_eq!(
            seen.why(
                "slot blue",
                " (traffic stays on green)",
                Duration::from_secs(60)
            ),
            "slot blue still reports v1 after 60s (traffic stays on green)"
        );
        let failed = StillReports {
            observed: None,
            last_error: Some("connection refused".into()),
        };
        assert_eq!(
            failed.why("prod", "", Duration::from_secs(2)),
            "prod still reports no version after 2s (last read failed: connection refused)"
        );
    }
}
