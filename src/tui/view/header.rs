//! The top line: project, who is acting, and how fresh the status is. When
//! the line is short, the store error's detail, the actor and the project
//! name go first; the status age and READ-ONLY stay.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;

use crate::tui::format::{self, Part};
use crate::tui::state::{PanelState, State};

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let project = state
        .status
        .as_ref()
        .map(|s| s.project.as_str())
        .unwrap_or("");
    let mut left = vec![Part::new(" shipdeck", t.title)];
    if !project.is_empty() {
        left.push(Part::new(format!(" · {project}"), t.title).prio(2).cut());
    }
    if state.settings.read_only {
        left.push(Part::new("  ", t.text));
        left.push(Part::new(" READ-ONLY ", t.selected_title));
    }
    // An active freeze window: which environments, until when, why.
    let frozen: Vec<&crate::engine::EnvStatus> = state
        .environments()
        .iter()
        .filter(|e| e.freeze.is_some())
        .collect();
    if let Some(f) = frozen.first().and_then(|e| e.freeze.as_ref()) {
        let names: Vec<&str> = frozen.iter().map(|e| e.name.as_str()).collect();
        left.push(Part::new("  ", t.text));
        left.push(Part::new(format!("❄ FROZEN {}", names.join(", ")), t.warn));
        left.push(Part::new(format!(" until {}", f.to), t.warn).prio(1));
        left.push(Part::new(format!(": {}", f.reason), t.warn).prio(3).cut());
    }

    let mut right = Vec::new();
    let unreachable = state
        .status
        .as_ref()
        .is_some_and(|s| s.store_unreachable_since.is_some());
    if let (true, Some(down)) = (unreachable, state.store_down()) {
        // How long, first: the cause is in the pending panel and `v`.
        right.push(Part::new(format!("✗ {down}"), t.error));
        right.push(Part::new(" · reconnecting", t.error).prio(3));
        right.push(Part::new(" · ", t.dim));
    } else if let Some(e) =
        (state.status.as_ref()).and_then(|s| s.store_error.as_deref().or(s.integrity.as_deref()))
    {
        // A store that went away: for how long and since when matter
        // more than its URL, which the full text (the panels) still names.
        match outage(e) {
            Some(o) => right.push(Part::new(format!("✗ store {o}"), t.error)),
            None => {
                right.push(Part::new("✗ store", t.error));
                right.push(Part::new(format!(": {e}"), t.error).prio(3).cut());
            }
        }
        right.push(Part::new(" · ", t.dim));
    }
    if let Some(s) = &state.status {
        // Beside the others, "you:" keeps this console's own name from
        // reading as one more of them.
        let you = match watching(s) {
            Some(others) => {
                right.push(
                    Part::new(format!("also watching: {others} · "), t.key)
                        .prio(2)
                        .cut(),
                );
                "you: "
            }
            None => "",
        };
        right.push(Part::new(format!("{you}{} · ", s.actor), t.text).prio(1));
    }
    match state.status_panel() {
        PanelState::Loading => right.push(Part::new("loading status…", t.busy)),
        PanelState::Loaded { age_s } => right.push(Part::new(
            format!("status {} ago", format::age(age_s)),
            if age_s > 3 * state.settings.refresh.as_secs().max(1) as i64 {
                t.warn
            } else {
                t.dim
            },
        )),
        PanelState::Error { reason, age_s } => {
            right.push(Part::new("status failed", t.error));
            right.push(Part::new(format!(": {reason}"), t.error).prio(3).cut());
            if let Some(a) = age_s {
                right.push(Part::new(
                    format!(" (last good {} ago)", format::age(a)),
                    t.error,
                ));
            }
        }
    }
    right.push(Part::new(" ", t.text));
    // The right side first (its state matters more), then the project in
    // what is left.
    let w = area.width as usize;
    let left_min: usize = left
        .iter()
        .filter(|p| p.prio == 0)
        .map(|p| format::width(&p.text))
        .sum();
    let right = format::fit(right, w.saturating_sub(left_min + 1)).right_aligned();
    let rw = right.width() as u16;
    let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(rw.min(area.width))])
        .areas(area);
    frame.render_widget(Paragraph::new(format::fit(left, l.width as usize)), l);
    frame.render_widget(Paragraph::new(right), r);
}

/// `unreachable for 14s (since 21:06:15)` out of a store error that says
/// so (the team store's, while it reconnects).
fn outage(e: &str) -> Option<&str> {
    let start = e.find("unreachable for ")?;
    let end = start + e[start..].find(')')? + 1;
    Some(&e[start..end])
}

/// Who else has a console open, once each ("bob@laptop ×2" for two).
fn watching(s: &crate::engine::Status) -> Option<String> {
    let mut names: Vec<(String, usize)> = Vec::new();
    for p in &s.watching {
        let who = crate::text::sanitize(&p.actor);
        match names.iter_mut().find(|(n, _)| *n == who) {
            Some((_, k)) => *k += 1,
            None => names.push((who, 1)),
        }
    }
    (!names.is_empty()).then(|| {
        names
            .into_iter()
            .map(|(n, k)| if k > 1 { format!("{n} ×{k}") } else { n })
            .collect::<Vec<_>>()
            .join(", ")
    })
}
