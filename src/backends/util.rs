//! What the backends share: the error type, secrets from the environment,
//! argv templating and running commands without a shell.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::http::{BodyError, show_cap};

/// A failure of an outside system. `backend` names which one (kind, env and
/// target, with any credentials stripped from URLs).
///
/// Every error that leaves a backend has been through [`BackendError::cleaned`]:
/// configured secrets are redacted and escape sequences removed from every
/// text it carries, so whoever shows, logs or stores it cannot leak them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("{backend}: no answer within {}s", after.as_secs_f64())]
    Timeout { backend: String, after: Duration },
    #[error("{backend}: unreachable: {cause}")]
    Unreachable { backend: String, cause: String },
    #[error("{backend}: answered HTTP {status}{}", excerpt(body))]
    Status {
        backend: String,
        status: u16,
        body: String,
    },
    #[error("{backend}: unusable answer: {cause}")]
    Garbage { backend: String, cause: String },
    #[error("{backend}: {cause}")]
    Command { backend: String, cause: String },
    #[error("{backend}: the environment variable {var} (token_env) is not set")]
    MissingSecret { backend: String, var: String },
    #[error("{backend}: the answer is larger than the {} cap; refused", show_cap(*cap))]
    TooLarge { backend: String, cap: usize },
    /// A call that starts something (a dispatch, a build) whose answer was
    /// lost: it may or may not have happened, so it is never repeated.
    #[error("{backend}: outcome unknown: {cause}")]
    OutcomeUnknown { backend: String, cause: String },
}

impl BackendError {
    /// The same error with every configured secret redacted and every
    /// escape sequence removed from the texts it carries. Bodies are also
    /// cut to a short excerpt: nothing downstream needs a whole one.
    pub fn cleaned(self) -> Self {
        use crate::text::clean;
        match self {
            BackendError::Timeout { backend, after } => BackendError::Timeout {
                backend: clean(&backend),
                after,
            },
            BackendError::Unreachable { backend, cause } => BackendError::Unreachable {
                backend: clean(&backend),
                cause: clean(&cause),
            },
            BackendError::Status {
                backend,
                status,
                body,
            } => BackendError::Status {
                backend: clean(&backend),
                status,
                body: cut(&body),
            },
            BackendError::Garbage { backend, cause } => BackendError::Garbage {
                backend: clean(&backend),
                cause: cut(&cause),
            },
            BackendError::Command { backend, cause } => BackendError::Command {
                backend: clean(&backend),
                cause: cut(&cause),
            },
            BackendError::MissingSecret { backend, var } => BackendError::MissingSecret {
                backend: clean(&backend),
                var: clean(&var),
            },
            BackendError::TooLarge { backend, cap } => BackendError::TooLarge {
                backend: clean(&backend),
                cap,
            },
            BackendError::OutcomeUnknown { backend, cause } => BackendError::OutcomeUnknown {
                backend: clean(&backend),
                cause: cut(&cause),
            },
        }
    }
}

/// Clean and shorten a text from outside to at most 500 characters.
fn cut(s: &str) -> String {
    let head: String = s.chars().take(2000).collect();
    let c = crate::text::clean(&head);
    if c.chars().count() > 500 || head.len() < s.len() {
        format!("{}…", c.chars().take(500).collect::<String>())
    } else {
        c
    }
}

pub(crate) fn excerpt(body: &str) -> String {
    let e = crate::text::excerpt(body.as_bytes());
    if body.trim().is_empty() {
        String::new()
    } else {
        format!(": {e}")
    }
}

/// Read a secret named by `token_env`; never logged, never shown, and
/// registered with the redactor so that an echo of it is hidden too.
pub(crate) fn secret(backend: &str, var: Option<&str>) -> Result<Option<String>, BackendError> {
    match var {
        None => Ok(None),
        Some(v) => match std::env::var(v) {
            Ok(s) if !s.is_empty() => {
                crate::text::register_secret(&s);
                Ok(Some(s))
            }
            _ => Err(BackendError::MissingSecret {
                backend: backend.to_string(),
                var: v.to_string(),
            }),
        },
    }
}

