//! The canary judge: the canary track against the stable track *at the same
//! time* (a two-sample comparison). Pure and deterministic: pairs of samples
//! in, a [`Verdict`] out; no clock, no I/O.
//!
//! How it decides:
//!
//! * Error rate: in each metrics step both tracks see the same hour and the
//!   same traffic mix, so, if the canary is no worse, each of the step's
//!   errors falls on the canary with the canary's share of the requests
//!   `π = n_c / (n_c + n_s)` (a conditional binomial: whatever the error
//!   rate of the moment, a diurnal drift cancels out). The evidence is a
//!   sequential likelihood ratio, accumulated over every step since the
//!   canary started (all weights alike: the canary runs one version),
//!   mixed over rate ratios ×1.5/×2/×4/×10. Its mixture is a martingale
//!   when the canary is as good as stable, so a threshold of `1/α` keeps
//!   the false-alarm probability under `α` however often it is looked at.
//! * Latency: per step, the canary's p95 and p99 against stable's at the
//!   same step, in log space; a regression needs at least
//!   [`CanaryJudgeConfig::min_latency_steps`] such pairs, the canary slower by
//!   more than [`CanaryJudgeConfig::latency_ratio`] (Hodges-Lehmann shift) and a
//!   one-sided Mann-Whitney `p` under [`CanaryJudgeConfig::latency_alpha`] — the
//!   statistics of [`super::stats`] the Kayenta-style judges use.
//! * At 100% the stable track serves nothing: the canary's errors are
//!   then weighed against stable's rate over the earlier steps.
//! * Too little canary traffic in the current weight step (fewer than
//!   [`CanaryJudgeConfig::min_requests`] canary requests in steps where both
//!   tracks answered) is *insufficient data*: the caller holds the step.
//!   A gap (either track without data) adds nothing: never health.
//! * A regression latches.

use super::stats::{fmt_duration, fmt_ms, fmt_p, fmt_pct, hodges_lehmann, mann_whitney_greater};
use super::{Metric, Sample, Verdict, VerdictKind};

/// Settings of the canary judge.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryJudgeConfig {
    /// Canary requests a weight step needs (in steps where both tracks
    /// answered) before it can be called healthy.
    pub min_requests: f64,
    /// False-alarm probability of the error-rate test over a whole canary.
    pub error_alpha: f64,
    /// Steps with both tracks' data before an error-rate regression may be
    /// called (one step alone, a blip, never decides).
    pub min_error_steps: usize,
    /// The canary's p95/p99 must exceed stable's by this factor.
    pub latency_ratio: f64,
    /// One-sided p-value under which a latency shift counts.
    pub latency_alpha: f64,
    /// Paired latency steps needed before a latency regression is called.
    pub min_latency_steps: usize,
    /// Canary requests a step needs for its quantiles to be compared.
    pub min_latency_requests: f64,
}

impl Default for CanaryJudgeConfig {
    fn default() -> Self {
        CanaryJudgeConfig {
            min_requests: 50.0,
            error_alpha: 0.001,
            min_error_steps: 2,
            latency_ratio: 1.3,
            latency_alpha: 0.001,
            min_latency_steps: 5,
            min_latency_requests: 10.0,
        }
    }
}

/// One metrics step of both tracks, ending at `t` (seconds, any origin).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TrackPair {
    pub t: f64,
    pub canary: Sample,
    pub stable: Sample,
}

/// Rate ratios the error-rate mixture looks for.
const ERR_RATIOS: [f64; 4] = [1.5, 2.0, 4.0, 10.0];
/// Paired latency steps kept (the latest): a latency regression is about
/// the canary now, and the rank statistics stay cheap.
const LATENCY_KEEP: usize = 60;
/// Canary requests a step needs for its p95 / p99 to mean anything.
const LAT_MIN_N: [f64; 2] = [20.0, 100.0];
const LAT_NAMES: [&str; 2] = ["p95", "p99"];
const LAT_METRICS: [Metric; 2] = [Metric::LatencyP95, Metric::LatencyP99];

/// Totals over a stretch of paired steps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Totals {
    canary_n: f64,
    canary_e: f64,
    stable_n: f64,
    stable_e: f64,
    steps: usize,
    first_t: Option<f64>,
    last_t: f64,
    /// Length of the first step, so that "over the same 40 s" counts it.
    first_len: f64,
}

impl Totals {
    fn add(&mut self, p: &TrackPair, len: f64) {
        self.canary_n += p.canary.requests;
        self.canary_e += p.canary.errors;
        self.stable_n += p.stable.requests;
        self.stable_e += p.stable.errors;
        self.steps += 1;
        if self.first_t.is_none() {
            self.first_t = Some(p.t);
            self.first_len = len;
        } else if self.first_len <= 0.0 {
            // The first step's length was unknown: take the next one's.
            self.first_len = len;
        }
        self.last_t = p.t;
    }

