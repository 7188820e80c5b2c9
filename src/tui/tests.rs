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
            deploy_url: None,
            go_refusal: None,
            promotion: None,
            promotion_error: None,
            canary: None,
            release: None,
            rollback_schema: None,
            freeze: None,
            revert: Default::default(),
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
            url: None,
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
            evidence: Default::default(),
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
            evidence: Default::default(),
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
            pending: Some(Box::new(crate::engine::Pending {
                plan,
                release: Default::default(),
            })),
            store_error: None,
            integrity: None,
            watching: Vec::new(),
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

    /// An audit record.
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        id: i64,
        at: DateTime<Utc>,
        actor: &str,
        action: crate::domain::ActionKind,
        env: &str,
        version: &str,
        from: Option<&str>,
        outcome: crate::domain::Outcome,
        detail: &str,
        took_s: Option<i64>,
    ) -> crate::domain::AuditEntry {
        crate::domain::AuditEntry {
            id,
            at,
            actor: actor.into(),
            action,
            env: env.into(),
            version: Some(v(version)),
            from_version: from.map(v),
            outcome,
            detail: detail.into(),
            finished_at: took_s.map(|s| at + Duration::seconds(s)),
        }
    }

    /// An audit log of the fleet: deploys with their durations, a verdict,
    /// approvals; newest first.
    pub fn audit_log(now: DateTime<Utc>) -> Vec<crate::domain::AuditEntry> {
        use crate::domain::ActionKind::*;
        use crate::domain::Outcome::*;
        let mut out = vec![
            audit(
                40,
                now - Duration::minutes(5),
                "dana",
                Approve,
                "production",
                "v1.8.0",
                None,
                Succeeded,
                "Go: soak looked clean",
                None,
            ),
            audit(
                39,
                now - Duration::minutes(40),
                "carol",
                Promote,
                "development",
                "v1.8.1",
                Some("v1.8.0"),
                Succeeded,
                "observed v1.8.1 after 9s",
                Some(9),
            ),
            audit(
                38,
                now - Duration::hours(2),
                "bob",
                Promote,
                "local",
                "v1.8.1",
                Some("v1.8.0"),
                Succeeded,
                "observed v1.8.1 after 4s",
                Some(4),
            ),
            audit(
                37,
                now - Duration::hours(3),
                "carol",
                Promote,
                "staging",
                "v1.8.0",
                Some("v1.7.3"),
                Succeeded,
                "observed v1.8.0 after 14s",
                Some(14),
            ),
            audit(
                36,
                now - Duration::hours(20),
                "carol",
                Promote,
                "staging",
                "v1.7.9",
                Some("v1.7.3"),
                Succeeded,
                "observed v1.7.9 after 12s",
                Some(12),
            ),
            audit(
                35,
                now - Duration::days(2),
                "shipdeck",
                Verdict,
                "production",
                "v1.7.3",
                None,
                Succeeded,
                "healthy: no significant change over 30m",
                None,
            ),
            audit(
                34,
                now - Duration::days(2),
                "erin",
                Promote,
                "production",
                "v1.7.3",
                Some("v1.7.2"),
                Succeeded,
                "observed v1.7.3 after 21s",
                Some(21),
            ),
            audit(
                33,
                now - Duration::days(3),
                "erin",
                Promote,
                "production",
                "v1.7.2",
                Some("v1.7.1"),
                Succeeded,
                "observed v1.7.2 after 17s",
                Some(17),
            ),
            audit(
                32,
                now - Duration::days(4),
                "erin",
                Rollback,
                "production",
                "v1.7.1",
                Some("v1.7.2"),
                Succeeded,
                "rolled back after 25s",
                Some(25),
            ),
        ];
        for i in 0..31 {
            out.push(audit(
                31 - i,
                now - Duration::days(5 + i),
                "bob",
                Approve,
                "staging",
                "v1.6.0",
                None,
                Refused,
                "older record",
                None,
            ));
        }
        out
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
            url: None,
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
                baseline_note: format!(
                    "baseline: 30m before {} UTC (180 steps)",
                    deploy_at.format("%H:%M:%S")
                ),
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
        header.contains("also watching: bob@laptop ×2, carol@desk"),
        "{header}"
    );
    assert!(!text.contains('\u{1b}'));
    let mut st = s.status.clone().unwrap();
    st.watching.clear();
    update(&mut s, Msg::StatusLoaded(Ok(st)));
    assert!(!screen(&s, 160, 45).contains("also watching"));
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
    update(&mut s, Msg::HistoryLoaded(Ok(entries)));
    let text = screen(&s, 160, 45);
    assert!(text.contains("Audit log · 2 entries"));
    assert!(text.contains("v1.7.3 → v1.8.0"));
    assert!(text.contains("when (UTC)"), "times say their zone");
    insta::assert_snapshot!(text);
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
