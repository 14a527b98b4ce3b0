"""Text a PDF holds outside its pages' content: the document information (title, author, subject...),
annotations (comments, sticky notes, free text, their authors and rich text) and the bookmarks' titles.

A viewer shows a note only when its icon is opened, and bookmarks only in a side panel: the pages' text
layer holds neither. Each is read as a field of its own (an author's name does not describe a number of
another note). Bounded: ``MAX_ANNOTATIONS`` annotations and ``MAX_BOOKMARKS`` bookmarks per document,
``MAX_VALUE_CHARS`` characters per value; what is left over is said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from validators.model import Location
from validators.pii.htmltext import html_text_lines
from validators.pii.segments import Extraction, TextSegment

MAX_INFO_ENTRIES = 200
MAX_INFO_VALUE_CHARS = 64 * 1024
MAX_ANNOTATIONS = 5000
MAX_BOOKMARKS = 5000
MAX_VALUE_CHARS = 64 * 1024
MAX_BOOKMARK_DEPTH = 32
# The annotation entries that hold text a person wrote: the note, its author, subject, rich text,
# a form field's tooltip and value (a field's value is also in the form fields, read elsewhere).
_TEXT_KEYS = ("/Contents", "/T", "/Subj", "/TU", "/V")
ANNOTATIONS = "PDF annotations"
BOOKMARKS = "PDF bookmarks"


def info_text(reader: Any) -> str:
    """The document information dictionary as ``key: value`` lines (bounded; references resolved)."""
    info: Mapping[str, Any] = reader.metadata or {}
    lines = []
    for index, (key, value) in enumerate(info.items()):
        if index >= MAX_INFO_ENTRIES:
            break
        if hasattr(value, "get_object"):
            value = value.get_object()
        lines.append(f"{key}: {str(value)[:MAX_INFO_VALUE_CHARS]}")
    return "\n".join(lines)


def _value(obj: Any) -> str:
    if hasattr(obj, "get_object"):
        obj = obj.get_object()
    if isinstance(obj, str | bytes):
        text = obj.decode("latin-1") if isinstance(obj, bytes) else str(obj)
        return text[:MAX_VALUE_CHARS]
    return ""


def _rich_text(obj: Any) -> str:
    """``/RC``: XHTML as a string or a stream, read as text (tags as line breaks, never parsed as XML)."""
    if hasattr(obj, "get_object"):
        obj = obj.get_object()
    if hasattr(obj, "get_data"):
        obj = obj.get_data()[:MAX_VALUE_CHARS].decode("utf-8", "replace")
    return html_text_lines(str(obj)[:MAX_VALUE_CHARS]) if isinstance(obj, str | bytes) else ""


def read_annotations(reader: Any, pages: int, check_time: Callable[[], None], out: Extraction) -> None:
    """One segment per page with annotations: each annotation's texts, one line each."""
    seen = 0
    for index in range(pages):
        check_time()
        try:
            annots = reader.pages[index].get("/Annots")
            annots = annots.get_object() if annots is not None else []
        except Exception as exc:
            out.not_inspected.append(f"the annotations of page {index + 1} ({type(exc).__name__})")
            continue
        lines: list[str] = []
        for ref in annots or []:
            if seen >= MAX_ANNOTATIONS:
                out.not_inspected.append(f"annotations after the first {MAX_ANNOTATIONS}")
                _add(out, lines, index)
                return
            seen += 1
            try:
                annot = ref.get_object()
                lines += [text for key in _TEXT_KEYS if (text := _value(annot.get(key))).strip()]
                if annot.get("/RC") is not None:
                    lines.append(_rich_text(annot["/RC"]))
            except Exception as exc:
                out.not_inspected.append(f"an annotation of page {index + 1} ({type(exc).__name__})")
        _add(out, lines, index)


def _add(out: Extraction, lines: list[str], index: int) -> None:
    if any(line.strip() for line in lines):
        out.segments.append(TextSegment("\n".join(lines), Location(page=index + 1, entry=ANNOTATIONS), fields=True))


def read_bookmarks(reader: Any, out: Extraction) -> None:
    """The titles of the document's outline (bookmarks), one line each."""
    titles: list[str] = []

    def walk(items: Any, depth: int) -> None:
        for item in items:
            if len(titles) >= MAX_BOOKMARKS or depth > MAX_BOOKMARK_DEPTH:
                return
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                titles.append(_value(getattr(item, "title", None) or item.get("/Title")))

    try:
        walk(reader.outline, 0)
    except Exception as exc:
        out.not_inspected.append(f"the PDF's bookmarks ({type(exc).__name__})")
    if len(titles) >= MAX_BOOKMARKS:
        out.not_inspected.append(f"bookmarks after the first {MAX_BOOKMARKS}")
    if any(t.strip() for t in titles):
        out.segments.append(TextSegment("\n".join(titles), Location(entry=BOOKMARKS), fields=True))


__all__ = ["ANNOTATIONS", "BOOKMARKS", "info_text", "read_annotations", "read_bookmarks"]
