"""The Postgres Store: many processes on many hosts share one database (one schema per instance).

All times come from the database clock (``now()``), except values the caller gives explicitly
(``NewJob.available_at``, ``NodeInfo.started_at``). Statements that must be atomic together run
in one transaction; the hot paths (enqueue, claim, complete) are single statements, so each is one
round trip and commits on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from bgjobs.adapters.base import (
    SCHEDULE_KEY_PREFIX,
    SCHEMA_VERSION,
    Applied,
    ClaimRequest,
    Completion,
    EventCallback,
    JobFilter,
    NodeInfo,
    Outcome,
    QueueStats,
    RescueResult,
    ScheduleRegistration,
    ScheduleState,
    WakeCallback,
    Wakeup,
    rescue_error,
)
from bgjobs.adapters.postgres import schema as pg_schema
from bgjobs.adapters.postgres.config import (
    Target,
    check_channel,
    default_channel,
    mask_password,
    parse_target,
)
from bgjobs.adapters.postgres.connections import Connections, pool_conninfo
from bgjobs.adapters.postgres.listener import NotifyListener
from bgjobs.adapters.postgres.queries import QUEUE_LOCK, Queries
from bgjobs.adapters.postgres.rows import (
    archived_job,
    batch_json,
    error_dict,
    hot_job,
    inserted_job,
    maybe_utc,
    node_info,
    utc,
)
from bgjobs.adapters.records import microseconds as us
from bgjobs.errors import ConfigError, RuntimeStateError, SchemaError
from bgjobs.job import Job, JobState, NewJob

_PRUNE_SLICE = 5000
_FINISHING = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.DISCARDED)


@dataclass(frozen=True)
class _PoolOptions:
    min_size: int
    max_size: int
    timeout: float
    connect_kwargs: dict[str, Any]


class PostgresStore:
    """Store on a Postgres database via psycopg 3.

    ``conninfo`` is a URL (``postgresql://user:pw@host:5432/db?schema=NAME``), a libpq
    ``key=value`` string, or a ``psycopg_pool.ConnectionPool`` you own (bgjobs borrows it and does
    not close it). ``schema`` (or the URL's ``schema=``) names the Postgres schema holding the
    tables, created on migrate; default ``public``. Instances in different schemas of one
    database never see each other's jobs or wake-ups. ``min_size``/``max_size``/``pool_timeout``
    size the pool bgjobs creates; ``connect_kwargs`` go to every ``psycopg.connect``.
    """

    backend = "postgres"

    def __init__(
        self,
        conninfo: str | ConnectionPool[Any],
        *,
        schema: str | None = None,
        migrate: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 5.0,
        notify_channel: str | None = None,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(conninfo, ConnectionPool):
            target = parse_target(pool_conninfo(conninfo), schema)
            self._source: str | ConnectionPool[Any] = conninfo
        elif isinstance(conninfo, str):
            target = parse_target(conninfo, schema)
            self._source = target.conninfo
        else:
            raise ConfigError(
                "PostgresStore needs a postgresql:// URL, a libpq conninfo string or a "
                f"psycopg_pool.ConnectionPool, got {type(conninfo).__name__}"
            )
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigError(
                f"need 0 <= min_size <= max_size and max_size >= 1, "
                f"got min_size={min_size}, max_size={max_size}"
            )
        self._target: Target = target
        self.schema = target.schema
        self.display_url = target.display_url
        self.notify_channel = check_channel(notify_channel or default_channel(target.schema))
        self._auto_migrate = migrate
        self._pool_options = _PoolOptions(
            min_size, max_size, pool_timeout, dict(connect_kwargs or {})
        )
        self._q = Queries(target.schema)
        self._lock = threading.RLock()
        self._connections: Connections | None = None
        self._listeners: list[NotifyListener] = []

    def __repr__(self) -> str:
        return f"PostgresStore({self.display_url!r}, schema={self.schema!r})"

    # lifecycle ---------------------------------------------------------------------------------
    def _new_connections(self) -> Connections:
        options = self._pool_options
        return Connections(
            self._source,
            name=f"bgjobs:{self.schema}",
            min_size=options.min_size,
            max_size=options.max_size,
            timeout=options.timeout,
            connect_kwargs=options.connect_kwargs,
        )

    def open(self) -> tuple[int, int] | None:
        with self._lock:
            if self._connections is not None:
                return None
            connections = self._new_connections()
            with connections.admin() as conn:
                if self._auto_migrate:
                    start = self._migrate_on(conn)
                else:
                    self._check_schema(pg_schema.current_version(conn, self.schema))
                    start = SCHEMA_VERSION
            connections.open()
            self._connections = connections
            return (start, SCHEMA_VERSION) if start != SCHEMA_VERSION else None

    def close(self) -> None:
        with self._lock:
            listeners, self._listeners = self._listeners, []
            for listener in listeners:
                listener.stop()
            if self._connections is not None:
                self._connections.close()
                self._connections = None

    def exists(self) -> bool:
        return True  # the server holds the database; a missing one fails to connect instead

    def monitor(self) -> tuple[PostgresStore, bool]:
        return self, False  # a pool, already safe to share

    def _conn(self) -> AbstractContextManager[Connection[Any]]:
        connections = self._connections
        if connections is None:
            self.open()
            connections = self._connections
            assert connections is not None
        return connections.connection()

    def migrate(self) -> tuple[int, int]:
        connections = self._connections or self._new_connections()
        with connections.admin() as conn:
            return self._migrate_on(conn), SCHEMA_VERSION

    def _migrate_on(self, conn: Connection[Any]) -> int:
        start = pg_schema.migrate(conn, self.schema, SCHEMA_VERSION)
        if start > SCHEMA_VERSION:
            self._check_schema(start)
        return start

    def schema_version(self) -> int:
        # Without open(), which would migrate or refuse an old schema.
        connections = self._connections or self._new_connections()
        with connections.admin() as conn:
            return pg_schema.current_version(conn, self.schema)

    def _check_schema(self, version: int) -> None:
        where = f"schema {self.schema!r} of {mask_password(self._target.conninfo)}"
        if version < SCHEMA_VERSION:
            raise SchemaError(
                f"the bgjobs schema in {where} is at version {version}, this bgjobs needs "
                f"{SCHEMA_VERSION}. Run `bgjobs migrate --database {self.display_url}` "
                "(or open the store with migrate=True)."
            )
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"the bgjobs schema in {where} is at version {version}, newer than this bgjobs "
                f"understands ({SCHEMA_VERSION}). Upgrade bgjobs on this machine."
            )

    def now(self) -> datetime:
        with self._conn() as conn:
            row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        return utc(row[0])

    # producing ---------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        with self._conn() as conn:
            return self._insert(conn, jobs)

    def _insert(self, conn: Connection[Any], jobs: Sequence[NewJob]) -> list[Job]:
        """Insert and NOTIFY in one statement: the wake-up fires when (if) it commits."""
        cur = conn.cursor(binary=True)
        if len(jobs) == 1:  # the common enqueue: one narrow row back
            new = jobs[0]
            if _due_now_plain(new):
                row = cur.execute(
                    self._q.insert_now,
                    (
                        new.queue,
                        new.name,
                        new.raw_payload,
                        new.priority,
                        new.max_attempts,
                        self.notify_channel,
                    ),
                ).fetchone()
                return [inserted_job(new, row)] if row is not None else []
            row = cur.execute(
                self._q.insert_one,
                {
                    "queue": new.queue,
                    "name": new.name,
                    "payload": new.raw_payload,
                    "priority": new.priority,
                    "max_attempts": new.max_attempts,
                    "available_at": new.available_at,
                    "delay_us": us(new.delay),
                    "unique_key": new.unique_key,
                    "schedule": new.schedule,
                    "channel": self.notify_channel,
                },
            ).fetchone()
            return [inserted_job(new, row)] if row is not None else []
        batch = batch_json(
            [
                {
                    "queue": j.queue,
                    "name": j.name,
                    "payload": j.raw_payload,
                    "priority": j.priority,
                    "max_attempts": j.max_attempts,
                    "available_at": j.available_at.isoformat() if j.available_at else None,
                    "delay_us": us(j.delay),
                    "unique_key": j.unique_key,
                    "schedule": j.schedule,
                }
                for j in jobs
            ]
        )
        rows = cur.execute(
            self._q.insert_many, {"jobs": batch, "channel": self.notify_channel}
        ).fetchall()
        return [hot_job(row) for row in rows]

    # consuming ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> list[Job]:
        if request.limit <= 0:
            return []
        params = {
            "node": request.node_id,
            "lease_us": us(request.lease),
            "queue": request.queue,
            "limit": request.limit,
        }
        with self._conn() as conn:
            if request.blocking:
                # SKIP LOCKED would let a second node take job #2 while #1 runs; instead the
                # check-and-claim is serialised per queue by a transaction-scoped lock.
                with conn.transaction():
                    conn.execute(
                        QUEUE_LOCK, (pg_schema.lock_key(self.schema, f"queue:{request.queue}"),)
                    )
                    rows = (
                        conn.cursor(binary=True).execute(self._q.claim_blocking, params).fetchall()
                    )
            else:
                rows = conn.cursor(binary=True).execute(self._q.claim, params).fetchall()
        return [hot_job(row) for row in rows]

    def next_due_at(self, queue: str) -> datetime | None:
        with self._conn() as conn:
            row = conn.execute(self._q.next_due, {"queue": queue}).fetchone()
        return maybe_utc(row[0]) if row else None

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        if not completions:
            return []
        groups = _unique_runs(completions)
        follow_up = any(c.job.schedule is not None or c.next_run is not None for c in completions)
        with self._conn() as conn:
            if len(groups) == 1 and not follow_up:
                return self._complete_group(conn, groups[0])  # one statement, one round trip
            results: list[Applied] = []
            with conn.transaction():
                for group in groups:
                    results += self._complete_group(conn, group)
            return results

    def _complete_group(self, conn: Connection[Any], group: list[Completion]) -> list[Applied]:
        batch = batch_json(
            [
                {
                    "id": c.job.id,
                    "node": c.node_id,
                    "attempt": c.job.attempt,
                    "kind": c.outcome.value,
                    "keep": c.keep or c.outcome is not Outcome.SUCCEEDED,
                    "error": error_dict(c.error),
                    "delay_us": us(c.delay),
                }
                for c in group
            ]
        )
        rows = conn.cursor(binary=True).execute(self._q.complete, (batch,)).fetchall()
        done = {row[0]: row for row in rows}  # id, schedule, scheduled_at, kind (finished only)
        results: list[Applied] = []
        for completion in group:
            row = done.get(completion.job.id)
            if row is None:
                results.append(Applied(applied=False))
                continue
            next_run: Job | None = None
            if completion.outcome in _FINISHING:
                if row[1] is not None:
                    conn.execute(self._q.schedule_finished, (row[2], row[3], row[1]))
                if completion.next_run is not None:
                    inserted = self._insert(conn, [completion.next_run])
                    next_run = inserted[0] if inserted else None
            results.append(Applied(applied=True, next_run=next_run))
        return results

    def extend_leases(
        self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None = None
    ) -> int:
        with self._conn() as conn:
            if job_ids is None:
                cur = conn.execute(self._q.extend_all, (us(lease), node_id))
            elif not job_ids:
                return 0
            else:
                cur = conn.execute(self._q.extend_some, (us(lease), node_id, list(job_ids)))
            return cur.rowcount

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        if not job_ids:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                self._q.release,
                {
                    "node": node_id,
                    "ids": list(job_ids),
                    "channel": self.notify_channel,
                },
            ).fetchall()
        return [hot_job(row) for row in rows]

    # nodes and rescue --------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        with self._conn() as conn:
            conn.execute(
                self._q.heartbeat,
                (node.id, node.host, node.pid, node.started_at, list(node.queues)),
            )

    def remove_node(self, node_id: str) -> None:
        with self._conn() as conn:
            conn.execute(self._q.remove_node, (node_id,))

    def list_nodes(self) -> list[NodeInfo]:
        with self._conn() as conn:
            return [node_info(row) for row in conn.execute(self._q.list_nodes).fetchall()]

    def rescue(self, node_timeout: timedelta) -> RescueResult:
        released: list[Job] = []
        failed: list[Job] = []
        with self._conn() as conn, conn.transaction():
            # SKIP LOCKED: rows another node is rescuing (or a late completion is finishing)
            # right now are theirs to settle.
            rows = conn.execute(self._q.expired).fetchall()
            release_rows: list[dict[str, Any]] = []
            fail_rows: list[dict[str, Any]] = []
            for row in rows:
                job = hot_job(row)
                item = {"id": job.id, "error": error_dict(rescue_error(job, utc(row[16])))}
                if job.attempt >= job.max_attempts:
                    failed.append(job)
                    fail_rows.append(item)
                else:
                    released.append(job)
                    release_rows.append(item)
            if release_rows:
                conn.execute(
                    self._q.rescue_release,
                    {
                        "rows": batch_json(release_rows),
                        "channel": self.notify_channel,
                    },
                )
            if fail_rows:
                conn.execute(self._q.rescue_fail, {"rows": batch_json(fail_rows)})
            conn.execute(self._q.forget_nodes, (us(node_timeout),))
        return RescueResult(released=released, failed=failed)

    # scheduled jobs ----------------------------------------------------------------------------
    def register_schedule(self, registration: ScheduleRegistration, queue: str) -> Job | None:
        first = registration.first_run
        assert first.unique_key is not None, "a schedule's run needs its unique key"
        with self._conn() as conn, conn.transaction():
            # Nodes registering the same schedule at once take turns (the decision below reads
            # then writes, so it must not interleave).
            conn.execute(
                QUEUE_LOCK, (pg_schema.lock_key(self.schema, f"schedule:{registration.name}"),)
            )
            # The job row before the schedules row: complete() locks them in that order too
            # (it finishes the run, then updates the schedule), so the two never deadlock.
            row = conn.execute(self._q.by_unique_key, (first.unique_key,)).fetchone()
            old = conn.execute(self._q.schedule_definition, (registration.name,)).fetchone()
            conn.execute(
                self._q.schedule_upsert, (registration.name, registration.definition, queue)
            )
            if row is None:
                return _first(self._insert(conn, [first]))
            pending = hot_job(row)
            if pending.reserved_by is not None:
                return None
            changed = old is not None and old[0] != registration.definition
            if changed or pending.queue != first.queue:
                replacement: NewJob | None = first
            elif (
                registration.overdue_before is not None
                and pending.available_at < registration.overdue_before
                and pending.attempt == 0  # a run in retry backoff keeps its attempts
            ):
                replacement = registration.overdue_run
            else:
                replacement = None
            if replacement is None:
                return pending
            conn.execute(self._q.delete_hot, (pending.id,))
            return _first(self._insert(conn, [replacement]))

    def schedule_states(self) -> list[ScheduleState]:
        with self._conn() as conn:
            rows = conn.execute(self._q.schedule_states, (SCHEDULE_KEY_PREFIX,)).fetchall()
        return [
            ScheduleState(
                name=r[0],
                definition=r[1],
                queue=r[2],
                next_run_at=maybe_utc(r[3]),
                running=r[4] is not None,
                last_due_at=maybe_utc(r[5]),
                last_finished_at=maybe_utc(r[6]),
                last_outcome=r[7],
            )
            for r in rows
        ]

    # operating ---------------------------------------------------------------------------------
    def get_job(self, job_id: int) -> Job | None:
        with self._conn() as conn:
            row = conn.execute(self._q.get_hot, (job_id,)).fetchone()
            if row is not None:
                return hot_job(row)
            row = conn.execute(self._q.get_archived, (job_id,)).fetchone()
        return archived_job(row) if row is not None else None

    def list_jobs(self, where: JobFilter) -> list[Job]:
        state = where.state
        params = {
            "name": where.name,
            "queue": where.queue,
            "limit": where.limit,
            "state": state.value if state is not None else None,
        }
        jobs: list[Job] = []
        with self._conn() as conn:
            if state is None or not state.is_finished:
                jobs += [hot_job(r) for r in conn.execute(self._q.list_hot, params).fetchall()]
            if state is None or state.is_finished:
                jobs += [
                    archived_job(r) for r in conn.execute(self._q.list_archived, params).fetchall()
                ]
        jobs.sort(key=lambda job: job.id, reverse=True)
        return jobs[: where.limit]

    def queue_stats(self, recent: timedelta) -> list[QueueStats]:
        stats: dict[str, list[int]] = {}
        with self._conn() as conn:
            for queue, available, scheduled, running in conn.execute(self._q.stats_hot):
                stats.setdefault(queue, [0] * 6)[:3] = [available, scheduled, running]
            for queue, count in conn.execute(self._q.stats_failed):
                stats.setdefault(queue, [0] * 6)[3] = count
            for queue, state, count in conn.execute(self._q.stats_recent, (us(recent),)):
                slot = 4 if state == JobState.SUCCEEDED.value else 5
                stats.setdefault(queue, [0] * 6)[slot] += count
        return [QueueStats(queue, *values) for queue, values in sorted(stats.items())]

    def retry_jobs(
        self, job_ids: Sequence[int] = (), *, all_failed: bool = False, name: str | None = None
    ) -> list[int]:
        if not all_failed and not job_ids:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                self._q.retry,
                {
                    "all": all_failed,
                    "ids": list(job_ids),
                    "name": name,
                    "channel": self.notify_channel,
                },
            ).fetchall()
        return [row[0] for row in rows]

    def cancel_job(self, job_id: int) -> Job | None:
        with self._conn() as conn, conn.transaction():
            row = conn.execute(self._q.get_hot_for_update, (job_id,)).fetchone()
            if row is None:
                archived = conn.execute(self._q.get_archived, (job_id,)).fetchone()
                return archived_job(archived) if archived else None
            if row[10] is not None:
                raise RuntimeStateError(
                    f"job {job_id} is running on node {row[10]}; it can be cancelled only "
                    "while waiting. Wait for it to finish, or stop that node."
                )
            archived = conn.execute(self._q.cancel, (job_id,)).fetchone()
        assert archived is not None
        return archived_job(archived)

    def delete_job(self, job_id: int) -> bool:
        with self._conn() as conn, conn.transaction():
            row = conn.execute(self._q.reserved_by_for_update, (job_id,)).fetchone()
            if row is not None and row[0] is not None:
                raise RuntimeStateError(
                    f"job {job_id} is running on node {row[0]}; delete it after it finishes."
                )
            deleted = conn.execute(self._q.delete_hot, (job_id,)).rowcount
            deleted += conn.execute(self._q.delete_archived, (job_id,)).rowcount
        return deleted > 0

    def prune(self, older_than: timedelta, states: Sequence[JobState]) -> int:
        wanted = [state.value for state in states if state.is_finished]
        if not wanted:
            return 0
        with self._conn() as conn:
            row = conn.execute(self._q.now_minus, (us(older_than),)).fetchone()
        assert row is not None
        cutoff = row[0]
        total = 0
        while True:  # in slices, so a huge prune never holds many row locks for long
            with self._conn() as conn:
                count = conn.execute(self._q.prune_slice, (wanted, cutoff, _PRUNE_SLICE)).rowcount
            total += count
            if count < _PRUNE_SLICE:
                return total

    # wake-up -----------------------------------------------------------------------------------
    def start_wakeup(self, on_wake: WakeCallback, on_channel: EventCallback) -> Wakeup:
        if self._connections is None:
            self.open()
        connections = self._connections
        assert connections is not None
        listener = NotifyListener(connections.connect, self.notify_channel, on_wake, on_channel)
        with self._lock:
            self._listeners = [x for x in self._listeners if x.alive] + [listener]
        return listener


def _unique_runs(completions: Sequence[Completion]) -> list[list[Completion]]:
    """Split into consecutive runs without a repeated job id: each run is one set-based statement
    (its rows are disjoint), and runs apply in order, as sequential completion would."""
    if len({c.job.id for c in completions}) == len(completions):
        return [list(completions)]  # the usual case
    runs: list[list[Completion]] = [[]]
    seen: set[int] = set()
    for completion in completions:
        if completion.job.id in seen:
            runs.append([])
            seen.clear()
        runs[-1].append(completion)
        seen.add(completion.job.id)
    return runs


def _due_now_plain(new: NewJob) -> bool:
    return (
        new.available_at is None
        and not new.delay
        and new.unique_key is None
        and new.schedule is None
    )


def _first(jobs: list[Job]) -> Job | None:
    return jobs[0] if jobs else None
