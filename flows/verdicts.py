"""Verdict documents as the pipeline stores them: the contract JSON plus where the package came from.

Pure functions (no Prefect, no S3): the flow calls them, tests call them directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flows.completeness import gaps_of
from flows.storage import MARKER, PackageRef
from validators import __version__, rules
from validators.model import PackageInfo, PackageVerdict, Provenance
from validators.report import html as html_report
from validators.report import json_report

REFERENTIAL = "REM-MDV-LGC-SF-Va1"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_name(key: str) -> str:
    """The package's name: the zip object's, or the folder's for a folder package's marker."""
    head, _, last = key.rpartition("/")
    return head.rsplit("/", 1)[-1] if last == MARKER and head else last


def object_statuses(doc: Mapping[str, Any]) -> dict[str, str]:
    """The status each proof object gets, by its path in the package: its proof's status.

    A file outside any proof gets its own status. Files found inside others (children) are not S3
    objects and get nothing.
    """
    statuses: dict[str, str] = {}
    for proof in doc.get("proofs") or []:
        for entry in proof.get("files") or []:
            statuses[str(entry.get("path"))] = str(proof.get("status", "error"))
    for entry in doc.get("unmapped_files") or []:
        statuses[str(entry.get("path"))] = str(entry.get("status", "error"))
    return statuses


def with_source(verdict: PackageVerdict, ref: PackageRef) -> PackageVerdict:
    """The verdict with ``package.source`` naming the S3 object it was computed from."""
    return replace(verdict, package=replace(verdict.package, source=ref.uri))


def error_verdict(
    ref: PackageRef, reason: str, *, sha256: str = "", ruleset_version: str = "none"
) -> PackageVerdict:
    """The verdict of a package whose checks could not complete: status ``error``, never nothing.

    ``reason`` is ours (an exception type, a limit), never text taken from the package.
    """
    now = _now()
    return PackageVerdict(
        package=PackageInfo(
            name=package_name(ref.key), sha256=sha256, source=ref.uri, referential=REFERENTIAL
        ),
        provenance=Provenance(
            ruleset_version=ruleset_version, engine_version=__version__, started_at=now, finished_at=now
        ),
        package_findings=(rules.finding("system.package-unreadable", reason=reason),),
    )


def document(verdict: PackageVerdict, ref: PackageRef, *, area: str, publisher: str | None) -> dict[str, Any]:
    """The contract document (validators.report.json_report) plus an ``object`` section for the pipeline."""
    doc = json_report.to_document(verdict)
    doc["object"] = {
        "bucket": ref.bucket,
        "key": ref.key,
        "version_id": ref.version_id,
        "etag": ref.etag,
        "size": ref.size,
        "uploaded_at": ref.last_modified,
        "area": area,
        "publisher": publisher,
        "stored_at": _now(),
    }
    return doc


def mark_checked(doc: dict[str, Any], attempt: int | None = None, next_try_after: str | None = None) -> dict[str, Any]:
    """Add the ``checked`` section: whether every check ran, what did not, and the re-run schedule.

    A summary for readers (index, workbench); the findings and checks of the document stay the truth
    (``flows.completeness`` recomputes it). ``attempt``: how many verdicts this version had before this
    one (None when unknown, e.g. a re-validation); ``next_try_after``: when the reconcile runs it again,
    only while it is not checked in full.
    """
    gaps = gaps_of(doc)
    doc["checked"] = {
        "in_full": gaps.in_full,
        "not_run": list(gaps.checks),
        "rules": list(gaps.rules),
        "attempt": attempt,
        "next_try_after": None if gaps.in_full else next_try_after,
    }
    return doc


def document_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def render_html(verdict: PackageVerdict) -> str:
    """The package report instructors open (validators.report.html)."""
    return html_report.render(verdict)


def summary(verdict: PackageVerdict) -> dict[str, Any]:
    """Counts for tags, artifacts and the index."""
    counts = {"error": 0, "warning": 0, "info": 0}
    for finding in verdict.iter_findings():
        counts[finding.severity.value] += 1
    return {
        "status": verdict.status.value,
        "quarantine": verdict.quarantine,
        "proofs": len(verdict.proofs),
        "files": sum(1 for _ in verdict.iter_file_verdicts()),
        "errors": counts["error"],
        "warnings": counts["warning"],
        "ruleset": verdict.provenance.ruleset_version,
    }
