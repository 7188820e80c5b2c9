//! Blue-green through the engine against a fake that records every call
//! (commands given as argv, writing to files in a temp dir): the order of
//! a promotion — deploy slot → slot reports version → switch → live reads
//! new slot —, a rollback while warm that deploys nothing, a cold one that
//! does, and the faults: a failing switch, a live slot that is not a slot.

use std::path::Path;

use shipdeck::config::Config;
use shipdeck::domain::{ActionKind, Outcome, Version};
use shipdeck::engine::{Confirm, Engine};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// A fake fleet in `dir`: `staging` (a file), and production's two slots
/// (`blue`, `green` files), its live slot (`live`) and a call log (`calls`).
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(live: &str, blue: &str, green: &str, staging: &str) -> Fake {
        let f = Fake {
            dir: tempfile::tempdir().unwrap(),
        };
        f.write("live", live);
        f.write("blue", blue);
        f.write("green", green);
        f.write("staging", staging);
        f.write("calls", "");
        f
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), format!("{text}\n")).unwrap();
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap()
            .trim()
            .to_string()
    }
    /// The calls that change something or that the order is about: slot
    /// deploys, switches, and reads of a slot's version or of the live slot.
    fn calls(&self) -> Vec<String> {
        self.read("calls")
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
    fn clear_calls(&self) {
        self.write("calls", "");
    }

    /// `switch` is the switch command's script (`$0` is the slot).
    fn engine(&self, switch: &str, keep_warm: &str) -> Engine {
        let deploy = format!(
            "echo deploy $0 $1 >> {}; echo $1 > {}/$0",
            self.path("calls"),
            self.dir.path().display()
        );
        self.engine_with(switch, &deploy, keep_warm)
    }

    /// `deploy` is the slot deploy command's script (`$0` the slot, `$1`
    /// the version).
    fn engine_with(&self, switch: &str, deploy: &str, keep_warm: &str) -> Engine {
        let d = self.dir.path().display();
        let log = self.path("calls");
        // Each hook is `sh -c SCRIPT ARGS…`: the test's own scripts; shipdeck
        // passes {slot} and {version} as separate argv elements.
        // A slot's version is read once, so the log records what shipdeck
        // was told (read twice, a deploy rewriting the file in between made
        // the log say "read green" while shipdeck saw v1.7.3).
        let src = format!(
            r#"project = "bg"
[store]
path = "{d}/s.db"

[[environments]]
name = "staging"
version = {{ command = ["cat", "{d}/staging"] }}
deploy = {{ command = ["sh", "-c", "echo $0 > {d}/staging", "{{version}}"] }}

[[environments]]
name = "production"
rollback = "blue-green"
[environments.blue_green]
slots = ["blue", "green"]
live = {{ command = ["sh", "-c", "echo live >> {log}; cat {d}/live"] }}
slot_version = {{ command = ["sh", "-c", "v=`cat {d}/$0`; echo read $0 $v >> {log}; echo $v", "{{slot}}"] }}
deploy = {{ command = ["sh", "-c", "{deploy}", "{{slot}}", "{{version}}"], timeout = "20s", poll = "100ms" }}
switch = {{ command = ["sh", "-c", "{switch}", "{{slot}}"], timeout = "5s" }}
keep_warm = "{keep_warm}"
"#
        );
        let cfg = Config::parse(&src, Path::new("<test>")).unwrap();
        Engine::open(cfg).unwrap()
    }
}

fn switch_ok(f: &Fake) -> String {
    format!(
        "echo switch $0 >> {}; echo $0 > {}",
        f.path("calls"),
        f.path("live")
    )
}

/// Like a real slot deploy (and the demo fleet's): accepted at once, the
/// slot keeps reporting what it ran until the deploy lands a second later;
/// meanwhile `busy-SLOT` exists.
fn deploy_async(f: &Fake) -> String {
    let d = f.dir.path().display();
    format!(
        "echo deploy $0 $1 >> {log}; touch {d}/busy-$0; (sleep 1; rm {d}/busy-$0; echo $1 > {d}/$0) >/dev/null 2>&1 &",
        log = f.path("calls")
    )
}

/// A switch that refuses (and records) traffic to a slot in mid-deploy.
fn switch_checked(f: &Fake) -> String {
    let d = f.dir.path().display();
    format!(
        "if [ -e {d}/busy-$0 ]; then echo switch during a deploy of $0 >> {log}; echo slot $0 is being deployed >&2; exit 1; fi; echo switch $0 >> {log}; echo $0 > {d}/live",
        log = f.path("calls")
    )
}

