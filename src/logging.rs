//! Logs go to a file in the state dir, never to the terminal the TUI draws
//! on. The file is created 0600 in a 0700 directory, and every line goes
//! through the secret redactor on its way out. One panic hook for every
//! command writes the report there.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a console holds the terminal (raw mode, alternate screen):
/// set by the console's terminal guard, read by the panic hook.
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// Say that a console has taken the terminal (`true`) or given it back.
pub fn terminal_taken(taken: bool) {
    TERMINAL_TAKEN.store(taken, Ordering::SeqCst);
}

/// Put the terminal back as the shell had it: mouse capture, bracketed
/// paste, alternate screen, cursor, raw mode. Safe to call more than once.
pub fn restore_terminal() {
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::event::DisableBracketedPaste,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = crossterm::terminal::disable_raw_mode();
}

/// Start logging to the state dir's `shipdeck.log`; returns its path, or
/// `None` when no log file could be opened (then nothing is logged).
pub fn init() -> Option<PathBuf> {
    let path = crate::paths::log_file()?;
    let file = LogFile::open(path.clone(), MAX_LOG_BYTES).ok()?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(Redacting(file)))
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(path)
}

/// The size at which `shipdeck.log` is moved to `shipdeck.log.1` (replacing
/// the one before) and begun anew: the log of every run is appended to one
/// file, and a console left open for days logs each failed read again (a
/// store that is down: about 0.6 KB a second) — the file grew without end.
pub const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;

