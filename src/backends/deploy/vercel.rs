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
//! - `POST {api}/v1/projects/{project}/rollback/{deploymentId}` (with
//!   `description` and `teamId` in the query) is Instant Rollback ("Point
//!   production traffic to a previous production deployment by ID"):
//!   answers 201 and points the production domains back at that earlier
//!   production deployment, no rebuild; 409/422 when it cannot (Hobby plans
//!   only roll back to the immediately previous production deployment).
//!   Vercel then stops assigning production domains to new builds until a
//!   deployment is promoted again — which shipdeck's next deploy does.
//! - `GET {api}/v9/projects/{project}` ("Find a project by id or name")
//!   answers the project with `targets.production`: the deployment that
//!   serves production now (`id`, `url`, `meta`, …); when it carries no
//!   `meta`, `GET {api}/v13/deployments/{id}` ("Get a deployment by ID or
//!   URL") does.
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
//! several, the newest. The production deployments are searched newest
//! first, a page of 100 at a time (`until` the previous page's
//! `pagination.next`), up to the newest 1,000.
//! A rollback to a version picks its deployment by the same rule.
//!
//! **Which version serves production** (the Vercel version source): the
//! deployment `targets.production` names, read by `from` — `auto` (the
//! default): its `meta.version` when set, else the git ref it was built
//! from (`meta.githubCommitRef`, or the GitLab / Bitbucket one: a tag build
//! reads as the tag); `meta`: only `meta.version`; `ref`: only the git
//! ref; `sha`: the full commit SHA (`meta.githubCommitSha` or equivalent).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Started;
use super::call::{self, Kind};
use crate::backends::BackendError;
use crate::backends::util::secret;
use crate::config::{VercelConfig, VercelVersionConfig};
use crate::domain::Version;

const PUBLIC_API: &str = "https://api.vercel.com";

/// How many pages of 100 production deployments a search for a version's
/// build reads at most (the newest 1,000).
const MAX_PAGES: usize = 10;

/// One Vercel project's REST API, as both the deploy backend and the
/// version source call it: the base URL, the bearer token, and `teamId` on
/// every call when the project belongs to a team.
#[derive(Clone, Debug)]
struct Api {
    client: reqwest::Client,
    base: String,
    project: String,
    team: Option<String>,
    token_env: String,
    timeout: Duration,
}

impl Api {
    fn new(
        client: reqwest::Client,
        api_url: Option<&str>,
        project: &str,
        team: Option<&String>,
        token_env: &str,
        timeout: Duration,
    ) -> Self {
        Api {
            client,
            base: api_url
                .unwrap_or(PUBLIC_API)
                .trim_end_matches('/')
                .to_string(),
            project: project.to_string(),
            team: team.cloned(),
            token_env: token_env.to_string(),
            timeout,
        }
    }

    /// The token, read afresh for each operation; `backend` names it in
    /// errors.
    fn token(&self, backend: &str) -> Result<String, BackendError> {
        Ok(secret(backend, Some(&self.token_env))?.unwrap_or_default())
    }

    fn request(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        let rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        match &self.team {
            Some(t) => rb.query(&[("teamId", t)]),
            None => rb,
        }
    }

    /// `GET {path}` with `query`, read (retried as reads are) and required
    /// to answer 2xx with JSON; `call` names it in errors.
    async fn read_json(
        &self,
        backend: &str,
        call: &str,
        path: &str,
        query: &[(&str, &str)],
        token: &str,
        deadline: Instant,
    ) -> Result<Value, BackendError> {
        let a = call::send(backend, call, Kind::Read, deadline, self.timeout, || {
            self.request(reqwest::Method::GET, path, token).query(query)
        })
        .await?;
        if !a.ok() {
            return Err(a.error(backend, call));
        }
        a.json(backend, call)
    }
}

