//! The running console: terminal setup and restore, the event loop, and the
//! effect runner.
//!
//! The loop is `select!` over terminal events, effect results, engine events,
//! the clock and the caller's stop signal → `update` → draw if dirty. Each effect
//! runs as a tokio task that answers with one `Msg`; monitoring windows are
//! kept by environment so they can be cancelled.
//!
//! The terminal is restored on every way out: normal return, `?` errors
//! (the guard's `Drop`), SIGTERM/SIGHUP, and a panic in any thread or task
//! (the panic hook restores it, logs the panic and exits).

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use chrono::Utc;
use crossterm::event::{EnableBracketedPaste, EnableMouseCapture, Event as TermEvent, EventStream};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use crate::engine::{Confirm, Engine, EngineError, Event, Expect, WatchOutcome};
use crate::monitor::VerdictKind;

use super::msg::{Done, Effect, Failure, Msg, TaskKind};
use super::state::{Settings, State};
use super::theme::Theme;
use super::update::update;
use super::view;

/// How the console ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The user quit.
    Quit,
    /// The user quit with Ctrl-C while these actions ran (one line each):
    /// they were stopped, as a command Ctrl-C interrupts.
    Interrupted(Vec<String>),
    /// `stop` resolved with this signal (SIGTERM, SIGHUP, a `kill -INT`).
    Signal(i32),
}

/// Open the console on `engine` and run it until the user quits or `stop`
/// resolves (with a signal's number: the caller listens for SIGTERM and
/// SIGHUP from before the terminal is taken). Either way what the console
/// started is aborted — an action's outcome is queued as "unknown
/// (interrupted)" and its lock released, its commands' process groups
/// killed — and the terminal restored.
///
/// Returns an error only for terminal I/O failures; everything the engine
/// reports is shown in the console itself.
pub async fn run<S>(engine: Engine, stop: S) -> anyhow::Result<Ended>
where
    S: std::future::Future<Output = i32> + Send,
{
    let config = engine.config();
    let no_color = Theme::no_color_requested(std::env::var_os("NO_COLOR").as_deref());
    let theme = Theme::new(config.ui.theme, no_color);
    let settings = Settings::from_config(config);
    let mut state = State::new(settings, theme, Utc::now());
    // The console never waits for CI, review or a stage verdict: it shows
    // "checking…" and the answer on a later refresh.
    engine.evidence_in_background();

    // A panic anywhere (the loop or any task) reaches the one hook that
    // `main` installed: the terminal guard tells it to restore the terminal.
    run_loop(engine, &mut state, stop).await
}

