//! One deploy, audited: lock, started record, backend call, polling until
//! the environment reports the version, outcome record — and "unknown" when
//! interrupted.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{Engine, EngineError, Event, EventSink, hostname};
use crate::config::NotifyEvent;
use crate::domain::{ActionKind, DeployKind, DeployRecord, EnvState, Gate, Outcome, Version};
use crate::store::{LockInfo, NewAudit};

/// A deploy's lock outlives its timeout by this margin (the last reads,
/// the records), and a renewal keeps it at least this far ahead.
pub(super) const LOCK_MARGIN: Duration = Duration::from_secs(120);
/// How often the lock of an action in flight is renewed.
pub(super) const LOCK_RENEW: Duration = Duration::from_secs(30);

/// How this engine keeps the deploy locks its actions hold: renewed every
/// `renew`, at least `margin` ahead ([`LOCK_RENEW`], [`LOCK_MARGIN`]; the
/// tests shorten both).
#[derive(Clone, Copy, Debug)]
pub(super) struct LockTiming {
    pub(super) renew: Duration,
    pub(super) margin: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            renew: LOCK_RENEW,
            margin: LOCK_MARGIN,
        }
    }
}

use super::lease::LockLost;

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
        let lock = self.new_lock(env, timeout.saturating_add(self.inner.lock_timing.margin));
        let (host, pid) = (lock.host.clone(), lock.pid);
        if let Err(held) = self.inner.store.try_lock(&lock).await? {
            let gate = Gate::block(
                "lock",
                false,
                format!("{env} is {}", self.lock_text(env, &held).await),
            );
            return Err(self.refuse(action, env, Some(version), from, gate).await);
        }
        self.hold_lock(env);
        // The lock is linked to this record as it is appended: status,
        // history and reconcile know it as the lock's whatever this host's
        // clock says (see `LockInfo::audit_id`).
        let started = match self
            .inner
            .store
            .audit_start_held(
                &NewAudit {
                    at: Utc::now(),
                    actor: &self.inner.actor,
                    action,
                    env,
                    version: Some(version),
                    from_version: from,
                    outcome: Outcome::Started,
                    detail,
                },
                &lock,
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.release_lock(env, pid, &host);
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
        let (done, deploy_url) = match self.keep_lock(lock, &emit, steps_run).await {
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
            seq: None,
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
        let done = self.with_lost_note(env, &done);
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
                cause: Box::new(e),
                owed: None,
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
    /// The deploy lock on `env` this process asks for: its actor, pid and
    /// host, taken now and due `hold` from now (renewals move it on).
    pub(super) fn new_lock(&self, env: &str, hold: Duration) -> LockInfo {
        let now = Utc::now();
        LockInfo {
            pid_space: None,
            env: env.to_string(),
            holder: self.inner.actor.clone(),
            pid: std::process::id(),
            host: hostname(),
            acquired_at: now,
            audit_id: None,
            expires_at: crate::domain::clock::after(now, crate::domain::clock::delta(hold)),
        }
    }

    /// Run `work` holding `lock`, renewed every `every` to at least
    /// `margin` ahead, so it never lapses while this process works on the
    /// environment: a canary's steps and holds, a blue-green switch wait
    /// after the deploy's time, the canary's stable-track deploy all
    /// outlast the deploy's timeout. A process that dies stops renewing,
    /// and its lock lapses when last due: as first taken, or `margin`
    /// after the last renewal (sooner where the store sees the process
    /// gone). A lock lost meanwhile (another process took it after it
    /// lapsed: this one was suspended, the store was unreachable) does not
    /// stop the work — stopping midway would leave the environment in a
    /// state nobody chose — but is said: an [`Event::LockLost`] (the CLI's
    /// stderr line, the console's notice), the environment's status
    /// (`lock_lost`) while the action runs, and its outcome record's detail
    /// (see [`lease::hold_lock`](super::lease::hold_lock)).
    pub(super) async fn holding<T>(
        &self,
        lock: LockInfo,
        every: Duration,
        margin: Duration,
        emit: &(dyn Fn(Event) + Sync),
        work: impl Future<Output = T>,
    ) -> T {
        let lost = |l: LockLost| {
            emit(Event::LockLost {
                env: l.env.clone(),
                detail: l.line(),
            });
            self.inner
                .lost
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(l.env.clone(), l);
        };
        // Boxed: a deploy's future nests deep enough (strategy, canary,
        // backends) that the compiler's layout queries overflow without.
        Box::pin(super::lease::hold_lock(
            &self.inner.store,
            lock,
            every,
            margin,
            &lost,
            work,
        ))
        .await
    }

    /// Run `work` holding `lock`, kept as every action of this engine keeps
    /// the deploy lock it holds ([`LockTiming`], see [`Self::holding`]).
    /// Every holder of a lock runs its work through here, the one that
    /// took it and one that shares it alike: a sharer may outlive the
    /// taker (a canary's rollback asked for while the canary ran), and a
    /// lock nobody renews lapses under it.
    pub(super) async fn keep_lock<T>(
        &self,
        lock: LockInfo,
        emit: &(dyn Fn(Event) + Sync),
        work: impl Future<Output = T>,
    ) -> T {
        let t = self.inner.lock_timing;
        self.holding(lock, t.renew, t.margin, emit, work).await
    }

    /// Count `env`'s deploy lock as held by this engine instance: an
    /// action took it (`try_lock` succeeded).
    pub(super) fn hold_lock(&self, env: &str) {
        *self
            .inner
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(env.to_string())
            .or_default() += 1;
    }

    /// Share `env`'s deploy lock if an action of this engine instance holds
    /// it now — checked and counted in one step, so the holder cannot
    /// release it in between: `true` when shared (give it back with
    /// [`Self::release_lock`]), `false` when this instance holds none.
    pub(super) fn share_lock(&self, env: &str) -> bool {
        let mut held = self.inner.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.get_mut(env) {
            Some(n) if *n > 0 => {
                *n += 1;
                true
            }
            _ => false,
        }
    }

    /// One user of `env`'s deploy lock is done; the last one releases it
    /// in the store (by pid and host, which is how the store knows it).
    pub(super) fn release_lock(&self, env: &str, pid: u32, host: &str) {
        let last = {
            let mut held = self.inner.held.lock().unwrap_or_else(|p| p.into_inner());
            match held.get_mut(env) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    held.remove(env);
                    true
                }
            }
        };
        if last {
            self.forget_lost(env);
            let (env, host) = (env.to_string(), host.to_string());
            self.inner.store.detach(move |s| {
                let _ = s.unlock(&env, pid, &host);
            });
        }
    }

    /// Forget the lock `env`'s action lost: the action ended.
    pub(super) fn forget_lost(&self, env: &str) {
        self.inner
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(env);
    }

    /// The lock `env`'s action in flight lost, if it lost it.
    pub(super) fn lock_lost(&self, env: &str) -> Option<LockLost> {
        self.inner
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(env)
            .cloned()
    }

    /// `detail` with the lost lock said, for the outcome record.
    pub(super) fn with_lost_note(&self, env: &str, detail: &str) -> String {
        match self.lock_lost(env) {
            Some(l) => format!(
                "{detail} [the deploy lock was lost at {} UTC: {}]",
                l.at.format("%H:%M:%S"),
                l.detail
            ),
            None => detail.to_string(),
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
        let detail = &self.engine.with_lost_note(self.env, detail);
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
        self.engine.release_lock(self.env, self.pid, &self.host);
        self.engine.set_activity(self.env, None);
    }
}

