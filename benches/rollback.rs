//! Time to revert against the demo fleet, blue-green switch-back vs
//! redeploy: from calling the engine's rollback to production reporting
//! the previous version again (the engine returns only then). Goal for
//! blue-green: ≤ 1 s (SPEC §2: 1–5 min in the usual practice). Run with
//! `cargo bench --bench rollback [-- --runs N]`.

use std::time::{Duration, Instant};

use shipdeck::config::Config;
use shipdeck::demo::{DemoStrategy, FleetOptions};
use shipdeck::engine::{Confirm, Engine};

fn engine(addr: std::net::SocketAddr, strategy: DemoStrategy, dir: &std::path::Path) -> Engine {
    // The demo's config without production's gates and window: only the
    // deploys and rollbacks are timed here.
    let text = shipdeck::demo::demo_config_with(addr, false, None, strategy).replace(
        "monitored = true\ngates = { requires_approval = true }\n",
        "",
    );
    let mut cfg = Config::parse(&text, std::path::Path::new("<bench>")).expect("config");
    cfg.store.path = Some(dir.join("bench.db"));
    Engine::open(cfg).expect("engine")
}

fn summary(mut d: Vec<Duration>) -> (Duration, Duration, Duration) {
    d.sort();
    (d[d.len() / 2], d[0], d[d.len() - 1])
}

fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let opts = FleetOptions::default();
    let deploy_s = opts.deploy_duration.as_secs_f64();
    // Between runs, every deploy the fleet started has finished: a
    // blue-green promotion to a slot that already runs the version goes on
    // at once while the fleet still "deploys" that slot, and the next run's
    // deploy to it would be refused as busy (HTTP 409).
    let settle = opts.deploy_duration + Duration::from_millis(500);
    let mut rows = Vec::new();
    for (name, strategy) in [
        ("blue-green switch back", DemoStrategy::BlueGreen),
        ("redeploy", DemoStrategy::Redeploy),
    ] {
        let times = rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let fleet = shipdeck::demo::spawn(l, opts.clone()).await.expect("fleet");
            let dir = tempfile::tempdir().expect("tempdir");
            let e = engine(fleet.addr, strategy, dir.path());
            let mut times = Vec::new();
            for _ in 0..runs {
                e.promote(
                    "production",
                    None,
                    Confirm::Unseen {
                        accept_warnings: true,
                    },
                    None,
                )
                .await
                .expect("promote");
                let t = Instant::now();
                e.rollback("production", None, None)
                    .await
                    .expect("rollback");
                times.push(t.elapsed());
                tokio::time::sleep(settle).await;
            }
            times
        });
        rows.push((name, summary(times)));
    }
    println!(
        "time to revert production, demo fleet (a deploy takes {deploy_s:.1} s there), {runs} runs each"
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10}   reference",
        "strategy", "median", "min", "max"
    );
    for (name, (med, min, max)) in &rows {
        let reference = if name.starts_with("blue") {
            "goal ≤ 1 s (usual practice 1–5 min)"
        } else {
            "a deploy's time (5–15 min for real services)"
        };
        println!(
            "{name:<24} {:>10} {:>10} {:>10}   {reference}",
            show(*med),
            show(*min),
            show(*max)
        );
    }
    let bg = rows[0].1.0;
    println!(
        "blue-green goal ≤ 1 s: {}",
        if bg <= Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        }
    );
}
