//! Waiting for a store another process holds (SQLite busy): one bounded
//! wait per stretch of being held — a write right after a wait that gave
//! up does not wait again — said out loud after a second. SQLite's own busy timeout
//! waited silently, and a write that gave up was followed by the next one
//! waiting the whole timeout again (a `status` took 20 s saying nothing).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one stretch of a held store is waited for, in all.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);
/// When the wait is said (to the hook the one-shot commands install).
pub const BUSY_SAY_AFTER: Duration = Duration::from_secs(1);
/// A busy answer this soon after a wait gave up finds the store still
/// held (the same stretch): it gives up at once.
const SAME_STRETCH: Duration = Duration::from_secs(1);

type Notice = Box<dyn Fn(&str) + Send + Sync>;
static NOTICE: OnceLock<Notice> = OnceLock::new();

/// Where "waiting for the store …" goes (the CLI: stderr). Without one it
/// goes to the log only (the console owns the terminal).
pub fn on_busy_wait(say: impl Fn(&str) + Send + Sync + 'static) {
    let _ = NOTICE.set(Box::new(say));
}

/// What this process knows of a store file that was held lately.
#[derive(Default)]
struct Held {
    /// When a wait for it last gave up: a write right after finds it still
    /// held and does not wait the whole timeout again.
    gave_up_at: Option<Instant>,
    /// When "waiting for the store" was last said.
    said_at: Option<Instant>,
}

/// Each store file (by path) that was held lately.
static HELD: Mutex<Option<HashMap<String, Held>>> = Mutex::new(None);

/// The busy handler of a connection to the store at `path`: wait (in
/// short sleeps) up to [`BUSY_WAIT`] from this wait's first busy answer,
/// say so once past [`BUSY_SAY_AFTER`], and give up (SQLite answers
/// "database is locked", which the caller reports naming the file). Each
/// wait is the connection's own (SQLite counts its busy answers from 0 for
/// every lock it waits for), so back-to-back contention that each time
/// ends in the lock does not add up to a give-up; only a wait that gave up
/// makes the next ones, right after, give up at once.
pub(super) fn handler(path: String) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    move |count| {
        let now = Instant::now();
        if count == 0 {
            since = now;
        }
        wait_once(&path, since, now)
    }
}

fn wait_once(path: &str, since: Instant, now: Instant) -> bool {
    let (go_on, say) = {
        let mut all = HELD.lock().unwrap_or_else(|p| p.into_inner());
        let h = all
            .get_or_insert_with(HashMap::new)
            .entry(path.to_string())
            .or_default();
        let waited = now.saturating_duration_since(since);
        if h.gave_up_at
            .is_some_and(|g| now.saturating_duration_since(g) < SAME_STRETCH)
        {
            // Still held, as a wait just found: no second wait.
            h.gave_up_at = Some(now);
            (false, None)
        } else if waited >= BUSY_WAIT {
            h.gave_up_at = Some(now);
            let line = format!(
                "store {path}: still held by another process after {} s (database is locked): what needed it was not done",
                BUSY_WAIT.as_secs()
            );
            (false, Some(line))
        } else if waited >= BUSY_SAY_AFTER
            && h.said_at
                .is_none_or(|s| now.saturating_duration_since(s) >= BUSY_WAIT)
        {
            h.said_at = Some(now);
            let line = format!(
                "waiting for the store {path}: another shipdeck holds it (busy) — up to {} s",
                BUSY_WAIT.as_secs()
            );
            (true, Some(line))
        } else {
            (true, None)
        }
    };
    if let Some(line) = say {
        tracing::warn!("{line}");
        if let Some(n) = NOTICE.get() {
            n(&line);
        }
    }
    if go_on {
        // Short first (a writer's commit is quick), then 50 ms steps.
        let short = now.saturating_duration_since(since) < Duration::from_millis(25);
        std::thread::sleep(Duration::from_millis(if short { 5 } else { 50 }));
    }
    go_on
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that follows one that gave up does not wait the whole
    /// timeout again (two silent waits made `status` take 20 s); a store
    /// free for a while and busy again gets a fresh wait.
    #[test]
    fn one_wait_per_stretch_of_a_held_store() {
        let path = "/nonexistent/busy-test-one-wait.db";
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut t = 0;
        while t < 10_000 {
            assert!(wait_once(path, at(0), at(t)), "still waiting at {t} ms");
            t += 500;
        }
        assert!(!wait_once(path, at(0), at(10_000)), "gave up at 10 s");
        // The next write, right after: the store is still held, no second wait.
        assert!(!wait_once(path, at(10_050), at(10_050)));
        assert!(!wait_once(path, at(10_050), at(10_300)));
        // Free for over a second, then busy again: a new wait.
        assert!(wait_once(path, at(12_000), at(12_000)));
        assert!(wait_once(path, at(12_000), at(15_000)));
    }

    /// Contention that ends in the lock each time (another process's
    /// short writes, back to back) is many short waits, not one that
    /// runs out: 20 s of 2-second waits in a row all go on.
    #[test]
    fn short_waits_back_to_back_do_not_add_up_to_a_give_up() {
        let path = "/nonexistent/busy-test-back-to-back.db";
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for k in 0..10 {
            let since = at(k * 2_000);
            for ms in [0, 500, 1_000, 1_900] {
                assert!(
                    wait_once(path, since, since + Duration::from_millis(ms)),
                    "wait {k} at {ms} ms"
                );
            }
        }
    }
}
