//! Recorded traces (SPEC §5): parsing the CSV and replaying it through the
//! live detector, row by row.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::detector::{Detector, DetectorConfig};
use super::stats::fmt_t;
use super::{Sample, VerdictKind};

/// The exact header of a trace file.
pub const HEADER: &str = "t,requests,errors,p50_ms,p95_ms,p99_ms";
const FIELDS: [&str; 6] = ["t", "requests", "errors", "p50_ms", "p95_ms", "p99_ms"];

/// A malformed trace: 1-based line, 1-based column of the offending field
/// (where there is one) and what is wrong, naming the field. Displays as
/// `line N: <field>: <problem>` with ` (column C)` appended where known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    pub line: usize,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)?;
        if let Some(c) = self.column {
            write!(f, " (column {c})")?;
        }
        Ok(())
    }
}

/// Largest accepted magnitudes: beyond them the detector's arithmetic
/// (sums of counts, products of rates) would overflow to infinity or NaN.
/// `|t|` in seconds (about 30 years), counts per step, latencies in ms.
pub const MAX_T: f64 = 1e9;
pub const MAX_COUNT: f64 = 1e12;
pub const MAX_LATENCY_MS: f64 = 1e9;

/// At most this many characters of an offending field are echoed.
const ECHO_CHARS: usize = 40;

/// An untrusted field as shown in an error: cut after [`ECHO_CHARS`]
/// characters (saying how long it was), control characters escaped.
fn echo(raw: &str) -> String {
    let n = raw.chars().count();
    let shown: String = raw
        .chars()
        .take(ECHO_CHARS)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if n > ECHO_CHARS {
        format!("{shown}… ({n} characters)")
    } else {
        shown
    }
}

/// Parse a trace. Blank lines are skipped; whitespace around fields and CRLF
/// line ends are accepted; the quantiles may be empty (no traffic in the
/// step). Extension to SPEC §5: a row with `requests` and `errors` (and the
/// quantiles) all empty, like `40,,,,,`, is a gap — the source returned
/// nothing — and becomes a sample with NaN counts.
pub fn parse(text: &str) -> Result<Vec<Sample>, TraceError> {
    parse_noting(text).map(|p| p.samples)
}

/// Rows whose latency quantiles are out of order (a p50 above the p95, a
/// p95 above the p99): accepted as they are — real sources compute each
/// quantile on its own and can be slightly non-monotonic — but worth a
/// word. Displays as `line N: p50_ms 120 is above p95_ms 110; M rows have
/// latency quantiles out of order, replayed as they are`.
#[derive(Clone, Debug, PartialEq)]
pub struct InvertedQuantiles {
    /// 1-based line of the first such row.
    pub line: usize,
    /// Its first pair out of order: (lower field, value, higher field, value).
    pub pair: (&'static str, f64, &'static str, f64),
    /// How many rows are out of order.
    pub rows: usize,
}

impl fmt::Display for InvertedQuantiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, a, hi, b) = self.pair;
        let rows = match self.rows {
            1 => "1 row has".to_string(),
            n => format!("{n} rows have"),
        };
        write!(
            f,
            "line {}: {lo} {a} is above {hi} {b}; {rows} latency quantiles out of order, replayed as they are",
            self.line
        )
    }
}

/// A parsed trace and what was accepted but is worth saying.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub samples: Vec<Sample>,
    pub inverted: Option<InvertedQuantiles>,
}

/// The first pair of a row's quantiles out of order, comparing each
/// present one with the next present one (p50 with p99 when p95 is empty).
fn out_of_order(q: &[Option<f64>; 3]) -> Option<(&'static str, f64, &'static str, f64)> {
    let present: Vec<(usize, f64)> = q
        .iter()
        .enumerate()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    present
        .windows(2)
        .find(|w| w[0].1 > w[1].1)
        .map(|w| (FIELDS[3 + w[0].0], w[0].1, FIELDS[3 + w[1].0], w[1].1))
}

