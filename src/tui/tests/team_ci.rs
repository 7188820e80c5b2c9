//! The console as the team and CI see it: the policy refusing a Go, who else
//! is watching, deploys another console drives, and a CI run with the review
//! it waits for.

use super::*;

#[test]
fn approval_dialog_says_when_the_policy_refuses_this_go() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    for e in &mut st.environments {
        if e.name == "production" {
            e.go_refusal = Some(crate::domain::Gate::block(
                "self_approval",
                false,
                "tester promoted v1.8.0 into staging",
            ));
        }
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    key(&mut s, 'a');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("✗ refused by policy: tester promoted v1.8.0 into staging"),
        "{text}"
    );
    assert!(text.contains("try anyway"), "{text}");
    // A No-Go is never refused by it.
    code(&mut s, KeyCode::Esc);
    key(&mut s, 'x');
    let text = screen(&s, 160, 45);
    assert!(!text.contains("refused by policy"), "{text}");
}

#[test]
fn the_header_names_who_else_is_watching_once_each() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    let at = st.generated_at;
    let p = |actor: &str, pid| crate::store::Presence {
        pid_space: None,
        actor: actor.into(),
        host: "h".into(),
        pid,
        since: at,
        last_seen: at,
    };
    st.watching = vec![
        p("bob@laptop", 1),
        p("carol@desk\u{1b}[31m", 2),
        p("bob@laptop", 3),
    ];
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let text = screen(&s, 160, 45);
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("also watching: bob@laptop ×2, carol@desk · you: alice ·"),
        "this console's own name is not one more of the others: {header}"
    );
    assert!(!text.contains('\u{1b}'));
    let mut st = s.status.clone().unwrap();
    st.watching.clear();
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let text = screen(&s, 160, 45);
    assert!(!text.contains("also watching"));
    assert!(!text.contains("you: "));
}

#[test]
fn deploying_through_a_ci_system_shows_its_run_and_the_review_it_waits_for() {
    let mut s = console();
    approved(&mut s);
    key(&mut s, 'p');
    code(&mut s, KeyCode::Enter);
    let env = "production".to_string();
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: env.clone(),
            version: v("v1.8.0"),
            from: Some(v("v1.7.3")),
            rollback: false,
        }),
    );
    let mut p = crate::backends::deploy::Progress {
        what: "GitHub Actions run #4812".into(),
        state: "in progress".into(),
        elapsed_s: 72.0,
        step: Some("deploy / migrate".into()),
        url: Some("https://github.com/acme/shop/actions/runs/4812".into()),
        waiting: None,
    };
    update(
        &mut s,
        Msg::Engine(Event::DeployProgress {
            env: env.clone(),
            progress: p.clone(),
        }),
    );
    // In the column, its words wrapped…
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("GitHub Actions run #4812: in")
            && text.contains("progress, 1m12s — deploy / migrate"),
        "{text}"
    );
    // …and whole in the details, with the run's page.
    key(&mut s, 'v');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("GitHub Actions run #4812: in progress, 1m12s — deploy / migrate"),
        "{text}"
    );
    assert!(
        text.contains("https://github.com/acme/shop/actions/runs/4812"),
        "{text}"
    );
    p.state = "waiting".into();
    p.step = None;
    p.waiting = Some(crate::backends::deploy::Waiting {
        prompt: "waiting on a reviewer for environment production".into(),
        can_answer: true,
    });
    update(
        &mut s,
        Msg::Engine(Event::DeployProgress { env, progress: p }),
    );
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("waiting on a reviewer for environment production"),
        "{text}"
    );
    assert!(text.contains("a approves · x rejects"), "{text}");
}

#[test]
fn a_rollout_followed_by_its_ready_check_reads_rolling_out_with_its_clock() {
    let mut s = console();
    approved(&mut s);
    key(&mut s, 'p');
    code(&mut s, KeyCode::Enter);
    let env = "production".to_string();
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: env.clone(),
            version: v("v1.8.0"),
            from: Some(v("v1.7.3")),
            rollback: false,
        }),
    );
    update(
        &mut s,
        Msg::Engine(Event::DeployProgress {
            env,
            progress: crate::backends::deploy::Progress::rolling_out(
                "still going",
                32.0,
                Some("2 of 3 updated".into()),
            ),
        }),
    );
    // The console counts on between two runs of the check.
    let later = s.now + chrono::Duration::seconds(8);
    update(&mut s, Msg::Tick(later));
    key(&mut s, 'v');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("rolling out (ready check: still going, 40s) — 2 of 3 updated"),
        "{text}"
    );
}

