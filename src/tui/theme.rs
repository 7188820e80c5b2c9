//! Colours by role. Views ask for `theme.error`, never for `Color::Red`.
//!
//! Three themes: dark, light (dark text on a light background, no yellow or
//! cyan that vanish there) and monochrome for `NO_COLOR`, where every style is
//! colourless and emphasis comes from bold, reverse and symbols only (crossterm
//! writes empty colour codes under `NO_COLOR`, so a selection drawn only by a
//! background colour would disappear).

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;

use crate::config::ThemeName;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThemeKind {
    Dark,
    Light,
    Mono,
}

#[derive(Clone, Debug)]
pub struct Theme {
    pub kind: ThemeKind,
    pub text: Style,
    pub dim: Style,
    pub title: Style,
    pub border: Style,
    /// Border of the selected environment column.
    pub selected_border: Style,
    /// Title of the selected column: reversed in every theme.
    pub selected_title: Style,
    /// Border and tag of production environments.
    pub production: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub busy: Style,
    pub key: Style,
    pub banner: Style,
    pub dialog_border: Style,
    pub danger_border: Style,
    pub series_errors: Style,
    pub series_p50: Style,
    pub series_p95: Style,
    pub series_p99: Style,
    pub band: Style,
    pub threshold: Style,
    pub deploy_line: Style,
    /// The moment the verdict found a regression.
    pub verdict_line: Style,
    /// The moment the rollback began.
    pub rollback_line: Style,
    /// A terminal hyperlink's text.
    pub link: Style,
    pub marker_main: Marker,
    pub marker_p50: Marker,
    pub marker_p99: Marker,
    /// Markers of the guides: each distinct without colour.
    pub marker_band: Marker,
    pub marker_limit: Marker,
    pub marker_deploy: Marker,
    pub marker_verdict: Marker,
    pub marker_rollback: Marker,
}

impl Theme {
    /// The theme for the config's choice, or monochrome when `no_color`.
    pub fn new(name: ThemeName, no_color: bool) -> Self {
        if no_color {
            return Theme::mono();
        }
        match name {
            ThemeName::Dark => Theme::dark(),
            ThemeName::Light => Theme::light(),
        }
    }

    /// `NO_COLOR` set to anything non-empty (<https://no-color.org>).
    pub fn no_color_requested(value: Option<&std::ffi::OsStr>) -> bool {
        value.is_some_and(|v| !v.is_empty())
    }

    pub fn dark() -> Self {
        let fg = |c| Style::new().fg(c);
        Theme {
            kind: ThemeKind::Dark,
            text: Style::new(),
            dim: fg(Color::DarkGray),
            title: Style::new().add_modifier(Modifier::BOLD),
            border: fg(Color::DarkGray),
            selected_border: fg(Color::Cyan).add_modifier(Modifier::BOLD),
            selected_title: fg(Color::Cyan).add_modifier(Modifier::BOLD | Modifier::REVERSED),
            production: fg(Color::Magenta),
            ok: fg(Color::Green),
            warn: fg(Color::Yellow),
            error: fg(Color::Red).add_modifier(Modifier::BOLD),
            busy: fg(Color::Cyan),
            key: fg(Color::Cyan).add_modifier(Modifier::BOLD),
            banner: Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            dialog_border: fg(Color::Cyan),
            danger_border: fg(Color::Red).add_modifier(Modifier::BOLD),
            series_errors: fg(Color::Red),
            series_p50: fg(Color::Green),
            series_p95: fg(Color::Yellow),
            series_p99: fg(Color::Magenta),
            band: fg(Color::DarkGray),
            threshold: fg(Color::LightRed),
            deploy_line: fg(Color::Cyan),
            verdict_line: fg(Color::Red).add_modifier(Modifier::BOLD),
            rollback_line: fg(Color::Yellow),
            link: fg(Color::Cyan).add_modifier(Modifier::UNDERLINED),
            marker_main: Marker::Braille,
            marker_p50: Marker::Braille,
            marker_p99: Marker::Braille,
            marker_band: Marker::Braille,
            marker_limit: Marker::Braille,
            marker_deploy: Marker::Braille,
            marker_verdict: Marker::Braille,
            marker_rollback: Marker::Braille,
        }
    }

