//! Small formatting helpers shared by the views, and the one truncation rule
//! ([`fit`]) every panel uses.

use chrono::{DateTime, Utc};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// `42s`, `5m`, `3h`, `2d`: an age, coarse enough to stay short.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// `12:04` (or `1:02:03`): time left in a window.
pub fn countdown(secs: f64) -> String {
    let s = secs.max(0.0).ceil() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A time offset on a chart axis: `-30m`, `0`, `+90s`, `+1h30m`.
pub fn offset(secs: f64) -> String {
    let r = secs.round() as i64;
    if r == 0 {
        return "0".into();
    }
    let sign = if r < 0 { "-" } else { "+" };
    let a = r.unsigned_abs();
    let body = if a < 120 && !a.is_multiple_of(60) {
        format!("{a}s")
    } else if a < 3600 {
        format!("{}m", a / 60)
    } else if a % 3600 < 60 {
        format!("{}h", a / 3600)
    } else {
        format!("{}h{}m", a / 3600, (a % 3600) / 60)
    };
    format!("{sign}{body}")
}

/// An error rate (0.0123) as `1.23%`.
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if p >= 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// Milliseconds, with as much precision as is legible.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.1}ms")
    }
}

/// Display width of `s` in terminal columns.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Cut `s` to at most `max` columns, marking the cut with `…`.
pub fn clip(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = s[..columns_prefix(s, max - 1)].to_string();
    out.push('…');
    out
}

/// Cut a version (or a name whose end tells it apart) to at most `max`
/// columns by its middle: its head and its tail stay, `…` between. Cut at
/// its end, `v1.8.0-rc.20261201.build-4411` and `…-4412` both read
/// `v1.8.0-rc.2026120…`, hiding the very part that differs.
pub fn clip_middle(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max < 3 {
        return clip(s, max);
    }
    let room = max - 1;
    // The tail tells versions apart more often: it gets the odd column.
    let head = &s[..columns_prefix(s, room / 2)];
    let tail_w = room - width(head);
    let mut start = s.len();
    {
        use unicode_segmentation::UnicodeSegmentation;
        for (i, _) in s.grapheme_indices(true).rev() {
            if i < head.len() || width(&s[i..]) > tail_w {
                break;
            }
            start = i;
        }
    }
    format!("{head}…{}", &s[start..])
}

/// [`clip_middle`] for what may be a pair `from → to` (as the audit log
/// shows a rollback): each side keeps its own head and tail.
pub fn clip_versions(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    match s.split_once(" → ") {
        Some((from, to)) if max >= 9 => {
            let (from, to) = clip_pair(from, to, max - 3);
            format!("{from} → {to}")
        }
        _ => clip_middle(s, max),
    }
}

/// Two versions shown side by side in `max` columns (their separator
/// not counted): each cut in its middle, the second taking what the
/// first leaves of its half.
pub fn clip_pair(from: &str, to: &str, max: usize) -> (String, String) {
    let to = clip_middle(to, max - (max / 2).min(width(from)));
    let from = clip_middle(from, max.saturating_sub(width(&to)));
    (from, to)
}

/// The byte index where the longest start of `s` that fits in `max`
/// columns ends, never inside a grapheme cluster. A sequence can be wider
/// or narrower than its characters one by one (an emoji with its
/// presentation selector, ❤️, is two columns, ❤ alone one; a family of
/// three joined by ZWJ two, its people six): each cluster is measured
/// whole, and the start's own width has the last word. [`clip`] and
/// [`wrap_words`] both cut here, so a wrapped line is one `clip` keeps.
fn columns_prefix(s: &str, max: usize) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    let mut used = 0;
    let mut ends = vec![0];
    for (i, g) in s.grapheme_indices(true) {
        used += width(g);
        if used > max {
            break;
        }
        ends.push(i + g.len());
    }
    while ends.len() > 1 && width(&s[..ends[ends.len() - 1]]) > max {
        ends.pop();
    }
    ends[ends.len() - 1]
}

