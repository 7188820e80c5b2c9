//! Render benchmark (issue 3): one full frame at 200×50 with both live
//! charts fed by a full 30-minute baseline and window at one-second steps,
//! drawn into a `TestBackend`. Prints median and p90 next to the 1 ms budget.
//!
//! `cargo bench --bench render`

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use shipdeck::domain::{EnvState, Gate, GateSeverity, Health, PromotionPlan, Version};
use shipdeck::engine::{EnvStatus, Event, MetricsSnapshot, Status};
use shipdeck::monitor::{Band, BaselineSummary, Sample, Verdict, VerdictKind};
use shipdeck::tui::{Msg, Settings, State, Theme, update, view};

const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;
const WARMUP: usize = 50;
const RUNS: usize = 1000;
const BUDGET_US: f64 = 1000.0;

fn v(s: &str) -> Version {
    Version::parse(s).expect("valid version")
}

fn env(name: &str, version: &str, now: DateTime<Utc>, k: usize) -> EnvStatus {
    EnvStatus {
        name: name.into(),
        production: name == "production",
        monitored: name == "production",
        version: Some(v(version)),
        version_error: None,
        health: Health::Healthy,
        health_detail: "error rate 0.30%: in line with its own last 30m".into(),
        health_basis: shipdeck::domain::health::Comparison::OwnBaseline,
        warm_up: None,
        reachable: true,
        checked_at: now,
        state: EnvState::Idle,
        state_since: None,
        watcher: None,
        unwatched: false,
        drift: None,
        rollback: None,
        metrics: MetricsSnapshot {
            error_rate: Some(0.003 * (k + 1) as f64),
            p50_ms: Some(41.0),
            p95_ms: Some(120.0),
            p99_ms: Some(230.0),
            requests_per_s: Some(20.0),
            as_of: Some(now),
        },
        metrics_error: None,
        metrics_note: None,
        lock_lost: None,
        approval: None,
        last_deploy: None,
        deploy_url: None,
        go_refusal: None,
        promotion: Some(PromotionPlan {
            from: Some("staging".into()),
            to: name.into(),
            version: v("v1.8.0"),
            current: Some(v(version)),
            skips: vec![],
            gates: vec![
                Gate {
                    name: "ci".into(),
                    ok: true,
                    detail: "checks passed".into(),
                    severity: GateSeverity::Block,
                },
                Gate {
                    name: "window".into(),
                    ok: false,
                    detail: "outside the low-traffic window".into(),
                    severity: GateSeverity::Warn,
                },
            ],
            evidence: Default::default(),
        }),
        promotion_error: None,
        unsettled: None,
        canary: None,
        release: None,
        rollback_schema: None,
        schema_ahead: None,
        freeze: None,
        revert: Default::default(),
        last_window: None,
    }
}

fn sample(t: f64) -> Sample {
    // Deterministic wobble; a regression after two minutes.
    let w = ((t as i64 * 7919).rem_euclid(13)) as f64 / 13.0;
    let bad = if t > 120.0 { 3.0 } else { 1.0 };
    Sample {
        t,
        requests: 20.0,
        errors: (0.06 * bad * w * 20.0).round(),
        p50_ms: Some((40.0 + 5.0 * w) * bad),
        p95_ms: Some((120.0 + 20.0 * w) * bad),
        p99_ms: Some((230.0 + 40.0 * w) * bad),
    }
}

fn main() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 20, 0, 0).unwrap();
    let mut state = State::new(Settings::default(), Theme::dark(), now);
    let status = Status {
        project: "shop".into(),
        generated_at: now,
        actor: "bench".into(),
        environments: ["local", "development", "staging", "production"]
            .iter()
            .enumerate()
            .map(|(k, n)| env(n, "v1.7.3", now, k))
            .collect(),
        pending: None,
        pending_unknown: None,
        store_error: None,
        store_unreachable_since: None,
        integrity: None,
        watching: Vec::new(),
    };
    update(&mut state, Msg::Tick(now));
    update(&mut state, Msg::StatusLoaded(Ok(status)));

    let deploy_at = now - Duration::seconds(1800);
    let band = |c: f64| Band {
        center: c,
        low: c * 0.9,
        high: c * 1.1,
        threshold: Some(c * 2.0),
    };
    update(
        &mut state,
        Msg::Engine(Event::MonitorStarted {
            env: "production".into(),
            version: v("v1.8.0"),
            deploy_at,
            window_s: 1800.0,
            baseline: (0..1800).map(|i| sample(-1799.0 + i as f64)).collect(),
            baseline_note: "baseline: 30m before the deploy (1800 steps)".into(),
        }),
    );
    for t in 1..=1800 {
        update(
            &mut state,
            Msg::Engine(Event::MonitorSample {
                env: "production".into(),
                sample: sample(t as f64),
                verdict: Verdict {
                    kind: VerdictKind::Healthy,
                    metric: None,
                    detected_at: None,
                    reason: "within the baseline band".into(),
                },
                baseline: BaselineSummary {
                    error_rate: Some(band(0.003)),
                    p50_ms: Some(band(42.0)),
                    p95_ms: Some(band(125.0)),
                    p99_ms: Some(band(240.0)),
                    requests: None,
                },
            }),
        );
    }

    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("test backend");
    let mut times: Vec<StdDuration> = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let start = Instant::now();
        terminal
            .draw(|f| {
                view::draw(&state, f);
            })
            .expect("draw into the test backend");
        let took = start.elapsed();
        if i >= WARMUP {
            times.push(took);
        }
    }
    // The frame really holds both charts.
    let text = format!("{}", terminal.backend());
    assert!(text.contains("Error rate") && text.contains("Latency"));

    times.sort();
    let us = |d: StdDuration| d.as_secs_f64() * 1e6;
    let median = us(times[times.len() / 2]);
    let p90 = us(times[times.len() * 9 / 10]);
    println!(
        "render {WIDTH}x{HEIGHT}, live charts over 3600 samples: median {median:.0} µs, p90 {p90:.0} µs (budget {BUDGET_US:.0} µs) — {}",
        if p90 <= BUDGET_US {
            "within budget"
        } else {
            "OVER BUDGET"
        }
    );
}
