//! One way the CI/CD backends call their REST APIs: every call bounded by
//! the deploy's deadline, answers read with the one capped reader, reads
//! (idempotent) retried on a lost answer or a 5xx, a call that starts
//! something never repeated once it may have reached the server, and rate
//! limits (429, or 403 with `retry-after` / `x-ratelimit-reset`) waited out
//! within the deadline — and said so in the log.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use crate::backends::BackendError;
use crate::backends::http::SMALL_BODY_CAP;
use crate::backends::util::{http_error, read_body};

/// Longest single call; the deploy's deadline may cut it shorter.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of a read whose answer was lost or was a 5xx.
const READ_ATTEMPTS: u32 = 3;

/// Whether a call may be repeated when its answer is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A read: repeated on a lost answer or a 5xx.
    Read,
    /// A call that starts something: a lost answer or a 5xx is
    /// [`BackendError::OutcomeUnknown`], never repeated.
    Start,
}

/// An answer, whatever its status.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The answer as an error naming the system and the call.
    pub fn error(self, backend: &str, call: &str) -> BackendError {
        BackendError::Status {
            backend: format!("{backend}: {call}"),
            status: self.status,
            body: self.body,
        }
    }

    /// The body as JSON, or an error naming the call.
    pub fn json(&self, backend: &str, call: &str) -> Result<serde_json::Value, BackendError> {
        serde_json::from_str(&self.body).map_err(|e| BackendError::Garbage {
            backend: format!("{backend}: {call}"),
            cause: format!("not JSON ({e})"),
        })
    }
}

/// Time left before `deadline`, or a timeout error naming the call.
pub(crate) fn left(
    backend: &str,
    call: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<Duration, BackendError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(BackendError::Timeout {
            backend: format!("{backend}: {call}"),
            after: timeout,
        })
    } else {
        Ok(left)
    }
}

