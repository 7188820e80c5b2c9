//! The SQLite store on real files: opening (together, on bad paths, after a
//! deletion), migrating older files, the audit chain and its checkpoint,
//! and deploy records.

use super::*;
use chrono::TimeZone;

mod records;

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
}
fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}
fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("sub/shipdeck.db")).unwrap();
    (dir, s)
}

fn start(s: &SqliteStore, env: &str, at: DateTime<Utc>) -> i64 {
    let ver = v("v2");
    s.audit_start(&NewAudit {
        at,
        actor: "alice@box",
        action: ActionKind::Promote,
        env,
        version: Some(&ver),
        from_version: None,
        outcome: Outcome::Started,
        detail: "deploying",
    })
    .unwrap()
}

#[test]
fn processes_opening_a_new_store_together_never_see_it_locked() {
    // A console and a command started at once on a fresh store: one
    // of them was told "database is locked".
    for _ in 0..15 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/shipdeck.db");
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || SqliteStore::open(&path).map(|_| ()))
            })
            .collect();
        for o in opens {
            let r = o.join().unwrap();
            assert!(r.is_ok(), "{r:?}");
        }
    }
}

#[test]
fn a_directory_or_a_device_as_the_store_path_is_named_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let e = SqliteStore::open(dir.path())
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("a directory, not a store file"), "{e}");
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
    let e = SqliteStore::open(Path::new("/dev/zero"))
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let link = dir.path().join("s.db");
    std::os::unix::fs::symlink("/nonexistent-dir/s.db", &link).unwrap();
    let e = SqliteStore::open(&link).err().expect("refused").to_string();
    assert!(
        e.contains("symbolic link to /nonexistent-dir/s.db, whose directory does not exist"),
        "{e}"
    );
}
#[test]
fn a_store_written_by_a_newer_shipdeck_is_refused_and_left_as_it_is() {
    // It was opened as if it were ours: this shipdeck's migrations and
    // triggers ran on a schema it does not know.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shipdeck.db");
    drop(SqliteStore::open(&path).unwrap());
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    c.execute_batch("DROP TRIGGER audit_no_update").unwrap();
    drop(c);
    let e = SqliteStore::open(&path).err().expect("refused");
    assert!(
        matches!(e, StoreError::NewerSchema { found: 99, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("written by a newer shipdeck"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    let c = Connection::open(&path).unwrap();
    let mark: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let trigger: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_no_update'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((mark, trigger), (99, 0), "nothing was changed");
    // Today's mark opens as before.
    c.pragma_update(None, "user_version", SCHEMA_MARK).unwrap();
    drop(c);
    assert!(SqliteStore::open(&path).is_ok());
}

#[test]
fn a_started_action_without_outcome_reads_unknown() {
    let (_d, s) = open();
    start(&s, "staging", t(0));
    let h = s.history(None, 10).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].outcome, Outcome::Unknown);
    assert!(h[0].detail.contains("no outcome recorded"));
}

#[test]
fn outcome_and_deploy_are_recorded_together() {
    let (_d, s) = open();
    let id = start(&s, "staging", t(0));
    let rec = DeployRecord {
        seq: None,
        env: "staging".into(),
        version: v("v2"),
        from_version: Some(v("v1")),
        at: t(1),
        actor: "alice@box".into(),
        kind: DeployKind::Promote,
        url: Some("https://github.com/acme/shop/actions/runs/4242".into()),
    };
    s.record_deploy(id, &rec, "staging reports v2").unwrap();
    let h = s.history(Some("staging"), 10).unwrap();
    assert_eq!(h.len(), 1, "outcome records fold into their action");
    assert_eq!(h[0].outcome, Outcome::Succeeded);
    assert_eq!(h[0].detail, "deploying — staging reports v2");
    assert_eq!(h[0].finished_at, Some(t(1)));
    // Read at the audit record its outcome went in with (start, then it).
    assert_eq!(
        s.deploys(Some("staging")).unwrap(),
        vec![DeployRecord {
            seq: Some(id + 1),
            ..rec
        }]
    );
    assert!(s.history(Some("production"), 10).unwrap().is_empty());
}

#[test]
fn a_store_from_before_deploy_urls_gains_the_column_and_keeps_its_deploys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        let id = start(&s, "staging", t(0));
        let rec = DeployRecord {
            seq: None,
            env: "staging".into(),
            version: v("v2"),
            from_version: None,
            at: t(1),
            actor: "alice".into(),
            kind: DeployKind::Promote,
            url: None,
        };
        s.record_deploy(id, &rec, "staging reports v2").unwrap();
        // The deploys table as an earlier shipdeck wrote it.
        s.with(|c| c.execute_batch("ALTER TABLE deploys DROP COLUMN url"))
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let old = s.deploys(Some("staging")).unwrap();
    assert_eq!((old.len(), old[0].url.as_deref()), (1, None));
    let id = start(&s, "staging", t(2));
    let rec = DeployRecord {
        seq: None,
        env: "staging".into(),
        version: v("v3"),
        from_version: Some(v("v2")),
        at: t(3),
        actor: "alice".into(),
        kind: DeployKind::Promote,
        url: Some("https://ci.example.com/job/deploy/311/".into()),
    };
    s.record_deploy(id, &rec, "staging reports v3").unwrap();
    assert_eq!(
        s.latest_deploys().unwrap(),
        vec![DeployRecord {
            seq: Some(id + 1),
            ..rec
        }]
    );
    assert!(s.verify().unwrap().intact());
}

/// A store from before a lock knew its audit record, opened while a lock
/// is held (a deploy in flight, its record unlinked as an older shipdeck
/// writes it, without a pid space): the columns are added, the lock is
/// kept and still its holder's, read unlinked and matched to its record by
/// time (in progress, not "unknown"); a lock taken from then on is linked
/// and names its pid space.
#[test]
fn a_store_from_before_linked_locks_gains_the_column_and_keeps_a_live_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let now = Utc::now();
    let lock = |env: &str, holder: &str, pid: u32| LockInfo {
        pid_space: None,
        env: env.into(),
        holder: holder.into(),
        pid,
        host: crate::host::hostname(),
        acquired_at: now,
        audit_id: None,
        expires_at: now + chrono::Duration::hours(1),
    };
    let hers = {
        let s = SqliteStore::open(&path).unwrap();
        s.try_lock(&lock("production", "alice@box", std::process::id()))
            .unwrap()
            .unwrap();
        let id = start(&s, "production", now);
        // The locks table as an earlier shipdeck wrote it.
        s.with(|c| {
            c.execute_batch(
                "DROP TRIGGER locks_new_holder; ALTER TABLE locks DROP COLUMN audit_id; ALTER TABLE locks DROP COLUMN pid_space",
            )
        })
        .unwrap();
        id
    };
    let s = SqliteStore::open(&path).unwrap();
    let held = s.lock_of("production", Utc::now()).unwrap().expect("held");
    assert_eq!((held.holder.as_str(), held.audit_id), ("alice@box", None));
    let parent = std::os::unix::process::parent_id();
    assert_eq!(
        s.try_lock(&lock("production", "bob", parent))
            .unwrap()
            .map_err(|l| l.holder),
        Err("alice@box".to_string())
    );
    let h = s.history(Some("production"), 10).unwrap();
    assert_eq!((h[0].id, h[0].outcome), (hers, Outcome::Started));
    // A lock taken now is linked to its record.
    let staging = lock("staging", "alice@box", std::process::id());
    s.try_lock(&staging).unwrap().unwrap();
    let ver = v("v3");
    let linked = s
        .audit_start_held(
            &NewAudit {
                at: now,
                actor: "alice@box",
                action: ActionKind::Promote,
                env: "staging",
                version: Some(&ver),
                from_version: None,
                outcome: Outcome::Started,
                detail: "deploying",
            },
            &staging,
        )
        .unwrap();
    let held = s.lock_of("staging", Utc::now()).unwrap().expect("held");
    assert_eq!(held.audit_id, Some(linked));
    // And it names this process's pid space; the older lock has none.
    let spaces: Vec<Option<String>> = s
        .with(|c| {
            c.prepare("SELECT pid_space FROM locks ORDER BY env")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .unwrap();
    assert_eq!(spaces, vec![None, crate::host::pid_space()]);
    assert!(s.verify().unwrap().intact());
}

/// A store from before presence named its pid space (keyed by host and
/// pid): reopened, the table is rebuilt with the column in its key, the
/// open console kept and read without a space; from then on two consoles
/// of one hostname and pid in two pid spaces are two rows. Opened
/// read-only, an older file's consoles still read.
#[test]
fn a_store_from_before_spaced_presence_keeps_its_consoles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let console = |actor: &str, space: Option<&str>| Presence {
        actor: actor.into(),
        host: "ci".into(),
        pid: 1,
        pid_space: space.map(str::to_string),
        since: t(0),
        last_seen: t(0),
    };
    {
        let s = SqliteStore::open(&path).unwrap();
        // The presence table as an earlier shipdeck wrote it.
        s.with(|c| {
            c.execute_batch(
                "DROP TABLE presence;
                 CREATE TABLE presence (host TEXT NOT NULL, pid INTEGER NOT NULL,
                     actor TEXT NOT NULL, since TEXT NOT NULL, last_seen TEXT NOT NULL,
                     PRIMARY KEY (host, pid));",
            )?;
            c.execute(
                "INSERT INTO presence (host, pid, actor, since, last_seen) VALUES ('ci', 1, 'old', ?1, ?1)",
                [ts(t(0))],
            )
            .map(|_| ())
        })
        .unwrap();
    }
    // Read-only first: no migration, the console still reads.
    let ro = SqliteStore::read_only(&path, "read-only for the test".into()).unwrap();
    assert_eq!(ro.present(t(-1)).unwrap(), vec![console("old", None)]);
    drop(ro);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.present(t(-1)).unwrap(), vec![console("old", None)]);
    // An older shipdeck's heartbeat on the migrated file names a key that
    // is gone: it fails, every time (the README's upgrade note says so).
    let refused = s
        .with(|c| {
            c.execute(
                "INSERT INTO presence (host, pid, actor, since, last_seen) VALUES ('ci', 1, 'old', ?1, ?1)
                 ON CONFLICT (host, pid) DO UPDATE SET actor = excluded.actor, last_seen = excluded.last_seen",
                [ts(t(0))],
            )
        })
        .unwrap_err();
    assert!(refused.to_string().contains("ON CONFLICT"), "{refused}");
    let (one, two) = (
        console("a", Some("ci b pid:[1]")),
        console("b", Some("ci b pid:[2]")),
    );
    s.heartbeat(&one, t(-1)).unwrap();
    s.heartbeat(&two, t(-1)).unwrap();
    assert_eq!(
        s.present(t(-1)).unwrap(),
        vec![console("old", None), one.clone(), two.clone()]
    );
    s.leave("ci", 1, None).unwrap();
    s.leave("ci", 1, two.pid_space.as_deref()).unwrap();
    assert_eq!(s.present(t(-1)).unwrap(), vec![one]);
}

