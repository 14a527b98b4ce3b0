"""Hostile and benign e-mail proofs (fixtures/emails.py) through the real dry run, private clamd included.

Each file is the only proof of its package, as the hidden corpus check does it: a hostile one must end
``fail`` or ``error`` with an error-severity ``ssi.``/``format.``/``system.`` finding on the file or its
children (and raise its labelled rule); a benign twin must pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import emails
from fixtures.hostile import Case
from validators import rules
from validators.dryrun import build_engine, dry_run
from validators.engine import Engine
from validators.model import PackageVerdict
from validators.report.json_report import to_document

HOSTILE = emails.hostile_email_cases()
BENIGN = emails.benign_email_cases()


@pytest.fixture(scope="module")
def engine(clamd_settings: dict[str, str]) -> Engine:
    return build_engine({**clamd_settings, "antivirus_test_signatures": "accept"})


def _run(engine: Engine, case: Case, tmp_path: Path) -> PackageVerdict:
    folder = tmp_path / "package" / "MSS.1.1.1"
    folder.mkdir(parents=True)
    (folder / case.name).write_bytes(case.data)
    return dry_run(folder.parent, engine=engine)


def test_every_email_rule_has_a_hostile_email() -> None:
    mine = {r for r in rules.catalogue() if r.startswith(("ssi.email.", "format.email."))}
    labelled = {case.rule for case in HOSTILE}
    assert mine <= labelled, sorted(mine - labelled)
    assert len(HOSTILE) >= 35


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_hostile_email_is_caught(case: Case, engine: Engine, tmp_path: Path) -> None:
    verdict = _run(engine, case, tmp_path)
    rows = verdict.flatten(["rule", "severity"])
    raised = {rule for rule, _ in rows}
    assert any(r == case.rule or (case.rule.endswith(".") and r.startswith(case.rule)) for r in raised), sorted(raised)
    assert verdict.status.value in ("fail", "error")
    if not case.rule.startswith("pii."):
        errors = {rule for rule, severity in rows if severity == "error"}
        assert any(rule.startswith(("ssi.", "format.", "system.")) for rule in errors), sorted(errors)


@pytest.mark.parametrize("case", BENIGN, ids=[c.name for c in BENIGN])
def test_benign_email_passes(case: Case, engine: Engine, tmp_path: Path) -> None:
    verdict = _run(engine, case, tmp_path)
    rows = verdict.flatten(["rule", "severity", "path"])
    assert verdict.status.value == "pass", [r for r in rows if r[1] != "info"]
    assert any("!" in (path or "") for _, _, path in rows) or case.name == "opaque-signed.eml"


def test_attachments_are_children_seen_by_every_check(engine: Engine, tmp_path: Path) -> None:
    case = next(c for c in HOSTILE if c.name == "cr-pdf-exe.eml")
    verdict = _run(engine, case, tmp_path)
    (message,) = verdict.proofs[0].files
    names = {child.path.rsplit(":", 1)[-1]: child for child in message.children}
    assert set(names) == {"corps-2.txt", "CR.pdf.exe"}
    exe = names["CR.pdf.exe"]
    assert {c.name for c in exe.checks} >= {"antivirus", "filetype", "ssi-executable", "ssi-text", "pii"}
    assert {f.rule for f in exe.findings} >= {"ssi.executable", "format.not-accepted"}
    assert "ssi.embedded-risk" in {f.rule for f in message.findings}
    assert verdict.quarantine is True


def test_the_nir_of_a_base64_body_is_found_on_the_body_and_masked(engine: Engine, tmp_path: Path) -> None:
    case = next(c for c in HOSTILE if c.name == "nir-base64.eml")
    verdict = _run(engine, case, tmp_path)
    by_rule = {(rule, path.rsplit("!", 1)[-1] if path else "") for rule, path in verdict.flatten(["rule", "path"])}
    assert ("pii.nir", "1:corps-2.txt") in by_rule  # part 1 is the multipart, part 2 the body
    # Reported once on the body, and on the message as "inside": no second pii.nir from the parent.
    assert ("pii.embedded", "MSS.1.1.1/nir-base64.eml") in by_rule
    assert [rule for rule, _ in by_rule].count("pii.nir") == 1
    assert emails.nir() not in json.dumps(to_document(verdict))


def test_the_nested_message_is_a_child_with_its_own_attachment(engine: Engine, tmp_path: Path) -> None:
    case = next(c for c in HOSTILE if c.name == "nested-exe.eml")
    verdict = _run(engine, case, tmp_path)
    paths = [path for rule, path in verdict.flatten(["rule", "path"]) if rule == "ssi.executable"]
    assert any(p.endswith("transfert.eml!2:outil.exe") for p in paths), paths
