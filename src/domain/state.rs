//! What is happening to an environment right now, decided from what the
//! engine observed: its own activity, the deploy lock, the last monitoring
//! window and whether its watcher is alive, and the deploy history.
//!
//! Typed inputs only: the store's strings are parsed into [`WindowVerdict`]
//! and [`DeployKind`] at the edge, so no rule here compares strings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::duration::clock;
use super::{DeployRecord, EnvState, Version};

/// How a monitoring window stands, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowVerdict {
    /// Opened and not ended yet.
    Monitoring,
    Healthy,
    Regression,
    /// Ended without enough data to judge.
    InsufficientData,
    /// Ended because its watcher stopped (signal, crash, cancelled).
    Interrupted,
}

impl WindowVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowVerdict::Monitoring => "monitoring",
            WindowVerdict::Healthy => "healthy",
            WindowVerdict::Regression => "regression",
            WindowVerdict::InsufficientData => "insufficient_data",
            WindowVerdict::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "monitoring" => WindowVerdict::Monitoring,
            "healthy" => WindowVerdict::Healthy,
            "regression" => WindowVerdict::Regression,
            "insufficient_data" => WindowVerdict::InsufficientData,
            "interrupted" => WindowVerdict::Interrupted,
            _ => return None,
        })
    }
}

/// What a recorded deploy did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployKind {
    Promote,
    Rollback,
}

impl DeployKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployKind::Promote => "promote",
            DeployKind::Rollback => "rollback",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "promote" => Some(DeployKind::Promote),
            "rollback" => Some(DeployKind::Rollback),
            _ => None,
        }
    }
}

impl std::fmt::Display for DeployKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last monitoring window of an environment, as the state rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowRecord {
    pub version: Version,
    /// When the judged deploy went live (the window's t = 0).
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub verdict: WindowVerdict,
    /// Where the store put the window's opening in its one order (see
    /// [`DeployRecord::seq`]); `None` when it could not say.
    pub seq: Option<i64>,
}

impl WindowRecord {
    /// Whether this window was opened after `d` was recorded: a window
    /// about that deploy, not an earlier one of the same version. In the
    /// store's order when both carry it — `started_at` is dated by the
    /// watcher's clock and `d.at` by the deployer's, seconds apart in team
    /// mode — and by the dates only for a record without that order.
    pub fn opened_after(&self, d: &DeployRecord) -> bool {
        match (self.seq, d.seq) {
            (Some(w), Some(d)) => w > d,
            _ => self.started_at >= d.at,
        }
    }
}

/// Everything [`env_state`] decides from.
#[derive(Clone, Debug)]
pub struct StateInput<'a> {
    /// What this process is doing to the environment, and since when.
    pub activity: Option<(EnvState, DateTime<Utc>)>,
    /// When the live deploy lock (someone else's deploy) was taken.
    pub locked_since: Option<DateTime<Utc>>,
    /// What that lock is held for, when the store says (its holder's
    /// started record); unknown reads as a deploy.
    pub locked_for: Option<DeployKind>,
    /// The version it runs now, when known.
    pub version: Option<&'a Version>,
    pub last_window: Option<&'a WindowRecord>,
    /// Somebody alive holds the environment's monitoring claim.
    pub watcher_alive: bool,
    pub last_deploy: Option<&'a DeployRecord>,
    /// The configured monitoring window.
    pub window: chrono::Duration,
    pub now: DateTime<Utc>,
}

/// The environment's state and since when.
///
/// In order: this process's own activity; a deploy lock held elsewhere; a
/// regression the last window caught on the running version; a window still
/// open on the running version *and watched by a live owner* (a window whose
/// watcher died is not "monitoring", whatever its record says); the last
/// deploy being a rollback; else idle.
pub fn env_state(i: &StateInput<'_>) -> (EnvState, Option<DateTime<Utc>>) {
    if let Some((s, since)) = i.activity {
        return (s, Some(since));
    }
    if let Some(since) = i.locked_since {
        let state = match i.locked_for {
            Some(DeployKind::Rollback) => EnvState::RollingBack,
            Some(DeployKind::Promote) | None => EnvState::Deploying,
        };
        return (state, Some(since));
    }
    if let Some(w) = i.last_window
        && Some(&w.version) == i.version
    {
        match w.verdict {
            WindowVerdict::Regression => {
                return (EnvState::Regression, w.finished_at.or(Some(w.started_at)));
            }
            WindowVerdict::Monitoring
                if w.finished_at.is_none()
                    && i.watcher_alive
                    && clock::after(w.started_at, i.window) > i.now =>
            {
                return (EnvState::Monitoring, Some(w.started_at));
            }
            WindowVerdict::Monitoring
            | WindowVerdict::Healthy
            | WindowVerdict::InsufficientData
            | WindowVerdict::Interrupted => {}
        }
    }
    match i.last_deploy {
        Some(d) if d.kind == DeployKind::Rollback => (EnvState::RolledBack, Some(d.at)),
        Some(_) | None => (EnvState::Idle, None),
    }
}

