//! A status view's reads in one round trip: one statement (one snapshot)
//! whose answer is a JSON document with every part the view shows — the
//! latest deploys, per environment its recent deploys, locks, last verdict
//! decisions and caught versions, and who else is watching. The same answers as the
//! single reads ([`super::PgStore`]'s `Store` methods), parsed by the same
//! rules; `tests/store_suite.rs` holds both stores to that.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::PgStore;
use crate::domain::{ActionKind, Approval, Decision, DeployKind, DeployRecord, Version};
use crate::store::sqlite::{holder_gone, legacy_note, ts};
use crate::store::{
    EnvKeys, EnvReads, LockInfo, MonitorRecord, Presence, StatusReads, StoreError, Unfinished,
    approvals_disagree,
};

/// Where the store put a deploy (row `d`) in its one order, as SQL: the id
/// of the audit record its outcome went in with (the same statement),
/// else — a row without that record — its started record's
/// ([`DeployRecord::seq`]).
macro_rules! deploy_seq_sql {
    () => {
        "COALESCE((SELECT MIN(f.id) FROM shipdeck_audit f
            WHERE f.finishes = d.audit_id AND f.outcome = 'succeeded'), d.audit_id)"
    };
}
pub(super) use deploy_seq_sql;

/// Where the store put the opening of a monitoring window (row `m`) in its
/// one order, as SQL: the id of the window's own `monitor` started audit
/// record, written with the row ([`MonitorRecord::seq`]); `NULL` for a row
/// written without it, judged by its dates.
macro_rules! monitor_seq_sql {
    () => {
        "m.start_id"
    };
}
pub(super) use monitor_seq_sql;

/// A deploys row as a JSON array, in the order of [`DeployJ`]'s fields
/// (serde reads a struct from an array as well; without the keys the
/// answer is about half the size: a view's recent deploys are most of it).
const DEPLOY_JSON: &str = concat!(
    "json_build_array(d.env, d.version, d.from_version, d.at, d.actor, d.kind, d.url, ",
    deploy_seq_sql!(),
    ")"
);

/// A lock row as JSON with whether its owner still holds it (as `LOCK_ROW`).
fn lock_json(key: &str) -> String {
    format!(
        concat!(
            "(SELECT json_build_object('holder', l.holder, 'pid', l.pid, 'host', l.host,
            'acquired_at', l.acquired_at, 'expires_at', l.expires_at,
            'audit_id', l.audit_id, 'pid_space', l.pid_space, 'alive', ",
            super::locks::lock_alive_sql!(),
            ", 'unexpired', ",
            super::locks::lock_unexpired_sql!(),
            ") FROM shipdeck_locks l WHERE l.env = {key})"
        ),
        key = key
    )
}

