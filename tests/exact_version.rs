//! Every action carries the version the human saw: the engine ships exactly
//! the plan that was shown, or refuses (exit 3, audited) when it changed in
//! between; an approval of a version the stage no longer runs is refused.

use std::time::Duration;

use chrono::{Timelike, Utc};
use shipdeck::config::Config;
use shipdeck::demo::{self, FleetHandle, FleetOptions};
use shipdeck::domain::{ActionKind, Decision, Outcome, Version};
use shipdeck::engine::{Confirm, Engine, EngineError, Expect};

async fn fleet() -> FleetHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    demo::spawn(
        listener,
        FleetOptions {
            seed: 7,
            deploy_duration: Duration::from_millis(400),
            tick: Duration::from_millis(100),
            ..FleetOptions::default()
        },
    )
    .await
    .unwrap()
}

/// The fleet's four environments; `staging_gates` goes into staging's table.
fn engine(f: &FleetHandle, dir: &tempfile::TempDir, staging_gates: &str) -> Engine {
    let a = f.addr;
    let mut s = format!(
        "project = \"exact\"\n[store]\npath = \"{}\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{a}/metrics\"\nstep = \"1s\"\n",
        dir.path().join("s.db").display()
    );
    for env in ["local", "development", "staging", "production"] {
        s.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\ndeploy = {{ webhook = \"http://{a}/envs/{env}/deploy\", timeout = \"20s\", poll = \"100ms\" }}\n"
        ));
        if env == "staging" {
            s.push_str(staging_gates);
        }
    }
    s.push_str("gates = { requires_approval = true }\n");
    let cfg = Config::parse(&s, std::path::Path::new("<test>")).unwrap();
    Engine::open(cfg).unwrap()
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// Development moves on (a script promotes it): what promoting staging
/// ships changes under a plan already shown or printed.
async fn development_moves_on(e: &Engine) {
    e.promote(
        "development",
        None,
        Confirm::Unseen {
            accept_warnings: true,
        },
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_promotion_whose_plan_changed_since_it_was_shown_is_refused_and_audited() {
    let f = fleet().await;
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&f, &dir, "");
    let shown = e.plan("staging", None).await.unwrap();
    assert_eq!(shown.version, v("v1.8.1"));
    // Before the human says yes, development moves on.
    development_moves_on(&e).await;
    let err = e
        .promote(
            "staging",
            None,
            Confirm::Seen(Expect::from_plan(&shown)),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(
        err.to_string()
            .contains("development now runs v1.9.0, you confirmed v1.8.1"),
        "{err}"
    );
    let h = e.history(Some("staging"), 1).await.unwrap();
    assert_eq!(
        (h[0].action, h[0].outcome),
        (ActionKind::Promote, Outcome::Refused)
    );
    assert!(
        h[0].detail.contains("you confirmed v1.8.1"),
        "{}",
        h[0].detail
    );
    let s = e.status().await;
    assert_eq!(s.environments[2].version, Some(v("v1.8.0")));

    // What was shown, still true, ships.
    let shown = e.plan("staging", None).await.unwrap();
    let rec = e
        .promote(
            "staging",
            None,
            Confirm::Seen(Expect::from_plan(&shown)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(rec.version, v("v1.9.0"));
}

/// A script's `promote --yes` prints the plan in its log and ships exactly
/// it: when what promoting ships changed after the log was printed, the
/// promotion is refused (exit 3, audited), never a different version shipped
/// under a log that names another.
#[tokio::test]
async fn a_scripts_promotion_ships_the_plan_its_log_printed_or_nothing() {
    let f = fleet().await;
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&f, &dir, "");
    let printed = e.plan("staging", None).await.unwrap();
    assert_eq!(printed.version, v("v1.8.1"));
    let yes = |plan: &shipdeck::domain::PromotionPlan| Confirm::Printed {
        expect: Expect::from_plan(plan),
        accept_warnings: true,
    };
    // Between the log line and the deploy, development moves on.
    development_moves_on(&e).await;
    let err = e
        .promote("staging", None, yes(&printed), None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(
        err.to_string()
            .contains("development now runs v1.9.0, the plan printed above ships v1.8.1"),
        "{err}"
    );
    let h = e.history(Some("staging"), 1).await.unwrap();
    assert_eq!(
        (h[0].action, h[0].outcome),
        (ActionKind::Promote, Outcome::Refused)
    );
    let s = e.status().await;
    assert_eq!(s.environments[2].version, Some(v("v1.8.0")));

    // The plan printed now, still true when it ships, ships.
    let printed = e.plan("staging", None).await.unwrap();
    let rec = e
        .promote("staging", None, yes(&printed), None)
        .await
        .unwrap();
    assert_eq!(rec.version, v("v1.9.0"));
}

#[tokio::test]
async fn a_warning_the_human_was_not_shown_is_not_accepted_for_them() {
    let f = fleet().await;
    let dir = tempfile::tempdir().unwrap();
    // A low-traffic window that certainly does not hold now.
    let h = (Utc::now().hour() + 3) % 24;
    let gates = format!(
        "gates = {{ low_traffic_window = \"{h:02}:00-{:02}:00\" }}\n",
        (h + 1) % 24
    );
    let e = engine(&f, &dir, &gates);
    let plan = e.plan("staging", None).await.unwrap();
    assert_eq!(plan.warnings().count(), 1);
    let mut expect = Expect::from_plan(&plan);
    expect.accepted.clear();
    let err = e
        .promote("staging", None, Confirm::Seen(expect), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::NeedsConfirmation { warnings } if warnings[0].name == "low_traffic_window"),
        "{err}"
    );
    let rec = e
        .promote(
            "staging",
            None,
            Confirm::Seen(Expect::from_plan(&plan)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(rec.version, v("v1.8.1"));
}

#[tokio::test]
async fn an_approval_carries_the_version_the_human_saw() {
    let f = fleet().await;
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&f, &dir, "");
    let err = e
        .approve("production", Decision::Go, Some(&v("v1.7.9")), None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("staging now runs v1.8.0, you approved v1.7.9"),
        "{err}"
    );
    let h = e.history(Some("production"), 1).await.unwrap();
    assert_eq!(
        (h[0].action, h[0].outcome),
        (ActionKind::Approve, Outcome::Refused)
    );
    let a = e
        .approve("production", Decision::Go, Some(&v("v1.8.0")), None)
        .await
        .unwrap();
    assert_eq!(a.version, v("v1.8.0"));
}
