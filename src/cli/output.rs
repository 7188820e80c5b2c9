//! Human tables and JSON documents.

use std::fmt::Write;

use serde::Serialize;

use crate::domain::{AuditEntry, PromotionPlan, Version};
use crate::engine::Status;

pub fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| {
        serde_json::json!({"error": format!("cannot encode the result: {e}")}).to_string()
    })
}

/// "1 baseline sample", "3 baseline samples".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A window's final verdict in words a human reads; never a type's name.
pub fn verdict_words(k: crate::monitor::VerdictKind) -> &'static str {
    use crate::monitor::VerdictKind;
    match k {
        VerdictKind::Collecting => "no verdict (still collecting)",
        VerdictKind::InsufficientData => "not enough data",
        VerdictKind::Healthy => "healthy",
        VerdictKind::Regression => "REGRESSION",
    }
}

/// Where a window stands after one step: nothing is called healthy
/// before the window has ended.
pub fn step_words(k: crate::monitor::VerdictKind) -> &'static str {
    use crate::monitor::VerdictKind;
    match k {
        VerdictKind::Collecting => "collecting",
        VerdictKind::InsufficientData => "not enough data",
        VerdictKind::Healthy => "no regression so far",
        VerdictKind::Regression => "REGRESSION",
    }
}

/// How a monitoring window ended, as `watch --json` prints it.
pub fn watch_json(out: &crate::engine::WatchOutcome) -> serde_json::Value {
    let v = &out.verdict;
    serde_json::json!({
        "env": out.env,
        "version": out.version,
        "deploy_at": out.deploy_at,
        "verdict": v.kind,
        "detected_at": v.detected_at,
        "metric": v.metric,
        "reason": v.reason,
        "baseline": out.baseline,
        "rolled_back": out.rolled_back,
        "rollback_error": out.rollback_error,
        "unrecorded": out.unrecorded,
        "claim_refused": out.claim_refused,
        "superseded": out.superseded,
    })
}

/// How a monitoring window ended, for humans.
pub fn watch_text(out: &crate::engine::WatchOutcome) -> String {
    let v = &out.verdict;
    let word = match out.superseded {
        Some(_) => "SUPERSEDED",
        None => verdict_words(v.kind),
    };
    let mut s = format!(
        "{} {}: {} — {}\n  {}\n",
        out.env, out.version, word, v.reason, out.baseline
    );
    if let Some(r) = &out.rolled_back {
        let _ = writeln!(
            s,
            "rolled back automatically: {} now runs {}",
            r.env, r.version
        );
    }
    if let Some(e) = &out.rollback_error {
        let _ = writeln!(s, "automatic rollback FAILED: {e}");
    }
    s
}

