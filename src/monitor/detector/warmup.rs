//! The warm-up in evidence and time: the allowance a step inside the
//! warm-up brings, relief for a signal that does not fade, and the
//! evidence held back until a step shows whether the shift outlasted it.

use super::*;

/// Steps of a test's recent signal its fading trend is fitted over: at
/// 10 s steps a minute (one step's fall is within the noise at low
/// traffic, a trend over several is not), at 1-minute steps six minutes.
const FADE_K: usize = 6;
/// A fall is a warm-up's fade when the trend's slope is below zero by this
/// many of its standard deviations: noise alone passes for a fade at a
/// step with odds of about 1 in 40, and then only until the next step.
const FADE_Z: f64 = 2.0;
/// Past `warmup_s`, the allowance holds while the signal keeps falling —
/// for steps that begin before this many seconds after the deploy: 2.7
/// time constants of the slowest warm-up designed for (90 s: JIT, cold
/// caches, connection pools), by when 93% of its excess is gone. A
/// release whose signal still falls significantly after four minutes is
/// recovering on its own; one that stops falling is judged at once.
pub(super) const FADE_MAX_S: f64 = 240.0;

/// A test's fading warm-up: its last steps' signals, and whether the
/// allowance still holds past `warmup_s` (see [`Detector::warm_cap`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Fade {
    /// The last [`FADE_K`] steps' (t, signal, variance), oldest first.
    pts: [(f64, f64, f64); FADE_K],
    len: usize,
    /// No step past `warmup_s` has yet failed to fall.
    open: bool,
    /// The last step the allowance held past `warmup_s` (0: none).
    pub(super) until: f64,
    /// The current step was held so (no positive evidence).
    pub(super) held_now: bool,
    /// The current step's raw evidence and a full step's cap.
    raw: f64,
    full: f64,
    /// The current step's signal over the baseline's level, as a ratio.
    pub(super) level: f64,
}

impl Fade {
    fn push(&mut self, t: f64, x: f64, v: f64) {
        if self.len == FADE_K {
            self.pts.copy_within(1.., 0);
            self.len -= 1;
        }
        self.pts[self.len] = (t, x, v);
        self.len += 1;
    }

    /// The signal falls significantly over the last steps: the weighted
    /// least-squares slope (each step weighted by the inverse of its
    /// noise: count noise for errors, quantile noise at the step's
    /// requests for latency) below zero by [`FADE_Z`] of its own standard
    /// deviation. Two steps: their difference against its noise. (Also
    /// requiring the last step below the one before ended a 30 s fade at
    /// 10 s steps at its first noisy up-tick, and called it.)
    fn falling(&self) -> bool {
        falls(&self.pts[..self.len])
    }

    /// The signal is still fading, so the allowance may hold past
    /// `warmup_s`: it falls over its last steps (see [`Fade::falling`]),
    /// and over the newer half of them too (the last `len / 2 + 1`, the
    /// oldest step left out whatever the count), over at least three
    /// steps in all. A fit over all of them stays significant for up to
    /// [`FADE_K`] − 1 steps after one high early step (a cold start ahead
    /// of a flat bad release: x4, then x2 throughout) — the newer half
    /// shows the signal stopped falling. One step's fall is a fall, not a
    /// fade: at 1-minute steps it cannot tell a cold start ahead of a
    /// shift from a warm-up, so it holds nothing.
    fn fading(&self) -> bool {
        let pts = &self.pts[..self.len];
        pts.len() >= 3 && falls(pts) && falls(&pts[pts.len() - (pts.len() / 2 + 1)..])
    }
}

