//! Synthetic traffic for the demo fleet: a small seeded PRNG, the samplers it
//! needs (normal, gamma, Poisson) and a per-environment traffic model that
//! advances cumulative Prometheus-style counters one tick at a time.
//!
//! The model, per environment:
//! - request rate = base rate × slow drift (an Ornstein–Uhlenbeck process on
//!   the log rate plus a 10-minute swell), and the count of a tick is
//!   gamma–Poisson (overdispersed: burstier than Poisson, like real traffic);
//! - a small base 5xx rate that drifts too, with its own overdispersion;
//! - log-normal latency (median ~40 ms, p95 ~3× the median);
//! - a *badness* in `[0, 1]` supplied by the caller (the fleet derives it from
//!   how long a bad release has been live) that raises the 5xx rate towards
//!   [`BAD_ERROR_RATE`] and multiplies latency by up to [`BAD_LATENCY_FACTOR`].
//!
//! Everything is a function of the seed and of the sequence of `step` calls,
//! so a test that drives the model directly gets the same numbers every run.

use serde::Serialize;

/// Upper bounds (seconds) of the latency histogram: the Prometheus client
/// libraries' default buckets; `+Inf` is implied after the last one.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Status codes every environment reports (all exist from the start, at 0).
pub const CODES: [u16; 4] = [200, 404, 500, 503];

/// 5xx rate of a fully bad release.
pub const BAD_ERROR_RATE: f64 = 0.08;
/// Latency multiplier of a fully bad release.
pub const BAD_LATENCY_FACTOR: f64 = 2.8;
/// Share of the non-5xx answers that are 404.
const NOT_FOUND_SHARE: f64 = 0.01;
/// Share of the 5xx answers that are 503 (the rest are 500).
const UNAVAILABLE_SHARE: f64 = 0.3;

/// The seeded generator and samplers shared with the detector's corpus.
pub use crate::monitor::eval::rng::Rng;

/// The standing traits of one environment's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// Mean requests per second.
    pub base_rps: f64,
    /// Median latency of a healthy release, in milliseconds.
    pub median_ms: f64,
    /// Log-normal shape: p95 = median × exp(1.645 σ).
    pub sigma: f64,
    /// Mean 5xx rate of a healthy release.
    pub base_error_rate: f64,
}

impl Profile {
    /// The demo's environments: production busy, the others quieter.
    pub fn for_env(name: &str) -> Profile {
        let (base_rps, median_ms, base_error_rate) = match name {
            "production" => (200.0, 40.0, 0.004),
            "staging" => (20.0, 38.0, 0.005),
            "development" => (5.0, 35.0, 0.006),
            _ => (1.0, 30.0, 0.004),
        };
        Profile {
            base_rps,
            median_ms,
            // p95 = 3 × median.
            sigma: 3f64.ln() / 1.644_853_6,
            base_error_rate,
        }
    }
}

/// Cumulative counters, as `/metrics` shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Requests per status code, in the order of [`CODES`].
    pub by_code: [u64; CODES.len()],
    /// Non-cumulative counts per bucket of [`BUCKETS`], then the overflow.
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Sum of all latencies, in seconds.
    pub sum_s: f64,
    pub count: u64,
}

impl Counters {
    pub fn requests(&self) -> u64 {
        self.by_code.iter().sum()
    }
    pub fn errors(&self) -> u64 {
        CODES
            .iter()
            .zip(self.by_code)
            .filter(|(c, _)| **c >= 500)
            .map(|(_, n)| n)
            .sum()
    }
    /// Cumulative bucket counts (Prometheus `le` semantics), `+Inf` last.
    pub fn cumulative_buckets(&self) -> [u64; BUCKETS.len() + 1] {
        let mut out = self.buckets;
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
        out
    }
}

/// The fleet's own view of an environment's traffic right now — the "truth"
/// the scraped and queried numbers can be compared with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Truth {
    /// Current mean request rate (before per-tick noise).
    pub requests_per_s: f64,
    /// Current mean 5xx rate (before per-tick noise).
    pub error_rate: f64,
    /// Model latency quantiles (log-normal), in milliseconds.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// How bad the running release is: 0 healthy … 1 fully bad.
    pub badness: f64,
    /// Cumulative totals.
    pub requests_total: u64,
    pub errors_total: u64,
}

