//! The monitoring panel: error rate and latency (p50/p95/p99) charts of one
//! environment, and the detector's verdict in one line.
//!
//! During and after a monitoring window the x axis is seconds relative to the
//! deploy (baseline left of 0, window right of it, the deploy drawn at x = 0)
//! and the baseline band and regression threshold are drawn as horizontal
//! lines. Before any window the charts show live metrics gathered from the
//! status snapshots, with x relative to now. Series are downsampled to the
//! chart's width, keeping each bucket's peak so a spike never disappears.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};

use crate::engine::EnvStatus;
use crate::monitor::{Band, Sample, VerdictKind};
use crate::tui::format;
use crate::tui::state::{EnvUi, State, Window};
use crate::tui::theme::Theme;

/// Keep at most `buckets` points of `points` (sorted by x) within
/// `[x_min, x_max]`: each bucket of the x range keeps its highest point.
pub fn downsample(
    points: &[(f64, f64)],
    x_min: f64,
    x_max: f64,
    buckets: usize,
) -> Vec<(f64, f64)> {
    let inside = points
        .iter()
        .copied()
        .filter(|(x, y)| *x >= x_min && *x <= x_max && y.is_finite());
    let span = x_max - x_min;
    if buckets == 0 || span <= 0.0 {
        return Vec::new();
    }
    let mut out: Vec<(usize, (f64, f64))> = Vec::new();
    for (x, y) in inside {
        let b = (((x - x_min) / span) * buckets as f64).floor() as usize;
        let b = b.min(buckets - 1);
        match out.last_mut() {
            Some((lb, p)) if *lb == b => {
                if y > p.1 {
                    *p = (x, y);
                }
            }
            _ => out.push((b, (x, y))),
        }
    }
    out.into_iter().map(|(_, p)| p).collect()
}

#[derive(Default)]
struct Series {
    errors: Vec<(f64, f64)>,
    p50: Vec<(f64, f64)>,
    p95: Vec<(f64, f64)>,
    p99: Vec<(f64, f64)>,
}

impl Series {
    fn add(
        &mut self,
        x: f64,
        err: Option<f64>,
        p50: Option<f64>,
        p95: Option<f64>,
        p99: Option<f64>,
    ) {
        for (v, list) in [
            (err, &mut self.errors),
            (p50, &mut self.p50),
            (p95, &mut self.p95),
            (p99, &mut self.p99),
        ] {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                list.push((x, v));
            }
        }
    }
}

fn error_rate(s: &Sample) -> Option<f64> {
    (s.requests > 0.0).then(|| s.errors / s.requests)
}

fn window_series(w: &Window) -> Series {
    let mut s = Series::default();
    for sample in w.baseline.iter().chain(w.samples.iter()) {
        s.add(
            sample.t,
            error_rate(sample),
            sample.p50_ms,
            sample.p95_ms,
            sample.p99_ms,
        );
    }
    s
}

