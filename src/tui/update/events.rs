//! Engine events and finished tasks: progress, verdicts (with the alarm or
//! the auto-rollback notice) and each task's outcome reach the state here.

use super::*;

pub(super) fn on_engine(s: &mut State, ev: Event) -> Vec<Effect> {
    s.dirty = true;
    let now = s.now;
    match ev {
        Event::DeployStarted {
            env,
            version,
            from,
            rollback,
        } => {
            if rollback {
                // Where a rollback lands is a known version, not a release
                // to judge: never start a window for it, even when a
                // snapshot shows the version before the record of the
                // rollback is written.
                s.watched.not_to_judge(&env, &version);
            }
            if rollback
                && s.env_ui(&env).and_then(|u| u.task.as_ref()).map(|t| t.kind)
                    != Some(TaskKind::Rollback)
            {
                s.notify(
                    Level::Warn,
                    format!("{env}: rolling back automatically to {version}"),
                );
            }
            if s.alarm.as_ref().is_some_and(|a| a.env == env) && rollback {
                s.alarm = None;
            }
            if rollback
                && let Some(w) = s.env_ui_mut(&env).window.as_mut()
                && w.rollback_t.is_none()
            {
                w.rollback_t = Some((now - w.deploy_at).num_milliseconds() as f64 / 1000.0);
            }
            s.env_ui_mut(&env).deploy = Some(DeployProgress {
                version,
                from,
                rollback,
                started: now,
                elapsed_s: 0.0,
                observed: None,
                finished: None,
                backend: None,
            });
        }
        Event::DeployProgress { env, progress } => {
            let first_wait = progress.waiting.is_some()
                && s.env_ui(&env)
                    .and_then(|u| u.deploy.as_ref())
                    .is_none_or(|d| d.waiting().is_none());
            if first_wait && let Some(w) = &progress.waiting {
                let how = if w.can_answer {
                    "a approves, x rejects"
                } else {
                    "this token may not answer it"
                };
                s.notify(Level::Warn, format!("{env}: {} — {how}", w.prompt));
            }
            if let Some(d) = s.env_ui_mut(&env).deploy.as_mut() {
                d.backend = Some((progress, now));
            }
        }
        Event::DeployWaiting {
            env,
            elapsed_s,
            observed,
        } => {
            if let Some(d) = s.env_ui_mut(&env).deploy.as_mut() {
                d.elapsed_s = elapsed_s;
                d.observed = observed;
            }
        }
        Event::DeployFinished {
            env,
            version,
            ok,
            detail,
        } => {
            let ui = s.env_ui_mut(&env);
            let rollback = ui.deploy.as_ref().is_some_and(|d| d.rollback);
            if let Some(d) = ui.deploy.as_mut() {
                d.finished = Some((ok, detail.clone()));
            }
            if !ok {
                let what = if rollback { "rollback" } else { "deploy" };
                s.notify(
                    Level::Error,
                    format!("{what} of {version} to {env} failed: {detail}"),
                );
            }
            return load_status(s);
        }
        Event::MonitorStarted {
            env,
            version,
            deploy_at,
            window_s,
            baseline,
            baseline_note,
        } => {
            let mut w = Window {
                version,
                deploy_at,
                window_s,
                baseline_note,
                baseline: Default::default(),
                samples: Default::default(),
                verdict: None,
                summary: Default::default(),
                running: true,
                alarmed: false,
                rollback_t: None,
            };
            for sample in baseline {
                w.push(sample);
            }
            s.env_ui_mut(&env).window = Some(w);
            s.watched.opened(&env);
        }
        Event::MonitorSample {
            env,
            sample,
            verdict,
            baseline,
        } => {
            if let Some(w) = s.env_ui_mut(&env).window.as_mut() {
                w.push(sample);
                w.summary = baseline;
            }
            on_verdict(s, &env, verdict, false);
        }
        Event::MonitorFinished { env, verdict } => {
            on_verdict(s, &env, verdict, true);
        }
        Event::LockLost { detail, .. } => s.notify(Level::Error, detail),
        Event::StoreOutage { detail, .. } | Event::WindowNotice { detail, .. } => {
            s.notify(Level::Warn, detail)
        }
        Event::CanaryStep {
            env,
            version,
            weight,
            step,
            steps,
            left_s,
            verdict,
            started,
            step_t,
            pairs,
        } => {
            let first_alarm = verdict.kind == crate::monitor::VerdictKind::Regression
                && s.env_ui(&env)
                    .and_then(|u| u.canary.as_ref())
                    .is_none_or(|c| c.verdict.kind != crate::monitor::VerdictKind::Regression);
            if first_alarm {
                let text = format!(
                    "canary of {version} in {env} caught at {weight}%: {}",
                    verdict.reason
                );
                if s.settings.auto_rollback {
                    s.notify(Level::Warn, format!("{text} — weight → 0 automatically"));
                } else {
                    s.alarm = Some(Alarm {
                        env: env.clone(),
                        version: version.clone(),
                        reason: verdict.reason.clone(),
                        at: now,
                    });
                }
            }
            let ui = s.env_ui_mut(&env);
            // The same run goes on; a new run (another start) starts afresh.
            let mut view = ui
                .canary
                .take()
                .filter(|c| c.started == started && c.version == version)
                .unwrap_or_else(|| CanaryView {
                    version: version.clone(),
                    weight,
                    step,
                    steps,
                    left_s,
                    at: now,
                    verdict: verdict.clone(),
                    started,
                    step_starts: Vec::new(),
                    pairs: Default::default(),
                });
            if view.step_starts.last().is_none_or(|l| l.0 < step_t) {
                view.step_starts.push((step_t, weight));
            }
            view.extend(pairs);
            view.weight = weight;
            view.step = step;
            view.steps = steps;
            view.left_s = left_s;
            view.at = now;
            view.verdict = verdict;
            ui.canary = Some(view);
        }
    }
    vec![]
}

