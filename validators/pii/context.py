"""Context words around a candidate number: the one place where they raise or lower its score.

``explicit`` words name the identifier itself (NIR, n° SS, sécurité sociale, matricule INS...): they
make a 13-digit body without key, or a number that fails its key, worth reporting. ``negative`` words
name another kind of number (invoice, order, SIRET, IBAN, CIP...): a key-valid number under them alone
is taken for what the document says it is. An explicit word always wins over a negative one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

WINDOW_BEFORE = 48
WINDOW_AFTER = 24

_EXPLICIT = re.compile(
    r"(?<![a-z0-9])(?:nir|nia|ins(?:-nir|-nia)?|nss|ssn|insee|matricule|immatriculation|"
    r"s[ée]cu(?:rit[ée])?(?:[ \u00a0]+sociale)?|n[°o]\s*(?:de\s+)?s\.?\s?s\b\.?|num[ée]ro\s+ss|"
    r"social\s+security|assur[ée](?:\s+social)?|carte\s+vitale|r[ée]pertoire\s+des\s+personnes|"
    r"nir@|@patient\.mssante)(?![a-z0-9])",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"(?<![a-z0-9])(?:factur\w*|invoice|commande|order|cde|cmd|bon|ticket|transaction|trace|"
    r"siret|siren|finess|rpps|adeli|iban|bic|rib|cip(?:13)?|ean(?:13)?|gtin|lot|colis|tracking|suivi|"
    r"t[ée]l[ée]?(?:phone)?|tel|phone|fax|oid|codesystem|isbn|serial|s[ée]rie|version)(?![a-z0-9])",
    re.IGNORECASE,
)


class Context(StrEnum):
    EXPLICIT = "explicit"
    NEGATIVE = "negative"
    NONE = "none"


@dataclass(frozen=True)
class ContextHit:
    kind: Context
    word: str | None  # the context word (a label, never document content) for the explanation


def context_of(text: str, start: int, end: int) -> ContextHit:
    """What the words just before and after ``text[start:end]`` say the number is."""
    before = text[max(0, start - WINDOW_BEFORE) : start]
    after = text[end : end + WINDOW_AFTER]
    window = before + " " + after
    explicit = _EXPLICIT.search(window)
    if explicit is not None:
        return ContextHit(Context.EXPLICIT, explicit.group(0).lower())
    negative = _NEGATIVE.search(before)
    if negative is not None:
        return ContextHit(Context.NEGATIVE, negative.group(0).lower())
    return ContextHit(Context.NONE, None)


def score(key_valid: bool, key_present: bool, context: Context) -> float:
    """A Presidio-style confidence: the key makes a match near-certain, context moves it."""
    base = 0.85 if key_valid else (0.3 if not key_present else 0.1)
    if context is Context.EXPLICIT:
        base += 0.15 if key_valid else 0.4
    elif context is Context.NEGATIVE:
        base -= 0.5
    return round(min(1.0, max(0.0, base)), 2)


__all__ = ["WINDOW_AFTER", "WINDOW_BEFORE", "Context", "ContextHit", "context_of", "score"]
