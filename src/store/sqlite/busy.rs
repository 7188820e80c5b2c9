//! Waiting for a store another process holds (SQLite busy): one bounded
//! wait per stretch of being held, shared by every connection and write of
//! this process, said out loud after a second. SQLite's own busy timeout
//! waited silently, and a write that gave up was followed by the next one
//! waiting the whole timeout again (a `status` took 20 s saying nothing).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one stretch of a held store is waited for, in all.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);
/// When the wait is said (to the hook the one-shot commands install).
pub const BUSY_SAY_AFTER: Duration = Duration::from_secs(1);
/// A busy answer this soon after the previous one belongs to the same
/// stretch (the last wait gave up, or it is still going on).
const SAME_STRETCH: Duration = Duration::from_secs(1);

type Notice = Box<dyn Fn(&str) + Send + Sync>;
static NOTICE: OnceLock<Notice> = OnceLock::new();

/// Where "waiting for the store …" goes (the CLI: stderr). Without one it
/// goes to the log only (the console owns the terminal).
pub fn on_busy_wait(say: impl Fn(&str) + Send + Sync + 'static) {
    let _ = NOTICE.set(Box::new(say));
}

struct Stretch {
    start: Instant,
    last: Instant,
    said: bool,
    gave_up: bool,
}

/// The stretch each store file (by path) is in, if it was busy lately.
static STRETCH: Mutex<Option<HashMap<String, Stretch>>> = Mutex::new(None);

/// The busy handler of every connection to the store at `path`: wait (in
/// short sleeps) while the stretch is younger than [`BUSY_WAIT`], say so
/// once past [`BUSY_SAY_AFTER`], and give up (SQLite answers "database is
/// locked", which the caller reports naming the file) once it is older.
pub(super) fn handler(path: String) -> impl FnMut(i32) -> bool + Send + 'static {
    move |count| wait_once(&path, count, Instant::now())
}

fn wait_once(path: &str, count: i32, now: Instant) -> bool {
    let (go_on, say) = {
        let mut all = STRETCH.lock().unwrap_or_else(|p| p.into_inner());
        let s = all
            .get_or_insert_with(HashMap::new)
            .entry(path.to_string())
            .or_insert(Stretch {
                start: now,
                last: now,
                said: false,
                gave_up: false,
            });
        if now.saturating_duration_since(s.last) >= SAME_STRETCH {
            *s = Stretch {
                start: now,
                last: now,
                said: false,
                gave_up: false,
            };
        }
        s.last = now;
        let waited = now.saturating_duration_since(s.start);
        let go_on = waited < BUSY_WAIT;
        let say = if go_on && waited >= BUSY_SAY_AFTER && !s.said {
            s.said = true;
            Some(format!(
                "waiting for the store {path}: another shipdeck holds it (busy) — up to {} s",
                BUSY_WAIT.as_secs()
            ))
        } else if !go_on && !s.gave_up {
            s.gave_up = true;
            Some(format!(
                "store {path}: still held by another process after {} s (database is locked): what needed it was not done",
                BUSY_WAIT.as_secs()
            ))
        } else {
            None
        };
        (go_on, say)
    };
    if let Some(line) = say {
        tracing::warn!("{line}");
        if let Some(n) = NOTICE.get() {
            n(&line);
        }
    }
    if go_on {
        // Short first (a writer's commit is quick), then 50 ms steps.
        std::thread::sleep(Duration::from_millis(if count < 5 { 5 } else { 50 }));
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
            assert!(wait_once(path, 0, at(t)), "still waiting at {t} ms");
            t += 500;
        }
        assert!(!wait_once(path, 0, at(10_000)), "gave up at 10 s");
        // The next write, right after: the same stretch, no second wait.
        assert!(!wait_once(path, 0, at(10_050)));
        assert!(!wait_once(path, 3, at(10_300)));
        // Free for over a second, then busy again: a new wait.
        assert!(wait_once(path, 0, at(12_000)));
        let s = STRETCH.lock().unwrap();
        let s = &s.as_ref().unwrap()[path];
        assert_eq!((s.start, s.said, s.gave_up), (at(12_000), false, false));
    }
}
