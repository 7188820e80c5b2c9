use std::path::Path;

use crate::config::{Config, ConfigError};

const ENVS: &str = r#"
[[environments]]
name = "staging"
version = { url = "http://127.0.0.1:7878/envs/staging/version" }
deploy = { webhook = "http://127.0.0.1:7878/envs/staging/deploy" }

[[environments]]
name = "production"
version = { url = "http://127.0.0.1:7878/envs/production/version" }
deploy = { webhook = "http://127.0.0.1:7878/envs/production/deploy" }
"#;

/// `extra` starts on line 11.
fn parse(extra: &str) -> Result<Config, ConfigError> {
    Config::parse(&format!("{ENVS}{extra}"), Path::new("shipdeck.toml"))
}

/// `line` counts within `extra`, from 1.
fn err_at(extra: &str, line: usize, col: usize, what: &str) {
    let line = line + 10;
    let e = parse(extra).unwrap_err();
    assert_eq!((e.line, e.column), (Some(line), Some(col)), "{e}");
    assert!(e.message.contains(what), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("shipdeck.toml:{line}:{col}: ")),
        "{e}"
    );
}

const FULL: &str = r#"[environments.gates]
requires_approval = true
requires_ci = true
requires_review = true
requires_backup = true
requires_healthy_stage = true

[release]
git = "."
tag = "v{version}"
migrations = ["migrations/**", "db/migrate/**"]
ci = { github = { repo = "acme/shop", token_env = "GITHUB_TOKEN" } }
backup = { command = ["./backup-db", "{env}", "{version}"], timeout = "2h" }
restore = "pg_restore --clean -d shop /backups/{backup}"

[[freeze]]
from = "2026-12-20T00:00:00+01:00"
to = 2027-01-04T00:00:00Z
envs = ["production"]
reason = "end-of-year freeze"
"#;

#[test]
fn every_release_key_parses() {
    let c = parse(FULL).unwrap();
    let r = &c.release;
    assert_eq!(r.tag_template(), "v{version}");
    assert_eq!(r.migration_globs().len(), 2);
    assert_eq!(
        r.restore(),
        Some("pg_restore --clean -d shop /backups/{backup}")
    );
    let ci = r.ci.as_ref().unwrap().get_ref();
    assert_eq!(ci.github.as_ref().unwrap().repo, "acme/shop");
    let b = r.backup.as_ref().unwrap().get_ref();
    assert_eq!(b.command[1], "{env}");
    assert_eq!(b.timeout.0.as_secs(), 7200);
    let g = &c.environments[1].gates;
    assert!(g.requires_ci && g.requires_review && g.requires_backup && g.requires_healthy_stage);
    let f = crate::config::freezes(&c.freeze);
    assert_eq!(f[0].envs, vec!["production"]);
    assert_eq!(f[0].reason, "end-of-year freeze");
    // Defaults: no [release] at all.
    let c = parse("").unwrap();
    assert_eq!(c.release.tag_template(), "{version}");
    assert!(c.release.git.is_none() && c.freeze.is_empty());
    assert!(!c.environments[1].gates.requires_backup);
    // A command CI source.
    let c = parse("[release]\nci = { command = [\"./ci-state\", \"{sha}\"] }\n").unwrap();
    assert!(c.release.ci.unwrap().get_ref().command.is_some());
}

#[test]
fn a_relative_git_path_is_taken_from_the_config_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shipdeck.toml");
    std::fs::write(&p, format!("{ENVS}[release]\ngit = \"repo\"\n")).unwrap();
    let c = Config::load(&p).unwrap();
    assert_eq!(c.release.git.unwrap().into_inner(), dir.path().join("repo"));
}

