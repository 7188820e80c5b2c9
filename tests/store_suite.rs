//! One behavioural suite for both stores: every case below runs against
//! the embedded SQLite store and against PostgreSQL (a throwaway cluster,
//! see tests/common/pg.rs), through the `Store` trait alone, so that
//! neither store drifts from the other.

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use shipdeck::domain::{
    ActionKind, Approval, Decision, DeployKind, DeployRecord, Outcome, RollbackInput, Version,
    plan_rollback,
};
use shipdeck::monitor::Sample;
use shipdeck::store::{
    EnvKeys, LockInfo, MonitorRecord, NewAudit, PgStore, PgTarget, Presence, SqliteStore, Store,
    caught_among, decisions_about,
};

/// Opens a handle on the store under test; every call opens another
/// handle on the same store (another process, as far as the store knows).
type Open = dyn Fn() -> Arc<dyn Store>;

fn sqlite_opener() -> (Option<tempfile::TempDir>, Box<Open>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("suite.db");
    (
        Some(dir),
        Box::new(move || Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>),
    )
}

fn pg_opener() -> (Option<tempfile::TempDir>, Box<Open>) {
    let cluster = common::pg::shared();
    let url = cluster.url_with_password(&cluster.create_db());
    (
        None,
        Box::new(move || {
            Arc::new(PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap())
                as Arc<dyn Store>
        }),
    )
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { let (_keep, open) = super::sqlite_opener(); super::$case(&*open); } )*
        }
        mod postgres {
            $( #[test] fn $case() { let (_keep, open) = super::pg_opener(); super::$case(&*open); } )*
        }
    };
}

suite!(
    a_started_action_and_its_outcome_read_as_one_entry,
    an_unknown_after_a_recorded_outcome_adds_nothing,
    a_started_deploy_nobody_holds_a_lock_for_reads_unknown,
    decisions_round_trip_with_their_audit_records,
    caught_versions_are_the_failed_windows_of_one_env,
    locks_exclude_other_holders_until_released_or_expired,
    a_lock_of_a_dead_local_process_is_stale,
    a_holder_renews_its_own_lock,
    a_lock_taken_by_one_handle_is_refused_to_another,
    a_lock_renewed_while_its_work_runs_is_kept_and_a_lost_one_is_said,
    samples_are_pruned_and_ranged,
    unfinished_deploys_are_listed_until_they_have_an_outcome,
    deploys_latest_and_recent,
    deploys_and_decisions_read_in_the_stores_order_not_their_dates,
    monitoring_verdicts_round_trip,
    a_window_reads_with_its_place_in_the_stores_order,
    a_window_keeps_its_own_place_when_a_newer_start_has_no_row,
    the_chain_verifies_and_names_its_head,
    two_handles_append_concurrently_and_the_chain_holds,
    a_new_store_reports_nothing_wrong,
    a_record_by_another_handle_ticks_the_change_feed,
    odd_text_chains_and_verifies_from_another_handle,
    presence_lists_open_consoles_oldest_first,
    a_heartbeat_refreshes_without_moving_since,
    a_console_that_left_or_went_quiet_is_not_listed,
    a_dead_console_of_this_machine_is_not_listed,
    two_containers_with_one_hostname_and_pid_are_two_consoles,
    status_reads_answer_as_the_single_reads,
    status_reads_decide_about_what_a_deploy_replaced,
    status_reads_know_the_caught_versions_the_rollback_can_pick,
    status_reads_say_what_a_lock_held_elsewhere_is_for,
    a_skewed_holders_live_deploy_is_known_by_its_lock,
    a_lock_taken_over_by_another_holder_is_linked_to_nothing,
    a_retried_outcome_lands_once_and_a_different_one_is_refused,
    a_retried_deploy_record_lands_once,
    finishes_of_one_start_at_once_land_once,
    a_retried_verdict_lands_once_and_later_windows_are_their_own,
    a_real_outcome_after_a_reconciled_unknown_is_written,
    a_deploy_that_reads_unknown_is_listed_until_settled_or_followed,
);

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn start(s: &dyn Store, env: &str, at: DateTime<Utc>) -> i64 {
    let ver = v("v2");
    let from = v("v1");
    s.audit_start(&NewAudit {
        at,
        actor: "alice",
        action: ActionKind::Promote,
        env,
        version: Some(&ver),
        from_version: Some(&from),
        outcome: Outcome::Started,
        detail: "deploying",
    })
    .unwrap()
}

fn deploy(env: &str, ver: &str, at: i64) -> DeployRecord {
    DeployRecord {
        seq: None,
        env: env.into(),
        version: v(ver),
        from_version: None,
        at: t(at),
        actor: "alice".into(),
        kind: DeployKind::Promote,
        // Both stores must keep the deploy's page (status --json deploy_url).
        url: Some(format!("https://ci.example.com/{env}/{ver}")),
    }
}

/// Deploys as recorded, without the place the store gave each (compared
/// with what was handed to it).
fn as_given(ds: Vec<DeployRecord>) -> Vec<DeployRecord> {
    ds.into_iter()
        .map(|d| DeployRecord { seq: None, ..d })
        .collect()
}

fn lock(env: &str, holder: &str, pid: u32, host: &str, from: i64, to: i64) -> LockInfo {
    LockInfo {
        pid_space: None,
        env: env.into(),
        holder: holder.into(),
        pid,
        host: host.into(),
        acquired_at: t(from),
        audit_id: None,
        expires_at: t(to),
    }
}

fn a_started_action_and_its_outcome_read_as_one_entry(open: &Open) {
    let s = open();
    let id = start(&*s, "staging", t(0));
    s.record_deploy(id, &deploy("staging", "v2", 1), "staging reports v2")
        .unwrap();
    let h = s.history(None, 10).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].outcome, Outcome::Succeeded);
    assert_eq!(h[0].detail, "deploying — staging reports v2");
    assert_eq!(h[0].finished_at, Some(t(1)));
    assert_eq!(h[0].from_version, Some(v("v1")));
    assert_eq!(s.history(Some("production"), 10).unwrap(), vec![]);
}

fn an_unknown_after_a_recorded_outcome_adds_nothing(open: &Open) {
    let s = open();
    let id = start(&*s, "staging", t(0));
    s.record_deploy(id, &deploy("staging", "v2", 1), "ok")
        .unwrap();
    s.audit_finish(id, t(2), Outcome::Unknown, "interrupted")
        .unwrap();
    let h = s.history(None, 10).unwrap();
    assert_eq!((h.len(), h[0].outcome), (1, Outcome::Succeeded));
    assert!(s.verify().unwrap().intact());
}

/// A finish written again — its first attempt committed but the reply was
/// lost, so the caller retried — is done, not appended twice; an outcome
/// that disagrees with the recorded one is refused naming both, for good
/// (no retry heals it).
fn a_retried_outcome_lands_once_and_a_different_one_is_refused(open: &Open) {
    let s = open();
    let id = start(&*s, "staging", t(0));
    s.audit_finish(id, t(1), Outcome::Failed, "exit 1").unwrap();
    s.audit_finish(id, t(1), Outcome::Failed, "exit 1").unwrap();
    // Another handle (another process) retrying it, too.
    open()
        .audit_finish(id, t(2), Outcome::Failed, "exit 1")
        .unwrap();
    assert_eq!(s.verify().unwrap().records, 2, "one start, one outcome");
    let e = s
        .audit_finish(id, t(3), Outcome::Succeeded, "ok")
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("#{id}"))
            && msg.contains("\"failed\"")
            && msg.contains("\"succeeded\""),
        "{msg}"
    );
    assert!(!e.heals_by_waiting(), "{e:?}");
    s.audit_finish(id, t(4), Outcome::Unknown, "interrupted")
        .unwrap();
    let r = s.verify().unwrap();
    assert!(r.intact() && r.records == 2, "{r:?}");
    let h = s.history(None, 10).unwrap();
    assert_eq!((h.len(), h[0].outcome), (1, Outcome::Failed));
}

/// An "unknown" recorded first (another console's reconciler, the owner's
/// lock seemed gone) is no outcome: the owner's real outcome and its
/// deploy row still go in after it, and history shows the real one.
fn a_real_outcome_after_a_reconciled_unknown_is_written(open: &Open) {
    let s = open();
    let id = start(&*s, "staging", t(0));
    s.audit_finish(id, t(1), Outcome::Unknown, "reconciled")
        .unwrap();
    let rec = deploy("staging", "v2", 2);
    s.record_deploy(id, &rec, "ok").unwrap();
    assert_eq!(
        as_given(s.deploys(Some("staging")).unwrap()),
        vec![rec.clone()]
    );
    let h = s.history(None, 10).unwrap();
    assert_eq!((h.len(), h[0].outcome), (1, Outcome::Succeeded), "{h:?}");
    // Then it is the outcome: retried, it lands once; another is refused.
    s.record_deploy(id, &rec, "ok").unwrap();
    assert!(s.audit_finish(id, t(3), Outcome::Failed, "x").is_err());
    s.audit_finish(id, t(4), Outcome::Unknown, "again").unwrap();
    let r = s.verify().unwrap();
    assert!(r.intact() && r.records == 3, "{r:?}");
    assert_eq!(as_given(s.deploys(Some("staging")).unwrap()), vec![rec]);
}

/// A start whose only outcome is "unknown" (a Ctrl-C after the hand-over)
/// is listed, flagged, for the reconciler to settle once the environment
/// confirms it — by the single read and the status snapshot alike — until
/// a real outcome follows or a later deploy of its environment starts.
fn a_deploy_that_reads_unknown_is_listed_until_settled_or_followed(open: &Open) {
    let s = open();
    let id = start(&*s, "staging", t(0));
    s.audit_finish(id, t(1), Outcome::Unknown, "interrupted")
        .unwrap();
    let u = s.unfinished().unwrap();
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(
        (u[0].id, u[0].unknown, u[0].superseded_by),
        (id, true, None)
    );
    assert_eq!(u[0].version, v("v2"));
    assert_eq!(u[0].from_version, Some(v("v1")));
    let keys = |env| EnvKeys {
        env,
        watch: "w",
        versions: &[],
    };
    let got = s.status_reads(&[keys("staging")], 2, t(2), t(0)).unwrap();
    assert_eq!(got.unfinished, u);
    // Asked about another environment only, the snapshot leaves it out.
    let other = s
        .status_reads(&[keys("production")], 2, t(2), t(0))
        .unwrap();
    assert!(other.unfinished.is_empty(), "{:?}", other.unfinished);
    // Its real outcome settles it.
    s.record_deploy(id, &deploy("staging", "v2", 3), "reconciled")
        .unwrap();
    assert!(s.unfinished().unwrap().is_empty());
    assert!(
        s.status_reads(&[keys("staging")], 2, t(4), t(0))
            .unwrap()
            .unfinished
            .is_empty()
    );
    // Followed by another deploy of its environment, it is not listed;
    // the later one, without outcome, is.
    let a = start(&*s, "production", t(5));
    s.audit_finish(a, t(6), Outcome::Unknown, "interrupted")
        .unwrap();
    let b = start(&*s, "production", t(7));
    let u = s.unfinished().unwrap();
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!((u[0].id, u[0].unknown), (b, false));
    let got = s
        .status_reads(&[keys("production")], 2, t(8), t(0))
        .unwrap();
    assert_eq!(got.unfinished, u);
    // Once that one reads "unknown" too, it is the one listed.
    s.audit_finish(b, t(9), Outcome::Unknown, "interrupted")
        .unwrap();
    let u = s.unfinished().unwrap();
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!((u[0].id, u[0].unknown), (b, true));
    let got = s
        .status_reads(&[keys("production")], 2, t(10), t(0))
        .unwrap();
    assert_eq!(got.unfinished, u);
    assert!(s.verify().unwrap().intact());
}

/// A deploy's outcome written again adds neither a second outcome nor a
/// second deploy row.
fn a_retried_deploy_record_lands_once(open: &Open) {
    let s = open();
    let id = start(&*s, "staging", t(0));
    let rec = deploy("staging", "v2", 1);
    s.record_deploy(id, &rec, "ok").unwrap();
    s.record_deploy(id, &rec, "ok").unwrap();
    open().record_deploy(id, &rec, "ok").unwrap();
    assert_eq!(
        as_given(s.deploys(Some("staging")).unwrap()),
        vec![rec.clone()]
    );
    assert_eq!(s.verify().unwrap().records, 2);
    // A failure recorded first: the deploy is refused, and not indexed.
    let other = start(&*s, "production", t(5));
    s.audit_finish(other, t(6), Outcome::Failed, "exit 1")
        .unwrap();
    let e = s
        .record_deploy(other, &deploy("production", "v2", 7), "ok")
        .unwrap_err();
    assert!(e.to_string().contains("\"failed\""), "{e}");
    assert!(s.deploys(Some("production")).unwrap().is_empty());
    assert!(s.verify().unwrap().intact());
}

/// Several processes finishing the same start at the same moment (a
/// retry racing another's, two consoles reconciling one deploy): exactly
/// one outcome is recorded, and every caller is told it is.
fn finishes_of_one_start_at_once_land_once(open: &Open) {
    let s = open();
    let id = start(&*s, "staging", t(0));
    let handles: Vec<_> = (0..4).map(|_| open()).collect();
    let barrier = Arc::new(std::sync::Barrier::new(handles.len()));
    let threads: Vec<_> = handles
        .into_iter()
        .map(|h| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // Each handle has walked the chain before the race.
                assert!(h.verify().unwrap().intact());
                barrier.wait();
                h.audit_finish(id, t(1), Outcome::Succeeded, "ok")
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap().unwrap();
    }
    let r = s.verify().unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.records, 2, "one start, one outcome");
}

