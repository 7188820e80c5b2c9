//! A baseline's own blip process (GC pauses): pause steps in the
//! baseline and the window alike are no shift, a real shift on top of
//! them still is.

use super::*;
use crate::monitor::eval::corpus::resample;

/// Steps (by index from the first baseline step, 10 s each, 360 in all)
/// that hold a GC pause: about one every `every` steps, plus `forced`.
fn pauses(seed: u64, every: f64, forced: &[usize]) -> Vec<bool> {
    let mut r = Rng::new(seed);
    let mut on: Vec<bool> = (0..360).map(|_| r.chance(1.0 / every)).collect();
    for &i in forced {
        on[i] = true;
    }
    on
}

/// A 10 s trace at `rps` whose pause steps have p99 x3 and p95 x1.3, and
/// whose every quantile is `shift`ed from the deploy on.
fn gc_trace(seed: u64, rps: f64, on: &[bool], shift: [f64; 3]) -> Vec<Sample> {
    std_trace(seed, rps, |t| {
        let i = (t / 10.0 + 179.0).round() as usize;
        let mut a = normal();
        if on[i] {
            a.lat = [1.0, 1.3, 3.0];
        }
        if t > 0.0 {
            for (l, s) in a.lat.iter_mut().zip(shift) {
                *l *= s;
            }
        }
        a
    })
}

#[test]
fn gc_pauses_in_the_baseline_and_after_the_deploy_are_no_latency_shift() {
    for seed in 0..12 {
        // A pause every ~90 s, and three close together 10 minutes after
        // the deploy (steps at +10m, +10m20s and +10m40s), as the
        // baseline's own pause rate gives now and then.
        let on = pauses(2600 + seed, 9.0, &[240, 242, 244]);
        for rps in [20.0, 200.0] {
            let tr = gc_trace(2700 + seed, rps, &on, [1.0; 3]);
            assert_quiet(&run(&tr, DetectorConfig::default()));
            // At one-minute steps a step's p99 is the worst of its six
            // ten-second ones: a third to a half of them hold a pause.
            let v = run(&resample(&tr, 6), DetectorConfig::default());
            assert_quiet(&v);
        }
    }
}

#[test]
fn a_real_latency_shift_over_gc_pauses_is_still_called() {
    for seed in 0..8 {
        let on = pauses(2800 + seed, 9.0, &[]);
        // Every quantile x1.6: called within two minutes.
        let tr = gc_trace(2900 + seed, 100.0, &on, [1.6; 3]);
        let v = run(&tr, DetectorConfig::default());
        assert_eq!(v.kind, VerdictKind::Regression, "seed {seed}: {v:?}");
        assert!(v.detected_at.unwrap() <= 120.0, "seed {seed}: {v:?}");
        // p99 alone at the pauses' own height, in every step: a run of
        // slow steps no pause rate gives, called within five minutes.
        let tr = gc_trace(3000 + seed, 100.0, &on, [1.0, 1.0, 3.0]);
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, Metric::LatencyP99, 300.0);
    }
}
