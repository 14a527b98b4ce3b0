"""The verdict document of docs/architecture.md §3.1: the contract other tools read (``verdict_io`` reads it back).

Each finding carries its English ``message`` (as since schema 1), the ``params`` its template was filled
with, and ``message_fr`` rendered from the rule's French template (null when the rule has none yet).
"""

from __future__ import annotations

import json
from typing import Any

from validators.model import PackageVerdict

SCHEMA_VERSION = "1"


def summary(verdict: PackageVerdict) -> dict[str, Any]:
    """The document's ``summary``: counts of proofs, files (children included) and findings by severity."""
    counts: dict[str, int] = {"error": 0, "warning": 0, "info": 0}
    for finding in verdict.iter_findings():
        counts[finding.severity.value] += 1
    return {
        "proofs": len(verdict.proofs),
        "files": sum(1 for _ in verdict.iter_file_verdicts()),
        "unmapped_files": len(verdict.unmapped_files),
        "findings": counts,
    }


def to_document(verdict: PackageVerdict) -> dict[str, Any]:
    prov = verdict.provenance
    return {
        "schema_version": SCHEMA_VERSION,
        "package": verdict.package.to_dict(),
        "status": verdict.status.value,
        "quarantine": verdict.quarantine,
        "summary": summary(verdict),
        "ruleset": {"version": prov.ruleset_version, "components": dict(prov.components)},
        "antivirus": dict(prov.antivirus),
        "engine": {
            "version": prov.engine_version,
            "started_at": prov.started_at,
            "finished_at": prov.finished_at,
        },
        "proofs": [p.to_dict() for p in verdict.proofs],
        "unmapped_files": [f.to_dict() for f in verdict.unmapped_files],
        "package_findings": [f.to_dict() for f in verdict.package_findings],
    }


def document_text(doc: dict[str, Any]) -> str:
    """A verdict document as it is stored and printed: UTF-8 JSON, two-space indent, keys in writing order."""
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def document_bytes(doc: dict[str, Any]) -> bytes:
    return document_text(doc).encode("utf-8")


def render(verdict: PackageVerdict) -> str:
    return document_text(to_document(verdict))
