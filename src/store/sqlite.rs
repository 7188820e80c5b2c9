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
    Changes, LockInfo, MonitorRecord, NewAudit, Presence, Store, StoreError, Unfinished,
    approvals_disagree, audit_outcome,
};
use crate::domain::{
    ActionKind, Approval, AuditEntry, Decision, DeployKind, DeployRecord, Outcome, Version,
};
use crate::monitor::Sample;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    env          TEXT NOT NULL,
    version      TEXT,
    from_version TEXT,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    finishes     INTEGER REFERENCES audit(id),
    note         TEXT,
    prev_hash    TEXT,
    hash         TEXT
);
CREATE INDEX IF NOT EXISTS audit_finishes ON audit(finishes);
CREATE INDEX IF NOT EXISTS audit_env ON audit(env, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS deploys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    env          TEXT NOT NULL,
    version      TEXT NOT NULL,
    from_version TEXT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    audit_id     INTEGER REFERENCES audit(id),
    url          TEXT
);
CREATE INDEX IF NOT EXISTS deploys_env ON deploys(env, id);
CREATE TABLE IF NOT EXISTS integrity_events (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    at   TEXT NOT NULL,
    what TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS integrity_no_update BEFORE UPDATE ON integrity_events
    BEGIN SELECT RAISE(ABORT, 'integrity events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS integrity_no_delete BEFORE DELETE ON integrity_events
    BEGIN SELECT RAISE(ABORT, 'integrity events are append-only'); END;
-- An index of Go/No-Go decisions; the audit log is the truth (approvals()
-- reads the audit log and reports when this table disagrees).
CREATE TABLE IF NOT EXISTS approvals (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    env      TEXT NOT NULL,
    version  TEXT NOT NULL,
    decision TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at       TEXT NOT NULL,
    note     TEXT
);
CREATE TABLE IF NOT EXISTS locks (
    env         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS monitor_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    env         TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    verdict     TEXT NOT NULL,
    metric      TEXT,
    reason      TEXT NOT NULL
);
-- The last record whose chain was walked and found intact, so that each
-- action walks only what was appended since. It is covered by the chain:
-- its hash must still be the record's at its id, or the whole log is walked.
CREATE TABLE IF NOT EXISTS chain_checkpoint (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    id   INTEGER NOT NULL,
    hash TEXT NOT NULL,
    at   TEXT NOT NULL
);
-- Open consoles (who else is watching), kept by their heartbeat.
CREATE TABLE IF NOT EXISTS presence (
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    since     TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (host, pid)
);
CREATE TABLE IF NOT EXISTS samples (
    env      TEXT NOT NULL,
    at       TEXT NOT NULL,
    requests REAL NOT NULL,
    errors   REAL NOT NULL,
    p50_ms   REAL,
    p95_ms   REAL,
    p99_ms   REAL,
    PRIMARY KEY (env, at)
);
"#;

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
        let conn = Connection::open(path).map_err(sqlite)?;
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
                let conn = open_read_only(path).map_err(sqlite)?;
                let why = format!("it cannot be written ({e})");
                tracing::warn!("store {}: opened read-only: {why}", path.display());
                Ok(SqliteStore::new(path, conn, Some(why), Vec::new()))
            }
            Err(e) => Err(sqlite(e)),
        }
    }

    fn new(
        path: &Path,
        conn: Connection,
        read_only: Option<String>,
        notes: Vec<String>,
    ) -> SqliteStore {
        SqliteStore {
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
        let anchored = self
            .with(|c| {
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
                Ok(row
                    .filter(|r| {
                        r.hash.as_deref() == Some(cp.hash.as_str())
                            && r.compute_hash(r.prev_hash.as_deref().unwrap_or("")) == cp.hash
                    })
                    .map(|_| cp))
            })
            .unwrap_or(None);
        self.walk_chain(anchored)
    }

    /// Walk the chain from `from` (every record when `None`), and move the
    /// checkpoint to the head when it is intact and the store writable.
    fn walk_chain(&self, from: Option<chain::Checkpoint>) -> Result<ChainReport, StoreError> {
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
        if report.broken.is_none()
            && let Some(head) = &report.head
            && report.records as i64 > after
            && self.check_writable().is_ok()
        {
            let id = report.records as i64;
            let saved = self.with(|c| {
                c.execute(
                    "INSERT OR REPLACE INTO chain_checkpoint (one, id, hash, at) VALUES (1, ?1, ?2, ?3)",
                    params![id, head, ts(Utc::now())],
                )
            });
            if let Err(e) = saved {
                // Only a cost: the next process walks from the older checkpoint.
                tracing::debug!("store {}: checkpoint not saved: {e}", self.path.display());
            }
        } else if report.broken.is_some() && self.check_writable().is_ok() {
            // A broken chain vouches for nothing: every later check walks
            // the whole log (and refuses actions) until it is repaired.
            let _ = self.with(|c| c.execute("DELETE FROM chain_checkpoint", []));
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
        f(&mut conn).map_err(|e| self.err(e))
    }

    fn parse_time(&self, s: &str) -> Result<DateTime<Utc>, StoreError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(format!("time {s:?}: {e}")))
    }

    /// Deploy rows of `sql` (selecting env, version, from_version, at, actor, kind, url).
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
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|(env, version, from, at, actor, kind, url)| {
                Ok(DeployRecord {
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
                .prepare(
                    "SELECT env, version, started_at, finished_at, verdict, metric, reason FROM monitor_runs ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
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

/// Set up a read-write connection: pragmas, schema, and the audit log's
/// migration to a hash chain. Returns what it found wrong (and repaired).
/// [`prepare`], waiting out another process that is preparing the same new
/// store: switching a fresh file to WAL and creating the schema can answer
/// "database is locked" at once (SQLite skips the busy handler where two
/// connections would otherwise deadlock), so a console and a command
/// started together on a new store must not fail on it. Every step of
/// `prepare` is idempotent.
fn prepare_waiting(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pause = Duration::from_millis(20 + u64::from(std::process::id() % 30));
    loop {
        match prepare(c) {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
            }
            other => return other,
        }
    }
}

fn prepare(c: &Connection) -> rusqlite::Result<Vec<String>> {
    c.busy_timeout(Duration::from_secs(10))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    let mut notes = Vec::new();
    let had_audit: bool = c.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'audit'",
        [],
        |r| r.get(0),
    )?;
    if had_audit {
        // Append-only triggers that an existing log lacks were dropped by
        // someone: recreate them, and say so (never silently).
        let missing: Vec<&str> = AUDIT_TRIGGERS
            .into_iter()
            .filter(|t| {
                c.query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                    params![t],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n == 0)
                .unwrap_or(true)
            })
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "the audit log's append-only triggers ({}) were missing when shipdeck opened the store: someone removed them; they were recreated — run `shipdeck history --verify`",
                missing.join(", ")
            ));
        }
    }
    // Recorded for `history --verify`; only tamper is shown on every view.
    let mut events = notes.clone();
    if had_audit {
        migrate_audit(c, &mut events)?;
    }
    migrate_deploys(c)?;
    c.execute_batch(SCHEMA)?;
    c.execute_batch(RECREATE_TRIGGERS)?;
    for n in &events {
        c.execute(
            "INSERT INTO integrity_events (at, what) VALUES (?1, ?2)",
            params![ts(Utc::now()), n],
        )?;
    }
    Ok(notes)
}

