//! Logs go to a file in the state dir, never to the terminal the TUI draws on.

use std::path::PathBuf;

/// Start logging to the state dir's `shipdeck.log`; returns its path, or
/// `None` when no log file could be opened (then nothing is logged).
pub fn init() -> Option<PathBuf> {
    let path = crate::paths::log_file()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok()?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(path)
}
