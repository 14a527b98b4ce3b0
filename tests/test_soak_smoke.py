"""The soak's own parts (fault injectors, invariant checks) in CI, and its smoke run on demand.

The fault injectors and the invariant checker are tested here on small local stand-ins (seconds): a
soak whose proxy never fails or whose checker cannot see a double verdict would prove nothing. The
end-to-end smoke run (``benchmarks/soak.py --packages 10 --quick``) starts moto, a Prefect server, clamd
and ``proofcheck serve``: 57 s on the idle 2-core machine, about 2 minutes while others load it, at or
over the 60 s CI budget, so it carries the ``bench`` marker (``pytest -m bench tests/test_soak_smoke.py``).
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import faults  # noqa: E402  (benchmarks/ is not a package)
import soak  # noqa: E402
from conftest_verdicts import stored_verdict  # noqa: E402


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = b"upstream:" + self.path.encode() + b":" + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_HEAD = _answer


@pytest.fixture()
def proxy() -> Iterator[faults.S3FaultProxy]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    front = faults.S3FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", "proofcheck").start()
    try:
        yield front
    finally:
        front.stop()
        upstream.shutdown()
        upstream.server_close()


def _request(proxy: faults.S3FaultProxy, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]), timeout=5)
    try:
        conn.request(method, path, body=body)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_the_proxy_forwards_untouched_outside_a_fault_window(proxy: faults.S3FaultProxy) -> None:
    assert _request(proxy, "PUT", "/proofcheck/inbox/a.zip", b"zip bytes") == (
        200, b"upstream:/proofcheck/inbox/a.zip:zip bytes")
    assert proxy.faulted == {}


@pytest.mark.parametrize(("kind", "status", "code"), [("s3-503", 503, b"SlowDown"), ("s3-500", 500, b"InternalError")])
def test_the_proxy_fails_s3_requests_during_a_window_and_lets_sqs_through(
    proxy: faults.S3FaultProxy, kind: str, status: int, code: bytes
) -> None:
    proxy.fail_for(kind, 30)
    got_status, payload = _request(proxy, "GET", "/proofcheck/inbox/a.zip")
    assert got_status == status and code in payload
    assert _request(proxy, "POST", "/", b"{}")[0] == 200  # SQS (JSON protocol) is not S3
    assert _request(proxy, "GET", "/other-bucket/x")[0] == 200
    assert proxy.faulted == {kind: 1}
    proxy.fail_for(kind, 0)
    assert _request(proxy, "GET", "/proofcheck/inbox/a.zip")[0] == 200


def test_the_proxy_resets_connections_during_a_reset_window(proxy: faults.S3FaultProxy) -> None:
    proxy.fail_for("s3-reset", 30)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
        _request(proxy, "GET", "/proofcheck/inbox/a.zip")
    assert proxy.faulted == {"s3-reset": 1}


@dataclass
class FakeSqs:
    """Two queues in memory: what ``EventChaos`` reads from and what it writes to."""

    source: list[str]
    target: list[str] = field(default_factory=list)

    def receive_message(self, **_: Any) -> dict[str, Any]:
        taken, self.source = self.source[:10], self.source[10:]
        return {"Messages": [{"Body": b, "ReceiptHandle": str(i)} for i, b in enumerate(taken)]}

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.target.append(MessageBody)

    def delete_message(self, **_: Any) -> None:
        pass


def _event(i: int) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "n": i}]})


def test_event_chaos_drops_duplicates_reorders_and_replays() -> None:
    events = [_event(i) for i in range(200)]
    sqs = FakeSqs(list(events))
    options = faults.EventChaosOptions(drop=0.1, duplicate=0.1, delay=0.2, replay_every=0.0, seed=3)
    chaos = faults.EventChaos(sqs, "source", "target", options)
    for event in events:
        chaos._route(event)
    chaos.stop(flush=True)  # never started: flushing delivers what was held back
    counts = chaos.counts
    assert counts["event-dropped"] > 5 and counts["event-duplicated"] > 5 and counts["event-delayed"] > 10
    delivered = [json.loads(b)["Records"][0]["n"] for b in sqs.target]
    assert len(delivered) == 200 - counts["event-dropped"] + counts["event-duplicated"]
    assert len(set(delivered)) == 200 - counts["event-dropped"]
    assert delivered != sorted(delivered)  # held-back events arrive after later ones
    chaos.next_replay = 0.0
    chaos.options.replay_every = 1.0
    chaos._release_due()
    assert chaos.counts["event-replayed"] == 1 and sqs.target[-1] in events


def test_event_chaos_skips_messages_that_are_not_s3_records() -> None:
    sqs = FakeSqs(['{"Event": "s3:TestEvent"}', _event(1)])
    chaos = faults.EventChaos(sqs, "source", "target", faults.EventChaosOptions(0, 0, 0, 0, seed=1)).start()
    deadline = time.monotonic() + 10
    while not sqs.target and time.monotonic() < deadline:
        time.sleep(0.05)
    chaos.stop()
    assert sqs.target == [_event(1)]


# -- the invariant checker ------------------------------------------------------------------------------------


def _upload(key: str, etag: str, must_not_pass: bool = False) -> soak.Upload:
    return soak.Upload(soak.SoakPackage(key, b"", "clean", must_not_pass), etag, "v-" + etag, 0.0)


def _doc(key: str, etag: str, status: str, *, area: str = "inbox", checks: str = "ran",
         rule: str | None = None) -> dict[str, Any]:
    """A stored verdict document as the pipeline writes it; ``checks``/``rule`` graft a check that did not
    run or a finding onto its file (a verdict that lies about its status, for the pass-not-run invariant)."""
    doc = stored_verdict(key, status, area=area).to_document()
    doc["object"]["etag"] = etag
    entry = doc["proofs"][0]["files"][0]
    if checks != "ran":
        entry["checks"].append({"name": "antivirus", "status": checks})
    if rule:
        entry["findings"].append({"rule": rule, "severity": "error", "message": "-", "location": {}})
    return doc


def _key(name: str) -> str:
    """A verdict key as the bucket has them: reports/<package key>/<token>/<ruleset>.json."""
    return f"reports/inbox/p/{name}.zip/v-1/rs.json"


def _failed(invariants: list[soak.Invariant]) -> set[str]:
    return {i.name for i in invariants if not i.ok}


def test_the_checker_passes_a_clean_run() -> None:
    uploads = [_upload("inbox/p/a.zip", "e1"), _upload("dryrun/p/b.zip", "e2")]
    docs = {_key("a"): _doc("inbox/p/a.zip", "e1", "pass"), _key("b"): _doc("dryrun/p/b.zip", "e2", "pass",
                                                                           area="dryrun")}
    assert _failed(soak.check_invariants(uploads, docs, [{"json_key": _key("a")}])) == set()


def test_the_checker_sees_missing_doubled_and_stray_verdicts() -> None:
    uploads = [_upload("inbox/p/a.zip", "e1"), _upload("inbox/p/b.zip", "e2")]
    docs = {
        _key("a-v"): _doc("inbox/p/a.zip", "e1", "fail"),
        _key("a-e"): _doc("inbox/p/a.zip", "e1", "error"),  # the same version under another token
        _key("c"): _doc("inbox/p/c.zip", "e3", "pass"),
    }
    rows = [{"json_key": k} for k in docs]
    assert _failed(soak.check_invariants(uploads, docs, rows)) == {
        "every current version has a verdict",
        "exactly one verdict per version (more only as re-runs of an incomplete one)",
        "no verdict for a version never uploaded",
    }


def test_the_checker_accepts_re_runs_of_an_incomplete_verdict_only() -> None:
    uploads = [_upload("inbox/p/a.zip", "e1"), _upload("inbox/p/b.zip", "e2")]
    docs = {
        _key("a"): _doc("inbox/p/a.zip", "e1", "error", checks="not_run"),  # clamd was down ...
        _key("a").replace(".json", ".retry-0001.json"): _doc("inbox/p/a.zip", "e1", "pass"),  # ... re-run
        _key("b"): _doc("inbox/p/b.zip", "e2", "pass"),  # checked in full: nothing to re-run ...
        _key("b").replace(".json", ".retry-0001.json"): _doc("inbox/p/b.zip", "e2", "pass"),  # ... a duplicate
    }
    invariants = soak.check_invariants(uploads, docs, [{"json_key": k} for k in docs])
    assert _failed(invariants) == {"exactly one verdict per version (more only as re-runs of an incomplete one)"}
    assert next(i for i in invariants if not i.ok).detail == "1 doubled: b.zip"


def test_the_checker_tells_a_replaced_version_without_verdict_from_a_current_one() -> None:
    uploads = [_upload("inbox/p/a.zip", "e1"), _upload("inbox/p/a.zip", "e2"), _upload("inbox/p/b.zip", "e3")]
    docs = {_key("a2"): _doc("inbox/p/a.zip", "e2", "pass"), _key("b"): _doc("inbox/p/b.zip", "e3", "pass")}
    invariants = soak.check_invariants(uploads, docs, [{"json_key": k} for k in docs])
    assert _failed(invariants) == {"every replaced version has a verdict"}


def test_the_checker_refuses_a_pass_whose_embedded_check_did_not_run() -> None:
    uploads = [_upload("inbox/p/a.zip", "e1"), _upload("inbox/p/b.zip", "e2")]
    docs = {
        _key("a"): _doc("inbox/p/a.zip", "e1", "pass", checks="not_run"),
        _key("b"): _doc("inbox/p/b.zip", "e2", "pass", rule="system.check-timeout"),
    }
    rows = [{"json_key": k} for k in docs]
    invariants = soak.check_invariants(uploads, docs, rows)
    assert _failed(invariants) == {"no pass where a check did not run"}
    assert next(i for i in invariants if not i.ok).detail.startswith("2:")


def test_the_checker_refuses_a_pass_for_a_package_built_to_fail_and_index_drift() -> None:
    uploads = [_upload("inbox/p/a.zip", "e1", must_not_pass=True), _upload("dryrun/p/b.zip", "e2")]
    docs = {_key("a"): _doc("inbox/p/a.zip", "e1", "pass"),
            _key("b"): _doc("dryrun/p/b.zip", "e2", "fail", area="dryrun")}
    invariants = soak.check_invariants(uploads, docs, [{"json_key": _key("b")}])
    assert next(i for i in invariants if i.name.startswith("index holds")).detail.endswith(": a.zip")
    assert _failed(invariants) == {
        "no package built to fail passes",
        "index holds every submission verdict once",
        "no dry-run verdict in the index",
    }


def test_the_package_mix_is_reproducible_and_holds_what_it_promises() -> None:
    first = soak.PackageFactory(5).plan(12, new_versions=0.1, dryrun=0.2, quick=True)
    again = soak.PackageFactory(5).plan(12, new_versions=0.1, dryrun=0.2, quick=True)
    assert [(p.key, p.kind) for p in first] == [(p.key, p.kind) for p in again]
    assert len(first) == 13 and len({p.key for p in first}) == 12  # one new version of an earlier key
    assert {"malware", "hostile", "pii", "broken", "clean"} <= {p.kind for p in first}
    assert all(p.must_not_pass for p in first if p.kind in {"malware", "hostile", "pii", "broken"})
    assert len({p.data for p in first}) == len(first)  # every upload is its own content (its own ETag)


# -- the smoke run ---------------------------------------------------------------------------------------------


@pytest.mark.bench
@pytest.mark.timeout(400)
def test_the_quick_soak_keeps_every_invariant(tmp_path: Path) -> None:
    from validators.ssi import clamd_manager

    if clamd_manager.clamd_binary() is None:
        pytest.skip("ClamAV is not installed: the soak kills and restarts clamd")
    summary = soak.run_soak(soak.SoakOptions.quick_defaults(10), tmp_path)
    failed = [i for i in summary["invariants"] if not i["ok"]]
    assert failed == [], soak.format_summary(summary)
    assert summary["versions"] == 11 and summary["verdicts"] == 11
    assert summary["faults"].get("clamd-kill") == 1 and summary["faults"].get("serve-kill") == 1
