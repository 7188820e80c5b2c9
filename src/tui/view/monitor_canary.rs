//! The monitoring panel of a canary: the canary against the stable track
//! at the same time. Two charts on one time axis (seconds since the first
//! step began): error rate and p95 latency, each with a canary and a
//! stable series; each step's start and the verdict drawn as lines. The
//! title carries the weight, the step and the time left; the judge's
//! verdict goes under the charts (or in the bottom border when short).
//!
//! ```text
//! ┌ Canary production · v1.8.0 · 10% · step 1/3 · 0:21 left ─────────────┐
//! │ Error rate ━ canary ━ stable │ step ┃ verdict     now canary 9.1%     │
//! │ ⠀⠀⠀⠀⠀⠀⠀⠀⠀│⠀⠀⠀⠀⠀⠀⠀⣀⣤⠤⠤⠤⠤⠤┃                                           │
//! │ Latency p95 ━ canary ━ stable                                         │
//! │ ⠀⠀⠀⠀⠀⠀⠀⠀⠀│⠀⠀⠀⠀⠀⠀⠀⣀⣤⠤⠤⠤⠤⠤┃                                           │
//! │ 0                +15s                    +30s                         │
//! │ ✗ REGRESSION at +12s (10%, step 1/3): canary error rate 9.1% vs …     │
//! └───────────────────────────────────────────────────────────────────────┘
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::monitor::{
    CHART_MIN, ChartAreas, ChartSpec, Mark, SeriesSpec, chart_areas, downsample, draw_chart,
    error_rate,
};
use crate::monitor::VerdictKind;
use crate::tui::format::{self, Part};
use crate::tui::state::{CanaryView, EnvUi, State};

/// The canary the monitoring panel shows for an environment: its last
/// canary, unless a monitoring window began after it.
pub fn shown(ui: &EnvUi) -> Option<&CanaryView> {
    let c = ui.canary.as_ref()?;
    match &ui.window {
        Some(w) if w.deploy_at > c.started => None,
        _ => Some(c),
    }
}

