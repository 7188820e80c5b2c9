//! The demo's history before it starts: staging got the pending release
//! (the fleet's v1.8.0) through shipdeck a few minutes ago, after a stretch
//! on v1.7.3, and its metrics from then on are in the store, as a console
//! left running would have kept them. So the pending panel, the Go/No-Go
//! dialog and `status` show the approval stage's own verdict at once — a
//! regression, since v1.8.0 is the fleet's bad release — instead of
//! "insufficient data: shipdeck recorded no deploy of v1.8.0 to staging".
//!
//! The samples come from the fleet's own traffic model
//! ([`super::fleet::simulate`]), so they are what the fleet would have
//! served; the audit record says it was seeded by the demo.

use chrono::{DateTime, Utc};

use crate::domain::{ActionKind, DeployKind, DeployRecord, Outcome, Version};
use crate::store::{NewAudit, SqliteStore, Store};

/// The stage whose history is seeded, what it ran before, what it got.
pub const STAGE: &str = "staging";
pub const BEFORE: &str = "v1.7.3";
pub const PENDING: &str = super::fleet::BAD_VERSION;
/// How long ago staging got the pending release.
pub const LIVE_S: u32 = 300;
/// Metrics kept from before the go-live: enough for the demo's baseline
/// (1 minute, looked for up to 4 minutes back) several times over.
pub const BASELINE_S: u32 = 240;
/// Who the seeded deploy is recorded for.
pub const ACTOR: &str = "demo";

