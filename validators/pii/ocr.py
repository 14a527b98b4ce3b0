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
NATIVE_MAX_PIXELS = 16_000_000  # prepared at full size up to this (~15 bytes a pixel), halved beyond
MIN_WIDTH, MIN_HEIGHT = 120, 24
STROKE_WINDOW = 5  # wider than a stroke of 1x text (HiDPI captures are halved first)
TARGET_HEIGHT = 22.0  # height of a line of ink (see ink.line_height) that Tesseract reads best
MAX_SCALE = 3.0
HALVE_ABOVE_PIXELS = 4_500_000  # larger captures are tried at half size first (HiDPI)
MIN_HALVED_HEIGHT = 9.0  # ... and kept halved if their text is still this tall
MAX_OCR_PIXELS = 10_000_000  # a 1920x1080 capture enlarged 2x is 8.3 MP
MIN_SHARPNESS = 0.8  # see sharpness(): 1.0-1.4 for crisp or JPEG'd text, under 0.8 once OCR fails
MIN_TILE_CONTRAST = 60
MIN_MEAN_CONFIDENCE = 45.0
CONFIDENT_READING = 75.0  # a blur measure is overruled by a reading this confident
CONFIDENT_WORD = 40.0  # a word read at least this confidently counts as reading its area
UNREAD_MIN_CELLS = 6  # an unread text-like area is reported from this width, in line heights
MAX_UNREAD_AREAS = 8  # areas given a second look (the largest first)
MAX_REREAD_LINES = 12
REREAD_HEIGHT = 32.0  # second looks are taken larger than the page: another view of the same digits
REREAD_MAX_SCALE = 4.0
OCR_TIMEOUT = 60.0


@dataclass
class Page:
    """A capture prepared for OCR: dark text on white, at the scale Tesseract reads best."""

    image: Image.Image
    scale: float  # OCR'd image pixels per source pixel
    line_height: float | None  # in source pixels
    text_mask: np.ndarray = field(repr=False)  # where the ink is, in the working image's pixels
    work_scale: float  # working image pixels per source pixel (0.5 for a halved HiDPI capture)
    source: np.ndarray = field(repr=False)  # the capture in grey, for second looks at native resolution
    stroke_window: int  # the ink filter window used on the working image


def prepare(gray: Image.Image) -> Page:
    """Normalise the theme away and choose the OCR scale from the measured height of the text."""
    work = np.asarray(gray, dtype=np.uint8)
    work_scale = 1.0
    inked = None
    # HiDPI: text large enough once halved reads as well from a quarter of the pixels, at a quarter of
    # the cost; measured on the halved copy first, since preparing the full capture is what costs.
    while work.size > HALVE_ABOVE_PIXELS or (inked is not None and (inked[2] or 0) >= 2 * TARGET_HEIGHT):
        half = _halved(work)
        halved_inked = _inked(half)
        too_small = halved_inked[2] is None or halved_inked[2] < MIN_HALVED_HEIGHT
        if too_small and work.size <= NATIVE_MAX_PIXELS:
            break  # a 1x capture of a large screen: its text needs every pixel
        # Over NATIVE_MAX_PIXELS the halved copy is read whatever its text (memory is bounded first).
        work, work_scale, inked = half, work_scale / 2, halved_inked
    window, ink_amplitude, height = inked if inked is not None else _inked(work)
    normalised = ink.normalised(ink_amplitude, height or TARGET_HEIGHT / 2)
    text_mask = normalised < 128
    if height is not None:
        normalised = ink.rules_removed(normalised, height)
    if height is None:  # no line structure measured: the old rule of thumb
        enlarge = 2.0 if max(work.shape) < 2000 else 1.0
    else:
        enlarge = min(MAX_SCALE, max(1.0, round(TARGET_HEIGHT / height * 2) / 2))
    # Tesseract's layout analysis grows with the pixels: a large capture is not enlarged past the cap.
    while enlarge > 1.0 and work.size * enlarge * enlarge > MAX_OCR_PIXELS:
        enlarge -= 0.5
    line = height / work_scale if height is not None else None
    return Page(_enlarged(normalised, enlarge), enlarge * work_scale, line, text_mask, work_scale,
                np.asarray(gray, dtype=np.uint8), window)


def _halved(work: np.ndarray) -> np.ndarray:
    rows, columns = work.shape[0] // 2 * 2, work.shape[1] // 2 * 2
    return work[:rows, :columns].reshape(rows // 2, 2, columns // 2, 2).mean(axis=(1, 3)).astype(np.uint8)


def _inked(work: np.ndarray) -> tuple[int, np.ndarray, float | None]:
    """The ink of a page with a filter window wider than its strokes (bold or HiDPI text has wider
    strokes than the default window: their middles would be lost), and its line height."""
    window = STROKE_WINDOW
    amplitude = ink.ink_map(work, window)
    stroke = ink.stroke_width(amplitude > ink.INK_FLOOR)
    if stroke is not None and stroke * 2 + 1 > window:
        window = int(stroke * 2 + 3) | 1
        amplitude = ink.ink_map(work, window)
    return window, amplitude, ink.line_height(amplitude > ink.INK_FLOOR)


def _enlarged(page: np.ndarray, factor: float) -> Image.Image:
    image = Image.fromarray(page)
    if factor == 1.0:
        return image
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BILINEAR)


def _crop_for_reread(page: Page, box: tuple[int, int, int, int]) -> tuple[Image.Image, float]:
    """A source area prepared again on its own, larger than the page was: the image and its scale."""
    left, top, right, bottom = box
    source = page.source[top:bottom, left:right]
    line = page.line_height or TARGET_HEIGHT / 2
    stroke = page.stroke_window * max(1, round(1 / page.work_scale)) | 1  # strokes at source resolution
    amplitude = ink.ink_map(source, stroke)
    prepared = ink.rules_removed(ink.normalised(amplitude, line), line)
    factor = min(REREAD_MAX_SCALE, max(1.0, round(REREAD_HEIGHT / line * 2) / 2))
    return _enlarged(prepared, factor), factor


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
    sharp = sharpness(gray)
    if sharp is not None and sharp < MIN_SHARPNESS and (not confident or mean < CONFIDENT_READING):
        out.not_readable.append("the image is too blurry to read reliably")
    elif confident and mean < MIN_MEAN_CONFIDENCE:
        out.not_readable.append(f"text was read with low confidence ({mean:.0f}/100)")
    else:
        out.unread_areas.extend(replace(base, region=placement.box(*box)) for box in second.unread)
    factor = placement.factor
    out.segments.append(segment_of(words, page.scale * factor, base, placement.offset()))
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
    crops = [_crop_for_reread(page, box) for box in boxes]
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
