//! Confirmation dialogs: each names exactly what Enter will do, and says
//! which key confirms and which cancels. Production and rollbacks get the
//! danger border.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::domain::{ActionKind, Decision, EnvState, Outcome, Version};
use crate::tui::format;
use crate::tui::keymap;
use crate::tui::state::{Dialog, Pending, State};

/// How long a deploy of `env` takes: the median of its recent finished
/// deploys and rollbacks in the audit log, and how many there were.
pub fn expected_deploy_s(state: &State, env: &str) -> Option<(f64, usize)> {
    let mut secs: Vec<f64> = state
        .history
        .iter()
        .flatten()
        .filter(|e| e.env == env && e.outcome == Outcome::Succeeded)
        .filter(|e| matches!(e.action, ActionKind::Promote | ActionKind::Rollback))
        .filter_map(|e| Some((e.finished_at? - e.at).num_milliseconds() as f64 / 1000.0))
        .filter(|s| *s >= 0.0)
        .take(10)
        .collect();
    let n = secs.len();
    format::median(&mut secs).map(|m| (m, n))
}

/// What the audit log says about `version` on `env`: when it went there,
/// by whom, and its last monitoring verdict.
pub fn target_record(state: &State, env: &str, version: &Version) -> String {
    let Some(history) = &state.history else {
        return "record: loading the audit log…".into();
    };
    let mine = |e: &&crate::domain::AuditEntry| e.env == env && e.version.as_ref() == Some(version);
    let deployed = history
        .iter()
        .filter(mine)
        .filter(|e| e.outcome == Outcome::Succeeded)
        .find(|e| matches!(e.action, ActionKind::Promote | ActionKind::Rollback));
    let verdict = history
        .iter()
        .filter(mine)
        .find(|e| e.action == ActionKind::Verdict);
    let mut out = match deployed {
        Some(e) => format!(
            "{} by {} at {} ({} ago)",
            if e.action == ActionKind::Rollback {
                "rolled back to"
            } else {
                "deployed"
            },
            e.actor,
            format::timestamp(e.at),
            format::age((state.now - e.at).num_seconds())
        ),
        None => "no deploy of it recorded (it may predate shipdeck)".into(),
    };
    match verdict {
        Some(v) => out.push_str(&format!("; last verdict: {}", v.detail)),
        None => out.push_str("; no verdict recorded"),
    }
    out
}

/// A migration release, flagged in the promote and approval dialogs: a
/// one-line warning the dialog always keeps on screen (with its keys), and
/// the details (which paths, the backup taken for it) that its body may cut.
fn migration_lines(
    state: &State,
    env: &str,
    version: &Version,
) -> (Option<Line<'static>>, Vec<Line<'static>>) {
    let t = &state.theme;
    let facts = state
        .env_status(env)
        .filter(|e| e.promotion.as_ref().is_some_and(|p| &p.version == version));
    let Some(r) = facts
        .and_then(|e| e.release.as_ref())
        .filter(|r| r.migration_release)
    else {
        return (None, Vec::new());
    };
    let n = r.migrations.len();
    let s = if n == 1 { "" } else { "s" };
    // Rolled back from it: its migrations already ran here and stayed.
    // "A code rollback will not undo it" spoke of a change still to come
    // when one already had, and had not been undone.
    let back_to = facts
        .filter(|e| e.schema_ahead.is_some())
        .and_then(|e| e.last_deploy.as_ref())
        .map(|d| &d.version);
    let warning = Line::styled(
        match back_to {
            Some(to) => format!(
                "⚠ {version}'s {n} migration{s} already ran in {env} and stayed through the rollback to {to}: the database is ahead of the code"
            ),
            None => format!(
                "⚠ {version} changes the database ({n} migration{s}): a code rollback will not undo it"
            ),
        },
        t.warn,
    );
    let mut details = vec![Line::styled(
        format!("migrations: {}", r.migrations.join(", ")),
        t.dim,
    )];
    if let Some(b) = &r.backup {
        details.push(Line::styled(
            format!("backup {} recorded {}", b.id, format::timestamp(b.at)),
            t.dim,
        ));
    }
    (Some(warning), details)
}

