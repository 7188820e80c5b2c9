//! A GitHub Actions deploy held by an environment's required reviewers:
//! the engine reports the run as waiting on a reviewer, an answer given in
//! shipdeck reaches GitHub (`POST …/pending_deployments` with the
//! environment ids, the state and the note as comment) and the audit log;
//! a token that may not review gets GitHub's 403 said plainly, audited as
//! failed, and the deploy keeps waiting. Also: the run's progress (job and
//! step) and its URL reach the engine's events, the deploy record and
//! `status`'s `deploy_url`.
//!
//! One test in this file: it sets the token variable in its own process
//! before any other thread runs.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shipdeck::config::Config;
use shipdeck::domain::{ActionKind, Outcome, Version};
use shipdeck::engine::{Confirm, Engine, Event};

const TOKEN_VAR: &str = "SHIPDECK_TEST_REVIEW_TOKEN";
const TOKEN: &str = "ghp_PLANTED-review-secret-5521";
const RUN: &str = "/api/v3/repos/acme/shop/actions/runs/4242";
const ENV_ID: u64 = 161171787;

#[derive(Default)]
struct Gh {
    version: String,
    requested: String,
    /// Answer the review with 403 (the token may not review).
    forbidden: bool,
    /// The reviews posted: their bodies.
    reviews: Vec<Value>,
    run_reads: u32,
    /// Calls whose headers were not GitHub's.
    bad_headers: Vec<String>,
}

type Shared = Arc<Mutex<Gh>>;

async fn serve(
    State(gh): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = gh.lock().unwrap();
    let path = uri.path().to_string();
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    if path != "/version"
        && path != "/metrics"
        && (h("authorization") != format!("Bearer {TOKEN}")
            || h("x-github-api-version") != "2022-11-28"
            || h("accept") != "application/vnd.github+json"
            || !h("user-agent").starts_with("shipdeck/"))
    {
        s.bad_headers.push(format!("{method} {path}"));
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let approved = s.reviews.last().map(|r| r["state"].clone());
    let (status, answer) = match (method.as_str(), path.as_str()) {
        ("GET", "/version") => (200, json!({"version": s.version})),
        ("POST", "/api/v3/repos/acme/shop/actions/workflows/deploy.yml/dispatches") => {
            s.requested = body["inputs"]["version"].as_str().unwrap_or("").into();
            (
                200,
                json!({"workflow_run_id": 4242, "html_url": "https://github.example/acme/shop/actions/runs/4242"}),
            )
        }
        ("POST", "/api/v3/repos/acme/shop/deployments") => (201, json!({"id": 9001})),
        ("POST", "/api/v3/repos/acme/shop/deployments/9001/statuses") => (201, json!({"id": 1})),
        ("GET", RUN) => {
            s.run_reads += 1;
            let (status, conclusion) = match approved.as_ref().and_then(Value::as_str) {
                None => ("waiting", Value::Null),
                Some("approved") if s.run_reads % 4 != 0 => ("in_progress", Value::Null),
                Some("approved") => ("completed", json!("success")),
                Some(_) => ("completed", json!("failure")),
            };
            if conclusion == json!("success") {
                s.version = s.requested.clone();
            }
            (
                200,
                json!({"id": 4242, "run_number": 812, "status": status, "conclusion": conclusion,
                       "html_url": "https://github.example/acme/shop/actions/runs/4242"}),
            )
        }
        ("GET", p) if p == format!("{RUN}/jobs") => (
            200,
            json!({"total_count": 1, "jobs": [{"name": "deploy", "status": "in_progress", "steps": [
                {"name": "checkout", "status": "completed", "number": 1},
                {"name": "migrate", "status": "in_progress", "number": 2}]}]}),
        ),
        ("GET", p) if p == format!("{RUN}/pending_deployments") => (
            200,
            if approved.is_some() {
                json!([])
            } else {
                json!([{"environment": {"id": ENV_ID, "name": "production"},
                        "wait_timer": 0, "current_user_can_approve": true, "reviewers": []}])
            },
        ),
        ("POST", p) if p == format!("{RUN}/pending_deployments") => {
            if s.forbidden {
                (
                    403,
                    json!({"message": format!("Must have admin rights to Repository. ({TOKEN})")}),
                )
            } else {
                s.reviews.push(body);
                (200, json!([{"id": 1, "environment": "production"}]))
            }
        }
        _ => (404, json!({"message": "Not Found"})),
    };
    (StatusCode::from_u16(status).unwrap(), answer.to_string()).into_response()
}

fn fake() -> (Shared, String) {
    let gh: Shared = Arc::new(Mutex::new(Gh {
        version: "v1.0.0".into(),
        ..Gh::default()
    }));
    let app = axum::Router::new().fallback(serve).with_state(gh.clone());
    (gh, common::http::serve(app).to_string())
}

fn engine(addr: &str, dir: &tempfile::TempDir, timeout: &str) -> Engine {
    let cfg = format!(
        "project = \"shop\"\n[store]\npath = \"{}\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{addr}/metrics\"\n\n[[environments]]\nname = \"production\"\nversion = {{ url = \"http://{addr}/version\" }}\n[environments.deploy]\ntimeout = \"{timeout}\"\npoll = \"100ms\"\n[environments.deploy.github_actions]\nrepo = \"acme/shop\"\nworkflow = \"deploy.yml\"\nref = \"main\"\ninputs = {{ version = \"{{version}}\" }}\ntoken_env = \"{TOKEN_VAR}\"\napi_url = \"http://{addr}/api/v3\"\n",
        dir.path().join("s.db").display()
    );
    Engine::open(Config::parse(&cfg, std::path::Path::new("<test>")).unwrap()).unwrap()
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// Promote in the background; wait until the engine reports the run as
/// waiting on a reviewer. Returns the deploy task and the events seen.
async fn deploy_until_waiting(
    e: &Engine,
) -> (
    tokio::task::JoinHandle<Result<shipdeck::domain::DeployRecord, shipdeck::engine::EngineError>>,
    tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let e2 = e.clone();
    let task = tokio::spawn(async move {
        e2.promote(
            "production",
            Some(v("v2.0.0")),
            Confirm::Unseen {
                accept_warnings: true,
            },
            Some(tx),
        )
        .await
    });
    let (tx2, rx2) = tokio::sync::mpsc::unbounded_channel();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the run reported as waiting within 10 s")
            .expect("events");
        let waiting =
            matches!(&ev, Event::DeployProgress { progress, .. } if progress.waiting.is_some());
        if let Event::DeployProgress { progress, .. } = &ev
            && waiting
        {
            let w = progress.waiting.as_ref().unwrap();
            assert_eq!(
                progress.line(),
                format!(
                    "GitHub Actions run #812: waiting, {} — waiting on a reviewer for environment production",
                    if progress.elapsed_s < 60.0 {
                        format!("{}s", progress.elapsed_s as u64)
                    } else {
                        unreachable!("waited a minute")
                    }
                )
            );
            assert!(w.can_answer);
            assert_eq!(
                progress.url.as_deref(),
                Some("https://github.example/acme/shop/actions/runs/4242")
            );
        }
        tx2.send(ev).unwrap();
        if waiting {
            break;
        }
    }
    // Keep forwarding what comes after.
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if tx2.send(ev).is_err() {
                break;
            }
        }
    });
    (task, rx2)
}

