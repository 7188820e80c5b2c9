//! The demo fleet (SPEC §6): four environments behind one small HTTP service.
//!
//! ```text
//! GET  /envs                  every environment with its version and deploy state
//! GET  /envs/E/version        {"version": "v1.7.3"}
//! POST /envs/E/deploy         {"version": "v1.8.0"} -> 202; the version changes after `deploy_duration`
//! GET  /envs/E/truth          the fleet's own ground truth (mean rates, model quantiles)
//! GET  /metrics               Prometheus text exposition, every environment labelled env="E"
//! GET  /envs/production/canary/version, POST …/canary/deploy, GET|POST …/canary/weight
//!                             production's canary (see [`canary`]): track="canary"|"stable"
//! ```
//!
//! Traffic advances on a ticker in *simulated* time: tick `n` always covers
//! the same simulated interval, so the numbers depend only on the seed and on
//! when (in ticks) deploys land. A release listed in
//! [`FleetOptions::bad_versions`] turns bad a few seconds after it goes live
//! (5–10 s, then a 15 s ramp): its 5xx rate climbs to ~8% and its latency to
//! ~2.8×. The initial versions have been live for an hour, so staging, which
//! starts on the bad `v1.8.0`, is already fully bad.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::traffic::{self, BUCKETS, CODES, CanaryShare, EnvTraffic, Profile, Rng, Truth};
use crate::domain::Version;

pub mod bluegreen;
mod canary;
pub use canary::{CANARY_ENV, CanaryTruth, TRACK_LABEL};

/// The demo's environments, in pipeline order.
pub const ENVIRONMENTS: [&str; 4] = ["local", "development", "staging", "production"];
/// What each environment runs when the fleet starts.
pub const INITIAL_VERSIONS: [&str; 4] = ["v1.9.0", "v1.8.1", "v1.8.0", "v1.7.3"];
/// The bad release: what staging runs at start.
pub const BAD_VERSION: &str = "v1.8.0";

/// Seconds a bad release stays healthy after going live: 5 s plus up to 5 s of jitter.
const ONSET_MIN_S: f64 = 5.0;
const ONSET_JITTER_S: f64 = 5.0;
/// Seconds from the onset until the release is fully bad.
const RAMP_S: f64 = 15.0;
/// How long the initial versions have been live when the fleet starts.
const INITIAL_UPTIME_S: f64 = 3600.0;
/// At most this many ticks are replayed at once when the ticker fell behind.
const MAX_CATCH_UP_TICKS: u64 = 600;

#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub seed: u64,
    /// How long a deploy takes until the version endpoint reports the new version.
    pub deploy_duration: Duration,
    /// Releases that turn bad shortly after going live.
    pub bad_versions: Vec<String>,
    /// Simulated traffic advances by this much on each tick.
    pub tick: Duration,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            seed: 1,
            deploy_duration: Duration::from_secs(3),
            bad_versions: vec![BAD_VERSION.to_string()],
            tick: Duration::from_millis(200),
            token: None,
        }
    }
}

/// The environment's ground truth, as `/envs/E/truth` serves it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvTruth {
    pub env: String,
    pub version: String,
    pub deploying_to: Option<String>,
    /// Simulated seconds since the running version went live.
    pub live_for_s: f64,
    #[serde(flatten)]
    pub traffic: Truth,
}

struct Deploy {
    to: Version,
    done_at: Instant,
}

struct EnvSim {
    name: &'static str,
    version: Version,
    /// Simulated time at which `version` went live.
    live_since_s: f64,
    /// Seconds after going live at which a bad version starts to hurt.
    onset_s: f64,
    deploying: Option<Deploy>,
    traffic: EnvTraffic,
}

/// Why a deploy cannot start.
#[derive(Debug, PartialEq)]
enum DeployRefusal {
    UnknownEnv,
    Busy { to: String },
}

/// The whole simulated fleet. Pure apart from the `Instant`s it is handed.
struct World {
    envs: Vec<EnvSim>,
    /// Production's blue-green slots.
    slots: bluegreen::Slots,
    sim_s: f64,
    bad_versions: Vec<String>,
    rng: Rng,
    /// Production's canary (see [`canary`]).
    canary: canary::CanarySim,
}

