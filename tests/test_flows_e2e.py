"""The pipeline end to end on real components: moto's server (S3 + SQS), a Prefect server, `proofcheck serve`.

One Prefect server for the whole module (the only module that starts one), tests run in file order.
Fault scenarios: duplicate and out-of-order events, object deleted before it is read, S3 errors,
not-a-zip, over-size upload, serving process restarted mid-run. Each must end with exactly one stored
verdict per package version.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("prefect")

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows import pipeline as pipeline_module
from flows import verdicts as vd
from flows.devharness.local import LocalPipeline
from flows.settings import PipelineSettings
from flows.storage import MARKER, TAG_QUARANTINE, TAG_STATUS, PackageRef, Store
from validators import rules as rule_catalogue
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.engine import Engine
from validators.verdict_io import read_verdict

pytestmark = pytest.mark.timeout(240)
MAX_BYTES = 200_000
WAIT = 90.0


def tiny_zip(text: str = "journal de test fictif\n") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("INS.41.2.2/journal.txt", text)
    return out.getvalue()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    root = tmp_path_factory.mktemp("pipeline")
    pipeline = LocalPipeline(root)
    try:
        pipeline.start_s3(notifications=True)
        pipeline.start_prefect()
        # One shared clamd, stopped by the fixture: otherwise each run's process starts a private one,
        # which a run killed with the serving process would leave behind.
        pipeline.start_clamd()
        pipeline.settings = replace(
            pipeline.settings,
            check_slots=1,  # one slot: the restart test holds it to keep a run in progress
            engine_retries=0,
            stale_after=20.0,  # runs take 2-8 s on a loaded 2-core machine
            reconcile_every=2.0,
            max_package_bytes=MAX_BYTES,
        )
        assert pipeline.prefect is not None
        with temporary_settings(updates={PREFECT_API_URL: pipeline.prefect.url}):
            pipeline.start_serve(limit=2)
            yield pipeline
    finally:
        pipeline.stop()


@pytest.fixture(scope="module")
def store(local: LocalPipeline) -> Store:
    return Store.connect(local.settings)


def verdict_docs(store: Store, ref: PackageRef) -> list[dict[str, Any]]:
    return [json.loads(store.get_bytes(k)) for k in store.verdict_keys_of(ref)]


def wait_one_verdict(local: LocalPipeline, store: Store, ref: PackageRef) -> dict[str, Any]:
    found = local.wait_verdicts(store, [ref], WAIT)
    log = local.serve_process.log_tail() if local.serve_process else ""
    assert ref in found, "no verdict stored; serve log:\n" + log
    docs = verdict_docs(store, ref)
    assert len(docs) == 1
    return docs[0]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """The pipeline's steps after the verdict (tags, index) follow it within seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # e.g. the index page not written yet
            pass
        time.sleep(0.3)
    return False


def runs_for(ref: PackageRef, attempts: int = 3) -> list[Any]:
    keys = [ref.idempotency_key(n) for n in range(attempts)]
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=keys))
        )


def send_event(local: LocalPipeline, ref: PackageRef) -> None:
    """Deliver an S3 ObjectCreated notification again (as S3 does: at least once, in any order)."""
    import boto3

    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": ref.bucket},
                    "object": {"key": urllib.parse.quote_plus(ref.key, safe="/"), "eTag": ref.etag,
                               "versionId": ref.version_id, "size": ref.size},
                },
            }
        ]
    }
    sqs = boto3.client("sqs", endpoint_url=local.settings.s3_endpoint, region_name="us-east-1")
    sqs.send_message(QueueUrl=local.settings.queue_url, MessageBody=json.dumps(body))


