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
mod release;
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

/// Longest link template accepted.
const MAX_LINK: usize = 2048;

/// A link template is an http(s) URL with only `{env}` and `{version}`
/// placeholders and no control characters or spaces (it ends up inside a
/// terminal escape sequence).
fn check_link(name: &str, template: &str) -> Result<(), String> {
    let name_ok = !name.is_empty()
        && name.len() <= 20
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err("a link name is 1-20 letters, digits, - or _".into());
    }
    if template.len() > MAX_LINK {
        return Err(format!("longer than {MAX_LINK} bytes"));
    }
    if let Some(c) = template
        .chars()
        .find(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "{template:?} contains {c:?}: write spaces and control characters percent-encoded"
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("{template:?} has a '{{' without '}}'"));
        };
        let placeholder = &after[..close];
        if placeholder != "env" && placeholder != "version" {
            return Err(format!(
                "{template:?}: unknown placeholder {{{placeholder}}} (use {{env}} and {{version}})"
            ));
        }
        rest = &after[close + 1..];
    }
    if !(template.starts_with("http://") || template.starts_with("https://")) {
        return Err(format!("{template:?} must start with http:// or https://"));
    }
    let sample = expand_link(template, "env", Some("v1.0.0"))
        .ok_or_else(|| format!("{template:?} is not a usable URL"))?;
    match reqwest::Url::parse(&sample) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => Err(format!(
            "{template:?}: scheme {:?} is not allowed (http or https)",
            u.scheme()
        )),
        Err(e) => Err(format!("{template:?} is not a URL: {e}")),
    }
}

/// Fill `{env}` and `{version}` into a link template and make the result
/// safe to put in a terminal escape sequence: anything but printable ASCII
/// is percent-encoded. `None` when the template needs a version that is
/// unknown, or when the result is not an http(s) URL.
pub fn expand_link(template: &str, env: &str, version: Option<&str>) -> Option<String> {
    let mut out = template.replace("{env}", env);
    if out.contains("{version}") {
        out = out.replace("{version}", version?);
    }
    let mut safe = String::with_capacity(out.len());
    for b in out.bytes() {
        if (0x21..0x7f).contains(&b) {
            safe.push(b as char);
        } else {
            safe.push_str(&format!("%{b:02X}"));
        }
    }
    (safe.starts_with("http://") || safe.starts_with("https://")).then_some(safe)
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    pub name: Spanned<String>,
    /// How its running version is read. Required, except for
    /// `rollback = "blue-green"`, whose version is what the live slot runs
    /// (`[environments.blue_green]`).
    pub version: Option<Spanned<VersionSourceConfig>>,
    /// How it is deployed. Required, except for `rollback = "blue-green"`,
    /// which deploys one slot (`blue_green.deploy`).
    pub deploy: Option<Spanned<DeployConfig>>,
    #[serde(default)]
    pub gates: GatesConfig,
    /// Run the monitoring window after each deploy.
    #[serde(default)]
    pub monitored: bool,
    /// The rollback strategy (SPEC §2): "redeploy", "blue-green" or "canary".
    #[serde(default = "default_rollback")]
    pub rollback: Spanned<RollbackStrategy>,
    /// `[environments.blue_green]`, with `rollback = "blue-green"`.
    pub blue_green: Option<Spanned<BlueGreenConfig>>,
    /// `[environments.canary]`, with `rollback = "canary"`.
    pub canary: Option<Spanned<CanaryConfig>>,
    /// Value of the `env` label selecting this environment's metrics
    /// (default: its name).
    pub metrics_label: Option<String>,
    /// Draw it as production (default: the last environment).
    pub production: Option<bool>,
    /// Restore command shown when a release with migrations is rolled back.
    pub restore_command: Option<String>,
    /// Links the console shows for this environment (terminal hyperlinks):
    /// name → URL template with `{env}` and `{version}` placeholders.
    pub links: Option<Spanned<BTreeMap<String, String>>>,
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
    /// `version = { vercel = { project, team, token_env } }`: the version of
    /// the deployment that serves the Vercel project's production.
    pub vercel: Option<VercelVersionConfig>,
}

