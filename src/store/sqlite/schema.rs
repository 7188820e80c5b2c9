//! The schema, and preparing a file on open: creating the tables, waiting
//! out a busy database, and migrating files written by older versions.

use super::*;

pub(super) const SCHEMA: &str = r#"
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
-- The few records a status view asks for by kind (Go/No-Go decisions,
-- failed windows, deploys begun): found without reading the history
-- around them. A finish record copies its start's env and action.
CREATE INDEX IF NOT EXISTS audit_kind ON audit(action, outcome, env, finishes);
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
    expires_at  TEXT NOT NULL,
    audit_id    INTEGER,
    pid_space   TEXT
);
CREATE TABLE IF NOT EXISTS monitor_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    env         TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    verdict     TEXT NOT NULL,
    metric      TEXT,
    reason      TEXT NOT NULL,
    start_id    INTEGER
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
-- Open consoles (who else is watching), kept by their heartbeat; keyed
-- by pid space too ('' for none): two containers' pid 1 under one name.
CREATE TABLE IF NOT EXISTS presence (
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    since     TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    pid_space TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (host, pid, pid_space)
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

/// Set up a read-write connection: pragmas, schema, and the audit log's
/// migration to a hash chain. Returns what it found wrong (and repaired).
/// [`prepare`], waiting out another process that is preparing the same new
/// store: switching a fresh file to WAL and creating the schema can answer
/// "database is locked" at once (SQLite skips the busy handler where two
/// connections would otherwise deadlock), so a console and a command
/// started together on a new store must not fail on it. Every step of
/// `prepare` is idempotent.
pub(super) fn prepare_waiting(c: &Connection) -> rusqlite::Result<Vec<String>> {
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

pub(super) fn prepare(c: &Connection) -> rusqlite::Result<Vec<String>> {
    // The busy wait is the connection's own (`busy::handler`, set on open):
    // a busy_timeout here would replace it with a silent second wait.
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
        // The checkpoint's guards count from the store's mark on: a store
        // from before them gets them now, without an alarm.
        let mark: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let guards: &[&str] = if mark >= CHECKPOINT_GUARDED {
            &CHECKPOINT_TRIGGERS
        } else {
            &[]
        };
        let missing: Vec<&str> = AUDIT_TRIGGERS
            .into_iter()
            .chain(guards.iter().copied())
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
    migrate_locks(c)?;
    migrate_presence(c)?;
    migrate_monitor_runs(c)?;
    c.execute_batch(SCHEMA)?;
    c.execute_batch(LOCK_NEW_HOLDER)?;
    c.execute_batch(RECREATE_TRIGGERS)?;
    c.execute_batch(RECREATE_CHECKPOINT_TRIGGERS)?;
    let mark: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if mark < CHECKPOINT_GUARDED {
        c.pragma_update(None, "user_version", CHECKPOINT_GUARDED)?;
    }
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
pub(super) fn migrate_audit(c: &Connection, notes: &mut Vec<String>) -> rusqlite::Result<()> {
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
pub(super) fn migrate_deploys(c: &Connection) -> rusqlite::Result<()> {
    add_columns(c, "deploys", &[("url", "TEXT")])
}

/// Add the `columns` (name, type) that `table` lacks, each `NULL` in the
/// rows written before. No table yet (a new store): the schema creates it
/// with them. Another process adding one while this one looked is fine.
fn add_columns(c: &Connection, table: &str, columns: &[(&str, &str)]) -> rusqlite::Result<()> {
    let has = |col: &str| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, col],
            |r| r.get(0),
        )
    };
    let any: bool = c.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1)",
        [table],
        |r| r.get(0),
    )?;
    if !any {
        return Ok(());
    }
    for (col, ty) in columns {
        if has(col)? {
            continue;
        }
        match c.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {col} {ty}")) {
            Err(e) if e.to_string().contains("duplicate column") => {}
            r => r?,
        }
    }
    Ok(())
}

