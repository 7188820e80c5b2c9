//! Evidence about the pending release (SPEC §7): the approval stage's own
//! verdict, CI and review. Gathered here (the I/O), judged by the pure rules
//! in [`crate::monitor::stage`] and [`crate::domain::evidence`].
//!
//! A slow source must never stall the console: each answer is fetched by
//! one background task per question (its own timeouts bound it) and kept
//! briefly. A caller that can wait (the CLI, a promotion about to act)
//! waits for the answer up to [`WAIT`]; the console does not wait: it shows
//! "checking…" (an `unknown` that blocks) until the answer is in, and the
//! last answer while a newer one is fetched.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Engine;
use crate::domain::clock;
use crate::domain::{
    Check, DeployRecord, PlanEvidence, PromotionPlan, Requirements, StageInfo, Version,
};
use crate::monitor::stage::{StageInput, judge_stage};
use crate::monitor::{Sample, StageVerdict};

/// Longest wait of a caller that waits for an answer.
pub(super) const WAIT: Duration = Duration::from_secs(20);
/// How long a CI answer is reused.
const CHECK_TTL: Duration = Duration::from_secs(10);
/// How long a review answer is reused (reviews of merged pull requests change rarely).
const REVIEW_TTL: Duration = Duration::from_secs(30);
/// Answers kept at most (the oldest are dropped first).
const MAX_SLOTS: usize = 128;

/// One answer about the pending release.
#[derive(Clone, Debug)]
pub(super) enum Answer {
    Check(Check),
    Stage(StageVerdict),
}

#[derive(Default)]
pub(super) struct Slot {
    /// The last answer and when it came.
    value: Option<(Instant, Answer)>,
    /// The task asking now, when one is.
    running: Option<tokio::sync::watch::Receiver<Option<Answer>>>,
}

pub(super) type Slots = std::sync::Mutex<HashMap<String, Slot>>;

impl Engine {
    /// Whether views wait for evidence (the CLI) or show "checking…" and
    /// fetch in the background (the console).
    pub fn evidence_in_background(&self) {
        self.inner
            .evidence_wait
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn waits_for_evidence(&self) -> bool {
        self.inner
            .evidence_wait
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The answer to `key`: a cached one younger than `ttl` at once; else
    /// `fetch` runs in a background task (one per key at a time) and the
    /// caller waits for it at most `wait`, getting the previous answer (or
    /// `None`: not answered yet) when it does not come in time.
    pub(super) async fn answer<F, Fut>(
        &self,
        key: String,
        ttl: Duration,
        wait: Option<Duration>,
        fetch: F,
    ) -> Option<Answer>
    where
        F: FnOnce(Engine) -> Fut,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let (mut rx, stale) = {
            let mut slots = self
                .inner
                .evidence
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if slots.len() > MAX_SLOTS {
                prune(&mut slots);
            }
            let slot = slots.entry(key.clone()).or_default();
            if let Some((at, v)) = &slot.value
                && at.elapsed() < ttl
            {
                return Some(v.clone());
            }
            let stale = slot.value.as_ref().map(|(_, v)| v.clone());
            // A task whose sender is gone (it panicked) is asked again.
            let alive = slot
                .running
                .as_ref()
                .filter(|rx| rx.has_changed().is_ok())
                .cloned();
            let rx = match alive {
                Some(rx) => rx,
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    slot.running = Some(rx.clone());
                    let fut = fetch(self.clone());
                    let engine = self.clone();
                    tokio::spawn(async move {
                        let v = fut.await;
                        {
                            let mut slots = engine
                                .inner
                                .evidence
                                .lock()
                                .unwrap_or_else(|p| p.into_inner());
                            let slot = slots.entry(key).or_default();
                            slot.value = Some((Instant::now(), v.clone()));
                            slot.running = None;
                        }
                        let _ = tx.send(Some(v));
                    });
                    rx
                }
            };
            (rx, stale)
        };
        // Not waiting: the previous answer while a fresh one is worked out,
        // so a console's verdict does not blink to "checking…" each time
        // its answer grows old.
        let Some(wait) = wait else { return stale };
        let got = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        match got {
            Ok(Ok(v)) => v.clone(),
            _ => stale,
        }
    }

    /// Which evidence gates environment `idx` has (its `[environments.gates]`).
    pub(super) fn requirements(&self, idx: usize) -> Requirements {
        let g = &self.inner.config.environments[idx].gates;
        Requirements {
            ci: g.requires_ci,
            review: g.requires_review,
            healthy_stage: g.requires_healthy_stage,
        }
    }

