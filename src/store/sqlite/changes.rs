//! The file itself: watching it for other connections' commits (the change
//! feed), opening it read-only, and telling whether it was replaced.

use super::*;

/// What a view shows changed when this changed: the newest audit record
/// (every action, outcome, refusal and verdict is one), the newest
/// monitoring window, and who has a console open (one came or went).
/// Samples, heartbeats and lock renewals do not count.
pub(super) type ChangeMark = (Option<i64>, Option<i64>, i64);

pub(super) fn change_mark(c: &Connection) -> rusqlite::Result<ChangeMark> {
    c.query_row(
        "SELECT (SELECT MAX(id) FROM audit), (SELECT MAX(id) FROM monitor_runs),
                (SELECT COUNT(*) FROM presence)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

pub(super) fn data_version(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// The change watcher's own connection. A store another process holds is
/// waited for as every connection of this process waits for it (`busy`:
/// up to 10 s, said after a second, not again right after a wait that gave
/// up) — not by a silent busy timeout of its own that gave up after 1 s,
/// logged nothing a console showed, and started over every half second.
/// Its give-ups are a background reader's (`busy::background_handler`):
/// they do not end a user action's wait that began while it waited.
/// The second value: it could only be opened as a snapshot (see
/// [`open_read_only`]), which the watcher leaves once it can.
pub(super) fn watcher_connection(
    path: &Path,
    read_only: bool,
) -> rusqlite::Result<(Connection, bool)> {
    let (mut conn, snapshot) = if read_only {
        let (c, why) = open_read_only(path)?;
        (c, why.is_some())
    } else {
        (Connection::open(path)?, false)
    };
    conn.busy_handler(Some(super::busy::background_handler(
        path.display().to_string(),
    )))?;
    Ok((conn, snapshot))
}

/// Watch the store file on a thread of its own, with its own connection
/// (whose `data_version` moves on every other connection's commit, this
/// process's included): tick `notifier` when the [`ChangeMark`] moved;
/// stop when nobody subscribes any more.
///
/// A snapshot (`snapshot`: a read-only store another process held when it
/// was opened) never changes: the watcher asks, at every check, whether
/// the store can be read live yet, and once it can, watches that
/// connection instead and ticks (the views read the store live again).
pub(super) fn watch_changes(
    mut c: Connection,
    mut snapshot: bool,
    notifier: crate::store::ChangeNotifier,
    path: PathBuf,
    (mut version, mut mark): (Option<i64>, Option<ChangeMark>),
) {
    let mut failing = false;
    while !notifier.is_closed() {
        std::thread::sleep(CHANGE_CHECK);
        if snapshot {
            let Ok(mut live) = open_live_read_only(&path, Duration::ZERO) else {
                continue;
            };
            if live
                .busy_handler(Some(super::busy::background_handler(
                    path.display().to_string(),
                )))
                .is_err()
            {
                continue;
            }
            (c, snapshot) = (live, false);
            (version, mark) = (data_version(&c).ok(), change_mark(&c).ok());
            notifier.notify();
            continue;
        }
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

pub(super) fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    )
}

/// Open an existing store for reading only. Where it cannot be read live —
/// in a directory where SQLite cannot create its WAL index, or while
/// another process holds the file locked — the file is read as an
/// immutable snapshot: what it held then, never updated (its change watcher
/// never sees a change). The second value says why, when it is one.
pub(super) fn open_read_only(path: &Path) -> rusqlite::Result<(Connection, Option<String>)> {
    use rusqlite::OpenFlags;
    match open_live_read_only(path, SNAPSHOT_AFTER) {
        Ok(c) => Ok((c, None)),
        Err(e) => {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
            let uri = format!("file:{}?immutable=1", path.display());
            Ok((
                Connection::open_with_flags(uri, flags)?,
                Some(e.to_string()),
            ))
        }
    }
}

/// How long opening a read-only store waits for another process holding
/// it before reading it as a snapshot (SQLite's busy timeout as rusqlite
/// sets it).
const SNAPSHOT_AFTER: Duration = Duration::from_secs(5);

/// The store at `path` read live and read-only, waiting at most `wait`
/// for another process that holds it; an error when it cannot be read.
pub(super) fn open_live_read_only(path: &Path, wait: Duration) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    let c = Connection::open_with_flags(path, flags)?;
    c.busy_timeout(wait)?;
    c.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get::<_, i64>(0))?;
    Ok(c)
}

#[cfg(unix)]
pub(super) fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub(super) fn file_identity(_path: &Path) -> Option<(u64, u64)> {
    None
}
