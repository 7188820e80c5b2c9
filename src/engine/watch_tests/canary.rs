//! Canary windows against a store that fails mid-window: a canary
//! rollback recorded once after an outage, told when the store refuses it,
//! reconciled by the next run; canary metrics that go away.

use super::*;

/// Production's canary given `version` and `weight`% of the traffic on the
/// demo fleet, and this engine's canary state saying so (as its own canary
/// flow would, left at that step).
async fn canary_at(r: &Rig, version: &str, weight: u8) {
    if r._fleet.canary().version != version {
        fleet_post(
            r,
            "/envs/production/canary/deploy",
            serde_json::json!({ "version": version }),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while r._fleet.canary().version != version {
            assert!(Instant::now() < deadline, "the canary never ran {version}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    fleet_post(
        r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": weight }),
    )
    .await;
    r.engine.set_canary(
        "production",
        Some(crate::engine::CanaryState {
            version: Version::parse(version).unwrap(),
            weight,
            step: 3,
            steps: 3,
            step_ends_at: None,
            verdict: None,
            unjudged: None,
        }),
    );
}

/// The bad release on production's canary with all its traffic, caught by
/// the window; the store meets `fault` just after the rollback set the
/// canary's weight to 0. The window's outcome and events (until its end).
async fn canary_rollback_meets(
    r: &Rig,
    fault: Fault,
    mut on_retry: impl FnMut(),
) -> (WatchOutcome, Vec<Event>) {
    let e = &r.engine;
    baseline(e).await;
    canary_at(r, crate::demo::BAD_VERSION, 100).await;
    *r.after_weight_zero.lock().unwrap() = Some(fault);
    let (task, mut rx) = open_window(e, Duration::from_secs(60)).await;
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ev)) => {
                if matches!(&ev, Event::StoreOutage { detail, .. } if detail.contains("retrying to record"))
                {
                    on_retry();
                }
                events.push(ev);
            }
            Ok(None) => break,
            Err(_) => panic!("the window never ended: {events:?}"),
        }
    }
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
    // The canary's traffic is gone: the rollback ran.
    assert_eq!(r._fleet.canary().weight, 0, "{out:?}");
    let rolled = out.rolled_back.as_ref().expect("rolled back");
    assert_ne!(rolled.version.to_string(), crate::demo::BAD_VERSION);
    assert!(out.rollback_error.is_none(), "{out:?}");
    (out, events)
}

/// The monitoring settings of the canary rollback tests: a minute's window
/// that rolls back by itself.
const CANARY_AUTO_ROLLBACK: &str =
    "[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\nauto_rollback = true\n";

/// A canary's rollback (weight 0) whose outcome the store could not take
/// at once (unreachable right after the weight change): it goes through
/// the verdict's retries and is recorded once, when the store is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_rollback_unrecorded_through_an_outage_is_recorded_once_after() {
    let r = rig_with(CANARY_AUTO_ROLLBACK, true).await;
    let (locks, writes) = (r.locks.clone(), r.writes.clone());
    let (out, events) = canary_rollback_meets(&r, Fault::Unreachable, || {
        *locks.lock().unwrap() = None;
        *writes.lock().unwrap() = None;
    })
    .await;
    assert!(
        events
            .iter()
            .any(|ev| format!("{ev:?}").contains("is recorded")),
        "the store came back and it was recorded: {events:?}"
    );
    assert!(out.unrecorded.is_none(), "{out:?}");
    let h = r.engine.history(Some("production"), 50).await.unwrap();
    let rollbacks: Vec<_> = h
        .iter()
        .filter(|a| a.action == ActionKind::Rollback)
        .collect();
    assert_eq!(rollbacks.len(), 1, "one rollback record: {h:?}");
    assert_eq!(rollbacks[0].outcome, Outcome::Succeeded, "{h:?}");
    // The window's own rollback says it was automatic, as a redeploy's does.
    assert!(
        rollbacks[0]
            .detail
            .starts_with("roll production back automatically: canary weight 100% → 0")
            && rollbacks[0].detail.contains(&format!(
                "the monitoring window caught a regression of {}",
                crate::demo::BAD_VERSION
            )),
        "{:?}",
        rollbacks[0]
    );
    // Its outcome written once: one record finishes its start.
    let ends = finishing_records(&r, rollbacks[0].id);
    assert_eq!(ends, 1, "{:?}", rollbacks[0]);
}

