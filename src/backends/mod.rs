//! Outside systems, one trait-like enum per kind and one file per
//! implementation. Every call has a timeout and returns a typed error that
//! names the backend and the cause; none panics, none retries forever.

pub mod backup;
pub mod ci;
pub mod deploy;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod slots;
pub mod vcs;
pub mod version;
pub mod weight;

mod util;
#[cfg(unix)]
mod watchdog;

pub use util::BackendError;

/// A URL fit for messages, without credentials.
pub fn show_url_public(url: &str) -> String {
    util::show_url(url)
}
