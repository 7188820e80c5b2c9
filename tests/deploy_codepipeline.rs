//! The AWS CodePipeline deploy backend against a local fake of the
//! CodePipeline API (AWS JSON 1.1: `POST /`, `X-Amz-Target:
//! CodePipeline_20150709.<Op>`, `Content-Type: application/x-amz-json-1.1`,
//! SigV4 by the official SDK with static credentials from the environment,
//! the region from the config, the endpoint from `api_url`). The fake
//! checks every call and flips the environment's version only when an
//! execution pinned to the version's commit succeeds.
//!
//! Through the real binary: success (the version resolved to its commit in
//! `[release] git`, the console URL recorded), a failed execution (exit 1
//! with the URL), a version with no commit (nothing started), a refused
//! start, garbage answers and a hang (bounded by the deploy's timeout).
//! Through the engine: a manual approval shown as waiting on a human and
//! answered Go (Approved, the note as summary) and No-Go (Rejected).
//!
//! Every test calls [`aws_env`] first: the in-process tests need the
//! credentials in this process's environment, set once before any test
//! reads it.

mod common;

use std::process::Command as StdCommand;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{Home, Output};
use serde_json::{Value, json};
use shipdeck::config::Config;
use shipdeck::domain::{ActionKind, Outcome, Version};
use shipdeck::engine::{Confirm, Engine, Event};

const KEY_ID: &str = "AKIDSHIPDECKTEST";
const SECRET: &str = "PLANTED/aws-secret-key+0731shipdeck";
const EXEC: &str = "3f2a9c41-0d8e-4f7b-a1c2-9e8d7c6b5a40";
const TOKEN: &str = "approval-token-1c9e";

fn aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: every test of this binary calls this first, so no other
        // thread reads the environment while it is set.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", KEY_ID);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
            std::env::remove_var("AWS_SESSION_TOKEN");
            std::env::remove_var("AWS_PROFILE");
            std::env::remove_var("AWS_ENDPOINT_URL");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/shipdeck-test/config");
            std::env::set_var(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/shipdeck-test/credentials",
            );
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

// ---------------------------------------------------------------- the fake

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Succeed,
    Fail,
    Approval,
    /// GetPipelineExecution answers 200 with HTML.
    Garbage,
    /// GetPipelineExecution never answers.
    Hang,
    /// StartPipelineExecution: the pipeline does not exist.
    NoPipeline,
    /// The execution stays in progress.
    Stall,
    /// StartPipelineExecution answers 500: it may or may not have started.
    StartFails,
}

#[derive(Debug)]
struct Cp {
    script: Script,
    version: String,
    /// The commit the version's tag points at: a start pinned elsewhere
    /// deploys something else.
    commit: String,
    /// The version an execution pinned to `commit` deploys.
    target: String,
    pinned: bool,
    reads: u32,
    /// (operation, body) of every call.
    calls: Vec<(String, Value)>,
    /// Calls whose protocol headers were wrong, and why.
    bad: Vec<String>,
    /// PutApprovalResult bodies.
    approvals: Vec<Value>,
    /// The access key id the calls must be signed with.
    key_id: String,
}

type Shared = Arc<Mutex<Cp>>;

fn aws_error(status: u16, kind: &str, message: &str) -> (u16, String) {
    (
        status,
        json!({"__type": kind, "message": message}).to_string(),
    )
}

