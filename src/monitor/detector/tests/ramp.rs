//! The ramp test: a slow creep of the error rate is called from its later
//! steps; a healthy rate that drifts, wanders or shifts a little is no
//! ramp, however overdispersed its steps.

use super::*;
use crate::monitor::detector::ramp as rt;

/// 30 min of baseline and 30 min of window at 10 s steps, `rps` req/s
/// (overdispersed), base error rate `p` with per-step gamma noise of CV
/// `cv` and a slow AR(1) wander of log sd `wander` (correlation ~200 s);
/// `err(t)` multiplies the rate.
fn wandering(
    seed: u64,
    rps: f64,
    p: f64,
    cv: f64,
    wander: f64,
    err: impl Fn(f64) -> f64,
) -> Vec<Sample> {
    let mut r = Rng::new(seed);
    let (ar, mut w) = (0.95f64, wander * r.normal());
    (0..360)
        .map(|i| {
            let t = (i as f64 - 179.0) * 10.0;
            w = w * ar + (1.0 - ar * ar).sqrt() * wander * r.normal();
            let n = r.neg_binomial(rps * 10.0, 0.1);
            let rate = (p * err(t) * w.exp() * r.gamma_factor(cv)).min(1.0);
            let e = r.poisson(n * rate).min(n);
            Sample {
                t,
                requests: n,
                errors: e,
                p50_ms: Some(40.0),
                p95_ms: Some(120.0),
                p99_ms: Some(250.0),
            }
        })
        .collect()
}

/// The errors rise linearly to x3 at the window's end.
fn creep(t: f64) -> f64 {
    1.0 + 2.0 * (t / 1800.0).clamp(0.0, 1.0)
}

/// The highest end-projected ramp score over the window (whatever else
/// the detector decided), and the detector's verdict.
fn ramp_max(samples: &[Sample]) -> (f64, Verdict) {
    let mut d = Detector::new(DetectorConfig::default());
    let mut max = f64::NEG_INFINITY;
    for s in samples {
        d.push(*s);
        if let (true, Some(m)) = (s.t > 0.0, d.model.clone())
            && let Some(es) = m.err
            && let Some(sc) = d.ramp_score(&m, es, s.t)
        {
            max = max.max(sc.z_end);
        }
    }
    (max, d.verdict().clone())
}

#[test]
fn a_slow_creep_the_level_tests_miss_is_called_by_the_ramp() {
    // 1 req/s, 0.7% (about 12 baseline errors): the level tests, which
    // run first at every step, have not called it when the ramp does —
    // before, these windows ended healthy or were called later.
    let mut by_ramp = 0;
    for seed in 0..40 {
        let tr = wandering(7000 + seed, 1.0, 0.007, 0.3, 0.1, creep);
        let v = run(&tr, DetectorConfig::default());
        if v.reason.starts_with("error rate rising steadily: ") {
            by_ramp += 1;
            assert_regression(&v, Metric::ErrorRate, 1800.0);
            assert!(
                v.reason.contains(" since t=+40s, baseline "),
                "{}",
                v.reason
            );
            assert!(
                v.reason.contains("a ramp beyond overdispersion"),
                "{}",
                v.reason
            );
            assert!(!v.reason.contains('\n'), "{}", v.reason);
            // "A% -> B% over ...": the later third's rate is the higher.
            let rates: Vec<f64> = v.reason["error rate rising steadily: ".len()..]
                .split(" over ")
                .next()
                .unwrap()
                .split(" -> ")
                .map(|p| p.trim_end_matches('%').parse().unwrap())
                .collect();
            assert!(rates[1] > rates[0], "{}", v.reason);
        }
    }
    assert!(by_ramp >= 2, "the ramp called {by_ramp} of 40 first");
}

#[test]
fn healthy_drift_wander_and_overdispersion_are_no_ramp() {
    // A drift of +12% over the window (0.25 log per hour, from the
    // baseline on), a benign +15% shift at the deploy, the rate falling,
    // and a strongly overdispersed, wandering rate: at low, mid and high
    // traffic, the end-projected score stays well under the boundary.
    type ErrAt = fn(f64) -> f64;
    let kinds: [(&str, ErrAt); 4] = [
        ("drift", |t| (0.25 * t / 3600.0).exp()),
        ("shift", |t| if t > 0.0 { 1.15 } else { 1.0 }),
        ("falling", |t| 1.0 - 0.3 * (t / 1800.0).clamp(0.0, 1.0)),
        ("flat", |_| 1.0),
    ];
    let z = rt::boundary(DetectorConfig::default().false_alarm);
    let mut highest = f64::NEG_INFINITY;
    for (name, f) in kinds {
        for seed in 0..12 {
            for (rps, p, cv, wander) in [
                (1.0, 0.01, 0.3, 0.1),
                (20.0, 0.005, 0.5, 0.2),
                (300.0, 0.002, 0.6, 0.25),
            ] {
                let tr = wandering(7200 + seed, rps, p, cv, wander, f);
                let (max, v) = ramp_max(&tr);
                assert!(!v.reason.contains("rising steadily"), "{}", v.reason);
                assert!(max < z, "{name} seed {seed} at {rps} req/s: {max} of {z}");
                highest = highest.max(max);
            }
        }
    }
    // Not merely under it: with room to spare.
    assert!(highest < z - 0.3, "highest {highest} of {z}");
}

#[test]
fn the_wander_kernel_form_is_the_double_sum() {
    let steps: Vec<(f64, f64)> = (0..40)
        .map(|i| {
            (
                i as f64 * 10.0 + if i > 20 { 60.0 } else { 0.0 },
                1.0 + (i % 7) as f64,
            )
        })
        .collect();
    let direct: f64 = steps
        .iter()
        .flat_map(|a| steps.iter().map(move |b| (a, b)))
        .map(|(a, b)| a.1 * b.1 * (-(a.0 - b.0).abs() / 300.0).exp())
        .sum();
    let fast = rt::kernel_form(steps.iter().copied());
    assert!((fast - direct).abs() < 1e-9 * direct, "{fast} vs {direct}");
}

#[test]
fn the_boundary_follows_the_false_alarm_goal() {
    // 15% of a 2% goal, one-sided crossing of a Brownian score: 2(1 - Φ(z)) = 0.003.
    let z = rt::boundary(0.02);
    assert!((norm_sf(z) - 0.0015).abs() < 1e-6, "{z}");
    assert!(rt::boundary(0.01) > z);
}
