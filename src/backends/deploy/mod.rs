//! Starting a deploy, one file per backend: an HTTP [webhook], a
//! [command] given as argv (never through a shell), or a CI/CD system —
//! [GitHub Actions](github_actions), [Jenkins](jenkins), [Vercel](vercel),
//! [AWS CodePipeline](codepipeline) (SPEC §8). A started deploy is not a finished one: whatever the backend
//! says, the engine then polls the environment's version source, and only
//! the new version reported there makes the deploy done.
//!
//! The CI/CD backends follow what they started (the workflow run, the
//! build) to its end within the deploy's `timeout` and answer with its URL,
//! which the engine logs and audits. A call that starts something and loses
//! its answer is [`BackendError::OutcomeUnknown`], never repeated.

pub(crate) mod call;
pub mod codepipeline;
pub mod command;
pub mod github_actions;
pub mod jenkins;
pub mod progress;
pub mod ready;
pub mod vercel;
pub mod webhook;

pub use progress::{Progress, Report, Review, Waiting};

use super::BackendError;
use crate::config::DeployConfig;
use crate::domain::Version;

/// What a backend answered once it accepted a deploy (a CI/CD backend:
/// once what it started finished well).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// One line saying so, for the log and the audit record.
    pub line: String,
    /// The run's, build's or deployment's page, where there is one.
    pub url: Option<String>,
    /// The backend saw its work end (a command exited 0; a workflow run,
    /// build or pipeline execution succeeded). False when it only accepted
    /// it (a webhook's 2xx, Vercel's promote or rollback): that work may
    /// still be going when the environment is given up on, and may still
    /// land — its deploy is then "unknown", never "failed".
    pub ended: bool,
}

impl Started {
    fn line(line: String) -> Started {
        Started {
            line,
            url: None,
            ended: true,
        }
    }
}

#[derive(Clone, Debug)]
pub enum DeployTarget {
    Webhook(webhook::Webhook),
    Command(command::CommandDeploy),
    GithubActions(github_actions::GithubActions),
    Jenkins(jenkins::Jenkins),
    Vercel(vercel::Vercel),
    CodePipeline(codepipeline::CodePipeline),
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
        if let Some(c) = &cfg.codepipeline {
            return DeployTarget::CodePipeline(codepipeline::CodePipeline::new(
                env,
                c.get_ref(),
                timeout,
                poll,
            ));
        }
        if let Some(v) = &cfg.vercel {
            return DeployTarget::Vercel(vercel::Vercel::new(env, v.get_ref(), client, timeout));
        }
        let ready = cfg
            .ready
            .as_ref()
            .map(|r| ready::ReadyCheck::new(env, r.get_ref()));
        match (&cfg.webhook, &cfg.command) {
            (Some(url), _) => DeployTarget::Webhook(
                webhook::Webhook::new(env, url, cfg.token_env.clone(), client, timeout)
                    .with_ready(ready),
            ),
            (None, cmd) => DeployTarget::Command(
                command::CommandDeploy::new(env, cmd.as_deref().unwrap_or_default(), timeout)
                    .with_ready(ready),
            ),
        }
    }

    /// The readiness check polled after the deploy call returned
    /// (`ready = { command }`), for a command or webhook deploy that has one.
    pub fn ready(&self) -> Option<&ready::ReadyCheck> {
        match self {
            DeployTarget::Webhook(b) => b.ready.as_ref(),
            DeployTarget::Command(b) => b.ready.as_ref(),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            DeployTarget::Webhook(b) => &b.name,
            DeployTarget::Command(b) => &b.name,
            DeployTarget::GithubActions(b) => &b.name,
            DeployTarget::Jenkins(b) => &b.name,
            DeployTarget::Vercel(b) => &b.name,
            DeployTarget::CodePipeline(b) => &b.name,
        }
    }

    /// Ask the backend to deploy `version` to `env`; Ok once it accepted
    /// (a CI/CD backend: once what it started finished well), with a line
    /// saying so — and the run's or build's URL where there is one. While
    /// it works, a CI/CD backend tells `report` where it is. The line, the
    /// URL, the reports and any error are [cleaned](BackendError::cleaned):
    /// no secret, no escape.
    pub async fn start(
        &self,
        env: &str,
        version: &Version,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        let clean_report = |p: Progress| report(progress::cleaned(p));
        let r = match self {
            DeployTarget::Webhook(b) => b.start(env, version).await,
            DeployTarget::Command(b) => b.start(version).await.map(Started::line),
            DeployTarget::GithubActions(b) => b.start(version, &clean_report).await,
            DeployTarget::Jenkins(b) => b.start(version, &clean_report).await,
            DeployTarget::Vercel(b) => b.start(version).await,
            DeployTarget::CodePipeline(b) => b.start(version, &clean_report).await,
        };
        r.map(|s| Started {
            line: crate::text::clean(&s.line),
            url: s.url.map(|u| crate::text::clean(&u)),
            ended: s.ended,
        })
        .map_err(BackendError::cleaned)
    }

    /// Roll `env` back to `version`: Vercel's Instant Rollback points
    /// production back at the earlier deployment built for it (no rebuild);
    /// every other backend deploys `version` the way [`start`](Self::start)
    /// does.
    pub async fn rollback(
        &self,
        env: &str,
        version: &Version,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        match self {
            DeployTarget::Vercel(b) => b
                .rollback(version)
                .await
                .map(|s| Started {
                    line: crate::text::clean(&s.line),
                    url: s.url.map(|u| crate::text::clean(&u)),
                    ended: s.ended,
                })
                .map_err(BackendError::cleaned),
            other => other.start(env, version, report).await,
        }
    }

    /// Versions resolve to commits through `repo` (`[release] git`) where
    /// the backend needs a commit (CodePipeline's source revision).
    pub fn with_repo(self, repo: Option<&crate::backends::vcs::git::GitRepo>) -> Self {
        match self {
            DeployTarget::CodePipeline(b) => DeployTarget::CodePipeline(b.with_repo(repo)),
            other => other,
        }
    }

    /// Answer the decision the deploy in flight waits for inside the CI/CD
    /// system (a GitHub environment's required reviewers, a CodePipeline
    /// manual approval); Ok with a line
    /// saying what was answered. An error when nothing waits, or when the
    /// system refused the answer (a 403: the token may not approve).
    pub async fn review(&self, answer: &Review) -> Result<String, BackendError> {
        let r = match self {
            DeployTarget::GithubActions(b) => b.review(answer).await,
            DeployTarget::CodePipeline(b) => b.review(answer).await,
            other => Err(BackendError::Command {
                backend: other.name().to_string(),
                cause: "nothing waits for an answer here: this backend has no approvals of its own"
                    .into(),
            }),
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
