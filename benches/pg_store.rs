//! The team store under load: 100 concurrent clients — each its own
//! `PgStore`, with its own sessions, as 100 shipdeck processes on 100
//! machines would have — against one PostgreSQL on this machine (a
//! throwaway cluster started by the tests' harness).
//!
//! Targets (issue 10): p99 of a status read ≤ 20 ms; audit appends
//! ≥ 1,000/s.
//!
//! A "status read" is the store reads one `Engine::status` makes (what
//! `shipdeck status` prints and an open console redraws from) for the
//! four environments of the demo config without a metrics source:
//! `status_reads` — latest deploys, every environment's recent deploys,
//! locks (also those the promotion plans check), monitoring claim, last
//! verdict and decisions, who else is watching, the deploys without
//! outcome (reconciling) and the chain's key for `integrity`: one round
//! trip when nobody appended since this client last judged the chain.
//!
//! How the clients read: an open console reads its status every
//! `ui.refresh` (1 s by default) and when the store says something
//! changed; so the 100 clients each read once a second, at their own
//! phase, and the latency of those reads is the target's figure. The
//! same 100 clients reading back to back without pause (a load no team
//! makes: 100 × 1,000 reads a second would need 100 people hammering
//! `shipdeck status`) are reported beside it, for the server's capacity.
//!
//! Appends: all clients at once, back to back, each chained on the one
//! shared log.
//!
//! Run: `nice cargo bench --bench pg_store` (needs PostgreSQL:
//! `apt-get install postgresql`). Note the machine's load (`uptime`)
//! beside the figures.

#[path = "../tests/common/pg.rs"]
mod pg;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::Utc;
use shipdeck::domain::{
    ActionKind, Approval, Decision, DeployKind, DeployRecord, Outcome, Version,
};
use shipdeck::store::{AppendProfile, EnvKeys, NewAudit, PgStore, PgTarget, Store};

const CLIENTS: usize = 100;
/// Reads per client at the console's pace (one a second), and back to back.
const PACED_READS: usize = 20;
const BURST_READS: usize = 10;
const REFRESH: Duration = Duration::from_secs(1);
const APPENDS_PER_CLIENT: usize = 30;
const ENVS: [&str; 4] = ["local", "development", "staging", "production"];

