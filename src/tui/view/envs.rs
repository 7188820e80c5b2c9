//! The environment columns, left to right in pipeline order. The selected
//! column has a thick border and a reversed title; production has a double
//! border and a PRODUCTION tag, in every theme.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Padding, Paragraph, Wrap};

use crate::domain::{Decision, EnvState, Health};
use crate::engine::EnvStatus;
use crate::tui::format;
use crate::tui::msg::TaskKind;
use crate::tui::state::{PanelState, State};
use crate::tui::theme::Theme;

/// Rows the panel wants: six rows and two for a reason, inside a border.
pub const HEIGHT: u16 = 10;
/// Narrowest legible column.
const MIN_COL: u16 = 16;
/// Below this inner width the row labels are dropped.
const LABELS_FROM: u16 = 30;

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
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
        return;
    }

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
    for (i, env) in envs.iter().enumerate().skip(first).take(shown) {
        let slot = (i - first) * 2;
        if slot > 0 {
            let gap = cells[slot - 1];
            let arrow = Rect::new(gap.x, gap.y + gap.height / 2, 1, 1);
            frame.render_widget(Paragraph::new("→").style(t.dim), arrow);
        }
        column(state, env, i == state.selected, frame, cells[slot]);
    }
}

fn column(state: &State, env: &EnvStatus, selected: bool, frame: &mut Frame, area: Rect) {
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
        .padding(Padding::horizontal(1))
        .title(Line::from(name));
    if env.production && tag_fits {
        block = block.title(Line::from(Span::styled(" PRODUCTION ", t.production)).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let labels = inner.width >= LABELS_FROM;
    let w = inner.width as usize;
    let row = |label: &str, spans: Vec<Span<'static>>| -> Line<'static> {
        let mut out = Vec::new();
        if labels {
            out.push(Span::styled(format!("{label:<9}"), t.dim));
        }
        out.extend(spans);
        Line::from(out)
    };
    let now = state.now;

    let version = match (&env.version, &env.version_error) {
        (Some(v), _) => Span::styled(v.to_string(), t.title),
        (None, Some(_)) => Span::styled("? unknown", t.error),
        (None, None) => Span::styled("? unknown", t.dim),
    };

    let (dot, hstyle) = health_mark(env.health, t);
    let health_age = (now - env.checked_at).num_seconds();
    let health = vec![
        Span::styled(format!("{dot} {}", env.health.as_str()), hstyle),
        Span::styled(format!(" · {}", format::age(health_age)), t.dim),
    ];

    let (state_text, state_style) = state_line(state, env);

    let approval = match &env.approval {
        Some(a) => {
            let (mark, word, style) = match a.decision {
                Decision::Go => ("✓", "Go", t.ok),
                Decision::NoGo => ("✗", "No-Go", t.error),
            };
            vec![
                Span::styled(format!("{mark} {word}"), style),
                Span::styled(
                    format!(" {} · {}", a.actor, format::age((now - a.at).num_seconds())),
                    t.dim,
                ),
            ]
        }
        None => vec![Span::styled("– none", t.dim)],
    };

    let deploy = match &env.last_deploy {
        Some(d) => vec![Span::styled(
            format!(
                "{} {} · {} ago",
                d.actor,
                d.kind,
                format::age((now - d.at).num_seconds())
            ),
            t.text,
        )],
        None => vec![Span::styled("– none recorded", t.dim)],
    };

    let metrics = match (&env.metrics_error, &env.metrics.as_of) {
        (Some(e), _) => vec![Span::styled(format!("✗ {e}"), t.error)],
        (None, None) => vec![Span::styled("– no data", t.dim)],
        (None, Some(at)) => {
            let m = &env.metrics;
            let err = m
                .error_rate
                .map(format::percent)
                .unwrap_or_else(|| "–".into());
            let p95 = m.p95_ms.map(format::ms).unwrap_or_else(|| "–".into());
            vec![
                Span::styled(format!("err {err} p95 {p95}"), t.text),
                Span::styled(
                    format!(" · {}", format::age((now - *at).num_seconds())),
                    t.dim,
                ),
            ]
        }
    };

    let lines = vec![
        row("version", vec![version]),
        row("health", health),
        row("state", vec![Span::styled(state_text, state_style)]),
        row("approval", approval),
        row("deployed", deploy),
        row("metrics", metrics),
    ];
    let rows = lines.len() as u16;
    let lines: Vec<Line> = lines.into_iter().map(|l| clip_line(l, w)).collect();
    frame.render_widget(Paragraph::new(lines), inner);

    // Below the rows, wrapped over what is left: why the version is
    // unknown, or why there is nothing to promote.
    let below = Rect {
        y: inner.y + rows.min(inner.height),
        height: inner.height.saturating_sub(rows),
        ..inner
    };
    if let Some(e) = &env.version_error {
        // Errors often are URLs: cut by characters, not words.
        let lines: Vec<Line> = wrap_chars(&format!("✗ {e}"), w, below.height as usize)
            .into_iter()
            .map(|l| Line::styled(l, t.error))
            .collect();
        frame.render_widget(Paragraph::new(lines), below);
    } else if let Some(d) = &env.drift {
        let line = Line::styled(format!("! {}", d.detail), t.warn);
        frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: true }), below);
    } else if let Some(e) = &env.promotion_error {
        frame.render_widget(
            Paragraph::new(Line::styled(e.clone(), t.dim)).wrap(Wrap { trim: true }),
            below,
        );
    }
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
            *last = format::clip(&format!("{last}…"), width);
        }
    }
    out
}