/// A canary's rollback (weight 0) whose outcome the store refuses for
/// good: told at once as rolled back but unrecorded — never as "not
/// rolled back" — and no 30 s of retrying what waiting will not heal.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_rollback_the_store_refuses_to_record_is_told_rolled_back_but_unrecorded() {
    let r = rig_with(CANARY_AUTO_ROLLBACK, true).await;
    let (out, events) = canary_rollback_meets(&r, Fault::Denied, || {}).await;
    let unrecorded = out.unrecorded.as_deref().unwrap_or_default();
    assert!(
        unrecorded.contains("waiting will not heal that")
            && unrecorded.contains("permission denied")
            && unrecorded.contains("ran, but its outcome is not in the store")
            && !unrecorded.contains("not rolled back"),
        "{unrecorded}"
    );
    for ev in &events {
        assert!(
            !matches!(ev, Event::StoreOutage { detail, .. } if detail.contains("retrying")),
            "no retry of a refusal: {ev:?}"
        );
    }
    // Its start is in the store, no outcome (which the store refused).
    let h = r.engine.history(Some("production"), 50).await.unwrap();
    let rb = h
        .iter()
        .find(|a| a.action == ActionKind::Rollback)
        .expect("the rollback's start is recorded");
    assert!(rb.finished_at.is_none(), "{rb:?}");
}

/// A canary window whose canary's metrics go away (its track has no data
/// while it has traffic) says so, judges the environment's series as a
/// whole meanwhile (a failing canary shows there), and does not call the
/// release healthy on it: not enough data in the end.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_window_whose_canary_metrics_are_gone_says_so_and_counts_gaps() {
    let r = rig_with("[monitor]\nwindow = \"25s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let stable = e.inner.envs[1].strategy.read_version().await.unwrap();
    canary_at(&r, &stable.to_string(), 10).await;
    baseline(e).await;
    let (task, mut rx) = open_window(e, Duration::from_secs(25)).await;
    // Judged on data while both tracks read.
    let judged = until_event(&mut rx, |ev| {
        matches!(ev, Event::MonitorSample { sample, .. } if !sample.requests.is_nan())
            || matches!(ev, Event::WindowNotice { .. })
    })
    .await;
    assert!(
        matches!(judged, Event::MonitorSample { .. }),
        "the canary's track read: {judged:?}"
    );
    // The canary's track goes away (the fleet has it at 0 now, the engine
    // still counts 10%).
    fleet_post(
        &r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": 0 }),
    )
    .await;
    let said = until_event(&mut rx, |ev| matches!(ev, Event::WindowNotice { .. })).await;
    let text = format!("{said:?}");
    assert!(
        text.contains("the canary (10% of the traffic) has no metrics")
            && text.contains("its track has no data")
            && text.contains("cannot call the release healthy"),
        "{text}"
    );
    let next = until_event(&mut rx, |ev| matches!(ev, Event::MonitorSample { .. })).await;
    let Event::MonitorSample { sample, .. } = next else {
        unreachable!()
    };
    assert!(
        !sample.requests.is_nan(),
        "the environment's series is still judged: {sample:?}"
    );
    let out = tokio::time::timeout(Duration::from_secs(90), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert_eq!(out.verdict.kind, VerdictKind::InsufficientData, "{out:?}");
    assert!(
        out.verdict.reason.contains("the canary had no metrics for"),
        "{out:?}"
    );
}

/// A canary whose metrics went away and whose weight then goes back to
/// 0 (its flow ended it, or rolled it back) is not said to have its
/// metrics back: none are expected of it any more, and none came.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_whose_weight_drops_to_0_is_not_said_to_have_its_metrics_back() {
    let r = rig_with("[monitor]\nwindow = \"25s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let stable = e.inner.envs[1].strategy.read_version().await.unwrap();
    canary_at(&r, &stable.to_string(), 10).await;
    baseline(e).await;
    let (task, mut rx) = open_window(e, Duration::from_secs(25)).await;
    until_event(
        &mut rx,
        |ev| matches!(ev, Event::MonitorSample { sample, .. } if !sample.requests.is_nan()),
    )
    .await;
    // The canary's track goes away while it still has 10%…
    fleet_post(
        &r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": 0 }),
    )
    .await;
    let said = until_event(&mut rx, |ev| matches!(ev, Event::WindowNotice { .. })).await;
    assert!(format!("{said:?}").contains("has no metrics"), "{said:?}");
    // … then its flow sets it to 0 too.
    canary_at(&r, &stable.to_string(), 0).await;
    let mut after = Vec::new();
    let out = loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => after.push(ev),
                None => break task.await.unwrap().unwrap(),
            },
            _ = tokio::time::sleep(Duration::from_secs(90)) => panic!("the window never ended"),
        }
    };
    for ev in &after {
        assert!(
            !format!("{ev:?}").contains("metrics are back"),
            "said back at weight 0: {ev:?}"
        );
    }
    assert!(!out.verdict.reason.is_empty(), "{out:?}");
}

