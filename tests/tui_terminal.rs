//! The console as a person uses it: the real binary in a real terminal
//! (tmux, 160×45), driven by keystrokes and read back from the screen.
//!
//! `shipdeck demo` → approve → promote production → v1.8.0 goes out → the
//! monitoring window catches the regression → production is rolled back to
//! v1.7.3 → `r` offers nothing to roll back to (never the caught release)
//! → `q` → the terminal is back to normal (no alternate screen, no
//! mouse capture, cooked mode with echo).
//!
//! Needs `tmux` (Debian: `apt-get install tmux`; `./scripts/test` installs it).

mod common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::tmux::shell_quote;

const SESSION: &str = "shipdeck";
const POLL: Duration = Duration::from_millis(250);
const ENVS: [&str; 4] = ["local", "development", "staging", "production"];
const EXIT_MARK: &str = "SHIPDECK-EXITED";

/// The shared private tmux server (tests/common/tmux.rs), driving this
/// file's one session.
struct Tmux(common::tmux::Tmux);

impl Tmux {
    /// Fails with install instructions when tmux is missing.
    fn new(dir: &Path) -> Tmux {
        Tmux(common::tmux::Tmux::new(dir))
    }

    /// Start `script` in the session, with the environment `setup` gives.
    fn start(&self, script: &str, setup: impl FnOnce(&mut Command)) {
        self.0.start(SESSION, script, setup);
    }

    fn keys(&self, keys: &[&str]) {
        self.0.keys(SESSION, keys);
    }

    /// What the pane shows now, as plain text (wrapped lines joined).
    fn screen(&self) -> String {
        self.0.screen(SESSION)
    }

    fn format(&self, fmt: &str) -> String {
        self.0.format(SESSION, fmt)
    }
}

/// Polls the screen until `done` holds; on timeout fails with the last screen.
fn wait_for(tmux: &Tmux, what: &str, timeout: Duration, done: impl FnMut(&str) -> bool) {
    tmux.0.wait_for(SESSION, what, timeout, done);
}

fn chars(line: &str) -> Vec<char> {
    line.chars().collect()
}

/// The line naming all four environments (the column titles).
fn titles_row(screen: &str) -> Option<usize> {
    screen
        .lines()
        .position(|l| ENVS.iter().all(|e| l.contains(e)))
}

/// Production's column (the rightmost one), one string per line below the
/// titles, from its left border to the end of the line.
fn production_column(screen: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = screen.lines().collect();
    let row = titles_row(screen)?;
    let title = chars(lines[row]);
    let name: Vec<char> = "production".chars().collect();
    let at = title.windows(name.len()).position(|w| w == name)?;
    let left = title[..at]
        .iter()
        .rposition(|c| matches!(c, '┌' | '╔' | '┏' | '╭'))?;
    let mut column = Vec::new();
    for line in &lines[row + 1..] {
        let cs = chars(line);
        if cs.len() <= left || matches!(cs[left], '└' | '╚' | '┗' | '╰') {
            break;
        }
        column.push(cs[left..].iter().collect());
    }
    Some(column)
}

/// The text after `label` in production's column, e.g. `field(s, "version")`.
fn production_field(screen: &str, label: &str) -> Option<String> {
    production_column(screen)?.into_iter().find_map(|l| {
        let l = l.trim_start_matches(|c: char| !c.is_alphanumeric());
        l.strip_prefix(label)
            .map(|rest| rest.trim_end_matches(['│', '║', '┃']).trim().to_string())
    })
}

/// The monitoring panel (the box whose title mentions monitoring), from its
/// left border to the end of each line.
fn monitoring_panel(screen: &str) -> Option<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let start = titles_row(screen).unwrap_or(0);
    let (row, left) = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find_map(|(i, l)| {
            let cs = chars(l);
            let word: Vec<char> = "onitoring".chars().collect();
            let at = cs.windows(word.len()).position(|w| w == word)?;
            let left = cs[..at]
                .iter()
                .rposition(|c| matches!(c, '┌' | '╔' | '┏' | '╭'))?;
            Some((i, left))
        })?;
    let mut panel = String::new();
    for line in &lines[row..] {
        let cs = chars(line);
        if cs.len() <= left {
            break;
        }
        panel.extend(&cs[left..]);
        panel.push('\n');
        if matches!(cs[left], '└' | '╚' | '┗' | '╰') {
            break;
        }
    }
    Some(panel)
}

