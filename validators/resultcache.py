"""Per-file check results kept on disk, keyed by (file sha256, check, versions of what the check reads).

Re-validation after a value-set change re-runs only the checks that read the changed part: an
antivirus scan or an OCR pass over a screenshot does not depend on J66, so its result for the same
bytes is taken from here. ``CachingValidator`` wraps a validator without the engine knowing.

What a check reads is its own declaration (``Validator.reads_ruleset`` and ``reads_settings``,
``validators/base.py``), looked up by check name in the registry for the names stored verdicts hold. A
check that declares no ruleset components depends on the whole ruleset version (re-run whenever it
changes: "all of it if unsure"), one that declares no settings on every setting that can change a
result. Every key also holds the engine version. The antivirus signature database is deliberately not
in its key (docs/architecture.md §3.1: a signature update does not by itself re-validate stored packages).

Never cached: a check that did not run (timeouts, crashes, scanner down: worth retrying), results
carrying ``system.*`` findings, and results whose embedded children are over ``max_child_bytes``.
Entries are JSON files written atomically (several worker processes may share the folder); children's
bytes are stored once by their sha256 next to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from validators import __version__
from validators.base import CheckContext, CheckResult, Embedded, ProofFile, Validator
from validators.model import CheckState, Finding
from validators.registry import declaration_of, declared
from validators.settings import EngineSettings

BY_NAME = "by name"  # look a check's declaration up in the registry by its name
MAX_CHILD_BYTES = 16 * 1024 * 1024
MAX_ENTRY_BYTES = 8 * 1024 * 1024


def expand(reads: tuple[str, ...] | None, components: Mapping[str, str]) -> tuple[str, ...] | None:
    """Declared component names with ``PREFIX*`` expanded over ``components``; None stays None (everything)."""
    if reads is None:
        return None
    names: list[str] = []
    for name in reads:
        if name.endswith("*"):
            names.extend(sorted(c for c in components if c.startswith(name[:-1])))
        else:
            names.append(name)
    return tuple(names)


def depends_on(check: str, components: Mapping[str, str]) -> tuple[str, ...] | None:
    """The component names ``check`` reads (expanded), () for none, None when unknown (= everything)."""
    return expand(declared(check, "reads_ruleset"), components)


def affected(check: str, changed: set[str] | None, components: Mapping[str, str]) -> bool:
    """Whether a change of the ``changed`` components (None: unknown) may change ``check``'s result."""
    if changed is None:
        return True
    needs = depends_on(check, {**components, **dict.fromkeys(changed, "")})
    if needs is None:
        return bool(changed)
    return any(name in changed for name in needs)