    fn span_s(&self) -> f64 {
        self.first_t
            .map_or(0.0, |f| self.last_t - f + self.first_len)
    }

    fn rates(&self) -> (f64, f64) {
        let r = |e: f64, n: f64| if n > 0.0 { e / n } else { 0.0 };
        (
            r(self.canary_e, self.canary_n),
            r(self.stable_e, self.stable_n),
        )
    }
}

/// The canary judge. See the module documentation.
#[derive(Clone, Debug)]
pub struct CanaryJudge {
    cfg: CanaryJudgeConfig,
    /// Log likelihood ratio per ratio of [`ERR_RATIOS`], since the canary started.
    llr: [f64; 4],
    /// Since the canary started.
    all: Totals,
    /// In the current weight step.
    step: Totals,
    /// Paired log quantiles: (canary, stable) for p95 and p99.
    lat: [(Vec<f64>, Vec<f64>); 2],
    last_t: Option<f64>,
    weight: u8,
    verdict: Verdict,
}

impl CanaryJudge {
    pub fn new(cfg: CanaryJudgeConfig) -> Self {
        CanaryJudge {
            cfg,
            llr: [0.0; 4],
            all: Totals::default(),
            step: Totals::default(),
            lat: Default::default(),
            last_t: None,
            weight: 0,
            verdict: collecting(0),
        }
    }

    pub fn config(&self) -> &CanaryJudgeConfig {
        &self.cfg
    }

    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Start judging a new weight step: the evidence so far is kept, the
    /// step's own data count starts again. A regression stays latched.
    pub fn begin_step(&mut self, weight: u8) {
        self.weight = weight;
        self.step = Totals::default();
        if self.verdict.kind != VerdictKind::Regression {
            self.verdict = collecting(weight);
        }
    }

    /// Canary requests counted in the current weight step.
    pub fn step_requests(&self) -> f64 {
        self.step.canary_n
    }

    /// Feed the next paired step (in time order; older or repeated steps
    /// are ignored, as is everything after a regression).
    pub fn push(&mut self, p: TrackPair) -> &Verdict {
        if self.verdict.kind == VerdictKind::Regression || !p.t.is_finite() {
            return &self.verdict;
        }
        if let Some(last) = self.last_t
            && p.t <= last
        {
            return &self.verdict;
        }
        let len = self.last_t.map_or(0.0, |l| p.t - l);
        self.last_t = Some(p.t);
        if !(usable(&p.canary) && usable(&p.stable)) {
            // A gap is no evidence either way.
            self.verdict = self.waiting();
            return &self.verdict;
        }
        let p = TrackPair {
            canary: clean(p.canary),
            stable: clean(p.stable),
            ..p
        };
        self.all.add(&p, len);
        self.step.add(&p, len);

        // Errors: conditional binomial likelihood ratios.
        let (nc, ns) = (p.canary.requests, p.stable.requests);
        let (ec, es) = (p.canary.errors, p.stable.errors);
        if ns <= 0.0 && nc > 0.0 && self.all.stable_n > 0.0 {
            // The canary serves everything (the 100% step): nothing to
            // compare with at this moment, so against stable's rate over
            // the earlier steps (Poisson likelihood ratios).
            let p_s = (self.all.stable_e + 0.5) / (self.all.stable_n + 1.0);
            let mu = nc * p_s;
            for (l, r) in self.llr.iter_mut().zip(ERR_RATIOS) {
                *l += ec * r.ln() - (r - 1.0) * mu;
            }
        } else if nc + ns > 0.0 && ec + es > 0.0 {
            let pi = nc / (nc + ns);
            if pi > 0.0 && pi < 1.0 {
                for (l, r) in self.llr.iter_mut().zip(ERR_RATIOS) {
                    let q = r * pi / (r * pi + 1.0 - pi);
                    *l += ec * (q / pi).ln() + es * ((1.0 - q) / (1.0 - pi)).ln();
                }
            }
        }

        // Latency: the step's quantiles, when the canary had enough requests.
        if ns > 0.0 {
            let pairs = [
                (p.canary.p95_ms, p.stable.p95_ms),
                (p.canary.p99_ms, p.stable.p99_ms),
            ];
            for (k, (c, s)) in pairs.into_iter().enumerate() {
                // A quantile of fewer than 1/(1-q) requests is the maximum
                // of a handful: no measure of the tail at all.
                let need = self.cfg.min_latency_requests.max(LAT_MIN_N[k]);
                if nc < need {
                    continue;
                }
                if let (Some(c), Some(s)) = (c, s)
                    && c.is_finite()
                    && s.is_finite()
                    && c > 0.0
                    && s > 0.0
                {
                    let (cs, ss) = &mut self.lat[k];
                    if cs.len() >= LATENCY_KEEP {
                        cs.remove(0);
                        ss.remove(0);
                    }
                    cs.push(c.ln());
                    ss.push(s.ln());
                }
            }
        }

        if let Some(v) = self
            .error_regression(p.t)
            .or_else(|| self.latency_regression(p.t))
        {
            self.verdict = v;
            return &self.verdict;
        }
        self.verdict = if self.step.canary_n >= self.cfg.min_requests {
            self.healthy()
        } else {
            self.waiting()
        };
        &self.verdict
    }

