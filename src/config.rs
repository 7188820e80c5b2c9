//! The config file: TOML, typed, validated, with errors that name the file,
//! line and column (DESIGN habit 9).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::domain::{HumanDuration, TimeWindow};

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
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            confirm_rollback: true,
            theme: ThemeName::Dark,
            refresh: default_refresh(),
            read_only: false,
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
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    pub name: Spanned<String>,
    pub version: Spanned<VersionSourceConfig>,
    pub deploy: Spanned<DeployConfig>,
    #[serde(default)]
    pub gates: GatesConfig,
    /// Run the monitoring window after each deploy.
    #[serde(default)]
    pub monitored: bool,
    #[serde(default)]
    pub rollback: RollbackStrategy,
    /// Value of the `env` label selecting this environment's metrics
    /// (default: its name).
    pub metrics_label: Option<String>,
    /// Draw it as production (default: the last environment).
    pub production: Option<bool>,
    /// Restore command shown when a release with migrations is rolled back.
    pub restore_command: Option<String>,
}

/// How an environment's running version is read: an HTTP JSON endpoint with
/// a JSON pointer, or a command whose standard output is the version.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSourceConfig {
    pub url: Option<String>,
    #[serde(default = "default_pointer")]
    pub pointer: String,
    pub command: Option<Vec<String>>,
    pub token_env: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_pointer() -> String {
    "/version".into()
}

/// How an environment is deployed: an HTTP webhook (POST `{"version": …}`
/// with a bearer token from `token_env`) or a command given as argv, with
/// `{env}` and `{version}` replaced — never through a shell.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    pub webhook: Option<String>,
    pub command: Option<Vec<String>>,
    pub token_env: Option<String>,
    /// How long the deploy may take until the environment reports the new version.
    #[serde(default = "default_deploy_timeout")]
    pub timeout: HumanDuration,
    /// How often the version is polled while deploying.
    #[serde(default = "default_poll")]
    pub poll: HumanDuration,
}

fn default_deploy_timeout() -> HumanDuration {
    HumanDuration::from_secs(120)
}
fn default_poll() -> HumanDuration {
    HumanDuration::from_secs(1)
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatesConfig {
    /// A Go of the exact version is needed before deploying here.
    #[serde(default)]
    pub requires_approval: bool,
    /// The stage whose acceptance the approval records (default: the one before).
    pub approval_stage: Option<Spanned<String>>,
    /// Deploys outside this UTC window warn and ask again: "22:00-06:00".
    pub low_traffic_window: Option<TimeWindow>,
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
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&src, path)
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
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), (Option<std::ops::Range<usize>>, String)> {
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
            let vs = env.version.get_ref();
            match (&vs.url, &vs.command) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err((
                        Some(env.version.span()),
                        format!(
                            "environment {name:?}: version needs exactly one of url = \"…\" or command = [\"…\"]"
                        ),
                    ));
                }
                (None, Some(c)) if c.is_empty() => {
                    return Err((
                        Some(env.version.span()),
                        format!("environment {name:?}: version command is empty"),
                    ));
                }
                (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    return Err((
                        Some(env.version.span()),
                        format!(
                            "environment {name:?}: version url {u:?} must start with http:// or https://"
                        ),
                    ));
                }
                _ => {}
            }
            if !vs.pointer.is_empty() && !vs.pointer.starts_with('/') {
                return Err((
                    Some(env.version.span()),
                    format!(
                        "environment {name:?}: pointer {:?} must be a JSON pointer starting with /",
                        vs.pointer
                    ),
                ));
            }
            let d = env.deploy.get_ref();
            match (&d.webhook, &d.command) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err((
                        Some(env.deploy.span()),
                        format!(
                            "environment {name:?}: deploy needs exactly one of webhook = \"…\" or command = [\"…\"]"
                        ),
                    ));
                }
                (None, Some(c)) if c.is_empty() => {
                    return Err((
                        Some(env.deploy.span()),
                        format!("environment {name:?}: deploy command is empty"),
                    ));
                }
                (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    return Err((
                        Some(env.deploy.span()),
                        format!(
                            "environment {name:?}: webhook {u:?} must start with http:// or https://"
                        ),
                    ));
                }
                _ => {}
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
            if env.gates.requires_approval && i == 0 && env.gates.approval_stage.is_none() {
                return Err((
                    Some(env.name.span()),
                    format!(
                        "environment {name:?} requires approval but has no earlier stage to accept it in"
                    ),
                ));
            }
        }
        let m = &self.monitor;
        if m.window.0.is_zero() || m.baseline.0.is_zero() {
            return Err((
                None,
                "[monitor] window and baseline must be longer than zero".into(),
            ));
        }
        if m.window.0 > std::time::Duration::from_secs(24 * 3600) {
            return Err((None, "[monitor] window is at most 24h".into()));
        }
        if self.metrics.step.0 < std::time::Duration::from_millis(100) {
            return Err((None, "[metrics] step must be at least 100ms".into()));
        }
        if let Some(r) = m.max_error_rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err((
                None,
                format!(
                    "[monitor] max_error_rate {r} must be a fraction between 0 and 1 (1% = 0.01)"
                ),
            ));
        }
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