/// A store written before a deploy lock knew its audit record: add the
/// column (`NULL` for the locks held then: they are matched to their
/// record by time, as before, see [`crate::store::HOLDER_SKEW`]). A live
/// lock is kept as it is, its holder (perhaps an older shipdeck, which
/// never writes the column) untouched. Likewise the holder's pid space
/// (`crate::host::pid_space`; `NULL` for a lock of an older shipdeck,
/// judged by pid and hostname as before).
/// Another holder took a lock row: a link or pid space its write left as
/// it was (a shipdeck from before those columns, still running through the
/// upgrade, knows neither) is the previous holder's, never the new one's.
const LOCK_NEW_HOLDER: &str = r#"
CREATE TRIGGER IF NOT EXISTS locks_new_holder AFTER UPDATE ON locks
    WHEN (NEW.pid IS NOT OLD.pid OR NEW.host IS NOT OLD.host)
     AND ((NEW.audit_id IS OLD.audit_id AND NEW.audit_id IS NOT NULL)
          OR (NEW.pid_space IS OLD.pid_space AND NEW.pid_space IS NOT NULL))
    BEGIN
        UPDATE locks SET
            audit_id = CASE WHEN NEW.audit_id IS OLD.audit_id THEN NULL ELSE NEW.audit_id END,
            pid_space = CASE WHEN NEW.pid_space IS OLD.pid_space THEN NULL ELSE NEW.pid_space END
        WHERE env = NEW.env;
    END;
"#;

pub(super) fn migrate_locks(c: &Connection) -> rusqlite::Result<()> {
    add_columns(
        c,
        "locks",
        &[("audit_id", "INTEGER"), ("pid_space", "TEXT")],
    )
}

/// A store written before a window's rows named their window's `monitor`
/// started audit record: add the column (`NULL` for the rows written then,
/// and by an older shipdeck still running on this file; such a row is
/// judged by its dates, see [`crate::store::MonitorRecord::seq`]).
pub(super) fn migrate_monitor_runs(c: &Connection) -> rusqlite::Result<()> {
    add_columns(c, "monitor_runs", &[("start_id", "INTEGER")])
}

/// A store written before a console's presence named its pid space
/// (`crate::host::pid_space`): the table is rebuilt with the column in its
/// key (SQLite cannot change a key in place), every row kept with `''` —
/// no space, judged by hostname and pid as before. Keyed by host and pid
/// alone, two consoles in two containers of one host (both pid 1 under one
/// hostname) were one row. In one IMMEDIATE transaction, looked at again
/// inside it: another process may be doing the same. A shipdeck from
/// before the column, still running on this file, fails its heartbeat
/// (its upsert names the old key) until it is restarted; presence only.
pub(super) fn migrate_presence(c: &Connection) -> rusqlite::Result<()> {
    let has = |col: &str| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('presence') WHERE name = ?1",
            [col],
            |r| r.get(0),
        )
    };
    // No table yet (a new store), or rebuilt already.
    if !has("host")? || has("pid_space")? {
        return Ok(());
    }
    c.execute_batch("BEGIN IMMEDIATE")?;
    let rebuilt = (|| {
        if has("pid_space")? {
            return Ok(());
        }
        c.execute_batch(
            "CREATE TABLE presence_spaced (
                 host      TEXT NOT NULL,
                 pid       INTEGER NOT NULL,
                 actor     TEXT NOT NULL,
                 since     TEXT NOT NULL,
                 last_seen TEXT NOT NULL,
                 pid_space TEXT NOT NULL DEFAULT '',
                 PRIMARY KEY (host, pid, pid_space)
             );
             INSERT INTO presence_spaced (host, pid, actor, since, last_seen)
                 SELECT host, pid, actor, since, last_seen FROM presence;
             DROP TABLE presence;
             ALTER TABLE presence_spaced RENAME TO presence;",
        )
    })();
    match rebuilt {
        Ok(()) => c.execute_batch("COMMIT"),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The note of a decision recorded before notes had a column of their
/// own: the text after "Go: " / "No-Go: ".
pub(in crate::store) fn legacy_note(action: &str, detail: &str) -> Option<String> {
    match action {
        "approve" => detail.strip_prefix("Go: "),
        "reject" => detail.strip_prefix("No-Go: "),
        _ => None,
    }
    .map(str::to_string)
}
