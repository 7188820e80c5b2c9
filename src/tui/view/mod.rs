//! Drawing: a pure function of the state. One file per panel; no I/O, no
//! clock (ages and countdowns use `state.now`).

mod banner;
mod detail;
mod dialog;
mod envs;
mod footer;
mod header;
mod help;
mod history;
mod monitor;
mod monitor_canary;
mod pending;
mod picker;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::state::{Mode, Overlay, State};

pub use monitor::downsample;

/// Below this the console asks for a bigger terminal.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// A piece of the screen that is a terminal hyperlink (OSC 8): the app
/// writes it over the drawn frame, since a buffer cell cannot carry one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpot {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    /// Printable ASCII only (see `config::expand_link`).
    pub url: String,
}

/// Where each part of the console goes.
struct Areas {
    header: Rect,
    banner: Rect,
    envs: Rect,
    main: Rect,
    notice: Rect,
    footer: Rect,
}

fn areas(state: &State, area: Rect) -> Areas {
    let banner_h = banner::height(state, area.width);
    let envs_h = envs::height(area.height);
    let [header, banner, envs, main, notice, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_h),
        Constraint::Length(envs_h),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        header,
        banner,
        envs,
        main,
        notice,
        footer,
    }
}

/// The pending panel and the monitoring panel side by side. Space goes to
/// what matters now: a pending panel with nothing to promote shrinks, and
/// a running monitoring window takes more.
fn split_main(state: &State, main: Rect) -> (Rect, Rect) {
    let promotable = state
        .selected_env()
        .and_then(|e| e.promotion.as_ref())
        .is_some_and(|p| p.current.as_ref() != Some(&p.version));
    let watching = state.chart_env().is_some_and(|n| {
        state.canary_running(n)
            || state
                .env_ui(n)
                .and_then(|u| u.window.as_ref())
                .is_some_and(|w| w.running)
    });
    let w = main.width;
    let pending_w = match (promotable, watching) {
        (true, false) => (w * 2 / 5).clamp(34, 64),
        (true, true) => (w * 3 / 10).clamp(34, 50),
        (false, _) => (w / 4).clamp(24, 36),
    };
    let [pending, monitor] =
        Layout::horizontal([Constraint::Length(pending_w), Constraint::Fill(1)]).areas(main);
    (pending, monitor)
}

