//! The SQLite store's own record cases (the shared ones are in
//! tests/store_suite.rs, run on both stores): the append-only triggers,
//! approvals with their audit, caught versions against a history walk,
//! presence, the change feed, and two handles on one file.

use super::*;

#[test]
fn audit_log_is_append_only() {
    let (_d, s) = open();
    start(&s, "staging", t(0));
    let r = s.with(|c| c.execute("UPDATE audit SET actor = 'mallory'", []));
    assert!(r.unwrap_err().to_string().contains("append-only"));
    let r = s.with(|c| c.execute("DELETE FROM audit", []));
    assert!(r.is_err());
}

#[test]
fn approvals_round_trip_with_audit() {
    let (_d, s) = open();
    let a = Approval {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        decision: Decision::NoGo,
        actor: "bob".into(),
        at: t(3),
        note: Some("p95 too high in staging".into()),
    };
    let id = s.record_approval(&a).unwrap();
    assert_eq!(
        s.approvals("production").unwrap(),
        vec![Approval { seq: Some(id), ..a }]
    );
    let h = s.history(None, 5).unwrap();
    assert_eq!(h[0].action, ActionKind::Reject);
    assert_eq!(h[0].detail, "No-Go: p95 too high in staging");
}

#[test]
fn caught_versions_are_the_failed_windows_of_one_env_read_in_one_query() {
    let (_d, s) = open();
    let window = |env: &str, ver: &str, at: i64, outcome: Option<Outcome>| {
        let version = v(ver);
        let id = s
            .audit_start(&NewAudit {
                at: t(at),
                actor: "console",
                action: ActionKind::Monitor,
                env,
                version: Some(&version),
                from_version: None,
                outcome: if outcome.is_some() {
                    Outcome::Started
                } else {
                    Outcome::Failed
                },
                detail: "window",
            })
            .unwrap();
        if let Some(o) = outcome {
            s.audit_finish(id, t(at + 1), o, "verdict").unwrap();
        }
    };
    window("production", "v3", 0, Some(Outcome::Failed));
    window("production", "v4", 2, Some(Outcome::Succeeded));
    window("production", "v3", 4, Some(Outcome::Failed));
    window("staging", "v5", 6, Some(Outcome::Failed));
    window("production", "v6", 8, None); // recorded failed at once
    window("production", "v7", 10, Some(Outcome::Unknown));
    // The same answer as walking the whole history, in one read.
    let walked: Vec<Version> = s
        .history(Some("production"), 100_000)
        .unwrap()
        .into_iter()
        .rev()
        .filter(|e| e.action == ActionKind::Monitor && e.outcome == Outcome::Failed)
        .filter_map(|e| e.version)
        .fold(Vec::new(), |mut out, v| {
            if !out.contains(&v) {
                out.push(v);
            }
            out
        });
    assert_eq!(walked, vec![v("v3"), v("v6")]);
    assert_eq!(s.caught_versions("production").unwrap(), walked);
    assert_eq!(s.caught_versions("staging").unwrap(), vec![v("v5")]);
    assert!(s.caught_versions("local").unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn another_handles_approval_ticks_the_change_feed_and_a_sample_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let watcher = SqliteStore::open(&path).unwrap();
    let other = SqliteStore::open(&path).unwrap();
    let mut feed = watcher.changes().unwrap();
    let wait = |feed: &Changes, limit_ms: u64| {
        let mut feed = feed.clone();
        async move {
            tokio::time::timeout(Duration::from_millis(limit_ms), feed.changed())
                .await
                .is_ok()
        }
    };
    let smp = Sample {
        t: 0.0,
        requests: 1.0,
        errors: 0.0,
        p50_ms: None,
        p95_ms: None,
        p99_ms: None,
    };
    other
        .record_sample("production", t(0), &smp, chrono::Duration::minutes(5))
        .unwrap();
    // (A short look: under load the watcher may not have checked yet,
    // so this alone proves little; `feed.count()` below says that the
    // sample never ticked, whenever the watcher got to see it.)
    assert!(!wait(&feed, 1500).await, "a metric sample is no change");
    other.record_approval(&no_go_value()).unwrap();
    let ticked = tokio::time::timeout(Duration::from_secs(30), feed.changed()).await;
    assert_eq!(ticked.ok(), Some(true), "no tick for another's approval");
    assert_eq!(feed.count(), 1, "the sample ticked");
    // The watcher's own store writes are changes too (another console
    // of this machine may be the one that wrote).
    start(&watcher, "staging", t(1));
    assert!(wait(&feed, 30_000).await);
}

#[test]
fn presence_is_kept_by_heartbeats_and_expires_without_them() {
    let (_d, s) = open();
    let seen = |actor: &str, host: &str, pid, at| Presence {
        pid_space: None,
        actor: actor.into(),
        host: host.into(),
        pid,
        since: t(0),
        last_seen: at,
    };
    s.heartbeat(&seen("alice@a", "host-a", 10, t(0)), t(-1))
        .unwrap();
    s.heartbeat(&seen("bob@b", "host-b", 20, t(1)), t(0))
        .unwrap();
    let who: Vec<String> = s
        .present(t(0))
        .unwrap()
        .into_iter()
        .map(|p| p.actor)
        .collect();
    assert_eq!(who, ["alice@a", "bob@b"]);
    // alice's heartbeats stop; bob's go on: after a while only bob is
    // listed, and alice's row is gone for good.
    s.heartbeat(&seen("bob@b", "host-b", 20, t(5)), t(3))
        .unwrap();
    let now = s.present(t(3)).unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].actor, "bob@b");
    assert_eq!((now[0].since, now[0].last_seen), (t(0), t(5)));
    assert_eq!(s.present(t(-10)).unwrap().len(), 1, "alice was pruned");
    // bob quits.
    s.leave("host-b", 20, None).unwrap();
    assert!(s.present(t(-10)).unwrap().is_empty());
}