    /// The evidence about `plan`: the verdict of its approval stage (the
    /// stage `target`'s approval rule names), waited for when `wait`.
    pub(super) async fn evidence_for(
        &self,
        plan: &PromotionPlan,
        stages: &[StageInfo],
        target: usize,
        deploys: &[DeployRecord],
        wait: bool,
    ) -> PlanEvidence {
        // The approval stage; with requires_healthy_stage and no approval
        // rule, the configured approval_stage or else the stage before.
        let gates = &self.inner.config.environments[target].gates;
        let stage = stages[target]
            .approval
            .as_ref()
            .map(|r| r.stage)
            .or_else(|| {
                gates.requires_healthy_stage.then(|| {
                    gates
                        .approval_stage
                        .as_ref()
                        .and_then(|s| self.inner.config.index_of(s.get_ref()))
                        .unwrap_or(target.saturating_sub(1))
                })
            });
        let stage_verdict = match stage {
            Some(s) => Some(
                self.stage_verdict(&stages[s], s, &plan.version, deploys, wait)
                    .await,
            ),
            None => None,
        };
        let (ci, review) = tokio::join!(
            self.ci_check(&plan.version, wait),
            self.review_check(plan.current.as_ref(), &plan.version, wait)
        );
        PlanEvidence {
            ci,
            review,
            stage_verdict,
        }
    }

    /// The CI state of the commit `version` names; `None` without `[release] ci`.
    async fn ci_check(&self, version: &Version, wait: bool) -> Option<Check> {
        self.inner.ci.as_ref()?;
        let key = format!("ci\u{0}{version}");
        let v = version.clone();
        let answer = self
            .answer(
                key,
                CHECK_TTL,
                wait.then_some(WAIT),
                move |engine| async move { Answer::Check(engine.fetch_ci(&v).await) },
            )
            .await;
        Some(match answer {
            Some(Answer::Check(c)) => c,
            _ => Check::checking(),
        })
    }

    async fn fetch_ci(&self, version: &Version) -> Check {
        let Some(ci) = &self.inner.ci else {
            return Check::unknown("no [release] ci configured");
        };
        // The commit from the local clone; without one, GitHub resolves
        // the version's tag itself (a command needs the commit).
        let sha = match &self.inner.release.repo {
            Some(repo) => match self.resolve(repo, version).await {
                Ok(r) => r.sha,
                Err(e) => return Check::unknown(e.to_string()),
            },
            None => match ci {
                crate::backends::ci::CiSource::Github(_) => {
                    match crate::domain::release::ref_for(
                        self.inner.config.release.tag_template(),
                        version.as_str(),
                    ) {
                        Ok(r) => r,
                        Err(why) => return Check::unknown(format!("{version}: {why}")),
                    }
                }
                crate::backends::ci::CiSource::Command(_) => {
                    return Check::unknown(format!(
                        "the commit of {version} is unknown: set [release] git (a local clone) for the CI command's {{sha}}"
                    ));
                }
            },
        };
        ci.ci(&sha, version.as_str()).await
    }

    /// Whether every commit from `current` to `version` came through an
    /// approved pull request; `None` unless `[release] ci` is GitHub.
    async fn review_check(
        &self,
        current: Option<&Version>,
        version: &Version,
        wait: bool,
    ) -> Option<Check> {
        let Some(crate::backends::ci::CiSource::Github(_)) = &self.inner.ci else {
            return None;
        };
        let Some(current) = current else {
            return Some(Check::unknown(
                "what the target runs is unknown, so the release's commits cannot be listed",
            ));
        };
        let key = format!("review\u{0}{current}\u{0}{version}");
        let (from, to) = (current.clone(), version.clone());
        let answer = self
            .answer(
                key,
                REVIEW_TTL,
                wait.then_some(WAIT),
                move |engine| async move { Answer::Check(engine.fetch_review(&from, &to).await) },
            )
            .await;
        Some(match answer {
            Some(Answer::Check(c)) => c,
            _ => Check::checking(),
        })
    }

    async fn fetch_review(&self, from: &Version, to: &Version) -> Check {
        let Some(ci) = &self.inner.ci else {
            return Check::unknown("no [release] ci configured");
        };
        if self.inner.release.repo.is_none() {
            return Check::unknown(
                "the release's commits are unknown: set [release] git (a local clone)",
            );
        }
        let range = match self.range(from, to).await {
            Ok(r) => r,
            Err(e) => return Check::unknown(e.to_string()),
        };
        if range.capped() {
            return Check::unknown(format!(
                "{} commits between {from} and {to}: more than the {} that can be checked",
                range.total,
                range.commits.len()
            ));
        }
        ci.review(&range.commits)
            .await
            .unwrap_or_else(|| Check::unknown("reviews come from GitHub only"))
    }

