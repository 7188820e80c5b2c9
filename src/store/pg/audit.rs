//! The audit log on PostgreSQL: appending a record (its chain check in
//! one snapshot, the server's `shipdeck_append`, the durable flush),
//! finishing a started one, and walking the hash chain from the furthest
//! checkpoint that still vouches for itself.

use super::*;
use profile::Phase;

impl PgStore {
    /// Append one audit record (and, in the same transaction, the row it
    /// indexes), refused on a log whose chain is broken (a corrupted log
    /// must stop actions, not record beside them). One statement: the
    /// server takes the chain's turn, hashes and inserts, and commits
    /// without waiting for the disk, so no append waits on another's round
    /// trip or fsync; the synchronous write after it makes this record
    /// durable before the call returns (see `schema::V3`).
    pub(super) fn append(&self, rec: &ChainRow, also: Also<'_>) -> Result<i64, StoreError> {
        let t = Instant::now();
        let report = self.chain_report()?;
        self.profile.add(Phase::Check, t);
        if let Some(b) = &report.broken {
            return Err(StoreError::Tampered {
                path: self.target.describe.clone(),
                cause: format!(
                    "the audit log's hash chain is broken at {b}; actions are refused until it is repaired (see `shipdeck history --verify`)"
                ),
            });
        }
        // This very record was sent before and its reply lost (or its
        // flush failed): it is appended again only if it did not land.
        if let Some(d) = self.doubt_about(rec)
            && let Some(id) = self.settle(&d)?
        {
            return Ok(id);
        }
        let (id, prev, hash) = match self.append_landed(rec, &also)? {
            Landed::New(id, prev, hash) => (id, prev, hash),
            // A record sent before (its reply lost) that did land.
            Landed::Before(id) => return Ok(id),
        };
        // The server hashed what this process would have: say so at once
        // if not (the next walk would report the record as broken).
        let mine = ChainRow {
            id,
            prev_hash: Some(prev.clone()),
            ..rec.clone()
        }
        .compute_hash(&prev);
        if mine != hash {
            self.note(format!(
                "audit record #{id} was hashed by the server as {hash}, not {mine}: the database's shipdeck_append function differs from this shipdeck's"
            ));
            return Ok(id);
        }
        // A record appended right after the head this process walked
        // needs no walk of its own; and moves the stored checkpoint as a
        // walk would, so that a process opened later walks little.
        let forward = {
            let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            match v.as_mut() {
                Some(ver)
                    if ver.report.intact()
                        && ver.report.head.as_deref().unwrap_or("") == prev
                        && ver.key.0.unwrap_or(0) + 1 == id
                        && ver.key.1 + 1 == id =>
                {
                    ver.key = (Some(id), id);
                    ver.report.head = Some(hash.clone());
                    ver.report.records += 1;
                    true
                }
                _ => false,
            }
        };
        if forward {
            let stored = *self
                .stored_checkpoint
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(cp) = self.move_checkpoint(stored, id, &hash)
                && let Some(ver) = self
                    .verified
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
            {
                ver.cp = Some(cp);
            }
        }
        Ok(id)
    }

