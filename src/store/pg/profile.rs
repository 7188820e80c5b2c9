//! Where an append's wall time goes, per phase, summed over this store's
//! appends (a few clock reads an append): what the `pg_store` bench prints
//! beside its rate, so the next attempt at the rate starts from figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sums over every append of one [`super::PgStore`] since it connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendProfile {
    pub appends: u64,
    /// The chain check before each append, in all.
    pub check: Duration,
    /// Of which the state read (its round trip and rows).
    pub check_read: Duration,
    /// Checks that had records to walk, and how many they walked.
    pub walks: u64,
    pub rows_walked: u64,
    /// Checks answered by the lean read of the common case
    /// (`CHAIN_SINCE`), and lean reads that found something off and
    /// handed the check to the full one.
    pub lean: u64,
    pub lean_handed: u64,
    /// `shipdeck_append`'s statement (round trip included).
    pub append: Duration,
    /// The synchronous flush after it.
    pub flush: Duration,
    /// Stored checkpoint writes, and their time.
    pub checkpoint_writes: u64,
    pub checkpoint: Duration,
}

#[derive(Default)]
pub(super) struct Counters {
    appends: AtomicU64,
    check_ns: AtomicU64,
    check_read_ns: AtomicU64,
    walks: AtomicU64,
    rows_walked: AtomicU64,
    lean: AtomicU64,
    lean_handed: AtomicU64,
    append_ns: AtomicU64,
    flush_ns: AtomicU64,
    checkpoint_writes: AtomicU64,
    checkpoint_ns: AtomicU64,
}

/// One phase of the profile.
#[derive(Clone, Copy)]
pub(super) enum Phase {
    Check,
    CheckRead,
    Append,
    Flush,
    Checkpoint,
}

impl Counters {
    pub(super) fn add(&self, phase: Phase, since: Instant) {
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let (n, c) = match phase {
            Phase::Check => (&self.check_ns, None),
            Phase::CheckRead => (&self.check_read_ns, None),
            Phase::Append => (&self.append_ns, Some(&self.appends)),
            Phase::Flush => (&self.flush_ns, None),
            Phase::Checkpoint => (&self.checkpoint_ns, Some(&self.checkpoint_writes)),
        };
        n.fetch_add(ns, Ordering::Relaxed);
        if let Some(c) = c {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn walked(&self, rows: usize) {
        if rows > 0 {
            self.walks.fetch_add(1, Ordering::Relaxed);
            self.rows_walked.fetch_add(rows as u64, Ordering::Relaxed);
        }
    }

    /// A lean read answered the check (`true`) or handed it on.
    pub(super) fn lean(&self, answered: bool) {
        let c = if answered {
            &self.lean
        } else {
            &self.lean_handed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> AppendProfile {
        let d = |a: &AtomicU64| Duration::from_nanos(a.load(Ordering::Relaxed));
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AppendProfile {
            appends: n(&self.appends),
            check: d(&self.check_ns),
            check_read: d(&self.check_read_ns),
            walks: n(&self.walks),
            rows_walked: n(&self.rows_walked),
            lean: n(&self.lean),
            lean_handed: n(&self.lean_handed),
            append: d(&self.append_ns),
            flush: d(&self.flush_ns),
            checkpoint_writes: n(&self.checkpoint_writes),
            checkpoint: d(&self.checkpoint_ns),
        }
    }
}

impl std::ops::Add for AppendProfile {
    type Output = AppendProfile;
    fn add(self, o: AppendProfile) -> AppendProfile {
        AppendProfile {
            appends: self.appends + o.appends,
            check: self.check + o.check,
            check_read: self.check_read + o.check_read,
            walks: self.walks + o.walks,
            rows_walked: self.rows_walked + o.rows_walked,
            lean: self.lean + o.lean,
            lean_handed: self.lean_handed + o.lean_handed,
            append: self.append + o.append,
            flush: self.flush + o.flush,
            checkpoint_writes: self.checkpoint_writes + o.checkpoint_writes,
            checkpoint: self.checkpoint + o.checkpoint,
        }
    }
}

impl std::ops::Sub for AppendProfile {
    type Output = AppendProfile;
    fn sub(self, o: AppendProfile) -> AppendProfile {
        AppendProfile {
            appends: self.appends - o.appends,
            check: self.check.saturating_sub(o.check),
            check_read: self.check_read.saturating_sub(o.check_read),
            walks: self.walks - o.walks,
            rows_walked: self.rows_walked - o.rows_walked,
            lean: self.lean - o.lean,
            lean_handed: self.lean_handed - o.lean_handed,
            append: self.append.saturating_sub(o.append),
            flush: self.flush.saturating_sub(o.flush),
            checkpoint_writes: self.checkpoint_writes - o.checkpoint_writes,
            checkpoint: self.checkpoint.saturating_sub(o.checkpoint),
        }
    }
}
