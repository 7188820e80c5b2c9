//! Signals at each step, against the real binary: SIGINT and SIGTERM
//! delivered to `promote` (a) before the backend call, while it reads
//! versions, (b) while the deploy is polling for the new version, (c) once
//! the new version is in place while the deploy command has not returned
//! (it blocks until killed); and to `watch` in the
//! middle of its window. After each: the audit chain verifies, no action
//! lacks an outcome (an interrupted one reads "unknown … interrupted"), no
//! lock or watch claim is left held (the next `promote`/`watch` is not
//! refused), and the process was not killed by the signal nor panicked:
//! a promote exits 128 + the signal's number.
//!
//! The environments are commands over files, so that each step can be made
//! slow on purpose and the signal lands where it is meant to.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Fleet, Home};
use serde_json::Value;

const SIGNALS: [&str; 2] = ["-INT", "-TERM"];

/// dev runs `dev.txt`; prod runs `prod.txt`. Reading prod's version sleeps
/// `read-delay` seconds (touching `reading` first, when there is one).
/// The deploy touches `deploying`; it returns at once and writes the
/// version `deploy-delay` seconds later (shipdeck polls meanwhile) — or,
/// when `deploy-block` exists, writes it at once and then blocks until
/// killed.
fn setup(home: &Home) {
    let p = home.path();
    std::fs::write(p.join("dev.txt"), "v2.0.0\n").unwrap();
    std::fs::write(p.join("prod.txt"), "v1.0.0\n").unwrap();
    std::fs::write(
        p.join("read-prod"),
        r#"#!/bin/sh
cd "$(dirname "$0")"
if [ -f read-delay ]; then touch reading; fi
sleep "$(cat read-delay 2>/dev/null || echo 0)"
cat prod.txt
"#,
    )
    .unwrap();
    std::fs::write(
        p.join("deploy-prod"),
        r#"#!/bin/sh
cd "$(dirname "$0")"
if [ -f deploy-block ]; then
  echo "$1" > prod.txt
  touch deploying
  exec sleep 300
fi
touch deploying
d=$(cat deploy-delay 2>/dev/null || echo 0)
( sleep "$d"; echo "$1" > prod.txt ) >/dev/null 2>&1 &
"#,
    )
    .unwrap();
    for f in ["read-prod", "deploy-prod"] {
        let _ = Command::new("chmod").arg("+x").arg(p.join(f)).status();
    }
    home.config(&format!(
        r#"project = "signals"
[[environments]]
name = "dev"
version = {{ command = ["cat", "{dir}/dev.txt"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "prod"
version = {{ command = ["{dir}/read-prod"], timeout = "30s" }}
deploy = {{ command = ["{dir}/deploy-prod", "{{version}}"], timeout = "60s", poll = "200ms" }}
"#,
        dir = p.display()
    ));
}

fn kill(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig}");
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The process handled the signal: it exited with a code, not by the
/// signal, and did not panic.
#[track_caller]
fn handled(what: &str, out: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "{what}: killed by the signal, not handled: {out:?}"
    );
    assert_ne!(out.status.code(), Some(101), "{what}: panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

/// The log afterwards: the chain verifies, every action has an outcome (an
/// interrupted one "unknown … interrupted"). Returns the records counted.
#[track_caller]
fn log_checks(home: &Home, what: &str) -> usize {
    let v = home.run(&["history", "--verify"]);
    assert_eq!(v.code, 0, "{what}: the chain must verify: {v:#?}");
    let h = home.run(&["history", "--json"]).json();
    let entries = h["entries"].as_array().cloned().unwrap_or_default();
    for e in &entries {
        let outcome = e["outcome"].as_str().unwrap_or("");
        assert_ne!(outcome, "started", "{what}: an action without outcome: {e}");
        // (A monitoring window that ended without enough data is also
        // "unknown", with its reason: only actions are held to this.)
        if outcome == "unknown" && e["action"] != "monitor" {
            assert!(
                e["detail"].as_str().unwrap_or("").contains("interrupted"),
                "{what}: {e}"
            );
        }
    }
    entries.len()
}

/// The next promote of prod is not refused (no lock left held) and ships.
#[track_caller]
fn next_promote_goes_ahead(home: &Home, what: &str) {
    for f in [
        "read-delay",
        "reading",
        "deploy-delay",
        "deploy-block",
        "deploying",
    ] {
        let _ = std::fs::remove_file(home.path().join(f));
    }
    // Back to the old version, so that there is something to ship.
    std::fs::write(home.path().join("prod.txt"), "v1.0.0\n").unwrap();
    let out = home.run(&["promote", "prod", "--yes"]);
    assert_ne!(out.code, 3, "{what}: a lock was left held: {out:#?}");
    assert_eq!(out.code, 0, "{what}: {out:#?}");
}

#[derive(Default)]
struct Tally {
    tried: usize,
    passed: usize,
}

fn promote_scenario(t: &mut Tally, step: &str, sig: &str) {
    t.tried += 1;
    let home = Home::new();
    setup(&home);
    home.run(&["status"]).expect_code(0);
    let p = home.path();
    let what = format!("promote, {step}, {sig}");
    let child = match step {
        // The delays are long so that the signal lands in the step however
        // slow the machine is; they cost nothing, the signal cuts them short.
        "reading versions" => {
            std::fs::write(p.join("read-delay"), "30").unwrap();
            let c = home.spawn(&["promote", "prod", "--yes"]);
            wait_for("prod's version read", Duration::from_secs(60), || {
                p.join("reading").exists()
            });
            kill(&c, sig);
            c
        }
        "polling the deploy" => {
            std::fs::write(p.join("deploy-delay"), "30").unwrap();
            let c = home.spawn(&["promote", "prod", "--yes"]);
            wait_for("the deploy to start", Duration::from_secs(60), || {
                p.join("deploying").exists()
            });
            // A few polls in (200 ms each); the deploy lasts 30 s.
            std::thread::sleep(Duration::from_millis(800));
            kill(&c, sig);
            c
        }
        "new version in place, deploy not returned" => {
            std::fs::write(p.join("deploy-block"), "").unwrap();
            let c = home.spawn(&["promote", "prod", "--yes"]);
            wait_for("the deploy to start", Duration::from_secs(60), || {
                p.join("deploying").exists()
            });
            kill(&c, sig);
            c
        }
        other => unreachable!("{other}"),
    };
    let out = child.wait_with_output().unwrap();
    handled(&what, &out);
    // Each step lasts until the signal cuts it short: the promote cannot
    // have finished first.
    let code = if sig == "-INT" { 130 } else { 143 };
    assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
    let h = home.run(&["history", "--json"]).json();
    let record = h["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "promote"))
        .cloned();
    if step != "reading versions" {
        let e = record.clone().unwrap_or(Value::Null);
        assert_eq!(e["outcome"], "unknown", "{what}: {e}");
        assert!(
            e["detail"].as_str().unwrap_or("").contains("interrupted"),
            "{what}: {e}"
        );
    }
    let promote = record
        .map(|e| format!("{} ({})", e["outcome"], e["detail"]))
        .unwrap_or_else(|| "no record".into());
    println!(
        "{what}: exit {:?}; promote record: {promote}",
        out.status.code()
    );
    let records = log_checks(&home, &what);
    // Before the backend call nothing was started, so nothing is recorded;
    // from the deploy on, the action is.
    assert!(
        records > 0 || step == "reading versions",
        "{what}: the action was recorded"
    );
    next_promote_goes_ahead(&home, &what);
    log_checks(&home, &what);
    t.passed += 1;
}

/// Ctrl-C once the new version is in place: the log reads "unknown", and
/// the environment then reports the version. The next look (`status`)
/// settles it — the real outcome after the "unknown", and its deploy row —
/// so `status` shows the deploy and `rollback` has something to roll back.
#[test]
fn an_interrupted_promote_the_environment_confirms_is_settled_and_rolls_back() {
    let home = Home::new();
    setup(&home);
    home.run(&["status"]).expect_code(0);
    let p = home.path();
    std::fs::write(p.join("deploy-block"), "").unwrap();
    let c = home.spawn(&["promote", "prod", "--yes"]);
    wait_for("the deploy to start", Duration::from_secs(60), || {
        p.join("deploying").exists()
    });
    kill(&c, "-INT");
    let out = c.wait_with_output().unwrap();
    handled("promote", &out);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    for f in ["deploy-block", "deploying"] {
        let _ = std::fs::remove_file(p.join(f));
    }
    assert_eq!(
        std::fs::read_to_string(p.join("prod.txt")).unwrap().trim(),
        "v2.0.0"
    );
    let s = home.run(&["status", "--json"]).json();
    assert_eq!(
        s["environments"][1]["last_deploy"]["version"], "v2.0.0",
        "{s}"
    );
    let h = home.run(&["history", "--json"]).json();
    let promote = h["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "promote"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(promote["outcome"], "succeeded", "{promote}");
    assert!(
        promote["detail"]
            .as_str()
            .unwrap_or("")
            .contains("reconciled after an \"unknown\""),
        "{promote}"
    );
    // A second look writes nothing more.
    let before = log_checks(&home, "settled");
    home.run(&["status"]).expect_code(0);
    assert_eq!(log_checks(&home, "looked again"), before);
    let out = home.run(&["rollback", "prod", "--yes"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        std::fs::read_to_string(p.join("prod.txt")).unwrap().trim(),
        "v1.0.0"
    );
    log_checks(&home, "rolled back");
}

#[test]
fn signals_at_each_step_of_promote_leave_a_verified_log_and_no_lock() {
    let mut t = Tally::default();
    for step in [
        "reading versions",
        "polling the deploy",
        "new version in place, deploy not returned",
    ] {
        for sig in SIGNALS {
            promote_scenario(&mut t, step, sig);
        }
    }
    println!(
        "signals during promote: {} scenarios tried, {} passed, 0 records lost, 0 panics",
        t.tried, t.passed
    );
    assert_eq!(t.tried, t.passed);
}

#[test]
fn signals_mid_window_leave_a_verified_log_and_no_watch_claim() {
    let fleet = Fleet::start();
    let mut t = Tally::default();
    for sig in SIGNALS {
        t.tried += 1;
        let home = Home::new();
        home.config(&fleet.config(""));
        home.run(&["status"]).expect_code(0);
        let c = home.spawn(&["watch", "production", "--window", "60s"]);
        let what = format!("watch mid-window, {sig}");
        let store = home.path().join("data/shipdeck/shipdeck.db");
        wait_for("the window to start", Duration::from_secs(60), || {
            store.exists()
                && home.run(&["status", "--json"]).json()["environments"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| !e["watcher"].is_null()))
        });
        std::thread::sleep(Duration::from_millis(1500));
        kill(&c, sig);
        let out = c.wait_with_output().unwrap();
        handled(&what, &out);
        // Said as what it is: a window stopped, not a deploy's outcome.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the monitoring window was stopped without a verdict")
                && !stderr.contains("the outcome is recorded as unknown"),
            "{what}: {stderr}"
        );
        log_checks(&home, &what);
        let s = home.run(&["status", "--json"]).json();
        let prod = s["environments"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["name"] == "production"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_ne!(
            prod["state"], "monitoring",
            "{what}: a ghost window: {prod}"
        );
        let next = home.run(&["watch", "production", "--window", "2s"]);
        assert_ne!(next.code, 3, "{what}: the claim was left held: {next:#?}");
        assert_ne!(next.code, 101, "{what}: {next:#?}");
        log_checks(&home, &what);
        t.passed += 1;
    }
    println!(
        "signals during watch: {} scenarios tried, {} passed, 0 records lost, 0 panics",
        t.tried, t.passed
    );
    assert_eq!(t.tried, t.passed);
}

/// Whether process `pid` is gone (or a zombie waiting to be reaped).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S …": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The pid a command wrote into `file` in the home, once it did.
fn pid_in(home: &Home, file: &str) -> String {
    let p = home.path().join(file);
    let mut pid = String::new();
    wait_for(file, Duration::from_secs(60), || {
        pid = std::fs::read_to_string(&p)
            .unwrap_or_default()
            .trim()
            .to_string();
        !pid.is_empty()
    });
    pid
}

/// A command that leaves a grandchild (`sleep 100` in the background,
/// waited for) and writes its pid into `file`: what a real deploy script or
/// hook that starts a worker looks like.
fn grandparent(home: &Home, file: &str) -> String {
    format!(
        r#"["sh", "-c", "sleep 100 & echo $! > {}/{file}; wait"]"#,
        home.path().display()
    )
}

#[test]
fn an_interrupted_promote_kills_the_deploy_group_and_records_unknown() {
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let home = Home::new();
        let p = home.path();
        std::fs::write(p.join("dev.txt"), "v2.0.0\n").unwrap();
        std::fs::write(p.join("prod.txt"), "v1.0.0\n").unwrap();
        home.config(&format!(
            r#"project = "signals"
[[environments]]
name = "dev"
version = {{ command = ["cat", "{dir}/dev.txt"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "prod"
version = {{ command = ["cat", "{dir}/prod.txt"] }}
deploy = {{ command = {deploy}, timeout = "300s" }}
"#,
            dir = p.display(),
            deploy = grandparent(&home, "deploy.pid"),
        ));
        let c = home.spawn(&["promote", "prod", "--yes"]);
        let pid = pid_in(&home, "deploy.pid");
        assert!(!gone(&pid), "the deploy's grandchild runs");
        kill(&c, sig);
        let out = c.wait_with_output().unwrap();
        let what = format!("promote, deploy running, {sig}");
        handled(&what, &out);
        assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("interrupted by SIG"), "{what}: {stderr}");
        wait_for(
            "the deploy's grandchild to be killed",
            Duration::from_secs(20),
            || gone(&pid),
        );
        let h = home.run(&["history", "--json"]).json();
        let e = h["entries"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["action"] == "promote"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(e["outcome"], "unknown", "{what}: {e}");
        assert!(
            e["detail"].as_str().unwrap_or("").contains("interrupted"),
            "{what}: {e}"
        );
        log_checks(&home, &what);
        // The lock was released: prod is not shown as deploying — nor as
        // idle: the promotion's outcome is unknown until prod reports it.
        let s = home.run(&["status", "--json"]).json();
        assert_eq!(s["environments"][1]["state"], "unsettled", "{what}: {s}");
    }
}

#[test]
fn an_interrupted_status_kills_the_version_reader_group() {
    for (sig, code) in [("-INT", 130), ("-HUP", 129)] {
        let home = Home::new();
        home.config(&format!(
            r#"project = "signals"
[[environments]]
name = "prod"
version = {{ command = {reader}, timeout = "300s" }}
deploy = {{ command = ["true"] }}
"#,
            reader = grandparent(&home, "reader.pid"),
        ));
        let c = home.spawn(&["status"]);
        let pid = pid_in(&home, "reader.pid");
        kill(&c, sig);
        let out = c.wait_with_output().unwrap();
        let what = format!("status, version read running, {sig}");
        handled(&what, &out);
        assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
        wait_for(
            "the reader's grandchild to be killed",
            Duration::from_secs(20),
            || gone(&pid),
        );
    }
}

/// A PostgreSQL server that accepts connections and never answers: a
/// connect to it waits for its own timeout. Its port, and how many
/// connections it accepted so far.
fn silent_postgres() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, seen)
}

#[test]
fn a_signal_while_the_store_connects_or_migrates_ends_the_command() {
    use std::sync::atomic::Ordering;
    let (port, seen) = silent_postgres();
    let home = Home::new();
    let p = home.path();
    std::fs::write(p.join("prod.txt"), "v1.0.0\n").unwrap();
    let envs = format!(
        r#"project = "signals"
[[environments]]
name = "prod"
version = {{ command = ["cat", "{dir}/prod.txt"] }}
deploy = {{ command = ["true"] }}
"#,
        dir = p.display()
    );
    // An embedded store to migrate from.
    home.config(&envs);
    home.run(&["status"]).expect_code(0);
    let db = p.join("data/shipdeck/shipdeck.db");
    assert!(db.exists(), "{}", db.display());
    home.config(&format!(
        "{envs}\n[store]\nurl = \"postgres://shipdeck@127.0.0.1:{port}/shipdeck\"\n"
    ));
    let from = format!("sqlite:{}", db.display());
    let cases: [(&[&str], &str, i32); 3] = [
        (&["status"], "-INT", 130),
        (&["history"], "-TERM", 143),
        (&["store", "migrate", "--from", &from], "-INT", 130),
    ];
    for (args, sig, code) in cases {
        let what = format!("{args:?} connecting to a silent store, {sig}");
        let before = seen.load(Ordering::SeqCst);
        let mut c = home.spawn(args);
        wait_for("the connect", Duration::from_secs(60), || {
            seen.load(Ordering::SeqCst) > before
        });
        std::thread::sleep(Duration::from_millis(300));
        kill(&c, sig);
        let t = Instant::now();
        // Without a bound: the connect to a silent server waits forever
        // (the command is killed when this fails).
        wait_for("the command to end", Duration::from_secs(30), || {
            c.try_wait().map(|s| s.is_some()).unwrap_or(true)
        });
        let took = t.elapsed();
        let out = c.wait_with_output().unwrap();
        handled(&what, &out);
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
        assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("interrupted by SIG"), "{what}: {stderr}");
        if args[0] == "store" {
            assert!(stderr.contains("one transaction"), "{what}: {stderr}");
        }
        println!("{what}: exit {code} after {took:?}");
    }
}

#[test]
fn a_store_that_accepts_and_never_answers_is_unreachable_not_waited_for_forever() {
    let (port, _seen) = silent_postgres();
    let home = Home::new();
    let p = home.path();
    std::fs::write(p.join("prod.txt"), "v1.0.0\n").unwrap();
    home.config(&format!(
        r#"project = "silent"
[[environments]]
name = "prod"
version = {{ command = ["cat", "{dir}/prod.txt"] }}
deploy = {{ command = ["true"] }}

[store]
url = "postgres://shipdeck@127.0.0.1:{port}/shipdeck"
"#,
        dir = p.display()
    ));
    let mut c = home.spawn(&["status"]);
    let t = Instant::now();
    // The startup's bound is 15 s; a loaded machine gets four times that
    // (the command is killed when this fails).
    wait_for("status to give up", Duration::from_secs(60), || {
        c.try_wait().map(|s| s.is_some()).unwrap_or(true)
    });
    let out = c.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}"))
            && stderr.contains("did not answer its startup within 15 s"),
        "names the store and what it did not do: {stderr}"
    );
    println!(
        "status against a silent store: exit 1 after {:?}",
        t.elapsed()
    );
}

/// `status --json` of an environment another process is acting on says
/// what it does: `rolling_back` for a rollback (not `deploying`, as any
/// lock held elsewhere used to read), `deploying` for a promote.
#[test]
fn status_of_a_rollback_held_elsewhere_says_rolling_back() {
    let home = Home::new();
    setup(&home);
    let p = home.path();
    // prod v1.0.0 → v2.0.0, so that a rollback has somewhere to go.
    home.run(&["promote", "prod", "--yes"]).expect_code(0);
    for (args, state) in [
        (&["rollback", "prod", "--yes"][..], "rolling_back"),
        (&["promote", "prod", "--yes"][..], "deploying"),
    ] {
        let _ = std::fs::remove_file(p.join("deploying"));
        std::fs::write(p.join("deploy-block"), "").unwrap();
        let c = home.spawn(args);
        wait_for("the deploy to start", Duration::from_secs(60), || {
            p.join("deploying").exists()
        });
        let s = home.run(&["status", "--json"]).json();
        let prod = s["environments"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["name"] == "prod"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(prod["state"], state, "{args:?}: {prod}");
        kill(&c, "-TERM");
        let out = c.wait_with_output().unwrap();
        handled(&format!("{args:?}"), &out);
        std::fs::remove_file(p.join("deploy-block")).unwrap();
        // The blocked deploy wrote its version before blocking: where it
        // ends does not matter, only that the next action can run.
        std::fs::write(
            p.join("prod.txt"),
            if state == "rolling_back" {
                "v1.0.0\n"
            } else {
                "v2.0.0\n"
            },
        )
        .unwrap();
    }
}

/// The processes whose process group is `pgid` (read from /proc; zombies,
/// which run nothing any more, are not counted).
fn group_members(pgid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp …": the fields follow the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid && fields[0] != "Z" {
            found.push(head.trim().to_string());
        }
    }
    found
}

/// prod's deploy command: with `slow` in the home it writes its pid
/// (its process group id: shipdeck runs it in a session of its own), starts
/// a grandchild that writes `grandchild-marker` after 8 s, and itself
/// writes `marker` and the version after 8 s — what a deploy that switches
/// production late looks like. Without `slow` it deploys at once.
fn late_switch_setup(home: &Home) {
    let p = home.path();
    std::fs::write(p.join("dev.txt"), "v2.0.0\n").unwrap();
    std::fs::write(p.join("prod.txt"), "v1.0.0\n").unwrap();
    std::fs::write(
        p.join("deploy-prod"),
        r#"#!/bin/sh
cd "$(dirname "$0")"
if [ -f slow ]; then
  ( sleep 8; touch grandchild-marker ) &
  echo $! > grandchild.pid
  echo $$ > deploy.pid
  sleep 8
  touch marker
fi
echo "$1" > prod.txt
wait
"#,
    )
    .unwrap();
    let _ = Command::new("chmod")
        .arg("+x")
        .arg(p.join("deploy-prod"))
        .status();
    home.config(&format!(
        r#"project = "signals"
[[environments]]
name = "dev"
version = {{ command = ["cat", "{dir}/dev.txt"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "prod"
version = {{ command = ["cat", "{dir}/prod.txt"] }}
deploy = {{ command = ["{dir}/deploy-prod", "{{version}}"], timeout = "300s", poll = "200ms" }}
"#,
        dir = p.display()
    ));
}

/// `kill -9` of shipdeck mid-promote and mid-rollback (no code of ours
/// runs): the deploy command and the grandchild it started are ended by
/// their watchdog, so neither ever switches production behind everyone's
/// back, and nothing of their process group is left.
#[test]
fn a_deploy_command_never_outlives_a_killed_shipdeck() {
    for action in ["promote", "rollback"] {
        let home = Home::new();
        late_switch_setup(&home);
        let p = home.path();
        if action == "rollback" {
            // Something to roll back: a quick promote to v2.0.0 first.
            let out = home.run(&["promote", "prod", "--yes"]);
            assert_eq!(out.code, 0, "{out:#?}");
        }
        std::fs::write(p.join("slow"), "").unwrap();
        let c = home.spawn(&[action, "prod", "--yes"]);
        let pgid = pid_in(&home, "deploy.pid");
        let grandchild = pid_in(&home, "grandchild.pid");
        assert!(
            !gone(&pgid) && !gone(&grandchild),
            "{action}: the deploy runs"
        );
        kill(&c, "-KILL");
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), None, "{action}: {out:?}");
        wait_for(
            &format!("{action}: the deploy's process group to be ended"),
            Duration::from_secs(20),
            || group_members(&pgid).is_empty(),
        );
        // Gone before their 8 s were up: they can never write.
        assert!(gone(&grandchild), "{action}");
        for marker in ["marker", "grandchild-marker"] {
            assert!(
                !p.join(marker).exists(),
                "{action}: the orphaned deploy wrote {marker} (shipdeck was too slow to kill?)"
            );
        }
        println!("{action}, kill -9 mid-deploy: the deploy's group (pgid {pgid}) ended, no marker");
    }
}

/// A deploy command that exits by itself, leaving a worker to switch the
/// version later, keeps it even when shipdeck is then killed with -9
/// while it polls: the watchdog ends only a command that had not returned.
#[test]
fn a_worker_left_by_a_finished_deploy_survives_a_killed_shipdeck() {
    let home = Home::new();
    setup(&home);
    let p = home.path();
    std::fs::write(p.join("deploy-delay"), "4").unwrap();
    let c = home.spawn(&["promote", "prod", "--yes"]);
    wait_for("the deploy to start", Duration::from_secs(60), || {
        p.join("deploying").exists()
    });
    // A few polls in (200 ms each): the command has returned by then.
    std::thread::sleep(Duration::from_millis(1000));
    kill(&c, "-KILL");
    let out = c.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "{out:?}");
    wait_for(
        "the worker the deploy left to write the version",
        Duration::from_secs(30),
        || std::fs::read_to_string(p.join("prod.txt")).is_ok_and(|v| v.trim() == "v2.0.0"),
    );
}

/// The `unsettled` line of `status --json` for `env`.
fn unsettled_of(home: &Home, env: &str) -> Value {
    let st = home.run(&["status", "--json"]);
    st.expect_code(0);
    st.json()["environments"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == env))
        .map(|e| e["unsettled"].clone())
        .unwrap_or(Value::Null)
}

/// The `state` of `status --json` for `env`.
fn state_of(home: &Home, env: &str) -> Value {
    let st = home.run(&["status", "--json"]);
    st.expect_code(0);
    st.json()["environments"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == env))
        .map(|e| e["state"].clone())
        .unwrap_or(Value::Null)
}