    /// Send `rec` (and `also`), once more if an attempt's reply was lost
    /// and the record is found not to have landed. An attempt whose reply
    /// was lost (the connection went after the statement was sent: the
    /// commit may have happened) leaves the record in doubt; it is settled
    /// at once on a new session when the server answers — the session that
    /// was sent it ended first, so that it cannot commit it later, then the
    /// log's tail read for the very record — else by the next append of
    /// the same record (a retry). A refusal the server answered, or a
    /// failure before anything was sent, is no doubt: nothing was written.
    fn append_landed(&self, rec: &ChainRow, also: &Also<'_>) -> Result<Landed, StoreError> {
        // The log's tail starts after the highest id the check just saw.
        let after = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|v| v.key.0)
            .unwrap_or(0);
        let mut attempts = 2;
        loop {
            attempts -= 1;
            let mut sent = None;
            let out = self.with(false, |s| {
                sent = Some(s.backend()?);
                self.append_on(s, rec, also)
            });
            match (out, sent) {
                (Ok((id, prev, hash)), Some(backend)) => {
                    // Committed (without waiting for the disk): durable
                    // once the flush goes through. A flush that fails
                    // leaves the record landed but not yet known durable,
                    // so a retry of it flushes and answers this id rather
                    // than appending it again.
                    let Err(e) = self.flush() else {
                        return Ok(Landed::New(id, prev, hash));
                    };
                    let d = Doubt {
                        row: rec.clone(),
                        after,
                        backend,
                        landed: Some(id),
                    };
                    self.doubt(d.clone());
                    return match self.settle(&d) {
                        Ok(Some(_)) => Ok(Landed::New(id, prev, hash)),
                        _ => Err(e),
                    };
                }
                (Ok((id, prev, hash)), None) => return Ok(Landed::New(id, prev, hash)),
                (Err(e @ StoreError::Unreachable { .. }), Some(backend)) => {
                    let d = Doubt {
                        row: rec.clone(),
                        after,
                        backend,
                        landed: None,
                    };
                    self.doubt(d.clone());
                    match self.settle(&d) {
                        Ok(Some(id)) => return Ok(Landed::Before(id)),
                        Ok(None) if attempts > 0 => continue,
                        Ok(None) => return Err(e),
                        // Still in doubt: a retry of this record settles it.
                        Err(_) => return Err(e),
                    }
                }
                (Err(e), _) => return Err(e),
            }
        }
    }

    /// One append on session `s`: the record (and `also`) in one
    /// statement, committed without waiting for the disk ([`Self::flush`]
    /// makes it durable).
    fn append_on(
        &self,
        s: &mut Session,
        rec: &ChainRow,
        also: &Also<'_>,
    ) -> Result<(i64, String, String), postgres::Error> {
        let fields: [&(dyn postgres::types::ToSql + Sync); 10] = [
            &rec.at,
            &rec.actor,
            &rec.action,
            &rec.env,
            &rec.version,
            &rec.from_version,
            &rec.outcome,
            &rec.detail,
            &rec.finishes,
            &rec.note,
        ];
        let t = Instant::now();
        let row = match also {
            Also::Nothing => {
                let st = s.st(APPEND)?;
                s.client.query_one(&st, &fields)?
            }
            Also::Deploy { started, rec: d } => {
                let st = s.st(APPEND_DEPLOY)?;
                let (version, from, at, kind) = (
                    d.version.as_str(),
                    d.from_version.as_ref().map(|v| v.as_str()),
                    ts(d.at),
                    d.kind.as_str(),
                );
                let mut p = fields.to_vec();
                p.extend_from_slice(&[
                    &d.env as &(dyn postgres::types::ToSql + Sync),
                    &version,
                    &from,
                    &at,
                    &d.actor,
                    &kind,
                    started,
                    &d.url,
                ]);
                s.client.query_one(&st, &p)?
            }
            Also::Lock(l) => {
                let st = s.st(APPEND_LOCK)?;
                let pid = i64::from(l.pid);
                let space = crate::host::pid_space();
                let mut p = fields.to_vec();
                p.extend_from_slice(&[
                    &l.env as &(dyn postgres::types::ToSql + Sync),
                    &pid,
                    &l.host,
                    &space,
                ]);
                s.client.query_one(&st, &p)?
            }
            Also::Approval(a) => {
                let st = s.st(APPEND_APPROVAL)?;
                let (version, at, decision) = (a.version.as_str(), ts(a.at), a.decision.as_str());
                let mut p = fields.to_vec();
                p.extend_from_slice(&[
                    &a.env as &(dyn postgres::types::ToSql + Sync),
                    &version,
                    &decision,
                    &a.actor,
                    &at,
                    &a.note,
                ]);
                s.client.query_one(&st, &p)?
            }
        };
        self.profile.add(Phase::Append, t);
        Ok((
            row.try_get::<_, i64>(0)?,
            row.try_get::<_, String>(1)?,
            row.try_get::<_, String>(2)?,
        ))
    }

    /// Make every append committed so far durable: a write of this
    /// session's own row, committed synchronously, waits until the log is
    /// on disk up to it, every earlier commit included (and shares the
    /// flush with everyone's). Safe to repeat.
    fn flush(&self) -> Result<(), StoreError> {
        let t = Instant::now();
        self.with(true, |s| {
            let flush = s.st(FLUSH)?;
            s.client.execute(&flush, &[&ts(Utc::now())]).map(drop)
        })?;
        self.profile.add(Phase::Flush, t);
        Ok(())
    }

    /// Remember `d` until it is settled.
    fn doubt(&self, d: Doubt) {
        let mut all = self.doubts.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|o| o.row != d.row);
        all.push(d);
    }

    /// `d` is settled: no longer in doubt.
    fn forget(&self, d: &Doubt) {
        self.doubts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|o| o.row != d.row);
    }

    /// The doubt about `rec`, if an earlier attempt to append it left one.
    fn doubt_about(&self, rec: &ChainRow) -> Option<Doubt> {
        let all = self.doubts.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().find(|d| d.row == *rec).cloned()
    }

    /// Whether the record in doubt landed: its id when it did, `None` when
    /// it did not (and now cannot: the session it was sent on is ended
    /// first, waiting for it to go). Settled either way, it is no longer in
    /// doubt; an error leaves it so.
    pub(super) fn settle(&self, d: &Doubt) -> Result<Option<i64>, StoreError> {
        let r = &d.row;
        if let Some(id) = d.landed {
            // Known landed: only its flush is owed.
            self.flush()?;
            self.forget(d);
            return Ok(Some(id));
        }
        let (gone, found) = self.with(true, |s| {
            let end = s.st(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
                 WHERE pid = $1 AND backend_start::text = $2",
            )?;
            let gone = s
                .client
                .query_opt(&end, &[&d.backend.pid, &d.backend.started])?
                .is_none_or(|row| row.get::<_, bool>(0));
            let find = s.st(FIND_SENT)?;
            let found = s.client.query_opt(
                &find,
                &[
                    &d.after,
                    &r.at,
                    &r.actor,
                    &r.action,
                    &r.env,
                    &r.version,
                    &r.from_version,
                    &r.outcome,
                    &r.detail,
                    &r.finishes,
                    &r.note,
                ],
            )?;
            Ok((gone, found.map(|row| row.get::<_, i64>(0))))
        })?;
        if found.is_none() && !gone {
            return Err(self.target.unreachable(&format!(
                "whether audit record of {} {} at {} landed is not known yet: the session it was sent on (server pid {}) has not ended",
                r.action, r.env, r.at, d.backend.pid
            )));
        }
        if found.is_some() {
            // Found committed, perhaps not yet on disk (it was committed
            // without waiting for it): durable before it is answered.
            self.flush()?;
        }
        self.forget(d);
        if let Some(id) = found {
            tracing::info!(
                "store {}: audit record #{id} ({} {}) had landed; its reply was lost, it is not appended again",
                self.target.describe,
                r.action,
                r.env
            );
        }
        Ok(found)
    }

    /// The record that ends `started` with `outcome`, copying its actor,
    /// action, env and versions; or the outcome recorded for it already
    /// (its record's id and outcome), for `store::second_finish` to judge.
    pub(super) fn finish_row(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<Result<ChainRow, (i64, String)>, StoreError> {
        let (finished, r) = self.with(true, |s| {
            let done = s.st(RECORDED_FINISH)?;
            let row = s.st(
                "SELECT actor, action, env, version, from_version FROM shipdeck_audit WHERE id = $1",
            )?;
            let finished = s
                .client
                .query_opt(&done, &[&started, &(outcome == Outcome::Unknown)])?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
            Ok((finished, s.client.query_one(&row, &[&started])?))
        })?;
        if let Some(found) = finished {
            return Ok(Err(found));
        }
        let (actor, action, env): (String, String, String) =
            (self.get(&r, 0)?, self.get(&r, 1)?, self.get(&r, 2)?);
        let (version, from): (Option<String>, Option<String>) =
            (self.get(&r, 3)?, self.get(&r, 4)?);
        // Values this store wrote; one that does not parse is recorded as
        // it stands rather than lost.
        let action = ActionKind::parse(&action).unwrap_or(ActionKind::Promote);
        let version = version.and_then(|v| Version::parse(&v).ok());
        let from = from.and_then(|v| Version::parse(&v).ok());
        Ok(Ok(new_row(
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
        )))
    }
    /// Append `row`, the outcome of `started`; refused by the server
    /// (schema 8) when another finish of it went in first (a retry whose
    /// first attempt committed, a finish by another process at the same
    /// time): then that one is read and judged like one found before.
    pub(super) fn append_finish(
        &self,
        started: i64,
        row: &ChainRow,
        outcome: Outcome,
        also: Also<'_>,
    ) -> Result<(), StoreError> {
        match self.append(row, also) {
            Ok(_) => Ok(()),
            Err(StoreError::Postgres {
                sqlstate: Some(code),
                ..
            }) if code.as_str() == schema::ALREADY_FINISHED => {
                let found = self.with(true, |s| {
                    let st = s.st(RECORDED_FINISH)?;
                    s.client
                        .query_one(&st, &[&started, &(outcome == Outcome::Unknown)])
                })?;
                let (id, was): (i64, String) = (self.get(&found, 0)?, self.get(&found, 1)?);
                second_finish(&self.target.describe, started, (id, &was), outcome)
            }
            Err(e) => Err(e),
        }
    }

    /// The chain's state, walked again from the last intact point only
    /// when records were added since (the highest id and the counter).
    ///
    /// One statement, one snapshot, one round trip (see [`CHAIN_STATE`]):
    /// the key, the stored checkpoint, the integrity events, and the
    /// records from the furthest point that still carries the hash this
    /// process (or another, for the stored checkpoint) walked to. That
    /// point's own record comes along, so that its content is hashed here
    /// again before anything is walked from it; should it not vouch for
    /// itself, the walk takes the slow way, candidate by candidate.
    pub(super) fn chain_report(&self) -> Result<ChainReport, StoreError> {
        let mine: Option<(Verified, Option<chain::Checkpoint>)> = {
            let v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            v.as_ref().map(|ver| {
                let cp = ver
                    .report
                    .intact()
                    .then(|| ver.report.head.clone())
                    .flatten()
                    .map(|h| chain::Checkpoint {
                        id: ver.report.records as i64,
                        hash: h,
                    });
                (ver.clone(), cp)
            })
        };
        let mine_cp = mine.as_ref().and_then(|(_, cp)| cp.clone());
        let (mine_id, mine_hash) = match &mine_cp {
            Some(cp) => (cp.id, Some(cp.hash.clone())),
            None => (0, None),
        };
        // The key this process last judged: nothing added, no rows needed.
        // (The stored checkpoint is part of it: the owner deleting a
        // disputed one changes nothing else.)
        let (known_max, known_last, known_cp_id, known_cp_hash) = match &mine {
            Some((ver, _)) => (
                ver.key.0,
                ver.key.1,
                ver.cp.as_ref().map(|c| c.id),
                ver.cp.as_ref().map(|c| c.hash.clone()),
            ),
            None => (None, -1, None, None),
        };
        if let (Some((ver, _)), Some(cp)) = (&mine, &mine_cp)
            && let Some(report) = self.chain_report_lean(ver, cp)?
        {
            return Ok(report);
        }
        let t = Instant::now();
        let rows = self.with(true, |s| {
            let st = s.st(CHAIN_STATE)?;
            s.client.query(
                &st,
                &[
                    &mine_id,
                    &mine_hash,
                    &known_max,
                    &known_last,
                    &known_cp_id,
                    &known_cp_hash,
                ],
            )
        })?;
        self.profile.add(Phase::CheckRead, t);
        let first = rows
            .first()
            .ok_or_else(|| self.corrupt("the audit log's state read answered nothing"))?;
        let key: (Option<i64>, i64) = (
            self.get(first, 0)?,
            self.get::<Option<i64>>(first, 1)?.unwrap_or(0),
        );
        let stored = match (
            self.get::<Option<i64>>(first, 2)?,
            self.get::<Option<String>>(first, 3)?,
        ) {
            (Some(id), Some(hash)) => Some(chain::Checkpoint { id, hash }),
            _ => None,
        };
        let from_id: Option<i64> = self.get(first, 4)?;
        *self
            .stored_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = stored.as_ref().map(|c| c.id);
        if let Some((ver, _)) = &mine
            && ver.key == key
            && ver.cp == stored
        {
            return Ok(ver.report.clone());
        }
        let events: Option<String> = self.get(first, 5)?;
        let warnings = match events {
            Some(doc) => serde_json::from_str::<Vec<(String, String)>>(&doc)
                .map_err(|e| self.corrupt(format!("the integrity events: {e}")))?
                .into_iter()
                .map(|(at, what)| format!("{at}: {what}"))
                .collect(),
            None => Vec::new(),
        };
        let mut audit = Vec::with_capacity(rows.len());
        for r in &rows {
            if self.get::<Option<i64>>(r, 6)?.is_some() {
                audit.push(self.chain_row_at(r, 6).map_err(unreadable_log)?);
            }
        }
        self.profile.walked(audit.len());
        // A checkpoint further than where the walk may start was not picked:
        // its record no longer carries its hash. That is a dispute, not a
        // reason to walk around it (see chain::checkpoint_dispute).
        let start = from_id.unwrap_or(0);
        let passed_over: Vec<chain::Checkpoint> = [mine_cp.clone(), stored.clone()]
            .into_iter()
            .flatten()
            .filter(|c| c.id > start)
            .collect();
        if !passed_over.is_empty() {
            return self.chain_report_slow(mine_cp);
        }
        let from = match from_id {
            None => None,
            Some(id) => {
                let cp = [mine_cp, stored.clone()]
                    .into_iter()
                    .flatten()
                    .find(|c| c.id == id)
                    .ok_or_else(|| {
                        self.corrupt(format!(
                            "the walk would start at #{id}, which no checkpoint names"
                        ))
                    })?;
                // The record the walk starts from must still hash to what
                // was walked (the statement compared the stored hash only).
                let own = audit.first().filter(|r| {
                    r.id == id
                        && r.hash.as_deref() == Some(cp.hash.as_str())
                        && r.compute_hash(r.prev_hash.as_deref().unwrap_or("")) == cp.hash
                });
                if own.is_none() {
                    return self.chain_report_slow(mine.and_then(|(_, cp)| cp));
                }
                audit.remove(0);
                Some(cp)
            }
        };
        Ok(self.judge(from, &audit, key, stored, warnings, None))
    }

    /// [`Self::chain_report`]'s common case, lean on the server: this
    /// process walked the chain intact to `mine` and wants only what was
    /// added since. One statement ([`CHAIN_SINCE`], one snapshot): the
    /// counter, the stored checkpoint, the integrity events and the
    /// records from the further of `mine` and the stored checkpoint on, by
    /// the primary key. Its answer stands only when everything lines up —
    /// that point's record still there, carrying and hashing to its hash
    /// (a stored checkpoint at `mine` naming `mine`'s); every value
    /// readable; the walk from there intact to the counter. Anything else
    /// is handed to the full check (`None`), which judges it as before
    /// (the break recorded, the checkpoint dropped or disputed): a tamper
    /// the lean read meets is never judged here.
    fn chain_report_lean(
        &self,
        ver: &Verified,
        mine: &chain::Checkpoint,
    ) -> Result<Option<ChainReport>, StoreError> {
        let t = Instant::now();
        let rows = self.with(true, |s| {
            let st = s.st(CHAIN_SINCE)?;
            s.client.query(&st, &[&mine.id])
        })?;
        self.profile.add(Phase::CheckRead, t);
        let answer = self.lean_answer(ver, mine, &rows);
        self.profile.lean(answer.is_some());
        Ok(answer)
    }

    /// What [`CHAIN_SINCE`]'s `rows` say, if they line up (see
    /// [`Self::chain_report_lean`]); `None` hands the check on.
    fn lean_answer(
        &self,
        ver: &Verified,
        mine: &chain::Checkpoint,
        rows: &[postgres::Row],
    ) -> Option<ChainReport> {
        // The first row is the state (its record columns NULL); the
        // records follow in id order, sorted again here all the same.
        let mut state = None;
        let mut audit = Vec::with_capacity(rows.len());
        for r in rows {
            match r.try_get::<_, Option<i64>>(4).ok()? {
                Some(_) => audit.push(self.chain_row_at(r, 4).ok()?),
                None if state.is_none() => state = Some(r),
                None => return None,
            }
        }
        let state = state?;
        audit.sort_by_key(|r| r.id);
        let last: Option<i64> = state.try_get(0).ok()?;
        let stored = match (
            state.try_get::<_, Option<i64>>(1).ok()?,
            state.try_get::<_, Option<String>>(2).ok()?,
        ) {
            (Some(id), Some(hash)) => Some(chain::Checkpoint { id, hash }),
            (None, None) => None,
            _ => return None,
        };
        let events: Option<String> = state.try_get(3).ok()?;
        // The walk starts from the further of `mine` and the stored
        // checkpoint (as the full check would): its record first, still
        // carrying and hashing to that point's hash. A stored checkpoint
        // at `mine` names the same hash.
        let from = match &stored {
            Some(cp) if cp.id > mine.id => cp,
            Some(cp) if cp.id == mine.id && cp.hash != mine.hash => return None,
            _ => mine,
        };
        let own = audit.first()?;
        if own.id != from.id
            || own.hash.as_deref() != Some(from.hash.as_str())
            || own.compute_hash(own.prev_hash.as_deref().unwrap_or("")) != from.hash
        {
            return None;
        }
        // Every record from there on was read, unless the log holds one
        // past the last read (inserted far ahead around the counter, or
        // beyond the scan's bound): the full check judges that jump.
        let highest: Option<i64> = state.try_get(17).ok()?;
        let read_to = audit.last()?.id;
        if highest != Some(read_to) {
            return None;
        }
        let key = (Some(read_to), last.unwrap_or(0));
        *self
            .stored_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = stored.as_ref().map(|c| c.id);
        if ver.key == key && ver.cp == stored {
            return Some(ver.report.clone());
        }
        let warnings = match events {
            Some(doc) => serde_json::from_str::<Vec<(String, String)>>(&doc)
                .ok()?
                .into_iter()
                .map(|(at, what)| format!("{at}: {what}"))
                .collect(),
            None => Vec::new(),
        };
        let report = assess(Some(from), &audit[1..], key, warnings, None);
        if !report.intact() {
            return None;
        }
        self.profile.walked(audit.len());
        Some(self.keep(report, key, stored, false))
    }

    /// [`Self::chain_report`] the slow way: every candidate held against
    /// its record on its own. A stored checkpoint that disagrees with its
    /// record is a dispute and the chain reads broken there (the whole log
    /// is walked for the rest, and the stored checkpoint is left as it is:
    /// it is the evidence); this process's own (`mine`) that disagrees is
    /// dropped; the walk starts from the furthest left.
    pub(super) fn chain_report_slow(
        &self,
        mine: Option<chain::Checkpoint>,
    ) -> Result<ChainReport, StoreError> {
        let stored = self.with(true, |s| {
            let st = s.st("SELECT id, hash FROM shipdeck_chain_checkpoint WHERE one = 1")?;
            s.client.query_opt(&st, &[])
        })?;
        let stored = stored.map(|r| chain::Checkpoint {
            id: r.get(0),
            hash: r.get(1),
        });
        // Only the stored checkpoint's disagreement is evidence: this
        // process's own one may be ahead of a store restored from a backup
        // or failed over to a lagging replica, and is dropped silently.
        if let Some(cp) = &stored
            && let Some(d) = self.dispute(cp)?
        {
            return self.walk_chain(None, Some(d));
        }
        let mine = match mine {
            Some(cp) if self.dispute(&cp)?.is_none() => Some(cp),
            _ => None,
        };
        let from = [mine, stored].into_iter().flatten().max_by_key(|c| c.id);
        self.walk_chain(from, None)
    }

    /// How the checkpoint stands against the record at its id
    /// ([`chain::checkpoint_dispute`]): `None` when it is the chain's own.
    pub(super) fn dispute(
        &self,
        cp: &chain::Checkpoint,
    ) -> Result<Option<chain::Broken>, StoreError> {
        let row = self.with(true, |s| {
            let st = s.st(
                "SELECT id, at, actor, action, env, version, from_version, outcome, detail, finishes, note, prev_hash, hash FROM shipdeck_audit WHERE id = $1",
            )?;
            s.client.query_opt(&st, &[&cp.id])
        })?;
        let row = row.map(|r| self.chain_row(&r)).transpose()?;
        Ok(chain::checkpoint_dispute(cp, row.as_ref()))
    }

    /// The stored checkpoint's dispute with its record, if it has one.
    pub(super) fn stored_dispute(&self) -> Result<Option<chain::Broken>, StoreError> {
        let stored = self.with(true, |s| {
            let st = s.st("SELECT id, hash FROM shipdeck_chain_checkpoint WHERE one = 1")?;
            s.client.query_opt(&st, &[])
        })?;
        match stored {
            Some(r) => self.dispute(&chain::Checkpoint {
                id: r.get(0),
                hash: r.get(1),
            }),
            None => Ok(None),
        }
    }

    pub(super) fn chain_row(&self, r: &postgres::Row) -> Result<ChainRow, StoreError> {
        self.chain_row_at(r, 0)
    }

    /// The audit columns of `r` from column `at` on.
    pub(super) fn chain_row_at(
        &self,
        r: &postgres::Row,
        at: usize,
    ) -> Result<ChainRow, StoreError> {
        Ok(ChainRow {
            id: self.get(r, at)?,
            at: self.get(r, at + 1)?,
            actor: self.get(r, at + 2)?,
            action: self.get(r, at + 3)?,
            env: self.get(r, at + 4)?,
            version: self.get(r, at + 5)?,
            from_version: self.get(r, at + 6)?,
            outcome: self.get(r, at + 7)?,
            detail: self.get(r, at + 8)?,
            finishes: self.get(r, at + 9)?,
            note: self.get(r, at + 10)?,
            prev_hash: self.get(r, at + 11)?,
            hash: self.get(r, at + 12)?,
        })
    }

    /// Store `head` (record `id`, intact as walked) as the chain's
    /// checkpoint when the stored one lags behind by this process's draw
    /// for that stored checkpoint (drawn anew each time it moves; a draw per
    /// walked record would let the first record past the lowest lag win)
    /// ([`checkpoint_due`]); the new checkpoint when this stored it.
    pub(super) fn move_checkpoint(
        &self,
        stored: Option<i64>,
        id: i64,
        head: &str,
    ) -> Option<chain::Checkpoint> {
        if !checkpoint_due(stored, id, self.draws.hash_one(stored)) {
            return None;
        }
        // Its commit need not wait for the disk (a lost checkpoint only
        // costs a longer walk), so that the processes moving it at once do
        // not queue on one another's fsync. Nor on one another's row lock:
        // a move while another process is moving it is skipped (that one
        // moves it as far, give or take a few records), where waiting cost
        // each move a queue of the processes that drew close lags.
        let t = Instant::now();
        let saved = self.with(false, |s| {
            let st = s.st(if stored.is_some() {
                MOVE_CHECKPOINT
            } else {
                FIRST_CHECKPOINT
            })?;
            s.client.execute(&st, &[&id, &head, &ts(Utc::now())])
        });
        self.profile.add(Phase::Checkpoint, t);
        match saved {
            Ok(n) => {
                *self
                    .stored_checkpoint
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(id);
                (n == 1).then(|| chain::Checkpoint {
                    id,
                    hash: head.to_string(),
                })
            }
            // Only a cost: the next process walks from the older checkpoint.
            Err(e) => {
                tracing::debug!("store {}: checkpoint not saved: {e}", self.target.describe);
                None
            }
        }
    }

    /// Walk the chain from `from` (every record when `None`) in one
    /// snapshot, remember the result, and move the stored checkpoint.
    pub(super) fn walk_chain(
        &self,
        from: Option<chain::Checkpoint>,
        dispute: Option<chain::Broken>,
    ) -> Result<ChainReport, StoreError> {
        let after = from.as_ref().map(|c| c.id).unwrap_or(0);
        let (rows, key, stored, warnings) = self.with(true, |s| {
            let rows_st = s.st(
                "SELECT id, at, actor, action, env, version, from_version, outcome, detail, finishes, note, prev_hash, hash
                 FROM shipdeck_audit WHERE id > $1 ORDER BY id",
            )?;
            let key_st = s.st(
                "SELECT (SELECT MAX(id) FROM shipdeck_audit), (SELECT last FROM shipdeck_audit_seq WHERE one = 1)",
            )?;
            let ev_st = s.st("SELECT at, what FROM shipdeck_integrity_events ORDER BY id")?;
            let cp_st = s.st("SELECT id, hash FROM shipdeck_chain_checkpoint WHERE one = 1")?;
            // One snapshot: the rows, the counter and the events agree.
            let mut tx = s
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let rows = tx.query(&rows_st, &[&after])?;
            let k = tx.query_one(&key_st, &[])?;
            let key: (Option<i64>, i64) = (k.get(0), k.get::<_, Option<i64>>(1).unwrap_or(0));
            let stored = tx.query_opt(&cp_st, &[])?.map(|r| chain::Checkpoint {
                id: r.get(0),
                hash: r.get(1),
            });
            let warnings: Vec<String> = tx
                .query(&ev_st, &[])?
                .iter()
                .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect();
            tx.commit()?;
            Ok((rows, key, stored, warnings))
        })?;
        let rows = rows
            .iter()
            .map(|r| self.chain_row(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable_log)?;
        Ok(self.judge(from, &rows, key, stored, warnings, dispute))
    }

    /// Judge `rows`, the records after `from`, remember the result, and
    /// move the stored checkpoint. A `dispute` (a checkpoint that disagrees
    /// with its record) breaks the chain there and leaves the stored
    /// checkpoint as it is: it is the evidence.
    pub(super) fn judge(
        &self,
        from: Option<chain::Checkpoint>,
        rows: &[ChainRow],
        key: (Option<i64>, i64),
        cp: Option<chain::Checkpoint>,
        warnings: Vec<String>,
        dispute: Option<chain::Broken>,
    ) -> ChainReport {
        let disputed = dispute.is_some();
        let report = assess(from.as_ref(), rows, key, warnings, dispute);
        self.keep(report, key, cp, disputed)
    }

    /// Remember `report` (of the log at `key`, the stored checkpoint `cp`
    /// as read) and act on it: move the stored checkpoint when it is
    /// intact, drop it (with an integrity event) when it is broken, keep
    /// it when `disputed` (it is the evidence).
    fn keep(
        &self,
        report: ChainReport,
        key: (Option<i64>, i64),
        cp: Option<chain::Checkpoint>,
        disputed: bool,
    ) -> ChainReport {
        let stored = *self
            .stored_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // The stored checkpoint once this is done, as far as this knows.
        let mut cp = cp;
        if disputed {
            // Keep the evidence.
        } else if report.broken.is_none()
            && let Some(head) = &report.head
        {
            let id = report.records as i64;
            if let Some(moved) = self.move_checkpoint(stored, id, head) {
                cp = Some(moved);
            }
        } else if let Some(b) = &report.broken {
            // A broken chain vouches for nothing: every later check walks
            // the whole log. The checkpoint goes with an integrity event
            // naming it (the guard trigger refuses a silent drop).
            let what = b.to_string();
            let dropped = self.with(false, |s| {
                let mut tx = s.client.transaction()?;
                tx.execute(
                    "INSERT INTO shipdeck_integrity_events (at, what)
                     SELECT $1, 'the audit chain was found broken at ' || $2::text
                                || '; its checkpoint (#' || id || ', ' || hash || ') was dropped, so that every check walks the whole log'
                     FROM shipdeck_chain_checkpoint WHERE one = 1",
                    &[&ts(Utc::now()), &what],
                )?;
                tx.execute("DELETE FROM shipdeck_chain_checkpoint", &[])?;
                tx.commit()
            });
            if dropped.is_ok() {
                cp = None;
            }
            if let Err(e) = dropped {
                tracing::warn!(
                    "store {}: checkpoint not dropped: {e}",
                    self.target.describe
                );
            }
        }
        *self.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(Verified {
            key,
            cp,
            report: report.clone(),
        });
        report
    }
}

/// The report on `rows`, the records after `from`, with the log's
/// `key`, its integrity events' `warnings` and a checkpoint's `dispute`.
fn assess(
    from: Option<&chain::Checkpoint>,
    rows: &[ChainRow],
    key: (Option<i64>, i64),
    warnings: Vec<String>,
    dispute: Option<chain::Broken>,
) -> ChainReport {
    let mut report = chain::verify_from(from, rows, Some(key.1));
    report.warnings = warnings;
    if report.broken.is_none() {
        report.broken = chain::unreadable(rows);
    }
    chain::with_dispute(report, dispute)
}
