//! The finish of a monitoring window: its verdict's writes (the window's
//! record, its audit record's end, a No-Go), the notification, the end of
//! the claim, the regression's response and the outcome.

use chrono::Utc;

use super::WatchOutcome;
use super::open::OpenWindow;
use super::record::{VerdictWrites, Written};
use super::sampling::Sampled;
use super::{refused_for_good, verdict_said};
use crate::domain::{EnvState, Outcome, WindowVerdict};
use crate::engine::{Engine, Event, EventSink};
use crate::monitor::VerdictKind;
use crate::store::MonitorRecord;

impl Engine {
    /// Write the verdict, end the claim, respond to a regression and say
    /// how the window ended.
    pub(super) async fn finish_window(
        &self,
        env: &str,
        w: OpenWindow,
        sampled: Sampled,
        events: &Option<EventSink>,
        emit: &(dyn Fn(Event) + Sync),
    ) -> WatchOutcome {
        let OpenWindow {
            idx,
            version,
            deploy_at,
            baseline_note,
            fallback,
            started,
            mut claim,
            ..
        } = w;
        let Sampled {
            verdict,
            claim_refused,
            superseded,
        } = sampled;
        let finished = Utc::now();
        // A superseded window judged nothing: never a regression.
        let regression = verdict.kind == VerdictKind::Regression && superseded.is_none();
        let record = MonitorRecord {
            seq: Some(started),
            env: env.to_string(),
            version: version.clone(),
            started_at: deploy_at,
            finished_at: Some(finished),
            verdict: match verdict.kind {
                _ if superseded.is_some() => WindowVerdict::Interrupted,
                VerdictKind::Regression => WindowVerdict::Regression,
                VerdictKind::Healthy => WindowVerdict::Healthy,
                VerdictKind::InsufficientData | VerdictKind::Collecting => {
                    WindowVerdict::InsufficientData
                }
            }
            .as_str()
            .into(),
            metric: verdict.metric.map(|m| m.as_str().to_string()),
            reason: format!("{}; {baseline_note}", verdict.reason),
        };
        let audit_outcome = match verdict.kind {
            _ if superseded.is_some() => Outcome::Unknown,
            VerdictKind::Healthy => Outcome::Succeeded,
            VerdictKind::Regression => Outcome::Failed,
            _ => Outcome::Unknown,
        };
        // The baseline note is the start record's ("monitoring window of …
        // for v; baseline …"): the end record says the verdict only, so
        // `history` does not show the note twice for one window.
        let audit_detail = match &superseded {
            Some(line) => line.clone(),
            None => verdict_said(&verdict),
        };
        // A release the window caught is blocked until someone records a
        // new Go for it: roll back, and it must not be re-promoted by reflex.
        let no_go = regression.then(|| crate::domain::Approval {
            seq: None,
            env: env.to_string(),
            version: version.clone(),
            decision: crate::domain::Decision::NoGo,
            actor: format!("{} (monitoring window)", self.inner.actor),
            at: Utc::now(),
            note: Some(format!("regression: {}", verdict.reason)),
        });
        let mut verdict_writes = VerdictWrites {
            record: &record,
            started,
            finished,
            outcome: audit_outcome,
            detail: &audit_detail,
            no_go: no_go.as_ref(),
            rollback: None,
            owed: None,
        };
        let mut written = Written::default();
        // A regression rolls back before any retry: its failed write is
        // settled (retried or said) after the rollback, with the rollback's
        // own records.
        let mut failed = self
            .write_verdict(&verdict_writes, &mut written)
            .await
            .err();
        let mut unrecorded = None;
        if !regression {
            unrecorded = self
                .settle_verdict(env, &verdict_writes, &mut written, failed.take(), emit)
                .await;
        }
        if regression {
            self.notify(
                crate::config::NotifyEvent::Regression,
                env,
                Some(&version),
                None,
                "regression",
                &verdict.reason,
            );
        }
        // Judged: the claim ends here (the rollback below takes the deploy lock).
        claim.finished = true;
        drop(claim);
        self.set_activity(env, regression.then_some(EnvState::Regression));
        emit(Event::MonitorFinished {
            env: env.to_string(),
            verdict: verdict.clone(),
        });
        let mut outcome = WatchOutcome {
            env: env.to_string(),
            version,
            deploy_at,
            verdict,
            baseline: baseline_note,
            rolled_back: None,
            rollback_error: None,
            unrecorded: None,
            claim_refused: claim_refused.as_ref().map(refused_for_good),
            superseded,
        };
        // Release safety before bookkeeping: a regression rolls back even
        // when its verdict is not recorded yet, and is recorded after.
        let mut rollback_unrecorded: Option<String> = None;
        if regression {
            rollback_unrecorded = self
                .respond_to_regression(
                    env,
                    idx,
                    &fallback,
                    &claim_refused,
                    &mut outcome,
                    &mut verdict_writes,
                    events,
                )
                .await;
        }
        // A rollback run while the store was unreachable is recorded after
        // the verdict, through the same retries: whether to retry is
        // decided by that write's own error (the verdict may have gone in
        // before the store dropped).
        if regression {
            if (verdict_writes.rollback.is_some() || verdict_writes.owed.is_some())
                && failed.is_none()
            {
                failed = self
                    .write_verdict(&verdict_writes, &mut written)
                    .await
                    .err();
            }
            unrecorded = self
                .settle_verdict(env, &verdict_writes, &mut written, failed, emit)
                .await;
            // The rollback ran (the canary's weight is 0) and stays told as
            // such: only its record is missing, when the retries gave up.
            if verdict_writes.owed.is_some()
                && !written.owed_done
                && unrecorded.is_some()
                && let Some(rec) = &outcome.rolled_back
            {
                rollback_unrecorded = Some(format!(
                    "the rollback to {} ran, but its outcome is not in the store",
                    rec.version
                ));
            }
        }
        outcome.unrecorded = match (unrecorded, rollback_unrecorded) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        outcome
    }
}
