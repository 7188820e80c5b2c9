//! `[policy] allow_self_approval = false` through the real binary: people
//! (USER) sharing one store and one demo fleet. Whoever promoted the
//! version into staging cannot give its Go; whoever promotes production
//! cannot do it on their own Go; someone else can. Refusals exit 3 and
//! name who and why.

mod common;

use common::{Fleet, Home, Output};

fn as_user(home: &Home, user: &str, args: &[&str]) -> Output {
    let out = home
        .cmd()
        .env("USER", user)
        .args(args)
        .output()
        .expect("run shipdeck");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_go_must_come_from_someone_other_than_who_ships_the_release() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config("[policy]\nallow_self_approval = false\n"));
    let host = shipdeck::engine::hostname();

    // alice ships v1.8.1 into staging, the approval stage of production.
    as_user(&home, "alice", &["promote", "staging", "--yes"]).expect_code(0);

    let refused = as_user(&home, "alice", &["approve", "production"]);
    refused.expect_code(3);
    assert!(
        refused
            .stderr
            .contains(&format!("alice@{host} promoted v1.8.1 into staging")),
        "{refused:?}"
    );
    assert!(
        refused.stderr.contains("allow_self_approval = false"),
        "{refused:?}"
    );

    // bob gives the Go, then may not ship on it himself.
    as_user(&home, "bob", &["approve", "production", "--note", "soaked"]).expect_code(0);
    let own = as_user(&home, "bob", &["promote", "production", "--yes"]);
    own.expect_code(3);
    assert!(
        own.stderr
            .contains(&format!("the Go for v1.8.1 is bob@{host}'s own")),
        "{own:?}"
    );
    // Anyone else sees the way open (alice too: the Go is not hers).
    let status = as_user(&home, "carol", &["status", "--json"]);
    let gates = status.json()["pending"]["gates"].clone();
    let gate = gates
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "self_approval")
        .unwrap_or_else(|| panic!("self_approval gate in {gates}"))
        .clone();
    assert_eq!(gate["ok"], true, "{gate}");

    // carol ships it.
    as_user(&home, "carol", &["promote", "production", "--yes"]).expect_code(0);

    // Both refusals are in the audit log, with who and why.
    let h = as_user(&home, "carol", &["history", "--json"]).json();
    let refusals: Vec<String> = h
        .as_array()
        .or_else(|| h["entries"].as_array())
        .expect("history entries")
        .iter()
        .filter(|e| e["outcome"] == "refused")
        .map(|e| format!("{} {}", e["actor"], e["detail"]))
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals.iter().all(|r| r.contains("self_approval")),
        "{refusals:?}"
    );
}

#[test]
fn by_default_the_promoter_may_approve_and_ship_on_their_own_go() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config(""));
    as_user(&home, "alice", &["promote", "staging", "--yes"]).expect_code(0);
    as_user(&home, "alice", &["approve", "production"]).expect_code(0);
    as_user(&home, "alice", &["promote", "production", "--yes"]).expect_code(0);
}

/// One person spelled two ways is still one person: `Alice` (or `ALICE`,
/// `[identity] name = "Alice@Laptop"` on one machine and the host's own
/// lower-case name on the other) gave a Go to the release alice promoted
/// into staging, and then shipped it on that Go (hostile test).
#[test]
fn the_same_name_in_another_case_is_the_same_person() {
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&fleet.config("[policy]\nallow_self_approval = false\n"));
    as_user(&home, "alice", &["promote", "staging", "--yes"]).expect_code(0);
    for spelling in ["Alice", "ALICE"] {
        let refused = as_user(&home, spelling, &["approve", "production"]);
        refused.expect_code(3);
        assert!(refused.stderr.contains("self_approval"), "{refused:?}");
    }
    as_user(&home, "bob", &["approve", "production"]).expect_code(0);
    let own = as_user(&home, "Bob", &["promote", "production", "--yes"]);
    own.expect_code(3);
    assert!(own.stderr.contains("self_approval"), "{own:?}");
    as_user(&home, "carol", &["promote", "production", "--yes"]).expect_code(0);
}
