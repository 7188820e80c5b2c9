//! `update` driven by messages: selection and status polling, the promote,
//! approval and rollback dialogs, notes, read-only mode, quitting and the
//! engine's refusals.

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::domain::{Approval, DeployRecord};
use crate::monitor::{Metric, Sample};
use crate::tui::msg::{Done, Failure};
use crate::tui::state::Detail;
use crate::tui::state::{Level, MAX_SAMPLES, Settings};
use crate::tui::tests::fixture::*;
use crate::tui::theme::Theme;

mod watch;

fn ctrl_c(s: &mut State) -> Vec<Effect> {
    update(
        s,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    )
}

fn notice(s: &State) -> String {
    s.notices
        .front()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

fn dialog(s: &State) -> Option<&Pending> {
    match s.overlays.last() {
        Some(Overlay::Dialog(d)) => Some(&d.action),
        _ => None,
    }
}

#[test]
fn selection_stays_in_bounds_and_survives_reloads() {
    let mut s = console();
    assert_eq!(s.selected, 3);
    key(&mut s, 'l');
    assert_eq!(s.selected, 3, "no column right of production");
    for _ in 0..6 {
        key(&mut s, 'h');
    }
    assert_eq!(s.selected, 0);
    code(&mut s, KeyCode::Right);
    let st = status(s.now, 1);
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    assert_eq!(s.selected_env().unwrap().name, "development");
}

#[test]
fn ticks_poll_the_status_every_refresh_and_never_twice_at_once() {
    let settings = Settings {
        refresh: std::time::Duration::from_secs(5),
        ..settings()
    };
    let mut s = State::new(settings, Theme::dark(), t0());
    assert_eq!(update(&mut s, Msg::Tick(t0())), vec![Effect::LoadStatus]);
    assert_eq!(
        update(&mut s, Msg::Tick(t0() + Duration::seconds(6))),
        vec![],
        "still loading"
    );
    update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
    assert_eq!(
        update(&mut s, Msg::Tick(t0() + Duration::seconds(7))),
        vec![Effect::LoadStatus]
    );
    update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
    assert_eq!(
        update(&mut s, Msg::Tick(t0() + Duration::seconds(8))),
        vec![],
        "refresh not due"
    );
    assert_eq!(
        update(&mut s, Msg::Tick(t0() + Duration::seconds(12))),
        vec![Effect::LoadStatus]
    );
}

#[test]
fn a_store_change_reads_the_status_at_once_and_again_after_one_in_flight() {
    let settings = Settings {
        refresh: std::time::Duration::from_secs(60),
        ..settings()
    };
    let mut s = State::new(settings, Theme::dark(), t0());
    assert_eq!(update(&mut s, Msg::Tick(t0())), vec![Effect::LoadStatus]);
    update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
    // Long before the next refresh, another process approved.
    assert_eq!(update(&mut s, Msg::StoreChanged), vec![Effect::LoadStatus]);
    // A change while that read is on its way: it may predate the
    // change, so one more read follows it.
    assert_eq!(update(&mut s, Msg::StoreChanged), vec![]);
    assert_eq!(
        update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0)))),
        vec![Effect::LoadStatus]
    );
    update(&mut s, Msg::StatusLoaded(Ok(status(t0(), 0))));
    assert_eq!(
        update(&mut s, Msg::Tick(t0() + Duration::seconds(5))),
        vec![],
        "the refresh clock is not shortened by it"
    );
}

#[test]
fn status_error_keeps_the_last_snapshot() {
    let mut s = console();
    let before = s.status.as_ref().unwrap().generated_at;
    update(&mut s, Msg::StatusLoaded(Err("boom".into())));
    assert_eq!(s.status.as_ref().unwrap().generated_at, before);
    assert!(matches!(
        s.status_panel(),
        crate::tui::state::PanelState::Error { reason: "boom", .. }
    ));
    let st = status(s.now, 3);
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    assert!(matches!(
        s.status_panel(),
        crate::tui::state::PanelState::Loaded { .. }
    ));
}

