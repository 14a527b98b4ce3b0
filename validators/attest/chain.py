"""Tamper evidence over time: a hash chain per package key and a running digest of everything stored.

Each verdict of a package names the sha256 of the package's previous verdict (``chain.previous_sha256``):
a verdict removed or replaced in the middle breaks its successor's link. The last verdict of a chain has
no successor, so the index also keeps a ledger: one row per stored verdict in storage order, each with
``running = sha256(previous running | key | verdict sha256)``. A verdict deleted or replaced anywhere no
longer matches its ledger row, and a ledger row removed or edited breaks every running digest after it.
Instructors' decisions are chained the same way (``running_digest`` over their records).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from validators.attest.verify import Problem

GENESIS = "0" * 64


def running_digest(previous: str, key: str, sha256: str) -> str:
    return hashlib.sha256(f"{previous}|{key}|{sha256}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainEntry:
    key: str  # where the verdict is stored
    sha256: str  # digest of its stored bytes
    previous_sha256: str | None  # what it names as the package's previous verdict


@dataclass(frozen=True)
class LedgerRow:
    seq: int
    key: str
    sha256: str
    running: str


def _problem(code: str, fr: str, en: str) -> Problem:
    return Problem(code, f"{fr} / {en}")


def check_chain(package_key: str, entries: Sequence[ChainEntry]) -> list[Problem]:
    """Problems in one package's chain: a link to a verdict that is gone, a chain started twice."""
    problems: list[Problem] = []
    present = {e.sha256 for e in entries}
    for entry in entries:
        if entry.previous_sha256 and entry.previous_sha256 not in present:
            problems.append(_problem(
                "verdict-missing",
                f"{entry.key} suit un verdict de {package_key} qui a disparu ou a été remplacé",
                "it links to a previous verdict of the package that was removed or replaced",
            ))
    roots = [e for e in entries if not e.previous_sha256]
    if len(roots) > 1:
        problems.append(_problem(
            "chain-restarted",
            f"{package_key} a {len(roots)} premiers verdicts : l'historique a été recommencé",
            "the package's history starts more than once (verdicts removed before a new one)",
        ))
    return problems


def check_ledger(rows: Sequence[LedgerRow], stored: Mapping[str, str]) -> list[Problem]:
    """The ledger against itself (running digests) and against the verdicts ``stored`` (key -> sha256)."""
    problems: list[Problem] = []
    running = GENESIS
    for row in sorted(rows, key=lambda r: r.seq):
        running = running_digest(running, row.key, row.sha256)
        if running != row.running:
            problems.append(_problem(
                "ledger-altered",
                f"le registre de l'index est altéré à partir de l'entrée {row.seq}",
                "the index's ledger was edited or had rows removed",
            ))
            break
        actual = stored.get(row.key)
        if actual is None:
            problems.append(_problem("verdict-removed", f"{row.key} a été supprimé du stockage",
                                     "a stored verdict was deleted"))
        elif actual != row.sha256:
            problems.append(_problem("verdict-replaced", f"{row.key} a été remplacé dans le stockage",
                                     "a stored verdict was replaced"))
    recorded = {r.key for r in rows}
    for key in sorted(set(stored) - recorded):
        problems.append(_problem("verdict-unrecorded", f"{key} n'est pas au registre de l'index",
                                 "a verdict in storage was never recorded by the pipeline"))
    return problems


__all__ = ["GENESIS", "ChainEntry", "LedgerRow", "check_chain", "check_ledger", "running_digest"]