/// The verdict in words: what the judge says, in neutral colours until it
/// has decided.
fn verdict_line(state: &State, c: &CanaryView, running: bool) -> (String, Style) {
    let t = &state.theme;
    let at = format!("{}%, step {}/{}", c.weight, c.step, c.steps);
    let reason = c
        .verdict
        .reason
        .trim_end_matches(" — regression")
        .trim_end_matches(" — healthy");
    let reason = reason.strip_prefix("insufficient data: ").unwrap_or(reason);
    match c.verdict.kind {
        VerdictKind::Regression => {
            let when = c
                .verdict
                .detected_at
                .map(|x| format!(" at {}", format::offset(x)))
                .unwrap_or_default();
            (format!("✗ REGRESSION{when} ({at}): {reason}"), t.error)
        }
        VerdictKind::InsufficientData if running => (
            format!("… too little canary traffic to judge yet ({at}): {reason}"),
            t.text,
        ),
        VerdictKind::InsufficientData => (format!("? insufficient data ({at}): {reason}"), t.warn),
        VerdictKind::Collecting => (format!("… collecting ({at})"), t.text),
        VerdictKind::Healthy if running => {
            (format!("… no regression so far ({at}): {reason}"), t.text)
        }
        VerdictKind::Healthy => (format!("✓ canary passed ({at}): {reason}"), t.ok),
    }
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect, name: &str, c: &CanaryView) {
    let t = &state.theme;
    let running = state.canary_running(name);
    let regression = c.verdict.kind == VerdictKind::Regression;
    let title_w = area.width.saturating_sub(4) as usize;
    let title = if running {
        format::fit(
            vec![
                Part::new(" Canary", t.title),
                Part::new(format!(" {name}"), t.title),
                Part::new(format!(" · {}", c.version), t.title)
                    .prio(2)
                    .middle(),
                Part::new(format!(" · {}%", c.weight), t.title),
                Part::new(format!(" · step {}/{}", c.step, c.steps), t.title).prio(1),
                Part::new(
                    format!(" · {} left ", format::countdown(c.left_at(state.now))),
                    t.title,
                ),
            ],
            title_w,
        )
    } else {
        // Once it ended: where it stopped, and the weight the status
        // snapshot reads now (a caught canary without auto-rollback keeps
        // its traffic until `r`).
        let how = match c.verdict.kind {
            VerdictKind::Regression => format!(" · caught at {}%", c.weight),
            VerdictKind::Healthy if c.step == c.steps => " · passed".to_string(),
            _ => format!(" · stopped at {}%", c.weight),
        };
        let now_w = state
            .env_status(name)
            .and_then(|e| e.canary.as_ref())
            .filter(|s| s.version == c.version)
            .map(|s| format!(" · weight now {}%", s.weight));
        let mut parts = vec![
            Part::new(" Last canary", t.title),
            Part::new(format!(" · {name}"), t.title),
            Part::new(format!(" · {}", c.version), t.title)
                .prio(2)
                .middle(),
            Part::new(how, t.title),
        ];
        if let Some(w) = now_w {
            parts.push(Part::new(w, t.title).prio(1));
        }
        parts.push(Part::new(" ", t.title));
        format::fit(parts, title_w)
    };
    let border = if regression {
        t.error
    } else if state.env_status(name).is_some_and(|e| e.production) {
        t.production
    } else {
        t.border
    };
    let mut block = Block::bordered().border_style(border).title(title);

    let inner_w = area.width.saturating_sub(2) as usize;
    let inner_h = area.height.saturating_sub(2);
    let (text, style) = verdict_line(state, c, running);
    let wrapped = format::wrap_words(&text, inner_w);
    let wrapped_h = wrapped.len() as u16;
    let inside = wrapped_h <= 3 && inner_h >= 2 * CHART_MIN + 2 + wrapped_h;
    if !inside {
        block = block.title_bottom(format::fit(
            vec![
                Part::new(" ", t.text),
                Part::new(text.clone(), style).cut(),
                Part::new(" · v: in full ", t.dim).prio(9),
            ],
            inner_w.saturating_sub(2),
        ));
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let verdict_h = if inside { wrapped_h } else { 0 };
    let charts_h = inner.height.saturating_sub(verdict_h);
    let verdict_text: Vec<Line> = wrapped
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect();
    if charts_h < CHART_MIN {
        frame.render_widget(
            Paragraph::new(verdict_text).wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }

    // One time axis for both: from the first step to the end of the
    // current one (or the last point, if later).
    let step_end = (c.at - c.started).num_milliseconds() as f64 / 1000.0 + c.left_s;
    let last = c.pairs.back().map_or(0.0, |p| p.t);
    let x_max = if running { step_end.max(last) } else { last }.max(30.0);
    let x_min = 0.0;

    let ChartAreas {
        err: err_a,
        lat: lat_a,
        verdict: verdict_a,
        axes,
    } = chart_areas(inner, charts_h, verdict_h);

    let buckets = (err_a.width as usize).saturating_sub(10) * 2;
    let series = |f: &dyn Fn(&crate::monitor::TrackPair) -> Option<f64>| {
        let pts: Vec<(f64, f64)> = c
            .pairs
            .iter()
            .filter_map(|p| f(p).filter(|v| v.is_finite()).map(|v| (p.t, v)))
            .collect();
        downsample(&pts, x_min, x_max, buckets)
    };
    let mut marks: Vec<Mark> = c
        .step_starts
        .iter()
        .map(|(x, _)| Mark {
            x: *x,
            name: "step",
            style: t.deploy_line,
            marker: t.marker_deploy,
        })
        .collect();
    if let Some(at) = c.verdict.detected_at.filter(|_| regression) {
        marks.push(Mark {
            x: at,
            name: "verdict",
            style: t.verdict_line,
            marker: t.marker_verdict,
        });
    }
    let age = Some((state.now - c.at).num_seconds());
    let step = super::monitor::step_of(c.pairs.iter().map(|p| p.t));
    let two_lines = |canary: Vec<(f64, f64)>, stable: Vec<(f64, f64)>| {
        vec![
            SeriesSpec {
                name: "canary",
                points: canary,
                style: t.series_p95,
                marker: t.marker_main,
            },
            SeriesSpec {
                name: "stable",
                points: stable,
                style: t.series_p50,
                marker: t.marker_p50,
            },
        ]
    };

    let canary_err = series(&|p| error_rate(&p.canary));
    let now_err = c
        .pairs
        .iter()
        .rev()
        .find_map(|p| error_rate(&p.canary).filter(|v| v.is_finite()))
        .map(|v| format!("now canary {}", format::percent(v)));
    let err_chart = ChartSpec {
        title: "Error rate",
        lines: two_lines(canary_err, series(&|p| error_rate(&p.stable))),
        bands: Vec::new(),
        limits: Vec::new(),
        now: now_err,
        age,
        step,
        fmt: format::percent,
        floor: 0.01,
    };
    let err_axis = if lat_a.is_some() { axes.0 } else { axes.1 };
    draw_chart(frame, err_a, t, err_chart, (x_min, x_max), &marks, err_axis);

    if let Some(lat_a) = lat_a {
        let now_p95 = c
            .pairs
            .iter()
            .rev()
            .find_map(|p| p.canary.p95_ms.filter(|v| v.is_finite()))
            .map(|v| format!("now canary {}", format::ms(v)));
        let lat_chart = ChartSpec {
            title: "Latency p95",
            lines: two_lines(series(&|p| p.canary.p95_ms), series(&|p| p.stable.p95_ms)),
            bands: Vec::new(),
            limits: Vec::new(),
            now: now_p95,
            age,
            step,
            fmt: format::ms,
            floor: 10.0,
        };
        draw_chart(frame, lat_a, t, lat_chart, (x_min, x_max), &marks, axes.1);
    }
    frame.render_widget(Paragraph::new(verdict_text), verdict_a);
}