/// How many points the live-metrics panel has before any deploy
/// ("… from status snapshots (12 points over 22s)").
fn live_points(screen: &str) -> Option<usize> {
    let (_, rest) = screen.split_once("snapshots (")?;
    rest.split_once(" point")?.0.trim().parse().ok()
}

/// A dialog is open: the footer offers Esc to cancel it.
fn dialog_open(screen: &str) -> bool {
    screen.contains("Esc cancel")
}

#[test]
fn demo_promote_regression_rollback_and_terminal_restored() {
    let started = Instant::now();
    let home = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new(home.path());
    for d in ["config", "data", "state"] {
        std::fs::create_dir_all(home.path().join(d)).unwrap();
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_shipdeck"));
    // The shell reports how shipdeck exited and the terminal mode it left.
    let script = format!(
        "{} demo; echo {EXIT_MARK} $?; stty -a; sleep 600",
        shell_quote(bin)
    );
    // The server starts from this command, so the pane inherits its env.
    tmux.start(&script, |c| {
        c.current_dir(home.path())
            .env_remove("SHIPDECK_CONFIG")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("USER", "tester");
    });

    // The console is up: the four environment columns side by side.
    wait_for(
        &tmux,
        "the four environment columns",
        Duration::from_secs(60),
        |s| titles_row(s).is_some() && production_field(s, "version").is_some(),
    );
    let screen = tmux.screen();
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "1",
        "the console captures the mouse ([ui] mouse defaults to true)"
    );
    let v = production_field(&screen, "version").unwrap();
    assert!(
        v.starts_with("v1.7.3"),
        "production should start on v1.7.3, shows {v:?}:\n{screen}"
    );

    // Let the console collect a baseline first. The window's detector needs 5
    // usable steps from before the deploy (~2 s each); promoting within the
    // first seconds leaves it at "insufficient data" for the whole window and
    // the bad release stays in production. The live-metrics panel counts the
    // points it has: wait for 8.
    wait_for(
        &tmux,
        "8 points of live metrics",
        Duration::from_secs(90),
        |s| live_points(s).is_some_and(|n| n >= 8),
    );

    // Approve: `a` opens the dialog (with an optional note), Enter records the Go.
    tmux.keys(&["a"]);
    wait_for(&tmux, "the approval dialog", Duration::from_secs(20), |s| {
        dialog_open(s) && s.contains("pproval")
    });
    tmux.keys(&["Enter"]);
    wait_for(
        &tmux,
        "the Go to be recorded",
        Duration::from_secs(30),
        |s| !dialog_open(s) && s.contains("Go recorded") && s.contains("ready: p promotes"),
    );

    // (The "Go recorded" notice comes before the refreshed plan: a `p` in
    // between is refused with "no Go recorded", hence the wait for "ready".)
    // Promote production (selected at start): `p`, then Enter in the dialog.
    tmux.keys(&["p"]);
    wait_for(&tmux, "the promote dialog", Duration::from_secs(20), |s| {
        dialog_open(s) && s.contains("Promote production")
    });
    tmux.keys(&["Enter"]);
    let promoted = Instant::now();
    wait_for(
        &tmux,
        "production to run v1.8.0",
        Duration::from_secs(60),
        |s| production_field(s, "version").is_some_and(|v| v.starts_with("v1.8.0")),
    );

    // The window catches the regression and production goes back to v1.7.3.
    let mut regression_seen = false;
    wait_for(
        &tmux,
        "the regression and the rollback to v1.7.3",
        Duration::from_secs(120),
        |s| {
            regression_seen |= monitoring_panel(s)
                .is_some_and(|p| p.contains("REGRESSION") || p.contains("regression"));
            let version = production_field(s, "version").unwrap_or_default();
            let state = production_field(s, "state").unwrap_or_default();
            regression_seen && version.starts_with("v1.7.3") && state.contains("rolled back")
        },
    );
    eprintln!(
        "promote → rolled back on screen in {:.1}s",
        promoted.elapsed().as_secs_f64()
    );

    // `r` again never offers the caught release: nothing to roll back to,
    // and Enter changes nothing. (Any alarm banner is dismissed first.)
    tmux.keys(&["Escape"]);
    sleep(Duration::from_millis(500));
    // An Escape and the next key read in one go are one Alt-key to the
    // terminal (a console starved of CPU for the pause above): `r` is
    // pressed again until it is answered. It only ever shows a notice or a
    // dialog, so pressing it twice changes nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tmux.keys(&["r"]);
        let pressed = Instant::now();
        let answered = loop {
            let s = tmux.screen();
            if s.contains("nothing to roll back to") || s.contains("Roll back production") {
                break true;
            }
            if pressed.elapsed() > Duration::from_secs(5) {
                break false;
            }
            sleep(POLL);
        };
        if answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`r` never said there is nothing to roll back to; last screen:\n{}",
            tmux.screen()
        );
    }
    let screen = tmux.screen();
    assert!(
        screen.contains("nothing to roll back to")
            && !screen.contains("Roll back production")
            && !dialog_open(&screen),
        "`r` after the rollback offers the caught release:\n{screen}"
    );
    // Enter opens the selected environment's details (and nothing else):
    // they are closed before production's card is read, since a long
    // verdict widens them over it.
    tmux.keys(&["Enter"]);
    sleep(Duration::from_secs(4));
    tmux.keys(&["Escape"]);
    sleep(Duration::from_millis(500));
    let screen = tmux.screen();
    let version = production_field(&screen, "version").unwrap_or_default();
    let state = production_field(&screen, "state").unwrap_or_default();
    assert!(
        version.starts_with("v1.7.3") && !state.contains("rolling") && !state.contains("deploying"),
        "production left v1.7.3 after `r`, Enter:\n{screen}"
    );

    // Quit: `q` (confirm if the console asks), then the shell's report. As
    // with `r` above, a `q` read together with the Escape is Alt-q: it is
    // pressed again while nothing happens (no dialog, no exit).
    tmux.keys(&["q"]);
    let asked_at = Instant::now();
    let mut pressed_at = asked_at;
    let mut confirmed = false;
    let deadline = asked_at + Duration::from_secs(60);
    let screen = loop {
        let s = tmux.screen();
        if s.contains(EXIT_MARK) && s.contains("icanon") {
            break s;
        }
        if !confirmed && dialog_open(&s) {
            tmux.keys(&["Enter"]);
            confirmed = true;
        } else if !confirmed
            && !s.contains(EXIT_MARK)
            && pressed_at.elapsed() > Duration::from_secs(5)
        {
            tmux.keys(&["q"]);
            pressed_at = Instant::now();
        }
        if Instant::now() >= deadline {
            // Leave the terminal usable for whoever looks, then fail.
            tmux.keys(&["C-c"]);
            sleep(Duration::from_secs(2));
            panic!(
                "`q` did not quit within 60s (confirmed: {confirmed}); screen after Ctrl-C:\n{}",
                tmux.screen()
            );
        }
        sleep(POLL);
    };

    // The terminal is restored: exit status 0, main screen, cooked mode, echo.
    assert!(
        screen.lines().any(|l| l.trim() == format!("{EXIT_MARK} 0")),
        "shipdeck should exit with status 0:\n{screen}"
    );
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "the pane is still on the alternate screen:\n{screen}"
    );
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "0",
        "mouse capture is still on after exit:\n{screen}"
    );
    assert_eq!(
        tmux.format("#{cursor_flag}"),
        "1",
        "the cursor is still hidden:\n{screen}"
    );
    assert!(
        !screen.contains("PRODUCTION") && !screen.contains("←→ select"),
        "the console is still drawn after exit:\n{screen}"
    );
    let words: Vec<&str> = screen
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    for mode in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(
            words.contains(&mode) && !words.contains(&format!("-{mode}").as_str()),
            "terminal left without `{mode}` (stty -a):\n{screen}"
        );
    }
    eprintln!("whole run: {:.1}s", started.elapsed().as_secs_f64());
}

