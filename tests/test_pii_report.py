"""No report spreads what the check found: every format, rendered from a real dry run, is grepped
for every fixture identifier (compact, grouped, and its 13-character body)."""

from __future__ import annotations

import importlib
import re

import pytest

from fixtures import builders as b
from fixtures.pii_snippets import grouped, snippets
from validators.dryrun import dry_run
from validators.model import PackageVerdict, Severity

FORMATS = ("json_report", "html", "sarif", "junit")
POSITIVES = [s for s in snippets() if s.positive]


@pytest.fixture(scope="module")
def verdict(tmp_path_factory: pytest.TempPathFactory) -> PackageVerdict:
    folder = tmp_path_factory.mktemp("pii-package")
    for snippet in POSITIVES:
        (folder / snippet.filename).write_bytes(snippet.content)
    first = POSITIVES[0].secrets[0]
    (folder / "cr.pdf").write_bytes(b.make_pdf([f"NIR {grouped(first)}"], info_title=f"Dossier {first}"))
    (folder / "message.eml").write_bytes(b.make_eml("CR", f"Patient {first}"))
    return dry_run(folder)


def _forms(secret: str) -> set[str]:
    return {secret, secret[:13], grouped(secret), grouped(secret[:13])}


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_report_format_contains_a_fixture_identifier(verdict: PackageVerdict, fmt: str) -> None:
    try:
        module = importlib.import_module(f"validators.report.{fmt}")
    except ModuleNotFoundError:
        pytest.skip(f"the {fmt} report is not available in this checkout")
    rendered = module.render(verdict)
    digits_only = re.sub(r"[\s.\-\u00a0\u202f]", "", rendered)
    leaked = 0
    for snippet in POSITIVES:
        for secret in snippet.secrets:
            leaked += sum(form in rendered for form in _forms(secret))
            leaked += secret in digits_only
    assert leaked == 0, f"{leaked} identifier form(s) found in the {fmt} report"


def test_the_verdict_did_flag_every_positive(verdict: PackageVerdict) -> None:
    flagged = {
        path.rsplit("/", 1)[-1]
        for rule, severity, path in verdict.flatten(["rule", "severity", "path"])
        if rule.startswith("pii.") and severity == Severity.ERROR.value
    }
    assert {s.filename for s in POSITIVES} | {"cr.pdf", "message.eml"} <= flagged
