//! `update` while deploys run and are watched: verdicts and auto-rollback,
//! bounded series, history, the version picker, deploys made elsewhere, the
//! mouse, and backend reports with the reviews they wait for.

use super::*;

#[test]
fn regression_alarms_once_without_auto_rollback_and_r_targets_it() {
    let mut s = console();
    monitored(&mut s, 200, true);
    let alarm = s.alarm.clone().expect("alarm");
    assert_eq!(alarm.env, "production");
    assert!(alarm.reason.contains("6.1%"));
    s.alarm = None;
    let verdict = s.envs["production"]
        .window
        .as_ref()
        .unwrap()
        .verdict
        .clone()
        .unwrap();
    update(
        &mut s,
        Msg::Engine(Event::MonitorFinished {
            env: "production".into(),
            verdict,
        }),
    );
    assert!(s.alarm.is_none(), "announced once per window");
}

#[test]
fn regression_with_auto_rollback_only_notifies() {
    let settings = Settings {
        auto_rollback: true,
        ..settings()
    };
    let mut s = running_console(settings, Theme::dark());
    monitored(&mut s, 200, true);
    assert!(s.alarm.is_none());
    assert!(
        s.notices
            .iter()
            .any(|n| n.text.contains("rolling back automatically"))
    );
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: "production".into(),
            version: v("v1.7.3"),
            from: Some(v("v1.8.0")),
            rollback: true,
        }),
    );
    assert!(s.envs["production"].deploy.as_ref().unwrap().rollback);
}

#[test]
fn window_series_are_bounded() {
    let mut s = console();
    monitored(&mut s, 10, false);
    let w = s.env_ui_mut("production").window.as_mut().unwrap();
    for i in 0..(MAX_SAMPLES + 50) {
        w.push(Sample {
            t: 1.0 + i as f64,
            requests: 1.0,
            errors: 0.0,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
        });
    }
    assert_eq!(w.samples.len(), MAX_SAMPLES);
    assert_eq!(w.samples.front().unwrap().t, 51.0, "oldest dropped first");
    assert_eq!(w.baseline.len(), 180, "baseline untouched");
}

#[test]
fn history_toggles_and_scrolls_within_bounds() {
    let mut s = console();
    assert!(matches!(
        &key(&mut s, 'H')[..],
        [Effect::LoadHistory { .. }]
    ));
    assert_eq!(s.mode, Mode::History);
    assert_eq!(key(&mut s, 'p'), vec![], "no actions from the audit log");
    update(&mut s, Msg::HistoryLoaded(Ok(vec![])));
    key(&mut s, 'j');
    assert_eq!(s.history_cursor, 0);
    code(&mut s, KeyCode::Tab);
    assert_eq!(s.mode, Mode::Console);
    let _ = Metric::ErrorRate;
}

#[test]
fn history_has_a_cursor_pages_a_filter_details_and_esc_returns() {
    let mut s = console();
    update(&mut s, Msg::Resize(100, 30));
    key(&mut s, 'H');
    let log = audit_log(s.now);
    update(&mut s, Msg::HistoryLoaded(Ok(log)));
    let n = s.history_rows().len();
    assert_eq!(n, 40);
    key(&mut s, 'j');
    code(&mut s, KeyCode::Down);
    assert_eq!(s.history_cursor, 2);
    key(&mut s, 'G');
    assert_eq!(s.history_cursor, n - 1);
    key(&mut s, 'j');
    assert_eq!(s.history_cursor, n - 1, "stays on the last row");
    key(&mut s, 'g');
    assert_eq!(s.history_cursor, 0);
    code(&mut s, KeyCode::PageDown);
    let page = s.history_cursor;
    assert_eq!(page, 14, "a page is what the view shows at 100×30");
    code(&mut s, KeyCode::PageUp);
    assert_eq!(s.history_cursor, 0);
    // Enter opens the highlighted record in full; Esc closes it.
    key(&mut s, 'j');
    code(&mut s, KeyCode::Enter);
    match s.overlays.last() {
        Some(Overlay::Detail(Detail::Audit(e))) => assert_eq!(e.id, 39),
        other => panic!("no detail: {other:?}"),
    }
    code(&mut s, KeyCode::Esc);
    assert!(s.overlays.is_empty());
    assert_eq!(s.mode, Mode::History);
    // `/` filters; typed keys are text, not commands.
    key(&mut s, '/');
    for c in "rollback".chars() {
        key(&mut s, c);
    }
    assert_eq!(s.history_filter, "rollback");
    assert_eq!(s.mode, Mode::History);
    assert_eq!(s.history_rows().len(), 1);
    code(&mut s, KeyCode::Enter);
    assert!(s.overlays.is_empty(), "Enter keeps the filter");
    assert_eq!(s.history_rows().len(), 1);
    key(&mut s, '/');
    key(&mut s, 'q');
    assert!(!s.quit, "q typed into the filter");
    code(&mut s, KeyCode::Esc);
    assert!(s.history_filter.is_empty(), "Esc clears the filter");
    assert_eq!(s.history_rows().len(), n);
    // Esc returns to the console.
    code(&mut s, KeyCode::Esc);
    assert_eq!(s.mode, Mode::Console);
}

