//! The rules of the rollback strategies (SPEC §2), pure: which blue-green
//! slot is idle, whether the old slot is still warm enough for a switch
//! back, and every environment's rollback plan with its expected time,
//! measured from its own history.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ActionKind, AuditEntry, Outcome, Version};

/// The slot that is not `live`; `None` when `live` is not one of `slots`.
pub fn idle_slot<'a>(slots: &'a [String; 2], live: &str) -> Option<&'a str> {
    match slots.iter().position(|s| s == live)? {
        0 => Some(&slots[1]),
        _ => Some(&slots[0]),
    }
}

/// What a blue-green rollback does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlueGreenMove {
    /// The old slot still runs the target and is warm: switch traffic back,
    /// deploy nothing.
    SwitchBack { slot: String },
    /// Deploy the target to the idle slot, then switch to it; `why` says
    /// why the old slot could not simply take the traffic back.
    DeployAndSwitch { slot: String, why: String },
}

/// What a blue-green rollback sees.
#[derive(Clone, Debug)]
pub struct BlueGreenRollback<'a> {
    pub slots: &'a [String; 2],
    pub live: &'a str,
    /// What the idle slot runs (`None`: unknown, or its source failed).
    pub idle_runs: Option<&'a Version>,
    /// Where the rollback goes.
    pub target: &'a Version,
    /// When traffic left the idle slot: when the live slot's version went
    /// live (the last recorded deploy of the environment).
    pub left_idle_at: Option<DateTime<Utc>>,
    pub keep_warm: Duration,
    pub now: DateTime<Utc>,
}

/// The old slot is warm within `keep_warm` of the switch away from it, and
/// while it still runs the version the rollback goes to.
pub fn blue_green_rollback(i: &BlueGreenRollback<'_>) -> Option<BlueGreenMove> {
    let idle = idle_slot(i.slots, i.live)?.to_string();
    let cold = |why: String| {
        Some(BlueGreenMove::DeployAndSwitch {
            slot: idle.clone(),
            why,
        })
    };
    match i.idle_runs {
        Some(v) if v == i.target => {}
        Some(v) => return cold(format!("{idle} runs {v}, not {}", i.target)),
        None => return cold(format!("what {idle} runs is unknown")),
    }
    let Some(left) = i.left_idle_at else {
        return cold(format!(
            "no record of when traffic left {idle}: it may have been idle for long"
        ));
    };
    let idle_for = (i.now - left).to_std().unwrap_or(Duration::ZERO);
    if idle_for > i.keep_warm {
        return cold(format!(
            "{idle} has been idle for {}, longer than keep_warm ({})",
            super::HumanDuration(Duration::from_secs(idle_for.as_secs())),
            super::HumanDuration(i.keep_warm)
        ));
    }
    Some(BlueGreenMove::SwitchBack { slot: idle })
}

/// The words the audit log uses for a switch and its time: the engine
/// writes them with [`switch_note`], the plan reads them back with
/// [`switch_secs`].
const SWITCHED_TO: &str = "switched traffic to ";

/// "switched traffic to green in 0.042s".
pub fn switch_note(slot: &str, secs: f64) -> String {
    format!("{SWITCHED_TO}{slot} in {secs:.3}s")
}

/// The switch time an audit record's detail carries, if any.
pub fn switch_secs(detail: &str) -> Option<f64> {
    let at = detail.find(SWITCHED_TO)? + SWITCHED_TO.len();
    let rest = &detail[at..];
    let after_in = &rest[rest.find(" in ")? + 4..];
    let num = after_in.split('s').next()?;
    num.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

/// How an environment is returned to its previous version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevertAction {
    /// Deploy the previous version through the deploy backend.
    Redeploy,
    /// Switch traffic back to the old, still warm blue-green slot.
    SwitchBack,
    /// Deploy the previous version to the idle slot and switch to it.
    DeployAndSwitch,
    /// Set the canary's traffic weight to 0.
    CanaryWeightZero,
}

impl RevertAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RevertAction::Redeploy => "redeploy",
            RevertAction::SwitchBack => "switch_back",
            RevertAction::DeployAndSwitch => "deploy_and_switch",
            RevertAction::CanaryWeightZero => "canary_weight_zero",
        }
    }
}

