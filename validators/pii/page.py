"""A capture prepared for OCR: dark text on white whatever its theme, at the size Tesseract reads best.

The size is measured on the capture itself (``ink.line_height``): small text is enlarged, HiDPI
captures are halved rather than enlarged further, and very large captures are halved first so that
memory stays bounded. Bold and HiDPI strokes widen the ink filter's window. Areas worth a second look
are prepared again on their own, from the capture at full resolution and larger than the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from validators.pii import ink

NATIVE_MAX_PIXELS = 16_000_000  # prepared at full size up to this (~15 bytes a pixel), halved beyond
STROKE_WINDOW = 5  # wider than a stroke of 1x text (HiDPI captures are halved first)
TARGET_HEIGHT = 22.0  # height of a line of ink (see ink.line_height) that Tesseract reads best
MAX_SCALE = 3.0
HALVE_ABOVE_PIXELS = 4_500_000  # larger captures are tried at half size first (HiDPI)
MIN_HALVED_HEIGHT = 9.0  # ... and kept halved if their text is still this tall
MAX_OCR_PIXELS = 10_000_000  # a 1920x1080 capture enlarged 2x is 8.3 MP
REREAD_HEIGHT = 32.0  # second looks are taken larger than the page: another view of the same digits
REREAD_MAX_SCALE = 4.0


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


def crop_for_reread(page: Page, box: tuple[int, int, int, int]) -> tuple[Image.Image, float]:
    """A source area prepared again on its own, larger than the page was: the image and its scale."""
    left, top, right, bottom = box
    source = page.source[top:bottom, left:right]
    line = page.line_height or TARGET_HEIGHT / 2
    stroke = page.stroke_window * max(1, round(1 / page.work_scale)) | 1  # strokes at source resolution
    amplitude = ink.ink_map(source, stroke)
    prepared = ink.rules_removed(ink.normalised(amplitude, line), line)
    factor = min(REREAD_MAX_SCALE, max(1.0, round(REREAD_HEIGHT / line * 2) / 2))
    return _enlarged(prepared, factor), factor


__all__ = ["Page", "crop_for_reread", "prepare"]
