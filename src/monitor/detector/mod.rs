//! The regression detector: a pure, deterministic state machine fed one
//! [`Sample`] at a time (baseline first, then the monitoring window).
//!
//! How it decides:
//!
//! * The baseline (`t <= 0`) is summarised robustly when the first window
//!   sample arrives and then frozen: the pooled error rate and its
//!   overdispersion (quasi-Poisson), the median and MAD of each log latency
//!   quantile, the median request rate and its overdispersion. Short
//!   baselines widen every band (uncertainty of the estimates) — but the
//!   error overdispersion of fewer than 30 steps (coarse metrics), whose
//!   shrinkage towards a prior stands for that uncertainty.
//! * In the window, each signal feeds one-sided CUSUMs of log-likelihood
//!   ratios: error counts against rate ratios ×2/×4/×10, each log latency
//!   quantile against shifts ×1.3/×1.7/×2.9 (its noise widened when a step
//!   holds fewer requests than the baseline's usual), and the three
//!   quantiles together against the same shifts (their deviations averaged
//!   by inverse variance, the average's noise counting how much they move
//!   together in the baseline: at low traffic their noise is their own
//!   sampling error, and three quantiles each part-way to the threshold
//!   are together past it), request counts against
//!   a fall. A latency test's null holds the baseline's own blip process
//!   (GC pauses: steps far above the ordinary steps' level, how often and
//!   how large, from a baseline of 30 steps or more; see [`Blips`]): a
//!   step at blip height brings next to nothing, and a run of slow steps
//!   is judged against the blip rate, not against the ordinary noise. Evidence is capped per second of a step (less in the seconds of
//!   the warm-up, [`DetectorConfig::warmup_s`]), so that what decides is
//!   time and counts, not step counts: an alarm needs evidence spanning more
//!   than [`DetectorConfig::min_evidence_s`] and never a single step — at
//!   10 s steps 3 steps, at 1- or 5-minute steps the second bad step.
//!   A capped step's evidence beyond the cap is not lost at 1- or 5-minute
//!   steps: two error steps in a row that agree on the rise (each one's
//!   excess rate over the baseline at least half the other's, within the
//!   Poisson error of the weaker step's count; a burst inside one step has no
//!   such neighbour) count in full, each up to the
//!   threshold (`Detector::err_pair`), so a x10 at a request a second is
//!   called at the second step, never at the first.
//!   The warm-up is in evidence as well as time: a warm-up fades (its
//!   first steps are the worst, and falling), a bad release is steady or
//!   rising. So while a test's signal (error rate, log-quantile shift,
//!   traffic fall) stays clearly at least 4/5 of the first window step's,
//!   its steps count in full even inside the warm-up, and the second such
//!   step returns what the first brought beyond the allowance: a steady
//!   shift is called at the minimum span (30 s at 10 s steps). A test
//!   that fades keeps the allowance for the rest of the warm-up. One that
//!   was merely uneven there (a noisy second step) gets back what the
//!   allowance held from its warm-up steps at the first step past a
//!   warm-up of two steps or more, if that step's signal is nearer the
//!   warm-up steps' mean than the baseline's level (it holds at least half
//!   their mean excess over the baseline): the shift outlasted the
//!   warm-up, where a warm-up returns to the baseline (10 s steps: called
//!   at 40 s rather than 50 s).
//!   A latency step brings at most `h / k` (no slack): at coarse steps, a
//!   worst-of-merged quantile carries any short blip inside the step, and
//!   one such step plus one noisy step must not decide; for the same
//!   reason, a baseline of few steps cannot hide its highest step from the
//!   latency noise estimate. At steps of a minute or more (or shorter ones
//!   with a baseline of fewer than 30 steps), where a baseline cannot show
//!   how often two blip steps come in a row, a latency call needs one step
//!   more than the other tests (two blip steps in a row are no shift), and
//!   a blip step in the baseline is clipped before it can pass for a slow
//!   wander of the level — unless the
//!   evidence says more than "two slow steps": a shift that began with the
//!   deploy, clear in at least two quantiles (or one quantile past the
//!   whole threshold alone in every step) and steady in every quantile
//!   (each step within its noise of the first; a warm-up fades, two blips
//!   differ), is called at the second step, and the reason says so. That
//!   shift is judged by the noise of the baseline's ordinary steps (before
//!   its highest step widened the estimate): its own tests already rule
//!   out blips, and one blip step among six baseline steps would otherwise
//!   hide a x2 shift of every quantile until the third step, or entirely.
//! * A whole-window error test (from the end of the warm-up, over stretches
//!   of at least two minutes, never from its single worst step unless the
//!   steps expect at most half an error each, when that step is one event
//!   among others) mixes likelihood ratios for ×1.5/×2/×3 with a variance that counts overdispersion, the baseline rate's own
//!   uncertainty and its slow wander: it catches slow creeps and small rises
//!   at low traffic that no stretch of steps shows alone.
//! * Throughput: traffic legitimately dips (to [`DetectorConfig::dip_floor`]
//!   of the baseline, or the baseline's own lows). A collapse on traffic
//!   alone must fall far below that floor; a shallower fall (below about
//!   half) counts only with other evidence, which the reason names: errors
//!   (over the fall, not one burst) or latency rising with it, no recovery for
//!   [`DetectorConfig::max_dip_s`], or — when the caller supplies a seasonal
//!   reference ([`Detector::push_with_reference`], e.g. the same step a day
//!   earlier) — traffic far below what the reference predicts; with a
//!   reference, the expected level is the reference's, so a fall it shows
//!   too (the nightly slide) is no evidence at all.
//! * The alarm threshold is set for the window length (number of steps ×
//!   number of tests) so the false-alarm probability per window stays small.
//!   That is for a change at an unknown time; half the false-alarm goal
//!   ([`DEPLOY_SHARE`]) goes instead to the error, latency and pooled
//!   latency tests' evidence summed from the deploy on (one start per
//!   test: a threshold about 60% of the CUSUMs'), with the same per-step
//!   caps scaled to that threshold, a warm-up at its allowance leaving it
//!   as far short as the CUSUM, and retired once below where it began
//!   (see [`deploy_llr`]).
//! * Optional absolute guards (`max_error_rate`, `max_p*_ms`) are hard SLO
//!   limits: a regression after [`DetectorConfig::guard_steps`] breaching
//!   steps in a row.
//! * A sample whose `requests` is NaN is a gap (the source returned nothing):
//!   it adds no evidence; [`DetectorConfig::gap_steps`] gaps in a row make the
//!   verdict `InsufficientData` until data returns.
//! * A regression verdict latches.
//!
//! Feeding it (live window, `watch`, `replay` alike): push the baseline
//! samples (`t <= 0`, oldest first), then each window sample as its step
//! closes (`t > 0`). When a scrape fails or returns nothing, push a sample
//! with `requests: f64::NAN` for that step rather than skipping it, so gaps
//! are counted; a step with real zero traffic is `requests: 0.0` (that is a
//! throughput collapse, not a gap). Samples past `window_s` are ignored: the
//! window is over and `verdict()` is final. The detector needs at least
//! `min_baseline_steps` (5) usable baseline samples, else it answers
//! `InsufficientData`.

