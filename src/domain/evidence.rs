//! Evidence about the pending release from outside shipdeck (SPEC §7): its
//! commit's CI, the review of its commits, and the approval stage's own
//! metrics — and the gates that require them (`requires_ci`,
//! `requires_review`, `requires_healthy_stage`). Observations in, typed
//! gates out: the engine gathers the evidence, these rules judge it.
//!
//! A source that cannot answer is `unknown`, and an `unknown` (or a stage
//! verdict of "insufficient data") blocks a gate that requires it: a gate
//! passes on evidence only, never on silence.

use serde::{Deserialize, Serialize};

use super::promotion::{Gate, PromotionPlan};
use crate::monitor::{StageState, StageVerdict};

/// The state of a CI run or of a review, as SPEC §7 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    Success,
    Failure,
    Pending,
    Unknown,
}

impl CheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Success => "success",
            CheckState::Failure => "failure",
            CheckState::Pending => "pending",
            CheckState::Unknown => "unknown",
        }
    }
}

/// One piece of outside evidence: `{state, detail, url}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub state: CheckState,
    /// One line a human understands: which checks, which commits, or why
    /// the source could not answer.
    pub detail: String,
    /// Where to look (the CI run, the pull request), when known.
    pub url: Option<String>,
}

/// What a check reads as while its source has not answered yet.
pub const CHECKING: &str = "checking…";

impl Check {
    pub fn new(state: CheckState, detail: impl Into<String>, url: Option<String>) -> Check {
        Check {
            state,
            detail: detail.into(),
            url,
        }
    }
    /// A source that could not answer, and why.
    pub fn unknown(detail: impl Into<String>) -> Check {
        Check::new(CheckState::Unknown, detail, None)
    }
    /// Asked, no answer yet (the console shows it while the source works).
    pub fn checking() -> Check {
        Check::unknown(CHECKING)
    }
}

/// Which evidence gates the target environment has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    pub ci: bool,
    pub review: bool,
    pub healthy_stage: bool,
}

/// The evidence about one pending release; `None` where there is no
/// source for it (no `[release] ci`, no approval stage).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlanEvidence {
    /// CI of the release's commit.
    pub ci: Option<Check>,
    /// Whether every commit of the release came through an approved pull request.
    pub review: Option<Check>,
    /// The approval stage's own metrics since the version went live there.
    pub stage_verdict: Option<StageVerdict>,
}

/// Add the evidence and the gates `req` asks for to `plan`.
pub fn apply_evidence(
    mut plan: PromotionPlan,
    req: Requirements,
    ev: PlanEvidence,
) -> PromotionPlan {
    if req.ci {
        plan.gates.push(check_gate(
            "ci",
            ev.ci.as_ref(),
            &CiWords,
            "no CI source to ask: set [release] ci (a command or github)",
        ));
    }
    if req.review {
        plan.gates.push(check_gate(
            "review",
            ev.review.as_ref(),
            &ReviewWords,
            "no review source to ask: set [release] ci.github (reviews come from GitHub)",
        ));
    }
    if req.healthy_stage {
        plan.gates.push(stage_gate(ev.stage_verdict.as_ref()));
    }
    plan.evidence = Box::new(ev);
    plan
}

/// How a gate words each state of its check.
trait Words {
    fn word(&self, s: CheckState) -> &'static str;
}

struct CiWords;
impl Words for CiWords {
    fn word(&self, s: CheckState) -> &'static str {
        match s {
            CheckState::Success => "CI green",
            CheckState::Failure => "CI red",
            CheckState::Pending => "CI still running",
            CheckState::Unknown => "CI state unknown",
        }
    }
}

struct ReviewWords;
impl Words for ReviewWords {
    fn word(&self, s: CheckState) -> &'static str {
        match s {
            CheckState::Success => "reviewed",
            CheckState::Failure => "not reviewed",
            CheckState::Pending => "review pending",
            CheckState::Unknown => "review unknown",
        }
    }
}

fn check_gate(name: &str, check: Option<&Check>, words: &dyn Words, none: &str) -> Gate {
    match check {
        None => Gate::block(name, false, none),
        Some(c) => Gate::block(
            name,
            c.state == CheckState::Success,
            format!("{}: {}", words.word(c.state), c.detail),
        ),
    }
}

