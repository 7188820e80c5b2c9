//! Detector benchmark: generates labelled corpora from seeds, resamples them
//! to 60 s and 300 s steps, runs shipdeck's detector and the peer judges
//! side by side, and prints one table per step size and seed set (under
//! each, an information bound on the delay: how soon one-look tests could
//! show each regression at all), the targets, what an oracle could show at
//! all for the two slow error kinds,
//! a sharp-regression check at 300 s steps, the time to replay a 1-hour
//! trace against its 5 ms budget, and replay time at 1k / 10k / 40k rows
//! (linear scaling: the time per row stays flat).
//!
//! `cargo bench --bench detector [-- --traces N --verbose --tuning --step S]`
//! (`--verbose` also lists the tuning seeds' sharp regressions at 300 s
//! steps not called by the second bad step, see `sharp_late_line`).
//! `cargo bench --bench detector -- --replay-only` prints only the replay times.
//! `cargo bench --bench detector -- --sharp-only` prints only the tuning
//! seeds' sharp regressions at 300 s steps, with the late ones listed.
//! `cargo bench --bench detector -- --held-back` lists the tuning-seed
//! traces caught at 50 s at 10 s steps and what holds each back.
//! `cargo bench --bench detector -- --late` lists every tuning-seed bad
//! trace called after 40 s or missed at 10 s steps, against the bound.
//! `cargo bench --bench detector -- --stress [--tuning --step S --verbose]`
//! prints only the held-out stress set of healthy shapes the corpus never
//! shows (`eval::stress`): false alarms per kind for shipdeck and each peer
//! (the full run prints it last).
//! `SHIPDECK_BENCH_QUICK=1` runs a smaller corpus (a quick look, not figures).
//!
//! Seeds: the TUNING seeds were looked at while the detector was tuned; the
//! REPORTING seeds never were, and only they are the figures to quote.

use std::time::Instant;

use shipdeck::monitor::eval::corpus::{self, Kind, LabeledTrace, Shape, Truth};
use shipdeck::monitor::eval::judges::{Argo, Flagger, Judge, Kayenta, Shipdeck};
use shipdeck::monitor::eval::rng::Rng;
use shipdeck::monitor::eval::stress::{self, StressKind};
use shipdeck::monitor::eval::{Score, score};
use shipdeck::monitor::stats::ln_gamma;
use shipdeck::monitor::{DetectorConfig, replay};

/// Seeds used while tuning (1 and the earlier default were tuned on before).
const TUNING: [u64; 3] = [1, 2, 20_261_124];
/// Seeds never looked at while tuning: the reported figures.
const REPORTING: [u64; 3] = [9_001_337, 42_424_242, 77_000_777];
const DEFAULT_TRACES: usize = 400;
/// Seeds of the held-out stress set (`eval::stress`), apart from the
/// corpus's: fixes are decided on the tuning ones only.
const STRESS_TUNING: [u64; 2] = [31, 32];
const STRESS_REPORTING: [u64; 2] = [9_100_001, 9_100_002];
/// Stress traces per kind and seed.
const STRESS_PER_KIND: usize = 60;

fn main() {
    let quick = std::env::var_os("SHIPDECK_BENCH_QUICK").is_some();
    let mut n = if quick { 120 } else { DEFAULT_TRACES };
    let mut verbose = false;
    let mut only_tuning = false;
    let mut only_step: Option<f64> = None;
    let mut only_stress = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--traces" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            "--verbose" => verbose = true,
            "--tuning" => only_tuning = true,
            "--stress" => only_stress = true,
            "--step" => only_step = args.next().and_then(|v| v.parse().ok()),
            "--held-back" => {
                held_back();
                return;
            }
            "--late" => {
                late();
                return;
            }
            "--sharp-only" => {
                sharp_at_coarse_steps("tuning", &TUNING, 60, true);
                return;
            }
            "--replay-only" => {
                replay_time();
                replay_scaling();
                return;
            }
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    let stress_per_kind = if quick { 20 } else { STRESS_PER_KIND };
    if only_stress {
        stress_tables(stress_per_kind, only_tuning, only_step, verbose);
        return;
    }
    println!(
        "tuning seeds (looked at while tuning): {TUNING:?}; reporting seeds (never looked at): {REPORTING:?}"
    );
    println!(
        "{n} traces per seed: half healthy ({} kinds, incl. traffic dips of 40-70% for 3-15 min), half regressions ({} kinds, incl. slow creep x3/30 min, low-traffic x3 and a x1.5-2 latency bump for the first 10-15 min); 30 min baseline + 30 min window{}",
        Kind::HEALTHY.len(),
        Kind::REGRESSIONS.len(),
        if quick { " [QUICK MODE]" } else { "" }
    );
    let sets: Vec<(&str, &[u64])> = if only_tuning {
        vec![("tuning", &TUNING)]
    } else {
        vec![("tuning", &TUNING), ("reporting", &REPORTING)]
    };
    let base: Vec<(&str, Vec<LabeledTrace>)> = sets
        .iter()
        .map(|(name, seeds)| {
            let traces = seeds
                .iter()
                .flat_map(|&seed| corpus::corpus(seed, n))
                .collect();
            (*name, traces)
        })
        .collect();
    let mut verdicts = Vec::new();
    for (factor, step) in [(1usize, 10.0), (6, 60.0), (30, 300.0)] {
        if only_step.is_some_and(|s| s != step) {
            continue;
        }
        for (set, traces) in &base {
            let traces: Vec<LabeledTrace> = traces
                .iter()
                .map(|t| corpus::resample_trace(t, factor))
                .collect();
            verdicts.push(table(set, step, &traces, verbose));
        }
    }
    println!();
    println!("targets (reporting seeds):");
    for (set, step, ok, line) in &verdicts {
        if *set == "reporting" || only_tuning {
            println!(
                "  {:>4} s steps, {set}: {} {line}",
                step,
                if *ok { "MET " } else { "MISSED" }
            );
        }
    }
    for (set, traces) in &base {
        oracle_bound(set, traces);
    }
    let per_kind = if quick { 20 } else { 60 };
    sharp_at_coarse_steps("tuning", &TUNING, per_kind, verbose);
    if !only_tuning {
        sharp_at_coarse_steps("reporting", &REPORTING[..1], per_kind, false);
    }
    replay_time();
    replay_scaling();
    stress_tables(stress_per_kind, only_tuning, only_step, verbose);
}