impl World {
    fn new(opts: &FleetOptions) -> World {
        let mut rng = Rng::new(opts.seed);
        let envs = ENVIRONMENTS
            .iter()
            .zip(INITIAL_VERSIONS)
            .map(|(name, v)| {
                let env_seed = rng.next_u64();
                EnvSim {
                    name,
                    version: Version::parse(v).unwrap_or_else(|_| unreachable!("valid constant")),
                    live_since_s: -INITIAL_UPTIME_S,
                    onset_s: ONSET_MIN_S + ONSET_JITTER_S * rng.f64(),
                    deploying: None,
                    traffic: EnvTraffic::new(Profile::for_env(name), env_seed),
                }
            })
            .collect::<Vec<EnvSim>>();
        let production = INITIAL_VERSIONS[ENVIRONMENTS
            .iter()
            .position(|e| *e == CANARY_ENV)
            .unwrap_or(ENVIRONMENTS.len() - 1)];
        let production =
            Version::parse(production).unwrap_or_else(|_| unreachable!("valid constant"));
        let canary = canary::CanarySim::new(production.clone(), ONSET_MIN_S);
        World {
            slots: bluegreen::Slots::new(&production),
            envs,
            sim_s: 0.0,
            bad_versions: opts.bad_versions.clone(),
            rng,
            canary,
        }
    }

    fn env(&self, name: &str) -> Option<&EnvSim> {
        self.envs.iter().find(|e| e.name == name)
    }

    fn env_mut(&mut self, name: &str) -> Option<&mut EnvSim> {
        self.envs.iter_mut().find(|e| e.name == name)
    }

    fn is_bad(&self, v: &Version) -> bool {
        self.bad_versions.iter().any(|b| b == v.as_str())
    }

    fn badness_of(&self, e: &EnvSim) -> f64 {
        if self.is_bad(&e.version) {
            traffic::badness(self.sim_s - e.live_since_s, e.onset_s, RAMP_S)
        } else {
            0.0
        }
    }

    /// Advance simulated traffic by `dt_s` seconds.
    fn advance(&mut self, dt_s: f64) {
        let levels: Vec<f64> = self.envs.iter().map(|e| self.badness_of(e)).collect();
        let canary_badness = self.canary_badness();
        for (e, b) in self.envs.iter_mut().zip(levels) {
            if e.name == CANARY_ENV && self.canary.weight > 0 {
                let share = CanaryShare {
                    share: f64::from(self.canary.weight) / 100.0,
                    badness: canary_badness,
                    counters: &mut self.canary.counters,
                };
                e.traffic.step_split(dt_s, b, Some(share));
            } else {
                e.traffic.step(dt_s, b);
            }
        }
        self.sim_s += dt_s;
    }

    /// Finish the deploys that are due at `now`.
    fn settle(&mut self, now: Instant) {
        let sim_s = self.sim_s;
        for i in 0..self.envs.len() {
            let due = matches!(&self.envs[i].deploying, Some(d) if d.done_at <= now);
            if due && let Some(d) = self.envs[i].deploying.take() {
                let onset = ONSET_MIN_S + ONSET_JITTER_S * self.rng.f64();
                let e = &mut self.envs[i];
                tracing::info!(env = e.name, from = %e.version, to = %d.to, "demo deploy done");
                e.version = d.to;
                e.live_since_s = sim_s;
                e.onset_s = onset;
                if e.name == bluegreen::SLOT_ENV {
                    let v = e.version.clone();
                    self.live_slot_now_runs(&v);
                }
            }
        }
        self.settle_slots(now);
        self.settle_canary(now);
    }

    fn start_deploy(
        &mut self,
        env: &str,
        to: Version,
        done_at: Instant,
    ) -> Result<Version, DeployRefusal> {
        let e = self.env_mut(env).ok_or(DeployRefusal::UnknownEnv)?;
        if let Some(d) = &e.deploying {
            return Err(DeployRefusal::Busy {
                to: d.to.to_string(),
            });
        }
        e.deploying = Some(Deploy { to, done_at });
        Ok(e.version.clone())
    }

