"""examples/outbox.py runs as documented: the user and the welcome mail, or neither."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tests.conftest import PG_URL

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "outbox.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("outbox_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_outbox_example(backend: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    example = load_example()
    if backend == "sqlite":
        outcome = example.main(f"sqlite:///{tmp_path / 'outbox.db'}")
    else:
        outcome = example.main(PG_URL, schema=request.getfixturevalue("pg_schema"))
    assert outcome == {"users": ["ada@example.com"], "jobs": 1, "sent": [1]}, (
        "Ada and her mail; neither Bob nor a mail for him"
    )
