//! Every deploy backend — command, webhook, GitHub Actions, Jenkins, Vercel
//! — through the real binary against a local HTTP fake that checks the
//! exact method, path, headers and body of each call and flips the
//! environment's version only when the vendor's work succeeded. Shared
//! behaviour: the deploy is observed; a failure exits 1 and names the run
//! or build; nothing is recorded as deployed that was not observed; a lost
//! answer to a dispatch is "unknown" and not repeated; no token anywhere.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::deploy::{
    self, Backend, Fake, HasVersion, Req, Resp, Scenario, Vars, answer, url_decode_pairs,
};
use common::{Home, Output};
use serde_json::{Value, json};

// ---------------------------------------------------------------- the shared checks

const TOKEN_VAR: &str = "SHIPDECK_TEST_DEPLOY_TOKEN";
const TOKEN: &str = "tok_PLANTED-deploy-secret-7731";
const VARS: Vars = &[(TOKEN_VAR, Some(TOKEN))];

fn config(addr: &str, deploy: &str) -> String {
    format!(
        "project = \"shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{addr}/metrics\"\n\n[[environments]]\nname = \"local\"\nversion = {{ url = \"http://{addr}/version\" }}\n{deploy}\n"
    )
}

fn run(home: &Home, args: &[&str]) -> Output {
    deploy::run(home, VARS, args)
}

fn promote(home: &Home) -> Output {
    deploy::promote(home, VARS, "local")
}

fn last_audit(home: &Home) -> Value {
    deploy::last_audit(home, VARS)
}

fn reported(home: &Home) -> Value {
    deploy::reported(home, VARS)
}

/// The planted token (and `extra` forms of it) appears in no output and in
/// no file shipdeck wrote.
fn assert_no_token(home: &Home, outputs: &[&Output], extra: &[&str]) {
    let mut secrets = vec![TOKEN.to_string()];
    secrets.extend(extra.iter().map(|s| s.to_string()));
    deploy::assert_absent(home, VARS, outputs, &secrets);
}

#[track_caller]
fn assert_not_recorded(home: &Home, out: &Output, outcome: &str) {
    deploy::assert_not_recorded(home, VARS, out, outcome);
}

// ---------------------------------------------------------------- GitHub Actions

#[derive(Default)]
struct Gh {
    version: String,
    /// Answer the dispatch with the run's id (newer GitHub).
    details: bool,
    conclusion: &'static str,
    /// Flip the version when the run succeeds.
    flip: bool,
    dispatches: u32,
    run_reads: u32,
    /// Answer the first dispatch with a rate limit.
    rate_limited: bool,
    /// Never answer the dispatch in time.
    hang: bool,
    /// The run never leaves in_progress.
    stall: bool,
    /// The first read of the run answers 502.
    flaky: bool,
    /// The dispatch is answered 200 with its JSON cut short.
    truncated: bool,
    /// The dispatch is answered 200 with an answer past the cap.
    huge: bool,
    /// The first reads of the just-dispatched run answer 404 (GitHub's
    /// replicas have not seen it yet).
    lagging: u32,
    requested: String,
    dispatched_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Deployments API: the records created and the statuses posted.
    records: Vec<Value>,
    statuses: Vec<Value>,
}

impl HasVersion for Gh {
    fn version(&self) -> String {
        self.version.clone()
    }
}

const GH_BASE: &str = "/api/v3/repos/acme/shop";
const OUR_RUN: u64 = 4242;

fn gh_run(
    id: u64,
    event: &str,
    actor: &str,
    created: chrono::DateTime<chrono::Utc>,
    addr: &str,
) -> Value {
    json!({
        "id": id, "run_number": id - 4000, "event": event, "head_branch": "main",
        "actor": {"login": actor},
        "created_at": created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "status": "queued", "conclusion": null,
        "html_url": format!("http://{addr}/acme/shop/actions/runs/{id}"),
    })
}

fn github(req: &Req, s: &mut Gh, addr: &str) -> Resp {
    let now = chrono::Utc::now();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", p) if p == format!("{GH_BASE}/actions/workflows/deploy.yml/dispatches") => {
            if s.rate_limited && s.dispatches == 0 {
                s.dispatches += 1;
                let mut r = answer(429, json!({"message": "API rate limit exceeded"}));
                r.headers.push(("retry-after", "1".into()));
                return r;
            }
            s.dispatches += 1;
            s.requested = req.json()["inputs"]["version"]
                .as_str()
                .unwrap_or("")
                .into();
            s.dispatched_at = Some(now);
            if s.hang {
                let mut r = answer(204, Value::Null);
                r.delay = Some(Duration::from_secs(30));
                return r;
            }
            if s.truncated {
                let mut r = answer(200, Value::Null);
                r.body = format!("{{\"workflow_run_id\": {OUR_RUN}, \"run_url\": \"http://{addr}");
                return r;
            }
            if s.huge {
                // Accepted, with an answer past the 1 MiB cap.
                let mut r = answer(200, Value::Null);
                r.body = format!(
                    "{{\"workflow_run_id\": {OUR_RUN}, \"pad\": \"{}\"}}",
                    "x".repeat(2 << 20)
                );
                return r;
            }
            if s.details {
                answer(
                    200,
                    json!({
                        "workflow_run_id": OUR_RUN,
                        "run_url": format!("http://{addr}{GH_BASE}/actions/runs/{OUR_RUN}"),
                        "html_url": format!("http://{addr}/acme/shop/actions/runs/{OUR_RUN}"),
                    }),
                )
            } else {
                answer(204, Value::Null)
            }
        }
        ("GET", "/api/v3/user") => answer(200, json!({"login": "release-bot"})),
        ("POST", p) if p == format!("{GH_BASE}/deployments") => {
            s.records.push(req.json());
            answer(
                201,
                json!({"id": 9001, "environment": req.json()["environment"]}),
            )
        }
        ("POST", p) if p == format!("{GH_BASE}/deployments/9001/statuses") => {
            s.statuses.push(req.json());
            answer(
                201,
                json!({"id": s.statuses.len(), "state": req.json()["state"]}),
            )
        }
        ("GET", p) if p == format!("{GH_BASE}/actions/workflows/deploy.yml/runs") => {
            // Other runs come and go: push CI (the newest), another
            // person's dispatch, an older dispatch of ours.
            let mut runs = vec![
                gh_run(4999, "push", "release-bot", now, addr),
                gh_run(4998, "workflow_dispatch", "someone-else", now, addr),
                gh_run(
                    4100,
                    "workflow_dispatch",
                    "release-bot",
                    now - chrono::Duration::hours(1),
                    addr,
                ),
            ];
            if let Some(at) = s.dispatched_at {
                runs.insert(
                    1,
                    gh_run(OUR_RUN, "workflow_dispatch", "release-bot", at, addr),
                );
            }
            answer(
                200,
                json!({"total_count": runs.len(), "workflow_runs": runs}),
            )
        }
        ("GET", p) if p == format!("{GH_BASE}/actions/runs/{OUR_RUN}/jobs") => answer(
            200,
            json!({"total_count": 2, "jobs": [
                {"name": "build", "status": "completed", "steps": [{"name": "compile", "status": "completed"}]},
                {"name": "deploy", "status": "in_progress", "steps": [
                    {"name": "checkout", "status": "completed"},
                    {"name": "migrate", "status": "in_progress"},
                    {"name": "rollout", "status": "queued"}]}]}),
        ),
        ("GET", p) if p == format!("{GH_BASE}/actions/runs/{OUR_RUN}") && s.lagging > 0 => {
            s.lagging -= 1;
            answer(
                404,
                json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run", "status": "404"}),
            )
        }
        ("GET", p) if p == format!("{GH_BASE}/actions/runs/{OUR_RUN}") => {
            s.run_reads += 1;
            if s.flaky && s.run_reads == 1 {
                return answer(502, json!({"message": "Server Error"}));
            }
            if s.stall {
                s.run_reads = 2;
            }
            let (status, conclusion) = match s.run_reads {
                1 => ("queued", Value::Null),
                2 => ("in_progress", Value::Null),
                _ => ("completed", json!(s.conclusion)),
            };
            if status == "completed" && s.conclusion == "success" && s.flip {
                s.version = s.requested.clone();
            }
            let mut run = gh_run(OUR_RUN, "workflow_dispatch", "release-bot", now, addr);
            run["status"] = json!(status);
            run["conclusion"] = conclusion;
            run["display_title"] = json!("deploy / migrate");
            answer(200, run)
        }
        _ => answer(404, json!({"message": "Not Found"})),
    }
}

