use super::*;

const MINIMAL: &str = r#"
[[environments]]
name = "staging"
version = { url = "http://127.0.0.1:7878/envs/staging/version" }
deploy = { webhook = "http://127.0.0.1:7878/envs/staging/deploy" }

[[environments]]
name = "production"
version = { url = "http://127.0.0.1:7878/envs/production/version" }
deploy = { command = ["./deploy.sh", "{env}", "{version}"] }
gates = { requires_approval = true }
monitored = true
"#;

fn parse(src: &str) -> Result<Config, ConfigError> {
    Config::parse(src, Path::new("test.toml"))
}

const CI_ENV: &str = "project = \"shop\"\n[[environments]]\nname = \"prod\"\nversion = { url = \"https://shop.example/version\" }\n";

#[test]
fn ci_deploy_tables_parse_with_their_keys() {
    let c = parse(&format!(
        "{CI_ENV}[environments.deploy.github_actions]\nrepo = \"acme/shop\"\nworkflow = \"deploy.yml\"\nref = \"main\"\ninputs = {{ environment = \"{{env}}\", version = \"{{version}}\" }}\ntoken_env = \"GITHUB_TOKEN\"\napi_url = \"https://ghe.example/api/v3\"\n"
    ))
    .unwrap();
    let g = c.environments[0]
        .deploy
        .as_ref()
        .unwrap()
        .get_ref()
        .github_actions
        .as_ref()
        .unwrap();
    assert_eq!(g.get_ref().git_ref, "main");
    assert_eq!(g.get_ref().inputs["version"], "{version}");
    let c = parse(&format!(
        "{CI_ENV}[environments.deploy.jenkins]\nurl = \"https://ci.example\"\njob = \"team/deploy-shop\"\nparams = {{ VERSION = \"{{version}}\" }}\nuser = \"bot\"\ntoken_env = \"JENKINS_TOKEN\"\n"
    ))
    .unwrap();
    assert!(
        c.environments[0]
            .deploy
            .as_ref()
            .unwrap()
            .get_ref()
            .jenkins
            .is_some()
    );
    let c = parse(&format!(
        "{CI_ENV}[environments.deploy.vercel]\nproject = \"shop\"\nteam = \"team_acme\"\ntoken_env = \"VERCEL_TOKEN\"\n"
    ))
    .unwrap();
    assert!(
        c.environments[0]
            .deploy
            .as_ref()
            .unwrap()
            .get_ref()
            .vercel
            .is_some()
    );
}

#[test]
fn bad_ci_deploy_tables_name_the_key_and_the_place() {
    // A misspelt key: toml names it, line and column.
    let e = parse(&format!(
        "{CI_ENV}[environments.deploy.jenkins]\nurl = \"https://ci.example\"\njobb = \"x\"\nuser = \"bot\"\ntoken_env = \"T\"\n"
    ))
    .unwrap_err();
    assert_eq!((e.line, e.column), (Some(7), Some(1)), "{e}");
    assert!(e.message.contains("unknown field `jobb`"), "{e}");
    // A repo that is not owner/name: the table's place.
    let e = parse(&format!(
        "{CI_ENV}[environments.deploy.github_actions]\nrepo = \"shop\"\nworkflow = \"deploy.yml\"\nref = \"main\"\ntoken_env = \"GITHUB_TOKEN\"\n"
    ))
    .unwrap_err();
    assert_eq!((e.line, e.column), (Some(5), Some(1)), "{e}");
    assert!(
        e.message
            .contains("deploy.github_actions: repo \"shop\" must be \"owner/name\""),
        "{e}"
    );
    // A job or workflow with a `.` or `..` step: resolved away by the URL,
    // it would trigger another job than the one written.
    for job in ["team/../deploy-prod", "./deploy-shop", ".."] {
        let e = parse(&format!(
            "{CI_ENV}[environments.deploy.jenkins]\nurl = \"https://ci.example\"\njob = \"{job}\"\nuser = \"bot\"\ntoken_env = \"T\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("must be a job name"), "{job}: {e}");
    }
    for workflow in ["..", "%2e%2e"] {
        let e = parse(&format!(
            "{CI_ENV}[environments.deploy.github_actions]\nrepo = \"a/b\"\nworkflow = \"{workflow}\"\nref = \"main\"\ntoken_env = \"GITHUB_TOKEN\"\n"
        ))
        .unwrap_err();
        assert!(
            e.message.contains("must be a workflow file name"),
            "{workflow}: {e}"
        );
    }
    // An unknown placeholder.
    let e = parse(&format!(
        "{CI_ENV}[environments.deploy.github_actions]\nrepo = \"a/b\"\nworkflow = \"deploy.yml\"\nref = \"main\"\ninputs = {{ v = \"{{tag}}\" }}\ntoken_env = \"GITHUB_TOKEN\"\n"
    ))
    .unwrap_err();
    assert!(e.message.contains("inputs.v"), "{e}");
    // Two backends at once.
    let e = parse(&format!(
        "{CI_ENV}[environments.deploy]\ncommand = [\"true\"]\n[environments.deploy.vercel]\nproject = \"shop\"\ntoken_env = \"VERCEL_TOKEN\"\n"
    ))
    .unwrap_err();
    assert!(e.message.contains("exactly one of"), "{e}");
    assert_eq!(e.line, Some(5), "{e}");
}

#[test]
fn minimal_config_has_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.names(), vec!["staging", "production"]);
    assert_eq!(c.monitor.window, HumanDuration::from_secs(1800));
    assert!(c.monitor.auto_rollback);
    assert_eq!(c.metrics.source, MetricsSourceKind::Scrape);
    assert!(c.environments[1].gates.requires_approval);
}

