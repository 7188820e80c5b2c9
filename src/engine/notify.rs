//! Release events for the `[[notify]]` receivers: the engine says what
//! happened; the notify backend sends it in the background
//! ([`crate::backends::notify`]), never delaying or failing the action.

use chrono::Utc;

use super::Engine;
use crate::backends::notify::Notice;
use crate::config::NotifyEvent;
use crate::domain::Version;

impl Engine {
    /// Tell every receiver that wants `kind` what happened. Returns at once.
    pub(super) fn notify(
        &self,
        kind: NotifyEvent,
        env: &str,
        version: Option<&Version>,
        from: Option<&Version>,
        outcome: &str,
        detail: &str,
    ) {
        if self.inner.notifier.is_empty() {
            return;
        }
        self.inner.notifier.send(Notice::new(
            kind,
            env,
            version.map(Version::as_str),
            from.map(Version::as_str),
            &self.inner.actor,
            Utc::now(),
            outcome,
            detail,
        ));
    }
}