/// `$1` envs, `$2` their watch keys, `$3` how many recent deploys, `$4`
/// presence's freshness, `$5`/`$6` (env, version) pairs the decisions are
/// asked about besides the recent deploys'.
///
/// Every part is an index probe bounded by what the view shows, not by the
/// history (schema version 4): the latest deploy of each environment (a
/// skip scan over the environments, then the newest of each), the recent
/// deploys, the decisions about the versions above (in the audit log and
/// in the approvals table, compared), the caught versions among the
/// recent deploys' (a window's outcome is on the record that finishes its
/// start, as `caught_versions` reads it), and the unfinished deploys (the
/// ids the trigger of schema version 4 keeps, each checked against the
/// log itself, and each asked environment's newest deploy start when its
/// only outcomes read "unknown": one backward probe of the (env, id) index).
///
/// The recent deploys of each environment are read once (`r`), and the
/// versions they name (`ran`: every rollback target the view can offer,
/// see [`crate::store::caught_among`]) and those asked about (`asked`:
/// whose decisions the view can use, see [`crate::store::decisions_about`])
/// are derived from them once, not again by every part that needs them.
///
/// Every parameter is read through a sub-SELECT (`(SELECT $1::text[])`), so
/// that no plan depends on its value: planning this statement cost about
/// as much as running it (~1.4 ms of ~3.6 on the bench's seed), and
/// PostgreSQL kept planning it anew for every read, finding a plan made
/// for the values at hand a little cheaper than one for any values. With
/// the values out of the planner's sight both plans are the same, so after
/// its first five reads a session keeps one plan for the statement
/// (`plan_cache_mode = auto`; `pg_prepared_statements` shows it) and a
/// read is execution only. No choice in it hangs on the values: the lists
/// of environments and versions are joined against (by index), and the
/// number of recent deploys is the view's fixed 50.
/// Each environment's decisions and caught versions are then one scan of
/// an (env, version) index — the decisions' of schema version 4, the
/// monitoring windows' of version 6 — for `version = ANY (those versions)`:
/// a probe per version, however long the history. A table small enough
/// that reading it whole is cheaper than ~50 probes (a young approvals
/// table) is read whole, the versions looked up in a hash; one probe per
/// version, as a lateral join forced it, cost the bench's seed ~3 ms a
/// read in scans of a 200-row table, one per version.
static STATUS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH e AS (SELECT * FROM unnest((SELECT $1::text[]), (SELECT $2::text[])) WITH ORDINALITY AS e(env, watch, ord)),
  q AS (SELECT * FROM unnest((SELECT $5::text[]), (SELECT $6::text[])) AS q(env, version)),
  r AS MATERIALIZED (SELECT x.* FROM (SELECT DISTINCT e.env FROM e) n
      CROSS JOIN LATERAL (SELECT * FROM shipdeck_deploys x
          WHERE x.env = n.env ORDER BY x.id DESC LIMIT (SELECT $3::bigint)) x),
  ran AS MATERIALIZED (SELECT DISTINCT r.env, w.version FROM r
      CROSS JOIN LATERAL (VALUES (r.version), (r.from_version)) w(version)
      WHERE w.version IS NOT NULL),
  asked AS MATERIALIZED (SELECT ran.env, ran.version FROM ran UNION SELECT q.env, q.version FROM q)
