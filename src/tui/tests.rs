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
use super::state::{Settings, State};
use super::theme::Theme;
use super::{update, view};

pub(crate) mod fixture {
    use super::*;

    pub fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 20, 0, 0).unwrap()
    }

    pub fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    pub fn gate(name: &str, ok: bool, sev: GateSeverity, detail: &str) -> Gate {
        Gate {
            name: name.into(),
            ok,
            detail: detail.into(),
            severity: sev,
        }
    }

    fn env(name: &str, version: &str, now: DateTime<Utc>) -> EnvStatus {
        EnvStatus {
            name: name.into(),
            production: false,
            monitored: false,
            version: Some(v(version)),
            version_error: None,
            health: Health::Healthy,
            health_detail: "error rate 0.30%: in line with its own last 30m".into(),
            health_basis: crate::domain::health::Comparison::OwnBaseline,
            reachable: true,
            checked_at: now - Duration::seconds(2),
            state: EnvState::Idle,
            state_since: None,
            watcher: None,
            unwatched: false,
            drift: None,
            rollback: None,
            metrics: MetricsSnapshot::default(),
            metrics_error: None,
            approval: None,
            last_deploy: None,
            promotion: None,
            promotion_error: None,
        }
    }

    fn deploy(env: &str, to: &str, from: &str, who: &str, at: DateTime<Utc>) -> DeployRecord {
        DeployRecord {
            env: env.into(),
            version: v(to),
            from_version: Some(v(from)),
            at,
            actor: who.into(),
            kind: crate::domain::DeployKind::Promote,
        }
    }

    /// Deterministic "noise" for metrics at step `i`.
    pub fn wobble(i: i64) -> f64 {
        ((i * 7919) % 13) as f64 / 13.0
    }

    pub fn metrics(i: i64, at: DateTime<Utc>, scale: f64) -> MetricsSnapshot {
        let w = wobble(i);
        MetricsSnapshot {
            error_rate: Some((0.002 + 0.002 * w) * scale),
            p50_ms: Some(40.0 + 5.0 * w),
            p95_ms: Some(120.0 + 20.0 * w),
            p99_ms: Some(230.0 + 40.0 * w),
            requests_per_s: Some(20.0 + w),
            as_of: Some(at),
        }
    }

    /// The demo-like fleet at `now`: staging runs v1.8.0, production v1.7.3
    /// and waits for a Go.
    pub fn status(now: DateTime<Utc>, i: i64) -> Status {
        let mut local = env("local", "v1.8.1", now);
        local.last_deploy = Some(deploy(
            "local",
            "v1.8.1",
            "v1.8.0",
            "bob",
            now - Duration::hours(2),
        ));
        local.promotion_error = Some(
            "local is the first stage: nothing comes before it, so give the version with --version"
                .into(),
        );
        let mut dev = env("development", "v1.8.1", now);
        dev.last_deploy = Some(deploy(
            "development",
            "v1.8.1",
            "v1.8.0",
            "carol",
            now - Duration::minutes(40),
        ));
        dev.promotion_error = Some("development already runs v1.8.1".into());
        let mut staging = env("staging", "v1.8.0", now);
        staging.last_deploy = Some(deploy(
            "staging",
            "v1.8.0",
            "v1.7.3",
            "carol",
            now - Duration::hours(3),
        ));
        staging.promotion = Some(PromotionPlan {
            from: Some("development".into()),
            to: "staging".into(),
            version: v("v1.8.1"),
            current: Some(v("v1.8.0")),
            skips: vec![],
            gates: vec![
                gate("ci", true, GateSeverity::Block, "checks passed on 3f2a9c1"),
                gate("review", true, GateSeverity::Block, "approved by dana"),
            ],
        });
        let mut prod = env("production", "v1.7.3", now);
        prod.production = true;
        prod.monitored = true;
        prod.approval = Some(Approval {
            env: "production".into(),
            version: v("v1.7.3"),
            decision: Decision::Go,
            actor: "erin".into(),
            at: now - Duration::days(2),
            note: None,
        });
        prod.last_deploy = Some(deploy(
            "production",
            "v1.7.3",
            "v1.7.2",
            "erin",
            now - Duration::days(2),
        ));
        let plan = PromotionPlan {
            from: Some("staging".into()),
            to: "production".into(),
            version: v("v1.8.0"),
            current: Some(v("v1.7.3")),
            skips: vec![],
            gates: vec![
                gate("ci", true, GateSeverity::Block, "checks passed on 9be41d0"),
                gate(
                    "approval",
                    false,
                    GateSeverity::Block,
                    "no Go recorded for v1.8.0 (needs a Go while staging runs it)",
                ),
                gate(
                    "window",
                    true,
                    GateSeverity::Warn,
                    "inside the low-traffic window 19:00–23:00",
                ),
            ],
        };
        prod.promotion = Some(plan.clone());
        let mut envs = vec![local, dev, staging, prod];
        for (k, e) in envs.iter_mut().enumerate() {
            e.metrics = metrics(
                i + k as i64,
                now - Duration::seconds(1),
                1.0 + k as f64 * 0.3,
            );
        }
        Status {
            project: "shop".into(),
            generated_at: now - Duration::seconds(1),
            actor: "alice".into(),
            environments: envs,
            pending: Some(plan),
            store_error: None,
        }
    }

    pub fn settings() -> Settings {
        Settings {
            auto_rollback: false,
            ..Settings::default()
        }
    }

    /// A console that has been open for ten minutes, refreshing every 5 s.
    pub fn running_console(settings: Settings, theme: Theme) -> State {
        let start = t0() - Duration::minutes(10);
        let mut s = State::new(settings, theme, start);
        for i in 0..=120 {
            let now = start + Duration::seconds(5 * i);
            update(&mut s, Msg::Tick(now));
            update(&mut s, Msg::StatusLoaded(Ok(status(now, i))));
        }
        s
    }

    pub fn console() -> State {
        running_console(settings(), Theme::dark())
    }

    pub fn key(s: &mut State, c: char) -> Vec<Effect> {
        update(
            s,
            Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        )
    }

    pub fn code(s: &mut State, c: KeyCode) -> Vec<Effect> {
        update(s, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    /// Production with its Go recorded: the plan passes, the window warns.
    pub fn approved(s: &mut State) {
        let mut st = s.status.clone().unwrap();
        let prod = st
            .environments
            .iter_mut()
            .find(|e| e.name == "production")
            .unwrap();
        let plan = prod.promotion.as_mut().unwrap();
        plan.gates[1] = gate(
            "approval",
            true,
            GateSeverity::Block,
            "Go by dana 5m ago: \"soak looked clean\"",
        );
        plan.gates[2] = gate(
            "window",
            false,
            GateSeverity::Warn,
            "outside the low-traffic window 22:00–06:00",
        );
        update(s, Msg::StatusLoaded(Ok(st)));
    }

    pub fn sample(t: f64, bad: bool) -> Sample {
        let i = t as i64;
        let w = wobble(i / 10);
        let (err, lat) = if bad && t > 120.0 {
            (0.06, 2.2)
        } else {
            (0.003, 1.0)
        };
        Sample {
            t,
            requests: 1200.0,
            errors: (1200.0 * err * (0.8 + 0.4 * w)).round(),
            p50_ms: Some((41.0 + 4.0 * w) * lat),
            p95_ms: Some((120.0 + 15.0 * w) * lat),
            p99_ms: Some((230.0 + 30.0 * w) * lat),
        }
    }

    pub fn summary() -> BaselineSummary {
        BaselineSummary {
            error_rate: Some(Band {
                center: 0.003,
                low: 0.0022,
                high: 0.0042,
                threshold: Some(0.02),
            }),
            p50_ms: Some(Band {
                center: 43.0,
                low: 41.0,
                high: 45.0,
                threshold: None,
            }),
            p95_ms: Some(Band {
                center: 127.0,
                low: 120.0,
                high: 135.0,
                threshold: Some(250.0),
            }),
            p99_ms: Some(Band {
                center: 245.0,
                low: 230.0,
                high: 260.0,
                threshold: Some(500.0),
            }),
            requests: None,
        }
    }

    /// What the engine reports once production runs v1.8.0, deployed at `at`.
    pub fn deployed_status(now: DateTime<Utc>, i: i64, at: DateTime<Utc>, bad: bool) -> Status {
        let mut st = status(now, i);
        let prod = st
            .environments
            .iter_mut()
            .find(|e| e.name == "production")
            .unwrap();
        prod.version = Some(v("v1.8.0"));
        prod.state = EnvState::Monitoring;
        prod.state_since = Some(at);
        prod.approval = Some(Approval {
            env: "production".into(),
            version: v("v1.8.0"),
            decision: Decision::Go,
            actor: "dana".into(),
            at: at - Duration::minutes(5),
            note: Some("soak looked clean".into()),
        });
        prod.last_deploy = Some(deploy("production", "v1.8.0", "v1.7.3", "alice", at));
        prod.promotion = None;
        prod.promotion_error = Some("production already runs v1.8.0".into());
        if bad && (now - at).num_seconds() > 120 {
            prod.metrics = metrics(i, now - Duration::seconds(1), 20.0);
        }
        st.pending = None;
        st
    }

    /// Promote production through the dialog and play the deploy and
    /// `upto` seconds of the monitoring window.
    pub fn monitored(s: &mut State, upto: i64, bad: bool) {
        approved(s);
        key(s, 'p');
        code(s, KeyCode::Enter);
        let env = "production".to_string();
        update(
            s,
            Msg::Engine(Event::DeployStarted {
                env: env.clone(),
                version: v("v1.8.0"),
                from: Some(v("v1.7.3")),
                rollback: false,
            }),
        );
        update(
            s,
            Msg::Engine(Event::DeployFinished {
                env: env.clone(),
                version: v("v1.8.0"),
                ok: true,
                detail: "observed v1.8.0".into(),
            }),
        );
        let record = DeployRecord {
            env: env.clone(),
            version: v("v1.8.0"),
            from_version: Some(v("v1.7.3")),
            at: s.now,
            actor: "alice".into(),
            kind: crate::domain::DeployKind::Promote,
        };
        update(
            s,
            Msg::ActionDone {
                env: env.clone(),
                kind: TaskKind::Promote,
                result: Ok(Done::Deployed(record)),
            },
        );
        let deploy_at = s.now;
        update(
            s,
            Msg::StatusLoaded(Ok(deployed_status(deploy_at, 200, deploy_at, bad))),
        );
        let baseline = (0..180)
            .map(|k| sample(-1790.0 + 10.0 * k as f64, false))
            .collect();
        update(
            s,
            Msg::Engine(Event::MonitorStarted {
                env: env.clone(),
                version: v("v1.8.0"),
                deploy_at,
                window_s: 1800.0,
                baseline,
            }),
        );
        let mut t = 10;
        while t <= upto {
            let regression = bad && t >= 150;
            let verdict = if regression {
                Verdict {
                    kind: VerdictKind::Regression,
                    metric: Some(Metric::ErrorRate),
                    detected_at: Some(150.0),
                    reason: "error rate 6.1% for 3 steps, above the 2.00% limit (baseline 0.30%)"
                        .into(),
                }
            } else if t < 60 {
                Verdict {
                    kind: VerdictKind::Collecting,
                    metric: None,
                    detected_at: None,
                    reason: "gathering the first steps of the window".into(),
                }
            } else {
                Verdict {
                    kind: VerdictKind::Healthy,
                    metric: None,
                    detected_at: None,
                    reason: "error rate 0.31% and p95 126ms within the baseline band".into(),
                }
            };
            let now = deploy_at + Duration::seconds(t);
            update(s, Msg::Tick(now));
            update(
                s,
                Msg::StatusLoaded(Ok(deployed_status(now, 200 + t, deploy_at, bad))),
            );
            update(
                s,
                Msg::Engine(Event::MonitorSample {
                    env: env.clone(),
                    sample: sample(t as f64, bad),
                    verdict,
                    baseline: summary(),
                }),
            );
            t += 10;
        }
    }
}

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
    term.draw(|f| view::draw(state, f)).unwrap();
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
    insta::assert_snapshot!(text);
}