fn unseen() -> Confirm {
    Confirm::Unseen {
        accept_warnings: true,
    }
}

/// The calls from the first deploy on, without the reads of the slot that
/// stays idle and of the live slot before the switch.
fn from_deploy(calls: &[String]) -> Vec<String> {
    let start = calls
        .iter()
        .position(|c| c.starts_with("deploy") || c.starts_with("switch"))
        .unwrap_or(calls.len());
    calls[start..].to_vec()
}

#[tokio::test]
async fn a_promotion_deploys_the_idle_slot_waits_for_it_switches_and_waits_for_the_live_slot() {
    let f = Fake::new("blue", "v1.7.3", "v1.6.0", "v1.8.0");
    let e = f.engine(&switch_ok(&f), "1h");
    assert_eq!(e.status().await.environments[1].version, Some(v("v1.7.3")));
    f.clear_calls();
    let rec = e.promote("production", None, unseen(), None).await.unwrap();
    assert_eq!(rec.version, v("v1.8.0"));
    assert_eq!(f.read("live"), "green");
    assert_eq!(f.read("green"), "v1.8.0");
    assert_eq!(f.read("blue"), "v1.7.3", "the old slot is left as it was");
    let calls = from_deploy(&f.calls());
    assert_eq!(
        calls,
        vec![
            "deploy green v1.8.0",
            "read green v1.8.0",
            "switch green",
            "live"
        ],
        "{:?}",
        f.calls()
    );
    // The audit log says which slot and how the switch went.
    let h = e.history(Some("production"), 5).await.unwrap();
    let done = h
        .iter()
        .find(|a| a.action == ActionKind::Promote && a.outcome == Outcome::Succeeded)
        .unwrap();
    assert!(
        done.detail.contains("production live on green (v1.8.0)")
            && done.detail.contains("deployed v1.8.0 to green")
            && done.detail.contains("switched traffic to green in "),
        "{}",
        done.detail
    );
    // The environment's version is what the live slot runs.
    assert_eq!(e.status().await.environments[1].version, Some(v("v1.8.0")));
}

#[tokio::test]
async fn a_rollback_while_the_old_slot_is_warm_switches_back_and_deploys_nothing() {
    let f = Fake::new("blue", "v1.7.0", "v1.6.0", "v1.7.3");
    let e = f.engine(&switch_ok(&f), "1h");
    // Two promotions: v1.7.3 goes to green, then v1.8.0 to blue.
    e.promote("production", None, unseen(), None).await.unwrap();
    f.write("staging", "v1.8.0");
    e.promote("production", None, unseen(), None).await.unwrap();
    assert_eq!(
        (f.read("live"), f.read("blue"), f.read("green")),
        ("blue".into(), "v1.8.0".into(), "v1.7.3".into())
    );
    // The plan is shown before anyone needs it, timed by the two switches
    // (how long they took is the machine's business: any figure will do).
    let st = e.status().await;
    let prod = &st.environments[1];
    let plan = &prod.revert.rollback_plan;
    assert!(
        plan.line()
            .strip_prefix("switch back to green (v1.7.3), ~")
            .and_then(|rest| rest.strip_suffix(" (median of the last 2)"))
            .is_some_and(|took| took.starts_with(|c: char| c.is_ascii_digit())),
        "{}",
        plan.line()
    );
    let json = serde_json::to_value(prod).unwrap();
    assert_eq!(json["strategy"], "blue-green");
    assert_eq!(json["rollback_plan"]["action"], "switch_back");
    assert_eq!(json["rollback_plan"]["target"], "v1.7.3");
    let expected = json["rollback_plan"]["expected_s"].as_f64().unwrap();
    assert!(expected.is_finite() && expected >= 0.0, "{expected}");
    assert_eq!(json["slots"]["live"], "blue");
    assert_eq!(json["slots"]["versions"]["green"], "v1.7.3");
    assert_eq!(json["slots"]["versions"]["blue"], "v1.8.0");
    f.clear_calls();
    let rec = e.rollback("production", None, None).await.unwrap();
    assert_eq!(rec.version, v("v1.7.3"));
    assert_eq!(f.read("live"), "green");
    let calls = f.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("deploy")),
        "no deploy while warm: {calls:?}"
    );
    assert_eq!(
        from_deploy(&calls),
        vec!["switch green", "live"],
        "{calls:?}"
    );
    let h = e.history(Some("production"), 1).await.unwrap();
    assert!(
        h[0].detail.contains("switched back, nothing redeployed"),
        "{}",
        h[0].detail
    );
    assert_eq!(e.status().await.environments[1].version, Some(v("v1.7.3")));
}