/// A Vercel project as a version source: which deployment serves
/// production, read as a version by its metadata (`from`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VercelVersionConfig {
    /// The project's name or id.
    pub project: String,
    /// The team id (`team_…`); sent as `teamId` on every call.
    pub team: Option<String>,
    pub token_env: String,
    /// The REST API root (default `https://api.vercel.com`).
    pub api_url: Option<String>,
    /// Which metadata names the version: `"auto"` (default: `meta.version`,
    /// else the git ref it was built from), `"meta"`, `"ref"` or `"sha"`.
    #[serde(default = "default_vercel_from")]
    pub from: String,
}

fn default_vercel_from() -> String {
    "auto".into()
}

fn default_pointer() -> String {
    "/version".into()
}

/// How an environment is deployed: an HTTP webhook (POST `{"version": …}`
/// with a bearer token from `token_env`), a command given as argv, with
/// `{env}` and `{version}` replaced — never through a shell — or a CI/CD
/// system (SPEC §8): exactly one of them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    pub webhook: Option<String>,
    pub command: Option<Vec<String>>,
    pub token_env: Option<String>,
    /// `[environments.deploy.github_actions]`: dispatch a workflow and follow its run.
    pub github_actions: Option<Spanned<GithubActionsConfig>>,
    /// `[environments.deploy.jenkins]`: buildWithParameters and follow the build.
    pub jenkins: Option<Spanned<JenkinsConfig>>,
    /// `[environments.deploy.vercel]`: promote the deployment built for the version.
    pub vercel: Option<Spanned<VercelConfig>>,
    /// `[environments.deploy.codepipeline]`: start an AWS CodePipeline
    /// execution at the version's revision and follow it.
    pub codepipeline: Option<Spanned<CodePipelineConfig>>,
    /// How long the deploy may take until the environment reports the new
    /// version; it also bounds the hook itself (the webhook's answer, the
    /// command's exit).
    #[serde(default = "default_deploy_timeout")]
    pub timeout: HumanDuration,
    /// How often the version is polled while deploying.
    #[serde(default = "default_poll")]
    pub poll: HumanDuration,
}

/// `[environments.deploy.github_actions]` (SPEC §8).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GithubActionsConfig {
    /// `owner/name`.
    pub repo: String,
    /// The workflow's file name (`deploy.yml`) or numeric id.
    pub workflow: String,
    /// The branch or tag the workflow runs on.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// `workflow_dispatch` inputs; `{env}` and `{version}` are filled in.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    pub token_env: String,
    /// The REST API root; GitHub Enterprise Server is `https://HOST/api/v3`.
    pub api_url: Option<String>,
}

/// `[environments.deploy.jenkins]` (SPEC §8).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JenkinsConfig {
    /// Jenkins' root URL (with its context path, if any).
    pub url: String,
    /// The job; jobs in folders as `team/deploy-shop`.
    pub job: String,
    /// Build parameters; `{env}` and `{version}` are filled in.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The user the API token belongs to (Basic auth `user:token`).
    pub user: String,
    pub token_env: String,
}

/// `[environments.deploy.vercel]` (SPEC §8).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VercelConfig {
    /// The project's name or id.
    pub project: String,
    /// The team id (`team_…`); sent as `teamId` on every call.
    pub team: Option<String>,
    pub token_env: String,
    /// The REST API root (default `https://api.vercel.com`).
    pub api_url: Option<String>,
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
    /// The release's commit has green CI (`[release] ci`).
    #[serde(default)]
    pub requires_ci: bool,
    /// Every commit of the release came through an approved pull request.
    #[serde(default)]
    pub requires_review: bool,
    /// A migration release needs a backup taken for this deploy first.
    #[serde(default)]
    pub requires_backup: bool,
    /// The approval stage's own metrics since it got the version show no regression.
    #[serde(default)]
    pub requires_healthy_stage: bool,
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
        let mut urls = vec![Some(self.metrics.url.as_str()), self.store.url.as_deref()];
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
        let m = &self.monitor;
        if m.window.0.is_zero() || m.baseline.0.is_zero() {
            return Err((
                None,
                "[monitor] window and baseline must be longer than zero".into(),
            ));
        }
        if self.metrics.step.0 < std::time::Duration::from_millis(100) {
            return Err((None, "[metrics] step must be at least 100ms".into()));
        }
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