async fn serve(
    State(cp): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    if method == Method::GET && uri.path() == "/version" {
        let v = cp.lock().unwrap().version.clone();
        return (StatusCode::OK, json!({"version": v}).to_string()).into_response();
    }
    if uri.path() == "/metrics" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let target = h("x-amz-target");
    let op = target
        .strip_prefix("CodePipeline_20150709.")
        .unwrap_or("")
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let hang = {
        let mut s = cp.lock().unwrap();
        let mut bad = Vec::new();
        if method != Method::POST || uri.path() != "/" {
            bad.push(format!("{method} {}", uri.path()));
        }
        if op.is_empty() {
            bad.push(format!("X-Amz-Target {target:?}"));
        }
        if h("content-type") != "application/x-amz-json-1.1" {
            bad.push(format!("content-type {:?}", h("content-type")));
        }
        let auth = h("authorization");
        if !(auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={}/", s.key_id))
            && auth.contains("/eu-west-1/codepipeline/aws4_request")
            && auth.contains("Signature="))
        {
            bad.push(format!("authorization {auth:?}"));
        }
        if h("x-amz-date").is_empty() {
            bad.push("no x-amz-date".into());
        }
        if !bad.is_empty() {
            s.bad.push(format!("{op}: {}", bad.join(", ")));
        }
        s.calls.push((op.clone(), body.clone()));
        s.script == Script::Hang && op == "GetPipelineExecution"
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let (status, text) = answer(&mut cp.lock().unwrap(), &op, &body);
    let mut r = (StatusCode::from_u16(status).unwrap(), text).into_response();
    r.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    r.headers_mut()
        .insert("x-amzn-requestid", "req-0001".parse().unwrap());
    r
}

fn answer(s: &mut Cp, op: &str, body: &Value) -> (u16, String) {
    let approved = s
        .approvals
        .last()
        .map(|a| a["result"]["status"].as_str().unwrap_or("").to_string());
    match op {
        "StartPipelineExecution" => {
            if s.script == Script::NoPipeline {
                return aws_error(
                    400,
                    "PipelineNotFoundException",
                    "The account with id '123456789012' does not include a pipeline with the name 'shop-release'",
                );
            }
            if s.script == Script::StartFails {
                return aws_error(
                    500,
                    "InternalServerError",
                    "We encountered an internal error",
                );
            }
            if body["name"] != "shop-release" {
                return aws_error(400, "PipelineNotFoundException", "no such pipeline");
            }
            s.pinned = body["sourceRevisions"]
                == json!([{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": s.commit}])
                || body["variables"] == json!([{"name": "VERSION", "value": s.target}]);
            (200, json!({"pipelineExecutionId": EXEC}).to_string())
        }
        "GetPipelineExecution" => {
            if body != &json!({"pipelineName": "shop-release", "pipelineExecutionId": EXEC}) {
                return aws_error(400, "ValidationException", &format!("bad input {body}"));
            }
            if s.script == Script::Garbage {
                return (200, "<html><body>502 Bad Gateway</body></html>".into());
            }
            s.reads += 1;
            let (status, summary) = match s.script {
                Script::Succeed if s.reads >= 3 => ("Succeeded", ""),
                Script::Fail if s.reads >= 3 => (
                    "Failed",
                    "Deploy action failed: ECS service did not stabilize",
                ),
                Script::Approval => match approved.as_deref() {
                    Some("Approved") if s.reads.is_multiple_of(2) => ("Succeeded", ""),
                    Some("Rejected") => ("Failed", "Rejected by approval action ReleaseGate"),
                    _ => ("InProgress", ""),
                },
                _ => ("InProgress", ""),
            };
            if status == "Succeeded" && s.pinned {
                s.version = s.target.clone();
            }
            let mut exec = json!({"pipelineName": "shop-release", "pipelineVersion": 4,
                "pipelineExecutionId": EXEC, "status": status, "executionMode": "SUPERSEDED"});
            if !summary.is_empty() {
                exec["statusSummary"] = json!(summary);
            }
            (200, json!({"pipelineExecution": exec}).to_string())
        }
        "ListActionExecutions" => {
            if body
                != &json!({"pipelineName": "shop-release", "filter": {"pipelineExecutionId": EXEC}})
            {
                return aws_error(400, "ValidationException", &format!("bad input {body}"));
            }
            let t = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
            let detail = |stage: &str, action: &str, status: &str, ty: Value| {
                json!({"pipelineExecutionId": EXEC, "actionExecutionId": format!("{stage}-{action}"),
                       "stageName": stage, "actionName": action, "status": status,
                       "startTime": 1.7649e9, "input": {"actionTypeId": ty}})
            };
            let details = if s.script == Script::Approval && approved.is_none() {
                vec![
                    detail(
                        "Approve",
                        "ReleaseGate",
                        "InProgress",
                        t("Approval", "Manual"),
                    ),
                    detail("Build", "Compile", "Succeeded", t("Build", "CodeBuild")),
                    detail(
                        "Source",
                        "Source",
                        "Succeeded",
                        t("Source", "CodeStarSourceConnection"),
                    ),
                ]
            } else {
                vec![
                    detail("Deploy", "DeployECS", "InProgress", t("Deploy", "ECS")),
                    detail(
                        "Source",
                        "Source",
                        "Succeeded",
                        t("Source", "CodeStarSourceConnection"),
                    ),
                ]
            };
            (200, json!({"actionExecutionDetails": details}).to_string())
        }
        "GetPipelineState" => {
            if body != &json!({"name": "shop-release"}) {
                return aws_error(400, "ValidationException", &format!("bad input {body}"));
            }
            let open = approved.is_none();
            let gate = if open {
                json!({"actionExecutionId": "a-1", "status": "InProgress", "token": TOKEN})
            } else {
                json!({"actionExecutionId": "a-1", "status": "Succeeded"})
            };
            (
                200,
                json!({"pipelineName": "shop-release", "pipelineVersion": 4, "stageStates": [
                    {"stageName": "Source", "latestExecution": {"pipelineExecutionId": EXEC, "status": "Succeeded"},
                     "actionStates": [{"actionName": "Source", "latestExecution": {"status": "Succeeded"}}]},
                    {"stageName": "Approve", "latestExecution": {"pipelineExecutionId": EXEC, "status": "InProgress"},
                     "actionStates": [{"actionName": "ReleaseGate", "latestExecution": gate}]}]})
                .to_string(),
            )
        }
        "PutApprovalResult" => {
            if approved.is_some() || body["token"] != TOKEN {
                return aws_error(
                    400,
                    "InvalidApprovalTokenException",
                    "the token is not valid",
                );
            }
            s.approvals.push(body.clone());
            (200, json!({"approvedAt": 1.7649e9}).to_string())
        }
        other => aws_error(
            400,
            "UnknownOperationException",
            &format!("unknown operation {other:?}"),
        ),
    }
}

fn fake(script: Script, commit: &str) -> (Shared, String) {
    let cp: Shared = Arc::new(Mutex::new(Cp {
        script,
        version: "v1.0.0".into(),
        commit: commit.into(),
        target: "v2.0.0".into(),
        pinned: false,
        reads: 0,
        calls: Vec::new(),
        bad: Vec::new(),
        approvals: Vec::new(),
        key_id: KEY_ID.into(),
    }));
    let (tx, rx) = std::sync::mpsc::channel();
    let c2 = cp.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap().to_string()).unwrap();
            let app = axum::Router::new().fallback(serve).with_state(c2);
            axum::serve(l, app).await.unwrap();
        });
    });
    (cp, rx.recv().unwrap())
}

