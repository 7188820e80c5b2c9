//! The console at the classic 80×24: dialogs keep their confirm keys on
//! screen whatever their body, the pending panel cuts with `…`, labels keep
//! their meaning.

use chrono::Duration;

use super::msg::Msg;
use super::tests::fixture::*;
use super::update;
use crate::domain::release::SchemaNotice;
use crate::domain::{Gate, GateSeverity};
use crate::engine::RollbackTarget;

fn long_schema_notice() -> SchemaNotice {
    let migrations: Vec<String> = (1..=6)
        .map(|i| format!("migrations/000{i}_orders_and_invoices_backfill.sql"))
        .collect();
    SchemaNotice {
        warning: format!(
            "v1.7.3 carries database migrations ({}): rolling back the code leaves the schema as it is",
            migrations.join(", ")
        ),
        migrations,
        restore: Some(
            "pg_restore --clean --if-exists --no-owner -d postgres://shop@db.internal/shop /backups/production/bk-77.dump".into(),
        ),
        backup: None,
    }
}

/// Every row of the open dialog (inside its double border) on screen.
fn dialog_rows(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains("╔ Roll back") || l.contains("╔ Promote"))
        .expect("a dialog is open");
    let left = lines[top].chars().position(|c| c == '╔').unwrap();
    lines[top + 1..]
        .iter()
        .map(|l| l.chars().skip(left).collect::<String>())
        .take_while(|l| !l.starts_with('╚'))
        .map(|l| {
            let inner: String = l.chars().skip(1).take_while(|&c| c != '║').collect();
            inner.trim_end().to_string()
        })
        .collect()
}

#[test]
fn a_tall_rollback_dialog_at_80x24_keeps_what_it_changes_and_its_keys_on_screen() {
    let mut s = console();
    with_production(&mut s, |p| {
        p.rollback = Some(RollbackTarget {
            to: Some(v("v1.7.2")),
            detail: "v1.7.3 → v1.7.2, the last known-good version".into(),
        });
        p.rollback_schema = Some(long_schema_notice());
    });
    key(&mut s, 'r');
    for (w, h) in [(80, 24), (100, 30), (80, 30)] {
        let text = screen(&s, w, h);
        let rows = dialog_rows(&text);
        assert!(
            rows.iter()
                .any(|r| r.starts_with("Enter roll back") && r.contains("Esc cancel")),
            "{w}x{h}: the confirm keys are in the dialog:\n{text}"
        );
        assert!(
            rows.iter().any(|r| r == "This changes PRODUCTION."),
            "{w}x{h}:\n{text}"
        );
        assert!(
            rows.iter()
                .any(|r| r == "Roll back production: v1.7.3 → v1.7.2"),
            "{w}x{h}:\n{text}"
        );
        // Word-wrapped rows all fit: the restore command is there whole.
        let joined = rows.join(" ");
        assert!(
            joined.contains("/backups/production/bk-77.dump"),
            "{w}x{h}: nothing lost at the bottom:\n{text}"
        );
    }
}

#[test]
fn a_dialog_taller_than_the_terminal_says_what_it_leaves_out_and_keeps_its_keys() {
    let mut s = console();
    approved(&mut s);
    with_production(&mut s, |p| {
        let plan = p.promotion.as_mut().unwrap();
        for i in 0..9 {
            plan.gates.push(Gate {
                name: format!("warn{i}"),
                ok: false,
                detail: "outside the low-traffic window, on a weekend, with the on-call rotation changing hands at noon".into(),
                severity: GateSeverity::Warn,
            });
        }
    });
    key(&mut s, 'p');
    let text = screen(&s, 80, 24);
    let rows = dialog_rows(&text);
    assert!(
        rows[0].starts_with("Promote production: v1.7.3 → v1.8.0"),
        "{text}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("… ") && r.contains("more lines")),
        "the cut is said:\n{text}"
    );
    assert!(
        rows.iter().any(|r| r == "This deploys to PRODUCTION."),
        "{text}"
    );
    assert!(
        rows.last().unwrap().starts_with("Enter promote anyway")
            && rows.last().unwrap().contains("Esc cancel"),
        "{text}"
    );
    assert!(
        text.contains("╔ Promote production?") && text.contains("╚═"),
        "{text}"
    );
}

#[test]
fn an_open_rollback_dialog_says_when_someone_else_acts_or_the_version_moved() {
    let mut s = console();
    key(&mut s, 'r');
    let text = screen(&s, 80, 24);
    assert!(text.contains("Roll back production: v1.7.3 → "), "{text}");
    assert!(!text.contains("busy right now"), "{text}");
    // Someone else starts rolling production back while it is open.
    with_production(&mut s, |p| {
        p.state = crate::domain::EnvState::RollingBack;
        p.state_since = Some(t0());
    });
    let text = screen(&s, 80, 24);
    let rows = dialog_rows(&text).join(" ");
    assert!(
        rows.contains("⚠ production is busy right now: rolling back"),
        "{text}"
    );
    assert!(
        rows.contains("Enter will be refused while it runs"),
        "{text}"
    );
    assert!(rows.contains("Enter roll back"), "{text}");
    // It ends: production runs another version than when the dialog opened.
    with_production(&mut s, |p| {
        p.state = crate::domain::EnvState::RolledBack;
        p.version = Some(v("v1.7.2"));
    });
    let text = screen(&s, 80, 24);
    let rows = dialog_rows(&text).join(" ");
    assert!(!rows.contains("busy right now"), "{text}");
    assert!(
        rows.contains("⚠ production now runs v1.7.2, not v1.7.3 as when this opened"),
        "{text}"
    );
}

