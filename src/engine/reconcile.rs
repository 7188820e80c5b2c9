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

impl Engine {
    /// Settle unfinished deploys against `versions` (one per environment,
    /// in pipeline order). Failures are logged: this never stops a view.
    pub(super) async fn reconcile(&self, versions: &[Result<Version, BackendError>]) {
        let observed: HashMap<&str, &Version> = self
            .inner
            .config
            .environments
            .iter()
            .zip(versions)
            .filter_map(|(e, v)| Some((e.name(), v.as_ref().ok()?)))
            .collect();
        self.reconcile_observed(&observed).await;
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
        let now = Utc::now();
        for u in unfinished {
            let Some(&seen) = observed.get(u.env.as_str()) else {
                continue;
            };
            // Still in flight: its owner holds the deploy lock.
            match self.inner.store.lock_of(&u.env, now).await {
                Ok(Some(l)) if l.acquired_at <= u.at => continue,
                Ok(_) => {}
                Err(_) => continue,
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
                    let rec = DeployRecord {
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
                    };
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
            match res {
                Ok(()) => tracing::info!(env = u.env, "reconciled audit #{}", u.id),
                Err(e) => tracing::warn!("cannot reconcile audit #{}: {e}", u.id),
            }
        }
    }
}
