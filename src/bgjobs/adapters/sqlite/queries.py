"""Every statement the SQLite store runs. Same names as ``postgres/queries.py`` for the same
operation, so the dialects read side by side; a statement only one dialect needs says why.

Conventions: times are integer microseconds since the epoch (``:now`` is the caller's clock,
read once per transaction); lists arrive as one JSON array read with ``json_each``, so a
statement's text (and SQLite's cached plan) does not change with the list's length. The few
statements whose text depends on the call are functions; each returns the same text for the
same shape.
"""

from __future__ import annotations

from bgjobs.adapters import rows
from bgjobs.adapters.base import SUSPECT_AFTER, JobFilter
from bgjobs.job import JobState

_HOT = rows.HOT_SELECT
_ARCHIVE = rows.ARCHIVE_SELECT
_CARRIED = rows.CARRIED_SELECT
_IDS = "(SELECT value FROM json_each(:ids))"
# The fields of one element of a :rows JSON array (json_extract: ->> needs SQLite 3.38).
_ROW_ID = "json_extract(r.value, '$.id')"
_ROW_ERROR = "json(json_extract(r.value, '$.error'))"
# The claimer's worker names (a JSON array), or NULL for any name. Checked on each row the claim
# index yields, so the index still gives the claim order and no sort is needed.
_CLAIMABLE = "(:names IS NULL OR name IN (SELECT value FROM json_each(:names)))"


def _errors_plus(column: str, error: str) -> str:
    """A job's error history with ``error`` appended. A history that is not JSON (another tool
    wrote it) starts afresh, rather than failing the write that records the job's outcome."""
    history = f"CASE WHEN json_valid({column}) THEN {column} ELSE '[]' END"
    return f"json_insert({history}, '$[#]', {error})"


_ROW_REFUND = "json_extract(r.value, '$.refund')"
# A suspect (base.SUSPECT_AFTER) is claimed only alone; the rest, by plain claims. Spelled as in
# the predicates of the suspects and claim indexes (migration 2), so that SQLite uses them.
_SUSPECT = f"rescues >= {SUSPECT_AFTER}"
_PLAIN = f"rescues < {SUSPECT_AFTER}"

# producing -------------------------------------------------------------------------------------
# One job; a taken unique key skips it (no row), and the id is the cursor's lastrowid. With no
# round trip to save, SQLite needs no INSERT_NOW or INSERT_MANY: a batch runs this per job.
INSERT_ONE = (
    "INSERT INTO bgjobs_jobs (queue, name, payload, priority, max_attempts, available_at,"
    " created_at, scheduled_at, unique_key, schedule, meta) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT DO NOTHING"
)

