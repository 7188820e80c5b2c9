//! The monitoring window against a store that fails mid-window: an outage
//! (unreachable) lets it go on; a refusal that waiting does not heal
//! (permission denied) ends it, or leaves a regression unrolled-back,
//! saying so. The in-process demo fleet serves the metrics.

use super::*;
use crate::domain::EnvState;
use crate::domain::{Approval, AuditEntry, Decision};
use crate::store::NewAudit;
use crate::store::{
    ChainReport, Changes, MonitorRecord, Presence, SqliteStore, Store, StoreError, Unfinished,
};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

mod canary;

/// A fault the test switches on: what the server would answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Unreachable,
    Denied,
}

impl Fault {
    fn error(self, table: &str) -> StoreError {
        match self {
            Fault::Unreachable => StoreError::Unreachable {
                store: "postgres://db/team".into(),
                host: "db:5432".into(),
                cause: "connection refused".into(),
                sqlstate: None,
                lasting: false,
            },
            Fault::Denied => StoreError::Postgres {
                store: "postgres://db/team".into(),
                cause: format!("permission denied for table {table} (42501)"),
                sqlstate: crate::store::SqlState::new("42501"),
            },
        }
    }
}

/// SQLite with switchable faults: on the locks (the window's claim) and on
/// the records a verdict or a rollback writes (audit, monitor, approval,
/// deploy), as a REVOKE on those tables would answer.
struct Faulty {
    inner: SqliteStore,
    locks: Arc<Mutex<Option<Fault>>>,
    writes: Arc<Mutex<Option<Fault>>>,
    /// When set, the store drops (unreachable, locks and writes) just
    /// after it took a No-Go: a window's verdict went in, what follows
    /// it (the rollback and its records) meets an outage.
    drop_after_no_go: Arc<AtomicBool>,
    /// When set, the store fails with this fault (locks and writes) just
    /// after it took the record of a canary weight set to 0: a canary's
    /// rollback ran, its outcome meets the fault.
    after_weight_zero: Arc<Mutex<Option<Fault>>>,
    /// The started records of weight changes to 0, whose outcome
    /// (`audit_finish`) arms `after_weight_zero`.
    weight_zero: Arc<Mutex<Vec<i64>>>,
    /// When set, reading the audit log (history) fails with this fault.
    reads: Arc<Mutex<Option<Fault>>>,
}

macro_rules! pass {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {
        $(fn $name(&self, $($a: $t),*) -> $r { self.inner.$name($($a),*) })*
    };
}

macro_rules! refused_writes {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {
        $(fn $name(&self, $($a: $t),*) -> $r {
            if let Some(f) = *self.writes.lock().unwrap() {
                return Err(f.error("shipdeck_audit"));
            }
            self.inner.$name($($a),*)
        })*
    };
}

impl Faulty {
    /// A canary's weight was recorded set to 0: arm `after_weight_zero`.
    fn weight_zero_set(&self) {
        if let Some(f) = self.after_weight_zero.lock().unwrap().take() {
            *self.locks.lock().unwrap() = Some(f);
            *self.writes.lock().unwrap() = Some(f);
        }
    }
}