fn ops(cp: &Shared) -> Vec<String> {
    cp.lock()
        .unwrap()
        .calls
        .iter()
        .map(|(o, _)| o.clone())
        .collect()
}

// ---------------------------------------------------------------- the repository

/// A git repository with tags v1.0.0 and v2.0.0; the commit of v2.0.0.
fn repo(home: &Home) -> String {
    let dir = home.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    let git = |args: &[&str]| {
        let out = StdCommand::new("git")
            .current_dir(&dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git is needed by this test (Debian/Ubuntu: apt-get install git)");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "one"]);
    git(&["tag", "v1.0.0"]);
    git(&["commit", "-q", "--allow-empty", "-m", "two"]);
    git(&["tag", "v2.0.0"]);
    git(&["rev-parse", "v2.0.0^{commit}"])
}

fn config(addr: &str, timeout: &str, pin: &str, release: &str) -> String {
    format!(
        "project = \"shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{addr}/metrics\"\n\n[[environments]]\nname = \"production\"\nversion = {{ url = \"http://{addr}/version\" }}\n[environments.deploy]\ntimeout = \"{timeout}\"\npoll = \"100ms\"\n[environments.deploy.codepipeline]\npipeline = \"shop-release\"\nregion = \"eu-west-1\"\n{pin}api_url = \"http://{addr}\"\n{release}"
    )
}

const BY_COMMIT: &str = "source_action = \"Source\"\n";
const GIT: &str = "\n[release]\ngit = \"repo\"\ntag = \"{version}\"\n";

fn run(home: &Home, args: &[&str]) -> Output {
    let out = home
        .cmd()
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", "/nonexistent/shipdeck-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/shipdeck-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .output()
        .expect("run shipdeck");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn promote(home: &Home, version: &str) -> Output {
    run(
        home,
        &["promote", "production", "--version", version, "--yes"],
    )
}

fn last_audit(home: &Home) -> Value {
    let h = run(home, &["history", "--json"]);
    h.expect_code(0);
    h.json()["entries"][0].clone()
}

fn console_url() -> String {
    format!(
        "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/shop-release/executions/{EXEC}/timeline?region=eu-west-1"
    )
}

/// The secret key appears in no output and in no file shipdeck wrote.
fn assert_no_secret(home: &Home, outputs: &[&Output]) {
    assert_absent(home, outputs, SECRET);
}

/// `secret` appears in no output and in no file shipdeck wrote.
fn assert_absent(home: &Home, outputs: &[&Output], secret: &str) {
    let json = run(home, &["status", "--json"]);
    let hist = run(home, &["history", "--json"]);
    for o in outputs.iter().copied().chain([&json, &hist]) {
        assert!(
            !o.stdout.contains(secret) && !o.stderr.contains(secret),
            "secret in output: {o:#?}"
        );
    }
    let mut stack = vec![home.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "secret in {}",
                    path.display()
                );
            }
        }
    }
}