/// The classic 80×24 terminal: every environment's name and version, the
/// help hint, and the dialogs' own confirm and cancel keys are on screen;
/// smaller, the console asks for 80×24 and comes back when given it.
#[test]
fn at_80x24_every_environment_and_the_dialogs_keys_are_visible() {
    let home = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new(home.path());
    for d in ["config", "data", "state"] {
        std::fs::create_dir_all(home.path().join(d)).unwrap();
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_shipdeck"));
    let script = format!("{} demo; echo {EXIT_MARK} $?; sleep 600", shell_quote(bin));
    tmux.start(&script, |c| {
        c.current_dir(home.path())
            .env_remove("SHIPDECK_CONFIG")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("USER", "tester");
    });
    let resize = |w: u32, h: u32| {
        let out = tmux
            .0
            .command()
            .args(["resize-window", "-t", SESSION])
            .args(["-x", &w.to_string(), "-y", &h.to_string()])
            .output()
            .expect("tmux resize-window");
        assert!(out.status.success(), "resize: {out:?}");
    };
    resize(80, 24);
    // The demo's four environments and what each runs, side by side.
    let versions = ["v1.9.0", "v1.8.1", "v1.8.0", "v1.7.3"];
    let (_, screen) = tmux.0.wait_for(
        SESSION,
        "the four columns with their versions at 80x24",
        Duration::from_secs(60),
        |s| {
            titles_row(s).is_some_and(|row| {
                let version_row = s.lines().nth(row + 1).unwrap_or("");
                versions.iter().all(|v| version_row.contains(v))
            }) && s.contains("Pending release → production")
        },
    );
    assert_eq!(tmux.format("#{window_width}x#{window_height}"), "80x24");
    for label in [
        "version", "health", "state", "approval", "deployed", "metrics",
    ] {
        assert!(screen.contains(label), "row label {label}:\n{screen}");
    }
    assert!(
        screen.contains("? help") && screen.contains("q quit"),
        "{screen}"
    );
    // Go/No-Go: the dialog itself says which key records it.
    tmux.keys(&["a"]);
    wait_for(&tmux, "the approval dialog", Duration::from_secs(20), |s| {
        s.contains("Record a Go for v1.8.0 → production")
            && s.contains("Enter record Go")
            && s.contains("Esc cancel")
    });
    tmux.keys(&["Enter"]);
    wait_for(
        &tmux,
        "the Go in production's column",
        Duration::from_secs(20),
        // At 80 columns the row labels stand in a gutter on the left.
        |s| {
            s.lines()
                .any(|l| l.starts_with("approval") && l.contains("║✓ Go"))
        },
    );
    // Promote: versions, PRODUCTION and the keys, all inside the dialog.
    tmux.keys(&["p"]);
    let (_, screen) = tmux.0.wait_for(
        SESSION,
        "the promote dialog",
        Duration::from_secs(20),
        // The whole dialog, down to its bottom border: a capture taken while
        // the terminal was still painting it (a loaded machine) showed its
        // first lines over the panels and none of its last.
        |s| {
            s.contains("Promote production: v1.7.3 → v1.8.0")
                && s.lines()
                    .skip_while(|l| !l.contains("╔ Promote production?"))
                    .any(|l| l.starts_with('╚'))
        },
    );
    let dialog: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("╔ Promote production?"))
        .take_while(|l| !l.starts_with('╚'))
        .collect();
    let dialog = dialog.join("\n");
    for what in ["This deploys to PRODUCTION.", "Enter promote", "Esc cancel"] {
        assert!(dialog.contains(what), "{what} inside the dialog:\n{screen}");
    }
    tmux.keys(&["Escape"]);
    wait_for(&tmux, "the dialog closed", Duration::from_secs(20), |s| {
        !dialog_open(s)
    });
    // Smaller than 80x24: says so; back to 80x24: the console again.
    resize(60, 20);
    wait_for(&tmux, "the size request", Duration::from_secs(20), |s| {
        s.contains("enlarge the terminal to 80×24 (now 60×20)")
    });
    resize(80, 24);
    wait_for(&tmux, "the console again", Duration::from_secs(20), |s| {
        titles_row(s).is_some()
    });
    tmux.keys(&["q"]);
    wait_for(&tmux, "shipdeck to exit", Duration::from_secs(30), |s| {
        s.contains(&format!("{EXIT_MARK} 0"))
    });
}

