//! Coarse steps (1- and 5-minute metrics), warm-ups, and what one or two steps
//! may decide.

use super::traffic::dip;
use super::*;

fn coarse(seed: u64, dt: f64, rps: f64, f: impl Fn(f64) -> At) -> Vec<Sample> {
    let k = (1800.0 / dt) as usize;
    sim(seed, rps, 0.005, dt, k, k, f)
}

#[test]
fn at_five_minute_steps_a_sharp_regression_is_called_by_the_second_bad_step() {
    let mut second = 0;
    for seed in 0..5 {
        for rps in [5.0, 50.0, 500.0] {
            let tr = coarse(860 + seed, 300.0, rps, |t| At {
                err: if t > 0.0 { 10.0 } else { 1.0 },
                ..normal()
            });
            assert_regression(
                &run(&tr, DetectorConfig::default()),
                Metric::ErrorRate,
                600.0,
            );
            // Every quantile x2 from the deploy on: a shift that began
            // with the deploy, called at the second step when both steps
            // agree within their noise, else at the third.
            let tr = coarse(870 + seed, 300.0, rps, |t| At {
                lat: if t > 0.0 { [2.0; 3] } else { [1.0; 3] },
                ..normal()
            });
            let v = run(&tr, DetectorConfig::default());
            assert_eq!(
                v.kind,
                VerdictKind::Regression,
                "seed {seed} rps {rps}: {v:?}"
            );
            let at = v.detected_at.unwrap();
            assert!(at <= 900.0, "seed {seed} rps {rps}: {v:?}");
            if at <= 600.0 {
                assert!(v.reason.contains("since the deploy"), "{}", v.reason);
                second += 1;
            }
        }
    }
    assert!(
        second >= 12,
        "latency x2 called at the second step {second} of 15 times"
    );
    // One-minute steps: by the second bad step too.
    let tr = coarse(880, 60.0, 20.0, |t| At {
        err: if t > 0.0 { 10.0 } else { 1.0 },
        ..normal()
    });
    assert_regression(
        &run(&tr, DetectorConfig::default()),
        Metric::ErrorRate,
        120.0,
    );
}

