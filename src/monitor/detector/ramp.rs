//! The ramp test: is the error rate rising steadily since the deploy?
//!
//! A slow creep (errors x3 over 30 minutes) holds its evidence in its
//! later steps; the level tests average those with the early ones. This
//! test weighs each step by its time since the deploy (`u = t / window`)
//! and asks whether the errors grow with `u` beyond what the null allows:
//!
//! * **The level is a nuisance**: the score `S = Σ (u_i - ū) x_i` runs
//!   over the baseline (`u = 0`) and the window together, `ū` the
//!   traffic-weighted mean of `u`, so a constant rate (whatever it is)
//!   scores zero on average. A small level shift is mostly absorbed; a
//!   benign shift is no ramp.
//! * **Overdispersion**: every step's variance is `m (1 + c m)`, `c` the
//!   baseline's per-step overdispersion.
//! * **Slow wander**: the rate wanders (autocorrelated over minutes) and a
//!   wander looks like a trend; its variance `tau²` (from the baseline's
//!   blocks, widened for its uncertainty) enters through the kernel
//!   `exp(-|t_i - t_j| / WANDER_S)` between steps, kept as running sums.
//! * **Drift**: a healthy rate may keep drifting; the null allows a rise of
//!   `DRIFT` over the window (the score minus what that rise would give).
//! * **Blips**: counts are capped per step at a fourfold rate (as for the
//!   level tests), and the worst step is left out unless the steps expect
//!   at most half an error each. Keeping it caught 13 more at 5-minute
//!   steps (tuning seeds) but took a wandering healthy window (unit test)
//!   to 0.12 of the boundary.
//! * **Few errors**: a weighted count of a handful of errors is
//!   heavier-tailed than a normal score; Bernstein's bound widens the
//!   variance by `b s / 3` (`b` the largest weight).
//!
//! The boundary is in evidence, not steps: the standardised score against
//! the information projected to the window's end (an O'Brien-Fleming
//! boundary on the score process: `S >= z sqrt(V_end)`), so a one-sided
//! Brownian score crosses it anywhere in the window with probability
//! `2 (1 - Φ(z))`. `z` is set for `RAMP_SHARE` of the false-alarm goal.
//! Such a boundary spends almost nothing early (the level and step tests
//! decide there) and most near the window's end, where a slow creep's
//! evidence is. Every update is O(1).

use super::*;

/// Share of the false-alarm goal the ramp test may spend.
pub(super) const RAMP_SHARE: f64 = 0.15;
/// A healthy error rate may rise by this much over the window (a drift).
const DRIFT: f64 = 0.15;
/// Correlation time of the error rate's slow wander, in seconds.
const WANDER_S: f64 = 300.0;
/// The wander's sd is taken this much above the baseline's estimate: a
/// 30-minute baseline holds only a few independent stretches of a wander
/// correlated over minutes, so its variance estimate is uncertain by half
/// or more, and at high traffic that variance is all the ramp test's
/// noise (a wandering, drifting rate at 300 req/s reached the boundary
/// with the estimate as it is).
const WANDER_WIDEN: f64 = 1.5;

/// Running sums of the window steps the ramp test keeps (the same steps
/// as the whole-window level test: past the warm-up, with traffic).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Ramp {
    /// Σx, Σn, Σun, Σux, Σu²n, Σn², Σun², Σu²n².
    sx: f64,
    sn: f64,
    sun: f64,
    sux: f64,
    su2n: f64,
    sn2: f64,
    sun2: f64,
    su2n2: f64,
    /// Kernel forms Σ_ij a_i b_j K_ij for a = u n, b = n, and the decayed
    /// accumulators of a and b (see `push`).
    q_aa: f64,
    q_ab: f64,
    q_bb: f64,
    ra: f64,
    rb: f64,
    last_t: Option<f64>,
    first_t: Option<f64>,
}

/// Kernel form Σ_ij n_i n_j exp(-|t_i - t_j| / WANDER_S) over steps
/// `(t, n)`: what the baseline's wander adds to the variance (see
/// `ErrStats::q_base`).
pub(super) fn kernel_form(steps: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut r, mut q, mut last) = (0.0, 0.0, None::<f64>);
    for (t, n) in steps {
        r *= last.map_or(0.0, |l| (-(t - l).abs() / WANDER_S).exp());
        q += n * n + 2.0 * n * r;
        r += n;
        last = Some(t);
    }
    q
}

impl Ramp {
    /// Add a window step: time `t`, requests `n`, capped errors `x`,
    /// `u = t / window`.
    pub(super) fn push(&mut self, t: f64, u: f64, n: f64, x: f64) {
        self.sx += x;
        self.sn += n;
        self.sun += u * n;
        self.sux += u * x;
        self.su2n += u * u * n;
        self.sn2 += n * n;
        self.sun2 += u * n * n;
        self.su2n2 += u * u * n * n;
        let decay = self
            .last_t
            .map_or(0.0, |l| (-(t - l).abs() / WANDER_S).exp());
        self.ra *= decay;
        self.rb *= decay;
        let a = u * n;
        self.q_aa += a * a + 2.0 * a * self.ra;
        self.q_ab += a * n + a * self.rb + n * self.ra;
        self.q_bb += n * n + 2.0 * n * self.rb;
        self.ra += a;
        self.rb += n;
        self.last_t = Some(t);
        self.first_t.get_or_insert(t);
    }
}

