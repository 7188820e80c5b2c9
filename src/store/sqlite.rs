//! The embedded store: one SQLite file in WAL mode, safe for several
//! shipdeck processes on one machine (writes are short transactions; readers
//! never block writers; a busy database is waited for, not failed on).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{LockInfo, MonitorRecord, NewAudit, Store, StoreError};
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
    finishes     INTEGER REFERENCES audit(id)
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
    audit_id     INTEGER REFERENCES audit(id)
);
CREATE INDEX IF NOT EXISTS deploys_env ON deploys(env, id);
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

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
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
        let conn = Connection::open(path).map_err(|e| StoreError::Sqlite {
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
        let store = SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        store.with(|c| {
            c.busy_timeout(Duration::from_secs(10))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            c.execute_batch(SCHEMA)
        })?;
        Ok(store)
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

    /// Deploy rows of `sql` (selecting env, version, from_version, at, actor, kind).
    fn query_deploys(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<DeployRecord>, StoreError> {
        type Row = (String, String, Option<String>, String, String, String);
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
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|(env, version, from, at, actor, kind)| {
                Ok(DeployRecord {
                    env,
                    version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                    from_version: self.parse_version(from)?,
                    at: self.parse_time(&at)?,
                    actor,
                    kind: DeployKind::parse(&kind)
                        .ok_or_else(|| self.corrupt(format!("deploy kind {kind:?}")))?,
                })
            })
            .collect()
    }

    fn parse_version(&self, s: Option<String>) -> Result<Option<Version>, StoreError> {
        s.map(|v| Version::parse(&v).map_err(|e| self.corrupt(e)))
            .transpose()
    }
}

fn insert_audit(c: &Connection, r: &NewAudit<'_>, finishes: Option<i64>) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO audit (at, actor, action, env, version, from_version, outcome, detail, finishes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            ts(r.at),
            r.actor,
            r.action.as_str(),
            r.env,
            r.version.map(|v| v.as_str()),
            r.from_version.map(|v| v.as_str()),
            r.outcome.as_str(),
            r.detail,
            finishes
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Append the outcome record of `started`, copying its action and env.
fn insert_finish(
    c: &Connection,
    started: i64,
    at: DateTime<Utc>,
    outcome: Outcome,
    detail: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (at, actor, action, env, version, from_version, outcome, detail, finishes)
         SELECT ?1, actor, action, env, version, from_version, ?2, ?3, id FROM audit WHERE id = ?4",
        params![ts(at), outcome.as_str(), detail, started],
    )?;
    Ok(())
}

#[cfg(unix)]
fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() || !Path::new("/proc/self").exists()
}

#[cfg(not(unix))]
fn pid_alive(_pid: u32) -> bool {
    true
}

impl Store for SqliteStore {
    fn audit_start(&self, rec: &NewAudit<'_>) -> Result<i64, StoreError> {
        self.with(|c| insert_audit(c, rec, None))
    }

    fn audit_finish(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.with(|c| insert_finish(c, started, at, outcome, detail))
    }

    fn record_deploy(
        &self,
        started: i64,
        rec: &DeployRecord,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO deploys (env, version, from_version, at, actor, kind, audit_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    rec.env,
                    rec.version.as_str(),
                    rec.from_version.as_ref().map(|v| v.as_str()),
                    ts(rec.at),
                    rec.actor,
                    rec.kind.as_str(),
                    started
                ],
            )?;
            insert_finish(&tx, started, rec.at, Outcome::Succeeded, detail)?;
            tx.commit()
        })
    }

    fn record_approval(&self, a: &Approval) -> Result<i64, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
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
            let detail = match (&a.decision, &a.note) {
                (Decision::Go, Some(n)) => format!("Go: {n}"),
                (Decision::Go, None) => "Go".to_string(),
                (Decision::NoGo, Some(n)) => format!("No-Go: {n}"),
                (Decision::NoGo, None) => "No-Go".to_string(),
            };
            let id = insert_audit(
                &tx,
                &NewAudit {
                    at: a.at,
                    actor: &a.actor,
                    action: match a.decision {
                        Decision::Go => ActionKind::Approve,
                        Decision::NoGo => ActionKind::Reject,
                    },
                    env: &a.env,
                    version: Some(&a.version),
                    from_version: None,
                    outcome: Outcome::Succeeded,
                    detail: &detail,
                },
                None,
            )?;
            tx.commit()?;
            Ok(id)
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
                 FROM audit s LEFT JOIN audit f ON f.finishes = s.id
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
                    // A started action with no outcome is in progress while a live
                    // lock taken for it is held; otherwise its process died: unknown.
                    let fin = match (status.as_str(), fin) {
                        ("started", None) => {
                            let live = self
                                .lock_of(&env, Utc::now())?
                                .is_some_and(|l| l.acquired_at <= at);
                            (!live).then(|| "unknown".to_string())
                        }
                        (_, f) => f,
                    };
                    let outcome = fin.as_deref().unwrap_or(&status);
                    // What was attempted, then how it ended.
                    let detail = match fin_detail {
                        Some(fd) if !fd.is_empty() => format!("{detail} — {fd}"),
                        _ if fin.as_deref() == Some("unknown") => format!(
                            "{detail} — no outcome recorded: the process ended before the backend answered"
                        ),
                        _ => detail,
                    };
                    Ok(AuditEntry {
                        id,
                        at,
                        actor,
                        action: ActionKind::parse(&action)
                            .ok_or_else(|| self.corrupt(format!("action {action:?}")))?,
                        env,
                        version: self.parse_version(version)?,
                        from_version: self.parse_version(from)?,
                        outcome: Outcome::parse(outcome)
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
            "SELECT env, version, from_version, at, actor, kind FROM deploys
             WHERE ?1 IS NULL OR env = ?1 ORDER BY id",
            params![env],
        )
    }

    fn latest_deploys(&self) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            "SELECT env, version, from_version, at, actor, kind FROM deploys
             WHERE id IN (SELECT MAX(id) FROM deploys GROUP BY env) ORDER BY id",
            [],
        )
    }

    fn recent_deploys(&self, env: &str, limit: usize) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            "SELECT env, version, from_version, at, actor, kind FROM
               (SELECT * FROM deploys WHERE env = ?1 ORDER BY id DESC LIMIT ?2)
             ORDER BY id",
            params![env, limit as i64],
        )
    }

    fn approvals(&self, env: &str) -> Result<Vec<Approval>, StoreError> {
        let rows: Vec<(String, String, String, String, Option<String>)> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT version, decision, actor, at, note FROM approvals WHERE env = ?1 ORDER BY id",
            )?;
            let it = st.query_map(params![env], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|(version, decision, actor, at, note)| {
                Ok(Approval {
                    env: env.to_string(),
                    version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                    decision: Decision::parse(&decision)
                        .ok_or_else(|| self.corrupt(format!("decision {decision:?}")))?,
                    actor,
                    at: self.parse_time(&at)?,
                    note,
                })
            })
            .collect()
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
        let won = self.with(|c| {
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
        self.with(|c| {
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
        self.with(|c| {
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
        self.with(|c| {
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
                params![env, ts(at - keep)],
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

    fn describe(&self) -> String {
        self.path.display().to_string()
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
