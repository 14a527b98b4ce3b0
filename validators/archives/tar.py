"""tar archives, plain or compressed (gzip, bzip2, xz), read in one bounded forward pass.

``tarfile`` parses the headers (ustar, GNU long names, pax records) over a ``ForwardReader``: nothing is
ever extracted by ``tarfile`` itself, no read may ask for more than a few MiB (a pax record or long name
declaring gigabytes is refused), and compressed data goes through ``BoundedDecompressor``. Each member's
header name is kept beside the name a pax ``path`` record or a GNU long name gives it: extractors that
ignore those records write the header name, so it is judged too. The end of the archive must be its
zero blocks; anything else after them is hidden data.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from typing import Any, BinaryIO

from validators.archives.bounded import BoundedDecompressor, MalformedError
from validators.archives.forward import ForwardReader
from validators.archives.members import (
    DEVICE,
    DIRECTORY,
    FIFO,
    FILE,
    HARDLINK,
    OTHER,
    SPARSE,
    SYMLINK,
    ArchiveMember,
    LimitExceededError,
    Listing,
    Sink,
)
from validators.ziptriage import CappedFindings, TriageLimits, name_oddities, safe_path

BLOCK = tarfile.BLOCKSIZE
MAX_HEADER_READ = 4 * 1024 * 1024  # a pax record or GNU long name larger than this is refused
CHUNK = 1024 * 1024


def looks_like_tar(head: bytes) -> bool:
    """A first 512-byte block whose header checksum is right: ustar, GNU and old v7 tars alike."""
    if len(head) < BLOCK or head[:BLOCK].count(0) == BLOCK:
        return False
    field = head[148:156].replace(b"\0", b" ").strip()
    if not field or not all(48 <= c <= 55 for c in field):
        return False
    declared = int(field, 8)
    block = head[:148] + b" " * 8 + head[156:BLOCK]
    # The sum of the block's bytes with the checksum field as spaces; old tars summed signed bytes.
    unsigned = sum(block)
    signed = unsigned - 256 * sum(1 for c in block if c > 127)
    return declared in (unsigned, signed)


class _TarInfo(tarfile.TarInfo):
    """A TarInfo that remembers its header's own name and size before pax or GNU records replace them."""

    header_name: str = ""
    header_size: int = 0

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Any:
        obj = super().frombuf(buf, encoding, errors)
        obj.header_name = obj.name
        obj.header_size = obj.size
        return obj


class _LastBlock(ForwardReader):
    """Remembers the last header-sized block read, to tell an end marker from a cut or a bad header."""

    last_block: bytes = b""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size == BLOCK:
            self.last_block = data
        return data


def _kind(info: tarfile.TarInfo) -> str:
    if info.issparse():
        return SPARSE
    if info.isreg():
        return FILE
    if info.isdir():
        return DIRECTORY
    if info.issym():
        return SYMLINK
    if info.islnk():
        return HARDLINK
    if info.ischr() or info.isblk():
        return DEVICE
    if info.isfifo():
        return FIFO
    return OTHER


_CUT_SEQUENCE = re.compile("[\udc80-\udcff]+$")  # bytes of a UTF-8 character cut by the field's end


def _matches(header: str, real: str) -> bool:
    """``header`` is ``real`` cut short, with any of its non-ASCII characters written otherwise (``?``,
    ``_``, a legacy code page, a UTF-8 sequence cut at the field's end)."""
    header = _CUT_SEQUENCE.sub("", header)
    if len(header) > len(real):
        return False
    return all(
        h == r or (not r.isascii() and (h in "?_" or not h.isascii())) for h, r in zip(header, real, strict=False)
    )


def _degraded(header: str, real: str) -> bool:
    """Whether ``header`` is only a stand-in for ``real`` that tar writers put in the fixed header when a
    pax record or GNU long name holds the real name: truncated, ASCII-only, or (libarchive) with its
    folders elided but its file name kept. Not a second name."""
    if header == real or not header:
        return True
    if _matches(header, real):
        return True
    return "..." in header and _matches(header.rsplit("/", 1)[-1], real.rsplit("/", 1)[-1])


def _member(info: _TarInfo, index: int) -> ArchiveMember:
    kind = _kind(info)
    member = ArchiveMember(index=index, name=info.name, kind=kind, size=info.size)
    header = info.header_name.rstrip("/") if info.isdir() else info.header_name
    # A stand-in name is still judged when it is dangerous in itself: old extractors write it.
    dangerous = header != info.name and (safe_path(header)[1] is not None or name_oddities(header)[0])
    if dangerous or not _degraded(header, info.name):
        member.other_names = ((header, "tar header (read by extractors that ignore pax and GNU long names)"),)
    return member


