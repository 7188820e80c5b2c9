//! Jenkins: trigger `buildWithParameters`, follow the queue item to the
//! build and the build to its result.
//!
//! What this relies on, from Jenkins' remote access API documentation
//! ("Remote Access API", "CSRF Protection"):
//!
//! - `GET {url}/crumbIssuer/api/json` answers `{"crumb", "crumbRequestField"}`
//!   when CSRF protection is on (404 when no crumb is issued); the crumb is
//!   sent as the header named by `crumbRequestField` with every POST,
//!   together with the session cookie the crumb's answer set (Jenkins 2.176
//!   and later refuse a crumb from another web session with 403).
//! - `POST {url}/job/team/job/deploy-shop/buildWithParameters` with the
//!   parameters form-encoded answers `201 Created` with `Location:
//!   {url}/queue/item/N/`.
//! - `GET {url}/queue/item/N/api/json` answers the queue item; once the
//!   build started it has `executable: {number, url}`, and a cancelled item
//!   has `cancelled: true`.
//! - `GET {build url}api/json` answers `{building, result, number, url,
//!   queueId}`; `result` is null while building, then SUCCESS, UNSTABLE,
//!   FAILURE, NOT_BUILT or ABORTED. `queueId` names the queue item that
//!   started it: a build whose `queueId` is not our queue item's (a build
//!   number reused) is not followed — the outcome is unknown.
//! - Basic auth `user:API token` (an API token needs no crumb on recent
//!   Jenkins, but one is sent whenever the server issues it).
//!
//! Links Jenkins sends back (Location, the build's url) are followed on the
//! configured origin only, so the credentials never travel elsewhere.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::call::{self, Kind, on_base, pause, took};
use super::{Progress, Report, Started};
use crate::backends::BackendError;
use crate::backends::util::{fill, secret, show_url};
use crate::config::JenkinsConfig;
use crate::domain::Version;

#[derive(Clone, Debug)]
pub struct Jenkins {
    client: reqwest::Client,
    /// Jenkins' root with a trailing slash.
    base: String,
    /// `job/team/job/deploy-shop/`.
    job_path: String,
    params: BTreeMap<String, String>,
    user: String,
    token_env: String,
    pub(super) name: String,
    timeout: Duration,
    poll: Duration,
}

impl Jenkins {
    pub(super) fn new(
        env: &str,
        cfg: &JenkinsConfig,
        client: reqwest::Client,
        timeout: Duration,
        poll: Duration,
    ) -> Self {
        crate::text::register_url_credentials(&cfg.url);
        let base = format!("{}/", cfg.url.trim_end_matches('/'));
        let job_path: String = cfg
            .job
            .split('/')
            .map(|seg| format!("job/{}/", encode_segment(seg.trim())))
            .collect();
        let params = cfg
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{env}", env)))
            .collect();
        Jenkins {
            client,
            name: format!("Jenkins of {env} ({}{job_path})", show_url(&base)),
            base,
            job_path,
            params,
            user: cfg.user.clone(),
            token_env: cfg.token_env.clone(),
            timeout,
            poll: poll.max(Duration::from_millis(100)),
        }
    }

