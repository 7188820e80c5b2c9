//! A parser for the Prometheus text exposition format (0.0.4), and the
//! OpenMetrics text it overlaps with: `# HELP`/`# TYPE` and other comments,
//! label values with `\\`, `\"` and `\n` escapes, `+Inf`/`-Inf`/`NaN` values
//! and optional millisecond timestamps. Anything else is an error that names
//! the line.

use std::collections::HashMap;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition: the samples in order, and the declared types.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// `# TYPE name type`, by metric family name.
    pub types: HashMap<String, String>,
}

/// A malformed line: 1-based line number and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parse a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_matches(|c| c == ' ' || c == '\t');
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            parse_comment(comment, &mut out).map_err(err)?;
            continue;
        }
        out.samples.push(parse_sample(trimmed).map_err(err)?);
    }
    Ok(out)
}

fn parse_comment(comment: &str, out: &mut Exposition) -> Result<(), String> {
    let mut words = comment.split_whitespace();
    match words.next() {
        Some("TYPE") => {
            let name = words
                .next()
                .ok_or("# TYPE needs a metric name and a type")?;
            if !is_metric_name(name) {
                return Err(format!(
                    "# TYPE names an invalid metric name {}",
                    shown(name)
                ));
            }
            let kind = words.next().ok_or("# TYPE needs a type after the name")?;
            const KINDS: [&str; 9] = [
                "counter",
                "gauge",
                "histogram",
                "summary",
                "untyped",
                "unknown",
                "gaugehistogram",
                "stateset",
                "info",
            ];
            if !KINDS.contains(&kind) {
                return Err(format!("unknown metric type {}", shown(kind)));
            }
            out.types.insert(name.to_string(), kind.to_string());
        }
        Some("HELP") => {
            let name = words.next().ok_or("# HELP needs a metric name")?;
            if !is_metric_name(name) {
                return Err(format!(
                    "# HELP names an invalid metric name {}",
                    shown(name)
                ));
            }
        }
        // Any other comment (including OpenMetrics' `# EOF`) is ignored.
        _ => {}
    }
    Ok(())
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Quote a piece of an untrusted line for an error message, shortened.
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || !is_metric_name(name) {
        return Err(format!(
            "expected a metric name at the start of {}",
            shown(line)
        ));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut fields = rest.split([' ', '\t']).filter(|s| !s.is_empty());
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(format!(
            "expected a space after the metric name {name}, found {}",
            shown(rest)
        ));
    }
    let value_text = fields
        .next()
        .ok_or_else(|| format!("metric {name} has no value"))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("metric {name}: value {} is not a number", shown(value_text)))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("metric {name}: timestamp {} is not an integer", shown(t)))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!(
            "metric {name}: unexpected {} after the value and timestamp",
            shown(extra)
        ));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Parse `name="value",…}`; returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let key = &s[..end];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("expected a label name, found {}", shown(s)));
        }
        s = s[end..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after the label name {key}"))?;
        s = s.trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {key} must be in double quotes"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("the value of label {key} has no closing quote")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => {
                        return Err(format!("unknown escape \\{c} in the value of label {key}"));
                    }
                    None => return Err(format!("the value of label {key} has no closing quote")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} appears twice"));
        }
        labels.push((key.to_string(), value));
        s = s[close + 1..].trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(format!(
                "expected ',' or '}}' after label {key}, found {}",
                shown(s)
            ));
        }
    }
}

/// A sample value as Go's `strconv.ParseFloat` reads it (Prometheus' rule).
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            // Rust also accepts "infinity" and "nan" spellings; only digits here.
            if s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
            {
                s.parse().ok()
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP http_requests_total The total.\n\
# TYPE http_requests_total counter\n\
http_requests_total{env=\"production\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{code=\"400\", env = \"production\" ,} 3\n\
\n\
# A free comment\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\r\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
not_a_number NaN\n\
neg\t-Inf\n\
# TYPE rpc_duration_seconds summary\n\
rpc_duration_seconds{quantile=\"0.99\"} 76656\n\
# EOF\n";

    #[test]
    fn parses_the_reference_example() {
        let e = parse(TEXT).unwrap();
        assert_eq!(e.samples.len(), 8);
        assert_eq!(
            e.types.get("http_requests_total").map(String::as_str),
            Some("counter")
        );
        assert_eq!(
            e.types.get("rpc_duration_seconds").map(String::as_str),
            Some("summary")
        );
        let s = &e.samples[0];
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(s.label("env"), Some("production"));
        assert_eq!(s.value, 1027.0);
        assert_eq!(s.timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(e.samples[1].label("code"), Some("400"));
        assert_eq!(e.samples[1].label("env"), Some("production"));
        assert_eq!(e.samples[2].label("path"), Some("C:\\DIR\\FILE.TXT"));
        assert_eq!(
            e.samples[2].label("error"),
            Some("Cannot find file:\n\"FILE.TXT\"")
        );
        assert_eq!(e.samples[2].value, 1.458255915e9);
        assert!(e.samples[3].labels.is_empty());
        assert_eq!(e.samples[3].value, 12.47);
        assert_eq!(e.samples[4].value, f64::INFINITY);
        assert_eq!(e.samples[4].timestamp_ms, Some(-3_982_045));
        assert!(e.samples[5].value.is_nan());
        assert_eq!(e.samples[6].value, f64::NEG_INFINITY);
    }

    #[test]
    fn empty_label_set_and_empty_text() {
        let e = parse("up{} 1\n").unwrap();
        assert!(e.samples[0].labels.is_empty());
        assert_eq!(parse("").unwrap(), Exposition::default());
    }

    #[test]
    fn garbage_names_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("ok 1\n<html>oops</html>\n", 2, "expected a metric name"),
            ("ok 1\nok 2\nnovalue\n", 3, "has no value"),
            ("m{a=\"1\" 2\n", 1, "expected ',' or '}'"),
            ("m{a=1} 2\n", 1, "double quotes"),
            ("m{a=\"1} 2\n", 1, "no closing quote"),
            ("m{a\"1\"} 2\n", 1, "expected '='"),
            ("m{a=\"\\t\"} 2\n", 1, "unknown escape"),
            ("m{a=\"1\",a=\"2\"} 2\n", 1, "appears twice"),
            ("m twelve\n", 1, "is not a number"),
            ("m 1 12.5\n", 1, "timestamp"),
            ("m 1 2 3\n", 1, "unexpected"),
            ("m{1a=\"x\"} 1\n", 1, "label name"),
            ("# TYPE m bogus\n", 1, "unknown metric type"),
            ("# TYPE\n", 1, "needs a metric name"),
            ("m 0x10\n", 1, "is not a number"),
            ("m infinity\n", 1, "is not a number"),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn long_garbage_is_shortened_in_the_message() {
        let e = parse(&format!("{}\n", "<".repeat(500))).unwrap_err();
        assert!(e.to_string().len() < 120, "{e}");
    }
}
