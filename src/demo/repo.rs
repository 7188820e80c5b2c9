//! The demo's repository: a small bare git repository made at start (one
//! `git init` and one `git fast-import`, a few milliseconds) with a commit
//! history tagged v1.7.3 … v1.9.0 — v1.8.0 carries a database migration —
//! so the console's pending panel lists real commits and flags the
//! migration. Without git the demo runs all the same, and the panel says
//! that git is missing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};

/// The repository made for the demo, or why there is none.
#[derive(Clone, Debug)]
pub struct DemoRepo {
    pub path: PathBuf,
    /// Whether it was made (git is there and worked).
    pub made: Result<(), String>,
}

/// One commit of the demo history: subject, author, file, content, tag.
type Step = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

const HISTORY: &[Step] = &[
    (
        "initial shop",
        "Alice Example",
        "README.md",
        "# demo shop\n",
        None,
    ),
    (
        "schema: items table",
        "Carol Dba",
        "migrations/0001_items.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY, name text);\n",
        None,
    ),
    (
        "checkout: round totals half-up",
        "Bob Builder",
        "src/checkout.rs",
        "// round half-up\n",
        Some("v1.7.3"),
    ),
    (
        "orders: add the orders table",
        "Carol Dba",
        "migrations/0003_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY, item bigint REFERENCES items);\n",
        None,
    ),
    (
        "orders: write an order on checkout",
        "Dan Dev",
        "src/orders.rs",
        "// write orders\n",
        None,
    ),
    (
        "search: match by name prefix",
        "Erin Search",
        "src/search.rs",
        "// prefix search\n",
        None,
    ),
    (
        "cart: show the item count badge",
        "Alice Example",
        "src/cart.rs",
        "// badge\n",
        None,
    ),
    (
        "deps: bump the HTTP client",
        "Renovate Bot",
        "Cargo.lock",
        "# lock v2\n",
        None,
    ),
    (
        "release 1.8.0",
        "Alice Example",
        "VERSION",
        "1.8.0\n",
        Some("v1.8.0"),
    ),
    (
        "orders: retry a failed write once",
        "Dan Dev",
        "src/orders.rs",
        "// write orders, retry once\n",
        None,
    ),
    (
        "release 1.8.1",
        "Alice Example",
        "VERSION",
        "1.8.1\n",
        Some("v1.8.1"),
    ),
    (
        "search: tolerate one typo",
        "Erin Search",
        "src/search.rs",
        "// prefix search, one typo\n",
        None,
    ),
    (
        "release 1.9.0",
        "Alice Example",
        "VERSION",
        "1.9.0\n",
        Some("v1.9.0"),
    ),
];

/// The `git fast-import` stream of [`HISTORY`], commits three hours apart
/// ending an hour before `now`.
fn stream(now: DateTime<Utc>) -> Vec<u8> {
    let mut s = Vec::new();
    let n = HISTORY.len() as i64;
    for (i, (subject, author, file, content, tag)) in HISTORY.iter().enumerate() {
        let at = now.timestamp() - 3600 - (n - 1 - i as i64) * 3 * 3600;
        let mark = i + 1;
        let email = author.to_lowercase().replace(' ', ".");
        let _ = write!(
            s,
            "commit refs/heads/main\nmark :{mark}\nauthor {author} <{email}@example.com> {at} +0000\ncommitter CI <ci@example.com> {at} +0000\ndata {}\n{subject}\n",
            subject.len() + 1
        );
        if i > 0 {
            let _ = writeln!(s, "from :{}", mark - 1);
        }
        let _ = write!(
            s,
            "M 100644 inline {file}\ndata {}\n{content}\n",
            content.len()
        );
        if let Some(t) = tag {
            let _ = write!(s, "reset refs/tags/{t}\nfrom :{mark}\n\n");
        }
    }
    s
}

