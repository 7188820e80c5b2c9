//! The promotion and rollback rules: one stage at a time, approvals of the
//! exact version, No-Go blocks, low-traffic windows, locks.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Approval, Decision, DeployKind, TimeWindow, Version};

/// What the rules need to know about one stage of the pipeline.
#[derive(Clone, Debug)]
pub struct StageInfo {
    pub name: String,
    /// The version observed running there now; `None` when unknown.
    pub version: Option<Version>,
    /// Where in the store's order shipdeck last recorded a deploy to this
    /// stage ([`DeployRecord::seq`]): a Go recorded before it is void.
    pub last_deploy_seq: Option<i64>,
    /// The newest date among this stage's recorded deploys, for the records
    /// the store could not place in its order (`seq` missing: written
    /// around shipdeck, or by a shipdeck before the order was kept), where
    /// dates are all there is to compare.
    pub last_deploy_at: Option<DateTime<Utc>>,
    /// Whether every recorded deploy of this stage carries its `seq`.
    pub deploys_ordered: bool,
    /// The newest recorded deploy of this stage: a rollback by hand from
    /// the version a promotion would ship makes that promotion ask again.
    pub last_deploy: Option<DeployRecord>,
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
    pub kind: DeployKind,
    /// The deploy backend's page of this deploy (a workflow run, a build, a
    /// Vercel deployment), where the backend gave one.
    pub url: Option<String>,
    /// Where the store put this deploy in its one order of everything it
    /// records (the id of the audit record its outcome went in with, an
    /// [`Approval::seq`](super::Approval::seq) alike): what orders it
    /// against other deploys and decisions. `at` is dated by the clock of
    /// the machine that deployed, minutes off another's: for display only.
    /// `None` for a record not read from a store.
    #[serde(skip)]
    pub seq: Option<i64>,
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
    /// Every recorded decision about the target environment, oldest first
    /// as the store appended them: the last about a version is the newest,
    /// whatever the clocks of the machines that gave them said (`at`).
    pub approvals: &'a [Approval],
    /// Holder of the target's deploy lock, when someone else holds it.
    /// What the holder of the target's lock does: "being promoted by
    /// alice since 14:03:12 UTC".
    pub lock_holder: Option<&'a str>,
    /// The target's canary still has traffic that no shipdeck judges (its
    /// promotion's shipdeck was killed, or the canary caught it and kept
    /// it): what it runs, at what weight, why, and what clears it. A new
    /// promotion on top would give its version that traffic unjudged.
    pub unjudged_canary: Option<&'a str>,
    /// A deploy or rollback of the target no live process runs and whose
    /// outcome is not known (its shipdeck was killed): it may still be
    /// under way in the deploy backend, so a new deploy on top would run
    /// beside it — a warning to confirm, naming it.
    pub unsettled: Option<&'a str>,
    /// For a monitored target: baseline steps collected so far and needed.
    pub baseline: Option<(usize, usize)>,
    /// `[policy] allow_self_approval = false`: who promotes now and who
    /// brought the version into the approval stage ([`super::policy`]).
    pub self_approval: Option<super::policy::SelfApproval<'a>>,
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
    /// CI, review and the approval stage's verdict (SPEC §7), flattened
    /// into the plan's JSON as `ci`, `review` and `stage_verdict`.
    #[serde(flatten)]
    /// Boxed: a plan travels inside every status message.
    pub evidence: Box<super::evidence::PlanEvidence>,
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
    #[error("nothing to roll back to: {}", match last_good {
        Some(v) => format!("{v} is the last known-good version {env} ran"),
        None => format!("{env} ran no other known-good version (none without a No-Go or a caught regression)"),
    })]
    NoKnownGood {
        env: String,
        last_good: Option<Version>,
    },
    #[error("{version} is not a rollback target for {env}: {why}")]
    NotKnownGood {
        env: String,
        version: Version,
        why: String,
    },
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
        if let (Some(p), Some(a)) = (&input.self_approval, latest_go(input, &version)) {
            gates.push(super::policy::promotion_gate(p, &version, &a.actor));
        }
    } else if let Some(gate) = no_go_gate(input, &version) {
        // No Go is needed here, but a No-Go still blocks the version (SPEC
        // §1.3): one recorded with `approve ENV --reject`, or by a monitoring
        // window that caught it, so it is not re-promoted by reflex.
        gates.push(gate);
    }

    if let Some(gate) = rolled_back_gate(target, &version) {
        gates.push(gate);
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
        Some(h) => Gate::block("lock", false, format!("{} is {h}", target.name)),
        None => Gate::block("lock", true, "no other deploy in progress"),
    });
    if let Some(c) = input.unjudged_canary {
        gates.push(Gate::block("canary", false, c));
    }
    if let Some(u) = input.unsettled {
        gates.push(Gate::warn("unsettled", false, u));
    }

    Ok(PromotionPlan {
        from,
        to: target.name.clone(),
        version,
        current: target.version.clone(),
        skips,
        gates,
        evidence: Default::default(),
    })
}

