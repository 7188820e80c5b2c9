//! The edge against hostile fakes, driving the real binary: backends that
//! echo the token (in a 500 body, in a JSON error), send 300 MB, hang,
//! redirect to another host, or write escape sequences; configs with absurd
//! durations and limits; an actor name carrying an OSC title change.
//!
//! Every scenario checks the same three things besides its own: no secret
//! on stdout, stderr, `--json`, the log or the database file; no raw escape
//! sequence on stdout or stderr; no panic (exit 101 or "panicked").

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::http::serve;
use common::{Home, Output};

/// The planted bearer token (from `token_env`).
const TOKEN: &str = "sd-planted-7Qx9Zk2mW4tok";
/// The planted password of a URL's Basic credentials.
const PASS: &str = "pw-planted-R2d5Lq8";
/// `base64("bot:" + PASS)`: what an echoed `Authorization: Basic` carries.
const BASIC_B64: &str = "Ym90OnB3LXBsYW50ZWQtUjJkNUxxOA==";
/// An OSC title change: ESC ] 0 ; title BEL.
const OSC: &str = "\u{1b}]0;pwned-title\u{7}";

/// The texts that must never appear anywhere.
const SECRETS: [&str; 3] = [TOKEN, PASS, BASIC_B64];

fn auth(h: &HeaderMap) -> String {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_string()
}

/// Echo what a hostile backend was sent: the Authorization header raw
/// and decoded (the bearer token; Basic's user:password), plus an escape
/// sequence.
fn echo_text(h: &HeaderMap) -> String {
    let a = auth(h);
    let decoded = match a.split_once(' ') {
        Some(("Bearer", t)) => t.to_string(),
        Some(("Basic", b)) if b == BASIC_B64 => format!("bot:{PASS}"),
        _ => String::new(),
    };
    format!("denied: Authorization: {a} (that is {decoded}) {OSC}")
}

/// The hostile fake: a router of misbehaving endpoints on a free port, and
/// a second server (another origin) that records what reaches it.
struct Fakes {
    addr: SocketAddr,
    thief: SocketAddr,
    stolen: Arc<Mutex<Vec<String>>>,
}

fn start_fakes() -> Fakes {
    let stolen = Arc::new(Mutex::new(Vec::new()));
    let s2 = stolen.clone();
    let thief = serve(Router::new().fallback(move |h: HeaderMap| {
        let s2 = s2.clone();
        async move {
            s2.lock().unwrap().push(auth(&h));
            (StatusCode::OK, "{\"version\": \"v6.6.6\"}")
        }
    }));
    let to_thief = format!("http://{thief}/steal");
    let app = Router::new()
        .route(
            "/ok/version",
            get(|| async { (StatusCode::OK, "{\"version\": \"v1.0.0\"}") }),
        )
        .route(
            "/old/version",
            get(|| async { (StatusCode::OK, "{\"version\": \"v0.9.0\"}") }),
        )
        .route(
            "/echo/version",
            get(|h: HeaderMap| async move {
                (StatusCode::INTERNAL_SERVER_ERROR, echo_text(&h)).into_response()
            }),
        )
        .route(
            "/echo/deploy",
            axum::routing::post(|h: HeaderMap| async move {
                let body = serde_json::json!({"error": echo_text(&h), "code": "bad_token"});
                (StatusCode::BAD_REQUEST, body.to_string()).into_response()
            }),
        )
        .route(
            "/echo/metrics",
            get(|h: HeaderMap| async move {
                (StatusCode::INTERNAL_SERVER_ERROR, echo_text(&h)).into_response()
            }),
        )
        .route(
            "/prom/api/v1/query",
            get(|h: HeaderMap| async move {
                let body = serde_json::json!({
                    "status": "error",
                    "errorType": "bad_data",
                    "error": echo_text(&h),
                });
                (StatusCode::BAD_REQUEST, body.to_string()).into_response()
            }),
        )
        .route(
            "/hang/metrics",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/hang/deploy",
            axum::routing::post(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/redirect/version",
            get(move || {
                let to = to_thief.clone();
                async move {
                    Response::builder()
                        .status(StatusCode::FOUND)
                        .header(header::LOCATION, to)
                        .body(axum::body::Body::empty())
                        .unwrap()
                }
            }),
        )
        .route(
            "/same-origin/version",
            get(|| async {
                Response::builder()
                    .status(StatusCode::TEMPORARY_REDIRECT)
                    .header(header::LOCATION, "/ok/version")
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        );
    Fakes {
        addr: serve(app),
        thief,
        stolen,
    }
}

/// A raw HTTP server that answers every request with a `total`-byte body,
/// streamed in 64 KiB chunks (never allocated whole), announced with a
/// Content-Length or not. Counts what it managed to send.
struct Huge {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
}

fn huge(total: u64, announce: bool) -> Huge {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let len = if announce {
                    format!("Content-Length: {total}\r\n")
                } else {
                    String::new()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{len}Connection: close\r\n\r\n"
                );
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                // Exposition-looking lines, so a reader that parsed as it
                // went would have to keep going.
                let line = b"http_requests_total{env=\"dev\",code=\"200\"} 1\n";
                let chunk: Vec<u8> = line.iter().copied().cycle().take(64 * 1024).collect();
                let mut left = total;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n as u64;
                }
            });
        }
    });
    Huge { addr, sent }
}