/// What promoting `version` drops of what `env` runs (commits not in the
/// version), one line the dialog always keeps: loud when it drops a migration.
fn drops_line(state: &State, env: &str, version: &Version) -> Option<Line<'static>> {
    let t = &state.theme;
    let (line, loud) = state
        .env_status(env)
        .filter(|e| e.promotion.as_ref().is_some_and(|p| &p.version == version))
        .and_then(|e| e.release.as_ref())
        .and_then(|r| r.drops_line(env, version.as_str()))?;
    Some(Line::styled(line, if loud { t.error } else { t.warn }))
}

/// The evidence of the stage `version` comes from, as the plan for
/// promoting `env` to it has it.
fn stage_verdict<'a>(
    state: &'a State,
    env: &str,
    version: &Version,
) -> Option<&'a crate::monitor::StageVerdict> {
    state
        .env_status(env)
        .and_then(|e| e.promotion.as_ref())
        .filter(|p| &p.version == version)
        .and_then(|p| p.evidence.stage_verdict.as_ref())
}

pub fn draw(state: &State, d: &Dialog, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    // The body may be cut to fit; the tail (what the action changes, the
    // note being typed, the keys) is always shown whole.
    let mut lines: Vec<Line> = Vec::new();
    let mut tail: Vec<Line> = Vec::new();
    let (title, verb, danger) = match &d.action {
        Pending::Promote {
            env,
            version,
            current,
            source,
            skips,
            warnings,
            production,
            explicit,
        } => {
            let cur = current
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            lines.push(Line::from(vec![
                Span::styled("Promote ", t.text),
                Span::styled(env.clone(), t.title),
                Span::styled(format!(": {cur} → "), t.text),
                Span::styled(version.to_string(), t.title),
            ]));
            lines.push(Line::styled(
                match (source, explicit) {
                    (_, true) => "source: a version you picked (explicit --version)".to_string(),
                    (Some(s), false) => format!("source: {s} (what it runs now)"),
                    (None, false) => "source: explicit version".to_string(),
                },
                t.dim,
            ));
            // What the promotion does, per strategy (deploy, switch, steps).
            let live = state
                .env_status(env)
                .and_then(|e| e.revert.slots.as_ref())
                .and_then(|s| s.live.as_deref());
            let how = state
                .settings
                .outlines
                .get(env.as_str())
                .cloned()
                .unwrap_or_default()
                .promote_words(version, live);
            lines.push(Line::styled(how, t.text));
            let (db, db_details) = migration_lines(state, env, version);
            if !skips.is_empty() {
                lines.push(Line::styled(format!("skips: {}", skips.join(", ")), t.warn));
            }
            for g in warnings {
                lines.push(Line::styled(format!("⚠ {}: {}", g.name, g.detail), t.warn));
            }
            let facts = state.env_status(env);
            // The details last in the body, right above their warning.
            lines.extend(db_details);
            tail.extend(db);
            tail.extend(drops_line(state, env, version));
            // The stage before found it a regression: said where the
            // promotion is confirmed, not only in the panel behind.
            if let Some(v) = stage_verdict(state, env, version)
                .filter(|v| v.verdict == crate::monitor::StageState::Regression)
            {
                tail.push(Line::styled(format!("Evidence: {}", v.reason), t.error));
            }
            tail.extend(changed_since_opened(state, env, current.as_ref()));
            if !*explicit {
                tail.extend(source_moved(state, source.as_deref(), version));
            }
            if *production {
                tail.push(Line::styled("This deploys to PRODUCTION.", t.error));
            }
            let freeze = facts.and_then(|e| e.freeze.as_ref());
            if let Some(f) = freeze {
                tail.push(Line::styled(
                    format!("❄ {env} is {}", f.describe()),
                    t.error,
                ));
            }
            if let Some(reason) = &d.note {
                tail.push(Line::raw(""));
                tail.push(Line::from(vec![
                    Span::styled("Why break the freeze (audited): ", t.warn),
                    Span::styled(reason.clone(), t.text),
                    Span::styled("▏", t.key),
                ]));
            }
            let verb = if d.note.is_some() {
                "break the freeze"
            } else if warnings.is_empty() {
                "promote"
            } else {
                "promote anyway"
            };
            (
                format!(" Promote {env}? "),
                verb,
                *production || !warnings.is_empty(),
            )
        }
        Pending::Approve {
            env,
            version,
            source,
            decision,
            refused,
        } => {
            let (word, verb) = match (decision, refused) {
                (Decision::Go, None) => ("a Go", "record Go"),
                (Decision::Go, Some(_)) => ("a Go", "try anyway"),
                (Decision::NoGo, _) => ("a No-Go", "record No-Go"),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("Record {word} for "), t.text),
                Span::styled(version.to_string(), t.title),
                Span::styled(format!(" → {env}"), t.text),
            ]));
            if let Some(s) = source {
                lines.push(Line::styled(format!("(what {s} runs now)"), t.dim));
            }
            if *decision == Decision::NoGo {
                lines.push(Line::styled("A No-Go blocks this version.", t.warn));
            }
            let (db, db_details) = migration_lines(state, env, version);
            tail.extend(db);
            // A Go is given knowing what the version takes away, as the
            // promote dialog says it.
            tail.extend(drops_line(state, env, version));
            // The approval stage's own evidence, for the one giving the Go.
            if let Some(v) = stage_verdict(state, env, version) {
                let style = match v.verdict {
                    crate::monitor::StageState::Healthy => t.ok,
                    crate::monitor::StageState::Regression => t.error,
                    crate::monitor::StageState::InsufficientData => t.dim,
                };
                lines.push(Line::styled(format!("Evidence: {}", v.reason), style));
            }
            if let Some(g) = refused {
                lines.push(Line::styled(
                    format!("✗ refused by policy: {}", g.detail),
                    t.error,
                ));
            }
            lines.extend(db_details);
            tail.extend(source_moved(state, source.as_deref(), version));
            tail.push(Line::raw(""));
            let note = d.note.clone().unwrap_or_default();
            tail.push(Line::from(vec![
                Span::styled("Note (optional): ", t.dim),
                Span::styled(note, t.text),
                Span::styled("▏", t.key),
            ]));
            (
                format!(" Approval for {env} "),
                verb,
                *decision == Decision::NoGo,
            )
        }
        Pending::Review {
            env,
            version,
            what,
            prompt,
            approve,
        } => {
            let (word, verb) = if *approve {
                ("Approve", "approve")
            } else {
                ("Reject", "reject")
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{word} the deploy of "), t.text),
                Span::styled(version.to_string(), t.title),
                Span::styled(format!(" → {env}"), t.text),
            ]));
            lines.push(Line::styled(format!("{what}: {prompt}"), t.dim));
            lines.push(Line::styled(
                "The answer and the note go to the CI/CD system and the audit log.",
                t.dim,
            ));
            if !*approve {
                lines.push(Line::styled("Rejecting stops this deploy.", t.warn));
            }
            tail.push(Line::raw(""));
            let note = d.note.clone().unwrap_or_default();
            tail.push(Line::from(vec![
                Span::styled("Note (optional): ", t.dim),
                Span::styled(note, t.text),
                Span::styled("▏", t.key),
            ]));
            (format!(" Review for {env} "), verb, !*approve)
        }
        Pending::Rollback {
            env,
            from,
            to,
            strategy,
            production,
        } => {
            let from_version = from;
            let from = from
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            let to_version = to.as_ref();
            let to = to
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "the version before its last deploy".into());
            lines.push(Line::from(vec![
                Span::styled("Roll back ", t.text),
                Span::styled(env.clone(), t.title),
                Span::styled(format!(": {from} → "), t.text),
                Span::styled(to, t.title),
            ]));
            lines.push(Line::styled(format!("strategy: {strategy}"), t.dim));
            let expected = match expected_deploy_s(state, env) {
                Some((s, 1)) => format!(
                    "expected time: about {} (as its one recorded deploy took)",
                    format::age(s.round() as i64)
                ),
                Some((s, n)) => format!(
                    "expected time: about {} (median of the last {n} deploys here)",
                    format::age(s.round() as i64)
                ),
                None if state.history.is_none() => "expected time: loading the audit log…".into(),
                None => format!("expected time: unknown (no finished deploy of {env} recorded)"),
            };
            lines.push(Line::styled(expected, t.dim));
            let monitored = state.env_status(env).is_some_and(|e| e.monitored);
            let auto = match (monitored, state.settings.auto_rollback) {
                (false, _) => "auto-rollback: no (not monitored)",
                (true, true) => "auto-rollback: on (a regression rolls back by itself)",
                (true, false) => "auto-rollback: off (a regression raises the alarm)",
            };
            lines.push(Line::styled(auto, t.dim));
            if let Some(v) = to_version {
                lines.push(Line::styled(
                    format!("{v}: {}", target_record(state, env, v)),
                    t.text,
                ));
            }
            // Code rollback cannot undo a schema change: say so, and how
            // to restore the backup (shown, never run).
            if let Some(n) = state
                .env_status(env)
                .and_then(|e| e.rollback_schema.as_ref())
            {
                lines.push(Line::styled(format!("⚠ {}", n.warning), t.error));
                match &n.restore {
                    Some(cmd) => {
                        lines.push(Line::styled(
                            "To restore the database too (shipdeck never runs it):",
                            t.warn,
                        ));
                        lines.push(Line::styled(format!("  {cmd}"), t.text));
                    }
                    None => lines.push(Line::styled(
                        "No restore command configured ([release] restore).",
                        t.warn,
                    )),
                }
                if n.backup.is_none() {
                    lines.push(Line::styled(
                        "No backup is recorded for this release here.",
                        t.warn,
                    ));
                }
            }
            tail.extend(changed_since_opened(state, env, from_version.as_ref()));
            if *production {
                tail.push(Line::styled("This changes PRODUCTION.", t.error));
            }
            (format!(" Roll back {env}? "), "roll back", true)
        }
        Pending::Quit => {
            // What runs now, not when `q` was pressed: a promote left open
            // here becomes a monitoring window, a window counts down, ends.
            let running = state.running();
            if running.is_empty() {
                lines.push(Line::styled("Nothing runs any more.", t.text));
            } else {
                lines.push(Line::styled("Still running:", t.text));
                for r in &running {
                    lines.push(Line::styled(format!("  • {r}"), t.warn));
                }
                lines.push(Line::styled(
                    "Quitting stops watching them; the audit log keeps what was recorded.",
                    t.dim,
                ));
                // What a window's end by quitting leaves: the release it
                // judges stays, judged by nobody and rolled back by nobody.
                for (env, ui) in &state.envs {
                    if ui
                        .task
                        .as_ref()
                        .is_some_and(|k| k.kind == crate::tui::msg::TaskKind::Watch)
                        && let Some(w) = ui.window.as_ref().filter(|w| w.running)
                    {
                        let what = if state.settings.auto_rollback {
                            "neither caught nor rolled back automatically"
                        } else {
                            "not caught"
                        };
                        lines.push(Line::styled(
                            format!(
                                "⚠ {env} keeps {}: a regression of it is then {what} (`shipdeck watch {env}` watches it again)",
                                w.version
                            ),
                            t.warn,
                        ));
                    }
                }
            }
            (" Quit shipdeck? ".to_string(), "quit", true)
        }
    };
    tail.push(Line::raw(""));
    let mut keys = Vec::new();
    for (k, label) in keymap::footer(state.context()) {
        let label = if label == "confirm" { verb } else { label };
        keys.push(Span::styled(k, t.key));
        keys.push(Span::styled(format!(" {label}   "), t.text));
    }
    tail.push(Line::from(keys));

    let (rect, lines) = layout(lines, tail, area, t.dim);
    let border = if danger {
        t.danger_border
    } else {
        t.dialog_border
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(if danger {
                    BorderType::Double
                } else {
                    BorderType::Rounded
                })
                .border_style(border)
                .title(Line::styled(title, t.title)),
        ),
        rect,
    );
}

