"""Sealing a verdict document before it is stored: provenance of the key, chain link, signed attestation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from validators.attest import dsse
from validators.attest.keys import Signer
from validators.attest.statement import canonical, sha256_hex, statement_for

ATTESTATION_SUFFIX = ".intoto.jsonl"  # stored beside each verdict: RULESET.json -> RULESET.intoto.jsonl
UNSIGNED_WARNING = (
    "verdict non signé : aucune clé de signature n'est configurée (PROOFCHECK_SIGNING_KEY) / "
    "unsigned verdict: no signing key is configured"
)


@dataclass(frozen=True)
class Sealed:
    verdict: bytes  # the stored verdict document
    attestation: bytes | None  # its DSSE envelope (one JSON line), None when unsigned
    sha256: str  # digest of ``verdict``: what the next verdict of the package links to


def verdict_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def seal(
    doc: dict[str, Any],
    signer: Signer | None,
    *,
    previous_sha256: str | None = None,
    previous_key: str | None = None,
    unsigned_reason: str | None = None,
) -> Sealed:
    """Add the ``attestation`` and ``chain`` sections to ``doc`` (in place), serialise and sign it."""
    if signer is None:
        doc["attestation"] = {"signed": False, "warning": UNSIGNED_WARNING}
        if unsigned_reason:
            doc["attestation"]["reason"] = unsigned_reason
    else:
        doc["attestation"] = {
            "signed": True,
            "format": "dsse+in-toto",
            "algorithm": signer.algorithm,
            "keyid": signer.keyid,
            "public_key": signer.public_key_pem,
        }
    doc["chain"] = {"previous_sha256": previous_sha256, "previous_key": previous_key}
    stored = verdict_bytes(doc)
    digest = sha256_hex(stored)
    if signer is None:
        return Sealed(stored, None, digest)
    envelope = dsse.sign(canonical(statement_for(doc, stored)), signer)
    return Sealed(stored, envelope.to_bytes(), digest)


__all__ = ["ATTESTATION_SUFFIX", "UNSIGNED_WARNING", "Sealed", "seal", "verdict_bytes"]
