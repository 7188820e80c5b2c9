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

use crate::domain::WindowVerdict;
use crate::engine::{EnvStatus, LastWindow};
use crate::monitor::{Band, Sample, VerdictKind};
use crate::tui::format::{self, Part};
use crate::tui::msg::TaskKind;
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

pub(super) fn error_rate(s: &Sample) -> Option<f64> {
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
    if let Some(c) = super::monitor_canary::shown(ui) {
        super::monitor_canary::draw(state, frame, area, name, c);
        return;
    }
    let window = ui.window.as_ref();

    let title_w = area.width.saturating_sub(4) as usize;
    let title = match window {
        Some(w) if w.running => format::fit(
            vec![
                Part::new(" Monitoring", t.title).short(" Window"),
                Part::new(format!(" {name}"), t.title),
                Part::new(format!(" · {}", w.version), t.title)
                    .prio(1)
                    .middle(),
                Part::new(
                    format!(" · {} left ", format::countdown(w.remaining_s(state.now))),
                    t.title,
                ),
            ],
            title_w,
        ),
        Some(w) => format::fit(
            vec![
                Part::new(" Last monitoring window", t.title).short(" Last window"),
                Part::new(format!(" · {name}"), t.title),
                Part::new(format!(" · {} ", w.version), t.title).middle(),
            ],
            title_w,
        ),
        // A window another process ran and ended: its verdict, from the store.
        None if stored_window(env, ui).is_some() => {
            let w = stored_window(env, ui).expect("checked");
            format::fit(
                vec![
                    Part::new(" Last monitoring window", t.title).short(" Last window"),
                    Part::new(format!(" · {name}"), t.title),
                    Part::new(format!(" · {} ", w.version), t.title).middle(),
                ],
                title_w,
            )
        }
        // A window another console (or a `watch`) runs is no "no window":
        // the title says whose it is, as the environment's state does.
        None => {
            let note = match env.and_then(|e| e.watcher.as_deref()) {
                Some(by) => {
                    let who = by.split(" (").next().unwrap_or(by);
                    Part::new(format!(" · window watched by {who}"), t.title)
                        .short(format!(" · watched by {who}"))
                }
                None => Part::new(" · no monitoring window yet", t.title),
            };
            format::fit(
                vec![
                    Part::new(" Live metrics", t.title),
                    Part::new(format!(" · {name}"), t.title),
                    note.prio(1),
                    Part::new(" ", t.title),
                ],
                title_w,
            )
        }
    };
    let metrics_error = env.and_then(|e| e.metrics_error.as_deref());
    let regression = window
        .and_then(|w| w.verdict.as_ref())
        .is_some_and(|v| v.kind == VerdictKind::Regression)
        // A stored regression is an alarm only while the environment still
        // runs what it caught: once rolled back (or moved on), it is history.
        || stored_window(env, ui).is_some_and(|w| {
            w.verdict == WindowVerdict::Regression
                && env.is_some_and(|e| e.version.as_ref() == Some(&w.version))
        });
    let dead = metrics_error.is_some() && !window.is_some_and(|w| w.running);
    let border = if regression || dead {
        t.error
    } else if env.is_some_and(|e| e.production) {
        t.production
    } else {
        t.border
    };
    let mut block = Block::bordered().border_style(border).title(title);

    // Where the verdict goes: inside, wrapped over up to three lines, when
    // the charts keep their four rows; else in the bottom border, one line.
    let inner_h = area.height.saturating_sub(2);
    let inner_w = area.width.saturating_sub(2) as usize;
    let verdict = verdict_parts(state, env, ui, metrics_error);
    let full: String = verdict.iter().flatten().map(|p| p.text.as_str()).collect();
    let wrapped: Vec<Vec<String>> = verdict
        .iter()
        .map(|parts| {
            let text: String = parts.iter().map(|p| p.text.as_str()).collect();
            format::wrap_words(&text, inner_w)
        })
        .collect();
    let wrapped_h: u16 = wrapped.iter().map(|l| l.len() as u16).sum();
    let charts_need = 2 * CHART_MIN + 2;
    let inside = wrapped_h <= 3 && inner_h >= charts_need + wrapped_h;
    if !inside && !full.is_empty() {
        let mut parts: Vec<Part> = verdict.into_iter().flatten().collect();
        parts.insert(0, Part::new(" ", t.text));
        parts.push(Part::new(" · v: in full", t.dim).prio(9));
        parts.push(Part::new(" ", t.text));
        block = block.title_bottom(format::fit(parts, inner_w.saturating_sub(2)));
    }
    // The baseline the verdict uses, under it, when the charts can spare
    // the rows (else it is in the detail view).
    let note: Vec<String> = window
        .filter(|w| !w.baseline_note.is_empty())
        .map(|w| format::wrap_words(&w.baseline_note, inner_w))
        .unwrap_or_default();
    let note_h = note.len() as u16;
    let show_note = inside && note_h <= 2 && inner_h >= charts_need + 4 + wrapped_h + note_h;
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let verdict_h = match (inside, show_note) {
        (false, _) => 0,
        (true, false) => wrapped_h,
        (true, true) => wrapped_h + note_h,
    };
    let styles: Vec<Style> = verdict_style(state, ui, metrics_error);
    let mut verdict_text: Vec<Line> = wrapped
        .into_iter()
        .zip(styles)
        .flat_map(|(lines, style)| lines.into_iter().map(move |l| Line::styled(l, style)))
        .collect();
    if show_note {
        verdict_text.extend(note.into_iter().map(|l| Line::styled(l, t.dim)));
    }

    let charts_h = inner.height.saturating_sub(verdict_h);
    if charts_h < CHART_MIN {
        frame.render_widget(
            Paragraph::new(verdict_text).wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let ChartAreas {
        err: err_a,
        lat: lat_a,
        verdict: verdict_a,
        axes,
    } = chart_areas(inner, charts_h, verdict_h);

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
    let mut marks = Vec::new();
    if deploy {
        marks.push(Mark {
            x: 0.0,
            name: "deploy",
            style: t.deploy_line,
            marker: t.marker_deploy,
        });
    }
    if let Some(at) = window
        .and_then(|w| w.verdict.as_ref())
        .filter(|v| v.kind == VerdictKind::Regression)
        .and_then(|v| v.detected_at)
    {
        marks.push(Mark {
            x: at,
            name: "verdict",
            style: t.verdict_line,
            marker: t.marker_verdict,
        });
    }
    if let Some(at) = window.and_then(|w| w.rollback_t) {
        marks.push(Mark {
            x: at,
            name: "rollback",
            style: t.rollback_line,
            marker: t.marker_rollback,
        });
    }

    // Error rate.
    let errors = downsample(&series.errors, x_min, x_max, buckets);
    // Each figure's own age: a step without requests adds no point, and
    // the figure shown is the last known one (in a window too: its x is
    // seconds from the deploy).
    let age_of = |line: &[(f64, f64)]| {
        let (x, _) = *line.last()?;
        Some(match window {
            Some(w) => (state.now
                - crate::domain::clock::after(w.deploy_at, crate::domain::clock::secs_f64(x)))
            .num_seconds()
            .max(0),
            None => (-x).round().max(0.0) as i64,
        })
    };
    // A window that ended has no "now": its last figures are the end's
    // (at 80 columns the age beside them goes first, and "now 9.12%" read
    // as current after the rollback had brought it back to 0.9%).
    let now_word = if window.is_some_and(|w| !w.running) {
        "end"
    } else {
        "now"
    };
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
        limits: summary
            .error_rate
            .and_then(|b| b.threshold)
            .map(|v| vec![("", v)])
            .unwrap_or_default(),
        now: now_err.map(|v| format!("{now_word} {v}")),
        age: age_of(&series.errors),
        step: step_of(series.errors.iter().map(|p| p.0)),
        fmt: format::percent,
        floor: 0.01,
    };
    let err_axis = if lat_a.is_some() { axes.0 } else { axes.1 };
    draw_chart(frame, err_a, t, err_chart, (x_min, x_max), &marks, err_axis);

    // Latency.
    if let Some(lat_a) = lat_a {
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
            limits: [
                ("p50 ", summary.p50_ms),
                ("p95 ", summary.p95_ms),
                ("p99 ", summary.p99_ms),
            ]
            .into_iter()
            .filter_map(|(n, b)| Some((n, b?.threshold?)))
            .collect(),
            now: now_p95.map(|v| format!("{now_word} p95 {v}")),
            age: age_of(&series.p95),
            step: step_of(series.p95.iter().map(|p| p.0)),
            fmt: format::ms,
            floor: 10.0,
        };
        draw_chart(frame, lat_a, t, lat_chart, (x_min, x_max), &marks, axes.1);
    }

    frame.render_widget(Paragraph::new(verdict_text), verdict_a);
}

