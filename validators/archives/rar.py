"""RAR archives (RAR 4 and RAR 5): every header walked here; stored members read, compressed ones refused.

No free RAR decompressor exists (``unrar`` is non-free; Debian's ClamAV is built without it, so clamd does
not look inside compressed RAR content either). The headers are plain, so they are walked here with their
checksums: names (RAR 4's compressed Unicode names included), folders, links (Unix modes, Windows reparse
points, RAR 5 redirections), encryption, split and multi-volume members, NTFS streams, sizes. A member
stored without compression is read directly and checked like any other; a compressed one is reported as
not inspected (an error: nobody looked inside it), never passed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from validators.archives.bounded import MalformedError
from validators.archives.members import (
    DIRECTORY,
    FILE,
    HARDLINK,
    OTHER,
    SYMLINK,
    ArchiveMember,
    LimitExceededError,
    Listing,
    NullSink,
    Sink,
    check_declared,
)
from validators.ziptriage import TriageLimits

RAR4_SIGNATURE = b"Rar!\x1a\x07\x00"
RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
NOT_DECOMPRESSED = "RAR compression (no free RAR decoder: the content was not inspected)"
CHUNK = 1024 * 1024
MAX_BLOCKS_PER_MEMBER = 4  # service blocks (comments, ACLs, streams) beside each file

S_IFMT, S_IFLNK, S_IFREG, S_IFDIR = 0o170000, 0o120000, 0o100000, 0o040000
WIN_DIRECTORY, WIN_REPARSE_POINT = 0x10, 0x400


@dataclass
class _Data:
    """Where a member's stored bytes are, and how to check them."""

    offset: int
    size: int
    crc: int | None


def is_rar(head: bytes) -> bool:
    return head.startswith((RAR4_SIGNATURE, RAR5_SIGNATURE))


def _kind_from_attributes(host_unix: bool, attributes: int, directory: bool) -> str:
    if host_unix:
        mode = attributes & S_IFMT
        if mode == S_IFLNK:
            return SYMLINK
        if mode == S_IFDIR or directory:
            return DIRECTORY
        if mode not in (0, S_IFREG):
            return OTHER
        return FILE
    if attributes & WIN_REPARSE_POINT:
        return SYMLINK
    return DIRECTORY if directory or attributes & WIN_DIRECTORY else FILE


class _Walk:
    """State shared by the RAR 4 and RAR 5 walks."""

    def __init__(self, stream: BinaryIO, size: int, listing: Listing, limits: TriageLimits) -> None:
        self.stream = stream
        self.size = size
        self.listing = listing
        self.limits = limits
        self.data: dict[int, _Data] = {}
        self.blocks = 0

    def read(self, offset: int, count: int) -> bytes:
        self.stream.seek(offset)
        data = self.stream.read(count)
        if len(data) != count:
            raise MalformedError("the RAR archive is truncated")
        return data

    def count_block(self) -> None:
        self.blocks += 1
        if self.blocks > (self.limits.max_entries + 1) * MAX_BLOCKS_PER_MEMBER:
            raise LimitExceededError("ssi.archive.too-many-entries", count=f"> {self.limits.max_entries}",
                                     limit=self.limits.max_entries)

    def add(self, member: ArchiveMember, data: _Data | None) -> None:
        member.index = len(self.listing.members)
        self.listing.members.append(member)
        if len(self.listing.members) > self.limits.max_entries:
            raise LimitExceededError("ssi.archive.too-many-entries", count=f"> {self.limits.max_entries}",
                                     limit=self.limits.max_entries)
        if data is not None:
            if data.offset + data.size > self.size:
                raise MalformedError("a RAR member's data runs past the end of the file (truncated)")
            self.data[member.index] = data


# --- RAR 4 ----------------------------------------------------------------------------------------

_R4_BLOCK = struct.Struct("<HBHH")
_R4_FILE = struct.Struct("<LLBLLBBHL")
R4_MAIN, R4_FILE, R4_NEWSUB, R4_END = 0x73, 0x74, 0x7A, 0x7B
R4_LONG_BLOCK = 0x8000
R4_MAIN_VOLUME, R4_MAIN_ENCRYPTED_HEADERS = 0x0001, 0x0080
R4_SPLIT_BEFORE, R4_SPLIT_AFTER, R4_PASSWORD, R4_LARGE, R4_UNICODE = 0x01, 0x02, 0x04, 0x100, 0x200
R4_DIRECTORY_MASK = 0xE0
R4_STORE = 0x30


