"""INS identifiers: which assigning authority (OID) a NIR-shaped number is written under.

Works on any text where the authority sits next to the value: CDA ``<id root=".." extension=".."/>``
(the XML source renders each element's attributes on one line), HL7 v2 CX fields
(``value^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS``), FHIR ``system``/``value`` pairs, logs.
The search never crosses a tag, field, repetition or object boundary, so a neighbour's OID is not taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

INS_ROOT = "1.2.250.1.213.1.4"
_INS_ROOT_DOT = INS_ROOT + "."
WINDOW = 160

_OID = re.compile(r"(?<![\d.])1\.2\.250\.1\.213\.1\.4\.(\d{1,2})(?![\d.])")
_BOUNDARY = re.compile(r"[<>{}|~\n]")


class Authority(StrEnum):
    PRODUCTION = "production"  # .8 INS-NIR, .9 INS-NIA: a real person's identity
    TEST = "test"  # .10 INS-NIR de test, .11 INS-NIR de démonstration
    SOCIAL_SECURITY = "social-security"  # .2 legacy INS-C, .13/.14 NIR/NIA as a social-security number


_AUTHORITIES = {
    "8": Authority.PRODUCTION,
    "9": Authority.PRODUCTION,
    "10": Authority.TEST,
    "11": Authority.TEST,
    "2": Authority.SOCIAL_SECURITY,
    "13": Authority.SOCIAL_SECURITY,
    "14": Authority.SOCIAL_SECURITY,
}


@dataclass(frozen=True)
class InsOid:
    oid: str
    authority: Authority


def _authority(match: re.Match[str]) -> InsOid | None:
    authority = _AUTHORITIES.get(match.group(1))
    return InsOid(match.group(0), authority) if authority is not None else None


def authority_near(text: str, start: int, end: int) -> InsOid | None:
    """The INS OID nearest to ``text[start:end]`` within the same tag, field or object, if any."""
    if _INS_ROOT_DOT not in text[max(0, start - WINDOW) : end + WINDOW]:
        return None  # the common case, found without any regular expression
    before = text[max(0, start - WINDOW) : start]
    cuts = [m.end() for m in _BOUNDARY.finditer(before)]
    if cuts:
        before = before[cuts[-1] :]
    after = text[end : end + WINDOW]
    stop = _BOUNDARY.search(after)
    if stop is not None:
        after = after[: stop.start()]
    found_before = list(_OID.finditer(before))
    found_after = _OID.search(after)
    candidates: list[tuple[int, re.Match[str]]] = []
    if found_before:
        last = found_before[-1]
        candidates.append((len(before) - last.end(), last))
    if found_after is not None:
        candidates.append((found_after.start(), found_after))
    for _, match in sorted(candidates, key=lambda c: c[0]):
        known = _authority(match)
        if known is not None:
            return known
    return None


__all__ = ["INS_ROOT", "Authority", "InsOid", "authority_near"]
