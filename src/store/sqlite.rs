//! The embedded store: one SQLite file in WAL mode, safe for several
//! shipdeck processes on one machine (writes are short transactions; readers
//! never block writers; a busy database is waited for, not failed on).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::chain::{self, ChainReport, ChainRow};
use super::{
    Changes, LockInfo, MonitorRecord, NewAudit, NewestMonitor, Presence, Store, StoreError,
    Unfinished, approvals_disagree, audit_outcome, second_finish, verdict_write,
};
use crate::domain::{
    ActionKind, Approval, AuditEntry, Decision, DeployKind, DeployRecord, Outcome, Version,
};
use crate::monitor::Sample;

mod audit;
mod busy;
mod changes;
mod queries;
mod schema;

use audit::*;
use changes::*;
pub(super) use schema::legacy_note;
use schema::*;

pub use busy::{BUSY_WAIT, BusyNotice, BusyWaitState, on_busy_wait, wait_state as busy_wait_state};

/// How often a view re-walks an audit log that only changed in place.
const VIEW_RECHECK: Duration = Duration::from_secs(10);

/// How often the change watcher asks the file whether another connection
/// committed (`PRAGMA data_version`: no disk read when nothing did).
const CHANGE_CHECK: Duration = Duration::from_millis(500);

/// The append-only triggers of the audit log, by name.
const AUDIT_TRIGGERS: [&str; 2] = ["audit_no_update", "audit_no_delete"];
const RECREATE_TRIGGERS: &str = r#"
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// The chain checkpoint's guards: one row, moved only forward, dropped only
/// with an integrity event naming it (a broken chain drops it, so that every
/// later check walks the whole log). Created from schema mark
/// [`CHECKPOINT_GUARDED`] (`PRAGMA user_version`) on, so that a store from
/// before them is not reported as tampered with the first time they are added.
const CHECKPOINT_TRIGGERS: [&str; 3] = [
    "chain_checkpoint_one",
    "chain_checkpoint_forward",
    "chain_checkpoint_no_delete",
];
const CHECKPOINT_GUARDED: i64 = 1;
/// The newest schema mark (`PRAGMA user_version`) this shipdeck writes and
/// understands. A store marked higher was written by a newer shipdeck: it
/// is refused rather than altered by this one's migrations (raise this
/// when a migration adds a mark).
pub(super) const SCHEMA_MARK: i64 = CHECKPOINT_GUARDED;
const RECREATE_CHECKPOINT_TRIGGERS: &str = r#"
CREATE TRIGGER IF NOT EXISTS chain_checkpoint_one BEFORE INSERT ON chain_checkpoint
    WHEN EXISTS (SELECT 1 FROM chain_checkpoint)
    BEGIN SELECT RAISE(ABORT, 'the chain checkpoint is one row, moved forward by an update'); END;
CREATE TRIGGER IF NOT EXISTS chain_checkpoint_forward BEFORE UPDATE ON chain_checkpoint
    WHEN NEW.id <= OLD.id OR NEW.one IS NOT OLD.one
    BEGIN SELECT RAISE(ABORT, 'the chain checkpoint only moves forward'); END;
CREATE TRIGGER IF NOT EXISTS chain_checkpoint_no_delete BEFORE DELETE ON chain_checkpoint
    WHEN NOT EXISTS (SELECT 1 FROM integrity_events
                     WHERE instr(what, 'checkpoint (#' || OLD.id || ', ' || OLD.hash || ')') > 0)
    BEGIN SELECT RAISE(ABORT, 'the chain checkpoint is dropped only with an integrity event naming it'); END;
"#;

