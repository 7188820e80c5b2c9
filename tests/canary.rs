//! The canary strategy end to end: the real binary promotes production of
//! the demo fleet (`shipdeck demo-fleet`, also the real binary) through its
//! canary. The bad v1.8.0 is caught at the first step and its weight goes
//! back to 0 with the stable track untouched; a good release walks
//! 10 → 50 → 100 and the stable track gets it.

mod common;

use std::io::{Read, Write};
use std::time::Instant;

use common::{Fleet, Home};

/// GET `http://addr/path` and its JSON answer.
fn get(addr: &str, path: &str) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the fleet");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

fn config(fleet: &Fleet, step_time: &str) -> String {
    config_with(fleet, step_time, true)
}

fn config_with(fleet: &Fleet, step_time: &str, auto_rollback: bool) -> String {
    let a = &fleet.addr;
    let mut s = format!(
        "project = \"demo-shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{a}/metrics\"\nstep = \"1s\"\n\n[monitor]\nauto_rollback = {auto_rollback}\n"
    );
    for env in ["development", "staging", "production"] {
        s.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\ndeploy = {{ webhook = \"http://{a}/envs/{env}/deploy\", timeout = \"30s\", poll = \"200ms\" }}\n"
        ));
    }
    s.push_str(&shipdeck::demo::canary_table(
        &format!("http://{a}"),
        step_time,
    ));
    s
}

/// The environment named `name` in `status --json`, looked up by name
/// rather than by its position in the pipeline.
fn env_json(home: &Home, name: &str) -> serde_json::Value {
    let st = home.run(&["status", "--json"]);
    st.expect_code(0);
    let doc = st.json();
    doc["environments"]
        .as_array()
        .and_then(|envs| envs.iter().find(|e| e["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no environment {name:?} in status --json: {doc}"))
}

fn history(home: &Home) -> Vec<(String, String)> {
    let out = home.run(&["history", "production", "--json"]);
    out.expect_code(0);
    let v = out.json();
    let rows = v
        .as_array()
        .or_else(|| v.get("entries").and_then(|e| e.as_array()))
        .cloned()
        .unwrap_or_else(|| panic!("history --json: {v}"));
    rows.iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_string(),
                r["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn the_bad_release_is_caught_at_the_first_step_and_its_weight_returns_to_0() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, "25s"));
    let t0 = Instant::now();
    let out = home.run(&["promote", "production", "--version", "v1.8.0", "--yes"]);
    let took = t0.elapsed().as_secs_f64();
    assert_eq!(out.code, 1, "a caught canary fails the promotion: {out:#?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("caught at 10% (step 1/3)"), "{said}");
    // The flow stepped back by itself, and says so.
    assert!(
        said.contains("canary weight set to 0 automatically (auto_rollback)"),
        "{said}"
    );
    // Caught at the first 25 s step, not after all three (75 s and more);
    // the margin is for a loaded machine.
    assert!(took < 60.0, "caught after {took:.0}s");
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        0
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/version")["version"],
        "v1.7.3",
        "the stable track never got the bad release"
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/version")["version"],
        "v1.8.0"
    );
    let h = history(&home);
    let canary: Vec<&String> = h
        .iter()
        .filter(|(a, _)| a == "canary")
        .map(|(_, d)| d)
        .collect();
    assert!(canary.iter().any(|d| d.starts_with("weight 10%")), "{h:#?}");
    assert!(
        canary.iter().any(
            |d| d.starts_with("regression at 10% (step 1/3): canary error rate")
                || d.starts_with("regression at 10% (step 1/3): canary p")
        ),
        "{h:#?}"
    );
    assert!(canary.iter().any(|d| d.starts_with("weight 0%")), "{h:#?}");
    assert!(
        !canary.iter().any(|d| d.starts_with("weight 50%")),
        "{h:#?}"
    );
    // status --json shows the canary: its version and weight.
    let prod = &env_json(&home, "production");
    assert_eq!(prod["canary"]["version"], "v1.8.0", "{prod}");
    assert_eq!(prod["canary"]["weight"], 0, "{prod}");
    // The caught release is blocked like one any monitoring window caught:
    // a No-Go, so the same promotion again is refused (exit 3) until
    // someone records a new Go.
    assert!(
        h.iter()
            .any(|(a, d)| a == "reject" && d.contains("regression of the canary at 10%")),
        "{h:#?}"
    );
    let again = home.run(&["promote", "production", "--version", "v1.8.0", "--yes"]);
    again.expect_code(3);
    assert!(
        again.stderr.contains("No-Go by tester@") && again.stderr.contains("(monitoring window)"),
        "{again:#?}"
    );
}

#[test]
fn a_good_release_walks_10_50_100_and_the_stable_track_gets_it() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, "3s"));
    let out = home.run(&["promote", "production", "--version", "v1.8.1", "--yes"]);
    out.expect_code(0);
    assert_eq!(
        get(&fleet.addr, "/envs/production/version")["version"],
        "v1.8.1"
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        0
    );
    let h = history(&home);
    let details: Vec<&String> = h
        .iter()
        .filter(|(a, _)| a == "canary")
        .map(|(_, d)| d)
        .collect();
    for w in ["weight 10%", "weight 50%", "weight 100%"] {
        assert!(details.iter().any(|d| d.starts_with(w)), "{w}: {h:#?}");
    }
    for s in [
        "step 1/3 at 10% passed",
        "step 2/3 at 50% passed",
        "step 3/3 at 100% passed",
    ] {
        assert!(details.iter().any(|d| d.starts_with(s)), "{s}: {h:#?}");
    }
    let promote = h
        .iter()
        .find(|(a, _)| a == "promote")
        .map(|(_, d)| d.clone())
        .unwrap_or_default();
    assert!(!promote.is_empty(), "{h:#?}");
    // Each weight change is one record with its outcome: none reads as
    // started, or "unknown: the process ended", once the flow is over.
    let all = home
        .run(&["history", "production", "--json"])
        .expect_code(0)
        .json();
    for r in all["entries"].as_array().unwrap() {
        assert_eq!(r["outcome"], "succeeded", "{r}");
        assert!(
            !r["detail"].as_str().unwrap().contains("process ended"),
            "{r}"
        );
    }
    let weights: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["detail"].as_str())
        .filter(|d| d.starts_with("weight "))
        .collect();
    // 10, 50, 100, then 0 once the stable track runs it.
    assert_eq!(weights.len(), 4, "{weights:#?}");
}