/// Rows a chart needs: its legend and four rows of plot.
pub(super) const CHART_MIN: u16 = 5;

/// A vertical line on the charts: the deploy, the verdict, the rollback,
/// a canary's steps. Marks of one name share one legend entry.
pub(super) struct Mark {
    pub x: f64,
    pub name: &'static str,
    pub style: Style,
    pub marker: Marker,
}

/// The styles of the lines [`verdict_parts`] returns, for the wrapped form.
fn verdict_style(state: &State, ui: &EnvUi, metrics_error: Option<&str>) -> Vec<Style> {
    let t = &state.theme;
    let mut out = Vec::new();
    match &ui.window {
        Some(w) => out.push(match w.verdict.as_ref().map(|v| v.kind) {
            Some(VerdictKind::Regression) => t.error,
            Some(VerdictKind::Healthy) if !w.running => t.ok,
            Some(VerdictKind::InsufficientData) => t.warn,
            _ => t.text,
        }),
        None if metrics_error.is_none() => out.push(t.dim),
        None => {}
    }
    if metrics_error.is_some() {
        out.push(t.error);
    }
    out
}

/// A detector's reason as parts to fit: its findings one by one (the
/// first matters most, the later ones go first), and when it is still
/// warming up, from when it will judge — dropped before any finding.
/// `warm-up: no verdict before t=+30s; so far error rate 4.4% vs 0.36%`
/// reads `: error rate 4.4% vs 0.36% — judging from t=+30s`.
pub(super) fn evidence(reason: &str, style: Style) -> Vec<Part> {
    let (body, judging) = match reason.split_once("; so far ") {
        Some((head, rest)) => {
            let from = head
                .split_once("before ")
                .map(|(_, t)| format!(" — judging from {t}"));
            (rest, from)
        }
        None => (reason, None),
    };
    // `no significant change over 37s: a, b` lists its findings after ": ".
    let body = body
        .strip_prefix("no significant change over ")
        .and_then(|b| b.split_once(": ").map(|(_, r)| r))
        .unwrap_or(body);
    // The head says `? insufficient data` already: the detector's reason
    // starts with it too, and read `insufficient data: insufficient data: …`.
    let body = body.strip_prefix("insufficient data: ").unwrap_or(body);
    let mut out: Vec<Part> = body
        .split(", ")
        .enumerate()
        .map(|(i, piece)| {
            let sep = if i == 0 { ": " } else { ", " };
            let part = Part::new(format!("{sep}{piece}"), style);
            // The first finding is cut with `…` rather than dropped: "no
            // regression so far" alone hides an error rate of 6% vs 0.4%.
            if i == 0 {
                part.prio(1).cut()
            } else {
                part.prio(3 + i as u8)
            }
        })
        .collect();
    if let Some(j) = judging {
        out.push(Part::new(j, style).prio(2));
    }
    out
}