/// Where the log before the current one is kept.
pub fn previous_log(path: &std::path::Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// The log file, kept under `cap` bytes (and one previous file of about as
/// much). Every process appends to the same path: before each line it
/// checks that the path still names its file — another process may have
/// moved it, or someone deleted it — and opens the new one if not.
struct LogFile {
    path: PathBuf,
    file: std::fs::File,
    cap: u64,
    /// Tests only: run when this writer has found the file full, before it
    /// takes the lock — where another process may rotate the file under
    /// it. What a race test would hope to hit, as a step of its own.
    #[cfg(test)]
    before_lock: Option<Box<dyn FnMut() + Send>>,
}

impl LogFile {
    fn open(path: PathBuf, cap: u64) -> std::io::Result<LogFile> {
        let file = crate::paths::create_private_file(&path)?;
        let mut log = LogFile {
            path,
            file,
            cap,
            #[cfg(test)]
            before_lock: None,
        };
        log.keep_small(0);
        Ok(log)
    }

    /// Move the file aside and start a new one when `coming` more bytes
    /// would take it past the cap; follow a file moved by another process.
    /// A failure leaves the file in use as it is: logging never stops a
    /// command.
    ///
    /// The move is by name, so it is decided under an exclusive lock on
    /// the file (`flock`): of two processes that find it full at once, the
    /// first moves it aside and the second, once it holds the lock, finds
    /// the name on a new file and follows it — it no longer moves that new
    /// file over the full one (which lost the previous 10 MB of log).
    fn keep_small(&mut self, coming: u64) {
        if self.fits(coming) == Some(true) {
            return;
        }
        #[cfg(test)]
        if let Some(hook) = self.before_lock.as_mut() {
            hook();
        }
        // Without locks (a file system that has none) as before.
        let locked = self.file.lock().is_ok();
        let fits = self.fits(coming);
        if fits == Some(false) {
            let _ = std::fs::rename(&self.path, previous_log(&self.path));
        }
        if locked {
            let _ = self.file.unlock();
        }
        if fits != Some(true)
            && let Ok(f) = crate::paths::create_private_file(&self.path)
        {
            self.file = f;
        }
    }

    /// Whether `coming` more bytes fit in the file the path names, when
    /// that is still this one's file (`None`: moved or deleted).
    fn fits(&self, coming: u64) -> Option<bool> {
        let ours = self.file.metadata().ok()?;
        let named = std::fs::metadata(&self.path).ok()?;
        same_file(&ours, &named)
            .then(|| named.len() == 0 || named.len() + coming.max(1) <= self.cap)
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len()
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.keep_small(buf.len() as u64);
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A writer that redacts secrets from what it is given. The formatter
/// writes one whole event per call, so a secret is never split between two.
struct Redacting<W>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(crate::text::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The environment variable that makes a one-shot command panic on
/// purpose, to prove the hook. Honoured only in debug builds.
pub const FORCE_PANIC_ENV: &str = "SHIPDECK_DEBUG_FORCE_PANIC";

/// Panic when [`FORCE_PANIC_ENV`] names `place` (`command`: a one-shot
/// command; `console`: a task of the running console), in a debug build
/// only: the tests' way to reach the panic hook through the real binary.
/// A release build compiles this to nothing.
pub fn panic_if_forced(place: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(FORCE_PANIC_ENV).is_some_and(|v| v == place) {
        panic!("forced by {FORCE_PANIC_ENV}={place} (a test of the panic hook)");
    }
    #[cfg(not(debug_assertions))]
    let _ = place;
}

/// The one panic hook, for every command and the console alike (installed
/// once in `main`): restore the terminal if a console holds it (or raw mode
/// is on), write the report (redacted) to the log, and say one short line
/// on stderr with the log's path — never a backtrace on the user's
/// terminal. The process then exits with 101, whichever thread panicked.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // Hold stdout until the process exits: another thread of the console
        // must not draw a frame after the terminal is restored. (The lock is
        // reentrant: this thread still writes through it.)
        let _stdout = std::io::stdout().lock();
        if TERMINAL_TAKEN.load(Ordering::SeqCst)
            || crossterm::terminal::is_raw_mode_enabled().unwrap_or(false)
        {
            restore_terminal();
        }
        let report = crate::text::redact(&format!(
            "panic: {info}\n{}",
            std::backtrace::Backtrace::force_capture()
        ));
        let log = crate::paths::log_file();
        // Straight to the file: the logger may be the thing that panicked.
        if let Some(p) = &log
            && let Ok(mut f) = crate::paths::create_private_file(p)
        {
            let _ = writeln!(f, "{} {report}", chrono::Utc::now().to_rfc3339());
        }
        let place = log
            .map(|p| format!("; the report is in {}", p.display()))
            .unwrap_or_default();
        // Not `eprintln!`: on a closed terminal it would panic in the hook.
        let _ = writeln!(
            std::io::stderr(),
            "shipdeck: stopped on an internal error (a bug){place}"
        );
        std::process::exit(101);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(p: &std::path::Path) -> u64 {
        std::fs::metadata(p).map_or(0, |m| m.len())
    }

    #[test]
    fn the_log_is_moved_aside_when_full_and_never_grows_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shipdeck.log");
        // A log left by earlier runs, already at the cap.
        std::fs::write(&path, vec![b'o'; 1000]).unwrap();
        let mut log = LogFile::open(path.clone(), 1000).unwrap();
        assert_eq!(size(&previous_log(&path)), 1000, "the full log moved aside");
        let line = [b'x'; 99];
        for i in 0..100 {
            log.write_all(&line).unwrap();
            log.write_all(b"\n").unwrap();
            assert!(size(&path) <= 1000, "line {i}: {} bytes", size(&path));
        }
        // What was written last is in the file; the one before holds the rest.
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(now.ends_with(&format!("{}\n", "x".repeat(99))), "{now:?}");
        assert!(size(&previous_log(&path)) >= 900);
    }

    #[test]
    fn two_writers_rotating_at_once_move_only_a_full_log_aside() {
        // Two processes' log files on one path (two handles here, each
        // opening the path itself, as a process does), both finding it
        // full at once. Each moved aside what it had measured as full, by
        // name — the second rename took the first one's new, nearly empty
        // log over the full one, and 10 MB of log were lost. The moment is
        // made, not hoped for: the second writer finds the log full, and
        // before it takes the lock the first rotates it and writes on.
        const CAP: u64 = 400;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shipdeck.log");
        let full = "o".repeat(CAP as usize - 10);
        std::fs::write(&path, &full).unwrap();
        let mut first = LogFile::open(path.clone(), CAP).unwrap();
        let mut second = LogFile::open(path.clone(), CAP).unwrap();
        let rotated = std::sync::Arc::new(AtomicBool::new(false));
        let seen = rotated.clone();
        second.before_lock = Some(Box::new(move || {
            if !seen.swap(true, Ordering::SeqCst) {
                first.write_all(b"first writes on\n").unwrap();
            }
        }));
        second.write_all(b"second writes on\n").unwrap();
        assert!(
            rotated.load(Ordering::SeqCst),
            "the second writer found the log full"
        );
        // The full log is the one moved aside; both lines are in the new.
        let previous = std::fs::read_to_string(previous_log(&path)).unwrap();
        assert!(previous == full, "moved aside: {previous:?}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "first writes on\nsecond writes on\n"
        );
    }

    #[test]
    fn a_log_moved_or_deleted_by_someone_else_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shipdeck.log");
        let mut log = LogFile::open(path.clone(), 1000).unwrap();
        log.write_all(b"first\n").unwrap();
        // Another process rotated it (or a human deleted it).
        std::fs::rename(&path, dir.path().join("elsewhere")).unwrap();
        log.write_all(b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        std::fs::remove_file(&path).unwrap();
        log.write_all(b"third\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third\n");
    }
}