    pub fn light() -> Self {
        let fg = |c| Style::new().fg(c);
        Theme {
            kind: ThemeKind::Light,
            text: Style::new(),
            dim: fg(Color::DarkGray),
            title: Style::new().add_modifier(Modifier::BOLD),
            border: fg(Color::DarkGray),
            selected_border: fg(Color::Blue).add_modifier(Modifier::BOLD),
            selected_title: fg(Color::Blue).add_modifier(Modifier::BOLD | Modifier::REVERSED),
            production: fg(Color::Magenta),
            ok: fg(Color::Green),
            warn: fg(Color::Indexed(130)),
            error: fg(Color::Red).add_modifier(Modifier::BOLD),
            busy: fg(Color::Blue),
            key: fg(Color::Blue).add_modifier(Modifier::BOLD),
            banner: Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            dialog_border: fg(Color::Blue),
            danger_border: fg(Color::Red).add_modifier(Modifier::BOLD),
            series_errors: fg(Color::Red),
            series_p50: fg(Color::Green),
            series_p95: fg(Color::Indexed(130)),
            series_p99: fg(Color::Magenta),
            band: fg(Color::DarkGray),
            threshold: fg(Color::Red),
            deploy_line: fg(Color::Blue),
            verdict_line: fg(Color::Red).add_modifier(Modifier::BOLD),
            rollback_line: fg(Color::Indexed(130)),
            link: fg(Color::Blue).add_modifier(Modifier::UNDERLINED),
            marker_main: Marker::Braille,
            marker_p50: Marker::Braille,
            marker_p99: Marker::Braille,
            marker_band: Marker::Braille,
            marker_limit: Marker::Braille,
            marker_deploy: Marker::Braille,
            marker_verdict: Marker::Braille,
            marker_rollback: Marker::Braille,
        }
    }

    /// No colour at all: bold, reverse and distinct chart markers carry the meaning.
    pub fn mono() -> Self {
        let plain = Style::new();
        let bold = Style::new().add_modifier(Modifier::BOLD);
        Theme {
            kind: ThemeKind::Mono,
            text: plain,
            dim: plain,
            title: bold,
            border: plain,
            selected_border: bold,
            selected_title: Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            production: bold,
            ok: plain,
            warn: bold,
            error: bold,
            busy: plain,
            key: bold,
            banner: Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            dialog_border: bold,
            danger_border: bold,
            series_errors: plain,
            series_p50: plain,
            series_p95: plain,
            series_p99: plain,
            band: plain,
            threshold: plain,
            deploy_line: plain,
            verdict_line: bold,
            rollback_line: plain,
            link: Style::new().add_modifier(Modifier::UNDERLINED),
            marker_main: Marker::Braille,
            marker_p50: Marker::Dot,
            marker_p99: Marker::Custom('×'),
            marker_band: Marker::Custom('·'),
            marker_limit: Marker::Custom('-'),
            marker_deploy: Marker::Custom('│'),
            marker_verdict: Marker::Custom('┃'),
            marker_rollback: Marker::Custom('╎'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_means_any_non_empty_value() {
        assert!(!Theme::no_color_requested(None));
        assert!(!Theme::no_color_requested(Some("".as_ref())));
        assert!(Theme::no_color_requested(Some("1".as_ref())));
        assert_eq!(Theme::new(ThemeName::Light, true).kind, ThemeKind::Mono);
        assert_eq!(Theme::new(ThemeName::Light, false).kind, ThemeKind::Light);
    }

    #[test]
    fn light_avoids_colours_that_vanish_on_white() {
        let t = Theme::light();
        let faint = [
            Color::Yellow,
            Color::LightYellow,
            Color::LightCyan,
            Color::White,
            Color::Gray,
        ];
        for s in [
            t.text,
            t.dim,
            t.border,
            t.selected_border,
            t.selected_title,
            t.production,
            t.ok,
            t.warn,
            t.error,
            t.busy,
            t.key,
            t.series_errors,
            t.series_p50,
            t.series_p95,
            t.series_p99,
            t.band,
            t.threshold,
            t.deploy_line,
            t.verdict_line,
            t.rollback_line,
            t.link,
        ] {
            assert!(!s.fg.is_some_and(|c| faint.contains(&c)), "{s:?}");
        }
    }

    #[test]
    fn mono_sets_no_colour_and_selection_still_stands_out() {
        let t = Theme::mono();
        for s in [
            t.text,
            t.border,
            t.selected_title,
            t.error,
            t.banner,
            t.threshold,
        ] {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
        assert!(t.selected_title.add_modifier.contains(Modifier::REVERSED));
        let guides = [
            t.marker_band,
            t.marker_limit,
            t.marker_deploy,
            t.marker_verdict,
            t.marker_rollback,
        ];
        for (i, a) in guides.iter().enumerate() {
            for b in &guides[i + 1..] {
                assert_ne!(a, b, "guides must differ without colour");
            }
        }
    }
}
