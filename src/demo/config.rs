//! The built-in config of `shipdeck demo`: the four demo environments on the
//! fleet's address, production gated by a Go and monitored with a short
//! window, so the whole process (approve, promote, regression, rollback)
//! fits in a minute or two. Each environment links to what the fleet
//! serves about it (its true state as a dashboard, the metrics page).

use std::fmt::Write;
use std::net::SocketAddr;

use super::fleet::ENVIRONMENTS;

/// Metrics step of the demo: short, so the detector has evidence quickly.
pub const DEMO_STEP: &str = "2s";
/// Monitoring window and baseline of the demo.
pub const DEMO_WINDOW: &str = "2m";
pub const DEMO_BASELINE: &str = "1m";

/// How the demo's production is deployed and rolled back (`shipdeck demo
/// --strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DemoStrategy {
    #[default]
    Redeploy,
    BlueGreen,
    Canary,
}

/// TOML for [`crate::config::Config::parse`], pointing at a fleet on `addr`.
pub fn demo_config(addr: SocketAddr, auto_rollback: bool) -> String {
    demo_config_with(addr, auto_rollback, None, DemoStrategy::Redeploy)
}

/// [`demo_config`] with production on `strategy` and the demo repository
/// as `[release]` (production then requires a backup before a migration
/// release, when the repository could be made).
pub fn demo_config_with(
    addr: SocketAddr,
    auto_rollback: bool,
    repo: Option<&super::repo::DemoRepo>,
    strategy: DemoStrategy,
) -> String {
    let backup = repo.is_some_and(|r| r.made.is_ok());
    let gates = if backup {
        "{ requires_approval = true, requires_backup = true }"
    } else {
        "{ requires_approval = true }"
    };
    let base = format!("http://{addr}");
    let mut s = format!(
        "project = \"demo-shop\"\n\n\
         [metrics]\nsource = \"scrape\"\nurl = \"{base}/metrics\"\nstep = \"{DEMO_STEP}\"\ntimeout = \"2s\"\n\n\
         [monitor]\nwindow = \"{DEMO_WINDOW}\"\nbaseline = \"{DEMO_BASELINE}\"\nauto_rollback = {auto_rollback}\n\n\
         [ui]\nrefresh = \"1s\"\n"
    );
    for env in ENVIRONMENTS {
        let _ = write!(
            s,
            "\n[[environments]]\nname = \"{env}\"\n\
             links = {{ dashboard = \"{base}/envs/{{env}}/truth\", metrics = \"{base}/metrics\" }}\n"
        );
        if env == "production" && strategy == DemoStrategy::BlueGreen {
            let p = format!("{base}/envs/production");
            let _ = write!(
                s,
                "monitored = true\ngates = {gates}\n\
                 rollback = \"blue-green\"\n\
                 [environments.blue_green]\n\
                 slots = [\"blue\", \"green\"]\n\
                 live = {{ url = \"{p}/live\", pointer = \"/slot\", timeout = \"2s\" }}\n\
                 slot_version = {{ url = \"{p}/slots/{{slot}}/version\", timeout = \"2s\" }}\n\
                 deploy = {{ webhook = \"{p}/slots/{{slot}}/deploy\", timeout = \"30s\", poll = \"250ms\" }}\n\
                 switch = {{ webhook = \"{p}/live\", timeout = \"5s\" }}\n\
                 keep_warm = \"1h\"\n"
            );
            continue;
        }
        let _ = write!(
            s,
            "version = {{ url = \"{base}/envs/{env}/version\", timeout = \"2s\" }}\n\
             deploy = {{ webhook = \"{base}/envs/{env}/deploy\", timeout = \"30s\", poll = \"250ms\" }}\n"
        );
        if env == "production" {
            let _ = write!(s, "monitored = true\ngates = {gates}\n");
        }
    }
    // Production is the last environment: its strategy keys and table go
    // right after it, before any top-level table.
    if strategy == DemoStrategy::Canary {
        s.push_str(&canary_table(&base, DEMO_CANARY_STEP_TIME));
    }
    if let Some(r) = repo {
        s.push_str(&super::repo::release_table(r));
    }
    s
}

