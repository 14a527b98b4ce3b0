"""Every deployment of the pipeline, declared once, in one table.

Served locally by `proofcheck serve`; registered on a work pool in production (`proofcheck deploy`).

A test checks each entry's parameters against its flow's signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.events import DeploymentEventTrigger

from flows.pipeline import rebuild_index, validate_package
from flows.revalidate import revalidate
from flows.valueset_sync import EVENT_UPDATED, sync_rulesets


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    flow: Any  # a prefect Flow
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    interval: timedelta | None = None
    tags: tuple[str, ...] = ()
    triggers: tuple[Any, ...] = ()  # Prefect event triggers that start a run

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.name}"


VALIDATE = DeploymentSpec(
    name="validate-package",
    flow=validate_package,
    description="One run per uploaded package version: fetch, check, store the verdict, tag, quarantine.",
    tags=("proofcheck", "intake"),
)
REBUILD_INDEX = DeploymentSpec(
    name="rebuild-index",
    flow=rebuild_index,
    description="Rebuild the verdict index and the instructors' index page from the stored verdicts.",
    parameters={"bucket": None},
    interval=timedelta(days=1),
    tags=("proofcheck", "index"),
)

SYNC_RULESETS = DeploymentSpec(
    name="sync-rulesets",
    flow=sync_rulesets,
    description="Daily: fetch J66 (and the configured value sets, CI-SIS tree) into a new ruleset version.",
    parameters={"source": None, "names": None, "tree_source": None},
    interval=timedelta(days=1),
    tags=("proofcheck", "rulesets"),
)
REVALIDATE = DeploymentSpec(
    name="revalidate",
    flow=revalidate,
    description="On a new ruleset version: re-validate the packages verdicted under an older one, diff, report.",
    parameters={"since": None, "dry_run": False, "bucket": None, "full": False},
    # Also daily, as a safety net: a verdict stored under the old ruleset by a worker that had not yet
    # reloaded it is picked up the next day (the run does nothing when no verdict is stale).
    interval=timedelta(days=1),
    tags=("proofcheck", "rulesets"),
    triggers=(
        DeploymentEventTrigger(
            name="on-ruleset-updated",
            expect={EVENT_UPDATED},
            match={"prefect.resource.id": "proofcheck.ruleset.*"},
        ),
    ),
)

DEPLOYMENTS: tuple[DeploymentSpec, ...] = (VALIDATE, REBUILD_INDEX, SYNC_RULESETS, REVALIDATE)


def runner_deployments(
    specs: tuple[DeploymentSpec, ...] = DEPLOYMENTS,
    *,
    schedules: bool = True,
    work_pool_name: str | None = None,
    job_variables: Mapping[str, Any] | None = None,
) -> list[RunnerDeployment]:
    """The table as Prefect deployments; module entrypoints so the installed package is what runs."""
    out = []
    for spec in specs:
        to_deployment: Callable[..., RunnerDeployment] = spec.flow.to_deployment
        out.append(
            to_deployment(
                name=spec.name,
                description=spec.description,
                parameters=dict(spec.parameters),
                interval=spec.interval if schedules else None,
                tags=list(spec.tags),
                entrypoint_type=EntrypointType.MODULE_PATH,
                work_pool_name=work_pool_name,
                job_variables=dict(job_variables or {}) or None,
                triggers=list(spec.triggers) or None,
            )
        )
    return out
