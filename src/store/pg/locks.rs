//! Deploy locks on PostgreSQL: the session whose advisory lock vouches for
//! this process's lock rows, its token, and how a lock row is read.

use super::*;

/// The session that holds this process's locks: a session-level advisory
/// lock on `token` lives exactly as long as it does, and every lock row
/// this process writes names the token.
pub(super) struct LockSession {
    pub(super) client: Client,
    pub(super) token: i64,
    /// The locks (env, pid, host) this session's token vouches for.
    pub(super) held: HashSet<(String, u32, String)>,
}

impl PgStore {
    /// This process's lock session, opened when it first takes a lock.
    pub(super) fn lock_token(&self) -> Result<i64, StoreError> {
        let mut guard = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Asked, not assumed: a session the server ended (a restart) reads
        // as open until something is sent on it, and a renewal writing the
        // token of a dead session would vouch for nothing. Only a session
        // known closed is replaced: one slow to answer (a stalled server)
        // still holds its advisory lock, and dropping it would free every
        // lock this process holds for another promoter to take.
        if let Some(ls) = guard.as_mut()
            && !ls.client.is_closed()
        {
            match ls.client.is_valid(Duration::from_secs(5)) {
                Ok(()) => return Ok(ls.token),
                Err(e) if !ls.client.is_closed() => {
                    tracing::warn!(
                        "store {}: the lock session is slow to answer ({}); kept",
                        self.target.describe,
                        cause(&e)
                    );
                    return Ok(ls.token);
                }
                Err(_) => {}
            }
        }
        if guard.take().is_some() {
            tracing::warn!(
                "store {}: the lock session was lost; this process's locks were released",
                self.target.describe
            );
        }
        let mut client = self.target.connect()?;
        let lost = |e: postgres::Error| self.target.lost(&e);
        // The server notices a vanished owner within ~15 s (keepalives on
        // its side of the socket), and releases the session's locks.
        client
            .batch_execute(
                "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;
                 SET tcp_keepalives_count = 3; SET application_name = 'shipdeck lock session'",
            )
            .map_err(lost)?;
        loop {
            let token = random_token();
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&token])
                .map_err(lost)?
                .get(0);
            if got {
                *guard = Some(LockSession {
                    client,
                    token,
                    held: HashSet::new(),
                });
                return Ok(token);
            }
        }
    }

    /// A [`LOCK_ROW`] as the lock it says, and whether it still holds on
    /// the store's side (its owner's session alive, not expired on the
    /// server's clock).
    pub(super) fn lock_info(
        &self,
        env: &str,
        r: &postgres::Row,
    ) -> Result<(LockInfo, bool), StoreError> {
        let pid: i64 = self.get(r, 1)?;
        let info = LockInfo {
            env: env.to_string(),
            holder: self.get(r, 0)?,
            pid: u32::try_from(pid).map_err(|_| self.corrupt(format!("lock pid {pid}")))?,
            host: self.get(r, 2)?,
            acquired_at: self.parse_time(&self.get::<String>(r, 3)?)?,
            audit_id: self.get(r, 8)?,
            expires_at: self.parse_time(&self.get::<String>(r, 4)?)?,
            pid_space: self.get(r, 9)?,
        };
        let (alive, unexpired): (bool, bool) = (self.get(r, 5)?, self.get(r, 7)?);
        Ok((info, alive && unexpired))
    }
}

