"""JSON payload codec. Payloads are stored as JSON text; pickle is never used."""

from __future__ import annotations

import json
import math
from typing import TypeAlias

from bgjobs.errors import PayloadError

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None


def _find_offender(value: object, path: str) -> str | None:
    """Return a description of the first value under `path` that JSON cannot hold exactly."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r}; JSON has no NaN/Infinity"
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_offender(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (
                    f"{path} has key {key!r} of type {type(key).__name__}; "
                    "JSON object keys must be strings"
                )
            found = _find_offender(item, f"{path}.{key}")
            if found:
                return found
        return None
    return f"{path} is {type(value).__name__} ({value!r:.60})"


def encode_payload(value: object) -> str:
    """Serialise a payload, refusing anything that would not round-trip through JSON."""
    offender = _find_offender(value, "payload")
    if offender is not None:
        raise PayloadError(
            f"job payload is not JSON: {offender}. Pass only dict/list/str/int/float/bool/None, "
            "e.g. convert datetimes with .isoformat() and objects to their ids."
        )
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_payload(text: str) -> JSON:
    """Parse stored payload text; corrupt rows raise PayloadError (the runtime fails that job)."""
    try:
        value: JSON = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"stored payload is not valid JSON ({exc}): {text[:80]!r}") from exc
    return value
