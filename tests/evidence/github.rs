//! GitHub's CI and review state against a local fake of its REST API that
//! records the exact requests (paths, pages, headers) and answers as GitHub
//! documents — including garbage, 401, 403, 404, rate limits and
//! pagination through the `Link` header.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shipdeck::backends::ci::github::GithubEvidence;
use shipdeck::domain::release::Commit;
use shipdeck::domain::{Check, CheckState};

pub const TOKEN_VAR: &str = "SHIPDECK_TEST_EVIDENCE_TOKEN";
pub const TOKEN: &str = "ghp_evidence-test-token-7731";
pub const REPO: &str = "acme/shop";

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
}

/// A canned failure: status, headers, body; for the first `times` calls
/// (all calls when `None`).
#[derive(Clone, Debug)]
pub struct Failure {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub times: Option<usize>,
}

#[derive(Default)]
pub struct Gh {
    pub reqs: Vec<Req>,
    /// Combined status per ref.
    pub statuses: HashMap<String, Value>,
    pub check_runs: HashMap<String, Vec<Value>>,
    /// Pull requests associated with each commit.
    pub pulls: HashMap<String, Vec<Value>>,
    pub reviews: HashMap<u64, Vec<Value>>,
    /// Items per page of every list.
    pub page_size: usize,
    pub fail: Option<Failure>,
    /// Answer this body (200) to every call.
    pub garbage: Option<String>,
}

pub struct FakeGithub {
    pub addr: String,
    shared: Arc<Mutex<Gh>>,
}

impl FakeGithub {
    pub fn start(f: impl FnOnce(&mut Gh)) -> FakeGithub {
        let mut gh = Gh {
            page_size: 2,
            ..Gh::default()
        };
        f(&mut gh);
        let shared = Arc::new(Mutex::new(gh));
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(shared.clone());
        FakeGithub {
            addr: crate::common::http::serve(app).to_string(),
            shared,
        }
    }

    pub fn api(&self) -> String {
        format!("http://{}/api/v3", self.addr)
    }

    pub fn reqs(&self) -> Vec<Req> {
        self.shared.lock().unwrap().reqs.clone()
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Gh) -> T) -> T {
        f(&mut self.shared.lock().unwrap())
    }
}

