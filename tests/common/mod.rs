//! Helpers shared by the whole-program tests: an isolated home for each
//! test (config, data and state dirs) and the real binary run inside it.

#![allow(dead_code)]

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
        let mut c = Command::cargo_bin("shipdeck").expect("binary");
        c.current_dir(self.dir.path())
            .env_remove("SHIPDECK_CONFIG")
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("USER", "tester")
            .timeout(std::time::Duration::from_secs(120));
        c
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
