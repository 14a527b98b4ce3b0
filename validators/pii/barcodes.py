"""2D codes and barcodes in pictures: what a DataMatrix (the INS DataMatrix of a document, a 2D-Doc), a
QR code, a PDF417 or a linear barcode encodes is read as text, since OCR sees only squares.

Decoded by zxing-cpp (no network, no file: a picture in memory, bounded by its pixels). Each code is a
field of its own, located by its region. Machine-written fields are often glued together (a 2D-Doc
field identifier followed by its value, with no separator): so every 15-digit window of a longer run of
digits is also offered to the scanner, on a line of its own, as a NIR candidate.
"""

from __future__ import annotations

import re
from typing import Any

from validators.model import Location
from validators.pii.segments import TextSegment

MAX_CODES = 50
MAX_CODE_CHARS = 64 * 1024
_SEPARATORS = re.compile(r"<GS>|<RS>|<US>|<EOT>|[\x1c-\x1f\x04]")
_LONG_RUN = re.compile(r"\d{16,}")
NIR_DIGITS = 15


def _windows(text: str) -> list[str]:
    """Every 15-digit window of the runs of more than 15 digits (the fields glued to their neighbours)."""
    out: list[str] = []
    for run in _LONG_RUN.findall(text[:MAX_CODE_CHARS]):
        out += [run[i : i + NIR_DIGITS] for i in range(min(len(run), 200) - NIR_DIGITS + 1)]
    return list(dict.fromkeys(out))


def _text_of(code: Any) -> str:
    """A code's content as text: its bytes as UTF-8, else Windows-1252 (a code without a declared character
    set is guessed by zxing-cpp, which reads UTF-8 'n°' as Shift_JIS), else zxing-cpp's own text."""
    try:
        raw = bytes(code.bytes)
    except (AttributeError, TypeError):
        return str(code.text or "")
    for codec in ("utf-8", "cp1252"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return str(code.text or "")


def _region(position: Any, factor: float, origin: tuple[int, int]) -> tuple[int, int, int, int] | None:
    try:
        points = [position.top_left, position.top_right, position.bottom_right, position.bottom_left]
        xs, ys = [p.x for p in points], [p.y for p in points]
    except AttributeError:
        return None
    left, top = (origin[0] + min(xs)) / factor, (origin[1] + min(ys)) / factor
    return (round(left), round(top), max(1, round((max(xs) - min(xs)) / factor)),
            max(1, round((max(ys) - min(ys)) / factor)))


def code_segments(image: Any, base: Location, factor: float = 1.0,
                  origin: tuple[int, int] = (0, 0)) -> tuple[list[TextSegment], str | None]:
    """The codes ``image`` (a PIL image) shows, one segment each, and why none could be read if so."""
    try:
        import zxingcpp
    except ImportError:
        return [], "2D codes and barcodes (zxing-cpp is not installed: make setup)"
    try:
        found = zxingcpp.read_barcodes(image)
    except Exception as exc:  # an image zxing-cpp cannot take (mode, size)
        return [], f"2D codes and barcodes ({type(exc).__name__})"
    segments = []
    for code in found[:MAX_CODES]:
        text = _SEPARATORS.sub("\n", _text_of(code))[:MAX_CODE_CHARS]
        if not text.strip():
            continue
        windows = _windows(text)
        if windows:
            text += "\n" + "\n".join(windows)
        kind = str(code.format).replace(" ", "")
        where = Location(entry=f"{kind} code", region=_region(code.position, factor, origin), time=base.time)
        segments.append(TextSegment(text, where, fields=True))
    return segments, None


__all__ = ["code_segments"]
