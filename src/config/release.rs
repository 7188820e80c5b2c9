//! `[release]` (where the release's commits come from, which paths are
//! migrations, the CI source, the backup hook and the restore command),
//! `[[freeze]]` windows, and the per-environment gate keys that need them.
//! Typed here and validated with the place of every error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Problem;
use crate::domain::HumanDuration;
use crate::domain::release::{Freeze, Glob, Rfc3339, check_ref_template};

/// `[release]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    /// A local clone of the service's repository (relative paths are taken
    /// from the config file's directory).
    pub git: Option<Spanned<PathBuf>>,
    /// How a version names a git ref; `{version}` is replaced. Default
    /// `"{version}"`.
    pub tag: Option<Spanned<String>>,
    /// Globs (`**` for any depth) of the paths that carry database changes.
    #[serde(default)]
    pub migrations: Vec<Spanned<String>>,
    /// Where the release commit's CI state comes from.
    pub ci: Option<Spanned<CiConfig>>,
    /// The hook that takes a database backup; prints its id on its last line.
    pub backup: Option<Spanned<BackupConfig>>,
    /// The restore command shown to humans (never run): `{backup}`, `{env}`
    /// and `{version}` are filled in.
    pub restore: Option<Spanned<String>>,
    /// How long one git command may take.
    #[serde(default = "default_git_timeout")]
    pub timeout: HumanDuration,
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig {
            git: None,
            tag: None,
            migrations: Vec::new(),
            ci: None,
            backup: None,
            restore: None,
            timeout: default_git_timeout(),
        }
    }
}

fn default_git_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// `ci = { command = [...] }` (exit 0 green, 1 red, 3 running; `{sha}` and
/// `{version}` filled in) or `ci = { github = { repo, token_env } }`
/// (combined commit status and check runs): exactly one of them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CiConfig {
    pub command: Option<Vec<String>>,
    pub github: Option<GithubSourceConfig>,
    /// How long one look at the CI state may take.
    #[serde(default = "default_ci_timeout")]
    pub timeout: HumanDuration,
}

fn default_ci_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// A GitHub repository read through the REST API (CI state, reviews).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSourceConfig {
    /// `owner/name`.
    pub repo: String,
    pub token_env: String,
    /// The REST API root; GitHub Enterprise Server is `https://HOST/api/v3`.
    pub api_url: Option<String>,
}

/// `backup = { command = ["./backup-db", "{env}", "{version}"] }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    pub command: Vec<String>,
    /// How long the backup may take before it counts as failed.
    #[serde(default = "default_backup_timeout")]
    pub timeout: HumanDuration,
}

fn default_backup_timeout() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}

/// `[[freeze]]`: promotion to `envs` is refused from `from` until `to`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeConfig {
    pub from: Spanned<Rfc3339>,
    pub to: Spanned<Rfc3339>,
    pub envs: Spanned<Vec<Spanned<String>>>,
    pub reason: Spanned<String>,
}

impl ReleaseConfig {
    /// How a version names a ref.
    pub fn tag_template(&self) -> &str {
        self.tag
            .as_ref()
            .map_or("{version}", |t| t.get_ref().as_str())
    }

    /// The migration globs, parsed (validated at load, so none fails here).
    pub fn migration_globs(&self) -> Vec<Glob> {
        self.migrations
            .iter()
            .filter_map(|g| Glob::parse(g.get_ref()).ok())
            .collect()
    }

    /// The restore command template, if any.
    pub fn restore(&self) -> Option<&str> {
        self.restore.as_ref().map(|r| r.get_ref().as_str())
    }

    /// A relative `git` path is taken from the config file's directory.
    pub(super) fn anchor(&mut self, config_file: &Path) {
        let Some(git) = &mut self.git else { return };
        let base = config_file.parent().unwrap_or(Path::new(""));
        let p = git.get_mut();
        if p.is_relative() {
            let joined = if base.as_os_str().is_empty() {
                p.clone()
            } else {
                base.join(&*p)
            };
            *p = joined;
        }
    }
}

/// The freeze windows of a config, as the pure rules take them.
pub fn freezes(list: &[FreezeConfig]) -> Vec<Freeze> {
    list.iter()
        .map(|f| Freeze {
            from: *f.from.get_ref(),
            to: *f.to.get_ref(),
            envs: f
                .envs
                .get_ref()
                .iter()
                .map(|e| e.get_ref().clone())
                .collect(),
            reason: f.reason.get_ref().clone(),
        })
        .collect()
}