#[test]
fn without_auto_rollback_the_caught_canary_keeps_its_weight_until_rollback_sets_it_to_0() {
    let fleet = Fleet::start();
    let home = Home::new();
    // The store at a known path, so that the engine in this process sees
    // what the binary recorded.
    let db = home.path().join("canary.db");
    let text = format!(
        "{}\n[store]\npath = \"{}\"\n",
        config_with(&fleet, "25s", false),
        db.display()
    );
    home.config(&text);
    let out = home.run(&["promote", "production", "--version", "v1.8.0", "--yes"]);
    assert_eq!(out.code, 1, "{out:#?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("caught at 10% (step 1/3)"), "{said}");
    assert!(
        said.contains("keeps 10% of the traffic until rolled back"),
        "{said}"
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        10
    );
    // `status` says who else serves production, and that nobody moves it
    // on (the table's version is the stable track's).
    let st = home.run(&["status"]);
    assert!(
        st.stdout.contains(
            "! production canary: v1.8.0 takes 10% of the traffic and no promotion is moving it on: no shipdeck is judging it (the canary caught it (regression at 10% (step 1/3)"
        ) && st.stdout.contains(
            "and kept its traffic (auto_rollback is off)); `shipdeck rollback production` sends it all back to the stable track (`shipdeck promote production` refuses until then)"
        ),
        "{st:#?}"
    );
    // While the canary has traffic, `r` sets its weight to 0.
    let plan = |home: &Home| env_json(home, "production")["rollback_plan"].clone();
    assert_eq!(plan(&home)["action"], "canary_weight_zero");
    // Production has no known-good version of its own (shipdeck never
    // deployed it before): taking the canary's traffic away is the
    // rollback all the same, and the plan the CLI confirms names it —
    // from the canary's v1.8.0 to the stable track's v1.7.3.
    let prod = env_json(&home, "production");
    assert!(prod["rollback"]["to"].is_null(), "{prod}");
    let engine = shipdeck::engine::Engine::open(
        shipdeck::config::Config::parse(&text, std::path::Path::new("<test>")).unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let confirmed = rt
        .block_on(engine.rollback_plan("production", None))
        .expect("a canary with traffic can always be rolled back");
    assert_eq!(
        (
            confirmed.from.as_ref().map(|v| v.as_str()),
            confirmed.to.as_str()
        ),
        (Some("v1.8.0"), "v1.7.3")
    );
    drop(engine);
    // While another process holds production's deploy lock (it promotes
    // it), weight → 0 is a rollback like any: refused, exit 3, the holder
    // named, the refusal audited, and the weight left alone.
    {
        use shipdeck::store::Store as _;
        let store = shipdeck::store::SqliteStore::open(&db).unwrap();
        let now = chrono::Utc::now();
        let bot = shipdeck::store::LockInfo {
            pid_space: None,
            env: "production".into(),
            holder: "deploy-bot@ci-runner".into(),
            pid: 4242,
            host: "ci-runner".into(),
            acquired_at: now,
            audit_id: None,
            expires_at: now + chrono::Duration::minutes(5),
        };
        store.try_lock(&bot).unwrap().unwrap();
        let out = home.run(&["rollback", "production", "--yes"]);
        assert_eq!(out.code, 3, "{out:#?}");
        assert!(
            out.stderr.contains(
                "production is being deployed by deploy-bot@ci-runner (pid 4242 on ci-runner)"
            ),
            "{out:#?}"
        );
        assert_eq!(
            get(&fleet.addr, "/envs/production/canary/weight")["weight"],
            10
        );
        let h = history(&home);
        assert!(
            h.iter().any(|(a, d)| a == "rollback"
                && d.contains("lock: production is being deployed by deploy-bot@ci-runner")),
            "{h:#?}"
        );
        store.unlock("production", 4242, "ci-runner").unwrap();
    }
    // A killed predecessor's lock with this very pid and host (a container
    // restarted with the same hostname, pid 1): no action of this engine
    // holds it, so it is not ours — the rollback takes it over, like a
    // dead holder's, and releases it when done (it used to act without
    // the lock and leave the stale one behind).
    let stale = {
        use shipdeck::store::Store as _;
        let store = shipdeck::store::SqliteStore::open(&db).unwrap();
        let now = chrono::Utc::now();
        store
            .try_lock(&shipdeck::store::LockInfo {
                pid_space: None,
                env: "production".into(),
                holder: "killed-predecessor".into(),
                pid: std::process::id(),
                host: shipdeck::engine::hostname(),
                acquired_at: now,
                audit_id: None,
                expires_at: now + chrono::Duration::minutes(5),
            })
            .unwrap()
            .unwrap();
        store
    };
    // This process rolls back: the audit log says the canary has 10%.
    let engine = shipdeck::engine::Engine::open(
        shipdeck::config::Config::parse(&text, std::path::Path::new("<test>")).unwrap(),
    )
    .unwrap();
    let rec = rt
        .block_on(engine.rollback("production", None, None))
        .expect("the canary's weight goes to 0");
    assert_eq!(rec.version.as_str(), "v1.7.3");
    assert!(rt.block_on(engine.settle(std::time::Duration::from_secs(30))));
    drop(engine);
    {
        use shipdeck::store::Store as _;
        let left = stale.lock_of("production", chrono::Utc::now()).unwrap();
        assert!(left.is_none(), "the stale lock is left behind: {left:?}");
    }
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        0
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/version")["version"],
        "v1.7.3"
    );
    let h = history(&home);
    assert!(
        h.iter()
            .any(|(a, d)| a == "rollback" && d.contains("canary weight 10% → 0")),
        "{h:#?}"
    );
    // No canary traffic any more: the plan is the stable track's, not
    // "canary weight → 0" again.
    let after = plan(&home);
    assert_ne!(after["action"], "canary_weight_zero", "{after}");
    assert_eq!(after["action"], "redeploy", "{after}");
}

#[test]
fn a_canary_deploy_accepted_but_not_reported_in_time_is_unknown() {
    // The fleet accepts the canary's deploy and takes a minute; the
    // deploy's timeout is 2 s. The deploy was not cancelled and may still
    // land: unknown, never failed (the rule every accepted deploy follows).
    let fleet = Fleet::with_deploy_duration("60s");
    let home = Home::new();
    home.config(&config(&fleet, "3s").replace("timeout = \"30s\"", "timeout = \"2s\""));
    let out = home.run(&["promote", "production", "--version", "v1.8.1", "--yes"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("the canary of production still reports")
            && out
                .stderr
                .contains("may still land: look before deploying again"),
        "{out:#?}"
    );
    let h = home.run(&["history", "production", "--json"]).json();
    let promote = h["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "promote"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(promote["outcome"], "unknown", "{h}");
}

/// A promotion interrupted mid-canary (a pipeline cancelled: SIGTERM) does
/// not leave the canary's share of production's traffic on a version
/// nobody judges any more: it goes back to the stable track, a rollback
/// audited like any, and the exit is the signal's.
#[test]
fn an_interrupted_canary_promotion_sends_the_traffic_back_to_the_stable_track() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, "5m"));
    let child = home
        .process()
        .args(["promote", "production", "--version", "v1.8.1", "--yes"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start shipdeck");
    let t0 = Instant::now();
    while get(&fleet.addr, "/envs/production/canary/weight")["weight"] != 10 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the canary never got 10%"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -TERM");
    let out = child.wait_with_output().expect("wait for shipdeck");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains(
            "! production: the canary's traffic went back to the stable track (v1.7.3): its promotion was interrupted"
        ),
        "{stderr}"
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        0
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/version")["version"],
        "v1.7.3"
    );
    let h = history(&home);
    assert!(h.iter().any(|(a, _)| a == "rollback"), "{h:#?}");
    let st = home.run(&["status"]);
    assert!(!st.stdout.contains("production canary:"), "{st:#?}");
    assert_eq!(env_json(&home, "production")["canary"]["weight"], 0);
}