#[test]
fn a_github_run_waiting_on_a_reviewer_is_answered_from_shipdeck_and_audited() {
    // SAFETY: the only test of this binary, before any other thread starts.
    unsafe { std::env::set_var(TOKEN_VAR, TOKEN) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 1. Approved: the answer reaches GitHub, the run goes on, the deploy
        //    is recorded with the run's URL, the progress names the step.
        let (gh, addr) = fake();
        let dir = tempfile::tempdir().unwrap();
        let e = engine(&addr, &dir, "20s");
        let (task, mut events) = deploy_until_waiting(&e).await;
        let said = e
            .review(
                "production",
                Some(&v("v2.0.0")),
                true,
                Some("db checked".into()),
            )
            .await
            .expect("review taken");
        assert!(
            said.contains("approved") && said.contains("production") && said.contains("#812"),
            "{said}"
        );
        let rec = task.await.unwrap().expect("deployed once approved");
        assert_eq!(
            rec.url.as_deref(),
            Some("https://github.example/acme/shop/actions/runs/4242")
        );
        let reviews = gh.lock().unwrap().reviews.clone();
        assert_eq!(
            reviews,
            vec![
                json!({"environment_ids": [ENV_ID], "state": "approved", "comment": "db checked"})
            ]
        );
        let mut steps = Vec::new();
        while let Ok(ev) = events.try_recv() {
            if let Event::DeployProgress { progress, .. } = ev {
                steps.push(progress.line());
            }
        }
        assert!(
            steps
                .iter()
                .any(|l| l.starts_with("GitHub Actions run #812: in progress, ")
                    && l.ends_with(" — deploy / migrate")),
            "{steps:#?}"
        );
        let status = e.status().await;
        assert_eq!(
            status.environments[0].deploy_url.as_deref(),
            Some("https://github.example/acme/shop/actions/runs/4242")
        );
        let h = e.history(Some("production"), 10).await.unwrap();
        let review = h
            .iter()
            .find(|a| a.action == ActionKind::Review)
            .expect("the review is audited");
        assert_eq!(review.outcome, Outcome::Succeeded, "{review:?}");
        assert!(review.detail.contains("db checked"), "{review:?}");
        assert_eq!(review.version, Some(v("v2.0.0")));
        // Nothing waits any more: a second answer is refused, sends nothing.
        assert!(e.review("production", None, true, None).await.is_err());
        assert_eq!(gh.lock().unwrap().reviews.len(), 1);
        let bad = gh.lock().unwrap().bad_headers.clone();
        assert!(bad.is_empty(), "{bad:?}");

        // 2. A token that may not review: GitHub's 403 said plainly, the
        //    token nowhere, audited as failed; the deploy still waits and
        //    ends with its timeout, not recorded.
        let (gh, addr) = fake();
        gh.lock().unwrap().forbidden = true;
        let dir = tempfile::tempdir().unwrap();
        let e = engine(&addr, &dir, "4s");
        let (task, _events) = deploy_until_waiting(&e).await;
        let err = e
            .review("production", Some(&v("v2.0.0")), true, None)
            .await
            .expect_err("GitHub refused");
        let msg = err.to_string();
        assert!(
            msg.contains("403") && msg.contains("may not approve"),
            "{msg}"
        );
        assert!(!msg.contains(TOKEN), "{msg}");
        assert!(task.await.unwrap().is_err(), "never approved: not deployed");
        let h = e.history(Some("production"), 10).await.unwrap();
        let review = h.iter().find(|a| a.action == ActionKind::Review).unwrap();
        assert_eq!(review.outcome, Outcome::Failed);
        assert!(!review.detail.contains(TOKEN), "{review:?}");
        assert!(h.iter().all(|a| a.outcome != Outcome::Succeeded), "{h:#?}");
    });
}