/// The held-out stress set: healthy shapes the corpus never shows, one
/// table per step size and seed set, false alarms per kind for shipdeck
/// and each peer judge (an alarm on any of them is a false one).
fn stress_tables(per_kind: usize, only_tuning: bool, only_step: Option<f64>, verbose: bool) {
    println!();
    println!(
        "held-out stress set (healthy shapes the corpus never shows; tuning seeds {STRESS_TUNING:?}, reporting seeds {STRESS_REPORTING:?}, {per_kind} traces per kind and seed):"
    );
    for kind in StressKind::ALL {
        println!("  {:<18} {}", kind.name(), kind.rationale());
    }
    let judges: Vec<Box<dyn Judge>> = vec![
        Box::new(Shipdeck(DetectorConfig::default())),
        Box::new(Flagger::default()),
        Box::new(Argo::default()),
        Box::new(Kayenta::default()),
    ];
    let mut sets: Vec<(&str, &[u64])> = vec![("tuning", &STRESS_TUNING)];
    if !only_tuning {
        sets.push(("reporting", &STRESS_REPORTING));
    }
    for (factor, step) in [(1usize, 10.0), (6, 60.0), (30, 300.0)] {
        if only_step.is_some_and(|s| s != step) {
            continue;
        }
        for (set, seeds) in &sets {
            let traces: Vec<stress::StressTrace> = seeds
                .iter()
                .flat_map(|&seed| stress::stress_set(seed, per_kind, factor))
                .collect();
            println!();
            println!(
                "== stress, {step:.0} s steps, {set} seeds: false alarms per healthy kind ({} traces each)",
                per_kind * seeds.len()
            );
            print!("{:<18}", "kind");
            for j in &judges {
                print!(" | {:>14}", j.name());
            }
            println!();
            println!("{}", "-".repeat(18 + 17 * judges.len()));
            let mut totals = vec![0usize; judges.len()];
            let mut lines = Vec::new();
            for kind in StressKind::ALL {
                let sub: Vec<&stress::StressTrace> =
                    traces.iter().filter(|t| t.kind == kind).collect();
                print!("{:<18}", kind.name());
                for (j, total) in judges.iter().zip(totals.iter_mut()) {
                    let fa = sub.iter().filter(|t| j.judge(&t.samples).is_some()).count();
                    *total += fa;
                    let pct = 100.0 * fa as f64 / sub.len().max(1) as f64;
                    let flag = if j.name() == "shipdeck" && pct > 2.0 {
                        "!"
                    } else {
                        " "
                    };
                    print!(" | {pct:>5.1}% ({fa:>3}){flag}");
                }
                println!();
                if verbose {
                    for t in &sub {
                        let r = replay(&t.samples, DetectorConfig::default());
                        if r.is_regression() {
                            lines.push(format!(
                                "    {:<18} rps {:>7.1} at {:?}: {}",
                                kind.name(),
                                t.rps,
                                r.detected_at,
                                r.reason
                            ));
                        }
                    }
                }
            }
            print!("{:<18}", "all");
            for total in &totals {
                let pct = 100.0 * *total as f64 / traces.len().max(1) as f64;
                print!(" | {pct:>5.1}% ({total:>3}) ");
            }
            println!();
            println!("  (! marks a shipdeck false-alarm rate above the 2% goal)");
            for l in lines {
                println!("{l}");
            }
        }
    }
}

