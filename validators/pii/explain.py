"""Why a finding has its severity, in French first and English second, as short labels.

A finding's ``{explanation}`` fills both the English and the French message of its rule; instructors read
French. Every note is a pair of short labels (never document content: at most a context word from the
fixed vocabulary, an OID, a registry name), rendered ``français [English]`` so that either report reads
right.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Note(NamedTuple):
    fr: str
    en: str


def word(fr: str, en: str, value: str) -> Note:
    """A note naming a word of the vocabulary: « facture » in French, 'facture' in English."""
    return Note(f"{fr} « {value} »", f"{en} '{value}'")


def render(notes: Iterable[Note]) -> str:
    """``note 1, note 2 [note 1, note 2]``: the French labels, then the English ones in brackets."""
    kept = [n for n in notes if n.fr or n.en]
    french = ", ".join(n.fr for n in kept if n.fr)
    english = ", ".join(n.en for n in kept if n.en)
    return f"{french} [{english}]" if english else french


__all__ = ["Note", "render", "word"]
