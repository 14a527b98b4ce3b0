"""Tesseract (French data) as a subprocess with a time limit: words with their boxes and confidences.

Besides whole pages, ``read_crops`` reads many small areas of a page in one call: they are stacked
one under the other on a white sheet, read together, and each word is given back to the area it
came from. One process per capture for the second look, whatever the number of areas.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from functools import cache

from PIL import Image

from validators.pii.ocrtext import Word


class OcrUnavailableError(RuntimeError):
    """Tesseract failed to run."""


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


def read_words(image: Image.Image, psm: int, timeout: float) -> list[Word]:
    """Every word Tesseract finds in ``image`` (dark text on white), boxes in the image's pixels."""
    buffer = io.BytesIO()
    image.save(buffer, "PPM")  # uncompressed (PGM for a grey image): nothing to encode or decode
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # the machine is shared: one core per OCR process
    done = subprocess.run(
        # Pages come dark on white already: retrying lines inverted would only cost time.
        ["tesseract", "-", "-", "-l", "fra", "--psm", str(psm), "-c", "tessedit_do_invert=0", "tsv"],
        input=buffer.getvalue(),
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


def read_crops(crops: list[Image.Image], gap: int, timeout: float) -> list[list[Word]]:
    """The words of each crop (boxes in that crop's pixels), all read in one Tesseract call.

    Crops are stacked ``gap`` pixels apart on a white sheet and read as one block (``--psm 6``), which
    reads lines that sparse-text mode skipped and sees a digit run at another alignment than the page.
    """
    if not crops:
        return []
    sheet = Image.new("L", (max(c.width for c in crops) + 2 * gap, sum(c.height + gap for c in crops) + gap), 255)
    bands = []
    y = gap
    for crop in crops:
        sheet.paste(crop, (gap, y))
        bands.append((y, y + crop.height))
        y += crop.height + gap
    found: list[list[Word]] = [[] for _ in crops]
    for word in read_words(sheet, 6, timeout):
        centre = word.top + word.height / 2
        for index, (top, bottom) in enumerate(bands):
            if top <= centre < bottom:
                found[index].append(
                    Word(word.text, word.left - gap, word.top - top, word.width, word.height, word.confidence)
                )
                break
    return found

__all__ = ["OcrUnavailableError", "read_crops", "read_words", "tesseract_problem"]
