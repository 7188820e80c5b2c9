//! The team store: PostgreSQL, shared by every console and command of a
//! team. The same [`Store`] as the embedded one, with the same hash-chained
//! append-only audit log, and locks tied to their owner's database
//! session, so a lock whose owner died (killed, network gone) holds nothing.
//!
//! It runs on the store thread like the SQLite store ([`super::AsyncStore`]),
//! with the synchronous `postgres` client. A lost connection is taken up
//! again by the next call (at most one attempt every
//! [`RECONNECT_PAUSE`]); meanwhile every call answers "unreachable" at once
//! and [`Store::integrity`] says since when, for every view to show.

mod audit;
mod audit_sql;
mod connect;
mod feed;
mod locks;
mod migrate;
mod profile;
mod schema;
mod session;
mod status;

pub use connect::{PasswordSource, PgTarget};
pub use migrate::{Export, MigrateReport, export_sqlite};
pub use profile::AppendProfile;
pub use schema::SCHEMA_VERSION;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postgres::{Client, Statement};

use super::Presence;
use super::chain::{self, ChainReport, ChainRow};
use super::sqlite::{holder_gone, same_holder, ts};
use super::{
    ChangeNotifier, Changes, LockInfo, MonitorRecord, NewAudit, NewestMonitor, SqlState, Store,
    StoreError, Unfinished, audit_outcome, second_finish, verdict_write,
};
use crate::domain::{ActionKind, Approval, AuditEntry, DeployKind, DeployRecord, Outcome, Version};
use crate::monitor::Sample;
use audit_sql::*;
use feed::{listen, listener};
use locks::{LOCK_ROW, LockSession, PUT_LOCK, lock_ttl_ms};
use schema::{AUDIT_TRIGGERS, CHECKPOINT_TRIGGERS, NS_LOCK, NS_VERDICT};
use session::{Link, Session, cause, sqlstate};

/// The least time between two attempts to reach a server that went away.
pub const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// How many records the stored chain checkpoint lags behind, on average,
/// before a process moves it: moving it is a write every process would
/// otherwise make on every action. Each process draws its own lag for each
/// stored checkpoint, between a half and one and a half of this ([`checkpoint_due`]): with one fixed
/// lag every process that walked past it before the first one's write was
/// visible wrote too (under 100 appenders the `pg_store` bench counted 373
/// checkpoint writes in 3,000 appends, ~8 for every move, each a round
/// trip before the append and a wait on the checkpoint row). A move now
/// skips a row another process holds rather than waiting for it
/// (`MOVE_CHECKPOINT`), which made the writes cheap enough for half the
/// lag of session 14 (64): fewer records for every check to walk.
const CHECKPOINT_EVERY: i64 = 32;

/// Whether a walk that reached record `id` moves the stored checkpoint
/// (`stored`, none yet: at once), with `draw` any number this store drew
/// for that walk: when it lags by CHECKPOINT_EVERY / 2 plus `draw` modulo
/// CHECKPOINT_EVERY, so processes walking at once mostly leave the move
/// to the one whose draw was lowest.
fn checkpoint_due(stored: Option<i64>, id: i64, draw: u64) -> bool {
    let lag = CHECKPOINT_EVERY / 2 + (draw % CHECKPOINT_EVERY as u64) as i64;
    stored.is_none_or(|s| id - s >= lag)
}

/// The last point of the audit log this process walked and found intact.
#[derive(Clone)]
struct Verified {
    key: (Option<i64>, i64),
    /// The stored checkpoint as it stood when `report` was made (or as
    /// this process then set it): with the key, what the report is of. The
    /// owner deleting a disputed checkpoint changes nothing else.
    cp: Option<chain::Checkpoint>,
    report: ChainReport,
}

pub struct PgStore {
    target: PgTarget,
    link: Mutex<Link>,
    locks: Mutex<Option<LockSession>>,
    notes: Mutex<Vec<String>>,
    verified: Mutex<Option<Verified>>,
    /// The id of the stored checkpoint, as last seen.
    stored_checkpoint: Mutex<Option<i64>>,
    /// Where appends spend their time ([`PgStore::append_profile`]).
    profile: profile::Counters,
    /// This store's own draws for [`checkpoint_due`] (randomly keyed).
    draws: std::hash::RandomState,
    /// Records sent whose reply was lost, not yet found landed or not.
    doubts: Mutex<Vec<Doubt>>,
}

/// A record sent for appending whose reply was lost: it may have landed.
#[derive(Clone, Debug)]
struct Doubt {
    /// The record as sent (no id or hashes).
    row: ChainRow,
    /// The highest id before it was sent: it landed after this if at all.
    after: i64,
    /// The server process it was sent to, which may still commit it while
    /// it lives.
    backend: session::Backend,
    /// Its id when it is known to have landed (the append answered, its
    /// flush failed): only the flush is owed.
    landed: Option<i64>,
}

