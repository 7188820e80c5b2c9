//! The canary's weight history as the audit log keeps it: the weight it
//! may carry now, and when its current run first took traffic. Pure: the
//! engine reads the entries, these read the records.

use chrono::{DateTime, Utc};

use crate::domain::{Outcome, Version};
use crate::engine::reconcile::RECONCILED;

/// The weight the newest weight record says the canary may carry, from
/// canary audit entries newest first (`(outcome, detail, version)`): a
/// change that succeeded is what runs; one whose outcome is not known
/// may have been applied, so a positive one counts (a rollback setting 0
/// again is harmless) and a 0 does not (the traffic may still be there);
/// a failed change leaves the one before it.
pub(in crate::engine) fn last_weight<'a>(
    entries: impl Iterator<Item = (Outcome, &'a str, Option<&'a Version>)>,
) -> Option<(u8, Option<Version>)> {
    for (outcome, detail, version) in entries {
        let Some(n) = detail
            .strip_prefix("weight ")
            .and_then(|rest| rest.split('%').next())
            .and_then(|n| n.parse::<u8>().ok())
        else {
            continue;
        };
        match outcome {
            Outcome::Succeeded => return Some((n, version.cloned())),
            Outcome::Failed => {}
            _ if n > 0 => return Some((n, version.cloned())),
            _ => {}
        }
    }
    None
}

/// When the canary's current run of `version` first took traffic, from
/// canary audit entries newest first (`(at, outcome, detail, version)`):
/// the oldest weight record above 0 of `version` (set, or asked for with
/// its outcome unknown: it may have been applied; a failed one was not)
/// since the run began. The run began after the newest of: the canary's
/// deploy ("canary deployed: …"), a weight of 0 that took, a record of
/// another version. `None` without such a record.
pub(in crate::engine) fn first_traffic<'a>(
    entries: impl Iterator<Item = (DateTime<Utc>, Outcome, &'a str, Option<&'a Version>)>,
    version: &Version,
) -> Option<DateTime<Utc>> {
    let mut first = None;
    for (at, outcome, detail, v) in entries {
        if v != Some(version) || detail.starts_with("canary deployed") {
            break;
        }
        let Some(n) = detail
            .strip_prefix("weight ")
            .and_then(|rest| rest.split('%').next())
            .and_then(|n| n.parse::<u8>().ok())
        else {
            continue;
        };
        match outcome {
            Outcome::Failed => {}
            Outcome::Succeeded if n == 0 => break,
            _ if n > 0 => first = Some(at),
            _ => {}
        }
    }
    first
}

