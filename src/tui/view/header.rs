//! The top line: project, who is acting, and how fresh the status is.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::format;
use crate::tui::state::{PanelState, State};

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let project = state
        .status
        .as_ref()
        .map(|s| s.project.as_str())
        .unwrap_or("");
    let mut left = vec![Span::styled(" shipdeck", t.title)];
    if !project.is_empty() {
        left.push(Span::styled(" · ", t.dim));
        left.push(Span::styled(project.to_string(), t.title));
    }
    if state.settings.read_only {
        left.push(Span::raw("  "));
        left.push(Span::styled(" READ-ONLY ", t.selected_title));
    }

    let mut right = Vec::new();
    if let Some(e) =
        (state.status.as_ref()).and_then(|s| s.store_error.as_deref().or(s.integrity.as_deref()))
    {
        right.push(Span::styled(
            format!("✗ store: {}", format::clip_at_boundary(e, 50)),
            t.error,
        ));
        right.push(Span::styled(" · ", t.dim));
    }
    if let Some(s) = &state.status {
        right.push(Span::styled(s.actor.clone(), t.text));
        right.push(Span::styled(" · ", t.dim));
    }
    match state.status_panel() {
        PanelState::Loading => right.push(Span::styled("loading status…", t.busy)),
        PanelState::Loaded { age_s } => right.push(Span::styled(
            format!("status {} ago", format::age(age_s)),
            if age_s > 3 * state.settings.refresh.as_secs().max(1) as i64 {
                t.warn
            } else {
                t.dim
            },
        )),
        PanelState::Error { reason, age_s } => {
            let age = age_s
                .map(|a| format!(" (last good {} ago)", format::age(a)))
                .unwrap_or_default();
            right.push(Span::styled(
                format!(
                    "status failed: {}{age}",
                    format::clip_at_boundary(reason, 60)
                ),
                t.error,
            ));
        }
    }
    right.push(Span::raw(" "));
    let right = Line::from(right).right_aligned();
    let rw = right.width() as u16;
    let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(rw.min(area.width))])
        .areas(area);
    frame.render_widget(Paragraph::new(Line::from(left)), l);
    frame.render_widget(Paragraph::new(right), r);
}
