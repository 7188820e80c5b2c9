//! Which monitored deploy needs a monitoring window now, and when a window
//! that failed is watched again: one rule for every face. The console asks
//! it on each status snapshot; `shipdeck watch` runs the one window it was
//! asked for and, when that fails, says what [`after_failure`] says instead
//! of retrying (a CI/CD gate exits and is rerun; it does not wait on).
//!
//! Pure: observations and `now` in, a decision out; no I/O, no clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::EnvStatus;
use crate::domain::{DeployKind, DeployRecord, EnvState, Version};

/// Seconds after a failed monitoring window before its deploy is watched
/// again (when the store says nobody watches it): a failure that lasts
/// does not loop.
pub const RETRY_AFTER_S: i64 = 15;

/// What a status snapshot says of one environment, as far as the rule
/// needs it.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub monitored: bool,
    pub version: Option<&'a Version>,
    pub state: EnvState,
    /// The store's word: a deploy within its window that nobody alive
    /// watches and no window judged ([`crate::domain::state::unwatched`]).
    pub unwatched: bool,
    /// Somebody alive holds its monitoring claim.
    pub watched: bool,
    pub last_deploy: Option<&'a DeployRecord>,
}

impl<'a> From<&'a EnvStatus> for Seen<'a> {
    fn from(e: &'a EnvStatus) -> Self {
        Seen {
            monitored: e.monitored,
            version: e.version.as_ref(),
            state: e.state,
            unwatched: e.unwatched,
            watched: e.watcher.is_some(),
            last_deploy: e.last_deploy.as_ref(),
        }
    }
}

/// A deploy that needs a window now.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchStart {
    pub env: String,
    pub version: Version,
    /// Who deployed it, when its record says (`None`: made outside shipdeck).
    pub by: Option<String>,
}

/// What one process remembers of its own monitoring windows, per
/// environment: the version it watched (or knows needs no window: where a
/// rollback lands), and when its last window failed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnWindows {
    done: BTreeMap<String, Version>,
    failed: BTreeMap<String, DateTime<Utc>>,
}

impl OwnWindows {
    /// This process watches `version` of `env` (its window started): it
    /// is not opened again, however it ends, unless it fails.
    pub fn started(&mut self, env: &str, version: &Version) {
        self.done.insert(env.to_string(), version.clone());
    }

    /// `version` of `env` needs no window (a rollback lands on a known
    /// version: it is no release to judge).
    pub fn not_to_judge(&mut self, env: &str, version: &Version) {
        self.started(env, version);
    }

    /// This process's window of `env` failed at `at` (the store
    /// unreachable when it opened, its claim lapsed, metrics gone): it
    /// judged nothing, so its deploy may be watched again, after a pause.
    pub fn failed(&mut self, env: &str, at: DateTime<Utc>) {
        self.done.remove(env);
        self.failed.insert(env.to_string(), at);
    }

    /// When a failed window of `env` may be opened again, if one failed.
    pub fn retry_at(&self, env: &str) -> Option<DateTime<Utc>> {
        self.failed
            .get(env)
            .map(|t| *t + chrono::Duration::seconds(RETRY_AFTER_S))
    }

    /// Whether `env` (as `seen` now, `before` in this process's previous
    /// snapshot) needs a window from this process at `now`. `busy`: this
    /// process already acts on it (an action or a window of its own).
    ///
    /// A window is due for a monitored environment that runs a version,
    /// when the store says nobody watches its deploy, or when this process
    /// saw it change (a new version, or newly monitoring) and nobody alive
    /// claims it. Never for where a rollback lands, mid-deploy (the record
    /// saying what kind of deploy it is comes after), for a version this
    /// process watched already, nor within [`RETRY_AFTER_S`] of its own
    /// failed window.
    pub fn due(
        &self,
        env: &str,
        before: Option<Seen<'_>>,
        seen: Seen<'_>,
        busy: bool,
        now: DateTime<Utc>,
    ) -> Option<WatchStart> {
        let version = seen.version.filter(|_| seen.monitored)?;
        let changed = before.is_some_and(|b| {
            let new_version = b.version.is_some_and(|v| v != version);
            let newly_monitoring =
                seen.state == EnvState::Monitoring && b.state != EnvState::Monitoring;
            new_version || newly_monitoring
        });
        if !(seen.unwatched || (changed && !seen.watched)) {
            return None;
        }
        let landed_by_rollback = seen
            .last_deploy
            .is_some_and(|d| d.kind == DeployKind::Rollback && d.version == *version);
        let in_flight = matches!(seen.state, EnvState::Deploying | EnvState::RollingBack);
        let watched_here = self.done.get(env) == Some(version);
        let pausing = self.retry_at(env).is_some_and(|at| now < at);
        if landed_by_rollback || in_flight || busy || watched_here || pausing {
            return None;
        }
        Some(WatchStart {
            env: env.to_string(),
            version: version.clone(),
            by: seen
                .last_deploy
                .filter(|d| d.version == *version)
                .map(|d| d.actor.clone()),
        })
    }
}