use super::stats::{
    fmt_duration, fmt_ms, fmt_p, fmt_pct, fmt_steps, fmt_t, mad_sigma, median, norm_sf,
    poisson_cdf, poisson_sf,
};
use super::{Band, BaselineSummary, Metric, Sample, Verdict, VerdictKind};

/// Error-rate ratios the error CUSUMs look for.
const ERR_RATIOS: [f64; 3] = [2.0, 4.0, 10.0];
/// Smallest latency shift that matters (log of ×1.3), and multiples of it.
const LAT_DELTA: f64 = 0.262_364_264_467_491_1;
const LAT_MULTS: [f64; 3] = [1.0, 2.0, 4.0];
/// Throughput collapse: requests fall to this fraction of the expected
/// level (for the deep test: of the healthy-dip floor).
const COLLAPSE_RATIO: f64 = 0.1;
/// A fall in traffic worth other evidence: to this fraction of the
/// expected level.
const FALL_RATIO: f64 = 0.3;
/// Error-rate ratios the whole-window test mixes (a slow creep, a small
/// rise at low traffic).
const CUM_RATIOS: [f64; 3] = [1.5, 2.0, 3.0];
/// The whole-window error test judges stretches of at least this many
/// seconds: a sustained rise, not a burst of a few steps.
const CUM_MIN_S: f64 = 120.0;
/// The whole-window error test keeps a stretch's worst step when its steps
/// expect at most this many errors each (see `cum_verdict`).
const DISCRETE_MU: f64 = 0.5;
/// Evidence needed spans more than `min_evidence_s`: `k` steps decide where
/// `k - 1` cannot; each full step may bring `h / (k - SLACK)`.
const SLACK: f64 = 0.25;
/// The whole-window error test's prior on the error rate's slow wander
/// (squared, relative): 12%, charged unless the baseline rules it out.
const CUM_WANDER_PRIOR: f64 = 0.0144;
/// How sure the baseline must be that the error wander is below the
/// prior before the prior stops being the floor: one-sided 2 sigma
/// (97.7%).
const WANDER_UCB_Z: f64 = 2.0;
/// How many standard deviations of slow level wander count as normal.
const WANDER_Z: f64 = 2.5;
/// The same for latency levels, whose block estimate sees less of a slow
/// wander (block means average part of it away).
const LAT_WANDER_Z: f64 = 2.5;
/// A baseline step this many robust standard deviations above the median
/// is a blip (GC pause, hiccup), not ordinary noise: a Gaussian step gets
/// there once in 30,000.
const BLIP_Z: f64 = 4.0;
/// Least spread of a blip process's log sizes (a few blips cannot show
/// theirs): 10%.
const BLIP_SD: f64 = 0.1;
/// Steps of this many seconds or more are coarse metrics (CloudWatch's 1-
/// and 5-minute periods): a step's quantile aggregates many shorter
/// intervals and carries a blip in any of them. Shorter steps are coarse
/// only with a baseline of fewer than 30 of them.
const COARSE_S: f64 = 60.0;
/// At coarse steps with a short baseline, a latency shift since the deploy
/// is steady when each step's deviation is within this many standard
/// deviations (of a difference of two steps) of the first step's.
const STEADY_Z: f64 = 2.5;
/// Inside the warm-up, a test's evidence is steady (no warm-up fading)
/// while each step holds at least this share of the first step's.
const STEADY_WARM: f64 = 0.8;
/// ... and by this many standard deviations of the difference beyond it:
/// relief from the warm-up allowance needs evidence that the signal did
/// not fade, not merely too little evidence that it did.
const WARM_Z: f64 = 0.5;
/// A warm-up that did not stay steady gets its evidence back at the first
/// step past it when that step's signal holds at least this share of the
/// warm-up steps' mean excess over the baseline's level: one half, so
/// that the step is nearer the shift than the baseline (a warm-up returns
/// to the baseline). 4/5 of the warm-up's mean level missed shifts that
/// held: an overdispersed error rate swings by half from step to step.
/// Error rates only: latency keeps 4/5 of the warm-up's mean shift.
const CONFIRM_SHARE: f64 = 0.5;
/// CUSUMs sharing the threshold: errors, latencies, the two traffic falls.
/// The pooled latency test (the three quantiles' evidence together, see
/// `Detector::pooled`) has a CUSUM per shift as well.
const N_TESTS: f64 = (ERR_RATIOS.len() + 4 * LAT_MULTS.len() + 2) as f64;
/// Share of the false-alarm goal spent on changes that came with the
/// deploy: the error and latency tests' evidence summed from the deploy
/// on (one start per test), against a threshold of its own. The rest is
/// spread over every start time in the window (the CUSUMs). A release
/// monitor exists because the deploy is the likeliest time for a change;
/// a CUSUM pays for not knowing when it began (its threshold counts every
/// step of the window as a start), a test anchored at the deploy does
/// not, so a change since the deploy needs about 60% of the evidence.
const DEPLOY_SHARE: f64 = 0.5;
/// The share of the threshold a whole warm-up may bring at most
/// ([`DetectorConfig::warmup_s`]).
const WARM_ALLOWANCE: f64 = 0.75;
/// Tests anchored at the deploy: errors x3, latencies 3x3, pooled x3.
const N_DEPLOY: f64 = (ERR_RATIOS.len() + 4 * LAT_MULTS.len()) as f64;
/// Tests with a warm-up state: errors x3, latencies 3x3, the two falls,
/// the pooled latency test x3.
const WARM_TESTS: usize = 17;
/// Warm-up ids of the pooled latency tests (one per shift of `LAT_MULTS`).
const POOL_ID: usize = 14;
const LAT_METRICS: [Metric; 3] = [Metric::LatencyP50, Metric::LatencyP95, Metric::LatencyP99];
const LAT_NAMES: [&str; 3] = ["p50", "p95", "p99"];

