//! Every verdict in one line: what moved, against what, since when, how
//! sure, and which evidence decided.

use super::*;

/// Least share of the window so far that its data steps must cover for a
/// healthy verdict (see [`Detector::thin_coverage`]).
const MIN_COVERAGE: f64 = 0.5;

impl Detector {
    /// `InsufficientData` when the metrics covered less than
    /// [`MIN_COVERAGE`] of the window so far (at `t`), each data step
    /// counted for its own length (a window stepping coarser than its
    /// baseline is covered all the same): gaps fewer than
    /// `gap_steps` in a row each, but most of the window missing, are no
    /// evidence of health (a source down for 30 s of a 40 s window, back
    /// for its last steps).
    pub(super) fn thin_coverage(&self, m: &Model, t: f64) -> Option<Verdict> {
        let covered = self.w_covered;
        (t > 0.0 && covered < MIN_COVERAGE * t - 1e-9 * m.dt).then(|| Verdict {
            kind: VerdictKind::InsufficientData,
            metric: None,
            detected_at: None,
            reason: format!(
                "insufficient data: metrics for only {} of the {} since the deploy",
                fmt_duration(covered),
                fmt_duration(t)
            ),
        })
    }

    /// `InsufficientData` when the baseline gave no test a reference: no
    /// requests in it (a service nobody used before the deploy), so no
    /// error rate, latency or traffic level to judge the window against.
    /// The hard guards (`max_error_rate`, `max_p*_ms`) still judge.
    pub(super) fn no_reference(&self, m: &Model) -> Option<Verdict> {
        (m.err.is_none() && m.lat.iter().all(Option::is_none) && m.thr.is_none()).then(|| {
            Verdict {
                kind: VerdictKind::InsufficientData,
                metric: None,
                detected_at: None,
                reason: format!(
                    "insufficient data: the baseline's {} had no requests, so nothing to judge the window against",
                    fmt_steps(m.usable)
                ),
            }
        })
    }

    pub(super) fn err_reason(&self, es: ErrStats, c: &Cusum, t: f64) -> Verdict {
        let (errs, reqs, var) = (c.a, c.b, c.c);
        let rate = if reqs > 0.0 { errs / reqs } else { 0.0 };
        let mu = reqs * es.p0;
        let p = if mu < 30.0 {
            // Small counts: Poisson tail inflated for overdispersion.
            let infl = if mu > 0.0 { (var / mu).max(1.0) } else { 1.0 };
            poisson_sf((errs / infl).floor(), mu / infl)
        } else {
            norm_sf((errs - mu) / var.max(1e-9).sqrt())
        };
        let ratio = if es.p0 > 0.0 {
            format!(" ({:.1}x)", rate / es.p0)
        } else {
            String::new()
        };
        regression(
            Metric::ErrorRate,
            t,
            format!(
                "error rate {} vs baseline {}{} since t={}, over {} ({} errors in {} requests), {}",
                fmt_pct(rate),
                fmt_pct(es.p0),
                ratio,
                fmt_t(c.start_t),
                fmt_steps(c.steps as usize),
                errs,
                reqs,
                fmt_p(p)
            ),
        )
    }

    /// The healthy verdict and its one-line summary of the window so far.
    pub(super) fn healthy(&self, m: &Model) -> Verdict {
        let mut parts = Vec::new();
        if let Some(es) = m.err
            && self.w_req > 0.0
        {
            parts.push(format!(
                "error rate {} vs {}",
                fmt_pct(self.w_err / self.w_req),
                fmt_pct(es.p0)
            ));
        }
        for i in [1usize, 2, 0] {
            if let Some(ls) = m.lat[i]
                && self.w_lat_n[i] > 0.0
            {
                parts.push(format!(
                    "{} {} vs {}",
                    LAT_NAMES[i],
                    fmt_ms((self.w_lat_sum[i] / self.w_lat_n[i]).exp()),
                    fmt_ms(ls.m.exp())
                ));
                break;
            }
        }
        if let Some(ts) = m.thr
            && self.w_last_t > 0.0
        {
            parts.push(format!(
                "{} vs {} req/s",
                fmt_rate(self.w_req / self.w_last_t),
                fmt_rate(ts.rate)
            ));
        }
        let mut reason = format!("no significant change over {}", fmt_duration(self.w_last_t));
        if !parts.is_empty() {
            reason.push_str(": ");
            reason.push_str(&parts.join(", "));
        }
        Verdict {
            kind: VerdictKind::Healthy,
            metric: None,
            detected_at: None,
            reason,
        }
    }
}

