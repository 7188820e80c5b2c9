//! Where shipdeck keeps what happened: deploy history, approvals, the
//! append-only audit log, deploy locks, monitoring verdicts and recent metric
//! samples. One trait; the embedded SQLite store is the default.

mod chain;
mod changes;
mod face;
mod pg;
mod sqlite;
#[cfg(test)]
pub(crate) mod testing;

pub use chain::{Broken, ChainReport, ChainRow};
pub use changes::{ChangeNotifier, Changes};
pub use face::AsyncStore;
pub use pg::{
    AppendProfile, MigrateReport, PasswordSource, PgStore, PgTarget, SCHEMA_VERSION, export_sqlite,
};
pub use sqlite::{
    BUSY_WAIT, BusyNotice, BusyWaitState, SqliteStore, busy_wait_state, on_busy_wait,
};

use chrono::{DateTime, Utc};

use crate::domain::{ActionKind, Approval, AuditEntry, Decision, DeployRecord, Outcome, Version};
use crate::monitor::Sample;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {cause}")]
    Sqlite { path: String, cause: String },
    #[error("store {path}: cannot create its directory: {cause}")]
    Dir { path: String, cause: String },
    #[error("store {path}: unreadable record: {cause}")]
    Corrupt { path: String, cause: String },
    #[error("store {path} is read-only ({cause}): status and history work, actions are refused")]
    ReadOnly { path: String, cause: String },
    #[error(
        "store {path}: {cause}; refusing to act on a store nobody else reads (restart shipdeck)"
    )]
    Replaced { path: String, cause: String },
    #[error("store {path}: {cause}")]
    Tampered { path: String, cause: String },
    /// A `[store] url` that cannot be used as written.
    #[error("store {store}: {cause}")]
    Config { store: String, cause: String },
    /// The database server cannot be reached (or stopped answering).
    #[error("store {store} is unreachable (host {host}): {cause}")]
    Unreachable {
        store: String,
        host: String,
        cause: String,
        /// The SQLSTATE of the server's answer, when one answered (a
        /// session it ended, a new connection it refused): what
        /// [`heals_by_waiting`](Self::heals_by_waiting) reads, never the text.
        sqlstate: Option<SqlState>,
        /// A cause the client itself found, which no waiting heals though
        /// no server said so (no SQLSTATE): no password to give a server
        /// that asks for one, a server certificate that does not verify.
        lasting: bool,
    },
    /// The server answered with an error.
    #[error("store {store}: {cause}")]
    Postgres {
        store: String,
        cause: String,
        /// The server's SQLSTATE (`None`: shipdeck's own refusal).
        sqlstate: Option<SqlState>,
    },
    #[error(
        "store {store} has schema version {found}, written by a newer shipdeck; this shipdeck knows up to version {known}: upgrade shipdeck rather than let it guess"
    )]
    NewerSchema {
        store: String,
        found: i32,
        known: i32,
    },
    /// `store migrate` into a store that already holds other records.
    #[error("store {store}: {cause}")]
    NotEmpty { store: String, cause: String },
    /// A second outcome (or verdict) for what already has a different one
    /// recorded: both named, neither replaced (see [`second_finish`]).
    #[error("store {store}: {cause}")]
    Conflict { store: String, cause: String },
}

/// A PostgreSQL SQLSTATE: the five characters of a server's answer
/// ("42501" permission denied) that say what kind of error it is, kept
/// apart from its message so that no rewording, redaction or wrapping of
/// the text changes what shipdeck does about it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// `code` when it is a SQLSTATE: five ASCII digits or capitals.
    pub fn new(code: &str) -> Option<SqlState> {
        let bytes: [u8; 5] = code.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            .then_some(SqlState(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `new`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Its class: the first two characters ("28" invalid authorization).
    pub fn class(&self) -> &str {
        &self.as_str()[..2]
    }
}

impl std::fmt::Debug for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqlState({})", self.as_str())
    }
}

