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
//! The watchdog runs in a session of its own (no terminal; a signal to
//! shipdeck's group does not reach it), its output goes nowhere, its script
//! is a constant (the group id comes through the pipe and is checked to be a
//! number above 1), and it exits as soon as the run ends: it costs one small
//! process for the life of each command.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;

use tokio::process::Command;

/// How long the group has between SIGTERM and SIGKILL, in tenths of a
/// second (`sleep 0.1` in a loop that stops once the group is gone).
pub(crate) const GRACE_TENTHS: u32 = 50;

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
    /// Start a watchdog for a command about to be spawned.
    pub(crate) fn start() -> std::io::Result<Watchdog> {
        let mut fds: [RawFd; 2] = [-1, -1];
        // SAFETY: pipe2(2) writes two descriptors into the array we pass;
        // each is owned once, right below.
        let (read, write) = unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        let mut sh = Command::new("/bin/sh");
        sh.args(["-c", SCRIPT, "shipdeck-watchdog", &GRACE_TENTHS.to_string()])
            // Its standard input is the read end (no longer close-on-exec
            // once it is descriptor 0); nothing else of ours reaches it.
            .stdin(Stdio::from(read.try_clone()?))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Dropped (reaped by tokio) as soon as it is started: it ends
            // by itself once told, or once shipdeck is gone.
            .kill_on_drop(false);
        // SAFETY: setsid(2) is async-signal-safe and touches no memory of ours.
        unsafe {
            sh.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        drop(sh.spawn()?);
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
