//! `update(&mut State, Msg) -> Vec<Effect>`: every change of the console's
//! state happens here, without I/O and without reading the clock.
//!
//! The TUI holds no release rules of its own: whether an action is allowed
//! is the engine's answer (the plan's gates in the status snapshot, or the
//! engine's refusal when it acts). What the TUI adds is asking first,
//! refusing in read-only mode, and not starting two actions on one env.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::domain::strategy::RevertAction;
use crate::domain::{ActionKind, Decision, EnvState, Outcome, PromotionPlan, Version};
use crate::engine::{EnvStatus, Event, Status};
use crate::monitor::{Verdict, VerdictKind};

use super::keymap::{self, Action, Context};
use super::msg::{Done, Effect, Failure, Msg, TaskKind};
use super::state::{
    Alarm, CanaryView, DeployProgress, Detail, Dialog, HISTORY_LIMIT, LIVE_SPAN_S, Level,
    LivePoint, MAX_LIVE, MAX_NOTE, Mode, Overlay, Pending, PickItem, Picker, State, Task, Window,
};

pub fn update(s: &mut State, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(ev) => on_key(s, ev),
        Msg::Mouse(ev) => on_mouse(s, ev),
        Msg::Paste(text) => {
            if let Some(note) = top_note(s) {
                for c in crate::text::sanitize(&text).chars() {
                    push_note_char(note, c);
                }
                s.dirty = true;
            }
            vec![]
        }
        Msg::Resize(w, h) => {
            s.size = (w, h);
            s.dirty = true;
            vec![]
        }
        Msg::Tick(now) => on_tick(s, now),
        Msg::StatusLoaded(result) => {
            let ok = result.is_ok();
            let mut effects = on_status(s, result);
            if std::mem::take(&mut s.reload_after) {
                // That snapshot may predate the action: fetch one that does not.
                effects.extend(load_status(s));
                return effects;
            }
            if ok {
                s.status_stale = false;
                if std::mem::take(&mut s.promote_when_fresh) {
                    effects.extend(ask_promote(s));
                }
            }
            effects
        }
        Msg::HistoryLoaded(result) => {
            s.history_loading = false;
            match result {
                Ok(entries) => {
                    s.history = Some(entries);
                    s.history_error = None;
                }
                Err(e) => s.history_error = Some(e),
            }
            let rows = s.history_rows().len();
            s.history_cursor = s.history_cursor.min(rows.saturating_sub(1));
            refresh_picker(s);
            s.dirty = true;
            vec![]
        }
        Msg::PlanLoaded {
            env,
            version,
            result,
        } => on_plan(s, env, version, result),
        Msg::Engine(ev) => on_engine(s, ev),
        Msg::StoreChanged => on_store_changed(s),
        Msg::ActionDone { env, kind, result } => on_done(s, env, kind, result),
    }
}

fn on_tick(s: &mut State, now: chrono::DateTime<chrono::Utc>) -> Vec<Effect> {
    s.now = now;
    s.dirty = true;
    let cutoff = now - chrono::Duration::seconds(LIVE_SPAN_S);
    for ui in s.envs.values_mut() {
        while ui.live.front().is_some_and(|p| p.at < cutoff) {
            ui.live.pop_front();
        }
    }
    // The clock may tick faster than `refresh` (countdowns); poll the
    // status every `refresh`, allowing a tick that comes a little early.
    let refresh_ms = s.settings.refresh.as_millis() as i64;
    let due = s
        .status_requested_at
        .is_none_or(|at| (now - at).num_milliseconds() * 10 >= refresh_ms * 9);
    if due { load_status(s) } else { vec![] }
}

/// Another's action (or our own) reached the store: a fresh snapshot now,
/// and the history when it is on screen. A snapshot already on its way may
/// have been read before the change, so another follows it.
fn on_store_changed(s: &mut State) -> Vec<Effect> {
    s.reload_after = s.status_loading;
    let mut effects = load_status(s);
    if s.mode == Mode::History {
        effects.extend(load_history(s));
    }
    effects
}

/// Ask for a status snapshot unless one is on its way.
fn load_status(s: &mut State) -> Vec<Effect> {
    if s.status_loading {
        return vec![];
    }
    s.status_loading = true;
    s.status_requested_at = Some(s.now);
    vec![Effect::LoadStatus]
}

fn on_status(s: &mut State, result: Result<Status, String>) -> Vec<Effect> {
    s.status_loading = false;
    s.dirty = true;
    let status = match result {
        Ok(st) => st,
        Err(e) => {
            s.status_error = Some(e);
            return vec![];
        }
    };
    let mut effects = watch_new_deploys(s, &status);
    if someone_else_started_acting(s, &status) {
        effects.extend(load_history(s));
    }
    // First snapshot: open on the pending release; later ones keep the
    // selection on the same environment.
    let keep = match &s.status {
        None => status.pending.as_ref().map(|p| p.plan.to.clone()),
        Some(_) => s.selected_env().map(|e| e.name.clone()),
    };
    for env in &status.environments {
        let Some(at) = env.metrics.as_of else {
            continue;
        };
        let ui = s.env_ui_mut(&env.name);
        if ui.live.back().is_some_and(|p| p.at >= at) {
            continue;
        }
        ui.live.push_back(LivePoint {
            at,
            error_rate: env.metrics.error_rate,
            p50_ms: env.metrics.p50_ms,
            p95_ms: env.metrics.p95_ms,
            p99_ms: env.metrics.p99_ms,
        });
        while ui.live.len() > MAX_LIVE {
            ui.live.pop_front();
        }
    }
    s.selected = keep
        .and_then(|name| status.environments.iter().position(|e| e.name == name))
        .unwrap_or(s.selected)
        .min(status.environments.len().saturating_sub(1));
    s.status = Some(status);
    s.status_error = None;
    effects
}