/// A canary beside an environment's running release: its share of the
/// requests (0..1), how bad its release is, and its own counters.
#[derive(Debug)]
pub struct CanaryShare<'a> {
    pub share: f64,
    pub badness: f64,
    pub counters: &'a mut Counters,
}

impl Counters {
    /// The sum of two tracks' counters (what the environment serves in all).
    pub fn plus(&self, other: &Counters) -> Counters {
        let mut out = self.clone();
        for (a, b) in out.by_code.iter_mut().zip(other.by_code) {
            *a += b;
        }
        for (a, b) in out.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        out.sum_s += other.sum_s;
        out.count += other.count;
        out
    }
}

/// One environment's traffic: model state plus cumulative counters.
#[derive(Clone, Debug)]
pub struct EnvTraffic {
    pub profile: Profile,
    rng: Rng,
    /// Ornstein–Uhlenbeck state of the log request rate.
    rate_drift: f64,
    /// Ornstein–Uhlenbeck state of the log base error rate.
    error_drift: f64,
    /// Phase of the slow swell, so environments do not move in lockstep.
    phase: f64,
    elapsed_s: f64,
    badness: f64,
    pub counters: Counters,
}

/// Time constant of the drifts.
const DRIFT_TAU_S: f64 = 120.0;
/// Stationary standard deviation of the log request rate drift.
const RATE_DRIFT_SD: f64 = 0.08;
/// Stationary standard deviation of the log error rate drift.
const ERROR_DRIFT_SD: f64 = 0.15;
/// Gamma shape of the per-second rate noise (coefficient of variation 1/√k).
const RATE_NOISE_SHAPE: f64 = 60.0;
const ERROR_NOISE_SHAPE: f64 = 8.0;
/// Period and amplitude of the slow swell of the request rate.
const SWELL_PERIOD_S: f64 = 600.0;
const SWELL_AMPLITUDE: f64 = 0.1;

/// z-scores of the quantiles the truth reports.
const Z50: f64 = 0.0;
const Z95: f64 = 1.644_853_6;
const Z99: f64 = 2.326_347_9;

impl EnvTraffic {
    pub fn new(profile: Profile, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let phase = rng.f64() * std::f64::consts::TAU;
        let rate_drift = RATE_DRIFT_SD * rng.normal();
        let error_drift = ERROR_DRIFT_SD * rng.normal();
        EnvTraffic {
            profile,
            rng,
            rate_drift,
            error_drift,
            phase,
            elapsed_s: 0.0,
            badness: 0.0,
            counters: Counters::default(),
        }
    }

    fn mean_rps(&self) -> f64 {
        let swell = 1.0
            + SWELL_AMPLITUDE
                * (std::f64::consts::TAU * self.elapsed_s / SWELL_PERIOD_S + self.phase).sin();
        self.profile.base_rps * swell * self.rate_drift.exp()
    }

    fn mean_error_rate(&self) -> f64 {
        self.error_rate_at(self.badness)
    }

    fn error_rate_at(&self, badness: f64) -> f64 {
        let healthy = self.profile.base_error_rate * self.error_drift.exp();
        healthy + badness * (BAD_ERROR_RATE - healthy).max(0.0)
    }

    fn median_ms(&self) -> f64 {
        self.median_ms_at(self.badness)
    }

    fn median_ms_at(&self, badness: f64) -> f64 {
        self.profile.median_ms * (1.0 + badness * (BAD_LATENCY_FACTOR - 1.0))
    }

    /// Advance by `dt_s` seconds with the running release at `badness`.
    pub fn step(&mut self, dt_s: f64, badness: f64) {
        self.step_split(dt_s, badness, None);
    }

