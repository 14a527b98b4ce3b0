"""Obtain a CDA ruleset the way an operator would, for a first run (``make demo``): the ANS's public
repository over HTTPS, then a tree named by ``$PROOFCHECK_RULESET_SOURCE``, then the ANS tree beside the
clone. The first source that syncs is used; a version synced from the repository less than a day ago is
used without downloading again. When every source fails, whatever the store already holds stays in
force; with nothing at all, CDA documents get ``system.ruleset-missing`` (never a pass). The outcome is
one line that names the ruleset, and what was tried.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from validators.cda.store import RulesetStore, RulesetVersion
from validators.cda.sync import DEFAULT_URL, SyncError, sync
from validators.settings import EngineSettings

SOURCE_ENV = EngineSettings.variable_of("ruleset_source")
MAX_AGE = timedelta(days=1)
MAX_REASON = 140


@dataclass(frozen=True)
class Source:
    label: str  # how the line names it
    location: str | None  # folder or URL; None: not configured (said, not tried)


@dataclass(frozen=True)
class Obtained:
    version: RulesetVersion | None
    line: str  # one line for the operator: the ruleset used (or none) and why

    @property
    def name(self) -> str:
        return self.version.version if self.version is not None else "none"


def default_sources(beside_clone: Path | None, settings: EngineSettings | None = None) -> list[Source]:
    """The ANS repository, the ``ruleset_source`` setting, the ANS tree beside the clone, in that order."""
    configured = EngineSettings.coerce(settings).ruleset_source
    beside = str(beside_clone) if beside_clone is not None and beside_clone.is_dir() else None
    return [
        Source("the ANS repository", DEFAULT_URL),
        Source(SOURCE_ENV, configured),
        Source("the ANS tree beside the clone", beside),
    ]


def _recent(store: RulesetStore, location: str, max_age: timedelta) -> RulesetVersion | None:
    now = datetime.now(UTC)
    for version in reversed(store.versions()):
        if version.manifest.get("source") != location:
            continue
        try:
            imported = datetime.fromisoformat(str(version.manifest.get("imported_at")))
        except ValueError:
            continue
        if now - imported <= max_age:
            return version
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def obtain(
    store: RulesetStore,
    sources: Iterable[Source],
    *,
    timeout: float = 5.0,
    total_timeout: float = 120.0,
    only: Iterable[str] | None = None,
    max_age: timedelta = MAX_AGE,
) -> Obtained:
    """Sync from the first source that works into ``store``; ``only`` as for ``sync`` (compile now)."""
    tried: list[str] = []
    names = list(only) if only is not None else None
    for source in sources:
        if source.location is None:
            tried.append(f"{source.label}: not set" if source.label == SOURCE_ENV else f"{source.label}: absent")
            continue
        is_url = source.location.startswith(("http://", "https://"))
        cached = _recent(store, source.location, max_age) if is_url else None
        if cached is not None:
            return Obtained(cached, f"ruleset {cached.version} from {source.label} (cached, synced "
                                    f"{cached.manifest.get('imported_at')})")
        started = time.monotonic()
        try:
            result = sync(source.location, store, only=names, timeout=timeout, total_timeout=total_timeout)
        except (SyncError, OSError) as exc:  # OSError: a source folder that cannot be read, a full disk
            # The label already says where: the URL or path is not repeated in the one line.
            reason = (str(exc) or type(exc).__name__).replace(f" {source.location}", "")
            tried.append(f"{source.label}: {_short(reason)}")
            continue
        how = "already synced" if result.reused else f"synced in {time.monotonic() - started:.0f} s"
        after = f" (after {'; '.join(tried)})" if tried else ""
        return Obtained(result.version, f"ruleset {result.version.version} from {source.label}, {how}{after}")
    current = store.latest()
    if current is not None:
        return Obtained(current, f"ruleset {current.version} kept in force ({'; '.join(tried)})")
    return Obtained(
        None,
        f"no CDA ruleset ({'; '.join(tried)}): the CDA schema and Schematron checks will report themselves "
        "not run, so CDA packages come out error",
    )