async fn run_loop<S>(engine: Engine, state: &mut State, stop: S) -> anyhow::Result<Ended>
where
    S: std::future::Future<Output = i32> + Send,
{
    tokio::pin!(stop);
    let guard = TerminalGuard::enter(state.settings.mouse)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let size = terminal.size()?;
    state.size = (size.width, size.height);

    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<Msg>();
    // A store held by another process is waited for (bounded) by whatever
    // needs it; the console says so on its notice line, not the log alone.
    let busy = msg_tx.clone();
    crate::store::on_busy_wait(move |n| {
        let _ = busy.send(Msg::StoreBusy {
            path: n.path.to_string(),
            gave_up: n.gave_up,
        });
    });
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let mut runner = Runner {
        engine,
        msgs: msg_tx,
        events: event_tx,
        watches: HashMap::new(),
        tasks: Vec::new(),
    };
    // The live-events seam: another's action shows as soon as the store
    // says so, whatever `ui.refresh` is.
    let mut changes = match runner.engine.changes().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("no live updates from the store (status every refresh only): {e}");
            None
        }
    };
    // Presence: other consoles on this store show this one in their header.
    let presence = tokio::spawn(heartbeat(runner.engine.clone()));
    let mut term_events = EventStream::new();
    // The clock ticks at least every second (countdowns, ages); the status
    // is polled every `ui.refresh` (see `update`).
    let period = state
        .settings
        .refresh
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut first_frame = true;

    // Every way out of the loop — a quit, a signal, a terminal error (a
    // closed terminal fails its writes) — goes through the clean-up below.
    let mut stopped = false;
    let ended: anyhow::Result<Ended> = async {
        loop {
            if state.dirty {
                let mut links = Vec::new();
                let frame = terminal.draw(|f| links = view::draw(state, f))?;
                if !links.is_empty() {
                    write_links(&mut io::stdout(), frame.buffer, &links)?;
                }
                state.dirty = false;
                if std::mem::take(&mut first_frame) {
                    // Debug builds, under test only: a panic in a task of the
                    // console reaches the one hook, which restores the terminal.
                    tokio::spawn(async { crate::logging::panic_if_forced("console") });
                }
            }
            if state.quit {
                return Ok(Ended::Quit);
            }
            let msg = tokio::select! {
                ev = next_term_event(&mut term_events) => match ev {
                    Some(Ok(ev)) => match translate(ev, state.settings.mouse) {
                        Some(msg) => msg,
                        None => continue,
                    },
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(Ended::Quit),
                },
                Some(msg) = msg_rx.recv() => msg,
                Some(ev) = event_rx.recv() => Msg::Engine(ev),
                () = next_change(&mut changes) => Msg::StoreChanged,
                _ = tick.tick() => Msg::Tick(Utc::now()),
                sig = &mut stop => {
                    stopped = true;
                    return Ok(Ended::Signal(sig));
                }
            };
            for effect in update(state, msg) {
                runner.run(effect);
            }
        }
    }
    .await;
    // A terminal that fails (or whose input ends) is often the hangup
    // itself: its SIGHUP, arriving a moment later, says how this ended.
    let ended = match ended {
        Ok(Ended::Quit) if state.quit && !state.interrupted.is_empty() => {
            Ok(Ended::Interrupted(state.interrupted.clone()))
        }
        Ok(Ended::Quit) if state.quit => Ok(Ended::Quit),
        other if !stopped => match tokio::time::timeout(HANGUP_GRACE, &mut stop).await {
            Ok(sig) => Ok(Ended::Signal(sig)),
            Err(_) => other,
        },
        other => other,
    };
    runner.abort_all();
    presence.abort();
    // What the console started is stopped and recorded before the terminal
    // is touched: on a hangup every write to it fails, and nothing after
    // this point may depend on one succeeding.
    // The aborted tasks are dropped on the runtime's threads: wait for that
    // (bounded), so their outcomes are queued before the store settles.
    for h in runner.tasks.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }
    // Leave at once rather than expire (bounded: a locked store must not
    // hold the exit up).
    let _ = tokio::time::timeout(Duration::from_secs(1), runner.engine.leave()).await;
    runner.engine.settle(crate::engine::SETTLE).await;
    // Ratatui's `Drop` reports a failed cursor show with `eprintln!`, which
    // panics on a closed terminal: show it here, ignoring a failure, and
    // never drop the terminal (it owns nothing but a handle on stdout); the
    // guard restores the rest, ignoring failures too.
    let _ = terminal.show_cursor();
    std::mem::forget(terminal);
    drop(guard);
    ended
}

/// How long a console whose terminal failed waits for the signal that may
/// explain it (a closed terminal's SIGHUP: it comes once the session's
/// leader, the login shell, has died of the hangup — later on a busy
/// machine). Only a terminal failing without a signal waits it out.
const HANGUP_GRACE: Duration = Duration::from_secs(1);

/// Say this console is open every [`crate::engine::PRESENCE_BEAT`], until aborted.
async fn heartbeat(engine: Engine) {
    let since = Utc::now();
    let mut every = tokio::time::interval(crate::engine::PRESENCE_BEAT);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        every.tick().await;
        match engine.heartbeat(since).await {
            Ok(()) => failing = false,
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("presence heartbeat: {e}");
                }
            }
        }
    }
}

