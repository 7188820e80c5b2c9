//! The engine's status read: whose action a held lock is, the rollback target it offers, and health while the metrics warm up (on a real demo fleet and store).

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::domain::{ActionKind, Approval, Decision, DeployKind, Outcome};
use crate::store::{NewAudit, SqliteStore, Store};

#[test]
fn a_lock_held_elsewhere_is_for_its_holders_started_action() {
    let t = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
    let lock = LockInfo {
        pid_space: None,
        env: "production".into(),
        holder: "bob@laptop".into(),
        pid: 42,
        host: "laptop".into(),
        acquired_at: t(10),
        audit_id: None,
        expires_at: t(900),
    };
    let u =
        |id: i64, at: i64, actor: &str, env: &str, action: ActionKind| crate::store::Unfinished {
            id,
            at: t(at),
            actor: actor.into(),
            action,
            env: env.into(),
            version: Version::parse("v1").unwrap(),
            from_version: None,
            superseded_by: None,
            unknown: false,
        };
    let rollback = u(7, 10, "bob@laptop", "production", ActionKind::Rollback);
    assert_eq!(
        lock_action("production", &lock, std::slice::from_ref(&rollback)),
        Some(DeployKind::Rollback)
    );
    // Not its record: another holder's, another env's, or one older than
    // the lock by more than clocks may be apart (a crashed earlier attempt).
    // One a little older is: the lock is dated on a shared store's clock,
    // the record on its holder's, which may run behind it.
    let skew = crate::store::HOLDER_SKEW.num_seconds();
    for other in [
        u(8, 10, "alice@desk", "production", ActionKind::Rollback),
        u(9, 10, "bob@laptop", "staging", ActionKind::Rollback),
        u(
            3,
            10 - skew - 1,
            "bob@laptop",
            "production",
            ActionKind::Rollback,
        ),
    ] {
        assert_eq!(lock_action("production", &lock, &[other]), None);
    }
    let behind = u(4, 1, "bob@laptop", "production", ActionKind::Rollback);
    assert_eq!(
        lock_action("production", &lock, &[behind]),
        Some(DeployKind::Rollback)
    );
    // The newest of its records counts.
    let promote = u(11, 12, "bob@laptop", "production", ActionKind::Promote);
    assert_eq!(
        lock_action("production", &lock, &[rollback.clone(), promote]),
        Some(DeployKind::Promote)
    );
    // Newest in the store's order, not by date: a promote appended after
    // the rollback from the holder's other machine, whose clock is behind.
    let skewed = u(12, 9, "bob@laptop", "production", ActionKind::Promote);
    assert_eq!(
        lock_action("production", &lock, &[rollback, skewed]),
        Some(DeployKind::Promote)
    );
    // The newest in the store's order, whatever its clock said.
    let behind = u(12, 11, "bob@laptop", "production", ActionKind::Rollback);
    assert_eq!(
        lock_action(
            "production",
            &lock,
            &[
                u(11, 12, "bob@laptop", "production", ActionKind::Promote),
                behind
            ]
        ),
        Some(DeployKind::Rollback)
    );
    // No record yet (the moment after the lock was taken): a deploy.
    assert_eq!(lock_action("production", &lock, &[]), None);
    // The unsettled deploy named is the newest in the store's order too:
    // alice's clock runs ahead of bob's, whose rollback came after.
    let ahead = u(20, 300, "alice@desk", "production", ActionKind::Promote);
    let later = u(21, 100, "bob@laptop", "production", ActionKind::Rollback);
    let text = unsettled("production", None, &[ahead, later], None).unwrap();
    assert!(
        text.starts_with("the rollback to v1 by bob@laptop"),
        "{text}"
    );
}

