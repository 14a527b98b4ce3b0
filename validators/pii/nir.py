"""The NIR / NIA recognizer: one compiled pattern, structure rules, the key, and how a number is written.

In the style of a Presidio recognizer: the pattern finds candidates in any written form (compact,
grouped by any blank, dot, hyphen, slash, underscore or table-cell mark, split across lines or cells,
overseas 3+2 grouping, key in a separate field, glued to letters, cut over two lines anywhere, and
look-alike letters for digits: widely in OCR text, narrowly in typed text); ``structure`` and the key
decide what a candidate is; the result holds offsets and how the number is written, never the text.
Evidence around a candidate (words, INS authority, identifier structure) is weighed elsewhere
(``decide.py``) so that every caller decides the same way.

Rules (DOMAIN.md §4): sex 1/2 (3, 4, 7, 8 are NIR-like: provisional or foreign numbers), year 00-99,
month 01-12, 20-42 or 50-99, department 01-95, 2A/2B, 97x/98x + 2-digit commune, 99 + country code,
then commune and order (3 digits each) and the key = 97 - (N mod 97), with 2A -> 19 and 2B -> 18.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from validators.pii.explain import Note, render

# Between two groups: nothing, blanks (any Unicode space a PDF or a word processor writes), a dot, a
# hyphen (or its typographic variants), a slash, an underscore (file names), a table-cell mark (; , | tab)
# or a line break. One bounded character class (not an alternation) keeps the regex engine fast on
# digit-heavy logs; which combinations are acceptable is decided afterwards, on the few candidates
# (``_sep_kind``/``_layout_ok``).
_BLANKS = " \t\u00a0\u202f\u2000-\u200a\u3000"
_HYPHENS = "\\-\u2010-\u2013\u2212"
# A question mark or U+FFFD is a no-break space lost in a conversion to a legacy encoding.
_SEP = rf"[{_BLANKS}.{_HYPHENS}/_;,|?\ufffd\r\n]{{0,4}}"
# Before the key the number may also be cut into two fields (CSV, HL7 components, a "Clé" label).
_KEY_SEP = (
    rf"(?:[{_BLANKS}]{{0,12}}(?:[.{_HYPHENS}/_;,|^(?\ufffd](?:\r\n|[\r\n])?|(?:\r\n|[\r\n])[.{_HYPHENS}/_]?"
    rf"|(?i:cl[ée]|key)[{_BLANKS}]{{0,3}}:?)?[{_BLANKS}]{{0,3}})"
)

# The first character is a plain class so that the regex engine can skip ahead fast; the look-behind
# right after it rejects a start in the middle of a longer number. A number glued to letters
# ("NIR185...", "patient185...", "ID185...") is still read: letters before a NIR do not make it less
# real, and the words themselves are weighed as context. The place of birth is a
# 2-character department and a 3-digit commune, or, overseas, a 3-digit department (97x, 98x) and a
# 2-digit commune: the digits are the same, only where a writer puts the blank differs
# (``2 21 09 971 05 889 20``).
PATTERN = re.compile(
    rf"(?P<sex>[1-478])(?<![0-9][1-478])(?P<s1>{_SEP})(?P<year>\d\d)(?P<s2>{_SEP})(?P<month>\d\d)"
    rf"(?P<s3>{_SEP})(?:(?P<dept>\d[\dABab])(?P<s4>{_SEP})(?P<commune>\d{{3}})"
    rf"|(?P<dom>9[78]\d)(?P<s4d>{_SEP})(?P<domc>\d\d))"
    rf"(?P<s5>{_SEP})(?P<order>\d{{3}})(?:(?P<s6>{_KEY_SEP})(?P<key>\d\d))?(?![0-9])"
)

# The same pattern whose digits may also be look-alike letters (O/o for 0, I/l/| for 1, S for 5, B for 8,
# Z for 2). It is the one the recognizer runs: one pass over the text whatever it holds, as fast as the
# plain pattern (the first character is still one class). A match holding letters is read under the
# rules of ``_typed_reading``, or else the plain pattern reads the same place again.
_D = "[0-9OoIlSBZ|]"
LOOKALIKE_PATTERN = re.compile(
    rf"(?P<sex>[1-478IlZB|])(?<![0-9][1-478IlZB|])(?P<s1>{_SEP})(?P<year>{_D}{_D})(?P<s2>{_SEP})"
    rf"(?P<month>{_D}{_D})(?P<s3>{_SEP})(?:(?P<dept>{_D}[0-9ABabOoIlSZ|])(?P<s4>{_SEP})(?P<commune>{_D}{{3}})"
    rf"|(?P<dom>9[78B]{_D})(?P<s4d>{_SEP})(?P<domc>{_D}{_D}))"
    rf"(?P<s5>{_SEP})(?P<order>{_D}{{3}})(?:(?P<s6>{_KEY_SEP})(?P<key>{_D}{_D}))?(?![0-9])"
)

_NIR_SEXES = frozenset("12")
CheckTime = Callable[[], None]
# How often the slower readings (look-alikes, split numbers) look at the clock: hostile text can hold
# millions of them.
_CLOCK_EVERY = 1024


def _no_clock() -> None:
    return None

_OID_BEFORE = re.compile(r"\d\.$")
_OID_AFTER = re.compile(r"^\.\d")


class KeyStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    ABSENT = "absent"


class Layout(StrEnum):
    """How the digits of a match are laid out in the text."""

    COMPACT = "compact"
    GROUPED = "grouped"
    OVERSEAS = "overseas-grouped"
    SPLIT = "split"  # cut by a line break (inside a group or between groups) and read back together
    SPLIT_APART = "split-apart"  # first part followed by other words, the rest at the start of the next line


_LAYOUT_NOTES = {
    Layout.COMPACT: Note("écrit d'un seul tenant", "compact"),
    Layout.GROUPED: Note("écrit par groupes", "grouped"),
    Layout.OVERSEAS: Note("groupé à la façon outre-mer (3 + 2)", "overseas grouping (3 + 2)"),
    Layout.SPLIT: Note("coupé par un saut de ligne", "cut by a line break"),
    Layout.SPLIT_APART: Note("en deux parties sur deux lignes", "in two parts on two lines"),
}
_KEY_NOTES = {
    "valid": Note("clé valide", "valid key"),
    "invalid": Note("clé fausse", "wrong key"),
    "absent": Note("sans clé", "no key"),
}
LOOKALIKE_NOTE = Note("lettres lues comme des chiffres (O→0, l→1, S→5...)", "look-alike letters read as digits")


@dataclass(frozen=True, slots=True)
class NirMatch:
    """A NIR-shaped number found in a text: where, what it is, and how it is written (no digits kept but
    the key)."""

    start: int
    end: int
    body: str  # the 13 normalised characters (Corsica letters upper-case); never put in a report
    key: str | None
    key_status: KeyStatus
    sex: str
    layout: Layout = Layout.COMPACT
    lookalikes: int = 0  # letters read as digits (O->0, l->1...) inside the match

    @property
    def nir_like(self) -> bool:
        """Sex digit 3, 4, 7 or 8: provisional, foreign or NIA-style numbers, not a plain NIR."""
        return self.sex not in _NIR_SEXES

    @property
    def value(self) -> str:
        """The normalised identifier (body and key) for allow-list lookups; never for output."""
        return self.body + (self.key or "")

    @property
    def notes(self) -> list[Note]:
        """How the number is written, as labels (``explain.render``)."""
        notes = [_LAYOUT_NOTES[self.layout], _KEY_NOTES[self.key_status.value]]
        return [*notes, LOOKALIKE_NOTE] if self.lookalikes else notes

    @property
    def explanation(self) -> str:
        return render(self.notes)


def numeric_body(body: str) -> int:
    """The 13 characters as a number, Corsica substituted (2A -> 19, 2B -> 18)."""
    body = body.upper()
    dept = {"2A": "19", "2B": "18"}.get(body[5:7], body[5:7])
    return int(body[:5] + dept + body[7:])


def nir_key(body: str) -> int:
    """The control key of a 13-character NIR body: 97 - (N mod 97)."""
    return 97 - numeric_body(body) % 97


def _month_ok(month: str) -> bool:
    value = int(month)
    return 1 <= value <= 12 or 20 <= value <= 42 or 50 <= value <= 99


def _place_ok(dept: str) -> bool:
    dept = dept.upper()
    if dept in ("2A", "2B"):
        return True
    if not dept.isdigit():
        return False
    # 97/98 are followed by a third department digit (97x, 98x); 99 by a country code: all digits.
    return 1 <= int(dept) <= 95 or dept in ("97", "98", "99")


def structure_problem(body: str) -> str | None:
    """Why a 13-character body cannot be a NIR, or None when every structural rule holds."""
    if len(body) != 13 or body[0] not in "123478":
        return "sex digit"
    if not _month_ok(body[3:5]):
        return "month"
    if not _place_ok(body[5:7]):
        return "department"
    return None


_BLANK_CHARS = frozenset(" \t\u00a0\u202f\u3000" + "".join(chr(c) for c in range(0x2000, 0x200B)))
_MARKS = {
    ".": ".", "/": "/", "_": "_", ";": ";", ",": ",", "|": "|",
    "-": "-", "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-",
    "?": "?", "\ufffd": "?",
}
# Table-cell marks may have blanks around them ("1 ; 85 ; 05"); the others are written glued.
_CELL_MARKS = frozenset(";,|")
_WRAPPED = "+newline"  # the kind of a grouping mark beside a line break: "-+newline"


def _sep_kind(sep: str) -> str:
    """"" (none), "blank", "newline", a mark (".", "-", "/", "_", ";", ",", "|"), or "bad" (".-", two
    line breaks, a mark between blanks where one is not expected...)."""
    if not sep:
        return ""
    stripped = "".join(c for c in sep if c not in _BLANK_CHARS)
    if not stripped:
        return "blank"
    if stripped in ("\n", "\r\n", "\r"):
        return "newline"
    unwrapped = stripped.replace("\r\n", "").replace("\n", "").replace("\r", "")
    if len(unwrapped) == 1 and len(stripped) - len(unwrapped) in (1, 2) and stripped.strip("\r\n") == unwrapped:
        mark = _MARKS.get(unwrapped)  # a grouping mark kept at the end or the start of a wrapped line
        return f"{mark}{_WRAPPED}" if mark is not None and mark not in _CELL_MARKS else "bad"
    mark = _MARKS.get(stripped)
    if mark is None:
        return "bad"
    return mark if sep == stripped or mark in _CELL_MARKS else "bad"


def _layout_ok(seps: list[str], lenient: bool, proved: bool = False) -> bool:
    """Separators inside the body must follow one layout: none, one kind throughout, or one line break.

    A mix of grouped and glued digits is what SIRET, IBAN and phone numbers look like when read with
    NIR groups, so it is refused, except in OCR text (``lenient``), where spaces come and go, and where
    the key proves the number (``proved``): irregular blanks, or one table-cell mark where a number
    grouped by blanks runs over two cells.
    """
    if lenient and proved and all(_read_as_mark(s) for s in seps):
        return True  # OCR puts blanks beside marks and reads a dot as a comma; the key proves the number
    kinds = [_sep_kind(s) for s in seps]
    if "bad" in kinds:
        return False
    if any(k.endswith(_WRAPPED) for k in kinds) or ("newline" in kinds and "" not in kinds):
        return _wrapped_marks(kinds)
    if (lenient or proved) and all(k in ("", "blank") for k in kinds):
        return True
    if all(k == "" for k in kinds):
        return True
    if kinds.count("newline") == 1 and kinds.count("") == len(kinds) - 1:
        return True  # a compact number wrapped at a group boundary
    if proved and sum(kinds.count(m) for m in _CELL_MARKS) == 1:
        rest = {k for k in kinds if k not in _CELL_MARKS}
        if rest in ({""}, {"blank"}, set()):
            return True  # a grouped number whose groups run over two table cells
    if "" in kinds:
        return False
    marks = {k for k in kinds if k != "blank"}  # line breaks never get here (``_wrapped_marks``)
    # Blanks alone, or one mark used throughout.
    return len(marks) == 0 or (len(marks) == 1 and "blank" not in kinds)


def _read_as_mark(sep: str) -> bool:
    """Blanks around at most one grouping mark, on one line."""
    stripped = "".join(c for c in sep if c not in _BLANK_CHARS)
    return not stripped or (len(stripped) == 1 and stripped in _MARKS)


def _wrapped_marks(kinds: list[str]) -> bool:
    """One line break in a number grouped by one mark throughout (``2-54-05-41-`` then ``813-058-06``),
    the mark kept at the end of the line, at the start of the next, or dropped; or blanks and line
    breaks alone (a PDF table, a wrapped line). Table-cell marks are not wrapped: that is two rows."""
    breaks = [k for k in kinds if k == "newline" or k.endswith(_WRAPPED)]
    marks = {k.removesuffix(_WRAPPED) for k in kinds if k != "newline"}
    if marks <= {"blank"}:
        return True
    return len(breaks) == 1 and len(marks) == 1 and not marks & {"blank", "", *_CELL_MARKS}


_KEY_WORD = re.compile(r"cl[ée]|key", re.IGNORECASE)


def _written_as_key(sep: str, seps: list[str]) -> bool:
    """Whether two digits after the body are written as its key rather than as the next field."""
    kind = _sep_kind(sep)
    if kind in ("", "blank", "newline") or _KEY_WORD.search(sep):
        return True
    layout = {_sep_kind(s).removesuffix(_WRAPPED) for s in seps} - {"newline"}
    return layout == {kind.removesuffix(_WRAPPED)}


def _inside_dotted_run(text: str, start: int, end: int) -> bool:
    """A dotted number glued to more dotted digits is an OID or a version, not a NIR."""
    return bool(_OID_BEFORE.search(text[max(0, start - 2) : start]) or _OID_AFTER.match(text[end : end + 2]))


# --- look-alike letters ----------------------------------------------------------------------------
#
# OCR reads some digits as look-alike letters, and text copied from an OCR layer (a scanned PDF, a log
# pasted from a capture) keeps them. In OCR text every run of look-alikes holding a digit is read as
# digits (``ocr_deconfused``). In typed text the reading is narrower, because a letter typed in a number
# is usually a word or a code: the whole number must read as a NIR with a valid key, with at most
# ``MAX_LOOKALIKES`` letters and more digits than letters, not glued to a letter, a digit or a bar
# (``_typed_reading``).
_OCR_CONFUSIONS = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2"})
_OCR_TOKEN = re.compile(r"[0-9OoIl|SBZ]*[0-9][0-9OoIl|SBZ]*")
_CONFUSABLE_RE = re.compile(r"[OoIl|SBZ]")
# A short token of look-alikes only ("l", "lO", "ZO") next to a digit group: a group read wholly wrong.
_SHORT_LOOKALIKES = re.compile(r"(?<![^\W_])[OoIlSBZ]{1,3}(?![^\W_])(?=[ \u00a0\u202f.\-]?[0-9])"
                               r"|(?<=[0-9][ \u00a0\u202f.\-])[OoIlSBZ]{1,3}(?![^\W_])")
MAX_LOOKALIKES = 4


def ocr_deconfused(text: str, keep_corsica: bool = False) -> str:
    """``text`` with look-alike letters read as digits inside digit tokens (same length, same offsets)."""
    if _CONFUSABLE_RE.search(text) is None:
        return text
    fixed = _OCR_TOKEN.sub(lambda m: _as_digits(m.group(0), keep_corsica), text)
    return _SHORT_LOOKALIKES.sub(lambda m: _as_digits(m.group(0), keep_corsica), fixed)


# A "B" after a 2 may be the Corsica department 2B rather than an 8: read both ways.
_KEEP_CORSICA = {k: v for k, v in _OCR_CONFUSIONS.items() if k != ord("B")}
_B_NOT_CORSICA = re.compile(r"(?<!2)B")
_CORSICA_B = re.compile(r"[2Z][Bb]")


def _as_digits(text: str, keep_corsica: bool) -> str:
    """Look-alikes read as digits; with ``keep_corsica``, a B right after a 2 stays the B of 2B."""
    if not keep_corsica:
        return text.translate(_OCR_CONFUSIONS)
    return _B_NOT_CORSICA.sub("8", text.translate(_KEEP_CORSICA))


_RUN_CLASS = rf"[0-9OoIlSBZ|ABab{_BLANKS}.{_HYPHENS}/_;,?\ufffd]"
_RUN_AFTER = re.compile(rf"{_RUN_CLASS}*")
_RUN_BEFORE = re.compile(rf"{_RUN_CLASS}*\Z")
MAX_RUN = 40
_NO_LOOKALIKES = str.maketrans("", "", "OoIlSBZ|")
_NO_DIGITS = str.maketrans("", "", "0123456789")


def _run_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The run of digits, look-alikes and separators holding ``text[start:end]`` (bounded)."""
    before = _RUN_BEFORE.search(text, max(0, start - MAX_RUN), start)
    after = _RUN_AFTER.match(text, end, min(len(text), end + MAX_RUN))
    return (before.start() if before else start), (after.end() if after else end)