fn live_series(ui: &EnvUi, state: &State) -> Series {
    let mut s = Series::default();
    for p in &ui.live {
        let x = (p.at - state.now).num_milliseconds() as f64 / 1000.0;
        s.add(x, p.error_rate, p.p50_ms, p.p95_ms, p.p99_ms);
    }
    s
}

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let Some(name) = state.chart_env() else {
        frame.render_widget(
            Paragraph::new(Line::styled("loading…", t.busy)).block(
                Block::bordered()
                    .border_style(t.border)
                    .title(" Monitoring "),
            ),
            area,
        );
        return;
    };
    let env = state.env_status(name);
    let empty = EnvUi::default();
    let ui = state.env_ui(name).unwrap_or(&empty);
    let window = ui.window.as_ref();

    let title = match window {
        Some(w) if w.running => format!(
            " Monitoring {name} · {} · {} left ",
            w.version,
            format::countdown(w.remaining_s(state.now))
        ),
        Some(w) => format!(" Last monitoring window · {name} · {} ", w.version),
        None => format!(" Live metrics · {name} · no monitoring window yet "),
    };
    let metrics_error = env.and_then(|e| e.metrics_error.as_deref());
    let regression = window
        .and_then(|w| w.verdict.as_ref())
        .is_some_and(|v| v.kind == VerdictKind::Regression);
    let dead = metrics_error.is_some() && !window.is_some_and(|w| w.running);
    let border = if regression || dead {
        t.error
    } else if env.is_some_and(|e| e.production) {
        t.production
    } else {
        t.border
    };
    let block = Block::bordered()
        .border_style(border)
        .title(Line::styled(title, t.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let verdict = verdict_lines(state, env, ui, metrics_error);
    let verdict_h = (verdict.len() as u16).min(inner.height);
    if inner.height < 9 {
        frame.render_widget(Paragraph::new(verdict).wrap(Wrap { trim: true }), inner);
        return;
    }
    let [err_a, lat_a, verdict_a] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(verdict_h),
    ])
    .areas(inner);

    let (series, x_min, x_max, deploy) = match window {
        Some(w) => {
            let s = window_series(w);
            // A sample covers the step ending at its `t`: start the axis
            // where the first step began.
            let step = match (w.baseline.front(), w.baseline.get(1)) {
                (Some(a), Some(b)) => b.t - a.t,
                _ => 0.0,
            };
            let first = w
                .baseline
                .front()
                .map(|s| s.t - step)
                .unwrap_or(0.0)
                .min(-60.0);
            let last = w.samples.back().map(|s| s.t).unwrap_or(0.0);
            (s, first, w.window_s.max(last).max(1.0), true)
        }
        None => {
            let s = live_series(ui, state);
            let oldest = [&s.errors, &s.p50, &s.p95, &s.p99]
                .iter()
                .filter_map(|l| l.first().map(|p| p.0))
                .fold(0.0_f64, f64::min);
            let newest = [&s.errors, &s.p50, &s.p95, &s.p99]
                .iter()
                .filter_map(|l| l.last().map(|p| p.0))
                .fold(0.0_f64, f64::max);
            (s, oldest.min(-60.0), newest, false)
        }
    };
    let buckets = (err_a.width as usize).saturating_sub(10) * 2;
    let summary = window.map(|w| w.summary.clone()).unwrap_or_default();
    let latest_age = latest_age_s(state, ui);

    // Error rate.
    let errors = downsample(&series.errors, x_min, x_max, buckets);
    let now_err = series.errors.last().map(|p| format::percent(p.1));
    let err_chart = ChartSpec {
        title: "Error rate",
        lines: vec![SeriesSpec {
            name: "errors",
            points: errors,
            style: t.series_errors,
            marker: t.marker_main,
        }],
        bands: summary.error_rate.into_iter().collect(),
        thresholds: summary
            .error_rate
            .and_then(|b| b.threshold)
            .into_iter()
            .collect(),
        now: now_err.map(|v| format!("now {v}{}", age_suffix(latest_age))),
        fmt: format::percent,
        floor: 0.01,
    };
    draw_chart(frame, err_a, t, err_chart, x_min, x_max, deploy);

    // Latency.
    let now_p95 = series.p95.last().map(|p| format::ms(p.1));
    let lat_chart = ChartSpec {
        title: "Latency",
        lines: vec![
            SeriesSpec {
                name: "p50",
                points: downsample(&series.p50, x_min, x_max, buckets),
                style: t.series_p50,
                marker: t.marker_p50,
            },
            SeriesSpec {
                name: "p95",
                points: downsample(&series.p95, x_min, x_max, buckets),
                style: t.series_p95,
                marker: t.marker_main,
            },
            SeriesSpec {
                name: "p99",
                points: downsample(&series.p99, x_min, x_max, buckets),
                style: t.series_p99,
                marker: t.marker_p99,
            },
        ],
        bands: summary.p95_ms.into_iter().collect(),
        thresholds: [summary.p50_ms, summary.p95_ms, summary.p99_ms]
            .into_iter()
            .flatten()
            .filter_map(|b| b.threshold)
            .collect(),
        now: now_p95.map(|v| format!("now p95 {v}{}", age_suffix(latest_age))),
        fmt: format::ms,
        floor: 10.0,
    };
    draw_chart(frame, lat_a, t, lat_chart, x_min, x_max, deploy);

    frame.render_widget(Paragraph::new(verdict).wrap(Wrap { trim: true }), verdict_a);
}

fn age_suffix(age: Option<i64>) -> String {
    age.map(|a| format!(" · {} ago", format::age(a)))
        .unwrap_or_default()
}

/// Age of the newest data point shown.
fn latest_age_s(state: &State, ui: &EnvUi) -> Option<i64> {
    let at = match &ui.window {
        Some(w) => {
            let t = w.samples.back().or(w.baseline.back())?.t;
            w.deploy_at + chrono::Duration::milliseconds((t * 1000.0) as i64)
        }
        None => ui.live.back()?.at,
    };
    Some((state.now - at).num_seconds())
}

fn verdict_lines<'a>(
    state: &State,
    env: Option<&EnvStatus>,
    ui: &EnvUi,
    metrics_error: Option<&str>,
) -> Vec<Line<'a>> {
    let t = &state.theme;
    let mut out = Vec::new();
    match &ui.window {
        Some(w) => {
            let line = match &w.verdict {
                None => Line::styled("… waiting for the first sample of the window", t.dim),
                Some(v) => {
                    let (head, style) = match v.kind {
                        VerdictKind::Collecting => ("… collecting".to_string(), t.dim),
                        VerdictKind::InsufficientData => {
                            ("? insufficient data".to_string(), t.warn)
                        }
                        VerdictKind::Healthy => ("✓ healthy".to_string(), t.ok),
                        VerdictKind::Regression => (
                            match v.detected_at {
                                Some(at) => format!("✗ REGRESSION at {}", format::offset(at)),
                                None => "✗ REGRESSION".to_string(),
                            },
                            t.error,
                        ),
                    };
                    Line::from(vec![
                        Span::styled(format!("{head}: "), style),
                        Span::styled(v.reason.clone(), t.text),
                    ])
                }
            };
            out.push(line);
        }
        None => {
            if metrics_error.is_none() {
                let n = ui.live.len();
                let since = ui
                    .live
                    .front()
                    .map(|p| format::age((state.now - p.at).num_seconds()))
                    .unwrap_or_else(|| "0s".into());
                let what = env.map(|e| e.name.as_str()).unwrap_or("");
                out.push(Line::styled(
                    format!(
                        "no deploy watched yet: live metrics of {what} from status snapshots ({n} points over {since})"
                    ),
                    t.dim,
                ));
            }
        }
    }
    if let Some(e) = metrics_error {
        out.push(Line::styled(format!("✗ metrics: {e}"), t.error));
    }
    out
}

