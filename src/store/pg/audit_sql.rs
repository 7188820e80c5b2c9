//! The audit log's SQL on PostgreSQL: what an append writes (the record's
//! columns and the rows it indexes, in one statement through the server's
//! `shipdeck_append`), the finish and doubt look-ups, the durable flush and
//! the chain's state in one snapshot.

use std::sync::LazyLock;

use super::*;

/// What an append writes beside its audit record, in the same transaction.
pub(super) enum Also<'a> {
    Nothing,
    Deploy { started: i64, rec: &'a DeployRecord },
    Approval(&'a Approval),
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

/// The actions and outcomes a record may name (`ActionKind::parse`,
/// `Outcome::parse`): what the checked append's walk reads as readable. A
/// kind missing here only makes that check stricter than the client's (the
/// append then takes the client's walk, which judges it exactly).
pub(super) const ACTIONS: [ActionKind; 9] = [
    ActionKind::Promote,
    ActionKind::Approve,
    ActionKind::Reject,
    ActionKind::Rollback,
    ActionKind::Monitor,
    ActionKind::Verdict,
    ActionKind::Canary,
    ActionKind::Backup,
    ActionKind::Review,
];
pub(super) const OUTCOMES: [Outcome; 5] = [
    Outcome::Started,
    Outcome::Succeeded,
    Outcome::Failed,
    Outcome::Refused,
    Outcome::Unknown,
];

/// The chain check of a checked append (see [`append_checked_sql`]), as
/// CTEs, with this process's last judged point as `{own_id}`/`{own_hash}`
/// and the readable kinds as `{actions}`/`{outcomes}`. In the statement's
/// one snapshot, before the append takes the chain's turn: the key, the
/// stored checkpoint, the walk's start (the furthest of this process's
/// point and the stored checkpoint whose record still carries its hash, as
/// [`CHAIN_STATE`]) and `ok`, true only when the client's walk from there
/// (`chain::verify_from` and `chain::unreadable`) would find nothing wrong:
/// no checkpoint passed over, the start record hashing to itself, every
/// record after it the next id, following the one before and hashing to
/// its hash (the same SQL as `shipdeck_append`'s), a known action and
/// outcome and an RFC 3339 time (a stricter pattern than the client's:
/// UTC or a numeric offset, a real day), and the counter not past the last
/// record. Stricter is safe: `ok` false only sends the append the client's
/// way. `n` is how many records were walked (start included).
const CHECK: &str = r#"WITH k AS (
    SELECT (SELECT MAX(id) FROM shipdeck_audit) AS max_id,
           COALESCE((SELECT last FROM shipdeck_audit_seq WHERE one = 1), 0) AS last,
           c.id AS cp_id, c.hash AS cp_hash
    FROM (SELECT 1) one LEFT JOIN shipdeck_chain_checkpoint c ON c.one = 1),
  f AS (
    SELECT COALESCE(GREATEST(
        (SELECT a.id FROM shipdeck_audit a WHERE a.id = {own_id}::bigint AND a.hash = {own_hash}::text),
        (SELECT a.id FROM shipdeck_audit a, k WHERE a.id = k.cp_id AND a.hash = k.cp_hash)), 0) AS from_id),
  w AS MATERIALIZED (
    SELECT a.id, a.hash, a.prev_hash, a.at, a.action, a.outcome,
           lag(a.id) OVER o AS before_id, lag(a.hash) OVER o AS before_hash,
           encode(sha256(convert_to(COALESCE(a.prev_hash, '') || chr(10) || '[' || a.id::text
               || ',' || to_json(a.at)::text || ',' || to_json(a.actor)::text
               || ',' || to_json(a.action)::text || ',' || to_json(a.env)::text
               || ',' || COALESCE(to_json(a.version)::text, 'null')
               || ',' || COALESCE(to_json(a.from_version)::text, 'null')
               || ',' || to_json(a.outcome)::text || ',' || to_json(a.detail)::text
               || ',' || COALESCE(a.finishes::text, 'null')
               || ',' || COALESCE(to_json(a.note)::text, 'null') || ']', 'UTF8')), 'hex') AS computed
    FROM shipdeck_audit a, f WHERE a.id >= f.from_id
    WINDOW o AS (ORDER BY a.id)),
  chk AS (
    SELECT k.max_id, k.last, k.cp_id, k.cp_hash,
           (SELECT w.hash FROM w ORDER BY w.id DESC LIMIT 1) AS tip_hash,
           (SELECT count(*) FROM w) AS n,
           (SELECT json_agg(json_build_array(e.at, e.what) ORDER BY e.id)
            FROM shipdeck_integrity_events e)::text AS events,
           COALESCE({own_id}::bigint, 0) <= f.from_id
           AND COALESCE(k.cp_id, 0) <= f.from_id
           AND k.last <= COALESCE(k.max_id, 0)
           AND NOT EXISTS (SELECT 1 FROM w WHERE NOT COALESCE(
               w.hash IS NOT NULL AND w.computed = w.hash
               AND CASE WHEN w.id = f.from_id THEN true
                        WHEN w.before_id IS NULL THEN f.from_id = 0 AND w.id = 1
                                                      AND COALESCE(w.prev_hash, '') = ''
                        ELSE w.id = w.before_id + 1 AND COALESCE(w.prev_hash, '') = w.before_hash END
               AND w.action = ANY({actions}::text[]) AND w.outcome = ANY({outcomes}::text[])
               AND CASE WHEN w.at ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$'
                        THEN substr(w.at, 9, 2)::int <= extract(day FROM make_date(substr(w.at, 1, 4)::int,
                                 substr(w.at, 6, 2)::int, 1) + interval '1 month' - interval '1 day')
                        ELSE false END, false)) AS ok
    FROM k, f)"#;

/// One append with its chain check in the same statement (one round trip
/// instead of two): `also` (a data-modifying CTE written as `INSERT ...
/// SELECT ... FROM chk WHERE chk.ok`, or empty), then `shipdeck_append`
/// with the record's fields as `$1`..`$10`, called only when the check
/// vouched (`chk.ok`; otherwise no row and nothing written), and the check
/// parameters from `$first` on (this process's point, its hash, the
/// actions, the outcomes). Answers the new record's id, previous hash and
/// hash, then the check's key (highest id, counter), stored checkpoint,
/// the walked head's hash, the rows walked and the integrity events.
fn append_checked_sql(also: &str, first: usize) -> String {
    let check = CHECK
        .replace("{own_id}", &format!("${first}"))
        .replace("{own_hash}", &format!("${}", first + 1))
        .replace("{actions}", &format!("${}", first + 2))
        .replace("{outcomes}", &format!("${}", first + 3));
    format!(
        "{check}{also}
SELECT a.out_id, a.out_prev, a.out_hash, chk.max_id, chk.last, chk.cp_id, chk.cp_hash,
       chk.tip_hash, chk.n, chk.events
FROM chk CROSS JOIN LATERAL shipdeck_append(
    $1::text, $2::text, $3::text, $4::text, $5::text,
    $6::text, $7::text, $8::text, $9::bigint, $10::text) a
WHERE chk.ok"
    )
}

pub(super) static APPEND_CHECKED: LazyLock<String> = LazyLock::new(|| append_checked_sql("", 11));
pub(super) static APPEND_DEPLOY_CHECKED: LazyLock<String> = LazyLock::new(|| {
    append_checked_sql(
        ",
  d AS (INSERT INTO shipdeck_deploys (env, version, from_version, at, actor, kind, audit_id, url)
        SELECT $11::text, $12::text, $13::text, $14::text, $15::text, $16::text, $17::bigint, $18::text
        FROM chk WHERE chk.ok)",
        19,
    )
});
pub(super) static APPEND_APPROVAL_CHECKED: LazyLock<String> = LazyLock::new(|| {
    append_checked_sql(
        ",
  p AS (INSERT INTO shipdeck_approvals (env, version, decision, actor, at, note)
        SELECT $11::text, $12::text, $13::text, $14::text, $15::text, $16::text
        FROM chk WHERE chk.ok)",
        17,
    )
});