/// Whether a monitored environment's current release needs a watcher that
/// nobody provides: its version went live through a recorded promotion
/// within the monitoring window, no live owner watches it, and no window
/// has judged that deploy yet (or the one that started was abandoned).
pub fn unwatched(
    monitored: bool,
    version: Option<&Version>,
    last_deploy: Option<&DeployRecord>,
    last_window: Option<&WindowRecord>,
    watcher_alive: bool,
    window: chrono::Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(d) = last_deploy else {
        return false;
    };
    if !monitored
        || watcher_alive
        || d.kind != DeployKind::Promote
        || Some(&d.version) != version
        || clock::after(d.at, window) <= now
    {
        return false;
    }
    match last_window {
        // A window about this deploy that reached a verdict: judged.
        Some(w) if w.version == d.version && w.opened_after(d) => matches!(
            w.verdict,
            WindowVerdict::Monitoring | WindowVerdict::Interrupted
        ),
        _ => true,
    }
}

/// What shipdeck last deployed to an environment versus what it runs: the
/// environment was changed outside shipdeck.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// What the environment reports now.
    pub runs: Version,
    /// What shipdeck's last recorded deploy put there.
    pub deployed: Version,
    pub deployed_at: DateTime<Utc>,
    /// One line for humans.
    pub detail: String,
}

