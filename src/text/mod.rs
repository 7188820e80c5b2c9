//! Text hygiene at the edge: one sanitiser for untrusted text and one
//! redactor for secrets. Low in the layering: domain, backends, store and
//! tui may all use it; it imports nothing of ours.
//!
//! - [`sanitize`] makes a string from outside (an actor name, a hostname, a
//!   backend's error body) safe to print on a terminal: escape sequences
//!   (CSI, OSC — e.g. a title change —, DCS/APC/PM/SOS, C1 controls) are
//!   removed, other control characters become spaces, BiDi overrides and
//!   isolates are dropped.
//! - [`redact`] replaces every secret shipdeck knows of (bearer tokens read
//!   from `token_env`, credentials in URLs) with `[redacted]`. Secrets are
//!   registered where they are read ([`register_secret`],
//!   [`register_url_credentials`]).

mod redact;
mod sanitize;

pub use redact::{
    REDACTED, redact, register_secret, register_url_credentials, register_url_password,
};
pub use sanitize::{excerpt, has_control, sanitize};

/// Sanitise and redact: what every text from a backend goes through.
pub fn clean(s: &str) -> String {
    sanitize(&redact(s))
}
