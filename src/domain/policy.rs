//! Team policy: `[policy] allow_self_approval = false` keeps the Go of a
//! release from the people who ship it, like GitHub's "prevent
//! self-review". A Go must come from someone other than the person who
//! promoted the version into the approval stage (the recorded deploy) and
//! other than the person promoting it onward.
//!
//! People are told apart by the actor shipdeck records (`[identity] name`,
//! else `$USER@hostname`), compared as [`same_person`] does: ignoring case
//! (host names are case-blind, and no team tells `Alice` from `alice`) and
//! surrounding space; a spelling that differs only so is the same person,
//! which errs towards refusing. That is an identity, not
//! authentication: the rule keeps honest people from approving their own
//! release by mistake; it cannot stop someone who sets another name.

use super::{DeployRecord, Gate, Version};

/// The gate's name in plans, refusals and the audit log.
pub const GATE: &str = "self_approval";

/// Who is involved in one release under `allow_self_approval = false`.
#[derive(Clone, Copy, Debug)]
pub struct SelfApproval<'a> {
    /// Who acts now: gives the Go, or promotes.
    pub actor: &'a str,
    /// The approval stage (usually staging).
    pub stage: &'a str,
    /// Who promoted the version into `stage`, when shipdeck recorded it.
    pub stage_promoter: Option<&'a str>,
}

/// Who brought `version` into `stage`: the actor of the newest recorded
/// deploy of `stage` when that deploy shipped `version`. `None` when the
/// stage's newest deploy is another version (it changed outside shipdeck)
/// or none was recorded.
pub fn stage_promoter<'a>(
    deploys: &'a [DeployRecord],
    stage: &str,
    version: &Version,
) -> Option<&'a str> {
    let of_stage = || deploys.iter().filter(|d| d.env == stage);
    // The last the store recorded, never the latest-dated: each deploy is
    // dated by the clock of the machine that made it. Only when a record
    // lacks the store's order (written around shipdeck, or before the
    // order was kept) are the dates all there is.
    let newest = if of_stage().all(|d| d.seq.is_some()) {
        of_stage().max_by_key(|d| d.seq)
    } else {
        of_stage().max_by_key(|d| d.at)
    };
    newest
        .filter(|d| &d.version == version)
        .map(|d| d.actor.as_str())
}

