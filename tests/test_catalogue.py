"""The rule catalogue is complete, well-formed, and its generated reference (docs/rules.md) is current."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
import yaml

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
        assert {name for name, _ in rule.fr_values} <= rule.placeholders, f"{rule.id}: French values of no placeholder"


# Catalogue files whose rules are not translated yet. Every file is translated now: never add to it (a new
# rule comes with its `fr:` block).
UNTRANSLATED_FILES: frozenset[str] = frozenset()


def test_every_rule_has_french_texts_outside_the_listed_files() -> None:
    folder = ROOT / "validators" / "catalogue"
    missing = []
    for path in sorted(folder.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if "fr" not in entry and path.name not in UNTRANSLATED_FILES:
                missing.append(f"{path.name}: {entry['id']}")
    assert missing == [], f"rules without a French `fr:` block (title, message, why, fix): {missing}"
    translated = [p.name for p in folder.glob("*.yaml") if p.name in UNTRANSLATED_FILES
                  and all("fr" in e for e in yaml.safe_load(p.read_text(encoding="utf-8")) or [])]
    assert translated == [], f"{translated} are translated now: remove them from UNTRANSLATED_FILES"


def test_a_french_message_shows_french_words_for_fixed_values() -> None:
    finding = rules.finding("ssi.archive.polyglot", position="after", what="12 unexplained bytes")
    assert finding.params == (("position", "after"), ("what", "12 unexplained bytes"))  # the values as given
    assert finding.message_fr is not None and "après elle" in finding.message_fr
    assert "after" in finding.message and "after" not in finding.message_fr


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
    rule = rules.get(rule_id)
    if rule.fr:  # French first, then English
        assert out.index("Comment corriger :") < out.index("How to fix:")
        assert dict(rule.fr)["title"] in out.splitlines()[0]
