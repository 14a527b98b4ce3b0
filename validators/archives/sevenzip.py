"""7z archives: headers parsed and bounded here, member content decompressed by py7zr only afterwards.

py7zr parses and decodes a header as it finds it: a header declaring 2^40 files, a compressed header
that inflates to gigabytes or an LZMA dictionary of 4 GiB would cost it that much time or memory before
anything could be judged. So the signature header, the (possibly LZMA-compressed) header and every
coder's properties are read here first, with hard limits on counts, header size and dictionary or
model memory; py7zr is handed only archives that passed, and writes member bytes into a bounded sink
(never to disk, never under the member's own name). Encrypted coders (7zAES) are reported, not tried.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import py7zr
from py7zr.io import MemIO, Py7zIO, WriterFactory

from validators.archives.bounded import MalformedError
from validators.archives.members import (
    ANTI,
    DIRECTORY,
    FILE,
    SYMLINK,
    ArchiveMember,
    LimitExceededError,
    Listing,
    NullSink,
    Sink,
    check_declared,
)
from validators.base import DeadlineExceededError
from validators.ziptriage import TriageLimits

SIGNATURE = b"7z\xbc\xaf\x27\x1c"
_START = struct.Struct("<6s2BL")
_NEXT = struct.Struct("<QQL")
START_SIZE = 32
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_CODERS = 8
MAX_STREAMS = 16

(K_END, K_HEADER, K_ARCHIVE_PROPERTIES, K_ADDITIONAL_STREAMS, K_MAIN_STREAMS, K_FILES_INFO, K_PACK_INFO,
 K_UNPACK_INFO, K_SUBSTREAMS_INFO, K_SIZE, K_CRC, K_FOLDER, K_CODERS_UNPACK_SIZE, K_NUM_UNPACK_STREAM,
 K_EMPTY_STREAM, K_EMPTY_FILE, K_ANTI, K_NAME) = range(18)
K_WIN_ATTRIBUTES, K_ENCODED_HEADER, K_DUMMY = 0x15, 0x17, 0x19

COPY, LZMA2, LZMA1, PPMD, AES = b"\x00", b"\x21", b"\x03\x01\x01", b"\x03\x04\x01", b"\x06\xf1\x07\x01"
# What py7zr decodes (besides AES, which needs a password we never have).
_DECODABLE_IDS = (
    "00", "21", "03", "030101", "03030103", "03030205", "03030401", "03030501", "03030701", "03030805",
    "040108", "040202", "04f71101", "030401", "04f71102", "040109",
)
DECODABLE = frozenset(bytes.fromhex(h) for h in _DECODABLE_IDS)
ATTRIBUTE_DIRECTORY = 0x10
ATTRIBUTE_REPARSE_POINT = 0x400  # a Windows symbolic link or junction
ATTRIBUTE_UNIX_EXTENSION = 0x8000  # the high 16 bits hold a POSIX st_mode
S_IFMT, S_IFLNK, S_IFREG, S_IFDIR = 0o170000, 0o120000, 0o100000, 0o040000


class _Buffer:
    """Bounded reads of 7z header fields; any read past the end is a malformed header."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise MalformedError("the 7z header is truncated")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def number(self) -> int:
        """7z's variable-length UINT64: leading one bits of the first byte count the extra bytes."""
        first = self.byte()
        mask = 0x80
        value = 0
        for i in range(8):
            if not first & mask:
                return value | ((first & (mask - 1)) << (8 * i))
            value |= self.byte() << (8 * i)
            mask >>= 1
        return value

    def count(self, limit: int, what: str) -> int:
        value = self.number()
        if value > limit:
            raise LimitExceededError("ssi.archive.too-many-entries", count=value, limit=limit) if what == "files" \
                else MalformedError(f"the 7z header declares too many {what}")
        return value

    def uint32(self) -> int:
        value: int = struct.unpack("<L", self.take(4))[0]
        return value

    def bits(self, count: int) -> list[bool]:
        raw = self.take((count + 7) // 8)
        return [bool(raw[i // 8] & (0x80 >> (i % 8))) for i in range(count)]

    def defined(self, count: int) -> list[bool]:
        return [True] * count if self.byte() else self.bits(count)


@dataclass
class _Folder:
    coders: list[tuple[bytes, bytes]] = field(default_factory=list)  # (method id, properties)
    bound_outputs: set[int] = field(default_factory=set)
    unpack_sizes: list[int] = field(default_factory=list)
    crc: int | None = None

    @property
    def unpack_size(self) -> int:
        """The size of the folder's final output (the one no other coder consumes)."""
        free = [i for i in range(len(self.unpack_sizes)) if i not in self.bound_outputs]
        return self.unpack_sizes[free[0]] if free else 0


@dataclass
class _Streams:
    pack_pos: int = 0
    pack_sizes: list[int] = field(default_factory=list)
    folders: list[_Folder] = field(default_factory=list)
    substreams: list[int] = field(default_factory=list)  # per folder, how many files it holds
    file_sizes: list[int] = field(default_factory=list)  # per non-empty file, in order


def _pack_info(buf: _Buffer, streams: _Streams, limit: int) -> None:
    streams.pack_pos = buf.number()
    count = buf.count(limit, "packed streams")
    while (kind := buf.byte()) != K_END:
        if kind == K_SIZE:
            streams.pack_sizes = [buf.number() for _ in range(count)]
        elif kind == K_CRC:
            for present in buf.defined(count):
                if present:
                    buf.uint32()
        else:
            raise MalformedError("unexpected field in the 7z pack information")
    if len(streams.pack_sizes) != count:
        raise MalformedError("the 7z pack information lacks sizes")


def _folder(buf: _Buffer) -> _Folder:
    folder = _Folder()
    outputs = inputs = 0
    for _ in range(buf.count(MAX_CODERS, "coders")):
        flags = buf.byte()
        method = buf.take(flags & 0x0F)
        ins, outs = (buf.count(MAX_STREAMS, "coder streams"), buf.count(MAX_STREAMS, "coder streams")) \
            if flags & 0x10 else (1, 1)
        properties = buf.take(buf.count(1024, "property bytes")) if flags & 0x20 else b""
        if flags & 0x80:
            raise MalformedError("alternative coder methods are not supported")
        folder.coders.append((method, properties))
        inputs += ins
        outputs += outs
    for _ in range(outputs - 1):
        buf.number()
        folder.bound_outputs.add(buf.number())
    packed = inputs - (outputs - 1)
    if packed > 1:
        for _ in range(packed):
            buf.number()
    folder.unpack_sizes = [0] * outputs
    return folder


def _unpack_info(buf: _Buffer, streams: _Streams, limit: int) -> None:
    if buf.byte() != K_FOLDER:
        raise MalformedError("the 7z unpack information has no folders")
    count = buf.count(limit, "folders")
    if buf.byte():
        raise MalformedError("external 7z folder data is not supported")
    streams.folders = [_folder(buf) for _ in range(count)]
    if buf.byte() != K_CODERS_UNPACK_SIZE:
        raise MalformedError("the 7z folders lack their sizes")
    for folder in streams.folders:
        folder.unpack_sizes = [buf.number() for _ in folder.unpack_sizes]
    while (kind := buf.byte()) != K_END:
        if kind != K_CRC:
            raise MalformedError("unexpected field in the 7z unpack information")
        for folder, present in zip(streams.folders, buf.defined(count), strict=True):
            folder.crc = buf.uint32() if present else None


def _substreams(buf: _Buffer, streams: _Streams, limit: int) -> None:
    streams.substreams = [1] * len(streams.folders)
    kind = buf.byte()
    if kind == K_NUM_UNPACK_STREAM:
        streams.substreams = [buf.count(limit, "files in a folder") for _ in streams.folders]
        if sum(streams.substreams) > limit:
            raise LimitExceededError("ssi.archive.too-many-entries", count=sum(streams.substreams), limit=limit)
        kind = buf.byte()
    sizes: list[int] = []
    for folder, count in zip(streams.folders, streams.substreams, strict=True):
        if count == 0:
            continue
        given = [buf.number() for _ in range(count - 1)] if kind == K_SIZE else []
        last = folder.unpack_size - sum(given)
        if last < 0:
            raise MalformedError("the 7z file sizes exceed their folder's size")
        sizes.extend([*given, last])
    streams.file_sizes = sizes
    if kind == K_SIZE:
        kind = buf.byte()
    while kind != K_END:
        if kind != K_CRC:
            raise MalformedError("unexpected field in the 7z substream information")
        unknown = sum(
            count for folder, count in zip(streams.folders, streams.substreams, strict=True)
            if not (count == 1 and folder.crc is not None)
        )
        for present in buf.defined(unknown):
            if present:
                buf.uint32()
        kind = buf.byte()


def _streams_info(buf: _Buffer, limit: int) -> _Streams:
    streams = _Streams()
    kind = buf.byte()
    if kind == K_PACK_INFO:
        _pack_info(buf, streams, limit)
        kind = buf.byte()
    if kind == K_UNPACK_INFO:
        _unpack_info(buf, streams, limit)
        kind = buf.byte()
    if kind == K_SUBSTREAMS_INFO:
        _substreams(buf, streams, limit)
        kind = buf.byte()
    elif streams.folders:
        streams.substreams = [1] * len(streams.folders)
        streams.file_sizes = [f.unpack_size for f in streams.folders]
    if kind != K_END:
        raise MalformedError("unexpected field in the 7z stream information")
    return streams


@dataclass
class _Header:
    streams: _Streams
    members: list[ArchiveMember]
    streamed: list[ArchiveMember] = field(default_factory=list)  # members with content, in stream order

    @property
    def streamed_indexes(self) -> set[int]:
        return {m.index for m in self.streamed}


def _files_info(buf: _Buffer, streams: _Streams, limit: int) -> tuple[list[ArchiveMember], list[ArchiveMember]]:
    count = buf.count(limit, "files")
    empty_stream = [False] * count
    empty_file: list[bool] = []
    anti: list[bool] = []
    names: list[str] = []
    attributes: list[int | None] = [None] * count
    while (kind := buf.number()) != K_END:
        size = buf.number()
        body = _Buffer(buf.take(size))
        if kind == K_EMPTY_STREAM:
            empty_stream = body.bits(count)
        elif kind == K_EMPTY_FILE:
            empty_file = body.bits(sum(empty_stream))
        elif kind == K_ANTI:
            anti = body.bits(sum(empty_stream))
        elif kind == K_NAME:
            if body.byte():
                raise MalformedError("external 7z names are not supported")
            text = body.data[body.pos :]
            if len(text) % 2:
                raise MalformedError("the 7z names are not UTF-16")
            names = text.decode("utf-16-le", "surrogatepass").split("\0")[:-1]
        elif kind == K_WIN_ATTRIBUTES:
            present = body.defined(count)
            if body.byte():
                raise MalformedError("external 7z attributes are not supported")
            attributes = [body.uint32() if p else None for p in present]
    if len(names) != count:
        raise MalformedError("the 7z header does not name every file")
    with_stream = sum(not e for e in empty_stream)
    if with_stream != len(streams.file_sizes):
        raise MalformedError("the 7z header's files and streams do not match")
    members: list[ArchiveMember] = []
    streamed: list[ArchiveMember] = []
    sizes = iter(streams.file_sizes)
    empties = iter(zip(empty_file or [False] * sum(empty_stream), anti or [False] * sum(empty_stream),
                       strict=True))
    for index, (name, empty) in enumerate(zip(names, empty_stream, strict=True)):
        member = ArchiveMember(index=index, name=name)
        if empty:
            is_file, is_anti = next(empties)
            member.kind = ANTI if is_anti else FILE if is_file else DIRECTORY
        else:
            member.size = next(sizes)
            streamed.append(member)
        member.kind = _kind(member.kind, attributes[index])
        members.append(member)
    return members, streamed


def _kind(kind: str, attributes: int | None) -> str:
    if attributes is None or kind == ANTI:
        return kind
    if attributes & ATTRIBUTE_UNIX_EXTENSION:
        mode = (attributes >> 16) & S_IFMT
        if mode == S_IFLNK:
            return SYMLINK
        if mode not in (0, S_IFREG, S_IFDIR):
            return "special file"
    if attributes & ATTRIBUTE_REPARSE_POINT:
        return SYMLINK
    if attributes & ATTRIBUTE_DIRECTORY:
        return DIRECTORY
    return kind


def _header(buf: _Buffer, limit: int) -> _Header:
    streams = _Streams()
    members: list[ArchiveMember] = []
    streamed: list[ArchiveMember] = []
    kind = buf.byte()
    if kind == K_ARCHIVE_PROPERTIES:
        while buf.byte() != K_END:
            buf.take(buf.number())
        kind = buf.byte()
    if kind == K_ADDITIONAL_STREAMS:
        _streams_info(buf, limit)
        kind = buf.byte()
    if kind == K_MAIN_STREAMS:
        streams = _streams_info(buf, limit)
        kind = buf.byte()
    if kind == K_FILES_INFO:
        members, streamed = _files_info(buf, streams, limit)
        kind = buf.byte()
    if kind != K_END:
        raise MalformedError("unexpected field in the 7z header")
    return _Header(streams, members, streamed)


def dictionary_size(method: bytes, properties: bytes) -> int | None:
    """Memory the decoder allocates for its dictionary (LZMA, LZMA2) or model (PPMd), from the header."""
    if method == LZMA1 and len(properties) >= 5:
        size: int = struct.unpack_from("<L", properties, 1)[0]
        return size
    if method == LZMA2 and len(properties) >= 1:
        bits = properties[0] & 0x3F
        if bits > 40:
            raise MalformedError("invalid LZMA2 dictionary size")
        return 0xFFFFFFFF if bits == 40 else (2 | (bits & 1)) << (bits // 2 + 11)
    if method == PPMD and len(properties) >= 5:
        memory: int = struct.unpack_from("<L", properties, 1)[0]
        return memory
    return None


def _check_coders(folder: _Folder, limits: TriageLimits) -> str | None:
    """Raises past the dictionary limit; returns why the folder cannot be decoded (or None)."""
    for method, properties in folder.coders:
        if method == AES:
            return "encrypted"
        size = dictionary_size(method, properties)
        if size is not None and size > limits.max_dictionary:
            raise LimitExceededError("ssi.archive.dictionary", size=size, limit=limits.max_dictionary)
        if method not in DECODABLE:
            return "a 7z compression method (coder) that is not supported"
    return None


def _decode_header(stream: BinaryIO, buf: _Buffer, archive_size: int, limits: TriageLimits) -> _Buffer:
    """The real header behind an encoded one: one LZMA or LZMA2 folder, decoded with bounded output."""
    streams = _streams_info(buf, MAX_CODERS)
    if len(streams.folders) != 1 or len(streams.pack_sizes) != 1:
        raise MalformedError("unexpected layout of the encoded 7z header")
    folder = streams.folders[0]
    why = _check_coders(folder, limits)
    if why == "encrypted":
        raise _EncryptedHeaderError
    if len(folder.coders) != 1 or folder.coders[0][0] not in (LZMA1, LZMA2, COPY):
        raise MalformedError("the encoded 7z header uses an unusual coder")
    size = folder.unpack_size
    if size > MAX_HEADER_BYTES:
        raise LimitExceededError("ssi.archive.too-large", size=size, limit=MAX_HEADER_BYTES)
    start = START_SIZE + streams.pack_pos
    packed = streams.pack_sizes[0]
    if start + packed > archive_size:
        raise MalformedError("the encoded 7z header lies outside the file")
    stream.seek(start)
    data = stream.read(packed)
    method, properties = folder.coders[0]
    if method == COPY:
        plain = data
    else:
        filter_id = lzma.FILTER_LZMA1 if method == LZMA1 else lzma.FILTER_LZMA2
        try:
            spec = lzma._decode_filter_properties(filter_id, properties)  # type: ignore[attr-defined]
            # LZMA1 has no end marker here: decoding past the declared size yields junk, not an error.
            plain = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[spec]).decompress(data, size)
        except (lzma.LZMAError, ValueError):
            raise MalformedError("the encoded 7z header cannot be decoded") from None
    if len(plain) != size or (folder.crc is not None and zlib.crc32(plain) != folder.crc):
        raise MalformedError("the decoded 7z header does not match its size or checksum")
    return _Buffer(plain)


class _EncryptedHeaderError(Exception):
    """The header itself is encrypted: not even the names can be read."""


def _read_header(stream: BinaryIO, archive_size: int, limits: TriageLimits) -> _Header:
    stream.seek(0)
    start = stream.read(START_SIZE)
    if len(start) < START_SIZE or not start.startswith(SIGNATURE):
        raise MalformedError("the 7z signature header is truncated")
    _, major, _, start_crc = _START.unpack_from(start)
    if major != 0:
        raise MalformedError("unknown 7z format version")
    if zlib.crc32(start[12:32]) != start_crc:
        raise MalformedError("the 7z signature header checksum does not match (truncated or damaged)")
    offset, size, crc = _NEXT.unpack_from(start, 12)
    if size == 0:
        return _Header(_Streams(), [])
    if size > MAX_HEADER_BYTES:
        raise LimitExceededError("ssi.archive.too-large", size=size, limit=MAX_HEADER_BYTES)
    if START_SIZE + offset + size > archive_size:
        raise MalformedError("the 7z header lies past the end of the file (truncated)")
    stream.seek(START_SIZE + offset)
    raw = stream.read(size)
    if zlib.crc32(raw) != crc:
        raise MalformedError("the 7z header checksum does not match")
    buf = _Buffer(raw)
    kind = buf.byte()
    if kind == K_ENCODED_HEADER:
        buf = _decode_header(stream, buf, archive_size, limits)
        kind = buf.byte()
    if kind != K_HEADER:
        raise MalformedError("the 7z header has an unexpected type")
    header = _header(buf, limits.max_entries)
    streams = header.streams
    end = START_SIZE + streams.pack_pos + sum(streams.pack_sizes)
    if end > archive_size:
        raise MalformedError("the 7z packed data runs past the end of the file (truncated)")
    return header


def read_7z(
    stream: BinaryIO,
    *,
    archive_size: int,
    limits: TriageLimits,
    sink: Sink,
    check_time: Callable[[], None],
) -> Listing:
    listing = Listing(kind="7z")
    out = listing.out
    try:
        header = _read_header(stream, archive_size, limits)
        listing.members = header.members
        if not check_declared(listing, limits, archive_size, out):
            return listing
        folder_sizes = sum(f.unpack_size for f in header.streams.folders)
        if folder_sizes > limits.max_total_size:
            raise LimitExceededError("ssi.archive.too-large", size=folder_sizes, limit=limits.max_total_size)
        blocked = _mark_undecodable(header, limits)
        if not isinstance(sink, NullSink):  # a listing alone needs no decompression
            _extract(stream, header, listing, sink, check_time, blocked)
    except _EncryptedHeaderError:
        out.add("ssi.archive.encrypted")
        listing.structural = True
    except LimitExceededError as exc:
        listing.stop(exc.rule, **exc.params)
    except MalformedError as exc:
        listing.stop("ssi.archive.malformed", reason=str(exc))
    return listing


def _mark_undecodable(header: _Header, limits: TriageLimits) -> set[int]:
    """Members of folders that cannot be decoded are marked; returns the indexes of those folders."""
    streamed = iter(header.streamed)
    blocked: set[int] = set()
    for number, (folder, count) in enumerate(zip(header.streams.folders, header.streams.substreams, strict=True)):
        why = _check_coders(folder, limits)
        if why is not None:
            blocked.add(number)
        for _ in range(count):
            member = next(streamed, None)
            if member is None:
                raise MalformedError("more streams declared than files with data")
            if why == "encrypted":
                member.encrypted = True
            elif why is not None:
                member.undecodable = why
    return blocked


class _Writer(Py7zIO):
    """Where py7zr writes one member: straight into the sink, bounded by the sink itself."""

    def __init__(self, feed: _Feed, member: ArchiveMember) -> None:
        self.feed = feed
        self.wanted = feed.begin(member)
        self.written = 0

    def write(self, s: bytes | bytearray) -> int:
        self.feed.check_time()
        self.written += len(s)
        if self.wanted:
            self.feed.sink.write(bytes(s))
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self.written


class _Feed(WriterFactory):
    """Creates a writer per member, in archive order. A member is finished (as intact) only when the
    next one starts or extraction ends without error: py7zr checks a CRC after closing its writer."""

    def __init__(self, sink: Sink, members: list[ArchiveMember], check_time: Callable[[], None]) -> None:
        self.sink = sink
        self.members = members
        self.check_time = check_time
        self.open: bool = False

    def create(self, filename: str) -> Py7zIO:
        return _Writer(self, self.members[int(filename)])

    def begin(self, member: ArchiveMember) -> bool:
        self.end(ok=True)
        wanted = self.sink.start(member)
        self.open = wanted
        return wanted

    def end(self, ok: bool) -> None:
        if self.open:
            self.sink.finish(ok)
            self.open = False


def _extract(
    stream: BinaryIO,
    header: _Header,
    listing: Listing,
    sink: Sink,
    check_time: Callable[[], None],
    blocked: set[int],
) -> None:
    feed = _Feed(sink, listing.members, check_time)
    streamed = header.streamed_indexes
    for member in listing.members:  # empty files hold no stream: handed over as they are
        if member.kind == FILE and member.index not in streamed and sink.start(member):
            sink.finish(True)
    targets = [m for m in header.streamed if m.kind == FILE and not m.encrypted and m.undecodable is None]
    if not targets:
        return
    try:
        stream.seek(0)
        with py7zr.SevenZipFile(stream, mode="r") as archive:
            names = [f.filename for f in archive.files]
            if names != [m.name for m in listing.members]:
                raise MalformedError("py7zr and the header walk disagree on the 7z members")
            if blocked and len(header.streams.folders) == 1:
                return
            for member in targets:
                archive.worker.register_filelike(member.index, MemIO(str(member.index), feed))
            archive.worker.max_extract_size = sum(f.unpack_size for f in header.streams.folders)
            archive.worker.extract(archive.fp, None, parallel=False)
        feed.end(ok=True)
    except (DeadlineExceededError, MalformedError):
        feed.end(ok=False)
        raise
    except Exception:  # py7zr's own errors, and the decoders' (corrupt data, CRC, truncation)
        feed.end(ok=False)
        raise MalformedError("7z content cannot be decoded") from None


__all__ = ["SIGNATURE", "dictionary_size", "read_7z"]