/// Whether two recorded actors are one person: equal ignoring case and
/// surrounding space (`Alice@Laptop` is `alice@laptop`).
pub fn same_person(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// Why `p.actor` may not give a Go to `version`, if they may not: they
/// promoted it into the approval stage.
pub fn go_refusal(p: &SelfApproval<'_>, version: &Version, target: &str) -> Option<Gate> {
    let promoter = p.stage_promoter.filter(|s| same_person(s, p.actor))?;
    // The promoter as recorded, and who acts now if spelled otherwise.
    let who = if promoter == p.actor {
        promoter.to_string()
    } else {
        format!("{} (recorded as {promoter})", p.actor)
    };
    Some(Gate::block(
        GATE,
        false,
        format!(
            "{who} promoted {version} into {}, so cannot give its Go for {target}: [policy] allow_self_approval = false needs a Go from someone else",
            p.stage
        ),
    ))
}

/// Whether the Go given by `approver` lets `p.actor` promote `version`:
/// not when the approver is the promoter, nor when the approver promoted
/// it into the approval stage.
pub fn promotion_gate(p: &SelfApproval<'_>, version: &Version, approver: &str) -> Gate {
    if same_person(approver, p.actor) {
        Gate::block(
            GATE,
            false,
            format!(
                "the Go for {version} is {approver}'s own, who is promoting it: [policy] allow_self_approval = false needs a Go from someone else"
            ),
        )
    } else if p.stage_promoter.is_some_and(|s| same_person(s, approver)) {
        Gate::block(
            GATE,
            false,
            format!(
                "the Go for {version} is by {approver}, who promoted it into {}: [policy] allow_self_approval = false needs a Go from someone else",
                p.stage
            ),
        )
    } else {
        Gate::block(
            GATE,
            true,
            format!("the Go is by {approver}, not by who ships {version}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeployKind;
    use chrono::{TimeZone, Utc};

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn deploy(env: &str, ver: &str, min: i64, actor: &str) -> DeployRecord {
        DeployRecord {
            seq: None,
            env: env.into(),
            version: v(ver),
            from_version: None,
            at: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
                + chrono::Duration::minutes(min),
            actor: actor.into(),
            kind: DeployKind::Promote,
            url: None,
        }
    }

    fn who<'a>(actor: &'a str, promoter: Option<&'a str>) -> SelfApproval<'a> {
        SelfApproval {
            actor,
            stage: "staging",
            stage_promoter: promoter,
        }
    }

    #[test]
    fn the_stage_promoter_is_who_shipped_that_version_there_last() {
        let d = [
            deploy("staging", "v2", 0, "alice@a"),
            deploy("production", "v2", 5, "carol@c"),
            deploy("staging", "v3", 10, "bob@b"),
        ];
        assert_eq!(stage_promoter(&d, "staging", &v("v3")), Some("bob@b"));
        // Staging moved on from v2: nobody "brought v2 in" any more.
        assert_eq!(stage_promoter(&d, "staging", &v("v2")), None);
        assert_eq!(stage_promoter(&d, "development", &v("v3")), None);
    }

    /// Alice's clock runs 10 min ahead: her v1 deploy into staging is
    /// dated after Bob's v2 one, which the store recorded after hers. Bob
    /// brought v2 in (and may not give it its Go himself), whatever the dates.
    #[test]
    fn the_stage_promoter_is_the_last_the_store_recorded_not_the_latest_dated() {
        let alice = DeployRecord {
            seq: Some(3),
            ..deploy("staging", "v1", 10, "alice@a")
        };
        let bob = DeployRecord {
            seq: Some(5),
            ..deploy("staging", "v2", 5, "bob@b")
        };
        for d in [[alice.clone(), bob.clone()], [bob, alice]] {
            assert_eq!(stage_promoter(&d, "staging", &v("v2")), Some("bob@b"));
            assert_eq!(stage_promoter(&d, "staging", &v("v1")), None);
        }
    }

    /// A deploy the store could not place in its order (no seq: written
    /// around shipdeck, or before the order was kept) is not ranked below
    /// every ordered one: the dates decide, as before the order existed.
    #[test]
    fn a_deploy_without_the_stores_order_falls_back_to_the_dates() {
        let alice = DeployRecord {
            seq: Some(3),
            ..deploy("staging", "v1", 5, "alice@a")
        };
        let unordered = deploy("staging", "v2", 10, "bob@b");
        assert_eq!(unordered.seq, None);
        let d = [alice, unordered];
        assert_eq!(stage_promoter(&d, "staging", &v("v2")), Some("bob@b"));
        assert_eq!(stage_promoter(&d, "staging", &v("v1")), None);
    }

    #[test]
    fn whoever_promoted_into_the_approval_stage_cannot_give_the_go() {
        let g = go_refusal(&who("alice@a", Some("alice@a")), &v("v3"), "production").unwrap();
        assert_eq!(g.name, GATE);
        assert!(!g.ok);
        assert!(
            g.detail.starts_with("alice@a promoted v3 into staging"),
            "{}",
            g.detail
        );
        assert!(g.detail.contains("allow_self_approval = false"));
        assert_eq!(
            go_refusal(&who("bob@b", Some("alice@a")), &v("v3"), "production"),
            None
        );
        // Deployed outside shipdeck: nobody to compare with.
        assert_eq!(
            go_refusal(&who("alice@a", None), &v("v3"), "production"),
            None
        );
    }

    #[test]
    fn a_promoter_cannot_ship_on_their_own_go_nor_on_the_stage_promoters() {
        let own = promotion_gate(&who("alice@a", Some("bob@b")), &v("v3"), "alice@a");
        assert!(!own.ok);
        assert!(own.detail.contains("alice@a's own"), "{}", own.detail);
        let stage = promotion_gate(&who("carol@c", Some("bob@b")), &v("v3"), "bob@b");
        assert!(!stage.ok);
        assert!(
            stage.detail.contains("bob@b, who promoted it into staging"),
            "{}",
            stage.detail
        );
        let fine = promotion_gate(&who("carol@c", Some("bob@b")), &v("v3"), "dave@d");
        assert!(fine.ok, "{}", fine.detail);
    }

    #[test]
    fn identities_are_compared_exactly() {
        // Another machine is another actor: set [identity] name to be one
        // person everywhere.
        let g = promotion_gate(&who("alice@laptop", None), &v("v3"), "alice@desktop");
        assert!(g.ok);
    }
}