/// What the counts allow at all for the two slow error kinds: an oracle
/// that knows the change began at the deploy and tests the whole window at
/// once against the whole baseline (exact conditional binomial test of the
/// error counts, pure Poisson: no overdispersion, no sequential looks). A
/// detector with a few percent of false alarms cannot be expected to catch
/// what this oracle cannot show at p < 0.01. Of the traces shipdeck (10 s
/// steps) misses, how many the oracle shows at p < 0.01: the room left.
fn oracle_bound(set: &str, traces: &[LabeledTrace]) {
    use corpus::RegressionKind::{LowTrafficRise, SlowCreep};
    println!();
    let ship = Shipdeck(DetectorConfig::default());
    for kind in [SlowCreep, LowTrafficRise] {
        let (mut n, mut p01, mut p001) = (0, 0, 0);
        let (mut missed, mut missed_p01) = (0, 0);
        for tr in traces.iter().filter(|t| t.kind == Kind::Regression(kind)) {
            let (mut eb, mut nb, mut ew, mut nw) = (0.0, 0.0, 0.0, 0.0);
            for s in tr.samples.iter().filter(|s| s.requests.is_finite()) {
                if s.t <= 0.0 {
                    (eb, nb) = (eb + s.errors, nb + s.requests);
                } else {
                    (ew, nw) = (ew + s.errors, nw + s.requests);
                }
            }
            let ln_p = ln_binom_sf((eb + ew) as u64, ew as u64, nw / (nb + nw));
            n += 1;
            p01 += usize::from(ln_p < 0.01f64.ln());
            p001 += usize::from(ln_p < 0.001f64.ln());
            if ship.judge(&tr.samples).is_none() {
                missed += 1;
                missed_p01 += usize::from(ln_p < 0.01f64.ln());
            }
        }
        println!(
            "oracle bound, {set} seeds, {}: whole window vs baseline at once shows p < 0.01 on {p01} of {n}, p < 0.001 on {p001}; of shipdeck's {missed} misses (10 s steps) it shows {missed_p01} at p < 0.01",
            Kind::Regression(kind).name()
        );
    }
}

/// The information bound on delay: for each bad trace, the earliest time
/// `t` at which a single one-look test of the window so far (from the
/// change's true start `t0` to `t`) against the whole baseline rejects at
/// p < 0.01 — the bench's oracle test for errors (exact conditional
/// binomial, pure Poisson) plus, for the other signals, the same kind of
/// test: requests (conditional binomial on the counts, lower tail: a
/// collapse) and each latency quantile (z test of the window's mean log
/// quantile against the baseline's, with the baseline steps' sd taken as
/// known). It is optimistic on purpose, so that no detector holding its
/// false alarms can be faster: it knows when the change began, it looks at
/// every step and at five tests without paying for the many looks, it
/// counts errors as pure Poisson (no overdispersion, no slow wander) and
/// treats autocorrelated steps as independent. A second, tighter line
/// divides the counts by the baseline steps' dispersion (quasi-Poisson),
/// still free of looks and wander. The same tests on the healthy traces
/// show how far from a usable detector they are. (Calibrating the score
/// per look on the healthy traces instead is no bound: the detector,
/// which tells benign shifts apart, catches more than such a test.)
/// It prints, over all bad traces, its caught share, median and p90 next
/// to shipdeck's, per kind for the two slow error kinds, and what share of
/// all bad traces it could show by 40 s and by 300 s against what the
/// targets need (caught >= 97% with half by 40 s and 90% by 300 s needs
/// at least 48.5% and 87.3% of all bad traces by then).
fn information_bound(
    step: f64,
    traces: &[LabeledTrace],
    ship: &Score,
    ship_on: impl Fn(&[LabeledTrace]) -> Score,
) {
    for quasi in [false, true] {
        bound_lines(step, traces, ship, &ship_on, quasi);
    }
}

/// One bound's lines: pure Poisson, or quasi-Poisson (`quasi`).
fn bound_lines(
    step: f64,
    traces: &[LabeledTrace],
    ship: &Score,
    ship_on: &impl Fn(&[LabeledTrace]) -> Score,
    quasi: bool,
) {
    use corpus::RegressionKind::{LowTrafficRise, SlowCreep};
    let name = if quasi {
        "information bound, quasi-Poisson (counts' variance x the baseline's dispersion, p < 0.01)"
    } else {
        "information bound, pure Poisson (the oracle test, p < 0.01)"
    };
    let first = |samples: &[shipdeck::monitor::Sample], t0: f64| bound_time(samples, t0, quasi);
    let bound_score = |sub: &[LabeledTrace]| {
        let mut s = Score::default();
        for tr in sub {
            match tr.truth {
                Truth::Healthy => {
                    s.healthy += 1;
                    s.false_alarms += usize::from(first(&tr.samples, 0.0).is_some());
                }
                Truth::Regression { t0 } => {
                    s.regressions += 1;
                    if let Some(t) = first(&tr.samples, t0) {
                        s.caught += 1;
                        s.delays.push(t - t0);
                    }
                }
            }
        }
        s.delays.sort_by(f64::total_cmp);
        s
    };
    let b = bound_score(traces);
    let share = |s: &Score, by: f64| {
        100.0 * s.delays.iter().filter(|&&d| d <= by).count() as f64 / s.regressions.max(1) as f64
    };
    // What the 10 s targets need of all bad traces: caught >= 97% with
    // half of the catches by 40 s and 90% by 300 s.
    let targets = if step <= 10.0 {
        let by300 = share(&b, 300.0);
        format!(
            " | share of all bad traces shown by 40 s: bound {:.1}%, shipdeck {:.1}% (the targets need >= 48.5%); by 300 s: bound {by300:.1}%, shipdeck {:.1}% (the targets need >= 87.3%: {})",
            share(&b, 40.0),
            share(ship, 40.0),
            share(ship, 300.0),
            if by300 >= 87.3 {
                "within this bound"
            } else {
                "UNATTAINABLE on this corpus"
            },
        )
    } else {
        String::new()
    };
    println!(
        "  {name}: caught {:.1}% ({}/{}), median {}, p90 {} | shipdeck caught {:.1}%, median {}, p90 {}{targets} | the same tests fire on {:.1}% of healthy traces",
        100.0 * b.catch_rate(),
        b.caught,
        b.regressions,
        fmt_d(b.delay_quantile(0.5)),
        fmt_d(b.delay_quantile(0.9)),
        100.0 * ship.catch_rate(),
        fmt_d(ship.delay_quantile(0.5)),
        fmt_d(ship.delay_quantile(0.9)),
        100.0 * b.false_alarm_rate(),
    );
    let mut cells = Vec::new();
    for kind in [SlowCreep, LowTrafficRise] {
        let sub: Vec<LabeledTrace> = traces
            .iter()
            .filter(|t| t.kind == Kind::Regression(kind))
            .cloned()
            .collect();
        let (b, s) = (bound_score(&sub), ship_on(&sub));
        cells.push(format!(
            "{}: bound {}/{} med {} p90 {} by 300 s {}, shipdeck {}/{} med {} p90 {}",
            Kind::Regression(kind)
                .name()
                .trim_start_matches("regression/"),
            b.caught,
            b.regressions,
            fmt_d(b.delay_quantile(0.5)),
            fmt_d(b.delay_quantile(0.9)),
            b.delays.iter().filter(|&&d| d <= 300.0).count(),
            s.caught,
            s.regressions,
            fmt_d(s.delay_quantile(0.5)),
            fmt_d(s.delay_quantile(0.9)),
        ));
    }
    println!("    slow kinds at {step:.0} s steps: {}", cells.join("; "));
}