fn stage_gate(v: Option<&StageVerdict>) -> Gate {
    const NAME: &str = "healthy_stage";
    match v {
        None => Gate::block(
            NAME,
            false,
            "no approval stage runs this version: nothing to judge it on",
        ),
        Some(v) => match v.verdict {
            StageState::Healthy => Gate::block(NAME, true, v.reason.clone()),
            StageState::Regression => Gate::block(NAME, false, v.reason.clone()),
            StageState::InsufficientData => Gate::block(
                NAME,
                false,
                format!("{} (the stage's data cannot vouch for it)", v.reason),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApprovalRule, PromotionInput, StageInfo, Version, plan_promotion};
    use chrono::{TimeZone, Utc};

    fn plan() -> PromotionPlan {
        let v = |s: &str| Some(Version::parse(s).unwrap());
        let stages = vec![
            StageInfo {
                name: "staging".into(),
                version: v("v1.8.0"),
                last_deploy_seq: None,
                last_deploy_at: None,
                deploys_ordered: true,
                last_deploy: None,
                approval: None,
                low_traffic: None,
            },
            StageInfo {
                name: "production".into(),
                version: v("v1.7.3"),
                last_deploy_seq: None,
                last_deploy_at: None,
                deploys_ordered: true,
                last_deploy: None,
                approval: Some(ApprovalRule { stage: 0 }),
                low_traffic: None,
            },
        ];
        let approvals = [crate::domain::Approval {
            seq: None,
            env: "production".into(),
            version: Version::parse("v1.8.0").unwrap(),
            decision: crate::domain::Decision::Go,
            actor: "alice".into(),
            at: Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap(),
            note: None,
        }];
        plan_promotion(&PromotionInput {
            stages: &stages,
            target: 1,
            explicit: None,
            approvals: &approvals,
            lock_holder: None,
            unjudged_canary: None,
            unsettled: None,
            baseline: None,
            self_approval: None,
            now: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
        })
        .unwrap()
    }

    fn all() -> Requirements {
        Requirements {
            ci: true,
            review: true,
            healthy_stage: true,
        }
    }

    fn healthy() -> StageVerdict {
        StageVerdict {
            verdict: StageState::Healthy,
            reason: "staging since v1.8.0: error rate 0.30% vs 0.31% before — healthy".into(),
            stage: "staging".into(),
            version: "v1.8.0".into(),
            since: None,
            detail: String::new(),
            recent: None,
        }
    }

    fn green() -> PlanEvidence {
        PlanEvidence {
            ci: Some(Check::new(CheckState::Success, "3 checks passed", None)),
            review: Some(Check::new(
                CheckState::Success,
                "2 commits, each through an approved pull request",
                None,
            )),
            stage_verdict: Some(healthy()),
        }
    }

    #[test]
    fn green_evidence_passes_every_evidence_gate() {
        let p = apply_evidence(plan(), all(), green());
        assert!(p.refusal().is_none(), "{:?}", p.gates);
        let names: Vec<&str> = p.gates.iter().map(|g| g.name.as_str()).collect();
        assert!(
            names.ends_with(&["ci", "review", "healthy_stage"]),
            "{names:?}"
        );
        assert_eq!(*p.evidence, green());
    }

    #[test]
    fn red_running_and_unknown_ci_each_block_and_say_so() {
        for (state, word) in [
            (CheckState::Failure, "CI red: build failed"),
            (CheckState::Pending, "CI still running: build failed"),
            (CheckState::Unknown, "CI state unknown: build failed"),
        ] {
            let mut ev = green();
            ev.ci = Some(Check::new(state, "build failed", None));
            let p = apply_evidence(plan(), all(), ev);
            let r = p.refusal().unwrap();
            assert_eq!((r.name.as_str(), r.detail.as_str()), ("ci", word));
        }
    }

    #[test]
    fn a_check_still_being_asked_blocks_as_unknown() {
        let mut ev = green();
        ev.ci = Some(Check::checking());
        let p = apply_evidence(plan(), all(), ev);
        assert_eq!(p.refusal().unwrap().detail, "CI state unknown: checking…");
    }

    #[test]
    fn a_required_gate_without_a_source_blocks_and_names_the_missing_key() {
        let p = apply_evidence(plan(), all(), PlanEvidence::default());
        let failed: Vec<(&str, &str)> = p
            .gates
            .iter()
            .filter(|g| !g.ok)
            .map(|g| (g.name.as_str(), g.detail.as_str()))
            .collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(failed[0].1.contains("[release] ci"), "{failed:?}");
        assert!(failed[2].1.contains("no approval stage"), "{failed:?}");
    }

    #[test]
    fn unreviewed_commits_block_the_review_gate() {
        let mut ev = green();
        ev.review = Some(Check::new(
            CheckState::Failure,
            "1 of 2 commits came in without an approved pull request: a1b2c3d fix prices",
            None,
        ));
        let p = apply_evidence(plan(), all(), ev);
        let r = p.refusal().unwrap();
        assert_eq!(r.name, "review");
        assert!(r.detail.starts_with("not reviewed: 1 of 2"), "{}", r.detail);
    }

    #[test]
    fn a_stage_regression_or_too_little_data_blocks() {
        let mut ev = green();
        let mut v = healthy();
        v.verdict = StageState::Regression;
        v.reason =
            "staging since v1.8.0: error rate 3.9% vs 0.30% before (13x) — regression".into();
        ev.stage_verdict = Some(v.clone());
        let p = apply_evidence(plan(), all(), ev.clone());
        let r = p.refusal().unwrap();
        assert_eq!(
            (r.name.as_str(), r.detail.as_str()),
            ("healthy_stage", v.reason.as_str())
        );
        ev.stage_verdict = Some(StageVerdict::insufficient(
            "staging",
            "v1.8.0",
            "no metrics",
        ));
        let p = apply_evidence(plan(), all(), ev);
        let r = p.refusal().unwrap();
        assert_eq!(r.name, "healthy_stage");
        assert!(r.detail.contains("insufficient data"), "{}", r.detail);
    }

    #[test]
    fn evidence_not_required_is_shown_but_gates_nothing() {
        let mut ev = green();
        ev.ci = Some(Check::new(CheckState::Failure, "build failed", None));
        let p = apply_evidence(plan(), Requirements::default(), ev.clone());
        assert!(p.refusal().is_none());
        assert!(!p.gates.iter().any(|g| g.name == "ci"));
        assert_eq!(*p.evidence, ev);
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["ci"]["state"], "failure");
        assert_eq!(j["ci"]["detail"], "build failed");
        assert_eq!(j["review"]["state"], "success");
        assert_eq!(j["stage_verdict"]["verdict"], "healthy");
    }
}
