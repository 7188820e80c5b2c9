//! The team store under load: 100 concurrent clients (each its own
//! process-like handle: its own sessions) against one PostgreSQL on this
//! machine — a throwaway cluster started by the tests' harness.
//!
//! Targets (issue 10): p99 of a status read ≤ 20 ms; audit appends
//! ≥ 1,000/s. A "status read" is the store reads one `shipdeck status`
//! makes: the latest deploy of each environment, every environment's lock,
//! production's decisions and last verdict, and the integrity check.
//!
//! Run: `cargo bench --bench pg_store` (needs PostgreSQL: `apt-get install postgresql`).

#[path = "../tests/common/pg.rs"]
mod pg;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::Utc;
use shipdeck::domain::{
    ActionKind, Approval, Decision, DeployKind, DeployRecord, Outcome, Version,
};
use shipdeck::store::{NewAudit, PgStore, PgTarget, Store};

const CLIENTS: usize = 100;
const READS_PER_CLIENT: usize = 40;
const APPENDS_PER_CLIENT: usize = 30;
const ENVS: [&str; 4] = ["local", "development", "staging", "production"];

fn main() {
    let cluster = pg::Cluster::start();
    let url = cluster.url_with_password(&cluster.create_db());
    let open = || PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap();
    seed(&open());

    let stores: Vec<Arc<PgStore>> = (0..CLIENTS).map(|_| Arc::new(open())).collect();

    // Status reads, all clients at once.
    let lat = run_all(&stores, |s| {
        let mut out = Vec::with_capacity(READS_PER_CLIENT);
        for _ in 0..READS_PER_CLIENT {
            let t = Instant::now();
            status_read(s);
            out.push(t.elapsed());
        }
        out
    });
    let mut all: Vec<Duration> = lat.into_iter().flatten().collect();
    all.sort();
    let q = |p: f64| all[((all.len() as f64 * p).ceil() as usize).min(all.len()) - 1];
    let p99 = q(0.99);
    println!(
        "pg_store: status read, {CLIENTS} clients × {READS_PER_CLIENT}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms (target p99 ≤ 20 ms) {}",
        ms(q(0.50)),
        ms(q(0.95)),
        ms(p99),
        verdict(p99 <= Duration::from_millis(20))
    );

    // Audit appends, all clients at once, each chained on the shared log.
    let started = Instant::now();
    run_all(&stores, |s| {
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
    let n = CLIENTS * APPENDS_PER_CLIENT;
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "pg_store: audit appends, {CLIENTS} clients × {APPENDS_PER_CLIENT}: {n} in {:.2} s = {rate:.0}/s (target ≥ 1,000/s) {}",
        took.as_secs_f64(),
        verdict(rate >= 1000.0)
    );
    let report = stores[0].verify().unwrap();
    assert!(report.intact(), "{report:?}");
    println!(
        "pg_store: the chain verifies after the run ({} records)",
        report.records
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Run `f` on every store at once (one thread each, released together).
fn run_all(
    stores: &[Arc<PgStore>],
    f: impl Fn(&PgStore) -> Vec<Duration> + Send + Sync + Copy + 'static,
) -> Vec<Vec<Duration>> {
    let gate = Arc::new(Barrier::new(stores.len()));
    let threads: Vec<_> = stores
        .iter()
        .cloned()
        .map(|s| {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.wait();
                f(&s)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The store reads of one `shipdeck status`.
fn status_read(s: &PgStore) {
    let now = Utc::now();
    s.latest_deploys().unwrap();
    for env in ENVS {
        s.lock_of(env, now).unwrap();
    }
    s.approvals("production").unwrap();
    s.last_monitor("production").unwrap();
    assert_eq!(s.integrity(), None);
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
