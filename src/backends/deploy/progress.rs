//! What a deploy backend says while it works — one shape for every backend,
//! so the console draws "GitHub Actions run #4812: in progress, 1m12s —
//! deploy / migrate" and "Jenkins build #311: running, 0m40s" the same way,
//! and a run that waits on a human (a GitHub environment's required
//! reviewers) says so and can be answered from the console.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::call::took;
use crate::backends::BackendError;

/// One report of a deploy in flight. Every text in it has been
/// [cleaned](crate::text::clean) by the backend that made it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Progress {
    /// What runs: "GitHub Actions run #4812", "Jenkins build #311".
    pub what: String,
    /// Its state in the vendor's words, readable: "queued", "in progress",
    /// "running", "waiting".
    pub state: String,
    /// Seconds since the backend was asked to deploy.
    pub elapsed_s: f64,
    /// Where it is, when the vendor says: "deploy / migrate" (job / step).
    pub step: Option<String>,
    /// The run's or build's page.
    pub url: Option<String>,
    /// A decision it waits for, when it does.
    pub waiting: Option<Waiting>,
}

/// A human decision a deploy waits for inside the CI/CD system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// "waiting on a reviewer for environment production".
    pub prompt: String,
    /// Whether shipdeck's token may answer it (as far as the vendor says).
    pub can_answer: bool,
}

/// What a deploy's ready check reports as (see [`Progress::rolling_out`]).
pub const ROLLING_OUT: &str = "rolling out";

impl Progress {
    /// A deploy that returned while its rollout goes on, as its ready
    /// check sees it: "rolling out (ready check: still going, 40s) — 2 of
    /// 3 updated". `detail` is the check's last line, cleaned.
    pub fn rolling_out(state: &str, elapsed_s: f64, detail: Option<String>) -> Progress {
        Progress {
            what: ROLLING_OUT.into(),
            state: format!("ready check: {state}"),
            elapsed_s,
            step: detail,
            url: None,
            waiting: None,
        }
    }

    /// The line the console shows, with the elapsed time given (the
    /// console counts on between reports): "GitHub Actions run #4812: in
    /// progress, 1m12s — deploy / migrate"; a rollout followed by its
    /// ready check: "rolling out (ready check: still going, 40s)".
    pub fn line_at(&self, elapsed_s: f64) -> String {
        let took = took(Duration::from_secs_f64(elapsed_s.max(0.0)));
        let mut s = if self.what == ROLLING_OUT {
            format!("{} ({}, {took})", self.what, self.state)
        } else {
            format!("{}: {}, {took}", self.what, self.state)
        };
        if let Some(step) = &self.step {
            s.push_str(" — ");
            s.push_str(step);
        }
        if let Some(w) = &self.waiting {
            s.push_str(" — ");
            s.push_str(&w.prompt);
        }
        s
    }

    /// [`line_at`](Self::line_at) the time of the report.
    pub fn line(&self) -> String {
        self.line_at(self.elapsed_s)
    }
}

/// `p` with every text [cleaned](crate::text::clean): no secret a vendor
/// echoed back, no escape sequence from a job's or step's name.
pub(super) fn cleaned(p: Progress) -> Progress {
    use crate::text::clean;
    Progress {
        what: clean(&p.what),
        state: clean(&p.state),
        elapsed_s: p.elapsed_s,
        step: p.step.map(|s| clean(&s)),
        url: p.url.map(|u| clean(&u)),
        waiting: p.waiting.map(|w| Waiting {
            prompt: clean(&w.prompt),
            can_answer: w.can_answer,
        }),
    }
}

/// Where a backend reports its progress: the engine turns each report into
/// an event for the console and a log line.
pub type Report<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// A report that goes nowhere (a bench, a caller without a console).
pub fn ignore(_: Progress) {}

/// The answer a human gives to a deploy's [`Waiting`] decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub approve: bool,
    /// Said to the CI/CD system with the answer (a review comment, an
    /// approval summary).
    pub note: String,
}

impl Review {
    /// "approved" or "rejected".
    pub fn word(&self) -> &'static str {
        if self.approve { "approved" } else { "rejected" }
    }

    /// What is said to the CI/CD system with the answer: the note, trimmed,
    /// or "approved in shipdeck" / "rejected in shipdeck" when there is none.
    pub fn said(&self) -> String {
        match self.note.trim() {
            "" => format!("{} in shipdeck", self.word()),
            note => note.to_string(),
        }
    }
}

/// The decision a followed run waits on now (a review, a manual approval),
/// as the last poll saw it: shared by the backend's clones, so that a
/// [`Review`] answers the gate the run waits on, and cleared once answered
/// or the run moved on.
#[derive(Clone, Debug)]
pub(super) struct Pending<G>(Arc<Mutex<Option<G>>>);

impl<G: Clone> Pending<G> {
    pub fn new() -> Self {
        Pending(Arc::new(Mutex::new(None)))
    }

    pub fn set(&self, gate: Option<G>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = gate;
    }

    pub fn clear(&self) {
        self.set(None);
    }

    /// The gate waiting now, or an error from `backend` saying `nothing`.
    pub fn waiting(&self, backend: &str, nothing: &str) -> Result<G, BackendError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| BackendError::Command {
                backend: backend.to_string(),
                cause: nothing.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_one_line_with_the_step_and_what_it_waits_for() {
        let mut p = Progress {
            what: "GitHub Actions run #4812".into(),
            state: "in progress".into(),
            elapsed_s: 72.4,
            step: Some("deploy / migrate".into()),
            url: None,
            waiting: None,
        };
        assert_eq!(
            p.line(),
            "GitHub Actions run #4812: in progress, 1m12s — deploy / migrate"
        );
        p.step = None;
        p.state = "waiting".into();
        p.waiting = Some(Waiting {
            prompt: "waiting on a reviewer for environment production".into(),
            can_answer: true,
        });
        assert_eq!(
            p.line_at(80.0),
            "GitHub Actions run #4812: waiting, 1m20s — waiting on a reviewer for environment production"
        );
    }

    #[test]
    fn a_rollout_followed_by_its_ready_check_reads_as_one_line() {
        let p = Progress::rolling_out("still going", 40.2, None);
        assert_eq!(p.line(), "rolling out (ready check: still going, 40s)");
        let p = Progress::rolling_out("still going", 0.0, Some("2 of 3 updated".into()));
        assert_eq!(
            p.line_at(72.0),
            "rolling out (ready check: still going, 1m12s) — 2 of 3 updated"
        );
    }

    #[test]
    fn a_review_without_a_note_says_where_it_was_given() {
        let r = |approve, note: &str| Review {
            approve,
            note: note.into(),
        };
        assert_eq!(r(true, "  ").said(), "approved in shipdeck");
        assert_eq!(r(false, "").said(), "rejected in shipdeck");
        assert_eq!(r(false, " smoke test red \n").said(), "smoke test red");
    }

    #[test]
    fn a_pending_gate_is_shared_by_clones_and_answered_once() {
        let p: Pending<u32> = Pending::new();
        let clone = p.clone();
        assert!(matches!(
            p.waiting("b", "nothing waits"),
            Err(BackendError::Command { cause, .. }) if cause == "nothing waits"
        ));
        clone.set(Some(7));
        assert_eq!(p.waiting("b", "nothing waits").unwrap(), 7);
        p.clear();
        assert!(clone.waiting("b", "nothing waits").is_err());
    }
}
