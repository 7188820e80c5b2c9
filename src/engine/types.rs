//! What the engine reports: snapshots and events, shared by CLI and TUI.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::backends::deploy::Progress;
use crate::domain::health::Comparison;
use crate::domain::release::{Freeze, SchemaNotice};
use crate::domain::state::Drift;
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
    /// The promotion closest to production that would change something,
    /// with what it carries (commits, migrations, backup).
    pub pending: Option<Box<super::Pending>>,
    /// Why the pending release cannot be told, when no promotion closer to
    /// production could be planned (a stage's version or the store could
    /// not be read): then `pending` is null for want of facts, not because
    /// every stage runs what the stage before it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_unknown: Option<String>,
    /// Why history could not be read, when it could not.
    pub store_error: Option<String>,
    /// Since when a team store has been unreachable (reconnecting), when
    /// it is: every fact read from it (approvals, deploys, locks, windows)
    /// is unknown meanwhile, and actions that record are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_unreachable_since: Option<DateTime<Utc>>,
    /// What is wrong with the store when something is: a broken audit
    /// chain, a store file deleted or replaced under this process, tamper
    /// found on open, a read-only store (actions are then refused).
    pub integrity: Option<String>,
    /// Who else has a console open on this store (presence), oldest first.
    pub watching: Vec<crate::store::Presence>,
}

/// Metrics over the last step (lives with the metrics backends; re-exported).
pub use crate::backends::metrics::MetricsSnapshot;

#[derive(Clone, Debug, Serialize)]
pub struct EnvStatus {
    pub name: String,
    pub production: bool,
    pub monitored: bool,
    pub version: Option<Version>,
    /// Why `version` is unknown, when it is.
    pub version_error: Option<String>,
    /// healthy, degraded, down, pending or unknown: reachability and the
    /// metrics (against its own recent baseline, and for a pre-production
    /// stage against production). Pending: nothing failed, the reading
    /// is warming up (`warm_up` says why and since when).
    pub health: Health,
    /// Why, in one line, naming the comparison.
    pub health_detail: String,
    /// Which comparison decided `health`.
    pub health_basis: Comparison,
    /// Why `health` is pending, and since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_up: Option<crate::domain::health::WarmUp>,
    /// The version endpoint answered (reachability, on its own).
    pub reachable: bool,
    pub checked_at: DateTime<Utc>,
    pub state: EnvState,
    pub state_since: Option<DateTime<Utc>>,
    /// Who watches its monitoring window right now (a live owner:
    /// "alice (pid 4242 on build-7)"); `None` when nobody does.
    pub watcher: Option<String>,
    /// A monitored environment whose running version went live through a
    /// recorded promotion within the monitoring window, that nobody alive
    /// watches and whose window has not judged that deploy. A console that
    /// sees this starts the window for it (the engine's `watch` claims it
    /// atomically, so two consoles never both watch one deploy).
    pub unwatched: bool,
    /// It runs another version than shipdeck last deployed there: changed
    /// outside shipdeck.
    pub drift: Option<Drift>,
    /// Where rolling back would go now (the last known-good version), or
    /// why nowhere; `None` without any recorded deploy.
    pub rollback: Option<RollbackTarget>,
    pub metrics: MetricsSnapshot,
    pub metrics_error: Option<String>,
    /// Why there are no figures yet when nothing failed ("rates need two
    /// scrapes"): said as "no data yet: …", calmly, never as an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_note: Option<String>,
    /// This process's action in flight on it lost its deploy lock: when,
    /// to whom (one line). Set while the action runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_lost: Option<String>,
    /// The newest Go/No-Go recorded for the version it runs.
    pub approval: Option<Approval>,
    pub last_deploy: Option<DeployRecord>,
    /// The deploy backend's page of the last deploy (its workflow run,
    /// build or deployment), when the backend gave one.
    pub deploy_url: Option<String>,
    /// Why a Go from this console's actor for promoting this environment
    /// would be refused (`[policy] allow_self_approval = false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go_refusal: Option<crate::domain::Gate>,
    /// What promoting this environment would ship, or why nothing can be.
    pub promotion: Option<PromotionPlan>,
    pub promotion_error: Option<String>,
    /// Its last deploy or rollback has no known outcome and no live
    /// process runs it (its shipdeck killed or interrupted before the
    /// environment reported it): what it was and what to check, in one
    /// line. It may still be under way in its backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsettled: Option<String>,
    /// A canary environment's canary: `{version, weight, step, …}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::CanaryState>,
    /// What its promotion carries (commits, migrations, backup), from
    /// `[release] git`.
    pub release: Option<super::ReleaseFacts>,
    /// Rolling back now would cross database migrations: the schema stays,
    /// and the restore command to use.
    pub rollback_schema: Option<SchemaNotice>,
    /// Rolled back from a release whose migrations ran with its deploy
    /// (the release promoting would ship again): they stay, the database
    /// is ahead of the code — which migrations, in one line
    /// ([`crate::engine::schema_ahead`]).
    pub schema_ahead: Option<String>,
    /// The freeze window that holds for it now.
    pub freeze: Option<Freeze>,
    /// `strategy`, `rollback_plan` and, for blue-green, `slots`.
    #[serde(flatten)]
    pub revert: crate::domain::strategy::StrategyStatus,
    /// The newest monitoring window that ended on it, whoever ran it (as
    /// the store has it): what a console that did not run it shows.
    #[serde(skip)]
    pub last_window: Option<LastWindow>,
}

/// A monitoring window that ended, as recorded: what it judged and how.
#[derive(Clone, Debug, PartialEq)]
pub struct LastWindow {
    pub version: Version,
    /// When the judged deploy went live (the window's t = 0).
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub verdict: crate::domain::WindowVerdict,
    /// The verdict's one-line reason.
    pub reason: String,
}

/// Where rolling an environment back would go now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RollbackTarget {
    /// The last known-good version; `None` when there is none to go to.
    pub to: Option<Version>,
    /// One line: "v1.8.0 → v1.7.3, the last known-good version", or why not.
    pub detail: String,
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
    /// What the deploy backend says it is doing (a CI run's state, its
    /// current job and step, a review it waits for).
    DeployProgress {
        env: String,
        progress: Progress,
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
        /// What the baseline is, in words: "baseline: 1m before 14:00:00
        /// UTC, excluding the incident … (30 steps)".
        baseline_note: String,
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
    /// The deploy lock of the action in flight on `env` was lost (another
    /// holder took it, or it expired without a renewal the store took);
    /// the action goes on. `detail` is the whole line, env included.
    LockLost {
        env: String,
        detail: String,
    },
    /// The store went away (or came back) while a monitoring window runs;
    /// the window goes on and records what it could not when it can.
    /// `detail` is the whole line, env included.
    StoreOutage {
        env: String,
        detail: String,
    },
    /// What a monitoring window's metrics lack while it runs (a canary's
    /// track gone), and when it is back; the window counts such steps as
    /// gaps. `detail` is the whole line, env included.
    WindowNotice {
        env: String,
        detail: String,
    },
    /// A canary step is being judged: its weight, where it stands, the
    /// time left and the judge's verdict so far.
    CanaryStep {
        env: String,
        version: Version,
        weight: u8,
        step: usize,
        steps: usize,
        left_s: f64,
        verdict: Verdict,
        /// When the first step began: the origin of `step_t` and of the
        /// pairs' `t`, and what tells one canary run from the next.
        started: DateTime<Utc>,
        /// When this step's weight was set, seconds after `started`.
        step_t: f64,
        /// The metrics steps of both tracks read since the last event.
        pairs: Vec<crate::monitor::TrackPair>,
    },
}
