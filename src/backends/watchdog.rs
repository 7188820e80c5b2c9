//! A command never outlives a killed shipdeck.
//!
//! SIGTERM, SIGHUP and Ctrl-C are handled (`cli::interrupt`): what runs is
//! dropped, and dropping a run kills its process group. SIGKILL, an OOM kill
//! or an abort run no code of ours, so each command gets a watchdog that
//! learns of our death from the kernel: a tiny `sh` holding the read end of
//! a pipe whose write end only shipdeck holds (close-on-exec, so no other
//! command inherits it). The command itself, between its `setsid` and its
//! exec, writes its process group id (its pid) into the pipe, so there is no
//! moment where it runs and the watchdog does not know it. While shipdeck
//! lives, every run ends with "done" written (it exited by itself and what
//! it left running is left alone, or shipdeck killed its group itself); when
//! shipdeck dies in any way the kernel closes the write end, the watchdog
//! reads end-of-file without "done" and ends the group: SIGTERM, up to
//! [`GRACE_TENTHS`] tenths of a second for it to go, then SIGKILL.
//!
//! Between the command's exit and "done" there is a short window: a
//! shipdeck killed in it leaves the watchdog to signal a group whose leader
//! has exited (what it left running is then ended; were its id reused
//! that instant, someone else's group). Saying "done" before reaping (a pidfd
//! sees the exit while the zombie still pins the id) does not close it:
//! the window only moves to between the exit and "done", and a shipdeck
//! killed there hands the zombie to init, which may reap it before the
//! watchdog wakes to its end of file — the same race. (Looked at in
//! session 21 and left: no order of ours removes it.)
//!
//! The watchdog runs in a process group of its own, so that a signal to
//! shipdeck's group (the terminal's Ctrl-C, a shell's `kill %1`) does not
//! reach it, and ignores SIGHUP and SIGINT; it never touches the terminal
//! (its input is the pipe, its output goes nowhere). Its script is a constant
//! (the group id comes through the pipe and is checked to be a number above
//! 1), and it exits as soon as the run ends. It costs one small process for
//! the life of each command, started with posix_spawn (no pre_exec, so no
//! fork of our whole address space). Measured once on the 2-core dev box
//! (debug test binary, 200 runs of `true` × 3): 1.9–2.3 ms per run, against
//! 1.5–2.8 ms without a watchdog and 3.0–4.1 ms for one put in a session of
//! its own by `setsid` in pre_exec.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;

use tokio::process::Command;

/// How long the group has between SIGTERM and SIGKILL, in tenths of a
/// second (`sleep 0.1` in a loop that stops once the group is gone).
const GRACE_TENTHS: u32 = 50;

/// The watchdog's script. `$1` is the grace in tenths of a second; the
/// first line read is the group id (written by the command before its exec),
/// the second "done" while shipdeck lives. Anything else — end of file
/// without "done" — means shipdeck is gone.
const SCRIPT: &str = r#"trap '' HUP INT
read -r g || exit 0
case $g in ''|*[!0-9]*|0|1) exit 0;; esac
read -r w
[ "$w" = done ] && exit 0
kill -s TERM -- "-$g" 2>/dev/null || exit 0
i=0
while [ "$i" -lt "$1" ] && kill -s 0 -- "-$g" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -s KILL -- "-$g" 2>/dev/null
exit 0
"#;

/// The watchdog of one command: the write end of its pipe. Telling it
/// "done" (by [`Watchdog::release`], or when dropped) ends it; losing the
/// write end with shipdeck ends the command's group.
pub(crate) struct Watchdog {
    tell: Option<std::fs::File>,
    /// The read end, kept open until the command has written its group id
    /// (so that write can never meet a pipe without a reader).
    read: Option<OwnedFd>,
}

impl Watchdog {
    /// Start a watchdog for a command about to be spawned (one that does
    /// nothing where there is no /bin/sh).
    pub(crate) fn start() -> std::io::Result<Watchdog> {
        Self::start_with("/bin/sh", GRACE_TENTHS)
    }

