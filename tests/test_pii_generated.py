"""Generated adversarial cases (fixtures/pii_generator.py) and a property: whatever words surround a
key-valid NIR, the dry run reports it (at least a warning) and no report holds its digits.

The benchmark draws its own cases with a fresh seed; these tests pin a few seeds so that CI is stable.
"""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pii_support import check, pii_engine, pii_level
from test_fuzz_support import digits_only, fuzz_settings

from fixtures.pii_generator import (
    DECLARED,
    EXPECTED,
    LABELS,
    LOWERING,
    NEUTRAL,
    PERSONS,
    Case,
    generate,
    groups_of,
    nir_of,
)
from fixtures.pii_snippets import FICTITIOUS_NESSI, FICTITIOUS_PAT_TROIS
from validators.dryrun import build_engine, dry_run
from validators.engine import Engine
from validators.report import json_report

CASES = generate(seed=20261202, count=400)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return pii_engine()


def test_the_generator_is_deterministic_and_covers_every_category() -> None:
    again = generate(seed=20261202, count=400)
    assert [(c.case_id, c.content) for c in again] == [(c.case_id, c.content) for c in CASES]
    assert [c.content for c in generate(seed=1, count=20)] != [c.content for c in CASES[:20]]
    seen = collections.Counter(c.category for c in generate(seed=3, count=3000))
    assert set(seen) == set(EXPECTED)
    templates = {c.template for c in generate(seed=3, count=3000)}
    assert {"sentence", "log", "csv", "xml-text", "html", "eml", "filename", "cda-id", "hl7", "fhir"} <= templates


@pytest.mark.parametrize("case", CASES, ids=[f"{c.case_id}-{c.category}-{c.template}" for c in CASES])
def test_generated_case_gets_its_expected_outcome(engine: Engine, case: Case) -> None:
    verdict = check(engine, case.filename, case.content)
    assert pii_level(verdict) == case.expected, f"{case.category} {case.template} {case.form}"
    # A value in the file name is in the file's path, which the report shows as it was deposited (a
    # limit of the report, not of this check): there, the findings alone are checked.
    document = [f.to_dict() for f in verdict.findings] if case.template == "filename" else verdict.to_dict()
    rendered = digits_only(json.dumps(document, ensure_ascii=False))
    for secret in case.secrets:
        assert secret[:13] not in rendered


# --- the property, through the real dry run ------------------------------------------------------------

_WORDS = sorted({*LABELS, *PERSONS, *NEUTRAL, *LOWERING, *(w for pair in DECLARED for w in pair if w)})
_SEPARATORS = ["", " ", ".", "-", "\u00a0", "\u202f", "_", "/", ";"]
_ENGINE = build_engine({})


@st.composite
def surrounded_nirs(draw: st.DrawFn) -> tuple[str, str]:
    """(text, value): a key-valid NIR of any kind in any accepted form, with words on both sides."""
    kind = draw(st.sampled_from(["nir", "nia", "corsica", "overseas", "abroad", "odd-month"]))
    value = nir_of(random.Random(draw(st.integers(0, 2**32))), kind)
    sep = draw(st.sampled_from(_SEPARATORS))
    shown = sep.join(groups_of(value))
    before = " ".join(draw(st.lists(st.sampled_from(_WORDS), max_size=4)))
    after = " ".join(draw(st.lists(st.sampled_from(_WORDS), max_size=3)))
    return f"{before} {shown} {after}\n", value


@fuzz_settings(deadline_ms=5000, share=0.6)
@given(surrounded_nirs())
def test_any_words_around_a_valid_nir_give_a_finding_and_no_report_holds_it(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, str]
) -> None:
    text, value = case
    assert value not in (FICTITIOUS_NESSI, FICTITIOUS_PAT_TROIS)
    folder: Path = tmp_path_factory.mktemp("pkg")
    (folder / "INS.41.2.2").mkdir()
    (folder / "INS.41.2.2" / "trace.txt").write_text(text, "utf-8")
    verdict = dry_run(folder, engine=_ENGINE)
    severities = {sev for rule, sev in verdict.flatten(["rule", "severity"]) if rule.startswith("pii.")
                  and rule not in ("pii.not-inspected", "pii.not-readable")}
    assert severities & {"warning", "error"}, text.count(" ")
    report = digits_only(json_report.render(verdict))
    assert value[:13] not in report
