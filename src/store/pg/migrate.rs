//! `shipdeck store migrate --from sqlite:PATH`: copy an embedded store into
//! an empty PostgreSQL store — deploys, decisions, the audit log with its
//! hash chain preserved (same ids, same hashes, verified again on arrival),
//! monitoring verdicts and metric samples. Run twice, it finds its own
//! copy and does nothing; into a store holding anything else it refuses.

use std::path::Path;

use super::PgStore;
use super::schema::NS_SCHEMA;
use crate::store::chain::ChainRow;
use crate::store::{SqliteStore, Store, StoreError};

/// A deploy row: env, version, from_version, at, actor, kind, audit_id, url.
pub type DeployRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
);
/// A decision row: env, version, decision, actor, at, note.
pub type ApprovalRow = (String, String, String, String, String, Option<String>);
/// A monitoring verdict: env, version, started_at, finished_at, verdict, metric, reason.
pub type MonitorRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<i64>,
);
/// A metric sample: env, at, requests, errors, p50, p95, p99.
pub type SampleRow = (
    String,
    String,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// Everything an embedded store holds that a team store keeps.
#[derive(Clone, Debug, Default)]
pub struct Export {
    pub audit: Vec<ChainRow>,
    /// The highest audit id the source ever handed out.
    pub highest: i64,
    pub deploys: Vec<DeployRow>,
    pub approvals: Vec<ApprovalRow>,
    pub monitor_runs: Vec<MonitorRow>,
    pub samples: Vec<SampleRow>,
    /// at, what
    pub integrity_events: Vec<(String, String)>,
}

/// What a migration did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateReport {
    /// The target already held exactly this store: nothing was copied.
    pub already: bool,
    pub audit: usize,
    pub deploys: usize,
    pub approvals: usize,
    pub monitor_runs: usize,
    pub samples: usize,
    /// The chain's head hash, the same in both stores.
    pub head: Option<String>,
}

/// Read the embedded store at `path` (which must exist), refusing one
/// whose audit chain does not verify: a broken log is repaired where it
/// is, not copied.
pub fn export_sqlite(path: &Path) -> Result<Export, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Sqlite {
            path: path.display().to_string(),
            cause: "no such store file (give the embedded store's path: sqlite:PATH)".into(),
        });
    }
    // Opening a store creates its tables: look first, reading only, so
    // that an empty file or another program's database is refused as it
    // is rather than given shipdeck's tables (and made owner-only).
    if let Ok(false) = has_audit_log(path) {
        return Err(StoreError::Sqlite {
            path: path.display().to_string(),
            cause: "not a shipdeck store: it holds no audit log (nothing was copied, and the file was left as it was)".into(),
        });
    }
    let src = SqliteStore::open(path)?;
    let report = src.verify()?;
    if let Some(b) = report.broken {
        return Err(StoreError::Tampered {
            path: path.display().to_string(),
            cause: format!(
                "the audit log's hash chain is broken at {b}: nothing is copied from a log that does not verify"
            ),
        });
    }
    src.export()
}

/// Whether the SQLite file at `path` has shipdeck's audit log, read
/// without writing anything (an error when it cannot be read so: the
/// store's own open then says why).
fn has_audit_log(path: &Path) -> rusqlite::Result<bool> {
    let c = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit')",
        [],
        |r| r.get(0),
    )
}

