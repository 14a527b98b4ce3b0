"""Pipeline regressions found by benchmarks/soak.py (each test names the soak run that showed it).

A burst larger than the runner's limit leaves runs waiting in ``Scheduled``; the reconcile aged them from
their creation, marked them ``Crashed`` past ``stale_after``, re-queued the next attempt at the back and,
after ``max_attempts``, stored an ``error`` verdict ("did not complete after 3 attempts") for packages
nothing was wrong with. The soak's 10-package smoke run (limit 2, stale_after 20 s) ended with 6 such
verdicts out of 11.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

pytest.importorskip("prefect")

from prefect.client.schemas.objects import FlowRun
from prefect.states import Pending, Running, Scheduled

from flows.dispatch import Dispatcher
from flows.settings import PipelineSettings
from flows.storage import PackageRef

REF = PackageRef("proofcheck", "inbox/acme/paquet.zip", "etag-1", "version-1", 100)
LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


@dataclass
class FakePrefect:
    """The three calls ``Dispatcher.ensure`` makes, recorded."""

    runs: list[FlowRun]
    created: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)

    def read_flow_runs(self, **_: Any) -> list[FlowRun]:
        return self.runs

    def create_flow_run_from_deployment(self, _deployment: Any, *, idempotency_key: str, **_: Any) -> FlowRun:
        self.created.append(idempotency_key)
        return flow_run(Scheduled(), created=datetime.now(UTC), key=idempotency_key)

    def set_flow_run_state(self, run_id: Any, state: Any, force: bool = False) -> None:
        self.forced.append(state.type.value)

    def read_deployment_by_name(self, _name: str) -> Any:
        return type("Deployment", (), {"id": uuid4()})()


def flow_run(state: Any, *, created: datetime, key: str = REF.idempotency_key(0),
             start_time: datetime | None = None) -> FlowRun:
    return FlowRun(
        id=uuid4(), flow_id=uuid4(), name="run", idempotency_key=key, state=state, created=created,
        expected_start_time=created, start_time=start_time,
    )


def dispatcher(runs: list[FlowRun]) -> tuple[Dispatcher, FakePrefect]:
    fake = FakePrefect(runs)
    return Dispatcher(PipelineSettings(stale_after=60.0), client=fake), fake  # type: ignore[arg-type]


def test_a_run_waiting_in_the_queue_for_an_hour_is_left_alone() -> None:
    d, fake = dispatcher([flow_run(Scheduled(), created=LONG_AGO)])
    assert d.ensure(REF, store=None) == "queued"  # type: ignore[arg-type]
    assert fake.created == [] and fake.forced == []


def test_a_run_just_claimed_after_a_long_wait_is_not_stale() -> None:
    d, fake = dispatcher([flow_run(Pending(), created=LONG_AGO)])
    assert d.ensure(REF, store=None) == "running"  # type: ignore[arg-type]
    assert fake.forced == []


def test_a_run_running_past_stale_after_is_still_superseded() -> None:
    d, fake = dispatcher([flow_run(Running(), created=LONG_AGO, start_time=LONG_AGO)])
    assert d.ensure(REF, store=None) == "superseded"  # type: ignore[arg-type]
    assert fake.forced == ["CRASHED"] and fake.created == [REF.idempotency_key(1)]


def test_a_gave_up_verdict_is_indexed_for_the_instructors(tmp_path: Path) -> None:
    """The soak found every "did not complete after N attempts" verdict stored but absent from the index."""
    import boto3
    from moto import mock_aws

    from flows.dispatch import store_gave_up
    from flows.index import VerdictIndex
    from flows.storage import Store

    settings = PipelineSettings(index_url=f"sqlite:///{tmp_path / 'index.sqlite3'}", work_dir=tmp_path)
    with mock_aws():
        store = Store(boto3.client("s3", region_name="us-east-1"), "proofcheck")
        store.ensure_bucket(versioning=True)
        assert store_gave_up(store, REF, 3, settings) is True
        rows = VerdictIndex(settings.index_url).latest()
        assert [(r.package_key, r.status) for r in rows] == [(REF.key, "error")]
        assert b"paquet.zip" in store.get_bytes(store.layout.index_html)


def test_a_quarantined_version_is_found_by_its_content_for_a_late_event(tmp_path: Path) -> None:
    """A late event with no version id (moto) for a version moved to quarantine must find its verdict.

    The 200-package soak stored 46 second verdicts (error, "deleted before it could be read") under the
    ETag token of versions already judged and quarantined under their version id.
    """
    import json

    import boto3
    from moto import mock_aws

    from flows.storage import Store

    with mock_aws():
        store = Store(boto3.client("s3", region_name="us-east-1"), "proofcheck")
        store.ensure_bucket(versioning=True)
        key = "inbox/acme/risque.zip"
        put = store.client.put_object(Bucket=store.bucket, Key=key, Body=b"zip bytes")
        ref = PackageRef(store.bucket, key, put["ETag"].strip('"'), put["VersionId"], 9)
        doc = {"status": "fail", "object": {"key": key, "etag": ref.etag, "version_id": ref.version_id}}
        json_key = store.put_verdict(ref, "rs-1", json.dumps(doc).encode(), b"<html></html>")
        nested = PackageRef(store.bucket, key + "/autre.zip", ref.etag, None)  # a key under this one
        store.put_verdict(nested, "rs-1", json.dumps({"object": {"key": nested.key, "etag": ref.etag}}).encode(),
                          b"")
        store.client.delete_object(Bucket=store.bucket, Key=key, VersionId=ref.version_id)  # the move
        late = PackageRef(store.bucket, key, ref.etag, None)
        assert store.verdict_keys_of(late) == []  # what the run looked at: nothing under the ETag token
        assert store.verdict_keys_for_content(key, ref.etag) == [json_key]
        assert store.verdict_keys_for_content(key, "another-etag") == []


def test_reconcile_indexes_a_stored_verdict_the_index_lacks(tmp_path: Path) -> None:
    """A run that stored its verdict and died (or lost the answer to its write) before indexing it.

    The second 200-package soak ended with one submission verdict stored but missing from the index:
    its run's verdict write was retried through a connection reset, found "already stored" and skipped
    the index; the reconcile skipped the version because it had a verdict.
    """
    import boto3
    from conftest_verdicts import stored_verdict
    from moto import mock_aws

    from flows.dispatch import reconcile
    from flows.index import VerdictIndex
    from flows.storage import Store

    settings = PipelineSettings(index_url=f"sqlite:///{tmp_path / 'index.sqlite3'}", work_dir=tmp_path)

    def stored(key: str) -> tuple[PackageRef, str]:
        put = store.client.put_object(Bucket=store.bucket, Key=key, Body=key.encode())
        ref = PackageRef(store.bucket, key, put["ETag"].strip('"'), put["VersionId"], len(key))
        doc = stored_verdict(key, "fail", version_id=ref.version_id)
        json_key = store.put_verdict(ref, "rs-1", doc.with_section("object", {
            "key": key, "etag": ref.etag, "area": "inbox"}).to_bytes(), b"<html></html>")
        assert json_key is not None
        return ref, json_key

    class NoDispatch:  # every version has a verdict: nothing may be dispatched
        def __init__(self) -> None:
            self.settings = settings

        def ensure(self, ref: PackageRef, store: Store) -> str:
            raise AssertionError("dispatched a version that has a verdict")

    with mock_aws():
        store = Store(boto3.client("s3", region_name="us-east-1"), "proofcheck")
        store.ensure_bucket(versioning=True)
        _, first = stored("inbox/acme/premier.zip")
        assert VerdictIndex(settings.index_url).ensure(store) is True  # built, with the first verdict
        _, lost = stored("inbox/acme/perdu.zip")  # stored after: as if its run died before indexing
        # The stand-in runs stored no tags either: the reconcile gives both their verdict's tags.
        outcomes = reconcile(store, NoDispatch(), areas=("inbox",))  # type: ignore[arg-type]
        assert outcomes == {"indexed": 1, "retagged": 2}
        keys = {r.json_key for r in VerdictIndex(settings.index_url).latest()}
        assert keys == {first, lost}
        assert b"perdu.zip" in store.get_bytes(store.layout.index_html)
        assert reconcile(store, NoDispatch(), areas=("inbox",)) == {}  # type: ignore[arg-type]


def _versioned_store() -> Any:
    import boto3

    from flows.storage import Store

    store = Store(boto3.client("s3", region_name="us-east-1"), "proofcheck")
    store.ensure_bucket(versioning=True)
    return store


def test_reconcile_dispatches_a_replaced_version_in_one_listing_per_area() -> None:
    """Issue 6/8, bug A: v1 replaced by v2 before its (lost) event was handled never got a verdict."""
    from moto import mock_aws

    from flows.dispatch import reconcile

    class Recorder:
        def __init__(self, settings: PipelineSettings) -> None:
            self.settings = settings
            self.ensured: list[PackageRef] = []

        def ensure(self, ref: PackageRef, store: Any) -> str:
            self.ensured.append(ref)
            return "dispatched"

    with mock_aws():
        store = _versioned_store()
        key = "inbox/acme/devoir.zip"
        v1 = store.client.put_object(Bucket=store.bucket, Key=key, Body=b"v1")["VersionId"]
        v2 = store.client.put_object(Bucket=store.bucket, Key=key, Body=b"v2")["VersionId"]
        listings: list[str] = []
        store.client.meta.events.register(
            "provide-client-params.s3.ListObjectVersions", lambda **kw: listings.append(kw["params"]["Prefix"])
        )
        every = Recorder(PipelineSettings())  # default horizon: 30 days
        assert reconcile(store, every) == {"dispatched": 2}  # type: ignore[arg-type]
        assert sorted(r.version_id or "" for r in every.ensured) == sorted([v1, v2])
        assert listings == ["inbox/", "dryrun/"]  # one listing per area, not one per key
        current_only = Recorder(PipelineSettings(reconcile_horizon=0))
        assert reconcile(store, current_only) == {"dispatched": 1}  # type: ignore[arg-type]
        assert [r.version_id for r in current_only.ensured] == [v2]


def test_a_run_left_running_after_its_verdict_is_marked_crashed() -> None:
    """Issue 6/8, bug B: a run whose process was killed after storing the verdict stayed Running for good.

    The reconcile skips versions with a verdict, so nothing settled it (1-2 per soak run). Only stale
    runs whose version has a verdict are closed: a recent run, a run the warm pool still executes and a
    run with no verdict yet (the reconcile's ``ensure`` supersedes that one) are left alone.
    """
    import json

    from moto import mock_aws

    def running(ref: PackageRef, started: datetime) -> FlowRun:
        params = {"bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id, "etag": ref.etag}
        return FlowRun.model_validate({
            "id": uuid4(), "flow_id": uuid4(), "name": "run", "idempotency_key": ref.idempotency_key(0),
            "state": Running(), "created": started, "start_time": started, "parameters": params,
        })

    class Recording(FakePrefect):
        closed: list[Any]

        def set_flow_run_state(self, run_id: Any, state: Any, force: bool = False) -> None:
            self.closed.append((run_id, state.type.value, force))

    with mock_aws():
        store = _versioned_store()
        refs = []
        for name in ("juge.zip", "sans-verdict.zip"):
            key = f"inbox/acme/{name}"
            put = store.client.put_object(Bucket=store.bucket, Key=key, Body=name.encode())
            refs.append(PackageRef(store.bucket, key, put["ETag"].strip('"'), put["VersionId"], len(name)))
        judged, pending = refs
        store.put_verdict(judged, "rs-1", json.dumps({"status": "pass"}).encode(), b"<html></html>")
        dead, recent, busy = running(judged, LONG_AGO), running(judged, datetime.now(UTC)), running(judged, LONG_AGO)
        no_verdict = running(pending, LONG_AGO)
        fake = Recording([dead, recent, busy, no_verdict])
        fake.closed = []
        d = Dispatcher(PipelineSettings(stale_after=60.0), client=fake)  # type: ignore[arg-type]
        assert d.close_orphans(store, busy={busy.id}) == 1
        assert fake.closed == [(dead.id, "CRASHED", True)]
        assert fake.created == []
