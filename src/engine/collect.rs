//! Collecting a baseline before a watched promote (`promote ENV --watch`)
//! when the metrics source keeps no history of its own (scrape) and the
//! store holds fewer baseline steps than the detector needs: the shared
//! sampler polls the source a step at a time — exactly as the console and a
//! monitoring window do, its samples kept in the store the same way — until
//! the store holds enough, so that the window after the deploy can judge it.
//! A source that stays unusable ends it before anything is deployed.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::{Engine, EngineError};

/// Where a baseline collection stands: `have` of the `need` steps are kept,
/// about `left` to go.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineProgress {
    pub env: String,
    pub have: usize,
    pub need: usize,
    pub left: Duration,
}

impl Engine {
    /// Before a watched promote of `env`: when its metrics source is scrape
    /// and the store holds fewer usable baseline steps than the detector
    /// needs ([`Engine::baseline_check`]), poll the source a step at a time
    /// until it does, saying where it stands through `progress` (once at
    /// the start, then at every new step). Returns the steps collected (0:
    /// none were needed, or the configured baseline is too short to ever
    /// hold them, which the plan's warning says).
    ///
    /// Bounded: a source that fails or gives no usable step for twice the
    /// steps missing (and one more: a first scrape only reads the counters)
    /// ends it with [`EngineError::BaselineUncollected`], naming the source
    /// and its last error. Nothing is locked or recorded meanwhile, so
    /// dropping it (Ctrl-C) leaves nothing behind.
    pub async fn collect_baseline(
        &self,
        env: &str,
        progress: &(dyn Fn(BaselineProgress) + Sync),
    ) -> Result<usize, EngineError> {
        let idx = self.index(env)?;
        let Some((have, need)) = self.baseline_check(idx, Utc::now()).await else {
            return Ok(0);
        };
        if have >= need {
            return Ok(0);
        }
        let cfg = &self.inner.config;
        let step = cfg.metrics.step.0;
        // A baseline span shorter than the steps it needs never holds them,
        // however long we poll: left to the plan's warning.
        let span = cfg.monitor.baseline.0;
        if step.is_zero() || (span.as_secs_f64() / step.as_secs_f64()).floor() < need as f64 {
            tracing::warn!(
                env,
                "baseline of {} at {} steps holds fewer than {need} steps: not collected before the deploy",
                crate::domain::HumanDuration(span),
                crate::domain::HumanDuration(step)
            );
            return Ok(0);
        }
        let sampler = self
            .inner
            .sampler
            .as_ref()
            .map_err(|e| EngineError::Metrics(e.clone()))?;
        let label = cfg.environments[idx].label().to_string();
        let labels = vec![(label.clone(), env.to_string())];
        let missing = need - have;
        let bound = step * u32::try_from(2 * missing + 1).unwrap_or(u32::MAX);
        let started = Instant::now();
        let deadline = started + bound;
        let left = |got: usize| step * u32::try_from(missing.saturating_sub(got)).unwrap_or(0);
        progress(BaselineProgress {
            env: env.to_string(),
            have,
            need,
            left: left(0),
        });
        // Twice a step, as the window does, so that no point is missed.
        let mut ticker = tokio::time::interval((step / 2).max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Points already read were kept, and counted in `have`.
        let mut consumed = Utc::now();
        let mut got = 0_usize;
        let mut last_error: Option<String> = None;
        loop {
            if got >= missing {
                // The samples are written by the store's thread, in order:
                // once it has taken them, the store's count is the truth.
                self.inner
                    .store
                    .flush(step.max(Duration::from_secs(5)))
                    .await;
                match self.baseline_check(idx, Utc::now()).await {
                    Some((now_have, _)) if now_have >= need => return Ok(got),
                    Some((now_have, _)) => {
                        // The store did not take them all (away, refused):
                        // keep polling within the bound.
                        last_error.get_or_insert_with(|| {
                            format!("the store kept {now_have} of the {need} steps")
                        });
                        got = now_have.saturating_sub(have);
                    }
                    None => return Ok(got),
                }
            }
            if Instant::now() >= deadline {
                let why = last_error
                    .unwrap_or_else(|| format!("no usable step of {label:?} in its answers"));
                return Err(EngineError::BaselineUncollected {
                    env: env.to_string(),
                    from: sampler.source().describe(),
                    have: have + got,
                    need,
                    waited: started.elapsed(),
                    why,
                });
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(wait, ticker.tick()).await.is_err() {
                continue;
            }
            let reading = sampler.read(&labels, &self.inner.store).await;
            if let Some((_, why)) = reading.error_for(&label) {
                last_error = Some(why.clone());
            }
            let fresh = sampler.points_since(&label, consumed).await;
            let before = got;
            for p in &fresh {
                consumed = consumed.max(p.at);
                if p.to_sample(p.at).requests.is_finite() {
                    got += 1;
                }
            }
            if got > before {
                progress(BaselineProgress {
                    env: env.to_string(),
                    have: have + got,
                    need,
                    left: left(got),
                });
            }
        }
    }
}
