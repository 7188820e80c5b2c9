//! Deploys the store did not hear the end of. A deploy whose outcome could
//! not be recorded (a full disk, a process killed after the environment
//! switched) leaves a "started" record without outcome; the next run that
//! reads the environments' versions settles it from what the environment
//! reports, so history and rollback planning are right again.

use std::collections::HashMap;

use chrono::Utc;

use super::Engine;
use crate::backends::BackendError;
use crate::domain::{ActionKind, DeployKind, DeployRecord, Outcome, Version};
use crate::store::Unfinished;

/// How the outcome reconcile records for an "unknown" deploy or rollback
/// the environment later confirmed begins: the writer's words, and what
/// readers (the canary's `why_unjudged`) look for — its own
/// shipdeck never finished that action, whatever the look recorded.
pub(in crate::engine) const RECONCILED: &str = "reconciled after an \"unknown\"";

impl Engine {
    /// Settle unfinished deploys against `versions` (one per environment,
    /// in pipeline order). Failures are logged: this never stops a view.
    pub(super) async fn reconcile(&self, versions: &[Result<Version, BackendError>]) {
        self.reconcile_observed(&self.observed(versions)).await;
    }

    /// [`Self::reconcile`] with the unfinished deploys already read (a
    /// status view reads them with everything else, in one round trip).
    /// True when it wrote something: the view's reads are then stale.
    pub(super) async fn reconcile_read(
        &self,
        versions: &[Result<Version, BackendError>],
        unfinished: Vec<Unfinished>,
    ) -> bool {
        self.settle_unfinished(&self.observed(versions), unfinished)
            .await
    }

    fn observed<'a>(
        &'a self,
        versions: &'a [Result<Version, BackendError>],
    ) -> HashMap<&'a str, &'a Version> {
        self.inner
            .config
            .environments
            .iter()
            .zip(versions)
            .filter_map(|(e, v)| Some((e.name(), v.as_ref().ok()?)))
            .collect()
    }

    /// Settle unfinished deploys of `env`, which reports `current`.
    pub(super) async fn reconcile_env(&self, env: &str, current: &Version) {
        self.reconcile_observed(&HashMap::from([(env, current)]))
            .await;
    }

    async fn reconcile_observed(&self, observed: &HashMap<&str, &Version>) {
        let unfinished = match self.inner.store.unfinished().await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("cannot look for unfinished deploys: {e}");
                return;
            }
        };
        self.settle_unfinished(observed, unfinished).await;
    }

    /// Settle those of `unfinished` whose environment `observed` names;
    /// true when a record was written (or tried).
    async fn settle_unfinished(
        &self,
        observed: &HashMap<&str, &Version>,
        unfinished: Vec<Unfinished>,
    ) -> bool {
        let now = Utc::now();
        let mut wrote = false;
        for u in unfinished {
            let Some(&seen) = observed.get(u.env.as_str()) else {
                continue;
            };
            // Still in flight: its owner holds the deploy lock, linked to
            // it (or, unlinked, dated near it: the lock is dated on the
            // store's clock, the record on its holder's; see
            // `LockInfo::guards`).
            match self.inner.store.lock_of(&u.env, now).await {
                Ok(Some(l)) if l.guards(u.id, u.at) => {
                    continue;
                }
                Ok(_) => {}
                Err(_) => continue,
            }
            // A canary's rollback took the canary's traffic away: the
            // stable track it leaves as it was says nothing of it, and no
            // deploy of the stable track happened.
            if u.action == ActionKind::Rollback
                && u.superseded_by.is_none()
                && let Some(res) = self.settle_canary_rollback(&u, now).await
            {
                match res {
                    Ok(false) => {}
                    Ok(true) => {
                        wrote = true;
                        tracing::info!(env = u.env, "reconciled audit #{}", u.id);
                    }
                    Err(e) => {
                        wrote = true;
                        tracing::warn!("cannot reconcile audit #{}: {e}", u.id);
                    }
                }
                continue;
            }
            // One that already reads "unknown" gets its real outcome when
            // the environment confirms it; anything else would only repeat
            // the "unknown", and a look must not grow the log.
            if u.unknown {
                if u.superseded_by.is_some() || seen != &u.version {
                    continue;
                }
                let detail = format!(
                    "{RECONCILED}: {} reported {} when shipdeck next looked, and no deploy followed it",
                    u.env, u.version
                );
                let res = self
                    .inner
                    .store
                    .record_deploy(u.id, &deploy_record(&u, now), &detail)
                    .await;
                wrote = true;
                match res {
                    Ok(()) => tracing::info!(env = u.env, "reconciled audit #{}", u.id),
                    Err(e) => tracing::warn!("cannot reconcile audit #{}: {e}", u.id),
                }
                continue;
            }
            let res = match u.superseded_by {
                Some(later) => {
                    self.inner
                        .store
                        .audit_finish(
                            u.id,
                            now,
                            Outcome::Unknown,
                            &format!("reconciled: no outcome was recorded, and deploy #{later} of {} followed it", u.env),
                        )
                        .await
                }
                None if seen == &u.version => {
                    let rec = deploy_record(&u, now);
                    let detail = format!(
                        "reconciled: the outcome was not recorded; {} reported {} when shipdeck next looked",
                        u.env, u.version
                    );
                    self.inner.store.record_deploy(u.id, &rec, &detail).await
                }
                None => {
                    self.inner
                        .store
                        .audit_finish(
                            u.id,
                            now,
                            Outcome::Unknown,
                            &format!(
                                "reconciled: the outcome was not recorded; {} reported {seen}, not {}, when shipdeck next looked",
                                u.env, u.version
                            ),
                        )
                        .await
                }
            };
            wrote = true;
            match res {
                Ok(()) => tracing::info!(env = u.env, "reconciled audit #{}", u.id),
                Err(e) => tracing::warn!("cannot reconcile audit #{}: {e}", u.id),
            }
        }
        wrote
    }
}