/// Cut free text to `max` columns with `…`, never inside a word: at the
/// end of a clause (`, ` `; ` `: ` ` — `) when one is near (in the last
/// quarter of the room), else between words, so no number is left half
/// shown. A clause end further back is not taken: a refusal reads
/// `cannot promote production: approval — no Go recorded for v1.8.0 (…)`,
/// and cutting at its first clause kept the gate's name and lost why.
pub fn clip_at_boundary(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let room = max.saturating_sub(1);
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if width(&s[..i + c.len_utf8()]) > room {
            break;
        }
        end = i + c.len_utf8();
    }
    let head = &s[..end];
    // A cut right at a space keeps the whole last word.
    let whole = s[end..].starts_with(' ');
    let clause = [", ", "; ", ": ", " — "]
        .iter()
        .filter_map(|sep| head.rfind(sep))
        .max()
        .filter(|at| (room - width(&head[..*at])) * 4 <= room);
    let cut = match (whole, clause) {
        (true, _) => head.trim_end(),
        (false, Some(at)) => &head[..at],
        (false, None) => head.rfind(' ').map_or(head, |at| &head[..at]),
    };
    let cut = without_lead(cut);
    if cut.trim().is_empty() {
        return clip(s, max);
    }
    format!("{cut}…")
}

/// Without a last word that only leads to what was cut (`6.1% vs…`).
fn without_lead(s: &str) -> &str {
    const LEADS: [&str; 15] = [
        "vs", "at", "of", "for", "and", "the", "by", "over", "above", "below", "since", "in", "to",
        "from", "with",
    ];
    let s = s.trim_end();
    match s.rsplit_once(' ') {
        Some((rest, last)) if LEADS.contains(&last) => rest.trim_end(),
        _ => s,
    }
}

/// The last line shown of a longer text: ends with `…`, cut where a word
/// ends if the mark does not fit after it.
pub fn continued(s: &str, max: usize) -> String {
    let s = without_lead(s);
    if width(s) < max {
        return format!("{s}…");
    }
    clip_at_boundary(&format!("{s} …"), max)
}

/// One piece of a line for [`fit`]: its text (with its own leading
/// separator), style, and how readily it goes when space is short.
#[derive(Clone, Debug)]
pub struct Part {
    pub text: String,
    pub style: Style,
    /// 0: the key value, never dropped; higher numbers go first.
    pub prio: u8,
    /// A shorter form tried before the part is dropped.
    pub short: Option<String>,
    /// Free text whose sense survives a cut: cut it with `…` (when at
    /// least a few columns are left) rather than drop it.
    pub cut: bool,
    /// A version: when it must be cut, cut in its middle ([`clip_middle`]).
    pub middle: bool,
}

impl Part {
    pub fn new(text: impl Into<String>, style: Style) -> Part {
        Part {
            text: text.into(),
            style,
            prio: 0,
            short: None,
            cut: false,
            middle: false,
        }
    }

    /// A version: cut in its middle, so what tells it apart stays.
    pub fn middle(mut self) -> Part {
        self.middle = true;
        self
    }

    /// May be cut with `…` instead of dropped.
    pub fn cut(mut self) -> Part {
        self.cut = true;
        self
    }

    /// Droppable: parts with higher `prio` go first.
    pub fn prio(mut self, prio: u8) -> Part {
        self.prio = prio;
        self
    }

    pub fn short(mut self, short: impl Into<String>) -> Part {
        self.short = Some(short.into());
        self
    }
}

