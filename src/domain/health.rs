//! Health of an environment: reachability is one signal, the metrics are
//! another. An environment is judged against its own recent baseline, and a
//! pre-production stage also against production (different traffic, so only
//! large differences count). The verdict says which comparison it used.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EnvState, Health};
use crate::monitor::Sample;

/// Usable baseline steps below which an environment's own baseline is not used.
pub const MIN_BASELINE_STEPS: usize = 3;
/// A rise of the error rate whose counts are this likely (one-sided, exact
/// conditional binomial) if now and the baseline shared one rate is noise,
/// whatever the ratio: about three standard deviations. Health is read at
/// a glance and acts on nothing (the monitoring window's detector decides
/// rollbacks); the ratio and [`MIN_EXCESS_ERRORS`] already bound noise, so
/// the test only has to rule out what a short baseline can hide. At the
/// tail of four deviations (3.2e-5) 0 of 300 then 14 of 300 (4.7%), or 3
/// of 300 then 23 of 300, read healthy. Computed over stationary Poisson
/// errors (0.1% to 5%, baselines of 300 to 3,000 requests against 100 to
/// 1,000 now), a read is degraded by chance at most 5e-4 of the time
/// (3.2e-5: 1.6e-5); the mid-p variant would double that for one count.
const MAX_P: f64 = 1e-3;
/// A handful of errors beyond what the baseline's own rate predicts is
/// never enough on its own.
const MIN_EXCESS_ERRORS: f64 = 5.0;
/// Requests a step's p95 needs on average to be more than its slowest
/// request: one in ten beyond it.
const MIN_P95_STEP_REQUESTS: f64 = 10.0;
/// Requests the recent p95 must rest on (a few beyond it).
const MIN_P95_REQUESTS: f64 = 50.0;

/// Traffic summed over a few steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Traffic {
    pub requests: f64,
    pub errors: f64,
    /// Median of the steps' p95 latency.
    pub p95_ms: Option<f64>,
    /// Steps with data behind the sums.
    pub steps: usize,
}

impl Traffic {
    /// Sum the steps that carry data (gaps — NaN counts — are skipped).
    pub fn of(samples: &[Sample]) -> Traffic {
        let data: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.requests.is_finite() && s.errors.is_finite() && s.requests >= 0.0)
            .collect();
        let mut p95: Vec<f64> = data
            .iter()
            .filter_map(|s| s.p95_ms)
            .filter(|p| p.is_finite())
            .collect();
        p95.sort_by(f64::total_cmp);
        Traffic {
            requests: data.iter().map(|s| s.requests).sum(),
            errors: data.iter().map(|s| s.errors.clamp(0.0, s.requests)).sum(),
            p95_ms: (!p95.is_empty()).then(|| {
                let m = p95.len() / 2;
                if p95.len() % 2 == 1 {
                    p95[m]
                } else {
                    (p95[m - 1] + p95[m]) / 2.0
                }
            }),
            steps: data.len(),
        }
    }

    /// Errors per request; `None` without traffic.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| self.errors / self.requests)
    }
}

/// Which comparison decided an environment's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Only whether the version endpoint answers.
    Reachability,
    /// The configured limits (`max_error_rate`, `max_p95_ms`).
    Limits,
    /// The environment against its own recent baseline.
    OwnBaseline,
    /// A pre-production stage against production.
    Production,
    /// The monitoring window's verdict on the running version.
    MonitoringWindow,
    /// The detector on the stage's metrics since the version it runs went
    /// live, against before (the approval stage's `stage_verdict`).
    SinceGoLive,
}

/// Why an environment's health is [`Health::WarmingUp`], and since when.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WarmUp {
    /// When this process began reading the metrics source.
    pub since: DateTime<Utc>,
    #[serde(flatten)]
    pub reason: WarmUpReason,
    /// The reason in words ("rates need two scrapes").
    pub why: String,
}

/// What the warm-up still waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum WarmUpReason {
    /// A scrape source turns two scrapes into one step: after one there
    /// is no rate yet.
    FirstScrape,
    /// Steps in, but its own baseline (the steps before the recent ones)
    /// has `have` of the `need` steps it takes.
    Baseline { have: usize, need: usize },
}

impl WarmUpReason {
    pub fn describe(self) -> String {
        match self {
            WarmUpReason::FirstScrape => "rates need two scrapes".into(),
            WarmUpReason::Baseline { have, need } => {
                format!("collecting a baseline: {have} of {need} steps")
            }
        }
    }
}

