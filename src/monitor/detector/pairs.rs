//! Errors at coarse steps (1- and 5-minute metrics): two steps in a row
//! that agree on a rise are judged together, in full.

use super::*;

/// Two steps agree on a rise unless the one with the smaller excess has
/// significantly fewer errors than [`CONFIRM_SHARE`] of the other's excess
/// predicts: its Poisson lower tail below this. A rate is a point estimate
/// of a few errors at low traffic (4 errors then 15 at a request a second
/// is 1.5% then 4.9%: the same rise, drawn), so agreement is judged in
/// errors, not in rates; at high traffic the counts are large and this is
/// the share of the rates itself.
const AGREE_P: f64 = 0.05;

/// One coarse step of an error test, as the next step judges it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PairStep {
    t: f64,
    /// The step's raw evidence, and how much of it the CUSUM counted.
    raw: f64,
    counted: f64,
    /// Its errors and requests.
    e: f64,
    n: f64,
    /// The most any step of its length may bring outside the warm-up:
    /// what lies between its own (warm-up) cap and this stays the
    /// warm-up's to give back or keep (see [`Detector::warm_cap`]).
    full: f64,
}

impl Detector {
    /// At steps where two steps are the minimum a call needs (1- and
    /// 5-minute metrics), a step's error evidence is capped so that no
    /// single step decides — yet a 5-minute step holds 30 times the
    /// requests of a 10-second one, and a capped step's evidence beyond
    /// the cap is evidence all the same. Two consecutive steps of one
    /// excursion that agree on the rise — each one's excess rate over the
    /// baseline at least [`CONFIRM_SHARE`] of the other's, as a release's
    /// steady rise does and a burst inside one step does not, within the
    /// Poisson error of the weaker step's count ([`AGREE_P`]) — count in
    /// full (each up to the whole threshold): the call still needs both
    /// steps, never one alone. Returns the evidence to add to this step's.
    /// Steps shorter than that (10 s: three steps needed) are untouched.
    ///
    /// The warm-up keeps its say: what it held back of the first step (its
    /// cap below `full`) is given back by [`Detector::warm_cap`] only when
    /// the test stayed steady (then as `bonus`, already in `counted`), so
    /// a pair adds only what lies beyond `full` — nothing twice, and a
    /// fading warm-up keeps its allowance.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn err_pair(
        &mut self,
        m: &Model,
        k: usize,
        t: f64,
        raw: f64,
        (counted, bonus, full): (f64, f64, f64),
        (e, n): (f64, f64),
        p0: f64,
    ) -> f64 {
        if !m.pairs {
            return 0.0;
        }
        let prev = self.err_pair[k].replace(PairStep {
            t,
            raw,
            counted,
            e,
            n,
            full,
        });
        let Some(p) = prev else {
            return 0.0;
        };
        // The previous step is part of this excursion, and just before.
        if self.err[k].s <= 0.0 || t - p.t > 1.5 * m.dt || raw <= 0.0 || p.raw <= 0.0 {
            return 0.0;
        }
        let (a, b) = (p.e / p.n - p0, e / n - p0);
        if a <= 0.0 || b <= 0.0 {
            return 0.0;
        }
        // The step with the smaller excess, against the share of the other's.
        let ((e_s, n_s), x_l) = if a <= b {
            ((p.e, p.n), e / n)
        } else {
            ((e, n), p.e / p.n)
        };
        let mu = n_s * (p0 + CONFIRM_SHARE * (x_l - p0));
        if e_s < mu && poisson_cdf(e_s.floor(), mu) < AGREE_P {
            return 0.0;
        }
        let extra = (p.raw.min(m.h) - p.counted.max(p.full)).max(0.0)
            + (raw.min(m.h) - (counted - bonus).max(full)).max(0.0);
        if let Some(cur) = &mut self.err_pair[k] {
            // Both steps now count in full: the next pair adds nothing twice.
            cur.counted = raw.min(m.h).max(counted);
        }
        extra
    }
}
