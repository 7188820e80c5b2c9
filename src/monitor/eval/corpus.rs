//! Synthetic, labelled deploy traces in the SPEC §5 shape: 30 min of
//! baseline and 30 min of window at 10 s steps, with realistic noise —
//! gamma-Poisson (overdispersed) request and error counts, a slowly
//! wandering (AR(1)) error rate and latency, hourly drift, quantile sampling
//! noise that grows as traffic falls, traffic from ~0.5 to ~500 req/s, base
//! error rates 0.1%–2%, p50 from 10 ms to 300 ms (p99 up to ~2 s).
//!
//! Healthy deploys come in every benign kind the detector must tolerate;
//! regressions in every kind it must catch. Each trace carries its truth.

use super::rng::Rng;
use crate::monitor::Sample;

/// What really happened in a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Truth {
    Healthy,
    /// A regression whose first affected step starts at `t0` (the first
    /// affected row has `t = t0 + step`).
    Regression {
        t0: f64,
    },
}

/// Benign situations: a detector must stay quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthyKind {
    Noise,
    Blip,
    Drift,
    Dip,
    Warmup,
    BenignShift,
    Gaps,
    /// A legitimate fall in traffic (a batch client stops, the evening
    /// slide): 40–70% fewer requests for 3–15 minutes, then back, with
    /// errors and latency unchanged.
    TrafficDip,
}

/// Bad deploys: a detector must fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegressionKind {
    ErrorRise,
    /// Everything slows down: p50, p95, p99 shift together.
    LatencyP50,
    /// The slow tail grows: p95 and p99 shift, p50 barely.
    LatencyP95,
    /// Only the far tail: p99 shifts, p95 a little.
    LatencyP99,
    ErrorAndLatency,
    /// A slow ramp of latency or errors over 5–15 minutes.
    Creep,
    /// A step regression that begins 2–15 minutes after the deploy.
    Late,
    /// Requests fall to a trickle.
    Collapse,
    /// The error rate creeps up to ×3 over 25–30 minutes, with a base rate
    /// the counts can show at all: at least ~12 errors in the baseline (as
    /// for `LowTrafficRise`).
    SlowCreep,
    /// The error rate triples at low traffic (0.5–5 req/s), with a base rate
    /// the counts can show at all: at least ~12 errors in the baseline.
    LowTrafficRise,
    /// Everything is ×1.5–2 slower for the first 10–15 minutes after the
    /// deploy (cold caches, a rebuilding index), then back to normal: what
    /// a Kayenta-style comparison catches on 5-minute data, where it lasts
    /// two or three steps.
    EarlyBump,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Healthy(HealthyKind),
    Regression(RegressionKind),
}

impl Kind {
    pub const HEALTHY: [HealthyKind; 8] = [
        HealthyKind::Noise,
        HealthyKind::Blip,
        HealthyKind::Drift,
        HealthyKind::Dip,
        HealthyKind::Warmup,
        HealthyKind::BenignShift,
        HealthyKind::Gaps,
        HealthyKind::TrafficDip,
    ];
    pub const REGRESSIONS: [RegressionKind; 11] = [
        RegressionKind::ErrorRise,
        RegressionKind::LatencyP50,
        RegressionKind::LatencyP95,
        RegressionKind::LatencyP99,
        RegressionKind::ErrorAndLatency,
        RegressionKind::Creep,
        RegressionKind::Late,
        RegressionKind::Collapse,
        RegressionKind::SlowCreep,
        RegressionKind::LowTrafficRise,
        RegressionKind::EarlyBump,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Healthy(h) => match h {
                HealthyKind::Noise => "healthy/noise",
                HealthyKind::Blip => "healthy/blip",
                HealthyKind::Drift => "healthy/drift",
                HealthyKind::Dip => "healthy/dip",
                HealthyKind::Warmup => "healthy/warmup",
                HealthyKind::BenignShift => "healthy/benign_shift",
                HealthyKind::Gaps => "healthy/gaps",
                HealthyKind::TrafficDip => "healthy/traffic_dip",
            },
            Kind::Regression(r) => match r {
                RegressionKind::ErrorRise => "regression/error_rise",
                RegressionKind::LatencyP50 => "regression/latency_p50",
                RegressionKind::LatencyP95 => "regression/latency_p95",
                RegressionKind::LatencyP99 => "regression/latency_p99",
                RegressionKind::ErrorAndLatency => "regression/error_and_latency",
                RegressionKind::Creep => "regression/creep",
                RegressionKind::Late => "regression/late",
                RegressionKind::Collapse => "regression/collapse",
                RegressionKind::SlowCreep => "regression/slow_creep",
                RegressionKind::LowTrafficRise => "regression/low_traffic_x3",
                RegressionKind::EarlyBump => "regression/early_bump",
            },
        }
    }
}