    /// [`step`](Self::step) with a canary beside the running (stable)
    /// release: each request goes to the canary with the canary's share,
    /// and is counted in the canary's counters with the canary's badness.
    /// Both tracks share the moment's traffic level and error-rate wobble
    /// (the same hour, the same mix). Without a canary the random sequence
    /// is exactly that of [`step`](Self::step).
    pub fn step_split(&mut self, dt_s: f64, badness: f64, mut canary: Option<CanaryShare<'_>>) {
        if dt_s.is_nan() || dt_s <= 0.0 {
            return;
        }
        self.badness = badness.clamp(0.0, 1.0);
        // Drifts: exact OU update over dt.
        let a = (-dt_s / DRIFT_TAU_S).exp();
        let b = (1.0 - a * a).sqrt();
        self.rate_drift = a * self.rate_drift + RATE_DRIFT_SD * b * self.rng.normal();
        self.error_drift = a * self.error_drift + ERROR_DRIFT_SD * b * self.rng.normal();
        self.elapsed_s += dt_s;

        // Overdispersed count: gamma-distributed intensity, then Poisson. The
        // gamma noise is per second of traffic, so a tick of dt seconds gets
        // shape k·dt (sums of independent ticks keep the per-second spread).
        let mean = self.mean_rps() * dt_s;
        let k = RATE_NOISE_SHAPE * dt_s;
        let intensity = if mean > 0.0 {
            self.rng.gamma(k) * mean / k
        } else {
            0.0
        };
        let n = self.rng.poisson(intensity) as u64;

        let ke = ERROR_NOISE_SHAPE * dt_s;
        let wobble = self.rng.gamma(ke);
        let p_err = (wobble * self.mean_error_rate() / ke).min(1.0);
        let mu = self.median_ms().ln() - (1000f64).ln(); // log of the median in seconds
        let sigma = self.profile.sigma;
        let canary_model = canary.as_ref().map(|c| {
            let b = c.badness.clamp(0.0, 1.0);
            (
                c.share.clamp(0.0, 1.0),
                (wobble * self.error_rate_at(b) / ke).min(1.0),
                self.median_ms_at(b).ln() - (1000f64).ln(),
            )
        });
        for _ in 0..n {
            let on_canary = canary_model.filter(|(share, _, _)| self.rng.chance(*share));
            let (p_err, mu) = on_canary.map_or((p_err, mu), |(_, p, m)| (p, m));
            let code = if self.rng.chance(p_err) {
                if self.rng.chance(UNAVAILABLE_SHARE) {
                    3
                } else {
                    2
                }
            } else if self.rng.chance(NOT_FOUND_SHARE) {
                1
            } else {
                0
            };
            let latency_s = (mu + sigma * self.rng.normal()).exp();
            let bucket = BUCKETS
                .iter()
                .position(|le| latency_s <= *le)
                .unwrap_or(BUCKETS.len());
            let counters = match (&mut canary, on_canary) {
                (Some(c), Some(_)) => &mut *c.counters,
                _ => &mut self.counters,
            };
            counters.by_code[code] += 1;
            counters.buckets[bucket] += 1;
            counters.sum_s += latency_s;
            counters.count += 1;
        }
    }

    pub fn truth(&self) -> Truth {
        let median = self.median_ms();
        let sigma = self.profile.sigma;
        Truth {
            requests_per_s: self.mean_rps(),
            error_rate: self.mean_error_rate(),
            p50_ms: median * (sigma * Z50).exp(),
            p95_ms: median * (sigma * Z95).exp(),
            p99_ms: median * (sigma * Z99).exp(),
            badness: self.badness,
            requests_total: self.counters.requests(),
            errors_total: self.counters.errors(),
        }
    }
}

