//! The pending release in a large repository, next to its budget (issue 8):
//! a real git repository of 100,000 commits made with `git fast-import`
//! (once: it is kept under target/tmp and reused by later runs), and the
//! demo fleet, whose production runs v1.7.3 and staging v1.8.0 — 2,000
//! commits apart, some of them migrations.
//!
//! - the pending release computed from scratch (a fresh engine: every git
//!   process runs): ≤ 100 ms;
//! - `status` when nothing changed (the engine's cache by the pair of
//!   commits, as in the console): ≤ 50 ms;
//! - and, for reference, `shipdeck status` as a process of its own.
//!
//! Run with `cargo bench --bench release [-- --runs N]`. Needs `git`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shipdeck::config::Config;
use shipdeck::demo::FleetOptions;
use shipdeck::engine::Engine;

/// Commits in the repository, and in the pending release.
const COMMITS: usize = 100_000;
const RELEASE: usize = 2_000;
/// Every this many commits, one adds a migration.
const MIGRATION_EVERY: usize = 250;
/// Bump when the generated history changes: the cache is keyed by it.
const FORMAT: u32 = 1;

/// The fleet's versions and the commit each tag names: production's
/// v1.7.3, the release to staging's v1.8.0 2,000 commits later, then what
/// development and local run.
fn tags() -> [(&'static str, usize); 4] {
    [
        ("v1.7.3", COMMITS - RELEASE - 10),
        ("v1.8.0", COMMITS - 10),
        ("v1.8.1", COMMITS - 5),
        ("v1.9.0", COMMITS),
    ]
}

/// The `git fast-import` stream: a linear history, one file changed per
/// commit across ~100 directories of ~1,000 files, a migration every
/// [`MIGRATION_EVERY`] commits, 37 authors, a minute apart.
fn stream(out: &mut impl Write) -> std::io::Result<()> {
    let t0: i64 = 1_700_000_000;
    let tags = tags();
    for i in 1..=COMMITS {
        let at = t0 + i as i64 * 60;
        let path = if i % MIGRATION_EVERY == 0 {
            format!("migrations/{i:06}_change.sql")
        } else {
            format!("src/mod{}/file{}.rs", i % 97, i % 1013)
        };
        let subject = format!("change {i}: touch {path}");
        let content = format!("// change {i}\n");
        let a = i % 37;
        write!(
            out,
            "commit refs/heads/main\nmark :{i}\nauthor Dev {a} <dev{a}@example.com> {at} +0000\ncommitter CI <ci@example.com> {at} +0000\ndata {}\n{subject}\n",
            subject.len() + 1
        )?;
        if i > 1 {
            writeln!(out, "from :{}", i - 1)?;
        }
        write!(
            out,
            "M 100644 inline {path}\ndata {}\n{content}\n",
            content.len()
        )?;
        for (tag, at) in tags {
            if at == i {
                write!(out, "reset refs/tags/{tag}\nfrom :{i}\n\n")?;
            }
        }
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C");
    c
}

/// The repository, made once and reused: a bare repository whose tags
/// name the commits [`tags`] says.
fn repository() -> PathBuf {
    let ok = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this benchmark needs the `git` command (Debian/Ubuntu: apt-get install git)"
    );
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = root.join(format!("bench-release-{COMMITS}-v{FORMAT}.git"));
    let count = |p: &Path| {
        git(p, &["rev-list", "--count", "v1.9.0"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
    };
    if count(&path) == Some(COMMITS) {
        eprintln!("reusing {}", path.display());
        return path;
    }
    eprintln!(
        "making a {COMMITS}-commit repository with git fast-import (once; kept at {})",
        path.display()
    );
    let t = Instant::now();
    std::fs::create_dir_all(root).expect("target/tmp");
    let building = root.join(format!("bench-release-{COMMITS}-v{FORMAT}.git.building"));
    let _ = std::fs::remove_dir_all(&building);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&building).expect("mkdir");
    let st = git(&building, &["init", "-q", "--bare", "-b", "main"])
        .status()
        .expect("git init");
    assert!(st.success(), "git init failed");
    let mut child = git(&building, &["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    {
        let stdin = child.stdin.take().expect("stdin");
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
        stream(&mut w).expect("write the stream");
        w.flush().expect("flush");
    }
    assert!(
        child.wait().expect("fast-import").success(),
        "git fast-import failed"
    );
    assert_eq!(count(&building), Some(COMMITS), "the repository is short");
    std::fs::rename(&building, &path).expect("rename");
    eprintln!("made in {:.1} s", t.elapsed().as_secs_f64());
    path
}

fn config(addr: std::net::SocketAddr, repo: &Path) -> String {
    format!(
        "{}\n[release]\ngit = {:?}\ntag = \"{{version}}\"\nmigrations = [\"migrations/**\", \"db/migrate/**\"]\n",
        shipdeck::demo::demo_config(addr, false),
        repo.display().to_string()
    )
}

fn engine(text: &str, dir: &Path) -> Engine {
    let mut cfg = Config::parse(text, Path::new("<bench>")).expect("config");
    cfg.store.path = Some(dir.join("bench.db"));
    Engine::open(cfg).expect("engine")
}

fn summary(mut d: Vec<Duration>) -> (Duration, Duration, Duration) {
    d.sort();
    (d[d.len() / 2], d[0], d[d.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let repo = repository();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fleet = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        shipdeck::demo::spawn(l, FleetOptions::default())
            .await
            .expect("fleet")
    });
    let home = tempfile::tempdir().expect("tempdir");
    let text = config(fleet.addr, &repo);
    let (cold, warm) = rt.block_on(async {
        // Cold: a fresh engine each run, so every git process runs.
        let plan = engine(&text, home.path())
            .plan("production", None)
            .await
            .expect("plan");
        let mut cold = Vec::with_capacity(runs);
        for i in 0..runs + 2 {
            let e = engine(&text, home.path());
            let t = Instant::now();
            let facts = e.release_of(&plan).await;
            let d = t.elapsed();
            assert_eq!(facts.git_error, None, "the repository did not answer");
            assert_eq!(facts.commits_total, RELEASE, "the release's size");
            assert_eq!(facts.migrations.len(), RELEASE / MIGRATION_EVERY);
            if i >= 2 {
                cold.push(d); // the first runs warm the page cache
            }
        }
        // Warm: one engine, as the console holds it; nothing changed.
        let e = engine(&text, home.path());
        let first = e.status().await;
        let pending = first.pending.as_ref().expect("a pending release");
        assert_eq!(pending.release.commits_total, RELEASE);
        let mut warm = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let s = e.status().await;
            warm.push(t.elapsed());
            assert!(s.pending.is_some());
        }
        (cold, warm)
    });
    // `shipdeck status` as its own process: nothing is cached across runs.
    let cfg = home.path().join("shipdeck.toml");
    std::fs::write(&cfg, &text).expect("config");
    let bin = env!("CARGO_BIN_EXE_shipdeck");
    let mut process = Vec::with_capacity(runs);
    for i in 0..runs.min(10) + 2 {
        let t = Instant::now();
        let o = Command::new(bin)
            .current_dir(home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .args(["--config", cfg.to_str().unwrap_or(""), "status"])
            .output()
            .expect("run shipdeck");
        let d = t.elapsed();
        assert!(
            o.status.success(),
            "shipdeck status failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if i >= 2 {
            process.push(d);
        }
    }
    let rows = [
        (
            "pending release, computed (cold)",
            summary(cold),
            Duration::from_millis(100),
        ),
        (
            "status, nothing changed (engine)",
            summary(warm),
            Duration::from_millis(50),
        ),
    ];
    println!(
        "the pending release of {RELEASE} commits in a {COMMITS}-commit repository ({} runs)",
        runs
    );
    println!(
        "{:<36} {:>10} {:>10} {:>10}   target",
        "", "median", "min", "max"
    );
    for (name, (med, min, max), target) in &rows {
        println!(
            "{name:<36} {:>10} {:>10} {:>10}   ≤ {} median: {}",
            ms(*med),
            ms(*min),
            ms(*max),
            ms(*target),
            if med <= target { "met" } else { "MISSED" }
        );
    }
    let (med, min, max) = summary(process);
    println!(
        "{:<36} {:>10} {:>10} {:>10}   reference: a process of its own, nothing cached",
        "shipdeck status (process)",
        ms(med),
        ms(min),
        ms(max)
    );
}
