//! Confirmation dialogs: each names exactly what Enter will do, and says
//! which key confirms and which cancels. Production and rollbacks get the
//! danger border.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::domain::Decision;
use crate::tui::keymap;
use crate::tui::state::{Dialog, Pending, State};

pub fn draw(state: &State, d: &Dialog, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let mut lines: Vec<Line> = Vec::new();
    let (title, verb, danger) = match &d.action {
        Pending::Promote {
            env,
            version,
            current,
            source,
            skips,
            warnings,
            production,
        } => {
            let cur = current
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            lines.push(Line::from(vec![
                Span::styled("Promote ", t.text),
                Span::styled(env.clone(), t.title),
                Span::styled(format!(": {cur} → "), t.text),
                Span::styled(version.to_string(), t.title),
            ]));
            lines.push(Line::styled(
                match source {
                    Some(s) => format!("source: {s} (what it runs now)"),
                    None => "source: explicit version".to_string(),
                },
                t.dim,
            ));
            if !skips.is_empty() {
                lines.push(Line::styled(format!("skips: {}", skips.join(", ")), t.warn));
            }
            for g in warnings {
                lines.push(Line::styled(format!("⚠ {}: {}", g.name, g.detail), t.warn));
            }
            if *production {
                lines.push(Line::styled("This deploys to PRODUCTION.", t.error));
            }
            let verb = if warnings.is_empty() {
                "promote"
            } else {
                "promote anyway"
            };
            (
                format!(" Promote {env}? "),
                verb,
                *production || !warnings.is_empty(),
            )
        }
        Pending::Approve {
            env,
            version,
            source,
            decision,
        } => {
            let (word, verb) = match decision {
                Decision::Go => ("a Go", "record Go"),
                Decision::NoGo => ("a No-Go", "record No-Go"),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("Record {word} for "), t.text),
                Span::styled(version.to_string(), t.title),
                Span::styled(format!(" → {env}"), t.text),
            ]));
            if let Some(s) = source {
                lines.push(Line::styled(format!("(what {s} runs now)"), t.dim));
            }
            if *decision == Decision::NoGo {
                lines.push(Line::styled("A No-Go blocks this version.", t.warn));
            }
            lines.push(Line::raw(""));
            let note = d.note.clone().unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled("Note (optional): ", t.dim),
                Span::styled(note, t.text),
                Span::styled("▏", t.key),
            ]));
            (
                format!(" Approval for {env} "),
                verb,
                *decision == Decision::NoGo,
            )
        }
        Pending::Rollback {
            env,
            from,
            to,
            strategy,
            production,
        } => {
            let from = from
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            let to = to
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "the version before its last deploy".into());
            lines.push(Line::from(vec![
                Span::styled("Roll back ", t.text),
                Span::styled(env.clone(), t.title),
                Span::styled(format!(": {from} → "), t.text),
                Span::styled(to, t.title),
            ]));
            lines.push(Line::styled(format!("strategy: {strategy}"), t.dim));
            if *production {
                lines.push(Line::styled("This changes PRODUCTION.", t.error));
            }
            (format!(" Roll back {env}? "), "roll back", true)
        }
        Pending::Quit { running } => {
            lines.push(Line::styled("Still running:", t.text));
            for r in running {
                lines.push(Line::styled(format!("  • {r}"), t.warn));
            }
            lines.push(Line::styled(
                "Quitting stops watching them; the audit log keeps what was recorded.",
                t.dim,
            ));
            (" Quit shipdeck? ".to_string(), "quit", true)
        }
    };
    lines.push(Line::raw(""));
    let mut keys = Vec::new();
    for (k, label) in keymap::footer(state.context()) {
        let label = if label == "confirm" { verb } else { label };
        keys.push(Span::styled(k, t.key));
        keys.push(Span::styled(format!(" {label}   "), t.text));
    }
    lines.push(Line::from(keys));

    let width = lines
        .iter()
        .map(|l| l.width() as u16)
        .max()
        .unwrap_or(0)
        .clamp(40, 76)
        + 4;
    let inner = (width - 2).max(1) as usize;
    let height = lines
        .iter()
        .map(|l| l.width().div_ceil(inner).max(1) as u16)
        .sum::<u16>()
        + 2;
    let rect = super::centered(area, width, height);
    let border = if danger {
        t.danger_border
    } else {
        t.dialog_border
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_type(if danger {
                    BorderType::Double
                } else {
                    BorderType::Rounded
                })
                .border_style(border)
                .title(Line::styled(title, t.title)),
        ),
        rect,
    );
}