#[test]
fn picker_offers_what_earlier_stages_run_or_ran_and_promotes_that_version() {
    let mut s = console();
    s.history = Some(audit_log(s.now));
    let fx = key(&mut s, 'P');
    assert_eq!(
        fx,
        vec![Effect::LoadHistory {
            limit: HISTORY_LIMIT
        }]
    );
    let Some(Overlay::Picker(p)) = s.overlays.last() else {
        panic!("no picker");
    };
    let listed: Vec<(String, &str)> = p
        .items
        .iter()
        .map(|i| (i.version.to_string(), i.seen.as_str()))
        .collect();
    assert_eq!(listed[0], ("v1.8.0".to_string(), "runs on staging"));
    assert_eq!(
        listed[1],
        ("v1.8.1".to_string(), "runs on development, local")
    );
    assert!(
        listed
            .iter()
            .any(|(v, seen)| v == "v1.7.9" && seen.starts_with("ran on staging")),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|(v, _)| v == "v1.7.3"),
        "production runs it already"
    );
    key(&mut s, 'j');
    let fx = code(&mut s, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Plan {
            env: "production".into(),
            version: v("v1.8.1")
        }]
    );
    // The engine's plan: a warning, so the normal dialog asks again.
    let mut plan = s
        .env_status("production")
        .unwrap()
        .promotion
        .clone()
        .unwrap();
    plan.version = v("v1.8.1");
    plan.skips = vec!["staging".into()];
    for g in &mut plan.gates {
        g.ok = g.severity == crate::domain::GateSeverity::Block;
    }
    update(
        &mut s,
        Msg::PlanLoaded {
            env: "production".into(),
            version: v("v1.8.1"),
            result: Ok(plan.clone()),
        },
    );
    let Some(Pending::Promote {
        version,
        explicit,
        skips,
        ..
    }) = dialog(&s)
    else {
        panic!("no promote dialog");
    };
    assert_eq!((version, *explicit), (&v("v1.8.1"), true));
    assert_eq!(skips, &vec!["staging".to_string()]);
    assert_eq!(
        code(&mut s, KeyCode::Enter),
        vec![Effect::Promote {
            env: "production".into(),
            version: v("v1.8.1"),
            from: plan.from.clone(),
            accepted: plan.warnings().map(|g| g.name.clone()).collect(),
            break_freeze: None,
        }]
    );
    // A refused plan says why, without a dialog.
    let mut s = console();
    key(&mut s, 'P');
    code(&mut s, KeyCode::Enter);
    plan.gates[1].ok = false;
    update(
        &mut s,
        Msg::PlanLoaded {
            env: "production".into(),
            version: v("v1.8.1"),
            result: Ok(plan),
        },
    );
    assert!(s.overlays.is_empty());
    assert!(notice(&s).starts_with("cannot promote v1.8.1 to production: approval"));
    // The first stage has nothing before it.
    let mut s = console();
    for _ in 0..3 {
        key(&mut s, 'h');
    }
    key(&mut s, 'P');
    assert!(s.overlays.is_empty());
    assert!(notice(&s).contains("first stage"), "{}", notice(&s));
}

