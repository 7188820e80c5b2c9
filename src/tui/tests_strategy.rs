//! The console with production on the other rollback strategies: a canary
//! being judged and caught (weight, step, time left, canary-vs-stable
//! charts), blue-green (which slot is live, what each runs, the switch
//! back), the promote dialog's words per strategy, and the rollback plan
//! shown before any deploy.

use std::time::Duration as StdDuration;

use chrono::Duration;
use crossterm::event::KeyCode;

use super::msg::Msg;
use super::state::{Settings, State};
use super::tests::fixture::*;
use super::theme::Theme;
use super::update;
use crate::config::RollbackStrategy;
use crate::domain::strategy::{
    RevertAction, RevertPlan, SlotsView, StrategyOutline, StrategyStatus, revert_plan,
};
use crate::engine::{CanaryState, EnvStatus, Event};
use crate::monitor::{Sample, TrackPair, Verdict, VerdictKind};

fn with_strategy(strategy: RollbackStrategy, outline: StrategyOutline) -> Settings {
    let mut s = settings();
    s.strategies.insert("production".into(), strategy);
    s.outlines.insert("production".into(), outline);
    s
}

/// Change production in the console's last snapshot and load it again.
fn production(s: &mut State, f: impl FnOnce(&mut EnvStatus)) {
    let mut st = s.status.clone().unwrap();
    let prod = st
        .environments
        .iter_mut()
        .find(|e| e.name == "production")
        .unwrap();
    f(prod);
    update(s, Msg::StatusLoaded(Ok(st)));
}

fn plan(action: RevertAction, target: &str, slot: Option<&str>, secs: f64) -> RevertPlan {
    RevertPlan {
        action,
        target: Some(v(target)),
        slot: slot.map(String::from),
        expected_s: Some(secs),
        basis: "median of the last 3".into(),
        after_next_deploy: false,
        live_slot_unknown: false,
    }
}

fn track(t: f64, requests: f64, err: f64, p95: f64) -> Sample {
    Sample {
        t,
        requests,
        errors: (requests * err).round(),
        p50_ms: Some(p95 / 3.0),
        p95_ms: Some(p95),
        p99_ms: Some(p95 * 2.0),
    }
}

/// Step `i` (2 s each) of v1.8.0 on the canary at 10%: stable steady,
/// the canary turning bad after 10 s.
fn pair(i: i64) -> TrackPair {
    let t = 2.0 * i as f64;
    let w = wobble(i);
    let bad = t > 10.0;
    TrackPair {
        t,
        canary: track(
            t,
            40.0,
            if bad { 0.09 } else { 0.004 },
            if bad { 310.0 } else { 125.0 + 10.0 * w },
        ),
        stable: track(t, 360.0, 0.003 + 0.002 * w, 120.0 + 15.0 * w),
    }
}

fn verdict(kind: VerdictKind, reason: &str, at: Option<f64>) -> Verdict {
    Verdict {
        kind,
        metric: None,
        detected_at: at,
        reason: reason.into(),
    }
}

/// A console whose production is a canary environment, with v1.8.0's
/// canary at 10% for `steps` metrics steps; the last step's verdict is
/// `last`.
fn canary_console(steps: i64, last: Verdict) -> State {
    let mut s = running_console(
        with_strategy(
            RollbackStrategy::Canary,
            StrategyOutline::Canary {
                steps: vec![10, 50, 100],
                step_time: StdDuration::from_secs(30),
            },
        ),
        Theme::dark(),
    );
    production(&mut s, |p| {
        p.revert = StrategyStatus {
            strategy: "canary".into(),
            rollback_plan: revert_plan(RevertAction::CanaryWeightZero, None, None, &[], ""),
            slots: None,
        };
    });
    approved(&mut s);
    key(&mut s, 'p');
    code(&mut s, KeyCode::Enter);
    let started = s.now;
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: "production".into(),
            version: v("v1.8.0"),
            from: Some(v("v1.7.3")),
            rollback: false,
        }),
    );
    for i in 1..=steps {
        update(&mut s, Msg::Tick(started + Duration::seconds(2 * i)));
        let verdict = if i == steps {
            last.clone()
        } else if i < 3 {
            verdict(
                VerdictKind::InsufficientData,
                "insufficient data: the canary served 60 requests at 10% so far in this step (need 100)",
                None,
            )
        } else {
            verdict(
                VerdictKind::Healthy,
                "canary error rate 0.40% vs stable 0.42% over the same 8s (n=160) — healthy",
                None,
            )
        };
        update(
            &mut s,
            Msg::Engine(Event::CanaryStep {
                env: "production".into(),
                version: v("v1.8.0"),
                weight: 10,
                step: 1,
                steps: 3,
                left_s: 30.0 - 2.0 * i as f64,
                verdict,
                started,
                step_t: 0.0,
                pairs: vec![pair(i)],
            }),
        );
    }
    s
}

