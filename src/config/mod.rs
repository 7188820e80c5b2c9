//! The config file: TOML, typed, validated, with errors that name the file,
//! line and column (DESIGN habit 9).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::domain::{HumanDuration, TimeWindow};

mod team;
pub use team::{NotifyConfig, NotifyEvent, NotifyKind, PolicyConfig};
mod strategy;
pub use strategy::{BlueGreenConfig, CanaryConfig, LiveSourceConfig};
mod codepipeline;
pub use codepipeline::CodePipelineConfig;
mod environment;
mod release;
pub use environment::{
    DeployConfig, EnvironmentConfig, GatesConfig, GithubActionsConfig, JenkinsConfig, VercelConfig,
    VercelVersionConfig, VersionSourceConfig, expand_link,
};
use environment::{check_deploy, check_link, check_version};
mod probe;
use probe::Probe;
mod ready;
pub use ready::ReadyConfig;
pub use release::{
    BackupConfig, CiConfig, FreezeConfig, GithubSourceConfig, ReleaseConfig, freezes,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the service shown in the console and in `status`.
    #[serde(default = "default_project")]
    pub project: String,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub ui: UiConfig,
    pub environments: Vec<EnvironmentConfig>,
    /// `[policy]`: team rules (self-approval).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[[notify]]`: receivers of release events.
    #[serde(default)]
    pub notify: Vec<Spanned<NotifyConfig>>,
    /// `[release]`: the repository, migrations, CI, backup and restore.
    #[serde(default)]
    pub release: ReleaseConfig,
    /// `[[freeze]]` windows.
    #[serde(default)]
    pub freeze: Vec<FreezeConfig>,
}

fn default_project() -> String {
    "service".into()
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Who acts; default `$USER@hostname`.
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Path of the embedded store; default `<data dir>/shipdeck.db`.
    pub path: Option<PathBuf>,
    /// `postgres://…` for a shared team store.
    pub url: Option<String>,
    /// Environment variable holding the team store's password (else
    /// `$PGPASSWORD`, else `~/.pgpass`).
    pub password_env: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsSourceKind {
    Scrape,
    Prometheus,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub source: MetricsSourceKind,
    /// The `/metrics` URL (scrape) or Prometheus' base URL.
    pub url: String,
    /// One sample per step.
    #[serde(default = "default_step")]
    pub step: HumanDuration,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Environment variable holding a bearer token for the metrics source.
    pub token_env: Option<String>,
    /// PromQL templates (prometheus source). Placeholders: `{env}`, `{step}`.
    #[serde(default)]
    pub queries: QueryTemplates,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            source: MetricsSourceKind::Scrape,
            url: "http://127.0.0.1:7878/metrics".into(),
            step: default_step(),
            timeout: default_timeout(),
            token_env: None,
            queries: QueryTemplates::default(),
        }
    }
}

fn default_step() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueryTemplates {
    /// Requests in the step.
    pub requests: String,
    /// Failed (5xx) requests in the step.
    pub errors: String,
    /// A latency quantile in seconds; `{q}` is replaced by 0.5, 0.95, 0.99.
    pub latency: String,
}

impl Default for QueryTemplates {
    fn default() -> Self {
        QueryTemplates {
            requests: r#"sum(increase(http_requests_total{env="{env}"}[{step}]))"#.into(),
            errors: r#"sum(increase(http_requests_total{env="{env}",code=~"5.."}[{step}]))"#.into(),
            latency: r#"histogram_quantile({q}, sum by (le) (increase(http_request_duration_seconds_bucket{env="{env}"}[{step}])))"#.into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Post-deploy monitoring window.
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    /// Pre-deploy period the window is compared against.
    #[serde(default = "default_window")]
    pub baseline: HumanDuration,
    /// Roll back at once on a confirmed regression.
    #[serde(default = "default_true")]
    pub auto_rollback: bool,
    /// Hard SLO guards: crossing one is a regression whatever the baseline.
    pub max_error_rate: Option<f64>,
    pub max_p50_ms: Option<f64>,
    pub max_p95_ms: Option<f64>,
    pub max_p99_ms: Option<f64>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            window: default_window(),
            baseline: default_window(),
            auto_rollback: true,
            max_error_rate: None,
            max_p50_ms: None,
            max_p95_ms: None,
            max_p99_ms: None,
        }
    }
}

