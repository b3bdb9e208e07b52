"""Unique jobs: what the user asks for (``Unique``) and what is stored for it (a key and a hold).

``bg.enqueue(name, payload, unique=bgjobs.Unique(...))`` inserts a job only if no earlier job
holds the same key. The key is derived here, once for the library and the CLI; the database
enforces it (the keys table's primary key, see ``adapters.decisions.key_taken``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Literal

from bgjobs.errors import ConfigError
from bgjobs.job import FINISHED_STATES, WAITING_STATES, JobState, UniqueHold
from bgjobs.payload import JSON

REPLACEABLE = ("payload", "run_at", "priority")
MAX_KEY_LENGTH = 500  # a user's key; derived keys are hashes


@dataclass(frozen=True)
class Unique:
    """At most one job per key while an earlier job with that key is in ``states``.

    The key is the worker's name plus, by default, the whole payload (its canonical JSON, keys
    sorted); ``fields`` narrows it to some payload fields, ``key`` replaces it with your own.
    ``states``: waiting (available and scheduled) always; running by default; add finished
    states (``JobState.SUCCEEDED``...) to keep the key after the job ends, for ``period`` (or
    while the job is kept in the archive). On a conflict, ``on_conflict="keep"`` leaves the
    earlier job as it is; ``"replace"`` sets its ``replace`` fields ("payload", "run_at",
    "priority") from the new request while it still waits. Either way ``enqueue`` returns the
    earlier job with ``job.duplicate`` True.
    """

    key: str | None = None
    fields: tuple[str, ...] | None = None
    states: Iterable[JobState | str] = frozenset(
        {JobState.AVAILABLE, JobState.SCHEDULED, JobState.RUNNING}
    )
    period: timedelta | None = None
    on_conflict: Literal["keep", "replace"] = "keep"
    replace: tuple[str, ...] = ("payload", "run_at")

    WAITING: ClassVar[frozenset[JobState]] = WAITING_STATES
    UNFINISHED: ClassVar[frozenset[JobState]] = WAITING_STATES | {JobState.RUNNING}


@dataclass(frozen=True)
class UniqueRequest:
    """A Unique checked against its job: the stored key, the hold, the fields to replace."""

    key: str
    hold: UniqueHold
    replace: frozenset[str]


def unique_request(unique: object, name: str, payload: JSON) -> UniqueRequest:
    """Check ``unique`` for the job ``name`` with ``payload``; raises ConfigError naming the
    problem and the fix."""
    if not isinstance(unique, Unique):
        raise ConfigError(
            f"unique= must be a bgjobs.Unique, got {type(unique).__name__}; "
            "e.g. unique=bgjobs.Unique() or unique=bgjobs.Unique(fields=('user_id',))"
        )
    return UniqueRequest(
        key=f"{name}|{_key_part(unique, payload)}",
        hold=_hold(unique),
        replace=_replace(unique),
    )


def canonical_json(value: JSON) -> str:
    """One text per JSON value: keys sorted, no spaces (``{"b":1,"a":2}`` == ``{"a":2,"b":1}``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(value: JSON) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _key_part(unique: Unique, payload: JSON) -> str:
    """What follows the worker name in the stored key ("|" cannot occur in a worker name)."""
    if unique.key is not None and unique.fields is not None:
        raise ConfigError("give Unique(key=...) or Unique(fields=...), not both")
    if unique.key is not None:
        key = unique.key
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise ConfigError(
                f"Unique(key=...) must be a non-empty string of up to {MAX_KEY_LENGTH} "
                f"characters without NUL, got {key!r}; e.g. key=f'user:{{user_id}}'"
            )
        return f"key:{key}"
    if unique.fields is None:
        return f"payload:{_digest(payload)}"
    fields = unique.fields
    if isinstance(fields, str) or not fields or not all(isinstance(f, str) for f in fields):
        raise ConfigError(
            f"Unique(fields=...) must be a non-empty tuple of payload keys, got {fields!r}; "
            "e.g. fields=('user_id',)"
        )
    if not isinstance(payload, dict):
        raise ConfigError(
            f"Unique(fields={tuple(fields)!r}) needs a dict payload, got {type(payload).__name__}"
        )
    missing = [f for f in fields if f not in payload]
    if missing:
        raise ConfigError(
            f"Unique(fields=...) names {', '.join(map(repr, missing))}, which the payload "
            f"does not have (it has {', '.join(map(repr, sorted(payload))) or 'no keys'})"
        )
    return f"fields:{_digest({f: payload[f] for f in fields})}"


def _hold(unique: Unique) -> UniqueHold:
    states = _states(unique.states)
    if not states >= WAITING_STATES:
        raise ConfigError(
            "Unique(states=...) must include JobState.AVAILABLE and JobState.SCHEDULED: a "
            "waiting job always holds its key (e.g. states=Unique.WAITING, or Unique.UNFINISHED)"
        )
    after = frozenset(states & FINISHED_STATES)
    period = unique.period
    if period is not None:
        if not isinstance(period, timedelta) or period <= timedelta(0):
            raise ConfigError(
                f"Unique(period=...) must be a positive timedelta, got {period!r}; "
                "e.g. period=timedelta(hours=1)"
            )
        if not after:
            raise ConfigError(
                "Unique(period=...) is how long a finished job keeps its key: add the finished "
                "states it applies to, e.g. states=Unique.UNFINISHED | {JobState.SUCCEEDED}"
            )
    return UniqueHold(while_running=JobState.RUNNING in states, after=after, period=period)


def _states(given: object) -> frozenset[JobState]:
    if isinstance(given, str | JobState) or not isinstance(given, Iterable):
        raise ConfigError(
            f"Unique(states=...) must be a set of JobState, got {given!r}; "
            "e.g. states=Unique.UNFINISHED"
        )
    states: set[JobState] = set()
    for state in given:
        try:
            states.add(JobState(state))
        except ValueError:
            known = ", ".join(s.value for s in JobState)
            raise ConfigError(f"Unique(states=...): unknown state {state!r}; use {known}") from None
    return frozenset(states)


def _replace(unique: Unique) -> frozenset[str]:
    if unique.on_conflict == "keep":
        return frozenset()
    if unique.on_conflict != "replace":
        raise ConfigError(
            f'Unique(on_conflict=...) must be "keep" or "replace", got {unique.on_conflict!r}'
        )
    fields = unique.replace
    if isinstance(fields, str) or not fields or not set(fields) <= set(REPLACEABLE):
        raise ConfigError(
            f"Unique(replace=...) must name some of {', '.join(REPLACEABLE)}, got {fields!r}; "
            'e.g. replace=("payload", "run_at")'
        )
    return frozenset(fields)
