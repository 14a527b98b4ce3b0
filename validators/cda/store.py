"""The local store of synced CDA rulesets: one folder per version, several versions side by side.

A version is named ``<import time UTC>-<content digest prefix>`` so that versions sort by import time
and a verdict names exactly the content it was computed with. Each version folder holds ``tree/``
(the imported ANS layout plus the compiled ``.xsl`` next to each ``.sch``) and ``manifest.json``.
Location: the ``rulesets_dir`` setting (``$PROOFCHECK_RULESETS``), else ``<home>/rulesets``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
TREE = "tree"


class RulesetNotFoundError(LookupError):
    """No ruleset of that version in the store."""


def default_root() -> Path:
    """The store the settings name, for callers that were given no folder."""
    from validators.settings import EngineSettings

    return EngineSettings.load().ruleset_store


def version_name(digest: str, imported_at: datetime) -> str:
    return f"{imported_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest[:12]}"


@dataclass(frozen=True)
class RulesetVersion:
    """One synced ruleset on disk and what its manifest says about it."""

    path: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def digest(self) -> str:
        return str(self.manifest["digest"])

    @property
    def tree(self) -> Path:
        return self.path / TREE

    @property
    def components(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.manifest.get("components") or {}).items()}

    @property
    def gaps(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("gaps") or [])

    @property
    def schematrons(self) -> dict[str, dict[str, Any]]:
        """Per schematron (path relative to the tree): kind, name, xsl, status, compile time, gaps."""
        return dict(self.manifest.get("schematrons") or {})

    def save_manifest(self) -> None:
        _write_json(self.path / MANIFEST, self.manifest)


def _write_json(target: Path, data: dict[str, Any]) -> None:
    temp = target.with_suffix(".tmp")
    temp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", "utf-8")
    temp.replace(target)


class RulesetStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    def versions(self) -> list[RulesetVersion]:
        """Every complete version, oldest first (a folder without a manifest is an interrupted sync)."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            manifest = folder / MANIFEST
            if folder.name.startswith(".") or not manifest.is_file():
                continue
            try:
                found.append(RulesetVersion(folder, json.loads(manifest.read_text("utf-8"))))
            except (OSError, ValueError):
                continue
        return sorted(found, key=lambda v: v.version)

    def latest(self) -> RulesetVersion | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def get(self, version: str) -> RulesetVersion:
        for candidate in self.versions():
            if candidate.version == version or candidate.digest.startswith(version):
                return candidate
        raise RulesetNotFoundError(version)

    def with_digest(self, digest: str) -> RulesetVersion | None:
        return next((v for v in self.versions() if v.digest == digest), None)

    def new_staging(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))

    def publish(self, staging: Path, manifest: dict[str, Any]) -> RulesetVersion:
        """Move a fully prepared staging folder into place under its version name (atomic rename)."""
        _write_json(staging / MANIFEST, manifest)
        target = self.root / str(manifest["version"])
        staging.rename(target)
        return RulesetVersion(target, manifest)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)