#[test]
fn canary_being_judged() {
    let s = canary_console(
        9,
        verdict(
            VerdictKind::Healthy,
            "canary error rate 2.1% vs stable 0.42% over the same 16s (n=320) — healthy",
            None,
        ),
    );
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("Canary production · v1.8.0 · 10% · step 1/3 · 0:12 left"),
        "{text}"
    );
    assert!(text.contains("state    canary 10% · step 1/3"), "{text}");
    assert!(text.contains("Error rate"), "{text}");
    assert!(text.contains("Latency p95"), "{text}");
    assert!(
        text.contains("━ canary") || text.contains("• canary"),
        "{text}"
    );
    assert!(text.contains("stable"), "{text}");
    assert!(
        text.contains("… no regression so far (10%, step 1/3)"),
        "{text}"
    );
    assert!(text.contains("r: canary weight → 0"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn canary_caught_at_its_first_step() {
    let mut s = canary_console(
        9,
        verdict(
            VerdictKind::Regression,
            "canary error rate 9.0% vs stable 0.42% over the same 18s (n=360, 32 errors vs 1.5 expected, p<0.001) — regression",
            Some(16.0),
        ),
    );
    update(
        &mut s,
        Msg::Engine(Event::DeployFinished {
            env: "production".into(),
            version: v("v1.8.0"),
            ok: false,
            detail: "canary of v1.8.0 caught at 10% (step 1/3): …; the canary keeps 10% of the traffic until rolled back".into(),
        }),
    );
    // The snapshot after: the canary still has its traffic (no auto-rollback).
    production(&mut s, |p| {
        p.canary = Some(CanaryState {
            version: v("v1.8.0"),
            weight: 10,
            step: 0,
            steps: 3,
            step_ends_at: None,
            verdict: None,
            unjudged: None,
        });
    });
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("Last canary · production · v1.8.0 · caught at 10% · weight now 10%"),
        "{text}"
    );
    assert!(
        text.contains("✗ REGRESSION at +16s (10%, step 1/3)"),
        "{text}"
    );
    assert!(text.contains("│ step │ verdict"), "{text}");
    assert!(text.contains("canary v1.8.0 10%"), "{text}");
    insta::assert_snapshot!(text);
}

/// After a shipdeck was killed outright: production's canary keeps 10%
/// that nobody judges, or its last deploy has no outcome. The console's
/// production card says so, never reading as an idle environment.
#[test]
fn a_killed_shipdecks_canary_or_deploy_is_said_on_the_card() {
    let mut s = running_console(
        with_strategy(
            RollbackStrategy::Canary,
            StrategyOutline::Canary {
                steps: vec![10, 50, 100],
                step_time: StdDuration::from_secs(30),
            },
        ),
        Theme::dark(),
    );
    production(&mut s, |p| {
        p.canary = Some(CanaryState {
            version: v("v1.8.1"),
            weight: 10,
            step: 0,
            steps: 3,
            step_ends_at: None,
            verdict: None,
            unjudged: Some("its promotion by alice never finished".into()),
        });
    });
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("! canary v1.8.1 at 10%: no shipdeck")
            && text.contains("judges it; r: weight → 0"),
        "{text}"
    );
    production(&mut s, |p| {
        p.canary = None;
        p.unsettled = Some("the promotion to v1.8.1 has no outcome".into());
    });
    let text = screen(&s, 160, 45);
    assert!(text.contains("! the promotion to v1.8.1 has no"), "{text}");
}

fn blue_green_console() -> State {
    let mut s = running_console(
        with_strategy(
            RollbackStrategy::BlueGreen,
            StrategyOutline::BlueGreen {
                slots: ["blue".into(), "green".into()],
                keep_warm: StdDuration::from_secs(3600),
            },
        ),
        Theme::dark(),
    );
    production(&mut s, |p| {
        p.revert = StrategyStatus {
            strategy: "blue-green".into(),
            rollback_plan: plan(RevertAction::SwitchBack, "v1.7.2", Some("green"), 0.21),
            slots: Some(SlotsView {
                live: Some("blue".into()),
                versions: [
                    ("blue".to_string(), Some(v("v1.7.3"))),
                    ("green".to_string(), Some(v("v1.7.2"))),
                ]
                .into_iter()
                .collect(),
                error: None,
            }),
        };
    });
    s
}

