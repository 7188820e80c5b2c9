//! The environment columns, left to right in pipeline order. The selected
//! column has a thick border and a reversed title; production has a double
//! border and a PRODUCTION tag, in every theme. When the columns are too
//! narrow for their row labels, the labels stand once in a gutter on the
//! left. An environment's links sit in its bottom border.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Padding, Paragraph, Wrap};

use super::LinkSpot;
use crate::domain::health::WarmUpReason;
use crate::domain::strategy::RevertAction;
use crate::domain::{ActionKind, Decision, EnvState, Health, Outcome};
use crate::engine::EnvStatus;
use crate::tui::format::{self, Part};
use crate::tui::msg::TaskKind;
use crate::tui::state::{PanelState, State};
use crate::tui::theme::Theme;

/// The rows of a column, in order; their labels.
const LABELS: [&str; 6] = [
    "version", "health", "state", "approval", "deployed", "metrics",
];
/// Width of a row label (and of the gutter holding them).
const LABEL_W: u16 = 9;
/// Narrowest legible column.
const MIN_COL: u16 = 16;
/// Below this inner width the row labels move to the gutter.
const LABELS_FROM: u16 = 30;

/// Rows the panel takes in a terminal `height` rows high: the six rows in
/// a border, and two more for a reason when there is room.
pub fn height(height: u16) -> u16 {
    if height >= 30 { 10 } else { 8 }
}

/// Whether the row labels stand in a gutter rather than in each column.
fn gutter(state: &State, area: Rect) -> bool {
    let n = state.environments().len().max(1) as u16;
    let col = area.width.saturating_sub(n - 1) / n;
    col.saturating_sub(4) < LABELS_FROM
}

/// Each shown environment's index and rectangle.
pub fn columns(state: &State, area: Rect) -> Vec<(usize, Rect)> {
    let envs = state.environments();
    if envs.is_empty() {
        return Vec::new();
    }
    let area = if gutter(state, area) {
        Rect {
            x: area.x + LABEL_W,
            width: area.width.saturating_sub(LABEL_W),
            ..area
        }
    } else {
        area
    };
    // How many columns fit; scroll so the selected one is visible.
    let fit = ((area.width + 1) / (MIN_COL + 1)).max(1) as usize;
    let shown = envs.len().min(fit);
    let first = state
        .selected
        .saturating_sub(shown / 2)
        .min(envs.len() - shown);
    let mut constraints = Vec::new();
    for i in 0..shown {
        if i > 0 {
            constraints.push(Constraint::Length(1));
        }
        constraints.push(Constraint::Fill(1));
    }
    let cells = Layout::horizontal(constraints).split(area);
    (first..first + shown)
        .map(|i| (i, cells[(i - first) * 2]))
        .collect()
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) -> Vec<LinkSpot> {
    let t = &state.theme;
    let envs = state.environments();
    if envs.is_empty() {
        let (text, style) = match state.status_panel() {
            PanelState::Error { reason, .. } => (format!("status failed: {reason}"), t.error),
            _ => ("loading environments…".to_string(), t.busy),
        };
        let border = if style == t.error { t.error } else { t.border };
        frame.render_widget(
            Paragraph::new(text)
                .style(style)
                .wrap(Wrap { trim: true })
                .block(
                    Block::bordered()
                        .border_style(border)
                        .title(" Environments "),
                ),
            area,
        );
        return Vec::new();
    }
    let in_gutter = gutter(state, area);
    if in_gutter {
        let lines: Vec<Line> = LABELS.iter().map(|l| Line::styled(*l, t.dim)).collect();
        let g = Rect {
            y: area.y + 1,
            width: LABEL_W.min(area.width),
            height: area.height.saturating_sub(2),
            ..area
        };
        frame.render_widget(Paragraph::new(lines), g);
    }
    let mut links = Vec::new();
    let cols = columns(state, area);
    // Environments scrolled out of sight are counted where the labels
    // stand: nothing else on screen says there are more than the columns.
    if in_gutter && let (Some((first, _)), Some((last, _))) = (cols.first(), cols.last()) {
        let right = envs.len() - 1 - last;
        for (n, text, y) in [
            (*first, format!("◂ {first} more"), area.y),
            (
                right,
                format!("▸ {right} more"),
                area.y + area.height.saturating_sub(1),
            ),
        ] {
            if n > 0 {
                let r = Rect::new(area.x, y, LABEL_W.min(area.width), 1);
                frame.render_widget(Paragraph::new(text).style(t.warn), r);
            }
        }
    }
    for (k, (i, rect)) in cols.iter().enumerate() {
        if k > 0 {
            let arrow = Rect::new(rect.x - 1, rect.y + rect.height / 2, 1, 1);
            frame.render_widget(Paragraph::new("→").style(t.dim), arrow);
        }
        let env = &envs[*i];
        links.extend(column(
            state,
            env,
            *i == state.selected,
            !in_gutter,
            frame,
            *rect,
        ));
    }
    links
}