/// A monitored environment that runs a new version (a deploy made
/// elsewhere: another console, the CLI, a pipeline) or that newly shows a
/// monitoring window, and that no window of this console watches: watch it.
/// One watcher per deploy: a version this console already watched is not
/// watched again, and its own actions start their own windows.
fn watch_new_deploys(s: &mut State, status: &Status) -> Vec<Effect> {
    let mut starts = Vec::new();
    for env in status.environments.iter().filter(|e| e.monitored) {
        let Some(version) = env.version.clone() else {
            continue;
        };
        // The engine's word first: a deploy within its window that nobody
        // alive watches. Besides it, what this console saw change since its
        // last snapshot, when nobody else claims the window.
        let before = s
            .status
            .as_ref()
            .and_then(|p| p.environments.iter().find(|p| p.name == env.name));
        let changed = before.is_some_and(|before| {
            let new_version = before.version.as_ref().is_some_and(|b| *b != version);
            let newly_monitoring =
                env.state == EnvState::Monitoring && before.state != EnvState::Monitoring;
            new_version || newly_monitoring
        });
        if !(env.unwatched || (changed && env.watcher.is_none())) {
            continue;
        }
        // A rollback returns to a known version; it is not a release to judge.
        let rolled_back = env
            .last_deploy
            .as_ref()
            .is_some_and(|d| d.kind == crate::domain::DeployKind::Rollback && d.version == version);
        let ui = s.env_ui(&env.name);
        let busy = ui.is_some_and(|u| u.task.is_some());
        let watching = ui
            .and_then(|u| u.window.as_ref())
            .is_some_and(|w| w.running && w.version == version);
        let watched = s.watched.get(&env.name) == Some(&version);
        // Mid-deploy (the version moved before the record was written):
        // wait for the record that says what kind of deploy it was.
        let in_flight = matches!(env.state, EnvState::Deploying | EnvState::RollingBack);
        if rolled_back || busy || watching || watched || in_flight {
            continue;
        }
        let by = env
            .last_deploy
            .as_ref()
            .filter(|d| d.version == version)
            .map(|d| format!(" by {}", d.actor))
            .unwrap_or_else(|| " outside this console".into());
        starts.push((env.name.clone(), version, by));
    }
    let mut effects = Vec::new();
    for (env, version, by) in starts {
        s.notify(
            Level::Info,
            format!("{env} now runs {version} (deployed{by}) — this console watches it"),
        );
        effects.extend(start_watch(s, &env, version));
    }
    effects
}

/// Start the monitoring window of `env` for `version` (once per version).
fn start_watch(s: &mut State, env: &str, version: Version) -> Vec<Effect> {
    s.watched.insert(env.to_string(), version.clone());
    start(s, env, TaskKind::Watch, Some(version));
    vec![Effect::Watch {
        env: env.to_string(),
    }]
}

/// An environment newly deploying or rolling back without this console
/// acting on it: load the audit log, which says who does what.
fn someone_else_started_acting(s: &State, status: &Status) -> bool {
    let acting = |e: &EnvStatus| matches!(e.state, EnvState::Deploying | EnvState::RollingBack);
    status.environments.iter().filter(|e| acting(e)).any(|e| {
        let before = s.env_status(&e.name).map(|p| p.state);
        let ours = s.env_ui(&e.name).is_some_and(|u| {
            u.task.is_some() || u.deploy.as_ref().is_some_and(|d| d.finished.is_none())
        });
        before != Some(e.state) && !ours
    })
}

/// The text field being typed into: a dialog's note or the history filter.
fn top_note(s: &mut State) -> Option<&mut String> {
    match s.overlays.last() {
        Some(Overlay::Filter) => {
            s.history_cursor = 0;
            Some(&mut s.history_filter)
        }
        _ => match s.overlays.last_mut() {
            Some(Overlay::Dialog(Dialog { note: Some(n), .. })) => Some(n),
            _ => None,
        },
    }
}

/// Add one typed character to a note, through the one sanitiser: a BiDi
/// control is dropped, another control character becomes a space.
fn push_note_char(note: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for c in crate::text::sanitize(c.encode_utf8(&mut buf)).chars() {
        if note.chars().count() < MAX_NOTE {
            note.push(c);
        }
    }
}

fn on_key(s: &mut State, ev: KeyEvent) -> Vec<Effect> {
    if ev.kind == KeyEventKind::Release {
        return vec![];
    }
    let ctx = s.context();
    if s.too_small() {
        // Nothing else is visible: no dialog may open unseen. Ctrl-C
        // quits; q quits when nothing would be interrupted.
        return match keymap::lookup(ctx, &ev) {
            Some(Action::ForceQuit) => quit(s),
            Some(Action::Quit) if s.running().is_empty() => quit(s),
            _ => vec![],
        };
    }
    if let Some(action) = keymap::lookup(ctx, &ev) {
        return on_action(s, action);
    }
    if ctx == Context::Input
        && let Some(note) = top_note(s)
    {
        match ev.code {
            KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
                push_note_char(note, c)
            }
            KeyCode::Backspace => {
                note.pop();
            }
            _ => return vec![],
        }
        s.dirty = true;
    }
    vec![]
}

fn on_action(s: &mut State, action: Action) -> Vec<Effect> {
    s.dirty = true;
    match action {
        Action::SelectPrev => {
            s.selected = s.selected.saturating_sub(1);
            s.commit_scroll = 0;
            vec![]
        }
        Action::SelectNext => {
            let n = s.environments().len();
            if s.selected + 1 < n {
                s.selected += 1;
            }
            s.commit_scroll = 0;
            vec![]
        }
        Action::Promote => ask_promote(s),
        Action::Approve => ask_approval(s, Decision::Go),
        Action::Reject => ask_approval(s, Decision::NoGo),
        Action::Rollback => ask_rollback(s),
        Action::ToggleHistory => match s.mode {
            Mode::Console => {
                s.mode = Mode::History;
                s.history_cursor = 0;
                load_history(s)
            }
            Mode::History => {
                s.mode = Mode::Console;
                vec![]
            }
        },
        Action::Back => {
            s.mode = Mode::Console;
            vec![]
        }
        Action::ScrollUp => {
            move_cursor(s, -1);
            vec![]
        }
        Action::ScrollDown => {
            move_cursor(s, 1);
            vec![]
        }
        Action::PageUp => {
            move_cursor(s, -(page(s) as isize));
            vec![]
        }
        Action::PageDown => {
            move_cursor(s, page(s) as isize);
            vec![]
        }
        Action::Top => {
            s.history_cursor = 0;
            vec![]
        }
        Action::Bottom => {
            s.history_cursor = s.history_rows().len().saturating_sub(1);
            vec![]
        }
        Action::Filter => {
            s.history_filter.clear();
            s.history_cursor = 0;
            s.overlays.push(Overlay::Filter);
            vec![]
        }
        Action::Details => {
            let detail = match s.mode {
                Mode::History => s
                    .history_rows()
                    .get(s.history_cursor)
                    .map(|e| Detail::Audit((*e).clone())),
                Mode::Console => s.selected_env().map(|e| Detail::Env(e.name.clone())),
            };
            if let Some(d) = detail {
                s.help_scroll = 0;
                s.overlays.push(Overlay::Detail(d));
            }
            vec![]
        }
        Action::PickVersion => open_picker(s),
        Action::Help => {
            s.help_scroll = 0;
            s.overlays.push(Overlay::Help);
            vec![]
        }
        Action::Cancel => {
            match s.overlays.pop() {
                None => {
                    s.alarm = None;
                    s.notices.clear();
                }
                Some(Overlay::Filter) => s.history_filter.clear(),
                Some(_) => {}
            }
            vec![]
        }
        Action::Confirm => match s.overlays.pop() {
            Some(Overlay::Dialog(d)) => confirm(s, d),
            Some(Overlay::Picker(p)) => match p.items.get(p.cursor) {
                Some(item) => vec![Effect::Plan {
                    env: p.env.clone(),
                    version: item.version.clone(),
                }],
                None => vec![],
            },
            // Enter keeps the filter.
            Some(Overlay::Filter) => vec![],
            Some(other) => {
                s.overlays.push(other);
                vec![]
            }
            None => vec![],
        },
        Action::Quit => {
            let running = s.running();
            if running.is_empty() {
                quit(s)
            } else {
                s.overlays.push(Overlay::Dialog(Dialog {
                    action: Pending::Quit { running },
                    note: None,
                }));
                vec![]
            }
        }
        Action::ForceQuit => quit(s),
    }
}