pub(super) fn regression(metric: Metric, t: f64, reason: String) -> Verdict {
    Verdict {
        kind: VerdictKind::Regression,
        metric: Some(metric),
        detected_at: Some(t),
        reason,
    }
}

pub(super) fn lat_reason(i: usize, ls: LatStats, c: &Cusum, t: f64) -> Verdict {
    let k = c.steps.max(1) as f64;
    let shift = c.a / k;
    let z = shift / (ls.sigma / k.sqrt());
    regression(
        LAT_METRICS[i],
        t,
        format!(
            "{} latency {} vs baseline {} ({:.2}x) since t={}, over {}, {}",
            LAT_NAMES[i],
            fmt_ms((ls.m + shift).exp()),
            fmt_ms(ls.m.exp()),
            shift.exp(),
            fmt_t(c.start_t),
            fmt_steps(c.steps as usize),
            fmt_p(norm_sf(z))
        ),
    )
}

/// The pooled latency test's call in one line: the quantiles it pooled,
/// their common shift, the worst quantile now against its baseline, and
/// how much they move together (what their evidence was counted by).
/// `worst`: that quantile and its log value in this step.
pub(super) fn pooled_reason(
    pooled: &[usize],
    (worst, now): (usize, f64),
    m: &Model,
    c: &Cusum,
    t: f64,
) -> Verdict {
    let k = c.steps.max(1) as f64;
    let shift = c.a / k;
    // `c.b` sums each step's pooled variance.
    let z = shift / (c.b / k).max(1e-12).sqrt() * k.sqrt();
    let names: Vec<&str> = pooled.iter().map(|&i| LAT_NAMES[i]).collect();
    let base = m.lat[worst].map_or(0.0, |l| l.m);
    regression(
        LAT_METRICS[worst],
        t,
        format!(
            "latency {} together {:.2}x their baseline since t={}, over {}, {} ({} now {} vs {}): the quantiles' evidence counted together (baseline correlation {:.2})",
            names.join("/"),
            shift.exp(),
            fmt_t(c.start_t),
            fmt_steps(c.steps as usize),
            fmt_p(norm_sf(z)),
            LAT_NAMES[worst],
            fmt_ms(now.exp()),
            fmt_ms(base.exp()),
            m.lat_rho
        ),
    )
}

/// A throughput collapse in one line: how far requests fell, against what
/// they were expected to be, and which evidence made it more than a dip.
pub(super) fn thr_reason(
    ts: ThrStats,
    c: &Cusum,
    t: f64,
    seasonal: bool,
    null: f64,
    why: &str,
) -> Verdict {
    let (got, expected, secs) = (c.a, c.b, c.c);
    let rate = if secs > 0.0 { got / secs } else { 0.0 };
    let expected_rate = if secs > 0.0 { expected / secs } else { ts.rate };
    let infl = 1.0 + ts.c * ts.per_step;
    let p = poisson_cdf((got / infl).floor(), null * expected / infl);
    regression(
        Metric::Throughput,
        t,
        format!(
            "throughput collapsed: {} req/s vs {} req/s {} ({:+.0}%) since t={}, over {}, {}: {}",
            fmt_rate(rate),
            fmt_rate(expected_rate),
            if seasonal {
                "expected from the seasonal reference"
            } else {
                "in the baseline"
            },
            (rate / expected_rate.max(1e-12) - 1.0) * 100.0,
            fmt_t(c.start_t),
            fmt_steps(c.steps as usize),
            fmt_p(p),
            why
        ),
    )
}

pub(super) fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}
