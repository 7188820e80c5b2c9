//! Asking before acting: the version picker, the promote, Go/No-Go, review
//! and rollback dialogs, the refusals that open none, and what confirming
//! one starts.

use super::*;

/// Versions that could go to the environment at `idx`: what the earlier
/// stages run (nearest first), then what they ran (newest first), never
/// what it runs already.
pub(super) fn pick_items(s: &State, idx: usize) -> Vec<PickItem> {
    let envs = s.environments();
    let Some(target) = envs.get(idx) else {
        return Vec::new();
    };
    let earlier = &envs[..idx];
    let mut items: Vec<PickItem> = Vec::new();
    let mut add = |version: &Version, seen: String, merge: bool| {
        if target.version.as_ref() == Some(version) {
            return;
        }
        match items.iter_mut().find(|i| &i.version == version) {
            Some(i) if merge => {
                let name = seen.trim_start_matches("runs on ");
                i.seen = format!("{}, {name}", i.seen);
            }
            Some(_) => {}
            None => items.push(PickItem {
                version: version.clone(),
                seen,
            }),
        }
    };
    for e in earlier.iter().rev() {
        if let Some(v) = &e.version {
            add(v, format!("runs on {}", e.name), true);
        }
    }
    let names: Vec<&str> = earlier.iter().map(|e| e.name.as_str()).collect();
    for entry in s.history.iter().flatten() {
        let deployed = matches!(entry.action, ActionKind::Promote | ActionKind::Rollback)
            && entry.outcome == Outcome::Succeeded;
        if let (true, true, Some(v)) = (
            deployed,
            names.contains(&entry.env.as_str()),
            &entry.version,
        ) {
            let ago = crate::tui::format::age((s.now - entry.at).num_seconds());
            add(v, format!("ran on {} · {ago} ago", entry.env), false);
        }
    }
    for e in earlier.iter().rev() {
        if let Some(from) = e.last_deploy.as_ref().and_then(|d| d.from_version.as_ref()) {
            add(
                from,
                format!("ran on {} before its last deploy", e.name),
                false,
            );
        }
    }
    items
}

pub(super) fn open_picker(s: &mut State) -> Vec<Effect> {
    let Some(env) = s.selected_env().cloned() else {
        return not_loaded(s, "pick a version");
    };
    if refuse(s, "promote", &env, false) {
        return vec![];
    }
    if s.selected == 0 {
        s.notify(
            Level::Warn,
            format!(
                "{} is the first stage: nothing before it to pick from (shipdeck promote {} --version V)",
                env.name, env.name
            ),
        );
        return vec![];
    }
    let items = pick_items(s, s.selected);
    s.overlays.push(Overlay::Picker(Picker {
        env: env.name.clone(),
        items,
        cursor: 0,
    }));
    // What the earlier stages ran comes from the audit log.
    load_history(s)
}

/// The audit log arrived while the picker is open: list what it adds,
/// keeping the cursor on the same version.
pub(super) fn refresh_picker(s: &mut State) {
    let Some(Overlay::Picker(p)) = s.overlays.last() else {
        return;
    };
    let Some(idx) = s.environments().iter().position(|e| e.name == p.env) else {
        return;
    };
    let current = p.items.get(p.cursor).map(|i| i.version.clone());
    let items = pick_items(s, idx);
    let cursor = current
        .and_then(|v| items.iter().position(|i| i.version == v))
        .unwrap_or(0);
    if let Some(Overlay::Picker(p)) = s.overlays.last_mut() {
        p.items = items;
        p.cursor = cursor;
    }
}

