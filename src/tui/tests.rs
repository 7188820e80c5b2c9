//! Whole-screen snapshots driven by messages, with a fixed clock.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;

use crate::domain::{
    Approval, Decision, DeployRecord, EnvState, Gate, GateSeverity, Health, PromotionPlan, Version,
};

use crate::engine::{EnvStatus, Event, MetricsSnapshot, Status};
use crate::monitor::{Band, BaselineSummary, Metric, Sample, Verdict, VerdictKind};

use super::msg::{Done, Effect, Msg, TaskKind};
use super::state::{Level, Settings, State};
use super::theme::Theme;
use super::{update, view};

pub(crate) mod fixture;
mod panels;
mod team_ci;

use fixture::*;

fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn draw(state: &State, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| {
        view::draw(state, f);
    })
    .unwrap();
    term.backend().buffer().clone()
}

fn screen(state: &State, w: u16, h: u16) -> String {
    buffer_text(&draw(state, w, h))
}

#[test]
fn normal() {
    let s = console();
    assert_eq!(
        s.selected_env().unwrap().name,
        "production",
        "opens on the pending release"
    );
    let text = screen(&s, 160, 45);
    insta::assert_snapshot!(text);
    assert!(text.contains("PRODUCTION"));
    assert!(text.contains("✗ approval"));
}

#[test]
fn normal_200x50() {
    insta::assert_snapshot!(screen(&console(), 200, 50));
}

#[test]
fn normal_at_the_minimum_size() {
    let text = screen(&console(), view::MIN_WIDTH, view::MIN_HEIGHT);
    assert!(!text.contains("enlarge"));
    insta::assert_snapshot!(text);
}

#[test]
fn selection_moved() {
    let mut s = console();
    code(&mut s, KeyCode::Left);
    assert_eq!(s.selected_env().unwrap().name, "staging");
    let text = screen(&s, 160, 45);
    assert!(text.contains("▶ staging"));
    assert!(text.contains("Pending release → staging"));
    insta::assert_snapshot!(text);
}

#[test]
fn approval_dialog() {
    let mut s = console();
    key(&mut s, 'a');
    for c in "soak clean".chars() {
        key(&mut s, c);
    }
    let text = screen(&s, 160, 45);
    assert!(text.contains("Record a Go for v1.8.0 → production"));
    assert!(text.contains("Note (optional): soak clean"));
    insta::assert_snapshot!(text);
}

#[test]
fn promote_dialog() {
    let mut s = console();
    approved(&mut s);
    key(&mut s, 'p');
    let text = screen(&s, 160, 45);
    assert!(text.contains("Promote production: v1.7.3 → v1.8.0"));
    assert!(text.contains("source: staging"));
    assert!(text.contains("⚠ window: outside the low-traffic window"));
    insta::assert_snapshot!(text);
}

