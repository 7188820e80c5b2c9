//! The main session with the server: its prepared statements, and what
//! happens when it is lost (marked down, retried at most once per
//! [`RECONNECT_PAUSE`], reads repeated once on a new session).

use super::*;

/// One session with the server and the statements prepared on it.
pub(super) struct Session {
    pub(super) client: Client,
    pub(super) stmts: HashMap<&'static str, Statement>,
    /// The server process serving it, once asked ([`Session::backend`]).
    backend: Option<Backend>,
}

/// A server process serving a session: its pid and when it started (a pid
/// alone may be another session's by the time it is looked for again).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Backend {
    pub(super) pid: i32,
    pub(super) started: String,
}

impl Session {
    pub(super) fn new(client: Client) -> Session {
        Session {
            client,
            stmts: HashMap::new(),
            backend: None,
        }
    }

    /// The server process serving this session (asked once per session).
    pub(super) fn backend(&mut self) -> Result<Backend, postgres::Error> {
        if let Some(b) = &self.backend {
            return Ok(b.clone());
        }
        let st = self.st(
            "SELECT pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        )?;
        let row = self.client.query_one(&st, &[])?;
        let b = Backend {
            pid: row.try_get(0)?,
            started: row.try_get(1)?,
        };
        self.backend = Some(b.clone());
        Ok(b)
    }

    pub(super) fn st(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }
}

/// The main connection and, while it is away, since when and why.
#[derive(Default)]
pub(super) struct Link {
    pub(super) session: Option<Session>,
    pub(super) down: Option<Down>,
}

pub(super) struct Down {
    pub(super) since: Instant,
    pub(super) since_utc: DateTime<Utc>,
    pub(super) last_try: Instant,
    pub(super) cause: String,
    /// The server's SQLSTATE in `cause`, when a server answered.
    pub(super) sqlstate: Option<SqlState>,
    /// The last attempt failed on a cause waiting does not heal (see
    /// `StoreError::Unreachable::lasting`).
    pub(super) lasting: bool,
}

/// A server error's gist, or the transport's.
pub(super) fn cause(e: &postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                let t = inner.to_string();
                if !s.contains(&t) {
                    s = format!("{s}: {t}");
                }
                src = inner.source();
            }
            s
        }
    };
    crate::text::redact(&text)
}

/// The server's SQLSTATE in `e`, when the server answered (what decides
/// whether waiting heals it; see [`StoreError::heals_by_waiting`]).
pub(super) fn sqlstate(e: &postgres::Error) -> Option<SqlState> {
    e.code().and_then(|c| SqlState::new(c.code()))
}

/// The connection is gone (as opposed to a statement the server refused).
pub(super) fn is_lost(e: &postgres::Error) -> bool {
    e.is_closed()
        || (e.as_db_error().is_none() && e.code().is_none())
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03"
        })
}

impl PgStore {
    /// Run `f` on the main session, connecting first if it is away. A
    /// lost connection marks the store down (and `retry` runs `f` once
    /// more on a new session: only for reads, which are safe to repeat).
    pub(super) fn with<T>(
        &self,
        retry: bool,
        mut f: impl FnMut(&mut Session) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        let mut attempts = if retry { 2 } else { 1 };
        loop {
            attempts -= 1;
            let session = self.session(&mut link)?;
            match f(session) {
                Ok(v) => return Ok(v),
                Err(e) if is_lost(&e) || session.client.is_closed() => {
                    let (why, code) = (cause(&e), sqlstate(&e));
                    link.session = None;
                    self.mark_down(&mut link, why.clone(), code, false);
                    if attempts == 0 {
                        return Err(self.target.unreachable_with(&why, code));
                    }
                }
                Err(e) => return Err(self.server(&e)),
            }
        }
    }

    /// The live session, reconnecting when the last one was lost (at most
    /// one attempt per [`RECONNECT_PAUSE`]).
    pub(super) fn session<'a>(&self, link: &'a mut Link) -> Result<&'a mut Session, StoreError> {
        if link.session.as_ref().is_some_and(|s| s.client.is_closed()) {
            link.session = None;
            self.mark_down(link, "the server closed the connection".into(), None, false);
        }
        if link.session.is_none() {
            if let Some(d) = &link.down
                && d.last_try.elapsed() < RECONNECT_PAUSE
            {
                return Err(self.down_error(d));
            }
            match self.target.connect() {
                Ok(client) => {
                    if let Some(d) = link.down.take() {
                        tracing::info!(
                            "store {}: reachable again after {}s",
                            self.target.describe,
                            d.since.elapsed().as_secs()
                        );
                    }
                    link.session = Some(Session::new(client));
                }
                Err(e) => {
                    let (why, code, lasting) = match &e {
                        StoreError::Unreachable {
                            cause,
                            sqlstate,
                            lasting,
                            ..
                        } => (cause.clone(), *sqlstate, *lasting),
                        other => (other.to_string(), None, !other.heals_by_waiting()),
                    };
                    self.mark_down(link, why, code, true);
                    if let Some(d) = link.down.as_mut() {
                        d.lasting = lasting;
                    }
                    return Err(match &link.down {
                        Some(d) => self.down_error(d),
                        None => e,
                    });
                }
            }
        }
        link.session
            .as_mut()
            .ok_or_else(|| self.target.unreachable(&"no session"))
    }

    pub(super) fn mark_down(
        &self,
        link: &mut Link,
        cause: String,
        sqlstate: Option<SqlState>,
        tried: bool,
    ) {
        let now = Instant::now();
        match &mut link.down {
            Some(d) => {
                d.cause = cause;
                d.sqlstate = sqlstate;
                d.lasting = false;
                if tried {
                    d.last_try = now;
                }
            }
            None => {
                tracing::warn!("store {}: unreachable: {cause}", self.target.describe);
                link.down = Some(Down {
                    since: now,
                    since_utc: Utc::now(),
                    // A connection found lost is tried again at once.
                    last_try: if tried { now } else { now - RECONNECT_PAUSE },
                    cause,
                    sqlstate,
                    lasting: false,
                })
            }
        }
    }

    pub(super) fn down_error(&self, d: &Down) -> StoreError {
        let waiting = if d.lasting {
            "which waiting will not heal"
        } else {
            "reconnecting"
        };
        self.target.unreachable_as(
            &format!(
                "unreachable for {}s (since {}), {waiting}: {}",
                d.since.elapsed().as_secs(),
                d.since_utc.format("%H:%M:%S"),
                d.cause
            ),
            d.sqlstate,
            d.lasting,
        )
    }

    /// Since when the store has been unreachable, if it is.
    pub(super) fn down_since(&self) -> Option<DateTime<Utc>> {
        let link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        link.down.as_ref().map(|d| d.since_utc)
    }

    /// How long the store has been unreachable, if it is.
    pub fn unreachable_for(&self) -> Option<Duration> {
        let link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        link.down.as_ref().map(|d| d.since.elapsed())
    }
}
