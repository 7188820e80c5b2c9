use super::*;

fn steps(n: usize, requests: f64, errors: f64, p95: f64) -> Traffic {
    let s: Vec<Sample> = (0..n)
        .map(|i| Sample {
            t: i as f64,
            requests,
            errors,
            p50_ms: None,
            p95_ms: Some(p95),
            p99_ms: None,
        })
        .collect();
    Traffic::of(&s)
}
fn base<'a>() -> HealthInput<'a> {
    HealthInput {
        reachable: true,
        metrics_configured: true,
        baseline_span: "last 30 min",
        ..HealthInput::default()
    }
}

/// What [`expect`] checks an assessment's detail for.
#[derive(Clone, Copy, Debug)]
enum Says<'a> {
    /// Nothing: the test checks it apart, or not at all.
    Anything,
    Exactly(&'a str),
    Has(&'a str),
    StartsWith(&'a str),
    EndsWith(&'a str),
}

/// Assess `i` and assert its health, its comparison (when given) and its
/// detail; the assessment is returned for whatever else a test checks.
#[track_caller]
fn expect(
    i: &HealthInput<'_>,
    health: Health,
    comparison: Option<Comparison>,
    says: Says<'_>,
) -> HealthAssessment {
    let a = assess(i);
    assert_eq!(a.health, health, "{}", a.detail);
    if let Some(c) = comparison {
        assert_eq!(a.comparison, c, "{}", a.detail);
    }
    let d = a.detail.as_str();
    match says {
        Says::Anything => {}
        Says::Exactly(want) => assert_eq!(d, want),
        Says::Has(part) => assert!(d.contains(part), "{d:?} lacks {part:?}"),
        Says::StartsWith(part) => {
            assert!(d.starts_with(part), "{d:?} does not start with {part:?}")
        }
        Says::EndsWith(part) => assert!(d.ends_with(part), "{d:?} does not end with {part:?}"),
    }
    a
}

#[test]
fn missing_data_is_pending_only_for_what_the_warm_up_explains() {
    let since = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let first = WarmingUp {
        since,
        first_scrape: true,
    };
    let later = WarmingUp {
        first_scrape: false,
        ..first
    };
    // No step yet after one scrape: pending, with why and since when.
    let mut i = base();
    i.warming_up = Some(first);
    let a = expect(
        &i,
        Health::WarmingUp,
        None,
        Says::Has("rates need two scrapes"),
    );
    let w = a.warm_up.unwrap();
    assert_eq!((w.since, w.reason), (since, WarmUpReason::FirstScrape));
    // Past the first scrape, no step is silence: unknown.
    i.warming_up = Some(later);
    assert_eq!(assess(&i).health, Health::Unknown);
    // Steps but a short baseline: pending while warming up, saying how far.
    i.recent = Some(steps(5, 1000.0, 2.0, 100.0));
    i.baseline = Some(steps(1, 1000.0, 2.0, 100.0));
    let a = expect(&i, Health::WarmingUp, None, Says::Has("1 of 3 steps"));
    assert_eq!(
        a.warm_up.unwrap().reason,
        WarmUpReason::Baseline { have: 1, need: 3 }
    );
    // … and unknown once the warm-up is over.
    i.warming_up = None;
    let a = expect(&i, Health::Unknown, None, Says::Anything);
    assert!(a.warm_up.is_none());
    // A baseline long enough but without traffic is no warm-up.
    i.warming_up = Some(later);
    i.baseline = Some(steps(4, 0.0, 0.0, 100.0));
    assert_eq!(assess(&i).health, Health::Unknown);
    // Warm-up never hides what is known: a clear rise is degraded.
    i.baseline = Some(steps(1, 1000.0, 2.0, 100.0));
    i.max_error_rate = Some(0.01);
    i.recent = Some(steps(5, 1000.0, 200.0, 100.0));
    assert_eq!(assess(&i).health, Health::Degraded);
}

#[test]
fn traffic_sums_data_steps_and_takes_the_median_p95() {
    let mut s: Vec<Sample> = [(100.0, 1.0, 10.0), (200.0, 3.0, 30.0), (100.0, 0.0, 20.0)]
        .iter()
        .map(|&(r, e, p)| Sample {
            t: 0.0,
            requests: r,
            errors: e,
            p50_ms: None,
            p95_ms: Some(p),
            p99_ms: None,
        })
        .collect();
    s.push(Sample {
        t: 0.0,
        requests: f64::NAN,
        errors: f64::NAN,
        p50_ms: None,
        p95_ms: None,
        p99_ms: None,
    });
    let t = Traffic::of(&s);
    assert_eq!((t.requests, t.errors, t.steps), (400.0, 4.0, 3));
    assert_eq!(t.p95_ms, Some(20.0));
    assert_eq!(t.error_rate(), Some(0.01));
    assert_eq!(Traffic::of(&[]).error_rate(), None);
}

#[test]
fn unreachable_is_down_whatever_the_metrics() {
    let mut i = base();
    i.reachable = false;
    i.reach_error = Some("connection refused");
    i.recent = Some(steps(5, 1000.0, 1.0, 100.0));
    expect(
        &i,
        Health::Down,
        Some(Comparison::Reachability),
        Says::Has("connection refused"),
    );
}

#[test]
fn a_version_endpoint_that_answered_garbage_is_not_said_to_be_silent() {
    let why = "version source of staging (http://127.0.0.1:9/v): unusable answer: the value at /version is not a string: 5";
    let mut i = base();
    i.reachable = false;
    i.reach_error = Some(why);
    let a = expect(
        &i,
        Health::Down,
        Some(Comparison::Reachability),
        Says::Exactly(&format!("no version read: {why}")),
    );
    assert!(!a.detail.contains("does not answer"), "{}", a.detail);
}

#[test]
fn a_caught_regression_is_degraded() {
    let mut i = base();
    i.state = Some(EnvState::Regression);
    expect(
        &i,
        Health::Degraded,
        Some(Comparison::MonitoringWindow),
        Says::Anything,
    );
}

#[test]
fn without_a_metrics_source_reachable_is_healthy_and_says_so() {
    let mut i = base();
    i.metrics_configured = false;
    expect(
        &i,
        Health::Healthy,
        Some(Comparison::Reachability),
        Says::Has("no metrics source"),
    );
}

#[test]
fn no_recent_traffic_or_no_baseline_is_unknown_not_healthy() {
    let i = base();
    assert_eq!(assess(&i).health, Health::Unknown);
    let mut i = base();
    i.recent = Some(steps(5, 0.0, 0.0, 0.0));
    assert_eq!(assess(&i).health, Health::Unknown);
    let mut i = base();
    i.recent = Some(steps(5, 1000.0, 3.0, 100.0));
    expect(&i, Health::Unknown, None, Says::Has("no baseline yet"));
}

#[test]
fn a_breached_limit_is_degraded() {
    let mut i = base();
    i.recent = Some(steps(5, 1000.0, 60.0, 100.0));
    i.max_error_rate = Some(0.05);
    expect(
        &i,
        Health::Degraded,
        Some(Comparison::Limits),
        Says::Exactly("error rate 6.00% above the limit 5.00%"),
    );
    let mut i = base();
    i.recent = Some(steps(5, 1000.0, 0.0, 300.0));
    i.max_p95_ms = Some(250.0);
    assert_eq!(assess(&i).detail, "p95 300ms above the limit 250ms");
    // Within the limits and nothing else to compare with.
    i.max_p95_ms = Some(400.0);
    expect(
        &i,
        Health::Healthy,
        Some(Comparison::Limits),
        Says::Anything,
    );
}

#[test]
fn twelve_percent_errors_against_its_own_baseline_is_degraded() {
    let mut i = base();
    i.recent = Some(steps(5, 200.0, 26.0, 100.0));
    i.baseline = Some(steps(30, 200.0, 0.7, 100.0));
    expect(
        &i,
        Health::Degraded,
        Some(Comparison::OwnBaseline),
        Says::Exactly("error rate 13.00% vs 0.35% over its own last 30 min"),
    );
}

#[test]
fn latency_doubling_against_its_own_baseline_is_degraded() {
    let mut i = base();
    i.recent = Some(steps(5, 200.0, 1.0, 260.0));
    i.baseline = Some(steps(30, 200.0, 1.0, 100.0));
    expect(
        &i,
        Health::Degraded,
        None,
        Says::StartsWith("p95 260ms vs 100ms"),
    );
}

#[test]
fn noise_is_not_a_regression() {
    // One error in 20 requests over a spotless baseline: 5%, but noise.
    let mut i = base();
    i.recent = Some(steps(1, 20.0, 1.0, 100.0));
    i.baseline = Some(steps(30, 20.0, 0.0, 100.0));
    expect(
        &i,
        Health::Healthy,
        Some(Comparison::OwnBaseline),
        Says::Has("in line with its own last 30 min"),
    );
    // A baseline too short is not used.
    i.baseline = Some(steps(2, 20.0, 0.0, 100.0));
    assert_eq!(assess(&i).health, Health::Unknown);
}

#[test]
fn a_few_scattered_errors_against_a_short_clean_baseline_are_noise() {
    // 0 of 300 requests, then 6 of 300: 2% against 0%, and six errors
    // where the baseline's pseudo-rate expected one read as a z of 5 —
    // but if both shared one rate, all six fall on now with odds 1/64.
    let mut i = base();
    i.baseline = Some(steps(3, 100.0, 0.0, 100.0));
    i.recent = Some(steps(5, 60.0, 1.2, 100.0));
    expect(
        &i,
        Health::Healthy,
        Some(Comparison::OwnBaseline),
        Says::Exactly("error rate 2.00%, p95 100ms: in line with its own last 30 min"),
    );
    // Nine of 300 (3.0%): 2^-9, within what 300 clean requests can hide.
    i.recent = Some(steps(5, 60.0, 1.8, 100.0));
    assert_eq!(assess(&i).health, Health::Healthy);
    // Ten of 300 (3.3%) against none: 2^-10, a rise (at the tail of
    // four deviations it took sixteen).
    i.recent = Some(steps(5, 60.0, 2.0, 100.0));
    expect(
        &i,
        Health::Degraded,
        None,
        Says::Exactly("error rate 3.33% vs 0.00% over its own last 30 min"),
    );
    // Fourteen of 300 (4.7%), which read healthy before.
    i.recent = Some(steps(5, 60.0, 2.8, 100.0));
    assert_eq!(assess(&i).health, Health::Degraded);
}

#[test]
fn a_rise_over_a_short_baseline_with_errors_is_degraded() {
    // 3 of 300, then 23 of 300 (1% to 7.7%): if both shared one rate,
    // 23 of the 26 errors fall on now with odds 4.4e-5. It read healthy.
    let mut i = base();
    i.baseline = Some(steps(3, 100.0, 1.0, 100.0));
    i.recent = Some(steps(5, 60.0, 4.6, 100.0));
    expect(
        &i,
        Health::Degraded,
        None,
        Says::Exactly("error rate 7.67% vs 1.00% over its own last 30 min"),
    );
    // 3 of 300, then 14 of 300 (4.7%): 14 of 17 on now is 6e-3, noise
    // for a baseline of 300 (the ratio and the excess alone would pass).
    i.recent = Some(steps(5, 60.0, 2.8, 100.0));
    expect(&i, Health::Healthy, None, Says::Anything);
    // 6 of 300, then 20 of 300: 4.7e-3, noise too.
    i.baseline = Some(steps(3, 100.0, 2.0, 100.0));
    i.recent = Some(steps(5, 60.0, 4.0, 100.0));
    assert_eq!(assess(&i).health, Health::Healthy);
}

#[test]
fn a_stationary_error_rate_over_a_short_baseline_is_rarely_degraded() {
    // Drawn: 2000 stationary environments per rate (seed 1312), Poisson
    // errors at the same rate over a baseline of 3 steps of 100 and now
    // 5 steps of 60. Expected by chance at MAX_P = 1e-3: under 1 in
    // 1,000 reads at each rate (computed: 5e-4 at most).
    let mut r = crate::monitor::eval::rng::Rng::new(1312);
    let mut draw = |n: usize, requests: f64, rate: f64| {
        let s: Vec<Sample> = (0..n)
            .map(|k| Sample {
                t: k as f64,
                requests,
                errors: r.poisson(requests * rate),
                p50_ms: None,
                p95_ms: Some(100.0),
                p99_ms: None,
            })
            .collect();
        Traffic::of(&s)
    };
    for rate in [0.002, 0.01, 0.02, 0.05] {
        let degraded = (0..2000)
            .filter(|_| {
                let mut i = base();
                i.baseline = Some(draw(3, 100.0, rate));
                i.recent = Some(draw(5, 60.0, rate));
                assess(&i).health == Health::Degraded
            })
            .count();
        assert!(degraded <= 4, "{degraded} of 2000 at {rate}");
    }
}

#[test]
fn steps_kept_from_before_a_failed_read_are_never_health() {
    let why = "metrics source http://p gives unusable numbers: the requests query q is NaN, which no count can be";
    let mut i = base();
    i.recent = Some(steps(5, 200.0, 1.0, 100.0));
    i.baseline = Some(steps(30, 200.0, 1.0, 100.0));
    assert_eq!(assess(&i).health, Health::Healthy);
    i.metrics_failed = Some(why);
    expect(
        &i,
        Health::Unknown,
        Some(Comparison::Reachability),
        Says::StartsWith("reachable; the last steps read showed error rate 0.50%, p95 100ms"),
    );
    expect(
        &i,
        Health::Unknown,
        None,
        Says::EndsWith(&format!("cannot be read now: {why}")),
    );
    // What they show against the baseline still counts when it is bad.
    i.recent = Some(steps(5, 200.0, 30.0, 100.0));
    assert_eq!(assess(&i).health, Health::Degraded);
    // No step at all: unknown, saying why rather than "no traffic".
    i.recent = None;
    expect(
        &i,
        Health::Unknown,
        None,
        Says::Exactly(&format!("reachable; no usable metrics to judge: {why}")),
    );
}

/// Steps of a stationary environment at `rps` requests a step:
/// Poisson counts, log-normal latencies (median 30 ms, p95 3× that, as
/// the demo's), each step's p95 the nearest-rank quantile of its own
/// requests (none without any) — what a histogram gives at low traffic.
fn drawn(r: &mut crate::monitor::eval::rng::Rng, n: usize, rps: f64, slower: f64) -> Traffic {
    let sigma = 3f64.ln() / 1.644_853_6;
    let s: Vec<Sample> = (0..n)
        .map(|i| {
            let k = r.poisson(rps) as usize;
            let mut l: Vec<f64> = (0..k)
                .map(|_| slower * 30.0 * (sigma * r.normal()).exp())
                .collect();
            l.sort_by(f64::total_cmp);
            let p95 = (k > 0).then(|| l[((0.95 * k as f64).ceil() as usize).max(1) - 1]);
            Sample {
                t: i as f64,
                requests: k as f64,
                errors: 0.0,
                p50_ms: None,
                p95_ms: p95,
                p99_ms: None,
            }
        })
        .collect();
    Traffic::of(&s)
}

#[test]
fn a_p95_of_a_handful_of_requests_is_no_latency_rise() {
    // One request a step: each step's "p95" is that request's latency,
    // so two or five slow requests made it degraded.
    let mut i = base();
    i.baseline = Some(steps(30, 1.0, 0.0, 100.0));
    i.recent = Some(steps(5, 1.0, 0.0, 260.0));
    expect(&i, Health::Healthy, None, Says::Anything);
    // … and it says so: a 50x p95 at 5 requests a step is not "in
    // line", it was not compared.
    i.baseline = Some(steps(30, 5.0, 0.0, 100.0));
    i.recent = Some(steps(5, 5.0, 0.0, 5000.0));
    expect(
        &i,
        Health::Healthy,
        None,
        Says::Exactly(
            "error rate 0.00%, p95 5000ms: in line with its own last 30 min; latency not compared (too few requests)",
        ),
    );
    // Compared (enough requests) and in line: no such note.
    i.baseline = Some(steps(30, 20.0, 0.0, 100.0));
    i.recent = Some(steps(5, 20.0, 0.0, 110.0));
    assert_eq!(
        assess(&i).detail,
        "error rate 0.00%, p95 110ms: in line with its own last 30 min"
    );
    // One coarse step (5 minutes, 30,000 requests) with the p95 tripled
    // is evidence enough; it waited for a second step.
    i.baseline = Some(steps(30, 30_000.0, 0.0, 100.0));
    i.recent = Some(steps(1, 30_000.0, 0.0, 300.0));
    expect(
        &i,
        Health::Degraded,
        None,
        Says::StartsWith("p95 300ms vs 100ms"),
    );

    // Drawn: 1000 stationary environments per case (seed 1207). With
    // a count of steps (>= 2) the rule read 45 of 2000 degraded at 1
    // request a step, 15 at 2, and 654 when traffic rose from 1 to 20 a
    // step (a baseline "p95" of single requests is their median).
    let mut r = crate::monitor::eval::rng::Rng::new(1207);
    let mut degraded = |base_rps: f64, rps: f64, slower: f64| {
        (0..1000)
            .filter(|_| {
                let mut i = base();
                i.baseline = Some(drawn(&mut r, 30, base_rps, 1.0));
                i.recent = Some(drawn(&mut r, 5, rps, slower));
                assess(&i).health == Health::Degraded
            })
            .count()
    };
    assert_eq!(degraded(1.0, 1.0, 1.0), 0);
    assert_eq!(degraded(2.0, 2.0, 1.0), 0);
    assert_eq!(degraded(1.0, 20.0, 1.0), 0);
    assert_eq!(degraded(2.0, 30.0, 1.0), 0);
    assert!(degraded(200.0, 200.0, 1.0) <= 2);
    // What there is evidence for is still seen: a p95 three times as
    // slow at 20 requests a step (it was 96%), at 200 always.
    let caught = degraded(20.0, 20.0, 3.0);
    assert!(caught >= 900, "{caught} of 1000");
    assert_eq!(degraded(200.0, 200.0, 3.0), 1000);
}

#[test]
fn a_real_jump_after_a_clean_baseline_is_degraded() {
    // 0 of 3000, then 30 of 3000: 2^-30 if the rate were the same.
    let mut i = base();
    i.baseline = Some(steps(3, 1000.0, 0.0, 100.0));
    i.recent = Some(steps(5, 600.0, 6.0, 100.0));
    expect(
        &i,
        Health::Degraded,
        Some(Comparison::OwnBaseline),
        Says::Exactly("error rate 1.00% vs 0.00% over its own last 30 min"),
    );
}

#[test]
fn a_long_baseline_keeps_its_sensitivity() {
    // 1000 requests now against 180 steps of 200 (36,000): the first
    // error count read as a rise is where it was with the one-sample
    // test — the ratio and the handful decide, not the baseline's
    // own uncertainty.
    let first_degraded = |per_step_base_errors: f64| {
        (0..=100)
            .find(|&e| {
                let mut i = base();
                i.baseline = Some(steps(180, 200.0, per_step_base_errors, 100.0));
                i.recent = Some(steps(5, 200.0, e as f64 / 5.0, 100.0));
                assess(&i).health == Health::Degraded
            })
            .unwrap()
    };
    // Clean: six errors (five beyond none, 0.6% > 0.5%).
    assert_eq!(first_degraded(0.0), 6);
    // 0.15%: ten (1.0% > 3 × 0.15% + 0.5%).
    assert_eq!(first_degraded(0.3), 10);
    // 0.35%: sixteen (1.6% > 3 × 0.35% + 0.5%).
    assert_eq!(first_degraded(0.7), 16);
}

#[test]
fn a_stage_bad_since_it_started_is_caught_against_production() {
    // Staging on the bad release: its own baseline is as bad as now.
    let mut i = base();
    i.recent = Some(steps(5, 100.0, 8.0, 300.0));
    i.baseline = Some(steps(30, 100.0, 8.0, 300.0));
    i.production = Some(steps(5, 2000.0, 7.0, 110.0));
    expect(
        &i,
        Health::Degraded,
        Some(Comparison::Production),
        Says::StartsWith("error rate 8.00% vs production's 0.35%"),
    );
    expect(
        &i,
        Health::Degraded,
        None,
        Says::Has("only large differences count"),
    );
}

#[test]
fn a_stage_as_bad_as_a_regressed_production_is_degraded_against_its_known_good_baseline() {
    // Production regressed to 9% on the bad release; staging runs it too.
    let mut i = base();
    i.recent = Some(steps(5, 100.0, 10.0, 300.0));
    i.baseline = Some(steps(30, 100.0, 10.0, 300.0));
    i.production = Some(steps(5, 2000.0, 180.0, 300.0));
    assert_eq!(
        assess(&i).health,
        Health::Healthy,
        "against production's current steps the stage looks fine"
    );
    // Production's baseline before the bad deploy is what counts.
    i.production = Some(steps(30, 2000.0, 8.0, 110.0));
    expect(
        &i,
        Health::Degraded,
        Some(Comparison::Production),
        Says::Anything,
    );
}

#[test]
fn a_stage_not_compared_with_an_unwell_production_says_so() {
    let mut i = base();
    i.recent = Some(steps(5, 100.0, 0.2, 100.0));
    i.baseline = Some(steps(30, 100.0, 0.2, 100.0));
    i.production_skipped = Some("production is degraded itself");
    let a = assess(&i);
    assert_eq!(a.comparison, Comparison::OwnBaseline);
    assert!(
        a.detail
            .ends_with("; not compared with production: production is degraded itself"),
        "{}",
        a.detail
    );
    i.baseline = None;
    expect(&i, Health::Unknown, None, Says::Has("not with production"));
}

#[test]
fn moderate_differences_from_production_are_not_counted() {
    // Staging's traffic differs: twice production's error rate is fine.
    let mut i = base();
    i.recent = Some(steps(5, 100.0, 0.7, 150.0));
    i.production = Some(steps(5, 2000.0, 7.0, 110.0));
    expect(
        &i,
        Health::Healthy,
        Some(Comparison::Production),
        Says::Has("production"),
    );
    i.baseline = Some(steps(30, 100.0, 0.7, 150.0));
    expect(
        &i,
        Health::Healthy,
        Some(Comparison::OwnBaseline),
        Says::EndsWith("and with production"),
    );
}

fn verdict(state: crate::monitor::stage::StageState) -> crate::monitor::stage::StageVerdict {
    crate::monitor::stage::StageVerdict {
        verdict: state,
        reason: "staging since v1.8.0: error rate 9.10% vs 0.50% before (18x) — regression".into(),
        stage: "staging".into(),
        version: "v1.8.0".into(),
        since: None,
        detail: String::new(),
        recent: None,
    }
}

#[test]
fn a_regression_since_the_go_live_outweighs_a_baseline_of_the_same_release() {
    use crate::monitor::stage::StageState;
    // The demo's staging: the bad release has been live longer than the
    // baseline, so its own baseline is the bad release itself.
    let mut i = base();
    i.recent = Some(steps(5, 40.0, 4.0, 250.0));
    i.baseline = Some(steps(30, 40.0, 4.0, 250.0));
    let own = assess(&i);
    assert_eq!(own.health, Health::Healthy, "{own:?}");
    let bad = verdict(StageState::Regression);
    let a = with_go_live_verdict(own.clone(), Some("v1.8.0"), Some(&bad));
    assert_eq!(
        (a.health, a.comparison),
        (Health::Degraded, Comparison::SinceGoLive)
    );
    assert!(a.detail.contains("9.10% vs 0.50% before"), "{}", a.detail);
    // Unknown for want of a baseline: the verdict decides too.
    let unknown = assess(&base());
    let a = with_go_live_verdict(unknown, Some("v1.8.0"), Some(&bad));
    assert_eq!(a.health, Health::Degraded);
    // About another version, or not a regression: no change.
    assert_eq!(
        with_go_live_verdict(own.clone(), Some("v1.8.1"), Some(&bad)),
        own
    );
    for s in [StageState::Healthy, StageState::InsufficientData] {
        assert_eq!(
            with_go_live_verdict(own.clone(), Some("v1.8.0"), Some(&verdict(s))),
            own
        );
    }
    // Down stays down.
    let mut d = base();
    d.reachable = false;
    let down = assess(&d);
    assert_eq!(
        with_go_live_verdict(down.clone(), Some("v1.8.0"), Some(&bad)),
        down
    );
}

#[test]
fn health_follows_the_recent_evidence_once_the_regression_has_ended() {
    use crate::monitor::stage::{RecentCheck, StageState};
    let mut i = base();
    i.recent = Some(steps(5, 40.0, 0.2, 120.0));
    i.baseline = Some(steps(30, 40.0, 0.2, 120.0));
    let own = assess(&i);
    assert_eq!(own.health, Health::Healthy, "{own:?}");
    let with = |state: StageState, summary: &str| {
        let mut v = verdict(StageState::Regression);
        v.recent = Some(RecentCheck {
            state,
            summary: summary.into(),
        });
        with_go_live_verdict(own.clone(), Some("v1.8.0"), Some(&v))
    };
    // The regression ended an hour ago: the last window is back in line.
    let a = with(
        StageState::Healthy,
        "error rate 0.50% vs 0.50% before over the last 30m",
    );
    assert_eq!(
        (a.health, a.comparison),
        (Health::Healthy, Comparison::SinceGoLive)
    );
    assert!(
        a.detail.starts_with("recovered: error rate 0.50%"),
        "{}",
        a.detail
    );
    assert!(a.detail.contains("9.10% vs 0.50% before"), "{}", a.detail);
    // Still regressed now, or too little recent data to tell: degraded.
    let a = with(
        StageState::Regression,
        "error rate 8.00% vs 0.50% before (16x) over the last 30m",
    );
    assert_eq!(a.health, Health::Degraded);
    assert!(a.detail.contains("still: error rate 8.00%"), "{}", a.detail);
    let a = with(StageState::InsufficientData, "no metrics over the last 30m");
    assert_eq!(a.health, Health::Degraded);
    assert!(a.detail.contains("cannot be told yet"), "{}", a.detail);
    // Unknown for want of its own baseline: recovered reads healthy too.
    let mut v = verdict(StageState::Regression);
    v.recent = Some(RecentCheck {
        state: StageState::Healthy,
        summary: "in line".into(),
    });
    let a = with_go_live_verdict(assess(&base()), Some("v1.8.0"), Some(&v));
    assert_eq!(a.health, Health::Healthy);
    // Degraded by its own baseline stays so whatever the verdict says.
    let mut worse = base();
    worse.recent = Some(steps(5, 40.0, 6.0, 120.0));
    worse.baseline = Some(steps(30, 40.0, 0.2, 120.0));
    let d = assess(&worse);
    assert_eq!(d.health, Health::Degraded);
    assert_eq!(with_go_live_verdict(d.clone(), Some("v1.8.0"), Some(&v)), d);
}
