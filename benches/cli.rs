//! Whole-process wall time of the command line, next to its budget:
//! `shipdeck status` against the demo fleet (≤ 50 ms median) and
//! `shipdeck --help` (≤ 10 ms), and `status` again with a long history
//! (20,000 audit records). Run with `cargo bench --bench cli`.
//!
//! `-- --against PATH` times another build of shipdeck (an older commit's
//! `target/release/shipdeck`, copied aside) in the same run, each run of
//! one alternated with a run of the other, and prints both with their
//! ratio: on a shared machine only such a ratio means anything. `-- --bin
//! PATH` replaces the build under test (a wrapper script that runs it under
//! `valgrind --tool=callgrind`, say, to count instructions).

use std::process::Command;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Wall times of `runs` runs of each binary, alternated (after 3 warm-up
/// runs of each), sorted: one list per binary.
fn time(bins: &[String], runs: usize, cmd: impl Fn(&str) -> Command) -> Vec<Vec<Duration>> {
    let mut out = vec![Vec::with_capacity(runs); bins.len()];
    for i in 0..runs + 3 {
        // Each pair in turn order (ABBA…), so that going first or second
        // favours neither build.
        let mut order: Vec<_> = bins.iter().zip(&mut out).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for (bin, times) in order {
            let mut c = cmd(bin);
            let t = Instant::now();
            let o = c.output().expect("run shipdeck");
            let d = t.elapsed();
            assert!(
                o.status.success(),
                "{bin} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            if i >= 3 {
                times.push(d); // the first runs warm caches
            }
        }
    }
    for t in &mut out {
        t.sort();
    }
    out
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let runs: usize = arg("--runs").and_then(|n| n.parse().ok()).unwrap_or(40);
    let mut bins = vec![arg("--bin").unwrap_or_else(|| env!("CARGO_BIN_EXE_shipdeck").into())];
    bins.extend(arg("--against"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let fleet = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        shipdeck::demo::spawn(l, shipdeck::demo::FleetOptions::default())
            .await
            .expect("fleet")
    });
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join("shipdeck.toml");
    std::fs::write(&cfg, shipdeck::demo::demo_config(fleet.addr, true)).expect("config");
    let base = |bin: &str, args: &[&str]| {
        let mut c = Command::new(bin);
        c.current_dir(home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .args(args);
        c
    };
    let status = time(&bins, runs, |b| {
        base(b, &["--config", cfg.to_str().unwrap_or(""), "status"])
    });
    let help = time(&bins, runs, |b| base(b, &["--help"]));
    // The same fleet, with a store that has seen a long life.
    let seeded = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    seed(&seeded.path().join("data/shipdeck/shipdeck.db"), 20_000);
    eprintln!(
        "seeded 20,000 audit records in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let long = time(&bins, runs, |b| {
        let mut c = base(b, &["--config", cfg.to_str().unwrap_or(""), "status"]);
        c.env("XDG_DATA_HOME", seeded.path().join("data"));
        c
    });
    println!(
        "{:<28} {:>10} {:>10} {:>10}  verdict",
        "command", "median", "p90", "budget"
    );
    if bins.len() > 1 {
        println!("(first line of each: {}; second: {})", bins[0], bins[1]);
    }
    for (name, v, budget) in [
        ("shipdeck status (demo)", &status, Duration::from_millis(50)),
        ("shipdeck --help", &help, Duration::from_millis(10)),
        (
            "status (20,000 audit rows)",
            &long,
            Duration::from_millis(50),
        ),
    ] {
        let first = percentile(&v[0], 0.5);
        for (k, v) in v.iter().enumerate() {
            let med = percentile(v, 0.5);
            let ratio = match k {
                0 => String::new(),
                _ => format!(
                    "  (this build / the other: {:.2})",
                    first.as_secs_f64() / med.as_secs_f64()
                ),
            };
            println!(
                "{:<28} {:>8.1}ms {:>8.1}ms {:>8.1}ms  {}{ratio}",
                if k == 0 { name } else { "  the other build" },
                med.as_secs_f64() * 1e3,
                percentile(v, 0.9).as_secs_f64() * 1e3,
                budget.as_secs_f64() * 1e3,
                if med <= budget { "within" } else { "OVER" }
            );
        }
    }
    println!("({runs} runs each, after 3 warm-up runs)");
    drop(fleet);
}

/// A store with `n` audit records on the demo's environments (monitoring
/// windows that passed or failed, refused promotions), as a long-lived
/// team's would hold, written through the store so the hash chain holds.
fn seed(path: &std::path::Path, n: usize) {
    use shipdeck::domain::{ActionKind, Outcome, Version};
    use shipdeck::store::{NewAudit, SqliteStore, Store};
    let store = SqliteStore::open(path).expect("store");
    let envs = shipdeck::demo::ENVIRONMENTS;
    let start = chrono::Utc::now() - chrono::Duration::days(400);
    for i in 0..n / 2 {
        let at = start + chrono::Duration::minutes(i as i64 * 20);
        let version: Version = format!("v0.{}.{}", i / 100, i % 100)
            .parse()
            .expect("version");
        let monitor = i % 2 == 0;
        let id = store
            .audit_start(&NewAudit {
                at,
                actor: "bench",
                action: if monitor {
                    ActionKind::Monitor
                } else {
                    ActionKind::Promote
                },
                env: envs[i % envs.len()],
                version: Some(&version),
                from_version: None,
                outcome: Outcome::Started,
                detail: "seeded",
            })
            .expect("audit");
        let outcome = match (monitor, i % 7) {
            (true, 0) => Outcome::Failed,
            (true, _) => Outcome::Succeeded,
            (false, _) => Outcome::Refused,
        };
        store
            .audit_finish(id, at + chrono::Duration::minutes(2), outcome, "seeded")
            .expect("audit");
    }
}
