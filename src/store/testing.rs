//! A store for tests of what the engine does when its store misbehaves:
//! SQLite behind a hook that every call passes first, which can make the
//! call wait (a database another process holds locked) or answer with an
//! error instead (a server away). One pass-through for every such test.

use chrono::{DateTime, Utc};

use super::{
    ChainReport, Changes, EnvKeys, LockInfo, MonitorRecord, NewAudit, Presence, SqliteStore,
    StatusReads, Store, StoreError, Unfinished,
};
use crate::domain::{Approval, AuditEntry, DeployRecord, Outcome, Version};
use crate::monitor::Sample;

/// What happens before each call reaches the store.
pub(crate) trait Hook: Send + Sync {
    /// Called with the method's name; an `Err` is the call's answer.
    fn before(&self, call: &'static str) -> Result<(), StoreError>;
}

/// SQLite behind `hook`.
pub(crate) struct Hooked<H> {
    pub inner: SqliteStore,
    pub hook: H,
}

/// What an unreachable PostgreSQL server's calls answer.
pub(crate) fn unreachable() -> StoreError {
    StoreError::Unreachable {
        store: "postgres://db".into(),
        host: "db:5432".into(),
        cause: "connection refused".into(),
        sqlstate: None,
        lasting: false,
    }
}

macro_rules! pass {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {
        $(fn $name(&self, $($a: $t),*) -> $r {
            self.hook.before(stringify!($name))?;
            self.inner.$name($($a),*)
        })*
    };
}

impl<H: Hook> Store for Hooked<H> {
    pass! {
        audit_start(rec: &NewAudit<'_>) -> Result<i64, StoreError>;
        audit_start_held(rec: &NewAudit<'_>, lock: &LockInfo) -> Result<i64, StoreError>;
        audit_finish(started: i64, at: DateTime<Utc>, outcome: Outcome, detail: &str) -> Result<(), StoreError>;
        record_deploy(started: i64, rec: &DeployRecord, detail: &str) -> Result<(), StoreError>;
        record_approval(a: &Approval) -> Result<i64, StoreError>;
        history(env: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
        canary_history(env: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
        deploys(env: Option<&str>) -> Result<Vec<DeployRecord>, StoreError>;
        latest_deploys() -> Result<Vec<DeployRecord>, StoreError>;
        recent_deploys(env: &str, limit: usize) -> Result<Vec<DeployRecord>, StoreError>;
        approvals(env: &str) -> Result<Vec<Approval>, StoreError>;
        caught_versions(env: &str) -> Result<Vec<Version>, StoreError>;
        try_lock(lock: &LockInfo) -> Result<Result<(), LockInfo>, StoreError>;
        unlock(env: &str, pid: u32, host: &str) -> Result<(), StoreError>;
        lock_of(env: &str, now: DateTime<Utc>) -> Result<Option<LockInfo>, StoreError>;
        record_monitor(rec: &MonitorRecord) -> Result<(), StoreError>;
        last_monitor(env: &str) -> Result<Option<MonitorRecord>, StoreError>;
        record_sample(env: &str, at: DateTime<Utc>, s: &Sample, keep: chrono::Duration) -> Result<(), StoreError>;
        samples(env: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, Sample)>, StoreError>;
        verify() -> Result<ChainReport, StoreError>;
        unfinished() -> Result<Vec<Unfinished>, StoreError>;
        changes() -> Result<Changes, StoreError>;
        heartbeat(p: &Presence, expire_before: DateTime<Utc>) -> Result<(), StoreError>;
        leave(host: &str, pid: u32, pid_space: Option<&str>) -> Result<(), StoreError>;
        present(fresh_since: DateTime<Utc>) -> Result<Vec<Presence>, StoreError>;
    }
    fn integrity(&self) -> Option<String> {
        // No error to answer with: the hook may only hold it up.
        let _ = self.hook.before("integrity");
        self.inner.integrity()
    }
    fn status_reads(
        &self,
        envs: &[EnvKeys<'_>],
        recent: usize,
        now: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
    ) -> Result<StatusReads, StoreError> {
        self.hook.before("status_reads")?;
        self.inner.status_reads(envs, recent, now, fresh_since)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}
