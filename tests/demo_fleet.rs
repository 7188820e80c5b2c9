//! The demo fleet over real HTTP on an ephemeral port, read by shipdeck's own
//! metrics backends.

use std::time::Duration;

use serde_json::{Value, json};
use shipdeck::backends::metrics::{MetricsError, ScrapeSource, exposition};
use shipdeck::demo::{self, FleetHandle, FleetOptions};

async fn fleet(opts: FleetOptions) -> FleetHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    demo::spawn(listener, opts).await.unwrap()
}

fn quick() -> FleetOptions {
    FleetOptions {
        seed: 42,
        deploy_duration: Duration::from_millis(600),
        tick: Duration::from_millis(100),
        ..FleetOptions::default()
    }
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn post(url: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Poll `url` until its JSON `field` reads `want` (generous deadline).
async fn wait_for_json(url: &str, field: &str, want: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = get_json(url).await;
        if body[field] == want {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url}: {field} never became {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn versions_and_a_deploy_round_trip() {
    // The deploy lasts long enough that the checks made while it runs
    // happen while it runs, however slow the machine.
    let f = fleet(FleetOptions {
        deploy_duration: Duration::from_secs(10),
        ..quick()
    })
    .await;
    let base = f.url();
    for (env, v) in demo::ENVIRONMENTS.iter().zip(demo::INITIAL_VERSIONS) {
        let (s, body) = get_json(&format!("{base}/envs/{env}/version")).await;
        assert_eq!((s, body), (200, json!({ "version": v })));
    }
    // The body shipdeck's deploy webhook sends: env and version.
    let (s, body) = post(
        &format!("{base}/envs/production/deploy"),
        r#"{"env":"production","version":"v1.8.0","note":"extra fields are ignored"}"#,
    )
    .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["from"], "v1.7.3");
    assert_eq!(body["version"], "v1.8.0");
    // A second deploy while the first runs is refused.
    let (s, body) = post(
        &format!("{base}/envs/production/deploy"),
        r#"{"version":"v1.8.1"}"#,
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("v1.8.0"), "{body}");
    // Until the deploy is done, the old version answers.
    let (_, body) = get_json(&format!("{base}/envs/production/version")).await;
    assert_eq!(body["version"], "v1.7.3");
    let (_, truth) = get_json(&format!("{base}/envs/production/truth")).await;
    assert_eq!(truth["deploying_to"], "v1.8.0");
    wait_for_json(
        &format!("{base}/envs/production/version"),
        "version",
        "v1.8.0",
    )
    .await;
    let (_, list) = get_json(&format!("{base}/envs")).await;
    assert_eq!(list["environments"][3]["name"], "production");
    assert_eq!(list["environments"][3]["version"], "v1.8.0");
    assert_eq!(list["environments"][3]["deploying_to"], Value::Null);
    // And another deploy may start now.
    let (s, _) = post(
        &format!("{base}/envs/production/deploy"),
        r#"{"version":"v1.7.3"}"#,
    )
    .await;
    assert_eq!(s, 202);
    f.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason() {
    let f = fleet(quick()).await;
    let base = f.url();
    let (s, body) = get_json(&format!("{base}/envs/qa/version")).await;
    assert_eq!(s, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown environment \"qa\""),
        "{body}"
    );
    let (s, _) = post(&format!("{base}/envs/qa/deploy"), r#"{"version":"v1"}"#).await;
    assert_eq!(s, 404);
    let cases = [
        ("not json", "invalid JSON body"),
        (r#"{"ver":"v1"}"#, "invalid JSON body"),
        (r#"{"version":18}"#, "invalid JSON body"),
        (r#"{"version":"v1; rm -rf /"}"#, "character ';'"),
        (r#"{"version":""}"#, "empty version"),
        (
            r#"{"env":"production","version":"v1.9.0"}"#,
            "names environment \"production\"",
        ),
    ];
    for (input, needle) in cases {
        let (s, body) = post(&format!("{base}/envs/staging/deploy"), input).await;
        assert_eq!(s, 400, "{input}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{input}: {msg}");
    }
    let (s, body) = get_json(&format!("{base}/nope")).await;
    assert_eq!(s, 404);
    assert!(body["error"].is_string());
    // Nothing was deployed by all that.
    let (_, body) = get_json(&format!("{base}/envs/staging/version")).await;
    assert_eq!(body["version"], "v1.8.0");
    f.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_guards_every_endpoint() {
    let f = fleet(FleetOptions {
        token: Some("t0ken".into()),
        ..quick()
    })
    .await;
    let base = f.url();
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{base}/envs/local/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = c
        .post(format!("{base}/envs/local/deploy"))
        .bearer_auth("wrong")
        .body(r#"{"version":"v2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .post(format!("{base}/envs/local/deploy"))
        .bearer_auth("t0ken")
        .body(r#"{"version":"v2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // The scrape source sends its token, and fails clearly without one.
    let with = ScrapeSource::new(
        &format!("{base}/metrics"),
        Duration::from_secs(2),
        Some("t0ken".into()),
    )
    .unwrap();
    assert!(with.scrape().await.is_ok());
    let without =
        ScrapeSource::new(&format!("{base}/metrics"), Duration::from_secs(2), None).unwrap();
    let e = without.scrape().await.unwrap_err();
    assert!(matches!(e, MetricsError::Status { status: 401, .. }), "{e}");
    assert!(!e.to_string().contains("t0ken"));
    f.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_parse_and_add_up() {
    let f = fleet(quick()).await;
    // Half a second of simulated traffic at least (the simulation's
    // ticker may run late on a loaded machine: poll for it).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let e = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = reqwest::get(format!("{}/metrics", f.url())).await.unwrap();
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = r.text().await.unwrap();
        let e = exposition::parse(&text).unwrap();
        let served: f64 = e
            .samples
            .iter()
            .filter(|s| s.name == "http_requests_total" && s.label("env") == Some("production"))
            .map(|s| s.value)
            .sum();
        if served > 20.0 {
            break e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "production served only {served} requests in a minute"
        );
    };
    assert_eq!(e.types["http_requests_total"], "counter");
    assert_eq!(e.types["http_request_duration_seconds"], "histogram");
    for env in demo::ENVIRONMENTS {
        let of = |name: &str| {
            e.samples
                .iter()
                .filter(|s| s.name == name && s.label("env") == Some(env))
                .collect::<Vec<_>>()
        };
        let requests: f64 = of("http_requests_total").iter().map(|s| s.value).sum();
        let codes: Vec<_> = of("http_requests_total")
            .iter()
            .filter_map(|s| s.label("code"))
            .collect();
        assert_eq!(codes, ["200", "404", "500", "503"]);
        let buckets = of("http_request_duration_seconds_bucket");
        assert_eq!(buckets.len(), 15);
        assert_eq!(buckets[0].label("le"), Some("0.005"));
        assert_eq!(buckets[14].label("le"), Some("+Inf"));
        assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
        let count = of("http_request_duration_seconds_count")[0].value;
        assert_eq!(buckets[14].value, count);
        assert_eq!(requests, count, "{env}");
        assert_eq!(of("http_request_duration_seconds_sum").len(), 1);
    }
    f.shutdown().await.unwrap();
}

#[tokio::test]
async fn scrape_source_steps_match_the_fleet_truth() {
    let f = fleet(quick()).await;
    let src = ScrapeSource::new(
        &format!("{}/metrics", f.url()),
        Duration::from_secs(2),
        None,
    )
    .unwrap();
    let mut labels: Vec<String> = demo::ENVIRONMENTS.iter().map(|s| s.to_string()).collect();
    labels.push("nowhere".into());
    let first = src.poll(&labels).await.unwrap();
    assert_eq!(first.len(), 5);
    assert!(
        first.values().all(Option::is_none),
        "the first poll has no step"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A label the exposition lacks while it serves others' is named (from
    // the second scrape on, when a rate could have been read); the other
    // labels read as usual.
    let polled = src.poll_tracked(&labels, &[]).await.unwrap();
    assert!(
        matches!(
            polled.errors.get("nowhere"),
            Some(MetricsError::NoSeries { label, .. }) if label == "nowhere"
        ),
        "{:?}",
        polled.errors
    );
    assert_eq!(polled.errors.len(), 1, "{:?}", polled.errors);
    let second = polled.points;
    let p = second["production"].clone().expect("a step");
    let truth = f.truth("production").unwrap();
    let rps = p.requests_per_s().unwrap();
    assert!(
        (rps / truth.traffic.requests_per_s - 1.0).abs() < 0.35,
        "{rps} req/s vs truth {}",
        truth.traffic.requests_per_s
    );
    assert!(p.error_rate().unwrap() < 0.03, "{p:?}");
    let p50 = p.p50_ms.unwrap();
    let p95 = p.p95_ms.unwrap();
    assert!((25.0..=60.0).contains(&p50), "p50 {p50}");
    assert!((80.0..=250.0).contains(&p95), "p95 {p95}");
    assert!(p.p99_ms.unwrap() >= p95);
    // Staging runs the bad release from the start.
    let s = second["staging"].clone().unwrap();
    assert!(
        s.p50_ms.unwrap() > 1.8 * p50,
        "staging p50 {:?} vs production {p50}",
        s.p50_ms
    );
    // A label the exposition does not have: an error above, no point.
    assert!(!second.contains_key("nowhere"));
    f.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_cache_gives_a_one_shot_caller_a_step() {
    let f = fleet(quick()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("scrape-cache.json");
    let url = format!("{}/metrics", f.url());
    let labels = vec!["production".to_string()];
    let one = ScrapeSource::new(&url, Duration::from_secs(2), None)
        .unwrap()
        .with_cache(&cache);
    assert!(one.poll(&labels).await.unwrap()["production"].is_none());
    // Keyed by the URL: `scrape-cache-<hash>.json` beside the name given.
    let file = one.cache_path().unwrap();
    assert!(
        file.is_file() && file.parent() == cache.parent(),
        "{file:?}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A new process (a new source) finds the previous scrape on disk.
    let two = ScrapeSource::new(&url, Duration::from_secs(2), None)
        .unwrap()
        .with_cache(&cache);
    let p = two.poll(&labels).await.unwrap()["production"]
        .clone()
        .expect("a step from the cache");
    // At least the pause; the upper bound only says it is this test's
    // previous scrape (a loaded machine may stretch the pause a lot).
    assert!(p.step_s >= 1.0 && p.step_s < 120.0, "{}", p.step_s);
    assert!(p.requests > 50.0, "{p:?}");
    f.shutdown().await.unwrap();
}

/// End to end through HTTP and the scrape source: the bad release turns
/// production bad within 30 s of going live; the good one does not.
#[tokio::test]
async fn the_bad_release_raises_production_errors_and_latency() {
    let f = fleet(FleetOptions {
        seed: 7,
        deploy_duration: Duration::from_millis(300),
        tick: Duration::from_millis(100),
        ..FleetOptions::default()
    })
    .await;
    let url = format!("{}/metrics", f.url());
    let src = ScrapeSource::new(&url, Duration::from_secs(2), None).unwrap();
    let labels = vec!["production".to_string()];
    src.poll(&labels).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = src.poll(&labels).await.unwrap()["production"]
        .clone()
        .unwrap();
    let (s, _) = post(
        &format!("{}/envs/production/deploy", f.url()),
        r#"{"version":"v1.8.0"}"#,
    )
    .await;
    assert_eq!(s, 202);
    tokio::time::sleep(Duration::from_secs(26)).await;
    assert_eq!(f.truth("production").unwrap().version, "v1.8.0");
    src.poll(&labels).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = src.poll(&labels).await.unwrap()["production"]
        .clone()
        .unwrap();
    let (e0, e1) = (before.error_rate().unwrap(), after.error_rate().unwrap());
    assert!(e1 > 0.05 && e1 > 4.0 * e0, "error rate {e0} -> {e1}");
    let (l0, l1) = (before.p50_ms.unwrap(), after.p50_ms.unwrap());
    assert!(l1 > 2.0 * l0, "p50 {l0} -> {l1}");
    assert_eq!(f.truth("production").unwrap().traffic.badness, 1.0);
    f.shutdown().await.unwrap();
}
