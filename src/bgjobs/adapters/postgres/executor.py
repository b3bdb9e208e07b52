"""Postgres's statements (``queries``, rendered for one schema) bound to one connection: the
``Executor`` of the Postgres store.

Times come from the database clock (``now()``), except values the caller gives explicitly
(``NewJob.available_at``, ``NodeInfo.started_at``). Statements that wake other nodes carry
``pg_notify`` themselves, so the wake-up fires when (if) they commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection

from bgjobs.adapters.base import (
    SCHEDULE_KEY_PREFIX,
    ClaimRequest,
    Completion,
    JobFilter,
    NodeInfo,
    ScheduleState,
)
from bgjobs.adapters.decisions import Rescued, keeps_record
from bgjobs.adapters.postgres.queries import Queries
from bgjobs.adapters.postgres.rows import (
    INSERTED_COLUMNS,
    archived,
    batch_json,
    hot,
    maybe_utc,
    utc,
)
from bgjobs.adapters.postgres.schema import lock_key
from bgjobs.adapters.rows import (
    Row,
    inserted_job,
    node_info,
    picker,
    scalar,
    schedule_state,
)
from bgjobs.adapters.rows import microseconds as us
from bgjobs.job import Job, JobState, NewJob

_inserted = picker(INSERTED_COLUMNS, "id", "created_at", "available_at", "now")


class PostgresExecutor:
    def __init__(self, conn: Connection[Any], queries: Queries, channel: str, schema: str) -> None:
        self._conn = conn
        self._q = queries
        self._channel = channel
        self._schema = schema

    def now(self) -> datetime:
        return utc(scalar(self._conn.execute(self._q.now).fetchone()))

    def lock(self, key: str) -> None:
        self._conn.execute(self._q.lock, (lock_key(self._schema, key),))

    def _rows(self, query: bytes, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return self._conn.cursor(binary=True).execute(query, params).fetchall()

    def _one(self, query: bytes, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        return self._conn.execute(query, params).fetchone()

    def _count(self, query: bytes, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        return self._conn.execute(query, params).rowcount

    # producing and consuming -------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        if len(jobs) == 1:  # the common enqueue: one narrow row back
            return self._insert_one(jobs[0])
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
        rows = self._rows(self._q.insert_many, {"jobs": batch, "channel": self._channel})
        return [hot(row) for row in rows]

    def _insert_one(self, new: NewJob) -> list[Job]:
        cur = self._conn.cursor(binary=True)
        if _due_now_plain(new):
            params: Sequence[Any] | dict[str, Any] = (
                new.queue,
                new.name,
                new.raw_payload,
                new.priority,
                new.max_attempts,
                self._channel,
            )
            row = cur.execute(self._q.insert_now, params).fetchone()
        else:
            params = {
                "queue": new.queue,
                "name": new.name,
                "payload": new.raw_payload,
                "priority": new.priority,
                "max_attempts": new.max_attempts,
                "available_at": new.available_at,
                "delay_us": us(new.delay),
                "unique_key": new.unique_key,
                "schedule": new.schedule,
                "channel": self._channel,
            }
            row = cur.execute(self._q.insert_one, params).fetchone()
        if row is None:  # the unique key is taken
            return []
        job_id, created_at, available_at, now = _inserted(row)
        return [inserted_job(new, job_id, utc(created_at), utc(available_at), now)]

    def claim(self, request: ClaimRequest) -> list[Job]:
        return [hot(row) for row in self._rows(self._q.claim, _claim_params(request))]

    def claim_blocking(self, request: ClaimRequest) -> list[Job]:
        params = {**_claim_params(request), "suspects": request.suspects}
        return [hot(row) for row in self._rows(self._q.claim_blocking, params)]

    def claim_suspect(self, request: ClaimRequest) -> list[Job]:
        return [hot(row) for row in self._rows(self._q.claim_suspect, _claim_params(request))]

    def suspect_queues(self, queues: Sequence[str], blocking: Sequence[str]) -> set[str]:
        params = {"queues": list(queues), "blocking": list(blocking)}
        return {scalar(row) for row in self._conn.execute(self._q.suspect_queues, params)}

    def next_due(self, queue: str) -> datetime | None:
        return maybe_utc(scalar(self._one(self._q.next_due, {"queue": queue})))

    def complete(self, completions: Sequence[Completion]) -> list[bool]:
        groups = _unique_runs(completions)
        if len(groups) == 1:
            return self._complete_group(groups[0])  # one statement, one round trip
        applied: list[bool] = []
        with self._conn.transaction():
            for group in groups:
                applied += self._complete_group(group)
        return applied

    def _complete_group(self, group: list[Completion]) -> list[bool]:
        batch = batch_json(
            [
                {
                    "id": c.job.id,
                    "node": c.node_id,
                    "attempt": c.job.attempt,
                    "rescues": c.job.rescues,
                    "kind": c.outcome.value,
                    "keep": keeps_record(c),
                    "error": None if c.error is None else c.error.to_dict(),
                    "delay_us": us(c.delay),
                }
                for c in group
            ]
        )
        done = {scalar(row) for row in self._rows(self._q.complete, (batch,))}
        return [c.job.id in done for c in group]

    def schedule_finished(self, name: str, due_at: datetime, outcome: JobState) -> None:
        self._conn.execute(self._q.schedule_finished, (due_at, outcome.value, name))

    def extend_leases(self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None) -> int:
        if job_ids is None:
            return self._count(self._q.extend_all, (us(lease), node_id))
        return self._count(self._q.extend_some, (us(lease), node_id, list(job_ids)))

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        params = {"node": node_id, "ids": list(job_ids), "channel": self._channel}
        return [hot(row) for row in self._conn.execute(self._q.release, params).fetchall()]

    # nodes and rescue --------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        self._conn.execute(
            self._q.heartbeat,
            (node.id, node.host, node.pid, node.started_at, list(node.queues), node.lock_key),
        )

    def remove_node(self, node_id: str) -> None:
        self._conn.execute(self._q.remove_node, (node_id,))

    def list_nodes(self) -> list[NodeInfo]:
        rows = self._conn.execute(self._q.list_nodes).fetchall()
        return [node_info(row, utc, tuple) for row in rows]

    def expired(self) -> list[Job]:
        return [hot(row) for row in self._conn.execute(self._q.expired).fetchall()]

    def rescue_release(self, rescued: Sequence[Rescued]) -> None:
        params = {"rows": _rescued(rescued), "channel": self._channel}
        self._conn.execute(self._q.rescue_release, params)

    def rescue_fail(self, rescued: Sequence[Rescued]) -> None:
        self._conn.execute(self._q.rescue_fail, {"rows": _rescued(rescued)})

    def forget_nodes(self, silent_for: timedelta) -> None:
        self._conn.execute(self._q.forget_nodes, (us(silent_for),))

    def free_nodes(self, exclude: str) -> list[str]:
        return [scalar(row) for row in self._conn.execute(self._q.free_nodes, (exclude,))]

    def dead_nodes(self, node_ids: Sequence[str]) -> list[str]:
        rows = self._conn.execute(self._q.dead_nodes, (list(node_ids),))
        return [scalar(row) for row in rows]

    def jobs_of_nodes(self, node_ids: Sequence[str]) -> list[Job]:
        rows = self._conn.execute(self._q.jobs_of_nodes, (list(node_ids),)).fetchall()
        return [hot(row) for row in rows]

    def remove_nodes(self, node_ids: Sequence[str]) -> None:
        self._conn.execute(self._q.remove_nodes, (list(node_ids),))

    # scheduled jobs ----------------------------------------------------------------------------
    def by_unique_key(self, unique_key: str) -> Job | None:
        row = self._one(self._q.by_unique_key, (unique_key,))
        return None if row is None else hot(row)

    def schedule_definition(self, name: str) -> str | None:
        definition: str | None = scalar(self._one(self._q.schedule_definition, (name,)))
        return definition

    def schedule_upsert(self, name: str, definition: str, queue: str) -> None:
        self._conn.execute(self._q.schedule_upsert, (name, definition, queue))

    def schedule_states(self) -> list[ScheduleState]:
        rows = self._conn.execute(self._q.schedule_states, (SCHEDULE_KEY_PREFIX,)).fetchall()
        return [schedule_state(row, utc) for row in rows]

    # operating ---------------------------------------------------------------------------------
    def get_hot(self, job_id: int, *, for_update: bool = False) -> Job | None:
        query = self._q.get_hot_for_update if for_update else self._q.get_hot
        row = self._one(query, (job_id,))
        return None if row is None else hot(row)

    def get_archived(self, job_id: int) -> Job | None:
        row = self._one(self._q.get_archived, (job_id,))
        return None if row is None else archived(row)

    def list_hot(self, where: JobFilter) -> list[Job]:
        rows = self._conn.execute(self._q.list_hot, _filter_params(where)).fetchall()
        return [hot(row) for row in rows]

    def list_archived(self, where: JobFilter) -> list[Job]:
        rows = self._conn.execute(self._q.list_archived, _filter_params(where)).fetchall()
        return [archived(row) for row in rows]

    def stats_waiting(self) -> list[tuple[str, int, int]]:
        return self._conn.execute(self._q.stats_waiting).fetchall()

    def stats_running(self) -> list[tuple[str, int]]:
        return self._conn.execute(self._q.stats_running).fetchall()

    def stats_failed(self) -> list[tuple[str, int]]:
        return self._conn.execute(self._q.stats_failed).fetchall()

    def stats_recent(self, window: timedelta) -> list[tuple[str, str, int]]:
        return self._conn.execute(self._q.stats_recent, (us(window),)).fetchall()

    def retry(self, job_ids: Sequence[int] | None, name: str | None) -> list[int]:
        params = {
            "all": job_ids is None,
            "ids": list(job_ids or ()),
            "name": name,
            "channel": self._channel,
        }
        rows = self._conn.execute(self._q.retry, params).fetchall()
        return [job_id for job_id, _notified in rows]

    def cancel(self, job_id: int) -> Job:
        row = self._one(self._q.cancel, (job_id,))
        assert row is not None, "cancel() is called for a locked waiting job"
        return archived(row)

    def delete_hot(self, job_id: int) -> int:
        return self._count(self._q.delete_hot, (job_id,))

    def delete_archived(self, job_id: int) -> int:
        return self._count(self._q.delete_archived, (job_id,))

    def prune_slice(self, cutoff: datetime, states: Sequence[str], limit: int) -> int:
        return self._count(self._q.prune_slice, (list(states), cutoff, limit))


def _claim_params(request: ClaimRequest) -> dict[str, Any]:
    return {
        "node": request.node_id,
        "lease_us": us(request.lease),
        "queue": request.queue,
        "limit": request.limit,
    }


def _filter_params(where: JobFilter) -> dict[str, Any]:
    return {
        "name": where.name,
        "queue": where.queue,
        "limit": where.limit,
        "state": None if where.state is None else where.state.value,
    }


def _rescued(rescued: Sequence[Rescued]) -> str:
    return batch_json(
        [
            {"id": r.job.id, "error": r.error.to_dict(), "refund": 0 if r.charged else 1}
            for r in rescued
        ]
    )


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