SELECT json_build_object(
  'latest', COALESCE((SELECT json_agg({DEPLOY_JSON} ORDER BY d.id) FROM
      (WITH RECURSIVE names(env) AS (
          (SELECT n.env FROM shipdeck_deploys n ORDER BY n.env LIMIT 1)
          UNION ALL
          SELECT (SELECT n.env FROM shipdeck_deploys n WHERE n.env > names.env ORDER BY n.env LIMIT 1)
          FROM names WHERE names.env IS NOT NULL)
       SELECT l.* FROM names CROSS JOIN LATERAL (SELECT * FROM shipdeck_deploys x
           WHERE x.env = names.env ORDER BY x.id DESC LIMIT 1) l) d), '[]'),
  'present', COALESCE((SELECT json_agg(json_build_object('host', p.host, 'pid', p.pid, 'actor', p.actor,
      'since', p.since, 'last_seen', p.last_seen, 'pid_space', NULLIF(p.pid_space, ''))
      ORDER BY p.since, p.host, p.pid, p.pid_space)
      FROM shipdeck_presence p WHERE p.last_seen >= (SELECT $4::text)), '[]'),
  'envs', COALESCE((SELECT json_agg(json_build_object(
      'recent', COALESCE((SELECT json_agg({DEPLOY_JSON} ORDER BY d.id) FROM r d WHERE d.env = e.env), '[]'),
      'lock', {lock_env},
      'watch', {lock_watch},
      'monitor', (SELECT json_build_object('version', m.version, 'started_at', m.started_at,
          'finished_at', m.finished_at, 'verdict', m.verdict, 'metric', m.metric, 'reason', m.reason,
          'seq', {monitor_seq})
          FROM shipdeck_monitor_runs m WHERE m.env = e.env ORDER BY m.id DESC LIMIT 1),
      'decisions', COALESCE((SELECT json_agg(json_build_array(a.action, a.version, a.actor, a.at,
          a.note, a.detail, a.id) ORDER BY a.id)
          FROM shipdeck_audit a WHERE a.env = e.env
            AND a.version = ANY (ARRAY(SELECT v.version FROM asked v WHERE v.env = e.env))
            AND a.finishes IS NULL AND a.outcome = 'succeeded' AND a.action IN ('approve', 'reject')), '[]'),
      'indexed', COALESCE((SELECT json_agg(json_build_array(x.version, x.decision, x.actor, x.at) ORDER BY x.id)
          FROM shipdeck_approvals x WHERE x.env = e.env
            AND x.version = ANY (ARRAY(SELECT v.version FROM asked v WHERE v.env = e.env))), '[]'),
      'caught', COALESCE((SELECT json_agg(c.version ORDER BY c.first) FROM
          (SELECT s.version, MIN(s.id) AS first FROM shipdeck_audit s
            WHERE s.env = e.env AND s.version = ANY (ARRAY(SELECT v.version FROM ran v WHERE v.env = e.env))
              AND s.action = 'monitor' AND s.finishes IS NULL AND COALESCE((SELECT f.outcome FROM shipdeck_audit f
                  WHERE f.id = (SELECT MIN(g.id) FROM shipdeck_audit g WHERE g.finishes = s.id)),
                  s.outcome) = 'failed'
            GROUP BY s.version) c), '[]')
  ) ORDER BY e.ord) FROM e), '[]'),
  'unfinished', COALESCE((SELECT json_agg(json_build_object('id', u.id, 'at', u.at, 'actor', u.actor,
      'action', u.action, 'env', u.env, 'version', u.version, 'from_version', u.from_version,
      'superseded_by', (SELECT MIN(l.id) FROM shipdeck_audit l
          WHERE l.env = u.env AND l.id > u.id AND l.finishes IS NULL
            AND l.outcome = 'started' AND l.action IN ('promote', 'rollback')),
      'unknown', u.unknown) ORDER BY u.id)
      FROM ((SELECT u.*, false AS unknown FROM (SELECT o.id FROM shipdeck_unfinished o OFFSET 0) o
          CROSS JOIN LATERAL (SELECT * FROM shipdeck_audit u
          WHERE u.id = o.id AND u.finishes IS NULL AND u.outcome = 'started' AND u.action IN ('promote', 'rollback')
            AND NOT EXISTS (SELECT 1 FROM shipdeck_audit f WHERE f.finishes = u.id) OFFSET 0) u)
        UNION ALL
        SELECT u.*, true FROM (SELECT DISTINCT e.env FROM e) n
          CROSS JOIN LATERAL (SELECT * FROM shipdeck_audit u
          WHERE u.env = n.env AND u.finishes IS NULL AND u.outcome = 'started' AND u.action IN ('promote', 'rollback')
          ORDER BY u.id DESC LIMIT 1) u
          WHERE EXISTS (SELECT 1 FROM shipdeck_audit f WHERE f.finishes = u.id)
            AND NOT EXISTS (SELECT 1 FROM shipdeck_audit f WHERE f.finishes = u.id AND f.outcome <> 'unknown')) u), '[]'),
  'key', json_build_array((SELECT MAX(id) FROM shipdeck_audit),
      (SELECT last FROM shipdeck_audit_seq WHERE one = 1)),
  'cp', (SELECT json_build_array(c.id, c.hash) FROM shipdeck_chain_checkpoint c WHERE c.one = 1)
)::text",
        lock_env = lock_json("e.env"),
        lock_watch = lock_json("e.watch"),
        monitor_seq = monitor_seq_sql!(),
    )
});

#[derive(Deserialize)]
struct Snap {
    latest: Vec<DeployJ>,
    present: Vec<PresenceJ>,
    envs: Vec<EnvJ>,
    unfinished: Vec<UnfinishedJ>,
    /// The audit log's highest id and counter: the chain's key.
    key: (Option<i64>, Option<i64>),
    /// The stored chain checkpoint (id, hash), part of what a report is of.
    cp: Option<(i64, String)>,
}

#[derive(Deserialize)]
struct UnfinishedJ {
    id: i64,
    at: String,
    actor: String,
    action: String,
    env: String,
    version: Option<String>,
    from_version: Option<String>,
    superseded_by: Option<i64>,
    unknown: bool,
}

/// A deploy as [`DEPLOY_JSON`] writes it: an array, so the fields' order
/// here is the columns' order there.
#[derive(Deserialize)]
struct DeployJ {
    env: String,
    version: String,
    from_version: Option<String>,
    at: String,
    actor: String,
    kind: String,
    url: Option<String>,
    seq: Option<i64>,
}

#[derive(Deserialize)]
struct PresenceJ {
    host: String,
    pid: i64,
    actor: String,
    since: String,
    last_seen: String,
    #[serde(default)]
    pid_space: Option<String>,
}