pub(super) fn on_verdict(s: &mut State, env: &str, verdict: Verdict, finished: bool) {
    let auto = s.settings.auto_rollback;
    let now = s.now;
    let Some(w) = s.env_ui_mut(env).window.as_mut() else {
        return;
    };
    w.verdict = Some(verdict.clone());
    if finished {
        w.running = false;
    }
    let version = w.version.clone();
    match verdict.kind {
        VerdictKind::Regression if !w.alarmed => {
            w.alarmed = true;
            if auto {
                s.notify(
                    Level::Warn,
                    format!(
                        "regression in {env} ({version}): {} — rolling back automatically",
                        verdict.reason
                    ),
                );
            } else {
                s.alarm = Some(Alarm {
                    env: env.to_string(),
                    version,
                    reason: verdict.reason,
                    at: now,
                });
            }
        }
        VerdictKind::Healthy if finished => s.notify(
            Level::Info,
            format!(
                "{env}: monitoring window of {version} passed — {}",
                verdict.reason
            ),
        ),
        _ => {}
    }
}

pub(super) fn on_done(
    s: &mut State,
    env: String,
    kind: TaskKind,
    result: Result<Done, Failure>,
) -> Vec<Effect> {
    s.dirty = true;
    let ui = s.env_ui_mut(&env);
    if ui.task.as_ref().is_some_and(|t| t.kind == kind) {
        ui.task = None;
    }
    s.status_stale = true;
    s.reload_after = s.status_loading;
    let mut effects = load_status(s);
    if s.mode == Mode::History {
        effects.extend(load_history(s));
    }
    match result {
        Ok(Done::Deployed(record)) => {
            let monitored = s.env_status(&env).is_some_and(|e| e.monitored);
            if kind == TaskKind::Rollback {
                s.notify(
                    Level::Info,
                    format!("{env} rolled back to {}", record.version),
                );
            } else if monitored {
                s.notify(
                    Level::Info,
                    format!(
                        "{env} now runs {} — monitoring window started",
                        record.version
                    ),
                );
                effects.extend(start_watch(s, &env, record.version.clone()));
            } else {
                s.notify(Level::Info, format!("{env} now runs {}", record.version));
            }
        }
        Ok(Done::Recorded(a)) => {
            let what = match a.decision {
                Decision::Go => "Go",
                Decision::NoGo => "No-Go",
            };
            s.notify(
                Level::Info,
                format!("{what} recorded for {} → {env} by {}", a.version, a.actor),
            );
        }
        Ok(Done::Reviewed(line)) => {
            s.notify(Level::Info, format!("{env}: {line}"));
        }
        Ok(Done::WatchedElsewhere(holder)) => {
            s.notify(Level::Info, format!("{env}: watched by {holder}"));
        }
        Ok(Done::Watched(line)) => {
            if let Some(w) = s.env_ui_mut(&env).window.as_mut() {
                w.running = false;
            }
            s.notify(Level::Info, format!("{env}: {line}"));
        }
        Err(Failure {
            reason,
            refused,
            cause,
            caught,
        }) => {
            let mut again = String::new();
            if kind == TaskKind::Watch {
                if let Some(w) = s.env_ui_mut(&env).window.as_mut() {
                    w.running = false;
                }
                // A caught release nothing rolled back (its automatic
                // rollback failed) stays in the environment: the banner
                // says so and offers `r`, as without auto-rollback — the
                // notice alone went after a minute, cut at 80 columns.
                if caught && let Some(w) = s.env_ui(&env).and_then(|u| u.window.as_ref()) {
                    s.alarm = Some(crate::tui::state::Alarm {
                        env: env.clone(),
                        version: w.version.clone(),
                        reason: reason.clone(),
                        at: s.now,
                    });
                }
                // A window that failed did not judge its deploy: the
                // engine's rule watches it again (see `rewatch`), sooner
                // or later by its cause, and says when.
                let now = s.now;
                s.watched.failed(&env, now, cause);
                if let Some(note) = s.watched.retry_note(&env) {
                    again = format!(" — {note}");
                }
            }
            let how = if refused { "refused" } else { "failed" };
            s.notify(
                Level::Error,
                format!("{} of {env} {how}: {reason}{again}", kind.verb()),
            );
        }
    }
    effects
}
