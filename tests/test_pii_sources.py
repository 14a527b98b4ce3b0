"""Where the check looks: PDF text and metadata, e-mail headers/bodies/attachments, XML, file names."""

from __future__ import annotations

import hashlib
import io

import pytest

from fixtures import builders as b
from fixtures.pii_snippets import FICTITIOUS_PAT_TROIS, grouped, key_of
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import CheckState, FileVerdict, Severity
from validators.pii import PiiValidator, make_validators

BODY = "2791163456123"
NIR = BODY + key_of(BODY)


def proof_file(path: str, data: bytes) -> ProofFile:
    return ProofFile(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=sniff.media_type(data),
        data=data,
    )


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(make_validators({}))


def rules_of(verdict: FileVerdict) -> list[tuple[str, str]]:
    return sorted((f.rule, f.severity.value) for f in verdict.findings)


def pii_state(verdict: FileVerdict) -> CheckState:
    return next(c.state for c in verdict.checks if c.name == "pii")


def test_pdf_text_layer_gives_page_and_line(engine: Engine) -> None:
    pdf = b.make_pdf(["Compte rendu", f"Patient DUPONT\nNIR {grouped(NIR)}"])
    verdict = engine.check_file(proof_file("DOC.1.1.1/cr.pdf", pdf))
    (finding,) = [f for f in verdict.findings if f.rule == "pii.nir"]
    assert finding.location.page == 2 and finding.location.line == 2
    assert finding.evidence == f"2 ** ** ** *** *** {NIR[13:]}"
    assert pii_state(verdict) is CheckState.RAN


def test_pdf_metadata_is_read(engine: Engine) -> None:
    pdf = b.make_pdf(["Rien ici"], info_title=f"Dossier {NIR}")
    verdict = engine.check_file(proof_file("cr.pdf", pdf))
    (finding,) = [f for f in verdict.findings if f.rule == "pii.nir"]
    assert finding.location.entry == "PDF metadata"


def test_an_encrypted_pdf_is_reported_as_not_inspected(engine: Engine) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(b.make_pdf([f"NIR {NIR}"]))))
    writer.encrypt("secret-password")
    out = io.BytesIO()
    writer.write(out)
    verdict = engine.check_file(proof_file("locked.pdf", out.getvalue()))
    assert ("pii.not-inspected", "warning") in rules_of(verdict)
    assert "pii.nir" not in {f.rule for f in verdict.findings}
    assert pii_state(verdict) is CheckState.PARTIAL


# E-mail bodies and attachments are children of the e-mail check: tests/test_email_pii.py.


def test_cda_attributes_give_an_xpath(engine: Engine) -> None:
    cda = (
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
        f'<id root="1.2.3.4" extension="1234567890121"/><id root="1.2.250.1.213.1.4.8" extension="{NIR}"/>'
        "</patientRole></recordTarget></ClinicalDocument>"
    ).encode()
    verdict = engine.check_file(proof_file("doc.xml", cda))
    (finding,) = verdict.findings
    assert finding.rule == "pii.ins-production" and finding.severity is Severity.ERROR
    assert finding.location.xpath == "/ClinicalDocument/recordTarget/patientRole/id[2]"


def test_a_value_under_the_test_oid_does_not_silence_it_elsewhere_in_the_file(engine: Engine) -> None:
    other_body = "1660699123456"
    other = other_body + key_of(other_body)
    cda = (
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
        f'<id root="1.2.250.1.213.1.4.10" extension="{other}"/></patientRole></recordTarget>'
        f"<component><text>INS {other} et patient test {FICTITIOUS_PAT_TROIS}</text></component>"
        "</ClinicalDocument>"
    ).encode()
    verdict = engine.check_file(proof_file("doc.xml", cda))
    # Under the test OID: a declaration, a warning there; the labelled occurrence in the text is judged
    # where it is written (an error); the published test patient is information.
    assert rules_of(verdict) == [
        ("pii.fictitious-identity", "info"), ("pii.ins-test", "warning"), ("pii.nir", "error"),
    ]
    by_rule = {f.rule: f for f in verdict.findings}
    assert by_rule["pii.ins-test"].location.xpath != by_rule["pii.nir"].location.xpath


def test_broken_xml_is_still_scanned_as_text(engine: Engine) -> None:
    verdict = engine.check_file(proof_file("broken.xml", f"<a><nir>{NIR}</nir><b>".encode()))
    assert ("pii.nir", "error") in rules_of(verdict)


def test_file_names_are_scanned(engine: Engine) -> None:
    verdict = engine.check_file(proof_file(f"INS.1.1.1/capture_{NIR}.txt", b"rien"))
    (finding,) = verdict.findings
    assert finding.rule == "pii.nir" and finding.location.entry == "file name"


def test_latin1_and_utf16_text(engine: Engine) -> None:
    for data in (f"Assuré n° SS : {BODY}".encode("cp1252"), f"NIR {NIR}".encode("utf-16")):
        verdict = engine.check_file(proof_file("x.txt", data))
        assert any(f.severity is Severity.ERROR for f in verdict.findings)


@pytest.mark.parametrize(
    ("name", "data", "applies"),
    [
        ("a.txt", b"texte", True),
        ("a.log", b"2024 INFO x\n", True),
        ("a.csv", b"a;b\n1;2\n", True),
        ("a.hl7", b"MSH|^~\\&|A\rPID|1\r", True),
        ("a.pdf", b.make_pdf(["x"]), True),
        ("a.eml", b.make_eml("s", "b"), True),
        ("a.png", b.make_screenshot(["x"]), True),
        ("a.zip", b"PK\x03\x04" + bytes(60), False),
        ("a.bin", bytes([0x8F, 0x00, 0x13, 0xFE]) * 300, False),
        ("a.exe", b"MZ" + bytes(200), False),
    ],
    ids=[f"applies-{i}" for i in range(10)],
)
def test_applies_to_text_capable_files_only(name: str, data: bytes, applies: bool) -> None:
    assert PiiValidator({}).applies_to(proof_file(name, data)) is applies


def test_an_unusable_allowlist_makes_the_check_not_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("identities: 3\n", "utf-8")
    engine = Engine(make_validators({"pii": {"allowlist": [str(bad)]}}))
    verdict = engine.check_file(proof_file("a.txt", b"rien"))
    assert pii_state(verdict) is CheckState.NOT_RUN
    assert ("system.check-not-run", "error") in rules_of(verdict)


@pytest.mark.parametrize("codec", ["utf-32", "utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be"])
def test_wide_text_with_or_without_a_byte_order_mark_is_read(engine: Engine, codec: str) -> None:
    data = f"Compte rendu\nPatient : DUPONT Jean\nNIR : {grouped(NIR)}\n".encode(codec)
    assert ("pii.nir", "error") in rules_of(engine.check_file(proof_file("INS.1.1.1/export.txt", data)))


@pytest.mark.parametrize("prolog", [f"<?trace nir={NIR}?>", f"<!-- NIR {grouped(NIR)} -->"])
def test_a_nir_before_or_after_the_root_element_is_read(engine: Engine, prolog: str) -> None:
    before = f'<?xml version="1.0"?>{prolog}<doc><a>ok</a></doc>'.encode()
    after = f'<?xml version="1.0"?><doc><a>ok</a></doc>{prolog}'.encode()
    for data in (before, after):
        assert ("pii.nir", "error") in rules_of(engine.check_file(proof_file("INS.1.1.1/trace.xml", data)))