# unique keys -----------------------------------------------------------------------------------
_KEYS = "bgjobs_unique_keys"
# Take a unique key for a job about to be inserted, unless the key is in the table already
# (rowcount 0); KEY_JOB then points it at the job. Postgres takes the key and inserts the job in
# one statement.
INSERT_UNIQUE = (
    f"INSERT INTO {_KEYS} (key, job_id, while_running, keep_states, period_us)"
    " VALUES (?, -1, ?, ?, ?) ON CONFLICT DO NOTHING"
)
# Point a key just taken at the job inserted for it (Postgres takes the job's id first).
KEY_JOB = f"UPDATE {_KEYS} SET job_id = ? WHERE key = ? AND job_id = -1"
# Move a key from a job that no longer holds it to a job about to be inserted (then KEY_JOB),
# fenced on the old holder.
TAKE_OVER_KEYS = (
    f"UPDATE {_KEYS} SET job_id = -1, while_running = ?, keep_states = ?, period_us = ?"
    " WHERE key = ? AND job_id = ?"
)
# The rows of the given keys (a JSON array); the write transaction already excludes everyone.
KEY_HOLDS = f"SELECT {rows.KEY_SELECT} FROM {_KEYS} WHERE key IN (SELECT value FROM json_each(?))"
# The jobs holding keys: waiting or running (HOLDERS_HOT) and finished (HOLDERS_ARCHIVED).
HOLDERS_HOT = f"SELECT {_HOT} FROM bgjobs_jobs WHERE id IN {_IDS}"
HOLDERS_ARCHIVED = f"SELECT {_ARCHIVE} FROM bgjobs_archive WHERE id IN {_IDS}"
# Replace the payload, priority or run time of a job holding a key, if it still waits.
REPLACE_WAITING = f"""
UPDATE bgjobs_jobs SET
    payload = CASE WHEN :set_payload THEN :payload ELSE payload END,
    priority = CASE WHEN :set_priority THEN :priority ELSE priority END,
    available_at = CASE WHEN :set_at THEN :at ELSE available_at END,
    scheduled_at = CASE WHEN :set_at THEN :at ELSE scheduled_at END
WHERE id = :id AND reserved_by IS NULL
RETURNING {_HOT}"""
# Keys after :after (in key order) whose job is no longer waiting or running with that key:
# the ones that may have stopped holding (pruning reads them with their holders).
KEY_SLICE = f"""
SELECT {rows.select_list(rows.KEY_COLUMNS, "k")} FROM {_KEYS} k
WHERE k.key > :after AND NOT EXISTS (
    SELECT 1 FROM bgjobs_jobs j WHERE j.id = k.job_id AND j.unique_key = k.key)
ORDER BY k.key LIMIT :limit"""
# Forget a key, fenced on the job that held it (executemany).
DELETE_KEYS = f"DELETE FROM {_KEYS} WHERE key = ? AND job_id = ?"

# consuming -------------------------------------------------------------------------------------
_RESERVE = (
    "UPDATE bgjobs_jobs SET reserved_by = :node, reserved_at = :now, lease_expires_at = :lease,"
    " attempt = attempt + 1"
)
# Reserve up to :limit due jobs of the claimer's :names in claim order (the caller sorts them:
# RETURNING has no order).
# INDEXED BY: without statistics the planner may pick the due-time index and sort every due row
# on each claim, which makes a large backlog quadratic.
CLAIM = f"""{_RESERVE}
WHERE id IN (SELECT id FROM bgjobs_jobs INDEXED BY bgjobs_jobs_claim
             WHERE queue = :queue AND reserved_by IS NULL AND {_PLAIN} AND available_at <= :now
               AND {_CLAIMABLE}
             ORDER BY priority, available_at, id LIMIT :limit)
RETURNING {_HOT}"""
# Reserve the first due suspect of the queue of the claimer's :names, to run it alone (its own
# small partial index).
CLAIM_SUSPECT = f"""{_RESERVE}
WHERE id = (SELECT id FROM bgjobs_jobs INDEXED BY bgjobs_jobs_suspects
            WHERE queue = :queue AND reserved_by IS NULL AND {_SUSPECT} AND available_at <= :now
              AND {_CLAIMABLE}
            ORDER BY priority, available_at, id LIMIT 1)
RETURNING {_HOT}"""
# Reserve the head of a blocking queue (FIFO by scheduled time), only while nothing of the queue
# runs anywhere and only if it is one of the claimer's :names; a failed head keeps blocking until
# it is done. A suspect head (:suspects = 1) is taken only by a suspect claim.
CLAIM_BLOCKING = f"""{_RESERVE}
WHERE id = (SELECT id FROM bgjobs_jobs WHERE queue = :queue ORDER BY scheduled_at, id LIMIT 1)
  AND reserved_by IS NULL AND available_at <= :now AND {_CLAIMABLE}
  AND ({_SUSPECT}) = :suspects
  AND NOT EXISTS (SELECT 1 FROM bgjobs_jobs INDEXED BY bgjobs_jobs_leases
                  WHERE queue = :queue AND reserved_by IS NOT NULL)
RETURNING {_HOT}"""
# The earliest due time of a queue's waiting jobs of the claimer's :names: a loose scan of the
# claim index (one seek per distinct priority) instead of a second index on (queue, available_at)
# that every insert pays. Suspects are left out: plain claims do not take them (maintenance
# looks for them).
NEXT_DUE = f"""
WITH RECURSIVE priorities(priority) AS (
    SELECT (SELECT min(priority) FROM bgjobs_jobs
            WHERE queue = :queue AND reserved_by IS NULL AND {_PLAIN})
    UNION ALL
    SELECT (SELECT min(priority) FROM bgjobs_jobs
            WHERE queue = :queue AND reserved_by IS NULL AND {_PLAIN} AND priority > p.priority)
    FROM priorities p WHERE p.priority IS NOT NULL
)
SELECT min((SELECT available_at FROM bgjobs_jobs INDEXED BY bgjobs_jobs_claim
            WHERE queue = :queue AND reserved_by IS NULL AND {_PLAIN} AND priority = p.priority
              AND {_CLAIMABLE}
            ORDER BY available_at LIMIT 1))
FROM priorities p WHERE p.priority IS NOT NULL
"""
# A retried or snoozed job back to its queue, fenced on (id, node, attempt, rescues: a rescue
# that gives the attempt back counts one more); a snooze gives the attempt back (:refund = 1).
# Postgres does this inside COMPLETE.
COMPLETE_REQUEUE = f"""
UPDATE bgjobs_jobs SET reserved_by = NULL, reserved_at = NULL, lease_expires_at = NULL,
    attempt = attempt - :refund, available_at = :available_at,
    errors = CASE WHEN :error IS NULL THEN errors ELSE {_errors_plus("errors", "json(:error)")} END
WHERE id = :id AND reserved_by = :node AND attempt = :attempt AND rescues = :rescues
"""


