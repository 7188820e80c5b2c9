//! Hand-made traces for every case the detector must catch or ignore.

use super::*;
use crate::monitor::eval::rng::Rng;

/// What the service does at time `t` (seconds from the deploy).
#[derive(Clone, Copy)]
struct At {
    traffic: f64,
    err: f64,
    lat: [f64; 3],
    gap: bool,
}

fn normal() -> At {
    At {
        traffic: 1.0,
        err: 1.0,
        lat: [1.0; 3],
        gap: false,
    }
}

/// A hand-made trace: `rps` req/s with overdispersed counts, base error
/// rate `p`, p50/p95/p99 of 40/120/250 ms with per-step noise that grows
/// at low traffic; `f` modifies each step.
fn sim(
    seed: u64,
    rps: f64,
    p: f64,
    dt: f64,
    nb: usize,
    nw: usize,
    f: impl Fn(f64) -> At,
) -> Vec<Sample> {
    let mut r = Rng::new(seed);
    (0..nb + nw)
        .map(|i| {
            let t = (i as f64 - nb as f64 + 1.0) * dt;
            let a = f(t);
            if a.gap {
                return Sample {
                    t,
                    requests: f64::NAN,
                    errors: f64::NAN,
                    p50_ms: None,
                    p95_ms: None,
                    p99_ms: None,
                };
            }
            let n = r.neg_binomial(rps * dt * a.traffic, 0.1);
            let rate = (p * a.err).min(1.0) * r.gamma_factor(0.3);
            let e = r.poisson(n * rate).min(n);
            let q = |r: &mut Rng, base: f64, k: usize, se: f64| {
                let se = (se / n.max(1.0).sqrt()).min(0.5) + 0.03;
                Some(base * a.lat[k] * (se * r.normal()).exp())
            };
            let (p50_ms, p95_ms, p99_ms) = if n > 0.0 {
                (
                    q(&mut r, 40.0, 0, 0.6),
                    q(&mut r, 120.0, 1, 1.2),
                    q(&mut r, 250.0, 2, 2.0),
                )
            } else {
                (None, None, None)
            };
            Sample {
                t,
                requests: n,
                errors: e,
                p50_ms,
                p95_ms,
                p99_ms,
            }
        })
        .collect()
}

fn run(samples: &[Sample], cfg: DetectorConfig) -> Verdict {
    let mut d = Detector::new(cfg);
    for s in samples {
        d.push(*s);
    }
    d.verdict().clone()
}

fn std_trace(seed: u64, rps: f64, f: impl Fn(f64) -> At) -> Vec<Sample> {
    sim(seed, rps, 0.005, 10.0, 180, 180, f)
}

fn assert_regression(v: &Verdict, metric: Metric, by: f64) {
    assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
    assert_eq!(v.metric, Some(metric), "{v:?}");
    let at = v.detected_at.expect("detected_at set");
    assert!(at <= by, "detected at {at}, wanted by {by}: {}", v.reason);
}

fn assert_quiet(v: &Verdict) {
    assert_ne!(v.kind, VerdictKind::Regression, "{v:?}");
}

