//! The detail view: everything known about an environment (its state, the
//! full verdict of its monitoring window, its links, recent notices) or
//! about one audit record, unabridged and wrapped. Times carry their zone.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::domain::Decision;
use crate::monitor::VerdictKind;
use crate::tui::format;
use crate::tui::state::{Detail, State};

/// Width of the label column.
const LABEL: usize = 12;

/// `label  value` lines, the value wrapped under itself.
fn rows(width: usize, label: &str, value: String, style: Style, dim: Style) -> Vec<Line<'static>> {
    format::wrap_words(&value, width.saturating_sub(LABEL).max(10))
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let head = if i == 0 { label } else { "" };
            Line::from(vec![
                Span::styled(format!("{head:<LABEL$}"), dim),
                Span::styled(l, style),
            ])
        })
        .collect()
}

pub fn lines(state: &State, d: &Detail, width: usize) -> (String, Vec<Line<'static>>) {
    let t = &state.theme;
    let now = state.now;
    let ago = |at: chrono::DateTime<chrono::Utc>| {
        format!(
            "{} ({} ago)",
            format::timestamp(at),
            format::age((now - at).num_seconds())
        )
    };
    let mut out = Vec::new();
    match d {
        Detail::Audit(e) => {
            out.extend(rows(width, "when", ago(e.at), t.text, t.dim));
            if let Some(f) = e.finished_at {
                out.extend(rows(
                    width,
                    "finished",
                    format!(
                        "{} (took {})",
                        format::timestamp(f),
                        format::age((f - e.at).num_seconds())
                    ),
                    t.text,
                    t.dim,
                ));
            }
            out.extend(rows(width, "who", e.actor.clone(), t.text, t.dim));
            out.extend(rows(
                width,
                "action",
                e.action.as_str().into(),
                t.text,
                t.dim,
            ));
            out.extend(rows(width, "env", e.env.clone(), t.text, t.dim));
            let version = match (&e.from_version, &e.version) {
                (Some(f), Some(v)) => format!("{f} → {v}"),
                (None, Some(v)) => v.to_string(),
                _ => "–".into(),
            };
            out.extend(rows(width, "version", version, t.text, t.dim));
            out.extend(rows(
                width,
                "outcome",
                e.outcome.as_str().into(),
                t.text,
                t.dim,
            ));
            out.extend(rows(width, "record", format!("#{}", e.id), t.dim, t.dim));
            out.push(Line::raw(""));
            for l in format::wrap_words(&e.detail, width) {
                out.push(Line::styled(l, t.text));
            }
            (format!(" Audit record #{} ", e.id), out)
        }
        Detail::Env(name) => {
            let Some(env) = state.env_status(name) else {
                out.push(Line::styled(format!("{name} is not in the status"), t.dim));
                return (format!(" {name} "), out);
            };
            let version = match (&env.version, &env.version_error) {
                (Some(v), _) => v.to_string(),
                (None, Some(e)) => format!("unknown: {e}"),
                (None, None) => "unknown".into(),
            };
            out.extend(rows(width, "version", version, t.title, t.dim));
            out.extend(rows(
                width,
                "health",
                format!(
                    "{}: {}",
                    super::envs::health_word(env.health),
                    env.health_detail
                ),
                t.text,
                t.dim,
            ));
            out.extend(rows(
                width,
                "",
                format!("checked {}", ago(env.checked_at)),
                t.dim,
                t.dim,
            ));
            let (st, style) = super::envs::state_line(state, env);
            out.extend(rows(width, "state", st, style, t.dim));
            if let Some(u) = &env.unsettled {
                out.extend(rows(width, "outcome", u.clone(), t.warn, t.dim));
            }
            if let Some(c) = super::envs::unjudged_canary(env, true) {
                out.extend(rows(width, "canary", c, t.warn, t.dim));
            }
            if let Some(s) = env.schema_ahead.clone() {
                out.extend(rows(width, "schema", s, t.warn, t.dim));
            }
            if let Some(d) = state
                .env_ui(&env.name)
                .and_then(|u| u.deploy.as_ref())
                .filter(|d| d.finished.is_none())
                && let Some(line) = d.backend_line(state.now)
            {
                let style = if d.waiting().is_some() {
                    t.warn
                } else {
                    t.busy
                };
                out.extend(rows(width, "", line, style, t.dim));
                if let Some(w) = d.waiting() {
                    let how = if w.can_answer {
                        "a approves · x rejects (with a note, sent to the CI/CD system)"
                    } else {
                        "this token may not answer it: a required reviewer must"
                    };
                    out.extend(rows(width, "", how.to_string(), t.warn, t.dim));
                }
                if let Some(url) = d.backend.as_ref().and_then(|(p, _)| p.url.clone()) {
                    out.extend(rows(width, "", url, t.link, t.dim));
                }
            }
            out.extend(rows(
                width,
                "rollback",
                {
                    let plan = &env.revert.rollback_plan;
                    let now = plan.live_slot_unknown
                        || (plan.target.is_some() && !plan.after_next_deploy);
                    let key = if now { "r: " } else { "" };
                    let strategy = match env.revert.strategy.as_str() {
                        "redeploy" => String::new(),
                        s => format!("{s} · "),
                    };
                    format!("{strategy}{key}{}", plan.line())
                },
                t.text,
                t.dim,
            ));
            if let Some(slots) = &env.revert.slots {
                let each: Vec<String> = slots
                    .versions
                    .iter()
                    .map(|(slot, v)| {
                        let runs = v.as_ref().map(|v| v.to_string());
                        let live = if slots.live.as_deref() == Some(slot.as_str()) {
                            " (live)"
                        } else {
                            ""
                        };
                        format!("{slot} {}{live}", runs.as_deref().unwrap_or("?"))
                    })
                    .collect();
                let mut line = each.join(" · ");
                if let Some(e) = &slots.error {
                    line.push_str(&format!(" — {e}"));
                }
                out.extend(rows(width, "slots", line, t.text, t.dim));
            }
            // The canary this console saw judged: where it stands, and the
            // judge's whole verdict (the panel may have cut it).
            if let Some(c) = state.env_ui(&env.name).and_then(|u| u.canary.as_ref()) {
                let style = match c.verdict.kind {
                    crate::monitor::VerdictKind::Regression => t.error,
                    _ => t.text,
                };
                out.extend(rows(
                    width,
                    "canary",
                    format!(
                        "{} at {}% (step {}/{}): {}",
                        c.version, c.weight, c.step, c.steps, c.verdict.reason
                    ),
                    style,
                    t.dim,
                ));
            }
            if let Some(a) = &env.approval {
                let word = match a.decision {
                    Decision::Go => "Go",
                    Decision::NoGo => "No-Go",
                };
                let note = a
                    .note
                    .as_ref()
                    .map(|n| format!(": \"{n}\""))
                    .unwrap_or_default();
                out.extend(rows(
                    width,
                    "approval",
                    format!(
                        "{word} for {} by {} at {}{note}",
                        a.version,
                        a.actor,
                        ago(a.at)
                    ),
                    t.text,
                    t.dim,
                ));
            }
            if let Some(dep) = &env.last_deploy {
                let from = dep
                    .from_version
                    .as_ref()
                    .map(|v| format!("{v} → "))
                    .unwrap_or_default();
                out.extend(rows(
                    width,
                    "deployed",
                    format!(
                        "{from}{} by {} ({}) at {}",
                        dep.version,
                        dep.actor,
                        dep.kind,
                        ago(dep.at)
                    ),
                    t.text,
                    t.dim,
                ));
                if let Some(url) = &env.deploy_url {
                    out.extend(rows(width, "", url.clone(), t.link, t.dim));
                }
            }
            let m = &env.metrics;
            let v = |x: Option<f64>, f: fn(f64) -> String| x.map(f).unwrap_or_else(|| "–".into());
            let mut metrics = format!(
                "errors {} · p50 {} · p95 {} · p99 {} · {} req/s",
                v(m.error_rate, format::percent),
                v(m.p50_ms, format::ms),
                v(m.p95_ms, format::ms),
                v(m.p99_ms, format::ms),
                m.requests_per_s
                    .map(|r| format!("{r:.1}"))
                    .unwrap_or_else(|| "–".into()),
            );
            if let Some(at) = m.as_of {
                metrics.push_str(&format!(" · as of {}", ago(at)));
            }
            out.extend(rows(width, "metrics", metrics, t.text, t.dim));
            if let Some(e) = &env.metrics_error {
                out.extend(rows(width, "", format!("✗ {e}"), t.error, t.dim));
            } else if let Some(note) = &env.metrics_note {
                out.extend(rows(
                    width,
                    "",
                    format!("no data yet: {note}"),
                    t.dim,
                    t.dim,
                ));
            }
            match (&env.promotion, &env.promotion_error) {
                (Some(p), _) => {
                    let head = match p.refusal() {
                        Some(g) => format!("{} — blocked by {}", p.version, g.name),
                        None => format!("{} — can go", p.version),
                    };
                    out.extend(rows(width, "promotion", head, t.text, t.dim));
                    for g in &p.gates {
                        let mark = if g.ok { "✓" } else { "✗" };
                        out.extend(rows(
                            width,
                            "",
                            format!("{mark} {}: {}", g.name, g.detail),
                            if g.ok { t.text } else { t.warn },
                            t.dim,
                        ));
                    }
                }
                (None, Some(e)) => out.extend(rows(width, "promotion", e.clone(), t.dim, t.dim)),
                (None, None) => {}
            }
            let links = state.links(env);
            for (i, (n, url)) in links.iter().enumerate() {
                out.extend(rows(
                    width,
                    if i == 0 { "links" } else { "" },
                    format!("{n}: {url}"),
                    t.link,
                    t.dim,
                ));
            }
            if let Some(w) = state.env_ui(name).and_then(|u| u.window.as_ref()) {
                out.push(Line::raw(""));
                let how = if w.running {
                    format!("running, {} left", format::countdown(w.remaining_s(now)))
                } else {
                    "ended".into()
                };
                out.extend(rows(
                    width,
                    "window",
                    format!(
                        "{} deployed at {}; {} long, {how}",
                        w.version,
                        ago(w.deploy_at),
                        format::offset(w.window_s).trim_start_matches('+')
                    ),
                    t.text,
                    t.dim,
                ));
                let empty = Default::default();
                let ui = state.env_ui(name).unwrap_or(&empty);
                for parts in super::monitor::verdict_parts(state, Some(env), ui, None) {
                    let text: String = parts.iter().map(|p| p.text.as_str()).collect();
                    let style = parts.first().map(|p| p.style).unwrap_or(t.text);
                    out.extend(rows(width, "verdict", text, style, t.dim));
                }
                let mut label = "baseline";
                if !w.baseline_note.is_empty() {
                    let note = w
                        .baseline_note
                        .strip_prefix("baseline: ")
                        .unwrap_or(&w.baseline_note);
                    out.extend(rows(width, label, note.to_string(), t.text, t.dim));
                    label = "";
                }
                if let Some(b) = w.summary.error_rate {
                    let limit = b
                        .threshold
                        .map(|x| format!(", limit {}", format::percent(x)))
                        .unwrap_or_default();
                    out.extend(rows(
                        width,
                        label,
                        format!(
                            "error rate {} (band {}–{}{limit})",
                            format::percent(b.center),
                            format::percent(b.low),
                            format::percent(b.high)
                        ),
                        t.text,
                        t.dim,
                    ));
                }
                for (n, b) in [
                    ("p50", w.summary.p50_ms),
                    ("p95", w.summary.p95_ms),
                    ("p99", w.summary.p99_ms),
                ] {
                    if let Some(b) = b {
                        let limit = b
                            .threshold
                            .map(|x| format!(", limit {}", format::ms(x)))
                            .unwrap_or_default();
                        out.extend(rows(
                            width,
                            "",
                            format!(
                                "{n} {} (band {}–{}{limit})",
                                format::ms(b.center),
                                format::ms(b.low),
                                format::ms(b.high)
                            ),
                            t.text,
                            t.dim,
                        ));
                    }
                }
                if w.verdict
                    .as_ref()
                    .is_some_and(|v| v.kind == VerdictKind::Regression)
                    && let Some(r) = w.rollback_t
                {
                    {
                        out.extend(rows(
                            width,
                            "rollback",
                            format!("began at {}", format::offset(r)),
                            t.warn,
                            t.dim,
                        ));
                    }
                }
            }
            if !state.notices.is_empty() {
                out.push(Line::raw(""));
                out.push(Line::styled("Recent notices (times in UTC)", t.title));
                for n in state.notices.iter().take(5) {
                    out.extend(rows(
                        width,
                        &n.at.format("%H:%M:%S").to_string(),
                        n.text.clone(),
                        t.text,
                        t.dim,
                    ));
                }
            }
            let tag = if env.production { " · PRODUCTION" } else { "" };
            (format!(" {name}{tag} "), out)
        }
    }
}

pub fn draw(state: &State, d: &Detail, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let width = area.width.saturating_sub(4).min(110);
    let inner = width.saturating_sub(2).max(1) as usize;
    let (title, lines) = lines(state, d, inner);
    let needed: u16 = lines
        .iter()
        .map(|l| l.width().div_ceil(inner).max(1) as u16)
        .sum::<u16>()
        + 2;
    let rect = super::centered(area, width, needed.min(area.height.saturating_sub(2)));
    let more = needed > rect.height;
    let mut block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.dialog_border)
        .title(Line::styled(title, t.title));
    let hint = if more {
        " ↑↓ scroll · Esc closes "
    } else {
        " Esc closes "
    };
    block = block.title_bottom(Line::styled(hint, t.dim).right_aligned());
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((state.help_scroll as u16, 0))
            .block(block),
        rect,
    );
}