#[test]
fn at_five_minute_steps_the_error_dispersion_of_six_steps_is_not_widened_again() {
    // Errors x10 at 2-5 req/s and a base rate of 0.5%: a dozen errors a
    // 5-minute step where the baseline had one or two. The dispersion of
    // the error rate, estimated on the six baseline steps and shrunk
    // towards its prior, is not widened once more for the baseline's
    // shortness (x1.8), which held these to the third step.
    for (seed, rps) in [(906, 2.0), (920, 2.0), (936, 2.0), (929, 5.0)] {
        let tr = sim(seed, rps, 0.005, 300.0, 6, 6, |t| At {
            err: if t > 0.0 { 10.0 } else { 1.0 },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, Metric::ErrorRate, 600.0);
        assert_eq!(v.detected_at, Some(600.0), "seed {seed}: {}", v.reason);
        // The same service without the rise stays quiet.
        let tr = sim(seed, rps, 0.005, 300.0, 6, 6, |_| normal());
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

#[test]
fn at_coarse_steps_one_bad_step_never_decides_and_a_faint_regression_takes_longer() {
    // A single 5-minute step at x10 errors (an incident in the baseline's
    // own style) then back: never a verdict on one step.
    for seed in 0..5 {
        let tr = coarse(890 + seed, 300.0, 100.0, |t| At {
            err: if t == 900.0 { 10.0 } else { 1.0 },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
    // A faint latency bump (x1.3 for 15 minutes right after the deploy)
    // at 5-minute steps: caught, but not on the first step.
    let tr = coarse(895, 300.0, 200.0, |t| At {
        lat: if t > 0.0 && t <= 900.0 {
            [1.3; 3]
        } else {
            [1.0; 3]
        },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
    let at = v.detected_at.unwrap();
    assert!((600.0..=900.0).contains(&at), "{v:?}");
}

#[test]
fn a_warmup_inside_the_first_coarse_step_is_tolerated() {
    // Errors x9 and latency x3 for the first 30 s: at 60 s and 300 s steps
    // it is part of the first step only.
    for dt in [60.0, 300.0] {
        for seed in 0..5 {
            let tr = coarse(900 + seed, dt, 200.0, |t| {
                // Share of the first step spent in the warm-up.
                let w = if t > 0.0 && t <= dt { 30.0 / dt } else { 0.0 };
                At {
                    err: 1.0 + 8.0 * w,
                    lat: [1.0 + 2.0 * w; 3],
                    ..normal()
                }
            });
            assert_quiet(&run(&tr, DetectorConfig::default()));
        }
    }
}

#[test]
fn a_gap_of_several_coarse_steps_is_insufficient_data_never_health() {
    let tr = coarse(910, 300.0, 100.0, |t| At {
        gap: t >= 900.0,
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::InsufficientData, "{v:?}");
    assert!(v.reason.contains("no metrics for 4 steps"), "{}", v.reason);
}

#[test]
fn verdict_kinds_read_as_words() {
    assert_eq!(
        VerdictKind::InsufficientData.to_string(),
        "insufficient data"
    );
    assert_eq!(VerdictKind::Collecting.to_string(), "collecting");
    assert_eq!(VerdictKind::Healthy.to_string(), "healthy");
    assert_eq!(VerdictKind::Regression.to_string(), "regression");
}

#[test]
fn at_five_minute_steps_a_blip_step_and_a_slightly_slow_one_are_no_latency_regression() {
    // Worst-of-merged quantiles: a 10-second blip (x2) makes its whole
    // 5-minute step look slow, in the baseline (at -15 min) as in the
    // window (at +10 min), and the next window step is a little slow (x1.3).
    // The baseline's own tail says such steps happen: no verdict.
    let blip = |t: f64| At {
        lat: if t == -900.0 || t == 600.0 {
            [2.0; 3]
        } else if t == 900.0 {
            [1.3; 3]
        } else {
            [1.0; 3]
        },
        ..normal()
    };
    for seed in 0..5 {
        let tr = coarse(920 + seed, 300.0, 100.0, blip);
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
    // The same baseline, and a real x2 latency from the deploy on: caught,
    // if later than against a baseline without a tail.
    let tr = coarse(925, 300.0, 100.0, |t| At {
        lat: if t == -900.0 || t > 0.0 {
            [2.0; 3]
        } else {
            [1.0; 3]
        },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
}

#[test]
fn an_overwhelming_bad_release_at_high_traffic_is_called_inside_the_warmup() {
    // Warm-up in evidence and time: x10 errors and x2 latency at 400 req/s
    // from the deploy on, not fading: called at the third step (30 s, the
    // minimum evidence span), not after the 30 s allowance.
    for seed in 0..5 {
        let tr = std_trace(530 + seed, 400.0, |t| At {
            err: if t > 0.0 { 10.0 } else { 1.0 },
            lat: if t > 0.0 { [2.0; 3] } else { [1.0; 3] },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
        assert!(v.detected_at.unwrap() < 40.0, "{v:?}");
        assert!(v.reason.contains("inside the warm-up"), "{}", v.reason);
    }
    // A warm-up as strong at first but fading (x10, x5.5, x4 errors; x3,
    // x2, x1.7 latency) at the same traffic: no verdict.
    for seed in 0..5 {
        let tr = std_trace(540 + seed, 400.0, |t| {
            let k = (t / 10.0).round();
            let (e, l) = if (1.0..=3.0).contains(&k) {
                (1.0 + 9.0 / k, 1.0 + 2.0 / k)
            } else {
                (1.0, 1.0)
            };
            At {
                err: e,
                lat: [l; 3],
                ..normal()
            }
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
}

#[test]
fn at_five_minute_steps_two_blip_steps_in_a_row_are_no_latency_regression() {
    // A worst-of-merged quantile: one 10-second blip (x2.5) inside each of
    // two consecutive 5-minute steps makes both look as slow as a real x2.
    for seed in 0..5 {
        for rps in [5.0, 50.0, 500.0] {
            let tr = coarse(930 + seed, 300.0, rps, |t| At {
                lat: if t == 900.0 || t == 1200.0 {
                    [2.5; 3]
                } else {
                    [1.0; 3]
                },
                ..normal()
            });
            assert_quiet(&run(&tr, DetectorConfig::default()));
        }
    }
    // One-minute steps too: their 30 baseline steps cannot say how often
    // two blip minutes come in a row either.
    for seed in 0..5 {
        let tr = coarse(935 + seed, 60.0, 50.0, |t| At {
            lat: if t == 600.0 || t == 660.0 {
                [2.5; 3]
            } else {
                [1.0; 3]
            },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
    // A real x2 from the deploy on is a steady shift since the deploy:
    // still the second one-minute step.
    let tr = coarse(940, 60.0, 50.0, |t| At {
        lat: if t > 0.0 { [2.0; 3] } else { [1.0; 3] },
        ..normal()
    });
    let v = run(&tr, DetectorConfig::default());
    assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
    assert!(v.detected_at.unwrap() <= 120.0, "{v:?}");
}

#[test]
fn a_two_step_error_burst_is_not_a_sustained_rise() {
    // Twenty seconds of x12 errors just after the warm-up, then normal:
    // the step tests see a burst too short to decide, and the whole-window
    // test judges only stretches of two minutes or more, never the burst
    // alone.
    for seed in 0..8 {
        let tr = std_trace(950 + seed, 300.0, |t| At {
            err: if (40.0..=50.0).contains(&t) {
                12.0
            } else {
                1.0
            },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert!(!v.reason.contains("a sustained rise"), "seed {seed}: {v:?}");
    }
}

#[test]
fn a_tripled_error_rate_at_a_dozen_baseline_errors_is_caught_most_times() {
    // 1 req/s at 0.7%: about 12 errors in the whole baseline, a step
    // expects 0.07 of one. An error or two in one step is then an event
    // among others, and the whole-window test counts every one of them.
    let mut caught = Vec::new();
    for seed in 0..20 {
        let tr = sim(1200 + seed, 1.0, 0.007, 10.0, 180, 180, |t| At {
            err: if t > 0.0 { 3.0 } else { 1.0 },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        if v.kind == VerdictKind::Regression {
            assert_eq!(v.metric, Some(Metric::ErrorRate), "{v:?}");
            caught.push(v.detected_at.unwrap());
        }
    }
    // Near what the counts allow at all (the baseline rate itself is
    // uncertain by a third): at least half, where leaving out each
    // stretch's worst step caught 10.
    assert!(
        caught.len() >= 11,
        "caught {} of 20: {caught:?}",
        caught.len()
    );
}

#[test]
fn at_five_minute_steps_a_latency_bump_right_after_the_deploy_is_caught_while_it_lasts() {
    // Everything x1.6 slower for the first 10 or 15 minutes, then back
    // (what a Kayenta-style comparison catches on CloudWatch data): two or
    // three 5-minute steps. Called while it lasts: a 10-minute bump only
    // by the second step, as a steady shift since the deploy (measured:
    // 11 of 15; the rest look like two unlike blips).
    let mut ten = 0;
    for seed in 0..5 {
        for rps in [5.0, 50.0, 500.0] {
            for len in [600.0, 900.0] {
                let tr = coarse(1300 + seed, 300.0, rps, |t| At {
                    lat: if t > 0.0 && t <= len {
                        [1.6; 3]
                    } else {
                        [1.0; 3]
                    },
                    ..normal()
                });
                let v = run(&tr, DetectorConfig::default());
                if len == 600.0 {
                    ten += usize::from(v.kind == VerdictKind::Regression);
                    continue;
                }
                assert_eq!(
                    v.kind,
                    VerdictKind::Regression,
                    "seed {seed} rps {rps}: {v:?}"
                );
                assert!(
                    v.detected_at.unwrap() <= len,
                    "seed {seed} rps {rps}: {v:?}"
                );
            }
        }
    }
    assert!(ten >= 10, "10-minute bumps caught {ten} of 15 times");
}

#[test]
fn at_five_minute_steps_only_a_steady_broad_shift_from_the_deploy_is_called_at_the_second_step() {
    for seed in 0..5 {
        // Two blip steps right after the deploy, unlike in size (x2.6, then
        // x1.5): no steady shift, and two steps are not enough.
        let tr = coarse(1320 + seed, 300.0, 100.0, |t| At {
            lat: if t == 300.0 {
                [2.6; 3]
            } else if t == 600.0 {
                [1.5; 3]
            } else {
                [1.0; 3]
            },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
        // A warm-up that makes the first 5-minute step look x2.5 slow (a
        // worst-of-merged quantile carries it) and is gone by the second.
        let tr = coarse(1330 + seed, 300.0, 100.0, |t| At {
            lat: if t == 300.0 { [2.5; 3] } else { [1.0; 3] },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
        // A real x2 that begins ten minutes after the deploy: its first
        // two steps could be two blips anywhere in the window, so the third
        // decides.
        let tr = coarse(1340 + seed, 300.0, 100.0, |t| At {
            lat: if t > 600.0 { [2.0; 3] } else { [1.0; 3] },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
        let at = v.detected_at.unwrap();
        assert!(at > 1200.0 && at <= 1500.0, "{v:?}");
        assert!(!v.reason.contains("since the deploy"), "{}", v.reason);
    }
}

#[test]
fn at_fifteen_second_steps_a_latency_shift_still_decides_in_two_steps() {
    // A native 15 s scrape is no coarse metric: its quantiles are not the
    // worst of many shorter ones, and 30 minutes of baseline hold 120
    // steps. A x2 that begins ten minutes in is called by its second step.
    for seed in 0..5 {
        let tr = sim(1350 + seed, 50.0, 0.005, 15.0, 120, 120, |t| At {
            lat: if t > 600.0 { [2.0; 3] } else { [1.0; 3] },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
        let at = v.detected_at.unwrap();
        assert!(at > 600.0 && at <= 630.0, "seed {seed}: {v:?}");
    }
}

#[test]
fn a_healthy_dip_with_an_error_blip_inside_stays_quiet() {
    // 70% of the requests gone for 15 minutes, and inside the dip one step
    // of x10 errors (a client retrying a bad batch). The blip drives the
    // error CUSUMs half way to the threshold, which made the fall look
    // like a collapse with "the error rate rose with it" in 15 of these
    // 120 traces; errors corroborate a fall only when they rose over the
    // fall beyond its worst step. What is left is the noise's own error
    // bursts landing on the fall (2 of 120).
    let mut calls = Vec::new();
    for seed in 0..40 {
        for rps in [2.0, 50.0, 500.0] {
            let tr = std_trace(1300 + seed, rps, |t| At {
                err: if t == 600.0 { 10.0 } else { 1.0 },
                ..dip(0.7, 300.0, 1200.0)(t)
            });
            let v = run(&tr, DetectorConfig::default());
            if v.kind != VerdictKind::Healthy {
                calls.push(format!("seed {seed} rps {rps}: {}", v.reason));
            }
        }
    }
    assert!(calls.len() <= 3, "{} of 120: {calls:#?}", calls.len());
}

/// When a 10 s trace's regression is called (None: never).
fn called_at(tr: &[Sample]) -> Option<f64> {
    let v = run(tr, DetectorConfig::default());
    (v.kind == VerdictKind::Regression).then(|| v.detected_at.unwrap())
}

#[test]
fn a_steady_latency_shift_at_ten_second_steps_is_called_at_thirty_seconds() {
    // Warm-up in evidence: every quantile x2 from the deploy on, steady,
    // at 50 req/s (no step alone near the threshold). The warm-up
    // allowance (3/4 of the threshold over the first 30 s) would hold it
    // to the fourth step; its signal does not fade, so it is called at the
    // third (the minimum evidence span), and the reason says why.
    for seed in 0..10 {
        let tr = std_trace(1200 + seed, 50.0, |t| At {
            lat: if t > 0.0 { [2.0; 3] } else { [1.0; 3] },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
        assert_ne!(v.metric, Some(Metric::ErrorRate), "{v:?}");
        assert_eq!(v.detected_at, Some(30.0), "seed {seed}: {}", v.reason);
        assert!(v.reason.contains("inside the warm-up"), "{}", v.reason);
    }
}

#[test]
fn a_fading_warmup_stays_quiet_at_any_traffic() {
    // The corpus' warm-up shape: x(1 + (f - 1) / k) in the k-th step for
    // up to three steps, errors and every quantile, traffic down a fifth.
    // At low traffic a p95 of 30 requests is noisy enough to look steady
    // by its point estimate alone; the fading test needs the signal
    // clearly steady, so these stay quiet.
    for rps in [3.0, 20.0, 100.0, 400.0] {
        for seed in 0..8 {
            let tr = std_trace(1300 + seed, rps, |t| {
                let k = (t / 10.0).round();
                if (1.0..=3.0).contains(&k) {
                    At {
                        traffic: 0.8,
                        err: 1.0 + 7.0 / k,
                        lat: [1.0 + 2.0 / k; 3],
                        ..normal()
                    }
                } else {
                    normal()
                }
            });
            assert_eq!(called_at(&tr), None, "rps {rps} seed {seed}");
        }
    }
}

#[test]
fn at_five_minute_steps_a_blip_step_in_the_baseline_does_not_hide_a_steady_shift() {
    // Six baseline steps, one of them a blip (every quantile x2.5, a
    // worst-of-merged 10-second spike): that step widens the latency noise
    // estimate so far that a x2 shift of every quantile would need a third
    // step. A steady shift since the deploy is judged by the noise of the
    // other steps, so it is called at the second bad step; the widened
    // estimate still guards every other latency call.
    let mut second = 0;
    let mut n = 0;
    for seed in 0..6 {
        for rps in [20.0, 200.0] {
            let tr = coarse(1400 + seed, 300.0, rps, |t| At {
                lat: if t > 0.0 {
                    [2.0; 3]
                } else if t == -600.0 {
                    [2.5; 3]
                } else {
                    [1.0; 3]
                },
                ..normal()
            });
            let v = run(&tr, DetectorConfig::default());
            assert_eq!(
                v.kind,
                VerdictKind::Regression,
                "seed {seed} rps {rps}: {v:?}"
            );
            n += 1;
            if v.detected_at == Some(600.0) {
                second += 1;
                assert!(v.reason.contains("steady shift"), "{}", v.reason);
            }
        }
    }
    assert!(
        second * 4 >= n * 3,
        "only {second} of {n} at the second step"
    );
    // The same baseline with no shift, but two blip steps in a row right
    // after the deploy (x2.5 then x1.6, as blips differ): no verdict.
    for seed in 0..6 {
        for rps in [20.0, 200.0] {
            let tr = coarse(1420 + seed, 300.0, rps, |t| At {
                lat: if t == -600.0 || t == 300.0 {
                    [2.5; 3]
                } else if t == 600.0 {
                    [1.6; 3]
                } else {
                    [1.0; 3]
                },
                ..normal()
            });
            assert_quiet(&run(&tr, DetectorConfig::default()));
        }
    }
}

/// 30 minutes of an even baseline (1000 requests and 5 errors a step,
/// steady latency), then the window's error counts per 10 s step.
fn even_errors(window: &[f64]) -> Vec<Sample> {
    let row = |t: f64, e: f64| Sample {
        t,
        requests: 1000.0,
        errors: e,
        p50_ms: Some(40.0),
        p95_ms: Some(120.0),
        p99_ms: Some(250.0),
    };
    (0..180)
        .map(|i| row((i as f64 - 179.0) * 10.0, 5.0))
        .chain(
            window
                .iter()
                .enumerate()
                .map(|(i, &e)| row((i + 1) as f64 * 10.0, e)),
        )
        .collect()
}

#[test]
fn a_warmup_that_does_not_fade_gets_its_evidence_back_at_the_first_step_past_it() {
    // Errors about x2.8 from the deploy on, a little uneven in the warm-up
    // (so not steady by the warm-up's own test): the warm-up allowance
    // holds back what its steps brought beyond it, and the fourth step
    // (the first past the warm-up) alone is short of the rest. It is
    // nearer the warm-up's mean rate than the baseline's, so the shift
    // outlasted the warm-up and the held-back evidence counts: called at
    // 40 s, not 50 s.
    let tail = |w: &[f64], e: f64| {
        let mut w = w.to_vec();
        w.resize(20, e);
        w
    };
    let v = run(
        &even_errors(&tail(&[15.0, 14.0, 14.0], 12.0)),
        DetectorConfig::default(),
    );
    assert_regression(&v, Metric::ErrorRate, 40.0);
    assert_eq!(v.detected_at, Some(40.0), "{}", v.reason);
    assert!(v.reason.contains("held past the warm-up"), "{}", v.reason);
    // The same warm-up fading at the fourth step, to the baseline or to
    // less than half its mean excess over the baseline, stays quiet.
    for w in [tail(&[15.0, 14.0, 14.0], 5.0), {
        let mut w = tail(&[15.0, 14.0, 14.0, 9.0], 5.0);
        w.truncate(20);
        w
    }] {
        let v = run(&even_errors(&w), DetectorConfig::default());
        assert_quiet(&v);
    }
}

#[test]
fn an_uneven_warmup_is_confirmed_by_a_step_nearer_its_level_than_the_baseline() {
    // Errors x2.9 in the warm-up (15, 14, 14 a step against 5), then x2
    // (10 a step): the first step past the warm-up holds 5 of the warm-up's
    // mean excess of 9.3 errors, more than half of it, so it is nearer the
    // shift than the baseline, where a warm-up returns. Its evidence counts:
    // called at 40 s. (Against 4/5 of the warm-up's mean level, 11.5
    // errors, it was not confirmed and the call came at 50 s.)
    let mut w = vec![15.0, 14.0, 14.0];
    w.resize(20, 10.0);
    let v = run(&even_errors(&w), DetectorConfig::default());
    assert_regression(&v, Metric::ErrorRate, 40.0);
    assert_eq!(v.detected_at, Some(40.0), "{}", v.reason);
    assert!(v.reason.contains("held past the warm-up"), "{}", v.reason);
    // Less than half the excess (9 errors a step: 4 of 9.3) is no
    // confirmation; back to the baseline after it, it stays quiet.
    let mut w = vec![15.0, 14.0, 14.0, 9.0];
    w.resize(20, 5.0);
    assert_quiet(&run(&even_errors(&w), DetectorConfig::default()));
}

#[test]
fn at_five_minute_steps_a_noisy_quantile_shows_a_x2_shift_by_its_best_fitting_test() {
    // Every quantile x2 from the deploy at 1 req/s: a 5-minute p95 or p99
    // of 300 requests is noisy, so the smallest shift's test (x1.3) alone
    // may fall short of "clearly off" in a step while the x1.7 test, which
    // fits a doubling better, is well past it. A steady shift since the
    // deploy is judged by the test that fits it best: called at the second
    // step.
    for seed in [10, 12, 13] {
        let tr = coarse(1400 + seed, 300.0, 1.0, |t| At {
            lat: if t > 0.0 { [2.0; 3] } else { [1.0; 3] },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_eq!(v.kind, VerdictKind::Regression, "{v:?}");
        assert_eq!(v.detected_at, Some(600.0), "seed {seed}: {}", v.reason);
        assert!(v.reason.contains("since the deploy"), "{}", v.reason);
    }
    // At the same traffic, two unlike blip steps after the deploy and a
    // quiet window stay quiet.
    for seed in 0..10 {
        let tr = coarse(1420 + seed, 300.0, 1.0, |t| At {
            lat: if t == 300.0 {
                [2.6; 3]
            } else if t == 600.0 {
                [1.5; 3]
            } else {
                [1.0; 3]
            },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
        assert_quiet(&run(
            &coarse(1440 + seed, 300.0, 1.0, |_| normal()),
            DetectorConfig::default(),
        ));
    }
}

#[test]
fn a_latency_warmup_settling_through_a_half_step_does_not_get_its_evidence_back() {
    // The first step past an uneven warm-up gives back the evidence the
    // warm-up held when the shift outlasted it. For error rates a step
    // nearer the warm-up's mean than the baseline's level will do (their
    // counts swing by half); a cold start's quantiles settle through about
    // half their shift before they are back, so latency needs 4/5 of the
    // warm-up's mean shift. An uneven cold start (every quantile x1.5,
    // x1.3, x1.4: not steady by the warm-up's own test) that settles
    // through one step at x1.15 is often called on its own evidence (40 s
    // of x1.3 or more); its held-back evidence must rarely be what calls
    // it. (At half the mean shift, 27 of these 160 traces were.)
    let mut held = 0;
    for rps in [3.0, 20.0, 100.0, 400.0] {
        for seed in 0..40 {
            let tr = std_trace(1500 + seed, rps, |t| {
                let k = (t / 10.0).round();
                let lat = if (1.0..=3.0).contains(&k) {
                    [1.5, 1.3, 1.4][k as usize - 1]
                } else if k == 4.0 {
                    1.15
                } else {
                    1.0
                };
                At {
                    lat: [lat; 3],
                    ..normal()
                }
            });
            let v = run(&tr, DetectorConfig::default());
            if v.reason.contains("held past the warm-up") {
                held += 1;
            }
        }
    }
    assert!(held <= 3, "{held} of 160 called on the held-back evidence");
}
#[test]
fn at_coarse_steps_a_fading_warmup_or_a_lone_blip_after_a_clean_step_is_not_called() {
    for seed in 0..5 {
        for rps in [5.0, 50.0, 500.0] {
            for dt in [60.0, 300.0] {
                // A warm-up that makes the first step x2.5 slow and the
                // second x1.6 (fading, though still off): no steady shift.
                let tr = coarse(1420 + seed, dt, rps, |t| At {
                    lat: if t == dt {
                        [2.5; 3]
                    } else if t == 2.0 * dt {
                        [1.6; 3]
                    } else {
                        [1.0; 3]
                    },
                    ..normal()
                });
                assert_quiet(&run(&tr, DetectorConfig::default()));
                // A clean first step, then a blip step: a rise above the
                // first step counts only when the first step was off too.
                let tr = coarse(1430 + seed, dt, rps, |t| At {
                    lat: if t == 2.0 * dt { [3.0; 3] } else { [1.0; 3] },
                    ..normal()
                });
                assert_quiet(&run(&tr, DetectorConfig::default()));
            }
        }
    }
}

#[test]
fn at_five_minute_steps_a_sharp_error_rise_at_low_traffic_is_called_at_the_second_step() {
    // x10 errors at about one request a second: ~1.5 errors a step in the
    // baseline, ~15 after the deploy. Each step alone is capped (no single
    // step decides); two steps that agree on the rise count in full.
    let (mut second, mut agree) = (0, 0);
    for seed in 0..10 {
        let tr = coarse(1500 + seed, 300.0, 1.0, |t| At {
            err: if t > 0.0 { 10.0 } else { 1.0 },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, Metric::ErrorRate, 1200.0);
        if v.detected_at.unwrap() <= 600.0 {
            second += 1;
        }
        agree += usize::from(v.reason.contains("the last two steps agree on the rise"));
    }
    assert!(
        second >= 8,
        "called at the second step {second} of 10 times"
    );
    assert!(agree >= 2, "the agreeing steps decided {agree} of 10 times");
}

#[test]
fn at_five_minute_steps_a_lone_error_burst_or_two_unlike_steps_are_not_called() {
    for seed in 0..10 {
        // One step x10 (a burst inside it), then back to normal.
        let tr = coarse(1520 + seed, 300.0, 1.0, |t| At {
            err: if t == 600.0 { 10.0 } else { 1.0 },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
    // One very high step and a mildly raised one after it: they do not
    // agree on a rise (the first's excess is more than twice the second's),
    // so the first counts only up to the per-step cap.
    for rps in [1.0, 5.0] {
        let mut full = 0;
        for seed in 0..10 {
            let tr = coarse(1540 + seed, 300.0, rps, |t| At {
                err: if t == 600.0 {
                    12.0
                } else if t == 900.0 {
                    2.0
                } else {
                    1.0
                },
                ..normal()
            });
            let v = run(&tr, DetectorConfig::default());
            full += usize::from(v.reason.contains("agree on the rise"));
        }
        assert!(
            full <= 1,
            "rps {rps}: unlike steps counted in full {full} times"
        );
    }
}

#[test]
fn at_five_minute_steps_one_quantile_past_the_whole_threshold_in_each_step_is_a_shift() {
    // Only the p50 doubles (a slower common path; the tail was slow
    // already): one quantile, but each step alone past the whole
    // threshold, steady since the deploy: called at the second step.
    let mut second = 0;
    for seed in 0..5 {
        let tr = coarse(1560 + seed, 300.0, 100.0, |t| At {
            lat: if t > 0.0 { [2.0, 1.0, 1.0] } else { [1.0; 3] },
            ..normal()
        });
        let v = run(&tr, DetectorConfig::default());
        assert_regression(&v, Metric::LatencyP50, 900.0);
        if v.detected_at.unwrap() <= 600.0 {
            assert!(
                v.reason.contains("a steady shift of p50 since the deploy"),
                "{}",
                v.reason
            );
            second += 1;
        }
        // The same quantile with one blip step: never a single step.
        let tr = coarse(1570 + seed, 300.0, 100.0, |t| At {
            lat: if t == 300.0 {
                [3.0, 1.0, 1.0]
            } else {
                [1.0; 3]
            },
            ..normal()
        });
        assert_quiet(&run(&tr, DetectorConfig::default()));
    }
    assert!(second >= 4, "called at the second step {second} of 5 times");
}

/// Six 5-minute baseline steps of 300 requests and one error each, then
/// the window's error counts per step (300 requests each), steady latency.
fn coarse_errors(window: &[f64]) -> Vec<Sample> {
    let row = |t: f64, e: f64| Sample {
        t,
        requests: 300.0,
        errors: e,
        p50_ms: Some(40.0),
        p95_ms: Some(120.0),
        p99_ms: Some(250.0),
    };
    (0..6)
        .map(|i| row((i as f64 - 5.0) * 300.0, 1.0))
        .chain(
            window
                .iter()
                .enumerate()
                .map(|(i, &e)| row((i + 1) as f64 * 300.0, e)),
        )
        .collect()
}

#[test]
fn at_five_minute_steps_two_error_steps_agree_within_the_poisson_error_of_their_counts() {
    // x10 at a request a second: 5 errors then 15 (1.7% then 5.0%, where
    // the baseline had 0.33%). As rates the first step's excess is under
    // half the second's, yet 5 errors are what half the second step's
    // excess predicts (8) within its Poisson error (p = 0.19): the same
    // rise, drawn at a few errors a step. Called at the second step, in
    // either order.
    for window in [[5.0, 15.0, 12.0], [15.0, 5.0, 12.0]] {
        let v = run(&coarse_errors(&window), DetectorConfig::default());
        assert_regression(&v, Metric::ErrorRate, 600.0);
        assert!(v.reason.contains("agree on the rise"), "{}", v.reason);
    }
    // Two errors then 15: the first step is no part of the rise (8
    // expected at half the second's excess; 2 or fewer has p = 0.014), so
    // the second is capped alone.
    let v = run(&coarse_errors(&[2.0, 15.0]), DetectorConfig::default());
    assert_quiet(&v);
}

/// Six 5-minute baseline steps of 3000 requests with the given quantiles'
/// log deviations from 100/300/600 ms, then window steps at the given
/// multiples of those levels (errors steady).
fn coarse_latency(base: &[[f64; 3]], window: &[[f64; 3]]) -> Vec<Sample> {
    let row = |t: f64, x: [f64; 3]| Sample {
        t,
        requests: 3000.0,
        errors: 6.0,
        p50_ms: Some(100.0 * x[0]),
        p95_ms: Some(300.0 * x[1]),
        p99_ms: Some(600.0 * x[2]),
    };
    let nb = base.len();
    base.iter()
        .enumerate()
        .map(|(i, d)| {
            row(
                (i as f64 - nb as f64 + 1.0) * 300.0,
                [d[0].exp(), d[1].exp(), d[2].exp()],
            )
        })
        .chain(
            window
                .iter()
                .enumerate()
                .map(|(i, &x)| row((i + 1) as f64 * 300.0, x)),
        )
        .collect()
}

#[test]
fn at_five_minute_steps_two_blip_steps_like_the_baselines_own_are_not_a_shift_at_the_second_step() {
    // The baseline holds one step slower by x2.2 in every quantile (a
    // worst-of-merged step that took the slowest sub-step); two such
    // steps right after the deploy happen under the baseline's own blip
    // process (about 1 in 36 at a blip share of 1 in 6), so they are no
    // steady shift at the second step. A pooled test with a null that
    // left the blip step out (tried in session 17, reverted) called this.
    let base = [
        [0.0, 0.0, 0.0],
        [0.04, 0.25, -0.3],
        [-0.03, -0.2, 0.25],
        [0.01, 0.15, 0.2],
        [-0.01, -0.25, -0.2],
        [0.79, 0.79, 0.79],
    ];
    let blips = coarse_latency(&base, &[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]);
    let v = run(&blips, DetectorConfig::default());
    assert_ne!(v.detected_at, Some(600.0), "{}", v.reason);
    // Nor a step fading to x1.3 at the second, nor a lone x2 step.
    let fading = coarse_latency(&base, &[[2.0, 1.9, 2.0], [1.3, 1.3, 1.3]]);
    let v = run(&fading, DetectorConfig::default());
    assert_ne!(v.detected_at, Some(600.0), "{}", v.reason);
    let lone = coarse_latency(&base, &[[2.0, 1.9, 2.0], [1.0, 1.0, 1.0]]);
    assert_quiet(&run(&lone, DetectorConfig::default()));
}
