//! shipdeck's tables in PostgreSQL, versioned. Every process migrates on
//! start inside one transaction holding `pg_advisory_xact_lock`, so two
//! consoles starting at once take turns; a schema written by a newer
//! shipdeck is refused with both versions named.

use postgres::Client;

use crate::store::StoreError;

/// The schema this shipdeck writes and reads.
pub const SCHEMA_VERSION: i32 = 12;

/// Advisory-lock namespaces (the two-int form), so shipdeck's keys never
/// meet each other nor a single-bigint key (the lock sessions' tokens).
pub(super) const NS_SCHEMA: i32 = 0x5348_4950; // "SHIP"
pub(super) const NS_LOCK: i32 = 0x5348_4c4b; // "SHLK"
pub(super) const NS_VERDICT: i32 = 0x5348_5644; // "SHVD"

/// The SQLSTATE of a second outcome for a started record (schema 8): the
/// server refused it because one is recorded already; the client reads
/// which and judges (`store::second_finish`). A code of shipdeck's own,
/// in a class PostgreSQL does not use.
pub(super) const ALREADY_FINISHED: &str = "SHD01";

/// Each step takes the schema from the version before it to its own.
const STEPS: [&str; 12] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12];

const V1: &str = r#"
CREATE TABLE shipdeck_audit (
    id           BIGINT PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    env          TEXT NOT NULL,
    version      TEXT,
    from_version TEXT,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    finishes     BIGINT REFERENCES shipdeck_audit(id),
    note         TEXT,
    prev_hash    TEXT,
    hash         TEXT
);
CREATE INDEX shipdeck_audit_finishes ON shipdeck_audit(finishes);
CREATE INDEX shipdeck_audit_env ON shipdeck_audit(env, id);
-- The highest audit id ever handed out: appends take turns on this row,
-- and a record deleted from the end of the log still shows.
CREATE TABLE shipdeck_audit_seq (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    last BIGINT NOT NULL
);
INSERT INTO shipdeck_audit_seq (one, last) VALUES (1, 0);
CREATE FUNCTION shipdeck_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE FUNCTION shipdeck_seq_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last < OLD.last THEN
        RAISE EXCEPTION 'the audit counter only moves forward' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER shipdeck_audit_no_update BEFORE UPDATE OR DELETE ON shipdeck_audit
    FOR EACH ROW EXECUTE FUNCTION shipdeck_append_only();
CREATE TRIGGER shipdeck_audit_no_truncate BEFORE TRUNCATE ON shipdeck_audit
    FOR EACH STATEMENT EXECUTE FUNCTION shipdeck_append_only();
CREATE TRIGGER shipdeck_audit_seq_forward BEFORE UPDATE ON shipdeck_audit_seq
    FOR EACH ROW EXECUTE FUNCTION shipdeck_seq_forward();
CREATE TRIGGER shipdeck_audit_seq_no_delete BEFORE DELETE ON shipdeck_audit_seq
    FOR EACH ROW EXECUTE FUNCTION shipdeck_append_only();
CREATE TABLE shipdeck_deploys (
    id           BIGSERIAL PRIMARY KEY,
    env          TEXT NOT NULL,
    version      TEXT NOT NULL,
    from_version TEXT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    audit_id     BIGINT REFERENCES shipdeck_audit(id),
    url          TEXT
);
CREATE INDEX shipdeck_deploys_env ON shipdeck_deploys(env, id);
CREATE TABLE shipdeck_integrity_events (
    id   BIGSERIAL PRIMARY KEY,
    at   TEXT NOT NULL,
    what TEXT NOT NULL
);
CREATE TRIGGER shipdeck_integrity_no_update BEFORE UPDATE OR DELETE ON shipdeck_integrity_events
    FOR EACH ROW EXECUTE FUNCTION shipdeck_append_only();
CREATE TABLE shipdeck_approvals (
    id       BIGSERIAL PRIMARY KEY,
    env      TEXT NOT NULL,
    version  TEXT NOT NULL,
    decision TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at       TEXT NOT NULL,
    note     TEXT
);
CREATE INDEX shipdeck_approvals_env ON shipdeck_approvals(env, id);
-- Who holds an environment's lock; `token` names the owner's lock
-- session (a session-level advisory lock): when that session ends — the
-- owner killed, its network gone — the row no longer holds anything.
CREATE TABLE shipdeck_locks (
    env         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    host        TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    token       BIGINT NOT NULL
);
CREATE TABLE shipdeck_monitor_runs (
    id          BIGSERIAL PRIMARY KEY,
    env         TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    verdict     TEXT NOT NULL,
    metric      TEXT,
    reason      TEXT NOT NULL
);
CREATE INDEX shipdeck_monitor_runs_env ON shipdeck_monitor_runs(env, id);
CREATE TABLE shipdeck_chain_checkpoint (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    id   BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at   TEXT NOT NULL
);
-- The live feed (Store::changes): every committed audit record or
-- monitoring verdict tells the listening consoles, once per statement.
CREATE FUNCTION shipdeck_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shipdeck_changes', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER shipdeck_audit_changed AFTER INSERT ON shipdeck_audit
    FOR EACH STATEMENT EXECUTE FUNCTION shipdeck_notify_change();
