"""The integrations are extras: the core and the CLI never import their packages."""

from __future__ import annotations

import subprocess
import sys


def test_importing_bgjobs_and_its_cli_loads_no_integration_package() -> None:
    code = (
        "import sys, bgjobs, bgjobs.cli.main\n"
        "loaded = sorted(m for m in sys.modules\n"
        "                if m.split('.')[0] in ('opentelemetry', 'prometheus_client')\n"
        "                or m.startswith('bgjobs.integrations'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
