"""Every catalogued rule has a fixture that triggers it through the real dry run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest_verdicts import looks_like_nir

from fixtures.triggers import EXEMPT, TRIGGERS, Trigger
from validators import rules
from validators.dryrun import dry_run
from validators.report.json_report import render
from validators.verdict_io import read_verdict


def test_every_catalogued_rule_has_a_trigger_or_a_documented_exemption() -> None:
    missing = sorted(set(rules.catalogue()) - set(TRIGGERS) - set(EXEMPT))
    assert missing == [], f"rules without a triggering fixture: {missing}"
    assert not set(TRIGGERS) & set(EXEMPT)
    stale = sorted((set(TRIGGERS) | set(EXEMPT)) - set(rules.catalogue()))
    assert stale == [], f"triggers for rules that are not catalogued: {stale}"


def _write_package(trigger: Trigger, tmp_path: Path) -> Path:
    if trigger.raw_package is not None:
        path = tmp_path / trigger.raw_name
        path.write_bytes(trigger.raw_package)
        return path
    root = tmp_path / "package"
    for name, data in trigger.files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


@pytest.mark.parametrize("rule_id", sorted(TRIGGERS))
def test_trigger_emits_its_rule(rule_id: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    trigger = TRIGGERS[rule_id]()
    settings: dict[str, Any] = {}
    for need in trigger.needs:
        settings.update(request.getfixturevalue(f"{need}_settings"))
    settings.update(trigger.settings)
    verdict = dry_run(_write_package(trigger, tmp_path), settings=settings, profiles=trigger.profiles or None)
    found = {row[0] for row in verdict.flatten(["rule"])}
    assert rule_id in found, f"{rule_id} not emitted; got {sorted(found)}"
    for finding in verdict.iter_findings():
        for name, value in finding.params:
            assert not looks_like_nir(str(value)), f"{finding.rule}: parameter {name} looks like a NIR"
        # Rendered in French wherever the rule has a French template.
        assert (finding.message_fr is not None) == bool(rules.get(finding.rule).fr), finding.rule
    # The stored document reads back as the same verdict, parameters and French messages included.
    assert read_verdict(render(verdict)).verdict == verdict
