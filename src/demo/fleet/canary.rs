//! Production's canary in the demo fleet (SPEC §6):
//!
//! ```text
//! GET  /envs/production/canary/version   {"version": "v1.7.3", "weight": 0, "deploying_to": null}
//! POST /envs/production/canary/deploy    {"version": "v1.8.0"} -> 202; live after `deploy_duration`
//! GET  /envs/production/canary/weight    {"weight": 10}
//! POST /envs/production/canary/weight    {"weight": 0..100} -> 200, at once
//! ```
//!
//! While the weight is above 0 each of production's requests goes to the
//! canary with that probability, and production's metrics carry
//! `track="canary"` / `track="stable"`; at weight 0 they are one unlabelled
//! total again (the env's counters stay continuous either way). A bad
//! release on the canary turns bad on the canary track only.
//! `/envs/production/version` keeps answering the stable track.

use super::*;
use crate::demo::traffic::Counters;

/// The one environment of the demo that runs a canary.
pub const CANARY_ENV: &str = "production";
/// The label that splits production's metrics while the canary has traffic.
pub const TRACK_LABEL: &str = "track";

pub(super) struct CanarySim {
    pub(super) version: Version,
    /// Simulated time at which `version` went live on the canary.
    pub(super) live_since_s: f64,
    pub(super) onset_s: f64,
    pub(super) deploying: Option<Deploy>,
    /// Percent of production's traffic the canary serves.
    pub(super) weight: u8,
    /// The canary track's cumulative counters.
    pub(super) counters: Counters,
}

impl CanarySim {
    /// The canary starts on what production runs, with no traffic.
    pub(super) fn new(version: Version, onset_s: f64) -> Self {
        CanarySim {
            version,
            live_since_s: -INITIAL_UPTIME_S,
            onset_s,
            deploying: None,
            weight: 0,
            counters: Counters::default(),
        }
    }
}

/// The canary's state, as the fleet's ground truth.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryTruth {
    pub version: String,
    pub weight: u8,
    pub deploying_to: Option<String>,
    pub requests_total: u64,
    pub errors_total: u64,
}

impl World {
    pub(super) fn canary_badness(&self) -> f64 {
        let c = &self.canary;
        if self.is_bad(&c.version) {
            traffic::badness(self.sim_s - c.live_since_s, c.onset_s, RAMP_S)
        } else {
            0.0
        }
    }

    pub(super) fn settle_canary(&mut self, now: Instant) {
        let due = matches!(&self.canary.deploying, Some(d) if d.done_at <= now);
        if due && let Some(d) = self.canary.deploying.take() {
            let onset = ONSET_MIN_S + ONSET_JITTER_S * self.rng.f64();
            let c = &mut self.canary;
            tracing::info!(from = %c.version, to = %d.to, "demo canary deploy done");
            c.version = d.to;
            c.live_since_s = self.sim_s;
            c.onset_s = onset;
        }
    }

    /// The series an environment's metrics are rendered from: extra labels
    /// and counters. Production is split by track while the canary has
    /// traffic, and one total otherwise.
    pub(super) fn series_of(&self, e: &EnvSim) -> Vec<(String, Counters)> {
        if e.name != CANARY_ENV {
            return vec![(String::new(), e.traffic.counters.clone())];
        }
        if self.canary.weight > 0 {
            vec![
                (
                    format!(",{TRACK_LABEL}=\"stable\""),
                    e.traffic.counters.clone(),
                ),
                (
                    format!(",{TRACK_LABEL}=\"canary\""),
                    self.canary.counters.clone(),
                ),
            ]
        } else {
            vec![(
                String::new(),
                e.traffic.counters.plus(&self.canary.counters),
            )]
        }
    }

    pub(super) fn canary_truth(&self) -> CanaryTruth {
        let c = &self.canary;
        CanaryTruth {
            version: c.version.to_string(),
            weight: c.weight,
            deploying_to: c.deploying.as_ref().map(|d| d.to.to_string()),
            requests_total: c.counters.requests(),
            errors_total: c.counters.errors(),
        }
    }
}

fn no_canary(env: &str) -> Response {
    if ENVIRONMENTS.contains(&env) {
        error(
            StatusCode::NOT_FOUND,
            format!("{env} runs no canary in the demo; only {CANARY_ENV} does"),
        )
    } else {
        unknown_env(env)
    }
}

pub(super) async fn version(State(state): State<AppState>, Path(env): Path<String>) -> Response {
    if env != CANARY_ENV {
        return no_canary(&env);
    }
    let mut w = state.world();
    w.settle(Instant::now());
    let t = w.canary_truth();
    axum::Json(json!({
        "version": t.version,
        "weight": t.weight,
        "deploying_to": t.deploying_to,
    }))
    .into_response()
}