CREATE TRIGGER shipdeck_monitor_runs_changed AFTER INSERT ON shipdeck_monitor_runs
    FOR EACH STATEMENT EXECUTE FUNCTION shipdeck_notify_change();
-- One row per session that appended: a synchronous write of it after an
-- append (whose own commit does not wait) waits for the disk for both.
CREATE TABLE shipdeck_flush (
    pid INTEGER PRIMARY KEY,
    at  TEXT NOT NULL
);
CREATE TABLE shipdeck_samples (
    env      TEXT NOT NULL,
    at       TEXT NOT NULL,
    requests DOUBLE PRECISION NOT NULL,
    errors   DOUBLE PRECISION NOT NULL,
    p50_ms   DOUBLE PRECISION,
    p95_ms   DOUBLE PRECISION,
    p99_ms   DOUBLE PRECISION,
    PRIMARY KEY (env, at)
);
"#;

/// Version 2: presence (who has a console open). A console coming or
/// going ticks the live feed; a heartbeat (an UPDATE) does not.
const V2: &str = r#"
CREATE TABLE shipdeck_presence (
    host      TEXT NOT NULL,
    pid       BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    since     TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (host, pid)
);
CREATE TRIGGER shipdeck_presence_changed AFTER INSERT OR DELETE ON shipdeck_presence
    FOR EACH ROW EXECUTE FUNCTION shipdeck_notify_change();
"#;

/// Version 3: an append in one statement. The counter row is the chain's
/// turn-taking: from the moment an append takes it until its commit, no
/// other append can go, so that critical section must not wait for a
/// client's round trip nor for the disk. This function takes the turn,
/// reads the newest record's hash (a fresh snapshot after the wait, so it
/// sees the record the one before committed), hashes the new record
/// exactly as `chain::ChainRow::compute_hash` does (SHA-256 over the
/// previous hash, a newline and the compact JSON array of the fields) and
/// inserts it; its commit does not wait for the disk (the caller's next
/// statement, a synchronous write, does, sharing the flush with every
/// other append's). SECURITY INVOKER: the caller's grants still decide,
/// so the role needs INSERT on the audit log and UPDATE on the counter,
/// nothing more.
const V3: &str = r#"
CREATE FUNCTION shipdeck_append(
    p_at TEXT, p_actor TEXT, p_action TEXT, p_env TEXT, p_version TEXT,
    p_from_version TEXT, p_outcome TEXT, p_detail TEXT, p_finishes BIGINT, p_note TEXT,
    OUT out_id BIGINT, OUT out_prev TEXT, OUT out_hash TEXT)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE shipdeck_audit_seq s SET last = s.last + 1 WHERE s.one = 1 RETURNING s.last INTO out_id;
    IF out_id IS NULL THEN
        RAISE EXCEPTION 'the audit counter row is missing' USING ERRCODE = 'data_corrupted';
    END IF;
    SELECT a.hash INTO out_prev FROM shipdeck_audit a WHERE a.id < out_id ORDER BY a.id DESC LIMIT 1;
    out_prev := COALESCE(out_prev, '');
    out_hash := encode(sha256(convert_to(out_prev || chr(10) || '[' || out_id::text
        || ',' || to_json(p_at)::text || ',' || to_json(p_actor)::text
        || ',' || to_json(p_action)::text || ',' || to_json(p_env)::text
        || ',' || COALESCE(to_json(p_version)::text, 'null')
        || ',' || COALESCE(to_json(p_from_version)::text, 'null')
        || ',' || to_json(p_outcome)::text || ',' || to_json(p_detail)::text
        || ',' || COALESCE(p_finishes::text, 'null')
        || ',' || COALESCE(to_json(p_note)::text, 'null') || ']', 'UTF8')), 'hex');
    INSERT INTO shipdeck_audit (id, at, actor, action, env, version, from_version, outcome,
                                detail, finishes, note, prev_hash, hash)
    VALUES (out_id, p_at, p_actor, p_action, p_env, p_version, p_from_version, p_outcome,
            p_detail, p_finishes, p_note, out_prev, out_hash);
END $$;
"#;