    /// The mixture likelihood ratio of the error test (1 = no evidence).
    pub fn error_evidence(&self) -> f64 {
        self.llr.iter().map(|l| l.min(700.0).exp()).sum::<f64>() / self.llr.len() as f64
    }

    fn error_regression(&self, t: f64) -> Option<Verdict> {
        if self.all.steps < self.cfg.min_error_steps.max(1) {
            return None;
        }
        let lr = self.error_evidence();
        if lr < 1.0 / self.cfg.error_alpha.clamp(1e-12, 0.5) {
            return None;
        }
        let (rc, rs) = self.all.rates();
        if rc <= rs {
            return None;
        }
        Some(Verdict {
            kind: VerdictKind::Regression,
            metric: Some(Metric::ErrorRate),
            detected_at: Some(t),
            reason: format!(
                "canary error rate {} vs stable {} over the same {} (n={}, {} errors vs {:.1} expected, {}) — regression",
                fmt_pct(rc),
                fmt_pct(rs),
                fmt_duration(self.all.span_s()),
                self.all.canary_n.round(),
                self.all.canary_e.round(),
                self.expected_canary_errors(),
                fmt_p((1.0 / lr).min(1.0)),
            ),
        })
    }

    /// Canary errors expected if the canary failed as often as stable.
    fn expected_canary_errors(&self) -> f64 {
        let (_, rs) = self.all.rates();
        self.all.canary_n * rs
    }

    fn latency_regression(&self, t: f64) -> Option<Verdict> {
        let min_ratio = self.cfg.latency_ratio.max(1.0).ln();
        for (k, (c, s)) in self.lat.iter().enumerate() {
            if c.len() < self.cfg.min_latency_steps.max(2) {
                continue;
            }
            let med = |xs: &[f64]| super::stats::median(xs).unwrap_or(0.0).exp();
            // Cheapest first: the medians must differ at all.
            if med(c) < med(s) * self.cfg.latency_ratio.max(1.0).sqrt() {
                continue;
            }
            let p = mann_whitney_greater(s, c);
            if p >= self.cfg.latency_alpha {
                continue;
            }
            let shift = hodges_lehmann(s, c);
            if shift < min_ratio {
                continue;
            }
            return Some(Verdict {
                kind: VerdictKind::Regression,
                metric: Some(LAT_METRICS[k]),
                detected_at: Some(t),
                reason: format!(
                    "canary {} latency {} vs stable {} ({:.2}x) over the same {} ({} steps, n={}, {}) — regression",
                    LAT_NAMES[k],
                    fmt_ms(med(c)),
                    fmt_ms(med(s)),
                    shift.exp(),
                    fmt_duration(self.all.span_s()),
                    c.len(),
                    self.all.canary_n.round(),
                    fmt_p(p)
                ),
            });
        }
        None
    }

    fn healthy(&self) -> Verdict {
        let (rc, rs) = self.all.rates();
        let lat = match &self.lat[0] {
            (c, s) if !c.is_empty() => {
                let med = |xs: &[f64]| super::stats::median(xs).unwrap_or(0.0).exp();
                format!("; p95 {} vs {}", fmt_ms(med(c)), fmt_ms(med(s)))
            }
            _ => String::new(),
        };
        Verdict {
            kind: VerdictKind::Healthy,
            metric: None,
            detected_at: None,
            reason: format!(
                "canary error rate {} vs stable {} over the same {} (n={}){lat} — healthy",
                fmt_pct(rc),
                fmt_pct(rs),
                fmt_duration(self.all.span_s()),
                self.all.canary_n.round(),
            ),
        }
    }

    /// Not enough canary traffic in this weight step yet.
    fn waiting(&self) -> Verdict {
        Verdict {
            kind: VerdictKind::InsufficientData,
            metric: None,
            detected_at: None,
            reason: format!(
                "insufficient data: the canary served {} requests at {}% so far in this step (need {})",
                self.step.canary_n.round(),
                self.weight,
                self.cfg.min_requests.round()
            ),
        }
    }
}

fn collecting(weight: u8) -> Verdict {
    Verdict {
        kind: VerdictKind::InsufficientData,
        metric: None,
        detected_at: None,
        reason: format!("insufficient data: the canary served no requests at {weight}% yet"),
    }
}

/// A sample with data: finite, non-negative request and error counts.
fn usable(s: &Sample) -> bool {
    s.requests.is_finite() && s.requests >= 0.0 && s.errors.is_finite() && s.errors >= 0.0
}

fn clean(s: Sample) -> Sample {
    Sample {
        errors: s.errors.min(s.requests),
        ..s
    }
}

#[cfg(test)]
mod tests;