/// Not deployed: exit 1, the audit says `outcome`, the environment still
/// reports v1.0.0.
fn assert_not_recorded(home: &Home, out: &Output, outcome: &str) {
    out.expect_code(1);
    let e = last_audit(home);
    assert_eq!(e["action"], "promote", "{e}");
    assert_eq!(e["outcome"], outcome, "{e}");
    let st = run(home, &["status", "--json"]).json();
    assert_eq!(st["environments"][0]["version"], "v1.0.0");
}

// ---------------------------------------------------------------- through the binary

#[test]
fn an_execution_pinned_to_the_versions_commit_is_followed_to_success() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::Succeed, &commit);
    home.config(&config(&addr, "30s", BY_COMMIT, GIT));
    let out = promote(&home, "v2.0.0");
    out.expect_code(0);
    let s = cp.lock().unwrap();
    assert!(s.bad.is_empty(), "{:?}", s.bad);
    // Started once, pinned to the commit v2.0.0 names; then followed.
    let (op, start) = &s.calls[0];
    assert_eq!(op, "StartPipelineExecution");
    assert_eq!(start["name"], "shop-release");
    assert_eq!(
        start["sourceRevisions"],
        json!([{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": commit}])
    );
    assert!(
        start["clientRequestToken"]
            .as_str()
            .is_some_and(|t| t.len() >= 16),
        "{start}"
    );
    assert_eq!(
        s.calls
            .iter()
            .filter(|(o, _)| o == "StartPipelineExecution")
            .count(),
        1
    );
    assert!(
        s.calls
            .iter()
            .skip(1)
            .all(|(o, _)| o == "GetPipelineExecution" || o == "ListActionExecutions"),
        "{:?}",
        s.calls
    );
    drop(s);
    // The progress names the stage and action; the URL is the console's.
    assert!(
        out.stderr
            .contains("CodePipeline shop-release execution 3f2a9c41: in progress")
            && out.stderr.contains(" — Deploy / DeployECS"),
        "{out:#?}"
    );
    let st = run(&home, &["status", "--json"]).json();
    assert_eq!(st["environments"][0]["version"], "v2.0.0");
    assert_eq!(st["environments"][0]["deploy_url"], console_url());
    let e = last_audit(&home);
    assert_eq!(e["outcome"], "succeeded", "{e}");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("production reports v2.0.0") && detail.contains(&console_url()),
        "{e}"
    );
    assert_no_secret(&home, &[&out]);
}

#[test]
fn a_failed_execution_fails_the_deploy_with_its_url() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::Fail, &commit);
    home.config(&config(&addr, "30s", BY_COMMIT, GIT));
    let out = promote(&home, "v2.0.0");
    assert_not_recorded(&home, &out, "failed");
    assert!(
        out.stderr.contains("execution 3f2a9c41 ended: failed")
            && out
                .stderr
                .contains("Deploy action failed: ECS service did not stabilize")
            && out.stderr.contains(&console_url()),
        "{out:#?}"
    );
    assert!(cp.lock().unwrap().bad.is_empty());
    assert_no_secret(&home, &[&out]);
}