fn translate(ev: TermEvent, mouse: bool) -> Option<Msg> {
    match ev {
        TermEvent::Key(k) => Some(Msg::Key(k)),
        TermEvent::Mouse(m) if mouse => Some(Msg::Mouse(m)),
        TermEvent::Paste(text) => Some(Msg::Paste(text)),
        TermEvent::Resize(w, h) => Some(Msg::Resize(w, h)),
        _ => None,
    }
}

/// Make the drawn text of each spot a terminal hyperlink (OSC 8): a
/// buffer cell cannot carry one, so after each frame the spot's cells are
/// written again, with their styles, between the link's opening and
/// closing sequences. The URL is printable ASCII only (`expand_link`), so
/// no escape from the config can reach the terminal.
fn write_links(
    out: &mut impl io::Write,
    buffer: &ratatui::buffer::Buffer,
    links: &[view::LinkSpot],
) -> io::Result<()> {
    use crossterm::style::{Print, PrintStyledContent, ResetColor, SetAttribute, StyledContent};
    use crossterm::{cursor::MoveTo, queue};
    use ratatui::backend::IntoCrossterm;
    for l in links {
        if !l.url.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            continue;
        }
        queue!(
            out,
            MoveTo(l.x, l.y),
            Print(format!("\x1b]8;;{}\x1b\\", l.url))
        )?;
        for x in l.x..l.x.saturating_add(l.width) {
            let Some(cell) = buffer.cell((x, l.y)) else {
                break;
            };
            let style = cell.style().into_crossterm();
            queue!(
                out,
                SetAttribute(crossterm::style::Attribute::Reset),
                PrintStyledContent(StyledContent::new(style, cell.symbol().to_string()))
            )?;
        }
        queue!(
            out,
            Print("\x1b]8;;\x1b\\"),
            SetAttribute(crossterm::style::Attribute::Reset),
            ResetColor
        )?;
    }
    out.flush()
}

/// The store's next change; never, once its feed has ended.
async fn next_change(feed: &mut Option<crate::store::Changes>) {
    if let Some(f) = feed {
        if f.changed().await {
            return;
        }
        tracing::warn!("the store's change feed ended; status every refresh only");
        *feed = None;
    }
    std::future::pending::<()>().await
}