impl MonitorConfig {
    /// The one mapping from `[monitor]` to the detector's settings, used by
    /// the live window, `watch` and `replay --config` alike: window (or
    /// `window` when given, e.g. `watch --window`), baseline and the hard
    /// guards; the detector's tuning keeps its defaults.
    pub fn detector_config(
        &self,
        window: Option<std::time::Duration>,
    ) -> crate::monitor::DetectorConfig {
        crate::monitor::DetectorConfig {
            baseline_s: self.baseline.0.as_secs_f64(),
            window_s: window.unwrap_or(self.window.0).as_secs_f64(),
            max_error_rate: self.max_error_rate,
            max_p50_ms: self.max_p50_ms,
            max_p95_ms: self.max_p95_ms,
            max_p99_ms: self.max_p99_ms,
            ..crate::monitor::DetectorConfig::default()
        }
    }
}

fn default_window() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}
fn default_true() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ThemeName {
    #[default]
    Dark,
    Light,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// `false` makes `r` roll back at once, without a dialog.
    #[serde(default = "default_true")]
    pub confirm_rollback: bool,
    #[serde(default)]
    pub theme: ThemeName,
    /// How often the console polls versions and metrics.
    #[serde(default = "default_refresh")]
    pub refresh: HumanDuration,
    /// Show everything, allow nothing.
    #[serde(default)]
    pub read_only: bool,
    /// Clicks select an environment and the wheel scrolls; `false` leaves
    /// the mouse to the terminal (select and copy text).
    #[serde(default = "default_true")]
    pub mouse: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            confirm_rollback: true,
            theme: ThemeName::Dark,
            refresh: default_refresh(),
            read_only: false,
            mouse: true,
        }
    }
}

fn default_refresh() -> HumanDuration {
    HumanDuration::from_secs(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackStrategy {
    #[default]
    Redeploy,
    BlueGreen,
    Canary,
}

impl RollbackStrategy {
    /// The strategy's name as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackStrategy::Redeploy => "redeploy",
            RollbackStrategy::BlueGreen => "blue-green",
            RollbackStrategy::Canary => "canary",
        }
    }
}

fn default_rollback() -> Spanned<RollbackStrategy> {
    Spanned::new(0..0, RollbackStrategy::Redeploy)
}

