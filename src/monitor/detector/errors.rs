//! Error evidence over time, beyond the step tests: the whole-window
//! test (slow creeps, small rises at low traffic) and whether an error
//! rise is sustained or one burst.

use super::*;

/// The window steps the whole-window error test keeps, indexed so that
/// every question asked of a suffix of them (sums, worst step) costs
/// O(1) or O(log n), not a scan: at every step the tests look at the whole
/// window and its later half, so a scan made a long window quadratic.
#[derive(Clone, Debug, Default)]
pub(super) struct CumSteps {
    steps: Vec<CumStep>,
    /// Prefix sums (index i: over the first i steps) of capped errors,
    /// expected errors and their squares.
    sx: Vec<f64>,
    smu: Vec<f64>,
    smu2: Vec<f64>,
    /// Indices of the steps that are each the worst (largest `x - mu`,
    /// the latest among equals) of the suffix they begin: increasing
    /// indices, strictly decreasing excess. The worst step of the suffix
    /// from `i` is the first of them at `i` or later.
    peaks: Vec<usize>,
}

impl CumSteps {
    pub(super) fn push(&mut self, s: CumStep) {
        let (x, mu, mu2) = (
            self.sx.last().copied().unwrap_or(0.0),
            self.smu.last().copied().unwrap_or(0.0),
            self.smu2.last().copied().unwrap_or(0.0),
        );
        if self.sx.is_empty() {
            self.sx.push(0.0);
            self.smu.push(0.0);
            self.smu2.push(0.0);
        }
        self.sx.push(x + s.x);
        self.smu.push(mu + s.mu);
        self.smu2.push(mu2 + s.mu * s.mu);
        let excess = s.x - s.mu;
        while let Some(&last) = self.peaks.last() {
            let p = &self.steps[last];
            if (p.x - p.mu).total_cmp(&excess) == std::cmp::Ordering::Greater {
                break;
            }
            self.peaks.pop();
        }
        self.peaks.push(self.steps.len());
        self.steps.push(s);
    }

    pub(super) fn steps(&self) -> &[CumStep] {
        &self.steps
    }

    pub(super) fn len(&self) -> usize {
        self.steps.len()
    }

    /// The first step at or after time `since`.
    fn start_at(&self, since: f64) -> usize {
        self.steps.partition_point(|s| s.t < since)
    }

    /// The worst step from index `from` on (the latest of equals, as
    /// `Iterator::max_by` picks); `None` past the end.
    fn worst_from(&self, from: usize) -> Option<&CumStep> {
        let k = self.peaks.partition_point(|&i| i < from);
        self.peaks.get(k).map(|&i| &self.steps[i])
    }

    /// Sums from index `from` on: capped errors, expected errors, their
    /// squares.
    fn sums_from(&self, from: usize) -> (f64, f64, f64) {
        let n = self.steps.len();
        if from >= n {
            return (0.0, 0.0, 0.0);
        }
        (
            self.sx[n] - self.sx[from],
            self.smu[n] - self.smu[from],
            self.smu2[n] - self.smu2[from],
        )
    }
}

