"""HTML as text to scan: the words between tags (blocks as line breaks, cells as blanks, table columns
under a labelled header recorded), and the tags themselves (attributes, comments).

No parser and no rendering: one bounded regular expression walks the markup, so hostile HTML costs
linear time. Source line breaks are kept one for one, so that a finding's line is the source's; a block
boundary (paragraph, ``<br>``, table row...) is written as a carriage return, which the recognizer reads
as a line break and the line counter does not count.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from validators.model import NO_LOCATION, Location
from validators.pii.context import ContextHit, header_words
from validators.pii.segments import Extraction, TextSegment
from validators.pii.tables import ColumnLabel

MAX_TEXT_CHARS = 256 * 1024 * 1024
MAX_TABLE_DEPTH = 32

_TAG = re.compile(r"<[^>]{0,2000}>")
_MARKUP_TOKEN = re.compile(r"<[^<>]{0,2000}>|[^<]+|<")
_TAG_NAME = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9]*)")
_VALUE = re.compile(r"""\svalue\s*=\s*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"'>]+))""", re.IGNORECASE)
_COLSPAN = re.compile(r"""\bcolspan\s*=\s*["']?(\d{1,3})""", re.IGNORECASE)
_BLANK_CHARS = " \t\r\f\v\u00a0"
_BLANK_RUN = re.compile(rf"[{_BLANK_CHARS}]+")
BLOCKS = frozenset({
    "p", "div", "br", "tr", "table", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
    "section", "article", "header", "footer", "blockquote", "pre", "form", "hr", "title", "body", "caption",
    "thead", "tbody", "tfoot", "nav", "aside", "main", "fieldset", "legend", "address", "figure", "figcaption",
})
BLOCK_BREAK = "\r"


def html_text(markup: str) -> str:
    """Visible-ish text of HTML: tags become spaces, entities are decoded (no parser, no rendering)."""
    return html.unescape(_TAG.sub(" ", markup))


def html_text_lines(markup: str) -> str:
    """Text of XML or HTML markup with each tag read as a line break (element values stay apart)."""
    return html.unescape(_TAG.sub("\n", markup))


class _CellText:
    """HTML text with tags read as blanks (blocks as carriage returns) and blank runs collapsed; every
    source line break is kept, so that line numbers are the source's."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.pending_blank = False
        self.pending_block = False
        self.at_line_start = True

    def _append(self, part: str) -> None:
        self.parts.append(part)
        self.length += len(part)

    def blank(self) -> None:
        self.pending_blank = True

    def block(self) -> None:
        self.pending_block = True

    def newlines(self, count: int) -> None:
        if count:
            self._append("\n" * count)
            self.pending_blank = self.pending_block = False
            self.at_line_start = True

    def words(self, text: str) -> None:
        collapsed = _BLANK_RUN.sub(" ", text)
        core = collapsed.strip(" ")
        if not core:
            self.pending_blank = self.pending_blank or bool(collapsed)
            return
        if not self.at_line_start:
            if self.pending_block:
                self._append(BLOCK_BREAK)
            elif self.pending_blank or collapsed.startswith(" "):
                self._append(" ")
        self._append(core)
        self.pending_blank = collapsed.endswith(" ")
        self.pending_block = False
        self.at_line_start = False

    def since(self, part_index: int) -> str:
        return "".join(self.parts[part_index:])


@dataclass
class _Table:
    row: int = -1
    column: int = 0
    header_rows: bool = False  # inside <thead>
    cell: tuple[int, int, int, bool] | None = None  # (offset, part index, colspan, header row)
    header: dict[int, ContextHit] = field(default_factory=dict)


class _Tables:
    """Which cells sit under a labelled header: the first row of a table (or its <thead>) is its header."""

    def __init__(self, text: _CellText) -> None:
        self.text = text
        self.stack: list[_Table] = []
        self.labels: list[ColumnLabel] = []

    def tag(self, closing: bool, name: str, raw: str) -> None:
        if name == "table":
            if closing:
                self._close_cell()
                if self.stack:
                    self.stack.pop()
            elif len(self.stack) < MAX_TABLE_DEPTH:
                self.stack.append(_Table())
            return
        if not self.stack:
            return
        table = self.stack[-1]
        if name == "thead":
            table.header_rows = not closing
        elif name == "tr":
            self._close_cell()
            if not closing:
                table.row, table.column = table.row + 1, 0
        elif name in ("td", "th"):
            self._close_cell()
            if not closing:
                span = _COLSPAN.search(raw)
                colspan = max(1, min(int(span.group(1)), 1000)) if span else 1
                header_row = table.header_rows or table.row <= 0
                table.cell = (self.text.length, len(self.text.parts), colspan, header_row)

    def _close_cell(self) -> None:
        table = self.stack[-1] if self.stack else None
        if table is None or table.cell is None:
            return
        start, part, colspan, header_row = table.cell
        table.cell = None
        if header_row:
            words = header_words(self.text.since(part))
            if words.positive is not None:
                table.header.update({c: words for c in range(table.column, table.column + colspan)})
        elif table.column in table.header and self.text.length > start:
            self.labels.append(ColumnLabel(start, self.text.length, table.header[table.column]))
        table.column += colspan


def html_extraction(markup: str, base: Location = NO_LOCATION) -> Extraction:
    """HTML as two segments: the text between tags, and the tags themselves (attributes, comments).

    Each tag reads as a blank in the text, so that a number cut across table cells
    (``<td>1</td><td>85</td>...``) reads as a grouped number; a block tag reads as a line break; blank
    runs are collapsed because markup indentation is not a separator a writer chose. Both segments keep
    every line break of the source, so a finding's line is the source's.
    """
    out = Extraction()
    if len(markup) > MAX_TEXT_CHARS:
        out.not_inspected.append(f"text beyond the first {MAX_TEXT_CHARS} characters")
        markup = markup[:MAX_TEXT_CHARS]
    cells = _CellText()
    tables = _Tables(cells)
    tags: list[str] = []
    for token in _MARKUP_TOKEN.finditer(markup):
        raw = token.group(0)
        if raw.startswith("<") and len(raw) > 1:
            tags.append(raw + " ")
            name = _TAG_NAME.match(raw)
            if name is not None:
                tag = name.group(2).lower()
                tables.tag(bool(name.group(1)), tag, raw)
                if tag in BLOCKS:
                    cells.block()
                else:
                    cells.blank()
                if tag == "input":
                    # A form field shows its value: it reads as text, after the label written before it.
                    value = _VALUE.search(raw)
                    if value is not None:
                        cells.words(html.unescape(next(v for v in value.groups() if v is not None)))
                        cells.blank()
            else:
                cells.blank()
            cells.newlines(raw.count("\n"))
            continue
        tags.append("\n" * raw.count("\n"))
        for index, part in enumerate(html.unescape(raw).split("\n")):
            if index:
                cells.newlines(1)
            cells.words(part)
    out.segments.append(TextSegment("".join(cells.parts), base, column_labels=tables.labels,
                                    record_breaks=BLOCK_BREAK))
    out.segments.append(TextSegment("".join(tags), base))
    return out


__all__ = ["BLOCKS", "BLOCK_BREAK", "html_extraction", "html_text", "html_text_lines"]
