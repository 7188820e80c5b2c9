//! The approval stage's own evidence (SPEC §7 `stage_verdict`): the same
//! detector the monitoring window uses, run on the stage's metrics since the
//! pending version went live there against its baseline from before.
//!
//! Pure: the engine reads the samples (the store, or the metrics source's
//! own history) and the time; this module judges and words the verdict.
//! A stage whose data cannot answer — the go-live time unknown, a thin
//! baseline, too little time since the deploy — is `insufficient_data`,
//! never healthy: the `healthy_stage` gate blocks on it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::stats::{fmt_duration, fmt_ms, fmt_pct, median};
use super::{Band, BaselineSummary, Detector, DetectorConfig, Metric, Sample, VerdictKind};

/// The longest stretch since the go-live that is judged (the monitoring
/// window's own limit): a release live for longer is judged on its first
/// 24 hours.
pub const MAX_JUDGED_S: f64 = 24.0 * 3600.0;

/// What the stage's own data says about the version it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    Healthy,
    Regression,
    InsufficientData,
}

impl StageState {
    pub fn label(self) -> &'static str {
        match self {
            StageState::Healthy => "healthy",
            StageState::Regression => "regression",
            StageState::InsufficientData => "insufficient data",
        }
    }
}

/// The verdict on the approval stage (`status --json` `pending.stage_verdict`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageVerdict {
    pub verdict: StageState,
    /// One line: "staging since v1.8.0: error rate 3.9% vs 0.3% before
    /// (12x) — regression".
    pub reason: String,
    /// The stage judged.
    pub stage: String,
    /// The version it runs (the pending one).
    pub version: String,
    /// When the version went live there, when known.
    pub since: Option<DateTime<Utc>>,
    /// The detector's own words and the baseline it used.
    pub detail: String,
    /// For a regression, whether it is still there: the same detector on
    /// the last monitoring window's worth of samples against the same
    /// baseline. `None` when the version has not been live for longer than
    /// that (the verdict itself is then about the recent samples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent: Option<RecentCheck>,
}

/// The regression judged again on the recent samples only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecentCheck {
    /// `Regression`: still there; `Healthy`: back in line with before;
    /// `InsufficientData`: too few recent samples to tell.
    pub state: StageState,
    /// One line: "error rate 0.50% vs 0.48% before over the last 30m".
    pub summary: String,
}

impl StageVerdict {
    /// A stage whose data cannot answer, and why.
    pub fn insufficient(stage: &str, version: &str, why: &str) -> StageVerdict {
        StageVerdict {
            verdict: StageState::InsufficientData,
            reason: format!("{stage} since {version}: {why} — insufficient data"),
            stage: stage.to_string(),
            version: version.to_string(),
            since: None,
            detail: why.to_string(),
            recent: None,
        }
    }
}

/// Everything [`judge_stage`] needs, gathered by the engine.
pub struct StageInput<'a> {
    pub stage: &'a str,
    pub version: &'a str,
    /// When the version went live on the stage.
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// The stage's samples before `since` (`t <= 0`), oldest first.
    pub baseline: &'a [Sample],
    /// The stage's samples after `since` (`t > 0`, seconds since it), oldest first.
    pub window: &'a [Sample],
    /// What the baseline was, in words (`BaselinePlan::describe`).
    pub baseline_note: &'a str,
    /// The detector's settings (`MonitorConfig::detector_config`); its
    /// window is set here to the time judged.
    pub detector: DetectorConfig,
}

