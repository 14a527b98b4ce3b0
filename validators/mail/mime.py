"""RFC 5322 / MIME messages: every part becomes a child, every defect and limit a finding.

Parsed with the standard library (``email``, policy ``default``), fed in chunks so that the time limit
is checked while it runs, after counting candidate boundary lines (the parser cannot be interrupted
inside a chunk and costs about 0.25 ms a part). The tree is walked without recursion; a message nested
as ``message/rfc822`` becomes an ``.eml`` child that this check reads again at the next depth.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.errors
import email.policy
import quopri
import re
from email.message import EmailMessage, Message
from email.parser import BytesFeedParser

from validators import rules
from validators.mail import names
from validators.mail.detect import looks_like_message
from validators.mail.harvest import Harvest
from validators.mail.headers import check_headers
from validators.mail.smime import ENCRYPTED_KINDS, CmsError, read_cms
from validators.model import Location

POLICY = email.policy.default
CHUNK = 1024 * 1024
SIGNATURE_TYPES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
PKCS7_MIME_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
# message/* types the parser reads as a nested message but whose content is not a whole message here.
UNREAD_MESSAGE_TYPES = {
    "message/partial": ("a fragment of a message split over several mails", "message/partial"),
    "message/external-body": ("a part stored outside the message", "message/external-body"),
}
BODY_TYPES = frozenset({"text/plain", "text/html"})
_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s";]{1,200}))', re.IGNORECASE)
_DASH_LINE = re.compile(rb"(?:^|\n)--([^\r\n]{1,204})", re.MULTILINE)
_SAFE_CHARSET = re.compile(r"[^A-Za-z0-9._:+-]")

# Defects that change what a mail client shows (parts lost, merged or decoded otherwise): errors.
# Header-syntax defects (obsolete address forms, odd dates) are common in real mail and ignored.
STRUCTURAL_DEFECTS: dict[type[email.errors.MessageDefect], str] = {
    email.errors.StartBoundaryNotFoundDefect: "the opening boundary of a multipart is missing",
    email.errors.CloseBoundaryNotFoundDefect: "the closing boundary of a multipart is missing (cut short?)",
    email.errors.MultipartInvariantViolationDefect: "a multipart has no parts",
    email.errors.NoBoundaryInMultipartDefect: "a multipart declares no boundary",
    email.errors.MissingHeaderBodySeparatorDefect: "a header block is not closed by a blank line",
    email.errors.FirstHeaderLineIsContinuationDefect: "a header block starts with a continuation line",
    email.errors.MisplacedEnvelopeHeaderDefect: "an envelope 'From ' line inside the headers",
    email.errors.InvalidMultipartContentTransferEncodingDefect: "a multipart declares a transfer encoding",
    email.errors.InvalidBase64PaddingDefect: "base64 data with bad padding",
    email.errors.InvalidBase64CharactersDefect: "base64 data with invalid characters",
    email.errors.InvalidBase64LengthDefect: "base64 data cut short",
}


def too_many_parts(data: bytes, harvest: Harvest) -> bool:
    """Whether the declared boundaries (multiparts) or the lines using them are past the limits.

    Counted on the raw bytes before parsing: the parser cannot be stopped inside a chunk and costs about
    0.25 ms a part, and nests one Python frame per level (1000 levels raise RecursionError).
    """
    boundaries = set()
    for match in _BOUNDARY_PARAM.finditer(data):
        boundaries.add(match.group(1) or match.group(2))
        if len(boundaries) > harvest.limits.max_multiparts:
            return True
    if not boundaries:
        return False
    lines = 0
    for match in _DASH_LINE.finditer(data):
        token = match.group(1).rstrip()
        if token.endswith(b"--") and token[:-2] in boundaries:
            token = token[:-2]
        if token in boundaries:
            lines += 1
            if lines > harvest.limits.max_boundary_lines:
                return True
    return False


def parse(data: bytes, harvest: Harvest) -> EmailMessage | None:
    """The parsed message, or None (reported) when it is past a limit or too deep for the parser."""
    if too_many_parts(data, harvest):
        harvest.add(rules.finding("ssi.email.too-many-parts", limit=harvest.limits.max_parts))
        return None
    parser = BytesFeedParser(policy=POLICY)
    try:
        for start in range(0, len(data), CHUNK):
            harvest.ctx.check_time()
            parser.feed(data[start : start + CHUNK])
        message = parser.close()
    except RecursionError:
        # Deeper than the parser can follow is deeper than the depth limit (far below Python's recursion limit).
        harvest.add(rules.finding("ssi.email.too-deep", limit=harvest.limits.max_depth))
        return None
    return message if isinstance(message, EmailMessage) else None


def read_message(data: bytes, harvest: Harvest) -> None:
    """Children of an RFC 5322 message: bodies, attachments, nested messages, S/MIME content."""
    message = parse(data, harvest)
    if message is not None:
        _walk(message, harvest)


def _defects(part: Message, harvest: Harvest, entry: str | None) -> None:
    for defect in part.defects:
        reason = STRUCTURAL_DEFECTS.get(type(defect))
        if reason is not None:
            harvest.malformed(reason, entry)


def _walk(message: Message, harvest: Harvest) -> None:
    stack: list[tuple[Message, int]] = [(message, 0)]
    number = 0
    while stack:
        part, level = stack.pop()
        if not harvest.count_part():
            return
        number += 1
        where = "" if number == 1 else f"partie {number} : "  # a location in the French report, like "corps-2.txt"
        entry = where.rstrip(": ") or None
        if not check_headers(part.raw_items(), harvest, where):
            continue
        _defects(part, harvest, entry)
        content_type = part.get_content_type()
        if content_type in MESSAGE_TYPES:
            _nested_message(part, number, harvest)
            continue
        if content_type in UNREAD_MESSAGE_TYPES:
            what, reason = UNREAD_MESSAGE_TYPES[content_type]
            harvest.not_inspected(what, reason, entry)
            continue
        if part.is_multipart():
            if content_type == "multipart/encrypted":
                harvest.add(rules.finding("ssi.email.encrypted", Location(entry=entry), kind="multipart/encrypted"))
                continue
            if level + 1 > harvest.limits.max_depth:
                harvest.add(rules.finding("ssi.email.too-deep", Location(entry=entry), limit=harvest.limits.max_depth))
                continue
            children = [p for p in part.get_payload() if isinstance(p, Message)]
            stack.extend((child, level + 1) for child in reversed(children))
            continue
        _leaf(part, number, entry, harvest)


def _declared_name(part: Message) -> str:
    try:
        return part.get_filename() or ""
    except (ValueError, LookupError, TypeError, IndexError):  # a broken RFC 2231 parameter
        return ""


def _payload(part: Message, entry: str, harvest: Harvest) -> bytes | None:
    raw = part.get_payload()
    if not isinstance(raw, str):
        return None
    # Decoding never grows the data (base64: 3/4, quoted-printable: at most as long): refuse before it.
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    estimate = len(raw) * 3 // 4 if encoding == "base64" else len(raw)
    if not harvest.fits(estimate, entry):
        return None
    harvest.ctx.check_time()
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else None


def _leaf(part: Message, number: int, entry: str | None, harvest: Harvest) -> None:
    declared = _declared_name(part)
    content_type = part.get_content_type()
    disposition = part.get_content_disposition()
    body = not declared and disposition != "attachment" and content_type in BODY_TYPES
    name = names.display_name(declared) if declared else names.generated_name(content_type, number, body)
    label = name if declared else (entry or name)
    for finding in names.path_findings(declared, label):
        harvest.add(finding)
    data = _payload(part, label, harvest)
    _defects(part, harvest, label)  # base64 defects are recorded while decoding
    if not data:
        return
    if content_type in SIGNATURE_TYPES or name.lower().endswith(".p7s"):
        signature(data, name, harvest)
    elif content_type in PKCS7_MIME_TYPES or name.lower().endswith(".p7m"):
        unwrap_pkcs7(data, name, harvest)
    elif body:
        harvest.add_child(name, _utf8_body(part, data, label, harvest), names.origin("body"))
    else:
        what = "attachment" if disposition == "attachment" else "part"
        harvest.add_child(name, data, names.origin(what))


def _utf8_body(part: Message, data: bytes, entry: str, harvest: Harvest) -> bytes:
    """A text body in UTF-8, so that the text checks read what the mail client shows."""
    charset = part.get_content_charset() or "us-ascii"
    if charset in ("utf-8", "us-ascii") or data.isascii():
        return data
    try:
        codecs.lookup(charset)
    except LookupError:
        shown = _SAFE_CHARSET.sub("?", charset[:40])
        harvest.malformed("unknown charset: the text may show otherwise in a mail client", entry, shown)
        return data
    try:
        return data.decode(charset).encode("utf-8")
    except (UnicodeDecodeError, LookupError):
        return data  # bytes invalid in their charset: the text checks read them as they are


def _nested_message(part: Message, number: int, harvest: Harvest) -> None:
    declared = _declared_name(part)
    name = names.display_name(declared) if declared else names.generated_name("message/rfc822", number, False)
    for finding in names.path_findings(declared, name):
        harvest.add(finding)
    source = rfc822_bytes(part)
    if source:
        harvest.add_child(name, source, names.origin("attached message"))


def rfc822_bytes(part: Message) -> bytes:
    """The source of an attached message, decoded when it was (wrongly) sent base64 or quoted-printable."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return b""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    generated = inner.as_bytes(policy=POLICY.clone(linesep="\r\n", max_line_length=0))
    if encoding in ("base64", "quoted-printable"):
        # The parser took the encoded text for a header-less message: decode that text instead.
        text = inner.get_payload()
        if isinstance(text, str):
            raw = text.encode("ascii", "replace")
            try:
                return base64.b64decode(raw) if encoding == "base64" else quopri.decodestring(raw)
            except (binascii.Error, ValueError):
                return generated
    return generated