/// Version 4: what keeps a status read's cost to what the view shows, not
/// the history behind it (`status.rs`). Indexes on an environment's
/// decisions about given versions (in the audit log and in the approvals
/// table that indexes it); and the deploys and rollbacks still without
/// outcome, kept by a trigger as the audit log grows — a started one goes
/// in, its outcome takes it out — instead of looked for in the whole log
/// on every read (`Store::unfinished` still reads the log itself; the
/// suites hold both to the same answer). The trigger's function runs with
/// its owner's rights (SECURITY DEFINER, its search path pinned), so the
/// team's role needs only SELECT on that table; a trigger only moves ids
/// of records the role was allowed to append. That SELECT is granted here
/// to every role that may read the audit log, so a store upgraded from
/// version 3 keeps working for the roles its owner set up then.
const V4: &str = r#"
CREATE INDEX shipdeck_audit_decisions ON shipdeck_audit (env, version, id)
    WHERE finishes IS NULL AND outcome = 'succeeded' AND action IN ('approve', 'reject');
CREATE INDEX shipdeck_approvals_version ON shipdeck_approvals (env, version, id);
CREATE TABLE shipdeck_unfinished (id BIGINT PRIMARY KEY);
INSERT INTO shipdeck_unfinished (id)
    SELECT s.id FROM shipdeck_audit s
    WHERE s.finishes IS NULL AND s.outcome = 'started' AND s.action IN ('promote', 'rollback')
      AND NOT EXISTS (SELECT 1 FROM shipdeck_audit f WHERE f.finishes = s.id);
CREATE FUNCTION shipdeck_track_unfinished() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NEW.finishes IS NOT NULL THEN
        DELETE FROM public.shipdeck_unfinished WHERE id = NEW.finishes;
    ELSE
        INSERT INTO public.shipdeck_unfinished (id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER shipdeck_audit_unfinished AFTER INSERT ON shipdeck_audit
    FOR EACH ROW WHEN (NEW.finishes IS NOT NULL
        OR (NEW.outcome = 'started' AND NEW.action IN ('promote', 'rollback')))
    EXECUTE FUNCTION shipdeck_track_unfinished();
-- Whoever may read the audit log may read the new table: a status read is
-- one statement, so without this every role granted only the older tables
-- (as the README said before) is refused all of it after the upgrade.
-- Read from the log's ACL itself (its owner's default rights when none
-- was granted; grantee 0 is PUBLIC), whoever granted them.
DO $grant$
DECLARE
    r RECORD;
BEGIN
    FOR r IN
        SELECT DISTINCT g.grantee, ro.rolname
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(COALESCE(c.relacl, acldefault('r', c.relowner))) g
        LEFT JOIN pg_roles ro ON ro.oid = g.grantee
        WHERE c.oid = 'shipdeck_audit'::regclass AND g.privilege_type = 'SELECT'
    LOOP
        IF r.grantee = 0 THEN
            GRANT SELECT ON shipdeck_unfinished TO PUBLIC;
        ELSIF r.rolname IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON shipdeck_unfinished TO %I', r.rolname);
        END IF;
    END LOOP;
END $grant$;
"#;

/// Version 5: the chain checkpoint guarded like the log it vouches for. It is
/// one row that only moves forward, and is dropped (by a walk that found
/// the chain broken) only once an integrity event names it, so that no
/// role with the documented grants can roll it back, forge it in place or
/// remove it without a trace — a rewrite of the log that re-hashes the
/// chain is caught by the checkpoint, which must therefore not be quietly
/// replaceable. (A role that owns the tables can drop the triggers; every
/// process reports missing ones.) Written to run again safely, as a store
/// set back to an earlier version is brought forward again.
const V5: &str = r#"
CREATE OR REPLACE FUNCTION shipdeck_checkpoint_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.id <= OLD.id OR NEW.one <> OLD.one THEN
            RAISE EXCEPTION 'the chain checkpoint only moves forward' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM shipdeck_integrity_events
                   WHERE strpos(what, 'checkpoint (#' || OLD.id || ', ' || OLD.hash || ')') > 0) THEN
        RAISE EXCEPTION 'the chain checkpoint is dropped only with an integrity event naming it' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END $$;
DROP TRIGGER IF EXISTS shipdeck_checkpoint_guard ON shipdeck_chain_checkpoint;
DROP TRIGGER IF EXISTS shipdeck_checkpoint_no_truncate ON shipdeck_chain_checkpoint;
CREATE TRIGGER shipdeck_checkpoint_guard BEFORE UPDATE OR DELETE ON shipdeck_chain_checkpoint
    FOR EACH ROW EXECUTE FUNCTION shipdeck_checkpoint_guard();
CREATE TRIGGER shipdeck_checkpoint_no_truncate BEFORE TRUNCATE ON shipdeck_chain_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION shipdeck_append_only();
"#;

