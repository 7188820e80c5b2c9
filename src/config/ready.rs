//! `ready = { command = [...] }` beside a deploy command or webhook: a
//! readiness check polled after the deploy call returns, for deploys that
//! return while the rollout goes on (`kubectl apply`, `helm upgrade`
//! without `--wait`, `nomad job run -detach`). Exit codes as the `ci`
//! command's (SPEC §7): 0 rolled out, 1 failed, 3 still going.

use super::{DeployConfig, Problem};
use crate::domain::HumanDuration;
use serde::{Deserialize, Serialize};

/// A deploy's readiness check.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyConfig {
    /// Argv with `{env}`, `{version}` (and `{slot}` in `blue_green.deploy`)
    /// filled in, never through a shell: exit 0 = rolled out, 1 = the
    /// rollout failed, 3 = still going. Its last line of output is shown.
    pub command: Vec<String>,
    /// Longest one run may take; a run cut short counts as "still going".
    /// Default: the time left of the deploy's `timeout`.
    pub timeout: Option<HumanDuration>,
}

/// Where a deploy-shaped table sits, for what its `ready` may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// An environment's `deploy` (also the canary strategy's stable track)
    /// or `canary.deploy`.
    Deploy,
    /// `blue_green.deploy`: `{slot}` may be used.
    SlotDeploy,
    /// `blue_green.switch`, `canary.weight`: no rollout to wait for.
    NotADeploy,
}

/// Placeholders filled in somewhere, but not in every ready check.
const ELSEWHERE: [&str; 2] = ["slot", "weight"];

/// A placeholder of another place (`{slot}` outside `blue_green.deploy`)
/// used in `arg` as such (not after a `$`): it would reach the check as
/// typed.
fn foreign(arg: &str, allowed: &[&str]) -> Option<&'static str> {
    ELSEWHERE.into_iter().find(|name| {
        !allowed.contains(name)
            && arg
                .match_indices(&format!("{{{name}}}"))
                .any(|(at, _)| !arg[..at].ends_with('$'))
    })
}