#[test]
fn the_pending_panel_at_80x24_leads_the_stage_evidence_with_its_verdict_and_cuts_with_an_ellipsis()
{
    let mut s = console();
    with_production(&mut s, |p| {
        let plan = p.promotion.as_mut().unwrap();
        plan.evidence.stage_verdict = Some(crate::monitor::StageVerdict {
            verdict: crate::monitor::StageState::Regression,
            reason: "staging since v1.8.0: shipdeck recorded no deploy of v1.8.0 to staging, so the window is its last 30 minutes: p50 111ms vs 39ms before (2.9x) — regression".into(),
            stage: "staging".into(),
            version: "v1.8.0".into(),
            since: None,
            detail: String::new(),
            recent: None,
        });
        p.release = Some(crate::engine::ReleaseFacts {
            repository: Some("/srv/shop".into()),
            commits: Vec::new(),
            commits_total: 0,
            commits_capped: false,
            migrations: vec!["migrations/0003_orders.sql".into()],
            migration_release: true,
            git_error: None,
            backup: None,
            dropped: Vec::new(),
            dropped_total: 0,
            dropped_capped: false,
            dropped_migrations: Vec::new(),
        });
    });
    for (w, h) in [(80, 24), (100, 30)] {
        let text = screen(&s, w, h);
        let panel: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("│ "))
            .map(|l| l.split('│').next().unwrap_or(l).trim_end())
            .collect();
        assert!(
            panel.iter().any(|l| l.starts_with("stage: regression")),
            "{w}x{h}: the verdict word survives the cut:\n{text}"
        );
        let last = panel.last().unwrap();
        assert!(
            !last.ends_with(':') && !last.ends_with(','),
            "{w}x{h}: a paragraph cut mid-sentence ends with …:\n{text}"
        );
    }
    // Without a repository (no commits to list) the same holds.
    with_production(&mut s, |p| p.release = None);
    let text = screen(&s, 80, 24);
    assert!(text.contains("│ stage: regression"), "{text}");
    // With room, the sentence is whole and wrapped.
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("stage: staging since v1.8.0: shipdeck recorded"),
        "{text}"
    );
    assert!(text.contains("(2.9x) — regression"), "{text}");
}

#[test]
fn another_consoles_window_reads_watch_and_who_at_80x24() {
    let mut s = console();
    with_production(&mut s, |p| {
        p.state = crate::domain::EnvState::Monitoring;
        p.state_since = Some(t0() - Duration::seconds(75));
        p.watcher = Some("bob@vm (pid 26833 on vm)".into());
    });
    let small = screen(&s, 80, 24);
    assert!(small.contains("║watch · bob"), "{small}");
    let wide = screen(&s, 200, 50);
    assert!(wide.contains("monitoring · bob@vm · 1m"), "{wide}");
}

#[test]
fn someone_elses_rollback_reads_as_a_rollback_not_a_deploy() {
    use crate::domain::{ActionKind, EnvState, Outcome};
    let mut s = console();
    let now = s.now;
    // The snapshot knows only that the lock is held elsewhere.
    with_production(&mut s, |p| {
        p.state = EnvState::Deploying;
        p.state_since = Some(now - Duration::seconds(3));
    });
    let mut log = audit_log(now);
    log.insert(
        0,
        audit(
            41,
            now - Duration::seconds(3),
            "bob@vm",
            ActionKind::Rollback,
            "production",
            "v1.7.2",
            Some("v1.7.3"),
            Outcome::Started,
            "roll production back from v1.7.3 to v1.7.2",
            None,
        ),
    );
    update(&mut s, Msg::HistoryLoaded(Ok(log)));
    let wide = screen(&s, 200, 50);
    assert!(wide.contains("rolling back v1.7.2 · bob@vm · 3s"), "{wide}");
    let small = screen(&s, 80, 24);
    assert!(small.contains("║↩ v1.7.2 · bob"), "{small}");
}

#[test]
fn a_columns_note_below_its_rows_ends_with_an_ellipsis_when_cut() {
    // Local's "why nothing to promote" shares the rows under the card with
    // the rollback line: cut to what is left, and marked.
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    st.environments[0].rollback = Some(RollbackTarget {
        to: None,
        detail: "nothing to roll back to: v1.8.1 is the first version local ran".into(),
    });
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let mut saw = 0;
    for (w, h) in [(100, 30), (120, 32)] {
        let text = screen(&s, w, h);
        let local: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let at = l.find("│")?;
                let rest = &l[at + "│".len()..];
                Some(rest.split('│').next()?.trim_end().to_string())
            })
            .collect();
        if let Some(i) = local
            .iter()
            .position(|l| l.starts_with("local is the first"))
        {
            let shown: Vec<&String> = local[i..]
                .iter()
                .take_while(|l| !l.is_empty() && !l.starts_with([' ', '└']))
                .collect();
            let last = shown.last().unwrap();
            assert!(
                last.ends_with('…') || last.ends_with("--version"),
                "{w}x{h}: {shown:?}\n{text}"
            );
            saw += 1;
        }
        assert!(text.contains("│r: nothing to roll"), "{w}x{h}:\n{text}");
    }
    assert!(saw > 0, "the note shows at some size");
}

