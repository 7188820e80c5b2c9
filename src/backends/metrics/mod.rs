//! Metrics sources: where the monitoring window's samples come from.
//!
//! - [`ScrapeSource`] reads a `/metrics` text exposition directly and turns
//!   two successive scrapes into one step (counter deltas, histogram quantiles).
//! - [`PrometheusSource`] asks a Prometheus server with PromQL templates.
//!
//! Both answer with [`MetricPoint`]s: requests and 5xx errors counted over a
//! step, and latency quantiles in milliseconds. Dispatch is a plain enum.

pub mod exposition;
pub mod prometheus;
pub mod scrape;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{MetricsConfig, MetricsSourceKind};
use crate::monitor::Sample;

pub use prometheus::PrometheusSource;
pub use scrape::ScrapeSource;

/// Metrics over the last step; each `None` where unknown (the `metrics`
/// object of `status`, SPEC §3).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub as_of: Option<DateTime<Utc>>,
}

/// One step of one environment's metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// End of the step.
    pub at: DateTime<Utc>,
    /// Length of the step in seconds.
    pub step_s: f64,
    /// Requests in the step.
    pub requests: f64,
    /// Failed (5xx) requests in the step.
    pub errors: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl MetricPoint {
    /// A step of a history read whose requests or errors count was no
    /// number (NaN, ±Inf): no data at that step — the detector's gap
    /// (NaN counts), never health and never an alarm.
    pub fn gap(at: DateTime<Utc>, step_s: f64) -> MetricPoint {
        MetricPoint {
            at,
            step_s,
            requests: f64::NAN,
            errors: f64::NAN,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
        }
    }

    /// Whether this is a [`gap`](Self::gap).
    pub fn is_gap(&self) -> bool {
        !(self.requests.is_finite() && self.errors.is_finite())
    }

    /// The detector's sample: `t` in seconds relative to `deploy_at`.
    pub fn to_sample(&self, deploy_at: DateTime<Utc>) -> Sample {
        let t = (self.at - deploy_at).num_microseconds().map_or_else(
            || (self.at - deploy_at).num_seconds() as f64,
            |us| us as f64 / 1e6,
        );
        Sample {
            t,
            requests: self.requests,
            errors: self.errors,
            p50_ms: self.p50_ms,
            p95_ms: self.p95_ms,
            p99_ms: self.p99_ms,
        }
    }

    /// Errors per request; `None` without traffic.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| (self.errors / self.requests).clamp(0.0, 1.0))
    }

    /// Requests per second over the step; `None` for an empty step.
    pub fn requests_per_s(&self) -> Option<f64> {
        (self.step_s > 0.0).then(|| self.requests / self.step_s)
    }

    /// The `metrics` object of `status` (SPEC §3).
    pub fn to_snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            error_rate: self.error_rate(),
            p50_ms: self.p50_ms,
            p95_ms: self.p95_ms,
            p99_ms: self.p99_ms,
            requests_per_s: self.requests_per_s(),
            as_of: Some(self.at),
        }
    }
}

/// The track label values of a canary environment's metrics (SPEC §2).
pub const CANARY_TRACK: &str = "canary";
pub const STABLE_TRACK: &str = "stable";

/// Which environment's metrics to read split into tracks, and by which
/// label (`track_label`, `"track"` by default).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrackSelector {
    /// The env label value (the environment's `metrics_label`).
    pub env: String,
    /// The label whose values are `canary` and `stable`.
    pub label: String,
}

/// The latest step of each track; `None` where the track had no data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrackPoints {
    pub canary: Option<MetricPoint>,
    pub stable: Option<MetricPoint>,
}

/// One poll's answer: each env label's step and each selected env's tracks.
/// A label whose own read failed (a NaN counter, a query error or timeout
/// of its queries) is in `errors` instead of `points`, and an env whose
/// tracks failed is in `track_errors` instead of `tracks`: one
/// environment's bad data never voids another's read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Polled {
    pub points: HashMap<String, Option<MetricPoint>>,
    pub tracks: HashMap<TrackSelector, TrackPoints>,
    pub errors: HashMap<String, MetricsError>,
    pub track_errors: HashMap<String, MetricsError>,
}

