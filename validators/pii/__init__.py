"""Personal health data in proofs: NIR, NIA and INS identifiers, wherever text can hide them.

The validator reads every file that can hold text (plain text, CSV, logs, e-mail, XML/CDA, PDF, Office
documents and the pictures in them, screenshots through OCR, videos through sampled frames), and its
name; it reports masked findings and
says plainly what it could not inspect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, Embedded, ProofFile, Validator
from validators.model import CheckState, Finding, Location
from validators.pii.allowlist import Allowlist, AllowlistError, load_allowlist
from validators.pii.names import name_text
from validators.pii.scan import SCAN_RULES, scan_segments
from validators.pii.segments import Extraction, TextSegment
from validators.pii.sources import Kind, extract, kind_of

RULE_NOT_READABLE = "pii.not-readable"
RULE_NOT_INSPECTED = "pii.not-inspected"
MAX_BYTES = 256 * 1024 * 1024
MAX_GAP_FINDINGS = 10


class PiiValidator(Validator):
    name: ClassVar[str] = "pii"
    rules: ClassVar[tuple[str, ...]] = (*SCAN_RULES, RULE_NOT_READABLE, RULE_NOT_INSPECTED)
    # OCR of screenshots and video frames is slow; the check keeps its own per-image budgets inside.
    timeout: ClassVar[float] = 600.0
    reads_settings: ClassVar[tuple[str, ...]] = ("pii",)  # the allow-list of fictitious identities
    reads_ruleset: ClassVar[tuple[str, ...]] = ()  # no value set: a J66 change re-uses its results

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self._allowlist: Allowlist | None = None
        self._allowlist_problem: str | None = None
        try:
            self._allowlist = load_allowlist(self.settings)
        except (AllowlistError, OSError) as exc:
            self._allowlist_problem = f"the allow-list of fictitious identities is unusable ({exc})"

    def applies_to(self, file: ProofFile) -> bool:
        # Every part of an e-mail is looked at, so that one it cannot read is named as not inspected.
        return _in_email(file) or kind_of(file.media_type, file.extension, file.head(4096)) is not None

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        if self._allowlist is None:
            reason = self._allowlist_problem or "no allow-list"
            return CheckResult(
                findings=[rules.finding("system.check-not-run", check=self.name, reason=reason)],
                state=CheckState.NOT_RUN,
                detail=reason,
            )
        kind = kind_of(file.media_type, file.extension, file.head(4096))
        name_segment = TextSegment(name_text(file.path), Location(entry="file name"), count_lines=False)
        extraction = self._extract(file, kind, ctx)
        findings = scan_segments([name_segment, *extraction.segments], self._allowlist, ctx.check_time)
        if extraction.not_run:
            findings.append(rules.finding("system.check-not-run", check=self.name, reason=extraction.not_run))
            return CheckResult(findings=findings, state=CheckState.NOT_RUN, detail=extraction.not_run)
        findings.extend(_gap_findings(extraction))
        partial = bool(extraction.not_readable or extraction.unread_areas or extraction.not_inspected)
        detail = f"{kind.value if kind else 'unknown'} source" + ("; partial coverage" if partial else "")
        state = CheckState.PARTIAL if partial else CheckState.RAN
        # Pictures and documents inside an Office document, pictures of a PDF's pages: files of their own, read
        # by every check (OCR included).
        origin = "pdf page image" if kind is Kind.PDF else "office part"
        children = [Embedded(name=name, data=data, origin=origin) for name, data in extraction.children]
        return CheckResult(findings=findings, state=state, detail=detail, children=children)

    def _extract(self, file: ProofFile, kind: Kind | None, ctx: CheckContext) -> Extraction:
        if kind is None:
            if _in_email(file):
                return Extraction(not_inspected=[f"this e-mail part ({file.media_type}): type not read for text"])
            return Extraction(not_run="this type of file cannot be read for text")
        if kind is Kind.VIDEO and file.disk_path is not None:
            return extract(kind, b"", Location(), ctx.check_time, ctx.time_left, path=file.disk_path)
        gaps: list[str] = []
        if file.size > MAX_BYTES:
            if kind is not Kind.TEXT:
                too_big = f"the whole file ({file.size} bytes is over the size limit)"
                return Extraction(not_inspected=[too_big])
            gaps.append(f"content after the first {MAX_BYTES} bytes (size limit)")
            data = file.head(MAX_BYTES)
        else:
            data = file.read(MAX_BYTES)
        found = extract(kind, data, Location(), ctx.check_time, ctx.time_left)
        found.not_inspected.extend(gaps)
        return found


def _in_email(file: ProofFile) -> bool:
    return (file.origin or "").startswith("e-mail")  # validators.mail.names.ORIGIN_PREFIX


def _gap_findings(extraction: Extraction) -> list[Finding]:
    out = [rules.finding(RULE_NOT_READABLE, reason=r) for r in extraction.not_readable[:MAX_GAP_FINDINGS]]
    out += [rules.finding(RULE_NOT_READABLE, area, reason=_unread_reason(area))
            for area in extraction.unread_areas[:MAX_GAP_FINDINGS]]
    out += [rules.finding(RULE_NOT_INSPECTED, what=w) for w in extraction.not_inspected[:MAX_GAP_FINDINGS]]
    hidden = len(extraction.not_readable) + len(extraction.unread_areas) + len(extraction.not_inspected) - len(out)
    if hidden > 0:
        out.append(rules.finding(RULE_NOT_INSPECTED, what=f"{hidden} further part(s), not listed one by one"))
    return out


def _unread_reason(area: Location) -> str:
    width, height = (area.region or (0, 0, 0, 0))[2:]
    when = f" at {area.time:.0f} s" if area.time is not None else ""
    return f"an area of {width}x{height} pixels{when} looks like text but OCR could not read it"


def make_validators(settings: Mapping[str, Any]) -> list[Validator]:
    return [PiiValidator(settings)]


__all__ = ["PiiValidator", "make_validators"]