/// The No-Go that blocks a release the canary caught cannot be written (the
/// store refuses it): the traffic goes back to the stable track all the
/// same, the No-Go is tried again, and the outcome says it is missing and
/// how to record it — not silence, which left the release re-promotable.
#[test]
fn a_caught_canary_whose_no_go_cannot_be_written_says_so() {
    let fleet = Fleet::start();
    let home = Home::new();
    let db = home.path().join("canary.db");
    home.config(&format!(
        "{}\n[store]\npath = \"{}\"\n",
        config(&fleet, "25s"),
        db.display()
    ));
    home.run(&["status"]).expect_code(0);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER no_decisions BEFORE INSERT ON approvals
             BEGIN SELECT RAISE(ABORT, 'approvals are read-only here'); END;",
        )
        .unwrap();
    let out = home.run(&["promote", "production", "--version", "v1.8.0", "--yes"]);
    assert_eq!(out.code, 1, "{out:#?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("canary weight set to 0"), "{said}");
    assert!(
        said.contains("the No-Go that blocks it could not be recorded")
            && said.contains("shipdeck approve production --reject --version v1.8.0"),
        "{said}"
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        0
    );
}

/// A promotion killed outright mid-canary (`kill -9`, the OOM killer) runs
/// none of shipdeck's code: the canary keeps its share of production's
/// traffic. The next run says so plainly — a canary of v1.8.1 at 10% that
/// no shipdeck judges, its promotion's shipdeck gone, and what clears it —
/// `promote` refuses to deploy another version on top of it (which would
/// hand that traffic to the new version unjudged), and `rollback` steps it
/// back to 0, audited, after which promoting is allowed again.
#[test]
fn a_canary_promotion_killed_outright_is_said_unjudged_blocks_promote_and_rolls_back() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(&fleet, "5m"));
    let mut child = home.spawn(&["promote", "production", "--version", "v1.8.1", "--yes"]);
    let t0 = Instant::now();
    while get(&fleet.addr, "/envs/production/canary/weight")["weight"] != 10 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the canary never got 10%"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap shipdeck");
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        10
    );

    let st = home.run(&["status"]);
    st.expect_code(0);
    assert!(
        st.stdout.contains(
            "! production canary: v1.8.1 takes 10% of the traffic and no promotion is moving it on: no shipdeck is judging it (its promotion by tester@"
        ) && st.stdout.contains("never finished: the shipdeck that ran it is gone"),
        "{st:#?}"
    );
    assert!(
        st.stdout.contains(
            "✗ canary               production's canary still sends 10% of the traffic to v1.8.1"
        ),
        "{st:#?}"
    );
    let canary = env_json(&home, "production")["canary"].clone();
    assert_eq!(
        (canary["version"].clone(), canary["weight"].clone()),
        ("v1.8.1".into(), 10.into())
    );
    assert!(
        canary["unjudged"]
            .as_str()
            .is_some_and(|w| w.contains("the shipdeck that ran it is gone")),
        "{canary}"
    );

    // Another promotion on top of it is refused, naming the canary and
    // the command that clears it; nothing is deployed.
    let out = home.run(&["promote", "production", "--yes"]);
    assert_eq!(out.code, 3, "{out:#?}");
    assert!(
        out.stderr
            .contains("production's canary still sends 10% of the traffic to v1.8.1")
            && out
                .stderr
                .contains("`shipdeck rollback production` sends it back to the stable track first"),
        "{out:#?}"
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/version")["version"],
        "v1.8.1"
    );
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        10
    );

    // The rollback steps it back, audited; the chain holds.
    home.run(&["rollback", "production", "--yes"])
        .expect_code(0);
    assert_eq!(
        get(&fleet.addr, "/envs/production/canary/weight")["weight"],
        0
    );
    let h = history(&home);
    assert!(
        h.iter()
            .any(|(a, d)| a == "rollback" && d.contains("canary weight 10% → 0")),
        "{h:#?}"
    );
    assert!(
        h.iter().any(|(a, _)| a == "promote"),
        "the killed promotion is in the history: {h:#?}"
    );
    home.run(&["history", "--verify"]).expect_code(0);
    let st = home.run(&["status"]);
    assert!(!st.stdout.contains("production canary:"), "{st:#?}");
    assert!(!st.stdout.contains("✗ canary"), "{st:#?}");
    assert!(env_json(&home, "production")["canary"]["unjudged"].is_null());
}
