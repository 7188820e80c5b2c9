//! Hostile configs and inputs the other fault suites do not cover, against
//! the real binary: a config that is empty, a directory, `/dev/zero` (must
//! not be read forever), not UTF-8; a store path that is a directory;
//! version sources answering shell metacharacters or 10 KB; metrics
//! sources answering valid JSON of the wrong shape. And the one panic hook:
//! a panic in a one-shot command writes its report to the log, says one
//! line and exits 101.
//!
//! Every scenario checks: a clear message naming the place, the exit code
//! of SPEC (2 bad input, 1 an outside system failed), no panic, no hang.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::{Home, Output};

#[track_caller]
fn no_panic(out: &Output) {
    assert_ne!(out.code, 101, "{out:#?}");
    assert!(!out.stderr.contains("panicked"), "{out:#?}");
    assert!(!out.stderr.contains("RUST_BACKTRACE"), "{out:#?}");
}

fn run_with(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = home.cmd();
    c.args(args).timeout(std::time::Duration::from_secs(30));
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run shipdeck");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_panic_in_a_one_shot_command_is_logged_and_exits_101_with_one_line() {
    let home = Home::new();
    let out = run_with(
        &home,
        &["history"],
        &[
            ("SHIPDECK_DEBUG_FORCE_PANIC", "command"),
            ("RUST_BACKTRACE", "1"),
        ],
    );
    assert_eq!(out.code, 101, "{out:#?}");
    assert_eq!(out.stdout, "", "{out:#?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, no backtrace: {out:#?}");
    let log = home.path().join("state/shipdeck/shipdeck.log");
    assert!(
        lines[0].contains("internal error") && lines[0].contains(&log.display().to_string()),
        "{out:#?}"
    );
    let text = std::fs::read_to_string(&log).expect("the log holds the report");
    assert!(text.contains("panic: "), "{text}");
    assert!(text.contains("SHIPDECK_DEBUG_FORCE_PANIC"), "{text}");
}

#[test]
fn an_empty_config_file_names_what_is_missing() {
    let home = Home::new();
    let p = home.config("");
    let out = home.run(&["--config", &p.display().to_string(), "status"]);
    no_panic(&out);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("shipdeck.toml"), "{out:#?}");
    assert!(out.stderr.contains("environments"), "{out:#?}");
}

#[test]
fn a_config_that_is_a_directory_says_so() {
    let home = Home::new();
    let d = home.path().join("conf.toml");
    std::fs::create_dir(&d).unwrap();
    for args in [
        vec!["--config", d.to_str().unwrap(), "status"],
        vec!["config", "check", d.to_str().unwrap()],
    ] {
        let out = home.run(&args);
        no_panic(&out);
        assert_eq!(out.code, 2, "{out:#?}");
        assert!(out.stderr.contains("conf.toml"), "{out:#?}");
        assert!(out.stderr.contains("is a directory"), "{out:#?}");
    }
}

#[test]
fn a_config_on_dev_zero_is_refused_at_the_size_cap_not_read_forever() {
    let home = Home::new();
    for args in [
        vec!["--config", "/dev/zero", "status"],
        vec!["config", "check", "/dev/zero"],
        vec!["replay", "/dev/zero"],
    ] {
        let out = home.run(&args);
        no_panic(&out);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stderr.contains("/dev/zero"), "{out:#?}");
        assert!(out.stderr.contains("larger than"), "{out:#?}");
    }
}

/// Opening a FIFO waits for a writer: `--config FIFO` hung for ever, deaf
/// to SIGTERM (the one thread was stuck in `open`). A pipe with a writer
/// (`config check /dev/stdin < file`) still reads.
#[cfg(unix)]
#[test]
fn a_named_pipe_without_a_writer_is_refused_not_waited_on() {
    let home = Home::new();
    let fifo = home.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    let f = fifo.to_str().unwrap();
    for args in [
        &["--config", f, "status"][..],
        &["config", "check", f],
        &["replay", f, "--json"],
    ] {
        let out = run_with(&home, args, &[]);
        no_panic(&out);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(
            out.stderr
                .contains("a named pipe (FIFO) that nothing was written to"),
            "{args:?}: {out:#?}"
        );
    }
    let cfg = home.config(&format!("project = \"x\"\n{ENVS}"));
    let out = home
        .cmd()
        .args(["config", "check", "/dev/stdin"])
        .pipe_stdin(&cfg)
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // A FIFO where the log goes made every command wait in open() for a
    // reader; the command runs, without its log.
    let log_dir = home.path().join("state/shipdeck");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = log_dir.join("shipdeck.log");
    let _ = std::fs::remove_file(&log);
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&log)
            .status()
            .unwrap()
            .success()
    );
    let out = run_with(&home, &["history"], &[]);
    no_panic(&out);
    assert_eq!(out.code, 0, "{out:#?}");
}