#[test]
fn live_points_are_deduplicated_and_age_pruned() {
    let mut s = console();
    let n = s.envs["production"].live.len();
    assert_eq!(n, 121);
    let again = s.status.clone().unwrap();
    update(&mut s, Msg::StatusLoaded(Ok(again)));
    assert_eq!(
        s.envs["production"].live.len(),
        n,
        "same as_of is one point"
    );
    s.status_loading = false;
    let later = s.now + Duration::minutes(25);
    update(&mut s, Msg::Tick(later));
    let left = s.envs["production"].live.len();
    assert!(left < n && left > 0, "older than 30 min dropped: {left}");
}

#[test]
fn promote_right_after_a_go_waits_for_the_fresh_snapshot() {
    let mut s = console();
    key(&mut s, 'a');
    code(&mut s, KeyCode::Enter);
    let a = Approval {
        seq: None,
        env: "production".into(),
        version: v("v1.8.0"),
        decision: Decision::Go,
        actor: "alice".into(),
        at: t0(),
        note: None,
    };
    let fx = update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Approve,
            result: Ok(Done::Recorded(a)),
        },
    );
    assert!(fx.contains(&Effect::LoadStatus) || s.reload_after, "{fx:?}");
    // The snapshot on screen still says "no Go": p must not be refused on it.
    assert_eq!(key(&mut s, 'p'), vec![]);
    assert!(s.overlays.is_empty());
    assert!(!notice(&s).contains("cannot promote"), "{}", notice(&s));
    let mut fresh = s.status.clone().unwrap();
    let prod = fresh
        .environments
        .iter_mut()
        .find(|e| e.name == "production")
        .unwrap();
    for g in &mut prod.promotion.as_mut().unwrap().gates {
        g.ok = true;
    }
    s.reload_after = false;
    update(&mut s, Msg::StatusLoaded(Ok(fresh)));
    assert!(
        matches!(s.overlays.last(), Some(Overlay::Dialog(_))),
        "the promote dialog opens once the snapshot is fresh"
    );
}

#[test]
fn promote_refused_by_a_gate_says_why_without_a_dialog() {
    let mut s = console();
    assert_eq!(key(&mut s, 'p'), vec![]);
    assert!(s.overlays.is_empty());
    assert!(notice(&s).contains("cannot promote production: approval — no Go recorded"));
    code(&mut s, KeyCode::Left);
    code(&mut s, KeyCode::Left);
    key(&mut s, 'p');
    assert!(notice(&s).contains("development already runs v1.8.1"));
}

#[test]
fn promote_dialog_confirms_the_version_it_showed() {
    let mut s = console();
    approved(&mut s);
    key(&mut s, 'p');
    let Some(Pending::Promote {
        version, warnings, ..
    }) = dialog(&s)
    else {
        panic!("no promote dialog");
    };
    assert_eq!(version, &v("v1.8.0"));
    assert_eq!(warnings.len(), 1);
    let shown: Vec<String> = warnings.iter().map(|g| g.name.clone()).collect();
    let fx = code(&mut s, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Promote {
            env: "production".into(),
            version: v("v1.8.0"),
            from: Some("staging".into()),
            accepted: shown,
            break_freeze: None,
        }]
    );
    assert!(s.overlays.is_empty());
    assert_eq!(
        s.envs["production"].task.as_ref().unwrap().kind,
        TaskKind::Promote
    );
    // A second promote while the first runs is refused locally.
    key(&mut s, 'p');
    assert!(s.overlays.is_empty());
    assert!(notice(&s).contains("busy"));
}

#[test]
fn staging_promote_without_warnings_does_not_accept_any() {
    let mut s = console();
    code(&mut s, KeyCode::Left);
    key(&mut s, 'p');
    let fx = code(&mut s, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Promote {
            env: "staging".into(),
            version: v("v1.8.1"),
            from: Some("development".into()),
            accepted: vec![],
            break_freeze: None,
        }]
    );
}

