"""Screenshots to text with Tesseract (French data), run as a subprocess with a time limit.

Before OCR the capture is turned into dark text on white whatever its theme (``ink.py``: dark
themes, coloured banners and selected rows with light text, grey labels), and brought to the text
size Tesseract reads best, measured on the capture itself: small text is enlarged, HiDPI captures are
reduced instead of enlarged further. Words come back with their boxes (TSV) and become one segment
(``ocrtext.py``). What could not be read is said: an image too small, too blurry or read with too
little confidence as a whole, and each text-like area where OCR found no confident word, with its box.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import time
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageFilter

from validators.model import NO_LOCATION, Location
from validators.pii import ink
from validators.pii.ocrtext import Word, digits_of, nir_like_lines, segment_of
from validators.pii.segments import Extraction
from validators.pii.tesseract import OcrUnavailableError, read_crops, read_words, tesseract_problem

MAX_PIXELS = 40_000_000  # above this (HiDPI 8K is 33 MP) the capture is not decoded for OCR
MIN_WIDTH, MIN_HEIGHT = 120, 24
STROKE_WINDOW = 5  # wider than a stroke of 1x text (HiDPI captures are halved first)
TARGET_HEIGHT = 22.0  # height of a line of ink (see ink.line_height) that Tesseract reads best
MAX_SCALE = 3.0
MIN_SHARPNESS = 0.8  # see sharpness(): 1.0-1.4 for crisp or JPEG'd text, under 0.8 once OCR fails
MIN_TILE_CONTRAST = 60
MIN_MEAN_CONFIDENCE = 45.0
CONFIDENT_READING = 75.0  # a blur measure is overruled by a reading this confident
CONFIDENT_WORD = 40.0  # a word read at least this confidently counts as reading its area
UNREAD_MIN_CELLS = 6  # an unread text-like area is reported from this width, in line heights
MAX_UNREAD_AREAS = 8  # areas given a second look (the largest first)
MAX_REREAD_LINES = 12
OCR_TIMEOUT = 60.0


@dataclass
class Page:
    """A capture prepared for OCR: dark text on white, at the scale Tesseract reads best."""

    image: Image.Image
    scale: float  # OCR'd image pixels per source pixel
    line_height: float | None  # in source pixels
    text_mask: np.ndarray = field(repr=False)  # where the ink is, in the working image's pixels
    work_scale: float  # working image pixels per source pixel (0.5 for a halved HiDPI capture)


def prepare(gray: Image.Image) -> Page:
    """Normalise the theme away and choose the OCR scale from the measured height of the text."""
    work = np.asarray(gray, dtype=np.uint8)
    work_scale = 1.0
    ink_amplitude = ink.ink_map(work, STROKE_WINDOW)
    height = ink.line_height(ink_amplitude > ink.INK_FLOOR)
    # HiDPI: strokes as wide as the filter window and text already large; half the pixels read as well.
    while height is not None and height >= 2 * TARGET_HEIGHT and min(work.shape) >= 2 * MIN_HEIGHT:
        rows, columns = work.shape[0] // 2 * 2, work.shape[1] // 2 * 2
        work = work[:rows, :columns].reshape(rows // 2, 2, columns // 2, 2).mean(axis=(1, 3)).astype(np.uint8)
        work_scale /= 2
        ink_amplitude = ink.ink_map(work, STROKE_WINDOW)
        height = ink.line_height(ink_amplitude > ink.INK_FLOOR)
    normalised = ink.normalised(ink_amplitude, height or TARGET_HEIGHT / 2)
    text_mask = normalised < 128
    if height is not None:
        normalised = ink.rules_removed(normalised, height)
    if height is None:  # no line structure measured: the old rule of thumb
        enlarge = 2.0 if max(work.shape) < 2000 else 1.0
    else:
        enlarge = min(MAX_SCALE, max(1.0, round(TARGET_HEIGHT / height * 2) / 2))
    image = Image.fromarray(normalised)
    if enlarge != 1.0:
        image = image.resize((round(image.width * enlarge), round(image.height * enlarge)), Image.Resampling.BILINEAR)
    line = height / work_scale if height is not None else None
    return Page(image, enlarge * work_scale, line, text_mask, work_scale)


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
        out.not_run = f"the image could not be decoded ({type(exc).__name__})"
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
    sharp = sharpness(gray)
    if sharp is not None and sharp < MIN_SHARPNESS and (not confident or mean < CONFIDENT_READING):
        out.not_readable.append("the image is too blurry to read reliably")
    elif confident and mean < MIN_MEAN_CONFIDENCE:
        out.not_readable.append(f"text was read with low confidence ({mean:.0f}/100)")
    else:
        out.unread_areas.extend(replace(base, region=box) for box in second.unread)
    out.segments.append(segment_of(words, page.scale, base))
    out.segments.extend(segment_of(extra, page.scale, base) for extra in second.readings)
    return out


@dataclass
class SecondLook:
    readings: list[list[Word]] = field(default_factory=list)  # words read anew (page-image pixels)
    unread: list[tuple[int, int, int, int]] = field(default_factory=list)  # source pixels


def _second_look(page: Page, words: list[Word], deadline: float) -> SecondLook:
    """Read again, in one call, the lines that hold a NIR-long digit run and the text-like areas the
    first pass left empty; areas still without a confident word are reported as unread."""
    lines = nir_like_lines(words)[:MAX_REREAD_LINES]
    margin = round((page.line_height or TARGET_HEIGHT) * page.scale * 0.6)
    boxes = [_padded(min(w.left for w in line), min(w.top for w in line), max(w.right for w in line),
                     max(w.bottom for w in line), margin, page.image.size) for line in lines]
    areas = _unread_areas(page, words)
    to_page = page.scale
    boxes += [_padded(round(x * to_page), round(y * to_page), round((x + w) * to_page), round((y + h) * to_page),
                      margin, page.image.size) for x, y, w, h in areas]
    found = SecondLook()
    if not boxes:
        return found
    readings = read_crops(page.image, boxes, margin * 2, max(1.0, deadline - time.monotonic()))
    for line, reading in zip(lines, readings[: len(lines)], strict=True):
        if reading and digits_of(reading) != digits_of(line):
            found.readings.append(reading)
    for area, reading in zip(areas, readings[len(lines) :], strict=True):
        confident = [w for w in reading if w.confidence >= CONFIDENT_WORD and any(c.isalnum() for c in w.text)]
        if confident:
            found.readings.append(reading)
        else:
            found.unread.append(area)
    return found


def _padded(
    left: int, top: int, right: int, bottom: int, margin: int, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    return (max(0, left - margin), max(0, top - margin), min(size[0], right + margin), min(size[1], bottom + margin))


def _unread_areas(page: Page, words: list[Word]) -> list[tuple[int, int, int, int]]:
    """Boxes (source pixels) of text-like areas where the first pass found no confident word."""
    if page.line_height is None:
        return []
    cell = max(6, round(page.line_height * page.work_scale))
    cells = ink.text_cells(page.text_mask, cell)
    rows, columns = cells.shape
    to_work = page.work_scale / page.scale
    for word in words:
        if word.confidence < CONFIDENT_WORD or not word.text.strip():
            continue
        # Cells whose centre falls in the word's box, widened by half a cell on each side.
        left = int((word.left * to_work) / cell)
        right = int((word.right * to_work) / cell + 0.5)
        top = int((word.top * to_work) / cell)
        bottom = int((word.bottom * to_work) / cell + 0.5)
        cells[max(0, top) : min(rows, bottom + 1), max(0, left) : min(columns, right + 1)] = False
    found = sorted(ink.areas(cells, UNREAD_MIN_CELLS), key=lambda a: -a[2] * a[3])[:MAX_UNREAD_AREAS]
    unit = cell / page.work_scale
    return [(round(c * unit), round(r * unit), round(w * unit), round(h * unit)) for c, r, w, h in found]


__all__ = ["OcrUnavailableError", "Page", "ocr_frame", "ocr_image", "prepare", "sharpness", "tesseract_problem"]
