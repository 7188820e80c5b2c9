//! A deploy webhook: POST `{"env", "version"}` with a bearer token from an
//! environment variable. An answer with a JSON `url` (an `http(s)` link to
//! the deploy's page) is recorded as the deploy's URL.
//!
//! The POST starts a deploy, so it is never repeated: when the connection
//! breaks or the time runs out after the request may have reached the hook
//! (a reset, a timeout while waiting for the answer), the outcome is
//! unknown — not a failure, since the hook may well be deploying; so is a
//! 502 or 504, a proxy's word that it passed the request on and lost or
//! gave up waiting for the answer. Only a connection that was never made,
//! or a refusal (any other non-2xx), is a plain failure.

use std::time::Duration;

use super::Started;
use crate::backends::BackendError;
use crate::backends::http::SMALL_BODY_CAP;
use crate::backends::util::{read_body, secret, show_url};
use crate::domain::Version;

#[derive(Clone, Debug)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    token_env: Option<String>,
    pub(super) name: String,
    timeout: Duration,
    pub(super) ready: Option<super::ready::ReadyCheck>,
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
            // A redirect that would drop the POST is not followed.
            client: crate::backends::http::post_client(Duration::from_secs(5)).unwrap_or(client),
            timeout,
            name: format!("deploy webhook of {env} ({})", show_url(&url)),
            url,
            token_env,
            ready: None,
        }
    }

    pub(super) fn with_ready(mut self, ready: Option<super::ready::ReadyCheck>) -> Self {
        self.ready = ready;
        self
    }

    pub(super) async fn start(
        &self,
        env: &str,
        version: &Version,
    ) -> Result<Started, BackendError> {
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
            .map_err(|e| super::call::lost_answer(name, e, self.timeout))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_body(name, resp, SMALL_BODY_CAP, self.timeout)
            .await
            .or_else(|e| match e {
                // Only the status says whether the hook took the deploy;
                // an answer too large to read costs only its `url`.
                e @ BackendError::TooLarge { .. } => {
                    tracing::warn!("{e}; going by its status (HTTP {})", status.as_u16());
                    Ok(String::new())
                }
                e => Err(BackendError::OutcomeUnknown {
                    backend: name.clone(),
                    cause: format!(
                        "answered HTTP {} but the answer was lost ({e}); not repeated — it may be deploying: look before deploying again",
                        status.as_u16()
                    ),
                }),
            })?;
        // A proxy in front of the hook that gave up waiting for it (504) or
        // lost its answer (502) passed the request on: the hook may well
        // be deploying. Any other refusal is the hook's (or nobody's).
        // (524: Cloudflare's "the origin took the request and timed out".)
        if matches!(status.as_u16(), 502 | 504 | 524) {
            return Err(BackendError::OutcomeUnknown {
                backend: name.clone(),
                cause: format!(
                    "a proxy answered HTTP {} ({}): the hook may have taken the deploy; not repeated — look before deploying again",
                    status.as_u16(),
                    crate::text::excerpt(body.as_bytes())
                ),
            });
        }
        // A 302/303 is how a server answers a POST it acted on.
        if crate::backends::http::post_may_have_acted(status.as_u16()) {
            return Err(BackendError::OutcomeUnknown {
                backend: name.clone(),
                cause: format!(
                    "answered HTTP {} ({}): the hook may have taken the deploy; not repeated — look before deploying again",
                    status.as_u16(),
                    crate::backends::http::redirect_note(status.as_u16(), &headers)
                        .unwrap_or_default()
                ),
            });
        }
        if !status.is_success() {
            return Err(BackendError::Status {
                backend: name.clone(),
                status: status.as_u16(),
                body: crate::backends::http::redirect_note(status.as_u16(), &headers)
                    .unwrap_or(body),
            });
        }
        let url = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|j| j.get("url").and_then(|u| u.as_str()).map(str::to_string))
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
        Ok(Started {
            line: format!("{name} accepted (HTTP {})", status.as_u16()),
            url,
            ended: false,
        })
    }
}
