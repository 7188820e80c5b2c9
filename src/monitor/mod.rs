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
pub use trace::{ReplayReport, TraceError, parse, replay};