def complete_finish(count: int) -> str:
    """COMPLETE_FINISH: delete ``count`` finished jobs, each fenced on (id, attempt, node,
    rescues), and return their rows for the archive (a stale and a current completion of one job
    may share a batch: only the current one matches)."""
    values = ",".join("(?, ?, ?, ?)" for _ in range(count))
    return (
        f"WITH done(id, attempt, node, rescues) AS (VALUES {values})"
        " DELETE FROM bgjobs_jobs WHERE id IN (SELECT j.id FROM done JOIN bgjobs_jobs j"
        " ON j.id = done.id AND j.attempt = done.attempt AND j.reserved_by = done.node"
        " AND j.rescues = done.rescues)"
        f" RETURNING {_HOT}"
    )


# Archive finished jobs from the rows COMPLETE_FINISH returned (executemany).
ARCHIVE_INSERT = (
    f"INSERT OR REPLACE INTO bgjobs_archive ({_ARCHIVE})"
    f" VALUES ({', '.join('?' for _ in rows.ARCHIVE_COLUMNS)})"
)
# A scheduled run ended: remember when it was due, started and ended, and how; free the run
# slot if it held it.
SCHEDULE_FINISHED = """
UPDATE bgjobs_schedules SET last_due_at = :due_at, last_finished_at = :now,
    last_outcome = :outcome, last_started_at = coalesce(:started_at, last_started_at),
    running_job = CASE WHEN running_job = :job_id THEN NULL ELSE running_job END
WHERE name = :name
"""
# Push back the leases of all of a node's jobs.
EXTEND_ALL = "UPDATE bgjobs_jobs SET lease_expires_at = :lease WHERE reserved_by = :node"
# Push back the leases of some of a node's jobs.
EXTEND_SOME = EXTEND_ALL + f" AND id IN {_IDS}"
# Record running jobs' progress, each fenced on (id, node, attempt); the ids it applied to.
SET_PROGRESS = """
UPDATE bgjobs_jobs SET progress = json_extract(r.value, '$.fraction'),
    progress_message = json_extract(r.value, '$.message')
FROM json_each(:rows) AS r
WHERE bgjobs_jobs.id = json_extract(r.value, '$.id')
  AND bgjobs_jobs.reserved_by = json_extract(r.value, '$.node')
  AND bgjobs_jobs.attempt = json_extract(r.value, '$.attempt')
RETURNING bgjobs_jobs.id
"""
# Give unfinished jobs back without counting the attempt (shutdown).
RELEASE = f"""
UPDATE bgjobs_jobs SET reserved_by = NULL, reserved_at = NULL, lease_expires_at = NULL,
    attempt = max(attempt - 1, 0)
WHERE reserved_by = :node AND id IN {_IDS}
RETURNING {_HOT}"""