/// Only `{name}` placeholders from `allowed`, each closed.
fn placeholders_ok(v: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = v;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("{v:?} has a '{{' without '}}'"));
        };
        let name = &after[..close];
        if !allowed.contains(&name) {
            let known: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            return Err(format!(
                "{v:?}: unknown placeholder {{{name}}} (use {})",
                known.join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn argv_ok(what: &str, argv: &[String], allowed: &[&str]) -> Result<(), String> {
    let Some(prog) = argv.first() else {
        return Err(format!("{what} command is empty"));
    };
    if prog.trim().is_empty() {
        return Err(format!("{what} command names no program"));
    }
    for a in argv {
        if crate::text::has_control(a) {
            return Err(format!(
                "{what} command argument {a:?} contains control characters"
            ));
        }
        placeholders_ok(a, allowed).map_err(|e| format!("{what} command: {e}"))?;
    }
    Ok(())
}

/// Longest freeze reason accepted.
const MAX_REASON: usize = 200;

/// Check `[release]` and `[[freeze]]` against the environments `names`.
pub(super) fn validate(
    r: &ReleaseConfig,
    freeze: &[FreezeConfig],
    names: &[&str],
) -> Result<(), Problem> {
    if let Some(git) = &r.git {
        let shown = git.get_ref().to_string_lossy();
        if shown.trim().is_empty() || crate::text::has_control(&shown) {
            return Err((
                Some(git.span()),
                format!("[release] git = {shown:?}: name the directory of a local clone"),
            ));
        }
    }
    if let Some(tag) = &r.tag {
        check_ref_template(tag.get_ref())
            .map_err(|e| (Some(tag.span()), format!("[release] tag: {e}")))?;
    }
    for g in &r.migrations {
        Glob::parse(g.get_ref())
            .map_err(|e| (Some(g.span()), format!("[release] migrations: {e}")))?;
    }
    if !r.migrations.is_empty() && r.git.is_none() {
        return Err((
            Some(r.migrations[0].span()),
            "[release] migrations needs git = \"PATH\" (a local clone) to see which paths a release changes".into(),
        ));
    }
    // `[release] timeout` and the ci and backup timeouts are checked at
    // their place, as written, by the probe.
    if let Some(ci) = &r.ci {
        let at = |e: String| (Some(ci.span()), format!("[release] ci: {e}"));
        let c = ci.get_ref();
        match (&c.command, &c.github) {
            (Some(argv), None) => argv_ok("ci", argv, &["sha", "version"]).map_err(at)?,
            (None, Some(g)) => check_github(g).map_err(at)?,
            _ => {
                return Err(at(
                    "needs exactly one of command = [\"./ci-state\", \"{sha}\"] or github = { repo = \"owner/name\", token_env = \"GITHUB_TOKEN\" }".into(),
                ));
            }
        }
    }
    if let Some(b) = &r.backup {
        let at = |e: String| (Some(b.span()), format!("[release] backup: {e}"));
        argv_ok("backup", &b.get_ref().command, &["env", "version"]).map_err(at)?;
    }
    if let Some(restore) = &r.restore {
        let at = |e: String| (Some(restore.span()), format!("[release] restore: {e}"));
        let t = restore.get_ref();
        if t.trim().is_empty() {
            return Err(at(
                "empty: write the command a human runs to restore a backup".into(),
            ));
        }
        if crate::text::has_control(t) {
            return Err(at(
                "contains control characters or escape sequences; use printable text".into(),
            ));
        }
        placeholders_ok(t, &["backup", "env", "version"]).map_err(at)?;
    }
    for f in freeze {
        let (from, to) = (f.from.get_ref(), f.to.get_ref());
        if from.0 >= to.0 {
            return Err((
                Some(f.to.span()),
                format!("[[freeze]] to = {to} must come after from = {from}"),
            ));
        }
        if f.envs.get_ref().is_empty() {
            return Err((
                Some(f.envs.span()),
                "[[freeze]] envs is empty: name the environments it freezes".into(),
            ));
        }
        for e in f.envs.get_ref() {
            if !names.contains(&e.get_ref().as_str()) {
                return Err((
                    Some(e.span()),
                    format!(
                        "[[freeze]] envs names {:?}, which is not an environment (known: {})",
                        e.get_ref(),
                        names.join(", ")
                    ),
                ));
            }
        }
        let reason = f.reason.get_ref();
        if reason.trim().is_empty()
            || crate::text::has_control(reason)
            || reason.chars().count() > MAX_REASON
        {
            return Err((
                Some(f.reason.span()),
                format!(
                    "[[freeze]] reason: say why in 1-{MAX_REASON} printable characters (it is shown to whoever is refused)"
                ),
            ));
        }
    }
    Ok(())
}

fn check_github(g: &GithubSourceConfig) -> Result<(), String> {
    let parts: Vec<&str> = g.repo.split('/').collect();
    let seg_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if parts.len() != 2 || !parts.iter().all(|p| seg_ok(p)) {
        return Err(format!("github.repo {:?} must be \"owner/name\"", g.repo));
    }
    if g.token_env.is_empty()
        || !g
            .token_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "github.token_env {:?} must name an environment variable",
            g.token_env
        ));
    }
    if let Some(u) = &g.api_url {
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && reqwest::Url::parse(u).is_ok();
        if !ok {
            return Err(format!(
                "github.api_url {u:?} must be an http:// or https:// URL"
            ));
        }
    }
    Ok(())
}

