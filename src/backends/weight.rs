//! The canary's traffic weight (SPEC §2 `[environments.canary] weight`): a
//! webhook that gets POST `{"weight": N}`, or a command whose argv names
//! `{weight}` — never through a shell.

use std::time::Duration;

use crate::backends::BackendError;
use crate::backends::http::SMALL_BODY_CAP;
use crate::backends::util::{fill, http_error, read_body, run_command, secret, show_url};
use crate::config::DeployConfig;

#[derive(Clone, Debug)]
enum How {
    Webhook {
        client: reqwest::Client,
        url: String,
        token_env: Option<String>,
    },
    Command(Vec<String>),
}

/// Sets the canary's weight, in percent.
#[derive(Clone, Debug)]
pub struct WeightHook {
    how: How,
    name: String,
    timeout: Duration,
}

impl WeightHook {
    /// A validated config has exactly one of `webhook` and `command`; one
    /// with neither gets a hook that fails with "empty command".
    pub fn from_config(env: &str, cfg: &DeployConfig, client: reqwest::Client) -> Self {
        let timeout = cfg.timeout.0.min(Duration::from_secs(30));
        match (&cfg.webhook, &cfg.command) {
            (Some(url), _) => {
                let url = url.replace("{env}", env);
                crate::text::register_url_credentials(&url);
                WeightHook {
                    name: format!("canary weight webhook of {env} ({})", show_url(&url)),
                    how: How::Webhook {
                        // A redirect that would drop the POST is not followed.
                        client: crate::backends::http::post_client(Duration::from_secs(5))
                            .unwrap_or(client),
                        url,
                        token_env: cfg.token_env.clone(),
                    },
                    timeout,
                }
            }
            (None, cmd) => {
                let argv = fill(cmd.as_deref().unwrap_or(&[]), &[("env", env)]);
                WeightHook {
                    name: format!(
                        "canary weight command of {env} ({})",
                        argv.first().map(String::as_str).unwrap_or("")
                    ),
                    how: How::Command(argv),
                    timeout,
                }
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Set the weight; Ok once the backend accepted it.
    pub async fn set(&self, weight: u8) -> Result<String, BackendError> {
        let weight = weight.min(100);
        match &self.how {
            How::Command(template) => {
                let argv = fill(template, &[("weight", &weight.to_string())]);
                run_command(&self.name, &argv, self.timeout).await?;
                Ok(format!(
                    "{} set the weight to {weight}% (exit 0)",
                    self.name
                ))
            }
            How::Webhook {
                client,
                url,
                token_env,
            } => {
                let name = &self.name;
                let url = url.replace("{weight}", &weight.to_string());
                let mut req = client
                    .post(&url)
                    .timeout(self.timeout)
                    .json(&serde_json::json!({ "weight": weight }));
                if let Some(tok) = secret(name, token_env.as_deref())? {
                    req = req.bearer_auth(tok);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| http_error(name, e, self.timeout))?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = read_body(name, resp, SMALL_BODY_CAP, self.timeout).await?;
                if !status.is_success() {
                    return Err(BackendError::Status {
                        backend: name.clone(),
                        status: status.as_u16(),
                        body: crate::backends::http::redirect_note(status.as_u16(), &headers)
                            .unwrap_or(body),
                    });
                }
                Ok(format!(
                    "{name} set the weight to {weight}% (HTTP {})",
                    status.as_u16()
                ))
            }
        }
    }
}
