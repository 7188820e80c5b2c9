//! The regression alarm: shown when a monitoring window found a regression
//! and auto-rollback is off, offering the one-key rollback.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use crate::tui::state::State;

fn text(state: &State) -> Option<String> {
    let a = state.alarm.as_ref()?;
    // What to do comes first, so that a narrow terminal cuts the reason,
    // not the key; the full reason stays in the monitoring panel.
    Some(format!(
        " ⚠ REGRESSION in {} ({}) — press r to roll back now, Esc to dismiss — {} ",
        a.env, a.version, a.reason
    ))
}

/// One line of at most `width` columns, ending in … when cut.
fn fit(t: &str, width: u16) -> String {
    let width = width as usize;
    if t.chars().count() <= width {
        return format!("{t:width$}");
    }
    let mut s: String = t.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Lines the banner needs (0 without an alarm).
pub fn height(state: &State, _width: u16) -> u16 {
    u16::from(text(state).is_some())
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let Some(t) = text(state) else { return };
    if area.height == 0 {
        return;
    }
    frame.render_widget(
        Paragraph::new(Line::from(fit(&t, area.width))).style(state.theme.banner),
        area,
    );
}