/// A store written before the audit log was hash-chained: add the columns
/// and chain the existing records, recording where the chain starts.
fn migrate_audit(c: &Connection, notes: &mut Vec<String>) -> rusqlite::Result<()> {
    let has_hash = || -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('audit') WHERE name = 'hash'",
            [],
            |r| r.get(0),
        )
    };
    if has_hash()? {
        return Ok(());
    }
    c.execute_batch("BEGIN IMMEDIATE")?;
    // Another process may have migrated it while this one waited.
    if has_hash()? {
        return c.execute_batch("COMMIT");
    }
    let done = (|| {
        c.execute_batch(
            "ALTER TABLE audit ADD COLUMN note TEXT;
             ALTER TABLE audit ADD COLUMN prev_hash TEXT;
             ALTER TABLE audit ADD COLUMN hash TEXT;
             DROP TRIGGER IF EXISTS audit_no_update;",
        )?;
        let rows = {
            let mut st = c.prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY id"))?;
            st.query_map([], chain_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut prev = String::new();
        for mut r in rows.iter().cloned() {
            // Decisions kept their note only inside the detail text.
            r.note = legacy_note(&r.action, &r.detail);
            let h = r.compute_hash(&prev);
            c.execute(
                "UPDATE audit SET note = ?1, prev_hash = ?2, hash = ?3 WHERE id = ?4",
                params![r.note, prev, h, r.id],
            )?;
            prev = h;
        }
        c.execute_batch(RECREATE_TRIGGERS)?;
        Ok(rows.last().map(|r| r.id))
    })();
    match done {
        Ok(last) => {
            c.execute_batch("COMMIT")?;
            notes.push(match last {
                Some(id) => format!(
                    "the audit log was hash-chained when this version of shipdeck first opened it: records #1 to #{id} were written before and are vouched for only from then on"
                ),
                None => "the audit log is hash-chained from its first record".into(),
            });
            Ok(())
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// A store written before deploys kept their backend's URL: add the
/// column (empty for the deploys recorded before).
fn migrate_deploys(c: &Connection) -> rusqlite::Result<()> {
    let has = |col: &str| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('deploys') WHERE name = ?1",
            [col],
            |r| r.get(0),
        )
    };
    // No table yet (a new store): the schema creates it with the column.
    if !has("id")? || has("url")? {
        return Ok(());
    }
    match c.execute_batch("ALTER TABLE deploys ADD COLUMN url TEXT") {
        // Another process added it while this one looked.
        Err(e) if e.to_string().contains("duplicate column") => Ok(()),
        r => r,
    }
}

/// The note of a decision recorded before notes had a column of their
/// own: the text after "Go: " / "No-Go: ".
pub(super) fn legacy_note(action: &str, detail: &str) -> Option<String> {
    match action {
        "approve" => detail.strip_prefix("Go: "),
        "reject" => detail.strip_prefix("No-Go: "),
        _ => None,
    }
    .map(str::to_string)
}

fn chain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainRow> {
    Ok(ChainRow {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        env: r.get(4)?,
        version: r.get(5)?,
        from_version: r.get(6)?,
        outcome: r.get(7)?,
        detail: r.get(8)?,
        finishes: r.get(9)?,
        note: r.get(10)?,
        prev_hash: r.get(11)?,
        hash: r.get(12)?,
    })
}

/// The last verified record, if the store has one (a store written by an
/// earlier shipdeck, or opened read-only before, has none).
fn read_checkpoint(c: &Connection) -> Option<chain::Checkpoint> {
    c.query_row(
        "SELECT id, hash FROM chain_checkpoint WHERE one = 1",
        [],
        |r| {
            Ok(chain::Checkpoint {
                id: r.get(0)?,
                hash: r.get(1)?,
            })
        },
    )
    .ok()
}

fn chain_key(c: &mut Connection) -> rusqlite::Result<ChainKey> {
    let c = c.transaction()?;
    let dv: i64 = c.query_row("PRAGMA data_version", [], |r| r.get(0))?;
    let max: Option<i64> = c.query_row("SELECT MAX(id) FROM audit", [], |r| r.get(0))?;
    let seq: Option<i64> = c
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    c.commit()?;
    Ok((dv, max, seq))
}

/// What a view shows changed when this changed: the newest audit record
/// (every action, outcome, refusal and verdict is one), the newest
/// monitoring window, and who has a console open (one came or went).
/// Samples, heartbeats and lock renewals do not count.
type ChangeMark = (Option<i64>, Option<i64>, i64);

fn change_mark(c: &Connection) -> rusqlite::Result<ChangeMark> {
    c.query_row(
        "SELECT (SELECT MAX(id) FROM audit), (SELECT MAX(id) FROM monitor_runs),
                (SELECT COUNT(*) FROM presence)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

fn data_version(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// Watch the store file on a thread of its own, with its own connection
/// (whose `data_version` moves on every other connection's commit, this
/// process's included): tick `notifier` when the [`ChangeMark`] moved;
/// stop when nobody subscribes any more.
fn watch_changes(
    c: Connection,
    notifier: super::ChangeNotifier,
    path: PathBuf,
    (mut version, mut mark): (Option<i64>, Option<ChangeMark>),
) {
    let mut failing = false;
    while !notifier.is_closed() {
        std::thread::sleep(CHANGE_CHECK);
        let now = match data_version(&c) {
            Ok(v) => Some(v),
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("store {}: change watcher: {e}", path.display());
                }
                continue;
            }
        };
        if now == version {
            continue;
        }
        match change_mark(&c) {
            Ok(m) => {
                failing = false;
                version = now;
                if mark != Some(m) {
                    mark = Some(m);
                    notifier.notify();
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("store {}: change watcher: {e}", path.display());
                }
            }
        }
    }
}

fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    )
}

/// Open an existing store for reading only. In a directory where SQLite
/// cannot create its WAL index, the file is read as an immutable snapshot.
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    let plain = Connection::open_with_flags(path, flags).and_then(|c| {
        c.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get::<_, i64>(0))?;
        Ok(c)
    });
    match plain {
        Ok(c) => Ok(c),
        Err(_) => {
            let uri = format!("file:{}?immutable=1", path.display());
            Connection::open_with_flags(uri, flags)
        }
    }
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Append one audit record, chained to the newest one. Runs inside an
/// immediate transaction (see [`SqliteStore::with_audit`]).
fn insert_audit(
    c: &Connection,
    r: &NewAudit<'_>,
    finishes: Option<i64>,
    note: Option<&str>,
) -> rusqlite::Result<i64> {
    let last: Option<(i64, Option<String>)> = c
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let seq: i64 = c
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let (last_id, prev) = last
        .map(|(i, h)| (i, h.unwrap_or_default()))
        .unwrap_or((0, String::new()));
    let row = ChainRow {
        id: last_id.max(seq) + 1,
        at: ts(r.at),
        actor: r.actor.to_string(),
        action: r.action.as_str().to_string(),
        env: r.env.to_string(),
        version: r.version.map(|v| v.as_str().to_string()),
        from_version: r.from_version.map(|v| v.as_str().to_string()),
        outcome: r.outcome.as_str().to_string(),
        detail: r.detail.to_string(),
        finishes,
        note: note.map(str::to_string),
        prev_hash: Some(prev.clone()),
        hash: None,
    };
    let hash = row.compute_hash(&prev);
    c.execute(
        &format!("INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        params![
            row.id,
            row.at,
            row.actor,
            row.action,
            row.env,
            row.version,
            row.from_version,
            row.outcome,
            row.detail,
            row.finishes,
            row.note,
            prev,
            hash
        ],
    )?;
    Ok(row.id)
}

