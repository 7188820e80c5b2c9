//! The audit log, newest first, one action per row.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use crate::domain::Outcome;
use crate::tui::format;
use crate::tui::state::State;

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let entries = state.history.as_deref();
    let mut title = vec![Span::styled(" Audit log ", t.title)];
    if let Some(e) = entries {
        title.push(Span::styled(format!("· {} entries ", e.len()), t.dim));
    }
    if state.history_loading {
        title.push(Span::styled("· loading… ", t.busy));
    }
    let border = if state.history_error.is_some() {
        t.error
    } else {
        t.border
    };
    let block = Block::bordered()
        .border_style(border)
        .title(Line::from(title));

    let Some(entries) = entries else {
        let line = match &state.history_error {
            Some(e) => Line::styled(format!("history failed: {e}"), t.error),
            None => Line::styled("loading the audit log…", t.busy),
        };
        frame.render_widget(
            Paragraph::new(line).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    };
    if let Some(e) = &state.history_error {
        // Keep the last good list; say it is stale.
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [msg, rest] =
            ratatui::layout::Layout::vertical([Constraint::Length(1), Constraint::Fill(1)])
                .areas(inner);
        frame.render_widget(
            Paragraph::new(Line::styled(format!("reload failed: {e}"), t.error)),
            msg,
        );
        table(state, entries, frame, rest, None);
        return;
    }
    table(state, entries, frame, area, Some(block));
}

fn table(
    state: &State,
    entries: &[crate::domain::AuditEntry],
    frame: &mut Frame,
    area: Rect,
    block: Option<Block>,
) {
    let t = &state.theme;
    if entries.is_empty() {
        let p = Paragraph::new(Line::styled("nothing recorded yet", t.dim));
        frame.render_widget(if let Some(b) = block { p.block(b) } else { p }, area);
        return;
    }
    let header = Row::new([
        "when", "who", "action", "env", "version", "outcome", "detail",
    ])
    .style(t.title);
    let rows = entries.iter().skip(state.history_scroll).map(|e| {
        let version = match (&e.from_version, &e.version) {
            (Some(f), Some(v)) => format!("{f} → {v}"),
            (None, Some(v)) => v.to_string(),
            _ => "–".into(),
        };
        let outcome_style = match e.outcome {
            Outcome::Succeeded => t.ok,
            Outcome::Failed | Outcome::Refused => t.error,
            Outcome::Started | Outcome::Unknown => t.warn,
        };
        Row::new(vec![
            Cell::from(format!(
                "{} ({} ago)",
                e.at.format("%m-%d %H:%M:%S"),
                format::age((state.now - e.at).num_seconds())
            )),
            Cell::from(e.actor.clone()),
            Cell::from(e.action.as_str()),
            Cell::from(e.env.clone()),
            Cell::from(version),
            Cell::from(Span::styled(e.outcome.as_str(), outcome_style)),
            Cell::from(e.detail.clone()),
        ])
    });
    let widths = [
        Constraint::Length(24),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(12),
        Constraint::Length(18),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let mut table = Table::new(rows, widths).header(header).column_spacing(1);
    if let Some(b) = block {
        table = table.block(b);
    }
    frame.render_widget(table, area);
}
