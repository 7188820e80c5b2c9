//! The audit log's hash chain: every record carries a SHA-256 over its own
//! canonical content and the hash of the record before it, so rewriting,
//! deleting or inserting a record anywhere shows up when the chain is
//! walked. Pure: the store reads the rows, this judges them.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One audit row as stored, every column that the hash covers.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub env: String,
    pub version: Option<String>,
    pub from_version: Option<String>,
    pub outcome: String,
    pub detail: String,
    pub finishes: Option<i64>,
    pub note: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl ChainRow {
    /// SHA-256 (hex) of `prev` and this record's canonical content: a JSON
    /// array of its fields in a fixed order, so no two records share an
    /// encoding.
    pub fn compute_hash(&self, prev: &str) -> String {
        // Serialized straight into the hash (a tuple is a JSON array, in
        // the compact form `json!([...]).to_string()` writes, byte for
        // byte): no copy of every field into a `Value` and no string of
        // the whole array, which the chain check does for every record it
        // walks.
        let content = (
            self.id,
            &self.at,
            &self.actor,
            &self.action,
            &self.env,
            &self.version,
            &self.from_version,
            &self.outcome,
            &self.detail,
            self.finishes,
            &self.note,
        );
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(b"\n");
        serde_json::to_writer(Hashing(&mut h), &content)
            .expect("a record of strings and integers serializes");
        hex(&h.finalize())
    }
}

/// Feeds what is written into the hash.
struct Hashing<'a>(&'a mut Sha256);

impl std::io::Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The first record that breaks the chain, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The record at fault (for deletions: the first missing one).
    pub id: i64,
    pub what: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record #{}: {}", self.id, self.what)
    }
}

/// The result of walking the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub records: usize,
    /// The hash of the newest record: note it somewhere else to detect a
    /// rewrite of the whole chain later.
    pub head: Option<String>,
    pub broken: Option<Broken>,
    /// Problems that name no record (missing triggers), newest last.
    pub warnings: Vec<String>,
}

impl ChainReport {
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Walk `rows` (in id order); `highest` is the highest id the log ever
/// handed out (SQLite's AUTOINCREMENT counter), which catches records
/// deleted from the end.
#[cfg(test)]
pub fn verify(rows: &[ChainRow], highest: Option<i64>) -> ChainReport {
    verify_from(None, rows, highest)
}

/// A record already verified: its id and hash. The walk of the records
/// after it starts from there instead of from the first record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub id: i64,
    pub hash: String,
}

/// Walk `rows`, the records after `from` (all of them when `None`) in id
/// order, as [`verify`] does; `records` counts the checkpoint's too.
pub fn verify_from(
    from: Option<&Checkpoint>,
    rows: &[ChainRow],
    highest: Option<i64>,
) -> ChainReport {
    let before = from.map(|c| c.id).unwrap_or(0);
    let mut report = ChainReport {
        records: before as usize + rows.len(),
        ..ChainReport::default()
    };
    let mut prev = from.map(|c| c.hash.clone()).unwrap_or_default();
    let mut expected_id = before + 1;
    for row in rows {
        let broken = |what: String| Broken { id: row.id, what };
        if row.id != expected_id {
            report.broken = Some(Broken {
                id: expected_id,
                what: if expected_id + 1 == row.id {
                    "deleted (the log jumps to the next one)".into()
                } else {
                    format!(
                        "deleted, with the {} after it (the log jumps to #{})",
                        row.id - expected_id - 1,
                        row.id
                    )
                },
            });
            return report;
        }
        let Some(hash) = &row.hash else {
            report.broken = Some(broken(
                "has no hash: written around shipdeck, not by it".into(),
            ));
            return report;
        };
        if row.prev_hash.as_deref().unwrap_or("") != prev {
            report.broken = Some(broken(
                "does not follow the record before it (its previous-hash differs)".into(),
            ));
            return report;
        }
        if &row.compute_hash(&prev) != hash {
            report.broken = Some(broken(
                "its content does not match its hash: the record was rewritten".into(),
            ));
            return report;
        }
        prev = hash.clone();
        expected_id += 1;
    }
    if let Some(h) = highest
        && h >= expected_id
    {
        report.broken = Some(Broken {
            id: expected_id,
            what: format!(
                "deleted: the log ends at #{} but had reached #{h}",
                expected_id - 1
            ),
        });
        return report;
    }
    report.head = (!prev.is_empty()).then_some(prev);
    report
}

