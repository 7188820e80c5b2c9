//! The metrics backends against small fake servers: every failure is typed
//! and named, and Prometheus' three states (value, no traffic, no data) stay apart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use shipdeck::backends::metrics::{MetricsError, MetricsSource, PrometheusSource, ScrapeSource};
use shipdeck::config::{MetricsConfig, MetricsSourceKind, QueryTemplates};
use shipdeck::domain::HumanDuration;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn scrape(url: String, timeout_ms: u64) -> ScrapeSource {
    ScrapeSource::new(&url, Duration::from_millis(timeout_ms), None).unwrap()
}

#[tokio::test]
async fn scrape_failures_are_typed_and_named() {
    let app = Router::new()
        .route("/garbage", get(|| async { "ok 1\nthis is { not\n" }))
        .route(
            "/boom",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "internal\nkaboom") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "up 1\n"
            }),
        )
        .route("/binary", get(|| async { vec![0xffu8, 0xfe, 0x00] }))
        .route("/huge", get(|| async { "# padding\n".repeat(3_500_000) }));
    let addr = serve(app).await;

    let e = scrape(format!("http://{addr}/garbage"), 2000)
        .scrape()
        .await
        .unwrap_err();
    assert!(matches!(e, MetricsError::Exposition { line: 2, .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "metrics source http://{addr}/garbage: malformed exposition: line 2:"
        )),
        "{e}"
    );

    let e = scrape(format!("http://{addr}/boom"), 2000)
        .scrape()
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("metrics source http://{addr}/boom answered HTTP 500: internal kaboom")
    );

    let started = std::time::Instant::now();
    let e = scrape(format!("http://{addr}/slow"), 300)
        .scrape()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            MetricsError::Timeout {
                timeout_ms: 300,
                ..
            }
        ),
        "{e}"
    );
    // Ended by the timeout, not by the answer (two minutes away).
    assert!(started.elapsed() < Duration::from_secs(60));

    let e = scrape(format!("http://{addr}/binary"), 2000)
        .scrape()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");

    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = ScrapeSource::new(
        &format!("http://user:pa55@{closed}/metrics?x=1"),
        Duration::from_secs(2),
        Some("sekret".into()),
    )
    .unwrap()
    .scrape()
    .await
    .unwrap_err();
    assert!(matches!(e, MetricsError::Unreachable { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "metrics source http://{closed}/metrics is unreachable: "
        )),
        "{msg}"
    );
    assert!(
        !msg.contains("pa55") && !msg.contains("sekret") && !msg.contains("x=1"),
        "{msg}"
    );
    assert!(
        msg.contains("cannot connect (") && msg.contains("refused"),
        "{msg}"
    );
    eprintln!("{msg}");

    let e = scrape(format!("http://{addr}/huge"), 5000)
        .scrape()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("larger than the 16 MiB cap"), "{e}");
}

/// A fake Prometheus answering by the environment named in the query.
async fn fake_prometheus(Query(q): Query<HashMap<String, String>>) -> Response {
    let query = q.get("query").cloned().unwrap_or_default();
    let time: f64 = q.get("time").and_then(|t| t.parse().ok()).unwrap_or(0.0);
    let vector = |v: &str| {
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{time},"{v}"]}}]}}}}"#
        )
    };
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_string();
    let latency = query.starts_with("histogram_quantile");
    let errors = query.contains("5..");
    let body = if query.contains(r#"env="prod""#) {
        if latency {
            let q = if query.contains("(0.5,") {
                "0.04"
            } else if query.contains("(0.95,") {
                "0.12"
            } else {
                "0.25"
            };
            vector(q)
        } else if errors {
            vector("12")
        } else {
            vector("1200")
        }
    } else if query.contains(r#"env="idle""#) {
        if latency {
            vector("NaN")
        } else if errors {
            empty
        } else {
            vector("0")
        }
    } else if query.contains(r#"env="garbage""#) {
        // A NaN counter behind the requests query; NaN quantiles are fine.
        if latency {
            vector("NaN")
        } else if errors {
            vector("+Inf")
        } else {
            vector("NaN")
        }
    } else if query.contains(r#"env="broken""#) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#,
        )
            .into_response();
    } else {
        empty
    };
    ([("content-type", "application/json")], body).into_response()
}

