//! History: the five queries over a range, aligned by step (the
//! baseline), and the requests of a seasonal reference (the same steps a
//! day or a week earlier).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{PrometheusSource, Series, one_latency, render_query, sum_values, usable_count};
use crate::backends::metrics::{MetricPoint, MetricsError};

impl PrometheusSource {
    /// Points over `[start, end]` every `step`, aligned by timestamp; steps
    /// without requests data are left out (as Prometheus leaves them out).
    /// A long span is asked in pieces that stay under Prometheus' 11,000
    /// points per series: a `[monitor] baseline` of a day at 2 s steps
    /// (43,200) was refused as `bad_data`, and every window failed telling
    /// to fix `[metrics.queries]`.
    pub async fn history(
        &self,
        label: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<MetricPoint>, MetricsError> {
        if step.is_zero() {
            return Err(MetricsError::Config(
                "history step must be longer than zero".into(),
            ));
        }
        if end < start {
            return Ok(Vec::new());
        }
        let step_c = chrono::Duration::from_std(step)
            .map_err(|_| MetricsError::Config(format!("a step of {step:?} is too long")))?;
        let queries = self.queries(label, step);
        let [mut r, mut e, mut q50, mut q95, mut q99]: [Vec<Series>; 5] = Default::default();
        let mut from = start;
        while from <= end {
            let to = (from + step_c * (MAX_POINTS - 1)).min(end);
            let [qr, qe, q1, q2, q3] = queries.clone();
            let (pr, pe, p1, p2, p3) = tokio::try_join!(
                self.range(qr, from, to, step),
                self.range(qe, from, to, step),
                self.range(q1, from, to, step),
                self.range(q2, from, to, step),
                self.range(q3, from, to, step),
            )?;
            r.extend(pr);
            e.extend(pe);
            q50.extend(p1);
            q95.extend(p2);
            q99.extend(p3);
            from = to + step_c;
        }
        if r.is_empty() {
            let label = label.to_string();
            if let Some(e) = self
                .no_series("/api/v1/query_range", &[&label], start, end)
                .await
                .remove(&label)
            {
                return Err(e);
            }
        }
        let shown = format!("{}/api/v1/query_range", self.shown);
        let [rq, eq, ..] = self.queries(label, step);
        align(&shown, step, (&rq, r), (&eq, e), [q50, q95, q99])
    }

    /// Requests per `step` of `label` over `[start, end]` as they were
    /// `ago` earlier — what PromQL's `offset` gives, for any template —
    /// keyed by the time they stand for now: a seasonal reference (the
    /// same hour yesterday, last week). Long spans are asked in pieces
    /// that stay under Prometheus' 11,000 points per series.
    pub async fn requests_ago(
        &self,
        label: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
        ago: Duration,
    ) -> Result<Vec<(DateTime<Utc>, f64)>, MetricsError> {
        if step.is_zero() {
            return Err(MetricsError::Config(
                "history step must be longer than zero".into(),
            ));
        }
        let shift = chrono::Duration::from_std(ago).map_err(|_| {
            MetricsError::Config(format!("a reference offset of {ago:?} is too long"))
        })?;
        let step_c = chrono::Duration::from_std(step)
            .map_err(|_| MetricsError::Config(format!("a step of {step:?} is too long")))?;
        let query = render_query(&self.queries.requests, label, step, None);
        let shown = format!("{}/api/v1/query_range", self.shown);
        let mut out = Vec::new();
        let mut from = start;
        while from <= end {
            let to = (from + step_c * (MAX_POINTS - 1)).min(end);
            let series = self
                .range(query.clone(), from - shift, to - shift, step)
                .await?;
            for (ms, values) in by_time(series) {
                let Some(at) = DateTime::from_timestamp_millis(ms) else {
                    continue;
                };
                let earlier = format!("{query} ({} earlier)", crate::domain::HumanDuration(ago));
                if let Some(e) = unusable_step(&shown, "requests", &earlier, ms, &values) {
                    // A gap of the reference (NaN), counted by its reader.
                    tracing::warn!("seasonal reference: a step left out ({e})");
                    out.push((at + shift, f64::NAN));
                    continue;
                }
                let pairs: Vec<(f64, f64)> = values.iter().map(|v| (0.0, *v)).collect();
                if let Some(n) = sum_values(&pairs) {
                    out.push((at + shift, n));
                }
            }
            from = to + step_c;
        }
        Ok(out)
    }
}

/// Points asked of one range query (Prometheus refuses more than 11,000).
const MAX_POINTS: i32 = 10_000;
/// A history step (the baseline's, the seasonal offsets') whose count is
/// no number: the [`usable_count`] error of its first such value. Unlike
/// the live read, such a step is a gap — no data at that step, never
/// health and never an alarm — which the reader counts and says; one bad
/// step does not void the rest of the history.
fn unusable_step(
    url: &str,
    what: &str,
    query: &str,
    at_ms: i64,
    values: &[f64],
) -> Option<MetricsError> {
    values
        .iter()
        .find_map(|v| usable_count(url, what, query, Some(at_ms), *v).err())
}

fn by_time(series: Vec<Series>) -> BTreeMap<i64, Vec<f64>> {
    let mut m: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for s in series {
        for (t, v) in s {
            m.entry((t * 1000.0).round() as i64).or_default().push(v);
        }
    }
    m
}

/// Steps of the range answers by timestamp: a step without requests data
/// is left out, a NaN quantile is no latency figure for its step (no
/// traffic), and a step whose requests or errors count is no number is a
/// gap ([`unusable_step`]): a point with NaN counts and no quantiles, the
/// detector's "no data at this step" (see [`MetricPoint::is_gap`]).
pub(super) fn align(
    url: &str,
    step: Duration,
    (rq, requests): (&str, Vec<Series>),
    (eq, errors): (&str, Vec<Series>),
    latency: [Vec<Series>; 3],
) -> Result<Vec<MetricPoint>, MetricsError> {
    let requests = by_time(requests);
    let errors = by_time(errors);
    let latency = latency.map(by_time);
    let mut out = Vec::with_capacity(requests.len());
    let mut first_bad: Option<MetricsError> = None;
    let mut bad = 0;
    for (ms, values) in &requests {
        let Some(at) = DateTime::from_timestamp_millis(*ms) else {
            continue;
        };
        let unusable = unusable_step(url, "requests", rq, *ms, values).or_else(|| {
            errors
                .get(ms)
                .and_then(|v| unusable_step(url, "errors", eq, *ms, v))
        });
        if let Some(e) = unusable {
            bad += 1;
            first_bad.get_or_insert(e);
            out.push(MetricPoint::gap(at, step.as_secs_f64()));
            continue;
        }
        let pairs: Vec<(f64, f64)> = values.iter().map(|v| (0.0, *v)).collect();
        let Some(req) = sum_values(&pairs) else {
            continue;
        };
        let err = errors
            .get(ms)
            .and_then(|v| sum_values(&v.iter().map(|x| (0.0, *x)).collect::<Vec<_>>()))
            .unwrap_or(0.0);
        let mut q = [None; 3];
        for (slot, l) in q.iter_mut().zip(&latency) {
            let vals: Vec<(f64, f64)> = l
                .get(ms)
                .map(|v| v.iter().map(|x| (0.0, *x)).collect())
                .unwrap_or_default();
            *slot = one_latency(url, &vals)?;
        }
        out.push(MetricPoint {
            at,
            step_s: step.as_secs_f64(),
            requests: req,
            errors: err,
            p50_ms: q[0],
            p95_ms: q[1],
            p99_ms: q[2],
        });
    }
    if let Some(e) = first_bad {
        tracing::warn!("history: {bad} step(s) left as gaps, the first: {e}");
    }
    Ok(out)
}
