"""Find proof identifiers in the way publishers write them (names, folders, manifest keys).

One parser for every form seen in ANS material (docs/domain.md §1): ``INS.41.2.2``, ``INS 41.2.2``,
``DOC 3.1.2``, ``INS_41_2_2_capture.png``, zero-padded ``DMP/AIRS.03.01.01``, the Va2 republication
``INS/va1.35.02.02``, Squash-internal ``LGC.INS.41`` and ``SC.INS/va1.35``. It only reports what is
written (section, numbers, level); what an id *means* is the referential's business
(``validators.referential``). A match needs a section code the referential knows, so version numbers,
dates and screen sizes (``v2.1.3``, ``IMG_2024.01.3.png``, ``1920x1080``) are never read as ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

# Past this length a name is not a file name any more; cut it so a hostile name costs nothing.
MAX_TEXT = 4096

LEVELS = {1: "requirement", 2: "scenario", 3: "proof"}


@dataclass(frozen=True)
class IdSyntax:
    """What the parser needs from a referential: its section codes and written conventions."""

    sections: tuple[str, ...]
    squash_prefixes: tuple[str, ...] = ("LGC", "SC", "CH")
    crosswalk_marker: str = "va1"


@dataclass(frozen=True)
class IdMatch:
    """One id found in a text, as written.

    ``section`` is upper-case and includes an unknown sub-section (``DMP/AIRS``); ``crosswalk`` is
    true for the republished forms (``INS/va1.35.02.02``) that only a table can map;
    ``malformed`` says why a text that looks like an id cannot be one.
    """

    written: str
    span: tuple[int, int]
    section: str
    numbers: tuple[int, ...]
    crosswalk: bool = False
    prefix: str | None = None
    malformed: str | None = None

    @property
    def level(self) -> str:
        return LEVELS[len(self.numbers)]

    @property
    def key(self) -> str:
        """Case- and padding-free key: ``INS.41.2.2``, ``INS/VA1.35.2.2``."""
        section = f"{self.section}/VA1" if self.crosswalk else self.section
        return ".".join([section, *(str(n) for n in self.numbers)])


_SEP = r"[._\- ]"


@lru_cache(maxsize=16)
def _pattern(syntax: IdSyntax) -> re.Pattern[str]:
    # Longest codes first so that a sub-section written in the referential (Va2 "DMP/AIRS") wins.
    sections = sorted({s.upper() for s in syntax.sections}, key=lambda s: (-len(s), s))
    roots = sorted({s.split("/")[0].upper() for s in syntax.sections}, key=lambda s: (-len(s), s))
    alternatives = "|".join(re.escape(s) for s in sections)
    root_alternatives = "|".join(re.escape(s) for s in roots)
    prefixes = "|".join(re.escape(p) for p in syntax.squash_prefixes) or "(?!)"
    marker = re.escape(syntax.crosswalk_marker) if syntax.crosswalk_marker else "(?!)"
    return re.compile(
        rf"""
        (?<![A-Za-z0-9])
        (?:(?P<prefix>{prefixes})\.)?
        (?P<section>{alternatives})
        # An unknown sub-section (Va2 "DMP/AIRS" read with the Va1 referential); never a known root,
        # so that a folder "INS/" in front of "INS.41.2.2" stays a folder.
        (?P<sub>/(?!{marker}(?![A-Za-z]))(?!(?:{root_alternatives})(?![A-Za-z]))[A-Za-z]{{2,12}})?
        (?P<marker>/{marker})?
        {_SEP}{{1,2}}
        (?P<n1>\d{{1,3}})(?!\d)
        (?:(?P<s1>{_SEP})(?P<n2>\d{{1,3}})(?!\d))?
        (?:(?P<s2>{_SEP})(?P<n3>\d{{1,3}})(?!\d))?
        # A fourth dotted number ("INS.41.2.2.1") is no Va1 id; "_1" after an id is a file counter.
        (?P<extra>\.\d{{1,3}}(?!\d))?
        """,
        re.IGNORECASE | re.VERBOSE,
    )


# "INS 41.2.1 et 41.2.2", "INS.41.2.1, 41.2.2 & 41.2.3": further proofs of the same section joined by a
# conjunction. Read as ids so that a name holding several proofs is reported, never silently cut to one.
_CONTINUATION = re.compile(
    rf"\s*(?:,|;|&|\+|\bet\b|\band\b)\s*(?P<n1>\d{{1,3}}){_SEP}(?P<n2>\d{{1,3}}){_SEP}(?P<n3>\d{{1,3}})(?!\d)(?!\.\d)",
    re.IGNORECASE,
)


def _continuations(text: str, first: IdMatch) -> list[IdMatch]:
    out: list[IdMatch] = []
    position = first.span[1]
    while len(out) < 8 and (more := _CONTINUATION.match(text, position)):
        numbers = tuple(int(more.group(g)) for g in ("n1", "n2", "n3"))
        start = more.start("n1")
        out.append(
            IdMatch(
                written=text[start : more.end()],
                span=(start, more.end()),
                section=first.section,
                numbers=numbers,
                crosswalk=first.crosswalk,
                malformed="a number is zero" if 0 in numbers else None,
            )
        )
        position = more.end()
    return out


def find_ids(text: str, syntax: IdSyntax) -> list[IdMatch]:
    """Every id written in ``text``, left to right. Never raises on any string."""
    text = text[:MAX_TEXT]
    found: list[IdMatch] = []
    for match in _pattern(syntax).finditer(text):
        numbers = tuple(int(match.group(g)) for g in ("n1", "n2", "n3") if match.group(g) is not None)
        section = match.group("section").upper() + (match.group("sub") or "").upper()
        malformed = None
        if match.group("extra"):
            malformed = "more than three numbers"
        elif len(numbers) == 1 and len(match.group("n1")) > 2 and not match.group("prefix"):
            # "PORT 443", "DOC 100": a lone number of three digits is not a requirement number.
            continue
        elif 0 in numbers:
            malformed = "a number is zero"
        first = IdMatch(
            written=match.group(0),
            span=(match.start(), match.end()),
            section=section,
            numbers=numbers,
            crosswalk=match.group("marker") is not None,
            prefix=match.group("prefix").upper() if match.group("prefix") else None,
            malformed=malformed,
        )
        found.append(first)
        if len(numbers) == 3 and malformed is None:
            found.extend(_continuations(text, first))
    return found


def canonical_id(section: str, numbers: Iterable[int], zero_pad: int = 0) -> str:
    """``SECTION.X.Y.Z`` with the referential's padding (0: none, as in Va1; 2: ``03.01.01``)."""
    return ".".join([section, *(str(n).zfill(zero_pad) for n in numbers)])


__all__ = ["LEVELS", "IdMatch", "IdSyntax", "canonical_id", "find_ids"]
