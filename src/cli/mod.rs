//! The command line: parses argv, calls the engine, prints tables or JSON,
//! and maps every outcome to SPEC §3's exit codes.

mod output;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{Config, Located, locate};
use crate::domain::{Decision, Version};
use crate::engine::{Engine, EngineError, Event};

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
        #[arg(long)]
        json: bool,
    },
    /// Deploy to ENV what the stage before it runs (or --version V)
    Promote {
        env: String,
        /// Ship this version instead (it must run in an earlier stage; skipping stages is recorded)
        #[arg(long)]
        version: Option<String>,
        /// Do not ask again (outside the low-traffic window, or on a terminal)
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Record a Go (or --reject: a No-Go) for the version promoting ENV would ship
    Approve {
        env: String,
        #[arg(long)]
        reject: bool,
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Return ENV to the version it ran before its last deploy (or --to V)
    Rollback {
        env: String,
        #[arg(long, value_name = "V")]
        to: Option<String>,
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Headless monitoring window of ENV (a CI/CD gate): exit 0 healthy, 4 regression
    Watch {
        env: String,
        /// Window length (default: [monitor] window)
        #[arg(long, value_name = "DUR")]
        window: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Feed a recorded trace (SPEC §5 CSV) through the live detector, row by row
    Replay {
        trace: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The console over the embedded demo fleet: no setup at all
    Demo {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Leave the rollback to the engineer's one key
        #[arg(long)]
        no_auto_rollback: bool,
    },
    /// The demo fleet alone, as HTTP services
    DemoFleet {
        #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The audit log, newest first
    History {
        env: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Check the audit log's hash chain instead: exit 0 intact, 1 naming the first broken record
        #[arg(long, conflicts_with = "env")]
        verify: bool,
        #[arg(long)]
        json: bool,
    },
    /// Config files
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file (default: the one shipdeck would use)
    Check { path: Option<PathBuf> },
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
    match rt.block_on(run(cli)) {
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
            Command::Config { .. } | Command::DemoFleet { .. } | Command::Demo { .. } => false,
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

/// How long a command waits, before it exits, for the store to take the
/// records its action queued (an outcome, a lock release).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Run an engine action until it ends or Ctrl-C. On Ctrl-C the action is
/// dropped, which queues its outcome as "unknown (interrupted)" and the
/// release of its lock; either way the command waits (at most [`SETTLE`])
/// for the store to write what was queued before the process exits. The
/// store works on a thread of its own, so a locked database never delays
/// the Ctrl-C itself.
async fn interruptible<T>(
    engine: &Engine,
    action: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, Failure> {
    let res = tokio::select! {
        r = action => r.map_err(Failure::from),
        _ = tokio::signal::ctrl_c() => Err(Failure {
            code: 1,
            message: "interrupted: the outcome is recorded as unknown; check `shipdeck status` and `shipdeck history`".into(),
        }),
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
                Event::MonitorStarted {
                    env,
                    version,
                    window_s,
                    baseline,
                    ..
                } => eprintln!(
                    "watching {env} {version} for {:.0}s against {} baseline samples",
                    window_s,
                    baseline.len()
                ),
                Event::MonitorSample {
                    sample, verdict, ..
                } => {
                    let rate = if sample.requests > 0.0 {
                        format!("{:.2}%", 100.0 * sample.errors / sample.requests)
                    } else {
                        "—".into()
                    };
                    eprintln!(
                        "  t=+{:.0}s  req {:.0}  err {rate}  p95 {}  {:?}",
                        sample.t,
                        sample.requests,
                        sample
                            .p95_ms
                            .map(|p| format!("{p:.0}ms"))
                            .unwrap_or_else(|| "—".into()),
                        verdict.kind
                    );
                }
                _ => {}
            }
        }
    });
    (tx, task)
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
async fn demo(seed: u64, auto_rollback: bool) -> Result<i32, Failure> {
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
    let text = crate::demo::demo_config(fleet.addr, auto_rollback);
    let mut cfg = Config::parse(&text, Path::new("<built-in demo config>"))
        .map_err(|e| fail("built-in config", &e))?;
    cfg.store.path = Some(dir.path().join("demo.db"));
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
    match command {
        Command::Config {
            command: ConfigCommand::Check { path },
        } => {
            let cfg = match path {
                Some(p) => Config::load(&p).map(|c| (p, c)),
                None => match locate(cfg_path) {
                    Located::Found(p) => Config::load(&p).map(|c| (p, c)),
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
            json,
        } => {
            let engine = open_engine(cfg_path)?;
            let version = parse_version(version, "--version")?;
            let mut accept = yes;
            if !yes && std::io::stdin().is_terminal() {
                let plan = engine.plan(&env, version.as_ref()).await?;
                eprint!("{}", output::plan_text(&plan));
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
                    accept = true;
                }
            }
            let (tx, printer) = event_printer(false);
            let res = interruptible(&engine, engine.promote(&env, version, accept, Some(tx))).await;
            let _ = printer.await;
            let rec = res?;
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
                    println!("{env} is monitored: run `shipdeck watch {env}` to judge the deploy");
                }
            }
            Ok(0)
        }
        Command::Approve {
            env,
            reject,
            note,
            json,
        } => {
            let engine = open_engine(cfg_path)?;
            let decision = if reject { Decision::NoGo } else { Decision::Go };
            let a = engine.approve(&env, decision, note).await?;
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
            if !yes && std::io::stdin().is_terminal() {
                let q = format!(
                    "Roll {env} back{}?",
                    to.as_ref().map(|v| format!(" to {v}")).unwrap_or_default()
                );
                if !confirm(&q) {
                    eprintln!("not rolled back");
                    return Ok(3);
                }
            }
            let (tx, printer) = event_printer(false);
            let res = interruptible(&engine, engine.rollback(&env, to, Some(tx))).await;
            let _ = printer.await;
            let rec = res?;
            if json {
                println!(
                    "{}",
                    output::to_json(&serde_json::json!({"rolled_back": rec}))
                );
            } else {
                println!(
                    "{} rolled back to {} (was {})",
                    rec.env,
                    rec.version,
                    output::opt(&rec.from_version)
                );
            }
            Ok(0)
        }
        Command::Demo {
            seed,
            no_auto_rollback,
        } => demo(seed, !no_auto_rollback).await,
        Command::DemoFleet { listen, seed } => {
            let opts = crate::demo::FleetOptions {
                seed,
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
            let text = std::fs::read_to_string(&trace)
                .map_err(|e| usage(format!("{}: cannot read: {e}", trace.display())))?;
            let samples = crate::monitor::parse(&text)
                .map_err(|e| usage(format!("{}: {e}", trace.display())))?;
            // Default monitoring settings, or those of an explicit --config.
            let dcfg = match cfg_path {
                Some(p) => {
                    let cfg = Config::load(p).map_err(|e| usage(e.to_string()))?;
                    crate::monitor::DetectorConfig::from(&cfg.monitor)
                }
                None => crate::monitor::DetectorConfig::default(),
            };
            let report = crate::monitor::replay(&samples, dcfg);
            if json {
                println!("{}", output::to_json(&report));
            } else {
                println!(
                    "{}{}: {}",
                    report.verdict,
                    report
                        .detected_at
                        .map(|t| format!(" at t={t}s"))
                        .unwrap_or_default(),
                    report.reason
                );
            }
            Ok(if report.is_regression() { 4 } else { 0 })
        }
        Command::Watch { env, window, json } => {
            let engine = open_engine(cfg_path)?;
            let window = window
                .map(|w| {
                    crate::domain::HumanDuration::parse(&w)
                        .map(|d| d.0)
                        .map_err(|e| usage(format!("--window: {e}")))
                })
                .transpose()?;
            let (tx, printer) = event_printer(json);
            let res = interruptible(&engine, engine.watch(&env, window, Some(tx))).await;
            let _ = printer.await;
            let out = res?;
            let v = &out.verdict;
            if json {
                println!(
                    "{}",
                    output::to_json(&serde_json::json!({
                        "env": out.env,
                        "version": out.version,
                        "deploy_at": out.deploy_at,
                        "verdict": v.kind,
                        "detected_at": v.detected_at,
                        "metric": v.metric,
                        "reason": v.reason,
                        "rolled_back": out.rolled_back,
                        "rollback_error": out.rollback_error,
                    }))
                );
            } else {
                println!("{env} {}: {:?} — {}", out.version, v.kind, v.reason);
                if let Some(r) = &out.rolled_back {
                    println!(
                        "rolled back automatically: {} now runs {}",
                        r.env, r.version
                    );
                }
                if let Some(e) = &out.rollback_error {
                    println!("automatic rollback FAILED: {e}");
                }
            }
            use crate::monitor::VerdictKind;
            Ok(match v.kind {
                VerdictKind::Regression => 4,
                VerdictKind::Healthy => 0,
                // No baseline or a source that went quiet: the gate cannot pass.
                VerdictKind::InsufficientData | VerdictKind::Collecting => {
                    eprintln!(
                        "shipdeck: not enough metric data to judge {env}: {}",
                        v.reason
                    );
                    1
                }
            })
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
