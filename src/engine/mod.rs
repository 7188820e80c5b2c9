//! The engine: everything shipdeck does — status, promote, approve, roll
//! back, watch — for the CLI and the TUI alike. It gathers observations from
//! the backends, asks the pure rules in [`crate::domain`] what is allowed,
//! writes the audit record before it calls a backend, and reports an action
//! as done only once the environment itself reports the new version.

mod actions;
mod canary;
mod collect;
mod deploy;
mod error;
mod evidence;
mod lease;
mod notify;
mod reconcile;
mod release;
mod revert;
mod review;
pub mod rewatch;
mod sampler;
mod status;
mod strategy;
mod types;
mod watch;

pub use actions::{Confirm, Expect};
pub use canary::CanaryState;
pub use collect::BaselineProgress;
pub use error::EngineError;
pub use lease::{LockLost, hold_lock};
pub use release::{Pending, ReleaseFacts};
pub use sampler::{Reading, Sampler, TrackStep};
pub use status::{lock_action, schema_ahead};
pub use types::{EnvStatus, Event, LastWindow, MetricsSnapshot, RollbackTarget, Status};
pub use watch::{WatchOutcome, watcher_refusal};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::backends::BackendError;
use crate::backends::metrics::MetricsSource;
use crate::backends::slots::SlotsReading;
use crate::config::Config;
use crate::domain::{EnvState, Version};
use crate::store::{AsyncStore, PgStore, SqliteStore, Store};

/// What one environment's read gave: its version, and for a blue-green
/// one (read for a status) what its slots read.
type ObservedEnv = (Result<Version, BackendError>, Option<SlotsReading>);

/// Where the engine reports progress; the TUI turns each event into a `Msg`.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<Event>;

/// How often an open console says it is still there (presence).
pub const PRESENCE_BEAT: Duration = Duration::from_secs(5);

/// How long a command or a closing console waits, before it exits, for the
/// store to take the records its actions queued (an outcome, a lock release):
/// the bound given to [`Engine::settle`].
pub const SETTLE: Duration = Duration::from_secs(5);
/// A console not heard of for this long is gone (three missed beats).
pub const PRESENCE_STALE: Duration = Duration::from_secs(15);

/// This machine's name (moved to [`crate::host`]; re-exported here).
pub use crate::host::hostname;

/// Who acts: `[identity] name`, else `$USER@hostname`, sanitised.
pub fn actor_from(config: &Config) -> String {
    crate::host::actor(config.identity.name.as_deref())
}

/// `shipdeck store migrate --from sqlite:PATH`: copy the embedded store at
/// `from` into the team store that `config`'s `[store] url` names.
pub fn migrate_store(
    config: &Config,
    from: &std::path::Path,
) -> Result<crate::store::MigrateReport, EngineError> {
    let Some(url) = &config.store.url else {
        return Err(EngineError::Usage(
            "store migrate copies into the team store: set [store] url = \"postgres://…\" in the config first".into(),
        ));
    };
    let export = crate::store::export_sqlite(from)?;
    let pw = config.store.password_env.as_deref();
    // The synchronous client may neither block nor be dropped inside the
    // async runtime: the copy runs on a thread of its own.
    let done = std::thread::scope(|s| {
        s.spawn(|| PgStore::open(url, pw).and_then(|store| store.import(&export)))
            .join()
    });
    match done {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e @ crate::store::StoreError::Config { .. })) => {
            Err(EngineError::Usage(e.to_string()))
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(EngineError::Usage(
            "store migrate stopped on an internal error".into(),
        )),
    }
}

/// The default embedded store file.
pub fn default_store_path() -> Option<PathBuf> {
    crate::paths::data_dir().map(|d| d.join("shipdeck.db"))
}

struct Env {
    strategy: strategy::Strategy,
}

