"""Executables wherever they hide, and polyglots: an executable or document starting inside a file.

An executable is recognised by its own header (PE, ELF, Mach-O, Java class, shebang script, Windows
shortcut), whatever the file's name, or by an extension Windows runs on a double click. The whole file
is then searched, in blocks, for an executable or a PDF starting after offset 0 (an ELF after a PDF, a
PE after a JPEG); each candidate is validated on its header fields so that random bytes in compressed
data do not raise alarms. Zips hidden in other files are the archive check's (``validators.archive``,
which also hands their members to the engine), so they are not looked for twice.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.model import CheckState, Finding, Location

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
# Containers whose members are their business (zip-based formats): appended-data checks do not apply.
_ZIP_FAMILY = (
    "application/zip",
    "application/java-archive",
    "application/vnd.openxmlformats",
    "application/vnd.oasis.opendocument",
    "application/epub+zip",
    "application/x-zip",
)

_LNK_HEADER = b"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_MACHO_MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_SHEBANG = re.compile(rb"^#![ \t]*/[\x21-\x7e]+")
# Searched with bytes.find (memchr speed), not one alternation regex: on 32 MiB of random bytes the
# regex alone cost 0.5 s, most of the SSI stage's overhead over clamd.
_CANDIDATE_TOKENS = (b"MZ", b"\x7fELF", b"%PDF-")


def _pe_at(data: bytes, at: int) -> bool:
    """A DOS header whose e_lfanew points at a PE/NE/LE signature."""
    if len(data) < at + 0x40:
        return False
    pointer = struct.unpack_from("<I", data, at + 0x3C)[0]
    if not 0x40 <= pointer <= 0x10000 or len(data) < at + pointer + 4:
        return False
    signature = data[at + pointer : at + pointer + 4]
    return signature == b"PE\0\0" or signature[:2] in (b"NE", b"LE", b"LX")


def _elf_at(data: bytes, at: int) -> bool:
    head = data[at : at + 7]
    return len(head) == 7 and head[4] in (1, 2) and head[5] in (1, 2) and head[6] == 1


def executable_kind(head: bytes) -> str | None:
    """The kind of executable ``head`` starts with, or None."""
    if head[:2] == b"MZ" and _pe_at(head, 0):
        return "Windows (PE/MZ)"
    if head[:4] == b"\x7fELF" and _elf_at(head, 0):
        return "ELF"
    if head[:4] in _MACHO_MAGICS:
        return "Mach-O"
    if head[:4] == b"\xca\xfe\xba\xbe":
        return "Mach-O universal or Java class"
    if head.startswith(_LNK_HEADER):
        return "Windows shortcut (LNK)"
    if _SHEBANG.match(head[:256]):
        return "script (shebang)"
    return None


def _candidates(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, token) of every candidate header start in ``data``, in offset order."""
    found: list[tuple[int, bytes]] = []
    for token in _CANDIDATE_TOKENS:
        at = data.find(token)
        while at != -1:
            found.append((at, token))
            at = data.find(token, at + 1)
    found.sort()
    return found


def hidden_formats(data: bytes, base: int, outer_is_pdf: bool) -> Iterator[tuple[str, int]]:
    """(kind, absolute offset) of every validated format start after offset 0 in ``data``."""
    for at, token in _candidates(data):
        if base + at == 0:
            continue
        if token == b"MZ" and _pe_at(data, at):
            yield "Windows executable", base + at
        elif token == b"\x7fELF" and _elf_at(data, at):
            yield "ELF executable", base + at
        elif token == b"%PDF-" and not outer_is_pdf and base + at > 1024:
            yield "PDF document", base + at


class ExecutablesValidator(Validator):
    name: ClassVar[str] = "ssi-executable"
    rules: ClassVar[tuple[str, ...]] = ("ssi.executable", "ssi.polyglot", "system.check-not-run")
    timeout: ClassVar[float] = 120.0

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        findings: list[Finding] = []
        head = file.head(4096)
        kind = executable_kind(head)
        declared = f" (named .{file.extension})" if file.extension else ""
        if kind is not None:
            findings.append(rules.finding("ssi.executable", kind=kind, where=declared, evidence=kind))
        elif file.extension in RUNNABLE_EXTENSIONS:
            findings.append(
                rules.finding("ssi.executable", kind=f".{file.extension}", where=" (runs when opened)")
            )
        if kind is not None or file.media_type.startswith(_ZIP_FAMILY) or head.startswith(b"PK\x03\x04"):
            return CheckResult(findings=findings)
        if file.size > MAX_SCAN_BYTES:
            return CheckResult(
                findings=findings,
                state=CheckState.NOT_RUN,
                detail=f"over {MAX_SCAN_BYTES} bytes: not searched for hidden formats",
            )
        outer = file.media_type.split("/")[-1] or "file"
        for inner, offset in self._scan(file, ctx, head.startswith(b"%PDF-") or "pdf" in file.media_type):
            findings.append(
                rules.finding(
                    "ssi.polyglot",
                    Location(span=(offset, file.size)),
                    inner=inner,
                    outer=outer,
                    offset=str(offset),
                )
            )
            if "executable" in inner:
                findings.append(
                    rules.finding(
                        "ssi.executable", kind=inner.split()[0], where=f" at offset {offset} of this {outer}"
                    )
                )
        return CheckResult(findings=findings)

    @staticmethod
    def _scan(file: ProofFile, ctx: CheckContext, outer_is_pdf: bool) -> Iterator[tuple[str, int]]:
        """The first hidden format of each kind, read block by block."""
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
                for inner, offset in hidden_formats(data, start, outer_is_pdf):
                    family = inner.split()[0]
                    if family not in reported and offset >= base - len(carry):
                        reported.add(family)
                        yield inner, offset
                carry = data[-OVERLAP:]
                base += len(block)