    fn truth(&self, env: &str) -> Option<EnvTruth> {
        let e = self.env(env)?;
        Some(EnvTruth {
            env: e.name.to_string(),
            version: e.version.to_string(),
            deploying_to: e.deploying.as_ref().map(|d| d.to.to_string()),
            live_for_s: self.sim_s - e.live_since_s,
            traffic: e.traffic.truth(),
        })
    }

    /// The Prometheus text exposition (format 0.0.4) of every environment.
    fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(8 * 1024);
        out.push_str(
            "# HELP http_requests_total HTTP requests served, by environment and status code.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for e in &self.envs {
            for (track, c) in self.series_of(e) {
                for (code, n) in CODES.iter().zip(c.by_code) {
                    let _ = writeln!(
                        out,
                        "http_requests_total{{env=\"{}\"{track},code=\"{code}\"}} {n}",
                        e.name
                    );
                }
            }
        }
        out.push_str("# HELP http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for e in &self.envs {
            for (track, c) in self.series_of(e) {
                let cum = c.cumulative_buckets();
                for (i, n) in cum.iter().enumerate() {
                    let le = BUCKETS
                        .get(i)
                        .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                    let _ = writeln!(
                        out,
                        "http_request_duration_seconds_bucket{{env=\"{}\"{track},le=\"{le}\"}} {n}",
                        e.name
                    );
                }
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_sum{{env=\"{}\"{track}}} {}",
                    e.name, c.sum_s
                );
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_count{{env=\"{}\"{track}}} {}",
                    e.name, c.count
                );
            }
        }
        out.push_str("# HELP demo_build_info The version each environment runs (always 1).\n");
        out.push_str("# TYPE demo_build_info gauge\n");
        for e in &self.envs {
            let _ = writeln!(
                out,
                "demo_build_info{{env=\"{}\",version=\"{}\"}} 1",
                e.name, e.version
            );
        }
        out
    }
}

/// Record a trace in the `replay` format (SPEC §5) from the simulation
/// alone, without a server: `baseline_s` seconds of `env` on its initial
/// version, then `version` goes live at `t = 0` and `window_s` seconds
/// follow. One row per `step_s`; quantiles come from histogram bucket deltas,
/// as a scrape would compute them. `None` for an unknown environment, a
/// malformed version or a zero step.
pub fn record_trace(
    seed: u64,
    env: &str,
    version: &str,
    baseline_s: u32,
    window_s: u32,
    step_s: u32,
) -> Option<String> {
    use std::fmt::Write;
    let samples = simulate(seed, env, None, version, baseline_s, window_s, step_s)?;
    let mut out = String::from("t,requests,errors,p50_ms,p95_ms,p99_ms\n");
    let ms = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.1}"));
    for s in samples {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            s.t,
            s.requests,
            s.errors,
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms)
        );
    }
    Some(out)
}

