//! The promotion and rollback rules: one stage at a time, approvals of the
//! exact version, No-Go blocks, low-traffic windows, locks.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Approval, Decision, TimeWindow, Version};

/// What the rules need to know about one stage of the pipeline.
#[derive(Clone, Debug)]
pub struct StageInfo {
    pub name: String,
    /// The version observed running there now; `None` when unknown.
    pub version: Option<Version>,
    /// When shipdeck last recorded a deploy to this stage (voids approvals).
    pub last_deploy_at: Option<DateTime<Utc>>,
    pub approval: Option<ApprovalRule>,
    pub low_traffic: Option<TimeWindow>,
}

/// Production-like stages require a Go of the exact version, given while
/// `stage` (an earlier stage, usually staging) runs it.
#[derive(Clone, Debug)]
pub struct ApprovalRule {
    /// Index of the stage whose acceptance the approval records.
    pub stage: usize,
}

/// A recorded deploy of one environment, newest last when given as a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeployRecord {
    pub env: String,
    pub version: Version,
    pub from_version: Option<Version>,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `promote` or `rollback`.
    pub kind: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateSeverity {
    /// A failed blocking gate refuses the action (exit 3).
    Block,
    /// A failed warning gate asks again before acting (`--yes`).
    Warn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub severity: GateSeverity,
}

impl Gate {
    /// A blocking gate.
    pub fn block(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Gate {
            name: name.to_string(),
            ok,
            detail: detail.into(),
            severity: GateSeverity::Block,
        }
    }
    fn warn(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Gate {
            name: name.to_string(),
            ok,
            detail: detail.into(),
            severity: GateSeverity::Warn,
        }
    }
}

pub struct PromotionInput<'a> {
    pub stages: &'a [StageInfo],
    pub target: usize,
    /// `--version V`, when given.
    pub explicit: Option<&'a Version>,
    /// Every recorded decision about the target environment, oldest first.
    pub approvals: &'a [Approval],
    /// Holder of the target's deploy lock, when someone else holds it.
    pub lock_holder: Option<&'a str>,
    /// For a monitored target: baseline steps collected so far and needed.
    pub baseline: Option<(usize, usize)>,
    pub now: DateTime<Utc>,
}

/// What promoting an environment would do, and whether it may.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PromotionPlan {
    /// The stage the version comes from; `None` for the first stage.
    pub from: Option<String>,
    pub to: String,
    pub version: Version,
    /// What the target runs now.
    pub current: Option<Version>,
    /// The release skips at least one stage (explicit `--version`).
    pub skips: Vec<String>,
    pub gates: Vec<Gate>,
}

impl PromotionPlan {
    /// The first failed blocking gate, if any.
    pub fn refusal(&self) -> Option<&Gate> {
        self.gates
            .iter()
            .find(|g| !g.ok && g.severity == GateSeverity::Block)
    }
    /// Failed warning gates: the action needs a second confirmation.
    pub fn warnings(&self) -> impl Iterator<Item = &Gate> {
        self.gates
            .iter()
            .filter(|g| !g.ok && g.severity == GateSeverity::Warn)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0} is the first stage: nothing comes before it, so give the version with --version")]
    FirstStageNeedsVersion(String),
    #[error("the version {stage} runs is unknown, so there is nothing to promote to {target}")]
    SourceUnknown { stage: String, target: String },
    #[error("{env} has no recorded deploy to roll back")]
    NothingToRollBack { env: String },
    #[error("{env} never ran {version}; it ran: {known}")]
    NeverRan {
        env: String,
        version: Version,
        known: String,
    },
    #[error("{env} already runs {version}")]
    AlreadyRunning { env: String, version: Version },
}