/// A config: `dev` and `prod`, each with its own version and deploy line,
/// the metrics section given whole.
fn config(metrics: &str, dev: (&str, &str), prod: (&str, &str)) -> String {
    format!(
        "project = \"edge\"\n{metrics}\n\
[[environments]]\nname = \"dev\"\nversion = {}\ndeploy = {}\n\n\
[[environments]]\nname = \"prod\"\nversion = {}\ndeploy = {}\n",
        dev.0, dev.1, prod.0, prod.1
    )
}

fn scrape(url: &str) -> String {
    format!(
        "[metrics]\nsource = \"scrape\"\nurl = \"{url}\"\nstep = \"1s\"\ntimeout = \"3s\"\ntoken_env = \"SD_TEST_TOKEN\"\n"
    )
}

/// What a run left behind, for the leak and panic checks.
struct Tally {
    tried: usize,
}

impl Tally {
    /// Run `args` with the token in the environment.
    fn run(&mut self, home: &Home, args: &[&str]) -> Output {
        self.run_env(home, args, &[])
    }

    fn run_env(&mut self, home: &Home, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.tried += 1;
        let mut c = home.cmd();
        c.env("SD_TEST_TOKEN", TOKEN).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("run shipdeck");
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        no_panic(&out, args);
        for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for s in SECRETS {
                assert!(
                    !text.contains(s),
                    "{args:?}: a secret leaked on {what}: {out:#?}"
                );
            }
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}'),
                "{args:?}: a raw escape reached {what}: {out:#?}"
            );
        }
        out
    }
}

#[track_caller]
fn no_panic(out: &Output, what: &[&str]) {
    assert!(
        out.code != 101 && !out.stderr.contains("panicked"),
        "{what:?} panicked: {out:#?}"
    );
}

