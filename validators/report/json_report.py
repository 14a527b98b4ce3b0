"""The verdict document of ARCHITECTURE.md §3.1: the contract other tools read."""

from __future__ import annotations

import json
from typing import Any

from validators.model import PackageVerdict

SCHEMA_VERSION = "1"


def to_document(verdict: PackageVerdict) -> dict[str, Any]:
    prov = verdict.provenance
    counts: dict[str, int] = {"error": 0, "warning": 0, "info": 0}
    for finding in verdict.iter_findings():
        counts[finding.severity.value] += 1
    return {
        "schema_version": SCHEMA_VERSION,
        "package": verdict.package.to_dict(),
        "status": verdict.status.value,
        "quarantine": verdict.quarantine,
        "summary": {
            "proofs": len(verdict.proofs),
            "files": sum(1 for _ in verdict.iter_file_verdicts()),
            "unmapped_files": len(verdict.unmapped_files),
            "findings": counts,
        },
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


def render(verdict: PackageVerdict) -> str:
    return json.dumps(to_document(verdict), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
