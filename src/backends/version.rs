//! Reading the version an environment runs: an HTTP JSON endpoint with a
//! JSON pointer, a command whose standard output is the version, or the
//! deployment that serves a Vercel project's production
//! ([`VercelVersion`](super::deploy::vercel::VercelVersion)).

use std::time::Duration;

use super::BackendError;
use super::http::SMALL_BODY_CAP;
use super::util::{fill, http_error, read_body, run_command, secret, show_url};
use crate::config::VersionSourceConfig;
use crate::domain::Version;

#[derive(Clone, Debug)]
pub enum VersionSource {
    Http {
        client: reqwest::Client,
        url: String,
        pointer: String,
        token_env: Option<String>,
        timeout: Duration,
        name: String,
    },
    Command {
        argv: Vec<String>,
        timeout: Duration,
        name: String,
    },
    Vercel(super::deploy::vercel::VercelVersion),
}

impl VersionSource {
    pub fn from_config(env: &str, cfg: &VersionSourceConfig, client: reqwest::Client) -> Self {
        let timeout = cfg.timeout.0;
        if let Some(v) = &cfg.vercel {
            return VersionSource::Vercel(super::deploy::vercel::VercelVersion::new(
                env, v, client, timeout,
            ));
        }
        match (&cfg.url, &cfg.command) {
            (Some(url), _) => {
                let url = url.replace("{env}", env);
                crate::text::register_url_credentials(&url);
                VersionSource::Http {
                    client,
                    name: format!("version source of {env} ({})", show_url(&url)),
                    url,
                    pointer: cfg.pointer.clone(),
                    token_env: cfg.token_env.clone(),
                    timeout,
                }
            }
            (None, cmd) => {
                let argv = fill(cmd.as_deref().unwrap_or_default(), &[("env", env)]);
                VersionSource::Command {
                    name: format!(
                        "version command of {env} ({})",
                        argv.first().map(String::as_str).unwrap_or("")
                    ),
                    argv,
                    timeout,
                }
            }
        }
    }

    pub fn name(&self) -> &str {
        match self {
            VersionSource::Http { name, .. } | VersionSource::Command { name, .. } => name,
            VersionSource::Vercel(v) => &v.name,
        }
    }

    /// The same source under the name `name` gives it: for sources that
    /// would share one name (a blue-green environment's live slot and its
    /// two slots, one template with `{slot}` filled in).
    pub fn renamed(mut self, name: impl FnOnce(&str) -> String) -> Self {
        let slot = match &mut self {
            VersionSource::Http { name, .. } | VersionSource::Command { name, .. } => name,
            VersionSource::Vercel(v) => &mut v.name,
        };
        *slot = name(slot);
        self
    }

    /// Read and validate the running version. The answer is read up to
    /// [`SMALL_BODY_CAP`]; an error is [cleaned](BackendError::cleaned).
    pub async fn read(&self) -> Result<Version, BackendError> {
        let raw = self.read_raw().await.map_err(BackendError::cleaned)?;
        Version::parse(raw.trim()).map_err(|e| BackendError::Garbage {
            backend: self.name().to_string(),
            cause: e.to_string(),
        })
    }

    /// Read the answer as text, trimmed, not read as a version (the live
    /// slot's name of a blue-green environment). Capped and cleaned like
    /// [`Self::read`].
    pub async fn read_text(&self) -> Result<String, BackendError> {
        self.read_raw()
            .await
            .map(|raw| crate::text::clean(raw.trim()))
            .map_err(BackendError::cleaned)
    }

    async fn read_raw(&self) -> Result<String, BackendError> {
        let raw = match self {
            VersionSource::Http {
                client,
                url,
                pointer,
                token_env,
                timeout,
                name,
            } => {
                let mut req = client.get(url).timeout(*timeout);
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
                let garbage = |cause: String| BackendError::Garbage {
                    backend: name.clone(),
                    cause,
                };
                let json: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| garbage(format!("not JSON ({e})")))?;
                let at = json
                    .pointer(pointer)
                    .ok_or_else(|| garbage(format!("no value at JSON pointer {pointer}")))?;
                at.as_str()
                    .ok_or_else(|| {
                        garbage(format!("the value at {pointer} is not a string: {at}"))
                    })?
                    .to_string()
            }
            VersionSource::Command {
                argv,
                timeout,
                name,
            } => run_command(name, argv, *timeout).await?,
            VersionSource::Vercel(v) => v.read().await?,
        };
        Ok(raw)
    }
}