def test_upload_gets_one_verdict_tags_and_an_index_entry(local: LocalPipeline, store: Store) -> None:
    ref = local.upload(store, "inbox/acme/paquet-simple.zip", tiny_zip())
    doc = wait_one_verdict(local, store, ref)
    assert doc["status"] in {"pass", "warning", "fail", "error"}
    assert doc["object"]["key"] == ref.key
    assert doc["object"]["version_id"] == ref.version_id
    assert doc["package"]["source"] == f"s3://{store.bucket}/{ref.key}"

    def status_tag() -> str | None:
        tags = store.client.get_object_tagging(Bucket=store.bucket, Key=ref.key, VersionId=ref.version_id)
        return {t["Key"]: t["Value"] for t in tags["TagSet"]}.get(TAG_STATUS)

    assert wait_for(lambda: status_tag() is not None), "the package was never tagged"
    assert status_tag() == doc["status"]
    runs = runs_for(ref)
    assert [r.state_name for r in runs] in (["Completed"], ["Running"]), [
        (r.idempotency_key, r.state_name, r.created, r.start_time) for r in runs
    ]
    assert wait_for(lambda: b"paquet-simple.zip" in store.get_bytes(store.layout.index_html))


def test_duplicate_and_out_of_order_events_give_one_verdict_per_version(local: LocalPipeline, store: Store) -> None:
    first = local.upload(store, "inbox/acme/paquet-versions.zip", tiny_zip("version 1\n"))
    second = local.upload(store, "inbox/acme/paquet-versions.zip", tiny_zip("version 2\n"))
    # The first version's event delivered twice more, after the second version's.
    send_event(local, first)
    send_event(local, first)
    docs_first = wait_one_verdict(local, store, first)
    docs_second = wait_one_verdict(local, store, second)
    assert docs_first["object"]["version_id"] == first.version_id
    assert docs_second["object"]["version_id"] == second.version_id
    time.sleep(3)  # let the duplicates be received and dispatched
    assert len(verdict_docs(store, first)) == 1
    assert len(runs_for(first)) == 1


def test_a_replaced_version_whose_event_was_lost_gets_its_own_verdict(local: LocalPipeline, store: Store) -> None:
    """Issue 6/8, bug A: v1 replaced by v2 before its event was handled, and v1's event lost.

    The reconcile listed only the current version of each key: v1 (maybe the submission sent before
    the deadline) never got a verdict. Now it lists replaced versions too and the run reads v1 by id.
    """
    import hashlib

    key = "inbox/acme/paquet-evenement-perdu.zip"
    config = store.client.get_bucket_notification_configuration(Bucket=store.bucket)
    queues = config.get("QueueConfigurations") or []
    assert queues, "the fixture's bucket sends events"
    store.client.put_bucket_notification_configuration(Bucket=store.bucket, NotificationConfiguration={})
    try:
        first_bytes = tiny_zip("version 1, avant la date limite\n")
        first = local.upload(store, key, first_bytes)  # its event is never sent: lost
    finally:
        store.client.put_bucket_notification_configuration(
            Bucket=store.bucket, NotificationConfiguration={"QueueConfigurations": queues}
        )
    second = local.upload(store, key, tiny_zip("version 2, en retard\n"))  # right after, with its event
    doc_second = wait_one_verdict(local, store, second)
    doc_first = wait_one_verdict(local, store, first)  # found by the reconcile (every 2 s here)
    assert doc_first["object"]["version_id"] == first.version_id
    assert doc_first["package"]["sha256"] == hashlib.sha256(first_bytes).hexdigest()  # v1's bytes, not v2's
    assert doc_second["object"]["version_id"] == second.version_id
    time.sleep(5)  # two more reconcile passes: nothing dispatched again
    assert len(verdict_docs(store, first)) == 1 and len(verdict_docs(store, second)) == 1
    assert len(runs_for(first)) == 1 and len(runs_for(second)) == 1


def test_not_a_zip_gets_a_verdict_that_is_not_pass(local: LocalPipeline, store: Store) -> None:
    ref = local.upload(store, "inbox/acme/pas-un-zip.zip", b"%PDF-1.4 this is not a zip at all\n")
    doc = wait_one_verdict(local, store, ref)
    assert doc["status"] in {"fail", "error"}