/// Decide what promoting `input.target` ships and check every gate.
///
/// Without `--version` it ships what the stage before runs. With it, the
/// version must run in some earlier stage; when that is not the stage right
/// before, the promotion skips stages and says so.
pub fn plan_promotion(input: &PromotionInput<'_>) -> Result<PromotionPlan, PlanError> {
    let stages = input.stages;
    let target = &stages[input.target];
    let prev = input.target.checked_sub(1).map(|i| &stages[i]);
    let mut gates = Vec::new();

    let (version, from, skips) = match (input.explicit, prev) {
        (None, None) => return Err(PlanError::FirstStageNeedsVersion(target.name.clone())),
        (None, Some(p)) => match &p.version {
            Some(v) => {
                gates.push(Gate::block(
                    "previous_stage",
                    true,
                    format!("{v} runs in {}", p.name),
                ));
                (v.clone(), Some(p.name.clone()), vec![])
            }
            None => {
                return Err(PlanError::SourceUnknown {
                    stage: p.name.clone(),
                    target: target.name.clone(),
                });
            }
        },
        (Some(v), None) => {
            gates.push(Gate::block(
                "previous_stage",
                true,
                format!("{} is the first stage", target.name),
            ));
            (v.clone(), None, vec![])
        }
        (Some(v), Some(_)) => {
            // The closest earlier stage that runs it.
            let source = (0..input.target)
                .rev()
                .find(|&i| stages[i].version.as_ref() == Some(v));
            match source {
                Some(i) => {
                    let skips: Vec<String> = stages[i + 1..input.target]
                        .iter()
                        .map(|s| s.name.clone())
                        .collect();
                    let detail = if skips.is_empty() {
                        format!("{v} runs in {}", stages[i].name)
                    } else {
                        format!("{v} runs in {}; skips {}", stages[i].name, skips.join(", "))
                    };
                    gates.push(Gate::block("previous_stage", true, detail));
                    (v.clone(), Some(stages[i].name.clone()), skips)
                }
                None => {
                    let p = prev.map(|p| p.name.as_str()).unwrap_or("");
                    gates.push(Gate::block(
                        "previous_stage",
                        false,
                        format!(
                            "{v} runs in no earlier stage (the stage before, {p}, runs {})",
                            prev.and_then(|p| p.version.as_ref())
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "an unknown version".into())
                        ),
                    ));
                    (v.clone(), None, vec![])
                }
            }
        }
    };

    gates.push(if target.version.as_ref() == Some(&version) {
        Gate::block(
            "not_running",
            false,
            format!("{} already runs {version}", target.name),
        )
    } else {
        Gate::block(
            "not_running",
            true,
            format!(
                "{} runs {}",
                target.name,
                target
                    .version
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "an unknown version".into())
            ),
        )
    });

    if let Some(rule) = &target.approval {
        gates.push(approval_gate(input, rule, &version));
    }

    if let Some(w) = &target.low_traffic {
        let inside = w.contains(input.now);
        gates.push(Gate::warn(
            "low_traffic_window",
            inside,
            if inside {
                format!("inside the low-traffic window {w}")
            } else {
                format!("outside the low-traffic window {w}")
            },
        ));
    }

    if let Some((have, need)) = input.baseline {
        gates.push(Gate::warn(
            "monitoring_baseline",
            have >= need,
            if have >= need {
                format!("{have} baseline steps to judge the deploy against")
            } else {
                format!(
                    "only {have} of {need} baseline steps collected: the monitoring window could not judge this deploy yet"
                )
            },
        ));
    }

    gates.push(match input.lock_holder {
        Some(h) => Gate::block("lock", false, format!("{} is locked by {h}", target.name)),
        None => Gate::block("lock", true, "no other deploy in progress"),
    });

    Ok(PromotionPlan {
        from,
        to: target.name.clone(),
        version,
        current: target.version.clone(),
        skips,
        gates,
    })
}

