//! Latency at coarse steps with a short baseline: whether a shift began
//! with the deploy and held steadily in every quantile.

use super::*;

/// A latency quantile's shift since the deploy (see
/// [`Detector::since_deploy`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DeployShift {
    /// Its shift in the window's first step.
    dev: f64,
    /// Every step so far clearly off by about as much.
    pub(super) off: bool,
    /// Every step so far about as far off as the first.
    steady: bool,
    /// Every step so far past the whole threshold alone.
    alone: bool,
}

impl Detector {
    /// Coarse steps with a short baseline: whether the latency has shifted
    /// broadly and steadily since the deploy — in every window step so
    /// far, at least two quantiles clearly off, or one quantile past the
    /// whole threshold alone, and every quantile about as far off as in
    /// the first step (within [`STEADY_Z`] of its noise).
    /// Such a shift began with the deploy, as a release's does, and is
    /// called at the second step. Anything else needs the extra step: a
    /// worst-of-merged quantile carries any 10-second blip (or the warm-up)
    /// inside a step, and two of them would have to land on exactly the
    /// deploy's first two steps and match in size (a warm-up fades, two
    /// blips differ). "Clearly off": the step alone brings its full share
    /// of the threshold for the shift that fits it best (x1.3, x1.7 or
    /// x2.9: a noisy 5-minute p99 can fall short for x1.3 yet be far past
    /// it for x1.7 when the latency doubled). "Alone": the step brings the
    /// whole threshold (two shares) by the ordinary noise, the baseline's
    /// highest step counted — a quantile that clear says as much as two
    /// quantiles each past their share (a p50 at x2 whose p95 and p99 are
    /// too noisy at low traffic to show it), and one quantile's spread
    /// over six steps can be small by chance, which the ordinary noise
    /// allows for.
    #[allow(clippy::needless_range_loop)] // i indexes several parallel arrays
    pub(super) fn since_deploy(
        &mut self,
        m: &Model,
        q: [Option<f64>; 3],
        thin: f64,
        step: f64,
        first: bool,
    ) -> bool {
        let (mut shares, mut steady_all) = (0, true);
        for i in 0..3 {
            let (Some(ls), Some(v)) = (m.lat[i], q[i]) else {
                continue;
            };
            if !(v.is_finite() && v > 0.0) || ls.deploy_rate <= ls.cap_rate {
                continue;
            }
            let best = |dev: f64, var: f64, m_ref: f64| {
                LAT_MULTS
                    .iter()
                    .map(|k| lat_llr(ls.blips, m_ref - ls.m, dev, var, LAT_DELTA * k))
                    .fold(f64::MIN, f64::max)
            };
            let dev = v.ln() - ls.m_ref_core;
            let var = ls.sigma_core * ls.sigma_core * thin;
            let off = best(dev, var, ls.m_ref_core) >= ls.deploy_rate * step;
            let alone = best(v.ln() - ls.m_ref, ls.sigma * ls.sigma * thin, ls.m_ref)
                >= 2.0 * ls.deploy_rate * step;
            let d = &mut self.lat_deploy[i];
            if first {
                *d = DeployShift {
                    dev,
                    off,
                    steady: true,
                    alone,
                };
            } else {
                let steady = (dev - d.dev).abs() <= STEADY_Z * (2.0 * var).sqrt();
                d.off &= off && steady;
                d.steady &= steady;
                d.alone &= alone;
            }
            if d.off {
                shares += if d.alone { 2 } else { 1 };
            }
            steady_all &= d.steady;
        }
        shares >= 2 && steady_all
    }

