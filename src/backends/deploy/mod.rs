//! Starting a deploy, one file per backend: an HTTP [webhook], a
//! [command] given as argv (never through a shell), or a CI/CD system —
//! [GitHub Actions](github_actions), [Jenkins](jenkins), [Vercel](vercel)
//! (SPEC §8). A started deploy is not a finished one: whatever the backend
//! says, the engine then polls the environment's version source, and only
//! the new version reported there makes the deploy done.
//!
//! The CI/CD backends follow what they started (the workflow run, the
//! build) to its end within the deploy's `timeout` and answer with its URL,
//! which the engine logs and audits. A call that starts something and loses
//! its answer is [`BackendError::OutcomeUnknown`], never repeated.

pub(crate) mod call;
pub mod command;
pub mod github_actions;
pub mod jenkins;
pub mod vercel;
pub mod webhook;

use super::BackendError;
use crate::config::DeployConfig;
use crate::domain::Version;

#[derive(Clone, Debug)]
pub enum DeployTarget {
    Webhook(webhook::Webhook),
    Command(command::CommandDeploy),
    GithubActions(github_actions::GithubActions),
    Jenkins(jenkins::Jenkins),
    Vercel(vercel::Vercel),
}

impl DeployTarget {
    /// The hook itself (the webhook's answer, the command's exit, the
    /// followed run or build) may take up to the deploy's `timeout`.
    /// `cfg` has been validated: exactly one backend is set.
    pub fn from_config(env: &str, cfg: &DeployConfig, client: reqwest::Client) -> Self {
        let timeout = cfg.timeout.0;
        let poll = cfg.poll.0;
        if let Some(g) = &cfg.github_actions {
            return DeployTarget::GithubActions(github_actions::GithubActions::new(
                env,
                g.get_ref(),
                client,
                timeout,
                poll,
            ));
        }
        if let Some(j) = &cfg.jenkins {
            return DeployTarget::Jenkins(jenkins::Jenkins::new(
                env,
                j.get_ref(),
                client,
                timeout,
                poll,
            ));
        }
        if let Some(v) = &cfg.vercel {
            return DeployTarget::Vercel(vercel::Vercel::new(env, v.get_ref(), client, timeout));
        }
        match (&cfg.webhook, &cfg.command) {
            (Some(url), _) => DeployTarget::Webhook(webhook::Webhook::new(
                env,
                url,
                cfg.token_env.clone(),
                client,
                timeout,
            )),
            (None, cmd) => DeployTarget::Command(command::CommandDeploy::new(
                env,
                cmd.as_deref().unwrap_or_default(),
                timeout,
            )),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            DeployTarget::Webhook(b) => &b.name,
            DeployTarget::Command(b) => &b.name,
            DeployTarget::GithubActions(b) => &b.name,
            DeployTarget::Jenkins(b) => &b.name,
            DeployTarget::Vercel(b) => &b.name,
        }
    }

    /// Ask the backend to deploy `version` to `env`; Ok once it accepted
    /// (a CI/CD backend: once what it started finished well), with a line
    /// saying so — and the run's or build's URL where there is one. The
    /// line and any error are [cleaned](BackendError::cleaned): no secret,
    /// no escape.
    pub async fn start(&self, env: &str, version: &Version) -> Result<String, BackendError> {
        let r = match self {
            DeployTarget::Webhook(b) => b.start(env, version).await,
            DeployTarget::Command(b) => b.start(version).await,
            DeployTarget::GithubActions(b) => b.start(version).await,
            DeployTarget::Jenkins(b) => b.start(version).await,
            DeployTarget::Vercel(b) => b.start(version).await,
        };
        r.map(|line| crate::text::clean(&line))
            .map_err(BackendError::cleaned)
    }

    /// Tell the backend how the deploy ended — `ok` once the environment
    /// reported the version — so a system that keeps its own record of
    /// deploys (GitHub's Deployments API) tells the same story. Best
    /// effort and bounded in time: a failure here is a warning in the log.
    pub async fn finished(&self, ok: bool, detail: &str) {
        if let DeployTarget::GithubActions(b) = self {
            b.finished(ok, detail).await;
        }
    }
}
