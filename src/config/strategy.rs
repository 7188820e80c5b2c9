//! The strategy tables of an environment (SPEC §2): `[environments.blue_green]`
//! and `[environments.canary]`. Each reuses the shapes of `version` and
//! `deploy`, with a `{slot}` or `{weight}` placeholder; this file holds
//! their types and the checks that tie them to `rollback = "…"`.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{DeployConfig, EnvironmentConfig, Problem, RollbackStrategy, VersionSourceConfig};
use crate::domain::HumanDuration;

/// `[environments.blue_green]`: two slots, one live; a promotion deploys the
/// idle slot and switches traffic to it, a rollback switches back.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenConfig {
    /// Exactly two distinct slot names, e.g. `["blue", "green"]`.
    pub slots: Spanned<Vec<String>>,
    /// Which slot is live: a command printing its name, or `{ url, pointer }`
    /// (pointer default `/slot`).
    pub live: Spanned<LiveSourceConfig>,
    /// What one slot runs: a version source with `{slot}`.
    pub slot_version: Spanned<VersionSourceConfig>,
    /// Deploy one slot: a command (argv with `{slot}` and `{version}`) or a
    /// webhook whose URL names `{slot}` (POST `{"version": …}`).
    pub deploy: Spanned<DeployConfig>,
    /// Send all traffic to one slot: a command with `{slot}`, or a webhook
    /// (POST `{"slot": …}`).
    pub switch: Spanned<DeployConfig>,
    /// How long the old slot is kept for an instant switch back.
    #[serde(default = "default_keep_warm")]
    pub keep_warm: HumanDuration,
}

fn default_keep_warm() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

/// Where the live slot's name is read: the shape of a version source, but
/// the answer is a slot name (JSON pointer default `/slot`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSourceConfig {
    pub url: Option<String>,
    #[serde(default = "default_live_pointer")]
    pub pointer: String,
    pub command: Option<Vec<String>>,
    pub token_env: Option<String>,
    #[serde(default = "default_live_timeout")]
    pub timeout: HumanDuration,
}

fn default_live_pointer() -> String {
    "/slot".into()
}
fn default_live_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

impl LiveSourceConfig {
    /// The same source as a version source's config (the backend reads both
    /// the same way; only what the answer means differs).
    pub fn as_source(&self) -> VersionSourceConfig {
        VersionSourceConfig {
            url: self.url.clone(),
            pointer: self.pointer.clone(),
            command: self.command.clone(),
            token_env: self.token_env.clone(),
            timeout: self.timeout,
            vercel: None,
        }
    }
}

/// `[environments.canary]`: a canary track whose traffic weight rises step
/// by step, judged against the stable track at the same time.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Canary traffic in percent, one step after another, rising to 100.
    pub steps: Spanned<Vec<i64>>,
    /// How long each step is judged before the next.
    #[serde(default = "default_step_time")]
    pub step_time: HumanDuration,
    /// What the canary runs.
    pub version: Spanned<VersionSourceConfig>,
    /// Deploy the canary.
    pub deploy: Spanned<DeployConfig>,
    /// Set the canary's weight: a webhook (POST `{"weight": N}`) or a
    /// command with `{weight}`.
    pub weight: Spanned<DeployConfig>,
    /// The metrics label telling the tracks apart (`track="canary"` vs
    /// `track="stable"`).
    #[serde(default = "default_track_label")]
    pub track_label: String,
}

fn default_step_time() -> HumanDuration {
    HumanDuration::from_secs(120)
}
fn default_track_label() -> String {
    "track".into()
}

impl EnvironmentConfig {
    /// The rollback strategy.
    pub fn strategy(&self) -> RollbackStrategy {
        *self.rollback.get_ref()
    }
}

/// What a strategy's source or hook may, and must, name.
struct Holes<'a> {
    /// The table's place in messages: "blue_green.switch".
    what: &'a str,
    /// Placeholders it must use (in at least one of its strings).
    needs: &'a [&'a str],
    /// Strategy placeholders it may use besides.
    may: &'a [&'a str],
}

