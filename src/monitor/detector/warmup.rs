//! The warm-up in evidence and time: the allowance a step inside the
//! warm-up brings, relief for a signal that does not fade, and the
//! evidence held back until a step shows whether the shift outlasted it.

use super::*;

impl Detector {
    /// Warm-up in evidence and time: inside the warm-up a step brings at
    /// most `cap` (the warm-up allowance) — unless the test's evidence has
    /// not faded since the window's first step. A warm-up fades within
    /// seconds (its first steps are the worst, and falling); a bad release
    /// is steady or rising. So a step that holds at least [`STEADY_WARM`]
    /// of the first step's evidence, after no step that fell below it,
    /// brings what any later step could (`full`), and the second such step
    /// also returns what the first step brought above the allowance (the
    /// returned bonus): only the second step can show the first did not
    /// fade. A fading test keeps the allowance for the whole warm-up. The
    /// call still needs evidence spanning `min_evidence_s`.
    ///
    /// Steady is judged on the signal itself when the caller gives it
    /// (`sig`: the error rate or the log-quantile shift, its variance, and
    /// the baseline's level of it, which the first step past an uneven
    /// warm-up is measured from, see [`CONFIRM_SHARE`]):
    /// each step must stay above [`STEADY_WARM`] of the first step's
    /// signal by [`WARM_Z`] standard deviations of the difference, so
    /// noise at low traffic (a p95 of 30 requests) cannot make a fading
    /// warm-up look steady, and overdispersed error counts at high traffic
    /// are judged by their rate, not by their evidence, which swings more.
    /// Without `sig` (traffic falls), the evidence itself is compared.
    pub(super) fn warm_cap(
        &mut self,
        test: usize,
        raw: f64,
        sig: Option<(f64, f64, f64)>,
        (cap, full): (f64, f64),
        first: bool,
    ) -> (f64, f64) {
        let (x, v, base) = sig.unwrap_or_default();
        if first {
            self.warm_first[test] = raw;
            self.warm_sig[test] = (x, v);
            self.warm_steady[test] = raw > 0.0;
            self.warm_held[test] = (raw.min(full) - cap).max(0.0);
            self.warm_late[test] = WarmLate {
                held: 0.0,
                sig: x,
                raw,
                n: 1,
            };
            return (cap, 0.0);
        }
        if self.warm_first_after && !self.warm_steady[test] {
            // A warm-up that did not stay steady kept its allowance; the
            // first step past it shows whether the shift outlasted it.
            let late = std::mem::take(&mut self.warm_late[test]);
            if late.n >= 2 && late.held > 0.0 && raw > 0.0 {
                let n = f64::from(late.n);
                let confirmed = match sig {
                    Some(_) if test < ERR_RATIOS.len() => {
                        x - base >= CONFIRM_SHARE * (late.sig / n - base)
                    }
                    // A cold start's quantiles settle through a step at
                    // about half their shift before they are back (x1.4
                    // for three steps, then x1.15): latency keeps 4/5 of
                    // the warm-up's mean shift.
                    Some(_) => x >= STEADY_WARM * late.sig / n,
                    None => raw >= STEADY_WARM * late.raw / n,
                };
                if confirmed {
                    return (cap, late.held);
                }
            }
            return (cap, 0.0);
        }
        let held = std::mem::take(&mut self.warm_held[test]);
        if self.warm_in {
            let late = &mut self.warm_late[test];
            late.sig += x;
            late.raw += raw;
            late.n += 1;
        }
        let steady = match sig {
            Some((x, v, _)) => {
                let (x1, v1) = self.warm_sig[test];
                let sd = (STEADY_WARM * STEADY_WARM * v1 + v).sqrt();
                x >= STEADY_WARM * x1 + WARM_Z * sd
            }
            None => raw >= STEADY_WARM * self.warm_first[test],
        };
        let was_steady = self.warm_steady[test];
        self.warm_steady[test] &= steady;
        if !self.warm_steady[test] {
            if self.warm_in {
                let late = &mut self.warm_late[test];
                // The first step's evidence held back, if it was lost here.
                if was_steady {
                    late.held += held;
                }
                late.held += (raw.min(full) - cap).max(0.0);
            }
            return (cap, 0.0);
        }
        if raw > cap && (full > cap || held > 0.0) {
            self.warm_waived = true;
        }
        (full.max(cap), held)
    }

    /// Evidence held back in the warm-up belongs to its test's current
    /// excursion: when the CUSUM falls back to zero (the signal went away
    /// for a while), the held-back evidence goes with it.
    pub(super) fn drop_held_on_reset(&mut self, test: usize, s: f64) {
        if s <= 0.0 {
            self.warm_late[test].held = 0.0;
        }
    }
}