def read_tar(
    stream: BinaryIO,
    *,
    compression: str | None,
    archive_size: int,
    limits: TriageLimits,
    sink: Sink,
    check_time: Callable[[], None],
    memlimit: int,
) -> Listing:
    """List (and push into ``sink``) every member of the tar in ``stream``, positioned at its start."""
    listing = Listing(kind=f"tar.{compression}" if compression else "tar")
    out = listing.out
    raw: Any = stream
    if compression is not None:
        raw = BoundedDecompressor(
            stream,
            compression,
            compressed_size=archive_size,
            max_output=limits.max_total_size + 64 * BLOCK,  # headers and padding beside the content
            max_ratio=limits.max_ratio,
            ratio_floor=limits.ratio_floor,
            memlimit=memlimit,
        )
    reader = _LastBlock(raw, max_read=MAX_HEADER_READ)
    try:
        _walk(reader, listing, out, limits, sink, check_time, archive_size)
    except LimitExceededError as exc:
        listing.stop(exc.rule, **exc.params)
    except (MalformedError, tarfile.TarError, EOFError, ValueError, UnicodeError) as exc:
        reason = str(exc) if isinstance(exc, MalformedError) else _tar_reason(exc)
        listing.stop("ssi.archive.malformed", reason=reason)
    return listing


def _tar_reason(exc: Exception) -> str:
    text = str(exc)
    if "unexpected end of data" in text or "truncated" in text:
        return "the tar archive is truncated"
    return f"invalid tar structure ({type(exc).__name__})"


def _walk(
    reader: _LastBlock,
    listing: Listing,
    out: CappedFindings,
    limits: TriageLimits,
    sink: Sink,
    check_time: Callable[[], None],
    archive_size: int,
) -> None:
    try:
        tar = tarfile.open(  # noqa: SIM115 - closed by the ``with`` below, once it is known to be a tar
            fileobj=reader, mode="r:", tarinfo=_TarInfo, encoding="utf-8", errors="surrogateescape"
        )
    except tarfile.ReadError as exc:
        if "empty file" in str(exc) and reader.last_block.count(0) == BLOCK:
            return  # an archive of nothing but its end marker
        raise
    declared = 0
    with tar:
        while True:
            check_time()
            info: Any = tar.next()  # a _TarInfo
            if info is None:
                break
            tar.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every header; ours is bounded
            member = _member(info, len(listing.members))
            listing.members.append(member)
            if len(listing.members) > limits.max_entries:
                raise LimitExceededError("ssi.archive.too-many-entries", count=f"> {limits.max_entries}",
                                         limit=limits.max_entries)
            declared += member.size
            if member.size > limits.max_entry_size or declared > limits.max_total_size:
                raise LimitExceededError("ssi.archive.too-large", size=declared, limit=limits.max_total_size)
            ratio = declared / max(1, archive_size)
            if declared >= limits.ratio_floor and ratio > limits.max_ratio:
                raise LimitExceededError("ssi.archive.ratio", ratio=round(ratio), limit=limits.max_ratio)
            if info.header_size and info.size != info.header_size:
                raise MalformedError("a pax size record disagrees with the member's header size")
            if member.kind == FILE and sink.start(member):
                sink.finish(_pump(tar, info, sink, check_time))
        _check_end(reader, out)


def _pump(tar: tarfile.TarFile, info: tarfile.TarInfo, sink: Sink, check_time: Callable[[], None]) -> bool:
    extracted = tar.extractfile(info)
    if extracted is None:
        return False
    remaining = info.size
    while remaining > 0:
        check_time()
        chunk = extracted.read(min(CHUNK, remaining))
        if not chunk:
            raise MalformedError("the tar archive is truncated")
        remaining -= len(chunk)
        sink.write(chunk)
    return True


def _check_end(reader: _LastBlock, out: CappedFindings) -> None:
    """The walk stopped at a block that was not a header: it must be the zero end marker, and only
    zeros may follow it (GNU tar ``-i`` and some extractors read on past the marker)."""
    last = reader.last_block
    if len(last) < BLOCK:
        raise MalformedError("the tar archive is truncated (no end-of-archive blocks)")
    if last.count(0) != BLOCK:
        raise MalformedError("a tar header is invalid (bad checksum or fields)")
    hidden = 0
    while True:
        block = reader.read(CHUNK)
        if not block:
            break
        hidden += len(block) - block.count(0)
        if hidden:
            break
    if hidden:
        out.add("ssi.archive.polyglot", position="after", what="data after the tar end-of-archive blocks")
