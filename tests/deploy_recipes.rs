//! Every recipe (assets/recipes) and backend example (assets/examples) is
//! a config that `shipdeck config check` accepts.

use assert_cmd::Command;

fn configs(dir: &str) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    out.sort();
    out
}

fn check(path: &str) {
    let out = Command::cargo_bin("shipdeck")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SHIPDECK_CONFIG")
        .args(["config", "check", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{path}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubernetes_and_argo_rollouts_recipes_pass_config_check() {
    let all = configs("assets/recipes");
    assert_eq!(
        all,
        [
            "assets/recipes/argo-rollouts.toml",
            "assets/recipes/kubernetes.toml"
        ]
    );
    for p in &all {
        check(p);
    }
}

#[test]
fn one_example_per_deploy_backend_passes_config_check() {
    let all = configs("assets/examples");
    for backend in [
        "codepipeline",
        "command",
        "github-actions",
        "jenkins",
        "vercel",
        "webhook",
    ] {
        assert!(
            all.contains(&format!("assets/examples/{backend}.toml")),
            "no example for {backend}: {all:?}"
        );
    }
    for p in &all {
        check(p);
    }
}
