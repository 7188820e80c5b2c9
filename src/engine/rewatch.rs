//! Which monitored deploy needs a monitoring window now, and when a window
//! that failed is watched again: one rule for every face. The console asks
//! it on each status snapshot; `shipdeck watch` runs the one window it was
//! asked for and, when that fails, says what [`after_failure`] says instead
//! of retrying (a CI/CD gate exits and is rerun; it does not wait on).
//!
//! Pure: observations and `now` in, a decision out; no I/O, no clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{EngineError, EnvStatus};
use crate::backends::BackendError;
use crate::backends::metrics::MetricsFix;
use crate::domain::{DeployKind, DeployRecord, EnvState, Version};

/// Seconds after a failed monitoring window before its deploy is watched
/// again (when the store says nobody watches it): a failure that lasts
/// does not loop.
pub const RETRY_AFTER_S: i64 = 15;

/// The longest pause between two tries of a window that keeps failing for
/// a cause waiting will not heal: [`RETRY_AFTER_S`] doubles up to it, so a
/// revoked grant posts an error every 5 min rather than every 15 s, and the
/// window still opens within 5 min of the fix.
pub const LASTING_RETRY_MAX_S: i64 = 300;

/// Why a monitoring window failed without a verdict, as far as what to do
/// about it depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Waiting may heal it: the store or a backend away, a refusal the
    /// server calls passing ([`crate::store::StoreError::heals_by_waiting`]).
    Outage,
    /// The metrics source away for now: unreachable, not answering in
    /// time, a 503 while it restarts
    /// ([`crate::backends::metrics::MetricsError::heals_by_waiting`]):
    /// retried as soon as an outage.
    MetricsAway,
    /// The store refuses it until someone acts: permission denied, a
    /// newer schema, a read-only or replaced file, a bad `[store]` setting.
    Store,
    /// The metrics source refuses it until someone acts, and what to fix:
    /// a query it refuses, its access, its numbers (no usable baseline
    /// included), the source or its settings (none configured).
    Metrics(MetricsFix),
    /// Anything else that stays until someone acts (a backend's error).
    Other,
}

impl Cause {
    /// The cause of `e`, a window's (or its store's opening's) failure:
    /// read from the error's kind, never from its text.
    pub fn of(e: &EngineError) -> Cause {
        match e {
            EngineError::Store(s) => Cause::of_store(s),
            EngineError::Unrecorded { cause, .. } => Cause::of_store(cause),
            EngineError::Metrics(m) => m.to_fix().map_or(Cause::MetricsAway, Cause::Metrics),
            EngineError::NoBaseline { fix, .. } => Cause::Metrics(*fix),
            EngineError::Backend(
                BackendError::Unreachable { .. } | BackendError::Timeout { .. },
            ) => Cause::Outage,
            _ => Cause::Other,
        }
    }

    fn of_store(e: &crate::store::StoreError) -> Cause {
        if e.heals_by_waiting() {
            Cause::Outage
        } else {
            Cause::Store
        }
    }

    /// Whether it stays until someone acts.
    pub fn lasting(self) -> bool {
        !matches!(self, Cause::Outage | Cause::MetricsAway)
    }

    /// What to fix, for "fix X, then …".
    fn fix(self) -> &'static str {
        match self {
            Cause::Outage | Cause::MetricsAway => "nothing",
            Cause::Store => "what the store refuses (named above)",
            Cause::Metrics(MetricsFix::Query) => {
                "the metrics query Prometheus refuses (named above; [metrics.queries])"
            }
            Cause::Metrics(MetricsFix::Access) => {
                "the metrics source's access (its token, [metrics] token_env, or its grant)"
            }
            Cause::Metrics(MetricsFix::Data) => {
                "the numbers the metrics source gives (named above)"
            }
            Cause::Metrics(MetricsFix::Source) => "the metrics source (named above)",
            Cause::Metrics(MetricsFix::Label) => {
                "the environment's metrics_label (or its name), which no series of the metrics source carries (named above), or its traffic: an environment no request has reached yet has no baseline to judge against"
            }
            Cause::Other => "the cause named above",
        }
    }

    /// Why waiting heals it, for a cause that is no lasting one, where
    /// that is more than "an outage".
    fn passing(self) -> &'static str {
        match self {
            Cause::MetricsAway => {
                "the metrics source is away for now (restarting, overloaded or unreachable), which waiting heals: "
            }
            _ => "",
        }
    }
}