/// A store from before a window's rows named their start record: its
/// windows read without one (judged by their dates), read-only as well;
/// reopened, the column is added and a new window reads with its own.
#[test]
fn a_store_from_before_windows_named_their_start_reads_them_by_dates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        // The table as an earlier shipdeck wrote it, with one window.
        s.with(|c| {
            c.execute_batch(
                "DROP TABLE monitor_runs;
                 CREATE TABLE monitor_runs (id INTEGER PRIMARY KEY AUTOINCREMENT,
                     env TEXT NOT NULL, version TEXT NOT NULL, started_at TEXT NOT NULL,
                     finished_at TEXT, verdict TEXT NOT NULL, metric TEXT, reason TEXT NOT NULL);",
            )?;
            c.execute(
                "INSERT INTO monitor_runs (env, version, started_at, finished_at, verdict, reason)
                 VALUES ('production', 'v2', ?1, ?1, 'healthy', 'in line')",
                [ts(t(0))],
            )
            .map(|_| ())
        })
        .unwrap();
    }
    let ro = SqliteStore::read_only(&path, "read-only for the test".into()).unwrap();
    let old = ro.last_monitor("production").unwrap().unwrap();
    assert_eq!((old.verdict.as_str(), old.seq), ("healthy", None));
    drop(ro);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(old.clone()));
    let window = MonitorRecord {
        seq: Some(41),
        started_at: t(1),
        finished_at: None,
        verdict: "monitoring".into(),
        ..old
    };
    s.record_monitor(&window).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(window));
}

