//! Notifications: release events sent to Slack-compatible incoming webhooks
//! and generic JSON webhooks (`[[notify]]`).
//!
//! Sending never delays or fails the action it reports: [`Notifier::send`]
//! returns at once and each receiver is served by a task of its own, with
//! a timeout per attempt and at most [`ATTEMPTS`] attempts, backing off
//! between them. An answer 2xx ends the delivery (never sent again); a 4xx
//! other than 408 and 429 is final too (the receiver refuses it), and so is
//! a redirect that would turn the POST into a GET or leave the receiver's
//! host (never followed: see [`super::http::post_client`]); anything else
//! (5xx, timeout, no connection) is tried again. Every event carries
//! one id — in the payload and as the `Idempotency-Key` header — the same
//! on every attempt, so a receiver can drop a repeat whose first answer
//! was lost.
//!
//! A process that ends waits for deliveries still under way, at most
//! [`EXIT_WAIT`] in all ([`drain`]), then gives them up (logged).
//!
//! Payloads hold no secret: every text goes through the one sanitiser and
//! the one redactor ([`crate::text::clean`]), and the URL itself (a Slack
//! webhook's path is its token) is registered as a secret.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::{NotifyConfig, NotifyEvent, NotifyKind};

/// Attempts per event and receiver.
pub const ATTEMPTS: u32 = 4;
/// Pause before the second attempt; doubled before each next one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(300);
/// How long a process that ends waits for its deliveries, in all.
pub const EXIT_WAIT: Duration = Duration::from_secs(5);

/// One release event, as every receiver gets it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    /// The same on every attempt and every receiver: an idempotency key.
    pub id: String,
    /// promote, approve, no-go, rollback or regression.
    pub event: &'static str,
    pub env: String,
    pub version: Option<String>,
    pub from_version: Option<String>,
    pub actor: String,
    pub at: String,
    /// started, succeeded, failed, unknown, recorded, regression.
    pub outcome: String,
    pub detail: String,
    #[serde(skip)]
    kind: NotifyEvent,
}

impl Notice {
    /// A notice with every text cleaned (sanitised, secrets redacted).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: NotifyEvent,
        env: &str,
        version: Option<&str>,
        from_version: Option<&str>,
        actor: &str,
        at: DateTime<Utc>,
        outcome: &str,
        detail: &str,
    ) -> Notice {
        let clean = crate::text::clean;
        Notice {
            id: new_id(at),
            event: kind.as_str(),
            env: clean(env),
            version: version.map(clean),
            from_version: from_version.map(clean),
            actor: clean(actor),
            at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            outcome: clean(outcome),
            detail: clean(detail),
            kind,
        }
    }

    /// One line for people (Slack's `text`).
    pub fn text(&self) -> String {
        let version = match (&self.from_version, &self.version) {
            (Some(f), Some(v)) => format!(" {f} → {v}"),
            (None, Some(v)) => format!(" {v}"),
            _ => String::new(),
        };
        let mut line = format!(
            "shipdeck: {} {}{version} — {} by {}",
            self.event, self.env, self.outcome, self.actor
        );
        if !self.detail.is_empty() {
            line.push_str(&format!(": {}", self.detail));
        }
        line
    }

    /// The body `kind` of receiver gets.
    pub fn payload(&self, kind: NotifyKind) -> serde_json::Value {
        match kind {
            NotifyKind::Webhook => serde_json::to_value(self).unwrap_or_default(),
            NotifyKind::Slack => {
                let text = self.text();
                serde_json::json!({
                    "text": text,
                    "blocks": [
                        {"type": "section", "text": {"type": "plain_text", "text": text}},
                        {"type": "context", "elements": [
                            {"type": "plain_text", "text": format!("{} · event {}", self.at, self.id)}
                        ]}
                    ]
                })
            }
        }
    }
}

/// Unique within this process and across processes: time, pid, a counter.
fn new_id(at: DateTime<Utc>) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "sd-{}-{}-{n}",
        at.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id()
    )
}

/// One receiver, its URL read from the environment.
#[derive(Clone)]
struct Receiver {
    /// `[[notify]] #N (kind, url_env)`, for logs: never the URL.
    name: String,
    kind: NotifyKind,
    url: String,
    timeout: Duration,
    config: NotifyConfig,
}

