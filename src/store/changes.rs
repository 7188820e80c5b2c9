//! The live-events seam: "something changed in the shared store".
//!
//! A store hands out a [`Changes`] feed; whoever shows the store's state
//! (the console) waits on it and reads again when it ticks, instead of
//! re-reading on a tight clock. A tick carries no data on purpose: the
//! subscriber re-reads what it shows, so a missed or merged tick loses
//! nothing, and every store can implement it the cheapest way it has —
//! the embedded SQLite store checks its file for other connections'
//! commits every [`crate::store::SqliteStore`] `CHANGE_CHECK` (one cheap
//! query), a shared database pushes (PostgreSQL `LISTEN`/`NOTIFY`).
//!
//! Implementing it: `let (notifier, feed) = Changes::channel();` hand
//! `feed` out, and call [`ChangeNotifier::notify`] from whatever learns of
//! a change; stop when [`ChangeNotifier::is_closed`] says nobody listens.

use tokio::sync::watch;

/// A subscription to a store's changes. Several ticks that arrive before
/// the subscriber looks are seen as one.
#[derive(Clone, Debug)]
pub struct Changes {
    rx: watch::Receiver<u64>,
}

/// The store's side of a [`Changes`] feed.
#[derive(Debug)]
pub struct ChangeNotifier {
    tx: watch::Sender<u64>,
}

impl Changes {
    /// A new feed and the notifier that drives it.
    pub fn channel() -> (ChangeNotifier, Changes) {
        let (tx, rx) = watch::channel(0);
        (ChangeNotifier { tx }, Changes { rx })
    }

    /// Wait for the next change. `false` once the store's side has ended
    /// (its watcher stopped): no tick will ever come again.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// How many changes were announced so far.
    pub fn count(&self) -> u64 {
        *self.rx.borrow()
    }
}

impl ChangeNotifier {
    /// Announce one change to every subscriber.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Nobody subscribes any more: the watcher behind it may stop.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn ticks_before_the_subscriber_looks_merge_into_one() {
        let (n, mut feed) = Changes::channel();
        n.notify();
        n.notify();
        assert!(feed.changed().await);
        assert_eq!(feed.count(), 2);
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(20), feed.changed());
        assert!(nothing.await.is_err(), "no new change, no tick");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_feed_ends_with_its_notifier_and_the_notifier_sees_no_listener() {
        let (n, mut feed) = Changes::channel();
        let copy = feed.clone();
        drop(copy);
        assert!(!n.is_closed());
        drop(n);
        assert!(!feed.changed().await);
        let (n, feed) = Changes::channel();
        drop(feed);
        assert!(n.is_closed());
    }
}
