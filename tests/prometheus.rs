//! shipdeck's Prometheus source against a real Prometheus scraping the demo
//! fleet every second: its error rate, p95 and request rate for production
//! must agree with what the fleet serves (the scrape source over the same
//! period, and the fleet's own truth).
//!
//! Needs the `prometheus` binary (Debian: `apt-get install -y
//! --no-install-recommends prometheus`, or `./scripts/test` which installs it).
//! Without it the test fails, saying so: it never skips silently.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::Utc;
use shipdeck::backends::metrics::{MetricPoint, MetricsError, MetricsSource, ScrapeSource};
use shipdeck::config::{MetricsConfig, MetricsSourceKind, QueryTemplates};
use shipdeck::demo::{self, FleetOptions};
use shipdeck::domain::HumanDuration;

const INSTALL_HINT: &str = "the `prometheus` binary is needed by this test: install it with \
     `apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu), \
     or run `./scripts/test`, which installs what the tests need";

/// A Prometheus child process, killed when dropped (also on a panic).
struct Prometheus {
    /// `None` while stopped.
    child: Option<Child>,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    data: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Prometheus {
    /// Wait until it answers (503 until its TSDB is open).
    async fn ready(&self) {
        let base = format!("http://{}", self.addr);
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{base}/-/ready")).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "Prometheus at {base} not ready after 90 s; its log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .rev()
            .take(15)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Start Prometheus scraping `target` every second.
    fn start(target: SocketAddr) -> Prometheus {
        Prometheus::start_with_history(target, None)
    }

    /// Start Prometheus scraping `target` every second, its TSDB first
    /// filled with `history` (OpenMetrics text) by `promtool tsdb
    /// create-blocks-from openmetrics`: past data queryable at once.
    fn start_with_history(target: SocketAddr, history: Option<&str>) -> Prometheus {
        let data = tempfile::tempdir().expect("a temp dir");
        if let Some(om) = history {
            let file = data.path().join("history.om");
            std::fs::write(&file, om).expect("write history.om");
            let out = Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(data.path().join("tsdb"))
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => panic!(
                    "promtool could not convert the history: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
                Err(e) => panic!("cannot run promtool: {e}; {INSTALL_HINT}"),
            }
        }
        let config = data.path().join("prom.yml");
        let yaml = [
            "global:",
            "  scrape_interval: 1s",
            "  evaluation_interval: 1s",
            "scrape_configs:",
            "  - job_name: demo",
            "    scrape_interval: 1s",
            "    scrape_timeout: 900ms",
            "    static_configs:",
            &format!("      - targets: ['{target}']"),
        ]
        .join("\n");
        std::fs::write(&config, yaml + "\n").expect("write prom.yml");
        let mut prom = Prometheus {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: Arc::new(Mutex::new(Vec::new())),
            data,
        };
        prom.spawn("127.0.0.1:0");
        prom
    }

    /// Run the prometheus binary on its data directory, listening on
    /// `listen`, and learn the address it listens on.
    fn spawn(&mut self, listen: &str) {
        let data = self.data.path();
        let spawned = Command::new("prometheus")
            .arg(format!("--config.file={}", data.join("prom.yml").display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("cannot start prometheus: {e}; {INSTALL_HINT}"),
        };
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        {
            let log = self.log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = listening_address(&line) {
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(addr) => self.addr = addr,
            Err(_) => panic!(
                "prometheus did not report `msg=\"Listening on\"` within 90 s; its log:\n{}",
                self.log_tail()
            ),
        }
    }

    /// Stop it (killed, as a crash or a restart would).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same address and data, as after a restart.
    fn restart(&mut self) {
        self.stop();
        let listen = self.addr.to_string();
        self.spawn(&listen);
    }
}

/// `… msg="Listening on" address=127.0.0.1:40123` → the address.
fn listening_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("msg=\"Listening on\"") {
        return None;
    }
    let rest = &line[line.find("address=")? + "address=".len()..];
    rest.split_whitespace()
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

fn prometheus_source(url: String, step_s: u64, queries: QueryTemplates) -> MetricsSource {
    MetricsSource::from_config(&MetricsConfig {
        source: MetricsSourceKind::Prometheus,
        url,
        step: HumanDuration::from_secs(step_s),
        timeout: HumanDuration::from_secs(5),
        token_env: None,
        queries,
    })
    .expect("a valid Prometheus source")
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(a.abs())
}

#[test]
fn listening_line_is_understood() {
    let line = r#"ts=2026-11-24T20:00:00.000Z caller=web.go:562 level=info component=web msg="Listening on" address=127.0.0.1:40123"#;
    assert_eq!(
        listening_address(line),
        Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
    );
    assert_eq!(
        listening_address("level=info msg=\"Server is ready\""),
        None
    );
}

/// The demo fleet on a free loopback port, ticking every 100 ms.
async fn fleet(seed: u64, bad_versions: Vec<String>) -> demo::FleetHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    demo::spawn(
        listener,
        FleetOptions {
            seed,
            tick: Duration::from_millis(100),
            bad_versions,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_source_agrees_with_the_fleet() {
    // Production's starting release is marked bad (and has been live for an
    // hour), so its error rate is high enough (~8%) to compare over 10 s.
    let fleet = fleet(2026, vec!["v1.7.3".into(), demo::BAD_VERSION.into()]).await;
    let prom = Prometheus::start(fleet.addr);
    let base = format!("http://{}", prom.addr);
    let src = prometheus_source(base.clone(), 10, QueryTemplates::default());
    let labels = vec!["production".to_string(), "nowhere".to_string()];

    // Ready (it answers 503 until the TSDB is open) …
    prom.ready().await;
    // … then wait for the first scrapes (about 5 s after start, then a rate needs two).
    let started = Instant::now();
    loop {
        match src.poll(&labels[..1]).await {
            Ok(m)
                if m.get("production")
                    .is_some_and(|p| p.as_ref().is_some_and(|p| p.p95_ms.is_some())) =>
            {
                break;
            }
            Ok(_) | Err(MetricsError::Query { .. }) => {}
            Err(e) => panic!("Prometheus at {base} failed: {e}\n{}", prom.log_tail()),
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no production data from Prometheus after 90 s; its log:\n{}",
            prom.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The same 10 s through the scrape source and through Prometheus.
    let scrape = ScrapeSource::new(
        &format!("{}/metrics", fleet.url()),
        Duration::from_secs(5),
        None,
    )
    .expect("scrape source");
    // (Production only: the scrape source names a label the exposition
    // lacks among others as an error, see `demo_fleet.rs`.)
    let scraped = vec!["production".to_string()];
    scrape.poll(&scraped).await.expect("first scrape");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let direct: MetricPoint = scrape.poll(&scraped).await.expect("second scrape")["production"]
        .clone()
        .expect("a scrape step");
    // Let Prometheus take its scrape of the moment the window ends.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let polled = src
        .poll_tracked(&labels, &[])
        .await
        .expect("Prometheus poll");
    // A label without series while others have some is named, not read
    // as silence (as the scrape source names it).
    let nowhere = polled.errors.get("nowhere").map(ToString::to_string);
    assert!(
        matches!(polled.errors.get("nowhere"), Some(MetricsError::NoSeries { label, seen, .. })
            if label == "nowhere" && seen.contains("\"production\"")),
        "{nowhere:?}"
    );
    assert!(
        nowhere.as_deref().is_some_and(|e| e.contains(
            "has no series labelled env=\"nowhere\" (it has env=\"development\", \"local\", \"production\", \"staging\")"
        )),
        "{nowhere:?}"
    );
    assert!(
        !polled.points.contains_key("nowhere"),
        "{:?}",
        polled.points
    );
    let via_prom = polled.points["production"]
        .clone()
        .expect("a Prometheus point");
    let truth = fleet.truth("production").expect("truth");
    eprintln!(
        "production over 10 s — scrape: {:.1} req/s, errors {:.2}%, p50 {:.0} ms, p95 {:.0} ms | \
         prometheus: {:.1} req/s, errors {:.2}%, p50 {:.0} ms, p95 {:.0} ms | \
         truth: {:.1} req/s, errors {:.2}%, p95 {:.0} ms (model)",
        direct.requests_per_s().unwrap_or(f64::NAN),
        100.0 * direct.error_rate().unwrap_or(f64::NAN),
        direct.p50_ms.unwrap_or(f64::NAN),
        direct.p95_ms.unwrap_or(f64::NAN),
        via_prom.requests_per_s().unwrap_or(f64::NAN),
        100.0 * via_prom.error_rate().unwrap_or(f64::NAN),
        via_prom.p50_ms.unwrap_or(f64::NAN),
        via_prom.p95_ms.unwrap_or(f64::NAN),
        truth.traffic.requests_per_s,
        100.0 * truth.traffic.error_rate,
        truth.traffic.p95_ms,
    );

    let (dr, pr) = (
        direct.requests_per_s().unwrap(),
        via_prom.requests_per_s().unwrap(),
    );
    assert!(
        close(pr, dr, 0.25),
        "requests/s: prometheus {pr} vs scrape {dr}"
    );
    assert!(
        close(pr, truth.traffic.requests_per_s, 0.35),
        "requests/s: prometheus {pr} vs truth {}",
        truth.traffic.requests_per_s
    );
    let (de, pe) = (direct.error_rate().unwrap(), via_prom.error_rate().unwrap());
    assert!(
        close(pe, de, 0.3),
        "error rate: prometheus {pe} vs scrape {de}"
    );
    assert!(
        (0.04..=0.14).contains(&pe),
        "error rate: prometheus {pe}, truth {}",
        truth.traffic.error_rate
    );
    let (dp, pp) = (direct.p95_ms.unwrap(), via_prom.p95_ms.unwrap());
    assert!(
        close(pp, dp, 0.25),
        "p95: prometheus {pp} ms vs scrape {dp} ms"
    );
    // A bad release: p95 ~2.8 × 120 ms (the buckets blur it somewhat).
    assert!((200.0..=600.0).contains(&pp), "p95 {pp} ms");
    let (d50, p50) = (direct.p50_ms.unwrap(), via_prom.p50_ms.unwrap());
    assert!(
        close(p50, d50, 0.25),
        "p50: prometheus {p50} ms vs scrape {d50} ms"
    );

    // History: query_range over the last 12 s at 3 s steps.
    let end = Utc::now();
    let hist = src
        .history(
            "production",
            end - chrono::Duration::seconds(12),
            end,
            Duration::from_secs(3),
        )
        .await
        .expect("query_range")
        .expect("Prometheus keeps history");
    assert!(hist.len() >= 3, "{} history points", hist.len());
    for w in hist.windows(2) {
        assert_eq!((w[1].at - w[0].at).num_seconds(), 3);
    }
    for p in &hist {
        assert!(p.requests > 0.0 && p.step_s == 3.0, "{p:?}");
        let er = p.error_rate().unwrap();
        assert!(
            (0.01..=0.25).contains(&er),
            "history error rate {er}: {p:?}"
        );
    }

    // So is its history: the baseline a watch would read.
    let e = src
        .history(
            "nowhere",
            end - chrono::Duration::seconds(12),
            end,
            Duration::from_secs(3),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, MetricsError::NoSeries { ref label, ref seen, .. }
            if label == "nowhere" && seen.contains("\"production\"")),
        "{e}"
    );
    // … named at the path it was read from (a range read, not /query).
    assert!(
        e.to_string().starts_with(&format!(
            "metrics source {base}/api/v1/query_range has no series labelled env=\"nowhere\""
        )),
        "{e}"
    );
    // A template selecting by another label names that label, not `env`
    // (here the status code stands in for a `deployment` label).
    let by_code = QueryTemplates {
        requests: r#"sum(increase(http_requests_total{code="{env}"}[{step}]))"#.into(),
        ..QueryTemplates::default()
    };
    let by_code = prometheus_source(base.clone(), 10, by_code);
    for e in [
        by_code
            .history(
                "nowhere",
                end - chrono::Duration::seconds(12),
                end,
                Duration::from_secs(3),
            )
            .await
            .unwrap_err(),
        by_code
            .poll_tracked(&labels[1..], &[])
            .await
            .expect("Prometheus poll")
            .errors
            .remove("nowhere")
            .expect("nowhere named"),
    ] {
        let text = e.to_string();
        assert!(
            text.contains("has no series labelled code=\"nowhere\" (it has code=\"200\"")
                && !text.contains("env="),
            "{text}"
        );
    }
    // A template selecting by no env matcher cannot be asked which values
    // there are: an empty answer stays no data.
    let unlabelled = QueryTemplates {
        requests: r#"sum(increase(http_requests_total{env=~"{env}x"}[{step}]))"#.into(),
        ..QueryTemplates::default()
    };
    let polled = prometheus_source(base.clone(), 10, unlabelled)
        .poll_tracked(&labels, &[])
        .await
        .expect("a poll");
    assert_eq!(polled.points.get("nowhere"), Some(&None), "{polled:?}");
    assert!(polled.errors.is_empty(), "{:?}", polled.errors);

    // Prometheus' own refusals come back typed.
    let broken = QueryTemplates {
        requests: "sum(".into(),
        ..QueryTemplates::default()
    };
    let e = prometheus_source(base.clone(), 10, broken)
        .poll(&labels)
        .await
        .unwrap_err();
    assert!(
        matches!(e, MetricsError::Query { ref error_type, .. } if error_type == "bad_data"),
        "{e}"
    );
    let e = prometheus_source(format!("{base}/nope"), 10, QueryTemplates::default())
        .poll(&labels)
        .await
        .unwrap_err();
    assert!(matches!(e, MetricsError::Status { status: 404, .. }), "{e}");

    drop(prom);
    fleet.shutdown().await.expect("fleet shutdown");
}

/// Run the real binary in `home` with `args`; (exit code, stdout, stderr).
fn shipdeck(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shipdeck"))
        .current_dir(home)
        .env_remove("SHIPDECK_CONFIG")
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .args(args)
        .output()
        .expect("run shipdeck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `shipdeck watch` as a CI/CD gate, with the baseline read from a real
/// Prometheus: the demo's bad release goes to production, the window finds
/// the regression (exit 4) and rolls production back by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_catches_the_bad_release_and_rolls_back() {
    let fleet = fleet(7, FleetOptions::default().bad_versions).await;
    let prom = Prometheus::start(fleet.addr);
    let home = tempfile::tempdir().expect("home");
    let a = fleet.addr;
    let mut cfg = format!(
        "project = \"demo-shop\"\n[metrics]\nsource = \"prometheus\"\nurl = \"http://{}\"\nstep = \"2s\"\n\
         [monitor]\nwindow = \"2m\"\nbaseline = \"20s\"\nauto_rollback = true\n",
        prom.addr
    );
    for env in ["staging", "production"] {
        cfg.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\n\
             deploy = {{ webhook = \"http://{a}/envs/{env}/deploy\", timeout = \"30s\", poll = \"200ms\" }}\n"
        ));
    }
    cfg.push_str("monitored = true\ngates = { requires_approval = true }\n");
    std::fs::write(home.path().join("shipdeck.toml"), cfg).expect("config");

    // Let Prometheus gather a baseline of healthy production traffic.
    tokio::time::sleep(Duration::from_secs(28)).await;
    let h = home.path().to_path_buf();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let (c, o, e) = shipdeck(&h, &["approve", "production"]);
        assert_eq!(c, 0, "approve: {o}{e}");
        let (c, o, e) = shipdeck(&h, &["promote", "production", "--yes"]);
        assert_eq!(c, 0, "promote: {o}{e}");
        shipdeck(&h, &["watch", "production", "--json"])
    })
    .await
    .expect("join");
    assert_eq!(
        code,
        4,
        "watch must find the regression: {out}\n{err}\nprometheus:\n{}",
        prom.log_tail()
    );
    let j: serde_json::Value = serde_json::from_str(&out).expect("watch --json");
    assert_eq!(j["verdict"], "regression", "{j}");
    assert_eq!(j["version"], "v1.8.0");
    let detected = j["detected_at"].as_f64().expect("detected_at");
    assert!(
        detected > 0.0 && detected <= 90.0,
        "detected at t={detected}"
    );
    assert!(
        ["error_rate", "latency_p50", "latency_p95", "latency_p99"]
            .contains(&j["metric"].as_str().unwrap_or("")),
        "{j}"
    );
    assert_eq!(j["rolled_back"]["version"], "v1.7.3", "{j}");
    assert_eq!(fleet.truth("production").expect("truth").version, "v1.7.3");
    let h = home.path().to_path_buf();
    let (_, hist, _) = tokio::task::spawn_blocking(move || shipdeck(&h, &["history", "--json"]))
        .await
        .expect("join");
    let hist: serde_json::Value = serde_json::from_str(&hist).expect("history");
    let first = &hist["entries"][0];
    assert_eq!(
        (first["action"].as_str(), first["outcome"].as_str()),
        (Some("rollback"), Some("succeeded"))
    );
    let no_go = &hist["entries"][1];
    assert_eq!(
        no_go["action"], "reject",
        "the caught release is blocked: {no_go}"
    );
    assert!(
        no_go["actor"]
            .as_str()
            .unwrap_or("")
            .ends_with("(monitoring window)"),
        "{no_go}"
    );
    let monitor = &hist["entries"][2];
    assert_eq!(monitor["action"], "monitor");
    assert_eq!(monitor["outcome"], "failed");
    assert!(
        monitor["detail"]
            .as_str()
            .unwrap_or("")
            .contains("regression"),
        "{monitor}"
    );
}

/// A Prometheus restart is an outage of the metrics source, not a cause
/// to fix: `shipdeck watch` while it is stopped fails (exit 1) naming it,
/// and says that waiting heals this and that an open console watches the
/// deploy again by itself (15 s, not the back-off to 5 min of a lasting
/// cause). Restarted on the same address and data, the same source reads
/// again, every failure until then one that waiting heals. A query it
/// refuses stays until someone fixes it, and the rerun says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_restart_is_waited_out_and_a_refused_query_is_not() {
    let fleet = fleet(11, Vec::new()).await;
    let mut prom = Prometheus::start(fleet.addr);
    prom.ready().await;
    let base = format!("http://{}", prom.addr);
    let home = tempfile::tempdir().expect("home");
    let a = fleet.addr;
    let config = |queries: &str| {
        let mut cfg = format!(
            "project = \"demo-shop\"\n[metrics]\nsource = \"prometheus\"\nurl = \"{base}\"\nstep = \"2s\"\n{queries}\
             [monitor]\nwindow = \"10s\"\nbaseline = \"20s\"\n"
        );
        cfg.push_str(&format!(
            "\n[[environments]]\nname = \"production\"\nversion = {{ url = \"http://{a}/envs/production/version\" }}\n\
             deploy = {{ webhook = \"http://{a}/envs/production/deploy\" }}\nmonitored = true\n"
        ));
        cfg
    };
    std::fs::write(home.path().join("shipdeck.toml"), config("")).expect("config");
    let watch = |home: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || shipdeck(&home, &["watch", "production"]))
    };
    let src = prometheus_source(base.clone(), 2, QueryTemplates::default());
    let labels = vec!["production".to_string()];
    src.poll(&labels)
        .await
        .expect("Prometheus answers once ready");

    prom.stop();
    let e = src.poll(&labels).await.unwrap_err();
    assert!(
        matches!(e, MetricsError::Unreachable { .. }) && e.heals_by_waiting(),
        "{e}"
    );
    let (code, out, err) = watch(home.path().to_path_buf()).await.expect("join");
    assert_eq!(code, 1, "a stopped Prometheus: {out}{err}");
    assert!(
        err.contains(&format!(
            "metrics source {base}/api/v1/query_range is unreachable"
        )),
        "names the source: {err}"
    );
    assert!(
        err.contains("the metrics source is away for now")
            && err.contains("an open console watches it again by itself (15 s")
            && !err.contains("will not heal"),
        "waited out like an outage: {err}"
    );

    // Back on the same address: until it is ready it refuses connections
    // or answers 503, both of which waiting heals; then it reads again.
    prom.restart();
    assert_eq!(format!("http://{}", prom.addr), base, "same address");
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        match src.poll(&labels).await {
            Ok(_) => break,
            Err(e) => {
                assert!(e.heals_by_waiting(), "while restarting: {e}");
                seen.push(e.to_string());
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "Prometheus not back after 90 s; its log:\n{}",
            prom.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "while restarting, {} poll(s) failed, waited out: {:?}",
        seen.len(),
        seen.first()
    );

    // A metrics_label Prometheus has no series of (others beside) is named
    // as such, not left as a baseline of 0 steps with no cause. Right
    // after the restart Prometheus has no series at all (its first scrape
    // comes ~5 s after it starts, and none was taken before it stopped):
    // the baseline cannot name the label then, the window's polls do, at
    // once (the window goes on, its steps missing data). Had a scrape come
    // before the baseline read, the baseline names it (below).
    std::fs::write(
        home.path().join("shipdeck.toml"),
        config("").replace(
            "monitored = true\n",
            "monitored = true\nmetrics_label = \"prod\"\n",
        ),
    )
    .expect("config");
    let (code, out, err) = watch(home.path().to_path_buf()).await.expect("join");
    assert_eq!(code, 1, "a label without series: {out}{err}");
    let named = |err: &str, path: &str| {
        err.contains(&format!(
            "metrics source {base}{path} has no series labelled env=\"prod\" (it has env="
        )) && err.contains("\"production\"")
            && err.contains("the environment's name or metrics_label may not match")
    };
    assert!(
        named(&err, "/api/v1/query") || named(&err, "/api/v1/query_range"),
        "names the label and the ones there are: {err}"
    );
    eprintln!("a label without series, right after the restart:\n{err}");

    // With production's series in Prometheus, the baseline's history read
    // names the label: the watch fails at once (a 10-minute window is not
    // waited out), saying what to fix.
    let started = Instant::now();
    while !src
        .poll(&labels)
        .await
        .is_ok_and(|m| m.get("production").is_some_and(Option::is_some))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no production series after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    let h = home.path().to_path_buf();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        shipdeck(&h, &["watch", "production", "--window", "10m"])
    })
    .await
    .expect("join");
    let took = started.elapsed();
    assert_eq!(code, 1, "a label without series: {out}{err}");
    assert!(
        took < Duration::from_secs(60),
        "failed after {took:?}, not at once: {err}"
    );
    assert!(
        named(&err, "/api/v1/query_range")
            && err.contains("is unusable: not one step has the environment's metrics")
            && err.contains("fix the environment's metrics_label (or its name)"),
        "names the label, at the baseline: {err}"
    );

    // A query Prometheus refuses is no outage: fix it, then rerun.
    std::fs::write(
        home.path().join("shipdeck.toml"),
        config("[metrics.queries]\nrequests = \"sum(increase(http_requests_total{env=\\\"{env}\\\"}[{step}])\"\n"),
    )
    .expect("config");
    let (code, out, err) = watch(home.path().to_path_buf()).await.expect("join");
    assert_eq!(code, 1, "a refused query: {out}{err}");
    assert!(
        err.contains(&format!(
            "Prometheus {base}/api/v1/query_range refused the query (bad_data)"
        )),
        "names the source and the refusal: {err}"
    );
    assert!(
        err.contains("waiting will not heal this: fix the metrics query Prometheus refuses")
            && !err.contains("away for now"),
        "a lasting cause: {err}\nprometheus:\n{}",
        prom.log_tail()
    );
    drop(prom);
    fleet.shutdown().await.expect("fleet shutdown");
}

/// OpenMetrics text of production's request counter as it was `ago`
/// seconds before each second of `[from, to]` (Unix seconds): `rate(t)`
/// requests per second, 1 s apart, so that `increase(…[2s])` has two
/// samples in every step.
fn history_at(ago: i64, from: i64, to: i64, rate: impl Fn(i64) -> f64) -> String {
    let mut out = String::new();
    let mut total = 0.0;
    for t in from..=to {
        total += rate(t);
        out.push_str(&format!(
            "http_requests_total{{env=\"production\",code=\"200\"}} {total} {}\n",
            t - ago
        ));
    }
    out
}

/// The seasonal reference from a real Prometheus: the same steps a day and
/// a week earlier (history backfilled with promtool), the lower of the two
/// per step; and `shipdeck watch` with it. Today's traffic stays flat
/// while yesterday's and last week's rose twentyfold at the hour of the
/// deploy (the morning ramp): the window calls a throughput collapse and
/// says the seasonal reference was its evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seasonal_reference_comes_from_a_day_and_a_week_earlier_and_decides_a_collapse() {
    // A healthy release only: nothing but the reference can call this window.
    let fleet = fleet(11, vec![]).await;
    let now = Utc::now().timestamp();
    // Prometheus' start, a 28 s baseline and the deploy: the ramp of the
    // reference is placed where the window will begin.
    let ramp = now + 36;
    let mut om = String::from("# TYPE http_requests counter\n");
    for (ago, level) in [(86_400, 10.0), (7 * 86_400, 12.0)] {
        om.push_str(&history_at(ago, now - 600, now + 900, |t| {
            if t < ramp { level } else { 20.0 * level }
        }));
    }
    om.push_str("# EOF\n");
    let prom = Prometheus::start_with_history(fleet.addr, Some(&om));
    prom.ready().await;
    let base = format!("http://{}", prom.addr);

    // The source: per 2 s step, the lower of the day's and the week's.
    let src = prometheus_source(base.clone(), 2, QueryTemplates::default());
    let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).expect("a time");
    let reference = src
        .seasonal_reference(
            "production",
            &[(at(now - 300), at(now - 200))],
            Duration::from_secs(2),
        )
        .await
        .expect("Prometheus answers")
        .expect("Prometheus keeps history");
    assert_eq!(reference.offsets, vec!["1d", "7d"], "{reference:?}");
    let n = reference
        .requests_at(at(now - 250))
        .expect("a reference step");
    assert!(close(n, 20.0, 0.15), "2 s at 10 req/s a day ago: {n}");
    let later = src
        .seasonal_reference(
            "production",
            &[(at(ramp + 60), at(ramp + 80))],
            Duration::from_secs(2),
        )
        .await
        .expect("Prometheus answers")
        .expect("history");
    let n = later.requests_at(at(ramp + 70)).expect("a reference step");
    assert!(close(n, 400.0, 0.15), "2 s at 200 req/s a day ago: {n}");
    let none = src
        .seasonal_reference(
            "nowhere",
            &[(at(now - 300), at(now - 200))],
            Duration::from_secs(2),
        )
        .await
        .expect("Prometheus answers")
        .expect("history");
    assert!(
        none.offsets.is_empty() && none.describe().contains("none"),
        "{none:?}"
    );