#[tokio::test]
async fn a_rollback_to_an_old_slot_that_moved_on_deploys_it_again_and_switches() {
    let f = Fake::new("blue", "v1.7.0", "v1.6.0", "v1.7.3");
    let e = f.engine(&switch_ok(&f), "1h");
    e.promote("production", None, unseen(), None).await.unwrap();
    f.write("staging", "v1.8.0");
    e.promote("production", None, unseen(), None).await.unwrap();
    // Someone reused the idle slot: it no longer runs the previous version.
    f.write("green", "v1.9.0-rc1");
    f.clear_calls();
    e.rollback("production", None, None).await.unwrap();
    assert_eq!(
        (f.read("live"), f.read("green")),
        ("green".into(), "v1.7.3".into())
    );
    assert_eq!(
        from_deploy(&f.calls()),
        vec![
            "deploy green v1.7.3",
            "read green v1.7.3",
            "switch green",
            "live"
        ]
    );
    let h = e.history(Some("production"), 1).await.unwrap();
    assert!(
        h[0].detail
            .contains("old slot not warm (green runs v1.9.0-rc1, not v1.7.3)"),
        "{}",
        h[0].detail
    );
}

#[tokio::test]
async fn a_promotion_to_an_idle_slot_already_running_the_version_switches_without_redeploying() {
    let f = Fake::new("blue", "v1.7.3", "v1.8.0", "v1.8.0");
    let e = f.engine_with(&switch_checked(&f), &deploy_async(&f), "1h");
    e.promote("production", None, unseen(), None).await.unwrap();
    let calls = f.calls();
    assert_eq!(
        from_deploy(&calls),
        vec!["switch green", "live"],
        "{calls:?}"
    );
    assert_eq!(f.read("live"), "green");
    let h = e.history(Some("production"), 1).await.unwrap();
    assert!(
        h[0].detail
            .contains("green already runs v1.8.0 and answers: switched without redeploying"),
        "{}",
        h[0].detail
    );
}

#[tokio::test]
async fn slot_deploys_that_land_later_are_waited_for_before_any_switch() {
    // Every deploy here is accepted at once and lands a second later; the
    // switch refuses a slot in mid-deploy. Two promotions, then a rollback
    // past keep_warm to an old slot that still runs the target.
    let f = Fake::new("blue", "v1.7.0", "v1.6.0", "v1.7.3");
    let e = f.engine_with(&switch_checked(&f), &deploy_async(&f), "1s");
    e.promote("production", None, unseen(), None).await.unwrap();
    f.write("staging", "v1.8.0");
    e.promote("production", None, unseen(), None).await.unwrap();
    assert_eq!(
        (f.read("live"), f.read("blue"), f.read("green")),
        ("blue".into(), "v1.8.0".into(), "v1.7.3".into())
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    // Past keep_warm the plan still says what `r` does: green answers with
    // v1.7.3, so it takes the traffic back as it is.
    let st = e.status().await;
    let plan = &st.environments[1].revert.rollback_plan;
    assert!(
        plan.line().starts_with("switch back to green (v1.7.3)"),
        "{}",
        plan.line()
    );
    f.clear_calls();
    e.rollback("production", None, None).await.unwrap();
    let calls = f.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("deploy")),
        "the old slot runs the target: nothing to redeploy: {calls:?}"
    );
    assert_eq!(
        from_deploy(&calls),
        vec!["switch green", "live"],
        "{calls:?}"
    );
    assert_eq!(f.read("live"), "green");
    let h = e.history(Some("production"), 1).await.unwrap();
    assert!(
        h[0].detail
            .contains("green already runs v1.7.3 and answers (")
            && h[0].detail.contains("longer than keep_warm (1s)")
            && h[0].detail.contains("switched without redeploying"),
        "{}",
        h[0].detail
    );
}