impl Store for Faulty {
    pass! {
        deploys(env: Option<&str>) -> Result<Vec<DeployRecord>, StoreError>;
        latest_deploys() -> Result<Vec<DeployRecord>, StoreError>;
        recent_deploys(env: &str, limit: usize) -> Result<Vec<DeployRecord>, StoreError>;
        approvals(env: &str) -> Result<Vec<Approval>, StoreError>;
        caught_versions(env: &str) -> Result<Vec<Version>, StoreError>;
        unlock(env: &str, pid: u32, host: &str) -> Result<(), StoreError>;
        lock_of(env: &str, now: DateTime<Utc>) -> Result<Option<LockInfo>, StoreError>;
        last_monitor(env: &str) -> Result<Option<MonitorRecord>, StoreError>;
        record_sample(env: &str, at: DateTime<Utc>, s: &Sample, keep: chrono::Duration) -> Result<(), StoreError>;
        samples(env: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, Sample)>, StoreError>;
        verify() -> Result<ChainReport, StoreError>;
        integrity() -> Option<String>;
        unfinished() -> Result<Vec<Unfinished>, StoreError>;
        changes() -> Result<Changes, StoreError>;
        heartbeat(p: &Presence, expire_before: DateTime<Utc>) -> Result<(), StoreError>;
        leave(host: &str, pid: u32, pid_space: Option<&str>) -> Result<(), StoreError>;
        present(fresh_since: DateTime<Utc>) -> Result<Vec<Presence>, StoreError>;
    }
    refused_writes! {
        record_deploy(started: i64, rec: &DeployRecord, detail: &str) -> Result<(), StoreError>;
        record_monitor(rec: &MonitorRecord) -> Result<(), StoreError>;
        audit_start_held(rec: &NewAudit<'_>, lock: &LockInfo) -> Result<i64, StoreError>;
    }
    fn audit_start(&self, rec: &NewAudit<'_>) -> Result<i64, StoreError> {
        if let Some(f) = *self.writes.lock().unwrap() {
            return Err(f.error("shipdeck_audit"));
        }
        let id = self.inner.audit_start(rec)?;
        if rec.action == ActionKind::Canary && rec.detail.starts_with("weight 0%") {
            match rec.outcome {
                Outcome::Started => self.weight_zero.lock().unwrap().push(id),
                Outcome::Succeeded => self.weight_zero_set(),
                _ => {}
            }
        }
        Ok(id)
    }
    fn audit_finish(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        if let Some(f) = *self.writes.lock().unwrap() {
            return Err(f.error("shipdeck_audit"));
        }
        self.inner.audit_finish(started, at, outcome, detail)?;
        if outcome == Outcome::Succeeded && self.weight_zero.lock().unwrap().contains(&started) {
            self.weight_zero_set();
        }
        Ok(())
    }
    fn history(&self, env: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        if let Some(f) = *self.reads.lock().unwrap() {
            return Err(f.error("shipdeck_audit"));
        }
        self.inner.history(env, limit)
    }
    fn canary_history(&self, env: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        if let Some(f) = *self.reads.lock().unwrap() {
            return Err(f.error("shipdeck_audit"));
        }
        self.inner.canary_history(env, limit)
    }
    fn record_approval(&self, a: &Approval) -> Result<i64, StoreError> {
        if let Some(f) = *self.writes.lock().unwrap() {
            return Err(f.error("shipdeck_approvals"));
        }
        let id = self.inner.record_approval(a)?;
        if a.decision == Decision::NoGo && self.drop_after_no_go.swap(false, Ordering::SeqCst) {
            *self.locks.lock().unwrap() = Some(Fault::Unreachable);
            *self.writes.lock().unwrap() = Some(Fault::Unreachable);
        }
        Ok(id)
    }
    fn try_lock(&self, lock: &LockInfo) -> Result<Result<(), LockInfo>, StoreError> {
        if let Some(f) = *self.locks.lock().unwrap() {
            return Err(f.error("shipdeck_locks"));
        }
        self.inner.try_lock(lock)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

struct Rig {
    engine: Engine,
    locks: Arc<Mutex<Option<Fault>>>,
    writes: Arc<Mutex<Option<Fault>>>,
    drop_after_no_go: Arc<AtomicBool>,
    after_weight_zero: Arc<Mutex<Option<Fault>>>,
    reads: Arc<Mutex<Option<Fault>>>,
    _fleet: crate::demo::FleetHandle,
    _dir: tempfile::TempDir,
}

/// The demo fleet in-process (1 s steps) and an engine on a faulty store;
/// production is monitored, `[monitor]` as given.
async fn rig(monitor: &str) -> Rig {
    rig_with(monitor, false).await
}

/// As [`rig`]; with `canary`, production has the demo fleet's canary.
async fn rig_with(monitor: &str, canary: bool) -> Rig {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fleet = crate::demo::spawn(listener, crate::demo::FleetOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = fleet.addr;
    let mut src = format!(
        "project = \"faults\"\n[store]\npath = \"{}\"\n{monitor}\n[metrics]\nsource = \"scrape\"\nurl = \"http://{a}/metrics\"\nstep = \"1s\"\n",
        dir.path().join("s.db").display()
    );
    for env in ["staging", "production"] {
        src.push_str(&format!(
            "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\ndeploy = {{ webhook = \"http://{a}/envs/{env}/deploy\", timeout = \"30s\", poll = \"200ms\" }}\n"
        ));
    }
    src.push_str("monitored = true\n");
    if canary {
        src.push_str(&crate::demo::canary_table(&format!("http://{a}"), "1s"));
    }
    let cfg = crate::config::Config::parse(&src, std::path::Path::new("<test>")).unwrap();
    let locks = Arc::new(Mutex::new(None));
    let writes = Arc::new(Mutex::new(None));
    let drop_after_no_go = Arc::new(AtomicBool::new(false));
    let after_weight_zero = Arc::new(Mutex::new(None));
    let reads = Arc::new(Mutex::new(None));
    let store = Faulty {
        inner: SqliteStore::open(&dir.path().join("s.db")).unwrap(),
        locks: locks.clone(),
        writes: writes.clone(),
        drop_after_no_go: drop_after_no_go.clone(),
        after_weight_zero: after_weight_zero.clone(),
        weight_zero: Arc::default(),
        reads: reads.clone(),
    };
    Rig {
        engine: Engine::with_store(cfg, Arc::new(store)),
        locks,
        writes,
        drop_after_no_go,
        after_weight_zero,
        reads,
        _fleet: fleet,
        _dir: dir,
    }
}

type Watch = tokio::task::JoinHandle<Result<WatchOutcome, EngineError>>;

/// Start the window of production and wait (generously) until it opened.
async fn open_window(
    e: &Engine,
    window: Duration,
) -> (Watch, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn({
        let e = e.clone();
        async move { e.watch("production", Some(window), Some(tx)).await }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Event::MonitorStarted { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("the window never opened: {other:?} / {:?}", task.await),
        }
    }
    (task, rx)
}

/// The bad release promoted to production and its 60 s window opened, then
/// `fault` set on the store: the window's outcome (a regression, not
/// rolled back) and the events it sent, all checked for a rollback that
/// must not have run; production still runs the bad release.
async fn regression_not_rolled_back(
    r: &Rig,
    fault: &Mutex<Option<Fault>>,
) -> (WatchOutcome, Vec<Event>) {
    let e = &r.engine;
    promote_bad_release(e).await;
    let (task, mut rx) = open_window(e, Duration::from_secs(60)).await;
    *fault.lock().unwrap() = Some(Fault::Denied);
    let out = tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert_eq!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
    assert!(out.rolled_back.is_none(), "{out:?}");
    let mut events = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        assert!(
            !matches!(&ev, Event::DeployStarted { rollback: true, .. }),
            "no rollback ran: {ev:?}"
        );
        events.push(ev);
    }
    let runs = e.inner.envs[1].strategy.read_version().await.unwrap();
    assert_eq!(runs.to_string(), crate::demo::BAD_VERSION);
    (out, events)
}

/// Events received until `f` matches one (at most 30 s).
async fn until_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    f: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ev)) if f(&ev) => return ev,
            Ok(Some(_)) => {}
            other => panic!("the event never came: {other:?}"),
        }
    }
}