async fn fake_range(Query(q): Query<HashMap<String, String>>) -> Response {
    let query = q.get("query").cloned().unwrap_or_default();
    let series = if query.contains(r#"env="garbage""#) {
        // A NaN counter at one step of the range; NaN quantiles are fine.
        if query.starts_with("histogram_quantile") {
            r#"[[1000,"NaN"],[1010,"NaN"],[1020,"NaN"]]"#
        } else if query.contains("5..") {
            r#"[[1020,"1"]]"#
        } else {
            r#"[[1000,"100"],[1010,"NaN"],[1020,"140"]]"#
        }
    } else if query.contains(r#"env="garbage-errors""#) {
        if query.contains("5..") {
            r#"[[1010,"+Inf"]]"#
        } else {
            r#"[[1000,"100"],[1010,"90"],[1020,"140"]]"#
        }
    } else if query.starts_with("histogram_quantile") {
        if query.contains("(0.95,") {
            r#"[[1000,"0.1"],[1020,"0.3"]]"#
        } else {
            r#"[[1000,"0.05"],[1010,"NaN"],[1020,"0.06"]]"#
        }
    } else if query.contains("5..") {
        r#"[[1020,"7"]]"#
    } else {
        r#"[[1000,"100"],[1010,"0"],[1020,"140"]]"#
    };
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":{series}}}]}}}}"#
    );
    ([("content-type", "application/json")], body).into_response()
}

fn prometheus_config(url: String) -> MetricsConfig {
    MetricsConfig {
        source: MetricsSourceKind::Prometheus,
        url,
        step: HumanDuration::from_secs(10),
        timeout: HumanDuration::from_secs(2),
        token_env: None,
        queries: QueryTemplates::default(),
    }
}