async fn next_term_event(stream: &mut EventStream) -> Option<io::Result<TermEvent>> {
    use futures_core::Stream;
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

/// Runs effects as tasks; each answers with a `Msg` on `msgs`.
struct Runner {
    engine: Engine,
    msgs: UnboundedSender<Msg>,
    events: UnboundedSender<Event>,
    /// Running monitoring windows by environment, to cancel them.
    watches: HashMap<String, AbortHandle>,
    /// Every task started (actions, loads), aborted when the console quits:
    /// an aborted action drops its command runs, which kills their process
    /// groups (they run in sessions of their own, out of reach of the
    /// terminal's Ctrl-C), and queues its "unknown (interrupted)" outcome
    /// before the exit waits for the store.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn failure(e: EngineError) -> Failure {
    Failure {
        reason: reason(&e),
        refused: e.exit_code() == 3,
        cause: crate::engine::rewatch::Cause::of(&e),
        caught: false,
    }
}

/// What went wrong, before where: a store's error names its file first
/// (`store /path/shipdeck.db: database is locked`), and the notice line,
/// cut from the right on a narrow terminal, kept the file and lost the
/// cause; the console reads `database is locked · store /path/…`.
/// A refusal reads `refused: <why> (<gate>)` on the command line; the
/// console says "refused" already (`roll back of production refused: …`).
fn reason(e: &EngineError) -> String {
    use crate::store::StoreError as S;
    let full = e.to_string();
    let s = match e {
        EngineError::Store(s) => s,
        EngineError::Refused { gate } => return format!("{} ({})", gate.detail, gate.name),
        _ => return full,
    };
    let at = match s {
        S::Sqlite { path, .. }
        | S::Dir { path, .. }
        | S::Corrupt { path, .. }
        | S::ReadOnly { path, .. }
        | S::Replaced { path, .. }
        | S::Tampered { path, .. } => path,
        S::Config { store, .. }
        | S::Unreachable { store, .. }
        | S::Postgres { store, .. }
        | S::NewerSchema { store, .. }
        | S::NotEmpty { store, .. }
        | S::Conflict { store, .. } => store,
    };
    match full.strip_prefix(&format!("store {at}: ")) {
        Some(cause) => format!("{cause} · store {at}"),
        None => full,
    }
}

impl Runner {
    fn spawn<F>(&mut self, fut: F) -> AbortHandle
    where
        F: std::future::Future<Output = Msg> + Send + 'static,
    {
        let tx = self.msgs.clone();
        let handle = tokio::spawn(async move {
            let msg = fut.await;
            // The loop has ended when the receiver is gone: nothing to tell.
            let _ = tx.send(msg);
        });
        let abort = handle.abort_handle();
        self.tasks.retain(|h| !h.is_finished());
        self.tasks.push(handle);
        abort
    }

    fn run(&mut self, effect: Effect) {
        let engine = self.engine.clone();
        let events = self.events.clone();
        match effect {
            Effect::LoadStatus => {
                self.spawn(async move { Msg::StatusLoaded(Ok(engine.status().await)) });
            }
            Effect::LoadHistory { limit } => {
                self.spawn(async move {
                    Msg::HistoryLoaded(engine.history(None, limit).await.map_err(|e| e.to_string()))
                });
            }
            Effect::Promote {
                env,
                version,
                from,
                accepted,
                break_freeze,
            } => {
                self.spawn(async move {
                    let expect = Expect {
                        version: version.clone(),
                        from,
                        accepted,
                    };
                    let result = engine
                        .promote_breaking(
                            &env,
                            Some(version),
                            Confirm::Seen(expect),
                            break_freeze,
                            Some(events),
                        )
                        .await
                        .map(Done::Deployed)
                        .map_err(failure);
                    Msg::ActionDone {
                        env,
                        kind: TaskKind::Promote,
                        result,
                    }
                });
            }
            Effect::Plan { env, version } => {
                self.spawn(async move {
                    let result = engine.plan(&env, Some(&version)).await.map_err(failure);
                    Msg::PlanLoaded {
                        env,
                        version,
                        result,
                    }
                });
            }
            Effect::Approve {
                env,
                version,
                decision,
                note,
            } => {
                let kind = match decision {
                    crate::domain::Decision::Go => TaskKind::Approve,
                    crate::domain::Decision::NoGo => TaskKind::Reject,
                };
                self.spawn(async move {
                    let result = engine
                        .approve(&env, decision, Some(&version), note)
                        .await
                        .map(Done::Recorded)
                        .map_err(failure);
                    Msg::ActionDone { env, kind, result }
                });
            }
            Effect::Review {
                env,
                version,
                approve,
                note,
            } => {
                self.spawn(async move {
                    let result = engine
                        .review(&env, Some(&version), approve, note)
                        .await
                        .map(Done::Reviewed)
                        .map_err(failure);
                    Msg::ActionDone {
                        env,
                        kind: TaskKind::Review,
                        result,
                    }
                });
            }
            Effect::Rollback { env, to } => {
                self.spawn(async move {
                    let result = engine
                        .rollback(&env, to, Some(events))
                        .await
                        .map(Done::Deployed)
                        .map_err(failure);
                    Msg::ActionDone {
                        env,
                        kind: TaskKind::Rollback,
                        result,
                    }
                });
            }
            Effect::Watch { env } => {
                let key = env.clone();
                let handle = self.spawn(watch(engine, env, events));
                if let Some(old) = self.watches.insert(key, handle) {
                    old.abort();
                }
            }
            Effect::CancelWatch { env } => {
                if let Some(h) = self.watches.remove(&env) {
                    h.abort();
                }
            }
            Effect::AwaitStore { path } => {
                self.spawn(async move {
                    use crate::store::{BusyWaitState, busy_wait_state};
                    loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        match busy_wait_state(&path) {
                            BusyWaitState::Waiting => continue,
                            BusyWaitState::CameFree => {
                                return Msg::StoreWaitOver {
                                    path,
                                    came_free: true,
                                };
                            }
                            BusyWaitState::GaveUp => {
                                return Msg::StoreWaitOver {
                                    path,
                                    came_free: false,
                                };
                            }
                        }
                    }
                });
            }
            Effect::Quit => self.abort_all(),
        }
    }

    fn abort_all(&mut self) {
        for (_, h) in self.watches.drain() {
            h.abort();
        }
        for h in &self.tasks {
            h.abort();
        }
    }
}