/// A URL fit for messages: user info (credentials) and query removed.
pub(crate) fn show_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        // Unreadable (a port that is no number, a broken IPv6 host): still
        // without its credentials and query, which may hold a password.
        Err(_) => {
            let url = url.split(['?', '#']).next().unwrap_or("");
            let shown = match url.split_once("://") {
                Some((scheme, rest)) => {
                    let end = rest.find('/').unwrap_or(rest.len());
                    let (authority, path) = rest.split_at(end);
                    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                    format!("{scheme}://{host}{path}")
                }
                None => url.to_string(),
            };
            crate::text::sanitize(&shown.chars().take(120).collect::<String>())
        }
    }
}

/// Replace `{name}` placeholders in each argv element. The values are
/// validated (environment names and versions) and the result is passed as
/// argv, never through a shell.
pub(crate) fn fill(template: &[String], vars: &[(&str, &str)]) -> Vec<String> {
    template
        .iter()
        .map(|arg| {
            vars.iter().fold(arg.clone(), |acc, (k, v)| {
                acc.replace(&format!("{{{k}}}"), v)
            })
        })
        .collect()
}

/// How much of a hook's standard output is kept.
pub(crate) const STDOUT_CAP: usize = 1024 * 1024;
/// How much of a hook's standard error is kept (only an excerpt is shown).
pub(crate) const STDERR_CAP: usize = 64 * 1024;

/// Which part of a long output is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The first bytes (what git and CI print first matters).
    Head(usize),
    /// The last bytes (a hook whose answer is its last line).
    Tail(usize),
}

/// Read a stream to its end (or until dropped) into `kept`, keeping the
/// part `keep` says and discarding the rest, so that a chatty child never blocks on a full pipe and never
/// grows our memory past twice the cap.
async fn drain_into(stream: Option<impl AsyncRead + Unpin>, keep: Keep, kept: &mut Vec<u8>) {
    let Some(mut s) = stream else {
        return;
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Cancel-safe: a read dropped half way has taken nothing.
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => match keep {
                Keep::Head(cap) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Keep::Tail(cap) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > 2 * cap {
                        kept.drain(..kept.len() - cap);
                    }
                }
            },
        }
    }
}

/// What [`drain_into`] kept, cut to what `keep` says (it keeps up to twice
/// a tail while reading).
fn kept_part(mut kept: Vec<u8>, keep: Keep) -> Vec<u8> {
    if let Keep::Tail(cap) = keep
        && kept.len() > cap
    {
        kept.drain(..kept.len() - cap);
    }
    kept
}

/// How long the output of a command that has exited is still read: what it
/// wrote before exiting is in the pipe by then; only something it left
/// running (a worker holding its standard output) keeps the pipe open.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Run argv with a timeout; returns trimmed stdout on exit 0. Standard
/// output and standard error are read at the same time, each capped
/// ([`STDOUT_CAP`], [`STDERR_CAP`]), so a hook that writes a lot to either
/// never deadlocks against us; on a timeout the child is killed.
pub(crate) async fn run_command(
    backend: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<String, BackendError> {
    run_command_keeping(backend, argv, timeout, Keep::Head(STDOUT_CAP)).await
}

/// [`run_command`] keeping the part of standard output `keep` says: a
/// hook whose answer is its last line keeps the tail, so a long log before
/// it cannot push the answer out.
pub(crate) async fn run_command_keeping(
    backend: &str,
    argv: &[String],
    timeout: Duration,
    keep: Keep,
) -> Result<String, BackendError> {
    let err = |cause: String| BackendError::Command {
        backend: backend.to_string(),
        cause,
    };
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| err("empty command".into()))?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    let done = run_kept(backend, cmd, timeout, keep).await?;
    if !done.status.success() {
        let msg = String::from_utf8_lossy(&done.stderr);
        return Err(err(format!(
            "{prog:?} failed with {}{}",
            exit_words(done.status),
            excerpt(&msg)
        )));
    }
    Ok(String::from_utf8_lossy(&done.stdout).trim().to_string())
}

/// "exit code 3", or "killed by a signal".
pub(crate) fn exit_words(status: std::process::ExitStatus) -> String {
    status
        .code()
        .map(|c| format!("exit code {c}"))
        .unwrap_or_else(|| "killed by a signal".into())
}

