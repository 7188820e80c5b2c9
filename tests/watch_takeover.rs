//! Within one process (a console), a newer monitoring window of an
//! environment takes over from an older one: the older ends, and the
//! environment stays "monitoring" under the newer one.

use std::time::Duration;

use shipdeck::config::Config;
use shipdeck::demo::{self, FleetOptions};
use shipdeck::domain::EnvState;
use shipdeck::engine::{Engine, EngineError};

/// A demo fleet and two engines on one store — this console and another
/// one's view of it, which knows only the records and whether their
/// watcher lives: staging and production, production monitored, 1 s steps.
async fn two_consoles(project: &str) -> (demo::FleetHandle, tempfile::TempDir, Engine, Engine) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let f = demo::spawn(
        listener,
        FleetOptions {
            seed: 3,
            tick: Duration::from_millis(100),
            ..FleetOptions::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = f.addr;
    let mut s = format!(
        "project = \"{project}\"\n[store]\npath = \"{}\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{a}/metrics\"\nstep = \"1s\"\n",
        dir.path().join("s.db").display()
    );
    for env in ["staging", "production"] {
        s.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\ndeploy = {{ webhook = \"http://{a}/envs/{env}/deploy\" }}\n"
        ));
    }
    s.push_str("monitored = true\n");
    let cfg = Config::parse(&s, std::path::Path::new("<test>")).unwrap();
    let e = Engine::open(cfg.clone()).unwrap();
    let other = Engine::open(cfg).unwrap();
    (f, dir, e, other)
}

#[tokio::test]
async fn a_newer_window_takes_over_and_the_environment_stays_monitored() {
    let (_fleet, _dir, e, other) = two_consoles("takeover").await;

    // Long enough that neither window ends by itself during the test.
    let window = Some(Duration::from_secs(300));
    let first = tokio::spawn({
        let e = e.clone();
        async move { e.watch("production", window, None).await }
    });
    // The first window has started (and claimed the environment).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p = e.status().await.environments[1].clone();
        if p.state == EnvState::Monitoring && p.watcher.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first window never started: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = tokio::spawn({
        let e = e.clone();
        async move { e.watch("production", window, None).await }
    });
    let ended = tokio::time::timeout(Duration::from_secs(60), first)
        .await
        .expect("the older window ends")
        .unwrap();
    match ended {
        Err(EngineError::Refused { gate }) => {
            assert!(gate.detail.contains("took over"), "{}", gate.detail)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.settle(Duration::from_secs(30)).await,
        "the store took the records"
    );
    let st = e.status().await;
    let p = &st.environments[1];
    assert_eq!(p.state, EnvState::Monitoring, "{p:?}");
    assert!(p.watcher.is_some(), "{p:?}");
    let seen = &other.status().await.environments[1];
    assert_eq!(seen.state, EnvState::Monitoring, "{seen:?}");
    assert!(!seen.unwatched, "{seen:?}");
    second.abort();
    let _ = second.await;
    assert!(
        e.settle(Duration::from_secs(30)).await,
        "the store took the records"
    );
    let p = &e.status().await.environments[1];
    assert_eq!(p.state, EnvState::Idle, "{p:?}");
    assert_eq!(p.watcher, None, "{p:?}");
}

/// A monitoring window in progress reads as in progress in the history of
/// anyone sharing the store: its record has no outcome yet, and its
/// watcher's claim lives. (It read "unknown — the process ended before the
/// backend answered" while the window ran: liveness was asked of the
/// deploy lock, which a window does not hold.)
#[tokio::test]
async fn a_running_window_is_in_progress_in_history_not_ended() {
    let (_fleet, dir, e, other) = two_consoles("history").await;
    let window = Some(Duration::from_secs(300));
    let running = tokio::spawn({
        let e = e.clone();
        async move { e.watch("production", window, None).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let entry = loop {
        let h = other.history(Some("production"), 10).await.unwrap();
        if let Some(m) = h
            .into_iter()
            .find(|h| h.action == shipdeck::domain::ActionKind::Monitor)
        {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the window's record never came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        entry.outcome,
        shipdeck::domain::Outcome::Started,
        "{entry:?}"
    );
    assert!(!entry.detail.contains("process ended"), "{entry:?}");
    // The claim dated much later than the record (taken anew after a
    // PostgreSQL restart, on the server's clock): still live, by the link
    // between them, not by comparing the two dates.
    let later = (chrono::Utc::now() + chrono::Duration::minutes(30))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    rusqlite::Connection::open(dir.path().join("s.db"))
        .unwrap()
        .execute(
            "UPDATE locks SET acquired_at = ?1 WHERE env LIKE 'production%'",
            [&later],
        )
        .unwrap();
    let h = other.history(Some("production"), 10).await.unwrap();
    let entry = h
        .into_iter()
        .find(|h| h.action == shipdeck::domain::ActionKind::Monitor)
        .unwrap();
    assert_eq!(
        entry.outcome,
        shipdeck::domain::Outcome::Started,
        "{entry:?}"
    );
    running.abort();
    let _ = running.await;
}