impl PgStore {
    /// Copy `src` into this store in one transaction (see the module).
    pub fn import(&self, src: &Export) -> Result<MigrateReport, StoreError> {
        let head = src.audit.last().and_then(|r| r.hash.clone());
        let mut report = MigrateReport {
            already: false,
            audit: src.audit.len(),
            deploys: src.deploys.len(),
            approvals: src.approvals.len(),
            monitor_runs: src.monitor_runs.len(),
            samples: src.samples.len(),
            head: head.clone(),
        };
        let store = self.target.describe.clone();
        let outcome = self.with(false, |s| {
            let mut tx = s.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1, 1)", &[&NS_SCHEMA])?;
            let r = tx.query_one(
                "SELECT (SELECT COUNT(*) FROM shipdeck_audit),
                        (SELECT hash FROM shipdeck_audit ORDER BY id DESC LIMIT 1),
                        (SELECT COUNT(*) FROM shipdeck_deploys),
                        (SELECT COUNT(*) FROM shipdeck_approvals),
                        (SELECT COUNT(*) FROM shipdeck_monitor_runs)",
                &[],
            )?;
            let (n_audit, their_head, n_deploys, n_appr, n_mon): (
                i64,
                Option<String>,
                i64,
                i64,
                i64,
            ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            if n_audit + n_deploys + n_appr + n_mon > 0 {
                tx.rollback()?;
                let same = n_audit as usize == src.audit.len()
                    && their_head == head
                    && n_deploys as usize == src.deploys.len()
                    && n_appr as usize == src.approvals.len();
                return Ok(Err((same, n_audit, n_deploys)));
            }
            let ins = tx.prepare(
                "INSERT INTO shipdeck_audit (id, at, actor, action, env, version, from_version, outcome, detail, finishes, note, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )?;
            for a in &src.audit {
                tx.execute(
                    &ins,
                    &[
                        &a.id,
                        &a.at,
                        &a.actor,
                        &a.action,
                        &a.env,
                        &a.version,
                        &a.from_version,
                        &a.outcome,
                        &a.detail,
                        &a.finishes,
                        &a.note,
                        &a.prev_hash,
                        &a.hash,
                    ],
                )?;
            }
            let last = src
                .highest
                .max(src.audit.last().map(|a| a.id).unwrap_or(0));
            tx.execute(
                "UPDATE shipdeck_audit_seq SET last = $1 WHERE one = 1",
                &[&last],
            )?;
            let ins = tx.prepare(
                "INSERT INTO shipdeck_deploys (env, version, from_version, at, actor, kind, audit_id, url)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )?;
            for d in &src.deploys {
                tx.execute(&ins, &[&d.0, &d.1, &d.2, &d.3, &d.4, &d.5, &d.6, &d.7])?;
            }
            let ins = tx.prepare(
                "INSERT INTO shipdeck_approvals (env, version, decision, actor, at, note)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )?;
            for a in &src.approvals {
                tx.execute(&ins, &[&a.0, &a.1, &a.2, &a.3, &a.4, &a.5])?;
            }
            let ins = tx.prepare(
                "INSERT INTO shipdeck_monitor_runs (env, version, started_at, finished_at, verdict, metric, reason, start_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )?;
            for m in &src.monitor_runs {
                tx.execute(&ins, &[&m.0, &m.1, &m.2, &m.3, &m.4, &m.5, &m.6, &m.7])?;
            }
            let ins = tx.prepare(
                "INSERT INTO shipdeck_samples (env, at, requests, errors, p50_ms, p95_ms, p99_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (env, at) DO NOTHING",
            )?;
            for m in &src.samples {
                tx.execute(&ins, &[&m.0, &m.1, &m.2, &m.3, &m.4, &m.5, &m.6])?;
            }
            let ins = tx.prepare("INSERT INTO shipdeck_integrity_events (at, what) VALUES ($1, $2)")?;
            for e in &src.integrity_events {
                tx.execute(&ins, &[&e.0, &e.1])?;
            }
            tx.execute(
                "INSERT INTO shipdeck_integrity_events (at, what) VALUES ($1, $2)",
                &[
                    &crate::store::sqlite::ts(chrono::Utc::now()),
                    &format!(
                        "{} audit records copied from an embedded store by `shipdeck store migrate`, chain preserved",
                        src.audit.len()
                    ),
                ],
            )?;
            // The live feed: appends notify from `shipdeck_append` (schema
            // 11), which this copy does not go through.
            tx.execute("SELECT pg_notify($1, 'shipdeck_audit')", &[&super::schema::CHANNEL])?;
            tx.commit()?;
            Ok(Ok(()))
        })?;
        match outcome {
            Ok(()) => {}
            Err((true, _, _)) => {
                report.already = true;
                return Ok(report);
            }
            Err((false, n_audit, n_deploys)) => {
                return Err(StoreError::NotEmpty {
                    store,
                    cause: format!(
                        "it already holds {n_audit} audit records and {n_deploys} deploys that are not this embedded store's; `store migrate` copies only into an empty store (nothing was copied)"
                    ),
                });
            }
        }
        // The copy must verify on its own, with the source's head.
        let verified = self.verify()?;
        if let Some(b) = verified.broken {
            return Err(StoreError::Tampered {
                path: store,
                cause: format!("the copied audit log does not verify at {b}"),
            });
        }
        if verified.head != head {
            return Err(StoreError::Tampered {
                path: store,
                cause: "the copied audit log's head differs from the source's".into(),
            });
        }
        Ok(report)
    }
}