#[test]
fn bad_release_keys_name_the_place() {
    err_at(
        "[release]\nbranch = \"x\"\n",
        2,
        1,
        "unknown field `branch`",
    );
    err_at(
        "[release]\ngit = \".\"\ntag = \"--{version}\"\n",
        3,
        7,
        "[release] tag",
    );
    err_at(
        "[release]\ngit = \".\"\ntag = \"v\"\n",
        3,
        7,
        "must contain {version}",
    );
    err_at(
        "[release]\ngit = \".\"\nmigrations = [\"db/**\", \"migrations/**.sql\"]\n",
        3,
        24,
        "`**` must be a whole path segment",
    );
    err_at("[release]\nmigrations = [\"db/**\"]\n", 2, 15, "needs git");
    err_at(
        "[release]\ngit = \".\"\ntimeout = \"0s\"\n",
        3,
        11,
        "[release] timeout = \"0s\" must be longer than zero",
    );
    err_at(
        "[release]\ntimeout = \"6m\"\n",
        2,
        11,
        "[release] timeout = \"6m\" is too long: at most 5m",
    );
    // The ci and backup timeouts alike: at the value, as written.
    err_at(
        "[release]\nci = { command = [\"./ci\"], timeout = \"0s\" }\n",
        2,
        38,
        "[release] ci timeout = \"0s\" must be longer than zero",
    );
    err_at(
        "[release]\nbackup = { command = [\"./b\"], timeout = \"25h\" }\n",
        2,
        41,
        "[release] backup timeout = \"25h\" is too long: at most 24h",
    );
    err_at(
        "[release]\nci = { command = [\"./ci\"], github = { repo = \"a/b\", token_env = \"T\" } }\n",
        2,
        6,
        "exactly one of",
    );
    err_at(
        "[release]\nci = { github = { repo = \"shop\", token_env = \"T\" } }\n",
        2,
        6,
        "\"owner/name\"",
    );
    err_at(
        "[release]\nbackup = { command = [\"./b\", \"{sha}\"] }\n",
        2,
        10,
        "unknown placeholder {sha}",
    );
    err_at(
        "[release]\nbackup = { command = [] }\n",
        2,
        10,
        "backup command is empty",
    );
    err_at(
        "[release]\nrestore = \"pg_restore {id}\"\n",
        2,
        11,
        "unknown placeholder {id}",
    );
    err_at(
        "[release]\nrestore = \"x\\u001b[2J\"\n",
        2,
        11,
        "control characters",
    );
}

#[test]
fn bad_freezes_name_the_place() {
    let f = |from: &str, to: &str, envs: &str, reason: &str| {
        format!("[[freeze]]\nfrom = {from}\nto = {to}\nenvs = {envs}\nreason = {reason}\n")
    };
    err_at(
        &f(
            "\"2026-12-20\"",
            "\"2027-01-01T00:00:00Z\"",
            "[\"production\"]",
            "\"x\"",
        ),
        2,
        8,
        "not an RFC 3339 time",
    );
    err_at(
        &f(
            "\"2027-01-02T00:00:00Z\"",
            "\"2027-01-01T00:00:00Z\"",
            "[\"production\"]",
            "\"x\"",
        ),
        3,
        6,
        "must come after",
    );
    err_at(
        &f(
            "\"2026-12-20T00:00:00Z\"",
            "\"2027-01-01T00:00:00Z\"",
            "[\"staging\", \"prod\"]",
            "\"x\"",
        ),
        4,
        20,
        "names \"prod\", which is not an environment (known: staging, production)",
    );
    err_at(
        &f(
            "\"2026-12-20T00:00:00Z\"",
            "\"2027-01-01T00:00:00Z\"",
            "[]",
            "\"x\"",
        ),
        4,
        8,
        "envs is empty",
    );
    err_at(
        &f(
            "\"2026-12-20T00:00:00Z\"",
            "\"2027-01-01T00:00:00Z\"",
            "[\"production\"]",
            "\"  \"",
        ),
        5,
        10,
        "[[freeze]] reason",
    );
}

#[test]
fn a_gate_key_without_its_source_points_at_the_key() {
    let gates = |k: &str| format!("[environments.gates]\n{k} = true\n");
    err_at(
        &gates("requires_ci"),
        2,
        15,
        "requires_ci = true needs [release] ci",
    );
    err_at(
        &format!(
            "{}[release]\nci = {{ command = [\"./ci\"] }}\n",
            gates("requires_review")
        ),
        2,
        19,
        "reviews are read from GitHub",
    );
    err_at(
        &gates("requires_backup"),
        2,
        19,
        "requires_backup = true needs [release] backup",
    );
    err_at(
        &format!(
            "{}[release]\nbackup = {{ command = [\"./b\"] }}\n",
            gates("requires_backup")
        ),
        2,
        19,
        "needs [release] git and migrations",
    );
    // false is fine without any source.
    parse("[environments.gates]\nrequires_ci = false\nrequires_backup = false\n").unwrap();
}
