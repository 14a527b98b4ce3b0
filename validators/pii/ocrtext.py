"""OCR words to a text segment: visual lines, digit look-alikes, and digit runs OCR cut into pieces.

Lines are rebuilt from the words' boxes rather than from Tesseract's layout blocks, so that a NIR
printed as seven groups across a form stays one line. Tesseract also splits digit runs where the
screen has no space (``18505 78006084 36``) or keeps a thin space it should not: on one line, digit
tokens separated by gaps no wider than a couple of characters form a cluster, and a cluster holding
exactly a NIR's 13 or 15 characters is written compact, whatever its grouping on screen; the
recognizer then sees the number the way the screen shows it to a reader.

A screen read row by row runs a sidebar's words into the page beside it ("Messagerie NIR 2 43 01",
then "DMP 987 14 303 18"): a number wrapped inside the page is cut by a menu word. Where a row has a
gap wider than a few characters, the words are also read column by column (``column_lines``), as a
reader follows a pane; a form read that way loses its labels, which the row reading keeps, so both
readings are scanned.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass

from validators.model import Location
from validators.pii.context import header_words
from validators.pii.segments import Anchor, TextSegment
from validators.pii.tables import ColumnLabel

# Characters Tesseract confuses with digits inside a number (same length: offsets are kept). Not B:
# "2B" is a Corsican department.
_DIGIT_LOOKALIKES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "!": "1", "S": "5",
     "Z": "2", "z": "2", "g": "9", "\u2014": "-", "\u2013": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-",
     "~": "-"}
)
_CLUSTER_PART = re.compile(r"[0-9]{1,15}|2[AB]", re.IGNORECASE)
_STRAY = re.compile(r"(?<=\d)[.,'\u2019`](?=\d)")
_NIR_LENGTHS = (13, 15)
CLUSTER_GAP = 1.8  # widest gap inside a digit cluster, in digit heights (boxed groups are ~1.5 apart)
# A gap between two words of a row wider than this, in text heights, separates two columns (words of a
# sentence are ~0.3-0.6 apart, a NIR's boxed groups at most CLUSTER_GAP).
COLUMN_GAP = 3.0
COLUMN_LEAD = 2.5  # a column's next line starts at most this many text heights below its last one


@dataclass(frozen=True)
class Word:
    """One OCR word, its box in the OCR'd image's pixels, and Tesseract's confidence (0-100)."""

    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


def fix_digits(token: str) -> str:
    """Letter look-alikes mapped to digits in tokens that are mostly digits ('O06', '18505780O6084')."""
    digits = sum(c.isdigit() for c in token)
    if digits and digits * 2 >= len(token) and len(token) <= 24:
        return token.translate(_DIGIT_LOOKALIKES)
    return token


