//! GitHub Actions: dispatch a workflow and follow the run it started.
//!
//! What this relies on, from GitHub's REST API documentation ("Workflows",
//! "Workflow runs", API version 2022-11-28) and the changelog of 2026-02-19
//! ("Workflow dispatch API now returns run IDs"):
//!
//! - `POST {api}/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`
//!   with `{"ref", "inputs", "return_run_details": true}` answers `200` with
//!   `{"workflow_run_id", "run_url", "html_url"}`; without
//!   `return_run_details` (and on older GitHub Enterprise Server, which
//!   refuses the key with `422`) it answers `204 No Content`.
//! - `GET {api}/repos/{owner}/{repo}/actions/workflows/{workflow}/runs` takes
//!   `event`, `branch`, `actor` and `created` (`>=2026-11-25T13:00:00Z`)
//!   filters and answers `{"workflow_runs": [{id, run_number, event,
//!   head_branch, created_at, actor{login}, status, conclusion, html_url}]}`.
//! - `GET {api}/user` names the token's user (`login`); a GitHub App's
//!   installation token cannot read it (403).
//! - `GET {api}/repos/{owner}/{repo}/actions/runs/{id}` answers the run:
//!   `status` queued / waiting / requested / pending / in_progress /
//!   completed, and once completed a `conclusion` (success, failure,
//!   cancelled, timed_out, action_required, neutral, skipped, stale,
//!   startup_failure).
//! - Every request carries `Accept: application/vnd.github+json`,
//!   `X-GitHub-Api-Version: 2022-11-28`, `Authorization: Bearer TOKEN` and a
//!   `User-Agent` (GitHub refuses requests without one; the shared client
//!   sends `shipdeck/VERSION`). Rate limits: 403 or 429 with `retry-after`,
//!   or `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds).
//!
//! - Deployments (recorded alongside, best effort: a token without the
//!   `deployments` permission only costs a warning in the log):
//!   `POST {api}/repos/{owner}/{repo}/deployments` with `{ref, environment,
//!   description, payload, auto_merge: false, required_contexts: []}`
//!   answers `201` with `{id}`; `POST …/deployments/{id}/statuses` with
//!   `{state, log_url, description}` — in_progress once the run is known,
//!   then success once the environment reports the version, or failure.
//!   `auto_inactive` (on by default) marks the replaced deployment of that
//!   environment inactive when the new one succeeds.
//!
//! - Progress ("Workflow jobs"): `GET …/actions/runs/{id}/jobs?filter=latest`
//!   answers `{"jobs": [{name, status, steps: [{name, status, number}]}]}`;
//!   the job and step `in_progress` name where the run is ("deploy /
//!   migrate"). Read only while the run is in progress; a failed read only
//!   costs the step name.
//! - Environment approvals ("Workflow runs" → "Get pending deployments for a
//!   workflow run" / "Review pending deployments for a workflow run"): a run
//!   held by an environment's required reviewers has `status: waiting`;
//!   `GET …/actions/runs/{id}/pending_deployments` answers `[{environment:
//!   {id, name}, current_user_can_approve, reviewers, wait_timer}]`, and
//!   `POST …/actions/runs/{id}/pending_deployments` with `{environment_ids,
//!   state: "approved" | "rejected", comment}` (GitHub requires the comment)
//!   answers `200` with the deployments it let through; a token that may
//!   not review gets `403`. The POST is never repeated on a lost answer.
//!
//! The run to follow is the one this dispatch started: the run id from the
//! dispatch's answer, or else the only run of this workflow with event
//! `workflow_dispatch` on the dispatched branch, by the token's user, created
//! no earlier than the dispatch (by GitHub's own `Date` header, so our clock
//! does not matter). Never "the newest run": when several match, the deploy
//! stops as "outcome unknown" and lists them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::call::{self, Kind, pause, took};
use super::progress::Pending;
use super::{Progress, Report, Review, Started, Waiting};
use crate::backends::BackendError;
use crate::backends::util::{fill, secret};
use crate::config::GithubActionsConfig;
use crate::domain::Version;

/// The REST API version sent with every call.
pub const API_VERSION: &str = "2022-11-28";
const PUBLIC_API: &str = "https://api.github.com";