/// The engine planned the promotion of a picked version: refuse with its
/// reason, or ask with the normal promote dialog.
pub(super) fn on_plan(
    s: &mut State,
    env: String,
    version: Version,
    result: Result<PromotionPlan, Failure>,
) -> Vec<Effect> {
    s.dirty = true;
    let plan = match result {
        Ok(p) => p,
        Err(f) => {
            s.notify(
                Level::Error,
                format!("cannot promote {version} to {env}: {}", f.reason),
            );
            return vec![];
        }
    };
    if let Some(gate) = plan.refusal() {
        s.notify(
            Level::Error,
            format!(
                "cannot promote {version} to {env}: {} — {}",
                gate.name, gate.detail
            ),
        );
        return vec![];
    }
    let Some(status) = s.env_status(&env).cloned() else {
        return vec![];
    };
    s.overlays.push(Overlay::Dialog(Dialog {
        action: Pending::Promote {
            env,
            version: plan.version.clone(),
            current: status.version.clone(),
            source: plan.from.clone(),
            skips: plan.skips.clone(),
            warnings: plan.warnings().cloned().collect(),
            production: status.production,
            explicit: true,
        },
        note: None,
    }));
    vec![]
}

/// A key that acts on the selected environment before the first status
/// arrived (or with no environment at all) says why nothing opened.
pub(super) fn not_loaded(s: &mut State, what: &str) -> Vec<Effect> {
    let why = if s.status.is_none() {
        "the status is still loading"
    } else {
        "no environment is selected"
    };
    s.notify(Level::Warn, format!("cannot {what} yet: {why}"));
    vec![]
}

/// Refuse in read-only mode or while `env` is busy; `None` means go on.
pub(super) fn refuse(s: &mut State, what: &str, env: &EnvStatus, allow_watch: bool) -> bool {
    if s.settings.read_only {
        s.notify(
            Level::Warn,
            format!("read-only mode: {what} is not allowed"),
        );
        return true;
    }
    let busy = s
        .env_ui(&env.name)
        .and_then(|u| u.task.as_ref())
        .filter(|t| !(allow_watch && t.kind == TaskKind::Watch))
        .map(|t| t.kind.verb());
    if let Some(verb) = busy {
        let name = env.name.clone();
        s.notify(
            Level::Warn,
            format!("{name} is busy ({verb} running): wait for it to finish"),
        );
        return true;
    }
    // Decisions, history and the deploy lock live in the store: while it
    // cannot be read, nothing is recorded and no lock can be taken.
    if let Some(down) = s.store_down() {
        let name = env.name.clone();
        s.notify(
            Level::Warn,
            format!(
                "cannot {what} {name}: {down}; it reconnects by itself, try again then (v: details)"
            ),
        );
        return true;
    }
    false
}

pub(super) fn ask_promote(s: &mut State) -> Vec<Effect> {
    let Some(env) = s.selected_env().cloned() else {
        return not_loaded(s, "promote");
    };
    if refuse(s, "promote", &env, false) {
        return vec![];
    }
    if s.status_stale {
        // The gates shown predate the last action (a Go just recorded, say):
        // judge the promotion on the snapshot that is on its way.
        s.promote_when_fresh = true;
        s.notify(
            Level::Info,
            format!("checking {}'s gates on a fresh status…", env.name),
        );
        return vec![];
    }
    let Some(plan) = env.promotion.clone() else {
        let why = env
            .promotion_error
            .clone()
            .unwrap_or_else(|| "nothing to promote".into());
        s.notify(Level::Warn, format!("cannot promote {}: {why}", env.name));
        return vec![];
    };
    // A freeze alone does not end it here: the dialog asks why it is broken.
    let frozen_only = plan
        .gates
        .iter()
        .filter(|g| !g.ok && g.severity == crate::domain::GateSeverity::Block)
        .all(|g| g.name == "freeze");
    if let Some(gate) = plan.refusal().filter(|_| !frozen_only) {
        s.notify(
            Level::Error,
            format!(
                "cannot promote {}: {} — {}",
                env.name, gate.name, gate.detail
            ),
        );
        return vec![];
    }
    let frozen = plan.refusal().is_some();
    let warnings = plan.warnings().cloned().collect();
    s.overlays.push(Overlay::Dialog(Dialog {
        action: Pending::Promote {
            env: env.name.clone(),
            version: plan.version.clone(),
            current: env.version.clone(),
            source: plan.from.clone(),
            skips: plan.skips.clone(),
            warnings,
            production: env.production,
            explicit: false,
        },
        // The reason for breaking the freeze, typed in the dialog.
        note: frozen.then(String::new),
    }));
    vec![]
}

