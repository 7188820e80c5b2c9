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
    /// When a background reader's wait (the change watcher's) last gave
    /// up: kept apart, as only the background readers' next waits give up
    /// at once on it. An action's wait that began while the watcher waited
    /// gets its whole [`BUSY_WAIT`], as its notice says (the watcher's
    /// give-up, every half second, ended an approve's wait after 5 s).
    background_gave_up_at: Option<Instant>,
    /// When "waiting for the store" was last said for an action.
    said_at: Option<Instant>,
    /// When it was last said for a background reader's wait: kept apart,
    /// so an action that begins waiting while the watcher waits still says
    /// that it waits (the user asked for something).
    background_said_at: Option<Instant>,
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
    let gave_up_at = h.gave_up_at.max(h.background_gave_up_at);
    match (h.went_on_at, gave_up_at) {
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
    handler_of(path, Waiter::Action)
}

/// The busy handler of a background reader's connection (the change
/// watcher's): it waits as [`handler`] does, but its give-ups are kept
/// apart (see [`Held::background_gave_up_at`]): they end no action's wait.
pub(super) fn background_handler(path: String) -> impl FnMut(i32) -> bool + Send + 'static {
    handler_of(path, Waiter::Background)
}

/// Who waits for a held store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiter {
    /// What the user or a command asked for (a write, a read it shows).
    Action,
    /// A reader polling in the background (the change watcher).
    Background,
}

fn handler_of(path: String, who: Waiter) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    move |count| {
        let now = Instant::now();
        if count == 0 {
            since = now;
        }
        wait_once(&path, since, now, who)
    }
}

