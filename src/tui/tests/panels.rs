//! What the panels say beyond the snapshots: warm-up evidence, where space
//! goes, the detail view and the baseline, tiny terminals, links and the
//! header's status age.

use super::*;

#[test]
fn warm_up_evidence_is_neutral_and_never_called_healthy() {
    let mut s = console();
    monitored(&mut s, 30, false);
    let reason = "warm-up: no verdict before t=+30s; so far error rate 4.4% vs 0.36%";
    update(
        &mut s,
        Msg::Engine(Event::MonitorSample {
            env: "production".into(),
            sample: sample(37.0, false),
            verdict: Verdict {
                kind: VerdictKind::Collecting,
                metric: None,
                detected_at: None,
                reason: reason.into(),
            },
            baseline: summary(),
        }),
    );
    let later = s.now + Duration::seconds(7);
    update(&mut s, Msg::Tick(later));
    let buf = draw(&s, 160, 45);
    let text = buffer_text(&buf);
    assert!(
        text.contains("… collecting, 37s: error rate 4.4% vs 0.36% — judging from t=+30s"),
        "{text}"
    );
    let small = screen(&s, 80, 24);
    assert!(
        small.contains("… collecting, 37s: error rate 4.4% vs 0.36%"),
        "the evidence, even at 80×24:\n{small}"
    );
    assert!(!text.contains("healthy:"), "{text}");
    // A window still running calls nothing healthy, even on a healthy
    // judgement so far, and draws it in neutral colours.
    update(
        &mut s,
        Msg::Engine(Event::MonitorSample {
            env: "production".into(),
            sample: sample(47.0, false),
            verdict: Verdict {
                kind: VerdictKind::Healthy,
                metric: None,
                detected_at: None,
                reason: "no significant change over 47s".into(),
            },
            baseline: summary(),
        }),
    );
    let buf = draw(&s, 160, 45);
    let text = buffer_text(&buf);
    let (row, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("no regression so far"))
        .expect("the judgement so far is shown");
    assert!(!line.contains('✓') && !line.contains("healthy:"), "{line}");
    let col = line.chars().take_while(|c| *c != '…').count() as u16;
    let ok = Theme::dark().ok;
    assert_ne!(buf[(col, row as u16)].fg, ok.fg.unwrap(), "not green");
    // Once the window has ended healthy, it is called healthy.
    update(
        &mut s,
        Msg::Engine(Event::MonitorFinished {
            env: "production".into(),
            verdict: Verdict {
                kind: VerdictKind::Healthy,
                metric: None,
                detected_at: None,
                reason: "no significant change over 30m".into(),
            },
        }),
    );
    assert!(screen(&s, 160, 45).contains("✓ healthy: no significant change over 30m"));
}

#[test]
fn space_goes_to_what_matters_now() {
    let s = console();
    let pending = monitor_left(&screen(&s, 160, 45));
    // Nothing to promote to production any more, and a window runs.
    let mut s = console();
    monitored(&mut s, 60, false);
    let watching = monitor_left(&screen(&s, 160, 45));
    assert!(
        watching + 20 <= pending,
        "the monitoring window grows: starts at {watching} rather than {pending}"
    );
    // Staging has something to promote: its pending panel is wide again.
    code(&mut s, KeyCode::Left);
    let staging = monitor_left(&screen(&s, 160, 45));
    assert!(staging > watching, "{staging} vs {watching}");
}

#[test]
fn the_detail_view_says_why_healthy_and_keeps_notice_times_apart_from_their_text() {
    let mut s = console();
    monitored(&mut s, 200, true);
    key(&mut s, 'v');
    let text = screen(&s, 100, 80);
    assert!(
        text.contains("healthy: error rate 0.30%: in line with its own last 30m"),
        "{text}"
    );
    assert!(text.contains("Recent notices (times in UTC)"), "{text}");
    let glued = text
        .match_indices("UTC")
        .any(|(i, _)| text[i + 3..].starts_with(|c: char| c.is_alphabetic()));
    assert!(!glued, "a notice's time runs into its text:\n{text}");
}

#[test]
fn the_monitoring_panel_shows_the_baseline_the_verdict_uses() {
    let mut s = console();
    monitored(&mut s, 60, false);
    let big = screen(&s, 160, 45);
    assert!(
        big.contains("baseline: 30m before") && big.contains("(180 steps)"),
        "{big}"
    );
    // At the minimum size the charts keep their rows; the detail view has it.
    let small = screen(&s, 80, 24);
    assert!(!small.contains("baseline: 30m"), "{small}");
}

#[test]
fn tiny_terminal_ignores_keys_and_keeps_the_alarm_for_later() {
    let mut s = console();
    monitored(&mut s, 100, true);
    update(&mut s, Msg::Resize(60, 20));
    // While tiny: the regression is found; keys open nothing unseen.
    monitored_regression(&mut s);
    for c in ['r', 'p', 'a', 'H', '?', 'v', 'P'] {
        assert_eq!(key(&mut s, c), vec![], "{c}");
    }
    code(&mut s, KeyCode::Esc);
    assert!(s.overlays.is_empty(), "no invisible dialog");
    assert!(s.alarm.is_some(), "Esc did not dismiss an alarm nobody saw");
    let tiny = screen(&s, 60, 20);
    assert!(
        tiny.contains("⚠ REGRESSION in production (v1.8.0)"),
        "{tiny}"
    );
    assert!(tiny.contains("Ctrl-C quits"), "{tiny}");
    assert_eq!(key(&mut s, 'q'), vec![], "q would stop the window unasked");
    update(&mut s, Msg::Resize(160, 45));
    let text = screen(&s, 160, 45);
    assert!(text.contains("REGRESSION in production (v1.8.0)"), "{text}");
    assert!(text.contains("r rolls back"));
}