fn a_started_deploy_nobody_holds_a_lock_for_reads_unknown(open: &Open) {
    let s = open();
    start(&*s, "staging", t(0));
    let h = s.history(None, 10).unwrap();
    assert_eq!(h[0].outcome, Outcome::Unknown);
    assert!(
        h[0].detail.contains("no outcome recorded"),
        "{}",
        h[0].detail
    );
}

fn decisions_round_trip_with_their_audit_records(open: &Open) {
    let s = open();
    let no_go = Approval {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        decision: Decision::NoGo,
        actor: "bob".into(),
        at: t(3),
        note: Some("p95 too high in staging".into()),
    };
    let go = Approval {
        version: v("v3"),
        decision: Decision::Go,
        note: None,
        at: t(4),
        ..no_go.clone()
    };
    let no_go_id = s.record_approval(&no_go).unwrap();
    let go_id = s.record_approval(&go).unwrap();
    // Each read with its audit record's id: its place in the store's order.
    assert_eq!(
        s.approvals("production").unwrap(),
        vec![
            Approval {
                seq: Some(no_go_id),
                ..no_go
            },
            Approval {
                seq: Some(go_id),
                ..go
            }
        ]
    );
    assert!(s.approvals("staging").unwrap().is_empty());
    let h = s.history(None, 5).unwrap();
    assert_eq!(h[1].action, ActionKind::Reject);
    assert_eq!(h[1].detail, "No-Go: p95 too high in staging");
    assert_eq!(h[0].action, ActionKind::Approve);
    // Another handle (another process) sees them at once.
    assert_eq!(open().approvals("production").unwrap().len(), 2);
    assert_eq!(s.integrity(), None);
}

fn caught_versions_are_the_failed_windows_of_one_env(open: &Open) {
    let s = open();
    let window = |env: &str, ver: &str, at: i64, outcome: Option<Outcome>| {
        let version = v(ver);
        let id = s
            .audit_start(&NewAudit {
                at: t(at),
                actor: "console",
                action: ActionKind::Monitor,
                env,
                version: Some(&version),
                from_version: None,
                outcome: if outcome.is_some() {
                    Outcome::Started
                } else {
                    Outcome::Failed
                },
                detail: "window",
            })
            .unwrap();
        if let Some(o) = outcome {
            s.audit_finish(id, t(at + 1), o, "verdict").unwrap();
        }
    };
    window("production", "v3", 0, Some(Outcome::Failed));
    window("production", "v4", 2, Some(Outcome::Succeeded));
    window("production", "v3", 4, Some(Outcome::Failed));
    window("staging", "v5", 6, Some(Outcome::Failed));
    window("production", "v6", 8, None);
    window("production", "v7", 10, Some(Outcome::Unknown));
    assert_eq!(
        s.caught_versions("production").unwrap(),
        vec![v("v3"), v("v6")]
    );
    assert_eq!(s.caught_versions("staging").unwrap(), vec![v("v5")]);
    assert!(s.caught_versions("local").unwrap().is_empty());
}

/// A lock on the real clock, from `at` for `ttl`: a shared store expires
/// it on the server's clock (here the same machine's), whatever the times
/// the caller sends say, so expiry is waited for, not dated.
fn lock_at(
    env: &str,
    holder: &str,
    pid: u32,
    host: &str,
    at: DateTime<Utc>,
    ttl: chrono::Duration,
) -> LockInfo {
    LockInfo {
        pid_space: None,
        env: env.into(),
        holder: holder.into(),
        pid,
        host: host.into(),
        acquired_at: at,
        audit_id: None,
        expires_at: at + ttl,
    }
}

/// Now, to the millisecond the stores keep.
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

/// `lock` reads as `want` held, taken about when `want` says and its
/// expiry about `ttl` after `from` (the store's clock, not the caller's,
/// may date both — a shared store dates them on its own: a minute's slack).
fn assert_held(
    lock: Option<LockInfo>,
    want: &LockInfo,
    from: DateTime<Utc>,
    ttl: chrono::Duration,
) {
    let l = lock.unwrap_or_else(|| panic!("{} is not held", want.env));
    assert_eq!(
        (&l.env, &l.holder, l.pid, &l.host),
        (&want.env, &want.holder, want.pid, &want.host)
    );
    let since = (l.acquired_at - want.acquired_at).num_seconds().abs();
    assert!(since < 60, "{l:?} taken {since} s off {}", want.acquired_at);
    let off = (l.expires_at - (from + ttl)).num_seconds().abs();
    assert!(off < 60, "{l:?} expires {off} s off {ttl} after {from}");
}

fn locks_exclude_other_holders_until_released_or_expired(open: &Open) {
    let s = open();
    let me = std::process::id();
    let host = shipdeck::host::hostname();
    let (now, ten) = (now_ms(), chrono::Duration::minutes(10));
    let mine = lock_at("production", "alice", me, &host, now, ten);
    assert_eq!(s.try_lock(&mine).unwrap(), Ok(()));
    let theirs = lock_at("production", "bob", 1, "elsewhere", now, ten);
    let held = s.try_lock(&theirs).unwrap().unwrap_err();
    assert_eq!(held.holder.as_str(), "alice");
    assert!(
        (held.acquired_at - now).num_seconds().abs() < 60,
        "{held:?}"
    );
    assert_held(s.lock_of("production", now).unwrap(), &mine, now, ten);
    // Renewed for a second only: once that is over, it can be taken.
    let short = lock_at(
        "production",
        "alice",
        me,
        &host,
        now_ms(),
        chrono::Duration::seconds(1),
    );
    assert_eq!(s.try_lock(&short).unwrap(), Ok(()));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(s.lock_of("production", Utc::now()).unwrap(), None);
    let at = now_ms();
    let later = lock_at("production", "bob", 1, "elsewhere", at, ten);
    assert_eq!(s.try_lock(&later).unwrap(), Ok(()));
    // Only its holder's unlock releases it.
    s.unlock("production", me, &host).unwrap();
    assert_held(s.lock_of("production", at).unwrap(), &later, at, ten);
    s.unlock("production", 1, "elsewhere").unwrap();
    assert_eq!(s.lock_of("production", at).unwrap(), None);
}

fn a_lock_of_a_dead_local_process_is_stale(open: &Open) {
    let s = open();
    let dead = lock(
        "staging",
        "ghost",
        u32::MAX - 7,
        &shipdeck::host::hostname(),
        0,
        60,
    );
    s.try_lock(&dead).unwrap().unwrap();
    assert_eq!(s.lock_of("staging", t(1)).unwrap(), None);
    let next = lock(
        "staging",
        "alice",
        std::process::id(),
        &shipdeck::host::hostname(),
        1,
        61,
    );
    assert_eq!(s.try_lock(&next).unwrap(), Ok(()));
}

/// A renewal (dated when it is sent) moves the expiry and keeps the time
/// the lock was first taken; one nobody renews lapses.
fn a_holder_renews_its_own_lock(open: &Open) {
    let s = open();
    let host = shipdeck::host::hostname();
    let me = std::process::id();
    let (second, ten) = (chrono::Duration::seconds(1), chrono::Duration::minutes(10));
    let first = lock_at("watch:production", "alice", me, &host, now_ms(), second);
    s.try_lock(&first).unwrap().unwrap();
    let since = |s: &dyn Store| {
        s.lock_of("watch:production", Utc::now())
            .unwrap()
            .map(|l| l.acquired_at)
    };
    let taken = since(&*s).expect("held");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let at = now_ms();
    let renewal = lock_at("watch:production", "alice", me, &host, at, ten);
    s.try_lock(&renewal).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // Held past the first lifetime, since when it was first taken.
    assert_held(
        s.lock_of("watch:production", Utc::now()).unwrap(),
        &first,
        at,
        ten,
    );
    assert_eq!(since(&*s), Some(taken), "a renewal keeps the first time");
    let last = lock_at("watch:production", "alice", me, &host, now_ms(), second);
    s.try_lock(&last).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(s.lock_of("watch:production", Utc::now()).unwrap(), None);
}

/// The engine's renewal (`hold_lock`, which `Engine::holding` runs around
/// every deploy) on each store: a lock taken short and renewed while its
/// work runs is refused to another process past its first expiry; one
/// nobody renews lapses and is taken; one taken by another process after
/// it lapsed (its renewals kept it only 1 ms ahead, as a suspended process
/// would) is said lost, once, naming the new holder, while the work goes on.
fn a_lock_renewed_while_its_work_runs_is_kept_and_a_lost_one_is_said(open: &Open) {
    use shipdeck::engine::{LockLost, hold_lock};
    use shipdeck::store::AsyncStore;
    use std::time::{Duration, Instant};
    let alice = AsyncStore::new(open());
    let bob = AsyncStore::new(open());
    let (host, me) = (shipdeck::host::hostname(), std::process::id());
    let alices = |env: &str, ms: i64| {
        let now = Utc::now();
        LockInfo {
            pid_space: None,
            env: env.into(),
            holder: "alice".into(),
            pid: me,
            host: host.clone(),
            acquired_at: now,
            audit_id: None,
            expires_at: now + chrono::Duration::milliseconds(ms),
        }
    };
    let bobs = |env: &str| {
        let now = Utc::now();
        LockInfo {
            pid_space: None,
            env: env.into(),
            holder: "bob".into(),
            pid: me + 1,
            host: "there".into(),
            acquired_at: now,
            audit_id: None,
            expires_at: now + chrono::Duration::minutes(5),
        }
    };
    // Waits are bounded generously and never assume a speed.
    async fn until<F: std::future::Future<Output = bool>>(what: &str, f: impl Fn() -> F) {
        let end = Instant::now() + Duration::from_secs(20);
        while !f().await {
            assert!(Instant::now() < end, "gave up waiting: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    async fn past(at: DateTime<Utc>) {
        until("the time passes", || async { Utc::now() > at }).await;
    }
    let lost = std::sync::Mutex::new(Vec::<LockLost>::new());
    let note = |l: LockLost| lost.lock().unwrap().push(l);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Renewed while the work runs: kept past the time first taken for.
        let first = alices("production", 1000);
        assert_eq!(alice.try_lock(&first).await.unwrap(), Ok(()));
        let work = async {
            until("a renewal", || async {
                let l = alice.lock_of("production", Utc::now()).await.unwrap();
                l.is_some_and(|l| l.expires_at > first.expires_at)
            })
            .await;
            past(first.expires_at + chrono::Duration::milliseconds(100)).await;
            bob.try_lock(&bobs("production")).await.unwrap()
        };
        let refused = hold_lock(
            &alice,
            first.clone(),
            Duration::from_millis(100),
            Duration::from_secs(30),
            &note,
            work,
        )
        .await;
        assert_eq!(refused.expect_err("bob is refused").holder, "alice");
        let held = bob.lock_of("production", Utc::now()).await.unwrap();
        assert_eq!(held.map(|l| (l.holder, l.pid)), Some(("alice".into(), me)));
        // Nobody renews it: it lapses, and another process takes it.
        let short = alices("staging", 300);
        assert_eq!(alice.try_lock(&short).await.unwrap(), Ok(()));
        past(short.expires_at + chrono::Duration::milliseconds(100)).await;
        assert_eq!(bob.try_lock(&bobs("staging")).await.unwrap(), Ok(()));
        let held = alice.lock_of("staging", Utc::now()).await.unwrap();
        assert_eq!(held.map(|l| l.holder), Some("bob".into()));
        // Renewed only 1 ms ahead, it lapses between renewals; bob takes
        // it, and alice's next renewal finds it lost.
        let thin = alices("qa", 300);
        assert_eq!(alice.try_lock(&thin).await.unwrap(), Ok(()));
        let work = async {
            until("bob takes the lapsed lock", || async {
                bob.try_lock(&bobs("qa")).await.unwrap().is_ok()
            })
            .await;
            until("the loss is said", || async {
                !lost.lock().unwrap().is_empty()
            })
            .await;
            // More renewals, refused too: said once.
            tokio::time::sleep(Duration::from_millis(500)).await;
            "the work went on"
        };
        let out = hold_lock(
            &alice,
            thin,
            Duration::from_millis(100),
            Duration::from_millis(1),
            &note,
            work,
        )
        .await;
        assert_eq!(out, "the work went on");
    });
    drop(rt);
    let lost = lost.into_inner().unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].env, "qa");
    assert_eq!(
        lost[0].holder.as_deref(),
        Some(format!("bob (pid {} on there)", me + 1).as_str())
    );
    assert!(lost[0].detail.starts_with("bob (pid "), "{lost:?}");
    assert!(
        lost[0]
            .line()
            .starts_with("qa: the deploy lock was lost at ")
    );
}

fn a_lock_taken_by_one_handle_is_refused_to_another(open: &Open) {
    let (a, b) = (open(), open());
    let host = shipdeck::host::hostname();
    // Two live processes of this host: this one and its parent.
    let parent = std::os::unix::process::parent_id();
    let now = Utc::now();
    let mk = |holder: &str, pid: u32| LockInfo {
        pid_space: None,
        env: "production".into(),
        holder: holder.into(),
        pid,
        host: host.clone(),
        acquired_at: now,
        audit_id: None,
        expires_at: now + chrono::Duration::minutes(5),
    };
    assert_eq!(
        a.try_lock(&mk("alice", std::process::id())).unwrap(),
        Ok(())
    );
    let held = b.try_lock(&mk("bob", parent)).unwrap().unwrap_err();
    assert_eq!(held.holder, "alice");
    assert_eq!(
        b.lock_of("production", now).unwrap().unwrap().holder,
        "alice"
    );
    a.unlock("production", std::process::id(), &host).unwrap();
    assert_eq!(b.try_lock(&mk("bob", parent)).unwrap(), Ok(()));
    assert_eq!(a.lock_of("production", now).unwrap().unwrap().holder, "bob");
}

