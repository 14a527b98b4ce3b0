"""Every pii.* rule of the catalogue is emitted by its trigger package through the real dry run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fixtures.pii_snippets import trigger_files
from validators import rules
from validators.dryrun import dry_run
from validators.pii import PiiValidator
from validators.pii.ocr import tesseract_problem

TRIGGERS = trigger_files()


def test_every_pii_rule_is_declared_and_has_a_trigger() -> None:
    # pii.yaml holds the check's own rules; other pii-*.yaml files belong to the engine (pii.embedded).
    catalogue_file = Path(rules.__file__).parent / "catalogue" / "pii.yaml"
    own = {entry["id"] for entry in yaml.safe_load(catalogue_file.read_text("utf-8"))}
    assert own == set(PiiValidator.rules) == set(TRIGGERS)
    assert own <= set(rules.catalogue())


@pytest.mark.parametrize("rule_id", sorted(TRIGGERS))
def test_trigger_emits_its_rule(rule_id: str, tmp_path: Path) -> None:
    if rule_id == "pii.not-readable" and tesseract_problem() is not None:
        pytest.skip("tesseract with French data is not installed")
    for name, data in TRIGGERS[rule_id].items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    found = {row[0] for row in dry_run(tmp_path).flatten(["rule"])}
    assert rule_id in found
