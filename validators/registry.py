"""The list of validators a run applies, in one place.

Each family module exposes ``make_validators(settings) -> list[Validator]``; a family whose module
cannot be imported (a missing optional library) still appears, as a check that reports it did not run.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, ClassVar

from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.model import CheckState

log = logging.getLogger(__name__)

# Module path of each family, in the order checks run on a file.
FAMILY_MODULES: tuple[str, ...] = (
    "validators.filetype",
    "validators.archive",
    "validators.mail",
    "validators.ssi",
    "validators.pii",
    "validators.cda",
)


class UnavailableValidator(Validator):
    """Stands for a family that could not be loaded: every file gets a 'not run' check from it."""

    rules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, family: str, reason: str) -> None:
        self.name = family  # type: ignore[misc]
        self.reason = reason

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        return CheckResult(state=CheckState.NOT_RUN, detail=f"check unavailable: {self.reason}")


def default_validators(settings: Mapping[str, Any] | None = None) -> list[Validator]:
    """Every family's validators; a family that fails to load is reported on every file, never skipped."""
    settings = settings or {}
    out: list[Validator] = []
    for module_name in FAMILY_MODULES:
        family = PurePosixPath(module_name.replace(".", "/")).name
        try:
            module = importlib.import_module(module_name)
            out.extend(module.make_validators(settings))
        except Exception as exc:  # fail closed: the family's checks are reported as not run
            log.warning("validator family %s unavailable: %s", family, type(exc).__name__)
            out.append(UnavailableValidator(family, f"{type(exc).__name__} while loading"))
    return out