/// Grep the log and every store file (database, -wal, -shm) byte by byte.
fn no_secret_at_rest(home: &Home) {
    let mut files = vec![home.path().join("state/shipdeck/shipdeck.log")];
    let data = home.path().join("data/shipdeck");
    if let Ok(dir) = std::fs::read_dir(&data) {
        files.extend(dir.flatten().map(|e| e.path()));
    }
    let mut looked = 0;
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        looked += 1;
        for s in SECRETS {
            assert!(
                !contains(&bytes, s.as_bytes()),
                "a secret leaked into {}",
                f.display()
            );
        }
        assert!(
            !contains(&bytes, b"\x1b]0;"),
            "a raw OSC sequence reached {}",
            f.display()
        );
    }
    assert!(looked >= 2, "expected a log and a database to grep");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn echoed_tokens_and_credentials_leak_nowhere() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    // `basic` (first stage) reads its version with Basic credentials and
    // gets them echoed; `prod`'s webhook echoes the bearer token in a JSON
    // error; the metrics source echoes it in a 500 body.
    home.config(&format!(
        "project = \"edge\"\n{}\n\
[[environments]]\nname = \"basic\"\nversion = {{ url = \"http://bot:{PASS}@{a}/echo/version\", timeout = \"2s\" }}\ndeploy = {{ command = [\"true\"] }}\n\n\
[[environments]]\nname = \"dev\"\nversion = {{ url = \"http://{a}/ok/version\", token_env = \"SD_TEST_TOKEN\", timeout = \"2s\" }}\ndeploy = {{ command = [\"true\"] }}\n\n\
[[environments]]\nname = \"prod\"\nversion = {{ url = \"http://{a}/old/version\" }}\n\
deploy = {{ webhook = \"http://{a}/echo/deploy\", token_env = \"SD_TEST_TOKEN\", timeout = \"2s\", poll = \"200ms\" }}\n",
        scrape(&format!("http://{a}/echo/metrics"))
    ));
    let mut t = Tally { tried: 0 };
    let status = t.run(&home, &["status", "--json"]);
    let j = status.json();
    let basic_err = j["environments"][0]["version_error"].as_str().unwrap_or("");
    assert!(
        basic_err.contains("HTTP 500")
            && basic_err.contains("Basic [redacted] (that is [redacted])"),
        "the echo is shown, redacted: {status:#?}"
    );
    let metrics_err = j["environments"][1]["metrics_error"].as_str().unwrap_or("");
    assert!(metrics_err.contains("Bearer [redacted]"), "{status:#?}");
    t.run(&home, &["status"]);
    let promote = t.run(&home, &["promote", "prod", "--yes", "--json"]);
    assert_eq!(promote.code, 1, "{promote:#?}");
    assert!(
        promote.stdout.contains("HTTP 400") && promote.stdout.contains("[redacted]"),
        "{promote:#?}"
    );
    t.run(&home, &["promote", "prod", "--yes"]);
    let h = t.run(&home, &["history", "--json"]);
    assert!(
        h.stdout.contains("Bearer [redacted]"),
        "the audit log keeps the redacted error: {h:#?}"
    );
    t.run(&home, &["history"]);
    no_secret_at_rest(&home);
    assert_eq!(t.tried, 6);
}

#[test]
fn a_prometheus_error_echoing_the_token_is_redacted() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    home.config(&config(
        &format!(
            "[metrics]\nsource = \"prometheus\"\nurl = \"http://{a}/prom\"\ntoken_env = \"SD_TEST_TOKEN\"\n"
        ),
        (&format!("{{ url = \"http://{a}/ok/version\" }}"), "{ command = [\"true\"] }"),
        (&format!("{{ url = \"http://{a}/old/version\" }}"), "{ command = [\"true\"] }"),
    ));
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["status", "--json"]);
    let err = out.json()["environments"][0]["metrics_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        err.contains("refused the query") && err.contains("[redacted]"),
        "{out:#?}"
    );
    no_secret_at_rest(&home);
}

#[test]
fn a_redirect_to_another_host_does_not_carry_the_token() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    home.config(&config(
        &scrape(&format!("http://{a}/ok/version")),
        (
            &format!("{{ url = \"http://{a}/redirect/version\", token_env = \"SD_TEST_TOKEN\", timeout = \"2s\" }}"),
            "{ command = [\"true\"] }",
        ),
        (
            &format!("{{ url = \"http://{a}/same-origin/version\", token_env = \"SD_TEST_TOKEN\", timeout = \"2s\" }}"),
            "{ command = [\"true\"] }",
        ),
    ));
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["status", "--json"]);
    let j = out.json();
    assert!(
        f.stolen.lock().unwrap().is_empty(),
        "the other host was asked: {:?}",
        f.stolen.lock().unwrap()
    );
    assert!(
        j["environments"][0]["version_error"]
            .as_str()
            .unwrap_or("")
            .contains("HTTP 302"),
        "a cross-host redirect is not followed: {out:#?}"
    );
    // A redirect within the same origin is followed.
    assert_eq!(j["environments"][1]["version"], "v1.0.0", "{out:#?}");
    let _ = f.thief;
}