/// The earliest row time at which one of the bound's one-look tests of
/// the rows after `t0` against the baseline (rows at `t <= 0`) rejects at
/// p < 0.01, or `None` when none ever does.
fn bound_time(samples: &[shipdeck::monitor::Sample], t0: f64, quasi: bool) -> Option<f64> {
    bound_scores(samples, t0, quasi)
        .into_iter()
        .find(|&(_, score)| score > -0.01f64.ln())
        .map(|(t, _)| t)
}

/// For each row after `t0` (a look): its time and the bound's score there,
/// `-ln p` of the most significant of its one-look tests of the rows from
/// `t0` to it against the baseline (rows at `t <= 0`).
fn bound_scores(samples: &[shipdeck::monitor::Sample], t0: f64, quasi: bool) -> Vec<(f64, f64)> {
    let mut scores = Vec::new();
    let has = |s: &&shipdeck::monitor::Sample| s.requests.is_finite() && s.errors.is_finite();
    let quantiles = |s: &shipdeck::monitor::Sample| [s.p50_ms, s.p95_ms, s.p99_ms];
    let (mut eb, mut nb, mut rows_b) = (0.0, 0.0, 0.0f64);
    let mut lat_b: [Vec<f64>; 3] = Default::default();
    for s in samples.iter().filter(|s| s.t <= 0.0).filter(has) {
        (eb, nb, rows_b) = (eb + s.errors.round(), nb + s.requests.round(), rows_b + 1.0);
        for (v, q) in lat_b.iter_mut().zip(quantiles(s)) {
            if let Some(q) = q.filter(|q| q.is_finite() && *q > 0.0) {
                v.push(q.ln());
            }
        }
    }
    // Quasi-Poisson: the baseline steps' dispersion around their pooled
    // rate (Pearson), at least 1; the counts are divided by it, which is
    // the exact test with the variance that dispersion gives.
    let (rate_e, rate_n) = (eb / nb.max(1.0), nb / rows_b.max(1.0));
    let (mut chi_e, mut chi_n) = (0.0, 0.0);
    for s in samples.iter().filter(|s| s.t <= 0.0).filter(has) {
        let mu = s.requests.round() * rate_e;
        if mu > 0.0 {
            chi_e += (s.errors.round() - mu).powi(2) / mu;
        }
        if rate_n > 0.0 {
            chi_n += (s.requests.round() - rate_n).powi(2) / rate_n;
        }
    }
    let (phi_e, phi_n) = if quasi {
        let dof = (rows_b - 1.0).max(1.0);
        ((chi_e / dof).max(1.0), (chi_n / dof).max(1.0))
    } else {
        (1.0, 1.0)
    };
    let lat_stats = lat_b.map(|v| {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n.max(1.0);
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        (n, m, sd)
    });
    let (mut ew, mut nw, mut rows_w) = (0.0, 0.0, 0.0);
    let mut lat_w = [(0.0f64, 0.0f64); 3];
    for s in samples.iter().filter(|s| s.t > t0).filter(has) {
        (ew, nw, rows_w) = (ew + s.errors.round(), nw + s.requests.round(), rows_w + 1.0);
        for (w, q) in lat_w.iter_mut().zip(quantiles(s)) {
            if let Some(q) = q.filter(|q| q.is_finite() && *q > 0.0) {
                *w = (w.0 + q.ln(), w.1 + 1.0);
            }
        }
        let total = nb + nw;
        let mut ln_p: f64 = 0.0;
        if ew > 0.0 && nb > 0.0 {
            ln_p = ln_p.min(ln_binom_sf(
                ((eb + ew) / phi_e).round() as u64,
                (ew / phi_e).round() as u64,
                nw / total,
            ));
        }
        // Requests: fewer in the window than its share of the rows says.
        let p = rows_w / (rows_b + rows_w);
        if rows_b > 0.0 && total > 0.0 {
            ln_p = ln_p.min(ln_binom_sf(
                (total / phi_n).round() as u64,
                ((total - nw) / phi_n).round() as u64,
                1.0 - p,
            ));
        }
        for (&(sum, n), &(nb, mb, sd)) in lat_w.iter().zip(&lat_stats) {
            if n > 0.0 && nb >= 5.0 && sd > 0.0 {
                ln_p = ln_p.min(ln_norm_sf(
                    (sum / n - mb) / (sd * (1.0 / n + 1.0 / nb).sqrt()),
                ));
            }
        }
        scores.push((s.t, -ln_p));
    }
    scores
}