fn main() {
    // Profile mode (`cargo bench --bench pg_store -- --profile`): the
    // server loads pg_stat_statements and counts functions, and the
    // append phase prints where the server's time went, per statement.
    // Not by default: the extension costs the server time of its own.
    let profiling = std::env::args().any(|a| a == "--profile");
    let cluster = if profiling {
        pg::Cluster::start_with(&[
            "shared_preload_libraries=pg_stat_statements",
            "pg_stat_statements.track=all",
            "track_functions=all",
        ])
    } else {
        pg::Cluster::start()
    };
    let db = cluster.create_db();
    let url = cluster.url_with_password(&db);
    let open = || PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap();
    seed(&open());
    // The server's processes: the postmaster (a session's parent) and its
    // children, whose CPU the append phase reports.
    // (The session is kept open until its process was read: a session
    // already closed left the server's CPU unread, 0.00, in some runs.)
    let postmaster = {
        let mut admin = cluster.admin(&cluster.create_db());
        let me: i32 = admin
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        let parent = proc_stat(me as u32).map(|(ppid, _)| ppid);
        drop(admin);
        parent
    };

    let stores: Vec<Arc<PgStore>> = (0..CLIENTS).map(|_| Arc::new(open())).collect();

    println!("pg_store: load before: {}", uptime());
    // Status reads at the console's pace: each client once a second, its
    // phase spread over the second.
    let lat = run_all(&stores, |i, s| {
        let phase = REFRESH * i as u32 / CLIENTS as u32;
        let start = Instant::now() + phase;
        let mut out = Vec::with_capacity(PACED_READS);
        for n in 0..PACED_READS {
            let due = start + REFRESH * n as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let t = Instant::now();
            status_read(s);
            out.push(t.elapsed());
        }
        out
    });
    let p99 = report(
        &format!(
            "status read, {CLIENTS} clients each once a {REFRESH:?} (a console's refresh) × {PACED_READS}"
        ),
        lat,
    );
    println!(
        "pg_store: status read p99 {:.1} ms (target ≤ 20 ms) {}",
        ms(p99),
        verdict(p99 <= Duration::from_millis(20))
    );
    // The same clients back to back: the server's capacity, not a target.
    let started = Instant::now();
    let lat = run_all(&stores, |_, s| {
        let mut out = Vec::with_capacity(BURST_READS);
        for _ in 0..BURST_READS {
            let t = Instant::now();
            status_read(s);
            out.push(t.elapsed());
        }
        out
    });
    let took = started.elapsed();
    report(
        &format!(
            "status read, {CLIENTS} clients back to back × {BURST_READS} (saturation, for reference)"
        ),
        lat,
    );
    println!(
        "pg_store: saturated: {:.0} status reads/s",
        (CLIENTS * BURST_READS) as f64 / took.as_secs_f64()
    );

    // Audit appends, all clients at once, each chained on the shared log.
    let mut server_stats = profiling.then(|| ServerStats::start(cluster.admin(&db)));
    let (rate, took, spent, cpu) = appends(&stores, postmaster);
    let n = CLIENTS * APPENDS_PER_CLIENT;
    println!(
        "pg_store: audit appends, {CLIENTS} clients × {APPENDS_PER_CLIENT}: {n} in {:.2} s = {rate:.0}/s (target ≥ 1,000/s) {}",
        took.as_secs_f64(),
        verdict(rate >= 1000.0)
    );
    print_profile(&spent, &cpu, took);
    print_cpu_per_append(&cpu, n);
    if let Some(stats) = server_stats.as_mut() {
        stats.print(n);
    }
    // The same appends over the cluster's Unix socket instead of TCP on
    // 127.0.0.1: what the loopback transport costs, for information (the
    // target's figure is the TCP one above, as a team's network has).
    drop(stores);
    let url = cluster.socket_url_with_password(&db);
    let open = || PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap();
    let stores: Vec<Arc<PgStore>> = (0..CLIENTS).map(|_| Arc::new(open())).collect();
    let (rate, took, spent, cpu) = appends(&stores, postmaster);
    println!(
        "pg_store: for information, the same appends over the Unix socket: {n} in {:.2} s = {rate:.0}/s (not the target's figure)",
        took.as_secs_f64(),
    );
    print_profile(&spent, &cpu, took);
    print_cpu_per_append(&cpu, n);
    let report = stores[0].verify().unwrap();
    assert!(report.intact(), "{report:?}");
    println!(
        "pg_store: the chain verifies after the run ({} records)",
        report.records
    );
}

/// All clients appending at once, back to back: the rate, the phase's
/// length, where the clients' time went and the CPU used meanwhile.
fn appends(
    stores: &[Arc<PgStore>],
    postmaster: Option<u32>,
) -> (f64, Duration, AppendProfile, Cpu) {
    let profile = |stores: &[Arc<PgStore>]| {
        stores
            .iter()
            .map(|s| s.append_profile())
            .fold(AppendProfile::default(), |a, b| a + b)
    };
    let (before, cpu_before) = (profile(stores), Cpu::now(postmaster));
    let started = Instant::now();
    run_all(stores, |_, s| {
        let v = Version::parse("v2").unwrap();
        for i in 0..APPENDS_PER_CLIENT {
            s.audit_start(&NewAudit {
                at: Utc::now(),
                actor: "bench",
                action: ActionKind::Monitor,
                env: ENVS[i % 4],
                version: Some(&v),
                from_version: None,
                outcome: Outcome::Succeeded,
                detail: "bench append",
            })
            .unwrap();
        }
        vec![]
    });
    let took = started.elapsed();
    let (spent, cpu) = (
        profile(stores) - before,
        Cpu::now(postmaster).since(&cpu_before),
    );
    let rate = (CLIENTS * APPENDS_PER_CLIENT) as f64 / took.as_secs_f64();
    (rate, took, spent, cpu)
}