const AUDIT_COLUMNS: &str = "id, at, actor, action, env, version, from_version, outcome, detail, finishes, note, prev_hash, hash";

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Device and inode of the file this store opened: before each write it
    /// checks that the path still names that file.
    identity: Option<(u64, u64)>,
    /// Why this store is read-only, when it is.
    read_only: Option<String>,
    /// Integrity problems noticed by this process (missing triggers on
    /// open, approvals that disagree with the audit log), newest last.
    notes: Mutex<Vec<String>>,
    /// The last walk of the hash chain, and the state of the log it saw.
    verified: Mutex<Option<(ChainKey, ChainReport, std::time::Instant)>>,
    /// Whether the locks table has its `audit_id` column: always once
    /// opened read-write (`schema::migrate_locks`), not in a file of an
    /// older shipdeck opened read-only, whose locks are all unlinked.
    linked_locks: bool,
    /// Whether the locks table has its `pid_space` column: likewise,
    /// missing only in an older file opened read-only.
    spaced_locks: bool,
    /// Whether the presence table has its `pid_space` column
    /// (`schema::migrate_presence`): likewise.
    spaced_presence: bool,
    /// Whether monitor_runs has its `start_id` column
    /// (`schema::migrate_monitor_runs`): likewise.
    started_windows: bool,
    /// When this read-only store could not be read live and was read as
    /// an immutable snapshot instead ([`changes::open_read_only`]): when,
    /// and why. Such a store never changes under this process.
    snapshot: Mutex<Option<Snapshot>>,
}

/// A read-only store read as a snapshot: since when, why, and when this
/// process last asked whether it can be read live.
struct Snapshot {
    at: DateTime<Utc>,
    cause: String,
    tried: std::time::Instant,
}

