"""Which files are e-mail containers, and of which kind: by type, name, and the shape of their text.

libmagic calls many real messages ``text/plain`` (it wants ``From:`` or ``Received:`` first), and the
referential asks for "the SMTP source", which publishers paste as text, as an mbox or as a transcript
of the SMTP session. A text file is taken for a message when it starts with a block of header fields
including at least two of the usual ones.
"""

from __future__ import annotations

import re
from enum import StrEnum

from validators.base import ProofFile
from validators.mail.outlook import looks_like_msg


class MailKind(StrEnum):
    MESSAGE = "message"  # an RFC 5322 message (.eml, message/rfc822, a message-shaped text)
    MBOX = "mbox"  # messages each after a "From " line
    SMTP = "smtp"  # a transcript of an SMTP session: the message is what follows DATA
    OUTLOOK = "outlook"  # an Outlook .msg (OLE compound file)
    TNEF = "tnef"  # winmail.dat
    PKCS7 = "pkcs7"  # S/MIME or PKCS #7 (.p7m, .p7s)


MESSAGE_TYPES = frozenset({"message/rfc822", "message/global", "message/news"})
TNEF_TYPES = frozenset({"application/vnd.ms-tnef", "application/ms-tnef"})
PKCS7_TYPES = frozenset(
    {
        "application/pkcs7-mime",
        "application/x-pkcs7-mime",
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
    }
)
OLE_TYPES = frozenset({"application/vnd.ms-outlook", "application/x-ole-storage", "application/cdfv2"})
PKCS7_EXTENSIONS = frozenset({"p7m", "p7s", "p7c", "p7b"})
_TNEF_MAGIC = b"\x78\x9f\x3e\x22"
_COMMON_FIELDS = frozenset(
    {
        b"from",
        b"to",
        b"cc",
        b"subject",
        b"date",
        b"message-id",
        b"mime-version",
        b"received",
        b"return-path",
        b"content-type",
        b"delivered-to",
        b"reply-to",
        b"sender",
        b"in-reply-to",
        b"references",
        b"dkim-signature",
        b"authentication-results",
        b"x-mailer",
        b"user-agent",
        b"content-transfer-encoding",
    }
)
_FIELD = re.compile(rb"^([!-9;-~]{1,76}):")
_SMTP_DATA = re.compile(rb"^DATA\r?$", re.MULTILINE | re.IGNORECASE)
_SMTP_START = re.compile(rb"^(?:220[ -]|EHLO |HELO |MAIL FROM:)", re.IGNORECASE)


def looks_like_message(head: bytes) -> bool:
    """A block of header fields at the start (folded lines allowed) with two usual fields or more."""
    known = 0
    for line in head[:16384].splitlines()[:64]:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            continue
        match = _FIELD.match(line)
        if match is None:
            return False
        known += match.group(1).lower() in _COMMON_FIELDS
    return known >= 2


HEAD_BYTES = 64 * 1024


def _ole_directory(file: ProofFile, head: bytes) -> bytes:
    """The first directory sector of an OLE file, wherever it lies (empty when there is none)."""
    if len(head) < 512:
        return b""
    sector_size = 1 << min(int.from_bytes(head[30:32], "little"), 12)
    offset = (int.from_bytes(head[48:52], "little") + 1) * sector_size
    if offset + sector_size <= len(head):
        return head[offset : offset + sector_size]
    if offset >= file.size:
        return b""
    with file.open() as stream:
        stream.seek(offset)
        return stream.read(sector_size)


def mail_kind(file: ProofFile) -> MailKind | None:
    """The kind of e-mail container ``file`` is, or None."""
    head = file.head(HEAD_BYTES)
    media = file.media_type.split(";", 1)[0].strip().lower()
    extension = file.extension
    if media in TNEF_TYPES or head.startswith(_TNEF_MAGIC):
        return MailKind.TNEF
    if media in PKCS7_TYPES or extension in PKCS7_EXTENSIONS:
        return MailKind.PKCS7
    if extension == "msg" or media in OLE_TYPES:
        return MailKind.OUTLOOK if (extension == "msg" or looks_like_msg(head, _ole_directory(file, head))) else None
    textual = media.startswith("text/") or media in MESSAGE_TYPES or media == "application/mbox"
    if head.startswith(b"From ") and (textual or extension in ("mbox", "eml")):
        return MailKind.MBOX
    if media in MESSAGE_TYPES or extension == "eml":
        return MailKind.MESSAGE
    if not textual:
        return None
    if media == "text/plain" and _SMTP_START.match(head) and _SMTP_DATA.search(head):
        return MailKind.SMTP
    return MailKind.MESSAGE if media not in ("text/html", "text/xml") and looks_like_message(head) else None