/// A warning when the environment changed under an open dialog: someone
/// else is deploying or rolling it back now, or it no longer runs the
/// version the dialog was opened on (Enter would act on a stale picture).
fn changed_since_opened(
    state: &State,
    env: &str,
    opened_on: Option<&Version>,
) -> Vec<Line<'static>> {
    let t = &state.theme;
    let Some(e) = state.env_status(env) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let ours = state.env_ui(env).is_some_and(|u| {
        u.task.is_some() || u.deploy.as_ref().is_some_and(|d| d.finished.is_none())
    });
    if let Some(to) = state.auto_rollback_to(env) {
        out.push(Line::styled(
            format!(
                "⚠ {env} is rolling back by itself now (to {to}) — Enter will do nothing while it runs"
            ),
            t.error,
        ));
    }
    if matches!(e.state, EnvState::Deploying | EnvState::RollingBack) && !ours {
        let (what, _) = super::envs::state_line(state, e);
        out.push(Line::styled(
            format!("⚠ {env} is busy right now: {what} — Enter will be refused while it runs"),
            t.error,
        ));
    }
    if let (Some(was), Some(now)) = (opened_on, e.version.as_ref())
        && was != now
    {
        out.push(Line::styled(
            format!("⚠ {env} now runs {now}, not {was} as when this opened: Esc and look again"),
            t.error,
        ));
    }
    out
}

