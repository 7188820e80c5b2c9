//! `shipdeck config check` on every kind of config error: exit 2, and the
//! message names the file, line and column and what is expected.

use assert_cmd::Command;
use predicates::prelude::*;

fn check(fixture: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("shipdeck")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "config",
            "check",
            &format!("tests/fixtures/config/{fixture}"),
        ])
        .assert()
}

fn expect(fixture: &str, place: &str, what: &str) {
    check(fixture)
        .code(2)
        .stderr(predicate::str::contains(format!(
            "tests/fixtures/config/{fixture}:{place}: "
        )))
        .stderr(predicate::str::contains(what));
}

#[test]
fn unknown_key() {
    expect(
        "unknown_key.toml",
        "12:1",
        "unknown field `monitord`, expected one of",
    );
}

#[test]
fn wrong_type() {
    expect("wrong_type.toml", "9:17", "expected a boolean");
}

#[test]
fn duplicate_environment() {
    expect(
        "duplicate_env.toml",
        "9:8",
        "duplicate environment name \"staging\"",
    );
}

#[test]
fn gate_names_a_missing_environment() {
    expect(
        "missing_stage.toml",
        "12:54",
        "approval_stage names \"qa\", which is not an environment (known: staging, production)",
    );
}

#[test]
fn malformed_duration() {
    expect(
        "bad_duration.toml",
        "9:10",
        "malformed duration \"30 minutes\"",
    );
}

#[test]
fn toml_syntax_error() {
    expect("bad_syntax.toml", "8:9", "unclosed table");
}

#[test]
fn deploy_with_two_methods() {
    expect(
        "two_deploys.toml",
        "11:10",
        "deploy needs exactly one of webhook",
    );
}

#[test]
fn the_example_config_is_valid() {
    Command::cargo_bin("shipdeck")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["config", "check", "config.example.toml"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "4 environments: local → development → staging → production",
        ));
}

#[test]
fn no_config_at_all_says_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("shipdeck")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("SHIPDECK_CONFIG")
        .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .arg("status")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no config found"))
        .stderr(predicate::str::contains("shipdeck demo"))
        .stderr(predicate::str::contains("config.example.toml"));
}

#[test]
fn config_is_found_through_the_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("shipdeck")
        .unwrap()
        .current_dir(dir.path())
        .env(
            "SHIPDECK_CONFIG",
            format!(
                "{}/tests/fixtures/config/wrong_type.toml",
                env!("CARGO_MANIFEST_DIR")
            ),
        )
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .args(["config", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("wrong_type.toml:9:17"));
}

#[test]
fn a_canary_track_label_that_is_no_label_name_is_named() {
    expect(
        "canary_bad_track_label.toml",
        "14:1",
        "canary.track_label \"canary track\" is not a metrics label name",
    );
}

#[test]
fn canary_steps_that_fall_name_the_steps() {
    expect(
        "canary_steps_fall.toml",
        "15:9",
        "canary.steps must rise step by step, but 10 follows 50",
    );
}