/// A deploy made elsewhere (the CLI, another engineer) is noticed by an open
/// console, which watches it: one monitoring window for that deploy.
#[test]
fn a_cli_deploy_is_caught_by_an_open_console() {
    let home = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new(home.path());
    for d in ["config", "data", "state"] {
        std::fs::create_dir_all(home.path().join(d)).unwrap();
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_shipdeck"));
    let fleet = common::Fleet::start();
    // The example config, on this fleet's port, with a short window.
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
            .expect("config.example.toml");
    let config = home.path().join("shipdeck.toml");
    std::fs::write(
        &config,
        example
            .replace("127.0.0.1:7878", &fleet.addr)
            .replace("window = \"30m\"", "window = \"2m\"")
            .replace("baseline = \"30m\"", "baseline = \"1m\""),
    )
    .unwrap();
    let env = |c: &mut Command| {
        c.current_dir(home.path())
            .env_remove("SHIPDECK_CONFIG")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("TERM", "xterm-256color");
    };
    let script = format!(
        "{} --config {}; sleep 600",
        shell_quote(bin),
        shell_quote(&config)
    );
    tmux.start(&script, |c| {
        env(c);
        c.env("USER", "console");
    });
    wait_for(
        &tmux,
        "the console on production v1.7.3",
        Duration::from_secs(60),
        |s| production_field(s, "version").is_some_and(|v| v.starts_with("v1.7.3")),
    );
    // Metrics flow (the window needs some baseline).
    wait_for(
        &tmux,
        "3 points of live metrics",
        Duration::from_secs(60),
        |s| live_points(s).is_some_and(|n| n >= 3),
    );

    // Someone else approves and promotes production from the command line.
    let cli = |args: &[&str]| {
        let mut c = Command::new(bin);
        env(&mut c);
        let out = c
            .env("USER", "ops")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("run the CLI");
        assert!(
            out.status.success(),
            "shipdeck {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(&["approve", "production", "--note", "from the pipeline"]);
    cli(&["promote", "production", "--yes"]);

    // The open console notices the new version and watches it.
    wait_for(
        &tmux,
        "the console to watch the CLI's deploy",
        Duration::from_secs(30),
        |s| {
            production_field(s, "version").is_some_and(|v| v.starts_with("v1.8.0"))
                && monitoring_panel(s).is_some_and(|p| p.contains("Monitoring production"))
        },
    );
    let screen = tmux.screen();
    assert!(
        screen.contains("this console watches it"),
        "the console says it took the deploy over:\n{screen}"
    );
}

/// A panic in a task of the running console reaches the one panic hook
/// (the same as every command's): the terminal is restored, one line names
/// the log, the report is in the log, and the exit status is 101. The panic
/// is forced through `SHIPDECK_DEBUG_FORCE_PANIC=console` (debug builds only).
#[test]
fn a_panic_in_the_console_restores_the_terminal_and_logs_the_report() {
    let home = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new(home.path());
    for d in ["config", "data", "state"] {
        std::fs::create_dir_all(home.path().join(d)).unwrap();
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_shipdeck"));
    let script = format!(
        "{} demo; echo {EXIT_MARK} $?; stty -a; sleep 600",
        shell_quote(bin)
    );
    tmux.start(&script, |c| {
        c.current_dir(home.path())
            .env_remove("SHIPDECK_CONFIG")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("USER", "tester")
            .env("SHIPDECK_DEBUG_FORCE_PANIC", "console");
    });
    // The exit mark, then `stty -a`'s modes (`icanon` or `-icanon`): the
    // shell prints them a moment after the mark.
    wait_for(&tmux, "shipdeck to exit", Duration::from_secs(60), |s| {
        s.contains(EXIT_MARK) && s.contains("icanon")
    });
    let screen = tmux.screen();
    assert!(
        screen
            .lines()
            .any(|l| l.trim() == format!("{EXIT_MARK} 101")),
        "exit status 101:\n{screen}"
    );
    let said: Vec<&str> = screen
        .lines()
        .take_while(|l| !l.contains(EXIT_MARK))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(said.len(), 1, "one line, no backtrace:\n{screen}");
    assert!(said[0].contains("internal error"), "{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "0", "{screen}");
    assert_eq!(tmux.format("#{mouse_any_flag}"), "0", "{screen}");
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "{screen}");
    let words: Vec<&str> = screen
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    for mode in ["icanon", "echo", "isig"] {
        assert!(
            words.contains(&mode) && !words.contains(&format!("-{mode}").as_str()),
            "terminal left without `{mode}`:\n{screen}"
        );
    }
    let log =
        std::fs::read_to_string(home.path().join("state/shipdeck/shipdeck.log")).expect("the log");
    assert!(log.contains("SHIPDECK_DEBUG_FORCE_PANIC=console"), "{log}");
}

/// Whether process `pid` still exists (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit_once(") ").map(|(_, r)| r.chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        })
        .unwrap_or(false)
}

/// The console's pid: under the pane's shell, down through the one child
/// of each shell (a script may run the console in a shell of its own).
fn console_pid(tmux: &Tmux) -> u32 {
    let mut pid: u32 = tmux.format("#{pane_pid}").parse().expect("pane pid");
    loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("the shell's children");
        let pids: Vec<u32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert_eq!(pids.len(), 1, "one child under the shell {pid}: {pids:?}");
        pid = pids[0];
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if name.trim() != "sh" {
            return pid;
        }
    }
}

/// A console (in `tmux`'s session) whose promote of `prod` is running: its
/// deploy command waits on a child of its own (`sleep 300`) until killed.
/// The session runs `script(console)`, `console` being the shell command
/// that opens the console. Returns the deploy's child's pid.
fn console_with_a_running_promote(
    home: &common::Home,
    tmux: &Tmux,
    script: impl FnOnce(&str) -> String,
) -> u32 {
    let p = home.path();
    std::fs::write(p.join("dev.txt"), "v2.0.0\n").unwrap();
    std::fs::write(p.join("prod.txt"), "v1.0.0\n").unwrap();
    // The deploy starts a grandchild (its pid noted) and waits on it.
    std::fs::write(
        p.join("deploy-prod"),
        r#"#!/bin/sh
cd "$(dirname "$0")"
if [ -f deploy-block ]; then
  sleep 300 &
  echo $! > grandchild.pid
  touch deploying
  wait
fi
echo "$1" > prod.txt
"#,
    )
    .unwrap();
    std::fs::write(p.join("deploy-block"), "").unwrap();
    let _ = Command::new("chmod")
        .arg("+x")
        .arg(p.join("deploy-prod"))
        .status();
    let config = home.config(&format!(
        r#"project = "signals"
[[environments]]
name = "dev"
version = {{ command = ["cat", "{dir}/dev.txt"] }}
deploy = {{ command = ["true"] }}

[[environments]]
name = "prod"
version = {{ command = ["cat", "{dir}/prod.txt"] }}
deploy = {{ command = ["{dir}/deploy-prod", "{{version}}"], timeout = "300s", poll = "200ms" }}
"#,
        dir = p.display()
    ));
    let bin = Path::new(env!("CARGO_BIN_EXE_shipdeck"));
    let console = format!("{} --config {}", shell_quote(bin), shell_quote(&config));
    tmux.start(&script(&console), |c| {
        c.current_dir(p)
            .env_remove("SHIPDECK_CONFIG")
            .env("HOME", p)
            .env("XDG_CONFIG_HOME", p.join("config"))
            .env("XDG_DATA_HOME", p.join("data"))
            .env("XDG_STATE_HOME", p.join("state"))
            .env("USER", "tester");
    });
    wait_for(
        tmux,
        "prod's pending promotion",
        Duration::from_secs(60),
        |s| s.contains("v1.0.0 → v2.0.0"),
    );
    let opened = Instant::now();
    while !dialog_open(&tmux.screen()) {
        assert!(
            opened.elapsed() < Duration::from_secs(60),
            "no promote dialog:\n{}",
            tmux.screen()
        );
        tmux.keys(&["p"]);
        sleep(Duration::from_secs(1));
    }
    tmux.keys(&["Enter"]);
    let started = Instant::now();
    while !p.join("deploying").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the deploy did not start:\n{}",
            tmux.screen()
        );
        sleep(POLL);
    }
    let grandchild: u32 = std::fs::read_to_string(p.join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(grandchild));
    grandchild
}