/// Run the detector on the stage's data since the go-live and word the verdict.
pub fn judge_stage(i: &StageInput<'_>) -> StageVerdict {
    let elapsed = (i.now - i.since).num_milliseconds() as f64 / 1000.0;
    let judged = elapsed.clamp(0.0, MAX_JUDGED_S);
    let mut cfg = i.detector.clone();
    cfg.window_s = judged.max(1.0);
    let mut d = Detector::new(cfg);
    for s in i.baseline.iter().filter(|s| s.t <= 0.0) {
        d.push(*s);
    }
    let mut fed = Vec::new();
    for s in i.window.iter().filter(|s| s.t > 0.0 && s.t <= judged) {
        d.push(*s);
        fed.push(*s);
    }
    let v = d.verdict().clone();
    let state = match v.kind {
        VerdictKind::Regression => StageState::Regression,
        VerdictKind::Healthy => StageState::Healthy,
        VerdictKind::Collecting | VerdictKind::InsufficientData => StageState::InsufficientData,
    };
    let usable = |s: &&Sample| s.requests.is_finite() && s.errors.is_finite();
    let base: Vec<&Sample> = i.baseline.iter().filter(usable).collect();
    let before = d.baseline();
    let win: Vec<&Sample> = fed.iter().filter(usable).collect();
    let summary = match state {
        StageState::InsufficientData => {
            let why = v
                .reason
                .strip_prefix("insufficient data: ")
                .unwrap_or(&v.reason);
            if fed.is_empty() {
                format!(
                    "no metrics since it went live {} ago",
                    fmt_duration(elapsed)
                )
            } else {
                format!("{why} (live for {})", fmt_duration(elapsed))
            }
        }
        StageState::Regression => compare(&before, &win, v.metric),
        StageState::Healthy => compare(&before, &win, None),
    };
    let summary = if summary.is_empty() {
        v.reason.clone()
    } else {
        summary
    };
    let cut = if elapsed > MAX_JUDGED_S {
        format!("; judged on its first {}", fmt_duration(MAX_JUDGED_S))
    } else {
        String::new()
    };
    let recent = (state == StageState::Regression)
        .then(|| judge_recent(i, elapsed, v.metric))
        .flatten();
    StageVerdict {
        recent,
        verdict: state,
        reason: format!(
            "{} since {}: {summary} — {}",
            i.stage,
            i.version,
            state.label()
        ),
        stage: i.stage.to_string(),
        version: i.version.to_string(),
        since: Some(i.since),
        detail: format!(
            "{}; live since {} UTC ({} ago){cut}; {} ({} step{})",
            if v.reason.starts_with(v.kind.label()) {
                v.reason.clone()
            } else {
                format!("{}: {}", v.kind.label(), v.reason)
            },
            i.since.format("%Y-%m-%d %H:%M:%S"),
            fmt_duration(elapsed),
            i.baseline_note,
            base.len(),
            if base.len() == 1 { "" } else { "s" }
        ),
    }
}

/// The detector again, on the last monitoring window's worth of samples
/// since the go-live (`detector.window_s`, shifted to start at 0, with no
/// warm-up: it is not a fresh deploy) against the same baseline: whether a
/// regression found since the go-live is still there now. `None` while the
/// version has not been live for longer than that span.
fn judge_recent(i: &StageInput<'_>, elapsed: f64, metric: Option<Metric>) -> Option<RecentCheck> {
    let span = i.detector.window_s;
    if span.is_nan() || span <= 0.0 || elapsed <= span {
        return None;
    }
    let from = elapsed - span;
    let mut cfg = i.detector.clone();
    cfg.window_s = span;
    cfg.warmup_s = 0.0;
    let mut d = Detector::new(cfg);
    for s in i.baseline.iter().filter(|s| s.t <= 0.0) {
        d.push(*s);
    }
    let mut fed = Vec::new();
    for s in i.window.iter().filter(|s| s.t > from && s.t <= elapsed) {
        let shifted = Sample {
            t: s.t - from,
            ..*s
        };
        d.push(shifted);
        fed.push(shifted);
    }
    let v = d.verdict().clone();
    let usable = |s: &&Sample| s.requests.is_finite() && s.errors.is_finite();
    let win: Vec<&Sample> = fed.iter().filter(usable).collect();
    let state = match v.kind {
        // A regression is never taken back on a few scattered samples: the
        // recent ones must cover the window as the source's steps allow.
        _ if !covers(&win, span, source_step(i.baseline)) => StageState::InsufficientData,
        VerdictKind::Regression => StageState::Regression,
        VerdictKind::Healthy => StageState::Healthy,
        VerdictKind::Collecting | VerdictKind::InsufficientData => StageState::InsufficientData,
    };
    let words = match state {
        StageState::Regression => compare(&d.baseline(), &win, v.metric.or(metric)),
        StageState::Healthy => compare(&d.baseline(), &win, metric),
        StageState::InsufficientData => String::new(),
    };
    let summary = if words.is_empty() {
        format!("{} over the last {}", v.reason, fmt_duration(span))
    } else {
        format!("{words} over the last {}", fmt_duration(span))
    };
    Some(RecentCheck { state, summary })
}