#[test]
fn esc_cancels_without_effects() {
    let mut s = console();
    approved(&mut s);
    key(&mut s, 'p');
    assert_eq!(code(&mut s, KeyCode::Esc), vec![]);
    assert!(s.overlays.is_empty());
    assert!(s.envs["production"].task.is_none());
}

#[test]
fn a_pasted_or_typed_note_loses_escape_sequences_and_bidi_controls() {
    let mut s = console();
    key(&mut s, 'x');
    update(
        &mut s,
        Msg::Paste("\u{1b}]0;pwned-title\u{7}see\u{202e}".into()),
    );
    key(&mut s, '\u{2066}');
    key(&mut s, '!');
    let fx = code(&mut s, KeyCode::Enter);
    assert!(
        matches!(&fx[..], [Effect::Approve { note: Some(n), .. }] if n == "see!"),
        "{fx:?}"
    );
}

#[test]
fn approval_takes_a_note_and_typing_does_not_trigger_keys() {
    let mut s = console();
    key(&mut s, 'x');
    for c in "p q r?".chars() {
        assert_eq!(key(&mut s, c), vec![]);
    }
    code(&mut s, KeyCode::Backspace);
    update(&mut s, Msg::Paste("\nsee INC-42".into()));
    assert!(!s.quit);
    let fx = code(&mut s, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Approve {
            env: "production".into(),
            version: v("v1.8.0"),
            decision: Decision::NoGo,
            note: Some("p q r see INC-42".into())
        }]
    );
    // One decision at a time per environment.
    key(&mut s, 'a');
    assert!(s.overlays.is_empty() && notice(&s).contains("busy"));
    let a = Approval {
        seq: None,
        env: "production".into(),
        version: v("v1.8.0"),
        decision: Decision::NoGo,
        actor: "alice".into(),
        at: t0(),
        note: None,
    };
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Reject,
            result: Ok(Done::Recorded(a)),
        },
    );
    // An empty note is no note.
    key(&mut s, 'a');
    key(&mut s, ' ');
    let fx = code(&mut s, KeyCode::Enter);
    assert!(
        matches!(
            &fx[..],
            [Effect::Approve {
                decision: Decision::Go,
                note: None,
                ..
            }]
        ),
        "{fx:?}"
    );
}

#[test]
fn read_only_refuses_every_action_with_a_notice() {
    let settings = Settings {
        read_only: true,
        ..settings()
    };
    let mut s = running_console(settings, Theme::dark());
    approved(&mut s);
    for c in ['p', 'a', 'x', 'r'] {
        assert_eq!(key(&mut s, c), vec![]);
        assert!(s.overlays.is_empty());
        assert!(
            notice(&s).starts_with("read-only mode"),
            "{c}: {}",
            notice(&s)
        );
    }
}

#[test]
fn rollback_without_confirmation_acts_at_once() {
    let settings = Settings {
        confirm_rollback: false,
        ..settings()
    };
    let mut s = running_console(settings, Theme::dark());
    let fx = key(&mut s, 'r');
    assert_eq!(
        fx,
        vec![Effect::Rollback {
            env: "production".into(),
            to: Some(v("v1.7.2"))
        }]
    );
    assert!(s.overlays.is_empty());
}

