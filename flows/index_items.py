"""What the workbench searches: one index row per proof, file and finding of each *current* verdict.

Part of the verdict index (a cache rebuilt from the stored verdicts with it, ``flows/index.py``), kept
only for the current verdict of each package key: instructors search what is in force ("every
INS.41.2.2", "which packages still have a pii.nir"), and the versions' history is read from the
verdicts themselves. Values come from the stored document, already masked (paths, evidence); no
message or evidence is copied here, only the proof id, the file path, the rule and the statuses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from validators.verdict_io import walk_files

_meta = sa.MetaData()
items = sa.Table(
    "verdict_items",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("verdict_id", sa.Integer, nullable=False, index=True),  # verdicts.id of a current verdict
    sa.Column("kind", sa.String(8), nullable=False),  # "proof" | "file" | "finding"
    sa.Column("proof_id", sa.String(256)),  # canonical id; NULL: unmapped file or package finding
    sa.Column("proof_key", sa.String(256), index=True),  # lower-case proof id (matching is case-insensitive)
    sa.Column("path", sa.String(1024)),
    sa.Column("name_key", sa.String(512)),  # lower-case last segment of the path, for the search
    sa.Column("rule", sa.String(128), index=True),
    sa.Column("severity", sa.String(16)),
    sa.Column("status", sa.String(16)),  # the proof's or the file's status
)
sa.Index("ix_verdict_items_kind_proof", items.c.kind, items.c.proof_key)
_LIMITS = {c.name: getattr(c.type, "length", None) for c in items.columns}


def create(engine: sa.Engine) -> None:
    _meta.create_all(engine)


def _cut(row: dict[str, Any]) -> dict[str, Any]:
    for name, value in row.items():
        length = _LIMITS.get(name)
        if length and isinstance(value, str) and len(value) > length:
            row[name] = value[:length]
    return row


def _file_rows(files: Any, proof_id: str | None) -> Iterator[dict[str, Any]]:
    for entry in walk_files(files):
        path = str(entry.get("path") or "")
        yield {"kind": "file", "proof_id": proof_id, "path": path, "status": entry.get("status")}
        for finding in entry.get("findings") or []:
            yield {"kind": "finding", "proof_id": proof_id, "path": path, "rule": finding.get("rule"),
                   "severity": finding.get("severity")}


def items_of(doc: Mapping[str, Any], verdict_id: int) -> list[dict[str, Any]]:
    """The rows of one verdict document (contract shape, ARCHITECTURE.md §3.1)."""
    rows: list[dict[str, Any]] = []
    for proof in doc.get("proofs") or []:
        proof_id = str(proof.get("id") or "")
        rows.append({"kind": "proof", "proof_id": proof_id, "status": proof.get("status")})
        rows.extend({"kind": "finding", "proof_id": proof_id, "rule": f.get("rule"), "severity": f.get("severity")}
                    for f in proof.get("findings") or [])
        rows.extend(_file_rows(proof.get("files"), proof_id))
    rows.extend(_file_rows(doc.get("unmapped_files"), None))
    rows.extend({"kind": "finding", "proof_id": None, "rule": f.get("rule"), "severity": f.get("severity")}
                for f in doc.get("package_findings") or [])
    out = []
    for row in rows:
        path: str | None = row.get("path")
        scope: str | None = row.get("proof_id")
        full = {"path": None, "rule": None, "severity": None, "status": None, **row}
        full.update(verdict_id=verdict_id, proof_key=scope.lower() if scope else None,
                    name_key=path.rsplit("/", 1)[-1].lower() if path else None)
        out.append(_cut(full))
    return out


__all__ = ["create", "items", "items_of"]
