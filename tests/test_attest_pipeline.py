"""Sealed verdicts in the bucket: chained per package, signed, in the ledger; tampering found by verify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

pytest.importorskip("moto")

from moto import mock_aws

from flows import verdicts as vd
from flows.history import history_problems
from flows.sealing import configured_signer, ledger_for, seal_and_store
from flows.settings import PipelineSettings
from flows.storage import PackageRef, Store
from validators.attest.keys import Keyring, init_key
from validators.attest.seal import ATTESTATION_SUFFIX
from validators.cli import main

BUCKET = "proofcheck-attest-test"
KEY = "inbox/acme/lgc.zip"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, PipelineSettings, Path]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "proofcheck-test")
    keys = init_key(tmp_path / "keys", "operator")
    monkeypatch.setenv("PROOFCHECK_SIGNING_KEY", str(keys.private))
    monkeypatch.setenv("PROOFCHECK_BUCKET", BUCKET)
    monkeypatch.setenv("PROOFCHECK_INDEX_URL", f"sqlite:///{tmp_path / 'index.sqlite3'}")
    monkeypatch.setenv("PROOFCHECK_WORK_DIR", str(tmp_path / "work"))
    configured_signer.cache_clear()
    with mock_aws():
        store = Store(boto3.client("s3", region_name="us-east-1"), BUCKET)
        store.ensure_bucket(versioning=True)
        yield store, PipelineSettings.from_env(), keys.public
    configured_signer.cache_clear()


def _version(store: Store, settings: PipelineSettings, body: bytes, ruleset: str = "rs-1") -> str:
    answer = store.client.put_object(Bucket=store.bucket, Key=KEY, Body=body)
    ref = PackageRef(store.bucket, KEY, str(answer["ETag"]).strip('"'), answer.get("VersionId"), len(body))
    verdict = vd.error_verdict(ref, "stand-in", sha256="ab" * 32, ruleset_version=ruleset)
    doc = vd.document(verdict, ref, area="inbox", publisher="acme")
    json_key = seal_and_store(store, ref, ruleset, doc, b"<html></html>", settings)
    assert json_key is not None
    return json_key


def _codes(store: Store, settings: PipelineSettings, keyring: Keyring | None) -> list[str]:
    return sorted(p.code for _, p in history_problems(store, settings, keyring)[0])


def test_stored_verdicts_chain_and_verify(env: tuple[Store, PipelineSettings, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    store, settings, public = env
    keyring = Keyring.from_paths([public])
    keys = [_version(store, settings, f"version {i}".encode()) for i in range(3)]
    docs = [json.loads(store.get_bytes(k)) for k in keys]
    assert docs[0]["chain"]["previous_sha256"] is None
    assert docs[1]["chain"]["previous_key"] == keys[0] and docs[2]["chain"]["previous_key"] == keys[1]
    assert all(d["attestation"]["signed"] for d in docs)
    assert store.get_bytes(keys[0][: -len(".json")] + ATTESTATION_SUFFIX).startswith(b'{"payloadType"')
    assert _codes(store, settings, keyring) == []
    assert [r.key for r in ledger_for(settings).rows()] == keys

    assert main(["verify", f"s3://{BUCKET}/{keys[1]}", "--key", str(public)]) == 0
    assert "OK" in capsys.readouterr().out

    # Altered in the bucket: one byte of the middle verdict.
    altered = store.get_bytes(keys[1]).replace(b'"error"', b'"pass"', 1)
    store.put_bytes(keys[1], altered, "application/json")
    assert main(["verify", f"s3://{BUCKET}/{keys[1]}", "--key", str(public)]) == 1
    assert "verdict-altered" in capsys.readouterr().out
    assert _codes(store, settings, keyring) == ["verdict-altered", "verdict-missing", "verdict-replaced"]


def test_a_deleted_last_verdict_is_found_by_the_ledger(env: tuple[Store, PipelineSettings, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store, settings, public = env
    keys = [_version(store, settings, f"v{i}".encode()) for i in range(2)]
    assert main(["verify", "--history", "--key", str(public)]) == 0
    store.client.delete_object(Bucket=BUCKET, Key=keys[1])
    assert _codes(store, settings, None) == ["verdict-removed"]
    assert main(["verify", "--history", "--key", str(public)]) == 1
    out = capsys.readouterr().out
    assert "verdict-removed" in out and "ledger head" in out


def test_without_a_key_verdicts_are_stored_unsigned_and_still_chained(
    env: tuple[Store, PipelineSettings, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings, _ = env
    monkeypatch.delenv("PROOFCHECK_SIGNING_KEY")
    configured_signer.cache_clear()
    keys = [_version(store, settings, f"u{i}".encode()) for i in range(2)]
    docs = [json.loads(store.get_bytes(k)) for k in keys]
    assert [d["attestation"]["signed"] for d in docs] == [False, False]
    assert docs[1]["chain"]["previous_key"] == keys[0]
    assert store.client.list_objects_v2(Bucket=BUCKET, Prefix=keys[0][: -len(".json")] + ATTESTATION_SUFFIX)[
        "KeyCount"] == 0
    assert _codes(store, settings, None) == []


def test_an_unusable_configured_key_stores_the_verdict_unsigned_with_the_reason(
    env: tuple[Store, PipelineSettings, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store, settings, _ = env
    monkeypatch.setenv("PROOFCHECK_SIGNING_KEY", str(tmp_path / "gone.key"))
    configured_signer.cache_clear()
    from flows.sealing import signing_problem

    assert signing_problem() is not None and "gone.key" in str(signing_problem())
    doc = json.loads(store.get_bytes(_version(store, settings, b"x")))
    assert doc["attestation"]["signed"] is False and "gone.key" in doc["attestation"]["reason"]
