//! Engine errors, each with the exit code SPEC §3 gives it.

use crate::backends::BackendError;
use crate::backends::metrics::MetricsError;
use crate::domain::{Gate, PlanError, Version};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown environment {name:?} (known: {known})")]
    UnknownEnv { name: String, known: String },
    #[error("{0}")]
    Usage(String),
    #[error("refused: {} ({})", gate.detail, gate.name)]
    Refused { gate: Gate },
    #[error("needs confirmation: {}; pass --yes to go ahead", warnings.iter().map(|g| g.detail.as_str()).collect::<Vec<_>>().join("; "))]
    NeedsConfirmation { warnings: Vec<Gate> },
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{env}: deploy of {version} not confirmed: {detail}")]
    DeployFailed {
        env: String,
        version: Version,
        detail: String,
    },
    /// The metrics source failed a monitoring window (its `[metrics]`
    /// unusable, its history unreadable): the source's own error, whose
    /// kind says whether waiting heals it ([`MetricsError::heals_by_waiting`]).
    #[error("{0}")]
    Metrics(MetricsError),
    /// The source answered, but too few steps of the baseline before the
    /// deploy are usable (NaN counts), or none has the environment's label
    /// while the source has others' series: no judgement can be made on
    /// it, and waiting does not change the past.
    #[error("the baseline of {env} ({plan}) from {from} is unusable: {why}")]
    NoBaseline {
        env: String,
        /// Which periods the baseline covers ([`crate::domain::baseline::BaselinePlan::describe`]).
        plan: String,
        /// The source, as [`crate::backends::metrics::MetricsSource::describe`] names it.
        from: String,
        why: String,
        /// What to fix: the numbers ([`MetricsFix::Data`]) or the
        /// environment's label ([`MetricsFix::Label`]).
        ///
        /// [`MetricsFix::Data`]: crate::backends::metrics::MetricsFix::Data
        /// [`MetricsFix::Label`]: crate::backends::metrics::MetricsFix::Label
        fix: crate::backends::metrics::MetricsFix,
    },
    /// A watched promote could not collect the baseline its window needs
    /// before deploying (a scrape source that failed or gave no usable
    /// step for the time it was given): nothing was deployed.
    #[error(
        "{env}: could not collect a baseline before deploying: {have} of the {need} steps it needs after {waited_s:.0} s from {from}: {why}; nothing deployed (fix the metrics source, or promote without --watch)",
        waited_s = waited.as_secs_f64()
    )]
    BaselineUncollected {
        env: String,
        /// The source, as [`crate::backends::metrics::MetricsSource::describe`] names it.
        from: String,
        have: usize,
        need: usize,
        waited: std::time::Duration,
        /// The source's last error, or why its answers were unusable.
        why: String,
    },
    /// The environment reports the new version, but the store would not
    /// take the record: the deploy happened all the same.
    #[error("{}", unrecorded_text(env, version, cause, owed.as_deref()))]
    Unrecorded {
        env: String,
        version: Version,
        /// Boxed: a store error beside two names would make every
        /// `Result<_, EngineError>` carry its size.
        cause: Box<StoreError>,
        /// The end of the action's audit record the store did not take,
        /// when that is all that is missing (a canary's rollback: weight
        /// 0, its outcome refused): a monitoring window writes it with its
        /// verdict, through the same retries.
        owed: Option<Box<OwedEnd>>,
    },
}

/// The end of an audit record that the store did not take after the action
/// ran, to be written when it does.
#[derive(Clone, Debug)]
pub struct OwedEnd {
    pub started: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub outcome: crate::domain::Outcome,
    pub detail: String,
}

/// What [`EngineError::Unrecorded`] says: what ran, what the store lacks,
/// and how the next run settles it.
fn unrecorded_text(
    env: &str,
    version: &Version,
    cause: &StoreError,
    owed: Option<&OwedEnd>,
) -> String {
    match owed {
        None => format!(
            "deployed {version} to {env}, but could not record it: {cause}; the next shipdeck run against this store records it from what {env} reports"
        ),
        Some(end) => format!(
            "rolled {env}'s canary back (its weight is 0, the stable track stays on {version}), but the store did not take the outcome ({}): {cause}; audit record #{} (rollback started) is left without outcome until the next shipdeck run against this store settles it from the canary's weight records: \"succeeded\" when a weight of 0% is recorded after it, else \"unknown\"",
            end.outcome.as_str(),
            end.started
        ),
    }
}

impl EngineError {
    /// 1 an outside system failed; 2 bad usage; 3 a gate refused.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::UnknownEnv { .. } | EngineError::Usage(_) => 2,
            EngineError::Refused { .. } | EngineError::NeedsConfirmation { .. } => 3,
            EngineError::Plan(p) => match p {
                PlanError::FirstStageNeedsVersion(_) => 2,
                PlanError::SourceUnknown { .. } => 1,
                PlanError::NothingToRollBack { .. }
                | PlanError::NeverRan { .. }
                | PlanError::AlreadyRunning { .. }
                | PlanError::NoKnownGood { .. }
                | PlanError::NotKnownGood { .. } => 3,
            },
            EngineError::Backend(_)
            | EngineError::Store(_)
            | EngineError::DeployFailed { .. }
            | EngineError::Unrecorded { .. }
            | EngineError::Metrics(_)
            | EngineError::NoBaseline { .. }
            | EngineError::BaselineUncollected { .. } => 1,
        }
    }
}
