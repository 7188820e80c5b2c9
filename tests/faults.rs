//! Backends that misbehave: garbage answers, errors, timeouts, hostile
//! version strings, deploys that never finish. Each gives a clear error and
//! the right exit code, and nothing is recorded as deployed that was not
//! observed.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::Home;

/// What each fake environment answers on its version endpoint.
#[derive(Clone)]
enum Answer {
    Json(String),
    Status(u16, String),
    Hang,
}

#[derive(Clone, Default)]
struct Fake {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    deploys: Arc<Mutex<Vec<(String, String)>>>,
}

async fn version(State(f): State<Fake>, Path(env): Path<String>) -> Response {
    let a = f.answers.lock().unwrap().get(&env).cloned();
    match a {
        Some(Answer::Json(body)) => (StatusCode::OK, body).into_response(),
        Some(Answer::Status(code, body)) => {
            (StatusCode::from_u16(code).unwrap(), body).into_response()
        }
        Some(Answer::Hang) => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn deploy(State(f): State<Fake>, Path(env): Path<String>, body: String) -> StatusCode {
    f.deploys.lock().unwrap().push((env, body));
    // Accepts, but never actually changes the version.
    StatusCode::ACCEPTED
}

/// Start the fake on a free port.
fn start(fake: Fake) -> SocketAddr {
    common::http::serve(
        Router::new()
            .route("/{env}/version", get(version))
            .route("/{env}/deploy", post(deploy))
            .with_state(fake),
    )
}

/// Version reads time out after 1 s where the endpoint hangs (the tests
/// name that figure), after a generous 30 s elsewhere (an answer that
/// comes is not held to a loaded machine's speed).
fn config(addr: SocketAddr, hanging: &[&str]) -> String {
    let mut s = String::from("project = \"faults\"\n");
    for env in ["dev", "prod"] {
        let read = if hanging.contains(&env) { "1s" } else { "30s" };
        s.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{addr}/{env}/version\", timeout = \"{read}\" }}\ndeploy = {{ webhook = \"http://{addr}/{env}/deploy\", timeout = \"2s\", poll = \"200ms\" }}\n"
        ));
    }
    s
}

fn setup(answers: &[(&str, Answer)]) -> (Home, Fake) {
    let fake = Fake::default();
    for (env, a) in answers {
        fake.answers
            .lock()
            .unwrap()
            .insert(env.to_string(), a.clone());
    }
    let addr = start(fake.clone());
    let home = Home::new();
    let hanging: Vec<&str> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Hang))
        .map(|(env, _)| *env)
        .collect();
    home.config(&config(addr, &hanging));
    (home, fake)
}

fn ok(v: &str) -> Answer {
    Answer::Json(format!("{{\"version\": \"{v}\"}}"))
}

#[test]
fn garbage_version_answers_name_the_backend_and_cause() {
    let (home, _) = setup(&[
        ("dev", Answer::Json("<html>oops</html>".into())),
        ("prod", Answer::Status(500, "internal error".into())),
    ]);
    let out = home.run(&["status"]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("! dev: version source of dev"),
        "{out:#?}"
    );
    assert!(out.stdout.contains("not JSON"), "{out:#?}");
    assert!(
        out.stdout.contains("answered HTTP 500: internal error"),
        "{out:#?}"
    );
    let j = home.run(&["status", "--json"]).json();
    assert_eq!(j["environments"][0]["version"], serde_json::Value::Null);
    assert_eq!(j["environments"][0]["health"], "down");
}

/// The stage before production cannot be read: what production would get
/// is unknown, and `status` says so (why, and where) — not "nothing, every
/// stage runs what the stage before it runs", which no read supports.
#[test]
fn a_pending_release_that_cannot_be_read_is_unknown_not_nothing() {
    let (home, _) = setup(&[
        ("dev", Answer::Status(503, "down for maintenance".into())),
        ("prod", ok("v1")),
    ]);
    let out = home.run(&["status"]);
    assert!(!out.stdout.contains("Pending: nothing"), "{out:#?}");
    assert!(
        out.stdout
            .contains("Pending: unknown — what promoting prod would ship cannot be told: ")
            && out.stdout.contains("503"),
        "{out:#?}"
    );
    let j = home.run(&["status", "--json"]).json();
    assert_eq!(j["pending"], serde_json::Value::Null);
    let why = j["pending_unknown"].as_str().unwrap_or_default();
    assert!(why.starts_with("prod: ") && why.contains("503"), "{j}");
    // Both stages readable and alike: nothing is pending, and that is said.
    let (home, _) = setup(&[("dev", ok("v1")), ("prod", ok("v1"))]);
    let out = home.run(&["status"]);
    assert!(out.stdout.contains("Pending: nothing"), "{out:#?}");
    let j = home.run(&["status", "--json"]).json();
    assert!(j.get("pending_unknown").is_none(), "{j}");
}

