"""A piece of text to scan and how to turn offsets in it back into a report location.

Sources (plain text, XML nodes, PDF pages, e-mail parts, OCR words) all become ``TextSegment``s so that
one scanner serves them all. Anchors map offsets to what a line number cannot express: an XPath, an
image region, a video time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from validators.model import Location
from validators.pii.tables import ColumnLabel


@dataclass(frozen=True)
class Anchor:
    offset: int
    location: Location
    node: Any = None  # an XML node whose XPath is worked out only if a finding needs it


@dataclass
class TextSegment:
    text: str
    base: Location = field(default_factory=Location)
    anchors: list[Anchor] = field(default_factory=list)  # sorted by offset
    count_lines: bool = True
    first_line: int = 1
    xpath_of: Callable[[Any], str] | None = None
    ocr: bool = False  # text read by OCR: spacing between digits is unreliable
    # Another reading of text an earlier segment already gave (OCR's column-wise reading of a screen):
    # it adds the values the earlier readings missed and raises one they rated lower, never a second
    # finding for a value already reported.
    rereading: bool = False
    delimited: bool = False  # plain text that may be a CSV/TSV table (its first line, a header)
    # The characters that end a record (a log line, a table row): words before one do not describe a
    # number after it. Markup indentation is no record end (HTML: blocks only; XML: none).
    record_breaks: str = "\n\r"
    # Metadata, form fields, headers: each record is a field of its own, so a declaration ("démo" in an
    # author's name) describes no value of another field.
    fields: bool = False
    column_labels: list[ColumnLabel] = field(default_factory=list)  # table cells under a labelled header
    _cursor: tuple[int, int] = field(default=(0, 0), repr=False)  # (offset, line breaks before it)

    def _line_of(self, offset: int) -> int:
        # Findings come in text order: line breaks are counted from the previous one (str.count, in C),
        # so a 50 MB log with a finding at its end costs one pass, and no index of every line is built.
        known, breaks = self._cursor
        if offset < known:
            known, breaks = 0, 0
        breaks += self.text.count("\n", known, offset)
        self._cursor = (offset, breaks)
        return self.first_line + breaks

    def locate(self, start: int, end: int) -> Location:
        """The report location of ``text[start:end]``."""
        if not self.anchors:
            line = self._line_of(start) if self.count_lines else self.base.line
            return replace(self.base, line=line, span=(start, end))
        offsets = [a.offset for a in self.anchors]
        first = max(0, bisect.bisect_right(offsets, start) - 1)
        last = max(first, bisect.bisect_left(offsets, end) - 1)
        covering = self.anchors[first : last + 1]
        anchor = covering[0].location
        if covering[0].node is not None and self.xpath_of is not None:
            anchor = replace(anchor, xpath=self.xpath_of(covering[0].node))
        merged = replace(
            self.base,
            line=anchor.line if anchor.line is not None else self.base.line,
            xpath=anchor.xpath or self.base.xpath,
            page=anchor.page if anchor.page is not None else self.base.page,
            time=anchor.time if anchor.time is not None else self.base.time,
            span=(start - covering[0].offset, end - covering[0].offset),
        )
        regions = [a.location.region for a in covering if a.location.region is not None]
        if regions:
            x0 = min(r[0] for r in regions)
            y0 = min(r[1] for r in regions)
            x1 = max(r[0] + r[2] for r in regions)
            y1 = max(r[1] + r[3] for r in regions)
            merged = replace(merged, region=(x0, y0, x1 - x0, y1 - y0), span=None)
        return merged


@dataclass
class Extraction:
    """What a source yielded: text to scan, and what could not be looked at (never silently dropped)."""

    segments: list[TextSegment] = field(default_factory=list)
    not_inspected: list[str] = field(default_factory=list)  # parts skipped: limits, encryption, no text
    not_readable: list[str] = field(default_factory=list)  # images OCR could not read reliably
    unread_areas: list[Location] = field(default_factory=list)  # text-like image regions OCR could not read
    not_run: str | None = None  # the whole source could not be inspected (a tool missing)
    # Files found inside (an Office document's pictures and embedded documents): (name, bytes), each
    # handed back to the engine as a child file that every check reads.
    children: list[tuple[str, bytes]] = field(default_factory=list)
    # OCR: the mean confidence (0-100) of the first reading's words, None for text that was not OCR'd.
    confidence: float | None = None


__all__ = ["Anchor", "Extraction", "TextSegment"]
