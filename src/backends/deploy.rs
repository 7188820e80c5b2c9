//! Starting a deploy: an HTTP webhook (POST `{"env", "version"}` with a
//! bearer token from an environment variable) or a command given as argv
//! with `{env}` and `{version}` filled in — never through a shell. A started
//! deploy is not a finished one: the engine then polls the version source.

use std::time::Duration;

use super::BackendError;
use super::http::SMALL_BODY_CAP;
use super::util::{fill, http_error, read_body, run_command, secret, show_url};
use crate::config::DeployConfig;
use crate::domain::Version;

#[derive(Clone, Debug)]
pub enum DeployTarget {
    Webhook {
        client: reqwest::Client,
        url: String,
        token_env: Option<String>,
        name: String,
        timeout: Duration,
    },
    Command {
        template: Vec<String>,
        name: String,
        timeout: Duration,
    },
}

impl DeployTarget {
    /// The hook itself (the webhook's answer, the command's exit) may take
    /// up to the deploy's configured `timeout`.
    pub fn from_config(env: &str, cfg: &DeployConfig, client: reqwest::Client) -> Self {
        let timeout = cfg.timeout.0;
        match (&cfg.webhook, &cfg.command) {
            (Some(url), _) => {
                let url = url.replace("{env}", env);
                crate::text::register_url_credentials(&url);
                DeployTarget::Webhook {
                    client,
                    timeout,
                    name: format!("deploy webhook of {env} ({})", show_url(&url)),
                    url,
                    token_env: cfg.token_env.clone(),
                }
            }
            (None, cmd) => {
                let template = fill(cmd.as_deref().unwrap_or_default(), &[("env", env)]);
                DeployTarget::Command {
                    name: format!(
                        "deploy command of {env} ({})",
                        template.first().map(String::as_str).unwrap_or("")
                    ),
                    template,
                    timeout,
                }
            }
        }
    }

    pub fn name(&self) -> &str {
        match self {
            DeployTarget::Webhook { name, .. } | DeployTarget::Command { name, .. } => name,
        }
    }

    /// Ask the backend to deploy `version` to `env`; Ok once it accepted.
    /// An error is [cleaned](BackendError::cleaned): no secret, no escape.
    pub async fn start(&self, env: &str, version: &Version) -> Result<String, BackendError> {
        self.start_raw(env, version)
            .await
            .map_err(BackendError::cleaned)
    }

    async fn start_raw(&self, env: &str, version: &Version) -> Result<String, BackendError> {
        match self {
            DeployTarget::Webhook {
                client,
                url,
                token_env,
                name,
                timeout,
            } => {
                let mut req = client
                    .post(url)
                    .timeout(*timeout)
                    .json(&serde_json::json!({"env": env, "version": version.as_str()}));
                if let Some(tok) = secret(name, token_env.as_deref())? {
                    req = req.bearer_auth(tok);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| http_error(name, e, *timeout))?;
                let status = resp.status();
                let body = read_body(name, resp, SMALL_BODY_CAP, *timeout).await?;
                if !status.is_success() {
                    return Err(BackendError::Status {
                        backend: name.clone(),
                        status: status.as_u16(),
                        body,
                    });
                }
                Ok(format!("{name} accepted (HTTP {})", status.as_u16()))
            }
            DeployTarget::Command {
                template,
                name,
                timeout,
            } => {
                let argv = fill(template, &[("version", version.as_str())]);
                run_command(name, &argv, *timeout).await?;
                Ok(format!("{name} exited 0"))
            }
        }
    }
}