impl Polled {
    /// The answer as one result: the first failed label's error (in the
    /// order asked), else the points.
    fn into_points(
        mut self,
        labels: &[String],
    ) -> Result<HashMap<String, Option<MetricPoint>>, MetricsError> {
        match labels.iter().find_map(|l| self.errors.remove(l)) {
            Some(e) => Err(e),
            None => Ok(self.points),
        }
    }

    fn cleaned(mut self) -> Self {
        for e in self
            .errors
            .values_mut()
            .chain(self.track_errors.values_mut())
        {
            *e = e.clone().cleaned();
        }
        self
    }
}

/// What went wrong with a metrics source. Names the source (its URL without
/// credentials or query) and the cause; never carries a token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics config: {0}")]
    Config(String),
    #[error("metrics source {url} is unreachable: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("metrics source {url} did not answer within {timeout_ms} ms")]
    Timeout { url: String, timeout_ms: u128 },
    #[error("metrics source {url} answered HTTP {status}: {excerpt}")]
    Status {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("metrics source {url}: malformed exposition: line {line}: {message}")]
    Exposition {
        url: String,
        line: usize,
        message: String,
    },
    #[error("Prometheus {url} refused the query ({error_type}): {error}")]
    Query {
        url: String,
        error_type: String,
        error: String,
    },
    #[error("metrics source {url}: unexpected answer: {detail}")]
    Unexpected { url: String, detail: String },
    /// A number no count or rate can be (NaN, ±Inf, below zero): the
    /// source's numbers are garbage, which is not the same as no traffic.
    #[error(
        "metrics source {url} gives unusable numbers: {metric} is {value}, which no count can be"
    )]
    Unusable {
        url: String,
        metric: String,
        value: String,
    },
    /// An exposition with request series for other env labels and none
    /// for this one: a label that does not match the environment's (its
    /// name or `metrics_label`), or one no request has reached yet —
    /// which is not the silence of an environment without traffic.
    #[error(
        "metrics source {url} has no series labelled {name}=\"{label}\" (it has {name}={seen}): the environment's name or metrics_label may not match, or no request has reached it yet"
    )]
    NoSeries {
        url: String,
        /// The label's name (`env`, or the one a query template selects by).
        name: String,
        label: String,
        seen: String,
    },
}

/// What someone must fix before a metrics failure that waiting will not
/// heal goes away (see [`MetricsError::to_fix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsFix {
    /// A PromQL query the server refuses (`[metrics.queries]`).
    Query,
    /// The source's access: its token (`token_env`) or grant (401, 403).
    Access,
    /// The numbers the source gives (a NaN count, a malformed exposition,
    /// too few usable baseline steps).
    Data,
    /// The source itself or its `[metrics]` settings (a wrong URL or
    /// path, an answer that is no Prometheus answer).
    Source,
    /// The environment's label (`metrics_label`, else its name), which no
    /// series of the source carries over a whole baseline while others do
    /// (see [`MetricsError::NoSeries`]).
    Label,
}

impl MetricsError {
    /// Whether waiting may heal it: the source away for now — unreachable,
    /// not answering in time, a 5xx, 408 or 429 (a Prometheus restarting
    /// answers 503 until its TSDB is open; a proxy in front of it 502 or
    /// 504), or Prometheus' own `timeout`, `canceled`, `unavailable` or
    /// `internal` refusal. Everything else stays until someone acts: a
    /// query it refuses (`bad_data`, `execution`), 401/403, a wrong path
    /// (404), garbage numbers, an answer that is no Prometheus answer, a
    /// bad `[metrics]` setting. Read from the kind and the status, never
    /// from the text.
    pub fn heals_by_waiting(&self) -> bool {
        match self {
            // Traffic may yet reach it; a label that never matches shows
            // the same error on every read, which names the fix.
            MetricsError::Unreachable { .. }
            | MetricsError::Timeout { .. }
            | MetricsError::NoSeries { .. } => true,
            MetricsError::Status { status, .. } => {
                matches!(status, 408 | 429) || (500..600).contains(status) && *status != 501
            }
            MetricsError::Query { error_type, .. } => matches!(
                error_type.as_str(),
                "timeout" | "canceled" | "unavailable" | "internal"
            ),
            MetricsError::Config(_)
            | MetricsError::Exposition { .. }
            | MetricsError::Unexpected { .. }
            | MetricsError::Unusable { .. } => false,
        }
    }

