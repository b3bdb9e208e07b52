"""OpenTelemetry tracing with the real SDK: spans in one process, and a trace carried through the
database to a worker in another OS process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
from tests.conftest import wait_until
from tests.support.otel_node import resize_handler
from tests.support.procs import start_ready, stop_node

import bgjobs
from bgjobs.adapters.base import Store
from bgjobs.errors import ConfigError
from bgjobs.integrations import otel
from bgjobs.job import NewJob


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def traced(store: Store, provider: TracerProvider) -> Iterator[Callable[..., bgjobs.BgJobs]]:
    made: list[bgjobs.BgJobs] = []

    def make(**options: Any) -> bgjobs.BgJobs:
        spec = bgjobs.new(store).with_queue(
            bgjobs.queue("media").with_worker(
                bgjobs.worker("resize", resize_handler(provider)).with_max_attempts(2)
            )
        )
        bg = otel.instrument(spec, tracer_provider=provider, **options).build()
        made.append(bg)
        return bg

    yield make
    for bg in made:
        bg.stop(timeout=5)


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def finished(bg: bgjobs.BgJobs, job_id: int) -> bool:
    job = bg.get_job(job_id)
    return job is not None and job.state.is_finished


def test_a_run_links_to_its_enqueue_which_is_part_of_the_request(
    traced: Callable[..., bgjobs.BgJobs], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    bg = traced()
    with provider.get_tracer("web").start_as_current_span("POST /images"):
        job = bg.enqueue("resize", {"image": 7})
    assert set(job.meta) >= {"traceparent"}
    bg.start()
    wait_until(lambda: spans(exporter, "process resize"), 10, "the run's span")
    (request,) = spans(exporter, "POST /images")
    (send,) = spans(exporter, "send resize")
    (run,) = spans(exporter, "process resize")
    (inner,) = spans(exporter, "resize")
    assert send.parent is not None and send.parent.span_id == request.context.span_id
    assert send.kind is SpanKind.PRODUCER and send.context.trace_id == request.context.trace_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "bgjobs",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "media",
        "bgjobs.job.name": "resize",
        "messaging.message.id": str(job.id),
        "bgjobs.job.id": job.id,
    }
    # link (the default): a trace of its own, linked to the enqueue
    assert run.kind is SpanKind.CONSUMER and run.parent is None
    assert run.context.trace_id != send.context.trace_id
    assert [link.context.span_id for link in run.links] == [send.context.span_id]
    assert dict(run.attributes or {}) == {
        "messaging.system": "bgjobs",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "media",
        "messaging.message.id": str(job.id),
        "bgjobs.job.id": job.id,
        "bgjobs.job.name": "resize",
        "bgjobs.job.queue": "media",
        "bgjobs.job.attempt": 1,
        "bgjobs.job.max_attempts": 2,
        "bgjobs.job.outcome": "succeeded",
    }
    assert run.status.status_code is StatusCode.UNSET
    # the handler's own spans nest under the run
    assert inner.parent is not None and inner.parent.span_id == run.context.span_id


def test_parent_mode_puts_the_run_in_the_enqueue_trace(
    traced: Callable[..., bgjobs.BgJobs], exporter: InMemorySpanExporter
) -> None:
    bg = traced(enqueue_context="parent").start()
    job = bg.enqueue("resize")
    wait_until(lambda: finished(bg, job.id) and spans(exporter, "process resize"), 10, "a run")
    (send,) = spans(exporter, "send resize")
    (run,) = spans(exporter, "process resize")
    assert run.parent is not None and run.parent.span_id == send.context.span_id
    assert run.context.trace_id == send.context.trace_id and not run.links


def test_a_failed_attempt_records_the_exception_and_an_error_status(
    traced: Callable[..., bgjobs.BgJobs], exporter: InMemorySpanExporter
) -> None:
    bg = traced().start()
    job = bg.enqueue("resize", {"fail": True})
    wait_until(lambda: finished(bg, job.id), 20, "both attempts")
    wait_until(lambda: len(spans(exporter, "process resize")) == 2, 10, "two run spans")
    first, second = sorted(spans(exporter, "process resize"), key=lambda s: s.start_time or 0)
    assert [s.attributes["bgjobs.job.outcome"] for s in (first, second)] == ["retry", "failed"]  # type: ignore[index]
    assert [s.attributes["bgjobs.job.attempt"] for s in (first, second)] == [1, 2]  # type: ignore[index]
    for span in (first, second):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: cannot resize a corrupt image"
        assert span.attributes["error.type"] == "ValueError"  # type: ignore[index]
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "ValueError"  # type: ignore[index]


def test_poison_input_marks_the_run_as_an_error(
    traced: Callable[..., bgjobs.BgJobs], store: Store, exporter: InMemorySpanExporter
) -> None:
    bg = traced()
    store.insert_jobs([NewJob(queue="media", name="resize", raw_payload="{", max_attempts=1)])
    bg.start()
    wait_until(lambda: spans(exporter, "process resize"), 10, "the run's span")
    (run,) = spans(exporter, "process resize")
    assert run.attributes["bgjobs.job.outcome"] == "discarded"  # type: ignore[index]
    assert run.attributes["error.type"] == "PayloadError"  # type: ignore[index]
    assert run.status.status_code is StatusCode.ERROR and not run.links  # no context stored


def test_enqueue_many_is_one_send_span_whose_context_every_job_carries(
    traced: Callable[..., bgjobs.BgJobs], exporter: InMemorySpanExporter
) -> None:
    bg = traced()
    jobs = bg.enqueue_many([("resize", {"n": n}) for n in range(3)])
    (send,) = spans(exporter, "send resize")
    assert send.attributes["messaging.batch.message_count"] == 3  # type: ignore[index]
    assert "messaging.message.id" not in (send.attributes or {})
    span_id = f"{send.context.span_id:016x}"
    assert all(span_id in job.meta["traceparent"] for job in jobs)
    stored = bg.get_job(jobs[0].id)
    assert stored is not None and stored.meta == jobs[0].meta


def test_without_a_configured_sdk_nothing_is_stored(store: Store) -> None:
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue("media").with_worker(bgjobs.worker("resize", lambda job: None))
    )
    plain = spec.build().enqueue("resize")
    noop = otel.instrument(spec, tracer_provider=NoOpTracerProvider()).build().enqueue("resize")
    assert plain.raw_meta is None and noop.raw_meta is None
    assert store.get_job(noop.id).raw_meta is None  # type: ignore[union-attr]


def test_instrument_refuses_what_it_cannot_trace(store: Store) -> None:
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue("media").with_worker(bgjobs.worker("resize", lambda job: None))
    )
    with pytest.raises(ConfigError, match="enqueue_context must be 'link'"):
        otel.instrument(spec, enqueue_context="child")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"instrument before \.build\(\)"):
        otel.instrument(spec.build())  # type: ignore[type-var]


# Two processes ---------------------------------------------------------------------------------
def exported(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["link", "parent"])
def test_a_trace_is_carried_to_a_worker_in_another_process(
    database_url: str, tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter,
    mode: str,
) -> None:  # fmt: skip
    """This process enqueues inside a request span; a worker process (its own SDK, exporting to
    a file) runs the jobs. Its run spans refer to this process' send spans by their ids."""
    spans_file = tmp_path / "worker-spans.jsonl"
    bg = otel.instrument(
        bgjobs.new(database_url).with_queue(
            bgjobs.queue("work").with_worker(
                bgjobs.worker("work", lambda job: None).with_max_attempts(1)
            )
        ),
        tracer_provider=provider,
    ).build()  # this process only enqueues: it is never started
    with provider.get_tracer("web").start_as_current_span("POST /upload"):
        ok = bg.enqueue("work", {"image": 1})
        bad = bg.enqueue("work", {"fail": True})
    bg.store.close()
    worker = start_ready(
        "tests.support.otel_node", database_url, str(spans_file), "--enqueue-context", mode
    )
    try:
        wait_until(
            lambda: len([s for s in exported(spans_file) if s["name"] == "process work"]) == 2,
            60,
            "the worker's two run spans",
        )
    finally:
        assert stop_node(worker) == 0
    (request,) = spans(exporter, "POST /upload")
    sends = {int(s.attributes["bgjobs.job.id"]): s for s in spans(exporter, "send work")}  # type: ignore[index]
    runs = {
        s["attributes"]["bgjobs.job.id"]: s
        for s in exported(spans_file)
        if s["name"] == "process work"
    }
    inner = {s["parent_id"]: s for s in exported(spans_file) if s["name"] == "resize"}
    for job in (ok, bad):
        send, run = sends[job.id], runs[job.id]
        assert send.parent is not None and send.parent.span_id == request.context.span_id
        send_trace = f"0x{send.context.trace_id:032x}"
        send_span = f"0x{send.context.span_id:016x}"
        assert run["kind"] == "SpanKind.CONSUMER"
        if mode == "link":
            assert run["parent_id"] is None
            assert run["context"]["trace_id"] != send_trace
            assert [
                (link["context"]["trace_id"], link["context"]["span_id"]) for link in run["links"]
            ] == [(send_trace, send_span)]
        else:
            assert run["parent_id"] == send_span and run["context"]["trace_id"] == send_trace
            assert run["links"] == []
        assert run["context"]["span_id"] in inner  # the handler's span is the run's child
    assert runs[ok.id]["attributes"]["bgjobs.job.outcome"] == "succeeded"
    assert runs[ok.id]["status"]["status_code"] == "UNSET"
    failed = runs[bad.id]
    assert failed["attributes"]["bgjobs.job.outcome"] == "failed"
    assert failed["status"]["status_code"] == "ERROR"
    assert failed["events"][0]["attributes"]["exception.message"] == "cannot resize a corrupt image"
