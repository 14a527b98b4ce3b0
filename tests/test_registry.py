"""Checks describe themselves: the registry finds them, checks their declarations, and the cache and the
re-validation planner read those declarations (no table of their own)."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest

from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.registry import (
    FAMILIES,
    PENDING_DECLARATIONS,
    DeclarationError,
    check_classes,
    declaration_problems,
    declared,
    default_validators,
    family_validators,
)
from validators.resultcache import ResultCache, affected, with_cache

EXPECTED = {
    "validators.filetype": ["filetype"],
    "validators.archive": ["archive"],
    "validators.mail": ["email"],
    "validators.ssi": ["antivirus", "ssi-executable", "ssi-image", "ssi-inline", "ssi-markup", "ssi-office", "ssi-pdf",
                       "ssi-text", "ssi-utf16"],
    "validators.pii": ["pii"],
    "validators.cda": ["cda", "cda-schematron", "cda-xdm"],
}


def test_every_check_is_found_in_its_family_and_nothing_else() -> None:
    assert {family: [c.name for c in check_classes(family)] for family in FAMILIES} == EXPECTED


@pytest.mark.parametrize("cls", [c for f in FAMILIES for c in check_classes(f)], ids=lambda c: c.name)
def test_every_check_declares_what_it_reads(cls: type[Validator]) -> None:
    assert declaration_problems(cls) == []
    for what in ("reads_settings", "reads_ruleset"):
        assert declared(cls.name, what) is not None, f"{cls.name} does not declare {what}: everything counts"


class _Bad(Validator):
    name = "bad"
    rules: ClassVar[tuple[str, ...]] = ("ssi.no-such-rule",)
    reads_settings: ClassVar[tuple[str, ...]] = ("no_such_setting",)

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        return CheckResult()


def test_a_declaration_that_does_not_hold_is_named() -> None:
    found = declaration_problems(_Bad)
    assert found == ["bad: rules not in the catalogue: ssi.no-such-rule",
                     "bad: reads settings that do not exist: no_such_setting"]

    class Pii(_Bad):
        name = "pii"
        rules: ClassVar[tuple[str, ...]] = ("pii.nir",)
        reads_settings: ClassVar[tuple[str, ...]] = ("pii",)

    assert PENDING_DECLARATIONS == {}  # every check declares itself
    assert declaration_problems(Pii) == []


CHECK_MODULE = '''
from typing import ClassVar

from validators.base import CheckContext, CheckResult, ProofFile, Validator


class LengthValidator(Validator):
    name: ClassVar[str] = "length"
    rules: ClassVar[tuple[str, ...]] = ({rule!r},)
    reads_settings: ClassVar[tuple[str, ...]] = ("pdf_max_bytes",)
    reads_ruleset: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings=None):
        from validators.settings import EngineSettings

        self.limit = EngineSettings.coerce(settings).pdf_max_bytes

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        return CheckResult(detail=str(self.limit))
'''


def _family(tmp_path: Path, name: str, rule: str) -> str:
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "length.py").write_text(textwrap.dedent(CHECK_MODULE.format(rule=rule)), encoding="utf-8")
    return name


def test_a_module_dropped_in_a_family_is_a_check_built_with_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    family = _family(tmp_path, "family_ok", "ssi.malware")
    (check,) = family_validators(family, {"pdf_max_bytes": 1234})
    assert (check.name, check.limit) == ("length", 1234)  # type: ignore[attr-defined]
    sys.modules.pop(family, None)


def test_a_family_whose_check_declares_a_wrong_rule_is_reported_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from validators import registry

    monkeypatch.syspath_prepend(str(tmp_path))
    family = _family(tmp_path, "family_bad", "ssi.made-up")
    with pytest.raises(DeclarationError, match=r"ssi\.made-up"):
        check_classes(family)
    monkeypatch.setattr(registry, "FAMILIES", (*FAMILIES, family))
    last = default_validators({})[-1]
    assert last.name == "family_bad" and last.check(_proof(), CheckContext()).state.value == "not_run"


def _proof() -> ProofFile:
    data = b"%PDF-1.7 fictif"
    return ProofFile("DOC.3.1.2/a.pdf", len(data), hashlib.sha256(data).hexdigest(), "application/pdf", data=data)


def _key(validator_name: str, settings: dict[str, object], tmp_path: Path) -> str:
    from validators.resultcache import cache_key

    validators = {v.name: v for v in default_validators({"clamd": "unix:/nonexistent.sock"})}
    (wrapped,) = with_cache([validators[validator_name]], ResultCache(tmp_path), ruleset_version="v",
                            components={"J66": "1"}, settings=settings)
    return cache_key(_proof().sha256, validator_name, "v", {"J66": "1"}, wrapped.settings_read,  # type: ignore[attr-defined]
                     reads_ruleset=wrapped.reads_ruleset)


def test_a_result_is_keyed_on_the_settings_its_check_reads_and_no_other(tmp_path: Path) -> None:
    base = _key("ssi-pdf", {}, tmp_path)
    assert _key("ssi-pdf", {"pdf_max_bytes": 10}, tmp_path) != base
    assert _key("ssi-pdf", {"image_max_megapixels": 1.0}, tmp_path) == base
    # Where clamd is never changes a result: a private clamd's socket differs in every process.
    antivirus = _key("antivirus", {}, tmp_path)
    assert _key("antivirus", {"clamd": "unix:/elsewhere.sock"}, tmp_path) == antivirus
    assert _key("antivirus", {"antivirus_test_signatures": "accept"}, tmp_path) != antivirus


def test_the_planner_reads_the_declarations_by_check_name() -> None:
    components = {"J66": "2", "cda_xsd": "x", "TestContenuCDA": "t", "JDV:JDV_J07": "1"}
    assert not affected("ssi-utf16", {"J66"}, components)  # a new check: no table to edit
    assert affected("cda", {"J66"}, components) and affected("cda-xdm", {"J66"}, components)
    assert affected("cda-schematron", {"JDV:JDV_J07"}, components)
    assert not affected("pii", {"J66"}, components)  # PiiValidator declares it reads no ruleset component
    assert affected("some-future-check", {"J66"}, components)  # unknown: everything re-runs