/// The same older file, opened read-only (no migration runs): its locks
/// read unlinked, and status and history still work.
#[test]
fn a_read_only_store_from_before_linked_locks_reads_its_locks_unlinked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let now = Utc::now();
    let hers = {
        let s = SqliteStore::open(&path).unwrap();
        s.try_lock(&LockInfo {
            pid_space: None,
            env: "production".into(),
            holder: "alice@box".into(),
            pid: std::process::id(),
            host: crate::host::hostname(),
            acquired_at: now,
            audit_id: None,
            expires_at: now + chrono::Duration::hours(1),
        })
        .unwrap()
        .unwrap();
        let id = start(&s, "production", now);
        s.with(|c| {
            c.execute_batch(
                "DROP TRIGGER locks_new_holder; ALTER TABLE locks DROP COLUMN audit_id; ALTER TABLE locks DROP COLUMN pid_space",
            )
        })
        .unwrap();
        id
    };
    let s = SqliteStore::read_only(&path, "read-only for the test".into()).unwrap();
    let held = s.lock_of("production", Utc::now()).unwrap().expect("held");
    assert_eq!((held.holder.as_str(), held.audit_id), ("alice@box", None));
    let h = s.history(Some("production"), 10).unwrap();
    assert_eq!((h[0].id, h[0].outcome), (hers, Outcome::Started));
}

