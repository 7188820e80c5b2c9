//! A deploy webhook: POST `{"env", "version"}` with a bearer token from an
//! environment variable.

use std::time::Duration;

use crate::backends::BackendError;
use crate::backends::http::SMALL_BODY_CAP;
use crate::backends::util::{http_error, read_body, secret, show_url};
use crate::domain::Version;

#[derive(Clone, Debug)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    token_env: Option<String>,
    pub(super) name: String,
    timeout: Duration,
}

impl Webhook {
    pub(super) fn new(
        env: &str,
        url: &str,
        token_env: Option<String>,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        let url = url.replace("{env}", env);
        crate::text::register_url_credentials(&url);
        Webhook {
            client,
            timeout,
            name: format!("deploy webhook of {env} ({})", show_url(&url)),
            url,
            token_env,
        }
    }

    pub(super) async fn start(&self, env: &str, version: &Version) -> Result<String, BackendError> {
        let name = &self.name;
        let mut req = self
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .json(&serde_json::json!({"env": env, "version": version.as_str()}));
        if let Some(tok) = secret(name, self.token_env.as_deref())? {
            req = req.bearer_auth(tok);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| http_error(name, e, self.timeout))?;
        let status = resp.status();
        let body = read_body(name, resp, SMALL_BODY_CAP, self.timeout).await?;
        if !status.is_success() {
            return Err(BackendError::Status {
                backend: name.clone(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(format!("{name} accepted (HTTP {})", status.as_u16()))
    }
}