/// Drift, when the running version is known and differs from the version
/// of the last recorded deploy.
pub fn drift(version: Option<&Version>, last_deploy: Option<&DeployRecord>) -> Option<Drift> {
    let (runs, d) = (version?, last_deploy?);
    (runs != &d.version).then(|| Drift {
        runs: runs.clone(),
        deployed: d.version.clone(),
        deployed_at: d.at,
        detail: format!(
            "runs {runs}; shipdeck last deployed {} — changed outside shipdeck",
            d.version
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }
    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap() + Duration::minutes(min)
    }
    fn dep(ver: &str, kind: DeployKind, min: i64) -> DeployRecord {
        DeployRecord {
            seq: None,
            env: "production".into(),
            version: v(ver),
            from_version: Some(v("v1")),
            at: t(min),
            actor: "alice".into(),
            kind,
            url: None,
        }
    }
    fn win(ver: &str, verdict: WindowVerdict, start: i64, end: Option<i64>) -> WindowRecord {
        WindowRecord {
            version: v(ver),
            started_at: t(start),
            finished_at: end.map(t),
            verdict,
            seq: None,
        }
    }
    fn input<'a>(version: &'a Version) -> StateInput<'a> {
        StateInput {
            activity: None,
            locked_since: None,
            locked_for: None,
            version: Some(version),
            last_window: None,
            watcher_alive: false,
            last_deploy: None,
            window: Duration::minutes(30),
            now: t(10),
        }
    }

    #[test]
    fn window_verdict_and_deploy_kind_round_trip_their_names() {
        for w in [
            WindowVerdict::Monitoring,
            WindowVerdict::Healthy,
            WindowVerdict::Regression,
            WindowVerdict::InsufficientData,
            WindowVerdict::Interrupted,
        ] {
            assert_eq!(WindowVerdict::parse(w.as_str()), Some(w));
        }
        assert_eq!(WindowVerdict::parse("Regression"), None);
        for k in [DeployKind::Promote, DeployKind::Rollback] {
            assert_eq!(DeployKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(DeployKind::parse("redeploy"), None);
    }

    #[test]
    fn own_activity_comes_first_then_a_foreign_lock() {
        let ver = v("v2");
        let mut i = input(&ver);
        i.locked_since = Some(t(9));
        assert_eq!(env_state(&i), (EnvState::Deploying, Some(t(9))));
        // A rollback held elsewhere reads as one.
        i.locked_for = Some(DeployKind::Rollback);
        assert_eq!(env_state(&i), (EnvState::RollingBack, Some(t(9))));
        i.locked_for = Some(DeployKind::Promote);
        assert_eq!(env_state(&i), (EnvState::Deploying, Some(t(9))));
        i.activity = Some((EnvState::RollingBack, t(8)));
        assert_eq!(env_state(&i), (EnvState::RollingBack, Some(t(8))));
    }

    #[test]
    fn an_open_window_is_monitoring_only_while_its_watcher_is_alive() {
        let ver = v("v2");
        let w = win("v2", WindowVerdict::Monitoring, 5, None);
        let mut i = input(&ver);
        i.last_window = Some(&w);
        i.watcher_alive = true;
        assert_eq!(env_state(&i), (EnvState::Monitoring, Some(t(5))));
        // The watcher was killed: a ghost, not "monitoring".
        i.watcher_alive = false;
        assert_eq!(env_state(&i), (EnvState::Idle, None));
        // Past the window's end, even a live watcher's record is over.
        i.watcher_alive = true;
        i.now = t(40);
        assert_eq!(env_state(&i).0, EnvState::Idle);
    }

    #[test]
    fn a_window_about_another_version_says_nothing() {
        let ver = v("v1");
        let w = win("v2", WindowVerdict::Regression, 5, Some(6));
        let mut i = input(&ver);
        i.last_window = Some(&w);
        assert_eq!(env_state(&i).0, EnvState::Idle);
    }

    #[test]
    fn a_caught_release_still_running_is_a_regression() {
        let ver = v("v2");
        let w = win("v2", WindowVerdict::Regression, 5, Some(6));
        let mut i = input(&ver);
        i.last_window = Some(&w);
        assert_eq!(env_state(&i), (EnvState::Regression, Some(t(6))));
    }

    #[test]
    fn finished_windows_leave_the_deploy_history_to_decide() {
        let ver = v("v1");
        let d = dep("v1", DeployKind::Rollback, 7);
        for verdict in [
            WindowVerdict::Healthy,
            WindowVerdict::InsufficientData,
            WindowVerdict::Interrupted,
        ] {
            let w = win("v1", verdict, 1, Some(3));
            let mut i = input(&ver);
            i.last_window = Some(&w);
            assert_eq!(env_state(&i), (EnvState::Idle, None));
            i.last_deploy = Some(&d);
            assert_eq!(env_state(&i), (EnvState::RolledBack, Some(t(7))));
        }
        let p = dep("v1", DeployKind::Promote, 7);
        let mut i = input(&ver);
        i.last_deploy = Some(&p);
        assert_eq!(env_state(&i), (EnvState::Idle, None));
    }

    #[test]
    fn the_largest_window_chrono_knows_does_not_overflow() {
        let ver = v("v2");
        let d = dep("v2", DeployKind::Promote, 5);
        assert!(unwatched(
            true,
            Some(&ver),
            Some(&d),
            None,
            false,
            Duration::MAX,
            t(10)
        ));
        let w = win("v2", WindowVerdict::Monitoring, 5, None);
        let mut i = input(&ver);
        i.window = Duration::MAX;
        i.last_window = Some(&w);
        i.watcher_alive = true;
        i.last_deploy = Some(&d);
        env_state(&i);
    }

    #[test]
    fn a_fresh_promotion_nobody_watches_is_unwatched() {
        let ver = v("v2");
        let d = dep("v2", DeployKind::Promote, 5);
        let w30 = Duration::minutes(30);
        assert!(unwatched(
            true,
            Some(&ver),
            Some(&d),
            None,
            false,
            w30,
            t(10)
        ));
        // Someone alive watches it.
        assert!(!unwatched(
            true,
            Some(&ver),
            Some(&d),
            None,
            true,
            w30,
            t(10)
        ));
        // Not monitored, past the window, another version runs, or a rollback.
        assert!(!unwatched(
            false,
            Some(&ver),
            Some(&d),
            None,
            false,
            w30,
            t(10)
        ));
        assert!(!unwatched(
            true,
            Some(&ver),
            Some(&d),
            None,
            false,
            w30,
            t(40)
        ));
        assert!(!unwatched(
            true,
            Some(&v("v1")),
            Some(&d),
            None,
            false,
            w30,
            t(10)
        ));
        let r = dep("v2", DeployKind::Rollback, 5);
        assert!(!unwatched(
            true,
            Some(&ver),
            Some(&r),
            None,
            false,
            w30,
            t(10)
        ));
        assert!(!unwatched(true, Some(&ver), None, None, false, w30, t(10)));
    }

    #[test]
    fn a_judged_deploy_is_not_unwatched_but_an_abandoned_window_is() {
        let ver = v("v2");
        let d = dep("v2", DeployKind::Promote, 5);
        let w30 = Duration::minutes(30);
        for (verdict, open) in [
            (WindowVerdict::Healthy, false),
            (WindowVerdict::Regression, false),
            (WindowVerdict::InsufficientData, false),
            (WindowVerdict::Monitoring, true),
            (WindowVerdict::Interrupted, true),
        ] {
            let w = win("v2", verdict, 5, Some(8));
            assert_eq!(
                unwatched(true, Some(&ver), Some(&d), Some(&w), false, w30, t(10)),
                open,
                "{verdict:?}"
            );
        }
        // A window about an earlier deploy of the same version does not count.
        let old = win("v2", WindowVerdict::Healthy, 1, Some(3));
        assert!(unwatched(
            true,
            Some(&ver),
            Some(&d),
            Some(&old),
            false,
            w30,
            t(10)
        ));
    }

    /// Team mode: the watcher's clock runs behind the deployer's, so the
    /// window that judged the deploy is dated before it. The store's order
    /// says it was opened after the deploy was recorded: judged, no "needs
    /// a watch". And a window dated after a deploy but opened before it
    /// was recorded (an earlier deploy's, on a clock ahead) does not count.
    #[test]
    fn a_window_is_about_a_deploy_by_the_stores_order_not_two_clocks() {
        let ver = v("v2");
        let w30 = Duration::minutes(30);
        let d = DeployRecord {
            seq: Some(40),
            ..dep("v2", DeployKind::Promote, 5)
        };
        // Opened after the deploy's record (seq 41), dated 3 s before it.
        let judged = WindowRecord {
            started_at: t(5) - Duration::seconds(3),
            seq: Some(41),
            ..win("v2", WindowVerdict::Healthy, 5, Some(8))
        };
        assert!(!unwatched(
            true,
            Some(&ver),
            Some(&d),
            Some(&judged),
            false,
            w30,
            t(10)
        ));
        // Opened before it (seq 39), dated after it.
        let earlier = WindowRecord {
            started_at: t(6),
            seq: Some(39),
            ..win("v2", WindowVerdict::Healthy, 6, Some(8))
        };
        assert!(unwatched(
            true,
            Some(&ver),
            Some(&d),
            Some(&earlier),
            false,
            w30,
            t(10)
        ));
        // Either without the store's order: the dates decide.
        let unordered = WindowRecord {
            seq: None,
            ..judged.clone()
        };
        assert!(unwatched(
            true,
            Some(&ver),
            Some(&d),
            Some(&unordered),
            false,
            w30,
            t(10)
        ));
        let d_unordered = DeployRecord { seq: None, ..d };
        assert!(!unwatched(
            true,
            Some(&ver),
            Some(&d_unordered),
            Some(&earlier),
            false,
            w30,
            t(10)
        ));
    }

    #[test]
    fn drift_is_a_running_version_other_than_the_last_deployed() {
        let d = dep("v1.8.1", DeployKind::Promote, 0);
        let dr = drift(Some(&v("v1.7.3")), Some(&d)).unwrap();
        assert_eq!(
            dr.detail,
            "runs v1.7.3; shipdeck last deployed v1.8.1 — changed outside shipdeck"
        );
        assert_eq!(drift(Some(&v("v1.8.1")), Some(&d)), None);
        assert_eq!(drift(None, Some(&d)), None);
        assert_eq!(drift(Some(&v("v1.7.3")), None), None);
    }
}
