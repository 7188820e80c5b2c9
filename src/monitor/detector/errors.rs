//! Error evidence over time, beyond the step tests: whether an error
//! rise is sustained or one burst.

use super::CumStep;

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