    fn start_with(shell: &str, grace_tenths: u32) -> std::io::Result<Watchdog> {
        let mut fds: [RawFd; 2] = [-1, -1];
        // SAFETY: pipe2(2) writes two descriptors into the array we pass;
        // each is owned once, right below.
        let (read, write) = unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        let mut sh = Command::new(shell);
        sh.args(["-c", SCRIPT, "shipdeck-watchdog", &grace_tenths.to_string()])
            // Its standard input is the read end (no longer close-on-exec
            // once it is descriptor 0); nothing else of ours reaches it.
            .stdin(Stdio::from(read.try_clone()?))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Dropped (reaped by tokio) as soon as it is started: it ends
            // by itself once told, or once shipdeck is gone.
            .kill_on_drop(false)
            // Not `setsid` in pre_exec: that forces a fork instead of
            // posix_spawn, three times the cost of this.
            .process_group(0);
        match sh.spawn() {
            Ok(child) => drop(child),
            // A system without /bin/sh (a distroless image): commands still
            // run, as they did before watchdogs, and the log says once that
            // a shipdeck killed outright would leave them running.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::warn!(
                        "no /bin/sh: commands run without a watchdog, so a shipdeck killed outright (kill -9, the OOM killer) leaves the command it was running behind"
                    );
                });
                return Ok(Watchdog {
                    tell: None,
                    read: None,
                });
            }
            Err(e) => return Err(e),
        }
        Ok(Watchdog {
            tell: Some(std::fs::File::from(write)),
            read: Some(read),
        })
    }

    /// Make `cmd`, in its session of its own, tell the watchdog its group
    /// id before its exec. Call after `setsid` was arranged (pre_exec
    /// closures run in the order they were added).
    pub(crate) fn watch(&self, cmd: &mut Command) {
        let Some(fd) = self.tell.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        // SAFETY: getpid(2) and write(2) are async-signal-safe; the digits
        // are formatted into a buffer on the stack, nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                let mut buf = [0u8; 24];
                let mut n = buf.len() - 1;
                buf[n] = b'\n';
                let mut pid = libc::getpid() as u64;
                loop {
                    n -= 1;
                    buf[n] = b'0' + (pid % 10) as u8;
                    pid /= 10;
                    if pid == 0 {
                        break;
                    }
                }
                let line = &buf[n..];
                if libc::write(fd, line.as_ptr().cast(), line.len()) != line.len() as isize {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The command was spawned (or failed to be): its group id is in the
    /// pipe, if it ever will be.
    pub(crate) fn spawned(&mut self) {
        self.read = None;
    }

    /// The run is over while shipdeck lives: the watchdog goes, and leaves
    /// the group alone (what the command left running is its own business;
    /// a group shipdeck killed is already gone).
    pub(crate) fn release(&mut self) {
        use std::io::Write;
        if let Some(mut w) = self.tell.take() {
            // A watchdog already gone (killed by someone) cannot be told;
            // the pipe then has no reader and the write fails: nothing to do.
            let _ = w.write_all(b"done\n");
        }
        self.read = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    impl Watchdog {
        /// What the kernel does when shipdeck dies: the write end closes
        /// without "done".
        fn vanish(&mut self) {
            self.tell = None;
            self.read = None;
        }

        /// The watchdog's pid: the process whose standard input is this
        /// watchdog's pipe.
        fn pid(&self) -> Option<String> {
            let fd = self.tell.as_ref()?.as_raw_fd();
            let pipe = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stdin = std::fs::read_link(e.path().join("fd/0")).ok()?;
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let ours = String::from_utf8_lossy(&cmdline).contains("shipdeck-watchdog");
                (stdin == pipe && ours && name != "self").then_some(name)
            })
        }
    }

    /// The fields of /proc/PID/stat after the command name, or None once
    /// it is gone (a zombie counts as gone).
    fn stat(pid: &str) -> Option<Vec<String>> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<String> = s
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .map(String::from)
            .collect();
        (fields.first().is_some_and(|s| s != "Z")).then_some(fields)
    }

    async fn gone_within(pid: &str, limit: Duration) -> bool {
        let t = std::time::Instant::now();
        while t.elapsed() < limit {
            if stat(pid).is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// `sleep 100` in a session of its own, watched by `w`.
    fn spawn_watched(w: &mut Watchdog) -> tokio::process::Child {
        spawn_watched_argv(w, &["sleep", "100"])
    }

    fn spawn_watched_argv(w: &mut Watchdog, argv: &[&str]) -> tokio::process::Child {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]).kill_on_drop(true);
        // SAFETY: setsid(2) is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        w.watch(&mut cmd);
        let child = cmd.spawn().unwrap();
        w.spawned();
        child
    }

    #[tokio::test]
    async fn when_shipdeck_vanishes_the_watchdog_ends_the_group_and_itself() {
        let mut w = Watchdog::start().unwrap();
        let mut child = spawn_watched(&mut w);
        let pid = child.id().unwrap().to_string();
        let dog = w.pid().expect("the watchdog runs");
        // Out of reach of a signal to our group: a group of its own.
        let fields = stat(&dog).unwrap();
        assert_eq!(fields[2], dog, "the watchdog leads its own group");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            stat(&pid).is_some(),
            "the command runs while shipdeck lives"
        );
        w.vanish();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the command was not ended")
            .unwrap();
        assert!(status.code().is_none(), "ended by a signal: {status:?}");
        assert!(
            gone_within(&dog, Duration::from_secs(10)).await,
            "the watchdog lingers"
        );
    }

    #[tokio::test]
    async fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
        let mut w = Watchdog::start_with("/bin/sh", 5).unwrap();
        let mut child = spawn_watched_argv(&mut w, &["sh", "-c", "trap '' TERM; sleep 100"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = std::time::Instant::now();
        w.vanish();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("a command that ignores SIGTERM was never killed")
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert!(t.elapsed() >= Duration::from_millis(400), "no grace given");
    }

    #[tokio::test]
    async fn without_a_shell_commands_still_run_unwatched() {
        let mut w = Watchdog::start_with("/no/such/sh", GRACE_TENTHS).unwrap();
        assert!(w.tell.is_none(), "an inert watchdog holds no pipe");
        let mut child = spawn_watched(&mut w);
        assert!(child.try_wait().unwrap().is_none(), "the command runs");
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }

    #[tokio::test]
    async fn a_released_watchdog_goes_at_once_and_leaves_the_group_alone() {
        let mut w = Watchdog::start().unwrap();
        let mut child = spawn_watched(&mut w);
        let dog = w.pid().expect("the watchdog runs");
        w.release();
        assert!(
            gone_within(&dog, Duration::from_secs(10)).await,
            "the watchdog lingers"
        );
        // Well past the grace it would have given: the command still runs.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(child.try_wait().unwrap().is_none(), "the command was ended");
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }
}
