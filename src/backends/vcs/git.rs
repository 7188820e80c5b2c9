//! A local git clone read through the `git` command: a version's ref and
//! commit, the commits between two versions and the paths they change.
//!
//! Every call is argv (never a shell) with a timeout. Ref names are
//! checked before git sees them (never an option: no leading `-`, only
//! letters, digits and `. _ - + /`), passed after `--end-of-options`, and
//! everything after resolution works on full commit ids. The user's and the
//! repository's configuration cannot change the output we parse (no
//! signatures, colours, external diff drivers or text conversion).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::DateTime;
use tokio::process::Command;

use crate::backends::BackendError;
use crate::backends::util::{excerpt, exit_words, run_capped};
use crate::domain::Version;
use crate::domain::release::{Commit, ref_for};

/// At most this many commits of a range are listed (the count says how
/// many there are in all).
pub const MAX_COMMITS: usize = 500;

/// Output kept from one git command: enough for 500 commits and the paths
/// of a large release.
const GIT_STDOUT_CAP: usize = 8 * 1024 * 1024;

/// Why the repository could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcsError {
    #[error(
        "git is not installed: the pending release's commits need it (Debian/Ubuntu: apt-get install git)"
    )]
    NotInstalled,
    #[error("[release] git = {repo}: no such directory")]
    NoDirectory { repo: String },
    #[error("{repo} is not a git repository")]
    NotARepository { repo: String },
    /// The version names no ref in the repository.
    #[error("{version}: no tag {tag} in {repo}")]
    NoRef {
        version: String,
        tag: String,
        repo: String,
    },
    /// The version does not make a ref name git may see.
    #[error("{version}: not a usable ref name: {why}")]
    BadRef { version: String, why: String },
    #[error(
        "{repo} is a shallow clone without the history between {from} and {to}: run `git fetch --unshallow` there"
    )]
    Shallow {
        repo: String,
        from: String,
        to: String,
    },
    #[error("git in {repo}: no answer within {}s", after.as_secs_f64())]
    Timeout { repo: String, after: Duration },
    #[error("git in {repo}: {cause}")]
    Failed { repo: String, cause: String },
}

/// A version resolved in the repository.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    pub version: Version,
    /// The ref it names (`v1.8.0`).
    pub git_ref: String,
    /// The full commit id.
    pub sha: String,
}

/// What a release carries: the commits between two versions (newest
/// first, at most [`MAX_COMMITS`]) and the paths it changes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Range {
    pub from: Resolved,
    pub to: Resolved,
    pub commits: Vec<Commit>,
    /// How many commits the range has in all (more than `commits.len()`
    /// when capped).
    pub total: usize,
    /// Paths the release changes (from the common ancestor to `to`),
    /// sanitised for display.
    pub paths: Vec<String>,
}

impl Range {
    pub fn capped(&self) -> bool {
        self.total > self.commits.len()
    }
}

/// A local clone and how versions name its refs.
#[derive(Clone, Debug)]
pub struct GitRepo {
    /// The git program: `git` on `PATH` unless a test says otherwise.
    program: PathBuf,
    dir: PathBuf,
    tag: String,
    timeout: Duration,
    shown: String,
    /// Where the paths a release changes are looked for (literal
    /// directories or files); `None`: everywhere.
    scope: Option<Vec<String>>,
}

/// Whether a `git` program is on `PATH` (looked up once).
fn git_on_path() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|d| {
                let p = d.join("git");
                p.is_file()
                    && std::fs::metadata(&p).is_ok_and(|m| {
                        use std::os::unix::fs::PermissionsExt;
                        m.permissions().mode() & 0o111 != 0
                    })
            })
        })
    })
}

