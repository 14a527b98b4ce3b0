"""When the reconcile re-runs a package version whose latest verdict is not checked in full: the backoff.

The schedule is derived from what S3 already records, never from memory: the version's stored verdicts
(``reports/<key>/<token>/``) give the attempt count (one verdict per run) and the time of the last one
(its ``LastModified``). A restarted bridge therefore computes the same next try as the one that stopped:
no reset to the first, short delay (hammering clamd while it is down) and no retry forgotten.

``delay(n)``: seconds after the n-th incomplete verdict of a version (n = 0 for its first verdict):
``first * 2**n``, at most ``cap``. Defaults 60 s -> 1 h (``PROOFCHECK_RETRY_FIRST``/``_MAX``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flows.settings import PipelineSettings


@dataclass(frozen=True)
class Backoff:
    first: float = 60.0
    cap: float = 3600.0

    @classmethod
    def of(cls, settings: PipelineSettings) -> Backoff:
        return cls(settings.retry_first, settings.retry_max)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after verdict number ``attempt`` (0-based) of a version before the next run."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        if attempt >= 62:  # 2**62 s is past any cap; keeps the float product finite and cheap
            return self.cap
        return float(min(self.cap, self.first * 2**attempt))

    def next_try(self, last: float, attempt: int) -> float:
        """Epoch seconds of the next run, from the epoch time ``last`` of the version's latest verdict."""
        return last + self.delay(attempt)

    def next_try_iso(self, last: datetime, attempt: int) -> str:
        return (last.astimezone(UTC) + timedelta(seconds=self.delay(attempt))).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RetryState:
    """What the reconcile remembers between listings about a version that is not checked in full.

    Only a cache of what S3 says (``verdicts`` stored, ``next_try`` derived from the latest one's time):
    losing it costs one listing and one read of the latest verdict, never a premature run.
    """

    verdicts: int
    next_try: float