/// The rollback target status offers is the one the rollback itself
/// (the full read of the decisions) accepts, also when the only other
/// version production ran is the one its first recorded deploy
/// replaced: a No-Go on it there leaves nothing to offer, without it
/// it is the target.
#[tokio::test]
async fn status_offers_the_rollback_target_the_rollback_accepts() {
    let v = |s: &str| Version::parse(s).unwrap();
    for no_go in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let text = format!(
            "project = \"t\"\n[store]\npath = {:?}\n[[environments]]\nname = \"production\"\nversion = {{ command = [\"echo\", \"v1.1\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
            db.display().to_string()
        );
        let cfg = Config::parse(&text, Path::new("test.toml")).unwrap();
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        let (new, old) = (v("v1.1"), v("v1.0"));
        let id = store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: "alice",
                action: ActionKind::Promote,
                env: "production",
                version: Some(&new),
                from_version: Some(&old),
                outcome: Outcome::Started,
                detail: "promote",
            })
            .unwrap();
        let deploy = DeployRecord {
            seq: None,
            env: "production".into(),
            version: new.clone(),
            from_version: Some(old.clone()),
            at: Utc::now(),
            actor: "alice".into(),
            kind: DeployKind::Promote,
            url: None,
        };
        store.record_deploy(id, &deploy, "ok").unwrap();
        if no_go {
            store
                .record_approval(&Approval {
                    seq: None,
                    env: "production".into(),
                    version: old.clone(),
                    decision: Decision::NoGo,
                    actor: "ops".into(),
                    at: Utc::now(),
                    note: None,
                })
                .unwrap();
        }
        let engine = Engine::with_store(cfg, store);
        let offered = engine.status().await.environments[0]
            .rollback
            .clone()
            .expect("production has a recorded deploy");
        let accepted = engine.rollback_plan("production", None).await.ok();
        assert_eq!(offered.to, accepted.map(|p| p.to), "{}", offered.detail);
        assert_eq!(offered.to.is_none(), no_go, "{}", offered.detail);
    }
}

/// A version a monitoring window caught in an earlier window (not the
/// latest) is no rollback target status offers either: production
/// v1 → v2 (its window fails, no auto-rollback) → v3 over v2; status
/// offers v1, the target `shipdeck rollback` accepts, not v2.
#[tokio::test]
async fn status_offers_no_version_an_earlier_window_caught() {
    let v = |s: &str| Version::parse(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let text = format!(
        "project = \"t\"\n[store]\npath = {:?}\n[[environments]]\nname = \"production\"\nversion = {{ command = [\"echo\", \"v3\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
        db.display().to_string()
    );
    let cfg = Config::parse(&text, Path::new("test.toml")).unwrap();
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let audit = |action, version: &Version, from: Option<&Version>| {
        store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: "alice",
                action,
                env: "production",
                version: Some(version),
                from_version: from,
                outcome: Outcome::Started,
                detail: "start",
            })
            .unwrap()
    };
    let deploy = |version: &Version, from: &Version| {
        let id = audit(ActionKind::Promote, version, Some(from));
        let rec = DeployRecord {
            seq: None,
            env: "production".into(),
            version: version.clone(),
            from_version: Some(from.clone()),
            at: Utc::now(),
            actor: "alice".into(),
            kind: DeployKind::Promote,
            url: None,
        };
        store.record_deploy(id, &rec, "ok").unwrap();
    };
    deploy(&v("v2"), &v("v1"));
    let window = audit(ActionKind::Monitor, &v("v2"), None);
    store
        .audit_finish(window, Utc::now(), Outcome::Failed, "error rate regressed")
        .unwrap();
    deploy(&v("v3"), &v("v2"));
    let engine = Engine::with_store(cfg, store.clone());
    let offered = engine.status().await.environments[0]
        .rollback
        .clone()
        .expect("production has recorded deploys");
    let accepted = engine.rollback_plan("production", None).await.unwrap();
    assert_eq!(accepted.to, v("v1"));
    assert_eq!(offered.to, Some(accepted.to), "{}", offered.detail);
}

/// An engine reading the demo fleet's metrics every second: one
/// environment the fleet serves, one whose label it never mentions.
fn warm_up_engine(metrics_url: &str, dir: &Path) -> Engine {
    let text = format!(
        "project = \"t\"\n[store]\npath = {:?}\n\
         [metrics]\nsource = \"scrape\"\nurl = \"{metrics_url}\"\nstep = \"1s\"\ntimeout = \"2s\"\n\
         [monitor]\nbaseline = \"1m\"\n\
         [[environments]]\nname = \"quiet\"\nmetrics_label = \"nowhere\"\n\
         version = {{ command = [\"echo\", \"v1.0\"] }}\ndeploy = {{ command = [\"true\"] }}\n\
         [[environments]]\nname = \"production\"\n\
         version = {{ command = [\"echo\", \"v1.0\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
        dir.join("s.db").display().to_string()
    );
    Engine::open(Config::parse(&text, Path::new("test.toml")).unwrap()).unwrap()
}

