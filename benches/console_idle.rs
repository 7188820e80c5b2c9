//! A console's background cost with the team store live (issue 10): the
//! real binary's console, in a real terminal (tmux), on the demo fleet
//! (four environments, metrics scraped every second, the default
//! `ui.refresh` of 1 s) with `[store] url` on a throwaway PostgreSQL —
//! so the change feed's LISTEN session, the presence heartbeat and the
//! status reads are all live. Nobody touches it: CPU over 60 s (user +
//! system, from /proc) and its resident memory, next to the budget of an
//! idle console: ≤ 2% of a core, ≤ 40 MB.
//!
//! Run: `nice cargo bench --bench console_idle` (needs PostgreSQL and tmux,
//! which `./scripts/test` installs). Note the machine's load beside the
//! figures: on a loaded machine the same work takes more CPU time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::{Tmux, shell_quote};

const SPAN: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(5);

fn main() {
    let cluster = common::pg::Cluster::start();
    let url = cluster.url(&cluster.create_db());
    let fleet = common::Fleet::start();
    let home = tempfile::tempdir().expect("temp home");
    let home = home.path();
    for d in ["config", "data", "state"] {
        std::fs::create_dir_all(home.join(d)).expect("home dirs");
    }
    let config = home.join("shipdeck.toml");
    std::fs::write(
        &config,
        fleet.config(&format!(
            "[store]\nurl = \"{url}\"\npassword_env = \"TEAM_PW\"\n"
        )),
    )
    .expect("config");
    let bin = Path::new(env!("CARGO_BIN_EXE_shipdeck"));
    let tmux = Tmux::new(home);
    let script = format!(
        "exec {} --config {}",
        shell_quote(bin),
        shell_quote(&config)
    );
    let h = home.to_path_buf();
    tmux.start("console", &script, move |c: &mut Command| {
        c.current_dir(&h)
            .env_remove("SHIPDECK_CONFIG")
            .env("HOME", &h)
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("XDG_DATA_HOME", h.join("data"))
            .env("XDG_STATE_HOME", h.join("state"))
            .env("USER", "idle")
            .env("TEAM_PW", common::pg::PASSWORD);
    });
    tmux.wait_for(
        "console",
        "the console's first status",
        Duration::from_secs(60),
        |s| s.contains("production") && s.contains("staging"),
    );
    let out = tmux
        .command()
        .args(["display-message", "-p", "-t", "console", "#{pane_pid}"])
        .output()
        .expect("tmux display-message");
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the console's pid");
    std::thread::sleep(SETTLE);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let mut rss_max = 0u64;
    while t0.elapsed() < SPAN {
        std::thread::sleep(Duration::from_secs(1));
        rss_max = rss_max.max(rss_kb(pid));
    }
    let (cpu1, span) = (cpu_seconds(pid), t0.elapsed());
    let screen = tmux.screen("console");
    assert!(
        !screen.contains("unreachable"),
        "the console lost its store during the run:\n{screen}"
    );
    let pct = (cpu1 - cpu0) / span.as_secs_f64() * 100.0;
    let mb = rss_max as f64 / 1024.0;
    println!(
        "console_idle: PG store live, {:.0} s idle: CPU {pct:.2}% of a core (budget ≤ 2%) {}, RSS max {mb:.1} MB (budget ≤ 40 MB) {}; load average {}",
        span.as_secs_f64(),
        if pct <= 2.0 { "ok" } else { "OVER" },
        if mb <= 40.0 { "ok" } else { "OVER" },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// User + system CPU time of `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the console runs");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks as f64 / hz
}

/// Resident memory of `pid`, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