/// `env`'s metrics from the simulation alone, one sample per `step_s`
/// (counts per step, quantiles from histogram bucket deltas, as a scrape
/// computes them): `baseline_s` seconds on `before` (its initial version
/// when `None`), then `version` goes live at `t = 0` and `window_s` seconds
/// follow. `t` is the end of each step, in seconds since the go-live.
/// `None` for an unknown environment, a malformed version or a zero step.
pub fn simulate(
    seed: u64,
    env: &str,
    before: Option<&str>,
    version: &str,
    baseline_s: u32,
    window_s: u32,
    step_s: u32,
) -> Option<Vec<crate::monitor::Sample>> {
    const TICK_S: f64 = 0.1;
    if step_s == 0 {
        return None;
    }
    let to = Version::parse(version).ok()?;
    let mut world = World::new(&FleetOptions {
        seed,
        ..FleetOptions::default()
    });
    world.env(env)?;
    if let Some(b) = before {
        let now = Instant::now();
        world.start_deploy(env, Version::parse(b).ok()?, now).ok()?;
        world.settle(now);
    }
    let ticks_per_step = (f64::from(step_s) / TICK_S).round() as usize;
    let steps_before = baseline_s / step_s;
    let steps_after = window_s / step_s;
    let mut out = Vec::with_capacity((steps_before + steps_after) as usize);
    let mut prev = world.env(env)?.traffic.counters.clone();
    for i in 0..(steps_before + steps_after) {
        if i == steps_before {
            let now = Instant::now();
            world.start_deploy(env, to.clone(), now).ok()?;
            world.settle(now);
        }
        for _ in 0..ticks_per_step {
            world.advance(TICK_S);
        }
        let cur = world.env(env)?.traffic.counters.clone();
        let t = (i64::from(i) - i64::from(steps_before) + 1) * i64::from(step_s);
        let (c, p) = (cur.cumulative_buckets(), prev.cumulative_buckets());
        let deltas: Vec<(f64, f64)> = c
            .iter()
            .zip(p)
            .enumerate()
            .map(|(k, (now, before))| {
                let le = BUCKETS.get(k).copied().unwrap_or(f64::INFINITY);
                (le, (now - before) as f64)
            })
            .collect();
        let q =
            |q: f64| crate::backends::metrics::histogram_quantile(q, &deltas).map(|s| s * 1000.0);
        out.push(crate::monitor::Sample {
            t: t as f64,
            requests: (cur.requests() - prev.requests()) as f64,
            errors: (cur.errors() - prev.errors()) as f64,
            p50_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
        });
        prev = cur;
    }
    Some(out)
}

#[derive(Clone)]
struct AppState {
    world: Arc<Mutex<World>>,
    deploy_duration: Duration,
    token: Option<Arc<str>>,
}

impl AppState {
    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    // A panic while holding the lock cannot leave the counters half-written
    // in a way that matters for a demo; keep serving.
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fleet. Dropping it stops the fleet too; [`FleetHandle::shutdown`]
/// also waits for the server to finish.
pub struct FleetHandle {
    pub addr: SocketAddr,
    world: Arc<Mutex<World>>,
    stop: Option<oneshot::Sender<()>>,
    stop_ticker: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    ticker: Option<JoinHandle<()>>,
}

impl FleetHandle {
    /// `http://ADDR`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fleet's ground truth for `env` (`None` for an unknown environment).
    pub fn truth(&self, env: &str) -> Option<EnvTruth> {
        lock(&self.world).truth(env)
    }

    /// Production's canary: version, weight and the canary track's totals.
    pub fn canary(&self) -> CanaryTruth {
        lock(&self.world).canary_truth()
    }

    /// Stop serving and wait for the server task to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.signal_stop();
        if let Some(t) = self.ticker.take() {
            let _ = t.await;
        }
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        // Open requests get a few seconds to finish; then the server is stopped.
        match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
            Ok(joined) => joined.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            Err(_) => {
                server.abort();
                Ok(())
            }
        }
    }

    fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.stop_ticker.send(true);
    }
}

impl Drop for FleetHandle {
    fn drop(&mut self) {
        self.signal_stop();
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

/// Serve the fleet on `listener` in background tasks.
pub async fn spawn(
    listener: tokio::net::TcpListener,
    opts: FleetOptions,
) -> std::io::Result<FleetHandle> {
    if opts.tick.is_zero() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "demo fleet: tick must be longer than zero",
        ));
    }
    let addr = listener.local_addr()?;
    let world = Arc::new(Mutex::new(World::new(&opts)));
    let state = AppState {
        world: world.clone(),
        deploy_duration: opts.deploy_duration,
        token: opts.token.as_deref().map(Arc::from),
    };
    let app = router(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_ticker, ticker_stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let ticker = tokio::spawn(run_ticker(world.clone(), opts.tick, ticker_stopped));
    tracing::info!(%addr, seed = opts.seed, "demo fleet serving");
    Ok(FleetHandle {
        addr,
        world,
        stop: Some(stop),
        stop_ticker,
        server: Some(server),
        ticker: Some(ticker),
    })
}

