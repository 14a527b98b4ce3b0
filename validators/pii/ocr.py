"""Screenshots to text with Tesseract (French data), run as a subprocess with a time limit.

Before OCR the capture is turned into dark text on white whatever its theme and brought to the text
size Tesseract reads best (``page.py``, ``ink.py``). Words come back with their boxes (TSV) and become
one segment (``ocrtext.py``), and a second one read column by column where the screen has columns.
A second look, in one more Tesseract call, reads again, larger, the lines holding a NIR-long digit
run and the text-like areas the first pass left empty. What could not be read is said: an image too
small, too blurry or read with too little confidence as a whole, and each text-like area where OCR
found no confident word, with its box.
"""

from __future__ import annotations

import io
import logging
import statistics
import subprocess
import time
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageFilter

from validators.model import NO_LOCATION, Location
from validators.pii import barcodes, ink, ocrturn
from validators.pii.ocrtext import Word, column_lines, digits_of, nir_like_lines, segment_of
from validators.pii.page import REREAD_MAX_SCALE, TARGET_HEIGHT, Page, crop_for_reread, prepare
from validators.pii.segments import Extraction
from validators.pii.tesseract import OcrUnavailableError, read_crops, read_words, tesseract_problem

MAX_PIXELS = 40_000_000  # above this (HiDPI 8K is 33 MP) the capture is not decoded for OCR
MIN_WIDTH, MIN_HEIGHT = 120, 24
MIN_SHARPNESS = 0.8  # see sharpness(): 1.0-1.4 for crisp or JPEG'd text, under 0.8 once OCR fails
MIN_TILE_CONTRAST = 60
MIN_MEAN_CONFIDENCE = 45.0
CONFIDENT_READING = 75.0  # a blur measure is overruled by a reading this confident
CONFIDENT_WORD = 40.0  # a word read at least this confidently counts as reading its area
UNREAD_MIN_CELLS = 6  # an unread text-like area is reported from this width, in line heights
MAX_UNREAD_AREAS = 8  # areas given a second look (the largest first)
MAX_REREAD_LINES = 12
OCR_TIMEOUT = 60.0

log = logging.getLogger(__name__)


def _extrema(gray: Image.Image) -> tuple[int, int]:
    """Darkest and lightest value of a one-band image."""
    low, high = gray.getextrema()
    return int(low), int(high)  # type: ignore[arg-type]


