//! Which past metrics a baseline may use. A baseline that contains an
//! incident (a window that caught a release, the time until its rollback, a
//! regression still running) makes every limit meaningless, so known-bad
//! periods are cut out and older clean data takes their place — and the
//! verdict says what the baseline was.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::duration::clock;
use super::{DeployKind, DeployRecord, HumanDuration, Version};

/// A stretch of time an environment is known to have been unwell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// What happened, for the verdict ("v1.8.0 caught by the window").
    pub what: String,
}

/// Known-bad periods of one environment from its deploy history (oldest
/// first): every deploy of a version a monitoring window caught, and every
/// version rolled back from, counts as bad from the deploy that brought it
/// until the deploy that replaced it (or `now`, when it still runs), plus
/// `margin` for the last affected metric steps.
pub fn incident_periods(
    history: &[DeployRecord],
    caught: &[Version],
    now: DateTime<Utc>,
    margin: chrono::Duration,
) -> Vec<Period> {
    periods(history, caught, now, margin, true)
}

/// A rule finding an environment's known-bad periods: [`incident_periods`]
/// or [`caught_periods`].
pub type BadPeriods =
    fn(&[DeployRecord], &[Version], DateTime<Utc>, chrono::Duration) -> Vec<Period>;

/// Only the periods of versions a monitoring window caught (see
/// [`incident_periods`]). The approval stage's verdict uses these: there a
/// rollback is how an engineer puts a candidate back on the stage and
/// carries no verdict on the version replaced, which is the stage's
/// freshest baseline.
pub fn caught_periods(
    history: &[DeployRecord],
    caught: &[Version],
    now: DateTime<Utc>,
    margin: chrono::Duration,
) -> Vec<Period> {
    periods(history, caught, now, margin, false)
}

fn periods(
    history: &[DeployRecord],
    caught: &[Version],
    now: DateTime<Utc>,
    margin: chrono::Duration,
    rollbacks: bool,
) -> Vec<Period> {
    let mut out: Vec<Period> = Vec::new();
    for (i, d) in history.iter().enumerate() {
        let next = history.get(i + 1);
        let end = next.map(|n| n.at).unwrap_or(now);
        let rolled_back_from = rollbacks
            && next.is_some_and(|n| {
                n.kind == DeployKind::Rollback && n.from_version.as_ref() == Some(&d.version)
            });
        if caught.contains(&d.version) {
            out.push(Period {
                from: d.at,
                to: clock::after(end, margin),
                what: format!("{} caught by the monitoring window", d.version),
            });
        } else if rolled_back_from {
            out.push(Period {
                from: d.at,
                to: clock::after(end, margin),
                what: format!("{} until its rollback", d.version),
            });
        }
    }
    // A rollback from a version shipdeck never deployed (changed outside):
    // bad from the deploy before the rollback, at the latest.
    for (i, d) in history.iter().enumerate().filter(|_| rollbacks) {
        if d.kind == DeployKind::Rollback
            && i > 0
            && d.from_version.as_ref() != Some(&history[i - 1].version)
            && let Some(from) = &d.from_version
        {
            out.push(Period {
                from: history[i - 1].at,
                to: clock::after(d.at, margin),
                what: format!("{from} until its rollback"),
            });
        }
    }
    out.sort_by_key(|p| p.from);
    out
}

/// One clean stretch of a baseline and how far its samples move so that the
/// stretches read as one contiguous baseline ending at the deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub shift: chrono::Duration,
}

/// The stretches a baseline reads, newest first, and what it left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselinePlan {
    pub deploy_at: DateTime<Utc>,
    pub span: chrono::Duration,
    pub ranges: Vec<BaselineRange>,
    /// The known-bad periods cut out of it.
    pub excluded: Vec<Period>,
}

fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// A span in words, to the second from a second on: incidents end at any
/// millisecond, and "only 85954989ms of 24h clean" read as nothing.
fn human(d: chrono::Duration) -> String {
    let d = d.to_std().unwrap_or_default();
    let d = if d >= std::time::Duration::from_secs(1) {
        std::time::Duration::from_secs(d.as_secs_f64().round() as u64)
    } else {
        d
    };
    HumanDuration(d).to_string()
}

