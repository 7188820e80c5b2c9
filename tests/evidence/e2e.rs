//! The CI and review gates through the real binary: the demo fleet, a real
//! git repository (production runs v1.7.3, staging the pending v1.8.0), a
//! CI command script answering by its exit code, and the fake GitHub for
//! reviews. Red and running CI refuse with exit 3 naming the gate; green
//! passes; a commit that came in without an approved pull request refuses
//! and is named.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Fleet, Home, Output};
use crate::github::{FakeGithub, REPO, TOKEN, TOKEN_VAR};
use crate::repo::TestRepo;

/// A CI command that prints what it was asked and the text of `STATE`'s
/// second line, and exits with the code on its first line.
fn ci_script(dir: &Path) -> PathBuf {
    let p = dir.join("ci-state");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncd '{d}'\necho \"$1\" >> CI_CALLS\necho \"asked about $1\"\nsed -n 2p STATE\nexit \"$(sed -n 1p STATE)\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn set_state(home: &Home, code: i32, line: &str) {
    std::fs::write(home.path().join("STATE"), format!("{code}\n{line}\n")).unwrap();
}

fn config(fleet: &Fleet, repo: &Path, ci: &str, gates: &str) -> String {
    let release = format!("[release]\ngit = \"{}\"\nci = {ci}\n", repo.display());
    fleet.config(&release).replace(
        "gates = { requires_approval = true }",
        &format!("gates = {{ requires_approval = true, {gates} }}"),
    )
}

fn run(home: &Home, args: &[&str]) -> Output {
    let out = home
        .cmd()
        .env(TOKEN_VAR, TOKEN)
        .args(args)
        .output()
        .expect("run shipdeck");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn pending(home: &Home) -> Value {
    run(home, &["status", "--json"]).expect_code(0).json()["pending"].clone()
}

#[test]
fn ci_red_and_running_refuse_production_and_green_lets_it_go() {
    let repo = TestRepo::shop();
    let sha = repo.git(&["rev-parse", "v1.8.0^{commit}"]);
    let fleet = Fleet::start();
    let home = Home::new();
    let script = ci_script(home.path());
    home.config(&config(
        &fleet,
        repo.path(),
        &format!("{{ command = [\"{}\", \"{{sha}}\"] }}", script.display()),
        "requires_ci = true",
    ));
    run(&home, &["approve", "production", "--note", "accepted"]).expect_code(0);

    set_state(&home, 1, "3 tests failed: checkout_rounding");
    let p = pending(&home);
    assert_eq!(p["version"], "v1.8.0");
    assert_eq!(
        p["ci"],
        json!({"state": "failure", "detail": "3 tests failed: checkout_rounding", "url": null})
    );
    let out = run(&home, &["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("ci") && out.stderr.contains("CI red: 3 tests failed"),
        "{out:#?}"
    );
    // The command was asked about the commit v1.8.0 names.
    let calls = std::fs::read_to_string(home.path().join("CI_CALLS")).unwrap();
    assert!(calls.lines().all(|l| l == sha), "{calls}");

    set_state(&home, 3, "");
    let out = run(&home, &["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains(&format!("CI still running: asked about {sha}")),
        "{out:#?}"
    );

    // Anything else is unknown, which blocks too, with the reason.
    set_state(&home, 9, "");
    let p = pending(&home);
    assert_eq!(p["ci"]["state"], "unknown", "{p}");
    assert!(
        p["ci"]["detail"].as_str().unwrap().contains("exit code 9"),
        "{p}"
    );
    let gate = p["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "ci")
        .cloned()
        .unwrap();
    assert_eq!(gate["ok"], false);

    set_state(&home, 0, "https://ci.example/runs/812");
    let p = pending(&home);
    assert_eq!(p["ci"]["state"], "success", "{p}");
    assert_eq!(p["ci"]["url"], "https://ci.example/runs/812");
    let out = run(&home, &["promote", "production", "--yes"]);
    out.expect_code(0);
    let s = run(&home, &["status", "--json"]).expect_code(0).json();
    assert_eq!(s["environments"][3]["version"], "v1.8.0");
}

#[test]
fn a_commit_without_an_approved_pull_request_refuses_and_is_named() {
    let repo = TestRepo::shop();
    let shas: Vec<String> = repo
        .git(&["rev-list", "v1.7.3..v1.8.0"])
        .lines()
        .map(str::to_string)
        .collect();
    assert!(shas.len() >= 5, "{shas:?}");
    let release = shas[0].clone(); // "release 1.8.0", pushed straight to main
    let fake = FakeGithub::start(|g| {
        for (i, s) in shas.iter().enumerate().skip(1) {
            g.pulls.insert(
                s.clone(),
                vec![
                    json!({"number": 20 + i, "merged_at": "2026-11-20T10:00:00Z",
                            "html_url": format!("https://github.com/{REPO}/pull/{}", 20 + i)}),
                ],
            );
            g.reviews.insert(
                20 + i as u64,
                vec![json!({"user": {"login": "dana"}, "state": "APPROVED"})],
            );
        }
        g.statuses.insert(
            shas[0].clone(),
            json!({"state": "success", "total_count": 1,
                   "statuses": [{"context": "ci", "state": "success", "target_url": "https://ci.example/1"}]}),
        );
    });
    let fleet = Fleet::start();
    let home = Home::new();
    home.config(&config(
        &fleet,
        repo.path(),
        &format!(
            "{{ github = {{ repo = \"{REPO}\", token_env = \"{TOKEN_VAR}\", api_url = \"{}\" }} }}",
            fake.api()
        ),
        "requires_review = true",
    ));
    run(&home, &["approve", "production"]).expect_code(0);
    let p = pending(&home);
    assert_eq!(p["ci"]["state"], "success", "{p}");
    assert_eq!(p["review"]["state"], "failure", "{p}");
    let short = &release[..7];
    let out = run(&home, &["promote", "production", "--yes"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("review")
            && out.stderr.contains(&format!(
                "{short} \"release 1.8.0\" (no merged pull request)"
            )),
        "{out:#?}"
    );
    assert!(!out.stderr.contains(TOKEN) && !out.stdout.contains(TOKEN));
    // Once it has its approved pull request, the release may go.
    fake.with(|g| {
        g.pulls.insert(
            release.clone(),
            vec![json!({"number": 40, "merged_at": "2026-11-21T10:00:00Z"})],
        );
        g.reviews.insert(
            40,
            vec![json!({"user": {"login": "erin"}, "state": "APPROVED"})],
        );
    });
    let p = pending(&home);
    assert_eq!(p["review"]["state"], "success", "{p}");
    assert!(
        p["review"]["detail"]
            .as_str()
            .unwrap()
            .contains("approved by dana, erin"),
        "{p}"
    );
    run(&home, &["promote", "production", "--yes"]).expect_code(0);
}