    /// The three quantiles' evidence of a common shift, pooled: each step's
    /// log-quantile deviations averaged with inverse-variance weights, the
    /// average's variance counting how much the quantiles move together
    /// in the baseline (`lat_rho`). At low traffic a quantile's noise is
    /// mostly its own sampling error, so three quantiles each half-way to
    /// the threshold are together far past it; at high traffic they move
    /// together and the pool says no more than one of them. Judged like a
    /// single quantile (same references, noise, caps and warm-up); `Some`
    /// on a regression.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    pub(super) fn pooled(
        &mut self,
        m: &Model,
        q: [Option<f64>; 3],
        thin: f64,
        step: f64,
        (cap, full): (f64, f64),
        first: bool,
        t: f64,
    ) -> Option<Verdict> {
        let mut parts = Vec::with_capacity(3);
        for i in 0..3 {
            let (Some(ls), Some(v)) = (m.lat[i], q[i]) else {
                continue;
            };
            if v.is_finite() && v > 0.0 {
                parts.push((i, ls, v.ln(), ls.sigma * ls.sigma * thin));
            }
        }
        if parts.len() < 2 || m.lat_rho >= 1.0 {
            return None;
        }
        let wsum: f64 = parts.iter().map(|p| 1.0 / p.3).sum();
        let (mut dev, mut shift, mut base, mut var) = (0.0, 0.0, 0.0, 0.0);
        let mut rate = f64::MAX;
        for (a, pa) in parts.iter().enumerate() {
            let w = 1.0 / pa.3 / wsum;
            dev += w * (pa.2 - pa.1.m_ref);
            shift += w * (pa.2 - pa.1.m);
            base += w * (pa.1.m - pa.1.m_ref);
            rate = rate.min(pa.1.cap_rate);
            for (b, pb) in parts.iter().enumerate() {
                let r = if a == b { 1.0 } else { m.lat_rho };
                var += w * (1.0 / pb.3 / wsum) * r * (pa.3 * pb.3).sqrt();
            }
        }
        let lat_full = full.min(rate * step);
        let lat_cap = cap.min(lat_full);
        let mut found = None;
        for (k, &mult) in LAT_MULTS.iter().enumerate() {
            let delta = LAT_DELTA * mult;
            let raw = lat_llr(m.pool_blips, -base, dev, var, delta);
            let id = POOL_ID + k;
            let (lat_cap, bonus) =
                self.warm_cap(id, raw, Some((dev, var, base)), (lat_cap, lat_full), first);
            let llr = raw.clamp(-cap, lat_cap) + bonus;
            self.lat_pool[k].update(t, llr, shift, var, 0.0);
            self.drop_held_on_reset(id, self.lat_pool[k].s);
            let d = deploy_llr(m, raw, (cap, lat_cap, lat_full), bonus);
            self.dep_pool[k].add(t, d.0, shift, var, 0.0);
            let dep = self.dep_pool[k].s >= m.h_dep;
            if (self.lat_pool[k].s >= m.h || dep) && found.is_none() {
                let c = if dep {
                    self.warm_confirmed = self.dep_pool[k].s - d.1 < m.h_dep;
                    &self.dep_pool[k]
                } else {
                    self.warm_confirmed = self.lat_pool[k].s - bonus < m.h;
                    &self.lat_pool[k]
                };
                let worst = parts
                    .iter()
                    .max_by(|a, b| (a.2 - a.1.m).total_cmp(&(b.2 - b.1.m)))
                    .map_or((0, 0.0), |p| (p.0, p.2));
                let mut v = pooled_reason(
                    &parts.iter().map(|p| p.0).collect::<Vec<_>>(),
                    worst,
                    m,
                    c,
                    t,
                );
                if dep {
                    v.reason.push_str(DEPLOY_NOTE);
                }
                found = Some(v);
            }
        }
        found
    }
}

/// Log-likelihood ratio of a step's log-quantile deviation `dev` (from
/// the reference level `m_ref`, noise variance `var`) for a shift of
/// `delta`, against a null that holds the baseline's blip process
/// ([`Blips`]): an ordinary step, or with the baseline's blip share a
/// blip of its size, the blips riding on the level either way. Without
/// blips it is the Gaussian ratio `delta / var * (dev - delta / 2)`.
/// With them a step at blip height brings next to nothing (the null
/// explains it as well as a shift does), while a step at the shifted
/// level still brings evidence in proportion to how rarely the blip
/// process puts a step there: a run of slow steps is judged against the
/// blip rate, not against the ordinary noise alone.
/// `above` is how far the reference level lies above the baseline's
/// median, from which the blips' sizes are measured.
pub(super) fn lat_llr(b: Blips, above: f64, dev: f64, var: f64, delta: f64) -> f64 {
    if b.share <= 0.0 {
        return delta / var * (dev - delta / 2.0);
    }
    let p = b.share.min(0.9);
    // The blip's mean excess over the reference level, and its spread
    // together with the step's own noise.
    let mu = b.mean - above;
    let s2 = b.sd * b.sd + var;
    let w = p.ln() + 0.5 * (var / s2).ln();
    let density = |d: f64| {
        let a = (1.0 - p).ln() - d * d / (2.0 * var);
        let c = w - (d - mu) * (d - mu) / (2.0 * s2);
        let hi = a.max(c);
        hi + ((a - hi).exp() + (c - hi).exp()).ln()
    };
    density(dev - delta) - density(dev)
}
