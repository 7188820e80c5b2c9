//! The pending release of the selected environment: from → to version, the
//! stage it comes from, and its gates as a ✓/✗ checklist with the reasons.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph, Wrap};

use crate::domain::GateSeverity;
use crate::tui::state::{PanelState, State};

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let Some(env) = state.selected_env() else {
        let text = match state.status_panel() {
            PanelState::Error { reason, .. } => {
                Line::styled(format!("status failed: {reason}"), t.error)
            }
            _ => Line::styled("loading…", t.busy),
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(
                Block::bordered()
                    .border_style(t.border)
                    .title(" Pending release "),
            ),
            area,
        );
        return;
    };

    let title = Line::from(vec![
        Span::styled(" Pending release → ", t.title),
        Span::styled(
            format!("{} ", env.name),
            if env.production {
                t.production
            } else {
                t.title
            },
        ),
    ]);
    let mut lines: Vec<Line> = Vec::new();
    match &env.promotion {
        None => {
            let why = env
                .promotion_error
                .clone()
                .unwrap_or_else(|| format!("nothing to promote to {}", env.name));
            lines.push(Line::styled(why, t.dim));
        }
        Some(plan) if plan.current.as_ref() == Some(&plan.version) => {
            lines.push(Line::styled(
                format!(
                    "nothing to promote: {} already runs {}, as {} does",
                    env.name,
                    plan.version,
                    plan.from.as_deref().unwrap_or("the stage before")
                ),
                t.dim,
            ));
        }
        Some(plan) => {
            let current = plan
                .current
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            lines.push(Line::from(vec![
                Span::styled(current, t.text),
                Span::styled(" → ", t.dim),
                Span::styled(plan.version.to_string(), t.title),
            ]));
            let source = match &plan.from {
                Some(from) => format!("from {from}, what it runs now"),
                None => "explicit version (first stage)".to_string(),
            };
            lines.push(Line::styled(source, t.dim));
            if !plan.skips.is_empty() {
                lines.push(Line::styled(
                    format!("skips {}", plan.skips.join(", ")),
                    t.warn,
                ));
            }
            lines.push(Line::raw(""));
            lines.push(Line::styled("Gates", t.title));
            if plan.gates.is_empty() {
                lines.push(Line::styled("none configured", t.dim));
            }
            let name_w = plan
                .gates
                .iter()
                .map(|g| g.name.chars().count())
                .max()
                .unwrap_or(0);
            for g in &plan.gates {
                let (mark, style) = match (g.ok, g.severity) {
                    (true, _) => ("✓", t.ok),
                    (false, GateSeverity::Block) => ("✗", t.error),
                    (false, GateSeverity::Warn) => ("!", t.warn),
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{mark} {:<name_w$}  ", g.name), style),
                    Span::styled(g.detail.clone(), if g.ok { t.text } else { style }),
                ]));
            }
            lines.push(Line::raw(""));
            let verdict = match plan.refusal() {
                Some(g) => Line::styled(format!("blocked by {}", g.name), t.error),
                None if plan.warnings().next().is_some() => {
                    Line::styled("p promotes after a second confirmation", t.warn)
                }
                None => Line::styled("ready: p promotes", t.ok),
            };
            lines.push(verdict);
        }
    }
    let border = if env.production {
        t.production
    } else {
        t.border
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_style(border)
                .padding(Padding::horizontal(1))
                .title(title),
        ),
        area,
    );
}