/// The receivers of one config; cheap to clone.
#[derive(Clone, Default)]
pub struct Notifier {
    receivers: Vec<Receiver>,
    client: Option<reqwest::Client>,
}

impl Notifier {
    /// Receivers whose `url_env` is set. One that is not is skipped and
    /// logged (`config check` names it): a missing receiver never fails an
    /// action.
    pub fn from_config(all: &[NotifyConfig]) -> Notifier {
        let mut receivers = Vec::new();
        for (i, c) in all.iter().enumerate() {
            let name = format!("[[notify]] #{} ({:?}, {})", i + 1, c.kind, c.url_env);
            match std::env::var(&c.url_env) {
                Ok(url) if !url.trim().is_empty() => {
                    let url = url.trim().to_string();
                    crate::text::register_secret(&url);
                    crate::text::register_url_credentials(&url);
                    receivers.push(Receiver {
                        name,
                        kind: c.kind,
                        url,
                        timeout: c.timeout.0,
                        config: c.clone(),
                    });
                }
                _ => tracing::warn!(
                    "{name}: {} is not set; this receiver gets nothing",
                    c.url_env
                ),
            }
        }
        let client = (!receivers.is_empty()).then(post_client).flatten();
        Notifier { receivers, client }
    }

    /// Whether any receiver is configured (and set).
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// Hand `notice` to every receiver that wants it, in the background.
    /// Returns at once; needs a tokio runtime.
    pub fn send(&self, notice: Notice) {
        let Some(client) = &self.client else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("notification {} not sent: no runtime", notice.id);
            return;
        };
        for r in self
            .receivers
            .iter()
            .filter(|r| r.config.wants(notice.kind))
        {
            let (r, client, notice) = (r.clone(), client.clone(), notice.clone());
            track(rt.spawn(async move { deliver(&client, &r, &notice).await }));
        }
    }
}

/// The client every delivery uses: a redirect that would drop the POST is
/// not followed.
fn post_client() -> Option<reqwest::Client> {
    super::http::post_client(Duration::from_secs(5)).ok()
}

/// Deliveries under way in this process, for [`drain`].
static INFLIGHT: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

fn track(h: tokio::task::JoinHandle<()>) {
    let mut all = INFLIGHT.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|h| !h.is_finished());
    all.push(h);
}

/// Wait for every delivery under way, at most `limit` in all; give up the
/// rest (logged). Returns how many were given up.
pub async fn drain(limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut given_up = 0;
    loop {
        let batch: Vec<_> =
            std::mem::take(&mut *INFLIGHT.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return given_up;
        }
        for mut h in batch {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                h.abort();
                given_up += 1;
            }
        }
        if given_up > 0 {
            tracing::warn!("gave up {given_up} notification(s) still being sent at exit");
        }
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// The receiver refused it for good (a 4xx): not tried again.
    Refused(String),
    /// Worth another try.
    Failed(String),
}

async fn attempt(client: &reqwest::Client, r: &Receiver, notice: &Notice) -> Attempt {
    let sent = client
        .post(&r.url)
        .timeout(r.timeout)
        .header("Idempotency-Key", &notice.id)
        .json(&notice.payload(r.kind))
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => Attempt::Delivered,
        Ok(resp) => {
            let s = resp.status();
            if s.is_redirection() {
                // Sending it again meets the same redirect. Where it points
                // is not said: a receiver's URL is its secret (a Slack
                // webhook's path is its token), and so may its target be.
                return Attempt::Refused(format!(
                    "answered {s}, a redirect; not followed — it would reach another host, or turn the POST into a GET without its body: set the URL it ends at"
                ));
            }
            let why = format!("answered {s}");
            if s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429 {
                Attempt::Refused(why)
            } else {
                Attempt::Failed(why)
            }
        }
        Err(e) if e.is_timeout() => Attempt::Failed(format!("no answer within {:?}", r.timeout)),
        Err(e) => Attempt::Failed(crate::text::clean(&e.to_string())),
    }
}