/// One labelled trace.
#[derive(Clone, Debug)]
pub struct LabeledTrace {
    pub kind: Kind,
    pub truth: Truth,
    /// Mean traffic in requests per second (for slicing results).
    pub rps: f64,
    pub samples: Vec<Sample>,
}

/// Shape of the generated traces.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub step_s: f64,
    pub baseline_s: f64,
    pub window_s: f64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            step_s: 10.0,
            baseline_s: 1800.0,
            window_s: 1800.0,
        }
    }
}

/// `n` traces from `seed`: half healthy, half regressions, kinds in turn.
pub fn corpus(seed: u64, n: usize) -> Vec<LabeledTrace> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let kind = if i % 2 == 0 {
                Kind::Healthy(Kind::HEALTHY[(i / 2) % Kind::HEALTHY.len()])
            } else {
                Kind::Regression(Kind::REGRESSIONS[(i / 2) % Kind::REGRESSIONS.len()])
            };
            let mut trng = Rng::new(rng.next_u64());
            generate(&mut trng, kind, None, Shape::default())
        })
        .collect()
}

/// The trace at a coarser step: `factor` consecutive rows merged into one,
/// as a metrics system with a longer step reports them (CloudWatch's 1- or
/// 5-minute periods). Rows are grouped so that every group ends on a
/// multiple of the new step (`t = 0` still closes the baseline); counts are
/// summed over the rows with data, each latency quantile is the worst
/// (largest) of the merged rows, and a group with no data at all is a gap.
pub fn resample(samples: &[Sample], factor: usize) -> Vec<Sample> {
    if factor <= 1 || samples.len() < 2 {
        return samples.to_vec();
    }
    let dt = samples[1].t - samples[0].t;
    let big = dt * factor as f64;
    let mut out: Vec<Sample> = Vec::new();
    let mut key = i64::MIN;
    for s in samples {
        let k = (s.t / big - 1e-9).ceil() as i64;
        if k != key {
            key = k;
            out.push(Sample {
                t: k as f64 * big,
                requests: f64::NAN,
                errors: f64::NAN,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
            });
        }
        let cur = out.last_mut().expect("pushed above");
        if !s.requests.is_finite() {
            continue;
        }
        if cur.requests.is_finite() {
            cur.requests += s.requests;
            cur.errors += s.errors;
        } else {
            cur.requests = s.requests;
            cur.errors = s.errors;
        }
        let worst = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        cur.p50_ms = worst(cur.p50_ms, s.p50_ms);
        cur.p95_ms = worst(cur.p95_ms, s.p95_ms);
        cur.p99_ms = worst(cur.p99_ms, s.p99_ms);
    }
    out
}

/// A labelled trace at a coarser step (see [`resample`]); the truth is
/// unchanged.
pub fn resample_trace(tr: &LabeledTrace, factor: usize) -> LabeledTrace {
    LabeledTrace {
        samples: resample(&tr.samples, factor),
        ..tr.clone()
    }
}

/// Per-step modifiers applied on top of the base noise processes.
pub(super) struct Effects {
    pub traffic: Vec<f64>,
    pub err_mult: Vec<f64>,
    /// Minimum error rate while a regression is on (a bad deploy that fails
    /// 1.5% of requests does so even where the base rate was 0.1%).
    pub err_floor: Vec<f64>,
    pub lat: Vec<[f64; 3]>,
    pub gap: Vec<bool>,
}

