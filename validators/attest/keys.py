"""Signing keys: the operator's Ed25519 key (or a pluggable KMS/HSM signer) and the trusted keyring.

A key is named by its fingerprint, ``sha256:<hex>`` of the raw 32-byte public key; that is the DSSE
``keyid``. The keyring is every public key an operator trusts (old keys stay after a rotation, so verdicts
signed with them stay verifiable). A signer never exposes its private key: it only signs bytes.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "ed25519"
MAX_KEY_FILE_BYTES = 64 * 1024
PUBLIC_SUFFIX = ".pub"
PRIVATE_SUFFIX = ".key"


class KeyProblem(Exception):
    """A key file or a signer specification that cannot be used (the message names the file, never key bytes)."""


@runtime_checkable
class Signer(Protocol):
    """What signs an attestation: a key id, the public half (PEM) and a sign function."""

    @property
    def keyid(self) -> str: ...

    @property
    def public_key_pem(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


@dataclass(frozen=True)
class Ed25519Signer:
    """A signer holding an Ed25519 private key in memory (read from the operator's key file)."""

    private_key: Ed25519PrivateKey

    @property
    def keyid(self) -> str:
        return fingerprint(self.private_key.public_key())

    @property
    def public_key_pem(self) -> str:
        return public_pem(self.private_key.public_key())

    @property
    def algorithm(self) -> str:
        return ALGORITHM

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: Path) -> Ed25519Signer:
        data = _read_key_file(path)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KeyProblem(f"{path.name}: not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyProblem(f"{path.name}: not an Ed25519 key")
        return cls(key)


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyProblem(f"{path.name}: too large for a key file")
    return data


def load_signer(spec: str) -> Signer:
    """The signer a setting names: a private key file, or ``python:module:callable`` for a KMS/HSM signer.

    The callable takes no argument and returns an object with ``keyid``, ``public_key_pem``,
    ``algorithm`` ("ed25519") and ``sign(bytes) -> bytes``.
    """
    if spec.startswith("python:"):
        target = spec[len("python:") :]
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise KeyProblem("a plug-in signer is named python:<module>:<callable>")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise KeyProblem(f"signer plug-in {target} cannot be loaded ({type(exc).__name__})") from None
        signer = factory()
        if not isinstance(signer, Signer):
            raise KeyProblem(f"signer plug-in {target} does not provide keyid, public_key_pem, algorithm, sign")
        return signer
    return Ed25519Signer.from_file(Path(spec))


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyProblem(f"{path.name}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(f"{path.name}: not an Ed25519 public key")
    return key


def public_key_from_pem(pem: str) -> Ed25519PublicKey | None:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


@dataclass(frozen=True)
class Keyring:
    """Trusted public keys by key id."""

    keys: tuple[tuple[str, Ed25519PublicKey], ...] = ()

    def get(self, keyid: str) -> Ed25519PublicKey | None:
        return dict(self.keys).get(keyid)

    def __len__(self) -> int:
        return len(self.keys)

    def verifies(self, keyid: str, data: bytes, signature: bytes) -> bool:
        key = self.get(keyid)
        if key is None:
            return False
        try:
            key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def of(cls, public_keys: Iterable[Ed25519PublicKey]) -> Keyring:
        return cls(tuple((fingerprint(k), k) for k in public_keys))

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> Keyring:
        """Public keys from files and from the ``*.pub`` files of folders."""
        found: list[Ed25519PublicKey] = []
        for path in paths:
            if path.is_dir():
                found.extend(load_public_key(p) for p in sorted(path.glob(f"*{PUBLIC_SUFFIX}")))
            else:
                found.append(load_public_key(path))
        return cls.of(found)


@dataclass(frozen=True)
class KeyFiles:
    private: Path
    public: Path
    keyid: str


def init_key(folder: Path, name: str | None = None) -> KeyFiles:
    """A new Ed25519 key pair in ``folder``: ``<name>.key`` (mode 0600) and ``<name>.pub``.

    Existing files are never overwritten: a rotation is a new pair beside the old ones, whose public
    half stays in the keyring so that older verdicts remain verifiable.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = name or "proofcheck-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    private, public = folder / f"{name}{PRIVATE_SUFFIX}", folder / f"{name}{PUBLIC_SUFFIX}"
    if private.exists() or public.exists():
        raise KeyProblem(f"{name}: a key of this name already exists in {folder}")
    signer = Ed25519Signer.generate()
    pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(pem)
    public.write_text(signer.public_key_pem, encoding="ascii")
    return KeyFiles(private=private, public=public, keyid=signer.keyid)


__all__ = [
    "ALGORITHM",
    "Ed25519Signer",
    "KeyFiles",
    "KeyProblem",
    "Keyring",
    "Signer",
    "fingerprint",
    "init_key",
    "load_public_key",
    "load_signer",
    "public_key_from_pem",
    "public_pem",
]
