//! The pending release of the selected environment: from → to version, the
//! stage it comes from, and its gates as a ✓/✗ checklist with the reasons.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph, Wrap};

use crate::domain::GateSeverity;
use crate::tui::format::{self, Part};
use crate::tui::state::{PanelState, State};

pub fn draw(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let Some(env) = state.selected_env() else {
        let text = match state.status_panel() {
            PanelState::Error { reason, .. } => {
                Line::styled(format!("status failed: {reason}"), t.error)
            }
            _ => Line::styled("loading…", t.busy),
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(
                Block::bordered()
                    .border_style(t.border)
                    .title(" Pending release "),
            ),
            area,
        );
        return;
    };

    // Narrow (a panel shrunk to nothing to promote, at 80 columns), the
    // environment's name matters more than the word "release".
    let long = format!(" Pending release → {} ", env.name);
    let head = if long.chars().count() + 2 <= area.width as usize {
        " Pending release → "
    } else {
        " Pending → "
    };
    let title = Line::from(vec![
        Span::styled(head, t.title),
        Span::styled(
            format!("{} ", env.name),
            if env.production {
                t.production
            } else {
                t.title
            },
        ),
    ]);
    let border = if env.production {
        t.production
    } else {
        t.border
    };
    let block = Block::bordered()
        .border_style(border)
        .padding(Padding::horizontal(1))
        .title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let rows = inner.height as usize;

    let mut lines: Vec<Line> = Vec::new();
    match &env.promotion {
        None => {
            let why = env
                .promotion_error
                .clone()
                .unwrap_or_else(|| format!("nothing to promote to {}", env.name));
            lines.extend(wrap(&why, t.dim, w));
        }
        Some(plan) if plan.current.as_ref() == Some(&plan.version) => {
            let text = format!(
                "nothing to promote: {} already runs {}, as {} does",
                env.name,
                plan.version,
                plan.from.as_deref().unwrap_or("the stage before")
            );
            lines.extend(wrap(&text, t.dim, w));
        }
        Some(plan) => {
            // What matters first: the versions, and whether it can go.
            let current = plan
                .current
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            // Both versions stay on screen, each cut in its middle.
            let (current, version) =
                format::clip_pair(&current, plan.version.as_str(), w.saturating_sub(3));
            lines.push(format::fit(
                vec![
                    Part::new(current, t.text).middle(),
                    Part::new(" → ", t.dim),
                    Part::new(version, t.title).middle(),
                ],
                w,
            ));
            // An action of this console on it runs now: `p` is refused
            // until it ends, and the plan (its gates read before it began)
            // is not what a promote would meet then — never "ready".
            let busy = state
                .env_ui(&env.name)
                .and_then(|u| u.task.as_ref())
                .filter(|k| k.kind != crate::tui::msg::TaskKind::Watch)
                .map(|k| k.kind.verb());
            let verdict = match (busy, plan.refusal()) {
                (Some(verb), _) => vec![
                    Part::new(format!("… {verb} running"), t.busy),
                    Part::new(": wait for it to end", t.busy).prio(1),
                ],
                (None, Some(g)) => vec![Part::new(format!("✗ blocked by {}", g.name), t.error)],
                // The engine's plan judged it (a warning gate): said by
                // name, as "p promotes" reads as if all were well.
                (None, None) if plan.warnings().any(|g| g.name == "rolled_back_from") => {
                    vec![
                        Part::new("⚠ rolled back from it", t.warn).short("⚠ rolled back"),
                        Part::new(": p promotes it again", t.warn).prio(1),
                    ]
                }
                (None, None) if plan.warnings().next().is_some() => vec![
                    Part::new("p promotes", t.warn),
                    Part::new(" after a second confirmation", t.warn).prio(1),
                ],
                (None, None) => vec![Part::new("ready: p promotes", t.ok)],
            };
            lines.push(format::fit(verdict, w));
            // A release that changes the database says so before anything else.
            let release = env.release.as_ref().filter(|r| r.repository.is_some());
            if let Some(r) = release.filter(|r| r.migration_release) {
                lines.push(format::fit(
                    vec![
                        Part::new("⚠ MIGRATIONS ", t.warn),
                        Part::new(r.migrations.join(", "), t.warn).cut(),
                    ],
                    w,
                ));
                if let Some(b) = &r.backup {
                    lines.push(format::fit(
                        vec![
                            Part::new(format!("backup {}", b.id), t.text).cut(),
                            Part::new(
                                format!(
                                    " taken {} ago",
                                    format::age((state.now - b.at).num_seconds())
                                ),
                                t.dim,
                            )
                            .prio(1),
                        ],
                        w,
                    ));
                }
            }
            // So does one that drops what the environment runs: whole when
            // it leaves the gates and a few commits their room, else cut.
            if let Some((line, loud)) =
                release.and_then(|r| r.drops_line(&env.name, plan.version.as_str()))
            {
                let style = if loud { t.error } else { t.warn };
                let whole = wrap(&line, style, w);
                if lines.len() + whole.len() + plan.gates.len() + 6 <= rows {
                    lines.extend(whole);
                } else {
                    lines.push(format::fit(vec![Part::new(line, style).cut()], w));
                }
            }
            let mut extra: Vec<Line> = Vec::new();
            let source = match &plan.from {
                Some(from) => format!("from {from}, what it runs now"),
                None => "explicit version (first stage)".to_string(),
            };
            extra.push(format::fit_str(&source, t.dim, w));
            if !plan.skips.is_empty() {
                extra.push(format::fit(
                    vec![
                        Part::new("skips ", t.warn),
                        Part::new(plan.skips.join(", "), t.warn).cut(),
                    ],
                    w,
                ));
            }
            // Short of room, each piece of evidence takes one line that
            // starts with its verdict, cut with `…` (`v` shows it whole).
            let mut extra_short = extra.clone();
            for (label, text, style, word) in evidence_lines(plan, t) {
                let mut parts = vec![Part::new(format!("{label}: "), t.dim)];
                match word {
                    Some(word) => {
                        parts.push(Part::new(word, style));
                        parts.push(Part::new(format!(" · {text}"), style).prio(1).cut());
                    }
                    None => parts.push(Part::new(text, style).cut()),
                }
                extra_short.push(format::fit(parts, w));
            }
            // Evidence no gate requires is shown for what it is.
            // Wrapped under their label: each is one sentence a human reads.
            for (label, text, style, _) in evidence_lines(plan, t) {
                let head = format!("{label}: ");
                let body = hanging(
                    &text,
                    w.saturating_sub(format::width(&head)).max(8),
                    w.saturating_sub(2).max(8),
                );
                for (k, l) in body.into_iter().enumerate() {
                    extra.push(if k == 0 {
                        Line::from(vec![
                            Span::styled(head.clone(), t.dim),
                            Span::styled(l, style),
                        ])
                    } else {
                        Line::from(vec![Span::raw("  "), Span::styled(l, style)])
                    });
                }
            }
            let longest = plan
                .gates
                .iter()
                .map(|g| g.name.chars().count())
                .max()
                .unwrap_or(0);
            // Names in a column when that leaves room for the details.
            let name_w = if w >= longest + 24 { longest } else { 0 };
            let gate_style = |g: &crate::domain::Gate| match (g.ok, g.severity) {
                (true, _) => ("✓", t.ok),
                (false, GateSeverity::Block) => ("✗", t.error),
                (false, GateSeverity::Warn) => ("!", t.warn),
            };
            // Every gate gets a line; details wrap when there is room.
            let short: Vec<Line> = plan
                .gates
                .iter()
                .map(|g| {
                    let (mark, style) = gate_style(g);
                    format::fit(
                        vec![
                            Part::new(format!("{mark} {:<name_w$}", g.name), style),
                            Part::new(format!("  {}", g.detail), if g.ok { t.text } else { style })
                                .prio(1)
                                .cut(),
                        ],
                        w,
                    )
                })
                .collect();
            let long: Vec<Line> = plan
                .gates
                .iter()
                .flat_map(|g| {
                    let (mark, style) = gate_style(g);
                    let first = format!("{mark} {:<name_w$}  ", g.name);
                    let indent = if name_w > 0 { name_w + 4 } else { 4 };
                    let body = hanging(
                        &g.detail,
                        w.saturating_sub(format::width(&first)).max(8),
                        w.saturating_sub(indent).max(8),
                    );
                    let mut out = Vec::new();
                    for (k, l) in body.into_iter().enumerate() {
                        let head = if k == 0 {
                            first.clone()
                        } else {
                            " ".repeat(indent)
                        };
                        out.push(Line::from(vec![
                            Span::styled(head, style),
                            Span::styled(l, if g.ok { t.text } else { style }),
                        ]));
                    }
                    out
                })
                .collect();
            // The blank line and "Gates" come only when everything fits.
            let header = usize::from(!plan.gates.is_empty()) * 2;
            let gates = if plan.gates.is_empty() {
                vec![Line::styled("no gates configured", t.dim)]
            } else if lines.len() + long.len() + extra.len() <= rows {
                long
            } else {
                short
            };
            if lines.len() + header + gates.len() + extra.len() <= rows {
                lines.push(Line::raw(""));
                lines.push(Line::styled("Gates", t.title));
            }
            lines.extend(gates);
            // The evidence in full when it leaves the commits room (a
            // heading and two), else in short; the commits get the rest.
            let room = rows.saturating_sub(lines.len());
            let commits_room = if release.is_some() { 4 } else { 0 };
            let extra = if extra.len() + commits_room <= room {
                extra
            } else {
                extra_short
            };
            if let Some(r) = release {
                let room = room.saturating_sub(extra.len());
                lines.extend(commit_lines(state, r, room, w));
            }
            let room = rows.saturating_sub(lines.len());
            let mut extra = extra;
            if extra.len() > room && room > 0 && plan.from.is_some() {
                // "from staging, what it runs now" goes first: the
                // dialogs say it again, and the verdict matters more.
                extra.remove(0);
            }
            let cut = extra.len() > room;
            lines.extend(extra.into_iter().take(room));
            if cut && let Some(last) = lines.last_mut() {
                mark_cut(last, w);
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The pending release's evidence that no gate shows already: the approval
/// stage's verdict, CI and review, as (label, text, style).
pub fn evidence_lines(
    plan: &crate::domain::PromotionPlan,
    t: &crate::tui::theme::Theme,
) -> Vec<(
    &'static str,
    String,
    ratatui::style::Style,
    Option<&'static str>,
)> {
    use crate::domain::CheckState;
    use crate::monitor::StageState;
    let gated = |name: &str| plan.gates.iter().any(|g| g.name == name);
    let mut out = Vec::new();
    let ev = &plan.evidence;
    if let Some(v) = ev
        .stage_verdict
        .as_ref()
        .filter(|_| !gated("healthy_stage"))
    {
        let style = match v.verdict {
            StageState::Healthy => t.ok,
            StageState::Regression => t.error,
            StageState::InsufficientData => t.dim,
        };
        out.push(("stage", v.reason.clone(), style, Some(v.verdict.label())));
    }
    for (label, c) in [("ci", &ev.ci), ("review", &ev.review)] {
        if let Some(c) = c.as_ref().filter(|_| !gated(label)) {
            let style = match c.state {
                CheckState::Success => t.ok,
                CheckState::Failure => t.error,
                CheckState::Pending => t.warn,
                CheckState::Unknown => t.dim,
            };
            out.push((
                label,
                format!("{} — {}", c.state.as_str(), c.detail),
                style,
                None,
            ));
        }
    }
    out
}

/// Panel width from which commit lines show their author.
const AUTHOR_FROM: usize = 48;
/// Columns of the author in a commit line.
const AUTHOR_W: usize = 14;

/// The commits of the release in at most `room` lines: a heading that says
/// which of how many are shown, then one line each (short sha, age, author,
/// subject) from the scroll position; or why the repository cannot tell.
fn commit_lines(
    state: &State,
    r: &crate::engine::ReleaseFacts,
    room: usize,
    w: usize,
) -> Vec<Line<'static>> {
    let t = &state.theme;
    let mut out = vec![Line::raw("")];
    if room < 3 {
        return Vec::new();
    }
    if let Some(e) = &r.git_error {
        out.push(Line::styled("Commits", t.title));
        out.extend(wrap(e, t.error, w).into_iter().take(room.saturating_sub(2)));
        return out;
    }
    if r.commits.is_empty() {
        out.push(format::fit_str(
            "Commits: none between the two versions",
            t.dim,
            w,
        ));
        return out;
    }
    let n = r.commits.len();
    let fits = room.saturating_sub(2).max(1);
    let first = state.commit_scroll.min(n.saturating_sub(fits.min(n)));
    let last = (first + fits).min(n);
    let listed = if r.commits_capped {
        format!(" ({} of {} listed)", n, r.commits_total)
    } else {
        String::new()
    };
    let heading = if first == 0 && last == n {
        format!("Commits ({n}){listed}")
    } else {
        format!("Commits {}–{last} of {n}{listed}", first + 1)
    };
    let more = if last < n || first > 0 {
        "  ↑↓ scroll"
    } else {
        ""
    };
    out.push(format::fit(
        vec![Part::new(heading, t.title), Part::new(more, t.dim).prio(2)],
        w,
    ));
    for c in &r.commits[first..last] {
        let age = format::age((state.now - c.date.with_timezone(&chrono::Utc)).num_seconds());
        // Cut and padded by columns: a name in CJK takes two a character,
        // and counted in characters it pushed the subjects of its lines
        // out of line with the others.
        let author = format::clip(&c.author, AUTHOR_W);
        let author = format!(
            "{author}{}",
            " ".repeat(AUTHOR_W.saturating_sub(format::width(&author)))
        );
        // The same columns on every line: the author only where the panel
        // is wide enough to leave the subject room.
        let mut parts = vec![
            Part::new(c.short().to_string(), t.dim),
            Part::new(format!(" {age:>4}"), t.dim),
        ];
        if w >= AUTHOR_FROM {
            parts.push(Part::new(format!(" {author}"), t.dim));
        }
        parts.push(Part::new(format!(" {}", c.subject), t.text).cut());
        out.push(format::fit(parts, w));
    }
    out
}

/// Words of `text` in lines: the first `first` columns wide, the others `rest`.
/// The wrapping drops leading spaces, so the first line is a prefix of the
/// text without them: the rest is found after it there, never by a byte
/// count into the untrimmed text (a detail starting with a space and
/// holding `é` cut a character in two, and the console panicked).
fn hanging(text: &str, first: usize, rest: usize) -> Vec<String> {
    let text = text.trim_start();
    let mut lines = format::wrap_words(text, first);
    if lines.len() > 1 {
        let head = lines.remove(0);
        let Some(tail) = text.strip_prefix(head.as_str()) else {
            lines.insert(0, head);
            return lines;
        };
        lines = format::wrap_words(tail.trim_start(), rest);
        lines.insert(0, head);
    }
    lines
}

fn wrap(text: &str, style: ratatui::style::Style, w: usize) -> Vec<Line<'static>> {
    format::wrap_words(text, w)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
}

/// End `line` with `…`: more text follows that the panel has no room for.
fn mark_cut(line: &mut Line<'static>, w: usize) {
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    if text.ends_with('…') || w == 0 {
        return;
    }
    let mut room = format::width(text.trim_end()).min(w - 1);
    if room < format::width(text.trim_end()) {
        // Cut between words, so the last one shown is whole.
        let cols: Vec<(usize, char)> = text
            .chars()
            .scan(0, |at, c| {
                let here = *at;
                *at += format::width(c.encode_utf8(&mut [0; 4]));
                Some((here, c))
            })
            .collect();
        if let Some(&(at, _)) = cols
            .iter()
            .rev()
            .find(|(at, c)| *c == ' ' && *at <= room && *at > w / 2)
        {
            room = at + 1;
        }
    }
    let mut used = 0;
    let mut out: Vec<Span<'static>> = Vec::new();
    for s in &line.spans {
        let mut piece = String::new();
        for c in s.content.chars() {
            let cw = format::width(c.encode_utf8(&mut [0; 4]));
            if used + cw > room {
                break;
            }
            used += cw;
            piece.push(c);
        }
        if !piece.is_empty() {
            out.push(Span::styled(piece, s.style));
        }
    }
    let style = line.spans.last().map(|s| s.style).unwrap_or_default();
    out.push(Span::styled("…", style));
    *line = Line::from(out);
}

#[cfg(test)]
mod tests {
    use super::{commit_lines, hanging};
    use crate::tui::format::width;
    use crate::tui::tests::fixture::{console, t0};

    /// The subjects of the commit list start in one column whatever
    /// script the authors' names are written in.
    #[test]
    fn commit_subjects_line_up_under_authors_in_any_script() {
        let commit = |author: &str, subject: &str| crate::domain::release::Commit {
            sha: "a".repeat(40),
            author: author.into(),
            date: (t0() - chrono::Duration::hours(2)).fixed_offset(),
            subject: subject.into(),
        };
        let facts = crate::engine::ReleaseFacts {
            repository: Some("/srv/shop".into()),
            commits: vec![
                commit("Alice Example", "latin"),
                commit("王小明", "short cjk"),
                commit("山田太郎山田太郎山田太郎", "long cjk"),
                commit("Zoë Ångström-Éclair", "long latin"),
                commit("❤️❤️❤️❤️❤️❤️❤️❤️ Alice", "emoji"),
            ],
            commits_total: 5,
            commits_capped: false,
            migrations: Vec::new(),
            migration_release: false,
            git_error: None,
            backup: None,
            dropped: Vec::new(),
            dropped_total: 0,
            dropped_capped: false,
            dropped_migrations: Vec::new(),
        };
        let s = console();
        let lines = commit_lines(&s, &facts, 10, 80);
        let starts: Vec<usize> = ["latin", "short cjk", "long cjk", "long latin", "emoji"]
            .iter()
            .map(|subject| {
                let line = lines
                    .iter()
                    .find(|l| {
                        l.spans
                            .last()
                            .is_some_and(|sp| sp.content.trim() == *subject)
                    })
                    .unwrap_or_else(|| panic!("no line for {subject}: {lines:?}"));
                let n = line.spans.len();
                line.spans[..n - 1]
                    .iter()
                    .map(|sp| width(&sp.content))
                    .sum()
            })
            .collect();
        assert!(starts.iter().all(|w| *w == starts[0]), "{starts:?}");
    }

    #[test]
    fn hanging_text_with_a_leading_space_keeps_every_character() {
        assert_eq!(hanging(" aé bc", 3, 3), ["aé", "bc"]);
        assert_eq!(
            hanging("  CI red: build é failed", 10, 20),
            ["CI red:", "build é failed"]
        );
        assert_eq!(hanging("ab cd", 2, 5), ["ab", "cd"]);
    }
}