def _letters_and_digits(span: str) -> tuple[int, int]:
    return len(span) - len(span.translate(_NO_LOOKALIKES)), len(span) - len(span.translate(_NO_DIGITS))


def _typed_reading(text: str, m: re.Match[str], lenient: bool) -> NirMatch | None:
    """The NIR a match of ``LOOKALIKE_PATTERN`` holding look-alike letters stands for, read in typed text.

    The whole run of digits, look-alikes and separators around the match is read with letters as digits
    (the pattern may have parsed it another way); a number found there is kept only with a valid key, 1
    to ``MAX_LOOKALIKES`` letters in it, more digits than letters, and not glued to a letter, a digit or
    a bar (a word, a code, a longer number or an HL7 field).
    """
    letters, digits = _letters_and_digits(m.group(0))
    if letters > MAX_LOOKALIKES + 2 or digits < 13 - MAX_LOOKALIKES - 2:
        return None  # far from a NIR written with a few letters: not worth a reading
    lo, hi = _run_around(text, m.start(), m.end())
    run = text[lo:hi]
    corsica = _CORSICA_B.search(run) is not None
    for keep_corsica in (True, False) if corsica else (False,):
        fixed = _as_digits(run, keep_corsica)
        for found in _find_plain(fixed, lenient):
            start, end = lo + found.start, lo + found.end
            if found.key_status is not KeyStatus.VALID or end <= m.start() or start >= m.end():
                continue
            read, digits = _letters_and_digits(run[found.start : found.end])
            before = text[start - 1] if start else " "
            after = text[end] if end < len(text) else " "
            glued = before.isalnum() or before == "|" or after.isalnum()
            if 1 <= read <= MAX_LOOKALIKES and digits > read and not glued:
                return NirMatch(start, end, found.body, found.key, found.key_status, found.sex, found.layout, read)
    return None


