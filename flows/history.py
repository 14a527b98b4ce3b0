"""``proofcheck verify --history``: the stored verdicts against their chains, attestations and the ledger.

Reads every verdict in the bucket (or those of one package key), checks each package's hash chain, each
signed verdict's attestation when trusted keys are given, the ledger kept in the index database, and the
chain of the instructors' decisions (``flows/decisions.py``).
Prints one line per problem (French / English) and the ledger's head, which an operator may publish
elsewhere so that even someone able to rewrite both the bucket and the database is caught.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from flows.decisions import DecisionStore, check_decisions
from flows.sealing import ledger_for
from flows.settings import PipelineSettings
from flows.storage import StorageError, Store
from validators.attest.chain import ChainEntry, check_chain, check_ledger
from validators.attest.keys import Keyring
from validators.attest.seal import ATTESTATION_SUFFIX
from validators.attest.statement import sha256_hex
from validators.attest.verify import Problem, verify


def _is_verdict(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("package"), dict) and isinstance(doc.get("object"), dict)


def history_problems(
    store: Store, settings: PipelineSettings, keyring: Keyring | None, package_key: str | None = None
) -> tuple[list[tuple[str, Problem]], dict[str, int]]:
    """(where, problem) pairs and counts for the stored history (all packages, or one package key)."""
    prefix = store.layout.reports + package_key + "/" if package_key else None
    problems: list[tuple[str, Problem]] = []
    chains: dict[str, list[ChainEntry]] = defaultdict(list)
    stored: dict[str, str] = {}
    counts = {"verdicts": 0, "signed": 0, "unsigned": 0}
    for key in store.iter_verdict_keys():
        if prefix and not key.startswith(prefix):
            continue
        data = store.get_bytes(key)
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if not _is_verdict(doc):
            continue  # a re-validation run record, not a verdict
        counts["verdicts"] += 1
        digest = sha256_hex(data)
        stored[key] = digest
        chain = doc.get("chain") or {}
        chains[doc["object"].get("key") or key].append(ChainEntry(key, digest, chain.get("previous_sha256")))
        signed = bool((doc.get("attestation") or {}).get("signed"))
        counts["signed" if signed else "unsigned"] += 1
        if keyring is not None and signed:
            try:
                envelope = store.get_bytes(key[: -len(".json")] + ATTESTATION_SUFFIX)
            except StorageError:
                problems.append((key, Problem("attestation-missing", "l'attestation du verdict a disparu / "
                                              "the verdict's attestation is missing")))
                continue
            problems.extend((key, p) for p in verify(data, envelope, keyring).problems)
    for package, entries in sorted(chains.items()):
        problems.extend((package, p) for p in check_chain(package, entries))
    ledger = ledger_for(settings)
    rows = [r for r in ledger.rows() if not prefix or r.key.startswith(prefix)]
    if package_key:  # one package: its rows are checked against the bucket, running digests need them all
        by_key = {r.key: r for r in rows}
        for key, digest in stored.items():
            row = by_key.get(key)
            if row is None or row.sha256 != digest:
                code = "verdict-unrecorded" if row is None else "verdict-replaced"
                problems.append((key, Problem(code, "le verdict ne correspond pas au registre / "
                                              "the verdict does not match the ledger")))
        problems.extend((r.key, Problem("verdict-removed", "le verdict du registre a disparu / a ledger verdict is "
                                        "gone")) for r in rows if r.key not in stored)
    else:
        problems.extend(("ledger", p) for p in check_ledger(ledger.rows(), stored))
    # The instructors' decisions (flows/decisions.py) are chained the same way, in one chain for all packages.
    decisions = DecisionStore(ledger.engine)
    problems.extend(("decisions", p) for p in check_decisions(decisions.all(), decisions.head()))
    return problems, counts


def fetch_stored(location: str) -> tuple[bytes, bytes]:
    """A verdict and its attestation from ``s3://bucket/reports/...json`` (ValueError: why not)."""
    from validators.attest.cli import attestation_path_for

    bucket, _, key = location[len("s3://") :].partition("/")
    if not bucket or not key.endswith(".json"):
        raise ValueError("an s3 verdict is named s3://BUCKET/reports/.../RULESET.json")
    store = Store.connect(PipelineSettings.from_env(), bucket)
    try:
        return store.get_bytes(key), store.get_bytes(attestation_path_for(key))
    except StorageError as exc:
        raise ValueError(str(exc)) from None


def verify_history(keyring: Keyring | None, package_key: str | None = None) -> int:
    settings = PipelineSettings.from_env()
    store = Store.connect(settings)
    try:
        problems, counts = history_problems(store, settings, keyring, package_key)
        seq, running = ledger_for(settings).head()
        decided, decisions_running = DecisionStore(ledger_for(settings).engine).head()
    except (StorageError, sa.exc.SQLAlchemyError) as exc:
        print(f"proofcheck verify --history: stockage ou index injoignable / storage or index unreachable "
              f"({type(exc).__name__})")
        return 4
    print(f"{counts['verdicts']} verdict(s): {counts['signed']} signé(s), {counts['unsigned']} non signé(s)"
          + ("" if keyring else " (signatures non vérifiées : aucune clé de confiance / no trusted key given)"))
    print(f"registre / ledger head: {seq} {running}")
    print(f"décisions / decisions head: {decided} {decisions_running}")
    for where, problem in problems:
        print(f"ÉCHEC {where}: [{problem.code}] {problem.message}")
    if not problems:
        print("OK historique intact / history intact")
    return 1 if problems else 0


__all__ = ["fetch_stored", "history_problems", "verify_history"]
