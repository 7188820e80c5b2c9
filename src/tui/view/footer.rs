//! The bottom two lines: the newest notice, and the keys that apply now
//! (from the keymap, so they can never disagree with dispatch). A narrow
//! terminal drops the later keys first; help and quit always stay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::format::{self, Part};
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
    let text = format!(" {mark} {}", n.text);
    let w = area.width as usize;
    // When it does not fit, say where it is in full.
    let line = if format::width(&text) <= w {
        Line::styled(text, style)
    } else {
        format::fit(
            vec![
                Part::new(text, style).prio(1).cut(),
                Part::new(" (v: in full)", t.dim),
            ],
            w,
        )
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// Labels that must never leave the footer.
fn essential(label: &str) -> bool {
    matches!(
        label,
        "help" | "quit" | "confirm" | "cancel" | "close" | "close help" | "console"
    )
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let keys = keymap::footer(state.context());
    let cost = |(k, l): &(&str, &str)| format::width(k) + format::width(l) + 3;
    // The essential ones are reserved first; the others follow in table
    // order while they fit; all are shown in table order.
    let mut room = (area.width as usize).saturating_sub(1);
    let mut shown = vec![false; keys.len()];
    for (i, b) in keys.iter().enumerate() {
        if essential(b.1) && cost(b) <= room {
            room -= cost(b);
            shown[i] = true;
        }
    }
    for (i, b) in keys.iter().enumerate() {
        if !shown[i] && !essential(b.1) && cost(b) <= room {
            room -= cost(b);
            shown[i] = true;
        }
    }
    let mut spans = vec![Span::raw(" ")];
    for (i, (k, label)) in keys.iter().enumerate() {
        if shown[i] {
            spans.push(Span::styled(*k, t.key));
            spans.push(Span::styled(format!(" {label}  "), t.dim));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