/// A config error with its place in the file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", path.display(), place(*line, *column))]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn place(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = read_config_text(path)?;
        let mut cfg = Config::parse(&src, path)?;
        cfg.release.anchor(path);
        cfg.register_secrets();
        Ok(cfg)
    }

    /// Parse and validate config text; `path` only names it in errors.
    pub fn parse(src: &str, path: &Path) -> Result<Config, ConfigError> {
        let at = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = match span {
                Some(s) => {
                    let (l, c) = line_col(src, s.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigError {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let cfg: Config = toml::from_str(src).map_err(|e| {
            // toml's message carries a source excerpt after the first line; keep the gist.
            let msg = e.message().trim().to_string();
            at(e.span(), msg)
        })?;
        cfg.validate().map_err(|(span, msg)| at(span, msg))?;
        // The same text once more, for the places of the values whose
        // limits are checked below (the typed config keeps plain values).
        let probe: Probe =
            toml::from_str(src).map_err(|e| at(e.span(), e.message().to_string()))?;
        probe.validate().map_err(|(span, msg)| at(span, msg))?;
        Ok(cfg)
    }

    /// [`Config::load`], and what `config check` insists on besides: every
    /// environment variable a `[[notify]]` table names is set (a running
    /// shipdeck skips such a receiver and logs why, rather than fail the
    /// action it would have reported).
    pub fn load_checked(path: &Path) -> Result<Config, ConfigError> {
        let src = read_config_text(path)?;
        let cfg = Config::parse(&src, path)?;
        if let Some((span, message)) = team::unset_notify_vars(&cfg.notify).into_iter().next() {
            let (line, column) = match span {
                Some(s) => {
                    let (l, c) = line_col(&src, s.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            return Err(ConfigError {
                path: path.to_path_buf(),
                line,
                column,
                message,
            });
        }
        cfg.register_secrets();
        Ok(cfg)
    }

    /// Register every secret this config names with the redactor: the
    /// values of the `token_env` variables that are set, and the
    /// credentials of every URL. Called by [`Config::load`]; the backends
    /// also register what they read.
    pub fn register_secrets(&self) {
        let mut vars = vec![
            self.metrics.token_env.as_deref(),
            self.store.password_env.as_deref(),
            Some("PGPASSWORD"),
        ];
        // The store's user name is no secret (it names the store in every
        // message): only its password is.
        if let Some(u) = self.store.url.as_deref() {
            crate::text::register_url_password(u);
        }
        let mut urls = vec![Some(self.metrics.url.as_str())];
        for e in &self.environments {
            let mut sources: Vec<&VersionSourceConfig> = Vec::new();
            let mut hooks: Vec<&DeployConfig> = Vec::new();
            sources.extend(e.version.as_ref().map(|v| v.get_ref()));
            hooks.extend(e.deploy.as_ref().map(|d| d.get_ref()));
            if let Some(bg) = &e.blue_green {
                let bg = bg.get_ref();
                let live = bg.live.get_ref();
                vars.push(live.token_env.as_deref());
                urls.push(live.url.as_deref());
                sources.push(bg.slot_version.get_ref());
                hooks.extend([bg.deploy.get_ref(), bg.switch.get_ref()]);
            }
            if let Some(c) = &e.canary {
                let c = c.get_ref();
                sources.push(c.version.get_ref());
                hooks.extend([c.deploy.get_ref(), c.weight.get_ref()]);
            }
            for v in sources {
                vars.push(v.token_env.as_deref());
                vars.push(v.vercel.as_ref().map(|x| x.token_env.as_str()));
                urls.push(v.url.as_deref());
            }
            for d in hooks {
                vars.push(d.token_env.as_deref());
                vars.push(
                    d.github_actions
                        .as_ref()
                        .map(|g| g.get_ref().token_env.as_str()),
                );
                vars.push(d.jenkins.as_ref().map(|j| j.get_ref().token_env.as_str()));
                vars.push(d.vercel.as_ref().map(|v| v.get_ref().token_env.as_str()));
                urls.push(d.jenkins.as_ref().map(|j| j.get_ref().url.as_str()));
                urls.push(d.webhook.as_deref());
            }
        }
        if let Some(g) = self
            .release
            .ci
            .as_ref()
            .and_then(|c| c.get_ref().github.as_ref())
        {
            vars.push(Some(g.token_env.as_str()));
            urls.push(g.api_url.as_deref());
        }
        // A notification URL is a secret as a whole (a Slack webhook's
        // path is its token).
        vars.extend(
            self.notify
                .iter()
                .map(|n| Some(n.get_ref().url_env.as_str())),
        );
        vars.push(
            self.release
                .ci
                .as_ref()
                .and_then(|c| c.get_ref().github.as_ref())
                .map(|g| g.token_env.as_str()),
        );
        for v in vars.into_iter().flatten() {
            if let Ok(secret) = std::env::var(v) {
                crate::text::register_secret(&secret);
            }
        }
        for u in urls.into_iter().flatten() {
            crate::text::register_url_credentials(u);
        }
    }

    fn validate(&self) -> Result<(), (Option<std::ops::Range<usize>>, String)> {
        team::check_notify(&self.notify)?;
        if self.environments.is_empty() {
            return Err((
                None,
                "no [[environments]]: list at least one, in pipeline order".into(),
            ));
        }
        let mut seen = HashSet::new();
        for env in &self.environments {
            let name = env.name.get_ref();
            let valid = !name.is_empty()
                && name.len() <= 40
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err((
                    Some(env.name.span()),
                    format!("environment name {name:?}: use 1-40 letters, digits, - or _"),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err((
                    Some(env.name.span()),
                    format!("duplicate environment name {name:?}: each environment appears once"),
                ));
            }
        }
        for (i, env) in self.environments.iter().enumerate() {
            let name = env.name.get_ref();
            strategy::check_strategy(env)?;
            if let Some(version) = &env.version {
                check_version(name, version)?;
            }
            if let Some(deploy) = &env.deploy {
                check_deploy(name, deploy)?;
                if let Some(t) = &deploy.get_ref().codepipeline {
                    codepipeline::check(name, t, self.release.git.is_some())?;
                }
            }
            if let Some(stage) = &env.gates.approval_stage {
                match self.index_of(stage.get_ref()) {
                    None => {
                        return Err((
                            Some(stage.span()),
                            format!(
                                "approval_stage names {:?}, which is not an environment (known: {})",
                                stage.get_ref(),
                                self.names().join(", ")
                            ),
                        ));
                    }
                    Some(j) if j >= i => {
                        return Err((
                            Some(stage.span()),
                            format!(
                                "approval_stage of {name:?} must be an earlier stage, but {:?} comes at or after it",
                                stage.get_ref()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            for (link, template) in env.links.iter().flat_map(|l| l.get_ref()) {
                if let Err(why) = check_link(link, template) {
                    return Err((
                        env.links.as_ref().map(|l| l.span()),
                        format!("environment {name:?}: links.{link}: {why}"),
                    ));
                }
            }
            if env.gates.requires_approval && i == 0 && env.gates.approval_stage.is_none() {
                return Err((
                    Some(env.name.span()),
                    format!(
                        "environment {name:?} requires approval but has no earlier stage to accept it in"
                    ),
                ));
            }
        }
        // Zero and too-short durations are refused at their place by the
        // probe (see `probe::at_least`).
        release::validate(&self.release, &self.freeze, &self.names())?;
        Ok(())
    }

    pub fn names(&self) -> Vec<&str> {
        self.environments
            .iter()
            .map(|e| e.name.get_ref().as_str())
            .collect()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.environments
            .iter()
            .position(|e| e.name.get_ref() == name)
    }

    pub fn env(&self, name: &str) -> Option<&EnvironmentConfig> {
        self.environments.iter().find(|e| e.name.get_ref() == name)
    }
}

/// Limits on durations beyond the global one (365 days, see
/// `HumanDuration::parse`).
pub mod limits {
    use std::time::Duration;

    const H: u64 = 3600;
    /// `[monitor] window`.
    pub const WINDOW: Duration = Duration::from_secs(24 * H);
    /// `[monitor] baseline`.
    pub const BASELINE: Duration = Duration::from_secs(7 * 24 * H);
    /// `[metrics] step`.
    pub const STEP: Duration = Duration::from_secs(H);
    /// `timeout` of `[metrics]` and of a version source.
    pub const READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    /// `timeout` of a deploy.
    pub const DEPLOY_TIMEOUT: Duration = Duration::from_secs(24 * H);
    /// `poll` of a deploy and `[ui] refresh`.
    pub const POLL: Duration = Duration::from_secs(5 * 60);
}

type Span = Option<std::ops::Range<usize>>;
type Problem = (Span, String);

/// Where the config was found, following SPEC §3's lookup order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    Found(PathBuf),
    /// No config anywhere: the places that were looked at.
    Missing(Vec<PathBuf>),
}

/// `--config`, then `$SHIPDECK_CONFIG`, then `./shipdeck.toml`, then the
/// platform config dir (honouring `$XDG_CONFIG_HOME` on every platform).
pub fn locate(explicit: Option<&Path>) -> Located {
    if let Some(p) = explicit {
        return Located::Found(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("SHIPDECK_CONFIG").filter(|p| !p.is_empty()) {
        return Located::Found(PathBuf::from(p));
    }
    let mut looked = vec![PathBuf::from("shipdeck.toml")];
    if looked[0].is_file() {
        return Located::Found(looked.remove(0));
    }
    if let Some(dir) = crate::paths::config_dir() {
        let p = dir.join("config.toml");
        if p.is_file() {
            return Located::Found(p);
        }
        looked.push(p);
    }
    Located::Missing(looked)
}

/// A config file's text, read with a size cap (a config pointing at
/// `/dev/zero` must not be read forever).
fn read_config_text(path: &Path) -> Result<String, ConfigError> {
    crate::paths::read_text_capped(path, crate::paths::MAX_CONFIG_BYTES).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: format!("cannot read: {e}"),
    })
}

/// Only the `[ui]` table of a config file (everything else is ignored), for
/// `shipdeck demo --config FILE`, which runs its own fleet but honours the
/// file's look and confirmations.
pub fn load_ui(path: &Path) -> Result<UiConfig, ConfigError> {
    #[derive(Deserialize)]
    struct UiOnly {
        #[serde(default)]
        ui: UiConfig,
    }
    let src = read_config_text(path)?;
    toml::from_str::<UiOnly>(&src).map(|u| u.ui).map_err(|e| {
        let (line, column) = match e.span() {
            Some(s) => {
                let (l, c) = line_col(&src, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}

#[cfg(test)]
mod tests;
