"""Value-set sync: a new J66 (or another JDV the checks read) becomes a new ruleset version in the store.

The new version is the newest synced ruleset with the changed value sets replaced: its tree is the
base tree linked file by file (compiled stylesheets copied, since they may be rewritten in place), J66
written to ``tree/valuesets/JDV_J66-TypeCode-DMP.xml`` and any other value set over its file in
``tree/jeuxDeValeurs`` (found by name), always as SVS XML. Its manifest keeps the base's and adds
``kind: valuesets``, ``base``, ``valuesets`` (per value set: version, OID, content digest, source) and
``changed``; its components name each value set's declared version, so that a verdict says which J66
it used and re-validation knows what changed.

Everything is fetched and checked before anything is written; a second sync while one runs is refused
(a lock in the store); the version in force is never touched. Without any synced CDA ruleset there is
nothing to base a version on: the sync refuses and J66 stays the snapshot shipped in ``jdv/``.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from validators.cda import valuesets
from validators.cda.store import TREE, RulesetStore, RulesetVersion, version_name
from validators.cda.valuesets import J66_NAME, J66_OID, ValueSet

J66_RELATIVE = f"valuesets/{J66_NAME}.xml"
DEFAULT_NAMES: tuple[str, ...] = (J66_NAME,)
LOCK_FILE = ".valuesets-sync.lock"
COMPONENT_PREFIX = "JDV:"
FETCH_TIMEOUT = 30.0
_ID_ATTR = re.compile(rb"<(?:\w+:)?ValueSet\b[^>]*?\bid=\"([^\"]+)\"")


class ValueSetSyncError(RuntimeError):
    """The sync did not produce a version; the ruleset in force is unchanged. Says why."""


@dataclass(frozen=True)
class ValueSetChange:
    name: str
    oid: str
    old_version: str | None
    new_version: str
    added: int
    removed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "oid": self.oid,
            "from": self.old_version,
            "to": self.new_version,
            "added": self.added,
            "removed": self.removed,
        }


@dataclass(frozen=True)
class ValueSetSyncResult:
    outcome: str  # "new" or "unchanged"
    version: RulesetVersion  # the version in force after the sync
    previous: str  # the version in force before it
    changes: tuple[ValueSetChange, ...]
    seconds: float


# -- the J66 in force -----------------------------------------------------------------------------------

_lookback: dict[str, str | None] = {}


def j66_file(version: RulesetVersion) -> Path:
    return version.tree / J66_RELATIVE


def j66_in_force(version: RulesetVersion | None, snapshot: Path | None = None) -> ValueSet:
    """J66 as of ``version``: its own synced copy, else the newest one synced before it, else the snapshot
    (the ``j66`` setting; None: as the environment says, else ``jdv/``).

    A ruleset imported by ``proofcheck rulesets sync`` after a value-set sync has no J66 of its own;
    the last synced one stays in force rather than falling back to an older snapshot.
    """
    if version is None:
        return valuesets.j66(snapshot)
    key = str(version.path)
    if key not in _lookback:  # published versions never change: one look per version and process
        own = j66_file(version)
        if own.is_file():
            found: Path | None = own
        else:
            older = [v for v in RulesetStore(version.path.parent).versions() if v.version < version.version]
            found = next((j66_file(v) for v in reversed(older) if j66_file(v).is_file()), None)
        _lookback[key] = str(found) if found is not None else None
    path = _lookback[key]
    return valuesets.j66(Path(path) if path else snapshot)


# -- sync -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def sync_lock(store: RulesetStore) -> Iterator[None]:
    """One value-set sync per store at a time (across processes); a second one is refused at once."""
    store.root.mkdir(parents=True, exist_ok=True)
    with (store.root / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueSetSyncError("another value-set sync is running on this store") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _normal_name(name: str) -> str:
    return re.sub(r"[-_]", "", name.removesuffix(".xml")).casefold()


def tree_valueset_file(tree: Path, name: str) -> Path | None:
    """The file of ``name`` under ``tree`` (J66 in ``valuesets/``, others in ``jeuxDeValeurs/``)."""
    if name == J66_NAME:
        path = tree / J66_RELATIVE
        return path if path.is_file() else None
    wanted = _normal_name(name)
    folder = tree / "jeuxDeValeurs"
    if not folder.is_dir():
        return None
    # Publication names and file names differ in '-' versus '_' (JDV_J07-XdsTypeCode-CISIS).
    return next((p for p in sorted(folder.glob("*.xml")) if _normal_name(p.name) == wanted), None)


def _current(base: RulesetVersion, name: str) -> ValueSet | None:
    if name == J66_NAME:
        return j66_in_force(base)
    path = tree_valueset_file(base.tree, name)
    if path is None:
        return None
    try:
        return valuesets.load(path)
    except (OSError, valuesets.ValueSetError):
        return None  # a broken file in the tree is replaced by a good one, never compared with


def _link_tree(origin: Path, target: Path) -> None:
    """Hard links for what is only read; copies for compiled stylesheets (optimised in place later)."""
    for folder, _dirs, files in os.walk(origin):
        relative = Path(folder).relative_to(origin)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            source = Path(folder) / name
            destination = target / relative / name
            if source.is_symlink():
                continue
            if source.suffix == ".xsl":
                shutil.copy2(source, destination)
                continue
            try:
                os.link(source, destination)
            except OSError:
                shutil.copy2(source, destination)


def _imported_at(base: RulesetVersion) -> datetime:
    """Now, but strictly after the base's import second: versions must sort in the order they were made."""
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        base_time = datetime.strptime(base.version[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return now
    return max(now, base_time + timedelta(seconds=1))


def _write_over(path: Path, data: bytes) -> None:
    """Replace a (possibly hard-linked) file without touching the base version's copy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    path.write_bytes(data)
    path.chmod(0o644)


def _manifest(
    base: RulesetVersion,
    digest: str,
    imported_at: datetime,
    source: str,
    entries: dict[str, dict[str, Any]],
    changes: Sequence[ValueSetChange],
) -> dict[str, Any]:
    manifest = copy.deepcopy(base.manifest)
    components = dict(base.components)
    for change in changes:
        key = "J66" if change.name == J66_NAME else COMPONENT_PREFIX + change.name
        components[key] = change.new_version
    synced = dict(manifest.get("valuesets") or {})
    synced.update(entries)
    manifest.update(
        version=version_name(digest, imported_at),
        digest=digest,
        imported_at=imported_at.isoformat(timespec="seconds"),
        kind="valuesets",
        base=base.version,
        valueset_source=source,
        components=components,
        valuesets=synced,
        changed=[c.to_dict() for c in changes],
    )
    return manifest


def sync_valuesets(
    source: str,
    store: RulesetStore | None = None,
    *,
    names: Sequence[str] = DEFAULT_NAMES,
    timeout: float = FETCH_TIMEOUT,
) -> ValueSetSyncResult:
    """Fetch ``names`` from ``source``; if any changed, publish a new ruleset version holding them.

    Raises ValueSetSyncError (or ValueSetSourceError) when nothing may be published: the store is then
    exactly as it was.
    """
    # Imported here: validators.valueset_source reads validators.cda.valuesets, whose package imports us.
    from validators import valueset_source as source_mod

    started = time.monotonic()
    store = store or RulesetStore()
    with sync_lock(store):
        base = store.latest()
        if base is None:
            raise ValueSetSyncError(
                "no CDA ruleset synced yet (run `proofcheck rulesets sync` first); J66 stays the shipped snapshot"
            )
        accepted: list[tuple[Any, Any, ValueSet | None]] = []
        for name in dict.fromkeys(names):
            fetched = source_mod.fetch(source, name, timeout=timeout)
            current = _current(base, name)
            expected = J66_OID if name == J66_NAME else (current.oid if current is not None else None)
            accepted.append((fetched, source_mod.accept(fetched, current, expected_oid=expected), current))
        changes = tuple(
            ValueSetChange(
                name=fetched.name,
                oid=decision.valueset.oid,
                old_version=current.version if current is not None else None,
                new_version=decision.valueset.version,
                added=len(set(decision.valueset.concepts) - set(current.concepts if current else {})),
                removed=len(set(current.concepts if current else {}) - set(decision.valueset.concepts)),
            )
            for fetched, decision, current in accepted
            if decision.changed
        )
        if not changes:
            return ValueSetSyncResult("unchanged", base, base.version, (), time.monotonic() - started)
        digest = hashlib.sha256(
            "\0".join([base.digest, *sorted(f"{f.name}={d.digest}" for f, d, _ in accepted)]).encode()
        ).hexdigest()
        staging = store.new_staging()
        try:
            _link_tree(base.tree, staging / TREE)
            entries: dict[str, dict[str, Any]] = {}
            for fetched, decision, _current_set in accepted:
                if not decision.changed:
                    continue
                target = tree_valueset_file(staging / TREE, fetched.name)
                if target is None:
                    target = staging / TREE / "valuesets" / f"{fetched.name}.xml"
                _write_over(target, source_mod.to_svs(decision.valueset))
                entries[fetched.name] = {
                    "version": decision.valueset.version,
                    "oid": decision.valueset.oid,
                    "digest": decision.digest,
                    "concepts": len(decision.valueset.concepts),
                    "file": target.relative_to(staging / TREE).as_posix(),
                    "fetched_from": fetched.location,
                    "fetched_sha256": fetched.sha256,
                }
            manifest = _manifest(base, digest, _imported_at(base), source, entries, changes)
            version = store.publish(staging, manifest)
        except BaseException:
            store.discard(staging)
            raise
    return ValueSetSyncResult("new", version, base.version, changes, time.monotonic() - started)


def j66_of(handle: Any, store_root: Path | None = None, snapshot: Path | None = None) -> ValueSet:
    """J66 for a check: that of the loaded ruleset it was given, else of the newest synced version."""
    version = getattr(handle, "version", None)
    if not isinstance(version, RulesetVersion):
        version = RulesetStore(store_root).latest()
    return j66_in_force(version, snapshot)
