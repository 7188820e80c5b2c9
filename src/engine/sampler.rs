//! One place polls the metrics source, at most once per step, for every
//! environment at once; `status`, the console's charts and the monitoring
//! window all read from it. (A scrape source turns counters into per-step
//! deltas, so two independent pollers would each see half a step.) Every
//! point is also kept in the store, so a later window finds its baseline
//! even when the source itself has no history.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::backends::metrics::{MetricPoint, MetricsSource, TrackSelector};
use crate::store::AsyncStore;

/// How long samples are kept in the store: enough for any baseline.
const KEEP: chrono::Duration = chrono::Duration::hours(26);
/// Points kept in memory per label.
const RECENT: usize = 256;
/// Samples the store did not take (it was unreachable), kept to write in
/// order when it is back: an hour of four environments at 1 s steps; the
/// oldest go first beyond that.
const UNSAVED_MAX: usize = 4 * 3600;

/// Samples waiting for the store, oldest first.
type Queue = std::collections::VecDeque<(String, DateTime<Utc>, crate::monitor::Sample)>;
type Unsaved = std::sync::Arc<std::sync::Mutex<Queue>>;

pub struct Sampler {
    source: MetricsSource,
    step: Duration,
    /// Canary environments whose metrics are also read by track.
    tracks: Vec<TrackSelector>,
    state: tokio::sync::Mutex<SamplerState>,
    unsaved: Unsaved,
}

/// One step of a canary environment's two tracks (`None`: no data).
#[derive(Clone, Debug, PartialEq)]
pub struct TrackStep {
    pub at: DateTime<Utc>,
    pub canary: Option<MetricPoint>,
    pub stable: Option<MetricPoint>,
}

#[derive(Default)]
struct SamplerState {
    polled: Option<Instant>,
    latest: HashMap<String, MetricPoint>,
    /// The last points per label, oldest first, so that a reader polling
    /// less often than the source misses none.
    recent: HashMap<String, std::collections::VecDeque<MetricPoint>>,
    error: Option<(DateTime<Utc>, String)>,
    /// Labels whose own read failed at the last poll (the others read),
    /// since when and why.
    label_errors: HashMap<String, (DateTime<Utc>, String)>,
    /// Env labels whose canary and stable tracks failed to read at the
    /// last poll, since when and why.
    track_errors: HashMap<String, (DateTime<Utc>, String)>,
    /// Labels whose last read found no series of theirs while the source
    /// has others' ([`MetricsError::NoSeries`]).
    ///
    /// [`MetricsError::NoSeries`]: crate::backends::metrics::MetricsError::NoSeries
    unmatched: std::collections::HashSet<String>,
    /// When the first poll was made, and how many answered.
    started: Option<DateTime<Utc>>,
    ok_polls: usize,
    /// The last track steps per env label, oldest first.
    tracks: HashMap<String, std::collections::VecDeque<TrackStep>>,
}

/// What the sampler knows about every environment label.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// Latest point per label.
    pub points: HashMap<String, MetricPoint>,
    /// Why the last poll failed as a whole (every label), and since when.
    pub error: Option<(DateTime<Utc>, String)>,
    /// Labels whose own read failed at the last poll, since when and why;
    /// the other labels read as usual (see [`Reading::error_for`]).
    pub label_errors: HashMap<String, (DateTime<Utc>, String)>,
    /// Env labels whose canary and stable tracks failed to read at the
    /// last poll, since when and why (see [`Reading::track_error_for`]).
    pub track_errors: HashMap<String, (DateTime<Utc>, String)>,
    /// Labels whose last read found no series of theirs while the source
    /// has series of others: a label that does not match (a mistyped
    /// `metrics_label`), or one no request has reached yet. Their error
    /// ([`Reading::error_for`]) says which values the source has.
    pub unmatched: std::collections::HashSet<String>,
    /// True when this call polled the source (a new step).
    pub fresh: bool,
    /// When this process first polled the source.
    pub started: Option<DateTime<Utc>>,
    /// Polls that the source answered so far.
    pub ok_polls: usize,
}

impl Reading {
    /// Why `label`'s metrics cannot be read now, and since when: the whole
    /// poll's failure or its own. `None` while its own point reads.
    pub fn error_for(&self, label: &str) -> Option<&(DateTime<Utc>, String)> {
        self.error.as_ref().or_else(|| self.label_errors.get(label))
    }

