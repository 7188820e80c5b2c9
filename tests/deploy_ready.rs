//! Deploys that return before the rollout is done, through the real binary:
//! `deploy = { command, ready = { command } }`. The deploy command writes
//! the new version into the "spec" at once and exits 0, as `kubectl apply`
//! does, and the version source reads that spec — so without the ready
//! check the monitoring window would start while the rollout still runs.
//! The ready check (`rollout-state`) says "still going" (exit 3) twice and
//! then "done" (exit 0), or "failed" (exit 1), or goes on for ever (exit 3),
//! as the files `ready-mode` says; each run is counted in `ready-runs`.

mod common;

use std::time::{Duration, Instant};

use common::{Fleet, Home};
use serde_json::Value;

/// Scripts and a config in `home`: dev runs `dev.txt`, prod runs what
/// `spec.txt` says; prod's deploy times out after `timeout`. With a
/// fleet, prod's metrics are the fleet's production.
fn setup(home: &Home, timeout: &str, fleet: Option<&Fleet>) {
    let p = home.path();
    std::fs::write(p.join("dev.txt"), "v1.0.0\n").unwrap();
    std::fs::write(p.join("spec.txt"), "v0.9.0\n").unwrap();
    std::fs::write(
        p.join("apply"),
        r#"#!/bin/sh
cd "$(dirname "$0")"
echo "$1" > spec.txt
date +%s.%N > applied-at
echo "deployment.apps/shop configured"
"#,
    )
    .unwrap();
    std::fs::write(
        p.join("rollout-state"),
        r#"#!/bin/sh
cd "$(dirname "$0")"
n=$(cat ready-runs 2>/dev/null || echo 0); n=$((n+1))
# Atomically: a run may be killed at any point (timeout, Ctrl-C).
echo $n > ready-runs.$$; mv ready-runs.$$ ready-runs
echo "$1 $2" >> ready-args
case "$(cat ready-mode 2>/dev/null || echo done)" in
  fail) echo "deployment shop exceeded its progress deadline"; exit 1;;
  going) echo "$n of 3 updated replicas"; exit 3;;
  *) if [ "$n" -le 2 ]; then echo "$n of 3 updated replicas"; exit 3; fi
     date +%s.%N > ready-done; echo "3 of 3 updated replicas"; exit 0;;