#[test]
fn a_version_without_a_commit_starts_nothing_and_says_why() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::Succeed, &commit);
    home.config(&config(&addr, "30s", BY_COMMIT, GIT));
    let out = promote(&home, "v3.0.0");
    out.expect_code(1);
    assert!(
        out.stderr.contains("cannot resolve v3.0.0 to a commit")
            && out.stderr.contains("no tag v3.0.0"),
        "{out:#?}"
    );
    assert!(ops(&cp).is_empty(), "{:?}", ops(&cp));
    // Without [release] git the config says so before anything runs.
    let home = Home::new();
    home.config(&config(&addr, "30s", BY_COMMIT, ""));
    let out = run(&home, &["config", "check"]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("deploy.codepipeline") && out.stderr.contains("no [release] git"),
        "{out:#?}"
    );
}

#[test]
fn a_pipeline_variable_pins_the_version_without_a_repository() {
    aws_env();
    let home = Home::new();
    let (cp, addr) = fake(Script::Succeed, "unused");
    home.config(&config(
        &addr,
        "30s",
        "variables = { VERSION = \"{version}\" }\n",
        "",
    ));
    let out = promote(&home, "v2.0.0");
    out.expect_code(0);
    let s = cp.lock().unwrap();
    assert_eq!(
        s.calls[0].1["variables"],
        json!([{"name": "VERSION", "value": "v2.0.0"}])
    );
    assert!(s.calls[0].1.get("sourceRevisions").is_none());
}

#[test]
fn a_profile_with_credential_process_signs_the_calls_and_its_secret_is_hidden() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::Succeed, &commit);
    cp.lock().unwrap().key_id = "AKIDFROMPROCESS".into();
    let secret = "PLANTED-process-secret/9931";
    // Outside the home, whose every file is searched for the secret.
    let aws_dir = tempfile::tempdir().unwrap();
    let script = aws_dir.path().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIDFROMPROCESS\", \"SecretAccessKey\": \"{secret}\"}}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let aws_config = aws_dir.path().join("config");
    std::fs::write(
        &aws_config,
        format!(
            "[profile deploy]\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    home.config(&config(
        &addr,
        "30s",
        "source_action = \"Source\"\nprofile = \"deploy\"\n",
        GIT,
    ));
    let out = home
        .cmd()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &aws_config)
        .args(["promote", "production", "--version", "v2.0.0", "--yes"])
        .output()
        .unwrap();
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    out.expect_code(0);
    let bad = cp.lock().unwrap().bad.clone();
    assert!(bad.is_empty(), "{bad:?}");
    assert!(!ops(&cp).is_empty());
    assert_absent(&home, &[&out], secret);
}

#[test]
fn a_refused_start_names_the_call_and_the_aws_error() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::NoPipeline, &commit);
    home.config(&config(&addr, "30s", BY_COMMIT, GIT));
    let out = promote(&home, "v2.0.0");
    assert_not_recorded(&home, &out, "failed");
    assert!(
        out.stderr.contains("StartPipelineExecution")
            && out.stderr.contains("HTTP 400")
            && out.stderr.contains("PipelineNotFoundException"),
        "{out:#?}"
    );
    // Refused: nothing started, nothing followed, not repeated.
    assert_eq!(ops(&cp), ["StartPipelineExecution"]);
}

#[test]
fn without_credentials_nothing_starts_and_the_error_says_so() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::Succeed, &commit);
    home.config(&config(&addr, "30s", BY_COMMIT, GIT));
    let out = home
        .cmd()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/shipdeck-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/shipdeck-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["promote", "production", "--version", "v2.0.0", "--yes"])
        .output()
        .unwrap();
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_not_recorded(&home, &out, "failed");
    assert!(
        out.stderr.contains(
            "AWS credentials: nothing started: no usable credentials in the standard AWS chain"
        ),
        "{out:#?}"
    );
    assert!(ops(&cp).is_empty(), "{:?}", ops(&cp));
}

