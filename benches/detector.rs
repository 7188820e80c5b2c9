//! Detector benchmark: generates a labelled corpus from a seed, runs
//! shipdeck's detector and the peer judges over it, and prints one table,
//! plus the time to replay a 1-hour trace against its 5 ms budget.
//!
//! `cargo bench --bench detector [-- --seed N --traces N]`
//!
//! The default seed was never used for tuning (tuning used seed 1).

use std::time::Instant;

use shipdeck::monitor::eval::corpus::{self, Kind, Truth};
use shipdeck::monitor::eval::judges::{Argo, Flagger, Judge, Kayenta, Shipdeck};
use shipdeck::monitor::eval::score;
use shipdeck::monitor::{DetectorConfig, replay};

const DEFAULT_SEED: u64 = 20_261_124;
const DEFAULT_TRACES: usize = 600;

fn main() {
    let mut seed = DEFAULT_SEED;
    let mut n = DEFAULT_TRACES;
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            "--traces" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            "--verbose" => verbose = true,
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    let traces = corpus::corpus(seed, n);
    let healthy = traces.iter().filter(|t| t.truth == Truth::Healthy).count();
    println!(
        "corpus: seed {seed}, {n} traces ({healthy} healthy, {} regressions), 10 s steps, 30 min baseline + 30 min window",
        n - healthy
    );
    println!();
    let judges: Vec<Box<dyn Judge>> = vec![
        Box::new(Shipdeck(DetectorConfig::default())),
        Box::new(Flagger::default()),
        Box::new(Argo::default()),
        Box::new(Kayenta::default()),
    ];
    println!(
        "{:<14} | {:>22} | {:>19} | {:>12} | {:>10}",
        "judge", "false alarms (healthy)", "regressions caught", "median delay", "p90 delay"
    );
    println!("{}", "-".repeat(14 + 22 + 19 + 12 + 10 + 12));
    let fmt_d = |d: Option<f64>| d.map(|d| format!("{d:.0} s")).unwrap_or_else(|| "-".into());
    for j in &judges {
        let s = score(j.as_ref(), &traces);
        println!(
            "{:<14} | {:>5.1}% ({:>3} of {:>3}) | {:>5.1}% ({:>3}/{:>3}) | {:>12} | {:>10}",
            j.name(),
            100.0 * s.false_alarm_rate(),
            s.false_alarms,
            s.healthy,
            100.0 * s.catch_rate(),
            s.caught,
            s.regressions,
            fmt_d(s.delay_quantile(0.5)),
            fmt_d(s.delay_quantile(0.9)),
        );
        if verbose && j.name() == "shipdeck" {
            for tr in &traces {
                let got = j.judge(&tr.samples);
                let wrong = match tr.truth {
                    Truth::Healthy => got.is_some(),
                    Truth::Regression { t0 } => got.is_none_or(|t| t <= t0),
                };
                let slow = match (tr.truth, got) {
                    (Truth::Regression { t0 }, Some(t)) => t - t0 > 120.0,
                    _ => false,
                };
                if wrong || slow {
                    let r = replay(&tr.samples, DetectorConfig::default());
                    println!(
                        "    {:<30} rps {:>7.1} truth {:?} -> {:?}: {}",
                        tr.kind.name(),
                        tr.rps,
                        tr.truth,
                        got,
                        r.reason
                    );
                }
            }
        }
    }
    if verbose {
        println!();
        for kind in Kind::REGRESSIONS {
            let sub: Vec<_> = traces
                .iter()
                .filter(|t| t.kind == Kind::Regression(kind))
                .cloned()
                .collect();
            let s = score(&Shipdeck(DetectorConfig::default()), &sub);
            println!(
                "    shipdeck {:<30} caught {:>3}/{:>3} median {:?} p90 {:?}",
                Kind::Regression(kind).name(),
                s.caught,
                s.regressions,
                s.delay_quantile(0.5),
                s.delay_quantile(0.9)
            );
        }
    }

    // Replay time of a 1-hour trace (360 rows): median over many runs.
    let one_hour = &traces
        .iter()
        .find(|t| t.truth == Truth::Healthy)
        .expect("the corpus has healthy traces")
        .samples;
    let mut times = Vec::with_capacity(501);
    for _ in 0..501 {
        let start = Instant::now();
        let r = replay(std::hint::black_box(one_hour), DetectorConfig::default());
        std::hint::black_box(r);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!();
    println!(
        "replay of a 1-hour trace ({} rows): median {:.3} ms over {} runs (budget 5 ms)",
        one_hour.len(),
        times[times.len() / 2],
        times.len()
    );
}
