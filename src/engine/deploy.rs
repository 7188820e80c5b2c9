//! One deploy, audited: lock, started record, backend call, polling until
//! the environment reports the version, outcome record — and "unknown" when
//! interrupted.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, Event, EventSink, hostname};
use crate::config::NotifyEvent;
use crate::domain::{ActionKind, DeployKind, DeployRecord, EnvState, Gate, Outcome, Version};
use crate::store::{LockInfo, NewAudit};

/// A deploy's lock outlives its timeout by this margin (the last reads,
/// the records), and a renewal keeps it at least this far ahead.
const LOCK_MARGIN: Duration = Duration::from_secs(120);
/// How often the lock of an action in flight is renewed.
const LOCK_RENEW: Duration = Duration::from_secs(30);

/// The lock's expiry after a renewal at `now`: at least `margin` ahead,
/// never earlier than it was.
fn renewed_expiry(
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    margin: Duration,
) -> DateTime<Utc> {
    expires_at.max(crate::domain::clock::after(
        now,
        crate::domain::clock::delta(margin),
    ))
}

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
        // The deploy begins: its timeout counts from here (see `Steps::deadline`).
        let deadline = Instant::now() + timeout;
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
                crate::domain::clock::delta(timeout.saturating_add(LOCK_MARGIN)),
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
        let notice = if rolling_back {
            NotifyEvent::Rollback
        } else {
            NotifyEvent::Promote
        };
        self.notify(notice, env, Some(version), from, "started", detail);
        let mut guard = InFlight {
            engine: self,
            env,
            started,
            host,
            pid,
            finished: false,
            notice,
            version,
            from,
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
            deadline,
            poll,
            emit: &emit,
            rollback: rolling_back,
        };
        let steps_run = self.run_steps(idx, &steps);
        let (done, deploy_url) = match self.holding(lock, LOCK_RENEW, LOCK_MARGIN, steps_run).await
        {
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
            let detail = format!("{done} (not recorded: {e})");
            self.notify(notice, env, Some(version), from, "succeeded", &detail);
            emit(Event::DeployFinished {
                env: env.to_string(),
                version: version.clone(),
                ok: true,
                detail,
            });
            return Err(EngineError::Unrecorded {
                env: env.to_string(),
                version: version.clone(),
                cause: e,
            });
        }
        guard.finished = true;
        drop(guard);
        self.notify(notice, env, Some(version), from, "succeeded", &done);
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

impl Engine {
    /// Run `work` holding `lock`, renewed every `every` to at least
    /// `margin` ahead, so it never lapses while this process works on the
    /// environment: a canary's steps and holds, a blue-green switch wait
    /// after the deploy's time, the canary's stable-track deploy all
    /// outlast the deploy's timeout. A process that dies stops renewing,
    /// and its lock lapses when last due: as first taken, or `margin`
    /// after the last renewal (sooner where the store sees the process
    /// gone). A renewal the store refuses (another process
    /// took the lock after it lapsed: this one was suspended, the store
    /// was unreachable) is logged; the work in flight goes on — stopping it
    /// midway would leave the environment in a state nobody chose.
    pub(super) async fn holding<T>(
        &self,
        mut lock: LockInfo,
        every: Duration,
        margin: Duration,
        work: impl Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        let first = tokio::time::Instant::now() + every;
        let mut tick = tokio::time::interval_at(first, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => {
                    lock.expires_at = renewed_expiry(lock.expires_at, Utc::now(), margin);
                    match self.inner.store.try_lock(&lock).await {
                        Ok(Ok(())) => {}
                        Ok(Err(held)) => tracing::error!(
                            env = %lock.env,
                            "the deploy lock lapsed and {} holds it now; this deploy goes on",
                            held.describe()
                        ),
                        Err(e) => tracing::warn!(env = %lock.env, "cannot renew the deploy lock: {e}"),
                    }
                }
            }
        }
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
    /// What its end is notified as, and about which versions.
    notice: NotifyEvent,
    version: &'a Version,
    from: Option<&'a Version>,
}

impl InFlight<'_> {
    /// Queue the outcome record. It is written by the store thread, in
    /// order after the started record; the CLI waits for it before exiting
    /// ([`Engine::settle`]).
    fn finish(&mut self, outcome: Outcome, detail: &str) {
        self.engine.notify(
            self.notice,
            self.env,
            Some(self.version),
            self.from,
            outcome.as_str(),
            detail,
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewal_moves_the_expiry_ahead_and_never_back() {
        let now = Utc::now();
        let soon =
            crate::domain::clock::after(now, crate::domain::clock::delta(Duration::from_secs(5)));
        let later =
            crate::domain::clock::after(now, crate::domain::clock::delta(Duration::from_secs(600)));
        let margin = Duration::from_secs(120);
        let ahead = crate::domain::clock::after(now, crate::domain::clock::delta(margin));
        assert_eq!(renewed_expiry(soon, now, margin), ahead);
        assert_eq!(renewed_expiry(later, now, margin), later);
    }

    /// A lock taken for 1 s, held through 2 s of work: renewed, it is still
    /// this process's at the end, and another process is refused meanwhile.
    #[tokio::test]
    async fn a_lock_is_renewed_while_its_work_outlasts_it() {
        let dir = tempfile::tempdir().unwrap();
        let src = format!(
            r#"project = "lock"
[store]
path = "{}/s.db"

[[environments]]
name = "prod"
version = {{ command = ["echo", "v1.0.0"] }}
deploy = {{ command = ["true"] }}
"#,
            dir.path().display()
        );
        let cfg = crate::config::Config::parse(&src, std::path::Path::new("<test>")).unwrap();
        let e = Engine::open(cfg).unwrap();
        let now = Utc::now();
        let lock = LockInfo {
            env: "prod".into(),
            holder: "alice".into(),
            pid: std::process::id(),
            host: "here".into(),
            acquired_at: now,
            expires_at: crate::domain::clock::after(
                now,
                crate::domain::clock::delta(Duration::from_secs(1)),
            ),
        };
        e.inner.store.try_lock(&lock).await.unwrap().unwrap();
        let other = |at| LockInfo {
            holder: "bob".into(),
            pid: std::process::id() + 1,
            host: "there".into(),
            acquired_at: at,
            expires_at: crate::domain::clock::after(
                at,
                crate::domain::clock::delta(Duration::from_secs(60)),
            ),
            ..lock.clone()
        };
        let store = e.inner.store.clone();
        let work = async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            // Past the 1 s the lock was taken for.
            store.try_lock(&other(Utc::now())).await.unwrap()
        };
        let refused = e
            .holding(
                lock.clone(),
                Duration::from_millis(100),
                Duration::from_secs(30),
                work,
            )
            .await;
        assert_eq!(refused.expect_err("bob is refused").holder, "alice");
        let at = Utc::now();
        let held = e.inner.store.lock_of("prod", at).await.unwrap();
        let held = held.expect("still held");
        assert_eq!((held.holder.as_str(), held.pid), ("alice", lock.pid));
        assert!(held.expires_at > at, "{held:?}");
        // Without renewal a lock lapses, and another process takes it.
        let mut short = lock.clone();
        short.env = "dev".into();
        short.expires_at = crate::domain::clock::after(
            Utc::now(),
            crate::domain::clock::delta(Duration::from_millis(500)),
        );
        e.inner.store.try_lock(&short).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let bob = LockInfo {
            env: "dev".into(),
            ..other(Utc::now())
        };
        assert!(e.inner.store.try_lock(&bob).await.unwrap().is_ok());
    }
}