/// A canary window opened while the store cannot be read (its weight,
/// which another process's canary flow recorded, unknown then) learns the
/// weight once the store answers: the canary's metrics going away is
/// still caught in that window.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_window_opened_with_the_store_away_learns_the_weight_when_it_is_back() {
    let r = rig_with("[monitor]\nwindow = \"25s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let stable = e.inner.envs[1].strategy.read_version().await.unwrap();
    canary_at(&r, &stable.to_string(), 10).await;
    // Another process runs the canary: this one knows its weight only
    // from the audit log.
    e.set_canary("production", None);
    e.inner
        .store
        .audit_start(&NewAudit {
            at: Utc::now(),
            actor: "bob",
            action: ActionKind::Canary,
            env: "production",
            version: Some(&stable),
            from_version: None,
            outcome: Outcome::Succeeded,
            detail: "weight 10%: step 1/3 (ok)",
        })
        .await
        .unwrap();
    baseline(e).await;
    *r.reads.lock().unwrap() = Some(Fault::Unreachable);
    let (task, mut rx) = open_window(e, Duration::from_secs(25)).await;
    until_event(
        &mut rx,
        |ev| matches!(ev, Event::MonitorSample { sample, .. } if !sample.requests.is_nan()),
    )
    .await;
    // The store answers again; then the canary's track goes away.
    *r.reads.lock().unwrap() = None;
    fleet_post(
        &r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": 0 }),
    )
    .await;
    let said = until_event(&mut rx, |ev| matches!(ev, Event::WindowNotice { .. })).await;
    let text = format!("{said:?}");
    assert!(
        text.contains("the canary (10% of the traffic) has no metrics"),
        "{text}"
    );
    let out = tokio::time::timeout(Duration::from_secs(90), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert_eq!(out.verdict.kind, VerdictKind::InsufficientData, "{out:?}");
}

/// `shipdeck rollback` of production's canary (50% of the traffic), the
/// store meeting `fault` just after the weight went to 0, outside any
/// monitoring window; `on_retry` runs when the rollback says it retries.
/// Its result and events.
async fn cli_canary_rollback_meets(
    r: &Rig,
    fault: Fault,
    mut on_retry: impl FnMut(),
) -> (Result<DeployRecord, EngineError>, Vec<Event>) {
    let stable = r.engine.inner.envs[1]
        .strategy
        .read_version()
        .await
        .unwrap();
    canary_at(r, &stable.to_string(), 50).await;
    *r.after_weight_zero.lock().unwrap() = Some(fault);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn({
        let e = r.engine.clone();
        async move { e.rollback("production", None, Some(tx)).await }
    });
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ev)) => {
                if matches!(&ev, Event::StoreOutage { detail, .. } if detail.contains("retrying to record"))
                {
                    on_retry();
                }
                events.push(ev);
            }
            Ok(None) => break,
            Err(_) => panic!("the rollback never ended: {events:?}"),
        }
    }
    // The canary's traffic is gone, whatever the store said.
    assert_eq!(r._fleet.canary().weight, 0, "{events:?}");
    (task.await.unwrap(), events)
}

/// How many records of the rig's store finish the started record `id`.
fn finishing_records(r: &Rig, id: i64) -> i64 {
    let db = rusqlite::Connection::open(r._dir.path().join("s.db")).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM audit WHERE finishes = ?1",
        [id],
        |row| row.get(0),
    )
    .unwrap()
}

fn rollback_starts(h: &[AuditEntry]) -> Vec<&AuditEntry> {
    h.iter()
        .filter(|a| a.action == ActionKind::Rollback)
        .collect()
}

