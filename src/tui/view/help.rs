//! The `?` screen: every binding, per context, straight from the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::tui::format;
use crate::tui::keymap;
use crate::tui::state::State;

/// Width of the help box.
const WIDTH: u16 = 96;
/// Width of the keys column.
const KEYS: usize = 16;

/// Every line of the help screen, for a terminal `area_width` wide; each
/// explanation wraps under itself.
pub fn lines(state: &State, area_width: u16) -> Vec<Line<'static>> {
    let t = &state.theme;
    let inner = WIDTH.min(area_width).saturating_sub(2) as usize;
    let mut lines = Vec::new();
    for (ctx, bindings) in keymap::help_sections() {
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(ctx.title(), t.title));
        for (keys, help) in bindings {
            for (i, l) in format::wrap_words(help, inner.saturating_sub(KEYS).max(10))
                .into_iter()
                .enumerate()
            {
                let k = if i == 0 { keys.clone() } else { String::new() };
                lines.push(Line::from(vec![
                    Span::styled(format!("  {k:<width$}", width = KEYS - 2), t.key),
                    Span::styled(l, t.text),
                ]));
            }
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "In a note: type freely, Backspace deletes, Enter records, Esc cancels.",
        t.dim,
    ));
    if state.settings.mouse {
        lines.push(Line::styled(
            "Mouse: a click selects an environment; the wheel scrolls the audit log.",
            t.dim,
        ));
    }
    if state.settings.read_only {
        lines.push(Line::styled("Read-only mode: actions are refused.", t.warn));
    }
    lines
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let lines = lines(state, area.width);
    let h = lines.len() as u16 + 2;
    let rect = super::centered(area, WIDTH, h.min(area.height.saturating_sub(2)));
    let more = h > rect.height;
    let hint = if more {
        " ↑↓ scroll · Esc closes "
    } else {
        " Esc closes "
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((state.help_scroll as u16, 0))
            .block(
                Block::bordered()
                    .border_type(BorderType::Rounded)
                    .border_style(t.dialog_border)
                    .title(Line::styled(" Keys ", t.title))
                    .title_bottom(Line::styled(hint, t.dim).right_aligned()),
            ),
        rect,
    );
}
