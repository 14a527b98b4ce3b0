"""What every fuzz test shares: the example budget, the properties, and strategies for NIRs.

The fuzz tests (``tests/test_fuzz_*.py``) run briefly in CI (``CI_EXAMPLES`` per test, derandomized so a
CI run is reproducible) and longer on demand with a random seed::

    PROOFCHECK_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/test_fuzz_*.py -q

Properties checked on every example: nothing raises, each example stays under its ``deadline``, every
finding is a catalogued rule with its message template filled in, and no full NIR written into the input
comes back in a finding's evidence or message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.builders import make_nir
from validators import rules
from validators.model import Finding

EXAMPLES_ENV = "PROOFCHECK_FUZZ_EXAMPLES"
CI_EXAMPLES = 50
# A masked NIR (validators.pii.mask): the sex digit and the key at most.
MASKED_NIR = re.compile(r"[1-8*] \*\* \*\* \*\* \*\*\* \*\*\* (?:\d\d|--)")
_SEPARATORS = re.compile(r"[\s.\-\u00a0\u202f]")


def example_budget() -> int:
    """Examples per fuzz test: ``CI_EXAMPLES`` unless ``PROOFCHECK_FUZZ_EXAMPLES`` asks for more (or fewer)."""
    value = os.environ.get(EXAMPLES_ENV, "").strip()
    if not value:
        return CI_EXAMPLES
    try:
        return max(1, int(value))
    except ValueError:
        raise ValueError(f"{EXAMPLES_ENV} must be a whole number of examples, not {value!r}") from None


def fuzz_settings(deadline_ms: int, share: float = 1.0) -> settings:
    """Hypothesis settings for one fuzz test: ``share`` of the example budget, each within ``deadline_ms``.

    The short CI run is derandomized (the same examples every run, so CI never fails on a new random
    find without a code change); a long run explores with a fresh seed and keeps what it finds in the
    local example database.
    """
    budget = example_budget()
    return settings(
        max_examples=max(1, round(budget * share)),
        deadline=timedelta(milliseconds=deadline_ms),
        derandomize=budget <= CI_EXAMPLES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=True,
    )


def assert_catalogued(findings: Iterable[Finding]) -> None:
    """Each finding names a catalogued rule and fills in every placeholder of its message template."""
    catalogue = rules.catalogue()
    for finding in findings:
        assert finding.rule in catalogue, f"uncatalogued rule {finding.rule}"
        for name in catalogue[finding.rule].placeholders:
            assert "{" + name + "}" not in finding.message, f"{finding.rule}: placeholder {name} left unfilled"


def digits_only(text: str) -> str:
    return _SEPARATORS.sub("", text)


def assert_no_nir_leak(findings: Iterable[Finding], nirs: Iterable[str]) -> None:
    """No finding's evidence or message holds one of ``nirs`` (13-character body), in any grouping."""
    bodies = [n[:13].upper() for n in nirs]
    for finding in findings:
        for field in (finding.evidence or "", finding.message):
            flat = digits_only(field).upper()
            assert not any(body in flat for body in bodies), f"{finding.rule} repeats a NIR given as input"


def assert_evidence_masked(findings: Iterable[Finding]) -> None:
    """Personal-data findings carry a masked value (or none), never digits beyond the sex digit and key."""
    for finding in findings:
        if finding.family == "pii" and finding.evidence is not None:
            assert MASKED_NIR.fullmatch(finding.evidence), f"{finding.rule}: evidence is not a masked NIR"


@st.composite
def nirs(draw: st.DrawFn, sexes: str = "12") -> str:
    """A structurally valid NIR with its key (15 characters), metropolitan, Corsican or overseas."""
    sex = int(draw(st.sampled_from(sexes)))
    year = draw(st.integers(0, 99))
    month = draw(st.integers(1, 12))
    department = draw(st.sampled_from(["01", "13", "2A", "2B", "75", "78", "95", "97", "99"]))
    commune = f"{draw(st.integers(1, 999)):03d}"
    order = f"{draw(st.integers(1, 999)):03d}"
    return make_nir(sex, year, month, department, commune, order)


def written_forms(value: str) -> st.SearchStrategy[str]:
    """The ways a NIR is written in proofs: compact, grouped by blanks, dots, hyphens or no-break spaces."""
    groups = [value[0], value[1:3], value[3:5], value[5:7], value[7:10], value[10:13], value[13:]]
    return st.sampled_from(["", " ", ".", "-", "\u00a0", "\u202f"]).map(lambda sep: sep.join(groups))


_BOUNDARIES = (b"\x00\x00", b"\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x00")


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, tokens: tuple[bytes, ...] = ()) -> bytes:
    """``seed`` after 1-6 random edits: bit flips, boundary values or format ``tokens`` written over it,
    inserts, deletions, duplicated slices and cuts (truncation)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "duplicate", "truncate"]))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "overwrite":
            value = draw(st.sampled_from(_BOUNDARIES + tokens))
            data[at : at + len(value)] = value
        elif edit == "insert":
            data[at:at] = draw(st.one_of(st.binary(min_size=1, max_size=16), st.sampled_from(_BOUNDARIES + tokens)))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


# --- the support itself -------------------------------------------------------------------------------


def test_budget_defaults_to_the_ci_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXAMPLES_ENV, raising=False)
    chosen = fuzz_settings(1000, share=0.5)
    assert chosen.max_examples == CI_EXAMPLES // 2 and chosen.derandomize
    assert chosen.deadline == timedelta(seconds=1)


def test_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXAMPLES_ENV, "5000")
    chosen = fuzz_settings(200)
    assert chosen.max_examples == 5000 and not chosen.derandomize
    monkeypatch.setenv(EXAMPLES_ENV, "beaucoup")
    with pytest.raises(ValueError, match=EXAMPLES_ENV):
        example_budget()


def test_a_leaked_nir_is_caught_in_any_grouping() -> None:
    value = make_nir()
    grouped = " ".join([value[0], value[1:3], value[3:5], value[5:7], value[7:10], value[10:13], value[13:]])
    leaking = Finding("pii.nir", rules.get("pii.nir").severity, f"found {grouped}", evidence="1 ** ** ** *** *** 42")
    with pytest.raises(AssertionError, match="repeats a NIR"):
        assert_no_nir_leak([leaking], [value])
    assert_no_nir_leak([leaking], [make_nir(sex=2)])
    with pytest.raises(AssertionError, match="not a masked NIR"):
        assert_evidence_masked([Finding("pii.nir", leaking.severity, "x", evidence=value)])


def test_an_unfilled_template_or_unknown_rule_is_caught() -> None:
    with pytest.raises(AssertionError, match="placeholder"):
        assert_catalogued([rules.finding("ssi.archive.malformed")])
    with pytest.raises(AssertionError, match="uncatalogued"):
        assert_catalogued([Finding("ssi.nothing", rules.get("ssi.archive.malformed").severity, "x")])


@fuzz_settings(200)
@given(nirs().flatmap(lambda v: st.tuples(st.just(v), written_forms(v))))
def test_generated_nirs_are_valid_and_read_back(case: tuple[str, str]) -> None:
    value, written = case
    assert len(value) == 15 and digits_only(written) == value
