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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Healthy(HealthyKind),
    Regression(RegressionKind),
}

impl Kind {
    pub const HEALTHY: [HealthyKind; 7] = [
        HealthyKind::Noise,
        HealthyKind::Blip,
        HealthyKind::Drift,
        HealthyKind::Dip,
        HealthyKind::Warmup,
        HealthyKind::BenignShift,
        HealthyKind::Gaps,
    ];
    pub const REGRESSIONS: [RegressionKind; 8] = [
        RegressionKind::ErrorRise,
        RegressionKind::LatencyP50,
        RegressionKind::LatencyP95,
        RegressionKind::LatencyP99,
        RegressionKind::ErrorAndLatency,
        RegressionKind::Creep,
        RegressionKind::Late,
        RegressionKind::Collapse,
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

/// Per-step modifiers applied on top of the base noise processes.
struct Effects {
    traffic: Vec<f64>,
    err_mult: Vec<f64>,
    /// Minimum error rate while a regression is on (a bad deploy that fails
    /// 1.5% of requests does so even where the base rate was 0.1%).
    err_floor: Vec<f64>,
    lat: Vec<[f64; 3]>,
    gap: Vec<bool>,
}

/// Generate one trace of `kind`. `rps` fixes the mean traffic (else drawn
/// log-uniformly from 0.5 to 500 req/s).
#[allow(clippy::needless_range_loop)] // indexes several parallel per-step arrays
pub fn generate(rng: &mut Rng, kind: Kind, rps: Option<f64>, shape: Shape) -> LabeledTrace {
    let dt = shape.step_s;
    let nb = (shape.baseline_s / dt).round() as usize;
    let nw = (shape.window_s / dt).round() as usize;
    let n = nb + nw;
    let ts: Vec<f64> = (0..n).map(|i| (i as f64 - nb as f64 + 1.0) * dt).collect();
    // Index of the first window step (t = dt).
    let w0 = nb;

    // Service profile.
    let rps = rps.unwrap_or_else(|| rng.log_uniform(0.5, 500.0));
    let p_err = rng.log_uniform(0.001, 0.02);
    let p50 = rng.log_uniform(10.0, 300.0);
    let spread = rng.uniform(0.3, 0.8); // lognormal shape of request latency
    // Noise profile.
    let tr_cv = rng.uniform(0.05, 0.2); // per-step overdispersion of traffic
    let tr_wander = rng.uniform(0.02, 0.1);
    let err_cv = rng.uniform(0.15, 0.6); // per-step overdispersion of the error rate
    let err_wander = rng.uniform(0.05, 0.25);
    let lat_jitter = rng.uniform(0.02, 0.06);
    let lat_wander = rng.uniform(0.01, 0.06);
    let mut tr_drift = rng.uniform(-0.2, 0.2); // log change per hour
    let mut err_drift = rng.uniform(-0.1, 0.1);
    let mut lat_drift = rng.uniform(-0.04, 0.04);
    let blip_rate = rng.uniform(0.0, 0.01); // background blips per step

    let mut fx = Effects {
        traffic: vec![1.0; n],
        err_mult: vec![1.0; n],
        err_floor: vec![0.0; n],
        lat: vec![[1.0; 3]; n],
        gap: vec![false; n],
    };
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
                tr_drift = sign * rng.uniform(0.2, 0.5);
                err_drift = sign * rng.uniform(0.1, 0.25);
                lat_drift = sign * rng.uniform(0.04, 0.08);
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
                let ratio = rng.log_uniform(3.0, 20.0);
                let floor = rng.uniform(0.015, 0.04);
                for i in start..n {
                    let k = ((i - start + 1) as f64 / ramp as f64).min(1.0);
                    fx.err_mult[i] *= 1.0 + (ratio - 1.0) * k;
                    fx.err_floor[i] = floor * k;
                }
            };
            let lat_rise = |rng: &mut Rng, fx: &mut Effects, which: RegressionKind, ramp: usize| {
                let f = rng.log_uniform(1.4, 3.0);
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
                RegressionKind::Late => {}
            }
        }
    }

    // Base processes with the effects on top.
    let mut samples = Vec::with_capacity(n);
    // Slow wander: stationary AR(1) processes in log space.
    let mut w_tr = tr_wander * rng.normal();
    let mut w_err = err_wander * rng.normal();
    let mut w_lat = lat_wander * rng.normal();
    let ar = 0.95f64;
    let innov = (1.0 - ar * ar).sqrt();
    for i in 0..n {
        let t = ts[i];
        let hours = t / 3600.0;
        w_tr = w_tr * ar + innov * tr_wander * rng.normal();
        w_err = w_err * ar + innov * err_wander * rng.normal();
        w_lat = w_lat * ar + innov * lat_wander * rng.normal();
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
        if rng.chance(blip_rate) {
            if rng.chance(0.5) {
                blip_err = rng.uniform(3.0, 10.0);
            } else {
                blip_lat = rng.uniform(1.5, 3.0);
            }
        }
        let lam = rps * dt * (tr_drift * hours + w_tr).exp() * fx.traffic[i];
        let req = rng.neg_binomial(lam, tr_cv);
        let p = (p_err * (err_drift * hours + w_err).exp() * fx.err_mult[i] * blip_err)
            .max(fx.err_floor[i])
            .min(0.9);
        let g = rng.gamma_factor(err_cv);
        let errors = rng.poisson(req * p * g).min(req);
        let (p50_ms, p95_ms, p99_ms) = if req > 0.0 {
            let common = lat_drift * hours + w_lat + lat_jitter * rng.normal();
            let mu = p50.ln() + common;
            let z = [0.0, 1.645, 2.326];
            let se_k = [1.25, 2.11, 3.73];
            let mut q = [0.0; 3];
            for k in 0..3 {
                let se = (spread * se_k[k] / req.sqrt()).min(0.8 * spread);
                q[k] = (mu + spread * z[k] + se * rng.normal()).exp() * fx.lat[i][k] * blip_lat;
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