struct Inner {
    config: Config,
    actor: String,
    store: AsyncStore,
    envs: Vec<Env>,
    /// `[release]` and `[[freeze]]`: the repository, its cache, the backup hook.
    release: release::ReleaseSource,
    /// The metrics source, polled at most once per step; `Err` when the
    /// `[metrics]` section cannot be used.
    sampler: Result<Sampler, crate::backends::metrics::MetricsError>,
    /// What this process is doing to each environment right now.
    activity: Mutex<HashMap<String, (EnvState, DateTime<Utc>)>>,
    /// The monitoring window this process runs per environment (its id):
    /// a newer window of the same environment takes over from an older one.
    watching: Mutex<HashMap<String, u64>>,
    next_watch: std::sync::atomic::AtomicU64,
    /// The canary this process runs per environment, while it runs.
    canaries: Mutex<HashMap<String, CanaryState>>,
    /// The deploy locks this process's actions in flight lost, per
    /// environment, while those actions run (see `Engine::holding`).
    lost: Mutex<HashMap<String, LockLost>>,
    /// The deploy locks this engine instance holds, per environment: how
    /// many of its actions in flight share it (see `Engine::share_lock`).
    /// What makes a lock "ours" — not its pid and host, which a restarted
    /// container (same hostname, pid 1) shares with a killed predecessor.
    held: Mutex<HashMap<String, u32>>,
    /// How those locks are renewed while their actions run.
    lock_timing: deploy::LockTiming,
    /// `[[notify]]` receivers of release events.
    notifier: crate::backends::notify::Notifier,
    /// Evidence about pending releases (stage verdicts, CI, review), fetched
    /// in the background and kept briefly.
    evidence: evidence::Slots,
    /// `[release] ci`: where CI state (and, with GitHub, reviews) come from.
    ci: Option<crate::backends::ci::CiSource>,
    /// Views wait for evidence (the CLI) rather than show "checking…".
    evidence_wait: std::sync::atomic::AtomicBool,
    /// Whether the last read of who else is watching failed: its log line
    /// is written once per outage, not on every refresh.
    watching_down: OutageNote,
}

/// One line in the log when a read starts failing and one when it answers
/// again, however often it is retried in between (a console refreshes
/// every second or so: an outage would otherwise fill the log with the
/// same line). The screen still says it on every refresh.
#[derive(Debug, Default)]
pub(crate) struct OutageNote {
    down: std::sync::atomic::AtomicBool,
}

impl OutageNote {
    /// `what`'s read answered (`Ok`) or failed (`Err`, why): the line to
    /// log, if this one changed it from the last.
    pub(crate) fn seen(&self, what: &str, result: Result<(), &str>) -> Option<String> {
        use std::sync::atomic::Ordering;
        match result {
            Err(e) => (!self.down.swap(true, Ordering::SeqCst))
                .then(|| format!("{what}: {e} (said once until it answers again)")),
            Ok(()) => self
                .down
                .swap(false, Ordering::SeqCst)
                .then(|| format!("{what}: the store answers again")),
        }
    }
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Open the engine on `config`, with the store it names (or the default one).
    pub fn open(config: Config) -> Result<Engine, EngineError> {
        if let Some(url) = &config.store.url {
            let store = match PgStore::open(url, config.store.password_env.as_deref()) {
                Ok(s) => s,
                // A URL that cannot be used as written is bad config.
                Err(e @ crate::store::StoreError::Config { .. }) => {
                    return Err(EngineError::Usage(e.to_string()));
                }
                Err(e) => return Err(e.into()),
            };
            return Ok(Engine::with_store(config, Arc::new(store)));
        }
        let path = match &config.store.path {
            Some(p) => p.clone(),
            None => default_store_path().ok_or_else(|| {
                EngineError::Usage(
                    "no platform data directory: set [store] path or $XDG_DATA_HOME".into(),
                )
            })?,
        };
        let store = SqliteStore::open(&path)?;
        Ok(Engine::with_store(config, Arc::new(store)))
    }