    /// What to fix when waiting will not heal it (`None` when it will).
    pub fn to_fix(&self) -> Option<MetricsFix> {
        if self.heals_by_waiting() {
            return None;
        }
        Some(match self {
            MetricsError::Query { .. } => MetricsFix::Query,
            MetricsError::Status {
                status: 401 | 403, ..
            } => MetricsFix::Access,
            MetricsError::Exposition { .. } | MetricsError::Unusable { .. } => MetricsFix::Data,
            _ => MetricsFix::Source,
        })
    }

    /// The same error with configured secrets redacted and escape
    /// sequences removed from every text it carries (what a source
    /// answered included). Every error leaving [`MetricsSource`] is cleaned.
    pub fn cleaned(self) -> Self {
        use crate::text::clean;
        let short = |s: &str| {
            let c = clean(&s.chars().take(2000).collect::<String>());
            if c.chars().count() > 500 {
                format!("{}…", c.chars().take(500).collect::<String>())
            } else {
                c
            }
        };
        match self {
            MetricsError::Config(m) => MetricsError::Config(short(&m)),
            MetricsError::Unreachable { url, cause } => MetricsError::Unreachable {
                url: clean(&url),
                cause: short(&cause),
            },
            MetricsError::Timeout { url, timeout_ms } => MetricsError::Timeout {
                url: clean(&url),
                timeout_ms,
            },
            MetricsError::Status {
                url,
                status,
                excerpt,
            } => MetricsError::Status {
                url: clean(&url),
                status,
                excerpt: short(&excerpt),
            },
            MetricsError::Exposition { url, line, message } => MetricsError::Exposition {
                url: clean(&url),
                line,
                message: short(&message),
            },
            MetricsError::Query {
                url,
                error_type,
                error,
            } => MetricsError::Query {
                url: clean(&url),
                error_type: short(&error_type),
                error: short(&error),
            },
            MetricsError::Unexpected { url, detail } => MetricsError::Unexpected {
                url: clean(&url),
                detail: short(&detail),
            },
            MetricsError::Unusable { url, metric, value } => MetricsError::Unusable {
                url: clean(&url),
                metric: short(&metric),
                value: short(&value),
            },
            MetricsError::NoSeries {
                url,
                name,
                label,
                seen,
            } => MetricsError::NoSeries {
                url: clean(&url),
                name: short(&name),
                label: short(&label),
                seen: short(&seen),
            },
        }
    }
}

