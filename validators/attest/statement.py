"""What a verdict attests, as an in-toto Statement v1.

Subjects: the package (its name and sha256, the digest the verdict names) and each proof file at the top
of the package (``<package>/<path>`` and its sha256). Predicate: the verdict document's own digest and
outcome, the ruleset (version, components and a digest of that section), the engine version, the
antivirus signature database, the previous verdict of the same package (hash chain) and the stored object.
The verdict document carries the signing key's id and public part in its ``attestation`` section, so the
digest in the predicate covers them too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://proofcheck.example/attestation/verdict/v1"


def canonical(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no blanks): what digests and signatures are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for proof in doc.get("proofs") or []:
        yield from proof.get("files") or []
    yield from doc.get("unmapped_files") or []


def subjects(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    package = doc.get("package") or {}
    name = str(package.get("name") or "package")
    out: list[dict[str, Any]] = []
    if package.get("sha256"):
        out.append({"name": name, "digest": {"sha256": package["sha256"]}})
    else:  # a package whose bytes could not be read: named by the stored object it came from
        obj = doc.get("object") or {}
        out.append({"name": name, "digest": {"s3etag": str(obj.get("etag") or "unknown")}})
    seen: set[str] = set()
    for file in _files(doc):
        path = str(file.get("path") or "")
        if path and path not in seen and file.get("sha256"):
            seen.add(path)
            out.append({"name": f"{name}/{path}", "digest": {"sha256": file["sha256"]}})
    return out


def statement_for(doc: Mapping[str, Any], verdict_bytes: bytes) -> dict[str, Any]:
    """The statement attesting ``verdict_bytes`` (the stored form of ``doc``)."""
    ruleset = doc.get("ruleset") or {}
    chain = doc.get("chain") or {}
    obj = doc.get("object") or {}
    predicate: dict[str, Any] = {
        "verdict": {
            "digest": {"sha256": sha256_hex(verdict_bytes)},
            "status": doc.get("status"),
            "quarantine": doc.get("quarantine"),
        },
        "ruleset": {
            "version": ruleset.get("version"),
            "components": ruleset.get("components") or {},
            "digest": {"sha256": sha256_hex(canonical(ruleset))},
        },
        "engine": {"version": (doc.get("engine") or {}).get("version")},
        "antivirus": doc.get("antivirus") or {},
        "previous": {"digest": {"sha256": chain["previous_sha256"]}} if chain.get("previous_sha256") else None,
    }
    if obj:
        predicate["object"] = {k: obj.get(k) for k in ("bucket", "key", "version_id", "etag")}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(doc),
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


__all__ = ["PREDICATE_TYPE", "STATEMENT_TYPE", "canonical", "sha256_hex", "statement_for", "subjects"]
