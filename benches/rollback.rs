//! Time to revert against the demo fleet, blue-green switch-back vs
//! redeploy: from calling the engine's rollback to production reporting
//! the previous version again (the engine returns only then). Goal for
//! blue-green: ≤ 1 s (SPEC §2: 1–5 min in the usual practice). And the
//! canary's stop: from the engine's regression verdict on the bad v1.8.0
//! (its event) to the fleet answering weight 0; reference ≤ 1 step of the
//! metrics source + 100 ms (issue 7), of which the 100 ms is the engine's.
//! Run with `cargo bench --bench rollback [-- --runs N]`.

use std::time::{Duration, Instant};

use shipdeck::config::Config;
use shipdeck::demo::{DemoStrategy, FleetOptions};
use shipdeck::engine::{Confirm, Engine, Event};
use shipdeck::monitor::VerdictKind;

fn engine(
    addr: std::net::SocketAddr,
    strategy: DemoStrategy,
    auto_rollback: bool,
    dir: &std::path::Path,
) -> Engine {
    // The demo's config without production's gates and window: only the
    // deploys and rollbacks are timed here.
    let text = shipdeck::demo::demo_config_with(addr, auto_rollback, None, strategy).replace(
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
            let e = engine(fleet.addr, strategy, false, dir.path());
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
    // The canary: a fresh fleet and store per run (a caught release is
    // not promoted again).
    let mut stops = Vec::new();
    for _ in 0..runs {
        match rt.block_on(canary_stop(&opts)) {
            Ok(d) => stops.push(d),
            Err(why) => println!("canary run: {why}"),
        }
    }
    if stops.is_empty() {
        println!("canary verdict → weight 0: no run caught the bad release");
    } else {
        let n = stops.len();
        let (med, min, max) = summary(stops);
        println!(
            "{:<24} {:>10} {:>10} {:>10}   reference ≤ 1 metrics step ({}) + 100 ms; {n} runs",
            "canary verdict → w 0",
            show(med),
            show(min),
            show(max),
            shipdeck::demo::config::DEMO_STEP
        );
        println!(
            "canary engine share ≤ 100 ms: {}",
            if med <= Duration::from_millis(100) {
                "met"
            } else {
                "MISSED"
            }
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

/// Promote the bad v1.8.0 through production's canary (auto-rollback on)
/// and time from the regression verdict's event to the fleet answering
/// weight 0.
async fn canary_stop(opts: &FleetOptions) -> Result<Duration, String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let fleet = shipdeck::demo::spawn(l, opts.clone())
        .await
        .map_err(|e| format!("fleet: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let e = engine(fleet.addr, DemoStrategy::Canary, true, dir.path());
    let url = format!("http://{}/envs/production/canary/weight", fleet.addr);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn(async move {
        let client = reqwest::Client::new();
        while let Some(ev) = rx.recv().await {
            let Event::CanaryStep { verdict, .. } = ev else {
                continue;
            };
            if verdict.kind != VerdictKind::Regression {
                continue;
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(30) {
                let w = match client.get(&url).send().await {
                    Ok(r) => r.json::<serde_json::Value>().await.ok(),
                    Err(_) => None,
                };
                if w.as_ref().and_then(|w| w["weight"].as_u64()) == Some(0) {
                    return Ok(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            return Err("the weight stayed above 0 for 30 s after the verdict".to_string());
        }
        Err("the canary was never judged a regression".to_string())
    });
    let promoted = e
        .promote(
            "production",
            None,
            Confirm::Unseen {
                accept_warnings: true,
            },
            Some(tx),
        )
        .await;
    let took = watch.await.map_err(|e| format!("watcher: {e}"))?;
    match (promoted, took) {
        (Ok(rec), _) => Err(format!("the canary of {} passed", rec.version)),
        (Err(_), took) => took,
    }
}
