//! The canary's rollback and the deploy lock, on both stores.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::{PgStore, PgTarget, SqliteStore, Store};

#[path = "../../../tests/common/pg.rs"]
mod pg;

/// A canary environment "prod" whose weight hook takes `hook_s` seconds.
fn config(store: &str, hook_s: u64) -> crate::config::Config {
    let src = format!(
        r#"project = "lock"
{store}
[[environments]]
name = "prod"
rollback = "canary"
version = {{ command = ["echo", "v1.0.0"] }}
deploy = {{ command = ["true"] }}
[environments.canary]
steps = [10, 50, 100]
step_time = "1s"
version = {{ command = ["echo", "v2.0.0"] }}
deploy = {{ command = ["true"] }}
weight = {{ command = ["sh", "-c", "sleep {hook_s}; echo weight {{weight}}"], timeout = "60s" }}
track_label = "track"
"#
    );
    crate::config::Config::parse(&src, std::path::Path::new("<test>")).unwrap()
}

/// The canary's action holds prod's lock (renewed, as `Engine::deploy`
/// does); a rollback of the canary shares it; the canary's action ends
/// while the rollback's weight hook still runs, longer than the lock's
/// margin. The rollback holds the lock now, and must keep it renewed:
/// another promoter asking after the margin has passed is refused.
async fn a_shared_rollback_keeps_the_lock_after_its_owner_ends(
    store: Arc<dyn Store>,
    cfg_store: &str,
) {
    let margin = Duration::from_secs(5);
    let mut e = Engine::with_store(config(cfg_store, 20), store);
    Arc::get_mut(&mut e.inner).unwrap().lock_timing = super::super::deploy::LockTiming {
        renew: Duration::from_millis(250),
        margin,
    };
    let count = |e: &Engine| {
        e.inner
            .held
            .lock()
            .unwrap()
            .get("prod")
            .copied()
            .unwrap_or(0)
    };
    let v1 = Version::parse("v1.0.0").unwrap();
    let v2 = Version::parse("v2.0.0").unwrap();
    // The canary's action: the lock taken and kept, a canary at 10%.
    let lock = e.new_lock("prod", margin);
    let (pid, host) = (lock.pid, lock.host.clone());
    e.inner.store.try_lock(&lock).await.unwrap().unwrap();
    e.hold_lock("prod");
    e.set_canary(
        "prod",
        Some(CanaryState {
            version: v2.clone(),
            weight: 10,
            step: 1,
            steps: 3,
            step_ends_at: None,
            verdict: None,
            unjudged: None,
        }),
    );
    let rolled = std::sync::atomic::AtomicBool::new(false);
    let owner = async {
        let emit = |_: super::super::Event| {};
        e.keep_lock(lock, &emit, async {
            // Until the rollback shares the lock.
            let end = tokio::time::Instant::now() + Duration::from_secs(20);
            while count(&e) < 2 {
                assert!(
                    tokio::time::Instant::now() < end,
                    "the rollback never shared the lock"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        e.release_lock("prod", pid, &host);
    };
    let rollback = async {
        let r = e.rollback_canary(0, &v1, None, true, false).await;
        rolled.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    };
    let rival = async {
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        while count(&e) != 1 {
            assert!(
                tokio::time::Instant::now() < end,
                "the canary's action never ended"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Well past the margin the canary's last renewal gave the lock.
        tokio::time::sleep(margin * 2).await;
        let now = Utc::now();
        let bob = crate::store::LockInfo {
            pid_space: None,
            env: "prod".into(),
            holder: "bob".into(),
            pid: 4242,
            host: "elsewhere".into(),
            acquired_at: now,
            audit_id: None,
            expires_at: now + chrono::Duration::minutes(10),
        };
        let got = e.inner.store.try_lock(&bob).await.unwrap();
        assert!(
            !rolled.load(std::sync::atomic::Ordering::SeqCst),
            "the rollback ended before bob asked: the hook ran too fast for this test"
        );
        got
    };
    let ((), r, bob) = tokio::join!(owner, rollback, rival);
    let rec = r.unwrap().expect("the canary had traffic: rolled back");
    assert_eq!(rec.from_version, Some(v2));
    assert_eq!(
        bob.map_err(|held| held.holder),
        Err(e.inner.actor.clone()),
        "bob took prod's lock while this process's rollback ran"
    );
    assert!(e.settle(Duration::from_secs(20)).await);
    // The rollback's end released it.
    assert_eq!(
        e.inner.store.lock_of("prod", Utc::now()).await.unwrap(),
        None
    );
}

/// Run the case on a runtime of its own (a store connects outside it).
fn run(store: Arc<dyn Store>, cfg_store: &str) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(a_shared_rollback_keeps_the_lock_after_its_owner_ends(
            store, cfg_store,
        ));
}

#[test]
fn sqlite_a_shared_rollback_keeps_the_lock_after_its_owner_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    run(store, &format!("[store]\npath = \"{}\"\n", path.display()));
}

#[test]
fn postgres_a_shared_rollback_keeps_the_lock_after_its_owner_ends() {
    let cluster = pg::shared();
    let url = cluster.url_with_password(&cluster.create_db());
    let store = Arc::new(PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap());
    run(store, "");
}

/// A promotion killed outright mid-canary left prod's canary at 10%; a job
/// retrying `promote` then fills the log with refusals. However many, the
/// canary's weight record still gates promoting (each retry is refused on
/// it), status still says nobody judges the canary, and a rollback still
/// knows to step its traffic back — the weight is not read from a window
/// of the environment's last records, which the refusals push it out of.
async fn an_unjudged_canary_outlasts_any_number_of_refused_promotions(store: Arc<dyn Store>) {
    let e = Engine::with_store(config("", 0), store);
    let v2 = Version::parse("v2.0.0").unwrap();
    let record = |action, outcome, detail: &'static str| {
        let e = &e;
        let v2 = &v2;
        async move {
            e.inner
                .store
                .audit_start(&crate::store::NewAudit {
                    at: Utc::now(),
                    actor: "killed@ci",
                    action,
                    env: "prod",
                    version: Some(v2),
                    from_version: None,
                    outcome,
                    detail,
                })
                .await
                .unwrap();
        }
    };
    // What the killed shipdeck left: its promotion started, the canary's
    // weight set to 10%, nothing after.
    record(ActionKind::Promote, Outcome::Started, "promote to v2.0.0").await;
    record(
        ActionKind::Canary,
        Outcome::Succeeded,
        "weight 10%: step 1/3 (ok)",
    )
    .await;
    for i in 0..=CANARY_LOOKBACK {
        let r = e
            .promote(
                "prod",
                Some(v2.clone()),
                super::super::actions::Confirm::Unseen {
                    accept_warnings: true,
                },
                None,
            )
            .await;
        match r {
            Err(EngineError::Refused { gate }) => assert!(
                gate.detail
                    .contains("prod's canary still sends 10% of the traffic to v2.0.0"),
                "try {i}: {gate:?}"
            ),
            other => panic!("try {i}: promoting on top of the unjudged canary: {other:?}"),
        }
    }
    let h = e
        .inner
        .store
        .history(Some("prod"), CANARY_LOOKBACK)
        .await
        .unwrap();
    assert!(
        h.iter()
            .all(|r| r.action == ActionKind::Promote && r.outcome == Outcome::Refused),
        "the weight record is older than the last {CANARY_LOOKBACK} records"
    );
    let c = e.canary_status(0).await.expect("prod has a canary");
    assert_eq!(c.weight, 10);
    assert!(
        c.unjudged
            .as_deref()
            .is_some_and(|w| w.contains("its promotion by killed@ci never finished")),
        "{c:?}"
    );
    assert_eq!(
        e.recorded_canary("prod").await.unwrap(),
        Some((10, Some(v2.clone())))
    );
}

fn run_unjudged(store: Arc<dyn Store>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(an_unjudged_canary_outlasts_any_number_of_refused_promotions(store));
}

#[test]
fn sqlite_an_unjudged_canary_outlasts_any_number_of_refused_promotions() {
    let dir = tempfile::tempdir().unwrap();
    run_unjudged(Arc::new(
        SqliteStore::open(&dir.path().join("s.db")).unwrap(),
    ));
}

#[test]
fn postgres_an_unjudged_canary_outlasts_any_number_of_refused_promotions() {
    let cluster = pg::shared();
    let url = cluster.url_with_password(&cluster.create_db());
    run_unjudged(Arc::new(
        PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap(),
    ));
}
