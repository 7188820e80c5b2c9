//! `shipdeck replay` as a user runs it: every fixture trace under
//! tests/fixtures/traces/ through the real binary, its verdict, its exit
//! code (SPEC §3/§5: 4 regression, 0 healthy, 1 insufficient data, 2 a
//! malformed file) and its one-line reason.

mod common;

use common::Home;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/traces/{name}.csv",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs `replay --json` on a fixture: (exit code, JSON document or stderr).
fn replay(name: &str) -> (i32, serde_json::Value, String) {
    let home = Home::new();
    let out = home
        .cmd()
        .args(["replay", &fixture(name), "--json"])
        .output()
        .expect("run shipdeck");
    let code = out.status.code().expect("exit code");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (code, json, stderr)
}

#[test]
fn every_fixture_replays_to_its_verdict_and_exit_code() {
    for (name, code, verdict, metric) in [
        ("healthy", 0, "healthy", None),
        ("traffic_dip", 0, "healthy", None),
        ("coarse_warmup", 0, "healthy", None),
        ("warmup", 0, "healthy", None),
        (
            "uneven_warmup_error_rise",
            4,
            "regression",
            Some("error_rate"),
        ),
        (
            "uneven_warmup_half_held",
            4,
            "regression",
            Some("error_rate"),
        ),
        ("error_spike", 4, "regression", Some("error_rate")),
        ("slow_creep", 4, "regression", Some("error_rate")),
        ("coarse_error_spike", 4, "regression", Some("error_rate")),
        (
            "coarse_low_traffic_x10",
            4,
            "regression",
            Some("error_rate"),
        ),
        ("coarse_latency_x2", 4, "regression", Some("latency_p50")),
        ("coarse_early_bump", 4, "regression", Some("latency_p50")),
        ("low_traffic_x3", 4, "regression", Some("error_rate")),
        ("latency_p95", 4, "regression", Some("latency_p95")),
        ("throughput_collapse", 4, "regression", Some("throughput")),
        ("header_only", 1, "insufficient_data", None),
        ("all_gaps", 1, "insufficient_data", None),
        ("short_baseline_errors", 1, "insufficient_data", None),
    ] {
        let (got, json, stderr) = replay(name);
        assert_eq!(got, code, "{name}: {json} {stderr}");
        assert_eq!(json["verdict"], verdict, "{name}: {json}");
        assert_eq!(json["metric"].as_str(), metric, "{name}: {json}");
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["detected_at", "metric", "reason", "verdict"],
            "{name}"
        );
        let reason = json["reason"].as_str().unwrap();
        assert!(
            !reason.contains('\n') && !reason.is_empty(),
            "{name}: {reason}"
        );
        for rust_name in ["InsufficientData", "Collecting", "NaN", "inf"] {
            assert!(!reason.contains(rust_name), "{name}: {reason}");
        }
        assert_eq!(json["detected_at"].is_null(), code != 4, "{name}: {json}");
    }
}

#[test]
fn the_coarse_sharp_regression_is_called_by_its_second_five_minute_step() {
    let (_, json, _) = replay("coarse_error_spike");
    let at = json["detected_at"].as_f64().unwrap();
    assert!(at <= 600.0, "{json}");
}

#[test]
fn a_low_traffic_x10_error_rise_is_called_by_its_second_five_minute_step() {
    // 2 req/s, one to seven errors a 5-minute step in the baseline, then
    // 16 and 21: six baseline steps' dispersion is not widened again.
    let (_, json, _) = replay("coarse_low_traffic_x10");
    assert_eq!(json["detected_at"].as_f64(), Some(600.0), "{json}");
}

#[test]
fn an_uneven_warmup_that_holds_is_called_at_the_first_step_past_it() {
    let (_, json, _) = replay("uneven_warmup_error_rise");
    assert_eq!(json["detected_at"].as_f64(), Some(40.0), "{json}");
    let reason = json["reason"].as_str().unwrap();
    assert!(reason.contains("held past the warm-up"), "{reason}");
}