/// The verdict in words, one `Vec<Part>` per line. Nothing is called
/// healthy before the window has ended: until then the evidence so far is
/// shown in neutral colours.
pub fn verdict_parts(
    state: &State,
    env: Option<&EnvStatus>,
    ui: &EnvUi,
    metrics_error: Option<&str>,
) -> Vec<Vec<Part>> {
    let t = &state.theme;
    let mut out = Vec::new();
    match &ui.window {
        Some(w) => {
            let elapsed = (state.now - w.deploy_at).num_seconds().max(0);
            let line = match &w.verdict {
                None => vec![Part::new(
                    "… waiting for the first sample of the window",
                    t.dim,
                )],
                Some(v) => {
                    let (head, style) = match v.kind {
                        VerdictKind::Collecting => {
                            (format!("… collecting, {}", format::age(elapsed)), t.text)
                        }
                        VerdictKind::InsufficientData => {
                            ("? insufficient data".to_string(), t.warn)
                        }
                        VerdictKind::Healthy if w.running => (
                            format!("… no regression so far, {} in", format::age(elapsed)),
                            t.text,
                        ),
                        VerdictKind::Healthy => ("✓ healthy".to_string(), t.ok),
                        VerdictKind::Regression => (
                            match v.detected_at {
                                Some(at) => format!("✗ REGRESSION at {}", format::offset(at)),
                                None => "✗ REGRESSION".to_string(),
                            },
                            t.error,
                        ),
                    };
                    let mut line = vec![Part::new(head, style)];
                    line.extend(evidence(&v.reason, t.text));
                    line
                }
            };
            out.push(line);
        }
        None if stored_window(env, ui).is_some() => {
            let w = stored_window(env, ui).expect("checked");
            let (head, style) = match w.verdict {
                WindowVerdict::Healthy => ("✓ healthy", t.ok),
                WindowVerdict::Regression => ("✗ REGRESSION", t.error),
                WindowVerdict::InsufficientData => ("? insufficient data", t.warn),
                WindowVerdict::Interrupted | WindowVerdict::Monitoring => ("– interrupted", t.warn),
            };
            let ended = format::age((state.now - w.finished_at).num_seconds().max(0));
            let mut line = vec![
                Part::new(head, style),
                Part::new(format!(" · ended {ended} ago"), t.dim).prio(2),
            ];
            line.extend(evidence(&w.reason, t.text));
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
                // Someone else's window (another console, a `watch`).
                let elsewhere = env
                    .and_then(|e| e.watcher.as_deref())
                    .filter(|_| !ui.task.as_ref().is_some_and(|t| t.kind == TaskKind::Watch));
                let head = match elsewhere {
                    Some(by) => format!("watched by {by}"),
                    None => "no deploy watched yet".into(),
                };
                out.push(vec![
                    Part::new(head, t.dim),
                    Part::new(
                        format!(
                            ": live metrics of {what} from status snapshots ({n} point{} over {since})",
                            if n == 1 { "" } else { "s" }
                        ),
                        t.dim,
                    )
                    .prio(1),
                ]);
            }
        }
    }
    if let Some(e) = metrics_error {
        out.push(vec![
            Part::new("✗ metrics", t.error),
            Part::new(format!(": {e}"), t.error).prio(1),
        ]);
    }
    out
}

