"""Words around a candidate number: what the text *says* it is. Words never clear a number, they only
move its severity (``decide.py`` weighs them); only positive evidence (the allow-list, an identifier
structure) clears one.

Four kinds of words, each a label from a fixed vocabulary (never document content) kept for the
explanation of a finding:

- ``label``: names the identifier itself (NIR, n° SS, sécurité sociale, INS, matricule, carte Vitale...).
  Makes a 13-character body without key, or a number failing its key, worth reporting.
- ``person``: names the person a number belongs to (patient, bénéficiaire, ayant droit). Like a label,
  keeps a key-valid number an error whatever lowering words are around it, and makes a 13-character NIR
  body reportable (the issue lists these words as positive context); unlike a label, it does not make a
  number with a wrong key reportable, nor outweigh a compact date-time (``decide.py``).
- ``declared``: the writer says the value is not real (test, fictif, démo, exemple). A declaration is
  not evidence: it lowers the number at this place to a warning, never further.
- ``lowering``: names another kind of number (facture, commande, suivi, tél., version, SIRET...). Lowers
  a key-valid number to a warning when nothing names it as a NIR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WINDOW_BEFORE = 48
WINDOW_AFTER = 24
# A declaration concerns the value it stands next to, not a whole paragraph.
DECLARED_BEFORE = 32
DECLARED_AFTER = 32

_WORD_START = r"(?<![a-z0-9à-ÿ])"
_WORD_END = r"(?![a-z0-9à-ÿ])"

# Labels and person words are also read with their accented letters lost to a bad conversion ("B?n?ficiaire",
# "S\ufffdcurit\ufffd sociale": a tool writing Latin-1 text as ASCII or UTF-8): positive context, read broadly.
_LABEL = re.compile(
    _WORD_START
    + r"(?:nir|nia|ins(?:-nir|-nia|-c)?|nss|ssn|insee|matricule|immatricul\w*|"
    r"s[ée?\ufffd]cu(?:rit[ée?\ufffd])?(?:[ \u00a0]+sociale)?|n[°o?\ufffd]\s*(?:de\s+)?s\.?\s?s\b\.?|"
    r"num[ée?\ufffd]ro\s+(?:de\s+)?ss|"
    r"num(?:[ée?\ufffd]ro)?[ ._-]*(?:de[ _]+)?(?:ss|s[ée?\ufffd]cu)|"
    r"social\s+security|assur[ée?\ufffd]e?s?(?:\s+social)?|carte\s+vitale|r[ée?\ufffd]pertoire\s+des\s+personnes|"
    # the NIR's own name: "numéro d'inscription au répertoire (national d'identification des personnes...)"
    r"inscription\s+au\s+r[ée?\ufffd]pertoire|"
    r"nir@|@patient\.mssante)"
    + _WORD_END,
    re.IGNORECASE,
)
_PERSON = re.compile(
    _WORD_START + r"(?:patiente?s?|b[ée?\ufffd]n[ée?\ufffd]ficiaires?|ayants?[ -]droits?|usagers?)" + _WORD_END,
    re.IGNORECASE,
)
# A host or path part ("dpi.example.fr", "/test/") is an address, not a declaration about the value.
_DECLARED = re.compile(
    r"(?<!\.)"
    + _WORD_START
    + r"(?:tests?|ficti(?:f|ve|fs|ves|tious)|factices?|d[ée]mo(?:nstration)?s?|exemples?|examples?|"
    r"dummy|fake|bidon|anonymis[ée]e?s?)"
    + _WORD_END
    + r"(?![./]\w)",
    re.IGNORECASE,
)
_LOWERING = re.compile(
    _WORD_START
    + r"(?:factur\w*|invoice|commande|order|cde|cmd|bon|ticket|transaction|trace|r[ée]f(?:[ée]rence)?|"
    r"siret|siren|finess|rpps|adeli|iban|bic|rib|cip(?:13)?|ean(?:13)?|gtin|lot|colis|tracking|suivi|"
    r"t[ée]l[ée]?(?:phone)?|tel|phone|fax|oid|codesystem|isbn|serial|s[ée]rie|version|build|release)"
    + _WORD_END,
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ContextHit:
    """The context words found next to a candidate (the words themselves, lower-cased; None if absent)."""

    label: str | None = None
    person: str | None = None
    declared: str | None = None
    lowering: str | None = None

    @property
    def positive(self) -> str | None:
        """The word that names the number as a person's identifier, if any."""
        return self.label or self.person


NO_CONTEXT = ContextHit()


def _word(pattern: re.Pattern[str], *windows: str) -> str | None:
    for window in windows:
        found = pattern.search(window)
        if found is not None:
            return " ".join(found.group(0).lower().split())
    return None


# Another number next to a declaration: digits (possibly grouped) with at least three of them, so that a
# "worker-1" tag or a "4.2" version does not steal a declaration from the value it stands beside.
_NUMBER = re.compile(r"\d(?:[\d .\-/\u00a0\u202f]*\d)?")