/// A 40 (SHA-1) or 64 (SHA-256) hex commit id, as git prints it.
fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl GitRepo {
    /// `dir` is the clone; `tag` how a version names a ref (`"v{version}"`,
    /// checked at config load); `timeout` bounds each git command.
    pub fn new(dir: &Path, tag: &str, timeout: Duration) -> GitRepo {
        GitRepo {
            program: PathBuf::from("git"),
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
            timeout,
            shown: crate::text::sanitize(&dir.display().to_string()),
            scope: None,
        }
    }

    /// Only paths in these directories (or files) are asked for: the
    /// migration globs' literal directories (`domain::release::glob_scope`).
    /// A tree diff limited to them stays small in a large repository; an
    /// empty list asks for no paths at all.
    pub fn with_scope(mut self, scope: Option<Vec<String>>) -> GitRepo {
        self.scope = scope;
        self
    }

    /// The same repository read through another git program (tests record
    /// the argv git receives this way).
    pub fn with_program(mut self, program: &Path) -> GitRepo {
        self.program = program.to_path_buf();
        self
    }

    /// The repository as shown in messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Run git with `args` in the clone; the status is the caller's to judge.
    async fn git(&self, args: &[&str]) -> Result<crate::backends::util::Finished, VcsError> {
        let installed = if self.program == Path::new("git") {
            git_on_path()
        } else {
            self.program.is_file()
        };
        if !installed {
            return Err(VcsError::NotInstalled);
        }
        if !self.dir.is_dir() {
            return Err(VcsError::NoDirectory {
                repo: self.shown.clone(),
            });
        }
        let mut cmd = Command::new(&self.program);
        cmd.arg("-C")
            .arg(&self.dir)
            .args([
                "-c",
                "core.fsmonitor=false",
                "-c",
                "log.showSignature=false",
                "-c",
                "color.ui=false",
            ])
            .args(args)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        let name = format!("git in {}", self.shown);
        let done = run_capped(&name, cmd, self.timeout, GIT_STDOUT_CAP)
            .await
            .map_err(|e| match e {
                BackendError::Timeout { after, .. } => VcsError::Timeout {
                    repo: self.shown.clone(),
                    after,
                },
                other => VcsError::Failed {
                    repo: self.shown.clone(),
                    cause: crate::text::clean(&other.to_string()),
                },
            })?;
        if !done.status.success() {
            let stderr = String::from_utf8_lossy(&done.stderr);
            if stderr.contains("not a git repository") {
                return Err(VcsError::NotARepository {
                    repo: self.shown.clone(),
                });
            }
        }
        Ok(done)
    }

    /// The failure of a git command that should have worked.
    fn failed(&self, what: &str, done: &crate::backends::util::Finished) -> VcsError {
        let stderr = String::from_utf8_lossy(&done.stderr);
        VcsError::Failed {
            repo: self.shown.clone(),
            cause: crate::text::clean(&format!(
                "{what} failed with {}{}",
                exit_words(done.status),
                excerpt(&stderr)
            )),
        }
    }

    /// The ref `version` names and its commit. A version with no such ref
    /// is [`VcsError::NoRef`]: "v1.8.0: no tag v1.8.0 in /srv/shop".
    pub async fn resolve(&self, version: &Version) -> Result<Resolved, VcsError> {
        let git_ref = ref_for(&self.tag, version.as_str()).map_err(|why| VcsError::BadRef {
            version: version.to_string(),
            why,
        })?;
        // A tag first (a branch of the same name must not win), then any
        // ref or commit id the name resolves to.
        for candidate in [format!("refs/tags/{git_ref}"), git_ref.clone()] {
            let spec = format!("{candidate}^{{commit}}");
            let done = self
                .git(&[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    "--end-of-options",
                    &spec,
                ])
                .await?;
            let out = String::from_utf8_lossy(&done.stdout).trim().to_string();
            if done.status.success() && is_sha(&out) {
                return Ok(Resolved {
                    version: version.clone(),
                    git_ref,
                    sha: out,
                });
            }
            if done.status.code() != Some(1) {
                return Err(self.failed("git rev-parse", &done));
            }
        }
        // Tell an empty or missing repository apart from a missing tag.
        let probe = self.git(&["rev-parse", "--git-dir"]).await?;
        if !probe.status.success() {
            return Err(self.failed("git rev-parse --git-dir", &probe));
        }
        Err(VcsError::NoRef {
            version: version.to_string(),
            tag: git_ref,
            repo: self.shown.clone(),
        })
    }

    /// The commits reachable from `to` and not from `from`, newest first,
    /// at most `cap`; and how many there are in all. The listing and the
    /// count are two git processes run side by side.
    pub async fn commits(
        &self,
        from: &Resolved,
        to: &Resolved,
        cap: usize,
    ) -> Result<(Vec<Commit>, usize), VcsError> {
        self.listed(&format!("{}..{}", from.sha, to.sha), &[], cap)
            .await
    }

    /// The commits `range` names (with `extra` options before it), newest
    /// first, at most `cap`; and how many there are in all.
    async fn listed(
        &self,
        range: &str,
        extra: &[&str],
        cap: usize,
    ) -> Result<(Vec<Commit>, usize), VcsError> {
        let max = format!("--max-count={cap}");
        let mut log = vec![
            "log",
            "--no-color",
            "--no-show-signature",
            "--format=%H%x00%aI%x00%an%x00%s",
            &max,
        ];
        log.extend(extra);
        log.extend(["--end-of-options", range, "--"]);
        let mut count = vec!["rev-list", "--count"];
        count.extend(extra);
        count.extend(["--end-of-options", range, "--"]);
        let (done, count) = tokio::join!(self.git(&log), self.git(&count));
        let done = done?;
        if !done.status.success() {
            return Err(self.failed("git log", &done));
        }
        let text = String::from_utf8_lossy(&done.stdout);
        let mut commits = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut f = line.splitn(4, '\0');
            let (Some(sha), Some(date), Some(author), Some(subject)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(VcsError::Failed {
                    repo: self.shown.clone(),
                    cause: "git log printed a line it was not asked for".into(),
                });
            };
            let date = DateTime::parse_from_rfc3339(date).map_err(|e| VcsError::Failed {
                repo: self.shown.clone(),
                cause: format!("git log printed an unreadable date ({e})"),
            })?;
            commits.push(Commit {
                sha: sha.to_string(),
                author: crate::text::sanitize(author),
                date,
                subject: crate::text::sanitize(subject),
            });
        }
        let total = if commits.len() < cap {
            commits.len()
        } else {
            let done = count?;
            if !done.status.success() {
                return Err(self.failed("git rev-list --count", &done));
            }
            String::from_utf8_lossy(&done.stdout)
                .trim()
                .parse::<usize>()
                .map_or(commits.len(), |n| n.max(commits.len()))
        };
        Ok((commits, total))
    }

    /// The paths the release changes: from the common ancestor of `from`
    /// and `to` to `to`, renames shown as a deletion and an addition; only
    /// those in the scope (see [`Self::with_scope`]).
    pub async fn paths(&self, from: &Resolved, to: &Resolved) -> Result<Vec<String>, VcsError> {
        self.diffed(&[&format!("{}...{}", from.sha, to.sha)]).await
    }

    /// The paths (in the scope) whose content differs between the two
    /// commits' trees, whatever their history.
    async fn paths_between(&self, a: &Resolved, b: &Resolved) -> Result<Vec<String>, VcsError> {
        self.diffed(&[&a.sha, &b.sha]).await
    }

    /// `git diff --name-only` of `revs`, limited to the scope.
    async fn diffed(&self, revs: &[&str]) -> Result<Vec<String>, VcsError> {
        if self.scope.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        // Literal pathspecs: a directory name in the config is never
        // pathspec magic or a wildcard to git.
        let specs: Vec<String> = self
            .scope
            .iter()
            .flatten()
            .map(|d| format!(":(literal){d}"))
            .collect();
        let mut args = vec![
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            "--end-of-options",
        ];
        args.extend(revs);
        args.push("--");
        args.extend(specs.iter().map(String::as_str));
        let done = self.git(&args).await?;
        if !done.status.success() {
            return Err(self.failed("git diff", &done));
        }
        Ok(done
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| crate::text::sanitize(&String::from_utf8_lossy(p)))
            .collect())
    }

    /// What `target` runs that `version` lacks: its commits not in
    /// `version` (a cherry-pick of one into `version` counts as in it),
    /// newest first, at most [`MAX_COMMITS`]; and the paths (in the scope)
    /// changed on `target`'s side since the two parted that still differ
    /// in `version` (a migration merged back is not dropped). Empty when
    /// `target` is an ancestor of `version`.
    pub async fn dropped_of(&self, version: Resolved, target: Resolved) -> Result<Range, VcsError> {
        let sym = format!("{}...{}", version.sha, target.sha);
        let (history, commits, side, differ) = tokio::join!(
            self.check_history(&version, &target),
            self.listed(&sym, &["--cherry-pick", "--right-only"], MAX_COMMITS),
            self.paths(&version, &target),
            self.paths_between(&version, &target)
        );
        history?;
        let ((commits, total), side, differ) = (commits?, side?, differ?);
        let paths = side.into_iter().filter(|p| differ.contains(p)).collect();
        Ok(Range {
            from: version,
            to: target,
            commits,
            total,
            paths,
        })
    }

    /// In a shallow clone, whether the history between the two commits is
    /// there (they have a common ancestor in it).
    async fn check_history(&self, from: &Resolved, to: &Resolved) -> Result<(), VcsError> {
        let shallow = self.git(&["rev-parse", "--is-shallow-repository"]).await?;
        if String::from_utf8_lossy(&shallow.stdout).trim() != "true" {
            return Ok(());
        }
        let done = self
            .git(&["merge-base", "--end-of-options", &from.sha, &to.sha])
            .await?;
        if done.status.success() {
            Ok(())
        } else {
            Err(VcsError::Shallow {
                repo: self.shown.clone(),
                from: from.version.to_string(),
                to: to.version.to_string(),
            })
        }
    }

    /// Everything about the release from `from` (what the target runs) to
    /// `to` (what it would get).
    pub async fn range(&self, from: &Version, to: &Version) -> Result<Range, VcsError> {
        let (from, to) = tokio::try_join!(self.resolve(from), self.resolve(to))?;
        self.range_of(from, to).await
    }

    /// [`Self::range`] for versions already resolved.
    ///
    /// The history check, the listing and the diff run side by side (a
    /// large repository's answer is as slow as its slowest part, not their
    /// sum); a shallow clone without the range is reported as such rather
    /// than as whatever error git gave for the missing history.
    pub async fn range_of(&self, from: Resolved, to: Resolved) -> Result<Range, VcsError> {
        let (history, commits, paths) = tokio::join!(
            self.check_history(&from, &to),
            self.commits(&from, &to, MAX_COMMITS),
            self.paths(&from, &to)
        );
        history?;
        let ((commits, total), paths) = (commits?, paths?);
        Ok(Range {
            from,
            to,
            commits,
            total,
            paths,
        })
    }
}