/// A warning when the stage a promotion or a decision takes its version
/// from moved under the open dialog (another engineer, a pipeline): the
/// dialog still names the version it opened on, which the engine now
/// refuses (previous_stage, exact_version) — said before Enter, not after.
fn source_moved(state: &State, source: Option<&str>, version: &Version) -> Vec<Line<'static>> {
    let Some(src) = source else {
        return Vec::new();
    };
    match state.env_status(src).and_then(|e| e.version.as_ref()) {
        Some(now) if now != version => vec![Line::styled(
            format!(
                "⚠ {src} now runs {now}, not {version} as when this opened: Enter will be refused — Esc and look again"
            ),
            state.theme.error,
        )],
        _ => Vec::new(),
    }
}

/// Word-wrap one styled line into rows of at most `max` columns: breaks at
/// spaces, a word longer than a row is cut by characters; styles are kept.
pub(crate) fn wrap_line(line: &Line<'_>, max: usize) -> Vec<Line<'static>> {
    let max = max.max(1);
    // (word, its cells with their styles), separated by single spaces.
    let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
    let mut word: Vec<(char, Style)> = Vec::new();
    let mut space: Option<Style> = None;
    let flush = |rows: &mut Vec<Vec<(char, Style)>>,
                 word: &mut Vec<(char, Style)>,
                 space: Option<Style>| {
        if word.is_empty() && space.is_none() {
            return;
        }
        let cells = |v: &[(char, Style)]| {
            v.iter()
                .map(|(c, _)| format::width(&c.to_string()))
                .sum::<usize>()
        };
        let first = rows.len() == 1;
        let row = rows.last_mut().expect("one row");
        let sep = usize::from(space.is_some() && !row.is_empty());
        if cells(row) + sep + cells(word) <= max {
            if sep == 1 {
                row.push((' ', space.unwrap_or_default()));
            } else if let Some(st) = space.filter(|_| row.is_empty() && first) {
                // Leading spaces of the line (indentation) are kept.
                row.push((' ', st));
            }
            row.append(word);
            return;
        }
        if !rows.last().expect("one row").is_empty() {
            rows.push(Vec::new());
        }
        while cells(word) > max {
            let mut head = Vec::new();
            // Never past the row: a wide character that would end one
            // column beyond it starts the next (at least one per row).
            while !word.is_empty() && (head.is_empty() || cells(&head) + cells(&word[..1]) <= max) {
                head.push(word.remove(0));
            }
            rows.last_mut().expect("one row").extend(head);
            rows.push(Vec::new());
        }
        rows.last_mut().expect("one row").append(word);
    };
    for span in &line.spans {
        let style = line.style.patch(span.style);
        for c in span.content.chars() {
            if c == ' ' {
                flush(&mut rows, &mut word, space);
                space = Some(style);
            } else {
                word.push((c, style));
            }
        }
    }
    flush(&mut rows, &mut word, space);
    rows.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (c, st) in row {
                match spans.last_mut() {
                    Some(s) if s.style == st => s.content.to_mut().push(c),
                    _ => spans.push(Span::styled(c.to_string(), st)),
                }
            }
            Line::from(spans)
        })
        .collect()
}

