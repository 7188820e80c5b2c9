//! The command line: parses argv, calls the engine, prints tables or JSON,
//! and maps every outcome to the documented exit codes.

/// `eprintln!` that never panics: on a terminal that hung up, a failed
/// write is dropped (the hangup's signal ends the command through its
/// clean-up), where `eprintln!` would panic mid-action.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
/// `println!` that never panics: stdout whose reader went away
/// (`shipdeck history | head`, a pipeline's collector gone) drops what is
/// left to print; the action already happened and its exit code stands,
/// where `println!` would panic and exit 101 as "an internal error".
macro_rules! show {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
/// [`show!`] without the newline.
macro_rules! show_part {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
/// [`say!`] without the newline.
macro_rules! say_part {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

mod args;
mod interrupt;
mod output;
mod run;

pub use args::{Cli, Command, ConfigCommand, StoreCommand};
use run::run;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{Config, Located, locate};
use crate::domain::{Decision, Version};
use crate::engine::{Confirm, Engine, EngineError, Event, Expect};

/// Exit code and message of a failed command.
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// Why the engine failed, when it did: whether waiting heals it (what
    /// a failed monitoring window tells the user to do next).
    pub cause: Option<crate::engine::rewatch::Cause>,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
            cause: Some(crate::engine::rewatch::Cause::of(&e)),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
        cause: None,
    }
}

/// Entry point: returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // A script that asked for --json gets its one document even
            // when the command line itself is wrong (clap's text stays on
            // stderr).
            if code == 2 && asked_for_json(std::env::args_os().skip(1)) {
                show!(
                    "{}",
                    serde_json::json!({"error": usage_line(&e), "exit_code": code})
                );
            }
            let _ = e.print();
            return code;
        }
    };
    let log = crate::logging::init();
    let json = cli.command.as_ref().is_some_and(Command::wants_json);
    // The console runs polls, actions and the monitoring window beside the
    // UI loop; one-shot commands are quickest on a single thread.
    let interactive = matches!(cli.command, None | Some(Command::Demo { .. }));
    // A one-shot command says on stderr what it waits for when the store
    // is held by another process (the console owns the terminal: log only).
    if !interactive {
        crate::store::on_busy_wait(|n| say!("{}", n.line));
    }
    let built = if interactive {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            say!("shipdeck: cannot start the async runtime: {e}");
            return 1;
        }
    };
    // Notifications still being sent are waited for, at most
    // notify::EXIT_WAIT in all, whatever the command's outcome.
    let result = rt.block_on(async {
        // A one-shot command is stopped by a signal with everything it runs
        // (see `interrupt`); the console, once open, handles them itself
        // (listened for from here, before it takes the terminal).
        interrupt::listen();
        let result = tokio::select! {
            biased;
            r = run(cli) => r,
            sig = interrupt::outside_action() => Err(interrupt::failure(
                sig,
                "stopped with the commands it was running",
            )),
        };
        crate::backends::notify::drain(crate::backends::notify::EXIT_WAIT).await;
        result
    });
    if !interactive {
        // Do not wait for a question's reader still blocked on the terminal.
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
    }
    match result {
        Ok(code) => code,
        Err(f) => {
            // The last words may go to a terminal that is gone (a hangup):
            // a failed write must not turn the exit into a panic.
            if json {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::json!({"error": crate::text::redact(&f.message), "exit_code": f.code})
                );
            }
            let mut err = std::io::stderr();
            let _ = writeln!(err, "shipdeck: {}", crate::text::redact(&f.message));
            if f.code == 1
                && let Some(p) = log
            {
                let _ = writeln!(err, "(log: {})", p.display());
            }
            f.code
        }
    }
}

/// `--json` among the options (not after `--`, where it would be a value).
fn asked_for_json(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.take_while(|a| a != "--").any(|a| a == "--json")
}

/// The first line of clap's message, without its `error: ` prefix.
fn usage_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