fn samples_are_pruned_and_ranged(open: &Open) {
    let s = open();
    for i in 0..10 {
        let smp = Sample {
            t: 0.0,
            requests: 100.0 + i as f64,
            errors: 1.0,
            p50_ms: Some(40.0),
            p95_ms: None,
            p99_ms: Some(200.0),
        };
        s.record_sample("production", t(i), &smp, chrono::Duration::minutes(5))
            .unwrap();
    }
    let got = s.samples("production", t(0), t(100)).unwrap();
    assert_eq!(
        got.len(),
        6,
        "older than 5 min before the newest are pruned"
    );
    assert_eq!(got[0].0, t(4));
    assert_eq!(got[5].1.requests, 109.0);
    assert_eq!(got[5].1.p95_ms, None);
    assert_eq!(s.samples("production", t(5), t(6)).unwrap().len(), 2);
    assert!(s.samples("staging", t(0), t(100)).unwrap().is_empty());
}

fn unfinished_deploys_are_listed_until_they_have_an_outcome(open: &Open) {
    let s = open();
    let a = start(&*s, "staging", t(0));
    let b = start(&*s, "staging", t(1));
    let u = s.unfinished().unwrap();
    assert_eq!(u.len(), 2);
    assert_eq!((u[0].id, u[0].superseded_by), (a, Some(b)));
    assert_eq!(
        (u[0].actor.as_str(), u[0].action),
        ("alice", ActionKind::Promote)
    );
    assert_eq!(u[1].superseded_by, None);
    s.audit_finish(a, t(2), Outcome::Unknown, "reconciled")
        .unwrap();
    assert_eq!(s.unfinished().unwrap().len(), 1);
}

fn deploys_latest_and_recent(open: &Open) {
    let s = open();
    for (i, (env, ver)) in [
        ("staging", "v1"),
        ("production", "v1"),
        ("staging", "v2"),
        ("staging", "v3"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = start(&*s, env, t(i as i64));
        s.record_deploy(id, &deploy(env, ver, i as i64), "ok")
            .unwrap();
    }
    let all = s.deploys(None).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(s.deploys(Some("staging")).unwrap().len(), 3);
    let latest = s.latest_deploys().unwrap();
    let names: Vec<(&str, &str)> = latest
        .iter()
        .map(|d| (d.env.as_str(), d.version.as_str()))
        .collect();
    assert_eq!(names, [("production", "v1"), ("staging", "v3")]);
    let recent = s.recent_deploys("staging", 2).unwrap();
    assert_eq!(
        recent
            .iter()
            .map(|d| d.version.as_str())
            .collect::<Vec<_>>(),
        ["v2", "v3"]
    );
    assert_eq!(
        DeployRecord {
            seq: None,
            ..recent[1].clone()
        },
        deploy("staging", "v3", 3)
    );
}

/// Team mode: every machine dates what it records by its own clock,
/// minutes apart. The store's one order — its audit log's ids — is what
/// orders deploys and decisions, each read with its place in it: a deploy
/// at the record its outcome went in with (one deploying while a Go is
/// given is after the Go), a decision at its own. Alice's clock runs 10
/// min ahead, Carol's 10 min behind: by their dates Bob's v2 deploy would
/// be older than Alice's v1 and Carol's Go older than both.
fn deploys_and_decisions_read_in_the_stores_order_not_their_dates(open: &Open) {
    let s = open();
    let alice = start(&*s, "staging", t(10));
    s.record_deploy(alice, &deploy("staging", "v1", 10), "ok")
        .unwrap();
    let bob = start(&*s, "staging", t(5));
    // Carol's Go is given while Bob's deploy runs.
    let go = open()
        .record_approval(&Approval {
            seq: None,
            env: "production".into(),
            version: v("v1"),
            decision: Decision::Go,
            actor: "carol".into(),
            at: t(-10),
            note: None,
        })
        .unwrap();
    s.record_deploy(
        bob,
        &DeployRecord {
            actor: "bob".into(),
            ..deploy("staging", "v2", 5)
        },
        "ok",
    )
    .unwrap();
    let all = s.deploys(Some("staging")).unwrap();
    let seqs: Vec<i64> = all.iter().map(|d| d.seq.unwrap()).collect();
    assert!(
        seqs[0] > alice && seqs[0] < go && seqs[1] > go,
        "{seqs:?} go {go}"
    );
    assert_eq!(s.approvals("production").unwrap()[0].seq, Some(go));
    // Every read of the deploys gives the same place.
    let latest = s.latest_deploys().unwrap();
    assert_eq!(latest, vec![all[1].clone()]);
    assert_eq!(s.recent_deploys("staging", 5).unwrap(), all);
    // The rules read that order: Bob brought v2 into staging.
    for ds in [&all, &latest] {
        assert_eq!(
            shipdeck::domain::policy::stage_promoter(ds, "staging", &v("v2")),
            Some("bob")
        );
    }
}

/// Team mode: the watcher's clock runs behind the deployer's, so the
/// window that judged a deploy is dated before it. Both reads of the last
/// window (single and status) give its place in the store's order — its
/// `monitor` started record — after the deploy's, and the status rule
/// reads the deploy as judged, not as needing a watch.
fn a_window_reads_with_its_place_in_the_stores_order(open: &Open) {
    let (s, watcher) = (open(), open());
    let id = start(&*s, "production", t(10));
    s.record_deploy(id, &deploy("production", "v2", 10), "ok")
        .unwrap();
    let d = s.recent_deploys("production", 1).unwrap().pop().unwrap();
    let ver = v("v2");
    let opened = watcher
        .audit_start(&NewAudit {
            at: t(9),
            actor: "bob",
            action: ActionKind::Monitor,
            env: "production",
            version: Some(&ver),
            from_version: None,
            outcome: Outcome::Started,
            detail: "monitoring window",
        })
        .unwrap();
    watcher
        .record_monitor(&MonitorRecord {
            seq: Some(opened),
            env: "production".into(),
            version: ver.clone(),
            started_at: t(9),
            finished_at: Some(t(12)),
            verdict: "healthy".into(),
            metric: None,
            reason: "in line".into(),
        })
        .unwrap();
    let m = s.last_monitor("production").unwrap().unwrap();
    assert_eq!(m.seq, Some(opened));
    assert!(m.seq > d.seq, "{m:?} {d:?}");
    let keys = [EnvKeys {
        env: "production",
        watch: "production#watch",
        versions: &[],
    }];
    let got = s.status_reads(&keys, 2, t(13), t(0)).unwrap();
    assert_eq!(got.envs[0].last_monitor.as_ref(), Some(&m));
    let w = shipdeck::domain::state::WindowRecord {
        version: m.version.clone(),
        started_at: m.started_at,
        finished_at: m.finished_at,
        verdict: shipdeck::domain::state::WindowVerdict::Healthy,
        seq: m.seq,
    };
    assert!(w.opened_after(&d));
    assert!(!shipdeck::domain::state::unwatched(
        true,
        Some(&ver),
        Some(&d),
        Some(&w),
        false,
        chrono::Duration::minutes(30),
        t(13),
    ));
}

/// The window's `monitor` started record of `ver` in production, as a
/// watcher writes it.
fn monitor_start(s: &dyn Store, ver: &Version, at: DateTime<Utc>) -> i64 {
    s.audit_start(&NewAudit {
        at,
        actor: "bob",
        action: ActionKind::Monitor,
        env: "production",
        version: Some(ver),
        from_version: None,
        outcome: Outcome::Started,
        detail: "monitoring window",
    })
    .unwrap()
}

/// v2 watched and judged healthy, rolled back, promoted again; the new
/// window's start is written but not its row (its watcher killed between
/// the two, or the store down at its opening). The last row is the OLD
/// window's: it keeps its own place in the store's order — before the
/// new deploy — not the newest monitor start of v2, so the deploy reads
/// as needing a watch, not as judged healthy. And a row written without
/// its start (an older shipdeck) reads without a place, judged by its
/// dates, never by a start of the same version it does not name.
fn a_window_keeps_its_own_place_when_a_newer_start_has_no_row(open: &Open) {
    let s = open();
    let ver = v("v2");
    let first = start(&*s, "production", t(0));
    s.record_deploy(first, &deploy("production", "v2", 0), "ok")
        .unwrap();
    let judged = monitor_start(&*s, &ver, t(1));
    s.record_monitor(&MonitorRecord {
        seq: Some(judged),
        env: "production".into(),
        version: ver.clone(),
        started_at: t(0),
        finished_at: Some(t(5)),
        verdict: "healthy".into(),
        metric: None,
        reason: "in line".into(),
    })
    .unwrap();
    let back = start(&*s, "production", t(10));
    s.record_deploy(
        back,
        &DeployRecord {
            kind: DeployKind::Rollback,
            ..deploy("production", "v1", 10)
        },
        "ok",
    )
    .unwrap();
    let again = start(&*s, "production", t(20));
    s.record_deploy(again, &deploy("production", "v2", 20), "ok")
        .unwrap();
    let d = s.recent_deploys("production", 1).unwrap().pop().unwrap();
    assert_eq!(d.version, ver);
    // The new window's start, without its row.
    let orphan = monitor_start(&*s, &ver, t(21));
    assert!(orphan > d.seq.unwrap());
    let m = s.last_monitor("production").unwrap().unwrap();
    assert_eq!(m.seq, Some(judged), "{m:?}");
    let keys = [EnvKeys {
        env: "production",
        watch: "production#watch",
        versions: &[],
    }];
    let got = s.status_reads(&keys, 3, t(22), t(0)).unwrap();
    assert_eq!(got.envs[0].last_monitor.as_ref(), Some(&m));
    let w = shipdeck::domain::state::WindowRecord {
        version: m.version.clone(),
        started_at: m.started_at,
        finished_at: m.finished_at,
        verdict: shipdeck::domain::state::WindowVerdict::Healthy,
        seq: m.seq,
    };
    assert!(!w.opened_after(&d), "{m:?} {d:?}");
    assert!(shipdeck::domain::state::unwatched(
        true,
        Some(&ver),
        Some(&d),
        Some(&w),
        false,
        chrono::Duration::minutes(30),
        t(22),
    ));
    // An older shipdeck's row names no start: none is lent to it.
    s.record_monitor(&MonitorRecord {
        seq: None,
        env: "production".into(),
        version: ver.clone(),
        started_at: t(20),
        finished_at: Some(t(25)),
        verdict: "healthy".into(),
        metric: None,
        reason: "in line".into(),
    })
    .unwrap();
    assert_eq!(s.last_monitor("production").unwrap().unwrap().seq, None);
    let got = s.status_reads(&keys, 3, t(26), t(0)).unwrap();
    assert_eq!(got.envs[0].last_monitor.as_ref().unwrap().seq, None);
}

fn monitoring_verdicts_round_trip(open: &Open) {
    let s = open();
    assert_eq!(s.last_monitor("production").unwrap(), None);
    let first = MonitorRecord {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        started_at: t(0),
        finished_at: Some(t(30)),
        verdict: "healthy".into(),
        metric: None,
        reason: "no regression".into(),
    };
    let second = MonitorRecord {
        version: v("v3"),
        finished_at: None,
        verdict: "regression".into(),
        metric: Some("error_rate".into()),
        reason: "5xx up".into(),
        ..first.clone()
    };
    s.record_monitor(&first).unwrap();
    s.record_monitor(&second).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(second));
    assert_eq!(s.last_monitor("staging").unwrap(), None);
}

/// A monitoring window's record written again (a retry whose first
/// attempt committed but whose answer was lost) is kept once; an
/// "interrupted" right after the verdict adds nothing; a later window on
/// the same deploy (`watch` again, a re-watch after an interrupted one)
/// records its own opening and verdict, whatever the earlier one said.
fn a_retried_verdict_lands_once_and_later_windows_are_their_own(open: &Open) {
    let s = open();
    let opening = MonitorRecord {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        started_at: t(0),
        finished_at: None,
        verdict: "monitoring".into(),
        metric: None,
        reason: "window ends 12:30:00 UTC".into(),
    };
    s.record_monitor(&opening).unwrap();
    s.record_monitor(&opening).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(opening.clone()));
    let interrupted = MonitorRecord {
        finished_at: Some(t(10)),
        verdict: "interrupted".into(),
        reason: "interrupted: the window's watcher stopped before a verdict".into(),
        ..opening.clone()
    };
    s.record_monitor(&interrupted).unwrap();
    s.record_monitor(&interrupted).unwrap();
    assert_eq!(
        s.last_monitor("production").unwrap(),
        Some(interrupted.clone())
    );
    // The re-watch of the same deploy: its opening and its verdict.
    s.record_monitor(&opening).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(opening.clone()));
    let verdict = MonitorRecord {
        finished_at: Some(t(30)),
        verdict: "regression".into(),
        metric: Some("error_rate".into()),
        reason: "5xx up".into(),
        ..opening.clone()
    };
    s.record_monitor(&verdict).unwrap();
    s.record_monitor(&verdict).unwrap();
    open().record_monitor(&verdict).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(verdict.clone()));
    // Its watcher stopping after the verdict adds nothing.
    s.record_monitor(&MonitorRecord {
        finished_at: Some(t(31)),
        ..interrupted.clone()
    })
    .unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(verdict.clone()));
    // `watch` again later: a healthy verdict of its own.
    let again = MonitorRecord {
        finished_at: Some(t(70)),
        verdict: "healthy".into(),
        metric: None,
        reason: "no regression".into(),
        ..opening.clone()
    };
    s.record_monitor(&opening).unwrap();
    s.record_monitor(&again).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(again));
    let next = MonitorRecord {
        started_at: t(40),
        finished_at: Some(t(70)),
        verdict: "healthy".into(),
        ..verdict
    };
    s.record_monitor(&next).unwrap();
    assert_eq!(s.last_monitor("production").unwrap(), Some(next));
}

