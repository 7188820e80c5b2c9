//! Property tests of every parser that reads outside text: the config
//! file, the replay trace, the `/metrics` exposition and Prometheus' JSON
//! answers. Arbitrary input never panics (it is accepted or refused with
//! an error); valid generated input round-trips.
//!
//! Bounded so they run in the ordinary test command: [`ARBITRARY`] cases
//! per "never panics" target and [`VALID`] per round-trip target (fixed by
//! proptest's config, with its shrinking on failure).
//!
//! Deterministic: the cases come from a fixed seed ([`SEED`]), so a run
//! fails or passes the same way every time and on every machine. To
//! explore other inputs, set `PROPTEST_RNG_SEED=<n>` (any number).

use std::path::Path;

use proptest::prelude::*;
use shipdeck::backends::metrics::{exposition, prometheus};
use shipdeck::config::Config;
use shipdeck::monitor::Sample;
use shipdeck::monitor::trace;

/// Cases per "arbitrary input never panics" target.
const ARBITRARY: u32 = 1000;
/// Cases per "valid input round-trips" target.
const VALID: u32 = 300;

/// The cases' seed, unless `PROPTEST_RNG_SEED` names another.
const SEED: u64 = 0x5eed_dec6;

fn seeded(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let rng_seed = match default.rng_seed {
        proptest::test_runner::RngSeed::Random => proptest::test_runner::RngSeed::Fixed(SEED),
        chosen => chosen,
    };
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed,
        ..default
    }
}

fn arbitrary() -> ProptestConfig {
    seeded(ARBITRARY)
}

fn valid() -> ProptestConfig {
    seeded(VALID)
}

/// Text that looks like the target format often enough to reach deep into
/// the parser: fragments of it, shuffled, with arbitrary characters.
fn text_from(fragments: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(fragments).prop_map(str::to_string),
            1 => any::<String>(),
            1 => "[ -~]{0,12}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

const CONFIG_BITS: &[&str] = &[
    "[[environments]]\n",
    "name = \"prod\"\n",
    "name = \"\u{1b}]0;x\u{7}\"\n",
    "version = { url = \"http://h/v\" }\n",
    "version = { command = [\"echo\", \"v1\"], timeout = \"999999999d\" }\n",
    "deploy = { webhook = \"http://u:p@h/d\", timeout = \"5000000000h\" }\n",
    "deploy = { command = [] }\n",
    "[monitor]\n",
    "window = \"30m\"\n",
    "baseline = \"18446744073709551615ms\"\n",
    "max_p95_ms = -5.0\n",
    "max_error_rate = nan\n",
    "max_p99_ms = inf\n",
    "[metrics]\n",
    "source = \"prometheus\"\n",
    "step = \"0ms\"\n",
    "gates = { requires_approval = true, approval_stage = \"prod\" }\n",
    "project = \"p\"\n",
    "\"",
    "=",
    "\n",
];

const TRACE_BITS: &[&str] = &[
    "t,requests,errors,p50_ms,p95_ms,p99_ms\n",
    "-10,100,1,40.0,120.0,200.0\n",
    "10,100,200,,,\n",
    "1e308,1e308,1e308,1e308,1e308,1e308\n",
    "NaN,inf,-inf,,,\n",
    ",,,,,\n",
    "-1,-5,0,1,2,3\n",
    "\r\n",
    ",",
    "\u{feff}",
];

const EXPOSITION_BITS: &[&str] = &[
    "# TYPE http_requests_total counter\n",
    "# HELP x y\n",
    "http_requests_total{env=\"prod\",code=\"500\"} 3\n",
    "http_request_duration_seconds_bucket{le=\"+Inf\"} 1e308 1700000000000\n",
    "m{a=\"\\\"\\\\\\n\"} NaN\n",
    "m{",
    "}",
    "=\"",
    " -Inf",
    " 99999999999999999999",
    "\n",
];

const PROM_BITS: &[&str] = &[
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[",
    "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"x\"}",
    "{\"metric\":{},\"value\":[1700000000.5,\"1\"]}",
    "{\"metric\":{},\"values\":[[1,\"NaN\"],[2,\"+Inf\"]]}",
    "\"resultType\":\"matrix\"",
    "\"resultType\":\"scalar\",\"result\":[1,\"2\"]",
    "]}}",
    ",",
    "[1e999,\"1e999\"]",
    "null",
];

proptest! {
    #![proptest_config(arbitrary())]

    #[test]
    fn the_config_parser_never_panics(src in text_from(CONFIG_BITS)) {
        let _ = Config::parse(&src, Path::new("fuzz.toml"));
    }

    #[test]
    fn the_trace_parser_never_panics(src in text_from(TRACE_BITS)) {
        if let Ok(samples) = trace::parse(&src) {
            // What it accepts, the detector can replay.
            let _ = trace::replay(&samples, Default::default());
        }
    }

    #[test]
    fn the_exposition_parser_never_panics(src in text_from(EXPOSITION_BITS)) {
        let _ = exposition::parse(&src);
    }

    #[test]
    fn the_prometheus_answer_parser_never_panics(
        body in text_from(PROM_BITS),
        status in prop::sample::select(vec![200u16, 400, 422, 500, 503]),
    ) {
        let _ = prometheus::parse_answer("http://prom", status, body.as_bytes());
    }
}

fn env_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,15}"
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..=59).prop_map(|n| format!("{n}s")),
        (1u32..=59).prop_map(|n| format!("{n}m")),
        (1u32..=23).prop_map(|n| format!("{n}h")),
        (100u32..=999).prop_map(|n| format!("{n}ms")),
    ]
}