/// A read-only store another process holds locked when it is opened (its
/// connection in exclusive locking mode: no reader gets in, SQLite's 5 s
/// wait runs out) can only be read as a snapshot, which never changes:
/// every view says so plainly, with the time it was taken, rather than
/// show a frozen truth as live. Once the store is free it is read live
/// again — the reads and the change feed (which ticks, so a console reads
/// again) — and the note goes.
#[test]
fn a_read_only_store_read_as_a_snapshot_says_so_and_is_read_live_once_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.db");
    let first = start(&SqliteStore::open(&path).unwrap(), "staging", t(0));
    let holder = Connection::open(&path).unwrap();
    holder
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
        .unwrap();
    let before = Utc::now();
    let s = SqliteStore::read_only(&path, "read-only for the test".into()).unwrap();
    let mut feed = s.changes().unwrap();
    let note = s.integrity().unwrap_or_default();
    let at = s.snapshot.lock().unwrap().as_ref().expect("a snapshot").at;
    assert!(at >= before, "{at}");
    let when = format!(
        "shows a snapshot from {} UTC that will not update until the store can be read live",
        at.format("%H:%M:%S")
    );
    assert!(note.contains(&when), "{note}");
    // Still held a while later: still the snapshot, and said.
    std::thread::sleep(CHANGE_CHECK * 2);
    assert_eq!(s.history(None, 10).unwrap().len(), 1);
    assert!(s.integrity().unwrap_or_default().contains(&when));
    // The holder lets go and writes on: read live again.
    drop(holder);
    let second = start(&SqliteStore::open(&path).unwrap(), "staging", t(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticked =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), feed.changed()).await });
    assert_eq!(ticked, Ok(true), "the change feed stayed on the snapshot");
    std::thread::sleep(CHANGE_CHECK * 2);
    let ids: Vec<i64> = s.history(None, 10).unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![second, first]);
    let note = s.integrity().unwrap_or_default();
    assert!(
        !note.contains("snapshot") && note.contains("is read-only"),
        "{note}"
    );
}

#[test]
fn status_reads_only_the_latest_deploy_of_each_environment() {
    let (_d, s) = open();
    for (i, (env, ver)) in [
        ("staging", "v1"),
        ("production", "v1"),
        ("staging", "v2"),
        ("staging", "v3"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = start(&s, env, t(i as i64));
        let rec = DeployRecord {
            seq: None,
            env: env.into(),
            version: v(ver),
            from_version: None,
            at: t(i as i64),
            actor: "alice".into(),
            kind: DeployKind::Promote,
            url: None,
        };
        s.record_deploy(id, &rec, "ok").unwrap();
    }
    let latest: Vec<(String, String)> = s
        .latest_deploys()
        .unwrap()
        .into_iter()
        .map(|d| (d.env, d.version.to_string()))
        .collect();
    assert_eq!(
        latest,
        [
            ("production".to_string(), "v1".to_string()),
            ("staging".to_string(), "v3".to_string())
        ]
    );
    let recent: Vec<String> = s
        .recent_deploys("staging", 2)
        .unwrap()
        .into_iter()
        .map(|d| d.version.to_string())
        .collect();
    assert_eq!(recent, ["v2", "v3"], "the last two, oldest first");
}

/// A No-Go recorded, as the store reads it back (at its audit record).
fn no_go(s: &SqliteStore) -> Approval {
    let a = no_go_value();
    let id = s.record_approval(&a).unwrap();
    Approval { seq: Some(id), ..a }
}

fn no_go_value() -> Approval {
    Approval {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        decision: Decision::NoGo,
        actor: "bob".into(),
        at: t(3),
        note: Some("p95".into()),
    }
}

#[test]
fn an_edited_approvals_table_does_not_turn_a_no_go_into_a_go() {
    let (_d, s) = open();
    let a = no_go(&s);
    s.with(|c| c.execute("UPDATE approvals SET decision = 'go'", []))
        .unwrap();
    assert_eq!(s.approvals("production").unwrap(), vec![a]);
    let why = s.integrity().expect("the disagreement is reported");
    assert!(why.contains("approvals table disagrees"), "{why}");
}

#[test]
fn a_rewritten_audit_record_breaks_the_chain_and_stops_actions() {
    let (_d, s) = open();
    no_go(&s);
    start(&s, "staging", t(4));
    assert!(s.verify().unwrap().intact());
    // Someone else, with the sqlite3 shell.
    Connection::open(&s.path)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER audit_no_update;
             UPDATE audit SET action = 'approve', detail = 'Go' WHERE id = 1;",
        )
        .unwrap();
    let b = s.verify().unwrap().broken.unwrap();
    assert_eq!(b.id, 1);
    let err = s.audit_start(&NewAudit {
        at: t(5),
        actor: "alice",
        action: ActionKind::Promote,
        env: "production",
        version: None,
        from_version: None,
        outcome: Outcome::Started,
        detail: "x",
    });
    assert!(matches!(err, Err(StoreError::Tampered { .. })), "{err:?}");
    assert!(s.integrity().unwrap().contains("broken at record #1"));
}