fn wait_once(path: &str, since: Instant, now: Instant, who: Waiter) -> bool {
    let (go_on, say, gave_up) = decide(path, since, now, who);
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

/// One busy answer: whether to wait on, the line to say (if any), and
/// whether the wait gave up. A background reader's give-up says nothing
/// to the user (it is logged): nothing they asked for was left undone, and
/// its next poll tries again.
fn decide(path: &str, since: Instant, now: Instant, who: Waiter) -> (bool, Option<String>, bool) {
    {
        let mut all = HELD.lock().unwrap_or_else(|p| p.into_inner());
        let h = all
            .get_or_insert_with(HashMap::new)
            .entry(path.to_string())
            .or_default();
        let waited = now.saturating_duration_since(since);
        // An action's give-up ends every wait right after it; a background
        // reader's only the background readers' waits.
        let gave_up_at = match who {
            Waiter::Action => h.gave_up_at,
            Waiter::Background => h.gave_up_at.max(h.background_gave_up_at),
        };
        let record = match who {
            Waiter::Action => &mut h.gave_up_at,
            Waiter::Background => &mut h.background_gave_up_at,
        };
        let out = if gave_up_at.is_some_and(|g| now.saturating_duration_since(g) < SAME_STRETCH) {
            // Still held, as a wait just found: no second wait.
            *record = Some(now);
            (false, None, true)
        } else if waited >= BUSY_WAIT {
            *record = Some(now);
            if who == Waiter::Background {
                tracing::warn!(
                    "store {path}: still held by another process after {} s: the change watcher tries again at its next poll",
                    BUSY_WAIT.as_secs()
                );
                (false, None, true)
            } else {
                let line = format!(
                    "store {path}: still held by another process after {} s (database is locked): what needed it was not done",
                    BUSY_WAIT.as_secs()
                );
                (false, Some(line), true)
            }
        } else if waited >= BUSY_SAY_AFTER && {
            // An action says its wait whatever the watcher said; the
            // watcher says its own only when nothing was said lately.
            let lately = |at: Option<Instant>| {
                at.is_some_and(|s| now.saturating_duration_since(s) < BUSY_WAIT)
            };
            match who {
                Waiter::Action => !lately(h.said_at),
                Waiter::Background => !lately(h.said_at) && !lately(h.background_said_at),
            }
        } {
            match who {
                Waiter::Action => h.said_at = Some(now),
                Waiter::Background => h.background_said_at = Some(now),
            }
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
    }
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
            assert!(
                wait_once(path, at(0), at(t), Waiter::Action),
                "still waiting at {t} ms"
            );
            t += 500;
        }
        assert!(
            !wait_once(path, at(0), at(10_000), Waiter::Action),
            "gave up at 10 s"
        );
        // The next write, right after: the store is still held, no second wait.
        assert!(!wait_once(path, at(10_050), at(10_050), Waiter::Action));
        assert!(!wait_once(path, at(10_050), at(10_300), Waiter::Action));
        // Free for over a second, then busy again: a new wait.
        assert!(wait_once(path, at(12_000), at(12_000), Waiter::Action));
        assert!(wait_once(path, at(12_000), at(15_000), Waiter::Action));
    }

    /// A console told that a wait began learns when it is over, and how:
    /// the store came free, or the wait ran out.
    #[test]
    fn a_wait_is_known_to_be_going_on_to_have_come_free_or_to_have_given_up() {
        let path = "/nonexistent/busy-test-wait-state.db";
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(state_at(path, at(0)), BusyWaitState::CameFree, "never held");
        assert!(wait_once(path, at(0), at(0), Waiter::Action));
        assert!(wait_once(path, at(0), at(1_500), Waiter::Action));
        assert_eq!(state_at(path, at(1_600)), BusyWaitState::Waiting);
        // No busy answer since: the store was had.
        assert_eq!(state_at(path, at(2_000)), BusyWaitState::CameFree);
        // Held again, for good: the wait runs out.
        assert!(wait_once(path, at(5_000), at(5_000), Waiter::Action));
        assert!(wait_once(path, at(5_000), at(14_900), Waiter::Action));
        assert_eq!(state_at(path, at(14_950)), BusyWaitState::Waiting);
        assert!(!wait_once(path, at(5_000), at(15_000), Waiter::Action));
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
                    wait_once(
                        path,
                        since,
                        since + Duration::from_millis(ms),
                        Waiter::Action
                    ),
                    "wait {k} at {ms} ms"
                );
            }
        }
    }

    /// The change watcher's give-up (a background reader, polling every
    /// half second) does not end an action's wait that began while it
    /// waited: the approve waits its own 10 s, as its notice says (it
    /// gave up at 5 s). The watcher's next poll, right after, gives up at
    /// once; an action's give-up still ends the watcher's next wait too.
    #[test]
    fn a_background_reader_s_give_up_does_not_cut_an_action_s_wait_short() {
        let path = "/nonexistent/busy-test-background.db";
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // The watcher waits from 0 s; an approve begins waiting at 5 s;
        // the watcher gives up at 10 s.
        assert!(wait_once(path, at(0), at(0), Waiter::Background));
        assert!(wait_once(path, at(5_000), at(5_000), Waiter::Action));
        assert!(wait_once(path, at(0), at(9_900), Waiter::Background));
        assert!(!wait_once(path, at(0), at(10_000), Waiter::Background));
        // The approve goes on past it.
        assert!(
            wait_once(path, at(5_000), at(10_050), Waiter::Action),
            "the watcher's give-up ended the approve's wait after 5 s"
        );
        // The watcher's next poll finds the store still held: no new wait.
        assert!(!wait_once(path, at(10_500), at(10_500), Waiter::Background));
        assert!(wait_once(path, at(5_000), at(10_600), Waiter::Action));
        assert!(wait_once(path, at(5_000), at(14_900), Waiter::Action));
        // The approve's own 10 s run out; the watcher's wait right after
        // gives up at once, and so does the next action's.
        assert!(!wait_once(path, at(5_000), at(15_000), Waiter::Action));
        assert!(!wait_once(path, at(15_100), at(15_100), Waiter::Background));
        assert!(!wait_once(path, at(15_200), at(15_200), Waiter::Action));
    }

    /// The change watcher and an action do not share what was said: an
    /// approve that begins waiting while the watcher waits says its own
    /// wait (the watcher's was said first), and the watcher's give-up
    /// says nothing to the user ("what needed it was not done" is an
    /// action's); the approve's own give-up does.
    #[test]
    fn the_watcher_s_waits_say_nothing_meant_for_an_action() {
        let path = "/nonexistent/busy-test-said.db";
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let said = |r: (bool, Option<String>, bool)| r.1.unwrap_or_default();
        assert!(said(decide(path, at(0), at(0), Waiter::Background)).is_empty());
        let watcher = said(decide(path, at(0), at(1_100), Waiter::Background));
        assert!(watcher.starts_with("waiting for the store"), "{watcher}");
        // An approve begins waiting at 5 s: said at 6 s, as its own.
        assert!(said(decide(path, at(5_000), at(5_000), Waiter::Action)).is_empty());
        let approve = said(decide(path, at(5_000), at(6_100), Waiter::Action));
        assert!(approve.starts_with("waiting for the store"), "{approve}");
        // The watcher's wait runs out at 10 s: nothing said.
        let (go_on, line, gave_up) = decide(path, at(0), at(10_000), Waiter::Background);
        assert!(!go_on && gave_up);
        assert_eq!(line, None, "the watcher's give-up is not said");
        // Its next poll waits no second time, and says nothing either.
        assert_eq!(
            decide(path, at(10_500), at(10_500), Waiter::Background),
            (false, None, true)
        );
        // The approve's own 10 s run out: that is said.
        let (_, line, gave_up) = decide(path, at(5_000), at(15_000), Waiter::Action);
        assert!(gave_up);
        assert!(
            line.as_deref()
                .is_some_and(|l| l.contains("what needed it was not done")),
            "{line:?}"
        );
    }
}
