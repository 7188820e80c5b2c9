//! What a finished monitoring window writes (its record, the end of its
//! audit record, a No-Go, a rollback run without the store), written in
//! order and retried through a store outage; and the rollback a window runs
//! while the store is unreachable.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{outage_for, refused_for_good};
use crate::domain::{ActionKind, DeployRecord, EnvState, Outcome, Version};
use crate::engine::{Engine, Event, EventSink, strategy};
use crate::store::{MonitorRecord, NewAudit, StoreError};

/// How long a window that ended with the store unreachable keeps trying
/// to record its verdict before it says it could not.
pub(super) const VERDICT_RETRY: Duration = Duration::from_secs(30);

/// What a finished window writes: its record, the end of its audit
/// record and, on a regression, the No-Go; in this order.
pub(super) struct VerdictWrites<'a> {
    pub(super) record: &'a MonitorRecord,
    pub(super) started: i64,
    pub(super) finished: DateTime<Utc>,
    pub(super) outcome: Outcome,
    pub(super) detail: &'a str,
    pub(super) no_go: Option<&'a crate::domain::Approval>,
    /// The automatic rollback run while the store was unreachable: its
    /// audit start and outcome, after the verdict's.
    pub(super) rollback: Option<UnlockedRollback>,
    /// The outcome of an automatic rollback that ran with the store but
    /// whose end it did not take (a canary's weight set to 0): written
    /// after the verdict's, retried with them.
    pub(super) owed: Option<crate::engine::error::OwedEnd>,
}

/// How far a window's writes went in: how many, and the audit id of the
/// unrecorded rollback's start once that is written.
#[derive(Default)]
pub(super) struct Written {
    pub(super) n: u8,
    pub(super) rollback_started: Option<i64>,
    /// Whether the owed rollback outcome went in.
    pub(super) owed_done: bool,
}

/// A rollback a monitoring window ran while the store was unreachable,
/// without the deploy lock, to be recorded when the store is back.
pub(super) struct UnlockedRollback {
    pub(super) at: DateTime<Utc>,
    pub(super) to: Version,
    pub(super) from: Version,
    /// The audit start's detail.
    pub(super) detail: String,
    /// The deploy and its outcome detail, or the outcome, its detail and
    /// the error in words.
    pub(super) result: Result<DeployRecord, (Outcome, String, String)>,
    /// The success outcome's detail.
    pub(super) done: String,
    /// When it ended.
    pub(super) finished: DateTime<Utc>,
}

impl Engine {
    /// The verdict's writes from the `done`th on (a retry does not write
    /// twice what went in already); `done` counts those that did.
    pub(super) async fn write_verdict(
        &self,
        w: &VerdictWrites<'_>,
        written: &mut Written,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let done = &mut written.n;
        if *done == 0 {
            store.record_monitor(w.record).await?;
            *done = 1;
        }
        if *done == 1 {
            store
                .audit_finish(w.started, w.finished, w.outcome, w.detail)
                .await?;
            *done = 2;
        }
        if *done == 2 {
            if let Some(no_go) = w.no_go {
                store.record_approval(no_go).await?;
            }
            *done = 3;
        }
        if let Some(end) = &w.owed
            && !written.owed_done
        {
            store
                .audit_finish(end.started, end.at, end.outcome, &end.detail)
                .await?;
            written.owed_done = true;
        }
        let Some(rb) = &w.rollback else {
            return Ok(());
        };
        // Not run (`rollback_unreachable` found the environment changed):
        // one refusal record, like any refused action.
        let record = |outcome, detail| NewAudit {
            at: rb.at,
            actor: &self.inner.actor,
            action: ActionKind::Rollback,
            env: &w.record.env,
            version: Some(&rb.to),
            from_version: Some(&rb.from),
            outcome,
            detail,
        };
        if let Err((Outcome::Refused, detail, _)) = &rb.result {
            if *done == 3 {
                store.audit_start(&record(Outcome::Refused, detail)).await?;
                *done = 4;
            }
            return Ok(());
        }
        let started = match written.rollback_started {
            Some(id) => id,
            None => {
                let id = store
                    .audit_start(&record(Outcome::Started, &rb.detail))
                    .await?;
                written.rollback_started = Some(id);
                id
            }
        };
        if *done == 3 {
            match &rb.result {
                Ok(rec) => store.record_deploy(started, rec, &rb.done).await?,
                Err((outcome, detail, _)) => {
                    store
                        .audit_finish(started, rb.finished, *outcome, detail)
                        .await?
                }
            }
            *done = 4;
        }
        Ok(())
    }

