//! GitHub as the source of a release's evidence: the CI state of its
//! commit, and whether each of its commits came through an approved pull
//! request.
//!
//! What this relies on, from GitHub's REST API documentation (API version
//! 2022-11-28: "Commit statuses", "Check runs", "Commits" → "List pull
//! requests associated with a commit", "Pull request reviews", "Using
//! pagination in the REST API", "Rate limits for the REST API"):
//!
//! - `GET {api}/repos/{owner}/{repo}/commits/{ref}/status` answers the
//!   combined status `{state, total_count, statuses: [{state, context,
//!   description, target_url}]}`; `state` is `failure` if any context
//!   reports `error` or `failure`, `pending` if there are no statuses or one
//!   is pending, else `success`. With `total_count: 0` (a repository that
//!   reports through check runs only) its `pending` says nothing.
//! - `GET {api}/repos/{owner}/{repo}/commits/{ref}/check-runs` answers
//!   `{total_count, check_runs: [{name, status, conclusion, html_url,
//!   details_url}]}`; `status` is `queued`, `in_progress`, `completed` (or,
//!   for GitHub Actions, `waiting`, `requested`, `pending`); a completed
//!   run's `conclusion` is `success`, `failure`, `neutral`, `cancelled`,
//!   `skipped`, `timed_out`, `action_required`, `stale` or
//!   `startup_failure`.
//! - `GET {api}/repos/{owner}/{repo}/commits/{sha}/pulls` lists the pull
//!   requests associated with a commit (`[{number, html_url, merged_at,
//!   user{login}}]`): for a commit on the default branch, the merged pull
//!   request that brought it in.
//! - `GET {api}/repos/{owner}/{repo}/pulls/{number}/reviews` lists a pull
//!   request's reviews, oldest first (`[{user{login}, state, html_url}]`,
//!   `state` `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or
//!   `PENDING`). A reviewer's latest approving or requesting review counts
//!   (a comment does not change it, a dismissal withdraws it).
//! - Lists take `per_page` (at most 100) and are paginated with the `Link`
//!   header (`<…>; rel="next"`), which is followed on the configured API
//!   origin only.
//! - Every request carries `Accept: application/vnd.github+json`,
//!   `X-GitHub-Api-Version: 2022-11-28`, `Authorization: Bearer TOKEN` and a
//!   `User-Agent`. 401 is a bad token, 403 without rate-limit headers a
//!   missing permission, 404 a repository or commit the token cannot see;
//!   rate limits (403 or 429 with `retry-after`, or
//!   `x-ratelimit-remaining: 0` with `x-ratelimit-reset`) are waited out
//!   within the deadline, else reported with the time they lift.
//!
//! Nothing here passes silently: a call that fails makes the answer
//! `unknown`, with the call and the cause named.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backends::BackendError;
use crate::backends::deploy::call::{self, Answer, Kind};
use crate::backends::util::secret;
use crate::domain::release::Commit;
use crate::domain::{Check, CheckState};

/// The REST API version sent with every call.
pub const API_VERSION: &str = "2022-11-28";
const PUBLIC_API: &str = "https://api.github.com";
/// Items per page of a list (GitHub's maximum).
const PER_PAGE: usize = 100;
/// Pages of one list read at most.
const MAX_PAGES: usize = 10;
/// Commits whose pull requests are looked up at once.
const PARALLEL: usize = 8;

/// A repository on GitHub (or GitHub Enterprise Server) read for evidence.
#[derive(Clone, Debug)]
pub struct GithubEvidence {
    client: reqwest::Client,
    /// The API root without a trailing slash (GHE's `/api/v3` kept).
    api: String,
    repo: String,
    token_env: String,
    name: String,
    /// How long one answer (CI, or the review of every commit) may take.
    timeout: Duration,
}

impl GithubEvidence {
    /// `repo` is `owner/name` (checked at config load).
    pub fn new(
        repo: &str,
        token_env: &str,
        api_url: Option<&str>,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        GithubEvidence {
            client,
            api: api_url
                .unwrap_or(PUBLIC_API)
                .trim_end_matches('/')
                .to_string(),
            repo: repo.to_string(),
            token_env: token_env.to_string(),
            name: format!("GitHub ({repo})"),
            timeout,
        }
    }