/// Run the monitoring window of `env`; its samples arrive as engine events.
async fn watch(engine: Engine, env: String, events: UnboundedSender<Event>) -> Msg {
    let result = match engine.watch(&env, None, Some(events)).await {
        Ok(outcome) => watched(&outcome),
        Err(e) => watch_refused(e),
    };
    Msg::ActionDone {
        env,
        kind: TaskKind::Watch,
        result,
    }
}

/// A watch that did not run: losing the claim to another watcher of the
/// same deploy is no failure (two consoles both saw it unwatched).
fn watch_refused(e: EngineError) -> Result<Done, Failure> {
    match Engine::watched_elsewhere(&e) {
        Some(holder) => Ok(Done::WatchedElsewhere(holder.to_string())),
        None => Err(failure(e)),
    }
}

/// How a monitoring window ended, in one line; a failed automatic
/// rollback is a failure the engineer must see. What became of the
/// release comes before the verdict's reason, which is long (`error rate
/// 5.8% vs baseline 0.31% (19.0x) since t=+11.7s, over 12 steps …`): after
/// it, an 80-column notice line cut "rolled back to v1.7.3" and
/// "automatic rollback failed" off.
fn watched(o: &WatchOutcome) -> Result<Done, Failure> {
    let v = &o.verdict;
    if let Some(e) = &o.rollback_error {
        return Err(Failure {
            reason: format!(
                "regression of {}; automatic rollback failed: {e} — r rolls back ({})",
                o.version, v.reason
            ),
            refused: false,
            cause: crate::engine::rewatch::Cause::Other,
            caught: true,
        });
    }
    if let Some(cause) = &o.unrecorded {
        return Err(Failure {
            reason: format!(
                "{} verdict on {} ({}){}, but could not record it: {cause}",
                v.kind.label(),
                o.version,
                v.reason,
                o.rolled_back
                    .as_ref()
                    .map(|r| format!("; rolled back to {}", r.version))
                    .unwrap_or_default()
            ),
            refused: false,
            // The verdict was reached; only the store would not take it
            // (its retries ran out): watched again as after an outage.
            cause: crate::engine::rewatch::Cause::Outage,
            caught: v.kind == VerdictKind::Regression && o.rolled_back.is_none(),
        });
    }
    if let Some(line) = &o.superseded {
        return Ok(Done::Watched(format!(
            "window of {} ended: {line}",
            o.version
        )));
    }
    let line = match (v.kind, &o.rolled_back) {
        (VerdictKind::Regression, Some(r)) => format!(
            "regression of {}; rolled back to {} automatically ({})",
            o.version, r.version, v.reason
        ),
        (VerdictKind::Regression, None) => {
            format!("regression of {} — r rolls back ({})", o.version, v.reason)
        }
        (VerdictKind::Healthy, _) => format!("window of {} passed: {}", o.version, v.reason),
        (VerdictKind::Collecting | VerdictKind::InsufficientData, _) => {
            format!(
                "window of {} ended without a verdict: {}",
                o.version, v.reason
            )
        }
    };
    Ok(Done::Watched(line))
}

/// Raw mode, the alternate screen, bracketed paste and (unless `[ui]
/// mouse = false`) mouse capture, undone on drop.
struct TerminalGuard;

impl TerminalGuard {
    fn enter(mouse: bool) -> io::Result<TerminalGuard> {
        enable_raw_mode()?;
        // From here on, dropping the guard (or the panic hook) restores
        // the terminal.
        crate::logging::terminal_taken(true);
        let guard = TerminalGuard;
        execute!(io::stdout(), EnterAlternateScreen, EnableBracketedPaste)?;
        if mouse {
            execute!(io::stdout(), EnableMouseCapture)?;
        }
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        crate::logging::terminal_taken(false);
    }
}