#[tokio::test]
async fn prometheus_answers_map_to_points() {
    let app = Router::new()
        .route("/api/v1/query", get(fake_prometheus))
        .route("/api/v1/query_range", get(fake_range));
    let addr = serve(app).await;
    let src = MetricsSource::from_config(&prometheus_config(format!("http://{addr}/"))).unwrap();
    assert_eq!(src.describe(), format!("prometheus http://{addr}"));
    let labels: Vec<String> = ["prod", "idle", "gone"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let got = src.poll(&labels).await.unwrap();
    let p = got["prod"].clone().unwrap();
    assert_eq!((p.requests, p.errors, p.step_s), (1200.0, 12.0, 10.0));
    assert_eq!(p.error_rate(), Some(0.01));
    assert_eq!(p.requests_per_s(), Some(120.0));
    assert_eq!(
        (p.p50_ms, p.p95_ms, p.p99_ms),
        (Some(40.0), Some(120.0), Some(250.0))
    );
    // Stamped with the poll's time (generous: a loaded machine may pause
    // between the poll and this line).
    assert!((Utc::now() - p.at).num_seconds().abs() < 120);
    // No traffic: zero requests, no 5xx series at all, NaN quantiles.
    let idle = got["idle"].clone().unwrap();
    assert_eq!(
        (idle.requests, idle.errors, idle.p95_ms, idle.error_rate()),
        (0.0, 0.0, None, None)
    );
    // No data at all.
    assert_eq!(got["gone"], None);

    // NaN requests are the source's garbage, not "no traffic".
    let e = src.poll(&["garbage".to_string()]).await.unwrap_err();
    assert!(matches!(e, MetricsError::Unusable { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            r#"metrics source http://{addr}/api/v1/query gives unusable numbers: the requests query sum(increase(http_requests_total{{env="garbage"}}[10s])) is NaN, which no count can be"#
        )
    );

    let e = src.poll(&["broken".to_string()]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Prometheus http://{addr}/api/v1/query refused the query (execution): many-to-many matching not allowed"
        )
    );

    // One label's failure is that label's own: the others still read
    // (`poll` above answers the first failure, in the order asked).
    let asked: Vec<String> = ["garbage", "prod", "broken"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let polled = src.poll_tracked(&asked, &[]).await.unwrap();
    assert_eq!(polled.points["prod"].as_ref().unwrap().requests, 1200.0);
    assert!(!polled.points.contains_key("garbage"), "{polled:?}");
    assert!(
        matches!(polled.errors["garbage"], MetricsError::Unusable { .. }),
        "{polled:?}"
    );
    assert!(
        matches!(polled.errors["broken"], MetricsError::Query { .. }),
        "{polled:?}"
    );
    assert!(!polled.errors.contains_key("prod"));

    let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
    let h = src
        .history("prod", t(1000), t(1020), Duration::from_secs(10))
        .await
        .unwrap()
        .expect("Prometheus keeps history");
    assert_eq!(h.len(), 3);
    assert_eq!(
        h.iter().map(|p| p.at.timestamp()).collect::<Vec<_>>(),
        [1000, 1010, 1020]
    );
    assert_eq!(
        h.iter().map(|p| p.requests).collect::<Vec<_>>(),
        [100.0, 0.0, 140.0]
    );
    assert_eq!(
        h.iter().map(|p| p.errors).collect::<Vec<_>>(),
        [0.0, 0.0, 7.0]
    );
    assert_eq!(
        h.iter().map(|p| p.p50_ms).collect::<Vec<_>>(),
        [Some(50.0), None, Some(60.0)]
    );
    assert_eq!(
        h.iter().map(|p| p.p95_ms).collect::<Vec<_>>(),
        [Some(100.0), None, Some(300.0)]
    );

    // Over a range, unlike live: a step whose count is no number is a gap
    // of the history (NaN counts, no figures), never "no traffic" and never
    // the end of the read — in the baseline's history and in the seasonal
    // (offset) reads alike.
    let h = src
        .history("garbage", t(1000), t(1020), Duration::from_secs(10))
        .await
        .unwrap()
        .expect("history");
    assert_eq!(
        h.iter()
            .map(|p| (p.at.timestamp(), p.is_gap()))
            .collect::<Vec<_>>(),
        [(1000, false), (1010, true), (1020, false)]
    );
    assert_eq!(
        (h[0].requests, h[2].requests, h[2].errors),
        (100.0, 140.0, 1.0)
    );
    let h = src
        .history("garbage-errors", t(1000), t(1020), Duration::from_secs(10))
        .await
        .unwrap()
        .expect("history");
    assert_eq!(
        h.iter().map(|p| p.is_gap()).collect::<Vec<_>>(),
        [false, true, false]
    );
    let day = 86_400;
    let r = src
        .seasonal_reference(
            "garbage",
            &[(t(1000 + day), t(1020 + day))],
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .expect("reference");
    assert_eq!(r.unusable, 2, "one step of each offset: {r:?}");
    assert!(
        r.describe()
            .ends_with("(2 of its steps unusable: a count that is no number, left out)"),
        "{}",
        r.describe()
    );
    assert_eq!(r.requests_at(t(1000 + day)), Some(100.0));
    assert_eq!(r.requests_at(t(1010 + day)), None);
    // A range whose quantiles are NaN (no traffic to measure) is no
    // latency data, not an error.
    let ok = src
        .seasonal_reference(
            "prod",
            &[(t(1000 + day), t(1020 + day))],
            Duration::from_secs(10),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn prometheus_transport_failures() {
    // Wrong base path: Prometheus' plain-text 404.
    let app = Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") });
    let addr = serve(app).await;
    let src = PrometheusSource::new(
        &format!("http://{addr}/prom"),
        Duration::from_secs(10),
        Duration::from_secs(2),
        None,
        QueryTemplates::default(),
    )
    .unwrap();
    let e = src.poll(&["prod".to_string()]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "metrics source http://{addr}/prom/api/v1/query answered HTTP 404: 404 page not found"
        )
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let src = MetricsSource::from_config(&prometheus_config(format!("http://{closed}"))).unwrap();
    let e = src.poll(&["prod".to_string()]).await.unwrap_err();
    assert!(matches!(e, MetricsError::Unreachable { .. }), "{e}");
    let e = src
        .history(
            "prod",
            Utc::now() - chrono::Duration::minutes(5),
            Utc::now(),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, MetricsError::Unreachable { .. }), "{e}");
}

#[tokio::test]
async fn scrape_keeps_no_history_and_tokens_come_from_the_environment() {
    let mut cfg = prometheus_config("http://127.0.0.1:9/metrics".into());
    cfg.source = MetricsSourceKind::Scrape;
    let src = MetricsSource::from_config(&cfg).unwrap();
    let h = src
        .history(
            "prod",
            Utc::now() - chrono::Duration::minutes(5),
            Utc::now(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(h, None);
    cfg.token_env = Some("SHIPDECK_TEST_SURELY_UNSET_TOKEN".into());
    let e = MetricsSource::from_config(&cfg).unwrap_err();
    assert_eq!(
        e.to_string(),
        "metrics config: token_env names SHIPDECK_TEST_SURELY_UNSET_TOKEN, which is not set"
    );
}

/// A source whose counters are NaN or infinite is named as unusable, with
/// the sample, rather than read as an environment without traffic; other
/// labels of the same exposition are still read.
#[tokio::test]
async fn scrape_counters_that_are_no_numbers_are_named_not_read_as_silence() {
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let n = served.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let n = n.clone();
            async move {
                let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) * 10;
                format!(
                    "http_requests_total{{env=\"prod\",code=\"200\"}} NaN\n\
                     http_request_duration_seconds_count{{env=\"stage\"}} +Inf\n\
                     http_requests_total{{env=\"ok\",code=\"200\"}} {i}\n"
                )
            }
        }),
    );
    let addr = serve(app).await;
    let src = scrape(format!("http://{addr}/metrics"), 5000);
    for (label, metric, value) in [
        (
            "prod",
            r#"http_requests_total{env="prod",code="200"}"#,
            "NaN",
        ),
        (
            "stage",
            r#"http_request_duration_seconds_count{env="stage"}"#,
            "inf",
        ),
    ] {
        let e = src.poll(&[label.to_string()]).await.unwrap_err();
        assert!(matches!(e, MetricsError::Unusable { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "metrics source http://{addr}/metrics gives unusable numbers: {metric} is {value}, which no count can be"
            )
        );
    }
    // The label with real counters still gets its step.
    let ok = ["ok".to_string()];
    src.poll(&ok).await.unwrap();
    let p = src.poll(&ok).await.unwrap()["ok"].clone().unwrap();
    assert_eq!(p.requests, 10.0);
}

/// A Prometheus whose `nanbase` history has one step with a NaN requests
/// count (the third step of any range of ten or more), `nanmost` every
/// step but two, and whose live answers are healthy and steady.
async fn nan_history(Query(q): Query<HashMap<String, String>>) -> Response {
    let query = q.get("query").cloned().unwrap_or_default();
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let (start, end, step) = (num("start"), num("end"), num("step").max(0.001));
    let n = ((end - start) / step).round() as i64 + 1;
    let most = query.contains(r#"env="nanmost""#);
    let values: Vec<String> = (0..n)
        .map(|i| {
            let t = start + i as f64 * step;
            let v = if query.starts_with("histogram_quantile") {
                "0.1".to_string()
            } else if query.contains("5..") {
                "2".to_string()
            } else if (most && i >= 2) || (!most && n >= 10 && i == 2) {
                "NaN".to_string()
            } else {
                "1000".to_string()
            };
            format!(r#"[{t:.3},"{v}"]"#)
        })
        .collect();
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
        values.join(",")
    );
    ([("content-type", "application/json")], body).into_response()
}

async fn steady_now(Query(q): Query<HashMap<String, String>>) -> Response {
    let query = q.get("query").cloned().unwrap_or_default();
    let time: f64 = q.get("time").and_then(|t| t.parse().ok()).unwrap_or(0.0);
    let v = if query.starts_with("histogram_quantile") {
        "0.1"
    } else if query.contains("5..") {
        "2"
    } else {
        "1000"
    };
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{time},"{v}"]}}]}}}}"#
    );
    ([("content-type", "application/json")], body).into_response()
}

