//! The approval stage's own evidence end to end: the real binary over the
//! demo fleet. Staging gets the healthy v1.8.1 for a while, then is rolled
//! back onto the fleet's bad v1.8.0; the detector on staging's own metrics
//! since then against before calls it a regression, `status --json` says
//! so in `pending.stage_verdict`, and with `requires_healthy_stage`
//! production refuses it (exit 3, naming the gate) even with a Go.

use std::time::{Duration, Instant};

use crate::common::{Fleet, Home};
use serde_json::Value;

fn config(fleet: &Fleet) -> String {
    fleet
        .config("[monitor]\nwindow = \"1m\"\nbaseline = \"20s\"\nauto_rollback = false\n")
        .replace(
            "gates = { requires_approval = true }",
            "gates = { requires_approval = true, requires_healthy_stage = true }",
        )
}

/// `status --json` every half second for `d` (each run keeps a metrics
/// sample of every environment, as a console would).
fn sample_for(home: &Home, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        home.run(&["status", "--json"]).expect_code(0);
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn stage_verdict(home: &Home) -> Value {
    home.run(&["status", "--json"]).expect_code(0).json()["pending"]["stage_verdict"].clone()
}

#[test]
fn staging_rolled_back_onto_the_bad_release_is_a_regression_that_blocks_production() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet));

    // Nobody recorded when staging got v1.8.0: the stage cannot vouch for it.
    let v = stage_verdict(&home);
    assert_eq!(v["verdict"], "insufficient_data", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("shipdeck recorded no deploy of v1.8.0 to staging"),
        "{v}"
    );
    home.run(&["approve", "production"]).expect_code(0);
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("healthy_stage") && out.stderr.contains("insufficient data"),
        "{out:#?}"
    );

    // A healthy stretch of v1.8.1 on staging, then back onto v1.8.0.
    home.run(&["promote", "staging", "--yes"]).expect_code(0);
    sample_for(&home, Duration::from_secs(25));
    home.run(&["rollback", "staging", "--yes"]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let v = loop {
        let v = stage_verdict(&home);
        if v["verdict"] == "regression" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(v["verdict"], "regression", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("staging since v1.8.0: ") && reason.ends_with("— regression"),
        "{reason}"
    );
    assert_eq!(v["stage"], "staging");
    assert_eq!(v["version"], "v1.8.0");
    assert!(v["since"].is_string(), "{v}");

    // A Go of v1.8.0 does not get it past its stage's own evidence.
    home.run(&["approve", "production", "--note", "looks fine"])
        .expect_code(0);
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("healthy_stage") && out.stderr.contains("regression"),
        "{out:#?}"
    );
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    assert_eq!(s["environments"][3]["version"], "v1.7.3");
    let gate = s["pending"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "healthy_stage")
        .cloned()
        .expect("healthy_stage gate");
    assert_eq!(gate["ok"], false, "{gate}");
    // The human table says it too.
    let out = home.run(&["status"]);
    assert!(out.stdout.contains("✗ healthy_stage"), "{out:#?}");
    // And the refusal is in the audit log, with the gate named.
    let h = home.run(&["history", "--json"]).expect_code(0).json();
    let e = &h["entries"][0];
    assert_eq!(
        (e["action"].as_str(), e["outcome"].as_str()),
        (Some("promote"), Some("refused"))
    );
    assert!(
        e["detail"].as_str().unwrap().starts_with("healthy_stage: "),
        "{e}"
    );
}

/// Production is nobody's approval stage, so no promotion carries its
/// evidence since go-live: its health compared a bad release with its own
/// recent baseline — the same release — and read healthy at 8% errors once
/// the release had been live longer than that baseline (hostile21: after a
/// window that could not judge it). It is judged like a stage now.
#[test]
fn production_live_on_a_bad_release_longer_than_its_baseline_reads_degraded() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(
        &fleet.config("[monitor]\nwindow = \"1m\"\nbaseline = \"20s\"\nauto_rollback = false\n"),
    );
    // A healthy stretch of production's v1.7.3, then staging's v1.8.0 (the
    // fleet's bad release) shipped with a Go and nobody watching.
    sample_for(&home, Duration::from_secs(25));
    home.run(&["approve", "production"]).expect_code(0);
    home.run(&["promote", "production", "--yes"]).expect_code(0);
    let production = |home: &Home| {
        home.run(&["status", "--json"]).expect_code(0).json()["environments"][3].clone()
    };
    assert_eq!(production(&home)["version"], "v1.8.0");
    // Past its own 20 s baseline, which now holds only the bad release.
    sample_for(&home, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(120);
    let p = loop {
        let p = production(&home);
        if p["health"] == "degraded" || Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(p["health"], "degraded", "{p}");
    let detail = p["health_detail"].as_str().unwrap();
    assert!(
        detail.contains("production since v1.8.0: ") && detail.contains("regression"),
        "{detail}"
    );
}