#[test]
fn a_promote_dialog_cut_at_80x24_still_says_the_release_changes_the_database() {
    let mut s = console();
    approved(&mut s);
    with_production(&mut s, |p| {
        p.release = Some(crate::engine::ReleaseFacts {
            migrations: vec!["migrations/0003_orders.sql".into()],
            migration_release: true,
            ..crate::engine::ReleaseFacts::default()
        });
        let plan = p.promotion.as_mut().unwrap();
        for i in 0..6 {
            plan.gates.push(Gate {
                name: format!("warn{i}"),
                ok: false,
                detail: "outside the low-traffic window, on a weekend, with the on-call rotation changing hands at noon".into(),
                severity: GateSeverity::Warn,
            });
        }
    });
    for k in ['p', 'a'] {
        key(&mut s, k);
        let text = screen(&s, 80, 24);
        let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            joined.contains(
                "v1.8.0 changes the database (1 migration): a code rollback will not undo it"
            ),
            "'{k}': the migration warning stays on screen whatever the body loses:\n{text}"
        );
        code(&mut s, crossterm::event::KeyCode::Esc);
    }
}

/// The line above the footer at 80×24 (where notices show).
fn status_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len() - 2].trim().to_string()
}

#[test]
fn every_key_at_80x24_answers_with_a_dialog_or_a_reason_in_the_status_line() {
    // Before production's Go: p says which gate holds it.
    let mut s = console();
    key(&mut s, 'p');
    assert!(s.overlays.is_empty());
    let line = status_line(&screen(&s, 80, 24));
    assert!(
        line.contains("cannot promote production: approval"),
        "{line:?}"
    );

    // Right after a Go (a fresh status on its way): p says it is checking,
    // and the dialog opens when the snapshot comes.
    let mut s = console();
    let go = crate::domain::Approval {
        seq: None,
        env: "production".into(),
        version: v("v1.8.0"),
        decision: crate::domain::Decision::Go,
        actor: "alice".into(),
        at: t0(),
        note: None,
    };
    s.reload_after = false;
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: crate::tui::TaskKind::Approve,
            result: Ok(crate::tui::Done::Recorded(go)),
        },
    );
    key(&mut s, 'p');
    assert!(s.overlays.is_empty());
    let line = status_line(&screen(&s, 80, 24));
    assert!(
        line.contains("checking production's gates on a fresh status"),
        "{line:?}"
    );
    update(&mut s, Msg::StatusLoaded(Err("store unreachable".into())));
    let line = status_line(&screen(&s, 80, 24));
    assert!(line.contains("the fresh status did not load"), "{line:?}");

    // Before the first status: p, a, r and v say it is still loading.
    let mut s = crate::tui::State::new(settings(), crate::tui::Theme::dark(), t0());
    s.size = (80, 24);
    for k in ['p', 'a', 'r', 'v'] {
        key(&mut s, k);
        let text = screen(&s, 80, 24);
        assert!(
            text.contains("yet: the status is still loading"),
            "'{k}':\n{text}"
        );
    }

    // → at the last environment, ← at the first.
    let mut s = console();
    let last = s.environments().len() - 1;
    s.selected = last;
    code(&mut s, crossterm::event::KeyCode::Right);
    assert_eq!(s.selected, last);
    let line = status_line(&screen(&s, 80, 24));
    assert!(
        line.contains("production is the last environment"),
        "{line:?}"
    );
    s.selected = 0;
    key(&mut s, 'h');
    let line = status_line(&screen(&s, 80, 24));
    assert!(line.contains("local is the first environment"), "{line:?}");

    // A key bound nowhere here, in the console and in a dialog.
    let mut s = console();
    key(&mut s, 'z');
    let line = status_line(&screen(&s, 80, 24));
    assert!(
        line.contains("`z` does nothing here: ? lists the keys"),
        "{line:?}"
    );
    approved(&mut s);
    key(&mut s, 'p');
    assert!(!s.overlays.is_empty(), "the promote dialog opened");
    key(&mut s, 'z');
    let text = screen(&s, 80, 24);
    assert!(
        text.contains("`z` does nothing here: Enter confirms, Esc cancels"),
        "{text}"
    );
    assert!(!s.overlays.is_empty(), "the dialog stays open");

    // Too small: the enlarge screen says why p did nothing, and that it
    // is not kept for later (it said "waits", yet enlarging ran nothing).
    let mut s = console();
    s.size = (70, 20);
    key(&mut s, 'p');
    let text = screen(&s, 70, 20);
    assert!(
        text.contains("`p` ignored: it needs a terminal of 80×24"),
        "{text}"
    );
}

