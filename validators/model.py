"""The verdict tree: findings, files, proofs and the package, as immutable values.

Statuses and the quarantine flag are computed once per object (``cached_property``: the values are
immutable, and reports ask for them at every level of a tree of thousands of files).

Statuses roll up to the worst below them (see docs/architecture.md §3.1): ``fail`` when any non-``system.*``
finding is an error, else ``error`` when a check could not run, else ``warning``, else ``pass``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

# A finding's message parameter: what its template shows (a count, a name, a limit), never a full
# personal identifier or document content. Kept beside the rendered message so it can be re-rendered in
# French and compared in tests.
ParamValue = str | int | float
Params = tuple[tuple[str, ParamValue], ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    WARNING = "warning"
    ERROR = "error"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _STATUS_RANK[self]

    @staticmethod
    def worst(statuses: Iterable[Status]) -> Status:
        return max(statuses, key=lambda s: s.rank, default=Status.PASS)


_STATUS_RANK = {Status.PASS: 0, Status.WARNING: 1, Status.ERROR: 2, Status.FAIL: 3}
_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class CheckState(StrEnum):
    """Whether a check ran on a file: fully, with partial coverage, or not at all."""

    RAN = "ran"
    PARTIAL = "partial"
    NOT_RUN = "not_run"


@dataclass(frozen=True)
class Location:
    """Where a finding is. Every field is optional; only the relevant ones are set."""

    page: int | None = None
    line: int | None = None
    column: int | None = None
    xpath: str | None = None
    span: tuple[int, int] | None = None
    region: tuple[int, int, int, int] | None = None  # x, y, width, height in pixels
    entry: str | None = None  # member name inside an archive or an e-mail part
    time: float | None = None  # seconds into a video

    def to_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "line": self.line,
            "column": self.column,
            "xpath": self.xpath,
            "span": list(self.span) if self.span is not None else None,
            "region": list(self.region) if self.region is not None else None,
            "entry": self.entry,
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Location:
        span, region = data.get("span"), data.get("region")
        return cls(
            page=data.get("page"),
            line=data.get("line"),
            column=data.get("column"),
            xpath=data.get("xpath"),
            span=(int(span[0]), int(span[1])) if span is not None else None,
            region=(int(region[0]), int(region[1]), int(region[2]), int(region[3])) if region is not None else None,
            entry=data.get("entry"),
            time=data.get("time"),
        )

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.entry or "",
            self.page if self.page is not None else -1,
            self.line if self.line is not None else -1,
            self.column if self.column is not None else -1,
            self.span or (-1, -1),
            self.time if self.time is not None else -1.0,
            self.region or (-1, -1, -1, -1),
            self.xpath or "",
        )


NO_LOCATION = Location()


@dataclass(frozen=True)
class Finding:
    """One observation about a file or a package, tied to a catalogued rule.

    ``evidence`` is for masked values only: never a full personal identifier or document content.
    ``message`` is the English text; ``params`` the values its template was filled with; ``message_fr``
    the same from the rule's French template (None when the rule has none, or the finding was read from
    a document that kept no parameters).
    """

    rule: str
    severity: Severity
    message: str
    location: Location = NO_LOCATION
    evidence: str | None = None
    params: Params = ()
    message_fr: str | None = None

    @property
    def family(self) -> str:
        return self.rule.split(".", 1)[0]

    @property
    def is_system(self) -> bool:
        return self.family == "system"

    def sort_key(self) -> tuple[Any, ...]:
        return (self.rule, self.location.sort_key(), self.severity.value, self.message, self.evidence or "")

    @property
    def message_in_french(self) -> str:
        """The French message where there is one, else the English (what a French reader is shown)."""
        return self.message_fr if self.message_fr is not None else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "message_fr": self.message_fr,
            "params": dict(self.params),
            "location": self.location.to_dict(),
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The finding of ``to_dict``; ``params`` is required (a caller upgrades older shapes first)."""
        return cls(
            rule=str(data["rule"]),
            severity=Severity(data["severity"]),
            message=str(data["message"]),
            location=Location.from_dict(data.get("location") or {}),
            evidence=data.get("evidence"),
            params=tuple(data["params"].items()),
            message_fr=data.get("message_fr"),
        )


def status_of(findings: Iterable[Finding], checks: Iterable[CheckRun] = ()) -> Status:
    """Status of a set of findings, by the contract's precedence fail > error > warning > pass."""
    has_error = has_system = has_warning = False
    for finding in findings:
        if finding.severity is Severity.ERROR:
            if finding.is_system:
                has_system = True
            else:
                has_error = True
        elif finding.severity is Severity.WARNING:
            has_warning = True
    if has_error:
        return Status.FAIL
    if has_system or any(c.state is CheckState.NOT_RUN for c in checks):
        return Status.ERROR
    if has_warning:
        return Status.WARNING
    return Status.PASS


@dataclass(frozen=True)
class CheckRun:
    """A check (validator) applied to a file and how far it got."""

    name: str
    state: CheckState
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.state.value}
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckRun:
        return cls(name=str(data["name"]), state=CheckState(data["status"]), detail=data.get("detail") or None)


