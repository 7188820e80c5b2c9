//! Production's two blue-green slots in the demo fleet (SPEC §6):
//!
//! ```text
//! GET  /envs/production/live                {"slot": "blue"}
//! POST /envs/production/live                {"slot": "green"} -> switch, immediate
//! GET  /envs/production/slots/S/version     {"version": "v1.7.3"}
//! POST /envs/production/slots/S/deploy      {"version": "v1.8.0"} -> 202; lands after `deploy_duration`
//! ```
//!
//! Production itself — its `/version` and its metrics — is whatever the
//! live slot runs: a switch changes both at once, so a bad release shows
//! while its slot is live and is gone the moment traffic switches back.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, Deploy, World, error};
use crate::domain::Version;

/// The environment that has slots.
pub const SLOT_ENV: &str = "production";
/// Its slots, in order.
pub const SLOTS: [&str; 2] = ["blue", "green"];
/// What the idle slot runs when the fleet starts (the live one, blue, runs
/// production's initial version).
pub const INITIAL_IDLE_VERSION: &str = "v1.7.2";

/// The slots' state.
pub(super) struct Slots {
    pub live: usize,
    pub versions: [Version; 2],
    pub deploying: [Option<Deploy>; 2],
}

impl Slots {
    pub(super) fn new(live_version: &Version) -> Slots {
        Slots {
            live: 0,
            versions: [
                live_version.clone(),
                Version::parse(INITIAL_IDLE_VERSION)
                    .unwrap_or_else(|_| unreachable!("valid constant")),
            ],
            deploying: [None, None],
        }
    }
}

fn slot_index(slot: &str) -> Option<usize> {
    SLOTS.iter().position(|s| *s == slot)
}

/// Why a slot request is refused.
#[derive(Debug, PartialEq)]
pub(super) enum SlotRefusal {
    UnknownSlot,
    Busy { to: String },
}

impl World {
    /// Make the live slot's version production's, as if it just went live.
    fn go_live(&mut self, slot: usize) {
        let sim_s = self.sim_s;
        let onset = super::ONSET_MIN_S + super::ONSET_JITTER_S * self.rng.f64();
        let version = self.slots.versions[slot].clone();
        self.slots.live = slot;
        if let Some(e) = self.env_mut(SLOT_ENV)
            && e.version != version
        {
            e.version = version;
            e.live_since_s = sim_s;
            e.onset_s = onset;
        }
    }

    /// Finish the slot deploys due at `now` (called by `settle`).
    pub(super) fn settle_slots(&mut self, now: Instant) {
        for (i, slot) in SLOTS.iter().enumerate() {
            let due = matches!(&self.slots.deploying[i], Some(d) if d.done_at <= now);
            if due && let Some(d) = self.slots.deploying[i].take() {
                tracing::info!(slot, to = %d.to, "demo slot deploy done");
                self.slots.versions[i] = d.to;
                if i == self.slots.live {
                    self.go_live(i);
                }
            }
        }
    }

    /// A plain deploy of production lands on its live slot.
    pub(super) fn live_slot_now_runs(&mut self, v: &Version) {
        let live = self.slots.live;
        self.slots.versions[live] = v.clone();
    }

    pub(super) fn start_slot_deploy(
        &mut self,
        slot: &str,
        to: Version,
        done_at: Instant,
    ) -> Result<Version, SlotRefusal> {
        let i = slot_index(slot).ok_or(SlotRefusal::UnknownSlot)?;
        if let Some(d) = &self.slots.deploying[i] {
            return Err(SlotRefusal::Busy {
                to: d.to.to_string(),
            });
        }
        self.slots.deploying[i] = Some(Deploy { to, done_at });
        Ok(self.slots.versions[i].clone())
    }

    /// Send all of production's traffic to `slot`, at once.
    pub(super) fn switch(&mut self, slot: &str) -> Result<(), SlotRefusal> {
        let i = slot_index(slot).ok_or(SlotRefusal::UnknownSlot)?;
        self.go_live(i);
        Ok(())
    }

    pub(super) fn live_slot(&self) -> &'static str {
        SLOTS[self.slots.live]
    }

    pub(super) fn slot_version(&self, slot: &str) -> Option<&Version> {
        slot_index(slot).map(|i| &self.slots.versions[i])
    }
}