/// How long a rate-limited answer asks us to wait: `retry-after` seconds,
/// or until `x-ratelimit-reset` (epoch seconds) when no request is left.
/// `None` when the answer is not a rate limit.
fn rate_limit_wait(status: u16, headers: &HeaderMap) -> Option<Duration> {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let retry_after = h("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
    let exhausted = h("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
    let reset = h("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok());
    if status != 429 && !(status == 403 && (retry_after.is_some() || exhausted)) {
        return None;
    }
    if let Some(s) = retry_after {
        return Some(Duration::from_secs(s));
    }
    if let Some(at) = reset.filter(|_| exhausted || status == 429) {
        let now = chrono::Utc::now().timestamp();
        return Some(Duration::from_secs((at - now).max(1) as u64));
    }
    // A secondary limit without a hint: GitHub asks for at least a minute.
    Some(Duration::from_secs(60))
}

/// Send the request `build` makes (built afresh for each attempt) and read
/// its answer. `call` names it in errors and log lines ("POST
/// /repos/…/dispatches").
pub(crate) async fn send(
    backend: &str,
    call: &str,
    kind: Kind,
    deadline: Instant,
    timeout: Duration,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, BackendError> {
    let named = format!("{backend}: {call}");
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let room = left(backend, call, deadline, timeout)?;
        let per_call = room.min(CALL_TIMEOUT);
        let sent = match build().timeout(per_call).send().await {
            // Never connected: nothing reached the server, nothing started.
            Err(e) if kind == Kind::Start && e.is_connect() => {
                return Err(http_error(&named, e, per_call));
            }
            sent => sent,
        };
        let answer = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                match read_body(&named, resp, SMALL_BODY_CAP, per_call).await {
                    Ok(body) => Ok(Answer {
                        status,
                        headers,
                        body,
                    }),
                    // Its status is known: a refusal stays a refusal, and an
                    // accepted start has started, whatever its body — the
                    // caller goes by the status and headers, as with an
                    // answer that has no body.
                    Err(e @ BackendError::TooLarge { .. }) if kind == Kind::Start => {
                        if !(200..300).contains(&status) {
                            return Err(BackendError::Status {
                                backend: named,
                                status,
                                body: format!("(not read: {e})"),
                            });
                        }
                        tracing::warn!("{e}; going by its status (HTTP {status}) and headers");
                        Ok(Answer {
                            status,
                            headers,
                            body: String::new(),
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(http_error(&named, e, per_call)),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e @ BackendError::TooLarge { .. }) => return Err(e),
            Err(e) if kind == Kind::Start => {
                return Err(BackendError::OutcomeUnknown {
                    backend: named,
                    cause: format!(
                        "the answer was lost ({e}); not repeated — it may have started: look before deploying again"
                    ),
                });
            }
            Err(e) => {
                if attempt >= READ_ATTEMPTS {
                    return Err(e);
                }
                tracing::warn!("{e}; reading again");
                pause(Duration::from_millis(500 * u64::from(attempt)), deadline).await;
                continue;
            }
        };
        if let Some(wait) = rate_limit_wait(answer.status, &answer.headers) {
            let room = deadline.saturating_duration_since(Instant::now());
            if wait >= room {
                return Err(BackendError::Status {
                    backend: named,
                    status: answer.status,
                    body: format!(
                        "rate limited for {}s more, past the call's deadline: {}",
                        wait.as_secs(),
                        answer.body
                    ),
                });
            }
            // A rate-limited call was refused, so sending it again is safe.
            tracing::warn!(
                "{named}: rate limited (HTTP {}); waiting {}s as the server asks",
                answer.status,
                wait.as_secs()
            );
            tokio::time::sleep(wait).await;
            continue;
        }
        if answer.status >= 500 {
            if kind == Kind::Start {
                return Err(BackendError::OutcomeUnknown {
                    backend: named,
                    cause: format!(
                        "answered HTTP {} ({}); not repeated — it may have started: look before deploying again",
                        answer.status,
                        answer.body.chars().take(200).collect::<String>()
                    ),
                });
            }
            if attempt < READ_ATTEMPTS {
                tracing::warn!("{named}: answered HTTP {}; reading again", answer.status);
                pause(Duration::from_millis(500 * u64::from(attempt)), deadline).await;
                continue;
            }
        }
        return Ok(answer);
    }
}

/// The error of a call that starts something and got no answer: a plain
/// failure when the connection was never made (nothing reached the
/// server), else [`BackendError::OutcomeUnknown`] — the request may have
/// arrived and started the deploy, so it must not be repeated blindly.
pub(super) fn lost_answer(backend: &str, e: reqwest::Error, timeout: Duration) -> BackendError {
    if e.is_connect() {
        return http_error(backend, e, timeout);
    }
    let e = http_error(backend, e, timeout);
    BackendError::OutcomeUnknown {
        backend: backend.to_string(),
        cause: format!(
            "the answer was lost ({e}); not repeated — it may have started: look before deploying again"
        ),
    }
}

/// Sleep `d`, but not past `deadline`.
pub(crate) async fn pause(d: Duration, deadline: Instant) {
    let room = deadline.saturating_duration_since(Instant::now());
    tokio::time::sleep(d.min(room)).await;
}

/// `"1m12s"`, `"8s"`.
pub(crate) fn took(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `url` reduced to the path and query of `base`'s origin: a link a
/// server sends back (a Jenkins queue item, a build) is followed on the
/// host the config names, so credentials never travel elsewhere.
pub(crate) fn on_base(base: &reqwest::Url, url: &str) -> Option<reqwest::Url> {
    let given = base.join(url).ok()?;
    let mut out = base.clone();
    out.set_path(given.path());
    out.set_query(given.query());
    Some(out)
}

/// The one rule for an error met after a deploy's remote work was started
/// (a workflow run dispatched, a Jenkins build queued, a CodePipeline
/// execution started) and before it was seen to end: shipdeck never
/// cancels it, so it may still land — the outcome is unknown, never
/// "failed", and never repeated blindly. A definite end (the run or build
/// concluded, a queue item cancelled: [`BackendError::Command`]) and an
/// unknown stay what they are; running out of the deploy's time says so.
pub(crate) fn lost_track(backend: &str, e: BackendError) -> BackendError {
    match e {
        e @ (BackendError::OutcomeUnknown { .. } | BackendError::Command { .. }) => e,
        e @ BackendError::Timeout { .. } => BackendError::OutcomeUnknown {
            backend: backend.to_string(),
            cause: format!(
                "still running when the deploy's timeout passed ({e}); shipdeck did not cancel it, so it may still land: look before deploying again"
            ),
        },
        e => BackendError::OutcomeUnknown {
            backend: backend.to_string(),
            cause: format!("started, but it could not be followed: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn rate_limits_are_read_from_retry_after_or_the_reset_time() {
        assert_eq!(
            rate_limit_wait(429, &headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(403, &headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        let reset = (chrono::Utc::now().timestamp() + 30).to_string();
        let w = rate_limit_wait(
            403,
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ]),
        )
        .unwrap();
        // About 30 s; the lower end leaves room for a descheduled test
        // thread between reading the clock here and there.
        assert!((10..=31).contains(&w.as_secs()), "{w:?}");
        // A 403 that is not a rate limit (no permission) is not waited out.
        assert_eq!(
            rate_limit_wait(403, &headers(&[("x-ratelimit-remaining", "4999")])),
            None
        );
        assert_eq!(rate_limit_wait(404, &HeaderMap::new()), None);
    }

    #[test]
    fn links_from_a_server_stay_on_the_configured_origin() {
        let base = reqwest::Url::parse("https://ci.example.com/jenkins/").unwrap();
        let u = on_base(&base, "http://evil.example:8080/jenkins/queue/item/7/").unwrap();
        assert_eq!(u.as_str(), "https://ci.example.com/jenkins/queue/item/7/");
        let u = on_base(&base, "/jenkins/job/x/12/").unwrap();
        assert_eq!(u.as_str(), "https://ci.example.com/jenkins/job/x/12/");
    }

    #[test]
    fn durations_read_as_minutes_and_seconds() {
        assert_eq!(took(Duration::from_secs(72)), "1m12s");
        assert_eq!(took(Duration::from_secs(8)), "8s");
    }
}
