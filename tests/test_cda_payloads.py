"""Every payload inside a CDA document (issue 12 item 2): decoded, decompressed, bounded, checked as a child."""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import random
import zlib
from pathlib import Path

import pytest

from fixtures import hostile, hostile_content
from fixtures.hostile_content import cda, observation_ed, observation_media
from validators.base import CheckContext, ProofFile
from validators.cda import CdaValidator, embedded
from validators.cda.document import load
from validators.engine import Engine
from validators.model import Severity
from validators.registry import default_validators

ANS_EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "ans" / "TestContenuCDA-3-0" / "ExemplesCDA"
SETTINGS = {"rulesets_dir": "/nonexistent/proofcheck-rulesets"}  # extraction needs no ruleset


def _extract(data: bytes, **limits: int) -> tuple[list[embedded.Embedded], list[tuple[str, str]]]:
    loaded = load(data, max_bytes=64 * 1024 * 1024, max_depth=256)
    assert loaded.document is not None
    children, findings = embedded.extract(loaded.document, **limits)
    return children, [(f.rule, f.message) for f in findings]


def _proof(name: str, data: bytes) -> ProofFile:
    return ProofFile(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), media_type="text/xml",
                     data=data)


def test_observation_media_and_ed_values_become_named_children() -> None:
    png = hostile.png(2, 2)
    document = cda(
        '<renderMultiMedia referencedObject="m1"/>',
        [observation_media("m1", "image/png", png), observation_media("m2", "application/pdf", b"%PDF-1.7 x"),
         observation_ed("text/plain", b"compte rendu")],
    )
    children, findings = _extract(document)
    assert findings == []
    assert [(c.name, c.origin, c.data[:4]) for c in children] == [
        ("observationMedia-1.png", "cda:observationMedia", png[:4]),
        ("observationMedia-2.pdf", "cda:observationMedia", b"%PDF"),
        ("observation-value-1.txt", "cda:observation-value", b"comp"),
    ]


@pytest.mark.parametrize(
    ("compression", "packed"),
    [
        ("DF", hostile_content.raw_deflate(b"contenu fictif " * 100)),
        ("DF", zlib.compress(b"contenu fictif " * 100)),  # a zlib stream declared DF is read too
        ("ZL", zlib.compress(b"contenu fictif " * 100)),
        ("GZ", gzip.compress(b"contenu fictif " * 100)),
        ("BZ", bz2.compress(b"contenu fictif " * 100)),
    ],
    ids=["DF-raw", "DF-zlib", "ZL", "GZ", "BZ"],  # ids of bytes would hold gzip's time: workers must agree
)
def test_declared_compression_is_undone(compression: str, packed: bytes) -> None:
    children, findings = _extract(cda("", [observation_ed("text/plain", packed, compression)]))
    assert findings == []
    assert [c.data for c in children] == [b"contenu fictif " * 100]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (observation_media("m1", "image/png", b"", encoded="iVBOR!!!***w0K%%"), "base64 is not valid"),
        (observation_media("m1", "image/png", b"\xff" * 64, compression="DF"), "corrupt or truncated"),
        (observation_media("m1", "image/png", hostile_content.raw_deflate(random.Random(1).randbytes(5000))[:2000],
                            compression="DF"),
         "corrupt or truncated"),
        (observation_media("m1", "image/png", b"\x1f\x9d" + bytes(30), compression="Z"), "not supported"),
        (observation_media("m1", "image/png", hostile_content.deflate_bomb(8 * 1024 * 1024), compression="DF"),
         "decompression bomb"),
        (observation_media("m1", "image/png", bz2.compress(bytes(8 * 1024 * 1024)), compression="BZ"),
         "decompression bomb"),
    ],
)
def test_a_payload_that_cannot_be_decoded_is_an_error_never_silence(entry: str, reason: str) -> None:
    children, findings = _extract(cda("", [entry]), max_bytes=4 * 1024 * 1024)
    assert children == []
    assert [rule for rule, _ in findings] == ["ssi.cda.payload-not-inspected"]
    assert reason in findings[0][1] and "observationMedia-1.png" in findings[0][1]


def test_an_over_limit_payload_is_refused_before_decoding() -> None:
    loaded = load(cda("", [observation_media("m1", "image/png", bytes(300_000))]), max_bytes=1 << 26, max_depth=256)
    assert loaded.document is not None
    children, findings = embedded.extract(loaded.document, max_bytes=100_000)
    assert children == [] and "larger than the size limit" in findings[0].message
    assert findings[0].evidence == "100000 bytes"  # the limit, in the evidence: the message is fixed words


def test_the_total_of_all_payloads_is_bounded() -> None:
    entries = [observation_media(f"m{i}", "text/plain", bytes(40_000)) for i in range(5)]
    children, findings = _extract(cda("", entries), max_total_bytes=100_000)
    assert len(children) == 2
    assert [rule for rule, _ in findings] == ["ssi.cda.payload-not-inspected"] * 3


