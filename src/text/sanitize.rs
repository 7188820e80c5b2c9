//! One sanitiser for untrusted text.

/// Make untrusted text safe for a terminal, a log line and a JSON field
/// that a terminal will show: escape sequences are removed whole, other
/// control characters (newlines and tabs included) become one space each,
/// BiDi overrides and isolates are dropped. Printable text is untouched.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(needs_care) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => match it.peek().copied() {
                Some('[') => {
                    it.next();
                    skip_csi(&mut it);
                }
                Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
                    it.next();
                    skip_string(&mut it);
                }
                // A two-character sequence (ESC c, ESC 7, ESC ( B's first half…).
                Some(n) if ('\u{20}'..='\u{7e}').contains(&n) => {
                    it.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut it),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut it),
            c if is_bidi_control(c) => {}
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                if ('\u{80}'..='\u{9f}').contains(&c) {
                    // Other C1 controls: dropped.
                } else {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `s` holds a character [`sanitize`] would change: config values
/// are refused with this rather than silently altered.
pub fn has_control(s: &str) -> bool {
    s.chars().any(needs_care)
}

fn needs_care(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// Explicit directional embeddings, overrides and isolates, and the Arabic
/// letter mark: they reorder what a reader sees ("Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

/// CSI: parameters and intermediates up to a final byte in `@`..`~`.
fn skip_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in it.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
        if !('\u{20}'..='\u{3f}').contains(&c) {
            // Not a CSI body character: the sequence is broken; stop here
            // (the character is dropped with it, it was a control anyway or
            // part of the garbage).
            return;
        }
    }
}

/// OSC, DCS, SOS, PM, APC: a string up to BEL, ESC \ or the C1 ST.
fn skip_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = it.next() {
        match c {
            '\u{07}' | '\u{9c}' => return,
            '\u{1b}' => {
                if it.peek() == Some(&'\\') {
                    it.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// A short one-line excerpt of an answer body for an error message:
/// sanitised, secrets redacted, whitespace collapsed, cut at 200
/// characters with an ellipsis. `"(empty body)"` for nothing.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    // Never work on more than a few KiB of a huge body.
    let head: String = text.chars().take(4096).collect();
    let flat = sanitize(&super::redact(&head));
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = flat.chars().take(200).collect();
    if cut.is_empty() {
        "(empty body)".into()
    } else if cut.len() < flat.len() || head.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc_title_change_is_removed_whole() {
        assert_eq!(sanitize("alice\u{1b}]0;pwned\u{7}@box"), "alice@box");
        assert_eq!(sanitize("a\u{1b}]0;pwned\u{1b}\\b"), "ab");
        assert_eq!(sanitize("a\u{9d}0;pwned\u{9c}b"), "ab");
    }

    #[test]
    fn csi_sequences_and_c1_controls_are_removed() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(sanitize("x\u{9b}2Jy"), "xy");
        assert_eq!(sanitize("hid\u{1b}[8mden"), "hidden");
        assert_eq!(sanitize("a\u{85}b"), "ab");
        assert_eq!(sanitize("a\u{1b}cb"), "ab");
        assert_eq!(sanitize("dangling\u{1b}"), "dangling");
        assert_eq!(sanitize("open osc\u{1b}]0;never ends"), "open osc");
    }

    #[test]
    fn other_controls_become_spaces_and_bidi_is_dropped() {
        assert_eq!(sanitize("a\nb\tc\rd\u{7f}e\u{0}f"), "a b c d e f");
        assert_eq!(sanitize("admin\u{202e}txt.exe"), "admintxt.exe");
        assert_eq!(sanitize("x\u{2066}y\u{2069}"), "xy");
        assert_eq!(sanitize("plain — ünïcode ✓"), "plain — ünïcode ✓");
        assert!(has_control("a\u{1b}b") && has_control("a\u{202e}") && !has_control("a b"));
    }

    #[test]
    fn excerpts_are_short_flat_and_clean() {
        assert_eq!(excerpt(b"404 page not found\n"), "404 page not found");
        assert_eq!(excerpt(b""), "(empty body)");
        let long = excerpt("x".repeat(1000).as_bytes());
        assert!(long.chars().count() <= 201 && long.ends_with('…'));
        assert_eq!(excerpt(b"bad \x1b]0;title\x07 gateway"), "bad gateway");
        let huge = excerpt(&vec![b'y'; 5_000_000]);
        assert!(huge.chars().count() <= 201);
    }
}