/// One window step as the whole-window error test keeps it.
#[derive(Clone, Copy, Debug)]
struct CumStep {
    t: f64,
    /// Errors, capped for a blip.
    x: f64,
    /// Expected errors at the baseline rate.
    mu: f64,
    errors: f64,
    requests: f64,
}

/// A test's warm-up steps, when they did not stay steady: the evidence
/// held back above the allowance, and the sums of their signals (or raw
/// evidence).
#[derive(Clone, Copy, Debug, Default)]
struct WarmLate {
    held: f64,
    sig: f64,
    raw: f64,
    n: u32,
}

/// Consecutive breaches of a hard guard.
#[derive(Clone, Copy, Debug, Default)]
struct Guard {
    run: usize,
    since: f64,
    sum_a: f64,
    sum_b: f64,
}

/// The regression detector. See the module documentation.
#[derive(Clone, Debug)]
pub struct Detector {
    cfg: DetectorConfig,
    baseline: Vec<Sample>,
    /// Reference request counts of the baseline rows (same index).
    baseline_ref: Vec<Option<f64>>,
    /// Baseline rows that carry data, counted as they arrive (recounting
    /// them at every row made a long baseline quadratic).
    baseline_usable: usize,
    model: Option<Model>,
    verdict: Verdict,
    last_t: Option<f64>,
    gap_run: usize,
    gap_since: f64,
    err: [Cusum; 3],
    lat: [[Cusum; 3]; 3],
    /// The three quantiles' evidence of a common shift, pooled.
    lat_pool: [Cusum; 3],
    /// The error, latency and pooled latency tests' evidence summed since
    /// the deploy, never reset (see [`Detector::deploy_call`]).
    dep_err: [Cusum; 3],
    dep_lat: [[Cusum; 3]; 3],
    dep_pool: [Cusum; 3],
    /// Whole-window error test (after the warm-up): errors, expected
    /// errors, Σ expected², steps, first step's t.
    cum: errors::CumSteps,
    /// Fall of traffic against the expected level (baseline or reference).
    thr: Cusum,
    /// Fall far below the healthy-dip floor.
    thr_deep: Cusum,
    /// Each test's raw evidence in the window's first step (see
    /// [`Detector::warm_cap`]): errors ×3, latencies 3×3, the two falls.
    warm_first: [f64; WARM_TESTS],
    /// Per test: the first step's signal and its variance, for tests whose
    /// evidence is not linear in the signal (see [`Detector::warm_cap`]).
    warm_sig: [(f64, f64); WARM_TESTS],
    /// Per test: every window step so far has held at least `STEADY_WARM`
    /// of the first step's evidence (no fading, as a warm-up would).
    warm_steady: [bool; WARM_TESTS],
    /// Per test: the first step's evidence above the warm-up allowance,
    /// held back until the second step shows whether it fades.
    warm_held: [f64; WARM_TESTS],
    /// Some test's evidence counted in full inside the warm-up.
    warm_waived: bool,
    /// Per test: what a warm-up that did not stay steady held back, and
    /// its steps' signals, until the first step past the warm-up shows
    /// whether the shift outlasted it (see [`Detector::warm_cap`]).
    warm_late: [WarmLate; WARM_TESTS],
    /// The current step has seconds inside the warm-up.
    warm_in: bool,
    /// The current step is the first one wholly past a warm-up of two
    /// steps or more.
    warm_first_after: bool,
    /// The call needed the warm-up evidence given back at the first step
    /// past the warm-up (the reason says so).
    warm_confirmed: bool,
    /// Per latency quantile: its shift since the deploy, and whether every
    /// step since has been clearly off by about as much (see
    /// [`Detector::since_deploy`]).
    lat_deploy: [latency::DeployShift; 3],
    /// Per error test: its last coarse step (see [`Detector::err_pair`]).
    err_pair: [Option<pairs::PairStep>; 3],
    /// Since when `thr` has held enough evidence of a fall, without a break.
    thr_low_since: Option<f64>,
    err_guard: Guard,
    lat_guard: [Guard; 3],
    // Window totals for the healthy reason.
    w_req: f64,
    w_err: f64,
    w_lat_sum: [f64; 3],
    w_lat_n: [f64; 3],
    w_last_t: f64,
    w_steps: usize,
    /// Seconds of the window its data steps stand for (each from the
    /// sample before it, a gap's included; at most four steps each).
    w_covered: f64,
}

