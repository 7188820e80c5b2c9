//! A backup hook that misbehaves, through the real binary over the demo
//! fleet with a real repository: one that hangs (its timeout passes), one
//! that exits 0 but prints nothing, one that prints a flood of garbage.
//! Each refuses the migration release's deploy with exit 3, names the
//! problem, deploys nothing, and leaves a failed backup record saying why.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Fleet, Home};
use crate::repo::TestRepo;

/// What the fleet's production runs and the deploy under way, if any.
fn production(addr: &str) -> (String, Value) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the fleet");
    write!(s, "GET /envs HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let envs: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
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

/// An executable hook in `dir` whose body is `script`; it logs each call.
fn hook(dir: &Path, name: &str, script: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho \"$1 $2\" >> '{}'\n{script}\n",
            dir.join("CALLS").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn config(fleet: &Fleet, repo: &Path, hook: &Path, timeout: &str) -> String {
    let base = fleet.config("").replace(
        "gates = { requires_approval = true }",
        "gates = { requires_approval = true, requires_backup = true }",
    );
    format!(
        "{base}\n[release]\ngit = \"{}\"\nmigrations = [\"migrations/**\"]\nbackup = {{ command = [\"{}\", \"{{env}}\", \"{{version}}\"], timeout = \"{timeout}\" }}\nrestore = \"pg_restore -d shop /backups/{{backup}}\"\n",
        repo.display(),
        hook.display()
    )
}

/// Promote production with `hook` as the backup: refused with exit 3,
/// nothing deployed, the failed backup in the audit log. Returns stderr
/// and the failed backup's detail.
fn refused(home: &Home, fleet: &Fleet, calls: &Path, before: usize) -> (String, String) {
    let out = home.run(&["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("nothing was deployed"),
        "{}",
        out.stderr
    );
    // The hook did run (once more than before), and production did not move.
    let n = std::fs::read_to_string(calls)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    assert_eq!(n, before + 1, "the hook ran {n} times");
    assert_eq!(
        production(&fleet.addr),
        ("v1.7.3".to_string(), Value::Null),
        "production was deployed to"
    );
    let h = home
        .run(&["history", "production", "--json"])
        .expect_code(0)
        .json();
    let entries = h["entries"].as_array().unwrap();
    assert!(
        !entries
            .iter()
            .any(|e| e["action"] == "promote" && e["outcome"] != "refused"),
        "a promote got past the refusal: {entries:#?}"
    );
    let failed = entries
        .iter()
        .find(|e| e["action"] == "backup")
        .expect("the backup is in the audit log");
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert_eq!(failed["version"], "v1.8.0", "{failed}");
    let refusal = entries
        .iter()
        .find(|e| e["action"] == "promote")
        .expect("the refusal is in the audit log");
    assert_eq!(refusal["outcome"], "refused", "{refusal}");
    assert!(
        refusal["detail"].as_str().unwrap().starts_with("backup: "),
        "{refusal}"
    );
    (
        out.stderr.clone(),
        failed["detail"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_backup_hook_that_hangs_prints_nothing_or_prints_garbage_refuses_the_deploy() {
    let repo = TestRepo::shop();
    let fleet = Fleet::start();
    let home = Home::new();
    let hooks = tempfile::tempdir().unwrap();
    let calls = hooks.path().join("CALLS");

    // Hangs: killed when its timeout passes.
    let hangs = hook(hooks.path(), "backup-hangs", "sleep 30");
    home.config(&config(&fleet, repo.path(), &hangs, "2s"));
    home.run(&["approve", "production", "--note", "accepted"])
        .expect_code(0);
    let (stderr, detail) = refused(&home, &fleet, &calls, 0);
    for text in [&stderr, &detail] {
        assert!(text.contains("no answer within 2s"), "{text}");
        assert!(text.contains("backup hook"), "{text}");
    }

    // Exits 0 and prints nothing: no backup id, so no backup.
    let silent = hook(hooks.path(), "backup-silent", "exit 0");
    home.config(&config(&fleet, repo.path(), &silent, "20s"));
    let (stderr, detail) = refused(&home, &fleet, &calls, 1);
    for text in [&stderr, &detail] {
        assert!(
            text.contains("printed nothing: the backup's id must be its last output line"),
            "{text}"
        );
    }

    // A flood of output ending in binary noise with escape sequences: no
    // id, and none of it reaches the terminal or the audit log raw.
    let garbage = hook(
        hooks.path(),
        "backup-garbage",
        "yes 'pg_dump: dumping table shop.orders \u{1b}[31mred\u{1b}[0m' | head -n 60000\nprintf '\\033]0;pwned\\007\\377\\376\\001\\n'",
    );
    home.config(&config(&fleet, repo.path(), &garbage, "20s"));
    let (stderr, detail) = refused(&home, &fleet, &calls, 2);
    for text in [&stderr, &detail] {
        assert!(text.contains("not text (invalid UTF-8)"), "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.len() < 2000, "{} bytes: {text}", text.len());
    }

    // One endless line: too long to be an id.
    let long = hook(
        hooks.path(),
        "backup-long",
        "head -c 3000000 /dev/zero | tr '\\0' x",
    );
    home.config(&config(&fleet, repo.path(), &long, "20s"));
    let (stderr, _) = refused(&home, &fleet, &calls, 3);
    assert!(stderr.contains("longer than 200 characters"), "{stderr}");
    assert!(stderr.len() < 2000, "{} bytes", stderr.len());

    // status --json has no backup for the release after all that.
    let s = home.run(&["status", "--json"]).expect_code(0).json();
    assert_eq!(s["pending"]["version"], "v1.8.0");
    assert_eq!(s["pending"]["backup"], Value::Null);
}
