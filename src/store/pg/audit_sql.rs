//! The audit log's SQL on PostgreSQL: what an append writes (the record's
//! columns and the rows it indexes, in one statement through the server's
//! `shipdeck_append`), the finish and doubt look-ups, the durable flush and
//! the chain's state in one snapshot.

use super::*;

/// What an append writes beside its audit record, in the same transaction.
pub(super) enum Also<'a> {
    Nothing,
    Deploy {
        started: i64,
        rec: &'a DeployRecord,
    },
    Approval(&'a Approval),
    /// The caller's deploy lock (its env, pid and host), linked to the
    /// new record (schema 10): a lock it no longer holds is left alone.
    Lock(&'a LockInfo),
}

/// A new record's stored columns (its id, previous hash and hash are the
/// server's to give, under the chain's turn).
pub(super) fn new_row(r: &NewAudit<'_>, finishes: Option<i64>, note: Option<&str>) -> ChainRow {
    ChainRow {
        id: 0,
        at: ts(r.at),
        actor: r.actor.to_string(),
        action: r.action.as_str().to_string(),
        env: r.env.to_string(),
        version: r.version.map(|v| v.as_str().to_string()),
        from_version: r.from_version.map(|v| v.as_str().to_string()),
        outcome: r.outcome.as_str().to_string(),
        detail: r.detail.to_string(),
        finishes,
        note: note.map(str::to_string),
        prev_hash: None,
        hash: None,
    }
}

/// One append: `shipdeck_append` with the record's fields as `$1`..`$10`,
/// and the statement's other rows, if any, as data-modifying CTEs.
macro_rules! append_sql {
    ($also:literal) => {
        concat!(
            $also,
            " SELECT out_id, out_prev, out_hash FROM shipdeck_append(
                $1::text, $2::text, $3::text, $4::text, $5::text,
                $6::text, $7::text, $8::text, $9::bigint, $10::text)"
        )
    };
}

pub(super) const APPEND: &str = append_sql!("");
pub(super) const APPEND_DEPLOY: &str = append_sql!(
    "WITH d AS (INSERT INTO shipdeck_deploys (env, version, from_version, at, actor, kind, audit_id, url)
                VALUES ($11, $12, $13, $14, $15, $16, $17, $18))"
);
pub(super) const APPEND_APPROVAL: &str = append_sql!(
    "WITH a AS (INSERT INTO shipdeck_approvals (env, version, decision, actor, at, note)
                VALUES ($11, $12, $13, $14, $15, $16))"
);
/// A started record and its lock linked to it (`$11` env, `$12` pid,
/// `$13` host, `$14` this process's pid space: a namesake's row, the same
/// pid and hostname in another pid space, is not linked), in one statement: the append first, as a CTE (volatile,
/// so run once), then the lock's row updated with its id.
pub(super) const APPEND_LOCK: &str = "WITH a AS (
    SELECT out_id, out_prev, out_hash FROM shipdeck_append(
        $1::text, $2::text, $3::text, $4::text, $5::text,
        $6::text, $7::text, $8::text, $9::bigint, $10::text)),
  l AS (UPDATE shipdeck_locks SET audit_id = (SELECT out_id FROM a)
        WHERE env = $11::text AND pid = $12::bigint AND host = $13::text
          AND (pid_space IS NULL OR pid_space IS NOT DISTINCT FROM $14::text))
SELECT out_id, out_prev, out_hash FROM a";
/// The outcome recorded for a started record (`$1`), its first if an
/// older log holds two: its id and outcome. An "unknown" (a reconciler's
/// placeholder) counts only when `$2` (the new outcome is "unknown" too):
/// the real outcome may follow it.
pub(super) const RECORDED_FINISH: &str = "SELECT id, outcome FROM shipdeck_audit
     WHERE finishes = $1 AND (outcome <> 'unknown' OR $2) ORDER BY id LIMIT 1";
/// A record sent before (`$2`..`$11`, as `shipdeck_append` takes them)
/// in the log's tail (after `$1`), its first copy.
pub(super) const FIND_SENT: &str = "SELECT id FROM shipdeck_audit
     WHERE id > $1::bigint AND at = $2::text AND actor = $3::text AND action = $4::text
       AND env = $5::text AND version IS NOT DISTINCT FROM $6::text
       AND from_version IS NOT DISTINCT FROM $7::text AND outcome = $8::text
       AND detail = $9::text AND finishes IS NOT DISTINCT FROM $10::bigint
       AND note IS NOT DISTINCT FROM $11::text
     ORDER BY id LIMIT 1";
/// The first chain checkpoint (`$1` its id, `$2` its hash, `$3` the time),
/// or a move of the one another process stored meanwhile; committed
/// without waiting for the disk.
pub(super) const FIRST_CHECKPOINT: &str =
    "INSERT INTO shipdeck_chain_checkpoint (one, id, hash, at)
     SELECT 1, $1, $2, $3 WHERE set_config('synchronous_commit', 'off', true) = 'off'
     ON CONFLICT (one) DO UPDATE SET id = EXCLUDED.id, hash = EXCLUDED.hash, at = EXCLUDED.at
     WHERE shipdeck_chain_checkpoint.id < EXCLUDED.id";