#[test]
fn a_deploy_another_console_watches_reads_watched_by_it_without_an_error() {
    let mut s = console();
    let now = s.now;
    let mut st = status(now, 121);
    for e in st.environments.iter_mut().filter(|e| e.production) {
        e.watcher = Some("ops@laptop (pid 4242)".into());
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Watch,
            result: Ok(Done::WatchedElsewhere("ops@laptop (pid 4242)".into())),
        },
    );
    assert!(
        s.notices.iter().all(|n| n.level != Level::Error),
        "{:?}",
        s.notices
    );
    assert!(s.alarm.is_none());
    let text = screen(&s, 160, 45);
    assert!(text.contains("watched by ops@laptop (pid 4242)"), "{text}");
    assert!(!text.contains("no deploy watched yet"), "{text}");
    // The panel's title agrees with the state: a window runs, elsewhere.
    for (w, h) in [(160, 45), (120, 40), (100, 30)] {
        let text = screen(&s, w, h);
        assert!(!text.contains("no monitoring window"), "{w}x{h}:\n{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("┌ Live metrics · production ·")
                    && l.contains("watched by ops@laptop ─")),
            "{w}x{h}:\n{text}"
        );
    }
}

#[test]
fn someone_elses_deploy_shows_who_and_what() {
    use crate::domain::{ActionKind, Outcome};
    let mut s = console();
    let now = s.now;
    let mut st = status(now, 9);
    st.environments[3].state = EnvState::Deploying;
    st.environments[3].state_since = Some(now - Duration::seconds(12));
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let mut log = audit_log(now);
    log.insert(
        0,
        audit(
            41,
            now - Duration::seconds(12),
            "ops@laptop",
            ActionKind::Promote,
            "production",
            "v1.8.1",
            Some("v1.7.3"),
            Outcome::Started,
            "promote production from v1.7.3 to v1.8.1",
            None,
        ),
    );
    update(&mut s, Msg::HistoryLoaded(Ok(log)));
    let wide = screen(&s, 200, 50);
    assert!(
        wide.contains("deploying v1.8.1 · ops@laptop · 12s"),
        "{wide}"
    );
    let text = screen(&s, 160, 45);
    assert!(text.contains("→ v1.8.1 · ops · 12s"), "{text}");
    let small = screen(&s, 80, 24);
    assert!(small.contains("→ v1.8.1 · ops"), "{small}");
}

/// The approval stage's verdict, CI and review: in the pending panel (whole
/// sentences, wrapped under their label) and in the Go/No-Go dialog.
#[test]
fn the_stage_verdict_and_ci_show_in_the_pending_panel_and_the_go_dialog() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    let verdict = crate::monitor::StageVerdict {
        verdict: crate::monitor::StageState::Regression,
        reason: "staging since v1.8.0: error rate 3.9% vs 0.30% before (13x) — regression".into(),
        stage: "staging".into(),
        version: "v1.8.0".into(),
        since: None,
        detail: String::new(),
        recent: None,
    };
    for e in &mut st.environments {
        if let Some(p) = e.promotion.as_mut().filter(|_| e.name == "production") {
            p.evidence.stage_verdict = Some(verdict.clone());
            p.evidence.ci = Some(crate::domain::Check::new(
                crate::domain::CheckState::Pending,
                "2 of 7 checks still running on 9be41d0: e2e, deploy-preview",
                None,
            ));
        }
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let text = screen(&s, 160, 45);
    // Wrapped, not cut: the whole sentence is there, over two lines.
    assert!(
        text.contains("stage: staging since v1.8.0: error rate 3.9% vs 0.30% before"),
        "{text}"
    );
    assert!(text.contains("  (13x) — regression"), "{text}");
    // The plan has a "ci" gate already: its evidence is not said twice.
    assert!(!text.contains("ci: pending"), "{text}");
    key(&mut s, 'a');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("Evidence: staging since v1.8.0: error rate 3.9% vs 0.30% before"),
        "{text}"
    );
}

/// The promote dialog says the stage before found the version a
/// regression, at 80×24 too: the panel behind the dialog is hidden by it.
#[test]
fn the_promote_dialog_says_the_stage_before_found_a_regression() {
    let mut s = console();
    approved(&mut s);
    let reason = "staging since v1.8.0: p50 111ms vs 39ms before (2.9x) — regression";
    let mut st = s.status.clone().unwrap();
    for e in st
        .environments
        .iter_mut()
        .filter(|e| e.name == "production")
    {
        let p = e.promotion.as_mut().unwrap();
        p.evidence.stage_verdict = Some(crate::monitor::StageVerdict {
            verdict: crate::monitor::StageState::Regression,
            reason: reason.into(),
            stage: "staging".into(),
            version: "v1.8.0".into(),
            since: None,
            detail: String::new(),
            recent: None,
        });
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    key(&mut s, 'p');
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        let dialog: String = text
            .lines()
            .skip_while(|l| !l.contains("╔ Promote production?"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            dialog.contains("Evidence: staging since v1.8.0"),
            "{w}x{h}:\n{text}"
        );
        assert!(dialog.contains("Enter promote"), "{w}x{h}:\n{text}");
    }
}
