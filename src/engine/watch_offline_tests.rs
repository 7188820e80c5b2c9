//! The rollback a monitoring window runs while the store is unreachable
//! from this process, against fakes: an environment whose version source
//! and deploy are files in a temp dir, which "another process" (the test)
//! changes meanwhile.

use std::path::Path;
use std::sync::Arc;

use super::record::{UnlockedRollback, VerdictWrites, Written};
use super::*;
use crate::store::{NewAudit, SqliteStore};

/// An engine with one environment, "prod": it runs what `dir/live` says
/// (`no-answer` in it makes the version source fail); a deploy writes
/// the version there and appends it to `dir/deploys`.
fn engine(dir: &Path) -> Engine {
    let d = dir.display();
    let src = format!(
        r#"project = "offline"
[store]
path = "{d}/s.db"

[[environments]]
name = "prod"
version = {{ command = ["sh", "-c", "v=$(cat {d}/live); [ \"$v\" != no-answer ] && echo $v"] }}
deploy = {{ command = ["sh", "-c", "echo {{version}} > {d}/live; echo {{version}} >> {d}/deploys"], timeout = "30s", poll = "100ms" }}
"#
    );
    let cfg = crate::config::Config::parse(&src, Path::new("<test>")).unwrap();
    let store = SqliteStore::open(&dir.join("s.db")).unwrap();
    Engine::with_store(cfg, Arc::new(store))
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn live(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("live"))
        .unwrap()
        .trim()
        .to_string()
}

fn deploys(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("deploys")).unwrap_or_default()
}

/// Record `rb` as a finished window's writes would once the store is back;
/// the rollback records the audit log then holds.
async fn recorded(e: &Engine, rb: UnlockedRollback) -> Vec<crate::domain::AuditEntry> {
    let store = &e.inner.store;
    let now = Utc::now();
    let record = MonitorRecord {
        seq: None,
        env: "prod".into(),
        version: rb.from.clone(),
        started_at: now,
        finished_at: Some(now),
        verdict: WindowVerdict::Regression.as_str().into(),
        metric: None,
        reason: "error rate up".into(),
    };
    let started = store
        .audit_start(&NewAudit {
            at: now,
            actor: "alice",
            action: ActionKind::Monitor,
            env: "prod",
            version: Some(&rb.from),
            from_version: None,
            outcome: Outcome::Started,
            detail: "window",
        })
        .await
        .unwrap();
    let w = VerdictWrites {
        record: &record,
        started,
        finished: now,
        outcome: Outcome::Failed,
        detail: "regression",
        no_go: None,
        rollback: Some(rb),
        owed: None,
    };
    e.write_verdict(&w, &mut Written::default()).await.unwrap();
    e.history(Some("prod"), 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.action == ActionKind::Rollback)
        .collect()
}

/// Still running what the window judged: rolled back, and the record
/// says it ran without the lock, checked just before, with the race left.
#[tokio::test]
async fn the_version_judged_still_running_is_rolled_back_and_the_race_is_said() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("live"), "v2.0.0\n").unwrap();
    let e = engine(dir.path());
    let rb = e
        .rollback_unreachable(0, &v("v1.0.0"), &v("v2.0.0"), &None)
        .await;
    assert_eq!(live(dir.path()), "v1.0.0");
    let rec = rb.result.as_ref().expect("rolled back");
    assert_eq!(rec.version, v("v1.0.0"));
    assert!(
        rb.done.contains("without the deploy lock")
            && rb
                .done
                .contains("prod still reported v2.0.0 just before it")
            && rb
                .done
                .contains("another process reaching the store could have acted"),
        "{}",
        rb.done
    );
    let h = recorded(&e, rb).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].outcome, Outcome::Succeeded);
    // Automatic, as the window's rollback through the store says.
    assert!(
        h[0].detail
            .starts_with("roll prod back automatically from v2.0.0 to v1.0.0")
            && h[0]
                .detail
                .contains("the monitoring window caught a regression of v2.0.0"),
        "{:?}",
        h[0]
    );
}

/// A partial outage: another process, which reaches the store, promoted
/// v3 while this one could not see its lock. This window's rollback (from
/// v2) must not undo that: nothing is deployed, and the refusal says why
/// and is recorded once the store is back.
#[tokio::test]
async fn a_version_changed_by_someone_else_meanwhile_is_not_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("live"), "v3.0.0\n").unwrap();
    let e = engine(dir.path());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rb = e
        .rollback_unreachable(0, &v("v1.0.0"), &v("v2.0.0"), &Some(tx))
        .await;
    assert_eq!(live(dir.path()), "v3.0.0", "v3 was rolled back");
    assert_eq!(deploys(dir.path()), "", "nothing may be deployed");
    let (outcome, detail, words) = rb.result.clone().expect_err("not rolled back");
    assert_eq!(outcome, Outcome::Refused);
    assert!(
        words.contains("prod reports v3.0.0 now, not v2.0.0 as this window judged")
            && words.contains("not run"),
        "{words}"
    );
    assert!(
        detail.contains("automatic rollback of prod from v2.0.0 to v1.0.0 not run")
            && detail.contains("reports v3.0.0 now"),
        "{detail}"
    );
    let mut said = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        said.push(ev);
    }
    assert!(
        said.iter()
            .any(|ev| matches!(ev, Event::StoreOutage { detail, .. }
            if detail.contains("reports v3.0.0 now"))),
        "{said:?}"
    );
    assert!(
        !said
            .iter()
            .any(|ev| matches!(ev, Event::DeployStarted { .. })),
        "{said:?}"
    );
    let h = recorded(&e, rb).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].outcome, Outcome::Refused);
    assert!(h[0].detail.contains("reports v3.0.0 now"), "{:?}", h[0]);
}

/// What runs cannot be read: nobody can tell whether someone else acted,
/// so nothing is rolled back, and that is said.
#[tokio::test]
async fn an_environment_whose_version_cannot_be_read_is_not_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("live"), "no-answer\n").unwrap();
    let e = engine(dir.path());
    let rb = e
        .rollback_unreachable(0, &v("v1.0.0"), &v("v2.0.0"), &None)
        .await;
    assert_eq!(deploys(dir.path()), "", "nothing may be deployed");
    let (outcome, _, words) = rb.result.expect_err("not rolled back");
    assert_eq!(outcome, Outcome::Refused);
    assert!(
        words.contains("what prod runs now could not be read"),
        "{words}"
    );
}