/// The target's last deploy rolled it back from `version`, the release
/// this promotion would ship again: a warning naming who and when, so it
/// asks again (`--yes`) rather than reading as ready. A rollback by hand
/// records no No-Go and SPEC voids a Go only when the approval stage
/// changes version, so the Go stands — but whoever rolled it back may have
/// had a reason the approver never saw. (A window's own rollback also
/// recorded a No-Go, which refuses the promotion besides.)
fn rolled_back_gate(target: &StageInfo, version: &Version) -> Option<Gate> {
    let d = target.last_deploy.as_ref()?;
    (d.kind == DeployKind::Rollback && d.from_version.as_ref() == Some(version)).then(|| {
        Gate::warn(
            "rolled_back_from",
            false,
            format!(
                "{} was rolled back from {version} by {} at {}: this promotes it again",
                target.name,
                crate::text::sanitize(&d.actor),
                d.at.format("%Y-%m-%d %H:%M UTC")
            ),
        )
    })
}

/// The newest decision about `version` for the target, when it is a Go.
fn latest_go<'a>(input: &PromotionInput<'a>, version: &Version) -> Option<&'a Approval> {
    let target = &input.stages[input.target];
    input
        .approvals
        .iter()
        .rfind(|a| a.env == target.name && &a.version == version)
        .filter(|a| a.decision == Decision::Go)
}

/// The newest decision about `version` for the target, when it is a
/// No-Go: the gate that refuses it where no approval is required.
fn no_go_gate(input: &PromotionInput<'_>, version: &Version) -> Option<Gate> {
    let target = &input.stages[input.target];
    // The one the store appended last, not the latest-dated: each is dated
    // by the clock of the machine that gave it.
    let latest = input
        .approvals
        .iter()
        .rfind(|a| a.env == target.name && &a.version == version)?;
    (latest.decision == Decision::NoGo)
        .then(|| Gate::block("approval", false, no_go_detail(latest)))
}

fn no_go_detail(a: &Approval) -> String {
    let who = format!("{} at {}", a.actor, a.at.format("%Y-%m-%d %H:%M UTC"));
    match &a.note {
        Some(n) => format!("No-Go by {who}: {n}"),
        None => format!("No-Go by {who}"),
    }
}

