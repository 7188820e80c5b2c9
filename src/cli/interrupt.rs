//! Ctrl-C, SIGTERM and SIGHUP during a one-shot command, and during the
//! console (which stops on [`signalled`] itself: `tui::run`).
//!
//! Every command shipdeck runs (version reads, deploys, hooks) lives in a
//! session of its own (see `backends::util::run_capped`), so the terminal's
//! Ctrl-C reaches shipdeck only: a shipdeck killed by the signal's default
//! action would leave them running. So a one-shot command listens for the
//! signals from its start ([`listen`]); on one, what is running is dropped —
//! which kills each command's process group — and the process exits with
//! 128 + the signal's number (130 for Ctrl-C: SPEC's exit codes do not name
//! interruption, and that is the shell's convention).
//!
//! Two places react: an audited action runs under `interruptible`, which
//! holds a [`Guarded`] while it drops the action, queues its "unknown
//! (interrupted)" outcome and waits for the store; anything else (status,
//! history, a plan or a prompt before the action) is dropped by the command
//! line's outer loop ([`outside_action`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::Failure;

/// The first stop signal received (its number), once [`listen`] ran.
static STOP: OnceLock<watch::Receiver<Option<i32>>> = OnceLock::new();
/// How many `interruptible` actions are running: they handle a signal
/// themselves, and the outer loop leaves it to them.
static GUARDED: AtomicUsize = AtomicUsize::new(0);

/// Start listening for SIGINT, SIGTERM and SIGHUP; from now on they no
/// longer kill the process. Call inside the runtime, before anything runs.
pub(super) fn listen() {
    if STOP.get().is_some() {
        return;
    }
    let (tx, rx) = watch::channel(None);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered here, synchronously: a signal sent from now on is seen.
        let streams = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        match streams {
            (Ok(mut int), Ok(mut term), Ok(mut hup)) => {
                tokio::spawn(async move {
                    let n = tokio::select! {
                        _ = int.recv() => libc::SIGINT,
                        _ = term.recv() => libc::SIGTERM,
                        _ = hup.recv() => libc::SIGHUP,
                    };
                    let _ = tx.send(Some(n));
                    // Later signals are absorbed while the exit settles.
                    std::future::pending::<()>().await;
                    drop((int, term, hup));
                });
            }
            (a, b, c) => {
                let e = [a.err(), b.err(), c.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::warn!("cannot listen for stop signals: {e}");
                return;
            }
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(Some(2));
        }
        std::future::pending::<()>().await;
    });
    let _ = STOP.set(rx);
}

/// Resolves with the signal's number once one came; never without [`listen`].
pub(super) async fn signalled() -> i32 {
    let Some(rx) = STOP.get() else {
        return std::future::pending().await;
    };
    let mut rx = rx.clone();
    // The value is copied out: the borrow it came in is not held across
    // an await (the console polls this on its worker threads).
    let got = rx.wait_for(Option::is_some).await.map(|sig| *sig);
    match got {
        Ok(sig) => sig.unwrap_or(libc::SIGINT),
        // The listener is gone (the runtime is ending): nothing will come.
        Err(_) => std::future::pending().await,
    }
}

/// Resolves with the signal's number once one came while no audited action
/// is running to handle it (or once that action has handled it and the
/// command still runs).
pub(super) async fn outside_action() -> i32 {
    let sig = signalled().await;
    while GUARDED.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sig
}

/// Held while an audited action runs under `interruptible`.
pub(super) struct Guarded(());

impl Guarded {
    pub(super) fn new() -> Guarded {
        GUARDED.fetch_add(1, Ordering::SeqCst);
        Guarded(())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        GUARDED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The signal's name, for messages.
pub(super) fn name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT (Ctrl-C)".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// The failure of a command stopped by `sig`: exit code 128 + its number.
pub(super) fn failure(sig: i32, what: &str) -> Failure {
    Failure {
        code: 128 + sig,
        message: format!("interrupted by {}: {what}", name(sig)),
        cause: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(failure(libc::SIGINT, "x").code, 130);
        assert_eq!(failure(libc::SIGTERM, "x").code, 143);
        assert_eq!(failure(libc::SIGHUP, "x").code, 129);
        assert!(failure(libc::SIGINT, "x").message.contains("Ctrl-C"));
    }
}