struct SeriesSpec {
    name: &'static str,
    points: Vec<(f64, f64)>,
    style: Style,
    marker: Marker,
}

struct ChartSpec {
    title: &'static str,
    lines: Vec<SeriesSpec>,
    bands: Vec<Band>,
    thresholds: Vec<f64>,
    now: Option<String>,
    fmt: fn(f64) -> String,
    /// Smallest y range, so flat noise does not fill the chart.
    floor: f64,
}

fn marker_symbol(m: Marker) -> String {
    match m {
        Marker::Dot => "•".into(),
        Marker::Custom(c) => c.to_string(),
        _ => "━".into(),
    }
}

fn draw_chart(
    frame: &mut Frame,
    area: Rect,
    t: &Theme,
    spec: ChartSpec,
    x_min: f64,
    x_max: f64,
    deploy: bool,
) {
    let y_top = spec
        .lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(spec.bands.iter().map(|b| b.high))
        .chain(spec.thresholds.iter().copied())
        .fold(spec.floor, f64::max)
        * 1.15;

    let guide = marker_symbol(t.marker_guides);
    let mut legend = vec![Span::styled(format!("{} ", spec.title), t.title)];
    for s in &spec.lines {
        legend.push(Span::styled(
            format!(" {} {}", marker_symbol(s.marker), s.name),
            s.style,
        ));
    }
    if !spec.bands.is_empty() {
        legend.push(Span::styled(format!(" {guide} band"), t.band));
    }
    if !spec.thresholds.is_empty() {
        let limits: Vec<String> = spec.thresholds.iter().map(|v| (spec.fmt)(*v)).collect();
        legend.push(Span::styled(
            format!(" {guide} limit {}", limits.join("/")),
            t.threshold,
        ));
    }
    if deploy {
        legend.push(Span::styled(" │ deploy", t.deploy_line));
    }
    if let Some(now) = &spec.now {
        legend.push(Span::styled(format!("  {now}"), t.dim));
    }

    let hline = |y: f64| vec![(x_min, y), (x_max, y)];
    let guides: Vec<(Vec<(f64, f64)>, Style)> = spec
        .bands
        .iter()
        .flat_map(|b| [hline(b.low), hline(b.high)])
        .map(|l| (l, t.band))
        .chain(spec.thresholds.iter().map(|v| (hline(*v), t.threshold)))
        .chain(deploy.then(|| (vec![(0.0, 0.0), (0.0, y_top)], t.deploy_line)))
        .collect();

    let mut datasets: Vec<Dataset> = guides
        .iter()
        .map(|(pts, style)| {
            Dataset::default()
                .data(pts)
                .graph_type(GraphType::Line)
                .marker(t.marker_guides)
                .style(*style)
        })
        .collect();
    for s in &spec.lines {
        datasets.push(
            Dataset::default()
                .data(&s.points)
                .graph_type(GraphType::Line)
                .marker(s.marker)
                .style(s.style),
        );
    }

    let x_labels = vec![
        Span::styled(format::offset(x_min), t.dim),
        Span::styled(format::offset((x_min + x_max) / 2.0), t.dim),
        Span::styled(
            if deploy {
                format::offset(x_max)
            } else {
                "now".into()
            },
            t.dim,
        ),
    ];
    let y_labels = vec![
        Span::styled((spec.fmt)(0.0), t.dim),
        Span::styled((spec.fmt)(y_top / 2.0), t.dim),
        Span::styled((spec.fmt)(y_top), t.dim),
    ];
    let chart = Chart::new(datasets)
        .block(Block::new().title(Line::from(legend)))
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([x_min, x_max])
                .labels(x_labels)
                .style(t.dim),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_top])
                .labels(y_labels)
                .style(t.dim),
        );
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_keeps_peaks_and_bounds() {
        let pts: Vec<(f64, f64)> = (0..1000)
            .map(|i| (i as f64, if i == 537 { 9.0 } else { 1.0 }))
            .collect();
        let d = downsample(&pts, 0.0, 1000.0, 50);
        assert_eq!(d.len(), 50);
        assert!(d.contains(&(537.0, 9.0)), "the spike survives");
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "still sorted");
        let few = downsample(&pts[..10], 0.0, 1000.0, 50);
        assert_eq!(few.len(), 1, "ten points share one bucket of 20");
        assert!(downsample(&pts, 5.0, 5.0, 10).is_empty());
        let clipped = downsample(&pts, 100.0, 199.0, 1000);
        assert_eq!(clipped.len(), 100);
        assert!(clipped.iter().all(|p| (100.0..=199.0).contains(&p.0)));
    }
}
