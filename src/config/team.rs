//! The team tables of the config: `[policy]` and `[[notify]]`.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::domain::HumanDuration;

/// `[policy]`: rules a team adds to the release process.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `false`: a Go must come from someone other than who promoted the
    /// version into the approval stage and who promotes it onward.
    #[serde(default = "yes")]
    pub allow_self_approval: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            allow_self_approval: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// What a receiver is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A Slack-compatible incoming webhook: `{"text": …, "blocks": […]}`.
    Slack,
    /// A generic JSON event.
    Webhook,
}

/// Which events a receiver wants (`events = [...]`); all when not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A promotion starting and ending.
    Promote,
    /// A Go.
    Approve,
    /// A No-Go.
    NoGo,
    /// A rollback starting and ending (automatic ones included).
    Rollback,
    /// A monitoring window's verdict of regression.
    Regression,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Promote => "promote",
            NotifyEvent::Approve => "approve",
            NotifyEvent::NoGo => "no-go",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::Regression => "regression",
        }
    }
}

/// One `[[notify]]` table: a receiver of release events.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub kind: NotifyKind,
    /// The environment variable holding the receiver's URL (a Slack
    /// webhook URL is a secret: it never sits in the config).
    pub url_env: String,
    /// Only these events; every event when absent.
    pub events: Option<Vec<NotifyEvent>>,
    /// How long one delivery attempt may take (default 5s, at most 60s).
    #[serde(default = "attempt_timeout")]
    pub timeout: HumanDuration,
}

fn attempt_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

/// Longest `timeout` of one attempt.
pub const MAX_ATTEMPT: std::time::Duration = std::time::Duration::from_secs(60);

impl NotifyConfig {
    pub fn wants(&self, e: NotifyEvent) -> bool {
        self.events.as_ref().is_none_or(|es| es.contains(&e))
    }
}

type Problem = (Option<std::ops::Range<usize>>, String);

/// `[[notify]]` tables well-formed: a variable name, a non-empty filter, a
/// bounded timeout. Errors point at the table.
pub(super) fn check_notify(all: &[Spanned<NotifyConfig>]) -> Result<(), Problem> {
    for (i, n) in all.iter().enumerate() {
        let at = |why: String| Err((Some(n.span()), format!("[[notify]] #{}: {why}", i + 1)));
        let c = n.get_ref();
        if c.url_env.is_empty()
            || !c
                .url_env
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            return at(format!(
                "url_env {:?} must name an environment variable (like SLACK_WEBHOOK_URL)",
                c.url_env
            ));
        }
        if c.events.as_ref().is_some_and(Vec::is_empty) {
            return at(
                "events = [] sends nothing: list some of promote, approve, no-go, rollback, regression, or leave it out for all"
                    .into(),
            );
        }
        if c.timeout.0.is_zero() || c.timeout.0 > MAX_ATTEMPT {
            return at(format!(
                "timeout = \"{}\" must be above 0 and at most {}",
                c.timeout,
                HumanDuration(MAX_ATTEMPT)
            ));
        }
    }
    Ok(())
}

/// The `[[notify]]` tables whose `url_env` is not set (or empty) in this
/// process's environment, or holds no http(s) URL with a host: `config
/// check` names them (never the value: a webhook URL is a secret).
pub(super) fn unset_notify_vars(all: &[Spanned<NotifyConfig>]) -> Vec<Problem> {
    all.iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let var = &n.get_ref().url_env;
            let why = match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => {
                    let v = v.trim();
                    let is_url = (v.starts_with("http://") || v.starts_with("https://"))
                        && reqwest::Url::parse(v).is_ok_and(|u| u.has_host());
                    if is_url {
                        return None;
                    }
                    format!(
                        "url_env names {var}, which holds no http:// or https:// URL with a host: export it with the receiver's URL"
                    )
                }
                _ => format!(
                    "url_env names {var}, which is not set: export it with the receiver's URL"
                ),
            };
            Some((Some(n.span()), format!("[[notify]] #{}: {why}", i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const BASE: &str = "[[environments]]\nname = \"staging\"\nversion = { url = \"http://127.0.0.1:1/v\" }\ndeploy = { webhook = \"http://127.0.0.1:1/d\" }\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}{extra}"), std::path::Path::new("t.toml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn self_approval_is_allowed_unless_the_policy_says_otherwise() {
        assert!(parse("").unwrap().policy.allow_self_approval);
        assert!(
            !parse("[policy]\nallow_self_approval = false\n")
                .unwrap()
                .policy
                .allow_self_approval
        );
        let e = parse("[policy]\nallow_self_aproval = false\n").unwrap_err();
        assert!(e.contains("allow_self_aproval"), "{e}");
    }

    #[test]
    fn notify_tables_parse_with_their_filter_and_defaults() {
        let c = parse(
            "[[notify]]\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\nevents = [\"promote\", \"no-go\"]\n[[notify]]\nkind = \"webhook\"\nurl_env = \"HOOK\"\ntimeout = \"2s\"\n",
        )
        .unwrap();
        let slack = c.notify[0].get_ref();
        assert_eq!(slack.kind, NotifyKind::Slack);
        assert!(slack.wants(NotifyEvent::NoGo));
        assert!(!slack.wants(NotifyEvent::Approve));
        assert_eq!(slack.timeout.0, std::time::Duration::from_secs(5));
        let hook = c.notify[1].get_ref();
        assert!(hook.wants(NotifyEvent::Regression));
        assert_eq!(hook.timeout.0, std::time::Duration::from_secs(2));
    }

    #[test]
    fn bad_notify_tables_are_named_with_their_line() {
        let cases = [
            (
                "url_env = \"not a var\"",
                "[[notify]] #1: url_env \"not a var\"",
            ),
            ("url_env = \"X\"\nevents = []", "events = [] sends nothing"),
            ("url_env = \"X\"\nevents = [\"deploy\"]", "deploy"),
            ("url_env = \"X\"\ntimeout = \"2m\"", "at most 1m"),
        ];
        for (body, want) in cases {
            let e = parse(&format!("[[notify]]\nkind = \"webhook\"\n{body}\n")).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
            assert!(e.contains("t.toml:"), "names the place: {e}");
        }
        let e = parse("[[notify]]\nkind = \"email\"\nurl_env = \"X\"\n").unwrap_err();
        assert!(e.contains("email"), "{e}");
    }

    #[test]
    fn config_check_names_an_unset_url_variable_and_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let var = "SHIPDECK_TEST_NOTIFY_URL_SURELY_UNSET";
        std::fs::write(
            &p,
            format!("{BASE}\n[[notify]]\nkind = \"slack\"\nurl_env = \"{var}\"\n"),
        )
        .unwrap();
        // A running shipdeck loads it (the receiver is skipped, logged) …
        assert!(Config::load(&p).is_ok());
        // … `config check` refuses it, naming the variable and the line.
        let e = Config::load_checked(&p).unwrap_err().to_string();
        assert!(e.contains(var) && e.contains("not set"), "{e}");
        assert!(e.contains("c.toml:6"), "{e}");
    }
}
