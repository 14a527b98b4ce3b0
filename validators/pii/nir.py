"""The NIR / NIA recognizer: one compiled pattern, structure rules, the key, and an explanation.

In the style of a Presidio recognizer: the pattern finds candidates in any written form (compact,
grouped by any blank, dot, hyphen, slash, underscore or table-cell mark, split across lines or cells,
overseas 3+2 grouping, key in a separate field, glued to letters; in OCR text, look-alike letters inside
digit runs); ``structure`` and the key decide what a candidate is; the result holds offsets and an
explanation, never the text. Evidence around a candidate (words, INS authority, identifier structure)
is weighed elsewhere (``decide.py``) so that every caller decides the same way.

Rules (DOMAIN.md §4): sex 1/2 (3, 4, 7, 8 are NIR-like: provisional or foreign numbers), year 00-99,
month 01-12, 20-42 or 50-99, department 01-95, 2A/2B, 97x/98x + 2-digit commune, 99 + country code,
then commune and order (3 digits each) and the key = 97 - (N mod 97), with 2A -> 19 and 2B -> 18.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

# Between two groups: nothing, blanks (any Unicode space a PDF or a word processor writes), a dot, a
# hyphen (or its typographic variants), a slash, an underscore (file names), a table-cell mark (; , | tab)
# or a line break. One bounded character class (not an alternation) keeps the regex engine fast on
# digit-heavy logs; which combinations are acceptable is decided afterwards, on the few candidates
# (``_sep_kind``/``_layout_ok``).
_BLANKS = " \t\u00a0\u202f\u2000-\u200a\u3000"
_HYPHENS = "\\-\u2010-\u2013\u2212"
_SEP = rf"[{_BLANKS}.{_HYPHENS}/_;,|\r\n]{{0,4}}"
# Before the key the number may also be cut into two fields (CSV, HL7 components, a "Clé" label).
_KEY_SEP = (
    rf"(?:[{_BLANKS}]{{0,12}}(?:[.{_HYPHENS}/_;,|^(]|\r?\n|(?i:cl[ée]|key)[{_BLANKS}]{{0,3}}:?)?[{_BLANKS}]{{0,3}})"
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

_NIR_SEXES = frozenset("12")
_OID_BEFORE = re.compile(r"\d\.$")
_OID_AFTER = re.compile(r"^\.\d")


class KeyStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class NirMatch:
    """A NIR-shaped number found in a text: where, what it is, and why (no digits kept but the key)."""

    start: int
    end: int
    body: str  # the 13 normalised characters (Corsica letters upper-case); never put in a report
    key: str | None
    key_status: KeyStatus
    sex: str
    explanation: str

    @property
    def nir_like(self) -> bool:
        """Sex digit 3, 4, 7 or 8: provisional, foreign or NIA-style numbers, not a plain NIR."""
        return self.sex not in _NIR_SEXES

    @property
    def value(self) -> str:
        """The normalised identifier (body and key) for allow-list lookups; never for output."""
        return self.body + (self.key or "")


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
}
# Table-cell marks may have blanks around them ("1 ; 85 ; 05"); the others are written glued.
_CELL_MARKS = frozenset(";,|")


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
    mark = _MARKS.get(stripped)
    if mark is None:
        return "bad"
    return mark if sep == stripped or mark in _CELL_MARKS else "bad"


def _layout_ok(seps: list[str], lenient: bool) -> bool:
    """Separators inside the body must follow one layout: none, one kind throughout, or one line break.

    A mix of grouped and glued digits is what SIRET, IBAN and phone numbers look like when read with
    NIR groups, so it is refused, except in OCR text (``lenient``), where spaces come and go.
    """
    kinds = [_sep_kind(s) for s in seps]
    if "bad" in kinds:
        return False
    if lenient and all(k in ("", "blank") for k in kinds):
        return True
    if all(k == "" for k in kinds):
        return True
    if kinds.count("newline") == 1 and kinds.count("") == len(kinds) - 1:
        return True  # a compact number wrapped at a group boundary
    if "" in kinds:
        return False
    marks = {k for k in kinds if k not in ("blank", "newline")}
    # Blanks and line breaks mix freely (a PDF table, a wrapped line); a mark is used throughout.
    return len(marks) == 0 or (len(marks) == 1 and kinds.count("blank") + kinds.count("newline") == 0)


_KEY_WORD = re.compile(r"cl[ée]|key", re.IGNORECASE)


def _written_as_key(sep: str, seps: list[str]) -> bool:
    """Whether two digits after the body are written as its key rather than as the next field."""
    kind = _sep_kind(sep)
    if kind in ("", "blank", "newline") or _KEY_WORD.search(sep):
        return True
    layout = {_sep_kind(s) for s in seps}
    return layout == {kind}


def _inside_dotted_run(text: str, start: int, end: int) -> bool:
    """A dotted number glued to more dotted digits is an OID or a version, not a NIR."""
    return bool(_OID_BEFORE.search(text[max(0, start - 2) : start]) or _OID_AFTER.match(text[end : end + 2]))


# OCR reads some digits as look-alike letters. Only inside a token that already holds a digit, so that
# words ("SOLO", "Il") are never read as numbers; 2A/2B stay letters in the original text, which is
# scanned too.
_OCR_CONFUSIONS = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2"})
_OCR_TOKEN = re.compile(r"[0-9OoIl|SBZ]*[0-9][0-9OoIl|SBZ]*")
_CONFUSABLE = frozenset("OoIl|SBZ")


def ocr_deconfused(text: str) -> str:
    """``text`` with look-alike letters read as digits inside digit tokens (same length, same offsets)."""
    if not any(c in _CONFUSABLE for c in text):
        return text
    return _OCR_TOKEN.sub(lambda m: m.group(0).translate(_OCR_CONFUSIONS), text)


_MONTHS = frozenset(f"{m:02d}" for m in (*range(1, 13), *range(20, 43), *range(50, 100)))
_PLACES = frozenset({f"{d:02d}" for d in range(1, 96)} | {"2A", "2B", "97", "98", "99"})
_GROUPS = ("sex", "s1", "year", "s2", "month", "s3", "dept", "s4", "commune", "dom", "s4d", "domc", "s5", "order",
           "s6", "key")


def _find(text: str, lenient: bool) -> Iterator[NirMatch]:
    # Hot loop: a log of numbers yields millions of candidates, so each is read with one group() call
    # and the common compact layout skips the separator rules.
    for m in PATTERN.finditer(text):
        sex, s1, year, s2, month, s3, dept, s4, commune, dom, s4d, domc, s5, order, s6, key = m.group(*_GROUPS)
        if dom is None:
            body = sex + year + month + dept + commune + order
            if not dept.isdigit():
                body = body.upper()
        else:
            body, s4 = sex + year + month + dom + domc + order, s4d
        if body[3:5] not in _MONTHS or body[5:7] not in _PLACES:  # structure_problem(), inlined
            continue
        compact = not (s1 or s2 or s3 or s4 or s5)
        valid_key = key is not None and int(key) == nir_key(body)
        seps = [s1, s2, s3, s4, s5]
        # An irregular grouping with blanks is still a NIR when its key proves it ("185 05 78...").
        if not compact and not _layout_ok(seps, lenient or valid_key):
            continue
        if not compact and "." in "".join(seps) and _inside_dotted_run(text, m.start(), m.end()):
            continue
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
        layout = "compact" if compact else ("overseas-grouped" if dom is not None and s4 else "grouped")
        yield NirMatch(m.start(), end, body, key, status, body[0], f"pattern nir-{layout}; structure ok; key {status}")


def find_nirs(text: str, *, lenient: bool = False, ocr: bool = False) -> Iterator[NirMatch]:
    """Every structurally valid NIR-shaped number in ``text`` (key valid, invalid or absent).

    ``lenient`` accepts any mix of blanks and glued groups: OCR drops and adds spaces between digits.
    ``ocr`` also reads look-alike letters inside digit runs as digits (O/o->0, I/l/|->1, S->5, B->8,
    Z->2); a match found that way is kept where the text as written gave nothing better at that place.
    Plain text is never read that way: a letter typed in a number is not a recognition error.
    """
    if not ocr:
        yield from _find(text, lenient)
        return
    found = {m.start: m for m in _find(text, lenient)}
    fixed = ocr_deconfused(text)
    if fixed != text:
        for m in _find(fixed, lenient):
            kept = found.get(m.start)
            better = kept is None or (kept.key_status is not KeyStatus.VALID and m.key_status is KeyStatus.VALID)
            if better and m.body != (kept.body if kept else None):
                found[m.start] = NirMatch(
                    m.start, m.end, m.body, m.key, m.key_status, m.sex,
                    m.explanation + "; OCR look-alike letters read as digits",
                )
    yield from sorted(found.values(), key=lambda m: m.start)


__all__ = [
    "PATTERN", "KeyStatus", "NirMatch", "find_nirs", "nir_key", "numeric_body", "ocr_deconfused",
    "structure_problem",
]
