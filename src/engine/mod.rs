//! The engine: everything shipdeck does, for the CLI and the TUI alike.

mod types;

pub use types::{EnvStatus, Event, MetricsSnapshot, Status};