fn the_chain_verifies_and_names_its_head(open: &Open) {
    let s = open();
    let empty = s.verify().unwrap();
    assert!(empty.intact() && empty.records == 0 && empty.head.is_none());
    for i in 0..5 {
        start(&*s, "staging", t(i));
    }
    let r = s.verify().unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.records, 5);
    let head = r.head.clone().unwrap();
    assert_eq!(head.len(), 64);
    // Another handle walks to the same head.
    assert_eq!(open().verify().unwrap().head, Some(head));
}

fn two_handles_append_concurrently_and_the_chain_holds(open: &Open) {
    let (a, b) = (open(), open());
    let threads: Vec<_> = [a.clone(), b]
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                for i in 0..40 {
                    start(&*s, "staging", t(i));
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(a.history(None, 1000).unwrap().len(), 80);
    let r = a.verify().unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.records, 80);
}

fn a_new_store_reports_nothing_wrong(open: &Open) {
    let s = open();
    assert_eq!(s.integrity(), None);
    assert!(!s.describe().is_empty());
    assert!(s.history(None, 10).unwrap().is_empty());
    assert!(s.unfinished().unwrap().is_empty());
}

fn a_record_by_another_handle_ticks_the_change_feed(open: &Open) {
    let (watcher, writer) = (open(), open());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut feed = watcher.changes().unwrap();
    let approval = Approval {
        seq: None,
        env: "production".into(),
        version: v("v2"),
        decision: Decision::Go,
        actor: "ops".into(),
        at: t(0),
        note: None,
    };
    // No pause before recording: a feed counts every commit made after
    // `changes()` returned (each store reads its starting point, or
    // LISTENs, before handing the feed out).
    writer.record_approval(&approval).unwrap();
    // Generous: the SQLite watcher checks every 500 ms, but its thread may
    // wait long for a core on a loaded machine.
    let ticked = rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(30), feed.changed()).await
    });
    assert_eq!(ticked, Ok(true), "no tick within 30 s of another's record");
}

/// Text the chain's canonical encoding must agree on, whoever hashes it
/// (PostgreSQL hashes in SQL, the verifier in Rust): quotes, backslashes,
/// control characters, non-ASCII, a JSON-looking string, and absent fields;
/// and text that would end an SQL literal or a statement early (the team
/// store writes appends as literals): it is stored as it was given.
fn odd_text_chains_and_verifies_from_another_handle(open: &Open) {
    let s = open();
    let odd = [
        "plain",
        "quote \" and backslash \\ and slash /",
        "single ' quote, doubled '' and escaped \\' and E'\\x41' and \\",
        "'); DELETE FROM shipdeck_audit; COMMIT; --",
        "$1 $$ dollar $tag$ ; $10",
        "tab\tnewline\nreturn\rbell\u{7}nul-ish\u{1}\u{1f}del\u{7f}",
        "ünïcödé — 日本語 — emoji 🚀 — \u{2028}",
        "[1,\"two\",null]",
        "",
    ];
    let ver = v("v2.0.0-rc.1+build.7");
    for (i, text) in odd.iter().enumerate() {
        let id = s
            .audit_start(&NewAudit {
                at: t(i as i64),
                actor: text,
                action: ActionKind::Promote,
                env: "staging",
                version: (i % 2 == 0).then_some(&ver),
                from_version: None,
                outcome: Outcome::Started,
                detail: text,
            })
            .unwrap();
        s.audit_finish(id, t(i as i64 + 1), Outcome::Failed, text)
            .unwrap();
        s.record_approval(&Approval {
            seq: None,
            env: "production".into(),
            version: ver.clone(),
            decision: Decision::NoGo,
            actor: text.to_string(),
            at: t(i as i64),
            note: (i % 2 == 1).then(|| text.to_string()),
        })
        .unwrap();
    }
    // A deploy's own row, written in the same statement as its record.
    for (i, text) in odd.iter().enumerate() {
        let id = start(&*s, "development", t(100 + i as i64));
        s.record_deploy(
            id,
            &DeployRecord {
                seq: None,
                env: "development".into(),
                version: ver.clone(),
                from_version: None,
                at: t(100 + i as i64),
                actor: text.to_string(),
                kind: DeployKind::Promote,
                url: Some(text.to_string()),
            },
            text,
        )
        .unwrap();
    }
    let r = open().verify().unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.records, odd.len() * 5);
    assert_eq!(s.integrity(), None);
    let h = s.history(Some("staging"), 100).unwrap();
    assert_eq!(h.len(), odd.len());
    for text in odd {
        assert!(h.iter().any(|e| e.actor == text), "{text:?} in {h:?}");
    }
    let d = s.recent_deploys("development", 100).unwrap();
    for text in odd {
        assert!(
            d.iter()
                .any(|d| d.actor == text && d.url.as_deref() == Some(text)),
            "{text:?} in {d:?}"
        );
    }
}

fn console(actor: &str, host: &str, pid: u32, since: i64, seen: i64) -> Presence {
    Presence {
        pid_space: None,
        actor: actor.into(),
        host: host.into(),
        pid,
        since: t(since),
        last_seen: t(seen),
    }
}

fn presence_lists_open_consoles_oldest_first(open: &Open) {
    let (a, b) = (open(), open());
    assert!(a.present(t(0)).unwrap().is_empty());
    let bob = console("bob", "laptop-b", 4242, 2, 2);
    let alice = console("alice", "laptop-a", 7, 1, 3);
    a.heartbeat(&bob, t(-10)).unwrap();
    b.heartbeat(&alice, t(-10)).unwrap();
    // Each handle sees both, the one open longest first.
    for s in [&a, &b] {
        assert_eq!(s.present(t(0)).unwrap(), vec![alice.clone(), bob.clone()]);
    }
    // Only those seen at or after `fresh_since`.
    assert_eq!(a.present(t(3)).unwrap(), vec![alice.clone()]);
}

fn a_heartbeat_refreshes_without_moving_since(open: &Open) {
    let s = open();
    s.heartbeat(&console("bob", "laptop-b", 4242, 0, 0), t(-10))
        .unwrap();
    // A later beat of the same console (its actor renamed meanwhile).
    s.heartbeat(&console("bob@ci", "laptop-b", 4242, 0, 5), t(-5))
        .unwrap();
    assert_eq!(
        open().present(t(0)).unwrap(),
        vec![console("bob@ci", "laptop-b", 4242, 0, 5)],
        "one row per console, its first `since` kept"
    );
}

fn a_console_that_left_or_went_quiet_is_not_listed(open: &Open) {
    let (a, b) = (open(), open());
    a.heartbeat(&console("alice", "laptop-a", 7, 0, 0), t(-10))
        .unwrap();
    a.heartbeat(&console("carol", "laptop-c", 9, 0, 0), t(-10))
        .unwrap();
    b.heartbeat(&console("bob", "laptop-b", 4242, 0, 1), t(-10))
        .unwrap();
    // Alice closes her console; carol's heartbeat stops and, when bob's
    // next beat expires what was last seen before minute 1, she is gone.
    b.leave("laptop-a", 7, None).unwrap();
    b.heartbeat(&console("bob", "laptop-b", 4242, 0, 20), t(1))
        .unwrap();
    assert_eq!(
        a.present(t(-100)).unwrap(),
        vec![console("bob", "laptop-b", 4242, 0, 20)]
    );
    // Leaving twice, or a console never seen, is no error.
    b.leave("laptop-a", 7, None).unwrap();
    b.leave("nowhere", 1, None).unwrap();
}

fn a_dead_console_of_this_machine_is_not_listed(open: &Open) {
    let s = open();
    let here = shipdeck::host::hostname();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let me = std::process::id();
    s.heartbeat(&console("ghost", &here, dead, 0, 0), t(-10))
        .unwrap();
    s.heartbeat(&console("me", &here, me, 1, 1), t(-10))
        .unwrap();
    assert_eq!(
        s.present(t(-10)).unwrap(),
        vec![console("me", &here, me, 1, 1)]
    );
}

/// Two consoles in two containers of one host (docker `--hostname ci`),
/// both pid 1: two rows, told apart by their pid spaces. One's heartbeat
/// does not keep the other present, one's exit does not remove the other;
/// the status read lists both too.
fn two_containers_with_one_hostname_and_pid_are_two_consoles(open: &Open) {
    let (a, b) = (open(), open());
    let in_space = |p: Presence, space: &str| Presence {
        pid_space: Some(format!(
            "ci 00000000-0000-0000-0000-000000000001 pid:[{space}]"
        )),
        ..p
    };
    let one = in_space(console("alice", "ci", 1, 0, 0), "111");
    let two = in_space(console("bob", "ci", 1, 1, 1), "222");
    a.heartbeat(&one, t(-10)).unwrap();
    b.heartbeat(&two, t(-10)).unwrap();
    assert_eq!(a.present(t(-10)).unwrap(), vec![one.clone(), two.clone()]);
    let got = a.status_reads(&[], 2, t(0), t(-10)).unwrap();
    assert_eq!(got.present, vec![one.clone(), two.clone()]);
    // Bob's console closes: Alice's stays.
    b.leave("ci", 1, two.pid_space.as_deref()).unwrap();
    assert_eq!(a.present(t(-10)).unwrap(), vec![one.clone()]);
    // Bob's is back; Alice's heartbeats stop. Bob's beats keep only his
    // own row: once they expire what was last seen before minute 5,
    // Alice's is gone.
    b.heartbeat(&two, t(-10)).unwrap();
    let later = Presence {
        last_seen: t(20),
        ..two.clone()
    };
    b.heartbeat(&later, t(5)).unwrap();
    assert_eq!(a.present(t(-100)).unwrap(), vec![later]);
}

/// A status view's reads at once are the single reads, item for item.
fn status_reads_answer_as_the_single_reads(open: &Open) {
    let (s, other) = (open(), open());
    for (i, env) in ["staging", "production", "staging", "staging"]
        .iter()
        .enumerate()
    {
        let id = start(&*s, env, t(i as i64));
        let ver = format!("v{}", i + 2);
        s.record_deploy(id, &deploy(env, &ver, i as i64 + 1), "ok")
            .unwrap();
    }
    s.record_approval(&Approval {
        seq: None,
        env: "production".into(),
        version: v("v3"),
        decision: Decision::NoGo,
        actor: "ops".into(),
        at: t(5),
        note: Some("not on a Friday".into()),
    })
    .unwrap();
    s.record_monitor(&MonitorRecord {
        seq: None,
        env: "staging".into(),
        version: v("v5"),
        started_at: t(4),
        finished_at: Some(t(9)),
        verdict: "healthy".into(),
        metric: None,
        reason: "no regression".into(),
    })
    .unwrap();
    let me = std::process::id();
    let here = shipdeck::host::hostname();
    other
        .try_lock(&lock("production", "bob", me, &here, 0, 60))
        .unwrap()
        .unwrap();
    other
        .try_lock(&lock("staging#watch", "carol", me, &here, 0, 60))
        .unwrap()
        .unwrap();
    s.heartbeat(&console("bob", "laptop-b", 4242, 0, 3), t(-10))
        .unwrap();
    // Decisions about versions production never ran: one the view asks
    // about (what the stage before runs), one it cannot show.
    for (ver, at) in [("v8", 6), ("v7", 7)] {
        s.record_approval(&Approval {
            seq: None,
            env: "production".into(),
            version: v(ver),
            decision: Decision::Go,
            actor: "ops".into(),
            at: t(at),
            note: None,
        })
        .unwrap();
    }
    // A deploy without outcome, started by the other handle.
    let open_deploy = start(&*other, "development", t(6));
    let now = t(10);
    let asked = ["v8".to_string()];
    let keys = [
        EnvKeys {
            env: "development",
            watch: "development#watch",
            versions: &[],
        },
        EnvKeys {
            env: "staging",
            watch: "staging#watch",
            versions: &[],
        },
        EnvKeys {
            env: "production",
            watch: "production#watch",
            versions: &asked,
        },
    ];
    let got = s.status_reads(&keys, 2, now, t(0)).unwrap();
    assert_eq!(got.latest, s.latest_deploys().unwrap());
    assert_eq!(got.present, s.present(t(0)).unwrap());
    assert_eq!(got.envs.len(), 3);
    for (k, e) in keys.iter().zip(&got.envs) {
        assert_eq!(e.recent, s.recent_deploys(k.env, 2).unwrap(), "{}", k.env);
        assert_eq!(e.lock, s.lock_of(k.env, now).unwrap(), "{}", k.env);
        assert_eq!(e.watch, s.lock_of(k.watch, now).unwrap(), "{}", k.env);
        assert_eq!(e.last_monitor, s.last_monitor(k.env).unwrap(), "{}", k.env);
        let recent = s.recent_deploys(k.env, 2).unwrap();
        let decided = decisions_about(s.approvals(k.env).unwrap(), &recent, k.versions);
        assert_eq!(e.approvals, decided, "{}", k.env);
    }
    // Not empty answers compared with empty ones.
    assert_eq!(got.envs[1].recent.len(), 2);
    assert!(got.envs[2].lock.is_some() && got.envs[1].watch.is_some());
    assert!(got.envs[1].last_monitor.is_some());
    // The decisions about what it ran and what it was asked about, not
    // the one about a version it cannot show.
    let shown: Vec<&str> = got.envs[2]
        .approvals
        .iter()
        .map(|a| a.version.as_str())
        .collect();
    assert_eq!(shown, ["v3", "v8"]);
    assert_eq!(s.approvals("production").unwrap().len(), 3);
    assert_eq!(got.present.len(), 1);
    assert_eq!(got.unfinished, s.unfinished().unwrap());
    assert_eq!(got.unfinished.len(), 1);
    assert_eq!(got.unfinished[0].id, open_deploy);
    assert_eq!(got.integrity, None);
    assert_eq!(s.integrity(), None);
}

