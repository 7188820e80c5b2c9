//! Vercel: promote the deployment already built for the version to
//! production — no rebuild.
//!
//! What this relies on, from Vercel's REST API reference:
//!
//! - `GET {api}/v6/deployments?projectId=…&target=production&state=READY`
//!   (and `teamId=…` with a team) answers `{"deployments": [{uid, url,
//!   state | readyState, target, meta, created}]}`, newest first.
//! - `POST {api}/v10/projects/{project}/promote/{deploymentId}` (with
//!   `teamId`) answers 201 or 202 and points the production domains at that
//!   deployment without rebuilding it; 409 when it cannot.
//! - `Authorization: Bearer TOKEN`; `teamId` on every call when the project
//!   belongs to a team.
//!
//! **Which deployment is "built for the version"**: a READY deployment
//! whose target is `production` (never a preview build: promoting one makes
//! Vercel rebuild it, which is not the tested artifact) and whose git
//! metadata names the version — `meta.githubCommitRef` (or the GitLab /
//! Bitbucket equivalent) equal to it (a build of the tag `v1.8.0`), a
//! custom `meta.version` equal to it (`vercel deploy --prod --meta
//! version=v1.8.0`), or `meta.githubCommitSha` (or equivalent) starting
//! with it when versions are commit SHAs (7 characters at least). Of
//! several, the newest. The 100 newest production deployments are searched.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Started;
use super::call::{self, Kind};
use crate::backends::BackendError;
use crate::backends::util::secret;
use crate::config::VercelConfig;
use crate::domain::Version;

const PUBLIC_API: &str = "https://api.vercel.com";

#[derive(Clone, Debug)]
pub struct Vercel {
    client: reqwest::Client,
    api: String,
    project: String,
    team: Option<String>,
    token_env: String,
    pub(super) name: String,
    timeout: Duration,
}

/// Does deployment `d` (as listed by the API) carry `version`? See the
/// module's documentation.
pub fn built_for(d: &Value, version: &str) -> bool {
    let ready = ["state", "readyState"]
        .iter()
        .any(|k| d.get(*k).and_then(Value::as_str) == Some("READY"));
    let production = d.get("target").and_then(Value::as_str) == Some("production");
    let meta = |k: &str| d.pointer(&format!("/meta/{k}")).and_then(Value::as_str);
    let by_ref = [
        "githubCommitRef",
        "gitlabCommitRef",
        "bitbucketCommitRef",
        "version",
    ]
    .iter()
    .any(|k| meta(k) == Some(version));
    let by_sha = version.len() >= 7
        && version.chars().all(|c| c.is_ascii_hexdigit())
        && ["githubCommitSha", "gitlabCommitSha", "bitbucketCommitSha"]
            .iter()
            .any(|k| meta(k).is_some_and(|sha| sha.starts_with(version)));
    ready && production && (by_ref || by_sha)
}

impl Vercel {
    pub(super) fn new(
        env: &str,
        cfg: &VercelConfig,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        Vercel {
            client,
            api: cfg
                .api_url
                .as_deref()
                .unwrap_or(PUBLIC_API)
                .trim_end_matches('/')
                .to_string(),
            project: cfg.project.clone(),
            team: cfg.team.clone(),
            token_env: cfg.token_env.clone(),
            name: format!("Vercel of {env} (project {})", cfg.project),
            timeout,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        let rb = self
            .client
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(token);
        match &self.team {
            Some(t) => rb.query(&[("teamId", t)]),
            None => rb,
        }
    }

    /// Find the deployment built for `version` and promote it; Ok once
    /// Vercel accepted. The engine then waits for the environment to
    /// report the version.
    pub(super) async fn start(&self, version: &Version) -> Result<Started, BackendError> {
        let deadline = Instant::now() + self.timeout;
        let token = secret(&self.name, Some(&self.token_env))?.unwrap_or_default();
        let call = "GET /v6/deployments";
        let a = call::send(&self.name, call, Kind::Read, deadline, self.timeout, || {
            self.request(reqwest::Method::GET, "/v6/deployments", &token)
                .query(&[
                    ("projectId", self.project.as_str()),
                    ("target", "production"),
                    ("state", "READY"),
                    ("limit", "100"),
                ])
        })
        .await?;
        if !a.ok() {
            return Err(a.error(&self.name, call));
        }
        let j = a.json(&self.name, call)?;
        let all: Vec<&Value> = j
            .get("deployments")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let chosen = all
            .iter()
            .filter(|d| built_for(d, version.as_str()))
            .max_by_key(|d| d.get("created").and_then(Value::as_i64).unwrap_or(0))
            .ok_or_else(|| BackendError::Command {
                backend: self.name.clone(),
                cause: format!(
                    "no READY production deployment built for {version} among the {} listed (matched by meta githubCommitRef, version or githubCommitSha); build it for production first",
                    all.len()
                ),
            })?;
        let id = chosen
            .get("uid")
            .or_else(|| chosen.get("id"))
            .and_then(Value::as_str)
            .filter(|id| {
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .ok_or_else(|| BackendError::Garbage {
                backend: format!("{}: {call}", self.name),
                cause: "a deployment without a usable uid".into(),
            })?
            .to_string();
        let page = chosen
            .get("url")
            .and_then(Value::as_str)
            .map(|u| format!("https://{u}"));
        let url = page.as_ref().map(|u| format!(" ({u})")).unwrap_or_default();
        let path = format!("/v10/projects/{}/promote/{id}", self.project);
        let call = format!("POST {path}");
        let a = call::send(
            &self.name,
            &call,
            Kind::Start,
            deadline,
            self.timeout,
            || self.request(reqwest::Method::POST, &path, &token),
        )
        .await?;
        if !a.ok() {
            return Err(a.error(&self.name, &call));
        }
        Ok(Started {
            line: format!(
                "Vercel promoting deployment {id}{url} to production (HTTP {})",
                a.status
            ),
            url: page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_ready_production_builds_of_the_version_match() {
        let d = |state: &str, target: Value, meta: Value| json!({"uid": "dpl_1", "state": state, "target": target, "meta": meta});
        let tag = json!({"githubCommitRef": "v1.8.0", "githubCommitSha": "abc1234def"});
        assert!(built_for(
            &d("READY", json!("production"), tag.clone()),
            "v1.8.0"
        ));
        // A preview build of the same tag is never promoted.
        assert!(!built_for(&d("READY", Value::Null, tag.clone()), "v1.8.0"));
        assert!(!built_for(
            &d("BUILDING", json!("production"), tag.clone()),
            "v1.8.0"
        ));
        assert!(!built_for(
            &d("READY", json!("production"), tag.clone()),
            "v1.8.1"
        ));
        // Versions that are commit SHAs match by prefix (7 characters at least).
        assert!(built_for(
            &d("READY", json!("production"), tag.clone()),
            "abc1234"
        ));
        assert!(!built_for(&d("READY", json!("production"), tag), "abc12"));
        let custom = json!({"version": "2026.11.25"});
        assert!(built_for(
            &d("READY", json!("production"), custom),
            "2026.11.25"
        ));
    }
}
