"""The pictures of a PDF's pages, handed back as files of their own so that OCR reads them.

A test report written in a word processor and exported to PDF carries its screenshots as images: the
text layer holds the report's words, never what the screenshots show. Each image (XObject, in forms
too, and inline images) is decoded by pypdf and becomes a child file (``page-3-image-1.jpg``) that every
check reads, OCR included. Small pictures (icons, rules, logos under ``MIN_SIDE`` pixels) cannot show a
legible identifier and are left; an image used on every page is handed back once.

Bounded: ``MAX_IMAGES`` per document, ``MAX_PIXELS`` per image (read from the image dictionary before
anything is decoded), ``MAX_TOTAL_BYTES`` of decoded images. What is left over is said, never dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from validators.pii.segments import Extraction

MAX_IMAGES = 60
MAX_PIXELS = 40_000_000
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MIN_SIDE = 24  # pixels: narrower or lower than this, an image holds no legible identifier


@dataclass
class ImageBudget:
    """What a document's images may still cost, and which were already handed back."""

    images_left: int = MAX_IMAGES
    bytes_left: int = MAX_TOTAL_BYTES
    seen: set[bytes] = field(default_factory=set)
    skipped: int = 0  # images over a limit, said once at the end


def _size(page: Any, key: Any) -> tuple[int, int] | None:
    """Width and height from the image's dictionary (None for an inline image: read when decoded)."""
    path = key if isinstance(key, tuple) else (key,)
    if str(path[-1]).startswith("~"):
        return None
    resources = page["/Resources"].get_object()
    for part in path[:-1]:
        resources = resources["/XObject"][part].get_object()["/Resources"].get_object()
    image = resources["/XObject"][path[-1]].get_object()
    return int(image.get("/Width", 0)), int(image.get("/Height", 0))


def page_images(page: Any, number: int, budget: ImageBudget, out: Extraction) -> bool:
    """Hand the images of ``page`` to ``out.children``; False when some could not be (said in ``out``)."""
    try:
        images = page.images
        keys = list(images.keys())
    except Exception as exc:
        out.not_inspected.append(f"the images of page {number} ({type(exc).__name__}: not OCR'd)")
        return False
    complete = True
    for index, key in enumerate(keys, start=1):
        try:
            size = _size(page, key)
        except Exception:
            size = None
        if size is not None and min(size) < MIN_SIDE:
            continue
        if size is not None and size[0] * size[1] > MAX_PIXELS:
            out.not_inspected.append(f"image {index} of page {number} ({size[0]}x{size[1]} pixels, over the limit: "
                                     "not OCR'd)")
            complete = False
            continue
        if budget.images_left <= 0:
            budget.skipped += 1
            complete = False
            continue
        try:
            found = images[key]
            data, picture = found.data, found.image
        except Exception as exc:
            out.not_inspected.append(f"image {index} of page {number} ({type(exc).__name__}: not decoded, not OCR'd)")
            complete = False
            continue
        if picture is not None and min(picture.size) < MIN_SIDE:
            continue
        digest = hashlib.sha256(data).digest()
        if digest in budget.seen:
            continue
        if len(data) > budget.bytes_left:
            budget.skipped += 1
            complete = False
            continue
        budget.seen.add(digest)
        budget.images_left -= 1
        budget.bytes_left -= len(data)
        extension = str(getattr(found, "name", "") or "").rsplit(".", 1)[-1][:5] or "png"
        out.children.append((f"page-{number}-image-{index}.{extension}", data))
    return complete


def said(budget: ImageBudget, out: Extraction) -> None:
    """The images left over by the document's limits, in one line."""
    if budget.skipped:
        out.not_inspected.append(f"{budget.skipped} image(s) past the document's limits ({MAX_IMAGES} images, "
                                 f"{MAX_TOTAL_BYTES // (1024 * 1024)} MB): not OCR'd")


__all__ = ["MAX_IMAGES", "MIN_SIDE", "ImageBudget", "page_images", "said"]