/// The engine's metrics reading is still warming up: set only while the
/// source answers and this process has polled it fewer times than a
/// baseline takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmingUp {
    pub since: DateTime<Utc>,
    /// A scrape source that has answered once: no step, so no rate, yet.
    pub first_scrape: bool,
}

/// What [`assess`] decides from.
#[derive(Clone, Debug, Default)]
pub struct HealthInput<'a> {
    /// The version endpoint answered.
    pub reachable: bool,
    /// Why it did not, when it did not.
    pub reach_error: Option<&'a str>,
    pub state: Option<EnvState>,
    /// A metrics source is configured (else health is reachability alone).
    pub metrics_configured: bool,
    /// The last few steps.
    pub recent: Option<Traffic>,
    /// The environment's own baseline before them, known-bad periods excluded.
    pub baseline: Option<Traffic>,
    /// How the baseline reads in words ("the last 30 min").
    pub baseline_span: &'a str,
    /// Production's known-good traffic, for a pre-production stage: its
    /// baseline with known-bad periods left out — never its current steps
    /// while it is itself unwell, or a stage on the same bad release would
    /// read "in line with production".
    pub production: Option<Traffic>,
    /// Why a pre-production stage is not compared with production (it is
    /// unwell itself and has no known-good baseline): said in the detail.
    pub production_skipped: Option<&'a str>,
    pub max_error_rate: Option<f64>,
    pub max_p95_ms: Option<f64>,
    /// The reading is warming up: data missing for that reason is
    /// `WarmingUp`, not `Unknown`.
    pub warming_up: Option<WarmingUp>,
    /// Why the metrics source's last read failed (unreachable, or a count
    /// that is no number), when it did: the steps kept from before say
    /// nothing of now, so what they show can be degraded but never healthy.
    pub metrics_failed: Option<&'a str>,
}

/// Health, the comparison behind it, and one line saying why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthAssessment {
    pub health: Health,
    pub comparison: Comparison,
    pub detail: String,
    /// Why and since when, when `health` is `WarmingUp`.
    pub warm_up: Option<WarmUp>,
}

