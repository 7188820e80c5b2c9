//! The bottom two lines: the newest notice, and the keys that apply now
//! (from the keymap, so they can never disagree with dispatch). A narrow
//! terminal drops the later keys first, but keeps help and quit, then the
//! keys an incident needs (promote, approve, roll back, history), before the
//! others.

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

/// Which hints stay longest when the footer is narrow: 0 must never leave
/// it, 1 is what an on-call engineer reaches for in an incident, 2 the rest.
fn rank(label: &str) -> u8 {
    match label {
        "help" | "quit" | "confirm" | "cancel" | "close" | "close help" | "console" => 0,
        "promote" | "approve" | "roll back" | "history" => 1,
        _ => 2,
    }
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let ctx = state.context();
    // In the audit log `H` goes back, which `Esc console` says already:
    // "H history" there read as a key that opens what is on screen.
    let keys: Vec<_> = keymap::footer(ctx)
        .into_iter()
        .filter(|(_, label)| !(ctx == keymap::Context::History && *label == "history"))
        .collect();
    let cost = |(k, l): &(&str, &str)| format::width(k) + format::width(l) + 3;
    // Room is reserved rank by rank, in table order within a rank, while
    // it lasts; all that fit are shown in table order.
    let mut room = (area.width as usize).saturating_sub(1);
    let mut shown = vec![false; keys.len()];
    for r in 0..=2 {
        for (i, b) in keys.iter().enumerate() {
            if rank(b.1) == r && cost(b) <= room {
                room -= cost(b);
                shown[i] = true;
            }
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