#[test]
fn unknown_key_names_line_and_column() {
    let e = parse(&format!("{MINIMAL}\n[monitor]\nwindw = \"5m\"\n")).unwrap_err();
    assert_eq!(e.line, Some(15));
    assert_eq!(e.column, Some(1));
    assert!(e.message.contains("unknown field `windw`"), "{}", e.message);
}

#[test]
fn malformed_duration_points_at_the_value() {
    let e = parse(&format!("{MINIMAL}\n[monitor]\nwindow = \"5 minutes\"\n")).unwrap_err();
    assert_eq!((e.line, e.column), (Some(15), Some(10)));
    assert!(e.message.contains("malformed duration"), "{}", e.message);
}

#[test]
fn duplicate_names_and_missing_stage() {
    let dup = MINIMAL.replace("name = \"production\"", "name = \"staging\"");
    let e = parse(&dup).unwrap_err();
    assert_eq!((e.line, e.column), (Some(8), Some(8)));
    assert!(e.message.contains("duplicate environment name"));
    let missing = MINIMAL.replace(
        "gates = { requires_approval = true }",
        "gates = { requires_approval = true, approval_stage = \"qa\" }",
    );
    let e = parse(&missing).unwrap_err();
    assert_eq!(e.line, Some(11));
    assert!(e.message.contains("not an environment"), "{}", e.message);
}

#[test]
fn huge_durations_are_refused_with_their_place_and_limit() {
    let e = parse(&format!(
        "{MINIMAL}\n[monitor]\nbaseline = \"5000000000h\"\n"
    ))
    .unwrap_err();
    assert_eq!((e.line, e.column), (Some(15), Some(12)));
    assert!(e.message.contains("at most 365d"), "{}", e.message);
    let e = parse(&format!("{MINIMAL}\n[monitor]\nbaseline = \"30d\"\n")).unwrap_err();
    assert_eq!((e.line, e.column), (Some(15), Some(12)));
    assert!(e.message.contains("at most 168h"), "{}", e.message);
    let e = parse(&format!("{MINIMAL}\n[monitor]\nwindow = \"2d\"\n")).unwrap_err();
    assert_eq!(e.line, Some(15));
    // What the user wrote, not the value rewritten ("48h").
    assert!(
        e.message
            .contains("[monitor] window = \"2d\" is too long: at most 24h"),
        "{}",
        e.message
    );
    let long_deploy = MINIMAL.replace(
        r#"deploy = { webhook = "http://127.0.0.1:7878/envs/staging/deploy" }"#,
        r#"deploy = { webhook = "http://127.0.0.1:7878/envs/staging/deploy", timeout = "400d" }"#,
    );
    let e = parse(&long_deploy).unwrap_err();
    assert_eq!(e.line, Some(5));
    assert!(e.message.contains("too long"), "{}", e.message);
}