fn states(fake: &Fake<Gh>) -> Vec<String> {
    fake.with(|s| {
        s.statuses
            .iter()
            .map(|s| s["state"].as_str().unwrap_or("").to_string())
            .collect()
    })
}

fn gh_config(addr: &str, timeout: &str) -> String {
    config(
        addr,
        &format!(
            "[environments.deploy]\ntimeout = \"{timeout}\"\npoll = \"100ms\"\n[environments.deploy.github_actions]\nrepo = \"acme/shop\"\nworkflow = \"deploy.yml\"\nref = \"main\"\ninputs = {{ environment = \"{{env}}\", version = \"{{version}}\" }}\ntoken_env = \"{TOKEN_VAR}\"\napi_url = \"http://{addr}/api/v3\"\n"
        ),
    )
}

fn gh_fake(f: impl FnOnce(&mut Gh)) -> Fake<Gh> {
    let mut s = Gh {
        version: "v1.0.0".into(),
        details: true,
        conclusion: "success",
        flip: true,
        ..Gh::default()
    };
    f(&mut s);
    Fake::start(s, github)
}

fn assert_github_headers(r: &Req) {
    assert_eq!(
        r.header("authorization"),
        format!("Bearer {TOKEN}"),
        "{r:?}"
    );
    assert_eq!(r.header("accept"), "application/vnd.github+json", "{r:?}");
    assert_eq!(r.header("x-github-api-version"), "2022-11-28", "{r:?}");
    assert!(r.header("user-agent").starts_with("shipdeck/"), "{r:?}");
}

#[test]
fn github_actions_dispatches_follows_its_run_and_waits_for_the_version() {
    let fake = gh_fake(|_| {});
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    let calls = fake.calls();
    for r in &calls {
        assert_github_headers(r);
    }
    // The Deployments API record, then the dispatch.
    let rec = &calls[0];
    assert_eq!(
        (rec.method.as_str(), rec.path.as_str()),
        ("POST", "/api/v3/repos/acme/shop/deployments")
    );
    assert_eq!(
        rec.json(),
        json!({"ref": "main", "environment": "local", "description": "shipdeck: v2.0.0",
               "payload": {"version": "v2.0.0"}, "auto_merge": false, "required_contexts": []})
    );
    let statuses = fake.with(|s| s.statuses.clone());
    let states: Vec<&str> = statuses
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["in_progress", "success"]);
    assert!(
        statuses[0]["log_url"]
            .as_str()
            .unwrap()
            .ends_with("/acme/shop/actions/runs/4242")
    );
    // While the run is in progress, its jobs name the step it is at; the
    // console and the CLI say so.
    let jobs: Vec<&Req> = calls.iter().filter(|r| r.path.ends_with("/jobs")).collect();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(
        jobs[0].path,
        "/api/v3/repos/acme/shop/actions/runs/4242/jobs"
    );
    assert_eq!(
        jobs[0].query.get("filter").map(String::as_str),
        Some("latest")
    );
    assert!(
        out.stderr
            .contains("local: GitHub Actions run #242: queued, ")
            && out
                .stderr
                .contains("local: GitHub Actions run #242: in progress, ")
            && out.stderr.contains(" — deploy / migrate"),
        "{out:#?}"
    );
    // The run's page is the deploy's URL in status --json.
    let st = run(&home, &["status", "--json"]).json();
    assert_eq!(
        st["environments"][0]["deploy_url"],
        format!("http://{}/acme/shop/actions/runs/4242", fake.addr)
    );
    assert_eq!(
        st["environments"][0]["last_deploy"]["url"],
        st["environments"][0]["deploy_url"]
    );
    let calls: Vec<Req> = calls
        .into_iter()
        .filter(|r| !r.path.contains("/deployments") && !r.path.ends_with("/jobs"))
        .collect();
    let d = &calls[0];
    assert_eq!(
        (d.method.as_str(), d.path.as_str()),
        (
            "POST",
            "/api/v3/repos/acme/shop/actions/workflows/deploy.yml/dispatches"
        )
    );
    assert_github_headers(d);
    assert_eq!(
        d.json(),
        json!({"ref": "main", "inputs": {"environment": "local", "version": "v2.0.0"}, "return_run_details": true})
    );
    // Then only the run it started, read until it completed.
    for r in &calls[1..] {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v3/repos/acme/shop/actions/runs/4242")
        );
        assert_github_headers(r);
    }
    assert_eq!(calls.len(), 4, "{calls:#?}");
    // The audit log carries the run's URL and the observed version.
    let e = last_audit(&home);
    assert_eq!(e["outcome"], "succeeded", "{e}");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("local reports v2.0.0")
            && detail.contains("GitHub Actions run #242")
            && detail.contains("/acme/shop/actions/runs/4242"),
        "{e}"
    );
    let log = std::fs::read_to_string(find_log(&home)).unwrap();
    assert!(
        log.contains("GitHub Actions run #242") && log.contains("/acme/shop/actions/runs/4242"),
        "{log}"
    );
    assert_no_token(&home, &[&out], &[]);
}

fn find_log(home: &Home) -> std::path::PathBuf {
    let mut stack = vec![home.path().join("state")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "log")
                || path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("log"))
            {
                return path;
            }
        }
    }
    panic!("no log file under {}", home.path().display());
}

#[test]
fn github_actions_without_run_details_follows_the_run_of_this_dispatch_not_the_newest() {
    let fake = gh_fake(|s| s.details = false);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    let calls = fake.calls();
    let lists: Vec<&Req> = calls.iter().filter(|r| r.path.ends_with("/runs")).collect();
    assert!(!lists.is_empty());
    let q = &lists[0].query;
    assert_eq!(q["event"], "workflow_dispatch");
    assert_eq!(q["branch"], "main");
    assert_eq!(q["actor"], "release-bot");
    assert!(q["created"].starts_with(">="), "{q:?}");
    // The run followed is ours, not the newer push run or another's dispatch.
    assert!(calls.iter().any(|r| r.path.ends_with("/actions/runs/4242")));
    assert!(!calls.iter().any(|r| r.path.ends_with("/4999")
        || r.path.ends_with("/4998")
        || r.path.ends_with("/4100")));
}