pub(super) fn ask_approval(s: &mut State, decision: Decision) -> Vec<Effect> {
    let Some(env) = s.selected_env().cloned() else {
        return not_loaded(s, "record a decision");
    };
    // A deploy that waits on a review in its CI/CD system: a and x answer it.
    if let Some(d) = s.env_ui(&env.name).and_then(|u| u.deploy.as_ref())
        && let Some(w) = d.waiting()
    {
        let (version, what, w) = (
            d.version.clone(),
            d.backend
                .as_ref()
                .map(|(p, _)| p.what.clone())
                .unwrap_or_default(),
            w.clone(),
        );
        return ask_review(s, &env.name, version, what, w, decision == Decision::Go);
    }
    let what = match decision {
        Decision::Go => "approve",
        Decision::NoGo => "reject",
    };
    if refuse(s, what, &env, true) {
        return vec![];
    }
    let Some(plan) = env.promotion.as_ref() else {
        let why = env
            .promotion_error
            .clone()
            .unwrap_or_else(|| "no pending release".into());
        s.notify(
            Level::Warn,
            format!("nothing to {what} for {}: {why}", env.name),
        );
        return vec![];
    };
    s.overlays.push(Overlay::Dialog(Dialog {
        action: Pending::Approve {
            env: env.name.clone(),
            version: plan.version.clone(),
            source: plan.from.clone(),
            decision,
            refused: env.go_refusal.clone().filter(|_| decision == Decision::Go),
        },
        note: Some(String::new()),
    }));
    vec![]
}

pub(super) fn ask_review(
    s: &mut State,
    env: &str,
    version: crate::domain::Version,
    what: String,
    w: crate::backends::deploy::Waiting,
    approve: bool,
) -> Vec<Effect> {
    if s.settings.read_only {
        s.notify(
            Level::Warn,
            "read-only mode: answering a review is not allowed",
        );
        return vec![];
    }
    if !w.can_answer {
        s.notify(
            Level::Warn,
            format!(
                "{env}: {what} is {}, and this token may not answer it: a required reviewer must",
                w.prompt
            ),
        );
        return vec![];
    }
    s.overlays.push(Overlay::Dialog(Dialog {
        action: Pending::Review {
            env: env.to_string(),
            version,
            what,
            prompt: w.prompt,
            approve,
        },
        note: Some(String::new()),
    }));
    vec![]
}

pub(super) fn ask_rollback(s: &mut State) -> Vec<Effect> {
    let target = match &s.alarm {
        Some(a) => s.env_status(&a.env).cloned(),
        None => s.selected_env().cloned(),
    };
    let Some(env) = target else {
        return not_loaded(s, "roll back");
    };
    if refuse(s, "roll back", &env, true) {
        return vec![];
    }
    // The engine's known-good target (never a caught or No-Go release);
    // when it knows none, say so rather than offer a dialog — unless a
    // canary has traffic: its weight going to 0 is the rollback.
    let canary_stop = env.revert.rollback_plan.action == RevertAction::CanaryWeightZero;
    if let Some(r) = env
        .rollback
        .as_ref()
        .filter(|r| r.to.is_none() && !canary_stop)
    {
        s.notify(Level::Warn, format!("{}: {}", env.name, r.detail));
        return vec![];
    }
    let to = match &env.rollback {
        Some(r) => r.to.clone(),
        None => env
            .last_deploy
            .as_ref()
            .and_then(|d| d.from_version.clone()),
    };
    // No target and no history: nothing to go back to, as the column says
    // (a canary with traffic is still stopped by its weight going to 0).
    if to.is_none() && !canary_stop {
        s.notify(
            Level::Warn,
            format!("{}: nothing to roll back to yet", env.name),
        );
        return vec![];
    }
    let pending = Pending::Rollback {
        env: env.name.clone(),
        from: env.version.clone(),
        to,
        strategy: s.settings.strategy(&env.name),
        production: env.production,
    };
    if s.settings.confirm_rollback {
        s.overlays.push(Overlay::Dialog(Dialog {
            action: pending,
            note: None,
        }));
        // The dialog's expected time and the target's record come from the
        // audit log, as it is now.
        load_history(s)
    } else {
        confirm(
            s,
            Dialog {
                action: pending,
                note: None,
            },
        )
    }
}