/// How an append ended.
enum Landed {
    /// Appended now: its id, the previous record's hash and its own.
    New(i64, String, String),
    /// Found appended by an earlier attempt whose reply was lost.
    Before(i64),
}

impl PgStore {
    /// The rows of an `audit_entries_sql!` query as audit entries.
    fn audit_entries(&self, rows: Vec<postgres::Row>) -> Result<Vec<AuditEntry>, StoreError> {
        rows.iter()
            .map(|r| {
                let id: i64 = self.get(r, 0)?;
                let at = self.parse_time(&self.get::<String>(r, 1)?)?;
                let env: String = self.get(r, 4)?;
                let status: String = self.get(r, 7)?;
                let detail: String = self.get(r, 8)?;
                let fin: Option<String> = self.get(r, 9)?;
                let fin_detail: Option<String> = self.get(r, 10)?;
                let fin_at: Option<String> = self.get(r, 11)?;
                let action: String = self.get(r, 3)?;
                let (outcome, detail) = audit_outcome(status, detail, fin, fin_detail, || {
                    let key = super::live_key(&action, &env);
                    Ok(self
                        .lock_of(&key, Utc::now())?
                        .is_some_and(|l| l.guards(id, at)))
                })?;
                Ok(AuditEntry {
                    id,
                    at,
                    actor: self.get(r, 2)?,
                    action: ActionKind::parse(&action)
                        .ok_or_else(|| self.corrupt(format!("action {action:?}")))?,
                    env,
                    version: self.parse_version(self.get(r, 5)?)?,
                    from_version: self.parse_version(self.get(r, 6)?)?,
                    outcome: Outcome::parse(&outcome)
                        .ok_or_else(|| self.corrupt(format!("outcome {outcome:?}")))?,
                    detail,
                    finished_at: fin_at.map(|t| self.parse_time(&t)).transpose()?,
                })
            })
            .collect()
    }

    /// Connect to the store at `target`, migrating its schema if needed.
    /// Unreachable: [`StoreError::Unreachable`], naming the store and host.
    ///
    /// The synchronous client runs a runtime of its own, which may not be
    /// started (nor dropped) inside an async task: this connects on a
    /// thread of its own, so that async code may call it.
    pub fn connect(target: PgTarget) -> Result<PgStore, StoreError> {
        std::thread::scope(|s| {
            s.spawn(|| PgStore::connect_here(target))
                .join()
                .unwrap_or_else(|_| {
                    Err(StoreError::Config {
                        store: "postgres".into(),
                        cause: "the connection attempt stopped on an internal error".into(),
                    })
                })
        })
    }

    fn connect_here(target: PgTarget) -> Result<PgStore, StoreError> {
        let mut client = target.connect()?;
        schema::migrate(&mut client, &target.describe)?;
        let store = PgStore {
            target,
            link: Mutex::new(Link {
                session: Some(Session::new(client)),
                down: None,
            }),
            locks: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
            verified: Mutex::new(None),
            stored_checkpoint: Mutex::new(None),
            profile: profile::Counters::default(),
            draws: std::hash::RandomState::new(),
            doubts: Mutex::new(Vec::new()),
        };
        store.check_triggers()?;
        Ok(store)
    }

    /// `connect` from a `[store] url` and its `password_env`.
    pub fn open(url: &str, password_env: Option<&str>) -> Result<PgStore, StoreError> {
        PgStore::connect(PgTarget::parse(url, password_env)?)
    }

    /// Where this store's appends spent their time so far, per phase.
    pub fn append_profile(&self) -> AppendProfile {
        self.profile.get()
    }

    /// The append-only triggers, missing or disabled: reported (never
    /// silently) on every view and recorded for `history --verify`.
    fn check_triggers(&self) -> Result<(), StoreError> {
        let missing = self.missing_triggers()?;
        if !missing.is_empty() {
            let what = format!(
                "the audit log's append-only triggers ({}) were missing or disabled when shipdeck connected: someone removed them; restore them as the schema's owner and run `shipdeck history --verify`",
                missing.join(", ")
            );
            self.note(what.clone());
            let _ = self.with(false, |s| {
                let st =
                    s.st("INSERT INTO shipdeck_integrity_events (at, what) VALUES ($1, $2)")?;
                s.client.execute(&st, &[&ts(Utc::now()), &what])
            });
        }
        Ok(())
    }