#[test]
fn github_actions_failed_run_fails_the_deploy_with_its_url() {
    let fake = gh_fake(|s| s.conclusion = "failure");
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    assert!(
        out.stderr.contains("/acme/shop/actions/runs/4242") && out.stderr.contains("failure"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "failed");
    let e = last_audit(&home);
    assert!(
        e["detail"].as_str().unwrap().contains("/actions/runs/4242"),
        "{e}"
    );
    assert_eq!(states(&fake), ["in_progress", "failure"]);
    assert_no_token(&home, &[&out], &[]);
}

#[test]
fn github_actions_success_without_the_new_version_is_not_a_deploy() {
    let fake = gh_fake(|s| s.flip = false);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "2s"));
    let out = promote(&home);
    assert!(out.stderr.contains("still reports v1.0.0"), "{out:#?}");
    // The run's success is said, but it is not taken for the deploy.
    assert!(out.stderr.contains("completed: success"), "{out:#?}");
    assert_not_recorded(&home, &out, "failed");
    // GitHub's record says failure too: the run's success is not the deploy's.
    assert_eq!(states(&fake), ["in_progress", "failure"]);
}

#[test]
fn github_actions_dispatch_accepted_with_a_cut_answer_finds_and_follows_its_run() {
    // GitHub said 200 (the dispatch was accepted and the run started) but
    // the body was cut off: the run is looked for as after a 204, never
    // taken for a failed deploy while it deploys.
    let fake = gh_fake(|s| s.truncated = true);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    assert_eq!(fake.with(|s| s.dispatches), 1, "the dispatch was repeated");
    assert_eq!(last_audit(&home)["outcome"], "succeeded", "{out:#?}");
    let log = std::fs::read_to_string(find_log(&home)).unwrap();
    assert!(log.contains("answer was not readable"), "{log}");
}

#[test]
fn github_actions_dispatch_accepted_with_an_answer_past_the_cap_finds_and_follows_its_run() {
    // Accepted (HTTP 200) with an answer too large to read: the run has
    // started, so it is looked for — never "failed" while it deploys.
    let fake = gh_fake(|s| s.huge = true);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    assert_eq!(fake.with(|s| s.dispatches), 1, "the dispatch was repeated");
    assert_eq!(last_audit(&home)["outcome"], "succeeded", "{out:#?}");
}

#[test]
fn github_actions_run_not_readable_yet_right_after_the_dispatch_is_read_again() {
    // The dispatch names its run, whose first two reads answer 404.
    let fake = gh_fake(|s| s.lagging = 2);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    assert_eq!(fake.with(|s| s.dispatches), 1);
    // A run that never shows up still ends as unknown (it was dispatched).
    let fake = gh_fake(|s| s.lagging = 1000);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    assert!(out.stderr.contains("HTTP 404"), "{out:#?}");
    assert_not_recorded(&home, &out, "unknown");
    assert_eq!(fake.with(|s| s.dispatches), 1);
}

#[test]
fn github_actions_rate_limit_is_waited_out_and_said() {
    let fake = gh_fake(|s| s.rate_limited = true);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(fake.with(|s| s.dispatches), 2);
    let log = std::fs::read_to_string(find_log(&home)).unwrap();
    assert!(log.contains("rate limited (HTTP 429); waiting 1s"), "{log}");
}

#[test]
fn github_actions_lost_dispatch_answer_is_unknown_and_not_repeated() {
    let fake = gh_fake(|s| s.hang = true);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "2s"));
    let out = promote(&home);
    assert!(out.stderr.contains("outcome unknown"), "{out:#?}");
    assert_not_recorded(&home, &out, "unknown");
    assert_eq!(fake.with(|s| s.dispatches), 1, "the dispatch was repeated");
    assert_no_token(&home, &[&out], &[]);
}

#[test]
fn github_actions_refusal_echoing_the_token_names_the_call_and_hides_the_token() {
    // A 401 whose body echoes the token back.
    fn refuse(req: &Req, _: &mut Gh, _: &str) -> Resp {
        answer(
            401,
            json!({"message": format!("Bad credentials: {}", req.header("authorization"))}),
        )
    }
    let fake = Fake::start(
        Gh {
            version: "v1.0.0".into(),
            ..Gh::default()
        },
        refuse,
    );
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "5s"));
    let out = promote(&home);
    assert!(
        out.stderr.contains("HTTP 401") && out.stderr.contains("/dispatches"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "failed");
    assert_no_token(&home, &[&out], &[]);
}

// ---------------------------------------------------------------- Jenkins

#[derive(Default)]
struct Jk {
    version: String,
    result: &'static str,
    item_reads: u32,
    build_reads: u32,
    requested: String,
    triggers: u32,
    /// CSRF protection off: no crumb issued.
    no_crumb: bool,
    /// The queue item is cancelled before it starts.
    cancel: bool,
    /// The build never ends.
    stall: bool,
    /// A successful build does not change the environment's version.
    no_flip: bool,
    /// Build #12 is another queue item's (the build number was reused).
    reused: bool,
    /// The build's answer lacks `building` (not Jenkins' build API).
    bare: bool,
}

impl HasVersion for Jk {
    fn version(&self) -> String {
        self.version.clone()
    }
}

fn jenkins(req: &Req, s: &mut Jk, addr: &str) -> Resp {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/ci/crumbIssuer/api/json") if s.no_crumb => answer(404, Value::Null),
        ("GET", "/ci/queue/item/77/api/json") if s.cancel => answer(
            200,
            json!({"id": 77, "cancelled": true, "executable": null}),
        ),
        ("GET", "/ci/crumbIssuer/api/json") => {
            let mut r = answer(
                200,
                json!({"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": "crumb-abc", "crumbRequestField": "Jenkins-Crumb"}),
            );
            // Jenkins ≥ 2.176 ties the crumb to this web session.
            r.headers.push((
                "set-cookie",
                "JSESSIONID.4f1c=node0abc.node0; Path=/ci; HttpOnly".into(),
            ));
            r.headers
                .push(("set-cookie", "remember-me=; Max-Age=0; Path=/ci".into()));
            r
        }
        ("POST", "/ci/job/team/job/deploy-shop/buildWithParameters")
            if !s.no_crumb
                && !req
                    .header("cookie")
                    .contains("JSESSIONID.4f1c=node0abc.node0") =>
        {
            answer(
                403,
                json!({"message": "No valid crumb was included in the request"}),
            )
        }
        ("POST", "/ci/job/team/job/deploy-shop/buildWithParameters") => {
            s.triggers += 1;
            s.requested = url_decode_pairs(&req.body)
                .get("VERSION")
                .cloned()
                .unwrap_or_default();
            let mut r = answer(201, Value::Null);
            // Jenkins names itself by its configured root URL.
            r.headers
                .push(("location", format!("http://{addr}/ci/queue/item/77/")));
            r
        }
        ("GET", "/ci/queue/item/77/api/json") => {
            s.item_reads += 1;
            if s.item_reads < 2 {
                answer(
                    200,
                    json!({"id": 77, "why": "Waiting for next available executor"}),
                )
            } else {
                answer(
                    200,
                    json!({"id": 77, "executable": {"number": 12, "url": format!("http://{addr}/ci/job/team/job/deploy-shop/12/")}}),
                )
            }
        }
        ("GET", "/ci/job/team/job/deploy-shop/12/api/json") if s.reused => answer(
            200,
            json!({"number": 12, "queueId": 31, "building": false, "result": "SUCCESS"}),
        ),
        ("GET", "/ci/job/team/job/deploy-shop/12/api/json") if s.bare => {
            answer(200, json!({"number": 12, "result": null}))
        }
        ("GET", "/ci/job/team/job/deploy-shop/12/api/json") => {
            s.build_reads += 1;
            if s.build_reads < 2 || s.stall {
                answer(200, json!({"number": 12, "building": true, "result": null}))
            } else {
                if s.result == "SUCCESS" && !s.no_flip {
                    s.version = s.requested.clone();
                }
                answer(
                    200,
                    json!({"number": 12, "building": false, "result": s.result}),
                )
            }
        }
        _ => answer(404, Value::Null),
    }
}

