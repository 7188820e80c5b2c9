//! Drawing: a pure function of the state. One file per panel; no I/O, no
//! clock (ages and countdowns use `state.now`).

mod banner;
mod dialog;
mod envs;
mod footer;
mod header;
mod help;
mod history;
mod monitor;
mod pending;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::state::{Mode, Overlay, State};

pub use monitor::downsample;

/// Below this the console asks for a bigger terminal.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Lay out and draw one frame.
///
/// ```text
///  shipdeck · shop                               alice · status 1s ago   header
/// ┃ ⚠ REGRESSION in production … press r to roll back now             ┃ banner (only in alarm)
/// ┌ local ──────┐ → ┌ development ┐ → ┏ ▶ staging ◀ ┓ → ╔ production ═╗ environments,
/// │ version     │   │ version     │   ┃ version     ┃   ║ version     ║ pipeline order
/// │ health  age │   │ health  age │   ┃ health  age ┃   ║ health  age ║ (selected: thick,
/// │ state       │   │ state       │   ┃ state       ┃   ║ state       ║  production: double)
/// │ approval    │   │ approval    │   ┃ approval    ┃   ║ approval    ║
/// │ last deploy │   │ last deploy │   ┃ last deploy ┃   ║ last deploy ║
/// │ metrics     │   │ metrics     │   ┃ metrics     ┃   ║ metrics     ║
/// └─────────────┘   └─────────────┘   ┗━━━━━━━━━━━━━┛   ╚═════════════╝
/// ┌ Pending → staging ──────┐┌ Monitoring production · 12:04 left ───────┐
/// │ v1.7.3 → v1.8.0         ││ Error rate ━ errors · band ━ limit │deploy │
/// │ from development        ││ ⠀⠀⠀⠀⠀⣀⣀⣀⣀⣀⡀⠀⠀⠀⠀⠀⠀│⠀⠀⠀⠀⠀⠀⣀⣤⠤⠤⠤⠤⠤⠤           │
/// │ Gates                   ││ Latency ━ p50 ━ p95 ━ p99                 │
/// │ ✓ ci   passed           ││ ⠀⠀⠀⠀⠀⣀⣀⣀⣀⣀⡀⠀⠀⠀⠀⠀⠀│⠀⠀⠀⠀⠀⠀⣀⣤⠤⠤⠤⠤⠤⠤           │
/// │ ✗ approval  no Go …     ││ verdict: healthy — …                      │
/// └─────────────────────────┘└───────────────────────────────────────────┘
///  notice (newest, while recent)                                          notices
///  ←/→ select  p promote  a approve  x reject  r roll back  ? help  q quit footer
/// ```
///
/// In the history view the audit log takes the place of the pending and
/// monitoring panels. Dialogs and help are overlays drawn last, centred.
pub fn draw(state: &State, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let banner_h = banner::height(state, area.width);
    let envs_h = envs::HEIGHT.min(area.height.saturating_sub(14)).max(5);
    let [header_a, banner_a, envs_a, main_a, notice_a, footer_a] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_h),
        Constraint::Length(envs_h),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);

    header::draw(state, frame, header_a);
    banner::draw(state, frame, banner_a);
    envs::draw(state, frame, envs_a);
    match state.mode {
        Mode::Console => {
            let pending_w = (main_a.width * 2 / 5).clamp(34, 64);
            let [pending_a, monitor_a] =
                Layout::horizontal([Constraint::Length(pending_w), Constraint::Fill(1)])
                    .areas(main_a);
            pending::draw(state, frame, pending_a);
            monitor::draw(state, frame, monitor_a);
        }
        Mode::History => history::draw(state, frame, main_a),
    }
    footer::draw_notice(state, frame, notice_a);
    footer::draw(state, frame, footer_a);

    for overlay in &state.overlays {
        match overlay {
            Overlay::Help => help::draw(state, frame, area),
            Overlay::Dialog(d) => dialog::draw(state, d, frame, area),
        }
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from(format!(
            "enlarge the terminal to {MIN_WIDTH}×{MIN_HEIGHT} (now {}×{})",
            area.width, area.height
        )),
        Line::from("q or Ctrl-C quits"),
    ];
    let h = 2.min(area.height);
    let y = area.y + area.height.saturating_sub(h) / 2;
    let rect = Rect::new(area.x, y, area.width, h);
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        rect,
    );
}

/// A rectangle of at most `w`×`h` centred in `area`.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}