    // The watch, with the same reference.
    let home = tempfile::tempdir().expect("home");
    let a = fleet.addr;
    let mut cfg = format!(
        "project = \"demo-shop\"\n[metrics]\nsource = \"prometheus\"\nurl = \"{base}\"\nstep = \"2s\"\n\
         [monitor]\nwindow = \"2m\"\nbaseline = \"20s\"\nauto_rollback = false\n"
    );
    for env in ["staging", "production"] {
        cfg.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\n\
             deploy = {{ webhook = \"http://{a}/envs/{env}/deploy\", timeout = \"30s\", poll = \"200ms\" }}\n"
        ));
    }
    cfg.push_str("monitored = true\n");
    std::fs::write(home.path().join("shipdeck.toml"), cfg).expect("config");
    let wait = (ramp - 4 - Utc::now().timestamp()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let h = home.path().to_path_buf();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let (c, o, e) = shipdeck(&h, &["promote", "production", "--yes"]);
        assert_eq!(c, 0, "promote: {o}{e}");
        shipdeck(&h, &["watch", "production", "--json"])
    })
    .await
    .expect("join");
    assert_eq!(
        code,
        4,
        "traffic far below the reference is a collapse: {out}\n{err}\nprometheus:\n{}",
        prom.log_tail()
    );
    let j: serde_json::Value = serde_json::from_str(&out).expect("watch --json");
    assert_eq!(j["metric"], "throughput", "{j}");
    let reason = j["reason"].as_str().unwrap_or("");
    assert!(reason.contains("seasonal reference"), "{reason}");
    assert!(
        j["baseline"]
            .as_str()
            .unwrap_or("")
            .contains("seasonal reference: the same steps 1d and 7d earlier"),
        "{j}"
    );
    drop(prom);
    fleet.shutdown().await.expect("fleet shutdown");
}