/// The top-level `version` source: exactly one of url or command, a usable
/// URL, a JSON pointer.
fn check_version(name: &str, version: &Spanned<VersionSourceConfig>) -> Result<(), Problem> {
    let vs = version.get_ref();
    if let Some(v) = &vs.vercel {
        let why = if vs.url.is_some() || vs.command.is_some() {
            Some("version needs exactly one of url, command or vercel".to_string())
        } else if v.project.is_empty() {
            Some("version.vercel: project must not be empty".to_string())
        } else if v.token_env.is_empty()
            || !v
                .token_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            Some(format!(
                "version.vercel: token_env {:?} must name an environment variable",
                v.token_env
            ))
        } else if let Some(u) = v.api_url.as_deref().filter(|u| {
            !((u.starts_with("http://") || u.starts_with("https://"))
                && reqwest::Url::parse(u).is_ok())
        }) {
            Some(format!(
                "version.vercel: api_url {u:?} must be an http:// or https:// URL"
            ))
        } else if !matches!(v.from.as_str(), "auto" | "meta" | "ref" | "sha") {
            Some(format!(
                "version.vercel: from {:?} must be one of \"auto\", \"meta\", \"ref\" or \"sha\"",
                v.from
            ))
        } else {
            None
        };
        return match why {
            Some(why) => Err((Some(version.span()), format!("environment {name:?}: {why}"))),
            None => Ok(()),
        };
    }
    match (&vs.url, &vs.command) {
        (Some(_), Some(_)) | (None, None) => {
            return Err((
                Some(version.span()),
                format!(
                    "environment {name:?}: version needs exactly one of url = \"…\", command = [\"…\"] or vercel = {{ project, token_env }}"
                ),
            ));
        }
        (None, Some(c)) if c.is_empty() => {
            return Err((
                Some(version.span()),
                format!("environment {name:?}: version command is empty"),
            ));
        }
        (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return Err((
                Some(version.span()),
                format!(
                    "environment {name:?}: version url {u:?} must start with http:// or https://"
                ),
            ));
        }
        _ => {}
    }
    if !vs.pointer.is_empty() && !vs.pointer.starts_with('/') {
        return Err((
            Some(version.span()),
            format!(
                "environment {name:?}: pointer {:?} must be a JSON pointer starting with /",
                vs.pointer
            ),
        ));
    }
    Ok(())
}