/// The ramp test's standing at one step.
#[derive(Clone, Copy, Debug)]
pub(super) struct RampScore {
    /// Score against the drift allowance over the square root of the
    /// information projected to the window's end: what the boundary is on.
    pub z_end: f64,
    /// The same against the information so far (what the reason shows).
    pub z_now: f64,
}

impl Detector {
    /// The ramp test's score now; `None` before its steps span `CUM_MIN_S`.
    pub(super) fn ramp_score(&self, m: &Model, es: ErrStats, t: f64) -> Option<RampScore> {
        let r = &self.ramp;
        let first = r.first_t?;
        if self.cum.len() < 2 || t - first + m.dt < self.cfg.min_evidence_s.max(CUM_MIN_S) {
            return None;
        }
        let window = self.cfg.window_s.max(1.0);
        // The worst step left out (its kernel terms stay: a little more
        // variance, never less).
        let (mut sx, mut sn, mut sun, mut sux, mut su2n) = (r.sx, r.sn, r.sun, r.sux, r.su2n);
        let (mut sn2, mut sun2, mut su2n2) = (r.sn2, r.sun2, r.su2n2);
        if self.cum.sums_from(0).1 / self.cum.len() as f64 > DISCRETE_MU
            && let Some(w) = self.cum.worst_from(0)
        {
            let (u, n, x) = (w.t / window, w.requests, w.x);
            sx -= x;
            sn -= n;
            sun -= u * n;
            sux -= u * x;
            su2n -= u * u * n;
            sn2 -= n * n;
            sun2 -= u * n * n;
            su2n2 -= u * u * n * n;
        }
        let (xb, nb) = (es.e_base, es.n_base);
        let tot = nb + sn;
        if tot <= 0.0 || sn <= 0.0 {
            return None;
        }
        let p = (xb + sx + 0.5) / (tot + 1.0);
        let ub = sun / tot;
        let score = sux - ub * (xb + sx);
        // What a slope of 1 (x2 at the window's end) adds to the score.
        let j = p * (su2n - ub * sun);
        let var = p * (su2n - 2.0 * ub * sun + ub * ub * tot)
            + es.c * p * p * (su2n2 - 2.0 * ub * sun2 + ub * ub * (es.n2_base + sn2))
            + (WANDER_WIDEN * es.tau).powi(2)
                * p
                * p
                * (r.q_aa - 2.0 * ub * r.q_ab + ub * ub * (r.q_bb + es.q_base));
        if var <= 0.0 {
            return None;
        }
        let s = score - DRIFT * j;
        // Information grows as Σ u² n: with steady traffic, as the cube
        // of the time since the test's first step.
        let t0 = first - m.dt;
        let grow = (window.powi(3) - t0.powi(3)) / (t.powi(3) - t0.powi(3)).max(1e-9);
        // A weighted count of a few errors is heavier-tailed than a normal
        // score: Bernstein's bound adds `b s / 3` to the variance, `b` the
        // largest weight (1 - ū). Without it, seven errors late in a
        // healthy window at 0.5 req/s passed for a ramp (two of the
        // detector's healthy unit tests); a creep with dozens of errors
        // keeps most of its z.
        let tail = (1.0 - ub) * s.max(0.0) / 3.0;
        Some(RampScore {
            z_end: s / (var * grow.max(1.0) + tail).sqrt(),
            z_now: s / (var + tail).sqrt(),
        })
    }

    /// The ramp test's verdict (see the module documentation).
    pub(super) fn ramp_verdict(&self, m: &Model, es: ErrStats, t: f64) -> Option<Verdict> {
        let sc = self.ramp_score(m, es, t)?;
        if sc.z_end < m.ramp_z {
            return None;
        }
        let steps = self.cum.steps();
        let (t0, span) = (steps[0].t - m.dt, t - steps[0].t + m.dt);
        // The rate over the first and the last third (one scan, at the call).
        let third = |lo: f64, hi: f64| {
            let (e, n) = steps
                .iter()
                .filter(|s| s.t > t0 + lo * span && s.t <= t0 + hi * span + 1e-9)
                .fold((0.0, 0.0), |(e, n), s| (e + s.errors, n + s.requests));
            if n > 0.0 { e / n } else { 0.0 }
        };
        let (errs, reqs) = steps
            .iter()
            .fold((0.0, 0.0), |(e, n), s| (e + s.errors, n + s.requests));
        Some(regression(
            Metric::ErrorRate,
            t,
            format!(
                "error rate rising steadily: {} -> {} over {} since t={}, baseline {} ({} errors in {} requests): a ramp beyond overdispersion, wander and a {:.0}% drift, {}",
                fmt_pct(third(0.0, 1.0 / 3.0)),
                fmt_pct(third(2.0 / 3.0, 1.0)),
                fmt_duration(span),
                fmt_t(steps[0].t),
                fmt_pct(es.p0),
                errs,
                reqs,
                DRIFT * 100.0,
                fmt_p(norm_sf(sc.z_now))
            ),
        ))
    }
}

/// The ramp test's boundary on its end-projected score: a one-sided
/// Brownian score crosses `z` within the window with probability
/// `2 (1 - Φ(z))`, set to `RAMP_SHARE` of the false-alarm goal.
pub(super) fn boundary(false_alarm: f64) -> f64 {
    norm_isf(RAMP_SHARE * false_alarm.clamp(1e-9, 0.5) / 2.0)
}

/// z with P(Z > z) = p for a standard normal (bisection on `norm_sf`).
fn norm_isf(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if norm_sf(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