esac
"#,
    )
    .unwrap();
    for f in ["apply", "rollout-state"] {
        let ok = std::process::Command::new("chmod")
            .arg("+x")
            .arg(p.join(f))
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let metrics = match fleet {
        Some(f) => format!(
            "[metrics]\nsource = \"scrape\"\nurl = \"http://{}/metrics\"\nstep = \"1s\"\n[monitor]\nwindow = \"3s\"\nbaseline = \"10s\"\nauto_rollback = false\n",
            f.addr
        ),
        None => String::new(),
    };
    home.config(&format!(
        r#"project = "ready"
{metrics}
[[environments]]
name = "dev"
version = {{ command = ["cat", "{dir}/dev.txt"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "prod"
metrics_label = "production"
monitored = true
version = {{ command = ["cat", "{dir}/spec.txt"] }}
deploy = {{ command = ["{dir}/apply", "{{version}}"], timeout = "{timeout}", poll = "300ms", ready = {{ command = ["{dir}/rollout-state", "{{env}}", "{{version}}"] }} }}
"#,
        dir = p.display()
    ));
}

fn read(home: &Home, f: &str) -> String {
    std::fs::read_to_string(home.path().join(f))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Seconds since the epoch written by `date +%s.%N`.
fn stamp(home: &Home, f: &str) -> f64 {
    read(home, f).parse().unwrap_or_else(|e| panic!("{f}: {e}"))
}

/// The newest audit record of `action` on prod.
fn last(home: &Home, action: &str) -> Value {
    let h = home.run(&["history", "prod", "--json"]).json();
    h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .max_by_key(|e| e["id"].as_i64().unwrap_or(0))
        .cloned()
        .unwrap_or_else(|| panic!("no {action} in {h}"))
}

fn detail(e: &Value) -> &str {
    e["detail"].as_str().unwrap_or("")
}

#[test]
fn the_monitoring_window_starts_only_once_the_ready_check_says_done() {
    let fleet = Fleet::start();
    let home = Home::new();
    setup(&home, "60s", Some(&fleet));
    // A baseline for the window (the scrape source keeps none of its own).
    for _ in 0..7 {
        home.run(&["status", "--json"]);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let out = home.run(&["promote", "prod", "--yes", "--watch", "--json"]);
    // The verdict does not matter here (0 healthy, 1 too little data):
    // when the window starts does.
    assert!(matches!(out.code, 0 | 1), "{out:#?}");
    let j = out.json();
    assert_eq!(read(&home, "ready-runs"), "3", "{out:#?}");
    assert_eq!(
        read(&home, "ready-args").lines().last(),
        Some("prod v1.0.0")
    );
    let (applied, ready) = (stamp(&home, "applied-at"), stamp(&home, "ready-done"));
    // The spec said v1.0.0 from `applied` on: the version wait alone
    // would have started the window then.
    assert!(ready - applied >= 0.5, "two polls apart: {applied} {ready}");
    let at = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("{v}")))
            .unwrap()
            .timestamp_millis() as f64
            / 1000.0
    };
    let window_from = at(&j["watch"]["deploy_at"]);
    assert_eq!(j["watch"]["version"], "v1.0.0", "{j}");
    assert!(
        window_from >= ready,
        "the window started at {window_from}, before the rollout was done at {ready}: {j}"
    );
    assert_eq!(at(&j["deployed"]["at"]), window_from, "{j}");
    let rec = last(&home, "promote");
    assert_eq!(rec["outcome"], "succeeded", "{rec}");
    assert!(
        detail(&rec).contains("rolled out: the ready check said done after")
            && detail(&rec).contains("(3 runs): 3 of 3 updated replicas"),
        "{rec}"
    );
}

#[test]
fn a_failed_rollout_fails_the_deploy_and_rollback_works_as_before() {
    let home = Home::new();
    setup(&home, "60s", None);
    home.run(&["promote", "prod", "--yes"]).expect_code(0);
    // The next release's rollout fails.
    std::fs::write(home.path().join("dev.txt"), "v2.0.0\n").unwrap();
    std::fs::write(home.path().join("ready-runs"), "0").unwrap();
    std::fs::write(home.path().join("ready-mode"), "fail").unwrap();
    let out = home.run(&["promote", "prod", "--yes"]);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("the ready check says the rollout failed")
            && out
                .stderr
                .contains("deployment shop exceeded its progress deadline"),
        "{out:#?}"
    );
    assert_eq!(
        read(&home, "ready-runs"),
        "1",
        "failed at once, not polled on"
    );
    let rec = last(&home, "promote");
    assert_eq!(rec["outcome"], "failed", "{rec}");
    assert_eq!(rec["version"], "v2.0.0", "{rec}");
    assert!(
        detail(&rec).contains("the ready check says the rollout failed after"),
        "{rec}"
    );
    // As with any failed deploy: v1.0.0 stays the known-good version to go
    // back to, and the rollback (followed by its own ready check) gets there.
    std::fs::write(home.path().join("ready-runs"), "0").unwrap();
    std::fs::remove_file(home.path().join("ready-mode")).unwrap();
    let out = home.run(&["rollback", "prod", "--yes"]);
    out.expect_code(0);
    assert!(out.stdout.contains("v1.0.0"), "{out:#?}");
    assert_eq!(read(&home, "spec.txt"), "v1.0.0");
    assert_eq!(
        read(&home, "ready-args").lines().last(),
        Some("prod v1.0.0")
    );
    let rec = last(&home, "rollback");
    assert_eq!(rec["outcome"], "succeeded", "{rec}");
    assert!(detail(&rec).contains("(3 runs)"), "{rec}");
}

#[test]
fn a_rollout_still_going_at_the_deploys_timeout_is_unknown() {
    let home = Home::new();
    setup(&home, "3s", None);
    std::fs::write(home.path().join("ready-mode"), "going").unwrap();
    let t = Instant::now();
    let out = home.run(&["promote", "prod", "--yes"]);
    out.expect_code(1);
    // It waited the deploy's timeout, not for ever (generous: a loaded machine).
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let runs: u32 = read(&home, "ready-runs").parse().unwrap();
    assert!(runs >= 2, "polled: {runs} runs");
    // Meanwhile it said where the rollout was.
    assert!(
        out.stderr
            .contains("prod: rolling out (ready check: still going, 0s) — 1 of 3 updated replicas")
            && out.stderr.contains("— 2 of 3 updated replicas"),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains("outcome unknown")
            && out
                .stderr
                .contains("still rolling out when the deploy's timeout (3s) passed")
            && out.stderr.contains("may still land"),
        "{out:#?}"
    );
    let rec = last(&home, "promote");
    assert_eq!(rec["outcome"], "unknown", "{rec}");
    assert!(
        detail(&rec).contains("ready check: still going: ")
            && detail(&rec).contains("updated replicas"),
        "{rec}"
    );
    // Nothing recorded as deployed; the lock is free for the next try
    // (once the rollout was undone by hand: the spec said v1.0.0).
    assert_eq!(read(&home, "spec.txt"), "v1.0.0");
    std::fs::write(home.path().join("spec.txt"), "v0.9.0\n").unwrap();
    std::fs::remove_file(home.path().join("ready-mode")).unwrap();
    std::fs::write(home.path().join("ready-runs"), "0").unwrap();
    home.run(&["promote", "prod", "--yes"]).expect_code(0);
}

#[test]
fn an_interrupt_while_the_ready_check_polls_records_unknown_interrupted() {
    let home = Home::new();
    setup(&home, "120s", None);
    std::fs::write(home.path().join("ready-mode"), "going").unwrap();
    let child = home.spawn(&["promote", "prod", "--yes"]);
    let t = Instant::now();
    while read(&home, "ready-runs").parse::<u32>().unwrap_or(0) < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the ready check never ran twice"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let rec = last(&home, "promote");
    assert_eq!(rec["outcome"], "unknown", "{rec}");
    assert!(detail(&rec).contains("interrupted"), "{rec}");
    home.run(&["history", "--verify"]).expect_code(0);
    // Polling stopped with it; the lock was released.
    let runs = read(&home, "ready-runs");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        read(&home, "ready-runs"),
        runs,
        "still polled after the exit"
    );
    std::fs::write(home.path().join("spec.txt"), "v0.9.0\n").unwrap();
    std::fs::remove_file(home.path().join("ready-mode")).unwrap();
    std::fs::write(home.path().join("ready-runs"), "0").unwrap();
    home.run(&["promote", "prod", "--yes"]).expect_code(0);
}