impl BaselinePlan {
    /// Clean time covered by the ranges.
    pub fn covered(&self) -> chrono::Duration {
        self.ranges
            .iter()
            .fold(chrono::Duration::zero(), |a, r| a + (r.to - r.from))
    }

    /// One line for the verdict: "baseline: 30s before 14:02:10 UTC,
    /// excluding the incident 13:50:02–13:58:40 (v1.8.0 caught by the
    /// monitoring window)".
    pub fn describe(&self) -> String {
        let covered = self.covered();
        let mut s = if covered >= self.span {
            format!(
                "baseline: {} before {} UTC",
                human(self.span),
                clock(self.deploy_at)
            )
        } else {
            format!(
                "baseline: only {} of {} clean before {} UTC",
                human(covered),
                human(self.span),
                clock(self.deploy_at)
            )
        };
        for (i, p) in self.excluded.iter().enumerate() {
            s.push_str(if i == 0 {
                ", excluding the incident "
            } else {
                " and "
            });
            s.push_str(&format!("{}–{} ({})", clock(p.from), clock(p.to), p.what));
        }
        s
    }

    /// Where a sample taken at `at` sits in the baseline, in seconds
    /// relative to the deploy (≤ 0); `None` when no range holds it.
    pub fn place(&self, at: DateTime<Utc>) -> Option<f64> {
        let r = self.ranges.iter().find(|r| at > r.from && at <= r.to)?;
        let t = at + r.shift - self.deploy_at;
        Some(t.num_milliseconds() as f64 / 1000.0)
    }
}

/// How far back a baseline of `span` may reach for clean data: four times
/// its length, and at least an hour beyond it — so a short baseline (the
/// demo's 2 minutes) still finds clean data before an incident of an hour,
/// when the fix deploy right after it most needs judging — never beyond a
/// day (a different day's traffic is no baseline).
pub fn lookback(span: chrono::Duration) -> chrono::Duration {
    (span * 4)
        .max(span + chrono::Duration::hours(1))
        .min(chrono::Duration::hours(24))
}