fn jk_config(addr: &str) -> String {
    jk_config_timeout(addr, "20s")
}

fn jk_config_timeout(addr: &str, timeout: &str) -> String {
    config(
        addr,
        &format!(
            "[environments.deploy]\ntimeout = \"{timeout}\"\npoll = \"100ms\"\n[environments.deploy.jenkins]\nurl = \"http://{addr}/ci\"\njob = \"team/deploy-shop\"\nparams = {{ ENV = \"{{env}}\", VERSION = \"{{version}}\" }}\nuser = \"release-bot\"\ntoken_env = \"{TOKEN_VAR}\"\n"
        ),
    )
}

fn basic() -> String {
    use std::io::Write;
    // base64("release-bot:TOKEN") with the standard alphabet.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("release-bot:{TOKEN}");
    let mut out = Vec::new();
    for c in input.as_bytes().chunks(3) {
        let v = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.write_all(&[T[((v >> (18 - 6 * i)) & 63) as usize]])
                    .unwrap();
            } else {
                out.write_all(b"=").unwrap();
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn jenkins_builds_with_parameters_in_a_folder_with_the_crumb_and_follows_the_build() {
    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            result: "SUCCESS",
            ..Jk::default()
        },
        jenkins,
    );
    let home = Home::new();
    home.config(&jk_config(&fake.addr));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    let calls = fake.calls();
    let auth = format!("Basic {}", basic());
    for r in &calls {
        assert_eq!(r.header("authorization"), auth, "{r:?}");
    }
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("GET", "/ci/crumbIssuer/api/json")
    );
    let t = &calls[1];
    assert_eq!(
        (t.method.as_str(), t.path.as_str()),
        ("POST", "/ci/job/team/job/deploy-shop/buildWithParameters")
    );
    assert_eq!(t.header("jenkins-crumb"), "crumb-abc");
    assert_eq!(t.header("cookie"), "JSESSIONID.4f1c=node0abc.node0");
    assert_eq!(
        t.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        url_decode_pairs(&t.body),
        BTreeMap::from([
            ("ENV".to_string(), "local".to_string()),
            ("VERSION".to_string(), "v2.0.0".to_string())
        ])
    );
    let paths: Vec<&str> = calls[2..].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ci/queue/item/77/api/json",
            "/ci/queue/item/77/api/json",
            "/ci/job/team/job/deploy-shop/12/api/json",
            "/ci/job/team/job/deploy-shop/12/api/json"
        ]
    );
    let log = std::fs::read_to_string(find_log(&home)).unwrap();
    assert!(
        log.contains("Jenkins build #12") && log.contains("/ci/job/team/job/deploy-shop/12/"),
        "{log}"
    );
    // Its progress on the way, and the build's page as the deploy's URL.
    assert!(
        out.stderr
            .contains("local: Jenkins queue item 77: queued, ")
            && out
                .stderr
                .contains(" — Waiting for next available executor")
            && out.stderr.contains("local: Jenkins build #12: running, "),
        "{out:#?}"
    );
    let st = run(&home, &["status", "--json"]).json();
    assert_eq!(
        st["environments"][0]["deploy_url"],
        format!("http://{}/ci/job/team/job/deploy-shop/12/", fake.addr)
    );
    assert_no_token(&home, &[&out], &[&basic()]);
}

#[test]
fn jenkins_build_number_reused_by_another_queue_item_is_not_taken_for_ours() {
    // Build #12 answers SUCCESS, but queue item 31 started it, not ours
    // (77): its result says nothing of our build.
    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            result: "SUCCESS",
            reused: true,
            ..Jk::default()
        },
        jenkins,
    );
    let home = Home::new();
    home.config(&jk_config(&fake.addr));
    let out = promote(&home);
    assert!(
        out.stderr.contains("outcome unknown")
            && out
                .stderr
                .contains("was started by queue item 31, not by ours (77)"),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("finished: SUCCESS"), "{out:#?}");
    assert_not_recorded(&home, &out, "unknown");
    assert_eq!(fake.with(|s| s.triggers), 1);
}

#[test]
fn jenkins_build_answer_without_building_is_unknown_at_once_not_waited_out() {
    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            result: "SUCCESS",
            bare: true,
            ..Jk::default()
        },
        jenkins,
    );
    let home = Home::new();
    home.config(&jk_config_timeout(&fake.addr, "5m"));
    let out = promote(&home);
    assert!(
        out.stderr.contains("outcome unknown")
            && out
                .stderr
                .contains("the answer has no `building` true/false")
            && !out.stderr.contains("still building"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "unknown");
    assert_eq!(fake.with(|s| s.triggers), 1);
}

#[test]
fn jenkins_failed_build_fails_the_deploy_with_the_build_url() {
    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            result: "FAILURE",
            ..Jk::default()
        },
        jenkins,
    );
    let home = Home::new();
    home.config(&jk_config(&fake.addr));
    let out = promote(&home);
    assert!(
        out.stderr.contains("/ci/job/team/job/deploy-shop/12/") && out.stderr.contains("FAILURE"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "failed");
    assert_eq!(fake.with(|s| s.triggers), 1);
    assert_no_token(&home, &[&out], &[&basic()]);
}

// ---------------------------------------------------------------- Vercel

#[derive(Default)]
struct Vc {
    version: String,
    promoted: Vec<String>,
    /// Answer the promotion with 409.
    conflict: bool,
    /// The deployment serving production (Vercel as the version source).
    serving: String,
    /// Instant rollbacks asked for: (deployment, description).
    rollbacks: Vec<(String, String)>,
    /// A promotion does not change the environment's version.
    no_flip: bool,
    /// The promotion is answered only after a minute.
    hang_promote: bool,
    /// A newer page of 100 production builds of other versions comes
    /// first; the usual list is the page `until` its `next`.
    paged: bool,
}

impl HasVersion for Vc {
    fn version(&self) -> String {
        self.version.clone()
    }
}

