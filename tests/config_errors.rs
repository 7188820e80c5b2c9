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

/// SPEC §4: config.example.toml has every option, commented. The keys the
/// SPEC itself names (§4, §7, §9) and every environment gate must be there,
/// set or commented out, so a reader finds them where they look first.
#[test]
fn the_example_names_every_gate_and_the_team_store() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    let named = |key: &str| {
        text.lines().any(|l| {
            let l = l.trim_start().trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} =")) || l.contains(&format!("{{ {key} ="))
        })
    };
    let missing: Vec<&str> = [
        "requires_approval",
        "approval_stage",
        "low_traffic_window",
        "requires_ci",
        "requires_review",
        "requires_backup",
        "requires_healthy_stage",
        "url",
        "password_env",
        "path",
        "allow_self_approval",
        "restore_command",
        "window",
        "baseline",
        "auto_rollback",
        "source",
    ]
    .into_iter()
    .filter(|k| !named(k))
    .collect();
    assert!(missing.is_empty(), "config.example.toml lacks {missing:?}");
    for line in [
        "# url = \"postgres://",
        "# password_env = ",
        "# requires_ci = true",
        "# requires_review = true",
        "# requires_healthy_stage = true",
    ] {
        assert!(text.contains(line), "config.example.toml lacks `{line}`");
    }
}

/// config.example.toml with production on `strategy`: its `rollback` line
/// set and the commented `[environments.TABLE]` block switched on, as a
/// reader following the comments would.
fn example_with(strategy: &str, table: &str) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    let header = format!("# [environments.{table}]");
    let mut out = String::new();
    let (mut on, mut found) = (false, false);
    for line in text.lines() {
        // Blue-green reads the version from the live slot and deploys per
        // slot: production's own keys go, as the comment says.
        let own = line.starts_with("version = { url = \"http://127.0.0.1:7878/envs/production/")
            || line.starts_with("deploy = { webhook = \"http://127.0.0.1:7878/envs/production/");
        if strategy == "blue-green" && own {
            continue;
        }
        if line == "rollback = \"redeploy\"" {
            out.push_str(&format!("rollback = \"{strategy}\"\n"));
            continue;
        }
        if line == header {
            on = true;
            found = true;
        }
        match line.strip_prefix("# ") {
            Some(l) if on => out.push_str(l),
            _ => {
                on = false;
                out.push_str(line);
            }
        }
        out.push('\n');
    }
    assert!(found, "config.example.toml has no commented {header}");
    out
}

#[test]
fn the_examples_blue_green_and_canary_tables_are_valid() {
    for (strategy, table) in [("blue-green", "blue_green"), ("canary", "canary")] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shipdeck.toml");
        let text = example_with(strategy, table);
        assert!(text.contains(&format!("\n[environments.{table}]\n")));
        std::fs::write(&file, &text).unwrap();
        Command::cargo_bin("shipdeck")
            .unwrap()
            .args(["config", "check"])
            .arg(&file)
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "4 environments: local → development → staging → production",
            ));
        // Without its table the strategy is refused, naming the line.
        let bare: String = text
            .split(&format!("[environments.{table}]\n"))
            .next()
            .unwrap()
            .to_string();
        std::fs::write(&file, &bare).unwrap();
        Command::cargo_bin("shipdeck")
            .unwrap()
            .args(["config", "check"])
            .arg(&file)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("shipdeck.toml:"));
    }
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

#[test]
fn a_notify_variable_that_holds_no_url_is_named_with_its_table() {
    let run = |value: &str| {
        Command::cargo_bin("shipdeck")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("SHIPDECK_TEST_NOTIFY_URL", value)
            .args(["config", "check", "tests/fixtures/config/notify_url.toml"])
            .assert()
    };
    for bad in ["not a url", "hooks.slack.com/services/T0/B0/x", "ftp://h/x"] {
        run(bad)
            .code(2)
            .stderr(predicate::str::contains(
                "tests/fixtures/config/notify_url.toml:7:1: ",
            ))
            .stderr(predicate::str::contains(
                "url_env names SHIPDECK_TEST_NOTIFY_URL, which holds no http:// or https:// URL",
            ))
            // The value is a secret: never echoed.
            .stderr(predicate::str::contains(bad).not());
    }
    run("https://hooks.example/services/T0/B0/x").success();
}

/// A `[store] url` the client library cannot read, with a password in it:
/// `config check` refuses it at its line and column, and neither it nor a
/// command that opens the store echoes the URL's password (found by hand:
/// `…:hunter2@127.0.0.1:notaport/db` came back whole in the message).
#[test]
fn a_store_url_that_cannot_be_read_is_named_at_its_place_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for (i, url) in [
        "postgres://team:Hunter2-pw@127.0.0.1:notaport/shipdeck",
        "postgres://team:Hunter2-pw@127.0.0.1:99999/shipdeck",
        "postgres://team:Hunter2-pw@[::1:5432/shipdeck",
        "postgresql://team:Hunter2-pw@db.internal:5432/shipdeck?connect_timeout=soon",
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("bad_store_{i}.toml"));
        std::fs::write(
            &path,
            format!(
                "[store]\nurl = \"{url}\"\n\n[[environments]]\nname = \"staging\"\nversion = {{ url = \"http://127.0.0.1:7878/envs/staging/version\" }}\ndeploy = {{ webhook = \"http://127.0.0.1:7878/envs/staging/deploy\" }}\n"
            ),
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let home = dir.path().join(format!("home_{i}"));
        let run = |args: &[&str]| {
            Command::cargo_bin("shipdeck")
                .unwrap()
                .env("HOME", &home)
                .env("XDG_STATE_HOME", home.join("state"))
                .env("XDG_DATA_HOME", home.join("data"))
                .args(args)
                .assert()
        };
        let out = run(&["config", "check", p]).code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(&format!("{p}:2:7: ")), "{url}: {err}");
        assert!(err.contains("[store] url"), "{url}: {err}");
        assert!(!err.contains("Hunter2"), "{url}: the password shown: {err}");
        let out = run(&["status", "--config", p]).code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(!err.contains("Hunter2"), "{url}: the password shown: {err}");
        let log =
            std::fs::read_to_string(home.join("state/shipdeck/shipdeck.log")).unwrap_or_default();
        assert!(
            !log.contains("Hunter2"),
            "{url}: the password logged: {log}"
        );
    }
}

/// `[release] ci` and `backup` timeouts out of range are quoted as written
/// ("1d", not the rewritten "24h"), at the value, like every other
/// duration; each checked alone (the ci line removed for the backup one).
#[test]
fn release_ci_and_backup_timeouts_are_quoted_as_written() {
    expect(
        "release_timeouts_as_written.toml",
        "14:53",
        "[release] ci timeout = \"1d\" is too long: at most 5m",
    );
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config/release_timeouts_as_written.toml");
    let src = std::fs::read_to_string(fixture).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shipdeck.toml");
    std::fs::write(&path, src.replace("timeout = \"1d\"", "timeout = \"1m\"")).unwrap();
    Command::cargo_bin("shipdeck")
        .unwrap()
        .args(["config", "check", path.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("shipdeck.toml:15:71: "))
        .stderr(predicate::str::contains(
            "[release] backup timeout = \"2d\" is too long: at most 24h",
        ));
}
