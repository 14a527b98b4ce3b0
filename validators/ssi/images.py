"""Images: pixel bombs (read from the header, before any decoding), data after the end marker, and
markup or script hidden in comments and metadata chunks. PNG, JPEG and GIF are walked structure by
structure; other formats get their dimensions from Pillow's header parser (no pixel is decoded).

PNG's compressed ancillary chunks (iCCP colour profiles, zTXt and iTXt text) are inflated under a bound
per chunk and per image, as viewers do when the image is opened: past it the chunk is a decompression
bomb. What they inflate to is searched like the rest of a file (markup, executables, archives), since the
raw-byte search cannot see through the compression.
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.model import CheckState, Finding
from validators.settings import EngineSettings
from validators.ssi.signatures import executable_kind, hidden_formats

MAX_IMAGE_BYTES = 512 * 1024 * 1024
MAX_TEXT_CHUNK = 1024 * 1024  # text of a GIF comment kept for the markup search
MAX_CHUNK_INFLATE = 16 * 1024 * 1024  # one iCCP/zTXt/iTXt chunk (ICC profiles stay under a few MB)
MAX_IMAGE_INFLATE = 64 * 1024 * 1024  # all compressed chunks of one image
MAX_PADDING = 16  # some encoders pad with a few zero bytes after the end marker
_MARKUP = re.compile(
    rb"<\s*script|<\?php|<%[@=]\s|javascript:|vbscript:|<\s*iframe|<\s*object|<\s*embed|<\s*html|on(?:load|error)\s*=",
    re.IGNORECASE,
)
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt", b"eXIf")
IN_CHUNK = " in a compressed chunk of the image"  # ssi.executable's {where} for content of a compressed chunk


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


class _ChunkBomb(Exception):
    pass


class _Malformed(Exception):
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
    raise _Malformed("no IEND chunk")


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
    except _ChunkBomb:
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
        raise _ChunkBomb
    return out


def _jpeg(data: bytes) -> ImageFacts:
    facts = ImageFacts(marker="JPEG EOI")
    at = 2
    while at + 2 <= len(data):
        if data[at] != 0xFF:
            raise _Malformed("segment marker expected")
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
    raise _Malformed("no EOI marker")


def _entropy_end(data: bytes, at: int) -> int:
    """Offset of the next marker after entropy-coded data (FF00 stuffing and RSTn are data)."""
    while True:
        at = data.find(b"\xff", at)
        if at < 0 or at + 1 >= len(data):
            raise _Malformed("scan data runs to the end")
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
            raise _Malformed("unknown GIF block")
    raise _Malformed("no GIF trailer")


def _sub_blocks(data: bytes, at: int) -> tuple[bytes, int]:
    out = bytearray()
    while at < len(data):
        size = data[at]
        if size == 0:
            return bytes(out), at + 1
        if len(out) < MAX_TEXT_CHUNK:
            out += data[at + 1 : at + 1 + size]
        at += 1 + size
    raise _Malformed("truncated GIF sub-blocks")


def _other(file: ProofFile) -> ImageFacts:
    """Dimensions of any other format Pillow knows, from its header parser only."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with file.open() as stream, Image.open(stream) as image:  # lazy: reads the header, decodes nothing
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1) or 1)
    return ImageFacts(width=width, height=height, frames=frames)


_PARSERS = ((b"\x89PNG\r\n\x1a\n", _png), (b"\xff\xd8\xff", _jpeg), (b"GIF87a", _gif), (b"GIF89a", _gif))


def image_facts(file: ProofFile) -> ImageFacts:
    head = file.head(16)
    for magic, parser in _PARSERS:
        if head.startswith(magic):
            return parser(file.read(MAX_IMAGE_BYTES))
    return _other(file)