/// What a face that ran `env`'s window says when the window failed
/// without a verdict (not refused because another watches it): nobody
/// watches that deploy now, and who watches it again.
pub fn after_failure(env: &str) -> String {
    format!(
        "the monitoring window of {env} judged nothing and this process does not retry it: nobody watches this deploy now; an open console watches it again by itself ({RETRY_AFTER_S} s after its own window failed, once the store says nobody watches it), or run `shipdeck watch {env}` again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn promote(version: &Version, kind: DeployKind) -> DeployRecord {
        DeployRecord {
            env: "production".into(),
            version: version.clone(),
            from_version: Some(v("v1.7.3")),
            at: t0(),
            actor: "ops@laptop".into(),
            kind,
            url: None,
        }
    }

    fn seen<'a>(version: &'a Version, unwatched: bool) -> Seen<'a> {
        Seen {
            monitored: true,
            version: Some(version),
            state: EnvState::Idle,
            unwatched,
            watched: false,
            last_deploy: None,
        }
    }

    #[test]
    fn an_unwatched_deploy_is_due_once_and_names_who_deployed_it() {
        let bad = v("v1.8.0");
        let rec = promote(&bad, DeployKind::Promote);
        let mut own = OwnWindows::default();
        let now_seen = Seen {
            last_deploy: Some(&rec),
            ..seen(&bad, true)
        };
        let start = own.due("production", None, now_seen, false, t0()).unwrap();
        assert_eq!(start.version, bad);
        assert_eq!(start.by.as_deref(), Some("ops@laptop"));
        own.started("production", &bad);
        // Watched here already: the next snapshots start nothing, even
        // once the window ended (an ended window is not reopened).
        assert_eq!(own.due("production", None, now_seen, false, t0()), None);
    }

    #[test]
    fn a_failed_window_is_due_again_after_the_pause_when_nobody_watches() {
        let bad = v("v1.8.0");
        let mut own = OwnWindows::default();
        own.started("production", &bad);
        own.failed("production", t0());
        let s = seen(&bad, true);
        let at = |secs| t0() + chrono::Duration::seconds(secs);
        assert_eq!(own.due("production", None, s, false, at(2)), None);
        assert_eq!(
            own.due("production", None, s, false, at(RETRY_AFTER_S - 1)),
            None
        );
        assert!(
            own.due("production", None, s, false, at(RETRY_AFTER_S))
                .is_some()
        );
        assert_eq!(own.retry_at("production"), Some(at(RETRY_AFTER_S)));
        // Another process watches it now (its live claim): the store no
        // longer says unwatched, and nothing changed here: not doubled.
        let elsewhere = Seen {
            watched: true,
            ..seen(&bad, false)
        };
        assert_eq!(
            own.due("production", Some(s), elsewhere, false, at(60)),
            None
        );
        // Nor while this process is busy with it.
        assert_eq!(own.due("production", None, s, true, at(60)), None);
    }

    #[test]
    fn a_change_seen_here_is_due_unless_someone_alive_claims_it() {
        let old = v("v1.7.3");
        let new = v("v1.8.1");
        let own = OwnWindows::default();
        let before = seen(&old, false);
        let after = seen(&new, false);
        assert!(
            own.due("production", Some(before), after, false, t0())
                .is_some()
        );
        let claimed = Seen {
            watched: true,
            ..after
        };
        assert_eq!(
            own.due("production", Some(before), claimed, false, t0()),
            None
        );
        // Newly monitoring, same version.
        let monitoring = Seen {
            state: EnvState::Monitoring,
            ..before
        };
        assert!(
            own.due("production", Some(before), monitoring, false, t0())
                .is_some()
        );
        // Nothing changed and the store says it is watched or judged.
        assert_eq!(
            own.due("production", Some(before), before, false, t0()),
            None
        );
    }

    #[test]
    fn no_window_for_a_rollback_mid_deploy_or_an_unmonitored_environment() {
        let back = v("v1.7.2");
        let rec = promote(&back, DeployKind::Rollback);
        let own = OwnWindows::default();
        let landed = Seen {
            last_deploy: Some(&rec),
            ..seen(&back, true)
        };
        assert_eq!(own.due("production", None, landed, false, t0()), None);
        for state in [EnvState::Deploying, EnvState::RollingBack] {
            let mid = Seen {
                state,
                ..seen(&back, true)
            };
            assert_eq!(own.due("production", None, mid, false, t0()), None);
        }
        let unmonitored = Seen {
            monitored: false,
            ..seen(&back, true)
        };
        assert_eq!(own.due("production", None, unmonitored, false, t0()), None);
        let unknown = Seen {
            version: None,
            ..seen(&back, true)
        };
        assert_eq!(own.due("production", None, unknown, false, t0()), None);
        // Where a rollback lands, known before its record: not judged.
        let mut own = OwnWindows::default();
        own.not_to_judge("production", &back);
        assert_eq!(
            own.due("production", None, seen(&back, true), false, t0()),
            None
        );
    }

    #[test]
    fn after_a_failure_the_cli_says_nobody_watches_and_how_it_is_watched_again() {
        let note = after_failure("production");
        assert!(note.contains("nobody watches this deploy now"), "{note}");
        assert!(note.contains("shipdeck watch production"), "{note}");
        assert!(note.contains(&format!("{RETRY_AFTER_S} s")), "{note}");
    }
}