/// The metrics source's step, as the baseline's samples are spaced (their
/// median spacing); none with fewer than two samples.
fn source_step(baseline: &[Sample]) -> Option<f64> {
    let mut gaps: Vec<f64> = baseline
        .windows(2)
        .map(|w| w[1].t - w[0].t)
        .filter(|g| g.is_finite() && *g > 0.0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_by(f64::total_cmp);
    Some(gaps[gaps.len() / 2])
}

/// Whether samples at `t` in (0, span] cover the span: no stretch without
/// one (the span's ends included) longer than a fifth of it, or than one
/// and a half of the source's steps when those are coarser.
fn covers(win: &[&Sample], span: f64, step: Option<f64>) -> bool {
    if win.is_empty() {
        return false;
    }
    let allowed = (span / 5.0).max(1.5 * step.unwrap_or(0.0));
    let mut last = 0.0;
    for s in win {
        if s.t - last > allowed {
            return false;
        }
        last = s.t;
    }
    span - last <= allowed
}

/// "error rate 3.9% vs 0.3% before (12x)": the window since the go-live
/// against the baseline as the detector summarised it; for `metric` that
/// signal only, without one the error rate and the p95 latency.
fn compare(before: &BaselineSummary, win: &[&Sample], metric: Option<Metric>) -> String {
    let (e, n) = win
        .iter()
        .fold((0.0, 0.0), |(e, n), s| (e + s.errors, n + s.requests));
    let lat = |q: fn(&Sample) -> Option<f64>| {
        let v: Vec<f64> = win
            .iter()
            .filter_map(|s| q(s))
            .filter(|x| x.is_finite())
            .collect();
        median(&v)
    };
    let errors = || match (n > 0.0, before.error_rate) {
        (true, Some(b)) => Some(format!(
            "error rate {} vs {} before{}",
            fmt_pct(e / n),
            fmt_pct(b.center),
            times(e / n, b.center)
        )),
        _ => None,
    };
    let latency = |name: &str, q: fn(&Sample) -> Option<f64>, b: Option<Band>| match (lat(q), b) {
        (Some(w), Some(b)) => Some(format!(
            "{name} {} vs {} before{}",
            fmt_ms(w),
            fmt_ms(b.center),
            times(w, b.center)
        )),
        _ => None,
    };
    let parts: Vec<Option<String>> = match metric {
        Some(Metric::ErrorRate) => vec![errors()],
        Some(Metric::LatencyP50) => vec![latency("p50", |s| s.p50_ms, before.p50_ms)],
        Some(Metric::LatencyP95) => vec![latency("p95", |s| s.p95_ms, before.p95_ms)],
        Some(Metric::LatencyP99) => vec![latency("p99", |s| s.p99_ms, before.p99_ms)],
        Some(Metric::Throughput) => vec![match (win.is_empty(), before.requests) {
            (false, Some(b)) => Some(format!(
                "traffic {:.0} vs {:.0} requests a step before",
                n / win.len() as f64,
                b.center
            )),
            _ => None,
        }],
        None => vec![errors(), latency("p95", |s| s.p95_ms, before.p95_ms)],
    };
    parts.into_iter().flatten().collect::<Vec<_>>().join(", ")
}

/// " (12x)" for a rise of at least 1.5x, else nothing.
fn times(now: f64, before: f64) -> String {
    if before <= 0.0 || now < before * 1.5 {
        return String::new();
    }
    let k = now / before;
    if k >= 10.0 {
        format!(" ({k:.0}x)")
    } else {
        format!(" ({k:.1}x)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    /// 10 s steps of 1,000 requests with `rate` errors and `p95` ms, a
    /// little deterministic noise.
    fn steps(from: i64, to: i64, rate: f64, p95: f64) -> Vec<Sample> {
        (0..)
            .map(|k| from + 10 * k)
            .take_while(|t| *t <= to)
            .enumerate()
            .map(|(k, t)| {
                let wiggle = [0.9, 1.1, 1.0, 0.95, 1.05][k % 5];
                Sample {
                    t: t as f64,
                    requests: 1000.0,
                    errors: (1000.0 * rate * wiggle).round(),
                    p50_ms: Some(p95 / 3.0 * wiggle),
                    p95_ms: Some(p95 * wiggle),
                    p99_ms: Some(p95 * 1.6 * wiggle),
                }
            })
            .collect()
    }

    fn input<'a>(base: &'a [Sample], win: &'a [Sample], live_s: i64) -> StageInput<'a> {
        StageInput {
            stage: "staging",
            version: "v1.8.0",
            since: at(0),
            now: at(live_s),
            baseline: base,
            window: win,
            baseline_note: "baseline: 30m before 14:00:00 UTC",
            detector: DetectorConfig::default(),
        }
    }

    #[test]
    fn a_stage_whose_error_rate_rose_is_a_regression_said_in_one_line() {
        let base = steps(-1800, 0, 0.003, 120.0);
        let win = steps(10, 600, 0.039, 125.0);
        let v = judge_stage(&input(&base, &win, 600));
        assert_eq!(v.verdict, StageState::Regression, "{v:?}");
        assert!(
            v.reason
                .starts_with("staging since v1.8.0: error rate 3.9% vs 0.30% before (13x)"),
            "{}",
            v.reason
        );
        assert!(v.reason.ends_with("— regression"), "{}", v.reason);
        assert!(v.detail.contains("baseline: 30m before"), "{}", v.detail);
        assert_eq!(v.since, Some(at(0)));
    }

    #[test]
    fn a_regression_that_ended_is_judged_again_on_the_last_window() {
        // Live for 2 h with the default 30 min window: bad for its first
        // 20 minutes, back to the baseline since.
        let base = steps(-1800, 0, 0.003, 120.0);
        let mut win = steps(10, 1200, 0.039, 125.0);
        win.extend(steps(1210, 7200, 0.003, 120.0));
        let v = judge_stage(&input(&base, &win, 7200));
        assert_eq!(v.verdict, StageState::Regression, "{v:?}");
        let r = v
            .recent
            .clone()
            .expect("judged again on the recent samples");
        assert_eq!(r.state, StageState::Healthy, "{r:?}");
        assert!(r.summary.ends_with("over the last 30m"), "{}", r.summary);
        // Still bad at the end: still a regression now.
        let bad = steps(10, 7200, 0.039, 125.0);
        let v = judge_stage(&input(&base, &bad, 7200));
        let r = v.recent.expect("judged again");
        assert_eq!(r.state, StageState::Regression, "{r:?}");
        assert!(r.summary.contains("error rate 3.9%"), "{}", r.summary);
        // Nothing recent to judge: it cannot tell.
        let early = steps(10, 1200, 0.039, 125.0);
        let v = judge_stage(&input(&base, &early, 7200));
        assert_eq!(
            v.recent.map(|r| r.state),
            Some(StageState::InsufficientData)
        );
        // One recent sample (a single `status` scraped it, nothing since)
        // does not take a regression back, nor does a window half empty.
        let mut one = early.clone();
        one.extend(steps(7190, 7200, 0.003, 120.0));
        let mut half = early.clone();
        half.extend(steps(6300, 7200, 0.003, 120.0));
        for (what, win) in [("one sample", one), ("half the window", half)] {
            let v = judge_stage(&input(&base, &win, 7200));
            assert_eq!(
                v.recent.map(|r| r.state),
                Some(StageState::InsufficientData),
                "{what}"
            );
        }
        // Live for less than a window: the verdict is already about now.
        let v = judge_stage(&input(&base, &steps(10, 600, 0.039, 125.0), 600));
        assert_eq!(v.recent, None);
    }

    #[test]
    fn a_stage_like_its_baseline_is_healthy() {
        let base = steps(-1800, 0, 0.003, 120.0);
        let win = steps(10, 900, 0.003, 121.0);
        let v = judge_stage(&input(&base, &win, 900));
        assert_eq!(v.verdict, StageState::Healthy, "{v:?}");
        assert!(
            v.reason.contains("error rate") && v.reason.contains("p95"),
            "{}",
            v.reason
        );
        assert!(v.reason.ends_with("— healthy"), "{}", v.reason);
    }

    #[test]
    fn a_slower_stage_is_a_latency_regression() {
        let base = steps(-1800, 0, 0.003, 120.0);
        let win = steps(10, 600, 0.003, 340.0);
        let v = judge_stage(&input(&base, &win, 600));
        assert_eq!(v.verdict, StageState::Regression, "{v:?}");
        // Whichever quantile decided, it is named with its rise.
        assert!(
            v.reason.starts_with("staging since v1.8.0: p") && v.reason.contains("before (2.8x)"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn without_a_baseline_it_is_insufficient_data_and_says_why() {
        let win = steps(10, 600, 0.003, 120.0);
        let v = judge_stage(&input(&[], &win, 600));
        assert_eq!(v.verdict, StageState::InsufficientData);
        assert!(
            v.reason.contains("baseline has 0 usable steps"),
            "{}",
            v.reason
        );
        assert!(v.reason.ends_with("— insufficient data"), "{}", v.reason);
    }

    #[test]
    fn too_soon_after_the_deploy_is_insufficient_data_not_healthy() {
        let base = steps(-1800, 0, 0.003, 120.0);
        let win = steps(10, 20, 0.003, 120.0);
        let v = judge_stage(&input(&base, &win, 20));
        assert_eq!(v.verdict, StageState::InsufficientData, "{v:?}");
        assert!(v.reason.contains("warm-up"), "{}", v.reason);
        // And with no window sample at all.
        let v = judge_stage(&input(&base, &[], 300));
        assert_eq!(v.verdict, StageState::InsufficientData);
        assert!(
            v.reason.contains("no metrics since it went live 300s ago")
                || v.reason.contains("no metrics since it went live 5m ago"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn gaps_since_the_deploy_are_insufficient_data() {
        let base = steps(-1800, 0, 0.003, 120.0);
        let mut win = steps(10, 100, 0.003, 120.0);
        for s in steps(110, 300, 0.0, 0.0) {
            win.push(Sample {
                requests: f64::NAN,
                errors: f64::NAN,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
                ..s
            });
        }
        let v = judge_stage(&input(&base, &win, 300));
        assert_eq!(v.verdict, StageState::InsufficientData, "{v:?}");
        assert!(v.reason.contains("no metrics for"), "{}", v.reason);
    }

    #[test]
    fn a_release_live_for_days_is_judged_on_its_first_day() {
        let base = steps(-1800, 0, 0.003, 120.0);
        let win = steps(10, 3600, 0.003, 120.0);
        let v = judge_stage(&input(&base, &win, 3 * 86_400));
        assert!(
            v.detail.contains("judged on its first 24h00m"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn the_unknown_go_live_is_insufficient_data_with_the_reason() {
        let v = StageVerdict::insufficient(
            "staging",
            "v1.8.0",
            "shipdeck recorded no deploy of v1.8.0 to staging, so when it went live is unknown",
        );
        assert_eq!(v.verdict, StageState::InsufficientData);
        assert_eq!(
            v.reason,
            "staging since v1.8.0: shipdeck recorded no deploy of v1.8.0 to staging, so when it went live is unknown — insufficient data"
        );
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["verdict"], "insufficient_data");
    }
}