/// One NaN count in the history before a deploy is a gap of the baseline,
/// said in its description: the monitoring window still starts and judges
/// (before, the whole read failed and `watch` returned before it began).
/// Only when such gaps leave fewer usable steps than the detector needs is
/// the baseline unusable — and a NaN in the live read stays an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nan_count_in_the_baseline_is_a_gap_and_the_window_still_judges() {
    use shipdeck::config::Config;
    use shipdeck::engine::{Engine, EngineError};
    use shipdeck::monitor::VerdictKind;

    let app = Router::new()
        .route("/api/v1/query", get(steady_now))
        .route("/api/v1/query_range", get(nan_history))
        .route("/version", get(|| async { r#"{"version": "v1"}"# }))
        .route("/deploy", axum::routing::post(|| async { "{}" }));
    let a = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = format!(
        "project = \"nan\"\n[store]\npath = \"{}\"\n[metrics]\nsource = \"prometheus\"\nurl = \"http://{a}\"\nstep = \"1s\"\n\
         [monitor]\nbaseline = \"30s\"\n",
        dir.path().join("s.db").display()
    );
    for env in ["nanbase", "nanmost"] {
        s.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/version\" }}\n\
             deploy = {{ webhook = \"http://{a}/deploy\" }}\nmonitored = true\n"
        ));
    }
    let cfg = Config::parse(&s, std::path::Path::new("<test>")).unwrap();
    let e = Engine::open(cfg).unwrap();

    let out = tokio::time::timeout(
        Duration::from_secs(120),
        e.watch("nanbase", Some(Duration::from_secs(4)), None),
    )
    .await
    .expect("the window ends")
    .expect("the window starts despite a NaN step in its baseline");
    // "…; 1 of 30 baseline steps unusable (NaN count: …)" (30 or 31 steps,
    // as the range falls on the clock).
    let said = out
        .baseline
        .split("; ")
        .find(|p| p.contains("baseline steps unusable"))
        .unwrap_or_else(|| panic!("the baseline says its gap: {}", out.baseline));
    assert!(
        said.starts_with("1 of 3")
            && said.ends_with(
                " baseline steps unusable (NaN count: a requests or errors count that is no number)"
            ),
        "{said}"
    );
    assert_ne!(
        out.verdict.kind,
        VerdictKind::Regression,
        "{:?}",
        out.verdict
    );
    assert!(out.rolled_back.is_none() && out.rollback_error.is_none());

    // Gaps leaving too few usable steps: the baseline cannot be judged
    // against, and the error says why (the detector's minimum, 5).
    let err = e
        .watch("nanmost", Some(Duration::from_secs(4)), None)
        .await
        .expect_err("2 usable steps are no baseline");
    match &err {
        EngineError::NoBaseline { env, why, .. } => assert!(
            env == "nanmost"
                && why.contains("baseline steps unusable (NaN count")
                && why.contains(" usable, fewer than the 5 a judgement needs"),
            "{err}"
        ),
        other => panic!("{other:?}"),
    }
    // It names the source, and waiting does not heal it: the data is to fix.
    assert!(
        err.to_string()
            .contains(&format!("from prometheus http://{a} is unusable")),
        "{err}"
    );
    assert_eq!(
        shipdeck::engine::rewatch::Cause::of(&err),
        shipdeck::engine::rewatch::Cause::Metrics(shipdeck::backends::metrics::MetricsFix::Data)
    );
}