/// How a stored checkpoint stands against the record it names (`row`:
/// the record at its id, `None` when there is none). The checkpoint is
/// the chain's own when that record still carries the checkpoint's hash
/// and that hash still matches the record's content. Anything else is
/// evidence of tampering — of the record (a rewrite that re-hashed the
/// chain after it walks clean from the start, and only the checkpoint
/// still remembers the old hash) or of the checkpoint itself — and is
/// reported as the chain broken at the checkpoint's record, never walked
/// around. No shipdeck writes a checkpoint its record disagrees with: it
/// is stored only after a walk found the chain intact up to that record,
/// records are never updated or deleted (triggers), and the hash has had
/// one definition since the chain exists (`compute_hash`).
pub fn checkpoint_dispute(cp: &Checkpoint, row: Option<&ChainRow>) -> Option<Broken> {
    let what = match row {
        None => format!(
            "is missing, though the chain's checkpoint names it (hash {}…): records were deleted, or the checkpoint was forged",
            short(&cp.hash)
        ),
        Some(r) if r.hash.as_deref() != Some(cp.hash.as_str()) => format!(
            "does not carry the hash the chain's checkpoint recorded for it (checkpoint {}…, record {}…): the record was rewritten and the chain re-hashed after it, or the checkpoint was forged",
            short(&cp.hash),
            short(r.hash.as_deref().unwrap_or("")),
        ),
        Some(r) if r.compute_hash(r.prev_hash.as_deref().unwrap_or("")) != cp.hash => {
            "its content does not match its hash: the record was rewritten".into()
        }
        Some(_) => return None,
    };
    Some(Broken { id: cp.id, what })
}

/// The first 12 characters of a hash, for messages.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Add a checkpoint's dispute to a walk's report: the chain reads broken
/// at the earlier of the two places.
pub fn with_dispute(mut report: ChainReport, dispute: Option<Broken>) -> ChainReport {
    if let Some(d) = dispute
        && report.broken.as_ref().is_none_or(|b| d.id < b.id)
    {
        report.broken = Some(d);
    }
    report
}