/// A deployment id fit to go into a URL path.
fn usable_id(id: &&str) -> bool {
    id.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[derive(Clone, Debug)]
pub struct Vercel {
    api: Api,
    pub(super) name: String,
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
            api: Api::new(
                client,
                cfg.api_url.as_deref(),
                &cfg.project,
                cfg.team.as_ref(),
                &cfg.token_env,
                timeout,
            ),
            name: format!("Vercel of {env} (project {})", cfg.project),
        }
    }

    /// Find the deployment built for `version` and promote it; Ok once
    /// Vercel accepted. The engine then waits for the environment to
    /// report the version.
    pub(super) async fn start(&self, version: &Version) -> Result<Started, BackendError> {
        let deadline = Instant::now() + self.api.timeout;
        let token = self.api.token(&self.name)?;
        let (id, page) = self.find_built(version, &token, deadline).await?;
        let path = format!("/v10/projects/{}/promote/{id}", self.api.project);
        let call = format!("POST {path}");
        let a = call::send(
            &self.name,
            &call,
            Kind::Start,
            deadline,
            self.api.timeout,
            || self.api.request(reqwest::Method::POST, &path, &token),
        )
        .await?;
        if !a.ok() {
            return Err(a.error(&self.name, &call));
        }
        let shown = page.as_ref().map(|u| format!(" ({u})")).unwrap_or_default();
        Ok(Started {
            line: format!(
                "Vercel promoting deployment {id}{shown} to production (HTTP {})",
                a.status
            ),
            url: page,
            ended: false,
        })
    }

    /// Roll production back to the earlier production deployment built for
    /// `version` with Vercel's Instant Rollback; Ok once Vercel accepted.
    pub(super) async fn rollback(&self, version: &Version) -> Result<Started, BackendError> {
        let deadline = Instant::now() + self.api.timeout;
        let token = self.api.token(&self.name)?;
        let (id, page) = self.find_built(version, &token, deadline).await?;
        let path = format!("/v1/projects/{}/rollback/{id}", self.api.project);
        let call = format!("POST {path}");
        let description = format!("shipdeck: rollback to {version}");
        let a = call::send(
            &self.name,
            &call,
            Kind::Start,
            deadline,
            self.api.timeout,
            || {
                self.api
                    .request(reqwest::Method::POST, &path, &token)
                    .query(&[("description", description.as_str())])
            },
        )
        .await?;
        if !a.ok() {
            return Err(a.error(&self.name, &call));
        }
        let shown = page.as_ref().map(|u| format!(" ({u})")).unwrap_or_default();
        Ok(Started {
            line: format!(
                "Vercel instant rollback to deployment {id}{shown} (HTTP {})",
                a.status
            ),
            url: page,
            ended: false,
        })
    }

    /// The id and page of the READY production deployment built for
    /// `version` (the module's rule).
    async fn find_built(
        &self,
        version: &Version,
        token: &str,
        deadline: Instant,
    ) -> Result<(String, Option<String>), BackendError> {
        let call = "GET /v6/deployments";
        // Newest first, 100 a page; the next page is the one `until` the
        // timestamp `pagination.next` names (null on the last page). Pages
        // are read until one holds a build of the version: being newest
        // first, no later page holds a newer one.
        let mut until: Option<i64> = None;
        let mut searched = 0usize;
        let mut pages = 0usize;
        let chosen = loop {
            let until_s = until.map(|u| u.to_string());
            let mut query = vec![
                ("projectId", self.api.project.as_str()),
                ("target", "production"),
                ("state", "READY"),
                ("limit", "100"),
            ];
            if let Some(u) = &until_s {
                query.push(("until", u.as_str()));
            }
            let j = self
                .api
                .read_json(&self.name, call, "/v6/deployments", &query, token, deadline)
                .await?;
            pages += 1;
            let all: Vec<Value> = j
                .get("deployments")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            searched += all.len();
            if let Some(d) = all
                .into_iter()
                .filter(|d| built_for(d, version.as_str()))
                .max_by_key(|d| d.get("created").and_then(Value::as_i64).unwrap_or(0))
            {
                break d;
            }
            let next = j
                .get("pagination")
                .and_then(|p| p.get("next"))
                .and_then(Value::as_i64);
            match next {
                // A page further back, unless the answer would go round in
                // circles or the search has gone far enough back.
                Some(n) if until.is_none_or(|u| n < u) && pages < MAX_PAGES => until = Some(n),
                _ => {
                    let which = if next.is_some() && pages >= MAX_PAGES {
                        format!("the {searched} newest (older ones were not searched)")
                    } else {
                        format!("the {searched} listed")
                    };
                    return Err(BackendError::Command {
                        backend: self.name.clone(),
                        cause: format!(
                            "no READY production deployment built for {version} among {which} (matched by meta githubCommitRef, version or githubCommitSha); build it for production first"
                        ),
                    });
                }
            }
        };
        let id = chosen
            .get("uid")
            .or_else(|| chosen.get("id"))
            .and_then(Value::as_str)
            .filter(usable_id)
            .ok_or_else(|| BackendError::Garbage {
                backend: format!("{}: {call}", self.name),
                cause: "a deployment without a usable uid".into(),
            })?
            .to_string();
        let page = chosen
            .get("url")
            .and_then(Value::as_str)
            .map(|u| format!("https://{u}"));
        Ok((id, page))
    }
}

