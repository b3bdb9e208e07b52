"""JSON payload codec. Payloads are stored as JSON text; pickle is never used.

``encode_payload`` refuses, naming the value, anything that would not come back unchanged from
either store or that the process running the job could not read back: non-JSON types, NaN and
Infinity, strings with lone surrogates (not valid UTF-8), integers longer than Python's default
int-to-text limit, and nesting deeper than ``MAX_PAYLOAD_DEPTH``.
"""

from __future__ import annotations

import json
import math
from typing import TypeAlias

from bgjobs.errors import PayloadError

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None

# Deep enough for any real document, shallow enough that json (which recurses) can always read
# it back, whatever the call stack of the code that enqueues or runs the job.
MAX_PAYLOAD_DEPTH = 100
# Python's default sys.get_int_max_str_digits(): a fixed limit, so a job enqueued by a process
# that raised its own limit can still be read by a worker that did not.
MAX_INT_DIGITS = 4300
_TOO_BIG = 10**MAX_INT_DIGITS

_TYPE_HINT = (
    "Pass only dict/list/str/int/float/bool/None, "
    "e.g. convert datetimes with .isoformat() and objects to their ids."
)

# A walk step: (value, depth, parent step, key or index under the parent). The path of an
# offender is rebuilt from the parent chain only when there is one, so a good payload pays for
# no path strings, and the walk is a loop, so no payload can exhaust the call stack.
_Step: TypeAlias = tuple[object, int, "_Step | None", object]


def encode_payload(value: object) -> str:
    """Serialise a payload, refusing anything that would not round-trip through JSON."""
    problem = _find_problem(value)
    if problem is None:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (ValueError, RecursionError) as exc:  # e.g. a lowered sys.set_int_max_str_digits
            problem = f"job payload cannot be written as JSON: {exc}"
    raise PayloadError(problem)


def _find_problem(value: object) -> str | None:
    """The error message for the first value that cannot be stored exactly, or None."""
    stack: list[_Step] = [(value, 1, None, None)]
    while stack:
        step = stack.pop()
        item, depth = step[0], step[1]
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, str):
            char = lone_surrogate(item)
            if char is not None:
                return _surrogate_problem(f"{_path(step)} is a string", item, char)
        elif isinstance(item, int):
            if abs(item) >= _TOO_BIG:
                return (
                    f"job payload cannot be stored: {_path(step)} is an integer longer than "
                    f"{MAX_INT_DIGITS} digits; pass it as a string"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                return (
                    f"job payload is not JSON: {_path(step)} is {item!r}; "
                    f"JSON has no NaN/Infinity. {_TYPE_HINT}"
                )
        elif isinstance(item, list | tuple | dict):
            if depth > MAX_PAYLOAD_DEPTH:
                return (
                    f"job payload cannot be stored: payload is nested more than "
                    f"{MAX_PAYLOAD_DEPTH} levels deep; flatten it, or store the document "
                    "elsewhere and pass its id"
                )
            children = item.items() if isinstance(item, dict) else enumerate(item)
            if isinstance(item, dict):
                problem = _key_problem(item, step)
                if problem is not None:
                    return problem
            stack.extend(reversed([(child, depth + 1, step, key) for key, child in children]))
        else:
            return (
                f"job payload is not JSON: {_path(step)} is {type(item).__name__} "
                f"({item!r:.60}). {_TYPE_HINT}"
            )
    return None


def _key_problem(item: dict[object, object], step: _Step) -> str | None:
    for key in item:
        if not isinstance(key, str):
            return (
                f"job payload is not JSON: {_path(step)} has key {key!r} of type "
                f"{type(key).__name__}; JSON object keys must be strings. {_TYPE_HINT}"
            )
        char = lone_surrogate(key)
        if char is not None:
            return _surrogate_problem(f"{_path(step)} has key {key!r}", key, char)
    return None


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` (it cannot be written as UTF-8), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD: text bgjobs stores but did not check
    (a handler's error message) must be valid UTF-8, or no database can hold it."""
    if lone_surrogate(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _surrogate_problem(what: str, text: str, char: str) -> str:
    return (
        f"job payload cannot be stored: {what} with a lone surrogate {char!r}, which is not "
        "valid UTF-8; fix the text where it was decoded, e.g. "
        f"raw.decode('utf-8', errors='replace') ({text!r:.60})"
    )


def _path(step: _Step | None) -> str:
    parts: list[str] = []
    while step is not None and step[2] is not None:
        key = step[3]
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        step = step[2]
    return "payload" + "".join(reversed(parts))


class UndecodableText(str):
    """Stored text that is not valid UTF-8 (another tool wrote it): it reads with U+FFFD in place
    of each bad byte, and remembers what was wrong, so that decoding it as a payload fails with
    that instead of running the job on altered data."""

    problem: str

    def __new__(cls, raw: bytes) -> UndecodableText:
        text = super().__new__(cls, raw.decode("utf-8", errors="replace"))
        try:
            raw.decode("utf-8")
            text.problem = "it is not valid UTF-8"
        except UnicodeDecodeError as exc:
            text.problem = f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid UTF-8"
        return text


def decode_payload(text: str) -> JSON:
    """Parse stored payload text; corrupt rows raise PayloadError (the runtime fails that job)."""
    if isinstance(text, UndecodableText):
        raise PayloadError(
            f"stored payload is not text: {text.problem} (was it written by another tool?): "
            f"{text[:80]!r}"
        )
    try:
        value: JSON = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"stored payload is not valid JSON ({exc}): {text[:80]!r}") from exc
    return value