/// The one truncation rule of the console: make `parts` fit `max` columns by
/// shortening, then dropping, the lowest-priority parts first (rightmost
/// first among equals), so the key value stays whole; only when the key
/// values alone do not fit is the line cut, and then always with `…`.
pub fn fit(mut parts: Vec<Part>, max: usize) -> Line<'static> {
    let total = |parts: &[Part]| parts.iter().map(|p| width(&p.text)).sum::<usize>();
    while total(&parts) > max {
        let victim = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.prio > 0 || p.short.is_some())
            .max_by_key(|(i, p)| (p.prio, p.short.is_some(), *i))
            .map(|(i, _)| i);
        let Some(i) = victim else { break };
        let room = max.saturating_sub(total(&parts) - width(&parts[i].text));
        if parts[i].cut && room >= 12 {
            parts[i].text = clip_at_boundary(&parts[i].text, room);
            break;
        }
        match parts[i].short.take() {
            Some(s) => parts[i].text = s,
            None => {
                parts.remove(i);
            }
        }
    }
    // A separator has nothing to separate at the start of the line.
    if let Some(first) = parts.first_mut()
        && let Some(rest) = first.text.strip_prefix(" · ")
    {
        first.text = rest.to_string();
    }
    let mut spans = Vec::new();
    let mut used = 0;
    let cut = total(&parts) > max;
    let mut marked = false;
    for p in parts {
        let w = width(&p.text);
        if !cut || used + w < max {
            used += w;
            spans.push(Span::styled(p.text, p.style));
            continue;
        }
        let text = if p.middle {
            clip_middle(&p.text, max - used)
        } else {
            clip(&p.text, max - used)
        };
        marked = text.contains('…');
        spans.push(Span::styled(text, p.style));
        break;
    }
    if cut && max > 0 && !marked && !spans.last().is_some_and(|s| s.content.ends_with('…')) {
        // The cut fell exactly between two parts.
        if let Some(last) = spans.last_mut() {
            let w = width(&last.content);
            last.content = clip(&format!("{}…", last.content), w).into();
        }
    }
    Line::from(spans)
}