/// The metrics row of each column at 80×24 (the line labelled `metrics`).
fn metrics_row(text: &str) -> String {
    text.lines()
        .find(|l| l.contains("metrics  "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_step_without_requests_holds_the_last_figure_with_its_age_instead_of_blinking() {
    let mut s = console();
    let quiet = |s: &mut crate::tui::State, at: chrono::DateTime<chrono::Utc>| {
        update(s, Msg::Tick(at));
        let mut st = status(at, 0);
        for e in &mut st.environments {
            e.metrics = crate::backends::metrics::MetricsSnapshot {
                requests_per_s: Some(0.0),
                as_of: Some(at),
                ..Default::default()
            };
        }
        update(s, Msg::StatusLoaded(Ok(st)));
    };
    let before = metrics_row(&screen(&s, 80, 24));
    assert_eq!(before.matches("err ").count(), 4, "{before}");
    // Two quiet steps, then traffic again: every column keeps a figure.
    for (k, secs) in [20, 25].into_iter().enumerate() {
        quiet(&mut s, t0() + Duration::seconds(secs));
        let row = metrics_row(&screen(&s, 80, 24));
        assert_eq!(row.matches("err ").count(), 4, "step {k}: {row}");
        assert!(!row.contains('–'), "step {k}: no blank figure: {row}");
        let age = format!("· {}s", secs + 1);
        assert_eq!(
            row.matches(&age).count(),
            4,
            "step {k}: held with its age: {row}"
        );
    }
    // Wider, the age reads as one.
    let wide = screen(&s, 160, 45);
    assert!(metrics_row(&wide).contains("s ago"), "{wide}");

    // Never any request yet: said calmly, no figure and no dash.
    let mut s = crate::tui::State::new(settings(), crate::tui::Theme::dark(), t0());
    quiet(&mut s, t0());
    let row = metrics_row(&screen(&s, 80, 24));
    assert_eq!(row.matches("no requests").count(), 4, "{row}");
    assert!(!row.contains('–'), "{row}");
}

/// A held figure belongs to the release that made it: after a deploy, a
/// step without requests says `no requests` rather than hold the previous
/// version's error rate; the other columns keep theirs.
#[test]
fn a_figure_from_before_the_deploy_is_not_held_for_the_new_version() {
    let mut s = console();
    let deployed = t0() + Duration::seconds(20);
    let at = t0() + Duration::seconds(25);
    update(&mut s, Msg::Tick(at));
    let mut st = status(at, 0);
    for e in &mut st.environments {
        e.metrics = crate::backends::metrics::MetricsSnapshot {
            requests_per_s: Some(0.0),
            as_of: Some(at),
            ..Default::default()
        };
        if e.name == "production" {
            e.version = Some(v("v1.8.0"));
            e.last_deploy = Some(crate::domain::DeployRecord {
                seq: None,
                env: e.name.clone(),
                version: v("v1.8.0"),
                from_version: Some(v("v1.7.3")),
                at: deployed,
                actor: "alice".into(),
                kind: crate::domain::DeployKind::Promote,
                url: None,
            });
        }
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let row = metrics_row(&screen(&s, 160, 45));
    assert_eq!(row.matches("no requests").count(), 1, "{row}");
    assert_eq!(row.matches("err ").count(), 3, "{row}");
    assert!(
        row.rfind("no requests") > row.rfind("err "),
        "production (the last column) says no requests: {row}"
    );
}

/// The lines of the monitoring panel (right of the pending panel).
fn panel_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains("┌ Monitoring") || l.contains("┌ Live metrics"))
        .expect("the monitoring panel");
    let left = lines[top]
        .chars()
        .collect::<Vec<_>>()
        .windows(2)
        .position(|w| w == ['┐', '┌'])
        .map_or(0, |i| i + 1);
    lines[top..]
        .iter()
        .map(|l| l.chars().skip(left).collect::<String>())
        .take_while(|l| !l.starts_with('└'))
        .collect()
}

#[test]
fn charts_at_80x24_keep_a_time_axis_and_the_quantile_names() {
    // Live metrics before any deploy: the axis runs to "now".
    let s = console();
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let text = screen(&s, w, h);
        let panel = panel_lines(&text);
        assert!(
            panel
                .iter()
                .any(|l| l.contains("-10m") && l.trim_end_matches('│').trim_end().ends_with("now")),
            "{w}x{h}: a time axis ending at now:\n{text}"
        );
        let legend = panel
            .iter()
            .find(|l| l.contains("Latency"))
            .expect("latency chart");
        for q in ["p50", "p95", "p99"] {
            assert!(legend.contains(q), "{w}x{h}: {q} in {legend:?}");
        }
    }
    // A window (band, limits, the deploy line, a regression): the legend
    // is crowded, the quantiles stay; the axis marks the deploy.
    let mut s = console();
    monitored(&mut s, 200, true);
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let text = screen(&s, w, h);
        let panel = panel_lines(&text);
        let legend = panel
            .iter()
            .find(|l| l.contains("Latency"))
            .expect("latency chart");
        for q in ["p50", "p95", "p99"] {
            assert!(legend.contains(q), "{w}x{h}: {q} in {legend:?}\n{text}");
        }
        if (w, h) == (80, 24) {
            let axis = panel.last().unwrap();
            assert!(axis.contains("↑deploy"), "{w}x{h}: {axis:?}\n{text}");
        }
    }
}

/// At 80×24 after a promote the pending panel shrinks (nothing to promote):
/// its title still names the environment in full, and the reason reads in
/// whole words.
#[test]
fn at_80x24_after_a_promote_the_narrow_pending_panel_names_its_environment() {
    let mut s = console();
    monitored(&mut s, 60, false);
    let text = screen(&s, 80, 24);
    assert!(text.contains("┌ Pending → production "), "{text}");
    assert!(text.contains("│ production already"), "{text}");
    assert!(text.contains("│ runs v1.8.0"), "{text}");
    // Wide, the full title.
    let wide = screen(&s, 160, 45);
    assert!(wide.contains("Pending release → production"), "{wide}");
}

/// A console whose engine just started reading the metrics: every card
/// says "checking" with why (rates need two scrapes, a baseline being
/// collected), dim and calm, never "? unknown" — at both sizes.
#[test]
fn a_warming_up_reading_says_checking_with_why_never_unknown() {
    use crate::domain::Health;
    use crate::domain::health::{WarmUp, WarmUpReason};
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    let since = st.generated_at - Duration::seconds(4);
    for (i, e) in st.environments.iter_mut().enumerate() {
        let reason = if i % 2 == 0 {
            WarmUpReason::FirstScrape
        } else {
            WarmUpReason::Baseline { have: 1, need: 3 }
        };
        if reason == WarmUpReason::FirstScrape {
            e.metrics = Default::default();
            e.metrics_note = Some("rates need two scrapes".into());
        }
        e.health = Health::WarmingUp;
        e.health_detail = format!(
            "reachable; {} (reading the metrics since {} UTC)",
            reason.describe(),
            since.format("%H:%M:%S")
        );
        e.warm_up = Some(WarmUp {
            since,
            reason,
            why: reason.describe(),
        });
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    for (w, h) in [(160, 45), (80, 24)] {
        let text = screen(&s, w, h);
        let cards: String = text.lines().take(12).collect::<Vec<_>>().join("\n");
        assert!(!cards.contains("unknown"), "{w}x{h}:\n{cards}");
        assert!(cards.contains("◌ checking"), "{w}x{h}:\n{cards}");
        insta::assert_snapshot!(format!("warming_up_{w}x{h}"), cards);
    }
}

fn watches(effects: &[super::msg::Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, super::msg::Effect::Watch { env } if env == "production"))
}

