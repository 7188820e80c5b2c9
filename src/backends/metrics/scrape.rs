//! The scrape source: read a `/metrics` text exposition and turn two
//! successive scrapes into one step per environment label.
//!
//! Requests are `http_requests_total{env=…}` summed over codes (or the
//! histogram's `_count` when there is no request counter), errors the 5xx
//! codes, latency quantiles come from `http_request_duration_seconds_bucket`
//! deltas, interpolated like Prometheus' `histogram_quantile`. A counter that
//! went down was reset: its new value is the delta.
//!
//! One-shot callers (`shipdeck status`) have no previous scrape in memory;
//! [`ScrapeSource::with_cache`] keeps the last scrape's counters in a small
//! JSON file per metrics URL (0600, in a 0700 directory) and uses it when it
//! is younger than [`CACHE_MAX_AGE`]. Its file I/O runs on the blocking
//! pool, never on the async runtime's threads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::exposition::{self, Exposition};
use super::{CANARY_TRACK, Polled, STABLE_TRACK, TrackPoints, TrackSelector};
use super::{
    MetricPoint, MetricsError, Secret, client, display_url, excerpt, histogram_quantile, read_body,
    token_from_env, transport_error,
};
use crate::config::MetricsConfig;

/// A cached scrape older than this is not used as the previous one.
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(600);

const REQUESTS: &str = "http_requests_total";
const BUCKET: &str = "http_request_duration_seconds_bucket";
const COUNT: &str = "http_request_duration_seconds_count";
const ENV_LABEL: &str = "env";

/// The cumulative counters of one env label in one scrape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelCounters {
    /// `http_requests_total` by `code` (`""` for samples without one).
    pub requests: BTreeMap<String, f64>,
    /// Cumulative bucket counts by the `le` text.
    pub buckets: BTreeMap<String, f64>,
    /// `http_request_duration_seconds_count`.
    pub count: Option<f64>,
}

/// One scrape: when, and the counters per env label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    pub labels: BTreeMap<String, LabelCounters>,
    /// The counters per env label and track (see [`track_key`]), for the
    /// track label names the scrape was asked to split by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tracks: BTreeMap<String, LabelCounters>,
    /// Per env label, the first sample of a read metric whose value no
    /// counter can hold (NaN, ±Inf, negative): `(sample, value)`. Such a
    /// sample is left out of the counters, and polling that label fails
    /// naming it rather than reading silence.
    #[serde(skip)]
    pub unusable: BTreeMap<String, (String, f64)>,
}

/// The key of one env label's track in [`Snapshot::tracks`]: the env value,
/// the track label's name and its value, joined by a separator no label
/// value of the exposition can hold unescaped.
pub fn track_key(env: &str, track_label: &str, track: &str) -> String {
    format!("{env}\u{1f}{track_label}\u{1f}{track}")
}

impl LabelCounters {
    fn add(&mut self, s: &exposition::Sample) {
        match s.name.as_str() {
            REQUESTS => {
                let code = s.label("code").unwrap_or("").to_string();
                *self.requests.entry(code).or_insert(0.0) += s.value;
            }
            BUCKET => {
                // Normalise "1" / "1.0" / "+Inf" spellings to one key.
                if let Some(bound) = s.label("le").and_then(exposition::parse_value) {
                    *self.buckets.entry(le_key(bound)).or_insert(0.0) += s.value;
                }
            }
            COUNT => *self.count.get_or_insert(0.0) += s.value,
            _ => {}
        }
    }
}

impl Snapshot {
    /// Gather the counters of every env label from an exposition.
    pub fn from_exposition(at: DateTime<Utc>, e: &Exposition) -> Snapshot {
        Snapshot::from_exposition_with_tracks(at, e, &[])
    }

