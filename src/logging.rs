//! Logs go to a file in the state dir, never to the terminal the TUI draws
//! on. The file is created 0600 in a 0700 directory, and every line goes
//! through the secret redactor on its way out. One panic hook for every
//! command writes the report there.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Start logging to the state dir's `shipdeck.log`; returns its path, or
/// `None` when no log file could be opened (then nothing is logged).
pub fn init() -> Option<PathBuf> {
    let path = crate::paths::log_file()?;
    let file = crate::paths::create_private_file(&path).ok()?;
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

/// One panic hook for every command: restore the terminal if raw mode is
/// on (a console was up), write the report (redacted) to the log, and say
/// one short line on stderr with the log's path — never a backtrace on the
/// user's terminal. The process then exits with 101.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if crossterm::terminal::is_raw_mode_enabled().unwrap_or(false) {
            let _ = crossterm::execute!(
                std::io::stdout(),
                crossterm::event::DisableMouseCapture,
                crossterm::event::DisableBracketedPaste,
                crossterm::terminal::LeaveAlternateScreen,
                crossterm::cursor::Show
            );
            let _ = crossterm::terminal::disable_raw_mode();
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
        eprintln!("shipdeck: stopped on an internal error (a bug){place}");
        std::process::exit(101);
    }));
}