#[test]
fn a_config_that_is_not_utf8_names_the_line_and_column() {
    let home = Home::new();
    let p = home.path().join("shipdeck.toml");
    std::fs::write(&p, b"project = \"shop\"\n# caf\xe9\n").unwrap();
    let out = home.run(&["--config", p.to_str().unwrap(), "status"]);
    no_panic(&out);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("shipdeck.toml"), "{out:#?}");
    assert!(out.stderr.contains("not UTF-8"), "{out:#?}");
    assert!(out.stderr.contains("line 2, column 6"), "{out:#?}");
}

const ENVS: &str = r#"
[[environments]]
name = "dev"
version = { command = ["echo", "v1.0.0"] }
deploy = { command = ["true"] }

[[environments]]
name = "prod"
version = { command = ["echo", "v0.9.0"] }
deploy = { command = ["true"] }
"#;

#[test]
fn a_store_path_that_is_a_directory_is_named_as_such() {
    let home = Home::new();
    let d = home.path().join("store.db");
    std::fs::create_dir(&d).unwrap();
    home.config(&format!(
        "project = \"x\"\n[store]\npath = \"{}\"\n{ENVS}",
        d.display()
    ));
    for args in [["status"].as_slice(), &["history"], &["approve", "prod"]] {
        let out = home.run(args);
        no_panic(&out);
        assert_eq!(out.code, 1, "{out:#?}");
        assert!(out.stderr.contains("store.db"), "{out:#?}");
        assert!(
            out.stderr.contains("a directory, not a store file"),
            "{out:#?}"
        );
    }
}

#[test]
fn a_version_with_shell_metacharacters_or_10_kb_long_is_refused_by_name() {
    let home = Home::new();
    home.config(
        r#"project = "x"
[[environments]]
name = "dev"
version = { command = ["echo", "v1;rm -rf ~ $(id) `id` | x"] }
deploy = { command = ["true"] }

[[environments]]
name = "prod"
version = { command = ["sh", "-c", "printf 'v%010000d' 0"] }
deploy = { command = ["sh", "-c", "echo deployed >> deployed.txt"] }
"#,
    );
    let st = home.run(&["status"]);
    no_panic(&st);
    assert!(st.stdout.contains("dev: version command of dev"), "{st:#?}");
    assert!(st.stdout.contains("';'"), "{st:#?}");
    assert!(st.stdout.contains("10001 characters long"), "{st:#?}");
    assert!(
        st.stdout.len() < 4000,
        "the 10 KB answer is not echoed: {st:#?}"
    );
    let out = home.run(&["promote", "prod", "--yes"]);
    no_panic(&out);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("version command of"), "{out:#?}");
    assert!(
        !home.path().join("deployed.txt").exists(),
        "nothing was deployed on a version nobody could read"
    );
}

