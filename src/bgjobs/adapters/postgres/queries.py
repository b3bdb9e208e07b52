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

# Hot-table rows come back with now() appended (rows.HOT_ROW_COLUMNS): the state
# (available/scheduled) is derived from it.
_RETURN_HOT = f"RETURNING {_HOT_OUT}, now()"
_INSERT_COLUMNS = (
    "queue, name, payload, priority, max_attempts, available_at, scheduled_at, unique_key, schedule"
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
            %(unique_key)s, %(schedule)s)
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
                 available_at timestamptz, delay_us bigint, unique_key text, schedule text))
         WITH ORDINALITY AS u(queue, name, payload, priority, max_attempts, available_at,
                              delay_us, unique_key, schedule, ord)
), ins AS (
    INSERT INTO {{jobs}} ({_INSERT_COLUMNS})
    SELECT queue, name, payload, priority, max_attempts, at, at, unique_key, schedule
    FROM v ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING {_HOT}
)
SELECT {_prefixed(_HOT_OUT, "ins")}, now(), pg_notify(%(channel)s, ins.queue)::text FROM ins
ORDER BY ins.id
"""

# Reserve up to %(limit)s due jobs. RETURNING has no order; the outer SELECT hands the jobs back
# in claim order.
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

# Reserve the first due suspect of the queue, to run it alone (its own small partial index).
CLAIM_SUSPECT = f"""
UPDATE {{jobs}} SET reserved_by = %(node)s, reserved_at = now(),
    lease_expires_at = now() + %(lease_us)s::bigint{_US}, attempt = attempt + 1
