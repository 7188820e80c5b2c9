//! The regression alarm: shown when a monitoring window found a regression
//! and auto-rollback is off, offering the one-key rollback and the
//! environment's links (logs, dashboards) as terminal hyperlinks.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;

use super::LinkSpot;
use crate::tui::format::{self, Part};
use crate::tui::state::State;

/// `(name, URL)` pairs.
type Links = Vec<(String, String)>;

/// The parts of the alarm line; the links are parts of their own (their
/// text is the link's name).
fn parts(state: &State) -> Option<(Vec<Part>, Links)> {
    let a = state.alarm.as_ref()?;
    let st = state.theme.banner;
    let link = state.theme.banner.patch(state.theme.link);
    let links = state
        .env_status(&a.env)
        .map(|e| state.links(e))
        .unwrap_or_default();
    // What to do comes first and stays; the reason goes first when the
    // terminal is narrow (it is in full in the detail view, v).
    let mut p = vec![
        Part::new(format!(" ⚠ REGRESSION in {} ({})", a.env, a.version), st).middle(),
        Part::new(" — r rolls back", st),
        Part::new(", Esc dismisses", st).prio(3),
        Part::new(", v details", st).prio(2),
    ];
    for (i, (name, _)) in links.iter().enumerate() {
        p.push(Part::new(if i == 0 { " — " } else { " · " }, st).prio(1));
        p.push(Part::new(name.clone(), link).prio(1));
    }
    p.push(Part::new(format!(" — {}", a.reason), st).prio(4));
    p.push(Part::new(" ", st).prio(5));
    Some((p, links))
}

/// Lines the banner needs (0 without an alarm).
pub fn height(state: &State, _width: u16) -> u16 {
    u16::from(state.alarm.is_some())
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) -> Vec<LinkSpot> {
    let Some((parts, links)) = parts(state) else {
        return Vec::new();
    };
    if area.height == 0 {
        return Vec::new();
    }
    let line = format::fit(parts, area.width as usize);
    // Where the links landed: a link part is never cut (only the key parts
    // can be), so a span equal to a link's name is that link.
    let mut spots = Vec::new();
    let mut x = area.x;
    let mut next = links.iter().peekable();
    for span in &line.spans {
        let w = format::width(&span.content) as u16;
        if let Some((name, url)) = next.peek()
            && span.content == name.as_str()
            && span.style == state.theme.banner.patch(state.theme.link)
        {
            spots.push(LinkSpot {
                x,
                y: area.y,
                width: w,
                url: url.clone(),
            });
            next.next();
        }
        x += w;
    }
    frame.render_widget(Paragraph::new(line).style(state.theme.banner), area);
    spots
}
