"""format.* rules: real type vs extension, accepted formats, empty/unreadable/truncated files.

Every fixture is built here from scratch (synthetic bytes, no real proof content).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from validators import filetype, rules, sniff
from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.model import CheckState, Severity, Status

# --- synthetic fixtures -------------------------------------------------------------------------


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (30, 200, 30)).save(out, format="JPEG", quality=80)
    return out.getvalue()


def pdf_bytes() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    body = b"%PDF-1.7\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(body)
    body += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    body += b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return body


def zip_bytes(members: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (members or {"IHE_XDM/SUBSET01/METADATA.XML": b"<x/>" * 100}).items():
            archive.writestr(name, data)
    return out.getvalue()


def docx_bytes() -> bytes:
    content_types = (
        b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Override PartName="/word/document.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    rels = b"<Relationships/>"
    return zip_bytes({"[Content_Types].xml": content_types, "_rels/.rels": rels, "word/a.xml": b"<w/>"})


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(brand: bytes = b"isom", with_moov: bool = True) -> bytes:
    ftyp = box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + b"mp41")
    moov = box(b"moov", box(b"mvhd", b"\x00" * 100)) if with_moov else b""
    return ftyp + moov + box(b"mdat", b"\x00" * 2000)


def webm_bytes(declared_extra: int = 0) -> bytes:
    doc_type = bytes.fromhex("4282") + b"\x84webm"
    versions = bytes.fromhex("4286810142f7810142f2810442f3810842878104428581 02".replace(" ", ""))
    header_body = versions + doc_type
    header = bytes.fromhex("1a45dfa3") + bytes([0x80 | len(header_body)]) + header_body
    segment_body = b"\xec" + bytes([0x80 | 50]) + b"\x00" * 50  # a Void element
    size = len(segment_body) + declared_extra
    segment = bytes.fromhex("18538067") + b"\x01" + size.to_bytes(7, "big") + segment_body
    return header + segment


def eml_bytes() -> bytes:
    return (
        b"From: editeur@example.invalid\r\nTo: test@example.invalid\r\nSubject: Preuve MSS\r\n"
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n\r\nCorps fictif.\r\n"
    )


def pe_bytes() -> bytes:
    header = bytearray(b"MZ" + b"\x90\x00" + b"\x00" * 56 + struct.pack("<I", 64))
    return bytes(header) + b"PE\x00\x00" + b"\x4c\x01" + b"\x00" * 200


CDA_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id/></ClinicalDocument>\n'
)
LOG_TEXT = b"2024-01-01 12:00:00 INFO import started\n2024-01-01 12:00:01 INFO import done\n" * 5
CSV_TEXT = b"date,action,result\n2024-01-01,import,ok\n2024-01-02,export,ok\n"
SCRIPT = b"#!/bin/sh\necho fictitious\n"
HTML = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>x</p></body></html>\n"


def proof(path: str, data: bytes, depth: int = 0) -> ProofFile:
    own_name = path.rsplit("!", 1)[-1].split(":", 1)[-1] if depth else None  # as the engine names children
    return ProofFile(
        path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        media_type="application/octet-stream", data=data, depth=depth, proof_id="INS.41.2.2",
        own_name=own_name,
    )


def run(path: str, data: bytes, depth: int = 0) -> list[tuple[str, str]]:
    result = filetype.FiletypeValidator().check(proof(path, data, depth), CheckContext())
    assert result.state is CheckState.RAN
    return [(f.rule, f.severity.value) for f in result.findings]


# --- accepted, well-formed, well-named files: no finding ------------------------------------------

GOOD = {
    "capture.png": png_bytes,
    "capture.PNG": png_bytes,
    "photo.jpg": jpeg_bytes,
    "photo.jpeg": jpeg_bytes,
    "document.pdf": pdf_bytes,
    "xdm.zip": zip_bytes,
    "video.mp4": mp4_bytes,
    "video.mov": lambda: mp4_bytes(b"qt  "),
    "video.webm": webm_bytes,
    "cda.xml": lambda: CDA_XML,
    "message.eml": eml_bytes,
    "trace.log": lambda: LOG_TEXT,
    "trace.txt": lambda: LOG_TEXT,
    "export.csv": lambda: CSV_TEXT,
    "cda-sans-declaration.xml": lambda: b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id/></ClinicalDocument>',
    "extrait.log": lambda: b"import os\nimport sys\ndef f():\n    pass\n",  # libmagic says python; no shebang
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_accepted_formats_pass(name: str) -> None:
    assert run(name, GOOD[name]()) == []


# --- each rule triggered ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("capture.pdf", png_bytes, [("format.extension-mismatch", "error")]),
        ("document.png", pdf_bytes, [("format.extension-mismatch", "error")]),
        ("capture.jpg", png_bytes, [("format.extension-mismatch", "warning")]),  # both images
        ("video.mp4", lambda: mp4_bytes(b"qt  "), [("format.extension-mismatch", "warning")]),
        ("capture", png_bytes, [("format.extension-mismatch", "error")]),  # no extension
        ("archive.docx", zip_bytes, [("format.extension-mismatch", "error")]),
        ("cda.pdf", lambda: CDA_XML, [("format.extension-mismatch", "error")]),
    ],
)
def test_extension_mismatch(name: str, make: object, expected: list[tuple[str, str]]) -> None:
    assert callable(make)
    assert run(name, make()) == expected


def test_extension_mismatch_names_both_types() -> None:
    result = filetype.FiletypeValidator().check(proof("capture.pdf", png_bytes()), CheckContext())
    message = result.findings[0].message
    assert "image/png" in message and ".pdf" in message and "PDF document" in message


def test_child_without_extension_is_not_a_mismatch() -> None:
    assert run("cda.xml!1:embedded-1", pdf_bytes(), depth=1) == []
    assert run("mail.eml!1:capture.pdf", png_bytes(), depth=1) == [("format.extension-mismatch", "error")]


@pytest.mark.parametrize(
    ("name", "make", "label"),
    [
        ("setup.exe", pe_bytes, "Windows executable"),
        ("capture.png", pe_bytes, "Windows executable"),  # an executable under any extension
        ("notes.txt", lambda: SCRIPT, "script"),
        ("anim.gif", lambda: b"GIF89a" + b"\x01\x00\x01\x00\x00\x00\x00;", "image format not accepted"),
        # 7z, tar, RAR... are accepted containers (the archive check opens them); zstd is not.
        ("archive.zst", lambda: b"\x28\xb5\x2f\xfd" + b"\x00" * 40, "archive or binary file"),
    ],
)
def test_not_accepted(name: str, make: object, label: str) -> None:
    assert callable(make)
    result = filetype.FiletypeValidator().check(proof(name, make()), CheckContext())
    assert [f.rule for f in result.findings] == ["format.not-accepted"]
    assert label in result.findings[0].message


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("rapport.docx", docx_bytes, []),
        ("page.html", lambda: HTML, []),
        ("INDEX.HTM", lambda: HTML, []),
        ("rapport.pdf", docx_bytes, [("format.extension-mismatch", "error")]),
        ("notes.txt", lambda: HTML, [("format.extension-mismatch", "error")]),  # a page posing as text
    ],
)
def test_office_documents_and_web_pages_are_proofs_judged_on_content(
    name: str, make: object, expected: list[tuple[str, str]]
) -> None:
    """Real proofs include spreadsheets (extractions), documents (terms of use) and the INDEX.HTM an IHE_XDM
    archive holds: accepted as types, their macros, scripts and links are the ssi checks' to judge."""
    assert callable(make)
    assert run(name, make()) == expected


