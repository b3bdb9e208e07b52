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
    ProgressUpdate,
    ScheduleRecord,
    ScheduleState,
    WaitingName,
    run_now_key,
    schedule_key,
    schedule_paused,
)
from bgjobs.adapters.decisions import GateFacts, KeyHold, Rescued, keeps_record
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
    history_values,
    hold_values,
    inserted_job,
    key_row,
    node_info,
    offers_json,
    picker,
    progress_rows,
    scalar,
    schedule_record,
    schedule_state,
)
from bgjobs.adapters.rows import microseconds as us
from bgjobs.job import Job, JobError, JobState, NewJob

_inserted = picker(INSERTED_COLUMNS, "id", "created_at", "available_at", "now")


class PostgresExecutor:
    def __init__(
        self,
        conn: Connection[Any],
        queries: Queries,
        channel: str,
        schema: str,
        cancel_channel: str,
    ) -> None:
        self._conn = conn
        self._q = queries
        self._channel = channel
        self._schema = schema
        self._cancel_channel = cancel_channel

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
        batch = batch_json([_new_job(j) for j in jobs])
        rows = self._rows(self._q.insert_many, {"jobs": batch, "channel": self._channel})
        return [hot(row) for row in rows]

    def insert_unique(self, jobs: Sequence[NewJob]) -> list[Job]:
        return self._new_jobs(self._q.insert_unique, [(job, None) for job in jobs])

    def take_over_keys(self, moves: Sequence[tuple[NewJob, int]]) -> list[Job]:
        return self._new_jobs(self._q.take_over_keys, moves)

    def _new_jobs(self, query: bytes, jobs: Sequence[tuple[NewJob, int | None]]) -> list[Job]:
        batch = []
        for job, old_id in jobs:
            while_running, keep_states, period_us = hold_values(job.unique_hold)
            batch.append(
                {
                    **_new_job(job),
                    "while_running": while_running,
                    "keep_states": keep_states,
                    "period_us": period_us,
                    "old_job_id": old_id,
                }
            )
        rows = self._rows(query, {"jobs": batch_json(batch), "channel": self._channel})
        return [hot(row) for row in rows]

    def key_holds(self, keys: Sequence[str]) -> list[KeyHold]:
        return self._with_holders(self._rows(self._q.key_holds, (list(keys),)))

    def key_slice(self, after: str, limit: int) -> list[KeyHold]:
        return self._with_holders(self._rows(self._q.key_slice, (after, limit)))

    def _with_holders(self, key_rows: list[Row]) -> list[KeyHold]:
        keys = [key_row(row) for row in key_rows]
        if not keys:
            return []
        ids = [job_id for _, job_id, _ in keys]
        holders = {job.id: job for job in map(hot, self._rows(self._q.holders_hot, (ids,)))}
        finished = [job_id for job_id in ids if job_id not in holders]
        if finished:
            rows = self._rows(self._q.holders_archived, (finished,))
            holders.update((job.id, job) for job in map(archived, rows))
        return [KeyHold(key, job_id, hold, holders.get(job_id)) for key, job_id, hold in keys]

    def delete_keys(self, keys: Sequence[KeyHold]) -> int:
        batch = batch_json([{"key": k.key, "job_id": k.job_id} for k in keys])
        return self._count(self._q.delete_keys, (batch,))

    def replace_waiting(self, replacements: Sequence[tuple[int, NewJob]]) -> list[Job]:
        batch = batch_json(
            [
                {
                    "id": job_id,
                    "payload": new.raw_payload,
                    "priority": new.priority,
                    "available_at": new.available_at.isoformat() if new.available_at else None,
                    "delay_us": us(new.delay),
                    "set_payload": "payload" in new.replace,
                    "set_priority": "priority" in new.replace,
                    "set_at": "run_at" in new.replace,
                }
                for job_id, new in replacements
            ]
        )
        rows = self._rows(self._q.replace_waiting, {"rows": batch, "channel": self._channel})
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
                "meta": new.raw_meta,
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

    def suspect_queues(
        self, queues: Sequence[str], blocking: Sequence[str]
    ) -> set[tuple[str, str]]:
        params = {"queues": list(queues), "blocking": list(blocking)}
        return {(queue, name) for queue, name in self._conn.execute(self._q.suspect_queues, params)}

    def next_due(self, queue: str, names: Sequence[str] | None) -> datetime | None:
        params = {"queue": queue, "names": _names(names)}
        return maybe_utc(scalar(self._one(self._q.next_due, params)))

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
            "due_at": due_at,
            "outcome": outcome.value,
            "started_at": started_at,
            "job_id": job_id,
            "name": name,
        }
        self._conn.execute(self._q.schedule_finished, params)

    def extend_leases(self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None) -> int:
        if job_ids is None:
            return self._count(self._q.extend_all, (us(lease), node_id))
        return self._count(self._q.extend_some, (us(lease), node_id, list(job_ids)))

    def set_progress(self, updates: Sequence[ProgressUpdate]) -> list[int]:
        rows = self._conn.execute(self._q.set_progress, (progress_rows(updates),)).fetchall()
        return [scalar(row) for row in rows]

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        params = {"node": node_id, "ids": list(job_ids), "channel": self._channel}
        return [hot(row) for row in self._conn.execute(self._q.release, params).fetchall()]

    # nodes and rescue --------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        offers = offers_json(node)
        params = (
            node.id,
            node.host,
            node.pid,
            node.started_at,
            list(node.queues),
            offers,
            node.lock_key,
        )
        self._conn.execute(self._q.heartbeat, params)

    def remove_node(self, node_id: str) -> None:
        self._conn.execute(self._q.remove_node, (node_id,))

    def list_nodes(self) -> list[NodeInfo]:
        rows = self._conn.execute(self._q.list_nodes).fetchall()
        return [node_info(row, utc, tuple, _as_is) for row in rows]

    def expired(self) -> list[Job]:
        return [hot(row) for row in self._conn.execute(self._q.expired).fetchall()]

    def rescue_release(self, rescued: Sequence[Rescued]) -> None:
        params = {"rows": _rescued(rescued), "channel": self._channel}
        self._conn.execute(self._q.rescue_release, params)

    def rescue_fail(self, rescued: Sequence[Rescued]) -> None:
        self._conn.execute(self._q.rescue_fail, {"rows": _rescued(rescued)})

    def forget_nodes(self, silent_for: timedelta) -> None:
        self._conn.execute(self._q.forget_nodes, (us(silent_for),))

    def waiting_names(self) -> list[WaitingName]:
        rows = self._conn.execute(self._q.waiting_names).fetchall()
        return [WaitingName(queue, name, count, utc(since)) for queue, name, count, since in rows]

    def discard_waiting(self, queue: str, name: str, error: JobError) -> list[Job]:
        params = {"queue": queue, "name": name, "error": batch_json([error.to_dict()])}
        return [archived(row) for row in self._conn.execute(self._q.discard_waiting, params)]

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

    def schedule_upsert(self, name: str, definition: str, queue: str, max_attempts: int) -> None:
        self._conn.execute(self._q.schedule_upsert, (name, definition, queue, max_attempts))

    def schedule_states(self) -> list[ScheduleState]:
        params = {"prefix": SCHEDULE_KEY_PREFIX}
        rows = self._conn.execute(self._q.schedule_states, params).fetchall()
        return [schedule_state(row, utc) for row in rows]

    def schedule_state(self, name: str) -> ScheduleState | None:
        row = self._one(self._q.schedule_state, {"prefix": SCHEDULE_KEY_PREFIX, "name": name})
        return None if row is None else schedule_state(row, utc)

    def schedule_record(self, records: Sequence[ScheduleRecord]) -> None:
        batch = batch_json([history_values(r, datetime.isoformat) for r in records])
        self._conn.execute(self._q.schedule_record, (batch,))

    def schedule_history(self, name: str, limit: int) -> list[ScheduleRecord]:
        rows = self._conn.execute(
            self._q.schedule_history, {"name": name, "limit": limit}
        ).fetchall()
        return [schedule_record(row, utc) for row in rows]

    def schedule_gate(self, name: str, job_id: int) -> GateFacts | None:
        row = self._one(self._q.schedule_gate, {"name": name, "job_id": job_id})
        if row is None:
            return None
        paused_at, until, busy, now = row
        return GateFacts(schedule_paused(paused_at, until, now), bool(busy))

    def schedule_start(self, name: str, job_id: int, *, regular: bool) -> bool:
        params = {"name": name, "job_id": job_id, "regular": regular}
        return self._count(self._q.schedule_start, params) == 1

    def schedule_pause(self, name: str, paused_at: datetime, until: datetime | None) -> None:
        params = {"name": name, "paused_at": paused_at, "until": until}
        self._conn.execute(self._q.schedule_pause, params)

    def schedule_resume(self, name: str) -> None:
        self._conn.execute(self._q.schedule_resume, {"name": name})

    def schedule_wake(self, name: str) -> None:
        params = {"regular": schedule_key(name), "run_now": run_now_key(name)}
        self._conn.execute(self._q.schedule_wake, params)

    def schedule_publish(self, node_id: str, names: Sequence[str]) -> None:
        self._conn.execute(self._q.schedule_publish, {"node": node_id, "names": list(names)})

    def schedule_unpublish(self, node_id: str) -> None:
        self._conn.execute(self._q.schedule_unpublish, {"node": node_id})

    def schedule_defined(self, name: str, alive_for: timedelta) -> bool:
        params = {"name": name, "alive_us": us(alive_for)}
        return bool(scalar(self._one(self._q.schedule_defined, params)))

    def schedule_forget_published(self, alive_for: timedelta) -> None:
        self._conn.execute(self._q.schedule_forget_published, {"alive_us": us(alive_for)})

    def schedule_remove_runs(self, name: str) -> list[Job]:
        params = {"regular": schedule_key(name), "run_now": run_now_key(name)}
        return [hot(row) for row in self._conn.execute(self._q.schedule_remove_runs, params)]

    def schedule_removed(self, name: str) -> None:
        self._conn.execute(self._q.schedule_removed, {"name": name})

    # operating ---------------------------------------------------------------------------------
    def get_hot(self, job_id: int, *, for_update: bool = False) -> Job | None:
        query = self._q.get_hot_for_update if for_update else self._q.get_hot
        row = self._one(query, (job_id,))
        return None if row is None else hot(row)

    def get_archived(self, job_id: int) -> Job | None:
        row = self._one(self._q.get_archived, (job_id,))
        return None if row is None else archived(row)

    def list_hot(self, where: JobFilter) -> list[Job]:
        query = self._q.list_running if where.state is JobState.RUNNING else self._q.list_hot
        rows = self._conn.execute(query, _filter_params(where)).fetchall()
        return [hot(row) for row in rows]

    def list_archived(self, where: JobFilter) -> list[Job]:
        rows = self._conn.execute(self._q.list_archived, _filter_params(where)).fetchall()
        return [archived(row) for row in rows]

    def stats_waiting(self) -> list[tuple[str, int, int]]:
        return self._conn.execute(self._q.stats_waiting).fetchall()

    def stats_running(self) -> list[tuple[str, str, int]]:
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

    def request_cancel(self, job_id: int) -> Job | None:
        params = {"id": job_id, "channel": self._cancel_channel}
        row = self._one(self._q.request_cancel, params)
        return None if row is None else hot(row)

    def cancel_requested(self, node_id: str) -> list[int]:
        return [scalar(row) for row in self._rows(self._q.cancel_requested, (node_id,))]

    def delete_hot(self, job_id: int) -> int:
        return self._count(self._q.delete_hot, (job_id,))

    def delete_archived(self, job_id: int) -> int:
        return self._count(self._q.delete_archived, (job_id,))

    def prune_slice(self, cutoff: datetime, states: Sequence[str], limit: int) -> int:
        return self._count(self._q.prune_slice, (list(states), cutoff, limit))

    def prune_history_slice(self, cutoff: datetime, results: Sequence[str], limit: int) -> int:
        params = {"cutoff": cutoff, "results": list(results), "limit": limit}
        return self._count(self._q.prune_history_slice, params)


def _claim_params(request: ClaimRequest) -> dict[str, Any]:
    return {
        "node": request.node_id,
        "lease_us": us(request.lease),
        "queue": request.queue,
        "limit": request.limit,
        "names": _names(request.names),
    }


def _names(names: Sequence[str] | None) -> list[str] | None:
    return None if names is None else list(names)


def _as_is(value: Any) -> Any:
    """jsonb comes back parsed already."""
    return value


def _filter_params(where: JobFilter) -> dict[str, Any]:
    return {
        "name": where.name,
        "queue": where.queue,
        "limit": where.limit,
        "state": None if where.state is None else where.state.value,
    }


def _new_job(job: NewJob) -> dict[str, Any]:
    """A NewJob as one element of a JSON batch (INSERT_MANY, INSERT_UNIQUE, TAKE_OVER_KEYS)."""
    return {
        "queue": job.queue,
        "name": job.name,
        "payload": job.raw_payload,
        "priority": job.priority,
        "max_attempts": job.max_attempts,
        "available_at": job.available_at.isoformat() if job.available_at else None,
        "delay_us": us(job.delay),
        "unique_key": job.unique_key,
        "schedule": job.schedule,
        "meta": job.raw_meta,
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
        and new.raw_meta is None
    )