#[test]
fn a_300_mb_version_answer_is_refused_at_the_cap_quickly() {
    for announce in [false, true] {
        let big = huge(300 * 1024 * 1024, announce);
        let home = Home::new();
        let b = big.addr;
        home.config(&config(
            "",
            (
                &format!("{{ url = \"http://{b}/version\", timeout = \"30s\" }}"),
                "{ command = [\"true\"] }",
            ),
            (
                "{ command = [\"echo\", \"v1.0.0\"] }",
                "{ command = [\"true\"] }",
            ),
        ));
        let started = Instant::now();
        let mut t = Tally { tried: 0 };
        let out = t.run(&home, &["status", "--json"]);
        let took = started.elapsed();
        let err = out.json()["environments"][0]["version_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            err.contains("version source of dev") && err.contains("larger than the 1 MiB cap"),
            "{out:#?}"
        );
        // (Bounded, not timed: the byte count below is the cap's proof.)
        assert!(took < Duration::from_secs(60), "took {took:?}");
        // Bounded: the reader stopped soon after the cap (socket buffers aside).
        std::thread::sleep(Duration::from_millis(200));
        let sent = big.sent.load(Ordering::Relaxed);
        assert!(
            sent < 32 * 1024 * 1024,
            "{sent} bytes were read (announce: {announce})"
        );
    }
}

#[test]
fn a_300_mb_metrics_answer_is_refused_at_the_cap() {
    let big = huge(300 * 1024 * 1024, false);
    let home = Home::new();
    let b = big.addr;
    home.config(&config(
        &scrape(&format!("http://{b}/metrics")),
        (
            "{ command = [\"echo\", \"v1.0.0\"] }",
            "{ command = [\"true\"] }",
        ),
        (
            "{ command = [\"echo\", \"v0.9.0\"] }",
            "{ command = [\"true\"] }",
        ),
    ));
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["status", "--json"]);
    let err = out.json()["environments"][0]["metrics_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        err.contains(&format!("http://{b}/metrics")) && err.contains("larger than the 16 MiB cap"),
        "{out:#?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let sent = big.sent.load(Ordering::Relaxed);
    assert!(sent < 64 * 1024 * 1024, "{sent} bytes were read");
}

#[test]
fn the_webhook_honours_a_short_configured_timeout() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    home.config(&config(
        "",
        (
            &format!("{{ url = \"http://{a}/ok/version\" }}"),
            "{ command = [\"true\"] }",
        ),
        (
            &format!("{{ url = \"http://{a}/old/version\" }}"),
            &format!(
                "{{ webhook = \"http://{a}/hang/deploy\", timeout = \"2s\", poll = \"200ms\" }}"
            ),
        ),
    ));
    let started = Instant::now();
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["promote", "prod", "--yes"]);
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("deploy webhook of prod") && out.stderr.contains("no answer within 2s"),
        "{out:#?}"
    );
    // Well under the old fixed 60 s (the configured 2 s plus a loaded
    // machine's slowness).
    assert!(
        took < Duration::from_secs(40),
        "took {took:?}: the fixed 60 s again?"
    );
}

#[test]
fn hanging_metrics_and_a_hanging_hook_time_out_as_configured() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    home.config(&config(
        &scrape(&format!("http://{a}/hang/metrics"))
            .replace("timeout = \"3s\"", "timeout = \"1s\""),
        (
            "{ command = [\"sleep\", \"30\"], timeout = \"1s\" }",
            "{ command = [\"true\"] }",
        ),
        (
            "{ command = [\"echo\", \"v0.9.0\"] }",
            "{ command = [\"true\"] }",
        ),
    ));
    let started = Instant::now();
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["status", "--json"]);
    let took = started.elapsed();
    let j = out.json();
    let dev = &j["environments"][0];
    assert!(
        dev["version_error"]
            .as_str()
            .unwrap_or("")
            .contains("no answer within 1s"),
        "{out:#?}"
    );
    assert!(
        dev["metrics_error"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer within 1000 ms"),
        "{out:#?}"
    );
    assert_eq!(j["environments"][1]["version"], "v0.9.0");
    // Neither the 30 s command nor the 60 s hang was waited out (the
    // configured 1 s each, plus a loaded machine's slowness).
    assert!(took < Duration::from_secs(25), "took {took:?}");
}

#[test]
fn a_hook_writing_a_megabyte_to_stderr_succeeds() {
    let home = Home::new();
    let chatty = "{ command = [\"sh\", \"-c\", \"head -c 1048576 /dev/zero | tr '\\\\\\\\0' x >&2; echo v1.0.0\"], timeout = \"20s\" }";
    home.config(&config(
        "",
        (chatty, "{ command = [\"true\"] }"),
        (
            "{ command = [\"echo\", \"v0.9.0\"] }",
            "{ command = [\"true\"] }",
        ),
    ));
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["status", "--json"]);
    let j = out.json();
    assert_eq!(j["environments"][0]["version"], "v1.0.0", "{out:#?}");
}