impl std::fmt::Display for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoreError {
    /// Whether waiting may heal it: the server unreachable (an outage), or
    /// a refusal the server or SQLite itself calls passing (a serialization
    /// failure or deadlock, a lock or statement timeout, a server out of
    /// connections or memory, a database busy with another writer).
    /// Everything else stays until someone acts: permission denied, a
    /// broken audit chain, a newer schema, a read-only, replaced or
    /// unreadable store, a bad `[store]` setting.
    pub fn heals_by_waiting(&self) -> bool {
        match self {
            // Unreachable, unless a server did answer the new connection,
            // refusing it for good: the password or the role's login
            // refused (class 28), no such database (3D), no CONNECT right;
            // or the client found it cannot log in (no password) or trust
            // the server (its certificate does not verify).
            StoreError::Unreachable {
                sqlstate, lasting, ..
            } => {
                !*lasting
                    && !sqlstate.is_some_and(|code| {
                        matches!(code.class(), "28" | "3D") || code.as_str() == "42501"
                    })
            }
            // Only the server's word that the refusal passes; a refusal
            // of shipdeck's own (no code) stays.
            StoreError::Postgres { sqlstate, .. } => sqlstate.is_some_and(|code| {
                matches!(code.class(), "40" | "53") || matches!(code.as_str(), "55P03" | "57014")
            }),
            StoreError::Sqlite { cause, .. } => {
                cause.contains("database is locked") || cause.contains("database is busy")
            }
            StoreError::Dir { .. }
            | StoreError::Corrupt { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::Replaced { .. }
            | StoreError::Tampered { .. }
            | StoreError::Config { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::NotEmpty { .. }
            | StoreError::Conflict { .. } => false,
        }
    }
}

/// How far a lock's `acquired_at` and its holder's own records may
/// disagree when held against each other, for a lock not linked to its
/// record ([`LockInfo::audit_id`]: one written by an older shipdeck, or
/// one whose holder ended between taking it and linking it). A shared store dates a lock on
/// its own clock (so that every console shows the same "since"), while the
/// holder dates its audit records on its clock, which may be minutes off
/// the server's: a record up to this much older than the lock is still
/// taken as possibly the lock's own. Erring this way keeps a deploy in
/// flight from being reconciled, or read "unknown", under its live owner
/// whose clock runs behind the server's; the cost is that a dead deploy
/// followed within this time by another one's lock waits for that lock to
/// go before it is reconciled.
pub const HOLDER_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The key of an environment's monitoring claim among the store's locks
/// (environment names cannot contain `#`).
pub fn watch_key(env: &str) -> String {
    format!("{env}#watch")
}

/// The lock whose holder keeps a "started" `action` record of `env` in
/// progress: a monitoring window's claim for a window, the deploy lock for
/// the rest (promote, rollback).
pub(crate) fn live_key(action: &str, env: &str) -> String {
    match action {
        "monitor" => watch_key(env),
        _ => env.to_string(),
    }
}

/// A finish of `started` (with `new`) that found its outcome already
/// recorded (record `recorded.0`, outcome `recorded.1`): a write retried
/// after its first attempt went in (the commit landed, the reply was
/// lost) is done, not written twice; an "unknown" after any outcome adds
/// nothing; a different outcome is refused, naming both. An "unknown"
/// recorded first (a reconciler's placeholder for a deploy whose owner
/// seemed gone) is no outcome to a real one: the lookups skip it and the
/// real outcome is written after it. Both stores answer through this, so
/// they cannot drift.
pub(crate) fn second_finish(
    store: &str,
    started: i64,
    recorded: (i64, &str),
    new: Outcome,
) -> Result<(), StoreError> {
    if new == Outcome::Unknown || recorded.1 == new.as_str() {
        return Ok(());
    }
    Err(StoreError::Conflict {
        store: store.to_string(),
        cause: format!(
            "audit record #{started} already has its outcome recorded as \"{}\" (record #{}); refusing to record \"{}\" beside it — the two disagree: check what the environment runs with `shipdeck status`",
            // Read back from a shared store another process wrote.
            crate::text::sanitize(recorded.1),
            recorded.0,
            new.as_str()
        ),
    })
}

/// The newest record of a monitoring window's deploy (its env, version and
/// `started_at`), as [`verdict_write`] compares it: verdict, finished_at
/// (as stored), metric, reason.
pub(crate) type NewestMonitor = (String, Option<String>, Option<String>, String);

/// Whether to write `m`, given the newest record already kept for the same
/// deploy's windows. The same record again is a retry whose first attempt
/// committed but whose answer was lost: done, not added. An "interrupted"
/// right after a final verdict (the watcher stopping once its verdict went
/// in) adds nothing. Anything else is written: a later window on the same
/// deploy (`shipdeck watch` again, a re-watch after an interrupted one)
/// has its own opening and verdict, whatever an earlier one recorded.
pub(crate) fn verdict_write(m: &MonitorRecord, newest: Option<&NewestMonitor>) -> bool {
    let Some((verdict, finished, metric, reason)) = newest else {
        return true;
    };
    let same = *verdict == m.verdict
        && *finished == m.finished_at.map(sqlite::ts)
        && *metric == m.metric
        && *reason == m.reason;
    let interrupted = crate::domain::WindowVerdict::Interrupted.as_str();
    let after_verdict = m.verdict == interrupted
        && finished.is_some()
        && verdict != interrupted
        && verdict != crate::domain::WindowVerdict::Monitoring.as_str();
    !(same || after_verdict)
}

/// A deploy or rollback whose "started" record has no outcome: its process
/// ended (or could not record) before it said how the deploy went. Also
/// one whose only outcomes read "unknown" (a Ctrl-C after the deploy was
/// handed over, a reconciler that could not tell) while no later deploy or
/// rollback of its environment started: the environment may still confirm
/// it, and a real outcome may follow an "unknown".
#[derive(Clone, Debug, PartialEq)]
pub struct Unfinished {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: ActionKind,
    pub env: String,
    pub version: Version,
    pub from_version: Option<Version>,
    /// A later deploy or rollback of the same environment (started,
    /// whatever its outcome).
    pub superseded_by: Option<i64>,
    /// Its outcome so far reads "unknown" (never with `superseded_by`):
    /// settled only when the environment confirms it, never given a
    /// second "unknown".
    pub unknown: bool,
}

/// A new audit record.
#[derive(Clone, Debug)]
pub struct NewAudit<'a> {
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: ActionKind,
    pub env: &'a str,
    pub version: Option<&'a Version>,
    pub from_version: Option<&'a Version>,
    pub outcome: Outcome,
    pub detail: &'a str,
}

impl<'a> NewAudit<'a> {
    /// How decision `a` reads in the audit log: "Go" or "No-Go", then its
    /// note.
    pub(crate) fn approval_detail(a: &Approval) -> String {
        let word = match a.decision {
            Decision::Go => "Go",
            Decision::NoGo => "No-Go",
        };
        match &a.note {
            Some(n) => format!("{word}: {n}"),
            None => word.to_string(),
        }
    }