impl FromIterator<CumStep> for CumSteps {
    fn from_iter<I: IntoIterator<Item = CumStep>>(iter: I) -> Self {
        let mut out = CumSteps::default();
        for s in iter {
            out.push(s);
        }
        out
    }
}

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
pub(super) fn rise_is_sustained(steps: &CumSteps, since: f64, ref_ratio: f64, c: f64) -> bool {
    // The steps are in time order: the stretch is a suffix.
    let from = steps.start_at(since);
    if steps.len().saturating_sub(from) < 2 {
        return true;
    }
    let worst = steps.worst_from(from).expect("two steps or more");
    // Σ m (1 + c m) with m = mu * r: r Σmu + c r² Σmu².
    let r = ref_ratio.max(1.0);
    let (x, mu, mu2) = steps.sums_from(from);
    let (x, mu, var) = (x, mu * r, mu * r + c * r * r * mu2);
    let m_worst = worst.mu * r;
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
    ///
    /// Measured and not taken (tuning seeds, 10 s steps, session 14): the
    /// exact conditional test of the two counts (a gamma-Poisson Bayes
    /// factor, no normal approximation of the baseline rate) caught 575
    /// of 600 instead of 580 (low traffic x3 46/54 instead of 49), no false
    /// alarm fewer; on pure Poisson counts (20,000 simulated windows per
    /// rate, no look penalty beyond this threshold) both tests stay under
    /// their nominal 0.5% per start (this one 0.2-0.4%, the exact one
    /// 0.04-0.27%), and at 0.07 errors a step this one catches x3 in 62%
    /// against 49%. Leaving out the worst minute instead of the worst step
    /// (against a one-minute burst at low traffic, which this test calls)
    /// caught 571 (low traffic x3 42/54), no false alarm fewer. The misses
    /// that remain are at the counts' limit: of the five low-traffic x3
    /// traces missed on the tuning seeds, the whole window at once against
    /// the baseline (exact binomial, no looks) shows two just under
    /// p = 0.01 and three at 0.01-0.09.
    ///
    /// Measured and not taken (tuning seeds, session 16): leaving the kept
    /// worst step out after all when it is a blip (3+ errors, 3 sd and one
    /// error above its expectation) that the baseline's own share of such
    /// steps explains. The low-traffic whole-window calls on healthy stress
    /// traces are not one step's: their worst step holds 14-34% of the
    /// stretch's excess (22 errors against 8.2 expected over 32 steps,
    /// worst 4), and the two gc_pauses baselines behind them show no such
    /// blip at all, so the rule never fired and changed no figure. Leaving
    /// the worst step out at every traffic (the most any such rule can
    /// gain) spares 2 of 5 gc_pauses calls at 10 s (1 of 14 stress calls at
    /// 60 s) and costs 5 catches at 10 s (low traffic x3 49 -> 46, slow
    /// creep 39 -> 37) and 5 at 60 s; a blip share shrunk towards half a
    /// blip per baseline, without the "most of the excess" condition,
    /// spared 1 and cost 2 at 10 s (low traffic x3 49 -> 47) and 1 at 60 s.
    pub(super) fn cum_verdict(&self, m: &Model, es: ErrStats, t: f64) -> Option<Verdict> {
        let starts = [0, self.cum.len() / 2];
        let a = (2.0 * starts.len() as f64 / self.cfg.false_alarm.clamp(1e-9, 0.5)).ln();
        for (k, &from) in starts.iter().enumerate() {
            if k > 0 && from == starts[k - 1] {
                continue;
            }
            let steps = &self.cum.steps()[from..];
            // A sustained rise spans minutes, never a burst of a few steps
            // (which the step tests judge): at least `CUM_MIN_S`.
            if steps.len() < 2 || t - steps[0].t + m.dt < self.cfg.min_evidence_s.max(CUM_MIN_S) {
                continue;
            }
            let worst = self.cum.worst_from(from).expect("two steps or more");
            let (x_all, mu_all, _) = self.cum.sums_from(from);
            // Where a step expects at most half an error, its worst step
            // holds an error or two: an event, not a burst, and leaving it
            // out would drop much of the little evidence there is (the
            // per-step cap still bounds it). Elsewhere it is left out.
            let per_step_mu = mu_all / steps.len() as f64;
            let keep_worst = per_step_mu <= DISCRETE_MU;
            let left_out = if keep_worst {
                (0.0, 0.0)
            } else {
                (worst.x, worst.mu)
            };
            let (x, mu) = (x_all - left_out.0, mu_all - left_out.1);
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
                    "error rate {} vs baseline {} ({:.1}x) since t={}, over {} ({} errors in {} requests, {:.1} expected), {}: a sustained rise",
                    fmt_pct(rate),
                    fmt_pct(es.p0),
                    rate / es.p0,
                    fmt_t(steps[0].t),
                    fmt_steps(steps.len()),
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
    fn the_index_answers_as_a_scan_of_each_suffix_does() {
        // Excesses with ties and falls, so that the latest of equal worst
        // steps must be the one picked (as `max_by` picks).
        let xs = [3.0, 1.0, 3.0, 0.0, 2.0, 2.0, 5.0, 1.0, 5.0, 0.5, 0.0, 2.0];
        let all: Vec<CumStep> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| CumStep {
                requests: i as f64,
                ..step(i as f64, x, 0.5)
            })
            .collect();
        let idx: CumSteps = all.iter().copied().collect();
        for from in 0..=all.len() {
            let tail = &all[from..];
            let scan = tail
                .iter()
                .max_by(|p, q| (p.x - p.mu).total_cmp(&(q.x - q.mu)));
            assert_eq!(
                idx.worst_from(from).map(|w| w.requests),
                scan.map(|w| w.requests),
                "from {from}"
            );
            let (x, mu, mu2) = idx.sums_from(from);
            let sx: f64 = tail.iter().map(|c| c.x).sum();
            let smu: f64 = tail.iter().map(|c| c.mu).sum();
            let smu2: f64 = tail.iter().map(|c| c.mu * c.mu).sum();
            assert!(
                (x - sx).abs() < 1e-9 && (mu - smu).abs() < 1e-9,
                "from {from}"
            );
            assert!((mu2 - smu2).abs() < 1e-9, "from {from}");
        }
    }

    #[test]
    fn one_burst_is_no_sustained_rise_and_a_lasting_one_is() {
        let burst: CumSteps = (1..=30)
            .map(|i| step(i as f64 * 10.0, if i == 13 { 10.0 } else { 1.0 }, 1.0))
            .collect();
        assert!(!rise_is_sustained(&burst, 0.0, 1.2, 0.1));
        let lasting: CumSteps = (1..=30).map(|i| step(i as f64 * 10.0, 2.0, 1.0)).collect();
        assert!(rise_is_sustained(&lasting, 0.0, 1.2, 0.1));
        // Within the noise of a few steps, or under the reference rate:
        // not sustained.
        let few: CumSteps = lasting.steps()[..3].iter().copied().collect();
        assert!(!rise_is_sustained(&few, 0.0, 1.2, 0.1));
        assert!(!rise_is_sustained(&lasting, 0.0, 2.5, 0.1));
        // Only the steps since the fall began count; too few to judge
        // leave the call to the CUSUM.
        assert!(!rise_is_sustained(&burst, 100.0, 1.2, 0.1));
        assert!(rise_is_sustained(&burst, 300.0, 1.2, 0.1));
        assert!(rise_is_sustained(&CumSteps::default(), 0.0, 1.2, 0.1));
    }
}
