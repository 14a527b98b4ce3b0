"""The red team's corpora (fixtures/redteam) and their evaluation (benchmarks/eval_redteam.py).

The fast tests check the generators themselves (NIR arithmetic, near misses, the leak detector, seeded
determinism). The ``bench`` tests run a small seed of both corpora through this checkout's engine (or
``REDTEAM_CHECKOUT``'s) and hold it to issues 12 and 13: every hostile file caught, every benign twin
passed, labelled NIRs errors, near misses never errors, no NIR digit in a report.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.redteam import nir as n
from fixtures.redteam import nir_corpus, nir_snippets
from fixtures.redteam.model import NIR_CLEAR, NIR_ERROR

ROOT = Path(__file__).resolve().parents[1]


def _eval_module() -> Any:
    spec = importlib.util.spec_from_file_location("eval_redteam", ROOT / "benchmarks" / "eval_redteam.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["metropolitan", "corsica", "overseas", "abroad", "nia", "fictitious-month"])
def test_random_nirs_are_key_valid_and_shaped(kind: str) -> None:
    rng = random.Random(kind)
    for _ in range(200):
        number = n.random_nir(rng, kind)
        assert len(number.full) == 15
        assert int(number.key) == 97 - int(number.body.replace("2A", "19").replace("2B", "18")) % 97
        month = int(number.month)
        assert 1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99


def test_known_nirs_and_corsica_substitution() -> None:
    for value in n.ANS_TEST_IDENTITIES:
        assert n.key_of(value[:13]) == int(value[13:])
    assert n.key_of("176072B623781") == 97 - int("1760718623781") % 97


def test_near_misses_are_not_nirs() -> None:
    rng = random.Random(5)
    for _ in range(200):
        number = n.random_nir(rng)
        wrong = n.wrong_key(number, rng)
        assert wrong[:13] == number.body and wrong[13:] != number.key
        month = n.impossible_month(rng)
        assert int(month[3:5]) in (0, *range(13, 20), *range(43, 50))
        assert n.luhn_ok(n.siret(rng)) and len(n.siret(rng)) == 14
        assert n.luhn_ok(n.finess(rng)) and n.luhn_ok(n.rpps(rng))
        iban = n.iban(rng).replace(" ", "")
        assert int(iban[4:] + "1527" + iban[2:4]) % 97 == 1
    stamp = n.keyed_timestamp(rng)
    assert stamp.startswith("2026") and n.key_of(stamp[:13]) == int(stamp[13:])
    siret_like = n.siret_like_nir(rng)
    assert n.luhn_ok(siret_like[1:]) and n.key_of(siret_like[:13]) == int(siret_like[13:])


def test_ocr_confusions_only_replace_digits_with_listed_letters() -> None:
    rng = random.Random(2)
    text = n.ocr_confuse("1 85 05 78 006 084 21", rng, count=3)
    assert len(text) == len("1 85 05 78 006 084 21")
    changed = [(a, b) for a, b in zip("1 85 05 78 006 084 21", text, strict=True) if a != b]
    assert len(changed) == 3 and all(b in n.OCR_LOOKALIKES[a] for a, b in changed)


def test_nir_corpus_is_seeded_and_labelled_cases_carry_their_secret() -> None:
    first = nir_corpus.generate(4, texts=40, screens_count=2)
    again = nir_corpus.generate(4, texts=40, screens_count=2)
    assert [(c.name, dict(c.files)) for c in first] == [(c.name, dict(c.files)) for c in again]
    other = nir_corpus.generate(5, texts=40, screens_count=2)
    assert [dict(c.files) for c in first] != [dict(c.files) for c in other]
    for case in first:
        assert not any(secret in case.name or secret in case.note for secret in case.secrets)
        if case.expect == NIR_ERROR:
            assert len(case.secrets) == 1 and len(case.secrets[0]) == 13
        if case.expect == NIR_CLEAR:
            assert case.category.startswith(("near:", "cleared:"))


def test_labelled_lines_put_a_label_before_the_number() -> None:
    rng = random.Random(8)
    value = nir_snippets.positive(rng, "labelled", ["grouped"])
    line = nir_snippets.context_line(rng, value)
    before = line[: line.index(value.text)]
    assert any(label in before for label in nir_snippets.LABELS) or any(
        f"{key}=" in before for key in nir_snippets.KEY_LABELS)


def test_leak_detector_finds_six_digits_across_separators_but_not_digests() -> None:
    leaks = _eval_module().leaks
    secret = "1850578006084"
    assert leaks('"evidence": "1 ** ** ** *** *** 21"', [secret]) == []
    assert leaks('"sha256": "' + "a1850578006084" + "b" * 50 + '"', [secret]) == []
    assert len(leaks('"message": "found 1 85 05 78 006"', [secret])) == 1
    assert len(leaks('"path": "INS.41.2.2/export_0578006.txt"', [secret])) == 1
    assert leaks('"span": [185057, 12]', ["2990399123456"]) == []


# --- the corpora through the engine ------------------------------------------------------------------


@pytest.fixture(scope="module")
def redteam_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    checkout = os.environ.get("REDTEAM_CHECKOUT", str(ROOT))
    out = tmp_path_factory.mktemp("redteam") / "result.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "eval_redteam.py"), "--seed", "11", "--nir", "42",
               "--screens", "4", "--cli-sample", "2", "--checkout", checkout, "--json", str(out)]
    subprocess.run(command, check=True, timeout=1800, capture_output=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _names(result: dict[str, Any], predicate: Any) -> list[str]:
    return [f"{o['name']}: {o['why'] or o['problem']}" for o in result["outcomes"] if predicate(o)]


@pytest.mark.bench
def test_every_case_got_a_verdict_and_cli_agrees(redteam_run: dict[str, Any]) -> None:
    assert _names(redteam_run, lambda o: o["problem"]) == []
    assert redteam_run["cli_disagreements"] == []


@pytest.mark.bench
def test_every_hostile_file_is_caught_and_malware_quarantined(redteam_run: dict[str, Any]) -> None:
    assert _names(redteam_run, lambda o: o["family"] == "ssi" and o["expect"] == "caught"
                  and o["verdict"] != "caught") == []
    assert _names(redteam_run, lambda o: o["quarantine_expected"] and not o["quarantine"]) == []


@pytest.mark.bench
def test_every_benign_twin_passes(redteam_run: dict[str, Any]) -> None:
    assert _names(redteam_run, lambda o: o["family"] == "ssi" and o["expect"] == "benign"
                  and o["verdict"] != "pass") == []


@pytest.mark.bench
def test_nirs_are_found_and_near_misses_are_not_errors(redteam_run: dict[str, Any]) -> None:
    assert _names(redteam_run, lambda o: o["family"] == "nir" and o["why"]) == []


@pytest.mark.bench
def test_no_nir_digit_in_any_report(redteam_run: dict[str, Any]) -> None:
    leaked = [f"{o['name']}: {o['leaks']} excerpt(s) after {o['leak_where'][:1]}" for o in redteam_run["outcomes"]
              if o["leaks"]]
    assert leaked == []


def test_nir_corpus_builds_for_many_seeds_with_consistent_expectations() -> None:
    for seed in range(5):
        for case in nir_corpus.generate(seed, texts=240, screens_count=0):
            assert case.files, case.name
            if case.category.startswith("lookalike"):  # its words, never an identifier OID, make it a look-alike
                assert "patientRole" not in case.note and case.klass != "filename"