impl Effects {
    /// No effect on any of `n` steps.
    pub(super) fn new(n: usize) -> Effects {
        Effects {
            traffic: vec![1.0; n],
            err_mult: vec![1.0; n],
            err_floor: vec![0.0; n],
            lat: vec![[1.0; 3]; n],
            gap: vec![false; n],
        }
    }
}

/// A service and its noise: what a trace's base processes are drawn from.
#[derive(Clone, Debug)]
pub(super) struct Profile {
    pub rps: f64,
    pub p_err: f64,
    pub p50: f64,
    /// Lognormal shape of request latency.
    pub spread: f64,
    /// Per-step overdispersion of traffic.
    pub tr_cv: f64,
    pub tr_wander: f64,
    /// Per-step overdispersion of the error rate.
    pub err_cv: f64,
    pub err_wander: f64,
    pub lat_jitter: f64,
    pub lat_wander: f64,
    /// Log changes per hour.
    pub tr_drift: f64,
    pub err_drift: f64,
    pub lat_drift: f64,
    /// Background blips per step.
    pub blip_rate: f64,
}

impl Profile {
    /// The corpus's profile at `rps`; with `min_errors`, a base error rate
    /// that gives at least that many errors over `baseline_s`.
    pub(super) fn draw(
        rng: &mut Rng,
        rps: f64,
        min_errors: Option<f64>,
        baseline_s: f64,
    ) -> Profile {
        let mut p_err = rng.log_uniform(0.001, 0.02);
        if let Some(m) = min_errors {
            p_err = p_err.max(m / (rps * baseline_s)).min(0.05);
        }
        Profile {
            rps,
            p_err,
            p50: rng.log_uniform(10.0, 300.0),
            spread: rng.uniform(0.3, 0.8),
            tr_cv: rng.uniform(0.05, 0.2),
            tr_wander: rng.uniform(0.02, 0.1),
            err_cv: rng.uniform(0.15, 0.6),
            err_wander: rng.uniform(0.05, 0.25),
            lat_jitter: rng.uniform(0.02, 0.06),
            lat_wander: rng.uniform(0.01, 0.06),
            tr_drift: rng.uniform(-0.2, 0.2),
            err_drift: rng.uniform(-0.1, 0.1),
            lat_drift: rng.uniform(-0.04, 0.04),
            blip_rate: rng.uniform(0.0, 0.01),
        }
    }
}

/// The rows at times `ts`: the profile's base processes with the effects
/// on top.
#[allow(clippy::needless_range_loop)] // indexes several parallel per-step arrays
pub(super) fn render(
    rng: &mut Rng,
    pf: &Profile,
    fx: &Effects,
    ts: &[f64],
    dt: f64,
) -> Vec<Sample> {
    let n = ts.len();
    let mut samples = Vec::with_capacity(n);
    // Slow wander: stationary AR(1) processes in log space.
    let mut w_tr = pf.tr_wander * rng.normal();
    let mut w_err = pf.err_wander * rng.normal();
    let mut w_lat = pf.lat_wander * rng.normal();
    let ar = 0.95f64;
    let innov = (1.0 - ar * ar).sqrt();
    for i in 0..n {
        let t = ts[i];
        let hours = t / 3600.0;
        w_tr = w_tr * ar + innov * pf.tr_wander * rng.normal();
        w_err = w_err * ar + innov * pf.err_wander * rng.normal();
        w_lat = w_lat * ar + innov * pf.lat_wander * rng.normal();
        if fx.gap[i] {
            samples.push(Sample {
                t,
                requests: f64::NAN,
                errors: f64::NAN,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
            });
            continue;
        }
        let mut blip_err = 1.0;
        let mut blip_lat = 1.0;
        if rng.chance(pf.blip_rate) {
            if rng.chance(0.5) {
                blip_err = rng.uniform(3.0, 10.0);
            } else {
                blip_lat = rng.uniform(1.5, 3.0);
            }
        }
        let lam = pf.rps * dt * (pf.tr_drift * hours + w_tr).exp() * fx.traffic[i];
        let req = rng.neg_binomial(lam, pf.tr_cv);
        let p = (pf.p_err * (pf.err_drift * hours + w_err).exp() * fx.err_mult[i] * blip_err)
            .max(fx.err_floor[i])
            .min(0.9);
        let g = rng.gamma_factor(pf.err_cv);
        let errors = rng.poisson(req * p * g).min(req);
        let (p50_ms, p95_ms, p99_ms) = if req > 0.0 {
            let common = pf.lat_drift * hours + w_lat + pf.lat_jitter * rng.normal();
            let mu = pf.p50.ln() + common;
            let z = [0.0, 1.645, 2.326];
            let se_k = [1.25, 2.11, 3.73];
            let mut q = [0.0; 3];
            for k in 0..3 {
                let se = (pf.spread * se_k[k] / req.sqrt()).min(0.8 * pf.spread);
                q[k] = (mu + pf.spread * z[k] + se * rng.normal()).exp() * fx.lat[i][k] * blip_lat;
            }
            // Quantiles of one step are ordered.
            q[1] = q[1].max(q[0]);
            q[2] = q[2].max(q[1]);
            let r1 = |x: f64| (x * 10.0).round() / 10.0;
            (Some(r1(q[0])), Some(r1(q[1])), Some(r1(q[2])))
        } else {
            (None, None, None)
        };
        samples.push(Sample {
            t,
            requests: req,
            errors,
            p50_ms,
            p95_ms,
            p99_ms,
        });
    }
    samples
}