/// Rows a page of the history view holds.
fn page(s: &State) -> usize {
    if s.overlays.is_empty() && s.mode == Mode::Console {
        return COMMIT_PAGE;
    }
    super::view::history_page(s)
}

/// Commits one PageUp/PageDown moves in the pending panel.
const COMMIT_PAGE: usize = 10;

/// Move the cursor of the picker, the help screen or the history view.
fn move_cursor(s: &mut State, by: isize) {
    let step = |at: usize, len: usize| -> usize {
        (at as isize + by).clamp(0, len.saturating_sub(1) as isize) as usize
    };
    match s.overlays.last_mut() {
        Some(Overlay::Picker(p)) => {
            p.cursor = step(p.cursor, p.items.len());
            return;
        }
        Some(Overlay::Help | Overlay::Detail(_)) => {
            let max = super::view::overlay_scroll_max(s);
            s.help_scroll = step(s.help_scroll, max + 1);
            return;
        }
        None if s.mode == Mode::Console => {
            let n = s
                .selected_env()
                .and_then(|e| e.release.as_ref())
                .map_or(0, |r| r.commits.len());
            s.commit_scroll = step(s.commit_scroll, n);
            return;
        }
        _ => {}
    }
    let n = s.history_rows().len();
    s.history_cursor = step(s.history_cursor, n);
}

fn on_mouse(s: &mut State, ev: MouseEvent) -> Vec<Effect> {
    if !s.settings.mouse || s.too_small() || !s.overlays.is_empty() {
        return vec![];
    }
    match ev.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            if let Some(i) = super::view::env_at(s, ev.column, ev.row) {
                s.selected = i;
                s.dirty = true;
            }
        }
        MouseEventKind::ScrollUp => {
            move_cursor(s, -3);
            s.dirty = true;
        }
        MouseEventKind::ScrollDown => {
            move_cursor(s, 3);
            s.dirty = true;
        }
        _ => {}
    }
    vec![]
}

