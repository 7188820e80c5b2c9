//! One place polls the metrics source, at most once per step, for every
//! environment at once; `status`, the console's charts and the monitoring
//! window all read from it. (A scrape source turns counters into per-step
//! deltas, so two independent pollers would each see half a step.) Every
//! point is also kept in the store, so a later window finds its baseline
//! even when the source itself has no history.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::backends::metrics::{MetricPoint, MetricsSource};
use crate::store::AsyncStore;

/// How long samples are kept in the store: enough for any baseline.
const KEEP: chrono::Duration = chrono::Duration::hours(26);
/// Points kept in memory per label.
const RECENT: usize = 256;

pub struct Sampler {
    source: MetricsSource,
    step: Duration,
    state: tokio::sync::Mutex<SamplerState>,
}

#[derive(Default)]
struct SamplerState {
    polled: Option<Instant>,
    latest: HashMap<String, MetricPoint>,
    /// The last points per label, oldest first, so that a reader polling
    /// less often than the source misses none.
    recent: HashMap<String, std::collections::VecDeque<MetricPoint>>,
    error: Option<(DateTime<Utc>, String)>,
}

/// What the sampler knows about every environment label.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// Latest point per label.
    pub points: HashMap<String, MetricPoint>,
    /// Why the last poll failed, and when.
    pub error: Option<(DateTime<Utc>, String)>,
    /// True when this call polled the source (a new step).
    pub fresh: bool,
}

impl Sampler {
    pub fn new(source: MetricsSource, step: Duration) -> Self {
        Sampler {
            source,
            step,
            state: tokio::sync::Mutex::new(SamplerState::default()),
        }
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
            let names: Vec<String> = labels.iter().map(|(l, _)| l.clone()).collect();
            match self.source.poll(&names).await {
                Ok(points) => {
                    st.error = None;
                    fresh = true;
                    for (label, env) in labels {
                        match points.get(label).cloned().flatten() {
                            Some(p) => {
                                let s = p.to_sample(p.at);
                                keep.push((env.clone(), p.at, s));
                                let q = st.recent.entry(label.clone()).or_default();
                                if q.back().is_none_or(|b| b.at < p.at) {
                                    q.push_back(p.clone());
                                }
                                while q.len() > RECENT {
                                    q.pop_front();
                                }
                                st.latest.insert(label.clone(), p);
                            }
                            None => {
                                st.latest.remove(label);
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("metrics poll failed: {e}");
                    st.error = Some((Utc::now(), e.to_string()));
                }
            }
        }
        let reading = Reading {
            points: st.latest.clone(),
            error: st.error.clone(),
            fresh,
        };
        drop(st);
        // Kept without waiting, and never under the lock: a slow store must
        // not hold up the next reader. The store thread runs jobs in order,
        // so a later read of the samples sees these.
        if !keep.is_empty() {
            store.detach(move |s| {
                for (env, at, smp) in &keep {
                    if let Err(e) = s.record_sample(env, *at, smp, KEEP) {
                        tracing::warn!("cannot keep a metric sample: {e}");
                        return;
                    }
                }
            });
        }
        reading
    }
}
