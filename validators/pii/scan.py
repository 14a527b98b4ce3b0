"""From text segments to findings: recognise, weigh context and authority, apply the allow-list, mask.

Each distinct identifier gives one finding per rule (first location, with the number of occurrences),
so that a log repeating one NIR a thousand times stays readable. The value itself never leaves this
module: findings carry the masked form only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from validators import rules
from validators.model import Finding, Location
from validators.pii.allowlist import Allowlist
from validators.pii.context import Context, ContextHit, context_of, score
from validators.pii.ins import Authority, InsOid, authority_near
from validators.pii.mask import mask_nir
from validators.pii.nir import KeyStatus, NirMatch, find_nirs
from validators.pii.segments import TextSegment

RULE_NIR = "pii.nir"
RULE_NIA = "pii.nia"
RULE_BODY = "pii.nir-body"
RULE_LOOKALIKE = "pii.nir-lookalike"
RULE_INS_PRODUCTION = "pii.ins-production"
RULE_INS_TEST = "pii.ins-test"
RULE_FICTITIOUS = "pii.fictitious-identity"

SCAN_RULES = (
    RULE_NIR, RULE_NIA, RULE_BODY, RULE_LOOKALIKE, RULE_INS_PRODUCTION, RULE_INS_TEST, RULE_FICTITIOUS,
)
# Rules that say "personal data is here"; a value the file itself declares as a test INS is not.
_PERSONAL = frozenset({RULE_NIR, RULE_NIA, RULE_BODY, RULE_LOOKALIKE})

MAX_FINDINGS_PER_RULE = 100


def classify(match: NirMatch, authority: InsOid | None, hit: ContextHit, allowlist: Allowlist) -> str | None:
    """The rule a candidate falls under, or None when it is not personal data (or not reportable)."""
    under = authority.authority if authority is not None else None
    if match.key_status is KeyStatus.VALID:
        if allowlist.allows(match.body, match.key):
            return RULE_FICTITIOUS
        if under is Authority.TEST:
            return RULE_INS_TEST
        if under is Authority.PRODUCTION:
            return RULE_INS_PRODUCTION
        if under is None and hit.kind is Context.NEGATIVE:
            return None
        return RULE_NIA if match.nir_like else RULE_NIR
    explicit = under is not None or hit.kind is Context.EXPLICIT
    if match.key_status is KeyStatus.ABSENT:
        if not explicit:
            return None
        if allowlist.allows(match.body, None):
            return RULE_FICTITIOUS
        return RULE_INS_TEST if under is Authority.TEST else RULE_BODY
    # A wrong key: only worth a warning when the document says it is a NIR.
    if under is Authority.TEST or not explicit:
        return None
    return RULE_LOOKALIKE


@dataclass
class _Group:
    rule: str
    location: Location
    evidence: str
    explanation: str
    count: int = 1


def scan_segments(
    segments: Iterable[TextSegment],
    allowlist: Allowlist,
    check_time: Callable[[], None] = lambda: None,
) -> list[Finding]:
    """Findings for every NIR, NIA and INS in ``segments`` (masked, grouped by value and rule)."""
    groups: dict[tuple[str, str], _Group] = {}
    test_values: set[str] = set()
    for segment in segments:
        check_time()
        text = segment.text
        for match in find_nirs(text, lenient=segment.ocr):
            authority = authority_near(text, match.start, match.end)
            hit = context_of(text, match.start, match.end)
            rule = classify(match, authority, hit, allowlist)
            if rule is None:
                continue
            if rule == RULE_INS_TEST:
                test_values.add(match.body)
            key = (rule, match.value)
            if key in groups:
                groups[key].count += 1
                continue
            confidence = score(match.key_status is KeyStatus.VALID, match.key is not None, hit.kind)
            explanation = f"{match.explanation}; context {hit.word or 'none'}; score {confidence}"
            if authority is not None:
                explanation += f"; assigning authority {authority.oid} ({authority.authority.value})"
            groups[key] = _Group(
                rule=rule,
                location=segment.locate(match.start, match.end),
                evidence=mask_nir(match.sex, match.key),
                explanation=explanation,
            )
    findings: list[Finding] = []
    per_rule: dict[str, int] = {}
    for (rule, value), group in groups.items():
        if rule in _PERSONAL and value[:13] in test_values:
            continue  # declared in this file as a test INS: reported once, as such
        per_rule[rule] = per_rule.get(rule, 0) + 1
        if per_rule[rule] > MAX_FINDINGS_PER_RULE:
            continue
        findings.append(
            rules.finding(
                rule,
                group.location,
                evidence=group.evidence,
                occurrences=group.count,
                explanation=group.explanation,
            )
        )
    for rule, count in per_rule.items():
        if count > MAX_FINDINGS_PER_RULE:
            findings.append(
                rules.finding(
                    rule,
                    Location(),
                    evidence=None,
                    occurrences=count - MAX_FINDINGS_PER_RULE,
                    explanation="further distinct values not listed one by one",
                )
            )
    return findings


__all__ = ["SCAN_RULES", "classify", "scan_segments"]