/// Lay out and draw one frame; returns where the hyperlinks are.
///
/// ```text
///  shipdeck · shop                               alice · status 1s ago   header
/// ┃ ⚠ REGRESSION in production … r rolls back · logs                  ┃ banner (only in alarm)
/// ┌ local ──────┐ → ┌ development ┐ → ┏ ▶ staging ◀ ┓ → ╔ production ═╗ environments,
/// │ version     │   │ version     │   ┃ version     ┃   ║ version     ║ pipeline order
/// │ health  age │   │ health  age │   ┃ health  age ┃   ║ health  age ║ (selected: thick,
/// │ state       │   │ state       │   ┃ state       ┃   ║ state       ║  production: double;
/// │ approval    │   │ approval    │   ┃ approval    ┃   ║ approval    ║  narrow: the row
/// │ last deploy │   │ last deploy │   ┃ last deploy ┃   ║ last deploy ║  labels in a gutter
/// │ metrics     │   │ metrics     │   ┃ metrics     ┃   ║ metrics     ║  on the left)
/// └─────────────┘   └─────────────┘   ┗━━━━━━━━━━━━━┛   ╚ logs ═══════╝ links in the border
/// ┌ Pending → staging ──────┐┌ Monitoring production · 12:04 left ───────┐
/// │ v1.7.3 → v1.8.0         ││ Error rate ━ errors · band ━ limit │deploy │
/// │ blocked by approval     ││ ⠀⠀⠀⠀⠀⣀⣀⣀⣀⣀⡀⠀⠀⠀⠀⠀⠀│⠀⠀⠀⠀⠀⠀⣀⣤⠤⠤⠤⠤⠤⠤           │
/// │ ✓ ci   passed           ││ Latency ━ p50 ━ p95 ━ p99                 │
/// │ ✗ approval  no Go …     ││ ⠀⠀⠀⠀⠀⣀⣀⣀⣀⣀⡀⠀⠀⠀⠀⠀⠀│⠀⠀⠀⠀⠀⠀⣀⣤⠤⠤⠤⠤⠤⠤           │
/// │ from staging            ││ -30m            0                  +30m  │
/// └─────────────────────────┘└ … collecting, 37 s: error rate … ──────────┘
///  notice (newest, while recent)                                          notices
///  ←→ select  p promote  a approve  r roll back … ? help  q quit           footer
/// ```
///
/// In the history view the audit log takes the place of the pending and
/// monitoring panels. Dialogs, pickers, detail views and help are overlays
/// drawn last, centred.
pub fn draw(state: &State, frame: &mut Frame) -> Vec<LinkSpot> {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(state, frame, area);
        return Vec::new();
    }
    let a = areas(state, area);
    let mut links = Vec::new();

    header::draw(state, frame, a.header);
    links.extend(banner::draw(state, frame, a.banner));
    links.extend(envs::draw(state, frame, a.envs));
    match state.mode {
        Mode::Console => {
            let (pending_a, monitor_a) = split_main(state, a.main);
            pending::draw(state, frame, pending_a);
            monitor::draw(state, frame, monitor_a);
        }
        Mode::History => history::draw(state, frame, a.main),
    }
    footer::draw_notice(state, frame, a.notice);
    footer::draw(state, frame, a.footer);

    for overlay in &state.overlays {
        match overlay {
            Overlay::Help => help::draw(state, frame, area),
            Overlay::Dialog(d) => dialog::draw(state, d, frame, area),
            Overlay::Detail(d) => detail::draw(state, d, frame, area),
            Overlay::Picker(p) => picker::draw(state, p, frame, area),
            Overlay::Filter => {}
        }
    }
    if state.overlays.iter().any(|o| !matches!(o, Overlay::Filter)) {
        // Overlays may cover them: no links while one is open.
        links.clear();
    }
    links
}

/// The environment under the terminal cell `(x, y)`, for a click.
pub fn env_at(state: &State, x: u16, y: u16) -> Option<usize> {
    let (w, h) = state.size;
    let area = Rect::new(0, 0, w, h);
    let a = areas(state, area);
    envs::columns(state, a.envs)
        .into_iter()
        .find(|(_, r)| r.contains(ratatui::layout::Position { x, y }))
        .map(|(i, _)| i)
}

/// Rows of the audit log the history view shows at once (a page).
pub fn history_page(state: &State) -> usize {
    let h = state.size.1;
    // Header, banner, notice and footer lines; the table's borders and header.
    let around = 3 + banner::height(state, state.size.0) + 3;
    h.saturating_sub(envs::height(h) + around).max(1) as usize
}

/// The furthest the help screen or the detail view on top can scroll: its
/// lines less the rows it shows.
pub fn overlay_scroll_max(state: &State) -> usize {
    let (w, h) = state.size;
    let lines = match state.overlays.last() {
        Some(Overlay::Help) => help::lines(state, w).len(),
        Some(Overlay::Detail(d)) => {
            let inner = w.saturating_sub(4).min(110).saturating_sub(2).max(1) as usize;
            detail::lines(state, d, inner).1.len()
        }
        _ => 0,
    };
    // The box takes the whole height but one row above and below, and its borders.
    lines.saturating_sub(h.saturating_sub(4) as usize)
}

fn too_small(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let mut text = vec![Line::from(format!(
        "enlarge the terminal to {MIN_WIDTH}×{MIN_HEIGHT} (now {}×{})",
        area.width, area.height
    ))];
    if let Some(a) = &state.alarm {
        text.push(Line::styled(
            format!("⚠ REGRESSION in {} ({})", a.env, a.version),
            t.banner,
        ));
    }
    // A key pressed here answers too (see `update::on_key`).
    if let Some(n) = state.current_notice() {
        text.push(Line::from(n.text.clone()));
    }
    let running = state.running();
    if running.is_empty() {
        text.push(Line::from("q or Ctrl-C quits"));
    } else {
        text.push(Line::from(format!(
            "Ctrl-C quits and stops: {}",
            running.join(", ")
        )));
    }
    let h = (text.len() as u16 * 2).min(area.height);
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