/// The version deployment `d` carries, read by `from` (the module's rule).
pub fn version_of(d: &Value, from: &str) -> Option<String> {
    let meta = |k: &str| {
        d.pointer(&format!("/meta/{k}"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let first = |keys: &[&str]| keys.iter().find_map(|k| meta(k));
    let git_ref = || first(&["githubCommitRef", "gitlabCommitRef", "bitbucketCommitRef"]);
    let sha = || first(&["githubCommitSha", "gitlabCommitSha", "bitbucketCommitSha"]);
    match from {
        "meta" => meta("version"),
        "ref" => git_ref(),
        "sha" => sha(),
        _ => meta("version").or_else(git_ref),
    }
    .map(str::to_string)
}

/// A Vercel project as a version source: the version of the deployment
/// that serves its production now.
#[derive(Clone, Debug)]
pub struct VercelVersion {
    api: Api,
    from: String,
    pub name: String,
}

impl VercelVersion {
    pub fn new(
        env: &str,
        cfg: &VercelVersionConfig,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        VercelVersion {
            api: Api::new(
                client,
                cfg.api_url.as_deref(),
                &cfg.project,
                cfg.team.as_ref(),
                &cfg.token_env,
                timeout,
            ),
            from: cfg.from.clone(),
            name: format!("Vercel version source of {env} (project {})", cfg.project),
        }
    }

    /// The version production serves, as its deployment's metadata names it.
    pub async fn read(&self) -> Result<String, BackendError> {
        let deadline = Instant::now() + self.api.timeout;
        let token = self.api.token(&self.name)?;
        let path = format!("/v9/projects/{}", self.api.project);
        let call = format!("GET {path}");
        let project = self
            .api
            .read_json(&self.name, &call, &path, &[], &token, deadline)
            .await?;
        let garbage = |cause: String| BackendError::Garbage {
            backend: format!("{}: {call}", self.name),
            cause,
        };
        let serving = project
            .pointer("/targets/production")
            .filter(|d| d.is_object())
            .ok_or_else(|| {
                garbage("no deployment serves production (targets.production)".into())
            })?;
        let mut deployment = serving.clone();
        if serving.get("meta").is_none() {
            let id = serving
                .get("id")
                .and_then(Value::as_str)
                .filter(usable_id)
                .ok_or_else(|| garbage("targets.production has no usable id".into()))?;
            let path = format!("/v13/deployments/{id}");
            let call = format!("GET {path}");
            deployment = self
                .api
                .read_json(&self.name, &call, &path, &[], &token, deadline)
                .await?;
        }
        let id = deployment
            .get("id")
            .or_else(|| deployment.get("uid"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        version_of(&deployment, &self.from).ok_or_else(|| {
            garbage(format!(
                "the deployment serving production ({id}) carries no version in its metadata (from = {:?}: meta.version, or the git ref / SHA it was built from)",
                self.from
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_version_production_serves_is_read_from_its_metadata() {
        let d = json!({"id": "dpl_1", "meta": {"githubCommitRef": "v1.8.0", "githubCommitSha": "abc1234def"}});
        assert_eq!(version_of(&d, "auto").as_deref(), Some("v1.8.0"));
        assert_eq!(version_of(&d, "ref").as_deref(), Some("v1.8.0"));
        assert_eq!(version_of(&d, "sha").as_deref(), Some("abc1234def"));
        assert_eq!(version_of(&d, "meta"), None);
        let custom = json!({"meta": {"version": "2026.11.25", "gitlabCommitRef": "main"}});
        assert_eq!(version_of(&custom, "auto").as_deref(), Some("2026.11.25"));
        assert_eq!(version_of(&custom, "ref").as_deref(), Some("main"));
        assert_eq!(version_of(&json!({"meta": {}}), "auto"), None);
    }

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