def test_an_oversized_upload_gets_an_error_verdict_without_download(local: LocalPipeline, store: Store) -> None:
    ref = local.upload(store, "inbox/acme/trop-gros.zip", b"\0" * (MAX_BYTES + 1))
    doc = wait_one_verdict(local, store, ref)
    assert doc["status"] == "error"
    assert [f["rule"] for f in doc["package_findings"]] == ["system.package-unreadable"]
    assert str(MAX_BYTES) in doc["package_findings"][0]["message"]


def test_an_object_deleted_before_it_is_read_gets_an_error_verdict(local: LocalPipeline, store: Store) -> None:
    ref = local.upload(store, "inbox/acme/efface.zip", tiny_zip())
    store.client.delete_object(Bucket=store.bucket, Key=ref.key, VersionId=ref.version_id)
    # moto's events carry no version id: the bridge resolves it by ETag if it is quick enough to see the
    # version, else the verdict of a version gone before it is read is known by its ETag alone.
    by_etag = replace(ref, version_id=None)
    assert wait_for(lambda: bool(store.verdict_keys_of(ref) or store.verdict_keys_of(by_etag)), WAIT)
    docs = verdict_docs(store, ref) + verdict_docs(store, by_etag)
    assert len(docs) == 1
    doc = docs[0]
    assert doc["status"] == "error"
    assert "deleted" in doc["package_findings"][0]["message"]


def test_dry_run_verdicts_stay_in_the_publishers_area(local: LocalPipeline, store: Store) -> None:
    ref = local.upload(store, "dryrun/acme/essai.zip", tiny_zip())
    doc = wait_one_verdict(local, store, ref)
    assert store.verdict_keys_of(ref)[0].startswith("reports/dryrun/acme/essai.zip/")
    assert doc["object"]["area"] == "dryrun"
    time.sleep(1)
    assert b"essai.zip" not in store.get_bytes(store.layout.index_html)


def test_a_run_lost_with_the_serving_process_is_redone_once(local: LocalPipeline, store: Store) -> None:
    from flows.semaphore import slot

    with slot(local.settings.work_dir / "slots", 1, timeout=10):
        # The only check slot is ours: the run starts, then waits inside its check.
        ref = local.upload(store, "inbox/acme/redemarrage.zip", tiny_zip())
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and [r.state_name for r in runs_for(ref)] != ["Running"]:
            time.sleep(0.2)
        assert [r.state_name for r in runs_for(ref)] == ["Running"]
        local.stop_serve()  # the bridge, the runner and the run's process, by PID
    local.start_serve(limit=2)
    doc = wait_one_verdict(local, store, ref)
    assert doc["object"]["version_id"] == ref.version_id
    by_attempt = {r.idempotency_key: r.state_name for r in runs_for(ref)}
    assert by_attempt.keys() == {ref.idempotency_key(0), ref.idempotency_key(1)}
    # The stopped runner cancels its run (SIGTERM) or dies with it (SIGKILL, seen as stale: Crashed).
    assert by_attempt[ref.idempotency_key(0)] in {"Cancelled", "Crashed"}
    assert wait_for(lambda: bool(runs_for(ref)) and all(r.state_name != "Running" for r in runs_for(ref)))
    assert len(verdict_docs(store, ref)) == 1


