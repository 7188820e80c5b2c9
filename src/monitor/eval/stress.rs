//! A HELD-OUT stress set of healthy deploy traces: shapes an experienced
//! on-call engineer calls healthy that the tuning corpus ([`super::corpus`])
//! never shows. It exists to find the next false alarms before data we never
//! see does (issue 12: an independent corpus found traffic dips).
//!
//! Held out means: its own kinds, its own seeds (the bench's
//! `STRESS_TUNING` / `STRESS_REPORTING`), never mixed into the corpus the
//! detector is tuned on. Every trace is healthy: nothing in it gets worse
//! after the deploy than the baseline itself showed, or than ordinary
//! counting noise gives. The base processes (service profile, noise,
//! wander) are the corpus's ([`Profile`], [`render`]); only the shapes on
//! top are new.

use super::corpus::{Effects, Profile, Shape, render, resample};
use super::rng::Rng;
use crate::monitor::Sample;

/// A healthy shape the tuning corpus does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StressKind {
    NightlySlide,
    BatchClients,
    GcPauses,
    NoisyErrors,
    BaselineIncident,
    RateArtifacts,
    OvernightTrickle,
    SlowWarmup,
    ScrapeJitter,
}

impl StressKind {
    pub const ALL: [StressKind; 9] = [
        StressKind::NightlySlide,
        StressKind::BatchClients,
        StressKind::GcPauses,
        StressKind::NoisyErrors,
        StressKind::BaselineIncident,
        StressKind::RateArtifacts,
        StressKind::OvernightTrickle,
        StressKind::SlowWarmup,
        StressKind::ScrapeJitter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StressKind::NightlySlide => "nightly_slide",
            StressKind::BatchClients => "batch_clients",
            StressKind::GcPauses => "gc_pauses",
            StressKind::NoisyErrors => "noisy_errors",
            StressKind::BaselineIncident => "baseline_incident",
            StressKind::RateArtifacts => "rate_artifacts",
            StressKind::OvernightTrickle => "overnight_trickle",
            StressKind::SlowWarmup => "slow_warmup",
            StressKind::ScrapeJitter => "scrape_jitter",
        }
    }

    /// What the shape is and why an on-call engineer calls it healthy.
    pub fn rationale(self) -> &'static str {
        match self {
            StressKind::NightlySlide => {
                "traffic slides 40-60% across the window towards its nightly low (from up to 10 min before the deploy), errors and latency per request unchanged: deploys happen in low-traffic hours"
            }
            StressKind::BatchClients => {
                "a batch client (+50-200% traffic, its own error rate x0.5-2 and latency x0.8-1.5) stops and starts; the baseline held both states, so every level in the window is one the baseline showed"
            }
            StressKind::GcPauses => {
                "GC pauses: single steps of p99 x2.5-3.5 (p95 x1.2-1.4) every 1-3 min, in the baseline as in the window"
            }
            StressKind::NoisyErrors => {
                "errors far burstier than the corpus's at 50-500 req/s (per-step cv 0.8-1.5, wander 0.25-0.4), the same in baseline and window"
            }
            StressKind::BaselineIncident => {
                "the baseline held a small incident (2-6 min of errors x5-15 or latency x1.5-2.5, over 5+ min before the deploy); the window is clean"
            }
            StressKind::RateArtifacts => {
                "Prometheus rate artifacts, 1-3 in the window: a missed scrape (one step ~5%, the next ~195%), a counter reset (one step near zero) or a double-counted step (x2)"
            }
            StressKind::OvernightTrickle => {
                "0.1-0.5 req/s overnight with 1-4 isolated errors per 30 min on top of the base rate, as often in the baseline as in the window"
            }
            StressKind::SlowWarmup => {
                "a cache warm-up slower than the corpus's: latency x1.5-2.5 and errors x1.5-4 fading with a 30-90 s time constant (the corpus's fades within 30 s)"
            }
            StressKind::ScrapeJitter => {
                "scrapes land up to 3 s off the step grid (uneven step times, counts in proportion to each step's real length); the deploy row stays on it"
            }
        }
    }
}

/// One healthy stress trace.
#[derive(Clone, Debug)]
pub struct StressTrace {
    pub kind: StressKind,
    /// Mean traffic in requests per second (before any shape).
    pub rps: f64,
    pub samples: Vec<Sample>,
}

/// `per_kind` traces of every kind from `seed`, at `factor` × 10 s steps
/// (resampled as the corpus is: counts summed, the worst quantile).
pub fn stress_set(seed: u64, per_kind: usize, factor: usize) -> Vec<StressTrace> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(per_kind * StressKind::ALL.len());
    for _ in 0..per_kind {
        for kind in StressKind::ALL {
            let mut trng = Rng::new(rng.next_u64());
            out.push(generate(&mut trng, kind, factor));
        }
    }
    out
}

