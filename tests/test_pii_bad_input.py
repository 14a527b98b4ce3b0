"""Hostile sizes: logs made of numbers, thousands of distinct NIRs, a PDF page holding millions of characters.

Each gives a verdict with findings, bounded in number, masked. Time is measured by the benchmark
(``benchmarks/bench_pii.py --bad-input``, 50 MB and 10 M characters), never asserted here.
"""

from __future__ import annotations

import random

import pytest
from pii_support import check, pii_engine, value_findings
from test_fuzz_support import assert_evidence_masked, assert_no_nir_leak

from fixtures import builders as b
from fixtures.pii_generator import nir_of
from validators.engine import Engine
from validators.pii.scan import MAX_FINDINGS_PER_RULE


@pytest.fixture(scope="module")
def engine() -> Engine:
    return pii_engine()


def test_a_log_of_random_15_digit_numbers(engine: Engine) -> None:
    rng = random.Random(3)
    lines = ["".join(rng.choice("0123456789") for _ in range(15)) for _ in range(100_000)]  # 1.6 MB
    verdict = check(engine, "numbers.log", "\n".join(lines) + "\n")
    findings = value_findings(verdict)
    # About 1 random number in 130 has a NIR structure and key: reported, never silently passed.
    assert {f.rule for f in findings} <= {"pii.nir", "pii.nia"} and findings
    per_rule = {rule: sum(1 for f in findings if f.rule == rule) for rule in {f.rule for f in findings}}
    assert max(per_rule.values()) <= MAX_FINDINGS_PER_RULE + 1
    assert_evidence_masked(verdict.findings)
    assert_no_nir_leak(verdict.findings, [line for line in lines if line[0] in "12"])


def test_thousands_of_distinct_nirs_are_listed_up_to_the_limit_then_counted(engine: Engine) -> None:
    rng = random.Random(4)
    values = [nir_of(rng, "nir") for _ in range(3000)]
    verdict = check(engine, "export.csv", "nir\n" + "\n".join(values) + "\n")
    nir = [f for f in verdict.findings if f.rule == "pii.nir"]
    assert len(nir) == MAX_FINDINGS_PER_RULE + 1
    overflow = [f for f in nir if "further values not listed" in f.message]
    assert len(overflow) == 1 and f"({3000 - MAX_FINDINGS_PER_RULE} occurrence(s)" in overflow[0].message
    assert_no_nir_leak(verdict.findings, values)


def test_a_digit_run_without_separators(engine: Engine) -> None:
    rng = random.Random(5)
    run = "".join(rng.choice("0123456789") for _ in range(2_000_000))
    verdict = check(engine, "dump.txt", run + f"\nNIR {nir_of(rng, 'nir')}\n")
    # Inside a run of digits nothing is a NIR; the labelled one after it is.
    assert [(f.rule, f.severity.value) for f in value_findings(verdict)] == [("pii.nir", "error")]


def test_a_pdf_page_of_millions_of_characters(engine: Engine) -> None:
    rng = random.Random(6)
    value = nir_of(rng, "nir")
    lines = ["Ligne de journal 0123456789 valeur 42 statut ok"] * 60_000  # 3 M characters on one page
    lines[45_000] = f"Assuré {value}"
    verdict = check(engine, "journal.pdf", b.make_pdf(["\n".join(lines)]))
    assert [(f.rule, f.severity.value) for f in value_findings(verdict)] == [("pii.nir", "error")]
    assert any(f.rule == "pii.not-inspected" and "raw strings" in f.message for f in verdict.findings)
    assert_no_nir_leak(verdict.findings, [value])
