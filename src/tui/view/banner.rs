//! The regression alarm: shown when a monitoring window found a regression
//! and auto-rollback is off, offering the one-key rollback.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::state::State;

fn text(state: &State) -> Option<String> {
    let a = state.alarm.as_ref()?;
    Some(format!(
        " ⚠ REGRESSION in {} ({}): {} — press r to roll back now, Esc to dismiss ",
        a.env, a.version, a.reason
    ))
}

/// Lines the banner needs at `width` (0 without an alarm).
pub fn height(state: &State, width: u16) -> u16 {
    match text(state) {
        None => 0,
        Some(t) if (t.chars().count() as u16) <= width => 1,
        Some(_) => 2,
    }
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let Some(t) = text(state) else { return };
    if area.height == 0 {
        return;
    }
    frame.render_widget(
        Paragraph::new(Line::from(t))
            .style(state.theme.banner)
            .wrap(Wrap { trim: false }),
        area,
    );
}
