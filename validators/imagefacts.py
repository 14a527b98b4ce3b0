"""Image structure, walked without decoding a pixel: dimensions, frame count, where the end marker is, and
the text a format can carry beside its pixels (comments, metadata chunks and segments).

PNG, JPEG and GIF are walked structure by structure; WebP (RIFF) chunk by chunk; other formats get their
dimensions from Pillow's header parser. PNG's compressed ancillary chunks (iCCP, zTXt, compressed iTXt)
are inflated under a bound per chunk and per image. Shared by the SSI image check (bombs, trailing data,
markup hidden in metadata) and the personal-data check (identifiers written in metadata).
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass, field

from validators.base import ProofFile

MAX_IMAGE_BYTES = 512 * 1024 * 1024
MAX_TEXT_CHUNK = 1024 * 1024  # text of a GIF comment kept for the markup search
MAX_CHUNK_INFLATE = 16 * 1024 * 1024  # one iCCP/zTXt/iTXt chunk (ICC profiles stay under a few MB)
MAX_IMAGE_INFLATE = 64 * 1024 * 1024  # all compressed chunks of one image

_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt", b"eXIf")


@dataclass
class ImageFacts:
    width: int = 0
    height: int = 0
    frames: int = 1
    end: int | None = None  # offset just after the end marker
    marker: str = ""
    texts: list[tuple[str, bytes]] = field(default_factory=list)  # (where, text)
    inflated: list[tuple[str, bytes]] = field(default_factory=list)  # (where, content of a compressed chunk)
    bombs: list[str] = field(default_factory=list)  # chunks that inflate past the bound
    inflate_left: int = MAX_IMAGE_INFLATE


class ChunkBomb(Exception):
    """A compressed chunk that inflates past its bound."""

    pass


class Malformed(Exception):
    """The structure could not be walked to its end marker (the message says why, in fixed words)."""

    pass


def _png(data: bytes) -> ImageFacts:
    facts = ImageFacts(marker="PNG IEND")
    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        body = data[at + 8 : at + 8 + length]
        if kind == b"IHDR" and len(body) >= 8:
            facts.width, facts.height = struct.unpack_from(">II", body)
        elif kind in _PNG_TEXT_CHUNKS or kind == b"iCCP":
            _png_metadata(kind, body, facts)
        elif kind == b"acTL" and len(body) >= 4:
            facts.frames = max(1, struct.unpack_from(">I", body)[0])
        at += 12 + length
        if kind == b"IEND":
            facts.end = at
            return facts
    raise Malformed("no IEND chunk")


def _png_metadata(kind: bytes, body: bytes, facts: ImageFacts) -> None:
    where = f"PNG {kind.decode()} chunk"
    keyword, _, rest = body.partition(b"\0")
    packed: bytes | None = None
    if kind in (b"zTXt", b"iCCP"):
        packed = rest[1:]  # after the compression method byte
    elif kind == b"iTXt" and rest[:1] == b"\x01":  # compressed: flag, method, language, translated keyword
        parts = rest[2:].split(b"\0", 2)
        packed = parts[2] if len(parts) == 3 else b""
    if packed is None:
        facts.texts.append((where, body))
        return
    try:
        content = _inflate(packed, min(MAX_CHUNK_INFLATE, facts.inflate_left))
    except ChunkBomb:
        facts.bombs.append(where)
        return
    facts.inflate_left -= len(content)
    facts.inflated.append((where, content))
    if kind != b"iCCP":
        facts.texts.append((where, keyword + b" " + content))


def _inflate(data: bytes, limit: int) -> bytes:
    """The chunk's content; a broken stream gives what inflated (viewers show no more than that)."""
    unpacker = zlib.decompressobj()
    try:
        out = unpacker.decompress(data, limit + 1)
    except zlib.error:
        return b""
    if len(out) > limit or unpacker.unconsumed_tail:
        raise ChunkBomb
    return out


def _jpeg(data: bytes) -> ImageFacts:
    facts = ImageFacts(marker="JPEG EOI")
    at = 2
    while at + 2 <= len(data):
        if data[at] != 0xFF:
            raise Malformed("segment marker expected")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD9:
            facts.end = at + 2
            return facts
        if marker in (0x01, *range(0xD0, 0xD8)):
            at += 2
            continue
        length = struct.unpack_from(">H", data, at + 2)[0]  # struct.error when truncated
        body = data[at + 4 : at + 2 + length]
        if (
            marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
            and len(body) >= 5
        ):
            facts.height, facts.width = struct.unpack_from(">HH", body, 1)
        elif marker == 0xFE:
            facts.texts.append(("JPEG comment", body))
        elif 0xE0 <= marker <= 0xEF:
            facts.texts.append((f"JPEG APP{marker - 0xE0} segment", body))
        at += 2 + length
        if marker == 0xDA:
            at = _entropy_end(data, at)
    raise Malformed("no EOI marker")