#[derive(Clone, Debug)]
pub struct GithubActions {
    client: reqwest::Client,
    /// The API root without a trailing slash; its path is kept (GHE's `/api/v3`).
    api: String,
    repo: String,
    workflow: String,
    git_ref: String,
    /// Inputs with `{env}` filled in; `{version}` is filled in per deploy.
    inputs: BTreeMap<String, String>,
    token_env: String,
    pub(super) name: String,
    timeout: Duration,
    poll: Duration,
    env: String,
    /// The Deployments API record of the deploy in flight (one per
    /// environment at a time: the engine holds the environment's lock)
    /// and the run's URL.
    record: Arc<Mutex<Option<(u64, String)>>>,
    /// The review the followed run waits for, while it does.
    gate: Pending<Gate>,
}

/// Environments of a run held by their required reviewers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Gate {
    run_id: u64,
    /// "run #4812".
    run: String,
    env_ids: Vec<u64>,
    env_names: Vec<String>,
}

/// 404s tolerated from a run not yet seen (just dispatched), about a
/// second apart.
const NEW_RUN_404S: u32 = 5;

/// Longest wait for the closing deployment status.
const RECORD_TIMEOUT: Duration = Duration::from_secs(15);

impl GithubActions {
    pub(super) fn new(
        env: &str,
        cfg: &GithubActionsConfig,
        client: reqwest::Client,
        timeout: Duration,
        poll: Duration,
    ) -> Self {
        let api = cfg
            .api_url
            .as_deref()
            .unwrap_or(PUBLIC_API)
            .trim_end_matches('/')
            .to_string();
        let inputs = cfg
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{env}", env)))
            .collect();
        GithubActions {
            client,
            api,
            repo: cfg.repo.clone(),
            workflow: cfg.workflow.clone(),
            git_ref: cfg.git_ref.clone(),
            inputs,
            token_env: cfg.token_env.clone(),
            name: format!("GitHub Actions of {env} ({} {})", cfg.repo, cfg.workflow),
            timeout,
            poll: poll.max(Duration::from_millis(100)),
            env: env.to_string(),
            record: Arc::new(Mutex::new(None)),
            gate: Pending::new(),
        }
    }

    /// Create the Deployments API record of this deploy; `None` (and a
    /// warning) when GitHub would not.
    async fn create_record(
        &self,
        token: &str,
        version: &Version,
        deadline: Instant,
    ) -> Option<u64> {
        let path = format!("/repos/{}/deployments", self.repo);
        let call = format!("POST {path}");
        let body = json!({
            "ref": self.git_ref,
            "environment": self.env,
            "description": format!("shipdeck: {version}"),
            "payload": {"version": version.as_str()},
            "auto_merge": false,
            "required_contexts": [],
        });
        let url = format!("{}{path}", self.api);
        let r = call::send(
            &self.name,
            &call,
            Kind::Start,
            deadline,
            self.timeout,
            || self.headers(self.client.post(&url), token).json(&body),
        )
        .await;
        match r {
            Ok(a) if a.status == 201 => a
                .json(&self.name, &call)
                .ok()
                .and_then(|j| j.get("id").and_then(Value::as_u64)),
            Ok(a) => {
                let e = a.error(&self.name, &call).cleaned();
                tracing::warn!("{e}; the deploy goes on without a GitHub deployment record");
                None
            }
            Err(e) => {
                tracing::warn!(
                    "{}; the deploy goes on without a GitHub deployment record",
                    e.cleaned()
                );
                None
            }
        }
    }

    /// Add a status to the deploy's record, if it has one; a failure is a
    /// warning in the log.
    async fn record_status(&self, token: &str, state: &str, description: &str, deadline: Instant) {
        let Some((id, log_url)) = self
            .record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let path = format!("/repos/{}/deployments/{id}/statuses", self.repo);
        let call = format!("POST {path}");
        let mut body = json!({
            "state": state,
            "description": description.chars().take(140).collect::<String>(),
        });
        if !log_url.is_empty() {
            body["log_url"] = json!(log_url);
        }
        let url = format!("{}{path}", self.api);
        let r = call::send(
            &self.name,
            &call,
            Kind::Start,
            deadline,
            self.timeout,
            || self.headers(self.client.post(&url), token).json(&body),
        )
        .await;
        match r {
            Ok(a) if a.ok() => {}
            Ok(a) => tracing::warn!("{}", a.error(&self.name, &call).cleaned()),
            Err(e) => tracing::warn!("{}", e.cleaned()),
        }
    }