/// A deploy's `from_version` is a rollback target too (`plan_rollback`
/// walks both), so the status read's decisions include those about it:
/// production's first recorded deploy is v1.1 from v1.0 and v1.0 has a
/// No-Go there; the view must not offer "rollback → v1.0" that the
/// rollback itself (the full read of the decisions) then refuses.
fn status_reads_decide_about_what_a_deploy_replaced(open: &Open) {
    let s = open();
    let (new, old) = (v("v1.1"), v("v1.0"));
    let id = s
        .audit_start(&NewAudit {
            at: t(0),
            actor: "alice",
            action: ActionKind::Promote,
            env: "production",
            version: Some(&new),
            from_version: Some(&old),
            outcome: Outcome::Started,
            detail: "deploying",
        })
        .unwrap();
    let d = DeployRecord {
        from_version: Some(old.clone()),
        ..deploy("production", "v1.1", 1)
    };
    s.record_deploy(id, &d, "production reports v1.1").unwrap();
    for (ver, decision, at) in [("v1.0", Decision::NoGo, 2), ("v0.9", Decision::Go, 3)] {
        s.record_approval(&Approval {
            seq: None,
            env: "production".into(),
            version: v(ver),
            decision,
            actor: "ops".into(),
            at: t(at),
            note: None,
        })
        .unwrap();
    }
    let asked = ["v1.1".to_string()];
    let keys = [EnvKeys {
        env: "production",
        watch: "production#watch",
        versions: &asked,
    }];
    let got = s.status_reads(&keys, 5, t(10), t(0)).unwrap();
    let recent = s.recent_deploys("production", 5).unwrap();
    let all = s.approvals("production").unwrap();
    assert_eq!(
        got.envs[0].approvals,
        decisions_about(all.clone(), &recent, &asked)
    );
    // The No-Go about the version it replaced; not the Go about one it
    // never ran.
    let shown: Vec<&str> = got.envs[0]
        .approvals
        .iter()
        .map(|a| a.version.as_str())
        .collect();
    assert_eq!(shown, ["v1.0"]);
    // What the view offers is what the rollback (the full read) accepts.
    let plan = |history: &[DeployRecord], approvals: &[Approval]| {
        plan_rollback(&RollbackInput {
            env: "production",
            current: Some(&new),
            history,
            to: None,
            approvals,
            caught: &[],
        })
        .map(|p| p.to)
        .map_err(|e| e.to_string())
    };
    let shown = plan(&got.envs[0].recent, &got.envs[0].approvals);
    assert_eq!(shown, plan(&recent, &all));
    assert!(shown.is_err(), "v1.0 is blocked by a No-Go: {shown:?}");
}

/// Tampering with the team store's audit log (as a superuser would, the
/// append-only triggers disabled) is caught by a process that already
/// walked the chain: by its status read and by its next append, whether
/// the rewritten record is the very one its walk ended on or one after.
mod postgres_tamper {
    use super::*;

    fn store(url: &str) -> PgStore {
        PgStore::connect(PgTarget::parse(url, None).unwrap()).unwrap()
    }

    fn rewrite(admin: &mut ::postgres::Client, id: i64) {
        admin
            .batch_execute(&format!(
                "ALTER TABLE shipdeck_audit DISABLE TRIGGER USER;
                 UPDATE shipdeck_audit SET detail = 'nothing happened' WHERE id = {id};
                 ALTER TABLE shipdeck_audit ENABLE TRIGGER USER;"
            ))
            .unwrap();
    }

    fn status_integrity(s: &PgStore) -> Option<String> {
        let keys = [EnvKeys {
            env: "staging",
            watch: "staging#watch",
            versions: &[],
        }];
        s.status_reads(&keys, 5, t(10), t(0)).unwrap().integrity
    }

    fn refused(s: &PgStore) -> String {
        let ver = v("v9");
        let e = s
            .audit_start(&NewAudit {
                at: t(20),
                actor: "mallory",
                action: ActionKind::Promote,
                env: "staging",
                version: Some(&ver),
                from_version: None,
                outcome: Outcome::Started,
                detail: "after the rewrite",
            })
            .expect_err("an append on a broken chain is refused");
        e.to_string()
    }

    /// `at`: which record to rewrite, given the last one this process
    /// walked to (`head`) and the last one anyone appended (`last`).
    fn case(at: impl Fn(i64, i64) -> i64) {
        let cluster = common::pg::shared();
        let db = cluster.create_db();
        let url = cluster.url_with_password(&db);
        let (me, other) = (store(&url), store(&url));
        let mut head = 0;
        for i in 0..4 {
            head = start(&me, "staging", t(i));
        }
        assert_eq!(status_integrity(&me), None);
        let mut last = head;
        for i in 4..6 {
            last = start(&other, "staging", t(i));
        }
        let id = at(head, last);
        rewrite(&mut cluster.admin(&db), id);
        let why = status_integrity(&me).expect("the rewrite is reported");
        assert!(why.contains(&format!("broken at record #{id}")), "{why}");
        let err = refused(&me);
        assert!(err.contains(&format!("record #{id}")), "{err}");
        // A process that never walked it finds it too.
        let fresh = store(&url);
        assert!(
            fresh
                .integrity()
                .unwrap()
                .contains(&format!("record #{id}"))
        );
    }

    /// The status read compares the decisions it reads with the approvals
    /// table's rows about the same versions: an edited row about a version
    /// the view shows is noticed there, by a process that already read it
    /// and by a new one; any edited row, by the full read of the decisions
    /// that promote and rollback make.
    #[test]
    fn an_edited_approval_the_view_shows_is_noticed_by_the_status_read() {
        let cluster = common::pg::shared();
        let db = cluster.create_db();
        let url = cluster.url_with_password(&db);
        let me = store(&url);
        let id = start(&me, "staging", t(0));
        me.record_deploy(id, &deploy("staging", "v5", 1), "ok")
            .unwrap();
        for (ver, at) in [("v5", 2), ("v1", 3)] {
            me.record_approval(&Approval {
                seq: None,
                env: "staging".into(),
                version: v(ver),
                decision: Decision::NoGo,
                actor: "ops".into(),
                at: t(at),
                note: None,
            })
            .unwrap();
        }
        assert_eq!(status_integrity(&me), None);
        // A row the view does not show (v1): only the full read notices.
        cluster
            .admin(&db)
            .batch_execute("UPDATE shipdeck_approvals SET decision = 'go' WHERE version = 'v1'")
            .unwrap();
        assert_eq!(status_integrity(&store(&url)), None);
        let fresh = store(&url);
        fresh.approvals("staging").unwrap();
        assert!(fresh.integrity().unwrap().contains("disagrees"));
        // A row about the version it runs: the status read notices.
        cluster
            .admin(&db)
            .batch_execute("UPDATE shipdeck_approvals SET decision = 'go' WHERE version = 'v5'")
            .unwrap();
        for s in [&me, &store(&url)] {
            let why = status_integrity(s).expect("the edit is reported");
            assert!(
                why.contains("approvals table disagrees with the audit log for staging"),
                "{why}"
            );
        }
    }

    #[test]
    fn the_record_a_walk_ended_on_rewritten_is_caught_by_the_next_read_and_append() {
        case(|head, _| head);
    }

    #[test]
    fn a_record_after_the_walked_head_rewritten_is_caught_by_the_next_read_and_append() {
        case(|_, last| last);
    }

    /// Every record from #5 on hashed again in SQL, as `shipdeck_append`
    /// hashes, each following the one before.
    const REHASH: &str = "DO $$ DECLARE r RECORD; prev TEXT; BEGIN
        SELECT hash INTO prev FROM shipdeck_audit WHERE id = 4;
        FOR r IN SELECT * FROM shipdeck_audit WHERE id >= 5 ORDER BY id LOOP
            UPDATE shipdeck_audit SET prev_hash = prev,
                hash = encode(sha256(convert_to(prev || chr(10) || '[' || r.id::text
                    || ',' || to_json(r.at)::text || ',' || to_json(r.actor)::text
                    || ',' || to_json(r.action)::text || ',' || to_json(r.env)::text
                    || ',' || COALESCE(to_json(r.version)::text, 'null')
                    || ',' || COALESCE(to_json(r.from_version)::text, 'null')
                    || ',' || to_json(r.outcome)::text || ',' || to_json(r.detail)::text
                    || ',' || COALESCE(r.finishes::text, 'null')
                    || ',' || COALESCE(to_json(r.note)::text, 'null') || ']', 'UTF8')), 'hex')
            WHERE id = r.id RETURNING hash INTO prev;
        END LOOP;
    END $$";

    /// Every kind of break the chain check names refuses an append, a plain
    /// record's and one carrying a deploy row: nothing is written (no
    /// record, no counter step, no deploy row), and the refusal names the
    /// record. Each break lies after the point the appending process last
    /// judged, among records another process appended (what an append's
    /// check must walk, whoever walks it).
    #[test]
    fn a_break_after_the_judged_point_refuses_the_append_and_writes_nothing() {
        let cases: [(&str, i64, &str); 6] = [
            (
                "UPDATE shipdeck_audit SET detail = 'nothing happened' WHERE id = 4",
                4,
                "rewritten",
            ),
            (
                "UPDATE shipdeck_audit SET prev_hash = 'x' || prev_hash WHERE id = 5",
                5,
                "does not follow",
            ),
            ("DELETE FROM shipdeck_audit WHERE id = 4", 4, "deleted"),
            ("DELETE FROM shipdeck_audit WHERE id = 6", 6, "deleted"),
            // Unreadable records, the chain re-hashed from them on (a
            // walk finds only the unreadable record wrong).
            (
                &format!(
                    "UPDATE shipdeck_audit SET at = '2026-02-30T10:00:00.000Z' WHERE id = 5; {REHASH}"
                ),
                5,
                "unreadable",
            ),
            (
                &format!("UPDATE shipdeck_audit SET action = 'launch' WHERE id = 5; {REHASH}"),
                5,
                "unreadable",
            ),
        ];
        let cluster = common::pg::shared();
        for (sql, id, what) in cases {
            let db = cluster.create_db();
            let url = cluster.url_with_password(&db);
            let (me, other) = (store(&url), store(&url));
            let started = start(&me, "staging", t(0));
            for i in 1..3 {
                start(&me, "staging", t(i));
            }
            for i in 3..6 {
                start(&other, "staging", t(i));
            }
            let mut admin = cluster.admin(&db);
            admin
                .batch_execute(&format!(
                    "ALTER TABLE shipdeck_audit DISABLE TRIGGER USER;
                     {sql};
                     ALTER TABLE shipdeck_audit ENABLE TRIGGER USER;"
                ))
                .unwrap();
            let counts = |admin: &mut ::postgres::Client| -> (i64, i64, i64) {
                let r = admin
                    .query_one(
                        "SELECT (SELECT count(*) FROM shipdeck_audit),
                                (SELECT last FROM shipdeck_audit_seq),
                                (SELECT count(*) FROM shipdeck_deploys)",
                        &[],
                    )
                    .unwrap();
                (r.get(0), r.get(1), r.get(2))
            };
            let before = counts(&mut admin);
            let lean = me.append_profile();
            let err = refused(&me);
            assert!(err.contains(&format!("record #{id}")), "{sql}: {err}");
            assert!(err.contains(what), "{sql}: {err}");
            // The check's lean read met the break and handed it to the
            // full check, which judged it.
            let lean = me.append_profile() - lean;
            assert_eq!((lean.lean, lean.lean_handed), (0, 1), "{sql}: {lean:?}");
            let e = me
                .record_deploy(started, &deploy("staging", "v2", 9), "ok")
                .expect_err(sql)
                .to_string();
            assert!(e.contains(&format!("record #{id}")), "{sql}: {e}");
            assert_eq!(counts(&mut admin), before, "{sql}");
        }
    }
    /// The chain check's common case — records another process appended
    /// since this one's head, nothing off — is answered by the lean read
    /// (one statement from the further of that head and the stored
    /// checkpoint on); a stored checkpoint past that head whose record
    /// does not carry its hash is not: the lean read hands it to the full
    /// check, which names the dispute and refuses the append with nothing
    /// written.
    #[test]
    fn the_lean_read_answers_the_common_case_and_hands_on_a_forged_checkpoint() {
        let cluster = common::pg::shared();
        let db = cluster.create_db();
        let url = cluster.url_with_password(&db);
        let (me, other) = (store(&url), store(&url));
        let mut admin = cluster.admin(&db);
        let set_checkpoint = |admin: &mut ::postgres::Client, id: i64, hash: &str| {
            admin
                .batch_execute(&format!(
                    "ALTER TABLE shipdeck_chain_checkpoint DISABLE TRIGGER USER;
                     INSERT INTO shipdeck_chain_checkpoint (one, id, hash, at) VALUES (1, {id}, '{hash}', 'x')
                     ON CONFLICT (one) DO UPDATE SET id = {id}, hash = '{hash}';
                     ALTER TABLE shipdeck_chain_checkpoint ENABLE TRIGGER USER;"
                ))
                .unwrap();
        };
        let counts = |admin: &mut ::postgres::Client| -> (i64, i64) {
            let r = admin
                .query_one(
                    "SELECT (SELECT count(*) FROM shipdeck_audit), (SELECT last FROM shipdeck_audit_seq)",
                    &[],
                )
                .unwrap();
            (r.get(0), r.get(1))
        };
        for i in 0..3 {
            start(&me, "staging", t(i));
        }
        // From this process's head: its record and the three after it.
        for round in 0..2 {
            for i in 0..3 {
                start(&other, "staging", t(10 * round + i));
            }
            let before = me.append_profile();
            start(&me, "staging", t(10 * round + 5));
            let p = me.append_profile() - before;
            assert_eq!((p.lean, p.lean_handed, p.rows_walked), (1, 0, 4), "{p:?}");
        }
        // #11 is this process's head; from a stored checkpoint past it
        // (#13, as another process would store it): #13 and #14.
        for i in 0..3 {
            start(&other, "staging", t(30 + i));
        }
        let hash: String = admin
            .query_one("SELECT hash FROM shipdeck_audit WHERE id = 13", &[])
            .unwrap()
            .get(0);
        set_checkpoint(&mut admin, 13, &hash);
        let before = me.append_profile();
        start(&me, "staging", t(35));
        let p = me.append_profile() - before;
        assert_eq!((p.lean, p.lean_handed, p.rows_walked), (1, 0, 2), "{p:?}");
        // #15 is its head; #16 and #17 another's; a checkpoint at #16
        // forged around the guards.
        for i in 0..2 {
            start(&other, "staging", t(40 + i));
        }
        set_checkpoint(&mut admin, 16, "forged");
        assert_eq!(counts(&mut admin), (17, 17));
        let before = me.append_profile();
        let err = refused(&me);
        assert!(err.contains("record #16"), "{err}");
        assert!(err.contains("checkpoint"), "{err}");
        let p = me.append_profile() - before;
        assert_eq!((p.lean, p.lean_handed), (0, 1), "{p:?}");
        assert_eq!(counts(&mut admin), (17, 17), "nothing written");
    }

