"""Fuzzing of the text readers: the proof-ID parser and the NIR detector with the personal-data scan.

Inputs are random text built from the characters these parsers care about (section codes, digits,
every separator they accept, line breaks, letters), with real ids and real NIRs planted in it.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from xml.sax.saxutils import escape

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import (
    assert_catalogued,
    assert_evidence_masked,
    assert_no_nir_leak,
    fuzz_settings,
    nirs,
    written_forms,
)

from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.mail.check import MailValidator
from validators.model import CheckState
from validators.pii import PiiValidator
from validators.pii.mask import mask_nir
from validators.pii.nir import KeyStatus, find_nirs, nir_key, structure_problem
from validators.proofid import MAX_TEXT, find_ids
from validators.referential import load_referential

REFERENTIAL = load_referential()
SYNTAX = REFERENTIAL.syntax

# --- the proof-ID parser -------------------------------------------------------------------------------

_ID_PIECES = st.one_of(
    st.sampled_from(sorted(SYNTAX.sections)),
    st.sampled_from(["LGC.", "SC.", "/va1", "/", ".", "_", "-", " ", "  ", "\t", "é", "AIRS"]),
    st.integers(0, 1200).map(str),
    st.text(max_size=6),
)
id_texts = st.lists(_ID_PIECES, max_size=40).map("".join)


@fuzz_settings(deadline_ms=500)
@given(id_texts)
def test_proof_id_parser_reads_any_text_consistently(text: str) -> None:
    for match in find_ids(text, SYNTAX):
        assert 1 <= len(match.numbers) <= 3
        assert text[slice(*match.span)] == match.written
        assert match.key.split(".")[0] in {match.section, f"{match.section}/VA1"}
        if len(match.numbers) > 1 or match.numbers[0] < 100:
            # The key is itself a well-formed id. Not for a lone 3-digit number: only a Squash prefix makes
            # "LGC.ANN.100" an id, and its key "ANN.100" reads like "PORT 443" (found by a long run).
            [again] = find_ids(match.key, SYNTAX)
            assert again.key == match.key
    for reading in REFERENTIAL.find(text):
        assert reading.match.written in text


@fuzz_settings(deadline_ms=1000, share=0.2)
@given(st.lists(_ID_PIECES, min_size=1, max_size=8).map("".join), st.integers(1, 4))
def test_proof_id_parser_on_long_repetitive_names_is_fast(piece: str, extra: int) -> None:
    text = piece * (MAX_TEXT // max(1, len(piece)) + extra)  # past the cut: costs no more than MAX_TEXT
    for match in find_ids(text, SYNTAX):
        assert match.span[1] <= MAX_TEXT


# --- the NIR detector ----------------------------------------------------------------------------------

_NOISE = st.text(alphabet="0123456789 .-\n\t\u00a0\u202f/;,|^(ABab:ClécléKEY", max_size=80)


@st.composite
def texts_with_nirs(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Digit-heavy noise with 0-3 real NIRs written in any accepted form, each set off by words."""
    planted = draw(st.lists(nirs("12"), max_size=3))
    parts = [draw(_NOISE)]
    for value in planted:
        parts.append(f" assuré NIR {draw(written_forms(value))} fin ")
        parts.append(draw(_NOISE))
    return "".join(parts), planted


@fuzz_settings(deadline_ms=500)
@given(texts_with_nirs(), st.booleans())
def test_nir_detector_never_raises_and_finds_what_was_planted(case: tuple[str, list[str]], lenient: bool) -> None:
    text, planted = case
    found = list(find_nirs(text, lenient=lenient))
    for match in found:
        assert 0 <= match.start < match.end <= len(text)
        assert structure_problem(match.body) is None
        valid = match.key is not None and int(match.key) == nir_key(match.body)
        assert (match.key_status is KeyStatus.VALID) == valid
    valid_values = {m.value for m in found if m.key_status is KeyStatus.VALID}
    assert {v.upper() for v in planted} <= valid_values


