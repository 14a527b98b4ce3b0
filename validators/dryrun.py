"""A local dry run: the same engine the pipeline runs, on a zip or a folder, with no S3 and no server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from validators.cda import ruleset_info
from validators.engine import Engine, ProgressCallback, RulesetInfo
from validators.model import PackageVerdict
from validators.registry import default_validators


def current_ruleset(settings: Mapping[str, Any] | None = None) -> RulesetInfo:
    """The ruleset the CDA and value-set checks use: the newest synced one, or "none"."""
    found: RulesetInfo | None = ruleset_info(settings or {})
    return found or RulesetInfo()


def build_engine(settings: Mapping[str, Any] | None = None) -> Engine:
    settings = dict(settings or {})
    return Engine(default_validators(settings), ruleset=current_ruleset(settings), settings=settings)


def dry_run(
    path: Path,
    *,
    profiles: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    engine: Engine | None = None,
) -> PackageVerdict:
    from validators.package import open_package

    engine = engine or build_engine(settings)
    with open_package(path, settings=settings, profiles=profiles) as contents:
        return engine.run(contents, progress=progress)
