//! A private tmux server for whole-program tests of the console: several
//! sessions (one console each) in real terminals, driven by keystrokes and
//! read back from the screen. Needs `tmux` (`apt-get install tmux`;
//! `./scripts/test` installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const WIDTH: u32 = 160;
pub const HEIGHT: u32 = 45;
const POLL: Duration = Duration::from_millis(100);

/// A tmux server on its own socket, killed on drop.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A server whose socket lives in `dir`. Fails with install
    /// instructions when tmux is missing.
    pub fn new(dir: &Path) -> Tmux {
        require_tmux();
        Tmux {
            socket: dir.join("tmux.sock"),
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-u")
            .arg("-f")
            .arg("/dev/null")
            .arg("-S")
            .arg(&self.socket)
            .env_remove("TMUX");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self
            .command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"));
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Start `script` (run by `sh -c`) in a new session named `session`,
    /// with the environment `setup` gives the tmux command (a session
    /// started by `new-session` inherits it).
    pub fn start(&self, session: &str, script: &str, setup: impl FnOnce(&mut Command)) {
        let mut c = self.command();
        setup(&mut c);
        let out = c
            .env("TERM", "xterm-256color")
            .args(["new-session", "-d", "-s", session])
            .args(["-x", &WIDTH.to_string(), "-y", &HEIGHT.to_string()])
            .args(["sh", "-c", script])
            .output()
            .expect("start tmux");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn keys(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// What the session's pane shows now, as plain text.
    pub fn screen(&self, session: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-t", session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tmux format (`#{alternate_on}`, …) evaluated for the session.
    pub fn format(&self, session: &str, fmt: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", session, fmt]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Poll the screen until `done` holds; on timeout fail with the last
    /// screen. Returns how long it took and the screen that satisfied it.
    pub fn wait_for(
        &self,
        session: &str,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&str) -> bool,
    ) -> (Duration, String) {
        let started = Instant::now();
        loop {
            let screen = self.screen(session);
            if done(&screen) {
                return (started.elapsed(), screen);
            }
            if started.elapsed() >= timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what} in {session}; last screen:\n{screen}"
                );
            }
            sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

fn require_tmux() {
    let why = match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => return,
        Ok(o) => format!("`tmux -V` failed ({})", o.status),
        Err(e) => format!("tmux not found ({e})"),
    };
    panic!(
        "{why}: this test drives the console in a real terminal through tmux. \
         Install it (`apt-get install tmux`) or run `./scripts/test`, which installs it."
    );
}

/// `'path'` for `sh -c`.
pub fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}
