//! Builders shared by the TUI tests: a fixed clock, the demo-like fleet,
//! statuses, samples and verdicts, and consoles already driven to a stage.

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
        warm_up: None,
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
        metrics_note: None,
        lock_lost: None,
        approval: None,
        last_deploy: None,
        deploy_url: None,
        go_refusal: None,
        promotion: None,
        promotion_error: None,
        unsettled: None,
        canary: None,
        release: None,
        rollback_schema: None,
        schema_ahead: None,
        freeze: None,
        revert: Default::default(),
        last_window: None,
    }
}

fn deploy(env: &str, to: &str, from: &str, who: &str, at: DateTime<Utc>) -> DeployRecord {
    DeployRecord {
        seq: None,
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
        seq: None,
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
        pending_unknown: None,
        store_error: None,
        store_unreachable_since: None,
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
        seq: None,
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
        seq: None,
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

/// The screen `view::draw` makes of `s` at `w`×`h`, a line per row with
/// its trailing blanks trimmed.
pub fn screen(s: &State, w: u16, h: u16) -> String {
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    term.draw(|f| {
        crate::tui::view::draw(s, f);
    })
    .unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Change production in the console's snapshot, as a status read would.
pub fn with_production(s: &mut State, f: impl FnOnce(&mut crate::engine::EnvStatus)) {
    let mut st = s.status.clone().unwrap();
    let prod = st
        .environments
        .iter_mut()
        .find(|e| e.name == "production")
        .unwrap();
    f(prod);
    // What the engine derives from the facts the test set.
    prod.schema_ahead = crate::engine::schema_ahead(prod);
    crate::tui::update(s, crate::tui::msg::Msg::StatusLoaded(Ok(st)));
}
