//! A deploy's readiness check (`ready = { command = [...] }`): one run of
//! a program that says where the rollout is by its exit code, as the `ci`
//! command does (SPEC §7) — 0 rolled out, 1 failed, 3 still going. Its
//! last line of output, if any, is the detail shown. Argv with `{env}`,
//! `{version}` (and, for a slot, `{slot}`) filled in, never through a
//! shell. The engine polls it (`engine::strategy`); this file runs it once.

use std::time::Duration;

use tokio::process::Command;

use crate::backends::BackendError;
use crate::backends::util::{excerpt, exit_words, fill, run_capped};
use crate::config::ReadyConfig;
use crate::domain::Version;

/// Output kept from the program: its last line is all that is shown.
const OUTPUT_CAP: usize = 64 * 1024;

/// Where the rollout is, as one run of the check says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Exit 0: rolled out.
    Done,
    /// Exit 1: the rollout failed.
    Failed,
    /// Exit 3: still going.
    Going,
}

/// One run's answer: where the rollout is, and its last line of output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyAnswer {
    pub rollout: Rollout,
    /// The last non-empty line of its standard output, cleaned.
    pub detail: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ReadyCheck {
    template: Vec<String>,
    pub name: String,
    /// Longest one run may take (`ready.timeout`), when set.
    pub run_timeout: Option<Duration>,
}

impl ReadyCheck {
    /// `cfg` has been validated: a program, known placeholders.
    pub fn new(env: &str, cfg: &ReadyConfig) -> Self {
        let template = fill(&cfg.command, &[("env", env)]);
        ReadyCheck {
            name: format!(
                "ready check of {env} ({})",
                template.first().map(String::as_str).unwrap_or("")
            ),
            template,
            run_timeout: cfg.timeout.map(|t| t.0),
        }
    }

    /// Run the check once for `version`, for at most `limit` (and its own
    /// `timeout`). Every other exit, a program that cannot run and one that
    /// does not answer in time are errors naming why (a run cut short is
    /// [`BackendError::Timeout`]); all texts [cleaned](BackendError::cleaned).
    pub async fn check(
        &self,
        version: &Version,
        limit: Duration,
    ) -> Result<ReadyAnswer, BackendError> {
        self.run(version, limit)
            .await
            .map_err(BackendError::cleaned)
    }

    async fn run(&self, version: &Version, limit: Duration) -> Result<ReadyAnswer, BackendError> {
        let argv = fill(&self.template, &[("version", version.as_str())]);
        let Some((prog, args)) = argv.split_first() else {
            return Err(BackendError::Command {
                backend: self.name.clone(),
                cause: "empty command".into(),
            });
        };
        let mut cmd = Command::new(prog);
        cmd.args(args);
        let limit = self.run_timeout.map_or(limit, |t| t.min(limit));
        let done = run_capped(&self.name, cmd, limit, OUTPUT_CAP).await?;
        let out = String::from_utf8_lossy(&done.stdout);
        let detail = out
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| crate::text::clean(&l.chars().take(300).collect::<String>()))
            .filter(|l| !l.is_empty());
        let rollout = match done.status.code() {
            Some(0) => Rollout::Done,
            Some(1) => Rollout::Failed,
            Some(3) => Rollout::Going,
            _ => {
                let err = String::from_utf8_lossy(&done.stderr);
                return Err(BackendError::Command {
                    backend: self.name.clone(),
                    cause: format!(
                        "{} (0 is rolled out, 1 failed, 3 still going){}",
                        exit_words(done.status),
                        excerpt(&err)
                    ),
                });
            }
        };
        Ok(ReadyAnswer { rollout, detail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Option<&str>) -> ReadyCheck {
        let cfg = ReadyConfig {
            command: vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                "ready".into(),
                "{env}".into(),
                "{version}".into(),
            ],
            timeout: timeout.map(|t| crate::domain::HumanDuration::parse(t).unwrap()),
        };
        ReadyCheck::new("prod", &cfg)
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn exit_codes_read_as_done_failed_and_still_going() {
        let a = sh("echo \"$1 runs $2\"", None)
            .check(&v("v1.8.0"), LONG)
            .await
            .unwrap();
        assert_eq!(a.rollout, Rollout::Done);
        assert_eq!(a.detail.as_deref(), Some("prod runs v1.8.0"));
        let a = sh("echo 'progress deadline exceeded'; exit 1", None)
            .check(&v("v1"), LONG)
            .await
            .unwrap();
        assert_eq!(
            (a.rollout, a.detail.as_deref()),
            (Rollout::Failed, Some("progress deadline exceeded"))
        );
        let a = sh("echo '2 of 3 updated'; echo; exit 3", None)
            .check(&v("v1"), LONG)
            .await
            .unwrap();
        assert_eq!(
            (a.rollout, a.detail.as_deref()),
            (Rollout::Going, Some("2 of 3 updated"))
        );
        let a = sh("exit 3", None).check(&v("v1"), LONG).await.unwrap();
        assert_eq!((a.rollout, a.detail), (Rollout::Going, None));
    }

    #[tokio::test]
    async fn other_exits_missing_programs_and_hangs_are_errors_with_the_reason() {
        let e = sh("echo oops >&2; exit 7", None)
            .check(&v("v1"), LONG)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exit code 7") && e.contains("oops") && e.contains("3 still going"),
            "{e}"
        );
        let missing = ReadyCheck::new(
            "prod",
            &ReadyConfig {
                command: vec!["/no/such/ready-check".into()],
                timeout: None,
            },
        );
        let e = missing.check(&v("v1"), LONG).await.unwrap_err();
        assert!(e.to_string().contains("cannot run"), "{e}");
        // Cut short by the time left, or by its own timeout.
        let e = sh("sleep 20", None)
            .check(&v("v1"), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, BackendError::Timeout { .. }), "{e}");
        let e = sh("sleep 20", Some("200ms"))
            .check(&v("v1"), LONG)
            .await
            .unwrap_err();
        assert!(matches!(e, BackendError::Timeout { .. }), "{e}");
    }

    #[test]
    fn command_and_webhook_deploys_carry_their_check_with_env_filled_in() {
        let cfg = crate::config::Config::parse(
            "[[environments]]\nname = \"prod\"\nversion = { url = \"http://h/v\" }\ndeploy = { webhook = \"http://h/d\", ready = { command = [\"./state\", \"{env}\", \"{version}\"] } }\n\n[[environments]]\nname = \"other\"\nversion = { url = \"http://h/v\" }\ndeploy = { command = [\"./deploy\"] }\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let target = |i: usize| {
            let e = &cfg.environments[i];
            super::super::DeployTarget::from_config(
                e.name(),
                e.deploy.as_ref().unwrap().get_ref(),
                reqwest::Client::new(),
            )
        };
        let prod = target(0);
        let check = prod.ready().expect("a webhook deploy with its ready check");
        assert_eq!(check.template, ["./state", "prod", "{version}"]);
        assert_eq!(check.name, "ready check of prod (./state)");
        assert!(target(1).ready().is_none());
    }

    #[tokio::test]
    async fn escape_sequences_in_the_output_never_reach_the_detail() {
        let a = sh("printf 'ok \\033]0;pwned\\007 done\\n'; exit 3", None)
            .check(&v("v1"), LONG)
            .await
            .unwrap();
        let d = a.detail.unwrap_or_default();
        assert!(!d.contains('\u{1b}') && !d.contains("pwned"), "{d:?}");
    }
}