/// An environment's rollback plan, shown before anyone needs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RevertPlan {
    pub action: RevertAction,
    /// The version it returns to; `None` when there is none (yet).
    pub target: Option<Version>,
    /// The blue-green slot that would take the traffic.
    pub slot: Option<String>,
    /// Expected seconds to revert, from the environment's own history.
    pub expected_s: Option<f64>,
    /// Where `expected_s` comes from: "median of the last 5", or why
    /// there is none.
    pub basis: String,
    /// There is nothing to roll back to yet (no deploy recorded): this is
    /// the plan once the next deploy lands, going back to what the
    /// environment runs now (`target`).
    pub after_next_deploy: bool,
    /// A blue-green environment whose live slot could not be read: what
    /// it runs is unknown, so is which version a way back would go to
    /// (`target` is null) and the way itself, until it reads again.
    pub live_slot_unknown: bool,
}

/// How many past reverts or deploys the expected time looks at.
pub const TIMING_SAMPLES: usize = 5;

/// The median of the newest [`TIMING_SAMPLES`] of `secs` (newest first)
/// and how many it used.
pub fn expected_time(secs: &[f64]) -> Option<(f64, usize)> {
    let mut last: Vec<f64> = secs
        .iter()
        .copied()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .take(TIMING_SAMPLES)
        .collect();
    if last.is_empty() {
        return None;
    }
    last.sort_by(f64::total_cmp);
    let n = last.len();
    let median = if n % 2 == 1 {
        last[n / 2]
    } else {
        (last[n / 2 - 1] + last[n / 2]) / 2.0
    };
    Some((median, n))
}

/// The times, newest first, that predict `action` in `history` (newest
/// first; any environment's entries are ignored but `env`'s): for a switch
/// back, the switches the audit records carry; for a deploy, how long each
/// succeeded promote or rollback took from start to the environment
/// reporting the version.
pub fn timings(history: &[AuditEntry], env: &str, action: RevertAction) -> Vec<f64> {
    let done = history.iter().filter(|a| {
        a.env == env
            && a.outcome == Outcome::Succeeded
            && matches!(a.action, ActionKind::Promote | ActionKind::Rollback)
    });
    match action {
        RevertAction::SwitchBack => done.filter_map(|a| switch_secs(&a.detail)).collect(),
        RevertAction::Redeploy | RevertAction::DeployAndSwitch => done
            .filter_map(|a| {
                let end = a.finished_at?;
                (end - a.at).to_std().ok().map(|d| d.as_secs_f64())
            })
            .collect(),
        RevertAction::CanaryWeightZero => Vec::new(),
    }
}

/// The plan for `action` to `target`, with its expected time from `history`.
pub fn revert_plan(
    action: RevertAction,
    target: Option<Version>,
    slot: Option<String>,
    history: &[AuditEntry],
    env: &str,
) -> RevertPlan {
    let (expected_s, basis) = match expected_time(&timings(history, env, action)) {
        Some((s, 1)) => (Some(s), "the last one".to_string()),
        Some((s, n)) => (Some(s), format!("median of the last {n}")),
        None => (None, "no timing in its history yet".to_string()),
    };
    RevertPlan {
        action,
        target,
        slot,
        expected_s,
        basis,
        after_next_deploy: false,
        live_slot_unknown: false,
    }
}

/// Seconds as people read an expected time: "0.2 s", "40 s", "12 min".
pub fn show_secs(s: f64) -> String {
    if s < 0.095 {
        // A switch back takes milliseconds: "~0.0 s" would say nothing.
        format!("{:.0} ms", (s * 1000.0).max(1.0))
    } else if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} min", s / 60.0)
    }
}

impl RevertPlan {
    /// The plan for once the next deploy lands: back to `current`, what
    /// the environment runs now (for blue-green, on the live `slot`).
    pub fn after_next_deploy(mut self, current: Version, slot: Option<String>) -> Self {
        self.target = Some(current);
        self.slot = slot;
        self.after_next_deploy = true;
        self
    }

    /// The blue-green plan while the live slot cannot be read: neither the
    /// slot to switch to, nor the time, nor the version it would go back
    /// to is known (which version runs is what the live slot runs, so any
    /// target would be a guess).
    pub fn live_slot_unknown(mut self) -> Self {
        self.target = None;
        self.slot = None;
        self.expected_s = None;
        self.basis = "the live slot cannot be read".to_string();
        self.live_slot_unknown = true;
        self
    }