/// A deploy lock taken for an action that keeps its own audit records
/// (the rollback of a canary's weight): released when dropped, however the
/// action ends.
pub(super) struct LockRelease<'a> {
    pub(super) engine: &'a Engine,
    pub(super) env: &'a str,
    pub(super) pid: u32,
    pub(super) host: String,
}

impl Drop for LockRelease<'_> {
    fn drop(&mut self) {
        self.engine.release_lock(self.env, self.pid, &self.host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// SQLite whose lock renewals fail, while `down`, as an unreachable
    /// server's would.
    struct RenewalsFail(Arc<AtomicBool>);
    impl crate::store::testing::Hook for RenewalsFail {
        fn before(&self, call: &'static str) -> Result<(), crate::store::StoreError> {
            if call == "try_lock" && self.0.load(Ordering::SeqCst) {
                return Err(crate::store::testing::unreachable());
            }
            Ok(())
        }
    }

    fn flaky_engine(dir: &std::path::Path) -> (Engine, Arc<AtomicBool>) {
        let src = format!(
            r#"project = "lock"
[store]
path = "{}/s.db"

[[environments]]
name = "prod"
version = {{ command = ["echo", "v1.0.0"] }}
deploy = {{ command = ["true"] }}
"#,
            dir.display()
        );
        let cfg = crate::config::Config::parse(&src, std::path::Path::new("<test>")).unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let store = crate::store::testing::Hooked {
            inner: SqliteStore::open(&dir.join("s.db")).unwrap(),
            hook: RenewalsFail(down.clone()),
        };
        (Engine::with_store(cfg, Arc::new(store)), down)
    }

    fn lock_for(env: &str, ms: u64) -> LockInfo {
        let now = Utc::now();
        LockInfo {
            pid_space: None,
            env: env.into(),
            holder: "alice".into(),
            pid: std::process::id(),
            host: hostname(),
            acquired_at: now,
            audit_id: None,
            expires_at: crate::domain::clock::after(
                now,
                crate::domain::clock::delta(Duration::from_millis(ms)),
            ),
        }
    }

    /// A deploy lock is "ours" by this engine instance holding it, not by
    /// pid and host: shared while an action holds it, released in the
    /// store only by its last user.
    #[tokio::test]
    async fn a_lock_is_shared_only_while_this_engine_holds_it_and_the_last_user_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let (e, _down) = flaky_engine(dir.path());
        let lock = lock_for("prod", 60_000);
        // Same pid and host in the store, but no action of this engine
        // holds it (a killed predecessor's): nothing to share.
        e.inner.store.try_lock(&lock).await.unwrap().unwrap();
        assert!(!e.share_lock("prod"));
        // An action holds it: another user shares it; the holder ending
        // first leaves it in the store for the sharer.
        e.hold_lock("prod");
        assert!(e.share_lock("prod"));
        e.release_lock("prod", lock.pid, &lock.host);
        assert!(e.settle(Duration::from_secs(20)).await);
        let now = Utc::now();
        assert!(e.inner.store.lock_of("prod", now).await.unwrap().is_some());
        e.release_lock("prod", lock.pid, &lock.host);
        assert!(e.settle(Duration::from_secs(20)).await);
        assert_eq!(e.inner.store.lock_of("prod", now).await.unwrap(), None);
        assert!(!e.share_lock("prod"));
    }

    /// Wait (at most 20 s) until `f` is true.
    async fn until(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < end, "gave up waiting: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Renewals failing for a store error past the lock's expiry: the loss
    /// is said once (event, status) while the work goes on to its end.
    #[tokio::test]
    async fn renewals_failing_past_the_expiry_say_the_lock_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (e, down) = flaky_engine(dir.path());
        let lock = lock_for("prod", 300);
        e.inner.store.try_lock(&lock).await.unwrap().unwrap();
        down.store(true, Ordering::SeqCst);
        let events = std::sync::Mutex::new(Vec::new());
        let emit = |ev: Event| events.lock().unwrap().push(ev);
        let work = async {
            until("the loss is known", || e.lock_lost("prod").is_some()).await;
            "work done"
        };
        let out = e
            .holding(
                lock,
                Duration::from_millis(100),
                Duration::from_millis(100),
                &emit,
                work,
            )
            .await;
        assert_eq!(out, "work done");
        let lost = e.lock_lost("prod").unwrap();
        assert_eq!(lost.holder, None);
        assert!(
            lost.detail.contains("without a renewal the store took")
                && lost.detail.contains("connection refused"),
            "{lost:?}"
        );
        let events = events.lock().unwrap();
        let said: Vec<_> = events
            .iter()
            .filter_map(|ev| match ev {
                Event::LockLost { env, detail } => Some((env.as_str(), detail.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(said.len(), 1, "said once: {events:?}");
        assert_eq!(said[0].0, "prod");
        assert!(said[0].1.starts_with("prod: the deploy lock was lost at "));
    }

    /// Renewals failing before the expiry are retried and lose nothing:
    /// the store back in time, the lock is still this process's.
    #[tokio::test]
    async fn a_renewal_failing_within_the_expiry_is_retried_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let (e, down) = flaky_engine(dir.path());
        let lock = lock_for("prod", 60_000);
        e.inner.store.try_lock(&lock).await.unwrap().unwrap();
        down.store(true, Ordering::SeqCst);
        let events = std::sync::Mutex::new(Vec::new());
        let emit = |ev: Event| events.lock().unwrap().push(ev);
        let work = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            down.store(false, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        e.holding(
            lock,
            Duration::from_millis(100),
            Duration::from_secs(60),
            &emit,
            work,
        )
        .await;
        assert!(e.lock_lost("prod").is_none());
        assert!(events.lock().unwrap().is_empty());
        let held = e.inner.store.lock_of("prod", Utc::now()).await.unwrap();
        assert_eq!(held.map(|l| l.holder), Some("alice".to_string()));
    }

    /// The outcome record of an action whose lock was lost says so, and
    /// the status stops saying it once the action ended.
    #[tokio::test]
    async fn the_outcome_record_says_the_lock_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (e, _down) = flaky_engine(dir.path());
        // Held, as during a deploy (a started record nobody holds a lock
        // for is reconciled by the status read).
        let lock = lock_for("prod", 60_000);
        e.inner.store.try_lock(&lock).await.unwrap().unwrap();
        let version = Version::parse("v2").unwrap();
        let started = e
            .inner
            .store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: "alice",
                action: ActionKind::Promote,
                env: "prod",
                version: Some(&version),
                from_version: None,
                outcome: Outcome::Started,
                detail: "deploying",
            })
            .await
            .unwrap();
        let mut guard = InFlight {
            engine: &e,
            env: "prod",
            started,
            host: hostname(),
            pid: std::process::id(),
            finished: false,
            notice: NotifyEvent::Promote,
            version: &version,
            from: None,
        };
        e.inner.lost.lock().unwrap().insert(
            "prod".into(),
            LockLost {
                env: "prod".into(),
                at: Utc::now(),
                holder: Some("bob (pid 7 on there)".into()),
                detail: "bob (pid 7 on there) took it at 12:00:00 UTC".into(),
            },
        );
        let status = e.status().await;
        let prod = &status.environments[0];
        assert!(
            prod.lock_lost
                .as_deref()
                .is_some_and(|l| l.contains("bob (pid 7 on there) took it")),
            "{prod:?}"
        );
        guard.finish(Outcome::Failed, "deploy failed");
        drop(guard);
        assert!(e.settle(Duration::from_secs(20)).await);
        let h = e.history(Some("prod"), 5).await.unwrap();
        assert!(
            h[0].detail
                .contains("deploy failed [the deploy lock was lost at ")
                && h[0].detail.contains("bob (pid 7 on there) took it"),
            "{h:?}"
        );
        assert!(e.lock_lost("prod").is_none());
        assert!(e.status().await.environments[0].lock_lost.is_none());
    }
}
