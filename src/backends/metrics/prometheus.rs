//! The Prometheus source: PromQL templates evaluated with `/api/v1/query`
//! (the latest step) and `/api/v1/query_range` (history).
//!
//! Three states are kept apart (see notes/prometheus.md): *no data* (an
//! empty result: the point is `None`, or for the errors query, 0 errors —
//! no 5xx series ever existed), *no traffic* (`"NaN"`, e.g. a quantile of an
//! empty histogram: the quantile is `None`), and a value.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    CANARY_TRACK, MetricPoint, MetricsError, Polled, STABLE_TRACK, Secret, TrackPoints,
    TrackSelector, client, display_url, excerpt, read_body, token_from_env, transport_error,
};
use crate::config::{MetricsConfig, QueryTemplates};

mod history;
mod labels;

pub use labels::env_selector;

/// Reads (a label's or a track's five queries) in flight at once in one
/// poll: up to 20 queries, Prometheus' default `--query.max-concurrency`.
pub const POLL_CONCURRENCY: usize = 4;

/// The quantiles asked for, in the order of [`MetricPoint`]'s fields.
const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

pub struct PrometheusSource {
    base: String,
    shown: String,
    step: Duration,
    timeout: Duration,
    token: Option<Secret>,
    queries: QueryTemplates,
    client: reqwest::Client,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("url", &self.shown)
            .field("step", &self.step)
            .field("timeout", &self.timeout)
            .field("token", &self.token)
            .field("queries", &self.queries)
            .finish_non_exhaustive()
    }
}

/// One series of a result: `(unix seconds, value)` pairs.
type Series = Vec<(f64, f64)>;

/// A Prometheus duration for `{step}`: whole seconds as `10s`, else milliseconds.
pub fn prom_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Escape a label value for a double-quoted PromQL string.
fn promql_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Fill a query template.
pub fn render_query(template: &str, label: &str, step: Duration, q: Option<f64>) -> String {
    let mut out = template
        .replace("{env}", &promql_escape(label))
        .replace("{step}", &prom_duration(step));
    if let Some(q) = q {
        out = out.replace("{q}", &q.to_string());
    }
    out
}

