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

mod dialogs;
mod events;
use dialogs::*;
use events::*;

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
            } else if std::mem::take(&mut s.promote_when_fresh) {
                s.notify(
                    Level::Error,
                    "cannot promote: the fresh status did not load (p tries again)",
                );
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
        Msg::StoreBusy { path, gave_up } => on_store_busy(s, path, gave_up),
        Msg::StoreWaitOver { path, came_free } => {
            on_store_wait_over(s, &path, came_free);
            vec![]
        }
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

/// Another process holds the store: say so while this console waits for
/// it — until the wait is over (followed: it says when the store came
/// free), and never past the wait's bound: no "waiting" about a store that
/// came free —, and when the wait ran out. The file comes last, so a
/// narrow terminal cuts it before what happened.
fn on_store_busy(s: &mut State, path: String, gave_up: bool) -> Vec<Effect> {
    let wait = crate::store::BUSY_WAIT.as_secs();
    if gave_up {
        s.notify(
            Level::Warn,
            format!("gave up on the store after {wait} s (another process holds it) · {path}"),
        );
        return vec![];
    }
    let text = format!("waiting up to {wait} s for the store (another process holds it) · {path}");
    s.notify_for(Level::Warn, text.clone(), Some(wait as i64));
    let followed = s.store_wait.as_ref().is_some_and(|(p, _)| *p == path);
    s.store_wait = Some((path.clone(), text));
    if followed {
        vec![]
    } else {
        vec![Effect::AwaitStore { path }]
    }
}

/// The wait said by [`on_store_busy`] is over: when the store came free
/// and the line still says "waiting", it says so instead.
fn on_store_wait_over(s: &mut State, path: &str, came_free: bool) {
    let Some((waited, text)) = s.store_wait.take_if(|(p, _)| p == path) else {
        return;
    };
    let showing = s.current_notice().is_some_and(|n| n.text == text);
    if came_free && showing {
        s.notify(Level::Info, format!("the store is free again · {waited}"));
    }
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

/// A monitored environment whose deploy needs a window (made elsewhere:
/// another console, the CLI, a pipeline; or one whose window failed): the
/// engine's rule decides ([`crate::engine::rewatch`]); this console only
/// says so and starts it.
fn watch_new_deploys(s: &mut State, status: &Status) -> Vec<Effect> {
    use crate::engine::rewatch::Seen;
    let mut starts = Vec::new();
    for env in &status.environments {
        let before = s
            .status
            .as_ref()
            .and_then(|p| p.environments.iter().find(|p| p.name == env.name))
            .map(Seen::from);
        let ui = s.env_ui(&env.name);
        let busy = ui.is_some_and(|u| {
            u.task.is_some()
                || u.window
                    .as_ref()
                    .is_some_and(|w| w.running && Some(&w.version) == env.version.as_ref())
        });
        starts.extend(
            s.watched
                .due(&env.name, before, Seen::from(env), busy, s.now),
        );
    }
    let mut effects = Vec::new();
    for w in starts {
        let by =
            w.by.map(|a| format!(" by {a}"))
                .unwrap_or_else(|| " outside this console".into());
        s.notify(
            Level::Info,
            format!(
                "{} now runs {} (deployed{by}) — this console watches it",
                w.env, w.version
            ),
        );
        effects.extend(start_watch(s, &w.env, w.version));
    }
    effects
}

/// Start the monitoring window of `env` for `version` (once per version).
fn start_watch(s: &mut State, env: &str, version: Version) -> Vec<Effect> {
    s.watched.started(env, &version);
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
            Some(Action::ForceQuit) => force_quit(s),
            Some(Action::Quit) if s.running().is_empty() => quit(s),
            _ => {
                // The enlarge screen shows the newest notice: say why,
                // and that the key is dropped, not kept for later.
                if let Some(k) = key_label(&ev) {
                    s.notify(
                        Level::Warn,
                        format!(
                            "{k} ignored: it needs a terminal of {}×{}",
                            super::view::MIN_WIDTH,
                            super::view::MIN_HEIGHT
                        ),
                    );
                }
                vec![]
            }
        };
    }
    if let Some(action) = keymap::lookup(ctx, &ev) {
        return on_action(s, action);
    }
    if ctx != Context::Input {
        // Every key answers: one bound nowhere here says so.
        if let Some(k) = key_label(&ev) {
            let hint = match ctx {
                Context::Dialog => "Enter confirms, Esc cancels",
                Context::Help | Context::Detail | Context::Picker => "Esc closes this view",
                _ => "? lists the keys",
            };
            s.notify_here(Level::Info, format!("{k} does nothing here: {hint}"));
        }
        return vec![];
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

/// ← at the first environment, → at the last: the selection cannot move,
/// and the status line says why.
fn edge(s: &mut State, which: &str) {
    match s.selected_env().map(|e| e.name.clone()) {
        Some(name) => s.notify(Level::Info, format!("{name} is the {which} environment")),
        None => {
            not_loaded(s, "select an environment");
        }
    }
}

/// How a key that has no meaning here is named in the notice saying so;
/// `None` for keys nobody expects an answer to (modifiers, media keys).
fn key_label(ev: &KeyEvent) -> Option<String> {
    let name = match ev.code {
        // A character of no width of its own (a lone variation selector,
        // a combining accent) joins the backtick before it and reads as
        // nothing, or as a mark on it: named by its code point instead.
        KeyCode::Char(c)
            if !c.is_control() && super::format::width(c.encode_utf8(&mut [0; 4])) == 0 =>
        {
            format!("U+{:04X}", c as u32)
        }
        KeyCode::Char(c) if !c.is_control() => format!("`{c}`"),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Tab | KeyCode::BackTab => "Tab".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Delete => "Delete".into(),
        KeyCode::Insert => "Insert".into(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::Left | KeyCode::Right | KeyCode::Up | KeyCode::Down => "an arrow key".into(),
        KeyCode::Home | KeyCode::End | KeyCode::PageUp | KeyCode::PageDown => "that key".into(),
        _ => return None,
    };
    Some(if ev.modifiers.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{}", name.trim_matches('`'))
    } else {
        name
    })
}

fn on_action(s: &mut State, action: Action) -> Vec<Effect> {
    s.dirty = true;
    match action {
        Action::SelectPrev => {
            if s.selected == 0 {
                edge(s, "first");
            }
            s.selected = s.selected.saturating_sub(1);
            s.commit_scroll = 0;
            vec![]
        }
        Action::SelectNext => {
            let n = s.environments().len();
            if s.selected + 1 < n {
                s.selected += 1;
            } else {
                edge(s, "last");
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
            match detail {
                Some(d) => {
                    s.help_scroll = 0;
                    s.overlays.push(Overlay::Detail(d));
                }
                None if s.mode == Mode::History => {
                    s.notify(Level::Info, "no history entry to show in full")
                }
                None => return not_loaded(s, "show details"),
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
            if s.running().is_empty() {
                quit(s)
            } else {
                s.overlays.push(Overlay::Dialog(Dialog {
                    action: Pending::Quit,
                    note: None,
                }));
                vec![]
            }
        }
        Action::ForceQuit => force_quit(s),
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

fn quit(s: &mut State) -> Vec<Effect> {
    s.quit = true;
    vec![Effect::Quit]
}

/// Ctrl-C: quit without asking, stopping what runs — kept to be said, and
/// in the exit code (130), as a command Ctrl-C interrupted says it.
fn force_quit(s: &mut State) -> Vec<Effect> {
    s.interrupted = s.running();
    quit(s)
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

#[cfg(test)]
mod tests;