/// Version 6: an index on the starts of an environment's monitoring windows
/// by version, so a status view reads whether the versions it can offer as
/// rollback targets were caught in one probe each (`status.rs`), however
/// long the log. Written to run again safely.
const V6: &str = r#"
CREATE INDEX IF NOT EXISTS shipdeck_audit_monitors ON shipdeck_audit (env, version, id)
    WHERE finishes IS NULL AND action = 'monitor';
"#;

/// Version 7: a lock row dated by the server, on its own clock. Whether a
/// row whose lock session is gone was cut from a live owner by a server
/// restart is read by comparing when the row was taken with the server's
/// start (`locks::lock_alive_sql`); `acquired_at` is the client's clock,
/// and a promoter 10 minutes ahead of the server had its live lock read as
/// orphaned after a restart (one behind, a dead one's lock as cut). A
/// trigger stamps `taken_at` when a row is written for a new lock session
/// (an insert, or another token) and keeps it through renewals on the same
/// one, so no client, nor an older shipdeck still running during the
/// upgrade, writes it. Rows from before the upgrade keep NULL (read by
/// their `acquired_at`, as before). Written to run again safely.
const V7: &str = r#"
ALTER TABLE shipdeck_locks ADD COLUMN IF NOT EXISTS taken_at TIMESTAMPTZ;
CREATE OR REPLACE FUNCTION shipdeck_lock_taken() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.token IS DISTINCT FROM OLD.token THEN
        NEW.taken_at := clock_timestamp();
    ELSE
        NEW.taken_at := OLD.taken_at;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS shipdeck_lock_taken ON shipdeck_locks;
CREATE TRIGGER shipdeck_lock_taken BEFORE INSERT OR UPDATE ON shipdeck_locks
    FOR EACH ROW EXECUTE FUNCTION shipdeck_lock_taken();
"#;