/// [`parse`], and the rows accepted with their quantiles out of order.
pub fn parse_noting(text: &str) -> Result<Parsed, TraceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((hline, header)) = lines.next() else {
        return Err(TraceError {
            line: 1,
            column: None,
            message: format!("empty file: expected the header `{HEADER}`"),
        });
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    if cols != FIELDS {
        let what = if header
            .split(',')
            .next()
            .map(str::trim)
            .and_then(|f| f.parse::<f64>().ok())
            .is_some()
        {
            "missing header"
        } else {
            "bad header"
        };
        return Err(TraceError {
            line: hline,
            column: None,
            message: format!(
                "{what}: expected `{HEADER}`, found `{}`",
                echo(header.trim())
            ),
        });
    }
    let mut out: Vec<Sample> = Vec::new();
    let mut inverted: Option<InvertedQuantiles> = None;
    for (ln, line) in lines {
        let mut cols = Vec::with_capacity(6);
        let mut pos = 1;
        for f in line.split(',') {
            cols.push((pos, f.trim()));
            pos += f.chars().count() + 1;
        }
        if cols.len() != FIELDS.len() {
            return Err(TraceError {
                line: ln,
                column: None,
                message: format!(
                    "wrong number of fields: expected 6 ({HEADER}), found {}",
                    cols.len()
                ),
            });
        }
        let err = |i: usize, message: String| TraceError {
            line: ln,
            column: Some(cols[i].0),
            message,
        };
        let num = |i: usize| -> Result<f64, TraceError> {
            let raw = cols[i].1;
            if raw.is_empty() {
                return Err(err(i, format!("{}: missing value", FIELDS[i])));
            }
            let max = match i {
                0 => MAX_T,
                1 | 2 => MAX_COUNT,
                _ => MAX_LATENCY_MS,
            };
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() && v.abs() <= max => Ok(v),
                Ok(v) if v.is_finite() => Err(err(
                    i,
                    format!(
                        "{}: `{}` is out of range (at most {max:e} in magnitude)",
                        FIELDS[i],
                        echo(raw)
                    ),
                )),
                _ => Err(err(
                    i,
                    format!("{}: `{}` is not a number", FIELDS[i], echo(raw)),
                )),
            }
        };
        let t = num(0)?;
        if let Some(prev) = out.last()
            && t <= prev.t
        {
            return Err(err(
                0,
                format!(
                    "t: {t} does not increase: the previous row has t={}",
                    prev.t
                ),
            ));
        }
        // Extension: a row whose counts are both empty is a gap (no data).
        if cols[1].1.is_empty() && cols[2].1.is_empty() {
            if let Some(i) = (3..6).find(|&i| !cols[i].1.is_empty()) {
                return Err(err(
                    i,
                    format!(
                        "{}: a row without counts (a gap) cannot have latencies",
                        FIELDS[i]
                    ),
                ));
            }
            out.push(Sample {
                t,
                requests: f64::NAN,
                errors: f64::NAN,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
            });
            continue;
        }
        let requests = num(1)?;
        let errors = num(2)?;
        for (i, v) in [(1, requests), (2, errors)] {
            if v < 0.0 {
                return Err(err(i, format!("{}: negative count {v}", FIELDS[i])));
            }
        }
        if errors > requests {
            return Err(err(
                2,
                format!("errors: {errors} errors exceed the {requests} requests of the step"),
            ));
        }
        let mut q = [None; 3];
        for (k, slot) in q.iter_mut().enumerate() {
            let i = 3 + k;
            if cols[i].1.is_empty() {
                continue;
            }
            let v = num(i)?;
            if v < 0.0 {
                return Err(err(i, format!("{}: negative latency {v}", FIELDS[i])));
            }
            *slot = Some(v);
        }
        if let Some(pair) = out_of_order(&q) {
            inverted
                .get_or_insert(InvertedQuantiles {
                    line: ln,
                    pair,
                    rows: 0,
                })
                .rows += 1;
        }
        out.push(Sample {
            t,
            requests,
            errors,
            p50_ms: q[0],
            p95_ms: q[1],
            p99_ms: q[2],
        });
    }
    Ok(Parsed {
        samples: out,
        inverted,
    })
}

/// Write samples in the trace format (header included). A gap (NaN
/// requests) is written as a row with empty fields, which [`parse`] reads
/// back as a gap.
pub fn to_csv(samples: &[Sample]) -> String {
    let mut s = String::with_capacity(32 * (samples.len() + 1));
    s.push_str(HEADER);
    s.push('\n');
    let q = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
    for x in samples {
        if !x.requests.is_finite() {
            s.push_str(&format!("{},,,,,\n", x.t));
            continue;
        }
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            x.t,
            x.requests,
            x.errors,
            q(x.p50_ms),
            q(x.p95_ms),
            q(x.p99_ms)
        ));
    }
    s
}