def _numbers(window: str) -> list[tuple[int, int]]:
    return [m.span() for m in _NUMBER.finditer(window) if sum(c.isdigit() for c in m.group(0)) >= 3]


def _nearer_to_us(window: str, found: re.Match[str], to_us: int) -> bool:
    """Whether ``found`` is nearer to our value (``to_us`` characters away) than to any other number."""
    for start, end in _numbers(window):
        gap = found.start() - end if start < found.start() else start - found.end()
        if gap < to_us:
            return False
    return True


def _declared(before: str, after: str) -> str | None:
    """A declaration word that belongs to this value: nearer to it than to any other number around."""
    for found in _DECLARED.finditer(before):
        if _nearer_to_us(before, found, len(before) - found.end()):
            return " ".join(found.group(0).lower().split())
    for found in _DECLARED.finditer(after):
        if _nearer_to_us(after, found, found.start()):
            return " ".join(found.group(0).lower().split())
    return None


_LETTER = re.compile(r"[^\W\d_]")


def label_near(text: str, start: int, end: int, *, person: bool = False) -> str | None:
    """The label naming ``text[start:end]`` as a NIR (or, with ``person``, a person word), if any: the only
    word a number without a valid key needs; cheaper than ``context_of`` for the many such candidates of
    a log of numbers."""
    before = text[max(0, start - WINDOW_BEFORE) : start]
    after = text[end : end + WINDOW_AFTER]
    if _LETTER.search(before) is None and _LETTER.search(after) is None:
        return None
    found = _word(_LABEL, before, after)
    return found if found is not None or not person else _word(_PERSON, before, after)


def _in_record(before: str, after: str, fields: bool) -> tuple[str, str]:
    if not fields:
        return before, after
    cut = min((i for i in (after.find("\n"), after.find("\r")) if i >= 0), default=len(after))
    return _same_record(before, "\n\r"), after[:cut]


def _same_record(before: str, breaks: str) -> str:
    """The part of ``before`` in the candidate's own record (a log line, a table row)."""
    return before[max((before.rfind(b) for b in breaks), default=-1) + 1 :]


def context_of(
    text: str, start: int, end: int, record_breaks: str = "\n\r", fields: bool = False
) -> ContextHit:
    """What the words just before and after ``text[start:end]`` say the number is (a word naming another
    kind of number only counts in the number's own record: up to one of ``record_breaks`` before it; with
    ``fields``, a declaration too)."""
    before = text[max(0, start - WINDOW_BEFORE) : start]
    after = text[end : end + DECLARED_AFTER]
    if _LETTER.search(before) is None and _LETTER.search(after) is None:
        return NO_CONTEXT  # numbers and punctuation only: no word at all
    after = after[:WINDOW_AFTER]
    return ContextHit(
        label=_word(_LABEL, before, after),
        person=_word(_PERSON, before, after),
        declared=_declared(*_in_record(before[-DECLARED_BEFORE:], text[end : end + DECLARED_AFTER], fields)),
        # Another kind of number is named before it in its own record ("Facture n° ..."), not after,
        # and not by the previous row of a table.
        lowering=_word(_LOWERING, _same_record(before, record_breaks)),
    )


# OCR reads letters of a label as digits ("N1R", "num_55" for num_ss): for the words around a number,
# a look-alike digit touching a letter or an underscore is read as the letter (same length, so offsets
# hold). The number itself is always read from the text as OCR gave it.
_LETTERISH_DIGIT = re.compile(r"(?<=[^\W\d])[015]|[015](?=[^\W\d])")  # [^\W\d]: a letter or "_"
_AS_LETTER = str.maketrans("015", "ois")


def ocr_words(text: str) -> str:
    """``text`` with the look-alike digits inside words read as letters, for finding labels in OCR text."""
    for _ in range(4):  # "_55": each pass reads one more digit of a run next to a letter
        fixed = _LETTERISH_DIGIT.sub(lambda m: m.group(0).translate(_AS_LETTER), text)
        if fixed == text:
            break
        text = fixed
    return text


MAX_HEADER_CHARS = 48
MAX_HEADER_WORDS = 5


def header_words(cell: str) -> ContextHit:
    """What a table's header cell says its column holds: a label or a person word (a column title: a
    few short words, not a sentence that happens to hold commas)."""
    words = cell.split()
    cell = " ".join(words)
    if not cell or len(cell) > MAX_HEADER_CHARS or len(words) > MAX_HEADER_WORDS:
        return NO_CONTEXT
    return ContextHit(label=_word(_LABEL, cell), person=_word(_PERSON, cell))


__all__ = [
    "DECLARED_AFTER", "DECLARED_BEFORE", "MAX_HEADER_CHARS", "MAX_HEADER_WORDS", "NO_CONTEXT", "WINDOW_AFTER",
    "WINDOW_BEFORE", "ContextHit", "context_of", "header_words", "label_near", "ocr_words",
]