/// What a finished child left: its status and its capped output.
pub(crate) struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The one way shipdeck runs a program: `cmd` (argv, never a shell) with
/// standard input closed, standard output kept up to `stdout_cap` and
/// standard error up to [`STDERR_CAP`], both read at once while its exit is
/// awaited (once it exited, they are read for [`DRAIN_GRACE`] more, not until
/// whatever it left running closes them), and its whole process group
/// killed when `timeout` passes; after a normal exit what it left running is
/// left alone. Its exit status is the caller's to judge.
pub(crate) async fn run_capped(
    backend: &str,
    cmd: Command,
    timeout: Duration,
    stdout_cap: usize,
) -> Result<Finished, BackendError> {
    run_kept(backend, cmd, timeout, Keep::Head(stdout_cap)).await
}

/// [`run_capped`] keeping the part of standard output `keep` says.
async fn run_kept(
    backend: &str,
    mut cmd: Command,
    timeout: Duration,
    keep: Keep,
) -> Result<Finished, BackendError> {
    let prog = cmd.as_std().get_program().to_string_lossy().into_owned();
    let err = |cause: String| BackendError::Command {
        backend: backend.to_string(),
        cause,
    };
    // A session of its own, so that a timeout or a cancel ends what it
    // started too (`sh -c 'sleep 100 & wait'`, its group id is its pid), and
    // so that it has no controlling terminal: a hook that asks on /dev/tty
    // (an ssh passphrase, sudo) fails at once (ENXIO) instead of being
    // stopped by SIGTTIN as a background group of our terminal until its
    // timeout.
    #[cfg(unix)]
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Its group is ended even if shipdeck is killed outright (SIGKILL, the
    // OOM killer), when no code of ours runs: see `watchdog`. Declared
    // before `group`, so that a dropped run kills the group first and then
    // tells the watchdog it is done.
    #[cfg(unix)]
    let mut watchdog = {
        let w = super::watchdog::Watchdog::start().map_err(|e| {
            err(format!(
                "cannot start the watchdog that ends {prog:?} if shipdeck is killed: {e}"
            ))
        })?;
        w.watch(&mut cmd);
        w
    };
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    #[cfg(unix)]
    watchdog.spawned();
    let mut child = spawned.map_err(|e| err(format!("cannot run {prog:?}: {e}")))?;
    let mut group = GroupKill(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (mut out, mut errb) = (Vec::new(), Vec::new());
    let work = async {
        let readers = async {
            tokio::join!(
                drain_into(stdout, keep, &mut out),
                drain_into(stderr, Keep::Head(STDERR_CAP), &mut errb)
            )
        };
        tokio::pin!(readers);
        // Its exit is awaited while reading: something it left running may
        // hold the pipes open long after (a deploy that starts a worker).
        // Once it exited by itself, what it left running is its own
        // business even if shipdeck is killed now: the watchdog goes.
        tokio::select! {
            _ = &mut readers => {
                let status = child.wait().await;
                #[cfg(unix)]
                watchdog.release();
                status
            }
            status = child.wait() => {
                #[cfg(unix)]
                watchdog.release();
                // What it wrote is in the pipes; read that, briefly.
                let _ = tokio::time::timeout(DRAIN_GRACE, &mut readers).await;
                status
            }
        }
    };
    let status = match tokio::time::timeout(timeout, work).await {
        Ok(status) => status,
        Err(_) => {
            group.kill();
            let _ = child.start_kill();
            return Err(BackendError::Timeout {
                backend: backend.to_string(),
                after: timeout,
            });
        }
    };
    let (stdout, stderr) = (kept_part(out, keep), errb);
    // It ended by itself: whatever it left running is its own business.
    group.disarm();
    let status = status.map_err(|e| err(format!("{prog:?} failed: {e}")))?;
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

/// The process group of a running child (its id: it leads a group of its
/// own), killed with everything in it unless disarmed — on a timeout, and
/// when the run is dropped half way (a cancel, an interrupted command).
/// The child is not reaped before the kill, so the id still names its group.
struct GroupKill(Option<u32>);

impl GroupKill {
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.0.take().and_then(|p| i32::try_from(p).ok())
            && pgid > 1
        {
            // SAFETY: kill(2) with a negative pid signals that process group;
            // it touches no memory of ours.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        self.0 = None;
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Read an answer body with the one capped reader, as a typed error.
pub(crate) async fn read_body(
    backend: &str,
    resp: reqwest::Response,
    cap: usize,
    timeout: Duration,
) -> Result<String, BackendError> {
    match super::http::read_capped(resp, cap).await {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(BodyError::TooLarge { cap }) => Err(BackendError::TooLarge {
            backend: backend.to_string(),
            cap,
        }),
        Err(BodyError::Transport(e)) => Err(http_error(backend, e, timeout)),
    }
}

/// Turn a reqwest error into a typed backend error.
pub(crate) fn http_error(backend: &str, e: reqwest::Error, timeout: Duration) -> BackendError {
    if e.is_timeout() {
        BackendError::Timeout {
            backend: backend.to_string(),
            after: timeout,
        }
    } else {
        // reqwest's Display includes the URL; we name the backend ourselves.
        let e = e.without_url();
        let mut cause = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            cause = format!("{cause}: {s}");
            src = s.source();
        }
        BackendError::Unreachable {
            backend: backend.to_string(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_whole_placeholders_only() {
        let t = vec![
            "deploy".into(),
            "--env={env}".into(),
            "{version}".into(),
            "{other}".into(),
        ];
        assert_eq!(
            fill(&t, &[("env", "staging"), ("version", "v1.2")]),
            vec!["deploy", "--env=staging", "v1.2", "{other}"]
        );
    }

    #[test]
    fn urls_lose_credentials_in_messages() {
        assert_eq!(
            show_url("https://user:secret@example.com/deploy?token=abc"),
            "https://example.com/deploy"
        );
    }

    #[tokio::test]
    async fn commands_run_without_a_shell() {
        let argv = fill(
            &["echo".into(), "{version}".into()],
            &[("version", "$(id); rm -rf /")],
        );
        let out = run_command("test", &argv, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(out, "$(id); rm -rf /");
    }

    #[tokio::test]
    async fn a_hook_writing_a_megabyte_to_stderr_is_not_a_false_timeout() {
        let argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            "head -c 1048576 /dev/zero | tr '\\0' e >&2; head -c 2000000 /dev/zero | tr '\\0' o; echo; echo v1.2.3".into(),
        ];
        let out = run_command("hook", &argv, Duration::from_secs(20))
            .await
            .unwrap();
        // Standard output is kept up to its cap, and the rest is drained.
        assert_eq!(out.len(), STDOUT_CAP);
        let failing: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            "head -c 1048576 /dev/zero | tr '\\0' e >&2; exit 3".into(),
        ];
        let e = run_command("hook", &failing, Duration::from_secs(20))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("exit code 3"), "{e}");
    }

    #[test]
    fn cleaned_errors_carry_no_secret_and_no_escape() {
        crate::text::register_secret("util-test-token-4411");
        let e = BackendError::Status {
            backend: "deploy webhook of prod".into(),
            status: 401,
            body: "bad token util-test-token-4411 \u{1b}]0;pwned\u{7}".into(),
        }
        .cleaned();
        let shown = e.to_string();
        assert!(!shown.contains("util-test-token-4411"), "{shown}");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains("pwned"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[tokio::test]
    async fn command_failures_and_timeouts_are_typed() {
        let e = run_command("hook", &["false".into()], Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("hook: \"false\" failed with exit code 1"),
            "{e}"
        );
        let e = run_command(
            "hook",
            &["sleep".into(), "5".into()],
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, BackendError::Timeout { .. }));
        let e = run_command("hook", &["/no/such/binary".into()], Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot run"), "{e}");
    }

    /// Whether `pid` still runs `sleep` (a zombie waiting for its reaper,
    /// or a reused id running something else, counts as gone).
    fn sleep_runs(pid: &str) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        stat.contains("(sleep)") && state.is_some_and(|s| s != "Z" && s != "X")
    }

    /// A hook that leaves a grandchild (`sleep 100 &`), its pid written to a
    /// file in `dir`.
    fn forking_hook(dir: &std::path::Path) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!("sleep 100 & echo $! > {}/pid; wait", dir.display()),
        ]
    }

    async fn grandchild(dir: &std::path::Path) -> String {
        for _ in 0..200 {
            if let Ok(p) = std::fs::read_to_string(dir.join("pid"))
                && p.ends_with('\n')
            {
                return p.trim().to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the hook never started its grandchild");
    }

    async fn gone(pid: &str) -> bool {
        for _ in 0..200 {
            if !sleep_runs(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_timed_out_hook_takes_its_whole_process_group_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = run_command("hook", &forking_hook(dir.path()), Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(matches!(e, BackendError::Timeout { .. }), "{e}");
        let pid = grandchild(dir.path()).await;
        assert!(
            gone(&pid).await,
            "the hook's `sleep 100` (pid {pid}) outlived its timeout"
        );
    }

    #[tokio::test]
    async fn a_cancelled_hook_takes_its_whole_process_group_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let argv = forking_hook(dir.path());
        let run = run_command("hook", &argv, Duration::from_secs(300));
        let pid = tokio::select! {
            r = run => panic!("the hook ended by itself: {r:?}"),
            pid = grandchild(dir.path()) => pid,
        };
        // The run was dropped (cancelled) when `select!` took the other arm.
        assert!(
            gone(&pid).await,
            "the hook's `sleep 100` (pid {pid}) outlived its cancel"
        );
    }

    #[tokio::test]
    async fn a_command_that_leaves_a_worker_running_ends_when_it_exits_and_the_worker_lives() {
        let dir = tempfile::tempdir().unwrap();
        // A deploy that starts a worker, which keeps the pipes open.
        let argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            format!(
                "sleep 100 & echo $! > {}/pid; echo done",
                dir.path().display()
            ),
        ];
        let out = run_command("deploy", &argv, Duration::from_secs(20)).await;
        let pid = grandchild(dir.path()).await;
        let alive = sleep_runs(&pid);
        // SAFETY: kill(2) touches no memory of ours; the worker is ours.
        unsafe {
            libc::kill(pid.parse().unwrap(), libc::SIGKILL);
        }
        assert_eq!(out.unwrap(), "done");
        assert!(
            alive,
            "the worker (pid {pid}) was killed when its command exited"
        );
    }

    /// Inside a test process that has a controlling terminal, its own group
    /// in the foreground (as shipdeck run from a shell): a hook that asks on
    /// /dev/tty fails at once, it is not stopped until its timeout. The test
    /// runs itself again in such a process, on a fresh pseudo-terminal.
    #[test]
    fn a_hook_that_reads_the_terminal_fails_at_once_instead_of_hanging() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::process::CommandExt;
        const INSIDE: &str = "SHIPDECK_TEST_ON_A_TERMINAL";
        if std::env::var_os(INSIDE).is_some() {
            assert!(
                std::fs::File::open("/dev/tty").is_ok(),
                "the test process has no controlling terminal"
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let argv: Vec<String> = vec!["sh".into(), "-c".into(), "read x < /dev/tty".into()];
            let e = rt
                .block_on(run_command("hook", &argv, Duration::from_secs(60)))
                .unwrap_err();
            assert!(!matches!(e, BackendError::Timeout { .. }), "{e}");
            assert!(e.to_string().contains("failed with exit code"), "{e}");
            return;
        }
        // SAFETY: plain calls on a descriptor we own and a buffer we pass
        // with its length.
        let path = unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(
                master >= 0,
                "no pseudo-terminal: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
            std::ffi::CStr::from_ptr(name.as_ptr())
                .to_str()
                .unwrap()
                .to_owned()
        };
        let terminal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .unwrap();
        let fd = terminal.as_raw_fd();
        let name = format!(
            "{}::a_hook_that_reads_the_terminal_fails_at_once_instead_of_hanging",
            module_path!().split_once("::").unwrap().1
        );
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(INSIDE, "1")
            .stdin(Stdio::null());
        // SAFETY: setsid(2) and ioctl(2) are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() == -1 || libc::ioctl(fd, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let done = cmd.output().unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(done.status.success(), "{shown}");
        assert!(
            shown.contains("1 passed"),
            "the test did not run inside: {shown}"
        );
        drop(terminal);
    }
}