/// A lock session's token: random enough that two sessions never pick
/// the same (a single-bigint advisory key, positive).
pub(super) fn random_token() -> i64 {
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(crate::host::hostname().as_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(nanos.to_le_bytes());
    h.update(
        COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_le_bytes(),
    );
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (i64::from_le_bytes(b) & i64::MAX).max(1)
}

/// Whether a lock row (`l`) still vouches for a live owner, as SQL: its
/// owner's lock session holds the row's token, or the server restarted
/// since the row was taken. A restart ends every session at once, the lock
/// sessions of promoters still alive and deploying included, so a session
/// gone that way says nothing about its owner: the row holds until its
/// owner takes it again on a new session (its next renewal, within 30 s,
/// which dates it anew) or it expires. Both times are the server's clock:
/// `taken_at` is stamped by the server when a row is written for a new lock
/// session (schema 7), never by the client, whose clock may be minutes off.
/// Only a row from before that schema (no `taken_at`) is read by its
/// client-written `acquired_at`, compared as the text it is written in
/// (`ts`: UTC, milliseconds), so a garbled row cannot fail the statement.
macro_rules! lock_alive_sql {
    () => {
        "(EXISTS (SELECT 1 FROM pg_locks p
                WHERE p.locktype = 'advisory' AND p.granted AND p.objsubid = 1
                  AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND p.classid::bigint = (l.token >> 32)
                  AND p.objid::bigint = (l.token & 4294967295))
          OR COALESCE(l.taken_at < pg_postmaster_start_time(),
                      l.acquired_at < to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')))"
    };
}
pub(super) use lock_alive_sql;

/// Whether a lock row (`l`) has not expired, as SQL, judged on the
/// server's clock: every client's clock may be minutes off, and a taker
/// whose clock runs ahead must not see a live lock as expired. The row's
/// `expires_at` is the server's clock too ([`PUT_LOCK`]; a row written
/// by an older shipdeck carries its holder's clock, judged as before, by
/// one clock against another). Compared as text (in the "C" collation), so
/// a garbled row cannot fail the statement.
macro_rules! lock_unexpired_sql {
    () => {
        "(l.expires_at COLLATE \"C\" >= to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                                  'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"
    };
}
pub(super) use lock_unexpired_sql;

/// Take or renew a lock row. Both its times are written by the server, on
/// its own clock, never the client's (which may be minutes off, and which
/// every other console would show as "since 14:03:12"): `acquired_at` is
/// the server's now when the lock is taken — a new row, another holder, or
/// the same holder on a new lock session (its old one lost, a server
/// restart) — and is kept through the holder's renewals on the same
/// session; `expires_at` is the server's now plus the lifetime the client
/// asked for (`$5`, milliseconds, [`lock_ttl_ms`]). Written in the form of
/// `ts` (UTC, milliseconds), so that text comparison orders them. The
/// audit record the lock is linked to (schema 10) is kept through its
/// holder's renewals, on any lock session; taken by another holder, the
/// lock has none until that holder links its own. `$7` is the taker's pid
/// space (`crate::host::pid_space`, schema 10): "the same holder" is the
/// same pid in the same pid space, never the same pid and hostname alone.
pub(super) const PUT_LOCK: &str =
    "INSERT INTO shipdeck_locks (env, holder, pid, host, acquired_at, expires_at, token,
                                 pid_space)
     VALUES ($1, $2, $3, $4,
             to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
             to_char((clock_timestamp() + $5::bigint * interval '1 millisecond') AT TIME ZONE 'UTC',
                     'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
             $6, $7::text)
     ON CONFLICT (env) DO UPDATE SET holder = EXCLUDED.holder, pid = EXCLUDED.pid,
       host = EXCLUDED.host,
       acquired_at = CASE WHEN shipdeck_locks.token = EXCLUDED.token
                           AND shipdeck_locks.pid = EXCLUDED.pid
                           AND shipdeck_locks.host = EXCLUDED.host
                          THEN shipdeck_locks.acquired_at ELSE EXCLUDED.acquired_at END,
       audit_id = CASE WHEN shipdeck_locks.pid = EXCLUDED.pid
                        AND shipdeck_locks.host = EXCLUDED.host
                        AND (shipdeck_locks.pid_space IS NULL
                             OR shipdeck_locks.pid_space IS NOT DISTINCT FROM EXCLUDED.pid_space)
                       THEN shipdeck_locks.audit_id END,
       expires_at = EXCLUDED.expires_at, token = EXCLUDED.token,
       pid_space = EXCLUDED.pid_space";

/// The lifetime a lock asks for: from when the caller took or renewed it
/// to when it expires, both on the caller's clock (so its skew cancels),
/// in milliseconds, none if negative.
pub(super) fn lock_ttl_ms(lock: &LockInfo) -> i64 {
    (lock.expires_at - lock.acquired_at)
        .num_milliseconds()
        .max(0)
}

/// A lock row with whether its owner still holds it ([`lock_alive_sql`]),
/// whether it has not expired ([`lock_unexpired_sql`]), the audit
/// record it is linked to and its holder's pid space.
pub(super) const LOCK_ROW: &str = concat!(
    "SELECT l.holder, l.pid, l.host, l.acquired_at, l.expires_at, ",
    lock_alive_sql!(),
    ", l.token, ",
    lock_unexpired_sql!(),
    ", l.audit_id, l.pid_space FROM shipdeck_locks l WHERE l.env = $1"
);

impl PgStore {
    /// Close the lock session once this process holds no lock: the
    /// session (and its token) ends with it.
    pub(super) fn release_idle_session(&self) {
        let mut guard = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|ls| ls.held.is_empty()) {
            *guard = None;
        }
    }
}