/// The promote dialog's text (inside its double border), its wrapped
/// lines joined again.
fn dialog_text(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| l.split('║').nth(1))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn blue_green_promote_dialog_names_the_slots() {
    let mut s = blue_green_console();
    approved(&mut s);
    key(&mut s, 'p');
    let text = screen(&s, 160, 45);
    let flat = dialog_text(&text);
    assert!(
        flat.contains("blue-green: deploys v1.8.0 to green, waits until green reports it, then switches traffic from blue to green; blue stays warm for 1h"),
        "{flat}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn blue_green_after_the_switch() {
    let mut s = blue_green_console();
    production(&mut s, |p| {
        p.version = Some(v("v1.8.0"));
        p.promotion = None;
        p.promotion_error = Some("production already runs v1.8.0".into());
        p.revert.rollback_plan = plan(RevertAction::SwitchBack, "v1.7.3", Some("blue"), 0.21);
        p.revert.slots = Some(SlotsView {
            live: Some("green".into()),
            versions: [
                ("blue".to_string(), Some(v("v1.7.3"))),
                ("green".to_string(), Some(v("v1.8.0"))),
            ]
            .into_iter()
            .collect(),
            error: None,
        });
    });
    let text = screen(&s, 160, 45);
    assert!(text.contains("version  v1.8.0 · green live"), "{text}");
    // A narrow column keeps the version and the time: the compact plan.
    assert!(text.contains("r: back to blue (v1.7.3), ~0.2 s"), "{text}");
    insta::assert_snapshot!(text);
    // Wider: both slots, the plan in full.
    let wide = screen(&s, 200, 50);
    assert!(wide.contains("v1.8.0 · green live · blue v1.7.3"), "{wide}");
    assert!(
        wide.contains("r: switch back to blue (v1.7.3), ~0.2 s"),
        "{wide}"
    );
    // The detail view: what each slot runs.
    key(&mut s, 'v');
    let detail = screen(&s, 160, 45);
    assert!(
        detail.contains("blue v1.7.3 · green v1.8.0 (live)"),
        "{detail}"
    );
}

#[test]
fn the_promote_dialog_says_what_each_strategy_does() {
    let mut s = running_console(
        with_strategy(
            RollbackStrategy::Canary,
            StrategyOutline::Canary {
                steps: vec![10, 50, 100],
                step_time: StdDuration::from_secs(30),
            },
        ),
        Theme::dark(),
    );
    approved(&mut s);
    key(&mut s, 'p');
    let flat = dialog_text(&screen(&s, 160, 45));
    assert!(
        flat.contains(
            "canary: deploys v1.8.0 to the canary, then gives it 10% → 50% → 100% of the traffic, each step judged for 30s against stable"
        ),
        "{flat}"
    );
    let mut plain = console();
    approved(&mut plain);
    key(&mut plain, 'p');
    let flat = dialog_text(&screen(&plain, 160, 45));
    assert!(flat.contains("redeploy: deploys v1.8.0 in place"), "{flat}");
}

#[test]
fn every_environment_shows_its_plan_before_any_deploy() {
    let mut s = console();
    production(&mut s, |p| {
        p.last_deploy = None;
        p.rollback = None;
        p.revert.rollback_plan = revert_plan(RevertAction::Redeploy, None, None, &[], "production")
            .after_next_deploy(v("v1.7.3"), None);
    });
    // The column says what `r` answers now (nothing to go back to), never
    // the plan for after the next deploy as if it were today's.
    let text = screen(&s, 160, 45);
    assert!(text.contains("r: nothing to roll back to yet"), "{text}");
    assert!(!text.contains("r: redeploy v1.7.3"), "{text}");
    // The detail view says what it will be and when it applies.
    key(&mut s, 'v');
    let flat: String = screen(&s, 160, 45)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("after the next deploy: redeploy v1.7.3, time unknown"),
        "{flat}"
    );
}

#[test]
fn after_a_blue_green_rollback_the_column_says_what_r_does_now() {
    // Rolled back from green (v1.8.0, caught) to blue (v1.7.3): blue is
    // live and nothing older is known good. The engine's plan is the one
    // for after the next deploy (back to blue); `r` now has nowhere to go.
    let mut s = blue_green_console();
    production(&mut s, |p| {
        p.rollback = Some(crate::engine::RollbackTarget {
            to: None,
            detail: "nothing to roll back to: v1.7.3 is the last known-good version production ran"
                .into(),
        });
        p.revert.rollback_plan =
            revert_plan(RevertAction::SwitchBack, None, None, &[], "production")
                .after_next_deploy(v("v1.7.3"), Some("blue".into()));
    });
    let text = screen(&s, 160, 45);
    assert!(text.contains("r: nothing to roll back to"), "{text}");
    assert!(!text.contains("back to blue (v1.7.3)"), "{text}");
    // The key says the same.
    key(&mut s, 'r');
    let text = screen(&s, 160, 45);
    assert!(text.contains("nothing to roll back to: v1.7.3"), "{text}");
}

#[test]
fn a_blue_green_environment_whose_live_slot_cannot_be_read_says_so() {
    let mut s = blue_green_console();
    production(&mut s, |p| {
        p.revert.rollback_plan = revert_plan(
            RevertAction::SwitchBack,
            Some(v("v1.7.3")),
            None,
            &[],
            "production",
        )
        .live_slot_unknown();
    });
    let text = screen(&s, 160, 45);
    // The column is narrow here: the compact form.
    assert!(text.contains("r: live slot unknown"), "{text}");
    assert!(!text.contains("redeploy v1.7.3"), "{text}");
    key(&mut s, 'v');
    let flat: String = screen(&s, 160, 45)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("r: live slot unknown: no way back planned until it reads"),
        "{flat}"
    );
    assert!(!flat.contains("redeploy v1.7.3"), "{flat}");
}