/// Break `text` into lines of at most `max` columns at spaces; a word
/// longer than a line is cut by columns, between grapheme clusters (as
/// [`clip`] cuts).
pub fn wrap_words(text: &str, max: usize) -> Vec<String> {
    if max == 0 {
        return Vec::new();
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let sep = usize::from(!line.is_empty());
        if width(&line) + sep + width(word) <= max {
            if sep == 1 {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        let mut rest = word;
        while width(rest) > max {
            let at = columns_end(rest, max);
            lines.push(rest[..at].to_string());
            rest = &rest[at..];
        }
        line = rest.to_string();
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The byte index where the first `max` columns of `s` end (see
/// [`columns_prefix`]): a wide character (CJK, most emoji) takes two
/// columns, a combining mark none, an emoji sequence its own width. At
/// least one grapheme cluster, so a cut always moves on.
fn columns_end(s: &str, max: usize) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    match columns_prefix(s, max) {
        0 => s.graphemes(true).next().map_or(s.len(), str::len),
        end => end,
    }
}

/// [`fit`] for one plain string: cut with `…` when it is too long.
pub fn fit_str(s: &str, style: Style, max: usize) -> Line<'static> {
    Line::styled(clip_at_boundary(s, max), style)
}

/// A time with its zone: `2026-11-24 19:55:00 UTC`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A short time with its zone: `11-24 19:55:00 UTC`.
pub fn short_timestamp(at: DateTime<Utc>) -> String {
    at.format("%m-%d %H:%M:%S UTC").to_string()
}

/// The median of `values` (`None` when empty).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(age(-3), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(61), "1m");
        assert_eq!(age(7200), "2h");
        assert_eq!(countdown(724.2), "12:05");
        assert_eq!(countdown(3723.0), "1:02:03");
        assert_eq!(offset(0.2), "0");
        assert_eq!(offset(-1800.0), "-30m");
        assert_eq!(offset(90.0), "+90s");
        assert_eq!(offset(300.0), "+5m");
        assert_eq!(offset(5400.0), "+1h30m");
        assert_eq!(offset(7200.0), "+2h");
        assert_eq!(percent(0.0031), "0.31%");
        assert_eq!(percent(0.123), "12.3%");
        assert_eq!(ms(41.23), "41.2ms");
        assert_eq!(ms(1234.0), "1.23s");
        assert_eq!(clip("production", 5), "prod…");
        assert_eq!(clip("prod", 5), "prod");
        assert_eq!(clip("✓ ok", 3), "✓ …");
        // ❤️ (with its presentation selector) is two columns, ❤ alone one.
        let hearts = clip("❤️❤️❤️❤️❤️❤️❤️❤️ Alice", 14);
        assert!(width(&hearts) <= 14, "{hearts}: {}", width(&hearts));
    }

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn fit_drops_lower_priority_parts_before_cutting_a_key_value() {
        let s = Style::new();
        let metrics = || {
            vec![
                Part::new("err 0.73%", s),
                Part::new(" p95 138ms", s).prio(1),
                Part::new(" · 1s", s).prio(2),
            ]
        };
        assert_eq!(text(&fit(metrics(), 30)), "err 0.73% p95 138ms · 1s");
        assert_eq!(text(&fit(metrics(), 20)), "err 0.73% p95 138ms");
        assert_eq!(text(&fit(metrics(), 15)), "err 0.73%", "never `p95 …`");
        assert_eq!(
            text(&fit(metrics(), 6)),
            "err 0…",
            "cut only when nothing else can go"
        );
        let state = || {
            vec![
                Part::new("monitoring", s).short("watch"),
                Part::new(" · 12:04", s),
                Part::new(" left", s).prio(1),
            ]
        };
        assert_eq!(text(&fit(state(), 40)), "monitoring · 12:04 left");
        assert_eq!(text(&fit(state(), 18)), "monitoring · 12:04");
        assert_eq!(
            text(&fit(state(), 14)),
            "watch · 12:04",
            "never `monitoring · 1…`"
        );
        let lead = vec![Part::new("erin", s).prio(1), Part::new(" · 2d ago", s)];
        assert_eq!(text(&fit(lead, 8)), "2d ago", "no dangling separator");
        let gate = || {
            vec![
                Part::new("✗ approval", s),
                Part::new("  no Go recorded for v1.8.0", s).prio(1).cut(),
            ]
        };
        assert_eq!(text(&fit(gate(), 24)), "✗ approval  no Go…");
        assert_eq!(
            clip_at_boundary(
                "regression of v1.8.0: error rate 6.1% vs baseline 0.36%",
                48
            ),
            "regression of v1.8.0: error rate 6.1%…",
            "never `baseline 0…`"
        );
        assert_eq!(clip_at_boundary("abcdefghijklmnop", 8), "abcdefg…");
        assert_eq!(continued("stage: nothing comes", 20), "stage: nothing…");
        assert_eq!(continued("stage: nothing", 20), "stage: nothing…");
        assert_eq!(continued("so give the", 20), "so give…");
        assert_eq!(
            text(&fit(gate(), 14)),
            "✗ approval",
            "too little left: dropped"
        );
        let exact = vec![Part::new("abc", s), Part::new("def", s)];
        assert_eq!(text(&fit(exact, 3)), "ab…");
        assert!(fit(vec![Part::new("abc", s)], 0).width() == 0);
    }

    #[test]
    fn wrap_words_breaks_at_spaces() {
        assert_eq!(
            wrap_words("error rate 4.4% vs 0.36%", 12),
            ["error rate", "4.4% vs", "0.36%"]
        );
        assert_eq!(wrap_words("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap_words("", 4), [""]);
    }

    /// A word wider than a line is cut by columns, not characters: a note
    /// in Chinese (no spaces) came out in lines twice the panel's width,
    /// and the panel cut off their second half.
    #[test]
    fn wrap_words_cuts_a_long_word_by_columns() {
        let note = "已在预发布环境验证通过可以上线";
        let lines = wrap_words(note, 10);
        assert!(lines.iter().all(|l| width(l) <= 10), "{lines:?}");
        assert_eq!(lines.concat(), note, "nothing lost");
        assert_eq!(lines[0], "已在预发布");
        // Combining marks take no column and stay with their letter.
        let marks = "e\u{301}e\u{301}e\u{301}e\u{301}";
        assert_eq!(
            wrap_words(marks, 2),
            ["e\u{301}e\u{301}", "e\u{301}e\u{301}"]
        );
        // A line narrower than one wide character still moves on.
        assert_eq!(wrap_words("预发布", 1), ["预", "发", "布"]);
    }

    /// A word of emoji sequences is cut where `clip` measures: by the
    /// width of whole sequences, never inside one. By characters, ❤️ (❤
    /// and its presentation selector) counted one column for two, and a
    /// line came out twice the panel's width; a family (three people
    /// joined by ZWJ) counted six for two and was cut between its people.
    #[test]
    fn wrap_words_cuts_emoji_sequences_whole_by_their_width() {
        let hearts = "\u{2764}\u{fe0f}".repeat(4);
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        let flag = "\u{1f1e9}\u{1f1ea}";
        let thumb = "\u{1f44d}\u{1f3fd}";
        for (word, one) in [
            (hearts.clone(), "\u{2764}\u{fe0f}"),
            (family.repeat(3), family),
            (flag.repeat(3), flag),
            (thumb.repeat(3), thumb),
        ] {
            assert_eq!(width(one), 2, "{one:?}");
            let lines = wrap_words(&word, 4);
            assert_eq!(lines.concat(), word, "nothing lost");
            for l in &lines {
                assert!(width(l) <= 4, "{l:?} is {} columns: {lines:?}", width(l));
                assert_eq!(l.len() % one.len(), 0, "{l:?} cut inside a sequence");
                // What the line shows is what `clip` keeps of it.
                assert_eq!(&clip(l, 4), l);
            }
            assert_eq!(lines[0], one.repeat(2), "{lines:?}");
        }
        // In a sentence too, and a line narrower than one still moves on.
        assert_eq!(
            wrap_words(&format!("ok {hearts}"), 4),
            [
                "ok",
                "\u{2764}\u{fe0f}\u{2764}\u{fe0f}",
                "\u{2764}\u{fe0f}\u{2764}\u{fe0f}"
            ]
        );
        assert_eq!(wrap_words(&family.repeat(2), 1), [family, family]);
        // `clip` cuts between sequences too (it left "👨\u{200d}…").
        assert_eq!(clip(&family.repeat(3), 4), format!("{family}…"));
    }

    #[test]
    fn versions_are_cut_in_their_middle() {
        let a = "v1.8.0-rc.20261201.build-4411";
        assert_eq!(clip_middle(a, 40), a);
        assert_eq!(clip_middle(a, 15), "v1.8.0-…ld-4411");
        assert_eq!(width(&clip_middle(a, 15)), 15);
        assert_eq!(clip_middle(a, 2), "v…");
        let pair = format!("{a} → v1.8.0-rc.20261201.build-4412");
        let cut = clip_versions(&pair, 16);
        assert_eq!(cut, "v1…411 → v1.…412");
        assert!(width(&cut) <= 16);
        assert_eq!(
            clip_versions("v1.7.3 → v1.8.0-rc.20261201.build-4412", 18),
            "v1.7.3 → v1.8…4412"
        );
        // Wide characters are measured, never split.
        let wide = clip_middle("版本版本版本版本", 9);
        assert!(width(&wide) <= 9, "{wide}");
    }

    #[test]
    fn timestamps_name_their_zone_and_median_is_the_middle() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 24, 19, 55, 0).unwrap();
        assert_eq!(timestamp(at), "2026-11-24 19:55:00 UTC");
        assert_eq!(short_timestamp(at), "11-24 19:55:00 UTC");
        assert_eq!(median(&mut [9.0, 1.0, 4.0]), Some(4.0));
        assert_eq!(median(&mut [1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
