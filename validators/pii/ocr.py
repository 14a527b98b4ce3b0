"""Screenshots to text with Tesseract (French data), run as a subprocess with a time limit.

Small text is upscaled before OCR (2x brings 9-10 px text from ~70 % to ~95 % recall, DOMAIN.md §4).
Words come back with their boxes (TSV); lines are rebuilt from the boxes' positions rather than from
Tesseract's layout blocks, so that a NIR printed as seven groups across a form stays one line. An image
too small, too blurry or read with too little confidence is reported as not readable, never as clean.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from functools import cache
from typing import cast

from PIL import Image, ImageFilter

from validators.model import NO_LOCATION, Location
from validators.pii.segments import Anchor, Extraction, TextSegment

MAX_PIXELS = 40_000_000
MIN_WIDTH, MIN_HEIGHT = 120, 24
UPSCALE_BELOW = 2000  # longest side in pixels under which the image is upscaled 2x
MIN_SHARPNESS = 0.8  # see sharpness(): 1.0-1.4 for crisp or JPEG'd text, under 0.8 once OCR fails
MIN_TILE_CONTRAST = 60
MIN_MEAN_CONFIDENCE = 45.0
CONFIDENT_READING = 75.0  # a blur measure is overruled by a reading this confident
OCR_TIMEOUT = 60.0

# Characters Tesseract confuses with digits inside a number group (same length: offsets are kept).
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5"})


class OcrUnavailableError(RuntimeError):
    """Tesseract or its French data is not installed."""


@cache
def tesseract_problem() -> str | None:
    """Why OCR cannot run here, or None."""
    exe = shutil.which("tesseract")
    if exe is None:
        return "tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-fra)"
    try:
        langs = subprocess.run([exe, "--list-langs"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "tesseract does not answer"
    if b"fra" not in langs.stdout.split():
        return "the French OCR data is missing (Debian: tesseract-ocr-fra)"
    return None


@dataclass(frozen=True)
class Word:
    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float


def _tesseract_words(png: bytes, timeout: float) -> list[Word]:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # the machine is shared: one core per OCR process
    done = subprocess.run(
        ["tesseract", "-", "-", "-l", "fra", "--psm", "11", "tsv"],
        input=png,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise OcrUnavailableError(f"tesseract exited with status {done.returncode}")
    words = []
    for row in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        words.append(
            Word(cols[11].strip(), int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]), float(cols[10]))
        )
    return words


def _fix_digits(token: str) -> str:
    """Map letter look-alikes to digits in tokens that are mostly digits (a NIR group read as 'O06')."""
    digits = sum(c.isdigit() for c in token)
    if digits and digits * 2 >= len(token) and len(token) <= 4:
        return token.translate(_DIGIT_LOOKALIKES)
    return token


def _lines(words: list[Word]) -> list[list[Word]]:
    """Words grouped into visual lines by vertical overlap, each line left to right."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.top + w.height / 2, w.left)):
        centre = word.top + word.height / 2
        if lines:
            last = lines[-1]
            ref = sum(w.top + w.height / 2 for w in last) / len(last)
            height = max(w.height for w in last)
            if abs(centre - ref) <= max(4.0, height * 0.5):
                last.append(word)
                continue
        lines.append([word])
    return [sorted(line, key=lambda w: w.left) for line in lines]


def _segment(words: list[Word], scale: float, base: Location) -> TextSegment:
    parts: list[str] = []
    anchors: list[Anchor] = []
    offset = 0
    for line_no, line in enumerate(_lines(words), start=1):
        for index, word in enumerate(line):
            if index:
                parts.append(" ")
                offset += 1
            region = (
                int(word.left / scale),
                int(word.top / scale),
                max(1, int(word.width / scale)),
                max(1, int(word.height / scale)),
            )
            anchors.append(Anchor(offset, Location(line=line_no, region=region)))
            text = _fix_digits(word.text)
            parts.append(text)
            offset += len(text)
        parts.append("\n")
        offset += 1
    return TextSegment("".join(parts), base, anchors, ocr=True)


