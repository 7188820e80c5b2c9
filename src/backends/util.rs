//! What the backends share: the error type, secrets from the environment,
//! argv templating and running commands without a shell.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// A failure of an outside system. `backend` names which one (kind, env and
/// target, with any credentials stripped from URLs).
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
}

fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let t = one_line.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// Read a secret named by `token_env`; never logged, never shown.
pub(crate) fn secret(backend: &str, var: Option<&str>) -> Result<Option<String>, BackendError> {
    match var {
        None => Ok(None),
        Some(v) => match std::env::var(v) {
            Ok(s) if !s.is_empty() => Ok(Some(s)),
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
        Err(_) => url.chars().take(120).collect(),
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

/// Run argv with a timeout; returns trimmed stdout on exit 0.
pub(crate) async fn run_command(
    backend: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<String, BackendError> {
    let err = |cause: String| BackendError::Command {
        backend: backend.to_string(),
        cause,
    };
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| err("empty command".into()))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot run {prog:?}: {e}")))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        let mut out = Vec::new();
        let mut errb = Vec::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_end(&mut out).await;
        }
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_end(&mut errb).await;
        }
        let status = child.wait().await;
        (status, out, errb)
    };
    let (status, out, errb) =
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| BackendError::Timeout {
                backend: backend.to_string(),
                after: timeout,
            })?;
    let status = status.map_err(|e| err(format!("{prog:?} failed: {e}")))?;
    if !status.success() {
        let msg = String::from_utf8_lossy(&errb);
        let code = status
            .code()
            .map(|c| format!("exit code {c}"))
            .unwrap_or_else(|| "killed by a signal".into());
        return Err(err(format!("{prog:?} failed with {code}{}", excerpt(&msg))));
    }
    Ok(String::from_utf8_lossy(&out).trim().to_string())
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
        let out = run_command("test", &argv, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out, "$(id); rm -rf /");
    }

    #[tokio::test]
    async fn command_failures_and_timeouts_are_typed() {
        let e = run_command("hook", &["false".into()], Duration::from_secs(5))
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
        let e = run_command("hook", &["/no/such/binary".into()], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot run"), "{e}");
    }
}
