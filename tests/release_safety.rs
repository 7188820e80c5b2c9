//! Release safety through the real binary against the demo fleet: rollback
//! never brings a caught release back, the exact version a human approved,
//! drift, `promote --watch`, and monitoring windows that always have a live
//! owner (a killed `watch` leaves no ghost; two watchers never share a deploy).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Fleet, Home};
use serde_json::Value;

/// The fleet's config with a short monitoring window for production.
fn config(fleet: &Fleet, auto_rollback: bool) -> String {
    fleet.config(&format!(
        "[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\nauto_rollback = {auto_rollback}\n"
    ))
}

fn status(home: &Home) -> Value {
    home.run(&["status", "--json"]).json()
}

fn env<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {s}"))
}

fn version_of(home: &Home, name: &str) -> String {
    env(&status(home), name)["version"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// Poll `status` once a step so that the sampler keeps a baseline for
/// every environment (the scrape source has no history of its own).
fn collect_baseline(home: &Home, steps: usize) {
    for _ in 0..steps {
        home.run(&["status", "--json"]);
        std::thread::sleep(Duration::from_millis(1100));
    }
}

/// POST a JSON body to the fleet, as a deploy made outside shipdeck.
fn post(addr: &str, path: &str, body: &str) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the fleet");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 2"), "{answer}");
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn promote_watch_catches_the_bad_release_and_production_returns_to_known_good() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    home.run(&["approve", "production"]).expect_code(0);
    collect_baseline(&home, 8);

    let out = home.run(&["promote", "production", "--yes", "--watch"]);
    out.expect_code(4);
    assert!(out.stdout.contains("REGRESSION"), "{out:#?}");
    assert!(
        out.stdout
            .contains("rolled back automatically: production now runs v1.7.3"),
        "{out:#?}"
    );
    assert!(out.stdout.contains("baseline: 20s before"), "{out:#?}");
    assert!(!out.stderr.contains("Collecting") && !out.stderr.contains("InsufficientData"));
    assert_eq!(version_of(&home, "production"), "v1.7.3");

    // Rolling back again never brings the caught release back.
    let out = home.run(&["rollback", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("nothing to roll back to: v1.7.3 is the last known-good"),
        "{out:#?}"
    );
    let out = home.run(&["rollback", "production", "--to", "v1.8.0", "--yes"]);
    out.expect_code(3);
    assert!(out.stderr.contains("caught v1.8.0"), "{out:#?}");
    let s = status(&home);
    let p = env(&s, "production");
    assert_eq!(p["version"], "v1.7.3");
    assert_ne!(p["state"], "monitoring", "{p}");
    assert_eq!(p["watcher"], Value::Null, "{p}");
    assert!(
        p["rollback"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("nothing to roll back to"),
        "{p}"
    );

    // The point status just took counts: every stage has recent traffic.
    for e in s["environments"].as_array().unwrap() {
        assert!(
            !e["health_detail"]
                .as_str()
                .unwrap()
                .contains("no recent traffic"),
            "{e}"
        );
    }

    // A window right after the rollback judges against a baseline without
    // the incident, and says so.
    let out = home.run(&["watch", "production", "--window", "3s"]);
    assert!(out.stdout.contains("excluding the incident"), "{out:#?}");
}

#[test]
fn a_stage_on_the_bad_release_reads_degraded_against_production() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    // Staging runs the bad release from the start; give it time to turn
    // bad and the sampler a few steps of every environment.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(&home);
        let st = env(&s, "staging");
        if st["health"] == "degraded" {
            assert_eq!(st["health_basis"], "production", "{st}");
            assert!(
                st["health_detail"]
                    .as_str()
                    .unwrap()
                    .contains("vs production's"),
                "{st}"
            );
            assert_eq!(st["reachable"], true);
            assert_ne!(env(&s, "production")["health"], "degraded", "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "staging never degraded: {st}");
        std::thread::sleep(Duration::from_millis(1000));
    }
}

#[test]
fn a_double_rollback_stays_on_the_known_good_version() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, false));
    home.run(&["approve", "production"]).expect_code(0);
    collect_baseline(&home, 8);

    let out = home.run(&["promote", "production", "--yes", "--watch", "--json"]);
    out.expect_code(4);
    let j = out.json();
    assert_eq!(j["watch"]["verdict"], "regression", "{j}");
    assert_eq!(j["watch"]["rolled_back"], Value::Null);
    let s = status(&home);
    assert_eq!(env(&s, "production")["state"], "regression");
    assert_eq!(env(&s, "production")["health"], "degraded");

    let out = home.run(&["rollback", "production", "--yes"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("production rolled back to v1.7.3 (was v1.8.0)"),
        "{out:#?}"
    );
    let out = home.run(&["rollback", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("nothing to roll back to: v1.7.3 is the last known-good"),
        "{out:#?}"
    );
    assert_eq!(version_of(&home, "production"), "v1.7.3");
}

#[test]
fn rollback_off_a_terminal_without_yes_refuses() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    home.run(&["promote", "staging", "--yes"]).expect_code(0);
    let out = home.run(&["rollback", "staging"]);
    out.expect_code(2);
    assert!(out.stderr.contains("add --yes"), "{out:#?}");
    assert_eq!(version_of(&home, "staging"), "v1.8.1");
}