/// Where a dialog goes and what it shows: as wide as its longest line (40
/// to 80 columns), as tall as its wrapped rows; when the terminal is too
/// short, the body is cut with a line saying so, and the tail — what the
/// action changes and its keys — stays whole at the bottom.
pub(crate) fn layout(
    body: Vec<Line<'_>>,
    tail: Vec<Line<'_>>,
    area: Rect,
    dim: Style,
) -> (Rect, Vec<Line<'static>>) {
    let longest = body
        .iter()
        .chain(&tail)
        .map(|l| l.width() as u16)
        .max()
        .unwrap_or(0);
    let width = (longest.clamp(40, 76) + 4).min(area.width);
    let inner = width.saturating_sub(2).max(1) as usize;
    let wrap = |ls: &[Line<'_>]| {
        ls.iter()
            .flat_map(|l| wrap_line(l, inner))
            .collect::<Vec<_>>()
    };
    let mut body = wrap(&body);
    let tail = wrap(&tail);
    let room = (area.height as usize).saturating_sub(2);
    if body.len() + tail.len() > room {
        let keep = room.saturating_sub(tail.len() + 1);
        let hidden = body.len() - keep;
        body.truncate(keep);
        let more = format!("… {hidden} more lines: enlarge the terminal to read them");
        body.push(Line::styled(format::clip(&more, inner), dim));
    }
    body.extend(tail);
    let height = body.len() as u16 + 2;
    (super::centered(area, width, height), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_and_style_and_the_indentation() {
        use ratatui::style::{Color, Style};
        use ratatui::text::{Line, Span};
        let red = Style::default().fg(Color::Red);
        let line = Line::from(vec![
            Span::raw("  Roll back "),
            Span::styled("production", red),
            Span::raw(": v1.7.3 → v1.7.2 supercalifragilisticexpialidocious end"),
        ]);
        for max in [1, 5, 12, 20, 80] {
            let rows = wrap_line(&line, max);
            for r in &rows {
                assert!(r.width() <= max, "{max}: {r:?}");
            }
            let words: Vec<String> = rows
                .iter()
                .flat_map(|r| {
                    r.spans
                        .iter()
                        .map(|s| s.content.to_string())
                        .collect::<String>()
                        .split(' ')
                        .filter(|w| !w.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            if max >= 34 {
                assert_eq!(
                    words,
                    [
                        "Roll",
                        "back",
                        "production:",
                        "v1.7.3",
                        "→",
                        "v1.7.2",
                        "supercalifragilisticexpialidocious",
                        "end"
                    ],
                    "{max}"
                );
            }
            assert!(
                rows.iter()
                    .flat_map(|r| &r.spans)
                    .any(|s| s.style == red && !s.content.trim().is_empty()),
                "{max}: the style is kept"
            );
        }
        // A long word of wide characters: no row is wider than the room,
        // nothing is lost (an odd width ended rows a column past the border).
        let note = "已在预发布环境验证通过可以上线已在预发布环境验证通过可以上线";
        for max in [3, 9, 11] {
            let rows = wrap_line(&Line::raw(note), max);
            for r in &rows {
                assert!(r.width() <= max, "{max}: {r:?}");
            }
            let all: String = rows
                .iter()
                .flat_map(|r| r.spans.iter().map(|s| s.content.to_string()))
                .collect();
            assert_eq!(all, note, "{max}");
        }
        let rows = wrap_line(&line, 80);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].spans[0].content.starts_with("  Roll"), "{rows:?}");
        assert_eq!(wrap_line(&Line::raw(""), 10).len(), 1);
    }
}