async fn deliver(client: &reqwest::Client, r: &Receiver, notice: &Notice) {
    let mut pause = FIRST_BACKOFF;
    for n in 1..=ATTEMPTS {
        match attempt(client, r, notice).await {
            Attempt::Delivered => {
                tracing::info!("{}: event {} delivered", r.name, notice.id);
                return;
            }
            Attempt::Refused(why) => {
                tracing::warn!("{}: event {} refused: {why}", r.name, notice.id);
                return;
            }
            Attempt::Failed(why) if n < ATTEMPTS => {
                tracing::info!(
                    "{}: event {} attempt {n} failed ({why}); again in {pause:?}",
                    r.name,
                    notice.id
                );
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Attempt::Failed(why) => {
                tracing::warn!(
                    "{}: event {} not delivered after {ATTEMPTS} attempts: {why}",
                    r.name,
                    notice.id
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice::new(
            NotifyEvent::Promote,
            "production",
            Some("v1.8.0"),
            Some("v1.7.3"),
            "alice@laptop\u{1b}]0;x\u{7}",
            Utc::now(),
            "succeeded",
            "promote v1.8.0 from staging to production",
        )
    }

    #[test]
    fn the_generic_payload_has_every_field_and_the_slack_one_a_text() {
        let n = notice();
        let j = n.payload(NotifyKind::Webhook);
        for k in [
            "id",
            "event",
            "env",
            "version",
            "from_version",
            "actor",
            "at",
            "outcome",
            "detail",
        ] {
            assert!(j.get(k).is_some(), "{k} missing in {j}");
        }
        assert_eq!(j["event"], "promote");
        assert_eq!(j["actor"], "alice@laptop", "sanitised");
        let s = n.payload(NotifyKind::Slack);
        assert_eq!(
            s["text"],
            "shipdeck: promote production v1.7.3 → v1.8.0 — succeeded by alice@laptop: promote v1.8.0 from staging to production"
        );
        assert!(s["blocks"].to_string().contains(&n.id));
    }

    /// A receiver whose URL answers a 301 to the same path with a slash
    /// (nginx, Django's APPEND_SLASH), where a GET answers 200.
    async fn slash_redirecting_receiver() -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
        use axum::routing::{get, post};
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
        let app = axum::Router::new()
            .route(
                "/hook",
                post(move || async move {
                    s1.lock().unwrap().push("POST /hook".to_string());
                    (
                        axum::http::StatusCode::MOVED_PERMANENTLY,
                        [(axum::http::header::LOCATION, "/hook/")],
                    )
                }),
            )
            .route(
                "/hook/",
                get(move || async move {
                    s2.lock().unwrap().push("GET /hook/".to_string());
                    "a page"
                })
                .post(move || async move {
                    s3.lock().unwrap().push("POST /hook/".to_string());
                    "ok"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/hook"), seen)
    }

    #[tokio::test]
    async fn a_redirect_that_would_drop_the_post_is_not_followed_nor_taken_for_delivered() {
        let (url, seen) = slash_redirecting_receiver().await;
        let config = NotifyConfig {
            kind: NotifyKind::Webhook,
            url_env: "UNUSED".into(),
            events: None,
            timeout: crate::domain::HumanDuration(Duration::from_secs(5)),
        };
        let r = Receiver {
            name: "test receiver".into(),
            kind: NotifyKind::Webhook,
            url,
            timeout: Duration::from_secs(5),
            config,
        };
        let client = post_client().unwrap();
        match attempt(&client, &r, &notice()).await {
            Attempt::Refused(why) => {
                assert!(why.contains("301") && why.contains("redirect"), "{why}");
                assert!(!why.contains("/hook"), "where it points is not said: {why}");
            }
            Attempt::Delivered => panic!("taken for delivered: {:?}", seen.lock().unwrap()),
            Attempt::Failed(why) => panic!("to be tried again: {why}"),
        }
        // The receiver was never sent a GET in place of the event.
        assert_eq!(*seen.lock().unwrap(), ["POST /hook"]);
    }

    #[test]
    fn ids_differ_from_event_to_event() {
        assert_ne!(notice().id, notice().id);
    }

    #[test]
    fn a_registered_secret_never_reaches_a_payload() {
        crate::text::register_secret("hunter2-notify-token");
        let n = Notice::new(
            NotifyEvent::Rollback,
            "production",
            None,
            None,
            "bot",
            Utc::now(),
            "failed",
            "hook said: bad token hunter2-notify-token",
        );
        for k in [NotifyKind::Slack, NotifyKind::Webhook] {
            let body = n.payload(k).to_string();
            assert!(!body.contains("hunter2-notify-token"), "{body}");
            assert!(body.contains(crate::text::REDACTED), "{body}");
        }
    }
}