def sharpness(gray: Image.Image, tile: int = 48) -> float | None:
    """How sharp the image's contrasted areas are: median over tiles of (strongest edge / contrast).

    Sharp text scores about 1 or more; text blurred past OCR's reach scores under 0.8. Tiles are used
    so that one crisp title bar does not hide a blurred form. None when nothing is contrasted.
    """
    pixels = np.asarray(gray, dtype=np.int16)
    edges = np.asarray(gray.filter(ImageFilter.FIND_EDGES), dtype=np.int16)
    rows, columns = pixels.shape[0] // tile, pixels.shape[1] // tile
    if rows == 0 or columns == 0:
        return None

    def tiles(a: np.ndarray) -> np.ndarray:
        return a[: rows * tile, : columns * tile].reshape(rows, tile, columns, tile)

    contrast = tiles(pixels).max(axis=(1, 3)) - tiles(pixels).min(axis=(1, 3))
    strongest = tiles(edges).max(axis=(1, 3))
    contrasted = contrast > MIN_TILE_CONTRAST
    if not contrasted.any():
        return None
    return float(statistics.median((strongest[contrasted] / contrast[contrasted]).tolist()))


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
            if image.format != "JPEG":
                out.not_run = f"the image ({width}x{height} pixels) is too large to be read for personal data"
                return out
            # A JPEG decodes straight to a reduced size: big photos of screens stay readable.
            image.draft("L", (width // 2, height // 2))
            if image.size[0] * image.size[1] > MAX_PIXELS:
                out.not_run = f"the image ({width}x{height} pixels) is too large to be read for personal data"
                return out
        if getattr(image, "n_frames", 1) > 1:
            out.not_inspected.append("frames after the first of an animated image")
        gray = image.convert("L")
    except Image.DecompressionBombError:
        out.not_run = "the image declares more pixels than can be decoded safely"
        return out
    except Exception as exc:  # truncated or hostile image data
        log.info("image not decoded for OCR: %s", type(exc).__name__)
        out.not_run = "the image could not be decoded"
        return out
    started = time.monotonic()
    read = _ocr_gray(gray, base, timeout, out)
    if read.not_run is None and ocrturn.read_poorly(read):
        # Text-like areas left unread: the picture may be on its side (a photo, a scan, a pasted screenshot).
        left = timeout - (time.monotonic() - started)
        read = ocrturn.read_turned(gray, read, lambda turned, t: _ocr_gray(turned, base, t, Extraction()), left)
    # What its DataMatrix or QR codes encode, from the same decoded picture (in the file's pixels).
    codes, problem = barcodes.code_segments(gray, base, gray.width / width)
    read.segments.extend(codes)
    if problem:
        read.not_inspected.append(problem)
    return read


@dataclass(frozen=True)
class Placement:
    """Where an OCR'd image sits in the file's own pixels: a crop's corner (in the image's pixels,
    before ``factor``) and the image's pixels per file pixel (a video frame decoded smaller)."""

    origin: tuple[int, int] = (0, 0)
    factor: float = 1.0

    def box(self, left: float, top: float, width: float, height: float) -> tuple[int, int, int, int]:
        f = self.factor
        return (round((self.origin[0] + left) / f), round((self.origin[1] + top) / f), max(1, round(width / f)),
                max(1, round(height / f)))

    def offset(self, extra: tuple[int, int] = (0, 0)) -> tuple[int, int]:
        return (round((self.origin[0] + extra[0]) / self.factor), round((self.origin[1] + extra[1]) / self.factor))


def ocr_frame(
    image: Image.Image, base: Location, timeout: float = OCR_TIMEOUT, placement: Placement | None = None
) -> Extraction:
    """OCR an already decoded image (a video frame, or a band of one placed by ``placement``)."""
    problem = tesseract_problem()
    if problem is not None:
        return Extraction(not_run=problem)
    return _ocr_gray(image.convert("L"), base, timeout, Extraction(), placement or Placement())


def _ocr_gray(
    gray: Image.Image, base: Location, timeout: float, out: Extraction, placement: Placement | None = None
) -> Extraction:
    placement = placement or Placement()
    width, height = gray.size
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        out.not_readable.append(f"the image is only {width}x{height} pixels")
        return out
    low, high = _extrema(gray)
    if high - low < 16:
        return out  # a flat image (blank screen): nothing to read, nothing hidden
    deadline = time.monotonic() + timeout
    page = prepare(gray)
    try:
        words = read_words(page.image, 11, timeout)
        second = _second_look(page, words, deadline)
    except subprocess.TimeoutExpired:
        out.not_readable.append(f"OCR did not finish within {timeout:.0f} s")
        return out
    except (OSError, OcrUnavailableError) as exc:
        out.not_run = f"OCR failed ({type(exc).__name__})"
        return out
    confident = [w for w in words if w.confidence >= 0]
    mean = sum(w.confidence for w in confident) / len(confident) if confident else 0.0
    out.confidence = mean
    sharp = sharpness(gray)
    if sharp is not None and sharp < MIN_SHARPNESS and (not confident or mean < CONFIDENT_READING):
        out.not_readable.append("the image is too blurry to read reliably")
    elif confident and mean < MIN_MEAN_CONFIDENCE:
        out.not_readable.append(f"text was read with low confidence ({mean:.0f}/100)")
    else:
        out.unread_areas.extend(replace(base, region=placement.box(*box)) for box in second.unread)
    factor = placement.factor
    out.segments.append(segment_of(words, page.scale * factor, base, placement.offset()))
    columns = column_lines(words)
    if columns is not None:  # a sidebar or panes: also read column by column
        out.segments.append(segment_of(words, page.scale * factor, base, placement.offset(), lines=columns))
    out.segments.extend(
        segment_of(extra, scale * factor, base, placement.offset(offset)) for extra, scale, offset in second.readings
    )
    return out


@dataclass
class SecondLook:
    readings: list[tuple[list[Word], float, tuple[int, int]]] = field(default_factory=list)  # words, scale, offset
    unread: list[tuple[int, int, int, int]] = field(default_factory=list)  # source pixels


def _second_look(page: Page, words: list[Word], deadline: float) -> SecondLook:
    """Read again, in one call and larger, the lines that hold a NIR-long digit run and the text-like
    areas the first pass left empty; areas still without a confident word are reported as unread."""
    lines = nir_like_lines(words)[:MAX_REREAD_LINES]
    height, width = page.source.shape
    margin = round((page.line_height or TARGET_HEIGHT) * 0.6)
    to_source = 1 / page.scale
    boxes = [
        _padded(min(w.left for w in line) * to_source, min(w.top for w in line) * to_source,
                max(w.right for w in line) * to_source, max(w.bottom for w in line) * to_source, margin, width, height)
        for line in lines
    ]
    areas = _unread_areas(page, words)
    boxes += [_padded(x, y, x + w, y + h, margin, width, height) for x, y, w, h in areas]
    found = SecondLook()
    if not boxes:
        return found
    crops = [crop_for_reread(page, box) for box in boxes]
    gap = round((page.line_height or TARGET_HEIGHT) * REREAD_MAX_SCALE)
    readings = read_crops([image for image, _ in crops], gap, max(1.0, deadline - time.monotonic()))
    placed = [
        (reading, factor, (box[0], box[1]))
        for reading, (_, factor), box in zip(readings, crops, boxes, strict=True)
    ]
    for line, (reading, factor, offset) in zip(lines, placed[: len(lines)], strict=True):
        if reading and digits_of(reading) != digits_of(line):
            found.readings.append((reading, factor, offset))
    for area, (reading, factor, offset) in zip(areas, placed[len(lines) :], strict=True):
        if any(w.confidence >= CONFIDENT_WORD and any(c.isalnum() for c in w.text) for w in reading):
            found.readings.append((reading, factor, offset))
        else:
            found.unread.append(area)
    return found


def _bridged(cells: np.ndarray) -> np.ndarray:
    """Gaps of up to two cells between text cells on a row filled (a closing along the rows)."""
    grown = ink.running(cells.view(np.uint8), 5, 1, np.maximum)
    return ink.running(grown, 5, 1, np.minimum).view(np.bool_) | cells


def _padded(
    left: float, top: float, right: float, bottom: float, margin: int, width: int, height: int
) -> tuple[int, int, int, int]:
    return (max(0, int(left) - margin), max(0, int(top) - margin), min(width, int(right) + margin),
            min(height, int(bottom) + margin))


def _unread_areas(page: Page, words: list[Word]) -> list[tuple[int, int, int, int]]:
    """Boxes (source pixels) of text-like areas where the first pass found no confident word."""
    if page.line_height is None:
        return []
    cell = max(6, round(page.line_height * page.work_scale))
    row_unit = max(2, cell // 2)
    cells = ink.text_cells(page.text_mask, cell)
    rows, columns = cells.shape
    to_work = page.work_scale / page.scale
    for word in words:
        if word.confidence < CONFIDENT_WORD or not word.text.strip():
            continue
        left = int(word.left * to_work / cell)
        right = int(word.right * to_work / cell)
        top = int(word.top * to_work / row_unit)
        bottom = int(word.bottom * to_work / row_unit)
        cells[max(0, top - 1) : min(rows, bottom + 2), max(0, left) : min(columns, right + 1)] = False
    # The spaces between words (and between a NIR's digit groups) are empty cells: bridged, so that a
    # line of words is one area.
    bridged = _bridged(cells)
    # An area less than a line tall is a border or an underline's remains, not a line of text.
    lines = [a for a in ink.areas(bridged, UNREAD_MIN_CELLS) if a[3] >= 2]
    found = sorted(lines, key=lambda a: -a[2] * a[3])[:MAX_UNREAD_AREAS]
    scale = page.work_scale
    return [(round(c * cell / scale), round(r * row_unit / scale), round(w * cell / scale), round(h * row_unit / scale))
            for c, r, w, h in found]

__all__ = [
    "OcrUnavailableError", "Page", "Placement", "ocr_frame", "ocr_image", "prepare", "sharpness", "tesseract_problem",
]