/// What changes when anyone appends to (or tampers with) the audit log:
/// SQLite's `data_version` (bumped by other connections' commits), the
/// highest id and the AUTOINCREMENT counter.
type ChainKey = (i64, Option<i64>, Option<i64>);

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path`. A store that cannot
    /// be written (a read-only file, directory or file system) is opened
    /// read-only: it serves `status` and `history`, and every write answers
    /// [`StoreError::ReadOnly`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A directory or a device (`/dev/zero`) is no store: say so rather
        // than let SQLite answer "unable to open database file".
        if let Ok(m) = std::fs::metadata(path)
            && !m.is_file()
        {
            let what = if m.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return Err(StoreError::Sqlite {
                path: path.display().to_string(),
                cause: format!(
                    "{what}, not a store file (`[store] path` names the database file itself)"
                ),
            });
        }
        if let Ok(target) = std::fs::read_link(path)
            && std::fs::metadata(path).is_err()
        {
            let to = if target.is_relative() {
                path.parent().unwrap_or(Path::new("")).join(&target)
            } else {
                target.clone()
            };
            if to.parent().is_some_and(|d| !d.is_dir()) {
                return Err(StoreError::Sqlite {
                    path: path.display().to_string(),
                    cause: format!(
                        "a symbolic link to {}, whose directory does not exist",
                        target.display()
                    ),
                });
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            crate::paths::ensure_private_dir(dir).map_err(|e| StoreError::Dir {
                path: dir.display().to_string(),
                cause: e.to_string(),
            })?;
        }
        // Owner-only (0600) before SQLite opens it: its -wal and -shm files
        // take the database file's permissions.
        crate::paths::private_db_files(path).map_err(|e| StoreError::Sqlite {
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
        let sqlite = |e: rusqlite::Error| StoreError::Sqlite {
            path: path.display().to_string(),
            cause: e.to_string(),
        };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        // A store from a newer shipdeck: refuse before any DDL touches it.
        // (A file that is no database fails the read; `prepare` names that.)
        // A store busy with another writer is waited for (up to 10 s, said
        // after a second, not again right after a wait that gave up: `busy`),
        // and if it stays busy the open fails: a mark not read is no mark
        // to migrate past.
        conn.busy_handler(Some(busy::handler(path.display().to_string())))
            .map_err(sqlite)?;
        match conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)) {
            Ok(found) if found > SCHEMA_MARK => {
                return Err(StoreError::NewerSchema {
                    store: path.display().to_string(),
                    found: i32::try_from(found).unwrap_or(i32::MAX),
                    known: SCHEMA_MARK as i32,
                });
            }
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                ) =>
            {
                return Err(sqlite(e));
            }
            _ => {}
        }
        match prepare_waiting(&conn) {
            // SQLite falls back to reading a file it may not write (mode
            // 0444, a read-only mount) without saying so: ask.
            Ok(notes) if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) => {
                let why = "the file or its file system does not allow writing".to_string();
                tracing::warn!("store {}: opened read-only: {why}", path.display());
                Ok(SqliteStore::new(path, conn, Some(why), notes))
            }
            Ok(notes) => Ok(SqliteStore::new(path, conn, None, notes)),
            Err(e) if is_read_only(&e) => {
                drop(conn);
                let why = format!("it cannot be written ({e})");
                tracing::warn!("store {}: opened read-only: {why}", path.display());
                SqliteStore::read_only(path, why).map_err(sqlite)
            }
            Err(e) => Err(sqlite(e)),
        }
    }

    /// The store at `path` opened for reading only (`why`: it cannot be
    /// written). One that cannot be read live either (held by another
    /// process, no WAL index to be had) is read as a snapshot that will not
    /// update, and says so on every view ([`Store::integrity`]) with the
    /// time it was taken, until it is read live again ([`Self::with`]).
    fn read_only(path: &Path, why: String) -> rusqlite::Result<SqliteStore> {
        let (conn, snapshot) = open_read_only(path)?;
        let s = SqliteStore::new(path, conn, Some(why), Vec::new());
        if let Some(cause) = snapshot {
            tracing::warn!(
                "store {}: read as a snapshot that will not update: {cause}",
                path.display()
            );
            *s.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Snapshot {
                at: Utc::now(),
                cause,
                tried: std::time::Instant::now(),
            });
        }
        Ok(s)
    }

    /// A store read as a snapshot is read live again as soon as it can be:
    /// asked before a read, without waiting, at most every `CHANGE_CHECK`.
    fn leave_snapshot(&self, conn: &mut Connection) {
        let mut snap = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = snap.as_mut() else { return };
        if s.tried.elapsed() < CHANGE_CHECK {
            return;
        }
        s.tried = std::time::Instant::now();
        let Ok(mut live) = changes::open_live_read_only(&self.path, Duration::ZERO) else {
            return;
        };
        if live
            .busy_handler(Some(busy::handler(self.path.display().to_string())))
            .is_ok()
        {
            tracing::info!("store {}: read live again", self.path.display());
            *conn = live;
            *snap = None;
        }
    }

    fn new(
        path: &Path,
        conn: Connection,
        read_only: Option<String>,
        notes: Vec<String>,
    ) -> SqliteStore {
        let linked_locks = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('locks') WHERE name = 'audit_id'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false);
        let spaced_locks = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('locks') WHERE name = 'pid_space'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false);
        let spaced_presence = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('presence') WHERE name = 'pid_space'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false);
        let started_windows = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('monitor_runs') WHERE name = 'start_id'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false);
        SqliteStore {
            started_windows,
            linked_locks,
            spaced_locks,
            spaced_presence,
            snapshot: Mutex::new(None),
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            identity: file_identity(path),
            read_only,
            notes: Mutex::new(notes),
            verified: Mutex::new(None),
        }
    }

    /// Refuse a write when the store is read-only, or when the path no
    /// longer names the file this process opened (deleted or replaced
    /// under a running console: writing on would record into a file
    /// nobody else reads).
    fn check_writable(&self) -> Result<(), StoreError> {
        if let Some(why) = &self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.display().to_string(),
                cause: why.clone(),
            });
        }
        if let Some(why) = self.file_moved() {
            return Err(StoreError::Replaced {
                path: self.path.display().to_string(),
                cause: why,
            });
        }
        Ok(())
    }

    /// Why the path no longer names the opened file, if it does not.
    fn file_moved(&self) -> Option<String> {
        let opened = self.identity?;
        match file_identity(&self.path) {
            None => Some("the store file was deleted after this process opened it".into()),
            Some(now) if now != opened => Some(
                "the store file was replaced by another one after this process opened it".into(),
            ),
            Some(_) => None,
        }
    }

    fn note(&self, what: String) {
        tracing::warn!("store {}: {what}", self.path.display());
        let mut n = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if !n.contains(&what) {
            n.push(what);
        }
    }

    /// Append audit records: refused on a read-only or replaced store and
    /// on a log whose chain is broken or unreadable (a corrupted log must
    /// stop actions, not record beside them); one immediate transaction, so
    /// two processes never interleave inside the chain.
    fn with_audit<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.check_writable()?;
        let report = self.chain_report(true)?;
        if let Some(b) = &report.broken {
            return Err(StoreError::Tampered {
                path: self.path.display().to_string(),
                cause: format!(
                    "the audit log's hash chain is broken at {b}; actions are refused until it is repaired (see `shipdeck history --verify`)"
                ),
            });
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let out = (|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })()
        .map_err(|e: rusqlite::Error| self.err(e))?;
        // Our own appends keep the chain intact: remember the new state of
        // the log, so the next write does not walk it again.
        if let Ok(key) = chain_key(&mut conn) {
            let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((k, r, _)) = v.as_mut()
                && r.intact()
            {
                *k = key;
            }
        }
        Ok(out)
    }

    /// Other writes (locks, samples, monitoring runs): refused on a
    /// read-only or replaced store.
    fn with_write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.check_writable()?;
        self.with(f)
    }

    /// The hash chain's state, walked again only when the log changed.
    /// `strict` (before a write) walks on any change to the database; a
    /// view walks again at most every [`VIEW_RECHECK`] when no record was
    /// added (other processes' samples and locks change the database all
    /// the time).
    fn chain_report(&self, strict: bool) -> Result<ChainReport, StoreError> {
        let key = self.with(chain_key)?;
        if let Some((k, r, at)) = &*self.verified.lock().unwrap_or_else(|p| p.into_inner()) {
            let same_records = (k.1, k.2) == (key.1, key.2);
            if *k == key || (!strict && same_records && at.elapsed() < VIEW_RECHECK) {
                return Ok(r.clone());
            }
        }
        let report = self.walk_chain_since_checkpoint()?;
        *self.verified.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((key, report.clone(), std::time::Instant::now()));
        Ok(report)
    }

    /// The per-action check: walk only the records after the checkpoint,
    /// once the checkpoint is seen to be the chain's own (the record at its
    /// id still carries its hash, and that hash still matches the record's
    /// content). Anything else — no checkpoint yet, a checkpoint the chain
    /// does not vouch for — walks the whole log. Rewrites *before* the
    /// checkpoint that keep its record intact are for `history --verify`.
    fn walk_chain_since_checkpoint(&self) -> Result<ChainReport, StoreError> {
        match self.checkpoint_standing() {
            Ok(Some((cp, None))) => self.walk_chain(Some(cp), None),
            Ok(Some((_, dispute))) => self.walk_chain(None, dispute),
            // No checkpoint (or none readable): the whole log.
            Ok(None) | Err(_) => self.walk_chain(None, None),
        }
    }

    /// The stored checkpoint and, when its record disagrees with it, the
    /// dispute ([`chain::checkpoint_dispute`]).
    fn checkpoint_standing(
        &self,
    ) -> Result<Option<(chain::Checkpoint, Option<chain::Broken>)>, StoreError> {
        self.with(|c| {
            let Some(cp) = read_checkpoint(c) else {
                return Ok(None);
            };
            let row = c
                .query_row(
                    &format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE id = ?1"),
                    params![cp.id],
                    chain_row,
                )
                .optional()?;
            let dispute = chain::checkpoint_dispute(&cp, row.as_ref());
            Ok(Some((cp, dispute)))
        })
    }

    /// Walk the chain from `from` (every record when `None`), and move the
    /// checkpoint to the head when it is intact and the store writable. A
    /// `dispute` (the stored checkpoint disagrees with its record) breaks
    /// the chain there, and leaves the checkpoint as it is: it is the
    /// evidence.
    fn walk_chain(
        &self,
        from: Option<chain::Checkpoint>,
        dispute: Option<chain::Broken>,
    ) -> Result<ChainReport, StoreError> {
        let disputed = dispute.is_some();
        let after = from.as_ref().map(|c| c.id).unwrap_or(0);
        let (rows, highest, warnings) = self
            .with(|c| {
                // One read transaction: a consistent snapshot while others append.
                let c = c.transaction()?;
                let rows = c
                    .prepare(&format!(
                        "SELECT {AUDIT_COLUMNS} FROM audit WHERE id > ?1 ORDER BY id"
                    ))?
                    .query_map(params![after], chain_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let highest: Option<i64> = c
                    .query_row(
                        "SELECT seq FROM sqlite_sequence WHERE name = 'audit'",
                        [],
                        |r| r.get(0),
                    )
                    .optional()?;
                let warnings = c
                    .prepare("SELECT at, what FROM integrity_events ORDER BY id")?
                    .query_map([], |r| {
                        Ok(format!(
                            "{}: {}",
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                c.commit()?;
                Ok((rows, highest, warnings))
            })
            .map_err(|e| match e {
                StoreError::Sqlite { path, cause } => StoreError::Corrupt {
                    path,
                    cause: format!("the audit log cannot be read: {cause}"),
                },
                other => other,
            })?;
        let mut report = chain::verify_from(from.as_ref(), &rows, highest);
        report.warnings = warnings;
        if report.broken.is_none() {
            report.broken = chain::unreadable(&rows);
        }
        let report = chain::with_dispute(report, dispute);
        if disputed || self.check_writable().is_err() {
            return Ok(report);
        }
        if report.broken.is_none()
            && let Some(head) = &report.head
            && report.records as i64 > after
        {
            let id = report.records as i64;
            // Forward only (the triggers refuse anything else).
            let saved = self.with(|c| {
                let at = ts(Utc::now());
                c.execute(
                    "UPDATE chain_checkpoint SET id = ?1, hash = ?2, at = ?3 WHERE one = 1 AND id < ?1",
                    params![id, head, at],
                )?;
                c.execute(
                    "INSERT INTO chain_checkpoint (one, id, hash, at) SELECT 1, ?1, ?2, ?3
                     WHERE NOT EXISTS (SELECT 1 FROM chain_checkpoint)",
                    params![id, head, at],
                )
            });
            if let Err(e) = saved {
                // Only a cost: the next process walks from the older checkpoint.
                tracing::debug!("store {}: checkpoint not saved: {e}", self.path.display());
            }
        } else if let Some(b) = &report.broken {
            // A broken chain vouches for nothing: every later check walks
            // the whole log (and refuses actions) until it is repaired. The
            // checkpoint goes with an integrity event naming it (the
            // trigger refuses a silent drop).
            let what = b.to_string();
            let dropped = self.with(|c| {
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT INTO integrity_events (at, what)
                     SELECT ?1, 'the audit chain was found broken at ' || ?2
                                || '; its checkpoint (#' || id || ', ' || hash || ') was dropped, so that every check walks the whole log'
                     FROM chain_checkpoint WHERE one = 1",
                    params![ts(Utc::now()), what],
                )?;
                tx.execute("DELETE FROM chain_checkpoint", [])?;
                tx.commit()
            });
            if let Err(e) = dropped {
                tracing::warn!("store {}: checkpoint not dropped: {e}", self.path.display());
            }
        }
        Ok(report)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            cause: e.to_string(),
        }
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            cause: e.to_string(),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        // A poisoned lock only means another thread panicked mid-call; SQLite
        // transactions keep the file consistent, so carry on with it.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.leave_snapshot(&mut conn);
        f(&mut conn).map_err(|e| self.err(e))
    }

    fn parse_time(&self, s: &str) -> Result<DateTime<Utc>, StoreError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(format!("time {s:?}: {e}")))
    }

    /// Deploy rows of `sql` (selecting env, version, from_version, at, actor, kind, url
    /// and its place in the store's order, `DEPLOY_SEQ`).
    fn query_deploys(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<DeployRecord>, StoreError> {
        type Row = (
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(sql)?;
            let it = st.query_map(args, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|(env, version, from, at, actor, kind, url, seq)| {
                Ok(DeployRecord {
                    seq,
                    env,
                    version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                    from_version: self.parse_version(from)?,
                    at: self.parse_time(&at)?,
                    actor,
                    kind: DeployKind::parse(&kind)
                        .ok_or_else(|| self.corrupt(format!("deploy kind {kind:?}")))?,
                    url,
                })
            })
            .collect()
    }

    fn parse_version(&self, s: Option<String>) -> Result<Option<Version>, StoreError> {
        s.map(|v| Version::parse(&v).map_err(|e| self.corrupt(e)))
            .transpose()
    }
}

impl SqliteStore {
    /// Every row a team store keeps, as stored (`store migrate`).
    pub(crate) fn export(&self) -> Result<super::pg::Export, StoreError> {
        self.with(|c| {
            let c = c.transaction()?;
            let audit = c
                .prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY id"))?
                .query_map([], chain_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let highest: i64 = c
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'audit'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            let deploys = c
                .prepare(
                    "SELECT env, version, from_version, at, actor, kind, audit_id, url FROM deploys ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let approvals = c
                .prepare("SELECT env, version, decision, actor, at, note FROM approvals ORDER BY id")?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let monitor_runs = c
                .prepare(&format!(
                    "SELECT env, version, started_at, finished_at, verdict, metric, reason, {} FROM monitor_runs ORDER BY id",
                    if self.started_windows { "start_id" } else { "NULL" }
                ))?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let samples = c
                .prepare(
                    "SELECT env, at, requests, errors, p50_ms, p95_ms, p99_ms FROM samples ORDER BY env, at",
                )?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let integrity_events = c
                .prepare("SELECT at, what FROM integrity_events ORDER BY id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            c.commit()?;
            Ok(super::pg::Export {
                audit,
                highest,
                deploys,
                approvals,
                monitor_runs,
                samples,
                integrity_events,
            })
        })
    }
}

#[cfg(unix)]
pub(super) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() || !Path::new("/proc/self").exists()
}

#[cfg(not(unix))]
pub(super) fn pid_alive(_pid: u32) -> bool {
    true
}

/// The pid space a lock claimed for `host` is written with: this
/// process's ([`crate::host::pid_space`]) when `host` is this machine's
/// name, as every claim shipdeck makes is; none for a claim naming another
/// host, whose pids this process cannot vouch for.
pub(super) fn claim_space(host: &str) -> Option<String> {
    crate::host::pid_space().filter(|_| host == crate::host::hostname())
}

/// Whether a lock row — held by `pid` on `host` in pid space `space`
/// (`None`: written by a shipdeck from before pid spaces) — is the claim
/// `pid` on `host` of this process, in this process's pid space
/// ([`crate::host::pid_space`]). A hostname and a pid are no identity:
/// two containers named alike both have a pid 1. A row without a space is
/// judged as before, by pid and hostname.
pub(super) fn same_holder(row: (u32, &str, Option<&str>), pid: u32, host: &str) -> bool {
    let (rpid, rhost, space) = row;
    rpid == pid
        && rhost == host
        && space.is_none_or(|s| crate::host::pid_space().as_deref() == Some(s))
}

/// Whether a lock row's holder is provably a dead process: one of this
/// process's pid space (so its pid means here what it meant there) that
/// no longer runs. A holder of another space — another machine, another
/// container, whatever its hostname — is never judged by a pid this
/// process cannot see. A row without a space (an older shipdeck) is
/// judged as before: a dead pid under this hostname.
pub(super) fn holder_gone(pid: u32, host: &str, space: Option<&str>) -> bool {
    let here = match space {
        Some(s) => crate::host::pid_space().as_deref() == Some(s),
        None => host == crate::host::hostname(),
    };
    here && !pid_alive(pid)
}

#[cfg(test)]
mod tests;
