//! The monitoring window: baseline before the deploy, window after it, the
//! detector judging every step, and the rollback on a confirmed regression.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Engine, EngineError, Event, EventSink};
use crate::domain::{ActionKind, DeployRecord, EnvState, Outcome, Version};
use crate::monitor::{Detector, DetectorConfig, Sample, Verdict, VerdictKind};
use crate::store::{MonitorRecord, NewAudit};

/// How a monitoring window ended.
#[derive(Clone, Debug, Serialize)]
pub struct WatchOutcome {
    pub env: String,
    pub version: Version,
    pub deploy_at: DateTime<Utc>,
    pub verdict: Verdict,
    /// The automatic rollback, when one ran: its record or why it failed.
    pub rolled_back: Option<DeployRecord>,
    pub rollback_error: Option<String>,
}

impl Engine {
    /// The detector settings from `[monitor]`, with `window` overridden.
    pub fn detector_config(&self, window: Option<Duration>) -> DetectorConfig {
        self.inner.config.monitor.detector_config(window)
    }

    /// Samples of `env` between `from` and `to`, relative to `deploy_at`:
    /// from the source's history where it has one, else from the store.
    async fn samples_between(
        &self,
        env: &str,
        label: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        deploy_at: DateTime<Utc>,
    ) -> Result<Vec<Sample>, EngineError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let step = self.inner.config.metrics.step.0;
        if let Ok(sampler) = &self.inner.sampler
            && let Some(points) = sampler
                .source()
                .history(label, from, to, step)
                .await
                .map_err(|e| EngineError::Metrics(e.to_string()))?
        {
            return Ok(points.iter().map(|p| p.to_sample(deploy_at)).collect());
        }
        Ok(self
            .inner
            .store
            .samples(env, from, to)?
            .into_iter()
            .map(|(at, mut s)| {
                s.t = (at - deploy_at).num_milliseconds() as f64 / 1000.0;
                s
            })
            .collect())
    }

    /// Run the monitoring window of `env`: from its last recorded deploy if
    /// that is within the window, else from now (a deploy made elsewhere).
    /// On a regression it rolls back at once when `auto_rollback` is set.
    pub async fn watch(
        &self,
        env: &str,
        window: Option<Duration>,
        events: Option<EventSink>,
    ) -> Result<WatchOutcome, EngineError> {
        let idx = self.index(env)?;
        let cfg_env = &self.inner.config.environments[idx];
        let label = cfg_env.label().to_string();
        let sampler = match &self.inner.sampler {
            Ok(s) => s,
            Err(e) => return Err(EngineError::Metrics(e.clone())),
        };
        let dcfg = self.detector_config(window);
        let window_d = chrono::Duration::milliseconds((dcfg.window_s * 1000.0) as i64);
        let baseline_d = chrono::Duration::milliseconds((dcfg.baseline_s * 1000.0) as i64);
        let now = Utc::now();
        let version = self.inner.envs[idx].version.read().await?;
        let last = self.inner.store.deploys(Some(env))?.pop();
        let deploy_at = match &last {
            Some(d) if d.version == version && now - d.at < window_d => d.at,
            _ => now,
        };
        let end = deploy_at + window_d;
        let emit = |ev: Event| {
            if let Some(tx) = &events {
                let _ = tx.send(ev);
            }
        };

        let mut detector = Detector::new(dcfg.clone());
        let baseline = self
            .samples_between(env, &label, deploy_at - baseline_d, deploy_at, deploy_at)
            .await?;
        for s in &baseline {
            detector.push(*s);
        }
        let started = self.inner.store.audit_start(&NewAudit {
            at: now,
            actor: &self.inner.actor,
            action: ActionKind::Monitor,
            env,
            version: Some(&version),
            from_version: last.as_ref().and_then(|d| d.from_version.as_ref()),
            outcome: Outcome::Started,
            detail: &format!(
                "monitoring window of {} for {version} ({} baseline samples)",
                crate::domain::HumanDuration(Duration::from_secs_f64(dcfg.window_s)),
                baseline.len()
            ),
        })?;
        self.inner.store.record_monitor(&MonitorRecord {
            env: env.to_string(),
            version: version.clone(),
            started_at: deploy_at,
            finished_at: None,
            verdict: "monitoring".into(),
            metric: None,
            reason: format!("window ends {}", end.format("%H:%M:%S UTC")),
        })?;
        self.set_activity(env, Some(EnvState::Monitoring));
        emit(Event::MonitorStarted {
            env: env.to_string(),
            version: version.clone(),
            deploy_at,
            window_s: dcfg.window_s,
            baseline: baseline.clone(),
        });
        // Window steps already past (a console started mid-window).
        let past = self
            .samples_between(env, &label, deploy_at, now.min(end), deploy_at)
            .await?;
        let mut last_t = 0.0_f64;
        for s in past.into_iter().filter(|s| s.t > 0.0) {
            last_t = s.t;
            detector.push(s);
        }

        let labels = vec![(label.clone(), env.to_string())];
        let step = self.inner.config.metrics.step.0;
        let step_d = chrono::Duration::from_std(step).unwrap_or(chrono::Duration::seconds(10));
        // Check twice a step so that no point of the shared sampler is missed.
        let mut ticker = tokio::time::interval((step / 2).max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut consumed = deploy_at + chrono::Duration::milliseconds((last_t * 1000.0) as i64);
        let mut last_new = Utc::now();
        let verdict = loop {
            if detector.verdict().kind == VerdictKind::Regression || Utc::now() >= end {
                break detector.verdict().clone();
            }
            ticker.tick().await;
            let reading = sampler.read(&labels, &*self.inner.store).await;
            let fresh = sampler.points_since(&label, consumed).await;
            let mut samples: Vec<Sample> = fresh
                .iter()
                .filter(|p| p.at > deploy_at)
                .map(|p| p.to_sample(deploy_at))
                .collect();
            if let Some(p) = fresh.last() {
                consumed = p.at;
                last_new = Utc::now();
            } else if Utc::now() - last_new > step_d * 2 {
                // The source failed or has nothing for this environment: a
                // gap, which the detector counts as missing data, never as health.
                if let Some((_, why)) = &reading.error {
                    tracing::warn!(env, "monitoring window: no sample ({why})");
                }
                let now = Utc::now();
                samples.push(Sample {
                    t: (now - deploy_at).num_milliseconds() as f64 / 1000.0,
                    requests: f64::NAN,
                    errors: f64::NAN,
                    p50_ms: None,
                    p95_ms: None,
                    p99_ms: None,
                });
                consumed = consumed.max(now);
                last_new = now;
            }
            for sample in samples {
                let verdict = detector.push(sample).clone();
                emit(Event::MonitorSample {
                    env: env.to_string(),
                    sample,
                    verdict,
                    baseline: detector.baseline(),
                });
            }
        };
        let finished = Utc::now();
        let regression = verdict.kind == VerdictKind::Regression;
        self.inner.store.record_monitor(&MonitorRecord {
            env: env.to_string(),
            version: version.clone(),
            started_at: deploy_at,
            finished_at: Some(finished),
            verdict: match verdict.kind {
                VerdictKind::Regression => "regression",
                VerdictKind::Healthy => "healthy",
                VerdictKind::InsufficientData | VerdictKind::Collecting => "insufficient_data",
            }
            .into(),
            metric: verdict.metric.map(|m| m.as_str().to_string()),
            reason: verdict.reason.clone(),
        })?;
        self.inner.store.audit_finish(
            started,
            finished,
            match verdict.kind {
                VerdictKind::Healthy => Outcome::Succeeded,
                VerdictKind::Regression => Outcome::Failed,
                _ => Outcome::Unknown,
            },
            &format!("{}: {}", verdict_word(&verdict), verdict.reason),
        )?;
        self.set_activity(env, regression.then_some(EnvState::Regression));
        emit(Event::MonitorFinished {
            env: env.to_string(),
            verdict: verdict.clone(),
        });
        if regression {
            // A release the window caught is blocked until someone records a
            // new Go for it: roll back, and it must not be re-promoted by reflex.
            let no_go = crate::domain::Approval {
                env: env.to_string(),
                version: version.clone(),
                decision: crate::domain::Decision::NoGo,
                actor: format!("{} (monitoring window)", self.inner.actor),
                at: Utc::now(),
                note: Some(format!("regression: {}", verdict.reason)),
            };
            self.inner.store.record_approval(&no_go)?;
        }
        let mut outcome = WatchOutcome {
            env: env.to_string(),
            version,
            deploy_at,
            verdict,
            rolled_back: None,
            rollback_error: None,
        };
        if regression && self.inner.config.monitor.auto_rollback {
            self.set_activity(env, None);
            match self.rollback(env, None, events.clone()).await {
                Ok(rec) => outcome.rolled_back = Some(rec),
                Err(e) => {
                    self.set_activity(env, Some(EnvState::Regression));
                    outcome.rollback_error = Some(e.to_string());
                }
            }
        }
        Ok(outcome)
    }
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v.kind {
        VerdictKind::Regression => "regression",
        VerdictKind::Healthy => "healthy",
        VerdictKind::InsufficientData => "insufficient data",
        VerdictKind::Collecting => "still collecting",
    }
}