/// Version 8: one outcome per started record. A write retried after its
/// commit went in but the reply was lost (the monitoring window retries its
/// writes through an outage; a deploy's outcome is written once more by
/// whoever retries it) must not append a second outcome for the same start.
/// `shipdeck_append` now asks `shipdeck_finish_once` after it has taken the
/// chain's turn — so every other append has committed or waits, and the
/// check's fresh snapshot sees any outcome committed before — and a second
/// outcome is refused with SQLSTATE SHD01 (`ALREADY_FINISHED`), rolling
/// back the whole statement (the deploy row it carries included). A check
/// rather than a unique index: logs written before this (or copied by
/// `store migrate` from an embedded store) may already hold two outcomes
/// for a start, which must stay as they are. Also an index on the
/// monitoring windows by start, for the one-verdict-per-window check
/// (`record_monitor`). Written to run again safely; no new grants (EXECUTE
/// on a new function is PUBLIC's, and it runs with the caller's rights).
const V8: &str = r#"
CREATE OR REPLACE FUNCTION shipdeck_finish_once(p_finishes BIGINT, p_outcome TEXT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_finishes IS NOT NULL
       AND EXISTS (SELECT 1 FROM shipdeck_audit a WHERE a.finishes = p_finishes
                   AND (p_outcome = 'unknown' OR a.outcome <> 'unknown')) THEN
        RAISE EXCEPTION 'audit record #% already has its outcome recorded', p_finishes
            USING ERRCODE = 'SHD01';
    END IF;
END $$;
CREATE OR REPLACE FUNCTION shipdeck_append(
    p_at TEXT, p_actor TEXT, p_action TEXT, p_env TEXT, p_version TEXT,
    p_from_version TEXT, p_outcome TEXT, p_detail TEXT, p_finishes BIGINT, p_note TEXT,
    OUT out_id BIGINT, OUT out_prev TEXT, OUT out_hash TEXT)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE shipdeck_audit_seq s SET last = s.last + 1 WHERE s.one = 1 RETURNING s.last INTO out_id;
    IF out_id IS NULL THEN
        RAISE EXCEPTION 'the audit counter row is missing' USING ERRCODE = 'data_corrupted';
    END IF;
    PERFORM shipdeck_finish_once(p_finishes, p_outcome);
    SELECT a.hash INTO out_prev FROM shipdeck_audit a WHERE a.id < out_id ORDER BY a.id DESC LIMIT 1;
    out_prev := COALESCE(out_prev, '');
    out_hash := encode(sha256(convert_to(out_prev || chr(10) || '[' || out_id::text
        || ',' || to_json(p_at)::text || ',' || to_json(p_actor)::text
        || ',' || to_json(p_action)::text || ',' || to_json(p_env)::text
        || ',' || COALESCE(to_json(p_version)::text, 'null')
        || ',' || COALESCE(to_json(p_from_version)::text, 'null')
        || ',' || to_json(p_outcome)::text || ',' || to_json(p_detail)::text
        || ',' || COALESCE(p_finishes::text, 'null')
        || ',' || COALESCE(to_json(p_note)::text, 'null') || ']', 'UTF8')), 'hex');
    INSERT INTO shipdeck_audit (id, at, actor, action, env, version, from_version, outcome,
                                detail, finishes, note, prev_hash, hash)
    VALUES (out_id, p_at, p_actor, p_action, p_env, p_version, p_from_version, p_outcome,
            p_detail, p_finishes, p_note, out_prev, out_hash);
END $$;
CREATE INDEX IF NOT EXISTS shipdeck_monitor_runs_window ON shipdeck_monitor_runs (env, started_at);
"#;

/// How long the server lets an append's notification stand for the
/// appends after it (V9): an append within this long of the last one
/// that notified commits without a NOTIFY of its own; the listeners tick
/// once more after it (`feed::TRAILING`), so every record is still
/// announced, within this and a margin, however fast the log grows.
pub(super) const NOTIFY_COALESCE_MS: u64 = 250;

/// Version 9: the audit log's live-feed notifications coalesced. Every
/// append ran `pg_notify` inside the chain's turn (the statement trigger
/// of V1), and a notifying commit queues on the server's notification
/// lock and queue: under 100 appenders the `pg_store` bench measured the
/// turn ~20-25% slower with it than without (pgbench, the same statements).
/// Now the trigger notifies only when the last notification for the log is
/// at least [`NOTIFY_COALESCE_MS`] old (the time is kept on the counter
/// row, which an append holds already); a listener that hears one reads
/// once more [`super::feed::TRAILING`] later, and that read sees every
/// append the notification stood for (they took the turn after it, within
/// the window, and committed in turn order). The function runs with its
/// owner's rights (SECURITY DEFINER, its search path pinned), so any role
/// that may append may move the time, and nothing else changes for the
/// documented grants. A time ahead of the server's clock (the clock set
/// back) counts as old, so a clock step never silences the feed. And
/// `shipdeck_append` calls `shipdeck_finish_once` only for an outcome (a
/// record that finishes another): the call cost ~0.04 ms of the turn for
/// every append (pg_stat_statements, the bench's profile mode) to do
/// nothing for the rest. Written to run again safely.
const V9: &str = r#"
ALTER TABLE shipdeck_audit_seq ADD COLUMN IF NOT EXISTS notified_at TIMESTAMPTZ;
CREATE OR REPLACE FUNCTION shipdeck_notify_audit() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE public.shipdeck_audit_seq SET notified_at = clock_timestamp()
    WHERE one = 1
      AND (notified_at IS NULL OR notified_at <= clock_timestamp() - interval '250 milliseconds'
           OR notified_at > clock_timestamp());
    IF FOUND THEN
        PERFORM pg_notify('shipdeck_changes', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS shipdeck_audit_changed ON shipdeck_audit;
CREATE TRIGGER shipdeck_audit_changed AFTER INSERT ON shipdeck_audit
    FOR EACH STATEMENT EXECUTE FUNCTION shipdeck_notify_audit();
CREATE OR REPLACE FUNCTION shipdeck_append(
    p_at TEXT, p_actor TEXT, p_action TEXT, p_env TEXT, p_version TEXT,
    p_from_version TEXT, p_outcome TEXT, p_detail TEXT, p_finishes BIGINT, p_note TEXT,
    OUT out_id BIGINT, OUT out_prev TEXT, OUT out_hash TEXT)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE shipdeck_audit_seq s SET last = s.last + 1 WHERE s.one = 1 RETURNING s.last INTO out_id;
    IF out_id IS NULL THEN
        RAISE EXCEPTION 'the audit counter row is missing' USING ERRCODE = 'data_corrupted';
    END IF;
    IF p_finishes IS NOT NULL THEN
        PERFORM shipdeck_finish_once(p_finishes, p_outcome);
    END IF;
    SELECT a.hash INTO out_prev FROM shipdeck_audit a WHERE a.id < out_id ORDER BY a.id DESC LIMIT 1;
    out_prev := COALESCE(out_prev, '');
    out_hash := encode(sha256(convert_to(out_prev || chr(10) || '[' || out_id::text
        || ',' || to_json(p_at)::text || ',' || to_json(p_actor)::text
        || ',' || to_json(p_action)::text || ',' || to_json(p_env)::text
        || ',' || COALESCE(to_json(p_version)::text, 'null')
        || ',' || COALESCE(to_json(p_from_version)::text, 'null')
        || ',' || to_json(p_outcome)::text || ',' || to_json(p_detail)::text
        || ',' || COALESCE(p_finishes::text, 'null')
        || ',' || COALESCE(to_json(p_note)::text, 'null') || ']', 'UTF8')), 'hex');
    INSERT INTO shipdeck_audit (id, at, actor, action, env, version, from_version, outcome,
                                detail, finishes, note, prev_hash, hash)
    VALUES (out_id, p_at, p_actor, p_action, p_env, p_version, p_from_version, p_outcome,
            p_detail, p_finishes, p_note, out_prev, out_hash);
END $$;
"#;

/// Version 10: a deploy lock knows the "started" audit record of the
/// action it guards. Its holder links the two as it appends the record
/// (`Store::audit_start_held`, the same statement), and status, history
/// and reconcile match a lock to its record by id; they matched by time
/// (`HOLDER_SKEW`), and a holder whose clock ran more than that behind
/// the server's had its deploy in flight read as dead (and reconciled by
/// another process). A renewal keeps the link, another holder's lock has
/// none until it links its own (`locks::PUT_LOCK`). Locks held across the
/// upgrade keep NULL and are matched by time, as before. The lock also
/// names its holder's pid space (`crate::host::pid_space`: hostname, boot
/// and pid namespace): a holder's pid is judged (dead, or this process)
/// only in its own pid space, never by hostname, which containers and
/// machines share; a row without one (an older shipdeck) is judged by
/// hostname as before. No new grants: the documented role may already
/// insert and update `shipdeck_locks`. Written to run again safely.
const V10: &str = r#"
ALTER TABLE shipdeck_locks ADD COLUMN IF NOT EXISTS audit_id BIGINT;
ALTER TABLE shipdeck_locks ADD COLUMN IF NOT EXISTS pid_space TEXT;
CREATE OR REPLACE FUNCTION shipdeck_lock_taken() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.token IS DISTINCT FROM OLD.token THEN
        NEW.taken_at := clock_timestamp();
    ELSE
        NEW.taken_at := OLD.taken_at;
    END IF;
    -- Another holder took the row: a link or pid space its write left as
    -- it was (a shipdeck from before schema 10, still running through the
    -- upgrade, knows neither) is the previous holder's, never the new one's.
    IF TG_OP = 'UPDATE' AND (NEW.pid IS DISTINCT FROM OLD.pid OR NEW.host IS DISTINCT FROM OLD.host) THEN
        IF NEW.audit_id IS NOT DISTINCT FROM OLD.audit_id THEN
            NEW.audit_id := NULL;
        END IF;
        IF NEW.pid_space IS NOT DISTINCT FROM OLD.pid_space THEN
            NEW.pid_space := NULL;
        END IF;
    END IF;
    RETURN NEW;
END $$;
"#;

/// Version 11: a shorter turn. What `shipdeck_append` does while it holds
/// the counter row is what every other append waits for, and the server's
/// CPU per append decides the rate on a small machine (issue 10), so the
/// turn now runs two statements and no trigger function in the common case:
/// - the counter's forward-only trigger fires only when the counter would
///   move back (`WHEN (NEW.last < OLD.last)`, the test its function made on
///   every append): the same refusal, without a plpgsql call per append;
/// - the previous record's hash is read in the INSERT's own `SELECT` (the
///   INSERT is a statement of its own, so its snapshot is taken after the
///   turn was won, as the separate read's was; the UPDATE and the INSERT
///   cannot be one statement: its snapshot would predate the wait, and miss
///   the record of the append the turn was waited for);
/// - the live feed's coalescing (V9) is done by the function itself, from
///   the time of the last notification its UPDATE of the counter returns:
///   only when that is due (at most about 4 times a second) does it move
///   that time, on the row it already holds, and notify — with the
///   caller's rights (whoever may append may update the counter), so no
///   function runs with its owner's rights that any role could call to
///   take the chain's turn. The audit log's statement trigger (which ran
///   that SECURITY DEFINER update on every append) is dropped: every append
///   goes through `shipdeck_append`, and `store migrate`'s copy, the one
///   other writer, notifies itself.
///
/// The record is hashed as before, with the same expression. Written to
/// run again safely; no new grants.
const V11: &str = r#"
DROP TRIGGER IF EXISTS shipdeck_audit_seq_forward ON shipdeck_audit_seq;
CREATE TRIGGER shipdeck_audit_seq_forward BEFORE UPDATE ON shipdeck_audit_seq
    FOR EACH ROW WHEN (NEW.last < OLD.last) EXECUTE FUNCTION shipdeck_seq_forward();
DROP TRIGGER IF EXISTS shipdeck_audit_changed ON shipdeck_audit;
DROP FUNCTION IF EXISTS shipdeck_notify_audit();
CREATE OR REPLACE FUNCTION shipdeck_append(
    p_at TEXT, p_actor TEXT, p_action TEXT, p_env TEXT, p_version TEXT,
    p_from_version TEXT, p_outcome TEXT, p_detail TEXT, p_finishes BIGINT, p_note TEXT,
    OUT out_id BIGINT, OUT out_prev TEXT, OUT out_hash TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    v_notified TIMESTAMPTZ;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE shipdeck_audit_seq s SET last = s.last + 1 WHERE s.one = 1
        RETURNING s.last, s.notified_at INTO out_id, v_notified;
    IF out_id IS NULL THEN
        RAISE EXCEPTION 'the audit counter row is missing' USING ERRCODE = 'data_corrupted';
    END IF;
    IF p_finishes IS NOT NULL THEN
        PERFORM shipdeck_finish_once(p_finishes, p_outcome);
    END IF;
    IF v_notified IS NULL OR v_notified <= clock_timestamp() - interval '250 milliseconds'
       OR v_notified > clock_timestamp() THEN
        UPDATE shipdeck_audit_seq s SET notified_at = clock_timestamp() WHERE s.one = 1;
        PERFORM pg_notify('shipdeck_changes', 'shipdeck_audit');
    END IF;
    INSERT INTO shipdeck_audit (id, at, actor, action, env, version, from_version, outcome,
                                detail, finishes, note, prev_hash, hash)
    SELECT out_id, p_at, p_actor, p_action, p_env, p_version, p_from_version, p_outcome,
           p_detail, p_finishes, p_note, h.prev,
           encode(sha256(convert_to(h.prev || chr(10) || '[' || out_id::text
        || ',' || to_json(p_at)::text || ',' || to_json(p_actor)::text
        || ',' || to_json(p_action)::text || ',' || to_json(p_env)::text
        || ',' || COALESCE(to_json(p_version)::text, 'null')
        || ',' || COALESCE(to_json(p_from_version)::text, 'null')
        || ',' || to_json(p_outcome)::text || ',' || to_json(p_detail)::text
        || ',' || COALESCE(p_finishes::text, 'null')
        || ',' || COALESCE(to_json(p_note)::text, 'null') || ']', 'UTF8')), 'hex')
    FROM (SELECT COALESCE((SELECT a.hash FROM shipdeck_audit a WHERE a.id < out_id
                           ORDER BY a.id DESC LIMIT 1), '') AS prev) h
    RETURNING prev_hash, hash INTO out_prev, out_hash;
END $$;
"#;

/// Version 12: a console's presence names its pid space
/// (`crate::host::pid_space`: hostname, boot and pid namespace), part of
/// its key. Keyed by host and pid alone, two consoles in two containers of
/// one host (both pid 1 under one hostname) were one row: one's heartbeat
/// kept the other "present", one's exit removed the other. `''` for a row
/// of an older shipdeck (a key cannot hold NULL), read as no space and
/// judged by hostname and pid as before. A shipdeck from before this step,
/// still running through the upgrade, refreshes its existing row as before
/// (its UPDATE names host and pid only); once that row has expired its
/// heartbeat fails (its INSERT's `ON CONFLICT (host, pid)` matches no
/// unique index — a partial one on `pid_space = ''` is not inferred
/// without a predicate it does not write) until it is restarted, logged
/// only (see the README's upgrade note). No new grants: the documented
/// role may already insert, update and delete `shipdeck_presence`.
///
/// And a monitoring window's rows name the window's own `monitor` started
/// audit record (`start_id`, [`crate::store::MonitorRecord::seq`]): looked
/// up as the newest monitor start of the row's env and version, a window
/// whose own start was written but not its row (killed between the two, or
/// the store down at its opening) lent that start's place to an older
/// window of the same version. `NULL` for the rows written before (and by
/// an older shipdeck still running): judged by their dates. No new grants:
/// the role already inserts into `shipdeck_monitor_runs`. Written to run
/// again safely.
const V12: &str = r#"
ALTER TABLE shipdeck_presence ADD COLUMN IF NOT EXISTS pid_space TEXT NOT NULL DEFAULT '';
ALTER TABLE shipdeck_presence DROP CONSTRAINT IF EXISTS shipdeck_presence_pkey;
ALTER TABLE shipdeck_presence ADD CONSTRAINT shipdeck_presence_pkey PRIMARY KEY (host, pid, pid_space);
ALTER TABLE shipdeck_monitor_runs ADD COLUMN IF NOT EXISTS start_id BIGINT;
"#;

/// The append-only triggers every process checks for.
pub(super) const AUDIT_TRIGGERS: [&str; 2] =
    ["shipdeck_audit_no_update", "shipdeck_audit_no_truncate"];

/// The chain checkpoint's guards (V5), checked for beside them.
pub(super) const CHECKPOINT_TRIGGERS: [&str; 2] = [
    "shipdeck_checkpoint_guard",
    "shipdeck_checkpoint_no_truncate",
];

/// The channel the live feed listens on.
pub(super) const CHANNEL: &str = "shipdeck_changes";

/// Bring the schema to [`SCHEMA_VERSION`], or refuse a newer one. A
/// store already at this version runs no DDL at all, so a role with only
/// the documented grants (no CREATE) can use it.
pub(super) fn migrate(c: &mut Client, store: &str) -> Result<(), StoreError> {
    let err = |e: postgres::Error| StoreError::Postgres {
        store: store.to_string(),
        cause: super::cause(&e),
        sqlstate: super::sqlstate(&e),
    };
    let (found, missing) = current(c).map_err(err)?;
    if let Some(v) = found {
        check_known(store, v)?;
        if v == SCHEMA_VERSION {
            return check_complete(store, v, &missing);
        }
    }
    let mut tx = c.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&NS_SCHEMA])
        .map_err(err)?;
    // Another process may have migrated while this one waited for the lock.
    // (IF NOT EXISTS: a process that raced to the lock finds the table.)
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS shipdeck_schema (
             one        INTEGER PRIMARY KEY CHECK (one = 1),
             version    INTEGER NOT NULL,
             written_by TEXT NOT NULL
         );
         INSERT INTO shipdeck_schema (one, version, written_by) VALUES (1, 0, '')
             ON CONFLICT (one) DO NOTHING;",
    )
    .map_err(err)?;
    let (from, missing) = current(&mut tx).map_err(err)?;
    let from = from.unwrap_or(0);
    check_known(store, from)?;
    if from == SCHEMA_VERSION {
        check_complete(store, from, &missing)?;
        return tx.commit().map_err(err);
    }
    for (i, step) in STEPS.iter().enumerate() {
        let to = i as i32 + 1;
        if to > from {
            tx.batch_execute(step).map_err(err)?;
        }
    }
    tx.execute(
        "UPDATE shipdeck_schema SET version = $1, written_by = $2 WHERE one = 1",
        &[
            &SCHEMA_VERSION,
            &format!("shipdeck {}", env!("CARGO_PKG_VERSION")),
        ],
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(())
}

fn check_known(store: &str, found: i32) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            store: store.to_string(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// The tables of the current schema version.
const TABLES: [&str; 13] = [
    "shipdeck_schema",
    "shipdeck_audit",
    "shipdeck_audit_seq",
    "shipdeck_deploys",
    "shipdeck_integrity_events",
    "shipdeck_approvals",
    "shipdeck_locks",
    "shipdeck_monitor_runs",
    "shipdeck_chain_checkpoint",
    "shipdeck_flush",
    "shipdeck_samples",
    "shipdeck_presence",
    "shipdeck_unfinished",
];

/// A store at the current version must have every table of it: one that
/// records the version without them (a migration undone by hand, a table
/// dropped) is refused, naming what is missing, rather than guessed at.
fn check_complete(store: &str, version: i32, missing: &[String]) -> Result<(), StoreError> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::Postgres {
        store: store.to_string(),
        cause: format!(
            "schema version {version} is recorded but its tables {} are missing (a migration half undone, or dropped by hand): refusing to guess; restore them from a backup",
            missing.join(", ")
        ),
        sqlstate: None,
    })
}