fn approval_gate(input: &PromotionInput<'_>, rule: &ApprovalRule, version: &Version) -> Gate {
    let target = &input.stages[input.target];
    let stage = &input.stages[rule.stage];
    // The newest decision about this exact version wins: the last the
    // store appended, not the one whose machine's clock reads latest (a Go
    // from a clock minutes ahead would outlive a No-Go given after it).
    let latest = input
        .approvals
        .iter()
        .rfind(|a| a.env == target.name && &a.version == version);
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
        Decision::NoGo => Gate::block("approval", false, no_go_detail(a)),
        Decision::Go => {
            let stage_runs_it = stage.version.as_ref() == Some(version);
            // In the store's order, never by the two dates: the deploy's
            // and the Go's come from the clocks of different machines.
            // A deploy or a Go without that order (see `last_deploy_at`)
            // falls back to the dates rather than never voiding the Go.
            let redeployed_since = match a.seq {
                Some(go) if stage.deploys_ordered => {
                    stage.last_deploy_seq.is_some_and(|deploy| deploy > go)
                }
                _ => stage.last_deploy_at.is_some_and(|t| t > a.at),
            };
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

/// What the rollback rules need about one environment.
#[derive(Clone, Debug)]
pub struct RollbackInput<'a> {
    pub env: &'a str,
    /// What it runs now.
    pub current: Option<&'a Version>,
    /// Its recorded deploys, oldest first (other environments' are ignored).
    pub history: &'a [DeployRecord],
    /// `--to V`, when given.
    pub to: Option<&'a Version>,
    /// Recorded decisions about the environment, oldest first as the store
    /// appended them: the last about a version is the one that counts.
    pub approvals: &'a [Approval],
    /// Versions a monitoring window caught in this environment.
    pub caught: &'a [Version],
}

/// Why a version is not known-good, when it is not.
fn not_known_good(i: &RollbackInput<'_>, v: &Version) -> Option<String> {
    if i.caught.contains(v) {
        return Some(format!("the monitoring window caught {v} in {}", i.env));
    }
    let latest = i
        .approvals
        .iter()
        .rfind(|a| a.env == i.env && &a.version == v)?;
    (latest.decision == Decision::NoGo)
        .then(|| format!("{v} is blocked by a No-Go ({})", latest.actor))
}

/// Pick the version to roll back to: the last *known-good* version the
/// environment ran — one without a No-Go and never caught by a monitoring
/// window, and not one it was already rolled back from — or `to`, which must
/// be a version it ran before and known-good.
pub fn plan_rollback(i: &RollbackInput<'_>) -> Result<RollbackPlan, PlanError> {
    let env = i.env;
    let mine: Vec<&DeployRecord> = i.history.iter().filter(|d| d.env == env).collect();
    // Versions it ran, newest first.
    let ran: Vec<&Version> = mine
        .iter()
        .rev()
        .flat_map(|d| std::iter::once(&d.version).chain(d.from_version.iter()))
        .collect();
    let target = match i.to {
        Some(v) => {
            if !ran.contains(&v) {
                let mut names: Vec<String> = ran.iter().map(|v| v.to_string()).collect();
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
            if let Some(why) = not_known_good(i, v) {
                return Err(PlanError::NotKnownGood {
                    env: env.to_string(),
                    version: v.clone(),
                    why,
                });
            }
            v.clone()
        }
        None => {
            if mine.is_empty() {
                return Err(PlanError::NothingToRollBack {
                    env: env.to_string(),
                });
            }
            let rolled_back_from: Vec<&Version> = mine
                .iter()
                .filter(|d| d.kind == DeployKind::Rollback)
                .filter_map(|d| d.from_version.as_ref())
                .collect();
            let pick = ran.iter().copied().find(|v| {
                Some(*v) != i.current
                    && !rolled_back_from.contains(v)
                    && not_known_good(i, v).is_none()
            });
            match pick {
                Some(v) => v.clone(),
                None => {
                    return Err(PlanError::NoKnownGood {
                        env: env.to_string(),
                        last_good: i
                            .current
                            .filter(|c| not_known_good(i, c).is_none())
                            .cloned(),
                    });
                }
            }
        }
    };
    if i.current == Some(&target) {
        return Err(PlanError::AlreadyRunning {
            env: env.to_string(),
            version: target,
        });
    }
    Ok(RollbackPlan {
        env: env.to_string(),
        from: i.current.cloned(),
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
                last_deploy_seq: None,
                last_deploy_at: None,
                deploys_ordered: true,
                last_deploy: None,
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
            unjudged_canary: None,
            unsettled: None,
            baseline: None,
            self_approval: None,
            now: t0(),
        }
    }
    fn go(env: &str, ver: &str, at: DateTime<Utc>, decision: Decision) -> Approval {
        Approval {
            seq: None,
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
    fn with_self_approval_refused_the_promoter_cannot_ship_on_their_own_go() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let goes = [go(
            "production",
            "v2",
            t0() - Duration::minutes(5),
            Decision::Go,
        )];
        let policy = |actor| crate::domain::policy::SelfApproval {
            actor,
            stage: "staging",
            stage_promoter: Some("bob"),
        };
        let mut i = input(&st, 3, &goes);
        i.self_approval = Some(policy("alice"));
        let p = plan_promotion(&i).unwrap();
        let r = p.refusal().unwrap();
        assert_eq!(r.name, "self_approval");
        assert!(r.detail.contains("alice's own"), "{}", r.detail);
        i.self_approval = Some(policy("carol"));
        let p = plan_promotion(&i).unwrap();
        assert!(p.refusal().is_none(), "{:?}", p.refusal());
        assert!(p.gates.iter().any(|g| g.name == "self_approval" && g.ok));
        // The default (allowed) adds no gate at all.
        i.self_approval = None;
        let p = plan_promotion(&i).unwrap();
        assert!(p.gates.iter().all(|g| g.name != "self_approval"));
        // Without a Go there is nothing to judge: the approval gate refuses.
        let mut i = input(&st, 3, &[]);
        i.self_approval = Some(policy("alice"));
        let p = plan_promotion(&i).unwrap();
        assert_eq!(p.refusal().unwrap().name, "approval");
        assert!(p.gates.iter().all(|g| g.name != "self_approval"));
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
        let ok = [Approval {
            seq: Some(7),
            ..go(
                "production",
                "v2",
                t0() - Duration::minutes(5),
                Decision::Go,
            )
        }];
        // Staging redeployed after the approval, even to the same version.
        st[2].last_deploy_seq = Some(8);
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

    /// Whether staging was redeployed since the Go is the store's order of
    /// the two records, never their dates: each is dated by the clock of
    /// the machine that wrote it, minutes apart across a team.
    #[test]
    fn a_go_is_void_by_the_stores_order_of_deploy_and_go_not_their_clocks() {
        let mut st = stages(["v4", "v3", "v2", "v1"]);
        // Dated five minutes ahead of staging's deploy (that machine's
        // clock is ahead), but recorded before it: void.
        let go_first = [Approval {
            seq: Some(7),
            ..go(
                "production",
                "v2",
                t0() + Duration::minutes(5),
                Decision::Go,
            )
        }];
        st[2].last_deploy_seq = Some(8);
        let p = plan_promotion(&input(&st, 3, &go_first)).unwrap();
        let r = p.refusal().unwrap();
        assert!(r.detail.contains("void"), "{}", r.detail);
        // Dated before the deploy (a clock behind), recorded after it: good.
        let go_after = [Approval {
            seq: Some(9),
            ..go(
                "production",
                "v2",
                t0() - Duration::minutes(30),
                Decision::Go,
            )
        }];
        let p = plan_promotion(&input(&st, 3, &go_after)).unwrap();
        assert!(p.refusal().is_none(), "{:?}", p.gates);
    }

    /// A stage deploy or a Go without the store's order (no seq) cannot be
    /// placed against the other: the dates decide, so such a redeploy
    /// still voids the Go (it never voided it before this fallback).
    #[test]
    fn a_go_or_deploy_without_the_stores_order_is_judged_by_the_dates() {
        let mut st = stages(["v4", "v3", "v2", "v1"]);
        let ordered_go = [Approval {
            seq: Some(9),
            ..go(
                "production",
                "v2",
                t0() - Duration::minutes(5),
                Decision::Go,
            )
        }];
        // Staging's newest deploy has no seq and is dated after the Go.
        st[2].last_deploy_seq = Some(4);
        st[2].last_deploy_at = Some(t0());
        st[2].deploys_ordered = false;
        let r = plan_promotion(&input(&st, 3, &ordered_go)).unwrap();
        assert!(
            r.refusal().unwrap().detail.contains("void"),
            "{:?}",
            r.gates
        );
        // A Go without a seq against ordered deploys: the dates too.
        st[2].deploys_ordered = true;
        let unordered_go = [go(
            "production",
            "v2",
            t0() - Duration::minutes(5),
            Decision::Go,
        )];
        let r = plan_promotion(&input(&st, 3, &unordered_go)).unwrap();
        assert!(
            r.refusal().unwrap().detail.contains("void"),
            "{:?}",
            r.gates
        );
        // Dated before the Go: it stands.
        st[2].last_deploy_at = Some(t0() - Duration::minutes(10));
        let r = plan_promotion(&input(&st, 3, &unordered_go)).unwrap();
        assert!(r.refusal().is_none(), "{:?}", r.gates);
    }

    /// The newest decision is the last appended, not the one with the
    /// latest time: times come from the clocks of different machines.
    #[test]
    fn a_no_go_appended_after_a_go_wins_though_its_clock_reads_earlier() {
        let st = stages(["v4", "v3", "v2", "v1"]);
        let ds = [
            go(
                "production",
                "v2",
                t0() + Duration::minutes(5),
                Decision::Go,
            ),
            go("production", "v2", t0(), Decision::NoGo),
        ];
        let p = plan_promotion(&input(&st, 3, &ds)).unwrap();
        let r = p.refusal().unwrap();
        assert!(r.detail.starts_with("No-Go by"), "{}", r.detail);
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
    fn a_no_go_blocks_where_no_go_is_needed_too() {
        // development requires no approval: nothing recorded, nothing asked.
        let st = stages(["v4", "v3", "v2", "v1"]);
        let p = plan_promotion(&input(&st, 1, &[])).unwrap();
        assert!(p.refusal().is_none(), "{:?}", p.gates);
        assert!(p.gates.iter().all(|g| g.name != "approval"));
        // A No-Go of what promoting development ships blocks it all the same.
        let a = [go("development", "v4", t0(), Decision::NoGo)];
        let p = plan_promotion(&input(&st, 1, &a)).unwrap();
        let r = p.refusal().expect("the No-Go refuses");
        assert_eq!(r.name, "approval");
        assert!(r.detail.starts_with("No-Go by alice"), "{}", r.detail);
        // Another environment's No-Go, or one about another version, does not.
        let a = [
            go("staging", "v4", t0(), Decision::NoGo),
            go("development", "v9", t0(), Decision::NoGo),
        ];
        assert!(
            plan_promotion(&input(&st, 1, &a))
                .unwrap()
                .refusal()
                .is_none()
        );
        // A later Go lifts it, as where a Go is needed.
        let a = [
            go("development", "v4", t0(), Decision::NoGo),
            go(
                "development",
                "v4",
                t0() + Duration::minutes(1),
                Decision::Go,
            ),
        ];
        assert!(
            plan_promotion(&input(&st, 1, &a))
                .unwrap()
                .refusal()
                .is_none()
        );
        // The one appended last decides, not the latest-dated: a Go from a
        // clock 5 min ahead does not outlive a No-Go given after it.
        let a = [
            go(
                "development",
                "v4",
                t0() + Duration::minutes(5),
                Decision::Go,
            ),
            go("development", "v4", t0(), Decision::NoGo),
        ];
        let r = plan_promotion(&input(&st, 1, &a)).unwrap();
        assert!(
            r.refusal()
                .is_some_and(|r| r.detail.starts_with("No-Go by")),
            "{:?}",
            r.gates
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

    /// Rolled back by hand from the release a promotion would ship again:
    /// the Go stands (SPEC voids it only when staging changes version), so
    /// the plan read ready for the release just taken out. It warns, and
    /// asks again, naming who rolled it back and when.
    #[test]
    fn a_release_just_rolled_back_from_warns() {
        let mut st = stages(["v4", "v3", "v1.8.0", "v1.7.3"]);
        let goes = [go("production", "v1.8.0", t0(), Decision::Go)];
        let back = |kind, from: &str| DeployRecord {
            env: "production".into(),
            version: v("v1.7.3"),
            from_version: Some(v(from)),
            at: t0() + chrono::Duration::minutes(5),
            actor: "bob".into(),
            kind,
            url: None,
            seq: None,
        };
        st[3].last_deploy = Some(back(DeployKind::Rollback, "v1.8.0"));
        let p = plan_promotion(&input(&st, 3, &goes)).unwrap();
        assert!(p.refusal().is_none(), "{:?}", p.refusal());
        let w: Vec<_> = p.warnings().collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].name, "rolled_back_from");
        assert_eq!(
            w[0].detail,
            "production was rolled back from v1.8.0 by bob at 2026-11-24 12:05 UTC: this promotes it again"
        );
        // Not once something else was rolled back from, nor after a promote.
        st[3].last_deploy = Some(back(DeployKind::Rollback, "v1.7.9"));
        assert_eq!(
            plan_promotion(&input(&st, 3, &goes))
                .unwrap()
                .warnings()
                .count(),
            0
        );
        st[3].last_deploy = Some(back(DeployKind::Promote, "v1.8.0"));
        assert_eq!(
            plan_promotion(&input(&st, 3, &goes))
                .unwrap()
                .warnings()
                .count(),
            0
        );
    }

    /// The rollback's actor comes from the store (another machine's
    /// record in team mode): it reaches the terminal sanitised.
    #[test]
    fn a_rolled_back_from_warning_names_its_actor_sanitised() {
        let mut st = stages(["v4", "v3", "v1.8.0", "v1.7.3"]);
        let goes = [go("production", "v1.8.0", t0(), Decision::Go)];
        st[3].last_deploy = Some(DeployRecord {
            env: "production".into(),
            version: v("v1.7.3"),
            from_version: Some(v("v1.8.0")),
            at: t0(),
            actor: "mallory\x1b]0;owned\x07\x1b[2J".into(),
            kind: DeployKind::Rollback,
            url: None,
            seq: None,
        });
        let p = plan_promotion(&input(&st, 3, &goes)).unwrap();
        let w: Vec<_> = p.warnings().collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].detail.contains("mallory"), "{}", w[0].detail);
        assert!(!crate::text::has_control(&w[0].detail), "{:?}", w[0].detail);
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
        i.lock_holder = Some("being promoted by bob@host since 14:03:12 UTC");
        let p = plan_promotion(&i).unwrap();
        let r = p.refusal().unwrap();
        assert_eq!(r.name, "lock");
        assert_eq!(
            r.detail,
            "staging is being promoted by bob@host since 14:03:12 UTC"
        );
    }

    fn dep(env: &str, from: Option<&str>, to: &str, min: i64) -> DeployRecord {
        DeployRecord {
            seq: None,
            env: env.into(),
            version: v(to),
            from_version: from.map(v),
            at: t0() + Duration::minutes(min),
            actor: "alice".into(),
            kind: DeployKind::Promote,
            url: None,
        }
    }

    fn dep_kind(env: &str, from: &str, to: &str, min: i64, kind: DeployKind) -> DeployRecord {
        DeployRecord {
            seq: None,
            kind,
            ..dep(env, Some(from), to, min)
        }
    }
    fn rb<'a>(
        env: &'a str,
        current: Option<&'a Version>,
        history: &'a [DeployRecord],
        to: Option<&'a Version>,
    ) -> RollbackInput<'a> {
        RollbackInput {
            env,
            current,
            history,
            to,
            approvals: &[],
            caught: &[],
        }
    }

    #[test]
    fn rollback_returns_to_the_version_before_the_last_deploy() {
        let h = [
            dep("production", Some("v1"), "v2", 0),
            dep("staging", Some("v2"), "v3", 1),
            dep("production", Some("v2"), "v3", 2),
        ];
        let (v1, v2, v3, v9) = (v("v1"), v("v2"), v("v3"), v("v9"));
        let p = plan_rollback(&rb("production", Some(&v3), &h, None)).unwrap();
        assert_eq!(p.to, v("v2"));
        assert_eq!(p.from, Some(v("v3")));
        let p = plan_rollback(&rb("production", Some(&v3), &h, Some(&v1))).unwrap();
        assert_eq!(p.to, v("v1"));
        assert!(matches!(
            plan_rollback(&rb("production", Some(&v3), &h, Some(&v9))),
            Err(PlanError::NeverRan { .. })
        ));
        assert!(matches!(
            plan_rollback(&rb("local", None, &h, None)),
            Err(PlanError::NothingToRollBack { .. })
        ));
        assert!(matches!(
            plan_rollback(&rb("production", Some(&v2), &h, Some(&v2))),
            Err(PlanError::AlreadyRunning { .. })
        ));
    }

    #[test]
    fn rollback_never_brings_a_caught_release_back() {
        // v1.7.3 → v1.8.0, caught by the window, rolled back to v1.7.3.
        let h = [
            dep("production", Some("v1.7.3"), "v1.8.0", 0),
            dep_kind("production", "v1.8.0", "v1.7.3", 1, DeployKind::Rollback),
        ];
        let caught = [v("v1.8.0")];
        let good = v("v1.7.3");
        let mut i = rb("production", Some(&good), &h, None);
        i.caught = &caught;
        let e = plan_rollback(&i).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoKnownGood {
                env: "production".into(),
                last_good: Some(v("v1.7.3"))
            }
        );
        assert_eq!(
            e.to_string(),
            "nothing to roll back to: v1.7.3 is the last known-good version production ran"
        );
        // Nor by name.
        let bad = v("v1.8.0");
        i.to = Some(&bad);
        let e = plan_rollback(&i).unwrap_err();
        assert!(matches!(e, PlanError::NotKnownGood { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("the monitoring window caught v1.8.0")
        );
    }

    #[test]
    fn a_second_rollback_does_not_flip_back_onto_the_version_rolled_back_from() {
        let h = [
            dep("production", Some("v1"), "v2", 0),
            dep_kind("production", "v2", "v1", 1, DeployKind::Rollback),
        ];
        let cur = v("v1");
        let e = plan_rollback(&rb("production", Some(&cur), &h, None)).unwrap_err();
        assert!(matches!(e, PlanError::NoKnownGood { .. }), "{e:?}");
        // Naming it is a deliberate choice, allowed: no No-Go, never caught.
        let v2 = v("v2");
        let p = plan_rollback(&rb("production", Some(&cur), &h, Some(&v2))).unwrap();
        assert_eq!(p.to, v2);
    }

    #[test]
    fn rollback_skips_no_go_versions_for_an_older_known_good_one() {
        let h = [
            dep("production", Some("v1"), "v2", 0),
            dep("production", Some("v2"), "v3", 1),
        ];
        let approvals = [
            go("production", "v2", t0(), Decision::Go),
            go(
                "production",
                "v2",
                t0() + Duration::minutes(3),
                Decision::NoGo,
            ),
        ];
        let cur = v("v3");
        let mut i = rb("production", Some(&cur), &h, None);
        i.approvals = &approvals;
        assert_eq!(plan_rollback(&i).unwrap().to, v("v1"));
        let v2 = v("v2");
        i.to = Some(&v2);
        let e = plan_rollback(&i).unwrap_err();
        assert!(e.to_string().contains("blocked by a No-Go"), "{e}");
        // A newer Go lifts it.
        let approvals = [
            go("production", "v2", t0(), Decision::NoGo),
            go(
                "production",
                "v2",
                t0() + Duration::minutes(3),
                Decision::Go,
            ),
        ];
        i.approvals = &approvals;
        assert_eq!(plan_rollback(&i).unwrap().to, v2);
    }

    #[test]
    fn a_caught_current_release_rolls_back_to_the_one_before() {
        let h = [dep("production", Some("v1"), "v2", 0)];
        let caught = [v("v2")];
        let cur = v("v2");
        let mut i = rb("production", Some(&cur), &h, None);
        i.caught = &caught;
        assert_eq!(plan_rollback(&i).unwrap().to, v("v1"));
        // With v1 blocked too there is nothing known-good at all.
        let approvals = [go("production", "v1", t0(), Decision::NoGo)];
        i.approvals = &approvals;
        let e = plan_rollback(&i).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoKnownGood {
                env: "production".into(),
                last_good: None
            }
        );
        assert!(e.to_string().contains("no other known-good version"), "{e}");
    }
}