    /// The detector's verdict on `stage` (index `idx`) running `version`,
    /// from its metrics since the version went live there.
    pub(super) async fn stage_verdict(
        &self,
        stage: &StageInfo,
        idx: usize,
        version: &Version,
        deploys: &[DeployRecord],
        wait: bool,
    ) -> StageVerdict {
        let (name, v) = (stage.name.as_str(), version.as_str());
        match &stage.version {
            Some(runs) if runs == version => {}
            Some(runs) => {
                return StageVerdict::insufficient(
                    name,
                    v,
                    &format!("{name} runs {runs}, so it holds no evidence about {v}"),
                );
            }
            None => {
                return StageVerdict::insufficient(
                    name,
                    v,
                    &format!("what {name} runs cannot be read"),
                );
            }
        }
        // When it went live: the stage's last recorded deploy, if it brought it.
        let since = match deploys.iter().rev().find(|d| d.env == name) {
            Some(d) if &d.version == version => d.at,
            Some(d) => {
                return StageVerdict::insufficient(
                    name,
                    v,
                    &format!(
                        "shipdeck last deployed {} there; {v} came another way, so when it went live is unknown",
                        d.version
                    ),
                );
            }
            None => {
                return StageVerdict::insufficient(
                    name,
                    v,
                    &format!(
                        "shipdeck recorded no deploy of {v} to {name}, so when it went live is unknown"
                    ),
                );
            }
        };
        let step = self.inner.config.metrics.step.0;
        let key = format!("stage\u{0}{name}\u{0}{v}\u{0}{}", since.timestamp_millis());
        let version = version.clone();
        let answer = self
            .answer(
                key,
                step.max(Duration::from_secs(1)),
                wait.then_some(WAIT),
                move |engine| async move {
                    Answer::Stage(engine.judge_stage(idx, &version, since).await)
                },
            )
            .await;
        match answer {
            Some(Answer::Stage(s)) => s,
            _ => StageVerdict::insufficient(name, v, crate::domain::evidence::CHECKING),
        }
    }

    /// Read the stage's baseline before `since` and its samples after, and
    /// judge them.
    async fn judge_stage(
        &self,
        idx: usize,
        version: &Version,
        since: DateTime<Utc>,
    ) -> StageVerdict {
        let cfg = &self.inner.config;
        let e = &cfg.environments[idx];
        let (name, label) = (e.name(), e.label());
        let dcfg = cfg.monitor.detector_config(None);
        let unreadable = |what: &str, err: super::EngineError| {
            StageVerdict::insufficient(
                name,
                version.as_str(),
                &format!("its {what} cannot be read: {err}"),
            )
        };
        let (baseline, plan) = match self
            .baseline_without(
                name,
                label,
                since,
                clock::secs_f64(dcfg.baseline_s),
                crate::domain::baseline::caught_periods,
            )
            .await
        {
            Ok(b) => b,
            Err(err) => return unreadable("baseline", err),
        };
        let now = Utc::now();
        let end = now.min(clock::after(
            since,
            clock::secs_f64(crate::monitor::stage::MAX_JUDGED_S),
        ));
        let relative = |w: Vec<(DateTime<Utc>, Sample)>| {
            w.into_iter()
                .map(|(at, mut s)| {
                    s.t = (at - since).num_milliseconds() as f64 / 1000.0;
                    s
                })
                .collect::<Vec<Sample>>()
        };
        let mut window: Vec<Sample> = match self.samples_at(name, label, since, end).await {
            Ok(w) => relative(w),
            Err(err) => return unreadable("metrics", err),
        };
        // Live for longer than is judged: the last monitoring window's worth
        // too, to tell whether a regression is still there now.
        let tail_from = clock::before(now, clock::secs_f64(dcfg.window_s));
        if end < now {
            match self.samples_at(name, label, tail_from.max(end), now).await {
                Ok(w) => {
                    let last = window.last().map(|s| s.t);
                    window.extend(
                        relative(w)
                            .into_iter()
                            .filter(|s| last.is_none_or(|l| s.t > l)),
                    );
                }
                Err(err) => return unreadable("metrics", err),
            }
        }
        let mut baseline_note = plan.describe();
        if let Ok(Some(note)) = crate::monitor::baseline_gaps(&baseline, &dcfg) {
            baseline_note = format!("{baseline_note}; {note}");
        }
        judge_stage(&StageInput {
            stage: name,
            version: version.as_str(),
            since,
            now,
            baseline: &baseline,
            window: &window,
            baseline_note: &baseline_note,
            detector: dcfg,
        })
    }
}

/// Drop the oldest half of the answers.
fn prune(slots: &mut HashMap<String, Slot>) {
    let mut ages: Vec<(Instant, String)> = slots
        .iter()
        .filter(|(_, s)| s.running.is_none())
        .filter_map(|(k, s)| s.value.as_ref().map(|(at, _)| (*at, k.clone())))
        .collect();
    ages.sort();
    for (_, k) in ages.into_iter().take(MAX_SLOTS / 2) {
        slots.remove(&k);
    }
}