#[test]
fn a_deploy_made_elsewhere_is_watched_once() {
    let mut s = console();
    let now = s.now;
    // Another console promotes production: it runs v1.8.0 now.
    let mut st = deployed_status(now, 300, now - Duration::seconds(3), false);
    st.environments[3].state = EnvState::Idle;
    st.environments[3].last_deploy.as_mut().unwrap().actor = "ops@laptop".into();
    let fx = update(&mut s, Msg::StatusLoaded(Ok(st.clone())));
    assert_eq!(
        fx,
        vec![Effect::Watch {
            env: "production".into()
        }]
    );
    assert_eq!(
        s.envs["production"].task.as_ref().map(|t| t.kind),
        Some(TaskKind::Watch)
    );
    assert!(
        notice(&s).contains("deployed by ops@laptop"),
        "{}",
        notice(&s)
    );
    // The next snapshots of the same deploy start nothing more, even
    // once this console's window has ended.
    assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(st.clone()))), vec![]);
    s.envs.get_mut("production").unwrap().task = None;
    let mut monitoring = st.clone();
    monitoring.environments[3].state = EnvState::Monitoring;
    assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(monitoring))), vec![]);
    // An environment that is not monitored is not watched.
    let mut st2 = st.clone();
    st2.environments[2].version = Some(v("v1.8.1"));
    assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(st2))), vec![]);
    // A rollback is not a release to judge.
    let mut s = console();
    let mut back = status(now, 1);
    back.environments[3].version = Some(v("v1.7.2"));
    back.environments[3].last_deploy = Some(DeployRecord {
        seq: None,
        env: "production".into(),
        version: v("v1.7.2"),
        from_version: Some(v("v1.7.3")),
        at: now,
        actor: "ops".into(),
        kind: crate::domain::DeployKind::Rollback,
        url: None,
    });
    assert_eq!(update(&mut s, Msg::StatusLoaded(Ok(back))), vec![]);
    // Nor is the version a rollback lands on, seen before the rollback
    // is recorded (the snapshot still names the promote as last deploy).
    let mut s = console();
    update(&mut s, Msg::StatusLoaded(Ok(status(now, 1))));
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: "production".into(),
            version: v("v1.7.2"),
            from: Some(v("v1.7.3")),
            rollback: true,
        }),
    );
    let mut mid = status(now, 2);
    mid.environments[3].version = Some(v("v1.7.2"));
    let fx = update(&mut s, Msg::StatusLoaded(Ok(mid)));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Watch { .. })),
        "{fx:?}"
    );
    // Its own promote starts its own window, and only one.
    let mut s = console();
    monitored(&mut s, 20, false);
    let again = deployed_status(s.now, 400, s.now, false);
    let fx = update(&mut s, Msg::StatusLoaded(Ok(again)));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Watch { .. })),
        "{fx:?}"
    );
}

#[test]
fn someone_elses_deploy_loads_the_audit_log_that_names_them() {
    let mut s = console();
    let now = s.now;
    let mut st = status(now, 7);
    st.environments[3].state = EnvState::Deploying;
    st.environments[3].state_since = Some(now - Duration::seconds(12));
    let fx = update(&mut s, Msg::StatusLoaded(Ok(st.clone())));
    assert!(
        fx.contains(&Effect::LoadHistory {
            limit: HISTORY_LIMIT
        }),
        "{fx:?}"
    );
    update(&mut s, Msg::HistoryLoaded(Ok(vec![])));
    // Still deploying: no reload every second.
    let fx = update(&mut s, Msg::StatusLoaded(Ok(st)));
    assert!(!fx.iter().any(|e| matches!(e, Effect::LoadHistory { .. })));
}

