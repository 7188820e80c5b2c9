//! The `Store` trait on SQLite: audit records and deploys, approvals and
//! history, locks, monitor records and samples, integrity checks, presence
//! and the change feed.

use super::*;

/// Where the store put a deploy (row `d`) in its one order: the id of the
/// audit record its outcome went in with (the same transaction), else — a
/// row without that record — its started record's ([`DeployRecord::seq`]).
const DEPLOY_SEQ: &str = "COALESCE((SELECT MIN(f.id) FROM audit f
    WHERE f.finishes = d.audit_id AND f.outcome = 'succeeded'), d.audit_id)";

impl Store for SqliteStore {
    fn audit_start(&self, rec: &NewAudit<'_>) -> Result<i64, StoreError> {
        self.with_audit(|tx| insert_audit(tx, rec, None, None))
    }

    fn audit_start_held(&self, rec: &NewAudit<'_>, lock: &LockInfo) -> Result<i64, StoreError> {
        self.with_audit(|tx| {
            let id = insert_audit(tx, rec, None, None)?;
            // Only this process's own row (its pid space, or a row of an
            // older shipdeck without one), never a namesake's.
            tx.execute(
                "UPDATE locks SET audit_id = ?1 WHERE env = ?2 AND pid = ?3 AND host = ?4
                   AND (pid_space IS NULL OR pid_space IS ?5)",
                params![id, lock.env, lock.pid, lock.host, crate::host::pid_space()],
            )?;
            Ok(id)
        })
    }

    fn audit_finish(
        &self,
        started: i64,
        at: DateTime<Utc>,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        match self.with_audit(|tx| insert_finish(tx, started, at, outcome, detail))? {
            None => Ok(()),
            Some((id, was)) => second_finish(&self.describe(), started, (id, &was), outcome),
        }
    }