    /// A record inserted far past the counter (the team's role may INSERT;
    /// no trigger refuses it) lies beyond the lean read's scan: the log's
    /// highest id, read with the state, hands the check to the full one,
    /// which names the jump and refuses with nothing written — as a fresh
    /// process would.
    #[test]
    fn a_record_inserted_far_ahead_is_seen_by_a_process_that_walked_before() {
        let cluster = common::pg::shared();
        let db = cluster.create_db();
        let url = cluster.url_with_password(&db);
        let me = store(&url);
        let mut admin = cluster.admin(&db);
        for i in 0..3 {
            start(&me, "staging", t(i));
        }
        admin
            .batch_execute(
                "INSERT INTO shipdeck_audit (id, at, actor, action, env, outcome, detail)
                 VALUES (5000000, '2026-01-01T00:00:00Z', 'bob', 'promote', 'staging', 'success', 'far ahead')",
            )
            .unwrap();
        let before = me.append_profile();
        let err = refused(&me);
        assert!(err.contains("5000000"), "{err}");
        let p = me.append_profile() - before;
        assert_eq!((p.lean, p.lean_handed), (0, 1), "{p:?}");
        let n: i64 = admin
            .query_one("SELECT count(*) FROM shipdeck_audit", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 4, "nothing written");
        let fresh = store(&url);
        assert!(refused(&fresh).contains("5000000"));
    }
}

/// The chain's checkpoint held against its record, on both stores, with
/// raw SQL as someone with write access to the database would run it.
mod checkpoint_tamper {
    use super::*;
    use shipdeck::store::ChainRow;

    /// The database under a store, reached around shipdeck.
    enum Raw {
        Sqlite(std::path::PathBuf),
        Pg(String),
    }

    impl Raw {
        fn audit(&self) -> &'static str {
            match self {
                Raw::Sqlite(_) => "audit",
                Raw::Pg(_) => "shipdeck_audit",
            }
        }

        fn checkpoint_table(&self) -> &'static str {
            match self {
                Raw::Sqlite(_) => "chain_checkpoint",
                Raw::Pg(_) => "shipdeck_chain_checkpoint",
            }
        }

        /// Run `sql`; the error's text when it is refused.
        fn exec(&self, sql: &str) -> Result<(), String> {
            match self {
                Raw::Sqlite(p) => rusqlite::Connection::open(p)
                    .and_then(|c| c.execute_batch(sql))
                    .map_err(|e| e.to_string()),
                Raw::Pg(db) => common::pg::shared()
                    .admin(db)
                    .batch_execute(sql)
                    .map_err(|e| format!("{e:?}")),
            }
        }

        fn checkpoint(&self) -> Option<(i64, String)> {
            let sql = format!(
                "SELECT id, hash FROM {} WHERE one = 1",
                self.checkpoint_table()
            );
            match self {
                Raw::Sqlite(p) => {
                    let c = rusqlite::Connection::open(p).unwrap();
                    c.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?))).ok()
                }
                Raw::Pg(db) => common::pg::shared()
                    .admin(db)
                    .query_opt(&sql, &[])
                    .unwrap()
                    .map(|r| (r.get(0), r.get(1))),
            }
        }

        fn rows(&self) -> Vec<ChainRow> {
            let sql = format!(
                "SELECT id, at, actor, action, env, version, from_version, outcome, detail, finishes, note, prev_hash, hash FROM {} ORDER BY id",
                self.audit()
            );
            match self {
                Raw::Sqlite(p) => {
                    let c = rusqlite::Connection::open(p).unwrap();
                    let mut st = c.prepare(&sql).unwrap();
                    st.query_map([], |r| {
                        Ok(ChainRow {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            action: r.get(3)?,
                            env: r.get(4)?,
                            version: r.get(5)?,
                            from_version: r.get(6)?,
                            outcome: r.get(7)?,
                            detail: r.get(8)?,
                            finishes: r.get(9)?,
                            note: r.get(10)?,
                            prev_hash: r.get(11)?,
                            hash: r.get(12)?,
                        })
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
                }
                Raw::Pg(db) => common::pg::shared()
                    .admin(db)
                    .query(&sql, &[])
                    .unwrap()
                    .iter()
                    .map(|r| ChainRow {
                        id: r.get(0),
                        at: r.get(1),
                        actor: r.get(2),
                        action: r.get(3),
                        env: r.get(4),
                        version: r.get(5),
                        from_version: r.get(6),
                        outcome: r.get(7),
                        detail: r.get(8),
                        finishes: r.get(9),
                        note: r.get(10),
                        prev_hash: r.get(11),
                        hash: r.get(12),
                    })
                    .collect(),
            }
        }

        /// Around the triggers: the audit log's, and the checkpoint's guards.
        fn unguarded(&self, sql: &str) {
            let wrapped = match self {
                Raw::Sqlite(_) => format!(
                    "DROP TRIGGER IF EXISTS audit_no_update;
                     DROP TRIGGER IF EXISTS chain_checkpoint_forward;
                     {sql}"
                ),
                Raw::Pg(_) => format!(
                    "ALTER TABLE shipdeck_audit DISABLE TRIGGER USER;
                     ALTER TABLE shipdeck_chain_checkpoint DISABLE TRIGGER USER;
                     {sql};
                     ALTER TABLE shipdeck_audit ENABLE TRIGGER USER;
                     ALTER TABLE shipdeck_chain_checkpoint ENABLE TRIGGER USER;"
                ),
            };
            self.exec(&wrapped).unwrap();
        }
    }

    fn sqlite() -> (tempfile::TempDir, Raw, Box<Open>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("suite.db");
        let raw = Raw::Sqlite(path.clone());
        (
            dir,
            raw,
            Box::new(move || Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>),
        )
    }

    fn pg() -> (Raw, Box<Open>) {
        let cluster = common::pg::shared();
        let db = cluster.create_db();
        let url = cluster.url_with_password(&db);
        (
            Raw::Pg(db),
            Box::new(move || {
                Arc::new(PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap())
                    as Arc<dyn Store>
            }),
        )
    }

    #[track_caller]
    fn refused(s: &dyn Store) -> String {
        let ver = v("v9");
        s.audit_start(&NewAudit {
            at: t(20),
            actor: "mallory",
            action: ActionKind::Promote,
            env: "staging",
            version: Some(&ver),
            from_version: None,
            outcome: Outcome::Started,
            detail: "after the rewrite",
        })
        .expect_err("an append on a disputed chain is refused")
        .to_string()
    }

    /// The checkpoint's record rewritten and every hash from it on
    /// recomputed: a walk from the first record finds the chain intact;
    /// the checkpoint still remembers the old hash, and says so.
    fn a_rehashed_rewrite_is_caught_by_the_checkpoint(raw: &Raw, open: &Open) {
        let s = open();
        for i in 0..4 {
            start(&*s, "staging", t(i));
        }
        assert!(s.verify().unwrap().intact());
        // (SQLite moves it on every walk, PostgreSQL every 64 records.)
        let (cp_id, cp_hash) = raw.checkpoint().expect("a checkpoint after a walk");
        assert!((1..=4).contains(&cp_id), "{cp_id}");
        let mut prev = String::new();
        let mut sql = String::new();
        for mut r in raw.rows() {
            if r.id == cp_id {
                r.detail = "nothing happened".into();
            }
            let h = r.compute_hash(&prev);
            sql.push_str(&format!(
                "UPDATE {} SET detail = '{}', prev_hash = '{prev}', hash = '{h}' WHERE id = {};\n",
                raw.audit(),
                r.detail,
                r.id
            ));
            prev = h;
        }
        raw.unguarded(&sql);
        let fresh = open();
        let report = fresh.verify().unwrap();
        let broken = report.broken.expect("the rewrite is caught");
        assert_eq!(broken.id, cp_id, "{broken}");
        assert!(broken.what.contains("checkpoint"), "{broken}");
        let at = format!("record #{cp_id}");
        let why = fresh.integrity().expect("status reports it");
        assert!(why.contains(&at), "{why}");
        assert!(refused(&*fresh).contains(&at));
        // The checkpoint is the evidence: still there, unchanged.
        assert_eq!(raw.checkpoint(), Some((cp_id, cp_hash)));
    }

    /// The guards refuse a forged, stepped-back or silently dropped
    /// checkpoint; one forged around them is reported, not walked around.
    fn a_forged_checkpoint_is_refused_or_reported(raw: &Raw, open: &Open) {
        let s = open();
        for i in 0..2 {
            start(&*s, "staging", t(i));
        }
        assert!(s.verify().unwrap().intact());
        let table = raw.checkpoint_table();
        let cp = raw.checkpoint().expect("a checkpoint after a walk");
        for sql in [
            format!("UPDATE {table} SET hash = 'forged'"),
            format!("UPDATE {table} SET id = 1"),
            format!("DELETE FROM {table}"),
        ] {
            let e = raw.exec(&sql).expect_err(&sql);
            assert!(e.contains("checkpoint"), "{sql}: {e}");
        }
        if let Raw::Sqlite(_) = raw {
            // REPLACE would delete the row around the delete guard.
            let e = raw
                .exec(&format!(
                    "INSERT OR REPLACE INTO {table} (one, id, hash, at) VALUES (1, 9, 'forged', 'x')"
                ))
                .unwrap_err();
            assert!(e.contains("checkpoint"), "{e}");
        } else {
            let e = raw.exec(&format!("TRUNCATE {table}")).unwrap_err();
            assert!(e.contains("append-only"), "{e}");
        }
        assert_eq!(raw.checkpoint(), Some(cp.clone()));
        raw.unguarded(&format!("UPDATE {table} SET hash = 'forged'"));
        let fresh = open();
        let at = format!("record #{}", cp.0);
        let why = fresh.integrity().expect("a forged checkpoint is reported");
        assert!(why.contains(&at), "{why}");
        assert!(refused(&*fresh).contains(&at));
        let broken = fresh.verify().unwrap().broken.unwrap();
        assert!(broken.what.contains("checkpoint"), "{broken}");
        assert_eq!(raw.checkpoint().map(|c| c.1), Some("forged".to_string()));
    }

    /// Records `from` on rewritten (`detail` of `at`) and rehashed.
    fn rehash_from(raw: &Raw, at: i64) -> String {
        let mut prev = String::new();
        let mut sql = String::new();
        for mut r in raw.rows() {
            if r.id == at {
                r.detail = "nothing happened".into();
            }
            let h = r.compute_hash(&prev);
            sql.push_str(&format!(
                "UPDATE {} SET detail = '{}', prev_hash = '{prev}', hash = '{h}' WHERE id = {};\n",
                raw.audit(),
                r.detail,
                r.id
            ));
            prev = h;
        }
        sql
    }

    /// A running console (one handle) sees a disputed checkpoint, and once
    /// the owner deleted it (README's remedy), reads the chain clean again
    /// without a restart: the report it remembers is of the checkpoint too.
    #[test]
    fn postgres_a_repaired_dispute_reads_clean_on_the_same_handle() {
        let (raw, open) = pg();
        let writer = open();
        for i in 0..2 {
            start(&*writer, "staging", t(i));
        }
        assert_eq!(writer.integrity(), None);
        let table = raw.checkpoint_table();
        let (cp_id, _) = raw.checkpoint().expect("a checkpoint after a walk");
        raw.unguarded(&format!("UPDATE {table} SET hash = 'forged'"));
        // The console opened on the disputed store.
        let s = open();
        let why = s.integrity().expect("the dispute is reported");
        assert!(why.contains(&format!("record #{cp_id}")), "{why}");
        assert!(refused(&*s).contains(&format!("record #{cp_id}")));
        // The owner, having investigated, deletes the disputed checkpoint.
        raw.unguarded(&format!("DELETE FROM {table}"));
        // The console's status read (one round trip) and its integrity read.
        let keys = [shipdeck::store::EnvKeys {
            env: "staging",
            watch: "staging#watch",
            versions: &[],
        }];
        let status = s.status_reads(&keys, 5, t(10), t(0)).unwrap();
        assert_eq!(
            status.integrity, None,
            "the repair is seen without a restart"
        );
        assert_eq!(s.integrity(), None, "the repair is seen without a restart");
        assert!(s.verify().unwrap().intact());
        start(&*s, "staging", t(5));
        assert_eq!(s.integrity(), None);
    }

    /// A store restored from a backup (or failed over to a replica that
    /// lagged) is behind what a running console walked: its own memory of
    /// the head is no evidence of anything and is dropped; the stored
    /// checkpoint's disagreement still is.
    #[test]
    fn postgres_a_store_restored_to_an_earlier_state_is_not_tampered() {
        let (raw, open) = pg();
        let s = open();
        for i in 0..2 {
            start(&*s, "staging", t(i));
        }
        assert_eq!(s.integrity(), None);
        let (cp_id, _) = raw.checkpoint().expect("a checkpoint after a walk");
        assert!((1..=2).contains(&cp_id), "{cp_id}");
        // Two more: the handle's head is #4, the stored checkpoint stays
        // where it was (PostgreSQL moves it once it lags by 16 or more).
        for i in 2..4 {
            start(&*s, "staging", t(i));
        }
        assert_eq!(s.integrity(), None);
        assert_eq!(raw.checkpoint().map(|c| c.0), Some(cp_id));
        // Restored to the backup taken at #2.
        raw.unguarded(&format!(
            "DELETE FROM shipdeck_unfinished WHERE id > 2;
             DELETE FROM {audit} WHERE id > 2;
             ALTER TABLE shipdeck_audit_seq DISABLE TRIGGER USER;
             UPDATE shipdeck_audit_seq SET last = 2;
             ALTER TABLE shipdeck_audit_seq ENABLE TRIGGER USER",
            audit = raw.audit()
        ));
        assert_eq!(s.integrity(), None, "a restore is not tampering");
        assert!(s.verify().unwrap().intact());
        start(&*s, "staging", t(9));
        assert_eq!(s.integrity(), None);
        // A genuine rewrite of the stored checkpoint's record is still
        // caught (by a fresh walk: a handle's cached report is of the key).
        raw.unguarded(&rehash_from(&raw, cp_id));
        let at = format!("record #{cp_id}");
        let why = open().integrity().expect("the rewrite is caught");
        assert!(why.contains(&at), "{why}");
    }

    #[test]
    fn sqlite_a_rehashed_rewrite_is_caught_by_the_checkpoint() {
        let (_dir, raw, open) = sqlite();
        a_rehashed_rewrite_is_caught_by_the_checkpoint(&raw, &*open);
    }

    #[test]
    fn postgres_a_rehashed_rewrite_is_caught_by_the_checkpoint() {
        let (raw, open) = pg();
        a_rehashed_rewrite_is_caught_by_the_checkpoint(&raw, &*open);
    }

    #[test]
    fn sqlite_a_forged_checkpoint_is_refused_or_reported() {
        let (_dir, raw, open) = sqlite();
        a_forged_checkpoint_is_refused_or_reported(&raw, &*open);
    }

    #[test]
    fn postgres_a_forged_checkpoint_is_refused_or_reported() {
        let (raw, open) = pg();
        a_forged_checkpoint_is_refused_or_reported(&raw, &*open);
    }

    /// A process whose checkpoint move falls while another session holds
    /// the checkpoint's row (moving it too) does not queue behind it: the
    /// move is skipped and its appends go on (under 100 appenders the
    /// `pg_store` bench measured ~7.7 ms an append lost to that queue);
    /// once the row is free, the next move due lands.
    #[test]
    fn postgres_a_checkpoint_move_does_not_wait_for_a_held_row() {
        let (raw, open) = pg();
        let Raw::Pg(db) = &raw else { unreachable!() };
        let s = open();
        start(&*s, "staging", t(0));
        assert_eq!(s.integrity(), None);
        let (cp_id, _) = raw.checkpoint().expect("a checkpoint after a walk");
        let mut holder = common::pg::shared().admin(db);
        let mut tx = holder.transaction().unwrap();
        tx.query("SELECT id FROM shipdeck_chain_checkpoint FOR UPDATE", &[])
            .unwrap();
        // More appends than any draw lets the checkpoint lag (at most 1.5
        // times 32): a move falls due among them.
        let (done, finished) = std::sync::mpsc::channel();
        let appender = Arc::clone(&s);
        std::thread::spawn(move || {
            for i in 1..=60 {
                start(&*appender, "staging", t(i));
            }
            let _ = done.send(());
        });
        let went_on = finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .is_ok();
        tx.commit().unwrap();
        assert!(went_on, "the appends waited for the held checkpoint row");
        assert_eq!(raw.checkpoint().map(|c| c.0), Some(cp_id));
        for i in 61..=130 {
            start(&*s, "staging", t(i));
        }
        let (moved, _) = raw.checkpoint().unwrap();
        assert!(moved > cp_id, "{moved} after {cp_id}");
        assert_eq!(s.integrity(), None);
        assert!(s.verify().unwrap().intact());
    }
}