# --- numbers cut over two lines ----------------------------------------------------------------------
#
# A number wrapped by a table cell or a text editor: the first part on one line, the rest at the start of
# the next one, cut anywhere (inside a group too), possibly with other words after the first part (the
# rest of a table row). The pattern above reads a line break between two groups; this reads the others,
# starting from the lines that begin with a short number, and accepts only a key-valid NIR (or a
# 13-character body, which the scan reports only where it is labelled).
_TAIL_GROUP = r"(?:2[ABab]|[0-9]{1,3})"
# A literal first character lets the regular expression engine jump from line break to line break; a
# carriage return alone (an HTML block) has its own pattern. A line opening on an ISO date is no tail.
_LINE_START = r"[ \t\u00a0\u202f]*(?![0-9]{4}-[0-9])"
_TAIL = (
    rf"(?P<tail>(?>(?:[ABab]|{_TAIL_GROUP})(?:[ \u00a0\u202f.\-]{_TAIL_GROUP})+)"
    r"|[ABab]?[0-9](?:[0-9]|(?<=2)[ABab]){0,13}+)"
    r"(?![0-9A-Za-z])(?![\-:/.,][0-9])(?![ \t]*[;|\t])"  # a cell of a table row: no wrapped number
)
_LINE_START_NUMBER = re.compile(rf"\n{_LINE_START}{_TAIL}")
_BLOCK_START_NUMBER = re.compile(rf"\r(?!\n){_LINE_START}{_TAIL}")
# In OCR text blanks come and go inside a number ("03 2317677911"): the rest is any run of digits with
# at most one blank or mark between two of them, read under the OCR rules (a valid key still required).
_OCR_TAIL = (
    r"(?P<tail>[ABab]?[0-9](?:[ \u00a0\u202f.\-]?(?:[0-9]|(?<=2)[ABab])){0,16}+)"
    r"(?![0-9A-Za-z])(?![\-:/.,][0-9])(?![ \t]*[;|\t])"
)
_OCR_LINE_START_NUMBER = re.compile(rf"\n{_LINE_START}{_OCR_TAIL}")
_OCR_BLOCK_START_NUMBER = re.compile(rf"\r(?!\n){_LINE_START}{_OCR_TAIL}")
_HEAD = re.compile(r"(?<![0-9A-Za-z])[1-478](?:[ \u00a0\u202f.\-]?(?:[0-9]|(?<=2)[ABab]))*(?![0-9A-Za-z])")
MAX_LINE_LOOKBACK = 240


