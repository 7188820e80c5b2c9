//! The git backend on a real repository.

use std::time::Duration;

use shipdeck::backends::vcs::{GitRepo, VcsError};
use shipdeck::domain::Version;

use crate::repo::TestRepo;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn repo(r: &TestRepo, tag: &str) -> GitRepo {
    GitRepo::new(r.path(), tag, Duration::from_secs(10))
}

#[tokio::test]
async fn a_version_resolves_to_its_tag_and_commit() {
    let r = TestRepo::shop();
    let g = repo(&r, "{version}");
    let res = g.resolve(&v("v1.8.0")).await.unwrap();
    assert_eq!(res.git_ref, "v1.8.0");
    assert_eq!(res.sha, r.git(&["rev-parse", "v1.8.0^{commit}"]));
    // With a tag template: version 1.7.3 names the tag v1.7.3.
    let g = repo(&r, "v{version}");
    let res = g.resolve(&v("1.7.3")).await.unwrap();
    assert_eq!(res.git_ref, "v1.7.3");
    assert_eq!(res.sha, r.git(&["rev-parse", "v1.7.3^{commit}"]));
    // An annotated tag resolves to its commit, not to the tag object.
    r.git(&["tag", "-a", "-m", "annotated", "v1.9.0", "v1.8.0"]);
    let res = repo(&r, "{version}").resolve(&v("v1.9.0")).await.unwrap();
    assert_eq!(res.sha, r.git(&["rev-parse", "v1.8.0^{commit}"]));
}

