"""Stored verdicts as the workbench reads them: one loader, and the findings with their fingerprints.

``load`` is the only place the workbench reads a stored verdict document, through the typed reader
``validators.verdict_io`` (schema, consistency, upgrade of older shapes); everything else works on the
contract document it returns. Verdicts are
written once and never overwritten, so a small in-process cache keeps pages fast.

A finding's **fingerprint** is what makes a decision carry over to a later verdict: rule + the content
digest of its file + its location + its masked evidence; a finding outside any file (a proof's or the
package's own) uses the proof id in place of the file digest. Neither the path nor a line number alone
identify it: a renamed file keeps its decisions, a changed file asks for them again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.storage import StorageError, Store
from validators.model import Location
from validators.report.html import describe_location
from validators.verdict_io import VerdictDocumentError, read_verdict, walk_files

_CACHE_SIZE = 256
_MAX_VERDICT_BYTES = 64 * 1024 * 1024
_cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


class VerdictUnavailable(Exception):
    """The stored verdict cannot be read (gone, unreadable, not a verdict)."""


def load(store: Store, json_key: str) -> dict[str, Any]:
    """The stored verdict document at ``json_key`` (contract shape), or ``VerdictUnavailable``."""
    cache_key = (store.bucket, json_key)
    with _lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    try:
        doc = read_verdict(store.get_bytes(json_key, limit=_MAX_VERDICT_BYTES)).to_document()
    except StorageError as exc:
        raise VerdictUnavailable(type(exc).__name__) from None
    except VerdictDocumentError:
        raise VerdictUnavailable("not a verdict") from None
    with _lock:
        _cache[cache_key] = doc
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return doc


def where(location: Mapping[str, Any] | None) -> str:
    """A finding's location (as stored) in words, for the pages: validators.report.html's wording."""
    return describe_location(Location.from_dict(location or {}))


def message_of(finding: Mapping[str, Any]) -> str:
    """The French message when the verdict has one, else the message as stored."""
    return str(finding.get("message_fr") or finding.get("message") or "")


def _location_text(location: Any) -> str:
    """Canonical JSON of a location without its empty fields (a new empty field changes nothing)."""
    if not isinstance(location, Mapping):
        return "{}"
    return json.dumps({k: v for k, v in location.items() if v not in (None, "", [])}, sort_keys=True)


def fingerprint(rule: str, file_sha256: str | None, location: Any, evidence: str | None, scope: str | None) -> str:
    """The finding's identity across verdicts (module docstring); ``scope``: the proof id, for a finding
    outside any file."""
    anchor = f"file:{file_sha256}" if file_sha256 else f"scope:{scope or ''}"
    text = "\x1f".join(("v1", rule, anchor, _location_text(location), evidence or ""))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FindingView:
    proof_id: str | None
    path: str | None
    file_sha256: str | None
    rule: str
    severity: str
    message: str
    location: Mapping[str, Any]
    evidence: str | None
    fingerprint: str

    @property
    def similar(self) -> tuple[str | None, str, str | None]:
        """What a changed finding keeps: where (proof, file path) and which rule."""
        return (self.proof_id, self.rule, self.path)


@dataclass(frozen=True)
class ProofView:
    id: str
    id_as_written: str
    status: str
    findings: tuple[FindingView, ...]
    files: int
    digest: str  # content of the proof: its files' digests and its findings' fingerprints


@dataclass(frozen=True)
class VerdictView:
    json_key: str
    doc: Mapping[str, Any]
    proofs: tuple[ProofView, ...]
    other: tuple[FindingView, ...] = field(default=())  # unmapped files' and the package's own findings

    def findings(self) -> Iterator[FindingView]:
        for proof in self.proofs:
            yield from proof.findings
        yield from self.other

    def proof(self, proof_id: str) -> ProofView | None:
        return next((p for p in self.proofs if p.id == proof_id), None)

    def finding(self, fp: str) -> FindingView | None:
        return next((f for f in self.findings() if f.fingerprint == fp), None)


def _finding(raw: Mapping[str, Any], proof_id: str | None, path: str | None, sha: str | None) -> FindingView:
    rule = str(raw.get("rule", ""))
    evidence = raw.get("evidence")
    location = raw.get("location") if isinstance(raw.get("location"), Mapping) else {}
    return FindingView(
        proof_id=proof_id,
        path=path,
        file_sha256=sha,
        rule=rule,
        severity=str(raw.get("severity", "")),
        message=message_of(raw),
        location=location or {},
        evidence=str(evidence) if evidence is not None else None,
        fingerprint=fingerprint(rule, sha, location, str(evidence) if evidence is not None else None, proof_id),
    )


def _file_findings(files: Any, proof_id: str | None) -> list[FindingView]:
    out: list[FindingView] = []
    for entry in walk_files(files):
        sha = str(entry.get("sha256") or "") or None
        out.extend(_finding(f, proof_id, entry.get("path"), sha) for f in entry.get("findings") or [])
    return out


def proof_digest(files: Any, findings: tuple[FindingView, ...]) -> str:
    digests = sorted(str(e.get("sha256") or "") for e in walk_files(files))
    prints = sorted(f.fingerprint for f in findings)
    return hashlib.sha256("\x1f".join(["v1", *digests, "|", *prints]).encode()).hexdigest()


def view(doc: Mapping[str, Any], json_key: str) -> VerdictView:
    """The findings of a verdict document, grouped by proof, with fingerprints."""
    proofs = []
    for proof in doc.get("proofs") or []:
        proof_id = str(proof.get("id") or "")
        findings = tuple(
            [_finding(f, proof_id, None, None) for f in proof.get("findings") or []]
            + _file_findings(proof.get("files"), proof_id)
        )
        proofs.append(ProofView(
            id=proof_id,
            id_as_written=str(proof.get("id_as_written") or proof_id),
            status=str(proof.get("status", "error")),
            findings=findings,
            files=sum(1 for _ in walk_files(proof.get("files"))),
            digest=proof_digest(proof.get("files"), findings),
        ))
    other = tuple(
        _file_findings(doc.get("unmapped_files"), None)
        + [_finding(f, None, None, None) for f in doc.get("package_findings") or []]
    )
    return VerdictView(json_key, doc, tuple(proofs), other)


__all__ = ["FindingView", "ProofView", "VerdictUnavailable", "VerdictView", "fingerprint", "load", "message_of",
           "view"]
