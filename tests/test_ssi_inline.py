"""Files written inside text: a saved page's data: pictures, an SVG's raster image, a SOAP trace's base64
CDA, a log's base64 text are decoded and checked as children (personal data, markup); keys, hashes,
tokens, certificates and fonts are left alone; what cannot be decoded is said."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import shutil
import urllib.parse

import pytest

from fixtures.pii_snippets import NirFactory, grouped, screenshot
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import FileVerdict
from validators.pii import make_validators as pii_validators
from validators.ssi.inline import MAX_PAYLOADS, MIN_BLOCK_CHARS, RULE, InlineValidator
from validators.ssi.markup import MarkupValidator

NIRS = NirFactory(31122026)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine([InlineValidator(), MarkupValidator(), *pii_validators({})])


def proof(path: str, text: str | bytes) -> ProofFile:
    data = text.encode() if isinstance(text, str) else text
    return ProofFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(data), data=data)


def rules_of(verdict: FileVerdict) -> list[str]:
    return sorted(f.rule for f in verdict.findings)


def child_types(verdict: FileVerdict) -> list[str]:
    return [child.media_type for child in verdict.children]


def wrapped(data: bytes, width: int) -> str:
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


def tiny_png() -> bytes:
    return screenshot([], 10, seed=5, size=(48, 24))


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed (make setup)")
def test_a_nir_in_a_saved_pages_picture_is_read_by_ocr(engine: Engine) -> None:
    shot = screenshot([NIRS.nir()], 14, seed=3, size=(900, 300))
    encoded = base64.b64encode(shot).decode()
    page = f'<html><body><h1>Dossier</h1><img src="data:image/png;base64,{encoded}"></body></html>'
    verdict = engine.check_file(proof("INS.1.1.1/page.html", page))
    assert child_types(verdict) == ["image/png"]
    assert "pii.nir" in rules_of(verdict.children[0])
    assert "pii.embedded" in rules_of(verdict)


def test_an_svgs_raster_image_and_a_percent_encoded_svg_are_children(engine: Engine) -> None:
    png = base64.b64encode(tiny_png()).decode()
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
           f'<image width="48" height="24" xlink:href="data:image/png;base64,{png}"/></svg>')
    assert child_types(engine.check_file(proof("INS.1.1.1/schema.svg", svg))) == ["image/png"]
    scripted = urllib.parse.quote('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    page = f'<html><body><img src="data:image/svg+xml,{scripted}"></body></html>'
    verdict = engine.check_file(proof("INS.1.1.1/page.html", page))
    assert child_types(verdict) == ["image/svg+xml"]
    assert any(rule.startswith("ssi.markup") for rule in rules_of(verdict.children[0]))


@pytest.mark.parametrize("width", [64, 76, 0])
def test_a_base64_document_in_a_trace_is_checked(engine: Engine, width: int) -> None:
    nir = NIRS.nir()
    cda = (f'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
           f'<id root="1.2.250.1.213.1.4.8" extension="{nir}"/></patientRole></recordTarget></ClinicalDocument>')
    body = wrapped(cda.encode(), width) if width else base64.b64encode(cda.encode()).decode()
    trace = ('<?xml version="1.0"?><Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body>'
             f'<Document id="doc1">\n{body}\n</Document></Body></Envelope>')
    verdict = engine.check_file(proof("DMP.1.1.1/trace.xml", trace))
    assert len(verdict.children) == 1
    assert "pii.embedded" in rules_of(verdict)


def test_a_base64_text_in_a_log_is_read(engine: Engine) -> None:
    text = f"Patient DUPONT, NIR {grouped(NIRS.nir())}\n" * 6
    log = f"2026-03-02 10:00:01 INFO envoi payload={base64.b64encode(text.encode()).decode()}\n2026-03-02 ok\n"
    verdict = engine.check_file(proof("DMP.1.1.1/envoi.log", log))
    assert [media.split("/")[0] for media in child_types(verdict)] == ["text"]
    assert "pii.nir" in rules_of(verdict.children[0])


def _certificate() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lgc.example.fr")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_keys_hashes_tokens_certificates_and_fonts_are_left_alone(engine: Engine) -> None:
    token = ".".join(base64.urlsafe_b64encode(part).decode() for part in (
        json.dumps({"alg": "RS256"}).encode(), json.dumps({"sub": "u", "exp": 1800000000}).encode(), bytes(range(256))))
    soap = ('<Envelope><Header><BinarySecurityToken>' + wrapped(_certificate(), 64) + "</BinarySecurityToken>"
            "<SignatureValue>" + base64.b64encode(hashlib.sha512(b"x").digest() * 4).decode() + "</SignatureValue>"
            "</Header></Envelope>")
    log = "\n".join(f"INFO sha={hashlib.sha256(str(i).encode()).hexdigest()} jwt={token}" for i in range(20))
    font = b"wOF2" + bytes(range(256)) * 4
    page = (f"<html><style>@font-face{{src:url(data:font/woff2;base64,{base64.b64encode(font).decode()})}}</style>"
            "<body>Bonjour</body></html>")
    for name, text in (("trace.xml", soap), ("acces.log", log), ("page.html", page)):
        verdict = engine.check_file(proof(f"DMP.1.1.1/{name}", text))
        assert (verdict.children, rules_of(verdict)) == ((), []), name


def test_a_data_url_that_does_not_decode_is_said(engine: Engine) -> None:
    page = '<html><body><img src="data:image/png;base64,iVBORw0KGgo$$$$AAAA"></body></html>'
    verdict = engine.check_file(proof("INS.1.1.1/page.html", page))
    found = [f for f in verdict.findings if f.rule == RULE]
    assert [dict(f.params)["reason"] for f in found] == ["its base64 is not valid"]


def numbered_png(number: int) -> str:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", f"image {number}")
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG", pnginfo=info)
    return base64.b64encode(out.getvalue()).decode()


def test_inline_files_past_the_limit_are_said_and_repeats_are_one() -> None:
    page = "<html><body>" + "".join(f'<img src="data:image/png;base64,{numbered_png(i)}">'
                                    for i in range(MAX_PAYLOADS + 5)) + "</body></html>"
    verdict = InlineValidator().check(proof("INS.1.1.1/page.html", page), _context())
    assert len(verdict.children) == MAX_PAYLOADS
    assert [dict(f.params)["what"] for f in verdict.findings] == ["the inline files past the limit"]
    image = f'<img src="data:image/png;base64,{numbered_png(1)}">'
    same = "<html><body>" + image * (MAX_PAYLOADS + 5) + "</body></html>"
    verdict = InlineValidator().check(proof("INS.1.1.1/page.html", same), _context())
    assert (len(verdict.children), verdict.findings) == (1, [])


def test_cda_documents_and_e_mails_are_left_to_their_checks_and_short_blocks_ignored() -> None:
    cda = proof("MSS.1.1.1/cr.xml", '<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>')
    assert not InlineValidator().applies_to(cda)
    attachment = wrapped(b"%PDF-1.4 " + bytes(600), 76)
    message = ("From: a@exemple.fr\nTo: b@exemple.fr\nSubject: CR\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
               'boundary="b"\n\n--b\nContent-Type: text/plain\n\nBonjour\n--b\nContent-Type: application/pdf\n'
               f"Content-Transfer-Encoding: base64\n\n{attachment}\n--b--\n")
    for name in ("MSS.1.1.1/message.eml", "MSS.1.1.1/message.txt"):  # the e-mail check reads its parts
        assert not InlineValidator().applies_to(proof(name, message))
    short = base64.b64encode(b"%PDF-1.4 " + b"x" * (MIN_BLOCK_CHARS // 2)).decode()
    assert len(short) < MIN_BLOCK_CHARS
    assert InlineValidator().check(proof("a/notes.txt", f"payload={short}\n"), _context()).children == []


def _context():  # type: ignore[no-untyped-def]
    from validators.base import CheckContext

    return CheckContext()


def test_a_text_past_the_read_limit_is_a_warning_not_a_quarantine(monkeypatch: pytest.MonkeyPatch) -> None:
    from validators.model import Severity
    from validators.ssi import inline

    monkeypatch.setattr(inline, "MAX_TEXT_BYTES", 4096)
    result = InlineValidator().check(proof("DMP.1.1.1/long.log", "INFO ok\n" * 2000), _context())
    assert [(f.rule, f.severity) for f in result.findings] == [(RULE, Severity.WARNING)]
