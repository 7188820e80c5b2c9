//! Running a parsed command line: one arm per command, each calling the
//! engine and printing its outcome; the console and the demo open the TUI.

use super::*;

async fn console(engine: Engine) -> Result<i32, Failure> {
    if !std::io::stdout().is_terminal() {
        return Err(usage(
            "the console needs a terminal; for scripts use the subcommands (shipdeck --help)",
        ));
    }
    // The console handles the stop signals itself (see `interrupt`): the
    // outer loop leaves them to it until it has closed and settled.
    let _guard = interrupt::Guarded::new();
    let res = crate::tui::run(engine.clone(), interrupt::signalled()).await;
    // Outcomes of actions the console was running when it quit.
    let settled = engine.settle(SETTLE).await;
    let stopped = match res {
        Ok(crate::tui::Ended::Quit) => return Ok(0),
        Ok(crate::tui::Ended::Signal(sig)) => interrupt::failure(
            sig,
            "the console closed; what it was running was stopped and the outcome is recorded as unknown; check `shipdeck status` and `shipdeck history`",
        ),
        Ok(crate::tui::Ended::Interrupted(what)) => ctrl_c_quit(&what),
        Err(e) => {
            return Err(Failure {
                code: 1,
                message: format!("{e:#}"),
                cause: None,
            });
        }
    };
    let mut f = stopped;
    if !settled {
        f.message = format!(
            "{}; the store ({}) did not take the outcome within {}s",
            f.message,
            engine.store_location(),
            SETTLE.as_secs()
        );
    }
    Err(f)
}