pub fn opt(v: &Option<Version>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `history --verify`: the chain's verdict, its head and any warnings.
pub fn verify_text(r: &crate::store::ChainReport, store: &str) -> String {
    let mut out = String::new();
    match &r.broken {
        None => {
            let _ = writeln!(
                out,
                "audit log of {store}: {} records, hash chain intact",
                r.records
            );
            if let Some(h) = &r.head {
                let _ = writeln!(
                    out,
                    "head: {h}  (keep it elsewhere to detect a rewrite of the whole log)"
                );
            }
        }
        Some(b) => {
            let _ = writeln!(out, "audit log of {store}: hash chain BROKEN at {b}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "! {w}");
    }
    out
}

/// Lay out rows in columns, the first row being the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.2}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn ms(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.0}ms")).unwrap_or_else(|| "—".into())
}

pub fn status_table(s: &Status) -> String {
    let mut out = format!(
        "{} · {} environments · checked {} by {}\n\n",
        s.project,
        s.environments.len(),
        s.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        s.actor
    );
    let mut rows = vec![
        [
            "ENV",
            "VERSION",
            "HEALTH",
            "STATE",
            "ERRORS",
            "P95",
            "REQ/S",
            "LAST DEPLOY",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in &s.environments {
        rows.push(vec![
            e.name.clone(),
            opt(&e.version),
            e.health.as_str().into(),
            e.state.as_str().into(),
            pct(e.metrics.error_rate),
            ms(e.metrics.p95_ms),
            e.metrics
                .requests_per_s
                .map(|r| format!("{r:.1}"))
                .unwrap_or_else(|| "—".into()),
            e.last_deploy
                .as_ref()
                .map(|d| {
                    format!(
                        "{} by {} at {}",
                        d.version,
                        d.actor,
                        d.at.format("%m-%d %H:%M UTC")
                    )
                })
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    out.push_str(&table(&rows));
    for e in &s.environments {
        if let Some(err) = &e.version_error {
            let _ = writeln!(out, "! {}: {err}", e.name);
        }
        if let Some(d) = &e.drift {
            let _ = writeln!(out, "! {}: {}", e.name, d.detail);
        }
        // Unknown for want of metrics is said once, by the metrics line.
        let said = (e.metrics_error.is_some() || e.metrics_note.is_some())
            && e.health == crate::domain::Health::Unknown;
        if matches!(
            e.health,
            crate::domain::Health::Degraded | crate::domain::Health::Unknown
        ) && e.reachable
            && !said
        {
            let _ = writeln!(
                out,
                "! {} is {}: {}",
                e.name,
                e.health.as_str(),
                e.health_detail
            );
        }
        if let Some(u) = &e.unsettled {
            let _ = writeln!(out, "! {}: {u}", e.name);
        }
        if let Some(c) = e.canary.as_ref().filter(|c| c.weight > 0) {
            let _ = writeln!(out, "{}", canary_line(&e.name, e.state, c));
        }
        if let Some(w) = &e.watcher {
            let _ = writeln!(out, "  {}: monitoring window watched by {w}", e.name);
        } else if e.unwatched {
            let _ = writeln!(
                out,
                "! {}: its new release is in the monitoring window and nobody is watching it (shipdeck watch {})",
                e.name, e.name
            );
        }
        if let Some(err) = &e.metrics_error {
            let _ = writeln!(out, "! {} metrics: {err}", e.name);
        } else if let Some(w) = &e.warm_up {
            // Warming up is no alarm: said calmly, once.
            let _ = writeln!(
                out,
                "  {} health warming up: {} (reading the metrics since {} UTC)",
                e.name,
                w.why,
                w.since.format("%H:%M:%S")
            );
        } else if let Some(note) = &e.metrics_note {
            let _ = writeln!(out, "  {} metrics: no data yet: {note}", e.name);
        }
        if let Some(f) = &e.freeze {
            let _ = writeln!(out, "! {} is {}", e.name, f.describe());
        }
        if let Some(line) = rollback_plan_line(e) {
            let _ = writeln!(out, "  {} rollback: {line}", e.name);
        }
        if let (Some(p), Some(r)) = (&e.promotion, &e.release)
            && r.migration_release
            && p.current.as_ref() != Some(&p.version)
        {
            let _ = writeln!(
                out,
                "! {}: promoting {} brings database migrations ({})",
                e.name,
                p.version,
                r.migrations.join(", ")
            );
        }
        if let (Some(p), Some(r)) = (&e.promotion, &e.release)
            && p.current.as_ref() != Some(&p.version)
            && let Some((line, _)) = r.drops_line(&e.name, p.version.as_str())
        {
            let _ = writeln!(out, "{line}");
        }
        if let Some(n) = &e.rollback_schema {
            let _ = writeln!(out, "! {} rollback: {}", e.name, n.warning);
        }
    }
    if let Some(err) = &s.store_error {
        let _ = writeln!(out, "! store: {err}");
    }
    if let Some(problem) = &s.integrity {
        let _ = writeln!(out, "! integrity: {problem}");
    }
    out.push('\n');
    match &s.pending {
        Some(p) => {
            out.push_str(&plan_text(&p.plan));
            out.push_str(&release_text(
                &p.release,
                &p.plan.to,
                p.plan.version.as_str(),
            ));
        }
        None => out.push_str(&no_pending_text(&s.environments)),
    }
    out
}

/// A canary with traffic: the table's version is the stable track's, so
/// what else serves the environment is said — as an alarm when no
/// promotion is moving it on (caught and kept, or its promotion
/// interrupted), since nobody then watches that share of the traffic.
fn canary_line(
    env: &str,
    state: crate::domain::EnvState,
    c: &crate::engine::CanaryState,
) -> String {
    let step = if c.step > 0 && c.steps > 0 {
        format!(" (step {} of {})", c.step, c.steps)
    } else {
        String::new()
    };
    if state == crate::domain::EnvState::Deploying {
        format!(
            "  {env} canary: {} takes {}% of the traffic{step}",
            c.version, c.weight
        )
    } else {
        // Why nobody judges it, when the audit log tells: its promotion's
        // shipdeck killed outright reads differently from a caught canary.
        // `promote` refuses on its `canary` gate only when the log says
        // why nobody judges it (`unjudged`); otherwise it is not claimed.
        let (why, refuses) = match c.unjudged.as_deref() {
            Some(w) => (
                format!(": no shipdeck is judging it ({w})"),
                format!(" (`shipdeck promote {env}` refuses until then)"),
            ),
            None => (String::new(), String::new()),
        };
        format!(
            "! {env} canary: {} takes {}% of the traffic{step} and no promotion is moving it on{why}; `shipdeck rollback {env}` sends it all back to the stable track{refuses}",
            c.version, c.weight
        )
    }
}

/// Every environment's rollback plan, shown before anyone needs it (SPEC
/// §2): what a rollback does now, to which version and how long it is
/// expected to take — as the console's column says it; with nothing to go
/// back to, why (and the plan for after the next deploy).
fn rollback_plan_line(e: &crate::engine::EnvStatus) -> Option<String> {
    use crate::domain::strategy::RevertAction;
    let p = &e.revert.rollback_plan;
    let now = p.action == RevertAction::CanaryWeightZero
        || p.live_slot_unknown
        || (p.target.is_some() && !p.after_next_deploy);
    let nothing = e.rollback.as_ref().filter(|r| r.to.is_none());
    if now {
        Some(p.line())
    } else if let Some(r) = nothing {
        Some(r.detail.clone())
    } else if p.after_next_deploy {
        Some(format!("nothing to roll back to yet; {}", p.line()))
    } else {
        None
    }
}

/// What `status` says when it found no promotion that ships something:
/// every stage in step — or, when what promoting a stage would ship could
/// not be told (the stage before's version or the store unreadable), that
/// it does not know, never that everything is in step (the stage closest
/// to production, as `status --json`'s `pending_unknown` names it).
fn no_pending_text(envs: &[crate::engine::EnvStatus]) -> String {
    let unknown = envs
        .iter()
        .skip(1)
        .rev()
        .filter(|e| e.promotion.is_none())
        .find_map(|e| e.promotion_error.as_ref().map(|err| (e, err)));
    match unknown {
        Some((e, err)) => format!(
            "Pending: unknown — what promoting {} would ship cannot be told: {err}\n",
            e.name
        ),
        None => "Pending: nothing — every stage runs what the stage before it runs.\n".into(),
    }
}

pub fn plan_text(p: &PromotionPlan) -> String {
    let mut out = format!(
        "Pending: {} {} → {} ({} runs {})\n",
        p.version,
        p.from.as_deref().unwrap_or("(explicit)"),
        p.to,
        p.to,
        opt(&p.current)
    );
    if !p.skips.is_empty() {
        let _ = writeln!(out, "  skips: {}", p.skips.join(", "));
    }
    for g in &p.gates {
        let mark = match (g.ok, g.severity) {
            (true, _) => "✓",
            (false, crate::domain::GateSeverity::Block) => "✗",
            (false, crate::domain::GateSeverity::Warn) => "!",
        };
        let _ = writeln!(out, "  {mark} {:<20} {}", g.name, g.detail);
    }
    let ev = &p.evidence;
    if let Some(v) = &ev.stage_verdict {
        let _ = writeln!(out, "  stage:  {}", v.reason);
    }
    for (label, c) in [("ci", &ev.ci), ("review", &ev.review)] {
        if let Some(c) = c {
            let _ = write!(
                out,
                "  {label}:{:w$}{} — {}",
                "",
                c.state.as_str(),
                c.detail,
                w = 7 - label.len()
            );
            if let Some(u) = &c.url {
                let _ = write!(out, " ({u})");
            }
            out.push('\n');
        }
    }
    out
}

/// Rolling back across migrations: the schema stays; the restore command
/// (filled in, never run by shipdeck) and the backup it restores.
pub fn schema_text(n: &crate::domain::release::SchemaNotice, env: &str) -> String {
    let mut out = format!(
        "! {}
",
        n.warning
    );
    match &n.restore {
        Some(cmd) => {
            let _ = writeln!(
                out,
                "  to restore the database too (shipdeck never runs this): {cmd}"
            );
        }
        None => {
            let _ = writeln!(out, "  no restore command configured ([release] restore)");
        }
    }
    match &n.backup {
        Some(b) => {
            let _ = writeln!(
                out,
                "  backup {} was taken at {} before the release reached {env}",
                b.id,
                b.at.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        None => {
            let _ = writeln!(out, "  no backup is recorded for this release in {env}");
        }
    }
    out
}

/// Commits shown in a human table; the rest are counted.
const TEXT_COMMITS: usize = 15;

/// What a release carries, for humans: migrations first (they need care),
/// the backup, then the commits.
pub fn release_text(r: &crate::engine::ReleaseFacts, env: &str, version: &str) -> String {
    let mut out = String::new();
    let Some(repo) = &r.repository else {
        return out;
    };
    if let Some(e) = &r.git_error {
        let _ = writeln!(out, "  commits: unknown — {e}");
        return out;
    }
    // What the environment runs and would lose comes before what it gets.
    if let Some((line, _)) = r.drops_line(env, version) {
        let _ = writeln!(out, "  {line}");
    }
    if r.migration_release {
        let _ = writeln!(
            out,
            "  MIGRATIONS: this release changes the database ({}); a code rollback leaves the schema as it is",
            r.migrations.join(", ")
        );
        if let Some(b) = &r.backup {
            let _ = writeln!(
                out,
                "  backup: {} taken {}",
                b.id,
                b.at.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    let _ = writeln!(
        out,
        "  commits ({}{}, newest first, from {repo}):",
        r.commits_total,
        if r.commits_capped {
            format!(", {} listed", r.commits.len())
        } else {
            String::new()
        }
    );
    for c in r.commits.iter().take(TEXT_COMMITS) {
        let _ = writeln!(
            out,
            "    {} {} {:<16} {}",
            c.short(),
            c.date.format("%Y-%m-%d"),
            c.author.chars().take(16).collect::<String>(),
            c.subject
        );
    }
    if r.commits_total > TEXT_COMMITS {
        let _ = writeln!(
            out,
            "    … and {} more (status --json lists up to 500)",
            r.commits_total - TEXT_COMMITS
        );
    }
    out
}

pub fn history_table(h: &[AuditEntry]) -> String {
    if h.is_empty() {
        return "No recorded actions yet.\n".into();
    }
    let mut rows = vec![
        [
            "WHEN (UTC)",
            "WHO",
            "ACTION",
            "ENV",
            "VERSION",
            "OUTCOME",
            "DETAIL",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in h {
        rows.push(vec![
            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            e.actor.clone(),
            e.action.as_str().into(),
            e.env.clone(),
            match (&e.from_version, &e.version) {
                (Some(f), Some(v)) => format!("{f} → {v}"),
                (None, Some(v)) => v.to_string(),
                _ => "—".into(),
            },
            e.outcome.as_str().into(),
            e.detail.clone(),
        ]);
    }
    table(&rows)
}

/// One line of a watched promote's baseline collection (stderr):
/// "collecting a baseline for production before deploying: 3 of 5 steps,
/// about 20 s left", and "… 5 of 5 steps, done" once it has them.
pub fn baseline_progress_text(p: &crate::engine::BaselineProgress) -> String {
    let head = format!(
        "collecting a baseline for {} before deploying: {} of {} steps",
        p.env, p.have, p.need
    );
    if p.have >= p.need {
        format!("{head}, done")
    } else {
        format!(
            "{head}, about {} s left",
            p.left.as_secs_f64().ceil() as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canary line claims `promote` refuses only when its gate does:
    /// with a reason why nobody judges the canary.
    #[test]
    fn a_canary_line_says_promote_refuses_only_when_the_gate_holds() {
        let mut c = crate::engine::CanaryState {
            version: Version::parse("v1.8.0").unwrap(),
            weight: 10,
            step: 0,
            steps: 3,
            step_ends_at: None,
            verdict: None,
            unjudged: None,
        };
        let line = canary_line("production", crate::domain::EnvState::Idle, &c);
        assert!(!line.contains("refuses"), "{line}");
        assert!(
            line.ends_with("`shipdeck rollback production` sends it all back to the stable track"),
            "{line}"
        );
        c.unjudged = Some("its promotion by ci@runner never finished".into());
        let line = canary_line("production", crate::domain::EnvState::Idle, &c);
        assert!(
            line.ends_with("(`shipdeck promote production` refuses until then)"),
            "{line}"
        );
    }

    #[test]
    fn counts_say_one_sample_and_two_samples() {
        assert_eq!(
            count(1, "baseline sample", "baseline samples"),
            "1 baseline sample"
        );
        assert_eq!(
            count(0, "baseline sample", "baseline samples"),
            "0 baseline samples"
        );
        assert_eq!(
            count(2, "baseline sample", "baseline samples"),
            "2 baseline samples"
        );
    }

    #[test]
    fn verdicts_read_as_words_not_type_names() {
        use crate::monitor::VerdictKind;
        for k in [
            VerdictKind::Collecting,
            VerdictKind::InsufficientData,
            VerdictKind::Healthy,
            VerdictKind::Regression,
        ] {
            for w in [verdict_words(k), step_words(k)] {
                assert!(
                    !w.contains("Insufficient") && !w.contains("Collecting"),
                    "{w}"
                );
                assert_ne!(w, format!("{k:?}"));
            }
        }
        // Nothing is called healthy before the window has ended.
        assert!(!step_words(VerdictKind::Healthy).contains("healthy"));
    }

    #[test]
    fn table_pads_columns() {
        let t = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long".into(), "x".into(), "y".into()],
        ]);
        assert_eq!(t, "A     BB  C\nlong  x   y\n");
    }
}