fn env_of<'a>(s: &'a Status, name: &str) -> &'a EnvStatus {
    s.environments.iter().find(|e| e.name == name).unwrap()
}

/// A fresh engine cannot judge health yet: pending, with why and
/// since when (a rate needs two scrapes, then a baseline some steps),
/// until it can — never "unknown", which reads like an alarm. A label
/// the source never mentions is unknown as soon as a rate could have
/// been read.
#[tokio::test(flavor = "multi_thread")]
async fn health_is_pending_while_the_reading_warms_up_then_judged() {
    use crate::domain::health::WarmUpReason;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fleet = crate::demo::spawn(listener, crate::demo::FleetOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Utc::now();
    let engine = warm_up_engine(&format!("http://{}/metrics", fleet.addr), dir.path());

    let s = engine.status().await;
    for name in ["production", "quiet"] {
        let e = env_of(&s, name);
        assert_eq!(e.health, Health::WarmingUp, "{name}: {}", e.health_detail);
        let w = e.warm_up.as_ref().expect("pending says why");
        assert_eq!(w.reason, WarmUpReason::FirstScrape);
        assert_eq!(w.why, "rates need two scrapes");
        assert!(w.since >= started - chrono::Duration::seconds(1), "{w:?}");
        assert!(e.metrics_error.is_none(), "{:?}", e.metrics_error);
        assert!(
            e.health_detail.contains("rates need two scrapes"),
            "{}",
            e.health_detail
        );
    }
    let json = serde_json::to_value(env_of(&s, "production")).unwrap();
    assert_eq!(json["health"], "warming_up");
    assert_eq!(json["warm_up"]["reason"], "first_scrape", "{json}");
    assert!(json["warm_up"]["since"].is_string(), "{json}");

    // Step by step until production is judged (generous: a loaded
    // machine polls late).
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut reasons = Vec::new();
    let mut quiet = Vec::new();
    let last = loop {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let s = engine.status().await;
        quiet.push(env_of(&s, "quiet").health);
        let p = env_of(&s, "production").clone();
        if p.health != Health::WarmingUp {
            assert!(p.warm_up.is_none(), "{:?}", p.warm_up);
            break p;
        }
        let w = p.warm_up.expect("pending says why");
        assert_eq!(w.since, reasons.first().map_or(w.since, |(s, _)| *s));
        reasons.push((w.since, w.reason));
        assert!(
            std::time::Instant::now() < deadline,
            "still pending after 90 s: {reasons:?}"
        );
    };
    // Judged: the demo's traffic is random, and a few steps of errors
    // against a short error-free baseline may read degraded; what
    // matters here is that the warm-up ends in a judgement.
    assert!(
        matches!(last.health, Health::Healthy | Health::Degraded),
        "{:?}: {}",
        last.health,
        last.health_detail
    );
    assert!(
        reasons
            .iter()
            .any(|(_, r)| matches!(r, WarmUpReason::Baseline { need: 3, .. })),
        "{reasons:?}"
    );
    // Silent from the second scrape on: unknown, not pending.
    assert!(quiet.iter().all(|h| *h == Health::Unknown), "{quiet:?}");
}

/// A source that fails is unknown from the first read: no warm-up
/// covers a failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_is_unknown_not_pending() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let engine = warm_up_engine(&format!("http://{addr}/metrics"), dir.path());
    let s = engine.status().await;
    let p = env_of(&s, "production");
    assert_eq!(p.health, Health::Unknown, "{}", p.health_detail);
    assert!(p.warm_up.is_none());
    assert!(p.metrics_error.is_some());
    assert!(p.metrics_note.is_none());
}

