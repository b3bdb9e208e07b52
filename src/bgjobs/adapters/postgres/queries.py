"""Every statement the Postgres store runs, rendered once per schema.

Templates name tables as ``{jobs}``, ``{archive}``...; ``Queries`` fills them with schema-qualified
``sql.Identifier`` values and keeps the bytes, so the hot path neither composes SQL nor defeats
psycopg's prepared-statement cache (which keys on the query text).

Conventions: batches arrive as one JSON document unpacked by ``json_to_recordset`` (one C-speed
``json.dumps`` instead of per-element array adaptation); durations arrive as integer microseconds
(``_US``), so "1 day" is always 24 hours whatever the session's time zone.
"""

from __future__ import annotations

from psycopg import sql

from bgjobs.adapters import rows
from bgjobs.adapters.base import SUSPECT_AFTER
from bgjobs.adapters.postgres.schema import compose

_HOT = rows.HOT_SELECT
_ARCHIVE = rows.ARCHIVE_SELECT
# As selected: the error history as text, parsed only when not empty (the usual case).
_HOT_OUT = _HOT.replace("errors", "errors::text")
_ARCHIVE_OUT = _ARCHIVE.replace("errors", "errors::text")


def _prefixed(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


_CARRIED = rows.CARRIED_SELECT
# A suspect (base.SUSPECT_AFTER): claimed only alone. Spelled as in the suspects index.
_SUSPECT = f"rescues >= {SUSPECT_AFTER}"

# The claimer's worker names, or NULL for any name. Checked on each row the claim index yields,
# so the index still gives the claim order and no sort is needed.
_CLAIMABLE = "(%(names)s::text[] IS NULL OR name = ANY(%(names)s::text[]))"

# Hot-table rows come back with now() appended (rows.HOT_ROW_COLUMNS): the state
# (available/scheduled) is derived from it.
_RETURN_HOT = f"RETURNING {_HOT_OUT}, now()"
_INSERT_COLUMNS = (
    "queue, name, payload, priority, max_attempts, available_at, scheduled_at, unique_key,"
    " schedule, meta"
)

# One job due now, no unique key or schedule: the usual enqueue, as lean as a bare INSERT
# (rows.INSERTED_COLUMNS back). NOTIFY in RETURNING runs in the same statement and fires on
# commit only.
INSERT_NOW = """
INSERT INTO {jobs} (queue, name, payload, priority, max_attempts, available_at, scheduled_at)
VALUES (%s, %s, %s, %s, %s, now(), now())
RETURNING id, created_at, available_at, now(), pg_notify(%s, queue) IS NULL
"""

# Any other single job (rows.INSERTED_COLUMNS back); a taken unique key skips it. NOTIFY rides in
# the same statement and fires on commit only. Only what the database decided comes back; the
# caller knows the rest.
_US = " * interval '1 microsecond'"
_AT = f"COALESCE(%(available_at)s::timestamptz, now() + %(delay_us)s::bigint{_US})"
INSERT_ONE = f"""
WITH ins AS (
    INSERT INTO {{jobs}} ({_INSERT_COLUMNS})
    VALUES (%(queue)s, %(name)s, %(payload)s, %(priority)s, %(max_attempts)s, {_AT}, {_AT},
            %(unique_key)s, %(schedule)s, %(meta)s)
    ON CONFLICT DO NOTHING
    RETURNING id, created_at, available_at, queue
)
SELECT id, created_at, available_at, now(), pg_notify(%(channel)s, queue) IS NULL FROM ins
"""

# Many jobs: one JSON document in, one statement; ids are assigned in input order (ORDER BY ord).
INSERT_MANY = f"""
WITH v AS (
    SELECT u.*, COALESCE(u.available_at, now() + u.delay_us{_US}) AS at
    FROM ROWS FROM (json_to_recordset(%(jobs)s::json)
             AS (queue text, name text, payload text, priority int, max_attempts int,
                 available_at timestamptz, delay_us bigint, unique_key text, schedule text,
                 meta text))
         WITH ORDINALITY AS u(queue, name, payload, priority, max_attempts, available_at,
                              delay_us, unique_key, schedule, meta, ord)
), ins AS (
    INSERT INTO {{jobs}} ({_INSERT_COLUMNS})
    SELECT queue, name, payload, priority, max_attempts, at, at, unique_key, schedule, meta
    FROM v ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING {_HOT}
)
SELECT {_prefixed(_HOT_OUT, "ins")}, now(), pg_notify(%(channel)s, ins.queue)::text FROM ins
ORDER BY ins.id
"""

# Jobs with unique keys (and any keyless ones in the same batch), one JSON document in. Ids are
# taken from the jobs' sequence first, in input order, so the key can point at its job in the
# same statement. A request whose key is in the table already inserts nothing (the caller reads
# the key's holder); a key another transaction is inserting waits for it to commit or roll back.
# Keys are taken in key order, so two batches never wait on each other in a cycle.
_NEW_JOBS = f"""
v AS (
    SELECT u.*, COALESCE(u.available_at, now() + u.delay_us{_US}) AS at
    FROM ROWS FROM (json_to_recordset(%(jobs)s::json)
             AS (queue text, name text, payload text, priority int, max_attempts int,
                 available_at timestamptz, delay_us bigint, unique_key text, schedule text,
                 while_running bool, keep_states text, period_us bigint, old_job_id bigint,
                 meta text))
         WITH ORDINALITY AS u(queue, name, payload, priority, max_attempts, available_at,
                              delay_us, unique_key, schedule, while_running, keep_states,
                              period_us, old_job_id, meta, ord)
), ids AS MATERIALIZED (
    SELECT ord, nextval(pg_get_serial_sequence({{jobs_name}}, 'id')) AS id
    FROM (SELECT ord FROM v ORDER BY ord) AS o
)"""
_INSERT_KEYED = f"""
ins AS (
    INSERT INTO {{jobs}} (id, {_INSERT_COLUMNS})
    SELECT ids.id, queue, name, payload, priority, max_attempts, at, at, unique_key, schedule,
           meta
    FROM v JOIN ids USING (ord)
    WHERE v.unique_key IS NULL OR ids.id IN (SELECT job_id FROM keyed)
    ORDER BY ord
    RETURNING {_HOT}
)
SELECT {_prefixed(_HOT_OUT, "ins")}, now(), pg_notify(%(channel)s, ins.queue)::text FROM ins
ORDER BY ins.id
"""
INSERT_UNIQUE = f"""
WITH {_NEW_JOBS}, keyed AS (
    INSERT INTO {{unique_keys}} (key, job_id, while_running, keep_states, period_us)
    SELECT v.unique_key, ids.id, v.while_running, v.keep_states, v.period_us
    FROM v JOIN ids USING (ord) WHERE v.unique_key IS NOT NULL
    ORDER BY v.unique_key
    ON CONFLICT (key) DO NOTHING
    RETURNING job_id
), {_INSERT_KEYED}"""
# Move keys from jobs that no longer hold them (fenced on that old holder, old_job_id) to new
# jobs, inserted in the same statement as INSERT_UNIQUE does.
TAKE_OVER_KEYS = f"""
WITH {_NEW_JOBS}, keyed AS (
    UPDATE {{unique_keys}} k SET job_id = ids.id, while_running = v.while_running,
        keep_states = v.keep_states, period_us = v.period_us
    FROM v JOIN ids USING (ord)
    WHERE k.key = v.unique_key AND k.job_id = v.old_job_id
    RETURNING k.job_id
), {_INSERT_KEYED}"""
# The rows of the given keys, locked in key order: what holds them is decided under the lock.
KEY_HOLDS = f"""
SELECT {rows.KEY_SELECT} FROM {{unique_keys}} WHERE key = ANY(%s::text[]) ORDER BY key FOR UPDATE
"""
# The jobs holding keys: waiting or running (HOLDERS_HOT) and finished (HOLDERS_ARCHIVED). Read
# after KEY_HOLDS, in a later snapshot, so a holder committed before the lock was granted shows.
HOLDERS_HOT = f"SELECT {_HOT_OUT}, now() FROM {{jobs}} WHERE id = ANY(%s::bigint[])"
HOLDERS_ARCHIVED = f"SELECT {_ARCHIVE_OUT} FROM {{archive}} WHERE id = ANY(%s::bigint[])"
# Replace the payload, priority or run time of jobs holding keys, those that still wait.
_NEW_AT = f"COALESCE(r.available_at, now() + r.delay_us{_US})"
REPLACE_WAITING = f"""
WITH r AS (
    SELECT * FROM json_to_recordset(%(rows)s::json)
        AS r(id bigint, payload text, priority int, available_at timestamptz, delay_us bigint,
             set_payload bool, set_priority bool, set_at bool)
), upd AS (
    UPDATE {{jobs}} j SET
        payload = CASE WHEN r.set_payload THEN r.payload ELSE j.payload END,
        priority = CASE WHEN r.set_priority THEN r.priority ELSE j.priority END,
        available_at = CASE WHEN r.set_at THEN {_NEW_AT} ELSE j.available_at END,
        scheduled_at = CASE WHEN r.set_at THEN {_NEW_AT} ELSE j.scheduled_at END
    FROM r WHERE j.id = r.id AND j.reserved_by IS NULL
    RETURNING {rows.select_list(rows.HOT_COLUMNS, "j")}
)
SELECT {_prefixed(_HOT_OUT, "upd")}, now(), pg_notify(%(channel)s, upd.queue)::text FROM upd
"""
# Keys after a given one (in key order) whose job is no longer waiting or running with that key:
# the ones that may have stopped holding (pruning reads them with their holders).
KEY_SLICE = f"""
SELECT {rows.select_list(rows.KEY_COLUMNS, "k")} FROM {{unique_keys}} k
WHERE k.key > %s AND NOT EXISTS (
    SELECT 1 FROM {{jobs}} j WHERE j.id = k.job_id AND j.unique_key = k.key)
ORDER BY k.key LIMIT %s
"""
# Forget keys, each fenced on the job that held it.
DELETE_KEYS = """
DELETE FROM {unique_keys} k USING json_to_recordset(%s::json) AS d(key text, job_id bigint)
WHERE k.key = d.key AND k.job_id = d.job_id
"""

# Reserve up to %(limit)s due jobs of the claimer's names. RETURNING has no order; the outer
# SELECT hands the jobs back in claim order.
# The claim commits asynchronously (set_config(..., true) lasts until this statement's own
# commit): losing one in a server crash only makes its job claimable again, which at-least-once
# allows, and the fenced completion of a lost claim is refused. WAL is sequential, so the next
# durable commit (any completion) makes earlier claims durable too. Saves a WAL flush per claim.
CLAIM = f"""
WITH claimed AS (
    UPDATE {{jobs}} SET reserved_by = %(node)s, reserved_at = now(),
        lease_expires_at = now() + %(lease_us)s::bigint{_US}, attempt = attempt + 1
    WHERE id IN (
        SELECT id FROM {{jobs}}
        WHERE queue = %(queue)s AND reserved_by IS NULL AND available_at <= now()
          AND {_CLAIMABLE}
          AND NOT ({_SUSPECT})
        ORDER BY priority, available_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    {_RETURN_HOT}
)
SELECT claimed.* FROM claimed, (SELECT set_config('synchronous_commit', 'off', true)) AS async
ORDER BY priority, available_at, id
"""

# Reserve the first due suspect of the queue of the claimer's names, to run it alone (its own
# small partial index).
CLAIM_SUSPECT = f"""
UPDATE {{jobs}} SET reserved_by = %(node)s, reserved_at = now(),
    lease_expires_at = now() + %(lease_us)s::bigint{_US}, attempt = attempt + 1
WHERE id IN (
    SELECT id FROM {{jobs}}
    WHERE queue = %(queue)s AND reserved_by IS NULL AND {_SUSPECT} AND available_at <= now()
      AND {_CLAIMABLE}
    ORDER BY priority, available_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
{_RETURN_HOT}
"""

# Reserve the head of a blocking queue. Runs after LOCK on the queue, in a later statement (so a
# later snapshot): the head by FIFO order, only when nothing of the queue is running anywhere and
# only if it is one of the claimer's names.
# (With nothing running, the head of the waiting rows is the head of the queue.) A suspect head
# is taken only by a suspect claim (%(suspects)s).
CLAIM_BLOCKING = f"""
UPDATE {{jobs}} SET reserved_by = %(node)s, reserved_at = now(),
    lease_expires_at = now() + %(lease_us)s::bigint{_US}, attempt = attempt + 1
WHERE id = (SELECT id FROM {{jobs}} WHERE queue = %(queue)s AND reserved_by IS NULL
            ORDER BY scheduled_at, id LIMIT 1)
  AND available_at <= now() AND {_CLAIMABLE} AND ({_SUSPECT}) = %(suspects)s
  AND NOT EXISTS (SELECT 1 FROM {{jobs}} WHERE queue = %(queue)s AND reserved_by IS NOT NULL)
{_RETURN_HOT}
"""

# Serialise everyone locking the same key until the transaction ends (schema.lock_key).
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# The database clock (in a transaction: the transaction's start).
NOW = "SELECT now()"

# The earliest due time among waiting jobs of the claimer's names, by a loose scan of the claim
# index: the first matching entry of each priority holds that priority's earliest time. One probe
# per distinct priority; the index this saves would cost a write on every enqueue.
# Suspects are left out: plain claims do not take them (maintenance looks for them).
NEXT_DUE = f"""
WITH RECURSIVE firsts AS (
    (SELECT priority, available_at FROM {{jobs}}
     WHERE queue = %(queue)s AND reserved_by IS NULL AND NOT ({_SUSPECT}) AND {_CLAIMABLE}
     ORDER BY priority, available_at, id LIMIT 1)
    UNION ALL
    SELECT later.priority, later.available_at FROM firsts CROSS JOIN LATERAL (
        SELECT priority, available_at FROM {{jobs}}
        WHERE queue = %(queue)s AND reserved_by IS NULL AND NOT ({_SUSPECT})
          AND priority > firsts.priority AND {_CLAIMABLE}
        ORDER BY priority, available_at, id LIMIT 1
    ) AS later
)
SELECT min(available_at) FROM firsts
"""

# Apply a batch of completions in one statement; the ids whose fence held come back. Each row is
# fenced on (id, reserved_by, attempt, rescues: a rescue that gives the attempt back counts one
# more, so a re-claim never reuses a fence); finishing rows move to the archive (or vanish:
# keep = false), the rest go back to the queue. The data-modifying CTEs share one snapshot and
# touch disjoint rows (ids are unique per call).
_ARCHIVE_ERRORS = (
    "CASE WHEN f.error IS NULL THEN f.errors ELSE f.errors || jsonb_build_array(f.error) END"
)
COMPLETE = f"""
WITH d AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS d(id bigint, node text, attempt int, rescues int, kind text, keep bool, error jsonb,
             delay_us bigint)
), fin AS (
    DELETE FROM {{jobs}} j USING d
    WHERE d.kind IN ('succeeded', 'failed', 'discarded', 'cancelled')
      AND j.id = d.id AND j.reserved_by = d.node AND j.attempt = d.attempt
      AND j.rescues = d.rescues
    RETURNING {rows.select_list(rows.HOT_COLUMNS, "j")}, d.kind, d.keep, d.error
), arch AS (
    INSERT INTO {{archive}} ({_ARCHIVE})
    SELECT {_CARRIED}, {_ARCHIVE_ERRORS}, kind, now()
    FROM fin f WHERE f.keep
    ON CONFLICT (id) DO UPDATE SET {
    ", ".join(f"{c} = EXCLUDED.{c}" for c in rows.ARCHIVE_COLUMNS if c != "id")
}
), back AS (
    UPDATE {{jobs}} j SET reserved_by = NULL, reserved_at = NULL, lease_expires_at = NULL,
        attempt = CASE WHEN d.kind = 'snoozed' THEN j.attempt - 1 ELSE j.attempt END,
        available_at = now() + d.delay_us{_US},
        errors = CASE WHEN d.error IS NULL THEN j.errors
                 ELSE j.errors || jsonb_build_array(d.error) END
    FROM d
    WHERE d.kind IN ('retry', 'snoozed')
      AND j.id = d.id AND j.reserved_by = d.node AND j.attempt = d.attempt
      AND j.rescues = d.rescues
    RETURNING j.id
)
SELECT id FROM fin UNION ALL SELECT id FROM back
"""

# A scheduled run ended: remember when it was due, started and ended, and how; free the run
# slot if it held it.
SCHEDULE_FINISHED = """
UPDATE {schedules} SET last_due_at = %(due_at)s, last_finished_at = now(),
    last_outcome = %(outcome)s,
    last_started_at = coalesce(%(started_at)s::timestamptz, last_started_at),
    running_job = CASE WHEN running_job = %(job_id)s THEN NULL ELSE running_job END
WHERE name = %(name)s
"""

# Push back the leases of a node's jobs (EXTEND_ALL: all of them; EXTEND_SOME: the given ones).
# SKIP LOCKED: the completer finishes this node's jobs on another connection, locking them in
# its own order; waiting here could deadlock with it. A locked row is being finished, rescued or
# released, so there is no lease to keep, and the next heartbeat retries anything skipped.
_EXTEND = f"""
UPDATE {{jobs}} SET lease_expires_at = now() + %s::bigint{_US}
WHERE id IN (SELECT id FROM {{jobs}} WHERE reserved_by = %s {{only}} FOR UPDATE SKIP LOCKED)
"""
EXTEND_ALL = _EXTEND.replace("{only}", "")
EXTEND_SOME = _EXTEND.replace("{only}", "AND id = ANY(%s::bigint[])")

# Record running jobs' progress, each fenced on (id, node, attempt); the ids it applied to.
# SKIP LOCKED, as in _EXTEND: a locked row is being finished, and its completion carries its
# last progress.
SET_PROGRESS = """
WITH r AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS r(id bigint, node text, attempt int, fraction double precision, message text)
), mine AS (
    SELECT j.id FROM {jobs} j JOIN r ON j.id = r.id AND j.reserved_by = r.node
        AND j.attempt = r.attempt
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE {jobs} j SET progress = r.fraction, progress_message = r.message
FROM r, mine WHERE j.id = mine.id AND r.id = mine.id
RETURNING j.id
"""

# Give unfinished jobs back without counting the attempt (shutdown), waking other nodes.
RELEASE = f"""
WITH rel AS (
    UPDATE {{jobs}} SET reserved_by = NULL, reserved_at = NULL, lease_expires_at = NULL,
        attempt = greatest(attempt - 1, 0)
    WHERE reserved_by = %(node)s AND id = ANY(%(ids)s::bigint[])
    RETURNING {_HOT}
)
SELECT {_prefixed(_HOT_OUT, "rel")}, now(), pg_notify(%(channel)s, rel.queue)::text FROM rel
"""

# Register or refresh a node and what it offers.
HEARTBEAT = """
INSERT INTO {nodes} (id, host, pid, started_at, heartbeat_at, queues, offers, lock_key)
VALUES (%s, %s, %s, %s, now(), %s, %s::jsonb, %s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), queues = EXCLUDED.queues,
    offers = EXCLUDED.offers, lock_key = EXCLUDED.lock_key
"""
# Forget a node that stopped cleanly.
REMOVE_NODE = "DELETE FROM {nodes} WHERE id = %s"
# All registered nodes.
LIST_NODES = f"SELECT {rows.NODE_SELECT} FROM {{nodes}} ORDER BY id"

# Reserved jobs whose lease ran out. SKIP LOCKED: rows another node is rescuing (or a late
# completion is finishing) right now are theirs to settle.
EXPIRED = f"""
SELECT {_HOT_OUT}, now() FROM {{jobs}}
WHERE reserved_by IS NOT NULL AND lease_expires_at < now()
ORDER BY id
FOR UPDATE SKIP LOCKED
"""
# Rescue: back to the queue, due now, the rescue error appended and counted; the attempt given
# back (refund = 1) unless the rescue is charged. Wakes the queues.
RESCUE_RELEASE = """
UPDATE {jobs} j SET reserved_by = NULL, reserved_at = NULL, lease_expires_at = NULL,
    available_at = now(), errors = j.errors || jsonb_build_array(r.error),
    attempt = greatest(j.attempt - r.refund, 0), rescues = j.rescues + 1
FROM json_to_recordset(%(rows)s::json) AS r(id bigint, error jsonb, refund int)
WHERE j.id = r.id
RETURNING pg_notify(%(channel)s, j.queue)::text
"""
# Rescue: charged and out of attempts, to the archive as failed with the rescue error appended.
RESCUE_FAIL = f"""
WITH r AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS r(id bigint, error jsonb)
), gone AS (
    DELETE FROM {{jobs}} j USING r WHERE j.id = r.id
    RETURNING {rows.select_list(rows.HOT_COLUMNS, "j")}, r.error
)
INSERT INTO {{archive}} ({_ARCHIVE})
SELECT {_CARRIED.replace("rescues", "rescues + 1")}, errors || jsonb_build_array(error),
       'failed', now()
FROM gone
ON CONFLICT (id) DO NOTHING
"""
# Forget nodes silent for longer than the given number of microseconds.
FORGET_NODES = f"DELETE FROM {{nodes}} WHERE heartbeat_at < now() - %s::bigint{_US}"
# Due, unclaimed jobs per (queue, name): (queue, name, count, earliest due time). Reads every
# waiting row, so it runs at most once a minute per node (and for `bgjobs status`).
WAITING_NAMES = """
SELECT queue, name, count(*), min(available_at) FROM {jobs}
WHERE reserved_by IS NULL AND available_at <= now()
GROUP BY queue, name ORDER BY queue, name
"""
# Due, unclaimed jobs of one (queue, name) to the archive as discarded, the error (a one-element
# batch) appended with its attempt set to each job's; the archived rows come back. A row a claim
# holds is skipped.
DISCARD_WAITING = f"""
WITH gone AS (
    DELETE FROM {{jobs}}
    WHERE id IN (SELECT id FROM {{jobs}}
                 WHERE queue = %(queue)s AND reserved_by IS NULL AND available_at <= now()
                   AND name = %(name)s
                 FOR UPDATE SKIP LOCKED)
    RETURNING {_HOT}
)
INSERT INTO {{archive}} ({_ARCHIVE})
SELECT {_CARRIED},
       errors || jsonb_build_array(
           jsonb_set(%(error)s::jsonb -> 0, '{{{{attempt}}}}', to_jsonb(attempt))),
       'discarded', now()
FROM gone
ON CONFLICT (id) DO NOTHING
RETURNING {_ARCHIVE_OUT}
"""

# A node's liveness lock is a session advisory lock on its key (schema.lock_key); a probe takes
# it shared for the probe's transaction only, which the live node's exclusive lock refuses.
_LOCK_FREE = "pg_try_advisory_xact_lock_shared(hashtextextended(lock_key, 0))"
# Registered nodes but one whose liveness lock is free (autocommit: the probes end with it).
FREE_NODES = f"""
SELECT id FROM {{nodes}} WHERE id <> %s AND lock_key IS NOT NULL AND {_LOCK_FREE} ORDER BY id
"""
# Of the given nodes, those still registered whose lock is free; the probes hold until commit,
# so such a node cannot take its lock back while it is being rescued.
DEAD_NODES = f"""
SELECT id FROM {{nodes}}
WHERE id = ANY(%s::text[]) AND lock_key IS NOT NULL AND {_LOCK_FREE}
ORDER BY id
FOR UPDATE SKIP LOCKED
"""
# The jobs the given nodes hold, locked. SKIP LOCKED: a row being finished or rescued elsewhere
# is settled there.
JOBS_OF_NODES = f"""
SELECT {_HOT_OUT}, now() FROM {{jobs}}
WHERE reserved_by = ANY(%s::text[])
ORDER BY id
FOR UPDATE SKIP LOCKED
"""
# Remove dead nodes from the registry.
REMOVE_NODES = "DELETE FROM {nodes} WHERE id = ANY(%s::text[])"
# The (queue, name) of the given queues' suspects that a suspect claim would take now: any due
# suspect, but in a blocking queue only the head, while nothing of that queue runs. The caller
# keeps the names the node claims.
SUSPECT_QUEUES = f"""
SELECT DISTINCT j.queue, j.name FROM {{jobs}} j
WHERE j.queue = ANY(%(queues)s::text[]) AND j.reserved_by IS NULL AND j.{_SUSPECT}
  AND j.available_at <= now()
  AND (NOT j.queue = ANY(%(blocking)s::text[])
       OR (j.id = (SELECT h.id FROM {{jobs}} h WHERE h.queue = j.queue AND h.reserved_by IS NULL
                   ORDER BY h.scheduled_at, h.id LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM {{jobs}} r
                           WHERE r.queue = j.queue AND r.reserved_by IS NOT NULL)))
"""

# Register a schedule, or update its definition, queue and attempts (a schedule defined again
# is no longer removed).
SCHEDULE_UPSERT = """
INSERT INTO {schedules} (name, definition, queue, max_attempts) VALUES (%s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, queue = EXCLUDED.queue,
    max_attempts = EXCLUDED.max_attempts, removed_at = NULL
"""
# The waiting or running job a unique key points at (a schedule's pending or running run),
# locked; the key row is not (complete() locks the job before the key, and so must this).
BY_UNIQUE_KEY = f"""
SELECT {_prefixed(_HOT_OUT, "j")}, now()
FROM {{unique_keys}} k JOIN {{jobs}} j ON j.id = k.job_id AND j.unique_key = k.key
WHERE k.key = %s FOR UPDATE OF j
"""
# A schedule's pending run is found through its key (the keys table), never by a scan.
_SCHEDULE_STATE_FROM = f"""
SELECT {rows.SCHEDULE_STATE_SELECT}
FROM {{schedules}} s
LEFT JOIN {{unique_keys}} k ON k.key = %(prefix)s || s.name
LEFT JOIN {{jobs}} j ON j.id = k.job_id AND j.unique_key = k.key
LEFT JOIN {{history}} h
    ON h.id = (SELECT max(id) FROM {{history}} WHERE schedule = s.name)
"""
# Every schedule with its pending run and newest history entry.
SCHEDULE_STATES = _SCHEDULE_STATE_FROM + "ORDER BY s.name"
# One schedule, as SCHEDULE_STATES.
SCHEDULE_STATE = _SCHEDULE_STATE_FROM + "WHERE s.name = %(name)s"
# Append entries to schedules' histories.
SCHEDULE_RECORD = f"""
INSERT INTO {{history}} ({rows.select_list(rows.HISTORY_WRITTEN)})
SELECT {rows.select_list(rows.HISTORY_WRITTEN)}
FROM json_to_recordset(%s::json) AS r(schedule text, outcome text, due_at timestamptz,
    last_due_at timestamptz, occurrences bigint, job_id bigint, node text,
    started_at timestamptz, result text, manual boolean)
"""
# A schedule's newest history entries.
SCHEDULE_HISTORY = f"""
SELECT {rows.HISTORY_SELECT} FROM {{history}} WHERE schedule = %(name)s
ORDER BY id DESC LIMIT %(limit)s
"""
# Whether another run (than the given one) holds the schedule's run slot and is reserved now.
_SLOT_BUSY = """EXISTS (SELECT 1 FROM {jobs} j WHERE j.id = running_job AND j.id <> %(job_id)s
                      AND j.reserved_by IS NOT NULL)"""
# A run takes its schedule's run slot if the slot is free and, for a regular run, the schedule
# is not paused: one round trip on the way to every scheduled handler. The row lock makes two
# runs taking it at once go one after the other. No row changed: SCHEDULE_GATE tells why.
SCHEDULE_START = f"""
UPDATE {{schedules}} SET running_job = %(job_id)s
WHERE name = %(name)s AND NOT {_SLOT_BUSY}
  AND NOT (%(regular)s AND paused_at IS NOT NULL
           AND (paused_until IS NULL OR paused_until > now()))
"""
# What a run's gate decides on: the schedule's pause, whether its run slot is busy, and the
# database clock.
SCHEDULE_GATE = f"""
SELECT paused_at, paused_until, {_SLOT_BUSY}, now() FROM {{schedules}} WHERE name = %(name)s
"""
# Pause a schedule (until a time, or until resumed).
SCHEDULE_PAUSE = """
UPDATE {schedules} SET paused_at = %(paused_at)s, paused_until = %(until)s WHERE name = %(name)s
"""
# Resume a schedule.
SCHEDULE_RESUME = (
    "UPDATE {schedules} SET paused_at = NULL, paused_until = NULL WHERE name = %(name)s"
)
# The waiting or running jobs holding a schedule's keys (regular and run-now), found through
# the keys table's primary key: never a scan of the hot table.
_SCHEDULE_RUNS = """id IN (
    SELECT job_id FROM {unique_keys} WHERE key IN (%(regular)s, %(run_now)s))
  AND unique_key IN (%(regular)s, %(run_now)s)"""
# Runs waiting for a schedule's run slot (given back while another run went) are due now.
SCHEDULE_WAKE = f"""
UPDATE {{jobs}} SET available_at = now()
WHERE {_SCHEDULE_RUNS} AND reserved_by IS NULL AND attempt = 0
  AND scheduled_at <= now() AND available_at > now()
"""
# A node says which schedules it defines (again later: the first time stays).
SCHEDULE_PUBLISH = """
INSERT INTO {node_schedules} (schedule, node_id, published_at)
SELECT unnest(%(names)s::text[]), %(node)s, now()
ON CONFLICT (schedule, node_id) DO NOTHING
"""
# A node that stops stamps what it published with the time it left: it counts a while longer
# (the publication grace), so a deploy that restarts every node retires nothing in between.
SCHEDULE_UNPUBLISH = "UPDATE {node_schedules} SET published_at = now() WHERE node_id = %(node)s"
# Whether a node alive within the given microseconds defines a schedule (or, with no registry
# row, published it or stopped within them).
SCHEDULE_DEFINED = f"""
SELECT EXISTS (SELECT 1 FROM {{node_schedules}} p LEFT JOIN {{nodes}} n ON n.id = p.node_id
               WHERE p.schedule = %(name)s
                 AND (n.heartbeat_at >= now() - %(alive_us)s::bigint{_US}
                      OR (n.id IS NULL AND p.published_at >= now() - %(alive_us)s::bigint{_US})))
"""
# Forget what nodes that are gone published.
SCHEDULE_FORGET_PUBLISHED = f"""
DELETE FROM {{node_schedules}} p WHERE p.published_at < now() - %(alive_us)s::bigint{_US}
  AND NOT EXISTS (SELECT 1 FROM {{nodes}} n
                  WHERE n.id = p.node_id AND n.heartbeat_at >= now() - %(alive_us)s::bigint{_US})
"""
# The waiting runs of a schedule (regular and run-now), removed with it.
SCHEDULE_REMOVE_RUNS = f"""
DELETE FROM {{jobs}} WHERE {_SCHEDULE_RUNS} AND reserved_by IS NULL
{_RETURN_HOT}
"""
# No live node defines a schedule any more.
SCHEDULE_REMOVED = (
    "UPDATE {schedules} SET removed_at = now(), running_job = NULL WHERE name = %(name)s"
)
# Delete up to a number of history entries recorded before a cutoff, kept under the given
# results ('' stands for entries that are not a run).
PRUNE_HISTORY_SLICE = """
DELETE FROM {history} WHERE id = ANY(ARRAY(
    SELECT id FROM {history}
    WHERE recorded_at < %(cutoff)s AND coalesce(result, '') = ANY(%(results)s::text[])
    LIMIT %(limit)s
))
"""

# One waiting or running job (GET_HOT_FOR_UPDATE: locked, to act on it).
GET_HOT = f"SELECT {_HOT_OUT}, now() FROM {{jobs}} WHERE id = %s"
GET_HOT_FOR_UPDATE = GET_HOT + " FOR UPDATE"
# One finished job.
GET_ARCHIVED = f"SELECT {_ARCHIVE_OUT} FROM {{archive}} WHERE id = %s"
# The newest waiting or running jobs matching a filter (NULL parameters match all).
LIST_HOT = f"""
SELECT {_HOT_OUT}, now() FROM {{jobs}}
WHERE (%(name)s::text IS NULL OR name = %(name)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND CASE %(state)s::text
        WHEN 'running' THEN reserved_by IS NOT NULL
        WHEN 'available' THEN reserved_by IS NULL AND available_at <= now()
        WHEN 'scheduled' THEN reserved_by IS NULL AND available_at > now()
        ELSE true END
ORDER BY id DESC LIMIT %(limit)s
"""
# The newest running jobs matching a filter, from the partial index of running jobs (LIST_HOT's
# CASE hides it from the planner, which would walk every waiting job instead).
LIST_RUNNING = f"""
SELECT {_HOT_OUT}, now() FROM {{jobs}}
WHERE reserved_by IS NOT NULL
  AND (%(name)s::text IS NULL OR name = %(name)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
ORDER BY id DESC LIMIT %(limit)s
"""
# The newest finished jobs matching a filter (NULL parameters match all).
LIST_ARCHIVED = f"""
SELECT {_ARCHIVE_OUT} FROM {{archive}}
WHERE (%(name)s::text IS NULL OR name = %(name)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(state)s::text IS NULL OR state = %(state)s)
ORDER BY id DESC LIMIT %(limit)s
"""

# Waiting jobs per queue: (queue, available, scheduled).
STATS_WAITING = """
SELECT queue,
       count(*) FILTER (WHERE available_at <= now()),
       count(*) FILTER (WHERE available_at > now())
FROM {jobs} WHERE reserved_by IS NULL GROUP BY queue
"""
# Running jobs per queue and node: (queue, node, running).
STATS_RUNNING = """
SELECT queue, reserved_by, count(*) FROM {jobs} WHERE reserved_by IS NOT NULL
GROUP BY queue, reserved_by
"""
# Failed and discarded jobs per queue, all time: (queue, count).
STATS_FAILED = """
SELECT queue, count(*) FROM {archive} WHERE state IN ('failed', 'discarded') GROUP BY queue
"""
# Jobs finished within the given microseconds per queue and state: (queue, state, count).
STATS_RECENT = f"""
SELECT queue, state, count(*) FROM {{archive}}
WHERE state IN ('succeeded', 'failed', 'discarded') AND finished_at >= now() - %s::bigint{_US}
GROUP BY queue, state
"""

# Failed, discarded and cancelled jobs back to the hot table under their old id, attempts reset,
# due now. A retried scheduled run does not take back the schedule's unique key (it would block
# the next run).
RETRY = f"""
WITH moved AS (
    DELETE FROM {{archive}}
    WHERE state IN ('failed', 'discarded', 'cancelled')
      AND (%(all)s OR id = ANY(%(ids)s::bigint[]))
      AND (%(name)s::text IS NULL OR name = %(name)s)
    RETURNING {_ARCHIVE}
), ins AS (
    INSERT INTO {{jobs}} (id, queue, name, payload, priority, attempt, max_attempts,
                         available_at, created_at, scheduled_at, schedule, errors, meta)
    OVERRIDING SYSTEM VALUE
    SELECT id, queue, name, payload, priority, 0, max_attempts, now(), created_at, now(),
           schedule, errors, meta
    FROM moved
    RETURNING id, queue
)
SELECT id, pg_notify(%(channel)s, queue)::text FROM ins ORDER BY id
"""

# A waiting job to the archive as cancelled; the archived row comes back.
CANCEL = f"""
WITH gone AS (
    DELETE FROM {{jobs}} WHERE id = %s RETURNING {_HOT}
)
INSERT INTO {{archive}} ({_ARCHIVE})
SELECT {_CARRIED}, errors, 'cancelled', now()
FROM gone
ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, finished_at = EXCLUDED.finished_at
RETURNING {_ARCHIVE_OUT}
"""
# Ask the node running a job to stop it: NOTIFY on the cancel channel (on commit) tells it at
# once; its cancel watcher also finds the flag (CANCEL_REQUESTED).
REQUEST_CANCEL = f"""
UPDATE {{jobs}} SET cancel_requested_at = COALESCE(cancel_requested_at, now())
WHERE id = %(id)s AND reserved_by IS NOT NULL
RETURNING {_HOT_OUT}, now(), pg_notify(%(channel)s, id::text)::text
"""
# The jobs a node runs that someone asked to cancel.
CANCEL_REQUESTED = """
SELECT id FROM {jobs} WHERE reserved_by = %s AND cancel_requested_at IS NOT NULL ORDER BY id
"""
# Delete a waiting job.
DELETE_HOT = "DELETE FROM {jobs} WHERE id = %s"
# Delete a finished job.
DELETE_ARCHIVED = "DELETE FROM {archive} WHERE id = %s"

# Delete up to a number of archived jobs in the given states finished before a cutoff.
# ANY(ARRAY(...)) so each slice deletes by primary key instead of hash-joining the whole archive.
PRUNE_SLICE = """
DELETE FROM {archive} WHERE id = ANY(ARRAY(
    SELECT id FROM {archive} WHERE state = ANY(%s::text[]) AND finished_at < %s LIMIT %s
))
"""

# upkeep (Postgres only: see vacuum.py) -----------------------------------------------------------
# The hot table's live and dead rows, as the statistics collector last counted them.
DEAD_ROWS = """
SELECT n_live_tup, n_dead_tup FROM pg_catalog.pg_stat_user_tables
WHERE schemaname = %s AND relname = 'bgjobs_jobs'
"""
# Vacuum from one node at a time: a session lock, released when the connection closes.
VACUUM_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
# Plain VACUUM (never FULL, which would lock out every claim), outside any transaction; with
# ANALYZE, as a server without autovacuum has no autoanalyze either.
VACUUM = "VACUUM (ANALYZE) {jobs}"


class Queries:
    """The statements above for one schema, as bytes ready for ``cursor.execute``."""

    def __init__(self, schema: str) -> None:
        def render(template: str) -> bytes:
            composed: sql.Composed = compose(template, schema)
            return composed.as_bytes(None)

        self.insert_now = render(INSERT_NOW)
        self.insert_one = render(INSERT_ONE)
        self.insert_many = render(INSERT_MANY)
        self.insert_unique = render(INSERT_UNIQUE)
        self.take_over_keys = render(TAKE_OVER_KEYS)
        self.key_holds = render(KEY_HOLDS)
        self.holders_hot = render(HOLDERS_HOT)
        self.holders_archived = render(HOLDERS_ARCHIVED)
        self.replace_waiting = render(REPLACE_WAITING)
        self.key_slice = render(KEY_SLICE)
        self.delete_keys = render(DELETE_KEYS)
        self.request_cancel = render(REQUEST_CANCEL)
        self.cancel_requested = render(CANCEL_REQUESTED)
        self.claim = render(CLAIM)
        self.claim_blocking = render(CLAIM_BLOCKING)
        self.claim_suspect = render(CLAIM_SUSPECT)
        self.suspect_queues = render(SUSPECT_QUEUES)
        self.next_due = render(NEXT_DUE)
        self.complete = render(COMPLETE)
        self.schedule_finished = render(SCHEDULE_FINISHED)
        self.extend_all = render(EXTEND_ALL)
        self.extend_some = render(EXTEND_SOME)
        self.set_progress = render(SET_PROGRESS)
        self.release = render(RELEASE)
        self.heartbeat = render(HEARTBEAT)
        self.remove_node = render(REMOVE_NODE)
        self.list_nodes = render(LIST_NODES)
        self.expired = render(EXPIRED)
        self.rescue_release = render(RESCUE_RELEASE)
        self.rescue_fail = render(RESCUE_FAIL)
        self.forget_nodes = render(FORGET_NODES)
        self.waiting_names = render(WAITING_NAMES)
        self.discard_waiting = render(DISCARD_WAITING)
        self.free_nodes = render(FREE_NODES)
        self.dead_nodes = render(DEAD_NODES)
        self.jobs_of_nodes = render(JOBS_OF_NODES)
        self.remove_nodes = render(REMOVE_NODES)
        self.schedule_upsert = render(SCHEDULE_UPSERT)
        self.by_unique_key = render(BY_UNIQUE_KEY)
        self.delete_hot = render(DELETE_HOT)
        self.schedule_states = render(SCHEDULE_STATES)
        self.schedule_state = render(SCHEDULE_STATE)
        self.schedule_record = render(SCHEDULE_RECORD)
        self.schedule_history = render(SCHEDULE_HISTORY)
        self.schedule_gate = render(SCHEDULE_GATE)
        self.schedule_start = render(SCHEDULE_START)
        self.schedule_pause = render(SCHEDULE_PAUSE)
        self.schedule_resume = render(SCHEDULE_RESUME)
        self.schedule_wake = render(SCHEDULE_WAKE)
        self.schedule_publish = render(SCHEDULE_PUBLISH)
        self.schedule_unpublish = render(SCHEDULE_UNPUBLISH)
        self.schedule_defined = render(SCHEDULE_DEFINED)
        self.schedule_forget_published = render(SCHEDULE_FORGET_PUBLISHED)
        self.schedule_remove_runs = render(SCHEDULE_REMOVE_RUNS)
        self.schedule_removed = render(SCHEDULE_REMOVED)
        self.prune_history_slice = render(PRUNE_HISTORY_SLICE)
        self.get_hot = render(GET_HOT)
        self.get_hot_for_update = render(GET_HOT_FOR_UPDATE)
        self.get_archived = render(GET_ARCHIVED)
        self.list_hot = render(LIST_HOT)
        self.list_running = render(LIST_RUNNING)
        self.list_archived = render(LIST_ARCHIVED)
        self.stats_waiting = render(STATS_WAITING)
        self.stats_running = render(STATS_RUNNING)
        self.stats_failed = render(STATS_FAILED)
        self.stats_recent = render(STATS_RECENT)
        self.retry = render(RETRY)
        self.cancel = render(CANCEL)
        self.delete_archived = render(DELETE_ARCHIVED)
        self.prune_slice = render(PRUNE_SLICE)
        self.lock = render(LOCK)
        self.now = render(NOW)
        self.dead_rows = render(DEAD_ROWS)
        self.vacuum_try_lock = render(VACUUM_TRY_LOCK)
        self.vacuum = render(VACUUM)
