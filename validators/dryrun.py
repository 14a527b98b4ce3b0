"""A local dry run: the same engine the pipeline runs, on a zip or a folder, with no S3 and no server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from validators.cda import ruleset_info
from validators.engine import Engine, ProgressCallback, RulesetInfo
from validators.model import PackageVerdict
from validators.registry import default_validators
from validators.settings import EngineSettings


def current_ruleset(settings: Mapping[str, Any] | None = None) -> RulesetInfo:
    """The ruleset the CDA and value-set checks use: the newest synced one, or "none"."""
    found: RulesetInfo | None = ruleset_info(settings or {})
    return found or RulesetInfo()


def build_engine(settings: Mapping[str, Any] | None = None) -> Engine:
    """Every check, the ruleset in force; ``settings``: an EngineSettings, or overrides of the environment's."""
    typed = EngineSettings.coerce(settings)
    return Engine(default_validators(typed), ruleset=current_ruleset(typed), settings=typed)


def dry_run(
    path: Path,
    *,
    profiles: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    engine: Engine | None = None,
) -> PackageVerdict:
    from validators.package import open_package

    typed = engine.settings if engine is not None and settings is None else EngineSettings.coerce(settings)
    engine = engine or build_engine(typed)
    with open_package(path, settings=typed, profiles=profiles) as contents:
        return engine.run(contents, progress=progress)
