"""A counting semaphore shared by the processes of one machine (flow runs are separate processes).

Prefect's global concurrency limits are correct but slow to hand off under contention (docs/domain.md §6),
so the engine runs (which hold clamd and the CPU) take one of N lock files instead: the kernel releases
a slot the moment its holder exits, even if it was killed.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SlotTimeoutError(TimeoutError):
    """No slot became free in time."""


@contextmanager
def slot(directory: Path, slots: int, timeout: float = 3600.0, poll: float = 0.05) -> Iterator[int]:
    """Hold one of ``slots`` slots under ``directory`` for the duration of the block."""
    directory.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for index in range(slots):
            fd = os.open(directory / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield index
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise SlotTimeoutError(f"no free check slot after {timeout:.0f} s")
        time.sleep(poll)