/// The CPU each append cost, the figure that does not move with the
/// machine's load (the rate does): the server's and this process's CPU
/// over the phase, divided by the appends.
fn print_cpu_per_append(cpu: &Cpu, appends: usize) {
    println!(
        "pg_store: CPU per append: the server {:.3} ms, this process {:.3} ms",
        1000.0 * cpu.server / appends as f64,
        1000.0 * cpu.own / appends as f64,
    );
}

/// Where the appends' wall time went, per append (the phases are
/// sequential in each client, so they add up to its wall time but for the
/// bench's own loop), and who used the CPU meanwhile.
fn print_profile(p: &AppendProfile, cpu: &Cpu, took: Duration) {
    let per = |d: Duration| ms(d) / p.appends.max(1) as f64;
    println!(
        "pg_store: per append (mean over {} appends): check {:.2} ms (state read {:.2} ms, walking and hashing {:.2} ms), append {:.2} ms, flush {:.2} ms, checkpoint writes {} ({:.2} ms per append)",
        p.appends,
        per(p.check),
        per(p.check_read),
        per(p.check.saturating_sub(p.check_read)),
        per(p.append),
        per(p.flush),
        p.checkpoint_writes,
        per(p.checkpoint),
    );
    println!(
        "pg_store: rows walked: {} checks of {} walked {} records ({:.1} per check, {:.1} per walking check)",
        p.walks,
        p.appends,
        p.rows_walked,
        p.rows_walked as f64 / p.appends.max(1) as f64,
        p.rows_walked as f64 / p.walks.max(1) as f64,
    );
    println!(
        "pg_store: chain checks answered by the lean read {} of {} ({} lean reads handed to the full check)",
        p.lean, p.appends, p.lean_handed,
    );
    let wall = took.as_secs_f64();
    println!(
        "pg_store: during the appends ({CLIENTS} client threads, blocking clients): this process used {:.2} cores, the PostgreSQL server {:.2}; the machine's {} cores were {:.0}% busy ({:.0}% of them outside this process)",
        cpu.own / wall,
        cpu.server / wall,
        cpu.cores,
        100.0 * cpu.machine_busy_share(),
        100.0 * (cpu.machine_busy_share() - cpu.own / wall / cpu.cores)
    );
}

/// The server's own account of the append phase (profile mode only):
/// pg_stat_statements per statement kind, the functions' times, WAL and
/// transactions, each per append.
struct ServerStats {
    admin: postgres::Client,
}

impl ServerStats {
    /// Counters zeroed just before the appends (the server was started
    /// with the library loaded; the extension's view is created here).
    fn start(mut admin: postgres::Client) -> ServerStats {
        admin
            .batch_execute(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
                 SELECT pg_stat_statements_reset();
                 SELECT pg_stat_reset();
                 SELECT pg_stat_reset_shared('wal');",
            )
            .expect("profile mode: pg_stat_statements (postgresql-contrib) must load");
        ServerStats { admin }
    }

