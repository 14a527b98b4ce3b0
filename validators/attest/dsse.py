"""DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1): sign and open.

The signature covers the pre-authentication encoding PAE(type, body) =
``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, so neither the payload type nor the payload can be
swapped. The envelope is JSON: ``{"payloadType", "payload" (base64), "signatures": [{"keyid", "sig"}]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from validators.attest.keys import Keyring, Signer

PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
MAX_SIGNATURES = 16


class EnvelopeError(Exception):
    """An envelope that cannot be read (the message never quotes its content)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_bytes(self) -> bytes:
        """One line of JSON (the ``.intoto.jsonl`` convention: one envelope per line)."""
        document = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in self.signatures
            ],
        }
        return json.dumps(document, separators=(",", ":")).encode("ascii") + b"\n"

    def signed_by(self, keyring: Keyring) -> str | None:
        """The key id of the first signature a trusted key verifies, or None."""
        message = pae(self.payload_type, self.payload)
        for signature in self.signatures:
            if keyring.verifies(signature.keyid, message, signature.sig):
                return signature.keyid
        return None


def sign(payload: bytes, signer: Signer, payload_type: str = PAYLOAD_TYPE) -> Envelope:
    signature = signer.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, (Signature(signer.keyid, signature),))


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{what} is not valid base64") from None


def parse(data: bytes) -> Envelope:
    """An envelope from its JSON (bounded); EnvelopeError for anything else."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError("attestation too large")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeError("attestation is not JSON") from None
    if not isinstance(document, dict):
        raise EnvelopeError("attestation is not a DSSE envelope")
    payload_type = document.get("payloadType")
    signatures = document.get("signatures")
    if not isinstance(payload_type, str) or not isinstance(signatures, list):
        raise EnvelopeError("attestation is not a DSSE envelope")
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise EnvelopeError("attestation carries no signature (or too many)")
    parsed = []
    for entry in signatures:
        if not isinstance(entry, dict) or not isinstance(entry.get("keyid", ""), str):
            raise EnvelopeError("a signature entry is malformed")
        parsed.append(Signature(entry.get("keyid", ""), _b64(entry.get("sig"), "a signature")))
    return Envelope(payload_type, _b64(document.get("payload"), "the payload"), tuple(parsed))


__all__ = ["PAYLOAD_TYPE", "Envelope", "EnvelopeError", "Signature", "pae", "parse", "sign"]