def _digits_in(part: str) -> int:
    return sum(1 for c in part if c.isdigit() or c in "ABab")


def _split_numbers(text: str, check_time: CheckTime, lenient: bool = False) -> Iterator[NirMatch]:
    lines, blocks = (_OCR_LINE_START_NUMBER, _OCR_BLOCK_START_NUMBER) if lenient else (_LINE_START_NUMBER,
                                                                                      _BLOCK_START_NUMBER)
    starts = lines.finditer(text)
    if "\r" in text:
        starts = heapq.merge(starts, blocks.finditer(text), key=lambda f: f.start())
    for count, found in enumerate(starts, start=1):
        if count % _CLOCK_EVERY == 0:
            check_time()
        tail = found.group("tail")
        tail_digits = _digits_in(tail)
        if tail_digits > 14:
            continue
        cut = found.start()
        if cut and text[cut - 1] == "\r" and text[cut] == "\n":
            cut -= 1  # a CRLF line break
        lowest = max(0, cut - MAX_LINE_LOOKBACK)
        offset = max(text.rfind("\n", lowest, cut), text.rfind("\r", lowest, cut), lowest - 1) + 1
        previous = text[offset:cut]
        for head in _HEAD.finditer(previous):
            if _digits_in(head.group(0)) + tail_digits not in (13, 15):
                continue
            apart = bool(previous[head.end() :].strip())
            match = _joined(head.group(0), tail, apart, lenient)
            if match is not None:
                yield NirMatch(offset + head.start(), found.end("tail"), match.body, match.key, match.key_status,
                               match.sex, Layout.SPLIT_APART if apart else Layout.SPLIT)