/// A failed window of one environment: when, the version it was for, and
/// how many windows in a row failed for a lasting cause.
#[derive(Clone, Debug, PartialEq)]
struct Failed {
    at: DateTime<Utc>,
    version: Option<Version>,
    cause: Cause,
    lasting_streak: u32,
}

impl Failed {
    /// The pause before its deploy is watched again: [`RETRY_AFTER_S`]
    /// after an outage; after a lasting cause, that doubled for each
    /// lasting failure in a row before it, up to [`LASTING_RETRY_MAX_S`].
    fn pause_s(&self) -> i64 {
        if self.lasting_streak == 0 {
            return RETRY_AFTER_S;
        }
        let doublings = (self.lasting_streak - 1).min(16);
        (RETRY_AFTER_S << doublings).min(LASTING_RETRY_MAX_S)
    }
}

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
    failed: BTreeMap<String, Failed>,
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

    /// This process's window of `env` opened (its claim taken, its
    /// baseline read): whatever kept the ones before from opening is
    /// fixed, so a later failure pauses [`RETRY_AFTER_S`] again.
    pub fn opened(&mut self, env: &str) {
        if let Some(f) = self.failed.get_mut(env) {
            f.lasting_streak = 0;
        }
    }

    /// This process's window of `env` failed at `at` for `cause` (the
    /// store unreachable when it opened, its claim refused, metrics gone):
    /// it judged nothing, so its deploy may be watched again, after a
    /// pause: [`RETRY_AFTER_S`] for an outage, doubling up to
    /// [`LASTING_RETRY_MAX_S`] while the same deploy keeps failing for a
    /// cause waiting will not heal.
    pub fn failed(&mut self, env: &str, at: DateTime<Utc>, cause: Cause) {
        let version = self.done.remove(env);
        let streak = match self.failed.get(env) {
            _ if !cause.lasting() => 0,
            Some(f) if f.version == version => f.lasting_streak + 1,
            _ => 1,
        };
        self.failed.insert(
            env.to_string(),
            Failed {
                at,
                version,
                cause,
                lasting_streak: streak,
            },
        );
    }

    /// When a failed window of `env` may be opened again, if one failed.
    pub fn retry_at(&self, env: &str) -> Option<DateTime<Utc>> {
        self.failed
            .get(env)
            .map(|f| f.at + chrono::Duration::seconds(f.pause_s()))
    }

    /// What a console adds to the error of its failed window of `env`:
    /// when it tries again and, for a lasting cause, what to fix first.
    pub fn retry_note(&self, env: &str) -> Option<String> {
        let f = self.failed.get(env)?;
        let wait = crate::domain::HumanDuration(std::time::Duration::from_secs(
            f.pause_s().unsigned_abs(),
        ));
        Some(if f.cause.lasting() {
            format!(
                "waiting will not heal this: fix {}; this console tries again in {wait} (then less often, up to every {})",
                f.cause.fix(),
                crate::domain::HumanDuration(std::time::Duration::from_secs(
                    LASTING_RETRY_MAX_S.unsigned_abs()
                ))
            )
        } else {
            format!("this console watches it again in {wait} once nobody else does")
        })
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
    /// process watched already, nor within the pause after its own failed
    /// window ([`RETRY_AFTER_S`], longer for a lasting cause of the same
    /// deploy: see [`failed`](Self::failed)).
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
        // A deploy of another version than the failed one (someone
        // deployed meanwhile) waits the short pause only, however long
        // the failed one's back-off.
        let pausing = self.failed.get(env).is_some_and(|f| {
            let pause = if f.version.as_ref() == Some(version) {
                f.pause_s()
            } else {
                RETRY_AFTER_S
            };
            now < f.at + chrono::Duration::seconds(pause)
        });
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
/// without a verdict for `cause` (not refused because another watches
/// it): nobody watches that deploy now, and who watches it again. For an
/// outage, an open console does by itself; for a lasting cause somebody
/// must fix it first, and says so.
pub fn after_failure(env: &str, cause: Cause) -> String {
    let head = format!(
        "the monitoring window of {env} judged nothing and this process does not retry it: nobody watches this deploy now"
    );
    if cause.lasting() {
        format!(
            "{head}, and waiting will not heal this: fix {}, then run `shipdeck watch {env}` again (an open console retries it too, but only every few minutes)",
            cause.fix()
        )
    } else {
        format!(
            "{head}; {}an open console watches it again by itself ({RETRY_AFTER_S} s after its own window failed, once the store says nobody watches it), or run `shipdeck watch {env}` again",
            cause.passing()
        )
    }
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
            seq: None,
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
        own.failed("production", t0(), Cause::Outage);
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
        let note = after_failure("production", Cause::Outage);
        assert!(note.contains("nobody watches this deploy now"), "{note}");
        assert!(note.contains("shipdeck watch production"), "{note}");
        assert!(note.contains(&format!("{RETRY_AFTER_S} s")), "{note}");
        assert!(note.contains("watches it again by itself"), "{note}");
        // A cause waiting will not heal: fix it, then rerun; no promise
        // that a console picks it up by itself in 15 s.
        for (cause, what) in [
            (Cause::Store, "fix what the store refuses"),
            (
                Cause::Metrics(MetricsFix::Source),
                "fix the metrics source (named above)",
            ),
            (
                Cause::Metrics(MetricsFix::Query),
                "fix the metrics query Prometheus refuses",
            ),
            (
                Cause::Metrics(MetricsFix::Access),
                "fix the metrics source's access",
            ),
            (
                Cause::Metrics(MetricsFix::Data),
                "fix the numbers the metrics source gives",
            ),
            (Cause::Other, "fix the cause named above"),
        ] {
            let note = after_failure("production", cause);
            assert!(note.contains("nobody watches this deploy now"), "{note}");
            assert!(note.contains("waiting will not heal this"), "{note}");
            assert!(
                note.contains(what)
                    && note.contains(", then run `shipdeck watch production` again"),
                "{note}"
            );
            assert!(!note.contains("watches it again by itself"), "{note}");
        }
    }

    /// A window that keeps failing for a lasting cause (a revoked grant)
    /// is tried again less and less often, up to every 5 min, instead of
    /// posting an error every 15 s forever; an outage keeps the 15 s pause,
    /// and a window that opens starts the back-off over.
    #[test]
    fn a_lasting_failure_backs_off_to_five_minutes_and_an_opened_window_resets_it() {
        let bad = v("v1.8.0");
        let s = seen(&bad, true);
        let mut own = OwnWindows::default();
        let mut at = t0();
        let mut pauses = Vec::new();
        for _ in 0..8 {
            own.started("production", &bad);
            own.failed("production", at, Cause::Store);
            let next = own.retry_at("production").unwrap();
            pauses.push((next - at).num_seconds());
            // Not due a second early, due on time.
            let early = next - chrono::Duration::seconds(1);
            assert_eq!(own.due("production", None, s, false, early), None);
            assert!(own.due("production", None, s, false, next).is_some());
            at = next;
        }
        assert_eq!(pauses, [15, 30, 60, 120, 240, 300, 300, 300]);
        let note = own.retry_note("production").unwrap();
        assert!(
            note.contains("waiting will not heal this")
                && note.contains("fix what the store refuses")
                && note.contains("tries again in 5m"),
            "{note}"
        );

        // The window opened (the grant is back) and then failed again:
        // the short pause again.
        own.started("production", &bad);
        own.opened("production");
        own.failed("production", at, Cause::Store);
        assert_eq!(
            own.retry_at("production"),
            Some(at + chrono::Duration::seconds(RETRY_AFTER_S))
        );
        // An outage between lasting failures starts the count over too.
        own.started("production", &bad);
        own.failed("production", at, Cause::Store);
        own.started("production", &bad);
        own.failed("production", at, Cause::Outage);
        assert_eq!(
            own.retry_at("production"),
            Some(at + chrono::Duration::seconds(RETRY_AFTER_S))
        );
        let note = own.retry_note("production").unwrap();
        assert!(note.contains("watches it again in 15s"), "{note}");
        assert!(!note.contains("will not heal"), "{note}");
    }

    /// A new deploy (another version) after a backed-off failure is not
    /// left unwatched for minutes: it waits the short pause only.
    #[test]
    fn another_version_waits_only_the_short_pause_after_a_lasting_failure() {
        let bad = v("v1.8.0");
        let fixed = v("v1.8.1");
        let mut own = OwnWindows::default();
        for _ in 0..4 {
            own.started("production", &bad);
            own.failed("production", t0(), Cause::Metrics(MetricsFix::Query));
        }
        assert_eq!(
            own.retry_at("production"),
            Some(t0() + chrono::Duration::seconds(120))
        );
        let at = |secs| t0() + chrono::Duration::seconds(secs);
        let same = seen(&bad, true);
        let next = seen(&fixed, true);
        assert_eq!(own.due("production", None, same, false, at(60)), None);
        assert_eq!(own.due("production", None, next, false, at(10)), None);
        assert!(own.due("production", None, next, false, at(15)).is_some());
        // Its own failure starts a new count.
        own.started("production", &fixed);
        own.failed("production", at(15), Cause::Metrics(MetricsFix::Query));
        assert_eq!(own.retry_at("production"), Some(at(30)));
    }

    #[test]
    fn the_cause_of_a_failure_is_read_from_the_error_not_its_text() {
        use crate::store::{SqlState, StoreError};
        let away = |code: Option<&str>| {
            EngineError::Store(StoreError::Unreachable {
                store: "postgres://db/team".into(),
                host: "db:5432".into(),
                // Text that reads like a refusal; the code decides.
                cause: "reconnecting: permission denied (42501)".into(),
                sqlstate: code.and_then(SqlState::new),
                lasting: false,
            })
        };
        assert_eq!(Cause::of(&away(None)), Cause::Outage);
        assert_eq!(Cause::of(&away(Some("57P01"))), Cause::Outage);
        assert_eq!(Cause::of(&away(Some("28P01"))), Cause::Store);
        let denied = EngineError::Store(StoreError::Postgres {
            store: "postgres://db/team".into(),
            cause: "permission denied for table shipdeck_locks".into(),
            sqlstate: SqlState::new("42501"),
        });
        assert_eq!(Cause::of(&denied), Cause::Store);
        assert!(Cause::of(&denied).lasting());
        let no_baseline = EngineError::NoBaseline {
            env: "production".into(),
            plan: "the 20m before the deploy".into(),
            from: "prometheus http://prom:9090".into(),
            why: "12 of 30 baseline steps unusable".into(),
            fix: MetricsFix::Data,
        };
        assert_eq!(Cause::of(&no_baseline), Cause::Metrics(MetricsFix::Data));
        assert!(Cause::of(&no_baseline).lasting());
        assert_eq!(no_baseline.exit_code(), 1);
        let backend = |e| Cause::of(&EngineError::Backend(e));
        assert_eq!(
            backend(BackendError::Unreachable {
                backend: "argo".into(),
                cause: "connection refused".into()
            }),
            Cause::Outage
        );
        assert_eq!(
            backend(BackendError::Command {
                backend: "version".into(),
                cause: "exited 2".into()
            }),
            Cause::Other
        );
        assert!(!Cause::Outage.lasting());
    }

    /// A metrics failure backs off by the kind the source's error has, not
    /// by its text: a Prometheus restarting (refused connection, timeout,
    /// 503, its own `unavailable`) is retried every 15 s like an outage;
    /// a query it refuses, a denied token, a wrong path, garbage numbers
    /// or no usable baseline back off to 5 min and say what to fix. The
    /// exit code stays 1 (SPEC §3: an outside system failed).
    #[test]
    fn a_metrics_failure_backs_off_by_its_kind() {
        use crate::backends::metrics::MetricsError;
        let url = || "http://prom:9090/api/v1/query_range".to_string();
        let status = |status: u16, excerpt: &str| MetricsError::Status {
            url: url(),
            status,
            excerpt: excerpt.into(),
        };
        let query = |error_type: &str, error: &str| MetricsError::Query {
            url: url(),
            error_type: error_type.into(),
            error: error.into(),
        };
        let away = Cause::MetricsAway;
        let cases = [
            (
                MetricsError::Unreachable {
                    url: url(),
                    cause: "cannot connect (Connection refused (os error 111))".into(),
                },
                away,
            ),
            (
                MetricsError::Timeout {
                    url: url(),
                    timeout_ms: 5000,
                },
                away,
            ),
            (status(503, "Service Unavailable"), away),
            (status(502, "bad gateway"), away),
            (status(504, "gateway timeout"), away),
            (status(429, "slow down"), away),
            (query("unavailable", "TSDB not ready"), away),
            (
                query("timeout", "query timed out in expression evaluation"),
                away,
            ),
            (
                query("bad_data", "1:5: parse error: unexpected end of input"),
                Cause::Metrics(MetricsFix::Query),
            ),
            (
                query("execution", "many-to-many matching not allowed"),
                Cause::Metrics(MetricsFix::Query),
            ),
            (
                status(401, "Unauthorized"),
                Cause::Metrics(MetricsFix::Access),
            ),
            (status(403, "Forbidden"), Cause::Metrics(MetricsFix::Access)),
            (
                status(404, "404 page not found"),
                Cause::Metrics(MetricsFix::Source),
            ),
            (
                MetricsError::Unusable {
                    url: url(),
                    metric: "the requests query sum(x)".into(),
                    value: "NaN".into(),
                },
                Cause::Metrics(MetricsFix::Data),
            ),
            (
                MetricsError::Unexpected {
                    url: url(),
                    detail: "not JSON: <html>proxy login</html>".into(),
                },
                Cause::Metrics(MetricsFix::Source),
            ),
            (
                MetricsError::Config("token_env names PROM_TOKEN, which is not set".into()),
                Cause::Metrics(MetricsFix::Source),
            ),
        ];
        let bad = v("v1.8.0");
        for (error, want) in cases {
            let shown = error.to_string();
            let e = EngineError::Metrics(error);
            assert_eq!(e.exit_code(), 1, "{shown}");
            // The message is the source's own: it names the source.
            assert_eq!(e.to_string(), shown);
            assert!(
                shown.contains("prom:9090") || shown.contains("token_env"),
                "{shown}"
            );
            let cause = Cause::of(&e);
            assert_eq!(cause, want, "{shown}");
            // Four failures of the same deploy in a row.
            let mut own = OwnWindows::default();
            let mut pauses = Vec::new();
            for _ in 0..4 {
                own.started("production", &bad);
                own.failed("production", t0(), cause);
                pauses.push((own.retry_at("production").unwrap() - t0()).num_seconds());
            }
            let note = after_failure("production", cause);
            if want == away {
                assert_eq!(pauses, [15, 15, 15, 15], "{shown}");
                assert!(
                    note.contains("the metrics source is away for now")
                        && note.contains("watches it again by itself"),
                    "{note}"
                );
                assert!(!note.contains("will not heal"), "{note}");
            } else {
                assert_eq!(pauses, [15, 30, 60, 120], "{shown}");
                assert!(
                    note.contains("waiting will not heal this: fix the metrics")
                        || note.contains("waiting will not heal this: fix the numbers"),
                    "{note}"
                );
                assert!(!note.contains("away for now"), "{note}");
            }
        }
    }
}
