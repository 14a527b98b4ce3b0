"""Pictures turned on their side: a phone photo of a screen, a portrait page scanned in landscape, a
screenshot pasted rotated. OCR reads text the right way up only; a turned picture gives it nothing but
unreadable areas, and a NIR in it would stay a warning ("could not be read").

When a picture is read poorly (areas that look like text left unread, or a low-confidence reading), it is
read again turned by a quarter, three quarters and a half turn; a turn that reads words with a clearly
higher confidence (text upside down is read as letters too, with a low one) replaces the first reading,
its regions turned back into the picture's own pixels.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace

from PIL import Image

from validators.model import Location
from validators.pii.segments import Anchor, Extraction, TextSegment

TURNS = (90, 270, 180)  # PIL's counter-clockwise angles, the likeliest first
MIN_WORDS = 5  # a turned reading must read at least this many words...
MIN_CONFIDENCE = 75.0  # ... with at least this mean confidence...
BETTER_BY = 20.0  # ... and this much more than the reading it replaces
SURE = 88.0  # a turn read this confidently is the right one: the others are not tried
_WORD = re.compile(r"[^\W_]{4,}")

Reader = Callable[[Image.Image, float], Extraction]


def read_poorly(reading: Extraction) -> bool:
    """Whether a reading left text-like areas unread or read with low confidence, and read few words or
    none confidently (a turned picture does; a clear screenshot with an unread icon does not)."""
    gaps = bool(reading.unread_areas) or any("confidence" in why for why in reading.not_readable)
    return gaps and ((reading.confidence or 0.0) < MIN_CONFIDENCE or words_read(reading) < MIN_WORDS)


def words_read(reading: Extraction) -> int:
    """Words of four letters or digits or more in the first reading of a picture (a measure, not a list)."""
    return len(_WORD.findall(reading.segments[0].text)) if reading.segments else 0


def _turned_back(region: tuple[int, int, int, int], angle: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A region of the picture turned by ``angle`` (counter-clockwise), in the unturned picture's pixels."""
    x, y, w, h = region
    width, height = size
    if angle == 90:
        return (width - (y + h), x, h, w)
    if angle == 270:
        return (y, height - (x + w), h, w)
    return (width - (x + w), height - (y + h), w, h)


def _location(location: Location, angle: int, size: tuple[int, int]) -> Location:
    if location.region is None:
        return location
    return replace(location, region=_turned_back(location.region, angle, size))


def _segment(segment: TextSegment, angle: int, size: tuple[int, int]) -> TextSegment:
    anchors = [Anchor(a.offset, _location(a.location, angle, size), a.node) for a in segment.anchors]
    return replace(segment, anchors=anchors, base=_location(segment.base, angle, size))


def read_turned(gray: Image.Image, first: Extraction, read: Reader, timeout: float) -> Extraction:
    """``first``, or the reading of ``gray`` turned that reads clearly more (regions turned back)."""
    deadline = time.monotonic() + timeout
    best, best_angle = first, 0
    for angle in TURNS:
        left = deadline - time.monotonic()
        if left < 1.0:
            break
        trial = read(gray.rotate(angle, expand=True), left)
        if trial.not_run:
            break
        confidence, bar = trial.confidence or 0.0, (best.confidence or 0.0) + BETTER_BY
        if words_read(trial) >= MIN_WORDS and confidence >= max(MIN_CONFIDENCE, bar):
            best, best_angle = trial, angle
            if confidence >= SURE:
                break
    if best is first:
        return first
    turned = Extraction(
        segments=[_segment(s, best_angle, gray.size) for s in best.segments],
        not_inspected=[*first.not_inspected, *best.not_inspected],
        not_readable=list(best.not_readable),
        unread_areas=[_location(a, best_angle, gray.size) for a in best.unread_areas],
        children=list(first.children),
        confidence=best.confidence,
    )
    return turned


__all__ = ["TURNS", "read_poorly", "read_turned", "words_read"]