fn column(
    state: &State,
    env: &EnvStatus,
    selected: bool,
    labels: bool,
    frame: &mut Frame,
    area: Rect,
) -> Vec<LinkSpot> {
    let t = &state.theme;
    let broken = env.version_error.is_some();
    let border_type = match (env.production, selected) {
        (true, _) => BorderType::Double,
        (false, true) => BorderType::Thick,
        (false, false) => BorderType::Plain,
    };
    let border_style = if selected {
        t.selected_border
    } else if broken {
        t.error
    } else if env.production {
        t.production
    } else {
        t.border
    };
    let name = if selected {
        Span::styled(format!(" ▶ {} ", env.name), t.selected_title)
    } else {
        Span::styled(format!(" {} ", env.name), t.title)
    };
    let tag_fits = area.width as usize >= env.name.chars().count() + 20;
    let mut block = Block::bordered()
        .border_type(border_type)
        .border_style(border_style)
        .padding(Padding::horizontal(u16::from(labels)))
        .title(Line::from(name));
    if env.production && tag_fits {
        block = block.title(Line::from(Span::styled(" PRODUCTION ", t.production)).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let label_w = if labels { LABEL_W as usize } else { 0 };
    let w = (inner.width as usize).saturating_sub(label_w);
    let now = state.now;

    let mut version = match (&env.version, &env.version_error) {
        (Some(v), _) => vec![Part::new(v.to_string(), t.title).middle()],
        (None, Some(_)) => vec![
            Part::new("? unknown", t.error),
            Part::new(" · v: why", t.dim).prio(1),
        ],
        (None, None) => vec![Part::new("? unknown", t.dim)],
    };
    // The strategy's live state: which blue-green slot is live and what
    // the other runs; a canary with traffic and its weight.
    if let Some(slots) = &env.revert.slots {
        if let Some(live) = &slots.live {
            version.push(Part::new(format!(" · {live} live"), t.text).prio(1));
        }
        for (slot, runs) in slots
            .versions
            .iter()
            .filter(|(s, _)| slots.live.as_ref() != Some(*s))
        {
            let runs = runs.as_ref().map_or("?".to_string(), |v| v.to_string());
            version.push(Part::new(format!(" · {slot} {runs}"), t.dim).prio(3));
        }
        if slots.error.is_some() {
            version.push(Part::new(" · ✗ slots", t.error).prio(2));
        }
    }
    if let Some(c) = env.canary.as_ref().filter(|c| c.weight > 0) {
        version.push(
            Part::new(format!(" · canary {} {}%", c.version, c.weight), t.warn)
                .prio(1)
                .short(format!(" · canary {}%", c.weight)),
        );
    }
    // Database changes: what it runs came with migrations (a rollback
    // leaves the schema), or what promoting it would ship brings some.
    let incoming = env.release.as_ref().is_some_and(|r| r.migration_release)
        && env
            .promotion
            .as_ref()
            .is_some_and(|p| p.current.as_ref() != Some(&p.version));
    // Short forms that still tell the two apart: "schema" (it ran one),
    // "db→" (the next one brings one).
    if env.schema_ahead.is_some() {
        // Rolled back from a release whose migrations ran: they stay.
        version.push(Part::new(" ⚠ schema ahead", t.warn).prio(1).short(" ⚠ db↑"));
    } else if env.rollback_schema.is_some() {
        version.push(Part::new(" ⚠ db schema", t.warn).prio(1).short(" ⚠ schema"));
    } else if incoming {
        version.push(Part::new(" ⚠ db next", t.warn).prio(1).short(" ⚠ db→"));
    }

    let (dot, hstyle) = health_mark(env.health, t);
    let health_age = (now - env.checked_at).num_seconds();
    let mut health = vec![Part::new(
        format!("{dot} {}", health_word(env.health)),
        hstyle,
    )];
    // Warming up: what it waits for, calmly, instead of an alarm.
    if let Some(w) = &env.warm_up {
        let short = match w.reason {
            WarmUpReason::FirstScrape => " · first scrape".to_string(),
            WarmUpReason::Baseline { have, need } => format!(" · baseline {have}/{need}"),
        };
        health.push(
            Part::new(format!(" · {}", w.why), t.dim)
                .short(short)
                .prio(1),
        );
    }
    health.push(Part::new(format!(" · {}", format::age(health_age)), t.dim).prio(2));

    let approval = match &env.approval {
        Some(a) => {
            let (mark, word, style) = match a.decision {
                Decision::Go => ("✓", "Go", t.ok),
                Decision::NoGo => ("✗", "No-Go", t.error),
            };
            vec![
                Part::new(format!("{mark} {word}"), style),
                Part::new(format!(" {}", a.actor), t.dim).prio(2),
                Part::new(
                    format!(" · {}", format::age((now - a.at).num_seconds())),
                    t.dim,
                )
                .prio(1),
            ]
        }
        None => vec![Part::new("– none", t.dim)],
    };

    let deploy = match &env.last_deploy {
        Some(d) => vec![
            Part::new(d.actor.clone(), t.text).prio(1),
            Part::new(format!(" {}", d.kind), t.text).prio(2),
            Part::new(
                format!(" · {} ago", format::age((now - d.at).num_seconds())),
                t.text,
            ),
        ],
        None => vec![Part::new("– none recorded", t.dim).short("– none")],
    };

    let metrics = match (&env.metrics_error, &env.metrics.as_of) {
        // The row says "metrics" and every column has the same source: the
        // cell keeps what went wrong (`✗ did not answer within 5000 ms`);
        // the panel and `v` name the source. (It read `✗ metrics: metrics…`.)
        (Some(e), _) => match without_source(e) {
            Some(what) => vec![
                Part::new("✗", t.error),
                Part::new(format!(" {what}"), t.error).prio(1).cut(),
            ],
            None => vec![
                Part::new("✗ metrics", t.error),
                Part::new(format!(": {e}"), t.error).prio(1).cut(),
            ],
        },
        (None, None) => match &env.metrics_note {
            Some(note) => vec![
                Part::new("– no data yet", t.dim),
                Part::new(format!(": {note}"), t.dim).prio(1).cut(),
            ],
            None => vec![Part::new("– no data", t.dim)],
        },
        (None, Some(at)) => {
            // A figure from before the newest deploy known here describes
            // another release: never held over it.
            let deployed = env.last_deploy.as_ref().map(|d| d.at).max(
                state
                    .env_ui(&env.name)
                    .and_then(|u| u.window.as_ref())
                    .map(|w| w.deploy_at),
            );
            let held = state.env_ui(&env.name).and_then(|u| {
                u.live
                    .iter()
                    .rev()
                    .find(|p| p.error_rate.is_some())
                    .filter(|p| deployed.is_none_or(|d| p.at >= d))
                    .map(|p| (p.at, p.error_rate, p.p95_ms))
            });
            metric_parts(t, &env.metrics, *at, held, now)
        }
    };

    // The store could not be read: what lives there is unknown, never
    // "none" (no Go, no deploy, idle, nothing to roll back to).
    let down = state.store_down().is_some();
    let unknown = || vec![Part::new("? unknown: store down", t.warn).short("? store down")];
    let mut env_state = state_parts(state, env);
    let (mut approval, mut deploy) = (approval, deploy);
    if down {
        if env.state == EnvState::Idle && state.env_ui(&env.name).is_none_or(|u| u.task.is_none()) {
            env_state = unknown();
        }
        approval = unknown();
        deploy = unknown();
    }
    let rows = [version, health, env_state, approval, deploy, metrics];
    let lines: Vec<Line> = rows
        .into_iter()
        .zip(LABELS)
        .map(|(parts, label)| {
            let mut line = format::fit(parts, w);
            if labels {
                line.spans
                    .insert(0, Span::styled(format!("{label:<9}"), t.dim));
            }
            line
        })
        .collect();
    let n_rows = lines.len() as u16;
    frame.render_widget(Paragraph::new(lines), inner);

    // Below the rows, when there is room: why the version is unknown, or
    // why there is nothing to promote (the detail view has it in full).
    let below = Rect {
        y: inner.y + n_rows.min(inner.height),
        height: inner.height.saturating_sub(n_rows),
        ..inner
    };
    let width = inner.width as usize;
    let rows = below.height as usize;
    // The rollback plan first, on one line: what `r` does now, shown before
    // anyone needs it. With nothing to go back to, what `r` answers (the
    // plan for after the next deploy is in `v`).
    let p = &env.revert.rollback_plan;
    let plan_now = p.action == RevertAction::CanaryWeightZero
        || p.live_slot_unknown
        || (p.target.is_some() && !p.after_next_deploy);
    let nothing = env.rollback.as_ref().filter(|r| r.to.is_none());
    let plan = if down {
        Some(format::fit_str("r: ? unknown: store down", t.warn, width))
    } else if plan_now {
        let mut line = format!("r: {}", p.short());
        if format::width(&line) > width {
            line = format!("r: {}", p.compact());
        }
        Some(format::fit_str(&line, t.dim, width))
    } else if let Some(r) = nothing {
        // "nothing to roll back to: v1.7.3 is the last known-good version
        // production ran", or its start where too narrow.
        let full = format!("r: {}", r.detail);
        let line = if format::width(&full) <= width {
            full
        } else {
            "r: nothing to roll back to".to_string()
        };
        Some(format::fit_str(&line, t.dim, width))
    } else if p.after_next_deploy {
        Some(format::fit_str(
            "r: nothing to roll back to yet",
            t.dim,
            width,
        ))
    } else {
        None
    };
    let plan_rows = u16::from(plan.is_some() && below.height > 0);
    let rows = rows.saturating_sub(plan_rows as usize);
    // (After the plan's row: a paragraph cut here ends with its mark.)
    let words = |text: &str| {
        let mut lines = format::wrap_words(text, width);
        if lines.len() > rows {
            lines.truncate(rows);
            if let Some(last) = lines.last_mut() {
                // Cut where a word ends, marked; v shows it whole.
                *last = format::continued(last, width);
            }
        }
        lines
    };
    // While a CI/CD backend deploys: what it says it is doing.
    let deploying = state
        .env_ui(&env.name)
        .and_then(|u| u.deploy.as_ref())
        .filter(|d| d.finished.is_none());
    let backend = deploying.and_then(|d| {
        let style = if d.waiting().is_some() {
            t.warn
        } else {
            t.busy
        };
        d.backend_line(now).map(|l| (words(&l), style))
    });
    let reason = match (&env.version_error, &env.drift, &env.promotion_error) {
        _ if backend.is_some() => backend,
        // Errors often are URLs: cut by characters, not words. A source
        // named with its URL in brackets (`version source of staging
        // (http://…/version): no answer within 5s`) loses the URL here —
        // `v` shows it — so the cause fits (the URL took both rows).
        (Some(e), _, _) => {
            let text = format!("✗ {}", without_bracketed_url(e));
            let lines = if text.contains("://") {
                wrap_chars(&text, width, rows)
            } else {
                words(&text)
            };
            Some((lines, t.error))
        }
        // A deploy or rollback whose shipdeck was killed before it knew
        // the outcome (it may still be under way), or a canary left with
        // traffic nobody judges: never an idle card.
        (None, _, _) if env.unsettled.is_some() || unjudged_canary(env, false).is_some() => {
            let text = env
                .unsettled
                .clone()
                .or_else(|| unjudged_canary(env, false))
                .unwrap_or_default();
            Some((words(&format!("! {text}")), t.warn))
        }
        (None, Some(d), _) => Some((words(&format!("! {}", d.detail)), t.warn)),
        (None, None, Some(e)) => Some((words(e), t.dim)),
        (None, None, None) => None,
    };
    let mut lines: Vec<Line> = plan.into_iter().take(plan_rows as usize).collect();
    if let Some((reason, style)) = reason {
        lines.extend(
            reason
                .into_iter()
                .take(rows)
                .map(|l| Line::styled(l, style)),
        );
    }
    if !lines.is_empty() && below.height > 0 {
        frame.render_widget(Paragraph::new(lines), below);
    }

    links_row(state, env, frame, area)
}

/// A canary with traffic no shipdeck judges, as the card and the detail
/// say it: its version, weight, and why (`CanaryState::unjudged`).
/// The card's two rows get what to do first; the detail says why too.
pub(super) fn unjudged_canary(env: &EnvStatus, why: bool) -> Option<String> {
    let c = env.canary.as_ref().filter(|c| c.weight > 0)?;
    let unjudged = c.unjudged.as_deref()?;
    let mut line = format!(
        "canary {} at {}%: no shipdeck judges it; r: weight → 0",
        c.version, c.weight
    );
    if why {
        line.push_str(&format!(" ({unjudged})"));
    }
    Some(line)
}

/// The environment's links, in its bottom border: whole names or none.
fn links_row(state: &State, env: &EnvStatus, frame: &mut Frame, area: Rect) -> Vec<LinkSpot> {
    let links = state.links(env);
    if links.is_empty() || area.height < 2 || area.width < 6 {
        return Vec::new();
    }
    let y = area.bottom() - 1;
    let mut x = area.x + 2;
    let end = area.right() - 2;
    let mut spots = Vec::new();
    for (name, url) in links {
        let w = format::width(&name) as u16;
        if x + w + 2 > end {
            break;
        }
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {name} "), state.theme.link)),
            Rect::new(x, y, w + 2, 1),
        );
        spots.push(LinkSpot {
            x: x + 1,
            y,
            width: w,
            url,
        });
        x += w + 3;
    }
    spots
}

/// Cut `text` into at most `rows` lines of `width` characters (URLs and
/// paths have no good word breaks); the last line ends with `…` when cut.
fn wrap_chars(text: &str, width: usize, rows: usize) -> Vec<String> {
    if width == 0 || rows == 0 {
        return Vec::new();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
    if out.len() > rows {
        out.truncate(rows);
        if let Some(last) = out.last_mut() {
            *last = format::continued(last, width);
        }
    }
    out
}

fn health_mark(h: Health, t: &Theme) -> (&'static str, Style) {
    match h {
        Health::Healthy => ("●", t.ok),
        Health::Degraded => ("▲", t.warn),
        Health::Down => ("✗", t.error),
        Health::WarmingUp => ("◌", t.dim),
        Health::Unknown => ("?", t.dim),
    }
}

/// How the console says a health: a warm-up reads "checking", not as an alarm.
pub(crate) fn health_word(h: Health) -> &'static str {
    match h {
        Health::WarmingUp => "checking",
        h => h.as_str(),
    }
}

/// Who is deploying or rolling back `env` outside this console, and what:
/// the newest started deploy in the audit log.
fn foreign_action(state: &State, env: &EnvStatus) -> Option<(String, String, bool)> {
    let since = env.state_since?;
    state
        .history
        .iter()
        .flatten()
        .filter(|e| e.env == env.name && e.outcome == Outcome::Started)
        .filter(|e| matches!(e.action, ActionKind::Promote | ActionKind::Rollback))
        .filter(|e| (e.at - since).num_seconds().abs() <= 60)
        .max_by_key(|e| e.at)
        .map(|e| {
            let v = e
                .version
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default();
            (v, e.actor.clone(), e.action == ActionKind::Rollback)
        })
}

/// The metrics row. A step without requests has no error rate: rather than
/// blink between a figure and `–`, the last known figures are held with
/// their age (`err 0.00% · 20s ago`), or, when none is known yet, it says
/// `no requests` calmly. `held` is the newest point that had an error rate:
/// when, its error rate and its p95.
pub(crate) fn metric_parts(
    t: &Theme,
    m: &crate::backends::metrics::MetricsSnapshot,
    at: chrono::DateTime<chrono::Utc>,
    held: Option<(chrono::DateTime<chrono::Utc>, Option<f64>, Option<f64>)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Part> {
    if let Some(err) = m.error_rate {
        let p95 = m.p95_ms.map(format::ms).unwrap_or_else(|| "–".into());
        return vec![
            Part::new(format!("err {}", format::percent(err)), t.text),
            Part::new(format!(" p95 {p95}"), t.text).prio(1),
            Part::new(
                format!(" · {}", format::age((now - at).num_seconds())),
                t.dim,
            )
            .prio(2),
        ];
    }
    match held {
        Some((when, Some(err), p95)) if when < at => {
            let age = format::age((now - when).num_seconds());
            let mut parts = vec![
                Part::new(format!("err {}", format::percent(err)), t.dim),
                Part::new(format!(" · {age} ago"), t.dim)
                    .short(format!(" · {age}"))
                    .prio(1),
            ];
            if let Some(p95) = p95 {
                parts.insert(
                    1,
                    Part::new(format!(" p95 {}", format::ms(p95)), t.dim).prio(2),
                );
            }
            parts
        }
        _ => vec![
            Part::new("no requests", t.dim),
            Part::new(
                format!(" · {}", format::age((now - at).num_seconds())),
                t.dim,
            )
            .prio(2),
        ],
    }
}

/// The state of `env`, as parts to fit: what the console sees happening
/// (from the engine's events) first, else the status snapshot's state.
pub fn state_parts(state: &State, env: &EnvStatus) -> Vec<Part> {
    let mut parts = action_parts(state, env);
    if env.lock_lost.is_some() {
        // This process's action in flight lost its deploy lock: said in
        // full by the notice, and here while the action runs.
        parts.push(Part::new(" · LOCK LOST", state.theme.error));
    }
    parts
}

fn action_parts(state: &State, env: &EnvStatus) -> Vec<Part> {
    let t = &state.theme;
    let now = state.now;
    let ui = state.env_ui(&env.name);
    if let Some(c) = ui
        .and_then(|u| u.canary.as_ref())
        .filter(|_| state.canary_running(&env.name))
    {
        let left = c.left_at(now);
        let style = if c.verdict.kind == crate::monitor::VerdictKind::Regression {
            t.error
        } else {
            t.busy
        };
        return vec![
            Part::new(format!("canary {}%", c.weight), style).short(format!("{}%", c.weight)),
            Part::new(format!(" · step {}/{}", c.step, c.steps), style).prio(1),
            Part::new(format!(" · {} left", format::countdown(left)), style).prio(2),
        ];
    }
    if let Some(d) = ui
        .and_then(|u| u.deploy.as_ref())
        .filter(|d| d.finished.is_none())
    {
        let elapsed = d.elapsed_s.max((now - d.started).num_seconds() as f64);
        let secs = format::age(elapsed as i64);
        return if d.rollback {
            vec![
                Part::new("rolling back", t.warn).short("↩"),
                Part::new(format!(" → {}", d.version), t.warn).middle(),
                Part::new(format!(" · {secs}"), t.warn).prio(1),
            ]
        } else {
            vec![
                Part::new("deploying", t.busy).short("→"),
                Part::new(format!(" {}", d.version), t.busy).middle(),
                Part::new(format!(" · {secs}"), t.busy).prio(1),
            ]
        };
    }
    if state.alarm.as_ref().is_some_and(|a| a.env == env.name) {
        return vec![
            Part::new("REGRESSION", t.error),
            Part::new(" · r rolls back", t.error).prio(1),
        ];
    }
    if let Some(w) = ui.and_then(|u| u.window.as_ref()).filter(|w| w.running) {
        return vec![
            Part::new("monitoring", t.busy).short("watch"),
            Part::new(
                format!(" · {}", format::countdown(w.remaining_s(now))),
                t.busy,
            ),
            Part::new(" left", t.busy).prio(1),
        ];
    }
    if let Some(task) = ui.and_then(|u| u.task.as_ref()) {
        let what = match task.kind {
            TaskKind::Promote => "promoting…",
            TaskKind::Rollback => "rolling back…",
            TaskKind::Approve | TaskKind::Reject => "recording decision…",
            TaskKind::Watch => "starting monitoring…",
            TaskKind::Review => "answering the review…",
        };
        return vec![Part::new(what, t.busy)];
    }
    let since = env
        .state_since
        .map(|s| format::age((now - s).num_seconds()));
    let age = |suffix: &str, style| {
        since
            .as_ref()
            .map(|s| Part::new(format!(" · {s}{suffix}"), style).prio(1))
    };
    let mut parts = match env.state {
        EnvState::Idle => vec![Part::new("idle", t.text)],
        EnvState::Deploying | EnvState::RollingBack => {
            // Someone else acts: say who and what. A lock held elsewhere
            // reads "deploying" in the snapshot; the audit log's started
            // record tells a rollback apart.
            let foreign = foreign_action(state, env);
            let rollback =
                env.state == EnvState::RollingBack || foreign.as_ref().is_some_and(|f| f.2);
            let (word, short, style) = if rollback {
                ("rolling back", "↩", t.warn)
            } else {
                ("deploying", "→", t.busy)
            };
            // Shortened in this order: who (its name without the host),
            // the word; then the age goes, then who.
            let mut p = vec![Part::new(word, style).short(short).prio(1)];
            if let Some((version, actor, _)) = foreign {
                p.push(Part::new(format!(" {version}"), style).middle());
                let name = actor.split('@').next().unwrap_or(&actor).to_string();
                p.push(
                    Part::new(format!(" · {actor}"), style)
                        .prio(1)
                        .short(format!(" · {name}")),
                );
            }
            p.extend(age("", style));
            return p;
        }
        EnvState::Monitoring => match env.watcher.as_deref() {
            // Another console's window: who watches it, rather than an
            // age that a narrow column drops (its own shows the time left).
            Some(w) => {
                let actor = w.split(" (").next().unwrap_or(w).to_string();
                let name = actor.split('@').next().unwrap_or(&actor).to_string();
                let mut p = vec![
                    Part::new("monitoring", t.busy).short("watch").prio(1),
                    Part::new(format!(" · {actor}"), t.busy)
                        .prio(1)
                        .short(format!(" · {name}")),
                ];
                p.extend(age("", t.busy).map(|a| a.prio(2)));
                return p;
            }
            None => vec![Part::new("monitoring", t.busy)],
        },
        EnvState::Regression => vec![Part::new("REGRESSION", t.error)],
        EnvState::RolledBack => vec![Part::new("rolled back", t.warn)],
        EnvState::Failed => vec![Part::new("failed", t.error)],
        EnvState::Unsettled => vec![Part::new("no outcome", t.warn).short("?")],
    };
    let suffix = if env.state == EnvState::RolledBack {
        " ago"
    } else {
        ""
    };
    let style = parts[0].style;
    parts.extend(age(suffix, style));
    parts
}

/// The state of `env` in words, unabridged.
pub fn state_line(state: &State, env: &EnvStatus) -> (String, Style) {
    let parts = state_parts(state, env);
    let style = parts.first().map(|p| p.style).unwrap_or_default();
    (parts.into_iter().map(|p| p.text).collect(), style)
}

/// A metrics source's error without the source: `metrics source <url> did
/// not answer within 5000 ms` → `did not answer within 5000 ms`; `None` for
/// any other error.
fn without_source(e: &str) -> Option<&str> {
    let rest = e.strip_prefix("metrics source ")?;
    let (_url, what) = rest.split_once(' ')?;
    let what = what.trim_start_matches(": ").trim();
    (!what.is_empty()).then_some(what)
}

/// `e` without a bracketed URL: `version source of staging
/// (http://127.0.0.1:7878/envs/staging/version): no answer within 5s` →
/// `version source of staging: no answer within 5s`.
fn without_bracketed_url(e: &str) -> std::borrow::Cow<'_, str> {
    let start = e.find(" (http://").or_else(|| e.find(" (https://"));
    let Some(start) = start else {
        return e.into();
    };
    // The URL runs to the next space (it holds none); its bracket closes at
    // the last `)` before it — a URL may hold brackets of its own.
    let rest = &e[start..];
    let token = rest[1..]
        .find(char::is_whitespace)
        .map_or(rest, |end| &rest[..end + 1]);
    match token.rfind(')') {
        Some(len) => format!("{}{}", &e[..start], &e[start + len + 1..]).into(),
        None => e.into(),
    }
}

#[cfg(test)]
mod bracketed_url_tests {
    use super::without_bracketed_url;

    #[test]
    fn a_bracketed_url_goes_whole_even_with_brackets_of_its_own() {
        assert_eq!(
            without_bracketed_url("version source of staging (http://h:1/v) did not answer"),
            "version source of staging did not answer"
        );
        assert_eq!(
            without_bracketed_url(
                "version source of staging (http://h:1/wiki/A_(b)/v): did not answer"
            ),
            "version source of staging: did not answer"
        );
        assert_eq!(without_bracketed_url("no url here (x)"), "no url here (x)");
        assert_eq!(
            without_bracketed_url("cut (http://h:1/v"),
            "cut (http://h:1/v"
        );
    }
}