fn approval_gate(input: &PromotionInput<'_>, rule: &ApprovalRule, version: &Version) -> Gate {
    let target = &input.stages[input.target];
    let stage = &input.stages[rule.stage];
    // The newest decision about this exact version wins.
    let latest = input
        .approvals
        .iter()
        .filter(|a| a.env == target.name && &a.version == version)
        .max_by_key(|a| a.at);
    let Some(a) = latest else {
        return Gate::block(
            "approval",
            false,
            format!(
                "no Go recorded for {version} (shipdeck approve {})",
                target.name
            ),
        );
    };
    let who = format!("{} at {}", a.actor, a.at.format("%Y-%m-%d %H:%M UTC"));
    match a.decision {
        Decision::NoGo => Gate::block(
            "approval",
            false,
            match &a.note {
                Some(n) => format!("No-Go by {who}: {n}"),
                None => format!("No-Go by {who}"),
            },
        ),
        Decision::Go => {
            let stage_runs_it = stage.version.as_ref() == Some(version);
            let redeployed_since = stage.last_deploy_at.is_some_and(|t| t > a.at);
            if !stage_runs_it || redeployed_since {
                Gate::block(
                    "approval",
                    false,
                    format!("Go by {who} is void: {} changed version since", stage.name),
                )
            } else {
                Gate::block("approval", true, format!("Go by {who}"))
            }
        }
    }
}

/// What rolling an environment back would do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RollbackPlan {
    pub env: String,
    pub from: Option<Version>,
    pub to: Version,
}

