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

type Notice = Box<dyn Fn(&BusyNotice<'_>) + Send + Sync>;
static NOTICE: OnceLock<Notice> = OnceLock::new();

/// One thing said about a held store: a wait that began (`gave_up` false)
/// or one that ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyNotice<'a> {
    /// The store file.
    pub path: &'a str,
    /// The wait ran out ([`BUSY_WAIT`]): what needed the store was not done.
    pub gave_up: bool,
    /// The whole line, as the log and the command line say it.
    pub line: &'a str,
}

/// Where "waiting for the store …" goes (the CLI: stderr; the console: its
/// notice line). Without one it goes to the log only.
pub fn on_busy_wait(say: impl Fn(&BusyNotice<'_>) + Send + Sync + 'static) {
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
    /// When a wait last went on (its busy answers come every few ms).
    went_on_at: Option<Instant>,
}

/// A wait whose last busy answer is older than this is over.
const WAIT_OVER_AFTER: Duration = Duration::from_millis(400);

/// How the waits for a held store stand now, for whoever was told one began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusyWaitState {
    /// A connection of this process still waits for it.
    Waiting,
    /// The last wait ended with the store: it came free.
    CameFree,
    /// The last wait ran out (or found the store still held right after one that did).
    GaveUp,
}

/// How the waits for the store at `path` stand (see [`BusyWaitState`]).
pub fn wait_state(path: &str) -> BusyWaitState {
    state_at(path, Instant::now())
}

fn state_at(path: &str, now: Instant) -> BusyWaitState {
    let all = HELD.lock().unwrap_or_else(|p| p.into_inner());
    let Some(h) = all.as_ref().and_then(|all| all.get(path)) else {
        return BusyWaitState::CameFree;
    };
    match (h.went_on_at, h.gave_up_at) {
        (w, Some(g)) if w.is_none_or(|w| g >= w) => BusyWaitState::GaveUp,
        (Some(w), _) if now.saturating_duration_since(w) < WAIT_OVER_AFTER => {
            BusyWaitState::Waiting
        }
        _ => BusyWaitState::CameFree,
    }
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
    let (go_on, say, gave_up) = {
        let mut all = HELD.lock().unwrap_or_else(|p| p.into_inner());
        let h = all
            .get_or_insert_with(HashMap::new)
            .entry(path.to_string())
            .or_default();
        let waited = now.saturating_duration_since(since);
        let out = if h
            .gave_up_at
            .is_some_and(|g| now.saturating_duration_since(g) < SAME_STRETCH)
        {
            // Still held, as a wait just found: no second wait.
            h.gave_up_at = Some(now);
            (false, None, true)
        } else if waited >= BUSY_WAIT {
            h.gave_up_at = Some(now);
            let line = format!(
                "store {path}: still held by another process after {} s (database is locked): what needed it was not done",
                BUSY_WAIT.as_secs()
            );
            (false, Some(line), true)
        } else if waited >= BUSY_SAY_AFTER
            && h.said_at
                .is_none_or(|s| now.saturating_duration_since(s) >= BUSY_WAIT)
        {
            h.said_at = Some(now);
            let line = format!(
                "waiting for the store {path}: another shipdeck holds it (busy) — up to {} s",
                BUSY_WAIT.as_secs()
            );
            (true, Some(line), false)
        } else {
            (true, None, false)
        };
        if out.0 {
            h.went_on_at = Some(now);
        }
        out
    };
    if let Some(line) = say {
        tracing::warn!("{line}");
        if let Some(n) = NOTICE.get() {
            n(&BusyNotice {
                path,
                gave_up,
                line: &line,
            });
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

    /// A console told that a wait began learns when it is over, and how:
    /// the store came free, or the wait ran out.
    #[test]
    fn a_wait_is_known_to_be_going_on_to_have_come_free_or_to_have_given_up() {
        let path = "/nonexistent/busy-test-wait-state.db";
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(state_at(path, at(0)), BusyWaitState::CameFree, "never held");
        assert!(wait_once(path, at(0), at(0)));
        assert!(wait_once(path, at(0), at(1_500)));
        assert_eq!(state_at(path, at(1_600)), BusyWaitState::Waiting);
        // No busy answer since: the store was had.
        assert_eq!(state_at(path, at(2_000)), BusyWaitState::CameFree);
        // Held again, for good: the wait runs out.
        assert!(wait_once(path, at(5_000), at(5_000)));
        assert!(wait_once(path, at(5_000), at(14_900)));
        assert_eq!(state_at(path, at(14_950)), BusyWaitState::Waiting);
        assert!(!wait_once(path, at(5_000), at(15_000)));
        assert_eq!(state_at(path, at(15_100)), BusyWaitState::GaveUp);
        assert_eq!(state_at(path, at(30_000)), BusyWaitState::GaveUp);
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