def _joined(head: str, tail: str, apart: bool, lenient: bool = False) -> NirMatch | None:
    """The NIR read from ``head`` then ``tail`` (glued, or with a blank between), if it is whole."""
    for joined in (head + tail, head + " " + tail):
        for m in _find_plain(joined, lenient):
            if m.start == 0 and m.end == len(joined) and m.key_status is not KeyStatus.INVALID:
                if apart and m.key_status is not KeyStatus.VALID:
                    continue  # two numbers apart make a 13-character body too easily
                return m
    return None


_MONTHS = frozenset(f"{m:02d}" for m in (*range(1, 13), *range(20, 43), *range(50, 100)))
_PLACES = frozenset({f"{d:02d}" for d in range(1, 96)} | {"2A", "2B", "97", "98", "99"})
_GROUPS = ("sex", "s1", "year", "s2", "month", "s3", "dept", "s4", "commune", "dom", "s4d", "domc", "s5", "order",
           "s6", "key")


def _read(m: re.Match[str], text: str, lenient: bool) -> NirMatch | None:
    """The NIR-shaped number a match of either pattern stands for (its digits as written), or None."""
    sex, s1, year, s2, month, s3, dept, s4, commune, dom, s4d, domc, s5, order, s6, key = m.group(*_GROUPS)
    if dom is None:
        body = sex + year + month + dept + commune + order
        if not dept.isdigit():
            body = body.upper()
    else:
        body, s4 = sex + year + month + dom + domc + order, s4d
    if body[3:5] not in _MONTHS or body[5:7] not in _PLACES:  # structure_problem(), inlined
        return None
    compact = not (s1 or s2 or s3 or s4 or s5)
    valid_key = key is not None and int(key) == nir_key(body)
    seps = [s1, s2, s3, s4, s5]
    # An irregular grouping with blanks is still a NIR when its key proves it ("185 05 78...").
    if not compact and not _layout_ok(seps, lenient, valid_key):
        return None
    if not compact and "." in "".join(seps) and _inside_dotted_run(text, m.start(), m.end()):
        return None
    end = m.end()
    if valid_key:
        status = KeyStatus.VALID
    elif key is None:
        status = KeyStatus.ABSENT
    elif _written_as_key(s6, seps):
        status = KeyStatus.INVALID
    else:
        # A wrong key may simply be the next field: keep the body alone, the key counts as absent
        # unless it was written like the groups (glued, blank, or the same mark) or labelled as a key.
        key, status, end = None, KeyStatus.ABSENT, m.end("order")
    layout = Layout.COMPACT if compact else (Layout.OVERSEAS if dom is not None and s4 else Layout.GROUPED)
    return NirMatch(m.start(), end, body, key, status, body[0], layout)