/// A monitoring window this console ran that failed (the team store went
/// away mid-window) judged nothing: once the engine says nobody watches
/// that deploy (the store back), the console watches it again — after a
/// pause, so that a failure that persists does not loop. It used to mark
/// the version watched for good: a bad release ran on unwatched.
#[test]
fn a_failed_window_is_watched_again_once_nobody_watches_it() {
    use super::msg::Failure;
    use super::msg::TaskKind;
    let mut s = console();
    let unwatched = |s: &mut crate::tui::state::State, at: chrono::DateTime<chrono::Utc>| {
        update(s, Msg::Tick(at));
        let mut st = s.status.clone().unwrap();
        let p = st
            .environments
            .iter_mut()
            .find(|e| e.name == "production")
            .unwrap();
        p.monitored = true;
        p.unwatched = true;
        update(s, Msg::StatusLoaded(Ok(st)))
    };
    let t = s.now;
    assert!(
        watches(&unwatched(&mut s, t)),
        "an unwatched deploy is watched"
    );
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: TaskKind::Watch,
            result: Err(Failure {
                reason: "store postgres://db/team is unreachable".into(),
                refused: false,
                cause: crate::engine::rewatch::Cause::Outage,
                caught: false,
            }),
        },
    );
    assert!(
        !watches(&unwatched(&mut s, t + Duration::seconds(2))),
        "not again at once"
    );
    assert!(
        watches(&unwatched(&mut s, t + Duration::seconds(20))),
        "watched again once nobody watches it, after the pause"
    );
}

/// A window the store refuses for good (a revoked grant) is retried less
/// and less often, saying what to fix, instead of posting the same error
/// every 15 s: the engine's back-off, asked by the console.
#[test]
fn a_window_refused_for_good_is_retried_less_often_saying_what_to_fix() {
    use super::msg::{Failure, TaskKind};
    use crate::engine::rewatch::Cause;
    let mut s = console();
    let unwatched = |s: &mut crate::tui::state::State, at: chrono::DateTime<chrono::Utc>| {
        update(s, Msg::Tick(at));
        let mut st = s.status.clone().unwrap();
        let p = st
            .environments
            .iter_mut()
            .find(|e| e.name == "production")
            .unwrap();
        p.monitored = true;
        p.unwatched = true;
        update(s, Msg::StatusLoaded(Ok(st)))
    };
    let refused = |s: &mut crate::tui::state::State| {
        update(
            s,
            Msg::ActionDone {
                env: "production".into(),
                kind: TaskKind::Watch,
                result: Err(Failure {
                    reason: "store postgres://db/team: permission denied for table shipdeck_locks (42501)".into(),
                    refused: false,
                    cause: Cause::Store,
                    caught: false,
                }),
            },
        );
        s.notices
            .front()
            .map(|n| n.text.clone())
            .unwrap_or_default()
    };
    let t = s.now;
    assert!(watches(&unwatched(&mut s, t)));
    let said = refused(&mut s);
    assert!(
        said.contains("waiting will not heal this: fix what the store refuses")
            && said.contains("tries again in 15s"),
        "{said}"
    );
    assert!(watches(&unwatched(&mut s, t + Duration::seconds(15))));
    let said = refused(&mut s);
    assert!(said.contains("tries again in 30s"), "{said}");
    assert!(
        !watches(&unwatched(&mut s, t + Duration::seconds(35))),
        "not every 15 s"
    );
    assert!(watches(&unwatched(&mut s, t + Duration::seconds(45))));
}

/// At 80×24 the latency legend has no room for its band and limits: the
/// chart draws no unnamed guide lines then (three red and a grey dotted
/// line across four rows read as data, and ran on into the window's
/// future). The error chart, whose legend names its limit, keeps it.
#[test]
fn at_80x24_a_chart_draws_only_the_guide_lines_its_legend_names() {
    let mut s = console();
    monitored(&mut s, 60, false);
    let text = screen(&s, 80, 24);
    let lines: Vec<&str> = text.lines().collect();
    let legend = |title: &str| lines.iter().position(|l| l.contains(title)).unwrap();
    let (err, lat) = (legend("Error rate"), legend("Latency"));
    assert!(lines[err].contains("limit"), "{text}");
    assert!(
        !lines[lat].contains("limit") && !lines[lat].contains("band"),
        "{text}"
    );
    // The window's future (its right part: 1m into 30m) is empty in the
    // latency plot, and carries the limit line in the error plot.
    let future = |l: &str| -> String { l.chars().rev().skip(2).take(15).collect() };
    let braille = |x: &str| x.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c));
    for row in &lines[lat + 1..lat + 5] {
        assert!(
            !braille(&future(row)),
            "an unnamed line in the latency chart:\n{text}"
        );
    }
    assert!(
        lines[err + 1..lat].iter().any(|row| braille(&future(row))),
        "the error chart's named limit:\n{text}"
    );
}