#[tokio::test]
async fn a_missing_tag_says_which_tag_in_which_repository() {
    let r = TestRepo::shop();
    let e = repo(&r, "{version}")
        .resolve(&v("v2.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(e, VcsError::NoRef { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("v2.0.0: no tag v2.0.0 in {}", r.path().display())
    );
    let e = repo(&r, "v{version}")
        .resolve(&v("v1.8.0"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("v1.8.0: no tag vv1.8.0 in {}", r.path().display())
    );
}

#[tokio::test]
async fn the_range_lists_commits_newest_first_and_the_paths_changed() {
    let r = TestRepo::shop();
    let g = repo(&r, "{version}");
    let range = g.range(&v("v1.7.3"), &v("v1.8.0")).await.unwrap();
    let subjects: Vec<&str> = range.commits.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(range.commits.len(), 6, "{subjects:?}");
    assert_eq!(range.total, 6);
    assert!(!range.capped());
    assert_eq!(subjects[0], "release 1.8.0");
    assert_eq!(*subjects.last().unwrap(), "add orders table");
    assert!(subjects.contains(&"Merge branch 'feature'"));
    assert!(subjects.contains(&"search by name"));
    // Newest first by date.
    for w in range.commits.windows(2) {
        assert!(w[0].date >= w[1].date, "{subjects:?}");
    }
    let first = &range.commits[0];
    assert_eq!(first.sha, r.git(&["rev-parse", "v1.8.0^{commit}"]));
    assert_eq!(first.author, "Alice Example");
    assert_eq!(first.short().len(), 7);
    // Paths: what the release changes, not what earlier releases did.
    assert!(
        range
            .paths
            .contains(&"migrations/0003_orders.sql".to_string())
    );
    assert!(range.paths.contains(&"src/search.rs".to_string()));
    assert!(!range.paths.iter().any(|p| p.contains("0001_init")));
    assert!(!range.paths.iter().any(|p| p == "src/checkout.rs"));
    // Nothing between a version and itself.
    let none = g.range(&v("v1.8.0"), &v("v1.8.0")).await.unwrap();
    assert!(none.commits.is_empty() && none.paths.is_empty());
    // Scoped to the migration globs' directories, only paths there are
    // read (a literal pathspec: `*` in a name is no wildcard to git) …
    let scoped = repo(&r, "{version}")
        .with_scope(Some(vec!["migrations".into(), "db/mig*".into()]))
        .range(&v("v1.7.3"), &v("v1.8.0"))
        .await
        .unwrap();
    assert_eq!(scoped.paths, vec!["migrations/0003_orders.sql".to_string()]);
    assert_eq!(scoped.commits, range.commits);
    // … and with no globs, none at all.
    let unscoped = repo(&r, "{version}")
        .with_scope(Some(vec![]))
        .range(&v("v1.7.3"), &v("v1.8.0"))
        .await
        .unwrap();
    assert!(unscoped.paths.is_empty());
    assert_eq!(unscoped.total, 6);
}

#[tokio::test]
async fn a_long_range_is_capped_and_says_how_many_there_are() {
    let r = TestRepo::shop();
    let g = repo(&r, "{version}");
    let from = g.resolve(&v("v1.7.2")).await.unwrap();
    let to = g.resolve(&v("v1.8.0")).await.unwrap();
    let (commits, total) = g.commits(&from, &to, 3).await.unwrap();
    assert_eq!(commits.len(), 3);
    assert_eq!(total, 7);
    assert_eq!(commits[0].subject, "release 1.8.0");
}

#[tokio::test]
async fn commit_text_from_the_repository_is_sanitised() {
    let r = TestRepo::shop();
    let range = repo(&r, "{version}")
        .range(&v("v1.7.3"), &v("v1.8.0"))
        .await
        .unwrap();
    let evil = range
        .commits
        .iter()
        .find(|c| c.subject.contains("innocent"))
        .expect("the hostile commit");
    for text in [&evil.subject, &evil.author] {
        assert!(
            !text.chars().any(|c| c.is_control()),
            "control characters reached the caller: {text:?}"
        );
        assert!(!text.contains("pwned"), "{text:?}");
    }
    assert!(evil.author.starts_with("Mallory"), "{:?}", evil.author);
}

#[tokio::test]
async fn a_missing_directory_or_a_plain_directory_is_named() {
    let e = GitRepo::new(
        std::path::Path::new("/no/such/shipdeck-repo"),
        "{version}",
        Duration::from_secs(5),
    )
    .resolve(&v("v1.0.0"))
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "[release] git = /no/such/shipdeck-repo: no such directory"
    );
    let plain = tempfile::tempdir().unwrap();
    let e = GitRepo::new(plain.path(), "{version}", Duration::from_secs(5))
        .resolve(&v("v1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{} is not a git repository", plain.path().display())
    );
}

#[tokio::test]
async fn an_empty_repository_has_no_tag() {
    let r = TestRepo::new();
    let e = repo(&r, "{version}")
        .resolve(&v("v1.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(e, VcsError::NoRef { .. }), "{e:?}");
}

#[tokio::test]
async fn a_shallow_clone_without_the_range_says_so() {
    let r = TestRepo::shop();
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1", "--no-single-branch", &url])
        .arg(clone.path().join("c"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = clone.path().join("c");
    // The tags came along (each at depth 1), their history did not.
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["fetch", "-q", "--depth", "1", "origin", "tag", "v1.7.3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g = GitRepo::new(&dir, "{version}", Duration::from_secs(10));
    let e = g.range(&v("v1.7.3"), &v("v1.8.0")).await.unwrap_err();
    assert!(matches!(e, VcsError::Shallow { .. }), "{e:?}");
    assert!(e.to_string().contains("git fetch --unshallow"), "{e}");
}

/// Hostile versions never reach git as options: they are refused as
/// versions, or as ref names before git runs, and every ref git receives
/// comes after `--end-of-options`. A recording git proves the argv.
#[tokio::test]
async fn hostile_refs_never_reach_git_as_options() {
    let r = TestRepo::shop();
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("argv.log");
    let fake = bin.path().join("git");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\necho '--' >> '{}'\nexec git \"$@\"\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let g = GitRepo::new(r.path(), "{version}", Duration::from_secs(10)).with_program(&fake);
    let hostile = [
        "--output=/tmp/shipdeck-pwned",
        "-rf",
        "$(touch /tmp/shipdeck-pwned)",
        "v1;touch /tmp/shipdeck-pwned",
        "`id`",
        "v1.8.0 --upload-pack=touch",
        "a..b",
        "HEAD@{1}",
        "v1.8.0^{tree}",
    ];
    for h in hostile {
        match Version::parse(h) {
            Err(_) => {}
            Ok(ver) => {
                let e = g.resolve(&ver).await.unwrap_err();
                assert!(matches!(e, VcsError::BadRef { .. }), "{h}: {e:?}");
            }
        }
    }
    // Refused before git ran at all.
    assert!(!log.exists(), "git was run for a hostile version");
    // Legitimate calls: refs only after --end-of-options, none option-like.
    g.range(&v("v1.7.3"), &v("v1.8.0")).await.unwrap();
    let _ = g.resolve(&v("v9.9.9")).await;
    let text = std::fs::read_to_string(&log).unwrap();
    for call in text.split("\n--\n").filter(|c| !c.trim().is_empty()) {
        let argv: Vec<&str> = call.lines().collect();
        let refs: Vec<&str> = argv
            .iter()
            .filter(|a| a.contains("v1.") || a.contains("v9.") || a.contains(".."))
            .copied()
            .collect();
        if refs.is_empty() {
            continue;
        }
        let eoo = argv
            .iter()
            .position(|a| *a == "--end-of-options")
            .unwrap_or_else(|| panic!("no --end-of-options in {argv:?}"));
        for rf in refs {
            let at = argv.iter().position(|a| *a == rf).unwrap();
            assert!(at > eoo, "{rf} before --end-of-options in {argv:?}");
            assert!(!rf.starts_with('-'), "{argv:?}");
        }
    }
    assert!(!std::path::Path::new("/tmp/shipdeck-pwned").exists());
}

#[tokio::test]
async fn a_git_that_hangs_is_a_timeout() {
    let r = TestRepo::shop();
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("git");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let g = GitRepo::new(r.path(), "{version}", Duration::from_millis(300)).with_program(&fake);
    let t0 = std::time::Instant::now();
    let e = g.resolve(&v("v1.8.0")).await.unwrap_err();
    assert!(matches!(e, VcsError::Timeout { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn what_a_version_drops_of_what_the_target_runs_and_cherry_picks_kept() {
    let r = hotfix_repo();
    let g = repo(&r, "{version}");
    let res = |s: &'static str| {
        let g = g.clone();
        async move { g.resolve(&v(s)).await.unwrap() }
    };
    // v1.8.0 lacks both hotfix commits production (v1.7.3) runs.
    let d = g
        .dropped_of(res("v1.8.0").await, res("v1.7.3").await)
        .await
        .unwrap();
    let subjects: Vec<&str> = d.commits.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "hotfix: retry declined payments",
            "hotfix: index orders by day"
        ]
    );
    assert_eq!(d.total, 2);
    assert_eq!(d.paths, ["migrations/0004_orders_day.sql", "src/pay.rs"]);
    // The linear case drops nothing.
    let d = g
        .dropped_of(res("v1.8.1").await, res("v1.8.0").await)
        .await
        .unwrap();
    assert_eq!((d.commits.len(), d.total), (0, 0));
    assert!(d.paths.is_empty(), "{:?}", d.paths);
    // The migration hotfix cherry-picked into main: only the other commit
    // is dropped, and the migration is not.
    let mig = r.git(&["rev-parse", "v1.7.3~1"]);
    r.git(&["checkout", "-q", "main"]);
    r.git(&["cherry-pick", &mig]);
    r.tag("v1.9.1");
    let d = g
        .dropped_of(res("v1.9.1").await, res("v1.7.3").await)
        .await
        .unwrap();
    let subjects: Vec<&str> = d.commits.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(subjects, ["hotfix: retry declined payments"]);
    assert_eq!(d.total, 1);
    assert_eq!(d.paths, ["src/pay.rs"]);
    // Both merged back (cherry-picked): nothing is dropped.
    r.git(&["cherry-pick", "v1.7.3"]);
    r.tag("v1.9.2");
    let d = g
        .dropped_of(res("v1.9.2").await, res("v1.7.3").await)
        .await
        .unwrap();
    assert_eq!((d.commits.len(), d.total), (0, 0), "{:?}", d.commits);
    assert!(d.paths.is_empty(), "{:?}", d.paths);
}

/// Production runs a hotfix made on its own tag and never merged back:
///
/// ```text
/// initial ── hotfix: index orders by day (migrations/0004_orders_day.sql)
///        │   hotfix: retry declined payments            v1.7.3 (production)
///        └── add search ─ v1.8.0 (staging) ─ cart badge ─ v1.8.1 (development) ─ v1.9.0
/// ```
pub fn hotfix_repo() -> TestRepo {
    let mut r = TestRepo::new();
    r.commit("README.md", "shop\n", "initial", "Alice Example");
    r.git(&["checkout", "-q", "-b", "prod-hotfix"]);
    r.commit(
        "migrations/0004_orders_day.sql",
        "create index orders_day on orders(day);\n",
        "hotfix: index orders by day",
        "Carol Dba",
    );
    r.commit(
        "src/pay.rs",
        "retry\n",
        "hotfix: retry declined payments",
        "Bob Builder",
    );
    r.tag("v1.7.3");
    r.git(&["checkout", "-q", "main"]);
    r.commit("src/search.rs", "search\n", "add search", "Dan Dev");
    r.tag("v1.8.0");
    r.commit("src/cart.rs", "cart\n", "cart badge", "Alice Example");
    r.tag("v1.8.1");
    r.commit("VERSION", "1.9.0\n", "release 1.9.0", "Alice Example");
    r.tag("v1.9.0");
    r
}
