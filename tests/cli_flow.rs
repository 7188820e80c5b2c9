//! The release process end to end, through the real binary against a real
//! demo fleet: status, promote, the approval gate, approve, promote to
//! production, roll back, and the history of it all.

mod common;

use common::{Fleet, Home};
use serde_json::Value;

fn versions(home: &Home) -> Vec<String> {
    let j = home.run(&["status", "--json"]).expect_code(0).json();
    j["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn the_release_process_end_to_end() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));

    // status: four environments in pipeline order and the pending release.
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    assert_eq!(s["project"], "demo-shop");
    let envs = s["environments"].as_array().unwrap();
    let names: Vec<&str> = envs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["local", "development", "staging", "production"]);
    for e in envs {
        for key in ["version", "health", "checked_at", "state", "metrics"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert_eq!(e["state"], "idle");
        // Reachable, but no metrics yet (rates need two scrapes): health is
        // not claimed before the metrics say so — pending, with why.
        assert_eq!(e["reachable"], true);
        assert_eq!(e["health"], "warming_up", "{e}");
        assert_eq!(e["warm_up"]["reason"], "first_scrape", "{e}");
        // Said as a note, not as a failed source (the console drew a red
        // "✗ metrics" on every column for its first second).
        assert_eq!(e["metrics_error"], Value::Null, "{e}");
        assert!(
            e["metrics_note"]
                .as_str()
                .is_some_and(|n| n.contains("two scrapes")),
            "{e}"
        );
        assert_eq!(e["watcher"], Value::Null);
        assert_eq!(e["unwatched"], false);
        assert_eq!(e["drift"], Value::Null);
        chrono::DateTime::parse_from_rfc3339(e["checked_at"].as_str().unwrap()).unwrap();
    }
    assert_eq!(versions(&home), ["v1.9.0", "v1.8.1", "v1.8.0", "v1.7.3"]);
    let p = &s["pending"];
    assert_eq!(
        (p["from"].as_str(), p["to"].as_str()),
        (Some("staging"), Some("production"))
    );
    assert_eq!(p["version"], "v1.8.0");
    let approval = p["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "approval")
        .expect("approval gate");
    assert_eq!(approval["ok"], false);
    assert!(
        approval["detail"]
            .as_str()
            .unwrap()
            .contains("no Go recorded for v1.8.0")
    );

    // Human table too.
    let out = home.run(&["status"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("production") && out.stdout.contains("✗ approval"),
        "{out:#?}"
    );

    // development → staging.
    let out = home.run(&["promote", "staging", "--yes"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("staging now runs v1.8.1 (was v1.8.0)"),
        "{out:#?}"
    );
    assert_eq!(versions(&home)[2], "v1.8.1");

    // production without a Go: refused, exit 3, nothing deployed.
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(out.stderr.contains("no Go recorded for v1.8.1"), "{out:#?}");
    assert_eq!(versions(&home)[3], "v1.7.3");

    // A No-Go blocks the version.
    home.run(&[
        "approve",
        "production",
        "--reject",
        "--note",
        "p95 too high",
    ])
    .expect_code(0);
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("No-Go by tester@") && out.stderr.contains("p95 too high"),
        "{out:#?}"
    );

    // A Go of that exact version opens the gate.
    let out = home.run(&[
        "approve",
        "production",
        "--note",
        "acceptance passed",
        "--json",
    ]);
    out.expect_code(0);
    let a = out.json();
    assert_eq!(a["approval"]["version"], "v1.8.1");
    assert_eq!(a["approval"]["decision"], "go");
    let out = home.run(&["promote", "production", "--yes", "--json"]);
    out.expect_code(0);
    assert_eq!(out.json()["deployed"]["version"], "v1.8.1");
    assert_eq!(versions(&home), ["v1.9.0", "v1.8.1", "v1.8.1", "v1.8.1"]);

    // rollback returns production to what it ran before.
    let out = home.run(&["rollback", "production", "--yes"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("production rolled back to v1.7.3 (was v1.8.1)"),
        "{out:#?}"
    );
    assert_eq!(versions(&home)[3], "v1.7.3");
    let s = home.run(&["status", "--json"]).json();
    assert_eq!(s["environments"][3]["state"], "rolled_back");

    // Staging moves on (skipping development, recorded as such): the Go is void.
    let out = home.run(&["promote", "staging", "--version", "v1.9.0", "--yes"]);
    out.expect_code(0);
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(out.stderr.contains("no Go recorded for v1.9.0"), "{out:#?}");

    // history: every step with actor and time, newest first.
    let h = home.run(&["history", "--json"]).expect_code(0).json();
    let entries = h["entries"].as_array().unwrap();
    let steps: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["env"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("promote", "production", "refused"),
        ("promote", "staging", "succeeded"),
        ("rollback", "production", "succeeded"),
        ("promote", "production", "succeeded"),
        ("approve", "production", "succeeded"),
        ("promote", "production", "refused"),
        ("reject", "production", "succeeded"),
        ("promote", "production", "refused"),
        ("promote", "staging", "succeeded"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(steps, expected);
    for e in entries {
        assert!(e["actor"].as_str().unwrap().starts_with("tester@"), "{e}");
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
    }
    assert!(
        entries[1]["detail"]
            .as_str()
            .unwrap()
            .contains("skips development"),
        "{}",
        entries[1]
    );
    let out = home.run(&["history", "production"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("v1.8.1 → v1.7.3") && out.stdout.contains("rollback"),
        "{out:#?}"
    );
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some("staging")),
        "only production rows: {out:#?}"
    );
}

/// A rollback by hand leaves the Go standing (SPEC voids it only when
/// staging changes version), and `promote` and `status --json` read the
/// release just taken out as ready to ship again. The engine's plan warns,
/// naming who rolled it back, and asks again: refused without `--yes`.
#[test]
fn a_release_just_rolled_back_from_asks_again_before_it_ships_again() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));
    home.run(&["promote", "staging", "--yes"]).expect_code(0);
    home.run(&["approve", "production"]).expect_code(0);
    home.run(&["promote", "production", "--yes"]).expect_code(0);
    home.run(&["rollback", "production", "--yes"])
        .expect_code(0);
    assert_eq!(versions(&home)[3], "v1.7.3");

    let s = home.run(&["status", "--json"]).expect_code(0).json();
    let p = &s["pending"];
    assert_eq!(p["version"], "v1.8.1");
    let gates = p["gates"].as_array().unwrap();
    let back = gates
        .iter()
        .find(|g| g["name"] == "rolled_back_from")
        .unwrap_or_else(|| panic!("no rolled_back_from gate: {p}"));
    assert_eq!(
        (&back["ok"], &back["severity"]),
        (&Value::Bool(false), &Value::from("warn"))
    );
    let detail = back["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("production was rolled back from v1.8.1 by tester@")
            && detail.ends_with("UTC: this promotes it again"),
        "{detail}"
    );
    // The Go stands: the approval gate still passes.
    let approval = gates.iter().find(|g| g["name"] == "approval").unwrap();
    assert_eq!(approval["ok"], true, "{approval}");

    // Without --yes nobody said yes to it: refused, nothing deployed.
    let out = home.run(&["promote", "production"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("! rolled_back_from")
            && out
                .stderr
                .contains("production was rolled back from v1.8.1 by tester@"),
        "{out:#?}"
    );
    assert_eq!(versions(&home)[3], "v1.7.3");
    // With it, it ships, and the audit record says what was confirmed.
    home.run(&["promote", "production", "--yes"]).expect_code(0);
    assert_eq!(versions(&home)[3], "v1.8.1");
    let h = home
        .run(&["history", "production", "--json"])
        .expect_code(0)
        .json();
    assert!(
        h["entries"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("confirmed despite: production was rolled back from v1.8.1"),
        "{}",
        h["entries"][0]
    );
}

#[test]
fn the_first_stage_needs_an_explicit_version() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));
    let out = home.run(&["promote", "local", "--yes"]);
    out.expect_code(2);
    assert!(out.stderr.contains("local is the first stage"), "{out:#?}");
    let out = home.run(&["promote", "local", "--version", "v2.0.0", "--yes"]);
    out.expect_code(0);
    let s: Value = home.run(&["status", "--json"]).json();
    assert_eq!(s["environments"][0]["version"], "v2.0.0");
}

#[test]
fn ctrl_c_during_a_promotion_leaves_the_audit_log_consistent() {
    // A deploy long enough to be interrupted in the middle, however slow
    // the machine (the signal cuts it short).
    let fleet = Fleet::with_deploy_duration("60s");
    let home = Home::new();
    home.config(&fleet.config(""));
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("shipdeck"));
    cmd.current_dir(home.path())
        .env_remove("SHIPDECK_CONFIG")
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("USER", "tester")
        .args(["promote", "staging", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = common::Running::new(cmd.spawn().unwrap());
    // Interrupt in the middle of the deploy.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let h = home.run(&["history", "--json"]).json();
        if h["entries"][0]["outcome"] == "started" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "promotion never started: {h}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted"),
        "{out:?}"
    );
    let h = home.run(&["history", "--json"]).json();
    let e = &h["entries"][0];
    assert_eq!(e["action"], "promote");
    assert_eq!(e["outcome"], "unknown", "{e}");
    assert!(e["detail"].as_str().unwrap().contains("interrupted"), "{e}");
    // The lock was released: staging is not shown as deploying any more
    // — nor as idle: the promotion's outcome is unknown until staging
    // reports the version.
    let s = home.run(&["status", "--json"]).json();
    assert_eq!(
        s["environments"][2]["state"], "unsettled",
        "{}",
        s["environments"][2]
    );
}

