//! An environment's tables: where its version is read, how it deploys (a
//! command, a webhook or a CI system), its gates and link templates, and the
//! checks that run on them after parsing.

use super::codepipeline::placeholders_ok;
use super::*;

/// Longest link template accepted.
const MAX_LINK: usize = 2048;

/// A link template is an http(s) URL with only `{env}` and `{version}`
/// placeholders and no control characters or spaces (it ends up inside a
/// terminal escape sequence).
pub(super) fn check_link(name: &str, template: &str) -> Result<(), String> {
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
    /// How often the version is polled while deploying (and the ready
    /// check, when there is one).
    #[serde(default = "default_poll")]
    pub poll: HumanDuration,
    /// `ready = { command = [...] }`: polled after a deploy command or
    /// webhook returns, until the rollout is done (see [`super::ReadyConfig`]).
    pub ready: Option<Spanned<super::ReadyConfig>>,
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

/// A Vercel project name or id, or a team id: it goes into the API's path
/// and query as it is, so only letters, digits and `- _ .`, and never `.`
/// or `..` alone (a path step).
fn vercel_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The top-level `version` source: exactly one of url or command, a usable
/// URL, a JSON pointer.
pub(super) fn check_version(
    name: &str,
    version: &Spanned<VersionSourceConfig>,
) -> Result<(), Problem> {
    let vs = version.get_ref();
    if let Some(v) = &vs.vercel {
        let why = if vs.url.is_some() || vs.command.is_some() {
            Some("version needs exactly one of url, command or vercel".to_string())
        } else if v.project.is_empty() {
            Some("version.vercel: project must not be empty".to_string())
        } else if !vercel_id_ok(&v.project) {
            Some(format!(
                "version.vercel: project {:?} must be a project name or id",
                v.project
            ))
        } else if let Some(t) = v.team.as_deref().filter(|t| !vercel_id_ok(t)) {
            Some(format!(
                "version.vercel: team {t:?} must be a team id (team_…)"
            ))
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
        (None, Some(c)) if c.first().is_none_or(|p| p.trim().is_empty()) => {
            return Err((
                Some(version.span()),
                format!("environment {name:?}: version command is empty or names no program"),
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
pub(super) fn check_deploy(name: &str, deploy: &Spanned<DeployConfig>) -> Result<(), Problem> {
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
    super::ready::check(name, "deploy", d, super::ready::Place::Deploy)?;
    match (&d.webhook, &d.command) {
        (None, Some(c)) if c.first().is_none_or(|p| p.trim().is_empty()) => {
            return Err((
                Some(deploy.span()),
                format!("environment {name:?}: deploy command is empty or names no program"),
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
        if c.workflow.is_empty()
            || c.workflow.contains(['/', '?', '#', ' ', '%'])
            || c.workflow == "."
            || c.workflow == ".."
        {
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
        // Each segment becomes a path step of its own: `.` or `..` would
        // be resolved away by the URL and name another job.
        if c.job.is_empty()
            || c.job
                .split('/')
                .any(|s| s.trim().is_empty() || s.trim() == "." || s.trim() == "..")
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
        let id_ok = vercel_id_ok;
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

impl EnvironmentConfig {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
    pub fn label(&self) -> &str {
        self.metrics_label.as_deref().unwrap_or(self.name())
    }
}