def signature(data: bytes, name: str, harvest: Harvest) -> None:
    """A detached S/MIME signature holds certificates, not content: checked for shape, not kept."""
    try:
        cms = read_cms(data, harvest.limits.max_part_bytes, harvest.ctx.check_time)
    except CmsError as exc:
        harvest.malformed("the S/MIME signature is not a PKCS #7 structure", name, str(exc))
        harvest.add_child(name, data, names.origin("unreadable signature"))
        return
    if cms.kind != "signed" or cms.content is not None:
        # Not a detached signature: whatever it holds is checked like any part.
        unwrap_pkcs7(data, name, harvest)


def unwrap_pkcs7(data: bytes, name: str, harvest: Harvest) -> None:
    """The content of a PKCS #7 / S/MIME object as a child; what cannot be opened is reported."""
    try:
        cms = read_cms(data, harvest.limits.max_part_bytes, harvest.ctx.check_time)
    except CmsError as exc:
        harvest.malformed("a PKCS #7 object could not be read", name, str(exc))
        harvest.add_child(name, data, names.origin("unreadable PKCS #7 object"))
        return
    if cms.kind in ENCRYPTED_KINDS:
        harvest.add(rules.finding("ssi.email.encrypted", Location(entry=name), kind=f"S/MIME {cms.kind} data"))
    elif cms.kind != "signed":
        harvest.not_inspected("a PKCS #7 object", f"{cms.kind} content is not unpacked", name)
    elif cms.content:
        harvest.add_child(signed_content_name(name, cms.content), cms.content, names.origin("signed content"))


def signed_content_name(name: str, content: bytes) -> str:
    """``x.pdf.p7m`` holds ``x.pdf``; S/MIME content (a MIME entity) is read as a message."""
    head = content[:4096].lstrip()
    if head[:13].lower() == b"content-type:" or looks_like_message(head):
        return "contenu-signe.eml"
    stem = name[:-4] if name.lower().endswith((".p7m", ".p7s")) else ""
    return stem or "contenu-signe.bin"
