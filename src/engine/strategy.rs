//! The strategy seam (SPEC §2): how an environment's version is read and
//! how a deploy or a rollback reaches it. The audited frame around a deploy
//! — lock, started record, events, outcome record, "unknown" when
//! interrupted — is the same for every strategy ([`Engine::deploy`]); what
//! happens inside it is the strategy's.

use std::time::{Duration, Instant};

use super::{Engine, EngineError, Event};
use crate::backends::BackendError;
use crate::backends::deploy::DeployTarget;
use crate::backends::version::VersionSource;
use crate::config::{DeployConfig, EnvironmentConfig, VersionSourceConfig};
use crate::domain::{Outcome, Version};

/// One environment's backends, by strategy.
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
}

impl Strategy {
    pub(super) fn from_config(e: &EnvironmentConfig, client: &reqwest::Client) -> Strategy {
        let name = e.name();
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
        let deploy = DeployTarget::from_config(name, &deploy, client.clone());
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
        }
    }

    /// The backend that says what the environment runs, for messages.
    pub(super) fn version_name(&self) -> &str {
        match self {
            Strategy::Redeploy { version, .. } | Strategy::Canary { version, .. } => version.name(),
        }
    }

    /// Tell the backend how the deploy ended (see [`DeployTarget::finished`]).
    pub(super) async fn finished(&self, ok: bool, detail: &str) {
        match self {
            Strategy::Redeploy { deploy, .. } | Strategy::Canary { deploy, .. } => {
                deploy.finished(ok, detail).await
            }
        }
    }
}

/// The deploy's timeout and poll interval.
pub(super) fn deploy_timing(e: &EnvironmentConfig) -> (Duration, Duration) {
    let d = e.deploy.as_ref().map(|d| d.get_ref());
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
    pub version: &'a Version,
    /// The deploy's timeout (until the environment reports the version).
    pub timeout: Duration,
    /// How often the version is polled while deploying.
    pub poll: Duration,
    /// A rollback rather than a promotion.
    pub rollback: bool,
    pub emit: &'a (dyn Fn(Event) + Send + Sync),
}

impl Engine {
    /// The steps of a deploy or rollback inside the audited frame: Ok with
    /// the line the audit record keeps once the environment reports the
    /// version.
    pub(super) async fn run_steps(
        &self,
        idx: usize,
        steps: &Steps<'_>,
    ) -> Result<String, StepFailure> {
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
            } => {
                self.canary_steps(idx, steps, (version, deploy), canary)
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
) -> Result<String, StepFailure> {
    let (env, version) = (s.env, s.version);
    let accepted = deploy
        .start(env, version)
        .await
        .map_err(StepFailure::backend)?;
    tracing::info!(env, %version, "{accepted}");
    let t0 = Instant::now();
    let mut observed: Option<Version> = None;
    let mut last_error: Option<String>;
    loop {
        match source.read().await {
            Ok(v) if &v == version => break,
            Ok(v) => {
                observed = Some(v);
                last_error = None;
            }
            Err(e) => last_error = Some(e.to_string()),
        }
        let elapsed = t0.elapsed();
        if elapsed >= s.timeout {
            let mut why = format!(
                "{env} still reports {} after {}s",
                observed
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "no version".into()),
                s.timeout.as_secs()
            );
            if let Some(e) = &last_error {
                why.push_str(&format!(" (last read failed: {e})"));
            }
            why.push_str(&format!("; {accepted}"));
            return Err(StepFailure {
                outcome: Outcome::Failed,
                detail: why.clone(),
                error: EngineError::DeployFailed {
                    env: env.to_string(),
                    version: version.clone(),
                    detail: why,
                },
                tell_backend: true,
            });
        }
        (s.emit)(Event::DeployWaiting {
            env: env.to_string(),
            elapsed_s: elapsed.as_secs_f64(),
            observed: observed.clone(),
        });
        tokio::time::sleep(s.poll.min(s.timeout.saturating_sub(elapsed))).await;
    }
    let took = t0.elapsed().as_secs_f64();
    // The backend's answer (a CI run's or build's URL) goes into the audit record.
    Ok(format!(
        "{env} reports {version} after {took:.1}s; {accepted}"
    ))
}