/// How long each canary step of the demo is judged: long enough for the
/// bad release to turn bad on the canary (5–10 s, then a 15 s ramp).
pub const DEMO_CANARY_STEP_TIME: &str = "30s";

/// `rollback = "canary"` and its table on the demo fleet's canary
/// endpoints, for the last `[[environments]]` of a config (production).
pub fn canary_table(base: &str, step_time: &str) -> String {
    format!(
        "rollback = \"canary\"\n\n[environments.canary]\nsteps = [10, 50, 100]\nstep_time = \"{step_time}\"\n\
         version = {{ url = \"{base}/envs/production/canary/version\", timeout = \"2s\" }}\n\
         deploy = {{ webhook = \"{base}/envs/production/canary/deploy\", timeout = \"30s\", poll = \"250ms\" }}\n\
         weight = {{ webhook = \"{base}/envs/production/canary/weight\", timeout = \"5s\" }}\n\
         track_label = \"track\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, MetricsSourceKind};

    #[test]
    fn the_canary_demo_config_is_valid() {
        let addr: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let text = demo_config_with(addr, true, None, DemoStrategy::Canary);
        let c = Config::parse(&text, std::path::Path::new("<demo>")).unwrap();
        let prod = c.env("production").unwrap();
        assert_eq!(prod.strategy(), crate::config::RollbackStrategy::Canary);
        let t = prod.canary.as_ref().unwrap().get_ref();
        assert_eq!(t.steps.get_ref(), &vec![10, 50, 100]);
        assert_eq!(t.track_label, "track");
        assert_eq!(
            t.weight.get_ref().webhook.as_deref(),
            Some("http://127.0.0.1:40001/envs/production/canary/weight")
        );
        assert_eq!(
            demo_config_with(addr, true, None, DemoStrategy::Redeploy),
            demo_config(addr, true)
        );
    }

    #[test]
    fn the_demo_config_is_valid() {
        let addr: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        for auto in [true, false] {
            let text = demo_config(addr, auto);
            let c = Config::parse(&text, std::path::Path::new("<demo>")).unwrap();
            assert_eq!(c.names(), ENVIRONMENTS.to_vec());
            assert_eq!(c.monitor.auto_rollback, auto);
            assert_eq!(c.metrics.source, MetricsSourceKind::Scrape);
            assert_eq!(c.metrics.url, "http://127.0.0.1:40001/metrics");
            assert_eq!(c.metrics.step.to_string(), DEMO_STEP);
            let prod = c.env("production").unwrap();
            assert!(prod.monitored && prod.gates.requires_approval);
            assert!(!c.env("staging").unwrap().monitored);
            let links = prod.links.as_ref().unwrap().get_ref();
            assert_eq!(
                links.get("dashboard").map(String::as_str),
                Some("http://127.0.0.1:40001/envs/{env}/truth")
            );
            assert_eq!(
                links.get("metrics").map(String::as_str),
                Some("http://127.0.0.1:40001/metrics")
            );
            assert_eq!(
                prod.version
                    .as_ref()
                    .and_then(|v| v.get_ref().url.as_deref()),
                Some("http://127.0.0.1:40001/envs/production/version")
            );
        }
    }

    #[test]
    fn the_blue_green_demo_config_uses_the_fleets_slots() {
        let addr: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let text = demo_config_with(addr, true, None, DemoStrategy::BlueGreen);
        let c = Config::parse(&text, std::path::Path::new("<demo>")).unwrap();
        let prod = c.env("production").unwrap();
        assert_eq!(prod.strategy(), crate::config::RollbackStrategy::BlueGreen);
        assert!(prod.monitored && prod.gates.requires_approval);
        let bg = prod.blue_green.as_ref().unwrap().get_ref();
        assert_eq!(
            bg.live.get_ref().url.as_deref(),
            Some("http://127.0.0.1:40001/envs/production/live")
        );
        assert_eq!(
            bg.deploy.get_ref().webhook.as_deref(),
            Some("http://127.0.0.1:40001/envs/production/slots/{slot}/deploy")
        );
        // The other environments stay as they are.
        assert!(c.env("staging").unwrap().version.is_some());
    }
}
