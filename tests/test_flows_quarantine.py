"""An interrupted quarantine completes: a verdict says quarantine but the package is still in the inbox.

The run stores the verdict first (the record), then moves the package (copy + delete). If its process
dies in between, the reconcile (and any later run of that version) must finish the move.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest

pytest.importorskip("moto")
pytest.importorskip("prefect")

from conftest_flows import fixed_zip, mocked_store
from conftest_verdicts import package_verdict

from flows import verdicts as vd
from flows.dispatch import Dispatcher, reconcile
from flows.settings import PipelineSettings
from flows.storage import TAG_QUARANTINE, TAG_STATUS, PackageRef, Store


class _NoDispatch:
    """Stands for the Prefect dispatcher: a version with a verdict must never be dispatched again."""

    def __init__(self) -> None:
        self.ensured: list[str] = []
        self.settings = PipelineSettings()

    def ensure(self, ref: PackageRef, store: Store) -> str:
        self.ensured.append(ref.key)
        return "dispatched"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    with mocked_store(monkeypatch, "proofcheck-quarantine-test") as store:
        yield store


def _package() -> bytes:
    return fixed_zip({"INS.41.2.2/journal.txt": "journal de test fictif\n"})


def _upload(store: Store, key: str) -> PackageRef:
    answer = store.client.put_object(Bucket=store.bucket, Key=key, Body=_package())
    return PackageRef(store.bucket, key, str(answer["ETag"]).strip('"'), answer.get("VersionId"), -1)


def _store_verdict(store: Store, ref: PackageRef, *, quarantine: bool) -> str:
    """What a run stores before it dies: a fail verdict checked in full (no retry), quarantined or not."""
    verdict = package_verdict("fail", ruleset="rs-1", quarantine=quarantine)
    doc: dict[str, Any] = vd.document(verdict, ref, area="inbox", publisher="acme")
    json_key = store.put_verdict(ref, "rs-1", json.dumps(doc).encode(), b"<html></html>")
    assert json_key is not None
    return json_key


def _inbox_keys(store: Store) -> list[str]:
    return [r.key for r in store.list_packages("inbox")]


def test_reconcile_completes_a_quarantine_interrupted_after_the_verdict(store: Store) -> None:
    ref = _upload(store, "inbox/acme/risque.zip")
    _store_verdict(store, ref, quarantine=True)
    dispatcher = _NoDispatch()

    outcomes = reconcile(store, cast(Dispatcher, dispatcher))

    assert outcomes == {"quarantined": 1}
    assert dispatcher.ensured == []
    assert _inbox_keys(store) == []
    # No old version left readable in the inbox either: the version itself was deleted, not hidden.
    versions = store.client.list_object_versions(Bucket=store.bucket, Prefix="inbox/")
    assert versions.get("Versions", []) == []
    moved = store.layout.quarantine_key(ref.key)
    tags = {t["Key"]: t["Value"] for t in store.client.get_object_tagging(Bucket=store.bucket, Key=moved)["TagSet"]}
    assert (tags[TAG_QUARANTINE], tags[TAG_STATUS]) == ("true", "fail")
    assert store.client.get_object(Bucket=store.bucket, Key=moved)["Body"].read() == _package()
    # Nothing left to do: the next reconcile neither moves nor dispatches.
    assert reconcile(store, cast(Dispatcher, dispatcher)) == {}


def test_a_move_interrupted_after_the_copy_is_completed(store: Store) -> None:
    ref = _upload(store, "inbox/acme/copie.zip")
    _store_verdict(store, ref, quarantine=True)
    source = {"Bucket": store.bucket, "Key": ref.key}
    store.client.copy_object(Bucket=store.bucket, Key=store.layout.quarantine_key(ref.key), CopySource=source)
    # ... the copy happened, the delete did not.
    assert reconcile(store, cast(Dispatcher, _NoDispatch())) == {"quarantined": 1}
    assert _inbox_keys(store) == []


def test_a_verdict_without_quarantine_leaves_the_package_and_is_read_once(store: Store) -> None:
    ref = _upload(store, "inbox/acme/sain.zip")
    json_key = _store_verdict(store, ref, quarantine=False)
    dispatcher = _NoDispatch()
    settled: set[tuple[str, str]] = set()
    # The stand-in run died before tagging: the reconcile gives the package its verdict's tags.
    assert reconcile(store, cast(Dispatcher, dispatcher), settled=settled) == {"retagged": 1}
    assert _inbox_keys(store) == [ref.key]
    assert settled == {(ref.key, ref.token)}
    # Settled versions are not read again: a verdict changed behind our back is not even looked at.
    doc = json.loads(store.get_bytes(json_key))
    doc["quarantine"] = True
    store.client.put_object(Bucket=store.bucket, Key=json_key, Body=json.dumps(doc).encode())
    assert reconcile(store, cast(Dispatcher, dispatcher), settled=settled) == {}
    assert _inbox_keys(store) == [ref.key]
    assert dispatcher.ensured == []


def test_a_version_without_verdict_is_dispatched_not_moved(store: Store) -> None:
    ref = _upload(store, "inbox/acme/nouveau.zip")
    dispatcher = _NoDispatch()
    assert reconcile(store, cast(Dispatcher, dispatcher)) == {"dispatched": 1}
    assert dispatcher.ensured == [ref.key]
    assert _inbox_keys(store) == [ref.key]