/// [`MetricsError::NoSeries`] for `label` at `url`, which has request
/// series for the values `seen` of the label `name` (the first few named)
/// and none for it.
pub(crate) fn no_series_error(url: &str, name: &str, label: &str, seen: &[&str]) -> MetricsError {
    const SHOWN: usize = 8;
    let mut shown = seen
        .iter()
        .take(SHOWN)
        .map(|l| format!("{l:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if seen.len() > SHOWN {
        shown.push_str(&format!(" and {} more", seen.len() - SHOWN));
    }
    MetricsError::NoSeries {
        url: url.to_string(),
        name: name.to_string(),
        label: label.to_string(),
        seen: shown,
    }
}

/// A configured metrics source.
#[derive(Debug)]
pub enum MetricsSource {
    Scrape(ScrapeSource),
    Prometheus(PrometheusSource),
}

impl MetricsSource {
    pub fn from_config(cfg: &MetricsConfig) -> Result<Self, MetricsError> {
        crate::text::register_url_credentials(&cfg.url);
        Ok(match cfg.source {
            MetricsSourceKind::Scrape => MetricsSource::Scrape(ScrapeSource::from_config(cfg)?),
            MetricsSourceKind::Prometheus => {
                MetricsSource::Prometheus(PrometheusSource::from_config(cfg)?)
            }
        })
    }

    /// The latest step for each env label: `None` for a label that has no
    /// data yet (scrape: the first poll, or a label absent from the exposition;
    /// Prometheus: an empty result).
    pub async fn poll(
        &self,
        labels: &[String],
    ) -> Result<HashMap<String, Option<MetricPoint>>, MetricsError> {
        match self {
            MetricsSource::Scrape(s) => s.poll(labels).await,
            MetricsSource::Prometheus(p) => p.poll(labels).await,
        }
        .map_err(MetricsError::cleaned)
    }

    /// [`poll`](Self::poll) plus the canary and stable tracks of `tracks`,
    /// read at the same moment as the env totals.
    pub async fn poll_tracked(
        &self,
        labels: &[String],
        tracks: &[TrackSelector],
    ) -> Result<Polled, MetricsError> {
        match self {
            MetricsSource::Scrape(s) => s.poll_tracked(labels, tracks).await,
            MetricsSource::Prometheus(p) => p.poll_tracked(labels, tracks).await,
        }
        .map(Polled::cleaned)
        .map_err(MetricsError::cleaned)
    }

    /// History over `[start, end]` at `step`. `Ok(None)` when the source
    /// keeps none (scrape).
    pub async fn history(
        &self,
        label: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Option<Vec<MetricPoint>>, MetricsError> {
        match self {
            MetricsSource::Scrape(_) => Ok(None),
            MetricsSource::Prometheus(p) => p.history(label, start, end, step).await.map(Some),
        }
        .map_err(MetricsError::cleaned)
    }

    /// The seasonal reference over `ranges` at `step` (see
    /// [`SeasonalReference`]). `Ok(None)` when the source keeps no history
    /// (scrape).
    pub async fn seasonal_reference(
        &self,
        label: &str,
        ranges: &[(DateTime<Utc>, DateTime<Utc>)],
        step: Duration,
    ) -> Result<Option<SeasonalReference>, MetricsError> {
        let MetricsSource::Prometheus(p) = self else {
            return Ok(None);
        };
        let mut answers = Vec::new();
        for (name, ago) in SEASONAL_OFFSETS {
            let mut pts = Vec::new();
            for (from, to) in ranges {
                pts.extend(
                    p.requests_ago(label, *from, *to, step, ago)
                        .await
                        .map_err(MetricsError::cleaned)?,
                );
            }
            answers.push((name, pts));
        }
        Ok(Some(SeasonalReference::combine(step, answers)))
    }

    /// Where the metrics come from, for display (no credentials).
    pub fn describe(&self) -> String {
        match self {
            MetricsSource::Scrape(s) => format!("scrape {}", s.url()),
            MetricsSource::Prometheus(p) => format!("prometheus {}", p.url()),
        }
    }
}

/// The offsets of the seasonal reference: the same step a day and a week
/// earlier (PromQL's `offset 1d`, `offset 7d`).
pub const SEASONAL_OFFSETS: [(&str, Duration); 2] = [
    ("1d", Duration::from_secs(86_400)),
    ("7d", Duration::from_secs(7 * 86_400)),
];

/// A count at the end of a step.
pub type TimedCount = (DateTime<Utc>, f64);

/// The traffic expected at each step from the same time a day and a week
/// earlier: requests per step, the lower of the two where both answered
/// (a fall must be far below both to count as a collapse on that ground).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeasonalReference {
    /// Requests per step, by the time (Unix ms) they stand for now.
    points: BTreeMap<i64, f64>,
    step_ms: i64,
    /// The offsets that had data ("1d", "7d").
    pub offsets: Vec<&'static str>,
    /// Steps of the offsets' answers whose count was no number: gaps,
    /// said in [`describe`](Self::describe).
    pub unusable: usize,
}

impl SeasonalReference {
    /// Combine the answers of each offset (`(name, points)`): per step,
    /// the lowest of the offsets that have it.
    pub fn combine(step: Duration, answers: Vec<(&'static str, Vec<TimedCount>)>) -> Self {
        let mut points: BTreeMap<i64, f64> = BTreeMap::new();
        let mut offsets = Vec::new();
        let mut unusable = 0;
        for (name, pts) in answers {
            let (pts, bad): (Vec<TimedCount>, Vec<TimedCount>) =
                pts.into_iter().partition(|(_, n)| n.is_finite());
            unusable += bad.len();
            if pts.is_empty() {
                continue;
            }
            offsets.push(name);
            for (at, n) in pts {
                points
                    .entry(at.timestamp_millis())
                    .and_modify(|v| *v = v.min(n))
                    .or_insert(n);
            }
        }
        SeasonalReference {
            points,
            step_ms: (step.as_millis() as i64).max(1),
            offsets,
            unusable,
        }
    }

    /// The reference's requests for the step ending at `at` (its nearest
    /// point within half a step), if it has one.
    pub fn requests_at(&self, at: DateTime<Utc>) -> Option<f64> {
        let ms = at.timestamp_millis();
        let half = self.step_ms / 2;
        self.points
            .range(ms - half..=ms + half)
            .min_by_key(|(k, _)| (**k - ms).abs())
            .map(|(_, v)| *v)
    }

    /// The detector's reference sample for the step ending at `at`: only
    /// its request count is used.
    pub fn sample_at(&self, at: DateTime<Utc>, t: f64) -> Option<Sample> {
        self.requests_at(at).map(|requests| Sample {
            t,
            requests,
            errors: f64::NAN,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
        })
    }

    /// One line for the verdict: which reference the throughput test had.
    pub fn describe(&self) -> String {
        let line = match self.offsets.as_slice() {
            [] => "seasonal reference: none (no traffic recorded a day or a week earlier)".into(),
            [one] => format!("seasonal reference: the same steps {one} earlier"),
            many => format!(
                "seasonal reference: the same steps {} earlier (the lower of them)",
                many.join(" and ")
            ),
        };
        match self.unusable {
            0 => line,
            n => format!("{line} ({n} of its steps unusable: a count that is no number, left out)"),
        }
    }
}

/// A token: kept out of `Debug` output.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The URL without userinfo, query or fragment: safe for messages.
pub(crate) fn display_url(raw: &str) -> String {
    let no_query = raw.split(['?', '#']).next().unwrap_or(raw);
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => no_query.to_string(),
    }
}

/// A short, printable excerpt of an answer body (the one sanitiser and
/// redactor, see [`crate::text::excerpt`]).
pub(crate) fn excerpt(body: &[u8]) -> String {
    crate::text::excerpt(body)
}

/// Read the bearer token named by `token_env`.
pub(crate) fn token_from_env(token_env: Option<&str>) -> Result<Option<String>, MetricsError> {
    let Some(var) = token_env else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => {
            crate::text::register_secret(&t);
            Ok(Some(t.trim().to_string()))
        }
        Ok(_) => Err(MetricsError::Config(format!(
            "token_env names {var}, which is empty"
        ))),
        Err(_) => Err(MetricsError::Config(format!(
            "token_env names {var}, which is not set"
        ))),
    }
}