# nodes and rescue ------------------------------------------------------------------------------
# Register or refresh a node and what it offers.
HEARTBEAT = """
INSERT INTO bgjobs_nodes (id, host, pid, started_at, heartbeat_at, queues, offers, lock_key)
VALUES (?,?,?,?,?,?,?,?)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, queues = excluded.queues,
    offers = excluded.offers, lock_key = excluded.lock_key
"""
# Forget a node that stopped cleanly.
REMOVE_NODE = "DELETE FROM bgjobs_nodes WHERE id = ?"
# All registered nodes.
LIST_NODES = f"SELECT {rows.NODE_SELECT} FROM bgjobs_nodes ORDER BY id"
# Reserved jobs whose lease ran out (the write transaction already excludes other rescuers).
EXPIRED = f"""
SELECT {_HOT} FROM bgjobs_jobs WHERE reserved_by IS NOT NULL AND lease_expires_at < :now
ORDER BY id"""
# Rescue: back to the queue, due now, the rescue error appended and counted; the attempt given
# back (refund = 1) unless the rescue is charged.
RESCUE_RELEASE = f"""
UPDATE bgjobs_jobs SET reserved_by = NULL, reserved_at = NULL, lease_expires_at = NULL,
    available_at = :now, errors = {_errors_plus("errors", _ROW_ERROR)},
    attempt = max(attempt - {_ROW_REFUND}, 0), rescues = rescues + 1
FROM json_each(:rows) AS r
WHERE bgjobs_jobs.id = {_ROW_ID}
"""
# Rescue: charged and out of attempts, to the archive as failed with the rescue error appended
# (then DELETE_RESCUED; Postgres does both in one statement).
RESCUE_FAIL = f"""
INSERT OR REPLACE INTO bgjobs_archive ({_ARCHIVE})
SELECT {rows.select_list(rows.CARRIED_COLUMNS, "j").replace("j.rescues", "j.rescues + 1")},
       {_errors_plus("j.errors", _ROW_ERROR)}, 'failed', :now
FROM json_each(:rows) AS r JOIN bgjobs_jobs j ON j.id = {_ROW_ID}
"""
# Remove rescued jobs that RESCUE_FAIL archived.
DELETE_RESCUED = f"DELETE FROM bgjobs_jobs WHERE id IN (SELECT {_ROW_ID} FROM json_each(:rows) r)"
# Forget nodes silent since :before.
FORGET_NODES = "DELETE FROM bgjobs_nodes WHERE heartbeat_at < :before"
# Due, unclaimed jobs per (queue, name): (queue, name, count, earliest due time). Reads every
# waiting row, so it runs at most once a minute per node (and for `bgjobs status`). Suspects
# count too: no node runs them either.
WAITING_NAMES = f"""
SELECT queue, name, count(*), min(available_at) FROM (
    SELECT queue, name, available_at FROM bgjobs_jobs INDEXED BY bgjobs_jobs_claim
    WHERE reserved_by IS NULL AND {_PLAIN} AND available_at <= :now
    UNION ALL
    SELECT queue, name, available_at FROM bgjobs_jobs INDEXED BY bgjobs_jobs_suspects
    WHERE reserved_by IS NULL AND {_SUSPECT} AND available_at <= :now)
GROUP BY queue, name ORDER BY queue, name
"""
# Due, unclaimed jobs of one (queue, name) to the archive as discarded with :error appended (its
# attempt set to each job's); then DELETE_DISCARDED (Postgres does both in one statement).
DISCARD_WAITING = f"""
INSERT OR REPLACE INTO bgjobs_archive ({_ARCHIVE})
SELECT {_CARRIED}, json_insert(errors, '$[#]', json_set(json(:error), '$.attempt', attempt)),
       'discarded', :now
FROM bgjobs_jobs
WHERE id IN (SELECT id FROM bgjobs_jobs INDEXED BY bgjobs_jobs_claim
             WHERE queue = :queue AND reserved_by IS NULL AND {_PLAIN} AND available_at <= :now
             UNION ALL
             SELECT id FROM bgjobs_jobs INDEXED BY bgjobs_jobs_suspects
             WHERE queue = :queue AND reserved_by IS NULL AND {_SUSPECT} AND available_at <= :now)
  AND bgjobs_text(CAST(name AS BLOB)) = :name
RETURNING {_ARCHIVE}"""
# Remove the jobs DISCARD_WAITING archived.
DELETE_DISCARDED = f"DELETE FROM bgjobs_jobs WHERE id IN {_IDS}"
# Registered nodes but one, with their liveness lock files (probed by the executor: FREE_NODES).
FREE_NODES = """
SELECT id, lock_key FROM bgjobs_nodes WHERE id <> ? AND lock_key IS NOT NULL ORDER BY id"""
# Of the given nodes, those still registered, with their lock files (probed: DEAD_NODES).
DEAD_NODES = f"""
SELECT id, lock_key FROM bgjobs_nodes WHERE id IN {_IDS} AND lock_key IS NOT NULL ORDER BY id"""
# The jobs the given nodes hold.
JOBS_OF_NODES = f"""
SELECT {_HOT} FROM bgjobs_jobs INDEXED BY bgjobs_jobs_leases
WHERE reserved_by IN {_IDS} ORDER BY id"""
# Remove dead nodes from the registry.
REMOVE_NODES = f"DELETE FROM bgjobs_nodes WHERE id IN {_IDS}"
# The (queue, name) of the given queues' suspects that a suspect claim would take now: any due
# suspect, but in a blocking queue (:blocking) only the head, while nothing of that queue runs.
# The caller keeps the names the node claims.
SUSPECT_QUEUES = f"""
SELECT DISTINCT j.queue, j.name FROM bgjobs_jobs j INDEXED BY bgjobs_jobs_suspects
WHERE j.queue IN (SELECT value FROM json_each(:queues)) AND j.reserved_by IS NULL
  AND j.{_SUSPECT} AND j.available_at <= :now
  AND (j.queue NOT IN (SELECT value FROM json_each(:blocking))
       OR (j.id = (SELECT h.id FROM bgjobs_jobs h WHERE h.queue = j.queue
                   ORDER BY h.scheduled_at, h.id LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM bgjobs_jobs r INDEXED BY bgjobs_jobs_leases
                           WHERE r.queue = j.queue AND r.reserved_by IS NOT NULL)))"""