/// Warm-up is this process's and the store's youth: samples of an
/// environment kept long ago (a one-shot `status` runs now and then,
/// each polling once) leave a short baseline unknown, not pending
/// forever. Its first scrape is still pending.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_baseline_with_samples_kept_long_ago_is_unknown_not_pending() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fleet = crate::demo::spawn(listener, crate::demo::FleetOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let old = crate::monitor::Sample {
        t: 0.0,
        requests: 200.0,
        errors: 1.0,
        p50_ms: Some(40.0),
        p95_ms: Some(120.0),
        p99_ms: Some(200.0),
    };
    SqliteStore::open(&dir.path().join("s.db"))
        .unwrap()
        .record_sample(
            "production",
            Utc::now() - chrono::Duration::minutes(3),
            &old,
            chrono::Duration::hours(1),
        )
        .unwrap();
    let engine = warm_up_engine(&format!("http://{}/metrics", fleet.addr), dir.path());
    let first = engine.status().await;
    let p = env_of(&first, "production");
    assert_eq!(p.health, Health::WarmingUp, "{}", p.health_detail);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let s = engine.status().await;
        let p = env_of(&s, "production");
        if p.metrics.as_of.is_some() {
            assert_eq!(p.health, Health::Unknown, "{}", p.health_detail);
            assert!(p.warm_up.is_none(), "{:?}", p.warm_up);
            assert!(
                p.health_detail.contains("no baseline yet"),
                "{}",
                p.health_detail
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no step in 60 s");
    }
}

/// A metrics source that cannot be built (its token variable unset) is
/// configured all the same: health is unknown naming why, never the
/// "no metrics source configured" healthy of a fleet without one.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_cannot_be_built_is_unknown_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "project = \"t\"\n[store]\npath = {:?}\n\
         [metrics]\nsource = \"prometheus\"\nurl = \"http://127.0.0.1:9/\"\n\
         token_env = \"SHIPDECK_HEALTH13B_NEVER_SET\"\n\
         [[environments]]\nname = \"production\"\n\
         version = {{ command = [\"echo\", \"v1.0\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
        dir.path().join("s.db").display().to_string()
    );
    let engine = Engine::open(Config::parse(&text, Path::new("test.toml")).unwrap()).unwrap();
    let s = engine.status().await;
    let p = env_of(&s, "production");
    assert_eq!(p.health, Health::Unknown, "{}", p.health_detail);
    let why = p
        .metrics_error
        .as_deref()
        .expect("the source's error shown");
    assert!(why.contains("SHIPDECK_HEALTH13B_NEVER_SET"), "{why}");
    assert!(p.health_detail.contains(why), "{}", p.health_detail);
    assert!(
        !p.health_detail.contains("no metrics source"),
        "{}",
        p.health_detail
    );
}

/// The window another process ran and ended on an environment is in its
/// status (for a console that did not run it); one still open is not.
#[tokio::test]
async fn status_carries_the_last_window_that_ended_whoever_ran_it() {
    let v = |s: &str| Version::parse(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let text = format!(
        "project = \"t\"\n[store]\npath = {:?}\n[[environments]]\nname = \"production\"\nversion = {{ command = [\"echo\", \"v2\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
        db.display().to_string()
    );
    let cfg = Config::parse(&text, Path::new("test.toml")).unwrap();
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    // Whole seconds: the store keeps times as text.
    let started = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 720, 0).unwrap();
    let mut rec = crate::store::MonitorRecord {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        started_at: started,
        finished_at: None,
        verdict: "monitoring".into(),
        metric: None,
        reason: String::new(),
    };
    store.record_monitor(&rec).unwrap();
    let engine = Engine::with_store(cfg, store.clone());
    assert_eq!(engine.status().await.environments[0].last_window, None);
    let ended = started + chrono::Duration::minutes(10);
    rec.finished_at = Some(ended);
    rec.verdict = "regression".into();
    rec.reason = "error rate 4.4% vs 0.36%".into();
    store.record_monitor(&rec).unwrap();
    let w = engine.status().await.environments[0]
        .last_window
        .clone()
        .expect("the ended window");
    assert_eq!(w.version, v("v2"));
    assert_eq!(w.verdict, crate::domain::WindowVerdict::Regression);
    assert_eq!(w.reason, "error rate 4.4% vs 0.36%");
    assert_eq!(w.finished_at, ended);
}