/// What `shipdeck replay --json` prints (SPEC §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// `"regression"`, `"healthy"`, or `"insufficient_data"` when the trace
    /// cannot be judged (no usable baseline, no window rows, a window that
    /// ends in a gap or inside the warm-up).
    pub verdict: String,
    /// The `t` of the row that decided, as the trace writes it: `30` for a
    /// row at `t = 30`, `40.5` for one at `40.5` (never `30.0`).
    #[serde(serialize_with = "t_as_written")]
    pub detected_at: Option<f64>,
    /// `"error_rate"`, `"latency_p50"`, `"latency_p95"`, `"latency_p99"`,
    /// `"throughput"` (a collapse of requests), or null.
    pub metric: Option<String>,
    pub reason: String,
}

/// A whole `t` as an integer, a fractional one as a decimal.
fn t_as_written<S: serde::Serializer>(t: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match *t {
        Some(t) if t.fract() == 0.0 && t.abs() < 9.0e15 => s.serialize_i64(t as i64),
        Some(t) => s.serialize_f64(t),
        None => s.serialize_none(),
    }
}

impl ReplayReport {
    pub fn is_regression(&self) -> bool {
        self.verdict == "regression"
    }

    /// The command's exit code (SPEC §3): 4 regression, 0 healthy, 1 when
    /// there was not enough data to judge — never 0.
    pub fn exit_code(&self) -> i32 {
        match self.verdict.as_str() {
            "regression" => 4,
            "healthy" => 0,
            _ => 1,
        }
    }
}

/// Feed the samples one by one to the detector and report its final
/// verdict: a regression, health, or — when the trace could not be judged —
/// `"insufficient_data"` with the reason (never health by default).
pub fn replay(samples: &[Sample], cfg: DetectorConfig) -> ReplayReport {
    replay_with_reference(samples, &[], cfg)
}

