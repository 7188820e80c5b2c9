//! The pending release from the repository: its commits and migrations
//! (cached by the pair of commits), the backup gate and the backup taken
//! before a migration release is deployed, freezes, and what rolling back
//! across migrations means.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Engine, EngineError};
use crate::backends::backup::BackupHook;
use crate::backends::vcs::{GitRepo, Range, Resolved, VcsError};
use crate::config::Config;
use crate::domain::release::{
    Backup, Commit, Freeze, Glob, SchemaNotice, active_freeze, backup_detail, backup_gate,
    backup_id_of, freeze_gate, glob_scope, migration_paths, needs_backup, schema_notice,
};
use crate::domain::{ActionKind, Gate, Outcome, PromotionPlan, Version};
use crate::store::NewAudit;

/// How long a version's resolution to a commit is reused: a tag moved by
/// hand is seen within this time, and a status view of an unchanged fleet
/// runs no git at all.
const RESOLVE_TTL: Duration = Duration::from_secs(10);

/// Ranges kept in memory (a handful of pairs are live at any time).
const MAX_RANGES: usize = 64;

/// How far back in an environment's audit log a backup is looked for.
const BACKUP_LOOKBACK: usize = 500;

/// What the engine knows of `[release]` and `[[freeze]]`.
pub(super) struct ReleaseSource {
    pub(super) repo: Option<GitRepo>,
    globs: Vec<Glob>,
    backup: Option<BackupHook>,
    freezes: Vec<Freeze>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    resolved: HashMap<Version, (Instant, Resolved)>,
    ranges: HashMap<(String, String), Arc<Range>>,
    /// What a version drops of what a target runs, by (version, target).
    dropped: HashMap<(String, String), Arc<Range>>,
}

/// Which range of a pair of versions `a`, `b`: what `b` adds to `a`
/// (`a..b`), or what `b` runs that `a` lacks (see [`GitRepo::dropped_of`]).
#[derive(Clone, Copy)]
enum Between {
    Adds,
    Lacks,
}

impl Between {
    fn cache(self, c: &mut Cache) -> &mut HashMap<(String, String), Arc<Range>> {
        match self {
            Between::Adds => &mut c.ranges,
            Between::Lacks => &mut c.dropped,
        }
    }
}

