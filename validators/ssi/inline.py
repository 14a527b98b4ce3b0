"""Files written inside text: ``data:`` URLs (a saved web page's pictures, an SVG's raster image, a
stylesheet's font) and base64 blocks (a SOAP trace carrying a CDA document, a log carrying a PDF, a PEM
of anything). A browser shows the pictures of a page; a trace hands its document to whoever decodes it:
each is decoded and handed back as a child file, which every check reads (antivirus, formats, SSI,
personal data with OCR, CDA).

A ``data:`` URL is always decoded (base64 or percent-encoded; fonts are left); a bare base64 block only
when it is long (``MIN_BLOCK_CHARS``) and decodes to a strong file signature (PDF, PNG, JPEG, zip,
executables...) or to text, so that keys, signatures, certificates and tokens are left alone. E-mails and
CDA documents are not read here: the e-mail and CDA checks decode their parts and ED values themselves.

Bounded: ``MAX_PAYLOADS`` distinct payloads per file, ``MAX_PAYLOAD_BYTES`` each once decoded,
``MAX_TOTAL_BYTES`` in all, the first ``MAX_TEXT_BYTES`` of the file. A ``data:`` URL that cannot be
decoded or is over a limit, and payloads past the count limit, are ``ssi.inline.not-inspected`` errors:
content nobody looked at, never silence; the part of a very large text past ``MAX_TEXT_BYTES`` is a
warning (a long log, read in part).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from validators import rules, sniff
from validators.base import CheckContext, CheckResult, Embedded, FileTooLargeError, ProofFile, Validator
from validators.mail.detect import mail_kind
from validators.model import CheckState, Finding, Severity

MAX_TEXT_BYTES = 64 * 1024 * 1024
MAX_PAYLOADS = 200  # distinct ones: a token repeated on every line of a log is one
MAX_PAYLOAD_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024
MIN_BLOCK_CHARS = 256  # a bare base64 block shorter than this is a key, a hash or a token
RULE = "ssi.inline.not-inspected"
_TEXT_MEDIA = ("text/", "application/json", "application/xml", "application/xhtml+xml", "image/svg+xml",
               "application/javascript", "application/x-ndjson")
_TEXT_EXTENSIONS = frozenset({"txt", "log", "csv", "tsv", "json", "xml", "html", "htm", "xhtml", "svg", "css",
                              "js", "md", "hl7", "yaml", "yml", "ini", "out", "err", "eml", "mht", "mhtml", "har"})
# data:[<media type>][;param=value]*[;base64],<data>. Base64 data may be wrapped over lines (CSS, some
# exporters): the wrapped reading is tried first, the first line alone if it does not decode.
_DATA_URL = re.compile(
    rb"data:(?P<media>[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[^;,\s\"'<>]*)*"
    rb"(?:(?P<b64>;base64),(?P<line>[A-Za-z0-9+/=%]*)"
    rb"(?P<more>(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/=]+(?=[ \t]*(?:\r?\n|$|[\"'<)])))*)"
    rb"(?P<junk>[^\"'<>()\s]*)|,(?P<plain>[^\"'<>()\s]*))",
    re.IGNORECASE,
)
# A bare block: base64 characters, possibly wrapped over whole lines (MIME's 76 columns, PEM's 64), padding
# last. A wrapped reading that does not decode is tried again on its first line alone.
_BLOCK = re.compile(
    rb"(?P<line>[A-Za-z0-9+/]{40,}={0,2})(?P<more>(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/]{4,}={0,2}(?=[ \t]*(?:\r?\n|$|<)))*)"
)
_WHITE = b" \t\r\n\x0b\x0c"
# Types handed back as nothing: fonts show no text of their own and no proof format holds them.
_SKIPPED = ("font/", "application/font", "application/x-font", "application/vnd.ms-fontobject")


class _NotDecoded(Exception):
    """The payload was not decoded; the message is the reason, in fixed words the French catalogue maps."""


@dataclass
class _Budget:
    total_left: int = MAX_TOTAL_BYTES
    count: int = 0


def _looks_cda(head: bytes) -> bool:
    return b"ClinicalDocument" in head and b"urn:hl7-org:v3" in head


def _b64(raw: bytes) -> bytes:
    compact = urllib.parse.unquote_to_bytes(raw.translate(None, _WHITE))
    if len(compact) * 3 // 4 > MAX_PAYLOAD_BYTES:
        raise _NotDecoded("it is larger than the size limit")
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _NotDecoded("its base64 is not valid") from None


def _wrapped_or_first_line(match: re.Match[bytes]) -> bytes:
    if match.group("more"):
        try:
            return _b64(match.group("line") + match.group("more"))
        except _NotDecoded:
            pass
    return _b64(match.group("line"))


def _decode_data_url(match: re.Match[bytes]) -> bytes:
    if match.group("b64") and match.group("junk"):
        raise _NotDecoded("its base64 is not valid")
    if not match.group("b64"):
        raw = match.group("plain")
        if len(raw) > 3 * MAX_PAYLOAD_BYTES:
            raise _NotDecoded("it is larger than the size limit")
        return urllib.parse.unquote_to_bytes(raw)
    return _wrapped_or_first_line(match)


# What a bare block must start with to be taken for a file: strong signatures only (a signature value or
# a key is random bytes, which libmagic's weaker rules sometimes name), and certificates are left alone.
_FILE_STARTS = (b"%PDF-", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"PK\x03\x04",
                b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"BZh", b"\xfd7zXZ\x00", b"MZ",
                b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"{\\rtf", b"II*\x00",
                b"MM\x00*", b"\x1aE\xdf\xa3")


def _is_text(data: bytes) -> bool:
    try:
        text = data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(1 for c in text if c.isprintable() or c in "\t\r\n")
    return len(text.strip()) >= 16 and printable / len(text) > 0.95


def _is_file(data: bytes) -> bool:
    """Whether decoded bytes are a file (a known signature) or text, not random bytes (a key, a hash)."""
    riff = data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"AVI ", b"WAVE")
    return data.startswith(_FILE_STARTS) or riff or data[4:8] == b"ftyp" or _is_text(data)


def _skipped(data: bytes) -> bool:
    """Fonts show no text of their own and no proof format holds them: not handed back."""
    try:
        media = sniff.media_type(data[: sniff.SNIFF_BYTES])
    except sniff.SnifferUnavailableError:
        return False
    return media.startswith(_SKIPPED)


class InlineValidator(Validator):
    name: ClassVar[str] = "ssi-inline"
    rules: ClassVar[tuple[str, ...]] = (RULE,)
    reads_settings: ClassVar[tuple[str, ...]] = ()
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 60.0

    def applies_to(self, file: ProofFile) -> bool:
        media = file.media_type.split(";", 1)[0].strip().lower()
        if not (media.startswith(_TEXT_MEDIA) or media.endswith("+xml") or file.extension in _TEXT_EXTENSIONS):
            return False
        # E-mails (messages, mailboxes, SMTP transcripts) are decoded part by part by the e-mail check; CDA
        # documents' ED values by the CDA check: their base64 would be checked twice.
        return not _looks_cda(file.head(8192)) and mail_kind(file) is None

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        findings: list[Finding] = []
        try:
            data = file.read(MAX_TEXT_BYTES)
        except FileTooLargeError:
            data = file.head(MAX_TEXT_BYTES)
            findings.append(rules.finding(RULE, severity=Severity.WARNING, what="the content past the size limit",
                                          evidence=f"after {MAX_TEXT_BYTES} bytes",
                                          reason="it is larger than the size limit"))
        if b"data:" not in data and _BLOCK.search(data) is None:  # the common case: one pass in C
            return CheckResult(findings=findings, state=CheckState.PARTIAL if findings else CheckState.RAN)
        found = _Found(findings)
        for match in _DATA_URL.finditer(data):
            ctx.check_time()
            if not found.take(partial(_decode_data_url, match), "data: URL", declared=True):
                break
        else:
            for match in _BLOCK.finditer(data):
                ctx.check_time()
                start, end = match.span()
                if end - start < MIN_BLOCK_CHARS or _in_data_url(data, start):
                    continue
                if not found.take(partial(_wrapped_or_first_line, match), "base64 block", declared=False):
                    break
        if found.full:
            findings.append(rules.finding(RULE, what="the inline files past the limit",
                                          evidence=f"more than {MAX_PAYLOADS}",
                                          reason="the file carries more inline files than the limit"))
        state = CheckState.PARTIAL if findings else CheckState.RAN
        return CheckResult(findings, state, f"{len(found.children)} inline file(s)", found.children)


@dataclass
class _Found:
    """What the decoded payloads give: children, and findings for those not looked at."""

    findings: list[Finding]
    children: list[Embedded] = field(default_factory=list)
    count: int = 0
    total_left: int = MAX_TOTAL_BYTES
    seen: set[bytes] = field(default_factory=set)  # digests of the payloads taken

    @property
    def full(self) -> bool:
        return self.count > MAX_PAYLOADS

    def take(self, decode: Callable[[], bytes], what: str, *, declared: bool) -> bool:
        """Decode one payload; False once past the count limit (the scan stops there). A ``data:`` URL
        (``declared``) is always a file, a bare block only when its bytes are one (a block that is not
        base64, or decodes to random bytes, is a key or a hash)."""
        try:
            payload = decode()
        except _NotDecoded as exc:
            if declared or str(exc) == "it is larger than the size limit":
                self.findings.append(rules.finding(RULE, what=what, reason=str(exc)))
            return True
        if not payload or not (_is_file(payload) if not declared else not _skipped(payload)):
            return True
        digest = hashlib.sha256(payload).digest()
        if digest in self.seen:  # the same picture or token again: checked once
            return True
        self.seen.add(digest)
        self.count += 1
        if self.full:
            return False
        if len(payload) > self.total_left:
            self.findings.append(rules.finding(RULE, what=what, reason="the inline files are over the total limit"))
            return True
        self.total_left -= len(payload)
        # No extension: the format check names the real type of an inline file, with nothing to compare.
        self.children.append(Embedded(name=f"inline-{self.count}", data=payload, origin=f"inline {what}"))
        return True


def _in_data_url(data: bytes, start: int) -> bool:
    """Whether the block at ``start`` is the content of a ``data:`` URL (read as one already)."""
    return data[max(0, start - 8) : start].lower().endswith(b";base64,")


__all__ = ["MAX_PAYLOADS", "MIN_BLOCK_CHARS", "RULE", "InlineValidator"]