#[test]
fn a_console_of_this_machine_whose_process_is_gone_is_not_present() {
    let (_d, s) = open();
    let here = crate::host::hostname();
    for pid in [std::process::id(), u32::MAX - 7] {
        let p = Presence {
            pid_space: None,
            actor: "me".into(),
            host: here.clone(),
            pid,
            since: t(0),
            last_seen: t(0),
        };
        s.heartbeat(&p, t(-1)).unwrap();
    }
    let who = s.present(t(0)).unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].pid, std::process::id());
}

#[tokio::test(flavor = "current_thread")]
async fn a_console_opening_or_closing_ticks_the_change_feed_and_a_heartbeat_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let watcher = SqliteStore::open(&path).unwrap();
    let other = SqliteStore::open(&path).unwrap();
    let mut feed = watcher.changes().unwrap();
    let p = Presence {
        pid_space: None,
        actor: "bob@b".into(),
        host: "host-b".into(),
        pid: 20,
        since: t(0),
        last_seen: t(0),
    };
    let ticks = |feed: &Changes| {
        let mut feed = feed.clone();
        async move {
            tokio::time::timeout(Duration::from_millis(1500), feed.changed())
                .await
                .is_ok()
        }
    };
    other.heartbeat(&p, t(-1)).unwrap();
    let ticked = tokio::time::timeout(Duration::from_secs(30), feed.changed()).await;
    assert_eq!(ticked.ok(), Some(true), "no tick for a console that opened");
    assert_eq!(feed.count(), 1);
    let beat = Presence {
        last_seen: t(1),
        ..p.clone()
    };
    other.heartbeat(&beat, t(-1)).unwrap();
    // A short look (under load the watcher may not have checked yet);
    // the count after the next change is what proves the heartbeat
    // never ticked.
    assert!(!ticks(&feed).await, "a heartbeat is no change");
    other.leave("host-b", 20, None).unwrap();
    let ticked = tokio::time::timeout(Duration::from_secs(30), feed.changed()).await;
    assert_eq!(ticked.ok(), Some(true), "no tick for a console that closed");
    assert_eq!(feed.count(), 2, "the heartbeat ticked");
}

#[test]
fn two_handles_on_one_file_interleave_safely() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let b = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let threads: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    start(&s, "staging", t(i));
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(a.history(None, 1000).unwrap().len(), 100);
}

/// `unfinished` rules a long history out by counting starts against
/// starts with an outcome; a log from before `second_finish` holding two
/// outcomes of one deploy must not make up for a deploy killed without any.
#[test]
fn a_killed_deploy_is_unfinished_beside_an_old_deploy_with_two_outcomes() {
    let (_d, s) = open();
    let first = start(&s, "staging", t(0));
    s.audit_finish(first, t(1), Outcome::Succeeded, "done")
        .unwrap();
    // A second outcome of the same start, chained as the log it came from.
    let ver = v("v2");
    s.with(|c| {
        crate::store::sqlite::audit::insert_audit(
            c,
            &NewAudit {
                at: t(1),
                actor: "alice@box",
                action: ActionKind::Promote,
                env: "staging",
                version: Some(&ver),
                from_version: None,
                outcome: Outcome::Succeeded,
                detail: "done",
            },
            Some(first),
            None,
        )
    })
    .unwrap();
    assert!(s.verify().unwrap().intact());
    let killed = start(&s, "production", t(2));
    let open: Vec<i64> = s.unfinished().unwrap().iter().map(|u| u.id).collect();
    assert_eq!(open, vec![killed]);
    s.audit_finish(killed, t(3), Outcome::Failed, "settled")
        .unwrap();
    assert!(s.unfinished().unwrap().is_empty());
}