    fn record_deploy(
        &self,
        started: i64,
        rec: &DeployRecord,
        detail: &str,
    ) -> Result<(), StoreError> {
        let found = self.with_audit(|tx| {
            // Finished already (a retry whose first attempt went in): no
            // second deploy row either.
            if let Some(found) = recorded_finish(tx, started, Outcome::Succeeded)? {
                return Ok(Some(found));
            }
            tx.execute(
                "INSERT INTO deploys (env, version, from_version, at, actor, kind, audit_id, url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rec.env,
                    rec.version.as_str(),
                    rec.from_version.as_ref().map(|v| v.as_str()),
                    ts(rec.at),
                    rec.actor,
                    rec.kind.as_str(),
                    started,
                    rec.url
                ],
            )?;
            insert_finish(tx, started, rec.at, Outcome::Succeeded, detail)
        })?;
        match found {
            None => Ok(()),
            Some((id, was)) => {
                second_finish(&self.describe(), started, (id, &was), Outcome::Succeeded)
            }
        }
    }

    fn record_approval(&self, a: &Approval) -> Result<i64, StoreError> {
        self.with_audit(|tx| {
            tx.execute(
                "INSERT INTO approvals (env, version, decision, actor, at, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.env,
                    a.version.as_str(),
                    a.decision.as_str(),
                    a.actor,
                    ts(a.at),
                    a.note
                ],
            )?;
            let detail = NewAudit::approval_detail(a);
            insert_audit(
                tx,
                &NewAudit::of_approval(a, &detail),
                None,
                a.note.as_deref(),
            )
        })
    }

    fn history(&self, env: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        // Newest first, walking back only as far as `limit` takes it: an
        // environment's records by its index, all of them by their ids
        // (`+` keeps SQLite from reading every start by `audit_finishes`
        // and sorting them: a status view's rollback plan asks for 200 of
        // a long history).
        let filter = match env {
            Some(_) => "s.env = ?1 AND s.finishes IS NULL",
            None => "?1 IS NULL AND +s.finishes IS NULL",
        };
        self.audit_entries(filter, env, limit)
    }

    fn canary_history(&self, env: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_entries(
            "s.env = ?1 AND s.finishes IS NULL AND s.action IN ('canary', 'promote')
               AND s.outcome <> 'refused'",
            Some(env),
            limit,
        )
    }

    fn deploys(&self, env: Option<&str>) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            &format!(
                "SELECT env, version, from_version, at, actor, kind, url, {DEPLOY_SEQ} FROM deploys d
                 WHERE ?1 IS NULL OR env = ?1 ORDER BY id"
            ),
            params![env],
        )
    }

    fn latest_deploys(&self) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            &format!(
                "SELECT env, version, from_version, at, actor, kind, url, {DEPLOY_SEQ} FROM deploys d
                 WHERE id IN (SELECT MAX(id) FROM deploys GROUP BY env) ORDER BY id"
            ),
            [],
        )
    }

    fn recent_deploys(&self, env: &str, limit: usize) -> Result<Vec<DeployRecord>, StoreError> {
        self.query_deploys(
            &format!(
                "SELECT env, version, from_version, at, actor, kind, url, {DEPLOY_SEQ} FROM
                   (SELECT * FROM deploys WHERE env = ?1 ORDER BY id DESC LIMIT ?2) d
                 ORDER BY id"
            ),
            params![env, limit as i64],
        )
    }

    /// Decisions about `env` as the audit log records them. The
    /// `approvals` table is only an index: when it disagrees (someone
    /// edited it), the audit log wins and the disagreement is reported
    /// through [`Store::integrity`].
    fn approvals(&self, env: &str) -> Result<Vec<Approval>, StoreError> {
        type Row = (
            String,
            Option<String>,
            String,
            String,
            Option<String>,
            String,
            i64,
        );
        let rows: Vec<Row> = self.with(|c| {
            // By kind (`audit_kind`), not by walking the environment's
            // history: no ORDER BY, which would make SQLite walk `audit_env`
            // to spare a sort; the few decisions are sorted below.
            let mut st = c.prepare(
                "SELECT action, version, actor, at, note, detail, id FROM audit
                 WHERE env = ?1 AND finishes IS NULL AND outcome = 'succeeded'
                   AND action IN ('approve', 'reject')",
            )?;
            let it = st.query_map(params![env], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?;
            it.collect()
        })?;
        let mut rows = rows;
        rows.sort_by_key(|r| r.6);
        let from_audit = rows
            .into_iter()
            .map(|(action, version, actor, at, note, detail, id)| {
                let version = version.ok_or_else(|| self.corrupt("a decision without version"))?;
                Ok(Approval {
                    seq: Some(id),
                    env: env.to_string(),
                    version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                    decision: if action == "approve" {
                        Decision::Go
                    } else {
                        Decision::NoGo
                    },
                    actor,
                    at: self.parse_time(&at)?,
                    note: note.or_else(|| legacy_note(&action, &detail)),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let indexed: Vec<(String, String, String, String)> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT version, decision, actor, at FROM approvals WHERE env = ?1 ORDER BY id",
            )?;
            let it = st.query_map(params![env], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            it.collect()
        })?;
        if let Some(note) = approvals_disagree(env, &from_audit, &indexed) {
            self.note(note);
        }
        Ok(from_audit)
    }

    fn try_lock(&self, lock: &LockInfo) -> Result<Result<(), LockInfo>, StoreError> {
        let now = lock.acquired_at;
        let space = claim_space(&lock.host);
        let current = self.lock_row(&lock.env, now)?;
        if let Some((held, held_space, false)) = current
            && !same_holder(
                (held.pid, &held.host, held_space.as_deref()),
                lock.pid,
                &lock.host,
            )
        {
            return Ok(Err(held));
        }
        // Insert-or-replace inside an immediate transaction so two processes
        // racing for the same lock cannot both win.
        let won = self.with_write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Option<(u32, String, String, Option<String>)> = tx
                .query_row(
                    "SELECT pid, host, expires_at, pid_space FROM locks WHERE env = ?1",
                    params![lock.env],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            // Its own (by pid space, not hostname), expired, or held by a
            // process of this pid space that is gone: see `holder_gone`.
            let free = match &existing {
                None => true,
                Some((pid, host, expires, held_space)) => {
                    same_holder((*pid, host, held_space.as_deref()), lock.pid, &lock.host)
                        || expires.as_str() < ts(now).as_str()
                        || holder_gone(*pid, host, held_space.as_deref())
                }
            };
            if free {
                // A renewal (the same process) keeps the time the lock was
                // first taken: a renewal says when it was sent; and the
                // audit record it is linked to (another holder's lock has
                // none until that holder links its own).
                tx.execute(
                    "INSERT INTO locks (env, holder, pid, host, acquired_at, expires_at, pid_space)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (env) DO UPDATE SET holder = excluded.holder,
                       acquired_at = CASE WHEN locks.pid = excluded.pid AND locks.host = excluded.host
                                           AND (locks.pid_space IS NULL
                                                OR locks.pid_space IS excluded.pid_space)
                                          THEN locks.acquired_at ELSE excluded.acquired_at END,
                       audit_id = CASE WHEN locks.pid = excluded.pid AND locks.host = excluded.host
                                        AND (locks.pid_space IS NULL
                                             OR locks.pid_space IS excluded.pid_space)
                                       THEN locks.audit_id END,
                       pid = excluded.pid, host = excluded.host, expires_at = excluded.expires_at,
                       pid_space = excluded.pid_space",
                    params![
                        lock.env,
                        lock.holder,
                        lock.pid,
                        lock.host,
                        ts(lock.acquired_at),
                        ts(lock.expires_at),
                        space
                    ],
                )?;
            }
            tx.commit()?;
            Ok(free)
        })?;
        if won {
            Ok(Ok(()))
        } else {
            match self.lock_of(&lock.env, now)? {
                Some(h) => Ok(Err(h)),
                None => self.try_lock(lock),
            }
        }
    }

    fn unlock(&self, env: &str, pid: u32, host: &str) -> Result<(), StoreError> {
        self.with_write(|c| {
            // Only this process's own row, never a namesake's (the same
            // pid and hostname in another pid space).
            c.execute(
                "DELETE FROM locks WHERE env = ?1 AND pid = ?2 AND host = ?3
                   AND (pid_space IS NULL OR pid_space IS ?4)",
                params![env, pid, host, crate::host::pid_space()],
            )
            .map(|_| ())
        })
    }

    fn lock_of(&self, env: &str, now: DateTime<Utc>) -> Result<Option<LockInfo>, StoreError> {
        Ok(self
            .lock_row(env, now)?
            .and_then(|(info, _, stale)| (!stale).then_some(info)))
    }

    /// A window's record written again (a retry) is kept once: see
    /// [`verdict_write`].
    fn record_monitor(&self, m: &MonitorRecord) -> Result<(), StoreError> {
        self.with_write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let newest: Option<NewestMonitor> = tx
                .query_row(
                    "SELECT verdict, finished_at, metric, reason FROM monitor_runs
                     WHERE env = ?1 AND version = ?2 AND started_at = ?3 ORDER BY id DESC LIMIT 1",
                    params![m.env, m.version.as_str(), ts(m.started_at)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            if verdict_write(m, newest.as_ref()) {
                tx.execute(
                    "INSERT INTO monitor_runs (env, version, started_at, finished_at, verdict, metric, reason, start_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        m.env,
                        m.version.as_str(),
                        ts(m.started_at),
                        m.finished_at.map(ts),
                        m.verdict,
                        m.metric,
                        m.reason,
                        m.seq
                    ],
                )?;
            }
            tx.commit()
        })
    }

    fn caught_versions(&self, env: &str) -> Result<Vec<Version>, StoreError> {
        // A window's outcome is on the record that finishes its start.
        let rows: Vec<String> = self.with(|c| {
            // Only the failed records are read (`audit_kind`): a first
            // finish that failed, or a start that failed and has no finish,
            // so a long history of passed windows costs nothing here.
            let mut st = c.prepare(
                "SELECT s.version FROM audit s
                 WHERE s.id IN (
                     SELECT f.finishes FROM audit f
                      WHERE f.env = ?1 AND f.action = 'monitor' AND f.outcome = 'failed'
                        AND f.finishes IS NOT NULL
                        AND f.id = (SELECT MIN(id) FROM audit WHERE finishes = f.finishes)
                     UNION ALL
                     SELECT b.id FROM audit b
                      WHERE b.env = ?1 AND b.action = 'monitor' AND b.outcome = 'failed'
                        AND b.finishes IS NULL
                        AND NOT EXISTS (SELECT 1 FROM audit WHERE finishes = b.id))
                   AND +s.env = ?1 AND +s.action = 'monitor' AND +s.finishes IS NULL
                   AND s.version IS NOT NULL
                 GROUP BY s.version ORDER BY MIN(s.id)",
            )?;
            let it = st.query_map(params![env], |r| r.get(0))?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|v| Version::parse(&v).map_err(|e| self.corrupt(e)))
            .collect()
    }

    fn last_monitor(&self, env: &str) -> Result<Option<MonitorRecord>, StoreError> {
        type Row = (
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            Option<i64>,
        );
        // The row's own window start (`NULL` in a row written without it,
        // or in an older file opened read-only): judged by its dates then.
        let sql = format!(
            "SELECT m.version, m.started_at, m.finished_at, m.verdict, m.metric, m.reason, {}
             FROM monitor_runs m WHERE m.env = ?1 ORDER BY m.id DESC LIMIT 1",
            if self.started_windows {
                "m.start_id"
            } else {
                "NULL"
            }
        );
        let row: Option<Row> = self.with(|c| {
            c.query_row(&sql, params![env], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .optional()
        })?;
        row.map(
            |(version, started, finished, verdict, metric, reason, seq)| {
                Ok(MonitorRecord {
                    env: env.to_string(),
                    version: Version::parse(&version).map_err(|e| self.corrupt(e))?,
                    started_at: self.parse_time(&started)?,
                    finished_at: finished.map(|f| self.parse_time(&f)).transpose()?,
                    verdict,
                    metric,
                    reason,
                    seq,
                })
            },
        )
        .transpose()
    }

    fn record_sample(
        &self,
        env: &str,
        at: DateTime<Utc>,
        s: &Sample,
        keep: chrono::Duration,
    ) -> Result<(), StoreError> {
        self.with_write(|c| {
            c.execute(
                "INSERT OR REPLACE INTO samples (env, at, requests, errors, p50_ms, p95_ms, p99_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    env,
                    ts(at),
                    s.requests,
                    s.errors,
                    s.p50_ms,
                    s.p95_ms,
                    s.p99_ms
                ],
            )?;
            c.execute(
                "DELETE FROM samples WHERE env = ?1 AND at < ?2",
                params![env, ts(crate::domain::clock::before(at, keep))],
            )?;
            Ok(())
        })
    }

    fn samples(
        &self,
        env: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Sample)>, StoreError> {
        type Row = (String, f64, f64, Option<f64>, Option<f64>, Option<f64>);
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT at, requests, errors, p50_ms, p95_ms, p99_ms FROM samples
                 WHERE env = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at",
            )?;
            let it = st.query_map(params![env, ts(from), ts(to)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(|(at, requests, errors, p50_ms, p95_ms, p99_ms)| {
                Ok((
                    self.parse_time(&at)?,
                    Sample {
                        t: 0.0,
                        requests,
                        errors,
                        p50_ms,
                        p95_ms,
                        p99_ms,
                    },
                ))
            })
            .collect()
    }

    /// `history --verify`: the whole log, from its first record.
    fn verify(&self) -> Result<ChainReport, StoreError> {
        // The whole log, and the checkpoint held against its record.
        let dispute = self.checkpoint_standing()?.and_then(|(_, d)| d);
        let mut report = self.walk_chain(None, dispute)?;
        let live: Vec<String> = self.with(|c| {
            let mut st = c.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")?;
            let it = st.query_map([], |r| r.get(0))?;
            it.collect()
        })?;
        for t in AUDIT_TRIGGERS {
            if !live.iter().any(|l| l == t) {
                report.warnings.push(format!(
                    "the audit log's append-only trigger {t} is missing right now"
                ));
            }
        }
        if self.read_only.is_none() {
            for t in CHECKPOINT_TRIGGERS {
                if !live.iter().any(|l| l == t) {
                    report.warnings.push(format!(
                        "the chain checkpoint's guard trigger {t} is missing right now"
                    ));
                }
            }
        }
        Ok(report)
    }

    fn integrity(&self) -> Option<String> {
        let mut problems = Vec::new();
        if let Some(why) = self.file_moved() {
            problems.push(format!(
                "{why} ({}); this process no longer acts: restart it",
                self.path.display()
            ));
        }
        match self.chain_report(false) {
            Ok(r) => {
                if let Some(b) = r.broken {
                    problems.push(format!(
                        "the audit log's hash chain is broken at {b}; actions are refused (see `shipdeck history --verify`)"
                    ));
                }
            }
            Err(e) => problems.push(format!("the audit log cannot be verified: {e}")),
        }
        problems.extend(
            self.notes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        if let Some(s) = self
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            problems.push(format!(
                "store {} shows a snapshot from {} UTC that will not update until the store can be read live ({}: another process may hold it); it is read live again as soon as it can be",
                self.path.display(),
                s.at.format("%H:%M:%S"),
                s.cause
            ));
        }
        if let Some(why) = &self.read_only {
            problems.push(format!(
                "store {} is read-only ({why}): status and history work, actions are refused",
                self.path.display()
            ));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    fn unfinished(&self) -> Result<Vec<Unfinished>, StoreError> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            bool,
        );
        let rows: Vec<Row> = self.with(|c| {
            // When as many deploys begun have an outcome as were begun,
            // none is unfinished, and both counts are read from
            // `audit_kind` alone — not a look-up per deploy ever begun.
            // Starts with an outcome are counted once each: logs from
            // before `second_finish` may hold two outcomes of one start,
            // which counted twice would make up for one that has none.
            let open: i64 = c.query_row(
                "SELECT (SELECT COUNT(*) FROM audit
                          WHERE action IN ('promote', 'rollback') AND outcome = 'started'
                            AND finishes IS NULL)
                      - (SELECT COUNT(DISTINCT finishes) FROM audit
                          WHERE action IN ('promote', 'rollback')
                            AND outcome NOT IN ('started', 'unknown') AND finishes IS NOT NULL)",
                [],
                |r| r.get(0),
            )?;
            if open == 0 {
                return Ok(Vec::new());
            }
            let mut st = c.prepare(
                "SELECT s.id, s.at, s.actor, s.action, s.env, s.version, s.from_version,
                        (SELECT MIN(l.id) FROM audit l
                          WHERE l.env = s.env AND l.id > s.id AND l.finishes IS NULL
                            AND l.outcome = 'started' AND l.action IN ('promote', 'rollback')),
                        EXISTS (SELECT 1 FROM audit f WHERE f.finishes = s.id)
                 FROM audit s
                 WHERE s.finishes IS NULL AND s.outcome = 'started'
                   AND s.action IN ('promote', 'rollback')
                   AND NOT EXISTS (SELECT 1 FROM audit f
                        WHERE f.finishes = s.id AND f.outcome <> 'unknown')
                   AND (NOT EXISTS (SELECT 1 FROM audit f WHERE f.finishes = s.id)
                     OR NOT EXISTS (SELECT 1 FROM audit l
                          WHERE l.env = s.env AND l.id > s.id AND l.finishes IS NULL
                            AND l.outcome = 'started' AND l.action IN ('promote', 'rollback')))
                 ORDER BY s.id",
            )?;
            let it = st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(
                |(id, at, actor, action, env, version, from, later, unknown)| {
                    Ok(Unfinished {
                        id,
                        at: self.parse_time(&at)?,
                        actor,
                        action: ActionKind::parse(&action)
                            .ok_or_else(|| self.corrupt(format!("action {action:?}")))?,
                        env,
                        version: self
                            .parse_version(version)?
                            .ok_or_else(|| self.corrupt(format!("deploy #{id} without version")))?,
                        from_version: self.parse_version(from)?,
                        superseded_by: later,
                        unknown,
                    })
                },
            )
            .collect()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn heartbeat(&self, p: &Presence, expire_before: DateTime<Utc>) -> Result<(), StoreError> {
        self.with_write(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM presence WHERE last_seen < ?1",
                params![ts(expire_before)],
            )?;
            // Its own row only (its pid space; '' for none), never a
            // namesake's in another container.
            tx.execute(
                "INSERT INTO presence (host, pid, actor, since, last_seen, pid_space)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (host, pid, pid_space) DO UPDATE SET
                     actor = excluded.actor, last_seen = excluded.last_seen",
                params![
                    p.host,
                    p.pid,
                    p.actor,
                    ts(p.since),
                    ts(p.last_seen),
                    p.pid_space.as_deref().unwrap_or("")
                ],
            )?;
            tx.commit()
        })
    }

    fn leave(&self, host: &str, pid: u32, pid_space: Option<&str>) -> Result<(), StoreError> {
        self.with_write(|c| {
            c.execute(
                "DELETE FROM presence WHERE host = ?1 AND pid = ?2 AND pid_space = ?3",
                params![host, pid, pid_space.unwrap_or("")],
            )
            .map(|_| ())
        })
    }

    fn present(&self, fresh_since: DateTime<Utc>) -> Result<Vec<Presence>, StoreError> {
        type Row = (String, u32, String, String, String, Option<String>);
        // A read-only file of an older shipdeck has no pid space to read.
        let sql = format!(
            "SELECT host, pid, actor, since, last_seen, {} FROM presence
             WHERE last_seen >= ?1 ORDER BY since, host, pid{}",
            if self.spaced_presence {
                "NULLIF(pid_space, '')"
            } else {
                "NULL"
            },
            if self.spaced_presence {
                ", pid_space"
            } else {
                ""
            },
        );
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(&sql)?;
            let it = st.query_map(params![ts(fresh_since)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            it.collect()
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (host, pid, actor, since, last_seen, pid_space) in rows {
            if holder_gone(pid, &host, pid_space.as_deref()) {
                continue;
            }
            out.push(Presence {
                actor,
                host,
                pid,
                pid_space,
                since: self.parse_time(&since)?,
                last_seen: self.parse_time(&last_seen)?,
            });
        }
        Ok(out)
    }

    /// A watcher thread with its own connection, checking every
    /// [`CHANGE_CHECK`] (one `PRAGMA data_version`, and one indexed read
    /// when it moved); it ends once every subscriber has gone.
    fn changes(&self) -> Result<Changes, StoreError> {
        let (conn, snapshot) =
            watcher_connection(&self.path, self.read_only.is_some()).map_err(|e| self.err(e))?;
        // The starting point is read here, before the feed is handed out:
        // read on the watcher thread, a commit made between this return
        // and the thread's first look would be the baseline, never a tick.
        let start = (data_version(&conn).ok(), change_mark(&conn).ok());
        let (notifier, feed) = Changes::channel();
        let path = self.path.clone();
        std::thread::Builder::new()
            .name("shipdeck-changes".into())
            .spawn(move || watch_changes(conn, snapshot, notifier, path, start))
            .map_err(|e| self.err(format!("cannot start the change watcher: {e}")))?;
        Ok(feed)
    }
}

impl SqliteStore {
    /// Audit entries matching `filter` (on the start record `s`, `?1`
    /// being `env`), newest first, at most `limit`, each with the outcome
    /// it ended with: [`Store::history`] and [`Store::canary_history`].
    fn audit_entries(
        &self,
        filter: &str,
        env: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT s.id, s.at, s.actor, s.action, s.env, s.version, s.from_version,
                        s.outcome, s.detail, f.outcome, f.detail, f.at
                 FROM audit s LEFT JOIN audit f
                   ON f.id = COALESCE(
                        (SELECT MIN(id) FROM audit WHERE finishes = s.id AND outcome <> 'unknown'),
                        (SELECT MIN(id) FROM audit WHERE finishes = s.id))
                 WHERE {filter}
                 ORDER BY s.id DESC LIMIT ?2"
            ))?;
            let it = st.query_map(params![env, limit as i64], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })?;
            it.collect()
        })?;
        rows.into_iter()
            .map(
                |(
                    id,
                    at,
                    actor,
                    action,
                    env,
                    version,
                    from,
                    status,
                    detail,
                    fin,
                    fin_detail,
                    fin_at,
                )| {
                    let at = self.parse_time(&at)?;
                    let (outcome, detail) = audit_outcome(status, detail, fin, fin_detail, || {
                        let key = super::super::live_key(&action, &env);
                        Ok(self
                            .lock_of(&key, Utc::now())?
                            .is_some_and(|l| l.guards(id, at)))
                    })?;
                    Ok(AuditEntry {
                        id,
                        at,
                        actor,
                        action: ActionKind::parse(&action)
                            .ok_or_else(|| self.corrupt(format!("action {action:?}")))?,
                        env,
                        version: self.parse_version(version)?,
                        from_version: self.parse_version(from)?,
                        outcome: Outcome::parse(&outcome)
                            .ok_or_else(|| self.corrupt(format!("outcome {outcome:?}")))?,
                        detail,
                        finished_at: fin_at.map(|t| self.parse_time(&t)).transpose()?,
                    })
                },
            )
            .collect()
    }

    /// `env`'s lock row: the lock, its holder's pid space (`None` for a row
    /// of an older shipdeck) and whether it is stale at `now` — expired,
    /// or its holder provably gone ([`holder_gone`]).
    fn lock_row(
        &self,
        env: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(LockInfo, Option<String>, bool)>, StoreError> {
        // A read-only file of an older shipdeck has no link nor pid space
        // to read.
        let sql = format!(
            "SELECT holder, pid, host, acquired_at, expires_at, {}, {} FROM locks WHERE env = ?1",
            if self.linked_locks {
                "audit_id"
            } else {
                "NULL"
            },
            if self.spaced_locks {
                "pid_space"
            } else {
                "NULL"
            },
        );
        type Row = (
            String,
            u32,
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
        );
        let row: Option<Row> = self.with(|c| {
            c.query_row(&sql, params![env], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .optional()
        })?;
        let Some((holder, pid, host, acquired, expires, audit_id, space)) = row else {
            return Ok(None);
        };
        let info = LockInfo {
            env: env.to_string(),
            holder,
            pid,
            host,
            acquired_at: self.parse_time(&acquired)?,
            audit_id,
            expires_at: self.parse_time(&expires)?,
            pid_space: space.clone(),
        };
        let stale = info.expires_at < now || holder_gone(pid, &info.host, space.as_deref());
        Ok(Some((info, space, stale)))
    }
}