/// Who else has a console open comes from the store, where anyone with
/// write access chose the names: `status --json` shows them sanitised, as
/// the console's header does (escape sequences gone, controls as spaces).
#[test]
fn status_json_sanitises_the_names_of_who_else_is_watching() {
    use shipdeck::store::{Presence, SqliteStore, Store};
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));
    home.run(&["status"]).expect_code(0);
    let store = SqliteStore::open(&home.path().join("data/shipdeck/shipdeck.db")).unwrap();
    let now = chrono::Utc::now();
    store
        .heartbeat(
            &Presence {
                pid_space: None,
                actor: "eve\u{1b}]0;pwned\u{7}@lap\ttop\u{1b}[2J".into(),
                host: "far\u{1b}[31maway\nhost".into(),
                pid: 4242,
                since: now,
                last_seen: now,
            },
            now - chrono::Duration::hours(1),
        )
        .unwrap();
    let s = home.run(&["status", "--json"]);
    s.expect_code(0);
    let watching = s.json()["watching"].clone();
    assert_eq!(watching[0]["actor"], "eve@lap top", "{watching}");
    assert_eq!(watching[0]["host"], "faraway host", "{watching}");
    assert!(!s.stdout.contains("\\u001b"), "{}", s.stdout);
    assert!(!s.stdout.contains("\\u0007"), "{}", s.stdout);
}