# scheduled jobs --------------------------------------------------------------------------------
# Register a schedule, or update its definition, queue and attempts (a schedule defined again
# is no longer removed).
SCHEDULE_UPSERT = """
INSERT INTO bgjobs_schedules (name, definition, queue, max_attempts) VALUES (?,?,?,?)
ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, queue = excluded.queue,
    max_attempts = excluded.max_attempts, removed_at = NULL
"""
# The waiting or running job a unique key points at (a schedule's pending or running run).
BY_UNIQUE_KEY = f"""
SELECT {rows.select_list(rows.HOT_COLUMNS, "j")}
FROM {_KEYS} k JOIN bgjobs_jobs j ON j.id = k.job_id AND j.unique_key = k.key
WHERE k.key = ?"""
# A schedule's pending run is found through its key (the keys table), never by a scan.
_SCHEDULE_STATE_FROM = f"""
SELECT {rows.SCHEDULE_STATE_SELECT}
FROM bgjobs_schedules s
LEFT JOIN {_KEYS} k ON k.key = :prefix || s.name
LEFT JOIN bgjobs_jobs j ON j.id = k.job_id AND j.unique_key = k.key
LEFT JOIN bgjobs_schedule_history h
    ON h.id = (SELECT max(id) FROM bgjobs_schedule_history WHERE schedule = s.name)"""