    /// Why the canary and stable tracks of env label `label` cannot be
    /// read now, and since when: the whole poll's failure or their own.
    pub fn track_error_for(&self, label: &str) -> Option<&(DateTime<Utc>, String)> {
        self.error.as_ref().or_else(|| self.track_errors.get(label))
    }
}

impl SamplerState {
    /// Takes one poll's answer at `now`: points, tracks and errors, per
    /// label. A label whose read failed loses its latest point (no stale
    /// point is shown next to the error); a poll that failed for every
    /// label is a failed poll. Samples to keep in the store go to `keep`.
    /// True when the source answered (a new step).
    fn take(
        &mut self,
        labels: &[(String, String)],
        polled: Result<crate::backends::metrics::Polled, crate::backends::metrics::MetricsError>,
        step: Duration,
        now: DateTime<Utc>,
        keep: &mut Vec<(String, DateTime<Utc>, crate::monitor::Sample)>,
    ) -> bool {
        let all_failed = |p: &crate::backends::metrics::Polled| {
            !labels.is_empty() && labels.iter().all(|(l, _)| p.errors.contains_key(l))
        };
        self.unmatched = match &polled {
            Ok(p) => p
                .errors
                .iter()
                .filter(|(_, e)| {
                    matches!(e, crate::backends::metrics::MetricsError::NoSeries { .. })
                })
                .map(|(l, _)| l.clone())
                .collect(),
            Err(_) => Default::default(),
        };
        let polled = match polled {
            Ok(p) if all_failed(&p) => Err(labels
                .iter()
                .find_map(|(l, _)| p.errors.get(l).cloned())
                .expect("every label failed")),
            other => other,
        };
        let polled = match polled {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("metrics poll failed: {e}");
                let since = self.error.as_ref().map_or(now, |(at, _)| *at);
                self.error = Some((since, e.to_string()));
                self.label_errors.clear();
                self.latest.clear();
                return false;
            }
        };
        self.error = None;
        self.ok_polls += 1;
        for (env, e) in &polled.track_errors {
            tracing::warn!(
                env,
                "metrics poll: the canary and stable tracks failed: {e}"
            );
            let since = self.track_errors.get(env).map_or(now, |(at, _)| *at);
            self.track_errors
                .insert(env.clone(), (since, e.to_string()));
        }
        for sel in polled.tracks.keys() {
            self.track_errors.remove(&sel.env);
        }
        for (sel, tp) in polled.tracks {
            let at = tp
                .canary
                .as_ref()
                .or(tp.stable.as_ref())
                .map_or(now, |p| p.at);
            let q = self.tracks.entry(sel.env).or_default();
            if q.back().is_none_or(|b| b.at < at) {
                q.push_back(TrackStep {
                    at,
                    canary: tp.canary,
                    stable: tp.stable,
                });
            }
            while q.len() > RECENT {
                q.pop_front();
            }
        }
        for (label, env) in labels {
            if let Some(e) = polled.errors.get(label) {
                tracing::warn!(env, "metrics poll failed for this environment: {e}");
                let since = self.label_errors.get(label).map_or(now, |(at, _)| *at);
                self.label_errors
                    .insert(label.clone(), (since, e.to_string()));
                self.latest.remove(label);
                continue;
            }
            self.label_errors.remove(label);
            match polled.points.get(label).cloned().flatten() {
                Some(p) => {
                    let p = per_step(p, step);
                    let s = p.to_sample(p.at);
                    keep.push((env.clone(), p.at, s));
                    let q = self.recent.entry(label.clone()).or_default();
                    if q.back().is_none_or(|b| b.at < p.at) {
                        q.push_back(p.clone());
                    }
                    while q.len() > RECENT {
                        q.pop_front();
                    }
                    self.latest.insert(label.clone(), p);
                }
                None => {
                    self.latest.remove(label);
                }
            }
        }
        true
    }
}

impl Sampler {
    pub fn new(source: MetricsSource, step: Duration) -> Self {
        Sampler {
            source,
            step,
            tracks: Vec::new(),
            state: tokio::sync::Mutex::new(SamplerState::default()),
            unsaved: Unsaved::default(),
        }
    }

    /// Also read these environments' canary and stable tracks on every poll.
    pub fn with_tracks(mut self, tracks: Vec<TrackSelector>) -> Self {
        self.tracks = tracks;
        self
    }