fn vercel(req: &Req, s: &mut Vc, _: &str) -> Resp {
    if req.query.get("teamId").map(String::as_str) != Some("team_acme") {
        return answer(
            403,
            json!({"error": {"code": "forbidden", "message": "no teamId"}}),
        );
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v6/deployments") => {
            let d = |uid: &str, state: &str, target: Value, r: &str, created: i64| {
                json!({"uid": uid, "url": format!("shop-{uid}.vercel.app"), "state": state, "target": target,
                       "created": created, "meta": {"githubCommitRef": r, "githubCommitSha": "0123456789abcdef"}})
            };
            if s.paged && !req.query.contains_key("until") {
                let newer: Vec<Value> = (0..100)
                    .map(|i| {
                        d(
                            &format!("dpl_new{i}"),
                            "READY",
                            json!("production"),
                            &format!("v3.0.{i}"),
                            1099 - i,
                        )
                    })
                    .collect();
                return answer(
                    200,
                    json!({"deployments": newer, "pagination": {"count": 100, "next": 1000, "prev": 1099}}),
                );
            }
            if s.paged && req.query.get("until").map(String::as_str) != Some("1000") {
                return answer(400, json!({"error": {"code": "bad_request"}}));
            }
            answer(
                200,
                json!({"deployments": [
                d("dpl_preview", "READY", Value::Null, "v2.0.0", 400),
                d("dpl_building", "BUILDING", json!("production"), "v2.0.0", 300),
                d("dpl_right", "READY", json!("production"), "v2.0.0", 200),
                d("dpl_old", "READY", json!("production"), "v1.0.0", 100),
            ], "pagination": {"count": 4, "next": null, "prev": null}}),
            )
        }
        ("POST", p) if p.starts_with("/v10/projects/shop/promote/") => {
            let id = p.rsplit('/').next().unwrap().to_string();
            if s.conflict {
                return answer(
                    409,
                    json!({"error": {"code": "conflict", "message": "already promoting"}}),
                );
            }
            if id == "dpl_right" && !s.no_flip {
                s.version = "v2.0.0".into();
            }
            s.serving = id.clone();
            s.promoted.push(id);
            let mut r = answer(201, json!({}));
            if s.hang_promote {
                r.delay = Some(Duration::from_secs(60));
            }
            r
        }
        ("POST", p) if p.starts_with("/v1/projects/shop/rollback/") => {
            let id = p.rsplit('/').next().unwrap().to_string();
            let why = req.query.get("description").cloned().unwrap_or_default();
            s.serving = id.clone();
            s.rollbacks.push((id, why));
            answer(201, Value::Null)
        }
        ("GET", "/v9/projects/shop") => {
            // The promoted build comes with its metadata; the older one
            // only with its id (read from /v13/deployments then).
            let mut serving = json!({"id": s.serving, "url": format!("shop-{}.vercel.app", s.serving),
                                     "target": "production", "readyState": "READY"});
            if s.serving == "dpl_right" {
                serving["meta"] =
                    json!({"githubCommitRef": "v2.0.0", "githubCommitSha": "0123456789abcdef"});
            }
            answer(
                200,
                json!({"id": "prj_1", "name": "shop", "targets": {"production": serving}}),
            )
        }
        ("GET", "/v13/deployments/dpl_old") => answer(
            200,
            json!({"id": "dpl_old", "url": "shop-dpl_old.vercel.app", "target": "production",
                   "readyState": "READY", "meta": {"githubCommitRef": "v1.0.0", "githubCommitSha": "fedcba9876543210"}}),
        ),
        _ => answer(404, Value::Null),
    }
}

fn vc_config(addr: &str) -> String {
    vc_config_timeout(addr, "30s")
}

fn vc_config_timeout(addr: &str, timeout: &str) -> String {
    config(
        addr,
        &format!(
            "[environments.deploy]\ntimeout = \"{timeout}\"\npoll = \"100ms\"\n[environments.deploy.vercel]\nproject = \"shop\"\nteam = \"team_acme\"\ntoken_env = \"{TOKEN_VAR}\"\napi_url = \"http://{addr}\"\n"
        ),
    )
}

#[test]
fn vercel_promotes_the_ready_production_build_of_the_version_never_a_preview() {
    let fake = Fake::start(
        Vc {
            version: "v1.0.0".into(),
            ..Vc::default()
        },
        vercel,
    );
    let home = Home::new();
    home.config(&vc_config(&fake.addr));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    assert_eq!(fake.with(|s| s.promoted.clone()), ["dpl_right"]);
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let (l, p) = (&calls[0], &calls[1]);
    assert_eq!(
        (l.method.as_str(), l.path.as_str()),
        ("GET", "/v6/deployments")
    );
    assert_eq!(l.query["projectId"], "shop");
    assert_eq!(l.query["target"], "production");
    assert_eq!(l.query["state"], "READY");
    assert_eq!(
        (p.method.as_str(), p.path.as_str()),
        ("POST", "/v10/projects/shop/promote/dpl_right")
    );
    for r in &calls {
        assert_eq!(r.query["teamId"], "team_acme");
        assert_eq!(r.header("authorization"), format!("Bearer {TOKEN}"));
    }
    assert_no_token(&home, &[&out], &[]);
}

#[test]
fn vercel_reads_the_version_production_serves_and_rolls_back_with_instant_rollback() {
    let fake = Fake::start(
        Vc {
            version: "unused".into(),
            serving: "dpl_old".into(),
            ..Vc::default()
        },
        vercel,
    );
    let home = Home::new();
    let vercel_table = format!(
        "project = \"shop\", team = \"team_acme\", token_env = \"{TOKEN_VAR}\", api_url = \"http://{}\"",
        fake.addr
    );
    home.config(&format!(
        "project = \"shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://{a}/metrics\"\n\n[[environments]]\nname = \"local\"\nversion = {{ vercel = {{ {vercel_table} }} }}\n[environments.deploy]\ntimeout = \"30s\"\npoll = \"100ms\"\n[environments.deploy.vercel]\n{}\n",
        vercel_table.replace(", ", "\n"),
        a = fake.addr
    ));
    // The deployment serving production, by its git ref (read through
    // /v13/deployments: the project names only its id).
    assert_eq!(reported(&home), "v1.0.0");
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    let st = run(&home, &["status", "--json"]).json();
    assert_eq!(
        st["environments"][0]["deploy_url"],
        "https://shop-dpl_right.vercel.app"
    );
    // Rollback: Vercel's Instant Rollback to the earlier production build,
    // not a promotion, and observed through the version source.
    let out = run(&home, &["rollback", "local", "--yes"]);
    out.expect_code(0);
    assert_eq!(reported(&home), "v1.0.0");
    assert_eq!(
        fake.with(|s| s.rollbacks.clone()),
        [(
            "dpl_old".to_string(),
            "shipdeck: rollback to v1.0.0".to_string()
        )]
    );
    assert_eq!(fake.with(|s| s.promoted.clone()), ["dpl_right"]);
    for r in fake.calls() {
        assert_eq!(r.query["teamId"], "team_acme", "{r:?}");
        assert_eq!(r.header("authorization"), format!("Bearer {TOKEN}"));
    }
    assert!(
        fake.calls()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/v13/deployments/dpl_old")
    );
    assert_no_token(&home, &[&out], &[]);
}

