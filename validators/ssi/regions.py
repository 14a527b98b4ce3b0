"""Where content embedded in a container starts: PNG chunks, JPEG segments, GIF extensions, RIFF chunks
(WebP, AVI, WAV), MP4/QuickTime boxes.

A script or shortcut hidden in a private PNG chunk, a JPEG APP segment or an MP4 ``free`` box starts at
the beginning of that region, not at a random offset: the hidden-content search looks there for what
has no reliable signature elsewhere (a ``#!`` shebang). Only headers are read (seek and read a few bytes),
under a count bound and the check's time limit.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

MAX_REGIONS = 10_000
MAX_GIF_BYTES = 64 * 1024 * 1024  # GIF blocks are chained by one-byte lengths: walked in memory
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_BMFF_CONTAINERS = frozenset({b"moov", b"udta", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"})


def _read_at(stream: BinaryIO, at: int, count: int) -> bytes:
    stream.seek(at)
    return stream.read(count)


def _png(stream: BinaryIO, size: int) -> Iterator[tuple[int, str]]:
    at = 8
    while at + 8 <= size:
        length, kind = struct.unpack(">I4s", _read_at(stream, at, 8))
        if kind != b"IDAT" and length:
            yield at + 8, f"PNG {kind.decode('latin-1')} chunk"
        if kind == b"IEND":
            return
        at += 12 + length


def _jpeg(stream: BinaryIO, size: int) -> Iterator[tuple[int, str]]:
    at = 2
    while at + 4 <= size:
        marker_head = _read_at(stream, at, 4)
        if marker_head[0] != 0xFF:
            return
        marker = marker_head[1]
        if marker == 0xFF:
            at += 1
            continue
        if marker in (0xD9, 0xDA):  # end of image, or entropy-coded data from here on
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        length = struct.unpack(">H", marker_head[2:4])[0]
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            yield at + 4, f"JPEG {'comment' if marker == 0xFE else f'APP{marker - 0xE0}'} segment"
        at += 2 + length


def _gif(stream: BinaryIO, size: int) -> Iterator[tuple[int, str]]:
    data = _read_at(stream, 0, min(size, MAX_GIF_BYTES))
    packed = data[10]
    at = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    while at < len(data):
        block = data[at]
        if block == 0x21:
            label = data[at + 1]
            if label in (0x01, 0xFE, 0xFF):
                yield at + 3, "GIF comment" if label == 0xFE else "GIF extension"
            at = _gif_sub_blocks(data, at + 2)
        elif block == 0x2C:
            local = data[at + 9]
            at = _gif_sub_blocks(data, at + 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1)
        else:
            return  # the trailer, or a broken structure


def _gif_sub_blocks(data: bytes, at: int) -> int:
    while at < len(data) and data[at]:
        at += 1 + data[at]
    return at + 1


def _riff(stream: BinaryIO, start: int, end: int, depth: int = 0) -> Iterator[tuple[int, str]]:
    at = start
    while at + 8 <= end:
        kind, length = struct.unpack("<4sI", _read_at(stream, at, 8))
        if kind == b"LIST" and depth < 2:
            yield from _riff(stream, at + 12, min(end, at + 8 + length), depth + 1)
        else:
            yield at + 8, f"RIFF '{kind.decode('latin-1')}' chunk"
        at += 8 + length + (length & 1)


def _bmff(stream: BinaryIO, start: int, end: int, depth: int = 0) -> Iterator[tuple[int, str]]:
    at = start
    while at + 8 <= end:
        header = _read_at(stream, at, 16)
        box_size, kind = struct.unpack(">I4s", header[:8])
        payload = at + 8
        if box_size == 1 and len(header) == 16:
            box_size, payload = struct.unpack(">Q", header[8:16])[0], at + 16
        elif box_size == 0:
            box_size = end - at
        if box_size < payload - at:
            return
        yield payload, f"MP4 '{kind.decode('latin-1')}' box"
        if kind in _BMFF_CONTAINERS and depth < 4:
            yield from _bmff(stream, payload, min(end, at + box_size), depth + 1)
        at += box_size


def region_starts(stream: BinaryIO, size: int, check_time: Callable[[], None]) -> Iterator[tuple[int, str]]:
    """(offset, what) of the start of each embedded region of a PNG, JPEG or ISO BMFF (MP4) file."""
    head = _read_at(stream, 0, 12)
    if head.startswith(_PNG):
        walk = _png(stream, size)
    elif head.startswith(_JPEG):
        walk = _jpeg(stream, size)
    elif head[4:8] == b"ftyp":
        walk = _bmff(stream, 0, size)
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        walk = _gif(stream, size)
    elif head[:4] == b"RIFF":
        walk = _riff(stream, 12, size)
    else:
        return
    try:
        for count, region in enumerate(walk):
            if count >= MAX_REGIONS:
                return
            if count % 1000 == 0:
                check_time()
            yield region
    except (struct.error, IndexError):
        return  # a broken structure is the image and filetype checks' finding; what was walked is searched