/// Versions that could go to the environment at `idx`: what the earlier
/// stages run (nearest first), then what they ran (newest first), never
/// what it runs already.
fn pick_items(s: &State, idx: usize) -> Vec<PickItem> {
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
            let ago = super::format::age((s.now - entry.at).num_seconds());
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

fn open_picker(s: &mut State) -> Vec<Effect> {
    let Some(env) = s.selected_env().cloned() else {
        return vec![];
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
fn refresh_picker(s: &mut State) {
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
fn on_plan(
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

fn quit(s: &mut State) -> Vec<Effect> {
    s.quit = true;
    vec![Effect::Quit]
}

fn load_history(s: &mut State) -> Vec<Effect> {
    if s.history_loading {
        return vec![];
    }
    s.history_loading = true;
    vec![Effect::LoadHistory {
        limit: HISTORY_LIMIT,
    }]
}

/// Refuse in read-only mode or while `env` is busy; `None` means go on.
fn refuse(s: &mut State, what: &str, env: &EnvStatus, allow_watch: bool) -> bool {
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
    false
}

fn ask_promote(s: &mut State) -> Vec<Effect> {
    let Some(env) = s.selected_env().cloned() else {
        return vec![];
    };
    if refuse(s, "promote", &env, false) {
        return vec![];
    }
    if s.status_stale {
        // The gates shown predate the last action (a Go just recorded, say):
        // judge the promotion on the snapshot that is on its way.
        s.promote_when_fresh = true;
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

fn ask_approval(s: &mut State, decision: Decision) -> Vec<Effect> {
    let Some(env) = s.selected_env().cloned() else {
        return vec![];
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

fn ask_review(
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

fn ask_rollback(s: &mut State) -> Vec<Effect> {
    let target = match &s.alarm {
        Some(a) => s.env_status(&a.env).cloned(),
        None => s.selected_env().cloned(),
    };
    let Some(env) = target else {
        return vec![];
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

fn start(s: &mut State, env: &str, kind: TaskKind, version: Option<crate::domain::Version>) {
    let now = s.now;
    s.env_ui_mut(env).task = Some(Task {
        kind,
        started: now,
        version,
    });
}

fn confirm(s: &mut State, d: Dialog) -> Vec<Effect> {
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
        Pending::Quit { .. } => quit(s),
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

fn on_engine(s: &mut State, ev: Event) -> Vec<Effect> {
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
                s.watched.insert(env.clone(), version.clone());
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

fn on_verdict(s: &mut State, env: &str, verdict: Verdict, finished: bool) {
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

fn on_done(
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
        Err(Failure { reason, refused }) => {
            if kind == TaskKind::Watch
                && let Some(w) = s.env_ui_mut(&env).window.as_mut()
            {
                w.running = false;
            }
            let how = if refused { "refused" } else { "failed" };
            s.notify(
                Level::Error,
                format!("{} of {env} {how}: {reason}", kind.verb()),
            );
        }
    }
    effects
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::domain::{Approval, DeployRecord};
    use crate::monitor::{Metric, Sample};
    use crate::tui::msg::{Done, Failure};
    use crate::tui::state::Detail;
    use crate::tui::state::{Level, MAX_SAMPLES, Settings};
    use crate::tui::tests::fixture::*;
    use crate::tui::theme::Theme;

    fn ctrl_c(s: &mut State) -> Vec<Effect> {
        update(
            s,
            Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        )
    }

    fn notice(s: &State) -> String {
        s.notices
            .front()
            .map(|n| n.text.clone())
            .unwrap_or_default()
    }

    fn dialog(s: &State) -> Option<&Pending> {
        match s.overlays.last() {
            Some(Overlay::Dialog(d)) => Some(&d.action),
            _ => None,
        }
    }

    #[test]
    fn selection_stays_in_bounds_and_survives_reloads() {
        let mut s = console();
        assert_eq!(s.selected, 3);
        key(&mut s, 'l');
        assert_eq!(s.selected, 3, "no column right of production");
        for _ in 0..6 {
            key(&mut s, 'h');
        }
        assert_eq!(s.selected, 0);
        code(&mut s, KeyCode::Right);
        let st = status(s.now, 1);
        update(&mut s, Msg::StatusLoaded(Ok(st)));
        assert_eq!(s.selected_env().unwrap().name, "development");
    }

    #[test]
    fn ticks_poll_the_status_every_refresh_and_never_twice_at_once() {
        let settings = Settings {
            refresh: std::time::Duration::from_secs(5),
            ..settings()
        };
        let mut s = State::new(settings, Theme::dark(), t0());
        assert_eq!(update(&mut s, Msg::Tick(t0())), vec![Effect::LoadStatus]);
        assert_eq!(
            update(&mut s, Msg::Tick(t0() + Duration::seconds(6))),
            vec![],
            "still loading"
        );
        update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
        assert_eq!(
            update(&mut s, Msg::Tick(t0() + Duration::seconds(7))),
            vec![Effect::LoadStatus]
        );
        update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
        assert_eq!(
            update(&mut s, Msg::Tick(t0() + Duration::seconds(8))),
            vec![],
            "refresh not due"
        );
        assert_eq!(
            update(&mut s, Msg::Tick(t0() + Duration::seconds(12))),
            vec![Effect::LoadStatus]
        );
    }

    #[test]
    fn a_store_change_reads_the_status_at_once_and_again_after_one_in_flight() {
        let settings = Settings {
            refresh: std::time::Duration::from_secs(60),
            ..settings()
        };
        let mut s = State::new(settings, Theme::dark(), t0());
        assert_eq!(update(&mut s, Msg::Tick(t0())), vec![Effect::LoadStatus]);
        update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
        // Long before the next refresh, another process approved.
        assert_eq!(update(&mut s, Msg::StoreChanged), vec![Effect::LoadStatus]);
        // A change while that read is on its way: it may predate the
        // change, so one more read follows it.
        assert_eq!(update(&mut s, Msg::StoreChanged), vec![]);
        assert_eq!(
            update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0)))),
            vec![Effect::LoadStatus]
        );
        update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
        assert_eq!(
            update(&mut s, Msg::Tick(t0() + Duration::seconds(5))),
            vec![],
            "the refresh clock is not shortened by it"
        );
    }

    #[test]
    fn status_error_keeps_the_last_snapshot() {
        let mut s = console();
        let before = s.status.as_ref().unwrap().generated_at;
        update(&mut s, Msg::StatusLoaded(Err("boom".into())));
        assert_eq!(s.status.as_ref().unwrap().generated_at, before);
        assert!(matches!(
            s.status_panel(),
            crate::tui::state::PanelState::Error { reason: "boom", .. }
        ));
        let st = status(s.now, 3);
        update(&mut s, Msg::StatusLoaded(Ok(st)));
        assert!(matches!(
            s.status_panel(),
            crate::tui::state::PanelState::Loaded { .. }
        ));
    }

    #[test]
    fn live_points_are_deduplicated_and_age_pruned() {
        let mut s = console();
        let n = s.envs["production"].live.len();
        assert_eq!(n, 121);
        let again = s.status.clone().unwrap();
        update(&mut s, Msg::StatusLoaded(Ok(again)));
        assert_eq!(
            s.envs["production"].live.len(),
            n,
            "same as_of is one point"
        );
        s.status_loading = false;
        let later = s.now + Duration::minutes(25);
        update(&mut s, Msg::Tick(later));
        let left = s.envs["production"].live.len();
        assert!(left < n && left > 0, "older than 30 min dropped: {left}");
    }

    #[test]
    fn promote_right_after_a_go_waits_for_the_fresh_snapshot() {
        let mut s = console();
        key(&mut s, 'a');
        code(&mut s, KeyCode::Enter);
        let a = Approval {
            env: "production".into(),
            version: v("v1.8.0"),
            decision: Decision::Go,
            actor: "alice".into(),
            at: t0(),
            note: None,
        };
        let fx = update(
            &mut s,
            Msg::ActionDone {
                env: "production".into(),
                kind: TaskKind::Approve,
                result: Ok(Done::Recorded(a)),
            },
        );
        assert!(fx.contains(&Effect::LoadStatus) || s.reload_after, "{fx:?}");
        // The snapshot on screen still says "no Go": p must not be refused on it.
        assert_eq!(key(&mut s, 'p'), vec![]);
        assert!(s.overlays.is_empty());
        assert!(!notice(&s).contains("cannot promote"), "{}", notice(&s));
        let mut fresh = s.status.clone().unwrap();
        let prod = fresh
            .environments
            .iter_mut()
            .find(|e| e.name == "production")
            .unwrap();
        for g in &mut prod.promotion.as_mut().unwrap().gates {
            g.ok = true;
        }
        s.reload_after = false;
        update(&mut s, Msg::StatusLoaded(Ok(fresh)));
        assert!(
            matches!(s.overlays.last(), Some(Overlay::Dialog(_))),
            "the promote dialog opens once the snapshot is fresh"
        );
    }

    #[test]
    fn promote_refused_by_a_gate_says_why_without_a_dialog() {
        let mut s = console();
        assert_eq!(key(&mut s, 'p'), vec![]);
        assert!(s.overlays.is_empty());
        assert!(notice(&s).contains("cannot promote production: approval — no Go recorded"));
        code(&mut s, KeyCode::Left);
        code(&mut s, KeyCode::Left);
        key(&mut s, 'p');
        assert!(notice(&s).contains("development already runs v1.8.1"));
    }

    #[test]
    fn promote_dialog_confirms_the_version_it_showed() {
        let mut s = console();
        approved(&mut s);
        key(&mut s, 'p');
        let Some(Pending::Promote {
            version, warnings, ..
        }) = dialog(&s)
        else {
            panic!("no promote dialog");
        };
        assert_eq!(version, &v("v1.8.0"));
        assert_eq!(warnings.len(), 1);
        let shown: Vec<String> = warnings.iter().map(|g| g.name.clone()).collect();
        let fx = code(&mut s, KeyCode::Enter);
        assert_eq!(
            fx,
            vec![Effect::Promote {
                env: "production".into(),
                version: v("v1.8.0"),
                from: Some("staging".into()),
                accepted: shown,
                break_freeze: None,
            }]
        );
        assert!(s.overlays.is_empty());
        assert_eq!(
            s.envs["production"].task.as_ref().unwrap().kind,
            TaskKind::Promote
        );
        // A second promote while the first runs is refused locally.
        key(&mut s, 'p');
        assert!(s.overlays.is_empty());
        assert!(notice(&s).contains("busy"));
    }

    #[test]
    fn staging_promote_without_warnings_does_not_accept_any() {
        let mut s = console();
        code(&mut s, KeyCode::Left);
        key(&mut s, 'p');
        let fx = code(&mut s, KeyCode::Enter);
        assert_eq!(
            fx,
            vec![Effect::Promote {
                env: "staging".into(),
                version: v("v1.8.1"),
                from: Some("development".into()),
                accepted: vec![],
                break_freeze: None,
            }]
        );
    }

    #[test]
    fn esc_cancels_without_effects() {
        let mut s = console();
        approved(&mut s);
        key(&mut s, 'p');
        assert_eq!(code(&mut s, KeyCode::Esc), vec![]);
        assert!(s.overlays.is_empty());
        assert!(s.envs["production"].task.is_none());
    }

    #[test]
    fn a_pasted_or_typed_note_loses_escape_sequences_and_bidi_controls() {
        let mut s = console();
        key(&mut s, 'x');
        update(
            &mut s,
            Msg::Paste("\u{1b}]0;pwned-title\u{7}see\u{202e}".into()),
        );
        key(&mut s, '\u{2066}');
        key(&mut s, '!');
        let fx = code(&mut s, KeyCode::Enter);
        assert!(
            matches!(&fx[..], [Effect::Approve { note: Some(n), .. }] if n == "see!"),
            "{fx:?}"
        );
    }

    #[test]
    fn approval_takes_a_note_and_typing_does_not_trigger_keys() {
        let mut s = console();
        key(&mut s, 'x');
        for c in "p q r?".chars() {
            assert_eq!(key(&mut s, c), vec![]);
        }
        code(&mut s, KeyCode::Backspace);
        update(&mut s, Msg::Paste("\nsee INC-42".into()));
        assert!(!s.quit);
        let fx = code(&mut s, KeyCode::Enter);
        assert_eq!(
            fx,
            vec![Effect::Approve {
                env: "production".into(),
                version: v("v1.8.0"),
                decision: Decision::NoGo,
                note: Some("p q r see INC-42".into())
            }]
        );
        // One decision at a time per environment.
        key(&mut s, 'a');
        assert!(s.overlays.is_empty() && notice(&s).contains("busy"));
        let a = Approval {
            env: "production".into(),
            version: v("v1.8.0"),
            decision: Decision::NoGo,
            actor: "alice".into(),
            at: t0(),
            note: None,
        };
        update(
            &mut s,
            Msg::ActionDone {
                env: "production".into(),
                kind: TaskKind::Reject,
                result: Ok(Done::Recorded(a)),
            },
        );
        // An empty note is no note.
        key(&mut s, 'a');
        key(&mut s, ' ');
        let fx = code(&mut s, KeyCode::Enter);
        assert!(
            matches!(
                &fx[..],
                [Effect::Approve {
                    decision: Decision::Go,
                    note: None,
                    ..
                }]
            ),
            "{fx:?}"
        );
    }

    #[test]
    fn read_only_refuses_every_action_with_a_notice() {
        let settings = Settings {
            read_only: true,
            ..settings()
        };
        let mut s = running_console(settings, Theme::dark());
        approved(&mut s);
        for c in ['p', 'a', 'x', 'r'] {
            assert_eq!(key(&mut s, c), vec![]);
            assert!(s.overlays.is_empty());
            assert!(
                notice(&s).starts_with("read-only mode"),
                "{c}: {}",
                notice(&s)
            );
        }
    }

    #[test]
    fn rollback_without_confirmation_acts_at_once() {
        let settings = Settings {
            confirm_rollback: false,
            ..settings()
        };
        let mut s = running_console(settings, Theme::dark());
        let fx = key(&mut s, 'r');
        assert_eq!(
            fx,
            vec![Effect::Rollback {
                env: "production".into(),
                to: Some(v("v1.7.2"))
            }]
        );
        assert!(s.overlays.is_empty());
    }

    #[test]
    fn rollback_with_no_known_good_target_says_so_and_opens_no_dialog() {
        let settings = Settings {
            confirm_rollback: false,
            ..settings()
        };
        let mut s = running_console(settings, Theme::dark());
        // Back on v1.7.2 after v1.8.0 was caught: the last deploy's "from" is
        // the caught release, and the engine says there is nowhere to go.
        let prod = s
            .status
            .as_mut()
            .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
            .unwrap();
        prod.rollback = Some(crate::engine::RollbackTarget {
            to: None,
            detail: "nothing to roll back to: v1.7.2 is the last known-good version".into(),
        });
        assert_eq!(key(&mut s, 'r'), vec![]);
        assert_eq!(
            notice(&s),
            "production: nothing to roll back to: v1.7.2 is the last known-good version"
        );
        // Nor does the confirming console offer a dialog towards "the version before".
        s.settings.confirm_rollback = true;
        assert_eq!(key(&mut s, 'r'), vec![]);
        assert!(dialog(&s).is_none(), "{:?}", s.overlays);
    }

    #[test]
    fn a_canary_with_traffic_and_no_known_good_target_is_rolled_back_by_weight_0() {
        use crate::domain::strategy::{RevertAction, revert_plan};
        let mut s = console();
        let prod = s
            .status
            .as_mut()
            .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
            .unwrap();
        prod.rollback = Some(crate::engine::RollbackTarget {
            to: None,
            detail: "nothing to roll back to yet".into(),
        });
        prod.revert.rollback_plan = revert_plan(
            RevertAction::CanaryWeightZero,
            None,
            None,
            &[],
            "production",
        );
        // Confirming console: the dialog, not "nothing to roll back to".
        key(&mut s, 'r');
        assert!(
            matches!(dialog(&s), Some(Pending::Rollback { to: None, .. })),
            "{:?} / {}",
            s.overlays,
            notice(&s)
        );
        s.overlays.clear();
        s.settings.confirm_rollback = false;
        assert_eq!(
            key(&mut s, 'r'),
            vec![Effect::Rollback {
                env: "production".into(),
                to: None
            }]
        );
    }

    #[test]
    fn rollback_with_no_target_and_no_history_refuses_as_the_column_says() {
        use crate::domain::strategy::{RevertAction, revert_plan};
        let mut s = console();
        // Before any deploy: the engine knows no target and there is no
        // history; its plan is the one for after the next deploy.
        let prod = s
            .status
            .as_mut()
            .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
            .unwrap();
        prod.rollback = None;
        prod.last_deploy = None;
        prod.revert.rollback_plan =
            revert_plan(RevertAction::Redeploy, None, None, &[], "production")
                .after_next_deploy(v("v1.7.3"), None);
        assert_eq!(key(&mut s, 'r'), vec![]);
        assert!(dialog(&s).is_none(), "{:?}", s.overlays);
        assert_eq!(notice(&s), "production: nothing to roll back to yet");
        s.settings.confirm_rollback = false;
        assert_eq!(key(&mut s, 'r'), vec![]);
        assert!(s.overlays.is_empty());

        // A canary with traffic and no history is still stopped by `r`.
        let prod = s
            .status
            .as_mut()
            .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
            .unwrap();
        prod.revert.rollback_plan = revert_plan(
            RevertAction::CanaryWeightZero,
            None,
            None,
            &[],
            "production",
        );
        assert_eq!(
            key(&mut s, 'r'),
            vec![Effect::Rollback {
                env: "production".into(),
                to: None
            }]
        );
    }

    #[test]
    fn rollback_asks_by_default_and_names_the_strategy() {
        let mut s = console();
        assert_eq!(
            key(&mut s, 'r'),
            vec![Effect::LoadHistory {
                limit: HISTORY_LIMIT
            }],
            "the dialog's expected time and target record come from the audit log"
        );
        let Some(Pending::Rollback {
            from, to, strategy, ..
        }) = dialog(&s)
        else {
            panic!("no rollback dialog");
        };
        assert_eq!(
            (from.clone(), to.clone(), *strategy),
            (Some(v("v1.7.3")), Some(v("v1.7.2")), "redeploy")
        );
    }

    #[test]
    fn quit_asks_while_something_runs_and_ctrl_c_never_asks() {
        let mut s = console();
        assert_eq!(key(&mut s, 'q'), vec![Effect::Quit]);

        let mut s = console();
        monitored(&mut s, 60, false);
        assert_eq!(key(&mut s, 'q'), vec![]);
        let Some(Pending::Quit { running }) = dialog(&s) else {
            panic!("no quit dialog")
        };
        assert_eq!(
            running,
            &vec!["monitoring window of production (29:00 left)".to_string()]
        );
        assert_eq!(code(&mut s, KeyCode::Esc), vec![]);
        assert!(!s.quit);
        key(&mut s, 'q');
        assert_eq!(code(&mut s, KeyCode::Enter), vec![Effect::Quit]);
        assert!(s.quit);

        let mut s = console();
        monitored(&mut s, 60, false);
        key(&mut s, 'a'); // even inside a text field
        assert_eq!(ctrl_c(&mut s), vec![Effect::Quit]);
        assert!(s.quit);
    }

    #[test]
    fn promote_of_a_monitored_env_starts_its_window_and_others_do_not() {
        let mut s = console();
        let record = |env: &str| DeployRecord {
            env: env.into(),
            version: v("v1.8.1"),
            from_version: Some(v("v1.8.0")),
            at: t0(),
            actor: "alice".into(),
            kind: crate::domain::DeployKind::Promote,
            url: None,
        };
        let fx = update(
            &mut s,
            Msg::ActionDone {
                env: "staging".into(),
                kind: TaskKind::Promote,
                result: Ok(Done::Deployed(record("staging"))),
            },
        );
        assert!(!fx.iter().any(|e| matches!(e, Effect::Watch { .. })));
        s.status_loading = false;
        let fx = update(
            &mut s,
            Msg::ActionDone {
                env: "production".into(),
                kind: TaskKind::Promote,
                result: Ok(Done::Deployed(record("production"))),
            },
        );
        assert_eq!(
            fx,
            vec![
                Effect::LoadStatus,
                Effect::Watch {
                    env: "production".into()
                }
            ]
        );
        assert_eq!(
            s.envs["production"].task.as_ref().unwrap().kind,
            TaskKind::Watch
        );
    }

    #[test]
    fn refused_and_failed_actions_show_the_engine_reason() {
        let mut s = console();
        update(
            &mut s,
            Msg::ActionDone {
                env: "production".into(),
                kind: TaskKind::Promote,
                result: Err(Failure {
                    reason: "refused: no Go recorded for v1.8.0 (approval)".into(),
                    refused: true,
                }),
            },
        );
        assert_eq!(
            notice(&s),
            "promote of production refused: refused: no Go recorded for v1.8.0 (approval)"
        );
        assert_eq!(s.notices.front().unwrap().level, Level::Error);
        update(
            &mut s,
            Msg::ActionDone {
                env: "staging".into(),
                kind: TaskKind::Rollback,
                result: Err(Failure {
                    reason: "deploy hook exited 1".into(),
                    refused: false,
                }),
            },
        );
        assert_eq!(
            notice(&s),
            "roll back of staging failed: deploy hook exited 1"
        );
        let a = Approval {
            env: "production".into(),
            version: v("v1.8.0"),
            decision: Decision::Go,
            actor: "alice".into(),
            at: t0(),
            note: None,
        };
        update(
            &mut s,
            Msg::ActionDone {
                env: "production".into(),
                kind: TaskKind::Approve,
                result: Ok(Done::Recorded(a)),
            },
        );
        assert_eq!(notice(&s), "Go recorded for v1.8.0 → production by alice");
    }

    #[test]
    fn regression_alarms_once_without_auto_rollback_and_r_targets_it() {
        let mut s = console();
        monitored(&mut s, 200, true);
        let alarm = s.alarm.clone().expect("alarm");
        assert_eq!(alarm.env, "production");
        assert!(alarm.reason.contains("6.1%"));
        s.alarm = None;
        let verdict = s.envs["production"]
            .window
            .as_ref()
            .unwrap()
            .verdict
            .clone()
            .unwrap();
        update(
            &mut s,
            Msg::Engine(Event::MonitorFinished {
                env: "production".into(),
                verdict,
            }),
        );
        assert!(s.alarm.is_none(), "announced once per window");
    }

    #[test]
    fn regression_with_auto_rollback_only_notifies() {
        let settings = Settings {
            auto_rollback: true,
            ..settings()
        };
        let mut s = running_console(settings, Theme::dark());
        monitored(&mut s, 200, true);
        assert!(s.alarm.is_none());
        assert!(
            s.notices
                .iter()
                .any(|n| n.text.contains("rolling back automatically"))
        );
        update(
            &mut s,
            Msg::Engine(Event::DeployStarted {
                env: "production".into(),
                version: v("v1.7.3"),
                from: Some(v("v1.8.0")),
                rollback: true,
            }),
        );
        assert!(s.envs["production"].deploy.as_ref().unwrap().rollback);
    }

    #[test]
    fn window_series_are_bounded() {
        let mut s = console();
        monitored(&mut s, 10, false);
        let w = s.env_ui_mut("production").window.as_mut().unwrap();
        for i in 0..(MAX_SAMPLES + 50) {
            w.push(Sample {
                t: 1.0 + i as f64,
                requests: 1.0,
                errors: 0.0,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
            });
        }
        assert_eq!(w.samples.len(), MAX_SAMPLES);
        assert_eq!(w.samples.front().unwrap().t, 51.0, "oldest dropped first");
        assert_eq!(w.baseline.len(), 180, "baseline untouched");
    }

    #[test]
    fn history_toggles_and_scrolls_within_bounds() {
        let mut s = console();
        assert!(matches!(
            &key(&mut s, 'H')[..],
            [Effect::LoadHistory { .. }]
        ));
        assert_eq!(s.mode, Mode::History);
        assert_eq!(key(&mut s, 'p'), vec![], "no actions from the audit log");
        update(&mut s, Msg::HistoryLoaded(Ok(vec![])));
        key(&mut s, 'j');
        assert_eq!(s.history_cursor, 0);
        code(&mut s, KeyCode::Tab);
        assert_eq!(s.mode, Mode::Console);
        let _ = Metric::ErrorRate;
    }

    #[test]
    fn history_has_a_cursor_pages_a_filter_details_and_esc_returns() {
        let mut s = console();
        update(&mut s, Msg::Resize(100, 30));
        key(&mut s, 'H');
        let log = audit_log(s.now);
        update(&mut s, Msg::HistoryLoaded(Ok(log)));
        let n = s.history_rows().len();
        assert_eq!(n, 40);
        key(&mut s, 'j');
        code(&mut s, KeyCode::Down);
        assert_eq!(s.history_cursor, 2);
        key(&mut s, 'G');
        assert_eq!(s.history_cursor, n - 1);
        key(&mut s, 'j');
        assert_eq!(s.history_cursor, n - 1, "stays on the last row");
        key(&mut s, 'g');
        assert_eq!(s.history_cursor, 0);
        code(&mut s, KeyCode::PageDown);
        let page = s.history_cursor;
        assert_eq!(page, 14, "a page is what the view shows at 100×30");
        code(&mut s, KeyCode::PageUp);
        assert_eq!(s.history_cursor, 0);
        // Enter opens the highlighted record in full; Esc closes it.
        key(&mut s, 'j');
        code(&mut s, KeyCode::Enter);
        match s.overlays.last() {
            Some(Overlay::Detail(Detail::Audit(e))) => assert_eq!(e.id, 39),
            other => panic!("no detail: {other:?}"),
        }
        code(&mut s, KeyCode::Esc);
        assert!(s.overlays.is_empty());
        assert_eq!(s.mode, Mode::History);
        // `/` filters; typed keys are text, not commands.
        key(&mut s, '/');
        for c in "rollback".chars() {
            key(&mut s, c);
        }
        assert_eq!(s.history_filter, "rollback");
        assert_eq!(s.mode, Mode::History);
        assert_eq!(s.history_rows().len(), 1);
        code(&mut s, KeyCode::Enter);
        assert!(s.overlays.is_empty(), "Enter keeps the filter");
        assert_eq!(s.history_rows().len(), 1);
        key(&mut s, '/');
        key(&mut s, 'q');
        assert!(!s.quit, "q typed into the filter");
        code(&mut s, KeyCode::Esc);
        assert!(s.history_filter.is_empty(), "Esc clears the filter");
        assert_eq!(s.history_rows().len(), n);
        // Esc returns to the console.
        code(&mut s, KeyCode::Esc);
        assert_eq!(s.mode, Mode::Console);
    }

    #[test]
    fn picker_offers_what_earlier_stages_run_or_ran_and_promotes_that_version() {
        let mut s = console();
        s.history = Some(audit_log(s.now));
        let fx = key(&mut s, 'P');
        assert_eq!(
            fx,
            vec![Effect::LoadHistory {
                limit: HISTORY_LIMIT
            }]
        );
        let Some(Overlay::Picker(p)) = s.overlays.last() else {
            panic!("no picker");
        };
        let listed: Vec<(String, &str)> = p
            .items
            .iter()
            .map(|i| (i.version.to_string(), i.seen.as_str()))
            .collect();
        assert_eq!(listed[0], ("v1.8.0".to_string(), "runs on staging"));
        assert_eq!(
            listed[1],
            ("v1.8.1".to_string(), "runs on development, local")
        );
        assert!(
            listed
                .iter()
                .any(|(v, seen)| v == "v1.7.9" && seen.starts_with("ran on staging")),
            "{listed:?}"
        );
        assert!(
            !listed.iter().any(|(v, _)| v == "v1.7.3"),
            "production runs it already"
        );
        key(&mut s, 'j');
        let fx = code(&mut s, KeyCode::Enter);
        assert_eq!(
            fx,
            vec![Effect::Plan {
                env: "production".into(),
                version: v("v1.8.1")
            }]
        );
        // The engine's plan: a warning, so the normal dialog asks again.
        let mut plan = s
            .env_status("production")
            .unwrap()
            .promotion
            .clone()
            .unwrap();
        plan.version = v("v1.8.1");
        plan.skips = vec!["staging".into()];
        for g in &mut plan.gates {
            g.ok = g.severity == crate::domain::GateSeverity::Block;
        }
        update(
            &mut s,
            Msg::PlanLoaded {
                env: "production".into(),
                version: v("v1.8.1"),
                result: Ok(plan.clone()),
            },
        );
        let Some(Pending::Promote {
            version,
            explicit,
            skips,
            ..
        }) = dialog(&s)
        else {
            panic!("no promote dialog");
        };
        assert_eq!((version, *explicit), (&v("v1.8.1"), true));
        assert_eq!(skips, &vec!["staging".to_string()]);
        assert_eq!(
            code(&mut s, KeyCode::Enter),
            vec![Effect::Promote {
                env: "production".into(),
                version: v("v1.8.1"),
                from: plan.from.clone(),
                accepted: plan.warnings().map(|g| g.name.clone()).collect(),
                break_freeze: None,
            }]
        );
        // A refused plan says why, without a dialog.
        let mut s = console();
        key(&mut s, 'P');
        code(&mut s, KeyCode::Enter);
        plan.gates[1].ok = false;
        update(
            &mut s,
            Msg::PlanLoaded {
                env: "production".into(),
                version: v("v1.8.1"),
                result: Ok(plan),
            },
        );
        assert!(s.overlays.is_empty());
        assert!(notice(&s).starts_with("cannot promote v1.8.1 to production: approval"));
        // The first stage has nothing before it.
        let mut s = console();
        for _ in 0..3 {
            key(&mut s, 'h');
        }
        key(&mut s, 'P');
        assert!(s.overlays.is_empty());
        assert!(notice(&s).contains("first stage"), "{}", notice(&s));
    }

    #[test]
    fn a_deploy_made_elsewhere_is_watched_once() {
        let mut s = console();
        let now = s.now;
        // Another console promotes production: it runs v1.8.0 now.
        let mut st = deployed_status(now, 300, now - Duration::seconds(3), false);
        st.environments[3].state = EnvState::Idle;
        st.environments[3].last_deploy.as_mut().unwrap().actor = "ops@laptop".into();
        let fx = update(&mut s, Msg::StatusLoaded(Ok(st.clone())));
        assert_eq!(
            fx,
            vec![Effect::Watch {
                env: "production".into()
            }]
        );
        assert_eq!(
            s.envs["production"].task.as_ref().map(|t| t.kind),
            Some(TaskKind::Watch)
        );
        assert!(
            notice(&s).contains("deployed by ops@laptop"),
            "{}",
            notice(&s)
        );
        // The next snapshots of the same deploy start nothing more, even
        // once this console's window has ended.
        assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(st.clone()))), vec![]);
        s.envs.get_mut("production").unwrap().task = None;
        let mut monitoring = st.clone();
        monitoring.environments[3].state = EnvState::Monitoring;
        assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(monitoring))), vec![]);
        // An environment that is not monitored is not watched.
        let mut st2 = st.clone();
        st2.environments[2].version = Some(v("v1.8.1"));
        assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(st2))), vec![]);
        // A rollback is not a release to judge.
        let mut s = console();
        let mut back = status(now, 1);
        back.environments[3].version = Some(v("v1.7.2"));
        back.environments[3].last_deploy = Some(DeployRecord {
            env: "production".into(),
            version: v("v1.7.2"),
            from_version: Some(v("v1.7.3")),
            at: now,
            actor: "ops".into(),
            kind: crate::domain::DeployKind::Rollback,
            url: None,
        });
        assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(back))), vec![]);
        // Nor is the version a rollback lands on, seen before the rollback
        // is recorded (the snapshot still names the promote as last deploy).
        let mut s = console();
        update(&mut s, Msg::StatusLoaded(Ok(status(now, 1))));
        update(
            &mut s,
            Msg::Engine(Event::DeployStarted {
                env: "production".into(),
                version: v("v1.7.2"),
                from: Some(v("v1.7.3")),
                rollback: true,
            }),
        );
        let mut mid = status(now, 2);
        mid.environments[3].version = Some(v("v1.7.2"));
        let fx = update(&mut s, Msg::StatusLoaded(Ok(mid)));
        assert!(
            !fx.iter().any(|e| matches!(e, Effect::Watch { .. })),
            "{fx:?}"
        );
        // Its own promote starts its own window, and only one.
        let mut s = console();
        monitored(&mut s, 20, false);
        let again = deployed_status(s.now, 400, s.now, false);
        let fx = update(&mut s, Msg::StatusLoaded(Ok(again)));
        assert!(
            !fx.iter().any(|e| matches!(e, Effect::Watch { .. })),
            "{fx:?}"
        );
    }

    #[test]
    fn someone_elses_deploy_loads_the_audit_log_that_names_them() {
        let mut s = console();
        let now = s.now;
        let mut st = status(now, 7);
        st.environments[3].state = EnvState::Deploying;
        st.environments[3].state_since = Some(now - Duration::seconds(12));
        let fx = update(&mut s, Msg::StatusLoaded(Ok(st.clone())));
        assert!(
            fx.contains(&Effect::LoadHistory {
                limit: HISTORY_LIMIT
            }),
            "{fx:?}"
        );
        update(&mut s, Msg::HistoryLoaded(Ok(vec![])));
        // Still deploying: no reload every second.
        let fx = update(&mut s, Msg::StatusLoaded(Ok(st)));
        assert!(!fx.iter().any(|e| matches!(e, Effect::LoadHistory { .. })));
    }

    #[test]
    fn mouse_click_selects_and_wheel_scrolls_unless_turned_off() {
        use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let ev = |kind, column, row| {
            Msg::Mouse(MouseEvent {
                kind,
                column,
                row,
                modifiers: KeyModifiers::NONE,
            })
        };
        let mut s = console();
        update(&mut s, Msg::Resize(160, 45));
        assert_eq!(s.selected, 3);
        update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 10, 4));
        assert_eq!(s.selected_env().unwrap().name, "local");
        update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 100, 4));
        assert_eq!(s.selected_env().unwrap().name, "staging");
        update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 100, 30));
        assert_eq!(
            s.selected_env().unwrap().name,
            "staging",
            "outside the columns"
        );
        key(&mut s, 'H');
        let log = audit_log(s.now);
        update(&mut s, Msg::HistoryLoaded(Ok(log)));
        update(&mut s, ev(MouseEventKind::ScrollDown, 50, 20));
        update(&mut s, ev(MouseEventKind::ScrollDown, 50, 20));
        assert_eq!(s.history_cursor, 6);
        update(&mut s, ev(MouseEventKind::ScrollUp, 50, 20));
        assert_eq!(s.history_cursor, 3);

        let off = Settings {
            mouse: false,
            ..settings()
        };
        let mut s = running_console(off, Theme::dark());
        update(&mut s, Msg::Resize(160, 45));
        update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 10, 4));
        assert_eq!(s.selected, 3, "mouse = false ignores clicks");
    }

    fn progress(waiting: Option<bool>) -> crate::backends::deploy::Progress {
        crate::backends::deploy::Progress {
            what: "GitHub Actions run #812".into(),
            state: if waiting.is_some() {
                "waiting".into()
            } else {
                "in progress".into()
            },
            elapsed_s: 72.0,
            step: waiting.is_none().then(|| "deploy / migrate".into()),
            url: Some("https://github.com/acme/shop/actions/runs/4242".into()),
            waiting: waiting.map(|can_answer| crate::backends::deploy::Waiting {
                prompt: "waiting on a reviewer for environment production".into(),
                can_answer,
            }),
        }
    }

    fn deploying(s: &mut State) {
        update(
            s,
            Msg::Engine(Event::DeployStarted {
                env: "production".into(),
                version: v("v1.8.0"),
                from: Some(v("v1.7.3")),
                rollback: false,
            }),
        );
    }

    #[test]
    fn a_backend_report_is_kept_and_its_clock_counts_on() {
        let mut s = console();
        deploying(&mut s);
        update(
            &mut s,
            Msg::Engine(Event::DeployProgress {
                env: "production".into(),
                progress: progress(None),
            }),
        );
        let now = s.now + Duration::seconds(8);
        update(&mut s, Msg::Tick(now));
        let d = s.envs["production"].deploy.as_ref().unwrap();
        assert_eq!(
            d.backend_line(s.now).as_deref(),
            Some("GitHub Actions run #812: in progress, 1m20s — deploy / migrate")
        );
        assert!(d.waiting().is_none());
    }

    #[test]
    fn a_and_x_answer_the_review_a_deploy_waits_for_with_the_note() {
        let mut s = console();
        deploying(&mut s);
        update(
            &mut s,
            Msg::Engine(Event::DeployProgress {
                env: "production".into(),
                progress: progress(Some(true)),
            }),
        );
        assert!(
            notice(&s).contains("waiting on a reviewer for environment production")
                && notice(&s).contains("a approves"),
            "{}",
            notice(&s)
        );
        key(&mut s, 'a');
        assert!(
            matches!(dialog(&s), Some(Pending::Review { approve: true, .. })),
            "{:?}",
            dialog(&s)
        );
        for c in "db ok".chars() {
            key(&mut s, c);
        }
        let fx = code(&mut s, KeyCode::Enter);
        assert_eq!(
            fx,
            vec![Effect::Review {
                env: "production".into(),
                version: v("v1.8.0"),
                approve: true,
                note: Some("db ok".into()),
            }]
        );
        key(&mut s, 'x');
        assert!(matches!(
            dialog(&s),
            Some(Pending::Review { approve: false, .. })
        ));
        let fx = code(&mut s, KeyCode::Enter);
        assert!(
            matches!(
                &fx[..],
                [Effect::Review {
                    approve: false,
                    note: None,
                    ..
                }]
            ),
            "{fx:?}"
        );
        // The answer lands: said, and the deploy task goes on.
        update(
            &mut s,
            Msg::ActionDone {
                env: "production".into(),
                kind: TaskKind::Review,
                result: Ok(Done::Reviewed(
                    "GitHub environment production: approved".into(),
                )),
            },
        );
        assert!(notice(&s).contains("approved"), "{}", notice(&s));
    }

    #[test]
    fn a_review_the_token_may_not_answer_opens_no_dialog_and_says_who_must() {
        let mut s = console();
        deploying(&mut s);
        update(
            &mut s,
            Msg::Engine(Event::DeployProgress {
                env: "production".into(),
                progress: progress(Some(false)),
            }),
        );
        assert_eq!(key(&mut s, 'a'), vec![]);
        assert!(dialog(&s).is_none());
        assert!(
            notice(&s).contains("may not answer it: a required reviewer must"),
            "{}",
            notice(&s)
        );
    }
}