#[test]
fn vercel_refused_promotion_fails_and_a_version_without_a_build_is_not_promoted() {
    let fake = Fake::start(
        Vc {
            version: "v1.0.0".into(),
            conflict: true,
            ..Vc::default()
        },
        vercel,
    );
    let home = Home::new();
    home.config(&vc_config(&fake.addr));
    let out = promote(&home);
    assert!(
        out.stderr.contains("HTTP 409") && out.stderr.contains("/promote/dpl_right"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "failed");
    let out = run(&home, &["promote", "local", "--version", "v3.0.0", "--yes"]);
    assert!(
        out.stderr
            .contains("no READY production deployment built for v3.0.0"),
        "{out:#?}"
    );
    out.expect_code(1);
    assert_no_token(&home, &[&out], &[]);
}

#[test]
fn vercel_finds_a_build_older_than_the_newest_hundred_on_the_next_page() {
    let fake = Fake::start(
        Vc {
            version: "v1.0.0".into(),
            paged: true,
            ..Vc::default()
        },
        vercel,
    );
    let home = Home::new();
    home.config(&vc_config(&fake.addr));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    assert_eq!(fake.with(|s| s.promoted.clone()), ["dpl_right"]);
    let lists: Vec<Option<String>> = fake
        .calls()
        .iter()
        .filter(|r| r.path == "/v6/deployments")
        .map(|r| r.query.get("until").cloned())
        .collect();
    assert_eq!(lists, [None, Some("1000".to_string())]);
    // A version on no page: every page searched, and the count says so.
    let out = run(&home, &["promote", "local", "--version", "v9.9.9", "--yes"]);
    assert!(
        out.stderr
            .contains("no READY production deployment built for v9.9.9 among the 104 listed"),
        "{out:#?}"
    );
    out.expect_code(1);
}

// ---------------------------------------------------------------- webhook and command

#[derive(Default)]
struct Hook {
    version: String,
    fail: bool,
    /// Take the deploy, then answer only after this long.
    answer_after: Option<Duration>,
    /// Take the deploy without changing the environment's version.
    no_flip: bool,
}

impl HasVersion for Hook {
    fn version(&self) -> String {
        self.version.clone()
    }
}

fn hook(req: &Req, s: &mut Hook, _: &str) -> Resp {
    if (req.method.as_str(), req.path.as_str()) != ("POST", "/deploy") {
        return answer(404, Value::Null);
    }
    if s.fail {
        return answer(
            500,
            json!({"error": format!("boom {}", req.header("authorization"))}),
        );
    }
    if !s.no_flip {
        s.version = req.json()["version"].as_str().unwrap_or("").into();
    }
    let mut r = answer(
        202,
        json!({"accepted": true, "url": "https://deploys.example/shop/1234"}),
    );
    r.delay = s.answer_after;
    r
}

/// A hook whose configured URL lacks the slash its server wants: POST
/// /deploy answers 301 to /deploy/, where a GET answers a page.
fn slash_hook(req: &Req, s: &mut Hook, _: &str) -> Resp {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/deploy") => {
            let mut r = answer(301, Value::Null);
            r.headers.push(("location", "/deploy/".into()));
            r
        }
        ("GET", "/deploy/") => {
            let mut r = answer(200, Value::Null);
            r.body = "<html>deploys</html>".into();
            r
        }
        ("POST", "/deploy/") => {
            s.version = req.json()["version"].as_str().unwrap_or("").into();
            answer(202, json!({"accepted": true}))
        }
        _ => answer(404, Value::Null),
    }
}

/// Promote through a deploy webhook answered by `hook` with a redirect:
/// what stderr says (checked by `says`), then `outcome` recorded, the hook
/// POSTed once and nothing else under `/deploy` asked (the redirect not
/// followed, the POST not repeated), no token anywhere.
fn promote_through_a_redirecting_hook(
    hook: fn(&Req, &mut Hook, &str) -> Resp,
    says: impl Fn(&str) -> bool,
    outcome: &str,
) {
    let fake = Fake::start(
        Hook {
            version: "v1.0.0".into(),
            fail: false,
            answer_after: None,
            no_flip: true,
        },
        hook,
    );
    let home = Home::new();
    home.config(&config(
        &fake.addr,
        &format!("deploy = {{ webhook = \"http://{}/deploy\", token_env = \"{TOKEN_VAR}\", timeout = \"5s\", poll = \"100ms\" }}", fake.addr),
    ));
    let out = promote(&home);
    assert!(says(&out.stderr), "{out:#?}");
    assert_not_recorded(&home, &out, outcome);
    let calls: Vec<(String, String)> = fake
        .calls()
        .iter()
        .filter(|c| c.path.starts_with("/deploy"))
        .map(|c| (c.method.clone(), c.path.clone()))
        .collect();
    assert_eq!(calls, [("POST".to_string(), "/deploy".to_string())]);
    assert_no_token(&home, &[&out], &[]);
}

#[test]
fn webhook_redirect_that_would_drop_the_post_fails_at_once_naming_where_it_points() {
    // Followed, the 301 would turn the POST into a GET of the page, read as
    // "accepted" while nothing deploys, until the deploy's timeout.
    promote_through_a_redirecting_hook(
        slash_hook,
        |e| e.contains("answered HTTP 301: redirected to /deploy/"),
        "failed",
    );
}

/// A hook that takes the deploy and answers the POST with a 303 to the
/// deploy's page (post/redirect/get), as web frameworks do; the version
/// has not changed yet.
fn see_other_hook(req: &Req, _: &mut Hook, _: &str) -> Resp {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/deploy") => {
            let mut r = answer(303, Value::Null);
            r.headers.push(("location", "/deploys/42".into()));
            r
        }
        ("GET", "/deploys/42") => {
            let mut r = answer(200, Value::Null);
            r.body = "<html>deploying</html>".into();
            r
        }
        _ => answer(404, Value::Null),
    }
}

#[test]
fn webhook_that_answers_the_post_with_see_other_is_unknown_not_failed_nor_repeated() {
    // A 303 says the hook acted on the POST: the deploy may be running, so
    // "failed" would invite a second deploy. Not followed (a GET of the
    // page would read as accepted), not repeated.
    promote_through_a_redirecting_hook(
        see_other_hook,
        |e| e.contains("answered HTTP 303") && e.contains("/deploys/42"),
        "unknown",
    );
}

/// A hook that takes the deploy and answers 200 with 3 MiB of log.
fn chatty_hook(req: &Req, s: &mut Hook, _: &str) -> Resp {
    if (req.method.as_str(), req.path.as_str()) != ("POST", "/deploy") {
        return answer(404, Value::Null);
    }
    s.version = req.json()["version"].as_str().unwrap_or("").into();
    let mut r = answer(200, Value::Null);
    r.body = "deploying shop: pulling layers\n".repeat(100_000);
    r
}

#[test]
fn webhook_that_takes_the_deploy_with_an_answer_past_the_cap_is_not_a_failure() {
    // The hook took the deploy (HTTP 200); its answer is too large to read,
    // which costs only the deploy's URL — never "failed" while it deploys.
    let fake = Fake::start(
        Hook {
            version: "v1.0.0".into(),
            fail: false,
            answer_after: None,
            no_flip: false,
        },
        chatty_hook,
    );
    let home = Home::new();
    home.config(&config(
        &fake.addr,
        &format!(
            "deploy = {{ webhook = \"http://{}/deploy\", timeout = \"20s\", poll = \"100ms\" }}",
            fake.addr
        ),
    ));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    assert_eq!(last_audit(&home)["outcome"], "succeeded", "{out:#?}");
    assert_eq!(
        fake.calls().iter().filter(|c| c.path == "/deploy").count(),
        1
    );
}

/// A hook behind a proxy that gives up waiting for it: the hook takes the
/// deploy (still under way), the proxy answers 504.
fn proxied_hook(req: &Req, _: &mut Hook, _: &str) -> Resp {
    if (req.method.as_str(), req.path.as_str()) != ("POST", "/deploy") {
        return answer(404, Value::Null);
    }
    let mut r = answer(504, Value::Null);
    r.body = "<html><body><h1>504 Gateway Time-out</h1></body></html>".into();
    r
}