def _rar4_unicode(std: bytes, encoded: bytes) -> str:
    """RAR 4's compact Unicode name encoding (the bytes after the NUL of a Unicode-flagged name)."""
    out = bytearray()
    pos = 0

    def enc() -> int:
        nonlocal pos
        if pos >= len(encoded):
            raise MalformedError("a RAR Unicode name is truncated")
        pos += 1
        return encoded[pos - 1]

    def std_byte() -> int:
        at = len(out) // 2
        return std[at] if at < len(std) else ord("?")

    high = enc()
    flags = bits = 0
    while pos < len(encoded):
        if bits == 0:
            flags, bits = enc(), 8
        bits -= 2
        mode = (flags >> bits) & 3
        if mode == 0:
            out += bytes((enc(), 0))
        elif mode == 1:
            out += bytes((enc(), high))
        elif mode == 2:
            low = enc()
            out += bytes((low, enc()))
        else:
            length = enc()
            if length & 0x80:
                correction = enc()
                for _ in range((length & 0x7F) + 2):
                    out += bytes(((std_byte() + correction) & 0xFF, high))
            else:
                for _ in range(length + 2):
                    out += bytes((std_byte(), 0))
    return out.decode("utf-16-le", "replace")


def _rar4_name(raw: bytes, flags: int) -> str:
    if flags & R4_UNICODE:
        std, sep, encoded = raw.partition(b"\0")
        if not sep:
            return raw.decode("utf-8", "replace")
        return _rar4_unicode(std, encoded) if encoded else std.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")  # DOS/Windows archivers write the OEM code page


def _walk_rar4(walk: _Walk, check_time: Callable[[], None]) -> None:
    pos = len(RAR4_SIGNATURE)
    while pos < walk.size:
        check_time()
        walk.count_block()
        crc, kind, flags, header_size = _R4_BLOCK.unpack(walk.read(pos, _R4_BLOCK.size))
        if header_size < _R4_BLOCK.size:
            raise MalformedError("a RAR block header is too short")
        header = walk.read(pos, header_size)
        if zlib.crc32(header[2:]) & 0xFFFF != crc:
            raise MalformedError("a RAR block header checksum does not match")
        added = 0
        if flags & R4_LONG_BLOCK or kind in (R4_FILE, R4_NEWSUB):
            if header_size < _R4_BLOCK.size + 4:
                raise MalformedError("a RAR block header is too short")
            (added,) = struct.unpack_from("<L", header, _R4_BLOCK.size)
        if kind == R4_MAIN:
            if flags & R4_MAIN_ENCRYPTED_HEADERS:
                raise _EncryptedHeadersError
            if flags & R4_MAIN_VOLUME:
                raise MalformedError("a multi-volume RAR archive cannot be inspected")
        elif kind == R4_FILE:
            added = _rar4_file(walk, pos, header, flags)
        elif kind == R4_END:
            return
        pos += header_size + added
    raise MalformedError("the RAR archive is truncated (no end-of-archive block)")