    /// GET `path` (below the repository) and every further page of it;
    /// `items` picks the list out of one page's JSON. An error names the
    /// call and what GitHub said.
    async fn list(
        &self,
        token: &str,
        path: &str,
        items: fn(&Value) -> Option<&Vec<Value>>,
        deadline: Instant,
    ) -> Result<Vec<Value>, BackendError> {
        let base = reqwest::Url::parse(&self.api).map_err(|e| BackendError::Command {
            backend: self.name.clone(),
            cause: format!("api_url is not a URL: {e}"),
        })?;
        let call = format!("GET /repos/{}{path}", self.repo);
        let mut url = format!(
            "{}/repos/{}{path}{}per_page={PER_PAGE}",
            self.api,
            self.repo,
            if path.contains('?') { '&' } else { '?' }
        );
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let a = self.get(token, &call, &url, deadline).await?;
            let j = a.json(&self.name, &call)?;
            let page = items(&j).ok_or_else(|| BackendError::Garbage {
                backend: format!("{}: {call}", self.name),
                cause: format!("not the list GitHub documents: {}", shape(&j)),
            })?;
            out.extend(page.iter().cloned());
            match next_link(&a.headers).and_then(|n| call::on_base(&base, &n)) {
                Some(next) => url = next.to_string(),
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// One GET, its answer refused unless 2xx (with GitHub's reason).
    async fn get(
        &self,
        token: &str,
        call: &str,
        url: &str,
        deadline: Instant,
    ) -> Result<Answer, BackendError> {
        let a = call::send(&self.name, call, Kind::Read, deadline, self.timeout, || {
            self.client
                .get(url)
                .bearer_auth(token)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", API_VERSION)
        })
        .await?;
        if a.ok() {
            Ok(a)
        } else {
            Err(refusal(&self.name, call, &self.token_env, a))
        }
    }

    fn token(&self) -> Result<String, BackendError> {
        Ok(secret(&self.name, Some(&self.token_env))?.unwrap_or_default())
    }

    /// The CI state of `sha`: the combined commit status and the check runs.
    pub async fn ci(&self, sha: &str) -> Check {
        match self.ci_state(sha).await {
            Ok(c) => c,
            Err(e) => Check::unknown(e.cleaned().to_string()),
        }
    }

    async fn ci_state(&self, sha: &str) -> Result<Check, BackendError> {
        let deadline = Instant::now() + self.timeout;
        let token = self.token()?;
        let path = format!("/commits/{sha}/status");
        let call = format!("GET /repos/{}{path}", self.repo);
        let url = format!("{}/repos/{}{path}", self.api, self.repo);
        let combined = self.get(&token, &call, &url, deadline).await?;
        let combined = combined.json(&self.name, &call)?;
        let statuses = combined
            .get("statuses")
            .and_then(Value::as_array)
            .ok_or_else(|| BackendError::Garbage {
                backend: format!("{}: {call}", self.name),
                cause: format!("no statuses list: {}", shape(&combined)),
            })?;
        let runs = self
            .list(
                &token,
                &format!("/commits/{sha}/check-runs"),
                |j| j.get("check_runs").and_then(Value::as_array),
                deadline,
            )
            .await?;
        let mut seen: Vec<Seen> = Vec::new();
        for s in statuses {
            let name = text(s, "context").unwrap_or("a status");
            let state = match text(s, "state") {
                Some("success") => Outcome::Passed,
                Some("pending") => Outcome::Running,
                Some("failure") | Some("error") => Outcome::Failed,
                other => Outcome::Odd(other.unwrap_or("no state").to_string()),
            };
            seen.push(Seen {
                name: name.to_string(),
                outcome: state,
                url: text(s, "target_url").map(str::to_string),
            });
        }
        for r in &runs {
            let name = text(r, "name").unwrap_or("a check run");
            let outcome = match (text(r, "status"), text(r, "conclusion")) {
                (Some("completed"), Some("success" | "neutral" | "skipped")) => Outcome::Passed,
                (Some("completed"), Some(c)) => Outcome::Concluded(c.to_string()),
                (Some("completed"), None) => Outcome::Odd("completed without a conclusion".into()),
                (Some(_), _) => Outcome::Running,
                (None, _) => Outcome::Odd("no status".into()),
            };
            seen.push(Seen {
                name: name.to_string(),
                outcome,
                url: text(r, "html_url")
                    .or_else(|| text(r, "details_url"))
                    .map(str::to_string),
            });
        }
        Ok(judge_ci(&seen, &sha[..sha.len().min(7)]))
    }

    /// Whether every commit of the release reached the branch through a
    /// merged pull request with an approving review, and who approved.
    pub async fn review(&self, commits: &[Commit]) -> Check {
        match self.review_state(commits).await {
            Ok(c) => c,
            Err(e) => Check::unknown(e.cleaned().to_string()),
        }
    }

    async fn review_state(&self, commits: &[Commit]) -> Result<Check, BackendError> {
        if commits.is_empty() {
            return Ok(Check::new(
                CheckState::Success,
                "no commits between the versions: nothing to review",
                None,
            ));
        }
        let deadline = Instant::now() + self.timeout;
        let token = self.token()?;
        // The merged pull request of each commit, a few lookups at a time.
        let mut pulls: Vec<Option<Pull>> = vec![None; commits.len()];
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in commits.iter().enumerate() {
            let me = self.clone();
            let token = token.clone();
            let sha = c.sha.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let listed = me
                    .list(
                        &token,
                        &format!("/commits/{sha}/pulls"),
                        Value::as_array,
                        deadline,
                    )
                    .await;
                (i, listed)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((i, listed)) = joined else {
                return Err(BackendError::Command {
                    backend: self.name.clone(),
                    cause: "a pull request lookup ended unexpectedly".into(),
                });
            };
            pulls[i] = merged_pull(&listed?);
        }
        // The reviews of each pull request, once.
        let numbers: BTreeSet<u64> = pulls.iter().flatten().map(|p| p.number).collect();
        let mut approvers: HashMap<u64, Vec<String>> = HashMap::new();
        for n in numbers {
            let reviews = self
                .list(
                    &token,
                    &format!("/pulls/{n}/reviews"),
                    Value::as_array,
                    deadline,
                )
                .await?;
            approvers.insert(n, approved_by(&reviews));
        }
        Ok(judge_review(commits, &pulls, &approvers))
    }
}

/// How one status or check run ended.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Passed,
    Running,
    Failed,
    /// A completed check run's conclusion other than a pass.
    Concluded(String),
    /// An answer GitHub does not document.
    Odd(String),
}

#[derive(Clone, Debug)]
struct Seen {
    name: String,
    outcome: Outcome,
    url: Option<String>,
}

/// Names of the first few, "and N more".
fn names(xs: &[String]) -> String {
    let mut s = xs.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    if xs.len() > 4 {
        s.push_str(&format!(" and {} more", xs.len() - 4));
    }
    s
}

/// The CI state from every status and check run of the commit.
fn judge_ci(seen: &[Seen], short: &str) -> Check {
    let n = seen.len();
    let first_url = |f: &dyn Fn(&Outcome) -> bool| {
        seen.iter()
            .find(|s| f(&s.outcome))
            .and_then(|s| s.url.clone())
            .map(|u| crate::text::clean(&u))
    };
    let failed: Vec<String> = seen
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Failed => Some(crate::text::clean(&s.name)),
            Outcome::Concluded(c) => Some(format!(
                "{} ({})",
                crate::text::clean(&s.name),
                crate::text::clean(c)
            )),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Check::new(
            CheckState::Failure,
            format!(
                "{} of {n} checks failed on {short}: {}",
                failed.len(),
                names(&failed)
            ),
            first_url(&|o| matches!(o, Outcome::Failed | Outcome::Concluded(_))),
        );
    }
    let odd: Vec<String> = seen
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Odd(why) => Some(format!(
                "{} ({})",
                crate::text::clean(&s.name),
                crate::text::clean(why)
            )),
            _ => None,
        })
        .collect();
    if !odd.is_empty() {
        return Check::unknown(format!(
            "GitHub answered states it does not document for {short}: {}",
            names(&odd)
        ));
    }
    let running: Vec<String> = seen
        .iter()
        .filter(|s| s.outcome == Outcome::Running)
        .map(|s| crate::text::clean(&s.name))
        .collect();
    if !running.is_empty() {
        return Check::new(
            CheckState::Pending,
            format!(
                "{} of {n} checks still running on {short}: {}",
                running.len(),
                names(&running)
            ),
            first_url(&|o| *o == Outcome::Running),
        );
    }
    if n == 0 {
        return Check::new(
            CheckState::Pending,
            format!("no status or check run reported for {short} yet"),
            None,
        );
    }
    Check::new(
        CheckState::Success,
        format!(
            "{n} check{} passed on {short}",
            if n == 1 { "" } else { "s" }
        ),
        None,
    )
}