    /// Trigger, follow; Ok with the build's URL once its result is SUCCESS.
    pub(super) async fn start(
        &self,
        version: &Version,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        let t0 = Instant::now();
        let deadline = t0 + self.timeout;
        let token = secret(&self.name, Some(&self.token_env))?.unwrap_or_default();
        // The Basic header carries base64("user:token"): register that form too.
        crate::text::register_url_credentials(&format!(
            "https://{}:{}@jenkins.invalid/",
            self.user, token
        ));
        let base = reqwest::Url::parse(&self.base).map_err(|e| BackendError::Garbage {
            backend: self.name.clone(),
            cause: format!("url is not a URL: {e}"),
        })?;
        let get = |url: &reqwest::Url| {
            self.client
                .get(url.clone())
                .basic_auth(&self.user, Some(&token))
        };

        // The CSRF crumb, whenever the server issues one.
        let crumb_url = base.join("crumbIssuer/api/json").map_err(|e| self.bad(e))?;
        let call = "GET /crumbIssuer/api/json";
        let a = call::send(&self.name, call, Kind::Read, deadline, self.timeout, || {
            get(&crumb_url)
        })
        .await?;
        let crumb = if a.ok() {
            let j = a.json(&self.name, call)?;
            match (
                j.get("crumbRequestField").and_then(Value::as_str),
                j.get("crumb").and_then(Value::as_str),
            ) {
                (Some(f), Some(c)) => Some((f.to_string(), c.to_string())),
                _ => {
                    return Err(BackendError::Garbage {
                        backend: format!("{}: {call}", self.name),
                        cause: "no crumb or crumbRequestField in the answer".into(),
                    });
                }
            }
        } else if a.status == 404 {
            None
        } else {
            return Err(a.error(&self.name, call));
        };
        // Jenkins ties a crumb to the web session that asked for it (since
        // 2.176): sent without that session's cookie it is refused with 403
        // under password auth. The cookie goes back with the POST.
        let session = session_cookie(&a.headers);

        // Trigger.
        let params: Vec<(String, String)> = self
            .params
            .iter()
            .map(|(k, v)| {
                let v = fill(std::slice::from_ref(v), &[("version", version.as_str())]).remove(0);
                (k.clone(), v)
            })
            .collect();
        let trigger = base
            .join(&format!("{}buildWithParameters", self.job_path))
            .map_err(|e| self.bad(e))?;
        let call = format!("POST /{}buildWithParameters", self.job_path);
        let a = call::send(
            &self.name,
            &call,
            Kind::Start,
            deadline,
            self.timeout,
            || {
                let mut rb = self
                    .client
                    .post(trigger.clone())
                    .basic_auth(&self.user, Some(&token))
                    .form(&params);
                if let Some((field, value)) = &crumb {
                    rb = rb.header(field.as_str(), value.as_str());
                }
                if let Some(c) = &session {
                    rb = rb.header(reqwest::header::COOKIE, c.as_str());
                }
                rb
            },
        )
        .await?;
        if !a.ok() {
            return Err(a.error(&self.name, &call));
        }
        let location = a
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| on_base(&base, l))
            .ok_or_else(|| BackendError::OutcomeUnknown {
                backend: format!("{}: {call}", self.name),
                cause: format!(
                    "Jenkins answered HTTP {} without a queue item (Location); the build may have been queued",
                    a.status
                ),
            })?;

        // Queue item → build.
        let item_api = with_api_json(&location);
        let item_id = queue_number(&location).parse::<u64>().ok();
        let call = format!("GET {}", item_api.path());
        // Triggered: losing track of the queue item now leaves the deploy
        // unknown, not failed.
        let build: Result<reqwest::Url, BackendError> = async {
            loop {
                let a = call::send(
                    &self.name,
                    &call,
                    Kind::Read,
                    deadline,
                    self.timeout,
                    || get(&item_api),
                )
                .await?;
                if !a.ok() {
                    return Err(a.error(&self.name, &call));
                }
                let j = a.json(&self.name, &call)?;
                if j.get("cancelled").and_then(Value::as_bool) == Some(true) {
                    return Err(BackendError::Command {
                        backend: self.name.clone(),
                        cause: format!("the queue item {} was cancelled", location.path()),
                    });
                }
                if let Some(url) = j.pointer("/executable/url").and_then(Value::as_str) {
                    return on_base(&base, url).ok_or_else(|| BackendError::Garbage {
                        backend: format!("{}: {call}", self.name),
                        cause: format!("executable.url {url:?} is not a URL"),
                    });
                }
                let why = j.get("why").and_then(Value::as_str);
                report(Progress {
                    what: format!("Jenkins queue item {}", queue_number(&location)),
                    state: "queued".into(),
                    elapsed_s: t0.elapsed().as_secs_f64(),
                    step: why.map(str::to_string),
                    url: None,
                    waiting: None,
                });
                if Instant::now() >= deadline {
                    let why = why.unwrap_or("queued");
                    return Err(BackendError::Timeout {
                        backend: format!(
                            "{}: queue item {} still waiting ({why})",
                            self.name,
                            location.path()
                        ),
                        after: self.timeout,
                    });
                }
                pause(self.poll, deadline).await;
            }
        }
        .await;
        let build = build.map_err(|e| super::call::lost_track(&self.name, e))?;

