//! The store's async face. The store itself is synchronous (SQLite waits up
//! to its busy timeout on a locked file), so async code never calls it
//! directly: every call is a job for one dedicated store thread, answered
//! through a oneshot channel. Jobs run one after another in the order they
//! were sent, so a "started" record is always written before its outcome,
//! and the runtime — Ctrl-C handling, the console's event loop — keeps
//! running while the store waits on a lock.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    ChainReport, Changes, LockInfo, MonitorRecord, NewAudit, Presence, Store, StoreError,
    Unfinished,
};
use crate::domain::{ActionKind, Approval, AuditEntry, DeployRecord, Outcome, Version};
use crate::monitor::Sample;

type Job = Box<dyn FnOnce(&dyn Store) + Send>;

/// A cheap-to-clone handle on the store thread.
#[derive(Clone)]
pub struct AsyncStore {
    tx: mpsc::Sender<Job>,
    location: Arc<str>,
    _thread: Arc<Thread>,
}

/// The store thread, waited for when the last handle goes: it finishes the
/// jobs queued so far and closes the database cleanly (SQLite checkpoints
/// its write-ahead log on close) before the process moves on — for at most
/// [`CLOSE_WAIT`], so that a locked database cannot hold up an exit.
struct Thread {
    handle: Option<std::thread::JoinHandle<()>>,
    /// Answers once the thread has closed the store.
    closed: std::sync::Mutex<Option<mpsc::Receiver<()>>>,
    /// The thread's own sender, dropped first so that it sees the end.
    stop: Option<mpsc::Sender<Job>>,
}

const CLOSE_WAIT: Duration = Duration::from_secs(2);

impl Drop for Thread {
    fn drop(&mut self) {
        drop(self.stop.take());
        let closed = self
            .closed
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let (Some(h), Some(closed)) = (self.handle.take(), closed) else {
            return;
        };
        if h.thread().id() == std::thread::current().id() {
            return;
        }
        match closed.recv_timeout(CLOSE_WAIT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = h.join();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!("the store is still busy; leaving without closing it");
            }
        }
    }
}

/// A [`NewAudit`] that owns its text, so it can cross to the store thread.
struct OwnedAudit {
    at: DateTime<Utc>,
    actor: String,
    action: ActionKind,
    env: String,
    version: Option<Version>,
    from_version: Option<Version>,
    outcome: Outcome,
    detail: String,
}

impl OwnedAudit {
    fn of(r: &NewAudit<'_>) -> Self {
        OwnedAudit {
            at: r.at,
            actor: r.actor.to_string(),
            action: r.action,
            env: r.env.to_string(),
            version: r.version.cloned(),
            from_version: r.from_version.cloned(),
            outcome: r.outcome,
            detail: r.detail.to_string(),
        }
    }

    fn as_new(&self) -> NewAudit<'_> {
        NewAudit {
            at: self.at,
            actor: &self.actor,
            action: self.action,
            env: &self.env,
            version: self.version.as_ref(),
            from_version: self.from_version.as_ref(),
            outcome: self.outcome,
            detail: &self.detail,
        }
    }
}