WHERE id IN (
    SELECT id FROM {{jobs}}
    WHERE queue = %(queue)s AND reserved_by IS NULL AND {_SUSPECT} AND available_at <= now()
    ORDER BY priority, available_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
{_RETURN_HOT}
"""

# Reserve the head of a blocking queue. Runs after LOCK on the queue, in a later statement (so a
# later snapshot): the head by FIFO order, only when nothing of the queue is running anywhere.
# (With nothing running, the head of the waiting rows is the head of the queue.) A suspect head
# is taken only by a suspect claim (%(suspects)s).
CLAIM_BLOCKING = f"""
UPDATE {{jobs}} SET reserved_by = %(node)s, reserved_at = now(),
    lease_expires_at = now() + %(lease_us)s::bigint{_US}, attempt = attempt + 1
WHERE id = (SELECT id FROM {{jobs}} WHERE queue = %(queue)s AND reserved_by IS NULL
            ORDER BY scheduled_at, id LIMIT 1)
  AND available_at <= now() AND ({_SUSPECT}) = %(suspects)s
  AND NOT EXISTS (SELECT 1 FROM {{jobs}} WHERE queue = %(queue)s AND reserved_by IS NOT NULL)
{_RETURN_HOT}
"""

# Serialise everyone locking the same key until the transaction ends (schema.lock_key).
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# The database clock (in a transaction: the transaction's start).
NOW = "SELECT now()"

# The earliest due time among waiting jobs, by a loose scan of the claim index: the first entry
# of each priority holds that priority's earliest time. One probe per distinct priority; the
# index this saves would cost a write on every enqueue.
# Suspects are left out: plain claims do not take them (maintenance looks for them).
NEXT_DUE = f"""
WITH RECURSIVE firsts AS (
    (SELECT priority, available_at FROM {{jobs}}
     WHERE queue = %(queue)s AND reserved_by IS NULL AND NOT ({_SUSPECT})
     ORDER BY priority, available_at, id LIMIT 1)
    UNION ALL
    SELECT later.priority, later.available_at FROM firsts CROSS JOIN LATERAL (
        SELECT priority, available_at FROM {{jobs}}
        WHERE queue = %(queue)s AND reserved_by IS NULL AND NOT ({_SUSPECT})
          AND priority > firsts.priority
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
    WHERE d.kind IN ('succeeded', 'failed', 'discarded')
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

# A scheduled run ended: remember when it was due, when it ended and how.
SCHEDULE_FINISHED = """
UPDATE {schedules} SET last_due_at = %s, last_finished_at = now(), last_outcome = %s
WHERE name = %s
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

# Register or refresh a node.
HEARTBEAT = """
INSERT INTO {nodes} (id, host, pid, started_at, heartbeat_at, queues, lock_key)
VALUES (%s, %s, %s, %s, now(), %s, %s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), queues = EXCLUDED.queues,
    lock_key = EXCLUDED.lock_key
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
# The given queues with a suspect a suspect claim would take now: any due suspect, but in a
# blocking queue only the head, while nothing of that queue runs.
SUSPECT_QUEUES = f"""
SELECT DISTINCT j.queue FROM {{jobs}} j
WHERE j.queue = ANY(%(queues)s::text[]) AND j.reserved_by IS NULL AND j.{_SUSPECT}
  AND j.available_at <= now()
  AND (NOT j.queue = ANY(%(blocking)s::text[])
       OR (j.id = (SELECT h.id FROM {{jobs}} h WHERE h.queue = j.queue AND h.reserved_by IS NULL
                   ORDER BY h.scheduled_at, h.id LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM {{jobs}} r
                           WHERE r.queue = j.queue AND r.reserved_by IS NOT NULL)))
"""

# The definition a schedule was last registered with.
SCHEDULE_DEFINITION = "SELECT definition FROM {schedules} WHERE name = %s"
# Register a schedule, or update its definition and queue.
SCHEDULE_UPSERT = """
INSERT INTO {schedules} (name, definition, queue) VALUES (%s, %s, %s)
ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, queue = EXCLUDED.queue
"""
# The hot row holding a unique key (a schedule's pending or running run), locked.
BY_UNIQUE_KEY = f"SELECT {_HOT_OUT}, now() FROM {{jobs}} WHERE unique_key = %s FOR UPDATE"
# Every schedule with its pending run, if any.
SCHEDULE_STATES = f"""
SELECT {rows.SCHEDULE_STATE_SELECT}
FROM {{schedules}} s LEFT JOIN {{jobs}} j ON j.unique_key = %s || s.name
ORDER BY s.name
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
# Running jobs per queue: (queue, running).
STATS_RUNNING = "SELECT queue, count(*) FROM {jobs} WHERE reserved_by IS NOT NULL GROUP BY queue"
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
                         available_at, created_at, scheduled_at, schedule, errors)
    OVERRIDING SYSTEM VALUE
    SELECT id, queue, name, payload, priority, 0, max_attempts, now(), created_at, now(),
           schedule, errors
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


class Queries:
    """The statements above for one schema, as bytes ready for ``cursor.execute``."""

    def __init__(self, schema: str) -> None:
        def render(template: str) -> bytes:
            composed: sql.Composed = compose(template, schema)
            return composed.as_bytes(None)

        self.insert_now = render(INSERT_NOW)
        self.insert_one = render(INSERT_ONE)
        self.insert_many = render(INSERT_MANY)
        self.claim = render(CLAIM)
        self.claim_blocking = render(CLAIM_BLOCKING)
        self.claim_suspect = render(CLAIM_SUSPECT)
        self.suspect_queues = render(SUSPECT_QUEUES)
        self.next_due = render(NEXT_DUE)
        self.complete = render(COMPLETE)
        self.schedule_finished = render(SCHEDULE_FINISHED)
        self.extend_all = render(EXTEND_ALL)
        self.extend_some = render(EXTEND_SOME)
        self.release = render(RELEASE)
        self.heartbeat = render(HEARTBEAT)
        self.remove_node = render(REMOVE_NODE)
        self.list_nodes = render(LIST_NODES)
        self.expired = render(EXPIRED)
        self.rescue_release = render(RESCUE_RELEASE)
        self.rescue_fail = render(RESCUE_FAIL)
        self.forget_nodes = render(FORGET_NODES)
        self.free_nodes = render(FREE_NODES)
        self.dead_nodes = render(DEAD_NODES)
        self.jobs_of_nodes = render(JOBS_OF_NODES)
        self.remove_nodes = render(REMOVE_NODES)
        self.schedule_definition = render(SCHEDULE_DEFINITION)
        self.schedule_upsert = render(SCHEDULE_UPSERT)
        self.by_unique_key = render(BY_UNIQUE_KEY)
        self.delete_hot = render(DELETE_HOT)
        self.schedule_states = render(SCHEDULE_STATES)
        self.get_hot = render(GET_HOT)
        self.get_hot_for_update = render(GET_HOT_FOR_UPDATE)
        self.get_archived = render(GET_ARCHIVED)
        self.list_hot = render(LIST_HOT)
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