def test_ten_thousand_media_give_a_bounded_set_of_children_and_one_finding() -> None:
    tiny = hostile.png(1, 1)
    loaded = load(cda("", [observation_media(f"m{i}", "image/png", tiny) for i in range(10_000)]),
                  max_bytes=1 << 26, max_depth=256)
    assert loaded.document is not None
    children, findings = embedded.extract(loaded.document)
    assert len(children) == embedded.MAX_PAYLOADS
    assert len(findings) == 1 and "more embedded files than the limit" in findings[0].message
    assert findings[0].evidence == f"10000 embedded files, limit {embedded.MAX_PAYLOADS}"


def test_a_thumbnail_is_its_own_payload_and_not_part_of_its_value() -> None:
    case = next(c for c in hostile_content.CONTENT_GROUPS[0]() if c.name == "cda-thumbnail-exe.xml")
    children, findings = _extract(case.data)
    assert findings == []
    assert [(c.name, c.data[:2]) for c in children] == [
        ("observationMedia-1.png", b"\x89P"),
        ("thumbnail-1.png", b"MZ"),
    ]


def test_inline_markup_is_checked_but_plain_text_and_references_are_not_payloads() -> None:
    observation = '<observation classCode="OBS" moodCode="EVN">{}</observation>'
    html = observation.format('<text mediaType="text/html">&lt;script&gt;x&lt;/script&gt;</text>')
    plain = observation.format('<text mediaType="text/plain">ok</text>')
    ref = observation.format('<text mediaType="text/xml"><reference value="#a"/></text>')
    children, findings = _extract(cda("", [html, plain, ref]))
    assert findings == []
    assert [(c.name, c.data) for c in children] == [("observation-text-1.html", b"<script>x</script>")]


def test_the_level1_body_keeps_its_conformance_finding() -> None:
    body = (
        '<component><nonXMLBody><text mediaType="application/pdf" representation="B64">!!!</text></nonXMLBody>'
        "</component>"
    )
    document = cda("").replace(b"<component><structuredBody>", body.encode() + b"<!--").replace(
        b"</structuredBody></component>", b"-->")
    _, findings = _extract(document)
    assert sorted(rule for rule, _ in findings) == ["cda.embedded", "ssi.cda.payload-not-inspected"]


@pytest.mark.parametrize(
    "name",
    ["cda-media-exe.xml", "cda-extension-pdf-js.xml", "cda-ed-deflate-pdf-js.xml", "cda-ed-df-zlib-elf.xml",
     "cda-ed-gz-svg.xml", "cda-text-b64-html.xml", "cda-thumbnail-exe.xml"],
)
def test_a_hostile_payload_is_caught_on_its_child_and_carried_by_the_document(name: str) -> None:
    case = next(c for c in hostile_content.CONTENT_GROUPS[0]() if c.name == name)
    validators = [v for v in default_validators(SETTINGS) if v.name not in ("antivirus", "pii", "cda-schematron")]
    verdict = Engine(validators).check_file(_proof(name, case.data))
    inner = {(f.rule, f.severity) for child in verdict.children for file in child.iter_files() for f in file.findings}
    assert any(rule.startswith(case.rule) and severity is Severity.ERROR for rule, severity in inner), inner
    assert ("ssi.embedded-risk", Severity.ERROR) in {(f.rule, f.severity) for f in verdict.findings}


def test_the_check_stops_at_its_deadline() -> None:
    from validators.base import DeadlineExceededError

    document = cda("", [observation_media(f"m{i}", "text/plain", b"x") for i in range(10)])
    ctx = CheckContext(deadline=0.0)
    with pytest.raises(DeadlineExceededError):
        CdaValidator(SETTINGS).check(_proof("a.xml", document), ctx)


@pytest.mark.skipif(not ANS_EXAMPLES.is_dir(), reason="ANS reference tree absent")
def test_every_ans_example_payload_is_found_and_none_raises_an_ssi_or_format_error() -> None:
    """The ANS examples carry PDFs and pictures in observationMedia and nonXMLBody: all are extracted and
    checked, and none is dangerous (benign twins of the hostile payloads)."""
    validators = [v for v in default_validators(SETTINGS) if v.name not in ("antivirus", "pii", "cda-schematron")]
    engine = Engine(validators)
    found, errors = 0, []
    for path in sorted(ANS_EXAMPLES.glob("*.xml")):
        data = path.read_bytes()
        verdict = engine.check_file(_proof(path.name, data))
        expected = data.count(b'representation="B64"')
        assert len(verdict.children) == expected, path.name
        found += expected
        errors += [(path.name, f.rule) for child in verdict.children for file in child.iter_files()
                   for f in file.findings if f.severity is Severity.ERROR]
    assert found >= 40 and errors == []


def test_base64_is_encoded_as_producers_write_it() -> None:
    # 76-column lines (MIME) and a single line both decode to the same payload.
    data = bytes(range(256)) * 10
    one_line = cda("", [observation_media("m1", "application/pdf", b"", encoded=base64.b64encode(data).decode())])
    wrapped = cda("", [observation_media("m1", "application/pdf", data)])
    assert _extract(one_line)[0][0].data == _extract(wrapped)[0][0].data == data