# Every schedule with its pending run and newest history entry.
SCHEDULE_STATES = _SCHEDULE_STATE_FROM + " ORDER BY s.name"
# One schedule, as SCHEDULE_STATES.
SCHEDULE_STATE = _SCHEDULE_STATE_FROM + " WHERE s.name = :name"
# Append entries to schedules' histories (executemany).
SCHEDULE_RECORD = (
    f"INSERT INTO bgjobs_schedule_history ({rows.select_list(rows.HISTORY_WRITTEN)}, recorded_at)"
    f" VALUES ({', '.join(':' + c for c in rows.HISTORY_WRITTEN)}, :now)"
)
# A schedule's newest history entries.
SCHEDULE_HISTORY = f"""
SELECT {rows.HISTORY_SELECT} FROM bgjobs_schedule_history WHERE schedule = :name
ORDER BY id DESC LIMIT :limit"""
# Whether another run (than :job_id) holds the schedule's run slot and is reserved right now.
_SLOT_BUSY = """EXISTS (SELECT 1 FROM bgjobs_jobs j WHERE j.id = running_job AND j.id <> :job_id
                      AND j.reserved_by IS NOT NULL)"""
# A run takes its schedule's run slot if the slot is free and, for a regular run (:regular),
# the schedule is not paused. No row changed: SCHEDULE_GATE tells why.
SCHEDULE_START = f"""
UPDATE bgjobs_schedules SET running_job = :job_id
WHERE name = :name AND NOT {_SLOT_BUSY}
  AND NOT (:regular AND paused_at IS NOT NULL AND (paused_until IS NULL OR paused_until > :now))"""
# What a run's gate decides on: the schedule's pause, and whether its run slot is busy.
SCHEDULE_GATE = f"""
SELECT paused_at, paused_until, {_SLOT_BUSY} FROM bgjobs_schedules WHERE name = :name"""
# Pause a schedule (until :until, or until resumed).
SCHEDULE_PAUSE = (
    "UPDATE bgjobs_schedules SET paused_at = :paused_at, paused_until = :until WHERE name = :name"
)
# Resume a schedule.
SCHEDULE_RESUME = (
    "UPDATE bgjobs_schedules SET paused_at = NULL, paused_until = NULL WHERE name = :name"
)
# The waiting or running jobs holding a schedule's keys (regular and run-now), found through
# the keys table's primary key: never a scan of the hot table.
_SCHEDULE_RUNS = f"""id IN (SELECT job_id FROM {_KEYS} WHERE key IN (:regular, :run_now))
  AND unique_key IN (:regular, :run_now)"""
# Runs waiting for a schedule's run slot (given back while another run went) are due now.
SCHEDULE_WAKE = f"""
UPDATE bgjobs_jobs SET available_at = :now
WHERE {_SCHEDULE_RUNS} AND reserved_by IS NULL AND attempt = 0
  AND scheduled_at <= :now AND available_at > :now"""
# A node says which schedules it defines (again later: the first time stays).
SCHEDULE_PUBLISH = """
INSERT INTO bgjobs_node_schedules (schedule, node_id, published_at)
SELECT value, :node, :now FROM json_each(:names) WHERE true
ON CONFLICT (schedule, node_id) DO NOTHING"""
# A node that stops stamps what it published with the time it left: it counts a while longer
# (the publication grace), so a deploy that restarts every node retires nothing in between.
SCHEDULE_UNPUBLISH = "UPDATE bgjobs_node_schedules SET published_at = :now WHERE node_id = :node"
# Whether a node alive since :since defines a schedule (or, with no registry row, published
# it or stopped since then).
SCHEDULE_DEFINED = """
SELECT EXISTS (SELECT 1 FROM bgjobs_node_schedules p LEFT JOIN bgjobs_nodes n ON n.id = p.node_id
               WHERE p.schedule = :name
                 AND (n.heartbeat_at >= :since OR (n.id IS NULL AND p.published_at >= :since)))"""