/// With every version source down, `status` cannot tell what any promotion
/// would ship: it says so (exit 1), and never that every stage is in step.
#[test]
fn status_with_versions_unknown_never_claims_nothing_is_pending() {
    let home = Home::new();
    // A port nothing listens on: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = format!(
        "project = \"demo-shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{dead}/metrics\"\n"
    );
    for env in ["development", "staging", "production"] {
        cfg.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{dead}/envs/{env}/version\" }}\ndeploy = {{ webhook = \"http://{dead}/envs/{env}/deploy\" }}\n"
        ));
    }
    home.config(&cfg);
    let out = home.run(&["status"]);
    out.expect_code(1);
    assert!(
        !out.stdout
            .contains("every stage runs what the stage before it runs"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("Pending: unknown — what promoting production would ship cannot be told: version source of staging"),
        "{out:#?}"
    );
    let s = home.run(&["status", "--json"]).expect_code(1).json();
    assert_eq!(s["pending"], Value::Null);
    assert!(
        s["environments"][2]["promotion_error"]
            .as_str()
            .is_some_and(|e| e.contains("version source of staging")),
        "{s}"
    );
}

/// SPEC §2: every environment shows its rollback plan before anyone needs
/// it — `status` for humans too, not only the console and `--json`:
/// strategy, target version and the expected time once there is one.
#[test]
fn status_shows_each_environments_rollback_plan() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));
    let out = home.run(&["status"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains(
            "  staging rollback: nothing to roll back to yet; after the next deploy: redeploy v1.8.0, time unknown"
        ),
        "{out:#?}"
    );
    home.run(&["promote", "staging", "--yes"]).expect_code(0);
    let out = home.run(&["status"]);
    out.expect_code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("  staging rollback: "))
        .unwrap_or_else(|| panic!("no rollback line for staging: {out:#?}"));
    assert!(
        line.starts_with("  staging rollback: redeploy v1.8.0, ~"),
        "{line}"
    );
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    assert_eq!(s["environments"][2]["rollback_plan"]["target"], "v1.8.0");
}

/// stdout whose reader is gone (`shipdeck promote … | head -1`, a
/// pipeline's collector that ended): the action is done and recorded, and
/// its exit code stands — not 101 and "stopped on an internal error (a
/// bug)", which a panic on the failed write gave.
#[test]
fn a_closed_stdout_is_no_internal_error_and_keeps_the_exit_code() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));
    let closed = |args: &[&str]| {
        let mut child = home
            .process()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start shipdeck");
        // The reader goes away before anything was written.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for shipdeck");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = closed(&["approve", "production", "--note", "fine"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    let (code, stderr) = closed(&["history", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    // The Go was recorded all the same.
    let h = home.run(&["history", "--json"]).expect_code(0).json();
    assert_eq!(h["entries"][0]["action"], "approve", "{h}");
}
