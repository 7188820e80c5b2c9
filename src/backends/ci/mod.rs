//! Where a release's evidence comes from (SPEC §7 `[release] ci`): a
//! [command](command) that answers the CI state by its exit code, or
//! [GitHub](github) — the combined commit status and check runs, and the
//! reviews of the pull requests the release's commits came through.
//! Every answer is a [`Check`]; a source that cannot answer is `unknown`
//! and says why.

pub mod command;
pub mod github;

use crate::config::CiConfig;
use crate::domain::Check;
use crate::domain::release::Commit;

/// The configured CI source.
#[derive(Clone, Debug)]
pub enum CiSource {
    Command(command::CommandCi),
    Github(github::GithubEvidence),
}

impl CiSource {
    /// `cfg` has been validated: exactly one of `command` and `github`.
    pub fn from_config(cfg: &CiConfig, client: reqwest::Client) -> Option<CiSource> {
        let timeout = cfg.timeout.0;
        if let Some(argv) = &cfg.command {
            return Some(CiSource::Command(command::CommandCi::new(argv, timeout)));
        }
        cfg.github.as_ref().map(|g| {
            CiSource::Github(github::GithubEvidence::new(
                &g.repo,
                &g.token_env,
                g.api_url.as_deref(),
                client,
                timeout,
            ))
        })
    }

    /// The CI state of the release's commit `sha` (the one `version` names).
    pub async fn ci(&self, sha: &str, version: &str) -> Check {
        match self {
            CiSource::Command(c) => c.ci(sha, version).await,
            CiSource::Github(g) => g.ci(sha).await,
        }
    }

    /// The review of the release's commits; `None` without GitHub (a CI
    /// command knows nothing of pull requests).
    pub async fn review(&self, commits: &[Commit]) -> Option<Check> {
        match self {
            CiSource::Command(_) => None,
            CiSource::Github(g) => Some(g.review(commits).await),
        }
    }
}