#[test]
fn an_approval_of_a_version_staging_no_longer_runs_is_refused_and_audited() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    let out = home.run(&["approve", "production", "--version", "v1.8.0", "--json"]);
    out.expect_code(0);
    assert_eq!(out.json()["approval"]["version"], "v1.8.0");
    // Staging moves on after the Go.
    home.run(&["promote", "staging", "--yes"]).expect_code(0);
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(out.stderr.contains("no Go recorded for v1.8.1"), "{out:#?}");
    assert_eq!(version_of(&home, "production"), "v1.7.3");

    // A Go for the version the human saw, when staging runs another now.
    let out = home.run(&["approve", "production", "--version", "v1.8.0"]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("staging now runs v1.8.1, you approved v1.8.0"),
        "{out:#?}"
    );
    let h = home.run(&["history", "production", "--json"]).json();
    let e = &h["entries"][0];
    assert_eq!(
        (&e["action"], &e["outcome"]),
        (&"approve".into(), &"refused".into())
    );
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("staging now runs v1.8.1, you approved v1.8.0"),
        "{e}"
    );

    // The Go of what staging runs now ships; nobody watches the monitored
    // deploy, and both the CLI and status say so.
    home.run(&["approve", "production", "--version", "v1.8.1"])
        .expect_code(0);
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("production is monitored, and nobody is watching this deploy yet"),
        "{out:#?}"
    );
    let s = status(&home);
    assert_eq!(env(&s, "production")["unwatched"], true, "{s}");
    assert_eq!(env(&s, "staging")["unwatched"], false, "{s}");
}

#[test]
fn demo_config_reads_the_files_ui_and_names_a_bad_line() {
    let home = Home::new();
    let p = home.path().join("ui.toml");
    std::fs::write(
        &p,
        "[ui]\ntheme = \"light\"\nconfirm_rollback = \"maybe\"\n",
    )
    .unwrap();
    let out = home.run(&["demo", "--config", p.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("ui.toml:3:"), "{out:#?}");
}

#[test]
fn drift_is_shown_when_an_environment_changes_outside_shipdeck() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    home.run(&["promote", "staging", "--yes"]).expect_code(0);
    assert_eq!(env(&status(&home), "staging")["drift"], Value::Null);
    post(
        &fleet.addr,
        "/envs/staging/deploy",
        r#"{"version": "v1.8.0"}"#,
    );
    wait_for("staging to run v1.8.0", 30, || {
        version_of(&home, "staging") == "v1.8.0"
    });
    let s = status(&home);
    assert_eq!(
        env(&s, "staging")["drift"]["detail"],
        "runs v1.8.0; shipdeck last deployed v1.8.1 — changed outside shipdeck"
    );
    let out = home.run(&["status"]);
    assert!(
        out.stdout.contains(
            "staging: runs v1.8.0; shipdeck last deployed v1.8.1 — changed outside shipdeck"
        ),
        "{out:#?}"
    );
}

