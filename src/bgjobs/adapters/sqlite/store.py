"""The SQLite Store: one file, WAL mode, any number of threads and processes.

Writes take ``BEGIN IMMEDIATE`` so that two processes never deadlock upgrading a read to a write;
the busy timeout makes them queue instead, and a bounded retry covers the rare "database is
locked" that SQLite reports without calling the busy handler.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

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
from bgjobs.adapters.records import microseconds
from bgjobs.adapters.sqlite import schema
from bgjobs.adapters.sqlite.rows import (
    ARCHIVE_COLUMNS,
    HOT_COLUMNS,
    archive_values,
    archived_job,
    errors_with,
    from_us,
    hot_job,
    maybe_from_us,
    to_us,
)
from bgjobs.adapters.sqlite.wakeup import DataVersionWatcher
from bgjobs.errors import RuntimeStateError, SchemaError
from bgjobs.job import Job, JobState, NewJob

_LOCK_RETRY_SECONDS = 60.0
_NEXT_DUE = """
WITH RECURSIVE priorities(priority) AS (
    SELECT (SELECT min(priority) FROM bgjobs_jobs
            WHERE queue = :queue AND reserved_by IS NULL)
    UNION ALL
    SELECT (SELECT min(priority) FROM bgjobs_jobs
            WHERE queue = :queue AND reserved_by IS NULL AND priority > p.priority)
    FROM priorities p WHERE p.priority IS NOT NULL
)
SELECT min((SELECT min(available_at) FROM bgjobs_jobs
            WHERE queue = :queue AND reserved_by IS NULL AND priority = p.priority))