#[test]
fn mouse_click_selects_and_wheel_scrolls_unless_turned_off() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let ev = |kind, column, row| {
        Msg::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let mut s = console();
    update(&mut s, Msg::Resize(160, 45));
    assert_eq!(s.selected, 3);
    update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 10, 4));
    assert_eq!(s.selected_env().unwrap().name, "local");
    update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 100, 4));
    assert_eq!(s.selected_env().unwrap().name, "staging");
    update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 100, 30));
    assert_eq!(
        s.selected_env().unwrap().name,
        "staging",
        "outside the columns"
    );
    key(&mut s, 'H');
    let log = audit_log(s.now);
    update(&mut s, Msg::HistoryLoaded(Ok(log)));
    update(&mut s, ev(MouseEventKind::ScrollDown, 50, 20));
    update(&mut s, ev(MouseEventKind::ScrollDown, 50, 20));
    assert_eq!(s.history_cursor, 6);
    update(&mut s, ev(MouseEventKind::ScrollUp, 50, 20));
    assert_eq!(s.history_cursor, 3);

    let off = Settings {
        mouse: false,
        ..settings()
    };
    let mut s = running_console(off, Theme::dark());
    update(&mut s, Msg::Resize(160, 45));
    update(&mut s, ev(MouseEventKind::Down(MouseButton::Left), 10, 4));
    assert_eq!(s.selected, 3, "mouse = false ignores clicks");
}

fn progress(waiting: Option<bool>) -> crate::backends::deploy::Progress {
    crate::backends::deploy::Progress {
        what: "GitHub Actions run #812".into(),
        state: if waiting.is_some() {
            "waiting".into()
        } else {
            "in progress".into()
        },
        elapsed_s: 72.0,
        step: waiting.is_none().then(|| "deploy / migrate".into()),
        url: Some("https://github.com/acme/shop/actions/runs/4242".into()),
        waiting: waiting.map(|can_answer| crate::backends::deploy::Waiting {
            prompt: "waiting on a reviewer for environment production".into(),
            can_answer,
        }),
    }
}

fn deploying(s: &mut State) {
    update(
        s,
        Msg::Engine(Event::DeployStarted {
            env: "production".into(),
            version: v("v1.8.0"),
            from: Some(v("v1.7.3")),
            rollback: false,
        }),
    );
}

#[test]
fn a_backend_report_is_kept_and_its_clock_counts_on() {
    let mut s = console();
    deploying(&mut s);
    update(
        &mut s,
        Msg::Engine(Event::DeployProgress {
            env: "production".into(),
            progress: progress(None),
        }),
    );
    let now = s.now + Duration::seconds(8);
    update(&mut s, Msg::Tick(now));
    let d = s.envs["production"].deploy.as_ref().unwrap();
    assert_eq!(
        d.backend_line(s.now).as_deref(),
        Some("GitHub Actions run #812: in progress, 1m20s — deploy / migrate")
    );
    assert!(d.waiting().is_none());
}

#[test]
fn a_and_x_answer_the_review_a_deploy_waits_for_with_the_note() {
    let mut s = console();
    deploying(&mut s);
    update(
        &mut s,
        Msg::Engine(Event::DeployProgress {
            env: "production".into(),
            progress: progress(Some(true)),
        }),
    );
    assert!(
        notice(&s).contains("waiting on a reviewer for environment production")
            && notice(&s).contains("a approves"),
        "{}",
        notice(&s)
    );
    key(&mut s, 'a');
    assert!(
        matches!(dialog(&s), Some(Pending::Review { approve: true, .. })),
        "{:?}",
        dialog(&s)
    );
    for c in "db ok".chars() {
        key(&mut s, c);
    }
    let fx = code(&mut s, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Review {
            env: "production".into(),
            version: v("v1.8.0"),
            approve: true,
            note: Some("db ok".into()),
        }]
    );
    key(&mut s, 'x');
    assert!(matches!(
        dialog(&s),
        Some(Pending::Review { approve: false, .. })
    ));
    let fx = code(&mut s, KeyCode::Enter);
    assert!(
        matches!(
            &fx[..],
            [Effect::Review {
                approve: false,
                note: None,
                ..
            }]
        ),
        "{fx:?}"
    );
    // The answer lands: said, and the deploy task goes on.
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Review,
            result: Ok(Done::Reviewed(
                "GitHub environment production: approved".into(),
            )),
        },
    );
    assert!(notice(&s).contains("approved"), "{}", notice(&s));
}