#[tokio::test]
async fn a_rollback_to_an_old_slot_that_no_longer_answers_deploys_it_and_waits() {
    let f = Fake::new("blue", "v1.7.0", "v1.6.0", "v1.7.3");
    let e = f.engine_with(&switch_checked(&f), &deploy_async(&f), "1h");
    e.promote("production", None, unseen(), None).await.unwrap();
    f.write("staging", "v1.8.0");
    e.promote("production", None, unseen(), None).await.unwrap();
    // The old slot was torn down: its version cannot be read.
    f.write("green", "");
    f.clear_calls();
    e.rollback("production", None, None).await.unwrap();
    let calls = f.calls();
    assert!(
        calls.contains(&"deploy green v1.7.3".to_string())
            && !calls.iter().any(|c| c.starts_with("switch during")),
        "{calls:?}"
    );
    let deploy_at = calls
        .iter()
        .position(|c| c == "deploy green v1.7.3")
        .unwrap();
    let read_at = calls.iter().position(|c| c == "read green v1.7.3").unwrap();
    let switch_at = calls.iter().position(|c| c == "switch green").unwrap();
    assert!(deploy_at < read_at && read_at < switch_at, "{calls:?}");
    assert_eq!(f.read("live"), "green");
}

#[tokio::test]
async fn a_failing_switch_leaves_the_old_slot_live_and_says_so() {
    let f = Fake::new("blue", "v1.7.3", "v1.6.0", "v1.8.0");
    let e = f.engine("echo switch refused >&2; exit 1", "1h");
    let err = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("switching traffic to green") && msg.contains("production stays live on blue"),
        "{msg}"
    );
    assert_eq!(f.read("live"), "blue");
    let h = e.history(Some("production"), 1).await.unwrap();
    assert_eq!(h[0].outcome, Outcome::Failed, "{}", h[0].detail);
    assert!(
        h[0].detail.contains("switching traffic to green"),
        "{}",
        h[0].detail
    );
    assert_eq!(e.status().await.environments[1].version, Some(v("v1.7.3")));
}

#[tokio::test]
async fn a_switch_accepted_but_not_seen_to_land_is_outcome_unknown_not_failed() {
    // The switch exits 0 but the live slot goes on reading blue past the
    // switch's timeout (a load balancer slow to apply it): traffic may
    // still move, so neither done nor failed.
    let f = Fake::new("blue", "v1.7.3", "v1.6.0", "v1.8.0");
    let e = f.engine(&format!("echo switch $0 >> {}", f.path("calls")), "1h");
    let err = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("outcome unknown")
            && msg
                .contains("switched traffic to green, but after 5s the live slot still reads blue")
            && msg.contains("may still land"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 1, "{err}");
    let h = e.history(Some("production"), 1).await.unwrap();
    assert_eq!(h[0].outcome, Outcome::Unknown, "{}", h[0].detail);
}

#[tokio::test]
async fn a_switch_that_times_out_is_outcome_unknown() {
    let f = Fake::new("blue", "v1.7.3", "v1.6.0", "v1.8.0");
    let e = f.engine("sleep 30", "1h");
    let err = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err();
    // Stopped at its timeout, it may have switched: the live slot is
    // followed for the switch's timeout before the outcome is unknown.
    assert!(
        err.to_string().contains("outcome unknown")
            && err
                .to_string()
                .contains("and after 5s the live slot still reads blue"),
        "{err}"
    );
    let h = e.history(Some("production"), 1).await.unwrap();
    assert_eq!(h[0].outcome, Outcome::Unknown, "{}", h[0].detail);
}

#[tokio::test]
async fn a_switch_of_unknown_outcome_that_the_live_slot_shows_made_is_a_done_deploy() {
    // The switch moves traffic, then hangs past its 5 s timeout (its
    // answer lost): the live slot read back shows green, so the release
    // is live — recorded done, saying how it was known, not "unknown".
    let f = Fake::new("blue", "v1.7.3", "v1.6.0", "v1.8.0");
    let e = f.engine(&format!("{}; sleep 30", switch_ok(&f)), "1h");
    e.promote("production", None, unseen(), None).await.unwrap();
    assert_eq!(f.read("live"), "green");
    let h = e.history(Some("production"), 1).await.unwrap();
    assert_eq!(h[0].outcome, Outcome::Succeeded, "{}", h[0].detail);
    assert!(
        h[0].detail.contains("left it unsure")
            && h[0]
                .detail
                .contains("the live slot read back says it was made"),
        "{}",
        h[0].detail
    );
    assert_eq!(e.status().await.environments[1].version, Some(v("v1.8.0")));
}

#[tokio::test]
async fn a_live_slot_that_is_not_a_slot_is_an_error_naming_it() {
    let f = Fake::new("purple", "v1.7.3", "v1.6.0", "v1.8.0");
    let e = f.engine(&switch_ok(&f), "1h");
    let st = e.status().await;
    let why = st.environments[1].version_error.clone().unwrap_or_default();
    assert!(
        why.contains("\"purple\"") && why.contains("not one of the slots (blue, green)"),
        "{why}"
    );
    let err = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("purple"), "{err}");
    assert!(
        f.calls().iter().all(|c| !c.starts_with("deploy")),
        "{:?}",
        f.calls()
    );
}