#[test]
fn deploying() {
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
    let later = s.now + Duration::seconds(12);
    update(&mut s, Msg::Tick(later));
    update(
        &mut s,
        Msg::Engine(Event::DeployWaiting {
            env,
            elapsed_s: 12.0,
            observed: Some(v("v1.7.3")),
        }),
    );
    let text = screen(&s, 160, 45);
    assert!(text.contains("deploying v1.8.0 · 12s"));
    // The pending panel does not offer `p` (refused while it runs) on
    // gates read before the deploy began.
    assert!(
        text.contains("… promote running: wait for it to end") && !text.contains("p promotes"),
        "{text}"
    );
    let narrow = screen(&s, 80, 24);
    assert!(
        narrow.contains("… promote running") && !narrow.contains("p promotes"),
        "{narrow}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn monitoring_with_charts() {
    let mut s = console();
    monitored(&mut s, 600, false);
    let text = screen(&s, 160, 45);
    assert!(text.contains("Monitoring production · v1.8.0 · 20:00 left"));
    assert!(
        text.contains("… no regression so far, 10m in: error rate 0.31%"),
        "{text}"
    );
    assert!(
        !text.contains("healthy:"),
        "not called healthy before the window ends"
    );
    assert!(text.contains("-30m"));
    insta::assert_snapshot!(text);
}

#[test]
fn regression_banner() {
    let mut s = console();
    monitored(&mut s, 200, true);
    let text = screen(&s, 160, 45);
    assert!(text.contains("REGRESSION in production (v1.8.0)"));
    assert!(text.contains("r rolls back"));
    insta::assert_snapshot!(text);
}

#[test]
fn rolling_back() {
    let mut s = console();
    monitored(&mut s, 200, true);
    code(&mut s, KeyCode::Left); // the alarm's env is rolled back whatever is selected
    key(&mut s, 'r');
    let dialog = screen(&s, 160, 45);
    assert!(
        dialog.contains("Roll back production: v1.8.0 → v1.7.3"),
        "{dialog}"
    );
    assert!(dialog.contains("strategy: redeploy"));
    let fx = code(&mut s, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![
            Effect::CancelWatch {
                env: "production".into()
            },
            Effect::Rollback {
                env: "production".into(),
                to: Some(v("v1.7.3"))
            }
        ]
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
    let later = s.now + Duration::seconds(4);
    update(&mut s, Msg::Tick(later));
    let text = screen(&s, 160, 45);
    assert!(text.contains("rolling back → v1.7.3"));
    assert!(!text.contains("press r to roll back now"));
    insta::assert_snapshot!(text);
}

#[test]
fn backend_error_in_a_panel() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    let prod = st
        .environments
        .iter_mut()
        .find(|e| e.name == "production")
        .unwrap();
    prod.version = None;
    prod.version_error =
        Some("GET http://127.0.0.1:7878/envs/production/version: connection refused".into());
    prod.health = Health::Unknown;
    prod.metrics = MetricsSnapshot::default();
    prod.metrics_error = Some("scrape http://127.0.0.1:7878/metrics timed out after 5s".into());
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    update(
        &mut s,
        Msg::HistoryLoaded(Err("store: database is locked".into())),
    );
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("✗ GET http://127.0.0.1:7878/envs/pr"),
        "{text}"
    );
    assert!(text.contains("✗ metrics: scrape http://127.0.0.1:7878/metrics timed out after 5s"));
    insta::assert_snapshot!(text);
}

/// A metrics source that does not answer: each column's metrics row says
/// what went wrong, not the source's name again (`✗ metrics: metrics…`).
#[test]
fn a_metrics_source_that_does_not_answer_reads_as_such_in_every_column() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    for e in &mut st.environments {
        e.metrics = MetricsSnapshot::default();
        e.metrics_error = Some(
            "metrics source http://127.0.0.1:47918/metrics did not answer within 5000 ms".into(),
        );
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    for (w, h, cut) in [
        (160, 45, "✗ did not answer within…"),
        (120, 40, "✗ did not answer"),
    ] {
        let text = screen(&s, w, h);
        let row = text
            .lines()
            .find(|l| l.starts_with("metrics") || l.contains("│ metrics"))
            .unwrap_or_else(|| panic!("{w}x{h}:\n{text}"));
        assert_eq!(row.matches(cut).count(), 4, "{w}x{h}: {row}");
        assert!(!row.contains("metrics: metrics"), "{w}x{h}: {row}");
    }
    // The panel names the source.
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("✗ metrics: metrics source http://127.0.0.1:47918/metrics did not answer"),
        "{text}"
    );
}

/// A version source that does not answer: the column says why (the URL it
/// is named by took both of the column's rows, and the cause was cut off);
/// `v` still shows the URL.
#[test]
fn a_version_source_that_does_not_answer_says_why_in_its_column() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    for e in &mut st.environments {
        e.version = None;
        e.version_error = Some(format!(
            "version source of {} (http://127.0.0.1:47918/envs/{}/version): no answer within 5s",
            e.name, e.name
        ));
    }
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    // Wrapped at words: the cause is on screen in every column.
    for (w, h, cause) in [(160, 45, "answer within 5s"), (120, 40, "no answer")] {
        let text = screen(&s, w, h);
        assert_eq!(text.matches(cause).count(), 4, "{w}x{h}:\n{text}");
        assert!(
            !text.contains("(http://127.0.0.1:47918/envs/"),
            "{w}x{h}:\n{text}"
        );
    }
    key(&mut s, 'v');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("http://127.0.0.1:47918/envs/production/version"),
        "{text}"
    );
}