    /// [`from_exposition`](Self::from_exposition), also keeping the
    /// counters of each value of the `track_labels` apart (an env's total
    /// still sums every track).
    pub fn from_exposition_with_tracks(
        at: DateTime<Utc>,
        e: &Exposition,
        track_labels: &[String],
    ) -> Snapshot {
        let mut labels: BTreeMap<String, LabelCounters> = BTreeMap::new();
        let mut tracks: BTreeMap<String, LabelCounters> = BTreeMap::new();
        let mut unusable: BTreeMap<String, (String, f64)> = BTreeMap::new();
        for s in &e.samples {
            let Some(env) = s.label(ENV_LABEL) else {
                continue;
            };
            if !matches!(s.name.as_str(), REQUESTS | BUCKET | COUNT) {
                continue;
            }
            if !(s.value.is_finite() && s.value >= 0.0) {
                unusable
                    .entry(env.to_string())
                    .or_insert_with(|| (sample_text(s), s.value));
                continue;
            }
            labels.entry(env.to_string()).or_default().add(s);
            for name in track_labels {
                if let Some(track) = s.label(name) {
                    tracks
                        .entry(track_key(env, name, track))
                        .or_default()
                        .add(s);
                }
            }
        }
        Snapshot {
            at,
            labels,
            tracks,
            unusable,
        }
    }

    /// The step from `prev` to `self` for `label`; `None` when either scrape
    /// lacks the label.
    pub fn step_since(&self, prev: &Snapshot, label: &str) -> Option<MetricPoint> {
        let cur = self.labels.get(label)?;
        let old = prev.labels.get(label)?;
        self.step_of(prev, cur, old)
    }

    /// The step of one track of an env label (`track_label="track"`);
    /// `None` when either scrape lacks it (no canary traffic, or the first
    /// scrape): a gap, never zero traffic.
    pub fn track_step_since(
        &self,
        prev: &Snapshot,
        env: &str,
        track_label: &str,
        track: &str,
    ) -> Option<MetricPoint> {
        let key = track_key(env, track_label, track);
        let cur = self.tracks.get(&key)?;
        let old = prev.tracks.get(&key)?;
        self.step_of(prev, cur, old)
    }

    fn step_of(
        &self,
        prev: &Snapshot,
        cur: &LabelCounters,
        old: &LabelCounters,
    ) -> Option<MetricPoint> {
        let step_s = (self.at - prev.at).num_milliseconds().max(0) as f64 / 1000.0;

        let mut requests = 0.0;
        let mut errors = 0.0;
        for (code, now) in &cur.requests {
            let d = counter_delta(old.requests.get(code).copied(), *now);
            requests += d;
            if is_5xx(code) {
                errors += d;
            }
        }

        // A histogram resets as a whole: if any bucket went down, every
        // bucket's current value is its delta.
        let reset = cur
            .buckets
            .iter()
            .any(|(le, n)| old.buckets.get(le).is_some_and(|o| *n < *o));
        let deltas: Vec<(f64, f64)> = cur
            .buckets
            .iter()
            .filter_map(|(le, now)| {
                let bound = exposition::parse_value(le)?;
                let d = if reset {
                    *now
                } else {
                    counter_delta(old.buckets.get(le).copied(), *now)
                };
                Some((bound, d))
            })
            .collect();
        if cur.requests.is_empty()
            && let Some(now) = cur.count
        {
            requests = counter_delta(old.count, now);
        }
        let q = |q: f64| histogram_quantile(q, &deltas).map(|s| s * 1000.0);
        Some(MetricPoint {
            at: self.at,
            step_s,
            requests,
            errors,
            p50_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
        })
    }
}

/// `name{k="v",…}` as the exposition wrote it (values escaped again).
fn sample_text(s: &exposition::Sample) -> String {
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", s.name, labels.join(","))
}

fn le_key(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".into()
    } else {
        bound.to_string()
    }
}

fn is_5xx(code: &str) -> bool {
    code.len() == 3 && code.starts_with('5') && code.chars().all(|c| c.is_ascii_digit())
}

/// Increase of a counter from `prev` to `now`: a series that did not exist
/// counted from zero; a counter that went down was reset.
fn counter_delta(prev: Option<f64>, now: f64) -> f64 {
    match prev {
        Some(p) if now >= p => now - p,
        _ => now,
    }
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    url: String,
    snapshot: Snapshot,
}

pub struct ScrapeSource {
    /// Where to fetch (may hold credentials).
    target: String,
    /// `target` without credentials or query, for messages.
    url: String,
    timeout: Duration,
    token: Option<Secret>,
    client: reqwest::Client,
    cache: Option<PathBuf>,
    prev: Mutex<Option<Snapshot>>,
}