def _entropy_end(data: bytes, at: int) -> int:
    """Offset of the next marker after entropy-coded data (FF00 stuffing and RSTn are data)."""
    while True:
        at = data.find(b"\xff", at)
        if at < 0 or at + 1 >= len(data):
            raise Malformed("scan data runs to the end")
        following = data[at + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            at += 1 if following == 0xFF else 2
            continue
        return at


def _gif(data: bytes) -> ImageFacts:
    facts = ImageFacts(marker="GIF trailer", frames=0)
    facts.width, facts.height, packed = struct.unpack_from("<HHB", data, 6)
    at = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    while at < len(data):
        block = data[at]
        if block == 0x3B:
            facts.end = at + 1
            facts.frames = max(facts.frames, 1)
            return facts
        if block == 0x21:  # extension: label, then sub-blocks
            label = data[at + 1]
            text, at = _sub_blocks(data, at + 2)
            if label in (0xFE, 0x01, 0xFF):
                facts.texts.append(("GIF comment" if label == 0xFE else "GIF extension", text))
        elif block == 0x2C:
            width, height, packed = struct.unpack_from("<4xHHB", data, at + 1)
            facts.width, facts.height = max(facts.width, width), max(facts.height, height)
            facts.frames += 1
            at += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0) + 1  # + LZW minimum code size
            _, at = _sub_blocks(data, at)
        else:
            raise Malformed("unknown GIF block")
    raise Malformed("no GIF trailer")


def _sub_blocks(data: bytes, at: int) -> tuple[bytes, int]:
    out = bytearray()
    while at < len(data):
        size = data[at]
        if size == 0:
            return bytes(out), at + 1
        if len(out) < MAX_TEXT_CHUNK:
            out += data[at + 1 : at + 1 + size]
        at += 1 + size
    raise Malformed("truncated GIF sub-blocks")


def _other(file: ProofFile) -> ImageFacts:
    """Dimensions of any other format Pillow knows, from its header parser only."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with file.open() as stream, Image.open(stream) as image:  # lazy: reads the header, decodes nothing
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1) or 1)
    return ImageFacts(width=width, height=height, frames=frames)


def _webp(data: bytes) -> ImageFacts:
    """A RIFF/WEBP file: its EXIF and XMP chunks as texts, the RIFF size as the end (dimensions: Pillow)."""
    facts = ImageFacts(marker="RIFF size")
    declared = struct.unpack_from("<I", data, 4)[0]  # struct.error when truncated
    end = min(len(data), 8 + declared)
    at = 12
    while at + 8 <= end:
        kind, length = struct.unpack_from("<4sI", data, at)
        body = data[at + 8 : at + 8 + length]
        if kind == b"VP8X" and len(body) >= 10:
            facts.width = 1 + int.from_bytes(body[4:7], "little")
            facts.height = 1 + int.from_bytes(body[7:10], "little")
        elif kind == b"VP8 " and len(body) >= 10:
            facts.width, facts.height = (v & 0x3FFF for v in struct.unpack_from("<HH", body, 6))
        elif kind == b"VP8L" and len(body) >= 5:
            bits = int.from_bytes(body[1:5], "little")
            facts.width, facts.height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        elif kind == b"ANIM":
            facts.frames = 0
        elif kind == b"ANMF":
            facts.frames += 1
        elif kind in (b"EXIF", b"XMP ", b"ICCP"):
            facts.texts.append((f"WebP {kind.decode().strip()} chunk", body))
        at += 8 + length + (length & 1)
    facts.frames = max(1, facts.frames)
    facts.end = 8 + declared
    return facts


PARSERS = ((b"\x89PNG\r\n\x1a\n", _png), (b"\xff\xd8\xff", _jpeg), (b"GIF87a", _gif), (b"GIF89a", _gif))


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def parse(data: bytes) -> ImageFacts | None:
    """The structure of a PNG, JPEG, GIF or WebP image (None for another format). Raises ``Malformed``,
    ``struct.error`` or ``IndexError`` on a structure that cannot be walked."""
    if _is_webp(data[:12]):
        return _webp(data)
    for magic, parser in PARSERS:
        if data.startswith(magic):
            return parser(data)
    return None


def image_facts(file: ProofFile) -> ImageFacts:
    head = file.head(16)
    if any(head.startswith(magic) for magic, _ in PARSERS) or _is_webp(head):
        found = parse(file.read(MAX_IMAGE_BYTES))
        if found is not None:
            return found
    return _other(file)


