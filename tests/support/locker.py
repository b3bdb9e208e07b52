"""Hold a SQLite database's write lock from another process.

    python -m tests.support.locker PATH

Takes ``BEGIN EXCLUSIVE`` on the file, prints "locked", and holds the lock until its stdin
closes (or it is killed): what a backup tool or a stuck writer in another process does.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    conn.execute("ROLLBACK")


def hold_lock(path: Path) -> subprocess.Popen[str]:
    """Start a process holding ``path``'s write lock; returns once the lock is held. Close its
    stdin (or kill it) to let go."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.locker", str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "locked":
        proc.kill()
        raise AssertionError(f"the locker did not take the lock: {line!r}")
    return proc


def let_go(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