/// `d.ready`, if any, for the table named `what` ("deploy",
/// "blue_green.deploy", …) at `place`.
pub(super) fn check(env: &str, what: &str, d: &DeployConfig, place: Place) -> Result<(), Problem> {
    let Some(ready) = &d.ready else {
        return Ok(());
    };
    let span = Some(ready.span());
    let problem = |why: String| {
        Err((
            span.clone(),
            format!("environment {env:?}: {what}.ready: {why}"),
        ))
    };
    if place == Place::NotADeploy {
        return problem(format!(
            "{what} has no rollout to wait for: a ready check goes with a deploy (deploy, blue_green.deploy or canary.deploy)"
        ));
    }
    if d.command.is_none() && d.webhook.is_none() {
        return problem(
            "a ready check goes with a deploy command or webhook; a CI/CD deploy is already followed to its end"
                .into(),
        );
    }
    let r: &ReadyConfig = ready.get_ref();
    if r.command.first().is_none_or(|p| p.trim().is_empty()) {
        return problem(
            "command is empty: name a program, e.g. [\"./rollout-state\", \"{env}\", \"{version}\"]"
                .into(),
        );
    }
    let allowed: &[&str] = match place {
        Place::SlotDeploy => &["env", "version", "slot"],
        _ => &["env", "version"],
    };
    // Braces of the program's own (kubectl's `jsonpath={.status…}`, a
    // shell's `${VAR}`) are left alone; only what reads as a placeholder
    // is checked — the one rule of every command and URL template.
    for arg in &r.command {
        if let Some(why) = super::strategy::misspelled_placeholder(arg, allowed) {
            return problem(why);
        }
        if let Some(bad) = foreign(arg, allowed) {
            let known = allowed
                .iter()
                .map(|a| format!("{{{a}}}"))
                .collect::<Vec<_>>()
                .join(", ");
            return problem(format!(
                "{arg:?} uses {{{bad}}}, which is not filled in here (known: {known})"
            ));
        }
    }
    if let Some(t) = r.timeout {
        if t.0.is_zero() {
            return problem("timeout must be longer than zero".into());
        }
        if t.0 > d.timeout.0 {
            return problem(format!(
                "timeout {t} is longer than the deploy's timeout {}, which bounds the whole rollout",
                d.timeout
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(src, Path::new("t.toml"))
    }

    /// The error's line and message.
    fn err(src: &str) -> (Option<usize>, String) {
        let e = parse(src).expect_err("should be refused");
        assert!(e.to_string().starts_with("t.toml:"), "{e}");
        (e.line, e.message)
    }

    /// One environment (line 4 is `deploy`).
    fn prod(deploy: &str) -> String {
        format!(
            "[[environments]]\nname = \"prod\"\nversion = {{ command = [\"cat\", \"spec\"] }}\ndeploy = {deploy}\n"
        )
    }

    const STAGING: &str = "[[environments]]\nname = \"staging\"\nversion = { url = \"http://h/v\" }\ndeploy = { command = [\"d\", \"{version}\"] }\n";

    #[test]
    fn a_ready_check_parses_beside_a_command_or_a_webhook() {
        let c = parse(&prod(
            "{ command = [\"kubectl\", \"apply\", \"-f\", \"{version}.yaml\"], timeout = \"10m\", ready = { command = [\"./rollout-state\", \"{env}\", \"{version}\"], timeout = \"30s\" } }",
        ))
        .unwrap();
        let d = c.environments[0].deploy.as_ref().unwrap().get_ref();
        let r = d.ready.as_ref().unwrap().get_ref();
        assert_eq!(r.command, ["./rollout-state", "{env}", "{version}"]);
        assert_eq!(r.timeout.map(|t| t.0.as_secs()), Some(30));
        // As a table of its own, and after a webhook; timeout optional.
        let c = parse(
            "[[environments]]\nname = \"prod\"\nversion = { url = \"http://h/v\" }\n[environments.deploy]\nwebhook = \"http://h/deploy\"\n[environments.deploy.ready]\ncommand = [\"./rollout-state\"]\n",
        )
        .unwrap();
        let d = c.environments[0].deploy.as_ref().unwrap().get_ref();
        assert!(d.ready.as_ref().unwrap().get_ref().timeout.is_none());
    }

    #[test]
    fn bad_ready_checks_are_refused_at_their_line_with_the_reason() {
        let cases = [
            (
                "{ command = [\"d\"], ready = { command = [] } }",
                "command is empty",
            ),
            (
                "{ command = [\"d\"], ready = { command = [\"  \"] } }",
                "command is empty",
            ),
            (
                "{ command = [\"d\"], ready = { command = [\"r\", \"{verison}\"] } }",
                "\"{verison}\": unknown placeholder {verison} (use {env}, {version})",
            ),
            (
                "{ command = [\"d\"], ready = { command = [\"r\", \"--env={Env}\"] } }",
                "unknown placeholder {Env}",
            ),
            (
                "{ command = [\"d\"], ready = { command = [\"r\", \"{slot}\"] } }",
                "uses {slot}, which is not filled in here (known: {env}, {version})",
            ),
            (
                "{ command = [\"d\"], ready = { command = [\"r\", \"{env\"] } }",
                "{env is not closed with }",
            ),
            (
                "{ command = [\"d\"], ready = { command = [\"r\"], timeout = \"0s\" } }",
                "timeout must be longer than zero",
            ),
            (
                "{ command = [\"d\"], timeout = \"1m\", ready = { command = [\"r\"], timeout = \"5m\" } }",
                "longer than the deploy's timeout",
            ),
        ];
        for (deploy, want) in cases {
            let (line, msg) = err(&prod(deploy));
            assert_eq!(line, Some(4), "{deploy}: {msg}");
            assert!(
                msg.contains("deploy.ready") && msg.contains(want),
                "{deploy}: {msg}"
            );
        }
        // The program's own braces are its own: kubectl's jsonpath, a
        // shell's ${VAR}, awk; {slot} after a $ is the shell's too.
        let c = parse(&prod(
            r#"{ command = ["kubectl", "apply", "-f", "k8s/{version}.yaml"], ready = { command = ["kubectl", "get", "deploy/shop", "-o", "jsonpath={.status.updatedReplicas}/{.spec.replicas}"] } }"#,
        ))
        .unwrap();
        let ready = |c: &crate::config::Config| {
            let d = c.environments[0].deploy.as_ref().unwrap().get_ref();
            d.ready.as_ref().unwrap().get_ref().command.clone()
        };
        assert_eq!(
            ready(&c)[4],
            "jsonpath={.status.updatedReplicas}/{.spec.replicas}"
        );
        let c = parse(&prod(
            r#"{ command = ["d"], ready = { command = ["sh", "-c", 'test "$(cat /srv/${APP}/VERSION)" = "$1" && kubectl rollout status deploy/${slot:-shop}', "ready", "{version}"] } }"#,
        ))
        .unwrap();
        assert!(ready(&c)[2].contains("${APP}") && ready(&c)[2].contains("${slot:-shop}"));
        let c = parse(&prod(
            r#"{ command = ["d"], ready = { command = ["sh", "-c", "kubectl get pods -o name | awk '{print}'"] } }"#,
        ))
        .unwrap();
        assert!(ready(&c)[2].ends_with("'{print}'"));
        // Unknown keys (a URL form, a misspelling) are named by toml.
        let (line, msg) = err(&prod(
            "{ command = [\"d\"], ready = { url = \"http://h/ready\" } }",
        ));
        assert_eq!(line, Some(4));
        assert!(msg.contains("unknown field `url`"), "{msg}");
        let (line, msg) = err(&prod("{ command = [\"d\"], ready = \"./rollout-state\" }"));
        assert_eq!(line, Some(4), "{msg}");
        // A CI/CD deploy is followed to its end already.
        let (line, msg) = err(
            "[[environments]]\nname = \"prod\"\nversion = { url = \"http://h/v\" }\n[environments.deploy]\nready = { command = [\"r\"] }\n[environments.deploy.vercel]\nproject = \"shop\"\ntoken_env = \"VERCEL_TOKEN\"\n",
        );
        assert_eq!(line, Some(5), "{msg}");
        assert!(msg.contains("CI/CD deploy is already followed"), "{msg}");
    }

    #[test]
    fn strategies_take_a_ready_check_where_they_deploy_and_only_there() {
        let bg = |deploy: &str, switch: &str| {
            format!(
                "{STAGING}[[environments]]\nname = \"production\"\nrollback = \"blue-green\"\n[environments.blue_green]\nslots = [\"blue\", \"green\"]\nlive = {{ url = \"http://h/live\" }}\nslot_version = {{ url = \"http://h/slots/{{slot}}/version\" }}\ndeploy = {deploy}\nswitch = {switch}\n"
            )
        };
        let slot_deploy = "{ command = [\"./deploy-slot\", \"{slot}\", \"{version}\"], ready = { command = [\"./slot-ready\", \"{slot}\", \"{version}\"] } }";
        let switch = "{ command = [\"./switch\", \"{slot}\"] }";
        parse(&bg(slot_deploy, switch)).unwrap();
        let (line, msg) = err(&bg(
            "{ command = [\"./deploy-slot\", \"{slot}\"] }",
            "{ command = [\"./switch\", \"{slot}\"], ready = { command = [\"r\"] } }",
        ));
        assert_eq!(line, Some(13), "{msg}");
        assert!(
            msg.contains("blue_green.switch.ready") && msg.contains("no rollout to wait for"),
            "{msg}"
        );
        let canary = |deploy: &str, weight: &str| {
            format!(
                "{STAGING}[[environments]]\nname = \"production\"\nversion = {{ url = \"http://h/v\" }}\ndeploy = {{ command = [\"./deploy\", \"{{version}}\"], ready = {{ command = [\"./stable-ready\", \"{{version}}\"] }} }}\nrollback = \"canary\"\n[environments.canary]\nsteps = [50, 100]\nversion = {{ url = \"http://h/canary/version\" }}\ndeploy = {deploy}\nweight = {weight}\n"
            )
        };
        let c = parse(&canary(
            "{ command = [\"./deploy-canary\", \"{version}\"], ready = { command = [\"./canary-ready\", \"{version}\"] } }",
            "{ webhook = \"http://h/w\" }",
        ))
        .unwrap();
        let t = c.environments[1].canary.as_ref().unwrap().get_ref();
        assert!(t.deploy.get_ref().ready.is_some());
        let (_, msg) = err(&canary(
            "{ command = [\"./deploy-canary\", \"{slot}\"], ready = { command = [\"r\"] } }",
            "{ webhook = \"http://h/w\" }",
        ));
        assert!(msg.contains("{slot}"), "{msg}");
        let (_, msg) = err(&canary(
            "{ webhook = \"http://h/d\" }",
            "{ webhook = \"http://h/w\", ready = { command = [\"r\"] } }",
        ));
        assert!(msg.contains("canary.weight.ready"), "{msg}");
        let (_, msg) = err(&canary(
            "{ command = [\"./deploy-canary\"], ready = { command = [\"r\", \"{slot}\"] } }",
            "{ webhook = \"http://h/w\" }",
        ));
        assert!(
            msg.contains("canary.deploy.ready") && msg.contains("{slot}"),
            "{msg}"
        );
    }
}