#[test]
fn a_hostile_version_string_is_rejected_before_use() {
    let (home, fake) = setup(&[("dev", ok("v1; rm -rf /")), ("prod", ok("v1.0.0"))]);
    let out = home.run(&["promote", "prod", "--yes"]);
    out.expect_code(1);
    assert!(
        out.stderr.contains("version source of dev")
            && out.stderr.contains("has the character ';'"),
        "{out:#?}"
    );
    assert!(
        fake.deploys.lock().unwrap().is_empty(),
        "nothing may be deployed"
    );
    // And a hostile --version never reaches a backend either.
    let out = home.run(&["promote", "prod", "--version", "$(reboot)"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("--version: version \"$(reboot)\""),
        "{out:#?}"
    );
}

#[test]
fn a_version_endpoint_that_hangs_times_out() {
    let (home, _) = setup(&[("dev", Answer::Hang), ("prod", ok("v1"))]);
    let out = home.run(&["promote", "prod", "--yes"]);
    out.expect_code(1);
    assert!(out.stderr.contains("version source of dev"), "{out:#?}");
    assert!(out.stderr.contains("no answer within 1s"), "{out:#?}");
}

#[test]
fn a_webhook_deploy_that_never_shows_up_is_unknown_and_not_recorded() {
    let (home, fake) = setup(&[("dev", ok("v2")), ("prod", ok("v1"))]);
    let out = home.run(&["promote", "prod", "--yes"]);
    out.expect_code(1);
    // The hook accepted it and shipdeck did not cancel it: it may still
    // land, so neither done nor failed.
    assert!(
        out.stderr
            .contains("outcome unknown: prod still reports v1 after 2s")
            && out.stderr.contains("look before deploying again"),
        "{out:#?}"
    );
    assert_eq!(fake.deploys.lock().unwrap().len(), 1);
    let body: serde_json::Value = serde_json::from_str(&fake.deploys.lock().unwrap()[0].1).unwrap();
    assert_eq!(body, serde_json::json!({"env": "prod", "version": "v2"}));
    // The audit log says unknown; the deploy history has nothing.
    let h = home.run(&["history", "--json"]).json();
    let e = &h["entries"][0];
    assert_eq!(e["action"], "promote");
    assert_eq!(e["outcome"], "unknown");
    assert_eq!(
        e["actor"],
        format!("tester@{}", gethostname::gethostname().to_string_lossy())
    );
    let out = home.run(&["rollback", "prod", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("prod has no recorded deploy to roll back"),
        "{out:#?}"
    );
}

#[test]
fn unknown_environment_is_usage() {
    let (home, _) = setup(&[("dev", ok("v2")), ("prod", ok("v1"))]);
    let out = home.run(&["promote", "qa", "--yes"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("unknown environment \"qa\" (known: dev, prod)"),
        "{out:#?}"
    );
}

#[test]
fn a_webhook_secret_comes_from_the_environment_and_is_never_shown() {
    let fake = Fake::default();
    fake.answers.lock().unwrap().insert("dev".into(), ok("v2"));
    fake.answers.lock().unwrap().insert("prod".into(), ok("v1"));
    let addr = start(fake.clone());
    let home = Home::new();
    home.config(&config(addr, &[]).replace(
        &format!("webhook = \"http://{addr}/prod/deploy\""),
        &format!("webhook = \"http://{addr}/prod/deploy\", token_env = \"PROD_DEPLOY_TOKEN\""),
    ));
    let out = home.run(&["promote", "prod", "--yes"]);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("the environment variable PROD_DEPLOY_TOKEN (token_env) is not set"),
        "{out:#?}"
    );
    let out = home
        .cmd()
        .env("PROD_DEPLOY_TOKEN", "s3cr3t-token")
        .args(["promote", "prod", "--yes"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        home.run(&["history", "--json"]).stdout
    );
    assert!(!all.contains("s3cr3t"), "the secret leaked: {all}");
    let log = std::fs::read_to_string(home.path().join("state/shipdeck/shipdeck.log"))
        .unwrap_or_default();
    assert!(!log.contains("s3cr3t"), "the secret leaked into the log");
}