#[test]
fn monitoring_with_charts() {
    let mut s = console();
    monitored(&mut s, 600, false);
    let text = screen(&s, 160, 45);
    assert!(text.contains("Monitoring production · v1.8.0 · 20:00 left"));
    assert!(text.contains("✓ healthy"));
    assert!(text.contains("-30m"));
    insta::assert_snapshot!(text);
}

#[test]
fn regression_banner() {
    let mut s = console();
    monitored(&mut s, 200, true);
    let text = screen(&s, 160, 45);
    assert!(text.contains("REGRESSION in production (v1.8.0)"));
    assert!(text.contains("press r to roll back now"));
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

#[test]
fn help() {
    let mut s = console();
    key(&mut s, '?');
    let text = screen(&s, 160, 45);
    for b in super::keymap::BINDINGS {
        if !matches!(
            b.action,
            super::keymap::Action::SelectNext | super::keymap::Action::ScrollDown
        ) {
            assert!(text.contains(b.help), "help lacks {:?}", b.help);
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
    update(&mut s, Msg::HistoryLoaded(Ok(entries)));
    let text = screen(&s, 160, 45);
    assert!(text.contains("Audit log · 2 entries"));
    assert!(text.contains("v1.7.3 → v1.8.0"));
    insta::assert_snapshot!(text);
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