/// Plan a baseline of `span` before `deploy_at`, leaving out `bad` periods
/// and reaching at most `lookback` back for older clean data.
pub fn plan_baseline(
    deploy_at: DateTime<Utc>,
    span: chrono::Duration,
    lookback: chrono::Duration,
    bad: &[Period],
) -> BaselinePlan {
    let limit = clock::before(deploy_at, lookback.max(span));
    let mut ranges = Vec::new();
    let mut excluded: Vec<Period> = Vec::new();
    let mut cursor = deploy_at;
    let mut taken = chrono::Duration::zero();
    while taken < span && cursor > limit {
        // The newest bad period reaching into (…, cursor].
        let blocker = bad
            .iter()
            .filter(|p| p.from < cursor && p.to > limit)
            .max_by_key(|p| p.to.min(cursor));
        let clean_from = match blocker {
            Some(p) if p.to >= cursor => {
                // Inside a bad period: skip to its start.
                if !excluded.contains(p) {
                    excluded.push(p.clone());
                }
                cursor = p.from;
                continue;
            }
            Some(p) => p.to.max(limit),
            None => limit,
        };
        let len = (cursor - clean_from).min(span - taken);
        let from = cursor - len;
        ranges.push(BaselineRange {
            from,
            to: cursor,
            shift: clock::before(deploy_at, taken) - cursor,
        });
        taken += len;
        cursor = from;
    }
    excluded.sort_by_key(|p| p.from);
    BaselinePlan {
        deploy_at,
        span,
        ranges,
        excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn the_largest_span_and_margin_chrono_knows_do_not_overflow() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let plan = plan_baseline(at, Duration::MAX, Duration::MAX, &[]);
        assert_eq!(plan.ranges.len(), 1);
        let h = vec![DeployRecord {
            seq: None,
            env: "p".into(),
            version: Version::parse("v1").unwrap(),
            from_version: None,
            at,
            actor: "a".into(),
            kind: DeployKind::Promote,
            url: None,
        }];
        let p = incident_periods(&h, &[Version::parse("v1").unwrap()], at, Duration::MAX);
        assert_eq!(p[0].to, DateTime::<Utc>::MAX_UTC);
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }
    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap() + Duration::minutes(min)
    }
    fn dep(from: &str, to: &str, kind: DeployKind, min: i64) -> DeployRecord {
        DeployRecord {
            seq: None,
            env: "production".into(),
            version: v(to),
            from_version: Some(v(from)),
            at: t(min),
            actor: "alice".into(),
            kind,
            url: None,
        }
    }

    #[test]
    fn a_caught_release_is_bad_until_its_rollback() {
        let h = [
            dep("v1.7.3", "v1.8.0", DeployKind::Promote, -12),
            dep("v1.8.0", "v1.7.3", DeployKind::Rollback, -4),
        ];
        let p = incident_periods(&h, &[v("v1.8.0")], t(0), Duration::seconds(10));
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].from, p[0].to),
            (t(-12), t(-4) + Duration::seconds(10))
        );
        assert!(p[0].what.contains("v1.8.0 caught"));
        // Without the window's verdict, the rollback alone marks it.
        let p = incident_periods(&h, &[], t(0), Duration::zero());
        assert_eq!((p[0].from, p[0].to), (t(-12), t(-4)));
        assert!(p[0].what.contains("until its rollback"));
    }

    #[test]
    fn a_regression_still_running_is_bad_until_now() {
        let h = [dep("v1.7.3", "v1.8.0", DeployKind::Promote, -3)];
        let p = incident_periods(&h, &[v("v1.8.0")], t(0), Duration::zero());
        assert_eq!((p[0].from, p[0].to), (t(-3), t(0)));
    }

    #[test]
    fn the_stage_baseline_keeps_a_version_rolled_back_from_but_not_a_caught_one() {
        // Staging: v1 → v2, rolled back to v1; later v3, caught by a window.
        let h = [
            dep("v1", "v2", DeployKind::Promote, -30),
            dep("v2", "v1", DeployKind::Rollback, -20),
            dep("v1", "v3", DeployKind::Promote, -10),
            dep("v3", "v1", DeployKind::Rollback, -5),
        ];
        let all = incident_periods(&h, &[v("v3")], t(0), Duration::zero());
        assert_eq!(all.len(), 2, "{all:?}");
        let caught = caught_periods(&h, &[v("v3")], t(0), Duration::zero());
        assert_eq!(caught.len(), 1, "{caught:?}");
        assert_eq!((caught[0].from, caught[0].to), (t(-10), t(-5)));
        assert!(caught[0].what.contains("v3 caught"), "{caught:?}");
    }

    #[test]
    fn healthy_history_has_no_incidents() {
        let h = [
            dep("v1", "v2", DeployKind::Promote, -30),
            dep("v2", "v3", DeployKind::Promote, -10),
        ];
        assert!(incident_periods(&h, &[v("v9")], t(0), Duration::zero()).is_empty());
    }

    #[test]
    fn a_rollback_from_a_version_changed_outside_marks_the_time_before_it() {
        let h = [
            dep("v1", "v2", DeployKind::Promote, -30),
            dep("v3", "v2", DeployKind::Rollback, -5),
        ];
        let p = incident_periods(&h, &[], t(0), Duration::zero());
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].from, p[0].to), (t(-30), t(-5)));
        assert!(p[0].what.starts_with("v3"));
    }

    #[test]
    fn without_incidents_the_baseline_is_the_span_before_the_deploy() {
        let b = plan_baseline(t(0), Duration::minutes(10), Duration::hours(2), &[]);
        assert_eq!(
            b.ranges,
            vec![BaselineRange {
                from: t(-10),
                to: t(0),
                shift: Duration::zero()
            }]
        );
        assert_eq!(b.describe(), "baseline: 10m before 14:00:00 UTC");
        assert_eq!(b.place(t(-5)), Some(-300.0));
        assert_eq!(b.place(t(-11)), None);
    }

    #[test]
    fn a_deploy_right_after_a_rollback_skips_the_incident_for_older_data() {
        // Incident 13:50–13:58, deploy at 14:00, 10 minutes of baseline.
        let bad = [Period {
            from: t(-10),
            to: t(-2),
            what: "v1.8.0 caught by the monitoring window".into(),
        }];
        let b = plan_baseline(t(0), Duration::minutes(10), Duration::hours(2), &bad);
        assert_eq!(b.covered(), Duration::minutes(10));
        assert_eq!(b.ranges.len(), 2);
        assert_eq!((b.ranges[0].from, b.ranges[0].to), (t(-2), t(0)));
        assert_eq!((b.ranges[1].from, b.ranges[1].to), (t(-18), t(-10)));
        // The older stretch reads as if it came right before the newer one.
        assert_eq!(b.place(t(-1)), Some(-60.0));
        assert_eq!(b.place(t(-10)), Some(-120.0));
        assert_eq!(b.place(t(-18) + Duration::seconds(60)), Some(-540.0));
        // Nothing from inside the incident.
        assert_eq!(b.place(t(-5)), None);
        assert_eq!(
            b.describe(),
            "baseline: 10m before 14:00:00 UTC, excluding the incident 13:50:00–13:58:00 (v1.8.0 caught by the monitoring window)"
        );
    }

    #[test]
    fn a_regression_up_to_the_deploy_is_skipped_entirely() {
        let bad = [Period {
            from: t(-6),
            to: t(0),
            what: "v2 caught by the monitoring window".into(),
        }];
        let b = plan_baseline(t(0), Duration::minutes(5), Duration::hours(1), &bad);
        assert_eq!(b.ranges.len(), 1);
        assert_eq!((b.ranges[0].from, b.ranges[0].to), (t(-11), t(-6)));
        assert_eq!(b.place(t(-6)), Some(0.0));
        assert_eq!(b.excluded.len(), 1);
    }

    #[test]
    fn lookback_bounds_the_search_and_the_description_says_so() {
        let bad = [Period {
            from: t(-50),
            to: t(-1),
            what: "v2 until its rollback".into(),
        }];
        let b = plan_baseline(t(0), Duration::minutes(10), Duration::minutes(55), &bad);
        assert_eq!(b.covered(), Duration::minutes(6));
        assert!(
            b.describe()
                .starts_with("baseline: only 6m of 10m clean before 14:00:00 UTC"),
            "{}",
            b.describe()
        );
    }

    /// A fix deployed right after a long incident is judged against the
    /// clean time before the incident, even with a short baseline.
    #[test]
    fn a_short_baseline_reaches_past_a_long_incident() {
        let bad = [Period {
            from: t(-40),
            to: t(0),
            what: "v2 until its rollback".into(),
        }];
        let span = Duration::minutes(2);
        assert_eq!(lookback(span), Duration::minutes(62));
        assert_eq!(lookback(Duration::minutes(30)), Duration::hours(2));
        assert_eq!(lookback(Duration::hours(12)), Duration::hours(24));
        let b = plan_baseline(t(0), span, lookback(span), &bad);
        assert_eq!(b.covered(), span, "{}", b.describe());
        assert_eq!((b.ranges[0].from, b.ranges[0].to), (t(-42), t(-40)));
    }

    #[test]
    fn a_clean_span_ending_mid_second_is_said_to_the_second() {
        let bad = [Period {
            from: t(-50) + Duration::milliseconds(250),
            to: t(-1) + Duration::milliseconds(11),
            what: "v2 until its rollback".into(),
        }];
        let b = plan_baseline(t(0), Duration::minutes(10), Duration::minutes(55), &bad);
        assert!(
            b.describe()
                .starts_with("baseline: only 6m of 10m clean before 14:00:00 UTC"),
            "{}",
            b.describe()
        );
    }

    #[test]
    fn incidents_outside_the_baseline_are_not_mentioned() {
        let bad = [Period {
            from: t(-90),
            to: t(-80),
            what: "old".into(),
        }];
        let b = plan_baseline(t(0), Duration::minutes(10), Duration::hours(2), &bad);
        assert!(b.excluded.is_empty());
        assert_eq!(b.ranges.len(), 1);
    }
}