    /// The audit record of decision `a` (an approve or a reject, always
    /// succeeded), read as `detail` ([`approval_detail`](Self::approval_detail)).
    pub(crate) fn of_approval(a: &'a Approval, detail: &'a str) -> Self {
        NewAudit {
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
            detail,
        }
    }
}

/// Who holds an environment's deploy lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub env: String,
    pub holder: String,
    pub pid: u32,
    pub host: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The "started" audit record of the action the lock guards, once its
    /// holder appended it ([`Store::audit_start_held`] links the two in one
    /// transaction). `None` in the moment between taking the lock and
    /// appending the record, for a lock taken for no audited action, and
    /// for a lock written by a shipdeck from before the link: those are
    /// matched to their record by time ([`HOLDER_SKEW`]). A renewal keeps
    /// it; another holder taking the lock clears it.
    pub audit_id: Option<i64>,
    /// Where its holder's pid means something ([`crate::host::pid_space`]:
    /// host name, boot and pid namespace), as the store recorded it when
    /// the lock was taken: two containers (or machines) named alike share
    /// pid numbers, never this. `None` for a lock written by a shipdeck
    /// from before pid spaces, or by one that could not read its own, and
    /// ignored when taking a lock (the store writes the taker's own).
    pub pid_space: Option<String>,
}

impl LockInfo {
    /// Whether this lock is held by this very process: its pid, host name
    /// and pid space, not merely a pid and host name another container
    /// named alike also has.
    pub fn is_this_process(&self) -> bool {
        self.pid == std::process::id()
            && self.host == crate::host::hostname()
            && self.pid_space == crate::host::pid_space()
    }

    /// Whether this lock guards the started record `id` (dated `at` on
    /// its holder's clock), the caller having matched its environment
    /// (and holder, where it reads the actor). Linked, by ids, whatever the
    /// clocks: the record it is linked to, or one appended after it while
    /// the lock stayed with the same holder (an action sharing the lock,
    /// such as a canary's rollback); never one appended before it (a dead
    /// deploy's, however close in time). Unlinked (a lock from before the
    /// link, or one whose holder has not yet appended its record): any
    /// record no more than [`HOLDER_SKEW`] older than the lock, which errs
    /// towards "still in flight".
    pub fn guards(&self, id: i64, at: DateTime<Utc>) -> bool {
        match self.audit_id {
            Some(linked) => id >= linked,
            None => crate::domain::clock::before(self.acquired_at, HOLDER_SKEW) <= at,
        }
    }

    /// `alice (pid 4242 on build-7)`
    pub fn describe(&self) -> String {
        // Names another process wrote into the shared store: sanitised
        // here, so every refusal and lost-lock line prints them safely.
        format!(
            "{} (pid {} on {})",
            crate::text::sanitize(&self.holder),
            self.pid,
            crate::text::sanitize(&self.host)
        )
    }
}

/// An open console on the store, kept alive by its heartbeat: who else is
/// watching. A row whose heartbeat stopped (the console quit, crashed or
/// lost its network) expires.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Presence {
    pub actor: String,
    pub host: String,
    pub pid: u32,
    /// Where its pid means something ([`crate::host::pid_space`]): two
    /// consoles in two containers of one host are both pid 1 under one
    /// hostname, and only this tells them apart. `None` for a console of
    /// an older shipdeck (or a machine without `/proc`), judged by host
    /// name and pid as before. Not shown.
    #[serde(skip)]
    pub pid_space: Option<String>,
    /// When the console opened.
    pub since: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
}

