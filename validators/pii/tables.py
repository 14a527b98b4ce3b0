"""Table columns whose header names a NIR: the header labels every cell below it.

In a CSV/TSV export, an HTML table or a CDA narrative table the label ("NIR", "N° SS", "INS",
"matricule", "Patient"...) is written once, in the header, often far from the values. A header cell that
is a label (short, a word of ``context.py``'s vocabulary) makes each cell of its column labelled, as if
the word stood next to the value.

- Delimited text (``DelimitedHeader``): the first non-empty line of a plain-text segment is read as a
  header when it splits into cells on ``;``, tab, ``|`` or ``,``; a value's column is the number of
  delimiters before it on its own line, quotes honoured; the row must have as many cells as the header.
- HTML and CDA tables: the extractors know the cells; they record the text span of each cell whose
  column header is a label (``TextSegment.column_labels``), looked up here by ``CellLabels``.
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass
from typing import Any

from validators.pii.context import NO_CONTEXT, ContextHit, header_words

DELIMITERS = (";", "\t", "|", ",")
MAX_HEADER_LINE = 4096
MAX_ROW_CHARS = 65536


@dataclass(frozen=True)
class ColumnLabel:
    start: int
    end: int
    words: ContextHit


def _split_row(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _cells_before(row: str, delimiter: str) -> tuple[int, bool]:
    """How many delimiters outside quotes ``row`` holds, and whether it ends inside a quoted cell."""
    count, quoted = 0, False
    for char in row:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count, quoted


class DelimitedHeader:
    """The labelled columns of a delimited text, read from its first line (nothing if it has none)."""

    def __init__(self, text: str) -> None:
        self.delimiter = ""
        self.columns: dict[int, ContextHit] = {}
        self.cells = 0
        self.body_start = 0
        head = text[:MAX_HEADER_LINE].lstrip("\r\n\ufeff")
        first_line = head.split("\n", 1)[0].rstrip("\r")
        if "\n" not in head:
            return
        counts = {d: first_line.count(d) for d in DELIMITERS}
        delimiter = max(DELIMITERS, key=lambda d: counts[d])
        if counts[delimiter] == 0:
            return
        cells = _split_row(first_line, delimiter)
        columns = {i: header_words(c) for i, c in enumerate(cells)}
        self.columns = {i: hit for i, hit in columns.items() if hit.positive is not None}
        self.delimiter, self.cells = delimiter, len(cells)
        self.body_start = text.find("\n", text.find(first_line)) + 1

    def label_at(self, text: str, start: int) -> ContextHit:
        """The header words of the column ``text[start]`` is in, if it is a labelled column."""
        if not self.columns or start < self.body_start:
            return NO_CONTEXT
        line_start = max(text.rfind("\n", max(0, start - MAX_ROW_CHARS), start) + 1, self.body_start)
        column, quoted = _cells_before(text[line_start:start], self.delimiter)
        words = self.columns.get(column)
        if words is None:
            return NO_CONTEXT
        line_end = text.find("\n", start, start + MAX_ROW_CHARS)
        row = text[line_start : line_end if line_end >= 0 else start + MAX_ROW_CHARS]
        delimiters, open_quote = _cells_before(row, self.delimiter)
        # A row of the table has the header's cells (unless a quoted cell runs over the line end).
        if not (quoted or open_quote) and delimiters + 1 != self.cells:
            return NO_CONTEXT
        return words


class CellLabels:
    """The labelled cells an extractor recorded for a segment (HTML, CDA tables), looked up by offset."""

    def __init__(self, labels: list[ColumnLabel]) -> None:
        self.labels = sorted(labels, key=lambda label: label.start)
        self.starts = [label.start for label in self.labels]

    def at(self, offset: int) -> ContextHit:
        index = bisect.bisect_right(self.starts, offset) - 1
        if index >= 0 and self.labels[index].start <= offset < self.labels[index].end:
            return self.labels[index].words
        return NO_CONTEXT


def _local(node: Any) -> str:
    tag = node.tag
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _own_rows(table: Any) -> list[Any]:
    """The rows of ``table`` itself (those of a nested table belong to it)."""
    rows = []
    for row in table.iter():
        if _local(row) != "tr":
            continue
        owner = row.getparent()
        while owner is not None and _local(owner) != "table":
            owner = owner.getparent()
        if owner is table:
            rows.append(row)
    return rows


def _colspan(cell: Any) -> int:
    value = str(cell.get("colspan") or "1")
    return max(1, min(int(value), 1000)) if value.isdigit() else 1


def xml_cell_words(root: Any, max_tables: int = 1000) -> dict[Any, ContextHit]:
    """Every element inside an XML table cell (CDA narrative ``table``) whose column header is a label,
    with the header's words. The header is the ``thead`` row(s), or the table's first row."""
    found: dict[Any, ContextHit] = {}
    tables = [n for n in root.iter() if _local(n) == "table"][:max_tables]
    for table in tables:
        rows = _own_rows(table)
        in_head = [r for r in rows if _local(r.getparent()) == "thead"]
        head = in_head or rows[:1]
        header: dict[int, ContextHit] = {}
        for row in head:
            column = 0
            for cell in (c for c in row if _local(c) in ("th", "td")):
                words = header_words(" ".join(cell.itertext()))
                span = _colspan(cell)
                if words.positive is not None:
                    header.update({c: words for c in range(column, column + span)})
                column += span
        if not header:
            continue
        for row in rows:
            if row in head:
                continue
            column = 0
            for cell in (c for c in row if _local(c) in ("th", "td")):
                if column in header:
                    found.update({node: header[column] for node in cell.iter()})
                column += _colspan(cell)
    return found


__all__ = ["DELIMITERS", "CellLabels", "ColumnLabel", "DelimitedHeader", "xml_cell_words"]