/// Append the outcome record of `started`, copying its actor, action, env
/// and versions.
fn insert_finish(
    c: &Connection,
    started: i64,
    at: DateTime<Utc>,
    outcome: Outcome,
    detail: &str,
) -> rusqlite::Result<()> {
    // An interrupted action's "unknown" after an outcome already written
    // (Ctrl-C while its outcome was on its way to the store) adds nothing.
    if outcome == Outcome::Unknown {
        let finished: bool = c.query_row(
            "SELECT COUNT(*) > 0 FROM audit WHERE finishes = ?1",
            params![started],
            |r| r.get(0),
        )?;
        if finished {
            return Ok(());
        }
    }
    let (actor, action, env, version, from): (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    ) = c.query_row(
        "SELECT actor, action, env, version, from_version FROM audit WHERE id = ?1",
        params![started],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let action = ActionKind::parse(&action).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(
            1,
            format!("action {action:?}"),
            rusqlite::types::Type::Text,
        )
    })?;
    let parse = |v: Option<String>| {
        v.map(|v| {
            Version::parse(&v).map_err(|e| {
                rusqlite::Error::InvalidColumnType(3, e.to_string(), rusqlite::types::Type::Text)
            })
        })
        .transpose()
    };
    let (version, from) = (parse(version)?, parse(from)?);
    insert_audit(
        c,
        &NewAudit {
            at,
            actor: &actor,
            action,
            env: &env,
            version: version.as_ref(),
            from_version: from.as_ref(),
            outcome,
            detail,
        },
        Some(started),
        None,
    )?;
    Ok(())
}

#[cfg(unix)]
pub(super) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() || !Path::new("/proc/self").exists()
}

#[cfg(not(unix))]
pub(super) fn pid_alive(_pid: u32) -> bool {
    true
}

impl Store for SqliteStore {
    fn audit_start(&self, rec: &NewAudit<'_>) -> Result<i64, StoreError> {
        self.with_audit(|tx| insert_audit(tx, rec, None, None))
    }

    fn audit_finish(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.with_audit(|tx| insert_finish(tx, started, at, outcome, detail))
    }

