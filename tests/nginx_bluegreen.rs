//! Blue-green through a real nginx (Debian's package; scripts/test installs
//! it): nginx on loopback, started once for this test binary from a temp
//! dir as a non-daemon child with its own conf, pid and logs, in front of
//! two small slot servers. The switch command rewrites an include file and
//! runs `nginx -s reload` (with `-p` and `-c`). shipdeck promotes through
//! it, then rolls back by switching; traffic through nginx moved both
//! times, and a load loop through nginx saw no failed request.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::json;
use shipdeck::config::Config;
use shipdeck::domain::{ActionKind, Version};
use shipdeck::engine::{Confirm, Engine};

/// nginx on PATH or where Debian puts it; else a failure saying how to get it.
fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed: this test runs a real nginx. Install it with \
                 `sudo apt-get install nginx` (Debian/Ubuntu) or run scripts/test, which does"
            )
        })
}

/// One slot's server: answers `/` with its name and version, `/slot` with
/// its name, `/version`, and `POST /deploy {"version"}`.
#[derive(Clone)]
struct Slot {
    name: &'static str,
    version: Arc<Mutex<String>>,
}

async fn slot_server(slot: Slot) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route(
            "/",
            get(|State(s): State<Slot>| async move {
                format!("{} {}", s.name, s.version.lock().unwrap())
            }),
        )
        .route(
            "/slot",
            get(|State(s): State<Slot>| async move { axum::Json(json!({"slot": s.name})) }),
        )
        .route(
            "/version",
            get(|State(s): State<Slot>| async move {
                axum::Json(json!({"version": *s.version.lock().unwrap()}))
            }),
        )
        .route(
            "/deploy",
            post(
                |State(s): State<Slot>, axum::Json(body): axum::Json<serde_json::Value>| async move {
                    let v = body["version"].as_str().unwrap_or_default().to_string();
                    *s.version.lock().unwrap() = v;
                    axum::http::StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(slot);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx as a child process; stopped (and waited for) on drop.
struct Nginx {
    child: Child,
}

impl Drop for Nginx {
    /// SIGTERM first: nginx's master then stops its workers. A SIGKILL of
    /// the master alone left a worker process behind after every run.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn upstream(port: u16) -> String {
    format!("upstream live {{ server 127.0.0.1:{port}; }}\n")
}

/// nginx on a free port: the port is free when chosen, but anything may
/// bind it before nginx does; then nginx exits and another port is tried.
fn start_nginx(bin: &Path, dir: &Path, blue: u16, green: u16) -> (Nginx, u16) {
    for _ in 0..5 {
        let port = free_port();
        if let Some(n) = try_start_nginx(bin, dir, port, blue, green) {
            return (n, port);
        }
        eprintln!("nginx could not listen on {port} (taken meanwhile?); another port");
    }
    panic!(
        "nginx did not start: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

fn try_start_nginx(bin: &Path, dir: &Path, port: u16, blue: u16, green: u16) -> Option<Nginx> {
    let d = dir.display();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(dir.join("live.conf"), upstream(blue)).unwrap();
    let conf = format!(
        r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/live.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://live; }}
        location /slots/blue/ {{ proxy_pass http://127.0.0.1:{blue}/; }}
        location /slots/green/ {{ proxy_pass http://127.0.0.1:{green}/; }}
    }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut nginx = Nginx { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if nginx.child.try_wait().ok().flatten().is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not listen on {port}: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(nginx)
}

/// One request through nginx on a connection of its own: a pooled one may
/// be an old worker's idle keep-alive connection, which a reload closes
/// (racing the request sent on it).
async fn through_nginx(port: u16) -> String {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_and_roll_back_by_switching_nginx_with_no_failed_request() {
    let bin = nginx_binary();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let blue = Slot {
        name: "blue",
        version: Arc::new(Mutex::new("v1.7.3".into())),
    };
    let green = Slot {
        name: "green",
        version: Arc::new(Mutex::new("v1.6.0".into())),
    };
    let (blue_port, green_port) = (slot_server(blue).await, slot_server(green).await);
    let (_nginx, port) = start_nginx(&bin, &d, blue_port, green_port);
    // The switch: rewrite the include file for the slot's port, reload.
    let switch = d.join("switch.sh");
    std::fs::write(
        &switch,
        format!(
            "#!/bin/sh\nset -e\nstart=$(date +%s%N)\ncase \"$1\" in\n  blue) port={blue_port} ;;\n  green) port={green_port} ;;\n  *) echo \"unknown slot $1\" >&2; exit 2 ;;\nesac\nprintf 'upstream live {{ server 127.0.0.1:%s; }}\\n' \"$port\" > {dd}/live.conf.new\nmv {dd}/live.conf.new {dd}/live.conf\n{bin} -p {dd} -c {dd}/nginx.conf -s reload\necho \"$start $(date +%s%N)\" >> {dd}/switch-times\n",
            dd = d.display(),
            bin = bin.display()
        ),
    )
    .unwrap();
    std::fs::write(d.join("staging"), "v1.8.0\n").unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let src = format!(
        r#"project = "nginx"
[store]
path = "{dd}/s.db"

[[environments]]
name = "staging"
version = {{ command = ["cat", "{dd}/staging"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "production"
rollback = "blue-green"
[environments.blue_green]
slots = ["blue", "green"]
live = {{ url = "{base}/slot", pointer = "/slot", timeout = "2s" }}
slot_version = {{ url = "{base}/slots/{{slot}}/version", timeout = "2s" }}
deploy = {{ webhook = "{base}/slots/{{slot}}/deploy", timeout = "10s", poll = "100ms" }}
switch = {{ command = ["sh", "{sw}", "{{slot}}"], timeout = "10s" }}
keep_warm = "1h"
"#,
        dd = d.display(),
        sw = switch.display()
    );
    let engine = Engine::open(Config::parse(&src, Path::new("<nginx test>")).unwrap()).unwrap();
    assert_eq!(through_nginx(port).await, "blue v1.7.3");

    // A bounded load loop through nginx for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        // A fresh connection per request: a graceful reload closes the old
        // worker's idle keep-alive connections, and a client reusing one
        // races that close (a client-side artefact, not a dropped request).
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                let r = client
                    .get(format!("http://127.0.0.1:{port}/"))
                    // Generous: a slow answer on a loaded machine is no
                    // dropped request.
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    let unseen = Confirm::Unseen {
        accept_warnings: true,
    };
    let rec = engine
        .promote("production", None, unseen, None)
        .await
        .unwrap();
    assert_eq!(rec.version, Version::parse("v1.8.0").unwrap());
    assert_eq!(
        through_nginx(port).await,
        "green v1.8.0",
        "traffic moved to green"
    );

    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    };
    let (t0, w0) = (Instant::now(), wall());
    engine.rollback("production", None, None).await.unwrap();
    let (took, w1) = (t0.elapsed(), wall());
    assert_eq!(
        through_nginx(port).await,
        "blue v1.7.3",
        "traffic moved back to blue"
    );
    // The figure of the issue's benchmark, printed rather than asserted
    // (a shared machine's timing is no test): from the rollback to the old
    // version serving through nginx, and shipdeck's own share of it — all
    // but the switch command's run (the nginx reload).
    let times = std::fs::read_to_string(d.join("switch-times")).unwrap();
    let (start, end) = times
        .lines()
        .last()
        .and_then(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse::<u128>().ok()?, b.parse::<u128>().ok()?))
        })
        .expect("the switch command wrote its times");
    let ms = |ns: u128| ns as f64 / 1e6;
    eprintln!(
        "rollback by switching nginx back: {:.0} ms end to end (goal <= 1000 ms): \
         shipdeck before the switch {:.0} ms (reads, lock, audit); the switch command \
         (nginx reload) {:.0} ms; until the live slot read back through nginx {:.0} ms",
        took.as_secs_f64() * 1000.0,
        ms(start.saturating_sub(w0)),
        ms(end.saturating_sub(start)),
        ms(w1.saturating_sub(end)),
    );
    let h = engine.history(Some("production"), 1).await.unwrap();
    assert_eq!(h[0].action, ActionKind::Rollback);
    assert!(
        h[0].detail.contains("switched back, nothing redeployed"),
        "{}",
        h[0].detail
    );

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 10, "the load loop ran ({ok} requests)");
    assert_eq!(
        failed, 0,
        "no failed request through either switch ({ok} ok)"
    );
}