/// A template narrowed to one track: every `"{env}"` matcher gains
/// `,LABEL="VALUE"` beside it (the default templates select by
/// `env="{env}"`; a custom one must select by some `"{env}"` too).
pub fn track_template(template: &str, label: &str, track: &str) -> Result<String, MetricsError> {
    let name_ok = label
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(MetricsError::Config(format!(
            "track_label {label:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        )));
    }
    if !template.contains("\"{env}\"") {
        return Err(MetricsError::Config(format!(
            "the query {template:?} has no \"{{env}}\" matcher to add {label}=\"{track}\" to"
        )));
    }
    Ok(template.replace(
        "\"{env}\"",
        &format!("\"{{env}}\",{label}=\"{}\"", promql_escape(track)),
    ))
}

fn unix_seconds(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// Read a Prometheus API answer: the series of a successful vector, matrix
/// or scalar result, or a typed error.
pub fn parse_answer(url: &str, status: u16, body: &[u8]) -> Result<Vec<Series>, MetricsError> {
    let unexpected = |detail: String| MetricsError::Unexpected {
        url: url.to_string(),
        detail,
    };
    let json = envelope(url, status, body)?;
    let data = json
        .get("data")
        .ok_or_else(|| unexpected("a success without \"data\"".into()))?;
    let result = data.get("result");
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => array(result)
            .ok_or_else(|| unexpected("a vector result that is not an array".into()))?
            .iter()
            .map(|s| {
                let v = s
                    .get("value")
                    .ok_or_else(|| unexpected("a vector sample without \"value\"".into()))?;
                Ok(vec![pair(v).map_err(unexpected)?])
            })
            .collect(),
        Some("matrix") => array(result)
            .ok_or_else(|| unexpected("a matrix result that is not an array".into()))?
            .iter()
            .map(|s| {
                array(s.get("values"))
                    .ok_or_else(|| unexpected("a matrix series without \"values\"".into()))?
                    .iter()
                    .map(|v| pair(v).map_err(unexpected))
                    .collect()
            })
            .collect(),
        Some("scalar") => {
            let v = result.ok_or_else(|| unexpected("a scalar without \"result\"".into()))?;
            Ok(vec![vec![pair(v).map_err(unexpected)?]])
        }
        other => Err(unexpected(format!(
            "result type {} where a vector, matrix or scalar was expected",
            other.map_or_else(|| "(missing)".to_string(), |t| format!("{t:?}"))
        ))),
    }
}

/// The envelope of a Prometheus API answer: the JSON of a success, or the
/// typed error of a refusal, an HTTP failure or an answer that is none.
fn envelope(url: &str, status: u16, body: &[u8]) -> Result<Value, MetricsError> {
    let unexpected = |detail: String| MetricsError::Unexpected {
        url: url.to_string(),
        detail,
    };
    let json: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if !(200..300).contains(&status) => {
            return Err(MetricsError::Status {
                url: url.to_string(),
                status,
                excerpt: excerpt(body),
            });
        }
        Err(e) => {
            return Err(unexpected(format!("not JSON ({e}): {}", excerpt(body))));
        }
    };
    match json.get("status").and_then(Value::as_str) {
        Some("success") if (200..300).contains(&status) => {}
        Some("error") => {
            let field = |k: &str| {
                json.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("(none given)")
                    .chars()
                    .take(300)
                    .collect::<String>()
            };
            return Err(MetricsError::Query {
                url: url.to_string(),
                error_type: field("errorType"),
                error: field("error"),
            });
        }
        _ if !(200..300).contains(&status) => {
            return Err(MetricsError::Status {
                url: url.to_string(),
                status,
                excerpt: excerpt(body),
            });
        }
        _ => {
            return Err(unexpected(format!(
                "no \"status\":\"success\" in {}",
                excerpt(body)
            )));
        }
    }
    Ok(json)
}

fn array(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array)
}

/// `[1795547706.714, "0.199"]` → `(1795547706.714, 0.199)`; the value may be
/// `"NaN"`, `"+Inf"` or `"-Inf"`.
fn pair(v: &Value) -> Result<(f64, f64), String> {
    let a = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("a sample that is not [time, \"value\"]: {v}"))?;
    let t = a[0]
        .as_f64()
        .ok_or_else(|| format!("a sample time that is not a number: {}", a[0]))?;
    let text = a[1]
        .as_str()
        .ok_or_else(|| format!("a sample value that is not a string: {}", a[1]))?;
    let x = super::exposition::parse_value(text)
        .ok_or_else(|| format!("a sample value that is not a number: {text:?}"))?;
    Ok((t, x))
}