/// After the console stopped a running promote: no process of the deploy
/// is left, the promote is recorded "unknown … interrupted", the history
/// verifies, and the lock went with it (the next promote goes ahead).
fn the_promote_was_stopped_and_recorded(home: &common::Home, grandchild: u32, what: &str) {
    let p = home.path();
    let gone = Instant::now();
    while alive(grandchild) {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "{what}: the deploy's child {grandchild} is left running"
        );
        sleep(POLL);
    }
    let h = home.run(&["history", "--json"]).json();
    let promote = h["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "promote"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(promote["outcome"], "unknown", "{what}: {promote}");
    assert!(
        promote["detail"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted"),
        "{what}: {promote}"
    );
    home.run(&["history", "--verify"]).expect_code(0);
    std::fs::remove_file(p.join("deploy-block")).unwrap();
    std::fs::write(p.join("prod.txt"), "v1.0.0\n").unwrap();
    home.run(&["promote", "prod", "--yes"]).expect_code(0);
}

/// SIGTERM or SIGHUP to the open console while a promote it started runs
/// (its deploy command sleeps, with a child of its own): the terminal is
/// restored, the exit status is 128 + the signal, the promote is recorded
/// "unknown … interrupted", its lock is released (the next promote is not
/// refused), and no process of the deploy is left.
#[test]
fn a_signal_to_the_console_stops_its_promote_records_it_and_restores_the_terminal() {
    for (sig, code) in [("-TERM", 143), ("-HUP", 129)] {
        let home = common::Home::new();
        let tmux = Tmux::new(home.path());
        let grandchild = console_with_a_running_promote(&home, &tmux, |console| {
            format!("{console}; echo {EXIT_MARK} $?; sleep 600")
        });
        let console = console_pid(&tmux);
        let killed = Command::new("kill")
            .args([sig, &console.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        wait_for(&tmux, "the console to exit", Duration::from_secs(60), |s| {
            s.contains(EXIT_MARK)
        });
        let screen = tmux.screen();
        assert!(
            screen
                .lines()
                .any(|l| l.trim() == format!("{EXIT_MARK} {code}")),
            "{sig}: exit status {code}:\n{screen}"
        );
        assert!(screen.contains("interrupted by SIG"), "{sig}: {screen}");
        assert_eq!(tmux.format("#{alternate_on}"), "0", "{sig}: {screen}");
        assert_eq!(tmux.format("#{mouse_any_flag}"), "0", "{sig}: {screen}");
        the_promote_was_stopped_and_recorded(&home, grandchild, sig);
        println!(
            "{sig}: console exit {code}, promote recorded unknown (interrupted), no child left"
        );
    }
}

/// The terminal closed for real while a promote runs (`tmux kill-pane`: the
/// pty goes away, SIGHUP arrives and every write to the terminal fails with
/// EIO): no panic (no "internal error" in the log), the exit status is 129,
/// the promote is stopped and recorded as interrupted, its lock released.
#[test]
fn closing_the_terminal_stops_the_promote_without_a_panic_and_exits_129() {
    let home = common::Home::new();
    let tmux = Tmux::new(home.path());
    let p = home.path();
    let status = p.join("console-exit");
    // As in a login: the session's leader (the outer shell) dies of the
    // hangup and the console gets its SIGHUP. The inner shell, only there to
    // note the exit status, traps the signal and runs the trap once the
    // console has exited (a caught signal is reset to its default by exec:
    // the console's SIGHUP is as usual). `; true` keeps the outer shell from
    // exec'ing the inner one.
    let grandchild = console_with_a_running_promote(&home, &tmux, |console| {
        let inner = format!(
            "trap true HUP; {console}; echo $? > {}",
            shell_quote(&status)
        );
        format!("sh -c {}; true", shell_quote(Path::new(&inner)))
    });
    let console = console_pid(&tmux);
    let closed = tmux
        .0
        .command()
        .args(["kill-pane", "-t", SESSION])
        .status()
        .unwrap();
    assert!(closed.success());
    let waited = Instant::now();
    while !status.exists() || alive(console) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the console ({console}) did not exit after its terminal closed"
        );
        sleep(POLL);
    }
    sleep(Duration::from_millis(200));
    let code = std::fs::read_to_string(&status).unwrap();
    let log = std::fs::read_to_string(p.join("state/shipdeck/shipdeck.log")).unwrap_or_default();
    assert!(!log.contains("panic"), "a panic on hangup:\n{log}");
    assert_eq!(code.trim(), "129", "exit status after the hangup");
    the_promote_was_stopped_and_recorded(&home, grandchild, "hangup");
    println!("hangup: console exit 129, no panic, promote recorded unknown (interrupted)");
}
