//! The command line: parses argv, calls the engine, prints tables or JSON,
//! and maps every outcome to the documented exit codes.

mod output;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{Config, Located, locate};
use crate::domain::{Decision, Version};
use crate::engine::{Confirm, Engine, EngineError, Event, Expect};

#[derive(Parser, Debug)]
#[command(
    name = "shipdeck",
    version,
    about = "A release console for the terminal: see every environment, promote one stage at a time, approve, watch the monitoring window, roll back.",
    after_help = "Config lookup: --config, $SHIPDECK_CONFIG, ./shipdeck.toml, then the platform config dir.\nLogs go to shipdeck.log in the platform state dir ($XDG_STATE_HOME/shipdeck on Linux).\nExit codes: 0 done/healthy, 1 an outside system failed, 2 bad usage/config/input, 3 a gate refused, 4 regression found."
)]
pub struct Cli {
    /// Config file (default: $SHIPDECK_CONFIG, ./shipdeck.toml, platform config dir)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One snapshot of all environments and the pending release
    Status {
        /// Print one JSON document on stdout instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Deploy to ENV what the stage before it runs (or --version V)
    Promote {
        /// The environment to deploy to
        env: String,
        /// Ship this version instead (it must run in an earlier stage; skipping stages is recorded)
        #[arg(long)]
        version: Option<String>,
        /// Do not ask again (outside the low-traffic window, or on a terminal)
        #[arg(long)]
        yes: bool,
        /// Then run the monitoring window (exit 4 on a regression), for pipelines
        #[arg(long)]
        watch: bool,
        /// Promote although a freeze window holds, for this reason (kept in the audit log)
        #[arg(long, value_name = "REASON")]
        break_freeze: Option<String>,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Record a Go (or --reject: a No-Go) for the version promoting ENV would ship
    Approve {
        /// The environment whose promotion the decision is about
        env: String,
        /// Record a No-Go instead: it blocks the version
        #[arg(long)]
        reject: bool,
        /// Why, in a few words (kept in the audit log)
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// Refuse unless promoting ENV would ship exactly this version
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Return ENV to its last known-good version (or --to V)
    Rollback {
        /// The environment to roll back
        env: String,
        /// Roll back to this version: one ENV ran before, not caught by a window, no No-Go
        #[arg(long, value_name = "V")]
        to: Option<String>,
        /// Do not ask (required off a terminal)
        #[arg(long)]
        yes: bool,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Headless monitoring window of ENV (a CI/CD gate): exit 0 healthy, 4 regression
    Watch {
        /// The environment to watch
        env: String,
        /// Window length, like 90s or 30m (default: [monitor] window)
        #[arg(long, value_name = "DUR")]
        window: Option<String>,
        /// Print one JSON document on stdout (progress is not printed)
        #[arg(long)]
        json: bool,
    },
    /// Feed a recorded trace through the live detector, row by row
    Replay {
        /// CSV with the header t,requests,errors,p50_ms,p95_ms,p99_ms (see the README)
        trace: PathBuf,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// The console over the embedded demo fleet: no setup at all (--config: only its [ui] is used)
    Demo {
        /// Seed of the fleet's synthetic traffic
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Leave the rollback to the engineer's one key
        #[arg(long)]
        no_auto_rollback: bool,
        /// Production's rollback strategy
        #[arg(long, value_enum, default_value_t = crate::demo::DemoStrategy::Redeploy)]
        strategy: crate::demo::DemoStrategy,
    },
    /// The demo fleet alone, as HTTP services
    DemoFleet {
        /// Address to serve on
        #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Seed of the fleet's synthetic traffic
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How long a deploy takes before the new version answers (at most 1h)
        #[arg(long, default_value = "3s", value_name = "DURATION")]
        deploy_duration: String,
    },
    /// The audit log, newest first
    History {
        /// Only this environment's entries
        env: Option<String>,
        /// At most this many entries
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Check the audit log's hash chain instead: exit 0 intact, 1 naming the first broken record
        #[arg(long, conflicts_with = "env")]
        verify: bool,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Config files
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The team store (PostgreSQL)
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy an embedded store (deploys, decisions, the audit log with its
    /// hash chain, verdicts, samples) into the empty team store of [store] url
    Migrate {
        /// The embedded store to copy, as sqlite:PATH
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file (default: the one shipdeck would use)
    Check {
        /// The file to check
        path: Option<PathBuf>,
    },
}

/// Exit code and message of a failed command.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

/// Entry point: returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let log = crate::logging::init();
    let json = cli.command.as_ref().is_some_and(Command::wants_json);
    // The console runs polls, actions and the monitoring window beside the
    // UI loop; one-shot commands are quickest on a single thread.
    let interactive = matches!(cli.command, None | Some(Command::Demo { .. }));
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
            eprintln!("shipdeck: cannot start the async runtime: {e}");
            return 1;
        }
    };
    // Notifications still being sent are waited for, at most
    // notify::EXIT_WAIT in all, whatever the command's outcome.
    let result = rt.block_on(async {
        let result = run(cli).await;
        crate::backends::notify::drain(crate::backends::notify::EXIT_WAIT).await;
        result
    });
    match result {
        Ok(code) => code,
        Err(f) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": f.message, "exit_code": f.code})
                );
            }
            eprintln!("shipdeck: {}", f.message);
            if f.code == 1
                && let Some(p) = log
            {
                eprintln!("(log: {})", p.display());
            }
            f.code
        }
    }
}

impl Command {
    fn wants_json(&self) -> bool {
        match self {
            Command::Status { json }
            | Command::Promote { json, .. }
            | Command::Approve { json, .. }
            | Command::Rollback { json, .. }
            | Command::History { json, .. }
            | Command::Watch { json, .. }
            | Command::Replay { json, .. } => *json,
            Command::Config { .. }
            | Command::Store { .. }
            | Command::DemoFleet { .. }
            | Command::Demo { .. } => false,
        }
    }
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

fn open_engine(explicit: Option<&Path>) -> Result<Engine, Failure> {
    let cfg = load_config(explicit)?;
    Ok(Engine::open(cfg)?)
}

fn parse_version(raw: Option<String>, flag: &str) -> Result<Option<Version>, Failure> {
    raw.map(|v| Version::parse(&v).map_err(|e| usage(format!("{flag}: {e}"))))
        .transpose()
}

/// Ask a yes/no question on the terminal; `false` when there is none.
fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let hup = signal(SignalKind::hangup());
        if let (Ok(mut term), Ok(mut hup)) = (term, hup) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// How long a command waits, before it exits, for the store to take the
/// records its action queued (an outcome, a lock release).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Run an engine action until it ends or a signal (Ctrl-C, SIGTERM,
/// SIGHUP). On a signal the action is dropped, which queues its outcome as
/// "unknown (interrupted)", the end of a monitoring window's record and the
/// release of its lock or claim; either way the command waits (at most [`SETTLE`])
/// for the store to write what was queued before the process exits. The
/// store works on a thread of its own, so a locked database never delays
/// the Ctrl-C itself.
async fn interruptible<T>(
    engine: &Engine,
    action: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, Failure> {
    // The signal handlers go in before the action's first step (biased:
    // polled first): a signal sent once the action has started anything —
    // a version read, a deploy — is always handled, never fatal.
    let res = tokio::select! {
        biased;
        _ = stop_signal() => Err(Failure {
            code: 1,
            message: "interrupted: the outcome is recorded as unknown; check `shipdeck status` and `shipdeck history`".into(),
        }),
        r = action => r.map_err(Failure::from),
    };
    if !engine.settle(SETTLE).await {
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
fn event_printer(quiet: bool) -> (crate::engine::EventSink, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut last_print = -10.0;
        // What the deploy backend said last, without its clock.
        let mut last_backend = String::new();
        while let Some(ev) = rx.recv().await {
            if quiet {
                continue;
            }
            match ev {
                Event::DeployStarted {
                    env,
                    version,
                    from,
                    rollback,
                } => eprintln!(
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
                    eprintln!(
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
                        eprintln!("  {env}: {}", progress.line());
                    }
                }
                Event::MonitorStarted {
                    env,
                    version,
                    window_s,
                    baseline,
                    ..
                } => eprintln!(
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
                    eprintln!(
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

/// The exit code of a monitoring window: 0 healthy, 4 regression, 1 when
/// it could not judge (no baseline, a source gone quiet).
fn watch_exit(env: &str, out: &crate::engine::WatchOutcome) -> i32 {
    use crate::monitor::VerdictKind;
    match out.verdict.kind {
        VerdictKind::Regression => 4,
        VerdictKind::Healthy => 0,
        VerdictKind::InsufficientData | VerdictKind::Collecting => {
            eprintln!(
                "shipdeck: not enough metric data to judge {env}: {}",
                out.verdict.reason
            );
            1
        }
    }
}

async fn console(engine: Engine) -> Result<i32, Failure> {
    if !std::io::stdout().is_terminal() {
        return Err(usage(
            "the console needs a terminal; for scripts use the subcommands (shipdeck --help)",
        ));
    }
    let res = crate::tui::run(engine.clone()).await;
    // Outcomes of actions the console was running when it quit.
    engine.settle(SETTLE).await;
    res.map_err(|e| Failure {
        code: 1,
        message: format!("{e:#}"),
    })?;
    Ok(0)
}

/// `shipdeck demo`: the fleet in-process on a free loopback port, a
/// built-in config, and a store of its own that lives as long as the run.
async fn demo(
    seed: u64,
    auto_rollback: bool,
    strategy: crate::demo::DemoStrategy,
    ui: Option<crate::config::UiConfig>,
) -> Result<i32, Failure> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Failure {
        code: 1,
        message: format!("demo: {what}: {e}"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail("cannot bind a loopback port", &e))?;
    let fleet = crate::demo::spawn(
        listener,
        crate::demo::FleetOptions {
            seed,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| fail("cannot start the fleet", &e))?;
    let dir = tempfile::Builder::new()
        .prefix("shipdeck-demo-")
        .tempdir()
        .map_err(|e| fail("cannot create its store", &e))?;
    // A small repository with tagged commits (one a migration), so the
    // pending panel lists real commits; without git the panel says so.
    let repo = crate::demo::repo::make(&dir.path().join("repo.git"), chrono::Utc::now());
    if let Err(e) = &repo.made {
        tracing::warn!("demo repository: {e}");
    }
    let text = crate::demo::demo_config_with(fleet.addr, auto_rollback, Some(&repo), strategy);
    let mut cfg = Config::parse(&text, Path::new("<built-in demo config>"))
        .map_err(|e| fail("built-in config", &e))?;
    let db = dir.path().join("demo.db");
    // Staging's history before the start: its deploy of the pending
    // release and its metrics, so the stage verdict has evidence at once.
    let step = u32::try_from(cfg.metrics.step.0.as_secs())
        .unwrap_or(2)
        .max(1);
    let seeded = crate::store::SqliteStore::open(&db)
        .map_err(|e| e.to_string())
        .and_then(|s| crate::demo::seed::seed_stage(&s, seed, step, chrono::Utc::now()));
    if let Err(e) = seeded {
        tracing::warn!("demo history: {e}");
    }
    cfg.store.path = Some(db);
    if let Some(ui) = ui {
        cfg.ui = ui;
    }
    let engine = Engine::open(cfg)?;
    let res = console(engine).await;
    drop(fleet);
    res
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    let cfg_path = cli.config.as_deref();
    let Some(command) = cli.command else {
        let engine = open_engine(cfg_path)?;
        return console(engine).await;
    };
    crate::logging::panic_if_forced("command");
    match command {
        Command::Config {
            command: ConfigCommand::Check { path },
        } => {
            let cfg = match path {
                Some(p) => Config::load_checked(&p).map(|c| (p, c)),
                None => match locate(cfg_path) {
                    Located::Found(p) => Config::load_checked(&p).map(|c| (p, c)),
                    Located::Missing(_) => return load_config(cfg_path).map(|_| 0),
                },
            };
            let (p, cfg) = cfg.map_err(|e| usage(e.to_string()))?;
            println!(
                "{}: ok — project {:?}, {} environments: {}",
                p.display(),
                cfg.project,
                cfg.environments.len(),
                cfg.names().join(" → ")
            );
            Ok(0)
        }
        Command::Store {
            command: StoreCommand::Migrate { from },
        } => {
            let cfg = load_config(cfg_path)?;
            let Some(path) = from.strip_prefix("sqlite:") else {
                return Err(usage(format!(
                    "--from {from:?}: give the embedded store as sqlite:PATH"
                )));
            };
            let r = crate::engine::migrate_store(&cfg, Path::new(path))?;
            if r.already {
                println!(
                    "{}: already holds this store's {} audit records (chain head {}): nothing to do",
                    cfg.store
                        .url
                        .as_deref()
                        .map(crate::backends::show_url_public)
                        .unwrap_or_default(),
                    r.audit,
                    r.head.as_deref().unwrap_or("-")
                );
            } else {
                println!(
                    "copied {path}: {} audit records (chain preserved and verified, head {}), {} deploys, {} decisions, {} monitoring verdicts, {} metric samples",
                    r.audit,
                    r.head.as_deref().unwrap_or("-"),
                    r.deploys,
                    r.approvals,
                    r.monitor_runs,
                    r.samples
                );
            }
            Ok(0)
        }
        Command::Status { json } => {
            let engine = open_engine(cfg_path)?;
            let status = engine.status().await;
            // The metric samples it kept.
            engine.settle(SETTLE).await;
            if json {
                println!("{}", output::to_json(&status));
            } else {
                print!("{}", output::status_table(&status));
            }
            let failed = status
                .environments
                .iter()
                .any(|e| e.version_error.is_some())
                || status.store_error.is_some();
            Ok(if failed { 1 } else { 0 })
        }
        Command::Promote {
            env,
            version,
            yes,
            watch,
            break_freeze,
            json,
        } => {
            let engine = open_engine(cfg_path)?;
            let version = parse_version(version, "--version")?;
            if break_freeze.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return Err(usage(
                    "--break-freeze needs a reason: --break-freeze \"hotfix for INC-42\"",
                ));
            }
            let confirm_with = if yes {
                Confirm::Unseen {
                    accept_warnings: true,
                }
            } else if std::io::stdin().is_terminal() {
                // The human sees the plan and says yes to exactly it: the
                // engine refuses if what promoting ships has changed since.
                let plan = engine
                    .plan_breaking(&env, version.as_ref(), break_freeze.as_deref())
                    .await?;
                eprint!("{}", output::plan_text(&plan));
                eprint!("{}", output::release_text(&engine.release_of(&plan).await));
                if plan.refusal().is_none() {
                    let q = format!(
                        "Deploy {} to {}{}?",
                        plan.version,
                        plan.to,
                        if plan.warnings().next().is_some() {
                            " despite the warning"
                        } else {
                            ""
                        }
                    );
                    if !confirm(&q) {
                        eprintln!("not deployed");
                        return Ok(3);
                    }
                }
                Confirm::Seen(Expect::from_plan(&plan))
            } else {
                Confirm::Unseen {
                    accept_warnings: false,
                }
            };
            let (tx, printer) = event_printer(json);
            let res = interruptible(
                &engine,
                engine.promote_breaking(&env, version, confirm_with, break_freeze, Some(tx)),
            )
            .await;
            let _ = printer.await;
            let rec = res?;
            if watch {
                let (tx, printer) = event_printer(json);
                let res = interruptible(&engine, engine.watch(&env, None, Some(tx))).await;
                let _ = printer.await;
                let out = res?;
                if json {
                    println!(
                        "{}",
                        output::to_json(&serde_json::json!({
                            "deployed": rec,
                            "watch": output::watch_json(&out),
                        }))
                    );
                } else {
                    println!(
                        "{} now runs {} (was {})",
                        rec.env,
                        rec.version,
                        output::opt(&rec.from_version)
                    );
                    print!("{}", output::watch_text(&out));
                }
                return Ok(watch_exit(&env, &out));
            }
            if json {
                println!("{}", output::to_json(&serde_json::json!({"deployed": rec})));
            } else {
                println!(
                    "{} now runs {} (was {})",
                    rec.env,
                    rec.version,
                    output::opt(&rec.from_version)
                );
                if engine.config().env(&env).is_some_and(|e| e.monitored) {
                    match engine.watcher(&env).await {
                        Some(w) => println!("{env} is monitored: {w} is watching this deploy"),
                        None => println!(
                            "{env} is monitored, and nobody is watching this deploy yet: run `shipdeck watch {env}` (or promote with --watch), or keep a console open"
                        ),
                    }
                }
            }
            Ok(0)
        }
        Command::Approve {
            env,
            reject,
            note,
            version,
            json,
        } => {
            let engine = open_engine(cfg_path)?;
            let version = parse_version(version, "--version")?;
            let decision = if reject { Decision::NoGo } else { Decision::Go };
            let a = engine
                .approve(&env, decision, version.as_ref(), note)
                .await?;
            if json {
                println!("{}", output::to_json(&serde_json::json!({"approval": a})));
            } else {
                println!(
                    "{} recorded for {} → {} by {} at {}",
                    if reject { "No-Go" } else { "Go" },
                    a.version,
                    a.env,
                    a.actor,
                    a.at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
            Ok(0)
        }
        Command::Rollback { env, to, yes, json } => {
            let engine = open_engine(cfg_path)?;
            let to = parse_version(to, "--to")?;
            if !yes && !std::io::stdin().is_terminal() {
                return Err(usage(format!(
                    "rollback {env} needs a confirmation and there is no terminal to ask on: add --yes"
                )));
            }
            let mut to = to;
            if !yes {
                // Name both versions and the strategy, then roll back to
                // exactly the version the human agreed to.
                let plan = engine.rollback_plan(&env, to.as_ref()).await?;
                let strategy = engine
                    .config()
                    .env(&env)
                    .map(|e| e.strategy().as_str())
                    .unwrap_or("redeploy");
                if let Some(from) = &plan.from {
                    match engine.schema_notice(&env, from, &plan.to).await {
                        Ok(Some(n)) => eprint!("{}", output::schema_text(&n, &env)),
                        Ok(None) => {}
                        Err(e) => eprintln!(
                            "! cannot tell whether this rollback crosses database migrations: {e}"
                        ),
                    }
                }
                let q = format!(
                    "Roll {env} back from {} to {} ({strategy})?",
                    output::opt(&plan.from),
                    plan.to
                );
                if !confirm(&q) {
                    eprintln!("not rolled back");
                    return Ok(3);
                }
                to = Some(plan.to);
            }
            let (tx, printer) = event_printer(false);
            let res = interruptible(&engine, engine.rollback(&env, to, Some(tx))).await;
            let _ = printer.await;
            let rec = res?;
            // Code rollback does not undo a schema change: say so, with the
            // restore command (shown, never run).
            let schema = match &rec.from_version {
                Some(from) => engine.schema_notice(&env, from, &rec.version).await,
                None => Ok(None),
            };
            if json {
                let (notice, error) = match &schema {
                    Ok(n) => (n.clone(), None),
                    Err(e) => (None, Some(e.clone())),
                };
                println!(
                    "{}",
                    output::to_json(&serde_json::json!({
                        "rolled_back": rec,
                        "schema": notice,
                        "schema_error": error,
                    }))
                );
            } else {
                println!(
                    "{} rolled back to {} (was {})",
                    rec.env,
                    rec.version,
                    output::opt(&rec.from_version)
                );
                match &schema {
                    Ok(Some(n)) => print!("{}", output::schema_text(n, &env)),
                    Ok(None) => {}
                    Err(e) => println!(
                        "! cannot tell whether this rollback crossed database migrations: {e}"
                    ),
                }
            }
            Ok(0)
        }
        Command::Demo {
            seed,
            no_auto_rollback,
            strategy,
        } => {
            // The demo runs its own fleet; a config file lends it only its [ui].
            let ui = cfg_path
                .map(|p| crate::config::load_ui(p).map_err(|e| usage(e.to_string())))
                .transpose()?;
            demo(seed, !no_auto_rollback, strategy, ui).await
        }
        Command::DemoFleet {
            listen,
            seed,
            deploy_duration,
        } => {
            let deploy_duration = crate::domain::HumanDuration::parse_at_most(
                &deploy_duration,
                std::time::Duration::from_secs(3600),
            )
            .map_err(|e| usage(format!("--deploy-duration: {e}")))?;
            let opts = crate::demo::FleetOptions {
                seed,
                deploy_duration: deploy_duration.0,
                ..Default::default()
            };
            crate::demo::serve(listen, opts)
                .await
                .map_err(|e| Failure {
                    code: 1,
                    message: format!("demo fleet on {listen}: {e}"),
                })?;
            Ok(0)
        }
        Command::Replay { trace, json } => {
            let text = crate::paths::read_text_capped(&trace, crate::paths::MAX_TRACE_BYTES)
                .map_err(|e| usage(format!("{}: cannot read: {e}", trace.display())))?;
            let samples = crate::monitor::parse(&text)
                .map_err(|e| usage(format!("{}: {e}", trace.display())))?;
            // Default monitoring settings, or those of an explicit --config.
            let dcfg = match cfg_path {
                Some(p) => {
                    let cfg = Config::load(p).map_err(|e| usage(e.to_string()))?;
                    cfg.monitor.detector_config(None)
                }
                None => crate::monitor::DetectorConfig::default(),
            };
            let report = crate::monitor::replay(&samples, dcfg);
            if json {
                println!("{}", output::to_json(&report));
            } else {
                let verdict = report.verdict.replace('_', " ");
                let at = report
                    .detected_at
                    .map(|t| format!(" at t={t}s"))
                    .unwrap_or_default();
                match report.reason.strip_prefix(&format!("{verdict}: ")) {
                    Some(rest) => println!("{verdict}{at}: {rest}"),
                    None => println!("{verdict}{at}: {}", report.reason),
                }
            }
            Ok(report.exit_code())
        }
        Command::Watch { env, window, json } => {
            let engine = open_engine(cfg_path)?;
            let window = window
                .map(|w| {
                    crate::domain::HumanDuration::parse_at_most(&w, crate::config::limits::WINDOW)
                        .map(|d| d.0)
                        .map_err(|e| usage(format!("--window: {e}")))
                })
                .transpose()?;
            let (tx, printer) = event_printer(json);
            let res = interruptible(&engine, engine.watch(&env, window, Some(tx))).await;
            let _ = printer.await;
            let out = res?;
            if json {
                println!("{}", output::to_json(&output::watch_json(&out)));
            } else {
                print!("{}", output::watch_text(&out));
            }
            Ok(watch_exit(&env, &out))
        }
        Command::History {
            verify: true, json, ..
        } => {
            let engine = open_engine(cfg_path)?;
            let report = engine.verify_audit().await?;
            if json {
                println!(
                    "{}",
                    output::to_json(&serde_json::json!({
                        "intact": report.intact(),
                        "records": report.records,
                        "head": report.head,
                        "broken": report.broken,
                        "warnings": report.warnings,
                    }))
                );
            } else {
                print!("{}", output::verify_text(&report, &engine.store_location()));
            }
            Ok(if report.intact() { 0 } else { 1 })
        }
        Command::History {
            env, limit, json, ..
        } => {
            let engine = open_engine(cfg_path)?;
            let h = engine.history(env.as_deref(), limit).await?;
            if json {
                println!("{}", output::to_json(&serde_json::json!({"entries": h})));
            } else {
                print!("{}", output::history_table(&h));
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn every_command(c: &clap::Command, out: &mut Vec<clap::Command>) {
        out.push(c.clone());
        for s in c.get_subcommands() {
            every_command(s, out);
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
