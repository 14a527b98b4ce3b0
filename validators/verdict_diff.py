"""What changed between two verdict documents of one package: statuses, findings added and cleared.

Works on the stored JSON documents (ARCHITECTURE.md §3.1), so that a verdict computed months ago under
another engine can be compared with today's. A finding is the same finding when its proof, file path,
rule, location and (masked) evidence are the same: the message is left out because it names versions
("not in JDV_J66 version 2024...") that differ by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Document = Mapping[str, Any]


@dataclass(frozen=True)
class FindingRef:
    """One finding as the diff shows it: where, which rule, the message and masked evidence."""

    rule: str
    severity: str
    path: str | None
    message: str
    evidence: str | None
    location: str  # canonical JSON of the location, for identity

    @property
    def identity(self) -> tuple[str, str | None, str, str | None]:
        return (self.rule, self.path, self.location, self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "path": self.path,
            "message": self.message,
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


def _ref(finding: Mapping[str, Any], path: str | None) -> FindingRef:
    return FindingRef(
        rule=str(finding.get("rule", "")),
        severity=str(finding.get("severity", "")),
        path=path,
        message=str(finding.get("message", "")),
        evidence=finding.get("evidence"),
        location=json.dumps(finding.get("location") or {}, sort_keys=True),
    )


def walk_files(files: Any) -> Iterator[Mapping[str, Any]]:
    """File entries of a verdict document and, depth first, the files found inside them."""
    for file in files or []:
        yield file
        yield from walk_files(file.get("children"))


def _findings_of(files: Any, own: Any) -> list[FindingRef]:
    out = [_ref(f, None) for f in own or []]
    for file in walk_files(files):
        out.extend(_ref(f, file.get("path")) for f in file.get("findings") or [])
    return out


def _groups(doc: Document) -> dict[str | None, tuple[str | None, list[FindingRef]]]:
    """Per proof id: (status, findings); None gathers unmapped files and package findings."""
    groups: dict[str | None, tuple[str | None, list[FindingRef]]] = {}
    for proof in doc.get("proofs") or []:
        groups[str(proof.get("id"))] = (proof.get("status"), _findings_of(proof.get("files"), proof.get("findings")))
    rest = _findings_of(doc.get("unmapped_files"), doc.get("package_findings"))
    if rest or doc.get("unmapped_files"):
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


def diff_documents(old: Document, new: Document) -> PackageDiff:
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
    old_ruleset = old.get("ruleset") or {}
    new_ruleset = new.get("ruleset") or {}
    return PackageDiff(
        name=str((new.get("package") or {}).get("name", "")),
        old_status=str(old.get("status", "")),
        new_status=str(new.get("status", "")),
        old_ruleset=str(old_ruleset.get("version", "none")),
        new_ruleset=str(new_ruleset.get("version", "none")),
        components=changed_components(old_ruleset.get("components") or {}, new_ruleset.get("components") or {}),
        proofs=tuple(proofs),
    )