impl Detector {
    pub fn new(cfg: DetectorConfig) -> Self {
        Detector {
            cfg,
            baseline: Vec::new(),
            baseline_ref: Vec::new(),
            baseline_usable: 0,
            model: None,
            verdict: Verdict {
                kind: VerdictKind::Collecting,
                metric: None,
                detected_at: None,
                reason: "collecting the baseline".to_string(),
            },
            last_t: None,
            gap_run: 0,
            gap_since: 0.0,
            err: [Cusum::default(); 3],
            lat: [[Cusum::default(); 3]; 3],
            lat_pool: [Cusum::default(); 3],
            dep_err: [Cusum::default(); 3],
            dep_lat: [[Cusum::default(); 3]; 3],
            dep_pool: [Cusum::default(); 3],
            cum: errors::CumSteps::default(),
            thr: Cusum::default(),
            thr_deep: Cusum::default(),
            thr_low_since: None,
            warm_first: [0.0; WARM_TESTS],
            warm_sig: [(0.0, 0.0); WARM_TESTS],
            warm_steady: [false; WARM_TESTS],
            warm_held: [0.0; WARM_TESTS],
            warm_waived: false,
            warm_late: [WarmLate::default(); WARM_TESTS],
            warm_in: false,
            warm_first_after: false,
            warm_confirmed: false,
            lat_deploy: [latency::DeployShift::default(); 3],
            err_pair: [None; 3],
            err_guard: Guard::default(),
            lat_guard: [Guard::default(); 3],
            w_req: 0.0,
            w_err: 0.0,
            w_lat_sum: [0.0; 3],
            w_lat_n: [0.0; 3],
            w_last_t: 0.0,
            w_steps: 0,
            w_covered: 0.0,
        }
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Feed the next sample (in time order). Samples out of order, after the
    /// window's end or after a regression are ignored.
    pub fn push(&mut self, s: Sample) -> &Verdict {
        self.push_with_reference(s, None)
    }

    /// [`push`](Self::push) with a seasonal reference: the same step at an
    /// earlier time (e.g. a day or a week before; Prometheus' `offset 1d`).
    /// Only its request count is used: the traffic expected now is the
    /// reference's, scaled by how the baseline compared with the reference
    /// over the same baseline steps. So a fall the reference shows too (the
    /// nightly slide) is expected, and a fall far below it is a collapse
    /// on its own. The reference counts only when the baseline had one too.
    pub fn push_with_reference(&mut self, s: Sample, reference: Option<Sample>) -> &Verdict {
        let ref_n = reference
            .map(|r| r.requests)
            .filter(|n| n.is_finite() && *n >= 0.0);
        if self.verdict.kind == VerdictKind::Regression || !s.t.is_finite() {
            return &self.verdict;
        }
        if let Some(last) = self.last_t
            && s.t <= last
        {
            return &self.verdict;
        }
        if s.t <= 0.0 {
            if self.model.is_none() {
                self.last_t = Some(s.t);
                self.baseline_usable += usize::from(is_data(&s));
                self.baseline.push(s);
                self.baseline_ref.push(ref_n);
                self.verdict.reason = format!(
                    "collecting the baseline: {} so far",
                    fmt_steps(self.baseline_usable)
                );
            }
            return &self.verdict;
        }
        if s.t > self.cfg.window_s + 1e-9 {
            return &self.verdict;
        }
        let prev_t = self.last_t.unwrap_or(0.0).max(0.0);
        self.last_t = Some(s.t);
        if self.model.is_none() {
            self.model = Some(self.build_model(s.t));
        }
        let model = self.model.clone().expect("model built above");
        if model.usable < self.cfg.baseline_needed() {
            self.verdict = Verdict {
                kind: VerdictKind::InsufficientData,
                metric: None,
                detected_at: None,
                reason: format!(
                    "insufficient data: the baseline has {} usable step{} (need {})",
                    model.usable,
                    if model.usable == 1 { "" } else { "s" },
                    self.cfg.baseline_needed()
                ),
            };
            return &self.verdict;
        }
        if !is_data(&s) {
            if self.gap_run == 0 {
                self.gap_since = s.t;
            }
            self.gap_run += 1;
            if self.gap_run >= self.cfg.gap_steps.max(1) {
                self.verdict = Verdict {
                    kind: VerdictKind::InsufficientData,
                    metric: None,
                    detected_at: None,
                    reason: format!(
                        "insufficient data: no metrics for {} in a row since t={}",
                        fmt_steps(self.gap_run),
                        fmt_t(self.gap_since)
                    ),
                };
            } else if let Some(v) = self
                .thin_coverage(&model, s.t)
                .filter(|_| s.t >= self.cfg.warmup_s)
            {
                self.verdict = v;
            }
            return &self.verdict;
        }
        self.gap_run = 0;
        let step = (s.t - prev_t).clamp(0.25 * model.dt, 4.0 * model.dt);
        self.w_covered += step;
        // Evidence is capped per second of the step, less in the seconds
        // of the warm-up: whatever the step, no single step and no warm-up
        // alone can decide.
        let warm = (s.t.min(self.cfg.warmup_s) - prev_t).clamp(0.0, step);
        let cap = model.cap_rate * (step - warm) + model.warm_rate * warm;
        let full = model.cap_rate * step;
        let after_warmup = prev_t >= self.cfg.warmup_s;
        let was_in = self.warm_in;
        self.warm_in = warm > 0.0;
        self.warm_first_after = was_in && !self.warm_in;
        if let Some(mut v) = self.step(&model, &s, step, (cap, full), ref_n, after_warmup) {
            if self.warm_waived && s.t <= self.cfg.warmup_s {
                v.reason.push_str(
                    " (inside the warm-up: steady since the deploy, not fading as a warm-up does)",
                );
            } else if self.warm_confirmed {
                v.reason.push_str(
                    " (the warm-up's evidence counted in full: the shift held past the warm-up, not fading as a warm-up does)",
                );
            }
            self.verdict = v;
        } else if s.t < self.cfg.warmup_s {
            // Too early to call it healthy: say what is seen, without a verdict.
            let h = self.healthy(&model);
            let seen = h.reason.split_once(": ").map_or("", |(_, r)| r);
            self.verdict = Verdict {
                kind: VerdictKind::Collecting,
                metric: None,
                detected_at: None,
                reason: format!(
                    "warm-up: no verdict before t=+{}s; so far {seen}",
                    self.cfg.warmup_s
                ),
            };
        } else if let Some(v) = self
            .no_reference(&model)
            .or_else(|| self.thin_coverage(&model, s.t))
        {
            // Nothing to call health from: no test had a reference, or
            // the metrics covered too little of the window.
            self.verdict = v;
        } else {
            self.verdict = self.healthy(&model);
        }
        &self.verdict
    }

    /// Update every test with one window sample; `Some` on a regression.
    #[allow(clippy::needless_range_loop)] // i indexes several parallel arrays
    fn step(
        &mut self,
        m: &Model,
        s: &Sample,
        step: f64,
        (cap, full): (f64, f64),
        ref_n: Option<f64>,
        after_warmup: bool,
    ) -> Option<Verdict> {
        let t = s.t;
        let first = self.w_steps == 0;
        let n = s.requests.max(0.0);
        let e = if s.errors.is_finite() {
            s.errors.clamp(0.0, n)
        } else {
            0.0
        };
        self.w_steps += 1;
        self.w_last_t = t;
        self.w_req += n;
        self.w_err += e;
        let q = [s.p50_ms, s.p95_ms, s.p99_ms];
        let mut found: Option<Verdict> = self.hard_guards(m, t, (n, e), q);

        // Error rate: quasi-Poisson CUSUMs on the error count.
        if let Some(es) = m.err
            && n > 0.0
        {
            let mu = n * es.p_ref;
            // The rate, its quasi-Poisson variance and the baseline rate,
            // for the warm-up's fading test.
            let sig = (
                e / n,
                e.max(1.0) * (1.0 + es.c * e.max(1.0)) / (n * n),
                es.p0,
            );
            for (k, &r) in ERR_RATIOS.iter().enumerate() {
                let raw = nb_llr(e, mu, r, es.c);
                let (cap, bonus) = self.warm_cap(k, raw, Some(sig), (cap, full), first);
                let llr = raw.clamp(-cap, cap) + bonus;
                let pair = self.err_pair(m, k, t, raw, (llr, bonus, full), (e, n), es.p0);
                let var = n * es.p0 * (1.0 + es.c * n * es.p0);
                self.err[k].update(t, llr + pair, e, n, var);
                self.drop_held_on_reset(k, self.err[k].s);
                let d = deploy_llr(m, raw, (cap, cap, full), bonus);
                self.dep_err[k].add(t, d.0, e, n, var);
                if self.dep_err[k].s >= m.h_dep && self.err[k].s < m.h && found.is_none() {
                    self.warm_confirmed = self.dep_err[k].s - d.1 < m.h_dep;
                    let mut v = self.err_reason(es, &self.dep_err[k], t);
                    v.reason.push_str(DEPLOY_NOTE);
                    found = Some(v);
                }
                if self.err[k].s >= m.h && found.is_none() {
                    self.warm_confirmed = self.err[k].s - bonus < m.h;
                    let mut v = self.err_reason(es, &self.err[k], t);
                    if self.err[k].s - pair < m.h {
                        v.reason.push_str(
                            ": the last two steps agree on the rise, so each counts in full",
                        );
                    }
                    found = Some(v);
                }
            }
        }

        // Errors over the whole window since the warm-up: slow creeps and
        // small rises at low traffic, which no stretch of steps shows alone.
        if let Some(es) = m.err
            && n > 0.0
            && after_warmup
        {
            let mu = n * es.p0;
            self.cum.push(CumStep {
                t,
                // One step (a blip) counts for at most a fourfold rate.
                x: e.min(4.0 * mu + 4.0),
                mu,
                errors: e,
                requests: n,
            });
            if found.is_none()
                && let Some(v) = self.cum_verdict(m, es, t)
            {
                found = Some(v);
            }
        }

        // Latency: Gaussian CUSUMs on log quantiles, per quantile.
        // A quantile of fewer requests is noisier (sampling error grows as
        // 1/sqrt(n)): a dip in traffic below the baseline's usual range is
        // no latency evidence.
        let thin = m.thr.map_or(1.0, |ts| {
            (0.85 * ts.per_step * step / m.dt / n.max(1e-9)).clamp(1.0, 25.0)
        });
        let broad = n > 0.0 && self.since_deploy(m, q, thin, step, first);
        for i in 0..3 {
            let (Some(ls), Some(v)) = (m.lat[i], q[i]) else {
                continue;
            };
            if !(v.is_finite() && v > 0.0) || n <= 0.0 {
                continue;
            }
            let x = v.ln();
            self.w_lat_sum[i] += x;
            self.w_lat_n[i] += 1.0;
            let (sg, mr) = if broad {
                (ls.sigma_core, ls.m_ref_core)
            } else {
                (ls.sigma, ls.m_ref)
            };
            let dev = x - mr;
            let var = sg * sg * thin;
            let rate = if broad { ls.deploy_rate } else { ls.cap_rate };
            let lat_full = full.min(rate * step);
            let lat_cap = cap.min(lat_full);
            for (k, &mult) in LAT_MULTS.iter().enumerate() {
                let delta = LAT_DELTA * mult;
                let raw = latency::lat_llr(ls.blips, mr - ls.m, dev, var, delta);
                let id = 3 + 3 * i + k;
                let (lat_cap, bonus) = self.warm_cap(
                    id,
                    raw,
                    Some((dev, var, ls.m - mr)),
                    (lat_cap, lat_full),
                    first,
                );
                let llr = raw.clamp(-cap, lat_cap) + bonus;
                self.lat[i][k].update(t, llr, x - ls.m, 0.0, 0.0);
                self.drop_held_on_reset(id, self.lat[i][k].s);
                let d = deploy_llr(m, raw, (cap, lat_cap, lat_full), bonus);
                self.dep_lat[i][k].add(t, d.0, x - ls.m, 0.0, 0.0);
                if self.dep_lat[i][k].s >= m.h_dep && self.lat[i][k].s < m.h && found.is_none() {
                    self.warm_confirmed = self.dep_lat[i][k].s - d.1 < m.h_dep;
                    let mut v = lat_reason(i, ls, &self.dep_lat[i][k], t);
                    v.reason.push_str(DEPLOY_NOTE);
                    found = Some(v);
                }
                if self.lat[i][k].s >= m.h && found.is_none() {
                    self.warm_confirmed = self.lat[i][k].s - bonus < m.h;
                    let mut v = lat_reason(i, ls, &self.lat[i][k], t);
                    if broad {
                        let shifted: Vec<&str> = (0..3)
                            .filter(|&j| self.lat_deploy[j].off)
                            .map(|j| LAT_NAMES[j])
                            .collect();
                        v.reason.push_str(&format!(
                            ": a steady shift of {} since the deploy, no quantile fading",
                            shifted.join(" and ")
                        ));
                    }
                    found = Some(v);
                }
            }
        }

        if n > 0.0
            && let Some(v) = self.pooled(m, q, thin, step, (cap, full), first, t)
            && found.is_none()
        {
            found = Some(v);
        }

        // Throughput collapse: quasi-Poisson CUSUMs on the request count,
        // against the level expected now (the baseline's, or the seasonal
        // reference's when there is one).
        if let Some(ts) = m.thr {
            let (lam, c, seasonal) = match (ts.ref_k, ref_n) {
                (Some(k), Some(r)) => (k * r, 2.0 * ts.c + 1.0 / (r + 1.0), true),
                _ => (ts.rate * step, ts.c, false),
            };
            let raw = nb_llr(n, lam, FALL_RATIO, c);
            let (cap, bonus) = self.warm_cap(12, raw, None, (cap, full), first);
            let thr_bonus = bonus;
            let llr = raw.clamp(-cap, cap) + bonus;
            self.thr.update(t, llr, n, lam, step);
            self.drop_held_on_reset(12, self.thr.s);
            // A ceiling, so that the evidence fades soon after a recovery.
            self.thr.s = self.thr.s.min(2.0 * m.h);
            let raw = nb_llr(n, ts.floor * lam, COLLAPSE_RATIO, c);
            let (cap, bonus) = self.warm_cap(13, raw, None, (cap, full), first);
            let deep_bonus = bonus;
            let llr = raw.clamp(-cap, cap) + bonus;
            self.thr_deep.update(t, llr, n, lam, step);
            self.drop_held_on_reset(13, self.thr_deep.s);
            if self.thr.s >= m.h {
                self.thr_low_since.get_or_insert(self.thr.start_t);
            } else {
                self.thr_low_since = None;
            }
            if found.is_none() {
                let low_for = self.thr_low_since.map_or(0.0, |since| t - since);
                let with = self.moving_with_it(m);
                let evidence = if self.thr_deep.s >= m.h {
                    Some((
                        &self.thr_deep,
                        ts.floor,
                        format!(
                            "far below the deepest healthy dip ({:.0}% of {})",
                            ts.floor * 100.0,
                            if seasonal {
                                "the reference"
                            } else {
                                "the baseline"
                            }
                        ),
                    ))
                } else if self.thr.s >= m.h && seasonal {
                    Some((
                        &self.thr,
                        1.0,
                        "far below the same time in the seasonal reference".to_string(),
                    ))
                } else if self.thr.s >= m.h && with.is_some() {
                    Some((
                        &self.thr,
                        1.0,
                        format!("{} rose with it", with.unwrap_or_default()),
                    ))
                } else if self.thr.s >= m.h && low_for >= self.cfg.max_dip_s {
                    Some((
                        &self.thr,
                        1.0,
                        format!("no recovery for {}", fmt_duration(low_for)),
                    ))
                } else {
                    None
                };
                if let Some((c, null, why)) = evidence {
                    let bonus = if std::ptr::eq(c, &self.thr_deep) {
                        deep_bonus
                    } else {
                        thr_bonus
                    };
                    let needed = c.s - bonus < m.h;
                    found = Some(thr_reason(ts, c, t, seasonal, null, &why));
                    self.warm_confirmed = needed;
                }
            }
        }
        found
    }

    /// The signal, if any, whose evidence of a regression has come close
    /// to the alarm threshold (half of it for errors; three quarters for a
    /// latency quantile, which a thinner step makes noisier): what makes a
    /// fall in traffic more than a dip. Errors count only when they rose
    /// over the fall, beyond its worst step (see
    /// `errors::rise_is_sustained`).
    fn moving_with_it(&self, m: &Model) -> Option<String> {
        let sustained = || {
            m.err.is_none_or(|es| {
                let since = self.thr_low_since.unwrap_or(self.thr.start_t);
                errors::rise_is_sustained(&self.cum, since, es.p_ref / es.p0, es.c)
            })
        };
        if self.err.iter().any(|c| c.s >= 0.5 * m.h) && sustained() {
            return Some("the error rate".into());
        }
        (0..3)
            .find(|&i| self.lat[i].iter().any(|c| c.s >= 0.75 * m.h))
            .map(|i| format!("{} latency", LAT_NAMES[i]))
    }
}

/// What a call anchored at the deploy adds to its reason.
const DEPLOY_NOTE: &str =
    ": summed since the deploy, where a change needs less evidence than at an unknown time";

/// A step's evidence for the sums anchored at the deploy: the CUSUM's
/// (`raw`, clamped below at `lo` and above at the test's cap for this
/// step, `hi` of `full`, plus the warm-up `bonus` returned to it), with
/// the cap and the bonus scaled from the CUSUM threshold to the deploy
/// threshold, so that a call still needs evidence spanning
/// `min_evidence_s`. A warm-up comes with the deploy too: a step the
/// warm-up allowance holds (`hi < full`: its signal fading or not yet
/// shown steady) is scaled so that a whole warm-up at its allowance
/// leaves the deploy sum as much evidence short of its threshold as the
/// CUSUM of its own, `(1 - WARM_ALLOWANCE) h`: past a fading warm-up a
/// step must show as much as it would without the deploy test. Returns
/// the evidence and the scaled bonus.
fn deploy_llr(m: &Model, raw: f64, (lo, hi, full): (f64, f64, f64), bonus: f64) -> (f64, f64) {
    let rho = m.h_dep / m.h;
    let up = if hi < full {
        let short = (1.0 - WARM_ALLOWANCE) * m.h;
        hi * ((m.h_dep - short) / (WARM_ALLOWANCE * m.h)).max(0.0)
    } else {
        hi * rho
    };
    (raw.clamp(-lo, up) + bonus * rho, bonus * rho)
}

/// Log-likelihood ratio of a count `x` under a negative binomial of mean
/// `ratio * mu` against mean `mu`, both with overdispersion `c`
/// (Var = m + c m²). Heavy-tailed bursts add little evidence per count;
/// as `c` → 0 it is the Poisson ratio `x ln r - (r - 1) mu`.
fn nb_llr(x: f64, mu: f64, ratio: f64, c: f64) -> f64 {
    if c < 1e-9 {
        return x * ratio.ln() - (ratio - 1.0) * mu;
    }
    let k = 1.0 / c;
    x * ratio.ln() + (x + k) * ((k + mu).ln() - (k + ratio * mu).ln())
}

/// A sample that carries data (a NaN or negative request count, or an
/// unknown error count, is a gap).
/// Whether `s` holds data: its counts are numbers (a gap has NaN counts).
pub(crate) fn is_data(s: &Sample) -> bool {
    s.requests.is_finite() && s.requests >= 0.0 && s.errors.is_finite()
}

mod baseline;
mod config;
mod cusum;
mod errors;
mod guards;
mod latency;
mod model;
mod pairs;
mod reasons;
mod warmup;

pub use config::DetectorConfig;
use cusum::Cusum;
use model::{Blips, ErrStats, LatStats, Model, ThrStats};
use reasons::{lat_reason, pooled_reason, regression, thr_reason};

#[cfg(test)]
mod tests;