FROM priorities p WHERE p.priority IS NOT NULL
"""
_BATCH = 300  # finished jobs per DELETE (3 parameters each, well under SQLite's limit)
_FINAL_STATE = {
    Outcome.SUCCEEDED: JobState.SUCCEEDED,
    Outcome.FAILED: JobState.FAILED,
    Outcome.DISCARDED: JobState.DISCARDED,
}
_ARCHIVE_INSERT = (
    f"INSERT OR REPLACE INTO bgjobs_archive ({ARCHIVE_COLUMNS})"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _now_us() -> int:
    return time.time_ns() // 1000


class SQLiteStore:
    """Store on one SQLite file. ``path=":memory:"`` uses a private temporary file instead, since
    the wake-up watcher needs a second connection to the same database."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        migrate: bool = True,
        busy_timeout: timedelta = timedelta(seconds=30),
        synchronous: str = "NORMAL",
        wakeup_interval: timedelta = timedelta(milliseconds=5),
    ) -> None:
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        if str(path) == ":memory:":
            self._temp_dir = tempfile.TemporaryDirectory(prefix="bgjobs-")
            path = Path(self._temp_dir.name) / "bgjobs.db"
        self.path = Path(path)
        self.display_url = f"sqlite:///{self.path}"
        self._auto_migrate = migrate
        self._busy_ms = int(busy_timeout.total_seconds() * 1000)
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._wakeup_interval = wakeup_interval.total_seconds()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._checked = False

    # lifecycle ---------------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new connection with bgjobs' pragmas (also used by the wake-up watcher)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._busy_ms / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def open(self) -> tuple[int, int] | None:
        with self._lock:
            if self._checked:
                return None
            if not self._auto_migrate:
                self._check_schema()
                self._checked = True
                return None
            start, end = self.migrate()
            self._checked = True
            return (start, end) if start != end else None

    def _raw_connection(self, *, create: bool = False) -> sqlite3.Connection:
        """The connection, opened without any schema check (migrate and version use it)."""
        with self._lock:
            if self._conn is None:
                if not (create or self._auto_migrate or self.path.exists()):
                    raise SchemaError(
                        f"there is no bgjobs database at {self.path}. Create it with "
                        f"`bgjobs migrate --database {self.display_url}` (or migrate=True)."
                    )
                conn = self.connect()
                sqlite_utils.Database(conn).enable_wal()
                self._conn = conn
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._checked = False
        if self._temp_dir is not None:
            self._temp_dir.cleanup()
            self._temp_dir = None

    def exists(self) -> bool:
        return self.path.exists()

    def monitor(self) -> tuple[SQLiteStore, bool]:
        # Its own connection: WAL readers never block the runtime's writes, and this store's
        # lock would otherwise serialise a slow status query with claims.
        return SQLiteStore(self.path, migrate=False), True

    def _connection(self) -> sqlite3.Connection:
        if not self._checked:
            self.open()
        return self._raw_connection()

    @contextmanager
    def _write(self, *, checked: bool = True) -> Iterator[sqlite3.Cursor]:
        """One IMMEDIATE transaction, serialised within the process by a lock."""
        with self._lock:
            conn = self._connection() if checked else self._raw_connection(create=True)
            deadline = time.monotonic() + _LOCK_RETRY_SECONDS
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
            cursor = conn.cursor()
            try:
                yield cursor
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                cursor.close()

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def schema_version(self) -> int:
        with self._lock:
            conn = self._raw_connection()
            if not sqlite_utils.Database(conn)[schema.VERSION_TABLE].exists():
                return 0
            row = conn.execute(f"SELECT max(version) FROM {schema.VERSION_TABLE}").fetchone()
        return int(row[0] or 0)

    def _too_new(self, version: int) -> SchemaError:
        return SchemaError(
            f"the bgjobs schema in {self.path} is at version {version}, newer than this "
            f"bgjobs understands ({SCHEMA_VERSION}). Upgrade bgjobs on this machine."
        )

    def _check_schema(self) -> None:
        version = self.schema_version()
        if version < SCHEMA_VERSION:
            raise SchemaError(
                f"the bgjobs schema in {self.path} is at version {version}, this bgjobs needs "
                f"{SCHEMA_VERSION}. Run `bgjobs migrate --database {self.display_url}` "
                "(or open the store with migrate=True)."
            )
        if version > SCHEMA_VERSION:
            raise self._too_new(version)

    def migrate(self) -> tuple[int, int]:
        with self._write(checked=False) as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {schema.VERSION_TABLE} "
                "(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            current = cur.execute(f"SELECT max(version) FROM {schema.VERSION_TABLE}").fetchone()
            start = int(current[0] or 0)
            if start > SCHEMA_VERSION:
                raise self._too_new(start)
            for version in range(start + 1, SCHEMA_VERSION + 1):
                for statement in schema.MIGRATIONS[version]:
                    cur.execute(statement)
                cur.execute(
                    f"INSERT INTO {schema.VERSION_TABLE} (version, applied_at) VALUES (?, ?)",
                    (version, _now_us()),
                )
        if start != SCHEMA_VERSION:
            with self._lock:
                self._raw_connection().execute("PRAGMA optimize")  # fresh planner statistics
        return start, SCHEMA_VERSION

    def now(self) -> datetime:
        return datetime.now(UTC)

    # producing ---------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        now_us = _now_us()
        inserted: list[Job] = []
        with self._write() as cur:
            for new in jobs:
                job = self._insert(cur, new, now_us)
                if job is not None:
                    inserted.append(job)
        return inserted

    def _insert(self, cur: sqlite3.Cursor, new: NewJob, now_us: int) -> Job | None:
        available_us = (
            to_us(new.available_at)
            if new.available_at is not None
            else now_us + microseconds(new.delay)
        )
        cur.execute(
            "INSERT INTO bgjobs_jobs (queue, name, payload, priority, max_attempts, available_at,"
            " created_at, scheduled_at, unique_key, schedule) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT DO NOTHING",
            (
                new.queue,
                new.name,
                new.raw_payload,
                new.priority,
                new.max_attempts,
                available_us,
                now_us,
                available_us,
                new.unique_key,
                new.schedule,
            ),
        )
        if cur.rowcount == 0:
            return None
        job_id = cur.lastrowid
        assert job_id is not None
        available_at = from_us(available_us)
        return Job(
            id=job_id,
            queue=new.queue,
            name=new.name,
            raw_payload=new.raw_payload,
            state=JobState.SCHEDULED if available_us > now_us else JobState.AVAILABLE,
            priority=new.priority,
            attempt=0,
            max_attempts=new.max_attempts,
            available_at=available_at,
            created_at=from_us(now_us),
            scheduled_at=available_at,
            unique_key=new.unique_key,
            schedule=new.schedule,
        )

    # consuming ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> list[Job]:
        if request.limit <= 0:
            return []
        now_us = _now_us()
        params = {
            "node": request.node_id,
            "now": now_us,
            "queue": request.queue,
            "lease": now_us + microseconds(request.lease),
            "limit": request.limit,
        }
        if request.blocking:
            # Only the head of the queue (FIFO by scheduled time) may run, and only when no other
            # job of the queue is running anywhere; a failed head keeps blocking until it is done.
            target = (
                "id = (SELECT id FROM bgjobs_jobs WHERE queue = :queue"
                " ORDER BY scheduled_at, id LIMIT 1)"
                " AND reserved_by IS NULL AND available_at <= :now"
                " AND NOT EXISTS (SELECT 1 FROM bgjobs_jobs INDEXED BY bgjobs_jobs_leases"
                " WHERE queue = :queue AND reserved_by IS NOT NULL)"
            )
        else:
            # INDEXED BY: without statistics the planner may pick the due-time index and sort
            # every due row on each claim, which makes a large backlog quadratic.
            target = (
                "id IN (SELECT id FROM bgjobs_jobs INDEXED BY bgjobs_jobs_claim"
                " WHERE queue = :queue AND reserved_by IS NULL"
                " AND available_at <= :now ORDER BY priority, available_at, id LIMIT :limit)"
            )
        with self._write() as cur:
            rows = cur.execute(
                "UPDATE bgjobs_jobs SET reserved_by = :node, reserved_at = :now,"
                " lease_expires_at = :lease, attempt = attempt + 1"
                f" WHERE {target} RETURNING {HOT_COLUMNS}",
                params,
            ).fetchall()
        jobs = [hot_job(row, now_us) for row in rows]
        jobs.sort(key=lambda job: (job.priority, job.available_at, job.id))
        return jobs

    def next_due_at(self, queue: str) -> datetime | None:
        # A loose index scan of the claim index (one seek per distinct priority) instead of a
        # second index on (queue, available_at), which would slow down every insert.
        row = self._read(_NEXT_DUE, {"queue": queue})
        return maybe_from_us(row[0][0])

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        now_us = _now_us()
        results: list[Applied] = [Applied(applied=False)] * len(completions)
        finals = [i for i, c in enumerate(completions) if c.outcome in _FINAL_STATE]
        with self._write() as cur:
            for index, done in enumerate(completions):
                if done.outcome not in _FINAL_STATE:
                    results[index] = self._requeue(cur, done, now_us)
            for start in range(0, len(finals), _BATCH):
                for index, applied in self._finish_batch(
                    cur, [(i, completions[i]) for i in finals[start : start + _BATCH]], now_us
                ):
                    results[index] = applied
        return results

    def _requeue(self, cur: sqlite3.Cursor, done: Completion, now_us: int) -> Applied:
        """RETRY (the attempt counts) or SNOOZED (it does not): back to the queue later."""
        job = done.job
        error = _json_or_none(done.error.to_dict() if done.error else None)
        attempt_sql = "attempt - 1" if done.outcome is Outcome.SNOOZED else "attempt"
        cur.execute(
            "UPDATE bgjobs_jobs SET reserved_by = NULL, reserved_at = NULL,"
            f" lease_expires_at = NULL, attempt = {attempt_sql}, available_at = ?,"
            " errors = CASE WHEN ? IS NULL THEN errors"
            " ELSE json_insert(errors, '$[#]', json(?)) END"
            " WHERE id = ? AND reserved_by = ? AND attempt = ?",
            (now_us + microseconds(done.delay), error, error, job.id, done.node_id, job.attempt),
        )
        return Applied(applied=cur.rowcount == 1)

    def _finish_batch(
        self, cur: sqlite3.Cursor, batch: list[tuple[int, Completion]], now_us: int
    ) -> list[tuple[int, Applied]]:
        """Archive (or delete) a batch of finished jobs with one fenced DELETE."""
        # Keyed by the whole fence: a stale and a current completion of one job may share a batch.
        by_run = {(d.job.id, d.job.attempt, d.node_id): (index, d) for index, d in batch}
        values = ",".join("(?, ?, ?)" for _ in batch)
        params: list[Any] = []
        for _, done in batch:
            params += [done.job.id, done.job.attempt, done.node_id]
        rows = cur.execute(
            f"WITH done(id, attempt, node) AS (VALUES {values})"
            " DELETE FROM bgjobs_jobs WHERE id IN (SELECT j.id FROM done JOIN bgjobs_jobs j"
            " ON j.id = done.id AND j.attempt = done.attempt AND j.reserved_by = done.node)"
            f" RETURNING {HOT_COLUMNS}",
            params,
        ).fetchall()
        archived: list[tuple[Any, ...]] = []
        out: list[tuple[int, Applied]] = []
        for row in rows:
            index, done = by_run[(row[0], row[5], row[10])]
            state = _FINAL_STATE[done.outcome]
            if done.outcome is not Outcome.SUCCEEDED or done.keep:
                errors = row[15] if done.error is None else errors_with(row[15], done.error)
                archived.append(archive_values(row, state, now_us, errors))
            if done.job.schedule is not None:
                cur.execute(
                    "UPDATE bgjobs_schedules SET last_due_at = ?, last_finished_at = ?,"
                    " last_outcome = ? WHERE name = ?",
                    (row[9], now_us, state.value, done.job.schedule),
                )
            next_run = self._insert(cur, done.next_run, now_us) if done.next_run else None
            out.append((index, Applied(applied=True, next_run=next_run)))
        if archived:
            cur.executemany(_ARCHIVE_INSERT, archived)
        return out

    def _archive(
        self, cur: sqlite3.Cursor, row: Any, state: JobState, now_us: int, errors: str
    ) -> None:
        cur.execute(_ARCHIVE_INSERT, archive_values(row, state, now_us, errors))

    def extend_leases(
        self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None = None
    ) -> int:
        expires = _now_us() + microseconds(lease)
        sql = "UPDATE bgjobs_jobs SET lease_expires_at = ? WHERE reserved_by = ?"
        params: list[Any] = [expires, node_id]
        if job_ids is not None:
            if not job_ids:
                return 0
            sql += f" AND id IN ({','.join('?' * len(job_ids))})"
            params += list(job_ids)
        with self._write() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        if not job_ids:
            return []
        now_us = _now_us()
        with self._write() as cur:
            rows = cur.execute(
                "UPDATE bgjobs_jobs SET reserved_by = NULL, reserved_at = NULL,"
                " lease_expires_at = NULL, attempt = max(attempt - 1, 0)"
                f" WHERE reserved_by = ? AND id IN ({','.join('?' * len(job_ids))})"
                f" RETURNING {HOT_COLUMNS}",
                (node_id, *job_ids),
            ).fetchall()
        return [hot_job(row, now_us) for row in rows]

    # nodes and rescue --------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        now_us = _now_us()
        with self._write() as cur:
            cur.execute(
                "INSERT INTO bgjobs_nodes (id, host, pid, started_at, heartbeat_at, queues)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, queues = excluded.queues",
                (
                    node.id,
                    node.host,
                    node.pid,
                    to_us(node.started_at),
                    now_us,
                    json.dumps(list(node.queues)),
                ),
            )

    def remove_node(self, node_id: str) -> None:
        with self._write() as cur:
            cur.execute("DELETE FROM bgjobs_nodes WHERE id = ?", (node_id,))

    def list_nodes(self) -> list[NodeInfo]:
        rows = self._read(
            "SELECT id, host, pid, started_at, heartbeat_at, queues FROM bgjobs_nodes ORDER BY id"
        )
        return [
            NodeInfo(
                id=r[0],
                host=r[1],
                pid=r[2],
                started_at=from_us(r[3]),
                heartbeat_at=from_us(r[4]),
                queues=tuple(json.loads(r[5])),
            )
            for r in rows
        ]

    def rescue(self, node_timeout: timedelta) -> RescueResult:
        now_us = _now_us()
        now = from_us(now_us)
        released: list[Job] = []
        failed: list[Job] = []
        with self._write() as cur:
            rows = cur.execute(
                f"SELECT {HOT_COLUMNS} FROM bgjobs_jobs"
                " WHERE reserved_by IS NOT NULL AND lease_expires_at < ?",
                (now_us,),
            ).fetchall()
            for row in rows:
                job = hot_job(row, now_us)
                errors = errors_with(row[15], rescue_error(job, now))
                if job.attempt >= job.max_attempts:
                    cur.execute("DELETE FROM bgjobs_jobs WHERE id = ?", (job.id,))
                    self._archive(cur, row, JobState.FAILED, now_us, errors)
                    failed.append(job)
                else:
                    cur.execute(
                        "UPDATE bgjobs_jobs SET reserved_by = NULL, reserved_at = NULL,"
                        " lease_expires_at = NULL, available_at = ?, errors = ? WHERE id = ?",
                        (now_us, errors, job.id),
                    )
                    released.append(job)
            cur.execute(
                "DELETE FROM bgjobs_nodes WHERE heartbeat_at < ?",
                (now_us - microseconds(node_timeout),),
            )
        return RescueResult(released=released, failed=failed)

    # scheduled jobs ----------------------------------------------------------------------------
    def register_schedule(self, registration: ScheduleRegistration, queue: str) -> Job | None:
        first = registration.first_run
        assert first.unique_key is not None, "a schedule's run needs its unique key"
        now_us = _now_us()
        with self._write() as cur:
            old = cur.execute(
                "SELECT definition FROM bgjobs_schedules WHERE name = ?", (registration.name,)
            ).fetchone()
            cur.execute(
                "INSERT INTO bgjobs_schedules (name, definition, queue) VALUES (?,?,?)"
                " ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,"
                " queue = excluded.queue",
                (registration.name, registration.definition, queue),
            )
            row = cur.execute(
                f"SELECT {HOT_COLUMNS} FROM bgjobs_jobs WHERE unique_key = ?", (first.unique_key,)
            ).fetchone()
            if row is None:
                return self._insert(cur, first, now_us)
            pending = hot_job(row, now_us)
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
            cur.execute("DELETE FROM bgjobs_jobs WHERE id = ?", (pending.id,))
            return self._insert(cur, replacement, now_us)

    def schedule_states(self) -> list[ScheduleState]:
        rows = self._read(
            "SELECT s.name, s.definition, s.queue, j.available_at, j.reserved_by,"
            " s.last_due_at, s.last_finished_at, s.last_outcome FROM bgjobs_schedules s"
            " LEFT JOIN bgjobs_jobs j ON j.unique_key = ? || s.name ORDER BY s.name",
            (SCHEDULE_KEY_PREFIX,),
        )
        return [
            ScheduleState(
                name=r[0],
                definition=r[1],
                queue=r[2],
                next_run_at=maybe_from_us(r[3]),
                running=r[4] is not None,
                last_due_at=maybe_from_us(r[5]),
                last_finished_at=maybe_from_us(r[6]),
                last_outcome=r[7],
            )
            for r in rows
        ]

    # operating ---------------------------------------------------------------------------------
    def get_job(self, job_id: int) -> Job | None:
        now_us = _now_us()
        rows = self._read(f"SELECT {HOT_COLUMNS} FROM bgjobs_jobs WHERE id = ?", (job_id,))
        if rows:
            return hot_job(rows[0], now_us)
        rows = self._read(f"SELECT {ARCHIVE_COLUMNS} FROM bgjobs_archive WHERE id = ?", (job_id,))
        return archived_job(rows[0]) if rows else None

    def list_jobs(self, where: JobFilter) -> list[Job]:
        now_us = _now_us()
        jobs: list[Job] = []
        state = where.state
        if state is None or not state.is_finished:
            sql, params = _filtered(f"SELECT {HOT_COLUMNS} FROM bgjobs_jobs", where)
            if state is JobState.RUNNING:
                sql += " AND reserved_by IS NOT NULL"
            elif state is JobState.AVAILABLE:
                sql += " AND reserved_by IS NULL AND available_at <= ?"
                params.append(now_us)
            elif state is JobState.SCHEDULED:
                sql += " AND reserved_by IS NULL AND available_at > ?"
                params.append(now_us)
            sql += " ORDER BY id DESC LIMIT ?"
            jobs += [hot_job(r, now_us) for r in self._read(sql, [*params, where.limit])]
        if state is None or state.is_finished:
            sql, params = _filtered(f"SELECT {ARCHIVE_COLUMNS} FROM bgjobs_archive", where)
            if state is not None:
                sql += " AND state = ?"
                params.append(state.value)
            sql += " ORDER BY id DESC LIMIT ?"
            jobs += [archived_job(r) for r in self._read(sql, [*params, where.limit])]
        jobs.sort(key=lambda job: job.id, reverse=True)
        return jobs[: where.limit]

    def queue_stats(self, recent: timedelta) -> list[QueueStats]:
        now_us = _now_us()
        since = now_us - microseconds(recent)
        stats: dict[str, list[int]] = {}
        # Each query below is answered from a (partial) covering index, never the whole table.
        for queue, available, scheduled in self._read(
            "SELECT queue, sum(available_at <= ?), sum(available_at > ?)"
            " FROM bgjobs_jobs INDEXED BY bgjobs_jobs_claim WHERE reserved_by IS NULL"
            " GROUP BY queue",
            (now_us, now_us),
        ):
            stats.setdefault(queue, [0] * 6)[:2] = [available, scheduled]
        for queue, running in self._read(
            "SELECT queue, count(*) FROM bgjobs_jobs INDEXED BY bgjobs_jobs_leases"
            " WHERE reserved_by IS NOT NULL GROUP BY queue"
        ):
            stats.setdefault(queue, [0] * 6)[2] = running
        for queue, count in self._read(
            "SELECT queue, count(*) FROM bgjobs_archive WHERE state IN ('failed', 'discarded')"
            " GROUP BY queue"
        ):
            stats.setdefault(queue, [0] * 6)[3] = count
        for queue, state, count in self._read(
            "SELECT queue, state, count(*) FROM bgjobs_archive INDEXED BY bgjobs_archive_finished"
            " WHERE finished_at >= ?"
            " GROUP BY queue, state",
            (since,),
        ):
            slot = 4 if state == JobState.SUCCEEDED.value else 5
            if state != JobState.CANCELLED.value:
                stats.setdefault(queue, [0] * 6)[slot] += count
        return [QueueStats(queue, *values) for queue, values in sorted(stats.items())]

    def retry_jobs(
        self, job_ids: Sequence[int] = (), *, all_failed: bool = False, name: str | None = None
    ) -> list[int]:
        now_us = _now_us()
        sql = f"SELECT {ARCHIVE_COLUMNS} FROM bgjobs_archive WHERE state IN (?, ?, ?)"
        params: list[Any] = [
            JobState.FAILED.value,
            JobState.DISCARDED.value,
            JobState.CANCELLED.value,
        ]
        if not all_failed:
            if not job_ids:
                return []
            sql += f" AND id IN ({','.join('?' * len(job_ids))})"
            params += list(job_ids)
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        with self._write() as cur:
            rows = cur.execute(sql, params).fetchall()
            for row in rows:
                # A retried scheduled run must not take the schedule's unique key.
                cur.execute(
                    "INSERT INTO bgjobs_jobs (id, queue, name, payload, priority, attempt,"
                    " max_attempts, available_at, created_at, scheduled_at, schedule, errors)"
                    " VALUES (?,?,?,?,?,0,?,?,?,?,?,?)",
                    (
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[6],
                        now_us,
                        row[8],
                        now_us,
                        row[13],
                        row[14],
                    ),
                )
                cur.execute("DELETE FROM bgjobs_archive WHERE id = ?", (row[0],))
        return [row[0] for row in rows]

    def cancel_job(self, job_id: int) -> Job | None:
        now_us = _now_us()
        with self._write() as cur:
            row = cur.execute(
                f"SELECT {HOT_COLUMNS} FROM bgjobs_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                archived = cur.execute(
                    f"SELECT {ARCHIVE_COLUMNS} FROM bgjobs_archive WHERE id = ?", (job_id,)
                ).fetchone()
                return archived_job(archived) if archived else None
            if row[10] is not None:
                raise RuntimeStateError(
                    f"job {job_id} is running on node {row[10]}; it can be cancelled only "
                    "while waiting. Wait for it to finish, or stop that node."
                )
            cur.execute("DELETE FROM bgjobs_jobs WHERE id = ?", (job_id,))
            self._archive(cur, row, JobState.CANCELLED, now_us, row[15])
            archived = cur.execute(
                f"SELECT {ARCHIVE_COLUMNS} FROM bgjobs_archive WHERE id = ?", (job_id,)
            ).fetchone()
        return archived_job(archived)

    def delete_job(self, job_id: int) -> bool:
        with self._write() as cur:
            row = cur.execute(
                "SELECT reserved_by FROM bgjobs_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is not None and row[0] is not None:
                raise RuntimeStateError(
                    f"job {job_id} is running on node {row[0]}; delete it after it finishes."
                )
            cur.execute("DELETE FROM bgjobs_jobs WHERE id = ?", (job_id,))
            deleted = cur.rowcount
            cur.execute("DELETE FROM bgjobs_archive WHERE id = ?", (job_id,))
            return deleted + cur.rowcount > 0

    def prune(self, older_than: timedelta, states: Sequence[JobState]) -> int:
        cutoff = _now_us() - microseconds(older_than)
        wanted = [state.value for state in states if state.is_finished]
        if not wanted:
            return 0
        marks = ",".join("?" * len(wanted))
        total = 0
        while True:  # in slices, so a huge prune never holds the write lock for long
            with self._write() as cur:
                cur.execute(
                    "DELETE FROM bgjobs_archive WHERE id IN (SELECT id FROM bgjobs_archive"
                    f" WHERE finished_at < ? AND state IN ({marks}) LIMIT 5000)",
                    (cutoff, *wanted),
                )
                total += cur.rowcount
                if cur.rowcount < 5000:
                    return total

    # wake-up -----------------------------------------------------------------------------------
    def start_wakeup(self, on_wake: WakeCallback, on_channel: EventCallback) -> Wakeup:
        # While a runtime runs, the watcher checkpoints the WAL in the background, so no job's
        # commit pays for a checkpoint (they cost 10-20 ms and showed up as latency spikes).
        with self._lock:
            self._connection().execute("PRAGMA wal_autocheckpoint = 0")
        return DataVersionWatcher(
            self.connect, on_wake, self._wakeup_interval, on_stop=self._restore_autocheckpoint
        )

    def _restore_autocheckpoint(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.execute("PRAGMA wal_autocheckpoint = 1000")


def _json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _filtered(select: str, where: JobFilter) -> tuple[str, list[Any]]:
    sql = select + " WHERE 1 = 1"
    params: list[Any] = []
    if where.name is not None:
        sql += " AND name = ?"
        params.append(where.name)
    if where.queue is not None:
        sql += " AND queue = ?"
        params.append(where.queue)
    return sql, params