/// `shipdeck demo-fleet`: serve on `addr` until Ctrl-C.
pub async fn serve(addr: SocketAddr, opts: FleetOptions) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let handle = spawn(listener, opts).await?;
    let url = handle.url();
    println!("shipdeck demo fleet on {url}  (Ctrl-C to stop)");
    for env in ENVIRONMENTS {
        println!("  {url}/envs/{env}/version   POST {url}/envs/{env}/deploy");
    }
    println!(
        "  {url}/envs/{CANARY_ENV}/canary/version   POST {url}/envs/{CANARY_ENV}/canary/deploy   GET|POST {url}/envs/{CANARY_ENV}/canary/weight"
    );
    println!(
        "  {url}/envs/production/live   {url}/envs/production/slots/{{blue,green}}/version   POST …/deploy"
    );
    println!("  {url}/metrics");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await
}

/// Advance the simulation so that simulated time keeps up with the clock,
/// one fixed tick at a time (so the numbers do not depend on scheduling).
async fn run_ticker(world: Arc<Mutex<World>>, tick: Duration, mut stop: watch::Receiver<bool>) {
    let start = Instant::now();
    let tick_s = tick.as_secs_f64();
    let mut done: u64 = 0;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        let due = (start.elapsed().as_secs_f64() / tick_s) as u64;
        let mut w = lock(&world);
        w.settle(Instant::now());
        let target = due.min(done + MAX_CATCH_UP_TICKS);
        while done < target {
            w.advance(tick_s);
            done += 1;
        }
        // Far behind (the process was suspended): skip rather than replay it all.
        done = done.max(due);
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/envs", get(list_envs))
        .route("/envs/{env}/version", get(version))
        .route("/envs/{env}/deploy", post(deploy))
        .route("/envs/{env}/truth", get(truth))
        .route(
            "/envs/{env}/live",
            get(bluegreen::get_live).post(bluegreen::post_live),
        )
        .route(
            "/envs/{env}/slots/{slot}/version",
            get(bluegreen::slot_version),
        )
        .route(
            "/envs/{env}/slots/{slot}/deploy",
            post(bluegreen::slot_deploy),
        )
        .route("/envs/{env}/canary/version", get(canary::version))
        .route("/envs/{env}/canary/deploy", post(canary::deploy))
        .route(
            "/envs/{env}/canary/weight",
            get(canary::weight).post(canary::set_weight),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn unknown_env(env: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "unknown environment {env:?}; known: {}",
            ENVIRONMENTS.join(", ")
        ),
    )
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()));
        if !ok {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer …)",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; try /metrics, /envs, /envs/E/version, /envs/E/deploy, /envs/E/truth, /envs/production/canary/{version,deploy,weight}",
    )
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = {
        let mut w = state.world();
        w.settle(Instant::now());
        w.render()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (headers, body).into_response()
}

async fn list_envs(State(state): State<AppState>) -> Response {
    let mut w = state.world();
    w.settle(Instant::now());
    let envs: Vec<_> = w
        .envs
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "version": e.version.as_str(),
                "deploying_to": e.deploying.as_ref().map(|d| d.to.as_str()),
            })
        })
        .collect();
    axum::Json(json!({ "environments": envs })).into_response()
}

async fn version(State(state): State<AppState>, Path(env): Path<String>) -> Response {
    let mut w = state.world();
    w.settle(Instant::now());
    match w.env(&env) {
        Some(e) => axum::Json(json!({ "version": e.version.as_str() })).into_response(),
        None => unknown_env(&env),
    }
}

async fn truth(State(state): State<AppState>, Path(env): Path<String>) -> Response {
    let mut w = state.world();
    w.settle(Instant::now());
    match w.truth(&env) {
        Some(t) => axum::Json(t).into_response(),
        None => unknown_env(&env),
    }
}

/// The deploy webhook's body. Other fields are ignored, as a real webhook
/// would; an `env` that contradicts the URL is refused.
#[derive(Deserialize)]
struct DeployRequest {
    version: String,
    env: Option<String>,
}