#[test]
fn a_deploy_lock_lost_mid_action_is_said_on_the_environment_and_in_a_notice() {
    let mut s = console();
    let now = s.now;
    with_production(&mut s, |p| {
        p.state = crate::domain::EnvState::Deploying;
        p.state_since = Some(now - Duration::seconds(40));
        p.lock_lost = Some(
            "production: the deploy lock was lost at 12:00:30 UTC: bob (pid 7 on ci) took it at 12:00:29 UTC; the action in flight goes on without it".into(),
        );
    });
    let wide = screen(&s, 200, 50);
    assert!(wide.contains("LOCK LOST"), "{wide}");
    update(
        &mut s,
        Msg::Engine(crate::engine::Event::LockLost {
            env: "production".into(),
            detail:
                "production: the deploy lock was lost at 12:00:30 UTC: bob (pid 7 on ci) took it"
                    .into(),
        }),
    );
    let n = s.notices.front().expect("a notice");
    assert_eq!(n.level, super::state::Level::Error);
    assert!(n.text.contains("bob (pid 7 on ci) took it"), "{}", n.text);
}

/// A store another process holds: the console says it waits for it on the
/// notice line (the wait's start used to go to the log only, and the
/// console sat for 10 s with an ageing status and no word), what it is
/// before the file's path (which a narrow terminal cuts first); it follows
/// the wait and says when the store came free, and never says "waiting"
/// longer than the wait's bound; a wait that ran out is said too.
#[test]
fn a_held_store_is_said_on_the_notice_line_while_it_is_waited_for() {
    use super::msg::Effect;
    let path = "/home/alice/.local/share/shipdeck/a-rather-long-directory-name/shipdeck.db";
    let busy = |gave_up| Msg::StoreBusy {
        path: path.into(),
        gave_up,
    };
    let mut s = console();
    let effects = update(&mut s, busy(false));
    assert_eq!(
        effects,
        vec![Effect::AwaitStore { path: path.into() }],
        "the wait is followed"
    );
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        let line = text
            .lines()
            .find(|l| l.contains("another process holds it"))
            .unwrap_or_else(|| panic!("{w}x{h}: the wait is said:\n{text}"));
        assert!(
            line.contains("! waiting up to 10 s for the store (another process holds it)"),
            "{w}x{h}: {line}"
        );
    }
    assert!(
        screen(&s, 160, 45).contains(path),
        "whole where there is room"
    );
    // Said again while followed: not followed twice.
    assert!(update(&mut s, busy(false)).is_empty());
    // The store came free after 3 s: the line says so at once.
    let said = s.now;
    update(&mut s, Msg::Tick(said + Duration::seconds(3)));
    update(
        &mut s,
        Msg::StoreWaitOver {
            path: path.into(),
            came_free: true,
        },
    );
    let text = screen(&s, 80, 24);
    assert!(!text.contains("waiting up to"), "{text}");
    assert!(text.contains("• the store is free again"), "{text}");

    // A wait nobody learns the end of is not said past its bound.
    let mut s = console();
    update(&mut s, busy(false));
    let said = s.now;
    update(&mut s, Msg::Tick(said + Duration::seconds(9)));
    assert!(screen(&s, 80, 24).contains("waiting up to 10 s"));
    update(&mut s, Msg::Tick(said + Duration::seconds(10)));
    assert!(
        !screen(&s, 80, 24).contains("another process"),
        "{}",
        screen(&s, 80, 24)
    );

    // A wait that ran out: said, and its end says nothing more.
    let mut s = console();
    update(&mut s, busy(false));
    update(&mut s, busy(true));
    update(
        &mut s,
        Msg::StoreWaitOver {
            path: path.into(),
            came_free: false,
        },
    );
    let text = screen(&s, 80, 24);
    assert!(
        text.contains("! gave up on the store after 10 s (another process holds it)"),
        "{text}"
    );
    assert!(s.store_wait.is_none());
}

#[test]
fn the_footer_keeps_every_incident_key_at_80x24_and_100x30() {
    let s = console();
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let text = screen(&s, w, h);
        let footer = text.lines().last().unwrap_or_default().to_string();
        for hint in [
            "p promote",
            "a approve",
            "r roll back",
            "H history",
            "? help",
            "q quit",
        ] {
            assert!(footer.contains(hint), "{w}x{h}: {hint:?} in {footer:?}");
        }
    }
}

/// A console that did not run the window (another console or a `watch`
/// did) shows its verdict from the store once it ended, as after a
/// restart — not "no monitoring window yet" again.
#[test]
fn another_process_s_window_that_ended_shows_its_verdict_from_the_store() {
    let mut s = console();
    with_production(&mut s, |p| {
        p.state = crate::domain::EnvState::Monitoring;
        p.watcher = Some("bob@vm (pid 26833 on vm)".into());
    });
    assert!(screen(&s, 160, 45).contains("window watched by bob@vm"));
    with_production(&mut s, |p| {
        p.state = crate::domain::EnvState::Regression;
        p.watcher = None;
        p.last_window = Some(crate::engine::LastWindow {
            version: v("v1.7.3"),
            started_at: t0() - Duration::minutes(12),
            finished_at: t0() - Duration::minutes(2),
            verdict: crate::domain::WindowVerdict::Regression,
            reason: "error rate 4.4% vs 0.36% baseline".into(),
        });
    });
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        assert!(
            !text.contains("no monitoring window yet"),
            "{w}x{h}:\n{text}"
        );
        assert!(!text.contains("no deploy watched yet"), "{w}x{h}:\n{text}");
        assert!(text.contains("window · production"), "{w}x{h}:\n{text}");
        assert!(text.contains("✗ REGRESSION"), "{w}x{h}:\n{text}");
    }
    let wide = screen(&s, 160, 45);
    assert!(
        wide.contains("Last monitoring window · production · v1.7.3"),
        "{wide}"
    );
    assert!(wide.contains("error rate 4.4% vs 0.36%"), "{wide}");
}

