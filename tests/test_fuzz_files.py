"""Fuzzing of every check at once: the hostile and benign fixture files, mutated, through the engine.

Each example is one file of ``fixtures.hostile`` (PDF, Office, OLE, images, SVG/HTML, e-mail, zip, CDA,
executables...) after a few random edits, checked by every validator (no clamd, no CDA ruleset: those
report themselves as not run). Properties: no check crashes (``system.check-crashed``), every finding is
catalogued, and personal-data evidence is masked.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import assert_catalogued, assert_evidence_masked, fuzz_settings, mutated

from fixtures.hostile import benign_cases, hostile_cases
from fixtures.zipcraft import STORED, Member, build_zip
from validators import sniff
from validators.base import ProofFile
from validators.dryrun import build_engine
from validators.engine import Engine

MAX_SEED_BYTES = 64 * 1024  # the bombs and the 100 000-entry zip are fuzzed by the zip tests instead
SEEDS = {case.name: case.data for case in [*hostile_cases(), *benign_cases()] if len(case.data) <= MAX_SEED_BYTES}
TOKENS = (b"%PDF-1.7", b"obj", b"endobj", b"stream", b"endstream", b"/JavaScript", b"/Length 999999", b"xref",
          b"trailer", b"%%EOF", b"PK\x03\x04", b"PK\x05\x06", b"\x89PNG", b"IHDR", b"IEND", b"\xff\xd8\xff",
          b"<svg", b"<script>", b"<!ENTITY", b"\xd0\xcf\x11\xe0", b"MZ", b"\x7fELF", b"Content-Type: ",
          b"base64", b"\r\n\r\n", b"--", b"<ClinicalDocument")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield build_engine({"rulesets_dir": str(tmp_path_factory.mktemp("no-ruleset"))})


@st.composite
def mutated_files(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    return name, draw(mutated(SEEDS[name], TOKENS))


@fuzz_settings(deadline_ms=20000, share=1.0)
@given(case=mutated_files())
def test_every_check_on_mutated_fixture_files(engine: Engine, case: tuple[str, bytes]) -> None:
    name, data = case
    file = ProofFile(path=f"INS.41.2.2/{name}", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(data[: sniff.SNIFF_BYTES]), data=data, proof_id="INS.41.2.2")
    verdict = engine.check_file(file)
    findings = [f for v in verdict.iter_files() for f in v.findings]
    assert_catalogued(findings)
    assert_evidence_masked(findings)
    crashed = sorted({(f.rule, f.message) for f in findings if f.rule == "system.check-crashed"})
    assert crashed == []


# --- crashes the fuzzing found ----------------------------------------------------------------------------


def test_a_pdf_whose_catalog_cannot_be_resolved_is_partly_inspected_not_a_crash(engine: Engine) -> None:
    """Found by the test above: a vertical tab after ``1 0 obj`` made pypdf see the catalog referring to
    itself; counting the pages raised LimitReachedError out of the personal-data check."""
    data = SEEDS["attachment-annot.pdf"].replace(b"1 0 obj\n<<", b"1 0 obj\x0b<<", 1)
    file = ProofFile(path="INS.41.2.2/preuve.pdf", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="application/pdf", data=data)
    verdict = engine.check_file(file)
    assert "system.check-crashed" not in {f.rule for f in verdict.findings}
    assert {c.name: c.state.value for c in verdict.checks}["pii"] == "partial"
    assert "pii.not-inspected" in {f.rule for f in verdict.findings}


def test_an_office_document_with_corrupt_deflate_data_is_not_inspected_not_a_crash(engine: Engine) -> None:
    """Found by the test above: zipfile raised zlib.error reading a part of a mutated .xlsm, and the
    Office check let it out."""
    data = bytearray(SEEDS["xlm.xlsm"])
    name_length, extra_length = struct.unpack_from("<2H", data, 26)  # of the first local header
    data[30 + name_length + extra_length] = 0xFF  # deflate block type 3: "invalid block type"
    file = ProofFile(path="INS.41.2.2/classeur.xlsm", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(bytes(data)), data=bytes(data))
    verdict = engine.check_file(file)
    assert "system.check-crashed" not in {f.rule for f in verdict.findings}
    assert {c.name: c.state.value for c in verdict.checks}["ssi-office"] == "not_run"


def test_a_zip_needing_an_unknown_version_is_not_an_xdm_crash(engine: Engine) -> None:
    """Found by the test above (3000 examples): a central directory asking for an unknown "version needed" made
    zipfile raise NotImplementedError in the XDM check's applies_to, and the engine record a crash."""
    data = build_zip([Member("lien", b"/etc/passwd", method=STORED)])
    central = data.index(b"PK\x01\x02")
    data = data[: central + 6] + b"\xff\xff" + data[central + 8 :]  # version needed to extract
    file = ProofFile(path="INS.41.2.2/archive.zip", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="application/zip", data=data)
    verdict = engine.check_file(file)
    assert "system.check-crashed" not in {f.rule for f in verdict.findings}


def test_a_pdf_with_an_unknown_encryption_handler_is_reported_encrypted_not_a_crash(engine: Engine) -> None:
    """Found by the test above (3000 examples): bytes written over ``/P`` in the encryption dictionary hid
    ``/Filter /Standard``; pypdf's reader raised NotImplementedError out of the PDF check."""
    data = SEEDS["encrypted.pdf"]
    start = data.index(b"/P ")
    data = data[:start] + b"/P 4294967\xff\xff\xff\xff" + data[start + len(b"/P 4294967") + 4 :]
    file = ProofFile(path="INS.41.2.2/preuve.pdf", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="application/pdf", data=data)
    rules_found = {f.rule for f in engine.check_file(file).findings}
    assert "system.check-crashed" not in rules_found and "ssi.pdf.encrypted" in rules_found
