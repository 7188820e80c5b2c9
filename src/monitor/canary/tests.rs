//! The canary judge on simulated pairs of tracks sharing the same moment.

use super::*;
use crate::monitor::eval::rng::Rng;

/// What both tracks do at step `i`: the shared error rate and latency of
/// the moment (the drift both tracks see), and the canary's own factors.
#[derive(Clone, Copy)]
struct Moment {
    /// Requests per second over both tracks.
    rps: f64,
    /// Canary share of the traffic (0..1).
    weight: f64,
    /// Error rate of the moment for a healthy release.
    err: f64,
    /// Latency factor of the moment (both tracks).
    lat: f64,
    /// The canary's error-rate and latency factors.
    canary_err: f64,
    canary_lat: f64,
    /// The canary's metrics are missing this step.
    gap: bool,
}

fn moment() -> Moment {
    Moment {
        rps: 200.0,
        weight: 0.1,
        err: 0.004,
        lat: 1.0,
        canary_err: 1.0,
        canary_lat: 1.0,
        gap: false,
    }
}

fn sample(r: &mut Rng, t: f64, n: f64, rate: f64, lat: f64) -> Sample {
    let e = r.poisson(n * rate.min(1.0)).min(n);
    let q = |r: &mut Rng, base: f64, se: f64| {
        (n > 0.0).then(|| base * lat * ((se / n.max(1.0).sqrt()).min(0.6) * r.normal()).exp())
    };
    Sample {
        t,
        requests: n,
        errors: e,
        p50_ms: q(r, 40.0, 0.6),
        p95_ms: q(r, 120.0, 1.2),
        p99_ms: q(r, 250.0, 2.0),
    }
}

/// `steps` one-second steps; `f(i)` gives the moment of step `i`.
fn pairs(seed: u64, steps: usize, f: impl Fn(usize) -> Moment) -> Vec<TrackPair> {
    let mut r = Rng::new(seed);
    (0..steps)
        .map(|i| {
            let m = f(i);
            let t = i as f64 + 1.0;
            let n = r.neg_binomial(m.rps, 0.1);
            // The moment's rate wobbles (overdispersion), the same for both tracks.
            let rate = m.err * r.gamma_factor(0.3);
            let nc = r.poisson(n * m.weight);
            let ns = (n - nc).max(0.0);
            let mut canary = sample(&mut r, t, nc, rate * m.canary_err, m.lat * m.canary_lat);
            let stable = sample(&mut r, t, ns, rate, m.lat);
            if m.gap {
                canary.requests = f64::NAN;
                canary.errors = f64::NAN;
            }
            TrackPair { t, canary, stable }
        })
        .collect()
}

fn judge(ps: &[TrackPair], weight: u8) -> CanaryJudge {
    let mut j = CanaryJudge::new(CanaryConfig::default());
    j.begin_step(weight);
    for p in ps {
        j.push(*p);
    }
    j
}

#[test]
fn a_healthy_canary_is_healthy_and_never_alarms() {
    let mut alarms = Vec::new();
    for seed in 0..60 {
        let ps = pairs(seed, 120, |_| moment());
        let j = judge(&ps, 10);
        match j.verdict().kind {
            VerdictKind::Healthy => {}
            VerdictKind::Regression => alarms.push((seed, j.verdict().reason.clone())),
            k => panic!("seed {seed}: {k}: {}", j.verdict().reason),
        }
    }
    assert!(alarms.is_empty(), "false alarms: {alarms:?}");
    let j = judge(&pairs(1, 40, |_| moment()), 10);
    let reason = &j.verdict().reason;
    assert!(
        reason.starts_with("canary error rate ")
            && reason.contains("vs stable ")
            && reason.contains("over the same 40s (n=")
            && reason.ends_with("— healthy"),
        "{reason}"
    );
}

#[test]
fn a_bad_canary_at_ten_percent_is_a_regression_within_seconds() {
    for seed in 0..20 {
        let ps = pairs(seed, 60, |_| Moment {
            canary_err: 20.0, // 8% against 0.4%
            canary_lat: 2.8,
            ..moment()
        });
        let mut j = CanaryJudge::new(CanaryConfig::default());
        j.begin_step(10);
        let at = ps
            .iter()
            .find_map(|p| (j.push(*p).kind == VerdictKind::Regression).then_some(p.t));
        let v = j.verdict();
        assert_eq!(v.kind, VerdictKind::Regression, "seed {seed}: {}", v.reason);
        assert!(
            at.is_some_and(|t| t <= 10.0),
            "seed {seed}: caught at {at:?}"
        );
        assert_eq!(v.metric, Some(Metric::ErrorRate));
        assert!(
            v.reason.starts_with("canary error rate ")
                && v.reason.contains("vs stable ")
                && v.reason.contains("over the same ")
                && v.reason.ends_with("— regression"),
            "{}",
            v.reason
        );
    }
}

