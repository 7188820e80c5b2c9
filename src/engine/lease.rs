//! Keeping a deploy lock while its action runs: renewed on a timer, and
//! when it is lost — another holder took it, or its expiry passed without
//! a renewal the store took — said once, so the engineer knows (the
//! action itself goes on: stopping midway would leave a state nobody chose).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{AsyncStore, LockInfo};

/// A deploy lock this process lost while its action ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockLost {
    pub env: String,
    /// When this process found out.
    pub at: DateTime<Utc>,
    /// Who holds the lock now ("bob (pid 12 on ci-7)"), when the store
    /// said; `None` when the store could not be reached.
    pub holder: Option<String>,
    /// Why, in words: who took it since when, or the store's error.
    pub detail: String,
}

impl LockLost {
    /// "production: the deploy lock was lost at 14:03:12 UTC: …; this
    /// action goes on without it".
    pub fn line(&self) -> String {
        format!(
            "{}: the deploy lock was lost at {} UTC: {}; the action in flight goes on without it",
            self.env,
            self.at.format("%H:%M:%S"),
            self.detail
        )
    }
}

/// The lock's expiry after a renewal at `now`: at least `margin` ahead,
/// never earlier than it was.
pub(super) fn renewed_expiry(
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    margin: Duration,
) -> DateTime<Utc> {
    expires_at.max(crate::domain::clock::after(
        now,
        crate::domain::clock::delta(margin),
    ))
}

/// Run `work` holding `lock` (already taken) in `store`, renewed every
/// `every` to at least `margin` ahead. The renewals run beside the work, so
/// a store that hangs never holds the work up. `lost` is called once, the
/// first time the lock is found lost: the store refused a renewal (another
/// process took the lock after it lapsed), or the lock's expiry passed
/// with every renewal since failing (the store unreachable: it was free to
/// be taken). Renewals go on after that — a lock nobody took is kept.
pub async fn hold_lock<T>(
    store: &AsyncStore,
    mut lock: LockInfo,
    every: Duration,
    margin: Duration,
    lost: &(dyn Fn(LockLost) + Sync),
    work: impl Future<Output = T>,
) -> T {
    let env = lock.env.clone();
    let renew = async {
        let mut told = false;
        let mut tell = |holder: Option<String>, detail: String| {
            if !told {
                told = true;
                tracing::error!(
                    env,
                    "the deploy lock was lost: {detail}; this action goes on"
                );
                lost(LockLost {
                    env: env.clone(),
                    at: Utc::now(),
                    holder,
                    detail,
                });
            }
        };
        // The expiry the store last confirmed.
        let mut confirmed = lock.expires_at;
        let first = tokio::time::Instant::now() + every;
        let mut tick = tokio::time::interval_at(first, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Utc::now();
            lock.expires_at = renewed_expiry(lock.expires_at, now, margin);
            // A renewal is dated when it is sent: the store reads the
            // lifetime asked for as `expires_at - acquired_at` (a shared
            // store then expires it on its own clock) and keeps the time
            // the lock was first taken.
            lock.acquired_at = now;
            match store.try_lock(&lock).await {
                Ok(Ok(())) => confirmed = lock.expires_at,
                Ok(Err(held)) => {
                    tell(
                        Some(held.describe()),
                        format!(
                            "{} took it at {} UTC (this process's renewal came too late: it was suspended or the store unreachable)",
                            held.describe(),
                            held.acquired_at.format("%H:%M:%S")
                        ),
                    );
                }
                Err(e) => {
                    tracing::warn!(env = %lock.env, "cannot renew the deploy lock: {e}");
                    if Utc::now() > confirmed {
                        tell(
                            None,
                            format!(
                                "it expired at {} UTC without a renewal the store took ({e}); another process may take it",
                                confirmed.format("%H:%M:%S")
                            ),
                        );
                    }
                }
            }
        }
    };
    tokio::select! {
        done = work => done,
        () = renew => unreachable!("the renewals never end"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewal_moves_the_expiry_ahead_and_never_back() {
        let now = Utc::now();
        let soon =
            crate::domain::clock::after(now, crate::domain::clock::delta(Duration::from_secs(5)));
        let later =
            crate::domain::clock::after(now, crate::domain::clock::delta(Duration::from_secs(600)));
        let margin = Duration::from_secs(120);
        let ahead = crate::domain::clock::after(now, crate::domain::clock::delta(margin));
        assert_eq!(renewed_expiry(soon, now, margin), ahead);
        assert_eq!(renewed_expiry(later, now, margin), later);
    }
}
