"""Helpers shared by the flows tests that run S3 in-process (moto's mock, no server)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flows.devharness.local import LocalPipeline
from flows.settings import PipelineSettings
from flows.storage import Store


@contextmanager
def mocked_store(monkeypatch: pytest.MonkeyPatch, bucket: str) -> Iterator[Store]:
    """A versioned bucket in moto's in-process mock, with the fake credentials boto3 wants."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "proofcheck-test")
    with mock_aws():
        store = Store(boto3.client("s3", region_name="us-east-1"), bucket)
        store.ensure_bucket(versioning=True)
        yield store


def fixed_zip(members: Mapping[str, str]) -> bytes:
    """A zip package whose bytes do not depend on the clock (writestr stamps the current second), so a
    test can build it again to compare with what was stored or downloaded."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


@dataclass
class Servers:
    local: LocalPipeline
    settings: PipelineSettings
    store: Store
    patch: pytest.MonkeyPatch  # the environment of this process, set for flows run in it


@contextmanager
def s3_and_prefect(root: Path, bucket: str, engine_settings: Mapping[str, Any]) -> Iterator[Servers]:
    """moto's S3 server and a Prefect server for flows run in this process (no engine retry), stopped after.

    The pipeline's variables are set in this process's environment (flows read them), and Prefect's
    client points at the server, for the duration of the block.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    local = LocalPipeline(root)
    try:
        local.start_s3(notifications=False)
        local.start_prefect()
        assert local.prefect is not None
        settings = replace(local.settings, bucket=bucket, engine_settings=dict(engine_settings), engine_retries=0)
        store = Store.connect(settings)
        store.ensure_bucket(versioning=True)
        with temporary_settings(updates={PREFECT_API_URL: local.prefect.url}), pytest.MonkeyPatch.context() as patch:
            for name, value in {**settings.to_env(), **local.env}.items():
                patch.setenv(name, value)
            yield Servers(local, settings, store, patch)
    finally:
        local.stop()
