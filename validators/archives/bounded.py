"""A gzip, bzip2 or xz stream read as a file whose output is bounded: the only way those are decompressed.

Every read produces at most what was asked; the output as a whole may not pass ``max_output`` nor
``max_ratio`` times the compressed size (past ``ratio_floor``), so a bomb is stopped after a bounded
amount of work, whatever it declares. Concatenated streams (``cat a.gz b.gz``) are read as one, as
``gzip -d`` does. Corrupt or truncated data raises ``MalformedError``.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from validators.archives.members import LimitExceededError

GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
COMPRESSIONS = {"gzip": GZIP_MAGIC, "bzip2": BZIP2_MAGIC, "xz": XZ_MAGIC}
READ_BLOCK = 64 * 1024
MAX_GZIP_HEADER_FIELD = 64 * 1024  # FNAME/FCOMMENT: an ordinary name, not a place to hide data

_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16


class MalformedError(Exception):
    """The compressed data is corrupt or truncated; the message is safe to show (no content)."""


def compression_of(head: bytes) -> str | None:
    """``gzip``, ``bzip2`` or ``xz`` when ``head`` starts with that format's magic."""
    for name, magic in COMPRESSIONS.items():
        if head.startswith(magic):
            if name == "bzip2" and not (len(head) > 3 and 0x31 <= head[3] <= 0x39):
                return None  # "BZh" then a block size digit, else mere text starting with BZh
            if name == "gzip" and not (len(head) > 2 and head[2] == 8):
                return None  # gzip is deflate (method 8) only
            return name
    return None


@dataclass(frozen=True)
class GzipHeader:
    name: bytes | None  # FNAME: the original file name, as raw bytes (ISO 8859-1 by the RFC)
    comment: bool
    length: int


def gzip_header(head: bytes) -> GzipHeader:
    """The fixed header of a gzip member and its optional fields (RFC 1952 §2.3)."""
    if len(head) < 10 or not head.startswith(GZIP_MAGIC) or head[2] != 8:
        raise MalformedError("not a deflate gzip header")
    flags = head[3]
    pos = 10
    if flags & _FEXTRA:
        if len(head) < pos + 2:
            raise MalformedError("gzip header is truncated")
        (extra_len,) = struct.unpack_from("<H", head, pos)
        pos += 2 + extra_len
    name = None
    if flags & _FNAME:
        end = head.find(b"\0", pos, pos + MAX_GZIP_HEADER_FIELD)
        if end < 0:
            raise MalformedError("gzip file name field is unterminated or too long")
        name, pos = head[pos:end], end + 1
    if flags & _FCOMMENT:
        end = head.find(b"\0", pos, pos + MAX_GZIP_HEADER_FIELD)
        if end < 0:
            raise MalformedError("gzip comment field is unterminated or too long")
        pos = end + 1
    if flags & _FHCRC:
        pos += 2
    if pos > len(head):
        raise MalformedError("gzip header is truncated")
    return GzipHeader(name=name, comment=bool(flags & _FCOMMENT), length=pos)


def _engine(kind: str, memlimit: int) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    # xz declares its dictionary: liblzma refuses (MemoryError-free) what needs more than memlimit.
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=memlimit)


class BoundedDecompressor(io.RawIOBase):
    """Readable decompressed view of ``source`` (positioned at its start), bounded as described above."""

    def __init__(
        self,
        source: BinaryIO,
        kind: str,
        *,
        compressed_size: int,
        max_output: int,
        max_ratio: float,
        ratio_floor: int,
        memlimit: int,
    ) -> None:
        super().__init__()
        self.source = source
        self.kind = kind
        self.compressed_size = max(1, compressed_size)
        self.max_output = max_output
        self.max_ratio = max_ratio
        self.ratio_floor = ratio_floor
        self.memlimit = memlimit
        self.engine = _engine(kind, memlimit)
        self.pending = b""  # input not yet given to the engine
        self.produced = 0
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("unbounded reads are not allowed")  # callers always ask for a size
        out = bytearray()
        while len(out) < size and not self.finished:
            piece = self._step(size - len(out))
            out += piece
        self._account(len(out))
        return bytes(out)

    def _account(self, count: int) -> None:
        self.produced += count
        if self.produced > self.max_output:
            raise LimitExceededError("ssi.archive.too-large", size=self.produced, limit=self.max_output)
        ratio = self.produced / self.compressed_size
        if self.produced >= self.ratio_floor and ratio > self.max_ratio:
            raise LimitExceededError("ssi.archive.ratio", ratio=round(ratio), limit=self.max_ratio)

    def _step(self, want: int) -> bytes:
        """At most ``want`` more bytes; b"" only when more input is needed or the stream ended."""
        if self.engine.eof:
            rest = self.engine.unused_data + self.pending
            self.pending = b""
            rest += self.source.read(READ_BLOCK) if len(rest) < 16 else b""
            if not rest.strip(b"\0"):  # trailing zeros are tolerated padding, as gzip does
                self.finished = True
                return b""
            if not rest.startswith(COMPRESSIONS[self.kind]):
                raise MalformedError("unexpected data after the compressed stream")
            self.engine = _engine(self.kind, self.memlimit)
            self.pending = rest
        if not self.pending and self._needs_input():
            self.pending = self.source.read(READ_BLOCK)
            if not self.pending:
                raise MalformedError("the compressed stream is truncated")
        try:
            piece = self._decompress(self.pending, want)
        except lzma.LZMAError as exc:
            if "memory usage limit" in str(exc).lower():  # the xz header asks for a larger dictionary
                raise LimitExceededError("ssi.archive.dictionary", size="more", limit=self.memlimit) from None
            raise MalformedError("corrupt compressed data") from None
        except (zlib.error, OSError, EOFError, ValueError):
            raise MalformedError("corrupt compressed data") from None
        return piece

    def _needs_input(self) -> bool:
        if self.kind == "gzip":
            return not self.engine.unconsumed_tail
        return bool(self.engine.needs_input)

    def _decompress(self, data: bytes, want: int) -> bytes:
        if self.kind == "gzip":
            piece: bytes = self.engine.decompress(data, want)
            self.pending = self.engine.unconsumed_tail
            return piece
        piece = self.engine.decompress(data, max_length=want)
        self.pending = b""  # bz2 and lzma keep unconsumed input themselves
        return piece