/// POST a JSON body to the fleet.
async fn post(url: String, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert!(r.status().is_success(), "POST {url}: {}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_the_canary_and_stable_tracks_apart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let fleet = demo::spawn(
        listener,
        FleetOptions {
            seed: 77,
            tick: Duration::from_millis(100),
            deploy_duration: Duration::from_millis(100),
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    // The bad release on the canary, with a fifth of production's traffic.
    let url = fleet.url();
    post(
        format!("{url}/envs/production/canary/deploy"),
        serde_json::json!({"version": demo::BAD_VERSION}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    post(
        format!("{url}/envs/production/canary/weight"),
        serde_json::json!({"weight": 20}),
    )
    .await;
    let prom = Prometheus::start(fleet.addr);
    let base = format!("http://{}", prom.addr);
    let src = prometheus_source(base.clone(), 10, QueryTemplates::default());
    let labels = vec!["production".to_string()];
    let tracks = vec![shipdeck::backends::metrics::TrackSelector {
        env: "production".into(),
        label: "track".into(),
    }];
    // Wait until the canary has turned bad (5–10 s, then a 15 s ramp) and
    // Prometheus' last 10 s show it.
    let started = Instant::now();
    let (total, canary, stable) = loop {
        match src.poll_tracked(&labels, &tracks).await {
            // A label or track whose own read failed (not ready yet: 503
            // until its TSDB is open, or no data yet) is missing from the
            // points, its error kept beside them.
            Ok(p) => {
                if let (Some(Some(all)), Some(t)) =
                    (p.points.get("production"), p.tracks.get(&tracks[0]))
                    && let (Some(c), Some(s)) = (&t.canary, &t.stable)
                    && c.error_rate().is_some_and(|r| r > 0.04)
                {
                    break (all.clone(), c.clone(), s.clone());
                }
            }
            Err(MetricsError::Query { .. } | MetricsError::Status { status: 503, .. }) => {}
            Err(e) => panic!("Prometheus at {base} failed: {e}\n{}", prom.log_tail()),
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the canary track never showed the bad release; its log:\n{}",
            prom.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let share = canary.requests / (canary.requests + stable.requests);
    assert!((0.12..=0.28).contains(&share), "canary share {share}");
    let stable_rate = stable.error_rate().unwrap_or(1.0);
    assert!(stable_rate < 0.015, "stable error rate {stable_rate}");
    assert!(
        canary.p95_ms.unwrap_or(0.0) > stable.p95_ms.unwrap_or(f64::MAX),
        "canary p95 {:?} vs stable {:?}",
        canary.p95_ms,
        stable.p95_ms
    );
    // The env's own total still counts both tracks.
    assert!(
        close(total.requests, canary.requests + stable.requests, 0.05),
        "total {} vs tracks {} + {}",
        total.requests,
        canary.requests,
        stable.requests
    );
    assert_eq!(fleet.canary().weight, 20);
}

/// A scrape target of its own for production: 100 requests a second, one
/// in 200 a 5xx, latencies under 100 ms — whose 200s counter reads `NaN`
/// while `nan` is set (a broken exporter), as the real Prometheus stores
/// it; staging's the same, never NaN; plus a version endpoint (`v1`) and a
/// deploy webhook.
async fn nan_target(nan: Arc<std::sync::atomic::AtomicBool>) -> SocketAddr {
    use axum::routing::{get, post};
    let started = Instant::now();
    let metrics = move || {
        let nan = nan.clone();
        async move {
            let t = started.elapsed().as_secs_f64();
            let (ok, err) = (99.5 * t, 0.5 * t);
            let shown = if nan.load(std::sync::atomic::Ordering::SeqCst) {
                "NaN".to_string()
            } else {
                format!("{ok}")
            };
            let n = ok + err;
            format!(
                "# TYPE http_requests_total counter\n\
                 http_requests_total{{env=\"production\",code=\"200\"}} {shown}\n\
                 http_requests_total{{env=\"production\",code=\"500\"}} {err}\n\
                 # TYPE http_request_duration_seconds histogram\n\
                 http_request_duration_seconds_bucket{{env=\"production\",le=\"0.05\"}} {}\n\
                 http_request_duration_seconds_bucket{{env=\"production\",le=\"0.1\"}} {n}\n\
                 http_request_duration_seconds_bucket{{env=\"production\",le=\"+Inf\"}} {n}\n\
                 http_request_duration_seconds_count{{env=\"production\"}} {n}\n\
                 http_requests_total{{env=\"staging\",code=\"200\"}} {ok}\n\
                 http_requests_total{{env=\"staging\",code=\"500\"}} {err}\n\
                 http_request_duration_seconds_bucket{{env=\"staging\",le=\"0.05\"}} {}\n\
                 http_request_duration_seconds_bucket{{env=\"staging\",le=\"0.1\"}} {n}\n\
                 http_request_duration_seconds_bucket{{env=\"staging\",le=\"+Inf\"}} {n}\n\
                 http_request_duration_seconds_count{{env=\"staging\"}} {n}\n",
                0.6 * n,
                0.6 * n
            )
        }
    };
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/version", get(|| async { r#"{"version": "v1"}"# }))
        .route("/deploy", post(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A NaN count in a real Prometheus: the exporter's counter reads NaN for
/// a few seconds, Prometheus stores it, and `increase()` over it answers
/// NaN. In the history a monitoring window reads as its baseline, such a
/// step is a gap, counted in the baseline's description, and the window
/// still judges; while the live read is NaN, `status` names the unusable
/// number and never reads the environment as healthy (the steps it read
/// before say nothing of now), and a window over it ends in insufficient
/// data, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nan_count_in_a_real_prometheus_is_a_gap_never_health() {
    use shipdeck::config::Config;
    use shipdeck::domain::Health;
    use shipdeck::engine::Engine;
    use shipdeck::monitor::VerdictKind;
    use std::sync::atomic::{AtomicBool, Ordering};

    let nan = Arc::new(AtomicBool::new(false));
    let target = nan_target(nan.clone()).await;
    let prom = Prometheus::start(target);
    prom.ready().await;
    let base = format!("http://{}", prom.addr);
    let dir = tempfile::tempdir().expect("dir");
    let cfg = format!(
        "project = \"nan\"\n[store]\npath = \"{}\"\n[metrics]\nsource = \"prometheus\"\nurl = \"{base}\"\nstep = \"2s\"\n\
         [monitor]\nbaseline = \"30s\"\nauto_rollback = false\n\
         \n[[environments]]\nname = \"staging\"\nversion = {{ url = \"http://{target}/version\" }}\n\
         deploy = {{ webhook = \"http://{target}/deploy\" }}\n\
         \n[[environments]]\nname = \"production\"\nversion = {{ url = \"http://{target}/version\" }}\n\
         deploy = {{ webhook = \"http://{target}/deploy\" }}\nmonitored = true\n",
        dir.path().join("s.db").display()
    );
    let cfg = Config::parse(&cfg, std::path::Path::new("<test>")).expect("config");
    let e = Engine::open(cfg).expect("engine");

    // A console: `status` every second, its engine polling the source
    // once a step and keeping the samples its health is judged from.
    let console = |secs: u64| {
        let e = &e;
        async move {
            let until = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < until {
                e.status().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    // Healthy traffic, then three seconds of a NaN counter, then healthy
    // again: the baseline of a window opened now holds the NaN steps.
    console(18).await;
    nan.store(true, Ordering::SeqCst);
    console(3).await;
    nan.store(false, Ordering::SeqCst);
    console(8).await;
    // A window past the detector's 30 s warm-up, so that it judges.
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        e.watch("production", Some(Duration::from_secs(40)), None),
    )
    .await
    .expect("the window ends")
    .expect("the window starts despite NaN steps in its baseline");
    let said = out
        .baseline
        .split("; ")
        .find(|p| p.contains("baseline steps unusable"))
        .unwrap_or_else(|| {
            panic!(
                "the baseline says its gaps: {}\nprometheus:\n{}",
                out.baseline,
                prom.log_tail()
            )
        });
    assert!(
        said.ends_with(
            " baseline steps unusable (NaN count: a requests or errors count that is no number)"
        ),
        "{said}"
    );
    assert_eq!(out.verdict.kind, VerdictKind::Healthy, "{:?}", out.verdict);
    eprintln!("window over a NaN baseline: {:?}; {said}", out.verdict.kind);

    // Healthy before the live read turns NaN: the console has judged
    // production from the samples it read, against its own baseline.
    console(2).await;
    let st = e.status().await;
    let p = &st.environments[1];
    assert_eq!(p.name, "production");
    assert_eq!(p.metrics_error, None, "{}", p.health_detail);
    assert_eq!(p.health, Health::Healthy, "{}", p.health_detail);

    // The live read NaN: named, never healthy.
    nan.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = e.status().await;
    let p = &st.environments[1];
    let err = p.metrics_error.clone().unwrap_or_default();
    assert!(
        err.contains("gives unusable numbers: the requests query") && err.contains("is NaN"),
        "{err:?}; health {:?}: {}",
        p.health,
        p.health_detail
    );
    // The steps read before it were fine, but they say nothing of now.
    assert_eq!(
        p.health,
        Health::Unknown,
        "a NaN read is no health: {}",
        p.health_detail
    );
    assert!(
        p.health_detail.contains("cannot be read now: ") && p.health_detail.contains("is NaN"),
        "{}",
        p.health_detail
    );
    eprintln!("status while NaN: {:?}: {}", p.health, p.health_detail);
    // Production's NaN is production's only: staging, read by the same
    // poll, is judged as usual, with its own point and no error.
    let s = &st.environments[0];
    assert_eq!(s.name, "staging");
    assert_eq!(s.metrics_error, None, "{}", s.health_detail);
    assert!(s.metrics.as_of.is_some(), "{:?}", s.metrics);
    assert_eq!(s.health, Health::Healthy, "{}", s.health_detail);
    // … and production shows no stale point beside its error.
    assert!(p.metrics.as_of.is_none(), "{:?}", p.metrics);
    // A window over the NaN read: no step, so gaps (three in a row, one
    // every two steps without a point: ~12 s), insufficient data — never
    // health — and the reason names the unusable number.
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        e.watch("production", Some(Duration::from_secs(24)), None),
    )
    .await
    .expect("the window ends")
    .expect("the window starts: its baseline has enough usable steps");
    assert_eq!(
        out.verdict.kind,
        VerdictKind::InsufficientData,
        "{:?}",
        out.verdict
    );
    assert!(
        out.verdict.reason.contains("gives unusable numbers"),
        "{:?}",
        out.verdict
    );
    eprintln!(
        "window over a NaN read: {:?}: {}",
        out.verdict.kind, out.verdict.reason
    );
    drop(prom);
}
