"""``proofcheck verify`` and ``proofcheck keys``: check a verdict offline, manage the signing keys.

Exit codes as for ``dry-run``: 0 verified, 1 a problem was found (altered, wrong key, other package,
broken history), 2 usage error, 4 internal failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from validators.attest.keys import KeyProblem, Keyring, init_key
from validators.attest.seal import ATTESTATION_SUFFIX
from validators.attest.verify import MAX_VERDICT_BYTES, Verification, sha256_of_file, verify
from validators.settings import EngineSettings

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def attestation_path_for(verdict: str) -> str:
    """``reports/.../RULESET.json`` -> ``reports/.../RULESET.intoto.jsonl``."""
    base = verdict[: -len(".json")] if verdict.endswith(".json") else verdict
    return base + ATTESTATION_SUFFIX


def default_key_dir() -> Path:
    return EngineSettings.load().home / "keys"


def keyring_from(args: argparse.Namespace) -> Keyring:
    """Trusted keys: ``--key`` (files or folders), else PROOFCHECK_TRUSTED_KEYS (paths joined by ':')."""
    paths = [Path(p) for p in args.key or []]
    if not paths:
        paths = list(EngineSettings.load().trusted_keys)
    if not paths:
        raise UsageProblem(
            "no trusted public key: pass --key FILE (or a folder of .pub files), or set PROOFCHECK_TRUSTED_KEYS"
        )
    try:
        keyring = Keyring.from_paths(paths)
    except KeyProblem as exc:
        raise UsageProblem(str(exc)) from None
    if not len(keyring):
        raise UsageProblem("the trusted key folders hold no .pub file")
    return keyring


class UsageProblem(Exception):
    """A bad argument or an unusable key file: one line, exit 2."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_VERDICT_BYTES + 1)
    except OSError as exc:
        raise UsageProblem(f"{what} {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_VERDICT_BYTES:
        raise UsageProblem(f"{what} {path}: too large")
    return data


def _package_digest(path: str) -> str:
    package = Path(path)
    if package.is_dir():  # a folder package is named by the digest of its listing (validators.package)
        from validators.package import open_package

        with open_package(package) as contents:
            return contents.info.sha256
    if not package.is_file():
        raise UsageProblem(f"package {path}: no such file or folder")
    return sha256_of_file(package)


def print_verification(result: Verification, label: str) -> None:
    for name in ("package", "status", "ruleset", "engine", "antivirus", "keyid"):
        if result.facts.get(name):
            print(f"  {name}: {result.facts[name]}")
    if result.ok:
        print(f"OK {label}: signature, empreinte et paquet vérifiés / signature, digest and package verified")
    for problem in result.problems:
        print(f"ÉCHEC {label}: [{problem.code}] {problem.message}")


# The pipeline layer (flows.cli) plugs in what needs the bucket and the index: the engine never imports it.
HistoryHook = Callable[[Keyring | None, str | None], int]
FetchHook = Callable[[str], tuple[bytes, bytes]]
_PIPELINE: dict[str, Any] = {}


def register_pipeline(*, history: HistoryHook, fetch: FetchHook) -> None:
    """Called by ``flows.cli``: ``--history`` and ``s3://`` verdicts (fetch raises ValueError with a reason)."""
    _PIPELINE.update(history=history, fetch=fetch)


def _pipeline(name: str) -> Any:
    if name not in _PIPELINE:
        raise UsageProblem(f"{name} needs the pipeline install (pip install 'proofcheck[pipeline]')")
    return _PIPELINE[name]


def _stored(location: str) -> tuple[bytes, bytes]:
    """A verdict and its attestation read from the bucket (``s3://bucket/reports/...json``)."""
    fetch: FetchHook = _pipeline("fetch")
    try:
        return fetch(location)
    except ValueError as exc:
        raise UsageProblem(f"{location}: {exc}") from None


def _verify_history(args: argparse.Namespace) -> int:
    history: HistoryHook = _pipeline("history")
    trusted = bool(args.key or EngineSettings.load().trusted_keys)
    return history(keyring_from(args) if trusted else None, args.verdict)


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        if args.history:
            return _verify_history(args)
        if not args.verdict:
            raise UsageProblem("verify needs a VERDICT file (or --history)")
        keyring = keyring_from(args)
        if args.verdict.startswith("s3://"):
            verdict, attestation = _stored(args.verdict)
        else:
            verdict = _read(args.verdict, "verdict")
            attestation = _read(args.attestation or attestation_path_for(args.verdict), "attestation")
        digest = _package_digest(args.package) if args.package else None
        result = verify(verdict, attestation, keyring, package_sha256=digest)
    except UsageProblem as exc:
        print(f"proofcheck verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print_verification(result, args.verdict)
    return EXIT_OK if result.ok else EXIT_PROBLEM


def cmd_keys_init(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else default_key_dir()
    try:
        files = init_key(folder, args.name)
    except (KeyProblem, OSError) as exc:
        print(f"proofcheck keys init: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"clé créée / key created: {files.keyid}")
    print(f"  privée / private (0600, gardez-la secrète): {files.private}")
    print(f"  publique / public: {files.public}")
    print(f"  export PROOFCHECK_SIGNING_KEY={files.private}")
    print(f"  export PROOFCHECK_TRUSTED_KEYS={folder}")
    return EXIT_OK


def cmd_keys_show(args: argparse.Namespace) -> int:
    try:
        keyring = keyring_from(args)
    except UsageProblem as exc:
        print(f"proofcheck keys show: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for keyid, _ in keyring.keys:
        print(keyid)
    return EXIT_OK


def register(sub: Any) -> None:
    verify_cmd = sub.add_parser("verify", help="check a stored verdict against its signed attestation")
    verify_cmd.add_argument("verdict", nargs="?", help="the verdict JSON file (with --history: a package key)")
    verify_cmd.add_argument("--attestation", help=f"its DSSE envelope (default: VERDICT with {ATTESTATION_SUFFIX})")
    verify_cmd.add_argument("--package", help="the package (zip or folder) the verdict is about")
    verify_cmd.add_argument("--key", action="append", metavar="PUB",
                            help="a trusted public key file or folder (repeatable; default PROOFCHECK_TRUSTED_KEYS)")
    verify_cmd.add_argument("--history", action="store_true",
                            help="check the stored history (hash chains per package, the index's running digest)")
    verify_cmd.set_defaults(handler=cmd_verify)

    keys = sub.add_parser("keys", help="signing keys of the verdicts")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = keys_sub.add_parser("init", help="create a new Ed25519 key pair (also how keys are rotated)")
    init.add_argument("--dir", help="folder of the keys (default: $PROOFCHECK_HOME/keys)")
    init.add_argument("--name", help="file name of the pair (default: proofcheck-<UTC time>)")
    init.set_defaults(handler=cmd_keys_init)
    show = keys_sub.add_parser("show", help="the fingerprints of the trusted keys")
    show.add_argument("--key", action="append", metavar="PUB", help="a public key file or folder")
    show.set_defaults(handler=cmd_keys_show)


__all__ = ["attestation_path_for", "register", "register_pipeline"]