/// The schema version recorded in the database, `None` on an empty one,
/// with the tables of the current version that are not there (asked in
/// the same round trip).
fn current(
    c: &mut impl postgres::GenericClient,
) -> Result<(Option<i32>, Vec<String>), postgres::Error> {
    let tables: Vec<&str> = TABLES.to_vec();
    let row = c.query_one(
        "SELECT to_regclass('shipdeck_schema') IS NOT NULL,
                ARRAY(SELECT t FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL)",
        &[&tables],
    )?;
    let (exists, missing): (bool, Vec<String>) = (row.get(0), row.get(1));
    if !exists {
        return Ok((None, missing));
    }
    Ok((
        c.query_opt("SELECT version FROM shipdeck_schema WHERE one = 1", &[])?
            .map(|r| r.get(0)),
        missing,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window the server waits out (V9's and V11's SQL) is the one the listeners'
    /// trailing tick is measured from.
    #[test]
    fn v9_coalesces_notifications_over_the_window_the_listeners_know() {
        let window = format!("interval '{NOTIFY_COALESCE_MS} milliseconds'");
        assert!(V9.contains(&window), "{V9}");
        // And V11's append, which coalesces by itself.
        assert_eq!(V11.matches(&window).count(), 1, "{V11}");
        assert_eq!(STEPS.len() as i32, SCHEMA_VERSION);
    }
}