/// In the audit log the footer says how to go back (`Esc console`), not
/// `H history`, which read as a key opening what is already on screen.
#[test]
fn the_history_view_s_footer_says_the_way_back_not_history() {
    let mut s = console();
    key(&mut s, 'H');
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        let footer = text.lines().last().unwrap_or_default().to_string();
        assert!(footer.contains("Esc console"), "{w}x{h}: {footer:?}");
        assert!(!footer.contains("history"), "{w}x{h}: {footer:?}");
    }
    // H still goes back.
    key(&mut s, 'H');
    let footer = screen(&s, 80, 24).lines().last().unwrap().to_string();
    assert!(footer.contains("H history"), "{footer:?}");
}

/// Change staging in the console's snapshot, as a status read would.
fn with_staging(s: &mut super::state::State, f: impl FnOnce(&mut crate::engine::EnvStatus)) {
    let mut st = s.status.clone().unwrap();
    f(st.environments
        .iter_mut()
        .find(|e| e.name == "staging")
        .unwrap());
    update(s, Msg::StatusLoaded(Ok(st)));
}

#[test]
fn an_open_promote_dialog_says_when_the_stage_it_ships_from_moved() {
    let mut s = console();
    approved(&mut s);
    key(&mut s, 'p');
    let text = screen(&s, 80, 24);
    let rows = dialog_rows(&text).join(" ");
    assert!(
        rows.contains("Promote production: v1.7.3 → v1.8.0"),
        "{text}"
    );
    assert!(!rows.contains("not v1.8.0 as when this opened"), "{text}");
    // Another engineer moves staging on while the dialog is open: Enter
    // would be refused (the engine's exact_version), and the dialog says so.
    with_staging(&mut s, |e| e.version = Some(v("v1.8.1")));
    let text = screen(&s, 80, 24);
    let rows = dialog_rows(&text).join(" ");
    assert!(
        rows.contains("⚠ staging now runs v1.8.1, not v1.8.0 as when this opened"),
        "{text}"
    );
    assert!(rows.contains("Enter will be refused"), "{text}");
    assert!(
        rows.contains("Enter promote anyway"),
        "the keys stay:\n{text}"
    );
}

#[test]
fn an_open_approval_dialog_says_when_the_version_it_approves_left_the_stage_before() {
    let mut s = console();
    key(&mut s, 'a');
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("Record a Go for v1.8.0 → production"),
        "{text}"
    );
    assert!(!text.contains("as when this opened"), "{text}");
    with_staging(&mut s, |e| e.version = Some(v("v1.7.9")));
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("⚠ staging now runs v1.7.9, not v1.8.0 as when this opened"),
        "{text}"
    );
    assert!(text.contains("refused — Esc and look again"), "{text}");
    assert!(text.contains("Enter record Go"), "the keys stay:\n{text}");
}

#[test]
fn environments_scrolled_out_of_sight_are_counted_on_their_side() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    // Twelve stages: eight more regional ones between staging and production.
    let staging = st.environments[2].clone();
    for i in 1..=8 {
        let mut e = staging.clone();
        e.name = format!("eu-{i}");
        st.environments.insert(2 + i, e);
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    assert_eq!(s.environments().len(), 12);
    // Production is selected: the columns end with it, eight are off to the left.
    let text = screen(&s, 80, 24);
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[1].starts_with("◂ 8 more"), "{text}");
    assert!(
        !text.contains("▸ "),
        "nothing is hidden on the right:\n{text}"
    );
    // The first stage selected: eight hidden on the right, none on the left.
    for _ in 0..11 {
        code(&mut s, crossterm::event::KeyCode::Left);
    }
    let text = screen(&s, 80, 24);
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[1].contains("▶ local"), "{text}");
    assert!(!text.contains("◂ "), "{text}");
    assert!(rows[8].starts_with("▸ 8 more"), "under the labels:\n{text}");
    // In the middle, both; at 160 columns (eight shown) fewer are hidden.
    for _ in 0..5 {
        code(&mut s, crossterm::event::KeyCode::Right);
    }
    let text = screen(&s, 160, 45);
    assert!(text.contains("◂ 1 more"), "{text}");
    assert!(text.contains("▸ 3 more"), "{text}");
}

#[test]
fn the_quit_dialog_says_what_runs_now_not_what_ran_when_it_opened() {
    let mut s = console();
    monitored(&mut s, 60, false);
    key(&mut s, 'q');
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("• monitoring window of production (29:00 left)"),
        "{text}"
    );
    // What quitting leaves: the release stays, judged by nobody — said
    // before Enter (it read only "stops watching them").
    let wide = screen(&s, 160, 45);
    assert!(
        wide.contains("⚠ production keeps v1.8.0: a regression of it is then not caught"),
        "{wide}"
    );
    let mut auto = settings();
    auto.auto_rollback = true;
    let mut a = running_console(auto, crate::tui::theme::Theme::dark());
    monitored(&mut a, 60, false);
    key(&mut a, 'q');
    let wide = screen(&a, 160, 45);
    assert!(
        wide.contains("a regression of it is then neither caught nor"),
        "{wide}"
    );
    // Left open a minute: the window's countdown goes on in the dialog.
    let later = s.now + Duration::seconds(60);
    update(&mut s, Msg::Tick(later));
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("• monitoring window of production (28:00 left)"),
        "{text}"
    );
    assert!(!text.contains("29:00 left"), "{text}");
    // The window ends under it: nothing is left to stop.
    update(
        &mut s,
        Msg::ActionDone {
            env: "production".into(),
            kind: super::msg::TaskKind::Watch,
            result: Ok(super::msg::Done::Watched("healthy".into())),
        },
    );
    let text = screen(&s, 100, 30);
    assert!(text.contains("Nothing runs any more."), "{text}");
    assert!(!text.contains("Still running"), "{text}");
    assert!(!text.contains("Quitting stops watching them"), "{text}");
}