#[derive(Clone, Debug, PartialEq)]
struct Pull {
    number: u64,
    url: Option<String>,
}

/// The merged pull request among those GitHub associates with a commit.
fn merged_pull(list: &[Value]) -> Option<Pull> {
    list.iter()
        .filter(|p| p.get("merged_at").is_some_and(|m| !m.is_null()))
        .find_map(|p| {
            Some(Pull {
                number: p.get("number")?.as_u64()?,
                url: text(p, "html_url").map(str::to_string),
            })
        })
}

/// Who approved, by their latest approving or requesting review.
fn approved_by(reviews: &[Value]) -> Vec<String> {
    let mut last: Vec<(String, bool)> = Vec::new();
    for r in reviews {
        let Some(user) = r.get("user").and_then(|u| text(u, "login")) else {
            continue;
        };
        let verdict = match text(r, "state") {
            Some("APPROVED") => Some(true),
            Some("CHANGES_REQUESTED") | Some("DISMISSED") => Some(false),
            _ => None,
        };
        if let Some(ok) = verdict {
            last.retain(|(u, _)| u != user);
            last.push((user.to_string(), ok));
        }
    }
    last.into_iter()
        .filter(|(_, ok)| *ok)
        .map(|(u, _)| crate::text::clean(&u))
        .collect()
}