/// The status read's caught versions are those the rollback reads
/// ([`Store::caught_versions`]: every failed window of the environment, in
/// order), among the versions of the recent deploys and the ones they
/// replaced only — what `plan_rollback` can pick from that history — so a
/// view never offers a version an earlier window caught.
fn status_reads_know_the_caught_versions_the_rollback_can_pick(open: &Open) {
    let s = open();
    // Production v1 → v2 → v3 → v4; the view reads the last two deploys.
    for (i, (ver, from)) in [("v2", "v1"), ("v3", "v2"), ("v4", "v3")]
        .into_iter()
        .enumerate()
    {
        let id = start(&*s, "production", t(i as i64));
        let d = DeployRecord {
            from_version: Some(v(from)),
            ..deploy("production", ver, i as i64)
        };
        s.record_deploy(id, &d, "ok").unwrap();
    }
    let window = |env: &str, ver: &str, at: i64, outcome: Option<Outcome>| {
        let version = v(ver);
        let id = s
            .audit_start(&NewAudit {
                at: t(at),
                actor: "console",
                action: ActionKind::Monitor,
                env,
                version: Some(&version),
                from_version: None,
                outcome: if outcome.is_some() {
                    Outcome::Started
                } else {
                    Outcome::Failed
                },
                detail: "window",
            })
            .unwrap();
        if let Some(o) = outcome {
            s.audit_finish(id, t(at + 1), o, "verdict").unwrap();
        }
    };
    window("production", "v3", 10, Some(Outcome::Failed));
    window("production", "v1", 12, Some(Outcome::Failed)); // not in the recent deploys
    window("production", "v2", 14, None); // recorded failed at once
    window("production", "v3", 16, Some(Outcome::Failed));
    window("production", "v4", 18, Some(Outcome::Succeeded));
    window("production", "v4", 20, Some(Outcome::Unknown));
    window("staging", "v4", 22, Some(Outcome::Failed)); // another env
    let keys = [
        EnvKeys {
            env: "production",
            watch: "production#watch",
            versions: &[],
        },
        EnvKeys {
            env: "staging",
            watch: "staging#watch",
            versions: &[],
        },
    ];
    let got = s.status_reads(&keys, 2, t(30), t(0)).unwrap();
    for (k, e) in keys.iter().zip(&got.envs) {
        let recent = s.recent_deploys(k.env, 2).unwrap();
        let caught = caught_among(s.caught_versions(k.env).unwrap(), &recent);
        assert_eq!(e.caught, caught, "{}", k.env);
    }
    assert_eq!(got.envs[0].caught, [v("v3"), v("v2")]);
    assert_eq!(s.caught_versions("production").unwrap().len(), 3);
    // Staging deployed nothing: no version it can roll back to.
    assert!(got.envs[1].caught.is_empty());
}

/// What a deploy lock held by another process is for: the status read
/// carries the lock (holder, since) and its holder's started record without
/// an outcome (promote or rollback, at or after the lock), from which the
/// status says `rolling_back` rather than `deploying`.
fn status_reads_say_what_a_lock_held_elsewhere_is_for(open: &Open) {
    let (s, other) = (open(), open());
    let me = std::process::id();
    let here = shipdeck::host::hostname();
    // Real times: a shared store dates the lock on its own clock.
    let base = now_ms();
    for (i, (env, action)) in [
        ("production", ActionKind::Rollback),
        ("staging", ActionKind::Promote),
    ]
    .into_iter()
    .enumerate()
    {
        let at = base + chrono::Duration::seconds(i as i64 * 2);
        other
            .try_lock(&lock_at(
                env,
                "bob@laptop",
                me,
                &here,
                at,
                chrono::Duration::hours(1),
            ))
            .unwrap()
            .unwrap();
        let (ver, from) = (v("v1"), v("v2"));
        other
            .audit_start(&NewAudit {
                at,
                actor: "bob@laptop",
                action,
                env,
                version: Some(&ver),
                from_version: Some(&from),
                outcome: Outcome::Started,
                detail: "deploying",
            })
            .unwrap();
    }
    let keys = [
        EnvKeys {
            env: "production",
            watch: "production#watch",
            versions: &[],
        },
        EnvKeys {
            env: "staging",
            watch: "staging#watch",
            versions: &[],
        },
    ];
    let got = s.status_reads(&keys, 2, Utc::now(), base).unwrap();
    // The engine's own reading of the lock (not a copy of it here: a
    // change to either side that parts them fails this test).
    for (k, (e, kind)) in keys.iter().zip(
        got.envs
            .iter()
            .zip([DeployKind::Rollback, DeployKind::Promote]),
    ) {
        let held = e.lock.as_ref().expect("the lock held elsewhere");
        assert_eq!(held.holder, "bob@laptop", "{}", k.env);
        assert_eq!(
            shipdeck::engine::lock_action(k.env, held, &got.unfinished),
            Some(kind),
            "{}: {:?}",
            k.env,
            got.unfinished
        );
    }
}

/// A holder whose clock runs 20 minutes behind the store's: its started
/// record is dated 20 minutes before its lock, further than `HOLDER_SKEW`
/// matches by time. Linked as it is appended (`audit_start_held`), the
/// record is the lock's all the same: status says what the lock is for,
/// history shows the deploy in progress, and reconcile's reading
/// (`LockInfo::guards`) leaves it alone — while a dead deploy started a
/// minute before the lock (close enough to pass for the lock's by time)
/// is not taken for it. A renewal keeps the link.
fn a_skewed_holders_live_deploy_is_known_by_its_lock(open: &Open) {
    let (holder, s) = (open(), open());
    let me = std::process::id();
    let here = shipdeck::host::hostname();
    let now = now_ms();
    let (ver, from) = (v("v2"), v("v1"));
    let rec = |actor, at| NewAudit {
        at,
        actor,
        action: ActionKind::Promote,
        env: "production",
        version: Some(&ver),
        from_version: Some(&from),
        outcome: Outcome::Started,
        detail: "deploying",
    };
    // Carol's deploy died a minute before Alice took the lock.
    let dead = s
        .audit_start(&rec("carol", now - chrono::Duration::minutes(1)))
        .unwrap();
    let lock = lock_at(
        "production",
        "alice",
        me,
        &here,
        now,
        chrono::Duration::hours(1),
    );
    holder.try_lock(&lock).unwrap().unwrap();
    // Alice's clock: 20 minutes behind the store's.
    let live = holder
        .audit_start_held(&rec("alice", now - chrono::Duration::minutes(20)), &lock)
        .unwrap();
    assert!(dead < live);
    let held = s.lock_of("production", Utc::now()).unwrap().expect("held");
    assert_eq!(held.audit_id, Some(live));

    // Status: what the lock is for, from the one-round-trip reads.
    let keys = [EnvKeys {
        env: "production",
        watch: "production#watch",
        versions: &[],
    }];
    let got = s.status_reads(&keys, 2, Utc::now(), now).unwrap();
    let l = got.envs[0].lock.as_ref().expect("the lock held elsewhere");
    assert_eq!(l.audit_id, Some(live));
    assert_eq!(
        shipdeck::engine::lock_action("production", l, &got.unfinished),
        Some(DeployKind::Promote),
        "{:?}",
        got.unfinished
    );
    // History: Alice's deploy in progress, Carol's dead one unknown.
    let h = s.history(Some("production"), 10).unwrap();
    let outcome = |id: i64| h.iter().find(|e| e.id == id).map(|e| e.outcome);
    assert_eq!(outcome(live), Some(Outcome::Started), "{h:?}");
    assert_eq!(outcome(dead), Some(Outcome::Unknown), "{h:?}");
    // Reconcile: only Alice's deploy is the lock's, in flight.
    let guarded: Vec<i64> = s
        .unfinished()
        .unwrap()
        .iter()
        .filter(|u| u.env == "production" && held.guards(u.id, u.at))
        .map(|u| u.id)
        .collect();
    assert_eq!(guarded, vec![live]);
    // Her renewal (dated when sent) keeps the link.
    let renewed = now_ms();
    holder
        .try_lock(&LockInfo {
            acquired_at: renewed,
            expires_at: renewed + chrono::Duration::hours(1),
            ..lock.clone()
        })
        .unwrap()
        .unwrap();
    let held = s.lock_of("production", Utc::now()).unwrap().expect("held");
    assert_eq!(held.audit_id, Some(live));
}

