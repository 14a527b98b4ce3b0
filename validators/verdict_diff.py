"""What changed between two verdicts of one package: statuses, findings added and cleared.

Works on typed verdicts, a stored one read back by ``validators.verdict_io``, so that a verdict computed
months ago under another engine can be compared with today's. A finding is the same finding when its
proof, file path, rule, location and (masked) evidence are the same: the message is left out because it
names versions ("not in JDV_J66 version 2024...") that differ by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from validators.model import FileVerdict, Finding, PackageVerdict


@dataclass(frozen=True)
class FindingRef:
    """One finding as the diff shows it: where, which rule, the messages and masked evidence."""

    rule: str
    severity: str
    path: str | None
    message: str
    evidence: str | None
    location: str  # canonical JSON of the location, for identity
    message_fr: str | None = None

    @property
    def identity(self) -> tuple[str, str | None, str, str | None]:
        return (self.rule, self.path, self.location, self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "path": self.path,
            "message": self.message,
            "message_fr": self.message_fr,
            "evidence": self.evidence,
            "location": json.loads(self.location),
        }


@dataclass(frozen=True)
class ProofDiff:
    """One proof (``id`` None: files mapped to no proof and the package's own findings)."""

    id: str | None
    old_status: str | None
    new_status: str | None
    added: tuple[FindingRef, ...]
    cleared: tuple[FindingRef, ...]

    @property
    def status_changed(self) -> bool:
        return self.old_status != self.new_status

    @property
    def changed(self) -> bool:
        return self.status_changed or bool(self.added or self.cleared)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "old_status": self.old_status,
            "new_status": self.new_status,
            "added": [f.to_dict() for f in self.added],
            "cleared": [f.to_dict() for f in self.cleared],
        }


@dataclass(frozen=True)
class PackageDiff:
    name: str
    old_status: str
    new_status: str
    old_ruleset: str
    new_ruleset: str
    components: tuple[tuple[str, str | None, str | None], ...]  # (name, old, new) of changed components
    proofs: tuple[ProofDiff, ...]

    @property
    def status_changed(self) -> bool:
        return self.old_status != self.new_status

    @property
    def changed(self) -> bool:
        return self.status_changed or any(p.changed for p in self.proofs)

    def proof(self, proof_id: str | None) -> ProofDiff | None:
        return next((p for p in self.proofs if p.id == proof_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": self.name,
            "old_status": self.old_status,
            "new_status": self.new_status,
            "old_ruleset": self.old_ruleset,
            "new_ruleset": self.new_ruleset,
            "components": [{"name": n, "from": a, "to": b} for n, a, b in self.components],
            "status_changed": self.status_changed,
            "proofs": [p.to_dict() for p in self.proofs if p.changed],
        }


def _ref(finding: Finding, path: str | None) -> FindingRef:
    return FindingRef(
        rule=finding.rule,
        severity=finding.severity.value,
        path=path,
        message=finding.message,
        evidence=finding.evidence,
        location=json.dumps(finding.location.to_dict(), sort_keys=True),
        message_fr=finding.message_fr,
    )


def _findings_of(files: Iterable[FileVerdict], own: Iterable[Finding]) -> list[FindingRef]:
    out = [_ref(f, None) for f in own]
    for top in files:
        for file in top.iter_files():
            out.extend(_ref(f, file.path) for f in file.findings)
    return out


def _groups(verdict: PackageVerdict) -> dict[str | None, tuple[str | None, list[FindingRef]]]:
    """Per proof id: (status, findings); None gathers unmapped files and package findings."""
    groups: dict[str | None, tuple[str | None, list[FindingRef]]] = {}
    for proof in verdict.proofs:
        groups[proof.id] = (proof.status.value, _findings_of(proof.files, proof.findings))
    rest = _findings_of(verdict.unmapped_files, verdict.package_findings)
    if rest or verdict.unmapped_files:
        groups[None] = (None, rest)
    return groups


def _only(left: list[FindingRef], right: list[FindingRef]) -> tuple[FindingRef, ...]:
    seen = {f.identity for f in right}
    return tuple(sorted({f for f in left if f.identity not in seen}, key=lambda f: (f.path or "", f.rule, f.location)))


def changed_components(
    old: Mapping[str, str], new: Mapping[str, str]
) -> tuple[tuple[str, str | None, str | None], ...]:
    return tuple(
        (name, old.get(name), new.get(name)) for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)
    )


def diff_verdicts(old: PackageVerdict, new: PackageVerdict) -> PackageDiff:
    """The diff from ``old`` to ``new`` (two verdicts of the same package)."""
    before, after = _groups(old), _groups(new)
    proofs = []
    for proof_id in sorted(set(before) | set(after), key=lambda p: (p is None, p or "")):
        old_status, old_findings = before.get(proof_id, (None, []))
        new_status, new_findings = after.get(proof_id, (None, []))
        proofs.append(
            ProofDiff(
                proof_id, old_status, new_status, _only(new_findings, old_findings), _only(old_findings, new_findings)
            )
        )
    return PackageDiff(
        name=new.package.name,
        old_status=old.status.value,
        new_status=new.status.value,
        old_ruleset=old.provenance.ruleset_version,
        new_ruleset=new.provenance.ruleset_version,
        components=changed_components(dict(old.provenance.components), dict(new.provenance.components)),
        proofs=tuple(proofs),
    )
