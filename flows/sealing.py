"""Every verdict the pipeline stores is sealed: chained to its package's previous verdict, signed with
the operator's key when one is configured (``PROOFCHECK_SIGNING_KEY``), and appended to the ledger.

The one place where verdict documents are written to S3 (submissions, dry runs, re-validations, gave-up
error verdicts): see ``validators.attest`` for what is signed and ``proofcheck verify`` for the checks.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import sqlalchemy as sa

from flows.ledger import Ledger
from flows.settings import PipelineSettings
from flows.storage import PackageRef, Store
from validators.attest.keys import KeyProblem, Signer, load_signer
from validators.attest.seal import seal
from validators.attest.statement import sha256_hex

log = logging.getLogger(__name__)
SIGNING_KEY_ENV = PipelineSettings.variable_of("signing_key")


@cache
def configured_signer() -> Signer | None:
    """The operator's signer, loaded once per process (KeyProblem when the configured key is unusable)."""
    spec = (PipelineSettings.from_env().signing_key or "").strip()
    return load_signer(spec) if spec else None


def signing_problem() -> str | None:
    """Why the configured signing key cannot be used, or None (checked by ``proofcheck serve`` at start)."""
    try:
        configured_signer()
    except KeyProblem as exc:
        return str(exc)
    return None


@cache
def _ledger(index_url: str) -> Ledger:
    from flows.index import _engine

    return Ledger(_engine(index_url))


def ledger_for(settings: PipelineSettings) -> Ledger:
    return _ledger(settings.index_url)


def seal_and_store(
    store: Store,
    ref: PackageRef,
    ruleset_version: str,
    doc: dict[str, Any],
    html: bytes,
    settings: PipelineSettings | None,
    attempt: int = 0,
) -> str | None:
    """Seal ``doc`` and store it once with its attestation (None: this version already has a verdict)."""
    previous = store.latest_verdict(ref.key)
    try:
        signer = configured_signer()
        problem = None
    except KeyProblem as exc:  # never lose the verdict: store it unsigned, saying why, loudly
        signer, problem = None, f"{SIGNING_KEY_ENV} is set but unusable ({exc})"
        log.error("verdict stored unsigned: %s", problem)
    sealed = seal(
        doc,
        signer,
        previous_sha256=sha256_hex(previous[1]) if previous else None,
        previous_key=previous[0] if previous else None,
        unsigned_reason=problem,
    )
    json_key = store.put_verdict(ref, ruleset_version, sealed.verdict, html, attempt, attestation=sealed.attestation)
    if json_key is not None and settings is not None:
        try:
            ledger_for(settings).append(json_key, ref.key, sealed.sha256)
        except sa.exc.SQLAlchemyError as exc:  # stored all the same; `verify --history` will name it unrecorded
            log.warning("verdict not recorded in the ledger: %s", type(exc).__name__)
    return json_key


__all__ = ["SIGNING_KEY_ENV", "configured_signer", "ledger_for", "seal_and_store", "signing_problem"]
