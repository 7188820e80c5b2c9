//! Helpers shared by the whole-program tests: an isolated home for each
//! test (config, data and state dirs) and the real binary run inside it.

#![allow(dead_code)]

pub mod deploy;
pub mod http;
pub mod pg;
pub mod tmux;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `shipdeck.toml` in the home and return its path.
    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.dir.path().join("shipdeck.toml");
        std::fs::write(&p, text).expect("write config");
        p
    }

    /// The real binary, run in this home with its own XDG dirs.
    pub fn cmd(&self) -> Command {
        let mut c = Command::from_std(self.process());
        c.timeout(std::time::Duration::from_secs(120));
        c
    }

    /// The same as a plain process, for a test that spawns, signals or
    /// reads it while it runs.
    pub fn process(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("shipdeck"));
        c.current_dir(self.dir.path())
            .env_remove("SHIPDECK_CONFIG")
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("USER", "tester");
        c
    }

    /// `shipdeck args…` started in the home with its output piped and no
    /// stdin, to be signalled or read while it runs; killed on drop.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.process()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map(Running::new)
            .expect("start shipdeck")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("run shipdeck");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

/// A demo fleet run by the real binary (`shipdeck demo-fleet`) on a free
/// loopback port; killed when dropped.
pub struct Fleet {
    child: std::process::Child,
    pub addr: String,
}

impl Fleet {
    pub fn start() -> Fleet {
        Fleet::start_with(&[])
    }

    /// A fleet whose deploys take `d` (e.g. "20s"; the default is 3 s): a
    /// test that acts while a deploy runs gets a window no loaded machine
    /// can miss.
    pub fn with_deploy_duration(d: &str) -> Fleet {
        Fleet::start_with(&["--deploy-duration", d])
    }

    fn start_with(extra: &[&str]) -> Fleet {
        use std::io::BufRead;
        let bin = assert_cmd::cargo::cargo_bin("shipdeck");
        let mut child = std::process::Command::new(bin)
            .args(["demo-fleet", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start shipdeck demo-fleet");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(stdout);
        reader
            .read_line(&mut line)
            .expect("read the fleet's address");
        // Keep draining: a closed pipe would kill the fleet on its next line.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Fleet { child, addr }
    }

    /// A config naming the fleet's four environments, production gated and monitored.
    pub fn config(&self, extra: &str) -> String {
        let a = &self.addr;
        let mut s = format!(
            "project = \"demo-shop\"\n{extra}\n[metrics]\nsource = \"scrape\"\nurl = \"http://{a}/metrics\"\nstep = \"1s\"\n"
        );
        for env in ["local", "development", "staging", "production"] {
            s.push_str(&format!(
                "\n[[environments]]\nname = \"{env}\"\nversion = {{ url = \"http://{a}/envs/{env}/version\" }}\ndeploy = {{ webhook = \"http://{a}/envs/{env}/deploy\", timeout = \"30s\", poll = \"200ms\" }}\n"
            ));
        }
        s.push_str("monitored = true\ngates = { requires_approval = true }\n");
        s
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process (a `shipdeck` the test signals or reads while it runs)
/// killed and reaped when dropped: a test that fails half-way leaves
/// nothing running behind it.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn new(child: std::process::Child) -> Running {
        Running(Some(child))
    }

    /// Wait for it to end, with all it wrote.
    pub fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
        self.0.take().expect("running child").wait_with_output()
    }
}

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.0.as_ref().expect("running child")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("running child")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