/// The weighted least-squares slope of (t, signal, variance) points is
/// below zero by [`FADE_Z`] of its standard deviation.
fn falls(pts: &[(f64, f64, f64)]) -> bool {
    if pts.len() < 2 || pts.iter().any(|p| !(p.2 > 0.0 && p.1.is_finite())) {
        return false;
    }
    let w = |p: &(f64, f64, f64)| 1.0 / p.2;
    let sw: f64 = pts.iter().map(w).sum();
    let tm = pts.iter().map(|p| w(p) * p.0).sum::<f64>() / sw;
    let xm = pts.iter().map(|p| w(p) * p.1).sum::<f64>() / sw;
    let stt: f64 = pts.iter().map(|p| w(p) * (p.0 - tm).powi(2)).sum();
    if stt <= 0.0 {
        return false;
    }
    let slope = pts
        .iter()
        .map(|p| w(p) * (p.0 - tm) * (p.1 - xm))
        .sum::<f64>()
        / stt;
    slope + FADE_Z / stt.sqrt() < 0.0
}

impl Detector {
    /// At the first window step: per latency quantile, the share of its
    /// per-step noise that is step-to-step noise (the baseline's successive
    /// differences, robustly, over two) rather than slow wander. A trend
    /// over a few adjacent steps is judged by the former: slow wander moves
    /// them together and does not blur their slope. At most 1 (never more
    /// noise than the model's), at least 1/20.
    pub(super) fn fade_noise(&mut self, m: &Model) {
        for i in 0..3 {
            let Some(ls) = m.lat[i] else {
                self.fade_short[i] = 1.0;
                continue;
            };
            let xs: Vec<f64> = self
                .baseline
                .iter()
                .map(|s| {
                    [s.p50_ms, s.p95_ms, s.p99_ms][i]
                        .filter(|v| is_data(s) && v.is_finite() && *v > 0.0 && s.requests > 0.0)
                        .map_or(f64::NAN, f64::ln)
                })
                .collect();
            let d: Vec<f64> = xs
                .windows(2)
                .map(|w| w[1] - w[0])
                .filter(|d| d.is_finite())
                .collect();
            let short = if d.len() >= 4 {
                let c = median(&d).unwrap_or(0.0);
                mad_sigma(&d, c) / std::f64::consts::SQRT_2
            } else {
                ls.sigma
            };
            self.fade_short[i] = if ls.sigma > 0.0 {
                (short / ls.sigma).powi(2).clamp(0.05, 1.0)
            } else {
                1.0
            };
        }
    }

    /// Feed a test's fading trend this step's signal; whether it falls
    /// significantly. `level` is the signal over the baseline's level.
    fn fade_step(&mut self, test: usize, (x, v): (f64, f64), level: f64, first: bool) -> bool {
        let t = self.w_last_t;
        let f = &mut self.fade[test];
        if first {
            *f = Fade {
                open: true,
                ..Fade::default()
            };
        }
        f.held_now = false;
        f.level = level;
        if !(first || self.warm_in || (f.open && self.fade_open)) {
            // Past the warm-up and its extension: no trend to follow.
            f.open = false;
            return false;
        }
        // Latency: step-to-step noise (see `fade_noise`); the pooled
        // tests' by the quantiles' mean share.
        let short = match test {
            3..12 => self.fade_short[(test - 3) / 3],
            POOL_ID.. => self.fade_short.iter().sum::<f64>() / 3.0,
            _ => 1.0,
        };
        let f = &mut self.fade[test];
        f.push(t, x, v * short);
        f.falling()
    }

    /// Past `warmup_s`: the warm-up's allowance still holds for this
    /// step when the test's signal has kept falling significantly at
    /// every step since (and the step begins within [`FADE_MAX_S`]); the
    /// first step that does not fall ends it for good.
    fn fade_holds(&mut self, test: usize, falling: bool) -> bool {
        let t = self.w_last_t;
        let open = self.fade_open;
        let f = &mut self.fade[test];
        if f.open && falling && f.fading() && open {
            f.until = t;
            f.held_now = true;
            return true;
        }
        f.open = false;
        false
    }

