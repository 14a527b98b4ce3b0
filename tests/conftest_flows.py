"""Helpers shared by the flows tests that run S3 in-process (moto's mock, no server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from moto import mock_aws

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
