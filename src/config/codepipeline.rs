//! `[environments.deploy.codepipeline]` (SPEC §8): an AWS CodePipeline
//! execution started at the version's revision. Typed here and checked with
//! the place of every error; the one rule that needs the whole config (a
//! commit id resolved through `[release] git`) is [`check`]'s `has_git`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Problem;

/// The revision kinds `StartPipelineExecution` takes in `sourceRevisions`.
pub const REVISION_TYPES: [&str; 4] = [
    "COMMIT_ID",
    "IMAGE_DIGEST",
    "S3_OBJECT_VERSION_ID",
    "S3_OBJECT_KEY",
];

/// `[environments.deploy.codepipeline]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CodePipelineConfig {
    /// The pipeline's name.
    pub pipeline: String,
    /// The AWS region the pipeline lives in (`eu-west-1`).
    pub region: String,
    /// The source action pinned to the version (`sourceRevisions`): without
    /// it (and without `variables`) the pipeline would build whatever its
    /// branch head is.
    pub source_action: Option<String>,
    /// How the version names the source revision: `COMMIT_ID` (default),
    /// `IMAGE_DIGEST`, `S3_OBJECT_VERSION_ID` or `S3_OBJECT_KEY`.
    #[serde(default = "default_revision_type")]
    pub revision_type: String,
    /// The revision as a template (`{env}`, `{version}`). Without it a
    /// `COMMIT_ID` is the commit `[release] git` resolves the version's tag to.
    pub revision: Option<String>,
    /// Pipeline variables (V2 pipelines); `{env}` and `{version}` are
    /// filled in.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// A named profile of the shared AWS config (default: the standard
    /// chain's choice, `AWS_PROFILE`).
    pub profile: Option<String>,
    /// The CodePipeline endpoint (default: the region's public one): a VPC
    /// endpoint, a proxy, tests.
    #[serde(alias = "endpoint_url")]
    pub api_url: Option<String>,
}

fn default_revision_type() -> String {
    "COMMIT_ID".into()
}

/// CodePipeline's pattern for pipeline, stage and action names.
fn name_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_'))
}

/// Only `{env}` and `{version}` are filled in (every CI deploy table's
/// values: GitHub inputs, Jenkins params, CodePipeline variables).
pub(super) fn placeholders_ok(v: &str) -> bool {
    let mut rest = v;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if matches!(&after[..close], "env" | "version") => {
                rest = &after[close + 1..]
            }
            _ => return false,
        }
    }
    true
}

