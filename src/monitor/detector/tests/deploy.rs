//! Changes that came with the deploy: the tests' evidence summed from the
//! deploy on needs less than a CUSUM, which pays for every possible start.

use super::*;

/// Delay of the call on `tr` after `t0`, and its reason (None: no call).
fn delay(tr: &[Sample], t0: f64) -> Option<(f64, String)> {
    let v = run(tr, DetectorConfig::default());
    (v.kind == VerdictKind::Regression).then(|| (v.detected_at.unwrap() - t0, v.reason))
}

#[test]
fn a_moderate_shift_since_the_deploy_is_called_sooner_than_the_same_shift_later() {
    // p99 x1.4 at 10 req/s: each step's evidence is well under the cap, so
    // what decides is how much evidence the threshold asks for. From the
    // deploy on, the sum since the deploy calls it (one start, a lower
    // threshold); the same shift from t=+10 min on is the CUSUM's, which
    // pays for not knowing when it began.
    let shift = At {
        lat: [1.0, 1.0, 1.4],
        ..normal()
    };
    let (mut anchored, mut at_deploy, mut later) = (0, 0.0, 0.0);
    for seed in 0..8 {
        let dep = std_trace(
            7000 + seed,
            10.0,
            |t| if t > 0.0 { shift } else { normal() },
        );
        let late = std_trace(
            7000 + seed,
            10.0,
            |t| {
                if t > 600.0 { shift } else { normal() }
            },
        );
        let (d, why) = delay(&dep, 0.0).expect("the shift since the deploy is called");
        let (l, _) = delay(&late, 600.0).expect("the later shift is called");
        anchored += usize::from(why.contains("summed since the deploy"));
        at_deploy += d;
        later += l;
    }
    assert!(
        anchored >= 4,
        "{anchored} of 8 called by the sum since the deploy"
    );
    assert!(
        at_deploy < 0.8 * later,
        "mean delay {:.0} s since the deploy vs {:.0} s later",
        at_deploy / 8.0,
        later / 8.0
    );
}

#[test]
fn the_sum_since_the_deploy_retires_once_below_where_it_began() {
    // Evidence against a change first: the deploy sum is done, and later
    // evidence for one is the CUSUM's (it began after the deploy).
    let mut c = Cusum::default();
    c.add(10.0, 2.0, 0.0, 0.0, 0.0);
    c.add(20.0, -3.0, 0.0, 0.0, 0.0);
    c.add(30.0, 50.0, 0.0, 0.0, 0.0);
    assert!(c.s < 0.0, "{}", c.s);
    assert_eq!(c.steps, 2);
    // Never below zero: every step counts, unlike a CUSUM nothing resets.
    let mut c = Cusum::default();
    for (i, l) in [1.0, -0.5, 0.25, 3.0].iter().enumerate() {
        c.add(10.0 * (i + 1) as f64, *l, 0.0, 0.0, 0.0);
    }
    assert_eq!((c.s, c.steps, c.start_t), (3.75, 4, 10.0));
}

#[test]
fn a_warmup_at_its_allowance_leaves_the_deploy_sum_as_far_short_as_the_cusum() {
    // A healthy 10 s baseline; the model's thresholds and caps.
    let tr = std_trace(7100, 20.0, |_| normal());
    let mut d = Detector::new(DetectorConfig::default());
    for s in tr.iter().filter(|s| s.t <= 0.0) {
        d.push(*s);
    }
    let m = d.build_model(10.0);
    assert!(m.h_dep < m.h, "{} vs {}", m.h_dep, m.h);
    // Three warm-up steps, each held at the allowance (its cap below the
    // full cap), with far more raw evidence than that.
    let full = m.cap_rate * 10.0;
    let allowance = m.warm_rate * 10.0;
    assert!(allowance < full);
    let (mut cusum, mut dep) = (0.0, 0.0);
    for _ in 0..3 {
        cusum += 100.0f64.clamp(-full, allowance);
        dep += deploy_llr(&m, 100.0, (full, allowance, full), 0.0).0;
    }
    let short = m.h - cusum;
    assert!(short > 0.0);
    assert!(
        ((m.h_dep - dep) - short).abs() < 1e-9,
        "deploy sum {dep:.2} of {:.2}, CUSUM {cusum:.2} of {:.2}",
        m.h_dep,
        m.h
    );
    // Past the warm-up a full step counts at the deploy threshold's scale:
    // the same number of steps spans the minimum evidence.
    let step = deploy_llr(&m, 100.0, (full, full, full), 0.0).0;
    assert!((step / m.h_dep - full / m.h).abs() < 1e-12);
}
