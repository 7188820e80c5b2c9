//! What the engine reports: snapshots and events, shared by CLI and TUI.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Approval, DeployRecord, EnvState, Health, PromotionPlan, Version};
use crate::monitor::{BaselineSummary, Sample, Verdict};

/// One snapshot of every environment and the pending release.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub project: String,
    pub generated_at: DateTime<Utc>,
    pub actor: String,
    /// In pipeline order.
    pub environments: Vec<EnvStatus>,
    /// The promotion closest to production that would change something.
    pub pending: Option<PromotionPlan>,
    /// Why history could not be read, when it could not.
    pub store_error: Option<String>,
    /// What is wrong with the store when something is: a broken audit
    /// chain, a store file deleted or replaced under this process, tamper
    /// found on open, a read-only store (actions are then refused).
    pub integrity: Option<String>,
}

/// Metrics over the last step; each `None` where unknown.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub as_of: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnvStatus {
    pub name: String,
    pub production: bool,
    pub monitored: bool,
    pub version: Option<Version>,
    /// Why `version` is unknown, when it is.
    pub version_error: Option<String>,
    pub health: Health,
    pub checked_at: DateTime<Utc>,
    pub state: EnvState,
    pub state_since: Option<DateTime<Utc>>,
    pub metrics: MetricsSnapshot,
    pub metrics_error: Option<String>,
    /// The newest Go/No-Go recorded for the version it runs.
    pub approval: Option<Approval>,
    pub last_deploy: Option<DeployRecord>,
    /// What promoting this environment would ship, or why nothing can be.
    pub promotion: Option<PromotionPlan>,
    pub promotion_error: Option<String>,
}

/// Progress the engine reports while it acts; the TUI turns each into a `Msg`.
// Events are few per second; boxing the monitor variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    DeployStarted {
        env: String,
        version: Version,
        from: Option<Version>,
        rollback: bool,
    },
    /// Still waiting for the environment to report the new version.
    DeployWaiting {
        env: String,
        elapsed_s: f64,
        observed: Option<Version>,
    },
    DeployFinished {
        env: String,
        version: Version,
        ok: bool,
        detail: String,
    },
    MonitorStarted {
        env: String,
        version: Version,
        deploy_at: DateTime<Utc>,
        window_s: f64,
        baseline: Vec<Sample>,
    },
    MonitorSample {
        env: String,
        sample: Sample,
        verdict: Verdict,
        baseline: BaselineSummary,
    },
    MonitorFinished {
        env: String,
        verdict: Verdict,
    },
}
