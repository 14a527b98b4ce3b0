"""Text a PDF still holds from its earlier revisions.

Editors save a change by appending an update to the file (an incremental save): a NIR "removed" or
"blacked out" that way is gone from what a viewer shows, yet still in the file, in the revision before
the update, for anyone who reads the bytes. Each earlier revision (the file up to each ``%%EOF`` before
the last) is opened on its own and its pages' text and metadata read; only the lines the current
revision no longer has are kept, so a value present in both is reported once, where it is shown.

Bounded: ``MAX_REVISIONS`` earlier revisions (the newest ones), ``MAX_PAGES`` pages read over all of them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from typing import Any

from validators.model import Location
from validators.pii.pdfnotes import info_text
from validators.pii.segments import Extraction, TextSegment

MAX_REVISIONS = 20
MAX_PAGES = 500
EARLIER = "PDF earlier revision"
_EOF = re.compile(rb"%%EOF[ \t]*(?:\r\n|\r|\n)?")
_LINEARISED = re.compile(rb"/Linearized\s")


def _cuts(data: bytes) -> list[int]:
    """Where each earlier revision ends (the last ``%%EOF`` is the current revision's). A linearised
    ("fast web view") file's first ``%%EOF`` closes its first-page section, not a revision: left out."""
    ends = [m.end() for m in _EOF.finditer(data)]
    if _LINEARISED.search(data, 0, 4096) is not None:
        ends = ends[1:]
    return ends[:-1]


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def read_earlier(data: bytes, current: Iterable[str], check_time: Callable[[], None], out: Extraction) -> None:
    """Segments for what earlier revisions of ``data`` hold that the current text (``current``) has not."""
    cuts = _cuts(data)
    if not cuts:
        return
    if len(cuts) > MAX_REVISIONS:
        out.not_inspected.append(f"the PDF's {len(cuts) - MAX_REVISIONS} oldest revision(s) (revision limit)")
        cuts = cuts[-MAX_REVISIONS:]
    known = {line for text in current for line in _lines(text)}
    pages_left = MAX_PAGES
    for number, cut in enumerate(cuts, start=1):
        check_time()
        try:
            reader = _open(data[:cut])
        except Exception as exc:  # a linearised file's first section, or a damaged revision
            out.not_inspected.append(f"revision {number} of the PDF ({type(exc).__name__})")
            continue
        if reader is None:
            continue
        where = f"{EARLIER} {number}"
        try:
            _add(out, [info_text(reader)], known, Location(entry=where), fields=True)
            count = len(reader.pages)
        except Exception as exc:
            out.not_inspected.append(f"the metadata or pages of revision {number} of the PDF ({type(exc).__name__})")
            continue
        for index in range(min(count, pages_left)):
            check_time()
            try:
                text = str(reader.pages[index].extract_text() or "")
            except Exception as exc:
                out.not_inspected.append(f"page {index + 1} of revision {number} of the PDF ({type(exc).__name__})")
                continue
            _add(out, [text], known, Location(entry=where, page=index + 1), fields=False)
        if count > pages_left:
            out.not_inspected.append(f"pages of the PDF's earlier revisions past {MAX_PAGES}")
            return
        pages_left -= count


def _open(prefix: bytes) -> Any:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(prefix), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        return None
    return reader


def _add(out: Extraction, texts: list[str], known: set[str], location: Location, *, fields: bool) -> None:
    gone = [line for text in texts for line in _lines(text) if line not in known]
    if gone:
        out.segments.append(TextSegment("\n".join(gone), location, fields=fields))


__all__ = ["EARLIER", "read_earlier"]
