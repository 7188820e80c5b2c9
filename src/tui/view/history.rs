//! The audit log, newest first, one action per row, with a cursor; `/`
//! filters it and Enter opens a record in full. Times carry their zone.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::domain::{AuditEntry, Outcome};
use crate::tui::format::{self, Part};
use crate::tui::state::{Overlay, State};

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let entries = state.history.as_deref();
    let rows = state.history_rows();
    let mut title = vec![Part::new(" Audit log ", t.title)];
    if let Some(e) = entries {
        let noun = if e.len() == 1 { "entry" } else { "entries" };
        if state.history_filter.is_empty() {
            title.push(Part::new(format!("· {} {noun} ", e.len()), t.dim));
        } else {
            title.push(Part::new(
                format!("· {} of {} {noun} ", rows.len(), e.len()),
                t.dim,
            ));
        }
        if !rows.is_empty() {
            title.push(Part::new(format!("· row {} ", state.history_cursor + 1), t.dim).prio(2));
        }
    }
    if state.history_loading {
        title.push(Part::new("· loading… ", t.busy).prio(1));
    }
    let border = if state.history_error.is_some() {
        t.error
    } else {
        t.border
    };
    let block = Block::bordered()
        .border_style(border)
        .title(format::fit(title, area.width.saturating_sub(4) as usize));

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
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let typing = matches!(state.overlays.last(), Some(Overlay::Filter));
    let mut top = Vec::new();
    if let Some(e) = &state.history_error {
        // Keep the last good list; say it is stale.
        top.push(format::fit(
            vec![
                Part::new("reload failed", t.error),
                Part::new(format!(": {e}"), t.error).prio(1).cut(),
            ],
            inner.width as usize,
        ));
    }
    if typing || !state.history_filter.is_empty() {
        let mut spans = vec![
            Span::styled("filter: ", t.dim),
            Span::styled(state.history_filter.clone(), t.text),
        ];
        if typing {
            spans.push(Span::styled("▏", t.key));
            spans.push(Span::styled("  Enter keeps it · Esc clears it", t.dim));
        }
        top.push(Line::from(spans));
    }
    let [msg, rest] =
        Layout::vertical([Constraint::Length(top.len() as u16), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(top), msg);
    if entries.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("nothing recorded yet", t.dim)),
            rest,
        );
        return;
    }
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no record matches the filter", t.dim)),
            rest,
        );
        return;
    }
    table(state, &rows, frame, rest);
}

fn table(state: &State, entries: &[&AuditEntry], frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let wide = area.width >= 120;
    // (header, width); the detail column takes what is left, if enough.
    let mut cols: Vec<(&str, u16)> = vec![
        ("when (UTC)", if wide { 24 } else { 11 }),
        ("who", if wide { 12 } else { 10 }),
        ("action", 8),
        ("env", if wide { 12 } else { 11 }),
        ("version", if wide { 18 } else { 16 }),
        ("outcome", 9),
    ];
    let used: u16 = cols.iter().map(|c| c.1 + 1).sum::<u16>() + 2;
    let detail_w = area.width.saturating_sub(used);
    if detail_w >= 12 {
        cols.push(("detail", detail_w));
    }
    let header = Row::new(cols.iter().map(|c| c.0)).style(t.title);
    let rows = entries.iter().map(|e| {
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
        let when = if wide {
            format!(
                "{} ({} ago)",
                e.at.format("%m-%d %H:%M:%S"),
                format::age((state.now - e.at).num_seconds())
            )
        } else {
            e.at.format("%m-%d %H:%M").to_string()
        };
        let texts = [
            when,
            e.actor.clone(),
            e.action.as_str().to_string(),
            e.env.clone(),
            version,
            e.outcome.as_str().to_string(),
            e.detail.clone(),
        ];
        Row::new(cols.iter().zip(texts).enumerate().map(|(i, (c, text))| {
            // A version is cut in its middle: its end tells it apart.
            let text = if i == 4 {
                format::clip_versions(&text, c.1 as usize)
            } else {
                format::clip_at_boundary(&text, c.1 as usize)
            };
            if i == 5 {
                Cell::from(Span::styled(text, outcome_style))
            } else {
                Cell::from(text)
            }
        }))
    });
    let widths: Vec<Constraint> = cols.iter().map(|c| Constraint::Length(c.1)).collect();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selected_title)
        .highlight_symbol("▶ ");
    let mut ts = TableState::default().with_selected(Some(state.history_cursor));
    frame.render_stateful_widget(table, area, &mut ts);
}
