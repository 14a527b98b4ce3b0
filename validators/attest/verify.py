"""Checking a stored verdict against its attestation, offline, with trusted public keys only.

Each problem has a stable code and a message in French then English. The key embedded in the verdict is
never trusted by itself (anyone can embed a key): the signature must verify with a key of the keyring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from validators.attest import dsse
from validators.attest.keys import Keyring
from validators.attest.statement import PREDICATE_TYPE, STATEMENT_TYPE, sha256_hex, subjects

MAX_VERDICT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    code: str
    message: str  # "français / English"


@dataclass
class Verification:
    problems: list[Problem] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, fr: str, en: str) -> None:
        self.problems.append(Problem(code, f"{fr} / {en}"))


def _statement(payload: bytes, result: Verification) -> Mapping[str, Any] | None:
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        statement = None
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != STATEMENT_TYPE
        or statement.get("predicateType") != PREDICATE_TYPE
        or not isinstance(statement.get("predicate"), dict)
        or not isinstance(statement.get("subject"), list)
    ):
        result.add("not-a-verdict-attestation", "l'attestation n'atteste pas un verdict proofcheck",
                   "the attestation is not a proofcheck verdict statement")
        return None
    return statement


def verify(
    verdict: bytes,
    attestation: bytes,
    keyring: Keyring,
    *,
    package_sha256: str | None = None,
) -> Verification:
    """Everything that can be said of ``verdict`` given its ``attestation`` and the trusted ``keyring``.

    ``package_sha256``: the digest of the package bytes at hand (``--package``), compared to the subject.
    """
    result = Verification()
    try:
        envelope = dsse.parse(attestation)
    except dsse.EnvelopeError as exc:
        result.add("attestation-unreadable", "attestation illisible", str(exc))
        return result
    keyids = [s.keyid for s in envelope.signatures]
    signer = envelope.signed_by(keyring)
    if signer is None:
        if any(keyring.get(k) is not None for k in keyids):
            result.add("bad-signature", "la signature ne correspond pas : attestation modifiée",
                       "the signature does not verify: the attestation was altered")
        else:
            shown = ", ".join(k[:23] for k in keyids) or "aucune"
            result.add("untrusted-key", f"signée par une clé qui n'est pas de confiance ({shown})",
                       "signed with a key that is not in the keyring (wrong or unknown key)")
        return result
    result.facts["keyid"] = signer
    if envelope.payload_type != dsse.PAYLOAD_TYPE:
        result.add("not-a-verdict-attestation", "type de contenu inattendu", "unexpected payload type")
        return result
    statement = _statement(envelope.payload, result)
    if statement is None:
        return result
    predicate = statement["predicate"]
    try:
        doc = json.loads(verdict)
    except (ValueError, UnicodeDecodeError):
        doc = None
    same_package = isinstance(doc, dict) and subjects(doc) == statement["subject"]
    attested = ((predicate.get("verdict") or {}).get("digest") or {}).get("sha256")
    if attested != sha256_hex(verdict):
        if same_package or not isinstance(doc, dict):
            result.add("verdict-altered", "le verdict ne correspond pas à son empreinte attestée : il a été modifié",
                       "the verdict does not match its attested digest: it was altered")
        else:
            result.add("other-package", "l'attestation porte sur un autre paquet que ce verdict",
                       "the attestation is about another package than this verdict")
        return result
    if not isinstance(doc, dict):
        result.add("verdict-unreadable", "verdict illisible", "the verdict is not a JSON object")
        return result
    _facts(doc, predicate, result)
    if not same_package:
        result.add("other-package", "l'attestation porte sur un autre paquet que ce verdict",
                   "the attestation's subjects are not this verdict's package and files")
    declared = (doc.get("attestation") or {}).get("keyid")
    if declared != signer:
        result.add("key-mismatch", "le verdict déclare une autre clé que celle qui l'a signé",
                   "the verdict names another key than the one that signed it")
    if package_sha256 is not None:
        expected = ((statement["subject"][0] if statement["subject"] else {}).get("digest") or {}).get("sha256")
        if expected != package_sha256:
            result.add("package-mismatch", "le paquet fourni n'est pas celui que le verdict a vérifié",
                       "the package given is not the one the verdict checked")
    return result


def _facts(doc: Mapping[str, Any], predicate: Mapping[str, Any], result: Verification) -> None:
    package = doc.get("package") or {}
    ruleset = predicate.get("ruleset") or {}
    result.facts.update(
        {
            "package": str(package.get("name")),
            "package_sha256": str(package.get("sha256")),
            "status": str(doc.get("status")),
            "ruleset": str(ruleset.get("version")),
            "engine": str((predicate.get("engine") or {}).get("version")),
            "antivirus": ", ".join(f"{k}={v}" for k, v in sorted((predicate.get("antivirus") or {}).items())),
        }
    )


def sha256_of_file(path: Any, chunk: int = 1024 * 1024) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["MAX_VERDICT_BYTES", "Problem", "Verification", "sha256_of_file", "verify"]
