//! What every deploy-backend test shares: a vendor fake on a loopback port
//! that records each call and answers through the scenario's handler, the
//! shipdeck runs with the planted credentials, the checks (nothing
//! recorded as deployed that was not observed, no secret anywhere) and the
//! one behavioural suite every backend runs ([`deploy_suite!`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Home, Output};

// ---------------------------------------------------------------- the fake

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Req {
    pub fn header(&self, k: &str) -> &str {
        self.headers.get(k).map(String::as_str).unwrap_or("")
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Option<Duration>,
}

pub fn answer(status: u16, body: Value) -> Resp {
    Resp {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
        delay: None,
    }
}

pub type Handler<S> = fn(&Req, &mut S, &str) -> Resp;

pub struct Shared<S> {
    pub reqs: Vec<Req>,
    pub state: S,
    pub handler: Handler<S>,
    pub addr: String,
}

/// A vendor fake on a free loopback port, serving `/version` from the
/// scenario's state and everything else through `handler`.
pub struct Fake<S> {
    pub shared: Arc<Mutex<Shared<S>>>,
    pub addr: String,
}

pub trait HasVersion {
    fn version(&self) -> String;
}

impl<S: HasVersion + Send + 'static> Fake<S> {
    pub fn start(state: S, handler: Handler<S>) -> Fake<S> {
        let shared = Arc::new(Mutex::new(Shared {
            reqs: Vec::new(),
            state,
            handler,
            addr: String::new(),
        }));
        let app = axum::Router::new()
            .fallback(serve::<S>)
            .with_state(shared.clone());
        // Nobody knows the address before `serve` returns it, so no request
        // can reach the handler before `addr` is filled in.
        let addr = super::http::serve(app).to_string();
        shared.lock().unwrap().addr = addr.clone();
        Fake { shared, addr }
    }

    pub fn reqs(&self) -> Vec<Req> {
        self.shared.lock().unwrap().reqs.clone()
    }

    /// The calls to the vendor (not the version reads).
    pub fn calls(&self) -> Vec<Req> {
        self.reqs()
            .into_iter()
            .filter(|r| r.path != "/version" && r.path != "/metrics")
            .collect()
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        f(&mut self.shared.lock().unwrap().state)
    }
}

pub async fn serve<S: HasVersion + Send + 'static>(
    State(shared): State<Arc<Mutex<Shared<S>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Req {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(url_decode_pairs).unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let resp = {
        let mut g = shared.lock().unwrap();
        if req.path == "/version" {
            answer(200, json!({"version": g.state.version()}))
        } else if req.path == "/metrics" {
            answer(404, Value::Null)
        } else {
            g.reqs.push(req.clone());
            let addr = g.addr.clone();
            let h = g.handler;
            h(&req, &mut g.state, &addr)
        }
    };
    if let Some(d) = resp.delay {
        tokio::time::sleep(d).await;
    }
    let mut r = (StatusCode::from_u16(resp.status).unwrap(), resp.body).into_response();
    // A name's first value replaces any default; a repeated name (several
    // `set-cookie`) adds its value.
    let mut seen = std::collections::HashSet::new();
    for (k, v) in resp.headers {
        if seen.insert(k) {
            r.headers_mut().insert(k, v.parse().unwrap());
        } else {
            r.headers_mut().append(k, v.parse().unwrap());
        }
    }
    r
}

pub fn url_decode_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

pub fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap();
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------- running shipdeck

/// The environment of a shipdeck run: `(name, Some(value))` is set,
/// `(name, None)` removed.
pub type Vars = &'static [(&'static str, Option<&'static str>)];