#[test]
fn status_failure_before_anything_loaded() {
    let mut s = State::new(settings(), Theme::dark(), t0());
    update(&mut s, Msg::Tick(t0()));
    let loading = screen(&s, 160, 45);
    assert!(loading.contains("loading environments…"));
    update(
        &mut s,
        Msg::StatusLoaded(Err("engine task failed: store unreachable".into())),
    );
    let text = screen(&s, 160, 45);
    assert!(text.contains("status failed: engine task failed: store unreachable"));
    insta::assert_snapshot!(text);
}

#[test]
fn too_small_terminal() {
    let s = console();
    let text = screen(&s, 70, 20);
    assert!(text.contains("enlarge the terminal to 80×24 (now 70×20)"));
    insta::assert_snapshot!(text);
}

/// The cells of `buf` inside `area` (x, y, w, h), as text.
fn region(buf: &Buffer, x: u16, y: u16, w: u16, h: u16) -> String {
    let mut out = String::new();
    for row in y..y + h {
        for col in x..x + w {
            out.push_str(buf[(col, row)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Plot rows of the error-rate and latency charts: from each legend to
/// the next legend, or to the panel's bottom border.
fn chart_heights(text: &str) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let find = |what: &str| lines.iter().position(|l| l.contains(what)).unwrap();
    let err = find("Error rate");
    let lat = find("Latency");
    let bottom = (lat..lines.len())
        .find(|&i| lines[i].contains("┘└") || lines[i].contains("╝└") || lines[i].ends_with("┘"))
        .unwrap();
    (lat - err - 1, bottom - lat - 1)
}

/// No visible text may end in a cut without `…`, nor may `…` follow a key
/// label directly (`p95 …`, `· 1…`).
fn assert_no_bad_cuts(text: &str) {
    for bad in ["p95 …", "· 1…", "monitoring · 1", "err …", "limit …", "/…"] {
        assert!(!text.contains(bad), "bad cut {bad:?} in\n{text}");
    }
}

#[test]
fn minimum_size_80x24_shows_every_gate_the_help_hint_and_four_row_charts() {
    let mut s = console();
    approved(&mut s);
    let text = screen(&s, 80, 24);
    for gate in ["✓ ci", "✓ approval", "! window"] {
        assert!(text.contains(gate), "{gate} missing:\n{text}");
    }
    assert!(text.contains("p promotes"), "{text}");
    assert!(text.contains("? help") && text.contains("q quit"), "{text}");
    for label in [
        "version", "health", "state", "approval", "deployed", "metrics",
    ] {
        assert!(text.contains(label), "card label {label} missing");
    }
    let (e, l) = chart_heights(&text);
    assert!(
        e >= 4 && l >= 4,
        "two charts of 4+ rows ({e}, {l}):\n{text}"
    );
    assert_no_bad_cuts(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn minimum_size_80x24_while_monitoring() {
    let mut s = console();
    monitored(&mut s, 60, false);
    let text = screen(&s, 80, 24);
    assert!(text.contains("watch · 29:00"), "{text}");
    assert!(text.contains("? help"), "{text}");
    let (e, l) = chart_heights(&text);
    assert!(
        e >= 4 && l >= 4,
        "two charts of 4+ rows ({e}, {l}):\n{text}"
    );
    assert_no_bad_cuts(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn at_100x30_the_blocked_by_line_is_whole() {
    let s = console();
    let text = screen(&s, 100, 30);
    assert!(text.contains("✗ blocked by approval"), "{text}");
    for gate in ["✓ ci", "✗ approval", "✓ window"] {
        assert!(text.contains(gate), "{gate} missing:\n{text}");
    }
    assert!(text.contains("? help"), "{text}");
    assert_no_bad_cuts(&text);
    insta::assert_snapshot!(text);
}

/// Column where the monitoring panel starts (its title's box corner).
fn monitor_left(text: &str) -> usize {
    text.lines()
        .find_map(|l| {
            let at = l.find("┐┌")?;
            Some(l[..at].chars().count() + 1)
        })
        .expect("two panels side by side")
}

#[test]
fn the_full_verdict_is_in_the_detail_view() {
    let mut s = console();
    monitored(&mut s, 200, true);
    let small = screen(&s, 80, 24);
    let reason = "error rate 6.1% for 3 steps, above the 2.00% limit (baseline 0.30%)";
    assert!(!small.contains(reason), "too long for 80 columns");
    key(&mut s, 'v');
    let buf = draw(&s, 80, 24);
    let text = buffer_text(&buf);
    let inside = region(&buf, 3, 2, 74, 20);
    let words = inside.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains(reason), "{text}");
    assert!(
        words.contains("baseline 30m before"),
        "the baseline the verdict used: {text}"
    );
    assert!(text.contains("2026-11-24"), "times with their date");
    assert!(text.contains("UTC"), "and their zone");
    insta::assert_snapshot!(text);
    code(&mut s, KeyCode::Esc);
    assert!(s.overlays.is_empty());
}

#[test]
fn rollback_dialog_shows_expected_time_auto_rollback_and_the_targets_record() {
    let mut s = console();
    monitored(&mut s, 200, true);
    key(&mut s, 'r');
    let loading = screen(&s, 100, 30);
    assert!(loading.contains("expected time: loading"), "{loading}");
    let log = audit_log(s.now);
    update(&mut s, Msg::HistoryLoaded(Ok(log)));
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("expected time: about 21s (median of the last 3 deploys here)"),
        "{text}"
    );
    assert!(text.contains("auto-rollback: off"), "{text}");
    assert!(
        text.contains("v1.7.3: deployed by erin at 2026-11-2"),
        "{text}"
    );
    assert!(text.contains("last verdict:"), "{text}");
    assert!(
        text.contains("healthy: no significant change over 30m"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    // Without a record of deploy durations, it says so.
    let mut s = console();
    update(&mut s, Msg::HistoryLoaded(Ok(vec![])));
    assert_eq!(
        key(&mut s, 'r'),
        vec![Effect::LoadHistory {
            limit: super::state::HISTORY_LIMIT
        }],
        "a log loaded earlier may predate the last deploy: load it again"
    );
    assert!(screen(&s, 100, 30).contains("expected time: unknown"));
}

/// Play the regression verdict of the window on production.
fn monitored_regression(s: &mut State) {
    update(
        s,
        Msg::Engine(Event::MonitorSample {
            env: "production".into(),
            sample: sample(150.0, true),
            verdict: Verdict {
                kind: VerdictKind::Regression,
                metric: Some(Metric::ErrorRate),
                detected_at: Some(150.0),
                reason: "error rate 6.1% for 3 steps, above the 2.00% limit (baseline 0.30%)"
                    .into(),
            },
            baseline: summary(),
        }),
    );
}

/// In a window, a figure's age is its own point's: steps without requests
/// (no error rate, no latency) add no point, so "now 0.3%" after four empty
/// minutes is four minutes old, however fresh the newest (empty) step is —
/// and no longer called "now": the legend reads "4m ago 0.30%".
#[test]
fn a_window_figure_after_empty_steps_says_how_old_it_is() {
    let mut s = console();
    monitored(&mut s, 60, false);
    let deploy_at = s.now - Duration::seconds(60);
    let fresh = screen(&s, 160, 45);
    assert!(fresh.contains(" · 0s ago"), "{fresh}");
    for t in (70..=300).step_by(10) {
        update(&mut s, Msg::Tick(deploy_at + Duration::seconds(t)));
        let empty = Sample {
            t: t as f64,
            requests: 0.0,
            errors: 0.0,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
        };
        update(
            &mut s,
            Msg::Engine(Event::MonitorSample {
                env: "production".into(),
                sample: empty,
                verdict: Verdict {
                    kind: VerdictKind::Collecting,
                    metric: None,
                    detected_at: None,
                    reason: "no requests".into(),
                },
                baseline: summary(),
            }),
        );
    }
    let text = screen(&s, 160, 45);
    assert!(
        !text.contains("  now "),
        "a 4-minute-old figure is no 'now':\n{text}"
    );
    let legends: Vec<&str> = text.lines().filter(|l| l.contains("  4m ago ")).collect();
    assert_eq!(legends.len(), 2, "the last figure is 240s old:\n{text}");
}

/// Live metrics whose source went quiet: the status keeps coming, the
/// metrics' last point stays minutes behind, and the charts' legends say
/// how old it is instead of "now" — at 80×24 too, where the age beside a
/// "now" was the first part dropped and "now 0.73%" read as current.
#[test]
fn a_live_chart_whose_source_went_quiet_says_how_old_its_last_point_is() {
    let mut s = console();
    let last = s.now;
    let legend = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("Error rate") || l.contains("Latency"))
            .map(str::to_string)
            .collect()
    };
    let fresh = screen(&s, 80, 24);
    assert!(
        legend(&fresh).iter().all(|l| l.contains("  now ")),
        "{fresh}"
    );
    for i in 1..=36 {
        let now = last + Duration::seconds(5 * i);
        update(&mut s, Msg::Tick(now));
        let mut st = status(now, 120 + i);
        for e in &mut st.environments {
            e.metrics.as_of = Some(last - Duration::seconds(1));
        }
        update(&mut s, Msg::StatusLoaded(Ok(st)));
    }
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        let legends = legend(&text);
        assert_eq!(legends.len(), 2, "{w}x{h}:\n{text}");
        for l in legends {
            assert!(
                l.contains("  3m ago ") && !l.contains(" now "),
                "{w}x{h}: the last point is 3 minutes old: {l}\n{text}"
            );
        }
    }
    // A figure a step or two old is still "now".
    let text = screen(&console(), 160, 45);
    assert!(legend(&text).iter().all(|l| l.contains("  now ")), "{text}");
}

#[test]
fn charts_mark_the_verdict_and_the_rollback_distinctly_without_colour() {
    let mut s = running_console(settings(), Theme::mono());
    monitored(&mut s, 200, true);
    let before = screen(&s, 160, 45);
    assert!(before.contains("┃ verdict"), "{before}");
    assert!(!before.contains("╎ rollback"));
    key(&mut s, 'r');
    code(&mut s, KeyCode::Enter);
    update(
        &mut s,
        Msg::Engine(Event::DeployStarted {
            env: "production".into(),
            version: v("v1.7.3"),
            from: Some(v("v1.8.0")),
            rollback: true,
        }),
    );
    let text = screen(&s, 160, 45);
    for legend in ["· band", "- limit", "│ deploy", "┃ verdict", "╎ rollback"] {
        assert!(text.contains(legend), "{legend}:\n{text}");
    }
    // The lines themselves: each guide in its own symbol.
    let chart_lines = || {
        text.lines()
            .skip(14)
            .map(|l| l.chars().skip(45).collect::<String>())
    };
    for glyph in ['·', '-'] {
        let line = chart_lines().any(|l| l.chars().filter(|c| *c == glyph).count() >= 20);
        assert!(line, "horizontal {glyph} not drawn:\n{text}");
    }
    for glyph in ['│', '┃', '╎'] {
        let rows = chart_lines().filter(|l| l.contains(glyph)).count();
        assert!(rows >= 8, "vertical {glyph} not drawn:\n{text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn help() {
    let mut s = console();
    key(&mut s, '?');
    let text = screen(&s, 160, 45);
    let all = screen(&s, 200, 60);
    // At 80×24 help does not fit: it scrolls to its last line.
    let mut small = console();
    update(&mut small, Msg::Resize(80, 24));
    key(&mut small, '?');
    assert!(!screen(&small, 80, 24).contains("close this help"));
    for _ in 0..80 {
        key(&mut small, 'j');
    }
    let end = screen(&small, 80, 24);
    assert!(end.contains("close this help"), "{end}");
    assert!(end.contains("↑↓ scroll"), "{end}");
    for b in super::keymap::BINDINGS {
        if !super::keymap::paired(b.action) {
            assert!(all.contains(b.help), "help lacks {:?}", b.help);
        }
    }
    insta::assert_snapshot!(text);
}

#[test]
fn history_view() {
    use crate::domain::{ActionKind, AuditEntry, Outcome};
    let mut s = console();
    let fx = key(&mut s, 'H');
    assert_eq!(
        fx,
        vec![Effect::LoadHistory {
            limit: super::state::HISTORY_LIMIT
        }]
    );
    let entries = vec![
        AuditEntry {
            id: 2,
            at: t0() - Duration::minutes(5),
            actor: "dana".into(),
            action: ActionKind::Approve,
            env: "production".into(),
            version: Some(v("v1.8.0")),
            from_version: None,
            outcome: Outcome::Succeeded,
            detail: "Go: soak looked clean".into(),
            finished_at: None,
        },
        AuditEntry {
            id: 1,
            at: t0() - Duration::hours(3),
            actor: "carol".into(),
            action: ActionKind::Promote,
            env: "staging".into(),
            version: Some(v("v1.8.0")),
            from_version: Some(v("v1.7.3")),
            outcome: Outcome::Succeeded,
            detail: "observed v1.8.0 after 14s".into(),
            finished_at: None,
        },
    ];
    update(&mut s, Msg::HistoryLoaded(Ok(entries.clone())));
    let text = screen(&s, 160, 45);
    assert!(text.contains("Audit log · 2 entries"));
    assert!(text.contains("v1.7.3 → v1.8.0"));
    assert!(text.contains("when (UTC)"), "times say their zone");
    insta::assert_snapshot!(text);
    // One record is one entry (the demo's log opens with one: "1 entries").
    update(&mut s, Msg::HistoryLoaded(Ok(entries[..1].to_vec())));
    let text = screen(&s, 160, 45);
    assert!(text.contains("Audit log · 1 entry "), "{text}");
}

#[test]
fn history_at_100x30_with_cursor_filter_and_a_record_in_full() {
    let mut s = console();
    update(&mut s, Msg::Resize(100, 30));
    key(&mut s, 'H');
    let log = audit_log(s.now);
    update(&mut s, Msg::HistoryLoaded(Ok(log)));
    key(&mut s, 'j');
    key(&mut s, 'j');
    let text = screen(&s, 100, 30);
    assert!(
        text.contains("▶ 11-24 18:00 bob"),
        "cursor on the third row:\n{text}"
    );
    assert!(text.contains("Esc console"), "{text}");
    assert!(text.contains("? help"), "{text}");
    insta::assert_snapshot!("history_100x30_cursor", text);
    key(&mut s, '/');
    for c in "erin".chars() {
        key(&mut s, c);
    }
    let text = screen(&s, 100, 30);
    assert!(text.contains("filter: erin▏"), "{text}");
    assert!(text.contains("3 of 40 entries"), "{text}");
    insta::assert_snapshot!("history_100x30_filter", text);
    code(&mut s, KeyCode::Enter);
    code(&mut s, KeyCode::Enter);
    let text = screen(&s, 100, 30);
    assert!(text.contains("Audit record #34"), "{text}");
    assert!(text.contains("2026-11-22 20:00:00 UTC"), "{text}");
    insta::assert_snapshot!("history_100x30_record", text);
}

#[test]
fn no_color() {
    let mut s = running_console(settings(), Theme::mono());
    monitored(&mut s, 300, false);
    let buf = draw(&s, 160, 45);
    for cell in buf.content() {
        assert_eq!(
            cell.fg,
            ratatui::style::Color::Reset,
            "colour under NO_COLOR at {:?}",
            cell.symbol()
        );
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
    // The selected column's title is reversed, so it shows without colour.
    let text = buffer_text(&buf);
    let (row, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("▶ production"))
        .unwrap();
    let col = line.chars().take_while(|c| *c != '▶').count() as u16;
    assert!(buf[(col, row as u16)].modifier.contains(Modifier::REVERSED));
    insta::assert_snapshot!(text);
}