#[test]
fn a_review_the_token_may_not_answer_opens_no_dialog_and_says_who_must() {
    let mut s = console();
    deploying(&mut s);
    update(
        &mut s,
        Msg::Engine(Event::DeployProgress {
            env: "production".into(),
            progress: progress(Some(false)),
        }),
    );
    assert_eq!(key(&mut s, 'a'), vec![]);
    assert!(dialog(&s).is_none());
    assert!(
        notice(&s).contains("may not answer it: a required reviewer must"),
        "{}",
        notice(&s)
    );
}

#[test]
fn a_pick_confirmed_twice_while_its_plan_loads_asks_and_ships_once() {
    let mut s = console();
    // P Enter, twice, before the engine's plan comes back (a slow version
    // read, a key repeated): two plans are asked for.
    for _ in 0..2 {
        key(&mut s, 'P');
        key(&mut s, 'j');
        assert!(matches!(
            code(&mut s, KeyCode::Enter).as_slice(),
            [Effect::Plan { .. }]
        ));
    }
    let mut plan = s
        .env_status("production")
        .unwrap()
        .promotion
        .clone()
        .unwrap();
    plan.version = v("v1.8.1");
    for g in &mut plan.gates {
        g.ok = true;
    }
    for _ in 0..2 {
        update(
            &mut s,
            Msg::PlanLoaded {
                env: "production".into(),
                version: v("v1.8.1"),
                result: Ok(plan.clone()),
            },
        );
    }
    let promotes: usize = (0..3)
        .map(|_| {
            code(&mut s, KeyCode::Enter)
                .iter()
                .filter(|e| matches!(e, Effect::Promote { .. }))
                .count()
        })
        .sum();
    assert_eq!(promotes, 1, "one pick, one promotion");
}

#[test]
fn a_rollback_dialog_confirmed_while_the_auto_rollback_runs_does_not_roll_back_again() {
    let settings = Settings {
        auto_rollback: true,
        ..settings()
    };
    let mut s = running_console(settings, Theme::dark());
    monitored(&mut s, 100, false);
    // The engineer opens `r` during the window, reads it...
    key(&mut s, 'r');
    assert!(matches!(dialog(&s), Some(Pending::Rollback { .. })));
    // ...while the window calls a regression and rolls back by itself.
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: "production".into(),
            version: v("v1.7.3"),
            from: Some(v("v1.8.0")),
            rollback: true,
        }),
    );
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("production is rolling back by itself now"),
        "the open dialog says so:\n{text}"
    );
    // Enter neither stops the window that is rolling back nor starts a
    // second rollback beside it.
    let fx = code(&mut s, KeyCode::Enter);
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Rollback { .. } | Effect::CancelWatch { .. })),
        "{fx:?}"
    );
    assert!(
        notice(&s).contains("production is rolling back by itself"),
        "{}",
        notice(&s)
    );
}

#[test]
fn one_key_rollback_pressed_while_the_auto_rollback_runs_does_not_roll_back_again() {
    let settings = Settings {
        auto_rollback: true,
        confirm_rollback: false,
        ..settings()
    };
    let mut s = running_console(settings, Theme::dark());
    monitored(&mut s, 100, false);
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: "production".into(),
            version: v("v1.7.3"),
            from: Some(v("v1.8.0")),
            rollback: true,
        }),
    );
    // `r` held down while production rolls back by itself.
    for _ in 0..3 {
        assert_eq!(key(&mut s, 'r'), vec![]);
    }
    assert!(
        notice(&s).contains("production is rolling back by itself now (auto-rollback to v1.7.3)"),
        "{}",
        notice(&s)
    );
}