impl PrometheusSource {
    pub fn new(
        base_url: &str,
        step: Duration,
        timeout: Duration,
        token: Option<String>,
        queries: QueryTemplates,
    ) -> Result<Self, MetricsError> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(MetricsError::Config(format!(
                "Prometheus url {:?} must start with http:// or https://",
                display_url(base_url)
            )));
        }
        if step.is_zero() {
            return Err(MetricsError::Config(
                "[metrics] step must be longer than zero".into(),
            ));
        }
        for (name, t) in [
            ("requests", &queries.requests),
            ("errors", &queries.errors),
            ("latency", &queries.latency),
        ] {
            if t.trim().is_empty() {
                return Err(MetricsError::Config(format!(
                    "[metrics.queries] {name} is empty"
                )));
            }
        }
        if !queries.latency.contains("{q}") {
            return Err(MetricsError::Config(
                "[metrics.queries] latency must contain {q} (the quantile: 0.5, 0.95, 0.99)".into(),
            ));
        }
        let base = base_url.trim_end_matches('/').to_string();
        Ok(PrometheusSource {
            shown: display_url(&base),
            base,
            step,
            timeout,
            token: token.map(Secret),
            queries,
            client: client(timeout)?,
        })
    }

    pub fn from_config(cfg: &MetricsConfig) -> Result<Self, MetricsError> {
        PrometheusSource::new(
            &cfg.url,
            cfg.step.0,
            cfg.timeout.0,
            token_from_env(cfg.token_env.as_deref())?,
            cfg.queries.clone(),
        )
    }

    /// The base URL, without credentials.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// GET `path` with `params` (and the token): the URL as shown, the
    /// status and the body.
    async fn get(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(String, u16, Vec<u8>), MetricsError> {
        let shown = format!("{}{path}", self.shown);
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .query(params);
        if let Some(t) = &self.token {
            req = req.bearer_auth(&t.0);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(&shown, self.timeout, e))?;
        let status = resp.status().as_u16();
        let body = read_body(&shown, self.timeout, resp).await?;
        Ok((shown, status, body))
    }

    async fn call(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<Series>, MetricsError> {
        let (shown, status, body) = self.get(path, params).await?;
        parse_answer(&shown, status, &body)
    }

    async fn instant(&self, query: String, at: DateTime<Utc>) -> Result<Vec<Series>, MetricsError> {
        self.call(
            "/api/v1/query",
            &[("query", query), ("time", unix_seconds(at))],
        )
        .await
    }

    async fn range(
        &self,
        query: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>, MetricsError> {
        let step_s = format!("{:.3}", step.as_secs_f64());
        self.call(
            "/api/v1/query_range",
            &[
                ("query", query),
                ("start", unix_seconds(start)),
                ("end", unix_seconds(end)),
                ("step", step_s),
            ],
        )
        .await
    }

    fn queries(&self, label: &str, step: Duration) -> [String; 5] {
        let t = &self.queries;
        [
            render_query(&t.requests, label, step, None),
            render_query(&t.errors, label, step, None),
            render_query(&t.latency, label, step, Some(QUANTILES[0])),
            render_query(&t.latency, label, step, Some(QUANTILES[1])),
            render_query(&t.latency, label, step, Some(QUANTILES[2])),
        ]
    }

    /// The queries of one track of `label` (see [`track_template`]).
    fn track_queries(
        &self,
        label: &str,
        track_label: &str,
        track: &str,
    ) -> Result<[String; 5], MetricsError> {
        let t = &self.queries;
        let step = self.step;
        Ok([
            render_query(
                &track_template(&t.requests, track_label, track)?,
                label,
                step,
                None,
            ),
            render_query(
                &track_template(&t.errors, track_label, track)?,
                label,
                step,
                None,
            ),
            render_query(
                &track_template(&t.latency, track_label, track)?,
                label,
                step,
                Some(QUANTILES[0]),
            ),
            render_query(
                &track_template(&t.latency, track_label, track)?,
                label,
                step,
                Some(QUANTILES[1]),
            ),
            render_query(
                &track_template(&t.latency, track_label, track)?,
                label,
                step,
                Some(QUANTILES[2]),
            ),
        ])
    }

    /// One step from the five queries, evaluated at `at`; `None` without
    /// requests data.
    async fn point_at(
        &self,
        [r, e, q50, q95, q99]: [String; 5],
        at: DateTime<Utc>,
    ) -> Result<Option<MetricPoint>, MetricsError> {
        let (rq, eq) = (r.clone(), e.clone());
        let (r, e, q50, q95, q99) = tokio::try_join!(
            self.instant(r, at),
            self.instant(e, at),
            self.instant(q50, at),
            self.instant(q95, at),
            self.instant(q99, at),
        )?;
        let shown = format!("{}/api/v1/query", self.shown);
        let latest = |s: Vec<Series>| -> Vec<(f64, f64)> {
            s.into_iter().filter_map(|v| v.last().copied()).collect()
        };
        let (r, e) = (latest(r), latest(e));
        for (what, query, values) in [("requests", &rq, &r), ("errors", &eq, &e)] {
            for (_, v) in values {
                usable_count(&shown, what, query, None, *v)?;
            }
        }
        Ok(match sum_values(&r) {
            None => None,
            Some(requests) => Some(MetricPoint {
                at,
                step_s: self.step.as_secs_f64(),
                requests,
                errors: sum_values(&e).unwrap_or(0.0),
                p50_ms: one_latency(&shown, &latest(q50))?,
                p95_ms: one_latency(&shown, &latest(q95))?,
                p99_ms: one_latency(&shown, &latest(q99))?,
            }),
        })
    }

    /// The latest step of each label, evaluated at one common instant.
    pub async fn poll(
        &self,
        labels: &[String],
    ) -> Result<HashMap<String, Option<MetricPoint>>, MetricsError> {
        self.poll_tracked(labels, &[]).await?.into_points(labels)
    }

    /// [`poll`](Self::poll) plus the canary and stable tracks of `tracks`,
    /// all evaluated at the same instant. The reads of the labels and of
    /// the tracks (five queries each) are asked concurrently, at most
    /// [`POLL_CONCURRENCY`] at once, in this one task: a watch over many
    /// labels costs about one round trip, not one per label. A label's own
    /// failure (a NaN count, a refused query, no answer within its timeout
    /// from when it began, or none before the poll's end — a step or the
    /// timeout, whichever is longer) is kept in [`Polled::errors`] and the other
    /// labels are still read: a slow label does not hold the others past
    /// the deadline. A Prometheus unreachable fails the whole poll.
    pub async fn poll_tracked(
        &self,
        labels: &[String],
        tracks: &[TrackSelector],
    ) -> Result<Polled, MetricsError> {
        use futures_util::stream::{self, StreamExt};

        let at = Utc::now();
        // Each read has its own timeout from when it begins (a read that
        // waited for a free slot is not cut short by the others' time),
        // and the whole poll ends within a step (or the timeout, when that
        // is longer): a read still waiting then is that label's timeout.
        let deadline = tokio::time::Instant::now() + self.timeout.max(self.step);
        // Every read's queries first (a track_label that is no label name
        // fails the poll before anything is asked): each label's, then
        // each track's canary and stable.
        let mut reads: Vec<[String; 5]> =
            labels.iter().map(|l| self.queries(l, self.step)).collect();
        for t in tracks {
            reads.push(self.track_queries(&t.env, &t.label, CANARY_TRACK)?);
            reads.push(self.track_queries(&t.env, &t.label, STABLE_TRACK)?);
        }
        let late = MetricsError::Timeout {
            url: format!("{}/api/v1/query", self.shown),
            timeout_ms: self.timeout.as_millis(),
        };
        let mut answers: Vec<(usize, Result<Option<MetricPoint>, MetricsError>)> =
            stream::iter(reads.into_iter().enumerate())
                .map(|(i, queries)| {
                    let late = late.clone();
                    async move {
                        let read = tokio::time::timeout(self.timeout, self.point_at(queries, at));
                        let answer = tokio::time::timeout_at(deadline, read)
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or(Err(late));
                        (i, answer)
                    }
                })
                .buffer_unordered(POLL_CONCURRENCY)
                .collect()
                .await;
        answers.sort_by_key(|(i, _)| *i);
        let mut answers = answers.into_iter().map(|(_, a)| a);
        let mut out = Polled::default();
        let mut unreachable = None;
        let mut keep_unreachable = |e: MetricsError| match e {
            e @ MetricsError::Unreachable { .. } => {
                unreachable.get_or_insert(e);
                None
            }
            e => Some(e),
        };
        for label in labels {
            match answers.next().unwrap_or(Err(late.clone())) {
                Ok(point) => {
                    out.points.insert(label.clone(), point);
                }
                Err(e) => {
                    if let Some(e) = keep_unreachable(e) {
                        out.errors.insert(label.clone(), e);
                    }
                }
            }
        }
        // An empty answer for a label the source has others beside is
        // named (one label-values call, only when some label is empty).
        let empty: Vec<&String> = labels
            .iter()
            .filter(|l| matches!(out.points.get(*l), Some(None)))
            .collect();
        let lookback = self
            .step
            .checked_mul(2)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map_or(chrono::Duration::days(1), |d| {
                d.min(chrono::Duration::days(1))
            });
        for (label, e) in self
            .no_series("/api/v1/query", &empty, at - lookback, at)
            .await
        {
            out.points.remove(&label);
            out.errors.insert(label, e);
        }
        for t in tracks {
            let canary = answers.next().unwrap_or(Err(late.clone()));
            let stable = answers.next().unwrap_or(Err(late.clone()));
            match canary.and_then(|c| stable.map(|s| (c, s))) {
                Ok((canary, stable)) => {
                    out.tracks.insert(t.clone(), TrackPoints { canary, stable });
                }
                Err(e) => {
                    if let Some(e) = keep_unreachable(e) {
                        out.track_errors.insert(t.env.clone(), e);
                    }
                }
            }
        }
        match unreachable {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// The one rule for a count (requests, errors) Prometheus answers, live or
/// over a range (history, the seasonal offsets): NaN, ±Inf or a number
/// below zero is garbage from the source (a NaN counter, a division in the
/// template, a `delta()` or a subtraction across a counter reset), not "no
/// traffic" — which is an absent sample or 0 — and is named as unusable.
/// Read as 0, a negative request count was a throughput collapse (an
/// automatic rollback from garbage) and a negative error count hid the
/// errors of the other series. Less than one count below zero (a template
/// that subtracts: the extrapolation of each `increase()`, float
/// rounding) passes, as zero.
/// (A NaN latency quantile is different: no traffic at that step, no data.)
fn usable_count(
    url: &str,
    what: &str,
    query: &str,
    at_ms: Option<i64>,
    v: f64,
) -> Result<f64, MetricsError> {
    if v.is_finite() && v > -COUNT_ROUNDING {
        return Ok(v.max(0.0));
    }
    let at = at_ms
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
        .unwrap_or_default();
    Err(MetricsError::Unusable {
        url: url.to_string(),
        metric: format!("the {what} query {query}{at}"),
        value: v.to_string(),
    })
}

/// How far below zero a count may be and still read as 0: less than one
/// request — a template that subtracts two `increase()`s (5xx minus the
/// health checks' 5xx) gets fractions of a count from each one's
/// extrapolation, and float rounding far less. A whole count below zero is
/// no rounding: garbage.
const COUNT_ROUNDING: f64 = 1.0;

/// Sum of the finite values; `None` when there are none (no data, or NaN only).
fn sum_values(values: &[(f64, f64)]) -> Option<f64> {
    let finite: Vec<f64> = values
        .iter()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .collect();
    (!finite.is_empty()).then(|| finite.iter().sum::<f64>().max(0.0))
}

/// A latency quantile in seconds → milliseconds; NaN (no traffic) and ±Inf
/// (no finite bucket) are unknown. More than one series means the template
/// does not aggregate.
fn one_latency(url: &str, values: &[(f64, f64)]) -> Result<Option<f64>, MetricsError> {
    if values.len() > 1 {
        return Err(MetricsError::Unexpected {
            url: url.to_string(),
            detail: format!(
                "the latency query returned {} series; it must return one (aggregate, e.g. sum by (le))",
                values.len()
            ),
        });
    }
    Ok(values
        .first()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|s| s * 1000.0))
}

#[cfg(test)]
mod tests {
    use super::history::align;
    use super::*;

    const URL: &str = "http://prom:9090/api/v1/query";

    #[test]
    fn the_env_matcher_becomes_any_value() {
        let t = QueryTemplates::default();
        assert_eq!(
            env_selector(&t.requests),
            Some(("env".into(), r#"http_requests_total{env!=""}"#.into()))
        );
        assert_eq!(
            env_selector(
                r#"sum(rate(job:reqs:rate5m{ service = "api", deployment =~ "{env}" ,code!="x"}[{step}]))"#
            ),
            Some((
                "deployment".into(),
                r#"job:reqs:rate5m{ service = "api", deployment!="" ,code!="x"}"#.into()
            ))
        );
        assert_eq!(
            env_selector(r#"sum(rate({__name__="reqs",env="{env}"}[1m]))"#),
            Some(("env".into(), r#"{__name__="reqs",env!=""}"#.into()))
        );
        for none in [
            r#"sum(rate(reqs{env!="{env}"}[1m]))"#,
            r#"sum(rate(reqs{env="{env}-api"}[1m]))"#,
            r#"label_replace(vector(1), "x", "{env}", "", "")"#,
            r#"reqs{env="a"} + "{env}""#,
            "sum(rate(reqs[1m]))",
        ] {
            assert_eq!(env_selector(none), None, "{none}");
        }
    }

    #[test]
    fn templates_are_filled_and_escaped() {
        let t = QueryTemplates::default();
        let q = render_query(
            &t.latency,
            "prod\"uction",
            Duration::from_secs(10),
            Some(0.95),
        );
        assert_eq!(
            q,
            r#"histogram_quantile(0.95, sum by (le) (increase(http_request_duration_seconds_bucket{env="prod\"uction"}[10s])))"#
        );
        assert_eq!(prom_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(prom_duration(Duration::from_secs(90)), "90s");
        assert_eq!(
            render_query(&t.errors, "staging", Duration::from_secs(5), None),
            r#"sum(increase(http_requests_total{env="staging",code=~"5.."}[5s]))"#
        );
    }

    #[test]
    fn track_templates_narrow_every_env_matcher() {
        let t = QueryTemplates::default();
        let q = render_query(
            &track_template(&t.errors, "track", "canary").unwrap(),
            "production",
            Duration::from_secs(2),
            None,
        );
        assert_eq!(
            q,
            r#"sum(increase(http_requests_total{env="production",track="canary",code=~"5.."}[2s]))"#
        );
        let q = track_template(&t.latency, "deployment_track", "stable").unwrap();
        assert!(
            q.contains(r#"env="{env}",deployment_track="stable"}"#),
            "{q}"
        );
        let e = track_template("sum(rate(x[1m]))", "track", "canary").unwrap_err();
        assert!(e.to_string().contains("no \"{env}\" matcher"), "{e}");
        let e = track_template(&t.requests, "tr-ack", "canary").unwrap_err();
        assert!(e.to_string().contains("not a Prometheus label name"), "{e}");
        assert!(track_template(&t.requests, "", "canary").is_err());
    }

    #[test]
    fn vector_matrix_scalar() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"env":"a"},"value":[1795547706.714,"0.199"]},{"metric":{},"value":[1795547706.714,"NaN"]}]}}"#;
        let s = parse_answer(URL, 200, v).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], vec![(1795547706.714, 0.199)]);
        assert!(s[1][0].1.is_nan());
        let m = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1704067500,"0.0088"],[1704067510,"+Inf"]]}]}}"#;
        let s = parse_answer(URL, 200, m).unwrap();
        assert_eq!(s[0][0], (1704067500.0, 0.0088));
        assert_eq!(s[0][1].1, f64::INFINITY);
        let sc =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1704067500,"3"]}}"#;
        assert_eq!(
            parse_answer(URL, 200, sc).unwrap(),
            vec![vec![(1704067500.0, 3.0)]]
        );
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse_answer(URL, 200, empty).unwrap().is_empty());
    }

    #[test]
    fn every_kind_of_failure_is_named() {
        let e = parse_answer(
            URL,
            400,
            br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Prometheus http://prom:9090/api/v1/query refused the query (bad_data): 1:5: parse error: unexpected"
        );
        let e = parse_answer(
            URL,
            503,
            br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#,
        )
        .unwrap_err();
        assert!(matches!(e, MetricsError::Query { ref error_type, .. } if error_type == "timeout"));
        let e = parse_answer(URL, 404, b"404 page not found\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "metrics source http://prom:9090/api/v1/query answered HTTP 404: 404 page not found"
        );
        let e = parse_answer(URL, 200, b"<html>proxy login</html>").unwrap_err();
        assert!(
            matches!(e, MetricsError::Unexpected { ref detail, .. } if detail.contains("not JSON")),
            "{e}"
        );
        let e = parse_answer(URL, 502, br#"{"message":"bad gateway"}"#).unwrap_err();
        assert!(matches!(e, MetricsError::Status { status: 502, .. }), "{e}");
        for bad in [
            &br#"{"status":"success"}"#[..],
            br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":["x","2"]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"two"]}]}}"#,
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}}]}}"#,
            br#"{"status":"weird"}"#,
        ] {
            let e = parse_answer(URL, 200, bad).unwrap_err();
            assert!(matches!(e, MetricsError::Unexpected { .. }), "{e}");
        }
    }

    #[test]
    fn values_map_to_the_three_states() {
        assert_eq!(sum_values(&[]), None);
        assert_eq!(sum_values(&[(0.0, f64::NAN)]), None);
        assert_eq!(sum_values(&[(0.0, 2.0), (0.0, 3.0)]), Some(5.0));
        assert_eq!(one_latency(URL, &[]).unwrap(), None);
        assert_eq!(one_latency(URL, &[(0.0, f64::NAN)]).unwrap(), None);
        assert_eq!(one_latency(URL, &[(0.0, f64::INFINITY)]).unwrap(), None);
        assert_eq!(one_latency(URL, &[(0.0, 0.12)]).unwrap(), Some(120.0));
        assert!(one_latency(URL, &[(0.0, 0.1), (0.0, 0.2)]).is_err());
    }

    #[test]
    fn matrices_align_by_timestamp() {
        let r = vec![vec![(100.0, 50.0), (110.0, 60.0), (130.0, 0.0)]];
        // No 5xx at 110 (left out), errors from two series at 100.
        let e = vec![vec![(100.0, 1.0), (130.0, 0.0)], vec![(100.0, 2.0)]];
        let q50 = vec![vec![(100.0, 0.04), (110.0, 0.05), (130.0, f64::NAN)]];
        let q95 = vec![vec![(110.0, 0.2)]];
        let q99: Vec<Series> = vec![];
        let pts = align(
            URL,
            Duration::from_secs(10),
            ("r", r.clone()),
            ("e", e.clone()),
            [q50.clone(), q95.clone(), q99.clone()],
        )
        .unwrap();
        assert_eq!(pts.len(), 3);
        assert_eq!(pts[0].at.timestamp(), 100);
        assert_eq!((pts[0].requests, pts[0].errors), (50.0, 3.0));
        assert_eq!((pts[0].p50_ms, pts[0].p95_ms), (Some(40.0), None));
        assert_eq!((pts[1].errors, pts[1].p95_ms), (0.0, Some(200.0)));
        assert_eq!(pts[2].requests, 0.0);
        assert_eq!(pts[2].p50_ms, None);
        assert_eq!(pts[2].step_s, 10.0);
        // A step whose count is no number is a gap of the history (NaN
        // counts, no quantiles), not the end of the read: the other steps
        // keep their figures.
        let mut bad = r.clone();
        bad[0][1].1 = f64::NAN;
        let pts = align(
            URL,
            Duration::from_secs(10),
            ("r", bad),
            ("e", e.clone()),
            [q50.clone(), q95.clone(), q99.clone()],
        )
        .unwrap();
        assert_eq!(pts.len(), 3);
        assert_eq!(pts[1].at.timestamp(), 110);
        assert!(pts[1].is_gap(), "{:?}", pts[1]);
        assert_eq!((pts[1].p50_ms, pts[1].p95_ms), (None, None));
        assert!(!pts[0].is_gap() && !pts[2].is_gap());
        assert_eq!((pts[0].requests, pts[0].errors), (50.0, 3.0));
        let mut bad = e.clone();
        bad[1][0].1 = f64::INFINITY;
        let pts = align(
            URL,
            Duration::from_secs(10),
            ("r", r),
            ("e", bad),
            [q50, q95, q99],
        )
        .unwrap();
        assert_eq!(pts.iter().filter(|p| p.is_gap()).count(), 1);
        // The rule it shares with the live read, where it stays an error.
        let err = usable_count(URL, "requests", "r", Some(110_000), f64::NAN).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "metrics source {URL} gives unusable numbers: the requests query r at 1970-01-01 00:01:50 UTC is NaN, which no count can be"
            )
        );
    }

    /// A count below zero (a `delta()` or a subtraction across a counter
    /// reset) is garbage, like NaN: live, an error naming the query; in
    /// the history, a gap. Before, it was clamped to 0: a negative request
    /// count read as a throughput collapse and rolled a healthy release
    /// back, a negative error count as a healthy window.
    #[test]
    fn a_count_below_zero_is_garbage_not_zero() {
        let err = usable_count(URL, "requests", "r", None, -100.0).unwrap_err();
        assert!(matches!(err, MetricsError::Unusable { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "metrics source {URL} gives unusable numbers: the requests query r is -100, which no count can be"
            )
        );
        assert_eq!(
            err.to_fix(),
            Some(crate::backends::metrics::MetricsFix::Data)
        );
        assert!(usable_count(URL, "errors", "e", None, -1.0).is_err());
        // A fraction of a count below zero is extrapolation, not garbage.
        assert_eq!(usable_count(URL, "errors", "e", None, -0.3).unwrap(), 0.0);
        // Float rounding of a template that subtracts is zero, not garbage.
        assert_eq!(usable_count(URL, "errors", "e", None, -1e-12).unwrap(), 0.0);
        assert_eq!(usable_count(URL, "errors", "e", None, 0.0).unwrap(), 0.0);
        let r = vec![vec![(100.0, 50.0), (110.0, -50.0), (120.0, 50.0)]];
        let e = vec![vec![(100.0, 1.0), (110.0, 1.0), (120.0, -3.0)]];
        let pts = align(
            URL,
            Duration::from_secs(10),
            ("r", r),
            ("e", e),
            [vec![], vec![], vec![]],
        )
        .unwrap();
        assert_eq!(pts.len(), 3);
        assert!(!pts[0].is_gap());
        assert!(pts[1].is_gap(), "a negative request count: {:?}", pts[1]);
        assert!(pts[2].is_gap(), "a negative error count: {:?}", pts[2]);
    }

    #[test]
    fn config_is_checked() {
        let t = QueryTemplates::default();
        let d = Duration::from_secs(10);
        assert!(PrometheusSource::new("prom:9090", d, d, None, t.clone()).is_err());
        assert!(PrometheusSource::new("http://p", Duration::ZERO, d, None, t.clone()).is_err());
        let mut no_q = t.clone();
        no_q.latency = "histogram_quantile(0.9, x)".into();
        assert!(PrometheusSource::new("http://p", d, d, None, no_q).is_err());
        let p = PrometheusSource::new("http://u:pw@p:9090/", d, d, Some("tok".into()), t).unwrap();
        assert_eq!(p.url(), "http://p:9090");
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("tok\"") && !dbg.contains("pw"), "{dbg}");
    }
}