fn health_mark(h: Health, t: &Theme) -> (&'static str, Style) {
    match h {
        Health::Healthy => ("●", t.ok),
        Health::Degraded => ("▲", t.warn),
        Health::Down => ("✗", t.error),
        Health::Unknown => ("?", t.dim),
    }
}

/// The state of `env` in words: what the console sees happening (from the
/// engine's events) first, else the status snapshot's state.
pub fn state_line(state: &State, env: &EnvStatus) -> (String, Style) {
    let t = &state.theme;
    let now = state.now;
    let ui = state.env_ui(&env.name);
    if let Some(d) = ui
        .and_then(|u| u.deploy.as_ref())
        .filter(|d| d.finished.is_none())
    {
        let elapsed = d.elapsed_s.max((now - d.started).num_seconds() as f64);
        let secs = format::age(elapsed as i64);
        return if d.rollback {
            (format!("rolling back → {} · {secs}", d.version), t.warn)
        } else {
            (format!("deploying {} · {secs}", d.version), t.busy)
        };
    }
    if state.alarm.as_ref().is_some_and(|a| a.env == env.name) {
        return ("REGRESSION · r rolls back".into(), t.error);
    }
    if let Some(w) = ui.and_then(|u| u.window.as_ref()).filter(|w| w.running) {
        return (
            format!(
                "monitoring · {} left",
                format::countdown(w.remaining_s(now))
            ),
            t.busy,
        );
    }
    if let Some(task) = ui.and_then(|u| u.task.as_ref()) {
        let what = match task.kind {
            TaskKind::Promote => "promoting…",
            TaskKind::Rollback => "rolling back…",
            TaskKind::Approve | TaskKind::Reject => "recording decision…",
            TaskKind::Watch => "starting monitoring…",
        };
        return (what.into(), t.busy);
    }
    let since = env
        .state_since
        .map(|s| format!(" · {}", format::age((now - s).num_seconds())))
        .unwrap_or_default();
    match env.state {
        EnvState::Idle => ("idle".into(), t.text),
        EnvState::Deploying => (format!("deploying{since}"), t.busy),
        EnvState::Monitoring => (format!("monitoring{since}"), t.busy),
        EnvState::Regression => (format!("REGRESSION{since}"), t.error),
        EnvState::RollingBack => (format!("rolling back{since}"), t.warn),
        EnvState::RolledBack => (format!("rolled back{since} ago"), t.warn),
        EnvState::Failed => (format!("failed{since}"), t.error),
    }
}

/// Cut a line to `w` columns, ending it with `…` when cut.
fn clip_line(line: Line<'static>, w: usize) -> Line<'static> {
    if line.width() <= w {
        return line;
    }
    let mut out = Vec::new();
    let mut left = w;
    for span in line.spans {
        let n = span.content.chars().count();
        if n < left {
            left -= n;
            out.push(span);
        } else {
            // Something after this point is cut: end with the marker.
            let mut cut: String = span.content.chars().take(left.saturating_sub(1)).collect();
            cut.push('…');
            out.push(Span::styled(cut, span.style));
            break;
        }
    }
    Line::from(out)
}