    /// Track steps of env label `label` newer than `after`, oldest first.
    pub async fn track_steps_since(&self, label: &str, after: DateTime<Utc>) -> Vec<TrackStep> {
        let st = self.state.lock().await;
        st.tracks
            .get(label)
            .map(|q| q.iter().filter(|p| p.at > after).cloned().collect())
            .unwrap_or_default()
    }

    pub fn source(&self) -> &MetricsSource {
        &self.source
    }

    /// Points of `label` newer than `after`, oldest first.
    pub async fn points_since(&self, label: &str, after: DateTime<Utc>) -> Vec<MetricPoint> {
        let st = self.state.lock().await;
        st.recent
            .get(label)
            .map(|q| q.iter().filter(|p| p.at > after).cloned().collect())
            .unwrap_or_default()
    }

    /// Poll the source if a step has passed since the last poll; return
    /// what is known. `labels` maps metric labels to environment names.
    pub async fn read(&self, labels: &[(String, String)], store: &AsyncStore) -> Reading {
        let mut keep = Vec::new();
        let mut st = self.state.lock().await;
        let due = st
            .polled
            .is_none_or(|t| t.elapsed() + Duration::from_millis(50) >= self.step);
        let mut fresh = false;
        if due {
            st.polled = Some(Instant::now());
            st.started.get_or_insert_with(Utc::now);
            let names: Vec<String> = labels.iter().map(|(l, _)| l.clone()).collect();
            let polled = self.source.poll_tracked(&names, &self.tracks).await;
            fresh = st.take(labels, polled, self.step, Utc::now(), &mut keep);
        }
        let reading = Reading {
            points: st.latest.clone(),
            error: st.error.clone(),
            label_errors: st.label_errors.clone(),
            track_errors: st.track_errors.clone(),
            unmatched: st.unmatched.clone(),
            fresh,
            started: st.started,
            ok_polls: st.ok_polls,
        };
        drop(st);
        // Kept without waiting, and never under the lock: a slow store must
        // not hold up the next reader. The store thread runs jobs in order,
        // so a later read of the samples sees these.
        // Samples the store refused (unreachable) wait, in order, for the
        // next write, bounded by UNSAVED_MAX.
        let waiting = !self
            .unsaved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if !keep.is_empty() || waiting {
            let unsaved = self.unsaved.clone();
            store.detach(move |s| {
                let mut q = unsaved.lock().unwrap_or_else(|p| p.into_inner());
                q.extend(keep);
                keep_samples(s, &mut q);
            });
        }
        reading
    }
}

/// Write the samples of `q` in order. A store away for now — unreachable,
/// or an SQLite file another process holds locked, which each write waits
/// on for its busy timeout — stops at the first refusal and keeps them all
/// for the next write (bounded by [`UNSAVED_MAX`]): neither lost nor waited
/// on once per sample (a status against a locked store took 10 s a sample,
/// 50 s for the demo's four environments, and dropped them). A sample
/// refused for itself is dropped, never blocking the ones behind it.
fn keep_samples(s: &dyn crate::store::Store, q: &mut Queue) {
    while let Some((env, at, smp)) = q.front() {
        match s.record_sample(env, *at, smp, KEEP) {
            Ok(()) => {}
            Err(e)
                if e.heals_by_waiting()
                    || matches!(e, crate::store::StoreError::Unreachable { .. }) =>
            {
                tracing::warn!(
                    "cannot keep a metric sample ({} waiting for the store): {e}",
                    q.len()
                );
                break;
            }
            Err(e) => tracing::warn!("cannot keep a metric sample: {e}"),
        }
        q.pop_front();
    }
    let over = q.len().saturating_sub(UNSAVED_MAX);
    if over > 0 {
        tracing::warn!("{over} metric samples dropped: the store is away too long");
        q.drain(..over);
    }
}