fn checkpoint(s: &SqliteStore) -> Option<chain::Checkpoint> {
    s.with(|c| Ok(read_checkpoint(c))).unwrap()
}

#[test]
fn an_action_walks_only_what_was_appended_since_the_verified_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        for _ in 0..3 {
            no_go(&s);
        }
        assert!(s.verify().unwrap().intact());
        assert_eq!(checkpoint(&s).map(|c| c.id), Some(3));
    }
    // Record #1, before the checkpoint, rewritten behind shipdeck's back.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER audit_no_update;
             UPDATE audit SET detail = 'Go' WHERE id = 1;",
        )
        .unwrap();
    // A fresh process's action reads from the checkpoint on: it does
    // not walk record #1 again (that is `history --verify`'s job) …
    let s = SqliteStore::open(&path).unwrap();
    no_go(&s);
    assert_eq!(checkpoint(&s).map(|c| c.id), Some(3));
    // … which walks the whole log, names #1, and drops the checkpoint,
    // so that every later action walks the whole log and refuses.
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.verify().unwrap().broken.unwrap().id, 1);
    assert_eq!(checkpoint(&s), None);
    let s = SqliteStore::open(&path).unwrap();
    let err = s.record_approval(&no_go_value());
    assert!(matches!(err, Err(StoreError::Tampered { .. })), "{err:?}");
}

#[test]
fn a_checkpoint_the_chain_does_not_vouch_for_is_reported_not_walked_around() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        no_go(&s);
        no_go(&s);
        assert!(s.verify().unwrap().intact());
    }
    // The guard refuses a forged checkpoint …
    let c = Connection::open(&path).unwrap();
    let e = c
        .execute("UPDATE chain_checkpoint SET hash = 'forged'", [])
        .unwrap_err();
    assert!(e.to_string().contains("only moves forward"), "{e}");
    // … so forge it around the guard: evidence of tampering (of the
    // checkpoint, or of the record it names), reported as a broken chain
    // at its record and kept, never replaced by a fresh walk.
    c.execute_batch(
        "DROP TRIGGER chain_checkpoint_forward;
         UPDATE chain_checkpoint SET hash = 'forged';",
    )
    .unwrap();
    drop(c);
    let s = SqliteStore::open(&path).unwrap();
    let err = s.record_approval(&no_go_value());
    assert!(matches!(err, Err(StoreError::Tampered { .. })), "{err:?}");
    let broken = s.verify().unwrap().broken.unwrap();
    assert_eq!(broken.id, 2, "{broken}");
    assert!(broken.what.contains("checkpoint"), "{broken}");
    assert_eq!(checkpoint(&s).map(|c| c.hash), Some("forged".into()));
}

