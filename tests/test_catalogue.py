"""The rule catalogue is complete, well-formed, and its generated reference (docs/rules.md) is current."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from validators import rules
from validators.registry import default_validators
from validators.report.catalogue_doc import RULES_DOC, render_rules_doc

ROOT = Path(__file__).resolve().parents[1]
RULE_ID = re.compile(r"^(package|format|ssi|pii|cda|system)(\.[a-z0-9]+(-[a-z0-9]+)*)+$")


def test_catalogue_entries_are_complete() -> None:
    catalogue = rules.catalogue()
    assert catalogue, "empty catalogue"
    for rule in catalogue.values():
        assert RULE_ID.match(rule.id), rule.id
        assert rule.title and rule.message and rule.why and rule.fix, rule.id
        assert not rule.title.endswith("."), f"{rule.id}: titles are labels, not sentences"


def test_french_texts_fill_the_same_placeholders() -> None:
    for rule in rules.catalogue().values():
        if not rule.fr:
            continue
        fr = dict(rule.fr)
        placeholders = {name for _, name, _, _ in string.Formatter().parse(fr["message"]) if name}
        assert placeholders == rule.placeholders, rule.id
        assert not fr["title"].endswith("."), f"{rule.id}: titles are labels, not sentences"


def test_every_rule_a_validator_declares_is_catalogued() -> None:
    catalogue = rules.catalogue()
    for validator in default_validators({}):
        missing = [r for r in validator.rules if r not in catalogue]
        assert not missing, f"{validator.name} declares uncatalogued rules {missing}"


def test_rules_doc_is_generated_from_the_catalogue() -> None:
    assert (ROOT / RULES_DOC).read_text(encoding="utf-8") == render_rules_doc(), (
        f"{RULES_DOC} is stale: regenerate it with `python tools/sync_rules_doc.py`"
    )


@pytest.mark.parametrize("rule_id", sorted(rules.catalogue()))
def test_explain_prints_every_rule(rule_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    from validators.cli import main

    assert main(["explain", rule_id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(rule_id) and "How to fix:" in out
