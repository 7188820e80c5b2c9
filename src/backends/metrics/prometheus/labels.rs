//! Why a label has no series: the env label a query template selects by,
//! its values over a range (one label-values call, asked only when a
//! result is empty) and the [`MetricsError::NoSeries`] that names them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{PrometheusSource, array, envelope, unix_seconds};
use crate::backends::metrics::{MetricsError, excerpt};

/// The env label a template selects by and a selector of the same series
/// with any value of it: `sum(increase(http_requests_total{env="{env}"}[1m]))`
/// → `("env", "http_requests_total{env!=\"\"}")`. `None` when the template
/// selects by no `NAME="{env}"` (or `=~`) matcher inside a `{…}`.
pub fn env_selector(template: &str) -> Option<(String, String)> {
    let at = template.find("\"{env}\"")?;
    let end = at + "\"{env}\"".len();
    let before = template[..at].trim_end();
    let before = before
        .strip_suffix("=~")
        .or_else(|| before.strip_suffix('='))
        .filter(|b| !b.ends_with('!'))?
        .trim_end();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let name_at = before.trim_end_matches(ident).len();
    let name = &before[name_at..];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let open = template[..name_at].rfind('{')?;
    if template[open..name_at].contains('}') {
        return None;
    }
    let close = end + template[end..].find('}')?;
    let metric_at = template[..open]
        .trim_end_matches(|c: char| ident(c) || c == ':')
        .len();
    let selector = format!(
        "{}{name}!=\"\"{}",
        &template[metric_at..name_at],
        &template[end..=close]
    );
    Some((name.to_string(), selector))
}

impl PrometheusSource {
    /// The name of the env label the requests template selects by and its
    /// values, of the series it would read over `[start, end]` (one
    /// label-values call); `None` when the template selects by no
    /// `NAME="{env}"`.
    async fn env_values(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Option<(String, Vec<String>)>, MetricsError> {
        let Some((name, selector)) = env_selector(&self.queries.requests) else {
            return Ok(None);
        };
        let path = format!("/api/v1/label/{name}/values");
        let (shown, status, body) = self
            .get(
                &path,
                &[
                    ("match[]", selector),
                    ("start", unix_seconds(start)),
                    ("end", unix_seconds(end)),
                ],
            )
            .await?;
        let json = envelope(&shown, status, &body)?;
        let values = array(json.get("data")).ok_or_else(|| MetricsError::Unexpected {
            url: shown.clone(),
            detail: format!("label values that are no array: {}", excerpt(&body)),
        })?;
        Ok(Some((
            name,
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )))
    }

    /// Why `labels`, whose requests query (at `path`, named in the error)
    /// answered no series over `[start, end]`, have none:
    /// [`MetricsError::NoSeries`] for each that the env label's values
    /// (asked once, only now) lack among others, naming that label as the
    /// template does (`env`, `deployment`, …). Nothing when the source has
    /// no series for any label (no traffic yet: a Prometheus scrapes its
    /// first ~5 s after it starts) or the question cannot be asked or
    /// answered (logged): it only explains an empty answer, it never fails
    /// a read.
    pub(super) async fn no_series(
        &self,
        path: &str,
        labels: &[&String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> HashMap<String, MetricsError> {
        if labels.is_empty() {
            return HashMap::new();
        }
        let (name, values) = match self.env_values(start, end).await {
            Ok(Some(v)) => v,
            Ok(None) => return HashMap::new(),
            Err(e) => {
                tracing::debug!("no series for {labels:?}, and no label values either: {e}");
                return HashMap::new();
            }
        };
        if values.is_empty() {
            return HashMap::new();
        }
        let seen: Vec<&str> = values.iter().map(String::as_str).collect();
        let shown = format!("{}{path}", self.shown);
        labels
            .iter()
            .filter(|l| !values.contains(l))
            .map(|l| {
                let e = crate::backends::metrics::no_series_error(&shown, &name, l, &seen);
                (l.to_string(), e)
            })
            .collect()
    }
}
