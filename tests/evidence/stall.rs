//! A slow evidence source never stalls the console: the engine in the
//! console's mode answers `status` at once with "checking…" (which blocks
//! the gate) and the answer on a later look, fetched in the background.

use std::time::{Duration, Instant};

use shipdeck::config::Config;
use shipdeck::domain::CheckState;
use shipdeck::engine::Engine;

use crate::repo::TestRepo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_ci_command_shows_checking_at_once_and_its_answer_later() {
    let repo = TestRepo::shop();
    let dir = tempfile::tempdir().unwrap();
    // The CI command answers only once this file exists: until then, a
    // status that waited for it would never return (no clock involved).
    let go_file = dir.path().join("ci-may-answer");
    let text = format!(
        r#"project = "stall"
[store]
path = "{store}"
[metrics]
source = "scrape"
url = "http://127.0.0.1:9/metrics"
timeout = "1s"
[release]
git = "{git}"
ci = {{ command = ["sh", "-c", "while [ ! -e '{go_file}' ]; do sleep 0.1; done; echo green after a while", "ci", "{{sha}}"], timeout = "300s" }}
[[environments]]
name = "staging"
version = {{ command = ["echo", "v1.8.0"] }}
deploy = {{ command = ["true"] }}
[[environments]]
name = "production"
version = {{ command = ["echo", "v1.7.3"] }}
deploy = {{ command = ["true"] }}
gates = {{ requires_ci = true }}
"#,
        store = dir.path().join("s.db").display(),
        go_file = go_file.display(),
        git = repo.path().display()
    );
    let cfg = Config::parse(&text, &dir.path().join("shipdeck.toml")).unwrap();
    let engine = Engine::open(cfg).unwrap();
    engine.evidence_in_background();

    // Generous bounds that only a status waiting for CI (blocked until
    // the file is there, 5 min at most) can exceed.
    let at_once = Duration::from_secs(60);
    let s = tokio::time::timeout(at_once, engine.status())
        .await
        .expect("status waited for the CI command");
    let p = s.pending.expect("a pending release");
    let ci = p.plan.evidence.ci.clone().expect("ci evidence");
    assert_eq!(
        (ci.state, ci.detail.as_str()),
        (CheckState::Unknown, "checking…")
    );
    let gate = p.plan.refusal().expect("the ci gate blocks meanwhile");
    assert_eq!(
        (gate.name.as_str(), gate.detail.as_str()),
        ("ci", "CI state unknown: checking…")
    );

    // A later look while CI is still busy: at once again, still checking.
    let s = tokio::time::timeout(at_once, engine.status())
        .await
        .expect("status waited for the CI command");
    let ci = s.pending.unwrap().plan.evidence.ci.clone().unwrap();
    assert_eq!(
        (ci.state, ci.detail.as_str()),
        (CheckState::Unknown, "checking…")
    );
    // CI answers; later looks, each at once, until the answer is in.
    std::fs::write(&go_file, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let ci = loop {
        let s = tokio::time::timeout(at_once, engine.status())
            .await
            .expect("status waited for the CI command");
        let ci = s.pending.unwrap().plan.evidence.ci.clone().unwrap();
        if ci.state != CheckState::Unknown || Instant::now() > deadline {
            break ci;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        (ci.state, ci.detail.as_str()),
        (CheckState::Success, "green after a while")
    );
}