/// Every commit through a merged, approved pull request, or the commits that were not.
fn judge_review(
    commits: &[Commit],
    pulls: &[Option<Pull>],
    approvers: &HashMap<u64, Vec<String>>,
) -> Check {
    let mut missing = Vec::new();
    let mut by: BTreeSet<String> = BTreeSet::new();
    let mut prs: BTreeSet<u64> = BTreeSet::new();
    let mut first_bad_url = None;
    for (c, p) in commits.iter().zip(pulls) {
        let subject: String = c.subject.chars().take(50).collect();
        match p {
            None => missing.push(format!(
                "{} {subject:?} (no merged pull request)",
                c.short()
            )),
            Some(p) => match approvers.get(&p.number).filter(|a| !a.is_empty()) {
                Some(a) => {
                    prs.insert(p.number);
                    by.extend(a.iter().cloned());
                }
                None => {
                    if first_bad_url.is_none() {
                        first_bad_url = p.url.clone();
                    }
                    missing.push(format!(
                        "{} {subject:?} (#{} has no approving review)",
                        c.short(),
                        p.number
                    ));
                }
            },
        }
    }
    if !missing.is_empty() {
        return Check::new(
            CheckState::Failure,
            format!(
                "{} of {} commits came in without an approved pull request: {}",
                missing.len(),
                commits.len(),
                names(&missing)
            ),
            first_bad_url.map(|u| crate::text::clean(&u)),
        );
    }
    let prs: Vec<String> = prs.iter().map(|n| format!("#{n}")).collect();
    let by: Vec<String> = by.into_iter().collect();
    Check::new(
        CheckState::Success,
        format!(
            "{} commit{} through approved pull requests {} (approved by {})",
            commits.len(),
            if commits.len() == 1 { "" } else { "s" },
            names(&prs),
            names(&by)
        ),
        None,
    )
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// What a JSON answer looks like, briefly, for an error.
fn shape(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().take(6).map(String::as_str).collect();
            format!(
                "an object with {}",
                if keys.is_empty() {
                    "no keys".into()
                } else {
                    keys.join(", ")
                }
            )
        }
        Value::Array(a) => format!("a list of {}", a.len()),
        Value::Null => "null".into(),
        _ => "a plain value".into(),
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// A refused call in words a human can act on.
fn refusal(backend: &str, call: &str, token_env: &str, a: Answer) -> BackendError {
    let why = match a.status {
        401 => Some(format!("the token in {token_env} was refused (HTTP 401): set a valid token")),
        403 if a.headers.get("x-ratelimit-remaining").is_some_and(|v| v == "0") => {
            let reset = a
                .headers
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| format!(" until {}", t.format("%H:%M:%S UTC")))
                .unwrap_or_default();
            Some(format!("rate limited (HTTP 403){reset}"))
        }
        403 => Some(format!(
            "the token in {token_env} may not read this (HTTP 403): it needs read access to statuses, checks and pull requests"
        )),
        404 => Some(
            "not found (HTTP 404): the repository or commit does not exist, or the token cannot see it".to_string(),
        ),
        429 => Some("rate limited (HTTP 429)".to_string()),
        _ => None,
    };
    match why {
        Some(cause) => BackendError::Command {
            backend: format!("{backend}: {call}"),
            cause,
        },
        None => a.error(backend, call),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(name: &str, outcome: Outcome) -> Seen {
        Seen {
            name: name.into(),
            outcome,
            url: Some(format!("https://ci.example/{name}")),
        }
    }

    #[test]
    fn one_failed_check_makes_ci_red_and_names_it() {
        let c = judge_ci(
            &[
                seen("build", Outcome::Passed),
                seen("test", Outcome::Concluded("timed_out".into())),
                seen("lint", Outcome::Running),
            ],
            "abc1234",
        );
        assert_eq!(c.state, CheckState::Failure);
        assert_eq!(
            c.detail,
            "1 of 3 checks failed on abc1234: test (timed_out)"
        );
        assert_eq!(c.url.as_deref(), Some("https://ci.example/test"));
    }

    #[test]
    fn running_checks_are_pending_and_all_passed_is_green() {
        let c = judge_ci(
            &[
                seen("build", Outcome::Passed),
                seen("test", Outcome::Running),
            ],
            "abc1234",
        );
        assert_eq!(
            (c.state, c.detail.as_str()),
            (
                CheckState::Pending,
                "1 of 2 checks still running on abc1234: test"
            )
        );
        let c = judge_ci(&[seen("build", Outcome::Passed)], "abc1234");
        assert_eq!(
            (c.state, c.detail.as_str()),
            (CheckState::Success, "1 check passed on abc1234")
        );
        let c = judge_ci(&[], "abc1234");
        assert_eq!(c.state, CheckState::Pending);
    }

    #[test]
    fn an_undocumented_state_is_unknown_not_green() {
        let c = judge_ci(
            &[
                seen("build", Outcome::Passed),
                seen("x", Outcome::Odd("exploded".into())),
            ],
            "abc1234",
        );
        assert_eq!(c.state, CheckState::Unknown);
        assert!(c.detail.contains("x (exploded)"), "{}", c.detail);
    }

    #[test]
    fn a_reviewers_latest_decision_counts() {
        let r = |u: &str, s: &str| json!({"user": {"login": u}, "state": s});
        let reviews = [
            r("dana", "APPROVED"),
            r("erin", "APPROVED"),
            r("erin", "COMMENTED"),
            r("dana", "CHANGES_REQUESTED"),
            r("fay", "APPROVED"),
            r("fay", "DISMISSED"),
        ];
        assert_eq!(approved_by(&reviews), vec!["erin".to_string()]);
        assert!(approved_by(&[r("dana", "COMMENTED")]).is_empty());
    }

    #[test]
    fn only_a_merged_pull_request_counts() {
        let list = [
            json!({"number": 3, "merged_at": null}),
            json!({"number": 7, "merged_at": "2026-11-20T10:00:00Z", "html_url": "https://github.com/acme/shop/pull/7"}),
        ];
        assert_eq!(merged_pull(&list).map(|p| p.number), Some(7));
        assert_eq!(merged_pull(&list[..1]), None);
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=5>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?page=2")
        );
        h.insert(
            reqwest::header::LINK,
            r#"<https://api.github.com/x?page=1>; rel="prev""#.parse().unwrap(),
        );
        assert_eq!(next_link(&h), None);
    }
}