#[test]
fn a_step_past_the_warmup_nearer_its_level_than_the_baseline_confirms_it() {
    // The same trace with 11 errors in 601 requests at t=40 (1.8%): below
    // 4/5 of the warm-up's mean rate (2.7%), yet more than half its excess
    // over the baseline (0.52%), so the warm-up's evidence counts.
    let (_, json, _) = replay("uneven_warmup_half_held");
    assert_eq!(json["detected_at"].as_f64(), Some(40.0), "{json}");
    let reason = json["reason"].as_str().unwrap();
    assert!(reason.contains("held past the warm-up"), "{reason}");
}

#[test]
fn malformed_files_exit_2_naming_the_line() {
    let (code, _, stderr) = replay("huge_value");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("huge_value.csv: line 3: requests: `1e308` is out of range"),
        "{stderr}"
    );
    let (code, _, stderr) = replay("malformed_line");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 5: errors:"), "{stderr}");
}

#[test]
fn a_huge_field_is_cut_in_the_message() {
    let home = Home::new();
    let path = home.path().join("big.csv");
    let big = "7".repeat(5_000_000);
    std::fs::write(
        &path,
        format!("t,requests,errors,p50_ms,p95_ms,p99_ms\n-10,{big}x,0,1,2,3\n"),
    )
    .unwrap();
    let out = home
        .cmd()
        .args(["replay", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.len() < 500, "{} bytes on stderr", stderr.len());
    assert!(stderr.contains("(5000001 characters)"), "{stderr}");
}

#[test]
fn human_output_uses_words() {
    let home = Home::new();
    let out = home
        .cmd()
        .args(["replay", &fixture("short_baseline_errors")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("insufficient data: the baseline has 4 usable steps (need 5)"),
        "{stdout}"
    );
}

/// Replaying a large trace is long CPU work (the 64 MiB cap allows
/// millions of rows); Ctrl-C and SIGTERM were ignored until it finished,
/// however long that took.
#[cfg(unix)]
#[test]
fn a_long_replay_ends_on_ctrl_c_and_sigterm() {
    use std::fmt::Write as _;
    use std::time::{Duration, Instant};
    let home = Home::new();
    let path = home.path().join("long.csv");
    // Near the 64 MiB cap (2 M rows of 32 bytes): now that replay is
    // linear (1 M rows take ~2 s in a debug build), half as many could end
    // before the signal on an idle machine.
    let mut text = String::from("t,requests,errors,p50_ms,p95_ms,p99_ms\n");
    for t in -2_000_000..200 {
        let _ = writeln!(text, "{t},100,1,40.0,120.0,200.0");
    }
    std::fs::write(&path, text).unwrap();
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let mut child = home.spawn(&["replay", path.to_str().unwrap(), "--json"]);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the trace must outlast half a second of replay for this test to mean anything"
        );
        let sent = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let t = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("{sig}: replay still running 30 s after the signal");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{sig}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Quantiles out of order (p50 > p95, p95 > p99: real sources compute
/// them separately) do not refuse the trace: stderr says it once, naming
/// the first such row's line and how many rows, and the verdict, the JSON
/// and the exit code are those of the trace without them.
#[test]
fn inverted_quantiles_are_said_once_on_stderr_and_the_replay_goes_on() {
    let home = Home::new();
    let text = std::fs::read_to_string(fixture("healthy")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Line 5: p50 above p95; line 40: p95 above p99 (1-based lines).
    let swap = |line: &mut String, a: usize, b: usize| {
        let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
        f.swap(a, b);
        *line = f.join(",");
    };
    swap(&mut lines[4], 3, 4);
    swap(&mut lines[39], 4, 5);
    let path = home.path().join("inverted.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = home
        .cmd()
        .args(["replay", path.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let (code, json, clean_stderr) = replay("healthy");
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, json, "--json output unchanged: {stderr}");
    assert_eq!(
        stderr.matches("out of order").count(),
        1,
        "said once: {stderr}"
    );
    assert!(
        stderr.contains("inverted.csv: line 5: p50_ms")
            && stderr.contains("2 rows have latency quantiles out of order"),
        "{stderr}"
    );
    assert!(!clean_stderr.contains("out of order"), "{clean_stderr}");
}
