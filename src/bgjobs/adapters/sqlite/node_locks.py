"""Liveness lock files next to a SQLite database: how a node shows that its process is alive.

Each running node holds an exclusive ``flock`` on its own file in ``<database>.nodes/`` for as
long as its process lives. The kernel drops the lock when the process ends, however it ends
(SIGKILL, OOM kill, segfault), so any other process that gets the lock knows at once that the
node is gone. flock locks belong to the open file description, so a probe through another
``open`` sees the conflict even inside the node's own process. SQLite is one host by nature;
where flock is missing (Windows) nodes are watched by their lease only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_KEY = re.compile(r"^[A-Za-z0-9._-]{1,200}\.lock$")
ORPHAN_AGE = 60.0  # seconds: an unregistered lock file this old belongs to no starting node
SWEEP_EVERY = 60.0


class LockFiles:
    """The lock files of the nodes of one database."""

    def __init__(self, database: Path) -> None:
        self.directory = Path(f"{database}.nodes")
        self._next_sweep = 0.0

    def hold(self, node_id: str) -> NodeLock:
        """Create and lock this node's file; never raises (a failure leaves the node on its
        lease alone, and ``problem`` says why)."""
        if fcntl is None:  # pragma: no cover - Windows
            return NodeLock(None, None, "file locks (flock) are not available on this platform")
        try:
            self.directory.mkdir(exist_ok=True)
            key = f"{_SAFE.sub('_', node_id)[:120]}-{_digest(node_id)}.lock"
            path = self.directory / key
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, f"{node_id}\n".encode())
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            return NodeLock(None, None, f"cannot lock a file in {self.directory}: {exc}")
        return NodeLock(key, (fd, path), None)

    def is_free(self, key: str, *, remove: bool = False) -> bool:
        """Whether the node with this lock file is provably gone: the file is there and its lock
        is free. ``remove`` deletes the file of such a node (its row is being removed). A missing
        or unexpected file proves nothing."""
        if fcntl is None or not _KEY.match(key):
            return False
        path = self.directory / key
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        try:
            if remove:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)
        return True

    def sweep(self, registered: set[str]) -> None:
        """Now and then, delete free lock files of no registered node (a node that died before
        it registered, or whose rescue was rolled back). A young file may belong to a node
        that is starting: it is locked, but not registered yet."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY
        cutoff = time.time() - ORPHAN_AGE
        for path in self.directory.glob("*.lock"):
            try:
                old = path.stat().st_mtime < cutoff
            except OSError:
                continue
            if old and path.name not in registered:
                self.is_free(path.name, remove=True)


@dataclass
class NodeLock:
    """A held lock file (``Store.hold_node_lock``): ``key`` is the file's name."""

    _key: str | None
    _held: tuple[int, Path] | None
    _problem: str | None

    @property
    def key(self) -> str | None:
        return self._key

    @property
    def problem(self) -> str | None:
        return self._problem

    def release(self) -> None:
        if self._held is None:
            return
        fd, path = self._held
        self._held, self._key = None, None
        with contextlib.suppress(OSError):  # before the lock goes: no one finds a free file
            path.unlink(missing_ok=True)
        os.close(fd)


def _digest(node_id: str) -> str:
    return hashlib.sha256(node_id.encode()).hexdigest()[:12]
