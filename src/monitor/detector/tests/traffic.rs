//! Traffic that falls (healthy dips, against the same hour before, collapses) and
//! error rises too slow or too sparse for one step to show.

use super::*;

/// A traffic dip: `depth` of the requests gone from `from` to `to`.
pub(super) fn dip(depth: f64, from: f64, to: f64) -> impl Fn(f64) -> At {
    move |t| At {
        traffic: if t > from && t <= to {
            1.0 - depth
        } else {
            1.0
        },
        ..normal()
    }
}

#[test]
fn a_healthy_traffic_dip_is_not_a_collapse() {
    // 70% of the requests gone for 15 minutes, then back; errors and
    // latency unchanged.
    for seed in 0..10 {
        for rps in [2.0, 50.0, 500.0] {
            let tr = std_trace(800 + seed, rps, dip(0.7, 300.0, 1200.0));
            let v = run(&tr, DetectorConfig::default());
            assert_eq!(v.kind, VerdictKind::Healthy, "seed {seed} rps {rps}: {v:?}");
        }
    }
}

#[test]
fn a_dip_with_errors_rising_with_it_is_a_regression_that_says_so() {
    // The same 70% dip, but the error rate doubles with it: the fall is
    // not a healthy dip.
    let tr = std_trace(820, 50.0, |t| At {
        traffic: if t > 0.0 { 0.3 } else { 1.0 },
        err: if t > 0.0 { 2.5 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
    let at = v.detected_at.unwrap();
    assert!(at <= 300.0, "{v:?}");
    if v.metric == Some(Metric::Throughput) {
        assert!(
            v.reason.contains("the error rate rose with it"),
            "{}",
            v.reason
        );
    }
    // A fall far deeper than any healthy dip needs no other evidence.
    let tr = std_trace(821, 50.0, |t| At {
        traffic: if t > 0.0 { 0.02 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_regression(&v, Metric::Throughput, 60.0);
    assert!(
        v.reason.contains("far below the deepest healthy dip"),
        "{}",
        v.reason
    );
    // A fall to 35% that never recovers is no dip either.
    let tr = std_trace(822, 50.0, |t| At {
        traffic: if t > 0.0 { 0.35 } else { 1.0 },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_regression(&v, Metric::Throughput, 1500.0);
    assert!(v.reason.contains("no recovery for"), "{}", v.reason);
    assert!(v.detected_at.unwrap() >= 1200.0, "{v:?}");
}

/// The trace of a service with a daily shape and its reference (the same
/// steps a day earlier): traffic at `today(t)` and `yesterday(t)` times the
/// base rate, same noise model.
fn with_reference(
    seed: u64,
    today: impl Fn(f64) -> f64,
    yesterday: impl Fn(f64) -> f64,
) -> (Vec<Sample>, Vec<Option<Sample>>) {
    let tr = std_trace(seed, 50.0, |t| At {
        traffic: today(t),
        ..normal()
    });
    let reference = std_trace(seed + 1000, 60.0, |t| At {
        traffic: yesterday(t),
        ..normal()
    });
    (tr, reference.into_iter().map(Some).collect())
}

fn run_ref(samples: &[Sample], reference: &[Option<Sample>]) -> Verdict {
    let mut d = Detector::new(DetectorConfig::default());
    for (s, r) in samples.iter().zip(reference) {
        d.push_with_reference(*s, *r);
    }
    d.verdict().clone()
}

#[test]
fn a_dip_the_reference_shows_too_is_expected_and_one_it_does_not_is_a_collapse() {
    // The nightly slide: traffic falls to 25% over the window, and did the
    // same at this hour yesterday. On its own it would look like a fall
    // that does not recover; with the reference it is expected.
    let slide = |t: f64| {
        if t > 0.0 {
            1.0 - 0.75 * (t / 300.0).min(1.0)
        } else {
            1.0
        }
    };
    let (tr, reference) = with_reference(830, slide, slide);
    let alone = run(&tr, DetectorConfig::default());
    assert_eq!(alone.kind, VerdictKind::Regression, "{alone:?}");
    let v = run_ref(&tr, &reference);
    assert_eq!(v.kind, VerdictKind::Healthy, "{v:?}");
    // A 70% dip for 15 minutes that yesterday did not have: far below the
    // same hour yesterday, a collapse on that evidence alone.
    let (tr, reference) = with_reference(831, |t| dip(0.7, 300.0, 1200.0)(t).traffic, |_| 1.0);
    assert_eq!(
        run(&tr, DetectorConfig::default()).kind,
        VerdictKind::Healthy
    );
    let v = run_ref(&tr, &reference);
    assert_regression(&v, Metric::Throughput, 420.0);
    assert!(v.reason.contains("seasonal reference"), "{}", v.reason);
    // A reference only for the window (none for the baseline) is unused.
    let mut partial = reference.clone();
    for (r, s) in partial.iter_mut().zip(&tr) {
        if s.t <= 0.0 {
            *r = None;
        }
    }
    assert_eq!(run_ref(&tr, &partial).kind, VerdictKind::Healthy);
}

#[test]
fn a_slow_error_creep_is_caught_while_it_grows() {
    // Errors creep to x3 over 30 minutes.
    let mut at = Vec::new();
    for seed in 0..6 {
        let tr = std_trace(840 + seed, 100.0, |t| At {
            err: 1.0 + 2.0 * (t / 1800.0).clamp(0.0, 1.0),
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, Metric::ErrorRate, 1800.0);
        at.push(v.detected_at.unwrap());
    }
    at.sort_by(f64::total_cmp);
    assert!(at[at.len() / 2] <= 900.0, "median {at:?}");
}

#[test]
fn a_tripled_error_rate_at_low_traffic_is_caught() {
    // 2 req/s at 1%: about 36 errors in the baseline, 0.6 a minute.
    for seed in 0..6 {
        let tr = sim(850 + seed, 2.0, 0.01, 10.0, 180, 180, |t| At {
            err: if t > 0.0 { 3.0 } else { 1.0 },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, Metric::ErrorRate, 1800.0);
    }
}

#[test]
fn a_tripled_error_rate_at_half_a_request_a_second_is_called_on_the_whole_window() {
    // 0.5 req/s at 2%: five requests a step, one error every 100 s, about
    // 18 errors in the baseline; tripled from the deploy. No stretch of a
    // few steps shows it (a step holds 0.3 errors at most often none):
    // the whole-window test adds the evidence up and says so.
    let mut at = Vec::new();
    for seed in 0..6 {
        let tr = sim(1260 + seed, 0.5, 0.02, 10.0, 180, 180, |t| At {
            err: if t > 0.0 { 3.0 } else { 1.0 },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, Metric::ErrorRate, 1800.0);
        at.push(v.detected_at.unwrap());
    }
    at.sort_by(f64::total_cmp);
    // Not from one error or a few: minutes of evidence, and the reason
    // names the stretch it judged.
    assert!(at[0] > 120.0, "{at:?}");
}

#[test]
fn a_burst_of_errors_in_healthy_low_traffic_is_no_sustained_rise() {
    // The same 30 minutes at 0.5 req/s and 2%, healthy but for one burst
    // (errors x10 for half a minute: a few errors where a step expects
    // 0.1): a burst is no lasting rise, whatever the window test sums.
    for seed in 0..6 {
        let tr = sim(1270 + seed, 0.5, 0.02, 10.0, 180, 180, |t| At {
            err: if t > 600.0 && t <= 630.0 { 10.0 } else { 1.0 },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}