/// Outside a window, a canary rollback whose outcome the store could not
/// take at once retries while the store heals, and records it once.
#[tokio::test(flavor = "multi_thread")]
async fn a_cli_canary_rollback_retries_its_outcome_through_an_outage() {
    let r = rig_with("", true).await;
    let (locks, writes) = (r.locks.clone(), r.writes.clone());
    let (res, events) = cli_canary_rollback_meets(&r, Fault::Unreachable, || {
        *locks.lock().unwrap() = None;
        *writes.lock().unwrap() = None;
    })
    .await;
    let rec = res.unwrap_or_else(|e| panic!("{e}: {events:?}"));
    assert_eq!(rec.kind, crate::domain::DeployKind::Rollback);
    assert!(
        events
            .iter()
            .any(|ev| format!("{ev:?}").contains("the rollback's outcome is recorded")),
        "{events:?}"
    );
    let h = r.engine.history(Some("production"), 50).await.unwrap();
    let rb = rollback_starts(&h);
    assert_eq!(rb.len(), 1, "{h:?}");
    assert_eq!(rb[0].outcome, Outcome::Succeeded, "{h:?}");
    let ends = finishing_records(&r, rb[0].id);
    assert_eq!(ends, 1, "{:?}", rb[0]);
}

/// Outside a window, a canary rollback whose store stays away gives up
/// after its retries, naming the record left without outcome and how the
/// next run settles it; the next run does, from the weight records, as
/// "succeeded" and without a deploy of the stable track.
#[tokio::test(flavor = "multi_thread")]
async fn a_cli_canary_rollback_unrecorded_for_good_is_named_and_reconciled_by_the_next_run() {
    let r = rig_with("", true).await;
    let deploys_before = r.engine.inner.store.deploys(None).await.unwrap().len();
    let started = Instant::now();
    let (res, _) = cli_canary_rollback_meets(&r, Fault::Unreachable, || {}).await;
    assert!(
        started.elapsed() >= crate::engine::canary::OWED_END_RETRY,
        "gave up after {:?}",
        started.elapsed()
    );
    let err = res.expect_err("the outcome never went in");
    assert!(matches!(err, EngineError::Unrecorded { .. }), "{err:?}");
    *r.locks.lock().unwrap() = None;
    *r.writes.lock().unwrap() = None;
    let h = r.engine.history(Some("production"), 50).await.unwrap();
    let rb = rollback_starts(&h);
    assert_eq!(rb.len(), 1, "{h:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("audit record #{} (rollback started)", rb[0].id))
            && text.contains("left without outcome")
            && text.contains("the next shipdeck run")
            && text.contains("its weight is 0")
            && !text.starts_with("deployed"),
        "{text}"
    );
    // The next run reconciles it from the weight records.
    r.engine.set_canary("production", None);
    r.engine.status().await;
    let h = r.engine.history(Some("production"), 50).await.unwrap();
    let rb = rollback_starts(&h);
    assert_eq!(rb[0].outcome, Outcome::Succeeded, "{:?}", rb[0]);
    assert!(rb[0].detail.contains("reconciled"), "{:?}", rb[0]);
    assert!(
        rb[0].detail.contains("weight was recorded set to 0%"),
        "{:?}",
        rb[0]
    );
    assert_eq!(
        r.engine.inner.store.deploys(None).await.unwrap().len(),
        deploys_before,
        "a canary rollback deploys nothing"
    );
}

/// A canary rollback's start with nothing after it (no weight of 0% ever
/// recorded) reconciles as "unknown", never as a rollback of the stable
/// track the environment still reports — whether it is a window's own
/// ("roll … back automatically: canary weight …") or one stored before
/// those said so, or by hand ("roll … back: canary weight …").
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_rollback_start_without_a_zero_weight_after_it_reconciles_unknown() {
    for how in ["", " automatically"] {
        let r = rig_with("", true).await;
        let e = &r.engine;
        let stable = e.inner.envs[1].strategy.read_version().await.unwrap();
        let canary = Version::parse(crate::demo::BAD_VERSION).unwrap();
        let deploys_before = e.inner.store.deploys(None).await.unwrap().len();
        let id = e
            .inner
            .store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: "bob",
                action: ActionKind::Rollback,
                env: "production",
                version: Some(&stable),
                from_version: Some(&canary),
                outcome: Outcome::Started,
                detail: &format!(
                    "roll production back{how}: canary weight 50% → 0 ({canary} on the canary; the stable track stays on {stable}) (canary)"
                ),
            })
            .await
            .unwrap();
        e.status().await;
        let h = e.history(Some("production"), 50).await.unwrap();
        let rb = h.iter().find(|a| a.id == id).unwrap();
        assert_eq!(rb.outcome, Outcome::Unknown, "{how:?}: {rb:?}");
        assert!(
            rb.detail.contains("check the canary's traffic"),
            "{how:?}: {rb:?}"
        );
        assert_eq!(
            e.inner.store.deploys(None).await.unwrap().len(),
            deploys_before,
            "{how:?}: no deploy row for a canary rollback"
        );
    }
}