/// The stored chain checkpoint moved forward to `$1` (`$2`, at `$3`),
/// unless another session holds its row (moving it too): then nothing,
/// at once, rather than a wait behind that move. Committed without
/// waiting for the disk.
pub(super) const MOVE_CHECKPOINT: &str =
    "UPDATE shipdeck_chain_checkpoint SET id = $1, hash = $2, at = $3
     WHERE one = (SELECT one FROM shipdeck_chain_checkpoint WHERE one = 1 AND id < $1
                  FOR UPDATE SKIP LOCKED)
       AND set_config('synchronous_commit', 'off', true) = 'off'";
pub(super) const FLUSH: &str = "INSERT INTO shipdeck_flush (pid, at) VALUES (pg_backend_pid(), $1)
     ON CONFLICT (pid) DO UPDATE SET at = EXCLUDED.at";
/// The audit log's state in one statement (one snapshot): the highest id,
/// the counter, the stored checkpoint, the id the walk may start from —
/// the furthest of this process's head (`$1`, `$2`) and the stored
/// checkpoint whose record still carries that hash — and the integrity
/// events (first row only); then the records from that id on, one a row
/// (none when the key still equals `$3`, `$4` and the stored checkpoint
/// `$5`, `$6`: nothing was added, nothing repaired).
pub(super) const CHAIN_STATE: &str = "WITH k AS (
    SELECT (SELECT MAX(id) FROM shipdeck_audit) AS max_id,
           (SELECT last FROM shipdeck_audit_seq WHERE one = 1) AS last,
           c.id AS cp_id, c.hash AS cp_hash
    FROM (SELECT 1) one LEFT JOIN shipdeck_chain_checkpoint c ON c.one = 1),
  f AS (
    SELECT GREATEST(
        (SELECT a.id FROM shipdeck_audit a WHERE a.id = $1::bigint AND a.hash = $2::text),
        (SELECT a.id FROM shipdeck_audit a, k WHERE a.id = k.cp_id AND a.hash = k.cp_hash)) AS from_id),
  w AS (
    SELECT a.* FROM shipdeck_audit a, k, f
    WHERE a.id >= COALESCE(f.from_id, 0)
      AND NOT (k.max_id IS NOT DISTINCT FROM $3::bigint AND COALESCE(k.last, 0) = $4::bigint
               AND k.cp_id IS NOT DISTINCT FROM $5::bigint AND k.cp_hash IS NOT DISTINCT FROM $6::text))
SELECT k.max_id, k.last, k.cp_id, k.cp_hash, f.from_id,
       CASE WHEN row_number() OVER (ORDER BY w.id) = 1 THEN
           (SELECT json_agg(json_build_array(e.at, e.what) ORDER BY e.id)
            FROM shipdeck_integrity_events e)::text END,
       w.id, w.at, w.actor, w.action, w.env, w.version, w.from_version, w.outcome,
       w.detail, w.finishes, w.note, w.prev_hash, w.hash
FROM k CROSS JOIN f LEFT JOIN w ON true
ORDER BY w.id";
/// The chain check's common case (see `PgStore::chain_report_lean`), in
/// one statement (one snapshot): a first row with the counter, the stored
/// checkpoint and the integrity events (its record columns NULL), then the
/// records from the further of this process's head `$1` and the stored
/// checkpoint on, by the primary key — no other table joined, no window,
/// no start point vouched for on the server (the client holds the first
/// record against the point it starts from). `$1` reaches the scan through
/// sub-SELECTs, so that each session keeps one plan (an index range scan)
/// instead of planning every check; the upper bound (a million records
/// past `$1`) only keeps that plan a range scan on any log. The state row
/// also carries the log's highest id (one backward probe of the primary
/// key): a record past what was read — one inserted far ahead around the
/// counter, or a walk cut by the bound — hands the check to
/// [`CHAIN_STATE`], which judges the jump.
pub(super) const CHAIN_SINCE: &str = "SELECT
       (SELECT last FROM shipdeck_audit_seq WHERE one = 1),
       c.id, c.hash,
       (SELECT json_agg(json_build_array(e.at, e.what) ORDER BY e.id)
        FROM shipdeck_integrity_events e)::text,
       NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
       NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text,
       (SELECT MAX(id) FROM shipdeck_audit)
FROM (SELECT 1) one LEFT JOIN shipdeck_chain_checkpoint c ON c.one = 1
UNION ALL
(SELECT NULL, NULL, NULL, NULL,
       a.id, a.at, a.actor, a.action, a.env, a.version, a.from_version, a.outcome,
       a.detail, a.finishes, a.note, a.prev_hash, a.hash, NULL
 FROM shipdeck_audit a
 WHERE a.id >= GREATEST((SELECT $1::bigint),
                        (SELECT k.id FROM shipdeck_chain_checkpoint k WHERE k.one = 1))
   AND a.id < (SELECT $1::bigint + 1000000)
 ORDER BY a.id)";