#[test]
fn webhook_behind_a_proxy_that_answers_504_is_unknown_not_failed_nor_repeated() {
    let fake = Fake::start(
        Hook {
            version: "v1.0.0".into(),
            fail: false,
            answer_after: None,
            no_flip: false,
        },
        proxied_hook,
    );
    let home = Home::new();
    home.config(&config(
        &fake.addr,
        &format!(
            "deploy = {{ webhook = \"http://{}/deploy\", timeout = \"20s\", poll = \"100ms\" }}",
            fake.addr
        ),
    ));
    let out = promote(&home);
    assert!(
        out.stderr
            .contains("outcome unknown: a proxy answered HTTP 504"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "unknown");
    assert_eq!(
        fake.calls().iter().filter(|c| c.path == "/deploy").count(),
        1
    );
}

#[test]
fn webhook_deploy_is_observed_and_its_failure_is_exit_1() {
    let fake = Fake::start(
        Hook {
            version: "v1.0.0".into(),
            fail: false,
            answer_after: None,
            no_flip: false,
        },
        hook,
    );
    let home = Home::new();
    home.config(&config(
        &fake.addr,
        &format!("deploy = {{ webhook = \"http://{}/deploy\", token_env = \"{TOKEN_VAR}\", timeout = \"30s\", poll = \"100ms\" }}", fake.addr),
    ));
    let out = promote(&home);
    out.expect_code(0);
    let c = &fake.calls()[0];
    assert_eq!(c.json(), json!({"env": "local", "version": "v2.0.0"}));
    assert_eq!(c.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(reported(&home), "v2.0.0");
    // The hook's answer named the deploy's page.
    let st = run(&home, &["status", "--json"]).json();
    assert_eq!(
        st["environments"][0]["deploy_url"],
        "https://deploys.example/shop/1234"
    );
    fake.with(|s| {
        s.fail = true;
        s.version = "v1.0.0".into();
    });
    let home = Home::new();
    home.config(&config(
        &fake.addr,
        &format!("deploy = {{ webhook = \"http://{}/deploy\", token_env = \"{TOKEN_VAR}\", timeout = \"30s\", poll = \"100ms\" }}", fake.addr),
    ));
    let out = promote(&home);
    assert!(out.stderr.contains("HTTP 500"), "{out:#?}");
    assert_not_recorded(&home, &out, "failed");
    assert_no_token(&home, &[&out], &[]);
}

#[test]
fn webhook_answer_lost_after_the_request_went_out_is_unknown_and_not_repeated() {
    // The hook takes the deploy (and deploys) but answers only after the
    // deploy's timeout: the request went out, so the outcome is unknown.
    let fake = Fake::start(
        Hook {
            version: "v1.0.0".into(),
            fail: false,
            answer_after: Some(Duration::from_secs(10)),
            no_flip: false,
        },
        hook,
    );
    let home = Home::new();
    home.config(&config(
        &fake.addr,
        &format!("deploy = {{ webhook = \"http://{}/deploy\", token_env = \"{TOKEN_VAR}\", timeout = \"1s\", poll = \"100ms\" }}", fake.addr),
    ));
    let out = promote(&home);
    out.expect_code(1);
    assert_eq!(fake.calls().len(), 1, "never repeated: {:#?}", fake.calls());
    assert!(
        out.stderr.contains("not repeated") && out.stderr.contains("deploy webhook of local"),
        "{out:#?}"
    );
    let e = last_audit(&home);
    assert_eq!(
        (e["action"].as_str(), e["outcome"].as_str()),
        (Some("promote"), Some("unknown")),
        "{e}"
    );
    assert_no_token(&home, &[&out], &[]);

    // A hook that cannot be reached at all got nothing: a plain failure.
    fake.with(|s| s.version = "v1.0.0".into());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let home = Home::new();
    home.config(&config(
        &fake.addr,
        &format!("deploy = {{ webhook = \"http://{dead}/deploy\", token_env = \"{TOKEN_VAR}\", timeout = \"2s\", poll = \"100ms\" }}"),
    ));
    let out = promote(&home);
    out.expect_code(1);
    let e = last_audit(&home);
    assert_eq!(e["outcome"], "failed", "{e}");
}

#[test]
fn command_deploy_is_observed_and_its_failure_is_exit_1() {
    let home = Home::new();
    let state = home.path().join("running");
    std::fs::write(&state, "v1.0.0").unwrap();
    let s = state.display();
    let cfg = |script: &str| {
        format!(
            "project = \"shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://127.0.0.1:9/metrics\"\n\n[[environments]]\nname = \"local\"\nversion = {{ command = [\"cat\", \"{s}\"] }}\ndeploy = {{ command = [\"sh\", \"-c\", \"{script}\", \"deploy\", \"{{version}}\"], timeout = \"30s\", poll = \"100ms\" }}\n"
        )
    };
    home.config(&cfg(&format!("printf %s \\\"$1\\\" > {s}")));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "v2.0.0");
    std::fs::write(&state, "v1.0.0").unwrap();
    let home2 = Home::new();
    home2.config(&cfg("echo no cluster >&2; exit 4"));
    let out = promote(&home2);
    assert!(out.stderr.contains("exit code 4"), "{out:#?}");
    assert_not_recorded(&home2, &out, "failed");
}

#[test]
fn github_actions_read_answered_5xx_is_read_again_and_the_deploy_goes_on() {
    let fake = gh_fake(|s| s.flaky = true);
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "20s"));
    let out = promote(&home);
    out.expect_code(0);
    assert_eq!(reported(&home), "v2.0.0");
    assert_eq!(fake.with(|s| s.dispatches), 1);
    let log = std::fs::read_to_string(find_log(&home)).unwrap();
    assert!(log.contains("answered HTTP 502; reading again"), "{log}");
}

#[test]
fn github_actions_unknown_workflow_is_a_failure_naming_the_call() {
    fn missing(_: &Req, _: &mut Gh, _: &str) -> Resp {
        answer(
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        )
    }
    let fake = Fake::start(
        Gh {
            version: "v1.0.0".into(),
            ..Gh::default()
        },
        missing,
    );
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "5s"));
    let out = promote(&home);
    assert!(
        out.stderr.contains("GitHub Actions of local (acme/shop deploy.yml): POST /repos/acme/shop/actions/workflows/deploy.yml/dispatches: answered HTTP 404"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "failed");
    let dispatches = fake
        .calls()
        .iter()
        .filter(|r| r.path.ends_with("/dispatches"))
        .count();
    assert_eq!(dispatches, 1, "a refused dispatch is not repeated");
    // The Deployments API refused too: a warning, not the deploy's failure.
    let log = std::fs::read_to_string(find_log(&home)).unwrap();
    assert!(log.contains("without a GitHub deployment record"), "{log}");
}

#[test]
fn jenkins_without_csrf_sends_no_crumb_and_a_cancelled_queue_item_fails() {
    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            result: "SUCCESS",
            no_crumb: true,
            ..Jk::default()
        },
        jenkins,
    );
    let home = Home::new();
    home.config(&jk_config(&fake.addr));
    promote(&home).expect_code(0);
    let trigger = fake
        .calls()
        .into_iter()
        .find(|r| r.path.ends_with("/buildWithParameters"))
        .unwrap();
    assert!(
        !trigger.headers.contains_key("jenkins-crumb"),
        "{trigger:?}"
    );

    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            result: "SUCCESS",
            cancel: true,
            ..Jk::default()
        },
        jenkins,
    );
    let home = Home::new();
    home.config(&jk_config(&fake.addr));
    let out = promote(&home);
    assert!(
        out.stderr
            .contains("queue item /ci/queue/item/77/ was cancelled"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "failed");
}

#[test]
fn jenkins_refusing_the_token_is_a_failure_naming_the_call_without_the_token() {
    fn refuse(req: &Req, _: &mut Jk, _: &str) -> Resp {
        answer(
            401,
            json!({"error": format!("invalid credentials {}", req.header("authorization"))}),
        )
    }
    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            ..Jk::default()
        },
        refuse,
    );
    let home = Home::new();
    home.config(&jk_config(&fake.addr));
    let out = promote(&home);
    assert!(
        out.stderr
            .contains("GET /crumbIssuer/api/json: answered HTTP 401"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "failed");
    assert_no_token(&home, &[&out], &[&basic()]);
}