/// Production's stable track given `version` through its own deploy (as
/// the canary flow's last stage does), waited for.
async fn stable_gets(r: &Rig, version: &str) {
    fleet_post(
        r,
        "/envs/production/deploy",
        serde_json::json!({ "version": version }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = r.engine.inner.envs[1].strategy.read_version().await;
        if runs.is_ok_and(|v| v.to_string() == version) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stable track never ran {version}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A window opened in the middle of a canary (the canary runs the new
/// version with 10% of the traffic; production's version source reports
/// the stable track) judges what the canary runs; the canary's last stage
/// — the stable track gets that version, the weight returns to 0 — does
/// not end it as superseded: its verdict is recorded for the new version.
/// (It ended "production now runs v1.8.1, not v1.7.3", recording nothing.)
#[tokio::test(flavor = "multi_thread")]
async fn a_window_opened_mid_canary_judges_the_canary_and_outlives_its_last_step() {
    let r = rig_with("[monitor]\nwindow = \"50s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let new = "v1.8.1";
    let stable = e.inner.envs[1].strategy.read_version().await.unwrap();
    assert_ne!(stable.to_string(), new);
    canary_at(&r, new, 10).await;
    baseline(e).await;
    let (task, mut rx) = open_window(e, Duration::from_secs(50)).await;
    until_event(
        &mut rx,
        |ev| matches!(ev, Event::MonitorSample { sample, .. } if !sample.requests.is_nan()),
    )
    .await;
    // The canary's last stage, as its flow runs it.
    stable_gets(&r, new).await;
    fleet_post(
        &r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": 0 }),
    )
    .await;
    let mut s = e.canary_state("production").unwrap();
    s.weight = 0;
    e.set_canary("production", Some(s));
    e.set_canary("production", None);
    let out = tokio::time::timeout(Duration::from_secs(90), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert!(out.superseded.is_none(), "{out:?}");
    assert_eq!(out.version.to_string(), new, "{out:?}");
    assert_eq!(out.verdict.kind, VerdictKind::Healthy, "{out:?}");
    assert!(e.settle(Duration::from_secs(20)).await);
    let rec = e
        .inner
        .store
        .last_monitor("production")
        .await
        .unwrap()
        .expect("the window's record");
    assert_eq!(rec.version.to_string(), new, "{rec:?}");
    assert_eq!(rec.verdict, WindowVerdict::Healthy.as_str(), "{rec:?}");
}

/// A real supersede of a canary's window: a third version deployed to
/// the canary (neither track runs the judged version any more) still ends
/// it, naming what runs, with nothing recorded against the version.
#[tokio::test(flavor = "multi_thread")]
async fn a_window_of_a_canary_given_a_third_version_ends_superseded() {
    let r = rig_with("[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let new = "v1.8.1";
    canary_at(&r, new, 10).await;
    baseline(e).await;
    let (task, mut rx) = open_window(e, Duration::from_secs(60)).await;
    until_event(
        &mut rx,
        |ev| matches!(ev, Event::MonitorSample { sample, .. } if !sample.requests.is_nan()),
    )
    .await;
    canary_at(&r, "v0.0.1", 10).await;
    let out = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the window stops once its version is gone, not at its end")
        .unwrap()
        .unwrap();
    let line = out.superseded.clone().unwrap_or_default();
    assert!(
        line.contains("v0.0.1") && line.contains(&format!("not {new}")),
        "{out:?}"
    );
    assert_eq!(out.version.to_string(), new, "{out:?}");
    assert_ne!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
    // The store records no weight of this canary (its state is this
    // process's alone): the deploy time is the opening, and said so.
    assert!(
        out.baseline.contains(&format!(
            "deploy time: now, the store records no canary traffic of {new}: the baseline may include the canary's earlier traffic"
        )),
        "{out:?}"
    );
}

/// Another process's canary flow (a second console, `shipdeck watch`) at
/// `weight`% with `version` on the canary, as this process knows it: from
/// the store's audit log only (no canary state of its own).
async fn weight_recorded_elsewhere(r: &Rig, version: &str, weight: u8, why: &str) {
    r.engine.set_canary("production", None);
    let version = Version::parse(version).unwrap();
    r.engine
        .inner
        .store
        .audit_start(&NewAudit {
            at: Utc::now(),
            actor: "bob",
            action: ActionKind::Canary,
            env: "production",
            version: Some(&version),
            from_version: None,
            outcome: Outcome::Succeeded,
            detail: &format!("weight {weight}%: {why}"),
        })
        .await
        .unwrap();
}

/// A window opened while another process's canary flow has the new
/// version at 10%: that flow's last stage (the stable track gets the
/// version, the store records weight 0) is learnt from the store, not
/// taken for the canary's metrics going away: the window ends healthy for
/// the version, no "has no metrics" said. (It kept the 10% it saw at the
/// opening and ended with insufficient data.)
#[tokio::test(flavor = "multi_thread")]
async fn a_window_learns_another_process_s_canary_finishing_from_the_store() {
    let r = rig_with("[monitor]\nwindow = \"40s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let new = "v1.8.1";
    // The baseline before the canary's traffic: a window opened
    // mid-canary ends its baseline where the canary's weight first rose.
    baseline(e).await;
    canary_at(&r, new, 10).await;
    weight_recorded_elsewhere(&r, new, 10, "step 1/3 (ok)").await;
    let (task, mut rx) = open_window(e, Duration::from_secs(40)).await;
    until_event(
        &mut rx,
        |ev| matches!(ev, Event::MonitorSample { sample, .. } if !sample.requests.is_nan()),
    )
    .await;
    // The other process's flow ends: the stable track on the version, the
    // canary's weight 0 (on the fleet and in the store).
    stable_gets(&r, new).await;
    fleet_post(
        &r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": 0 }),
    )
    .await;
    weight_recorded_elsewhere(&r, new, 0, "promoted").await;
    let mut events = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(90), rx.recv())
        .await
        .expect("the window ends")
    {
        events.push(ev);
    }
    let out = task.await.unwrap().unwrap();
    for ev in &events {
        assert!(
            !format!("{ev:?}").contains("has no metrics"),
            "the canary has no traffic any more, nothing is missing: {ev:?}"
        );
    }
    assert!(out.superseded.is_none(), "{out:?}");
    assert_eq!(out.version.to_string(), new, "{out:?}");
    assert_eq!(out.verdict.kind, VerdictKind::Healthy, "{out:?}");
}

/// A window opened while another process's canary flow has the new
/// version at 10%: that flow's rollback (the store records weight 0, the
/// canary left on the version, the stable track on the old one) ends the
/// window as superseded — the version gets no traffic — rather than
/// judging it to its end on traffic it no longer gets.
#[tokio::test(flavor = "multi_thread")]
async fn a_window_learns_another_process_s_canary_rollback_from_the_store_and_ends_superseded() {
    let r = rig_with("[monitor]\nwindow = \"60s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let new = "v1.8.1";
    let stable = e.inner.envs[1].strategy.read_version().await.unwrap();
    // The baseline before the canary's traffic: a window opened
    // mid-canary ends its baseline where the canary's weight first rose.
    baseline(e).await;
    canary_at(&r, new, 10).await;
    weight_recorded_elsewhere(&r, new, 10, "step 1/3 (ok)").await;
    let (task, mut rx) = open_window(e, Duration::from_secs(60)).await;
    until_event(
        &mut rx,
        |ev| matches!(ev, Event::MonitorSample { sample, .. } if !sample.requests.is_nan()),
    )
    .await;
    fleet_post(
        &r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": 0 }),
    )
    .await;
    weight_recorded_elsewhere(&r, new, 0, "rolled back").await;
    let out = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the window stops once its version gets no traffic, not at its end")
        .unwrap()
        .unwrap();
    let line = out.superseded.clone().unwrap_or_default();
    assert!(
        line.contains(&format!("now runs {stable}")) && line.contains(&format!("not {new}")),
        "{out:?}"
    );
    assert_ne!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
}

/// A window opened well into a canary of the bad release (all its traffic,
/// the error rate doubled and more; another process's flow, known from the
/// store only: a console restarted mid-canary) takes the canary's first
/// traffic as its deploy time — its baseline ends where the canary's
/// weight first went above 0, not at the opening — and calls the
/// regression. (Its deploy time was "now": its baseline held the bad
/// canary's traffic.)
#[tokio::test(flavor = "multi_thread")]
async fn a_window_opened_mid_canary_takes_the_canary_s_first_traffic_as_its_deploy_time() {
    let r = rig_with("[monitor]\nwindow = \"120s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    let bad = crate::demo::BAD_VERSION;
    // A healthy baseline before the canary.
    for _ in 0..3 {
        baseline(e).await;
    }
    canary_at(&r, bad, 100).await;
    let deployed = Version::parse(bad).unwrap();
    e.inner
        .store
        .audit_start(&NewAudit {
            at: Utc::now(),
            actor: "bob",
            action: ActionKind::Canary,
            env: "production",
            version: Some(&deployed),
            from_version: None,
            outcome: Outcome::Succeeded,
            detail: &format!("canary deployed: the canary reports {bad}; accepted"),
        })
        .await
        .unwrap();
    weight_recorded_elsewhere(&r, bad, 100, "step 1/1").await;
    let began = e.inner.store.history(Some("production"), 1).await.unwrap()[0].at;
    // The canary serves the bad release (fully bad about 25 s after it
    // went live) for longer than the window's baseline before the window
    // opens.
    for _ in 0..4 {
        baseline(e).await;
    }
    let opened = Utc::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn({
        let e = e.clone();
        async move {
            e.watch("production", Some(Duration::from_secs(120)), Some(tx))
                .await
        }
    });
    let (deploy_at, note) = loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(Event::MonitorStarted {
                deploy_at,
                baseline_note,
                ..
            })) => break (deploy_at, baseline_note),
            Ok(Some(_)) => {}
            other => panic!("the window never opened: {other:?}"),
        }
    };
    assert_eq!(deploy_at, began, "opened at {opened}; {note}");
    assert!(note.contains("the canary's first traffic"), "{note}");
    let out = tokio::time::timeout(Duration::from_secs(150), task)
        .await
        .expect("the window ends")
        .unwrap()
        .unwrap();
    assert_eq!(out.version.to_string(), bad, "{out:?}");
    assert_eq!(out.verdict.kind, VerdictKind::Regression, "{out:?}");
}

/// A canary the promotion's own flow stepped back for too little traffic
/// to judge said "canary weight set to 0", as if a hand had; a caught
/// canary's says "automatically". Here the canary's track goes quiet (the
/// fleet has it at 0, the flow still counts 10%), so every step holds
/// until the flow gives up.
#[tokio::test(flavor = "multi_thread")]
async fn an_inconclusive_canary_step_back_says_it_was_automatic() {
    let r = rig_with("[monitor]\nwindow = \"25s\"\nbaseline = \"20s\"\n", true).await;
    let e = &r.engine;
    e.approve("production", Decision::Go, None, None)
        .await
        .unwrap();
    baseline(e).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn({
        let e = e.clone();
        async move {
            e.promote(
                "production",
                None,
                crate::engine::Confirm::Unseen {
                    accept_warnings: true,
                },
                Some(tx),
            )
            .await
        }
    });
    until_event(&mut rx, |ev| matches!(ev, Event::CanaryStep { .. })).await;
    fleet_post(
        &r,
        "/envs/production/canary/weight",
        serde_json::json!({ "weight": 0 }),
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(90), task)
        .await
        .expect("the flow ends")
        .unwrap()
        .expect_err("nothing promoted");
    let text = err.to_string();
    assert!(
        text.contains("inconclusive at 10%")
            && text.contains(
                "canary weight set to 0 automatically (too little canary traffic to judge)"
            )
            && text.contains("nothing promoted"),
        "{text}"
    );
    let history = e.history(Some("production"), 50).await.unwrap();
    assert!(
        history.iter().any(|h| h.detail.starts_with(
            "weight 0%: inconclusive: too little canary traffic, stepped back automatically"
        )),
        "{history:#?}"
    );
}