/// A point whose counters span much more than a step — the first poll after
/// a pause reads the counters' growth since the last scrape, however long
/// ago that was — scaled to one step, so that its counts compare with every
/// other step's (a first window step of 4,612 requests against ~2,200 a
/// step was two steps counted as one). Rates and latencies are unchanged.
pub(crate) fn per_step(mut p: MetricPoint, step: Duration) -> MetricPoint {
    let step_s = step.as_secs_f64();
    if step_s > 0.0 && p.step_s > step_s * 1.5 {
        let k = step_s / p.step_s;
        p.requests *= k;
        p.errors *= k;
        p.step_s = step_s;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step_s: f64, requests: f64, errors: f64) -> MetricPoint {
        MetricPoint {
            at: Utc::now(),
            step_s,
            requests,
            errors,
            p50_ms: Some(40.0),
            p95_ms: Some(120.0),
            p99_ms: None,
        }
    }

    /// An SQLite store another process holds locked: the samples wait,
    /// all of them and in order, after one write's busy wait — not one
    /// wait per sample, each then dropped — and land once it is free.
    #[test]
    fn samples_wait_for_a_locked_store_and_land_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = crate::store::SqliteStore::open(&path).unwrap();
        let t0 = Utc::now() - chrono::Duration::seconds(60);
        let mut q: Queue = (0..3)
            .map(|i| {
                let p = point(1.0, 10.0 + f64::from(i), 0.0);
                let at = t0 + chrono::Duration::seconds(i64::from(i));
                ("production".to_string(), at, p.to_sample(at))
            })
            .collect();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        keep_samples(&store, &mut q);
        assert_eq!(q.len(), 3, "kept for the next write, none dropped");
        other.execute_batch("COMMIT").unwrap();
        keep_samples(&store, &mut q);
        assert!(q.is_empty(), "{q:?}");
        let kept = crate::store::Store::samples(
            &store,
            "production",
            t0 - chrono::Duration::seconds(1),
            Utc::now(),
        )
        .unwrap();
        let requests: Vec<f64> = kept.iter().map(|(_, s)| s.requests).collect();
        assert_eq!(requests, [10.0, 11.0, 12.0]);
    }

    #[test]
    fn a_first_step_spanning_two_steps_counts_as_one() {
        let p = per_step(point(2.1, 4612.0, 46.0), Duration::from_secs(1));
        assert!((p.requests - 4612.0 / 2.1).abs() < 1e-9, "{}", p.requests);
        assert_eq!(p.step_s, 1.0);
        assert_eq!(p.error_rate(), Some(46.0 / 4612.0));
        assert_eq!(p.p95_ms, Some(120.0));
    }

    fn labels() -> Vec<(String, String)> {
        [("stg", "staging"), ("prod", "production")]
            .map(|(l, e)| (l.to_string(), e.to_string()))
            .to_vec()
    }

    fn nan(label: &str) -> crate::backends::metrics::MetricsError {
        crate::backends::metrics::MetricsError::Unusable {
            url: "http://prom:9090/api/v1/query".into(),
            metric: format!("the requests query r{{env=\"{label}\"}}"),
            value: "NaN".into(),
        }
    }

    fn polled(
        ok: &[(&str, f64)],
        failed: &[&str],
    ) -> Result<crate::backends::metrics::Polled, crate::backends::metrics::MetricsError> {
        let mut p = crate::backends::metrics::Polled::default();
        for (l, r) in ok {
            p.points.insert(l.to_string(), Some(point(1.0, *r, 1.0)));
        }
        for l in failed {
            p.errors.insert(l.to_string(), nan(l));
        }
        Ok(p)
    }

    /// A source failing for one label (staging's exporter reading NaN)
    /// leaves the other read as usual: production keeps its point, its
    /// kept sample and no error; staging loses its stale point and says
    /// why, since its first failure; it reads again once its point does.
    #[test]
    fn one_labels_failure_is_that_labels_only() {
        let (step, t0) = (Duration::from_secs(1), Utc::now());
        let mut st = SamplerState::default();
        let mut keep = Vec::new();
        assert!(st.take(
            &labels(),
            polled(&[("stg", 10.0), ("prod", 20.0)], &[]),
            step,
            t0,
            &mut keep
        ));
        assert_eq!(keep.len(), 2);
        assert!(st.latest.contains_key("stg"));

        keep.clear();
        assert!(st.take(
            &labels(),
            polled(&[("prod", 21.0)], &["stg"]),
            step,
            t0 + chrono::Duration::seconds(1),
            &mut keep
        ));
        assert!(st.take(
            &labels(),
            polled(&[("prod", 22.0)], &["stg"]),
            step,
            t0 + chrono::Duration::seconds(2),
            &mut keep
        ));
        let r = Reading {
            points: st.latest.clone(),
            error: st.error.clone(),
            label_errors: st.label_errors.clone(),
            track_errors: st.track_errors.clone(),
            ..Reading::default()
        };
        assert!(r.error.is_none(), "{:?}", r.error);
        assert!(r.error_for("prod").is_none());
        assert_eq!(r.points["prod"].requests, 22.0);
        let (since, why) = r.error_for("stg").expect("staging's own error");
        assert_eq!(
            *since,
            t0 + chrono::Duration::seconds(1),
            "since the first failure"
        );
        assert!(why.contains("NaN") && why.contains("stg"), "{why}");
        assert!(
            !r.points.contains_key("stg"),
            "no stale point next to the error"
        );
        assert!(
            keep.iter().all(|(env, _, _)| env == "production"),
            "{keep:?}"
        );
        assert_eq!(st.ok_polls, 3);

        assert!(st.take(
            &labels(),
            polled(&[("stg", 11.0), ("prod", 23.0)], &[]),
            step,
            t0 + chrono::Duration::seconds(3),
            &mut keep
        ));
        assert!(st.label_errors.is_empty());
        assert!(st.latest.contains_key("stg"));
    }

    /// A canary environment whose tracks failed to read (its own label
    /// read) keeps that error, since its first failure, until its tracks
    /// read again: the monitoring window counts such steps against health.
    #[test]
    fn a_track_failure_is_kept_until_the_tracks_read_again() {
        let (step, t0) = (Duration::from_secs(1), Utc::now());
        let mut st = SamplerState::default();
        let mut keep = Vec::new();
        let sel = crate::backends::metrics::TrackSelector {
            env: "prod".into(),
            label: "track".into(),
        };
        let tracks_failed = || {
            let mut p = polled(&[("stg", 10.0), ("prod", 20.0)], &[]).unwrap();
            p.track_errors.insert("prod".into(), nan("prod"));
            Ok(p)
        };
        for i in 0..2 {
            assert!(st.take(
                &labels(),
                tracks_failed(),
                step,
                t0 + chrono::Duration::seconds(i),
                &mut keep
            ));
        }
        let (since, why) = st.track_errors.get("prod").expect("the tracks' error");
        assert_eq!(*since, t0, "since the first failure");
        assert!(why.contains("NaN"), "{why}");
        assert!(st.latest.contains_key("prod"), "its own point reads");
        let mut p = polled(&[("stg", 11.0), ("prod", 21.0)], &[]).unwrap();
        p.tracks.insert(sel, Default::default());
        assert!(st.take(
            &labels(),
            Ok(p),
            step,
            t0 + chrono::Duration::seconds(2),
            &mut keep
        ));
        assert!(st.track_errors.is_empty(), "{:?}", st.track_errors);
    }

    /// A poll that failed for every label, or as a whole, is a failed
    /// poll: every label's error, no point kept from before it.
    #[test]
    fn a_poll_failing_for_every_label_fails_all() {
        let (step, t0) = (Duration::from_secs(1), Utc::now());
        let mut st = SamplerState::default();
        let mut keep = Vec::new();
        st.take(
            &labels(),
            polled(&[("stg", 10.0), ("prod", 20.0)], &[]),
            step,
            t0,
            &mut keep,
        );
        assert!(!st.take(
            &labels(),
            polled(&[], &["stg", "prod"]),
            step,
            t0,
            &mut keep
        ));
        assert!(
            st.error
                .as_ref()
                .is_some_and(|(_, why)| why.contains("stg")),
            "{:?}",
            st.error
        );
        assert!(st.latest.is_empty());
        assert_eq!(st.ok_polls, 1);
        let timeout = crate::backends::metrics::MetricsError::Timeout {
            url: "http://prom:9090".into(),
            timeout_ms: 2000,
        };
        assert!(!st.take(&labels(), Err(timeout), step, t0, &mut keep));
        assert!(
            st.error
                .as_ref()
                .is_some_and(|(_, why)| why.contains("2000")
                    || why.contains("2 s")
                    || why.contains("timed out")),
            "{:?}",
            st.error
        );
    }

    #[test]
    fn an_ordinary_step_is_left_alone() {
        let p = point(1.05, 2200.0, 7.0);
        assert_eq!(per_step(p.clone(), Duration::from_secs(1)), p);
    }
}