#[test]
fn a_killed_watch_leaves_no_monitoring_ghost() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    for sig in ["-TERM", "-KILL"] {
        let child = home.spawn(&["watch", "production", "--window", "60s"]);
        wait_for("the window to start", 30, || {
            env(&status(&home), "production")["state"] == "monitoring"
        });
        let s = status(&home);
        let w = env(&s, "production")["watcher"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            w.starts_with("tester@") && w.contains(&format!("pid {}", child.id())),
            "{s}"
        );
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        if sig == "-TERM" {
            assert_eq!(out.status.code(), Some(143), "{out:?}");
        }
        let s = status(&home);
        let p = env(&s, "production");
        assert_eq!(p["state"], "idle", "after {sig}: {p}");
        assert_eq!(p["watcher"], Value::Null, "after {sig}: {p}");
    }
    // SIGTERM let the window end its own record.
    let h = home.run(&["history", "production", "--json"]).json();
    let monitors: Vec<&Value> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "monitor")
        .collect();
    assert_eq!(monitors.len(), 2, "{h}");
    assert_eq!(monitors[1]["outcome"], "unknown", "{h}");
    assert!(
        monitors[1]["detail"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{h}"
    );
}

#[test]
fn two_watchers_never_share_a_window() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    let first = home.spawn(&["watch", "production", "--window", "60s"]);
    wait_for("the first window", 30, || {
        env(&status(&home), "production")["state"] == "monitoring"
    });
    let out = home.run(&["watch", "production", "--window", "5s"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("already watched by tester@")
            && out.stderr.contains(&format!("pid {}", first.id())),
        "{out:#?}"
    );
    signal(&first, "-TERM");
    let _ = first.wait_with_output();
}

/// Run shipdeck on a pseudo-terminal (`script` from util-linux), typing `input`.
fn on_a_terminal(home: &Home, args: &str, input: &str) -> (i32, String) {
    use std::process::{Command, Stdio};
    let ok = Command::new("script")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs `script` (util-linux) for a pseudo-terminal: apt-get install util-linux"
    );
    let bin = assert_cmd::cargo::cargo_bin("shipdeck");
    let mut child = Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{} {args}", bin.display()),
            "/dev/null",
        ])
        .current_dir(home.path())
        .env_remove("SHIPDECK_CONFIG")
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn rollback_on_a_terminal_names_both_versions_and_the_strategy() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    home.run(&["promote", "staging", "--yes"]).expect_code(0);
    let (code, screen) = on_a_terminal(&home, "rollback staging", "n\n");
    assert_eq!(code, 3, "{screen}");
    assert!(
        screen.contains("Roll staging back from v1.8.1 to v1.8.0 (redeploy)? [y/N]"),
        "{screen}"
    );
    assert_eq!(version_of(&home, "staging"), "v1.8.1");
    let (code, screen) = on_a_terminal(&home, "rollback staging", "y\n");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("staging rolled back to v1.8.0"), "{screen}");
}

#[test]
fn a_window_ends_on_time_whatever_the_step() {
    // A 1 h metrics step once made a 5 s window wait for its second tick,
    // half an hour later.
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, false).replace("step = \"1s\"", "step = \"1h\""));
    let started = Instant::now();
    let out = home.run(&["watch", "production", "--window", "5s", "--json"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "a 5 s window took {took:?}: {out:#?}"
    );
    // Too little data in 5 s at a 1 h step: never a pass, and said so
    // (not "collecting the baseline", which a baseline of many steps is not).
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("no step of the window was read: it ended after 5s (the window's length), before its first metrics step (every 1h)"),
        "{out:#?}"
    );
}