impl std::fmt::Debug for ScrapeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeSource")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("token", &self.token)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl ScrapeSource {
    pub fn new(url: &str, timeout: Duration, token: Option<String>) -> Result<Self, MetricsError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(MetricsError::Config(format!(
                "metrics url {:?} must start with http:// or https://",
                display_url(url)
            )));
        }
        Ok(ScrapeSource {
            target: url.to_string(),
            url: display_url(url),
            timeout,
            token: token.map(Secret),
            client: client(timeout)?,
            cache: None,
            prev: Mutex::new(None),
        })
    }

    pub fn from_config(cfg: &MetricsConfig) -> Result<Self, MetricsError> {
        ScrapeSource::new(
            &cfg.url,
            cfg.timeout.0,
            token_from_env(cfg.token_env.as_deref())?,
        )
    }

    /// Keep the last scrape beside `path` so that the next process can
    /// compute a step from it (written atomically: a temp file, then a
    /// rename). The file is keyed by the URL: `scrape-cache.json` becomes
    /// `scrape-cache-<hash of the URL>.json`, so two configs (or a demo
    /// beside a real config) scraping different URLs never share one.
    pub fn with_cache(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache = Some(keyed_cache_path(&path.into(), &self.cache_key()));
        self
    }

    /// What the cache is keyed by: the full URL, query included, without
    /// credentials.
    fn cache_key(&self) -> String {
        match reqwest::Url::parse(&self.target) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            Err(_) => self.url.clone(),
        }
    }

    /// The cache file in use, if any.
    pub fn cache_path(&self) -> Option<&Path> {
        self.cache.as_deref()
    }

    /// The URL, without credentials or query.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetch and parse one exposition.
    pub async fn scrape(&self) -> Result<Snapshot, MetricsError> {
        self.scrape_with_tracks(&[]).await
    }

    /// [`scrape`](Self::scrape), keeping the tracks of `track_labels` apart.
    pub async fn scrape_with_tracks(
        &self,
        track_labels: &[String],
    ) -> Result<Snapshot, MetricsError> {
        let mut req = self
            .client
            .get(&self.target)
            .header(reqwest::header::ACCEPT, "text/plain; version=0.0.4");
        if let Some(t) = &self.token {
            req = req.bearer_auth(&t.0);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(&self.url, self.timeout, e))?;
        let at = Utc::now();
        let status = resp.status();
        let body = read_body(&self.url, self.timeout, resp).await?;
        if !status.is_success() {
            return Err(MetricsError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                excerpt: excerpt(&body),
            });
        }
        let text = std::str::from_utf8(&body).map_err(|e| MetricsError::Unexpected {
            url: self.url.clone(),
            detail: format!("the exposition is not UTF-8 ({e})"),
        })?;
        let parsed = exposition::parse(text).map_err(|e| MetricsError::Exposition {
            url: self.url.clone(),
            line: e.line,
            message: e.message,
        })?;
        Ok(Snapshot::from_exposition_with_tracks(
            at,
            &parsed,
            track_labels,
        ))
    }

    /// Scrape once and return the step since the previous scrape for each
    /// label (`None` on the first scrape, or for a label not in the exposition).
    pub async fn poll(
        &self,
        labels: &[String],
    ) -> Result<HashMap<String, Option<MetricPoint>>, MetricsError> {
        self.poll_tracked(labels, &[]).await?.into_points(labels)
    }

    /// [`poll`](Self::poll), plus the canary and stable tracks of each of
    /// `tracks` from the same two scrapes. Ask with the same `tracks` every
    /// time: a scrape kept without a track has no previous counters for it.
    pub async fn poll_tracked(
        &self,
        labels: &[String],
        tracks: &[TrackSelector],
    ) -> Result<Polled, MetricsError> {
        let mut names: Vec<String> = tracks.iter().map(|t| t.label.clone()).collect();
        names.sort();
        names.dedup();
        let cur = self.scrape_with_tracks(&names).await?;
        // A label with a garbage sample (NaN, negative) has no step now,
        // and none from the next scrape either (its counters here lack that
        // sample); the other labels read as usual.
        let unusable = |l: &String| {
            cur.unusable
                .get(l)
                .map(|(metric, value)| MetricsError::Unusable {
                    url: self.url.clone(),
                    metric: metric.clone(),
                    value: value.to_string(),
                })
        };
        let mut errors: HashMap<String, MetricsError> = labels
            .iter()
            .filter_map(|l| Some((l.clone(), unusable(l)?)))
            .collect();
        let track_errors: HashMap<String, MetricsError> = tracks
            .iter()
            .filter_map(|t| Some((t.env.clone(), unusable(&t.env)?)))
            .collect();
        let need_cache = self
            .prev
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none();
        let cached = match (&self.cache, need_cache) {
            (Some(path), true) => {
                let (path, url) = (path.clone(), self.url.clone());
                tokio::task::spawn_blocking(move || load_cache(&path, &url))
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        let prev = {
            let mut guard = self.prev.lock().unwrap_or_else(|e| e.into_inner());
            let prev = guard.take().or(cached);
            match prev {
                // An answer that overtook a later one: keep the later as the reference.
                Some(p) if p.at > cur.at => {
                    *guard = Some(p);
                    return Ok(Polled {
                        points: labels.iter().map(|l| (l.clone(), None)).collect(),
                        tracks: tracks
                            .iter()
                            .map(|t| (t.clone(), TrackPoints::default()))
                            .collect(),
                        errors,
                        track_errors,
                    });
                }
                p => {
                    *guard = Some(cur.clone());
                    p
                }
            }
        };
        // From the second scrape on (a rate could have been read), a label
        // the exposition lacks among others is named, not read as silence.
        if prev.is_some() {
            for l in labels {
                if !errors.contains_key(l)
                    && let Some(e) = no_series(&self.url, &cur, l)
                {
                    errors.insert(l.clone(), e);
                }
            }
        }
        if let Some(path) = &self.cache {
            let (path, url, snap) = (path.clone(), self.url.clone(), cur.clone());
            let _ = tokio::task::spawn_blocking(move || store_cache(&path, &url, &snap)).await;
        }
        let clean = |l: &String| {
            !cur.unusable.contains_key(l)
                && prev.as_ref().is_none_or(|p| !p.unusable.contains_key(l))
        };
        let points = labels
            .iter()
            .filter(|l| !errors.contains_key(*l))
            .map(|l| {
                let point = prev
                    .as_ref()
                    .filter(|_| clean(l))
                    .and_then(|p| cur.step_since(p, l));
                (l.clone(), point)
            })
            .collect();
        let tracks = tracks
            .iter()
            .filter(|t| !track_errors.contains_key(&t.env))
            .map(|t| {
                let step = |track: &str| {
                    prev.as_ref()
                        .filter(|_| clean(&t.env))
                        .and_then(|p| cur.track_step_since(p, &t.env, &t.label, track))
                };
                let points = TrackPoints {
                    canary: step(CANARY_TRACK),
                    stable: step(STABLE_TRACK),
                };
                (t.clone(), points)
            })
            .collect();
        Ok(Polled {
            points,
            tracks,
            errors,
            track_errors,
        })
    }
}

/// The error for `label` when the exposition has request series for other
/// env labels but none for it (see [`MetricsError::NoSeries`]); `None`
/// when it has some, or none for any label (a source without traffic yet),
/// or only unusable ones (named as such).
fn no_series(url: &str, cur: &Snapshot, label: &str) -> Option<MetricsError> {
    if cur.labels.is_empty() || cur.labels.contains_key(label) || cur.unusable.contains_key(label) {
        return None;
    }
    let seen: Vec<&str> = cur.labels.keys().map(String::as_str).collect();
    Some(super::no_series_error(url, ENV_LABEL, label, &seen))
}

/// `dir/stem.ext` → `dir/stem-<16 hex digits of FNV-1a(key)>.ext`.
fn keyed_cache_path(path: &Path, key: &str) -> PathBuf {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scrape-cache".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{hash:016x}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{hash:016x}"),
    };
    path.with_file_name(name)
}