/// The places of the per-environment gate keys, read leniently (see
/// `Probe` in the parent module).
#[derive(Deserialize, Default)]
pub(super) struct GatesProbe {
    requires_ci: Option<Spanned<bool>>,
    requires_review: Option<Spanned<bool>>,
    requires_backup: Option<Spanned<bool>>,
    requires_healthy_stage: Option<Spanned<bool>>,
    approval_stage: Option<toml::Value>,
}

/// What `[release]` holds, read leniently for the gate checks.
#[derive(Deserialize, Default)]
pub(super) struct ReleaseProbe {
    git: Option<toml::Value>,
    pub(super) timeout: Option<Spanned<super::probe::Written>>,
    #[serde(default)]
    migrations: Vec<toml::Value>,
    pub(super) ci: Option<CiProbe>,
    pub(super) backup: Option<BackupProbe>,
}

#[derive(Deserialize, Default)]
pub(super) struct CiProbe {
    github: Option<toml::Value>,
    pub(super) timeout: Option<Spanned<super::probe::Written>>,
}

#[derive(Deserialize, Default)]
pub(super) struct BackupProbe {
    pub(super) timeout: Option<Spanned<super::probe::Written>>,
}

/// A gate key set to true needs the `[release]` source that feeds it; the
/// error points at the key.
pub(super) fn check_gate_keys(
    release: &ReleaseProbe,
    env: &str,
    position: usize,
    gates: &GatesProbe,
) -> Result<(), Problem> {
    let on = |k: &Option<Spanned<bool>>| k.as_ref().filter(|b| *b.get_ref()).map(|b| b.span());
    let need = |span, key: &str, why: &str| {
        Err((
            Some(span),
            format!("environment {env:?}: {key} = true {why}"),
        ))
    };
    if let Some(s) = on(&gates.requires_ci)
        && release.ci.is_none()
    {
        return need(
            s,
            "requires_ci",
            "needs [release] ci = { command = [\"./ci-state\", \"{sha}\"] } or ci = { github = { repo, token_env } }",
        );
    }
    if let Some(s) = on(&gates.requires_review)
        && release
            .ci
            .as_ref()
            .and_then(|c| c.github.as_ref())
            .is_none()
    {
        return need(
            s,
            "requires_review",
            "needs [release] ci = { github = { repo, token_env } }: reviews are read from GitHub's pull requests",
        );
    }
    if let Some(s) = on(&gates.requires_backup) {
        if release.backup.is_none() {
            return need(
                s,
                "requires_backup",
                "needs [release] backup = { command = [\"./backup-db\", \"{env}\", \"{version}\"] }",
            );
        }
        if release.migrations.is_empty() || release.git.is_none() {
            return need(
                s,
                "requires_backup",
                "needs [release] git and migrations (globs) to tell a release that changes the database",
            );
        }
    }
    if let Some(s) = on(&gates.requires_healthy_stage)
        && position == 0
        && gates.approval_stage.is_none()
    {
        return need(
            s,
            "requires_healthy_stage",
            "needs an earlier stage whose metrics to judge, but this is the first",
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "release_tests.rs"]
mod tests;
