//! The audit chain on SQLite: reading chain rows and the checkpoint, the
//! chain's key, and appending audit records and their outcomes.

use super::*;

pub(super) fn chain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainRow> {
    Ok(ChainRow {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        env: r.get(4)?,
        version: r.get(5)?,
        from_version: r.get(6)?,
        outcome: r.get(7)?,
        detail: r.get(8)?,
        finishes: r.get(9)?,
        note: r.get(10)?,
        prev_hash: r.get(11)?,
        hash: r.get(12)?,
    })
}

/// The last verified record, if the store has one (a store written by an
/// earlier shipdeck, or opened read-only before, has none).
pub(super) fn read_checkpoint(c: &Connection) -> Option<chain::Checkpoint> {
    c.query_row(
        "SELECT id, hash FROM chain_checkpoint WHERE one = 1",
        [],
        |r| {
            Ok(chain::Checkpoint {
                id: r.get(0)?,
                hash: r.get(1)?,
            })
        },
    )
    .ok()
}

pub(super) fn chain_key(c: &mut Connection) -> rusqlite::Result<ChainKey> {
    let c = c.transaction()?;
    let dv: i64 = c.query_row("PRAGMA data_version", [], |r| r.get(0))?;
    let max: Option<i64> = c.query_row("SELECT MAX(id) FROM audit", [], |r| r.get(0))?;
    let seq: Option<i64> = c
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    c.commit()?;
    Ok((dv, max, seq))
}

/// Append one audit record, chained to the newest one. Runs inside an
/// immediate transaction (see [`SqliteStore::with_audit`]).
pub(super) fn insert_audit(
    c: &Connection,
    r: &NewAudit<'_>,
    finishes: Option<i64>,
    note: Option<&str>,
) -> rusqlite::Result<i64> {
    let last: Option<(i64, Option<String>)> = c
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let seq: i64 = c
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let (last_id, prev) = last
        .map(|(i, h)| (i, h.unwrap_or_default()))
        .unwrap_or((0, String::new()));
    let row = ChainRow {
        id: last_id.max(seq) + 1,
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
        prev_hash: Some(prev.clone()),
        hash: None,
    };
    let hash = row.compute_hash(&prev);
    c.execute(
        &format!("INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        params![
            row.id,
            row.at,
            row.actor,
            row.action,
            row.env,
            row.version,
            row.from_version,
            row.outcome,
            row.detail,
            row.finishes,
            row.note,
            prev,
            hash
        ],
    )?;
    Ok(row.id)
}

/// The outcome already recorded for `started` (its record's id and
/// outcome), if any: one finish per start (see [`second_finish`]).
pub(super) fn recorded_finish(
    c: &Connection,
    started: i64,
    outcome: Outcome,
) -> rusqlite::Result<Option<(i64, String)>> {
    // An "unknown" (a reconciler's placeholder) counts only against
    // another "unknown": the real outcome may follow it.
    c.query_row(
        "SELECT id, outcome FROM audit WHERE finishes = ?1 AND (outcome <> 'unknown' OR ?2)
         ORDER BY id LIMIT 1",
        params![started, outcome == Outcome::Unknown],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Append the outcome record of `started`, copying its actor, action, env
/// and versions; or, when it has one already, write nothing and return that
/// one (a retried write whose first attempt went in, an interrupted
/// action's "unknown" after its outcome: the caller judges). Inside the
/// immediate transaction, so no other writer finishes it in between.
pub(super) fn insert_finish(
    c: &Connection,
    started: i64,
    at: DateTime<Utc>,
    outcome: Outcome,
    detail: &str,
) -> rusqlite::Result<Option<(i64, String)>> {
    if let Some(found) = recorded_finish(c, started, outcome)? {
        return Ok(Some(found));
    }
    let (actor, action, env, version, from): (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    ) = c.query_row(
        "SELECT actor, action, env, version, from_version FROM audit WHERE id = ?1",
        params![started],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let action = ActionKind::parse(&action).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(
            1,
            format!("action {action:?}"),
            rusqlite::types::Type::Text,
        )
    })?;
    let parse = |v: Option<String>| {
        v.map(|v| {
            Version::parse(&v).map_err(|e| {
                rusqlite::Error::InvalidColumnType(3, e.to_string(), rusqlite::types::Type::Text)
            })
        })
        .transpose()
    };
    let (version, from) = (parse(version)?, parse(from)?);
    insert_audit(
        c,
        &NewAudit {
            at,
            actor: &actor,
            action,
            env: &env,
            version: version.as_ref(),
            from_version: from.as_ref(),
            outcome,
            detail,
        },
        Some(started),
        None,
    )?;
    Ok(None)
}