#[test]
fn rollback_with_no_known_good_target_says_so_and_opens_no_dialog() {
    let settings = Settings {
        confirm_rollback: false,
        ..settings()
    };
    let mut s = running_console(settings, Theme::dark());
    // Back on v1.7.2 after v1.8.0 was caught: the last deploy's "from" is
    // the caught release, and the engine says there is nowhere to go.
    let prod = s
        .status
        .as_mut()
        .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
        .unwrap();
    prod.rollback = Some(crate::engine::RollbackTarget {
        to: None,
        detail: "nothing to roll back to: v1.7.2 is the last known-good version".into(),
    });
    assert_eq!(key(&mut s, 'r'), vec![]);
    assert_eq!(
        notice(&s),
        "production: nothing to roll back to: v1.7.2 is the last known-good version"
    );
    // Nor does the confirming console offer a dialog towards "the version before".
    s.settings.confirm_rollback = true;
    assert_eq!(key(&mut s, 'r'), vec![]);
    assert!(dialog(&s).is_none(), "{:?}", s.overlays);
}

#[test]
fn a_canary_with_traffic_and_no_known_good_target_is_rolled_back_by_weight_0() {
    use crate::domain::strategy::{RevertAction, revert_plan};
    let mut s = console();
    let prod = s
        .status
        .as_mut()
        .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
        .unwrap();
    prod.rollback = Some(crate::engine::RollbackTarget {
        to: None,
        detail: "nothing to roll back to yet".into(),
    });
    prod.revert.rollback_plan = revert_plan(
        RevertAction::CanaryWeightZero,
        None,
        None,
        &[],
        "production",
    );
    // Confirming console: the dialog, not "nothing to roll back to".
    key(&mut s, 'r');
    assert!(
        matches!(dialog(&s), Some(Pending::Rollback { to: None, .. })),
        "{:?} / {}",
        s.overlays,
        notice(&s)
    );
    s.overlays.clear();
    s.settings.confirm_rollback = false;
    assert_eq!(
        key(&mut s, 'r'),
        vec![Effect::Rollback {
            env: "production".into(),
            to: None
        }]
    );
}

#[test]
fn rollback_with_no_target_and_no_history_refuses_as_the_column_says() {
    use crate::domain::strategy::{RevertAction, revert_plan};
    let mut s = console();
    // Before any deploy: the engine knows no target and there is no
    // history; its plan is the one for after the next deploy.
    let prod = s
        .status
        .as_mut()
        .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
        .unwrap();
    prod.rollback = None;
    prod.last_deploy = None;
    prod.revert.rollback_plan = revert_plan(RevertAction::Redeploy, None, None, &[], "production")
        .after_next_deploy(v("v1.7.3"), None);
    assert_eq!(key(&mut s, 'r'), vec![]);
    assert!(dialog(&s).is_none(), "{:?}", s.overlays);
    assert_eq!(notice(&s), "production: nothing to roll back to yet");
    s.settings.confirm_rollback = false;
    assert_eq!(key(&mut s, 'r'), vec![]);
    assert!(s.overlays.is_empty());

    // A canary with traffic and no history is still stopped by `r`.
    let prod = s
        .status
        .as_mut()
        .and_then(|st| st.environments.iter_mut().find(|e| e.name == "production"))
        .unwrap();
    prod.revert.rollback_plan = revert_plan(
        RevertAction::CanaryWeightZero,
        None,
        None,
        &[],
        "production",
    );
    assert_eq!(
        key(&mut s, 'r'),
        vec![Effect::Rollback {
            env: "production".into(),
            to: None
        }]
    );
}

#[test]
fn rollback_asks_by_default_and_names_the_strategy() {
    let mut s = console();
    assert_eq!(
        key(&mut s, 'r'),
        vec![Effect::LoadHistory {
            limit: HISTORY_LIMIT
        }],
        "the dialog's expected time and target record come from the audit log"
    );
    let Some(Pending::Rollback {
        from, to, strategy, ..
    }) = dialog(&s)
    else {
        panic!("no rollback dialog");
    };
    assert_eq!(
        (from.clone(), to.clone(), *strategy),
        (Some(v("v1.7.3")), Some(v("v1.7.2")), "redeploy")
    );
}