/// The top-level `deploy`: exactly one backend, each well-formed.
fn check_deploy(name: &str, deploy: &Spanned<DeployConfig>) -> Result<(), Problem> {
    let d = deploy.get_ref();
    let kinds = [
        d.webhook.is_some(),
        d.command.is_some(),
        d.github_actions.is_some(),
        d.jenkins.is_some(),
        d.vercel.is_some(),
        d.codepipeline.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err((
            Some(deploy.span()),
            format!(
                "environment {name:?}: deploy needs exactly one of webhook = \"…\", command = [\"…\"], [….deploy.github_actions], [….deploy.jenkins], [….deploy.vercel] or [….deploy.codepipeline]"
            ),
        ));
    }
    check_ci_backends(name, d)?;
    match (&d.webhook, &d.command) {
        (None, Some(c)) if c.is_empty() => {
            return Err((
                Some(deploy.span()),
                format!("environment {name:?}: deploy command is empty"),
            ));
        }
        (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return Err((
                Some(deploy.span()),
                format!("environment {name:?}: webhook {u:?} must start with http:// or https://"),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The keys of the CI/CD deploy tables: present, well-formed, with only
/// `{env}` and `{version}` placeholders; errors point at the table.
fn check_ci_backends(name: &str, d: &DeployConfig) -> Result<(), Problem> {
    let url_ok = |u: &str| {
        (u.starts_with("http://") || u.starts_with("https://")) && reqwest::Url::parse(u).is_ok()
    };
    let placeholders_ok = |v: &str| {
        let mut rest = v;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) if matches!(&after[..close], "env" | "version") => {
                    rest = &after[close + 1..]
                }
                _ => return false,
            }
        }
        true
    };
    let env_var_ok =
        |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let problem = |span: std::ops::Range<usize>, table: &str, why: String| {
        Err((
            Some(span),
            format!("environment {name:?}: deploy.{table}: {why}"),
        ))
    };
    // Every CI/CD table names its token's variable, and may move its API.
    let credentials =
        |span: std::ops::Range<usize>, table: &str, token_env: &str, api_url: Option<&str>| {
            if !env_var_ok(token_env) {
                return problem(
                    span,
                    table,
                    format!("token_env {token_env:?} must name an environment variable"),
                );
            }
            if let Some(u) = api_url.filter(|u| !url_ok(u)) {
                return problem(
                    span,
                    table,
                    format!("api_url {u:?} must be an http:// or https:// URL"),
                );
            }
            Ok(())
        };
    if let Some(g) = &d.github_actions {
        let c = g.get_ref();
        let parts: Vec<&str> = c.repo.split('/').collect();
        let seg_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if parts.len() != 2 || !parts.iter().all(|p| seg_ok(p)) {
            return problem(
                g.span(),
                "github_actions",
                format!("repo {:?} must be \"owner/name\"", c.repo),
            );
        }
        if c.workflow.is_empty() || c.workflow.contains(['/', '?', '#', ' ']) {
            return problem(
                g.span(),
                "github_actions",
                format!(
                    "workflow {:?} must be a workflow file name (deploy.yml) or id",
                    c.workflow
                ),
            );
        }
        if c.git_ref.trim().is_empty() {
            return problem(
                g.span(),
                "github_actions",
                "ref must name a branch or tag".into(),
            );
        }
        if let Some((k, v)) = c.inputs.iter().find(|(_, v)| !placeholders_ok(v)) {
            return problem(
                g.span(),
                "github_actions",
                format!("inputs.{k} = {v:?}: only {{env}} and {{version}} are filled in"),
            );
        }
        credentials(
            g.span(),
            "github_actions",
            &c.token_env,
            c.api_url.as_deref(),
        )?;
    }
    if let Some(j) = &d.jenkins {
        let c = j.get_ref();
        if !url_ok(&c.url) {
            return problem(
                j.span(),
                "jenkins",
                format!("url {:?} must be an http:// or https:// URL", c.url),
            );
        }
        if c.job.is_empty()
            || c.job.split('/').any(|s| s.trim().is_empty())
            || c.job.contains(['?', '#'])
        {
            return problem(
                j.span(),
                "jenkins",
                format!(
                    "job {:?} must be a job name, folders as \"team/deploy-shop\"",
                    c.job
                ),
            );
        }
        if let Some((k, v)) = c.params.iter().find(|(_, v)| !placeholders_ok(v)) {
            return problem(
                j.span(),
                "jenkins",
                format!("params.{k} = {v:?}: only {{env}} and {{version}} are filled in"),
            );
        }
        if c.user.trim().is_empty() {
            return problem(
                j.span(),
                "jenkins",
                "user must name the API token's user".into(),
            );
        }
        credentials(j.span(), "jenkins", &c.token_env, None)?;
    }
    if let Some(v) = &d.vercel {
        let c = v.get_ref();
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !id_ok(&c.project) {
            return problem(
                v.span(),
                "vercel",
                format!("project {:?} must be a project name or id", c.project),
            );
        }
        if let Some(t) = c.team.as_deref().filter(|t| !id_ok(t)) {
            return problem(
                v.span(),
                "vercel",
                format!("team {t:?} must be a team id (team_…)"),
            );
        }
        credentials(v.span(), "vercel", &c.token_env, c.api_url.as_deref())?;
    }
    Ok(())
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

/// The places of the values [`Probe::validate`] checks: the same file read
/// a second time, leniently (unknown keys are the typed parse's business).
#[derive(Deserialize, Default)]
struct Probe {
    project: Option<Spanned<String>>,
    #[serde(default)]
    identity: IdentityProbe,
    #[serde(default)]
    metrics: MetricsProbe,
    #[serde(default)]
    monitor: MonitorProbe,
    #[serde(default)]
    ui: UiProbe,
    #[serde(default)]
    environments: Vec<EnvProbe>,
    #[serde(default)]
    release: release::ReleaseProbe,
}

#[derive(Deserialize, Default)]
struct IdentityProbe {
    name: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
struct MetricsProbe {
    url: Option<Spanned<String>>,
    step: Option<Spanned<HumanDuration>>,
    timeout: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize, Default)]
struct MonitorProbe {
    window: Option<Spanned<HumanDuration>>,
    baseline: Option<Spanned<HumanDuration>>,
    max_error_rate: Option<Spanned<f64>>,
    max_p50_ms: Option<Spanned<f64>>,
    max_p95_ms: Option<Spanned<f64>>,
    max_p99_ms: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
struct UiProbe {
    refresh: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize)]
struct EnvProbe {
    #[serde(default)]
    version: SourceProbe,
    #[serde(default)]
    deploy: SourceProbe,
    metrics_label: Option<Spanned<String>>,
    restore_command: Option<Spanned<String>>,
    name: Option<String>,
    #[serde(default)]
    gates: release::GatesProbe,
}

#[derive(Deserialize, Default)]
struct SourceProbe {
    url: Option<Spanned<String>>,
    webhook: Option<Spanned<String>>,
    command: Option<Vec<Spanned<String>>>,
    timeout: Option<Spanned<HumanDuration>>,
    poll: Option<Spanned<HumanDuration>>,
}

/// A text shown to people must not carry control characters or escape
/// sequences: refuse it here, with its place, rather than clean it later.
fn printable(what: &str, v: &Option<Spanned<String>>) -> Result<(), Problem> {
    match v {
        Some(v) if crate::text::has_control(v.get_ref()) => Err((
            Some(v.span()),
            format!(
                "{what} {:?} contains control characters or escape sequences; use printable text",
                v.get_ref()
            ),
        )),
        _ => Ok(()),
    }
}

fn at_most(
    what: &str,
    v: &Option<Spanned<HumanDuration>>,
    limit: std::time::Duration,
) -> Result<(), Problem> {
    match v {
        Some(d) if d.get_ref().0 > limit => Err((
            Some(d.span()),
            format!(
                "{what} = \"{}\" is too long: at most {}",
                d.get_ref(),
                HumanDuration(limit)
            ),
        )),
        _ => Ok(()),
    }
}

/// A limit in milliseconds: a finite number above zero.
fn positive_ms(what: &str, v: &Option<Spanned<f64>>) -> Result<(), Problem> {
    match v {
        Some(x) if !(x.get_ref().is_finite() && *x.get_ref() > 0.0) => Err((
            Some(x.span()),
            format!(
                "{what} = {} must be a finite number of milliseconds above 0",
                x.get_ref()
            ),
        )),
        _ => Ok(()),
    }
}

impl Probe {
    fn validate(&self) -> Result<(), Problem> {
        printable("project", &self.project)?;
        printable("[identity] name", &self.identity.name)?;
        printable("[metrics] url", &self.metrics.url)?;
        let m = &self.monitor;
        at_most("[monitor] window", &m.window, limits::WINDOW)?;
        at_most("[monitor] baseline", &m.baseline, limits::BASELINE)?;
        at_most("[metrics] step", &self.metrics.step, limits::STEP)?;
        at_most(
            "[metrics] timeout",
            &self.metrics.timeout,
            limits::READ_TIMEOUT,
        )?;
        at_most("[ui] refresh", &self.ui.refresh, limits::POLL)?;
        if let Some(r) = &m.max_error_rate
            && !(r.get_ref().is_finite() && (0.0..=1.0).contains(r.get_ref()))
        {
            return Err((
                Some(r.span()),
                format!(
                    "[monitor] max_error_rate = {} must be a fraction between 0 and 1 (1% = 0.01)",
                    r.get_ref()
                ),
            ));
        }
        positive_ms("[monitor] max_p50_ms", &m.max_p50_ms)?;
        positive_ms("[monitor] max_p95_ms", &m.max_p95_ms)?;
        positive_ms("[monitor] max_p99_ms", &m.max_p99_ms)?;
        for (i, e) in self.environments.iter().enumerate() {
            let name = e.name.as_deref().unwrap_or("?");
            release::check_gate_keys(&self.release, name, i, &e.gates)?;
            printable("metrics_label", &e.metrics_label)?;
            printable("restore_command", &e.restore_command)?;
            for src in [&e.version, &e.deploy] {
                printable("url", &src.url)?;
                printable("webhook", &src.webhook)?;
                if let Some(prog) = src.command.as_ref().and_then(|c| c.first()) {
                    printable("command", &Some(prog.clone()))?;
                }
            }
            at_most("version timeout", &e.version.timeout, limits::READ_TIMEOUT)?;
            at_most("deploy timeout", &e.deploy.timeout, limits::DEPLOY_TIMEOUT)?;
            at_most("deploy poll", &e.deploy.poll, limits::POLL)?;
        }
        Ok(())
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