def _markup_hits(texts: list[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
    for where, text in texts:
        match = _MARKUP.search(text)
        if match is not None:
            yield where, match.group().decode("latin-1").lower()


def _hidden_in(content: bytes, where: str) -> list[Finding]:
    """Executables and archives in what a compressed chunk inflates to (invisible to the raw-byte search).

    The messages use fixed words (``IN_CHUNK``, "<chunk> (decompressed)") that the French report maps; the
    chunk and the kind go in the evidence."""
    found: list[Finding] = []
    kind = executable_kind(content[:4096])
    if kind is not None:
        found.append(rules.finding("ssi.executable", kind=kind, where=IN_CHUNK, evidence=f"{kind}, {where}"))
    families: set[str] = set()
    for hidden, offset in hidden_formats(content, 1):  # base 1: a format at the chunk's start counts too
        if hidden.family in families or (kind is not None and hidden.executable):
            continue
        families.add(hidden.family)
        found.append(
            rules.finding("ssi.polyglot", inner=hidden.kind, outer=f"{where} (decompressed)", offset=str(offset - 1))
        )
        if hidden.executable:
            found.append(rules.finding("ssi.executable", kind=hidden.executable_kind, where=IN_CHUNK,
                                       evidence=f"{hidden.executable_kind}, {where}"))
    return found


class ImagesValidator(Validator):
    name: ClassVar[str] = "ssi-image"
    rules: ClassVar[tuple[str, ...]] = (
        "ssi.image.bomb",
        "ssi.image.trailing-data",
        "ssi.image.markup",
        "ssi.image.unparsed",
        "ssi.image.chunk-bomb",
        "ssi.executable",
        "ssi.polyglot",
    )
    reads_settings: ClassVar[tuple[str, ...]] = ("image_max_megapixels",)
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 60.0

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.max_megapixels = EngineSettings.coerce(settings).image_max_megapixels

    def applies_to(self, file: ProofFile) -> bool:
        if file.media_type.startswith("image/") and file.media_type != "image/svg+xml":
            return True
        return any(file.head(16).startswith(magic) for magic, _ in _PARSERS)

    @staticmethod
    def _unparsed(reason: str, detail: str | None = None) -> CheckResult:
        return CheckResult(
            findings=[rules.finding("ssi.image.unparsed", reason=reason)],
            state=CheckState.PARTIAL,
            detail=detail or reason,
        )

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        try:
            facts = image_facts(file)
        except (_Malformed, struct.error, IndexError) as exc:
            # A broken structure is also the filetype check's call (format.*); here it means the end
            # marker and metadata were not reached, which the verdict must say.
            return self._unparsed(str(exc) if isinstance(exc, _Malformed) else "truncated structure")
        except Exception as exc:  # Pillow's header parsers raise many types on hostile input
            if type(exc).__name__ == "DecompressionBombError":
                return CheckResult(
                    findings=[
                        rules.finding(
                            "ssi.image.bomb",
                            width="?",
                            height="?",
                            megapixels="over twice Pillow's limit",
                            limit=f"{self.max_megapixels:g}",
                        )
                    ]
                )
            return self._unparsed("header not readable", f"header not readable, {type(exc).__name__}")
        findings: list[Finding] = []
        megapixels = facts.width * facts.height * max(1, facts.frames) / 1e6
        if megapixels > self.max_megapixels:
            findings.append(
                rules.finding(
                    "ssi.image.bomb",
                    width=str(facts.width),
                    height=str(facts.height),
                    megapixels=f"{megapixels:.0f}",
                    limit=f"{self.max_megapixels:g}",
                    evidence=f"{facts.width}x{facts.height}x{facts.frames}",
                )
            )
        if facts.end is not None and facts.end < file.size:
            with file.open() as stream:
                stream.seek(facts.end)
                tail = stream.read(MAX_PADDING + 1)
            if len(tail) > MAX_PADDING or tail.strip(b"\0\r\n ") != b"":
                findings.append(
                    rules.finding(
                        "ssi.image.trailing-data", count=str(file.size - facts.end), marker=facts.marker
                    )
                )
        for where, pattern in sorted(set(_markup_hits(facts.texts))):
            findings.append(rules.finding("ssi.image.markup", chunk=where, pattern=pattern, evidence=pattern))
        for where in sorted(set(facts.bombs)):
            findings.append(rules.finding("ssi.image.chunk-bomb", chunk=where, limit=str(MAX_CHUNK_INFLATE)))
        for where, content in facts.inflated:
            ctx.check_time()
            findings += _hidden_in(content, where)
        return CheckResult(findings=findings)