fn json_answer(status: u16, body: Value, headers: Vec<(&'static str, String)>) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    for (k, v) in headers {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

/// One page of `items` (1-based `page`), with GitHub's `Link` header.
fn paged(
    addr: &str,
    path: &str,
    items: &[Value],
    page: usize,
    size: usize,
    wrap: Option<&str>,
) -> Response {
    let from = (page - 1) * size;
    let chunk: Vec<Value> = items.iter().skip(from).take(size).cloned().collect();
    let mut headers = Vec::new();
    if from + size < items.len() {
        headers.push((
            "link",
            format!(
                "<http://{addr}{path}?per_page=100&page={}>; rel=\"next\", <http://{addr}{path}?per_page=100&page={}>; rel=\"last\"",
                page + 1,
                items.len().div_ceil(size)
            ),
        ));
    }
    let body = match wrap {
        Some(key) => json!({"total_count": items.len(), key: chunk}),
        None => Value::Array(chunk),
    };
    json_answer(200, body, headers)
}

async fn serve(
    State(shared): State<Arc<Mutex<Gh>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = Req {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: query.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
    };
    let mut gh = shared.lock().unwrap();
    gh.reqs.push(req);
    if let Some(f) = gh.fail.clone() {
        let live = f.times.is_none_or(|n| n > 0);
        if live {
            if let Some(n) = f.times {
                gh.fail.as_mut().unwrap().times = Some(n - 1);
            }
            let mut r = (StatusCode::from_u16(f.status).unwrap(), f.body.clone()).into_response();
            for (k, v) in f.headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            return r;
        }
    }
    if let Some(g) = &gh.garbage {
        return (StatusCode::OK, g.clone()).into_response();
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return json_answer(401, json!({"message": "Bad credentials"}), vec![]);
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size = gh.page_size;
    let path = uri.path().to_string();
    let Some(rest) = path.strip_prefix(&format!("/api/v3/repos/{REPO}/")) else {
        return json_answer(404, json!({"message": "Not Found"}), vec![]);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    match parts.as_slice() {
        ["commits", r, "status"] => match gh.statuses.get(*r) {
            Some(s) => json_answer(200, s.clone(), vec![]),
            None => json_answer(404, json!({"message": "No commit found for SHA"}), vec![]),
        },
        ["commits", r, "check-runs"] => {
            let runs = gh.check_runs.get(*r).cloned().unwrap_or_default();
            paged(&host, &path, &runs, page, size, Some("check_runs"))
        }
        ["commits", sha, "pulls"] => {
            let pulls = gh.pulls.get(*sha).cloned().unwrap_or_default();
            paged(&host, &path, &pulls, page, size, None)
        }
        ["pulls", n, "reviews"] => {
            let n: u64 = n.parse().unwrap_or(0);
            let reviews = gh.reviews.get(&n).cloned().unwrap_or_default();
            paged(&host, &path, &reviews, page, size, None)
        }
        _ => json_answer(404, json!({"message": "Not Found"}), vec![]),
    }
}

/// The token is put in this test binary's environment before `main`, on
/// the only thread there is then: `set_var` while other threads run (the
/// tests, their runtimes, C code calling `getenv`) is a data race.
#[used]
#[unsafe(link_section = ".init_array")]
static SET_TOKEN: extern "C" fn() = {
    extern "C" fn set_token() {
        // SAFETY: runs before `main`, single-threaded.
        unsafe { std::env::set_var(TOKEN_VAR, TOKEN) };
    }
    set_token
};

fn client(fake: &FakeGithub, timeout: Duration) -> GithubEvidence {
    assert_eq!(std::env::var(TOKEN_VAR).as_deref(), Ok(TOKEN));
    let http = shipdeck::backends::http::client(Duration::from_secs(2), None).unwrap();
    GithubEvidence::new(REPO, TOKEN_VAR, Some(&fake.api()), http, timeout)
}

pub const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

pub fn status(state: &str, contexts: &[(&str, &str)]) -> Value {
    let statuses: Vec<Value> = contexts
        .iter()
        .map(|(c, s)| json!({"context": c, "state": s, "description": "", "target_url": format!("https://ci.example/{c}")}))
        .collect();
    json!({"state": state, "sha": SHA, "total_count": statuses.len(), "statuses": statuses})
}

pub fn run(name: &str, status: &str, conclusion: Option<&str>) -> Value {
    json!({"name": name, "status": status, "conclusion": conclusion,
           "html_url": format!("https://github.com/{REPO}/runs/{name}")})
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ci(fake: &FakeGithub) -> Check {
    rt().block_on(client(fake, Duration::from_secs(10)).ci(SHA))
}

#[test]
fn ci_is_green_from_the_combined_status_and_every_page_of_check_runs() {
    let fake = FakeGithub::start(|g| {
        g.statuses
            .insert(SHA.into(), status("success", &[("ci/jenkins", "success")]));
        g.check_runs.insert(
            SHA.into(),
            vec![
                run("build", "completed", Some("success")),
                run("lint", "completed", Some("neutral")),
                run("docs", "completed", Some("skipped")),
            ],
        );
    });
    let c = ci(&fake);
    assert_eq!(c.state, CheckState::Success, "{c:?}");
    assert_eq!(c.detail, "4 checks passed on aaaaaaa");
    let reqs = fake.reqs();
    let calls: Vec<String> = reqs
        .iter()
        .map(|r| {
            format!(
                "{} {} page={}",
                r.method,
                r.path,
                r.query.get("page").map(String::as_str).unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            format!("GET /api/v3/repos/{REPO}/commits/{SHA}/status page=-"),
            format!("GET /api/v3/repos/{REPO}/commits/{SHA}/check-runs page=-"),
            format!("GET /api/v3/repos/{REPO}/commits/{SHA}/check-runs page=2"),
        ]
    );
    for r in &reqs {
        assert_eq!(r.headers["accept"], "application/vnd.github+json", "{r:?}");
        assert_eq!(r.headers["x-github-api-version"], "2022-11-28", "{r:?}");
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
        assert!(r.headers["user-agent"].starts_with("shipdeck/"), "{r:?}");
    }
    assert_eq!(
        reqs[1].query.get("per_page").map(String::as_str),
        Some("100")
    );
}

#[test]
fn a_failed_check_run_or_status_makes_ci_red_and_names_it() {
    let fake = FakeGithub::start(|g| {
        g.statuses
            .insert(SHA.into(), status("failure", &[("ci/jenkins", "error")]));
        g.check_runs.insert(
            SHA.into(),
            vec![
                run("build", "completed", Some("success")),
                run("test", "completed", Some("failure")),
            ],
        );
    });
    let c = ci(&fake);
    assert_eq!(c.state, CheckState::Failure, "{c:?}");
    assert_eq!(
        c.detail,
        "2 of 3 checks failed on aaaaaaa: ci/jenkins, test (failure)"
    );
    assert_eq!(c.url.as_deref(), Some("https://ci.example/ci/jenkins"));
}

#[test]
fn a_check_still_running_is_pending_and_checks_only_through_runs_count() {
    // No statuses at all: the combined `pending` says nothing by itself.
    let fake = FakeGithub::start(|g| {
        g.statuses.insert(SHA.into(), status("pending", &[]));
        g.check_runs.insert(
            SHA.into(),
            vec![
                run("build", "completed", Some("success")),
                run("e2e", "in_progress", None),
                run("deploy-preview", "queued", None),
            ],
        );
    });
    let c = ci(&fake);
    assert_eq!(c.state, CheckState::Pending, "{c:?}");
    assert_eq!(
        c.detail,
        "2 of 3 checks still running on aaaaaaa: e2e, deploy-preview"
    );
    fake.with(|g| {
        g.check_runs
            .insert(SHA.into(), vec![run("build", "completed", Some("success"))]);
    });
    let c = ci(&fake);
    assert_eq!(
        (c.state, c.detail.as_str()),
        (CheckState::Success, "1 check passed on aaaaaaa")
    );
}

#[test]
fn garbage_answers_are_unknown_and_say_what_came() {
    let fake = FakeGithub::start(|g| g.garbage = Some("<html>Unicorn!</html>".into()));
    let c = ci(&fake);
    assert_eq!(c.state, CheckState::Unknown, "{c:?}");
    assert!(
        c.detail.contains("commits/") && c.detail.contains("not JSON"),
        "{}",
        c.detail
    );
    let fake = FakeGithub::start(|g| g.garbage = Some(r#"{"message": "hello"}"#.into()));
    let c = ci(&fake);
    assert_eq!(c.state, CheckState::Unknown, "{c:?}");
    assert!(c.detail.contains("no statuses list"), "{}", c.detail);
    // A status list fine, the check runs not a list.
    let fake = FakeGithub::start(|g| {
        g.statuses
            .insert(SHA.into(), status("success", &[("ci", "success")]));
        g.check_runs
            .insert(SHA.into(), vec![json!({"name": "x", "status": "exploded"})]);
    });
    let c = ci(&fake);
    assert_eq!(c.state, CheckState::Unknown, "{c:?}");
    assert!(c.detail.contains("x (status exploded)"), "{}", c.detail);
}

#[test]
fn refusals_401_403_404_are_unknown_with_what_to_do_and_no_token() {
    for (status, words) in [
        (401, "was refused (HTTP 401)"),
        (403, "may not read this (HTTP 403)"),
        (404, "not found (HTTP 404)"),
    ] {
        let fake = FakeGithub::start(|g| {
            g.fail = Some(Failure {
                status,
                headers: vec![("x-ratelimit-remaining", "4999".into())],
                body: format!("{{\"message\": \"nope, your token {TOKEN} is wrong\"}}"),
                times: None,
            })
        });
        let c = ci(&fake);
        assert_eq!(c.state, CheckState::Unknown, "{c:?}");
        assert!(c.detail.contains(words), "{status}: {}", c.detail);
        assert!(
            c.detail.contains(TOKEN_VAR) || status == 404,
            "{}",
            c.detail
        );
        assert!(!c.detail.contains(TOKEN), "the token leaked: {}", c.detail);
        // Nothing is asked twice after a refusal.
        assert_eq!(fake.reqs().len(), 1, "{status}");
    }
    // A commit GitHub does not know.
    let fake = FakeGithub::start(|_| {});
    let c = ci(&fake);
    assert!(c.detail.contains("HTTP 404"), "{}", c.detail);
}

#[test]
fn a_short_rate_limit_is_waited_out_and_a_long_one_is_unknown_with_when_it_lifts() {
    let fake = FakeGithub::start(|g| {
        g.statuses
            .insert(SHA.into(), status("success", &[("ci", "success")]));
        g.fail = Some(Failure {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: r#"{"message": "slow down"}"#.into(),
            times: Some(1),
        });
    });
    let c = ci(&fake);
    assert_eq!(c.state, CheckState::Success, "{c:?}");
    assert_eq!(fake.reqs().len(), 3, "the refused call is asked again");
    let reset = (chrono::Utc::now().timestamp() + 3600).to_string();
    let fake = FakeGithub::start(|g| {
        g.fail = Some(Failure {
            status: 403,
            headers: vec![
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.clone()),
            ],
            body: r#"{"message": "API rate limit exceeded"}"#.into(),
            times: None,
        });
    });
    // Not waited out: the reset is an hour away and the timeout two
    // minutes; anything under one shows neither was waited for.
    let t0 = std::time::Instant::now();
    let c = rt().block_on(client(&fake, Duration::from_secs(120)).ci(SHA));
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "waited {:?}",
        t0.elapsed()
    );
    assert_eq!(c.state, CheckState::Unknown, "{c:?}");
    assert!(c.detail.contains("rate limited"), "{}", c.detail);
}

fn commit(sha: &str, subject: &str) -> Commit {
    Commit {
        sha: sha.to_string(),
        author: "Alice Example".into(),
        date: chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+00:00").unwrap(),
        subject: subject.into(),
    }
}

fn pr(n: u64, merged: bool) -> Value {
    json!({"number": n, "state": "closed", "html_url": format!("https://github.com/{REPO}/pull/{n}"),
           "merged_at": if merged { json!("2026-11-20T10:00:00Z") } else { Value::Null },
           "user": {"login": "dev"}})
}

fn review(user: &str, state: &str) -> Value {
    json!({"user": {"login": user}, "state": state, "html_url": "https://github.com/x"})
}

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const C3: &str = "3333333333333333333333333333333333333333";
const C4: &str = "4444444444444444444444444444444444444444";

fn reviewed(g: &mut Gh) {
    g.pulls.insert(C1.into(), vec![pr(7, true)]);
    g.pulls.insert(C2.into(), vec![pr(7, true)]);
    // #3 was closed unmerged; the commit came in through #9.
    g.pulls.insert(C3.into(), vec![pr(3, false), pr(9, true)]);
    g.reviews.insert(
        7,
        vec![
            review("erin", "COMMENTED"),
            review("dana", "CHANGES_REQUESTED"),
            review("dana", "APPROVED"),
        ],
    );
    g.reviews.insert(9, vec![review("erin", "APPROVED")]);
}

#[test]
fn every_commit_through_an_approved_pull_request_is_reviewed_with_who_approved() {
    let fake = FakeGithub::start(reviewed);
    let commits = [
        commit(C1, "cart badge"),
        commit(C2, "fix cart"),
        commit(C3, "search"),
    ];
    let c = rt().block_on(client(&fake, Duration::from_secs(10)).review(&commits));
    assert_eq!(c.state, CheckState::Success, "{c:?}");
    assert_eq!(
        c.detail,
        "3 commits through approved pull requests #7, #9 (approved by dana, erin)"
    );
    let reqs = fake.reqs();
    let mut paths: Vec<String> = reqs
        .iter()
        .map(|r| match r.query.get("page") {
            Some(p) => format!("{}?page={p}", r.path),
            None => r.path.clone(),
        })
        .collect();
    paths.sort();
    let base = format!("/api/v3/repos/{REPO}");
    let mut want = vec![
        format!("{base}/commits/{C1}/pulls"),
        format!("{base}/commits/{C2}/pulls"),
        format!("{base}/commits/{C3}/pulls"),
        // Each pull request's reviews once, every page of them.
        format!("{base}/pulls/7/reviews"),
        format!("{base}/pulls/7/reviews?page=2"),
        format!("{base}/pulls/9/reviews"),
    ];
    want.sort();
    assert_eq!(paths, want);
}

#[test]
fn commits_without_an_approved_pull_request_are_named() {
    let fake = FakeGithub::start(|g| {
        reviewed(g);
        g.reviews.insert(9, vec![review("erin", "COMMENTED")]);
        g.pulls.insert(C4.into(), vec![pr(11, false)]);
    });
    let commits = [
        commit(C1, "cart badge"),
        commit(C3, "search"),
        commit(C4, "hotfix pushed straight to main"),
    ];
    let c = rt().block_on(client(&fake, Duration::from_secs(10)).review(&commits));
    assert_eq!(c.state, CheckState::Failure, "{c:?}");
    assert_eq!(
        c.detail,
        "2 of 3 commits came in without an approved pull request: 3333333 \"search\" (#9 has no approving review), 4444444 \"hotfix pushed straight to main\" (no merged pull request)"
    );
    assert_eq!(
        c.url.as_deref(),
        Some("https://github.com/acme/shop/pull/9")
    );
}

#[test]
fn a_review_lookup_that_fails_is_unknown_not_reviewed() {
    let fake = FakeGithub::start(|g| {
        reviewed(g);
        g.fail = Some(Failure {
            status: 502,
            headers: vec![],
            body: "bad gateway".into(),
            times: None,
        });
    });
    let commits = [commit(C1, "cart badge")];
    let c = rt().block_on(client(&fake, Duration::from_secs(10)).review(&commits));
    assert_eq!(c.state, CheckState::Unknown, "{c:?}");
    assert!(c.detail.contains("HTTP 502"), "{}", c.detail);
}

#[test]
fn a_silent_github_is_unknown_within_the_timeout() {
    // A listener that accepts and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    let http = shipdeck::backends::http::client(Duration::from_secs(2), None).unwrap();
    let gh = GithubEvidence::new(
        REPO,
        TOKEN_VAR,
        Some(&format!("http://{addr}")),
        http,
        Duration::from_millis(800),
    );
    let t0 = std::time::Instant::now();
    let c = rt().block_on(gh.ci(SHA));
    // Bounded (the listener never answers); not held to a quick figure.
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert_eq!(c.state, CheckState::Unknown, "{c:?}");
    assert!(c.detail.contains("no answer within"), "{}", c.detail);
}
