"""The scheduled ruleset sync: value sets (J66 first) and optionally the CI-SIS tree, then an event.

A new ruleset version emits the Prefect event ``proofcheck.ruleset.updated`` (resource
``proofcheck.ruleset.<version>``, payload: version, previous, changes), which triggers the
re-validation deployment. A failed sync leaves the ruleset in force untouched, emits
``proofcheck.ruleset.sync-failed`` and ends the flow run in a failed state: that is the report.

Configuration (environment, like the rest of the pipeline):
``valueset_source`` and ``valuesets`` of ``flows/settings.py`` (``PROOFCHECK_VALUESET_SOURCE``, default the
NOS; ``PROOFCHECK_VALUESETS``, default J66), the engine's ``ruleset_source`` (optional: the CI-SIS tree,
folder or zip URL, as ``proofcheck rulesets sync``) and its ruleset store (``rulesets_dir``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger

from flows.settings import PipelineSettings
from validators.cda.store import RulesetStore
from validators.cda.valueset_sync import DEFAULT_NAMES, ValueSetSyncError, sync_valuesets
from validators.settings import EngineSettings
from validators.valueset_source import NOS_BASE, ValueSetSourceError

log = logging.getLogger(__name__)

EVENT_UPDATED = "proofcheck.ruleset.updated"
EVENT_FAILED = "proofcheck.ruleset.sync-failed"


@dataclass(frozen=True)
class SyncOutcome:
    outcome: str  # "new", "unchanged" or "failed"
    version: str | None  # the version in force after the sync
    previous: str | None
    changes: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "version": self.version,
            "previous": self.previous,
            "changes": self.changes,
            "reason": self.reason,
        }


def store_of(engine_settings: Mapping[str, Any] | None) -> RulesetStore:
    return RulesetStore(EngineSettings.coerce(engine_settings).ruleset_store)


def configured_source(settings: PipelineSettings | None = None) -> str:
    return (settings or PipelineSettings.from_env()).valueset_source or NOS_BASE


def configured_names(settings: PipelineSettings | None = None) -> tuple[str, ...]:
    return (settings or PipelineSettings.from_env()).valuesets or DEFAULT_NAMES


def run_sync(
    store: RulesetStore,
    source: str,
    names: Sequence[str] = DEFAULT_NAMES,
    *,
    tree_source: str | None = None,
    timeout: float = 30.0,
) -> SyncOutcome:
    """Tree (if asked) then value sets; never raises for a bad source: the outcome says ``failed``."""
    before = store.latest()
    previous = before.version if before is not None else None
    changes: list[dict[str, Any]] = []
    try:
        if tree_source:
            from validators.cda.sync import SyncError, sync

            try:
                tree = sync(tree_source, store, timeout=timeout)
            except SyncError as exc:
                return SyncOutcome("failed", previous, previous, reason=f"CI-SIS tree: {exc}")
            if not tree.reused:
                changes.append({"name": "TestContenuCDA", "from": None, "to": tree.version.version})
        result = sync_valuesets(source, store, names=names, timeout=timeout)
    except (ValueSetSyncError, ValueSetSourceError) as exc:
        after = store.latest()
        return SyncOutcome(
            "new" if changes else "failed",
            after.version if after is not None else None,
            previous,
            changes,
            reason=f"value sets: {exc}",
        )
    changes.extend(c.to_dict() for c in result.changes)
    outcome = "new" if result.version.version != previous else "unchanged"
    return SyncOutcome(outcome, result.version.version, previous, changes)


def emit(outcome: SyncOutcome) -> None:
    """The Prefect event of a sync that made a new version (or failed); nothing when unchanged."""
    from prefect.events import emit_event

    if outcome.outcome == "new":
        emit_event(
            event=EVENT_UPDATED,
            resource={"prefect.resource.id": f"proofcheck.ruleset.{outcome.version}"},
            payload=outcome.to_dict(),
        )
    if outcome.reason:  # also after a new tree when the value sets failed: both are said
        emit_event(
            event=EVENT_FAILED,
            resource={"prefect.resource.id": f"proofcheck.ruleset.{outcome.version or 'none'}"},
            payload=outcome.to_dict(),
        )


class RulesetSyncFailedError(RuntimeError):
    """Raised at the end of a sync flow run that could not import everything (the run shows as failed)."""


def _artifact(outcome: SyncOutcome, source: str) -> None:
    try:
        from prefect.artifacts import create_markdown_artifact

        lines = [
            f"# Ruleset sync: {outcome.outcome}",
            "",
            f"- source: `{source}`",
            f"- in force: `{outcome.version}` (before: `{outcome.previous}`)",
            *(f"- {c['name']}: {c.get('from')} → {c.get('to')}" for c in outcome.changes),
        ]
        if outcome.reason:
            lines.append(f"- **failure**: {outcome.reason} (the ruleset in force is unchanged)")
        create_markdown_artifact(key="ruleset-sync", markdown="\n".join(lines), description="proofcheck ruleset sync")
    except Exception as exc:  # display only
        log.warning("artifact not created: %s", type(exc).__name__)


@flow(name="sync-rulesets", persist_result=False)
def sync_rulesets(
    source: str | None = None, names: list[str] | None = None, tree_source: str | None = None
) -> dict[str, Any]:
    """Fetch the value sets (and the CI-SIS tree if configured); a new version triggers re-validation."""
    settings = PipelineSettings.from_env()
    chosen = source or configured_source(settings)
    outcome = run_sync(
        store_of(settings.engine_settings),
        chosen,
        names or configured_names(settings),
        tree_source=tree_source or settings.engine_settings.ruleset_source,
    )
    emit(outcome)
    _artifact(outcome, chosen)
    get_run_logger().info("ruleset sync %s: %s", outcome.outcome, outcome.version)
    if outcome.reason:
        raise RulesetSyncFailedError(outcome.reason)
    return outcome.to_dict()
