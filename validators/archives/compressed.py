"""A single compressed file (gzip, bzip2, xz) that is not a tar: one member, bounded like any other.

Its name is the gzip header's FNAME when there is one (``gzip -dN`` and several desktop tools restore it),
judged by the same rules as any member name; otherwise the file's own name without its suffix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from validators.archives.bounded import BoundedDecompressor, MalformedError, gzip_header
from validators.archives.members import ArchiveMember, LimitExceededError, Listing, Sink
from validators.ziptriage import TriageLimits

CHUNK = 1024 * 1024
SUFFIXES = {"gzip": (".gz", ".gzip", ".z"), "bzip2": (".bz2", ".bzip2"), "xz": (".xz",)}
HEADER_PEEK = 2 * 64 * 1024 + 64  # fixed header, FEXTRA, FNAME and FCOMMENT at their largest


def _fallback_name(kind: str, file_name: str) -> str:
    base = file_name.rsplit("/", 1)[-1]
    for suffix in SUFFIXES[kind]:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return "content"


def _stored_name(raw: bytes) -> str:
    """FNAME is ISO 8859-1 by RFC 1952; tools write UTF-8 as often, which is tried first."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_compressed(
    stream: BinaryIO,
    *,
    kind: str,
    file_name: str,
    archive_size: int,
    limits: TriageLimits,
    sink: Sink,
    check_time: Callable[[], None],
    memlimit: int,
) -> Listing:
    listing = Listing(kind=kind)
    name = _fallback_name(kind, file_name)
    try:
        if kind == "gzip":
            header = gzip_header(stream.read(HEADER_PEEK))
            if header.name is not None:
                name = _stored_name(header.name)
            stream.seek(0)
        member = ArchiveMember(index=0, name=name)
        listing.members.append(member)
        decompressed = BoundedDecompressor(
            stream,
            kind,
            compressed_size=archive_size,
            max_output=min(limits.max_entry_size, limits.max_total_size),
            max_ratio=limits.max_ratio,
            ratio_floor=limits.ratio_floor,
            memlimit=memlimit,
        )
        wanted = sink.start(member)
        ok = False
        try:
            while True:
                check_time()
                chunk = decompressed.read(CHUNK)
                if not chunk:
                    break
                member.size += len(chunk)
                if wanted:
                    sink.write(chunk)
            ok = True
        finally:
            if wanted:
                sink.finish(ok)
    except LimitExceededError as exc:
        listing.stop(exc.rule, **exc.params)
    except MalformedError as exc:
        listing.stop("ssi.archive.malformed", reason=str(exc))
    return listing