def _extrema(gray: Image.Image) -> tuple[int, int]:
    """Darkest and lightest value of a one-band image."""
    low, high = cast(tuple[int, int], gray.getextrema())
    return low, high


def sharpness(gray: Image.Image, tile: int = 48) -> float | None:
    """How sharp the image's contrasted areas are: median over tiles of (strongest edge / contrast).

    Sharp text scores about 1 or more; text blurred past OCR's reach scores under 0.8. Tiles are used
    so that one crisp title bar does not hide a blurred form. None when nothing is contrasted.
    """
    edges = gray.filter(ImageFilter.FIND_EDGES)
    ratios = []
    for y in range(0, gray.height - tile + 1, tile):
        for x in range(0, gray.width - tile + 1, tile):
            box = (x, y, x + tile, y + tile)
            low, high = _extrema(gray.crop(box))
            if high - low > MIN_TILE_CONTRAST:
                ratios.append(_extrema(edges.crop(box))[1] / (high - low))
    return statistics.median(ratios) if ratios else None


def ocr_image(data: bytes, base: Location = NO_LOCATION, timeout: float = OCR_TIMEOUT) -> Extraction:
    """OCR one image (its first frame); words become a segment whose anchors carry their regions."""
    problem = tesseract_problem()
    if problem is not None:
        return Extraction(not_run=problem)
    out = Extraction()
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            out.not_inspected.append(f"image of {width}x{height} pixels is over the OCR size limit")
            return out
        if getattr(image, "n_frames", 1) > 1:
            out.not_inspected.append("frames after the first of an animated image")
        gray = image.convert("L")
    except Exception as exc:  # truncated or hostile image data
        out.not_inspected.append(f"the image could not be decoded ({type(exc).__name__})")
        return out
    return _ocr_gray(gray, base, timeout, out)


def ocr_frame(image: Image.Image, base: Location, timeout: float = OCR_TIMEOUT) -> Extraction:
    """OCR an already decoded image (a video frame)."""
    problem = tesseract_problem()
    if problem is not None:
        return Extraction(not_run=problem)
    return _ocr_gray(image.convert("L"), base, timeout, Extraction())


def _ocr_gray(gray: Image.Image, base: Location, timeout: float, out: Extraction) -> Extraction:
    width, height = gray.size
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        out.not_readable.append(f"the image is only {width}x{height} pixels")
        return out
    low, high = _extrema(gray)
    if high - low < 16:
        return out  # a flat image (blank screen): nothing to read, nothing hidden
    sharp = sharpness(gray)
    scale = 2.0 if max(width, height) < UPSCALE_BELOW else 1.0
    if scale != 1.0:
        gray = gray.resize((int(width * scale), int(height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    gray.save(buffer, "PNG")
    try:
        words = _tesseract_words(buffer.getvalue(), timeout)
    except subprocess.TimeoutExpired:
        out.not_readable.append(f"OCR did not finish within {timeout:.0f} s")
        return out
    except (OSError, OcrUnavailableError) as exc:
        out.not_run = f"OCR failed ({type(exc).__name__})"
        return out
    confident = [w for w in words if w.confidence >= 0]
    mean = sum(w.confidence for w in confident) / len(confident) if confident else 0.0
    if sharp is not None and sharp < MIN_SHARPNESS and (not confident or mean < CONFIDENT_READING):
        out.not_readable.append("the image is too blurry to read reliably")
    elif confident and mean < MIN_MEAN_CONFIDENCE:
        out.not_readable.append(f"text was read with low confidence ({mean:.0f}/100)")
    out.segments.append(_segment(words, scale, base))
    return out


__all__ = ["OcrUnavailableError", "ocr_frame", "ocr_image", "sharpness", "tesseract_problem"]
