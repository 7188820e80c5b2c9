//! The monitoring window and the regression detector: samples in, verdict
//! out; deterministic, no I/O. `replay` and the live window drive the same code.

use serde::{Deserialize, Serialize};

/// One scrape step. `t` is seconds relative to the deploy: `t <= 0` is the
/// baseline, `t > 0` the monitoring window. The step ends at `t`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: f64,
    pub requests: f64,
    pub errors: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Which signal a verdict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    ErrorRate,
    LatencyP50,
    LatencyP95,
    LatencyP99,
    Throughput,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ErrorRate => "error_rate",
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP95 => "latency_p95",
            Metric::LatencyP99 => "latency_p99",
            Metric::Throughput => "throughput",
        }
    }
}

/// Where the window stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Still gathering the baseline or the first window steps.
    Collecting,
    /// The source returned nothing usable lately: neither health nor regression.
    InsufficientData,
    Healthy,
    Regression,
}

impl VerdictKind {
    /// The kind in plain words, for humans (never the Rust name).
    pub fn label(self) -> &'static str {
        match self {
            VerdictKind::Collecting => "collecting",
            VerdictKind::InsufficientData => "insufficient data",
            VerdictKind::Healthy => "healthy",
            VerdictKind::Regression => "regression",
        }
    }
}

impl std::fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The detector's current judgement, explained in one line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub kind: VerdictKind,
    pub metric: Option<Metric>,
    /// `t` of the sample that decided a regression.
    pub detected_at: Option<f64>,
    pub reason: String,
}

/// The baseline of one signal, for drawing: centre, normal band, and the
/// level above which the detector would call it a regression (if it has one).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub center: f64,
    pub low: f64,
    pub high: f64,
    pub threshold: Option<f64>,
}

/// Baseline summaries per signal; `None` where the baseline had no data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineSummary {
    /// Errors per request (0.01 = 1%).
    pub error_rate: Option<Band>,
    pub p50_ms: Option<Band>,
    pub p95_ms: Option<Band>,
    pub p99_ms: Option<Band>,
    /// Requests per step.
    pub requests: Option<Band>,
}

pub mod canary;
pub mod detector;
pub mod eval;
pub mod stage;
pub mod stats;
pub mod trace;

pub use canary::{CanaryJudge, CanaryJudgeConfig, TrackPair};
pub use detector::{Detector, DetectorConfig};
pub use stage::{RecentCheck, StageState, StageVerdict};
pub use trace::{InvertedQuantiles, ReplayReport, TraceError, parse, parse_noting, replay};

/// What a baseline whose steps lack latency figures should say: a step
/// without traffic has no quantile (Prometheus answers NaN, read as no
/// data), and when that leaves fewer than `min` steps with a p95 the
/// latency cannot be judged against it. `None` when nothing is missing or
/// enough is left.
pub fn latency_gap_note(baseline: &[Sample], min: usize) -> Option<String> {
    let n = baseline.len();
    let k = baseline.iter().filter(|s| s.p95_ms.is_some()).count();
    (k < n && k < min).then(|| {
        format!(
            "latency from only {k} of its {n} steps (the others had no traffic to measure: no quantile), fewer than the {min} a latency judgement needs"
        )
    })
}

/// The one rule for a baseline with gaps — steps whose requests or errors
/// count was no number (Prometheus answering NaN/±Inf for a step of the
/// history): each is no data at its step, counted and said (`Ok(Some)`);
/// the baseline is unusable (`Err`, why) only when they leave fewer usable
/// steps than `cfg` needs to judge ([`DetectorConfig::baseline_needed`]).
/// `Ok(None)` without gaps.
pub fn baseline_gaps(baseline: &[Sample], cfg: &DetectorConfig) -> Result<Option<String>, String> {
    let n = baseline.len();
    let usable = baseline.iter().filter(|s| detector::is_data(s)).count();
    let bad = n - usable;
    if bad == 0 {
        return Ok(None);
    }
    let what = format!(
        "{bad} of {n} baseline step{} unusable (NaN count: a requests or errors count that is no number)",
        if n == 1 { "" } else { "s" }
    );
    let needed = cfg.baseline_needed();
    if usable < needed {
        return Err(format!(
            "{what}, leaving {usable} usable, fewer than the {needed} a judgement needs"
        ));
    }
    Ok(Some(what))
}

#[cfg(test)]
mod gap_tests {
    use super::*;

    fn s(p95: Option<f64>) -> Sample {
        Sample {
            t: 0.0,
            requests: if p95.is_some() { 10.0 } else { 0.0 },
            errors: 0.0,
            p50_ms: p95,
            p95_ms: p95,
            p99_ms: p95,
        }
    }

    fn gap() -> Sample {
        Sample {
            requests: f64::NAN,
            errors: f64::NAN,
            ..s(None)
        }
    }

    #[test]
    fn a_baseline_step_with_no_number_for_a_count_is_a_gap_said_not_a_failure() {
        let cfg = DetectorConfig::default();
        let mut b = vec![s(Some(100.0)); 178];
        b.insert(40, gap());
        b.insert(90, gap());
        assert_eq!(
            baseline_gaps(&b, &cfg).unwrap().as_deref(),
            Some(
                "2 of 180 baseline steps unusable (NaN count: a requests or errors count that is no number)"
            )
        );
        assert_eq!(baseline_gaps(&b[2..40], &cfg), Ok(None));
        // Too few usable steps left: the detector's own minimum (5).
        let few = [vec![s(Some(1.0)); 4], vec![gap(); 3]].concat();
        assert_eq!(
            baseline_gaps(&few, &cfg).unwrap_err(),
            "3 of 7 baseline steps unusable (NaN count: a requests or errors count that is no number), leaving 4 usable, fewer than the 5 a judgement needs"
        );
        let enough = [vec![s(Some(1.0)); 5], vec![gap(); 3]].concat();
        assert!(baseline_gaps(&enough, &cfg).unwrap().is_some());
    }

    #[test]
    fn a_baseline_left_with_too_few_latency_steps_says_so() {
        let mut b = vec![s(Some(100.0)); 3];
        b.extend(vec![s(None); 27]);
        assert_eq!(
            latency_gap_note(&b, 5).as_deref(),
            Some(
                "latency from only 3 of its 30 steps (the others had no traffic to measure: no quantile), fewer than the 5 a latency judgement needs"
            )
        );
        // Enough left, or nothing missing: nothing to say.
        b.extend(vec![s(Some(90.0)); 2]);
        assert_eq!(latency_gap_note(&b, 5), None);
        assert_eq!(latency_gap_note(&[s(Some(1.0)); 2], 5), None);
    }
}