def _tags_of(store: Store, key: str, version_id: str | None) -> dict[str, str]:
    target = {"Bucket": store.bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    return {t["Key"]: t["Value"] for t in store.client.get_object_tagging(**target)["TagSet"]}


def test_a_folder_package_is_validated_on_its_marker_and_each_proof_object_tagged(
    local: LocalPipeline, store: Store
) -> None:
    folder = "inbox/acme/dossier/"
    files = {"INS.41.2.2/journal.txt": b"journal de test fictif\n", "notes.txt": b"notes sans preuve\n"}
    members = {path: local.upload(store, folder + path, data) for path, data in files.items()}
    marker = local.upload(store, folder + MARKER, b"")
    doc = wait_one_verdict(local, store, marker)
    assert doc["package"]["name"] == "dossier"
    statuses = vd.object_statuses(read_verdict(doc).verdict)
    assert sorted(statuses) == sorted(files)  # every object of the folder was checked and reported

    def tagged() -> bool:
        return all(
            _tags_of(store, ref.key, ref.version_id).get(TAG_STATUS) == statuses[path] for path, ref in members.items()
        ) and _tags_of(store, marker.key, marker.version_id).get(TAG_STATUS) == doc["status"]

    assert wait_for(tagged), "the proof objects were not tagged with their proof's status"
    # The members' own events started nothing: one verdict, the folder's.
    assert all(store.verdict_keys_of(ref) == [] for ref in members.values())
    assert {r.idempotency_key for r in runs_for(marker)} == {marker.idempotency_key(0)}


def _pool_processes(parent: int) -> list[int]:
    """The warm pool's processes under the serving process (multiprocessing spawn children)."""
    # Children are listed per thread: a pool rebuilt by the bridge thread hangs under that thread.
    tasks = Path(f"/proc/{parent}/task").iterdir()
    children = [pid for task in tasks for pid in (task / "children").read_text().split()]
    return [
        int(pid)
        for pid in children
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def test_a_warm_process_killed_mid_run_is_crashed_and_retried(local: LocalPipeline, store: Store) -> None:
    import os
    import signal

    from flows.semaphore import slot

    serve = local.serve_process
    assert serve is not None and local.settings.executor == "warm"
    with slot(local.settings.work_dir / "slots", 1, timeout=10):
        ref = local.upload(store, "inbox/acme/processus-tue.zip", tiny_zip())
        assert wait_for(lambda: [r.state_name for r in runs_for(ref)] == ["Running"], WAIT)
        pool = _pool_processes(serve.pid)
        assert pool, "no warm pool process found"
        for pid in pool:  # what an out-of-memory kill or a crashing parser does to the run's process
            os.kill(pid, signal.SIGKILL)
    doc = wait_one_verdict(local, store, ref)
    assert doc["object"]["version_id"] == ref.version_id
    by_attempt = {r.idempotency_key: r.state_name for r in runs_for(ref)}
    assert by_attempt[ref.idempotency_key(0)] == "Crashed"
    assert by_attempt.keys() == {ref.idempotency_key(0), ref.idempotency_key(1)}
    assert len(verdict_docs(store, ref)) == 1
    assert serve.alive()  # the serving process itself carried on, with a new pool
    assert wait_for(lambda: len(_pool_processes(serve.pid)) == 2)  # rebuilt, never more than --limit


# -- in-process flow runs (same Prefect server), on a bucket the serving process does not watch --------


class _FaultyS3(BaseHTTPRequestHandler):
    """A network in front of moto that answers 503 to the first N reads of package objects."""

    upstream: ClassVar[str] = ""
    failures_left: ClassVar[int] = 0
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fail = False
        query = urllib.parse.urlsplit(self.path).query
        if self.command == "GET" and "/inbox/" in self.path and "tagging" not in query:  # object reads only
            with self.lock:
                if _FaultyS3.failures_left > 0:
                    _FaultyS3.failures_left -= 1
                    fail = True
        if fail:
            payload = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        target = urllib.parse.urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"connection"}}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


@pytest.fixture(scope="module")
def faulty(local: LocalPipeline) -> Iterator[tuple[PipelineSettings, Store]]:
    assert local.settings.s3_endpoint
    _FaultyS3.upstream = local.settings.s3_endpoint
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FaultyS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = replace(
        local.settings,
        s3_endpoint=f"http://127.0.0.1:{server.server_address[1]}",
        bucket="proofcheck-inprocess",
        queue_url=None,
        index_url=f"sqlite:///{local.root / 'inprocess-index.sqlite3'}",
    )
    store = Store.connect(settings)
    store.ensure_bucket(versioning=True)
    try:
        yield settings, store
    finally:
        server.shutdown()


