"""What reading a message gives: its parts as children, findings, and the byte and part budgets spent."""

from __future__ import annotations

from dataclasses import dataclass, field

from validators import rules
from validators.base import CheckContext, Embedded
from validators.mail.limits import MailLimits
from validators.model import Finding, Location

MAX_FINDINGS_PER_RULE = 20


@dataclass
class Harvest:
    """Children and findings of one container file, within its limits.

    ``add_child`` refuses (and reports once) what goes past the part count or the decoded-byte budget,
    so that every reader (MIME, Outlook, TNEF, S/MIME) enforces the same limits in one place.
    """

    limits: MailLimits
    ctx: CheckContext
    children: list[Embedded] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    parts_seen: int = 0
    bytes_kept: int = 0
    full: bool = False  # the part limit was reached: readers stop walking
    _counts: dict[str, int] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        count = self._counts.get(finding.rule, 0) + 1
        self._counts[finding.rule] = count
        if count <= MAX_FINDINGS_PER_RULE:
            self.findings.append(finding)

    def count_part(self) -> bool:
        """Count one part (leaf or container); False once the part limit is passed."""
        self.ctx.check_time()
        if self.full:
            return False
        self.parts_seen += 1
        if self.parts_seen > self.limits.max_parts:
            self.full = True
            self.add(rules.finding("ssi.email.too-many-parts", limit=self.limits.max_parts))
            return False
        return True

    def fits(self, size: int, entry: str) -> bool:
        """Whether a part of ``size`` decoded bytes may be kept; reports it when not."""
        if size > self.limits.max_part_bytes:
            self.add(
                rules.finding(
                    "ssi.email.too-large", Location(entry=entry), what="this part", limit=self.limits.max_part_bytes
                )
            )
            return False
        if self.bytes_kept + size > self.limits.max_total_bytes:
            self.add(
                rules.finding(
                    "ssi.email.too-large",
                    Location(entry=entry),
                    what="the parts of this message together",
                    limit=self.limits.max_total_bytes,
                )
            )
            return False
        return True

    def add_child(self, name: str, data: bytes, origin: str) -> None:
        if not self.fits(len(data), name):
            return
        self.bytes_kept += len(data)
        self.children.append(Embedded(name=name, data=data, origin=origin))

    def not_inspected(self, what: str, reason: str, entry: str | None = None, evidence: str | None = None) -> None:
        self.add(rules.finding("ssi.email.not-inspected", Location(entry=entry), what=what, reason=reason,
                               evidence=evidence))

    def malformed(self, defect: str, entry: str | None = None, evidence: str | None = None) -> None:
        """``defect`` in fixed words (the French report maps them); what varies goes in ``evidence``."""
        self.add(rules.finding("format.email.malformed", Location(entry=entry), defect=defect, evidence=evidence))