/// Generate one trace of `kind`. `rps` fixes the mean traffic (else drawn
/// log-uniformly from 0.5 to 500 req/s).
pub fn generate(rng: &mut Rng, kind: Kind, rps: Option<f64>, shape: Shape) -> LabeledTrace {
    generate_with(rng, kind, rps, shape, None)
}

/// A sharp regression from the deploy on: the error rate ×`ratio` (no
/// floor) when `errors`, else every latency quantile ×`ratio`.
pub fn sharp(rng: &mut Rng, errors: bool, ratio: f64, rps: f64, shape: Shape) -> LabeledTrace {
    let kind = if errors {
        RegressionKind::ErrorRise
    } else {
        RegressionKind::LatencyP50
    };
    generate_with(rng, Kind::Regression(kind), Some(rps), shape, Some(ratio))
}

/// [`generate`] with the regression's size fixed (`magnitude`: the error
/// ratio or the latency factor) instead of drawn.
#[allow(clippy::needless_range_loop)] // indexes several parallel per-step arrays
fn generate_with(
    rng: &mut Rng,
    kind: Kind,
    rps: Option<f64>,
    shape: Shape,
    magnitude: Option<f64>,
) -> LabeledTrace {
    let dt = shape.step_s;
    let nb = (shape.baseline_s / dt).round() as usize;
    let nw = (shape.window_s / dt).round() as usize;
    let n = nb + nw;
    let ts: Vec<f64> = (0..n).map(|i| (i as f64 - nb as f64 + 1.0) * dt).collect();
    // Index of the first window step (t = dt).
    let w0 = nb;

    // Service profile.
    let low = kind == Kind::Regression(RegressionKind::LowTrafficRise);
    let rps = rps.unwrap_or_else(|| {
        if low {
            rng.log_uniform(0.5, 5.0)
        } else {
            rng.log_uniform(0.5, 500.0)
        }
    });
    // The slow error kinds get a base rate the counts can show at all: at
    // least ~12 errors in the baseline. Below that a tripled rate is a
    // handful of errors in the whole window, which no test (not even one
    // that knows when the change began) tells from noise.
    let slow = kind == Kind::Regression(RegressionKind::SlowCreep);
    let min_errors = (low || slow).then_some(12.0);
    let mut pf = Profile::draw(rng, rps, min_errors, shape.baseline_s);
    let mut fx = Effects::new(n);
    let mut truth = Truth::Healthy;
    let step_at = |t0: f64| w0 + (t0 / dt).round() as usize;

    match kind {
        Kind::Healthy(h) => match h {
            HealthyKind::Noise => {}
            HealthyKind::Blip => {
                for _ in 0..rng.int(1, 3) {
                    let i = rng.int(w0 as i64, (n - 2) as i64) as usize;
                    let len = if rng.chance(0.2) { 2 } else { 1 };
                    let what = rng.int(0, 2);
                    for j in i..(i + len).min(n) {
                        match what {
                            0 => fx.err_mult[j] *= rng.uniform(4.0, 15.0),
                            1 => {
                                let f = rng.uniform(1.8, 4.0);
                                fx.lat[j] = [f.sqrt(), f, f];
                            }
                            _ => fx.traffic[j] *= rng.uniform(0.02, 0.2),
                        }
                    }
                }
            }
            HealthyKind::Drift => {
                let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
                pf.tr_drift = sign * rng.uniform(0.2, 0.5);
                pf.err_drift = sign * rng.uniform(0.1, 0.25);
                pf.lat_drift = sign * rng.uniform(0.04, 0.08);
            }
            HealthyKind::Dip => {
                let start = step_at(rng.uniform(0.0, 1200.0));
                let len = if rng.chance(0.5) {
                    n
                } else {
                    rng.int(30, 60) as usize
                };
                let f = rng.uniform(0.6, 0.8);
                for v in fx.traffic.iter_mut().skip(start).take(len) {
                    *v *= f;
                }
            }
            HealthyKind::Warmup => {
                let len = rng.int(1, 3) as usize;
                let f = rng.uniform(1.5, 3.0);
                let e = rng.uniform(2.0, 8.0);
                for k in 0..len {
                    let decay = 1.0 / (1.0 + k as f64);
                    let lf = 1.0 + (f - 1.0) * decay;
                    fx.lat[w0 + k] = [lf.sqrt(), lf, lf];
                    fx.err_mult[w0 + k] *= 1.0 + (e - 1.0) * decay;
                    fx.traffic[w0 + k] *= 0.8;
                }
            }
            HealthyKind::BenignShift => {
                let lf = rng.uniform(1.02, 1.08);
                let ef = rng.uniform(1.0, 1.15);
                let tf = rng.uniform(0.9, 1.1);
                for i in w0..n {
                    fx.lat[i] = [lf, lf, lf];
                    fx.err_mult[i] *= ef;
                    fx.traffic[i] *= tf;
                }
            }
            HealthyKind::TrafficDip => {
                let len = (rng.uniform(180.0, 900.0) / dt).round().max(1.0) as usize;
                let start = step_at(rng.uniform(0.0, (shape.window_s - 300.0).max(0.0)));
                let f = rng.uniform(0.3, 0.6);
                // A minute's slide down and back up on each side.
                let edge = (60.0 / dt).round().max(1.0) as usize;
                for k in 0..len + 2 * edge {
                    let i = start + k;
                    if i >= n {
                        break;
                    }
                    let depth = if k < edge {
                        (k + 1) as f64 / (edge + 1) as f64
                    } else if k >= edge + len {
                        (len + 2 * edge - k) as f64 / (edge + 1) as f64
                    } else {
                        1.0
                    };
                    fx.traffic[i] *= 1.0 - (1.0 - f) * depth;
                }
            }
            HealthyKind::Gaps => {
                for _ in 0..rng.int(1, 3) {
                    let i = rng.int(w0 as i64, (n - 6) as i64) as usize;
                    let len = rng.int(1, 5) as usize;
                    for g in fx.gap.iter_mut().skip(i).take(len) {
                        *g = true;
                    }
                }
                if rng.chance(0.5) {
                    let i = rng.int(0, (w0 - 5) as i64) as usize;
                    fx.gap[i] = true;
                }
            }
        },
        Kind::Regression(r) => {
            let late = r == RegressionKind::Late;
            let t0 = if late {
                (rng.uniform(120.0, 900.0) / dt).round() * dt
            } else {
                0.0
            };
            truth = Truth::Regression { t0 };
            let start = step_at(t0);
            let base = if late {
                Kind::REGRESSIONS[rng.int(0, 4) as usize]
            } else {
                r
            };
            let err_rise = |rng: &mut Rng, fx: &mut Effects, ramp: usize| {
                let mut ratio = rng.log_uniform(3.0, 20.0);
                let mut floor = rng.uniform(0.015, 0.04);
                if let Some(m) = magnitude {
                    (ratio, floor) = (m, 0.0);
                }
                for i in start..n {
                    let k = ((i - start + 1) as f64 / ramp as f64).min(1.0);
                    fx.err_mult[i] *= 1.0 + (ratio - 1.0) * k;
                    fx.err_floor[i] = floor * k;
                }
            };
            let lat_rise = |rng: &mut Rng, fx: &mut Effects, which: RegressionKind, ramp: usize| {
                let f = magnitude.unwrap_or_else(|| rng.log_uniform(1.4, 3.0));
                let target = match which {
                    RegressionKind::LatencyP50 => [f, f, f],
                    RegressionKind::LatencyP95 => [f.powf(0.1), f, f],
                    _ => [1.0, f.powf(0.3), f],
                };
                for i in start..n {
                    let k = ((i - start + 1) as f64 / ramp as f64).min(1.0);
                    for q in 0..3 {
                        fx.lat[i][q] *= 1.0 + (target[q] - 1.0) * k;
                    }
                }
            };
            match base {
                RegressionKind::ErrorRise => err_rise(rng, &mut fx, 1),
                RegressionKind::LatencyP50
                | RegressionKind::LatencyP95
                | RegressionKind::LatencyP99 => lat_rise(rng, &mut fx, base, 1),
                RegressionKind::ErrorAndLatency => {
                    // Milder on both axes at once.
                    let ratio = rng.log_uniform(2.0, 6.0);
                    let f = rng.log_uniform(1.25, 2.0);
                    for i in start..n {
                        fx.err_mult[i] *= ratio;
                        fx.err_floor[i] = 0.01;
                        fx.lat[i] = [f, f, f];
                    }
                }
                RegressionKind::Creep => {
                    let ramp = rng.int(30, 90) as usize;
                    if rng.chance(0.5) {
                        err_rise(rng, &mut fx, ramp)
                    } else {
                        let which = Kind::REGRESSIONS[rng.int(1, 3) as usize];
                        lat_rise(rng, &mut fx, which, ramp)
                    }
                }
                RegressionKind::Collapse => {
                    let f = if rng.chance(0.3) {
                        0.0
                    } else {
                        rng.uniform(0.0, 0.08)
                    };
                    for v in fx.traffic.iter_mut().skip(start) {
                        *v *= f;
                    }
                }
                RegressionKind::SlowCreep | RegressionKind::LowTrafficRise => {
                    let ramp = if r == RegressionKind::SlowCreep {
                        (rng.uniform(1500.0, 1800.0) / dt).round() as usize
                    } else {
                        1
                    };
                    for i in start..n {
                        let k = ((i - start + 1) as f64 / ramp as f64).min(1.0);
                        fx.err_mult[i] *= 1.0 + 2.0 * k;
                    }
                }
                RegressionKind::EarlyBump => {
                    let f = magnitude.unwrap_or_else(|| rng.uniform(1.5, 2.0));
                    let len = (rng.uniform(600.0, 900.0) / dt).round().max(1.0) as usize;
                    for l in fx.lat.iter_mut().skip(start).take(len) {
                        *l = [f, f, f];
                    }
                }
                RegressionKind::Late => {}
            }
        }
    }

    let samples = render(rng, &pf, &fx, &ts, dt);
    LabeledTrace {
        kind,
        truth,
        rps,
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_deterministic_and_labelled() {
        let a = corpus(3, 30);
        let b = corpus(3, 30);
        assert_eq!(a.len(), 30);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.kind, y.kind);
            assert_eq!(x.samples.len(), 360);
            assert_eq!(
                crate::monitor::trace::to_csv(&x.samples),
                crate::monitor::trace::to_csv(&y.samples)
            );
        }
        assert!(a.iter().any(|t| t.truth == Truth::Healthy));
        assert!(
            a.iter()
                .any(|t| matches!(t.truth, Truth::Regression { .. }))
        );
        let first = &a[0].samples;
        assert_eq!(first[0].t, -1790.0);
        assert_eq!(first[359].t, 1800.0);
    }

    #[test]
    fn resampling_sums_counts_takes_the_worst_quantile_and_keeps_gaps() {
        let mut rng = Rng::new(5);
        let mut tr = generate(
            &mut rng,
            Kind::Healthy(HealthyKind::Noise),
            Some(20.0),
            Shape::default(),
        );
        for s in tr
            .samples
            .iter_mut()
            .filter(|s| (610.0..=660.0).contains(&s.t))
        {
            s.requests = f64::NAN;
        }
        let coarse = resample(&tr.samples, 6);
        assert_eq!(coarse.len(), 60);
        assert_eq!(
            (coarse[0].t, coarse[29].t, coarse[30].t),
            (-1740.0, 0.0, 60.0)
        );
        let first = &tr.samples[..6];
        assert_eq!(
            coarse[0].requests,
            first.iter().map(|s| s.requests).sum::<f64>()
        );
        assert_eq!(
            coarse[0].errors,
            first.iter().map(|s| s.errors).sum::<f64>()
        );
        let worst = first.iter().filter_map(|s| s.p95_ms).fold(0.0, f64::max);
        assert_eq!(coarse[0].p95_ms, Some(worst));
        // 610..=660 covers the whole group (600, 660]: a gap.
        let g = coarse.iter().find(|s| s.t == 660.0).unwrap();
        assert!(g.requests.is_nan());
        assert_eq!(resample(&tr.samples, 30).len(), 12);
    }

    #[test]
    fn new_kinds_do_what_they_say() {
        let rate = |xs: &[Sample]| {
            xs.iter().map(|s| s.errors).sum::<f64>() / xs.iter().map(|s| s.requests).sum::<f64>()
        };
        let reqs = |xs: &[Sample]| xs.iter().map(|s| s.requests).sum::<f64>();
        let mut rng = Rng::new(9);
        let d = generate(
            &mut rng,
            Kind::Healthy(HealthyKind::TrafficDip),
            Some(100.0),
            Shape::default(),
        );
        let lowest = d.samples[180..]
            .windows(6)
            .map(reqs)
            .fold(f64::INFINITY, f64::min);
        assert!(lowest < 0.7 * reqs(&d.samples[..6]), "a dip: {lowest}");
        assert!(
            reqs(&d.samples[330..]) > 0.7 * reqs(&d.samples[150..180]),
            "and back"
        );
        let c = generate(
            &mut rng,
            Kind::Regression(RegressionKind::SlowCreep),
            Some(300.0),
            Shape::default(),
        );
        assert!(rate(&c.samples[190..220]) < 1.8 * rate(&c.samples[..180]));
        assert!(rate(&c.samples[330..]) > 2.0 * rate(&c.samples[..180]));
        let l = generate(
            &mut rng,
            Kind::Regression(RegressionKind::LowTrafficRise),
            None,
            Shape::default(),
        );
        assert!(l.rps <= 5.0);
        assert!(l.samples[..180].iter().map(|s| s.errors).sum::<f64>() >= 3.0);
        // A creep at a trickle of traffic still has errors to creep from:
        // at 0.5 req/s and the lowest base rate (0.1%) the baseline would
        // expect ~1 error; the floor makes it ~12.
        for seed in 0..5 {
            let c = generate(
                &mut Rng::new(seed),
                Kind::Regression(RegressionKind::SlowCreep),
                Some(0.5),
                Shape::default(),
            );
            let base: f64 = c.samples[..180].iter().map(|s| s.errors).sum();
            assert!(base >= 3.0, "seed {seed}: {base} baseline errors");
        }
    }

    #[test]
    fn collapse_really_collapses_and_error_rise_really_rises() {
        let mut rng = Rng::new(11);
        let c = generate(
            &mut rng,
            Kind::Regression(RegressionKind::Collapse),
            Some(50.0),
            Shape::default(),
        );
        let before: f64 = c.samples[..180].iter().map(|s| s.requests).sum();
        let after: f64 = c.samples[180..].iter().map(|s| s.requests).sum();
        assert!(after < 0.1 * before, "{after} vs {before}");
        let e = generate(
            &mut rng,
            Kind::Regression(RegressionKind::ErrorRise),
            Some(50.0),
            Shape::default(),
        );
        let rate = |xs: &[Sample]| {
            xs.iter().map(|s| s.errors).sum::<f64>() / xs.iter().map(|s| s.requests).sum::<f64>()
        };
        assert!(rate(&e.samples[180..]) > 2.5 * rate(&e.samples[..180]));
    }
}