#[test]
fn an_osc_title_change_in_the_actor_reaches_nothing_raw() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    home.config(&config(
        "",
        (
            &format!("{{ url = \"http://{a}/ok/version\" }}"),
            "{ command = [\"true\"] }",
        ),
        (
            &format!("{{ url = \"http://{a}/old/version\" }}"),
            "{ command = [\"true\"] }",
        ),
    ));
    let user = format!("mallory{OSC}\u{202e}");
    let env = [("USER", user.as_str()), ("LOGNAME", user.as_str())];
    let mut t = Tally { tried: 0 };
    let ok = t.run_env(&home, &["approve", "prod", "--note", "looks fine"], &env);
    assert_eq!(ok.code, 0, "{ok:#?}");
    let st = t.run_env(&home, &["status", "--json"], &env);
    assert!(
        st.json()["actor"]
            .as_str()
            .unwrap_or("")
            .starts_with("mallory@"),
        "{st:#?}"
    );
    t.run_env(&home, &["status"], &env);
    let h = t.run_env(&home, &["history", "--json"], &env);
    assert!(h.stdout.contains("mallory@"), "{h:#?}");
    assert!(!h.stdout.contains("pwned-title"), "{h:#?}");
    t.run_env(&home, &["history"], &env);
    no_secret_at_rest(&home);
}

#[test]
fn escape_sequences_in_a_backend_error_are_removed() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    home.config(&config(
        "",
        (
            &format!("{{ url = \"http://{a}/echo/version\" }}"),
            "{ command = [\"true\"] }",
        ),
        (
            &format!("{{ url = \"http://{a}/old/version\" }}"),
            "{ command = [\"true\"] }",
        ),
    ));
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["status"]);
    assert!(out.stdout.contains("HTTP 500"), "{out:#?}");
    // The sequence is removed whole, payload included, not just its ESC.
    assert!(!out.stdout.contains("pwned-title"), "{out:#?}");
    let out = t.run(&home, &["status", "--json"]);
    assert!(
        !out.stdout.contains("\\u001b"),
        "escaped ESC in JSON: {out:#?}"
    );
}

#[test]
fn absurd_durations_and_limits_are_config_errors_not_panics() {
    let base = config(
        "",
        (
            "{ command = [\"echo\", \"v1.0.0\"] }",
            "{ command = [\"true\"] }",
        ),
        (
            "{ command = [\"echo\", \"v0.9.0\"] }",
            "{ command = [\"true\"] }",
        ),
    )
    .replacen("project = \"edge\"\n", "", 1);
    // Each case's lines come first, so that its place is known.
    let cases: [(&str, &str, &str); 6] = [
        (
            "[monitor]\nbaseline = \"5000000000h\"\n",
            "2:12",
            "at most 365d",
        ),
        (
            "[monitor]\nwindow = \"999999999d\"\n",
            "2:10",
            "at most 365d",
        ),
        ("[monitor]\nmax_p95_ms = -5.0\n", "2:14", "max_p95_ms"),
        (
            "[monitor]\nmax_error_rate = nan\n",
            "2:18",
            "max_error_rate",
        ),
        (
            "[metrics]\nsource = \"scrape\"\nurl = \"http://127.0.0.1:1/metrics\"\nstep = \"400d\"\n",
            "4:8",
            "at most 365d",
        ),
        (
            "project = \"x\\u001b]0;t\\u0007\"\n",
            "1:11",
            "escape sequences",
        ),
    ];
    let mut t = Tally { tried: 0 };
    for (extra, place, what) in cases {
        let home = Home::new();
        home.config(&format!("{extra}{base}"));
        for args in [
            &["config", "check", "shipdeck.toml"][..],
            &["status"],
            &["promote", "prod", "--yes"],
        ] {
            let out = t.run(&home, args);
            assert_eq!(out.code, 2, "{extra:?} {args:?}: {out:#?}");
            assert!(
                out.stderr.contains(&format!("shipdeck.toml:{place}: "))
                    && out.stderr.contains(what),
                "{extra:?} {args:?}: {out:#?}"
            );
        }
    }
    let home = Home::new();
    home.config(&base);
    let out = t.run(&home, &["watch", "prod", "--window", "999999999d"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("too long: at most 1d"), "{out:#?}");
    assert_eq!(t.tried, 19);
}

#[cfg(unix)]
#[test]
fn the_store_log_and_scrape_cache_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let fleet = common::Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));
    let mut t = Tally { tried: 0 };
    let out = t.run(&home, &["status", "--json"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let data = home.path().join("data/shipdeck");
    let state = home.path().join("state/shipdeck");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&data.join("shipdeck.db")), 0o600);
    assert_eq!(mode(&state.join("shipdeck.log")), 0o600);
    let caches: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("scrape-cache-")
        })
        .collect();
    assert_eq!(caches.len(), 1, "one cache file for one URL: {caches:?}");
    assert_eq!(mode(&caches[0]), 0o600);
    for entry in std::fs::read_dir(&data).unwrap().flatten() {
        assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
    }
}