/// ln P(Z > z) for a standard normal Z.
fn ln_norm_sf(z: f64) -> f64 {
    if z < 5.0 {
        // Abramowitz & Stegun 7.1.26 for erfc (absolute error 1.5e-7,
        // ample above p = 1e-6).
        let x = z.abs() / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * x);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let erfc = poly * (-x * x).exp();
        let sf = if z >= 0.0 {
            0.5 * erfc
        } else {
            1.0 - 0.5 * erfc
        };
        sf.max(1e-300).ln()
    } else {
        // Mills' ratio: ln(phi(z) / z).
        -0.5 * z * z - (2.0 * std::f64::consts::PI).sqrt().ln() - z.ln()
    }
}

/// ln P(X >= k) for X ~ Binomial(n, p), in logs (the bound's tails go
/// far below what `stats::binomial_sf` returns as a plain number).
fn ln_binom_sf(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 || n == 0 || p >= 1.0 {
        return 0.0;
    }
    if k > n || p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    // At or below the mean the tail holds at least about half the mass:
    // nothing to reject there, and summing it would be long.
    if (k as f64) <= n as f64 * p {
        return 0.0;
    }
    // Above the mean the terms fall from the first on: sum until they are
    // negligible (e^-40 of the first), with ln Γ for the factorials.
    let ln_term = |j: u64| {
        ln_gamma(n as f64 + 1.0) - ln_gamma(j as f64 + 1.0) - ln_gamma((n - j) as f64 + 1.0)
            + j as f64 * p.ln()
            + (n - j) as f64 * (1.0 - p).ln()
    };
    let first = ln_term(k);
    let mut sum = 1.0;
    for j in k + 1..=n {
        let r = ln_term(j) - first;
        if r < -40.0 {
            break;
        }
        sum += r.exp();
    }
    first + sum.ln()
}

fn fmt_d(d: Option<f64>) -> String {
    d.map(|d| format!("{d:.0} s")).unwrap_or_else(|| "-".into())
}