    fn print(&mut self, appends: usize) {
        // Sessions report function and transaction counts at most once a
        // second while busy, and within PGSTAT_IDLE_INTERVAL (10 s) once
        // idle: wait for the last of them.
        std::thread::sleep(Duration::from_secs(11));
        let per = |v: f64| v / appends.max(1) as f64;
        let rows = self
            .admin
            .query(
                "SELECT toplevel, calls, total_exec_time, rows,
                        regexp_replace(query, '\\s+', ' ', 'g')
                 FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 ORDER BY toplevel DESC, total_exec_time DESC",
                &[],
            )
            .unwrap();
        // Top-level statements by kind (each one a round trip).
        let mut kinds: Vec<(&str, i64, f64)> = Vec::new();
        let mut inside = Vec::new();
        for r in &rows {
            let (top, calls, total, query): (bool, i64, f64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(4));
            if !top {
                inside.push((calls, total, query));
                continue;
            }
            let kind = if query.contains("shipdeck_append(") {
                "append"
            } else if query.starts_with("WITH k AS") {
                "check"
            } else if query.contains("shipdeck_flush") {
                "flush"
            } else if query.contains("shipdeck_chain_checkpoint") && query.starts_with("INSERT") {
                "checkpoint"
            } else {
                "other"
            };
            match kinds.iter_mut().find(|k| k.0 == kind) {
                Some(k) => {
                    k.1 += calls;
                    k.2 += total;
                }
                None => kinds.push((kind, calls, total)),
            }
        }
        let round_trips: i64 = kinds.iter().filter(|k| k.0 != "other").map(|k| k.1).sum();
        println!(
            "pg_store: server per statement (pg_stat_statements, exec time incl. lock waits; {:.2} statements per append):",
            per(round_trips as f64)
        );
        for (kind, calls, total) in &kinds {
            println!(
                "pg_store:   {kind:<10} calls {calls:>6} ({:.2}/append), total {total:>9.1} ms, mean {:.3} ms, per append {:.3} ms",
                per(*calls as f64),
                total / (*calls).max(1) as f64,
                per(*total)
            );
        }
        for (calls, total, query) in inside.iter().take(8) {
            println!(
                "pg_store:   inside     calls {calls:>6}, total {total:>9.1} ms, mean {:.3} ms: {}",
                total / (*calls).max(1) as f64,
                query.chars().take(90).collect::<String>()
            );
        }
        for r in self
            .admin
            .query(
                "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions ORDER BY total_time DESC",
                &[],
            )
            .unwrap()
        {
            let (name, calls, total, own): (String, i64, f64, f64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            println!(
                "pg_store:   function {name}: calls {calls}, total {total:.1} ms (mean {:.3} ms), self {own:.1} ms",
                total / calls.max(1) as f64
            );
        }
        let w = self
            .admin
            .query_one(
                "SELECT w.wal_records, w.wal_bytes::float8, w.wal_write, w.wal_sync, d.xact_commit
                 FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()",
                &[],
            )
            .unwrap();
        let (records, bytes, writes, syncs, commits): (i64, f64, i64, i64, i64) =
            (w.get(0), w.get(1), w.get(2), w.get(3), w.get(4));
        println!(
            "pg_store: server per append: {:.2} commits, {:.1} WAL records, {:.0} WAL bytes; WAL writes {writes}, fsyncs {syncs} ({:.1} appends per fsync)",
            per(commits as f64),
            per(records as f64),
            per(bytes),
            appends as f64 / syncs.max(1) as f64
        );
    }
}

/// CPU time: this process's (user + system, seconds) and the machine's
/// busy and total jiffies, from /proc.
struct Cpu {
    own: f64,
    server: f64,
    busy: f64,
    total: f64,
    cores: f64,
}

impl Cpu {
    fn now(postmaster: Option<u32>) -> Cpu {
        let own = proc_stat(std::process::id()).map_or(0.0, |(_, cpu)| cpu);
        let server = postmaster.map_or(0.0, |pm| {
            let mut sum = proc_stat(pm).map_or(0.0, |(_, cpu)| cpu);
            for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse().ok())
                    && let Some((ppid, cpu)) = proc_stat(pid)
                    && ppid == pm
                {
                    sum += cpu;
                }
            }
            sum
        });
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total: f64 = cpu.iter().sum();
        let idle = cpu.get(3).copied().unwrap_or(0.0) + cpu.get(4).copied().unwrap_or(0.0);
        let cores = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        Cpu {
            own,
            server,
            busy: (total - idle) / TICK,
            total: total / TICK,
            cores: cores.max(1) as f64,
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            own: self.own - before.own,
            server: self.server - before.server,
            busy: self.busy - before.busy,
            total: self.total - before.total,
            cores: self.cores,
        }
    }

    fn machine_busy_share(&self) -> f64 {
        if self.total > 0.0 {
            self.busy / self.total
        } else {
            0.0
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn report(what: &str, lat: Vec<Vec<Duration>>) -> Duration {
    let mut all: Vec<Duration> = lat.into_iter().flatten().collect();
    all.sort();
    let q = |p: f64| all[((all.len() as f64 * p).ceil() as usize).min(all.len()) - 1];
    println!(
        "pg_store: {what}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} reads)",
        ms(q(0.50)),
        ms(q(0.95)),
        ms(q(0.99)),
        ms(q(1.0)),
        all.len()
    );
    q(0.99)
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            format!(
                "load average {}",
                l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
            )
        })
        .unwrap_or_else(|_| "load unknown".into())
}

