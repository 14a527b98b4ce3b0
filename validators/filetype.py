"""The ``filetype`` check: is each file a whole file of a format the ANS accepts as a proof, named as such?

The real type comes from the bytes (libmagic, see ``validators.sniff``), never from the name. Without
libmagic the check does not run (fail closed). Executables are reported here only as a type not
accepted; whether anything is dangerous is the ``ssi`` family's call.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar

from validators import rules, sniff
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.model import CheckState, Finding, Location, Severity


@dataclass(frozen=True)
class ProofFormat:
    """A format accepted as a proof: the media types libmagic reports for it and its usual extensions."""

    label: str
    kind: str  # formats of the same kind open in the same viewers (a mismatch there is only a warning)
    media_types: frozenset[str]
    extensions: frozenset[str]


def _fmt(label: str, kind: str, media_types: str, extensions: str) -> ProofFormat:
    return ProofFormat(label, kind, frozenset(media_types.split()), frozenset(extensions.split()))


PDF = _fmt("PDF document", "document", "application/pdf", "pdf")
PNG = _fmt("PNG image", "image", "image/png", "png")
JPEG = _fmt("JPEG image", "image", "image/jpeg", "jpg jpeg jpe")
MP4 = _fmt("MP4 video", "video", "video/mp4 video/x-m4v", "mp4 m4v")
QUICKTIME = _fmt("QuickTime video", "video", "video/quicktime", "mov qt")
WEBM = _fmt("WebM video", "video", "video/webm", "webm")
XML = _fmt("XML document", "text", "text/xml application/xml", "xml")
ZIP = _fmt("ZIP archive", "archive", "application/zip", "zip")
# Other archives are accepted as containers: the archive check opens them (or refuses what it cannot).
TAR = _fmt("tar archive", "archive", "application/x-tar", "tar")
GZIP = _fmt("gzip-compressed file", "archive", "application/gzip application/x-gzip", "gz tgz")
BZIP2 = _fmt("bzip2-compressed file", "archive", "application/x-bzip2", "bz2 tbz tbz2")
XZ = _fmt("xz-compressed file", "archive", "application/x-xz", "xz txz")
SEVENZIP = _fmt("7z archive", "archive", "application/x-7z-compressed", "7z")
RAR = _fmt("RAR archive", "archive", "application/x-rar application/vnd.rar", "rar")
EML = _fmt("e-mail source", "text", "message/rfc822 application/mbox", "eml mbox")
MSG = _fmt("Outlook message", "email", "application/vnd.ms-outlook", "msg")
TEXT = _fmt("text", "text", "text/plain text/csv application/json", "txt log csv tsv json text")
# Office documents and web pages are real proofs (extractions in a spreadsheet, terms of use as a document,
# the INDEX.HTM an IHE_XDM archive must hold): accepted, and judged on their content by the ssi checks
# (macros, remote templates, scripts, dangerous links) and read by the pii check. Macro-enabled variants
# are accepted as a type so that their macros are reported as what they are (ssi.office.*), not as a type.
WORD = _fmt(
    "word-processing document", "office",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document "
    "application/vnd.ms-word.document.macroenabled.12 application/vnd.oasis.opendocument.text application/msword",
    "docx docm odt doc",
)
SPREADSHEET = _fmt(
    "spreadsheet", "office",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet "
    "application/vnd.ms-excel.sheet.macroenabled.12 application/vnd.oasis.opendocument.spreadsheet "
    "application/vnd.ms-excel",
    "xlsx xlsm ods xls",
)
PRESENTATION = _fmt(
    "presentation", "office",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation "
    "application/vnd.ms-powerpoint.presentation.macroenabled.12 application/vnd.oasis.opendocument.presentation "
    "application/vnd.ms-powerpoint",
    "pptx pptm odp ppt",
)
HTML = _fmt("web page", "markup", "text/html application/xhtml+xml", "html htm xhtml")
SVG = _fmt("SVG image", "markup", "image/svg+xml", "svg")

ACCEPTED: tuple[ProofFormat, ...] = (
    PDF, PNG, JPEG, MP4, QUICKTIME, WEBM, XML, ZIP, TAR, GZIP, BZIP2, XZ, SEVENZIP, RAR, EML, MSG, TEXT,
    WORD, SPREADSHEET, PRESENTATION, HTML, SVG,
)
# Legacy Office files are OLE containers to libmagic when it cannot tell which: their name says which.
_OLE_FORMATS = (MSG, WORD, SPREADSHEET, PRESENTATION)

_BY_MEDIA_TYPE = {media: fmt for fmt in ACCEPTED for media in fmt.media_types}
_BY_EXTENSION = {ext: fmt for fmt in ACCEPTED for ext in fmt.extensions}

# Text that a browser or a shell would run or render actively: never a plain-text proof.
_ACTIVE_TEXT = frozenset(
    {
        "text/html", "application/xhtml+xml", "text/x-php", "text/x-msdos-batch", "text/javascript",
        "application/javascript", "text/x-shellscript", "text/rtf", "image/svg+xml",
    }
)
# libmagic guesses a programming language from keywords in any text (a log quoting "import" lines is
# "text/x-script.python"); only a shebang really makes a text file a script.
_SHEBANG = b"#!"

# An Outlook message without the Outlook class id is an OLE file to libmagic; its name says what it is.
_OLE_TYPES = frozenset({"application/x-ole-storage", "application/cdfv2"})

# What a message may carry besides proof formats: its HTML body, signatures, calendar and contact cards,
# office documents, any image, Outlook's own containers. Found inside an e-mail they are not refused as
# proofs; their dangers are the ssi checks' (scripts, macros, executables by content and by name).
EMAIL_PART_TYPES = frozenset(
    {
        "text/html", "application/xhtml+xml", "text/calendar", "text/vcard", "text/x-vcard", "text/rtf",
        "application/rtf", "application/pkcs7-signature", "application/pkcs7-mime", "application/x-pkcs7-signature",
        "application/x-pkcs7-mime", "application/pgp-signature", "application/pgp-keys", "application/pgp-encrypted",
        "application/vnd.ms-tnef", "application/ms-tnef", "application/vnd.ms-outlook", "application/msword",
        "application/vnd.ms-excel", "application/vnd.ms-powerpoint", "application/x-ole-storage", "application/cdfv2",
    }
)
EMAIL_PART_PREFIXES = ("image/", "message/", "application/vnd.openxmlformats-officedocument.",
                       "application/vnd.oasis.opendocument.")
EMAIL_ORIGIN_PREFIX = "e-mail"  # validators.mail.names.ORIGIN_PREFIX: every child of an e-mail


def is_email_part_type(file: ProofFile, media: str) -> bool:
    """A type a message may carry, found inside a message."""
    if not (file.origin or "").startswith(EMAIL_ORIGIN_PREFIX):
        return False
    return media in EMAIL_PART_TYPES or media.startswith(EMAIL_PART_PREFIXES)


_EMPTY_TYPES = frozenset({"application/x-empty", "inode/x-empty"})
_UNKNOWN_TYPES = frozenset({sniff.UNKNOWN, "application/data"})

# Labels for refused types, so a reader knows what the file is without opening it (first match wins).
_REFUSED_LABELS: tuple[tuple[str, str], ...] = (
    ("application/x-dosexec", "Windows executable"),
    ("application/x-msdownload", "Windows executable"),
    ("application/vnd.microsoft.portable-executable", "Windows executable"),
    ("application/x-executable", "executable program"),
    ("application/x-pie-executable", "executable program"),
    ("application/x-sharedlib", "executable library"),
    ("application/x-mach-binary", "macOS executable"),
    ("application/java-archive", "Java archive (executable)"),
    ("application/x-msi", "Windows installer"),
    ("text/x-shellscript", "script"),
    ("text/x-script", "script"),
    ("text/x-php", "script"),
    ("text/x-msdos-batch", "script"),
    ("text/javascript", "script"),
    ("application/javascript", "script"),
    ("text/html", "web page"),
    ("application/xhtml+xml", "web page"),
    ("image/svg+xml", "SVG image (may hold scripts)"),
    ("application/msword", "Office document"),
    ("application/vnd.ms-", "Office document"),
    ("application/vnd.openxmlformats-officedocument", "Office document"),
    ("application/vnd.oasis.opendocument", "OpenDocument (office) file"),
    ("application/cdfv2", "Office document (OLE)"),
    ("application/x-ole-storage", "Office document (OLE)"),
    ("text/rtf", "RTF document"),
    ("application/", "archive or binary file"),
    ("image/", "image format not accepted"),
    ("video/", "video format not accepted"),
    ("audio/", "audio recording"),
    ("text/", "text format not accepted"),
)


def classify(media_type: str, head: bytes) -> ProofFormat | None:
    """The accepted proof format of content of ``media_type`` starting with ``head``, or None."""
    media = media_type.lower()
    if media in _BY_MEDIA_TYPE:
        fmt = _BY_MEDIA_TYPE[media]
        return None if fmt is TEXT and head.startswith(_SHEBANG) else fmt
    if media.startswith("text/") and media not in _ACTIVE_TEXT and not head.startswith(_SHEBANG):
        return TEXT
    return None


def refused_label(media_type: str, head: bytes = b"") -> str:
    """A short human name for a type that is not accepted."""
    media = media_type.lower()
    if media.startswith("text/") and head.startswith(_SHEBANG):
        return "script"
    for prefix, label in _REFUSED_LABELS:
        if media.startswith(prefix):
            return label
    return "format not accepted"


# --- End-of-file structure checks. Each reads a bounded amount (headers, tails) or streams; each
# returns why the file looks cut short, or None. ``ctx.check_time`` bounds the walks over many parts.

_BLOCK = 1024 * 1024
_PDF_TAIL = 64 * 1024  # %%EOF belongs in the last 1 KiB; further back means trailing data, not a cut
_ZIP_TAIL = 22 + 0xFFFF  # end-of-central-directory record plus the longest comment


@dataclass(frozen=True)
class Cut:
    """Why a file looks cut short, in fixed words (``format.truncated``'s French words map them), and the
    byte where its structure breaks when one is known (the finding's location)."""

    reason: str
    at: int | None = None


def _read_at(stream: BinaryIO, offset: int, count: int) -> bytes:
    stream.seek(offset)
    return stream.read(count)


def _png_end(stream: BinaryIO, size: int, ctx: CheckContext) -> Cut | None:
    pos = 8
    chunks = 0
    while True:
        chunks += 1
        if chunks % 4096 == 0:
            ctx.check_time()
        header = _read_at(stream, pos, 8)
        if len(header) < 8:
            return Cut("the file ends before its closing IEND chunk")
        length, kind = struct.unpack(">I4s", header)
        end = pos + 8 + length + 4
        if end > size:
            return Cut("a chunk runs past the end of the file", pos)
        if kind == b"IEND":
            return None
        pos = end


def _jpeg_end(stream: BinaryIO, size: int, ctx: CheckContext) -> Cut | None:
    # Walk the marker segments up to the scan data (skipping EXIF thumbnails, which hold their own
    # end marker), then look for the end-of-image marker, which cannot occur inside scan data.
    pos = 2
    while True:
        ctx.check_time()
        marker = _read_at(stream, pos, 4)
        if len(marker) < 2:
            return Cut("the file ends inside its header segments")
        if marker[0] != 0xFF:
            return Cut("its segment structure is broken", pos)
        code = marker[1]
        if code == 0xFF:  # fill byte
            pos += 1
            continue
        if code == 0xD9:
            return None
        if 0xD0 <= code <= 0xD7 or code == 0x01:
            pos += 2
            continue
        if len(marker) < 4:
            return Cut("the file ends inside its header segments")
        length = struct.unpack(">H", marker[2:4])[0]
        pos += 2 + length
        if pos > size:
            return Cut("a header segment runs past the end of the file")
        if code == 0xDA:
            break
    previous = b""
    stream.seek(pos)
    while True:
        ctx.check_time()
        block = stream.read(_BLOCK)
        if not block:
            return Cut("the image data has no end-of-image marker (FFD9)")
        if b"\xff\xd9" in previous[-1:] + block:
            return None
        previous = block


def _pdf_end(stream: BinaryIO, size: int, ctx: CheckContext) -> Cut | None:
    tail = _read_at(stream, max(0, size - _PDF_TAIL), _PDF_TAIL)
    return None if b"%%EOF" in tail else Cut("it has no %%EOF end marker")


def _zip_end(stream: BinaryIO, size: int, ctx: CheckContext) -> Cut | None:
    start = max(0, size - _ZIP_TAIL)
    tail = _read_at(stream, start, _ZIP_TAIL)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return Cut("it has no end-of-central-directory record")
    cd_size, cd_offset, comment_length = struct.unpack("<IIH", tail[at + 12 : at + 22])
    eocd = start + at
    if cd_offset != 0xFFFFFFFF and cd_offset + cd_size > eocd:
        return Cut("its central directory runs past its end record")
    if eocd + 22 + comment_length > size:
        return Cut("its closing comment is cut short")
    return None


def _isobmff_end(stream: BinaryIO, size: int, ctx: CheckContext) -> Cut | None:
    """MP4 and QuickTime: top-level boxes must fit in the file and include the movie header ('moov')."""
    pos = 0
    has_moov = False
    boxes = 0
    while pos < size:
        boxes += 1
        if boxes % 4096 == 0:
            ctx.check_time()
        header = _read_at(stream, pos, 16)
        if len(header) < 8:
            return Cut("the file ends inside a box header", pos)
        box_size, kind = struct.unpack(">I4s", header[:8])
        has_moov = has_moov or kind == b"moov"
        if box_size == 0:  # the last box runs to the end of the file
            break
        if box_size == 1:
            if len(header) < 16:
                return Cut("the file ends inside a box header", pos)
            box_size = struct.unpack(">Q", header[8:16])[0]
        if box_size < 8:
            return Cut("its box structure is broken", pos)
        if pos + box_size > size:
            return Cut("a box runs past the end of the file", pos)
        pos += box_size
    if not has_moov:
        return Cut("it has no movie header ('moov' box): the recording was not finalised")
    return None


def _ebml_vint(data: bytes, at: int, keep_marker: bool) -> tuple[int, int, bool] | None:
    """An EBML variable-length integer at ``at``: (value, length, all-ones 'unknown size')."""
    if at >= len(data) or data[at] == 0:
        return None
    length = 9 - data[at].bit_length()
    if at + length > len(data):
        return None
    value = data[at] if keep_marker else data[at] & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


_EBML_HEADER = 0x1A45DFA3
_EBML_SEGMENT = 0x18538067


def _webm_end(stream: BinaryIO, size: int, ctx: CheckContext) -> Cut | None:
    """WebM: the Segment element after the EBML header must fit in the file when its size is declared."""
    head = _read_at(stream, 0, 4096)
    pos = 0
    for expected in (_EBML_HEADER, _EBML_SEGMENT):
        element = _ebml_vint(head, pos, keep_marker=True)
        if element is None:
            return Cut("the file ends inside its header")
        element_id, id_length, _ = element
        if element_id != expected:
            return None  # an unusual layout: nothing cheap to conclude
        declared = _ebml_vint(head, pos + id_length, keep_marker=False)
        if declared is None:
            return Cut("the file ends inside its header")
        value, size_length, unknown = declared
        data_start = pos + id_length + size_length
        if unknown:  # live recordings leave the segment size open
            return None
        if data_start + value > size:
            what = "its header" if expected == _EBML_HEADER else "its segment"
            return Cut(f"{what} declares more bytes than the file has", pos)
        pos = data_start + value
    return None


_END_CHECKS: Mapping[ProofFormat, Callable[[BinaryIO, int, CheckContext], Cut | None]] = {
    PNG: _png_end,
    JPEG: _jpeg_end,
    PDF: _pdf_end,
    ZIP: _zip_end,
    MP4: _isobmff_end,
    QUICKTIME: _isobmff_end,
    WEBM: _webm_end,
}


class FiletypeValidator(Validator):
    name = "filetype"
    rules: ClassVar[tuple[str, ...]] = (
        "format.empty",
        "format.unreadable",
        "format.unrecognised",
        "format.not-accepted",
        "format.extension-mismatch",
        "format.truncated",
    )
    reads_settings: ClassVar[tuple[str, ...]] = ()
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 30.0

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        try:
            with file.open() as stream:
                return self._check_stream(file, stream, ctx)
        except sniff.SnifferUnavailableError:
            not_run = rules.finding("system.check-not-run", check=self.name, reason="libmagic is unavailable")
            return CheckResult(
                findings=[not_run],
                state=CheckState.NOT_RUN,
                detail="libmagic unavailable",
            )
        except OSError as exc:
            # strerror names the cause ("Permission denied") without quoting the path or content.
            reason = exc.strerror or type(exc).__name__
            return CheckResult(findings=[rules.finding("format.unreadable", reason=reason)])

    def _check_stream(self, file: ProofFile, stream: BinaryIO, ctx: CheckContext) -> CheckResult:
        head = stream.read(sniff.SNIFF_BYTES)
        size = stream.seek(0, 2)
        if size == 0:
            return CheckResult(findings=[rules.finding("format.empty")])
        media = sniff.media_type(head)
        if media in _EMPTY_TYPES:
            return CheckResult(findings=[rules.finding("format.empty")])
        fmt = classify(media, head)
        if fmt is None and media in _OLE_TYPES:
            fmt = next((f for f in _OLE_FORMATS if file.extension in f.extensions), None)
        if fmt is None and is_email_part_type(file, media):
            # Accepted inside a message; a name announcing a proof format it is not still misleads.
            announced = _BY_EXTENSION.get(file.extension)
            if announced is None or announced.kind == "email":
                return CheckResult(detail=f"{media} inside an e-mail")
            return CheckResult(findings=[_mismatch(file, media, refused_label(media, head), announced)])
        if fmt is None:
            if media in _UNKNOWN_TYPES:
                return CheckResult(findings=[rules.finding("format.unrecognised", media_type=media)])
            label = refused_label(media, head)
            return CheckResult(findings=[rules.finding("format.not-accepted", media_type=media, label=label)])
        findings: list[Finding] = []
        mismatch = _extension_mismatch(file, media, fmt)
        if mismatch is not None and is_email_part_type(file, media) and _BY_EXTENSION.get(file.extension) is None:
            mismatch = None  # a calendar invitation (.ics) or a contact card (.vcf) a message carries
        if mismatch is not None:
            findings.append(mismatch)
        end_check = _END_CHECKS.get(fmt)
        if end_check is not None:
            cut = end_check(stream, size, ctx)
            if cut is not None:
                where = Location(span=(cut.at, size)) if cut.at is not None else Location()
                findings.append(rules.finding("format.truncated", where, label=fmt.label, reason=cut.reason))
        return CheckResult(findings=findings)


def _extension_mismatch(file: ProofFile, media: str, fmt: ProofFormat) -> Finding | None:
    extension = file.extension  # a child's own name, not its parent's path
    # Files found inside another one often have a generated name without extension: nothing to compare.
    if not extension and file.depth > 0:
        return None
    announced = _BY_EXTENSION.get(extension)
    if announced is fmt:
        return None
    # Any text opens as text: XML without a declaration, e-mail sources and logs libmagic calls CSV.
    if announced is not None and announced.kind == "text" and fmt.kind == "text":
        return None
    severity = Severity.WARNING if announced is not None and announced.kind == fmt.kind else None
    return _mismatch(file, media, fmt.label, announced, severity)


def _mismatch(
    file: ProofFile, media: str, label: str, announced: ProofFormat | None, severity: Severity | None = None
) -> Finding:
    extension = file.extension
    return rules.finding(
        "format.extension-mismatch",
        Location(),
        severity=severity,
        media_type=media,
        label=label,
        extension=f".{extension}" if extension else "(no extension)",
        expected=announced.label if announced is not None else "no accepted proof format",
    )


def make_validators(settings: Mapping[str, Any]) -> list[Validator]:
    from validators.registry import family_validators

    return family_validators(__name__, settings)