def test_elf_executable_not_accepted() -> None:
    elf = Path("/bin/true").read_bytes()[: sniff.SNIFF_BYTES]
    result = filetype.FiletypeValidator().check(proof("outil.log", elf), CheckContext())
    assert [f.rule for f in result.findings] == ["format.not-accepted"]
    assert "executable" in result.findings[0].message


def test_unrecognised_bytes() -> None:
    noise = hashlib.sha256(b"seed").digest() * 8  # no format's magic
    assert run("capture.png", b"\x00\x01" + noise) == [("format.unrecognised", "error")]


def test_empty_file() -> None:
    assert run("capture.png", b"") == [("format.empty", "error")]


def test_unreadable_file(tmp_path: Path) -> None:
    missing = ProofFile(path="INS.41.2.2/gone.png", size=10, sha256="0" * 64,
                        media_type="image/png", disk_path=tmp_path / "gone.png")
    result = filetype.FiletypeValidator().check(missing, CheckContext())
    assert [f.rule for f in result.findings] == ["format.unreadable"]
    assert str(tmp_path) not in result.findings[0].message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "capture.png"
    locked.write_bytes(png_bytes())
    locked.chmod(0)
    file = ProofFile(path="capture.png", size=10, sha256="0" * 64, media_type="image/png", disk_path=locked)
    result = filetype.FiletypeValidator().check(file, CheckContext())
    assert [(f.rule, f.message) for f in result.findings] == [
        ("format.unreadable", "The file could not be read: Permission denied")
    ]