# Forget what nodes that are gone published.
SCHEDULE_FORGET_PUBLISHED = """
DELETE FROM bgjobs_node_schedules WHERE published_at < :since
  AND NOT EXISTS (SELECT 1 FROM bgjobs_nodes n
                  WHERE n.id = node_id AND n.heartbeat_at >= :since)"""
# The waiting runs of a schedule (regular and run-now), removed with it.
SCHEDULE_REMOVE_RUNS = f"""
DELETE FROM bgjobs_jobs WHERE {_SCHEDULE_RUNS} AND reserved_by IS NULL
RETURNING {_HOT}"""
# No live node defines a schedule any more.
SCHEDULE_REMOVED = (
    "UPDATE bgjobs_schedules SET removed_at = :now, running_job = NULL WHERE name = :name"
)
# Delete up to :limit history entries recorded before :cutoff, kept under :results (JSON array;
# "" stands for entries that are not a run).
PRUNE_HISTORY_SLICE = """
DELETE FROM bgjobs_schedule_history WHERE id IN (
    SELECT id FROM bgjobs_schedule_history
    WHERE recorded_at < :cutoff
      AND coalesce(result, '') IN (SELECT value FROM json_each(:results)) LIMIT :limit)
"""

# operating -------------------------------------------------------------------------------------
# One waiting or running job.
GET_HOT = f"SELECT {_HOT} FROM bgjobs_jobs WHERE id = ?"
# One finished job.
GET_ARCHIVED = f"SELECT {_ARCHIVE} FROM bgjobs_archive WHERE id = ?"
_HOT_STATE = {
    JobState.RUNNING: " AND reserved_by IS NOT NULL",
    JobState.AVAILABLE: " AND reserved_by IS NULL AND available_at <= :now",
    JobState.SCHEDULED: " AND reserved_by IS NULL AND available_at > :now",
}


def _matching(where: JobFilter) -> str:
    return ("" if where.name is None else " AND name = :name") + (
        "" if where.queue is None else " AND queue = :queue"
    )


def list_hot(where: JobFilter) -> str:
    """LIST_HOT: the newest waiting or running jobs matching a filter. Only the filter's
    conditions are in the text, so SQLite can use an index for them."""
    state = "" if where.state is None else _HOT_STATE[where.state]
    return (
        f"SELECT {_HOT} FROM bgjobs_jobs WHERE 1 = 1{_matching(where)}{state}"
        " ORDER BY id DESC LIMIT :limit"
    )


def list_running(where: JobFilter) -> str:
    """LIST_RUNNING: the newest running jobs matching a filter, read from the partial index of
    running jobs: LIST_HOT would scan every waiting job to find them (the live view asks for
    them twice a second, whatever the backlog)."""
    return (
        f"SELECT {_HOT} FROM bgjobs_jobs INDEXED BY bgjobs_jobs_leases"
        f" WHERE reserved_by IS NOT NULL{_matching(where)} ORDER BY id DESC LIMIT :limit"
    )


def list_archived(where: JobFilter) -> str:
    """LIST_ARCHIVED: the newest finished jobs matching a filter (as LIST_HOT)."""
    state = "" if where.state is None else " AND state = :state"
    return (
        f"SELECT {_ARCHIVE} FROM bgjobs_archive WHERE 1 = 1{_matching(where)}{state}"
        " ORDER BY id DESC LIMIT :limit"
    )


