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
//! (5xx, timeout, no connection) is tried again. A receiver that answered
//! 5xx or whose answer was lost may have taken the event: that delivery's
//! outcome is unknown — the word a CI/CD backend's 5xx gets — never
//! "failed", which is kept for an event that reached no one (no
//! connection; 408, 429). Every event carries
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
            track(rt.spawn(async move {
                deliver(&client, &r, &notice).await;
            }));
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
    /// It did not take it — nothing reached it (no connection), or it
    /// said to come back (408, 429): worth another try.
    Failed(String),
    /// It may have taken it — it answered 5xx, or its answer was lost —
    /// the one rule of every backend (a CI/CD dispatch answered so is
    /// "outcome unknown" too); tried again only because the event's
    /// `Idempotency-Key` lets the receiver drop a repeat.
    Unknown(String),
}

/// What a delivery came to, after at most [`ATTEMPTS`] attempts.
#[derive(Debug, PartialEq)]
enum Delivery {
    Delivered,
    /// Refused for good (a 4xx).
    Refused(String),
    /// No attempt reached the receiver, or each was refused for now.
    Failed(String),
    /// The last answer lost or a 5xx (or one before it so): it may have
    /// the event — never "failed", never "not delivered".
    Unknown(String),
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
            if s.is_server_error() {
                Attempt::Unknown(why)
            } else if s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429 {
                Attempt::Refused(why)
            } else {
                Attempt::Failed(why)
            }
        }
        // A request that could not even be built (the URL in the
        // environment variable is no URL) was never sent, and never will be.
        Err(e) if e.is_builder() => Attempt::Refused(format!(
            "could not be sent ({}): is its URL variable an http(s) URL?",
            crate::text::clean(&e.to_string())
        )),
        // Nothing reached the receiver.
        Err(e) if e.is_connect() => Attempt::Failed(crate::text::clean(&e.to_string())),
        Err(e) if e.is_timeout() => Attempt::Unknown(format!("no answer within {:?}", r.timeout)),
        Err(e) => Attempt::Unknown(crate::text::clean(&e.to_string())),
    }
}

async fn deliver(client: &reqwest::Client, r: &Receiver, notice: &Notice) -> Delivery {
    let mut pause = FIRST_BACKOFF;
    // Whether an attempt may have reached it, and said why.
    let mut maybe: Option<String> = None;
    let mut n = 1;
    loop {
        let (why, word) = match attempt(client, r, notice).await {
            Attempt::Delivered => {
                tracing::info!("{}: event {} delivered", r.name, notice.id);
                return Delivery::Delivered;
            }
            Attempt::Refused(why) => {
                let Some(before) = maybe else {
                    tracing::warn!("{}: event {} refused: {why}", r.name, notice.id);
                    return Delivery::Refused(why);
                };
                let why = format!(
                    "refused ({why}), but an earlier attempt may have reached it ({before})"
                );
                tracing::warn!("{}: event {}: outcome unknown: {why}", r.name, notice.id);
                return Delivery::Unknown(why);
            }
            Attempt::Failed(why) => (why, "failed"),
            Attempt::Unknown(why) => {
                maybe = Some(why.clone());
                (why, "outcome unknown")
            }
        };
        if n >= ATTEMPTS {
            return given_up(r, notice, why, maybe);
        }
        tracing::info!(
            "{}: event {} attempt {n} {word} ({why}); again in {pause:?}",
            r.name,
            notice.id
        );
        tokio::time::sleep(pause).await;
        pause *= 2;
        n += 1;
    }
}

/// The end of a delivery whose last attempt failed (`why`): unknown when
/// any attempt may have reached the receiver (`maybe`), else failed.
fn given_up(r: &Receiver, notice: &Notice, why: String, maybe: Option<String>) -> Delivery {
    match maybe {
        Some(before) => {
            let why = if before == why {
                why
            } else {
                format!("{why}; an earlier attempt: {before}")
            };
            tracing::warn!(
                "{}: event {}: outcome unknown after {ATTEMPTS} attempts ({why}) — the receiver may have it; each attempt carried the Idempotency-Key {}",
                r.name,
                notice.id,
                notice.id
            );
            Delivery::Unknown(why)
        }
        None => {
            tracing::warn!(
                "{}: event {} not delivered after {ATTEMPTS} attempts: {why}",
                r.name,
                notice.id
            );
            Delivery::Failed(why)
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
        let r = receiver_at(url);
        let client = post_client().unwrap();
        match attempt(&client, &r, &notice()).await {
            Attempt::Refused(why) => {
                assert!(why.contains("301") && why.contains("redirect"), "{why}");
                assert!(!why.contains("/hook"), "where it points is not said: {why}");
            }
            Attempt::Delivered => panic!("taken for delivered: {:?}", seen.lock().unwrap()),
            Attempt::Failed(why) | Attempt::Unknown(why) => panic!("to be tried again: {why}"),
        }
        // The receiver was never sent a GET in place of the event.
        assert_eq!(*seen.lock().unwrap(), ["POST /hook"]);
    }

    fn receiver_at(url: String) -> Receiver {
        let config = NotifyConfig {
            kind: NotifyKind::Webhook,
            url_env: "UNUSED".into(),
            events: None,
            timeout: crate::domain::HumanDuration(Duration::from_secs(5)),
        };
        Receiver {
            name: "test receiver".into(),
            kind: NotifyKind::Webhook,
            url,
            timeout: Duration::from_secs(5),
            config,
        }
    }

    /// A receiver that answers 500 may have taken the event: its delivery
    /// is "unknown", the word a CI/CD backend's 5xx gets — it read
    /// "failed", "not delivered" — and it was tried again (the receiver
    /// drops repeats by the Idempotency-Key). One that no connection
    /// reached did fail.
    #[tokio::test]
    async fn a_receiver_answering_500_may_have_it_and_one_never_reached_did_not() {
        use axum::routing::post;
        let tries = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let t = tries.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move || async move {
                t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        // A port nothing listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let client = post_client().unwrap();
        let n = notice();
        let (up, down) = (
            receiver_at(format!("http://{addr}/hook")),
            receiver_at(format!("http://{gone}/hook")),
        );
        let (answered, unreached) =
            tokio::join!(deliver(&client, &up, &n), deliver(&client, &down, &n));
        match answered {
            Delivery::Unknown(why) => assert!(why.contains("500"), "{why}"),
            other => panic!("a 500 read {other:?}"),
        }
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), ATTEMPTS);
        assert!(
            matches!(&unreached, Delivery::Failed(_)),
            "never reached: {unreached:?}"
        );
    }

    /// A URL that is no URL: refused at once, never "may have it".
    #[tokio::test]
    async fn a_receiver_whose_url_is_no_url_is_refused_at_once() {
        let client = post_client().unwrap();
        match deliver(&client, &receiver_at("not a url".into()), &notice()).await {
            Delivery::Refused(why) => assert!(why.contains("could not be sent"), "{why}"),
            other => panic!("a URL that is none read {other:?}"),
        }
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
