"""Downloads: exported candidates as .tar.gz archives, built by a worker, cached on disk with a size cap.

The web process never builds a model (that takes seconds of CPU and a model's worth of memory): the
first request for a trial's archive sends the task `devicefit.export_archive` to a worker and is
answered 202 "preparing"; the worker writes the archive into the artifact directory (shared with the
workers); later requests are served from there. Archives are addressed by job and trial number, which
never change (a front index does while a search runs). When the directory grows over its cap, the
archives used least recently are deleted.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

RESEND_AFTER_S = 600.0  # a build asked for this long ago and still missing: its worker died, ask again


class Archives:
    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._asked: dict[Path, float] = {}  # archive -> when its build was last asked for
        self._lock = threading.Lock()

    def path(self, job_id: str, trial: int, fmt: str = "devicefit") -> Path:
        return (self.root / job_id / f"devicefit-{job_id}-trial{trial}-{fmt}.tar.gz").resolve()

    def ready(self, path: Path) -> bool:
        if not path.is_file():
            return False
        os.utime(path)  # used now: the last to be evicted
        with self._lock:
            self._asked.pop(path, None)
        return True

    def should_ask(self, path: Path) -> bool:
        """Whether to send a build for this archive now (not while one is on its way)."""
        now = time.monotonic()
        with self._lock:
            if now - self._asked.get(path, -RESEND_AFTER_S) < RESEND_AFTER_S:
                return False
            self._asked[path] = now
            return True

    @staticmethod
    def failure_file(path: Path) -> Path:
        """Where a worker that could not build ``path`` says why (beside it: the workers share the directory)."""
        return path.with_name(path.name + ".error")

    def failure(self, path: Path) -> str | None:
        """Why the worker could not build this archive (e.g. a format that cannot express the candidate)."""
        try:
            return self.failure_file(path).read_text().strip() or "the worker could not build it"
        except FileNotFoundError:
            return None

    def forget(self, path: Path) -> None:
        with self._lock:
            self._asked.pop(path, None)

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Delete the least recently used archives until the directory is within max_bytes."""
        archives = []
        for path in self.root.glob("*/*.tar.gz"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            archives.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in archives)
        removed = []
        for _, size, path in sorted(archives):
            if total <= self.max_bytes:
                break
            if keep is not None and path.resolve() == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            removed.append(path)
        return removed