    fn missing_triggers(&self) -> Result<Vec<String>, StoreError> {
        let live: Vec<String> = self.with(true, |s| {
            let st = s.st(
                "SELECT tgname::text FROM pg_trigger
                 WHERE tgrelid IN ('shipdeck_audit'::regclass, 'shipdeck_chain_checkpoint'::regclass)
                   AND NOT tgisinternal AND tgenabled <> 'D'",
            )?;
            Ok(s.client.query(&st, &[])?.iter().map(|r| r.get(0)).collect())
        })?;
        Ok(AUDIT_TRIGGERS
            .iter()
            .chain(CHECKPOINT_TRIGGERS.iter())
            .filter(|t| !live.iter().any(|l| l == *t))
            .map(|t| t.to_string())
            .collect())
    }

    fn note(&self, what: String) {
        tracing::warn!("store {}: {what}", self.target.describe);
        let mut n = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if !n.contains(&what) {
            n.push(what);
        }
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.target.describe.clone(),
            cause: e.to_string(),
        }
    }

    fn server(&self, e: &postgres::Error) -> StoreError {
        StoreError::Postgres {
            store: self.target.describe.clone(),
            cause: cause(e),
            sqlstate: sqlstate(e),
        }
    }

    fn parse_time(&self, s: &str) -> Result<DateTime<Utc>, StoreError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(format!("time {s:?}: {e}")))
    }

    fn parse_version(&self, s: Option<String>) -> Result<Option<Version>, StoreError> {
        s.map(|v| Version::parse(&v).map_err(|e| self.corrupt(e)))
            .transpose()
    }

    /// A column as `T`, or a typed error naming it (garbage in a row).
    fn get<T: for<'a> postgres::types::FromSql<'a>>(
        &self,
        row: &postgres::Row,
        idx: usize,
    ) -> Result<T, StoreError> {
        row.try_get(idx).map_err(|e| {
            self.corrupt(format!(
                "column {:?}: {e}",
                row.columns().get(idx).map(|c| c.name()).unwrap_or("?")
            ))
        })
    }

    fn deploy_rows(&self, rows: Vec<postgres::Row>) -> Result<Vec<DeployRecord>, StoreError> {
        rows.iter()
            .map(|r| {
                let kind: String = self.get(r, 5)?;
                Ok(DeployRecord {
                    env: self.get(r, 0)?,
                    version: Version::parse(&self.get::<String>(r, 1)?)
                        .map_err(|e| self.corrupt(e))?,
                    from_version: self.parse_version(self.get(r, 2)?)?,
                    at: self.parse_time(&self.get::<String>(r, 3)?)?,
                    actor: self.get(r, 4)?,
                    kind: DeployKind::parse(&kind)
                        .ok_or_else(|| self.corrupt(format!("deploy kind {kind:?}")))?,
                    url: self.get(r, 6)?,
                    seq: self.get(r, 7)?,
                })
            })
            .collect()
    }
}

/// A row that does not read as an audit record, named as such.
fn unreadable_log(e: StoreError) -> StoreError {
    match e {
        StoreError::Corrupt { path, cause } => StoreError::Corrupt {
            path,
            cause: format!("the audit log cannot be read: {cause}"),
        },
        other => other,
    }
}

/// Audit entries whose start record `s` matches the filter, newest first,
/// at most `$2`, each with the outcome it ended with.
macro_rules! audit_entries_sql {
    ($filter:literal) => {
        concat!(
            "SELECT s.id, s.at, s.actor, s.action, s.env, s.version, s.from_version,
                    s.outcome, s.detail, f.outcome, f.detail, f.at
             FROM shipdeck_audit s LEFT JOIN shipdeck_audit f
               ON f.id = (SELECT id FROM shipdeck_audit WHERE finishes = s.id
                          ORDER BY outcome = 'unknown', id LIMIT 1)
             WHERE ",
            $filter,
            "
             ORDER BY s.id DESC LIMIT $2"
        )
    };
}

impl Store for PgStore {
    fn audit_start(&self, rec: &NewAudit<'_>) -> Result<i64, StoreError> {
        self.append(&new_row(rec, None, None), Also::Nothing)
    }

    fn audit_start_held(&self, rec: &NewAudit<'_>, lock: &LockInfo) -> Result<i64, StoreError> {
        self.append(&new_row(rec, None, None), Also::Lock(lock))
    }

    fn audit_finish(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        match self.finish_row(started, at, outcome, detail)? {
            Ok(row) => self.append_finish(started, &row, outcome, Also::Nothing),
            Err((id, was)) => second_finish(&self.target.describe, started, (id, &was), outcome),
        }
    }

    fn record_deploy(
        &self,
        started: i64,
        rec: &DeployRecord,
        detail: &str,
    ) -> Result<(), StoreError> {
        // Finished already (a retry whose first attempt went in): no second
        // deploy row either (the server refuses both as one statement).
        match self.finish_row(started, rec.at, Outcome::Succeeded, detail)? {
            Ok(row) => self.append_finish(
                started,
                &row,
                Outcome::Succeeded,
                Also::Deploy { started, rec },
            ),
            Err((id, was)) => second_finish(
                &self.target.describe,
                started,
                (id, &was),
                Outcome::Succeeded,
            ),
        }
    }