/// One panic hook for every command: a panic is one short line on stderr
/// naming the log, and the report (redacted) is in the log. The test runs
/// itself as the panicking child, with the hook shipdeck's `main` installs.
#[test]
fn a_panic_is_one_line_on_stderr_and_a_redacted_report_in_the_log() {
    const NAME: &str = "a_panic_is_one_line_on_stderr_and_a_redacted_report_in_the_log";
    if std::env::var_os("SD_PANIC_CHILD").is_some() {
        shipdeck::text::register_secret(TOKEN);
        shipdeck::logging::install_panic_hook();
        panic!("planted panic carrying {TOKEN}");
    }
    let home = Home::new();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("SD_PANIC_CHILD", "1")
        .env("XDG_STATE_HOME", home.path().join("state"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stderr}");
    let log = home.path().join("state/shipdeck/shipdeck.log");
    assert!(
        stderr.contains("shipdeck: stopped on an internal error")
            && stderr.contains(&log.display().to_string()),
        "{stderr}"
    );
    assert!(
        !stderr.contains("planted panic"),
        "the report belongs in the log: {stderr}"
    );
    let report = std::fs::read_to_string(&log).unwrap();
    assert!(
        report.contains("planted panic carrying [redacted]"),
        "{report}"
    );
    assert!(!report.contains(TOKEN), "{report}");
}

/// The store opened in-process: its file, -wal and -shm (which exist while
/// it is open) are 0600 and its new directory 0700.
#[cfg(unix)]
#[test]
fn a_new_store_and_its_wal_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("data/shipdeck.db");
    let store = shipdeck::store::SqliteStore::open(&db).unwrap();
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(db.parent().unwrap()), 0o700);
    for suffix in ["-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    drop(store);
}

#[test]
fn an_approval_note_is_stored_and_shown_through_the_sanitiser() {
    let f = start_fakes();
    let a = f.addr;
    let home = Home::new();
    home.config(&config(
        "",
        (
            &format!("{{ url = \"http://{a}/ok/version\" }}"),
            "{ command = [\"true\"] }",
        ),
        (
            &format!("{{ url = \"http://{a}/old/version\" }}"),
            "{ command = [\"true\"] }",
        ),
    ));
    let mut t = Tally { tried: 0 };
    let note = format!("fine{OSC} \u{202e}gnp.exe\u{202c} INC-42");
    let ok = t.run(&home, &["approve", "prod", "--note", &note]);
    assert_eq!(ok.code, 0, "{ok:#?}");
    let h = t.run(&home, &["history", "--json"]);
    assert!(h.stdout.contains("INC-42"), "{h:#?}");
    assert!(!h.stdout.contains("pwned-title"), "{h:#?}");
    assert!(!h.stdout.contains("\\u202e"), "{h:#?}");
    assert!(!h.stdout.contains('\u{202e}'), "{h:#?}");
    t.run(&home, &["history"]);
    t.run(&home, &["status"]);
    let db = std::fs::read(home.path().join("data/shipdeck/shipdeck.db")).unwrap_or_default();
    let db = String::from_utf8_lossy(&db);
    assert!(
        !db.contains("pwned-title"),
        "the raw note reached the store"
    );
}