impl EnvironmentConfig {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
    pub fn label(&self) -> &str {
        self.metrics_label.as_deref().unwrap_or(self.name())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[environments]]
name = "staging"
version = { url = "http://127.0.0.1:7878/envs/staging/version" }
deploy = { webhook = "http://127.0.0.1:7878/envs/staging/deploy" }

[[environments]]
name = "production"
version = { url = "http://127.0.0.1:7878/envs/production/version" }
deploy = { command = ["./deploy.sh", "{env}", "{version}"] }
gates = { requires_approval = true }
monitored = true
"#;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(src, Path::new("test.toml"))
    }

    #[test]
    fn minimal_config_has_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.names(), vec!["staging", "production"]);
        assert_eq!(c.monitor.window, HumanDuration::from_secs(1800));
        assert!(c.monitor.auto_rollback);
        assert_eq!(c.metrics.source, MetricsSourceKind::Scrape);
        assert!(c.environments[1].gates.requires_approval);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = parse(&format!("{MINIMAL}\n[monitor]\nwindw = \"5m\"\n")).unwrap_err();
        assert_eq!(e.line, Some(15));
        assert_eq!(e.column, Some(1));
        assert!(e.message.contains("unknown field `windw`"), "{}", e.message);
    }

    #[test]
    fn malformed_duration_points_at_the_value() {
        let e = parse(&format!("{MINIMAL}\n[monitor]\nwindow = \"5 minutes\"\n")).unwrap_err();
        assert_eq!((e.line, e.column), (Some(15), Some(10)));
        assert!(e.message.contains("malformed duration"), "{}", e.message);
    }

    #[test]
    fn duplicate_names_and_missing_stage() {
        let dup = MINIMAL.replace("name = \"production\"", "name = \"staging\"");
        let e = parse(&dup).unwrap_err();
        assert_eq!((e.line, e.column), (Some(8), Some(8)));
        assert!(e.message.contains("duplicate environment name"));
        let missing = MINIMAL.replace(
            "gates = { requires_approval = true }",
            "gates = { requires_approval = true, approval_stage = \"qa\" }",
        );
        let e = parse(&missing).unwrap_err();
        assert_eq!(e.line, Some(11));
        assert!(e.message.contains("not an environment"), "{}", e.message);
    }

    #[test]
    fn one_mapping_from_the_monitor_section_to_the_detector() {
        let m = MonitorConfig {
            baseline: HumanDuration::from_secs(600),
            max_p95_ms: Some(300.0),
            ..Default::default()
        };
        let c = m.detector_config(None);
        assert_eq!((c.baseline_s, c.window_s), (600.0, 1800.0));
        assert_eq!(c.max_p95_ms, Some(300.0));
        assert_eq!(c.max_error_rate, None);
        let d = crate::monitor::DetectorConfig::default();
        assert_eq!(c.guard_steps, d.guard_steps);
        assert_eq!(c.min_evidence_s, d.min_evidence_s);
        let c = m.detector_config(Some(std::time::Duration::from_secs(120)));
        assert_eq!(c.window_s, 120.0);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