/// The console quit with Ctrl-C while `what` ran: interrupted, as a
/// command Ctrl-C stops (130), naming what was stopped.
fn ctrl_c_quit(what: &[String]) -> Failure {
    interrupt::failure(
        libc::SIGINT,
        &format!(
            "the console quit and stopped {}; the outcome is recorded as unknown (a monitoring window as interrupted); check `shipdeck status` and `shipdeck history`",
            what.join(", ")
        ),
    )
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
        cause: None,
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

pub(super) async fn run(cli: Cli) -> Result<i32, Failure> {
    let cfg_path = cli.config.as_deref();
    let Some(command) = cli.command else {
        let engine = open_engine(cfg_path).await?;
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
            show!(
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
            let url = cfg.store.url.clone();
            let from_path = PathBuf::from(path);
            // On a blocking thread, so that a stop signal ends the command
            // while it connects or copies.
            let copy =
                tokio::task::spawn_blocking(move || crate::engine::migrate_store(&cfg, &from_path));
            let r = tokio::select! {
                biased;
                done = copy => match done {
                    Ok(r) => r?,
                    Err(e) => {
                        return Err(Failure {
                            code: 1,
                            message: format!("store migrate stopped: {e}"),
                            cause: None,
                        });
                    }
                },
                sig = interrupt::signalled() => {
                    return Err(interrupt::failure(
                        sig,
                        "store migrate stopped. The copy is one transaction: unless it had just committed, the target is left as it was (run the command again: it copies, or says the target already holds the store)",
                    ));
                }
            };
            if r.already {
                show!(
                    "{}: already holds this store's {} audit records (chain head {}): nothing to do",
                    url.as_deref()
                        .map(crate::backends::show_url_public)
                        .unwrap_or_default(),
                    r.audit,
                    r.head.as_deref().unwrap_or("-")
                );
            } else {
                show!(
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
            let engine = open_engine(cfg_path).await?;
            let status = engine.status().await;
            // The metric samples it kept.
            engine.settle(SETTLE).await;
            if json {
                show!("{}", output::to_json(&status));
            } else {
                show_part!("{}", output::status_table(&status));
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
            let engine = open_engine(cfg_path).await?;
            let version = parse_version(version, "--version")?;
            if break_freeze.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return Err(usage(
                    "--break-freeze needs a reason: --break-freeze \"hotfix for INC-42\"",
                ));
            }
            let interactive = !yes && std::io::stdin().is_terminal();
            // Asked or not, the log says what is pending and what the
            // version drops of what runs; a human asked says yes to exactly
            // this plan, and a script ships exactly the plan its log printed
            // (the engine refuses if what promoting ships has changed since).
            let mut plan = engine
                .plan_breaking(&env, version.as_ref(), break_freeze.as_deref())
                .await?;
            // A watched promote whose window would have too thin a
            // baseline (a scrape source, nobody polled it before) collects
            // it first: nothing is deployed until it has, or if it cannot.
            // A refused plan is refused at once, not after the wait.
            if watch && plan.refusal().is_none() {
                let collected = engine
                    .collect_baseline(&env, &|p| say!("{}", output::baseline_progress_text(&p)))
                    .await?;
                if collected > 0 {
                    plan = engine
                        .plan_breaking(&env, version.as_ref(), break_freeze.as_deref())
                        .await?;
                }
            }
            say_part!("{}", output::plan_text(&plan));
            say_part!(
                "{}",
                output::release_text(
                    &engine.release_of(&plan).await,
                    &plan.to,
                    plan.version.as_str()
                )
            );
            let confirm_with = if yes {
                Confirm::Printed {
                    expect: Expect::from_plan(&plan),
                    accept_warnings: true,
                }
            } else if interactive {
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
                    if !confirm(&q).await {
                        say!("not deployed");
                        return Ok(3);
                    }
                }
                Confirm::Seen(Expect::from_plan(&plan))
            } else {
                Confirm::Printed {
                    expect: Expect::from_plan(&plan),
                    accept_warnings: false,
                }
            };
            let (tx, printer) = event_printer(json, None);
            let res = interruptible(
                &engine,
                Stopped::Action,
                engine.promote_breaking(&env, version, confirm_with, break_freeze, Some(tx)),
            )
            .await;
            let _ = printer.await;
            let rec = res?;
            if watch {
                let phase = WindowPhase::default();
                let (tx, printer) = event_printer(json, Some(phase.clone()));
                let res = interruptible(
                    &engine,
                    Stopped::Window(phase),
                    engine.watch(&env, None, Some(tx)),
                )
                .await;
                let _ = printer.await;
                let out = res.map_err(|f| window_failed(&env, f))?;
                if json {
                    show!(
                        "{}",
                        output::to_json(&serde_json::json!({
                            "deployed": rec,
                            "watch": output::watch_json(&out),
                        }))
                    );
                } else {
                    show!(
                        "{} now runs {} (was {})",
                        rec.env,
                        rec.version,
                        output::opt(&rec.from_version)
                    );
                    show_part!("{}", output::watch_text(&out));
                }
                return Ok(watch_exit(&env, &out));
            }
            if json {
                show!("{}", output::to_json(&serde_json::json!({"deployed": rec})));
            } else {
                show!(
                    "{} now runs {} (was {})",
                    rec.env,
                    rec.version,
                    output::opt(&rec.from_version)
                );
                if engine.config().env(&env).is_some_and(|e| e.monitored) {
                    match engine.watcher(&env).await {
                        Some(w) => show!("{env} is monitored: {w} is watching this deploy"),
                        None => show!(
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
            let engine = open_engine(cfg_path).await?;
            let version = parse_version(version, "--version")?;
            let decision = if reject { Decision::NoGo } else { Decision::Go };
            let a = engine
                .approve(&env, decision, version.as_ref(), note)
                .await?;
            if json {
                show!("{}", output::to_json(&serde_json::json!({"approval": a})));
            } else {
                show!(
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
            let engine = open_engine(cfg_path).await?;
            let to = parse_version(to, "--to")?;
            // A deploy a killed shipdeck left may still run in the backend:
            // said before rolling back beside it (never refused — this may
            // be an incident), and asked about on a terminal below.
            let unsettled = engine.unsettled_deploy(&env).await?;
            if let Some(u) = &unsettled {
                say!("! {env}: {u}");
            }
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
                        Ok(Some(n)) => say_part!("{}", output::schema_text(&n, &env)),
                        Ok(None) => {}
                        Err(e) => say!(
                            "! cannot tell whether this rollback crosses database migrations: {e}"
                        ),
                    }
                }
                let q = format!(
                    "Roll {env} back from {} to {} ({strategy}){}?",
                    output::opt(&plan.from),
                    plan.to,
                    if unsettled.is_some() {
                        " beside the deploy that has no outcome"
                    } else {
                        ""
                    }
                );
                if !confirm(&q).await {
                    say!("not rolled back");
                    return Ok(3);
                }
                to = Some(plan.to);
            }
            let (tx, printer) = event_printer(false, None);
            let res = interruptible(
                &engine,
                Stopped::Action,
                engine.rollback(&env, to, Some(tx)),
            )
            .await;
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
                show!(
                    "{}",
                    output::to_json(&serde_json::json!({
                        "rolled_back": rec,
                        "schema": notice,
                        "schema_error": error,
                    }))
                );
            } else {
                show!(
                    "{} rolled back to {} (was {})",
                    rec.env,
                    rec.version,
                    output::opt(&rec.from_version)
                );
                match &schema {
                    Ok(Some(n)) => show_part!("{}", output::schema_text(n, &env)),
                    Ok(None) => {}
                    Err(e) => show!(
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
                    cause: None,
                })?;
            Ok(0)
        }
        Command::Replay { trace, json } => {
            // Default monitoring settings, or those of an explicit --config.
            let dcfg = match cfg_path {
                Some(p) => {
                    let cfg = Config::load(p).map_err(|e| usage(e.to_string()))?;
                    cfg.monitor.detector_config(None)
                }
                None => crate::monitor::DetectorConfig::default(),
            };
            // Reading, parsing and replaying a large trace is minutes of
            // CPU: off the runtime's one thread, so that Ctrl-C and SIGTERM
            // still end the command (they were ignored until it finished).
            let report = tokio::task::spawn_blocking(move || {
                let text = crate::paths::read_text_capped(&trace, crate::paths::MAX_TRACE_BYTES)
                    .map_err(|e| usage(format!("{}: cannot read: {e}", trace.display())))?;
                let parsed = crate::monitor::parse_noting(&text)
                    .map_err(|e| usage(format!("{}: {e}", trace.display())))?;
                // Said once, on stderr: the verdict and `--json` stay as
                // they are (SPEC §5).
                if let Some(inv) = &parsed.inverted {
                    say!("! {}: {inv}", trace.display());
                }
                Ok::<_, Failure>(crate::monitor::replay(&parsed.samples, dcfg))
            })
            .await
            .map_err(|e| Failure {
                code: 1,
                message: format!("replay stopped: {e}"),
                cause: None,
            })??;
            if json {
                show!("{}", output::to_json(&report));
            } else {
                let verdict = report.verdict.replace('_', " ");
                let at = report
                    .detected_at
                    .map(|t| format!(" at t={t}s"))
                    .unwrap_or_default();
                match report.reason.strip_prefix(&format!("{verdict}: ")) {
                    Some(rest) => show!("{verdict}{at}: {rest}"),
                    None => show!("{verdict}{at}: {}", report.reason),
                }
            }
            Ok(report.exit_code())
        }
        Command::Watch { env, window, json } => {
            // Bad usage is told before the store or the config is opened.
            let window = window
                .map(|w| {
                    crate::domain::HumanDuration::parse_at_most(&w, crate::config::limits::WINDOW)
                        .map_err(|e| usage(format!("--window: {e}")))
                        .and_then(|d| match d.0.is_zero() {
                            // A window of nothing judged nothing and exited 1.
                            true => Err(usage(format!(
                                "--window {w}: the monitoring window must be longer than zero"
                            ))),
                            false => Ok(d.0),
                        })
                })
                .transpose()?;
            // A store unreachable at the start fails this window too.
            let engine = open_engine(cfg_path)
                .await
                .map_err(|f| window_failed(&env, f))?;
            let phase = WindowPhase::default();
            let (tx, printer) = event_printer(json, Some(phase.clone()));
            let res = interruptible(
                &engine,
                Stopped::Window(phase),
                engine.watch(&env, window, Some(tx)),
            )
            .await;
            let _ = printer.await;
            let out = res.map_err(|f| window_failed(&env, f))?;
            if json {
                show!("{}", output::to_json(&output::watch_json(&out)));
            } else {
                show_part!("{}", output::watch_text(&out));
            }
            Ok(watch_exit(&env, &out))
        }
        Command::History {
            verify: true, json, ..
        } => {
            let engine = open_engine(cfg_path).await?;
            let report = engine.verify_audit().await?;
            if json {
                show!(
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
                show_part!("{}", output::verify_text(&report, &engine.store_location()));
            }
            Ok(if report.intact() { 0 } else { 1 })
        }
        Command::History {
            env, limit, json, ..
        } => {
            if limit == 0 {
                // It printed "No recorded actions yet." over a full log.
                return Err(usage("--limit 0 shows nothing: give at least 1"));
            }
            let engine = open_engine(cfg_path).await?;
            let h = engine.history(env.as_deref(), limit).await?;
            if json {
                show!("{}", output::to_json(&serde_json::json!({"entries": h})));
            } else {
                show_part!("{}", output::history_table(&h));
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod console_tests {
    /// Ctrl-C in the console stopping an action exits like a command
    /// Ctrl-C interrupts (130), naming what it stopped.
    #[test]
    fn a_ctrl_c_quit_that_stopped_an_action_exits_130() {
        let f = super::ctrl_c_quit(&["promote of production".to_string()]);
        assert_eq!(f.code, 130);
        assert!(
            f.message.starts_with("interrupted by SIGINT (Ctrl-C): the console quit and stopped promote of production;"),
            "{}",
            f.message
        );
    }
}