/// A fake Prometheus for the poll's concurrency: it counts the requests in
/// flight (and the most at once), never answers for the environment
/// `slow`, and holds every `meet*` environment's answer until all
/// `MEET` of them have been asked — which only a poll asking its labels
/// at once gets through.
#[derive(Default)]
struct Concurrency {
    arrived: std::sync::Mutex<std::collections::HashSet<String>>,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

const MEET: usize = 3;

/// Counts a request out of flight when its handler ends or is dropped.
struct InFlight(std::sync::Arc<Concurrency>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn concurrency_prometheus(
    axum::extract::State(f): axum::extract::State<std::sync::Arc<Concurrency>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    let now = f.in_flight.fetch_add(1, SeqCst) + 1;
    f.most.fetch_max(now, SeqCst);
    let _out = InFlight(f.clone());
    let query = q.get("query").cloned().unwrap_or_default();
    let time: f64 = q.get("time").and_then(|t| t.parse().ok()).unwrap_or(0.0);
    let env = query
        .split_once("env=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(env, _)| env.to_string())
        .unwrap_or_default();
    if env == "slow" {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if env.starts_with("lag") {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if env.starts_with("meet") {
        f.arrived.lock().unwrap().insert(env.clone());
        while f.arrived.lock().unwrap().len() < MEET {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let v = if query.starts_with("histogram_quantile") {
        "0.05"
    } else if query.contains("5..") {
        "1"
    } else {
        "100"
    };
    (
        [("content-type", "application/json")],
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{time},"{v}"]}}]}}}}"#
        ),
    )
        .into_response()
}

