"""A bgjobs node with OpenTelemetry tracing in its own OS process, for the two-process trace test.

    python -m tests.support.otel_node URL SPANS_FILE [--enqueue-context link|parent]

Runs queue "work" (worker "work": opens a span "resize" inside the run; {"fail": true} raises).
Every finished span is written at once to SPANS_FILE as one JSON line (the SDK's own span JSON),
so the test reads what this process exported. Prints "ready" once started; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import bgjobs
from bgjobs.integrations import otel


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
    tracer = provider.get_tracer("otel-node")

    def work(job: bgjobs.Job) -> None:
        with tracer.start_as_current_span("resize"):
            payload = job.payload
            if isinstance(payload, dict) and payload.get("fail"):
                raise ValueError("cannot resize a corrupt image")

    spec = bgjobs.new(bgjobs.open_store(args.url)).with_queue(
        bgjobs.queue("work").with_worker(bgjobs.worker("work", work).with_max_attempts(1))
    )
    bg = otel.instrument(
        spec, tracer_provider=provider, enqueue_context=args.enqueue_context
    ).build()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bg.start()
    print("ready", flush=True)
    while not stop.wait(0.1):
        pass
    bg.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
