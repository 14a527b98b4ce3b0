"""Triage of a zip archive's structure, read from its bytes without extracting anything.

The central directory and every local header are parsed here rather than through ``zipfile``, because
``zipfile`` hides exactly what an attacker plays with: overlapping entries, local headers that disagree with
the central directory, data before the first entry, duplicate names, entry counts it would happily walk.
Checks stop as soon as a limit is passed: a 100 000-entry archive is refused from its end record alone.

``read_member`` streams one member's content with hard output limits; it is the only decompression
path, shared by the intake (to disk) and the archive check (in memory).
"""

from __future__ import annotations

import bz2
import contextlib
import io
import itertools
import lzma
import mmap
import re
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from validators import rules
from validators.limits import KiB, MiB, TriageLimits  # TriageLimits: imported from here too
from validators.model import Finding, Location, Severity

SIG_LOCAL = b"PK\x03\x04"
SIG_CENTRAL = b"PK\x01\x02"
SIG_EOCD = b"PK\x05\x06"
SIG_ZIP64_LOCATOR = b"PK\x06\x07"
SIG_ZIP64_EOCD = b"PK\x06\x06"
SPANNING_MARKERS = (b"PK\x07\x08", b"PK00")

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")

FLAG_ENCRYPTED = 0x0001
FLAG_DATA_DESCRIPTOR = 0x0008
FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8 = 0x0800
METHOD_STORED, METHOD_DEFLATED, METHOD_BZIP2, METHOD_LZMA, METHOD_AES = 0, 8, 12, 14, 99
SUPPORTED_METHODS = frozenset({METHOD_STORED, METHOD_DEFLATED, METHOD_BZIP2, METHOD_LZMA})
EXTRA_ZIP64 = 0x0001
EXTRA_UNICODE_PATH = 0x7075
SYSTEM_UNIX = 3
MAX_COMMENT = 0xFFFF
MAX_FINDINGS_PER_RULE = 20
HEAD_BYTES = 512  # enough for every archive magic we know, tar's at 257 included
LOCAL_EXTRA_PEEK = 128  # local extra fields read with the header (timestamps, Unicode Path)

# Magic numbers of archive formats a member may itself be; a nested archive is one more level of depth.
ARCHIVE_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, SIG_LOCAL, "zip"),
    (0, SIG_EOCD, "zip"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"BZh", "bzip2"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"\x28\xb5\x2f\xfd", "zstd"),
    (0, b"MSCF", "cab"),
    (257, b"ustar", "tar"),
)

# What may precede a zip in a polyglot, to name it in the finding.
PREFIX_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF document"),
    (b"MZ", "Windows executable"),
    (b"\x7fELF", "ELF executable"),
    (b"#!", "script"),
)

_DRIVE = re.compile(r"^[A-Za-z]:")
_LOOKALIKE_SEPARATORS = re.compile("[\uff0e\uff0f\uff3c\u2024\ufe52\ufe68\u2215\u2044\u29f8\u29f9]")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
# Anything in a printable ASCII name that may make it suspicious; a match sends it to the full analysis.
_SUSPICIOUS_ASCII = re.compile(
    r'[\\<>:"|?*]|[. ](?:/|$)|(?:^|/)(?:con|prn|aux|nul|com\d|lpt\d|conin\$|conout\$)(?:[. /]|$)',
    re.IGNORECASE,
)
# Characters that change how a name is displayed without being seen: bidi controls and invisible marks.
_BIDI_AND_INVISIBLE = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


@dataclass(slots=True)
class ZipEntry:
    """One central-directory entry, with what its local header says and where its data lies.

    Mutable only while triage fills in ``data_offset`` and ``nested`` (copying 100 000 frozen entries
    cost seconds); treat it as read-only afterwards.
    """

    index: int
    name: str  # decoded name, as the archive's readers would show it
    raw_name: bytes
    name_encoding: str  # "ascii", "utf-8", "utf-8 unflagged", "cp437", "unicode-path", "undecodable"
    flags: int
    method: int
    crc: int
    compressed_size: int
    declared_size: int
    local_offset: int  # absolute offset in the stream
    data_offset: int | None  # absolute offset of the data, None when the local header is unreadable
    external_attr: int
    create_system: int
    zip64: bool
    path: str | None  # safe relative POSIX path, None when the name is dangerous
    nested: str | None = None  # archive format of the member's first bytes, if any
    # Other names extractors may write it under (raw name vs Unicode Path field, local header), by source.
    other_names: tuple[tuple[str, str], ...] = ()

    @property
    def is_dir(self) -> bool:
        return self.name.endswith(("/", "\\"))

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) or self.method == METHOD_AES

    @property
    def unix_file_type(self) -> int:
        return (self.external_attr >> 16) & 0o170000 if self.create_system == SYSTEM_UNIX else 0

    @property
    def is_link(self) -> bool:
        return self.unix_file_type == 0o120000

    @property
    def is_special(self) -> bool:
        """A link, device, FIFO or socket: anything but a regular file or a folder."""
        kind = self.unix_file_type
        return kind not in (0, 0o100000, 0o040000)

    @property
    def display_name(self) -> str:
        return display_name(self.name)