/// Run git quietly, without the user's or the system's configuration.
fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<(), String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "git is not installed: the pending panel lists no commits (Debian/Ubuntu: apt-get install git)".to_string()
            }
            _ => format!("cannot run git: {e}"),
        })?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(data)
            .map_err(|e| format!("git {}: {e}", args[0]))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("git {}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {} failed: {}",
            args[0],
            crate::text::sanitize(String::from_utf8_lossy(&out.stderr).trim())
        ))
    }
}

/// Make the demo repository at `path` (a new directory).
pub fn make(path: &Path, now: DateTime<Utc>) -> DemoRepo {
    let made = std::fs::create_dir_all(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
        .and_then(|_| git(path, &["init", "-q", "--bare", "-b", "main"], None))
        .and_then(|_| git(path, &["fast-import", "--quiet"], Some(&stream(now))));
    DemoRepo {
        path: path.to_path_buf(),
        made,
    }
}

/// The `[release]` table of the demo config for `repo`: the repository,
/// its migrations, a backup "hook" that prints an id, and the restore
/// command. Production requires the backup only when the repository is
/// there (without git nothing could tell a migration release, and the
/// demo must still promote).
pub fn release_table(repo: &DemoRepo) -> String {
    let path = repo.path.display().to_string().replace('\\', "/");
    let mut s = format!(
        "\n[release]\ngit = {path:?}\ntag = \"{{version}}\"\nmigrations = [\"migrations/**\"]\nrestore = \"pg_restore --clean -d shop /backups/{{backup}}.dump\"\n"
    );
    if repo.made.is_ok() {
        s.push_str(
            "backup = { command = [\"echo\", \"demo-backup-{env}-{version}\"], timeout = \"10s\" }\n",
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::vcs::GitRepo;
    use crate::domain::Version;

    #[tokio::test]
    async fn the_demo_repository_has_the_fleets_versions_and_one_migration_release() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = std::time::Instant::now();
        let repo = make(&dir.path().join("repo.git"), Utc::now());
        let took = t0.elapsed();
        repo.made
            .clone()
            .expect("git is needed for this test (apt-get install git)");
        eprintln!("demo repository made in {took:?}");
        let g = GitRepo::new(&repo.path, "{version}", std::time::Duration::from_secs(10));
        let v = |s: &str| Version::parse(s).unwrap();
        let r = g.range(&v("v1.7.3"), &v("v1.8.0")).await.unwrap();
        assert_eq!(r.commits.len(), 6);
        assert_eq!(r.commits[0].subject, "release 1.8.0");
        assert_eq!(r.commits[5].subject, "orders: add the orders table");
        assert!(r.paths.contains(&"migrations/0003_orders.sql".to_string()));
        let r = g.range(&v("v1.8.0"), &v("v1.8.1")).await.unwrap();
        assert_eq!(r.commits.len(), 2);
        assert!(!r.paths.iter().any(|p| p.starts_with("migrations/")));
        g.range(&v("v1.8.1"), &v("v1.9.0")).await.unwrap();
        // The config table it makes is valid, with the backup required.
        let text = crate::demo::demo_config_with(
            "127.0.0.1:40001".parse().unwrap(),
            true,
            Some(&repo),
            crate::demo::DemoStrategy::Redeploy,
        );
        let c = crate::config::Config::parse(&text, Path::new("<demo>")).unwrap();
        assert!(c.env("production").unwrap().gates.requires_backup);
        assert_eq!(c.release.migration_globs().len(), 1);
    }

    #[test]
    fn without_git_the_demo_config_still_parses_and_requires_no_backup() {
        let repo = DemoRepo {
            path: PathBuf::from("/tmp/none"),
            made: Err("git is not installed".into()),
        };
        let text = crate::demo::demo_config_with(
            "127.0.0.1:40001".parse().unwrap(),
            true,
            Some(&repo),
            crate::demo::DemoStrategy::Redeploy,
        );
        let c = crate::config::Config::parse(&text, Path::new("<demo>")).unwrap();
        assert!(!c.env("production").unwrap().gates.requires_backup);
        assert!(c.release.git.is_some());
    }
}
