//! HTTP at the edge: one client builder and one body reader with a size
//! cap, used by every HTTP call shipdeck makes.
//!
//! Redirects are followed only within the same origin (scheme, host and
//! port) and at most [`MAX_REDIRECTS`] times: a redirect to another host
//! is not followed, so a bearer token or Basic credentials never travel to
//! a host the config does not name. The redirect answer itself is then
//! returned (a 3xx, which callers report as an HTTP error).

use std::time::Duration;

/// Largest answer read from a version endpoint or a deploy webhook.
pub const SMALL_BODY_CAP: usize = 1024 * 1024;
/// Largest answer read from a metrics source (a `/metrics` exposition or a
/// Prometheus API answer).
pub const METRICS_BODY_CAP: usize = 16 * 1024 * 1024;
/// Same-origin redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// The one HTTP client builder. `timeout` bounds each whole request (body
/// included) unless a request sets its own.
pub fn client(
    connect_timeout: Duration,
    timeout: Option<Duration>,
) -> reqwest::Result<reqwest::Client> {
    build(connect_timeout, timeout, false)
}

/// The client for a hook that is POSTed something to do (a deploy webhook,
/// a switch, a canary weight, a notification). It follows a same-origin
/// redirect only when it keeps the method and the body (307, 308): after a
/// 301, 302 or 303 an HTTP client sends a GET without the body to the new
/// place, whose 200 would read as "done" while the hook never got what it
/// was sent. Such a redirect is returned as the answer instead (see
/// [`redirect_note`]).
pub fn post_client(connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    build(connect_timeout, None, true)
}

fn build(
    connect_timeout: Duration,
    timeout: Option<Duration>,
    keep_method: bool,
) -> reqwest::Result<reqwest::Client> {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            let next = attempt.url();
            first.scheme() == next.scheme()
                && first.host_str() == next.host_str()
                && first.port_or_known_default() == next.port_or_known_default()
        });
        let keeps_method = matches!(attempt.status().as_u16(), 307 | 308);
        if !same_origin
            || attempt.previous().len() > MAX_REDIRECTS
            || (keep_method && !keeps_method)
        {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("shipdeck/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        .redirect(policy);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build()
}

/// For a redirect answer (3xx) to a POST: where it points and why it was
/// not followed, fit for an error message (the target shown without
/// credentials or query). `None` for any other answer.
/// Whether a redirect answer (3xx) to a POST says the server may have
/// acted on it: a 302 or 303 is how a server answers a POST it handled
/// (post/redirect/get: "see the result there"), where a 301 or 308 says
/// the resource lives elsewhere. An action answered so is neither done nor
/// refused: outcome unknown, never repeated.
pub fn post_may_have_acted(status: u16) -> bool {
    matches!(status, 302 | 303)
}

pub fn redirect_note(status: u16, headers: &reqwest::header::HeaderMap) -> Option<String> {
    if !(300..400).contains(&status) {
        return None;
    }
    let to = headers
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(|l| format!(" to {}", crate::backends::util::show_url(l)))
        .unwrap_or_default();
    Some(format!(
        "redirected{to}; not followed — it would reach another host, or turn the POST into a GET without its body: configure the URL it ends at"
    ))
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The answer is larger than `cap` bytes (announced or streamed).
    TooLarge {
        cap: usize,
    },
    Transport(reqwest::Error),
}

/// `cap` in words: "1 MiB", "16 MiB", "512 KiB".
pub fn show_cap(cap: usize) -> String {
    if cap >= 1024 * 1024 && cap.is_multiple_of(1024 * 1024) {
        format!("{} MiB", cap / (1024 * 1024))
    } else if cap >= 1024 && cap.is_multiple_of(1024) {
        format!("{} KiB", cap / 1024)
    } else {
        format!("{cap} bytes")
    }
}

/// The one body reader: read at most `cap` bytes of an answer. A larger
/// `Content-Length` is refused before anything is read; a streamed body is
/// cut off as soon as it passes the cap, so memory stays bounded whatever
/// the server sends.
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge { cap });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_read_in_words() {
        assert_eq!(show_cap(SMALL_BODY_CAP), "1 MiB");
        assert_eq!(show_cap(METRICS_BODY_CAP), "16 MiB");
        assert_eq!(show_cap(2048), "2 KiB");
        assert_eq!(show_cap(100), "100 bytes");
    }
}