    /// One line: "switch back to blue (v1.7.3), ~0.2 s (median of the
    /// last 5)" / "redeploy v1.7.3, ~40 s (median of the last 5)" /
    /// "after the next deploy: redeploy v1.7.3, time unknown (no timing
    /// in its history yet)".
    pub fn line(&self) -> String {
        let short = self.short();
        if self.live_slot_unknown
            || (self.target.is_none() && self.action != RevertAction::CanaryWeightZero)
        {
            return short;
        }
        let when = if self.after_next_deploy {
            "after the next deploy: "
        } else {
            ""
        };
        if self.action == RevertAction::CanaryWeightZero && self.expected_s.is_none() {
            return format!("{when}{short}");
        }
        format!("{when}{short} ({})", self.basis)
    }

    /// [`Self::line`] without where the time comes from, for a narrow
    /// column: "switch back to blue (v1.7.3), ~0.2 s" / "redeploy v1.7.3,
    /// time unknown".
    pub fn short(&self) -> String {
        let what = match (&self.action, &self.target, &self.slot) {
            (RevertAction::CanaryWeightZero, _, _) => "canary weight → 0".to_string(),
            // Blue-green runs what the live slot runs: without it, which
            // version a way back goes to is a guess, so no version.
            _ if self.live_slot_unknown => {
                return "live slot unknown: no way back planned until it reads".to_string();
            }
            (_, None, _) => {
                return format!("{}: nothing to roll back to yet", self.action_words());
            }
            (RevertAction::SwitchBack, Some(v), Some(s)) => format!("switch back to {s} ({v})"),
            (RevertAction::DeployAndSwitch, Some(v), Some(s)) => {
                format!("deploy {v} to {s} and switch")
            }
            (_, Some(v), _) => format!("redeploy {v}"),
        };
        match self.expected_s {
            Some(s) => format!("{what}, ~{}", show_secs(s)),
            // Setting a weight is instant (SPEC §2): no time to guess.
            None if self.action == RevertAction::CanaryWeightZero => what,
            None => format!("{what}, time unknown"),
        }
    }

    /// [`Self::short`] in fewer words, for a column too narrow for it:
    /// the version and the time stay. "back to blue (v1.7.3), ~0.2 s".
    pub fn compact(&self) -> String {
        let what = match (&self.action, &self.target, &self.slot) {
            (RevertAction::CanaryWeightZero, _, _) => return self.short(),
            _ if self.live_slot_unknown => return "live slot unknown".to_string(),
            (_, None, _) => return self.short(),
            (RevertAction::SwitchBack, Some(v), Some(s)) => format!("back to {s} ({v})"),
            (RevertAction::DeployAndSwitch, Some(v), Some(s)) => format!("{v} to {s}, switch"),
            (_, Some(v), _) => format!("redeploy {v}"),
        };
        match self.expected_s {
            Some(s) => format!("{what}, ~{}", show_secs(s)),
            None => format!("{what}, time ?"),
        }
    }

    fn action_words(&self) -> &'static str {
        match self.action {
            RevertAction::Redeploy => "redeploy",
            RevertAction::SwitchBack => "switch back",
            RevertAction::DeployAndSwitch => "deploy and switch",
            RevertAction::CanaryWeightZero => "canary weight → 0",
        }
    }
}

/// An environment's strategy as far as saying what a promotion does:
/// the config's shape of it, without backends.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StrategyOutline {
    #[default]
    Redeploy,
    BlueGreen {
        slots: [String; 2],
        keep_warm: Duration,
    },
    Canary {
        /// Canary traffic in percent, one step after another.
        steps: Vec<u8>,
        step_time: Duration,
    },
}

