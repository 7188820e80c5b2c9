//! The `?` screen: every binding, per context, straight from the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::tui::keymap;
use crate::tui::state::State;

/// Every line of the help screen.
pub fn lines(state: &State) -> Vec<Line<'static>> {
    let t = &state.theme;
    let mut lines = Vec::new();
    for (ctx, bindings) in keymap::help_sections() {
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(ctx.title(), t.title));
        for (keys, help) in bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<14}"), t.key),
                Span::styled(help, t.text),
            ]));
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
    let lines = lines(state);
    let h = lines.len() as u16 + 2;
    let rect = super::centered(area, 96, h);
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
