//! What the audit chain's check costs one fresh CLI action on a store of
//! 50,000 audit records: walking the whole log (no checkpoint, as before)
//! against walking only what follows the verified checkpoint, and the full
//! walk `history --verify` does. Run with `cargo bench --bench audit_chain`
//! (`-- --records N` for another size).

use std::time::{Duration, Instant};

use chrono::Utc;
use shipdeck::domain::{Approval, Decision, Version};
use shipdeck::store::{SqliteStore, Store};

fn approval(i: usize) -> Approval {
    Approval {
        seq: None,
        env: "production".into(),
        version: Version::parse("v1.8.0").expect("version"),
        decision: if i.is_multiple_of(2) {
            Decision::Go
        } else {
            Decision::NoGo
        },
        actor: "bench".into(),
        at: Utc::now(),
        note: Some(format!("bench record {i}")),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One fresh process's first action: open the store, record one approval.
fn fresh_action(path: &std::path::Path, i: usize) -> Duration {
    let t = Instant::now();
    let s = SqliteStore::open(path).expect("open");
    s.record_approval(&approval(i)).expect("record");
    t.elapsed()
}

fn main() {
    let records: usize = std::env::args()
        .skip_while(|a| a != "--records")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shipdeck.db");
    let t = Instant::now();
    {
        let s = SqliteStore::open(&path).expect("open");
        for i in 0..records {
            s.record_approval(&approval(i)).expect("record");
        }
    }
    println!(
        "store of {records} audit records written in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let runs = 7;
    let mut n = records;
    let whole: Vec<Duration> = (0..runs)
        .map(|_| {
            // No checkpoint: the check walks the whole log (the old way).
            rusqlite::Connection::open(&path)
                .and_then(|c| c.execute("DELETE FROM chain_checkpoint", []))
                .expect("drop checkpoint");
            n += 1;
            fresh_action(&path, n)
        })
        .collect();
    let incremental: Vec<Duration> = (0..runs)
        .map(|_| {
            n += 1;
            fresh_action(&path, n)
        })
        .collect();
    let t = Instant::now();
    let report = SqliteStore::open(&path)
        .expect("open")
        .verify()
        .expect("verify");
    let verify = t.elapsed();
    assert!(report.intact(), "{report:?}");
    println!(
        "{:<52} {:>10}",
        "one fresh action (open + approve), median of 7", ""
    );
    println!(
        "{:<52} {:>8.1}ms",
        "  walking the whole log (before)",
        median(whole).as_secs_f64() * 1e3
    );
    println!(
        "{:<52} {:>8.1}ms",
        "  walking from the checkpoint (after)",
        median(incremental).as_secs_f64() * 1e3
    );
    println!(
        "{:<52} {:>8.1}ms",
        format!("history --verify's full walk ({} records)", report.records),
        verify.as_secs_f64() * 1e3
    );
}
