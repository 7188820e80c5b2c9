//! The pooled latency test: the three quantiles' evidence of a common
//! shift counted together, by how much they move together.

use super::*;

/// When a trace's regression is called, and the reason (None: never).
fn call(tr: &[Sample]) -> Option<(f64, String)> {
    let v = run(tr, DetectorConfig::default());
    (v.kind == VerdictKind::Regression).then(|| (v.detected_at.unwrap_or(f64::MAX), v.reason))
}

#[test]
fn at_low_traffic_three_quantiles_each_part_way_are_called_together() {
    // One request a second, every quantile x1.6 from the deploy: each
    // quantile alone is noisy, but their noise is their own.
    let mut pooled = 0;
    for seed in 0..20 {
        let tr = std_trace(1500 + seed, 1.0, |t| At {
            lat: if t > 0.0 { [1.6; 3] } else { [1.0; 3] },
            ..normal()
        });
        let (_, reason) = call(&tr).expect("a x1.6 shift is called");
        if reason.contains("counted together") {
            assert!(
                reason.starts_with("latency p50/p95/p99 together"),
                "{reason}"
            );
            pooled += 1;
        }
    }
    // Here the p50 is the least noisy quantile and often decides alone;
    // the pooled test decides first in about half the traces.
    assert!(
        pooled >= 5,
        "the pooled test decided first {pooled} of 20 times"
    );
}

#[test]
fn healthy_low_traffic_stays_quiet_with_the_quantiles_pooled() {
    for seed in 0..30 {
        let rps = [0.5, 1.0, 3.0][seed as usize % 3];
        let tr = std_trace(1550 + seed, rps, |_| normal());
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

/// A 10 s baseline whose three quantiles share one noise factor
/// (`common`) on top of their own (`own`).
fn shared_noise(seed: u64, common: f64, own: f64) -> Detector {
    let mut r = crate::monitor::eval::rng::Rng::new(seed);
    let mut d = Detector::new(DetectorConfig::default());
    for i in 0..180 {
        let c = common * r.normal();
        let mut q = [40.0, 120.0, 250.0];
        for v in &mut q {
            *v *= (c + own * r.normal()).exp();
        }
        d.push(Sample {
            t: (i as f64 - 179.0) * 10.0,
            requests: 100.0,
            errors: 0.0,
            p50_ms: Some(q[0]),
            p95_ms: Some(q[1]),
            p99_ms: Some(q[2]),
        });
    }
    d
}

#[test]
fn quantiles_that_move_together_pool_no_more_than_one_of_them() {
    let together = shared_noise(1600, 0.2, 0.02).build_model(10.0).lat_rho;
    let apart = shared_noise(1601, 0.0, 0.2).build_model(10.0).lat_rho;
    assert!(together > 0.9, "shared noise: rho {together}");
    assert!(apart < 0.3, "own noise: rho {apart}");
}