#[test]
fn the_examples_ready_check_is_valid_as_written() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    let ready = text
        .lines()
        .find(|l| l.starts_with("# deploy = ") && l.contains("ready = {"))
        .expect("config.example.toml shows a ready check")
        .trim_start_matches("# ");
    // In place of local's deploy, as a reader following the comment would.
    let local = "deploy = { webhook = \"http://127.0.0.1:7878/envs/local/deploy\" }";
    assert!(text.contains(local));
    let home = Home::new();
    let path = home.config(&text.replacen(local, ready, 1));
    let out = home.run(&["config", "check", path.to_str().unwrap()]);
    out.expect_code(0);
    // And a misshapen one is refused at its line.
    let bad = ready.replace(
        "\"./scripts/rollout-state\", ",
        "\"./scripts/rollout-state\", \"{verison}\", ",
    );
    let line = text.lines().position(|l| l == local).unwrap() + 1;
    let path = home.config(&text.replacen(local, &bad, 1));
    let out = home.run(&["config", "check", path.to_str().unwrap()]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(&format!("shipdeck.toml:{line}:"))
            && out.stderr.contains("deploy.ready")
            && out.stderr.contains("unknown placeholder {verison}"),
        "{out:#?}"
    );
    // kubectl's own braces are kubectl's: a check reading the rollout
    // through jsonpath is taken as written.
    let kubectl = ready.replace(
        "\"./scripts/rollout-state\", \"{env}\", \"{version}\"",
        "\"kubectl\", \"get\", \"deploy/shop\", \"-n\", \"{env}\", \"-o\", \"jsonpath={.status.updatedReplicas}\"",
    );
    assert_ne!(kubectl, ready);
    let path = home.config(&text.replacen(local, &kubectl, 1));
    home.run(&["config", "check", path.to_str().unwrap()])
        .expect_code(0);
}

