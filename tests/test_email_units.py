"""The e-mail check's parts one by one: names, headers, S/MIME, TNEF, detection, limits, type and PII."""

from __future__ import annotations

import hashlib

import pytest

from fixtures import builders as b
from fixtures import emails
from fixtures.hostile import pe
from validators import filetype, sniff
from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.mail import names
from validators.mail.check import MailValidator
from validators.mail.detect import MailKind, mail_kind
from validators.mail.smime import CmsError, read_cms
from validators.mail.tnef import TnefError, read_tnef
from validators.model import CheckState, FileVerdict
from validators.pii import PiiValidator


def proof(name: str, data: bytes, origin: str | None = None, depth: int = 0) -> ProofFile:
    return ProofFile(
        path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), media_type=sniff.media_type(data),
        data=data, origin=origin, depth=depth, own_name=name if depth else None,
    )


def children(data: bytes, name: str = "message.eml", **settings: object) -> list[tuple[str, str]]:
    result = MailValidator({"email": settings} if settings else {}).check(proof(name, data), CheckContext())
    return [(child.name, child.origin) for child in result.children]


def rules_of(data: bytes, name: str = "message.eml", **settings: object) -> list[str]:
    result = MailValidator({"email": settings} if settings else {}).check(proof(name, data), CheckContext())
    return sorted(f.rule for f in result.findings)


# --- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ("filename*0*=UTF-8''CR%20du%2012.pdf; filename*1*=%2Eexe", "CR du 12.pdf.exe"),  # RFC 2231
        ('filename="=?utf-8?b?Q1IucGRmLmV4ZQ==?="', "CR.pdf.exe"),  # encoded-word (Outlook, Gmail)
        ("filename*=UTF-8''facture%E2%80%AEfdp.exe", "facture\u202efdp.exe"),  # bidi kept for ssi.filename
        ('filename="rapport.exe. . "', "rapport.exe"),  # Windows drops trailing dots and spaces
        ('filename="../../Bureau/CR.pdf"', ".._.._Bureau_CR.pdf"),  # never a path, still visible
    ],
)
def test_attachment_names_are_decoded_and_kept_deceptive(disposition: str, expected: str) -> None:
    data = emails.raw_message([emails.TEXT_PART, emails.attachment(disposition, b"data")])
    assert (expected, "e-mail attachment") in children(data)


def test_a_path_in_an_attachment_name_is_reported() -> None:
    assert names.path_findings("../x.pdf", "x")[0].rule == "ssi.email.attachment-path"
    assert names.path_findings("C:\\Users\\x.pdf", "x") and names.path_findings("/etc/x", "x")
    assert names.path_findings("CR..final.pdf", "x") == []


def test_unnamed_parts_are_named_from_their_type() -> None:
    got = children(emails.eml(html="<p>Bonjour</p>"))
    assert got == [("corps-2.txt", "e-mail body"), ("corps-3.html", "e-mail body")]  # 1 is the multipart


# --- headers -----------------------------------------------------------------------------------------


def test_plain_utf8_headers_are_not_taken_for_c1_controls() -> None:
    raw = emails._headers(subject="Réunion à 10 h — coût 25 €") + b"\r\ncorps\r\n"
    assert rules_of(raw) == []


def test_escapes_hidden_in_encoded_words_are_found_and_located() -> None:
    data = emails._headers(subject="=?utf-8?q?Compte_rendu_=1B]0;titre=07?=") + b"\r\ncorps\r\n"
    result = MailValidator().check(proof("m.eml", data), CheckContext())
    (finding,) = [f for f in result.findings if f.rule == "ssi.text.terminal-escape"]
    assert finding.location.entry == "en-tête Subject"


# --- S/MIME ------------------------------------------------------------------------------------------


def test_signed_data_is_unwrapped_and_enveloped_data_is_not() -> None:
    content = b"Content-Type: text/plain\r\n\r\nsigne"
    cms = read_cms(emails._pkcs7(content, detached=False), 1 << 20, lambda: None)
    assert (cms.kind, cms.content) == ("signed", content)
    body = emails.encrypted_message(emails.TEXT_PART)
    assert rules_of(body) == ["ssi.email.encrypted"]


def test_a_detached_signature_is_not_a_child_and_the_signed_content_is() -> None:
    signed = emails.signed_message(emails.message(attachments=[("CR.pdf", "application/pdf", b.make_pdf(["x"]))]))
    got = [name for name, _ in children(signed)]
    assert "CR.pdf" in got and not any(name.endswith(".p7s") for name in got)


@pytest.mark.parametrize("cut", [1, 10, 40, 200])
def test_a_cut_pkcs7_object_is_an_error_not_a_crash(cut: int) -> None:
    der = emails._pkcs7(b"x" * 300, detached=False)
    with pytest.raises(CmsError):
        read_cms(der[:cut], 1 << 20, lambda: None)


def test_indefinite_lengths_and_chunked_octet_strings_are_read() -> None:
    oid_signed = bytes.fromhex("06092a864886f70d010702")
    oid_data = bytes.fromhex("06092a864886f70d010701")
    chunks = b"\x24\x80" + b"\x04\x03abc" + b"\x04\x02de" + b"\0\0"
    encap = b"\x30\x80" + oid_data + b"\xa0\x80" + chunks + b"\0\0" + b"\0\0"
    signed = b"\x30\x80" + b"\x02\x01\x01" + b"\x31\x00" + encap + b"\x31\x00" + b"\0\0"
    der = b"\x30\x80" + oid_signed + b"\xa0\x80" + signed + b"\0\0" + b"\0\0"
    assert read_cms(der, 100, lambda: None).content == b"abcde"
    with pytest.raises(CmsError):
        read_cms(der, 4, lambda: None)  # over the size limit