/// Turn a reqwest failure into a typed error that names `url`.
pub(crate) fn transport_error(url: &str, timeout: Duration, e: reqwest::Error) -> MetricsError {
    if e.is_timeout() {
        return MetricsError::Timeout {
            url: url.to_string(),
            timeout_ms: timeout.as_millis(),
        };
    }
    // The error's own Display names the full URL (with the query); keep the
    // causes only, and of those the innermost says the most.
    let e = e.without_url();
    let mut chain = vec![e.to_string()];
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let innermost = chain.last().cloned().unwrap_or_default();
    let cause = if e.is_connect() {
        format!("cannot connect ({innermost})")
    } else if chain.len() > 1 {
        format!("{} ({innermost})", chain[0])
    } else {
        innermost
    };
    MetricsError::Unreachable {
        url: url.to_string(),
        cause,
    }
}

/// Largest answer body read from a metrics source.
pub(crate) const MAX_BODY: usize = crate::backends::http::METRICS_BODY_CAP;

/// Read an answer body with the one capped reader, refusing one larger
/// than [`MAX_BODY`] with an error naming the source and the cap.
pub(crate) async fn read_body(
    url: &str,
    timeout: Duration,
    resp: reqwest::Response,
) -> Result<Vec<u8>, MetricsError> {
    use crate::backends::http::{BodyError, read_capped, show_cap};
    read_capped(resp, MAX_BODY).await.map_err(|e| match e {
        BodyError::TooLarge { cap } => MetricsError::Unexpected {
            url: url.to_string(),
            detail: format!(
                "the answer is larger than the {} cap for metrics answers; refused",
                show_cap(cap)
            ),
        },
        BodyError::Transport(e) => transport_error(url, timeout, e),
    })
}