/// One trace of `kind` (30 min of baseline, 30 min of window) at `factor`
/// × 10 s steps.
#[allow(clippy::needless_range_loop)] // indexes several parallel per-step arrays
pub fn generate(rng: &mut Rng, kind: StressKind, factor: usize) -> StressTrace {
    let shape = Shape::default();
    let dt = shape.step_s;
    let nb = (shape.baseline_s / dt).round() as usize;
    let n = nb + (shape.window_s / dt).round() as usize;
    let ts: Vec<f64> = (0..n).map(|i| (i as f64 - nb as f64 + 1.0) * dt).collect();
    let w0 = nb;
    let rps = match kind {
        StressKind::NoisyErrors => rng.log_uniform(50.0, 500.0),
        StressKind::OvernightTrickle => rng.log_uniform(0.1, 0.5),
        StressKind::GcPauses => rng.log_uniform(5.0, 500.0),
        _ => rng.log_uniform(0.5, 500.0),
    };
    let mut pf = Profile::draw(rng, rps, None, shape.baseline_s);
    let mut fx = Effects::new(n);
    // Isolated single errors per step (OvernightTrickle), added after render.
    let mut lone_errors = vec![false; n];
    match kind {
        StressKind::NightlySlide => {
            let f = rng.uniform(0.4, 0.6);
            let lead = rng.uniform(0.0, 600.0);
            let span = shape.window_s + lead;
            for i in 0..n {
                let into = ts[i] + lead;
                if into > 0.0 {
                    fx.traffic[i] *= ((1.0 - f).ln() * into / span).exp();
                }
            }
        }
        StressKind::BatchClients => {
            let b = rng.uniform(0.5, 2.0);
            let k_err = rng.log_uniform(0.5, 2.0);
            let k_lat = rng.log_uniform(0.8, 1.5);
            let mut on = vec![false; n];
            // The baseline shows the client on for 8-15 min somewhere.
            let len = (rng.uniform(480.0, 900.0) / dt).round() as usize;
            let start = rng.int(0, (nb - len) as i64) as usize;
            on[start..start + len].fill(true);
            // In the window it stops and starts every 3-12 min.
            let mut state = rng.chance(0.5);
            let mut i = w0;
            while i < n {
                let len = (rng.uniform(180.0, 720.0) / dt).round() as usize;
                let end = (i + len).min(n);
                on[i..end].fill(state);
                state = !state;
                i = end;
            }
            for i in 0..n {
                if on[i] {
                    let share = b / (1.0 + b);
                    fx.traffic[i] *= 1.0 + b;
                    fx.err_mult[i] *= 1.0 - share + share * k_err;
                    let m = k_lat.powf(share);
                    fx.lat[i] = [m, m, m];
                }
            }
        }
        StressKind::GcPauses => {
            let every = rng.uniform(60.0, 180.0) / dt;
            let p99 = rng.uniform(2.5, 3.5);
            let p95 = rng.uniform(1.2, 1.4);
            for l in fx.lat.iter_mut() {
                if rng.chance(1.0 / every) {
                    *l = [1.0, p95, p99];
                }
            }
        }
        StressKind::NoisyErrors => {
            pf.err_cv = rng.uniform(0.8, 1.5);
            pf.err_wander = rng.uniform(0.25, 0.4);
        }
        StressKind::BaselineIncident => {
            let len = (rng.uniform(120.0, 360.0) / dt).round() as usize;
            let latest_end = nb - (300.0 / dt).round() as usize;
            let start = rng.int(0, (latest_end - len) as i64) as usize;
            let errors = rng.chance(0.5);
            let f = if errors {
                rng.uniform(5.0, 15.0)
            } else {
                rng.uniform(1.5, 2.5)
            };
            for i in start..start + len {
                if errors {
                    fx.err_mult[i] *= f;
                } else {
                    fx.lat[i] = [f, f, f];
                }
            }
        }
        StressKind::RateArtifacts => {
            for _ in 0..rng.int(1, 3) {
                let i = rng.int(w0 as i64, (n - 2) as i64) as usize;
                match rng.int(0, 2) {
                    0 => {
                        let lost = rng.uniform(0.9, 1.0);
                        fx.traffic[i] *= 1.0 - lost;
                        fx.traffic[i + 1] *= 1.0 + lost;
                    }
                    1 => fx.traffic[i] *= rng.uniform(0.0, 0.1),
                    _ => fx.traffic[i] *= 2.0,
                }
            }
        }
        StressKind::OvernightTrickle => {
            let per_step = rng.uniform(1.0, 4.0) / (1800.0 / dt);
            for e in lone_errors.iter_mut() {
                *e = rng.chance(per_step);
            }
        }
        StressKind::SlowWarmup => {
            let tau = rng.uniform(30.0, 90.0);
            let f = rng.uniform(1.5, 2.5);
            let e = rng.uniform(1.5, 4.0);
            for i in w0..n {
                let age = ts[i] - dt;
                let lf = 1.0 + (f - 1.0) * (-age / tau).exp();
                fx.lat[i] = [lf.sqrt(), lf, lf];
                fx.err_mult[i] *= 1.0 + (e - 1.0) * (-2.0 * age / tau).exp();
                if age < tau {
                    fx.traffic[i] *= 0.8;
                }
            }
        }
        StressKind::ScrapeJitter => {}
    }
    let mut samples = render(rng, &pf, &fx, &ts, dt);
    for (s, lone) in samples.iter_mut().zip(&lone_errors) {
        if *lone && s.requests >= 1.0 {
            s.errors = (s.errors + 1.0).min(s.requests);
        }
    }
    let mut samples = resample(&samples, factor);
    if kind == StressKind::ScrapeJitter {
        jitter(rng, &mut samples, dt * factor as f64);
    }
    StressTrace { kind, rps, samples }
}