    fn record_approval(&self, a: &Approval) -> Result<i64, StoreError> {
        let detail = NewAudit::approval_detail(a);
        let row = new_row(&NewAudit::of_approval(a, &detail), None, a.note.as_deref());
        self.append(&row, Also::Approval(a))
    }
    fn history(&self, env: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(true, |s| {
            let st = s.st(audit_entries_sql!(
                "s.finishes IS NULL AND ($1::text IS NULL OR s.env = $1)"
            ))?;
            s.client.query(&st, &[&env, &limit])
        })?;
        self.audit_entries(rows)
    }

    fn canary_history(&self, env: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(true, |s| {
            let st = s.st(audit_entries_sql!(
                "s.finishes IS NULL AND s.env = $1 AND s.action IN ('canary', 'promote')
                   AND s.outcome <> 'refused'"
            ))?;
            s.client.query(&st, &[&env, &limit])
        })?;
        self.audit_entries(rows)
    }

    fn deploys(&self, env: Option<&str>) -> Result<Vec<DeployRecord>, StoreError> {
        let rows = self.with(true, |s| {
            let st = s.st(concat!(
                "SELECT env, version, from_version, at, actor, kind, url, ",
                status::deploy_seq_sql!(),
                "
                     FROM shipdeck_deploys d WHERE $1::text IS NULL OR env = $1 ORDER BY id"
            ))?;
            s.client.query(&st, &[&env])
        })?;
        self.deploy_rows(rows)
    }

    fn latest_deploys(&self) -> Result<Vec<DeployRecord>, StoreError> {
        let rows = self.with(true, |s| {
            let st = s.st(concat!(
                "SELECT env, version, from_version, at, actor, kind, url, ",
                status::deploy_seq_sql!(),
                "
                     FROM shipdeck_deploys d
                     WHERE id IN (SELECT MAX(id) FROM shipdeck_deploys GROUP BY env) ORDER BY id"
            ))?;
            s.client.query(&st, &[])
        })?;
        self.deploy_rows(rows)
    }

