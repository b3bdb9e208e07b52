"""OpenTelemetry tracing (``pip install bgjobs[otel]``): one trace from the request to the run.

    from bgjobs.integrations import otel

    bg = otel.instrument(bgjobs.new(store).with_queue(...)).build()

Each ``enqueue``/``enqueue_many`` call is a ``send`` span (kind PRODUCER, a child of whatever
span is current, e.g. the web request), and the W3C trace context of that span (``traceparent``,
``tracestate``, ``baggage``: whatever the global propagator writes) is stored with each job
(``Job.meta``). Each run of a job is a ``process`` span (kind CONSUMER), current while the
handler runs, on whichever node runs it. By default it starts a trace of its own with a *link* to
the ``send`` span (the messaging conventions' advice: a run is caused by the enqueue, but it is
not part of the request, and a fan-out of thousands of jobs would make one giant trace);
``enqueue_context="parent"`` makes it a child of the ``send`` span instead, in the same trace.

Spans carry the messaging semantic conventions (``messaging.system="bgjobs"``,
``messaging.destination.name`` = queue, ``messaging.operation.type``/``.name``,
``messaging.message.id`` = job id, ``messaging.batch.message_count``) and bgjobs' own
attributes (``bgjobs.job.id``, ``.name``, ``.queue``, ``.attempt``, ``.max_attempts``,
``.schedule``, ``.outcome``). A failed attempt records its exception and sets the span's status
to ERROR (poison input, which raises nothing, sets ``error.type`` and the status). Without an
SDK configured, the API's no-op tracer stores nothing with the jobs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from bgjobs.adapters.base import Completion, Outcome
from bgjobs.errors import ConfigError
from bgjobs.job import Job, NewJob

if TYPE_CHECKING:
    from bgjobs.builder import RuntimeSpec

Spec = TypeVar("Spec", bound="RuntimeSpec")
SYSTEM = "bgjobs"
EnqueueContext = Literal["link", "parent"]
_FAILED = (Outcome.RETRY, Outcome.FAILED, Outcome.DISCARDED)


def instrument(
    spec: Spec,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    enqueue_context: EnqueueContext = "link",
) -> Spec:
    """``spec`` (a builder, before ``build()``) with tracing on every enqueue and every run.
    ``tracer_provider`` defaults to the global one (``opentelemetry.trace``)."""
    if not hasattr(spec, "with_instrumentation"):
        raise ConfigError(
            f"otel.instrument() takes the builder (bgjobs.new(...)...), got {type(spec).__name__}:"
            " instrument before .build(), e.g. bg = otel.instrument(spec).build()"
        )
    return spec.with_instrumentation(
        OpenTelemetry(tracer_provider=tracer_provider, enqueue_context=enqueue_context)
    )


class OpenTelemetry:
    """The ``bgjobs.instrumentation.Instrumentation`` that ``instrument`` adds."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        enqueue_context: EnqueueContext = "link",
    ) -> None:
        if enqueue_context not in ("link", "parent"):
            raise ConfigError(
                f"enqueue_context must be 'link' (the run starts its own trace, linked to the "
                f"enqueue) or 'parent' (the run joins the enqueue's trace), got {enqueue_context!r}"
            )
        from bgjobs import __version__

        self._tracer = trace.get_tracer(SYSTEM, __version__, tracer_provider=tracer_provider)
        self._as_child = enqueue_context == "parent"

    @contextmanager
    def enqueue(self, jobs: Sequence[NewJob]) -> Iterator[_EnqueueScope]:
        queues = {job.queue for job in jobs}
        names = {job.name for job in jobs}
        (name,) = names if len(names) == 1 else ("jobs",)
        attributes: dict[str, str | int] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
        }
        if len(queues) == 1:
            attributes["messaging.destination.name"] = next(iter(queues))
        if len(names) == 1:
            attributes["bgjobs.job.name"] = name
        if len(jobs) > 1:
            attributes["messaging.batch.message_count"] = len(jobs)
        with self._tracer.start_as_current_span(
            f"send {name}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # this span's context: what each run links to
            yield _EnqueueScope(span, carrier)

    @contextmanager
    def run(self, job: Job) -> Iterator[_RunScope]:
        enqueued = propagate.extract(job.meta) if job.meta else None
        origin = trace.get_current_span(enqueued).get_span_context() if enqueued else None
        links: list[Link] = []
        context = Context()  # a new trace: a span current on this thread is never the parent
        if origin is not None and origin.is_valid:
            if self._as_child:
                context = enqueued  # type: ignore[assignment]
            else:
                links.append(Link(origin))
        with self._tracer.start_as_current_span(
            f"process {job.name}",
            context=context,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=_run_attributes(job),
            record_exception=False,  # the runtime catches the handler's error: see finished()
            set_status_on_exception=False,
        ) as span:
            yield _RunScope(span)


class _EnqueueScope:
    def __init__(self, span: Span, carrier: dict[str, str]) -> None:
        self._span = span
        self.meta: Mapping[str, str] = carrier

    def inserted(self, jobs: Sequence[Job]) -> None:
        if len(jobs) == 1:
            self._span.set_attribute("messaging.message.id", str(jobs[0].id))
            self._span.set_attribute("bgjobs.job.id", jobs[0].id)


class _RunScope:
    def __init__(self, span: Span) -> None:
        self._span = span

    def finished(self, completion: Completion, error: BaseException | None) -> None:
        span = self._span
        span.set_attribute("bgjobs.job.outcome", completion.outcome.value)
        if completion.outcome not in _FAILED:
            return
        if error is not None:
            span.record_exception(error)
            kind, message = type(error).__name__, str(error) or repr(error)
        elif completion.error is not None:  # poison input: nothing was raised
            kind, message = completion.error.type, completion.error.message
        else:
            kind, message = "Error", completion.outcome.value
        span.set_attribute("error.type", kind)
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}"))


def _run_attributes(job: Job) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": str(job.id),
        "bgjobs.job.id": job.id,
        "bgjobs.job.name": job.name,
        "bgjobs.job.queue": job.queue,
        "bgjobs.job.attempt": job.attempt,
        "bgjobs.job.max_attempts": job.max_attempts,
    }
    if job.schedule is not None:
        attributes["bgjobs.job.schedule"] = job.schedule
    return attributes