def _find_plain(text: str, lenient: bool) -> Iterator[NirMatch]:
    """The NIR-shaped numbers written with digits only."""
    for m in PATTERN.finditer(text):
        found = _read(m, text, lenient)
        if found is not None:
            yield found


def _has_lookalikes(m: re.Match[str]) -> bool:
    """Whether a match of ``LOOKALIKE_PATTERN`` holds a look-alike letter (the B of 2B is Corsica's)."""
    sex, year, month, dept, commune, dom, domc, order, key = m.group(
        "sex", "year", "month", "dept", "commune", "dom", "domc", "order", "key"
    )
    corsica = dept is not None and dept[0] == "2" and dept[1] in "ABab"  # 2A/2B: letters that are no look-alike
    place = dom + domc if dom is not None else ("20" if corsica else dept) + commune
    return not (sex + year + month + place + order + (key or "")).isdigit()


def _letter_nearby(text: str, m: re.Match[str]) -> bool:
    """Whether a digits-only match may be part of a number written with look-alikes: a bar the pattern
    read as a separator, a look-alike letter right after it, or Corsica's 2B, which may be a 28 whose 8
    was typed or read as a B."""
    dept = m.group("dept")
    corsica_b = dept is not None and dept in ("2B", "2b")
    return corsica_b or "|" in m.group(0) or text[m.end() : m.end() + 1] in ("O", "o", "I", "l", "S", "B", "Z")