    pub fn with_store(config: Config, store: Arc<dyn Store>) -> Engine {
        let client = crate::backends::http::client(Duration::from_secs(5), None)
            .unwrap_or_else(|_| reqwest::Client::new());
        let release = release::ReleaseSource::from_config(&config);
        let envs = config
            .environments
            .iter()
            .map(|e| Env {
                strategy: strategy::Strategy::from_config(e, &client, release.repo()),
            })
            .collect();
        let sampler = MetricsSource::from_config(&config.metrics)
            .map(|src| match src {
                MetricsSource::Scrape(s) => match crate::paths::state_dir() {
                    Some(d) => MetricsSource::Scrape(s.with_cache(d.join("scrape-cache.json"))),
                    None => MetricsSource::Scrape(s),
                },
                other => other,
            })
            .map(|src| {
                Sampler::new(src, config.metrics.step.0)
                    .with_tracks(canary::track_selectors(&config))
            });
        let receivers: Vec<_> = config.notify.iter().map(|n| n.get_ref().clone()).collect();
        let notifier = crate::backends::notify::Notifier::from_config(&receivers);
        let ci =
            config.release.ci.as_ref().and_then(|c| {
                crate::backends::ci::CiSource::from_config(c.get_ref(), client.clone())
            });
        Engine {
            inner: Arc::new(Inner {
                release,
                sampler,
                actor: actor_from(&config),
                config,
                store: AsyncStore::new(store),
                envs,
                activity: Mutex::new(HashMap::new()),
                watching: Mutex::new(HashMap::new()),
                next_watch: std::sync::atomic::AtomicU64::new(1),
                canaries: Mutex::new(HashMap::new()),
                lost: Mutex::new(HashMap::new()),
                held: Mutex::new(HashMap::new()),
                lock_timing: Default::default(),
                notifier,
                evidence: Default::default(),
                ci,
                evidence_wait: std::sync::atomic::AtomicBool::new(true),
                watching_down: OutageNote::default(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn actor(&self) -> &str {
        &self.inner.actor
    }

    pub fn store_location(&self) -> String {
        self.inner.store.describe()
    }

    /// Wait (at most `limit`) until every store write queued so far — such
    /// as the "unknown" outcome an interrupted action leaves — has landed.
    /// False when the store did not answer in time.
    pub async fn settle(&self, limit: Duration) -> bool {
        self.inner.store.flush(limit).await
    }

    /// A feed that ticks when anyone records something in the store this
    /// engine uses (another console, a CLI, this process): a view re-reads
    /// its status when it ticks. See [`crate::store::Changes`].
    pub async fn changes(&self) -> Result<crate::store::Changes, EngineError> {
        Ok(self.inner.store.changes().await?)
    }

    /// Presence: say this process's console is open (since `since`), and
    /// forget consoles whose heartbeat stopped. A console calls it every
    /// [`PRESENCE_BEAT`].
    pub async fn heartbeat(&self, since: DateTime<Utc>) -> Result<(), EngineError> {
        let now = Utc::now();
        let me = crate::store::Presence {
            actor: self.inner.actor.clone(),
            host: hostname(),
            pid: std::process::id(),
            pid_space: crate::host::pid_space(),
            since,
            last_seen: now,
        };
        let expire = crate::domain::clock::before(now, crate::domain::clock::delta(PRESENCE_STALE));
        Ok(self.inner.store.heartbeat(&me, expire).await?)
    }

    /// Presence: this process's console closed.
    pub async fn leave(&self) -> Result<(), EngineError> {
        Ok(self
            .inner
            .store
            .leave(
                &hostname(),
                std::process::id(),
                crate::host::pid_space().as_deref(),
            )
            .await?)
    }

    /// The other consoles open on this store (not this process's), oldest
    /// first, their names sanitised (they reach terminals and JSON).
    pub async fn others_watching(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::store::Presence>, EngineError> {
        let fresh = crate::domain::clock::before(now, crate::domain::clock::delta(PRESENCE_STALE));
        Ok(others(self.inner.store.present(fresh).await?))
    }

    fn index(&self, env: &str) -> Result<usize, EngineError> {
        self.inner
            .config
            .index_of(env)
            .ok_or_else(|| EngineError::UnknownEnv {
                name: env.to_string(),
                known: self.inner.config.names().join(", "),
            })
    }

    /// Read every environment's version at once.
    async fn observe(&self) -> Vec<Result<Version, BackendError>> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..self.inner.envs.len() {
            let engine = self.clone();
            set.spawn(async move {
                let read = engine.inner.envs[i].strategy.read_version().await;
                (i, (read, None))
            });
        }
        self.observed_all(set).await.0
    }

    /// [`Self::observe`] for a status: blue-green environments also keep
    /// what their slots read ([`strategy::Strategy::read_for_status`]), so
    /// the rollback plan reads none of their sources a second time.
    async fn observe_for_status(
        &self,
    ) -> (
        Vec<Result<Version, BackendError>>,
        Vec<Option<SlotsReading>>,
    ) {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..self.inner.envs.len() {
            let engine = self.clone();
            set.spawn(async move { (i, engine.inner.envs[i].strategy.read_for_status().await) });
        }
        self.observed_all(set).await
    }

    async fn observed_all(
        &self,
        mut set: tokio::task::JoinSet<(usize, ObservedEnv)>,
    ) -> (
        Vec<Result<Version, BackendError>>,
        Vec<Option<SlotsReading>>,
    ) {
        let mut out: Vec<Option<ObservedEnv>> = (0..self.inner.envs.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| {
                    let e = BackendError::Command {
                        backend: self.inner.envs[i].strategy.version_name().to_string(),
                        cause: "the read task ended unexpectedly".into(),
                    };
                    (Err(e), None)
                })
            })
            .unzip()
    }

    fn set_activity(&self, env: &str, state: Option<EnvState>) {
        let mut a = self
            .inner
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match state {
            Some(s) => {
                a.insert(env.to_string(), (s, Utc::now()));
            }
            None => {
                a.remove(env);
            }
        }
    }
}

/// A std duration as a chrono one (saturating).
fn clock_delta(d: Duration) -> chrono::Duration {
    crate::domain::clock::delta(d)
}

/// The consoles of `present` other than this process's, their names made
/// safe to show.
pub(super) fn others(present: Vec<crate::store::Presence>) -> Vec<crate::store::Presence> {
    present
        .into_iter()
        .filter(|p| !p.is_this_process())
        .map(crate::store::Presence::sanitized)
        .collect()
}
