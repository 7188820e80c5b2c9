//! A regression's response: the automatic rollback and what it falls back
//! to when the store is unreachable (a rollback without it), refuses for
//! good (none), or would not take the record of one that ran (a canary's
//! weight already 0).

use chrono::Utc;

use super::record::VerdictWrites;
use super::{WatchOutcome, refused_for_good};
use crate::domain::{DeployRecord, EnvState, Version};
use crate::engine::{Engine, EngineError, EventSink};
use crate::store::StoreError;

impl Engine {
    /// Roll back the regression in `outcome` when `auto_rollback` is set:
    /// `outcome.rolled_back` or `outcome.rollback_error` says how it went,
    /// a rollback run without the store goes into `verdict_writes`. Returns
    /// a rollback that ran but whose record the store would not take.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn respond_to_regression(
        &self,
        env: &str,
        idx: usize,
        fallback: &Option<Version>,
        claim_refused: &Option<StoreError>,
        outcome: &mut WatchOutcome,
        verdict_writes: &mut VerdictWrites<'_>,
        events: &Option<EventSink>,
    ) -> Option<String> {
        // A rollback that ran but whose record the store would not take.
        let mut rollback_unrecorded: Option<String> = None;
        if !self.inner.config.monitor.auto_rollback {
            return rollback_unrecorded;
        }
        if let Some(e) = claim_refused {
            // No claim, no lock: a rollback now could race a deploy by
            // someone the store does not refuse.
            outcome.rollback_error = Some(format!(
                "not rolled back automatically: {}; roll back by hand (`shipdeck rollback {env}` once the store is fixed, or through the deploy system itself)",
                refused_for_good(e)
            ));
            return rollback_unrecorded;
        }
        self.set_activity(env, None);
        // A canary's outcome the store does not take is the window's to
        // write, with its verdict (no retries of the rollback's own).
        let tried = self
            .rollback_owing(env, None, events.clone(), false, true)
            .await;
        // Only a store that cannot be reached: a refusal, a held lock or
        // a tampered chain still stops the rollback, as it says.
        let res = match (tried, fallback) {
            (Err(EngineError::Store(e @ StoreError::Unreachable { .. })), Some(to))
                if e.heals_by_waiting() =>
            {
                let offline = self
                    .rollback_unreachable(idx, to, &outcome.version, events)
                    .await;
                let res = offline.result.clone().map_err(|(_, _, e)| e);
                verdict_writes.rollback = Some(offline);
                res
            }
            // A store that refuses for good: the rollback needs the
            // deploy lock and its audit record there, and a rollback
            // without them could race a deploy others can still make.
            // (A store error after acting is `Unrecorded`, below: these
            // are refusals before anything was rolled back.)
            (Err(EngineError::Store(e)), _) if !e.heals_by_waiting() => Err(format!(
                "not rolled back: {}; roll back once the store is fixed (`shipdeck rollback {env}`) or through the deploy system itself",
                refused_for_good(&e)
            )),
            // Rolled back (a canary's weight is 0, the stable track
            // redeployed), but the store would not take its record. When
            // only its outcome is missing (a canary's), that is written
            // with the verdict, through the same retries (see
            // `finish_window`); else it is said as it is.
            (
                Err(EngineError::Unrecorded {
                    version: to,
                    cause,
                    owed,
                    ..
                }),
                _,
            ) => {
                match owed {
                    Some(end) => verdict_writes.owed = Some(*end),
                    None => {
                        rollback_unrecorded = Some(format!(
                            "the rollback to {to} ran, but the store would not take its record: {cause}"
                        ))
                    }
                }
                Ok(DeployRecord {
                    seq: None,
                    env: env.to_string(),
                    version: to,
                    from_version: Some(outcome.version.clone()),
                    at: Utc::now(),
                    actor: self.inner.actor.clone(),
                    kind: crate::domain::DeployKind::Rollback,
                    url: None,
                })
            }
            (r, _) => r.map_err(|e| e.to_string()),
        };
        match res {
            Ok(rec) => outcome.rolled_back = Some(rec),
            Err(e) => {
                self.set_activity(env, Some(EnvState::Regression));
                outcome.rollback_error = Some(e);
            }
        }
        rollback_unrecorded
    }
}