def _find(
    text: str, lenient: bool, lookalikes: bool = True, check_time: CheckTime = _no_clock
) -> Iterator[NirMatch]:
    """Every NIR-shaped number of ``text``, in one pass of ``LOOKALIKE_PATTERN``.

    Hot loop: a log of numbers yields millions of candidates, so each is read with one group() call and
    the common compact layout skips the separator rules. A match holding look-alike letters is read as
    typed text (``_typed_reading``, when ``lookalikes``) or else read again by the plain pattern.
    """
    done = 0  # where the last number yielded ends: a plain reading may run past the match it replaces
    lettered = 0
    for m in LOOKALIKE_PATTERN.finditer(text):
        if m.start() < done:
            continue
        if not _has_lookalikes(m):
            found = _read(m, text, lenient)
            if lookalikes and (found is None or found.key_status is not KeyStatus.VALID) and _letter_nearby(text, m):
                typed = _typed_reading(text, m, lenient)  # the bar was a 1, or the key ends in a letter
                found = typed if typed is not None and typed.start >= done else found
            if found is not None:
                done = found.end
                yield found
            continue
        lettered += 1
        if lettered % _CLOCK_EVERY == 0:
            check_time()  # letters between digits cost a reading each: a soup of them is bounded in time
        typed = _typed_reading(text, m, lenient) if lookalikes else None
        if typed is not None and typed.start >= done:
            done = typed.end
            yield typed
            continue
        # The plain reading of the place: numbers starting inside the match (two characters before it
        # for the look-behinds, enough after it for a key written apart).
        lo, hi = max(0, m.start() - 2), min(len(text), m.end() + _EXTRA_MARGIN)
        for found in _find_plain(text[lo:hi], lenient):
            start, end = lo + found.start, lo + found.end
            if max(m.start(), done) <= start < m.end() and (end < hi or hi == len(text)):
                done = end
                yield NirMatch(start, end, found.body, found.key, found.key_status, found.sex, found.layout)


