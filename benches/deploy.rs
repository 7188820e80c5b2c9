//! shipdeck's own overhead per deploy through a CI/CD backend, next to its
//! budget (issue 9): a GitHub Actions deploy (Deployments record, dispatch
//! with run details, one run read, closing status) and a Jenkins deploy
//! (crumb, trigger, queue item, build) and an AWS CodePipeline deploy (start,
//! one execution read; SigV4 by the SDK) against an in-process fake that
//! answers at once, so the time measured is shipdeck's (≤ 20 ms median);
//! and the CPU cost of following a run polled every 2 s (≤ 0.5% of a core).
//! Run with `cargo bench --bench deploy`.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use serde_json::json;
use shipdeck::backends::deploy::{DeployTarget, progress};
use shipdeck::domain::Version;

async fn fake(method: Method, uri: Uri, h: HeaderMap) -> axum::response::Response {
    let p = uri.path();
    let j = |v: serde_json::Value| ([("content-type", "application/json")], v.to_string());
    let aws = |v: serde_json::Value| {
        (
            [("content-type", "application/x-amz-json-1.1")],
            v.to_string(),
        )
    };
    let target = h
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or("");
    match (method.as_str(), p) {
        ("POST", "/") if target == "CodePipeline_20150709.StartPipelineExecution" => {
            aws(json!({"pipelineExecutionId": "e-1"})).into_response()
        }
        ("POST", "/") if target == "CodePipeline_20150709.GetPipelineExecution" => {
            aws(json!({"pipelineExecution": {"pipelineExecutionId": "e-1", "status": "Succeeded"}}))
                .into_response()
        }
        ("POST", "/repos/acme/shop/deployments") => {
            (axum::http::StatusCode::CREATED, j(json!({"id": 1}))).into_response()
        }
        ("POST", "/repos/acme/shop/deployments/1/statuses") => {
            (axum::http::StatusCode::CREATED, j(json!({"id": 1}))).into_response()
        }
        ("POST", "/repos/acme/shop/actions/workflows/deploy.yml/dispatches") => {
            j(json!({"workflow_run_id": 7, "html_url": "http://x/runs/7"})).into_response()
        }
        ("GET", "/repos/acme/shop/actions/runs/7") => j(json!({"id": 7, "run_number": 7,
            "status": "completed", "conclusion": "success", "html_url": "http://x/runs/7"}))
        .into_response(),
        ("GET", "/crumbIssuer/api/json") => {
            j(json!({"crumb": "c", "crumbRequestField": "Jenkins-Crumb"})).into_response()
        }
        ("POST", "/job/deploy/buildWithParameters") => (
            axum::http::StatusCode::CREATED,
            [("location", "/queue/item/3/")],
            "",
        )
            .into_response(),
        ("GET", "/queue/item/3/api/json") => {
            j(json!({"executable": {"number": 5, "url": "/job/deploy/5/"}})).into_response()
        }
        ("GET", "/job/deploy/5/api/json") => {
            j(json!({"number": 5, "building": false, "result": "SUCCESS"})).into_response()
        }
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

fn target(rt: &tokio::runtime::Runtime, deploy: &str) -> DeployTarget {
    let src = format!(
        "[[environments]]\nname = \"prod\"\nversion = {{ url = \"http://127.0.0.1:9/v\" }}\n{deploy}"
    );
    let cfg =
        shipdeck::config::Config::parse(&src, std::path::Path::new("bench.toml")).expect("config");
    let client = rt.block_on(async {
        shipdeck::backends::http::client(Duration::from_secs(2), None).expect("client")
    });
    let deploy = cfg.environments[0].deploy.as_ref().expect("deploy");
    DeployTarget::from_config("prod", deploy.get_ref(), client)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// User + system CPU time of this process (Linux), in clock ticks of 10 ms.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    // SAFETY: set before any other thread of ours reads the environment.
    unsafe {
        std::env::set_var("SHIPDECK_BENCH_TOKEN", "bench-token-123");
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDBENCH");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench-secret");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/shipdeck-bench/config");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/shipdeck-bench/credentials",
        );
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(l, axum::Router::new().fallback(fake)).await;
        });
        addr
    });
    let gh = target(
        &rt,
        &format!(
            "[environments.deploy]\npoll = \"100ms\"\n[environments.deploy.github_actions]\nrepo = \"acme/shop\"\nworkflow = \"deploy.yml\"\nref = \"main\"\ninputs = {{ version = \"{{version}}\" }}\ntoken_env = \"SHIPDECK_BENCH_TOKEN\"\napi_url = \"http://{addr}\"\n"
        ),
    );
    let jk = target(
        &rt,
        &format!(
            "[environments.deploy]\npoll = \"100ms\"\n[environments.deploy.jenkins]\nurl = \"http://{addr}\"\njob = \"deploy\"\nuser = \"bot\"\ntoken_env = \"SHIPDECK_BENCH_TOKEN\"\n"
        ),
    );
    let cp = target(
        &rt,
        &format!(
            "[environments.deploy]\npoll = \"100ms\"\n[environments.deploy.codepipeline]\npipeline = \"shop\"\nregion = \"eu-west-1\"\nvariables = {{ VERSION = \"{{version}}\" }}\napi_url = \"http://{addr}\"\n"
        ),
    );
    let v = Version::parse("v1.2.3").expect("version");
    for (name, t) in [
        ("GitHub Actions", &gh),
        ("Jenkins", &jk),
        ("CodePipeline", &cp),
    ] {
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs + 5 {
            let t0 = Instant::now();
            rt.block_on(async {
                t.start("prod", &v, &progress::ignore)
                    .await
                    .expect("deploy");
                t.finished(true, "prod reports v1.2.3").await;
            });
            if i >= 5 {
                times.push(t0.elapsed());
            }
        }
        times.sort();
        let med = percentile(&times, 0.5);
        println!(
            "{name} deploy, shipdeck's overhead (fake answers at once): median {:.2} ms, p95 {:.2} ms (budget 20 ms) {}",
            med.as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            if med <= Duration::from_millis(20) {
                "ok"
            } else {
                "OVER BUDGET"
            }
        );
    }
    // Following a run: one read per poll. CPU per read × 0.5 reads/s.
    let reads = runs * 5;
    let c0 = cpu_time();
    let t0 = Instant::now();
    for _ in 0..reads {
        rt.block_on(async {
            gh.start("prod", &v, &progress::ignore)
                .await
                .expect("deploy")
        });
    }
    let wall = t0.elapsed();
    if let (Some(c0), Some(c1)) = (c0, cpu_time()) {
        // Each start is 3-4 calls; a poll is one: count per call.
        let per_call = (c1 - c0).as_secs_f64() / (reads as f64 * 3.0);
        println!(
            "following a run every 2 s: {:.3} ms CPU per read (fake included) → {:.4}% of a core (budget 0.5%) over {reads} deploys in {:.1}s",
            per_call * 1e3,
            per_call / 2.0 * 100.0,
            wall.as_secs_f64()
        );
    }
    // CodePipeline: every call signed (SigV4) by the SDK; a poll while the
    // execution runs is two calls (the execution, its actions).
    let c0 = cpu_time();
    for _ in 0..reads {
        rt.block_on(async {
            cp.start("prod", &v, &progress::ignore)
                .await
                .expect("deploy")
        });
    }
    if let (Some(c0), Some(c1)) = (c0, cpu_time()) {
        let per_call = (c1 - c0).as_secs_f64() / (reads as f64 * 2.0);
        println!(
            "following a CodePipeline execution every 2 s: {:.3} ms CPU per signed call (fake included), 2 calls a poll → {:.4}% of a core (budget 0.5%)",
            per_call * 1e3,
            per_call * 2.0 / 2.0 * 100.0
        );
    }
}