    /// Roll `env` back to `to`, the known-good version its window read
    /// when it opened, while the store is unreachable: without the store
    /// and without the deploy lock. The store may be down for this process
    /// only (a partial outage): another shipdeck that reaches it can take
    /// the lock, promote or roll back meanwhile, and this process cannot
    /// see that lock. So the rollback runs only if `env` still reports
    /// `from`, the version this window judged, read from its version
    /// source just before acting; anything else — another version, or no
    /// answer — means someone else acted or nobody can tell, and it is not
    /// rolled back (a refusal, said and recorded, the regression left to
    /// the on-call engineer). Even so another process may act in the same
    /// moment: the record says it ran unchecked by the lock. What ran, or
    /// why not, is recorded when the store is back (see
    /// [`VerdictWrites::rollback`]).
    pub(super) async fn rollback_unreachable(
        &self,
        idx: usize,
        to: &Version,
        from: &Version,
        events: &Option<EventSink>,
    ) -> UnlockedRollback {
        let cfg_env = &self.inner.config.environments[idx];
        let env = cfg_env.name();
        let (timeout, poll) = strategy::deploy_timing(cfg_env);
        let at = Utc::now();
        let emit = |ev: Event| {
            if let Some(tx) = events {
                let _ = tx.send(ev);
            }
        };
        let backend = &self.inner.envs[idx].strategy;
        let changed = match backend.read_version().await {
            Ok(live) if &live == from => None,
            Ok(live) => Some(format!(
                "{env} reports {live} now, not {from} as this window judged: someone else changed it meanwhile (the store, which would name them, is unreachable from here)"
            )),
            Err(e) => Some(format!(
                "what {env} runs now could not be read ({e}): another process that reaches the store may have changed it"
            )),
        };
        if let Some(why) = changed {
            let detail = format!(
                "automatic rollback of {env} from {from} to {to} not run while the store was unreachable: {why}; check it with `shipdeck status` and roll back by hand if it still needs it"
            );
            emit(Event::StoreOutage {
                env: env.to_string(),
                detail: format!("{env}: the store is unreachable: {detail}"),
            });
            let words = format!(
                "not run while the store was unreachable: {why}; check it with `shipdeck status`"
            );
            return UnlockedRollback {
                at,
                to: to.clone(),
                from: from.clone(),
                detail: detail.clone(),
                result: Err((Outcome::Refused, detail.clone(), words)),
                done: detail,
                finished: Utc::now(),
            };
        }
        let note = &format!(
            "run while the store was unreachable, without the deploy lock; {env} still reported {from} just before it, but another process reaching the store could have acted at the same time"
        );
        // Automatic, as the window's rollback through the store says.
        let detail = format!(
            "roll {env} back automatically from {from} to {to} ({}; the monitoring window caught a regression of {from}; {note})",
            cfg_env.strategy().as_str()
        );
        emit(Event::StoreOutage {
            env: env.to_string(),
            detail: format!(
                "{env}: the store is unreachable: rolling back to {to}, the known-good version before {from} (still running, checked just now), without the deploy lock (recorded when the store is back)"
            ),
        });
        self.set_activity(env, Some(EnvState::RollingBack));
        self.notify(
            crate::config::NotifyEvent::Rollback,
            env,
            Some(to),
            Some(from),
            "started",
            &detail,
        );
        emit(Event::DeployStarted {
            env: env.to_string(),
            version: to.clone(),
            from: Some(from.clone()),
            rollback: true,
        });
        let steps = strategy::Steps {
            env,
            action: ActionKind::Rollback,
            version: to,
            timeout,
            deadline: std::time::Instant::now() + timeout,
            poll,
            emit: &emit,
            rollback: true,
        };
        let ran = Box::pin(self.run_steps(idx, &steps)).await;
        let (result, done) = match ran {
            Ok((done, url)) => {
                let done = format!("{done} ({note})");
                backend.finished(true, &format!("{env} reports {to}")).await;
                let rec = DeployRecord {
                    seq: None,
                    env: env.to_string(),
                    version: to.clone(),
                    from_version: Some(from.clone()),
                    at: Utc::now(),
                    actor: self.inner.actor.clone(),
                    kind: crate::domain::DeployKind::Rollback,
                    url,
                };
                (Ok(rec), done)
            }
            Err(f) => {
                if f.tell_backend {
                    backend.finished(false, &f.detail).await;
                }
                let detail = format!("{} ({note})", f.detail);
                (
                    Err((f.outcome, detail.clone(), f.error.to_string())),
                    detail,
                )
            }
        };
        self.set_activity(env, None);
        let ok = result.is_ok();
        self.notify(
            crate::config::NotifyEvent::Rollback,
            env,
            Some(to),
            Some(from),
            if ok { "succeeded" } else { "failed" },
            &done,
        );
        emit(Event::DeployFinished {
            env: env.to_string(),
            version: to.clone(),
            ok,
            detail: done.clone(),
        });
        UnlockedRollback {
            at,
            to: to.clone(),
            from: from.clone(),
            detail,
            result,
            done,
            finished: Utc::now(),
        }
    }