use crate::logging::restore_terminal;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeployRecord, Version};
    use crate::monitor::{Metric, Verdict};

    fn outcome(kind: VerdictKind, rolled: bool, err: Option<&str>) -> WatchOutcome {
        let v = |s: &str| Version::parse(s).unwrap();
        let at = Utc::now();
        WatchOutcome {
            env: "production".into(),
            version: v("v1.8.0"),
            deploy_at: at,
            baseline: "baseline: 30m before 14:00:00 UTC".into(),
            verdict: Verdict {
                kind,
                metric: Some(Metric::ErrorRate),
                detected_at: Some(40.0),
                reason: "error rate 6% above 2%".into(),
            },
            rolled_back: rolled.then(|| DeployRecord {
                seq: None,
                env: "production".into(),
                version: v("v1.7.3"),
                from_version: Some(v("v1.8.0")),
                at,
                actor: "shipdeck".into(),
                kind: crate::domain::DeployKind::Rollback,
                url: None,
            }),
            rollback_error: err.map(String::from),
            unrecorded: None,
            claim_refused: None,
            superseded: None,
        }
    }

    #[test]
    fn links_are_written_as_osc8_around_the_drawn_cells() {
        use ratatui::buffer::Buffer;
        use ratatui::layout::Rect;
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 2));
        buf.set_string(3, 1, "logs", ratatui::style::Style::new());
        let spot = |url: &str| view::LinkSpot {
            x: 3,
            y: 1,
            width: 4,
            url: url.into(),
        };
        let mut out = Vec::new();
        write_links(&mut out, &buf, &[spot("https://logs.example.com/?q=prod")]).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("\x1b]8;;https://logs.example.com/?q=prod\x1b\\"),
            "{s:?}"
        );
        assert!(s.contains('l') && s.contains('s'));
        assert!(s.contains("\x1b]8;;\x1b\\"), "closed: {s:?}");
        let mut out = Vec::new();
        write_links(&mut out, &buf, &[spot("https://x/\x1b]0;evil\x07")]).unwrap();
        assert!(out.is_empty(), "an unsafe URL is never written");
    }

    #[test]
    fn a_store_failure_says_its_cause_before_its_file() {
        let path = "/home/alice/.local/share/shipdeck/shipdeck.db";
        let locked = EngineError::Store(crate::store::StoreError::Sqlite {
            path: path.into(),
            cause: "database is locked".into(),
        });
        assert_eq!(
            failure(locked).reason,
            format!("database is locked · store {path}")
        );
        // One that names the file inside its sentence stays as it is.
        let read_only = EngineError::Store(crate::store::StoreError::ReadOnly {
            path: path.into(),
            cause: "mode 0444".into(),
        });
        assert_eq!(
            failure(read_only).reason,
            format!(
                "store {path} is read-only (mode 0444): status and history work, actions are refused"
            )
        );
    }

    #[test]
    fn a_refusal_says_refused_once() {
        let held = EngineError::Refused {
            gate: crate::domain::Gate::block(
                "lock",
                false,
                "production is being rolled back by a@vm (pid 1424 on vm)",
            ),
        };
        let f = failure(held);
        assert!(f.refused);
        assert_eq!(
            f.reason,
            "production is being rolled back by a@vm (pid 1424 on vm) (lock)"
        );
    }

    #[test]
    fn losing_the_watch_claim_to_another_console_is_no_failure() {
        let lost = EngineError::Refused {
            gate: crate::engine::watcher_refusal("production", "ops@laptop (pid 4242)"),
        };
        assert_eq!(
            watch_refused(lost),
            Ok(Done::WatchedElsewhere("ops@laptop (pid 4242)".into()))
        );
        // Any other refusal still is one.
        let other = EngineError::Refused {
            gate: crate::domain::Gate::block("lock", false, "production is locked"),
        };
        assert!(matches!(
            watch_refused(other),
            Err(Failure { refused: true, .. })
        ));
    }

    #[test]
    fn watch_outcomes_read_as_one_line() {
        assert_eq!(
            watched(&outcome(VerdictKind::Regression, true, None)),
            Ok(Done::Watched(
                "regression of v1.8.0; rolled back to v1.7.3 automatically (error rate 6% above 2%)"
                    .into()
            ))
        );
        assert_eq!(
            watched(&outcome(VerdictKind::Healthy, false, None)),
            Ok(Done::Watched(
                "window of v1.8.0 passed: error rate 6% above 2%".into()
            ))
        );
        let failed = watched(&outcome(
            VerdictKind::Regression,
            false,
            Some("hook exited 1"),
        ));
        assert!(
            matches!(failed, Err(Failure { ref reason, refused: false, .. }) if reason.starts_with("regression of v1.8.0; automatic rollback failed: hook exited 1 — r rolls back"))
        );
    }

    /// A window whose automatic rollback failed leaves the caught release
    /// running: the console raises the alarm banner (`r` rolls back), as
    /// without auto-rollback. Only a minute's error notice said it, cut at
    /// 80 columns to `monitoring window of production failed: regression
    /// of v1.8.0…`, and production's state read as if nothing was wrong.
    #[test]
    fn a_failed_automatic_rollback_raises_the_alarm() {
        use crate::tui::tests::fixture::{console, monitored, screen};
        let mut s = console();
        monitored(&mut s, 60, true);
        s.alarm = None;
        crate::tui::update(
            &mut s,
            crate::tui::msg::Msg::ActionDone {
                env: "production".into(),
                kind: crate::tui::msg::TaskKind::Watch,
                result: watched(&outcome(
                    VerdictKind::Regression,
                    false,
                    Some("hook exited 1"),
                )),
            },
        );
        let text = screen(&s, 80, 24);
        assert!(
            text.contains("REGRESSION in production") && text.contains("r rolls back"),
            "{text}"
        );
        // A window whose rollback ran but went unrecorded raises none.
        let mut s = console();
        monitored(&mut s, 60, true);
        s.alarm = None;
        let mut o = outcome(VerdictKind::Regression, true, None);
        o.unrecorded = Some("database is locked".into());
        crate::tui::update(
            &mut s,
            crate::tui::msg::Msg::ActionDone {
                env: "production".into(),
                kind: crate::tui::msg::TaskKind::Watch,
                result: watched(&o),
            },
        );
        assert!(s.alarm.is_none(), "{:?}", s.alarm);
    }

    /// At 80 columns, the notice of a window that rolled back (or failed
    /// to) keeps what became of the release, whatever the reason's length:
    /// after the reason it read `production: regression of v1.8.0 (error
    /// rate 5.8% vs baseline…` and never said it was rolled back — or that
    /// the automatic rollback failed.
    #[test]
    fn a_window_s_end_keeps_what_became_of_the_release_at_80_columns() {
        use crate::tui::tests::fixture::{console, screen};
        let long = "error rate 5.8% vs baseline 0.31% (19.0x) since t=+11.7s, over 12 steps (239 errors in 4107 requests), p<0.001";
        let mut rolled = outcome(VerdictKind::Regression, true, None);
        rolled.verdict.reason = long.into();
        let mut unjudged = outcome(VerdictKind::Regression, false, None);
        unjudged.verdict.reason = long.into();
        for (o, want) in [
            (rolled, "regression of v1.8.0; rolled back to v1.7.3"),
            (unjudged, "regression of v1.8.0 — r rolls back"),
        ] {
            let mut s = console();
            crate::tui::update(
                &mut s,
                crate::tui::msg::Msg::ActionDone {
                    env: "production".into(),
                    kind: crate::tui::msg::TaskKind::Watch,
                    result: watched(&o),
                },
            );
            let text = screen(&s, 80, 24);
            let lines: Vec<&str> = text.lines().collect();
            let notice = lines[lines.len() - 2];
            assert!(notice.contains(want), "{notice:?}\n{text}");
        }
    }
}