/// A pipeline step on a fresh runner (no console ever polled the scrape
/// source, so the store holds no baseline): `promote --yes --watch`
/// collects the baseline first, saying so on stderr, deploys only after
/// it, and its window judges against it — the bad release is caught
/// rather than left live unjudged as insufficient data.
#[test]
fn a_watched_promote_on_a_fresh_runner_collects_its_baseline_before_deploying() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    home.run(&["approve", "production"]).expect_code(0);

    let started = chrono::Utc::now();
    let out = home.run(&["promote", "production", "--yes", "--watch", "--json"]);
    let collecting = "collecting a baseline for production before deploying: ";
    let first = out
        .stderr
        .find(&format!("{collecting}0 of 5 steps, about 5 s left"))
        .unwrap_or_else(|| panic!("no progress at the start: {out:#?}"));
    let done = out
        .stderr
        .find(&format!("{collecting}5 of 5 steps, done"))
        .unwrap_or_else(|| panic!("no end of the collection: {out:#?}"));
    let plan = out
        .stderr
        .find("Pending: v1.8.0")
        .unwrap_or_else(|| panic!("no plan: {out:#?}"));
    assert!(first < done && done < plan, "{out:#?}");
    // The thin-baseline warning no longer fires: the plan has them.
    assert!(
        out.stderr
            .contains("monitoring_baseline  5 baseline steps to judge the deploy against")
            && !out.stderr.contains("baseline steps collected"),
        "{out:#?}"
    );
    out.expect_code(4);
    let j = out.json();
    // Deployed after the collection: five steps of 1 s, at the least.
    let deployed_at: chrono::DateTime<chrono::Utc> =
        j["deployed"]["at"].as_str().unwrap().parse().unwrap();
    assert!(
        (deployed_at - started).num_milliseconds() >= 4_500,
        "deployed {deployed_at}, started {started}: {j}"
    );
    assert!(
        j["watch"]["baseline"]
            .as_str()
            .is_some_and(|b| b.contains("(5 steps)") || b.contains("(6 steps)")),
        "{j}"
    );
    assert_eq!(j["watch"]["verdict"], "regression", "{j}");
    assert_eq!(version_of(&home, "production"), "v1.7.3");
}

/// A scrape source that answers garbage: the watched promote fails before
/// deploying, naming the source and why — exit 1, production untouched,
/// no deploy recorded, no lock left.
#[test]
fn a_watched_promote_whose_source_answers_garbage_deploys_nothing() {
    let fleet = Fleet::start();
    let home = Home::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0_u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<html>not metrics {{{ 12abc</html>\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let cfg = config(&fleet, true).replace(
        &format!("url = \"http://{}/metrics\"", fleet.addr),
        &format!("url = \"http://{garbage}/metrics\""),
    );
    assert!(cfg.contains(&garbage), "{cfg}");
    home.config(&cfg);
    home.run(&["approve", "production"]).expect_code(0);

    let out = home.run(&["promote", "production", "--yes", "--watch"]);
    out.expect_code(1);
    assert!(
        out.stderr.contains(
            "production: could not collect a baseline before deploying: 0 of the 5 steps"
        ) && out
            .stderr
            .contains(&format!("scrape http://{garbage}/metrics"))
            && out.stderr.contains("nothing deployed"),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("deploying production:"), "{out:#?}");
    assert_eq!(version_of(&home, "production"), "v1.7.3");
    let h = home.run(&["history", "production", "--json"]).json();
    let promotes: Vec<_> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "promote")
        .collect();
    assert!(promotes.is_empty(), "{h}");
    let p = env(&status(&home), "production").clone();
    assert_eq!(p["lock"], Value::Null, "{p}");
}

/// Ctrl-C while a watched promote collects its baseline: the usual
/// interrupted exit (130), nothing deployed, no deploy recorded.
#[test]
fn ctrl_c_while_collecting_the_baseline_deploys_nothing() {
    use std::io::BufRead;
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, true));
    home.run(&["approve", "production"]).expect_code(0);
    let mut child = home
        .process()
        .args(["promote", "production", "--yes", "--watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "ended early: {seen}");
        seen.push_str(&line);
        if line.contains("before deploying: 1 of 5 steps") {
            break;
        }
    }
    signal(&child, "-INT");
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{seen}{rest}");
    assert!(rest.contains("interrupted by SIGINT"), "{seen}{rest}");
    assert!(!rest.contains("deploying production:"), "{seen}{rest}");
    assert_eq!(version_of(&home, "production"), "v1.7.3");
    let h = home.run(&["history", "production", "--json"]).json();
    assert!(
        !h["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "promote"),
        "{h}"
    );
}