def settings_digest(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_key(
    file_sha256: str,
    check: str,
    ruleset_version: str,
    components: Mapping[str, str],
    settings: Mapping[str, Any],
    engine_version: str = __version__,
    *,
    reads_ruleset: tuple[str, ...] | str | None = BY_NAME,
) -> str:
    """The key of one result; ``settings``: the values of the settings it reads (they change the key).

    ``reads_ruleset``: the check's declaration, by default looked up by its name.
    """
    if isinstance(reads_ruleset, str):  # BY_NAME
        reads_ruleset = declared(check, "reads_ruleset")
    needs = expand(reads_ruleset, components)
    versions = [f"ruleset={ruleset_version}"] if needs is None else [f"{n}={components.get(n, '')}" for n in needs]
    text = "\0".join([file_sha256, check, engine_version, settings_digest(settings), *versions])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


class ResultCache:
    """A folder of cached check results (``entries/ab/<key>.json``, ``blobs/ab/<sha256>``)."""

    def __init__(self, root: Path, *, max_child_bytes: int = MAX_CHILD_BYTES) -> None:
        self.root = root
        self.max_child_bytes = max_child_bytes
        self.stats = CacheStats()

    def _entry(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / f"{key}.json"

    def _blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def get(self, key: str) -> CheckResult | None:
        path = self._entry(key)
        try:
            if path.stat().st_size > MAX_ENTRY_BYTES:
                return None
            entry = json.loads(path.read_bytes())
            children = []
            for child in entry.get("children", []):
                data = self._blob(child["sha256"]).read_bytes()
                if hashlib.sha256(data).hexdigest() != child["sha256"]:
                    return None  # a damaged blob: run the check again
                children.append(Embedded(name=child["name"], data=data, origin=child["origin"]))
            return CheckResult(
                # An entry written before findings kept their parameters is a miss (KeyError): run again.
                findings=[Finding.from_dict(f) for f in entry["findings"]],
                state=CheckState(entry["state"]),
                detail=entry.get("detail"),
                children=children,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: a miss, never an error

    def put(self, key: str, result: CheckResult) -> bool:
        """Keep ``result`` if it may be reused (see the module docstring); True if kept."""
        if result.state is CheckState.NOT_RUN or any(f.is_system for f in result.findings):
            return False
        if sum(len(c.data) for c in result.children) > self.max_child_bytes:
            return False
        children = []
        for child in result.children:
            sha256 = hashlib.sha256(child.data).hexdigest()
            if not self._blob(sha256).is_file():
                self._write(self._blob(sha256), child.data)
            children.append({"name": child.name, "origin": child.origin, "sha256": sha256})
        entry = {
            "state": result.state.value,
            "detail": result.detail,
            "findings": [f.to_dict() for f in result.findings],
            "children": children,
        }
        data = json.dumps(entry, ensure_ascii=False).encode("utf-8")
        if len(data) > MAX_ENTRY_BYTES:
            return False
        self._write(self._entry(key), data)
        return True


class CachingValidator(Validator):
    """``inner`` with its results taken from, and kept in, a ResultCache."""

    rules: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        inner: Validator,
        cache: ResultCache,
        *,
        ruleset_version: str,
        components: Mapping[str, str],
        settings: Mapping[str, Any],
        read: bool = True,
    ) -> None:
        self.inner = inner
        # read=False: fill only. The intake of a new upload always checks afresh (a newer signature
        # database, a better OCR) and only leaves its results for a later re-validation to reuse.
        self.read = read
        self.cache = cache
        self.name = inner.name  # type: ignore[misc]
        self.rules = inner.rules  # type: ignore[misc]
        self.timeout = inner.timeout  # type: ignore[misc]
        self.overlaps = inner.overlaps  # type: ignore[misc]  # the antivirus still runs beside the others
        self.ruleset_version = ruleset_version
        self.components_in_force = dict(components)
        # Only what this check declares it reads, and only what can change a result, is in its keys.
        self.reads_settings = declaration_of(inner, "reads_settings")  # type: ignore[misc]
        self.reads_ruleset = declaration_of(inner, "reads_ruleset")  # type: ignore[misc]
        self.settings_read = EngineSettings.coerce(settings).digest_values(self.reads_settings)

    def applies_to(self, file: ProofFile) -> bool:
        return self.inner.applies_to(file)

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        key = cache_key(
            file.sha256,
            self.name,
            self.ruleset_version,
            self.components_in_force,
            self.settings_read,
            reads_ruleset=self.reads_ruleset,
        )
        cached = self.cache.get(key) if self.read else None
        if cached is not None:
            self.cache.stats.add("hits")
            return cached
        self.cache.stats.add("misses")
        result = self.inner.check(file, ctx)
        if isinstance(result, CheckResult) and self.cache.put(key, result):
            self.cache.stats.add("stored")
        return result

    def components(self) -> Mapping[str, str]:
        return self.inner.components()

    def antivirus_provenance(self) -> Mapping[str, str]:
        return self.inner.antivirus_provenance()


def with_cache(
    validators: Sequence[Validator],
    cache: ResultCache,
    *,
    ruleset_version: str,
    components: Mapping[str, str],
    settings: Mapping[str, Any],
    read: bool = True,
) -> list[Validator]:
    typed = EngineSettings.coerce(settings)
    return [
        CachingValidator(v, cache, ruleset_version=ruleset_version, components=components, settings=typed, read=read)
        for v in validators
    ]