@dataclass(frozen=True)
class FileVerdict:
    path: str
    sha256: str
    size: int
    media_type: str
    checks: tuple[CheckRun, ...] = ()
    findings: tuple[Finding, ...] = ()
    children: tuple[FileVerdict, ...] = ()

    @cached_property
    def own_status(self) -> Status:
        return status_of(self.findings, self.checks)

    @cached_property
    def status(self) -> Status:
        return Status.worst([self.own_status, *(c.status for c in self.children)])

    def iter_files(self) -> Iterator[FileVerdict]:
        yield self
        for child in self.children:
            yield from child.iter_files()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "status": self.status.value,
            "checks": [c.to_dict() for c in self.checks],
            "findings": [f.to_dict() for f in self.findings],
            "children": [c.to_dict() for c in self.children],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileVerdict:
        return cls(
            path=str(data["path"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            media_type=str(data["media_type"]),
            checks=tuple(CheckRun.from_dict(c) for c in data["checks"]),
            findings=tuple(Finding.from_dict(f) for f in data["findings"]),
            children=tuple(FileVerdict.from_dict(c) for c in data.get("children") or ()),
        )


@dataclass(frozen=True)
class ProofVerdict:
    id: str
    id_as_written: str
    files: tuple[FileVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()

    @cached_property
    def status(self) -> Status:
        return Status.worst([status_of(self.findings), *(f.status for f in self.files)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "id_as_written": self.id_as_written,
            "status": self.status.value,
            "findings": [f.to_dict() for f in self.findings],
            "files": [f.to_dict() for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProofVerdict:
        return cls(
            id=str(data["id"]),
            id_as_written=str(data["id_as_written"]),
            files=tuple(FileVerdict.from_dict(f) for f in data["files"]),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings") or ()),
        )


@dataclass(frozen=True)
class PackageInfo:
    name: str
    sha256: str
    source: str
    referential: str
    profiles: tuple[str, ...] = ()
    publisher: str | None = None
    software: str | None = None
    software_version: str | None = None
    complete: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "source": self.source,
            "referential": self.referential,
            "profiles": list(self.profiles),
            "publisher": self.publisher,
            "software": self.software,
            "software_version": self.software_version,
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PackageInfo:
        return cls(
            name=str(data["name"]),
            sha256=str(data["sha256"]),
            source=str(data["source"]),
            referential=str(data["referential"]),
            profiles=tuple(str(p) for p in data["profiles"]),
            publisher=data.get("publisher"),
            software=data.get("software"),
            software_version=data.get("software_version"),
            complete=bool(data.get("complete", False)),
        )


@dataclass(frozen=True)
class Provenance:
    """What the verdict was computed with: the ruleset (versioned) and the engine (not part of it)."""

    ruleset_version: str
    components: tuple[tuple[str, str], ...] = ()
    engine_version: str = ""
    started_at: str = ""
    finished_at: str = ""
    antivirus: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PackageVerdict:
    package: PackageInfo
    provenance: Provenance
    proofs: tuple[ProofVerdict, ...] = ()
    unmapped_files: tuple[FileVerdict, ...] = ()
    package_findings: tuple[Finding, ...] = ()

    @cached_property
    def status(self) -> Status:
        return Status.worst(
            [
                status_of(self.package_findings),
                *(p.status for p in self.proofs),
                *(f.status for f in self.unmapped_files),
            ]
        )

    @cached_property
    def quarantine(self) -> bool:
        return any(
            f.family == "ssi" and f.severity is Severity.ERROR for f in self.iter_findings()
        )

    def iter_file_verdicts(self) -> Iterator[FileVerdict]:
        for proof in self.proofs:
            for file in proof.files:
                yield from file.iter_files()
        for file in self.unmapped_files:
            yield from file.iter_files()

    def iter_findings(self) -> Iterator[Finding]:
        yield from self.package_findings
        for proof in self.proofs:
            yield from proof.findings
        for file in self.iter_file_verdicts():
            yield from file.findings

    def flatten(self, fields: Sequence[str] = ("rule", "path")) -> list[list[Any]]:
        """One row per finding, for tests that read as one line (frictionless style).

        Known fields: rule, severity, path, proof, message, message_fr, params, evidence.
        """
        rows: list[list[Any]] = []

        def emit(finding: Finding, path: str | None, proof: str | None) -> None:
            values = {
                "rule": finding.rule,
                "severity": finding.severity.value,
                "path": path,
                "proof": proof,
                "message": finding.message,
                "message_fr": finding.message_fr,
                "params": dict(finding.params),
                "evidence": finding.evidence,
            }
            rows.append([values[f] for f in fields])

        for finding in self.package_findings:
            emit(finding, None, None)
        for proof in self.proofs:
            for finding in proof.findings:
                emit(finding, None, proof.id)
            for top in proof.files:
                for file in top.iter_files():
                    for finding in file.findings:
                        emit(finding, file.path, proof.id)
        for top in self.unmapped_files:
            for file in top.iter_files():
                for finding in file.findings:
                    emit(finding, file.path, None)
        return rows


def sorted_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Findings in a deterministic order, duplicates removed."""
    return tuple(sorted(set(findings), key=Finding.sort_key))


def with_findings(verdict: FileVerdict, extra: Iterable[Finding]) -> FileVerdict:
    return replace(verdict, findings=sorted_findings([*verdict.findings, *extra]))


__all__ = [
    "NO_LOCATION",
    "CheckRun",
    "CheckState",
    "FileVerdict",
    "Finding",
    "Location",
    "PackageInfo",
    "PackageVerdict",
    "ParamValue",
    "Params",
    "ProofVerdict",
    "Provenance",
    "Severity",
    "Status",
    "sorted_findings",
    "status_of",
    "with_findings",
]