#[test]
fn a_start_answered_500_is_unknown_and_not_repeated() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::StartFails, &commit);
    home.config(&config(&addr, "30s", BY_COMMIT, GIT));
    let out = promote(&home, "v2.0.0");
    assert_not_recorded(&home, &out, "unknown");
    assert!(
        out.stderr
            .contains("StartPipelineExecution: outcome unknown")
            && out.stderr.contains("HTTP 500"),
        "{out:#?}"
    );
    // The SDK's retries are off for a start: sent once.
    assert_eq!(ops(&cp), ["StartPipelineExecution"]);
}

#[test]
fn garbage_from_codepipeline_is_a_clear_error_and_the_deploy_unknown() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::Garbage, &commit);
    home.config(&config(&addr, "30s", BY_COMMIT, GIT));
    let out = promote(&home, "v2.0.0");
    // Started, then the execution could not be read: it may be deploying.
    assert_not_recorded(&home, &out, "unknown");
    assert!(
        out.stderr.contains("GetPipelineExecution")
            && out.stderr.contains("not CodePipeline's JSON")
            && out.stderr.contains("outcome unknown"),
        "{out:#?}"
    );
    assert_eq!(
        ops(&cp)
            .iter()
            .filter(|o| *o == "StartPipelineExecution")
            .count(),
        1
    );
}

#[test]
fn an_execution_that_does_not_answer_is_bounded_by_the_deploy_timeout() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (_cp, addr) = fake(Script::Hang, &commit);
    home.config(&config(&addr, "3s", BY_COMMIT, GIT));
    let t0 = std::time::Instant::now();
    let out = promote(&home, "v2.0.0");
    // Generous bound: the point is that the 60 s hang does not hold it.
    assert!(t0.elapsed() < Duration::from_secs(45), "{:?}", t0.elapsed());
    assert_not_recorded(&home, &out, "unknown");
    assert!(
        out.stderr.contains("GetPipelineExecution") && out.stderr.contains("no answer within"),
        "{out:#?}"
    );
}

