//! Two shipdeck processes on one store: what one records shows in the
//! other's open console within 2 s, through the store's change feed — not
//! through the console's refresh clock, which these tests set to a minute.
//!
//! Needs `tmux` (Debian: `apt-get install tmux`; `./scripts/test` installs it).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::{Tmux, shell_quote};

/// A person's shell on this machine: their own name, the shared config.
fn as_user(home: &Path, user: &str) -> impl Fn(&mut Command) {
    let home = home.to_path_buf();
    let user = user.to_string();
    move |c: &mut Command| {
        c.current_dir(&home)
            .env_remove("SHIPDECK_CONFIG")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("USER", &user);
    }
}

/// The example config on `fleet`'s address, polling only once a minute.
fn slow_refresh_config(home: &Path, fleet: &str) -> std::path::PathBuf {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
            .expect("config.example.toml");
    let text = example
        .replace("127.0.0.1:7878", fleet)
        .replace("refresh = \"1s\"", "refresh = \"60s\"");
    assert!(
        text.contains("refresh = \"60s\""),
        "the example sets refresh"
    );
    let p = home.join("shipdeck.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_cli_approval_shows_in_an_open_console_within_two_seconds() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for d in ["config", "data", "state"] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    let fleet = common::Fleet::start();
    let config = slow_refresh_config(home, &fleet.addr);
    let bin = Path::new(env!("CARGO_BIN_EXE_shipdeck"));
    let tmux = Tmux::new(home);
    let script = format!(
        "{} --config {}; sleep 600",
        shell_quote(bin),
        shell_quote(&config)
    );
    tmux.start("console", &script, as_user(home, "console"));
    tmux.wait_for(
        "console",
        "the pending release waiting for a Go",
        Duration::from_secs(60),
        |s| s.contains("no Go recorded"),
    );

    let mut cli = Command::new(bin);
    as_user(home, "ops")(&mut cli);
    let asked = Instant::now();
    let out = cli
        .arg("--config")
        .arg(&config)
        .args(["approve", "production", "--note", "looks good"])
        .output()
        .unwrap();
    let recorded = asked.elapsed();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (seen, screen) = tmux.wait_for(
        "console",
        "ops's Go in the console",
        Duration::from_secs(10),
        |s| s.contains("Go by ops"),
    );
    let delay = recorded + seen;
    eprintln!(
        "approve returned after {:.0} ms; the console showed it {:.0} ms after the approval was recorded ({:.0} ms after the command started)",
        recorded.as_secs_f64() * 1e3,
        seen.as_secs_f64() * 1e3,
        delay.as_secs_f64() * 1e3
    );
    assert!(
        seen <= Duration::from_secs(2),
        "the console showed the Go {seen:?} after it was recorded (refresh is 60s):\n{screen}"
    );
}
