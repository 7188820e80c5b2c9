//! Everything that can happen to the console (`Msg`) and everything the
//! console asks the outside world to do (`Effect`).
//!
//! `update` turns one `Msg` into state changes and a list of `Effect`s; the
//! app runs each effect as a tokio task that answers with a `Msg`.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};

use crate::domain::{Approval, AuditEntry, Decision, DeployRecord, PromotionPlan, Version};
use crate::engine::{Event, Status};

/// The engine call an environment is busy with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Promote,
    Approve,
    Reject,
    Rollback,
    Watch,
    /// Answering a review the deploy backend waits for.
    Review,
}

impl TaskKind {
    pub fn verb(self) -> &'static str {
        match self {
            TaskKind::Promote => "promote",
            TaskKind::Approve => "approve",
            TaskKind::Reject => "reject",
            TaskKind::Rollback => "roll back",
            TaskKind::Watch => "monitoring window",
            TaskKind::Review => "review answer",
        }
    }
}

/// What a finished engine call reported.
#[derive(Clone, Debug, PartialEq)]
pub enum Done {
    Deployed(DeployRecord),
    Recorded(Approval),
    /// The monitoring window ended; one line saying how.
    Watched(String),
    /// Someone else (another console, a `watch`) holds the window: who.
    WatchedElsewhere(String),
    /// The deploy backend took the answer to its review: what was said.
    Reviewed(String),
}

/// Why an engine call did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The engine's one-line reason.
    pub reason: String,
    /// A gate refused it (exit code 3) rather than an outside system failing.
    pub refused: bool,
    /// Whether waiting heals it: when a failed window is tried again.
    pub cause: crate::engine::rewatch::Cause,
    /// A window caught a regression that nothing rolled back (its
    /// automatic rollback failed): the console raises the alarm.
    pub caught: bool,
}

// A status snapshot is the big variant; a message is moved a few times per
// second at most, so boxing it would buy nothing but noise at every sender.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// A click or a wheel turn (only when `[ui] mouse` is on).
    Mouse(MouseEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    Resize(u16, u16),
    /// The clock: the only way time enters the state.
    Tick(DateTime<Utc>),
    StatusLoaded(Result<Status, String>),
    HistoryLoaded(Result<Vec<AuditEntry>, String>),
    /// Progress reported by the engine while it acts.
    Engine(Event),
    /// Someone (another console, a CLI, this one) recorded something in
    /// the store: read the status again now rather than at the next refresh.
    StoreChanged,
    /// Another process holds the store: this process waits for it (up to
    /// [`crate::store::BUSY_WAIT`]), or the wait ran out (`gave_up`).
    StoreBusy {
        path: String,
        gave_up: bool,
    },
    /// The wait for the store at `path` is over: it came free, or gave up.
    StoreWaitOver {
        path: String,
        came_free: bool,
    },
    ActionDone {
        env: String,
        kind: TaskKind,
        result: Result<Done, Failure>,
    },
    /// The engine's plan for promoting a version chosen in the picker.
    PlanLoaded {
        env: String,
        version: Version,
        result: Result<PromotionPlan, Failure>,
    },
}

/// Work for the app to start. Each engine call answers with
/// `Msg::ActionDone` (or `StatusLoaded` / `HistoryLoaded`).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    LoadStatus,
    LoadHistory {
        limit: usize,
    },
    /// Ship exactly what the dialog showed: `version` from the stage
    /// `from`, despite the warning gates named in `accepted`.
    Promote {
        env: String,
        version: Version,
        from: Option<String>,
        accepted: Vec<String>,
        /// Why the engineer breaks the freeze that holds (audited).
        break_freeze: Option<String>,
    },
    /// Plan the promotion of an explicit version (gates checked, nothing done).
    Plan {
        env: String,
        version: Version,
    },
    /// Record `decision` about exactly the `version` the dialog showed.
    Approve {
        env: String,
        version: Version,
        decision: Decision,
        note: Option<String>,
    },
    Rollback {
        env: String,
        to: Option<Version>,
    },
    Watch {
        env: String,
    },
    /// Answer the review the deploy of `version` to `env` waits for in its
    /// CI/CD system (a GitHub environment's required reviewers).
    Review {
        env: String,
        version: Version,
        approve: bool,
        note: Option<String>,
    },
    /// Stop the monitoring window task of `env` (the engineer rolls back by hand).
    CancelWatch {
        env: String,
    },
    /// Follow this process's wait for the store at `path` (another process
    /// holds it) until it is over: `Msg::StoreWaitOver`.
    AwaitStore {
        path: String,
    },
    Quit,
}
