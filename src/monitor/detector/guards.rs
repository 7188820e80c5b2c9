//! The hard guards (`max_error_rate`, `max_p*_ms`): the operator's
//! explicit limits, judged before any statistics; `Some` once one has
//! been breached for `guard_steps` steps in a row.

use super::*;

impl Detector {
    pub(super) fn hard_guards(
        &mut self,
        m: &Model,
        t: f64,
        (n, e): (f64, f64),
        q: [Option<f64>; 3],
    ) -> Option<Verdict> {
        let mut found: Option<Verdict> = None;

        // Hard guards first: they are the operator's explicit limits.
        if let Some(max) = self.cfg.max_error_rate
            && n > 0.0
        {
            let g = &mut self.err_guard;
            if e / n > max {
                if g.run == 0 {
                    *g = Guard {
                        since: t,
                        ..Guard::default()
                    };
                }
                g.run += 1;
                g.sum_a += e;
                g.sum_b += n;
                if g.run >= self.cfg.guard_steps.max(1) && found.is_none() {
                    let base = m.err.map(|x| x.p0).unwrap_or(0.0);
                    found = Some(regression(
                        Metric::ErrorRate,
                        t,
                        format!(
                            "error rate {} over the {} limit (max_error_rate) since t={}, {} in a row (baseline {})",
                            fmt_pct(g.sum_a / g.sum_b),
                            fmt_pct(max),
                            fmt_t(g.since),
                            fmt_steps(g.run),
                            fmt_pct(base)
                        ),
                    ));
                }
            } else {
                *g = Guard::default();
            }
        }
        let maxes = [
            self.cfg.max_p50_ms,
            self.cfg.max_p95_ms,
            self.cfg.max_p99_ms,
        ];
        for i in 0..3 {
            let (Some(max), Some(v)) = (maxes[i], q[i]) else {
                continue;
            };
            if !v.is_finite() {
                continue;
            }
            let g = &mut self.lat_guard[i];
            if v > max {
                if g.run == 0 {
                    *g = Guard {
                        since: t,
                        ..Guard::default()
                    };
                }
                g.run += 1;
                g.sum_a += v.ln();
                if g.run >= self.cfg.guard_steps.max(1) && found.is_none() {
                    let base = m.lat[i].map(|l| format!(" (baseline {})", fmt_ms(l.m.exp())));
                    found = Some(regression(
                        LAT_METRICS[i],
                        t,
                        format!(
                            "{} latency {} over the {} limit (max_{}_ms) since t={}, {} in a row{}",
                            LAT_NAMES[i],
                            fmt_ms((g.sum_a / g.run as f64).exp()),
                            fmt_ms(max),
                            LAT_NAMES[i],
                            fmt_t(g.since),
                            fmt_steps(g.run),
                            base.unwrap_or_default()
                        ),
                    ));
                }
            } else {
                *g = Guard::default();
            }
        }
        found
    }
}
