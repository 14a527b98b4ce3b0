"""The checks a run applies, found where they are written: every ``Validator`` of every family module.

A family is a module (``validators/filetype.py``) or a package (``validators/ssi/``) listed in
``FAMILIES``; every concrete ``Validator`` subclass defined in it (in any module of the package) is one
check, built with the run's settings and checked against its declaration at load: rules in the
catalogue, settings that exist. Adding a check is adding a module; nothing lists it (README.md,
"Adding a check"). Checks run family by family in ``FAMILIES`` order, by name within a family.

A family that cannot be loaded (a missing optional library, a wrong declaration) still appears, as a
check that reports on every file that it did not run: never skipped.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from collections.abc import Mapping
from functools import cache
from types import ModuleType
from typing import Any, ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.model import CheckState
from validators.settings import EngineSettings

log = logging.getLogger(__name__)

# Module path of each family, in the order checks run on a file.
FAMILIES: tuple[str, ...] = (
    "validators.filetype",
    "validators.archive",
    "validators.mail",
    "validators.ssi",
    "validators.pii",
    "validators.cda",
)
# Modules of a family package that hold no check (command lines): not imported when looking for checks.
NOT_CHECK_MODULES = frozenset({"cli"})

# Declarations of checks whose own module does not declare them yet, by check name (empty: every check
# declares itself). A load-time check refuses a declaration made in both places.
PENDING_DECLARATIONS: Mapping[str, Mapping[str, tuple[str, ...]]] = {}


class DeclarationError(ValueError):
    """A check whose declaration does not hold (an uncatalogued rule, an unknown setting, a name used twice)."""


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


def _modules(family: str) -> list[ModuleType]:
    module = importlib.import_module(family)
    found = [module]
    for info in sorted(pkgutil.iter_modules(getattr(module, "__path__", [])), key=lambda i: i.name):
        if info.name not in NOT_CHECK_MODULES and not info.ispkg:
            found.append(importlib.import_module(f"{family}.{info.name}"))
    return found


@cache
def check_classes(family: str) -> tuple[type[Validator], ...]:
    """The checks of ``family``, by name; DeclarationError when one does not hold its declaration."""
    classes = {
        cls
        for module in _modules(family)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Validator) and cls.__module__ == module.__name__ and not inspect.isabstract(cls)
    }
    ordered = tuple(sorted(classes, key=lambda c: c.name))
    problems = [p for cls in ordered for p in declaration_problems(cls)]
    names = [cls.name for cls in ordered]
    problems += [f"check name {n!r} used twice in {family}" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise DeclarationError("; ".join(problems))
    return ordered


def declaration_problems(cls: type[Validator]) -> list[str]:
    """What does not hold in a check's declaration (empty when all is well)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        return [f"{cls.__qualname__} declares no name"]
    problems = []
    unknown_rules = sorted(set(cls.rules) - set(rules.catalogue()))
    if unknown_rules:
        problems.append(f"{name}: rules not in the catalogue: {', '.join(unknown_rules)}")
    settings = {f.name for f, _ in EngineSettings.specs()}
    unknown_settings = sorted(set(cls.reads_settings or ()) - settings)
    if unknown_settings:
        problems.append(f"{name}: reads settings that do not exist: {', '.join(unknown_settings)}")
    pending = PENDING_DECLARATIONS.get(name, {})
    twice = sorted(key for key in pending if getattr(cls, key) is not None)
    if twice:
        problems.append(f"{name}: declares {', '.join(twice)} itself: remove its PENDING_DECLARATIONS entry")
    return problems


def family_validators(family: str, settings: Mapping[str, Any] | None = None) -> list[Validator]:
    """The checks of one family, built with ``settings``."""
    typed = EngineSettings.coerce(settings)
    return [cls(typed) for cls in check_classes(family)]


def default_validators(settings: Mapping[str, Any] | None = None) -> list[Validator]:
    """Every family's checks; a family that fails to load is reported on every file, never skipped.

    A wrong setting raises SettingsError here, before any check is built: it is not a family's failure.
    """
    typed = EngineSettings.coerce(settings)
    out: list[Validator] = []
    for family in FAMILIES:
        try:
            out.extend(family_validators(family, typed))
        except Exception as exc:  # fail closed: the family's checks are reported as not run
            log.warning("validator family %s unavailable: %s", family, type(exc).__name__)
            out.append(UnavailableValidator(family.rsplit(".", 1)[-1], f"{type(exc).__name__} while loading"))
    return out


@cache
def _declared() -> dict[str, type[Validator]]:
    found: dict[str, type[Validator]] = {}
    for family in FAMILIES:
        try:
            found.update((cls.name, cls) for cls in check_classes(family))
        except Exception as exc:  # an unknown check then depends on everything: safe
            log.warning("validator family %s unavailable: %s", family, type(exc).__name__)
    return found


def declared(name: str, what: str) -> tuple[str, ...] | None:
    """``reads_settings`` or ``reads_ruleset`` of the check called ``name`` (None: not declared or unknown).

    Re-validation knows checks by the names stored verdicts hold, so the declaration is looked up here.
    """
    cls = _declared().get(name)
    if cls is None:
        return None
    own: tuple[str, ...] | None = getattr(cls, what)
    if own is not None:
        return own
    return PENDING_DECLARATIONS.get(name, {}).get(what)


def declaration_of(validator: Validator, what: str) -> tuple[str, ...] | None:
    """A check's own declaration, else the registered check's of the same name (tests' stand-ins)."""
    own: tuple[str, ...] | None = getattr(type(validator), what, None)
    if own is not None:
        return own
    return declared(validator.name, what)