#[tokio::test]
async fn a_live_slot_that_cannot_be_read_leaves_the_plan_saying_so_never_redeploy() {
    let f = Fake::new("blue", "v1.7.0", "v1.6.0", "v1.7.3");
    let e = f.engine(&switch_ok(&f), "1h");
    e.promote("production", None, unseen(), None).await.unwrap();
    f.write("staging", "v1.8.0");
    e.promote("production", None, unseen(), None).await.unwrap();
    // The live slot's source fails: neither the slot to switch to nor
    // what runs is known, so the plan names no version to go back to.
    std::fs::remove_file(f.dir.path().join("live")).unwrap();
    let st = e.status().await;
    let prod = &st.environments[1];
    let plan = &prod.revert.rollback_plan;
    assert!(plan.target.is_none(), "{plan:?}");
    assert_eq!(
        plan.line(),
        "live slot unknown: no way back planned until it reads"
    );
    let json = serde_json::to_value(prod).unwrap();
    assert_eq!(json["rollback_plan"]["live_slot_unknown"], true, "{json}");
    assert_eq!(json["rollback_plan"]["action"], "switch_back");
    assert!(json["rollback_plan"]["slot"].is_null(), "{json}");
    assert!(json["rollback_plan"]["target"].is_null(), "{json}");
    assert!(json["rollback_plan"]["expected_s"].is_null(), "{json}");
    assert!(json["slots"]["live"].is_null(), "{json}");
}

#[tokio::test]
async fn a_status_reads_each_slot_source_once_and_a_dead_live_slot_once() {
    let f = Fake::new("blue", "v1.7.0", "v1.6.0", "v1.7.3");
    let e = f.engine(&switch_ok(&f), "1h");
    e.promote("production", None, unseen(), None).await.unwrap();
    let count = |f: &Fake, what: &str| {
        f.calls()
            .iter()
            .filter(|c| c.split(' ').take(2).collect::<Vec<_>>().join(" ") == what)
            .count()
    };
    // Answering: one read of the live slot and one of each slot, though
    // both the version and the rollback plan (which slot takes the
    // traffic back) are made of them.
    f.clear_calls();
    let st = e.status().await;
    assert_eq!(st.environments[1].version, Some(v("v1.7.3")));
    let calls = f.calls();
    assert_eq!(count(&f, "live"), 1, "{calls:?}");
    assert_eq!(count(&f, "read blue"), 1, "{calls:?}");
    assert_eq!(count(&f, "read green"), 1, "{calls:?}");
    // Dead (its source fails): still one read, and the status says what
    // it could not read, as the version's error and the slots'.
    std::fs::remove_file(f.dir.path().join("live")).unwrap();
    f.clear_calls();
    let st = e.status().await;
    let prod = &st.environments[1];
    let calls = f.calls();
    assert_eq!(count(&f, "live"), 1, "{calls:?}");
    assert_eq!(count(&f, "read blue"), 1, "{calls:?}");
    assert_eq!(count(&f, "read green"), 1, "{calls:?}");
    let why = prod.version_error.clone().unwrap_or_default();
    assert!(why.contains("live"), "{why}");
    let slots = prod.revert.slots.as_ref().unwrap();
    // The error names its source (the live slot's), no prefix needed.
    assert!(why.contains("production's live slot"), "{why}");
    assert_eq!(slots.error.as_deref(), Some(why.as_str()), "{slots:?}");
    assert_eq!(slots.versions.get("green"), Some(&Some(v("v1.7.3"))));
}

