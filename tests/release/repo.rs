//! A real git repository built for a test: tagged commits, a migration, a
//! merged branch and hostile text, made with the `git` command itself.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Fail (never skip) when git is missing, saying how to get it.
pub fn require_git() {
    let ok = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "these tests need the `git` command: install it (Debian/Ubuntu: apt-get install git; scripts/test does it)"
    );
}

pub struct TestRepo {
    pub dir: tempfile::TempDir,
    clock: i64,
}

impl TestRepo {
    /// An empty repository on branch main.
    pub fn new() -> TestRepo {
        require_git();
        let dir = tempfile::Builder::new()
            .prefix("shipdeck-repo-")
            .tempdir()
            .expect("temp dir");
        let r = TestRepo {
            dir,
            clock: 1_790_000_000,
        };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        self.git_as(args, "Alice Example", 0)
    }

    fn git_as(&self, args: &[&str], author: &str, at: i64) -> String {
        let date = format!("@{at} +0000");
        let out = Command::new("git")
            .arg("-C")
            .arg(self.dir.path())
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
            .args(args)
            .env("GIT_AUTHOR_NAME", author)
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "CI")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.dir.path())
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Write `file` and commit it; returns the commit id.
    pub fn commit(&mut self, file: &str, content: &str, subject: &str, author: &str) -> String {
        let p: PathBuf = self.dir.path().join(file);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        self.git(&["add", "--", file]);
        self.clock += 60;
        self.git_as(&["commit", "-q", "-m", subject], author, self.clock);
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn tag(&self, name: &str) {
        self.git(&["tag", "--", name]);
    }

    /// v1.7.2 … v1.8.0 with a migration, a merged branch and a commit
    /// whose subject and author carry escape sequences:
    ///
    /// ```text
    /// v1.7.2  initial
    /// v1.7.3  fix checkout rounding
    ///         add orders table (migrations/0003_orders.sql)
    ///         merge branch 'feature' (the feature commit)
    ///         hostile subject
    /// v1.8.0  release 1.8.0
    /// ```
    pub fn shop() -> TestRepo {
        let mut r = TestRepo::new();
        r.commit("README.md", "shop\n", "initial", "Alice Example");
        r.commit(
            "migrations/0001_init.sql",
            "create table items();\n",
            "schema",
            "Alice Example",
        );
        r.tag("v1.7.2");
        r.commit(
            "src/checkout.rs",
            "round\n",
            "fix checkout rounding",
            "Bob Builder",
        );
        r.tag("v1.7.3");
        r.commit(
            "migrations/0003_orders.sql",
            "create table orders();\n",
            "add orders table",
            "Carol Dba",
        );
        r.git(&["checkout", "-q", "-b", "feature"]);
        r.commit("src/search.rs", "search\n", "search by name", "Dan Dev");
        r.git(&["checkout", "-q", "main"]);
        r.commit("src/cart.rs", "cart\n", "cart badge", "Alice Example");
        r.clock += 60;
        let at = r.clock;
        r.git_as(
            &[
                "merge",
                "-q",
                "--no-ff",
                "-m",
                "Merge branch 'feature'",
                "feature",
            ],
            "Alice Example",
            at,
        );
        r.commit(
            "src/evil.rs",
            "x\n",
            "innocent \u{1b}]0;pwned\u{7}\u{1b}[2J subject",
            "Mallory \u{1b}[31mRed",
        );
        r.commit("VERSION", "1.8.0\n", "release 1.8.0", "Alice Example");
        r.tag("v1.8.0");
        r
    }
}