impl StrategyOutline {
    /// What promoting to `version` does, in the order it happens, for the
    /// promote dialog. `live` is the blue-green live slot as last read.
    pub fn promote_words(&self, version: &Version, live: Option<&str>) -> String {
        match self {
            StrategyOutline::Redeploy => format!(
                "redeploy: deploys {version} in place; a rollback redeploys the previous version the same way"
            ),
            StrategyOutline::BlueGreen { slots, keep_warm } => {
                let (to, from) = match live.and_then(|l| Some((idle_slot(slots, l)?, l))) {
                    Some((idle, live)) => (idle.to_string(), live.to_string()),
                    None => ("the idle slot".to_string(), "the live slot".to_string()),
                };
                format!(
                    "blue-green: deploys {version} to {to}, waits until {to} reports it, then switches traffic from {from} to {to}; {from} stays warm for {} for an instant switch back",
                    super::HumanDuration(*keep_warm)
                )
            }
            StrategyOutline::Canary { steps, step_time } => {
                let ramp = steps
                    .iter()
                    .map(|w| format!("{w}%"))
                    .collect::<Vec<_>>()
                    .join(" → ");
                format!(
                    "canary: deploys {version} to the canary, then gives it {ramp} of the traffic, each step judged for {} against stable at the same time; then stable gets {version} and the canary weight returns to 0. A regression sets the weight to 0",
                    super::HumanDuration(*step_time)
                )
            }
        }
    }
}

/// What a blue-green environment's slots run, as last read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SlotsView {
    /// The live slot; `None` when it could not be read.
    pub live: Option<String>,
    /// Each slot's version (`None`: unknown), in the config's order.
    pub versions: std::collections::BTreeMap<String, Option<Version>>,
    /// Why something above is unknown.
    pub error: Option<String>,
}

/// An environment's strategy as `status` shows it: its name, its rollback
/// plan, and for blue-green its slots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategyStatus {
    /// "redeploy", "blue-green" or "canary".
    pub strategy: String,
    pub rollback_plan: RevertPlan,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<SlotsView>,
}