/// A poll asks its labels' and tracks' reads at once, at most
/// `POLL_CONCURRENCY` reads (five queries each) in flight; each label keeps
/// its own error and the results stay by label; a label that does not
/// answer holds none of the others back past the poll's deadline (its
/// timeout): they come back with their points, it with its own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_labels_are_polled_at_once_and_a_slow_one_holds_none_back() {
    use shipdeck::backends::metrics::TrackSelector;
    use shipdeck::backends::metrics::prometheus::POLL_CONCURRENCY;
    use std::sync::atomic::Ordering::SeqCst;

    let fake = std::sync::Arc::new(Concurrency::default());
    let app = Router::new()
        .route("/api/v1/query", get(concurrency_prometheus))
        .with_state(fake.clone());
    let addr = serve(app).await;
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Each meet* label is answered only once all of them were asked:
    // asked one after another, the first would wait out its timeout (20 s).
    let mut cfg = prometheus_config(format!("http://{addr}"));
    cfg.timeout = HumanDuration::from_secs(20);
    let src = MetricsSource::from_config(&cfg).unwrap();
    let meet = names(&["meet0", "meet1", "meet2"]);
    let polled = src.poll_tracked(&meet, &[]).await.unwrap();
    assert!(polled.errors.is_empty(), "{:?}", polled.errors);
    for l in &meet {
        assert_eq!(polled.points[l].as_ref().unwrap().requests, 100.0, "{l}");
    }

    // Ten labels, a track pair and one that never answers, with a 3 s
    // timeout: the poll ends at its deadline, not an hour later, with every
    // other label's point and the slow one's own timeout naming the source.
    let mut cfg = prometheus_config(format!("http://{addr}"));
    cfg.timeout = HumanDuration::from_secs(3);
    let src = MetricsSource::from_config(&cfg).unwrap();
    fake.most.store(0, SeqCst);
    let mut labels = names(&["slow"]);
    labels.extend((0..10).map(|i| format!("fast{i}")));
    let tracks = vec![TrackSelector {
        env: "fast3".into(),
        label: "track".into(),
    }];
    let began = std::time::Instant::now();
    let polled = tokio::time::timeout(Duration::from_secs(600), src.poll_tracked(&labels, &tracks))
        .await
        .expect("the slow label does not hold the poll")
        .expect("one label's timeout is that label's own");
    assert!(
        began.elapsed() < Duration::from_secs(300),
        "{:?}",
        began.elapsed()
    );
    for l in &labels[1..] {
        let p = polled.points[l].as_ref().unwrap();
        assert_eq!(
            (p.requests, p.errors, p.p95_ms),
            (100.0, 1.0, Some(50.0)),
            "{l}"
        );
        assert!(!polled.errors.contains_key(l), "{l}: {:?}", polled.errors);
    }
    let t = &polled.tracks[&tracks[0]];
    assert!(t.canary.is_some() && t.stable.is_some(), "{t:?}");
    assert!(!polled.points.contains_key("slow"), "{polled:?}");
    let e = &polled.errors["slow"];
    assert!(matches!(e, MetricsError::Timeout { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("metrics source http://{addr}/api/v1/query did not answer within 3000 ms")
    );
    // Bounded: never more than POLL_CONCURRENCY reads of five queries in
    // flight (the slow label's five included).
    let most = fake.most.load(SeqCst);
    assert!(most <= POLL_CONCURRENCY * 5, "{most} requests at once");

    // Twenty labels each answered after 1 s, four reads at a time: five
    // waves, longer than one 4 s timeout but within the 10 s step. Each
    // read has its timeout from when it begins: none times out for having
    // waited its turn.
    let mut cfg = prometheus_config(format!("http://{addr}"));
    cfg.timeout = HumanDuration::from_secs(4);
    let src = MetricsSource::from_config(&cfg).unwrap();
    let lag: Vec<String> = (0..20).map(|i| format!("lag{i}")).collect();
    let polled = src.poll_tracked(&lag, &[]).await.unwrap();
    assert!(polled.errors.is_empty(), "{:?}", polled.errors);
    assert_eq!(polled.points.len(), lag.len());

    // `poll` answers the first failed label in the order asked.
    let e = src
        .poll(&names(&["fast0", "slow", "fast1"]))
        .await
        .unwrap_err();
    assert!(matches!(e, MetricsError::Timeout { .. }), "{e}");
}

/// An environment whose label the exposition lacks while it has others'
/// (`prod` configured, the service labels `production`) is named as such
/// on every read from the second (the first reads no rate for any label),
/// never read as an environment without traffic; an
/// exposition without any env's series (a service no request reached yet)
/// is still silence.
#[tokio::test]
async fn scrape_names_an_env_label_the_exposition_lacks() {
    let app = Router::new()
        .route(
            "/metrics",
            get(|| async {
                "http_requests_total{env=\"production\",code=\"200\"} 10\n\
                 http_requests_total{env=\"staging\",code=\"200\"} 3\n"
            }),
        )
        .route("/idle", get(|| async { "process_cpu_seconds_total 1\n" }));
    let addr = serve(app).await;
    let src = scrape(format!("http://{addr}/metrics"), 5000);
    // The first scrape reads no rate for any label: warming up, as ever.
    assert_eq!(src.poll(&["prod".to_string()]).await.unwrap()["prod"], None);
    for _ in 0..2 {
        let e = src.poll(&["prod".to_string()]).await.unwrap_err();
        assert!(matches!(e, MetricsError::NoSeries { .. }), "{e}");
        // Traffic may yet reach it: no lasting failure of the source.
        assert!(e.heals_by_waiting(), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "metrics source http://{addr}/metrics has no series labelled env=\"prod\" (it has env=\"production\", \"staging\"): the environment's name or metrics_label may not match, or no request has reached it yet"
            )
        );
    }
    // The labels it has read as before.
    let polled = src
        .poll_tracked(&["production".to_string(), "prod".to_string()], &[])
        .await
        .unwrap();
    assert_eq!(polled.points["production"].as_ref().unwrap().requests, 0.0);
    assert!(matches!(
        polled.errors["prod"],
        MetricsError::NoSeries { .. }
    ));
    let idle = scrape(format!("http://{addr}/idle"), 5000);
    for _ in 0..2 {
        assert_eq!(
            idle.poll(&["prod".to_string()]).await.unwrap()["prod"],
            None
        );
    }
}