#[test]
fn a_canary_only_slower_is_a_latency_regression() {
    let ps = pairs(4, 60, |_| Moment {
        canary_lat: 2.0,
        ..moment()
    });
    let j = judge(&ps, 10);
    let v = j.verdict();
    assert_eq!(v.kind, VerdictKind::Regression, "{}", v.reason);
    assert!(
        matches!(v.metric, Some(Metric::LatencyP95 | Metric::LatencyP99)),
        "{v:?}"
    );
    assert!(v.reason.starts_with("canary p9"), "{}", v.reason);
}

#[test]
fn too_little_canary_traffic_is_insufficient_data_not_health() {
    // 5 req/s with 2% on the canary: ~6 canary requests in a minute.
    let ps = pairs(2, 60, |_| Moment {
        rps: 5.0,
        weight: 0.02,
        ..moment()
    });
    let j = judge(&ps, 2);
    let v = j.verdict();
    assert_eq!(v.kind, VerdictKind::InsufficientData, "{}", v.reason);
    assert!(
        v.reason.contains("insufficient data: the canary served"),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("need 50"), "{}", v.reason);
}

#[test]
fn a_canary_without_metrics_is_insufficient_data_never_health() {
    let ps = pairs(3, 60, |_| Moment {
        gap: true,
        ..moment()
    });
    let j = judge(&ps, 10);
    assert_eq!(j.verdict().kind, VerdictKind::InsufficientData);
    assert_eq!(j.step_requests(), 0.0);
}

#[test]
fn a_new_weight_step_needs_its_own_data_but_keeps_the_evidence() {
    let ps = pairs(5, 40, |_| moment());
    let mut j = judge(&ps[..20], 10);
    assert_eq!(j.verdict().kind, VerdictKind::Healthy);
    let before = j.error_evidence();
    j.begin_step(50);
    assert_eq!(j.verdict().kind, VerdictKind::InsufficientData);
    assert_eq!(j.step_requests(), 0.0);
    assert_eq!(j.error_evidence(), before);
    for p in &ps[20..] {
        j.push(*p);
    }
    assert_eq!(
        j.verdict().kind,
        VerdictKind::Healthy,
        "{}",
        j.verdict().reason
    );
}

#[test]
fn a_drift_that_hits_both_tracks_alike_raises_no_alarm() {
    // Over ten minutes the error rate of the moment climbs fivefold and
    // latency doubles (the evening peak): both tracks alike. A before/after
    // comparison would call it a regression; the same-time one must not.
    let drift = |i: usize| {
        let x = i as f64 / 600.0;
        Moment {
            err: 0.003 * (1.0 + 4.0 * x),
            lat: 1.0 + x,
            weight: 0.5,
            ..moment()
        }
    };
    for seed in 0..8 {
        let ps = pairs(seed, 600, drift);
        let j = judge(&ps, 50);
        assert_eq!(
            j.verdict().kind,
            VerdictKind::Healthy,
            "seed {seed}: {}",
            j.verdict().reason
        );
    }
    // The same drift through the before/after detector is an alarm.
    let ps = pairs(0, 600, drift);
    let mut d = crate::monitor::Detector::new(crate::monitor::DetectorConfig {
        baseline_s: 300.0,
        window_s: 300.0,
        ..Default::default()
    });
    for p in &ps {
        d.push(Sample {
            t: p.t - 300.0,
            ..p.stable
        });
    }
    assert_eq!(
        d.verdict().kind,
        VerdictKind::Regression,
        "{}",
        d.verdict().reason
    );
}

#[test]
fn old_and_repeated_steps_are_ignored_and_a_regression_latches() {
    let bad = pairs(6, 30, |_| Moment {
        canary_err: 20.0,
        ..moment()
    });
    let mut j = judge(&bad, 10);
    assert_eq!(j.verdict().kind, VerdictKind::Regression);
    let reason = j.verdict().reason.clone();
    j.begin_step(50);
    for p in pairs(7, 30, |_| moment()).iter().map(|p| TrackPair {
        t: p.t + 100.0,
        ..*p
    }) {
        j.push(p);
    }
    assert_eq!(j.verdict().reason, reason);
    let mut j = judge(&pairs(8, 10, |_| moment()), 10);
    let n = j.step_requests();
    j.push(pairs(9, 3, |_| moment())[2]);
    assert_eq!(j.step_requests(), n, "a step at an old t counts");
}