/// Run `f(client index, store)` on every store at once (one thread each,
/// released together).
fn run_all(
    stores: &[Arc<PgStore>],
    f: impl Fn(usize, &PgStore) -> Vec<Duration> + Send + Sync + Copy + 'static,
) -> Vec<Vec<Duration>> {
    let gate = Arc::new(Barrier::new(stores.len()));
    let threads: Vec<_> = stores
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, s)| {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.wait();
                f(i, &s)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The store reads of one `Engine::status` (see the top of this file).
fn status_read(s: &PgStore) {
    let now = Utc::now();
    let watch: Vec<String> = ENVS.iter().map(|e| format!("{e}#watch")).collect();
    // What a reachable fleet reports: each environment and the one before
    // it run their latest deploys (see `seed`).
    let live = |i: usize| format!("v1.{}.0", 496 + i);
    let asked: Vec<Vec<String>> = (0..ENVS.len())
        .map(|i| {
            [Some(i), i.checked_sub(1)]
                .into_iter()
                .flatten()
                .map(live)
                .collect()
        })
        .collect();
    let keys: Vec<EnvKeys<'_>> = ENVS
        .iter()
        .zip(&watch)
        .zip(&asked)
        .map(|((env, watch), versions)| EnvKeys {
            env,
            watch,
            versions,
        })
        .collect();
    let reads = s
        .status_reads(&keys, 50, now, now - chrono::Duration::seconds(15))
        .unwrap();
    assert_eq!(reads.envs.len(), ENVS.len());
    assert!(reads.unfinished.is_empty());
    assert_eq!(reads.integrity, None);
}

/// A store with a history: 500 deploys, 200 decisions.
fn seed(s: &PgStore) {
    for i in 0..500 {
        let env = ENVS[i % 4];
        let v = Version::parse(&format!("v1.{i}.0")).unwrap();
        let id = s
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: "seed",
                action: ActionKind::Promote,
                env,
                version: Some(&v),
                from_version: None,
                outcome: Outcome::Started,
                detail: "seed",
            })
            .unwrap();
        s.record_deploy(
            id,
            &DeployRecord {
                seq: None,
                env: env.into(),
                version: v,
                from_version: None,
                at: Utc::now(),
                actor: "seed".into(),
                kind: DeployKind::Promote,
                url: None,
            },
            "seeded",
        )
        .unwrap();
    }
    for i in 0..200 {
        s.record_approval(&Approval {
            seq: None,
            env: "production".into(),
            version: Version::parse(&format!("v1.{i}.0")).unwrap(),
            decision: if i % 3 == 0 {
                Decision::NoGo
            } else {
                Decision::Go
            },
            actor: "seed".into(),
            at: Utc::now(),
            note: None,
        })
        .unwrap();
    }
}

const TICK: f64 = 100.0; // USER_HZ on Linux

/// A process's parent and CPU time so far (user + system, seconds).
fn proc_stat(pid: u32) -> Option<(u32, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state (field 3), ppid (4),
    // …, utime (14), stime (15).
    let rest: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let cpu = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
    Some((ppid, cpu / TICK))
}