def lines_of(words: list[Word]) -> list[list[Word]]:
    """Words grouped into visual lines by vertical overlap, each line left to right."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.top + w.height / 2, w.left)):
        centre = word.top + word.height / 2
        if lines:
            last = lines[-1]
            ref = sum(w.top + w.height / 2 for w in last) / len(last)
            height = max(w.height for w in last)
            if abs(centre - ref) <= max(4.0, height * 0.5):
                last.append(word)
                continue
        lines.append([word])
    return [sorted(line, key=lambda w: w.left) for line in lines]


def _column_gap(before: Word, word: Word) -> bool:
    return word.left - before.right > COLUMN_GAP * max(before.height, word.height)


def _chunks(line: list[Word]) -> list[list[Word]]:
    """A row cut where two words are more than ``COLUMN_GAP`` text heights apart."""
    chunks = [[line[0]]]
    for before, word in itertools.pairwise(line):
        if _column_gap(before, word):
            chunks.append([word])
        else:
            chunks[-1].append(word)
    return chunks


def _overlap(a: list[Word], b: list[Word]) -> int:
    return min(a[-1].right, b[-1].right) - max(a[0].left, b[0].left)


def column_lines(words: list[Word]) -> list[list[Word]] | None:
    """The words as lines read column by column, or None when no row holds a gap as wide as a column's.

    Rows are cut at their wide gaps; each piece continues the column whose last piece is on a row just
    above it and overlaps it horizontally the most (one piece per row and column), or starts a column.
    Columns come in the order of their first line (top, then left), each read top to bottom.
    """
    rows = [_chunks(line) for line in lines_of(words)]
    if all(len(row) == 1 for row in rows):
        return None
    columns: list[list[list[Word]]] = []
    for row in rows:
        taken: set[int] = set()
        for chunk in row:
            top = min(w.top for w in chunk)
            height = max(w.height for w in chunk)
            best, best_overlap = None, 0
            for index, column in enumerate(columns):
                last = column[-1]
                below = top - max(w.bottom for w in last)
                if index in taken or below < -height / 2 or below > COLUMN_LEAD * height:
                    continue
                overlap = _overlap(last, chunk)
                if overlap > best_overlap:
                    best, best_overlap = index, overlap
            if best is None:
                columns.append([chunk])
                taken.add(len(columns) - 1)
            else:
                columns[best].append(chunk)
                taken.add(best)
    return [line for column in columns for line in column]


def _part(token: str) -> str | None:
    """The token as a piece of a digit run (a stray dot or comma OCR put between digits dropped), or
    None when it is not one."""
    cleaned = _STRAY.sub("", token)
    return cleaned if _CLUSTER_PART.fullmatch(cleaned) else None


def _clusters(line: list[Word], parts: list[str | None]) -> list[tuple[int, int]]:
    """Runs [start, end) of digit tokens on a line separated by gaps of at most ``CLUSTER_GAP``."""
    found = []
    index = 0
    while index < len(line):
        if parts[index] is None:
            index += 1
            continue
        end = index + 1
        while end < len(line) and parts[end] is not None:
            height = statistics.median(w.height for w in line[index : end + 1])
            if line[end].left - line[end - 1].right > CLUSTER_GAP * height:
                break
            end += 1
        found.append((index, end))
        index = end
    return found


def _glued(line: list[Word], texts: list[str]) -> tuple[list[str], list[bool]]:
    """The words' texts, those inside a NIR-long digit cluster cleaned of stray marks, and for each
    word whether it is glued to the previous one."""
    parts = [_part(t) for t in texts]
    out = list(texts)
    joined = [False] * len(line)
    for start, end in _clusters(line, parts):
        pieces = [p or "" for p in parts[start:end]]
        if end - start > 1 and sum(len(p) for p in pieces) in _NIR_LENGTHS:
            out[start:end] = pieces
            for inner in range(start + 1, end):
                joined[inner] = True
    return out, joined


def nir_like_lines(words: list[Word]) -> list[list[Word]]:
    """Lines holding a digit run about as long as a NIR (12 to 17 characters, however grouped).

    These deserve a second reading: a digit dropped, doubled or read as a letter is what stands
    between OCR and a number the recognizer can check.
    """
    found = []
    for line in lines_of(words):
        texts = [fix_digits(w.text) for w in line]
        parts = [_part(t) for t in texts]
        lengths = [sum(len(p or "") for p in parts[start:end]) for start, end in _clusters(line, parts)]
        compact = [sum(c.isdigit() for c in t) for t in texts if len(t) >= 12]
        if any(12 <= n <= 17 for n in lengths + compact):
            found.append(line)
    return found


def digits_of(words: list[Word]) -> str:
    return "".join(c for w in words for c in fix_digits(w.text) if c.isdigit())


def segment_of(
    words: list[Word], scale: float, base: Location, offset: tuple[int, int] = (0, 0),
    lines: list[list[Word]] | None = None,
) -> TextSegment:
    """The words as one text segment; each word's anchor carries its region in the source image.

    ``scale`` is how much the OCR'd image was enlarged, ``offset`` where it sits in the source; ``lines``:
    the words already in lines (``column_lines``), by default the rows of ``lines_of``. A segment given
    ``lines`` is another reading of the same words (``TextSegment.rereading``).
    """
    parts: list[str] = []
    anchors: list[Anchor] = []
    spans: dict[int, tuple[int, int]] = {}  # id(word) -> its span in the text
    position = 0
    rows = lines_of(words)
    for line_no, line in enumerate(lines if lines is not None else rows, start=1):
        texts, joined = _glued(line, [fix_digits(w.text) for w in line])
        for index, (word, text) in enumerate(zip(line, texts, strict=True)):
            if index and not joined[index]:
                # A column-wide gap is a cell boundary: written as one, so that a date in the next cell
                # is not read as the key of the number before it.
                gap = " | " if _column_gap(line[index - 1], word) else " "
                parts.append(gap)
                position += len(gap)
            region = (
                offset[0] + int(word.left / scale),
                offset[1] + int(word.top / scale),
                max(1, int(word.width / scale)),
                max(1, int(word.height / scale)),
            )
            anchors.append(Anchor(position, Location(line=line_no, region=region)))
            parts.append(text)
            spans[id(word)] = (position, position + len(text))
            position += len(text)
        parts.append("\n")
        position += 1
    return TextSegment("".join(parts), base, anchors, ocr=True, rereading=lines is not None,
                       column_labels=column_headers(rows, spans))


HEADER_REACH = 40.0  # how far above a value its column's header may be, in text heights (a long table)
_MIN_VALUE_DIGITS = 12


def _aligned(a: list[Word], b: list[Word]) -> bool:
    """Whether two cells share most of the narrower one's width (one column)."""
    narrower = min(a[-1].right - a[0].left, b[-1].right - b[0].left)
    return _overlap(a, b) >= 0.5 * max(1, narrower)


def column_headers(rows: list[list[Word]], spans: dict[int, tuple[int, int]]) -> list[ColumnLabel]:
    """For each NIR-long digit cell of a table on screen (``rows``: the words in rows, ``lines_of``), what
    its column's header says.

    A cell is a piece of a row between column-wide gaps. Going up from a value, among the cells sharing
    most of its width, those without a letter (other values, dates, the "_" of an empty cell) are
    skipped; the first one with letters is its header, read as a table header is (``header_words``: a few short
    words). Only labels and person words count, as for the headers of HTML and CSV tables.
    """
    cells = [chunk for line in rows for chunk in _chunks(line)]
    found = []
    for cell in cells:
        if sum(c.isdigit() for w in cell for c in fix_digits(w.text)) < _MIN_VALUE_DIGITS:
            continue
        top = min(w.top for w in cell)
        reach = HEADER_REACH * max(w.height for w in cell)
        above = [c for c in cells if max(w.bottom for w in c) <= top + 2 and top - min(w.top for w in c) <= reach
                 and _aligned(c, cell)]
        for candidate in sorted(above, key=lambda c: -max(w.bottom for w in c)):
            text = " ".join(w.text for w in candidate)
            if not any(ch.isalpha() for ch in text):
                continue
            hit = header_words(text)
            if hit.positive is not None and all(id(w) in spans for w in cell):
                found.append(ColumnLabel(spans[id(cell[0])][0], spans[id(cell[-1])][1], hit))
            break
    return found


__all__ = [
    "CLUSTER_GAP", "COLUMN_GAP", "Word", "column_headers", "column_lines", "digits_of", "fix_digits", "lines_of",
    "nir_like_lines", "segment_of",
]