/// The window the store says ended last on `env`, when this console has
/// none of its own to show and nobody watches one now (another console, a
/// `watch` or a pipeline ran it): shown as it would be after a restart.
fn stored_window<'a>(env: Option<&'a EnvStatus>, ui: &EnvUi) -> Option<&'a LastWindow> {
    let env = env?;
    if ui.window.is_some() || env.watcher.is_some() {
        return None;
    }
    env.last_window.as_ref()
}

/// A guide line: its points, style and marker.
type Guide = (Vec<(f64, f64)>, Style, Marker);

pub(super) struct SeriesSpec {
    pub name: &'static str,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    pub marker: Marker,
}

pub(super) struct ChartSpec {
    pub title: &'static str,
    pub lines: Vec<SeriesSpec>,
    pub bands: Vec<Band>,
    /// `(which, level)`: the level above which the detector calls a regression.
    pub limits: Vec<(&'static str, f64)>,
    pub now: Option<String>,
    /// Age of the newest point, seconds.
    pub age: Option<i64>,
    /// Seconds between the series' points (its metrics step), when known.
    pub step: Option<f64>,
    pub fmt: fn(f64) -> String,
    /// Smallest y range, so flat noise does not fill the chart.
    pub floor: f64,
}

/// Seconds between the last points of a series (their median spacing):
/// the metrics step as the console sees it. `None` with fewer than two.
pub(super) fn step_of(xs: impl DoubleEndedIterator<Item = f64>) -> Option<f64> {
    let last: Vec<f64> = xs.rev().take(11).collect();
    let mut gaps: Vec<f64> = last
        .windows(2)
        .map(|w| w[0] - w[1])
        .filter(|g| *g > 0.0)
        .collect();
    format::median(&mut gaps)
}

/// Whether a figure `age` seconds old is no longer "now": older than a
/// couple of metrics steps (and a poll's lag), 30 s when the step is unknown.
fn stale(age: i64, step: Option<f64>) -> bool {
    let after = step.map_or(30.0, |s| (2.0 * s + 2.0).max(5.0));
    age as f64 > after
}

/// How a marker shows in a legend; `vertical` for the deploy-like lines.
fn marker_symbol(m: Marker, vertical: bool) -> String {
    match m {
        Marker::Dot => "•".into(),
        Marker::Custom(c) => c.to_string(),
        _ if vertical => "│".into(),
        _ => "━".into(),
    }
}

pub(super) fn draw_chart(
    frame: &mut Frame,
    area: Rect,
    t: &Theme,
    spec: ChartSpec,
    (x_min, x_max): (f64, f64),
    marks: &[Mark],
    x_axis: TimeAxis,
) {
    // A compact axis is one row of labels under the plot.
    let (area, compact_row) = match x_axis {
        TimeAxis::Compact if area.height >= CHART_MIN => (
            Rect {
                height: area.height - 1,
                ..area
            },
            Some(Rect {
                y: area.bottom() - 1,
                height: 1,
                ..area
            }),
        ),
        _ => (area, None),
    };
    let y_top = spec
        .lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(spec.bands.iter().map(|b| b.high))
        .chain(spec.limits.iter().map(|l| l.1))
        .fold(spec.floor, f64::max)
        * 1.15;

    // The legend drops its least useful parts first; the limit values stay
    // whole or go together.
    // The series' names (p50/p95/p99) are what the lines mean: they stay
    // at every size, at worst without their spaces.
    let mut legend = vec![Part::new(format!("{} ", spec.title), t.title)];
    for s in &spec.lines {
        let symbol = marker_symbol(s.marker, false);
        legend.push(
            Part::new(format!(" {symbol} {}", s.name), s.style)
                .short(format!(" {symbol}{}", s.name)),
        );
    }
    let band_text = format!(" {} band", marker_symbol(t.marker_band, false));
    if !spec.bands.is_empty() {
        legend.push(Part::new(band_text.clone(), t.band).prio(5));
    }
    let (mut limits_text, mut p95_limit_text) = (None, None);
    if !spec.limits.is_empty() {
        let all: Vec<String> = spec
            .limits
            .iter()
            .map(|(n, v)| format!("{n}{}", (spec.fmt)(*v)))
            .collect();
        let mut part = Part::new(
            format!(
                " {} limit {}",
                marker_symbol(t.marker_limit, false),
                all.join(" ")
            ),
            t.threshold,
        )
        .prio(2);
        if let Some((n, v)) = spec.limits.iter().find(|l| l.0 == "p95 ") {
            let short = format!(
                " {} limit {n}{}",
                marker_symbol(t.marker_limit, false),
                (spec.fmt)(*v)
            );
            p95_limit_text = Some(short.clone());
            part = part.short(short);
        }
        limits_text = Some(part.text.clone());
        legend.push(part);
    }
    for (i, m) in marks.iter().enumerate() {
        if marks[..i].iter().any(|o| o.name == m.name) {
            continue;
        }
        legend.push(
            Part::new(
                format!(" {} {}", marker_symbol(m.marker, true), m.name),
                m.style,
            )
            .prio(3),
        );
    }
    match (&spec.now, spec.age) {
        // A source gone quiet: its last figure is not "now" but as old as
        // it is, said in the same calm words (the age part beside a "now"
        // is the first to go on a narrow chart).
        (Some(now), Some(a)) if now.starts_with("now ") && stale(a, spec.step) => {
            let then = format!("{} ago", format::age(a));
            legend.push(Part::new(format!("  {then}{}", &now[3..]), t.dim).prio(1));
        }
        (Some(now), age) => {
            legend.push(Part::new(format!("  {now}"), t.dim).prio(1));
            if let Some(a) = age {
                legend.push(Part::new(format!(" · {} ago", format::age(a)), t.dim).prio(6));
            }
        }
        (None, _) => {}
    }
    let legend = format::fit(legend, area.width as usize);
    // A guide line is drawn only when the legend says what it is: where
    // the legend had to drop the band or the limits (or keep only p95's),
    // unnamed dotted lines across a small chart read as data.
    let shown = |text: &Option<String>| {
        text.as_ref()
            .is_some_and(|x| legend.spans.iter().any(|s| s.content == x.as_str()))
    };
    let bands_shown = shown(&Some(band_text));
    let limits_shown: Vec<f64> = if shown(&limits_text) {
        spec.limits.iter().map(|l| l.1).collect()
    } else if shown(&p95_limit_text) {
        spec.limits
            .iter()
            .filter(|l| l.0 == "p95 ")
            .map(|l| l.1)
            .collect()
    } else {
        Vec::new()
    };

    let hline = |y: f64| vec![(x_min, y), (x_max, y)];
    let guides: Vec<Guide> = spec
        .bands
        .iter()
        .filter(|_| bands_shown)
        .flat_map(|b| [hline(b.low), hline(b.high)])
        .map(|l| (l, t.band, t.marker_band))
        .chain(
            limits_shown
                .iter()
                .map(|v| (hline(*v), t.threshold, t.marker_limit)),
        )
        .chain(
            marks
                .iter()
                .filter(|m| m.x >= x_min && m.x <= x_max)
                .map(|m| (vec![(m.x, 0.0), (m.x, y_top)], m.style, m.marker)),
        )
        .collect();

    let mut datasets: Vec<Dataset> = guides
        .iter()
        .map(|(pts, style, marker)| {
            Dataset::default()
                .data(pts)
                .graph_type(GraphType::Line)
                .marker(*marker)
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

    // Live metrics end at now; a window or a canary at its own offset.
    let deploy = marks.iter().any(|m| m.name == "deploy" || m.name == "step");
    let ends = [
        format::offset(x_min),
        format::offset((x_min + x_max) / 2.0),
        if deploy {
            format::offset(x_max)
        } else {
            "now".into()
        },
    ];
    let x_labels = if x_axis == TimeAxis::Full {
        ends.iter()
            .map(|l| Span::styled(l.clone(), t.dim))
            .collect()
    } else {
        Vec::new()
    };
    let y_texts = [(spec.fmt)(0.0), (spec.fmt)(y_top / 2.0), (spec.fmt)(y_top)];
    if let Some(row) = compact_row {
        // The plot starts right of the y labels and the axis line.
        let label_w = y_texts.iter().map(|l| format::width(l)).max().unwrap_or(0) as u16;
        let plot = Rect {
            x: row.x + (label_w + 1).min(row.width),
            width: row.width.saturating_sub(label_w + 1),
            ..row
        };
        let deploy_at = marks
            .iter()
            .find(|m| m.name == "deploy")
            .map(|m| m.x)
            .filter(|x| *x > x_min && *x < x_max);
        let text = compact_axis(&ends, deploy_at, (x_min, x_max), plot.width as usize);
        frame.render_widget(Paragraph::new(Line::styled(text, t.dim)), plot);
    }
    let y_labels = y_texts
        .into_iter()
        .map(|l| Span::styled(l, t.dim))
        .collect::<Vec<_>>();
    let chart = Chart::new(datasets)
        .block(Block::new().title(legend))
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

/// A chart's time axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TimeAxis {
    None,
    /// The axis line and its labels (2 rows).
    Full,
    /// One row of labels, `-10m … -5m … now` or `-1m … ↑deploy … +5m`,
    /// when the panel cannot spare two (80×24).
    Compact,
}

/// The compact axis's text, `width` columns: the start at the left, the
/// end at the right, and between them the deploy (`↑deploy` under its
/// line) or else the middle; a label that would touch another is left out.
pub(super) fn compact_axis(
    [first, middle, last]: &[String; 3],
    deploy_at: Option<f64>,
    (x_min, x_max): (f64, f64),
    width: usize,
) -> String {
    let mut row = vec![' '; width];
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut put = |row: &mut Vec<char>, at: usize, text: &str| {
        let w = text.chars().count();
        let free = at + w <= width && taken.iter().all(|&(a, b)| at + w < a || b < at);
        if free {
            for (i, c) in text.chars().enumerate() {
                row[at + i] = c;
            }
            taken.push((at, at + w));
        }
    };
    put(&mut row, 0, first);
    put(&mut row, width.saturating_sub(last.chars().count()), last);
    let span = (x_max - x_min).max(f64::EPSILON);
    let col = |x: f64| (((x - x_min) / span) * (width.saturating_sub(1)) as f64).round() as usize;
    match deploy_at {
        Some(x) => put(&mut row, col(x), "↑deploy"),
        None => {
            let w = middle.chars().count();
            put(&mut row, (width / 2).saturating_sub(w / 2), middle)
        }
    }
    row.into_iter().collect()
}

/// Where the error-rate chart, the latency chart (when two fit) and the
/// verdict go in a monitoring panel's `inner` area, and which time axis
/// each chart gets: `(upper, lower)`.
pub(super) struct ChartAreas {
    pub err: Rect,
    pub lat: Option<Rect>,
    pub verdict: Rect,
    pub axes: (TimeAxis, TimeAxis),
}

/// The panel's layout, shared by the deploy window and the canary's.
pub(super) fn chart_areas(inner: Rect, charts_h: u16, verdict_h: u16) -> ChartAreas {
    let two = charts_h >= 2 * CHART_MIN;
    // The x axis (2 rows) goes under the lower chart first, then both; a
    // row to spare gives the lower chart the compact one, and with none
    // (80×24 under a banner) the lower chart gives a row of its plot for
    // it: a chart without its time is harder to read than a shorter one.
    let below = |spare: u16| {
        if spare >= 2 {
            TimeAxis::Full
        } else if spare == 1 {
            TimeAxis::Compact
        } else {
            TimeAxis::None
        }
    };
    let axes = if two {
        let lower = below((charts_h - 2 * CHART_MIN).max(1));
        let upper = if charts_h >= 2 * CHART_MIN + 4 {
            TimeAxis::Full
        } else {
            TimeAxis::None
        };
        (upper, lower)
    } else {
        (TimeAxis::None, below(charts_h.saturating_sub(CHART_MIN)))
    };
    if two {
        let lower_only = match (axes.0, axes.1) {
            (TimeAxis::None, TimeAxis::Full) => 2,
            (TimeAxis::None, TimeAxis::Compact) => 1,
            _ => 0,
        };
        let top_h = ((charts_h - lower_only) / 2).max(CHART_MIN);
        let [err, lat, verdict] = Layout::vertical([
            Constraint::Length(top_h),
            Constraint::Fill(1),
            Constraint::Length(verdict_h),
        ])
        .areas(inner);
        ChartAreas {
            err,
            lat: Some(lat),
            verdict,
            axes,
        }
    } else {
        let [err, verdict] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(verdict_h)]).areas(inner);
        ChartAreas {
            err,
            lat: None,
            verdict,
            axes,
        }
    }
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

#[cfg(test)]
mod axis_tests {
    use super::*;

    fn labels() -> [String; 3] {
        ["-10m".into(), "-5m".into(), "now".into()]
    }

    #[test]
    fn the_compact_axis_puts_start_middle_and_end_on_one_row() {
        let row = compact_axis(&labels(), None, (-600.0, 0.0), 30);
        assert_eq!(row.chars().count(), 30);
        assert!(row.starts_with("-10m") && row.ends_with("now"), "{row:?}");
        assert_eq!(row.find("-5m"), Some(14), "{row:?}");
        // The deploy replaces the middle, under its line.
        let row = compact_axis(
            &["-1m".into(), "+1m".into(), "+5m".into()],
            Some(0.0),
            (-60.0, 300.0),
            37,
        );
        assert_eq!(row.chars().position(|c| c == '↑'), Some(6), "{row:?}");
        assert!(!row.contains("+1m"), "{row:?}");
        // Too narrow for a label: it is left out, never overlapped.
        let row = compact_axis(&labels(), Some(-590.0), (-600.0, 0.0), 12);
        assert_eq!(row, "-10m     now");
    }

    #[test]
    fn a_spare_row_gives_the_lower_chart_the_compact_axis() {
        let at = |h: u16| {
            let a = chart_areas(Rect::new(0, 0, 44, h), h, 0);
            (a.axes, a.err.height, a.lat.map(|l| l.height))
        };
        use TimeAxis::*;
        // No row to spare: the latency chart gives one of its plot.
        assert_eq!(at(10), ((None, Compact), 5, Some(5)));
        assert_eq!(at(11), ((None, Compact), 5, Some(6)));
        assert_eq!(at(12), ((None, Full), 5, Some(7)));
        assert_eq!(at(14), ((Full, Full), 7, Some(7)));
        assert_eq!(at(6), ((None, Compact), 6, Option::None));
        assert_eq!(at(5), ((None, None), 5, Option::None));
    }
}