/// [`replay`] with a seasonal reference: `reference[i]`, where present, is
/// the same step of `samples[i]` at an earlier time (e.g. a day before); see
/// [`Detector::push_with_reference`].
pub fn replay_with_reference(
    samples: &[Sample],
    reference: &[Option<Sample>],
    cfg: DetectorConfig,
) -> ReplayReport {
    let window_s = cfg.window_s;
    let mut det = Detector::new(cfg);
    for (i, s) in samples.iter().enumerate() {
        let r = reference.get(i).copied().flatten();
        if det.push_with_reference(*s, r).kind == VerdictKind::Regression {
            break;
        }
    }
    let v = det.verdict();
    let insufficient = |reason: String| ReplayReport {
        verdict: "insufficient_data".into(),
        detected_at: None,
        metric: None,
        reason,
    };
    match v.kind {
        VerdictKind::Regression => ReplayReport {
            verdict: "regression".into(),
            detected_at: v.detected_at,
            metric: v.metric.map(|m| m.as_str().to_string()),
            reason: v.reason.clone(),
        },
        VerdictKind::Healthy => ReplayReport {
            verdict: "healthy".into(),
            detected_at: None,
            metric: None,
            reason: v.reason.clone(),
        },
        VerdictKind::InsufficientData => insufficient(v.reason.clone()),
        // Window rows, all past the window's end (`[monitor] window`
        // shorter than the trace's step): it said "collecting the
        // baseline: 180 steps so far" of a baseline long complete.
        VerdictKind::Collecting
            if samples.iter().any(|s| s.t > 0.0)
                && !samples.iter().any(|s| s.t > 0.0 && s.t <= window_s + 1e-9) =>
        {
            let first = samples
                .iter()
                .map(|s| s.t)
                .find(|t| *t > 0.0)
                .unwrap_or(0.0);
            insufficient(format!(
                "insufficient data: the monitoring window ends at t={}, before the trace's first window row at t={}",
                fmt_t(window_s),
                fmt_t(first)
            ))
        }
        VerdictKind::Collecting if samples.iter().any(|s| s.t > 0.0) => {
            insufficient(format!("the trace ends before a verdict: {}", v.reason))
        }
        VerdictKind::Collecting => insufficient(if samples.is_empty() {
            "insufficient data: the trace has no rows".into()
        } else {
            "insufficient data: the trace has no monitoring-window rows (t > 0)".into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::eval::{FIXTURES, fixture_csv};

    fn err(text: &str) -> TraceError {
        parse(text).expect_err("should not parse")
    }

    #[test]
    fn quantiles_out_of_order_are_accepted_and_counted_from_their_first_line() {
        let text = "t,requests,errors,p50_ms,p95_ms,p99_ms\n-20,100,0,40,120,230\n-10,100,0,300,,230\n10,100,0,40,250,230\n20,100,0,40,120,\n";
        let p = parse_noting(text).unwrap();
        assert_eq!(p.samples.len(), 4);
        assert_eq!(p.samples[1].p50_ms, Some(300.0));
        let inv = p.inverted.expect("two rows out of order");
        assert_eq!(inv.line, 3);
        assert_eq!(inv.rows, 2);
        assert_eq!(inv.pair, ("p50_ms", 300.0, "p99_ms", 230.0));
        let spec = "t,requests,errors,p50_ms,p95_ms,p99_ms\n-1790,1187,3,41.2,120.5,230.0\n";
        assert!(parse_noting(spec).unwrap().inverted.is_none());
    }

    #[test]
    fn parses_the_spec_example_with_crlf_whitespace_and_empty_quantiles() {
        let text = "  t, requests ,errors,p50_ms,p95_ms,p99_ms  \r\n-1790,1187,3,41.2,120.5,230.0\r\n\r\n-1780, 0 ,0,,,\r\n10,1203,41,44.0,131.9,260.3\r\n20.5,,,,,\r\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].t, -1790.0);
        assert_eq!(s[0].requests, 1187.0);
        assert_eq!(s[0].p99_ms, Some(230.0));
        assert_eq!((s[1].requests, s[1].p50_ms), (0.0, None));
        assert_eq!(s[2].errors, 41.0);
        assert_eq!(s[3].t, 20.5);
        assert!(s[3].requests.is_nan(), "an empty row is a gap");
    }

    #[test]
    fn every_malformation_names_its_line_and_field() {
        let h = format!("{HEADER}\n");
        let e = err("");
        assert_eq!(
            e.to_string(),
            "line 1: empty file: expected the header `t,requests,errors,p50_ms,p95_ms,p99_ms`"
        );
        let e = err("-10,5,0,1,2,3\n");
        assert!(e.to_string().starts_with("line 1: missing header"), "{e}");
        let e = err("t,requests,errors\n");
        assert!(e.to_string().starts_with("line 1: bad header"), "{e}");
        let e = err(&format!("{h}-20,5,0,1,2,3\n-10,abc,0,1,2,3\n"));
        assert_eq!(
            e.to_string(),
            "line 3: requests: `abc` is not a number (column 5)"
        );
        assert_eq!((e.line, e.column), (3, Some(5)));
        let e = err(&format!("{h}-10,5,-1,1,2,3\n"));
        assert_eq!(
            e.to_string(),
            "line 2: errors: negative count -1 (column 7)"
        );
        let e = err(&format!("{h}-10,5,6,1,2,3\n"));
        assert_eq!(
            e.to_string(),
            "line 2: errors: 6 errors exceed the 5 requests of the step (column 7)"
        );
        let e = err(&format!("{h}-10,5,0,1,2,3\n-10,5,0,1,2,3\n"));
        assert_eq!(
            e.to_string(),
            "line 3: t: -10 does not increase: the previous row has t=-10 (column 1)"
        );
        let e = err(&format!("{h}-10,5,0,1,2\n"));
        assert_eq!(
            e.to_string(),
            "line 2: wrong number of fields: expected 6 (t,requests,errors,p50_ms,p95_ms,p99_ms), found 5"
        );
        let e = err(&format!("{h}-10,5,0,1,2,-3\n"));
        assert!(
            e.to_string()
                .starts_with("line 2: p99_ms: negative latency -3 (column 13)"),
            "{e}"
        );
        let e = err(&format!("{h}-10,5,,1,2,3\n"));
        assert_eq!(e.to_string(), "line 2: errors: missing value (column 7)");
        let e = err(&format!("{h}x,5,0,1,2,3\n"));
        assert_eq!(e.to_string(), "line 2: t: `x` is not a number (column 1)");
        let e = err(&format!("{h}-10,,,1,,\n"));
        assert!(
            e.to_string()
                .contains("p50_ms: a row without counts (a gap) cannot have latencies"),
            "{e}"
        );
        let e = err(&format!("{h}-10,NaN,0,1,2,3\n"));
        assert!(
            e.to_string().contains("requests: `NaN` is not a number"),
            "{e}"
        );
    }

    #[test]
    fn csv_round_trips() {
        let s = vec![
            Sample {
                t: -10.0,
                requests: 100.0,
                errors: 1.0,
                p50_ms: Some(40.5),
                p95_ms: Some(120.0),
                p99_ms: Some(250.0),
            },
            Sample {
                t: 0.0,
                requests: 0.0,
                errors: 0.0,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
            },
            Sample {
                t: 10.0,
                requests: f64::NAN,
                errors: f64::NAN,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
            },
        ];
        let back = parse(&to_csv(&s)).unwrap();
        assert_eq!(back[..2], s[..2]);
        assert!(back[2].requests.is_nan() && back[2].t == 10.0);
    }

    #[test]
    fn replay_report_serializes_as_the_spec_says() {
        let text = fixture_csv("error_spike").unwrap();
        let r = replay(&parse(&text).unwrap(), DetectorConfig::default());
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["detected_at", "metric", "reason", "verdict"]);
        assert_eq!(v["verdict"], "regression");
        assert_eq!(v["metric"], "error_rate");
        assert!(v["detected_at"].as_f64().unwrap() > 0.0);
        // The t of the deciding row as the trace writes it: a whole t is an
        // integer in the JSON text, a fractional one stays a decimal.
        let at = |t: f64| {
            let r = ReplayReport {
                detected_at: Some(t),
                ..r.clone()
            };
            serde_json::to_string(&r).unwrap()
        };
        assert!(at(30.0).contains("\"detected_at\":30,"), "{}", at(30.0));
        assert!(at(40.5).contains("\"detected_at\":40.5,"), "{}", at(40.5));
        let back: ReplayReport = serde_json::from_str(&at(30.0)).unwrap();
        assert_eq!(back.detected_at, Some(30.0));
        let r = replay(
            &parse(&fixture_csv("healthy").unwrap()).unwrap(),
            DetectorConfig::default(),
        );
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["verdict"], "healthy");
        assert!(v["detected_at"].is_null() && v["metric"].is_null());
    }

    /// A window shorter than the trace's step holds none of its rows: the
    /// reason said "collecting the baseline: 180 steps so far".
    #[test]
    fn a_window_that_ends_before_the_first_window_row_says_so() {
        let s = parse(&fixture_csv("healthy").unwrap()).unwrap();
        let r = replay(
            &s,
            DetectorConfig {
                window_s: 5.0,
                ..DetectorConfig::default()
            },
        );
        assert_eq!(
            (r.verdict.as_str(), r.exit_code()),
            ("insufficient_data", 1)
        );
        assert_eq!(
            r.reason,
            "insufficient data: the monitoring window ends at t=+5s, before the trace's first window row at t=+10s"
        );
    }

    #[test]
    fn replay_without_enough_data_is_insufficient_data_never_healthy() {
        let mut s = parse(&fixture_csv("healthy").unwrap()).unwrap();
        for x in s.iter_mut().filter(|x| x.t > 1700.0) {
            x.requests = f64::NAN;
        }
        let r = replay(&s, DetectorConfig::default());
        assert_eq!(
            (r.verdict.as_str(), r.exit_code()),
            ("insufficient_data", 1)
        );
        assert!(
            r.reason
                .starts_with("insufficient data: no metrics for 10 steps"),
            "{}",
            r.reason
        );
        let base_only: Vec<Sample> = s.iter().copied().filter(|x| x.t <= 0.0).collect();
        let r = replay(&base_only, DetectorConfig::default());
        assert_eq!(
            (r.verdict.as_str(), r.exit_code()),
            ("insufficient_data", 1)
        );
        assert!(
            r.reason.contains("no monitoring-window rows"),
            "{}",
            r.reason
        );
        // Window rows that end inside the warm-up: no verdict yet.
        let early: Vec<Sample> = s.iter().copied().filter(|x| x.t <= 10.0).collect();
        let r = replay(&early, DetectorConfig::default());
        assert_eq!(r.exit_code(), 1, "{r:?}");
        assert!(r.reason.contains("warm-up"), "{}", r.reason);
    }

    #[test]
    fn a_header_only_or_all_gap_trace_is_insufficient_data() {
        let r = replay(
            &parse(&format!("{HEADER}\n")).unwrap(),
            DetectorConfig::default(),
        );
        assert_eq!(
            (r.verdict.as_str(), r.exit_code()),
            ("insufficient_data", 1)
        );
        assert!(r.reason.contains("no rows"), "{}", r.reason);
        let gaps: String = (-30..=30)
            .filter(|i| *i != 0)
            .map(|i| format!("{},,,,,\n", i * 10))
            .collect();
        let r = replay(
            &parse(&format!("{HEADER}\n{gaps}")).unwrap(),
            DetectorConfig::default(),
        );
        assert_eq!(
            (r.verdict.as_str(), r.exit_code()),
            ("insufficient_data", 1)
        );
        assert!(r.reason.contains("0 usable steps"), "{}", r.reason);
    }

    #[test]
    fn a_four_step_baseline_with_most_requests_failing_is_insufficient_data() {
        let mut text = format!("{HEADER}\n");
        for (t, e) in [(-30, 700), (-20, 650), (-10, 800), (0, 600)] {
            text.push_str(&format!("{t},1000,{e},40,120,250\n"));
        }
        for k in 1..=30 {
            text.push_str(&format!("{},1000,{},40,120,250\n", k * 10, 600 + k));
        }
        let r = replay(&parse(&text).unwrap(), DetectorConfig::default());
        assert_eq!(
            (r.verdict.as_str(), r.exit_code()),
            ("insufficient_data", 1)
        );
        assert!(
            r.reason
                .contains("the baseline has 4 usable steps (need 5)"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn a_one_step_baseline_is_counted_in_the_singular() {
        let mut text = format!("{HEADER}\n0,1000,5,40,120,250\n");
        for k in 1..=30 {
            text.push_str(&format!("{},1000,5,40,120,250\n", k * 10));
        }
        let r = replay(&parse(&text).unwrap(), DetectorConfig::default());
        assert_eq!(r.verdict.as_str(), "insufficient_data");
        assert!(
            r.reason.contains("the baseline has 1 usable step (need 5)"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn values_that_would_overflow_the_arithmetic_are_rejected_with_their_line() {
        let h = format!("{HEADER}\n");
        let e = err(&format!("{h}-20,5,0,1,2,3\n-10,1e308,0,1,2,3\n"));
        assert_eq!(
            e.to_string(),
            "line 3: requests: `1e308` is out of range (at most 1e12 in magnitude) (column 5)"
        );
        let e = err(&format!("{h}-10,5,0,1,2,1e300\n"));
        assert!(
            e.to_string()
                .starts_with("line 2: p99_ms: `1e300` is out of range"),
            "{e}"
        );
        let e = err(&format!("{h}1e10,5,0,1,2,3\n"));
        assert!(
            e.to_string()
                .starts_with("line 2: t: `1e10` is out of range"),
            "{e}"
        );
        // At the limits, the detector's arithmetic stays finite.
        let mut text = h.clone();
        for k in -10..=10 {
            text.push_str(&format!(
                "{},1e12,{},1e9,1e9,1e9\n",
                k * 10,
                if k > 0 { 1e11 } else { 1e9 }
            ));
        }
        let r = replay(&parse(&text).unwrap(), DetectorConfig::default());
        assert!(
            !r.reason.contains("NaN") && !r.reason.contains("inf"),
            "{}",
            r.reason
        );
        assert_eq!(r.verdict, "regression", "{}", r.reason);
    }

    #[test]
    fn a_huge_field_is_cut_in_the_error() {
        let big = "9".repeat(5_000_000) + "x";
        let e = err(&format!("{HEADER}\n-10,{big},0,1,2,3\n"));
        let msg = e.to_string();
        assert!(msg.len() < 200, "{} bytes", msg.len());
        assert!(msg.starts_with("line 2: requests: `9999"), "{msg}");
        assert!(msg.contains("… (5000001 characters)"), "{msg}");
        let e = err(&format!("{big}\n"));
        assert!(e.to_string().len() < 200);
    }

    #[test]
    fn replay_with_a_seasonal_reference_expects_the_falls_the_reference_shows() {
        // Traffic slides to a quarter in five minutes and stays there: with
        // no reference it is a fall that does not recover; the same slide a
        // day earlier makes it expected.
        let samples: Vec<Sample> = (-179..=180)
            .map(|i| {
                let t = i as f64 * 10.0;
                let f = if t > 0.0 {
                    1.0 - 0.75 * (t / 300.0).min(1.0)
                } else {
                    1.0
                };
                let n = (500.0 * f + (i % 7) as f64 * 3.0).round();
                Sample {
                    t,
                    requests: n,
                    errors: 0.0,
                    p50_ms: Some(40.0 + (i % 5) as f64),
                    p95_ms: Some(120.0 + (i % 3) as f64),
                    p99_ms: Some(250.0 + (i % 4) as f64),
                }
            })
            .collect();
        let alone = replay(&samples, DetectorConfig::default());
        assert_eq!(alone.metric.as_deref(), Some("throughput"), "{alone:?}");
        assert!(alone.reason.contains("no recovery"), "{}", alone.reason);
        let reference: Vec<Option<Sample>> = samples.iter().copied().map(Some).collect();
        let with = replay_with_reference(&samples, &reference, DetectorConfig::default());
        assert_eq!(
            (with.verdict.as_str(), with.exit_code()),
            ("healthy", 0),
            "{with:?}"
        );
    }

    /// The committed fixtures are exactly what the generator makes (set
    /// SHIPDECK_REGEN_FIXTURES=1 to rewrite them), and each replays to its
    /// expected verdict.
    #[test]
    fn fixture_traces_replay_to_their_verdicts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traces");
        for name in FIXTURES {
            let path = dir.join(format!("{name}.csv"));
            let want = fixture_csv(name).unwrap();
            if std::env::var_os("SHIPDECK_REGEN_FIXTURES").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text, want, "{name}.csv differs from the generator");
            if name == "malformed_line" {
                let e = parse(&text).unwrap_err();
                assert_eq!(e.line, 5, "{e}");
                assert!(
                    e.to_string()
                        .starts_with("line 5: errors: `n/a` is not a number (column"),
                    "{e}"
                );
                assert!(
                    e.to_string().contains("errors: `n/a` is not a number"),
                    "{e}"
                );
                continue;
            }
            let samples = parse(&text).unwrap();
            let rows = if name.starts_with("coarse_") { 12 } else { 360 };
            assert_eq!(samples.len(), rows, "{name}: 1 h");
            let r = replay(&samples, DetectorConfig::default());
            let expected = match name {
                "healthy" | "traffic_dip" | "coarse_warmup" | "warmup" => (None, "healthy"),
                "error_spike"
                | "slow_creep"
                | "coarse_error_spike"
                | "low_traffic_x3"
                | "uneven_warmup_error_rise" => (Some("error_rate"), "regression"),
                "latency_p95" => (Some("latency_p95"), "regression"),
                "coarse_latency_x2" | "coarse_early_bump" => (Some("latency_p50"), "regression"),
                _ => (Some("throughput"), "regression"),
            };
            assert_eq!(
                (r.metric.as_deref(), r.verdict.as_str()),
                expected,
                "{name}: {}",
                r.reason
            );
            if r.is_regression() {
                let at = r.detected_at.unwrap();
                let by = match name {
                    "slow_creep" | "low_traffic_x3" => 1800.0,
                    "coarse_error_spike" => 600.0,
                    // Latency at 5-minute steps: a steady shift since the
                    // deploy by the second slow step.
                    "coarse_latency_x2" | "coarse_early_bump" => 600.0,
                    // The first step past the warm-up confirms it.
                    "uneven_warmup_error_rise" => 40.0,
                    _ => 120.0,
                };
                assert!(at > 0.0 && at <= by, "{name}: detected at {at}");
            }
        }
    }
}