fn production_only(env: &str) -> Option<Response> {
    (env != SLOT_ENV).then(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("only {SLOT_ENV} has blue-green slots in the demo, not {env:?}"),
        )
    })
}

fn unknown_slot(slot: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("unknown slot {slot:?}; slots: {}", SLOTS.join(", ")),
    )
}

pub(super) async fn get_live(State(state): State<AppState>, Path(env): Path<String>) -> Response {
    if let Some(r) = production_only(&env) {
        return r;
    }
    let mut w = state.world();
    w.settle(Instant::now());
    axum::Json(json!({ "slot": w.live_slot() })).into_response()
}

#[derive(Deserialize)]
struct SwitchRequest {
    slot: String,
}

pub(super) async fn post_live(
    State(state): State<AppState>,
    Path(env): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = production_only(&env) {
        return r;
    }
    let req: SwitchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid JSON body: {e}; expected {{\"slot\": \"green\"}}"),
            );
        }
    };
    let mut w = state.world();
    w.settle(Instant::now());
    let from = w.live_slot();
    match w.switch(&req.slot) {
        Ok(()) => {
            tracing::info!(from, to = %req.slot, "demo switch");
            axum::Json(json!({ "slot": w.live_slot(), "from": from })).into_response()
        }
        Err(_) => unknown_slot(&req.slot),
    }
}

pub(super) async fn slot_version(
    State(state): State<AppState>,
    Path((env, slot)): Path<(String, String)>,
) -> Response {
    if let Some(r) = production_only(&env) {
        return r;
    }
    let mut w = state.world();
    w.settle(Instant::now());
    match w.slot_version(&slot) {
        Some(v) => axum::Json(json!({ "version": v.as_str() })).into_response(),
        None => unknown_slot(&slot),
    }
}

#[derive(Deserialize)]
struct SlotDeployRequest {
    version: String,
}

pub(super) async fn slot_deploy(
    State(state): State<AppState>,
    Path((env, slot)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(r) = production_only(&env) {
        return r;
    }
    let req: SlotDeployRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid JSON body: {e}; expected {{\"version\": \"v1.2.3\"}}"),
            );
        }
    };
    let to = match Version::parse(&req.version) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid version: {e}")),
    };
    let now = Instant::now();
    let mut w = state.world();
    w.settle(now);
    match w.start_slot_deploy(&slot, to.clone(), now + state.deploy_duration) {
        Ok(from) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "env": env,
                "slot": slot,
                "from": from.as_str(),
                "version": to.as_str(),
                "status": "deploying",
                "eta_ms": state.deploy_duration.as_millis() as u64,
            })),
        )
            .into_response(),
        Err(SlotRefusal::UnknownSlot) => unknown_slot(&slot),
        Err(SlotRefusal::Busy { to: running }) => error(
            StatusCode::CONFLICT,
            format!("a deploy of {running} to slot {slot} is already running"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::FleetOptions;

    #[test]
    fn production_is_what_the_live_slot_runs_and_a_switch_changes_it_at_once() {
        let mut w = World::new(&FleetOptions::default());
        assert_eq!(w.live_slot(), "blue");
        let bad = Version::parse("v1.8.0").unwrap();
        let now = Instant::now();
        w.start_slot_deploy("green", bad.clone(), now).unwrap();
        w.settle(now);
        assert_eq!(w.slot_version("green"), Some(&bad));
        assert_eq!(w.env("production").unwrap().version.as_str(), "v1.7.3");
        w.switch("green").unwrap();
        assert_eq!(w.env("production").unwrap().version, bad);
        // Fully bad after the onset and ramp.
        for _ in 0..300 {
            w.advance(0.1);
        }
        assert!(w.badness_of(w.env("production").unwrap()) > 0.9);
        w.switch("blue").unwrap();
        assert_eq!(w.env("production").unwrap().version.as_str(), "v1.7.3");
        assert_eq!(w.badness_of(w.env("production").unwrap()), 0.0);
        assert_eq!(w.switch("purple"), Err(SlotRefusal::UnknownSlot));
    }

    #[test]
    fn a_slot_deploy_is_refused_while_one_runs() {
        let mut w = World::new(&FleetOptions::default());
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let v = Version::parse("v1.8.0").unwrap();
        w.start_slot_deploy("green", v.clone(), later).unwrap();
        assert!(matches!(
            w.start_slot_deploy("green", v, later),
            Err(SlotRefusal::Busy { .. })
        ));
    }
}