/// A trace row's values: counts and quantiles in tenths (exact in CSV).
fn sample_rows() -> impl Strategy<Value = Vec<Sample>> {
    prop::collection::vec(
        (
            1u32..=60,
            0u32..=100_000,
            0u32..=1000,
            prop::option::of((0u32..=50_000, 0u32..=50_000, 0u32..=50_000)),
        ),
        1..40,
    )
    .prop_map(|rows| {
        let mut t = -600.0;
        rows.into_iter()
            .map(|(dt, requests, err_permille, q)| {
                t += f64::from(dt);
                let errors = (u64::from(requests) * u64::from(err_permille) / 1000) as f64;
                let q = q.map(|(a, b, c)| {
                    let mut v = [a, b, c];
                    v.sort_unstable();
                    v.map(|x| f64::from(x) / 10.0)
                });
                Sample {
                    t,
                    requests: f64::from(requests),
                    errors,
                    p50_ms: q.map(|v| v[0]),
                    p95_ms: q.map(|v| v[1]),
                    p99_ms: q.map(|v| v[2]),
                }
            })
            .collect()
    })
}

/// A label value with the characters the exposition format escapes.
fn label_value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 \"\\\\\n{},=.é]{0,12}"
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

proptest! {
    #![proptest_config(valid())]

    #[test]
    fn generated_configs_parse_with_their_names_and_durations(
        names in prop::collection::hash_set(env_name(), 1..6),
        window in duration(),
        step in (1u32..=30).prop_map(|n| format!("{n}s")),
        project in "[A-Za-z0-9 ._-]{1,20}",
    ) {
        let names: Vec<String> = names.into_iter().collect();
        let mut src = format!(
            "project = \"{project}\"\n[monitor]\nwindow = \"{window}\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://127.0.0.1:1/metrics\"\nstep = \"{step}\"\n"
        );
        for n in &names {
            src.push_str(&format!(
                "\n[[environments]]\nname = \"{n}\"\nversion = {{ url = \"http://h/{n}/version\" }}\ndeploy = {{ command = [\"./deploy\", \"{{env}}\", \"{{version}}\"] }}\n"
            ));
        }
        let cfg = Config::parse(&src, Path::new("gen.toml"))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{src}")))?;
        prop_assert_eq!(cfg.names(), names.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(cfg.monitor.window.to_string(), window);
        prop_assert_eq!(&cfg.project, &project);
    }

    #[test]
    fn traces_round_trip_through_csv(samples in sample_rows()) {
        let csv = trace::to_csv(&samples);
        let back = trace::parse(&csv).map_err(|e| TestCaseError::fail(format!("{e}\n{csv}")))?;
        prop_assert_eq!(back, samples);
    }

    #[test]
    fn expositions_round_trip(
        series in prop::collection::vec(
            (
                "[a-z_][a-z0-9_]{0,10}",
                prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", label_value(), 0..4),
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                prop::option::of(0i64..=4_000_000_000_000),
            ),
            0..20,
        )
    ) {
        let mut text = String::new();
        for (name, labels, value, ts) in &series {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let braces = if l.is_empty() { String::new() } else { format!("{{{}}}", l.join(",")) };
            let ts = ts.map(|t| format!(" {t}")).unwrap_or_default();
            text.push_str(&format!("{name}{braces} {value}{ts}\n"));
        }
        let parsed = exposition::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.samples.len(), series.len());
        for (s, (name, labels, value, ts)) in parsed.samples.iter().zip(&series) {
            prop_assert_eq!(&s.name, name);
            let want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(&s.labels, &want);
            prop_assert_eq!(s.value, *value);
            prop_assert_eq!(s.timestamp_ms, *ts);
        }
    }

    #[test]
    fn prometheus_answers_round_trip(
        series in prop::collection::vec(
            prop::collection::vec((0u32..=2_000_000_000, -1e12f64..1e12), 1..10),
            0..6,
        ),
        matrix in any::<bool>(),
    ) {
        let result: Vec<serde_json::Value> = series
            .iter()
            .map(|s| {
                let pairs: Vec<serde_json::Value> = s
                    .iter()
                    .map(|(t, v)| serde_json::json!([f64::from(*t) / 1000.0, v.to_string()]))
                    .collect();
                if matrix {
                    serde_json::json!({"metric": {}, "values": pairs})
                } else {
                    serde_json::json!({"metric": {}, "value": pairs[0]})
                }
            })
            .collect();
        let body = serde_json::json!({
            "status": "success",
            "data": {"resultType": if matrix { "matrix" } else { "vector" }, "result": result},
        })
        .to_string();
        let parsed = prometheus::parse_answer("http://prom", 200, body.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        let want: Vec<Vec<(f64, f64)>> = series
            .iter()
            .map(|s| {
                let all: Vec<(f64, f64)> = s.iter().map(|(t, v)| (f64::from(*t) / 1000.0, *v)).collect();
                if matrix { all } else { all[..1].to_vec() }
            })
            .collect();
        prop_assert_eq!(parsed, want);
    }
}