    /// What became of writes that failed with `failed`: retried while
    /// waiting may heal it (an outage), said at once when the store
    /// refuses them for good; `None` once all went in.
    pub(super) async fn settle_verdict(
        &self,
        env: &str,
        w: &VerdictWrites<'_>,
        done: &mut Written,
        failed: Option<StoreError>,
        emit: &(dyn Fn(Event) + Sync),
    ) -> Option<String> {
        match failed {
            None => None,
            Some(e) if e.heals_by_waiting() => self.retry_verdict(env, w, done, emit).await,
            Some(e) => Some(refused_for_good(&e)),
        }
    }

    /// Retry the verdict's writes once a second for [`VERDICT_RETRY`];
    /// the store's last error, in words, when they never all went in.
    pub(super) async fn retry_verdict(
        &self,
        env: &str,
        w: &VerdictWrites<'_>,
        done: &mut Written,
        emit: &(dyn Fn(Event) + Sync),
    ) -> Option<String> {
        let since = Utc::now();
        emit(Event::StoreOutage {
            env: env.to_string(),
            detail: format!(
                "{env}: the window has ended and the store is unreachable: retrying to record its verdict for up to {}",
                crate::domain::HumanDuration(VERDICT_RETRY)
            ),
        });
        let deadline = tokio::time::Instant::now() + VERDICT_RETRY;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match self.write_verdict(w, done).await {
                Ok(()) => {
                    emit(Event::StoreOutage {
                        env: env.to_string(),
                        detail: format!(
                            "{env}: the store is back after {}; the verdict is recorded",
                            outage_for(since)
                        ),
                    });
                    return None;
                }
                // The outage turned into a refusal: waiting on is no use.
                Err(e) if !e.heals_by_waiting() => return Some(refused_for_good(&e)),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Some(format!(
                        "the store stayed unreachable for {} after the window ended: {e}",
                        outage_for(since)
                    ));
                }
                Err(e) => tracing::warn!(env, "monitoring window: verdict not recorded yet ({e})"),
            }
        }
    }
}