impl AsyncStore {
    /// Move `store` onto a thread of its own. The thread ends when the last
    /// handle is dropped.
    pub fn new(store: Arc<dyn Store>) -> AsyncStore {
        let (tx, rx) = mpsc::channel::<Job>();
        let location: Arc<str> = store.describe().into();
        let (closed_tx, closed) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("shipdeck-store".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&*store);
                }
                drop(store);
                let _ = closed_tx.send(());
            });
        let handle = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                // Without a thread every call answers "stopped" (the
                // receiver is gone); the log names the cause.
                tracing::error!("cannot start the store thread: {e}");
                None
            }
        };
        AsyncStore {
            tx: tx.clone(),
            location,
            _thread: Arc::new(Thread {
                handle,
                closed: std::sync::Mutex::new(Some(closed)),
                stop: Some(tx),
            }),
        }
    }

    fn gone(&self) -> StoreError {
        StoreError::Sqlite {
            path: self.location.to_string(),
            cause: "the store thread has stopped".into(),
        }
    }

    /// Run `f` on the store thread and wait for its answer without
    /// blocking the runtime.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |s: &dyn Store| {
                let _ = tx.send(f(s));
            }))
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Queue `f` without waiting for it: for `Drop`, which cannot await.
    /// [`AsyncStore::flush`] waits until it (and everything before it) ran.
    pub fn detach(&self, f: impl FnOnce(&dyn Store) + Send + 'static) {
        if self.tx.send(Box::new(f)).is_err() {
            tracing::error!("{}: a detached store write was dropped", self.gone());
        }
    }

    /// Wait until every job queued so far has run, at most `limit`. False
    /// when the store did not get through them in time (a locked database).
    pub async fn flush(&self, limit: Duration) -> bool {
        let done = self.call(|_| Ok(()));
        matches!(tokio::time::timeout(limit, done).await, Ok(Ok(())))
    }

    /// Where the store lives, for messages.
    pub fn describe(&self) -> String {
        self.location.to_string()
    }

    pub async fn audit_start(&self, rec: &NewAudit<'_>) -> Result<i64, StoreError> {
        let rec = OwnedAudit::of(rec);
        self.call(move |s| s.audit_start(&rec.as_new())).await
    }

    /// As [`Store::audit_start_held`]: the started record of the action
    /// `lock` guards, and the lock linked to it, in one transaction.
    pub async fn audit_start_held(
        &self,
        rec: &NewAudit<'_>,
        lock: &LockInfo,
    ) -> Result<i64, StoreError> {
        let rec = OwnedAudit::of(rec);
        let lock = lock.clone();
        self.call(move |s| s.audit_start_held(&rec.as_new(), &lock))
            .await
    }

    pub async fn audit_finish(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        let detail = detail.to_string();
        self.call(move |s| s.audit_finish(started, at, outcome, &detail))
            .await
    }

    pub async fn record_deploy(
        &self,
        started: i64,
        rec: &DeployRecord,
        detail: &str,
    ) -> Result<(), StoreError> {
        let (rec, detail) = (rec.clone(), detail.to_string());
        self.call(move |s| s.record_deploy(started, &rec, &detail))
            .await
    }

    pub async fn record_approval(&self, a: &Approval) -> Result<i64, StoreError> {
        let a = a.clone();
        self.call(move |s| s.record_approval(&a)).await
    }

    pub async fn history(
        &self,
        env: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let env = env.map(str::to_string);
        self.call(move |s| s.history(env.as_deref(), limit)).await
    }

    pub async fn canary_history(
        &self,
        env: &str,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let env = env.to_string();
        self.call(move |s| s.canary_history(&env, limit)).await
    }

    pub async fn deploys(&self, env: Option<&str>) -> Result<Vec<DeployRecord>, StoreError> {
        let env = env.map(str::to_string);
        self.call(move |s| s.deploys(env.as_deref())).await
    }

    pub async fn latest_deploys(&self) -> Result<Vec<DeployRecord>, StoreError> {
        self.call(|s| s.latest_deploys()).await
    }

    pub async fn recent_deploys(
        &self,
        env: &str,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, StoreError> {
        let env = env.to_string();
        self.call(move |s| s.recent_deploys(&env, limit)).await
    }

    pub async fn approvals(&self, env: &str) -> Result<Vec<Approval>, StoreError> {
        let env = env.to_string();
        self.call(move |s| s.approvals(&env)).await
    }

    pub async fn try_lock(&self, lock: &LockInfo) -> Result<Result<(), LockInfo>, StoreError> {
        let lock = lock.clone();
        self.call(move |s| s.try_lock(&lock)).await
    }

    pub async fn unlock(&self, env: &str, pid: u32, host: &str) -> Result<(), StoreError> {
        let (env, host) = (env.to_string(), host.to_string());
        self.call(move |s| s.unlock(&env, pid, &host)).await
    }

    pub async fn lock_of(
        &self,
        env: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LockInfo>, StoreError> {
        let env = env.to_string();
        self.call(move |s| s.lock_of(&env, now)).await
    }

    pub async fn record_monitor(&self, rec: &MonitorRecord) -> Result<(), StoreError> {
        let rec = rec.clone();
        self.call(move |s| s.record_monitor(&rec)).await
    }

    pub async fn caught_versions(&self, env: &str) -> Result<Vec<Version>, StoreError> {
        let env = env.to_string();
        self.call(move |s| s.caught_versions(&env)).await
    }

    pub async fn last_monitor(&self, env: &str) -> Result<Option<MonitorRecord>, StoreError> {
        let env = env.to_string();
        self.call(move |s| s.last_monitor(&env)).await
    }

    pub async fn verify(&self) -> Result<ChainReport, StoreError> {
        self.call(|s| s.verify()).await
    }

    /// What is wrong with the store (see [`Store::integrity`]); a store
    /// that does not answer is itself the problem.
    pub async fn integrity(&self) -> Option<String> {
        self.call(|s| Ok(s.integrity()))
            .await
            .unwrap_or_else(|e| Some(e.to_string()))
    }

    /// Since when the store has been unreachable (see
    /// [`Store::unreachable_since`]).
    pub async fn unreachable_since(&self) -> Option<DateTime<Utc>> {
        self.call(|s| Ok(s.unreachable_since()))
            .await
            .ok()
            .flatten()
    }

    /// Subscribe to the store's changes (see [`Store::changes`]).
    pub async fn changes(&self) -> Result<Changes, StoreError> {
        self.call(|s| s.changes()).await
    }

    pub async fn heartbeat(
        &self,
        p: &Presence,
        expire_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let p = p.clone();
        self.call(move |s| s.heartbeat(&p, expire_before)).await
    }

    pub async fn leave(
        &self,
        host: &str,
        pid: u32,
        pid_space: Option<&str>,
    ) -> Result<(), StoreError> {
        let (host, space) = (host.to_string(), pid_space.map(str::to_string));
        self.call(move |s| s.leave(&host, pid, space.as_deref()))
            .await
    }

    pub async fn present(&self, fresh_since: DateTime<Utc>) -> Result<Vec<Presence>, StoreError> {
        self.call(move |s| s.present(fresh_since)).await
    }

    /// See [`Store::status_reads`]; `envs` as (env, watch key, versions
    /// asked about) triples.
    pub async fn status_reads(
        &self,
        envs: Vec<(String, String, Vec<String>)>,
        recent: usize,
        now: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
    ) -> Result<super::StatusReads, StoreError> {
        self.call(move |s| {
            let keys: Vec<super::EnvKeys<'_>> = envs
                .iter()
                .map(|(env, watch, versions)| super::EnvKeys {
                    env,
                    watch,
                    versions,
                })
                .collect();
            s.status_reads(&keys, recent, now, fresh_since)
        })
        .await
    }

    pub async fn unfinished(&self) -> Result<Vec<Unfinished>, StoreError> {
        self.call(|s| s.unfinished()).await
    }

    pub async fn samples(
        &self,
        env: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Sample)>, StoreError> {
        let env = env.to_string();
        self.call(move |s| s.samples(&env, from, to)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// A store whose every call waits on a gate, like a database locked by
    /// another process.
    struct Gate(std::sync::Mutex<()>);
    impl crate::store::testing::Hook for Gate {
        fn before(&self, _: &'static str) -> Result<(), StoreError> {
            drop(self.0.lock());
            Ok(())
        }
    }
    type Stuck = crate::store::testing::Hooked<Gate>;

    // The held gate stands for another process's lock on the database: the
    // point is that awaiting while it is held does not stall the runtime.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "current_thread")]
    async fn a_locked_store_does_not_stall_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let stuck = Arc::new(Stuck {
            inner: SqliteStore::open(&dir.path().join("s.db")).unwrap(),
            hook: Gate(std::sync::Mutex::new(())),
        });
        let held = stuck.hook.0.lock().unwrap();
        let store = AsyncStore::new(stuck.clone());
        let call = tokio::spawn({
            let store = store.clone();
            async move { store.history(None, 10).await }
        });
        // The runtime (a single thread, like a one-shot command's) still
        // runs timers — and would run the Ctrl-C handler — while the store waits.
        // (Generous: the store stays held until this passes, so a stalled
        // runtime fails here however slow the machine is.)
        let ticked = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        })
        .await;
        assert!(ticked.is_ok(), "the runtime stalled behind the store");
        assert!(!store.flush(Duration::from_millis(50)).await);
        drop(held);
        assert!(call.await.unwrap().unwrap().is_empty());
        assert!(store.flush(Duration::from_secs(5)).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn detached_writes_land_in_order_before_flush_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = AsyncStore::new(Arc::new(
            SqliteStore::open(&dir.path().join("s.db")).unwrap(),
        ));
        let v = Version::parse("v2").unwrap();
        let id = store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: "alice",
                action: ActionKind::Promote,
                env: "staging",
                version: Some(&v),
                from_version: None,
                outcome: Outcome::Started,
                detail: "deploying",
            })
            .await
            .unwrap();
        store.detach(move |s| {
            let _ = s.audit_finish(id, Utc::now(), Outcome::Unknown, "interrupted");
        });
        assert!(store.flush(Duration::from_secs(5)).await);
        let h = store.history(None, 10).await.unwrap();
        assert_eq!(h[0].detail, "deploying — interrupted");
    }
}