_EXTRA_MARGIN = 64


def _better(new: NirMatch, kept: NirMatch) -> bool:
    return kept.key_status is not KeyStatus.VALID and new.key_status is KeyStatus.VALID


def _counted(m: NirMatch, text: str, fixed: str) -> NirMatch:
    read = sum(1 for a, b in zip(text[m.start : m.end], fixed[m.start : m.end], strict=True) if a != b)
    return NirMatch(m.start, m.end, m.body, m.key, m.key_status, m.sex, m.layout, read)


def _settled(
    text: str, lenient: bool, lookalikes: bool, extras: list[NirMatch]
) -> tuple[list[NirMatch], set[tuple[int, int]]]:
    """The extra readings worth keeping, and the spans of the plain matches they replace.

    An extra reading (look-alikes, a split number) is dropped where the text as written already gives a
    key-valid number or the same one; it replaces the plain reading of that place otherwise. Extras are
    few: the plain matches around each are found again in a small window rather than kept in memory
    (a log of digits has millions of them).
    """
    kept: list[NirMatch] = []
    replaced: set[tuple[int, int]] = set()
    for extra in extras:
        lo = max(0, extra.start - _EXTRA_MARGIN)
        window = text[lo : extra.end + _EXTRA_MARGIN]
        plain = [m for m in _find(window, lenient, lookalikes) if lo + m.start < extra.end and extra.start < lo + m.end]
        if any(m.key_status is KeyStatus.VALID or (m.body, m.key) == (extra.body, extra.key) for m in plain):
            continue
        if any(k.start < extra.end and extra.start < k.end and not _better(extra, k) for k in kept):
            continue
        kept = [k for k in kept if not (k.start < extra.end and extra.start < k.end)]
        kept.append(extra)
        replaced.update((lo + m.start, lo + m.end) for m in plain)
    return kept, replaced


def find_nirs(
    text: str, *, lenient: bool = False, ocr: bool = False, check_time: CheckTime = _no_clock
) -> Iterator[NirMatch]:
    """Every structurally valid NIR-shaped number in ``text`` (key valid, invalid or absent), in order.

    ``lenient`` accepts any mix of blanks and glued groups: OCR drops and adds spaces between digits.
    ``ocr`` reads every look-alike letter inside digit runs as a digit (O/o->0, I/l/|->1, S->5, B->8,
    Z->2), whatever the key; typed text is read that way too, but narrowly (whole tokens, valid key).
    Numbers cut over two lines anywhere are read back together (valid key, or a body without key).
    """
    extras: list[NirMatch] = []
    if ocr:
        for keep_corsica in (False, True):
            fixed = ocr_deconfused(text, keep_corsica)
            if fixed != text:
                extras += [c for c in (_counted(m, text, fixed) for m in _find_plain(fixed, lenient)) if c.lookalikes]
    if "\n" in text or "\r" in text:
        extras += _split_numbers(text, check_time, lenient)
    lookalikes = not ocr  # OCR text has its own, wider reading of look-alikes (the extras above)
    if not extras:
        yield from _find(text, lenient, lookalikes, check_time)
        return
    kept, replaced = _settled(text, lenient, lookalikes, sorted(extras, key=lambda m: m.start))
    plain = (m for m in _find(text, lenient, lookalikes, check_time) if (m.start, m.end) not in replaced)
    yield from heapq.merge(plain, kept, key=lambda m: m.start)


__all__ = [
    "PATTERN", "KeyStatus", "Layout", "NirMatch", "find_nirs", "nir_key", "numeric_body", "ocr_deconfused",
    "structure_problem",
]
