//! The real binary over the demo fleet with a real repository: commits and
//! migrations in `status --json`, the backup before a migration release (and
//! a failed one that deploys nothing), freezes and breaking one, and the
//! restore command shown on a rollback.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;

use crate::common::{Fleet, Home};
use crate::repo::TestRepo;

/// GET a path of the fleet, the body as JSON (plain HTTP/1.0 over std).
fn get(addr: &str, path: &str) -> Value {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the fleet");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// What the fleet's production runs and whether a deploy is under way.
fn production(addr: &str) -> (String, Value) {
    let envs = get(addr, "/envs");
    let p = envs["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "production")
        .unwrap()
        .clone();
    (
        p["version"].as_str().unwrap().to_string(),
        p["deploying_to"].clone(),
    )
}

/// A backup hook that logs its calls, fails while `FAIL` exists, and
/// prints its id last.
fn backup_script(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("backup-db");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncd '{d}'\necho \"$1 $2\" >> CALLS\nif [ -e FAIL ]; then echo 'pg_dump: connection refused' >&2; exit 1; fi\necho \"dumping shop for $1 $2\"\necho \"bk-$1-$2-$(wc -l < CALLS | tr -d ' ')\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn config(fleet: &Fleet, repo: &Path, hook: &Path, freeze: &str) -> String {
    let base = fleet.config("").replace(
        "gates = { requires_approval = true }",
        "gates = { requires_approval = true, requires_backup = true }",
    );
    format!(
        "{base}\n[release]\ngit = \"{}\"\nmigrations = [\"migrations/**\", \"db/migrate/**\"]\nbackup = {{ command = [\"{}\", \"{{env}}\", \"{{version}}\"], timeout = \"20s\" }}\nrestore = \"pg_restore --clean -d shop /backups/{{backup}}\"\n{freeze}",
        repo.display(),
        hook.display()
    )
}

fn history(home: &Home) -> Vec<Value> {
    home.run(&["history", "production", "--json"])
        .expect_code(0)
        .json()["entries"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_pending_release_from_git_backup_freeze_and_restore_end_to_end() {
    let mut repo = TestRepo::shop();
    repo.commit("src/a.rs", "a\n", "tidy a", "Alice Example");
    repo.tag("v1.8.1");
    repo.commit("src/b.rs", "b\n", "tidy b", "Alice Example");
    repo.tag("v1.9.0");
    let fleet = Fleet::start();
    let home = Home::new();
    let hooks = tempfile::tempdir().unwrap();
    let hook = backup_script(hooks.path());
    home.config(&config(&fleet, repo.path(), &hook, ""));

    // status --json: the commits staging → production would bring, and the
    // migration they carry.
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    let p = &s["pending"];
    assert_eq!(p["to"], "production");
    assert_eq!(p["version"], "v1.8.0");
    let commits = p["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 6, "{p:#}");
    assert_eq!(p["commits_total"], 6);
    assert_eq!(p["commits_capped"], false);
    assert_eq!(commits[0]["subject"], "release 1.8.0");
    assert_eq!(
        commits[0]["sha"],
        repo.git(&["rev-parse", "v1.8.0^{commit}"])
    );
    for c in commits {
        for k in ["sha", "author", "date", "subject"] {
            assert!(c[k].is_string(), "{k} in {c}");
        }
    }
    assert_eq!(
        p["migrations"],
        serde_json::json!(["migrations/0003_orders.sql"])
    );
    assert_eq!(p["migration_release"], true);
    assert_eq!(p["backup"], Value::Null);
    assert_eq!(p["git_error"], Value::Null);
    let gate = p["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "backup")
        .expect("backup gate");
    assert_eq!(gate["ok"], true, "{gate}");
    // The environment column carries the flag too, and the human table says so.
    let prod = &s["environments"][3];
    assert_eq!(prod["release"]["migration_release"], true);
    let out = home.run(&["status"]);
    out.expect_code(0);
    assert!(out.stdout.contains("MIGRATIONS"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("promoting v1.8.0 brings database migrations (migrations/0003_orders.sql)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("release 1.8.0"), "{}", out.stdout);
    // A stage without migrations: development → staging brings v1.8.1.
    let staging = &s["environments"][2];
    assert_eq!(staging["release"]["migration_release"], false);
    assert_eq!(staging["release"]["commits"][0]["subject"], "tidy a");

    home.run(&["approve", "production", "--note", "accepted"])
        .expect_code(0);

    // A failing backup: refused with exit 3, and no deploy call was made.
    std::fs::write(hooks.path().join("FAIL"), "").unwrap();
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("backup") && out.stderr.contains("nothing was deployed"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("connection refused"), "{out:#?}");
    let (v, deploying) = production(&fleet.addr);
    assert_eq!((v.as_str(), &deploying), ("v1.7.3", &Value::Null));
    let h = history(&home);
    assert!(
        !h.iter()
            .any(|e| e["action"] == "promote" && e["outcome"] != "refused"),
        "a promote got past the refusal: {h:#?}"
    );
    assert!(
        h.iter()
            .any(|e| e["action"] == "backup" && e["outcome"] == "failed"),
        "{h:#?}"
    );

    // The backup runs, its id is recorded, then the deploy.
    std::fs::remove_file(hooks.path().join("FAIL")).unwrap();
    let out = home.run(&["promote", "production", "--yes", "--json"]);
    out.expect_code(0);
    assert_eq!(out.json()["deployed"]["version"], "v1.8.0");
    let calls = std::fs::read_to_string(hooks.path().join("CALLS")).unwrap();
    assert_eq!(calls, "production v1.8.0\nproduction v1.8.0\n");
    let id = "bk-production-v1.8.0-2";
    let h = history(&home);
    let backup = h
        .iter()
        .find(|e| e["action"] == "backup" && e["outcome"] == "succeeded")
        .expect("backup recorded");
    assert!(backup["detail"].as_str().unwrap().contains(id), "{backup}");
    let promoted = h
        .iter()
        .find(|e| e["action"] == "promote" && e["outcome"] == "succeeded")
        .expect("promote recorded");
    assert!(
        promoted["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("database backup {id} taken")),
        "{promoted}"
    );

    // The rollback says the schema stays and shows the restore command.
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    let notice = &s["environments"][3]["rollback_schema"];
    assert_eq!(
        notice["restore"],
        format!("pg_restore --clean -d shop /backups/{id}")
    );
    let out = home.run(&["rollback", "production", "--yes"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("rolling back the code leaves the schema as it is"),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "(shipdeck never runs this): pg_restore --clean -d shop /backups/{id}"
        )),
        "{out:#?}"
    );
    // Back to pending, with the backup recorded for it.
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    assert_eq!(s["pending"]["version"], "v1.8.0");
    assert_eq!(s["pending"]["backup"]["id"], id);
    assert!(s["pending"]["backup"]["at"].is_string());

    // A freeze refuses, names its reason, deploys nothing …
    let freeze = "\n[[freeze]]\nfrom = \"2020-01-01T00:00:00Z\"\nto = \"2099-01-01T00:00:00+01:00\"\nenvs = [\"production\"]\nreason = \"end-of-year freeze\"\n";
    home.config(&config(&fleet, repo.path(), &hook, freeze));
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("frozen until 2099-01-01 00:00 +01:00: end-of-year freeze"),
        "{out:#?}"
    );
    assert_eq!(production(&fleet.addr).1, Value::Null);
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    assert_eq!(
        s["environments"][3]["freeze"]["reason"],
        "end-of-year freeze"
    );
    // … and breaking it proceeds and is audited: who, which freeze, why.
    let out = home.run(&[
        "promote",
        "production",
        "--yes",
        "--break-freeze",
        "hotfix for INC-42",
    ]);
    out.expect_code(0);
    let h = history(&home);
    let broke = h
        .iter()
        .find(|e| e["action"] == "promote" && e["outcome"] == "succeeded")
        .unwrap();
    let d = broke["detail"].as_str().unwrap();
    assert!(
        d.contains("tester@")
            && d.contains("broke the freeze \"end-of-year freeze\"")
            && d.contains("because: hotfix for INC-42"),
        "{broke}"
    );
    assert!(broke["actor"].as_str().unwrap().starts_with("tester@"));
    let out = home.run(&["promote", "production", "--yes", "--break-freeze", " "]);
    out.expect_code(2);
}

#[test]
fn a_missing_tag_or_repository_is_shown_and_blocks_the_backup_gate() {
    let repo = TestRepo::shop();
    // Only v1.7.2 .. v1.8.0: development's v1.8.1 has no tag.
    let fleet = Fleet::start();
    let home = Home::new();
    let hooks = tempfile::tempdir().unwrap();
    let hook = backup_script(hooks.path());
    home.config(&config(&fleet, repo.path(), &hook, ""));
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    let staging = &s["environments"][2]["release"];
    assert_eq!(
        staging["git_error"],
        format!("v1.8.1: no tag v1.8.1 in {}", repo.path().display())
    );
    // Not a repository: production's backup gate is unknown, which blocks.
    let plain = tempfile::tempdir().unwrap();
    home.config(&config(&fleet, plain.path(), &hook, ""));
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    let gate = s["pending"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "backup")
        .unwrap()
        .clone();
    assert_eq!(gate["ok"], false);
    assert!(
        gate["detail"]
            .as_str()
            .unwrap()
            .contains("is not a git repository"),
        "{gate}"
    );
    home.run(&["approve", "production"]).expect_code(0);
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("cannot tell whether v1.8.0 carries migrations"),
        "{out:#?}"
    );
    assert!(!hooks.path().join("CALLS").exists(), "the hook ran");
    // Hostile versions are bad usage before anything runs.
    let out = home.run(&[
        "promote",
        "production",
        "--version",
        "--upload-pack=touch /tmp/x",
    ]);
    out.expect_code(2);
}

#[test]
fn a_release_that_drops_what_production_runs_says_so() {
    let repo = crate::git_backend::hotfix_repo();
    let fleet = Fleet::start();
    let home = Home::new();
    let hooks = tempfile::tempdir().unwrap();
    let hook = backup_script(hooks.path());
    home.config(&config(&fleet, repo.path(), &hook, ""));

    // status --json: v1.8.0 brings one commit and drops the two production
    // runs, one of them a migration.
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    let p = &s["pending"];
    assert_eq!(p["to"], "production");
    assert_eq!(p["version"], "v1.8.0");
    assert_eq!(p["git_error"], Value::Null, "{p:#}");
    assert_eq!(p["commits_total"], 1, "{p:#}");
    assert_eq!(p["dropped_total"], 2, "{p:#}");
    assert_eq!(p["dropped_capped"], false);
    let dropped = p["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 2);
    assert_eq!(dropped[0]["subject"], "hotfix: retry declined payments");
    assert_eq!(
        dropped[0]["sha"],
        repo.git(&["rev-parse", "v1.7.3^{commit}"])
    );
    assert_eq!(dropped[1]["subject"], "hotfix: index orders by day");
    assert_eq!(
        p["dropped_migrations"],
        serde_json::json!(["migrations/0004_orders_day.sql"])
    );
    // What the release brings is unchanged: no migration comes with it.
    assert_eq!(p["migration_release"], false);
    let prod = &s["environments"][3]["release"];
    assert_eq!(prod["dropped_total"], 2);
    // The ordinary linear case: development → staging drops nothing.
    let staging = &s["environments"][2]["release"];
    assert_eq!(staging["git_error"], Value::Null, "{staging:#}");
    assert_eq!(staging["commits_total"], 1);
    assert_eq!(staging["dropped_total"], 0);
    assert_eq!(staging["dropped"], serde_json::json!([]));
    assert_eq!(staging["dropped_migrations"], serde_json::json!([]));

    // The human table says it loudly: it is a schema rollback in disguise.
    let short = &repo.git(&["rev-parse", "--short=7", "v1.7.3^{commit}"]);
    let out = home.run(&["status"]);
    out.expect_code(0);
    let loud = format!(
        "!! DROPS 2 commits production runs (not in v1.8.0), with a migration (migrations/0004_orders_day.sql): the schema stays ahead of the code; newest {short} hotfix: retry declined payments"
    );
    assert!(out.stdout.contains(&loud), "{}", out.stdout);
    assert!(!out.stdout.contains("staging runs"), "{}", out.stdout);

    // Without a migration among them, one calm line.
    let calm_cfg = config(&fleet, repo.path(), &hook, "")
        .replace("migrations = [\"migrations/**\", ", "migrations = [");
    assert!(calm_cfg.contains("migrations = [\"db/migrate/**\"]"));
    home.config(&calm_cfg);
    let out = home.run(&["status"]);
    out.expect_code(0);
    let calm = format!(
        "! drops 2 commits production runs (not in v1.8.0): {short} hotfix: retry declined payments"
    );
    assert!(out.stdout.contains(&calm), "{}", out.stdout);
    assert!(!out.stdout.contains("DROPS"), "{}", out.stdout);

    // A script's promote --yes logs what it ships and what that drops, as
    // the interactive question shows it, before the deploy.
    home.config(&config(&fleet, repo.path(), &hook, ""));
    home.run(&["approve", "production"]).expect_code(0);
    let out = home.run(&["promote", "production", "--yes", "--json"]);
    out.expect_code(0);
    assert_eq!(out.json()["deployed"]["version"], "v1.8.0");
    assert!(
        out.stderr.contains("Pending: v1.8.0 staging → production"),
        "{out:#?}"
    );
    assert!(out.stderr.contains(&loud), "{out:#?}");
}