/// An outage of the claim is no reason to stop judging: the window goes
/// on, says so, and says when the store is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_window_goes_on_through_an_outage_of_its_claim() {
    let r = rig("").await;
    let (task, mut rx) = open_window(&r.engine, Duration::from_secs(600)).await;
    *r.locks.lock().unwrap() = Some(Fault::Unreachable);
    let said = until_event(&mut rx, |ev| matches!(ev, Event::StoreOutage { .. })).await;
    let Event::StoreOutage { detail, .. } = said else {
        unreachable!()
    };
    assert!(
        detail.contains("the store is unreachable for")
            && detail.contains("the monitoring window goes on"),
        "{detail}"
    );
    // Samples are still judged while it lasts.
    until_event(&mut rx, |ev| matches!(ev, Event::MonitorSample { .. })).await;
    assert!(!task.is_finished(), "{:?}", task.await);
    *r.locks.lock().unwrap() = None;
    let back = until_event(
        &mut rx,
        |ev| matches!(ev, Event::StoreOutage { detail, .. } if detail.contains("is back")),
    )
    .await;
    assert!(format!("{back:?}").contains("goes on"), "{back:?}");
    assert!(!task.is_finished(), "{:?}", task.await);
    task.abort();
}

/// A claim the store refuses for good (permission denied on its table)
/// is said at once, as what it is — not "unreachable" every 10 s — and the
/// window judges on to its end without it: a regression later in it must
/// still be caught. Its outcome names the refusal (exit 1 when healthy).
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_refused_for_good_is_told_at_once_and_the_window_judges_on() {
    let r = rig("[monitor]\nwindow = \"12s\"\nbaseline = \"20s\"\nauto_rollback = true\n").await;
    baseline(&r.engine).await;
    let (task, mut rx) = open_window(&r.engine, Duration::from_secs(12)).await;
    *r.locks.lock().unwrap() = Some(Fault::Denied);
    let said = until_event(&mut rx, |ev| matches!(ev, Event::StoreOutage { .. })).await;
    let text = format!("{said:?}");
    assert!(
        text.contains("the store refuses it, and waiting will not heal that")
            && text.contains("permission denied for table shipdeck_locks")
            && text.contains("judges on to its end without its claim")
            && !text.contains("unreachable"),
        "{text}"
    );
    assert!(!task.is_finished(), "it judges on: {:?}", task.await);
    // Samples are still judged after the refusal.
    until_event(&mut rx, |ev| matches!(ev, Event::MonitorSample { .. })).await;
    let out = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert_ne!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
    let refused = out.claim_refused.as_deref().unwrap_or_default();
    assert!(
        refused.contains("permission denied for table shipdeck_locks"),
        "{out:?}"
    );
    assert!(
        out.rolled_back.is_none() && out.rollback_error.is_none(),
        "{out:?}"
    );
    while let Ok(ev) = rx.try_recv() {
        assert!(
            !format!("{ev:?}").contains("unreachable"),
            "no outage was said: {ev:?}"
        );
    }
    // The audit table still takes writes: the window's record has its end.
    assert!(r.engine.settle(Duration::from_secs(20)).await);
    let h = r.engine.history(Some("production"), 5).await.unwrap();
    let window = h
        .iter()
        .find(|a| a.action == ActionKind::Monitor)
        .expect("the window's audit record");
    assert_ne!(window.outcome, Outcome::Started, "{window:?}");
    // The baseline note is said once, by the start (`history` joins the
    // start and end details: the end repeated it).
    assert!(!out.baseline.is_empty());
    assert_eq!(
        window.detail.matches(out.baseline.as_str()).count(),
        1,
        "{window:?}"
    );
    let st = r.engine.status().await;
    assert_ne!(st.environments[1].state, EnvState::Monitoring);
}

