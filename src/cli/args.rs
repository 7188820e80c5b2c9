//! The command line's grammar: the clap definitions of every command, flag
//! and subcommand, and which of them print JSON.

use super::*;

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
        /// Address to serve on: HOST:PORT (a host name resolves, IPv4 first) or a port on 127.0.0.1
        #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR", value_parser = parse_listen)]
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

impl Command {
    pub(super) fn wants_json(&self) -> bool {
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

/// `--listen`: an address (`127.0.0.1:7878`, `[::1]:7878`), a host name
/// with a port (`localhost:7878`, resolved once, IPv4 first) or a bare port
/// (`7878`: on 127.0.0.1).
fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    let bad = || format!("`{s}` is no HOST:PORT (like 127.0.0.1:7878, localhost:7878 or 7878)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{host}` resolves to no address"))
}

#[cfg(test)]
mod listen_tests {
    use super::parse_listen;

    #[test]
    fn listen_takes_an_address_a_host_name_or_a_port() {
        assert_eq!(
            parse_listen("127.0.0.1:7878").unwrap().to_string(),
            "127.0.0.1:7878"
        );
        assert_eq!(
            parse_listen("[::1]:7878").unwrap().to_string(),
            "[::1]:7878"
        );
        assert_eq!(parse_listen("localhost:7879").unwrap().port(), 7879);
        assert!(parse_listen("localhost:7879").unwrap().ip().is_loopback());
        assert_eq!(parse_listen("7880").unwrap().to_string(), "127.0.0.1:7880");
        for bad in [
            "nonsense",
            ":7878",
            "localhost:",
            "localhost:99999",
            "host:port",
        ] {
            let e = parse_listen(bad).unwrap_err();
            assert!(e.contains(bad) || e.contains("resolve"), "{bad}: {e}");
        }
    }
}
