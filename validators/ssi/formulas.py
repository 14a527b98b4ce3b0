"""Spreadsheet formulas in CSV/TSV cells (CSV injection), judged cell by cell under every delimiter.

A spreadsheet picks the delimiter itself: French Excel splits on ``;``, others on ``,``, tab or ``|``, and
the first line says nothing of the others. So the text is read (RFC 4180 quoting, ``csv`` module) once per
delimiter and every cell judged as a spreadsheet would: ``=`` anything, ``@`` followed by a name, ``+``/``-``
followed by a function, a cell reference, DDE (``cmd|``) or another operator; leading spaces, tabs and
carriage returns skipped and full-width/small signs (``＝``) read as their ASCII twins. Numbers (``-12,5``,
``+33 6 12 34 56 78``) and plain text after a dash stay values. A cell prefixed with an apostrophe is text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from validators import rules
from validators.model import Finding, Location

DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
MAX_CELLS = 16_000_000  # cells read over all delimiters (~10 s); past it the CSV is reported as not inspected
MAX_FINDINGS = 20
_TIME_CHECK_ROWS = 4096

_SIGNS = {"\uff1d": "=", "\uff0b": "+", "\uff0d": "-", "\uff20": "@", "\ufe66": "=", "\ufe62": "+", "\ufe63": "-",
          "\ufe6b": "@", "=": "=", "+": "+", "-": "-", "@": "@"}
_LEADING = " \t\r\n\u00a0\u202f\""
# First characters worth a look: a sign, or blanks and quotes a spreadsheet skips before one.
_STARTS = frozenset(_LEADING) | frozenset(_SIGNS)
_NUMERIC = re.compile(r"[\d\s.,\u00a0\u202f]+%?")
_DIGIT = re.compile(r"\d")
_FUNCTION = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\s*\(")
_CELL_REFERENCE = re.compile(r"(?<![A-Za-z0-9_])(?:\$?[A-Za-z]{1,3}\$?\d+|R\d+C\d+)(?![A-Za-z0-9_(])")
csv.field_size_limit(1 << 30)  # a huge quoted field must be read, not raise (it is bounded by the file limit)


def formula_kind(cell: str) -> str | None:
    """Why a spreadsheet would evaluate ``cell`` as a formula, or None for a value."""
    if not cell or cell[0] not in _STARTS:
        return None
    stripped = cell.lstrip(_LEADING)
    first = _SIGNS.get(stripped[:1])
    if first is None:
        return None
    rest = stripped[1:]
    if first == "=":
        return "starts with '='" if rest.strip() else None
    if first == "@":
        return "starts with '@' followed by a name" if rest[:1].isalpha() or rest[:1] == "_" else None
    if _NUMERIC.fullmatch(rest) and _DIGIT.search(rest):
        return None  # -12,5  +33 6 12 34 56 78  -1 234,56
    if _SIGNS.get(rest[:1]) in ("=", "@"):
        return f"starts with '{first}' followed by an operator"
    if "|" in rest:
        return f"starts with '{first}' followed by a DDE call"
    if "(" in rest and _FUNCTION.search(rest):
        return f"starts with '{first}' followed by a function"
    if _DIGIT.search(rest) and _CELL_REFERENCE.search(rest):
        return f"starts with '{first}' followed by a cell reference"
    return None  # - suite du traitement, +33-1-42-51-51-51


@dataclass
class FormulaScan:
    findings: list[Finding] = field(default_factory=list)
    cells: int = 0
    complete: bool = True


def tab_separated(text: str, sample: int = 50) -> bool:
    """Whether a text that is not named CSV is a table a spreadsheet would split on tabs: Excel's "Unicode
    text" and "Text (tab delimited)" exports are .txt files whose lines all hold the same number of tabs."""
    head = text[: 64 * 1024].splitlines()[: sample + 1]
    lines = [line for line in head[:sample] if line.strip()]  # one more read: the slice may cut the last
    tabs = {line.count("\t") for line in lines}
    return len(lines) >= 2 and len(tabs) == 1 and min(tabs) >= 1


def scan(
    text: str,
    check_time: Callable[[], None] = lambda: None,
    max_cells: int = MAX_CELLS,
    delimiters: tuple[str, ...] = tuple(DELIMITERS),
) -> FormulaScan:
    """Formula cells of ``text`` read under each delimiter; one finding per line whatever the split."""
    result = FormulaScan()
    seen: set[int] = set()
    lines = text.splitlines(keepends=True)  # split once, read four times (a quoted field spans lines)
    for delimiter in delimiters:
        label = DELIMITERS[delimiter]
        for line, column, kind in _formula_cells(lines, delimiter, check_time, result, max_cells):
            if line in seen:
                continue
            seen.add(line)
            if len(result.findings) < MAX_FINDINGS:
                result.findings.append(
                    rules.finding(
                        "ssi.text.formula-injection",
                        Location(line=line, column=column),
                        kind=kind,
                        evidence=f"cells split on {label}",
                    )
                )
        if not result.complete:
            break
    return result


def _formula_cells(
    lines: list[str], delimiter: str, check_time: Callable[[], None], result: FormulaScan, max_cells: int
) -> Iterator[tuple[int, int, str]]:
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    try:
        for count, row in enumerate(reader):
            if count % _TIME_CHECK_ROWS == 0:
                check_time()
            result.cells += len(row)
            if result.cells > max_cells:
                result.complete = False
                return
            for column, cell in enumerate(row, start=1):
                if cell[:1] in _STARTS:
                    kind = formula_kind(cell)
                    if kind is not None:
                        yield reader.line_num, column, kind
    except csv.Error:
        result.complete = False