/// Move every row but the deploy's (`t = 0`) up to 3 s off the grid of
/// `step`, its counts in proportion to the real length of its step.
fn jitter(rng: &mut Rng, samples: &mut [Sample], step: f64) {
    let j = (0.3 * step).min(3.0);
    let mut prev = samples.first().map_or(0.0, |s| s.t - step);
    for s in samples.iter_mut() {
        if s.t != 0.0 {
            s.t += rng.uniform(-j, j);
        }
        let r = (s.t - prev) / step;
        prev = s.t;
        if s.requests.is_finite() {
            s.requests = (s.requests * r).round();
            s.errors = (s.errors * r).round().min(s.requests);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(xs: &[Sample]) -> f64 {
        xs.iter()
            .filter(|s| s.requests.is_finite())
            .map(|s| s.requests)
            .sum()
    }
    fn errs(xs: &[Sample]) -> f64 {
        xs.iter()
            .filter(|s| s.requests.is_finite())
            .map(|s| s.errors)
            .sum()
    }

    #[test]
    fn stress_set_is_deterministic_and_shaped_like_the_corpus() {
        let a = stress_set(5, 2, 1);
        let b = stress_set(5, 2, 1);
        assert_eq!(a.len(), 2 * StressKind::ALL.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.kind, y.kind);
            assert_eq!(x.samples.len(), 360);
            assert_eq!(
                crate::monitor::trace::to_csv(&x.samples),
                crate::monitor::trace::to_csv(&y.samples)
            );
        }
        let coarse = stress_set(5, 1, 30);
        assert!(coarse.iter().all(|t| t.samples.len() == 12));
        // Every row is one the trace parser accepts.
        for t in a.iter().chain(&coarse) {
            let csv = crate::monitor::trace::to_csv(&t.samples);
            if let Err(e) = crate::monitor::trace::parse(&csv) {
                panic!("{}: {e}", t.kind.name());
            }
        }
    }

    #[test]
    fn kinds_do_what_they_say_and_stay_healthy() {
        let make = |kind, seed| generate(&mut Rng::new(seed), kind, 1).samples;
        // The slide: the last 5 minutes hold well under the baseline's.
        let s = make(StressKind::NightlySlide, 1);
        assert!(reqs(&s[330..]) < 0.75 * reqs(&s[120..150]));
        // Jitter keeps the deploy row and moves the others off the grid.
        let j = make(StressKind::ScrapeJitter, 2);
        assert_eq!(j[179].t, 0.0);
        assert!(j.iter().filter(|s| s.t % 10.0 != 0.0).count() > 300);
        assert!(j.windows(2).all(|w| w[1].t > w[0].t));
        // A baseline incident is in the baseline only.
        for seed in 0..6 {
            let b = make(StressKind::BaselineIncident, seed);
            let rate = |xs: &[Sample]| errs(xs) / reqs(xs);
            let p99 = |xs: &[Sample]| xs.iter().filter_map(|s| s.p99_ms).fold(0.0, f64::max);
            assert!(
                rate(&b[..150]) > rate(&b[180..]) || p99(&b[..150]) > p99(&b[180..]),
                "seed {seed}"
            );
        }
        // The overnight trickle is overnight.
        let o = generate(&mut Rng::new(3), StressKind::OvernightTrickle, 1);
        assert!((0.1..=0.5).contains(&o.rps));
    }
}