/// Check the table of environment `name`; `has_git` says whether
/// `[release] git` can resolve a version to a commit.
pub(super) fn check(
    name: &str,
    t: &Spanned<CodePipelineConfig>,
    has_git: bool,
) -> Result<(), Problem> {
    let c = t.get_ref();
    let problem = |why: String| {
        Err((
            Some(t.span()),
            format!("environment {name:?}: deploy.codepipeline: {why}"),
        ))
    };
    if !name_ok(&c.pipeline, 100) {
        return problem(format!(
            "pipeline {:?} must be a pipeline name (letters, digits, . @ - _; at most 100)",
            c.pipeline
        ));
    }
    let region_ok = !c.region.is_empty()
        && c.region.len() <= 30
        && c.region
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if !region_ok {
        return problem(format!(
            "region {:?} must be an AWS region such as \"eu-west-1\"",
            c.region
        ));
    }
    if !REVISION_TYPES.contains(&c.revision_type.as_str()) {
        return problem(format!(
            "revision_type {:?} must be one of {}",
            c.revision_type,
            REVISION_TYPES.join(", ")
        ));
    }
    if let Some(r) = c.revision.as_deref().filter(|r| !placeholders_ok(r)) {
        return problem(format!(
            "revision = {r:?}: only {{env}} and {{version}} are filled in"
        ));
    }
    if let Some((k, v)) = c.variables.iter().find(|(_, v)| !placeholders_ok(v)) {
        return problem(format!(
            "variables.{k} = {v:?}: only {{env}} and {{version}} are filled in"
        ));
    }
    if let Some(k) = c.variables.keys().find(|k| {
        k.is_empty()
            || k.len() > 128
            || !k
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '@' | '-' | '_'))
    }) {
        return problem(format!(
            "variables.{k:?} must be a pipeline variable name (letters, digits, @ - _)"
        ));
    }
    match &c.source_action {
        Some(a) if !name_ok(a, 100) => {
            return problem(format!(
                "source_action {a:?} must be the source action's name"
            ));
        }
        Some(_) => {
            if c.revision.is_none() && c.revision_type != "COMMIT_ID" {
                return problem(format!(
                    "revision_type = {:?} needs revision = \"…{{version}}…\": only a commit id can be found in [release] git",
                    c.revision_type
                ));
            }
            if c.revision.is_none() && !has_git {
                return problem(
                    "source_action is pinned to the version's commit, but there is no [release] git to resolve the version in: add [release] git (and tag), or revision = \"{version}\" when versions are commit ids".into(),
                );
            }
        }
        None => {
            if c.revision.is_some() {
                return problem("revision needs source_action: the source action it pins".into());
            }
            if c.variables.is_empty() {
                return problem(
                    "nothing pins the execution to the version, so the pipeline would deploy whatever its branch head is: set source_action (its revision becomes the version's commit) or variables = { VERSION = \"{version}\" }".into(),
                );
            }
        }
    }
    if let Some(u) = &c.api_url {
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && reqwest::Url::parse(u).is_ok();
        if !ok {
            return problem(format!("api_url {u:?} must be an http:// or https:// URL"));
        }
    }
    if let Some(p) = c.profile.as_deref().filter(|p| {
        p.is_empty()
            || !p
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    }) {
        return problem(format!(
            "profile {p:?} must name a profile of the AWS config"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(src: &str) -> Spanned<CodePipelineConfig> {
        #[derive(Deserialize)]
        struct T {
            t: Spanned<CodePipelineConfig>,
        }
        toml::from_str::<T>(&format!("[t]\n{src}")).unwrap().t
    }

    fn why(src: &str, has_git: bool) -> String {
        check("production", &table(src), has_git).unwrap_err().1
    }

    const BASE: &str = "pipeline = \"shop-release\"\nregion = \"eu-west-1\"\n";

    #[test]
    fn a_pinned_pipeline_is_accepted() {
        let t = table(&format!("{BASE}source_action = \"Source\"\n"));
        assert!(check("p", &t, true).is_ok());
        assert_eq!(t.get_ref().revision_type, "COMMIT_ID");
        let t = table(&format!(
            "{BASE}source_action = \"Source\"\nrevision = \"{{version}}\"\nendpoint_url = \"http://127.0.0.1:9\"\n"
        ));
        assert!(check("p", &t, false).is_ok());
        assert_eq!(t.get_ref().api_url.as_deref(), Some("http://127.0.0.1:9"));
        let t = table(&format!(
            "{BASE}variables = {{ VERSION = \"{{version}}\" }}\n"
        ));
        assert!(check("p", &t, false).is_ok());
    }

    #[test]
    fn an_unpinned_or_unresolvable_execution_is_refused_with_the_reason() {
        let w = why(BASE, true);
        assert!(w.contains("whatever its branch head is"), "{w}");
        let w = why(&format!("{BASE}source_action = \"Source\"\n"), false);
        assert!(w.contains("no [release] git"), "{w}");
        let w = why(
            &format!("{BASE}source_action = \"Source\"\nrevision_type = \"S3_OBJECT_KEY\"\n"),
            true,
        );
        assert!(w.contains("needs revision"), "{w}");
        let w = why(
            &format!("{BASE}source_action = \"Source\"\nrevision_type = \"BRANCH\"\n"),
            true,
        );
        assert!(w.contains("revision_type \"BRANCH\" must be one of"), "{w}");
        let w = why(
            &format!("{BASE}variables = {{ VERSION = \"{{sha}}\" }}\n"),
            true,
        );
        assert!(w.contains("variables.VERSION"), "{w}");
        let w = why(
            "pipeline = \"shop release\"\nregion = \"eu-west-1\"\nsource_action = \"S\"\n",
            true,
        );
        assert!(w.contains("pipeline \"shop release\""), "{w}");
        let w = why(
            "pipeline = \"shop\"\nregion = \"EU West\"\nsource_action = \"S\"\n",
            true,
        );
        assert!(w.contains("AWS region"), "{w}");
        let w = why(
            &format!("{BASE}source_action = \"S\"\napi_url = \"ftp://x\"\n"),
            true,
        );
        assert!(w.contains("api_url"), "{w}");
    }
}