/// `kill -9` of shipdeck while a promote — then a rollback — waits for
/// production to report the version its deploy webhook accepted: the
/// backend goes on deploying, shipdeck records nothing. The next `status`
/// must not read production as idle with nothing under way: it says the
/// promotion (rollback) has no outcome, what production reports, that it
/// may still be under way, and what to check — until production reports
/// the version and reconcile settles it as done.
#[test]
fn a_deploy_or_rollback_killed_outright_reads_unsettled_until_the_environment_confirms_it() {
    let fleet = Fleet::with_deploy_duration("10s");
    let home = Home::new();
    home.config(&fleet.config(""));
    home.run(&["approve", "production"]).expect_code(0);
    let version = |env: &str| {
        let st = home.run(&["status", "--json"]);
        st.json()["environments"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == env))
            .map(|e| e["version"].clone())
            .unwrap_or(Value::Null)
    };
    for (action, what, to, from) in [
        ("promote", "promotion", "v1.8.0", "v1.7.3"),
        ("rollback", "rollback", "v1.7.3", "v1.8.0"),
    ] {
        let c = home.spawn(&[action, "production", "--yes"]);
        // The webhook accepted the deploy: production is being deployed.
        wait_for(
            &format!("{action}: the deploy to start"),
            Duration::from_secs(60),
            || {
                let st = home.run(&["status", "--json"]);
                st.code == 0
                    && st.json()["environments"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|e| e["name"] == "production" && e["state"] != "idle")
                    })
            },
        );
        std::thread::sleep(Duration::from_millis(1500));
        kill(&c, "-KILL");
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), None, "{action}: {out:?}");
        assert_eq!(version("production"), from, "{action}: still deploying");

        let st = home.run(&["status"]);
        let line = format!("! production: the {what} to {to} (from {from}) by tester@");
        assert!(st.stdout.contains(&line), "{action}: {st:#?}");
        assert!(
            st.stdout.contains(&format!(
                "has no outcome: the shipdeck running it stopped (killed outright, or interrupted) before production reported {to}, and production reports {from}; it may still be under way in the deploy backend"
            )),
            "{action}: {st:#?}"
        );
        // The release a killed rollback was taking away is not one
        // nobody watches (no console starts a window on it).
        assert!(
            action == "promote" || !st.stdout.contains("nobody is watching it"),
            "{action}: {st:#?}"
        );
        let u = unsettled_of(&home, "production");
        assert!(
            u.as_str()
                .is_some_and(|u| u.starts_with(&format!("the {what} to {to}"))),
            "{action}: {u}"
        );
        // Never read as idle, and nothing starts beside it unasked: a
        // promotion needs the engineer to confirm it (a rollback says it
        // first, and goes ahead when confirmed — this may be an incident).
        assert_eq!(
            state_of(&home, "production"),
            "unsettled",
            "{action}: the JSON state"
        );
        let gate = format!("the {what} to {to} (from {from}) by tester@");
        let p = home.run(&["promote", "production"]);
        assert_eq!(p.code, 3, "{action}: {p:#?}");
        assert!(
            p.stderr.contains("! unsettled") && p.stderr.contains(&gate),
            "{action}: {p:#?}"
        );
        // (After the rollback production already runs v1.8.0: that
        // refuses this promotion first.)
        assert!(
            action == "rollback" || p.stderr.contains("needs confirmation: "),
            "{action}: {p:#?}"
        );
        let r = home.run(&["rollback", "production"]);
        assert!(
            r.stderr.contains(&format!("! production: {gate}")),
            "{action}: {r:#?}"
        );
        assert_eq!(version("production"), from, "{action}: nothing started");
        // The backend finishes: the next look settles it as done.
        wait_for(
            &format!("{action}: production to report {to}"),
            Duration::from_secs(60),
            || version("production") == to,
        );
        assert!(unsettled_of(&home, "production").is_null(), "{action}");
        assert_ne!(state_of(&home, "production"), "unsettled", "{action}");
        let h = home.run(&["history", "production", "--json"]);
        assert!(
            h.stdout
                .contains("reconciled after an \\\"unknown\\\": production reported"),
            "{action}: {h:#?}"
        );
    }
    home.run(&["history", "--verify"]).expect_code(0);
}
