//! `[[notify]]` through the real binary against a local HTTP receiver:
//! the payload shapes (Slack-compatible and the generic JSON event), one
//! delivery per event and receiver — also when the receiver fails once
//! with a 500 —, the events filter, no secret in any payload, and a
//! receiver that hangs not holding the command up beyond the bound.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Fleet, Home, Output};
use serde_json::Value;

/// Everything the receiver was sent: (route, idempotency key, body).
#[derive(Clone, Default)]
struct Inbox {
    got: Arc<Mutex<Vec<(String, String, Value)>>>,
    /// Keys the flaky route already failed once.
    failed: Arc<Mutex<HashMap<String, ()>>>,
}

impl Inbox {
    fn on(&self, route: &str) -> Vec<(String, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(r, _, _)| r == route)
            .map(|(_, k, b)| (k.clone(), b.clone()))
            .collect()
    }
}

async fn receive(
    State(inbox): State<Inbox>,
    Path((route, _token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inbox
        .got
        .lock()
        .unwrap()
        .push((route.clone(), key.clone(), body));
    match route.as_str() {
        "hang" => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            StatusCode::OK
        }
        "flaky" if inbox.failed.lock().unwrap().insert(key, ()).is_none() => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::OK,
    }
}

async fn receiver() -> (String, Inbox) {
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/{route}/{token}", post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), inbox)
}

const TOKEN: &str = "T0KEN-sd-notify-9f3a71";

fn run(home: &Home, base: &str, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = home
        .cmd()
        .env("SD_SLACK", format!("{base}/slack/{TOKEN}"))
        .env("SD_HOOK", format!("{base}/hook/{TOKEN}"))
        .env("SD_FLAKY", format!("{base}/flaky/{TOKEN}"))
        .env("SD_HANG", format!("{base}/hang/{TOKEN}"))
        .args(args)
        .output()
        .expect("run shipdeck");
    let took = started.elapsed();
    (
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        took,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_each_receiver_once_in_their_shape_without_secrets() {
    let (base, inbox) = receiver().await;
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(
        "[[notify]]\nkind = \"slack\"\nurl_env = \"SD_SLACK\"\nevents = [\"approve\", \"no-go\"]\n\
         [[notify]]\nkind = \"webhook\"\nurl_env = \"SD_HOOK\"\n\
         [[notify]]\nkind = \"webhook\"\nurl_env = \"SD_FLAKY\"\n",
    ));
    let home = Arc::new(home);
    let cli = |args: &'static [&'static str]| {
        let (home, base) = (home.clone(), base.clone());
        tokio::task::spawn_blocking(move || run(&home, &base, args))
    };
    // The note pastes the Slack URL (its path is its token) by mistake.
    let note = format!("pasted {base}/slack/{TOKEN}");
    let (h, b) = (home.clone(), base.clone());
    let (out, _) = tokio::task::spawn_blocking(move || {
        run(&h, &b, &["approve", "production", "--note", &note])
    })
    .await
    .unwrap();
    out.expect_code(0);
    cli(&["promote", "production", "--yes"])
        .await
        .unwrap()
        .0
        .expect_code(0);
    cli(&["rollback", "production", "--yes"])
        .await
        .unwrap()
        .0
        .expect_code(0);

    // Generic JSON events: approve, promote started and succeeded, rollback
    // started and succeeded — each once, its key the payload's id.
    let hook = inbox.on("hook");
    let events: Vec<(String, String)> = hook
        .iter()
        .map(|(_, b)| {
            (
                b["event"].as_str().unwrap_or("?").to_string(),
                b["outcome"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let want = [
        ("approve", "recorded"),
        ("promote", "started"),
        ("promote", "succeeded"),
        ("rollback", "started"),
        ("rollback", "succeeded"),
    ];
    assert_eq!(
        events,
        want.map(|(e, o)| (e.to_string(), o.to_string())),
        "{hook:#?}"
    );
    for (key, b) in &hook {
        assert_eq!(key, b["id"].as_str().unwrap(), "{b}");
        for field in ["env", "version", "from_version", "actor", "at", "detail"] {
            assert!(b.get(field).is_some(), "{field} missing in {b}");
        }
        assert_eq!(b["env"], "production");
        assert!(b["actor"].as_str().unwrap().starts_with("tester@"), "{b}");
        chrono::DateTime::parse_from_rfc3339(b["at"].as_str().unwrap()).unwrap();
    }
    let ids: std::collections::HashSet<&str> = hook
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), hook.len(), "one delivery per event");
    assert_eq!(hook[1].1["version"], "v1.8.0");
    assert_eq!(hook[1].1["from_version"], "v1.7.3");

    // The receiver that fails each event once with a 500 gets each event
    // twice under the same key, and the same events as the other.
    let flaky = inbox.on("flaky");
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for (k, _) in &flaky {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    assert_eq!(per_key.len(), want.len(), "{flaky:#?}");
    assert!(per_key.values().all(|n| *n == 2), "{per_key:?}");

    // Slack: only what its filter asks for, as {"text", "blocks"}.
    let slack = inbox.on("slack");
    assert_eq!(slack.len(), 1, "{slack:#?}");
    let text = slack[0].1["text"].as_str().unwrap();
    assert!(
        text.starts_with("shipdeck: approve production v1.8.0 — recorded by tester@"),
        "{text}"
    );
    assert!(slack[0].1["blocks"].is_array());

    // No payload carries the receivers' secret URL.
    let all = inbox.got.lock().unwrap().clone();
    for (_, _, b) in &all {
        let s = b.to_string();
        assert!(!s.contains(TOKEN), "a secret in a payload: {s}");
    }
    assert!(
        all.iter()
            .any(|(_, _, b)| b.to_string().contains("[redacted]"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_holds_the_command_up_at_most_the_bound() {
    let (base, inbox) = receiver().await;
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(
        &fleet.config("[[notify]]\nkind = \"webhook\"\nurl_env = \"SD_HANG\"\ntimeout = \"30s\"\n"),
    );
    let home = Arc::new(home);
    let (h, b) = (home.clone(), base.clone());
    let (out, took) = tokio::task::spawn_blocking(move || run(&h, &b, &["approve", "production"]))
        .await
        .unwrap();
    out.expect_code(0);
    eprintln!("approve with a hanging receiver took {took:?}");
    // The bound at exit is 5 s (notify::EXIT_WAIT), the receiver's own
    // timeout 30 s and its answer 10 min away: well under 30 s shows the
    // bound ended the wait (the rest is the command on a busy machine).
    assert!(took < Duration::from_secs(25), "took {took:?}");
    assert_eq!(inbox.on("hang").len(), 1, "it was sent, once");
    // The Go was recorded whatever the receiver did.
    let (h, b) = (home.clone(), base.clone());
    let (st, _) = tokio::task::spawn_blocking(move || run(&h, &b, &["status", "--json"]))
        .await
        .unwrap();
    let gates = st.json()["pending"]["gates"].to_string();
    assert!(gates.contains("Go by tester@"), "{gates}");
}
