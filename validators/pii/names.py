"""A file's path as text to scan: proof identifiers are no words about a number.

Every proof lives in a folder named after its identifier (``INS.41.2.2``, ``DOC 3.1.2``, ``INS_41_2_2``);
the section code of the INS proofs reads as the label "INS", which would make every number in their file
names "labelled". The section code of a written proof identifier (letters then two to four numbers, and
no more numbers after them) is blanked, so that offsets stay those of the path; a NIR written after a
prefix ("INS_1_85_05_78_006_084_36") has more numbers and keeps its label.
"""

from __future__ import annotations

import re

_PROOF_ID_SECTION = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2,8}(?=[ ._-]?[0-9]{1,3}(?:[._-][0-9]{1,3}){1,3}(?![._ -]?[0-9])(?![0-9A-Za-z]))"
)


def name_text(path: str) -> str:
    """``path`` with the section codes of proof identifiers read as blanks (same length)."""
    return _PROOF_ID_SECTION.sub(lambda m: " " * len(m.group(0)), path)


__all__ = ["name_text"]