/// Two containers with one host name (docker `--hostname ci`) share pid
/// numbers: a deploy lock held by the other's process of this pid is
/// another promoter's, told apart by its pid space, not this process's own.
#[tokio::test]
async fn a_lock_of_this_pid_and_host_name_in_another_pid_space_is_anothers() {
    // Not skipped where the pid space cannot be read: the suite runs on
    // Linux, where /proc says it, and a test that passes by returning early
    // proves nothing.
    crate::host::pid_space().expect("this process's pid space (/proc/self/ns/pid and the boot id)");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let text = format!(
        "project = \"t\"\n[store]\npath = {:?}\n\
         [[environments]]\nname = \"staging\"\nversion = {{ command = [\"echo\", \"v2\"] }}\ndeploy = {{ command = [\"true\"] }}\n\
         [[environments]]\nname = \"production\"\nversion = {{ command = [\"echo\", \"v1\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
        db.display().to_string()
    );
    let cfg = Config::parse(&text, Path::new("test.toml")).unwrap();
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let now = Utc::now();
    let lock = LockInfo {
        env: "production".into(),
        holder: "bob@ci".into(),
        pid: std::process::id(),
        host: crate::host::hostname(),
        acquired_at: now,
        expires_at: now + chrono::Duration::minutes(10),
        audit_id: None,
        pid_space: None,
    };
    store.try_lock(&lock).unwrap().unwrap();
    let engine = Engine::with_store(cfg, store.clone());
    // Taken by this process: its own, no "other deploy in progress".
    let lock_gate = |p: &PromotionPlan| p.gates.iter().find(|g| g.name == "lock").cloned();
    let own = engine.plan("production", None).await.unwrap();
    assert!(lock_gate(&own).unwrap().ok, "{:?}", own.gates);
    // The same pid and host name in the other container's pid space.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE locks SET pid_space = 'ci other-boot pid:[1]'", [])
        .unwrap();
    let theirs = engine.plan("production", None).await.unwrap();
    let g = lock_gate(&theirs).unwrap();
    assert!(!g.ok, "{:?}", theirs.gates);
    assert!(g.detail.contains("bob@ci"), "{}", g.detail);
}

/// A console whose store is down logs "who else is watching … unreachable"
/// once per outage, and once when it answers again — not on every refresh
/// (68 lines a minute) — while every refresh's view still says it.
#[tokio::test]
async fn a_store_outage_is_logged_once_and_its_end_once() {
    use std::sync::atomic::{AtomicBool, Ordering};

    /// SQLite whose status reads fail, while `down`, as an unreachable
    /// server's do.
    struct ReadsFail(Arc<AtomicBool>);
    impl crate::store::testing::Hook for ReadsFail {
        fn before(&self, call: &'static str) -> Result<(), crate::store::StoreError> {
            if call == "status_reads" && self.0.load(Ordering::SeqCst) {
                return Err(crate::store::testing::unreachable());
            }
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let sink = buf.clone();
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish(),
    );
    let lines = |needle: &str| {
        String::from_utf8_lossy(&buf.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let text = format!(
        "project = \"t\"\n[store]\npath = {:?}\n\
         [[environments]]\nname = \"production\"\nversion = {{ command = [\"echo\", \"v1\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
        db.display().to_string()
    );
    let cfg = Config::parse(&text, Path::new("test.toml")).unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let store = crate::store::testing::Hooked {
        inner: SqliteStore::open(&db).unwrap(),
        hook: ReadsFail(down.clone()),
    };
    let engine = Engine::with_store(cfg, Arc::new(store));
    assert!(engine.status().await.store_error.is_none());
    down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let s = engine.status().await;
        assert!(s.store_error.is_some(), "every view says the store is away");
    }
    assert_eq!(lines("who else is watching"), 1, "one line per outage");
    assert_eq!(lines("connection refused"), 1);
    down.store(false, Ordering::SeqCst);
    for _ in 0..2 {
        assert!(engine.status().await.store_error.is_none());
    }
    assert_eq!(lines("who else is watching: the store answers again"), 1);
    // The next outage is said again.
    down.store(true, Ordering::SeqCst);
    engine.status().await;
    engine.status().await;
    assert_eq!(lines("said once until it answers again"), 2);
}

/// Another container's console with this process's pid and host name
/// (both pid 1 under docker `--hostname ci`) is another console, listed
/// among the others; only this process's own, in its pid space, is not.
#[test]
fn a_console_of_this_pid_and_host_name_in_another_pid_space_is_anothers() {
    let space = crate::host::pid_space().expect("this process's pid space");
    let now = Utc::now();
    let console = |actor: &str, pid_space: Option<String>| crate::store::Presence {
        actor: actor.into(),
        host: crate::host::hostname(),
        pid: std::process::id(),
        pid_space,
        since: now,
        last_seen: now,
    };
    let theirs = console("bob@ci", Some(format!("{space} (another container)")));
    let listed = crate::engine::others(vec![console("me", Some(space)), theirs.clone()]);
    assert_eq!(listed, vec![theirs]);
}