@dataclass
class TriageReport:
    """What triage found: the entries it parsed and the findings, in archive order."""

    is_zip: bool = False
    entries: list[ZipEntry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    archive_offset: int = 0  # where the zip's first byte is in the stream (0 for an ordinary zip)
    stream_size: int = 0
    total_declared: int = 0
    zip64: bool = False
    complete: bool = True  # False when triage stopped before looking at every entry
    structural: bool = False  # a limit, overlap or malformation: no member may be extracted
    skipped: dict[int, str] = field(default_factory=dict)  # entry index -> why it must not be extracted

    @property
    def dangerous(self) -> bool:
        return any(f.severity.value == "error" for f in self.findings)

    def extractable(self) -> list[ZipEntry]:
        """Regular-file members that may be read: none at all when the archive's structure is unsafe."""
        if self.structural or not self.is_zip:
            return []
        return [e for e in self.entries if not e.is_dir and e.index not in self.skipped]


class MemberError(Exception):
    """A member could not be read within its limits; ``rule`` names the finding it deserves."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


def display_name(name: str) -> str:
    """A name safe to print: control, bidi and invisible characters shown as ``\\uXXXX`` escapes."""
    if name.isprintable() and not _BIDI_AND_INVISIBLE.intersection(name):
        return name
    return "".join(
        f"\\u{ord(c):04x}" if (not c.isprintable() or c in _BIDI_AND_INVISIBLE) else c for c in name
    )


# Characters some extractors turn into a dot or a slash: NFKC compatibility forms (fullwidth `．／＼`, the
# one-dot leader) and the slash look-alikes Windows' "best fit" code-page conversion maps to `/` or `\`.
_SLASH_LOOKALIKES = str.maketrans({"\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u29f9": "\\"})


def folded_name(name: str) -> str:
    """The name as an extractor that folds Unicode look-alikes (NFKC, best-fit slashes) would write it."""
    return unicodedata.normalize("NFKC", name).translate(_SLASH_LOOKALIKES)


def safe_path(name: str) -> tuple[str | None, str | None]:
    """The relative POSIX path a member may be given, or None and why it may not be used as a path."""
    if not name.isascii():
        folded = folded_name(name)
        if folded != name and _plain_path(folded)[1] is not None:
            return None, "parent-folder or absolute path once Unicode look-alikes are folded (fullwidth dots, slashes)"
    return _plain_path(name)


def _plain_path(name: str) -> tuple[str | None, str | None]:
    if (
        name[:1] not in ("/", "")
        and "\\" not in name
        and name[1:2] != ":"
        and "//" not in name
        and "/." not in "/" + name
    ):
        return name.rstrip("/"), None  # the common case: nothing to normalise
    candidate = name.replace("\\", "/")
    if candidate.startswith("/") or _DRIVE.match(candidate):
        return None, "absolute path"
    parts = [p for p in candidate.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "parent-folder component"
    if not parts:
        return None, "empty name"
    return "/".join(parts), None


def name_oddities(name: str) -> tuple[list[str], list[str]]:
    """(deceptive, suspicious) traits of a name: deceptive ones hide what a file is from a reader."""
    if name.isascii() and name.isprintable() and not _SUSPICIOUS_ASCII.search(name):
        return [], []  # the common case, decided by one regular expression
    deceptive: list[str] = []
    suspicious: list[str] = []
    if any(unicodedata.category(c) == "Cc" for c in name):
        deceptive.append("control characters")
    if _BIDI_AND_INVISIBLE.intersection(name):
        deceptive.append("bidirectional or invisible characters")
    if "\ufffd" in name:
        deceptive.append("bytes that are not valid in its declared encoding (decoders disagree on them)")
    if _LOOKALIKE_SEPARATORS.search(name):
        deceptive.append("look-alike dots or slashes (fullwidth or best-fit forms)")
    if "\\" in name:
        suspicious.append("backslash separators")
    for part in name.replace("\\", "/").split("/"):
        if not part:
            continue
        if part.split(".", 1)[0].upper().rstrip(" ") in _WINDOWS_RESERVED:
            suspicious.append("a Windows reserved device name")
        if part[-1] in ". " and part not in (".", ".."):
            suspicious.append("a trailing dot or space")
        if _WINDOWS_FORBIDDEN.intersection(part):
            suspicious.append("characters Windows forbids")
    return deceptive, list(dict.fromkeys(suspicious))


def _decode_raw(raw: bytes, flags: int) -> tuple[str, str]:
    """The raw name field as a reader without Unicode Path support decodes it, and which way."""
    if flags & FLAG_UTF8:
        try:
            return raw.decode("utf-8"), "ascii" if raw.isascii() else "utf-8"
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace"), "undecodable"
    if raw.isascii():
        return raw.decode("ascii"), "ascii"
    try:
        return raw.decode("utf-8"), "utf-8 unflagged"
    except UnicodeDecodeError:
        return raw.decode("cp437"), "cp437"


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _same_name(unicode_name: str, raw: bytes, flags: int) -> bool:
    """Whether a Unicode Path field only restates the raw name. A legacy code-page name may spell its
    accented letters differently, but its ASCII characters must stay where they are."""
    if flags & FLAG_UTF8 or raw.isascii():  # the same text, whatever its Unicode normal form (macOS: NFD)
        decoded = _decode_raw(raw, flags)[0]
        return unicodedata.normalize("NFC", unicode_name) == unicodedata.normalize("NFC", decoded)
    raw_skeleton = re.sub(rb"[\x80-\xff]+", b"*", raw).decode("ascii")
    return _NON_ASCII_RUN.sub("*", unicode_name) == raw_skeleton


def _decode_name(raw: bytes, flags: int, extra: bytes) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """(name an extractor writes, its encoding, other names extractors may write instead, by source).

    Info-ZIP, 7-Zip and Python take the Unicode Path field (0x7075) over the raw name when its CRC
    matches the raw name (APPNOTE 4.6.9); a field that says something else than the raw name, or a stale
    one (CRC mismatch) that other tools may still trust, means extractors disagree on the name.
    """
    decoded, encoding = _decode_raw(raw, flags)
    valid, stale = _unicode_path_extra(raw, extra)
    others: list[tuple[str, str]] = []
    name = decoded
    if valid is not None:
        name, encoding = valid, "unicode-path"
        if not _same_name(valid, raw, flags):
            others.append((decoded, "raw name field (read by tools without Unicode Path support)"))
    if stale is not None and stale != name:
        others.append((stale, "stale Unicode Path field (its checksum does not match the raw name)"))
    return name, encoding, tuple(others)


def _iter_extra(extra: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<2H", extra, pos)
        yield tag, extra[pos + 4 : pos + 4 + size]
        pos += 4 + size


def _unicode_path_extra(raw: bytes, extra: bytes) -> tuple[str | None, str | None]:
    """Info-ZIP's Unicode Path field: (name when its CRC matches the raw name, name when it does not)."""
    for tag, body in _iter_extra(extra):
        if tag == EXTRA_UNICODE_PATH and len(body) > 5 and body[0] == 1:
            (crc,) = struct.unpack_from("<L", body, 1)
            name = body[5:].decode("utf-8", "replace")
            return (name, None) if crc == zlib.crc32(raw) else (None, name)
    return None, None


def _zip64_values(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int, bool]:
    """Real sizes and offset from the ZIP64 extra field, for the fields saturated in the fixed header."""
    for tag, body in _iter_extra(extra):
        if tag != EXTRA_ZIP64:
            continue
        pos = 0
        values = []
        for value in (usize, csize, offset):
            if value == 0xFFFFFFFF and pos + 8 <= len(body):
                (value,) = struct.unpack_from("<Q", body, pos)
                pos += 8
            values.append(value)
        return values[0], values[1], values[2], True
    return usize, csize, offset, False


class _Source:
    """Random access to the stream: a memory map when it is a real file, else plain seeks and reads."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        stream.seek(0, io.SEEK_END)
        self.size = stream.tell()
        self.buffer: Any = None
        if self.size:
            with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
                self.buffer = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            if self.buffer is None and isinstance(stream, io.BytesIO):
                self.buffer = stream.getbuffer()

    def read(self, offset: int, count: int) -> bytes:
        if offset < 0 or count <= 0 or offset >= self.size:
            return b""
        if self.buffer is not None:
            return bytes(self.buffer[offset : offset + count])
        self.stream.seek(offset)
        return self.stream.read(count)

    def close(self) -> None:
        if isinstance(self.buffer, memoryview):
            self.buffer.release()
        elif self.buffer is not None:
            self.buffer.close()
        self.buffer = None


class CappedFindings:
    """Findings with a cap per rule, so a hostile archive cannot make a report of 100 000 lines."""

    def __init__(self, target: list[Finding]) -> None:
        self.target = target
        self.counts: dict[str, int] = {}

    def add(self, rule_id: str, name: str | None = None, **params: Any) -> None:
        """A finding located at member ``name`` (escaped for display here, only if it is kept)."""
        count = self.counts.get(rule_id, 0) + 1
        self.counts[rule_id] = count
        if count <= MAX_FINDINGS_PER_RULE:
            entry = display_name(name) if name is not None else None
            self.target.append(rules.finding(rule_id, Location(entry=entry), **params))

    def close(self) -> None:
        for rule_id, count in self.counts.items():
            if count > MAX_FINDINGS_PER_RULE:
                self.target.append(
                    rules.finding(
                        "ssi.archive.more-findings", count=count - MAX_FINDINGS_PER_RULE, rule=rule_id
                    )
                )


def _find_end_record(src: _Source) -> tuple[int, tuple[Any, ...]] | None:
    """Offset and fields of the end-of-central-directory record, searched back from the end."""
    tail_start = max(0, src.size - MAX_COMMENT - _EOCD.size)
    tail = src.read(tail_start, src.size - tail_start)
    pos = tail.rfind(SIG_EOCD)
    fallback: tuple[int, tuple[Any, ...]] | None = None
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            record = _EOCD.unpack_from(tail, pos)
            if pos + _EOCD.size + record[7] == len(tail):
                return tail_start + pos, record
            fallback = fallback or (tail_start + pos, record)
        pos = tail.rfind(SIG_EOCD, 0, pos)
    return fallback


def _member_head(src: _Source, entry: ZipEntry) -> bytes:
    """The first bytes of a member's content, decompressing at most a few KiB of input."""
    if entry.data_offset is None or entry.encrypted or entry.compressed_size == 0:
        return b""
    raw = src.read(entry.data_offset, min(entry.compressed_size, 16 * KiB))
    try:
        if entry.method == METHOD_STORED:
            return raw[:HEAD_BYTES]
        if entry.method == METHOD_DEFLATED:
            return zlib.decompressobj(-15).decompress(raw, HEAD_BYTES)
        if entry.method == METHOD_BZIP2:
            return bz2.BZ2Decompressor().decompress(raw, HEAD_BYTES)
    except (zlib.error, OSError, ValueError, EOFError):
        return b""
    return b""


def archive_kind(head: bytes) -> str | None:
    """The archive format whose magic ``head`` starts with, if any."""
    if not head:
        return None
    for offset, magic, kind in ARCHIVE_MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return None


def triage(
    stream: BinaryIO,
    *,
    limits: TriageLimits | None = None,
    depth: int = 0,
    require_end_at_eof: bool = False,
) -> TriageReport:
    """Inspect the zip in ``stream`` (or appended to it) without extracting anything.

    ``depth`` is the archive nesting level of this archive (1 for a zip proof file in a package);
    a member that is itself an archive at a level past ``limits.max_depth`` is an error.
    ``require_end_at_eof`` (for files whose real type is not zip) only accepts an end record that ends
    the stream exactly, so that stray ``PK`` bytes inside an image do not read as an appended archive.
    """
    limits = limits or TriageLimits()
    report = TriageReport()
    src = _Source(stream)
    report.stream_size = src.size
    out = CappedFindings(report.findings)
    try:
        _triage(src, report, out, limits, depth, require_end_at_eof)
    finally:
        out.close()
        src.close()
    return report


def _malformed(report: TriageReport, out: CappedFindings, reason: str, entry: str | None = None) -> None:
    report.structural = True
    out.add("ssi.archive.malformed", entry, reason=reason)


def _triage(
    src: _Source,
    report: TriageReport,
    out: CappedFindings,
    limits: TriageLimits,
    depth: int,
    strict_end: bool,
) -> None:
    found = _find_end_record(src)
    if found is None:
        return
    eocd_pos, (_, disk, cd_disk, _count_disk, count, cd_size, cd_offset, comment_len) = found
    end_of_record = eocd_pos + _EOCD.size + comment_len
    if strict_end and end_of_record != src.size:
        return
    report.is_zip = True
    directory_end = eocd_pos
    if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF or disk == 0xFFFF:
        locator = src.read(eocd_pos - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size)
        if len(locator) == _ZIP64_LOCATOR.size and locator.startswith(SIG_ZIP64_LOCATOR):
            report.zip64 = True
            record_pos = eocd_pos - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
            record = src.read(record_pos, _ZIP64_EOCD.size)
            if len(record) != _ZIP64_EOCD.size or not record.startswith(SIG_ZIP64_EOCD):
                _malformed(report, out, "the ZIP64 end record is missing")
                return
            _, _, _, _, disk, cd_disk, _, count, cd_size, cd_offset = _ZIP64_EOCD.unpack(record)
            directory_end = record_pos
    if disk != 0 or cd_disk != 0:
        _malformed(report, out, "a multi-volume archive cannot be inspected")
        return
    if count > limits.max_entries:
        report.complete = False
        report.structural = True
        out.add("ssi.archive.too-many-entries", count=count, limit=limits.max_entries)
        return
    cd_start = directory_end - cd_size
    report.archive_offset = cd_start - cd_offset
    if cd_start < 0 or report.archive_offset < 0:
        _malformed(report, out, "the central directory lies outside the file")
        return
    if end_of_record < src.size:
        trailing = src.size - end_of_record
        out.add("ssi.archive.polyglot", position="after", what="unexplained data", evidence=f"{trailing} bytes")
    if not _read_central_directory(src, report, out, limits, cd_start, cd_size, count):
        return
    _check_layout(src, report, out, cd_start)
    _check_names(report, out)
    _check_members(src, report, out, limits, depth)


def _read_central_directory(
    src: _Source,
    report: TriageReport,
    out: CappedFindings,
    limits: TriageLimits,
    cd_start: int,
    cd_size: int,
    count: int,
) -> bool:
    buffer = src.read(cd_start, cd_size)
    if len(buffer) != cd_size:
        _malformed(report, out, "the central directory is truncated")
        return False
    pos = 0
    total = 0
    for index in range(count):
        if pos + _CENTRAL.size > cd_size or buffer[pos : pos + 4] != SIG_CENTRAL:
            _malformed(report, out, "the central directory holds fewer entries than declared")
            return False
        (_, made_by, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, ext_attr, offset) = (
            _CENTRAL.unpack_from(buffer, pos)
        )
        raw = buffer[pos + _CENTRAL.size : pos + _CENTRAL.size + nlen]
        extra = buffer[pos + _CENTRAL.size + nlen : pos + _CENTRAL.size + nlen + xlen]
        pos += _CENTRAL.size + nlen + xlen + clen
        if pos > cd_size:
            _malformed(report, out, "an entry runs past the end of the central directory")
            return False
        is64 = False
        if 0xFFFFFFFF in (usize, csize, offset):
            usize, csize, offset, is64 = _zip64_values(extra, usize, csize, offset)
        name, encoding, others = _decode_name(raw, flags, extra)
        path, _ = safe_path(name)
        entry = ZipEntry(
            index=index,
            name=name,
            raw_name=raw,
            name_encoding=encoding,
            flags=flags,
            method=method,
            crc=crc,
            compressed_size=csize,
            declared_size=usize,
            local_offset=offset + report.archive_offset,
            data_offset=None,
            external_attr=ext_attr,
            create_system=made_by >> 8,
            zip64=is64,
            path=path,
            other_names=others,
        )
        report.entries.append(entry)
        report.zip64 = report.zip64 or is64
        total += usize
        if usize > limits.max_entry_size or total > limits.max_total_size:
            report.total_declared = total
            report.complete = False
            report.structural = True
            out.add("ssi.archive.too-large", entry.name, size=total, limit=limits.max_total_size)
            return False
    report.total_declared = total
    if pos != cd_size:
        _malformed(report, out, "the central directory holds more data than its declared entries")
        return False
    return True


def _check_layout(src: _Source, report: TriageReport, out: CappedFindings, cd_start: int) -> None:
    """Read every local header; find overlaps, disagreements and data hidden before the first entry."""
    spans: list[tuple[int, int, ZipEntry]] = []
    for entry in report.entries:
        # One read for the header, its name and usually its extra field: a read per field costs seconds
        # at 100 000 entries.
        header = src.read(entry.local_offset, _LOCAL.size + len(entry.raw_name) + LOCAL_EXTRA_PEEK)
        if len(header) < _LOCAL.size or not header.startswith(SIG_LOCAL):
            _malformed(report, out, "a local header is missing", entry.name)
            continue
        _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = _LOCAL.unpack_from(header)
        local_name = header[_LOCAL.size : _LOCAL.size + nlen]
        local_extra = header[_LOCAL.size + nlen : _LOCAL.size + nlen + xlen]
        if len(local_extra) < xlen:
            local_extra = src.read(entry.local_offset + _LOCAL.size + nlen, xlen)
        if 0xFFFFFFFF in (csize, usize):  # ZIP64 in the local header even when the directory has none
            usize, csize, _, _ = _zip64_values(local_extra, usize, csize, 0)
        data_offset = entry.local_offset + _LOCAL.size + nlen + xlen
        local_names = _local_names(entry, local_name, flags, local_extra)
        if local_names:
            # Streaming extractors write the local header's name: the member is not extracted.
            report.structural = report.structural or local_name != entry.raw_name
            entry.other_names = (*entry.other_names, *local_names)
        if method != entry.method:
            report.structural = True
            out.add("ssi.archive.inconsistent", entry.name, what="compression method")
        elif not flags & FLAG_DATA_DESCRIPTOR and (
            (csize, usize, crc) != (entry.compressed_size, entry.declared_size, entry.crc)
        ):
            report.structural = True
            out.add("ssi.archive.inconsistent", entry.name, what="sizes or checksum")
        end = data_offset + entry.compressed_size
        if end > cd_start:
            _malformed(report, out, "member data runs into the central directory", entry.name)
        entry.data_offset = data_offset
        spans.append((entry.local_offset, end, entry))
    spans.sort(key=lambda span: span[0])
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            report.structural = True
            out.add("ssi.archive.overlapping-entries", second.name, other=first.name)
    first_offset = spans[0][0] if spans else cd_start
    prefix = src.read(0, 16)
    # Some tools start a single-volume archive with the 4-byte spanning marker: not foreign data.
    if first_offset > 0 and not (first_offset == 4 and prefix.startswith(SPANNING_MARKERS)):
        what = next((label for magic, label in PREFIX_MAGICS if prefix.startswith(magic)), "unknown data")
        out.add("ssi.archive.polyglot", position="before", what=what, evidence=f"{first_offset} bytes")


def _local_names(entry: ZipEntry, raw: bytes, flags: int, extra: bytes) -> list[tuple[str, str]]:
    """Names the local header gives that the central directory does not (raw name or Unicode Path)."""
    name, _, others = _decode_name(raw, flags, extra)
    found = [(other, f"local header's {source}") for other, source in others if other != entry.name]
    if name != entry.name:
        found.insert(0, (name, "local header (read by streaming extractors)"))
    return found


def _check_names(report: TriageReport, out: CappedFindings) -> None:
    items = [(entry.index, entry.name, entry.is_dir) for entry in report.entries]
    report.skipped.update(check_names(items, out))
    for entry in report.entries:
        seen: set[str] = set()
        for other, source in entry.other_names:
            if other not in seen:
                seen.add(other)
                judge_other_name(entry.name, other, source, entry.is_dir, out)
            report.skipped.setdefault(entry.index, "names disagree")


def judge_other_name(name: str, other: str, source: str, is_dir: bool, out: CappedFindings) -> None:
    """Another name a member may be written under is judged like its name, and the disagreement itself
    is a finding (``name`` locates the findings; the other name is shown in the evidence)."""
    shown = shown_name(other)
    out.add("ssi.archive.name-mismatch", name, source=source, evidence=shown)
    _, problem = safe_path(other)
    if problem is not None:
        out.add("ssi.archive.traversal", name, reason=problem, evidence=shown)
    judge_oddities(other, name, out, shown)


# Traits that make Windows write another file than the one judged: an error, not a portability warning.
WRITES_ELSEWHERE = frozenset({"a Windows reserved device name", "a trailing dot or space"})


def judge_oddities(name: str, located_at: str, out: CappedFindings, other: str | None = None) -> None:
    """Deceptive (error) and suspicious traits of ``name``; suspicious ones that change the file Windows
    writes are errors too, the others (backslashes, forbidden characters) warnings. ``other`` is the name
    shown in the evidence when ``name`` is another name of the member at ``located_at``.

    The traits are listed in fixed words (the French report shows each one's French words)."""
    deceptive, suspicious = name_oddities(name)
    if deceptive:
        out.add("ssi.archive.deceptive-name", located_at, traits=", ".join(deceptive), evidence=other)
    if suspicious:
        severity = Severity.ERROR if WRITES_ELSEWHERE.intersection(suspicious) else Severity.WARNING
        out.add("ssi.archive.suspicious-name", located_at, traits=", ".join(suspicious), severity=severity,
                evidence=other)


def shown_name(name: str, limit: int = 200) -> str:
    """A member name safe and short enough for a finding's evidence."""
    text = display_name(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_names(items: Iterable[tuple[int, str, bool]], out: CappedFindings) -> dict[int, str]:
    """Findings on (index, name, is folder) items; returns the indexes whose name is no usable path."""
    unusable: dict[int, str] = {}
    seen: set[str] = set()
    folded: set[str] = set()
    for index, name, is_dir in items:
        path, problem = safe_path(name)
        if is_dir and problem == "empty name":  # "./", the archive's own root (`tar czf x.tgz .`)
            continue
        if problem is not None:
            unusable[index] = problem
            out.add("ssi.archive.traversal", name, reason=problem)
        judge_oddities(name, name, out)
        if path is None:
            continue
        key = path + ("/" if is_dir else "")
        if key in seen:
            out.add("ssi.archive.duplicate-name", name)
            continue
        seen.add(key)
        fold = key.lower() if key.isascii() else unicodedata.normalize("NFC", key).casefold()
        if fold in folded:
            out.add("ssi.archive.case-collision", name)
        folded.add(fold)
    return unusable


def _check_members(
    src: _Source, report: TriageReport, out: CappedFindings, limits: TriageLimits, depth: int
) -> None:
    archive_size = max(1, report.stream_size - report.archive_offset)
    overall = report.total_declared / archive_size
    if report.total_declared >= limits.ratio_floor and overall > limits.max_ratio:
        report.structural = True
        out.add(
            "ssi.archive.ratio",
            ratio=round(overall),
            limit=limits.max_ratio,
        )
    if report.zip64:
        out.add("ssi.archive.zip64")
    for entry in report.entries:
        if entry.is_special:
            kind = "symbolic link" if entry.is_link else "special file"
            report.skipped[entry.index] = kind
            out.add("ssi.archive.symlink", entry.name, kind=kind)
            continue
        if entry.is_dir:
            continue
        if entry.encrypted:
            report.skipped[entry.index] = "encrypted"
            out.add("ssi.archive.encrypted", entry.name)
            continue
        if entry.method not in SUPPORTED_METHODS:
            report.skipped[entry.index] = f"compression method {entry.method}"
            out.add("ssi.archive.member-not-checked", entry.name, reason="unsupported compression method",
                    evidence=f"method {entry.method}")
            continue
        if entry.declared_size >= limits.ratio_floor and (
            entry.declared_size / max(1, entry.compressed_size) > limits.max_ratio
        ):
            report.structural = True
            out.add(
                "ssi.archive.ratio",
                entry.name,
                ratio=round(entry.declared_size / max(1, entry.compressed_size)),
                limit=limits.max_ratio,
            )
        if report.structural:
            continue
        nested = archive_kind(_member_head(src, entry))
        if nested is None:
            continue
        entry.nested = nested
        if depth + 1 > limits.max_depth:
            report.skipped[entry.index] = "nesting depth"
            level = depth + 1
            out.add("ssi.archive.nesting-depth", entry.name, kind=nested, depth=level, limit=limits.max_depth)


def read_member(
    stream: BinaryIO, entry: ZipEntry, *, max_bytes: int, chunk_size: int = 1 * MiB
) -> Iterator[bytes]:
    """Decompressed content of ``entry`` in chunks, never more than ``max_bytes`` nor than it declared.

    Raises ``MemberError`` (rule ``ssi.archive.size-mismatch`` when the member inflates past its declared
    size, a bomb; ``ssi.archive.member-not-checked`` past ``max_bytes``; ``ssi.archive.malformed`` on a
    corrupt stream or a checksum that does not match).
    """
    if entry.data_offset is None or entry.encrypted or entry.method not in SUPPORTED_METHODS:
        raise MemberError("ssi.archive.member-not-checked", "member cannot be read")
    if entry.declared_size > max_bytes:
        raise MemberError("ssi.archive.member-not-checked", "over the size limit")
    decompressor = _decompressor(entry, stream)
    budget = entry.declared_size  # one byte past it proves the declared size was a lie
    produced = 0
    crc = 0
    remaining = entry.compressed_size - decompressor.skip
    stream.seek(entry.data_offset + decompressor.skip)
    while True:
        raw = stream.read(min(chunk_size, remaining)) if remaining else b""
        remaining -= len(raw)
        if not raw and remaining:
            raise MemberError("ssi.archive.malformed", "member data is truncated")
        try:
            pieces = decompressor.feed(raw, budget - produced + 1, chunk_size)
            for piece in pieces:
                produced += len(piece)
                if produced > budget:
                    raise MemberError("ssi.archive.size-mismatch", "member inflates past its declared size")
                crc = zlib.crc32(piece, crc)
                yield piece
        except (zlib.error, OSError, ValueError, EOFError, lzma.LZMAError):
            raise MemberError("ssi.archive.malformed", "corrupt compressed data") from None
        if not raw:
            break
    if produced != entry.declared_size:
        raise MemberError("ssi.archive.malformed", "member is shorter than its declared size")
    if crc != entry.crc:
        raise MemberError("ssi.archive.malformed", "member checksum does not match")


class _Decompressor:
    """A uniform bounded decompressor over stored, deflate, bzip2 and LZMA members."""

    def __init__(self, method: int, lzma_filters: list[dict[str, Any]] | None = None) -> None:
        self.method = method
        self.skip = 0
        self.engine: Any = None
        self.pending = b""
        if method == METHOD_DEFLATED:
            self.engine = zlib.decompressobj(-15)
        elif method == METHOD_BZIP2:
            self.engine = bz2.BZ2Decompressor()
        elif method == METHOD_LZMA:
            self.engine = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=lzma_filters)

    def feed(self, raw: bytes, allowed: int, piece_size: int) -> Iterator[bytes]:
        """Output for ``raw`` in pieces of at most ``piece_size``, stopping once ``allowed`` is used up.

        ``raw == b""`` drains what the decompressor still holds. No call ever asks for unbounded output
        (``flush()`` would): that is what keeps a bomb from filling memory before it is noticed.
        """
        if self.method == METHOD_STORED:
            yield raw
            return
        if self.method == METHOD_DEFLATED:
            data = raw
            while True:
                want = min(piece_size, allowed)
                piece = self.engine.decompress(data, want)
                data = self.engine.unconsumed_tail
                if piece:
                    yield piece
                allowed -= len(piece)
                if allowed <= 0 or (not data and len(piece) < want):
                    return
        # bzip2 and LZMA decompressors buffer their own input; max_length bounds each output.
        data = raw
        while not self.engine.eof:
            piece = self.engine.decompress(data, min(piece_size, allowed))
            data = b""
            if piece:
                yield piece
            allowed -= len(piece)
            if allowed <= 0 or self.engine.needs_input:
                return


def _decompressor(entry: ZipEntry, stream: BinaryIO) -> _Decompressor:
    if entry.method != METHOD_LZMA:
        return _Decompressor(entry.method)
    # zip's LZMA members start with a 4-byte version/size header and the LZMA1 properties.
    assert entry.data_offset is not None
    stream.seek(entry.data_offset)
    header = stream.read(4)
    if len(header) != 4:
        raise MemberError("ssi.archive.malformed", "LZMA header is truncated")
    (props_size,) = struct.unpack_from("<H", header, 2)
    props = stream.read(props_size)
    try:
        filter_spec = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    except (lzma.LZMAError, ValueError):
        raise MemberError("ssi.archive.malformed", "LZMA properties are invalid") from None
    out = _Decompressor(METHOD_LZMA, [filter_spec])
    out.skip = 4 + props_size
    return out


__all__ = [
    "CappedFindings",
    "MemberError",
    "TriageLimits",
    "TriageReport",
    "ZipEntry",
    "archive_kind",
    "check_names",
    "display_name",
    "judge_other_name",
    "read_member",
    "safe_path",
    "triage",
]