/// A baseline for production: the scrape source keeps none of its own.
async fn baseline(e: &Engine) {
    for _ in 0..8 {
        e.status().await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

/// Promote the demo fleet's bad release from staging to production (Go
/// recorded, a baseline first).
async fn promote_bad_release(e: &Engine) {
    e.approve("production", Decision::Go, None, None)
        .await
        .unwrap();
    baseline(e).await;
    let rec = e
        .promote(
            "production",
            None,
            crate::engine::Confirm::Unseen {
                accept_warnings: true,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(rec.version.to_string(), crate::demo::BAD_VERSION);
}

/// A regression caught after the store refused the claim for good: told
/// and not rolled back automatically (no lock without the store), saying
/// how to go on; its verdict is recorded where the store still takes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_regression_caught_after_the_claim_was_refused_is_told_and_not_rolled_back() {
    let r = rig("[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\nauto_rollback = true\n").await;
    let (out, _) = regression_not_rolled_back(&r, &r.locks).await;
    let rb = out.rollback_error.as_deref().unwrap_or_default();
    assert!(
        rb.starts_with("not rolled back automatically: the store refuses it")
            && rb.contains("permission denied for table shipdeck_locks")
            && rb.contains("roll back by hand")
            && rb.contains("shipdeck rollback production"),
        "{rb}"
    );
    assert!(out.claim_refused.is_some(), "{out:?}");
    assert!(out.unrecorded.is_none(), "{out:?}");
    let approvals = r.engine.inner.store.approvals("production").await.unwrap();
    assert!(
        approvals.iter().any(|a| a.decision == Decision::NoGo),
        "the No-Go is recorded: {approvals:?}"
    );
}

/// The verdict went in, then the store dropped: the rollback run without
/// it is recorded once the store is back (retried on its own error, not
/// on the verdict's first write, which succeeded).
#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_run_after_the_verdict_went_in_is_recorded_when_the_store_is_back() {
    let r = rig("[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\nauto_rollback = true\n").await;
    let e = &r.engine;
    promote_bad_release(e).await;
    r.drop_after_no_go.store(true, Ordering::SeqCst);
    let (task, mut rx) = open_window(e, Duration::from_secs(60)).await;
    // The regression, the verdict, the rollback without the store: then
    // its records wait on the store (within the 60 s window and 30 s).
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Event::StoreOutage { detail, .. }))
                if detail.contains("retrying to record") =>
            {
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("no retry: {other:?} / {:?}", task.await),
        }
    }
    *r.locks.lock().unwrap() = None;
    *r.writes.lock().unwrap() = None;
    let out = tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert_eq!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
    let rolled = out.rolled_back.as_ref().expect("rolled back");
    assert_ne!(rolled.version.to_string(), crate::demo::BAD_VERSION);
    assert!(out.unrecorded.is_none(), "{out:?}");
    let h = e.history(Some("production"), 10).await.unwrap();
    let rb = h
        .iter()
        .find(|a| a.action == ActionKind::Rollback)
        .unwrap_or_else(|| panic!("the rollback is in the audit log: {h:?}"));
    assert_eq!(rb.outcome, Outcome::Succeeded, "{rb:?}");
    assert!(rb.detail.contains("store was unreachable"), "{rb:?}");
}