/// Build the HTTP client of a source (the one builder, see
/// [`crate::backends::http::client`]).
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, MetricsError> {
    crate::backends::http::client(timeout, Some(timeout))
        .map_err(|e| MetricsError::Config(format!("cannot build an HTTP client: {e}")))
}

/// `histogram_quantile` over cumulative bucket counts `(upper bound, count)`, the way Prometheus computes it: linear
/// interpolation inside the bucket holding the rank, 0 as the lower bound of
/// the first bucket, and the largest finite bound when the rank falls into
/// `+Inf`. `None` without observations or without a `+Inf` bucket.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut b: Vec<(f64, f64)> = buckets
        .iter()
        .copied()
        .filter(|(le, n)| !le.is_nan() && n.is_finite())
        .collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    b.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 += later.1;
            true
        } else {
            false
        }
    });
    if b.len() < 2 || b.last().map(|l| l.0) != Some(f64::INFINITY) {
        return None;
    }
    // Counts must not decrease with the bound (they can after deltas of a reset).
    for i in 1..b.len() {
        if b[i].1 < b[i - 1].1 {
            b[i].1 = b[i - 1].1;
        }
    }
    let total = b.last().map_or(0.0, |l| l.1);
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let idx = b
        .iter()
        .position(|(_, n)| *n >= rank)
        .unwrap_or(b.len() - 1);
    if idx == b.len() - 1 {
        return Some(b[b.len() - 2].0);
    }
    let (upper, count) = b[idx];
    let (lower, below) = if idx == 0 {
        if upper <= 0.0 {
            return Some(upper);
        }
        (0.0, 0.0)
    } else {
        b[idx - 1]
    };
    let in_bucket = count - below;
    if in_bucket <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let b = [
            (0.1, 50.0),
            (0.2, 90.0),
            (0.5, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((histogram_quantile(0.5, &b).unwrap() - 0.1).abs() < 1e-12);
        assert!((histogram_quantile(0.25, &b).unwrap() - 0.05).abs() < 1e-12);
        assert!((histogram_quantile(0.7, &b).unwrap() - 0.15).abs() < 1e-12);
        assert!((histogram_quantile(0.95, &b).unwrap() - 0.35).abs() < 1e-12);
        // Above the largest finite bucket: its bound.
        let over = [(0.1, 10.0), (f64::INFINITY, 100.0)];
        assert_eq!(histogram_quantile(0.99, &over), Some(0.1));
        // No observations, or no +Inf bucket: no answer.
        assert_eq!(
            histogram_quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.5, &[(0.1, 3.0), (0.2, 5.0)]), None);
        assert_eq!(histogram_quantile(1.5, &b), None);
        // Unordered input and a non-monotonic bucket are fixed up.
        let messy = [(f64::INFINITY, 10.0), (0.2, 9.0), (0.1, 10.0)];
        assert_eq!(histogram_quantile(0.5, &messy), Some(0.05));
    }

    #[test]
    fn point_derivations() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = MetricPoint {
            at,
            step_s: 10.0,
            requests: 2000.0,
            errors: 10.0,
            p50_ms: Some(40.0),
            p95_ms: Some(120.0),
            p99_ms: None,
        };
        assert_eq!(p.error_rate(), Some(0.005));
        assert_eq!(p.requests_per_s(), Some(200.0));
        let deploy = at - chrono::Duration::milliseconds(2500);
        let s = p.to_sample(deploy);
        assert_eq!(s.t, 2.5);
        assert_eq!(
            (s.requests, s.errors, s.p95_ms),
            (2000.0, 10.0, Some(120.0))
        );
        let snap = p.to_snapshot();
        assert_eq!(snap.as_of, Some(at));
        assert_eq!(snap.requests_per_s, Some(200.0));
        let idle = MetricPoint {
            requests: 0.0,
            errors: 0.0,
            step_s: 0.0,
            ..p
        };
        assert_eq!(idle.error_rate(), None);
        assert_eq!(idle.requests_per_s(), None);
    }

    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}

    #[test]
    fn sources_and_their_futures_can_cross_threads() {
        for source in [
            MetricsSource::from_config(&MetricsConfig::default()).unwrap(),
            MetricsSource::from_config(&MetricsConfig {
                source: MetricsSourceKind::Prometheus,
                url: "http://127.0.0.1:9090".into(),
                ..MetricsConfig::default()
            })
            .unwrap(),
        ] {
            send_sync(&source);
            let labels = vec!["production".to_string()];
            send(source.poll(&labels));
            let now = Utc::now();
            send(source.history("production", now, now, Duration::from_secs(10)));
        }
    }

    #[test]
    fn the_seasonal_reference_is_the_lower_offset_per_step_and_says_which() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-08T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let step = Duration::from_secs(10);
        let r = SeasonalReference::combine(
            step,
            vec![
                ("1d", vec![(at(0), 500.0), (at(10), 400.0)]),
                ("7d", vec![(at(0), 450.0), (at(20), 300.0)]),
            ],
        );
        assert_eq!(r.requests_at(at(0)), Some(450.0));
        assert_eq!(r.requests_at(at(10)), Some(400.0));
        assert_eq!(r.requests_at(at(22)), Some(300.0), "within half a step");
        assert_eq!(r.requests_at(at(40)), None, "no point near");
        assert_eq!(r.sample_at(at(10), 10.0).map(|s| s.requests), Some(400.0));
        assert!(r.describe().contains("1d and 7d"), "{}", r.describe());
        let only =
            SeasonalReference::combine(step, vec![("1d", vec![]), ("7d", vec![(at(0), 1.0)])]);
        assert_eq!(only.offsets, vec!["7d"]);
        assert!(
            only.describe().contains("7d earlier"),
            "{}",
            only.describe()
        );
        let none = SeasonalReference::combine(step, vec![("1d", vec![]), ("7d", vec![])]);
        assert_eq!(none.requests_at(at(0)), None);
        assert!(none.describe().contains("none"), "{}", none.describe());
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            display_url("https://user:secret@prom.example:9090/api/v1/query?query=up"),
            "https://prom.example:9090/api/v1/query"
        );
        assert_eq!(
            display_url("http://127.0.0.1:7878/metrics"),
            "http://127.0.0.1:7878/metrics"
        );
        assert_eq!(display_url("http://h"), "http://h");
    }

    #[test]
    fn excerpts_are_short_and_flat() {
        assert_eq!(excerpt(b"404 page not found\n"), "404 page not found");
        assert_eq!(excerpt(b""), "(empty body)");
        let long = excerpt("x".repeat(1000).as_bytes());
        assert!(long.chars().count() <= 201 && long.ends_with('…'));
    }
}