/// Prometheus' `query_range`, with its limit: more than 11,000 points per
/// series is refused (400 `bad_data`, its own words); else one series of
/// a steady count at every step.
async fn limited_range(Query(q): Query<HashMap<String, String>>) -> Response {
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let (start, end, step) = (num("start"), num("end"), num("step").max(0.001));
    let n = ((end - start) / step).floor() as i64 + 1;
    if n > 11_000 {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#,
        )
            .into_response();
    }
    let query = q.get("query").cloned().unwrap_or_default();
    let v = if query.starts_with("histogram_quantile") {
        "0.1"
    } else if query.contains("5..") {
        "2"
    } else {
        "100"
    };
    let values: Vec<String> = (0..n)
        .map(|i| format!(r#"[{:.3},"{v}"]"#, start + i as f64 * step))
        .collect();
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
        values.join(",")
    );
    ([("content-type", "application/json")], body).into_response()
}

/// A baseline longer than 11,000 steps (`[monitor] baseline = "1d"` at
/// 2 s steps: 43,200) is read in pieces under Prometheus' limit. Asked
/// at once it was refused as `bad_data`, and every window failed telling
/// to fix `[metrics.queries]`.
#[tokio::test]
async fn a_history_longer_than_prometheus_resolution_limit_is_read_in_pieces() {
    let app = Router::new().route("/api/v1/query_range", get(limited_range));
    let addr = serve(app).await;
    let mut cfg = prometheus_config(format!("http://{addr}"));
    cfg.step = HumanDuration::from_secs(2);
    let src = MetricsSource::from_config(&cfg).unwrap();
    let end = DateTime::from_timestamp(1_796_000_000, 0).unwrap();
    let start = end - chrono::Duration::days(1);
    let points = src
        .history("prod", start, end, Duration::from_secs(2))
        .await
        .expect("a day at 2 s steps is read")
        .expect("Prometheus has a history");
    assert_eq!(points.len(), 43_201);
    // Every step once, in order, with its figures: no piece overlaps or
    // leaves a step out.
    assert!(
        points
            .windows(2)
            .all(|w| (w[1].at - w[0].at).num_seconds() == 2)
    );
    assert_eq!((points[0].at, points[43_200].at), (start, end));
    assert!(
        points
            .iter()
            .all(|p| (p.requests, p.errors, p.p95_ms) == (100.0, 2.0, Some(100.0)))
    );
}
