//! Plain types and the rules of the safe release process (SPEC §1).
//!
//! No I/O, no async, no clock: the engine gathers what the rules need
//! (observed versions, recorded approvals and deploys, the time) and asks
//! these functions what is allowed.

pub mod baseline;
mod duration;
pub mod evidence;
pub mod health;
pub mod policy;
mod promotion;
pub mod release;
pub mod state;
pub mod strategy;
mod version;
mod window;

pub use duration::{DurationError, HumanDuration, clock};
pub use evidence::{Check, CheckState, PlanEvidence, Requirements, apply_evidence};
pub use promotion::{
    ApprovalRule, DeployRecord, Gate, GateSeverity, PlanError, PromotionInput, PromotionPlan,
    RollbackInput, RollbackPlan, StageInfo, plan_promotion, plan_rollback,
};
pub use state::{DeployKind, WindowVerdict};
pub use version::{Version, VersionError};
pub use window::{TimeWindow, WindowError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Health of an environment as last observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Degraded,
    Down,
    /// Nothing failed, but there is not enough yet to judge: the engine
    /// has only just started reading the metrics (rates need two scrapes,
    /// a baseline needs a few steps). Why and since when:
    /// [`health::WarmUp`]. Past the warm-up, no data is `Unknown`.
    WarmingUp,
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Down => "down",
            Health::WarmingUp => "warming_up",
            Health::Unknown => "unknown",
        }
    }
}

/// What is happening to an environment right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvState {
    Idle,
    Deploying,
    Monitoring,
    Regression,
    RollingBack,
    RolledBack,
    Failed,
    /// Nothing of this process or a live lock runs, but a deploy or
    /// rollback a killed shipdeck started has no outcome: it may still be
    /// under way in the deploy backend (never read as idle).
    Unsettled,
}

impl EnvState {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvState::Idle => "idle",
            EnvState::Deploying => "deploying",
            EnvState::Monitoring => "monitoring",
            EnvState::Regression => "regression",
            EnvState::RollingBack => "rolling_back",
            EnvState::RolledBack => "rolled_back",
            EnvState::Failed => "failed",
            EnvState::Unsettled => "unsettled",
        }
    }
}

/// A Go/No-Go decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Go,
    NoGo,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Go => "go",
            Decision::NoGo => "no_go",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "go" => Some(Decision::Go),
            "no_go" => Some(Decision::NoGo),
            _ => None,
        }
    }
}

/// A recorded approval: `decision` for shipping `version` to `env`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub env: String,
    pub version: Version,
    pub decision: Decision,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
    /// Where the store put this decision in its one order of everything
    /// it records (its audit record's id, a
    /// [`DeployRecord::seq`](crate::domain::DeployRecord::seq) alike):
    /// what orders it against deploys. `at` is dated by the clock of the
    /// machine that decided: for display only. `None` until recorded.
    #[serde(skip)]
    pub seq: Option<i64>,
}

/// What kind of action an audit record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Promote,
    Approve,
    Reject,
    Rollback,
    Monitor,
    Verdict,
    /// One step of a canary release: a weight set, a step judged, the
    /// canary stopped (weight to 0).
    Canary,
    /// A database backup taken before a migration release was deployed.
    Backup,
    /// An answer given from shipdeck to a deploy backend's own approval
    /// (a GitHub environment's required reviewers) while a deploy waits
    /// on it. Not a Go/No-Go: it gates nothing in shipdeck.
    Review,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Promote => "promote",
            ActionKind::Approve => "approve",
            ActionKind::Reject => "reject",
            ActionKind::Rollback => "rollback",
            ActionKind::Monitor => "monitor",
            ActionKind::Verdict => "verdict",
            ActionKind::Canary => "canary",
            ActionKind::Backup => "backup",
            ActionKind::Review => "review",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "promote" => ActionKind::Promote,
            "approve" => ActionKind::Approve,
            "reject" => ActionKind::Reject,
            "rollback" => ActionKind::Rollback,
            "monitor" => ActionKind::Monitor,
            "verdict" => ActionKind::Verdict,
            "canary" => ActionKind::Canary,
            "backup" => ActionKind::Backup,
            "review" => ActionKind::Review,
            _ => return None,
        })
    }
}

/// How an audited action ended. `Unknown` is what a record reads whose
/// process died between "started" and its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Started,
    Succeeded,
    Failed,
    Refused,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "started" => Outcome::Started,
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "refused" => Outcome::Refused,
            "unknown" => Outcome::Unknown,
            _ => return None,
        })
    }
}

/// One entry of the audit log as read back: the action and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: ActionKind,
    pub env: String,
    pub version: Option<Version>,
    pub from_version: Option<Version>,
    pub outcome: Outcome,
    pub detail: String,
    pub finished_at: Option<DateTime<Utc>>,
}
