//! One deploy, audited: lock, started record, backend call, polling until
//! the environment reports the version, outcome record — and "unknown" when
//! interrupted.

use std::time::Duration;

use chrono::Utc;

use super::{Engine, EngineError, Event, EventSink, hostname};
use crate::domain::{ActionKind, DeployKind, DeployRecord, EnvState, Gate, Outcome, Version};
use crate::store::{LockInfo, NewAudit};

impl Engine {
    /// Take the lock, audit, start the deploy and poll until the environment
    /// reports `version` or the deploy timeout passes.
    pub(super) async fn deploy(
        &self,
        idx: usize,
        action: ActionKind,
        version: &Version,
        from: Option<&Version>,
        detail: &str,
        events: Option<EventSink>,
    ) -> Result<DeployRecord, EngineError> {
        let cfg_env = &self.inner.config.environments[idx];
        let env = cfg_env.name();
        let backend = &self.inner.envs[idx];
        let (timeout, poll) = super::strategy::deploy_timing(cfg_env);
        let now = Utc::now();
        let host = hostname();
        let pid = std::process::id();
        let lock = LockInfo {
            env: env.to_string(),
            holder: self.inner.actor.clone(),
            pid,
            host: host.clone(),
            acquired_at: now,
            expires_at: crate::domain::clock::after(
                now,
                crate::domain::clock::delta(timeout.saturating_add(Duration::from_secs(120))),
            ),
        };
        if let Err(held) = self.inner.store.try_lock(&lock).await? {
            let gate = Gate::block(
                "lock",
                false,
                format!("{env} is {}", self.lock_text(env, &held).await),
            );
            return Err(self.refuse(action, env, Some(version), from, gate).await);
        }
        let started = match self
            .inner
            .store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: &self.inner.actor,
                action,
                env,
                version: Some(version),
                from_version: from,
                outcome: Outcome::Started,
                detail,
            })
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let _ = self.inner.store.unlock(env, pid, &host).await;
                return Err(e.into());
            }
        };
        let rolling_back = action == ActionKind::Rollback;
        let mut guard = InFlight {
            engine: self,
            env,
            started,
            host,
            pid,
            finished: false,
        };
        self.set_activity(
            env,
            Some(if rolling_back {
                EnvState::RollingBack
            } else {
                EnvState::Deploying
            }),
        );
        let emit = move |ev: Event| {
            if let Some(tx) = &events {
                let _ = tx.send(ev);
            }
        };
        emit(Event::DeployStarted {
            env: env.to_string(),
            version: version.clone(),
            from: from.cloned(),
            rollback: rolling_back,
        });
        let steps = super::strategy::Steps {
            env,
            action,
            version,
            timeout,
            poll,
            emit: &emit,
            rollback: rolling_back,
        };
        let (done, deploy_url) = match self.run_steps(idx, &steps).await {
            Ok(done) => done,
            Err(f) => {
                // Unknown: the backend may have started it, so neither done
                // nor failed.
                guard.finish(f.outcome, &f.detail);
                emit(Event::DeployFinished {
                    env: env.to_string(),
                    version: version.clone(),
                    ok: false,
                    detail: f.detail.clone(),
                });
                if f.tell_backend {
                    backend.strategy.finished(false, &f.detail).await;
                }
                return Err(f.error);
            }
        };
        let rec = DeployRecord {
            env: env.to_string(),
            version: version.clone(),
            from_version: from.cloned(),
            at: Utc::now(),
            actor: self.inner.actor.clone(),
            kind: if rolling_back {
                DeployKind::Rollback
            } else {
                DeployKind::Promote
            },
            url: deploy_url,
        };
        if let Err(e) = self.inner.store.record_deploy(started, &rec, &done).await {
            // Deployed but not recorded: say what happened. The started
            // record stays without outcome, which the next run reconciles
            // with what the environment reports. (Dropping the guard
            // releases the lock.)
            tracing::error!(env, %version, "deployed but not recorded: {e}");
            guard.finished = true;
            drop(guard);
            emit(Event::DeployFinished {
                env: env.to_string(),
                version: version.clone(),
                ok: true,
                detail: format!("{done} (not recorded: {e})"),
            });
            return Err(EngineError::Unrecorded {
                env: env.to_string(),
                version: version.clone(),
                cause: e,
            });
        }
        guard.finished = true;
        drop(guard);
        // Recorded first: the backend's own record is told after.
        backend
            .strategy
            .finished(true, &format!("{env} reports {version}"))
            .await;
        emit(Event::DeployFinished {
            env: env.to_string(),
            version: version.clone(),
            ok: true,
            detail: done,
        });
        Ok(rec)
    }
}

/// An audited action in flight. Finishing it writes the outcome; dropping it
/// unfinished (Ctrl-C, a cancelled task) writes "unknown" so the audit log
/// says what happened. Either way the lock is released.
struct InFlight<'a> {
    engine: &'a Engine,
    env: &'a str,
    started: i64,
    host: String,
    pid: u32,
    finished: bool,
}

impl InFlight<'_> {
    /// Queue the outcome record. It is written by the store thread, in
    /// order after the started record; the CLI waits for it before exiting
    /// ([`Engine::settle`]).
    fn finish(&mut self, outcome: Outcome, detail: &str) {
        let (started, at, detail) = (self.started, Utc::now(), detail.to_string());
        self.engine.inner.store.detach(move |s| {
            if let Err(e) = s.audit_finish(started, at, outcome, &detail) {
                tracing::error!("cannot record the outcome of audit #{started}: {e}");
            }
        });
        self.finished = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(
                Outcome::Unknown,
                "interrupted before the environment reported the new version; check it with `shipdeck status`",
            );
        }
        let (env, pid, host) = (self.env.to_string(), self.pid, self.host.clone());
        self.engine.inner.store.detach(move |s| {
            let _ = s.unlock(&env, pid, &host);
        });
        self.engine.set_activity(self.env, None);
    }
}