fn pending(since: DateTime<Utc>, reason: WarmUpReason) -> HealthAssessment {
    let why = reason.describe();
    HealthAssessment {
        health: Health::WarmingUp,
        comparison: Comparison::Reachability,
        detail: format!(
            "reachable; {why} (reading the metrics since {} UTC)",
            since.format("%H:%M:%S")
        ),
        warm_up: Some(WarmUp { since, reason, why }),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// How a rise of the error rate from `base` to `cur` reads: significant
/// only when both the ratio and the absolute rise are large, the errors
/// beyond what the baseline's rate predicts are more than a handful, and
/// the counts make it more than noise.
///
/// Both sides are samples: a clean baseline of 300 requests does not prove
/// a rate of zero, and a few errors now do not prove a rise. So the test
/// is two-sample — the conditional binomial: if now and the baseline share
/// one rate, whatever it is, each of the `k` errors of both falls on now
/// with now's share of the requests `π = n_now / (n_now + n_base)`; the
/// rise counts when at least the errors seen now would fall there with a
/// probability under [`MAX_P`]. A short clean baseline thus needs several
/// errors now (0 of 300 then 6 of 300 is 1 in 64: noise; 10 of 300 is
/// 1 in 1,024: a rise); against a long
/// baseline `π` is small and the test is the one-sample test against its
/// rate, as sensitive as before.
fn error_rise(cur: &Traffic, base: &Traffic, ratio: f64, abs: f64) -> Option<(f64, f64)> {
    let (c, b) = (cur.error_rate()?, base.error_rate()?);
    let excess = cur.errors - cur.requests * b;
    let share = cur.requests / (cur.requests + base.requests);
    let p = crate::monitor::stats::binomial_sf(cur.errors, cur.errors + base.errors, share);
    (c > b * ratio + abs && excess >= MIN_EXCESS_ERRORS && p < MAX_P).then_some((c, b))
}

/// How a rise of the p95 from `base` to `cur` reads: significant only when
/// both the ratio and the absolute rise are large and both p95s rest on
/// requests enough to be p95s — evidence, not a count of steps. Each side
/// is the median of its steps' p95s, and a step's p95 over a handful of
/// requests is its slowest request (over one, the request itself: a
/// median, not a p95): so both sides' steps must average
/// [`MIN_P95_STEP_REQUESTS`], and now must hold [`MIN_P95_REQUESTS`] in all.
/// Below that the latency is not compared (the monitoring window's
/// detector weighs it with its noise at any traffic).
fn latency_rise(cur: &Traffic, base: &Traffic, ratio: f64, abs_ms: f64) -> Option<(f64, f64)> {
    let (c, b) = (cur.p95_ms?, base.p95_ms?);
    (c > b * ratio + abs_ms && p95_evidence(cur, base)).then_some((c, b))
}

/// Whether both p95s rest on requests enough to be compared (see
/// [`latency_rise`]).
fn p95_evidence(cur: &Traffic, base: &Traffic) -> bool {
    let per_step = |t: &Traffic| t.requests / t.steps.max(1) as f64;
    cur.requests >= MIN_P95_REQUESTS
        && per_step(cur) >= MIN_P95_STEP_REQUESTS
        && per_step(base) >= MIN_P95_STEP_REQUESTS
}

fn degraded(comparison: Comparison, detail: String) -> HealthAssessment {
    HealthAssessment {
        health: Health::Degraded,
        comparison,
        detail,
        warm_up: None,
    }
}

/// Decide an environment's health.
///
/// Down when no version can be read (no answer, or none usable); degraded
/// when the monitoring window caught the running version, when a limit is
/// breached, when its errors or p95 rose clearly against its own baseline,
/// or — for a pre-production stage — when they are far above production's;
/// unknown when there are metrics to read but none arrived; else healthy.
pub fn assess(i: &HealthInput<'_>) -> HealthAssessment {
    if !i.reachable {
        return HealthAssessment {
            health: Health::Down,
            comparison: Comparison::Reachability,
            detail: match i.reach_error {
                // The error says how it failed: no answer, or an answer
                // without a usable version (which did answer).
                Some(e) => format!("no version read: {e}"),
                None => "no version read from the version endpoint".into(),
            },
            warm_up: None,
        };
    }
    if i.state == Some(EnvState::Regression) {
        return degraded(
            Comparison::MonitoringWindow,
            "the monitoring window caught a regression of the version it runs".into(),
        );
    }
    if !i.metrics_configured {
        return HealthAssessment {
            health: Health::Healthy,
            comparison: Comparison::Reachability,
            detail: "reachable; no metrics source configured".into(),
            warm_up: None,
        };
    }
    let Some(cur) = i.recent.filter(|r| r.steps > 0 && r.requests > 0.0) else {
        if let Some(w) = i
            .warming_up
            .filter(|w| w.first_scrape && i.recent.is_none())
        {
            return pending(w.since, WarmUpReason::FirstScrape);
        }
        return HealthAssessment {
            health: Health::Unknown,
            comparison: Comparison::Reachability,
            detail: match i.metrics_failed {
                Some(why) => format!("reachable; no usable metrics to judge: {why}"),
                None => "reachable; no recent traffic in the metrics to judge".into(),
            },
            warm_up: None,
        };
    };
    let rate = cur.error_rate().unwrap_or(0.0);
    if let Some(max) = i.max_error_rate
        && rate > max
    {
        return degraded(
            Comparison::Limits,
            format!("error rate {} above the limit {}", pct(rate), pct(max)),
        );
    }
    if let (Some(p), Some(max)) = (cur.p95_ms, i.max_p95_ms)
        && p > max
    {
        return degraded(
            Comparison::Limits,
            format!("p95 {p:.0}ms above the limit {max:.0}ms"),
        );
    }
    let own = i
        .baseline
        .filter(|b| b.steps >= MIN_BASELINE_STEPS && b.requests > 0.0);
    if let Some(b) = &own {
        if let Some((c, was)) = error_rise(&cur, b, 3.0, 0.005) {
            return degraded(
                Comparison::OwnBaseline,
                format!(
                    "error rate {} vs {} over its own {}",
                    pct(c),
                    pct(was),
                    i.baseline_span
                ),
            );
        }
        if let Some((c, was)) = latency_rise(&cur, b, 2.0, 20.0) {
            return degraded(
                Comparison::OwnBaseline,
                format!(
                    "p95 {c:.0}ms vs {was:.0}ms over its own {}",
                    i.baseline_span
                ),
            );
        }
    }
    let prod = i.production.filter(|p| p.steps > 0 && p.requests > 0.0);
    if let Some(p) = &prod {
        if let Some((c, was)) = error_rise(&cur, p, 5.0, 0.02) {
            return degraded(
                Comparison::Production,
                format!(
                    "error rate {} vs production's {} (against production: only large differences count)",
                    pct(c),
                    pct(was)
                ),
            );
        }
        if let Some((c, was)) = latency_rise(&cur, p, 3.0, 50.0) {
            return degraded(
                Comparison::Production,
                format!(
                    "p95 {c:.0}ms vs production's {was:.0}ms (against production: only large differences count)"
                ),
            );
        }
    }
    let p95 = cur
        .p95_ms
        .map(|p| format!(", p95 {p:.0}ms"))
        .unwrap_or_default();
    let (comparison, against) = match (&own, &prod) {
        (Some(_), Some(_)) => (
            Comparison::OwnBaseline,
            format!(
                "in line with its own {} and with production",
                i.baseline_span
            ),
        ),
        (Some(_), None) => (
            Comparison::OwnBaseline,
            format!("in line with its own {}", i.baseline_span),
        ),
        (None, Some(_)) => (
            Comparison::Production,
            "no far worse than production (its own baseline is too short)".into(),
        ),
        (None, None) if i.max_error_rate.is_some() || i.max_p95_ms.is_some() => (
            Comparison::Limits,
            "within the limits (no baseline yet)".into(),
        ),
        (None, None) => {
            let have = i.baseline.map_or(0, |b| b.steps);
            if let Some(w) = i.warming_up.filter(|_| have < MIN_BASELINE_STEPS) {
                return pending(
                    w.since,
                    WarmUpReason::Baseline {
                        have,
                        need: MIN_BASELINE_STEPS,
                    },
                );
            }
            return HealthAssessment {
                health: Health::Unknown,
                comparison: Comparison::Reachability,
                detail: format!(
                    "reachable; error rate {}{p95}, but no baseline yet to compare with{}",
                    pct(rate),
                    i.production_skipped
                        .map(|why| format!(" (not with production: {why})"))
                        .unwrap_or_default()
                ),
                warm_up: None,
            };
        }
    };
    if let Some(why) = i.metrics_failed {
        return HealthAssessment {
            health: Health::Unknown,
            comparison: Comparison::Reachability,
            detail: format!(
                "reachable; the last steps read showed error rate {}{p95}, but the metrics cannot be read now: {why}",
                pct(rate)
            ),
            warm_up: None,
        };
    }
    let skipped = i
        .production_skipped
        .map(|why| format!("; not compared with production: {why}"))
        .unwrap_or_default();
    // "In line" covers only what was compared: p95s over too few requests
    // were not (whatever they read).
    let uncompared =
        |b: &Traffic| cur.p95_ms.is_some() && b.p95_ms.is_some() && !p95_evidence(&cur, b);
    let latency = if own.as_ref().or(prod.as_ref()).is_some_and(uncompared) {
        "; latency not compared (too few requests)"
    } else {
        ""
    };
    HealthAssessment {
        health: Health::Healthy,
        comparison,
        detail: format!("error rate {}{p95}: {against}{latency}{skipped}", pct(rate)),
        warm_up: None,
    }
}

/// An assessment corrected by the detector's verdict on the version the
/// environment runs, judged since it went live against before (the
/// approval stage's evidence). Its own recent baseline cannot see a bad
/// release that has been live for longer than that baseline — it compares
/// the release with itself — so a regression found since the go-live makes
/// an environment that looked healthy (or could not be judged) degraded,
/// with the verdict's reason, for as long as the recent evidence (the last
/// monitoring window's worth, [`crate::monitor::RecentCheck`]) still shows
/// it or cannot tell. Once the recent samples are back in line with the
/// baseline from before the go-live, health reflects now: healthy, saying
/// "recovered" and what it regressed on. Down stays down; a verdict about
/// another version than the one running changes nothing.
pub fn with_go_live_verdict(
    a: HealthAssessment,
    running: Option<&str>,
    verdict: Option<&crate::monitor::stage::StageVerdict>,
) -> HealthAssessment {
    use crate::monitor::stage::StageState;
    let Some(v) = verdict else { return a };
    let about_it = running == Some(v.version.as_str());
    let regression = v.verdict == StageState::Regression;
    if !(about_it
        && regression
        && matches!(
            a.health,
            Health::Healthy | Health::WarmingUp | Health::Unknown
        ))
    {
        return a;
    }
    match &v.recent {
        None => degraded(Comparison::SinceGoLive, v.reason.clone()),
        Some(r) => match r.state {
            StageState::Healthy => HealthAssessment {
                health: Health::Healthy,
                comparison: Comparison::SinceGoLive,
                detail: format!(
                    "recovered: {}; it regressed after going live ({})",
                    r.summary, v.reason
                ),
                warm_up: None,
            },
            StageState::Regression => degraded(
                Comparison::SinceGoLive,
                format!("{}; still: {}", v.reason, r.summary),
            ),
            StageState::InsufficientData => degraded(
                Comparison::SinceGoLive,
                format!(
                    "{}; whether it still is cannot be told yet ({})",
                    v.reason, r.summary
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests;
