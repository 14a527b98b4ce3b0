"""Archives other than zip, read into one member model and judged by the rules zip members obey.

| format | how | content |
|---|---|---|
| tar, tar.gz/.tgz, tar.bz2, tar.xz | ``tarfile`` headers over a bounded forward stream (``tar.py``) | inspected |
| gzip, bzip2, xz (one file) | bounded decompression (``compressed.py``); gzip FNAME judged | inspected |
| 7z | headers parsed and bounded here, then py7zr into a bounded sink (``sevenzip.py``) | inspected (7zAES: refused) |
| RAR 4 / RAR 5 | headers walked here (``rar.py``) | stored members inspected; compressed ones refused |

``detect`` names the format from the first bytes; ``read_archive`` lists the members and pushes their
bytes into a ``Sink``; ``members.conclude`` then judges them. Zip stays in ``validators.ziptriage``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import BinaryIO

from validators.archives.bounded import BoundedDecompressor, MalformedError, compression_of
from validators.archives.members import LimitExceededError, Listing, NullSink, Sink
from validators.archives.rar import is_rar
from validators.archives.tar import BLOCK, looks_like_tar
from validators.ziptriage import TriageLimits

SEVENZIP_SIGNATURE = b"7z\xbc\xaf\x27\x1c"
COMPRESSED = ("gzip", "bzip2", "xz")
KINDS = ("tar", *(f"tar.{c}" for c in COMPRESSED), *COMPRESSED, "7z", "rar")


def detect(head: bytes) -> str | None:
    """``tar``, ``gzip``, ``bzip2``, ``xz``, ``7z`` or ``rar`` from the first bytes (512 at least for tar);
    a compressed stream is refined to ``tar.<compression>`` by ``read_archive``."""
    if head.startswith(SEVENZIP_SIGNATURE):
        return "7z"
    if is_rar(head):
        return "rar"
    compression = compression_of(head)
    if compression is not None:
        return compression
    return "tar" if looks_like_tar(head) else None


def _holds_tar(stream: BinaryIO, compression: str, size: int, limits: TriageLimits) -> bool:
    """Whether the first decompressed block of ``stream`` is a tar header (bounded peek)."""
    stream.seek(0)
    peek = BoundedDecompressor(stream, compression, compressed_size=size, max_output=BLOCK,
                               max_ratio=math.inf, ratio_floor=BLOCK + 1, memlimit=limits.max_dictionary)
    try:
        head = peek.read(BLOCK)
    except (MalformedError, LimitExceededError):
        return False  # the full read reports what is wrong
    finally:
        stream.seek(0)
    return looks_like_tar(head)


def read_archive(
    stream: BinaryIO,
    kind: str,
    *,
    file_name: str,
    limits: TriageLimits,
    sink: Sink | None = None,
    check_time: Callable[[], None] = lambda: None,
) -> Listing:
    """Members of the ``kind`` archive in ``stream`` (a seekable stream), their bytes pushed into ``sink``."""
    sink = sink or NullSink()
    size = stream.seek(0, 2)
    stream.seek(0)
    if kind in COMPRESSED and _holds_tar(stream, kind, size, limits):
        kind = f"tar.{kind}"
    if kind == "tar" or kind.startswith("tar."):
        from validators.archives.tar import read_tar

        compression = kind.partition(".")[2] or None
        return read_tar(stream, compression=compression, archive_size=size, limits=limits, sink=sink,
                        check_time=check_time, memlimit=limits.max_dictionary)
    if kind in COMPRESSED:
        from validators.archives.compressed import read_compressed

        return read_compressed(stream, kind=kind, file_name=file_name, archive_size=size, limits=limits,
                               sink=sink, check_time=check_time, memlimit=limits.max_dictionary)
    if kind == "7z":
        return _read_7z(stream, size, limits, sink, check_time)
    if kind == "rar":
        from validators.archives.rar import read_rar

        return read_rar(stream, archive_size=size, limits=limits, sink=sink, check_time=check_time)
    raise ValueError(f"unknown archive kind {kind!r}")


def _read_7z(
    stream: BinaryIO, size: int, limits: TriageLimits, sink: Sink, check_time: Callable[[], None]
) -> Listing:
    try:
        from validators.archives.sevenzip import read_7z
    except ImportError:  # py7zr missing: the archive cannot be read at all, which the verdict says
        listing = Listing(kind="7z")
        listing.stop("system.check-not-run", check="archive", reason="7z support (py7zr) is not installed")
        return listing
    return read_7z(stream, archive_size=size, limits=limits, sink=sink, check_time=check_time)


__all__ = ["COMPRESSED", "KINDS", "detect", "read_archive"]
