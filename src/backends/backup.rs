//! The backup hook (`[release] backup`): a command run before a migration
//! release is deployed; the last line it prints is the backup's id.

use std::time::Duration;

use super::BackendError;
use super::util::{Keep, STDOUT_CAP, fill, run_command_keeping};
use crate::config::BackupConfig;

/// Longest backup id kept.
pub const MAX_ID: usize = 200;

#[derive(Clone, Debug)]
pub struct BackupHook {
    argv: Vec<String>,
    timeout: Duration,
}

impl BackupHook {
    pub fn from_config(cfg: &BackupConfig) -> BackupHook {
        BackupHook {
            argv: cfg.command.clone(),
            timeout: cfg.timeout.0,
        }
    }

    /// The command as shown in messages (program and arguments filled in).
    pub fn shown(&self, env: &str, version: &str) -> String {
        fill(&self.argv, &[("env", env), ("version", version)]).join(" ")
    }

    /// Run the hook for `env` and `version` (argv, never a shell) and return
    /// the backup id: its last non-empty output line, sanitised. A hook that
    /// fails, times out or prints no id is an error; errors are cleaned.
    /// A long log before the id is fine (the tail of the output is kept);
    /// a last line that is not text (invalid UTF-8) or too long is no id.
    pub async fn run(&self, env: &str, version: &str) -> Result<String, BackendError> {
        let name = format!(
            "backup hook ({})",
            self.argv.first().map_or("", String::as_str)
        );
        let argv = fill(&self.argv, &[("env", env), ("version", version)]);
        let run = async {
            let out =
                run_command_keeping(&name, &argv, self.timeout, Keep::Tail(STDOUT_CAP)).await?;
            let last = out
                .lines()
                .rev()
                .map(|l| crate::text::clean(l).trim().to_string())
                .find(|l| !l.is_empty());
            match last {
                None => Err(BackendError::Garbage {
                    backend: name.clone(),
                    cause: "it printed nothing: the backup's id must be its last output line"
                        .into(),
                }),
                Some(id) if id.contains(char::REPLACEMENT_CHARACTER) => {
                    Err(BackendError::Garbage {
                        backend: name.clone(),
                        cause: "its last line is not text (invalid UTF-8), not a backup id".into(),
                    })
                }
                Some(id) if id.chars().count() > MAX_ID => Err(BackendError::Garbage {
                    backend: name.clone(),
                    cause: format!(
                        "its last line is longer than {MAX_ID} characters, not a backup id"
                    ),
                }),
                Some(id) => Ok(id),
            }
        };
        run.await.map_err(BackendError::cleaned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::HumanDuration;

    fn hook(script: &str, timeout_ms: u64) -> BackupHook {
        BackupHook::from_config(&BackupConfig {
            command: vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                "hook".into(),
                "{env}".into(),
                "{version}".into(),
            ],
            timeout: HumanDuration(Duration::from_millis(timeout_ms)),
        })
    }

    #[tokio::test]
    async fn the_last_line_is_the_backup_id() {
        let h = hook("echo dumping $1 $2; echo; echo \"bk-$1-$2\"; echo", 30_000);
        assert_eq!(
            h.run("production", "v1.8.0").await.unwrap(),
            "bk-production-v1.8.0"
        );
    }

    #[tokio::test]
    async fn escape_sequences_in_the_id_are_removed() {
        let h = hook("printf 'bk-1\\033]0;pwned\\007\\n'", 30_000);
        let id = h.run("p", "v1").await.unwrap();
        assert!(!id.chars().any(char::is_control), "{id:?}");
        assert!(id.starts_with("bk-1"), "{id:?}");
    }

    #[tokio::test]
    async fn a_hook_that_fails_hangs_or_prints_nothing_is_an_error() {
        let e = hook("echo disk full >&2; exit 2", 30_000)
            .run("p", "v1")
            .await
            .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("exit code 2") && s.contains("disk full"), "{s}");
        let e = hook("sleep 5", 200).run("p", "v1").await.unwrap_err();
        assert!(matches!(e, BackendError::Timeout { .. }), "{e:?}");
        let e = hook("true", 30_000).run("p", "v1").await.unwrap_err();
        assert!(e.to_string().contains("printed nothing"), "{e}");
    }

    #[tokio::test]
    async fn a_long_log_before_the_id_keeps_the_id_and_garbage_is_no_id() {
        // 3 MiB of log lines (three times what is kept), then the id.
        let h = hook(
            "yes 'pg_dump: dumping contents of table shop.orders, a long line of a chatty backup tool' | head -n 36000; echo bk-42",
            20_000,
        );
        assert_eq!(h.run("p", "v1").await.unwrap(), "bk-42");
        // One endless line: too long to be an id, and said so.
        let e = hook("head -c 3000000 /dev/zero | tr '\\0' x", 20_000)
            .run("p", "v1")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("longer than 200 characters"), "{e}");
        // Binary noise: not text.
        let e = hook("printf 'bk-\\377\\376\\001\\n'", 5000)
            .run("p", "v1")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not text"), "{e}");
    }

    #[tokio::test]
    async fn placeholders_are_argv_never_a_shell() {
        // A version is validated long before, but even so: one argument.
        let h = hook("printf '%s' \"$2\"", 30_000);
        assert_eq!(
            h.run("p", "v1;touch /tmp/x").await.unwrap(),
            "v1;touch /tmp/x"
        );
    }
}