pub(super) async fn deploy(
    State(state): State<AppState>,
    Path(env): Path<String>,
    body: Bytes,
) -> Response {
    if env != CANARY_ENV {
        return no_canary(&env);
    }
    let to = match parse_deploy(&env, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = Instant::now();
    let mut w = state.world();
    w.settle(now);
    if let Some(d) = &w.canary.deploying {
        return error(
            StatusCode::CONFLICT,
            format!("a deploy of {} to the canary is already running", d.to),
        );
    }
    let from = w.canary.version.clone();
    w.canary.deploying = Some(Deploy {
        to: to.clone(),
        done_at: now + state.deploy_duration,
    });
    tracing::info!(%from, %to, "demo canary deploy started");
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "env": env,
            "track": "canary",
            "from": from.as_str(),
            "version": to.as_str(),
            "status": "deploying",
            "eta_ms": state.deploy_duration.as_millis() as u64,
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct WeightRequest {
    weight: serde_json::Value,
}

pub(super) async fn weight(State(state): State<AppState>, Path(env): Path<String>) -> Response {
    if env != CANARY_ENV {
        return no_canary(&env);
    }
    let w = state.world();
    axum::Json(json!({ "weight": w.canary.weight })).into_response()
}

pub(super) async fn set_weight(
    State(state): State<AppState>,
    Path(env): Path<String>,
    body: Bytes,
) -> Response {
    if env != CANARY_ENV {
        return no_canary(&env);
    }
    let weight = match serde_json::from_slice::<WeightRequest>(&body) {
        Ok(r) => match r.weight.as_u64().filter(|n| *n <= 100) {
            Some(n) => n as u8,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "weight must be a whole number from 0 to 100, not {}",
                        r.weight
                    ),
                );
            }
        },
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid JSON body: {e}; expected {{\"weight\": 10}}"),
            );
        }
    };
    let mut w = state.world();
    w.settle(Instant::now());
    let from = w.canary.weight;
    w.canary.weight = weight;
    tracing::info!(from, to = weight, "demo canary weight set");
    axum::Json(json!({ "weight": weight, "from": from })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(&FleetOptions::default())
    }

    #[test]
    fn the_canary_starts_on_production_s_version_without_traffic() {
        let mut w = world();
        let prod = w.env(CANARY_ENV).unwrap().version.clone();
        assert_eq!(w.canary.version, prod);
        for _ in 0..50 {
            w.advance(0.1);
        }
        assert_eq!(w.canary.counters.requests(), 0);
        let text = w.render();
        assert!(!text.contains("track="), "no split at weight 0");
    }

    #[test]
    fn a_weighted_canary_splits_production_s_metrics_by_track() {
        let mut w = world();
        let now = Instant::now();
        w.canary.deploying = Some(Deploy {
            to: Version::parse(BAD_VERSION).unwrap(),
            done_at: now,
        });
        w.settle(now);
        assert_eq!(w.canary.version.as_str(), BAD_VERSION);
        w.canary.weight = 10;
        let total_before = w.env(CANARY_ENV).unwrap().traffic.counters.requests();
        // 40 simulated seconds: the bad canary turns fully bad (onset ≤ 10 s, ramp 15 s).
        for _ in 0..400 {
            w.advance(0.1);
        }
        let stable = w.env(CANARY_ENV).unwrap().traffic.counters.clone();
        let canary = w.canary.counters.clone();
        let (stable, canary) = (&stable, &canary);
        let served = stable.requests() - total_before + canary.requests();
        let share = canary.requests() as f64 / served as f64;
        assert!((0.07..=0.13).contains(&share), "canary share {share}");
        let er = |c: &Counters| c.errors() as f64 / c.requests() as f64;
        assert!(er(canary) > 0.03, "canary error rate {}", er(canary));
        assert!(er(stable) < 0.012, "stable error rate {}", er(stable));
        let text = w.render();
        assert!(
            text.contains("http_requests_total{env=\"production\",track=\"canary\",code=\"500\"}")
        );
        assert!(text.contains(
            "http_request_duration_seconds_bucket{env=\"production\",track=\"stable\",le=\"+Inf\"}"
        ));
        assert!(text.contains("http_requests_total{env=\"staging\",code=\"200\"}"));
        // Production's own version is the stable track's.
        assert_eq!(w.env(CANARY_ENV).unwrap().version.as_str(), "v1.7.3");
        // Back to 0: one total again, equal to both tracks together.
        w.canary.weight = 0;
        let text = w.render();
        assert!(!text.contains("track="));
        let all = stable.plus(canary);
        assert!(text.contains(&format!(
            "http_requests_total{{env=\"production\",code=\"500\"}} {}",
            all.by_code[2]
        )));
    }
}
