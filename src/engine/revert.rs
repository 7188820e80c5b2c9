//! Every environment's rollback plan, shown before anyone needs it: what
//! `r` would do (redeploy, switch back, deploy the idle slot and switch,
//! canary weight to 0), to which version, and how long it is expected to
//! take, measured from the environment's own audit log.

use chrono::{DateTime, Utc};

use super::Engine;
use super::strategy::Strategy;
use crate::backends::slots::SlotsReading;
use crate::domain::strategy::{
    BlueGreenMove, BlueGreenRollback, RevertAction, SlotsView, StrategyStatus, blue_green_rollback,
    revert_plan,
};
use crate::domain::{DeployRecord, Version};

/// How many of an environment's newest audit records the expected time is
/// looked for in.
const PLAN_HISTORY: usize = 200;

impl Engine {
    /// The strategy, rollback plan and slots of environment `idx`, given
    /// where a rollback would go (`target`), what it runs now (`current`)
    /// its last recorded deploy and, for a canary, its traffic weight. With
    /// nothing to roll back to yet, the plan is the one for after the next
    /// deploy: back to `current`. A blue-green environment's plan is made
    /// of `slots`, the reading the status took its version from (its
    /// sources are read here only without one).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn strategy_status(
        &self,
        idx: usize,
        slots: Option<SlotsReading>,
        target: Option<&Version>,
        current: Option<&Version>,
        last_deploy: Option<&DeployRecord>,
        canary_weight: Option<u8>,
        now: DateTime<Utc>,
    ) -> StrategyStatus {
        let cfg_env = &self.inner.config.environments[idx];
        let env = cfg_env.name();
        let history = self
            .inner
            .store
            .history(Some(env), PLAN_HISTORY)
            .await
            .unwrap_or_default();
        let strategy = cfg_env.strategy();
        let plan = |action, slot| revert_plan(action, target.cloned(), slot, &history, env);
        match &self.inner.envs[idx].strategy {
            Strategy::BlueGreen {
                backends,
                keep_warm,
                ..
            } => {
                let [a, b] = backends.slots();
                let reading = match slots {
                    Some(r) => r,
                    None => backends.read_all().await,
                };
                let SlotsReading {
                    live,
                    versions: [va, vb],
                    ..
                } = reading;
                let mut errors = Vec::new();
                // Each error names its source: the live slot's and each
                // slot's have names of their own (see `BlueGreen`).
                let live = live.map_err(|e| errors.push(e.to_string())).ok();
                let va = va.map_err(|e| errors.push(e.to_string())).ok();
                let vb = vb.map_err(|e| errors.push(e.to_string())).ok();
                let slots = SlotsView {
                    live: live.clone(),
                    versions: [(a.clone(), va.clone()), (b.clone(), vb.clone())]
                        .into_iter()
                        .collect(),
                    error: (!errors.is_empty()).then(|| errors.join("; ")),
                };
                let rollback_plan = match (live.as_deref(), target) {
                    (Some(live), Some(target)) => {
                        let (idle_runs, live_runs) =
                            if live == a { (&vb, &va) } else { (&va, &vb) };
                        let left_idle_at = last_deploy
                            .filter(|d| Some(&d.version) == live_runs.as_ref())
                            .map(|d| d.at);
                        match blue_green_rollback(&BlueGreenRollback {
                            slots: backends.slots(),
                            live,
                            idle_runs: idle_runs.as_ref(),
                            target,
                            left_idle_at,
                            keep_warm: *keep_warm,
                            now,
                        }) {
                            Some(BlueGreenMove::SwitchBack { slot }) => {
                                plan(RevertAction::SwitchBack, Some(slot))
                            }
                            // The engine switches without redeploying to
                            // an idle slot that already answers with the
                            // target, warm or not (see `blue_green_steps`).
                            Some(BlueGreenMove::DeployAndSwitch { slot, .. })
                                if idle_runs.as_ref() == Some(target) =>
                            {
                                plan(RevertAction::SwitchBack, Some(slot))
                            }
                            Some(BlueGreenMove::DeployAndSwitch { slot, .. }) => {
                                plan(RevertAction::DeployAndSwitch, Some(slot))
                            }
                            // The live slot read as none of `slots`.
                            None => plan(RevertAction::SwitchBack, None).live_slot_unknown(),
                        }
                    }
                    // Before any deploy: the next one goes to the idle
                    // slot, and `r` switches back to today's live slot.
                    (Some(live), None) => {
                        let live_runs = if live == a { &va } else { &vb };
                        match live_runs {
                            Some(v) => plan(RevertAction::SwitchBack, None)
                                .after_next_deploy(v.clone(), Some(live.to_string())),
                            None => plan(RevertAction::SwitchBack, None),
                        }
                    }
                    (None, Some(_)) => plan(RevertAction::SwitchBack, None).live_slot_unknown(),
                    (None, None) => plan(RevertAction::SwitchBack, None),
                };
                StrategyStatus {
                    strategy: strategy.as_str().into(),
                    rollback_plan,
                    slots: Some(slots),
                }
            }
            // A running canary is stopped by its weight going to 0:
            // traffic is back on the stable track at once.
            Strategy::Canary { .. } if canary_weight.is_some_and(|w| w > 0) => StrategyStatus {
                strategy: strategy.as_str().into(),
                rollback_plan: plan(RevertAction::CanaryWeightZero, None),
                slots: None,
            },
            // No canary traffic: a rollback redeploys the stable track.
            Strategy::Redeploy { .. } | Strategy::Canary { .. } => {
                let mut rollback_plan = plan(RevertAction::Redeploy, None);
                if let (None, Some(cur)) = (target, current) {
                    rollback_plan = rollback_plan.after_next_deploy(cur.clone(), None);
                }
                StrategyStatus {
                    strategy: strategy.as_str().into(),
                    rollback_plan,
                    slots: None,
                }
            }
        }
    }
}
