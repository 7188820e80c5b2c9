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
//! The in-process tests need the credentials in this process's
//! environment: [`AWS_ENV`] sets them before `main`, and every test calls
//! [`aws_env`] first to check they are there.

mod common;

use std::process::Command as StdCommand;
use std::time::Duration;

use common::deploy::{self, Backend, Fake, HasVersion, Req, Resp, Scenario, Vars};
use common::{Home, Output};
use serde_json::{Value, json};
use shipdeck::config::Config;
use shipdeck::domain::{ActionKind, Outcome, Version};
use shipdeck::engine::{Confirm, Engine, Event};

const KEY_ID: &str = "AKIDSHIPDECKTEST";
const SECRET: &str = "PLANTED/aws-secret-key+0731shipdeck";
const EXEC: &str = "3f2a9c41-0d8e-4f7b-a1c2-9e8d7c6b5a40";
const TOKEN: &str = "approval-token-1c9e";
/// The `nextToken` of ListActionExecutions' second page, when paged.
const PAGE_2: &str = "page-2-of-actions";

/// The static credentials (and no other source of them) every shipdeck
/// run gets: the secret key is the planted secret grepped for.
const VARS: Vars = &[
    ("AWS_ACCESS_KEY_ID", Some(KEY_ID)),
    ("AWS_SECRET_ACCESS_KEY", Some(SECRET)),
    ("AWS_SESSION_TOKEN", None),
    ("AWS_PROFILE", None),
    ("AWS_ENDPOINT_URL", None),
    ("AWS_CONFIG_FILE", Some("/nonexistent/shipdeck-test/config")),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        Some("/nonexistent/shipdeck-test/credentials"),
    ),
    ("AWS_EC2_METADATA_DISABLED", Some("true")),
];

/// [`VARS`] are put in this test binary's own environment before `main`,
/// on the only thread there is then (the in-process tests need them):
/// `set_var` while other threads run (the tests, their runtimes, C code
/// calling `getenv`) is a data race.
#[used]
#[unsafe(link_section = ".init_array")]
static AWS_ENV: extern "C" fn() = {
    extern "C" fn set_aws_env() {
        for (k, v) in VARS {
            // SAFETY: runs before `main`, single-threaded.
            unsafe {
                match v {
                    Some(v) => std::env::set_var(k, v),
                    None => std::env::remove_var(k),
                }
            }
        }
    }
    set_aws_env
};

/// Every test checks the environment [`AWS_ENV`] set up is there.
fn aws_env() {
    for (k, v) in VARS {
        assert_eq!(std::env::var(k).ok().as_deref(), *v, "{k}");
    }
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

#[derive(Clone, Debug)]
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
    /// ListActionExecutions answers in two pages (the first with a
    /// `nextToken`), the open approval on the second.
    paged: bool,
}

impl HasVersion for Cp {
    fn version(&self) -> String {
        self.version.clone()
    }
}

fn aws_error(status: u16, kind: &str, message: &str) -> (u16, String) {
    (
        status,
        json!({"__type": kind, "message": message}).to_string(),
    )
}

/// Checks the protocol of every call (noted in `bad`), records it and
/// answers as the script says.
fn codepipeline(req: &Req, s: &mut Cp, _: &str) -> Resp {
    let target = req.header("x-amz-target");
    let op = target
        .strip_prefix("CodePipeline_20150709.")
        .unwrap_or("")
        .to_string();
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    let mut bad = Vec::new();
    if req.method != "POST" || req.path != "/" {
        bad.push(format!("{} {}", req.method, req.path));
    }
    if op.is_empty() {
        bad.push(format!("X-Amz-Target {target:?}"));
    }
    if req.header("content-type") != "application/x-amz-json-1.1" {
        bad.push(format!("content-type {:?}", req.header("content-type")));
    }
    let auth = req.header("authorization");
    if !(auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={}/", s.key_id))
        && auth.contains("/eu-west-1/codepipeline/aws4_request")
        && auth.contains("Signature="))
    {
        bad.push(format!("authorization {auth:?}"));
    }
    if req.header("x-amz-date").is_empty() {
        bad.push("no x-amz-date".into());
    }
    if !bad.is_empty() {
        s.bad.push(format!("{op}: {}", bad.join(", ")));
    }
    s.calls.push((op.clone(), body.clone()));
    let hang = s.script == Script::Hang && op == "GetPipelineExecution";
    let (status, text) = reply(s, &op, &body);
    Resp {
        status,
        headers: vec![
            ("content-type", "application/x-amz-json-1.1".into()),
            ("x-amzn-requestid", "req-0001".into()),
        ],
        body: text,
        delay: hang.then_some(Duration::from_secs(60)),
    }
}

fn reply(s: &mut Cp, op: &str, body: &Value) -> (u16, String) {
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
            let mut first = body.clone();
            let token = first.as_object_mut().and_then(|o| o.remove("nextToken"));
            if first
                != json!({"pipelineName": "shop-release", "filter": {"pipelineExecutionId": EXEC}})
                || token.as_ref().is_some_and(|t| t != PAGE_2)
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
            if s.paged {
                // The newest action (the approval) is on the second page.
                let (page, next) = match token {
                    None => (details[1..].to_vec(), Some(PAGE_2)),
                    Some(_) => (details[..1].to_vec(), None),
                };
                let mut out = json!({"actionExecutionDetails": page});
                if let Some(t) = next {
                    out["nextToken"] = json!(t);
                }
                return (200, out.to_string());
            }
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

fn fake(script: Script, commit: &str) -> (Fake<Cp>, String) {
    let cp = Fake::start(
        Cp {
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
            paged: false,
        },
        codepipeline,
    );
    let addr = cp.addr.clone();
    (cp, addr)
}

fn ops(cp: &Fake<Cp>) -> Vec<String> {
    cp.with(|s| s.calls.iter().map(|(o, _)| o.clone()).collect())
}

// ---------------------------------------------------------------- the repository

/// A git repository with tags v1.0.0 and v2.0.0 (made once per home);
/// the commit of v2.0.0.
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
    if !dir.join(".git").exists() {
        git(&["init", "-q"]);
        git(&["commit", "-q", "--allow-empty", "-m", "one"]);
        git(&["tag", "v1.0.0"]);
        git(&["commit", "-q", "--allow-empty", "-m", "two"]);
        git(&["tag", "v2.0.0"]);
    }
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
    deploy::run(home, VARS, args)
}