# --- TNEF --------------------------------------------------------------------------------------------


def test_tnef_attachments_keep_their_long_names() -> None:
    parsed = read_tnef(emails.tnef([("Compte rendu détaillé.pdf.exe", pe())]), lambda: None)
    (attachment,) = parsed.attachments
    assert attachment.name == "Compte rendu détaillé.pdf.exe" and attachment.data == pe()
    assert parsed.body == b"Corps du message"


@pytest.mark.parametrize("cut", [3, 8, 30, 60])
def test_a_cut_tnef_stream_raises_its_own_error(cut: int) -> None:
    with pytest.raises(TnefError):
        read_tnef(emails.tnef([("a.pdf", b"%PDF" * 10)])[:cut], lambda: None)


# --- detection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("source.txt", b"Subject: x\r\nFrom: a@b.fr\r\n\r\ncorps", MailKind.MESSAGE),
        ("session.txt", emails.smtp_transcript(emails.eml()), MailKind.SMTP),
        ("boite.mbox", b"From a@b Mon Mar  2 10:00:00 2026\nSubject: x\n\ncorps\n", MailKind.MBOX),
        ("m.msg", emails.outlook_message(), MailKind.OUTLOOK),
        ("sans-extension", emails.outlook_message(), MailKind.OUTLOOK),  # by the Outlook class id
        ("winmail.dat", emails.tnef([]), MailKind.TNEF),
        ("trace.log", b"2026-03-02 INFO Subject: x\n", None),
        ("notes.txt", b"Objet : rappel\nFrom here on, text.\n", None),
        ("doc.doc", emails.compound_file({"WordDocument": bytes(4096)}), None),
    ],
)
def test_which_files_are_read_as_email(name: str, data: bytes, kind: MailKind | None) -> None:
    assert mail_kind(proof(name, data)) is kind


# --- limits ------------------------------------------------------------------------------------------


def test_part_count_and_sizes_are_bounded() -> None:
    assert "ssi.email.too-many-parts" in rules_of(emails.part_bomb(40), max_parts=10)
    assert len(children(emails.part_bomb(40), max_parts=10)) <= 10
    big = emails.eml(attachments=[("a.pdf", "application/pdf", b"%PDF" + bytes(5000))])
    assert rules_of(big, max_part_bytes=1000) == ["ssi.email.too-large"]
    assert rules_of(big, max_message_bytes=1000) == ["ssi.email.too-large"]


def test_the_check_is_partial_when_content_was_not_inspected() -> None:
    result = MailValidator().check(proof("m.eml", emails.encrypted_message(b"x")), CheckContext())
    assert result.state is CheckState.PARTIAL


# --- type and personal data of the parts -------------------------------------------------------------


def test_types_a_message_carries_are_accepted_inside_one_only() -> None:
    html = b"<!DOCTYPE html><html><body><p>x</p></body></html>"
    # A calendar invitation rides along a message; deposited alone it is no proof format.
    ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Revue\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    check = filetype.FiletypeValidator().check
    assert check(proof("invitation.ics", ics, "e-mail attachment", 1), CheckContext()).findings == []
    # alone, its text would open in a calendar application: a name announcing no accepted format
    assert [f.rule for f in check(proof("invitation.ics", ics), CheckContext()).findings] == [
        "format.extension-mismatch"
    ]
    assert [f.rule for f in check(proof("CR.pdf", html, "e-mail attachment", 1), CheckContext()).findings] == [
        "format.extension-mismatch"
    ]
    assert [f.rule for f in check(proof("x.exe", pe(), "e-mail attachment", 1), CheckContext()).findings] == [
        "format.not-accepted"
    ]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine([MailValidator(), PiiValidator({})])


def _nir_paths(verdict: FileVerdict) -> list[str]:
    return [f.path for f in verdict.iter_files() for x in f.findings if x.rule == "pii.nir"]


def test_pii_in_attachments_and_nested_messages_is_found_on_each_child(engine: Engine) -> None:
    nir = emails.nir()
    inner = emails.eml(attachments=[("liste.csv", "text/csv", f"nir;x\n{nir};1\n".encode())])
    pdf = b.make_pdf([f"Assuré {nir}"])
    outer = emails.eml(attachments=[("cr.pdf", "application/pdf", pdf), ("fwd.eml", "message/rfc822", inner)])
    verdict = engine.check_file(proof("MSS.1.1.1/message.eml", outer))
    paths = sorted(p.rsplit("!", 1)[-1] for p in _nir_paths(verdict))
    assert paths == ["2:cr.pdf", "2:liste.csv"]
    assert "pii.embedded" in {f.rule for f in verdict.findings}


def test_pii_in_headers_is_found_on_the_message_and_unread_parts_are_named(engine: Engine) -> None:
    data = emails.eml(subject=f"Dossier {emails.nir()}", attachments=[("blob.bin", "application/octet-stream",
                                                                        bytes(range(1, 256)) * 4)])
    verdict = engine.check_file(proof("m.eml", data))
    assert _nir_paths(verdict) == ["m.eml"]
    blob = next(f for f in verdict.children if f.path.endswith("blob.bin"))
    assert [(x.rule, x.severity.value) for x in blob.findings] == [("pii.not-inspected", "warning")]