pub(super) fn start(
    s: &mut State,
    env: &str,
    kind: TaskKind,
    version: Option<crate::domain::Version>,
) {
    let now = s.now;
    s.env_ui_mut(env).task = Some(Task {
        kind,
        started: now,
        version,
    });
}

/// Why the action a dialog confirms cannot start now: its environment
/// runs another action of this console (a monitoring window only lets a
/// decision through, and a rollback while it does not roll back itself).
fn busy_now(s: &State, action: &Pending) -> Option<String> {
    let (env, watch_ok) = match action {
        Pending::Promote { env, .. } => (env, false),
        Pending::Approve { env, .. } | Pending::Rollback { env, .. } => (env, true),
        Pending::Quit | Pending::Review { .. } => return None,
    };
    if let Some(to) = s
        .auto_rollback_to(env)
        .filter(|_| !matches!(action, Pending::Approve { .. }))
    {
        return Some(format!(
            "{env} is rolling back by itself now (auto-rollback to {to}): wait for it to finish"
        ));
    }
    let task = s.env_ui(env)?.task.as_ref()?;
    (!(watch_ok && task.kind == TaskKind::Watch)).then(|| {
        format!(
            "{env} is busy ({} running): wait for it to finish",
            task.kind.verb()
        )
    })
}

pub(super) fn confirm(s: &mut State, d: Dialog) -> Vec<Effect> {
    if let Pending::Promote { env, .. } = &d.action
        && d.note.as_deref().is_some_and(|n| n.trim().is_empty())
    {
        // A freeze holds: no reason, no promotion.
        s.notify(
            Level::Warn,
            format!("{env} is frozen: type why you break the freeze, then Enter (Esc cancels)"),
        );
        s.overlays.push(Overlay::Dialog(d));
        return vec![];
    }
    // What runs on the environment now, not when the dialog opened: a
    // second dialog of a pick whose plan came back twice, or a rollback
    // dialog open while the window rolls back by itself, must not start a
    // second action beside the first.
    if let Some(why) = busy_now(s, &d.action) {
        s.notify(Level::Warn, why);
        return vec![];
    }
    match d.action {
        Pending::Promote {
            env,
            version,
            source,
            warnings,
            ..
        } => {
            start(s, &env, TaskKind::Promote, Some(version.clone()));
            let break_freeze = d
                .note
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            vec![Effect::Promote {
                env,
                version,
                from: source,
                accepted: warnings.into_iter().map(|g| g.name).collect(),
                break_freeze,
            }]
        }
        Pending::Approve {
            env,
            version,
            decision,
            ..
        } => {
            let kind = match decision {
                Decision::Go => TaskKind::Approve,
                Decision::NoGo => TaskKind::Reject,
            };
            let watching = s
                .env_ui(&env)
                .and_then(|u| u.task.as_ref())
                .is_some_and(|t| t.kind == TaskKind::Watch);
            if !watching {
                start(s, &env, kind, Some(version.clone()));
            }
            let note = d
                .note
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            vec![Effect::Approve {
                env,
                version,
                decision,
                note,
            }]
        }
        Pending::Rollback { env, to, .. } => {
            let mut effects = Vec::new();
            if s.env_ui(&env)
                .and_then(|u| u.task.as_ref())
                .is_some_and(|t| t.kind == TaskKind::Watch)
            {
                effects.push(Effect::CancelWatch { env: env.clone() });
                if let Some(w) = s.env_ui_mut(&env).window.as_mut() {
                    w.running = false;
                }
            }
            if s.alarm.as_ref().is_some_and(|a| a.env == env) {
                s.alarm = None;
            }
            start(s, &env, TaskKind::Rollback, to.clone());
            effects.push(Effect::Rollback { env, to });
            effects
        }
        Pending::Quit => quit(s),
        Pending::Review {
            env,
            version,
            approve,
            ..
        } => {
            let note = d
                .note
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            vec![Effect::Review {
                env,
                version,
                approve,
                note,
            }]
        }
    }
}