/// The deploy row of `u`, confirmed by its environment at `now`.
fn deploy_record(u: &Unfinished, now: chrono::DateTime<Utc>) -> DeployRecord {
    DeployRecord {
        seq: None,
        env: u.env.clone(),
        version: u.version.clone(),
        from_version: u.from_version.clone(),
        at: now,
        actor: u.actor.clone(),
        kind: if u.action == ActionKind::Rollback {
            DeployKind::Rollback
        } else {
            DeployKind::Promote
        },
        url: None,
    }
}

impl Engine {
    /// Settle `u` when it is a canary rollback's start (`None` when it is
    /// not: a rollback of a canary environment's stable track; an error, or
    /// `Ok(false)` when it is too far back to read, leaves it unfinished,
    /// never settled from the stable track's version): "succeeded" when the audit
    /// log records the canary's weight set to 0 after it, else "unknown" —
    /// unless it already reads "unknown", then it is left as it is
    /// (`Ok(false)`); never a deploy row (the stable track did not move).
    async fn settle_canary_rollback(
        &self,
        u: &Unfinished,
        now: chrono::DateTime<Utc>,
    ) -> Option<Result<bool, crate::store::StoreError>> {
        let idx = self.index(&u.env).ok()?;
        if !matches!(
            self.inner.envs[idx].strategy,
            super::strategy::Strategy::Canary { .. }
        ) {
            return None;
        }
        // Unread, or too far back to be read with what followed it: left
        // unfinished, never settled from the stable track's version (a
        // canary rollback's start would read as a deploy of it).
        let h = match self.inner.store.history(Some(&u.env), 200).await {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        let Some(start) = h.iter().find(|e| e.id == u.id) else {
            tracing::warn!(
                env = u.env,
                "audit #{} is older than the 200 records read after it: left unfinished",
                u.id
            );
            return Some(Ok(false));
        };
        if !super::canary::is_canary_rollback(&u.env, &start.detail) {
            return None;
        }
        // The first weight the log records after the start (oldest
        // first): the rollback's own, unless it never got recorded.
        let after = super::canary::last_weight(
            h.iter()
                .rev()
                .filter(|e| e.id > u.id && e.action == ActionKind::Canary)
                .map(|e| (e.outcome, e.detail.as_str(), e.version.as_ref())),
        );
        let (outcome, detail) = match after {
            Some((0, _)) => (
                Outcome::Succeeded,
                format!(
                    "{} the canary's weight was recorded set to 0% after it (the stable track of {} was not touched)",
                    if u.unknown {
                        "reconciled after an \"unknown\":"
                    } else {
                        "reconciled: the outcome was not recorded;"
                    },
                    u.env
                ),
            ),
            _ if u.unknown => return Some(Ok(false)),
            Some((w, _)) => (
                Outcome::Unknown,
                format!(
                    "reconciled: the outcome was not recorded; the first canary weight recorded after it is {w}%, not 0%"
                ),
            ),
            None => (
                Outcome::Unknown,
                "reconciled: the outcome was not recorded, nor was the canary's weight after it: check the canary's traffic".to_string(),
            ),
        };
        Some(
            self.inner
                .store
                .audit_finish(u.id, now, outcome, &detail)
                .await
                .map(|()| true),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::domain::AuditEntry;
    use crate::store::{NewAudit, SqliteStore, Store};

    /// An engine whose only environment, staging, reports v2.
    fn engine(dir: &Path) -> (Engine, Arc<SqliteStore>) {
        let text = format!(
            "project = \"t\"\n[store]\npath = {:?}\n[[environments]]\nname = \"staging\"\nversion = {{ command = [\"echo\", \"v2\"] }}\ndeploy = {{ command = [\"true\"] }}\n",
            dir.join("s.db").display().to_string()
        );
        let cfg = Config::parse(&text, Path::new("test.toml")).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.join("s.db")).unwrap());
        (Engine::with_store(cfg, store.clone()), store)
    }

    fn started(store: &SqliteStore, version: &str) -> i64 {
        let v = Version::parse(version).unwrap();
        let from = Version::parse("v1").unwrap();
        store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: "alice",
                action: ActionKind::Promote,
                env: "staging",
                version: Some(&v),
                from_version: Some(&from),
                outcome: Outcome::Started,
                detail: "promote",
            })
            .unwrap()
    }

    fn entry(h: &[AuditEntry], id: i64) -> &AuditEntry {
        h.iter().find(|e| e.id == id).unwrap()
    }

    /// A shared store dates a lock on its own clock; a holder whose clock
    /// runs behind the server's wrote its started record "before" the lock
    /// it took first. Its deploy is in flight, not reconciled under it.
    #[tokio::test]
    async fn a_deploy_whose_lock_reads_later_than_its_record_is_left_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let id = started(&store, "v2");
        let now = Utc::now();
        let lock = crate::store::LockInfo {
            pid_space: None,
            env: "staging".into(),
            holder: "alice".into(),
            pid: std::process::id(),
            host: crate::host::hostname(),
            acquired_at: now + chrono::Duration::minutes(2),
            audit_id: None,
            expires_at: now + chrono::Duration::hours(1),
        };
        store.try_lock(&lock).unwrap().unwrap();
        engine.status().await;
        let open: Vec<i64> = store.unfinished().unwrap().iter().map(|u| u.id).collect();
        assert_eq!(open, vec![id], "reconciled under its live owner");
        assert!(store.deploys(None).unwrap().is_empty());
        // Its lock gone, it is settled as before.
        store.unlock("staging", lock.pid, &lock.host).unwrap();
        engine.status().await;
        assert!(store.unfinished().unwrap().is_empty());
    }

    /// A holder whose clock runs 20 minutes behind the store's, beyond
    /// `HOLDER_SKEW`: its lock, linked to its started record as it was
    /// appended, keeps its deploy in flight; a dead deploy started before
    /// the lock (close to it in time) is settled all the same.
    #[tokio::test]
    async fn a_deploy_linked_to_its_lock_is_left_in_flight_whatever_the_skew() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let dead = started(&store, "v2");
        let now = Utc::now();
        let lock = crate::store::LockInfo {
            pid_space: None,
            env: "staging".into(),
            holder: "alice".into(),
            pid: std::process::id(),
            host: crate::host::hostname(),
            acquired_at: now + chrono::Duration::minutes(20),
            audit_id: None,
            expires_at: now + chrono::Duration::hours(1),
        };
        store.try_lock(&lock).unwrap().unwrap();
        let (v2, v1) = (Version::parse("v2").unwrap(), Version::parse("v1").unwrap());
        let live = store
            .audit_start_held(
                &NewAudit {
                    at: now,
                    actor: "alice",
                    action: ActionKind::Promote,
                    env: "staging",
                    version: Some(&v2),
                    from_version: Some(&v1),
                    outcome: Outcome::Started,
                    detail: "promote",
                },
                &lock,
            )
            .unwrap();
        engine.status().await;
        let open: Vec<i64> = store.unfinished().unwrap().iter().map(|u| u.id).collect();
        assert_eq!(open, vec![live], "reconciled under its live owner");
        let h = store.history(None, 10).unwrap();
        assert_eq!(entry(&h, live).outcome, Outcome::Started);
        assert_eq!(entry(&h, dead).outcome, Outcome::Unknown);
        assert!(store.deploys(None).unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unrecorded_deploy_the_environment_confirms_gets_its_outcome_and_deploy_row() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let id = started(&store, "v2");
        engine.status().await;
        let h = store.history(None, 10).unwrap();
        let e = entry(&h, id);
        assert_eq!(e.outcome, Outcome::Succeeded);
        assert!(e.detail.contains("reconciled"), "{}", e.detail);
        let d = store.deploys(Some("staging")).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].from_version, Some(Version::parse("v1").unwrap()));
        // Settled once: a second look adds nothing.
        engine.status().await;
        assert_eq!(store.deploys(None).unwrap().len(), 1);
        assert!(store.verify().unwrap().intact());
    }

    #[tokio::test]
    async fn an_unrecorded_deploy_of_another_version_reads_unknown_without_deploy_row() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let id = started(&store, "v3");
        engine.status().await;
        let h = store.history(None, 10).unwrap();
        let e = entry(&h, id);
        assert_eq!(e.outcome, Outcome::Unknown);
        assert!(e.detail.contains("reported v2, not v3"), "{}", e.detail);
        assert!(store.deploys(None).unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unrecorded_deploy_followed_by_another_is_not_credited_with_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let first = started(&store, "v2");
        let second = started(&store, "v2");
        engine.status().await;
        let h = store.history(None, 10).unwrap();
        assert_eq!(entry(&h, first).outcome, Outcome::Unknown);
        assert!(entry(&h, first).detail.contains(&format!("#{second}")));
        assert_eq!(entry(&h, second).outcome, Outcome::Succeeded);
        assert_eq!(store.deploys(None).unwrap().len(), 1);
    }

    /// Its process interrupted after the hand-over: the start reads
    /// "unknown", as dropping its `InFlight` (src/engine/deploy.rs) writes it.
    fn interrupted(store: &SqliteStore, id: i64) {
        store
            .audit_finish(
                id,
                Utc::now(),
                Outcome::Unknown,
                "interrupted by SIGINT: the deploy may be in place",
            )
            .unwrap();
    }

    fn records(store: &SqliteStore) -> usize {
        store.verify().unwrap().records
    }

    #[tokio::test]
    async fn an_unknown_deploy_the_environment_confirms_gets_its_outcome_and_deploy_row() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let id = started(&store, "v2");
        interrupted(&store, id);
        let u = store.unfinished().unwrap();
        assert_eq!(u.len(), 1);
        assert!(u[0].unknown && u[0].id == id);
        engine.status().await;
        let h = store.history(None, 10).unwrap();
        let e = entry(&h, id);
        assert_eq!(e.outcome, Outcome::Succeeded);
        assert!(
            e.detail.contains("reconciled after an \"unknown\""),
            "{}",
            e.detail
        );
        let d = store.deploys(Some("staging")).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].version, Version::parse("v2").unwrap());
        assert_eq!(d[0].from_version, Some(Version::parse("v1").unwrap()));
        // Settled for good: a second look writes nothing.
        assert!(store.unfinished().unwrap().is_empty());
        let n = records(&store);
        engine.status().await;
        assert_eq!(records(&store), n);
        assert_eq!(store.deploys(None).unwrap().len(), 1);
        assert!(store.verify().unwrap().intact());
    }

    #[tokio::test]
    async fn an_unknown_deploy_of_another_version_stays_one_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let id = started(&store, "v3");
        interrupted(&store, id);
        let n = records(&store);
        engine.status().await;
        engine.status().await;
        assert_eq!(records(&store), n, "a look grew the log");
        let h = store.history(None, 10).unwrap();
        assert_eq!(entry(&h, id).outcome, Outcome::Unknown);
        assert!(store.deploys(None).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_superseded_unknown_deploy_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = engine(dir.path());
        let first = started(&store, "v2");
        interrupted(&store, first);
        let second = started(&store, "v2");
        let n = records(&store);
        engine.status().await;
        engine.status().await;
        let h = store.history(None, 10).unwrap();
        assert_eq!(entry(&h, first).outcome, Outcome::Unknown);
        assert!(entry(&h, first).detail.contains("interrupted"));
        assert_eq!(entry(&h, second).outcome, Outcome::Succeeded);
        // Only the second's outcome was written, one deploy row: its own.
        assert_eq!(records(&store), n + 1);
        let d = store.deploys(None).unwrap();
        assert_eq!(d.len(), 1);
        assert!(store.unfinished().unwrap().is_empty());
    }
}