impl ReleaseSource {
    pub(super) fn from_config(cfg: &Config) -> ReleaseSource {
        let r = &cfg.release;
        let globs = r.migration_globs();
        ReleaseSource {
            // Only the paths the migration globs can match are read from
            // the repository: the diff of a large release stays small.
            repo: r.git.as_ref().map(|g| {
                GitRepo::new(g.get_ref(), r.tag_template(), r.timeout.0)
                    .with_scope(glob_scope(&globs))
            }),
            globs,
            backup: r
                .backup
                .as_ref()
                .map(|b| BackupHook::from_config(b.get_ref())),
            freezes: crate::config::freezes(&cfg.freeze),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The repository versions resolve in (`[release] git`), if any.
    pub(super) fn repo(&self) -> Option<&GitRepo> {
        self.repo.as_ref()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a release carries, as the repository tells it: shown in the
/// pending panel and in `status --json` (`pending.commits`, `migrations`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReleaseFacts {
    /// The repository read (`[release] git`); `None` when none is configured.
    pub repository: Option<String>,
    /// Commits between what the target runs and the version, newest first
    /// (at most 500).
    pub commits: Vec<Commit>,
    /// How many commits the range has in all.
    pub commits_total: usize,
    /// More commits than listed.
    pub commits_capped: bool,
    /// Paths the release changes that match `[release] migrations`.
    pub migrations: Vec<String>,
    /// It changes the database: flagged wherever it appears.
    pub migration_release: bool,
    /// Why the repository could not answer, when it could not.
    pub git_error: Option<String>,
    /// The backup recorded for this version in the target environment.
    pub backup: Option<Backup>,
    /// Commits the target runs that the version does not have
    /// (`version..target`, newest first, at most 500; one cherry-picked
    /// into the version counts as kept): a hotfix made on the target and
    /// never merged back, a force-push, a release cut from an older branch.
    /// Promoting removes them.
    pub dropped: Vec<Commit>,
    /// How many commits the target runs that the version lacks, in all.
    pub dropped_total: usize,
    /// More dropped commits than listed.
    pub dropped_capped: bool,
    /// Paths the dropped commits change that match `[release] migrations`:
    /// promoting rolls those migrations' code back (the schema stays).
    pub dropped_migrations: Vec<String>,
}

impl ReleaseFacts {
    /// What promoting drops, in one line that names the count and the
    /// environment (`None` when it drops nothing), and whether it drops a
    /// migration (a schema rollback in disguise, said more loudly).
    pub fn drops_line(&self, env: &str, version: &str) -> Option<(String, bool)> {
        if self.dropped_total == 0 {
            return None;
        }
        let n = self.dropped_total;
        let commits = if n == 1 { "commit" } else { "commits" };
        let newest = self
            .dropped
            .first()
            .map(|c| format!("{} {}", c.short(), c.subject));
        if self.dropped_migrations.is_empty() {
            let newest = newest.map(|c| format!(": {c}")).unwrap_or_default();
            return Some((
                format!("! drops {n} {commits} {env} runs (not in {version}){newest}"),
                false,
            ));
        }
        let which = if self.dropped_migrations.len() == 1 {
            "a migration"
        } else {
            "migrations"
        };
        let newest = newest.map(|c| format!("; newest {c}")).unwrap_or_default();
        Some((
            format!(
                "!! DROPS {n} {commits} {env} runs (not in {version}), with {which} ({}): the schema stays ahead of the code{newest}",
                self.dropped_migrations.join(", ")
            ),
            true,
        ))
    }
}

/// The pending release: the plan (with its gates and its evidence: CI,
/// review, the approval stage's verdict) and what it carries from the
/// repository.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pending {
    #[serde(flatten)]
    pub plan: PromotionPlan,
    #[serde(flatten)]
    pub release: ReleaseFacts,
}

impl Engine {
    /// A version resolved in the repository, reused for [`RESOLVE_TTL`].
    pub(super) async fn resolve(&self, repo: &GitRepo, v: &Version) -> Result<Resolved, VcsError> {
        let src = &self.inner.release;
        if let Some((at, r)) = src.cache().resolved.get(v)
            && at.elapsed() < RESOLVE_TTL
        {
            return Ok(r.clone());
        }
        let r = repo.resolve(v).await?;
        src.cache()
            .resolved
            .insert(v.clone(), (Instant::now(), r.clone()));
        Ok(r)
    }

    /// The range from `from` to `to`, cached by the pair of commits.
    pub(super) async fn range(&self, from: &Version, to: &Version) -> Result<Arc<Range>, VcsError> {
        self.cached_range(from, to, Between::Adds).await
    }

    /// What `target` runs that `version` lacks (see
    /// [`GitRepo::dropped_of`]), cached by the pair of commits.
    async fn dropped(&self, version: &Version, target: &Version) -> Result<Arc<Range>, VcsError> {
        self.cached_range(version, target, Between::Lacks).await
    }

    /// The range `which` of the pair `a`, `b`, read once per pair of
    /// commits.
    async fn cached_range(
        &self,
        a: &Version,
        b: &Version,
        which: Between,
    ) -> Result<Arc<Range>, VcsError> {
        let Some(repo) = &self.inner.release.repo else {
            return Err(VcsError::Failed {
                repo: "-".into(),
                cause: "no [release] git configured".into(),
            });
        };
        let (a, b) = tokio::try_join!(self.resolve(repo, a), self.resolve(repo, b))?;
        let key = (a.sha.clone(), b.sha.clone());
        if let Some(r) = which.cache(&mut self.inner.release.cache()).get(&key) {
            return Ok(r.clone());
        }
        let r = Arc::new(match which {
            Between::Adds => repo.range_of(a, b).await?,
            Between::Lacks => repo.dropped_of(a, b).await?,
        });
        let mut c = self.inner.release.cache();
        let map = which.cache(&mut c);
        if map.len() >= MAX_RANGES {
            map.clear();
        }
        map.insert(key, r.clone());
        Ok(r)
    }

    /// What promoting `env` from `from` (what it runs) to `to` carries.
    /// Never fails: a repository that cannot answer is `git_error`.
    pub(super) async fn release_facts(
        &self,
        env: &str,
        from: Option<&Version>,
        to: &Version,
    ) -> ReleaseFacts {
        let src = &self.inner.release;
        let Some(repo) = &src.repo else {
            return ReleaseFacts::default();
        };
        let mut facts = ReleaseFacts {
            repository: Some(repo.shown().to_string()),
            ..ReleaseFacts::default()
        };
        let Some(from) = from else {
            facts.git_error = Some(format!(
                "what {env} runs is unknown, so the commits it would get cannot be listed"
            ));
            return facts;
        };
        // What the target runs that the version lacks (cached by its pair
        // like any range). In the ordinary linear case it is empty.
        let (forward, back) = tokio::join!(self.range(from, to), self.dropped(to, from));
        match forward {
            Ok(r) => {
                facts.commits = r.commits.clone();
                facts.commits_total = r.total;
                facts.commits_capped = r.capped();
                facts.migrations = migration_paths(&r.paths, &src.globs)
                    .into_iter()
                    .cloned()
                    .collect();
                facts.migration_release = !facts.migrations.is_empty();
                if facts.migration_release {
                    facts.backup = self.last_backup(env, to).await;
                }
                match back {
                    Ok(b) => {
                        facts.dropped = b.commits.clone();
                        facts.dropped_total = b.total;
                        facts.dropped_capped = b.capped();
                        facts.dropped_migrations = migration_paths(&b.paths, &src.globs)
                            .into_iter()
                            .cloned()
                            .collect();
                    }
                    Err(e) => {
                        facts.git_error = Some(format!(
                            "what {to} would drop of what {env} runs cannot be read: {e}"
                        ))
                    }
                }
            }
            Err(e) => facts.git_error = Some(e.to_string()),
        }
        facts
    }

    /// The newest backup recorded for `version` in `env`.
    pub(super) async fn last_backup(&self, env: &str, version: &Version) -> Option<Backup> {
        let h = self
            .inner
            .store
            .history(Some(env), BACKUP_LOOKBACK)
            .await
            .ok()?;
        h.iter()
            .filter(|e| {
                e.action == ActionKind::Backup
                    && e.outcome == Outcome::Succeeded
                    && e.version.as_ref() == Some(version)
            })
            .find_map(|e| {
                backup_id_of(&e.detail).map(|id| Backup {
                    id: id.to_string(),
                    at: e.finished_at.unwrap_or(e.at),
                })
            })
    }

    /// The freeze that holds for `env` now, if any.
    pub(super) fn freeze_of(&self, env: &str, now: DateTime<Utc>) -> Option<Freeze> {
        active_freeze(&self.inner.release.freezes, env, now).cloned()
    }

    /// Add the release's gates to a promotion plan: the freeze (broken
    /// with `break_freeze`) and, with `requires_backup`, the backup gate.
    /// Returns the facts the backup gate was judged on, when it needed them.
    pub(super) async fn release_gates(
        &self,
        idx: usize,
        plan: &mut PromotionPlan,
        now: DateTime<Utc>,
        break_freeze: Option<&str>,
    ) -> Option<ReleaseFacts> {
        let cfg_env = &self.inner.config.environments[idx];
        let env = cfg_env.name();
        if let Some(g) = freeze_gate(&self.inner.release.freezes, env, now, break_freeze) {
            plan.gates.retain(|x| x.name != "freeze");
            plan.gates.push(g);
        }
        if !cfg_env.gates.requires_backup {
            return None;
        }
        let facts = self
            .release_facts(env, plan.current.as_ref(), &plan.version)
            .await;
        let migrations = match &facts.git_error {
            Some(e) => Err(e.as_str()),
            None => Ok(facts.migrations.as_slice()),
        };
        if let Some(g) = backup_gate(true, plan.version.as_str(), migrations) {
            plan.gates.retain(|x| x.name != "backup");
            plan.gates.push(g);
        }
        Some(facts)
    }

    /// Before a migration release is deployed to an environment with
    /// `requires_backup`: run the backup hook and record its id. A failed
    /// backup is recorded too and refuses the deploy (exit 3).
    pub(super) async fn backup_before_deploy(
        &self,
        idx: usize,
        plan: &PromotionPlan,
        facts: Option<&ReleaseFacts>,
    ) -> Result<Option<Backup>, EngineError> {
        let cfg_env = &self.inner.config.environments[idx];
        let env = cfg_env.name();
        let migrations = facts.map(|f| f.migrations.as_slice()).unwrap_or_default();
        if !needs_backup(cfg_env.gates.requires_backup, migrations) {
            return Ok(None);
        }
        let Some(hook) = &self.inner.release.backup else {
            // Config validation makes requires_backup need a hook.
            return Err(self
                .refuse(
                    ActionKind::Promote,
                    env,
                    Some(&plan.version),
                    plan.current.as_ref(),
                    Gate::block("backup", false, "no [release] backup hook configured"),
                )
                .await);
        };
        let shown = hook.shown(env, plan.version.as_str());
        let started = Utc::now();
        let result = hook.run(env, plan.version.as_str()).await;
        let (outcome, detail) = match &result {
            Ok(id) => (
                Outcome::Succeeded,
                format!("{} ({shown})", backup_detail(id)),
            ),
            Err(e) => (Outcome::Failed, format!("backup failed: {e}")),
        };
        self.inner
            .store
            .audit_start(&NewAudit {
                at: started,
                actor: &self.inner.actor,
                action: ActionKind::Backup,
                env,
                version: Some(&plan.version),
                from_version: plan.current.as_ref(),
                outcome,
                detail: &detail,
            })
            .await?;
        match result {
            Ok(id) => Ok(Some(Backup { id, at: Utc::now() })),
            Err(e) => Err(self
                .refuse(
                    ActionKind::Promote,
                    env,
                    Some(&plan.version),
                    plan.current.as_ref(),
                    Gate::block(
                        "backup",
                        false,
                        format!(
                            "the backup before deploying {} failed, so nothing was deployed: {e}",
                            plan.version
                        ),
                    ),
                )
                .await),
        }
    }

    /// What rolling `env` back from `current` to `to` means for its
    /// database: `None` when the rollback crosses no migration (or the
    /// repository cannot tell — then `Err` says why).
    pub async fn schema_notice(
        &self,
        env: &str,
        current: &Version,
        to: &Version,
    ) -> Result<Option<SchemaNotice>, String> {
        if self.inner.release.repo.is_none() || self.inner.release.globs.is_empty() {
            return Ok(None);
        }
        let r = self.range(to, current).await.map_err(|e| e.to_string())?;
        let migrations: Vec<String> = migration_paths(&r.paths, &self.inner.release.globs)
            .into_iter()
            .cloned()
            .collect();
        let template = self
            .inner
            .config
            .env(env)
            .and_then(|e| e.restore_command.as_deref())
            .or(self.inner.config.release.restore());
        let backup = if migrations.is_empty() {
            None
        } else {
            self.last_backup(env, current).await
        };
        Ok(schema_notice(
            env,
            current.as_str(),
            migrations,
            template,
            backup,
        ))
    }
}

impl Engine {
    /// What promoting `env` would ship, with every gate checked, the
    /// freeze broken for `break_freeze` when given: what a human confirms.
    pub async fn plan_breaking(
        &self,
        env: &str,
        version: Option<&Version>,
        break_freeze: Option<&str>,
    ) -> Result<PromotionPlan, EngineError> {
        let idx = self.index(env)?;
        let mut plan = self.plan(env, version).await?;
        self.release_gates(idx, &mut plan, Utc::now(), break_freeze)
            .await;
        Ok(plan)
    }

    /// What promoting to `plan.to` carries (commits, migrations, backup).
    pub async fn release_of(&self, plan: &PromotionPlan) -> ReleaseFacts {
        self.release_facts(&plan.to, plan.current.as_ref(), &plan.version)
            .await
    }
}