fn promote(home: &Home, version: &str) -> Output {
    run(
        home,
        &["promote", "production", "--version", version, "--yes"],
    )
}

fn last_audit(home: &Home) -> Value {
    deploy::last_audit(home, VARS)
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

fn assert_absent(home: &Home, outputs: &[&Output], secret: &str) {
    deploy::assert_absent(home, VARS, outputs, &[secret.to_string()]);
}

#[track_caller]
fn assert_not_recorded(home: &Home, out: &Output, outcome: &str) {
    deploy::assert_not_recorded(home, VARS, out, outcome);
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
    let s = cp.with(|s| s.clone());
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
    assert!(cp.with(|s| s.bad.is_empty()));
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
    let s = cp.with(|s| s.clone());
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
    cp.with(|s| s.key_id = "AKIDFROMPROCESS".into());
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
    let out = deploy::output(out);
    out.expect_code(0);
    let bad = cp.with(|s| s.bad.clone());
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
    // VARS without the key: nothing else in the chain has credentials.
    const NO_CREDENTIALS: Vars = &[
        ("AWS_ACCESS_KEY_ID", None),
        ("AWS_SECRET_ACCESS_KEY", None),
        ("AWS_SESSION_TOKEN", None),
        ("AWS_PROFILE", None),
        ("AWS_CONFIG_FILE", Some("/nonexistent/shipdeck-test/config")),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            Some("/nonexistent/shipdeck-test/credentials"),
        ),
        ("AWS_EC2_METADATA_DISABLED", Some("true")),
    ];
    let out = deploy::promote(&home, NO_CREDENTIALS, "production");
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
        cp.with(|s| s.commit = "v2.0.0".into());
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
            let s = cp.with(|s| s.clone());
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
        assert_eq!(cp.with(|s| s.approvals.len()), 1);
    });
}

/// ListActionExecutions pages its answer: the approval on the second page
/// is found by following `nextToken`, and answered as on one page.
#[test]
fn an_approval_on_the_second_page_of_action_executions_is_found() {
    aws_env();
    rt().block_on(async {
        let (cp, addr) = fake(Script::Approval, "unused");
        cp.with(|s| {
            s.commit = "v2.0.0".into();
            s.paged = true;
        });
        let dir = tempfile::tempdir().unwrap();
        let e = engine(&addr, &dir, "30s");
        let task = deploy_until_waiting(&e).await;
        e.review(
            "production",
            Some(&Version::parse("v2.0.0").unwrap()),
            true,
            None,
        )
        .await
        .expect("approval taken");
        task.await.unwrap().expect("deployed once approved");
        let s = cp.with(|s| s.clone());
        assert!(s.bad.is_empty(), "{:?}", s.bad);
        let lists: Vec<&Value> = s
            .calls
            .iter()
            .filter(|(op, _)| op == "ListActionExecutions")
            .map(|(_, b)| b)
            .collect();
        assert!(
            lists.iter().any(|b| b.get("nextToken").is_none())
                && lists.iter().any(|b| b["nextToken"] == PAGE_2),
            "{lists:?}"
        );
    });
}

#[test]
fn a_manual_approval_answered_no_go_rejects_it_and_the_deploy_fails() {
    aws_env();
    rt().block_on(async {
        let (cp, addr) = fake(Script::Approval, "unused");
        cp.with(|s| s.commit = "v2.0.0".into());
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
            let s = cp.with(|s| s.clone());
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

// ---------------------------------------------------------------- the shared suite

/// CodePipeline's row of the suite every backend runs (the others are in
/// tests/deploy_backends.rs).
fn start_codepipeline(home: &Home, sc: Scenario) -> deploy::Following {
    aws_env();
    let commit = repo(home);
    let (cp, addr) = match sc {
        Scenario::Succeeds => fake(Script::Succeed, &commit),
        Scenario::Fails => fake(Script::Fail, &commit),
        // The execution succeeds but deploys something else: the start is
        // pinned to the version's commit, which the fake does not know.
        Scenario::SucceedsWithoutTheVersion => fake(Script::Succeed, "0000000"),
        Scenario::Stalls | Scenario::OutlivesTheTimeout => fake(Script::Stall, &commit),
    };
    let timeout = match sc {
        Scenario::SucceedsWithoutTheVersion | Scenario::OutlivesTheTimeout => "3s",
        Scenario::Stalls => "60s",
        _ => "30s",
    };
    home.config(&config(&addr, timeout, BY_COMMIT, GIT));
    Box::new(move || {
        ops(&cp)
            .iter()
            .filter(|o| *o == "GetPipelineExecution")
            .count()
            >= 3
    })
}

fn secret() -> Vec<String> {
    vec![SECRET.to_string()]
}

const CODEPIPELINE: Backend = Backend {
    env: "production",
    vars: VARS,
    secrets: secret,
    start: start_codepipeline,
};

deploy::deploy_suite! {
    codepipeline => CODEPIPELINE,
}
