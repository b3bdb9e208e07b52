"""Optional integrations, each an extra of its own, imported only by code that uses it:

- ``bgjobs.integrations.otel`` (``pip install bgjobs[otel]``): OpenTelemetry traces carried from
  the enqueue to the job's run, in any process;
- ``bgjobs.integrations.prometheus`` (``pip install bgjobs[prometheus]``): Prometheus metrics
  (``bgjobs run --metrics-port``).

``import bgjobs`` never imports them or their packages.
"""