/// The version a deploy body asks for, or the answer refusing it.
#[allow(clippy::result_large_err)] // the error is the HTTP answer itself, sent as is
fn parse_deploy(env: &str, body: &[u8]) -> Result<Version, Response> {
    let req: DeployRequest = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}; expected {{\"version\": \"v1.2.3\"}}"),
        )
    })?;
    if let Some(named) = req.env.as_deref().filter(|n| *n != env) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("the body names environment {named:?} but the URL names {env:?}"),
        ));
    }
    Version::parse(&req.version)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid version: {e}")))
}

async fn deploy(State(state): State<AppState>, Path(env): Path<String>, body: Bytes) -> Response {
    if !ENVIRONMENTS.contains(&env.as_str()) {
        return unknown_env(&env);
    }
    let to = match parse_deploy(&env, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = Instant::now();
    let mut w = state.world();
    w.settle(now);
    match w.start_deploy(&env, to.clone(), now + state.deploy_duration) {
        Ok(from) => {
            tracing::info!(env = %env, %from, %to, "demo deploy started");
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "env": env,
                    "from": from.as_str(),
                    "version": to.as_str(),
                    "status": "deploying",
                    "eta_ms": state.deploy_duration.as_millis() as u64,
                })),
            )
                .into_response()
        }
        Err(DeployRefusal::UnknownEnv) => unknown_env(&env),
        Err(DeployRefusal::Busy { to: running }) => error(
            StatusCode::CONFLICT,
            format!("a deploy of {running} to {env} is already running"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64) -> FleetOptions {
        FleetOptions {
            seed,
            ..FleetOptions::default()
        }
    }

    /// Per-step (errors/requests, mean latency s) of an environment over `steps` ticks.
    fn window(w: &mut World, env: &str, ticks: usize) -> (f64, f64) {
        let before = w
            .env(env)
            .map(|e| e.traffic.counters.clone())
            .unwrap_or_default();
        for _ in 0..ticks {
            w.advance(0.1);
        }
        let after = &w
            .env(env)
            .map(|e| e.traffic.counters.clone())
            .unwrap_or_default();
        let req = (after.requests() - before.requests()) as f64;
        let err = (after.errors() - before.errors()) as f64;
        let lat = (after.sum_s - before.sum_s) / (after.count - before.count) as f64;
        (err / req, lat)
    }

    #[test]
    fn same_seed_same_numbers() {
        let mut a = World::new(&opts(5));
        let mut b = World::new(&opts(5));
        let mut c = World::new(&opts(6));
        for _ in 0..50 {
            a.advance(0.2);
            b.advance(0.2);
            c.advance(0.2);
        }
        assert_eq!(a.render(), b.render());
        assert_ne!(a.render(), c.render());
    }

    #[test]
    fn staging_starts_on_the_bad_release_and_is_bad() {
        let mut w = World::new(&opts(1));
        assert_eq!(
            w.env("staging").map(|e| e.version.as_str()),
            Some(BAD_VERSION)
        );
        let (er, _) = window(&mut w, "staging", 300);
        assert!(er > 0.04, "staging error rate {er}");
        let (er, _) = window(&mut w, "production", 300);
        assert!(er < 0.015, "production error rate {er}");
    }

    #[test]
    fn bad_release_turns_bad_after_a_short_delay() {
        let mut w = World::new(&opts(11));
        let (base_er, base_lat) = window(&mut w, "production", 300);
        let now = Instant::now();
        let bad = Version::parse(BAD_VERSION).unwrap();
        assert_eq!(
            w.start_deploy("production", bad.clone(), now)
                .unwrap()
                .as_str(),
            "v1.7.3"
        );
        assert_eq!(
            w.start_deploy("production", bad, now),
            Err(DeployRefusal::Busy {
                to: BAD_VERSION.into()
            })
        );
        w.settle(now);
        assert_eq!(w.env("production").unwrap().version.as_str(), BAD_VERSION);
        // The first 4 s are still healthy.
        let (early_er, early_lat) = window(&mut w, "production", 40);
        assert!(
            early_er < 0.02 && early_lat < base_lat * 1.3,
            "{early_er} {early_lat}"
        );
        // 26 s later it is fully bad.
        window(&mut w, "production", 220);
        let (er, lat) = window(&mut w, "production", 100);
        assert!(
            er > 0.05 && er > 6.0 * base_er,
            "error rate {base_er} -> {er}"
        );
        assert!(lat > 2.2 * base_lat, "latency {base_lat} -> {lat}");
        let t = w.truth("production").unwrap();
        assert_eq!(t.traffic.badness, 1.0);
    }

    #[test]
    fn a_good_release_stays_healthy() {
        let mut w = World::new(&opts(12));
        let now = Instant::now();
        w.start_deploy("production", Version::parse("v1.8.1").unwrap(), now)
            .unwrap();
        w.settle(now);
        let (er, _) = window(&mut w, "production", 400);
        assert!(er < 0.015, "error rate {er}");
        assert_eq!(w.truth("production").unwrap().traffic.badness, 0.0);
    }

    #[test]
    fn traces_record_the_bad_release() {
        let trace = record_trace(4, "production", BAD_VERSION, 60, 60, 2).unwrap();
        let rows: Vec<Vec<&str>> = trace
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), 60);
        assert_eq!(rows[0][0], "-58");
        assert_eq!(rows[29][0], "0");
        assert_eq!(rows[59][0], "60");
        let rate = |r: &[Vec<&str>]| {
            let n: f64 = r.iter().map(|x| x[1].parse::<f64>().unwrap()).sum();
            let e: f64 = r.iter().map(|x| x[2].parse::<f64>().unwrap()).sum();
            e / n
        };
        let p50 = |r: &[Vec<&str>]| {
            r.iter().map(|x| x[3].parse::<f64>().unwrap()).sum::<f64>() / r.len() as f64
        };
        let (before, first_4s, last_20s) = (&rows[..30], &rows[30..32], &rows[50..]);
        assert!(rate(before) < 0.012, "{}", rate(before));
        assert!(rate(first_4s) < 0.03, "{}", rate(first_4s));
        assert!(rate(last_20s) > 0.05, "{}", rate(last_20s));
        assert!(
            p50(last_20s) > 2.0 * p50(before),
            "{} {}",
            p50(before),
            p50(last_20s)
        );
        let good = record_trace(4, "production", "v1.8.1", 60, 60, 2).unwrap();
        let rows: Vec<Vec<&str>> = good
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert!(rate(&rows[50..]) < 0.012);
        assert_eq!(record_trace(4, "qa", "v1", 10, 10, 2), None);
        assert_eq!(record_trace(4, "production", "v1;x", 10, 10, 2), None);
        assert_eq!(record_trace(4, "production", "v1", 10, 10, 0), None);
    }

    #[test]
    fn the_recorded_demo_traces_are_current() {
        // assets/traces/*.csv are made by record_trace; regenerate them with
        // `SHIPDECK_WRITE_TRACES=1 cargo test --lib recorded_demo_traces`.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/traces");
        for (file, version) in [
            ("demo-bad-release.csv", BAD_VERSION),
            ("demo-good-release.csv", "v1.8.1"),
        ] {
            let fresh = record_trace(1, "production", version, 300, 300, 2).unwrap();
            let path = dir.join(file);
            if std::env::var_os("SHIPDECK_WRITE_TRACES").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &fresh).unwrap();
            }
            let stored = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                stored == fresh,
                "{} is stale or missing; regenerate it (see the comment)",
                path.display()
            );
        }
    }

    #[test]
    fn exposition_is_consistent() {
        let mut w = World::new(&opts(3));
        for _ in 0..20 {
            w.advance(0.25);
        }
        let text = w.render();
        assert!(text.contains("# TYPE http_requests_total counter"));
        assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
        assert!(text.contains("http_requests_total{env=\"production\",code=\"503\"}"));
        assert!(text.contains("http_request_duration_seconds_bucket{env=\"local\",le=\"+Inf\"}"));
        assert!(
            text.contains("http_request_duration_seconds_bucket{env=\"staging\",le=\"0.005\"}")
        );
        for e in &w.envs {
            assert_eq!(e.traffic.counters.requests(), e.traffic.counters.count);
        }
    }
}