def _rar4_file(walk: _Walk, pos: int, header: bytes, flags: int) -> int:
    start = _R4_BLOCK.size
    if len(header) < start + _R4_FILE.size:
        raise MalformedError("a RAR file header is too short")
    packed, unpacked, host, crc, _, _, method, name_size, attributes = _R4_FILE.unpack_from(header, start)
    at = start + _R4_FILE.size
    if flags & R4_LARGE:
        if len(header) < at + 8:
            raise MalformedError("a RAR file header is too short")
        high_packed, high_unpacked = struct.unpack_from("<LL", header, at)
        packed |= high_packed << 32
        unpacked |= high_unpacked << 32
        at += 8
    if len(header) < at + name_size:
        raise MalformedError("a RAR file name runs past its header")
    name = _rar4_name(header[at : at + name_size], flags)
    if host in (0, 1, 2):  # MS-DOS, OS/2, Windows: backslash-separated, as unrar converts them
        name = name.replace("\\", "/")
    directory = flags & R4_DIRECTORY_MASK == R4_DIRECTORY_MASK
    member = ArchiveMember(index=0, name=name, size=unpacked, packed_size=packed,
                           kind=_kind_from_attributes(host == 3, attributes, directory))
    member.encrypted = bool(flags & R4_PASSWORD)
    if flags & (R4_SPLIT_BEFORE | R4_SPLIT_AFTER):
        member.undecodable = "split across RAR volumes"
    elif method != R4_STORE:
        member.undecodable = NOT_DECOMPRESSED
    stored = member.kind == FILE and method == R4_STORE and not member.encrypted and member.undecodable is None
    if stored and packed != unpacked:
        raise MalformedError("a stored RAR member's sizes disagree")
    walk.add(member, _Data(pos + len(header), packed, crc) if stored else None)
    return packed


# --- RAR 5 ----------------------------------------------------------------------------------------

R5_MAIN, R5_FILE, R5_SERVICE, R5_ENCRYPTION, R5_END = 1, 2, 3, 4, 5
R5_HAS_EXTRA, R5_HAS_DATA, R5_SPLIT_BEFORE, R5_SPLIT_AFTER = 0x1, 0x2, 0x8, 0x10
R5_MAIN_VOLUME = 0x1
R5_FILE_DIRECTORY, R5_FILE_MTIME, R5_FILE_CRC, R5_FILE_UNKNOWN_SIZE = 0x1, 0x2, 0x4, 0x8
R5_EXTRA_ENCRYPTION, R5_EXTRA_REDIRECTION = 0x1, 0x5
R5_HOST_UNIX = 1
R5_REDIRECTIONS = {1: SYMLINK, 2: SYMLINK, 3: SYMLINK, 4: HARDLINK, 5: "file copy (a link to another member)"}
MAX_R5_HEADER = 2 * 1024 * 1024  # RAR itself limits headers to 2 MiB


class _Fields:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def vint(self) -> int:
        value = shift = 0
        for _ in range(10):
            if self.pos >= len(self.data):
                raise MalformedError("a RAR 5 header is truncated")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise MalformedError("a RAR 5 number is too long")

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise MalformedError("a RAR 5 header is truncated")
        self.pos += count
        return self.data[self.pos - count : self.pos]


def _walk_rar5(walk: _Walk, check_time: Callable[[], None]) -> None:
    pos = len(RAR5_SIGNATURE)
    while pos < walk.size:
        check_time()
        walk.count_block()
        prefix = _Fields(walk.read(pos, min(16, walk.size - pos)))
        (crc,) = struct.unpack("<L", prefix.take(4))
        size = prefix.vint()
        if size == 0 or size > MAX_R5_HEADER:
            raise MalformedError("a RAR 5 header has an impossible size")
        header_start = pos + prefix.pos
        raw = walk.read(pos + 4, prefix.pos - 4 + size)
        if zlib.crc32(raw) != crc:
            raise MalformedError("a RAR 5 header checksum does not match")
        fields = _Fields(raw, prefix.pos - 4)
        kind = fields.vint()
        flags = fields.vint()
        extra_size = fields.vint() if flags & R5_HAS_EXTRA else 0
        data_size = fields.vint() if flags & R5_HAS_DATA else 0
        extra = raw[len(raw) - extra_size :] if extra_size else b""
        data_offset = header_start + size
        if kind == R5_ENCRYPTION:
            raise _EncryptedHeadersError
        if kind == R5_MAIN and fields.vint() & R5_MAIN_VOLUME:
            raise MalformedError("a multi-volume RAR archive cannot be inspected")
        if kind in (R5_FILE, R5_SERVICE):
            _rar5_file(walk, kind, flags, fields, extra, _Data(data_offset, data_size, None))
        if kind == R5_END:
            return
        pos = data_offset + data_size
    raise MalformedError("the RAR archive is truncated (no end-of-archive block)")