#[test]
fn a_run_read_that_hangs_is_bounded_by_the_deploy_timeout() {
    fn hang(req: &Req, s: &mut Gh, addr: &str) -> Resp {
        if req.path.ends_with("/actions/runs/4242") {
            let mut r = answer(200, json!({}));
            r.delay = Some(Duration::from_secs(60));
            return r;
        }
        github(req, s, addr)
    }
    let fake = Fake::start(
        Gh {
            version: "v1.0.0".into(),
            details: true,
            conclusion: "success",
            ..Gh::default()
        },
        hang,
    );
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "2s"));
    let t0 = std::time::Instant::now();
    let out = promote(&home);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(out.stderr.contains("no answer within"), "{out:#?}");
    // The run was dispatched and never seen to end: it may still deploy.
    assert_not_recorded(&home, &out, "unknown");
}

#[test]
fn github_actions_losing_track_of_a_dispatched_run_is_unknown_not_failed() {
    fn no_user(req: &Req, s: &mut Gh, addr: &str) -> Resp {
        if req.path == "/api/v3/user" {
            return answer(500, json!({"message": "Server Error"}));
        }
        github(req, s, addr)
    }
    let fake = Fake::start(
        Gh {
            version: "v1.0.0".into(),
            details: false,
            conclusion: "success",
            ..Gh::default()
        },
        no_user,
    );
    let home = Home::new();
    home.config(&gh_config(&fake.addr, "10s"));
    let out = promote(&home);
    assert!(
        out.stderr.contains("outcome unknown") && out.stderr.contains("GET /user"),
        "{out:#?}"
    );
    assert_not_recorded(&home, &out, "unknown");
    assert_eq!(fake.with(|s| s.dispatches), 1);
}

// ---------------------------------------------------------------- the shared suite, every backend

fn token() -> Vec<String> {
    vec![TOKEN.to_string()]
}

fn token_and_basic() -> Vec<String> {
    vec![TOKEN.to_string(), basic()]
}

/// The deploy's timeout: short where the version is waited for in vain,
/// long where the test interrupts the deploy.
fn timeout(sc: Scenario) -> &'static str {
    match sc {
        Scenario::SucceedsWithoutTheVersion | Scenario::OutlivesTheTimeout => "2s",
        Scenario::Stalls => "60s",
        _ => "30s",
    }
}

/// A command that writes the version to a file `cat` reads back.
fn start_command(home: &Home, sc: Scenario) -> deploy::Following {
    let state = home.path().join("running");
    let started = home.path().join("started");
    std::fs::write(&state, "v1.0.0").unwrap();
    let (s, t) = (state.display(), started.display());
    let script = match sc {
        Scenario::Succeeds => format!("printf %s \\\"$1\\\" > {s}"),
        Scenario::Fails => "echo no cluster >&2; exit 4".into(),
        Scenario::SucceedsWithoutTheVersion => "true".into(),
        Scenario::Stalls | Scenario::OutlivesTheTimeout => format!("touch {t}; exec sleep 30"),
    };
    home.config(&format!(
        "project = \"shop\"\n[metrics]\nsource = \"scrape\"\nurl = \"http://127.0.0.1:9/metrics\"\n\n[[environments]]\nname = \"local\"\nversion = {{ command = [\"cat\", \"{s}\"] }}\ndeploy = {{ command = [\"sh\", \"-c\", \"{script}\", \"deploy\", \"{{version}}\"], timeout = \"{}\", poll = \"100ms\" }}\n",
        timeout(sc)
    ));
    Box::new(move || started.exists())
}

fn start_webhook(home: &Home, sc: Scenario) -> deploy::Following {
    let fake = Fake::start(
        Hook {
            version: "v1.0.0".into(),
            fail: sc == Scenario::Fails,
            answer_after: (sc == Scenario::OutlivesTheTimeout).then_some(Duration::from_secs(60)),
            no_flip: matches!(
                sc,
                Scenario::SucceedsWithoutTheVersion
                    | Scenario::Stalls
                    | Scenario::OutlivesTheTimeout
            ),
        },
        hook,
    );
    home.config(&config(
        &fake.addr,
        &format!(
            "deploy = {{ webhook = \"http://{}/deploy\", token_env = \"{TOKEN_VAR}\", timeout = \"{}\", poll = \"100ms\" }}",
            fake.addr,
            timeout(sc)
        ),
    ));
    Box::new(move || !fake.calls().is_empty())
}

fn start_github(home: &Home, sc: Scenario) -> deploy::Following {
    let fake = gh_fake(|s| match sc {
        Scenario::Succeeds => {}
        Scenario::Fails => s.conclusion = "failure",
        Scenario::SucceedsWithoutTheVersion => s.flip = false,
        Scenario::Stalls | Scenario::OutlivesTheTimeout => s.stall = true,
    });
    home.config(&gh_config(&fake.addr, timeout(sc)));
    // A stalled run's `run_reads` stays at 2: count the reads themselves.
    Box::new(move || {
        fake.calls()
            .iter()
            .filter(|r| r.path.ends_with("/actions/runs/4242"))
            .count()
            >= 3
    })
}

fn start_jenkins(home: &Home, sc: Scenario) -> deploy::Following {
    let fake = Fake::start(
        Jk {
            version: "v1.0.0".into(),
            result: if sc == Scenario::Fails {
                "FAILURE"
            } else {
                "SUCCESS"
            },
            stall: matches!(sc, Scenario::Stalls | Scenario::OutlivesTheTimeout),
            no_flip: sc == Scenario::SucceedsWithoutTheVersion,
            ..Jk::default()
        },
        jenkins,
    );
    home.config(&jk_config_timeout(&fake.addr, timeout(sc)));
    Box::new(move || fake.with(|s| s.build_reads >= 3))
}

fn start_vercel(home: &Home, sc: Scenario) -> deploy::Following {
    let fake = Fake::start(
        Vc {
            version: "v1.0.0".into(),
            conflict: sc == Scenario::Fails,
            no_flip: matches!(
                sc,
                Scenario::SucceedsWithoutTheVersion
                    | Scenario::Stalls
                    | Scenario::OutlivesTheTimeout
            ),
            hang_promote: sc == Scenario::OutlivesTheTimeout,
            ..Vc::default()
        },
        vercel,
    );
    home.config(&vc_config_timeout(&fake.addr, timeout(sc)));
    Box::new(move || fake.with(|s| !s.promoted.is_empty()))
}

/// A row of the suite: environment `local`, the planted token.
const fn local(
    secrets: fn() -> Vec<String>,
    start: fn(&Home, Scenario) -> deploy::Following,
) -> Backend {
    Backend {
        env: "local",
        vars: VARS,
        secrets,
        start,
    }
}

const COMMAND: Backend = local(token, start_command);
const WEBHOOK: Backend = local(token, start_webhook);
const GITHUB: Backend = local(token, start_github);
const JENKINS: Backend = local(token_and_basic, start_jenkins);
const VERCEL: Backend = local(token, start_vercel);

// AWS CodePipeline, the sixth row, runs in tests/deploy_codepipeline.rs
// with its fake.
deploy::deploy_suite! {
    command => COMMAND,
    webhook => WEBHOOK,
    github_actions => GITHUB,
    jenkins => JENKINS,
    vercel => VERCEL,
}