#[derive(Deserialize)]
struct LockJ {
    holder: String,
    pid: i64,
    host: String,
    acquired_at: String,
    expires_at: String,
    /// The started record it is linked to (schema 10).
    audit_id: Option<i64>,
    /// The holder's pid space (schema 10; `None` for an older shipdeck's).
    #[serde(default)]
    pid_space: Option<String>,
    alive: bool,
    /// Not expired on the server's clock (`lock_unexpired_sql`).
    unexpired: bool,
}

#[derive(Deserialize)]
struct MonitorJ {
    version: String,
    started_at: String,
    finished_at: Option<String>,
    verdict: String,
    metric: Option<String>,
    reason: String,
    #[serde(default)]
    seq: Option<i64>,
}

#[derive(Deserialize)]
struct EnvJ {
    recent: Vec<DeployJ>,
    lock: Option<LockJ>,
    watch: Option<LockJ>,
    monitor: Option<MonitorJ>,
    decisions: Vec<DecisionRow>,
    indexed: Vec<(String, String, String, String)>,
    caught: Vec<String>,
}

/// A decision as the audit log records it (read from a JSON array in
/// this order, or an object).
#[derive(Deserialize)]
pub(super) struct DecisionRow {
    pub action: String,
    pub version: Option<String>,
    pub actor: String,
    pub at: String,
    pub note: Option<String>,
    pub detail: String,
    /// Its audit record's id: its place in the store's order.
    pub id: i64,
}