/// A regression caught while the store refuses writes for good: the
/// verdict is told at once (no 30 s of "retrying to record" an outage that
/// is none), and the automatic rollback does not run — it needs the deploy
/// lock and its audit record in that store, and one run without them could
/// race a deploy that others, whom the store does not refuse, can still
/// make. The release stays where it is, and the outcome says how to go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_regression_caught_while_the_store_refuses_writes_is_told_and_not_rolled_back() {
    let r = rig("[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\nauto_rollback = true\n").await;
    let (out, events) = regression_not_rolled_back(&r, &r.writes).await;
    let rb = out.rollback_error.as_deref().unwrap_or_default();
    assert!(
        rb.starts_with("not rolled back: the store refuses it, and waiting will not heal that")
            && rb.contains("permission denied")
            && rb.contains("shipdeck rollback production"),
        "{rb}"
    );
    let unrecorded = out.unrecorded.as_deref().unwrap_or_default();
    assert!(
        unrecorded.contains("waiting will not heal that")
            && unrecorded.contains("permission denied"),
        "{unrecorded}"
    );
    for ev in &events {
        assert!(
            !matches!(ev, Event::StoreOutage { .. }),
            "no outage was said: {ev:?}"
        );
    }
}

/// POST `body` to the demo fleet's `path` (its canary's deploy or weight).
async fn fleet_post(r: &Rig, path: &str, body: serde_json::Value) {
    let url = format!("{}{path}", r._fleet.url());
    let res = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
}

/// The audit detail of a window's end says its verdict's word once, also
/// when the detector's reason starts with it.
#[test]
fn a_verdict_is_said_with_its_word_once() {
    let v = |kind, reason: &str| Verdict {
        kind,
        metric: None,
        detected_at: None,
        reason: reason.into(),
    };
    assert_eq!(
        verdict_said(&v(
            VerdictKind::InsufficientData,
            "insufficient data: the baseline has 0 usable steps (need 5)"
        )),
        "insufficient data: the baseline has 0 usable steps (need 5)"
    );
    assert_eq!(
        verdict_said(&v(VerdictKind::Healthy, "no significant change over 30s")),
        "healthy: no significant change over 30s"
    );
    assert_eq!(
        verdict_said(&v(VerdictKind::Regression, "regressions elsewhere")),
        "regression: regressions elsewhere"
    );
}

