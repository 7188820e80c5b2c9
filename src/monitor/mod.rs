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