#[test]
fn ctrl_c_while_following_an_execution_leaves_unknown() {
    aws_env();
    let home = Home::new();
    let commit = repo(&home);
    let (cp, addr) = fake(Script::Stall, &commit);
    home.config(&config(&addr, "60s", BY_COMMIT, GIT));
    let child = StdCommand::new(assert_cmd::cargo::cargo_bin("shipdeck"))
        .current_dir(home.path())
        .env_remove("SHIPDECK_CONFIG")
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("USER", "tester")
        .args(["promote", "production", "--version", "v2.0.0", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let reads = || {
        ops(&cp)
            .iter()
            .filter(|o| *o == "GetPipelineExecution")
            .count()
    };
    while reads() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the execution was never followed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_not_recorded(&home, &out, "unknown");
    assert_no_secret(&home, &[&out]);
}

// ---------------------------------------------------------------- the manual approval, through the engine

fn engine(addr: &str, dir: &tempfile::TempDir, timeout: &str) -> Engine {
    let cfg = format!(
        "{}\n[store]\npath = \"{}\"\n",
        config(
            addr,
            timeout,
            "source_action = \"Source\"\nrevision = \"{version}\"\n",
            ""
        ),
        dir.path().join("s.db").display(),
    );
    Engine::open(Config::parse(&cfg, std::path::Path::new("<test>")).unwrap()).unwrap()
}

/// Promote v2.0.0 in the background until the engine reports the
/// execution waiting on a human.
async fn deploy_until_waiting(
    e: &Engine,
) -> tokio::task::JoinHandle<Result<shipdeck::domain::DeployRecord, shipdeck::engine::EngineError>>
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let e2 = e.clone();
    let task = tokio::spawn(async move {
        e2.promote(
            "production",
            Some(Version::parse("v2.0.0").unwrap()),
            Confirm::Unseen {
                accept_warnings: true,
            },
            Some(tx),
        )
        .await
    });
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the execution reported as waiting within 20 s")
            .expect("events");
        if let Event::DeployProgress { progress, .. } = &ev
            && let Some(w) = &progress.waiting
        {
            assert_eq!(
                w.prompt,
                "waiting on a human: manual approval Approve / ReleaseGate"
            );
            assert!(w.can_answer);
            assert_eq!(progress.state, "waiting");
            assert_eq!(
                progress.what,
                "CodePipeline shop-release execution 3f2a9c41"
            );
            assert_eq!(progress.url.as_deref(), Some(console_url().as_str()));
            assert!(
                progress
                    .line()
                    .ends_with(" — Approve / ReleaseGate — waiting on a human: manual approval Approve / ReleaseGate"),
                "{}",
                progress.line()
            );
            break;
        }
    }
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    task
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_manual_approval_is_answered_go_with_the_note_and_the_deploy_goes_on() {
    aws_env();
    rt().block_on(async {
        let (cp, addr) = fake(Script::Approval, "unused");
        cp.lock().unwrap().commit = "v2.0.0".into();
        let dir = tempfile::tempdir().unwrap();
        let e = engine(&addr, &dir, "30s");
        let task = deploy_until_waiting(&e).await;
        let said = e
            .review(
                "production",
                Some(&Version::parse("v2.0.0").unwrap()),
                true,
                Some("QA signed off".into()),
            )
            .await
            .expect("approval taken");
        assert!(
            said.contains("Approve / ReleaseGate approved") && said.contains("QA signed off"),
            "{said}"
        );
        let rec = task.await.unwrap().expect("deployed once approved");
        assert_eq!(rec.url.as_deref(), Some(console_url().as_str()));
        let (bad, approvals) = {
            let s = cp.lock().unwrap();
            (s.bad.clone(), s.approvals.clone())
        };
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            approvals,
            vec![
                json!({"pipelineName": "shop-release", "stageName": "Approve",
                        "actionName": "ReleaseGate", "token": TOKEN,
                        "result": {"summary": "QA signed off", "status": "Approved"}})
            ]
        );
        let h = e.history(Some("production"), 10).await.unwrap();
        let review = h
            .iter()
            .find(|a| a.action == ActionKind::Review)
            .expect("the answer is audited");
        assert_eq!(review.outcome, Outcome::Succeeded, "{review:?}");
        assert!(review.detail.contains("QA signed off"), "{review:?}");
        // Nothing waits any more: a second answer is refused and sends nothing.
        assert!(e.review("production", None, true, None).await.is_err());
        assert_eq!(cp.lock().unwrap().approvals.len(), 1);
    });
}

#[test]
fn a_manual_approval_answered_no_go_rejects_it_and_the_deploy_fails() {
    aws_env();
    rt().block_on(async {
        let (cp, addr) = fake(Script::Approval, "unused");
        cp.lock().unwrap().commit = "v2.0.0".into();
        let dir = tempfile::tempdir().unwrap();
        let e = engine(&addr, &dir, "30s");
        let task = deploy_until_waiting(&e).await;
        e.review(
            "production",
            Some(&Version::parse("v2.0.0").unwrap()),
            false,
            Some("error budget spent".into()),
        )
        .await
        .expect("rejection taken");
        let err = task.await.unwrap().expect_err("rejected: not deployed");
        let msg = err.to_string();
        assert!(
            msg.contains("ended: failed")
                && msg.contains("Rejected by approval action ReleaseGate")
                && msg.contains(&console_url()),
            "{msg}"
        );
        let (approvals, version) = {
            let s = cp.lock().unwrap();
            (s.approvals.clone(), s.version.clone())
        };
        assert_eq!(
            approvals[0]["result"],
            json!({"summary": "error budget spent", "status": "Rejected"})
        );
        assert_eq!(version, "v1.0.0");
        let h = e.history(Some("production"), 10).await.unwrap();
        assert!(
            h.iter()
                .all(|a| a.action != ActionKind::Promote || a.outcome != Outcome::Succeeded),
            "{h:#?}"
        );
    });
}