        // Build → result. A build still going when the timeout passes, or
        // one that can no longer be read, may still deploy — unknown.
        let result = async {
            let build_api = with_api_json(&build);
            let call = format!("GET {}", build_api.path());
            let mut announced = false;
            loop {
                let a = call::send(
                    &self.name,
                    &call,
                    Kind::Read,
                    deadline,
                    self.timeout,
                    || get(&build_api),
                )
                .await?;
                if !a.ok() {
                    return Err(a.error(&self.name, &call));
                }
                let j = a.json(&self.name, &call)?;
                let number = j
                    .get("number")
                    .and_then(Value::as_u64)
                    .map(|n| format!(" #{n}"))
                    .unwrap_or_default();
                let what = format!("Jenkins build{number} ({build})");
                // A build number reused (the job recreated, its next build
                // number reset): the build at that address is another
                // queue item's, and its result says nothing of ours.
                if let Some(theirs) = j.get("queueId").and_then(Value::as_u64)
                    && item_id.is_some_and(|ours| ours != theirs)
                {
                    return Err(BackendError::Garbage {
                        backend: format!("{}: {call}", self.name),
                        cause: format!(
                            "{what} was started by queue item {theirs}, not by ours ({}): the build number was reused, so ours cannot be followed",
                            queue_number(&location)
                        ),
                    });
                }
                // Jenkins' build API always says whether it is building; an
                // answer that does not is something else's (a proxy's, a
                // plugin's), and waiting on it would only run out the timeout.
                let Some(building) = j.get("building").and_then(Value::as_bool) else {
                    return Err(BackendError::Garbage {
                        backend: format!("{}: {call}", self.name),
                        cause: format!(
                            "{what}: the answer has no `building` true/false, so it is not Jenkins' build API and the build cannot be followed"
                        ),
                    });
                };
                let result = j.get("result").and_then(Value::as_str);
                if !announced {
                    tracing::info!("{what}: building, {}", took(t0.elapsed()));
                    announced = true;
                }
                if building {
                    report(Progress {
                        what: format!("Jenkins build{number}"),
                        state: "running".into(),
                        elapsed_s: t0.elapsed().as_secs_f64(),
                        step: None,
                        url: Some(build.to_string()),
                        waiting: None,
                    });
                }
                match result {
                    Some("SUCCESS") if !building => {
                        return Ok(Started {
                            line: format!("{what} finished: SUCCESS after {}", took(t0.elapsed())),
                            url: Some(build.to_string()),
                            ended: true,
                        });
                    }
                    Some(r) if !building => {
                        return Err(BackendError::Command {
                            backend: self.name.clone(),
                            cause: format!("{what} finished: {r}"),
                        });
                    }
                    _ => {}
                }
                if Instant::now() >= deadline {
                    return Err(BackendError::Timeout {
                        backend: format!("{}: {what} still building", self.name),
                        after: self.timeout,
                    });
                }
                pause(self.poll, deadline).await;
            }
        }
        .await;
        result.map_err(|e| super::call::lost_track(&self.name, e))
    }

    fn bad(&self, e: impl std::fmt::Display) -> BackendError {
        BackendError::Garbage {
            backend: self.name.clone(),
            cause: format!("cannot form the URL: {e}"),
        }
    }
}

/// `…/queue/item/7/` → `7`.
fn queue_number(u: &reqwest::Url) -> String {
    u.path_segments()
        .and_then(|mut s| s.rfind(|seg| !seg.is_empty()))
        .unwrap_or("")
        .to_string()
}

/// The `Cookie` header that returns the cookies an answer set (their
/// `name=value` parts, attributes dropped; a cookie set empty is one being
/// cleared), if it set any.
fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let pairs: Vec<&str> = headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .map(str::trim)
        .filter(|c| {
            c.split_once('=')
                .is_some_and(|(name, value)| !name.trim().is_empty() && !value.is_empty())
        })
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("; "))
}

/// `…/queue/item/7/` → `…/queue/item/7/api/json`.
fn with_api_json(u: &reqwest::Url) -> reqwest::Url {
    let mut out = u.clone();
    let path = format!("{}/api/json", u.path().trim_end_matches('/'));
    out.set_path(&path);
    out.set_query(None);
    out
}

/// A job name as one URL path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_jobs_become_nested_job_paths() {
        let cfg = JenkinsConfig {
            url: "https://ci.example.com/jenkins".into(),
            job: "team/deploy shop".into(),
            params: BTreeMap::new(),
            user: "bot".into(),
            token_env: "JT".into(),
        };
        let j = Jenkins::new(
            "prod",
            &cfg,
            reqwest::Client::new(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(j.job_path, "job/team/job/deploy%20shop/");
        assert_eq!(j.base, "https://ci.example.com/jenkins/");
        let u = reqwest::Url::parse("https://ci.example.com/jenkins/queue/item/7/").unwrap();
        assert_eq!(
            with_api_json(&u).as_str(),
            "https://ci.example.com/jenkins/queue/item/7/api/json"
        );
    }
}
