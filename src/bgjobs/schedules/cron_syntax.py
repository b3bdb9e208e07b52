"""Reading cron text: croniter parses the fields, bgjobs keeps what croniter cannot say.

``croniter.expand`` turns each field into its values: numbers, names, ranges, steps,
lists, ``L`` (last day of the month), ``mon#2`` and ``L5`` (nth and last weekday) and
Jenkins-style hashed fields (``H``, ``H/15``, ``H(0-29)``), which hash the hash id
(bgjobs passes the scheduled job's name) into a stable value. bgjobs adds only:

* **How the fields are written** (:class:`_Fields`): a field written as the whole range
  (``*``, ``*/n``, or its hashed twin ``H/n``) decides the day rule and the DST rule,
  and the values alone cannot tell ``*/1`` from ``1-31``.
* **Refusals that name the field and the fix**, where croniter would run something
  bgjobs must not: ``R`` (random, so every node and restart would pick another time),
  ``W`` (``expand`` returns the plain day and drops "nearest weekday"), ``?`` (read as
  ``*``; bgjobs asks for ``*`` itself, the one spelling the day rule looks at) and a
  reversed range ``22-2`` (croniter wraps it around; classic cron refuses it).
* **Classic meanings croniter reads otherwise**: an equal range ``5-5`` is one value
  (croniter: the whole field) and full names such as ``monday`` stay valid (croniter
  knows three letters), so stored definitions fire as before.
* **The aliases at their classic meaning** (``@daily`` is midnight): given a hash id,
  croniter would turn them into hashed times.
* **Which field a croniter error is about**, for the message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from croniter import CroniterError, croniter

from bgjobs.errors import ScheduleError
from bgjobs.schedules.cron_calendar import LAST, _Calendar
from bgjobs.schedules.cron_fields import (
    _DOM,
    _DOW,
    _FIELDS,
    _HOUR,
    _MINUTE,
    _MONTH,
    _SECOND,
    _Field,
)

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_SYNTAX = "numbers, names, '*', ranges 'a-b', steps '/n', lists 'a,b' or 'H'"
_EXTRA_SYNTAX = {_DOM.name: ", 'L'", _DOW.name: ", 'mon#2' or 'L5'"}

_WHOLE_RANGE = re.compile(r"\*.*|h/\d+")
_RANGE = re.compile(r"(?P<first>[a-z0-9]+)-(?P<last>[a-z0-9]+)(?:/\d+)?(?P<nth>#\d+)?")
_NEAREST_WEEKDAY = re.compile(r"\d+w|w\d+|lw")
_WEEKDAY_THEN_L = re.compile(r"(?P<day>\d+|[a-z]+)l")


@dataclass(frozen=True)
class _Fields:
    """The six field texts, seconds first, lower case and ready for croniter."""

    texts: tuple[str, ...]

    @property
    def hashed(self) -> bool:
        return any(text.startswith("h") for text in self.texts)

    @property
    def days_need_both(self) -> bool:
        """Classic cron: a day field written as the whole range makes both day fields
        required; two restricted day fields are alternatives."""
        return _is_whole_range(self.texts[3]) or _is_whole_range(self.texts[5])

    @property
    def fixed_time(self) -> bool:
        """Debian cron: a minute or hour written as the whole range is a wildcard time,
        which runs in real time through a repeated hour; otherwise the time is fixed."""
        return not (_is_whole_range(self.texts[1]) or _is_whole_range(self.texts[2]))


def _is_whole_range(text: str) -> bool:
    """``*``, ``*/2``: what classic cron tests. ``H/15`` is ``*/15`` with a hashed
    offset, so it counts too; ``H`` and ``H(0-29)`` are single values."""
    return _WHOLE_RANGE.fullmatch(text) is not None


def _split_fields(expression: str, source: str) -> _Fields:
    text = expression.strip().lower()
    if text.startswith("@"):
        if text not in _ALIASES:
            raise ScheduleError(
                f"{source} unknown alias {text!r}; use one of {', '.join(_ALIASES)}"
            )
        text = _ALIASES[text]
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    elif len(parts) != 6:
        raise ScheduleError(
            f"{source} has {len(parts)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week) or 6 (with seconds first)"
        )
    return _Fields(
        tuple(_checked_field(part, spec, source) for part, spec in zip(parts, _FIELDS, strict=True))
    )


def _checked_field(text: str, spec: _Field, source: str) -> str:
    """Refuse what bgjobs must not run, keep classic meanings; croniter does the rest."""
    where = f"{source} field {spec.name!r} {text!r}"
    items = text.split(",")
    if "" in items:
        raise ScheduleError(f"{where} has an empty list item; remove the extra comma")
    if "?" in text:
        raise ScheduleError(f"{where}: '?' is not supported; write '*'")
    if any(item.startswith("r") for item in items):
        raise ScheduleError(
            f"{where}: random 'R' is not supported, as every node and every restart would "
            "pick another time; use 'H', which hashes the schedule's name to a stable value"
        )
    if text.startswith("h") and len(items) > 1:
        raise ScheduleError(
            f"{where}: 'H' must be the whole field ('H', 'H/15', 'H(0-29)' or 'H(0-29)/10')"
        )
    if spec is _DOM and any(_NEAREST_WEEKDAY.fullmatch(item) for item in items):
        raise ScheduleError(f"{where}: 'W' (nearest weekday) is not supported")
    if spec is _DOW:
        _check_weekday_items(items, where)
    return ",".join(_checked_item(item, spec, where) for item in items)


def _check_weekday_items(items: list[str], where: str) -> None:
    for item in items:
        late = _WEEKDAY_THEN_L.fullmatch(item)
        if late and (late["day"].isdigit() or late["day"] in _DOW.names):
            number = _DOW.names.get(late["day"], late["day"])
            raise ScheduleError(f"{where}: write the last weekday 'L' first: 'L{number}'")
    occurrences = [item for item in items if "#" in item or item.startswith("l")]
    if occurrences and len(occurrences) < len(items):
        raise ScheduleError(
            f"{where} mixes nth or last weekdays ({occurrences[0]!r}) with plain days; "
            "use one kind per field (e.g. 'mon#1,mon#3' or 'mon,fri')"
        )


def _checked_item(item: str, spec: _Field, where: str) -> str:
    item = re.sub(r"[a-z]{4,}", lambda m: _short_name(m[0], spec), item)
    _, slash, step = item.partition("/")
    step = step.partition("#")[0]
    if slash and (not step.isdigit() or int(step) == 0):
        raise ScheduleError(f"{where}: step {step!r} in {item!r} must be a whole number >= 1")
    if item.startswith("h"):
        return item  # croniter checks H's range
    found = _RANGE.fullmatch(item)
    if not found:
        return item
    first, last = _bound(found["first"], spec), _bound(found["last"], spec)
    if first is None or last is None:
        return item  # not a value: croniter explains
    if first > last:
        raise ScheduleError(
            f"{where}: range {item!r} is reversed; ranges do not wrap around, write it "
            "low-high or as a list"
        )
    if first == last:  # classic cron: one value (croniter would read the whole field)
        return found["first"] + (found["nth"] or "")
    return item


def _short_name(word: str, spec: _Field) -> str:
    """croniter knows only three-letter names: ``january`` -> ``jan``."""
    return word[:3] if word in spec.names else word


def _bound(token: str, spec: _Field) -> int | None:
    return int(token) if token.isdigit() else spec.names.get(token)


def _calendar(fields: _Fields, hash_id: bytes, source: str) -> _Calendar:
    """The values croniter expands ``fields`` to, as a calendar. croniter writes
    ``'*'`` for a whole field, ``'l'`` for the last day of the month, and the nth
    weekdays apart: ``{weekday: {1..5 or 'l'}}``; seconds come last."""
    try:
        expanded, nth_weekdays = croniter.expand(
            " ".join(fields.texts), hash_id=hash_id, second_at_beginning=True
        )
    except CroniterError as error:
        raise _field_error(fields, hash_id, source, error) from None
    minutes, hours, doms, months, dows, seconds = expanded
    occurrences = frozenset(
        (weekday, LAST if nth == "l" else int(nth))
        for weekday, nths in nth_weekdays.items()
        for nth in nths
    )
    return _Calendar(
        seconds=tuple(sorted(_values(seconds, _SECOND))),
        minutes=tuple(sorted(_values(minutes, _MINUTE))),
        hours=tuple(sorted(_values(hours, _HOUR))),
        days_of_month=_values(doms, _DOM),
        months=tuple(sorted(_values(months, _MONTH))),
        # croniter also lists the weekday of an nth weekday among the plain ones, and
        # _check_weekday_items keeps the two kinds apart.
        days_of_week=frozenset() if occurrences else _values(dows, _DOW),
        days_need_both=fields.days_need_both,
        last_day_of_month="l" in doms,
        weekday_occurrences=occurrences,
    )


def _values(expanded: Sequence[int | str], spec: _Field) -> frozenset[int]:
    if "*" in expanded:
        return spec.full
    return frozenset(value for value in expanded if isinstance(value, int))


def _field_error(
    fields: _Fields, hash_id: bytes, source: str, error: CroniterError
) -> ScheduleError:
    """Name the field croniter refused: expand each field alone until one fails."""
    for index, (text, spec) in enumerate(zip(fields.texts, _FIELDS, strict=True)):
        alone = ["*"] * 6
        alone[index] = text
        try:
            croniter.expand(" ".join(alone), hash_id=hash_id, second_at_beginning=True)
        except CroniterError as field_error:
            reason = _reason(field_error)
            allowed = f"{spec.low}-{spec.high}"
            if re.search(r"out of (range|bands)$", reason):
                return ScheduleError(
                    f"{source} field {spec.name!r} {_out_of_range(text, spec)} is out of "
                    f"range {allowed}"
                )
            if spec.names:
                allowed += " or a name like " + ", ".join(list(spec.names)[:2])
            syntax = _SYNTAX + _EXTRA_SYNTAX.get(spec.name, "")
            return ScheduleError(
                f"{source} field {spec.name!r} {text!r} is not valid ({reason}); expected "
                f"{allowed}, written with {syntax}"
            )
    return ScheduleError(f"{source} {_reason(error)}")


def _out_of_range(text: str, spec: _Field) -> str:
    """``value 61`` for ``1-61``: the first value (not a step or an nth) out of range."""
    for number in re.findall(r"(?<![/#\d])\d+", text):
        if not spec.low <= int(number) <= spec.high:
            return f"value {int(number)}"
    return repr(text)


def _reason(error: CroniterError) -> str:
    """croniter's message without the expression it repeats or its field numbers."""
    text = re.sub(r"^\[[^\]]*\]\s*|\s*in field \d+", "", str(error).strip())
    text = re.sub(r"^(is )?not acceptable[,.]?\s*", "", text)
    return text.rstrip(".") or "not a value or name croniter knows"