impl Presence {
    /// The same console with the names it stored (anyone with write access
    /// to the store chose them) made safe to show, on a terminal or in JSON
    /// a terminal will print: [`crate::text::sanitize`], the one sanitiser
    /// for untrusted text.
    pub fn sanitized(self) -> Presence {
        Presence {
            actor: crate::text::sanitize(&self.actor),
            host: crate::text::sanitize(&self.host),
            ..self
        }
    }

    /// Whether `self` is this very process's console: its pid, host name
    /// and pid space, not merely a pid and host name another container
    /// named alike also has (as [`LockInfo::is_this_process`]).
    pub fn is_this_process(&self) -> bool {
        self.pid == std::process::id()
            && self.host == crate::host::hostname()
            && self.pid_space == crate::host::pid_space()
    }
}

/// The outcome of a finished monitoring window.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorRecord {
    pub env: String,
    pub version: Version,
    /// Where the store put the window's opening in its one order: the id
    /// of the window's own `monitor` started audit record, a
    /// [`DeployRecord::seq`] alike — what tells a window opened after a
    /// deploy was recorded from one before, whatever the clocks of the two
    /// machines say. The watcher writes it with each of the window's rows
    /// (its opening, its verdict) and every read returns the row's own;
    /// `None` for a row written without it (by an older shipdeck), which is
    /// then judged by its dates — never by another window's record.
    pub seq: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub verdict: String,
    pub metric: Option<String>,
    pub reason: String,
}

/// What a status view reads from the store about one environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvReads {
    /// Its last deploys (as many as asked), oldest first.
    pub recent: Vec<DeployRecord>,
    /// The live deploy lock on it.
    pub lock: Option<LockInfo>,
    /// The live lock on its monitoring claim (the key asked for).
    pub watch: Option<LockInfo>,
    pub last_monitor: Option<MonitorRecord>,
    /// Its decisions, oldest first, as [`Store::approvals`] reads them,
    /// about the versions a view can show only (see [`decisions_about`]).
    pub approvals: Vec<Approval>,
    /// The versions a monitoring window caught in it, as
    /// [`Store::caught_versions`] reads them, among the versions of its
    /// `recent` deploys and the ones they replaced only (see
    /// [`caught_among`]): the rollback targets a view can offer.
    pub caught: Vec<Version>,
}

/// Everything a status view reads from the store at once: a shared store
/// answers it in one round trip instead of one per read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusReads {
    /// As [`Store::latest_deploys`].
    pub latest: Vec<DeployRecord>,
    /// One per environment asked for, in that order.
    pub envs: Vec<EnvReads>,
    /// As [`Store::present`].
    pub present: Vec<Presence>,
    /// As [`Store::unfinished`].
    pub unfinished: Vec<Unfinished>,
    /// As [`Store::integrity`], asked after the reads above (reading the
    /// decisions is what notices an edited approvals table).
    pub integrity: Option<String>,
}

/// One environment of a [`Store::status_reads`].
#[derive(Clone, Copy, Debug)]
pub struct EnvKeys<'a> {
    pub env: &'a str,
    /// The lock key of its monitoring claim.
    pub watch: &'a str,
    /// Versions the view asks decisions about besides those of the recent
    /// deploys: what the environment and the stage before it run.
    pub versions: &'a [String],
}