#[test]
fn links_show_in_the_column_and_the_banner_as_hyperlink_spots() {
    let mut settings = settings();
    settings.links.insert(
        "production".into(),
        vec![
            (
                "logs".into(),
                "https://logs.example.com/?q=env%3D{env}".into(),
            ),
            (
                "dashboard".into(),
                "https://grafana.example.com/d/shop?v={version}".into(),
            ),
        ],
    );
    let mut s = running_console(settings, Theme::dark());
    monitored(&mut s, 200, true);
    let mut term = Terminal::new(TestBackend::new(160, 45)).unwrap();
    let mut spots = Vec::new();
    term.draw(|f| spots = view::draw(&s, f)).unwrap();
    let buf = term.backend().buffer().clone();
    let text = buffer_text(&buf);
    let at = |sp: &view::LinkSpot| region(&buf, sp.x, sp.y, sp.width, 1).trim_end().to_string();
    let found: Vec<(String, String, u16)> = spots
        .iter()
        .map(|sp| (at(sp), sp.url.clone(), sp.y))
        .collect();
    let banner_y = 1;
    assert!(
        found.contains(&(
            "logs".into(),
            "https://logs.example.com/?q=env%3Dproduction".into(),
            banner_y
        )),
        "banner: {found:?}\n{text}"
    );
    assert!(
        found.contains(&(
            "dashboard".into(),
            "https://grafana.example.com/d/shop?v=v1.8.0".into(),
            banner_y
        )),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(t, _, y)| t == "logs" && *y > banner_y),
        "column: {found:?}\n{text}"
    );
    for (_, url, _) in &found {
        assert!(url.bytes().all(|b| (0x21..0x7f).contains(&b)), "{url}");
    }
    // No links under an overlay.
    key(&mut s, '?');
    term.draw(|f| spots = view::draw(&s, f)).unwrap();
    assert!(spots.is_empty());
}

#[test]
fn the_header_keeps_the_status_age_and_cuts_with_an_ellipsis() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    st.project = "the-checkout-and-payments-platform-of-the-shop".into();
    st.store_error = Some("database is locked (another process holds the write lock)".into());
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let text = screen(&s, 80, 24);
    let top = text.lines().next().unwrap();
    assert!(top.contains("status 1s ago"), "{top}");
    assert!(top.contains("✗ store"), "{top}");
    assert!(top.contains(" shipdeck"), "{top}");
    assert!(top.contains('…'), "whatever is cut says so: {top}");
}

/// A team store that went away: the header says for how long and since
/// when, not the store's URL cut before it (found by hand at 160 columns:
/// `✗ store: store postgres://…/t10 is unreachable (host …)…`).
#[test]
fn the_header_says_how_long_the_store_has_been_unreachable() {
    let mut s = console();
    let mut st = s.status.clone().unwrap();
    st.store_error = Some(
        "store postgres://shipdeck_team@db-primary.internal.example.com:5432/shipdeck is unreachable (host db-primary.internal.example.com:5432): unreachable for 14s (since 21:06:15), reconnecting: error connecting to server: Connection refused (os error 111)".into(),
    );
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    let text = screen(&s, 120, 30);
    let top = text.lines().next().unwrap();
    assert!(
        top.contains("✗ store unreachable for 14s (since 21:06:15)"),
        "{top}"
    );
    assert!(top.contains("status 1s ago"), "{top}");
}

/// Another process's window that caught a regression, shown from the store:
/// red while the environment still runs what it caught, history (no alarm
/// colour) once it was rolled back — it may be days until the next window.
#[test]
fn a_stored_regression_is_red_only_while_its_version_runs() {
    let mut s = console();
    let border_fg = |s: &State| {
        let buf = draw(s, 160, 45);
        let text = buffer_text(&buf);
        let (row, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("Last monitoring window · production"))
            .expect("the stored window is shown");
        let col = line.chars().take_while(|c| *c != 'L').count() as u16;
        buf[(col.saturating_sub(2), row as u16)].fg
    };
    let caught = |p: &mut crate::engine::EnvStatus, runs: &str| {
        p.state = crate::domain::EnvState::Idle;
        p.watcher = None;
        p.version = Some(crate::domain::Version::parse(runs).unwrap());
        p.last_window = Some(crate::engine::LastWindow {
            version: crate::domain::Version::parse("v1.8.0").unwrap(),
            started_at: t0() - chrono::Duration::minutes(12),
            finished_at: t0() - chrono::Duration::minutes(2),
            verdict: crate::domain::WindowVerdict::Regression,
            reason: "error rate 4.4% vs 0.36% baseline".into(),
        });
    };
    let red = Theme::dark().error.fg.unwrap();
    with_production(&mut s, |p| caught(p, "v1.8.0"));
    assert_eq!(border_fg(&s), red, "still running what it caught");
    with_production(&mut s, |p| caught(p, "v1.7.3"));
    assert_ne!(border_fg(&s), red, "rolled back: history, not an alarm");
    assert!(screen(&s, 160, 45).contains("✗ REGRESSION"));
}