    /// Close the deploy's Deployments API record: success once the
    /// environment reports the version, failure otherwise.
    pub(super) async fn finished(&self, ok: bool, detail: &str) {
        let Ok(Some(token)) = secret(&self.name, Some(&self.token_env)) else {
            return;
        };
        let state = if ok { "success" } else { "failure" };
        self.record_status(&token, state, detail, Instant::now() + RECORD_TIMEOUT)
            .await;
        *self.record.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn get(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.headers(self.client.get(format!("{}{path}", self.api)), token)
    }

    fn headers(&self, rb: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        rb.bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
    }

    /// Dispatch, find the run, follow it; Ok with the run's URL once it
    /// concluded `success`.
    pub(super) async fn start(
        &self,
        version: &Version,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        let t0 = Instant::now();
        let deadline = t0 + self.timeout;
        let token = secret(&self.name, Some(&self.token_env))?.unwrap_or_default();
        let record = self.create_record(&token, version, deadline).await;
        *self.record.lock().unwrap_or_else(|p| p.into_inner()) =
            record.map(|id| (id, String::new()));
        let r = self
            .dispatch_and_follow(&token, version, t0, deadline, report)
            .await;
        self.gate.clear();
        if let Err(e) = &r {
            let e = e.clone().cleaned().to_string();
            self.record_status(&token, "failure", &e, Instant::now() + RECORD_TIMEOUT)
                .await;
            *self.record.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        r
    }

    async fn dispatch_and_follow(
        &self,
        token: &str,
        version: &Version,
        t0: Instant,
        deadline: Instant,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        let inputs: BTreeMap<&String, String> = self
            .inputs
            .iter()
            .map(|(k, v)| {
                (
                    k,
                    fill(std::slice::from_ref(v), &[("version", version.as_str())]).remove(0),
                )
            })
            .collect();
        let path = format!(
            "/repos/{}/actions/workflows/{}/dispatches",
            self.repo, self.workflow
        );
        let call = format!("POST {path}");
        let token_ref = token;
        let dispatch = |details: bool| {
            let mut body = json!({"ref": self.git_ref, "inputs": inputs});
            if details {
                body["return_run_details"] = json!(true);
            }
            let url = format!("{}{path}", self.api);
            move || self.headers(self.client.post(&url), token_ref).json(&body)
        };
        let mut answer = call::send(
            &self.name,
            &call,
            Kind::Start,
            deadline,
            self.timeout,
            dispatch(true),
        )
        .await?;
        if answer.status == 422 && answer.body.contains("return_run_details") {
            // An older GitHub Enterprise Server: refused, so nothing started.
            answer = call::send(
                &self.name,
                &call,
                Kind::Start,
                deadline,
                self.timeout,
                dispatch(false),
            )
            .await?;
        }
        if !answer.ok() {
            return Err(answer.error(&self.name, &call));
        }
        // Accepted (2xx): the run has started whatever the body says. An
        // answer without a readable run id (cut short, not JSON) is no
        // failure — the run is looked for as after a 204.
        let run_id = if answer.status == 200 {
            match answer.json(&self.name, &call) {
                Ok(j) => j.get("workflow_run_id").and_then(Value::as_u64),
                Err(e) => {
                    tracing::warn!(
                        "{e}; the dispatch was accepted (HTTP 200) but its answer was not readable: looking for its run"
                    );
                    None
                }
            }
        } else {
            None
        };
        let run_id = match run_id {
            Some(id) => id,
            None => {
                let since = answer
                    .headers
                    .get(reqwest::header::DATE)
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                    .map(|d| d.with_timezone(&Utc))
                    .unwrap_or_else(Utc::now)
                    - chrono::Duration::seconds(2);
                // Dispatched: losing track of the run now leaves the deploy
                // unknown, not failed — the run may well be deploying.
                self.find_run(token, since, deadline)
                    .await
                    .map_err(|e| call::lost_track(&self.name, e))?
            }
        };
        // Dispatched and found: a run still going when the timeout passes,
        // or one that can no longer be read, may still deploy — unknown.
        self.follow(token, run_id, t0, deadline, report)
            .await
            .map_err(|e| call::lost_track(&self.name, e))
    }

    /// The run this dispatch started, when GitHub did not say: see the
    /// module's documentation for the rule.
    async fn find_run(
        &self,
        token: &str,
        since: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<u64, BackendError> {
        let user = call::send(
            &self.name,
            "GET /user",
            Kind::Read,
            deadline,
            self.timeout,
            || self.get(token, "/user"),
        )
        .await?;
        // A GitHub App's token has no user: match without the actor then.
        let actor = if user.ok() {
            user.json(&self.name, "GET /user")?
                .get("login")
                .and_then(Value::as_str)
                .map(str::to_string)
        } else if user.status == 403 || user.status == 404 {
            None
        } else {
            return Err(user.error(&self.name, "GET /user"));
        };
        let branch = self
            .git_ref
            .trim_start_matches("refs/heads/")
            .trim_start_matches("refs/tags/")
            .to_string();
        // `created` takes GitHub's search syntax: ">=" and an ISO time.
        let mut query: Vec<(&str, String)> = vec![
            ("event", "workflow_dispatch".into()),
            ("branch", branch.clone()),
            (
                "created",
                format!(">={}", since.format("%Y-%m-%dT%H:%M:%SZ")),
            ),
            ("per_page", "30".into()),
        ];
        if let Some(a) = &actor {
            query.push(("actor", a.clone()));
        }
        let path = format!(
            "/repos/{}/actions/workflows/{}/runs",
            self.repo, self.workflow
        );
        let call = format!("GET {path}");
        loop {
            let answer = call::send(
                &self.name,
                &call,
                Kind::Read,
                deadline,
                self.timeout,
                || self.get(token, &path).query(&query),
            )
            .await?;
            if !answer.ok() {
                return Err(answer.error(&self.name, &call));
            }
            let json = answer.json(&self.name, &call)?;
            let runs: Vec<&Value> = json
                .get("workflow_runs")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let matching: Vec<&Value> = runs
                .into_iter()
                .filter(|r| {
                    r.get("event").and_then(Value::as_str) == Some("workflow_dispatch")
                        && r.get("head_branch").and_then(Value::as_str) == Some(branch.as_str())
                        && r.get("created_at")
                            .and_then(Value::as_str)
                            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
                            .is_some_and(|c| c.with_timezone(&Utc) >= since)
                        && actor.as_deref().is_none_or(|a| {
                            r.pointer("/actor/login").and_then(Value::as_str) == Some(a)
                        })
                })
                .collect();
            match matching.as_slice() {
                [one] => {
                    if let Some(id) = one.get("id").and_then(Value::as_u64) {
                        return Ok(id);
                    }
                    return Err(BackendError::Garbage {
                        backend: format!("{}: {call}", self.name),
                        cause: "a run without an id".into(),
                    });
                }
                [] => {}
                several => {
                    let urls: Vec<&str> = several
                        .iter()
                        .filter_map(|r| r.get("html_url").and_then(Value::as_str))
                        .collect();
                    return Err(BackendError::OutcomeUnknown {
                        backend: self.name.clone(),
                        cause: format!(
                            "dispatched, but {} runs match this dispatch and none can be told apart: {}",
                            several.len(),
                            urls.join(", ")
                        ),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(BackendError::OutcomeUnknown {
                    backend: self.name.clone(),
                    cause: format!(
                        "dispatched, but no run of {} on {branch} appeared before the deploy's timeout",
                        self.workflow
                    ),
                });
            }
            pause(self.poll, deadline).await;
        }
    }

    /// Where run `id` is: "job / step" of the job in progress; `None` when
    /// GitHub does not say (or the read failed: only the name is lost).
    async fn current_step(&self, token: &str, id: u64, deadline: Instant) -> Option<String> {
        let path = format!("/repos/{}/actions/runs/{id}/jobs", self.repo);
        let call = format!("GET {path}");
        let a = call::send(
            &self.name,
            &call,
            Kind::Read,
            deadline,
            self.timeout,
            || {
                self.get(token, &path)
                    .query(&[("filter", "latest"), ("per_page", "100")])
            },
        )
        .await;
        let a = match a {
            Ok(a) if a.ok() => a,
            Ok(a) => {
                tracing::debug!("{}", a.error(&self.name, &call).cleaned());
                return None;
            }
            Err(e) => {
                tracing::debug!("{}", e.cleaned());
                return None;
            }
        };
        current_step(&a.json(&self.name, &call).ok()?)
    }

    /// The review run `id` waits for: remembered for [`review`](Self::review)
    /// and said as a [`Waiting`]. `None` when nothing waits on a reviewer
    /// (a wait timer, or the read failed).
    async fn pending_review(
        &self,
        token: &str,
        id: u64,
        number: &str,
        deadline: Instant,
    ) -> Option<Waiting> {
        let path = format!("/repos/{}/actions/runs/{id}/pending_deployments", self.repo);
        let call = format!("GET {path}");
        let a = call::send(
            &self.name,
            &call,
            Kind::Read,
            deadline,
            self.timeout,
            || self.get(token, &path),
        )
        .await;
        let json = match a {
            Ok(a) if a.ok() => a.json(&self.name, &call).ok(),
            Ok(a) => {
                tracing::warn!("{}", a.error(&self.name, &call).cleaned());
                None
            }
            Err(e) => {
                tracing::warn!("{}", e.cleaned());
                None
            }
        };
        let gate = json.as_ref().and_then(|j| pending_gate(j, id, number));
        let waiting = gate.as_ref().map(|(g, can)| Waiting {
            prompt: format!(
                "waiting on a reviewer for environment {}",
                g.env_names.join(", ")
            ),
            can_answer: *can,
        });
        self.gate.set(gate.map(|(g, _)| g));
        waiting
    }

    /// Answer the review the followed run waits for: approved or rejected,
    /// with the note as GitHub's review comment. Sent once, never repeated.
    pub(super) async fn review(&self, answer: &Review) -> Result<String, BackendError> {
        let gate = self
            .gate
            .waiting(&self.name, "no run of this deploy waits on a reviewer now")?;
        let token = secret(&self.name, Some(&self.token_env))?.unwrap_or_default();
        let state = answer.word();
        let comment = answer.said();
        let path = format!(
            "/repos/{}/actions/runs/{}/pending_deployments",
            self.repo, gate.run_id
        );
        let call = format!("POST {path}");
        let body = json!({"environment_ids": gate.env_ids, "state": state, "comment": comment});
        let url = format!("{}{path}", self.api);
        let a = call::send(
            &self.name,
            &call,
            Kind::Start,
            Instant::now() + RECORD_TIMEOUT,
            RECORD_TIMEOUT,
            || self.headers(self.client.post(&url), &token).json(&body),
        )
        .await?;
        let envs = gate.env_names.join(", ");
        if a.status == 403 {
            return Err(BackendError::Command {
                backend: format!("{}: {call}", self.name),
                cause: format!(
                    "GitHub refused the review (HTTP 403): this token may not approve deployments to environment {envs}; a required reviewer must answer on GitHub"
                ),
            });
        }
        if !a.ok() {
            return Err(a.error(&self.name, &call));
        }
        self.gate.clear();
        Ok(format!(
            "GitHub environment {envs}: {state} for {} (comment: {comment})",
            gate.run
        ))
    }

    /// Follow run `id` to its conclusion.
    async fn follow(
        &self,
        token: &str,
        id: u64,
        t0: Instant,
        deadline: Instant,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        let path = format!("/repos/{}/actions/runs/{id}", self.repo);
        let call = format!("GET {path}");
        let mut last_status = String::new();
        let mut unseen = 0u32;
        loop {
            let answer = call::send(
                &self.name,
                &call,
                Kind::Read,
                deadline,
                self.timeout,
                || self.get(token, &path),
            )
            .await?;
            // A run GitHub just created may not be readable yet (its API
            // reads from replicas): a 404 before the first sight of it is
            // read again a few times before it counts.
            if answer.status == 404 && last_status.is_empty() && unseen < NEW_RUN_404S {
                unseen += 1;
                tracing::info!(
                    "{}: {call} answered 404; the run may not be readable yet, reading again",
                    self.name
                );
                pause(self.poll.max(Duration::from_secs(1)), deadline).await;
                continue;
            }
            if !answer.ok() {
                return Err(answer.error(&self.name, &call));
            }
            let run = answer.json(&self.name, &call)?;
            let s = |k: &str| run.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let (status, url) = (s("status"), s("html_url"));
            let number = run
                .get("run_number")
                .and_then(Value::as_u64)
                .map(|n| format!("#{n}"))
                .unwrap_or_else(|| format!("id {id}"));
            let what = format!("GitHub Actions run {number} ({url})");
            if last_status.is_empty() {
                let known = {
                    let mut r = self.record.lock().unwrap_or_else(|p| p.into_inner());
                    match r.as_mut() {
                        Some((_, log)) if log.is_empty() => {
                            *log = url.clone();
                            true
                        }
                        _ => false,
                    }
                };
                if known {
                    self.record_status(token, "in_progress", &format!("run {number}"), deadline)
                        .await;
                }
            }
            if status != last_status {
                tracing::info!(
                    "{what}: {}, {} — {}",
                    status.replace('_', " "),
                    took(t0.elapsed()),
                    s("display_title")
                );
                last_status = status.clone();
            }
            if status != "completed" {
                let step = if status == "in_progress" {
                    self.current_step(token, id, deadline).await
                } else {
                    None
                };
                let waiting = if status == "waiting" {
                    self.pending_review(token, id, &number, deadline).await
                } else {
                    self.gate.clear();
                    None
                };
                report(Progress {
                    what: format!("GitHub Actions run {number}"),
                    state: status.replace('_', " "),
                    elapsed_s: t0.elapsed().as_secs_f64(),
                    step,
                    url: (!url.is_empty()).then(|| url.clone()),
                    waiting,
                });
            }
            if status == "completed" {
                let conclusion = s("conclusion");
                if conclusion == "success" {
                    return Ok(Started {
                        line: format!("{what} completed: success after {}", took(t0.elapsed())),
                        url: (!url.is_empty()).then_some(url),
                        ended: true,
                    });
                }
                return Err(BackendError::Command {
                    backend: self.name.clone(),
                    cause: format!("{what} ended: {}", conclusion.replace('_', " ")),
                });
            }
            if Instant::now() >= deadline {
                return Err(BackendError::Timeout {
                    backend: format!("{}: {what} still {}", self.name, status.replace('_', " ")),
                    after: self.timeout,
                });
            }
            pause(self.poll, deadline).await;
        }
    }
}

/// "job / step" of the first job in progress in a `…/jobs` answer.
fn current_step(jobs: &Value) -> Option<String> {
    let job = jobs
        .get("jobs")?
        .as_array()?
        .iter()
        .find(|j| j.get("status").and_then(Value::as_str) == Some("in_progress"))?;
    let name = job.get("name").and_then(Value::as_str)?;
    let step = job
        .get("steps")
        .and_then(Value::as_array)
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s.get("status").and_then(Value::as_str) == Some("in_progress"))
        })
        .and_then(|s| s.get("name").and_then(Value::as_str));
    Some(match step {
        Some(step) => format!("{name} / {step}"),
        None => name.to_string(),
    })
}

/// The environments a `…/pending_deployments` answer waits on, and
/// whether the token may answer for all of them; `None` when it waits on
/// none.
fn pending_gate(answer: &Value, run_id: u64, number: &str) -> Option<(Gate, bool)> {
    let pending = answer.as_array()?;
    let mut gate = Gate {
        run_id,
        run: format!("run {number}"),
        env_ids: Vec::new(),
        env_names: Vec::new(),
    };
    let mut can = true;
    for p in pending {
        let (Some(id), Some(name)) = (
            p.pointer("/environment/id").and_then(Value::as_u64),
            p.pointer("/environment/name").and_then(Value::as_str),
        ) else {
            continue;
        };
        gate.env_ids.push(id);
        gate.env_names.push(name.to_string());
        can &= p.get("current_user_can_approve").and_then(Value::as_bool) == Some(true);
    }
    (!gate.env_ids.is_empty()).then_some((gate, can))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_in_progress_names_where_the_run_is() {
        let jobs = json!({"jobs": [
            {"name": "build", "status": "completed", "steps": []},
            {"name": "deploy", "status": "in_progress", "steps": [
                {"name": "checkout", "status": "completed"},
                {"name": "migrate", "status": "in_progress"},
                {"name": "rollout", "status": "queued"}]}]});
        assert_eq!(current_step(&jobs).as_deref(), Some("deploy / migrate"));
        let starting = json!({"jobs": [{"name": "deploy", "status": "in_progress", "steps": []}]});
        assert_eq!(current_step(&starting).as_deref(), Some("deploy"));
        assert_eq!(current_step(&json!({"jobs": []})), None);
    }

    #[test]
    fn pending_deployments_name_the_environments_and_who_may_answer() {
        let answer = json!([
            {"environment": {"id": 161171787, "name": "production"}, "current_user_can_approve": true},
            {"environment": {"id": 7, "name": "eu"}, "current_user_can_approve": false}]);
        let (g, can) = pending_gate(&answer, 4242, "#12").unwrap();
        assert_eq!(g.env_ids, [161171787, 7]);
        assert_eq!(g.env_names, ["production", "eu"]);
        assert!(!can);
        assert_eq!(pending_gate(&json!([]), 4242, "#12"), None);
    }
}
