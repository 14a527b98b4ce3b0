"""Pure parts of the warm executor (the pool itself runs in test_flows_e2e.py against a Prefect server)."""

from __future__ import annotations

import ssl

import certifi
import pytest

from flows.settings import PipelineSettings
from flows.warm import _reuse_tls_contexts


def test_tls_contexts_from_one_ca_file_are_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssl, "create_default_context", ssl.create_default_context)  # restored after
    _reuse_tls_contexts()
    _reuse_tls_contexts()  # idempotent: not wrapped twice
    first = ssl.create_default_context(cafile=certifi.where())
    assert ssl.create_default_context(cafile=certifi.where()) is first
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    # Without a CA file, callers may loosen the context (Prefect's insecure mode): never shared.
    assert ssl.create_default_context() is not ssl.create_default_context()
    assert ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certifi.where()) is not first


def test_the_executor_is_chosen_by_environment() -> None:
    assert PipelineSettings.from_env({}).executor == "warm"
    assert PipelineSettings.from_env({"PROOFCHECK_EXECUTOR": "process"}).executor == "process"
    with pytest.raises(ValueError, match="PROOFCHECK_EXECUTOR"):
        PipelineSettings.from_env({"PROOFCHECK_EXECUTOR": "threads"})