def test_disk_file_is_read_like_memory(tmp_path: Path) -> None:
    on_disk = tmp_path / "capture.png"
    on_disk.write_bytes(png_bytes()[:-12])  # cut off IEND
    file = ProofFile(path="capture.png", size=on_disk.stat().st_size, sha256="0" * 64,
                     media_type="image/png", disk_path=on_disk)
    result = filetype.FiletypeValidator().check(file, CheckContext())
    assert [f.rule for f in result.findings] == ["format.truncated"]


def _cut(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("capture.png", _cut(png_bytes())),
        ("capture.png", png_bytes()[:-12]),
        ("photo.jpg", _cut(jpeg_bytes())),
        ("photo.jpg", jpeg_bytes()[:-2]),
        ("document.pdf", _cut(pdf_bytes(), 0.9)),
        ("xdm.zip", _cut(zip_bytes())),
        ("xdm.zip", zip_bytes()[:-1]),
        ("video.mp4", _cut(mp4_bytes(), 0.9)),
        ("video.mp4", mp4_bytes(with_moov=False)),
        ("video.webm", webm_bytes(declared_extra=1000)),
    ],
    ids=lambda value: value if isinstance(value, str) else f"{len(value)}-bytes",  # a zip's bytes hold the time
)
def test_truncated(name: str, data: bytes) -> None:
    assert run(name, data) == [("format.truncated", "error")]


def test_trailing_data_is_not_truncation() -> None:
    # Data appended after the end (a polyglot) is the SSI check's business, not a cut file.
    assert run("capture.png", png_bytes() + b"PK\x03\x04 appended") == []
    assert run("document.pdf", pdf_bytes() + b"\n" * 10) == []


def test_jpeg_exif_thumbnail_end_marker_is_not_the_end() -> None:
    data = jpeg_bytes()
    thumbnail = b"Exif\x00\x00" + b"\xff\xd8\xff\xd9"  # a thumbnail's own end marker inside APP1
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumbnail) + 2) + thumbnail
    with_thumb = data[:2] + app1 + data[2:]
    assert run("photo.jpg", with_thumb) == []
    assert run("photo.jpg", _cut(with_thumb)) == [("format.truncated", "error")]


def test_hostile_png_chunk_lengths_do_not_hang() -> None:
    # A valid IHDR (so libmagic sees a PNG), then a chunk declaring an absurd length.
    data = png_bytes()[:33] + struct.pack(">I4s", 0xFFFFFFF0, b"tEXt") + b"\x00" * 100
    assert run("capture.png", data) == [("format.truncated", "error")]


# --- fail closed ------------------------------------------------------------------------------------


def test_no_libmagic_means_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(head: bytes) -> str:
        raise sniff.SnifferUnavailableError("libmagic.so.1: cannot open shared object file")

    monkeypatch.setattr(sniff, "media_type", unavailable)
    result = filetype.FiletypeValidator().check(proof("capture.png", png_bytes()), CheckContext())
    assert result.state is CheckState.NOT_RUN
    assert [f.rule for f in result.findings] == ["system.check-not-run"]


def test_through_the_engine_statuses() -> None:
    engine = Engine(filetype.make_validators({}))
    good = engine.check_file(proof("capture.png", png_bytes()))
    assert good.status is Status.PASS
    assert [(c.name, c.state) for c in good.checks] == [("filetype", CheckState.RAN)]
    bad = engine.check_file(proof("capture.pdf", png_bytes()))
    assert bad.status is Status.FAIL
    warned = engine.check_file(proof("capture.jpg", png_bytes()))
    assert warned.status is Status.WARNING


def test_declared_rules_are_catalogued_with_format_family() -> None:
    declared = set(filetype.FiletypeValidator.rules)
    # format.email.* belong to the e-mail check (validators/mail), which reads message structure.
    catalogued = {r for r in rules.catalogue() if r.startswith("format.") and not r.startswith("format.email.")}
    assert declared == catalogued
    assert all(rules.get(r).severity is Severity.ERROR for r in declared)


def test_a_mailbox_file_is_an_email_source_not_a_mismatch(tmp_path: Path) -> None:
    """`.mbox` (several messages, `From ` separators): libmagic says text/plain or application/mbox."""
    from validators.dryrun import dry_run

    proof = tmp_path / "MSS.1.1.1"
    proof.mkdir()
    (proof / "boite.mbox").write_bytes(
        b"From alice@example.org Mon Jan  1 00:00:00 2024\nFrom: alice@example.org\nSubject: essai\n\nBonjour\n"
    )
    verdict = dry_run(tmp_path, settings={"clamd": "unix:/nonexistent/clamd.sock"})
    assert "format.extension-mismatch" not in [rule for rule, _ in verdict.flatten(["rule", "path"])]