/// The first record that does not read back as one: a value no shipdeck
/// writes is a corrupted record even when its hash was forged.
pub fn unreadable(rows: &[ChainRow]) -> Option<Broken> {
    use crate::domain::{ActionKind, Outcome};
    rows.iter().find_map(|r| {
        let bad = chrono::DateTime::parse_from_rfc3339(&r.at)
            .err()
            .map(|e| format!("time {:?}: {e}", r.at))
            .or_else(|| {
                ActionKind::parse(&r.action)
                    .is_none()
                    .then(|| format!("action {:?}", r.action))
            })
            .or_else(|| {
                Outcome::parse(&r.outcome)
                    .is_none()
                    .then(|| format!("outcome {:?}", r.outcome))
            });
        bad.map(|what| Broken {
            id: r.id,
            what: format!("unreadable: {what}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainRow> {
        let mut prev = String::new();
        (1..=n)
            .map(|id| {
                let mut r = ChainRow {
                    id,
                    at: format!("2026-11-25T12:00:0{id}.000Z"),
                    actor: "alice".into(),
                    action: "reject".into(),
                    env: "production".into(),
                    version: Some("v1.8.0".into()),
                    from_version: None,
                    outcome: "succeeded".into(),
                    detail: "No-Go".into(),
                    finishes: None,
                    note: Some("p95".into()),
                    prev_hash: Some(prev.clone()),
                    hash: None,
                };
                let h = r.compute_hash(&prev);
                r.hash = Some(h.clone());
                prev = h;
                r
            })
            .collect()
    }

    /// The hash is over exactly the bytes it always was (records already
    /// written must still verify, and the server's `shipdeck_append`
    /// writes the same): SHA-256 of the previous hash, a newline and the
    /// compact JSON array of the fields, odd text and nulls included.
    #[test]
    fn the_hash_covers_the_compact_json_array_of_the_fields() {
        let mut r = chain(1).remove(0);
        for (detail, note, finishes) in [
            ("No-Go", Some("p95"), None),
            ("quote \" back\\slash\n\t\u{1} é 🚀 \u{2028}", None, Some(7)),
            ("", Some(""), Some(-1)),
        ] {
            r.detail = detail.into();
            r.note = note.map(String::from);
            r.finishes = finishes;
            let content = serde_json::json!([
                r.id,
                r.at,
                r.actor,
                r.action,
                r.env,
                r.version,
                r.from_version,
                r.outcome,
                r.detail,
                r.finishes,
                r.note,
            ])
            .to_string();
            let prev = "ab12";
            let want: String = Sha256::digest(format!("{prev}\n{content}").as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(r.compute_hash(prev), want, "{content}");
        }
    }

    #[test]
    fn a_walk_from_a_checkpoint_checks_only_what_follows_and_still_links_to_it() {
        let rows = chain(6);
        let full = verify(&rows, Some(6));
        let cp = Checkpoint {
            id: 4,
            hash: rows[3].hash.clone().unwrap(),
        };
        let part = verify_from(Some(&cp), &rows[4..], Some(6));
        assert_eq!(part, full);
        // A record after the checkpoint that does not follow it is named.
        let wrong = Checkpoint {
            id: 4,
            hash: "0".repeat(64),
        };
        assert_eq!(
            verify_from(Some(&wrong), &rows[4..], Some(6))
                .broken
                .unwrap()
                .id,
            5
        );
        // Nothing new since the checkpoint: intact, and its head is the checkpoint's.
        let head = verify_from(Some(&cp), &[], Some(4));
        assert_eq!(head.head.as_deref(), Some(cp.hash.as_str()));
        assert_eq!(head.records, 4);
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let rows = chain(3);
        let r = verify(&rows, Some(3));
        assert!(r.intact(), "{r:?}");
        assert_eq!(r.head.as_deref(), rows[2].hash.as_deref());
        assert!(verify(&[], None).intact());
    }

    #[test]
    fn a_rewritten_record_breaks_the_chain_at_that_record() {
        let mut rows = chain(4);
        rows[1].action = "approve".into();
        let b = verify(&rows, Some(4)).broken.unwrap();
        assert_eq!(b.id, 2);
        assert!(b.what.contains("rewritten"), "{b}");
    }

    #[test]
    fn a_rewritten_record_with_a_recomputed_hash_breaks_the_next_link() {
        let mut rows = chain(4);
        rows[1].note = Some("fine".into());
        let prev = rows[0].hash.clone().unwrap();
        rows[1].hash = Some(rows[1].compute_hash(&prev));
        let b = verify(&rows, Some(4)).broken.unwrap();
        assert_eq!(b.id, 3);
        assert!(b.what.contains("does not follow"), "{b}");
    }

    #[test]
    fn deleted_records_are_named() {
        let mut rows = chain(5);
        rows.remove(2);
        let b = verify(&rows, Some(5)).broken.unwrap();
        assert_eq!(b.id, 3);
        assert!(b.what.contains("deleted"), "{b}");
        let rows = chain(5)[..3].to_vec();
        let b = verify(&rows, Some(5)).broken.unwrap();
        assert_eq!((b.id, b.what.contains("had reached #5")), (4, true), "{b}");
    }

    #[test]
    fn a_record_without_hash_is_named() {
        let mut rows = chain(2);
        rows[1].hash = None;
        assert_eq!(verify(&rows, Some(2)).broken.unwrap().id, 2);
    }

    #[test]
    fn a_checkpoint_its_record_disagrees_with_is_a_dispute() {
        let rows = chain(3);
        let cp = Checkpoint {
            id: 2,
            hash: rows[1].hash.clone().unwrap(),
        };
        assert_eq!(checkpoint_dispute(&cp, Some(&rows[1])), None);
        // The record rewritten and the chain re-hashed from it on: a walk
        // from the start finds it intact; the checkpoint does not.
        let mut rewritten = rows.clone();
        rewritten[1].detail = "Go".into();
        let mut prev = rewritten[0].hash.clone().unwrap();
        for r in rewritten.iter_mut().skip(1) {
            r.prev_hash = Some(prev.clone());
            let h = r.compute_hash(&prev);
            r.hash = Some(h.clone());
            prev = h;
        }
        assert!(verify(&rewritten, Some(3)).intact());
        let d = checkpoint_dispute(&cp, Some(&rewritten[1])).unwrap();
        assert_eq!(d.id, 2);
        assert!(d.what.contains("does not carry the hash"), "{d}");
        // Rewritten in place, hash kept.
        let mut edited = rows[1].clone();
        edited.detail = "Go".into();
        let d = checkpoint_dispute(&cp, Some(&edited)).unwrap();
        assert!(d.what.contains("content does not match"), "{d}");
        // A forged checkpoint, and one naming no record.
        let forged = Checkpoint {
            id: 2,
            hash: "forged".into(),
        };
        assert!(checkpoint_dispute(&forged, Some(&rows[1])).is_some());
        let d = checkpoint_dispute(&cp, None).unwrap();
        assert!(d.what.contains("is missing"), "{d}");
        // The report reads broken at the earlier place.
        let intact = verify(&rows, Some(3));
        let r = with_dispute(intact.clone(), Some(d.clone()));
        assert_eq!(r.broken.as_ref().map(|b| b.id), Some(2));
        let mut earlier = intact;
        earlier.broken = Some(Broken {
            id: 1,
            what: "x".into(),
        });
        assert_eq!(with_dispute(earlier, Some(d)).broken.map(|b| b.id), Some(1));
    }
}
