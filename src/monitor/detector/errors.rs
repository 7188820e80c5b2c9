//! Error evidence over time, beyond the step tests: the whole-window
//! test (slow creeps, small rises at low traffic) and whether an error
//! rise is sustained or one burst.

use super::*;

/// Whether the window steps since `since` (when traffic began to fall)
/// show more errors than the conservative baseline rate predicts
/// (`ref_ratio` = that rate over the pooled baseline rate), by two
/// standard deviations of their quasi-Poisson noise (overdispersion `c`:
/// Var = mu (1 + c mu) per step), once their worst step is left out: a
/// rise that goes with the fall, not one burst of errors. A burst inside a
/// healthy dip (a client retrying a bad batch) otherwise drives the error
/// CUSUMs half way to the threshold, and a CUSUM excursion begins on a
/// high step by construction, so its own steps cannot say whether the rise
/// lasts. Fewer than two steps to judge (the fall began inside the
/// warm-up, which these steps do not hold) counts as sustained: the CUSUM
/// alone decides then.
pub(super) fn rise_is_sustained(steps: &[CumStep], since: f64, ref_ratio: f64, c: f64) -> bool {
    // The steps are in time order: the stretch is a suffix.
    let stretch = &steps[steps.partition_point(|s| s.t < since)..];
    if stretch.len() < 2 {
        return true;
    }
    let worst = stretch
        .iter()
        .max_by(|p, q| (p.x - p.mu).total_cmp(&(q.x - q.mu)))
        .expect("two steps or more");
    let (x, mu, var) = stretch.iter().fold((0.0, 0.0, 0.0), |(x, mu, var), s| {
        let m = s.mu * ref_ratio.max(1.0);
        (x + s.x, mu + m, var + m * (1.0 + c * m))
    });
    let m_worst = worst.mu * ref_ratio.max(1.0);
    let (x, mu, var) = (
        x - worst.x,
        mu - m_worst,
        var - m_worst * (1.0 + c * m_worst),
    );
    x > mu + 2.0 * var.max(0.0).sqrt()
}

impl Detector {
    /// The whole-window error test: quasi-likelihood ratios of the error
    /// count since the warm-up (and, for a creep, over the later half of
    /// that) for rates ×1.5/×2/×3, their mixture against a threshold set by
    /// the false-alarm goal. The variance counts the per-step
    /// overdispersion, the uncertainty of the baseline rate and its slow
    /// wander, so that high traffic needs a clear shift and low traffic
    /// enough errors. The single worst step is left out, unless the steps
    /// expect so few errors that it is one event among others.
    pub(super) fn cum_verdict(&self, m: &Model, es: ErrStats, t: f64) -> Option<Verdict> {
        let starts = [0, self.cum.len() / 2];
        let a = (2.0 * starts.len() as f64 / self.cfg.false_alarm.clamp(1e-9, 0.5)).ln();
        for (k, &from) in starts.iter().enumerate() {
            if k > 0 && from == starts[k - 1] {
                continue;
            }
            let steps = &self.cum[from..];
            // A sustained rise spans minutes, never a burst of a few steps
            // (which the step tests judge): at least `CUM_MIN_S`.
            if steps.len() < 2 || t - steps[0].t + m.dt < self.cfg.min_evidence_s.max(CUM_MIN_S) {
                continue;
            }
            let worst = steps
                .iter()
                .max_by(|p, q| (p.x - p.mu).total_cmp(&(q.x - q.mu)))
                .expect("two steps or more");
            // Where a step expects at most half an error, its worst step
            // holds an error or two: an event, not a burst, and leaving it
            // out would drop much of the little evidence there is (the
            // per-step cap still bounds it). Elsewhere it is left out.
            let per_step_mu = steps.iter().map(|c| c.mu).sum::<f64>() / steps.len() as f64;
            let keep_worst = per_step_mu <= DISCRETE_MU;
            let left_out = if keep_worst {
                (0.0, 0.0)
            } else {
                (worst.x, worst.mu)
            };
            let (x, mu) = steps.iter().fold((-left_out.0, -left_out.1), |(x, mu), c| {
                (x + c.x, mu + c.mu)
            });
            if mu <= 0.0 {
                continue;
            }
            let per_step = mu / (steps.len() - usize::from(!keep_worst)) as f64;
            // Dispersion no smaller than a modest prior: over a whole
            // window, an underestimate would add up.
            let phi =
                1.0 + es.c.max(0.1) * per_step + mu / (es.e_base + 1.0) + es.tau * es.tau * mu;
            let mix = CUM_RATIOS
                .iter()
                .map(|r| ((x * r.ln() - (r - 1.0) * mu) / phi).min(700.0).exp())
                .sum::<f64>()
                / CUM_RATIOS.len() as f64;
            if mix.ln() < a {
                continue;
            }
            let (errs, reqs) = steps
                .iter()
                .fold((0.0, 0.0), |(e, n), c| (e + c.errors, n + c.requests));
            let rate = errs / reqs;
            let z = (x - mu) / (phi * mu).sqrt();
            return Some(regression(
                Metric::ErrorRate,
                t,
                format!(
                    "error rate {} vs baseline {} ({:.1}x) since t={}, over {} steps ({} errors in {} requests, {:.1} expected), {}: a sustained rise",
                    fmt_pct(rate),
                    fmt_pct(es.p0),
                    rate / es.p0,
                    fmt_t(steps[0].t),
                    steps.len(),
                    errs,
                    reqs,
                    mu + left_out.1,
                    fmt_p(norm_sf(z))
                ),
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(t: f64, x: f64, mu: f64) -> CumStep {
        CumStep {
            t,
            x,
            mu,
            errors: x,
            requests: 100.0,
        }
    }

    #[test]
    fn one_burst_is_no_sustained_rise_and_a_lasting_one_is() {
        let mut burst: Vec<CumStep> = (1..=30).map(|i| step(i as f64 * 10.0, 1.0, 1.0)).collect();
        burst[12].x = 10.0;
        assert!(!rise_is_sustained(&burst, 0.0, 1.2, 0.1));
        let lasting: Vec<CumStep> = (1..=30).map(|i| step(i as f64 * 10.0, 2.0, 1.0)).collect();
        assert!(rise_is_sustained(&lasting, 0.0, 1.2, 0.1));
        // Within the noise of a few steps, or under the reference rate:
        // not sustained.
        assert!(!rise_is_sustained(&lasting[..3], 0.0, 1.2, 0.1));
        assert!(!rise_is_sustained(&lasting, 0.0, 2.5, 0.1));
        // Only the steps since the fall began count; too few to judge
        // leave the call to the CUSUM.
        assert!(!rise_is_sustained(&burst, 100.0, 1.2, 0.1));
        assert!(rise_is_sustained(&burst, 300.0, 1.2, 0.1));
        assert!(rise_is_sustained(&[], 0.0, 1.2, 0.1));
    }
}