/// A lock another holder takes over (its holder's process dead) is linked
/// to none of the dead holder's records: the new holder's own record,
/// once appended, is the one.
fn a_lock_taken_over_by_another_holder_is_linked_to_nothing(open: &Open) {
    let (ghost_handle, s) = (open(), open());
    let here = shipdeck::host::hostname();
    let now = now_ms();
    let hour = chrono::Duration::hours(1);
    let (ver, from) = (v("v2"), v("v1"));
    let rec = |actor| NewAudit {
        at: Utc::now(),
        actor,
        action: ActionKind::Promote,
        env: "staging",
        version: Some(&ver),
        from_version: Some(&from),
        outcome: Outcome::Started,
        detail: "deploying",
    };
    let ghost = lock_at("staging", "ghost", u32::MAX - 7, &here, now, hour);
    ghost_handle.try_lock(&ghost).unwrap().unwrap();
    let old = ghost_handle
        .audit_start_held(&rec("ghost"), &ghost)
        .unwrap();
    let alice = lock_at("staging", "alice", std::process::id(), &here, now, hour);
    assert_eq!(s.try_lock(&alice).unwrap(), Ok(()));
    let held = s.lock_of("staging", Utc::now()).unwrap().expect("held");
    assert_eq!((held.holder.as_str(), held.audit_id), ("alice", None));
    // Alice's record is hers; and appending one for a lock she no longer
    // holds (the ghost's) links nothing.
    let hers = s.audit_start_held(&rec("alice"), &alice).unwrap();
    ghost_handle
        .audit_start_held(&rec("ghost"), &ghost)
        .unwrap();
    let held = s.lock_of("staging", Utc::now()).unwrap().expect("held");
    assert_eq!(held.audit_id, Some(hers));
    assert!(!held.guards(old, Utc::now()));
}

/// Two machines or containers named alike ("ubuntu", docker's
/// `--hostname ci`): the same hostname, perhaps the same pid, another pid
/// space. A lock row's holder is faked there by rewriting its pid space
/// with raw SQL, as another such shipdeck would have written it.
mod namesakes {
    use super::*;

    /// The database under a store, reached around shipdeck.
    enum Raw {
        Sqlite(std::path::PathBuf),
        Pg(String),
    }

    impl Raw {
        fn exec(&self, sql: &str) {
            match self {
                Raw::Sqlite(p) => rusqlite::Connection::open(p)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap(),
                Raw::Pg(db) => common::pg::shared().admin(db).batch_execute(sql).unwrap(),
            }
        }

        /// Whether `env`'s lock row has no link, and no pid space.
        fn nulls(&self, env: &str) -> (bool, bool) {
            let sql = format!(
                "SELECT audit_id IS NULL, pid_space IS NULL FROM {} WHERE env = '{env}'",
                self.locks()
            );
            match self {
                Raw::Sqlite(p) => rusqlite::Connection::open(p)
                    .unwrap()
                    .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap(),
                Raw::Pg(db) => {
                    let row = common::pg::shared().admin(db).query_one(&sql, &[]).unwrap();
                    (row.get(0), row.get(1))
                }
            }
        }

        fn locks(&self) -> &'static str {
            match self {
                Raw::Sqlite(_) => "locks",
                Raw::Pg(_) => "shipdeck_locks",
            }
        }

        /// `env`'s lock row moved to another machine's pid space (`NULL`:
        /// as a shipdeck from before pid spaces wrote it).
        fn move_to(&self, env: &str, space: Option<&str>) {
            let space = space.map_or("NULL".to_string(), |s| format!("'{s}'"));
            self.exec(&format!(
                "UPDATE {} SET pid_space = {space} WHERE env = '{env}'",
                self.locks()
            ));
        }
    }

    fn sqlite() -> (tempfile::TempDir, Raw, Box<Open>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("suite.db");
        let raw = Raw::Sqlite(path.clone());
        (
            dir,
            raw,
            Box::new(move || Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>),
        )
    }

    fn pg() -> (Raw, Box<Open>) {
        let cluster = common::pg::shared();
        let db = cluster.create_db();
        let url = cluster.url_with_password(&db);
        (
            Raw::Pg(db),
            Box::new(move || {
                Arc::new(PgStore::connect(PgTarget::parse(&url, None).unwrap()).unwrap())
                    as Arc<dyn Store>
            }),
        )
    }

    /// Another machine's pid space under this very hostname.
    fn elsewhere() -> String {
        format!(
            "{} 00000000-0000-0000-0000-000000000000 pid:[1]",
            shipdeck::host::hostname()
        )
    }

    /// A live holder with this hostname and this process's pid, in another
    /// pid space: not this process's lock, so neither renewed as its own
    /// nor released by its unlock.
    fn same_pid_and_host_in_another_space_is_not_ours(raw: &Raw, open: &Open) {
        let (holder, taker) = (open(), open());
        let (me, host) = (std::process::id(), shipdeck::host::hostname());
        let ten = chrono::Duration::minutes(10);
        let theirs = lock_at("production", "ci-a", me, &host, now_ms(), ten);
        assert_eq!(holder.try_lock(&theirs).unwrap(), Ok(()));
        raw.move_to("production", Some(&elsewhere()));
        let mine = lock_at("production", "ci-b", me, &host, now_ms(), ten);
        let held = taker.try_lock(&mine).unwrap().unwrap_err();
        assert_eq!(held.holder, "ci-a");
        taker.unlock("production", me, &host).unwrap();
        let held = taker.lock_of("production", Utc::now()).unwrap();
        assert_eq!(held.map(|l| l.holder), Some("ci-a".to_string()));
    }

    /// A holder in another pid space whose pid does not exist here: alive
    /// as far as this process can tell, so not taken while its lock session
    /// lives (PostgreSQL) or until it expires (SQLite).
    fn an_unseen_pid_in_another_space_is_not_dead(raw: &Raw, open: &Open) {
        let (holder, taker) = (open(), open());
        let host = shipdeck::host::hostname();
        let ttl = match raw {
            Raw::Sqlite(_) => chrono::Duration::seconds(3),
            Raw::Pg(_) => chrono::Duration::minutes(10),
        };
        let theirs = lock_at("staging", "ci-a", u32::MAX - 7, &host, now_ms(), ttl);
        assert_eq!(holder.try_lock(&theirs).unwrap(), Ok(()));
        raw.move_to("staging", Some(&elsewhere()));
        let mine = || {
            lock_at(
                "staging",
                "ci-b",
                std::process::id(),
                &host,
                now_ms(),
                chrono::Duration::minutes(10),
            )
        };
        let held = taker.try_lock(&mine()).unwrap().unwrap_err();
        assert_eq!(held.holder, "ci-a");
        let read = taker.lock_of("staging", Utc::now()).unwrap();
        assert_eq!(read.map(|l| l.holder), Some("ci-a".to_string()));
        // The status reads (on PostgreSQL, a path of their own) agree.
        let keys = [EnvKeys {
            env: "staging",
            watch: "staging#watch",
            versions: &[],
        }];
        let got = taker.status_reads(&keys, 2, Utc::now(), now_ms()).unwrap();
        let read = got.envs[0].lock.as_ref().map(|l| l.holder.as_str());
        assert_eq!(read, Some("ci-a"));
        // Its session ended (PostgreSQL) or its lock lapsed (SQLite): free.
        drop(holder);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            match taker.try_lock(&mine()).unwrap() {
                Ok(()) => break,
                Err(h) if std::time::Instant::now() < until => {
                    assert_eq!(h.holder, "ci-a");
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(h) => panic!("still held: {h:?}"),
            }
        }
    }

    /// A console row as an older shipdeck writes it (no pid space) still
    /// reads — without a space — and its leave (no space either) removes
    /// it. A console of this hostname in another pid space is listed,
    /// whatever its pid means here; one of this space whose pid is dead is
    /// not.
    fn consoles_of_older_shipdecks_and_other_spaces_read(raw: &Raw, open: &Open) {
        let s = open();
        let host = shipdeck::host::hostname();
        let table = match raw {
            Raw::Sqlite(_) => "presence",
            Raw::Pg(_) => "shipdeck_presence",
        };
        let seen = now_ms().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        raw.exec(&format!(
            "INSERT INTO {table} (host, pid, actor, since, last_seen)
             VALUES ('laptop-a', 7, 'alice', '{seen}', '{seen}')"
        ));
        let old = s.present(now_ms() - chrono::Duration::minutes(1)).unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(
            (old[0].actor.as_str(), old[0].pid_space.as_deref()),
            ("alice", None)
        );
        s.leave("laptop-a", 7, None).unwrap();
        let fresh = now_ms() - chrono::Duration::minutes(1);
        assert!(s.present(fresh).unwrap().is_empty());
        let at = now_ms();
        let gone = u32::MAX - 7;
        let there = Presence {
            pid_space: Some(elsewhere()),
            ..console("ci-a", &host, gone, 0, 0)
        };
        let there = Presence {
            since: at,
            last_seen: at,
            ..there
        };
        let here = Presence {
            pid_space: shipdeck::host::pid_space(),
            actor: "ghost".into(),
            ..there.clone()
        };
        s.heartbeat(&there, fresh).unwrap();
        s.heartbeat(&here, fresh).unwrap();
        assert_eq!(s.present(fresh).unwrap(), vec![there]);
    }

    /// A row of an older shipdeck (no pid space) whose pid is dead under
    /// this hostname is stale at once, as before.
    fn an_older_row_of_a_dead_local_pid_is_stale(raw: &Raw, open: &Open) {
        let (holder, taker) = (open(), open());
        let host = shipdeck::host::hostname();
        let ten = chrono::Duration::minutes(10);
        let ghost = lock_at("staging", "ghost", u32::MAX - 7, &host, now_ms(), ten);
        assert_eq!(holder.try_lock(&ghost).unwrap(), Ok(()));
        raw.move_to("staging", None);
        assert_eq!(taker.lock_of("staging", Utc::now()).unwrap(), None);
        let next = lock_at("staging", "alice", std::process::id(), &host, now_ms(), ten);
        assert_eq!(taker.try_lock(&next).unwrap(), Ok(()));
    }

    /// A holder from before pid spaces and links (an older shipdeck still
    /// running through the upgrade) takes the row over, writing only what
    /// it knows: the previous holder's link and pid space go with it, so
    /// neither its dead records nor its pid space are read as the new one's.
    fn an_older_writer_taking_a_row_over_leaves_no_link_or_space_behind(raw: &Raw, open: &Open) {
        let store = open();
        let (me, host) = (std::process::id(), shipdeck::host::hostname());
        let ten = chrono::Duration::minutes(10);
        let mine = lock_at("production", "alice", me, &host, now_ms(), ten);
        assert_eq!(store.try_lock(&mine).unwrap(), Ok(()));
        raw.exec(&format!(
            "UPDATE {} SET audit_id = 100 WHERE env = 'production'",
            raw.locks()
        ));
        assert_eq!(raw.nulls("production"), (false, false));
        // The older shipdeck's upsert: holder, pid and host only.
        raw.exec(&format!(
            "UPDATE {} SET holder = 'bob', pid = 4242, host = 'bobs-laptop' WHERE env = 'production'",
            raw.locks()
        ));
        assert_eq!(raw.nulls("production"), (true, true));
        // A renewal by the same holder keeps both.
        let fresh = open();
        let again = lock_at("staging", "alice", me, &host, now_ms(), ten);
        assert_eq!(fresh.try_lock(&again).unwrap(), Ok(()));
        raw.exec(&format!(
            "UPDATE {} SET audit_id = 7 WHERE env = 'staging'",
            raw.locks()
        ));
        assert_eq!(fresh.try_lock(&again).unwrap(), Ok(()));
        assert_eq!(raw.nulls("staging"), (false, false));
    }

    macro_rules! both {
        ($($case:ident),* $(,)?) => {
            mod sqlite {
                $( #[test] fn $case() { let (_keep, raw, open) = super::sqlite(); super::$case(&raw, &*open); } )*
            }
            mod postgres {
                $( #[test] fn $case() { let (raw, open) = super::pg(); super::$case(&raw, &*open); } )*
            }
        };
    }

    both!(
        an_older_writer_taking_a_row_over_leaves_no_link_or_space_behind,
        same_pid_and_host_in_another_space_is_not_ours,
        an_unseen_pid_in_another_space_is_not_dead,
        an_older_row_of_a_dead_local_pid_is_stale,
        consoles_of_older_shipdecks_and_other_spaces_read,
    );
}
