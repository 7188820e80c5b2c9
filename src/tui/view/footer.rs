//! The bottom two lines: the newest notice, and the keys that apply now
//! (from the keymap, so they can never disagree with dispatch).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::format;
use crate::tui::keymap;
use crate::tui::state::{Level, State};

pub fn draw_notice(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let Some(n) = state.current_notice() else {
        return;
    };
    let (mark, style) = match n.level {
        Level::Info => ("•", t.text),
        Level::Warn => ("!", t.warn),
        Level::Error => ("✗", t.error),
    };
    let text = format::clip(&format!(" {mark} {}", n.text), area.width as usize);
    frame.render_widget(Paragraph::new(Line::styled(text, style)), area);
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for (keys, label) in keymap::footer(state.context()) {
        let w = keys.chars().count() + label.chars().count() + 3;
        if used + w > area.width as usize {
            break;
        }
        used += w;
        spans.push(Span::styled(keys, t.key));
        spans.push(Span::styled(format!(" {label}  "), t.dim));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
