"""Executables and other formats wherever they hide: at the start of a file, inside it, in its regions.

An executable is recognised by its own header (PE, ELF, Mach-O thin or universal, Java class, shebang
script, Windows shortcut), whatever the file's name, or by an extension Windows runs on a double click; a
zip whose members are Java or Android code is a JAR/APK. The whole file is then searched, in blocks, for
a format starting after offset 0 (``validators.ssi.signatures``: executables, Java classes, JARs, zip, 7z,
RAR and CAB archives, PDFs), each candidate validated on its header so that random bytes in compressed data
do not raise alarms; the regions of a PNG, JPEG or MP4 (chunks, segments, boxes: ``regions.py``) and what
follows a PDF's ``%%EOF`` are looked at for scripts, which have no signature elsewhere. A zip that ends the
file is the archive check's (``validators.archive`` reports that polyglot and checks its members).
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Iterator
from typing import ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.model import CheckState, Finding, Location
from validators.ssi.regions import region_starts
from validators.ssi.signatures import Hidden, executable_kind, hidden_formats, jar_kind

__all__ = ["ExecutablesValidator", "executable_kind", "hidden_formats"]

BLOCK = 8 * 1024 * 1024
OVERLAP = 4096  # a header cut between two blocks is seen whole in the next one
MAX_SCAN_BYTES = 4 * 1024 * 1024 * 1024

# Extensions Windows (or a desktop) runs when opened: dangerous whatever the content.
RUNNABLE_EXTENSIONS = frozenset(
    {
        "exe",
        "dll",
        "scr",
        "com",
        "pif",
        "cpl",
        "msi",
        "msp",
        "bat",
        "cmd",
        "ps1",
        "psm1",
        "vbs",
        "vbe",
        "js",
        "jse",
        "wsf",
        "wsh",
        "hta",
        "lnk",
        "jar",
        "apk",
        "reg",
        "scf",
        "url",
        "desktop",
        "command",
        "sh",
        "appimage",
        "msc",
        "gadget",
        "application",
        "xbap",
    }
)
# Archives whose members are the archive checks' business (each member is checked as a child): their
# raw bytes hold their members' headers (a tar of PDFs holds "%PDF-"), which are no hidden formats.
_OTHER_ARCHIVES = (
    "application/x-tar",
    "application/x-7z-compressed",
    "application/x-rar",
    "application/vnd.rar",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/vnd.ms-cab-compressed",
)
# Containers whose members are their business (zip-based formats): appended-data checks do not apply.
_ZIP_FAMILY = (
    "application/zip",
    "application/java-archive",
    "application/vnd.openxmlformats",
    "application/vnd.oasis.opendocument",
    "application/epub+zip",
    "application/x-zip",
)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PDF_END = re.compile(rb"%%EOF[\r\n\t \x00]*")
_ZIP_TAIL = 64 * 1024 + 22  # an end-of-central-directory record and the longest comment
MAX_ZIP_NAMES = 100_000
MAX_PDF_ENDS = 1000
# Kinds that only a region start reveals (a shebang has no signature of its own elsewhere in a file).
_REGION_KINDS = ("script (shebang)", "Windows shortcut (LNK)")
_PDF_END_REGION = "data after the PDF's end (%%EOF)"
# ssi.executable's {where}: a few fixed phrases the French report maps (fr: values); what varies (offset,
# region, extension) goes in the finding's location or evidence.
RUNS_WHEN_OPENED = " (runs when opened)"
HIDDEN_INSIDE = " hidden inside the file"
IN_ZIP_COMMENT = " in the zip comment"
IN_REGION = " at the start of an inner block of the file"
AFTER_PDF_END = " after the PDF's end (%%EOF)"


def _other_container(media_type: str, head: bytes) -> bool:
    """Archives and OLE compound files (Outlook .msg, legacy Office) store their members' bytes as they are;
    the archive, e-mail and office checks hand those members over as children."""
    return media_type.startswith(_OTHER_ARCHIVES) or head[257:262] == b"ustar" or head.startswith(_OLE_MAGIC)


def _zip_comment(file: ProofFile) -> bytes | None:
    """The comment of the zip that ends the file (b"" when empty), or None when no zip ends it.

    A zip ending the file is the archive check's (it finds it, even appended to another format, and checks
    its members); its comment is no member: only this search looks into it."""
    with file.open() as stream:
        stream.seek(max(0, file.size - _ZIP_TAIL))
        tail = stream.read(_ZIP_TAIL)
    at = tail.rfind(b"PK\x05\x06")
    while at >= 0:
        if len(tail) >= at + 22 and at + 22 + struct.unpack_from("<H", tail, at + 20)[0] == len(tail):
            return tail[at + 22 :]
        at = tail.rfind(b"PK\x05\x06", 0, at)  # the comment itself may hold the signature
    return None


def _hidden_in_comment(comment: bytes, at: int, outer: str) -> list[Finding]:
    kind = executable_kind(comment[:4096])
    span = Location(span=(at, at + len(comment)))
    found = [rules.finding("ssi.executable", span, kind=kind, where=IN_ZIP_COMMENT, evidence=kind)] if kind else []
    for hidden, offset in hidden_formats(comment, 1):  # base 1: a format at the comment's start counts
        found += ExecutablesValidator.hidden_findings(hidden, at + offset - 1, at + len(comment), outer)
    return found


def _zip_code_kind(file: ProofFile) -> str | None:
    """JAR or APK, from the member names of a zip (its central directory; nothing is decompressed)."""
    try:
        with file.open() as stream, zipfile.ZipFile(stream) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        return None  # the archive check reports a broken zip
    return jar_kind(names[:MAX_ZIP_NAMES])


class ExecutablesValidator(Validator):
    name: ClassVar[str] = "ssi-executable"
    rules: ClassVar[tuple[str, ...]] = ("ssi.executable", "ssi.polyglot", "system.check-not-run")
    reads_settings: ClassVar[tuple[str, ...]] = ()
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 120.0

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        findings: list[Finding] = []
        head = file.head(4096)
        kind = executable_kind(head)
        zip_family = file.media_type.startswith(_ZIP_FAMILY) or head.startswith(b"PK\x03\x04")
        if kind is None and zip_family:
            kind = _zip_code_kind(file)
        if kind is not None:
            # The name it hides under goes in the evidence (the file's name heads its section of the report).
            named = f", named .{file.extension}" if file.extension else ""
            findings.append(rules.finding("ssi.executable", kind=kind, where="", evidence=kind + named))
        elif file.extension in RUNNABLE_EXTENSIONS:
            findings.append(rules.finding("ssi.executable", kind=f".{file.extension}", where=RUNS_WHEN_OPENED))
        outer = file.media_type.split("/")[-1] or "file"
        comment = _zip_comment(file) if file.size else None
        if comment and zip_family and kind is None:  # elsewhere the whole-file search below covers it
            findings += _hidden_in_comment(comment, file.size - len(comment), outer)
        if kind is not None or zip_family or _other_container(file.media_type, head):
            return CheckResult(findings=findings)
        if file.size > MAX_SCAN_BYTES:
            return CheckResult(
                findings=findings,
                state=CheckState.NOT_RUN,
                detail="over the size limit: not searched for hidden formats",
            )
        outer_is_pdf = head.startswith(b"%PDF-") or "pdf" in file.media_type
        zips = comment is None
        pdf_ends: list[tuple[int, str]] = []
        ends = pdf_ends if head.startswith(b"%PDF-") else None
        for hidden, offset in self._scan(file, ctx, outer_is_pdf, zips, ends):
            findings += self.hidden_findings(hidden, offset, file.size, outer)
        for kind_found, offset, where in self._region_scripts(file, ctx, pdf_ends):
            findings.append(
                rules.finding(
                    "ssi.executable",
                    Location(span=(offset, file.size)),
                    kind=kind_found,
                    where=AFTER_PDF_END if where == _PDF_END_REGION else IN_REGION,
                    evidence=f"{kind_found}, {where}",
                )
            )
        return CheckResult(findings=findings)

    @staticmethod
    def hidden_findings(hidden: Hidden, offset: int, size: int, outer: str) -> list[Finding]:
        found = [
            rules.finding(
                "ssi.polyglot", Location(span=(offset, size)), inner=hidden.kind, outer=outer, offset=str(offset)
            )
        ]
        if hidden.executable:
            found.append(
                rules.finding(
                    "ssi.executable", Location(span=(offset, size)), kind=hidden.executable_kind, where=HIDDEN_INSIDE
                )
            )
        return found

    @staticmethod
    def _scan(
        file: ProofFile, ctx: CheckContext, outer_is_pdf: bool, zips: bool, pdf_ends: list[tuple[int, str]] | None
    ) -> Iterator[tuple[Hidden, int]]:
        """The first hidden format of each family, read block by block (blocks overlap by a header's length).

        For a PDF, the offset after each %%EOF is noted in ``pdf_ends`` on the way (a region start)."""
        reported: set[str] = set()
        with file.open() as stream:
            base, carry = 0, b""
            while True:
                ctx.check_time()
                block = stream.read(BLOCK)
                if not block:
                    return
                data = carry + block
                start = base - len(carry)
                for hidden, offset in hidden_formats(data, start, outer_is_pdf=outer_is_pdf, zips=zips):
                    if hidden.family not in reported:
                        reported.add(hidden.family)
                        yield hidden, offset
                if pdf_ends is not None:
                    _note_pdf_ends(data, start, pdf_ends)
                carry = data[-OVERLAP:]
                base += len(block)

    @staticmethod
    def _region_scripts(
        file: ProofFile, ctx: CheckContext, pdf_ends: list[tuple[int, str]]
    ) -> Iterator[tuple[str, int, str]]:
        """Scripts and shortcuts at the start of a PNG chunk, a JPEG segment, an MP4 box or after a PDF's end."""
        with file.open() as stream:
            starts = [*region_starts(stream, file.size, ctx.check_time), *pdf_ends]
            for offset, where in starts:
                stream.seek(offset)
                kind = executable_kind(stream.read(256))
                if kind in _REGION_KINDS:
                    yield kind, offset, where


def _note_pdf_ends(data: bytes, start: int, pdf_ends: list[tuple[int, str]]) -> None:
    """Offsets of what follows each %%EOF (incremental updates start with objects, never with scripts)."""
    for match in _PDF_END.finditer(data):
        offset = start + match.end()
        known = {at for at, _ in pdf_ends[-4:]}  # blocks overlap: the same end may be seen twice
        if match.end() < len(data) and offset not in known and len(pdf_ends) < MAX_PDF_ENDS:
            pdf_ends.append((offset, _PDF_END_REGION))