/// Seed `store` (the demo's own, new store) as of `now`: the deploy of
/// [`PENDING`] to [`STAGE`] [`LIVE_S`] seconds ago and the stage's metrics
/// from [`BASELINE_S`] before it until `now`, one sample per `step_s`.
pub fn seed_stage(
    store: &SqliteStore,
    seed: u64,
    step_s: u32,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let samples = super::fleet::simulate(
        seed,
        STAGE,
        Some(BEFORE),
        PENDING,
        BASELINE_S,
        LIVE_S,
        step_s,
    )
    .ok_or_else(|| format!("the fleet cannot simulate {STAGE}"))?;
    let since = now - chrono::Duration::seconds(i64::from(LIVE_S));
    let version = Version::parse(PENDING).map_err(|e| e.to_string())?;
    let from = Version::parse(BEFORE).map_err(|e| e.to_string())?;
    let err = |e: crate::store::StoreError| format!("seeding the demo store: {e}");
    // The seeded deploy took as long as the fleet's own deploys do, so the
    // rollback plan's expected time read from this history is a real one
    // (a deploy that took no time would promise a ~1 ms redeploy).
    let took = chrono::Duration::from_std(super::FleetOptions::default().deploy_duration)
        .map_err(|e| e.to_string())?;
    let started = store
        .audit_start(&NewAudit {
            at: since - took,
            actor: ACTOR,
            action: ActionKind::Promote,
            env: STAGE,
            version: Some(&version),
            from_version: Some(&from),
            outcome: Outcome::Started,
            detail: "seeded by shipdeck demo: staging's history before the demo started",
        })
        .map_err(err)?;
    store
        .record_deploy(
            started,
            &DeployRecord {
                seq: None,
                env: STAGE.to_string(),
                version,
                from_version: Some(from),
                at: since,
                actor: ACTOR.to_string(),
                kind: DeployKind::Promote,
                url: None,
            },
            &format!("{STAGE} reports {PENDING} (seeded by shipdeck demo)"),
        )
        .map_err(err)?;
    let keep = chrono::Duration::hours(26);
    for s in &samples {
        let at = since + chrono::Duration::milliseconds((s.t * 1000.0) as i64);
        store.record_sample(STAGE, at, s, keep).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_stage_has_its_deploy_and_metrics_on_both_sides_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("demo.db")).unwrap();
        let now = Utc::now();
        seed_stage(&store, 1, 2, now).unwrap();
        let deploys = store.deploys(Some(STAGE)).unwrap();
        assert_eq!(deploys.len(), 1);
        let d = &deploys[0];
        assert_eq!(d.version.as_str(), PENDING);
        assert_eq!(d.actor, ACTOR);
        let since = now - chrono::Duration::seconds(i64::from(LIVE_S));
        assert_eq!(d.at.timestamp(), since.timestamp());
        let before = store
            .samples(STAGE, since - chrono::Duration::hours(1), since)
            .unwrap();
        // The sample at the go-live itself closes the last step before it.
        let after = store
            .samples(STAGE, since + chrono::Duration::milliseconds(1), now)
            .unwrap();
        assert_eq!(before.len(), (BASELINE_S / 2) as usize);
        assert_eq!(after.len(), (LIVE_S / 2) as usize);
        // The bad release's errors: well above the healthy baseline's.
        let rate = |s: &[(DateTime<Utc>, crate::monitor::Sample)]| {
            s.iter().map(|x| x.1.errors).sum::<f64>() / s.iter().map(|x| x.1.requests).sum::<f64>()
        };
        assert!(rate(&before) < 0.02, "{}", rate(&before));
        assert!(rate(&after[after.len() / 2..]) > 0.05, "{}", rate(&after));
        // The audit log says where the record came from.
        let h = store.history(Some(STAGE), 10).unwrap();
        assert!(
            h[0].detail.contains("seeded by shipdeck demo"),
            "{:?}",
            h[0]
        );
        assert_eq!(h[0].outcome, Outcome::Succeeded);
    }

    /// What the demo's console shows from its first status on: staging's
    /// seeded bad release is not "healthy" next to its 8-11% error rate,
    /// although its own recent baseline (the same release) looks alike.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_shows_the_seeded_bad_release_on_staging_as_degraded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fleet = crate::demo::spawn(listener, crate::demo::FleetOptions::default())
            .await
            .unwrap();
        let text = crate::demo::demo_config_with(
            fleet.addr,
            true,
            None,
            crate::demo::DemoStrategy::default(),
        );
        let mut cfg = crate::config::Config::parse(&text, std::path::Path::new("<demo>")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db");
        let step = u32::try_from(cfg.metrics.step.0.as_secs()).unwrap().max(1);
        seed_stage(&SqliteStore::open(&db).unwrap(), 1, step, Utc::now()).unwrap();
        cfg.store.path = Some(db);
        let engine = crate::engine::Engine::open(cfg).unwrap();
        // As in the console: evidence is worked out in the background, and
        // a status asks until it is in.
        engine.evidence_in_background();
        let staging = |s: &crate::engine::Status| {
            s.environments
                .iter()
                .find(|e| e.name == STAGE)
                .unwrap()
                .clone()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let s = engine.status().await;
            let v = s
                .pending
                .as_ref()
                .and_then(|p| p.plan.evidence.stage_verdict.clone());
            if v.is_some_and(|v| v.verdict != crate::monitor::stage::StageState::InsufficientData) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no stage verdict in 60 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        // From then on, and after its answer has grown old and is worked out
        // again (a step, 2 s), the column says degraded and why.
        // (Later, once production has a baseline, the comparison with
        // production may say it first.)
        for _ in 0..20 {
            let s = engine.status().await;
            let v = s
                .pending
                .as_ref()
                .and_then(|p| p.plan.evidence.stage_verdict.clone());
            assert_eq!(
                v.map(|v| v.verdict),
                Some(crate::monitor::stage::StageState::Regression),
                "the verdict went back to checking"
            );
            let st = staging(&s);
            assert_eq!(
                st.health,
                crate::domain::Health::Degraded,
                "{}",
                st.health_detail
            );
            if st.health_basis == crate::domain::health::Comparison::Production {
                continue;
            }
            assert_eq!(
                st.health_basis,
                crate::domain::health::Comparison::SinceGoLive
            );
            // (Live for longer than the demo's window: judged again on
            // the last window, where the bad release is still bad.)
            assert!(
                st.health_detail.starts_with("staging since v1.8.0: ")
                    && st.health_detail.contains("— regression")
                    && !st.health_detail.starts_with("recovered"),
                "{}",
                st.health_detail
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
}