/// The cached scrape of `url` at `path`, if it is that URL's and fresh.
/// Blocking: call it off the async runtime.
fn load_cache(path: &Path, url: &str) -> Option<Snapshot> {
    let text = std::fs::read_to_string(path).ok()?;
    let file: CacheFile = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring unreadable scrape cache: {e}");
            return None;
        }
    };
    if file.url != url {
        return None;
    }
    let age = Utc::now() - file.snapshot.at;
    let fresh = age >= chrono::TimeDelta::zero() && age.to_std().is_ok_and(|a| a <= CACHE_MAX_AGE);
    fresh.then_some(file.snapshot)
}

/// Blocking: call it off the async runtime.
fn store_cache(path: &Path, url: &str, snapshot: &Snapshot) {
    let file = CacheFile {
        url: url.to_string(),
        snapshot: snapshot.clone(),
    };
    if let Err(e) = write_atomically(path, &file) {
        tracing::warn!(path = %path.display(), "cannot write the scrape cache: {e}");
    }
}

fn write_atomically(path: &Path, file: &CacheFile) -> std::io::Result<()> {
    use std::io::Write;
    let json = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        crate::paths::ensure_private_dir(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let written = crate::paths::create_private_file(&tmp).and_then(|mut f| f.write_all(&json));
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn snap(t: i64, text: &str) -> Snapshot {
        Snapshot::from_exposition(at(t), &exposition::parse(text).unwrap())
    }

    fn text(ok: u64, err500: u64, b: [u64; 4]) -> String {
        format!(
            "# TYPE http_requests_total counter\n\
http_requests_total{{env=\"prod\",code=\"200\"}} {ok}\n\
http_requests_total{{env=\"prod\",code=\"500\"}} {err500}\n\
http_requests_total{{env=\"prod\",code=\"404\"}} 7\n\
http_request_duration_seconds_bucket{{env=\"prod\",le=\"0.05\"}} {}\n\
http_request_duration_seconds_bucket{{env=\"prod\",le=\"0.1\"}} {}\n\
http_request_duration_seconds_bucket{{env=\"prod\",le=\"0.25\"}} {}\n\
http_request_duration_seconds_bucket{{env=\"prod\",le=\"+Inf\"}} {}\n\
http_request_duration_seconds_count{{env=\"prod\"}} {}\n\
other_metric{{env=\"prod\"}} 5\n",
            b[0], b[1], b[2], b[3], b[3]
        )
    }

    #[test]
    fn step_from_two_scrapes() {
        let a = snap(0, &text(1000, 10, [500, 900, 1000, 1010]));
        let b = snap(10, &text(1990, 20, [1000, 1800, 1990, 2010]));
        let p = b.step_since(&a, "prod").unwrap();
        assert_eq!(p.step_s, 10.0);
        assert_eq!(p.requests, 1000.0);
        assert_eq!(p.errors, 10.0);
        assert_eq!(p.error_rate(), Some(0.01));
        assert_eq!(p.requests_per_s(), Some(100.0));
        // Bucket deltas: 500 ≤ 50 ms, 900 ≤ 100 ms, 990 ≤ 250 ms, 1000 total.
        assert!((p.p50_ms.unwrap() - 50.0).abs() < 1e-9);
        assert!((p.p95_ms.unwrap() - (100.0 + 150.0 * 50.0 / 90.0)).abs() < 1e-9);
        assert_eq!(p.p99_ms, Some(250.0));
        assert_eq!(b.step_since(&a, "staging"), None);
    }

    #[test]
    fn counter_resets_count_from_zero() {
        let a = snap(0, &text(1000, 10, [500, 900, 1000, 1010]));
        // The process restarted: everything is lower than before.
        let b = snap(10, &text(95, 2, [50, 90, 100, 104]));
        let p = b.step_since(&a, "prod").unwrap();
        // 200 and 500 went down (reset: their values are the deltas); the 404
        // series did not move (7 → 7), so it adds nothing.
        assert_eq!(p.requests, 95.0 + 2.0);
        assert_eq!(p.errors, 2.0);
        // Quantiles from the fresh histogram alone: 50 of 104 ≤ 50 ms.
        let expect = 50.0 + 50.0 * (52.0 - 50.0) / 40.0;
        assert!((p.p50_ms.unwrap() - expect).abs() < 1e-9, "{:?}", p.p50_ms);
    }

    #[test]
    fn no_traffic_gives_no_quantiles() {
        let a = snap(0, &text(1000, 10, [500, 900, 1000, 1010]));
        let b = snap(5, &text(1000, 10, [500, 900, 1000, 1010]));
        let p = b.step_since(&a, "prod").unwrap();
        assert_eq!((p.requests, p.errors), (0.0, 0.0));
        assert_eq!((p.p50_ms, p.error_rate()), (None, None));
        assert_eq!(p.requests_per_s(), Some(0.0));
    }

    #[test]
    fn new_series_count_from_zero_and_le_spellings_merge() {
        let a = snap(
            0,
            "http_requests_total{env=\"e\",code=\"200\"} 10\nhttp_request_duration_seconds_bucket{env=\"e\",le=\"1.0\"} 10\nhttp_request_duration_seconds_bucket{env=\"e\",le=\"+Inf\"} 10\n",
        );
        let b = snap(
            1,
            "http_requests_total{env=\"e\",code=\"200\"} 20\nhttp_requests_total{env=\"e\",code=\"503\"} 4\nhttp_request_duration_seconds_bucket{env=\"e\",le=\"1\"} 24\nhttp_request_duration_seconds_bucket{env=\"e\",le=\"Inf\"} 24\n",
        );
        let p = b.step_since(&a, "e").unwrap();
        assert_eq!((p.requests, p.errors), (14.0, 4.0));
        assert_eq!(p.p50_ms, Some(500.0));
    }

    #[test]
    fn histogram_count_stands_in_for_missing_request_counter() {
        let a = snap(0, "http_request_duration_seconds_count{env=\"e\"} 10\n");
        let b = snap(2, "http_request_duration_seconds_count{env=\"e\"} 30\n");
        let p = b.step_since(&a, "e").unwrap();
        assert_eq!((p.requests, p.errors, p.p95_ms), (20.0, 0.0, None));
    }

    #[test]
    fn non_finite_and_unlabelled_samples_are_ignored() {
        let s = snap(
            0,
            "http_requests_total{code=\"200\"} 5\nhttp_requests_total{env=\"e\",code=\"200\"} NaN\nhttp_requests_total{env=\"e\",code=\"500\"} 3\n",
        );
        let c = &s.labels["e"];
        assert_eq!(c.requests.len(), 1);
        assert_eq!(c.requests["500"], 3.0);
        assert!(!s.labels.contains_key(""));
        // … but the env's NaN is kept as unusable, naming the sample.
        let (metric, value) = &s.unusable["e"];
        assert_eq!(metric, r#"http_requests_total{env="e",code="200"}"#);
        assert!(value.is_nan());
    }

    /// Production split into tracks by `track`, as the demo fleet serves it.
    fn tracked(c_ok: u64, c_err: u64, s_ok: u64, s_err: u64, c_fast: u64, s_fast: u64) -> String {
        format!(
            "http_requests_total{{env=\"production\",track=\"canary\",code=\"200\"}} {c_ok}\n\
http_requests_total{{env=\"production\",track=\"canary\",code=\"500\"}} {c_err}\n\
http_requests_total{{env=\"production\",track=\"stable\",code=\"200\"}} {s_ok}\n\
http_requests_total{{env=\"production\",track=\"stable\",code=\"500\"}} {s_err}\n\
http_requests_total{{env=\"staging\",code=\"200\"}} 5\n\
http_request_duration_seconds_bucket{{env=\"production\",track=\"canary\",le=\"0.1\"}} {c_fast}\n\
http_request_duration_seconds_bucket{{env=\"production\",track=\"canary\",le=\"+Inf\"}} {}\n\
http_request_duration_seconds_bucket{{env=\"production\",track=\"stable\",le=\"0.1\"}} {s_fast}\n\
http_request_duration_seconds_bucket{{env=\"production\",track=\"stable\",le=\"+Inf\"}} {}\n",
            c_ok + c_err,
            s_ok + s_err
        )
    }

    fn snap_tracks(t: i64, text: &str, names: &[&str]) -> Snapshot {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Snapshot::from_exposition_with_tracks(at(t), &exposition::parse(text).unwrap(), &names)
    }

    #[test]
    fn tracks_are_read_apart_and_the_env_still_sums_them() {
        let a = snap_tracks(0, &tracked(100, 0, 900, 3, 100, 900), &["track"]);
        let b = snap_tracks(10, &tracked(190, 10, 1800, 6, 110, 1800), &["track"]);
        let c = b
            .track_step_since(&a, "production", "track", "canary")
            .unwrap();
        let s = b
            .track_step_since(&a, "production", "track", "stable")
            .unwrap();
        assert_eq!((c.requests, c.errors), (100.0, 10.0));
        assert_eq!((s.requests, s.errors), (903.0, 3.0));
        // Canary: 10 of 100 under 100 ms, the rest above: p50 at the bound.
        assert_eq!(c.p50_ms, Some(100.0));
        assert!(s.p50_ms.unwrap() < 100.0);
        let all = b.step_since(&a, "production").unwrap();
        assert_eq!((all.requests, all.errors), (1003.0, 13.0));
        // An env without the track label has no tracks: a gap, not zero.
        assert_eq!(b.track_step_since(&a, "staging", "track", "canary"), None);
        // Another label name is not split by unless asked for.
        assert_eq!(b.track_step_since(&a, "production", "tier", "canary"), None);
        let other = snap_tracks(10, &tracked(190, 10, 1800, 6, 110, 1800), &["tier"]);
        assert!(other.tracks.is_empty());
    }

    #[test]
    fn a_track_that_appears_counts_from_the_next_scrape() {
        // Before the canary gets traffic, production is not split at all.
        let a = snap_tracks(
            0,
            "http_requests_total{env=\"production\",code=\"200\"} 1000\n",
            &["track"],
        );
        let b = snap_tracks(1, &tracked(5, 0, 1000, 0, 5, 1000), &["track"]);
        assert_eq!(
            b.track_step_since(&a, "production", "track", "canary"),
            None
        );
        // The env's total stays continuous across the split.
        assert_eq!(b.step_since(&a, "production").unwrap().requests, 5.0);
        let c = snap_tracks(2, &tracked(25, 1, 1180, 0, 20, 1100), &["track"]);
        let p = c
            .track_step_since(&b, "production", "track", "canary")
            .unwrap();
        assert_eq!((p.requests, p.errors), (21.0, 1.0));
    }

    #[test]
    fn five_xx_codes() {
        assert!(is_5xx("500") && is_5xx("503") && is_5xx("599"));
        assert!(!is_5xx("404") && !is_5xx("5") && !is_5xx("5xx") && !is_5xx(""));
    }

    #[test]
    fn cache_round_trip_respects_url_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("scrape.json");
        let url = "http://127.0.0.1:1/metrics";
        let mut s = snap(0, &text(1, 0, [1, 1, 1, 1]));
        s.at = Utc::now();
        store_cache(&path, url, &s);
        assert_eq!(load_cache(&path, url), Some(s.clone()));
        assert_eq!(load_cache(&path, "http://127.0.0.1:2/metrics"), None);
        s.at = Utc::now() - chrono::TimeDelta::minutes(11);
        store_cache(&path, url, &s);
        assert_eq!(load_cache(&path, url), None);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(load_cache(&path, url), None);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp files left behind");
    }

    #[test]
    fn two_metrics_urls_get_two_cache_files() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("scrape-cache.json");
        let a = ScrapeSource::new("http://127.0.0.1:1/metrics", Duration::from_secs(1), None)
            .unwrap()
            .with_cache(&base);
        let b = ScrapeSource::new("http://127.0.0.1:2/metrics", Duration::from_secs(1), None)
            .unwrap()
            .with_cache(&base);
        let a2 = ScrapeSource::new(
            "http://u:pw@127.0.0.1:1/metrics",
            Duration::from_secs(1),
            None,
        )
        .unwrap()
        .with_cache(&base);
        let (pa, pb) = (a.cache_path().unwrap(), b.cache_path().unwrap());
        assert_ne!(pa, pb);
        assert_eq!(
            pa,
            a2.cache_path().unwrap(),
            "credentials are not part of the key"
        );
        let name = pa.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("scrape-cache-") && name.ends_with(".json"),
            "{name}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("scrape.json");
        let mut s = snap(0, &text(1, 0, [1, 1, 1, 1]));
        s.at = Utc::now();
        store_cache(&path, "http://x/metrics", &s);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn debug_hides_the_token() {
        let src = ScrapeSource::new(
            "http://u:pw@127.0.0.1:1/metrics",
            Duration::from_secs(1),
            Some("s3cr3t".into()),
        )
        .unwrap();
        let dbg = format!("{src:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("pw"), "{dbg}");
    }
}