    fn record_deploy(
        &self,
        started: i64,
        rec: &DeployRecord,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.with_audit(|tx| {
            tx.execute(
                "INSERT INTO deploys (env, version, from_version, at, actor, kind, audit_id, url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rec.env,
                    rec.version.as_str(),
                    rec.from_version.as_ref().map(|v| v.as_str()),
                    ts(rec.at),
                    rec.actor,
                    rec.kind.as_str(),
                    started,
                    rec.url
                ],
            )?;
            insert_finish(tx, started, rec.at, Outcome::Succeeded, detail)
        })
    }

    fn record_approval(&self, a: &Approval) -> Result<i64, StoreError> {
        self.with_audit(|tx| {
            tx.execute(
                "INSERT INTO approvals (env, version, decision, actor, at, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.env,
                    a.version.as_str(),
                    a.decision.as_str(),
                    a.actor,
                    ts(a.at),
                    a.note
                ],
            )?;
            let detail = NewAudit::approval_detail(a);
            insert_audit(
                tx,
                &NewAudit::of_approval(a, &detail),
                None,
                a.note.as_deref(),
            )
        })
    }

    fn history(&self, env: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT s.id, s.at, s.actor, s.action, s.env, s.version, s.from_version,
                        s.outcome, s.detail, f.outcome, f.detail, f.at
                 FROM audit s LEFT JOIN audit f
                   ON f.id = (SELECT MIN(id) FROM audit WHERE finishes = s.id)
                 WHERE s.finishes IS NULL AND (?1 IS NULL OR s.env = ?1)
                 ORDER BY s.id DESC LIMIT ?2",
            )?;
            let it = st.query_map(params![env, limit as i64], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(
                |(
                    id,
                    at,
                    actor,
                    action,
                    env,
                    version,
                    from,
                    status,
                    detail,
                    fin,
                    fin_detail,
                    fin_at,
                )| {
                    let at = self.parse_time(&at)?;
                    let (outcome, detail) = audit_outcome(status, detail, fin, fin_detail, || {
                        Ok(self
                            .lock_of(&env, Utc::now())?
                            .is_some_and(|l| l.acquired_at <= at))
                    })?;
                    Ok(AuditEntry {
                        id,
                        at,
                        actor,
                        action: ActionKind::parse(&action)
                            .ok_or_else(|| self.corrupt(format!("action {action:?}")))?,
                        env,
                        version: self.parse_version(version)?,
                        from_version: self.parse_version(from)?,
                        outcome: Outcome::parse(&outcome)
                            .ok_or_else(|| self.corrupt(format!("outcome {outcome:?}")))?,
                        detail,
                        finished_at: fin_at.map(|t| self.parse_time(&t)).transpose()?,
                    })
                },
            )
            .collect()
    }

    fn deploys(&self, env: Option<&str>) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            "SELECT env, version, from_version, at, actor, kind, url FROM deploys
             WHERE ?1 IS NULL OR env = ?1 ORDER BY id",
            params![env],
        )
    }

    fn latest_deploys(&self) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            "SELECT env, version, from_version, at, actor, kind, url FROM deploys
             WHERE id IN (SELECT MAX(id) FROM deploys GROUP BY env) ORDER BY id",
            [],
        )
    }

    fn recent_deploys(&self, env: &str, limit: usize) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            "SELECT env, version, from_version, at, actor, kind, url FROM
               (SELECT * FROM deploys WHERE env = ?1 ORDER BY id DESC LIMIT ?2)
             ORDER BY id",
            params![env, limit as i64],
        )
    }

    /// Decisions about `env` as the audit log records them. The
    /// `approvals` table is only an index: when it disagrees (someone
    /// edited it), the audit log wins and the disagreement is reported
    /// through [`Store::integrity`].
    fn approvals(&self, env: &str) -> Result<Vec<Approval>, StoreError> {
        type Row = (
            String,
            Option<String>,
            String,
            String,
            Option<String>,
            String,
        );
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT action, version, actor, at, note, detail FROM audit
                 WHERE env = ?1 AND finishes IS NULL AND outcome = 'succeeded'
                   AND action IN ('approve', 'reject')
                 ORDER BY id",
            )?;
            let it = st.query_map(params![env], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            it.collect()
        })?;
        let from_audit = rows
            .into_iter()
            .map(|(action, version, actor, at, note, detail)| {
                let version = version.ok_or_else(|| self.corrupt("a decision without version"))?;
                Ok(Approval {
                    env: env.to_string(),
                    version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                    decision: if action == "approve" {
                        Decision::Go
                    } else {
                        Decision::NoGo
                    },
                    actor,
                    at: self.parse_time(&at)?,
                    note: note.or_else(|| legacy_note(&action, &detail)),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let indexed: Vec<(String, String, String, String)> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT version, decision, actor, at FROM approvals WHERE env = ?1 ORDER BY id",
            )?;
            let it = st.query_map(params![env], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            it.collect()
        })?;
        if let Some(note) = approvals_disagree(env, &from_audit, &indexed) {
            self.note(note);
        }
        Ok(from_audit)
    }

    fn try_lock(&self, lock: &LockInfo) -> Result<Result<(), LockInfo>, StoreError> {
        let now = lock.acquired_at;
        let current = self.lock_of(&lock.env, now)?;
        if let Some(held) = current
            && !(held.pid == lock.pid && held.host == lock.host)
        {
            return Ok(Err(held));
        }
        // Insert-or-replace inside an immediate transaction so two processes
        // racing for the same lock cannot both win.
        let won = self.with_write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Option<(u32, String, String)> = tx
                .query_row(
                    "SELECT pid, host, expires_at FROM locks WHERE env = ?1",
                    params![lock.env],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let free = match &existing {
                None => true,
                Some((pid, host, expires)) => {
                    (*pid == lock.pid && *host == lock.host)
                        || expires.as_str() < ts(now).as_str()
                        || (*host == lock.host && !pid_alive(*pid))
                }
            };
            if free {
                tx.execute(
                    "INSERT OR REPLACE INTO locks (env, holder, pid, host, acquired_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        lock.env,
                        lock.holder,
                        lock.pid,
                        lock.host,
                        ts(lock.acquired_at),
                        ts(lock.expires_at)
                    ],
                )?;
            }
            tx.commit()?;
            Ok(free)
        })?;
        if won {
            Ok(Ok(()))
        } else {
            match self.lock_of(&lock.env, now)? {
                Some(h) => Ok(Err(h)),
                None => self.try_lock(lock),
            }
        }
    }

    fn unlock(&self, env: &str, pid: u32, host: &str) -> Result<(), StoreError> {
        self.with_write(|c| {
            c.execute(
                "DELETE FROM locks WHERE env = ?1 AND pid = ?2 AND host = ?3",
                params![env, pid, host],
            )
            .map(|_| ())
        })
    }

    fn lock_of(&self, env: &str, now: DateTime<Utc>) -> Result<Option<LockInfo>, StoreError> {
        let row: Option<(String, u32, String, String, String)> = self.with(|c| {
            c.query_row(
                "SELECT holder, pid, host, acquired_at, expires_at FROM locks WHERE env = ?1",
                params![env],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
        })?;
        let Some((holder, pid, host, acquired, expires)) = row else {
            return Ok(None);
        };
        let info = LockInfo {
            env: env.to_string(),
            holder,
            pid,
            host: host.clone(),
            acquired_at: self.parse_time(&acquired)?,
            expires_at: self.parse_time(&expires)?,
        };
        let stale = info.expires_at < now || (host == crate::host::hostname() && !pid_alive(pid));
        Ok((!stale).then_some(info))
    }

    fn record_monitor(&self, m: &MonitorRecord) -> Result<(), StoreError> {
        self.with_write(|c| {
            c.execute(
                "INSERT INTO monitor_runs (env, version, started_at, finished_at, verdict, metric, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    m.env,
                    m.version.as_str(),
                    ts(m.started_at),
                    m.finished_at.map(ts),
                    m.verdict,
                    m.metric,
                    m.reason
                ],
            )
            .map(|_| ())
        })
    }

    fn caught_versions(&self, env: &str) -> Result<Vec<Version>, StoreError> {
        // A window's outcome is on the record that finishes its start.
        let rows: Vec<String> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT s.version FROM audit s LEFT JOIN audit f
                   ON f.id = (SELECT MIN(id) FROM audit WHERE finishes = s.id)
                 WHERE s.env = ?1 AND s.action = 'monitor' AND s.finishes IS NULL
                   AND s.version IS NOT NULL AND COALESCE(f.outcome, s.outcome) = 'failed'
                 GROUP BY s.version ORDER BY MIN(s.id)",
            )?;
            let it = st.query_map(params![env], |r| r.get(0))?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|v| Version::parse(&v).map_err(|e| self.corrupt(e)))
            .collect()
    }

    fn last_monitor(&self, env: &str) -> Result<Option<MonitorRecord>, StoreError> {
        type Row = (
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
        );
        let row: Option<Row> = self.with(|c| {
            c.query_row(
                "SELECT version, started_at, finished_at, verdict, metric, reason
                 FROM monitor_runs WHERE env = ?1 ORDER BY id DESC LIMIT 1",
                params![env],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
        })?;
        row.map(|(version, started, finished, verdict, metric, reason)| {
            Ok(MonitorRecord {
                env: env.to_string(),
                version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                started_at: self.parse_time(&started)?,
                finished_at: finished.map(|f| self.parse_time(&f)).transpose()?,
                verdict,
                metric,
                reason,
            })
        })
        .transpose()
    }

    fn record_sample(
        &self,
        env: &str,
        at: DateTime<Utc>,
        s: &Sample,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        self.with_write(|c| {
            c.execute(
                "INSERT OR REPLACE INTO samples (env, at, requests, errors, p50_ms, p95_ms, p99_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    env,
                    ts(at),
                    s.requests,
                    s.errors,
                    s.p50_ms,
                    s.p95_ms,
                    s.p99_ms
                ],
            )?;
            c.execute(
                "DELETE FROM samples WHERE env = ?1 AND at < ?2",
                params![env, ts(crate::domain::clock::before(at, keep))],
            )?;
            Ok(())
        })
    }

    fn samples(
        &self,
        env: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Sample)>, StoreError> {
        type Row = (String, f64, f64, Option<f64>, Option<f64>, Option<f64>);
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT at, requests, errors, p50_ms, p95_ms, p99_ms FROM samples
                 WHERE env = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at",
            )?;
            let it = st.query_map(params![env, ts(from), ts(to)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|(at, requests, errors, p50_ms, p95_ms, p99_ms)| {
                Ok((
                    self.parse_time(&at)?,
                    Sample {
                        t: 0.0,
                        requests,
                        errors,
                        p50_ms,
                        p95_ms,
                        p99_ms,
                    },
                ))
            })
            .collect()
    }

    /// `history --verify`: the whole log, from its first record.
    fn verify(&self) -> Result<ChainReport, StoreError> {
        let mut report = self.walk_chain(None)?;
        let live: Vec<String> = self.with(|c| {
            let mut st = c.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")?;
            let it = st.query_map([], |r| r.get(0))?;
            it.collect()
        })?;
        for t in AUDIT_TRIGGERS {
            if !live.iter().any(|l| l == t) {
                report.warnings.push(format!(
                    "the audit log's append-only trigger {t} is missing right now"
                ));
            }
        }
        Ok(report)
    }

    fn integrity(&self) -> Option<String> {
        let mut problems = Vec::new();
        if let Some(why) = self.file_moved() {
            problems.push(format!(
                "{why} ({}); this process no longer acts: restart it",
                self.path.display()
            ));
        }
        match self.chain_report(false) {
            Ok(r) => {
                if let Some(b) = r.broken {
                    problems.push(format!(
                        "the audit log's hash chain is broken at {b}; actions are refused (see `shipdeck history --verify`)"
                    ));
                }
            }
            Err(e) => problems.push(format!("the audit log cannot be verified: {e}")),
        }
        problems.extend(
            self.notes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        if let Some(why) = &self.read_only {
            problems.push(format!(
                "store {} is read-only ({why}): status and history work, actions are refused",
                self.path.display()
            ));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    fn unfinished(&self) -> Result<Vec<Unfinished>, StoreError> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT s.id, s.at, s.actor, s.action, s.env, s.version, s.from_version,
                        (SELECT MIN(l.id) FROM audit l
                          WHERE l.env = s.env AND l.id > s.id AND l.finishes IS NULL
                            AND l.outcome = 'started' AND l.action IN ('promote', 'rollback'))
                 FROM audit s
                 WHERE s.finishes IS NULL AND s.outcome = 'started'
                   AND s.action IN ('promote', 'rollback')
                   AND NOT EXISTS (SELECT 1 FROM audit f WHERE f.finishes = s.id)
                 ORDER BY s.id",
            )?;
            let it = st.query_map([], |r| {
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
            .map(|(id, at, actor, action, env, version, from, later)| {
                Ok(Unfinished {
                    id,
                    at: self.parse_time(&at)?,
                    actor,
                    action: ActionKind::parse(&action)
                        .ok_or_else(|| self.corrupt(format!("action {action:?}")))?,
                    env,
                    version: self
                        .parse_version(version)?
                        .ok_or_else(|| self.corrupt(format!("deploy #{id} without version")))?,
                    from_version: self.parse_version(from)?,
                    superseded_by: later,
                })
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn heartbeat(&self, p: &Presence, expire_before: DateTime<Utc>) -> Result<(), StoreError> {
        self.with_write(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM presence WHERE last_seen < ?1",
                params![ts(expire_before)],
            )?;
            tx.execute(
                "INSERT INTO presence (host, pid, actor, since, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (host, pid) DO UPDATE SET
                     actor = excluded.actor, last_seen = excluded.last_seen",
                params![p.host, p.pid, p.actor, ts(p.since), ts(p.last_seen)],
            )?;
            tx.commit()
        })
    }

    fn leave(&self, host: &str, pid: u32) -> Result<(), StoreError> {
        self.with_write(|c| {
            c.execute(
                "DELETE FROM presence WHERE host = ?1 AND pid = ?2",
                params![host, pid],
            )
            .map(|_| ())
        })
    }

    fn present(&self, fresh_since: DateTime<Utc>) -> Result<Vec<Presence>, StoreError> {
        type Row = (String, u32, String, String, String);
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT host, pid, actor, since, last_seen FROM presence
                 WHERE last_seen >= ?1 ORDER BY since, host, pid",
            )?;
            let it = st.query_map(params![ts(fresh_since)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            it.collect()
        })?;
        let here = crate::host::hostname();
        let mut out = Vec::with_capacity(rows.len());
        for (host, pid, actor, since, last_seen) in rows {
            if host == here && !pid_alive(pid) {
                continue;
            }
            out.push(Presence {
                actor,
                host,
                pid,
                since: self.parse_time(&since)?,
                last_seen: self.parse_time(&last_seen)?,
            });
        }
        Ok(out)
    }

    /// A watcher thread with its own connection, checking every
    /// [`CHANGE_CHECK`] (one `PRAGMA data_version`, and one indexed read
    /// when it moved); it ends once every subscriber has gone.
    fn changes(&self) -> Result<Changes, StoreError> {
        let conn = match &self.read_only {
            None => Connection::open(&self.path),
            Some(_) => open_read_only(&self.path),
        }
        .map_err(|e| self.err(e))?;
        conn.busy_timeout(Duration::from_secs(1))
            .map_err(|e| self.err(e))?;
        // The starting point is read here, before the feed is handed out:
        // read on the watcher thread, a commit made between this return
        // and the thread's first look would be the baseline, never a tick.
        let start = (data_version(&conn).ok(), change_mark(&conn).ok());
        let (notifier, feed) = Changes::channel();
        let path = self.path.clone();
        std::thread::Builder::new()
            .name("shipdeck-changes".into())
            .spawn(move || watch_changes(conn, notifier, path, start))
            .map_err(|e| self.err(format!("cannot start the change watcher: {e}")))?;
        Ok(feed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }
    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }
    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("sub/shipdeck.db")).unwrap();
        (dir, s)
    }

    fn start(s: &SqliteStore, env: &str, at: DateTime<Utc>) -> i64 {
        let ver = v("v2");
        s.audit_start(&NewAudit {
            at,
            actor: "alice@box",
            action: ActionKind::Promote,
            env,
            version: Some(&ver),
            from_version: None,
            outcome: Outcome::Started,
            detail: "deploying",
        })
        .unwrap()
    }

    #[test]
    fn processes_opening_a_new_store_together_never_see_it_locked() {
        // A console and a command started at once on a fresh store: one
        // of them was told "database is locked".
        for _ in 0..15 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data/shipdeck.db");
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || SqliteStore::open(&path).map(|_| ()))
                })
                .collect();
            for o in opens {
                let r = o.join().unwrap();
                assert!(r.is_ok(), "{r:?}");
            }
        }
    }

    #[test]
    fn a_directory_or_a_device_as_the_store_path_is_named_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let e = SqliteStore::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("a directory, not a store file"), "{e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        let e = SqliteStore::open(Path::new("/dev/zero"))
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let link = dir.path().join("s.db");
        std::os::unix::fs::symlink("/nonexistent-dir/s.db", &link).unwrap();
        let e = SqliteStore::open(&link).err().expect("refused").to_string();
        assert!(
            e.contains("symbolic link to /nonexistent-dir/s.db, whose directory does not exist"),
            "{e}"
        );
    }
    #[test]
    fn a_started_action_without_outcome_reads_unknown() {
        let (_d, s) = open();
        start(&s, "staging", t(0));
        let h = s.history(None, 10).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].outcome, Outcome::Unknown);
        assert!(h[0].detail.contains("no outcome recorded"));
    }

    #[test]
    fn outcome_and_deploy_are_recorded_together() {
        let (_d, s) = open();
        let id = start(&s, "staging", t(0));
        let rec = DeployRecord {
            env: "staging".into(),
            version: v("v2"),
            from_version: Some(v("v1")),
            at: t(1),
            actor: "alice@box".into(),
            kind: DeployKind::Promote,
            url: Some("https://github.com/acme/shop/actions/runs/4242".into()),
        };
        s.record_deploy(id, &rec, "staging reports v2").unwrap();
        let h = s.history(Some("staging"), 10).unwrap();
        assert_eq!(h.len(), 1, "outcome records fold into their action");
        assert_eq!(h[0].outcome, Outcome::Succeeded);
        assert_eq!(h[0].detail, "deploying — staging reports v2");
        assert_eq!(h[0].finished_at, Some(t(1)));
        assert_eq!(s.deploys(Some("staging")).unwrap(), vec![rec]);
        assert!(s.history(Some("production"), 10).unwrap().is_empty());
    }

    #[test]
    fn a_store_from_before_deploy_urls_gains_the_column_and_keeps_its_deploys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            let id = start(&s, "staging", t(0));
            let rec = DeployRecord {
                env: "staging".into(),
                version: v("v2"),
                from_version: None,
                at: t(1),
                actor: "alice".into(),
                kind: DeployKind::Promote,
                url: None,
            };
            s.record_deploy(id, &rec, "staging reports v2").unwrap();
            // The deploys table as an earlier shipdeck wrote it.
            s.with(|c| c.execute_batch("ALTER TABLE deploys DROP COLUMN url"))
                .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let old = s.deploys(Some("staging")).unwrap();
        assert_eq!((old.len(), old[0].url.as_deref()), (1, None));
        let id = start(&s, "staging", t(2));
        let rec = DeployRecord {
            env: "staging".into(),
            version: v("v3"),
            from_version: Some(v("v2")),
            at: t(3),
            actor: "alice".into(),
            kind: DeployKind::Promote,
            url: Some("https://ci.example.com/job/deploy/311/".into()),
        };
        s.record_deploy(id, &rec, "staging reports v3").unwrap();
        assert_eq!(s.latest_deploys().unwrap(), vec![rec]);
        assert!(s.verify().unwrap().intact());
    }

    #[test]
    fn status_reads_only_the_latest_deploy_of_each_environment() {
        let (_d, s) = open();
        for (i, (env, ver)) in [
            ("staging", "v1"),
            ("production", "v1"),
            ("staging", "v2"),
            ("staging", "v3"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = start(&s, env, t(i as i64));
            let rec = DeployRecord {
                env: env.into(),
                version: v(ver),
                from_version: None,
                at: t(i as i64),
                actor: "alice".into(),
                kind: DeployKind::Promote,
                url: None,
            };
            s.record_deploy(id, &rec, "ok").unwrap();
        }
        let latest: Vec<(String, String)> = s
            .latest_deploys()
            .unwrap()
            .into_iter()
            .map(|d| (d.env, d.version.to_string()))
            .collect();
        assert_eq!(
            latest,
            [
                ("production".to_string(), "v1".to_string()),
                ("staging".to_string(), "v3".to_string())
            ]
        );
        let recent: Vec<String> = s
            .recent_deploys("staging", 2)
            .unwrap()
            .into_iter()
            .map(|d| d.version.to_string())
            .collect();
        assert_eq!(recent, ["v2", "v3"], "the last two, oldest first");
    }

    fn no_go(s: &SqliteStore) -> Approval {
        let a = no_go_value();
        s.record_approval(&a).unwrap();
        a
    }

    fn no_go_value() -> Approval {
        Approval {
            env: "production".into(),
            version: v("v2"),
            decision: Decision::NoGo,
            actor: "bob".into(),
            at: t(3),
            note: Some("p95".into()),
        }
    }

    #[test]
    fn an_edited_approvals_table_does_not_turn_a_no_go_into_a_go() {
        let (_d, s) = open();
        let a = no_go(&s);
        s.with(|c| c.execute("UPDATE approvals SET decision = 'go'", []))
            .unwrap();
        assert_eq!(s.approvals("production").unwrap(), vec![a]);
        let why = s.integrity().expect("the disagreement is reported");
        assert!(why.contains("approvals table disagrees"), "{why}");
    }

    #[test]
    fn a_rewritten_audit_record_breaks_the_chain_and_stops_actions() {
        let (_d, s) = open();
        no_go(&s);
        start(&s, "staging", t(4));
        assert!(s.verify().unwrap().intact());
        // Someone else, with the sqlite3 shell.
        Connection::open(&s.path)
            .unwrap()
            .execute_batch(
                "DROP TRIGGER audit_no_update;
                 UPDATE audit SET action = 'approve', detail = 'Go' WHERE id = 1;",
            )
            .unwrap();
        let b = s.verify().unwrap().broken.unwrap();
        assert_eq!(b.id, 1);
        let err = s.audit_start(&NewAudit {
            at: t(5),
            actor: "alice",
            action: ActionKind::Promote,
            env: "production",
            version: None,
            from_version: None,
            outcome: Outcome::Started,
            detail: "x",
        });
        assert!(matches!(err, Err(StoreError::Tampered { .. })), "{err:?}");
        assert!(s.integrity().unwrap().contains("broken at record #1"));
    }

    fn checkpoint(s: &SqliteStore) -> Option<chain::Checkpoint> {
        s.with(|c| Ok(read_checkpoint(c))).unwrap()
    }

    #[test]
    fn an_action_walks_only_what_was_appended_since_the_verified_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            for _ in 0..3 {
                no_go(&s);
            }
            assert!(s.verify().unwrap().intact());
            assert_eq!(checkpoint(&s).map(|c| c.id), Some(3));
        }
        // Record #1, before the checkpoint, rewritten behind shipdeck's back.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TRIGGER audit_no_update;
                 UPDATE audit SET detail = 'Go' WHERE id = 1;",
            )
            .unwrap();
        // A fresh process's action reads from the checkpoint on: it does
        // not walk record #1 again (that is `history --verify`'s job) …
        let s = SqliteStore::open(&path).unwrap();
        no_go(&s);
        assert_eq!(checkpoint(&s).map(|c| c.id), Some(3));
        // … which walks the whole log, names #1, and drops the checkpoint,
        // so that every later action walks the whole log and refuses.
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.verify().unwrap().broken.unwrap().id, 1);
        assert_eq!(checkpoint(&s), None);
        let s = SqliteStore::open(&path).unwrap();
        let err = s.record_approval(&no_go_value());
        assert!(matches!(err, Err(StoreError::Tampered { .. })), "{err:?}");
    }

    #[test]
    fn a_checkpoint_the_chain_does_not_vouch_for_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            no_go(&s);
            no_go(&s);
            assert!(s.verify().unwrap().intact());
        }
        // A forged checkpoint: the whole log is walked, found intact, and
        // the checkpoint put back on the chain's head.
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE chain_checkpoint SET hash = 'forged'", [])
            .unwrap();
        let s = SqliteStore::open(&path).unwrap();
        no_go(&s);
        // (The check runs before the action's own record is appended.)
        let cp = checkpoint(&s).unwrap();
        assert_eq!(cp.id, 2);
        assert_ne!(cp.hash, "forged");
        let head = s.verify().unwrap().head;
        assert_eq!(
            checkpoint(&s).map(|c| (c.id, Some(c.hash))),
            Some((3, head))
        );
        // The checkpoint's own record rewritten: it no longer vouches, the
        // whole log is walked and the action refused.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TRIGGER audit_no_update;
                 UPDATE audit SET detail = 'Go' WHERE id = 3;",
            )
            .unwrap();
        let s = SqliteStore::open(&path).unwrap();
        let err = s.record_approval(&no_go_value());
        assert!(matches!(err, Err(StoreError::Tampered { .. })), "{err:?}");
    }

    #[test]
    fn missing_triggers_are_recreated_and_reported_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            no_go(&s);
            s.with(|c| c.execute_batch("DROP TRIGGER audit_no_delete"))
                .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let why = s.integrity().expect("reported");
        assert!(
            why.contains("audit_no_delete") && why.contains("missing"),
            "{why}"
        );
        let r = s.with(|c| c.execute("DELETE FROM audit", []));
        assert!(r.is_err(), "recreated");
        let report = s.verify().unwrap();
        assert!(report.intact());
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("audit_no_delete"))
        );
    }

    #[test]
    fn a_store_from_before_the_chain_is_chained_on_first_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // The schema and rows an earlier shipdeck wrote.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
                   actor TEXT NOT NULL, action TEXT NOT NULL, env TEXT NOT NULL, version TEXT,
                   from_version TEXT, outcome TEXT NOT NULL, detail TEXT NOT NULL,
                   finishes INTEGER REFERENCES audit(id));
                 CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                   BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                 CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                   BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                 CREATE TABLE approvals (id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT NOT NULL,
                   version TEXT NOT NULL, decision TEXT NOT NULL, actor TEXT NOT NULL,
                   at TEXT NOT NULL, note TEXT);
                 INSERT INTO audit (at, actor, action, env, version, outcome, detail)
                   VALUES ('2026-11-24T12:03:00.000Z', 'bob', 'reject', 'production', 'v2',
                           'succeeded', 'No-Go: p95');
                 INSERT INTO approvals (env, version, decision, actor, at, note)
                   VALUES ('production', 'v2', 'no_go', 'bob', '2026-11-24T12:03:00.000Z', 'p95');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let report = s.verify().unwrap();
        assert!(report.intact(), "{report:?}");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("records #1 to #1")),
            "{report:?}"
        );
        let a = s.approvals("production").unwrap();
        assert_eq!(a[0].note.as_deref(), Some("p95"));
        assert_eq!(a[0].decision, Decision::NoGo);
        start(&s, "staging", t(5));
        assert!(s.verify().unwrap().intact());
        assert_eq!(s.integrity(), None);
        // Opening again migrates nothing more.
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.verify().unwrap().warnings.len(), 1);
    }

    #[test]
    fn a_deleted_store_file_stops_writes_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = SqliteStore::open(&path).unwrap();
        no_go(&s);
        std::fs::remove_file(&path).unwrap();
        let err = s.record_approval(&Approval {
            decision: Decision::Go,
            ..no_go_template()
        });
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("deleted") && msg.contains("s.db"), "{msg}");
        assert!(s.integrity().unwrap().contains("deleted"));
        // A new file at the path is another store, not this one.
        let _other = SqliteStore::open(&path).unwrap();
        assert!(s.integrity().unwrap().contains("replaced"));
    }

    fn no_go_template() -> Approval {
        Approval {
            env: "production".into(),
            version: v("v2"),
            decision: Decision::NoGo,
            actor: "bob".into(),
            at: t(3),
            note: None,
        }
    }

    #[test]
    fn unfinished_deploys_are_listed_until_they_have_an_outcome() {
        let (_d, s) = open();
        let a = start(&s, "staging", t(0));
        let b = start(&s, "staging", t(1));
        let u = s.unfinished().unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].id, u[0].superseded_by), (a, Some(b)));
        assert_eq!(u[1].superseded_by, None);
        s.audit_finish(a, t(2), Outcome::Unknown, "reconciled")
            .unwrap();
        assert_eq!(s.unfinished().unwrap().len(), 1);
    }

    #[test]
    fn an_interrupted_marker_after_a_recorded_outcome_adds_nothing() {
        let (_d, s) = open();
        let id = start(&s, "staging", t(0));
        let rec = DeployRecord {
            env: "staging".into(),
            version: v("v2"),
            from_version: None,
            at: t(1),
            actor: "alice".into(),
            kind: DeployKind::Promote,
            url: None,
        };
        s.record_deploy(id, &rec, "staging reports v2").unwrap();
        s.audit_finish(id, t(2), Outcome::Unknown, "interrupted")
            .unwrap();
        let h = s.history(None, 10).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].outcome, Outcome::Succeeded);
        assert!(s.verify().unwrap().intact());
    }

    #[test]
    fn audit_log_is_append_only() {
        let (_d, s) = open();
        start(&s, "staging", t(0));
        let r = s.with(|c| c.execute("UPDATE audit SET actor = 'mallory'", []));
        assert!(r.unwrap_err().to_string().contains("append-only"));
        let r = s.with(|c| c.execute("DELETE FROM audit", []));
        assert!(r.is_err());
    }

    #[test]
    fn approvals_round_trip_with_audit() {
        let (_d, s) = open();
        let a = Approval {
            env: "production".into(),
            version: v("v2"),
            decision: Decision::NoGo,
            actor: "bob".into(),
            at: t(3),
            note: Some("p95 too high in staging".into()),
        };
        s.record_approval(&a).unwrap();
        assert_eq!(s.approvals("production").unwrap(), vec![a]);
        let h = s.history(None, 5).unwrap();
        assert_eq!(h[0].action, ActionKind::Reject);
        assert_eq!(h[0].detail, "No-Go: p95 too high in staging");
    }

    #[test]
    fn caught_versions_are_the_failed_windows_of_one_env_read_in_one_query() {
        let (_d, s) = open();
        let window = |env: &str, ver: &str, at: i64, outcome: Option<Outcome>| {
            let version = v(ver);
            let id = s
                .audit_start(&NewAudit {
                    at: t(at),
                    actor: "console",
                    action: ActionKind::Monitor,
                    env,
                    version: Some(&version),
                    from_version: None,
                    outcome: if outcome.is_some() {
                        Outcome::Started
                    } else {
                        Outcome::Failed
                    },
                    detail: "window",
                })
                .unwrap();
            if let Some(o) = outcome {
                s.audit_finish(id, t(at + 1), o, "verdict").unwrap();
            }
        };
        window("production", "v3", 0, Some(Outcome::Failed));
        window("production", "v4", 2, Some(Outcome::Succeeded));
        window("production", "v3", 4, Some(Outcome::Failed));
        window("staging", "v5", 6, Some(Outcome::Failed));
        window("production", "v6", 8, None); // recorded failed at once
        window("production", "v7", 10, Some(Outcome::Unknown));
        // The same answer as walking the whole history, in one read.
        let walked: Vec<Version> = s
            .history(Some("production"), 100_000)
            .unwrap()
            .into_iter()
            .rev()
            .filter(|e| e.action == ActionKind::Monitor && e.outcome == Outcome::Failed)
            .filter_map(|e| e.version)
            .fold(Vec::new(), |mut out, v| {
                if !out.contains(&v) {
                    out.push(v);
                }
                out
            });
        assert_eq!(walked, vec![v("v3"), v("v6")]);
        assert_eq!(s.caught_versions("production").unwrap(), walked);
        assert_eq!(s.caught_versions("staging").unwrap(), vec![v("v5")]);
        assert!(s.caught_versions("local").unwrap().is_empty());
    }

    #[test]
    fn locks_exclude_other_holders_until_released_or_expired() {
        let (_d, s) = open();
        let host = crate::host::hostname();
        let mine = LockInfo {
            env: "production".into(),
            holder: "alice".into(),
            pid: std::process::id(),
            host: host.clone(),
            acquired_at: t(0),
            expires_at: t(10),
        };
        assert_eq!(s.try_lock(&mine).unwrap(), Ok(()));
        // Another live process on another host.
        let theirs = LockInfo {
            holder: "bob".into(),
            pid: 1,
            host: "elsewhere".into(),
            acquired_at: t(1),
            expires_at: t(11),
            ..mine.clone()
        };
        let held = s.try_lock(&theirs).unwrap().unwrap_err();
        assert_eq!(held.holder, "alice");
        // After expiry it can be taken.
        let later = LockInfo {
            acquired_at: t(20),
            expires_at: t(30),
            ..theirs.clone()
        };
        assert_eq!(s.try_lock(&later).unwrap(), Ok(()));
        s.unlock("production", 1, "elsewhere").unwrap();
        assert_eq!(s.lock_of("production", t(21)).unwrap(), None);
    }

    #[test]
    fn a_lock_of_a_dead_local_process_is_stale() {
        let (_d, s) = open();
        let dead = LockInfo {
            env: "staging".into(),
            holder: "ghost".into(),
            pid: u32::MAX - 7,
            host: crate::host::hostname(),
            acquired_at: t(0),
            expires_at: t(60),
        };
        s.try_lock(&dead).unwrap().unwrap();
        assert_eq!(s.lock_of("staging", t(1)).unwrap(), None);
    }

    #[test]
    fn samples_are_pruned_and_ranged() {
        let (_d, s) = open();
        for i in 0..10 {
            let smp = Sample {
                t: 0.0,
                requests: 100.0 + i as f64,
                errors: 1.0,
                p50_ms: Some(40.0),
                p95_ms: None,
                p99_ms: Some(200.0),
            };
            s.record_sample("production", t(i), &smp, chrono::Duration::minutes(5))
                .unwrap();
        }
        let got = s.samples("production", t(0), t(100)).unwrap();
        assert_eq!(
            got.len(),
            6,
            "older than 5 min before the newest are pruned"
        );
        assert_eq!(got[0].0, t(4));
        assert_eq!(got[5].1.requests, 109.0);
        assert_eq!(got[5].1.p95_ms, None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn another_handles_approval_ticks_the_change_feed_and_a_sample_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let watcher = SqliteStore::open(&path).unwrap();
        let other = SqliteStore::open(&path).unwrap();
        let mut feed = watcher.changes().unwrap();
        let wait = |feed: &Changes, limit_ms: u64| {
            let mut feed = feed.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(limit_ms), feed.changed())
                    .await
                    .is_ok()
            }
        };
        let smp = Sample {
            t: 0.0,
            requests: 1.0,
            errors: 0.0,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
        };
        other
            .record_sample("production", t(0), &smp, chrono::Duration::minutes(5))
            .unwrap();
        // (A short look: under load the watcher may not have checked yet,
        // so this alone proves little; `feed.count()` below says that the
        // sample never ticked, whenever the watcher got to see it.)
        assert!(!wait(&feed, 1500).await, "a metric sample is no change");
        other.record_approval(&no_go_value()).unwrap();
        let ticked = tokio::time::timeout(Duration::from_secs(30), feed.changed()).await;
        assert_eq!(ticked.ok(), Some(true), "no tick for another's approval");
        assert_eq!(feed.count(), 1, "the sample ticked");
        // The watcher's own store writes are changes too (another console
        // of this machine may be the one that wrote).
        start(&watcher, "staging", t(1));
        assert!(wait(&feed, 30_000).await);
    }

    #[test]
    fn presence_is_kept_by_heartbeats_and_expires_without_them() {
        let (_d, s) = open();
        let seen = |actor: &str, host: &str, pid, at| Presence {
            actor: actor.into(),
            host: host.into(),
            pid,
            since: t(0),
            last_seen: at,
        };
        s.heartbeat(&seen("alice@a", "host-a", 10, t(0)), t(-1))
            .unwrap();
        s.heartbeat(&seen("bob@b", "host-b", 20, t(1)), t(0))
            .unwrap();
        let who: Vec<String> = s
            .present(t(0))
            .unwrap()
            .into_iter()
            .map(|p| p.actor)
            .collect();
        assert_eq!(who, ["alice@a", "bob@b"]);
        // alice's heartbeats stop; bob's go on: after a while only bob is
        // listed, and alice's row is gone for good.
        s.heartbeat(&seen("bob@b", "host-b", 20, t(5)), t(3))
            .unwrap();
        let now = s.present(t(3)).unwrap();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].actor, "bob@b");
        assert_eq!((now[0].since, now[0].last_seen), (t(0), t(5)));
        assert_eq!(s.present(t(-10)).unwrap().len(), 1, "alice was pruned");
        // bob quits.
        s.leave("host-b", 20).unwrap();
        assert!(s.present(t(-10)).unwrap().is_empty());
    }

    #[test]
    fn a_console_of_this_machine_whose_process_is_gone_is_not_present() {
        let (_d, s) = open();
        let here = crate::host::hostname();
        for pid in [std::process::id(), u32::MAX - 7] {
            let p = Presence {
                actor: "me".into(),
                host: here.clone(),
                pid,
                since: t(0),
                last_seen: t(0),
            };
            s.heartbeat(&p, t(-1)).unwrap();
        }
        let who = s.present(t(0)).unwrap();
        assert_eq!(who.len(), 1);
        assert_eq!(who[0].pid, std::process::id());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_console_opening_or_closing_ticks_the_change_feed_and_a_heartbeat_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let watcher = SqliteStore::open(&path).unwrap();
        let other = SqliteStore::open(&path).unwrap();
        let mut feed = watcher.changes().unwrap();
        let p = Presence {
            actor: "bob@b".into(),
            host: "host-b".into(),
            pid: 20,
            since: t(0),
            last_seen: t(0),
        };
        let ticks = |feed: &Changes| {
            let mut feed = feed.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(1500), feed.changed())
                    .await
                    .is_ok()
            }
        };
        other.heartbeat(&p, t(-1)).unwrap();
        let ticked = tokio::time::timeout(Duration::from_secs(30), feed.changed()).await;
        assert_eq!(ticked.ok(), Some(true), "no tick for a console that opened");
        assert_eq!(feed.count(), 1);
        let beat = Presence {
            last_seen: t(1),
            ..p.clone()
        };
        other.heartbeat(&beat, t(-1)).unwrap();
        // A short look (under load the watcher may not have checked yet);
        // the count after the next change is what proves the heartbeat
        // never ticked.
        assert!(!ticks(&feed).await, "a heartbeat is no change");
        other.leave("host-b", 20).unwrap();
        let ticked = tokio::time::timeout(Duration::from_secs(30), feed.changed()).await;
        assert_eq!(ticked.ok(), Some(true), "no tick for a console that closed");
        assert_eq!(feed.count(), 2, "the heartbeat ticked");
    }

    #[test]
    fn two_handles_on_one_file_interleave_safely() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let a = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        let b = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        let threads: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|s| {
                std::thread::spawn(move || {
                    for i in 0..50 {
                        start(&s, "staging", t(i));
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(a.history(None, 1000).unwrap().len(), 100);
    }
}