/// How bad a bad release is `since_live_s` seconds after it went live: 0
/// until `onset_s`, then a smooth ramp reaching 1 at `onset_s + ramp_s`.
pub fn badness(since_live_s: f64, onset_s: f64, ramp_s: f64) -> f64 {
    if since_live_s <= onset_s {
        return 0.0;
    }
    if ramp_s <= 0.0 {
        return 1.0;
    }
    let x = ((since_live_s - onset_s) / ramp_s).clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_production_traffic_looks_like_the_profile() {
        let mut t = EnvTraffic::new(Profile::for_env("production"), 3);
        for _ in 0..600 {
            t.step(0.1, 0.0);
        }
        let c = &t.counters;
        let rps = c.requests() as f64 / 60.0;
        assert!((140.0..=270.0).contains(&rps), "rps {rps}");
        let er = c.errors() as f64 / c.requests() as f64;
        assert!((0.001..=0.009).contains(&er), "error rate {er}");
        assert_eq!(c.count, c.requests());
        let cum = c.cumulative_buckets();
        assert_eq!(cum[BUCKETS.len()], c.count);
        // Median between 25 and 75 ms, p95 between 75 and 250 ms.
        let below = |i: usize| cum[i] as f64 / c.count as f64;
        assert!(below(2) < 0.5 && below(4) > 0.5, "median off: {cum:?}");
        assert!(below(4) < 0.95 && below(6) > 0.95, "p95 off: {cum:?}");
        let tr = t.truth();
        assert!((tr.p95_ms / tr.p50_ms - 3.0).abs() < 1e-6);
    }

    #[test]
    fn a_bad_release_raises_errors_and_latency() {
        let mut good = EnvTraffic::new(Profile::for_env("production"), 9);
        let mut bad = EnvTraffic::new(Profile::for_env("production"), 9);
        for _ in 0..300 {
            good.step(0.1, 0.0);
            bad.step(0.1, 1.0);
        }
        let er = |c: &Counters| c.errors() as f64 / c.requests() as f64;
        assert!(
            er(&bad.counters) > 0.05,
            "bad error rate {}",
            er(&bad.counters)
        );
        assert!(
            er(&good.counters) < 0.012,
            "good error rate {}",
            er(&good.counters)
        );
        let mean = |c: &Counters| c.sum_s / c.count as f64;
        let ratio = mean(&bad.counters) / mean(&good.counters);
        assert!((2.2..=3.4).contains(&ratio), "latency ratio {ratio}");
    }

    #[test]
    fn a_canary_takes_its_share_and_only_it_is_bad() {
        let mut t = EnvTraffic::new(Profile::for_env("production"), 5);
        let mut canary = Counters::default();
        for _ in 0..600 {
            t.step_split(
                0.1,
                0.0,
                Some(CanaryShare {
                    share: 0.1,
                    badness: 1.0,
                    counters: &mut canary,
                }),
            );
        }
        let total = t.counters.requests() + canary.requests();
        let share = canary.requests() as f64 / total as f64;
        assert!((0.08..=0.12).contains(&share), "canary share {share}");
        let er = |c: &Counters| c.errors() as f64 / c.requests() as f64;
        assert!(er(&canary) > 0.05, "canary error rate {}", er(&canary));
        assert!(
            er(&t.counters) < 0.012,
            "stable error rate {}",
            er(&t.counters)
        );
        let mean = |c: &Counters| c.sum_s / c.count as f64;
        assert!(mean(&canary) / mean(&t.counters) > 2.0);
        assert_eq!(t.counters.plus(&canary).requests(), total);
    }

    #[test]
    fn without_a_canary_the_numbers_are_those_of_step() {
        let mut a = EnvTraffic::new(Profile::for_env("staging"), 11);
        let mut b = EnvTraffic::new(Profile::for_env("staging"), 11);
        for _ in 0..100 {
            a.step(0.1, 0.3);
            b.step_split(0.1, 0.3, None);
        }
        assert_eq!(a.counters, b.counters);
    }

    #[test]
    fn badness_ramps_smoothly() {
        assert_eq!(badness(0.0, 7.0, 15.0), 0.0);
        assert_eq!(badness(7.0, 7.0, 15.0), 0.0);
        let mid = badness(14.5, 7.0, 15.0);
        assert!((mid - 0.5).abs() < 1e-9);
        assert_eq!(badness(22.0, 7.0, 15.0), 1.0);
        assert_eq!(badness(1e6, 7.0, 15.0), 1.0);
        assert_eq!(badness(8.0, 7.0, 0.0), 1.0);
    }
}
