//! The version picker: what the stages before the selected environment run
//! or ran, nearest first; Enter asks the engine to plan that version and
//! opens the normal promote dialog.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Clear, List, ListItem, ListState, Paragraph};

use crate::tui::format::{self, Part};
use crate::tui::state::{Picker, State};

pub fn draw(state: &State, p: &Picker, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let width = area.width.saturating_sub(4).min(72);
    let rows = p.items.len().max(1) as u16;
    let height = (rows + 4).min(area.height.saturating_sub(2));
    let rect = super::centered(area, width, height);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.dialog_border)
        .title(Line::styled(
            format!(" Promote which version to {}? ", p.env),
            t.title,
        ))
        .title_bottom(
            Line::styled(" ↑↓ choose · Enter promote… · Esc cancel ", t.dim).right_aligned(),
        );
    let inner = block.inner(rect);
    frame.render_widget(Clear, rect);
    frame.render_widget(block, rect);
    let mut hint =
        vec![Part::new("The engine checks its gates before you confirm.", t.dim).prio(2)];
    if state.history_loading {
        hint.insert(0, Part::new("Loading what ran before… ", t.busy).prio(1));
    }
    let hint = format::fit(hint, inner.width as usize);
    let [top, list_a] = ratatui::layout::Layout::vertical([
        ratatui::layout::Constraint::Length(1),
        ratatui::layout::Constraint::Fill(1),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(hint), top);
    if p.items.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "no other version ran on the earlier stages",
                t.dim,
            )),
            list_a,
        );
        return;
    }
    let w = list_a.width.saturating_sub(2) as usize;
    let items: Vec<ListItem> = p
        .items
        .iter()
        .map(|i| {
            ListItem::new(format::fit(
                vec![
                    Part::new(format!("{:<10}", i.version.to_string()), t.title).middle(),
                    Part::new(format!("  {}", i.seen), t.text).prio(1).cut(),
                ],
                w,
            ))
        })
        .collect();
    let list = List::new(items)
        .highlight_style(t.selected_title)
        .highlight_symbol("▶ ");
    let mut ls = ListState::default().with_selected(Some(p.cursor));
    frame.render_stateful_widget(list, list_a, &mut ls);
}
