"""SQLite's statements (``queries``) bound to one cursor: the ``Executor`` of the SQLite store.

The clock is read once per executor, that is once per transaction, so every statement of an
operation sees the same ``now``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bgjobs.adapters.base import (
    SCHEDULE_KEY_PREFIX,
    ClaimRequest,
    Completion,
    JobFilter,
    NodeInfo,
    Outcome,
    ProgressUpdate,
    ScheduleRecord,
    ScheduleState,
    WaitingName,
    run_now_key,
    schedule_key,
    schedule_paused,
)
from bgjobs.adapters.decisions import GateFacts, KeyHold, Rescued, final_state, keeps_record
from bgjobs.adapters.rows import (
    CARRIED_COLUMNS,
    HOT_COLUMNS,
    Row,
    history_values,
    hold_values,
    inserted_job,
    key_row,
    microseconds,
    node_info,
    offers_json,
    picker,
    progress_rows,
    scalar,
    schedule_record,
    schedule_state,
)
from bgjobs.adapters.sqlite import queries as q
from bgjobs.adapters.sqlite.node_locks import LockFiles
from bgjobs.adapters.sqlite.rows import archived, from_us, hot, to_us
from bgjobs.job import Job, JobError, JobState, NewJob

_BATCH = 240  # finished jobs per COMPLETE_FINISH (4 parameters each, under SQLite's old 999)
_fence = picker(HOT_COLUMNS, "id", "attempt", "reserved_by", "rescues")
_carried = picker(HOT_COLUMNS, *CARRIED_COLUMNS)
_errors = picker(HOT_COLUMNS, "errors")


def _claim_order(job: Job) -> tuple[int, datetime, int]:
    return job.priority, job.available_at, job.id


class SQLiteExecutor:
    def __init__(self, cursor: sqlite3.Cursor, now_us: int, locks: LockFiles | None = None) -> None:
        self.cursor = cursor  # for the store's own statements (migrations)
        self._cur = cursor
        self._now_us = now_us
        self._now = from_us(now_us)
        self._locks = locks  # the nodes' liveness lock files (none: no node is provably dead)

    def now(self) -> datetime:
        return self._now

    def lock(self, key: str) -> None:
        """Nothing to do: every write transaction (BEGIN IMMEDIATE) excludes all other writers."""

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return self._cur.execute(sql, params).fetchall()

    def _count(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        return self._cur.execute(sql, params).rowcount

    # producing and consuming -------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        inserted = (self._insert(new) for new in jobs)
        return [job for job in inserted if job is not None]

    def _available_us(self, new: NewJob) -> int:
        if new.available_at is not None:
            return to_us(new.available_at)
        return self._now_us + microseconds(new.delay)

    def _insert(self, new: NewJob) -> Job | None:
        now_us = self._now_us
        # As _available_us, inline: this is the enqueue hot path.
        if new.available_at is not None:
            available_us = to_us(new.available_at)
        else:
            available_us = now_us + microseconds(new.delay)
        cur = self._cur
        cur.execute(
            q.INSERT_ONE,
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
                new.raw_meta,
            ),
        )
        if cur.rowcount == 0:
            return None
        job_id = cur.lastrowid
        assert job_id is not None
        available = self._now if available_us == now_us else from_us(available_us)
        return inserted_job(new, job_id, self._now, available, self._now)

    def insert_unique(self, jobs: Sequence[NewJob]) -> list[Job]:
        inserted: list[Job] = []
        for new in jobs:
            key = new.unique_key
            if (
                key is not None
                and self._count(q.INSERT_UNIQUE, (key, *hold_values(new.unique_hold))) == 0
            ):
                continue  # the key is in the table: the caller reads its holder
            inserted.append(self._insert_keyed(new))
        return inserted

    def take_over_keys(self, moves: Sequence[tuple[NewJob, int]]) -> list[Job]:
        taken: list[Job] = []
        for new, old_id in moves:
            params = (*hold_values(new.unique_hold), new.unique_key, old_id)
            if self._count(q.TAKE_OVER_KEYS, params) == 1:
                taken.append(self._insert_keyed(new))
        return taken

    def _insert_keyed(self, new: NewJob) -> Job:
        job = self._insert(new)
        assert job is not None, "only a duplicate id could skip the insert"
        if new.unique_key is not None:
            self._cur.execute(q.KEY_JOB, (job.id, new.unique_key))
        return job

    def key_holds(self, keys: Sequence[str]) -> list[KeyHold]:
        return self._with_holders(self._rows(q.KEY_HOLDS, (json.dumps(list(keys)),)))

    def key_slice(self, after: str, limit: int) -> list[KeyHold]:
        return self._with_holders(self._rows(q.KEY_SLICE, {"after": after, "limit": limit}))

    def _with_holders(self, key_rows: list[Row]) -> list[KeyHold]:
        keys = [key_row(row) for row in key_rows]
        ids = [job_id for _, job_id, _ in keys]
        holders = {job.id: job for job in self._hot_rows(q.HOLDERS_HOT, {"ids": json.dumps(ids)})}
        finished = [job_id for job_id in ids if job_id not in holders]
        if finished:
            rows = self._rows(q.HOLDERS_ARCHIVED, {"ids": json.dumps(finished)})
            holders.update((job.id, job) for job in map(archived, rows))
        return [KeyHold(key, job_id, hold, holders.get(job_id)) for key, job_id, hold in keys]

    def _hot_rows(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[Job]:
        return [hot(row, self._now) for row in self._rows(sql, params)]

    def delete_keys(self, keys: Sequence[KeyHold]) -> int:
        self._cur.executemany(q.DELETE_KEYS, [(k.key, k.job_id) for k in keys])
        return self._cur.rowcount

    def replace_waiting(self, replacements: Sequence[tuple[int, NewJob]]) -> list[Job]:
        changed: list[Job] = []
        for job_id, new in replacements:
            params = {
                "id": job_id,
                "set_payload": "payload" in new.replace,
                "payload": new.raw_payload,
                "set_priority": "priority" in new.replace,
                "priority": new.priority,
                "set_at": "run_at" in new.replace,
                "at": self._available_us(new),
            }
            changed += self._hot_rows(q.REPLACE_WAITING, params)
        return changed

    def claim(self, request: ClaimRequest) -> list[Job]:
        return self._reserve(q.CLAIM, request)

    def claim_blocking(self, request: ClaimRequest) -> list[Job]:
        return self._reserve(q.CLAIM_BLOCKING, request, {"suspects": request.suspects})

    def claim_suspect(self, request: ClaimRequest) -> list[Job]:
        return self._reserve(q.CLAIM_SUSPECT, request, {})

    def _reserve(
        self, sql: str, request: ClaimRequest, extra: dict[str, Any] | None = None
    ) -> list[Job]:
        now_us, now = self._now_us, self._now
        params = {
            "node": request.node_id,
            "now": now_us,
            "queue": request.queue,
            "lease": now_us + microseconds(request.lease),
            "limit": request.limit,
            "names": _names(request.names),
            **(extra or {}),
        }
        jobs = [hot(row, now) for row in self._rows(sql, params)]
        jobs.sort(key=_claim_order)
        return jobs

    def next_due(self, queue: str, names: Sequence[str] | None) -> datetime | None:
        params = {"queue": queue, "names": _names(names)}
        due = scalar(self._cur.execute(q.NEXT_DUE, params).fetchone())
        return None if due is None else from_us(due)

    def complete(self, completions: Sequence[Completion]) -> list[bool]:
        applied = [False] * len(completions)
        finishing: list[tuple[int, Completion, JobState]] = []
        for index, done in enumerate(completions):
            state = final_state(done.outcome)
            if state is None:
                applied[index] = self._requeue(done)
            else:
                finishing.append((index, done, state))
        for start in range(0, len(finishing), _BATCH):
            for index in self._finish(finishing[start : start + _BATCH]):
                applied[index] = True
        return applied

    def _requeue(self, done: Completion) -> bool:
        job = done.job
        params = {
            "refund": 1 if done.outcome is Outcome.SNOOZED else 0,
            "available_at": self._now_us + microseconds(done.delay),
            "error": None if done.error is None else _error_json(done.error),
            "id": job.id,
            "node": done.node_id,
            "attempt": job.attempt,
            "rescues": job.rescues,
        }
        return self._count(q.COMPLETE_REQUEUE, params) == 1

    def _finish(self, batch: list[tuple[int, Completion, JobState]]) -> list[int]:
        """Archive (or delete) a batch of finished jobs; the indexes of those whose fence held."""
        by_fence = {
            (d.job.id, d.job.attempt, d.node_id, d.job.rescues): (i, d, s) for i, d, s in batch
        }
        params: list[Any] = []
        for _, done, _ in batch:
            params += [done.job.id, done.job.attempt, done.node_id, done.job.rescues]
        archive: list[tuple[Any, ...]] = []
        applied: list[int] = []
        for row in self._rows(q.complete_finish(len(batch)), params):
            index, done, state = by_fence[_fence(row)]
            applied.append(index)
            if keeps_record(done):
                errors = _errors(row)
                if done.error is not None:
                    errors = _errors_with(errors, done.error)
                archive.append((*_carried(row), errors, state.value, self._now_us))
        if archive:
            self._cur.executemany(q.ARCHIVE_INSERT, archive)
        return applied

    def schedule_finished(
        self,
        name: str,
        due_at: datetime,
        outcome: JobState,
        *,
        started_at: datetime | None = None,
        job_id: int | None = None,
    ) -> None:
        params = {
            "due_at": to_us(due_at),
            "now": self._now_us,
            "outcome": outcome.value,
            "started_at": None if started_at is None else to_us(started_at),
            "job_id": job_id,
            "name": name,
        }
        self._cur.execute(q.SCHEDULE_FINISHED, params)

    def extend_leases(self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None) -> int:
        params = {"lease": self._now_us + microseconds(lease), "node": node_id}
        if job_ids is None:
            return self._count(q.EXTEND_ALL, params)
        return self._count(q.EXTEND_SOME, {**params, "ids": json.dumps(list(job_ids))})

    def set_progress(self, updates: Sequence[ProgressUpdate]) -> list[int]:
        rows = self._rows(q.SET_PROGRESS, {"rows": progress_rows(updates)})
        return [scalar(row) for row in rows]

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        rows = self._rows(q.RELEASE, {"node": node_id, "ids": json.dumps(list(job_ids))})
        return [hot(row, self._now) for row in rows]

    # nodes and rescue --------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        self._cur.execute(
            q.HEARTBEAT,
            (
                node.id,
                node.host,
                node.pid,
                to_us(node.started_at),
                self._now_us,
                json.dumps(list(node.queues)),
                offers_json(node),
                node.lock_key,
            ),
        )

    def remove_node(self, node_id: str) -> None:
        self._cur.execute(q.REMOVE_NODE, (node_id,))

    def list_nodes(self) -> list[NodeInfo]:
        # Queue names are a JSON array: SQLite has no array type.
        return [node_info(row, from_us, json.loads, json.loads) for row in self._rows(q.LIST_NODES)]

    def expired(self) -> list[Job]:
        return [hot(row, self._now) for row in self._rows(q.EXPIRED, {"now": self._now_us})]

    def rescue_release(self, rescued: Sequence[Rescued]) -> None:
        self._cur.execute(q.RESCUE_RELEASE, {"now": self._now_us, "rows": _rescued(rescued)})

    def rescue_fail(self, rescued: Sequence[Rescued]) -> None:
        params = {"now": self._now_us, "rows": _rescued(rescued)}
        self._cur.execute(q.RESCUE_FAIL, params)
        self._cur.execute(q.DELETE_RESCUED, params)

    def forget_nodes(self, silent_for: timedelta) -> None:
        self._cur.execute(q.FORGET_NODES, {"before": self._now_us - microseconds(silent_for)})

    def waiting_names(self) -> list[WaitingName]:
        rows = self._rows(q.WAITING_NAMES, {"now": self._now_us})
        return [WaitingName(queue, name, n, from_us(since)) for queue, name, n, since in rows]

    def discard_waiting(self, queue: str, name: str, error: JobError) -> list[Job]:
        params = {"queue": queue, "name": name, "error": _error_json(error), "now": self._now_us}
        jobs = [archived(row) for row in self._rows(q.DISCARD_WAITING, params)]
        if jobs:
            self._cur.execute(q.DELETE_DISCARDED, {"ids": json.dumps([job.id for job in jobs])})
        return jobs

    def free_nodes(self, exclude: str) -> list[str]:
        registered = self._rows(q.FREE_NODES, (exclude,))
        if self._locks is None:
            return []
        self._locks.sweep({key for _, key in registered})
        return [node for node, key in registered if self._locks.is_free(key)]

    def dead_nodes(self, node_ids: Sequence[str]) -> list[str]:
        # Inside the write transaction, so no other rescuer probes these files meanwhile: the
        # file of a node found dead is deleted at once, and the node is rescued exactly once.
        if self._locks is None:
            return []
        registered = self._rows(q.DEAD_NODES, {"ids": json.dumps(list(node_ids))})
        return [node for node, key in registered if self._locks.is_free(key, remove=True)]

    def jobs_of_nodes(self, node_ids: Sequence[str]) -> list[Job]:
        rows = self._rows(q.JOBS_OF_NODES, {"ids": json.dumps(list(node_ids))})
        return [hot(row, self._now) for row in rows]

    def remove_nodes(self, node_ids: Sequence[str]) -> None:
        self._cur.execute(q.REMOVE_NODES, {"ids": json.dumps(list(node_ids))})

    def suspect_queues(
        self, queues: Sequence[str], blocking: Sequence[str]
    ) -> set[tuple[str, str]]:
        params = {
            "queues": json.dumps(list(queues)),
            "blocking": json.dumps(list(blocking)),
            "now": self._now_us,
        }
        return {(queue, name) for queue, name in self._rows(q.SUSPECT_QUEUES, params)}

    # scheduled jobs ----------------------------------------------------------------------------
    def by_unique_key(self, unique_key: str) -> Job | None:
        row = self._cur.execute(q.BY_UNIQUE_KEY, (unique_key,)).fetchone()
        return None if row is None else hot(row, self._now)

    def schedule_upsert(self, name: str, definition: str, queue: str, max_attempts: int) -> None:
        self._cur.execute(q.SCHEDULE_UPSERT, (name, definition, queue, max_attempts))

    def schedule_states(self) -> list[ScheduleState]:
        rows = self._rows(q.SCHEDULE_STATES, {"prefix": SCHEDULE_KEY_PREFIX})
        return [schedule_state(row, from_us) for row in rows]

    def schedule_state(self, name: str) -> ScheduleState | None:
        row = self._cur.execute(
            q.SCHEDULE_STATE, {"prefix": SCHEDULE_KEY_PREFIX, "name": name}
        ).fetchone()
        return None if row is None else schedule_state(row, from_us)

    def schedule_record(self, records: Sequence[ScheduleRecord]) -> None:
        values = [{**history_values(r, to_us), "now": self._now_us} for r in records]
        self._cur.executemany(q.SCHEDULE_RECORD, values)

    def schedule_history(self, name: str, limit: int) -> list[ScheduleRecord]:
        rows = self._rows(q.SCHEDULE_HISTORY, {"name": name, "limit": limit})
        return [schedule_record(row, from_us) for row in rows]

    def schedule_gate(self, name: str, job_id: int) -> GateFacts | None:
        row = self._cur.execute(q.SCHEDULE_GATE, {"name": name, "job_id": job_id}).fetchone()
        if row is None:
            return None
        paused_at, until, busy = row
        paused = schedule_paused(
            None if paused_at is None else from_us(paused_at),
            None if until is None else from_us(until),
            self._now,
        )
        return GateFacts(paused, bool(busy))

    def schedule_start(self, name: str, job_id: int, *, regular: bool) -> bool:
        params = {"name": name, "job_id": job_id, "regular": regular, "now": self._now_us}
        return self._count(q.SCHEDULE_START, params) == 1

    def schedule_pause(self, name: str, paused_at: datetime, until: datetime | None) -> None:
        params = {
            "name": name,
            "paused_at": to_us(paused_at),
            "until": None if until is None else to_us(until),
        }
        self._cur.execute(q.SCHEDULE_PAUSE, params)

    def schedule_resume(self, name: str) -> None:
        self._cur.execute(q.SCHEDULE_RESUME, {"name": name})

    def schedule_wake(self, name: str) -> None:
        params = {"now": self._now_us, "regular": schedule_key(name), "run_now": run_now_key(name)}
        self._cur.execute(q.SCHEDULE_WAKE, params)

    def schedule_publish(self, node_id: str, names: Sequence[str]) -> None:
        params = {"node": node_id, "now": self._now_us, "names": json.dumps(list(names))}
        self._cur.execute(q.SCHEDULE_PUBLISH, params)

    def schedule_unpublish(self, node_id: str) -> None:
        self._cur.execute(q.SCHEDULE_UNPUBLISH, {"node": node_id, "now": self._now_us})

    def schedule_defined(self, name: str, alive_for: timedelta) -> bool:
        since = self._now_us - microseconds(alive_for)
        row = self._cur.execute(q.SCHEDULE_DEFINED, {"name": name, "since": since}).fetchone()
        return bool(scalar(row))

    def schedule_forget_published(self, alive_for: timedelta) -> None:
        since = self._now_us - microseconds(alive_for)
        self._cur.execute(q.SCHEDULE_FORGET_PUBLISHED, {"since": since})

    def schedule_remove_runs(self, name: str) -> list[Job]:
        params = {"regular": schedule_key(name), "run_now": run_now_key(name)}
        return [hot(row, self._now) for row in self._rows(q.SCHEDULE_REMOVE_RUNS, params)]

    def schedule_removed(self, name: str) -> None:
        self._cur.execute(q.SCHEDULE_REMOVED, {"name": name, "now": self._now_us})

    # operating ---------------------------------------------------------------------------------
    def get_hot(self, job_id: int, *, for_update: bool = False) -> Job | None:
        # for_update needs nothing here: the write transaction holds the whole database.
        row = self._cur.execute(q.GET_HOT, (job_id,)).fetchone()
        return None if row is None else hot(row, self._now)

    def get_archived(self, job_id: int) -> Job | None:
        row = self._cur.execute(q.GET_ARCHIVED, (job_id,)).fetchone()
        return None if row is None else archived(row)

    def list_hot(self, where: JobFilter) -> list[Job]:
        params = {
            "name": where.name,
            "queue": where.queue,
            "now": self._now_us,
            "limit": where.limit,
        }
        sql = q.list_running(where) if where.state is JobState.RUNNING else q.list_hot(where)
        return [hot(row, self._now) for row in self._rows(sql, params)]

    def list_archived(self, where: JobFilter) -> list[Job]:
        params = {
            "name": where.name,
            "queue": where.queue,
            "state": None if where.state is None else where.state.value,
            "limit": where.limit,
        }
        return [archived(row) for row in self._rows(q.list_archived(where), params)]

    def stats_waiting(self) -> list[tuple[str, int, int]]:
        return self._rows(q.STATS_WAITING, {"now": self._now_us})

    def stats_running(self) -> list[tuple[str, str, int]]:
        return self._rows(q.STATS_RUNNING)

    def stats_failed(self) -> list[tuple[str, int]]:
        return self._rows(q.STATS_FAILED)

    def stats_recent(self, window: timedelta) -> list[tuple[str, str, int]]:
        return self._rows(q.STATS_RECENT, {"since": self._now_us - microseconds(window)})

    def retry(self, job_ids: Sequence[int] | None, name: str | None) -> list[int]:
        params = {
            "now": self._now_us,
            "ids": None if job_ids is None else json.dumps(list(job_ids)),
            "name": name,
        }
        sql = q.retry(by_ids=job_ids is not None, by_name=name is not None)
        moved = sorted(scalar(row) for row in self._rows(sql, params))
        if moved:
            self._cur.execute(q.DELETE_RETRIED, {"ids": json.dumps(moved)})
        return moved

    def cancel(self, job_id: int) -> Job:
        (row,) = self._rows(q.CANCEL, {"now": self._now_us, "id": job_id})
        self._cur.execute(q.DELETE_HOT, (job_id,))
        return archived(row)

    def request_cancel(self, job_id: int) -> Job | None:
        flagged = self._hot_rows(q.REQUEST_CANCEL, {"now": self._now_us, "id": job_id})
        return flagged[0] if flagged else None

    def cancel_requested(self, node_id: str) -> list[int]:
        return [scalar(row) for row in self._rows(q.CANCEL_REQUESTED, (node_id,))]

    def delete_hot(self, job_id: int) -> int:
        return self._count(q.DELETE_HOT, (job_id,))

    def delete_archived(self, job_id: int) -> int:
        return self._count(q.DELETE_ARCHIVED, (job_id,))

    def prune_slice(self, cutoff: datetime, states: Sequence[str], limit: int) -> int:
        params = {"cutoff": to_us(cutoff), "states": json.dumps(list(states)), "limit": limit}
        return self._count(q.PRUNE_SLICE, params)

    def prune_history_slice(self, cutoff: datetime, results: Sequence[str], limit: int) -> int:
        params = {"cutoff": to_us(cutoff), "results": json.dumps(list(results)), "limit": limit}
        return self._count(q.PRUNE_HISTORY_SLICE, params)


def _names(names: Sequence[str] | None) -> str | None:
    return None if names is None else json.dumps(list(names))


def _error_json(error: JobError) -> str:
    return json.dumps(error.to_dict())


def _errors_with(history: str, error: JobError) -> str:
    """A stored error history (JSON array text) with ``error`` appended. A history that is not
    a JSON array (another tool wrote it) starts afresh: it must not block the job's outcome."""
    try:
        items = json.loads(history or "[]")
    except ValueError:
        items = None
    if not isinstance(items, list):
        items = []
    items.append(error.to_dict())
    return json.dumps(items)


def _rescued(rescued: Sequence[Rescued]) -> str:
    return json.dumps(
        [
            {"id": r.job.id, "error": r.error.to_dict(), "refund": 0 if r.charged else 1}
            for r in rescued
        ]
    )