/// Blue-green through the engine: the slot deploy writes the slot's
/// version at once; its ready check (`{slot}` filled in) says "still
/// going" twice, then what `mode` says (exit 0 or 1). The calls are logged
/// in order.
async fn blue_green_with_ready(mode: u8) -> (tempfile::TempDir, shipdeck::engine::Engine) {
    let dir = dir_with(&[
        ("live", "blue"),
        ("blue", "v1.7.3"),
        ("green", "v1.6.0"),
        ("staging", "v1.8.0"),
        ("calls", ""),
    ]);
    let d = dir.path().display();
    let ready = format!(
        "n=$(cat {d}/runs-$0 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/runs-$0; echo ready $0 $1 >> {d}/calls; if [ $n -le 2 ]; then exit 3; fi; exit {mode}"
    );
    let src = format!(
        r#"project = "bg"
[store]
path = "{d}/s.db"

[[environments]]
name = "staging"
version = {{ command = ["cat", "{d}/staging"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "production"
rollback = "blue-green"
[environments.blue_green]
slots = ["blue", "green"]
live = {{ command = ["cat", "{d}/live"] }}
slot_version = {{ command = ["sh", "-c", "echo read $0 >> {d}/calls; cat {d}/$0", "{{slot}}"] }}
deploy = {{ command = ["sh", "-c", "echo deploy $0 $1 >> {d}/calls; echo $1 > {d}/$0", "{{slot}}", "{{version}}"], timeout = "30s", poll = "100ms", ready = {{ command = ["sh", "-c", "{ready}", "{{slot}}", "{{version}}"] }} }}
switch = {{ command = ["sh", "-c", "echo switch $0 >> {d}/calls; echo $0 > {d}/live", "{{slot}}"], timeout = "5s" }}
"#
    );
    let cfg = shipdeck::config::Config::parse(&src, std::path::Path::new("<test>")).unwrap();
    let e = shipdeck::engine::Engine::open(cfg).unwrap();
    (dir, e)
}

/// The calls from the slot deploy on.
fn bg_calls(dir: &tempfile::TempDir) -> Vec<String> {
    let all = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    let lines: Vec<String> = all.lines().map(str::to_string).collect();
    let from = lines
        .iter()
        .position(|l| l.starts_with("deploy"))
        .unwrap_or(lines.len());
    let mut out: Vec<String> = lines[from..].to_vec();
    // Reads of the slot between deploy and switch are the version wait.
    out.dedup();
    out
}

fn unseen() -> shipdeck::engine::Confirm {
    shipdeck::engine::Confirm::Unseen {
        accept_warnings: true,
    }
}

#[tokio::test]
async fn a_blue_green_slot_is_switched_to_only_once_its_ready_check_says_done() {
    let (dir, e) = blue_green_with_ready(0).await;
    let rec = e.promote("production", None, unseen(), None).await.unwrap();
    assert_eq!(rec.version.as_str(), "v1.8.0");
    let calls = bg_calls(&dir);
    assert_eq!(
        calls,
        [
            "deploy green v1.8.0",
            "ready green v1.8.0",
            "read green",
            "switch green"
        ],
        "(repeats folded) {calls:?}"
    );
    let runs = std::fs::read_to_string(dir.path().join("runs-green")).unwrap();
    assert_eq!(runs.trim(), "3");
    let h = e.history(Some("production"), 1).await.unwrap();
    assert!(
        h[0].detail
            .contains("rolled out: the ready check said done after")
            && h[0].detail.contains("(3 runs)"),
        "{}",
        h[0].detail
    );
}

#[tokio::test]
async fn a_blue_green_slot_whose_rollout_failed_takes_no_traffic() {
    let (dir, e) = blue_green_with_ready(1).await;
    let err = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    let calls = bg_calls(&dir);
    assert!(!calls.iter().any(|c| c.starts_with("switch")), "{calls:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("live"))
            .unwrap()
            .trim(),
        "blue"
    );
    let h = e.history(Some("production"), 1).await.unwrap();
    assert_eq!(h[0].outcome, shipdeck::domain::Outcome::Failed);
    assert!(
        h[0].detail
            .contains("the ready check says the rollout failed")
            && h[0].detail.contains("(slot green; traffic stays on blue)"),
        "{}",
        h[0].detail
    );
}

/// A canary whose deploy writes the canary's version at once; its ready
/// check fails. Weight changes are logged.
#[tokio::test]
async fn a_canary_whose_rollout_failed_never_gets_traffic() {
    let dir = dir_with(&[
        ("staging", "v1.8.0"),
        ("prod", "v1.7.3"),
        ("canary", "v1.7.3"),
        ("calls", ""),
    ]);
    let d = dir.path().display();
    let src = format!(
        r#"project = "canary"
[store]
path = "{d}/s.db"
[metrics]
source = "scrape"
url = "http://127.0.0.1:9/metrics"

[[environments]]
name = "staging"
version = {{ command = ["cat", "{d}/staging"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "production"
rollback = "canary"
version = {{ command = ["cat", "{d}/prod"] }}
deploy = {{ command = ["sh", "-c", "echo $0 > {d}/prod", "{{version}}"] }}
[environments.canary]
steps = [50, 100]
version = {{ command = ["cat", "{d}/canary"] }}
deploy = {{ command = ["sh", "-c", "echo deploy canary $0 >> {d}/calls; echo $0 > {d}/canary", "{{version}}"], timeout = "30s", poll = "100ms", ready = {{ command = ["sh", "-c", "echo ready canary $0 >> {d}/calls; echo 'canary pods crash-looping'; exit 1", "{{version}}"] }} }}
weight = {{ command = ["sh", "-c", "echo weight $0 >> {d}/calls", "{{weight}}"] }}
"#
    );
    let cfg = shipdeck::config::Config::parse(&src, std::path::Path::new("<test>")).unwrap();
    let e = shipdeck::engine::Engine::open(cfg).unwrap();
    let err = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    assert!(
        calls
            .trim_start()
            .starts_with("deploy canary v1.8.0\nready canary v1.8.0\n"),
        "{calls}"
    );
    assert!(!calls.contains("weight 50"), "traffic went to it: {calls}");
    let h = e.history(Some("production"), 5).await.unwrap();
    let promote = h
        .iter()
        .find(|a| a.action == shipdeck::domain::ActionKind::Promote)
        .unwrap();
    assert_eq!(promote.outcome, shipdeck::domain::Outcome::Failed);
    assert!(
        promote
            .detail
            .contains("the ready check says the rollout failed")
            && promote
                .detail
                .contains("canary pods crash-looping (the canary)"),
        "{}",
        promote.detail
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("prod"))
            .unwrap()
            .trim(),
        "v1.7.3",
        "the stable track is untouched"
    );
}

/// One clock for the deploy, its ready check and the version wait: a
/// rollout that takes most of the deploy's `timeout` leaves the version
/// wait only what is left of it — not a whole timeout more, during which
/// the deploy's lock could lapse. The version source counts its reads
/// once the deploy ran.
#[tokio::test]
async fn the_version_wait_gets_only_what_the_ready_check_left_of_the_timeout() {
    let dir = dir_with(&[("staging", "v1.8.0"), ("prod", "v1.7.3")]);
    let d = dir.path().display();
    // The rollout takes 4 s of the 6 s; the version never comes.
    let src = format!(
        r#"project = "one-clock"
[store]
path = "{d}/s.db"

[[environments]]
name = "staging"
version = {{ command = ["cat", "{d}/staging"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "production"
version = {{ command = ["sh", "-c", "test -f {d}/deployed && echo read >> {d}/reads; cat {d}/prod"] }}
deploy = {{ command = ["sh", "-c", "touch {d}/deployed"], timeout = "6s", poll = "1s", ready = {{ command = ["sh", "-c", "sleep 4; echo 3 of 3 updated"] }} }}
"#
    );
    let cfg = shipdeck::config::Config::parse(&src, std::path::Path::new("<test>")).unwrap();
    let e = shipdeck::engine::Engine::open(cfg).unwrap();
    let err = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    let h = e.history(Some("production"), 1).await.unwrap();
    assert_eq!(h[0].outcome, shipdeck::domain::Outcome::Failed, "{h:?}");
    assert!(
        // A read the deadline cut (a loaded machine) is said beside it.
        h[0].detail
            .contains(" — production still reports v1.7.3 after 6s")
            && h[0]
                .detail
                .contains("rolled out: the ready check said done"),
        "{}",
        h[0].detail
    );
    // At most 2 s were left, polled every second: 3 reads at most (a
    // whole timeout more would have been 7). A loaded machine reads less.
    let reads = std::fs::read_to_string(dir.path().join("reads")).unwrap();
    let reads = reads.lines().count();
    assert!((1..=3).contains(&reads), "{reads} reads");
}

/// The canary's success path with ready checks on both tracks, through the
/// real binary and the demo fleet: the canary takes traffic only once its
/// check said done, the stable track is deployed only after the last step
/// passed, and its check is followed before the canary steps aside. The
/// check (`ready TRACK VERSION`) says "still going" once, then "done"; it
/// logs each run with the time.
#[test]
fn a_canary_with_ready_checks_takes_traffic_only_once_rolled_out_and_passes() {
    let fleet = Fleet::start();
    let home = Home::new();
    let p = home.path();
    std::fs::write(
        p.join("ready"),
        r#"#!/bin/sh
cd "$(dirname "$0")"
n=$(cat runs-$1 2>/dev/null || echo 0); n=$((n+1))
echo $n > runs-$1.$$; mv runs-$1.$$ runs-$1
echo "$1 $2 $n $(date +%s.%N)" >> ready-log
if [ "$n" -le 1 ]; then echo "$1 rolling"; exit 3; fi
echo "$1 rolled out"; exit 0
"#,
    )
    .unwrap();
    let ok = std::process::Command::new("chmod")
        .arg("+x")
        .arg(p.join("ready"))
        .status()
        .unwrap();
    assert!(ok.success());
    let a = &fleet.addr;
    let ready = |track: &str| {
        format!(
            "ready = {{ command = [\"{}/ready\", \"{track}\", \"{{version}}\"] }} }}",
            p.display()
        )
    };
    let mut cfg = format!(
        "project = \"demo-shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{a}/metrics\"\nstep = \"1s\"\n\n[monitor]\nauto_rollback = true\n"
    );
    for env in ["development", "staging", "production"] {
        let extra = if env == "production" {
            format!(", {}", ready("stable"))
        } else {
            " }".into()
        };
        cfg.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\ndeploy = {{ webhook = \"http://{a}/envs/{env}/deploy\", timeout = \"30s\", poll = \"200ms\"{extra}\n"
        ));
    }
    let table = shipdeck::demo::canary_table(&format!("http://{a}"), "3s");
    let canary_deploy = "poll = \"250ms\" }";
    assert_eq!(table.matches(canary_deploy).count(), 1, "{table}");
    cfg.push_str(&table.replace(
        canary_deploy,
        &format!("poll = \"250ms\", {}", ready("canary")),
    ));
    home.config(&cfg);
    home.run(&["config", "check"]).expect_code(0);

    let out = home.run(&["promote", "production", "--version", "v1.8.1", "--yes"]);
    out.expect_code(0);
    assert_eq!(
        read(&home, "ready-log")
            .lines()
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        [
            "canary v1.8.1 1",
            "canary v1.8.1 2",
            "stable v1.8.1 1",
            "stable v1.8.1 2"
        ]
    );
    let h = home.run(&["history", "production", "--json"]).json();
    let entries = h["entries"].as_array().unwrap();
    let find = |action: &str, starts: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && detail(e).starts_with(starts))
            .unwrap_or_else(|| panic!("no {action} {starts:?}: {h:#}"))
    };
    let id = |e: &Value| e["id"].as_i64().unwrap();
    let at = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap())
            .unwrap()
            .timestamp_micros() as f64
            / 1e6
    };
    // The canary was rolled out before its first weight was set.
    let deployed = find("canary", "canary deployed: the canary reports v1.8.1; ");
    assert!(
        detail(deployed).contains("rolled out: the ready check said done after")
            && detail(deployed).ends_with("(2 runs): canary rolled out"),
        "{deployed}"
    );
    assert!(id(deployed) < id(find("canary", "weight 10%: step 1/3")));
    // The stable track's check first ran after the last step passed.
    let passed = find("canary", "step 3/3 at 100% passed");
    let stable_first: f64 = read(&home, "ready-log")
        .lines()
        .find(|l| l.starts_with("stable "))
        .and_then(|l| l.split(' ').nth(3))
        .unwrap()
        .parse()
        .unwrap();
    assert!(stable_first >= at(passed) - 0.01, "{stable_first} {passed}");
    let promote = find("promote", "");
    assert_eq!(promote["outcome"], "succeeded", "{promote}");
    let d = detail(promote);
    assert!(
        d.contains("canary of v1.8.1 passed 10%→50%→100%")
            && d.contains("production's stable track reports it; canary weight back to 0; ")
            && d.contains("rolled out: the ready check said done after")
            && d.ends_with("(2 runs): stable rolled out"),
        "{promote}"
    );
    // The weight went back to 0 after the stable track's rollout.
    assert!(
        id(find(
            "canary",
            "weight 0%: the stable track runs the version"
        )) > id(passed)
    );
}

/// A temp dir holding `files`, each (name, first line).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (f, text) in files {
        std::fs::write(dir.path().join(f), format!("{text}\n")).unwrap();
    }
    dir
}
