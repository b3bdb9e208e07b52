"""A bgjobs node with OpenTelemetry tracing in its own OS process, for the two-process trace test.

    python -m tests.support.otel_node URL SPANS_FILE [--enqueue-context link|parent]

Runs queue "work" (worker "work": opens a span "resize" inside the run; {"fail": true} raises).
Every finished span is written at once to SPANS_FILE as one JSON line (the SDK's own span JSON),
so the test reads what this process exported. Prints "ready" once started; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import bgjobs
from bgjobs.events import RuntimeStarted
from bgjobs.integrations import otel


def resize_handler(provider: TracerProvider) -> Callable[[bgjobs.Job], None]:
    """A handler that opens a span of its own; ``{"fail": true}`` raises."""
    tracer = provider.get_tracer("app")

    def resize(job: bgjobs.Job) -> None:
        with tracer.start_as_current_span("resize"):
            payload = job.payload
            if isinstance(payload, dict) and payload.get("fail"):
                raise ValueError("cannot resize a corrupt image")

    return resize


def one_line(span: ReadableSpan) -> str:
    return json.dumps(json.loads(span.to_json())) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("spans_file")
    parser.add_argument("--enqueue-context", default="link")
    args = parser.parse_args()

    provider = TracerProvider()
    out = open(args.spans_file, "a", buffering=1)  # noqa: SIM115 - open for the process' life
    provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=one_line))
    )
    spec = bgjobs.new(bgjobs.open_store(args.url)).with_queue(
        bgjobs.queue("work").with_worker(
            bgjobs.worker("work", resize_handler(provider)).with_max_attempts(1)
        )
    )
    bg = otel.instrument(
        spec, tracer_provider=provider, enqueue_context=args.enqueue_context
    ).build()
    # "ready" once started; bg.run() owns SIGTERM (installed before it starts) and drains.
    bg.add_listener(lambda e: print("ready", flush=True) if isinstance(e, RuntimeStarted) else None)
    bg.run()


if __name__ == "__main__":
    main()