def _run_in_process(monkeypatch: pytest.MonkeyPatch, settings: PipelineSettings, ref: PackageRef) -> dict[str, Any]:
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    result: dict[str, Any] = asyncio.run(
        pipeline_module.validate_package(bucket=ref.bucket, key=ref.key, version_id=ref.version_id, etag=ref.etag)
    )
    return result


def test_transient_s3_errors_are_retried(
    local: LocalPipeline, faulty: tuple[PipelineSettings, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = faulty
    ref = local.upload(store, "inbox/acme/reessai.zip", tiny_zip())
    _FaultyS3.failures_left = 5  # one more than botocore's own retries: the task retries must take over
    result = _run_in_process(monkeypatch, settings, ref)
    assert result["outcome"] == "stored"
    assert _FaultyS3.failures_left == 0
    doc = verdict_docs(store, ref)[0]
    assert not any("storage failed" in f["message"] for f in doc["package_findings"])


def test_s3_failing_for_good_ends_with_a_stored_error_verdict(
    local: LocalPipeline, faulty: tuple[PipelineSettings, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = faulty
    ref = local.upload(store, "inbox/acme/panne.zip", tiny_zip())
    _FaultyS3.failures_left = 10_000
    try:
        result = _run_in_process(monkeypatch, settings, ref)
    finally:
        _FaultyS3.failures_left = 0
    assert result["outcome"] == "stored"
    assert result["status"] == "error"
    assert "storage failed" in verdict_docs(store, ref)[0]["package_findings"][0]["message"]


class _MarkerMalware(Validator):
    """A real validator for the test: flags files holding a marker with the catalogue's first ssi error rule."""

    name = "test-marker"
    rule = next(
        (r.id for r in rule_catalogue.catalogue().values() if r.family == "ssi" and r.severity.value == "error"),
        "ssi.malware",
    )
    rules = (rule,)

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        found = b"MARKER-FOR-QUARANTINE" in file.read()
        return CheckResult(findings=[rule_catalogue.finding(self.rule)] if found else [])


def test_an_ssi_error_quarantines_the_package(
    local: LocalPipeline, faulty: tuple[PipelineSettings, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = faulty
    monkeypatch.setattr(pipeline_module, "_ENGINE", Engine([_MarkerMalware()]))
    ref = local.upload(store, "inbox/acme/risque.zip", tiny_zip("MARKER-FOR-QUARANTINE"))
    result = _run_in_process(monkeypatch, settings, ref)
    assert result["quarantine"] is True
    doc = verdict_docs(store, ref)[0]
    assert doc["quarantine"] is True and doc["status"] == "fail"
    assert [r.key for r in store.list_packages("inbox") if r.key == ref.key] == []
    moved = store.layout.quarantine_key(ref.key)
    tags = {t["Key"]: t["Value"] for t in store.client.get_object_tagging(Bucket=store.bucket, Key=moved)["TagSet"]}
    assert tags[TAG_QUARANTINE] == "true" and tags[TAG_STATUS] == "fail"
    # A second run of the same version finds the verdict and stores nothing more.
    assert _run_in_process(monkeypatch, settings, ref)["outcome"] == "already"
    assert len(verdict_docs(store, ref)) == 1


def test_the_index_is_rebuilt_from_stored_verdicts_when_lost(
    faulty: tuple[PipelineSettings, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.index import VerdictIndex

    settings, store = faulty
    path = Path(settings.index_url.removeprefix("sqlite:///"))
    assert path.exists()
    before = {r.package_key: r.status for r in VerdictIndex(settings.index_url).latest()}
    path.unlink()
    index = VerdictIndex(settings.index_url)
    assert index.ensure(store) is True
    assert {r.package_key: r.status for r in index.latest()} == before
    assert set(before) == {"inbox/acme/reessai.zip", "inbox/acme/panne.zip", "inbox/acme/risque.zip"}