/// `config check` said "ok" to each of these; each failed (or spun) only
/// once shipdeck ran.
#[test]
fn values_that_can_never_work_are_refused_at_their_place() {
    let staging_deploy = r#"deploy = { webhook = "http://127.0.0.1:7878/envs/staging/deploy" }"#;
    let staging_version = r#"version = { url = "http://127.0.0.1:7878/envs/staging/version" }"#;
    let prod_deploy = r#"deploy = { command = ["./deploy.sh", "{env}", "{version}"] }"#;
    let with = |old: &str, new: &str| MINIMAL.replacen(old, new, 1);
    let extra = |tail: &str| format!("{MINIMAL}{tail}");
    let cases: Vec<(String, &str, &str)> = vec![
        // Zero and too-short durations: a 0s timeout failed every deploy
        // ("no answer within 0s"), a 0s poll read the version in a busy loop.
        (
            with(
                staging_deploy,
                r#"deploy = { webhook = "http://h/d", timeout = "0s" }"#,
            ),
            r#""0s""#,
            "deploy timeout = \"0s\" must be longer than zero",
        ),
        (
            with(
                staging_deploy,
                r#"deploy = { webhook = "http://h/d", poll = "0ms" }"#,
            ),
            r#""0ms""#,
            "deploy poll = \"0ms\" is too short: at least 100ms",
        ),
        (
            with(
                staging_version,
                r#"version = { url = "http://h/v", timeout = "0s" }"#,
            ),
            r#""0s""#,
            "version timeout",
        ),
        (
            extra("[monitor]\nwindow = \"0s\"\n"),
            r#""0s""#,
            "[monitor] window = \"0s\" must be longer than zero",
        ),
        (
            extra("[monitor]\nbaseline = \"0m\"\n"),
            r#""0m""#,
            "[monitor] baseline",
        ),
        (
            extra("[metrics]\nsource = \"scrape\"\nurl = \"http://h/m\"\nstep = \"50ms\"\n"),
            r#""50ms""#,
            "at least 100ms",
        ),
        // A console refresh below its 100 ms floor ran at 100 ms, silently.
        (
            extra("[ui]\nrefresh = \"0ms\"\n"),
            r#""0ms""#,
            "[ui] refresh = \"0ms\" is too short: at least 100ms",
        ),
        (
            extra("[ui]\nrefresh = \"50ms\"\n"),
            r#""50ms""#,
            "[ui] refresh = \"50ms\" is too short: at least 100ms",
        ),
        (
            extra("[metrics]\nsource = \"scrape\"\nurl = \"http://h/m\"\ntimeout = \"0s\"\n"),
            r#""0s""#,
            "[metrics] timeout",
        ),
        // A metrics url that is no URL was only found by the first scrape.
        (
            extra("[metrics]\nsource = \"scrape\"\nurl = \"not a url\"\n"),
            r#""not a url""#,
            "[metrics] url \"not a url\" is not an http:// or https:// URL",
        ),
        (
            extra("[metrics]\nsource = \"prometheus\"\nurl = \"http://\"\n"),
            r#""http://""#,
            "not an http:// or https:// URL",
        ),
        // An empty store path failed as "store : No such file" (exit 1).
        (
            extra("[store]\npath = \"\"\n"),
            r#""""#,
            "[store] path is empty",
        ),
        (
            extra("[store]\nurl = \"mysql://u:pw@h/db\"\n"),
            r#""mysql:"#,
            "must start with postgres://",
        ),
        // Misspelled placeholders reached the command or URL as typed.
        (
            with(
                prod_deploy,
                r#"deploy = { command = ["./deploy.sh", "{evn}", "{version}"] }"#,
            ),
            "{ command",
            "unknown placeholder {evn}",
        ),
        (
            with(
                prod_deploy,
                r#"deploy = { command = ["./deploy.sh", "{env}", "{version"] }"#,
            ),
            "{ command",
            "{version is not closed",
        ),
        (
            with(
                staging_deploy,
                r#"deploy = { webhook = "http://h/{Env}/deploy" }"#,
            ),
            r#"{ webhook = "http://h/{Env}"#,
            "unknown placeholder {Env}",
        ),
        (
            with(
                staging_version,
                r#"version = { url = "http://h/{enviroment}/v" }"#,
            ),
            r#"{ url = "http://h/{enviroment}"#,
            "unknown placeholder {enviroment}",
        ),
        (
            extra(
                "[metrics]\nsource = \"prometheus\"\nurl = \"http://h\"\n[metrics.queries]\nlatency = 'histogram_quantile({quantile}, x{env=\"{env}\"}[{step}])'\n",
            ),
            "'histogram",
            "[metrics.queries] latency",
        ),
        (
            with(prod_deploy, r#"deploy = { command = ["", "{env}"] }"#),
            "{ command",
            "names no program",
        ),
    ];
    // Each error points at the value (or the table) it is about.
    for (src, at, what) in cases {
        let e = parse(&src).expect_err(&src);
        let at = src.rfind(at).expect(at);
        let (line, column) = line_col(&src, at);
        assert_eq!((e.line, e.column), (Some(line), Some(column)), "{e}\n{src}");
        assert!(e.message.contains(what), "{e}\n{src}");
    }
    // Braces that are no placeholder stay allowed: a JSON argument, a
    // PromQL matcher, the known placeholders.
    let ok = with(
        prod_deploy,
        r#"deploy = { command = ["./deploy.sh", "{\"env\": \"{env}\"}", "--v={version}", "{}"] }"#,
    );
    parse(&ok).unwrap();
    parse(&extra(
        "[metrics]\nsource = \"prometheus\"\nurl = \"http://h:9090\"\n[metrics.queries]\nerrors = 'sum(increase(x{env=\"{env}\",code=~\"5..\"}[{step}]))'\n",
    ))
    .unwrap();
    // The program's own braces, which reached the review as refused: a
    // shell's ${VAR}, awk's '{print}', kubectl's jsonpath.
    for args in [
        r#"["sh", "-c", "curl -H 'Authorization: Bearer ${DEPLOY_TOKEN}' https://h/{env}/{version}"]"#,
        r#"["sh", "-c", "cat /srv/${APP}/VERSION; awk '{print}' /dev/null; echo {version}"]"#,
        r#"["kubectl", "get", "deploy/{env}", "-o", "jsonpath={.status.updatedReplicas}", "{version}"]"#,
    ] {
        let src = with(prod_deploy, &format!("deploy = {{ command = {args} }}"));
        parse(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    }
}

#[test]
fn only_braces_meant_as_placeholders_are_taken_for_misspelled_ones() {
    let known = ["env", "version", "slot", "weight"];
    for typo in [
        "{evn}",
        "{Env}",
        "{ENV}",
        "{enviroment}",
        "{environment}",
        "{ver}",
        "{verison}",
        "{vesion}",
        "{versions}",
        "{slto}",
        "{wieght}",
        "x/{version",
    ] {
        assert!(
            super::strategy::misspelled_placeholder(typo, &known).is_some(),
            "{typo}"
        );
    }
    for fine in [
        "${env}",
        "${DEPLOY_TOKEN}",
        "{print}",
        "{.status.updatedReplicas}",
        "{}",
        "{\"a\": 1}",
        "{job=\"x\"}",
        "{id}",
        "{x}",
        "{status}",
        "{env}/{version}",
        "${VERSION",
    ] {
        assert_eq!(
            super::strategy::misspelled_placeholder(fine, &known),
            None,
            "{fine}"
        );
    }
}

#[test]
fn negative_and_non_finite_limits_are_refused_with_their_place() {
    for (key, value) in [
        ("max_p95_ms", "-5.0"),
        ("max_p50_ms", "nan"),
        ("max_p99_ms", "inf"),
        ("max_p95_ms", "0.0"),
        ("max_error_rate", "nan"),
        ("max_error_rate", "-0.1"),
        ("max_error_rate", "1.5"),
    ] {
        let e = parse(&format!("{MINIMAL}\n[monitor]\n{key} = {value}\n")).unwrap_err();
        assert_eq!(
            (e.line, e.column),
            (Some(15), Some(key.len() + 4)),
            "{key} = {value}: {e}"
        );
        assert!(e.message.contains(key), "{}", e.message);
    }
    assert!(
        parse(&format!(
            "{MINIMAL}\n[monitor]\nmax_p95_ms = 250\nmax_error_rate = 0.02\n"
        ))
        .is_ok()
    );
}

#[test]
fn escape_sequences_in_shown_names_are_refused_with_their_place() {
    let e = parse(&format!(
        "project = \"shop\\u001b]0;pwned\\u0007\"\n{MINIMAL}"
    ))
    .unwrap_err();
    assert_eq!((e.line, e.column), (Some(1), Some(11)));
    assert!(e.message.contains("escape sequences"), "{}", e.message);
    let e = parse(&format!("[identity]\nname = \"ops\\u202e\"\n{MINIMAL}")).unwrap_err();
    assert_eq!(e.line, Some(2));
}

#[test]
fn links_are_checked_and_expanded_safely() {
    let with = |links: &str| {
        parse(&MINIMAL.replace(
            "monitored = true",
            &format!("monitored = true\nlinks = {links}"),
        ))
    };
    let c = with(r#"{ logs = "https://logs.example.com/?q=env%3D{env}", dashboard = "https://grafana.example.com/d/x?v={version}" }"#)
        .unwrap();
    let links = c.environments[1].links.as_ref().unwrap().get_ref();
    assert_eq!(links.len(), 2);
    assert_eq!(
        expand_link(&links["logs"], "production", None).as_deref(),
        Some("https://logs.example.com/?q=env%3Dproduction")
    );
    assert_eq!(
        expand_link(&links["dashboard"], "production", None),
        None,
        "needs the version"
    );
    assert_eq!(
        expand_link(&links["dashboard"], "production", Some("v1.8.0")).as_deref(),
        Some("https://grafana.example.com/d/x?v=v1.8.0")
    );
    for (bad, why) in [
        (r#"{ logs = "ftp://x/{env}" }"#, "must start with http"),
        (
            r#"{ logs = "https://x/{user}" }"#,
            "unknown placeholder {user}",
        ),
        (r#"{ logs = "https://x/\u001b]8;;evil" }"#, "contains"),
        (r#"{ logs = "https://x/ a" }"#, "contains"),
        (r#"{ logs = "https://x/{env" }"#, "without"),
        (r#"{ "bad name" = "https://x/" }"#, "link name"),
    ] {
        let e = with(bad).unwrap_err();
        assert!(e.message.contains(why), "{bad}: {}", e.message);
        assert!(e.message.contains("links."), "{bad}: {}", e.message);
        assert_eq!(e.line, Some(13), "{bad}: points at the links");
    }
    assert_eq!(
        expand_link("https://x/é?{env}", "a b", None).as_deref(),
        Some("https://x/%C3%A9?a%20b"),
        "only printable ASCII reaches the terminal"
    );
    let ui = parse(&format!("{MINIMAL}\n[ui]\nmouse = false\n")).unwrap();
    assert!(!ui.ui.mouse);
    assert!(parse(MINIMAL).unwrap().ui.mouse);
}

#[test]
fn one_mapping_from_the_monitor_section_to_the_detector() {
    let m = MonitorConfig {
        baseline: HumanDuration::from_secs(600),
        max_p95_ms: Some(300.0),
        ..Default::default()
    };
    let c = m.detector_config(None);
    assert_eq!((c.baseline_s, c.window_s), (600.0, 1800.0));
    assert_eq!(c.max_p95_ms, Some(300.0));
    assert_eq!(c.max_error_rate, None);
    let d = crate::monitor::DetectorConfig::default();
    assert_eq!(c.guard_steps, d.guard_steps);
    assert_eq!(c.min_evidence_s, d.min_evidence_s);
    let c = m.detector_config(Some(std::time::Duration::from_secs(120)));
    assert_eq!(c.window_s, 120.0);
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
}

#[test]
fn load_ui_reads_only_the_ui_table_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "project = \"x\"\n[ui]\ntheme = \"light\"\nconfirm_rollback = false\n",
    )
    .unwrap();
    let ui = load_ui(&p).unwrap();
    assert_eq!(ui.theme, ThemeName::Light);
    assert!(!ui.confirm_rollback);
    std::fs::write(&p, "[ui]\ntheme = \"neon\"\n").unwrap();
    let e = load_ui(&p).unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn a_vercel_version_source_parses_and_its_mistakes_are_named() {
    let env = |version: &str| {
        format!(
            "project = \"shop\"\n[[environments]]\nname = \"prod\"\nversion = {version}\ndeploy = {{ command = [\"./deploy\"] }}\n"
        )
    };
    let c = parse(&env(
        "{ vercel = { project = \"shop\", team = \"team_acme\", token_env = \"VERCEL_TOKEN\" } }",
    ))
    .unwrap();
    let v = c.environments[0]
        .version
        .as_ref()
        .unwrap()
        .get_ref()
        .vercel
        .clone()
        .unwrap();
    assert_eq!((v.project.as_str(), v.from.as_str()), ("shop", "auto"));
    for (version, says) in [
        (
            "{ url = \"https://x.example/v\", vercel = { project = \"shop\", token_env = \"T\" } }",
            "version needs exactly one of url, command or vercel",
        ),
        (
            "{ vercel = { project = \"shop\", token_env = \"T\", from = \"tag\" } }",
            "version.vercel: from \"tag\" must be one of",
        ),
        (
            "{ vercel = { project = \"shop\", token_env = \"$T\" } }",
            "version.vercel: token_env \"$T\" must name an environment variable",
        ),
        // Spliced into the API's path: a `#` or `?` would read another
        // project's production, as the deploy table already refuses.
        (
            "{ vercel = { project = \"shop#x\", token_env = \"T\" } }",
            "version.vercel: project \"shop#x\" must be a project name or id",
        ),
        (
            "{ vercel = { project = \"../v9/projects/other\", token_env = \"T\" } }",
            "version.vercel: project \"../v9/projects/other\" must be a project name or id",
        ),
        (
            "{ vercel = { project = \"..\", token_env = \"T\" } }",
            "version.vercel: project \"..\" must be a project name or id",
        ),
        (
            "{ vercel = { project = \"shop\", team = \"t?x=1\", token_env = \"T\" } }",
            "version.vercel: team \"t?x=1\" must be a team id (team_…)",
        ),
    ] {
        let e = parse(&env(version)).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains("prod"), "{e}");
    }
}

#[test]
fn token_env_names_that_are_no_variable_are_refused_at_their_place() {
    for (table, key, want) in [
        (
            "[metrics]\nsource = \"scrape\"\nurl = \"http://127.0.0.1:1/metrics\"\n",
            "token_env = \"\"",
            "[metrics] token_env \"\"",
        ),
        (
            "[metrics]\nsource = \"scrape\"\nurl = \"http://127.0.0.1:1/metrics\"\n",
            "token_env = \"A B\"",
            "[metrics] token_env \"A B\"",
        ),
        (
            "[store]\n",
            "password_env = \"PG-PASS\"",
            "[store] password_env \"PG-PASS\"",
        ),
    ] {
        let src = format!("{MINIMAL}\n{table}{key}\n");
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains(want), "{key}: {e}");
        assert!(
            e.message.contains("must name an environment variable"),
            "{e}"
        );
        let at = src.find(key).unwrap() + key.find('"').unwrap();
        let (line, column) = line_col(&src, at);
        assert_eq!((e.line, e.column), (Some(line), Some(column)), "{key}: {e}");
    }
    let e = parse(&format!(
        "{CI_ENV}deploy = {{ webhook = \"https://x.example/d\", token_env = \"$TOKEN\" }}\n"
    ))
    .unwrap_err();
    assert!(e.message.contains("deploy token_env \"$TOKEN\""), "{e}");
    assert_eq!(e.line, Some(5), "{e}");
    // A well-formed name passes, set or not (it is read when used).
    parse(&format!(
        "{MINIMAL}\n[metrics]\nsource = \"scrape\"\nurl = \"http://127.0.0.1:1/metrics\"\ntoken_env = \"METRICS_TOKEN_SURELY_UNSET\"\n"
    ))
    .unwrap();
}
