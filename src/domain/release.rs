//! What a release carries and the rules about it: its commits, which of
//! the paths it changes are database migrations (glob matching with `**`),
//! whether a backup must come first, the restore command shown on a
//! rollback, and freeze windows. Pure: the clock is passed in.

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Gate;

/// One commit of a release, as the repository tells it. `author` and
/// `subject` are untrusted text and arrive here already sanitised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub author: String,
    pub date: DateTime<FixedOffset>,
    pub subject: String,
}

impl Commit {
    /// The short form shown in the console (7 characters).
    pub fn short(&self) -> &str {
        self.sha.get(..7).unwrap_or(&self.sha)
    }
}

// ---------------------------------------------------------------- refs

/// Longest git ref name accepted.
pub const MAX_REF: usize = 200;

/// Check a ref name before git sees it: letters, digits, `. _ - + /`, not
/// starting with `-` (never an option) or `/`, and git's own rules (no
/// `..`, no empty component, no component starting with `.`, no `.lock`
/// ending). Returns why not.
pub fn check_ref(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_REF {
        return Err(format!("a ref name is 1-{MAX_REF} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '/')))
    {
        return Err(format!(
            "{name:?} has the character {c:?}; a ref name holds letters, digits and . _ - + /"
        ));
    }
    if name.starts_with('-') {
        return Err(format!("{name:?} starts with '-'"));
    }
    let bad_component = name
        .split('/')
        .any(|c| c.is_empty() || c.starts_with('.') || c.ends_with(".lock"));
    if bad_component || name.contains("..") || name.ends_with('.') {
        return Err(format!(
            "{name:?} is not a valid git ref name (empty or dot-led component, '..', or a .lock or . ending)"
        ));
    }
    Ok(())
}

/// Check the `tag` template: it holds `{version}` and no other placeholder,
/// and names a valid ref for a version.
pub fn check_ref_template(template: &str) -> Result<(), String> {
    if !template.contains("{version}") {
        return Err(format!(
            "{template:?} must contain {{version}} (like \"v{{version}}\")"
        ));
    }
    let rendered = template.replace("{version}", "1.0.0");
    if rendered.contains(['{', '}']) {
        return Err(format!(
            "{template:?}: only the placeholder {{version}} is filled in"
        ));
    }
    check_ref(&rendered).map_err(|e| format!("{template:?} does not make a ref name: {e}"))
}

/// The ref a version names under `template` (`"v{version}"`), checked.
pub fn ref_for(template: &str, version: &str) -> Result<String, String> {
    let r = template.replace("{version}", version);
    check_ref(&r)?;
    Ok(r)
}

// ---------------------------------------------------------------- globs

/// A path glob: `*` matches within one path segment, `**` any number of
/// whole segments (also none), `?` one character of a segment. Everything
/// else matches itself. `migrations/**` matches every file below
/// `migrations/`; `**/*.sql` every `.sql` file anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of segments.
    Any,
    /// One segment's pattern (`*` and `?` inside).
    One(Vec<char>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("empty glob")]
    Empty,
    #[error("glob {0:?}: `**` must be a whole path segment (like migrations/** or **/*.sql)")]
    DoubleStar(String),
    #[error("glob {0:?}: write it relative to the repository root, without a leading / or ./")]
    NotRelative(String),
    #[error("glob {0:?}: empty path segment (//)")]
    EmptySegment(String),
    #[error("glob {0:?} contains control characters")]
    Control(String),
}

impl Glob {
    pub fn parse(text: &str) -> Result<Glob, GlobError> {
        if text.is_empty() {
            return Err(GlobError::Empty);
        }
        if text.chars().any(char::is_control) {
            return Err(GlobError::Control(text.to_string()));
        }
        if text.starts_with('/') || text.starts_with("./") {
            return Err(GlobError::NotRelative(text.to_string()));
        }
        // A trailing slash names a directory: everything below it.
        let body = text.strip_suffix('/').map(|b| format!("{b}/**"));
        let body = body.as_deref().unwrap_or(text);
        let mut segments = Vec::new();
        for seg in body.split('/') {
            if seg.is_empty() {
                return Err(GlobError::EmptySegment(text.to_string()));
            }
            if seg == "**" {
                // `a/**/**/b` is `a/**/b`.
                if segments.last() != Some(&Segment::Any) {
                    segments.push(Segment::Any);
                }
            } else if seg.contains("**") {
                return Err(GlobError::DoubleStar(text.to_string()));
            } else {
                segments.push(Segment::One(seg.chars().collect()));
            }
        }
        // A trailing `**` means what is inside, not the directory itself:
        // `migrations/**` is `migrations/**/*`.
        if segments.last() == Some(&Segment::Any) {
            segments.push(Segment::One(vec!['*']));
        }
        Ok(Glob {
            text: text.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` (relative to the repository root, `/`-separated)
    /// matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<Vec<char>> = path.split('/').map(|s| s.chars().collect()).collect();
        match_segments(&self.segments, &parts)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Segment-wise matching; `**` tries every split. Iterative over the
/// pattern with a backtracking point for the last `**`, so it stays linear
/// in practice for the short patterns configs hold.
fn match_segments(pat: &[Segment], parts: &[Vec<char>]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < parts.len() {
        match pat.get(p) {
            Some(Segment::Any) => {
                star = Some((p, s));
                p += 1;
            }
            Some(Segment::One(seg)) if match_segment(seg, &parts[s]) => {
                p += 1;
                s += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    // Let the last `**` take one more segment.
                    p = sp + 1;
                    s = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|x| *x == Segment::Any)
}

/// `*` and `?` within one segment (the classic wildcard match).
fn match_segment(pat: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|c| *c == '*')
}

/// Where in the repository paths matching `globs` can be: for each glob
/// its leading segments without a wildcard (`migrations/**` →
/// `migrations`, `db/migrate/*.sql` → `db/migrate`). A path a glob matches
/// is that directory or lies below it, so reading only those keeps a large
/// repository's diff small. `None` when a glob can match anywhere
/// (`**/*.sql`); an empty list when there are no globs (no path is needed).
pub fn glob_scope(globs: &[Glob]) -> Option<Vec<String>> {
    let mut dirs: Vec<String> = Vec::new();
    for g in globs {
        let literal: Vec<String> = g
            .segments
            .iter()
            .map_while(|s| match s {
                Segment::One(cs) if !cs.iter().any(|c| matches!(c, '*' | '?')) => {
                    Some(cs.iter().collect())
                }
                _ => None,
            })
            .collect();
        if literal.is_empty() {
            return None;
        }
        let dir = literal.join("/");
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    Some(dirs)
}

/// The paths that match any of `globs`, in the order given.
pub fn migration_paths<'a>(paths: &'a [String], globs: &[Glob]) -> Vec<&'a String> {
    paths
        .iter()
        .filter(|p| globs.iter().any(|g| g.matches(p)))
        .collect()
}

// ---------------------------------------------------------------- backup and restore

/// A backup taken for a deploy: the id the hook printed and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    pub at: DateTime<Utc>,
}

/// Whether deploying a release to an environment needs a backup first:
/// the environment requires one and the release carries migrations.
pub fn needs_backup(requires_backup: bool, migrations: &[String]) -> bool {
    requires_backup && !migrations.is_empty()
}

/// The `backup` gate of a promotion to an environment with
/// `requires_backup`: `migrations` is what the repository says the release
/// changes in the database, or why it cannot tell — which blocks, since an
/// unknown release may well carry migrations. `None` without the key.
pub fn backup_gate(
    requires_backup: bool,
    version: &str,
    migrations: Result<&[String], &str>,
) -> Option<Gate> {
    if !requires_backup {
        return None;
    }
    Some(match migrations {
        Err(why) => Gate::block(
            "backup",
            false,
            format!("unknown: cannot tell whether {version} carries migrations ({why})"),
        ),
        Ok([]) => Gate::block(
            "backup",
            true,
            format!("{version} carries no migrations: no backup needed"),
        ),
        Ok(m) => Gate::block(
            "backup",
            true,
            format!(
                "{version} carries {} migration file{}: the backup hook runs before the deploy",
                m.len(),
                if m.len() == 1 { "" } else { "s" }
            ),
        ),
    })
}

/// The audit detail of a backup, and reading the id back from it.
pub fn backup_detail(id: &str) -> String {
    format!("{BACKUP_PREFIX}{id}")
}

/// The id in a backup's audit detail.
pub fn backup_id_of(detail: &str) -> Option<&str> {
    detail
        .strip_prefix(BACKUP_PREFIX)
        .map(|rest| rest.split(" (").next().unwrap_or(rest).trim())
        .filter(|id| !id.is_empty())
}

const BACKUP_PREFIX: &str = "backup id: ";

/// The restore command shown to a human after a migration release is
/// rolled back: `{backup}`, `{env}` and `{version}` filled in. shipdeck
/// never runs it. Without a backup id the placeholder stays visible.
pub fn restore_text(template: &str, backup: Option<&str>, env: &str, version: &str) -> String {
    let mut out = template.replace("{env}", env).replace("{version}", version);
    if let Some(b) = backup {
        out = out.replace("{backup}", b);
    }
    out
}

/// What a human must know before rolling `env` back across migrations:
/// the schema stays, and how to restore the backup taken for the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SchemaNotice {
    /// The migration paths between the rollback target and what runs.
    pub migrations: Vec<String>,
    /// "v1.8.0 carries database migrations (…): rolling back the code
    /// leaves the schema as it is".
    pub warning: String,
    /// The restore command with the backup id filled in (shown, never run);
    /// `None` when no `restore` is configured.
    pub restore: Option<String>,
    /// The backup recorded for the release in that environment.
    pub backup: Option<Backup>,
}

/// The notice for rolling back from `version` across `migrations`; `None`
/// when the rollback crosses no migration.
pub fn schema_notice(
    env: &str,
    version: &str,
    migrations: Vec<String>,
    restore_template: Option<&str>,
    backup: Option<Backup>,
) -> Option<SchemaNotice> {
    if migrations.is_empty() {
        return None;
    }
    let restore = restore_template
        .map(|t| restore_text(t, backup.as_ref().map(|b| b.id.as_str()), env, version));
    Some(SchemaNotice {
        warning: schema_warning(version, &migrations),
        migrations,
        restore,
        backup,
    })
}

/// What rolling back a migration release means, in one line.
pub fn schema_warning(version: &str, migrations: &[String]) -> String {
    let shown: Vec<&str> = migrations.iter().take(3).map(String::as_str).collect();
    let more = migrations.len().saturating_sub(shown.len());
    format!(
        "{version} carries database migrations ({}{}): rolling back the code leaves the schema as it is",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

// ---------------------------------------------------------------- freezes

/// A point in time written as RFC 3339 (`2026-12-20T00:00:00+01:00`); in a
/// config file either a string or a TOML date-time. Keeps its offset for
/// display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub DateTime<FixedOffset>);

impl Rfc3339 {
    pub fn parse(s: &str) -> Result<Rfc3339, String> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(Rfc3339)
            .map_err(|e| {
                format!("{s:?} is not an RFC 3339 time like \"2026-12-20T18:00:00+01:00\" ({e})")
            })
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.offset().local_minus_utc() == 0 {
            write!(f, "{}", self.0.format("%Y-%m-%d %H:%M UTC"))
        } else {
            write!(f, "{}", self.0.format("%Y-%m-%d %H:%M %:z"))
        }
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A string, or a TOML date-time (which toml hands over as a value
        // that displays as RFC 3339).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Toml(toml::value::Datetime),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Toml(t) => t.to_string(),
        };
        Rfc3339::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A freeze window: promotion to `envs` is refused from `from` until `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Freeze {
    pub from: Rfc3339,
    pub to: Rfc3339,
    pub envs: Vec<String>,
    pub reason: String,
}

impl Freeze {
    /// Whether it holds for `env` at `now` (`from` inclusive, `to` exclusive).
    pub fn holds(&self, env: &str, now: DateTime<Utc>) -> bool {
        self.envs.iter().any(|e| e == env) && self.from.0 <= now && now < self.to.0
    }

    /// One line: "frozen until 2026-01-02 00:00 UTC: end-of-year freeze".
    pub fn describe(&self) -> String {
        format!("frozen until {}: {}", self.to, self.reason)
    }
}

/// The freeze that holds for `env` at `now`, if any (the one ending last
/// when several overlap: that is the one a human must wait for).
pub fn active_freeze<'a>(
    freezes: &'a [Freeze],
    env: &str,
    now: DateTime<Utc>,
) -> Option<&'a Freeze> {
    freezes
        .iter()
        .filter(|f| f.holds(env, now))
        .max_by_key(|f| f.to.0)
}

/// The `freeze` gate of a promotion: refuses while a freeze holds for the
/// target, unless the promoter breaks it with a reason (then it passes and
/// says who must read the audit log). `None` when no freeze is configured
/// for the environment at all.
pub fn freeze_gate(
    freezes: &[Freeze],
    env: &str,
    now: DateTime<Utc>,
    break_reason: Option<&str>,
) -> Option<Gate> {
    if !freezes.iter().any(|f| f.envs.iter().any(|e| e == env)) {
        return None;
    }
    let reason = break_reason.map(str::trim).filter(|r| !r.is_empty());
    Some(match (active_freeze(freezes, env, now), reason) {
        (None, _) => Gate::block("freeze", true, format!("{env} is not frozen now")),
        (Some(f), None) => Gate::block(
            "freeze",
            false,
            format!(
                "{env} is {} (override: --break-freeze \"REASON\")",
                f.describe()
            ),
        ),
        (Some(f), Some(why)) => Gate::block(
            "freeze",
            true,
            format!("breaking the freeze on {env} ({}): {why}", f.reason),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn g(s: &str) -> Glob {
        Glob::parse(s).unwrap()
    }

    #[test]
    fn refs_that_git_could_take_as_options_or_ranges_are_refused() {
        for ok in ["v1.8.0", "release/1.8.0", "1.2.3-rc.1+b7"] {
            assert!(check_ref(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-v",
            "--output=/tmp/x",
            "a..b",
            "v1;rm",
            "$(id)",
            "v1 2",
            "/abs",
            "a//b",
            "a/.b",
            "x.lock",
            "v1.",
            "a^",
            "a~1",
            "a:b",
            "HEAD@{1}",
            "",
            "v\n",
        ] {
            assert!(check_ref(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_ref_template("v{version}").is_ok());
        assert!(check_ref_template("release/{version}").is_ok());
        assert!(check_ref_template("v").is_err());
        assert!(check_ref_template("{env}-{version}").is_err());
        assert!(check_ref_template("-{version}").is_err());
        assert_eq!(ref_for("v{version}", "1.8.0").unwrap(), "v1.8.0");
    }

    #[test]
    fn double_star_matches_any_depth_including_none() {
        let m = g("migrations/**");
        assert!(m.matches("migrations/0001_init.sql"));
        assert!(m.matches("migrations/2026/11/0042_add_index.sql"));
        assert!(
            !m.matches("migrations"),
            "the directory itself is no file below it"
        );
        assert!(!m.matches("src/migrations/x.sql"));
        assert!(!m.matches("migrations_old/x.sql"));
        let any_sql = g("**/*.sql");
        assert!(any_sql.matches("schema.sql"));
        assert!(any_sql.matches("db/migrate/001.sql"));
        assert!(!any_sql.matches("db/migrate/001.sql.bak"));
        let mid = g("db/**/migrate/*.rb");
        assert!(mid.matches("db/migrate/20261124_add.rb"));
        assert!(mid.matches("db/a/b/migrate/x.rb"));
        assert!(!mid.matches("db/a/b/migrate/sub/x.rb"));
    }

    #[test]
    fn single_star_and_question_mark_stay_within_a_segment() {
        assert!(g("db/*.sql").matches("db/1.sql"));
        assert!(!g("db/*.sql").matches("db/x/1.sql"));
        assert!(g("db/00?_*.sql").matches("db/001_init.sql"));
        assert!(!g("db/00?_*.sql").matches("db/0001_init.sql"));
        assert!(g("schema.rb").matches("schema.rb"));
        assert!(!g("schema.rb").matches("db/schema.rb"));
        // A trailing slash: everything below.
        assert!(g("db/migrate/").matches("db/migrate/1.rb"));
        // Repeated ** collapse; backtracking over many segments stays correct.
        assert!(g("**/**/a/**/b").matches("x/y/a/z/a/b"));
        assert!(!g("**/a/**/b").matches("x/y/a/z/a/c"));
    }

    #[test]
    fn the_scope_of_globs_is_their_literal_directories() {
        let gs = |t: &[&str]| t.iter().map(|x| g(x)).collect::<Vec<_>>();
        assert_eq!(
            glob_scope(&gs(&["migrations/**", "db/migrate/*.rb", "db/migrate/"])),
            Some(vec!["migrations".to_string(), "db/migrate".to_string()])
        );
        assert_eq!(
            glob_scope(&gs(&["schema.rb", "db/00?_*.sql"])),
            Some(vec!["schema.rb".to_string(), "db".to_string()])
        );
        // A glob that can match anywhere needs every path; none needs none.
        assert_eq!(glob_scope(&gs(&["migrations/**", "**/*.sql"])), None);
        assert_eq!(glob_scope(&gs(&["*.sql"])), None);
        assert_eq!(glob_scope(&[]), Some(vec![]));
        // Every path a glob matches lies in its scope.
        for (glob, path) in [
            ("migrations/**", "migrations/a/b.sql"),
            ("db/00?_*.sql", "db/001_x.sql"),
            ("schema.rb", "schema.rb"),
        ] {
            let dirs = glob_scope(&gs(&[glob])).unwrap();
            assert!(g(glob).matches(path));
            assert!(
                dirs.iter()
                    .any(|d| path == d || path.starts_with(&format!("{d}/"))),
                "{path} outside {dirs:?}"
            );
        }
    }

    #[test]
    fn bad_globs_are_named() {
        assert_eq!(Glob::parse(""), Err(GlobError::Empty));
        assert!(matches!(
            Glob::parse("migrations/**.sql"),
            Err(GlobError::DoubleStar(_))
        ));
        assert!(matches!(
            Glob::parse("/db/*"),
            Err(GlobError::NotRelative(_))
        ));
        assert!(matches!(
            Glob::parse("./db/*"),
            Err(GlobError::NotRelative(_))
        ));
        assert!(matches!(
            Glob::parse("db//x"),
            Err(GlobError::EmptySegment(_))
        ));
        assert!(matches!(
            Glob::parse("db/\u{1b}x"),
            Err(GlobError::Control(_))
        ));
    }

    #[test]
    fn migration_paths_keeps_only_matching_ones() {
        let globs = [g("migrations/**"), g("db/migrate/**")];
        let paths: Vec<String> = [
            "src/main.rs",
            "migrations/0003_orders.sql",
            "README.md",
            "db/migrate/1.rb",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            migration_paths(&paths, &globs),
            vec!["migrations/0003_orders.sql", "db/migrate/1.rb"]
        );
        assert!(migration_paths(&paths, &[]).is_empty());
    }

    #[test]
    fn a_backup_is_needed_only_for_a_migration_release_where_required() {
        let m = vec!["migrations/1.sql".to_string()];
        assert!(needs_backup(true, &m));
        assert!(!needs_backup(true, &[]));
        assert!(!needs_backup(false, &m));
    }

    #[test]
    fn the_backup_gate_blocks_when_the_repository_cannot_tell() {
        assert_eq!(backup_gate(false, "v1", Err("no repo")), None);
        let g = backup_gate(true, "v1.8.0", Err("v1.8.0: no tag v1.8.0 in /srv/shop")).unwrap();
        assert!(!g.ok);
        assert!(g.detail.starts_with("unknown: cannot tell"), "{}", g.detail);
        assert!(backup_gate(true, "v1.8.0", Ok(&[])).unwrap().ok);
        let m = vec!["migrations/3.sql".to_string()];
        let g = backup_gate(true, "v1.8.0", Ok(&m)).unwrap();
        assert!(
            g.ok && g.detail.contains("1 migration file:"),
            "{}",
            g.detail
        );
    }

    #[test]
    fn a_backup_id_survives_the_audit_detail() {
        let d = backup_detail("bk-20261125-1500");
        assert_eq!(backup_id_of(&d), Some("bk-20261125-1500"));
        assert_eq!(
            backup_id_of(&format!("{d} (./backup-db production v1.8.0)")),
            Some("bk-20261125-1500")
        );
        assert_eq!(backup_id_of("something else"), None);
        assert_eq!(backup_id_of("backup id: "), None);
    }

    #[test]
    fn restore_text_fills_the_backup_id() {
        assert_eq!(
            restore_text(
                "pg_restore --clean -d shop /backups/{backup} # {env} {version}",
                Some("bk-2026-11-25T1500"),
                "production",
                "v1.8.0"
            ),
            "pg_restore --clean -d shop /backups/bk-2026-11-25T1500 # production v1.8.0"
        );
        assert_eq!(
            restore_text("restore {backup}", None, "p", "v"),
            "restore {backup}"
        );
        let w = schema_warning(
            "v1.8.0",
            &["a.sql", "b.sql", "c.sql", "d.sql"].map(String::from),
        );
        assert!(w.contains("a.sql, b.sql, c.sql and 1 more"), "{w}");
        assert!(w.contains("leaves the schema as it is"), "{w}");
    }

    #[test]
    fn a_rollback_across_migrations_names_the_restore_command_with_the_backup() {
        assert_eq!(
            schema_notice("p", "v1", vec![], Some("r {backup}"), None),
            None
        );
        let b = Backup {
            id: "bk-7".into(),
            at: Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap(),
        };
        let n = schema_notice(
            "production",
            "v1.8.0",
            vec!["migrations/0003_orders.sql".into()],
            Some("pg_restore --clean -d shop /backups/{backup}"),
            Some(b.clone()),
        )
        .unwrap();
        assert_eq!(
            n.restore.as_deref(),
            Some("pg_restore --clean -d shop /backups/bk-7")
        );
        assert!(n.warning.contains("schema as it is"), "{}", n.warning);
        assert_eq!(n.backup, Some(b));
    }

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 24, h, 0, 0).unwrap()
    }
    fn freeze(from: u32, to: u32, envs: &[&str], reason: &str) -> Freeze {
        Freeze {
            from: Rfc3339(t(from).fixed_offset()),
            to: Rfc3339(t(to).fixed_offset()),
            envs: envs.iter().map(|s| s.to_string()).collect(),
            reason: reason.into(),
        }
    }

    #[test]
    fn a_freeze_holds_from_inclusive_to_exclusive_for_its_envs_only() {
        let f = freeze(10, 12, &["production"], "holiday");
        assert!(!f.holds("production", t(9)));
        assert!(f.holds("production", t(10)));
        assert!(f.holds("production", t(11)));
        assert!(!f.holds("production", t(12)));
        assert!(!f.holds("staging", t(11)));
    }

    #[test]
    fn the_freeze_gate_refuses_names_the_reason_and_can_be_broken() {
        let fs = [
            freeze(10, 12, &["production"], "holiday"),
            freeze(
                11,
                14,
                &["production", "staging"],
                "migration of the data centre",
            ),
        ];
        assert_eq!(freeze_gate(&fs, "development", t(11), None), None);
        let open = freeze_gate(&fs, "production", t(9), None).unwrap();
        assert!(open.ok, "{open:?}");
        let shut = freeze_gate(&fs, "production", t(11), None).unwrap();
        assert!(!shut.ok);
        // The one that ends last is the one named.
        assert!(
            shut.detail
                .contains("until 2026-12-24 14:00 UTC: migration of the data centre"),
            "{}",
            shut.detail
        );
        assert!(shut.detail.contains("--break-freeze"), "{}", shut.detail);
        // A blank reason does not break it.
        assert!(
            !freeze_gate(&fs, "production", t(11), Some("  "))
                .unwrap()
                .ok
        );
        let broken = freeze_gate(&fs, "production", t(11), Some("hotfix for INC-42")).unwrap();
        assert!(broken.ok);
        assert!(
            broken.detail.contains("hotfix for INC-42"),
            "{}",
            broken.detail
        );
    }

    #[test]
    fn rfc3339_keeps_its_offset_and_parses_from_toml() {
        #[derive(Deserialize)]
        struct T {
            a: Rfc3339,
            b: Rfc3339,
        }
        let v: T = toml::from_str("a = \"2026-12-20T18:00:00+01:00\"\nb = 2026-12-20T17:00:00Z\n")
            .unwrap();
        assert_eq!(v.a.0, v.b.0);
        assert_eq!(v.a.to_string(), "2026-12-20 18:00 +01:00");
        assert_eq!(v.b.to_string(), "2026-12-20 17:00 UTC");
        assert!(toml::from_str::<T>("a = \"tomorrow\"\nb = \"x\"").is_err());
    }
}