#[test]
fn a_dropped_checkpoint_leaves_an_integrity_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        no_go(&s);
        no_go(&s);
        assert!(s.verify().unwrap().intact());
    }
    let cp = {
        let s = SqliteStore::open(&path).unwrap();
        checkpoint(&s).unwrap()
    };
    // Record #1 rewritten (hash kept): the walk from the checkpoint does
    // not see it; `history --verify` does, and drops the checkpoint so
    // every later check walks the whole log — with an event naming it.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER audit_no_update;
             UPDATE audit SET detail = 'Go' WHERE id = 1;",
        )
        .unwrap();
    let s = SqliteStore::open(&path).unwrap();
    let report = s.verify().unwrap();
    assert_eq!(report.broken.unwrap().id, 1);
    assert_eq!(checkpoint(&s), None);
    let report = s.verify().unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains(&format!("checkpoint (#{}, {})", cp.id, cp.hash))),
        "{:?}",
        report.warnings
    );
}

#[test]
fn missing_triggers_are_recreated_and_reported_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        no_go(&s);
        s.with(|c| c.execute_batch("DROP TRIGGER audit_no_delete"))
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let why = s.integrity().expect("reported");
    assert!(
        why.contains("audit_no_delete") && why.contains("missing"),
        "{why}"
    );
    let r = s.with(|c| c.execute("DELETE FROM audit", []));
    assert!(r.is_err(), "recreated");
    let report = s.verify().unwrap();
    assert!(report.intact());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("audit_no_delete"))
    );
}

#[test]
fn a_store_from_before_the_chain_is_chained_on_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // The schema and rows an earlier shipdeck wrote.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
               actor TEXT NOT NULL, action TEXT NOT NULL, env TEXT NOT NULL, version TEXT,
               from_version TEXT, outcome TEXT NOT NULL, detail TEXT NOT NULL,
               finishes INTEGER REFERENCES audit(id));
             CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
               BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
               BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
             CREATE TABLE approvals (id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT NOT NULL,
               version TEXT NOT NULL, decision TEXT NOT NULL, actor TEXT NOT NULL,
               at TEXT NOT NULL, note TEXT);
             INSERT INTO audit (at, actor, action, env, version, outcome, detail)
               VALUES ('2026-11-24T12:03:00.000Z', 'bob', 'reject', 'production', 'v2',
                       'succeeded', 'No-Go: p95');
             INSERT INTO approvals (env, version, decision, actor, at, note)
               VALUES ('production', 'v2', 'no_go', 'bob', '2026-11-24T12:03:00.000Z', 'p95');",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let report = s.verify().unwrap();
    assert!(report.intact(), "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("records #1 to #1")),
        "{report:?}"
    );
    let a = s.approvals("production").unwrap();
    assert_eq!(a[0].note.as_deref(), Some("p95"));
    assert_eq!(a[0].decision, Decision::NoGo);
    start(&s, "staging", t(5));
    assert!(s.verify().unwrap().intact());
    assert_eq!(s.integrity(), None);
    // Opening again migrates nothing more.
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.verify().unwrap().warnings.len(), 1);
}

#[test]
fn a_deleted_store_file_stops_writes_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = SqliteStore::open(&path).unwrap();
    no_go(&s);
    std::fs::remove_file(&path).unwrap();
    let err = s.record_approval(&Approval {
        decision: Decision::Go,
        ..no_go_template()
    });
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("deleted") && msg.contains("s.db"), "{msg}");
    assert!(s.integrity().unwrap().contains("deleted"));
    // A new file at the path is another store, not this one.
    let _other = SqliteStore::open(&path).unwrap();
    assert!(s.integrity().unwrap().contains("replaced"));
}

fn no_go_template() -> Approval {
    Approval {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        decision: Decision::NoGo,
        actor: "bob".into(),
        at: t(3),
        note: None,
    }
}

/// The change watcher's connection waits out a store another process holds
/// the way every other connection does (up to 10 s): its old silent 1 s busy
/// timeout gave up on a hold of a second and a half, and the console's live
/// updates went quiet without a word.
#[test]
fn the_change_watcher_waits_for_a_held_store_like_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shipdeck.db");
    drop(SqliteStore::open(&path).unwrap());
    // Another process holding the file exclusively: even reading waits.
    let locker = Connection::open(&path).unwrap();
    locker
        .execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;
             DELETE FROM presence WHERE 0; COMMIT;",
        )
        .unwrap();
    let held = std::time::Instant::now();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1600));
        drop(locker);
    });
    let (watcher, _) = watcher_connection(&path, false).unwrap();
    let version = data_version(&watcher);
    release.join().unwrap();
    assert!(version.is_ok(), "gave up on a 1.6 s hold: {version:?}");
    assert!(held.elapsed() >= Duration::from_millis(1500));
}