/// The environment changed under the window (the demo fleet redeployed
/// outside shipdeck, as a restart would): the window notices at its next
/// version read, stops judging and says what runs now; it records no
/// verdict of its own (interrupted), no No-Go and no rollback for the
/// version that is gone. Without the check it judged on to its end (60 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_window_whose_version_is_gone_stops_judging_and_says_what_runs() {
    let r = rig("[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\nauto_rollback = true\n").await;
    let e = &r.engine;
    baseline(e).await;
    let was = e.inner.envs[1].strategy.read_version().await.unwrap();
    let (task, mut rx) = open_window(e, Duration::from_secs(60)).await;
    fleet_post(
        &r,
        "/envs/production/deploy",
        serde_json::json!({"version": "v0.0.1"}),
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the window stops once its version is gone, not at its end")
        .unwrap()
        .unwrap();
    let line = out.superseded.clone().unwrap_or_default();
    assert!(
        line.contains(&format!("production now runs v0.0.1, not {was}"))
            && line.contains("the window stopped judging"),
        "{out:?}"
    );
    assert_ne!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
    assert!(
        out.rolled_back.is_none() && out.rollback_error.is_none(),
        "{out:?}"
    );
    let mut told = false;
    while let Ok(ev) = rx.try_recv() {
        assert!(
            !matches!(&ev, Event::DeployStarted { rollback: true, .. }),
            "no rollback ran: {ev:?}"
        );
        told |= matches!(&ev, Event::WindowNotice { detail, .. } if detail == &line);
    }
    assert!(told, "the console is told why the window ended");
    assert!(e.settle(Duration::from_secs(20)).await);
    let rec = e
        .inner
        .store
        .last_monitor("production")
        .await
        .unwrap()
        .expect("the window's record");
    assert_eq!(rec.version, was);
    assert_eq!(rec.verdict, WindowVerdict::Interrupted.as_str(), "{rec:?}");
    assert!(rec.reason.contains("now runs v0.0.1"), "{rec:?}");
    let approvals = e.inner.store.approvals("production").await.unwrap();
    assert!(
        approvals.iter().all(|a| a.decision != Decision::NoGo),
        "{approvals:?}"
    );
    let h = e.history(Some("production"), 5).await.unwrap();
    let window = h
        .iter()
        .find(|a| a.action == ActionKind::Monitor)
        .expect("the window's audit record");
    assert_eq!(window.outcome, Outcome::Unknown, "{window:?}");
    // Its row names its own start: its place in the store's order.
    assert_eq!(rec.seq, Some(window.id), "{rec:?} {window:?}");
    assert_ne!(e.status().await.environments[1].state, EnvState::Monitoring);
}

/// The window's own rollback says so in the audit log: its actor is this
/// process's, as a hand's rollback's is, and the history read after an
/// incident could not tell the machine's rollback from a human's.
#[tokio::test(flavor = "multi_thread")]
async fn an_automatic_rollback_says_it_was_automatic_in_the_audit_log() {
    let r = rig("[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\nauto_rollback = true\n").await;
    let e = &r.engine;
    promote_bad_release(e).await;
    let (task, _rx) = open_window(e, Duration::from_secs(60)).await;
    let out = tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert_eq!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
    assert!(out.rolled_back.is_some(), "{out:?}");
    let h = e.history(Some("production"), 10).await.unwrap();
    let rb = h
        .iter()
        .find(|a| a.action == ActionKind::Rollback)
        .unwrap_or_else(|| panic!("the rollback is in the audit log: {h:?}"));
    assert!(
        rb.detail.starts_with(&format!(
            "roll production back automatically from {} to ",
            crate::demo::BAD_VERSION
        )) && rb.detail.contains(&format!(
            "the monitoring window caught a regression of {}",
            crate::demo::BAD_VERSION
        )),
        "{rb:?}"
    );
}