#[test]
fn error_rise_at_high_traffic_is_caught_within_a_few_steps() {
    let tr = std_trace(1, 200.0, |t| At {
        err: if t > 0.0 { 8.0 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_regression(&v, Metric::ErrorRate, 40.0);
    assert!(v.reason.starts_with("error rate "), "{}", v.reason);
    assert!(
        v.reason.contains("x) since t=+10s, over 3 steps")
            || v.reason.contains("x) since t=+10s, over 4 steps"),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("vs baseline 0.5"), "{}", v.reason);
    assert!(v.reason.contains("since t=+10s"), "{}", v.reason);
    assert!(v.reason.contains("p<0.001"), "{}", v.reason);
}

#[test]
fn error_rise_at_low_traffic_accumulates_evidence() {
    // 1 req/s: ten requests a step, 0.2% → 4%: most steps have no error.
    let tr = sim(2, 1.0, 0.002, 10.0, 180, 180, |t| At {
        err: if t > 0.0 { 20.0 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_regression(&v, Metric::ErrorRate, 900.0);
    assert!(
        v.detected_at.unwrap() > 30.0,
        "one error is not enough: {v:?}"
    );
}

#[test]
fn latency_shifts_of_each_quantile_are_caught_on_that_quantile() {
    for (k, metric) in LAT_METRICS.into_iter().enumerate() {
        let tr = std_trace(3 + k as u64, 50.0, |t| {
            let mut a = normal();
            if t > 0.0 {
                a.lat[k] = 1.8;
            }
            a
        });
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, metric, 120.0);
        assert!(v.reason.contains(LAT_NAMES[k]), "{}", v.reason);
    }
}

#[test]
fn gradual_creep_is_caught_before_it_is_huge() {
    // Latency rises linearly from ×1 to ×3 over 10 minutes.
    let tr = std_trace(7, 20.0, |t| {
        let f = 1.0 + 2.0 * (t / 600.0).clamp(0.0, 1.0);
        At {
            lat: [f; 3],
            ..normal()
        }
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
    assert!(v.detected_at.unwrap() < 400.0, "{v:?}");
}

#[test]
fn late_regression_is_caught_soon_after_it_starts_and_not_before() {
    let tr = std_trace(8, 100.0, |t| At {
        err: if t > 600.0 { 6.0 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_regression(&v, Metric::ErrorRate, 660.0);
    assert!(v.detected_at.unwrap() > 600.0);
    assert!(v.reason.contains("since t=+10m"), "{}", v.reason);
}

#[test]
fn throughput_collapse_is_caught() {
    let tr = std_trace(9, 30.0, |t| At {
        traffic: if t > 0.0 { 0.03 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_regression(&v, Metric::Throughput, 60.0);
    assert!(v.reason.starts_with("throughput collapsed"), "{}", v.reason);
    // And a drop to zero requests (no latency at all) too.
    let tr = std_trace(10, 30.0, |t| At {
        traffic: if t > 0.0 { 0.0 } else { 1.0 },
        ..normal()
    });
    assert_regression(
        &run(&tr, DetectorConfig::default()),
        Metric::Throughput,
        60.0,
    );
}

#[test]
fn overdispersed_noise_stays_healthy() {
    for seed in 0..30 {
        for rps in [0.5, 5.0, 50.0, 500.0] {
            let tr = std_trace(100 + seed, rps, |_| normal());
            let v = run(&tr, DetectorConfig::default());
            assert_eq!(v.kind, VerdictKind::Healthy, "seed {seed} rps {rps}: {v:?}");
        }
    }
    let v = run(&std_trace(1, 50.0, |_| normal()), DetectorConfig::default());
    assert!(
        v.reason
            .starts_with("no significant change over 30m: error rate"),
        "{}",
        v.reason
    );
}

#[test]
fn single_step_blips_are_ignored() {
    for seed in 0..10 {
        let tr = std_trace(200 + seed, 100.0, |t| {
            let mut a = normal();
            if t == 300.0 {
                a.err = 30.0;
            }
            if t == 900.0 {
                a.lat = [4.0; 3];
            }
            if t == 1200.0 {
                a.traffic = 0.01;
            }
            a
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

#[test]
fn slow_drift_is_not_a_regression() {
    for seed in 0..10 {
        let tr = std_trace(300 + seed, 50.0, |t| {
            let h = t / 3600.0;
            At {
                traffic: (-0.4 * h).exp(),
                err: (0.2 * h).exp(),
                lat: [(0.07 * h).exp(); 3],
                gap: false,
            }
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

#[test]
fn moderate_traffic_dip_is_not_a_collapse() {
    for (seed, rps) in [(1, 2.0), (2, 20.0), (3, 400.0)] {
        let tr = std_trace(400 + seed, rps, |t| At {
            traffic: if t > 0.0 { 0.6 } else { 1.0 },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

#[test]
fn short_warmup_after_the_deploy_is_tolerated() {
    for seed in 0..10 {
        let tr = std_trace(500 + seed, 100.0, |t| {
            let f = match t as i64 {
                10 => 3.0,
                20 => 2.0,
                30 => 1.5,
                _ => 1.0,
            };
            At {
                err: f * f,
                lat: [f; 3],
                ..normal()
            }
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

#[test]
fn a_benign_small_shift_is_not_a_regression() {
    for seed in 0..10 {
        let tr = std_trace(600 + seed, 200.0, |t| {
            if t > 0.0 {
                At {
                    err: 1.1,
                    lat: [1.06; 3],
                    traffic: 1.1,
                    gap: false,
                }
            } else {
                normal()
            }
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

#[test]
fn gaps_make_insufficient_data_not_regression() {
    let tr = std_trace(11, 50.0, |t| At {
        gap: (300.0..=340.0).contains(&t),
        ..normal()
    });
    let mut d = Detector::new(DetectorConfig::default());
    let mut saw_insufficient = false;
    for s in &tr {
        let v = d.push(*s);
        assert_ne!(v.kind, VerdictKind::Regression, "{v:?}");
        if s.t == 330.0 {
            assert_eq!(v.kind, VerdictKind::InsufficientData, "{v:?}");
            assert!(v.reason.contains("since t=+5m"), "{}", v.reason);
            saw_insufficient = true;
        }
        if s.t == 350.0 {
            assert_eq!(v.kind, VerdictKind::Healthy, "data is back: {v:?}");
        }
    }
    assert!(saw_insufficient);
    // Two gaps in a row are tolerated silently.
    let tr = std_trace(12, 50.0, |t| At {
        gap: t == 300.0 || t == 310.0,
        ..normal()
    });
    let mut d = Detector::new(DetectorConfig::default());
    for s in &tr {
        assert_ne!(d.push(*s).kind, VerdictKind::InsufficientData, "t={}", s.t);
    }
}

/// Gaps never three in a row, but most of the window missing: no health
/// from the few steps that came through (a source down for most of the
/// window, answering now and then).
#[test]
fn a_window_mostly_missing_is_insufficient_data_never_health() {
    let tr = std_trace(13, 50.0, |t| At {
        gap: t > 0.0 && (t / 10.0).round() as i64 % 3 != 0,
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::InsufficientData, "{v:?}");
    assert!(
        v.reason
            .contains("metrics for only 10m of the 30m since the deploy"),
        "{}",
        v.reason
    );
    // Half the window is enough to be judged.
    let tr = std_trace(13, 50.0, |t| At {
        gap: t > 0.0 && (t / 10.0).round() as i64 % 2 == 0,
        ..normal()
    });
    assert_eq!(
        run(&tr, DetectorConfig::default()).kind,
        VerdictKind::Healthy
    );
    // A window stepping three times coarser than its baseline (its counts
    // summed, its quantiles the worst) is covered by its data, though it
    // has a third of the baseline's steps.
    let fine = std_trace(13, 50.0, |_| normal());
    let mut tr: Vec<Sample> = fine.iter().filter(|s| s.t <= 0.0).copied().collect();
    for three in fine
        .iter()
        .filter(|s| s.t > 0.0)
        .collect::<Vec<_>>()
        .chunks(3)
    {
        let worst =
            |q: fn(&Sample) -> Option<f64>| three.iter().filter_map(|s| q(s)).reduce(f64::max);
        tr.push(Sample {
            t: three[2].t,
            requests: three.iter().map(|s| s.requests).sum(),
            errors: three.iter().map(|s| s.errors).sum(),
            p50_ms: worst(|s| s.p50_ms),
            p95_ms: worst(|s| s.p95_ms),
            p99_ms: worst(|s| s.p99_ms),
        });
    }
    assert_eq!(
        run(&tr, DetectorConfig::default()).kind,
        VerdictKind::Healthy
    );
}

/// A baseline without a single request (a service nobody used before the
/// deploy) is no reference: errors in the window are not called healthy
/// against it; a hard limit still judges them.
#[test]
fn a_baseline_without_requests_judges_nothing_but_the_hard_limits() {
    let tr = std_trace(14, 50.0, |t| At {
        traffic: if t <= 0.0 { 0.0 } else { 1.0 },
        err: 30.0,
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::InsufficientData, "{v:?}");
    assert!(v.reason.contains("had no requests"), "{}", v.reason);
    let guarded = DetectorConfig {
        max_error_rate: Some(0.05),
        ..DetectorConfig::default()
    };
    assert_eq!(run(&tr, guarded).kind, VerdictKind::Regression);
}

#[test]
fn broken_samples_are_gaps_or_ignored_never_a_panic() {
    let mut tr = std_trace(21, 50.0, |_| normal());
    tr[200].errors = f64::NAN;
    tr[201].requests = -5.0;
    tr[202].p95_ms = Some(f64::NAN);
    tr[203].t = f64::NAN;
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::Healthy, "{v:?}");
}

#[test]
fn an_empty_baseline_is_insufficient_data() {
    let tr = std_trace(13, 50.0, |t| At {
        gap: t <= 0.0,
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::InsufficientData);
    assert!(
        v.reason.contains("baseline has 0 usable steps"),
        "{}",
        v.reason
    );
}

#[test]
fn a_short_live_baseline_still_works() {
    // The demo: ~10 baseline samples at 2 s steps, a short window.
    let cfg = DetectorConfig {
        baseline_s: 20.0,
        window_s: 120.0,
        ..DetectorConfig::default()
    };
    for seed in 0..20 {
        let tr = sim(700 + seed, 20.0, 0.01, 2.0, 10, 60, |_| normal());
        assert_eq!(
            run(&tr, cfg.clone()).kind,
            VerdictKind::Healthy,
            "seed {seed}"
        );
    }
    let tr = sim(720, 20.0, 0.01, 2.0, 10, 60, |t| At {
        err: if t > 0.0 { 6.0 } else { 1.0 },
        lat: if t > 0.0 { [1.6; 3] } else { [1.0; 3] },
        ..normal()
    });
    let v = run(&tr, cfg);
    assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
    assert!(v.detected_at.unwrap() <= 40.0, "{v:?}");
}

#[test]
fn minute_steps_are_derived_from_t() {
    let tr = sim(14, 10.0, 0.005, 60.0, 30, 30, |t| At {
        err: if t > 0.0 { 10.0 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_regression(&v, Metric::ErrorRate, 180.0);
    assert!(
        v.detected_at.unwrap() >= 120.0,
        "never one step alone: {v:?}"
    );
}

#[test]
fn a_reason_counts_one_step_in_the_singular() {
    // The first baseline row: "1 step so far", not "1 steps".
    let tr = sim(15, 100.0, 0.05, 10.0, 180, 180, |_| normal());
    let mut d = Detector::new(DetectorConfig::default());
    let v = d.push(tr[0]);
    assert_eq!(v.reason, "collecting the baseline: 1 step so far");
    let v = d.push(tr[1]);
    assert_eq!(v.reason, "collecting the baseline: 2 steps so far");
    // A guard of one breaching step says "1 step in a row".
    let cfg = DetectorConfig {
        max_error_rate: Some(0.02),
        guard_steps: 1,
        ..DetectorConfig::default()
    };
    let v = run(&tr, cfg);
    assert_regression(&v, Metric::ErrorRate, 10.0);
    assert!(v.reason.contains(", 1 step in a row ("), "{}", v.reason);
    // One gap when one is enough for insufficient data.
    let tr = sim(17, 100.0, 0.005, 10.0, 180, 180, |t| At {
        gap: t >= 100.0,
        ..normal()
    });
    let cfg = DetectorConfig {
        gap_steps: 1,
        ..DetectorConfig::default()
    };
    // Up to the first gap (t=+100s).
    let first_gap = tr.iter().position(|s| s.t >= 100.0).unwrap();
    let v = run(&tr[..=first_gap], cfg);
    assert_eq!(v.kind, VerdictKind::InsufficientData, "{}", v.reason);
    assert!(
        v.reason
            .starts_with("insufficient data: no metrics for 1 step in a row since t="),
        "{}",
        v.reason
    );
}

#[test]
fn guards_are_hard_limits_that_need_consecutive_breaches() {
    // Baseline already at 5% errors: the statistics see no change, the
    // 2% SLO guard fires after three breaching steps.
    let tr = sim(15, 100.0, 0.05, 10.0, 180, 180, |_| normal());
    let cfg = DetectorConfig {
        max_error_rate: Some(0.02),
        ..DetectorConfig::default()
    };
    let v = run(&tr, cfg.clone());
    assert_regression(&v, Metric::ErrorRate, 30.0);
    assert!(
        v.reason.contains("over the 2.0% limit (max_error_rate)"),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("3 steps in a row"), "{}", v.reason);
    // A single breaching step (a blip) is not enough.
    let tr = sim(16, 100.0, 0.005, 10.0, 180, 180, |t| At {
        err: if t == 100.0 || t == 300.0 { 10.0 } else { 1.0 },
        ..normal()
    });
    assert_quiet(&run(&tr, cfg));
    // Latency guard on p99.
    let tr = std_trace(17, 100.0, |_| normal());
    let cfg = DetectorConfig {
        max_p99_ms: Some(200.0),
        ..DetectorConfig::default()
    };
    let v = run(&tr, cfg);
    assert_regression(&v, Metric::LatencyP99, 30.0);
    assert!(v.reason.contains("max_p99_ms"), "{}", v.reason);
}

#[test]
fn a_regression_latches_and_decisions_use_only_the_past() {
    let tr = std_trace(18, 100.0, |t| At {
        err: if (100.0..300.0).contains(&t) {
            10.0
        } else {
            1.0
        },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::Regression);
    let at = v.detected_at.unwrap();
    assert!(at < 300.0);
    // The same verdict from the prefix that ends at the deciding row.
    let prefix: Vec<Sample> = tr.iter().copied().filter(|s| s.t <= at).collect();
    assert_eq!(run(&prefix, DetectorConfig::default()), v);
    // One row less: not yet.
    let shorter = &prefix[..prefix.len() - 1];
    assert_ne!(
        run(shorter, DetectorConfig::default()).kind,
        VerdictKind::Regression
    );
}

#[test]
fn collecting_until_the_window_and_bands_for_the_charts() {
    let tr = std_trace(19, 100.0, |_| normal());
    let mut d = Detector::new(DetectorConfig::default());
    for s in tr.iter().filter(|s| s.t <= 0.0) {
        assert_eq!(d.push(*s).kind, VerdictKind::Collecting);
    }
    assert!(
        d.verdict().reason.contains("180 steps"),
        "{}",
        d.verdict().reason
    );
    let b = d.baseline();
    let er = b.error_rate.expect("error band");
    assert!((er.center - 0.005).abs() < 0.0015, "{er:?}");
    assert!(er.low <= er.center && er.center < er.high);
    assert!(er.threshold.unwrap() > er.center);
    let p95 = b.p95_ms.expect("p95 band");
    assert!((p95.center / 120.0 - 1.0).abs() < 0.1, "{p95:?}");
    assert!(p95.threshold.unwrap() > p95.center);
    let req = b.requests.expect("requests band");
    assert!((req.center / 1000.0 - 1.0).abs() < 0.1, "{req:?}");
    assert!(req.threshold.unwrap() < req.low);
    d.push(tr[180]);
    // Inside the warm-up there is no verdict yet, only what is seen.
    assert_eq!(d.verdict().kind, VerdictKind::Collecting);
    assert!(
        d.verdict().reason.starts_with("warm-up"),
        "{}",
        d.verdict().reason
    );
    for s in &tr[181..=184] {
        d.push(*s);
    }
    assert_eq!(d.verdict().kind, VerdictKind::Healthy, "{:?}", d.verdict());
    assert_eq!(d.baseline(), b);
}

#[test]
fn samples_after_the_window_are_ignored() {
    let tr = std_trace(20, 100.0, |t| At {
        err: if t > 1000.0 { 10.0 } else { 1.0 },
        ..normal()
    });
    let cfg = DetectorConfig {
        window_s: 900.0,
        ..DetectorConfig::default()
    };
    let v = run(&tr, cfg);
    assert_eq!(v.kind, VerdictKind::Healthy, "{v:?}");
    assert!(v.reason.contains("over 15m"), "{}", v.reason);
}

mod blips;
mod coarse;
mod deploy;
mod pooled;
mod traffic;
mod wander;
mod warmup;