/// The three sources of a blue-green environment come from two templates
/// (one with `{slot}` filled in), so they shared one backend name: an
/// error could not say which failed. Each has its own — in the version's
/// error, in a promotion's refusal and in a status's slots.
#[tokio::test]
async fn each_blue_green_source_names_itself_in_errors_and_in_status() {
    let f = Fake::new("blue", "v1.7.0", "v1.6.0", "v1.7.3");
    let e = f.engine(&switch_ok(&f), "1h");
    // The idle slot cannot be read: what runs is still known.
    std::fs::remove_file(f.dir.path().join("green")).unwrap();
    let st = e.status().await;
    let prod = &st.environments[1];
    assert_eq!(prod.version, Some(v("v1.7.0")));
    let slots = prod.revert.slots.as_ref().unwrap();
    let err = slots.error.clone().unwrap_or_default();
    assert!(err.contains("production's slot green"), "{err}");
    assert!(
        !err.contains("slot blue") && !err.contains("live slot"),
        "{err}"
    );
    // The live slot's own source fails: the version's error names it, and
    // so does the plan's.
    std::fs::remove_file(f.dir.path().join("blue")).unwrap();
    let st = e.status().await;
    let why = st.environments[1].version_error.clone().unwrap_or_default();
    assert!(why.contains("production's slot blue"), "{why}");
    let refused = e
        .promote("production", None, unseen(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("production's slot blue"), "{refused}");
    // The live slot pointer fails: named as that.
    f.write("blue", "v1.7.0");
    std::fs::remove_file(f.dir.path().join("live")).unwrap();
    let st = e.status().await;
    let why = st.environments[1].version_error.clone().unwrap_or_default();
    assert!(why.contains("production's live slot"), "{why}");
    assert!(!why.contains("slot blue"), "{why}");
}

/// A plan reads the live slot and what the slots run at once, not one
/// after the other: here the live slot's source answers only once the
/// live slot's version is being read (it waits for that read's mark), so
/// reading them in turn never gets an answer (the live source gives up
/// after 10 s and the plan fails); at once, both answer.
#[tokio::test]
async fn a_plan_reads_the_live_slot_and_the_slots_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("live"), "blue\n").unwrap();
    std::fs::write(dir.path().join("blue"), "v1.7.0\n").unwrap();
    std::fs::write(dir.path().join("green"), "v1.6.0\n").unwrap();
    std::fs::write(dir.path().join("staging"), "v1.7.3\n").unwrap();
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
live = {{ command = ["sh", "-c", "i=0; while [ ! -e {d}/reading-blue ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e {d}/reading-blue ] && cat {d}/live", ], timeout = "30s" }}
slot_version = {{ command = ["sh", "-c", "touch {d}/reading-$0; cat {d}/$0", "{{slot}}"] }}
deploy = {{ command = ["sh", "-c", "true", "{{slot}}"] }}
switch = {{ command = ["sh", "-c", "true", "{{slot}}"] }}
"#
    );
    let cfg = Config::parse(&src, Path::new("<test>")).unwrap();
    let e = Engine::open(cfg).unwrap();
    let plan = e.plan("production", None).await.unwrap();
    assert_eq!(plan.current, Some(v("v1.7.0")));
    assert_eq!(plan.version, v("v1.7.3"));
}

/// A promotion's step needs which slot is live and what the idle slot
/// runs, never what the live slot runs (a rollback asks that, to know
/// whether the old slot is warm). Here the live slot's version source
/// answers the promotion's first read (what production runs) and then
/// hangs until the test lets it go (its timeout 10 minutes): the step
/// reads it at once with the others but does not wait for it, so the
/// promotion lands; waiting for it, the promotion would hang.
#[tokio::test(flavor = "multi_thread")]
async fn a_promotion_does_not_wait_for_the_live_slots_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("live"), "blue\n").unwrap();
    std::fs::write(dir.path().join("blue"), "v1.7.0\n").unwrap();
    std::fs::write(dir.path().join("green"), "v1.6.0\n").unwrap();
    std::fs::write(dir.path().join("staging"), "v1.7.3\n").unwrap();
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
slot_version = {{ command = ["sh", "-c", "if [ $0 = blue ] && [ -e {d}/read-blue ]; then while [ ! -e {d}/release ]; do sleep 0.05; done; fi; [ $0 = blue ] && touch {d}/read-blue; cat {d}/$0", "{{slot}}"], timeout = "10m" }}
deploy = {{ command = ["sh", "-c", "echo $1 > {d}/$0", "{{slot}}", "{{version}}"], timeout = "20s", poll = "100ms" }}
switch = {{ command = ["sh", "-c", "echo $0 > {d}/live", "{{slot}}"], timeout = "5s" }}
"#
    );
    let cfg = Config::parse(&src, Path::new("<test>")).unwrap();
    let e = Engine::open(cfg).unwrap();
    let promoted = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        e.promote("production", None, unseen(), None),
    )
    .await;
    std::fs::write(dir.path().join("release"), "").unwrap();
    let rec = promoted
        .expect("the promotion does not wait for the live slot's version")
        .unwrap();
    assert_eq!(rec.version, v("v1.7.3"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("live")).unwrap(),
        "green\n"
    );
}