    fn recent_deploys(&self, env: &str, limit: usize) -> Result<Vec<DeployRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(true, |s| {
            let st = s.st(concat!(
                "SELECT env, version, from_version, at, actor, kind, url, ",
                status::deploy_seq_sql!(),
                " FROM
                       (SELECT * FROM shipdeck_deploys WHERE env = $1 ORDER BY id DESC LIMIT $2) d
                     ORDER BY id"
            ))?;
            s.client.query(&st, &[&env, &limit])
        })?;
        self.deploy_rows(rows)
    }

    /// Decisions about `env` as the audit log records them; the approvals
    /// table is only an index, and a disagreement is reported.
    fn approvals(&self, env: &str) -> Result<Vec<Approval>, StoreError> {
        let (rows, indexed) = self.with(true, |s| {
            let a = s.st(
                "SELECT action, version, actor, at, note, detail, id FROM shipdeck_audit
                 WHERE env = $1 AND finishes IS NULL AND outcome = 'succeeded'
                   AND action IN ('approve', 'reject')
                 ORDER BY id",
            )?;
            let b = s.st(
                "SELECT version, decision, actor, at FROM shipdeck_approvals WHERE env = $1 ORDER BY id",
            )?;
            Ok((s.client.query(&a, &[&env])?, s.client.query(&b, &[&env])?))
        })?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(status::DecisionRow {
                    action: self.get(r, 0)?,
                    version: self.get(r, 1)?,
                    actor: self.get(r, 2)?,
                    at: self.get(r, 3)?,
                    note: self.get(r, 4)?,
                    detail: self.get(r, 5)?,
                    id: self.get(r, 6)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let indexed = indexed
            .iter()
            .map(|r| {
                Ok((
                    self.get(r, 0)?,
                    self.get(r, 1)?,
                    self.get(r, 2)?,
                    self.get(r, 3)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.decisions(env, rows, indexed)
    }

    fn caught_versions(&self, env: &str) -> Result<Vec<Version>, StoreError> {
        let rows = self.with(true, |s| {
            let st = s.st(
                "SELECT s.version FROM shipdeck_audit s LEFT JOIN shipdeck_audit f
                   ON f.id = (SELECT MIN(id) FROM shipdeck_audit WHERE finishes = s.id)
                 WHERE s.env = $1 AND s.action = 'monitor' AND s.finishes IS NULL
                   AND s.version IS NOT NULL AND COALESCE(f.outcome, s.outcome) = 'failed'
                 GROUP BY s.version ORDER BY MIN(s.id)",
            )?;
            s.client.query(&st, &[&env])
        })?;
        rows.iter()
            .map(|r| Version::parse(&self.get::<String>(r, 0)?).map_err(|e| self.corrupt(e)))
            .collect()
    }

    /// Take `lock.env`: free when nobody holds it, when this process does
    /// (a renewal: the row names this process's lock session, or this
    /// pid in this pid space), when the holder's lock expired, when its
    /// owner's session is gone, or when its owner is provably a dead
    /// process (of this pid space: `holder_gone`). A hostname and a pid
    /// prove nothing: containers named alike share pids.
    /// Takers of one env take turns on a transaction-level advisory lock.
    fn try_lock(&self, lock: &LockInfo) -> Result<Result<(), LockInfo>, StoreError> {
        let token = self.lock_token()?;
        let space = super::sqlite::claim_space(&lock.host);
        let pid = i64::from(lock.pid);
        let rows = self.with(false, |s| {
            let row_st = s.st(LOCK_ROW)?;
            let put = s.st(PUT_LOCK)?;
            let mut tx = s.client.transaction()?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&NS_LOCK, &lock.env],
            )?;
            let current = tx.query_opt(&row_st, &[&lock.env])?;
            let free = match &current {
                None => true,
                Some(r) => {
                    // Expiry is the server's judgement, on its clock
                    // (`LOCK_ROW`), never this taker's: its clock may run
                    // minutes ahead of the holder's.
                    // "Mine" is this claim (pid, host) on this lock
                    // session's token, or (a renewal on a new session,
                    // after a server restart) this pid in this pid space;
                    // a row of an older shipdeck, without a space, by pid
                    // and hostname as before. Never pid and host alone.
                    let (cpid, chost, alive, ctoken, unexpired, cspace): (
                        i64,
                        String,
                        bool,
                        i64,
                        bool,
                        Option<String>,
                    ) = (r.get(1), r.get(2), r.get(5), r.get(6), r.get(7), r.get(9));
                    let cpid = u32::try_from(cpid).ok();
                    let same = cpid.is_some_and(|p| {
                        (ctoken == token && p == lock.pid && chost == lock.host)
                            || same_holder((p, &chost, cspace.as_deref()), lock.pid, &lock.host)
                    });
                    same || !alive
                        || !unexpired
                        || cpid.is_some_and(|p| holder_gone(p, &chost, cspace.as_deref()))
                }
            };
            if free {
                // The server dates it (`PUT_LOCK`): a renewal on the same
                // lock session keeps the time the lock was first taken;
                // taken anew (another holder, a new lock session after the
                // old one was lost or the server restarted), it is dated
                // now on the server's clock. (Whether the row reads as one
                // a restart cut from its owner is the server's own stamp,
                // `taken_at`, renewed with the token: `LOCK_ROW`.)
                tx.execute(
                    &put,
                    &[
                        &lock.env,
                        &lock.holder,
                        &pid,
                        &lock.host,
                        &lock_ttl_ms(lock),
                        &token,
                        &space,
                    ],
                )?;
            }
            tx.commit()?;
            Ok((free, current))
        })?;
        match rows {
            (true, _) => {
                if let Some(ls) = self
                    .locks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    ls.held.retain(|(env, ..)| *env != lock.env);
                    ls.held
                        .insert((lock.env.clone(), lock.pid, lock.host.clone()));
                }
                Ok(Ok(()))
            }
            (false, Some(r)) => {
                self.release_idle_session();
                Ok(Err(self.lock_info(&lock.env, &r)?.0))
            }
            (false, None) => self.try_lock(lock),
        }
    }

    fn unlock(&self, env: &str, pid: u32, host: &str) -> Result<(), StoreError> {
        let out = self.with(false, |s| {
            // Only this process's own row, never a namesake's (the same
            // pid and hostname in another pid space).
            let st = s.st(
                "DELETE FROM shipdeck_locks WHERE env = $1 AND pid = $2 AND host = $3
                   AND (pid_space IS NULL OR pid_space IS NOT DISTINCT FROM $4::text)",
            )?;
            let space = crate::host::pid_space();
            s.client
                .execute(&st, &[&env, &i64::from(pid), &host, &space])
        });
        if let Some(ls) = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            ls.held.remove(&(env.to_string(), pid, host.to_string()));
        }
        self.release_idle_session();
        out.map(|_| ())
    }

    /// Judged on the server's clock (`LOCK_ROW`): `_now`, the asker's, is
    /// not asked.
    fn lock_of(&self, env: &str, _now: DateTime<Utc>) -> Result<Option<LockInfo>, StoreError> {
        let row = self.with(true, |s| {
            let st = s.st(LOCK_ROW)?;
            s.client.query_opt(&st, &[&env])
        })?;
        let Some(row) = row else { return Ok(None) };
        let (info, alive) = self.lock_info(env, &row)?;
        let space = info.pid_space.clone();
        Ok(status::live(info, alive, space.as_deref()))
    }

    /// One opening and one verdict per window (its env, version and
    /// start): what it has already — a retry whose first attempt committed
    /// finds it — is judged by [`verdict_write`]. Writers of one env's
    /// windows take turns (a transaction-level advisory lock), so two at
    /// once cannot both find none.
    fn record_monitor(&self, m: &MonitorRecord) -> Result<(), StoreError> {
        self.with(false, |s| {
            let newest = s.st(
                "SELECT verdict, finished_at, metric, reason FROM shipdeck_monitor_runs
                 WHERE env = $1 AND version = $2 AND started_at = $3 ORDER BY id DESC LIMIT 1",
            )?;
            let put = s.st(
                "INSERT INTO shipdeck_monitor_runs (env, version, started_at, finished_at, verdict, metric, reason, start_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )?;
            let mut tx = s.client.transaction()?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&NS_VERDICT, &m.env],
            )?;
            let (version, started) = (m.version.as_str(), ts(m.started_at));
            let newest: Option<NewestMonitor> = tx
                .query_opt(&newest, &[&m.env, &version, &started])?
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
            if verdict_write(m, newest.as_ref()) {
                tx.execute(
                    &put,
                    &[
                        &m.env,
                        &version,
                        &started,
                        &m.finished_at.map(ts),
                        &m.verdict,
                        &m.metric,
                        &m.reason,
                        &m.seq,
                    ],
                )?;
            }
            tx.commit()
        })
    }

    fn last_monitor(&self, env: &str) -> Result<Option<MonitorRecord>, StoreError> {
        let row = self.with(true, |s| {
            let st = s.st(concat!(
                "SELECT m.version, m.started_at, m.finished_at, m.verdict, m.metric, m.reason, ",
                status::monitor_seq_sql!(),
                " FROM shipdeck_monitor_runs m WHERE m.env = $1 ORDER BY m.id DESC LIMIT 1"
            ))?;
            s.client.query_opt(&st, &[&env])
        })?;
        row.map(|r| {
            let finished: Option<String> = self.get(&r, 2)?;
            Ok(MonitorRecord {
                env: env.to_string(),
                version: Version::parse(&self.get::<String>(&r, 0)?)
                    .map_err(|e| self.corrupt(e))?,
                started_at: self.parse_time(&self.get::<String>(&r, 1)?)?,
                finished_at: finished.map(|f| self.parse_time(&f)).transpose()?,
                verdict: self.get(&r, 3)?,
                metric: self.get(&r, 4)?,
                reason: self.get(&r, 5)?,
                seq: self.get(&r, 6)?,
            })
        })
        .transpose()
    }

    fn record_sample(
        &self,
        env: &str,
        at: DateTime<Utc>,
        smp: &Sample,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        let cutoff = ts(crate::domain::clock::before(at, keep));
        self.with(false, |s| {
            let put = s.st(
                "INSERT INTO shipdeck_samples (env, at, requests, errors, p50_ms, p95_ms, p99_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (env, at) DO UPDATE SET requests = EXCLUDED.requests,
                   errors = EXCLUDED.errors, p50_ms = EXCLUDED.p50_ms,
                   p95_ms = EXCLUDED.p95_ms, p99_ms = EXCLUDED.p99_ms",
            )?;
            let prune = s.st("DELETE FROM shipdeck_samples WHERE env = $1 AND at < $2")?;
            let mut tx = s.client.transaction()?;
            tx.execute(
                &put,
                &[
                    &env,
                    &ts(at),
                    &smp.requests,
                    &smp.errors,
                    &smp.p50_ms,
                    &smp.p95_ms,
                    &smp.p99_ms,
                ],
            )?;
            tx.execute(&prune, &[&env, &cutoff])?;
            tx.commit()
        })
    }

    fn samples(
        &self,
        env: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Sample)>, StoreError> {
        let rows = self.with(true, |s| {
            let st = s.st(
                "SELECT at, requests, errors, p50_ms, p95_ms, p99_ms FROM shipdeck_samples
                 WHERE env = $1 AND at >= $2 AND at <= $3 ORDER BY at",
            )?;
            s.client.query(&st, &[&env, &ts(from), &ts(to)])
        })?;
        rows.iter()
            .map(|r| {
                Ok((
                    self.parse_time(&self.get::<String>(r, 0)?)?,
                    Sample {
                        t: 0.0,
                        requests: self.get(r, 1)?,
                        errors: self.get(r, 2)?,
                        p50_ms: self.get(r, 3)?,
                        p95_ms: self.get(r, 4)?,
                        p99_ms: self.get(r, 5)?,
                    },
                ))
            })
            .collect()
    }

    /// `history --verify`: the whole log, from its first record.
    fn verify(&self) -> Result<ChainReport, StoreError> {
        // The whole log, and the stored checkpoint held against its record.
        let dispute = self.stored_dispute()?;
        let mut report = self.walk_chain(None, dispute)?;
        for t in self.missing_triggers()? {
            report.warnings.push(format!(
                "the audit log's append-only trigger {t} is missing or disabled right now"
            ));
        }
        Ok(report)
    }

    fn integrity(&self) -> Option<String> {
        self.integrity_of(self.chain_report())
    }

    fn unfinished(&self) -> Result<Vec<Unfinished>, StoreError> {
        let rows = self.with(true, |s| {
            let st = s.st(
                "SELECT s.id, s.at, s.actor, s.action, s.env, s.version, s.from_version,
                        (SELECT MIN(l.id) FROM shipdeck_audit l
                          WHERE l.env = s.env AND l.id > s.id AND l.finishes IS NULL
                            AND l.outcome = 'started' AND l.action IN ('promote', 'rollback')),
                        EXISTS (SELECT 1 FROM shipdeck_audit f WHERE f.finishes = s.id)
                 FROM shipdeck_audit s
                 WHERE s.finishes IS NULL AND s.outcome = 'started'
                   AND s.action IN ('promote', 'rollback')
                   AND NOT EXISTS (SELECT 1 FROM shipdeck_audit f
                        WHERE f.finishes = s.id AND f.outcome <> 'unknown')
                   AND (NOT EXISTS (SELECT 1 FROM shipdeck_audit f WHERE f.finishes = s.id)
                     OR NOT EXISTS (SELECT 1 FROM shipdeck_audit l
                          WHERE l.env = s.env AND l.id > s.id AND l.finishes IS NULL
                            AND l.outcome = 'started' AND l.action IN ('promote', 'rollback')))
                 ORDER BY s.id",
            )?;
            s.client.query(&st, &[])
        })?;
        rows.iter()
            .map(|r| {
                let id: i64 = self.get(r, 0)?;
                let action: String = self.get(r, 3)?;
                Ok(Unfinished {
                    id,
                    at: self.parse_time(&self.get::<String>(r, 1)?)?,
                    actor: self.get(r, 2)?,
                    action: ActionKind::parse(&action)
                        .ok_or_else(|| self.corrupt(format!("action {action:?}")))?,
                    env: self.get(r, 4)?,
                    version: self
                        .parse_version(self.get(r, 5)?)?
                        .ok_or_else(|| self.corrupt(format!("deploy #{id} without version")))?,
                    from_version: self.parse_version(self.get(r, 6)?)?,
                    superseded_by: self.get(r, 7)?,
                    unknown: self.get(r, 8)?,
                })
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.target.describe.clone()
    }

    fn unreachable_since(&self) -> Option<DateTime<Utc>> {
        self.down_since()
    }

    /// Refresh this console's row (an UPDATE, which does not tick the
    /// feed) or insert it (which does), and forget expired ones.
    fn heartbeat(&self, p: &Presence, expire_before: DateTime<Utc>) -> Result<(), StoreError> {
        let pid = i64::from(p.pid);
        self.with(false, |s| {
            let gone = s.st("DELETE FROM shipdeck_presence WHERE last_seen < $1")?;
            s.client.execute(&gone, &[&ts(expire_before)])?;
            // Its own row only (its pid space; `''` for none), never a
            // namesake's in another container.
            let space = p.pid_space.as_deref().unwrap_or("");
            let beat = s.st("UPDATE shipdeck_presence SET actor = $3, last_seen = $4
                 WHERE host = $1 AND pid = $2 AND pid_space = $5")?;
            if s.client
                .execute(&beat, &[&p.host, &pid, &p.actor, &ts(p.last_seen), &space])?
                == 0
            {
                let new = s.st(
                    "INSERT INTO shipdeck_presence (host, pid, actor, since, last_seen, pid_space)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host, pid, pid_space) DO NOTHING",
                )?;
                s.client.execute(
                    &new,
                    &[
                        &p.host,
                        &pid,
                        &p.actor,
                        &ts(p.since),
                        &ts(p.last_seen),
                        &space,
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn leave(&self, host: &str, pid: u32, pid_space: Option<&str>) -> Result<(), StoreError> {
        self.with(false, |s| {
            let st = s.st(
                "DELETE FROM shipdeck_presence WHERE host = $1 AND pid = $2 AND pid_space = $3",
            )?;
            s.client
                .execute(&st, &[&host, &i64::from(pid), &pid_space.unwrap_or("")])
        })
        .map(|_| ())
    }

    /// One statement, one round trip: see `status.rs`.
    fn status_reads(
        &self,
        envs: &[super::EnvKeys<'_>],
        recent: usize,
        now: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
    ) -> Result<super::StatusReads, StoreError> {
        self.read_status(envs, recent, now, fresh_since)
    }

    fn present(&self, fresh_since: DateTime<Utc>) -> Result<Vec<Presence>, StoreError> {
        let rows = self.with(true, |s| {
            let st = s.st(
                "SELECT host, pid, actor, since, last_seen, NULLIF(pid_space, '') FROM shipdeck_presence
                 WHERE last_seen >= $1 ORDER BY since, host, pid, pid_space",
            )?;
            s.client.query(&st, &[&ts(fresh_since)])
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (host, pid): (String, i64) = (r.get(0), r.get(1));
            let pid = u32::try_from(pid).unwrap_or(u32::MAX);
            let pid_space: Option<String> = r.get(5);
            if holder_gone(pid, &host, pid_space.as_deref()) {
                continue;
            }
            out.push(Presence {
                actor: r.get(2),
                host,
                pid,
                pid_space,
                since: self.parse_time(&r.get::<_, String>(3))?,
                last_seen: self.parse_time(&r.get::<_, String>(4))?,
            });
        }
        Ok(out)
    }

    /// LISTEN on a connection of its own, on a thread of its own: every
    /// record anyone commits ticks the feed (NOTIFY from the tables'
    /// triggers), pushed by the server rather than polled. A lost
    /// connection is taken up again every [`RECONNECT_PAUSE`], with one
    /// tick once back (what happened meanwhile was not announced).
    fn changes(&self) -> Result<Changes, StoreError> {
        let mut client = listener(&self.target)?;
        let (notifier, feed) = Changes::channel();
        let target = self.target.clone();
        std::thread::Builder::new()
            .name("shipdeck-listen".into())
            .spawn(move || {
                listen(&mut client, &target, &notifier);
            })
            .map_err(|e| {
                self.target
                    .unreachable(&format!("cannot start the listener: {e}"))
            })?;
        Ok(feed)
    }
}

impl PgStore {
    /// [`Store::integrity`] for a chain whose key (highest id, counter) a
    /// status read just saw: the report this process made of that very
    /// key when it has one, else a walk.
    pub(super) fn integrity_given(
        &self,
        key: (Option<i64>, i64),
        cp: Option<chain::Checkpoint>,
    ) -> Option<String> {
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|v| v.key == key && v.cp == cp)
            .map(|v| v.report.clone());
        self.integrity_of(known.map_or_else(|| self.chain_report(), Ok))
    }

    fn integrity_of(&self, report: Result<ChainReport, StoreError>) -> Option<String> {
        let mut problems = Vec::new();
        match report {
            Ok(r) => {
                if let Some(b) = r.broken {
                    problems.push(format!(
                        "the audit log's hash chain is broken at {b}; actions are refused (see `shipdeck history --verify`)"
                    ));
                }
            }
            Err(e @ StoreError::Unreachable { .. }) => problems.push(e.to_string()),
            Err(e) => problems.push(format!("the audit log cannot be verified: {e}")),
        }
        problems.extend(
            self.notes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;

    #[test]
    fn a_walk_moves_the_checkpoint_at_its_own_drawn_lag_between_a_half_and_one_and_a_half() {
        // No stored checkpoint yet: the first walk stores one, whatever it drew.
        assert!(checkpoint_due(None, 1, 0));
        assert!(checkpoint_due(None, 1, u64::MAX));
        let half = CHECKPOINT_EVERY / 2;
        for draw in [0, 7, 63, 64, 1_000_003, u64::MAX] {
            let lag = half + (draw % CHECKPOINT_EVERY as u64) as i64;
            assert!((half..half + CHECKPOINT_EVERY).contains(&lag));
            assert!(!checkpoint_due(Some(100), 100 + lag - 1, draw), "{draw}");
            assert!(checkpoint_due(Some(100), 100 + lag, draw), "{draw}");
        }
        // A store's draws spread over that range, so of the processes that
        // walk past the same stale checkpoint at once few move it.
        let draws = std::hash::RandomState::new();
        let lags: Vec<i64> = (0..1000)
            .map(|id| {
                (half..3 * half)
                    .find(|lag| checkpoint_due(Some(0), *lag, draws.hash_one(id)))
                    .expect("due within one and a half")
            })
            .collect();
        assert!(lags.iter().min() < Some(&(half + 8)), "{lags:?}");
        assert!(lags.iter().max() > Some(&(3 * half - 8)), "{lags:?}");
    }
}
