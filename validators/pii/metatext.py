"""Text an image carries beside its pixels: comments, PNG text chunks, EXIF, XMP, IPTC, ICC descriptions,
and whatever follows the image's end marker.

A screenshot tool, a photo editor or a publisher's script may write the patient's identity into the
image's metadata, where no viewer shows it and OCR cannot see it. Each block is read as text of its
own (a field: words of one block do not describe a number of another): UTF-8 text as it is, XMP with
its tags read as line breaks, binary blocks (EXIF, IPTC, ICC) as their runs of printable characters,
8-bit and UTF-16 in either byte order (EXIF's UserComment and Windows' XP* tags are UTF-16).

Bounded: the image structure is walked by ``validators.imagefacts`` (compressed chunks inflated under a
bound), each block is cut at ``MAX_BLOCK_BYTES``, the blocks of one image at ``MAX_BLOCKS``. An image
whose structure cannot be walked has the ASCII and UTF-16 runs of its first ``MAX_RAW_BYTES`` read
instead (so has the data after an end marker), and its compressed metadata is reported as not inspected.
"""

from __future__ import annotations

import io
import re
import struct
import warnings

from validators import imagefacts
from validators.model import Location
from validators.pii.htmltext import html_text_lines
from validators.pii.segments import Extraction, TextSegment

MAX_BLOCK_BYTES = 4 * 1024 * 1024
MAX_BLOCKS = 200
MAX_RAW_BYTES = 16 * 1024 * 1024  # an unwalkable image's bytes (or its trailing data) read for printable runs
MIN_RUN = 4
MIN_RAW_RUN = 6  # in pixel data, 8-bit runs are noise: ASCII runs this long only
AFTER_END = "data after the image's end marker"

_RUN_8BIT = re.compile(rb"[\t\x20-\x7e\x80-\xff]{%d,}" % MIN_RUN)
_RUN_UTF16LE = re.compile(rb"(?:[\t\x20-\x7e\xa0-\xff]\x00){%d,}" % MIN_RUN)
_RUN_UTF16BE = re.compile(rb"(?:\x00[\t\x20-\x7e\xa0-\xff]){%d,}" % MIN_RUN)
_RUN_ASCII = re.compile(rb"[\t\x20-\x7e]{%d,}" % MIN_RAW_RUN)
_XML_START = re.compile(r"^\s*(?:<\?xpacket|<\?xml|<x:xmpmeta|<rdf:)", re.IGNORECASE)


def _printable_share(text: str) -> float:
    if not text:
        return 0.0
    return sum(1 for c in text if c.isprintable() or c in "\t\r\n") / len(text)


def _raw_runs(data: bytes) -> str:
    """The ASCII and UTF-16 runs of bytes that are mostly pixels (an image that could not be walked, the
    data after its end marker): 8-bit runs there would be noise."""
    runs = [m.group().decode("ascii") for m in _RUN_ASCII.finditer(data)]
    runs += [m.group().decode("utf-16-le") for m in _RUN_UTF16LE.finditer(data)]
    return "\n".join(run.strip() for run in runs if run.strip())


def _runs(blob: bytes) -> list[str]:
    out: list[str] = []
    for found in _RUN_8BIT.finditer(blob):
        raw = found.group()
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(raw.decode("latin-1"))
    out += [m.group().decode("utf-16-le") for m in _RUN_UTF16LE.finditer(blob)]
    out += [m.group().decode("utf-16-be") for m in _RUN_UTF16BE.finditer(blob)]
    return [run.strip() for run in out if run.strip()]


def blob_text(blob: bytes) -> str:
    """The readable text of one metadata block (see the module's docstring)."""
    blob = blob[:MAX_BLOCK_BYTES]
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and b"\x00" not in blob and _printable_share(text) > 0.95:
        return html_text_lines(text) if _XML_START.match(text) else text
    return "\n".join(_runs(blob))


def _segment(where: str, blob: bytes) -> TextSegment | None:
    text = blob_text(blob)
    if not text.strip():
        return None
    return TextSegment(text, Location(entry=where), fields=True)


def _pillow_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """Text metadata of a format the walker does not know (TIFF...), from Pillow's header parser only."""
    from PIL import Image

    blocks: list[tuple[str, bytes]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as image:  # lazy: reads the header and tags, decodes no pixel
            label = f"{image.format or 'image'} metadata"
            for key, value in list(image.info.items())[:MAX_BLOCKS]:
                if isinstance(value, str):
                    blocks.append((label, f"{key} {value}".encode()))
                elif isinstance(value, bytes):
                    blocks.append((label, value))
            for _tag, value in list(image.getexif().items())[:MAX_BLOCKS]:
                if isinstance(value, str):
                    blocks.append((f"{label} (EXIF)", value.encode()))
                elif isinstance(value, bytes):
                    blocks.append((f"{label} (EXIF)", value))
    return blocks


def image_metadata(data: bytes) -> Extraction:
    """The text blocks of an image's metadata, one segment each; what could not be read, said."""
    out = Extraction()
    try:
        facts = imagefacts.parse(data)
    except (imagefacts.Malformed, struct.error, IndexError):
        out.segments.append(TextSegment(_raw_runs(data[:MAX_RAW_BYTES]), Location(entry="image bytes"), fields=True))
        out.not_inspected.append("the image's compressed metadata (its structure could not be walked; "
                                 "its uncompressed text was read)")
        return out
    if facts is None:
        try:
            blocks = _pillow_blocks(data)
        except Exception:  # Pillow's header parsers raise many types on hostile input
            blocks = []
            out.not_inspected.append("the image's metadata (its header could not be read)")
    else:
        blocks = list(facts.texts)
        if facts.bombs:
            out.not_inspected.append(f"{len(facts.bombs)} metadata chunk(s) inflating past the size limit")
        if facts.end is not None and facts.end < len(data):
            tail = _raw_runs(data[facts.end : facts.end + MAX_RAW_BYTES])
            if tail:
                out.segments.append(TextSegment(tail, Location(entry=AFTER_END), fields=True))
    if len(blocks) > MAX_BLOCKS:
        out.not_inspected.append(f"metadata blocks after the first {MAX_BLOCKS}")
    for where, blob in blocks[:MAX_BLOCKS]:
        found = _segment(where, blob)
        if found is not None:
            out.segments.append(found)
    return out


def merge(into: Extraction, extra: Extraction) -> Extraction:
    """``into`` with the segments and gaps of ``extra`` added (the OCR reading keeps its own ``not_run``)."""
    into.segments.extend(extra.segments)
    into.not_inspected.extend(extra.not_inspected)
    return into


__all__ = ["AFTER_END", "blob_text", "image_metadata", "merge"]