impl PgStore {
    pub(super) fn read_status(
        &self,
        envs: &[EnvKeys<'_>],
        recent: usize,
        _now: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
    ) -> Result<StatusReads, StoreError> {
        let names: Vec<&str> = envs.iter().map(|k| k.env).collect();
        let watches: Vec<&str> = envs.iter().map(|k| k.watch).collect();
        let (asked_envs, asked): (Vec<&str>, Vec<&str>) = envs
            .iter()
            .flat_map(|k| k.versions.iter().map(|v| (k.env, v.as_str())))
            .unzip();
        let recent = i64::try_from(recent).unwrap_or(i64::MAX);
        let fresh = ts(fresh_since);
        let doc: String = self.with(true, |s| {
            let st = s.st(&STATUS_SQL)?;
            s.client
                .query_one(
                    &st,
                    &[&names, &watches, &recent, &fresh, &asked_envs, &asked],
                )?
                .try_get(0)
        })?;
        let snap: Snap = serde_json::from_str(&doc)
            .map_err(|e| self.corrupt(format!("the status read's answer: {e}")))?;
        if snap.envs.len() != envs.len() {
            return Err(self.corrupt(format!(
                "the status read answered for {} environments, not {}",
                snap.envs.len(),
                envs.len()
            )));
        }
        let mut present = Vec::with_capacity(snap.present.len());
        for p in snap.present {
            let pid = u32::try_from(p.pid).unwrap_or(u32::MAX);
            if holder_gone(pid, &p.host, p.pid_space.as_deref()) {
                continue;
            }
            present.push(Presence {
                actor: p.actor,
                host: p.host,
                pid,
                pid_space: p.pid_space,
                since: self.parse_time(&p.since)?,
                last_seen: self.parse_time(&p.last_seen)?,
            });
        }
        let unfinished = snap
            .unfinished
            .into_iter()
            .map(|u| {
                Ok(Unfinished {
                    id: u.id,
                    at: self.parse_time(&u.at)?,
                    action: ActionKind::parse(&u.action)
                        .ok_or_else(|| self.corrupt(format!("action {:?}", u.action)))?,
                    version: self
                        .parse_version(u.version)?
                        .ok_or_else(|| self.corrupt(format!("deploy #{} without version", u.id)))?,
                    from_version: self.parse_version(u.from_version)?,
                    actor: u.actor,
                    env: u.env,
                    superseded_by: u.superseded_by,
                    unknown: u.unknown,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut out = StatusReads {
            latest: self.deploys_of(snap.latest)?,
            envs: Vec::with_capacity(envs.len()),
            present,
            unfinished,
            integrity: None,
        };
        for (k, e) in envs.iter().zip(snap.envs) {
            out.envs.push(EnvReads {
                recent: self.deploys_of(e.recent)?,
                lock: e
                    .lock
                    .map(|l| self.live_lock(k.env, l))
                    .transpose()?
                    .flatten(),
                watch: e
                    .watch
                    .map(|l| self.live_lock(k.watch, l))
                    .transpose()?
                    .flatten(),
                last_monitor: e
                    .monitor
                    .map(|m| {
                        Ok::<_, StoreError>(MonitorRecord {
                            env: k.env.to_string(),
                            version: Version::parse(&m.version).map_err(|e| self.corrupt(e))?,
                            started_at: self.parse_time(&m.started_at)?,
                            finished_at: m.finished_at.map(|f| self.parse_time(&f)).transpose()?,
                            verdict: m.verdict,
                            metric: m.metric,
                            reason: m.reason,
                            seq: m.seq,
                        })
                    })
                    .transpose()?,
                approvals: self.decisions(k.env, e.decisions, e.indexed)?,
                caught: e
                    .caught
                    .iter()
                    .map(|v| Version::parse(v).map_err(|e| self.corrupt(e)))
                    .collect::<Result<_, _>>()?,
            });
        }
        // Last, as the engine asks: the decisions above may have noted a
        // disagreement. A chain nobody added to since this process judged
        // it needs no round trip of its own.
        out.integrity = self.integrity_given(
            (snap.key.0, snap.key.1.unwrap_or(0)),
            snap.cp
                .map(|(id, hash)| crate::store::chain::Checkpoint { id, hash }),
        );
        Ok(out)
    }

    fn deploys_of(&self, rows: Vec<DeployJ>) -> Result<Vec<DeployRecord>, StoreError> {
        rows.into_iter()
            .map(|d| {
                Ok(DeployRecord {
                    seq: d.seq,
                    version: Version::parse(&d.version).map_err(|e| self.corrupt(e))?,
                    from_version: self.parse_version(d.from_version)?,
                    at: self.parse_time(&d.at)?,
                    kind: DeployKind::parse(&d.kind)
                        .ok_or_else(|| self.corrupt(format!("deploy kind {:?}", d.kind)))?,
                    env: d.env,
                    actor: d.actor,
                    url: d.url,
                })
            })
            .collect()
    }

    fn live_lock(&self, env: &str, l: LockJ) -> Result<Option<LockInfo>, StoreError> {
        let info = LockInfo {
            env: env.to_string(),
            holder: l.holder,
            pid: u32::try_from(l.pid).map_err(|_| self.corrupt(format!("lock pid {}", l.pid)))?,
            host: l.host,
            acquired_at: self.parse_time(&l.acquired_at)?,
            audit_id: l.audit_id,
            expires_at: self.parse_time(&l.expires_at)?,
            pid_space: l.pid_space.clone(),
        };
        Ok(live(info, l.alive && l.unexpired, l.pid_space.as_deref()))
    }

    /// Decisions about `env` as the audit log records them; the approvals
    /// table is only an index, and a disagreement is reported.
    pub(super) fn decisions(
        &self,
        env: &str,
        rows: Vec<DecisionRow>,
        indexed: Vec<(String, String, String, String)>,
    ) -> Result<Vec<Approval>, StoreError> {
        let from_audit = rows
            .into_iter()
            .map(|r| {
                let version = r
                    .version
                    .ok_or_else(|| self.corrupt("a decision without version"))?;
                Ok(Approval {
                    seq: Some(r.id),
                    env: env.to_string(),
                    version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                    decision: if r.action == "approve" {
                        Decision::Go
                    } else {
                        Decision::NoGo
                    },
                    at: self.parse_time(&r.at)?,
                    note: r.note.or_else(|| legacy_note(&r.action, &r.detail)),
                    actor: r.actor,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if let Some(note) = approvals_disagree(env, &from_audit, &indexed) {
            self.note(note);
        }
        Ok(from_audit)
    }
}

/// A lock that still holds: `held` on the store's side (its owner's
/// session alive, not expired on the server's clock: the asker's clock
/// judges nothing) and not held by a process that is provably gone: one of
/// this process's pid space (`space`, the row's; see `holder_gone`), never
/// merely one of the same hostname.
pub(super) fn live(info: LockInfo, held: bool, space: Option<&str>) -> Option<LockInfo> {
    let stale = !held || holder_gone(info.pid, &info.host, space);
    (!stale).then_some(info)
}