/// Why a canary the audit log says still has traffic is moved on by no
/// shipdeck, from `env`'s canary and promotion records newest first (as
/// [`crate::store::Store::canary_history`] reads them; other actions are
/// skipped): the
/// canary caught its version and kept its traffic (`auto_rollback` off),
/// or the promotion that set its weight never finished — its shipdeck was
/// killed outright (or interrupted and could not step it back) — or it
/// ended some other way. `None` when the newest weight record leaves the
/// canary without traffic (or there is none). The caller has established
/// that no live process holds the environment's lock: this reads the log
/// only, never whether a holder still runs.
pub(in crate::engine) fn why_unjudged(entries: &[crate::domain::AuditEntry]) -> Option<String> {
    use crate::domain::ActionKind;
    let canary = |e: &&crate::domain::AuditEntry| e.action == ActionKind::Canary;
    let at = entries.iter().position(|e| {
        canary(&e)
            && last_weight(std::iter::once((
                e.outcome,
                e.detail.as_str(),
                e.version.as_ref(),
            )))
            .is_some()
    })?;
    let set = &entries[at];
    let (weight, _) = last_weight(std::iter::once((
        set.outcome,
        set.detail.as_str(),
        set.version.as_ref(),
    )))?;
    if weight == 0 {
        return None;
    }
    let caught = entries[..at].iter().filter(canary).find(|e| {
        e.outcome == Outcome::Failed
            && e.version == set.version
            && e.detail.starts_with("regression")
    });
    if let Some(c) = caught {
        return Some(format!(
            "the canary caught it ({}) and kept its traffic (auto_rollback is off)",
            c.detail
        ));
    }
    let promotion = entries[at..]
        .iter()
        .find(|e| e.action == ActionKind::Promote && e.outcome != Outcome::Refused);
    Some(match promotion {
        // Settled by reconcile ([`RECONCILED`] once the stable track
        // reported the version): its own shipdeck never finished it
        // either, whatever outcome the look recorded.
        Some(p)
            if matches!(p.outcome, Outcome::Started | Outcome::Unknown)
                || p.detail.contains(RECONCILED) =>
        {
            format!(
                "its promotion by {} never finished: the shipdeck that ran it is gone (killed outright, or interrupted and could not step it back)",
                crate::text::sanitize(&p.actor)
            )
        }
        Some(p) => format!(
            "its promotion by {} ended ({}) without stepping it back",
            crate::text::sanitize(&p.actor),
            p.outcome.as_str()
        ),
        None => format!(
            "set by {}, whose promotion the audit log no longer shows",
            crate::text::sanitize(&set.actor)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn the_weight_is_read_past_step_records_and_failed_changes() {
        let canary = v("v1.8.0");
        // Newest first: every step passed at 100%, then the stable
        // track's deploy failed; the weight was set to 100% before that.
        let log = [
            (Outcome::Succeeded, "step 3/3 at 100% passed", Some(&canary)),
            (
                Outcome::Succeeded,
                "weight 100%: step 3/3 (ok)",
                Some(&canary),
            ),
            (Outcome::Unknown, "weight 100%: step 3/3", Some(&canary)),
            (
                Outcome::Succeeded,
                "weight 50%: step 2/3 (ok)",
                Some(&canary),
            ),
        ];
        assert_eq!(
            last_weight(log.into_iter()),
            Some((100, Some(canary.clone())))
        );
        // A failed change to 0 leaves the traffic where it was.
        let log = [
            (
                Outcome::Failed,
                "weight 0%: regression: failed: 502",
                Some(&canary),
            ),
            (Outcome::Unknown, "weight 0%: regression", Some(&canary)),
            (Outcome::Succeeded, "step 1/3 at 10% held", Some(&canary)),
            (
                Outcome::Succeeded,
                "weight 10%: step 1/3 (ok)",
                Some(&canary),
            ),
        ];
        assert_eq!(
            last_weight(log.into_iter()),
            Some((10, Some(canary.clone())))
        );
        // A change to 50% whose outcome is unknown may have landed.
        let log = [
            (Outcome::Unknown, "weight 50%: step 2/3", Some(&canary)),
            (
                Outcome::Succeeded,
                "weight 10%: step 1/3 (ok)",
                Some(&canary),
            ),
        ];
        assert_eq!(
            last_weight(log.into_iter()),
            Some((50, Some(canary.clone())))
        );
        // Back at 0 by a change that succeeded; no weight record at all.
        let log = [(
            Outcome::Succeeded,
            "weight 0%: rollback (ok)",
            Some(&canary),
        )];
        assert_eq!(last_weight(log.into_iter()), Some((0, Some(canary))));
        assert_eq!(last_weight(std::iter::empty()), None);
    }

    #[test]
    fn the_first_traffic_is_the_oldest_weight_of_the_current_run() {
        let canary = v("v1.8.0");
        let other = v("v1.7.3");
        let at = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).unwrap();
        // Newest first: step 2 at 50%, step 1 at 10% (asked at 100 s, set
        // at 101 s), the canary's deploy; before it an earlier run of the
        // same version, and another version's.
        let log = [
            (
                at(160),
                Outcome::Succeeded,
                "step 2/3 at 50% passed",
                Some(&canary),
            ),
            (
                at(131),
                Outcome::Succeeded,
                "weight 50%: step 2/3 (ok)",
                Some(&canary),
            ),
            (
                at(130),
                Outcome::Started,
                "weight 50%: step 2/3",
                Some(&canary),
            ),
            (
                at(101),
                Outcome::Succeeded,
                "weight 10%: step 1/3 (ok)",
                Some(&canary),
            ),
            (
                at(100),
                Outcome::Started,
                "weight 10%: step 1/3",
                Some(&canary),
            ),
            (
                at(90),
                Outcome::Succeeded,
                "canary deployed: the canary reports v1.8.0",
                Some(&canary),
            ),
            (
                at(50),
                Outcome::Succeeded,
                "weight 10%: step 1/3 (ok)",
                Some(&canary),
            ),
            (
                at(10),
                Outcome::Succeeded,
                "weight 10%: step 1/3 (ok)",
                Some(&other),
            ),
        ];
        assert_eq!(first_traffic(log.into_iter(), &canary), Some(at(100)));
        // A weight set to 0 that took ends the run before it; a failed
        // change carried no traffic; an unknown 0 may not have landed.
        let log = [
            (
                at(300),
                Outcome::Unknown,
                "weight 0%: regression",
                Some(&canary),
            ),
            (
                at(250),
                Outcome::Succeeded,
                "weight 10%: step 1/3 (ok)",
                Some(&canary),
            ),
            (
                at(240),
                Outcome::Failed,
                "weight 10%: step 1/3: failed: 503",
                Some(&canary),
            ),
            (
                at(200),
                Outcome::Succeeded,
                "weight 0%: rolled back (ok)",
                Some(&canary),
            ),
            (
                at(100),
                Outcome::Succeeded,
                "weight 10%: step 1/3 (ok)",
                Some(&canary),
            ),
        ];
        assert_eq!(first_traffic(log.into_iter(), &canary), Some(at(250)));
        // Another version's run, or no weight record: the log cannot say.
        let log = [(
            at(100),
            Outcome::Succeeded,
            "weight 10%: step 1/3 (ok)",
            Some(&other),
        )];
        assert_eq!(first_traffic(log.into_iter(), &canary), None);
        assert_eq!(first_traffic(std::iter::empty(), &canary), None);
    }

    fn entry(
        action: crate::domain::ActionKind,
        outcome: Outcome,
        detail: &str,
    ) -> crate::domain::AuditEntry {
        crate::domain::AuditEntry {
            id: 0,
            at: DateTime::<Utc>::UNIX_EPOCH,
            actor: "alice@laptop".into(),
            action,
            env: "production".into(),
            version: Some(v("v1.8.1")),
            from_version: Some(v("v1.7.3")),
            outcome,
            detail: detail.into(),
            finished_at: None,
        }
    }

    #[test]
    fn why_a_canary_with_traffic_is_unjudged_is_read_from_the_log() {
        use crate::domain::ActionKind::{Canary, Promote, Rollback};
        // Newest first: the promotion's shipdeck was killed after 10%.
        let killed = [
            entry(Canary, Outcome::Succeeded, "weight 10%: step 1/3 (ok)"),
            entry(
                Canary,
                Outcome::Succeeded,
                "canary deployed: the canary reports v1.8.1",
            ),
            entry(
                Promote,
                Outcome::Started,
                "promote v1.8.1 from staging to production",
            ),
        ];
        let why = why_unjudged(&killed).expect("traffic nobody judges");
        assert!(
            why.contains("its promotion by alice@laptop never finished"),
            "{why}"
        );
        // Reconciled as unknown since: the same.
        let mut unknown = killed.clone();
        unknown[2].outcome = Outcome::Unknown;
        assert_eq!(why_unjudged(&unknown), Some(why.clone()));
        // Reconciled as succeeded once the stable track reported the
        // version (killed during its deploy, the canary still at 100%):
        // its shipdeck never finished it all the same.
        let mut settled = killed.clone();
        settled[2].outcome = Outcome::Succeeded;
        settled[2].detail.push_str(&format!(
            " — {RECONCILED}: production reported v1.8.1 when shipdeck next looked, and no deploy followed it"
        ));
        assert_eq!(why_unjudged(&settled), Some(why));
        // Caught and kept (auto_rollback off): said so.
        let mut caught = vec![entry(
            Canary,
            Outcome::Failed,
            "regression at 10% (step 1/3): errors",
        )];
        caught.extend(killed.iter().cloned());
        caught[3].outcome = Outcome::Failed;
        let why = why_unjudged(&caught).unwrap();
        assert!(
            why.starts_with("the canary caught it (regression at 10%"),
            "{why}"
        );
        // Stepped back to 0 (a rollback): no traffic, nothing to say.
        let mut back = vec![
            entry(Canary, Outcome::Succeeded, "weight 0%: rollback (ok)"),
            entry(Rollback, Outcome::Succeeded, "roll production back"),
        ];
        back.extend(killed.iter().cloned());
        assert_eq!(why_unjudged(&back), None);
        // A step back to 0 that failed leaves the traffic where it was.
        back[0].outcome = Outcome::Failed;
        assert!(why_unjudged(&back).is_some());
        assert_eq!(why_unjudged(&[]), None);
    }
}