/// A one-route HTTP server answering `body` (as JSON) to every request.
fn serve_json(body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn metrics_config(home: &Home, source: &str, url: &str) {
    home.config(&format!(
        "project = \"x\"\n[metrics]\nsource = \"{source}\"\nurl = \"{url}\"\nstep = \"1s\"\n{}\nmonitored = true\n",
        ENVS.trim_end()
    ));
}

fn wrong_shape_is_named(home: &Home, what: &str) {
    let st = home.run(&["status", "--json"]);
    no_panic(&st);
    let text = st.stdout.clone() + &st.stderr;
    assert!(text.contains(what), "{st:#?}");
    let w = home.run(&["watch", "prod", "--window", "2s"]);
    no_panic(&w);
    assert_eq!(w.code, 1, "{w:#?}");
    assert!(
        w.stderr.contains(what),
        "the failing source is named: {w:#?}"
    );
    assert!(!w.stderr.contains("NaN"), "a gap is no number: {w:#?}");
}

#[test]
fn a_scrape_source_answering_json_is_a_named_exposition_error() {
    let addr = serve_json(r#"{"a": [1, 2]}"#);
    let home = Home::new();
    metrics_config(&home, "scrape", &format!("http://{addr}/metrics"));
    wrong_shape_is_named(&home, "malformed exposition");
}

#[test]
fn a_prometheus_answering_json_of_the_wrong_shape_is_named() {
    let addr = serve_json(r#"{"status":"success","data":{"resultType":"matrix","result":"oops"}}"#);
    let home = Home::new();
    metrics_config(&home, "prometheus", &format!("http://{addr}"));
    wrong_shape_is_named(&home, "not an array");
    let addr = serve_json(r#"[1, 2, 3]"#);
    let home = Home::new();
    metrics_config(&home, "prometheus", &format!("http://{addr}"));
    let st = home.run(&["status", "--json"]);
    no_panic(&st);
    assert!(st.stdout.contains(&addr), "the source is named: {st:#?}");
}

/// Counters that are no numbers are the source's garbage, named with the
/// metric in `status` and `watch` — not read as an environment without traffic.
fn unusable_is_named(home: &Home, what: &str) {
    let st = home.run(&["status", "--json"]);
    no_panic(&st);
    assert!(st.stdout.contains(what), "{st:#?}");
    let st = home.run(&["status"]);
    no_panic(&st);
    assert!(st.stdout.contains(what), "{st:#?}");
    assert!(!st.stdout.contains("no recent traffic"), "{st:#?}");
    let w = home.run(&["watch", "prod", "--window", "2s"]);
    no_panic(&w);
    assert_eq!(w.code, 1, "{w:#?}");
    assert!(w.stderr.contains(what), "{w:#?}");
}

#[test]
fn metrics_sources_answering_nan_counters_are_named_unusable() {
    let addr = serve_json(
        "http_requests_total{env=\"prod\",code=\"200\"} NaN\nhttp_requests_total{env=\"dev\",code=\"200\"} +Inf\n",
    );
    let home = Home::new();
    metrics_config(&home, "scrape", &format!("http://{addr}/metrics"));
    unusable_is_named(&home, "gives unusable numbers: http_requests_total{env=");
    let addr = serve_json(
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#,
    );
    let home = Home::new();
    metrics_config(&home, "prometheus", &format!("http://{addr}"));
    unusable_is_named(&home, "gives unusable numbers: the requests query");
}

/// Usage mistakes are exit 2 before anything is opened, and a script that
/// asked for `--json` still gets one JSON document on stdout.
#[test]
fn usage_mistakes_exit_2_with_one_json_document_when_asked() {
    let home = Home::new();
    home.config(&format!("project = \"x\"\n{ENVS}"));
    // A window of nothing judged nothing and exited 1 ("collecting").
    for window in ["0s", "0ms", "0m"] {
        let out = home.run(&["watch", "prod", "--window", window, "--json"]);
        no_panic(&out);
        assert_eq!(out.code, 2, "{window}: {out:#?}");
        let doc: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"));
        assert_eq!(doc["exit_code"], 2, "{out:#?}");
        assert!(
            doc["error"]
                .as_str()
                .is_some_and(|e| e.contains("longer than zero")),
            "{out:#?}"
        );
    }
    // clap's own refusals printed text only: `jq` got nothing to read.
    for args in [
        &["status", "--json", "--bogus"][..],
        &["history", "--json", "--limit", "-1"],
        &["promote", "--json"],
    ] {
        let out = home.run(args);
        no_panic(&out);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        let doc: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {out:#?}"));
        assert_eq!(doc["exit_code"], 2, "{out:#?}");
        assert!(
            doc["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{out:#?}"
        );
        assert!(
            out.stderr.contains("error:"),
            "clap's text stays on stderr: {out:#?}"
        );
    }
    // Without --json nothing is added to stdout; `--json` after `--` is a value.
    for args in [&["status", "--bogus"][..], &["status", "--", "--json"]] {
        let out = home.run(args);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (2, ""),
            "{args:?}: {out:#?}"
        );
    }
    // `--limit 0` answered "No recorded actions yet." over a full log.
    assert_eq!(home.run(&["approve", "prod"]).code, 0);
    let out = home.run(&["history", "--limit", "0"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("--limit"), "{out:#?}");
    assert!(!out.stdout.contains("No recorded actions"), "{out:#?}");
    // A 100 KB note was stored for good, printed by every history and
    // sent to every receiver; the console's field holds 200 characters.
    let long = "x".repeat(1001);
    for args in [
        &["approve", "prod", "--note", long.as_str()][..],
        &["promote", "prod", "--yes", "--break-freeze", long.as_str()],
    ] {
        let out = home.run(args);
        no_panic(&out);
        assert_eq!(out.code, 2, "{out:#?}");
        assert!(
            out.stderr.contains("1001 characters long: keep it to 1000"),
            "{out:#?}"
        );
        assert!(!out.stderr.contains(&long), "not echoed: {out:#?}");
    }
    let history = home.run(&["history", "--json"]);
    let entries = history.json()["entries"].as_array().unwrap().len();
    assert_eq!(
        entries, 1,
        "nothing recorded for the refused notes: {history:#?}"
    );
    let out = home.run(&["approve", "prod", "--note", &"y".repeat(1000)]);
    assert_eq!(out.code, 0, "{out:#?}");
}