@fuzz_settings(deadline_ms=3000, share=0.2)
@given(st.text(alphabet="0123456789 .-\n\u00a0", min_size=1, max_size=40))
def test_nir_detector_on_100_kb_of_digit_runs_stays_fast(piece: str) -> None:
    text = piece * (100_000 // len(piece) + 1)  # digits and separators only: the worst case for the pattern
    for match in find_nirs(text):
        assert match.end - match.start <= 15 + 6 * 4 + 20  # 15 characters, bounded separators


# --- the personal-data check on text, XML and e-mail ----------------------------------------------------

PII = PiiValidator({})
# An e-mail's body is a child of the e-mail check (validators/mail), read by PII on its own.
ENGINE = Engine([MailValidator(), PII])
_NIR_RULES = ("pii.nir", "pii.fictitious-identity", "pii.ins-test", "pii.ins-production")


def _as_xml(text: str) -> bytes:
    safe = "".join(c for c in text if c in "\t\n" or c >= " ")
    return f'<?xml version="1.0" encoding="UTF-8"?><doc><p a="{escape(safe[:20])}">{escape(safe)}</p></doc>'.encode()


def _as_eml(text: str) -> bytes:
    message = EmailMessage()
    message["Subject"] = "preuve"
    message.set_content(text)
    return message.as_bytes()


_CONTAINERS = {
    "trace.log": ("text/plain", lambda t: t.encode("utf-8")),
    # Windows-1252 has the no-break space but not the narrow one (U+202F): written as the former.
    "trace-latin1.txt": ("text/plain", lambda t: t.replace("\u202f", "\u00a0").encode("cp1252")),
    "trace-utf16.txt": ("text/plain", lambda t: t.encode("utf-16")),
    "cda.xml": ("text/xml", _as_xml),
    "courriel.eml": ("message/rfc822", _as_eml),
}


@fuzz_settings(deadline_ms=3000)
@given(texts_with_nirs(), st.sampled_from(sorted(_CONTAINERS)))
def test_pii_check_masks_every_nir_it_reports(case: tuple[str, list[str]], name: str) -> None:
    text, planted = case
    media_type, encode = _CONTAINERS[name]
    data = encode(text)
    file = ProofFile(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=media_type, data=data)
    verdict = ENGINE.check_file(file)
    findings = [f for each in verdict.iter_files() for f in each.findings]
    assert all(c.state is not CheckState.NOT_RUN for each in verdict.iter_files() for c in each.checks)
    assert_catalogued(findings)
    assert_evidence_masked(findings)
    assert_no_nir_leak(findings, planted)
    # Under an INS assigning-authority OID (a long run wrote the production one, 1.2.250.1.213.1.4.8, into
    # the noise) a NIR is reported as an INS instead.
    reported = {f.evidence for f in findings if f.rule in _NIR_RULES}
    assert {mask_nir(v[0], v[13:]) for v in planted} <= reported


@pytest.mark.parametrize("text", ["LGC.ANN.100", "SC.INS.250"])
def test_a_prefixed_lone_three_digit_number_is_an_id_whose_key_alone_is_not(text: str) -> None:
    """Found by a long run, kept as a record of the parser's design: the prefix alone vouches for it."""
    [match] = find_ids(text, SYNTAX)
    assert len(match.numbers) == 1 and match.prefix is not None
    assert find_ids(match.key, SYNTAX) == []


def test_a_nir_under_the_production_ins_oid_is_reported_as_an_ins_masked() -> None:
    """Found by a long run: the scan reports it as pii.ins-production, masked like any NIR."""
    value = "100010100100105"
    data = _as_xml(f" assuré NIR {value} fin 1.2.250.1.213.1.4.8")
    file = ProofFile(path="cda.xml", size=len(data), sha256="", media_type="text/xml", data=data)
    findings = PII.check(file, CheckContext()).findings
    assert [(f.rule, f.evidence) for f in findings] == [("pii.ins-production", mask_nir("1", "05"))]