pub fn load_config(explicit: Option<&Path>) -> Result<Config, Failure> {
    match locate(explicit) {
        Located::Found(p) => Config::load(&p).map_err(|e| usage(e.to_string())),
        Located::Missing(looked) => Err(usage(format!(
            "no config found (looked at {}).\nTo start: run `shipdeck demo` to try it on the embedded demo fleet, or copy config.example.toml to ./shipdeck.toml and edit it.",
            looked
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Open the engine on a blocking thread: opening the store may wait
/// (SQLite's busy wait, a PostgreSQL connect), and a stop signal must end
/// the command meanwhile — the outer loop drops this future; the open left
/// behind ends with the process, having changed nothing it would not redo.
async fn open_engine(explicit: Option<&Path>) -> Result<Engine, Failure> {
    let cfg = load_config(explicit)?;
    match tokio::task::spawn_blocking(move || Engine::open(cfg)).await {
        Ok(opened) => Ok(opened?),
        Err(e) => Err(Failure {
            code: 1,
            message: format!("opening the store stopped: {e}"),
            cause: None,
        }),
    }
}

fn parse_version(raw: Option<String>, flag: &str) -> Result<Option<Version>, Failure> {
    raw.map(|v| Version::parse(&v).map_err(|e| usage(format!("{flag}: {e}"))))
        .transpose()
}

/// Ask a yes/no question on the terminal; `false` when there is none. The
/// answer is read on a blocking thread, so that a stop signal during the
/// question ends the command at once.
async fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    say_part!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await;
    matches!(answer, Ok(Ok(line)) if matches!(line.trim(), "y" | "Y" | "yes"))
}

use crate::engine::SETTLE;

/// What an interrupted action was, for the line saying what became of it.
#[derive(Clone, Debug)]
enum Stopped {
    /// A deploy or rollback: its outcome reads "unknown".
    Action,
    /// A monitoring window: recorded as interrupted once it had opened
    /// (before that, nothing of it is recorded) — unless it had caught a
    /// regression, which its printer saw ([`WindowPhase`]).
    Window(WindowPhase),
}

impl Stopped {
    fn said(&self) -> String {
        match self {
            Stopped::Action => {
                "what it ran was stopped and the outcome is recorded as unknown; check `shipdeck status` and `shipdeck history`".into()
            }
            Stopped::Window(phase) => phase.said().unwrap_or_else(|| {
                "the monitoring window was stopped without a verdict: once open, it is recorded as interrupted (its history entry as unknown); stopped while it opened, it left no record; check `shipdeck status` and `shipdeck history`".into()
            }),
        }
    }
}

/// How far a monitoring window had come, as its events tell: a signal
/// after its regression verdict (during the automatic rollback, say one
/// that hangs) stopped no window "without a verdict" — the release was
/// caught, and the environment may still run it.
#[derive(Clone, Debug, Default)]
struct WindowPhase(std::sync::Arc<std::sync::Mutex<WindowSeen>>);

#[derive(Debug, Default)]
struct WindowSeen {
    /// The environment and the version the window judges.
    judged: Option<(String, Version)>,
    regression: bool,
    /// The version a rollback after the regression began to deploy.
    rollback_to: Option<Version>,
    /// How that rollback's deploy ended, once it did (`true`: the
    /// environment reported the version it rolled back to).
    rollback_ok: Option<bool>,
}

impl WindowPhase {
    fn see(&self, ev: &Event) {
        let Ok(mut seen) = self.0.lock() else {
            return;
        };
        match ev {
            Event::MonitorStarted { env, version, .. } => {
                *seen = WindowSeen {
                    judged: Some((env.clone(), version.clone())),
                    ..WindowSeen::default()
                };
            }
            Event::MonitorFinished { verdict, .. } => {
                seen.regression = verdict.kind == crate::monitor::VerdictKind::Regression;
            }
            Event::DeployStarted {
                version,
                rollback: true,
                ..
            } if seen.regression => seen.rollback_to = Some(version.clone()),
            Event::DeployFinished { version, ok, .. }
                if seen.rollback_to.as_ref() == Some(version) =>
            {
                seen.rollback_ok = Some(*ok);
            }
            _ => {}
        }
    }

    /// The line for a signal after the window's regression verdict.
    fn said(&self) -> Option<String> {
        let seen = self.0.lock().ok()?;
        let (env, version) = seen.judged.as_ref().filter(|_| seen.regression)?;
        let next = format!(
            "{env} may still run {version}; check `shipdeck status`, then `shipdeck rollback {env}`"
        );
        Some(match (&seen.rollback_to, seen.rollback_ok) {
            // Rolled back; stopped while its verdict and record were
            // still being written (a store that is away).
            (Some(to), Some(true)) => format!(
                "the monitoring window caught a regression of {version} in {env} and rolled it back to {to}; stopped while writing its record: `shipdeck status` and `shipdeck history {env}` show what the store has"
            ),
            (Some(to), Some(false)) => format!(
                "the monitoring window caught a regression of {version} in {env}; its rollback to {to} failed: {next}"
            ),
            (Some(to), None) => format!(
                "the monitoring window caught a regression of {version} in {env}; its rollback to {to} was stopped and its outcome is recorded as unknown: {next}"
            ),
            (None, _) => format!(
                "the monitoring window had caught a regression of {version} in {env} and was stopped before rolling it back: {next}"
            ),
        })
    }
}

/// How long an interrupted canary's weight → 0 may take before the
/// process exits anyway (a pipeline's cancel kills ~10 s after its signal).
const CANARY_STOP: std::time::Duration = std::time::Duration::from_secs(8);

/// Run an engine action until it ends or a signal (Ctrl-C, SIGTERM,
/// SIGHUP; see [`interrupt`]). On a signal the action is dropped, which
/// kills the process groups of the commands it runs, queues its outcome as
/// "unknown (interrupted)", the end of a monitoring window's record and the
/// release of its lock or claim; either way the command waits (at most [`SETTLE`])
/// for the store to write what was queued before the process exits, with
/// 128 + the signal's number. The store works on a thread of its own, so a
/// locked database never delays the Ctrl-C itself.
async fn interruptible<T>(
    engine: &Engine,
    stopped: Stopped,
    action: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, Failure> {
    // The outer loop leaves the signal to this action until it returns.
    let _guard = interrupt::Guarded::new();
    // The signals are listened for since the command started (biased:
    // polled first), so one sent once the action has started anything — a
    // version read, a deploy — is always handled, never fatal.
    let mut interrupted = false;
    let res = tokio::select! {
        biased;
        sig = interrupt::signalled() => {
            interrupted = true;
            Err(interrupt::failure(sig, &stopped.said()))
        }
        r = action => r.map_err(Failure::from),
    };
    let settled = engine.settle(SETTLE).await;
    // Interrupted mid-canary: the canary's share of the traffic would run
    // on unjudged; it goes back to the stable track (a rollback, audited),
    // within what a pipeline's cancel leaves before it kills — once the
    // dropped action's outcome and lock release are written, so that the
    // rollback's lock is its own.
    if interrupted {
        let stopped = tokio::time::timeout(CANARY_STOP, engine.stop_abandoned_canaries()).await;
        match stopped {
            Ok(done) => {
                for (env, r) in done {
                    match r {
                        Ok(rec) => say!(
                            "! {env}: the canary's traffic went back to the stable track ({}): its promotion was interrupted",
                            rec.version
                        ),
                        Err(e) => say!(
                            "! {env}: the canary keeps its traffic: setting its weight to 0 failed ({e}); run `shipdeck rollback {env}`"
                        ),
                    }
                }
            }
            Err(_) => say!(
                "! the interrupted canary's weight could not be set to 0 within {}s; run `shipdeck status` and roll back",
                CANARY_STOP.as_secs()
            ),
        }
    }
    if !settled {
        let note = format!(
            "the store ({}) did not take the outcome within {}s; the action reads \"unknown\" in the history",
            engine.store_location(),
            SETTLE.as_secs()
        );
        tracing::error!("{note}");
        // A finished action's own records are written before it returns;
        // what may be left is a lock release, which a dead pid undoes.
        return res.map_err(|mut f| {
            f.message = format!("{}; {note}", f.message);
            f
        });
    }
    res
}

/// Print an action's progress (deploys, the monitoring window) on stderr
/// while it runs; `quiet` swallows it.
/// A window's printer also keeps its `phase`, for the line a signal gets.
fn event_printer(
    quiet: bool,
    phase: Option<WindowPhase>,
) -> (crate::engine::EventSink, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut last_print = -10.0;
        // What the deploy backend said last, without its clock.
        let mut last_backend = String::new();
        while let Some(ev) = rx.recv().await {
            if let Some(phase) = &phase {
                phase.see(&ev);
            }
            // A lost deploy lock is said even to a quiet (--json) run:
            // one line on stderr, while the action goes on.
            if quiet
                && !matches!(
                    ev,
                    Event::LockLost { .. } | Event::StoreOutage { .. } | Event::WindowNotice { .. }
                )
            {
                continue;
            }
            match ev {
                Event::LockLost { detail, .. }
                | Event::StoreOutage { detail, .. }
                | Event::WindowNotice { detail, .. } => {
                    say!("! {detail}")
                }
                Event::DeployStarted {
                    env,
                    version,
                    from,
                    rollback,
                } => say!(
                    "{} {env}: {} → {version}",
                    if rollback {
                        "rolling back"
                    } else {
                        "deploying"
                    },
                    from.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
                ),
                Event::DeployWaiting {
                    env,
                    elapsed_s,
                    observed,
                } if elapsed_s - last_print >= 5.0 => {
                    last_print = elapsed_s;
                    say!(
                        "  waiting for {env} to report the new version ({elapsed_s:.0}s, now {})",
                        observed
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "unreadable".into())
                    );
                }
                Event::DeployProgress { env, progress } => {
                    let mut same = progress.clone();
                    same.elapsed_s = 0.0;
                    let key = format!("{env} {}", same.line());
                    if key != last_backend {
                        last_backend = key;
                        say!("  {env}: {}", progress.line());
                    }
                }
                Event::MonitorStarted {
                    env,
                    version,
                    window_s,
                    baseline,
                    ..
                } => say!(
                    "watching {env} {version} for {} against {}",
                    crate::domain::HumanDuration(std::time::Duration::from_secs_f64(
                        window_s.max(0.0)
                    )),
                    output::count(baseline.len(), "baseline sample", "baseline samples")
                ),
                Event::MonitorSample {
                    sample, verdict, ..
                } => {
                    let rate = if sample.requests > 0.0 {
                        format!("{:.2}%", 100.0 * sample.errors / sample.requests)
                    } else {
                        "—".into()
                    };
                    // A gap (the source failed) has no request count.
                    let req = if sample.requests.is_finite() {
                        format!("{:.0}", sample.requests)
                    } else {
                        "—".into()
                    };
                    say!(
                        "  t=+{:.0}s  req {req}  err {rate}  p95 {}  {}",
                        sample.t,
                        sample
                            .p95_ms
                            .map(|p| format!("{p:.0}ms"))
                            .unwrap_or_else(|| "—".into()),
                        output::step_words(verdict.kind)
                    );
                }
                _ => {}
            }
        }
    });
    (tx, task)
}

/// A window that failed without a verdict (exit 1: the store, the metrics
/// source) says, by the engine's rule, that this command does not retry it
/// and who watches that deploy again, or, when waiting will not heal the
/// cause, what to fix before rerunning. A refusal (another watches it: 3)
/// or a signal needs no such note.
fn window_failed(env: &str, mut f: Failure) -> Failure {
    use crate::engine::rewatch::{Cause, after_failure};
    if f.code == 1 {
        // A failure the engine did not classify (a stopped task): as an
        // outage, the cause is not known to stay.
        let cause = f.cause.unwrap_or(Cause::Outage);
        f.message = format!("{}; {}", f.message, after_failure(env, cause));
    }
    f
}

/// The exit code of a monitoring window (SPEC's table): 4 on a regression,
/// whatever else failed (its rollback, its record, its claim); else 0
/// healthy, and 1 when it could not judge (no baseline, a source gone
/// quiet), could not record its verdict, or judged without its claim
/// (the store refused it for good mid-window).
fn watch_exit(env: &str, out: &crate::engine::WatchOutcome) -> i32 {
    use crate::monitor::VerdictKind;
    if let Some(line) = &out.superseded {
        // Not judged: the environment runs another version now (SPEC is
        // silent on it; 1 with the reason, like a window that could not judge).
        say!("shipdeck: {line}");
        return 1;
    }
    if let Some(cause) = &out.claim_refused {
        // A regression says how to roll back (its rollback error); any
        // other verdict, what to fix before this gate is run again.
        let next = match out.verdict.kind {
            VerdictKind::Regression => String::new(),
            _ => format!(
                "; waiting will not heal this: fix what the store refuses (named above), then run `shipdeck watch {env}` again"
            ),
        };
        say!(
            "shipdeck: {env} {} was judged to the window's end without its claim: {cause}{next}",
            out.version
        );
    }
    if let Some(cause) = &out.unrecorded {
        // The rollback that ran, if one did (perhaps unrecorded itself).
        let rolled = out
            .rolled_back
            .as_ref()
            .map(|r| format!(" and rolled back to {}", r.version))
            .unwrap_or_default();
        say!(
            "shipdeck: judged {env} {}: {}{rolled}, but could not record it: {cause}",
            out.version,
            output::verdict_words(out.verdict.kind)
        );
    }
    let failed = out.unrecorded.is_some() || out.claim_refused.is_some();
    match out.verdict.kind {
        VerdictKind::Regression => 4,
        VerdictKind::Healthy if failed => 1,
        VerdictKind::Healthy => 0,
        VerdictKind::InsufficientData | VerdictKind::Collecting => {
            say!(
                "shipdeck: not enough metric data to judge {env}: {}",
                out.verdict.reason
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A signal after the window's regression verdict — while its
    /// automatic rollback runs (a deploy command that hangs) — said "the
    /// monitoring window was stopped without a verdict", to an on-call
    /// whose production still ran the caught release.
    #[test]
    fn a_window_stopped_after_its_regression_says_so_and_what_still_runs() {
        use crate::monitor::{Verdict, VerdictKind};
        let phase = WindowPhase::default();
        let stopped = Stopped::Window(phase.clone());
        let v = |s: &str| -> Version { s.parse().unwrap() };
        let verdict = |kind| Verdict {
            kind,
            metric: None,
            detected_at: None,
            reason: "r".into(),
        };
        let started = || Event::MonitorStarted {
            env: "production".into(),
            version: v("v1.8.0"),
            deploy_at: chrono::Utc::now(),
            window_s: 60.0,
            baseline: Vec::new(),
            baseline_note: String::new(),
        };
        assert!(stopped.said().contains("without a verdict"));
        phase.see(&started());
        assert!(stopped.said().contains("without a verdict"));
        phase.see(&Event::MonitorFinished {
            env: "production".into(),
            verdict: verdict(VerdictKind::Regression),
        });
        assert_eq!(
            stopped.said(),
            "the monitoring window had caught a regression of v1.8.0 in production and was stopped before rolling it back: production may still run v1.8.0; check `shipdeck status`, then `shipdeck rollback production`"
        );
        phase.see(&Event::DeployStarted {
            env: "production".into(),
            version: v("v1.7.3"),
            from: Some(v("v1.8.0")),
            rollback: true,
        });
        assert_eq!(
            stopped.said(),
            "the monitoring window caught a regression of v1.8.0 in production; its rollback to v1.7.3 was stopped and its outcome is recorded as unknown: production may still run v1.8.0; check `shipdeck status`, then `shipdeck rollback production`"
        );
        // The rollback done, the signal came while its record was being
        // written (the store away): no second rollback is asked for.
        let done = phase.clone();
        done.see(&Event::DeployFinished {
            env: "production".into(),
            version: v("v1.7.3"),
            ok: true,
            detail: "production reports v1.7.3".into(),
        });
        let said = stopped.said();
        assert!(
            said.contains("and rolled it back to v1.7.3")
                && !said.contains("may still run")
                && !said.contains("shipdeck rollback"),
            "{said}"
        );
        // A window that ended healthy is no caught release.
        let healthy = WindowPhase::default();
        healthy.see(&started());
        healthy.see(&Event::MonitorFinished {
            env: "production".into(),
            verdict: verdict(VerdictKind::Healthy),
        });
        assert!(
            Stopped::Window(healthy)
                .said()
                .contains("without a verdict")
        );
        assert!(Stopped::Action.said().contains("recorded as unknown"));
    }

    fn every_command(c: &clap::Command, out: &mut Vec<clap::Command>) {
        out.push(c.clone());
        for s in c.get_subcommands() {
            every_command(s, out);
        }
    }

    fn outcome(kind: crate::monitor::VerdictKind) -> crate::engine::WatchOutcome {
        crate::engine::WatchOutcome {
            env: "production".into(),
            version: "v1.8.0".parse().unwrap(),
            deploy_at: chrono::Utc::now(),
            verdict: crate::monitor::Verdict {
                kind,
                metric: None,
                detected_at: None,
                reason: "r".into(),
            },
            baseline: "b".into(),
            rolled_back: None,
            rollback_error: None,
            unrecorded: None,
            claim_refused: None,
            superseded: None,
        }
    }

    /// SPEC's exit codes: a regression is 4 whatever else failed; a
    /// healthy verdict the store did not take (or judged without the
    /// window's claim) is 1.
    #[test]
    fn a_regression_exits_4_whatever_else_failed() {
        use crate::monitor::VerdictKind::*;
        let mut o = outcome(Regression);
        assert_eq!(watch_exit("production", &o), 4);
        o.unrecorded = Some("the store refuses it".into());
        o.claim_refused = Some("permission denied".into());
        o.rollback_error = Some("not rolled back automatically".into());
        assert_eq!(watch_exit("production", &o), 4);
        let mut o = outcome(Healthy);
        assert_eq!(watch_exit("production", &o), 0);
        o.claim_refused = Some("permission denied".into());
        assert_eq!(watch_exit("production", &o), 1);
        let mut o = outcome(Healthy);
        o.unrecorded = Some("the store stayed unreachable".into());
        assert_eq!(watch_exit("production", &o), 1);
        assert_eq!(watch_exit("production", &outcome(InsufficientData)), 1);
        // A window whose version is gone judged nothing: 1, never 0 or 4.
        for kind in [Healthy, Regression] {
            let mut o = outcome(kind);
            o.superseded = Some("superseded: production now runs v1.7.3, not v1.8.0".into());
            assert_eq!(watch_exit("production", &o), 1);
        }
    }

    #[test]
    fn every_flag_and_argument_in_help_has_a_description() {
        let mut all = Vec::new();
        every_command(&Cli::command(), &mut all);
        let mut missing = Vec::new();
        for c in &all {
            if c.get_about().is_none() && c.get_name() != "shipdeck" {
                missing.push(format!("command {}", c.get_name()));
            }
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() {
                    missing.push(format!("{} {id}", c.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "no description: {missing:?}");
    }

    #[test]
    fn help_points_to_no_document_outside_the_repository() {
        let mut all = Vec::new();
        every_command(&Cli::command(), &mut all);
        for mut c in all {
            let help = c.render_long_help().to_string();
            for doc in ["SPEC", "DESIGN", "§"] {
                assert!(!help.contains(doc), "{}: {help}", c.get_name());
            }
        }
    }
}