#[test]
fn an_inconclusive_window_says_insufficient_data_once() {
    let mut s = console();
    with_production(&mut s, |p| {
        p.last_window = Some(crate::engine::LastWindow {
            version: v("v1.7.3"),
            started_at: t0() - Duration::minutes(4),
            finished_at: t0() - Duration::minutes(2),
            verdict: crate::domain::WindowVerdict::InsufficientData,
            reason: "insufficient data: the baseline has 4 usable steps (need 5)".into(),
        });
    });
    let text = screen(&s, 160, 45);
    assert!(
        text.contains(
            "? insufficient data · ended 2m ago: the baseline has 4 usable steps (need 5)"
        ),
        "{text}"
    );
    key(&mut s, 'v');
    let text = screen(&s, 160, 45);
    assert!(text.contains("the baseline has 4 usable steps"), "{text}");
    assert!(
        !text.contains("insufficient data: insufficient data"),
        "{text}"
    );
}

#[test]
fn the_first_live_point_is_one_point() {
    let start = t0();
    let mut s = super::state::State::new(settings(), super::theme::Theme::dark(), start);
    update(&mut s, Msg::Tick(start));
    update(&mut s, Msg::StatusLoaded(Ok(status(start, 0))));
    let text = screen(&s, 160, 45);
    assert!(text.contains("status snapshots (1 point over"), "{text}");
}

/// A key of no width of its own — a lone variation selector (U+FE0F, sent
/// by some emoji keyboards after a character), a combining accent — read
/// "`` does nothing here" with the selector joined to a backtick: a notice
/// about nothing anyone can see. It is named by its code point.
#[test]
fn a_key_of_no_width_is_named_by_its_code_point() {
    for (c, name) in [('\u{fe0f}', "U+FE0F"), ('\u{301}', "U+0301")] {
        let mut s = console();
        key(&mut s, c);
        let text = screen(&s, 100, 30);
        assert!(
            text.contains(&format!("{name} does nothing here: ? lists the keys")),
            "{text}"
        );
        assert!(!text.contains(c), "{text}");
    }
}

#[test]
fn a_key_s_does_nothing_here_goes_when_its_dialog_closes() {
    let mut s = console();
    approved(&mut s);
    key(&mut s, 'p');
    // `p` again, auto-repeated into the open dialog.
    key(&mut s, 'p');
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("`p` does nothing here: Enter confirms, Esc cancels"),
        "{text}"
    );
    code(&mut s, crossterm::event::KeyCode::Esc);
    // No dialog: "Enter confirms" would be untrue (Enter opens the details).
    let text = screen(&s, 100, 30);
    assert!(!text.contains("does nothing here"), "{text}");
    assert!(!text.contains("Enter confirms"), "{text}");
    // A later key bound nowhere in the console still says so there.
    key(&mut s, 'z');
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("`z` does nothing here: ? lists the keys"),
        "{text}"
    );
}

/// A refusal keeps why at every width from 80 columns up: its notice is
/// cut where the width ends, not at its first clause. At 81 columns it
/// read `cannot promote production: approval… (v: in full)` — the gate's
/// name, and not that no Go was recorded (at 80 it fitted by luck).
#[test]
fn a_refusal_notice_keeps_its_reason_at_every_width() {
    let mut s = console();
    key(&mut s, 'p');
    for w in 80..=100 {
        let line = status_line(&screen(&s, w, 24));
        assert!(
            line.contains("cannot promote production: approval — no Go recorded for v1.8.0"),
            "{w} columns: {line:?}"
        );
    }
    // A longer reason keeps as many of its words as the width allows.
    let mut s = console();
    s.notify(
        crate::tui::state::Level::Error,
        "cannot promote production: previous_stage — v1.8.0 is not what staging runs: staging runs v1.8.1",
    );
    let line = status_line(&screen(&s, 80, 24));
    assert!(
        line.contains("previous_stage — v1.8.0 is not what…"),
        "{line:?}"
    );
}

/// Two long versions that differ at their end stay told apart wherever a
/// narrow console shows them: cut at the end, `…build-4411` and
/// `…build-4412` both read `v1.8.0-rc.2026120…` (the environments' table,
/// the pending release's `from → to`).
#[test]
fn long_versions_cut_narrow_keep_the_end_that_tells_them_apart() {
    let old = "v1.8.0-rc.20261201.build-4411";
    let new = "v1.8.0-rc.20261201.build-4412";
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    for e in &mut st.environments {
        if e.name == "staging" {
            e.version = Some(v(new));
        }
        if e.name == "production" {
            e.version = Some(v(old));
            let plan = e.promotion.as_mut().unwrap();
            plan.current = Some(v(old));
            plan.version = v(new);
        }
    }
    if let Some(p) = st.pending.as_mut() {
        p.plan.current = Some(v(old));
        p.plan.version = v(new);
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    for (w, h) in [(80, 24), (100, 30)] {
        let text = screen(&s, w, h);
        let table: Vec<&str> = text.lines().filter(|l| l.starts_with("version")).collect();
        assert_eq!(table.len(), 1, "{w}x{h}:\n{text}");
        assert!(
            table[0].contains("4411") && table[0].contains("4412"),
            "{w}x{h}: both versions' ends in the table:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("4411 → ") && l.contains("4412")),
            "{w}x{h}: the pending release names both:\n{text}"
        );
    }
}