def _rar5_file(walk: _Walk, kind: int, block_flags: int, fields: _Fields, extra: bytes, data: _Data) -> None:
    file_flags = fields.vint()
    unpacked = fields.vint()
    attributes = fields.vint()
    if file_flags & R5_FILE_MTIME:
        fields.take(4)
    if file_flags & R5_FILE_CRC:
        (data.crc,) = struct.unpack("<L", fields.take(4))
    compression = fields.vint()
    host = fields.vint()
    name = fields.take(fields.vint()).decode("utf-8", "surrogateescape")
    if kind == R5_SERVICE:
        if name == "STM":  # an NTFS alternate data stream: hidden content attached to a file
            member = ArchiveMember(index=0, name=f"{_last_file(walk)}:stream", kind=OTHER, size=unpacked)
            walk.add(member, None)
        return
    directory = bool(file_flags & R5_FILE_DIRECTORY)
    member = ArchiveMember(index=0, name=name, size=unpacked, packed_size=data.size,
                           kind=_kind_from_attributes(host == R5_HOST_UNIX, attributes, directory))
    _rar5_extra(member, extra)
    method = (compression >> 7) & 0x7
    if block_flags & (R5_SPLIT_BEFORE | R5_SPLIT_AFTER):
        member.undecodable = "split across RAR volumes"
    elif method != 0:
        member.undecodable = NOT_DECOMPRESSED
    elif file_flags & R5_FILE_UNKNOWN_SIZE or unpacked != data.size:
        member.undecodable = "stored RAR member of unknown or inconsistent size"
    stored = member.kind == FILE and not member.encrypted and member.undecodable is None
    walk.add(member, data if stored else None)


def _rar5_extra(member: ArchiveMember, extra: bytes) -> None:
    records = _Fields(extra)
    while records.pos < len(extra):
        size = records.vint()
        end = records.pos + size
        if end > len(extra):
            raise MalformedError("a RAR 5 extra record runs past its header")
        kind = records.vint()
        if kind == R5_EXTRA_ENCRYPTION:
            member.encrypted = True
        elif kind == R5_EXTRA_REDIRECTION:
            member.kind = R5_REDIRECTIONS.get(records.vint(), OTHER)
        records.pos = end


def _last_file(walk: _Walk) -> str:
    members = walk.listing.members
    return members[-1].name if members else ""


class _EncryptedHeadersError(Exception):
    """The archive's headers are encrypted: not even the names can be read."""


def read_rar(
    stream: BinaryIO,
    *,
    archive_size: int,
    limits: TriageLimits,
    sink: Sink,
    check_time: Callable[[], None],
) -> Listing:
    listing = Listing(kind="rar")
    walk = _Walk(stream, archive_size, listing, limits)
    try:
        stream.seek(0)
        head = stream.read(len(RAR5_SIGNATURE))
        if head.startswith(RAR5_SIGNATURE):
            _walk_rar5(walk, check_time)
        elif head.startswith(RAR4_SIGNATURE):
            _walk_rar4(walk, check_time)
        else:
            raise MalformedError("not a RAR 4 or RAR 5 archive (RAR 1.x is not supported)")
        if check_declared(listing, limits, archive_size, listing.out) and not isinstance(sink, NullSink):
            _read_stored(walk, sink, check_time)
    except _EncryptedHeadersError:
        listing.stop("ssi.archive.encrypted")
    except LimitExceededError as exc:
        listing.stop(exc.rule, **exc.params)
    except MalformedError as exc:
        listing.stop("ssi.archive.malformed", reason=str(exc))
    return listing


def _read_stored(walk: _Walk, sink: Sink, check_time: Callable[[], None]) -> None:
    for index, data in walk.data.items():
        member = walk.listing.members[index]
        if not sink.start(member):
            continue
        walk.stream.seek(data.offset)
        remaining = data.size
        crc = 0
        while remaining:
            check_time()
            chunk = walk.stream.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            crc = zlib.crc32(chunk, crc)
            sink.write(chunk)
        intact = remaining == 0 and (data.crc is None or crc == data.crc)
        sink.finish(intact)
        if not intact:
            walk.listing.failed.add(index)
            reason = "a stored member's checksum does not match"
            walk.listing.out.add("ssi.archive.malformed", member.name, reason=reason)