/// One table: every judge on `traces`; returns whether shipdeck met the
/// targets and a line saying how.
fn table(
    set: &str,
    step: f64,
    traces: &[LabeledTrace],
    verbose: bool,
) -> (String, f64, bool, String) {
    let healthy = traces.iter().filter(|t| t.truth == Truth::Healthy).count();
    println!();
    println!(
        "== {step:.0} s steps, {set} seeds: {} traces ({healthy} healthy, {} regressions)",
        traces.len(),
        traces.len() - healthy
    );
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
    let mut scores: Vec<(String, Score)> = Vec::new();
    for j in &judges {
        let s = score(j.as_ref(), traces);
        println!(
            "{:<14} | {:>5.1}% ({:>3} of {:>4}) | {:>5.1}% ({:>4}/{:>4}) | {:>12} | {:>10}",
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
        scores.push((j.name().to_string(), s));
    }
    // Per kind, shipdeck only.
    let ship = &judges[0];
    let mut kinds: Vec<String> = Vec::new();
    for kind in Kind::REGRESSIONS.map(Kind::Regression) {
        let sub: Vec<LabeledTrace> = traces.iter().filter(|t| t.kind == kind).cloned().collect();
        let s = score(ship.as_ref(), &sub);
        kinds.push(format!(
            "{} {}/{} med {} p90 {}",
            kind.name().trim_start_matches("regression/"),
            s.caught,
            s.regressions,
            fmt_d(s.delay_quantile(0.5)),
            fmt_d(s.delay_quantile(0.9))
        ));
    }
    let mut fa: Vec<String> = Vec::new();
    for kind in Kind::HEALTHY.map(Kind::Healthy) {
        let sub: Vec<LabeledTrace> = traces.iter().filter(|t| t.kind == kind).cloned().collect();
        let s = score(ship.as_ref(), &sub);
        if s.false_alarms > 0 {
            fa.push(format!(
                "{} {}/{}",
                kind.name().trim_start_matches("healthy/"),
                s.false_alarms,
                s.healthy
            ));
        }
    }
    println!("  shipdeck per bad kind: {}", kinds.join("; "));
    information_bound(step, traces, &score(ship.as_ref(), traces), |sub| {
        score(ship.as_ref(), sub)
    });
    // How near the median is to the next step down: catches by 4 steps
    // (40 s at 10 s steps), against the half of all catches it needs.
    let s = &scores[0].1;
    let by4 = s.delays.iter().filter(|&&d| d <= 4.0 * step).count();
    println!(
        "  shipdeck catches by {:.0} s: {by4} of {} (a median there needs {})",
        4.0 * step,
        s.caught,
        s.caught.div_ceil(2)
    );
    println!(
        "  shipdeck false alarms by healthy kind: {}",
        if fa.is_empty() {
            "none".to_string()
        } else {
            fa.join("; ")
        }
    );
    if verbose {
        for tr in traces {
            let got = ship.judge(&tr.samples);
            let wrong = match tr.truth {
                Truth::Healthy => got.is_some(),
                Truth::Regression { t0 } => got.is_none_or(|t| t <= t0),
            };
            let slow = match (tr.truth, got) {
                (Truth::Regression { t0 }, Some(t)) => t - t0 > 300.0,
                _ => false,
            };
            if wrong || slow {
                let r = replay(&tr.samples, DetectorConfig::default());
                println!(
                    "    {:<28} rps {:>7.1} truth {:?} -> {:?}: {}",
                    tr.kind.name(),
                    tr.rps,
                    tr.truth,
                    got,
                    r.reason
                );
            }
        }
    }
    let s = &scores[0].1;
    let (ok, line) = if step <= 10.0 {
        let ok = s.false_alarm_rate() <= 0.02
            && s.catch_rate() >= 0.97
            && s.delay_quantile(0.5).unwrap_or(f64::MAX) <= 40.0
            && s.delay_quantile(0.9).unwrap_or(f64::MAX) <= 300.0;
        (
            ok,
            format!(
                "FA {:.1}% (<= 2%), caught {:.1}% (>= 97%), median {} (<= 40 s), p90 {} (<= 300 s)",
                100.0 * s.false_alarm_rate(),
                100.0 * s.catch_rate(),
                fmt_d(s.delay_quantile(0.5)),
                fmt_d(s.delay_quantile(0.9))
            ),
        )
    } else {
        // Against every peer: the best-catching one decides the target;
        // the others are listed so that a peer with many false alarms
        // does not hide the comparison with one within the goal.
        let best = scores[1..]
            .iter()
            .max_by(|a, b| a.1.catch_rate().total_cmp(&b.1.catch_rate()))
            .expect("peers");
        let med = s.delay_quantile(0.5).unwrap_or(f64::MAX);
        let ok = s.false_alarm_rate() <= 0.02
            && s.catch_rate() >= best.1.catch_rate()
            && med <= best.1.delay_quantile(0.5).unwrap_or(f64::MAX);
        let peers: Vec<String> = scores[1..]
            .iter()
            .map(|(name, p)| {
                format!(
                    "{name} (FA {:.1}%): caught {:.1}% {} , median {} {}",
                    100.0 * p.false_alarm_rate(),
                    100.0 * p.catch_rate(),
                    if s.catch_rate() >= p.catch_rate() {
                        "<= ours"
                    } else {
                        "> ours"
                    },
                    fmt_d(p.delay_quantile(0.5)),
                    if med <= p.delay_quantile(0.5).unwrap_or(f64::MAX) {
                        ">= ours"
                    } else {
                        "< ours"
                    }
                )
            })
            .collect();
        (
            ok,
            format!(
                "FA {:.1}% (<= 2%), caught {:.1}%, median {}; vs {}",
                100.0 * s.false_alarm_rate(),
                100.0 * s.catch_rate(),
                fmt_d(s.delay_quantile(0.5)),
                peers.join("; ")
            ),
        )
    };
    (set.to_string(), step, ok, line)
}

/// At 300 s steps, a sharp regression (errors x10, or latency x2): at
/// which bad step it is called, errors and latency counted apart (a
/// latency call there needs a third step unless the shift is steady since
/// the deploy, see the detector's notes).
/// Each of `seeds` (xor 0x5a5a) draws `2 * per_kind` traces: the tuning
/// seeds to decide on, the first reporting seed for the figures.
/// With `verbose` (tuning seeds only), every trace not called by the
/// second bad step is listed (see [`sharp_late_line`]).
fn sharp_at_coarse_steps(set: &str, seeds: &[u64], per_kind: usize, verbose: bool) {
    let (mut first, mut second, mut third, mut later, mut missed) = (0, 0, 0, 0, 0);
    let mut by_kind = [[0usize; 5]; 2];
    let mut rng = Rng::new(0);
    for (seed, i) in seeds
        .iter()
        .flat_map(|&s| (0..2 * per_kind).map(move |i| (s, i)))
    {
        if i == 0 {
            rng = Rng::new(seed ^ 0x5a5a);
        }
        let errors = i % 2 == 0;
        let rps = rng.log_uniform(1.0, 500.0);
        let tr = corpus::sharp(
            &mut rng,
            errors,
            if errors { 10.0 } else { 2.0 },
            rps,
            Shape::default(),
        );
        let coarse = corpus::resample(&tr.samples, 30);
        let r = replay(&coarse, DetectorConfig::default());
        let slot = match r.detected_at.filter(|_| r.is_regression()) {
            Some(t) if t <= 300.0 => 0,
            Some(t) if t <= 600.0 => 1,
            Some(t) if t <= 900.0 => 2,
            Some(_) => 3,
            None => 4,
        };
        by_kind[usize::from(!errors)][slot] += 1;
        if verbose && slot >= 2 {
            println!("  late {}", sharp_late_line(&coarse, errors, rps, slot, &r));
        }
        match slot {
            0 => first += 1,
            1 => second += 1,
            2 => third += 1,
            3 => later += 1,
            _ => missed += 1,
        }
    }
    println!();
    println!(
        "sharp regressions at 300 s steps ({set} seeds {seeds:?}; errors x10 and latency x2, 1-500 req/s, {} traces): called at bad step 1: {first}, step 2: {second}, step 3: {third}, later: {later}, missed: {missed}",
        2 * per_kind * seeds.len()
    );
    for (name, k) in ["errors x10", "latency x2"].iter().zip(by_kind) {
        println!(
            "  {name}: step 1: {}, step 2: {}, step 3: {}, later: {}, missed: {}",
            k[0], k[1], k[2], k[3], k[4]
        );
    }
}

/// One late sharp regression at 300 s steps, in a line: its kind and
/// req/s; the baseline's pooled error rate and median quantiles; bad
/// steps 1-3 (error rate, quantiles as multiples of the baseline median);
/// what the detector said after the second bad step, and the call's
/// step and reason.
fn sharp_late_line(
    coarse: &[shipdeck::monitor::Sample],
    errors: bool,
    rps: f64,
    slot: usize,
    r: &shipdeck::monitor::trace::ReplayReport,
) -> String {
    let base: Vec<&shipdeck::monitor::Sample> = coarse
        .iter()
        .filter(|s| s.t <= 0.0 && s.requests.is_finite())
        .collect();
    let (e, n) = base
        .iter()
        .fold((0.0, 0.0), |(e, n), s| (e + s.errors, n + s.requests));
    let med = |q: usize| {
        let mut xs: Vec<f64> = base
            .iter()
            .filter_map(|s| [s.p50_ms, s.p95_ms, s.p99_ms][q])
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let meds = [med(0), med(1), med(2)];
    let spread = |q: usize| {
        let xs: Vec<f64> = base
            .iter()
            .filter_map(|s| [s.p50_ms, s.p95_ms, s.p99_ms][q])
            .map(|v| (v / meds[q]).ln().abs())
            .collect();
        xs.iter().copied().fold(0.0, f64::max)
    };
    let steps: Vec<String> = coarse
        .iter()
        .filter(|s| s.t > 0.0 && s.t <= 900.0 + 1e-9)
        .map(|s| {
            let q = [s.p50_ms, s.p95_ms, s.p99_ms];
            format!(
                "{:.2}%/{}r x{:.2},{:.2},{:.2}",
                100.0 * s.errors / s.requests.max(1.0),
                s.requests,
                q[0].unwrap_or(f64::NAN) / meds[0],
                q[1].unwrap_or(f64::NAN) / meds[1],
                q[2].unwrap_or(f64::NAN) / meds[2]
            )
        })
        .collect();
    let upto: Vec<shipdeck::monitor::Sample> = coarse
        .iter()
        .filter(|s| s.t <= 600.0 + 1e-9)
        .copied()
        .collect();
    let at2 = replay(&upto, DetectorConfig::default());
    format!(
        "{} {:.1} req/s | base {:.3}% ({} err), p50/95/99 {:.0}/{:.0}/{:.0} ms, max |ln dev| {:.2}/{:.2}/{:.2} | steps {} | at step 2: {} | {}: {}",
        if errors { "errors x10" } else { "latency x2" },
        rps,
        100.0 * e / n.max(1.0),
        e,
        meds[0],
        meds[1],
        meds[2],
        spread(0),
        spread(1),
        spread(2),
        steps.join("; "),
        at2.reason,
        ["", "", "step 3", "later", "missed"][slot],
        r.reason
    )
}

/// The tuning-seed traces caught at the fifth 10 s step (50 s), one
/// step past the median target, with what held each back: the delay with
/// no warm-up allowance (`warmup_s = 0`), with a shorter minimum span of
/// evidence (`min_evidence_s = 10`: more evidence per step), both, the
/// information bound's delay (quasi-Poisson) and the verdict's reason.
/// Also how many false alarms each variant has on the tuning seeds.
/// `cargo bench --bench detector -- --held-back`
fn held_back() {
    let traces: Vec<LabeledTrace> = TUNING
        .iter()
        .flat_map(|&seed| corpus::corpus(seed, DEFAULT_TRACES))
        .collect();
    let variants: [(&str, DetectorConfig); 3] = [
        (
            "no warm-up allowance",
            DetectorConfig {
                warmup_s: 0.0,
                ..DetectorConfig::default()
            },
        ),
        (
            "min evidence 10 s",
            DetectorConfig {
                min_evidence_s: 10.0,
                ..DetectorConfig::default()
            },
        ),
        (
            "both",
            DetectorConfig {
                warmup_s: 0.0,
                min_evidence_s: 10.0,
                ..DetectorConfig::default()
            },
        ),
    ];
    let delay = |tr: &LabeledTrace, cfg: &DetectorConfig| match tr.truth {
        Truth::Regression { t0 } => {
            let r = replay(&tr.samples, cfg.clone());
            r.detected_at.filter(|_| r.is_regression()).map(|t| t - t0)
        }
        Truth::Healthy => None,
    };
    let mut n50 = 0;
    let mut moved = [0usize; 3];
    for tr in &traces {
        let Truth::Regression { t0 } = tr.truth else {
            continue;
        };
        if delay(tr, &DetectorConfig::default()) != Some(50.0) {
            continue;
        }
        n50 += 1;
        let r = replay(&tr.samples, DetectorConfig::default());
        let cells: Vec<String> = variants
            .iter()
            .zip(moved.iter_mut())
            .map(|((name, cfg), m)| {
                let d = delay(tr, cfg);
                *m += usize::from(d.is_some_and(|d| d <= 40.0));
                format!("{name} {}", fmt_d(d))
            })
            .collect();
        println!(
            "  {:<28} rps {:>6.1} bound {} | {} | {}",
            tr.kind.name(),
            tr.rps,
            fmt_d(bound_time(&tr.samples, t0, true).map(|t| t - t0)),
            cells.join(", "),
            r.reason
        );
    }
    let fa: Vec<String> = variants
        .iter()
        .map(|(name, cfg)| {
            let n = traces
                .iter()
                .filter(|t| t.truth == Truth::Healthy)
                .filter(|t| replay(&t.samples, cfg.clone()).is_regression())
                .count();
            format!("{name} {n}")
        })
        .collect();
    let fa_default = traces
        .iter()
        .filter(|t| t.truth == Truth::Healthy)
        .filter(|t| replay(&t.samples, DetectorConfig::default()).is_regression())
        .count();
    println!(
        "caught at 50 s on the tuning seeds: {n50}; by 40 s with {}: {:?}; false alarms at 10 s (default {fa_default} of 600): {}",
        variants.map(|v| v.0).join(" / "),
        moved,
        fa.join(", ")
    );
}

/// Every tuning-seed bad trace at 10 s steps called after 40 s or missed,
/// with its delay, the information bound's (quasi-Poisson and pure
/// Poisson) and the verdict's reason; then counts per kind of how far
/// each is from the bound: at it (the bound itself is past 40 s, or never
/// shows it) or not (the bound shows it by 40 s).
/// `cargo bench --bench detector -- --late`
fn late() {
    use std::collections::BTreeMap;
    let traces: Vec<LabeledTrace> = TUNING
        .iter()
        .flat_map(|&seed| corpus::corpus(seed, DEFAULT_TRACES))
        .collect();
    // kind -> [late at the bound, late not at the bound, missed at the
    // bound, missed not at the bound]
    let mut groups: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for tr in &traces {
        let Truth::Regression { t0 } = tr.truth else {
            continue;
        };
        let r = replay(&tr.samples, DetectorConfig::default());
        let d = r.detected_at.filter(|_| r.is_regression()).map(|t| t - t0);
        if d.is_some_and(|d| d <= 40.0) {
            continue;
        }
        let bq = bound_time(&tr.samples, t0, true).map(|t| t - t0);
        let bp = bound_time(&tr.samples, t0, false).map(|t| t - t0);
        let at_limit = bq.is_none_or(|b| b > 40.0);
        let slot = match (d.is_some(), at_limit) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        groups.entry(tr.kind.name()).or_default()[slot] += 1;
        println!(
            "  {:<28} rps {:>6.1} delay {:>6} bound quasi {:>6} pure {:>6} | {}",
            tr.kind.name(),
            tr.rps,
            fmt_d(d),
            fmt_d(bq),
            fmt_d(bp),
            r.reason
        );
    }
    println!(
        "late (> 40 s) or missed on the tuning seeds at 10 s, per kind: late with the quasi-Poisson bound past 40 s / late with it by 40 s / missed with it past 40 s or never / missed with it by 40 s"
    );
    for (k, g) in groups {
        println!("  {k:<28} {} / {} / {} / {}", g[0], g[1], g[2], g[3]);
    }
}

/// Replay time of a 1-hour trace (360 rows at 10 s): median over many runs.
fn replay_time() {
    let one_hour = corpus::corpus(REPORTING[0], 2)
        .into_iter()
        .find(|t| t.truth == Truth::Healthy)
        .expect("the corpus has healthy traces")
        .samples;
    let mut times = Vec::with_capacity(501);
    for _ in 0..501 {
        let start = Instant::now();
        let r = replay(std::hint::black_box(&one_hour), DetectorConfig::default());
        std::hint::black_box(r);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "replay of a 1-hour trace ({} rows): median {:.3} ms over {} runs (budget 5 ms per hour of trace)",
        one_hour.len(),
        times[times.len() / 2],
        times.len()
    );
}

/// Replay time against trace length: 1 s steps, half baseline and half
/// window (the config's baseline and window cover them), the rows tiled
/// from a healthy 1-hour trace. Per-step cost must not grow with the
/// history, so the time per row stays flat from 1k to 40k rows (it was
/// quadratic: the baseline was recounted at every row).
fn replay_scaling() {
    let healthy = corpus::corpus(REPORTING[0], 2)
        .into_iter()
        .find(|t| t.truth == Truth::Healthy)
        .expect("the corpus has healthy traces")
        .samples;
    let mut cells = Vec::new();
    let mut per_row = Vec::new();
    for n in [1_000usize, 10_000, 40_000] {
        let half = (n / 2) as f64;
        let rows: Vec<_> = (0..n)
            .map(|i| {
                let mut s = healthy[i % healthy.len()];
                s.t = i as f64 + 1.0 - half;
                s
            })
            .collect();
        let cfg = DetectorConfig {
            baseline_s: half,
            window_s: half,
            ..DetectorConfig::default()
        };
        let runs = if n <= 1_000 { 21 } else { 5 };
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let r = replay(std::hint::black_box(&rows), cfg.clone());
                std::hint::black_box(r);
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2];
        cells.push(format!("{}k rows {ms:.1} ms", n / 1000));
        per_row.push(ms * 1000.0 / n as f64);
    }
    println!(
        "replay scaling (1 s steps, half baseline, half window): {} (per row {:.2} / {:.2} / {:.2} us; linear when flat, quadratic when it grows x10 and x40)",
        cells.join(" | "),
        per_row[0],
        per_row[1],
        per_row[2]
    );
}