pub trait Store: Send + Sync {
    /// Append an audit record; returns its id. Written before the action runs.
    fn audit_start(&self, rec: &NewAudit<'_>) -> Result<i64, StoreError>;
    /// Append the "started" record of the action the caller's deploy lock
    /// (`lock.env`, held by `lock.pid` on `lock.host`) guards, and link
    /// the lock to it ([`LockInfo::audit_id`]) in the same transaction:
    /// status, history and reconcile then know the record as the lock's
    /// whatever the holder's clock says. A lock this caller no longer
    /// holds is left as it is (the record is appended all the same).
    fn audit_start_held(&self, rec: &NewAudit<'_>, lock: &LockInfo) -> Result<i64, StoreError>;
    /// Append the outcome of a started action (the started record is never changed).
    fn audit_finish(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError>;
    /// Append a successful deploy and its audit outcome in one transaction.
    fn record_deploy(
        &self,
        started: i64,
        rec: &DeployRecord,
        detail: &str,
    ) -> Result<(), StoreError>;
    /// Record a Go/No-Go and its audit record in one transaction.
    fn record_approval(&self, a: &Approval) -> Result<i64, StoreError>;
    /// Audit entries, newest first, each with the outcome it ended with.
    fn history(&self, env: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
    /// `env`'s canary records and the promotions that ran there (a refused
    /// promotion is left out), newest first, as [`Store::history`] reads
    /// them: what the canary's recorded weight, when it took traffic and
    /// why nobody judges it are read from — not a window of the
    /// environment's last records, which refusals alone can fill (a job
    /// retrying `promote` every minute) until the weight falls out of it.
    fn canary_history(&self, env: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
    /// Recorded deploys, oldest first.
    fn deploys(&self, env: Option<&str>) -> Result<Vec<DeployRecord>, StoreError>;
    /// The newest recorded deploy of each environment, oldest first: what a
    /// status view needs, without reading the whole history.
    fn latest_deploys(&self) -> Result<Vec<DeployRecord>, StoreError>;
    /// The last `limit` deploys of `env`, oldest first: enough history to
    /// plan a rollback.
    fn recent_deploys(&self, env: &str, limit: usize) -> Result<Vec<DeployRecord>, StoreError>;
    /// Recorded decisions about `env`, oldest first.
    fn approvals(&self, env: &str) -> Result<Vec<Approval>, StoreError>;
    /// Versions whose monitoring window in `env` ended failed (caught a
    /// regression), oldest first, each once: one targeted read, whatever
    /// the length of the audit log.
    fn caught_versions(&self, env: &str) -> Result<Vec<Version>, StoreError>;
    /// Take the deploy lock of `env`; `Err(holder)` when someone else holds it.
    /// `lock.acquired_at` is when the caller took or renews it (a renewal
    /// keeps the first time in the store) and `expires_at - acquired_at`
    /// the lifetime it asks for: a shared store expires it on the server's
    /// clock, the embedded one at `expires_at`.
    fn try_lock(&self, lock: &LockInfo) -> Result<Result<(), LockInfo>, StoreError>;
    fn unlock(&self, env: &str, pid: u32, host: &str) -> Result<(), StoreError>;
    /// The live lock on `env`, if any (stale locks are not reported).
    fn lock_of(&self, env: &str, now: DateTime<Utc>) -> Result<Option<LockInfo>, StoreError>;
    fn record_monitor(&self, rec: &MonitorRecord) -> Result<(), StoreError>;
    fn last_monitor(&self, env: &str) -> Result<Option<MonitorRecord>, StoreError>;
    /// Keep a metric sample (absolute time in `at`); pruned beyond `keep`.
    fn record_sample(
        &self,
        env: &str,
        at: DateTime<Utc>,
        s: &Sample,
        keep: chrono::Duration,
    ) -> Result<(), StoreError>;
    /// Samples of `env` in `[from, to]`, oldest first, with their absolute times.
    fn samples(
        &self,
        env: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Sample)>, StoreError>;
    /// Walk the audit log's hash chain from its first record.
    fn verify(&self) -> Result<ChainReport, StoreError>;
    /// What is wrong with the store, for every view to show: a broken
    /// chain, a store file deleted or replaced under this process, tamper
    /// found on open, a read-only store. `None` when all is well.
    fn integrity(&self) -> Option<String>;
    /// Since when a server store has been unreachable (its connection lost,
    /// reconnecting), if it is. An embedded store never is.
    fn unreachable_since(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// Deploys and rollbacks that started and have no outcome, oldest first.
    fn unfinished(&self) -> Result<Vec<Unfinished>, StoreError>;
    /// Where the store lives, for messages.
    fn describe(&self) -> String;
    /// The live-events seam: a feed that ticks soon after anyone — another
    /// console, a CLI, this process — records something a view shows: an
    /// approval or No-Go, a deploy or rollback starting or ending, a
    /// monitoring window starting or its verdict, a refusal. See
    /// [`Changes`]. SQLite watches its file; a shared database pushes.
    fn changes(&self) -> Result<Changes, StoreError>;
    /// Presence: record that `p`'s console is open (insert, or refresh its
    /// `last_seen`), and forget every console last seen before
    /// `expire_before`.
    fn heartbeat(&self, p: &Presence, expire_before: DateTime<Utc>) -> Result<(), StoreError>;
    /// Presence: the console of `pid` on `host` in pid space `pid_space`
    /// ([`Presence::pid_space`]) closed; a namesake's in another space
    /// (another container's pid 1) stays.
    fn leave(&self, host: &str, pid: u32, pid_space: Option<&str>) -> Result<(), StoreError>;
    /// Presence: consoles seen at or after `fresh_since`, oldest first (a
    /// console of this machine whose process is gone is not listed).
    fn present(&self, fresh_since: DateTime<Utc>) -> Result<Vec<Presence>, StoreError>;
    /// A status view's reads, all at once: the latest deploys, for each of
    /// `envs` its last `recent` deploys, locks, last verdict, decisions
    /// and caught versions, the consoles seen since `fresh_since`, the unfinished
    /// deploys and the store's integrity. The same answers as the single
    /// reads; a store with round trips to save
    /// answers it in one.
    fn status_reads(
        &self,
        envs: &[EnvKeys<'_>],
        recent: usize,
        now: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
    ) -> Result<StatusReads, StoreError> {
        let mut out = StatusReads {
            latest: self.latest_deploys()?,
            envs: Vec::with_capacity(envs.len()),
            present: self.present(fresh_since)?,
            unfinished: Vec::new(),
            integrity: None,
        };
        for k in envs {
            let recent = self.recent_deploys(k.env, recent)?;
            let approvals = decisions_about(self.approvals(k.env)?, &recent, k.versions);
            let caught = caught_among(self.caught_versions(k.env)?, &recent);
            out.envs.push(EnvReads {
                recent,
                lock: self.lock_of(k.env, now)?,
                watch: self.lock_of(k.watch, now)?,
                last_monitor: self.last_monitor(k.env)?,
                approvals,
                caught,
            });
        }
        out.unfinished = self.unfinished()?;
        // An "unknown" is listed for the environments asked about only, as a
        // shared store's snapshot reads it (see `store::pg::status`).
        out.unfinished
            .retain(|u| !u.unknown || envs.iter().any(|k| k.env == u.env));
        out.integrity = self.integrity();
        Ok(out)
    }
}

/// The decisions a status view can use: those about a version of the
/// environment's `recent` deploys or the one each replaced (the rollback
/// targets [`crate::domain::plan_rollback`] considers) or one of `versions`
/// (what it and the stage before it run), oldest first. Every decision
/// about such a version is kept, so the newest one — the one that
/// counts — is among them; the rest of the history is not read, so the
/// view costs what it shows, not how long the team has been deciding.
pub fn decisions_about(
    all: Vec<Approval>,
    recent: &[DeployRecord],
    versions: &[String],
) -> Vec<Approval> {
    all.into_iter()
        .filter(|a| {
            recent
                .iter()
                .any(|d| d.version == a.version || d.from_version.as_ref() == Some(&a.version))
                || versions.iter().any(|v| v == a.version.as_str())
        })
        .collect()
}

/// The caught versions (as [`Store::caught_versions`], oldest first) a
/// status view plans a rollback with: those among the versions of the
/// environment's `recent` deploys or the ones each replaced — every version
/// [`crate::domain::plan_rollback`] can pick from that history — so the
/// target a view offers is one the rollback itself (reading every caught
/// version) accepts, and the view reads no more than it can show.
pub fn caught_among(all: Vec<Version>, recent: &[DeployRecord]) -> Vec<Version> {
    all.into_iter()
        .filter(|v| {
            recent
                .iter()
                .any(|d| &d.version == v || d.from_version.as_ref() == Some(v))
        })
        .collect()
}

/// How an audit record reads once its two halves are joined: the outcome
/// word (`fin`, else `status`) and the detail (what was attempted, then how
/// it ended). A "started" record with no outcome is in progress while a live
/// lock taken for it is held ([`live_key`]; `live` says so; asked only then); otherwise its
/// process died before it recorded one: "unknown", and the detail says why.
/// One reading for both stores, so SQLite and PostgreSQL show the same audit.
pub(crate) fn audit_outcome(
    status: String,
    detail: String,
    fin: Option<String>,
    fin_detail: Option<String>,
    live: impl FnOnce() -> Result<bool, StoreError>,
) -> Result<(String, String), StoreError> {
    let fin = match (status.as_str(), fin) {
        ("started", None) => (!live()?).then(|| "unknown".to_string()),
        (_, f) => f,
    };
    let detail = match fin_detail {
        Some(fd) if !fd.is_empty() => format!("{detail} — {fd}"),
        _ if fin.as_deref() == Some("unknown") => {
            // Any action's record: a monitoring window or a canary step
            // as much as a deploy, so no word of a backend's answer.
            format!(
                "{detail} — no outcome recorded: the shipdeck running it ended before it could record one (killed outright, or its machine went down)"
            )
        }
        _ => detail,
    };
    Ok((fin.unwrap_or(status), detail))
}

/// The approvals table indexes the audit log's decisions as (version,
/// decision, actor, at) rows; decisions are always taken from the audit log.
/// A note naming `env` when the index disagrees with it (it was edited
/// outside shipdeck), for both stores alike.
pub(crate) fn approvals_disagree(
    env: &str,
    from_audit: &[Approval],
    indexed: &[(String, String, String, String)],
) -> Option<String> {
    let agrees = from_audit.len() == indexed.len()
        && from_audit
            .iter()
            .zip(indexed)
            .all(|(a, (v, d, actor, at))| {
                a.version.as_str() == v
                    && a.decision.as_str() == d
                    && &a.actor == actor
                    && sqlite::ts(a.at) == *at
            });
    (!agrees).then(|| format!(
        "the approvals table disagrees with the audit log for {env} (it was edited outside shipdeck); decisions are taken from the audit log"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outage heals by waiting; a refusal that stays until someone acts
    /// (permission denied, a broken chain, a newer schema) does not, so a
    /// monitoring window does not wait on it as if the server were away.
    /// Decided by the server's SQLSTATE the error carries, never its text.
    #[test]
    fn only_an_outage_or_a_passing_refusal_heals_by_waiting() {
        let pg = |cause: &str, code: Option<&str>| StoreError::Postgres {
            store: "postgres://db/team".into(),
            cause: cause.into(),
            sqlstate: code.map(|c| SqlState::new(c).unwrap()),
        };
        let away = |cause: &str, code: Option<&str>| StoreError::Unreachable {
            store: "postgres://db/team".into(),
            host: "db:5432".into(),
            cause: cause.into(),
            sqlstate: code.map(|c| SqlState::new(c).unwrap()),
            lasting: false,
        };
        let sqlite = |cause: &str| StoreError::Sqlite {
            path: "s.db".into(),
            cause: cause.into(),
        };
        let heals = [
            away("connection refused", None),
            pg(
                "could not serialize access due to concurrent update (40001)",
                Some("40001"),
            ),
            pg("deadlock detected (40P01)", Some("40P01")),
            pg(
                "canceling statement due to statement timeout (57014)",
                Some("57014"),
            ),
            pg("sorry, too many clients already (53300)", Some("53300")),
            sqlite("database is locked"),
            away(
                "unreachable for 3s (since 12:00:00), reconnecting: terminating connection due to administrator command (57P01)",
                Some("57P01"),
            ),
            // Texts that would mislead a parser of the cause: a transport
            // error whose last parentheses read like a refusal, and a
            // reworded (or redacted) answer with no code in it at all.
            away(
                "unreachable for 3s (since 12:00:00), reconnecting: error connecting to server: no route to host; proxy note (42501)",
                None,
            ),
            away(
                "unreachable for 3s (since 12:00:00), reconnecting: db error (28P01)",
                Some("57P03"),
            ),
            pg("the lock was not available [redacted]", Some("55P03")),
        ];
        for e in &heals {
            assert!(e.heals_by_waiting(), "{e}");
        }
        let stays = [
            pg(
                "permission denied for table shipdeck_locks (42501)",
                Some("42501"),
            ),
            pg(
                "relation \"shipdeck_x\" does not exist (42P01)",
                Some("42P01"),
            ),
            pg("no code here", None),
            // A note whose last parentheses name a passing code: the
            // server's own code (permission denied) decides.
            pg(
                "permission denied for table shipdeck_locks; hint: retry later (40001)",
                Some("42501"),
            ),
            sqlite("disk I/O error"),
            // A reconnect the server answered with a refusal.
            away(
                "unreachable for 3s (since 12:00:00), reconnecting: password authentication failed for user \"alice\" (28P01)",
                Some("28P01"),
            ),
            away(
                "unreachable for 3s (since 12:00:00), reconnecting: [redacted]",
                Some("3D000"),
            ),
            away("permission denied for database team", Some("42501")),
            StoreError::Tampered {
                path: "s.db".into(),
                cause: "the audit log's hash chain is broken at #4".into(),
            },
            StoreError::NewerSchema {
                store: "s.db".into(),
                found: 9,
                known: 4,
            },
            StoreError::ReadOnly {
                path: "s.db".into(),
                cause: "mode 0444".into(),
            },
            StoreError::Replaced {
                path: "s.db".into(),
                cause: "the store file was deleted".into(),
            },
        ];
        for e in &stays {
            assert!(!e.heals_by_waiting(), "{e}");
        }
    }

    #[test]
    fn a_sqlstate_is_five_digits_or_capitals() {
        let code = SqlState::new("28P01").unwrap();
        assert_eq!((code.as_str(), code.class()), ("28P01", "28"));
        assert_eq!(code.to_string(), "28P01");
        for bad in ["", "4250", "425011", "42p01", "(4250", "4250é"] {
            assert_eq!(SqlState::new(bad), None, "{bad:?}");
        }
    }

    /// A holder or host another process wrote into the shared store
    /// reaches refusals and lost-lock lines without its escape sequences.
    #[test]
    fn a_lock_describes_its_holder_without_terminal_escapes() {
        let now = Utc::now();
        let l = LockInfo {
            pid_space: None,
            env: "production".into(),
            holder: "bob\u{1b}[2J\nadmin".into(),
            pid: 7,
            host: "ci\u{1b}]0;pwned\u{7}".into(),
            acquired_at: now,
            audit_id: None,
            expires_at: now,
        };
        let d = l.describe();
        assert!(!d.contains('\u{1b}') && !d.contains('\n'), "{d:?}");
        assert!(d.starts_with("bob") && d.contains("(pid 7 on ci"), "{d}");
    }

    #[test]
    fn approvals_that_differ_from_the_audit_log_in_any_field_are_noted() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = Approval {
            seq: None,
            env: "production".into(),
            version: Version::parse("v1.2.0").unwrap(),
            decision: Decision::Go,
            actor: "alice".into(),
            at,
            note: None,
        };
        let row = |v: &str, d: &str, actor: &str| {
            (
                v.to_string(),
                d.to_string(),
                actor.to_string(),
                sqlite::ts(at),
            )
        };
        let go = Decision::Go.as_str();
        let audit = [a.clone()];
        assert_eq!(
            approvals_disagree("production", &audit, &[row("v1.2.0", go, "alice")]),
            None
        );
        assert_eq!(approvals_disagree("production", &[], &[]), None);
        for edited in [
            vec![],
            vec![row("v1.2.1", go, "alice")],
            vec![row("v1.2.0", Decision::NoGo.as_str(), "alice")],
            vec![row("v1.2.0", go, "mallory")],
            vec![row("v1.2.0", go, "alice"), row("v1.2.0", go, "alice")],
        ] {
            let note = approvals_disagree("production", &audit, &edited);
            assert!(
                note.as_deref()
                    .is_some_and(|n| n.contains("for production (it was edited outside shipdeck)")),
                "{edited:?}: {note:?}"
            );
        }
    }

    #[test]
    fn a_decision_is_audited_as_approve_or_reject_with_its_note() {
        let mut a = Approval {
            seq: None,
            env: "production".into(),
            version: Version::parse("v1.2.0").unwrap(),
            decision: Decision::NoGo,
            actor: "bob".into(),
            at: Utc::now(),
            note: Some("p99 too high".into()),
        };
        let detail = NewAudit::approval_detail(&a);
        assert_eq!(detail, "No-Go: p99 too high");
        let r = NewAudit::of_approval(&a, &detail);
        assert_eq!(
            (r.action, r.env, r.actor),
            (ActionKind::Reject, "production", "bob")
        );
        assert_eq!(
            (r.version, r.outcome),
            (Some(&a.version), Outcome::Succeeded)
        );
        a.decision = Decision::Go;
        a.note = None;
        assert_eq!(NewAudit::approval_detail(&a), "Go");
        assert_eq!(NewAudit::of_approval(&a, "Go").action, ActionKind::Approve);
    }

    fn no_lock() -> Result<bool, StoreError> {
        Ok(false)
    }

    #[test]
    fn audit_outcome_prefers_the_recorded_outcome_and_joins_details() {
        let r = audit_outcome(
            "started".into(),
            "deploy v2".into(),
            Some("failed".into()),
            Some("exit 1".into()),
            || panic!("a finished record must not look for a lock"),
        )
        .unwrap();
        assert_eq!(r, ("failed".into(), "deploy v2 — exit 1".into()));
        let r = audit_outcome(
            "ok".into(),
            "approve".into(),
            None,
            Some(String::new()),
            no_lock,
        )
        .unwrap();
        assert_eq!(r, ("ok".into(), "approve".into()));
    }

    #[test]
    fn audit_outcome_of_a_started_record_depends_on_its_lock() {
        let held = audit_outcome("started".into(), "deploy v2".into(), None, None, || {
            Ok(true)
        });
        assert_eq!(held.unwrap(), ("started".into(), "deploy v2".into()));
        let (outcome, detail) =
            audit_outcome("started".into(), "deploy v2".into(), None, None, no_lock).unwrap();
        assert_eq!(outcome, "unknown");
        assert!(
            detail.starts_with("deploy v2 — no outcome recorded"),
            "{detail}"
        );
        // A monitoring window killed outright (`kill -9` of `watch`) has
        // no backend to wait on: its record says its shipdeck ended.
        let (_, detail) = audit_outcome(
            "started".into(),
            "monitoring window of 1m for v1.8.1".into(),
            None,
            None,
            no_lock,
        )
        .unwrap();
        assert_eq!(
            detail,
            "monitoring window of 1m for v1.8.1 — no outcome recorded: the shipdeck running it ended before it could record one (killed outright, or its machine went down)"
        );
        let err = audit_outcome("started".into(), "d".into(), None, None, || {
            Err(StoreError::Corrupt {
                path: "s".into(),
                cause: "c".into(),
            })
        });
        assert!(err.is_err(), "a failed lock read is an error, not a guess");
    }
}