impl Default for StrategyStatus {
    fn default() -> Self {
        StrategyStatus {
            strategy: "redeploy".into(),
            rollback_plan: revert_plan(RevertAction::Redeploy, None, None, &[], ""),
            slots: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn slots() -> [String; 2] {
        ["blue".to_string(), "green".to_string()]
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_idle_slot_is_the_other_one() {
        let s = slots();
        assert_eq!(idle_slot(&s, "blue"), Some("green"));
        assert_eq!(idle_slot(&s, "green"), Some("blue"));
        assert_eq!(idle_slot(&s, "red"), None);
    }

    fn input<'a>(
        s: &'a [String; 2],
        idle_runs: Option<&'a Version>,
        target: &'a Version,
        left: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> BlueGreenRollback<'a> {
        BlueGreenRollback {
            slots: s,
            live: "green",
            idle_runs,
            target,
            left_idle_at: left,
            keep_warm: Duration::from_secs(3600),
            now,
        }
    }

    #[test]
    fn a_warm_old_slot_running_the_target_is_switched_back_to() {
        let (s, old) = (slots(), v("v1.7.3"));
        let later = t0() + chrono::Duration::minutes(59);
        assert_eq!(
            blue_green_rollback(&input(&s, Some(&old), &old, Some(t0()), later)),
            Some(BlueGreenMove::SwitchBack {
                slot: "blue".into()
            })
        );
    }

    #[test]
    fn past_keep_warm_the_old_slot_is_deployed_again() {
        let (s, old) = (slots(), v("v1.7.3"));
        let later = t0() + chrono::Duration::minutes(61);
        match blue_green_rollback(&input(&s, Some(&old), &old, Some(t0()), later)) {
            Some(BlueGreenMove::DeployAndSwitch { slot, why }) => {
                assert_eq!(slot, "blue");
                assert!(why.contains("longer than keep_warm (1h)"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_old_slot_running_another_version_is_not_warm() {
        let (s, old, other) = (slots(), v("v1.7.3"), v("v1.6.0"));
        let now = t0() + chrono::Duration::seconds(5);
        match blue_green_rollback(&input(&s, Some(&other), &old, Some(t0()), now)) {
            Some(BlueGreenMove::DeployAndSwitch { why, .. }) => {
                assert!(why.contains("blue runs v1.6.0, not v1.7.3"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let cold = blue_green_rollback(&input(&s, None, &old, Some(t0()), now));
        assert!(matches!(cold, Some(BlueGreenMove::DeployAndSwitch { .. })));
        let never = blue_green_rollback(&input(&s, Some(&old), &old, None, now));
        assert!(matches!(never, Some(BlueGreenMove::DeployAndSwitch { .. })));
    }

    #[test]
    fn a_switch_note_reads_back() {
        let d = format!("production live on blue: {}", switch_note("blue", 0.0421));
        assert_eq!(switch_secs(&d), Some(0.042));
        assert_eq!(switch_secs("redeploy of v1.7.3 in 40s"), None);
    }

    #[test]
    fn the_expected_time_is_the_median_of_the_last_five() {
        assert_eq!(expected_time(&[]), None);
        assert_eq!(expected_time(&[3.0]), Some((3.0, 1)));
        assert_eq!(expected_time(&[4.0, 2.0]), Some((3.0, 2)));
        // Newest first: the sixth and older do not count.
        assert_eq!(
            expected_time(&[40.0, 41.0, 39.0, 100.0, 38.0, 1.0, 1.0]),
            Some((40.0, 5))
        );
        assert_eq!(expected_time(&[f64::NAN, 2.0]), Some((2.0, 1)));
    }

    fn entry(action: ActionKind, outcome: Outcome, secs: i64, detail: &str) -> AuditEntry {
        AuditEntry {
            id: 1,
            at: t0(),
            actor: "a".into(),
            action,
            env: "production".into(),
            version: Some(v("v1.7.3")),
            from_version: None,
            outcome,
            detail: detail.into(),
            finished_at: Some(t0() + chrono::Duration::seconds(secs)),
        }
    }

    #[test]
    fn plans_take_their_time_from_the_environments_own_history() {
        let history = vec![
            entry(
                ActionKind::Rollback,
                Outcome::Succeeded,
                40,
                "reports v1.7.3",
            ),
            entry(
                ActionKind::Promote,
                Outcome::Succeeded,
                44,
                "reports v1.8.0",
            ),
            entry(ActionKind::Promote, Outcome::Failed, 500, "timed out"),
            entry(ActionKind::Approve, Outcome::Succeeded, 900, "go"),
            entry(
                ActionKind::Promote,
                Outcome::Succeeded,
                36,
                "reports v1.7.3",
            ),
        ];
        let p = revert_plan(
            RevertAction::Redeploy,
            Some(v("v1.7.3")),
            None,
            &history,
            "production",
        );
        assert_eq!(p.expected_s, Some(40.0));
        assert_eq!(p.line(), "redeploy v1.7.3, ~40 s (median of the last 3)");
        let other_env = revert_plan(RevertAction::Redeploy, None, None, &history, "staging");
        assert_eq!(other_env.expected_s, None);
        assert_eq!(other_env.line(), "redeploy: nothing to roll back to yet");
    }

    #[test]
    fn a_switch_back_is_timed_by_the_switches_alone() {
        let history = vec![
            entry(
                ActionKind::Promote,
                Outcome::Succeeded,
                30,
                &format!("deployed v1.8.0 to green; {}", switch_note("green", 0.2)),
            ),
            entry(
                ActionKind::Promote,
                Outcome::Succeeded,
                30,
                "no switch here",
            ),
        ];
        let p = revert_plan(
            RevertAction::SwitchBack,
            Some(v("v1.7.3")),
            Some("blue".into()),
            &history,
            "production",
        );
        assert_eq!(
            p.line(),
            "switch back to blue (v1.7.3), ~0.2 s (the last one)"
        );
        assert_eq!(p.short(), "switch back to blue (v1.7.3), ~0.2 s");
        assert_eq!(p.compact(), "back to blue (v1.7.3), ~0.2 s");
        let fresh = revert_plan(
            RevertAction::SwitchBack,
            Some(v("v1.7.3")),
            Some("blue".into()),
            &[],
            "production",
        );
        assert_eq!(
            fresh.line(),
            "switch back to blue (v1.7.3), time unknown (no timing in its history yet)"
        );
        assert_eq!(fresh.short(), "switch back to blue (v1.7.3), time unknown");
        let canary = revert_plan(RevertAction::CanaryWeightZero, None, None, &[], "p");
        assert!(
            canary.line().starts_with("canary weight → 0"),
            "{}",
            canary.line()
        );
    }

    #[test]
    fn a_blue_green_plan_without_a_live_slot_says_so_rather_than_redeploy() {
        let history = vec![entry(
            ActionKind::Promote,
            Outcome::Succeeded,
            30,
            &switch_note("green", 0.2),
        )];
        let p = revert_plan(
            RevertAction::SwitchBack,
            Some(v("v1.7.3")),
            None,
            &history,
            "production",
        )
        .live_slot_unknown();
        assert_eq!(
            p.short(),
            "live slot unknown: no way back planned until it reads"
        );
        assert_eq!(p.compact(), "live slot unknown");
        assert_eq!(p.line(), p.short());
        assert!(!p.line().contains("redeploy"), "{}", p.line());
        // status --json: no slot, no time, and why.
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["live_slot_unknown"], true);
        assert!(
            json["target"].is_null() && json["slot"].is_null() && json["expected_s"].is_null(),
            "{json}"
        );
        assert_eq!(json["basis"], "the live slot cannot be read");
        let known = revert_plan(
            RevertAction::SwitchBack,
            Some(v("v1.7.3")),
            Some("blue".into()),
            &history,
            "production",
        );
        assert_eq!(
            serde_json::to_value(&known).unwrap()["live_slot_unknown"],
            false
        );
    }

    #[test]
    fn before_any_deploy_the_plan_is_the_one_for_after_the_next() {
        let none = revert_plan(RevertAction::Redeploy, None, None, &[], "production");
        assert_eq!(none.line(), "redeploy: nothing to roll back to yet");
        let p = none.after_next_deploy(v("v1.7.3"), None);
        assert_eq!(p.target, Some(v("v1.7.3")));
        assert!(p.after_next_deploy);
        assert_eq!(p.short(), "redeploy v1.7.3, time unknown");
        assert_eq!(
            p.line(),
            "after the next deploy: redeploy v1.7.3, time unknown (no timing in its history yet)"
        );
        let bg = revert_plan(RevertAction::SwitchBack, None, None, &[], "production")
            .after_next_deploy(v("v1.7.3"), Some("blue".into()));
        assert_eq!(bg.short(), "switch back to blue (v1.7.3), time unknown");
        // A canary's plan needs no previous version: weight → 0.
        let canary = revert_plan(
            RevertAction::CanaryWeightZero,
            None,
            None,
            &[],
            "production",
        );
        assert_eq!(canary.short(), "canary weight → 0");
        assert_eq!(canary.line(), "canary weight → 0");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["target"], "v1.7.3");
        assert_eq!(json["after_next_deploy"], true);
    }

    #[test]
    fn a_promotion_says_what_it_does_per_strategy() {
        let version = v("v1.8.0");
        let redeploy = StrategyOutline::Redeploy.promote_words(&version, None);
        assert!(
            redeploy.starts_with("redeploy: deploys v1.8.0 in place"),
            "{redeploy}"
        );
        let bg = StrategyOutline::BlueGreen {
            slots: slots(),
            keep_warm: Duration::from_secs(3600),
        };
        assert_eq!(
            bg.promote_words(&version, Some("blue")),
            "blue-green: deploys v1.8.0 to green, waits until green reports it, then switches traffic from blue to green; blue stays warm for 1h for an instant switch back"
        );
        let unknown = bg.promote_words(&version, None);
        assert!(
            unknown.contains("deploys v1.8.0 to the idle slot")
                && unknown.contains("from the live slot"),
            "{unknown}"
        );
        let canary = StrategyOutline::Canary {
            steps: vec![10, 50, 100],
            step_time: Duration::from_secs(30),
        }
        .promote_words(&version, None);
        assert!(
            canary.starts_with(
                "canary: deploys v1.8.0 to the canary, then gives it 10% → 50% → 100% of the traffic, each step judged for 30s"
            ),
            "{canary}"
        );
        assert!(canary.contains("stable gets v1.8.0"), "{canary}");
    }

    #[test]
    fn expected_times_read_as_people_read_them() {
        assert_eq!(show_secs(0.21), "0.2 s");
        assert_eq!(show_secs(0.021), "21 ms");
        assert_eq!(show_secs(0.0001), "1 ms");
        assert_eq!(show_secs(40.2), "40 s");
        assert_eq!(show_secs(600.0), "10 min");
    }
}