    /// At the end of a step: a test whose warm-up the allowance held past
    /// `warmup_s` at this step keeps of what its warm-up brought only what
    /// the signal's level now would have brought over as many steps (each
    /// capped as a full step): a fading warm-up's excess is the warm-up's
    /// and says nothing of the level it settles at, while a shift under a
    /// warm-up keeps its evidence. Its CUSUM and its sum since the deploy
    /// alike (the latter scaled to its threshold).
    pub(super) fn fade_forget(&mut self, m: &Model) {
        let rho = m.h_dep / m.h;
        for id in 0..WARM_TESTS {
            let f = self.fade[id];
            if !f.held_now {
                continue;
            }
            self.fade[id].held_now = false;
            let per_step = f.raw.clamp(0.0, f.full);
            if let Some((c, d)) = self.sums_mut(id) {
                let keep = f64::from(c.steps) * per_step;
                if keep <= 0.0 {
                    *c = Cusum::default();
                } else {
                    c.s = c.s.min(keep);
                }
                d.s = d.s.min(f64::from(d.steps) * per_step * rho);
            }
        }
    }

    /// A warm-up test's CUSUM and its sum since the deploy (none for the
    /// traffic falls, which have no fading signal).
    fn sums_mut(&mut self, id: usize) -> Option<(&mut Cusum, &mut Cusum)> {
        match id {
            0..3 => Some((&mut self.err[id], &mut self.dep_err[id])),
            3..12 => {
                let (i, k) = ((id - 3) / 3, (id - 3) % 3);
                Some((&mut self.lat[i][k], &mut self.dep_lat[i][k]))
            }
            POOL_ID.. => {
                let k = id - POOL_ID;
                Some((&mut self.lat_pool[k], &mut self.dep_pool[k]))
            }
            _ => None,
        }
    }

    /// The warm-up the allowance held past `warmup_s`, of the test of
    /// `metric` that called (its CUSUM or its sum since the deploy at its
    /// threshold; the pooled latency tests count for every quantile): how
    /// long it lasted and the signal's level now, for the reason of a call
    /// made once it settled.
    pub(super) fn settled_after_fade(&mut self, m: &Model, metric: Metric) -> Option<(f64, f64)> {
        let ids: &[usize] = match metric {
            Metric::ErrorRate => &[0, 1, 2],
            Metric::LatencyP50 => &[3, 4, 5, 14, 15, 16],
            Metric::LatencyP95 => &[6, 7, 8, 14, 15, 16],
            Metric::LatencyP99 => &[9, 10, 11, 14, 15, 16],
            Metric::Throughput => &[],
        };
        let mut best: Option<(f64, f64)> = None;
        for &id in ids {
            let f = self.fade[id];
            let called = self
                .sums_mut(id)
                .is_some_and(|(c, d)| c.s >= m.h || d.s >= m.h_dep);
            if called && f.until > 0.0 && best.is_none_or(|b| f.until > b.0) {
                best = Some((f.until, f.level));
            }
        }
        best
    }

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
    ///
    /// A warm-up fades, but not always within `warmup_s` (a JIT, a cold
    /// cache or a connection pool can take minutes): a signal that falls
    /// significantly over its last steps (see [`Fade::falling`]) is no
    /// steady shift inside the warm-up, and past it the allowance still
    /// holds — the step brings no evidence of a rise — for as long as the
    /// signal keeps falling, up to [`FADE_MAX_S`]. The first step that
    /// does not fall ends that: a warm-up that settled above the
    /// baseline is then judged like any shift.
    pub(super) fn warm_cap(
        &mut self,
        test: usize,
        raw: f64,
        sig: Option<(f64, f64, f64)>,
        (cap, full): (f64, f64),
        first: bool,
    ) -> (f64, f64) {
        let (x, v, base) = sig.unwrap_or_default();
        let falling = match sig {
            Some(_) => {
                let level = if test < ERR_RATIOS.len() {
                    x / base
                } else {
                    (x - base).exp()
                };
                self.fade_step(test, (x, v), level, first)
            }
            None => false,
        };
        if !first && !self.warm_in && self.fade_holds(test, falling) {
            self.fade[test].raw = raw;
            self.fade[test].full = full;
            // Still fading past the warm-up: what it held back stays held.
            self.warm_late[test] = WarmLate::default();
            self.warm_held[test] = 0.0;
            return (0.0, 0.0);
        }
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
        let steady = !falling
            && match sig {
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