/// The strategy placeholders and where each one belongs.
const STRATEGY_HOLES: [(&str, &str); 2] = [
    (
        "slot",
        "blue_green.slot_version, blue_green.deploy and blue_green.switch",
    ),
    ("weight", "canary.weight"),
];

/// The `{name}`s a template uses.
fn holes_in(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    out
}

/// A `{name}` in `s` that looks meant as one of the `known` placeholders
/// but is not one (`{evn}`, `{Env}`, `{enviroment}`, `{vesion}`), or one
/// that is not closed (`{version`). Other braces are the program's own and
/// left alone: a shell's `${DEPLOY_TOKEN}`, awk's `'{print}'`, kubectl's
/// `jsonpath={.status.updatedReplicas}`, JSON arguments, PromQL matchers.
pub(crate) fn misspelled_placeholder(s: &str, known: &[&str]) -> Option<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let list = || {
        known
            .iter()
            .map(|k| format!("{{{k}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (open, _) in s.match_indices('{') {
        if s[..open].ends_with('$') {
            continue;
        }
        let after = &s[open + 1..];
        let name_len = after.find(|c: char| !word(c)).unwrap_or(after.len());
        let name = &after[..name_len];
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let exact = known.contains(&name);
        if !exact && !known.iter().any(|k| meant_as(name, k)) {
            continue;
        }
        match after[name_len..].chars().next() {
            Some('}') if !exact => {
                return Some(format!(
                    "{s:?}: unknown placeholder {{{name}}} (use {})",
                    list()
                ));
            }
            None => {
                return Some(format!("{s:?}: {{{name} is not closed with }}"));
            }
            _ => {}
        }
    }
    None
}

/// Whether `name` reads as a mistyped `known`: the same but for case, a
/// word that starts with it or it with the word (`{environment}`,
/// `{ver}`), or within one edit (two for longer names), a swap of two
/// neighbours counting as one (`{evn}`, `{verison}`).
fn meant_as(name: &str, known: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name == known || name.starts_with(known) || (name.len() >= 3 && known.starts_with(&name)) {
        return true;
    }
    let limit = if known.len() <= 3 { 1 } else { 2 };
    edits(name.as_bytes(), known.as_bytes()) <= limit
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours.
fn edits(a: &[u8], b: &[u8]) -> usize {
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

fn source_strings(v: &VersionSourceConfig) -> Vec<&str> {
    v.url
        .iter()
        .map(String::as_str)
        .chain(v.command.iter().flatten().map(String::as_str))
        .collect()
}

fn hook_strings(d: &DeployConfig) -> Vec<&str> {
    d.webhook
        .iter()
        .map(String::as_str)
        .chain(d.command.iter().flatten().map(String::as_str))
        .collect()
}

fn check_holes(
    env: &str,
    span: std::ops::Range<usize>,
    strings: &[&str],
    rule: &Holes<'_>,
) -> Result<(), Problem> {
    for s in strings {
        if let Some(why) = misspelled_placeholder(s, &["env", "version", "slot", "weight"]) {
            return Err((
                Some(span),
                format!("environment {env:?}: {}: {why}", rule.what),
            ));
        }
    }
    let used: Vec<&str> = strings.iter().flat_map(|s| holes_in(s)).collect();
    for (hole, belongs) in STRATEGY_HOLES {
        if used.contains(&hole) && !rule.needs.contains(&hole) && !rule.may.contains(&hole) {
            return Err((
                Some(span),
                format!(
                    "environment {env:?}: {} uses {{{hole}}}, which is not filled in there (it belongs in {belongs})",
                    rule.what
                ),
            ));
        }
    }
    for need in rule.needs {
        if !used.contains(need) {
            return Err((
                Some(span),
                format!(
                    "environment {env:?}: {} must name {{{need}}}, or it cannot tell one {} from another",
                    rule.what,
                    if *need == "slot" { "slot" } else { "weight" }
                ),
            ));
        }
    }
    Ok(())
}

/// A version-shaped source of a strategy table: exactly one of url or
/// command, a usable URL, a JSON pointer.
fn check_source(
    env: &str,
    what: &str,
    span: std::ops::Range<usize>,
    v: &VersionSourceConfig,
) -> Result<(), Problem> {
    let problem = |why: String| Err((Some(span.clone()), format!("environment {env:?}: {why}")));
    match (&v.url, &v.command) {
        (Some(_), Some(_)) | (None, None) => {
            return problem(format!(
                "{what} needs exactly one of url = \"…\" or command = [\"…\"]"
            ));
        }
        (None, Some(c)) if c.is_empty() => return problem(format!("{what} command is empty")),
        (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return problem(format!(
                "{what} url {u:?} must start with http:// or https://"
            ));
        }
        _ => {}
    }
    if !v.pointer.is_empty() && !v.pointer.starts_with('/') {
        return problem(format!(
            "{what}: pointer {:?} must be a JSON pointer starting with /",
            v.pointer
        ));
    }
    Ok(())
}

/// A deploy-shaped hook of a strategy table: a webhook or a command.
fn check_hook(
    env: &str,
    what: &str,
    span: std::ops::Range<usize>,
    d: &DeployConfig,
) -> Result<(), Problem> {
    let problem = |why: String| Err((Some(span.clone()), format!("environment {env:?}: {why}")));
    if d.github_actions.is_some()
        || d.jenkins.is_some()
        || d.vercel.is_some()
        || d.codepipeline.is_some()
    {
        return problem(format!(
            "{what} must be a webhook = \"…\" or a command = [\"…\"]"
        ));
    }
    let place = match what {
        "blue_green.deploy" => super::ready::Place::SlotDeploy,
        "canary.deploy" => super::ready::Place::Deploy,
        _ => super::ready::Place::NotADeploy,
    };
    super::ready::check(env, what, d, place)?;
    match (&d.webhook, &d.command) {
        (Some(_), Some(_)) | (None, None) => problem(format!(
            "{what} needs exactly one of webhook = \"…\" or command = [\"…\"]"
        )),
        (None, Some(c)) if c.is_empty() => problem(format!("{what} command is empty")),
        (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => problem(
            format!("{what} webhook {u:?} must start with http:// or https://"),
        ),
        _ => Ok(()),
    }
}

/// A slot name: what `{slot}` becomes in URLs and argv.
fn slot_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `rollback`, the strategy tables and the placeholders of every source
/// and hook of one environment.
pub(super) fn check_strategy(env: &EnvironmentConfig) -> Result<(), Problem> {
    let name = env.name();
    let strategy = env.strategy();
    let rollback_at = env.rollback.span();
    // The top-level version and deploy: required except for blue-green,
    // and never with a strategy placeholder.
    fn plain(what: &str) -> Holes<'_> {
        Holes {
            what,
            needs: &[],
            may: &[],
        }
    }
    match (&env.version, strategy) {
        (Some(v), RollbackStrategy::BlueGreen) => {
            return Err((
                Some(v.span()),
                format!(
                    "environment {name:?}: with rollback = \"blue-green\" the version is what the live slot runs (blue_green.live and blue_green.slot_version): remove version"
                ),
            ));
        }
        (Some(v), _) => check_holes(
            name,
            v.span(),
            &source_strings(v.get_ref()),
            &plain("version"),
        )?,
        (None, RollbackStrategy::BlueGreen) => {}
        (None, _) => {
            return Err((
                Some(env.name.span()),
                format!(
                    "environment {name:?}: missing version = {{ url = \"…\" }} or {{ command = [\"…\"] }}"
                ),
            ));
        }
    }
    match (&env.deploy, strategy) {
        (Some(d), RollbackStrategy::BlueGreen) => {
            return Err((
                Some(d.span()),
                format!(
                    "environment {name:?}: with rollback = \"blue-green\" a deploy goes to the idle slot (blue_green.deploy): remove deploy"
                ),
            ));
        }
        (Some(d), _) => check_holes(name, d.span(), &hook_strings(d.get_ref()), &plain("deploy"))?,
        (None, RollbackStrategy::BlueGreen) => {}
        (None, _) => {
            return Err((
                Some(env.name.span()),
                format!(
                    "environment {name:?}: missing deploy = {{ webhook = \"…\" }}, {{ command = [\"…\"] }} or a CI/CD table"
                ),
            ));
        }
    }
    // Each table goes with its strategy, and only with it.
    let tables = [
        (
            "blue_green",
            RollbackStrategy::BlueGreen,
            env.blue_green.as_ref().map(|t| t.span()),
        ),
        (
            "canary",
            RollbackStrategy::Canary,
            env.canary.as_ref().map(|t| t.span()),
        ),
    ];
    for (table, owner, span) in &tables {
        match span {
            Some(span) if strategy != *owner => {
                return Err((
                    Some(span.clone()),
                    format!(
                        "environment {name:?}: [environments.{table}] is for rollback = \"{}\", but this environment has rollback = \"{}\"",
                        owner.as_str(),
                        strategy.as_str()
                    ),
                ));
            }
            None if strategy == *owner => {
                return Err((
                    Some(rollback_at.clone()),
                    format!(
                        "environment {name:?}: rollback = \"{}\" needs an [environments.{table}] table",
                        owner.as_str()
                    ),
                ));
            }
            _ => {}
        }
    }
    if let Some(bg) = &env.blue_green {
        check_blue_green(name, bg)?;
    }
    if let Some(c) = &env.canary {
        check_canary(name, c)?;
    }
    Ok(())
}

fn check_blue_green(env: &str, t: &Spanned<BlueGreenConfig>) -> Result<(), Problem> {
    let bg = t.get_ref();
    let slots = bg.slots.get_ref();
    if slots.len() != 2 || slots[0] == slots[1] {
        return Err((
            Some(bg.slots.span()),
            format!(
                "environment {env:?}: blue_green.slots must be two distinct names, e.g. [\"blue\", \"green\"]"
            ),
        ));
    }
    if let Some(bad) = slots.iter().find(|s| !slot_name_ok(s)) {
        return Err((
            Some(bg.slots.span()),
            format!("environment {env:?}: slot name {bad:?}: use 1-40 letters, digits, - or _"),
        ));
    }
    let live = bg.live.get_ref().as_source();
    check_source(env, "blue_green.live", bg.live.span(), &live)?;
    check_holes(
        env,
        bg.live.span(),
        &source_strings(&live),
        &Holes {
            what: "blue_green.live",
            needs: &[],
            may: &[],
        },
    )?;
    check_source(
        env,
        "blue_green.slot_version",
        bg.slot_version.span(),
        bg.slot_version.get_ref(),
    )?;
    check_holes(
        env,
        bg.slot_version.span(),
        &source_strings(bg.slot_version.get_ref()),
        &Holes {
            what: "blue_green.slot_version",
            needs: &["slot"],
            may: &[],
        },
    )?;
    check_hook(
        env,
        "blue_green.deploy",
        bg.deploy.span(),
        bg.deploy.get_ref(),
    )?;
    check_holes(
        env,
        bg.deploy.span(),
        &hook_strings(bg.deploy.get_ref()),
        &Holes {
            what: "blue_green.deploy",
            needs: &["slot"],
            may: &[],
        },
    )?;
    check_hook(
        env,
        "blue_green.switch",
        bg.switch.span(),
        bg.switch.get_ref(),
    )?;
    // A webhook is told the slot in its body; a command only through {slot}.
    let switch_needs: &[&str] = if bg.switch.get_ref().command.is_some() {
        &["slot"]
    } else {
        &[]
    };
    check_holes(
        env,
        bg.switch.span(),
        &hook_strings(bg.switch.get_ref()),
        &Holes {
            what: "blue_green.switch",
            needs: switch_needs,
            may: &["slot"],
        },
    )?;
    if bg.keep_warm.0.is_zero() {
        return Err((
            Some(t.span()),
            format!(
                "environment {env:?}: blue_green.keep_warm must be longer than zero (how long the old slot stays ready for a switch back)"
            ),
        ));
    }
    Ok(())
}

fn check_canary(env: &str, t: &Spanned<CanaryConfig>) -> Result<(), Problem> {
    let c = t.get_ref();
    let steps = c.steps.get_ref();
    let at = Some(c.steps.span());
    if steps.is_empty() {
        return Err((
            at,
            format!(
                "environment {env:?}: canary.steps is empty: list percents rising to 100, e.g. [10, 50, 100]"
            ),
        ));
    }
    if let Some(bad) = steps.iter().find(|s| !(1..=100).contains(*s)) {
        return Err((
            at,
            format!("environment {env:?}: canary.steps: {bad} is not a percent within 1..=100"),
        ));
    }
    if let Some(w) = steps.windows(2).find(|w| w[1] <= w[0]) {
        return Err((
            at,
            format!(
                "environment {env:?}: canary.steps must rise step by step, but {} follows {}",
                w[1], w[0]
            ),
        ));
    }
    if steps.last() != Some(&100) {
        return Err((
            at,
            format!(
                "environment {env:?}: canary.steps must rise to 100 (the last step sends all traffic to the canary)"
            ),
        ));
    }
    if c.step_time.0.is_zero() {
        return Err((
            Some(t.span()),
            format!("environment {env:?}: canary.step_time must be longer than zero"),
        ));
    }
    let label_ok = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !label_ok(&c.track_label) {
        return Err((
            Some(t.span()),
            format!(
                "environment {env:?}: canary.track_label {:?} is not a metrics label name (letters, digits, _)",
                c.track_label
            ),
        ));
    }
    check_source(env, "canary.version", c.version.span(), c.version.get_ref())?;
    check_holes(
        env,
        c.version.span(),
        &source_strings(c.version.get_ref()),
        &Holes {
            what: "canary.version",
            needs: &[],
            may: &[],
        },
    )?;
    check_hook(env, "canary.deploy", c.deploy.span(), c.deploy.get_ref())?;
    check_holes(
        env,
        c.deploy.span(),
        &hook_strings(c.deploy.get_ref()),
        &Holes {
            what: "canary.deploy",
            needs: &[],
            may: &[],
        },
    )?;
    check_hook(env, "canary.weight", c.weight.span(), c.weight.get_ref())?;
    let weight_needs: &[&str] = if c.weight.get_ref().command.is_some() {
        &["weight"]
    } else {
        &[]
    };
    check_holes(
        env,
        c.weight.span(),
        &hook_strings(c.weight.get_ref()),
        &Holes {
            what: "canary.weight",
            needs: weight_needs,
            may: &["weight"],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(src, Path::new("t.toml"))
    }

    /// The error's place and message, for one assertion.
    fn err(src: &str) -> (Option<usize>, Option<usize>, String) {
        let e = parse(src).expect_err("should be refused");
        (e.line, e.column, e.message)
    }

    const STAGING: &str = "[[environments]]\nname = \"staging\"\nversion = { url = \"http://h/v\" }\ndeploy = { command = [\"d\", \"{version}\"] }\n";

    /// A blue-green production environment (line 5 is `name`, line 6 `rollback`).
    fn blue_green(table: &str) -> String {
        format!(
            "{STAGING}[[environments]]\nname = \"production\"\nrollback = \"blue-green\"\n[environments.blue_green]\n{table}"
        )
    }

    const BG_TABLE: &str = "slots = [\"blue\", \"green\"]\nlive = { url = \"http://h/live\" }\nslot_version = { url = \"http://h/slots/{slot}/version\" }\ndeploy = { command = [\"./deploy-slot\", \"{slot}\", \"{version}\"] }\nswitch = { command = [\"./switch-slot\", \"{slot}\"] }\nkeep_warm = \"1h\"\n";

    /// A canary production environment (line 7 is `rollback`).
    fn canary(table: &str) -> String {
        format!(
            "{STAGING}[[environments]]\nname = \"production\"\nversion = {{ url = \"http://h/v\" }}\ndeploy = {{ webhook = \"http://h/d\" }}\nrollback = \"canary\"\n[environments.canary]\n{table}"
        )
    }

    const CANARY_TABLE: &str = "steps = [10, 50, 100]\nstep_time = \"2m\"\nversion = { url = \"http://h/canary/version\" }\ndeploy = { webhook = \"http://h/canary/deploy\" }\nweight = { webhook = \"http://h/canary/weight\" }\ntrack_label = \"track\"\n";

    #[test]
    fn holes_are_the_braced_names() {
        assert_eq!(
            holes_in("http://x/{slot}/v/{version}"),
            vec!["slot", "version"]
        );
        assert_eq!(holes_in("no holes {"), Vec::<&str>::new());
    }

    #[test]
    fn slot_names_are_argv_and_url_safe() {
        assert!(slot_name_ok("blue"));
        assert!(slot_name_ok("green-2"));
        assert!(!slot_name_ok(""));
        assert!(!slot_name_ok("a b"));
        assert!(!slot_name_ok("../x"));
    }

    #[test]
    fn redeploy_is_the_default_and_needs_version_and_deploy() {
        let c = parse(STAGING).unwrap();
        assert_eq!(c.environments[0].strategy(), RollbackStrategy::Redeploy);
        let (line, col, msg) =
            err("[[environments]]\nname = \"x\"\ndeploy = { command = [\"d\"] }\n");
        assert_eq!((line, col), (Some(2), Some(8)), "{msg}");
        assert!(msg.contains("missing version"), "{msg}");
        let (_, _, msg) =
            err("[[environments]]\nname = \"x\"\nversion = { url = \"http://h/v\" }\n");
        assert!(msg.contains("missing deploy"), "{msg}");
    }

    #[test]
    fn a_canary_table_is_accepted_as_written() {
        let c = parse(&canary(CANARY_TABLE)).unwrap();
        let prod = &c.environments[1];
        assert_eq!(prod.strategy(), RollbackStrategy::Canary);
        let t = prod.canary.as_ref().unwrap().get_ref();
        assert_eq!(t.steps.get_ref(), &vec![10, 50, 100]);
        assert_eq!(t.step_time.0, std::time::Duration::from_secs(120));
        assert_eq!(t.track_label, "track");
    }

    #[test]
    fn a_blue_green_table_parses_typed() {
        let c = parse(&blue_green(BG_TABLE)).unwrap();
        let prod = &c.environments[1];
        assert_eq!(prod.strategy(), RollbackStrategy::BlueGreen);
        assert!(prod.version.is_none() && prod.deploy.is_none());
        let bg = prod.blue_green.as_ref().unwrap().get_ref();
        assert_eq!(bg.slots.get_ref(), &["blue", "green"]);
        assert_eq!(bg.live.get_ref().pointer, "/slot");
        assert_eq!(bg.keep_warm.0, std::time::Duration::from_secs(3600));
        assert_eq!(
            bg.switch.get_ref().command.as_deref(),
            Some(&["./switch-slot".to_string(), "{slot}".to_string()][..])
        );
    }

    #[test]
    fn a_strategy_without_its_table_names_the_rollback_key() {
        let src = format!(
            "{STAGING}[[environments]]\nname = \"production\"\nrollback = \"blue-green\"\n"
        );
        let (line, col, msg) = err(&src);
        assert_eq!((line, col), (Some(7), Some(12)), "{msg}");
        assert!(
            msg.contains("rollback = \"blue-green\" needs an [environments.blue_green] table"),
            "{msg}"
        );
        let src = format!(
            "{STAGING}[[environments]]\nname = \"production\"\nversion = {{ url = \"http://h/v\" }}\ndeploy = {{ webhook = \"http://h/d\" }}\nrollback = \"canary\"\n"
        );
        let (_, _, msg) = err(&src);
        assert!(
            msg.contains("needs an [environments.canary] table"),
            "{msg}"
        );
    }

    #[test]
    fn a_table_that_does_not_match_rollback_is_refused_at_the_table() {
        let src = format!(
            "{STAGING}[[environments]]\nname = \"production\"\nversion = {{ url = \"http://h/v\" }}\ndeploy = {{ webhook = \"http://h/d\" }}\n[environments.blue_green]\n{BG_TABLE}"
        );
        let (line, _, msg) = err(&src);
        assert_eq!(line, Some(9), "{msg}");
        assert!(
            msg.contains("[environments.blue_green] is for rollback = \"blue-green\", but this environment has rollback = \"redeploy\""),
            "{msg}"
        );
        let src = blue_green(BG_TABLE) + &format!("[environments.canary]\n{CANARY_TABLE}");
        let (_, _, msg) = err(&src);
        assert!(
            msg.contains("[environments.canary] is for rollback = \"canary\""),
            "{msg}"
        );
    }

    #[test]
    fn unknown_and_missing_keys_of_a_table_name_their_place() {
        let (line, col, msg) = err(&blue_green(&format!("{BG_TABLE}keep_wram = \"1h\"\n")));
        assert_eq!((line, col), (Some(15), Some(1)), "{msg}");
        assert!(msg.contains("unknown field `keep_wram`"), "{msg}");
        let without_switch = BG_TABLE.replace(
            "switch = { command = [\"./switch-slot\", \"{slot}\"] }\n",
            "",
        );
        let (line, _, msg) = err(&blue_green(&without_switch));
        assert!(line.is_some(), "{msg}");
        assert!(msg.contains("missing field `switch`"), "{msg}");
        let (line, _, msg) = err(&canary(
            &CANARY_TABLE.replace("steps = [10, 50, 100]\n", ""),
        ));
        assert!(line.is_some(), "{msg}");
        assert!(msg.contains("missing field `steps`"), "{msg}");
    }

    #[test]
    fn canary_steps_must_rise_within_1_to_100_and_end_at_100() {
        for (steps, why) in [
            ("[]", "canary.steps is empty"),
            ("[0, 50, 100]", "0 is not a percent within 1..=100"),
            ("[10, 150]", "150 is not a percent within 1..=100"),
            ("[50, 10, 100]", "must rise step by step, but 10 follows 50"),
            ("[10, 10, 100]", "must rise step by step, but 10 follows 10"),
            ("[10, 50]", "must rise to 100"),
        ] {
            let table = CANARY_TABLE.replace("[10, 50, 100]", steps);
            let (line, col, msg) = err(&canary(&table));
            assert_eq!((line, col), (Some(11), Some(9)), "{steps}: {msg}");
            assert!(msg.contains(why), "{steps}: {msg}");
        }
    }

    #[test]
    fn strategy_placeholders_in_the_wrong_place_are_refused() {
        // {slot} where no slot is filled in: the top-level version and deploy,
        // the live source, the canary.
        let src = "[[environments]]\nname = \"x\"\nversion = { url = \"http://h/{slot}/v\" }\ndeploy = { command = [\"d\"] }\n";
        let (line, col, msg) = err(src);
        assert_eq!((line, col), (Some(3), Some(11)), "{msg}");
        assert!(
            msg.contains("version uses {slot}, which is not filled in there"),
            "{msg}"
        );
        let src = "[[environments]]\nname = \"x\"\nversion = { url = \"http://h/v\" }\ndeploy = { command = [\"d\", \"{weight}\"] }\n";
        let (_, _, msg) = err(src);
        assert!(msg.contains("deploy uses {weight}"), "{msg}");
        let table = BG_TABLE.replace("http://h/live", "http://h/{slot}/live");
        let (line, _, msg) = err(&blue_green(&table));
        assert_eq!(line, Some(10), "{msg}");
        assert!(msg.contains("blue_green.live uses {slot}"), "{msg}");
        let table = BG_TABLE.replace("\"{slot}\", \"{version}\"", "\"{slot}\", \"{weight}\"");
        let (_, _, msg) = err(&blue_green(&table));
        assert!(msg.contains("blue_green.deploy uses {weight}"), "{msg}");
        let table = CANARY_TABLE.replace("canary/deploy", "{slot}/deploy");
        let (_, _, msg) = err(&canary(&table));
        assert!(msg.contains("canary.deploy uses {slot}"), "{msg}");
        // And missing where it is needed.
        let table = BG_TABLE.replace("[\"./switch-slot\", \"{slot}\"]", "[\"./switch-slot\"]");
        let (line, _, msg) = err(&blue_green(&table));
        assert_eq!(line, Some(13), "{msg}");
        assert!(msg.contains("blue_green.switch must name {slot}"), "{msg}");
        let table = BG_TABLE.replace("/slots/{slot}/version", "/slots/version");
        let (_, _, msg) = err(&blue_green(&table));
        assert!(
            msg.contains("blue_green.slot_version must name {slot}"),
            "{msg}"
        );
        let table = BG_TABLE.replace(
            "[\"./deploy-slot\", \"{slot}\", \"{version}\"]",
            "[\"./deploy-slot\", \"{version}\"]",
        );
        let (_, _, msg) = err(&blue_green(&table));
        assert!(msg.contains("blue_green.deploy must name {slot}"), "{msg}");
        let table = CANARY_TABLE.replace(
            "{ webhook = \"http://h/canary/weight\" }",
            "{ command = [\"w\"] }",
        );
        let (_, _, msg) = err(&canary(&table));
        assert!(msg.contains("canary.weight must name {weight}"), "{msg}");
        // A switch webhook is told the slot in its body: no {slot} needed.
        let table = BG_TABLE.replace(
            "{ command = [\"./switch-slot\", \"{slot}\"] }",
            "{ webhook = \"http://h/live\" }",
        );
        assert!(parse(&blue_green(&table)).is_ok());
    }

    #[test]
    fn slots_are_two_distinct_usable_names() {
        for slots in [
            "[\"blue\"]",
            "[\"blue\", \"blue\"]",
            "[\"a\", \"b\", \"c\"]",
        ] {
            let table = BG_TABLE.replace("[\"blue\", \"green\"]", slots);
            let (line, col, msg) = err(&blue_green(&table));
            assert_eq!((line, col), (Some(9), Some(9)), "{slots}: {msg}");
            assert!(msg.contains("two distinct names"), "{slots}: {msg}");
        }
        let table = BG_TABLE.replace("\"green\"", "\"gr een\"");
        let (_, _, msg) = err(&blue_green(&table));
        assert!(msg.contains("slot name \"gr een\""), "{msg}");
    }

    #[test]
    fn blue_green_reads_and_deploys_only_through_its_table() {
        let src = format!(
            "{STAGING}[[environments]]\nname = \"production\"\nversion = {{ url = \"http://h/v\" }}\nrollback = \"blue-green\"\n[environments.blue_green]\n{BG_TABLE}"
        );
        let (line, _, msg) = err(&src);
        assert_eq!(line, Some(7), "{msg}");
        assert!(msg.contains("remove version"), "{msg}");
        let table = BG_TABLE.replace("keep_warm = \"1h\"", "keep_warm = \"0s\"");
        let (_, _, msg) = err(&blue_green(&table));
        assert!(msg.contains("keep_warm must be longer than zero"), "{msg}");
        let table = BG_TABLE.replace(
            "live = { url = \"http://h/live\" }",
            "live = { url = \"ftp://h/live\" }",
        );
        let (_, _, msg) = err(&blue_green(&table));
        assert!(
            msg.contains("blue_green.live url \"ftp://h/live\" must start with http://"),
            "{msg}"
        );
    }
}