#[test]
fn quit_asks_while_something_runs_and_ctrl_c_never_asks() {
    let mut s = console();
    assert_eq!(key(&mut s, 'q'), vec![Effect::Quit]);

    let mut s = console();
    monitored(&mut s, 60, false);
    assert_eq!(key(&mut s, 'q'), vec![]);
    let Some(Pending::Quit) = dialog(&s) else {
        panic!("no quit dialog")
    };
    assert_eq!(
        s.running(),
        vec!["monitoring window of production (29:00 left)".to_string()]
    );
    assert_eq!(code(&mut s, KeyCode::Esc), vec![]);
    assert!(!s.quit);
    key(&mut s, 'q');
    assert_eq!(code(&mut s, KeyCode::Enter), vec![Effect::Quit]);
    assert!(s.quit);

    let mut s = console();
    monitored(&mut s, 60, false);
    key(&mut s, 'a'); // even inside a text field
    assert_eq!(ctrl_c(&mut s), vec![Effect::Quit]);
    assert!(s.quit);
    // What Ctrl-C stopped is kept: the console exits 130 for it, as a
    // command Ctrl-C interrupted does.
    assert_eq!(
        s.interrupted,
        vec!["monitoring window of production (29:00 left)".to_string()]
    );

    // Ctrl-C with nothing running, or a quit confirmed with q, stopped
    // nothing by surprise: no interruption to say.
    let mut s = console();
    ctrl_c(&mut s);
    assert!(s.quit && s.interrupted.is_empty());
    let mut s = console();
    monitored(&mut s, 60, false);
    key(&mut s, 'q');
    code(&mut s, KeyCode::Enter);
    assert!(s.quit && s.interrupted.is_empty());
}

#[test]
fn promote_of_a_monitored_env_starts_its_window_and_others_do_not() {
    let mut s = console();
    let record = |env: &str| DeployRecord {
        seq: None,
        env: env.into(),
        version: v("v1.8.1"),
        from_version: Some(v("v1.8.0")),
        at: t0(),
        actor: "alice".into(),
        kind: crate::domain::DeployKind::Promote,
        url: None,
    };
    let fx = update(
        &mut s,
        Msg::ActionDone {
            env: "staging".into(),
            kind: TaskKind::Promote,
            result: Ok(Done::Deployed(record("staging"))),
        },
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::Watch { .. })));
    s.status_loading = false;
    let fx = update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Promote,
            result: Ok(Done::Deployed(record("production"))),
        },
    );
    assert_eq!(
        fx,
        vec![
            Effect::LoadStatus,
            Effect::Watch {
                env: "production".into()
            }
        ]
    );
    assert_eq!(
        s.envs["production"].task.as_ref().unwrap().kind,
        TaskKind::Watch
    );
}

#[test]
fn refused_and_failed_actions_show_the_engine_reason() {
    let mut s = console();
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Promote,
            result: Err(Failure {
                reason: "no Go recorded for v1.8.0 (approval)".into(),
                refused: true,
                cause: crate::engine::rewatch::Cause::Other,
                caught: false,
            }),
        },
    );
    assert_eq!(
        notice(&s),
        "promote of production refused: no Go recorded for v1.8.0 (approval)"
    );
    assert_eq!(s.notices.front().unwrap().level, Level::Error);
    update(
        &mut s,
        Msg::ActionDone {
            env: "staging".into(),
            kind: TaskKind::Rollback,
            result: Err(Failure {
                reason: "deploy hook exited 1".into(),
                refused: false,
                cause: crate::engine::rewatch::Cause::Other,
                caught: false,
            }),
        },
    );
    assert_eq!(
        notice(&s),
        "roll back of staging failed: deploy hook exited 1"
    );
    let a = Approval {
        seq: None,
        env: "production".into(),
        version: v("v1.8.0"),
        decision: Decision::Go,
        actor: "alice".into(),
        at: t0(),
        note: None,
    };
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Approve,
            result: Ok(Done::Recorded(a)),
        },
    );
    assert_eq!(notice(&s), "Go recorded for v1.8.0 → production by alice");
}
