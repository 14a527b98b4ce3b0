"""From text segments to findings: recognise, gather the evidence at each place, decide, group, mask.

Each distinct identifier gives one finding per rule (first location, with the number of occurrences),
so that a log repeating one NIR a thousand times stays readable. Every occurrence is decided at its own
place: a value declared as a test INS in one element does not lower, let alone silence, the same value
written elsewhere. The value itself never leaves this module: findings carry the masked form only.
Memory stays bounded whatever the input: past ``MAX_FINDINGS_PER_RULE`` distinct values of a rule,
further occurrences are only counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from validators import rules
from validators.model import Finding, Location
from validators.pii.allowlist import Allowlist
from validators.pii.context import NO_CONTEXT, ContextHit, context_of, label_near, ocr_words
from validators.pii.decide import DECISION_RULES, Decision, decide, person_names
from validators.pii.explain import Note, render
from validators.pii.ins import authority_near
from validators.pii.mask import mask_nir
from validators.pii.nir import KeyStatus, NirMatch, find_nirs
from validators.pii.segments import TextSegment
from validators.pii.structure import identified_as
from validators.pii.tables import CellLabels, DelimitedHeader

SCAN_RULES = DECISION_RULES
MAX_FINDINGS_PER_RULE = 100
# How often the scan looks at the clock inside one segment (a 50 MB log is one segment).
_CLOCK_EVERY = 512
FURTHER = Note("autres valeurs, non détaillées une à une", "further values not listed one by one")


def classify(
    segment: TextSegment, match: NirMatch, allowlist: Allowlist, column: ContextHit = NO_CONTEXT,
    around: str | None = None,
) -> Decision | None:
    """The decision for ``match`` at its place in ``segment``, every kind of evidence gathered.

    ``column`` is what the header of the value's table column says (``tables.py``): a label there counts
    as a label next to the value.
    """
    text = segment.text
    if around is None:
        around = _words_text(segment)
    words = context_of(around, match.start, match.end, segment.record_breaks, segment.fields)
    return decide(
        match,
        authority_near(text, match.start, match.end),
        identified_as(text, match.start, match.end),
        _with_column(words, column),
        allowlist,
        segment.ocr,
    )


def _words_text(segment: TextSegment) -> str:
    """The text the words around a number are read from (OCR's look-alike digits in words as letters)."""
    return ocr_words(segment.text) if segment.ocr else segment.text


def _with_column(hit: ContextHit, column: ContextHit) -> ContextHit:
    if column.positive is None:
        return hit
    return replace(hit, label=hit.label or column.label, person=hit.person or column.person)


def _named(text: str, match: NirMatch, column: ContextHit, around: str, ocr: bool = False) -> bool:
    """A label, a column label or an INS authority near ``match`` (a person word for a body without key,
    or in OCR text for a wrong key OCR may have misread): cheap checks before the whole evidence is
    gathered. ``around``: the text words are read from."""
    person = person_names(match, ocr)
    if column.label is not None or (column.person is not None and person):
        return True
    if label_near(around, match.start, match.end, person=person) is not None:
        return True
    return authority_near(text, match.start, match.end) is not None


class _Columns:
    """The column header words of a segment's tables, worked out only when a value needs them."""

    def __init__(self, segment: TextSegment) -> None:
        self.segment = segment
        self.delimited: DelimitedHeader | None = None
        self.cells = CellLabels(segment.column_labels) if segment.column_labels else None

    def at(self, offset: int) -> ContextHit:
        if self.cells is not None:
            return self.cells.at(offset)
        if not self.segment.delimited:
            return NO_CONTEXT
        if self.delimited is None:
            self.delimited = DelimitedHeader(self.segment.text)
        return self.delimited.label_at(self.segment.text, offset)


@dataclass
class _Group:
    rule: str
    location: Location
    evidence: str
    explanation: str
    count: int = 1


class _Groups:
    """Findings gathered by (rule, value), at most ``MAX_FINDINGS_PER_RULE`` values kept per rule."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], _Group] = {}
        self.kept: dict[str, int] = {}
        self.overflow: dict[str, int] = {}  # occurrences of values past the limit, per rule

    def add(self, segment: TextSegment, match: NirMatch, decision: Decision) -> None:
        key = (decision.rule, match.value)
        if segment.rereading and self._reread(key, segment, match, decision):
            return
        group = self.groups.get(key)
        if group is not None:
            group.count += 1
            return
        if self.kept.get(decision.rule, 0) >= MAX_FINDINGS_PER_RULE:
            self.overflow[decision.rule] = self.overflow.get(decision.rule, 0) + 1
            return
        self.kept[decision.rule] = self.kept.get(decision.rule, 0) + 1
        self.groups[key] = _Group(
            rule=decision.rule,
            location=segment.locate(match.start, match.end),
            evidence=mask_nir(match.sex, match.key),
            explanation=render([*decision.notes, *match.notes]),
        )

    def _reread(self, key: tuple[str, str], segment: TextSegment, match: NirMatch, decision: Decision) -> bool:
        """A value another reading already reported: the same occurrence, raised if rated higher here."""
        earlier = [k for k in self.groups if k[1] == match.value]
        if not earlier:
            return False
        strongest = max(earlier, key=lambda k: rules.get(k[0]).severity.rank)
        if rules.get(decision.rule).severity.rank > rules.get(strongest[0]).severity.rank and key not in self.groups:
            group = self.groups.pop(strongest)
            self.groups[key] = replace(
                group, rule=decision.rule, location=segment.locate(match.start, match.end),
                explanation=render([*decision.notes, *match.notes]),
            )
        return True

    def findings(self) -> list[Finding]:
        out = [
            rules.finding(
                group.rule, group.location, evidence=group.evidence, occurrences=group.count,
                explanation=group.explanation,
            )
            for group in self.groups.values()
        ]
        for rule, count in self.overflow.items():
            out.append(
                rules.finding(
                    rule, Location(), evidence=None, occurrences=count,
                    explanation=render([FURTHER]),
                )
            )
        return out


def scan_segments(
    segments: Iterable[TextSegment],
    allowlist: Allowlist,
    check_time: Callable[[], None] = lambda: None,
) -> list[Finding]:
    """Findings for every NIR, NIA and INS in ``segments`` (masked, grouped by value and rule)."""
    groups = _Groups()
    for segment in segments:
        check_time()
        text = segment.text
        around = _words_text(segment)
        columns = _Columns(segment)
        matches = find_nirs(text, lenient=segment.ocr, ocr=segment.ocr, check_time=check_time)
        for count, match in enumerate(matches, start=1):
            if count % _CLOCK_EVERY == 0:
                check_time()
            column = columns.at(match.start)
            if match.key_status is not KeyStatus.VALID and not _named(text, match, column, around, segment.ocr):
                continue  # without a valid key, only a number the document names as a NIR is reported
            decision = classify(segment, match, allowlist, column, around)
            if decision is not None:
                groups.add(segment, match, decision)
    return groups.findings()


__all__ = ["MAX_FINDINGS_PER_RULE", "SCAN_RULES", "classify", "scan_segments"]