# Each stats query is answered from a (partial) covering index, never the whole table.
# Waiting jobs per queue: (queue, available, scheduled).
STATS_WAITING = f"""
SELECT queue, sum(available_at <= :now), sum(available_at > :now) FROM (
    SELECT queue, available_at FROM bgjobs_jobs INDEXED BY bgjobs_jobs_claim
    WHERE reserved_by IS NULL AND {_PLAIN}
    UNION ALL
    SELECT queue, available_at FROM bgjobs_jobs INDEXED BY bgjobs_jobs_suspects
    WHERE reserved_by IS NULL AND {_SUSPECT})
GROUP BY queue
"""
# Running jobs per queue and node: (queue, node, running).
STATS_RUNNING = """
SELECT queue, reserved_by, count(*) FROM bgjobs_jobs INDEXED BY bgjobs_jobs_leases
WHERE reserved_by IS NOT NULL GROUP BY queue, reserved_by
"""
# Failed and discarded jobs per queue, all time: (queue, count).
STATS_FAILED = """
SELECT queue, count(*) FROM bgjobs_archive WHERE state IN ('failed', 'discarded') GROUP BY queue
"""
# Jobs finished since :since per queue and state: (queue, state, count).
STATS_RECENT = """
SELECT queue, state, count(*) FROM bgjobs_archive INDEXED BY bgjobs_archive_finished
WHERE finished_at >= :since GROUP BY queue, state
"""


def retry(by_ids: bool, by_name: bool) -> str:
    """RETRY: finished jobs back to the hot table under their old id, attempts reset, due now.
    A retried scheduled run does not take back the schedule's unique key (it would block the
    next run). Then DELETE_RETRIED (Postgres does both in one statement)."""
    return (
        "INSERT INTO bgjobs_jobs (id, queue, name, payload, priority, attempt, max_attempts,"
        " available_at, created_at, scheduled_at, schedule, errors, meta)"
        " SELECT id, queue, name, payload, priority, 0, max_attempts, :now, created_at, :now,"
        " schedule, errors, meta FROM bgjobs_archive"
        # Given ids: look each up by primary key (the planner would rather walk the state index
        # over every failed job, as it cannot know how short the JSON list is).
        + (" NOT INDEXED" if by_ids else "")
        + " WHERE state IN ('failed', 'discarded', 'cancelled')"
        + (f" AND id IN {_IDS}" if by_ids else "")
        + (" AND name = :name" if by_name else "")
        + " RETURNING id"
    )


# Remove the archive rows RETRY moved back.
DELETE_RETRIED = f"DELETE FROM bgjobs_archive WHERE id IN {_IDS}"
# A waiting job to the archive as cancelled (then DELETE_HOT).
CANCEL = f"""
INSERT OR REPLACE INTO bgjobs_archive ({_ARCHIVE})
SELECT {_CARRIED}, errors, 'cancelled', :now FROM bgjobs_jobs WHERE id = :id
RETURNING {_ARCHIVE}"""
# Ask the node running a job to stop it: its cancel watcher finds the flag (CANCEL_REQUESTED).
REQUEST_CANCEL = f"""
UPDATE bgjobs_jobs SET cancel_requested_at = coalesce(cancel_requested_at, :now)
WHERE id = :id AND reserved_by IS NOT NULL
RETURNING {_HOT}"""
# The jobs a node runs that someone asked to cancel.
CANCEL_REQUESTED = """
SELECT id FROM bgjobs_jobs INDEXED BY bgjobs_jobs_cancel
WHERE reserved_by = ? AND cancel_requested_at IS NOT NULL ORDER BY id"""
# Delete a waiting job.
DELETE_HOT = "DELETE FROM bgjobs_jobs WHERE id = ?"
# Delete a finished job.
DELETE_ARCHIVED = "DELETE FROM bgjobs_archive WHERE id = ?"
# Delete up to :limit archived jobs in :states (a JSON array) finished before :cutoff.
PRUNE_SLICE = """
DELETE FROM bgjobs_archive WHERE id IN (
    SELECT id FROM bgjobs_archive
    WHERE finished_at < :cutoff AND state IN (SELECT value FROM json_each(:states)) LIMIT :limit)
"""