/// Pick the version to roll back to: the one the environment ran before its
/// last deploy, or `to`, which must be one it ran before.
pub fn plan_rollback(
    env: &str,
    current: Option<&Version>,
    history: &[DeployRecord],
    to: Option<&Version>,
) -> Result<RollbackPlan, PlanError> {
    let mine: Vec<&DeployRecord> = history.iter().filter(|d| d.env == env).collect();
    let target = match to {
        Some(v) => {
            let known: Vec<&Version> = mine
                .iter()
                .flat_map(|d| d.from_version.iter().chain(std::iter::once(&d.version)))
                .collect();
            if !known.contains(&v) {
                let mut names: Vec<String> = known.iter().map(|v| v.to_string()).collect();
                names.sort();
                names.dedup();
                return Err(PlanError::NeverRan {
                    env: env.to_string(),
                    version: v.clone(),
                    known: if names.is_empty() {
                        "nothing recorded".into()
                    } else {
                        names.join(", ")
                    },
                });
            }
            v.clone()
        }
        None => {
            let last = mine.last().ok_or_else(|| PlanError::NothingToRollBack {
                env: env.to_string(),
            })?;
            last.from_version
                .clone()
                .ok_or_else(|| PlanError::NothingToRollBack {
                    env: env.to_string(),
                })?
        }
    };
    if current == Some(&target) {
        return Err(PlanError::AlreadyRunning {
            env: env.to_string(),
            version: target,
        });
    }
    Ok(RollbackPlan {
        env: env.to_string(),
        from: current.cloned(),
        to: target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }
    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }
    fn stages(versions: [&str; 4]) -> Vec<StageInfo> {
        ["local", "development", "staging", "production"]
            .iter()
            .zip(versions)
            .enumerate()
            .map(|(i, (n, ver))| StageInfo {
                name: n.to_string(),
                version: (!ver.is_empty()).then(|| v(ver)),
                last_deploy_at: None,
                approval: (i == 3).then_some(ApprovalRule { stage: 2 }),
                low_traffic: None,
            })
            .collect()
    }
    fn input<'a>(
        st: &'a [StageInfo],
        target: usize,
        approvals: &'a [Approval],
    ) -> PromotionInput<'a> {
        PromotionInput {
            stages: st,
            target,
            explicit: None,
            approvals,
            lock_holder: None,
            baseline: None,
            now: t0(),
        }
    }
    fn go(env: &str, ver: &str, at: DateTime<Utc>, decision: Decision) -> Approval {
        Approval {
            env: env.into(),
            version: v(ver),
            decision,
            actor: "alice".into(),
            at,
            note: Some("looks good".into()),
        }
    }

    #[test]
    fn ships_what_the_previous_stage_runs() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let p = plan_promotion(&input(&st, 2, &[])).unwrap();
        assert_eq!(p.version, v("v3"));
        assert_eq!(p.from.as_deref(), Some("development"));
        assert_eq!(p.current, Some(v("v2")));
        assert!(p.refusal().is_none());
        assert!(p.skips.is_empty());
    }

    #[test]
    fn first_stage_needs_explicit_version() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        assert_eq!(
            plan_promotion(&input(&st, 0, &[])),
            Err(PlanError::FirstStageNeedsVersion("local".into()))
        );
        let ver = v("v5");
        let mut i = input(&st, 0, &[]);
        i.explicit = Some(&ver);
        let p = plan_promotion(&i).unwrap();
        assert_eq!(p.version, ver);
        assert!(p.refusal().is_none());
    }

    #[test]
    fn unknown_source_version_is_an_error() {
        let st = stages(["v4", "", "v2", "v1"]);
        assert!(matches!(
            plan_promotion(&input(&st, 2, &[])),
            Err(PlanError::SourceUnknown { .. })
        ));
    }

    #[test]
    fn production_needs_a_go_of_that_exact_version() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let p = plan_promotion(&input(&st, 3, &[])).unwrap();
        let r = p.refusal().unwrap();
        assert_eq!(r.name, "approval");
        assert!(r.detail.contains("no Go recorded for v2"));

        let other = [go("production", "v3", t0(), Decision::Go)];
        let p = plan_promotion(&input(&st, 3, &other)).unwrap();
        assert_eq!(p.refusal().unwrap().name, "approval");

        let ok = [go(
            "production",
            "v2",
            t0() - Duration::minutes(5),
            Decision::Go,
        )];
        let p = plan_promotion(&input(&st, 3, &ok)).unwrap();
        assert!(p.refusal().is_none(), "{:?}", p.gates);
    }

    #[test]
    fn approval_is_void_once_staging_changes() {
        let mut st = stages(["v4", "v3", "v2", "v1"]);
        let ok = [go(
            "production",
            "v2",
            t0() - Duration::minutes(5),
            Decision::Go,
        )];
        // Staging redeployed after the approval, even to the same version.
        st[2].last_deploy_at = Some(t0() - Duration::minutes(1));
        let p = plan_promotion(&input(&st, 3, &ok)).unwrap();
        let r = p.refusal().unwrap();
        assert!(r.detail.contains("void"), "{}", r.detail);
        // Staging runs another version now: the approved one is not shippable.
        let st = stages(["v4", "v3", "v3", "v1"]);
        let p = plan_promotion(&input(&st, 3, &ok)).unwrap();
        assert_eq!(p.version, v("v3"));
        assert!(
            p.refusal()
                .unwrap()
                .detail
                .contains("no Go recorded for v3")
        );
    }

    #[test]
    fn no_go_blocks_and_newest_decision_wins() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let ds = [
            go(
                "production",
                "v2",
                t0() - Duration::minutes(9),
                Decision::Go,
            ),
            go(
                "production",
                "v2",
                t0() - Duration::minutes(3),
                Decision::NoGo,
            ),
        ];
        let p = plan_promotion(&input(&st, 3, &ds)).unwrap();
        let r = p.refusal().unwrap();
        assert!(r.detail.starts_with("No-Go by alice"), "{}", r.detail);
        assert!(r.detail.ends_with("looks good"));
        let ds = [
            go(
                "production",
                "v2",
                t0() - Duration::minutes(9),
                Decision::NoGo,
            ),
            go(
                "production",
                "v2",
                t0() - Duration::minutes(3),
                Decision::Go,
            ),
        ];
        assert!(
            plan_promotion(&input(&st, 3, &ds))
                .unwrap()
                .refusal()
                .is_none()
        );
    }

    #[test]
    fn already_running_is_refused() {
        let st = stages(["v4", "v3", "v3", "v1"]);
        let p = plan_promotion(&input(&st, 2, &[])).unwrap();
        assert_eq!(p.refusal().unwrap().name, "not_running");
    }

    #[test]
    fn explicit_version_may_skip_stages_and_says_so() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let ver = v("v4");
        let mut i = input(&st, 2, &[]);
        i.explicit = Some(&ver);
        let p = plan_promotion(&i).unwrap();
        assert_eq!(p.skips, vec!["development".to_string()]);
        assert_eq!(p.from.as_deref(), Some("local"));
        assert!(p.refusal().is_none());

        let stranger = v("v9");
        i.explicit = Some(&stranger);
        let p = plan_promotion(&i).unwrap();
        let r = p.refusal().unwrap();
        assert_eq!(r.name, "previous_stage");
        assert!(r.detail.contains("runs in no earlier stage"));
    }

    #[test]
    fn outside_low_traffic_window_warns() {
        let mut st = stages(["v4", "v3", "v2", "v1"]);
        st[2].low_traffic = Some(TimeWindow::parse("22:00-06:00").unwrap());
        let p = plan_promotion(&input(&st, 2, &[])).unwrap();
        assert!(p.refusal().is_none());
        let w: Vec<_> = p.warnings().collect();
        assert_eq!(w.len(), 1);
        assert!(w[0].detail.contains("outside"));
        st[2].low_traffic = Some(TimeWindow::parse("11:00-13:00").unwrap());
        assert_eq!(
            plan_promotion(&input(&st, 2, &[]))
                .unwrap()
                .warnings()
                .count(),
            0
        );
    }

    #[test]
    fn a_thin_monitoring_baseline_warns() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let mut i = input(&st, 2, &[]);
        i.baseline = Some((3, 5));
        let p = plan_promotion(&i).unwrap();
        assert!(p.refusal().is_none());
        let w: Vec<_> = p.warnings().collect();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].detail.contains("only 3 of 5 baseline steps"),
            "{}",
            w[0].detail
        );
        i.baseline = Some((5, 5));
        assert_eq!(plan_promotion(&i).unwrap().warnings().count(), 0);
    }

    #[test]
    fn a_lock_held_by_someone_else_refuses() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let mut i = input(&st, 2, &[]);
        i.lock_holder = Some("bob@host");
        let p = plan_promotion(&i).unwrap();
        assert_eq!(p.refusal().unwrap().name, "lock");
    }

    fn dep(env: &str, from: Option<&str>, to: &str, min: i64) -> DeployRecord {
        DeployRecord {
            env: env.into(),
            version: v(to),
            from_version: from.map(v),
            at: t0() + Duration::minutes(min),
            actor: "alice".into(),
            kind: "promote".into(),
        }
    }

    #[test]
    fn rollback_returns_to_the_version_before_the_last_deploy() {
        let h = [
            dep("production", Some("v1"), "v2", 0),
            dep("staging", Some("v2"), "v3", 1),
            dep("production", Some("v2"), "v3", 2),
        ];
        let p = plan_rollback("production", Some(&v("v3")), &h, None).unwrap();
        assert_eq!(p.to, v("v2"));
        assert_eq!(p.from, Some(v("v3")));
        let p = plan_rollback("production", Some(&v("v3")), &h, Some(&v("v1"))).unwrap();
        assert_eq!(p.to, v("v1"));
        assert!(matches!(
            plan_rollback("production", Some(&v("v3")), &h, Some(&v("v9"))),
            Err(PlanError::NeverRan { .. })
        ));
        assert!(matches!(
            plan_rollback("local", None, &h, None),
            Err(PlanError::NothingToRollBack { .. })
        ));
        assert!(matches!(
            plan_rollback("production", Some(&v("v2")), &h, Some(&v("v2"))),
            Err(PlanError::AlreadyRunning { .. })
        ));
    }
}