fn with_vars(c: &mut std::process::Command, vars: Vars) {
    for (k, v) in vars {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
}

/// The real binary in `home`, with `vars`.
pub fn command(home: &Home, vars: Vars) -> std::process::Command {
    let mut c = home.process();
    with_vars(&mut c, vars);
    c
}

pub fn output(out: std::process::Output) -> Output {
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn run(home: &Home, vars: Vars, args: &[&str]) -> Output {
    let mut c = assert_cmd::Command::from_std(command(home, vars));
    c.timeout(Duration::from_secs(120));
    output(c.args(args).output().expect("run shipdeck"))
}

/// `promote <env> --version v2.0.0 --yes` (every scenario starts at v1.0.0).
pub fn promote(home: &Home, vars: Vars, env: &str) -> Output {
    run(
        home,
        vars,
        &["promote", env, "--version", "v2.0.0", "--yes"],
    )
}

/// The newest audit entry.
pub fn last_audit(home: &Home, vars: Vars) -> Value {
    let h = run(home, vars, &["history", "--json"]);
    h.expect_code(0);
    h.json()["entries"][0].clone()
}

/// The version `status --json` reports for the (only) environment.
pub fn reported(home: &Home, vars: Vars) -> Value {
    run(home, vars, &["status", "--json"]).json()["environments"][0]["version"].clone()
}

/// Start `promote <env>`, wait (20 s at most) until `following()` says the
/// backend is following the deploy, send SIGINT, and return what it wrote.
pub fn interrupt(home: &Home, vars: Vars, env: &str, following: &dyn Fn() -> bool) -> Output {
    let mut c = command(home, vars);
    c.args(["promote", env, "--version", "v2.0.0", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = super::Running::new(c.spawn().expect("spawn shipdeck"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !following() {
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy was never followed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill is needed by this test (Debian/Ubuntu: apt-get install procps)");
    assert!(kill.success());
    output(child.wait_with_output().expect("wait for shipdeck"))
}

// ---------------------------------------------------------------- the shared checks

/// No `secret` appears in any output (nor in `status --json` and
/// `history --json`) or in any file under the home: log, store, config.
pub fn assert_absent(home: &Home, vars: Vars, outputs: &[&Output], secrets: &[String]) {
    let json = run(home, vars, &["status", "--json"]);
    let hist = run(home, vars, &["history", "--json"]);
    for o in outputs.iter().copied().chain([&json, &hist]) {
        for s in secrets {
            assert!(
                !o.stdout.contains(s.as_str()) && !o.stderr.contains(s.as_str()),
                "secret in output: {o:#?}"
            );
        }
    }
    let mut stack = vec![home.path().to_path_buf()];
    let mut files = 0;
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).unwrap();
                for s in secrets {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                        "secret in {}",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(files >= 2, "expected the store and the log under the home");
}

/// A deploy the environment did not confirm: exit 1, the audit says
/// `outcome` (failed or unknown), no entry says succeeded, the status
/// still reports v1.0.0.
#[track_caller]
pub fn assert_not_recorded(home: &Home, vars: Vars, out: &Output, outcome: &str) {
    assert_not_recorded_exiting(home, vars, out, outcome, 1);
}

/// [`assert_not_recorded`] with another exit code (130: interrupted).
#[track_caller]
pub fn assert_not_recorded_exiting(
    home: &Home,
    vars: Vars,
    out: &Output,
    outcome: &str,
    code: i32,
) {
    out.expect_code(code);
    let e = last_audit(home, vars);
    assert_eq!(e["action"], "promote", "{e}");
    assert_eq!(e["outcome"], outcome, "{e}\n{out:#?}");
    assert_eq!(reported(home, vars), "v1.0.0");
    let h = run(home, vars, &["history", "--json"]).json();
    assert!(
        !h["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "succeeded"),
        "{h}"
    );
}

// ---------------------------------------------------------------- the suite every backend runs

/// What the deploy's target does in a scenario; the environment starts at
/// v1.0.0 and the deploy asks for v2.0.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The vendor's work succeeds and the environment then reports v2.0.0.
    Succeeds,
    /// The vendor's work fails.
    Fails,
    /// The vendor says success but the environment keeps reporting v1.0.0
    /// (the deploy's timeout is short: a few seconds).
    SucceedsWithoutTheVersion,
    /// The vendor's work never ends (the deploy's timeout is long).
    Stalls,
    /// The vendor's work never ends and the deploy's timeout is short: it
    /// is still going when the timeout passes (for a webhook or Vercel,
    /// whose work is the one call, its answer is still awaited).
    OutlivesTheTimeout,
}

/// Says whether the backend is following the deploy (the vendor has seen
/// it and is being asked how it goes); owns the fake.
pub type Following = Box<dyn Fn() -> bool>;

/// One row of the suite's table: a backend and how to stage it.
pub struct Backend {
    /// The environment's name in the config.
    pub env: &'static str,
    /// The planted credentials the binary runs with.
    pub vars: Vars,
    /// Every form of the planted secret that must appear nowhere.
    pub secrets: fn() -> Vec<String>,
    /// Start what the deploy talks to for the scenario and write the
    /// config into the home.
    pub start: fn(&Home, Scenario) -> Following,
}

/// The deploy is observed: exit 0, the environment reports the version,
/// the audit says succeeded; no secret anywhere.
pub fn deploy_is_observed(b: &Backend) {
    let home = Home::new();
    let _fake = (b.start)(&home, Scenario::Succeeds);
    let out = promote(&home, b.vars, b.env);
    out.expect_code(0);
    assert_eq!(reported(&home, b.vars), "v2.0.0", "{out:#?}");
    let e = last_audit(&home, b.vars);
    assert_eq!(
        (e["action"].as_str(), e["outcome"].as_str()),
        (Some("promote"), Some("succeeded")),
        "{e}"
    );
    assert_absent(&home, b.vars, &[&out], &(b.secrets)());
}

/// A failure is exit 1 and recorded failed; no secret anywhere.
pub fn failure_is_exit_1(b: &Backend) {
    let home = Home::new();
    let _fake = (b.start)(&home, Scenario::Fails);
    let out = promote(&home, b.vars, b.env);
    assert_not_recorded(&home, b.vars, &out, "failed");
    assert_absent(&home, b.vars, &[&out], &(b.secrets)());
}

/// The vendor's "success" without the version is not a deploy. What it
/// is depends on what the vendor's "success" says, by the rule of
/// [`work_outliving_the_timeout_is_unknown`]: a backend that saw its work
/// end (a command exited, a run, build or execution succeeded) and still
/// no version: `failed`. A backend that only accepted the work (a webhook's
/// 2xx, Vercel's promote — `accepted_only`): that work may still land, so
/// `unknown`, with the advice to look before deploying again.
pub fn nothing_recorded_that_was_not_observed(b: &Backend, accepted_only: bool) {
    let home = Home::new();
    let _fake = (b.start)(&home, Scenario::SucceedsWithoutTheVersion);
    let out = promote(&home, b.vars, b.env);
    assert!(out.stderr.contains("still reports v1.0.0"), "{out:#?}");
    if accepted_only {
        assert_not_recorded(&home, b.vars, &out, "unknown");
        assert!(
            out.stderr
                .contains("may still land: look before deploying again"),
            "{out:#?}"
        );
        let e = last_audit(&home, b.vars);
        assert!(
            e["detail"]
                .as_str()
                .unwrap_or("")
                .contains("look before deploying again"),
            "{e}"
        );
    } else {
        assert_not_recorded(&home, b.vars, &out, "failed");
    }
    assert_absent(&home, b.vars, &[&out], &(b.secrets)());
}

/// The one rule for work still going when the deploy's timeout passes
/// (a run, build or execution followed; a webhook's or Vercel's answer
/// still awaited): shipdeck did not cancel it, it may still land, so the
/// outcome is `unknown` and the message says to look before deploying
/// again — never `failed`. A command is the exception: shipdeck kills it
/// (with its process group) at its timeout, so it did not land: `failed`.
pub fn work_outliving_the_timeout_is_unknown(b: &Backend, killed_by_shipdeck: bool) {
    let home = Home::new();
    let _fake = (b.start)(&home, Scenario::OutlivesTheTimeout);
    let out = promote(&home, b.vars, b.env);
    if killed_by_shipdeck {
        assert_not_recorded(&home, b.vars, &out, "failed");
        return;
    }
    assert_not_recorded(&home, b.vars, &out, "unknown");
    assert!(
        out.stderr.contains("look before deploying again"),
        "{out:#?}"
    );
    let e = last_audit(&home, b.vars);
    assert!(
        e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("look before deploying again"),
        "{e}"
    );
    assert_absent(&home, b.vars, &[&out], &(b.secrets)());
}

/// Ctrl-C while the deploy is followed: exit 130 (128 + SIGINT),
/// "unknown", not deployed.
pub fn ctrl_c_leaves_unknown(b: &Backend) {
    let home = Home::new();
    let following = (b.start)(&home, Scenario::Stalls);
    let out = interrupt(&home, b.vars, b.env, &*following);
    assert_not_recorded_exiting(&home, b.vars, &out, "unknown", 130);
    assert_absent(&home, b.vars, &[&out], &(b.secrets)());
}

/// The planted secret reaches the vendor but nothing shipdeck writes, even
/// when the vendor fails: every form of it is grepped in the outputs of a
/// success and a failure in one home, and in every file there.
pub fn no_secret_anywhere(b: &Backend) {
    let home = Home::new();
    let _ok = (b.start)(&home, Scenario::Succeeds);
    let ok = promote(&home, b.vars, b.env);
    ok.expect_code(0);
    let _failing = (b.start)(&home, Scenario::Fails);
    // Back to v1.0.0 through the failing scenario's fresh state.
    let failed = promote(&home, b.vars, b.env);
    failed.expect_code(1);
    let secrets = (b.secrets)();
    assert!(!secrets.is_empty());
    assert_absent(&home, b.vars, &[&ok, &failed], &secrets);
}

/// The shared behavioural suite, one module of tests per backend:
/// `deploy_suite! { webhook => WEBHOOK, ... }` with each a [`Backend`].
#[allow(unused_macros)]
macro_rules! deploy_suite {
    ($($name:ident => $backend:expr),+ $(,)?) => {$(
        mod $name {
            use super::*;
            #[test]
            fn deploy_is_observed() {
                $crate::common::deploy::deploy_is_observed(&$backend)
            }
            #[test]
            fn failure_is_exit_1() {
                $crate::common::deploy::failure_is_exit_1(&$backend)
            }
            #[test]
            fn nothing_recorded_that_was_not_observed() {
                $crate::common::deploy::nothing_recorded_that_was_not_observed(
                    &$backend,
                    matches!(stringify!($name), "webhook" | "vercel"),
                )
            }
            #[test]
            fn work_outliving_the_timeout_is_unknown() {
                $crate::common::deploy::work_outliving_the_timeout_is_unknown(
                    &$backend,
                    stringify!($name) == "command",
                )
            }
            #[test]
            fn ctrl_c_leaves_unknown() {
                $crate::common::deploy::ctrl_c_leaves_unknown(&$backend)
            }
            #[test]
            fn no_secret_anywhere() {
                $crate::common::deploy::no_secret_anywhere(&$backend)
            }
        }
    )+};
}
#[allow(unused_imports)]
pub(crate) use deploy_suite;
