//! `ci = { command = ["./ci-state", "{sha}"] }`: a program answers the CI
//! state of the release's commit by its exit code — 0 green, 1 red, 3 still
//! running; anything else, a program that cannot run or one that takes
//! longer than `timeout` is `unknown`, with the reason. Its last line of
//! output, if any, is the detail shown (and its URL, when it is one).
//! Argv with `{sha}` and `{version}` filled in, never through a shell.

use std::time::Duration;

use tokio::process::Command;

use crate::backends::util::{excerpt, exit_words, fill, run_capped};
use crate::domain::{Check, CheckState};

/// Output kept from the program: its last line is all that is shown.
const OUTPUT_CAP: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct CommandCi {
    argv: Vec<String>,
    timeout: Duration,
    name: String,
}

impl CommandCi {
    /// `argv` has been checked at config load (a program, known placeholders).
    pub fn new(argv: &[String], timeout: Duration) -> Self {
        CommandCi {
            argv: argv.to_vec(),
            timeout,
            name: format!(
                "CI command {:?}",
                argv.first().map(String::as_str).unwrap_or("")
            ),
        }
    }

    /// The CI state of `sha` (the commit `version` names).
    pub async fn ci(&self, sha: &str, version: &str) -> Check {
        let argv = fill(&self.argv, &[("sha", sha), ("version", version)]);
        let Some((prog, args)) = argv.split_first() else {
            return Check::unknown(format!("{}: empty command", self.name));
        };
        let mut cmd = Command::new(prog);
        cmd.args(args);
        let done = match run_capped(&self.name, cmd, self.timeout, OUTPUT_CAP).await {
            Ok(d) => d,
            Err(e) => return Check::unknown(e.cleaned().to_string()),
        };
        let out = String::from_utf8_lossy(&done.stdout);
        let last = out
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| crate::text::clean(&l.chars().take(300).collect::<String>()));
        let url = last
            .as_deref()
            .filter(|l| (l.starts_with("http://") || l.starts_with("https://")) && !l.contains(' '))
            .map(str::to_string);
        let short = &sha[..sha.len().min(7)];
        let said = |default: String| last.clone().unwrap_or(default);
        match done.status.code() {
            Some(0) => Check::new(CheckState::Success, said(format!("green for {short}")), url),
            Some(1) => Check::new(CheckState::Failure, said(format!("red for {short}")), url),
            Some(3) => Check::new(
                CheckState::Pending,
                said(format!("still running for {short}")),
                url,
            ),
            _ => {
                let err = String::from_utf8_lossy(&done.stderr);
                Check::unknown(crate::text::clean(&format!(
                    "{}: {} (0 is green, 1 red, 3 running){}",
                    self.name,
                    exit_words(done.status),
                    excerpt(&err)
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> CommandCi {
        CommandCi::new(
            &[
                "sh".into(),
                "-c".into(),
                script.into(),
                "ci".into(),
                "{sha}".into(),
                "{version}".into(),
            ],
            Duration::from_secs(30),
        )
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[tokio::test]
    async fn exit_codes_read_as_green_red_and_running() {
        let c = sh("echo checking $1 $2; echo https://ci.example/run/7")
            .ci(SHA, "v1.8.0")
            .await;
        assert_eq!(c.state, CheckState::Success);
        assert_eq!(c.detail, "https://ci.example/run/7");
        assert_eq!(c.url.as_deref(), Some("https://ci.example/run/7"));
        let c = sh("echo \"3 tests failed on $1\"; exit 1")
            .ci(SHA, "v1.8.0")
            .await;
        assert_eq!(
            (c.state, c.detail.as_str()),
            (
                CheckState::Failure,
                format!("3 tests failed on {SHA}").as_str()
            )
        );
        assert_eq!(c.url, None);
        let c = sh("exit 3").ci(SHA, "v1.8.0").await;
        assert_eq!(
            (c.state, c.detail.as_str()),
            (CheckState::Pending, "still running for 0123456")
        );
        let c = sh("test \"$2\" = v1.8.0").ci(SHA, "v1.8.0").await;
        assert_eq!(c.state, CheckState::Success, "{c:?}");
    }

    #[tokio::test]
    async fn other_exits_hangs_and_missing_programs_are_unknown_with_the_reason() {
        let c = sh("echo oops >&2; exit 7").ci(SHA, "v1").await;
        assert_eq!(c.state, CheckState::Unknown);
        assert!(
            c.detail.contains("exit code 7") && c.detail.contains("oops"),
            "{}",
            c.detail
        );
        let slow = CommandCi::new(&["sleep".into(), "5".into()], Duration::from_millis(200));
        let c = slow.ci(SHA, "v1").await;
        assert_eq!(c.state, CheckState::Unknown);
        assert!(c.detail.contains("no answer within 0.2s"), "{}", c.detail);
        let c = CommandCi::new(&["/no/such/ci".into()], Duration::from_secs(30))
            .ci(SHA, "v1")
            .await;
        assert_eq!(c.state, CheckState::Unknown);
        assert!(c.detail.contains("cannot run"), "{}", c.detail);
    }

    #[tokio::test]
    async fn escape_sequences_in_the_output_never_reach_the_detail() {
        let c = sh("printf 'ok \\033]0;pwned\\007 done\\n'")
            .ci(SHA, "v1")
            .await;
        assert!(
            !c.detail.contains('\u{1b}') && !c.detail.contains("pwned"),
            "{:?}",
            c.detail
        );
    }
}
