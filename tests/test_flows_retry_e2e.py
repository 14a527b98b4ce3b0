"""Issue 12 item 8 end to end: with clamd stopped, no way to a package reaches instructors until clamd is
back and the reconcile has checked it in full.

moto's S3 server, a real Prefect server and the real validation flow (the whole engine), run in this
process the way the warm pool runs it (``flows.warm.execute``: claim the deployment run, run the flow).
clamd is "stopped" by pointing the engine at a socket of a private clamd's directory before that clamd
is started, and "back" by starting it there (``validators.ssi.clamd_manager``): same address, no
configuration change, as when the service restarts. The reconcile is called directly, with its clock
moved past the backoff instead of waiting for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prefect")

import requests
from conftest_flows import fixed_zip, s3_and_prefect
from conftest_policy import INSTRUCTORS, evaluate, load_policy

from flows import pipeline as pipeline_module
from flows.access import package_link
from flows.deployments import VALIDATE, runner_deployments
from flows.devharness.local import LocalPipeline
from flows.dispatch import Dispatcher, reconcile
from flows.index import IndexRow, VerdictIndex
from flows.retry import RetryState
from flows.settings import PipelineSettings
from flows.storage import PackageRef, Store, retry_attempt
from flows.warm import execute
from validators.ssi import clamd_manager

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(clamd_manager.clamd_binary() is None, reason="ClamAV is not installed"),
]


def package(text: str) -> bytes:
    return fixed_zip({"INS.41.2.2/journal.txt": text})


@dataclass
class World:
    local: LocalPipeline
    settings: PipelineSettings
    store: Store
    dispatcher: Dispatcher
    clamd_dir: Path
    runs: list[Any] = field(default_factory=list)  # flow runs the dispatcher created, to execute
    settled: set[tuple[str, str]] = field(default_factory=set)
    retries: dict[tuple[str, str], RetryState] = field(default_factory=dict)
    refs: dict[str, PackageRef] = field(default_factory=dict)

    def reconcile(self, later: float = 0.0) -> dict[str, int]:
        return reconcile(
            self.store, self.dispatcher, ("inbox",), self.settled, self.retries, now=lambda: time.time() + later
        )

    def execute_runs(self) -> list[str]:
        """Run every created flow run here, as a warm pool process does."""
        done = [execute(str(run.id), "claimed by test_flows_retry_e2e") for run in self.runs]
        self.runs.clear()
        return done

    def docs(self, ref: PackageRef) -> list[tuple[str, dict[str, Any]]]:
        return [(k, json.loads(self.store.get_bytes(k))) for k, _ in self.store.verdict_listing(ref)]

    def tags(self, ref: PackageRef) -> dict[str, str]:
        return self.store.tags_of(ref) or {}

    def row(self, ref: PackageRef) -> IndexRow:
        index = VerdictIndex(self.settings.index_url)
        try:
            return next(r for r in index.latest() if r.package_key == ref.key)
        finally:
            index.close()

    def page(self) -> str:
        return self.store.get_bytes(self.store.layout.index_html).decode("utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("retry")
    clamd_dir = root / "clamd"  # nothing listens there until the second test starts clamd
    engine_settings = {"clamd": f"unix:{clamd_dir.resolve() / 'clamd.sock'}", "antivirus_test_signatures": "accept"}
    try:
        with s3_and_prefect(root, "proofcheck-retry", engine_settings) as servers:
            servers.patch.setattr(pipeline_module, "_ENGINE", None)
            runner_deployments((VALIDATE,), schedules=False)[0].apply()
            dispatcher = Dispatcher(servers.settings)
            world = World(servers.local, servers.settings, servers.store, dispatcher, clamd_dir)
            dispatcher.on_run = world.runs.append
            try:
                yield world
            finally:
                dispatcher.close()
    finally:
        clamd_manager.stop(clamd_dir)


def test_with_clamd_down_nothing_reaches_instructors(world: World) -> None:
    for name in ("attente.zip", "toujours.zip"):
        world.refs[name] = world.local.upload(world.store, f"inbox/acme/{name}", package(f"journal {name}\n"))
    assert world.reconcile() == {"dispatched": 2}
    assert world.execute_runs() == ["Completed", "Completed"]
    policy = load_policy()
    for ref in world.refs.values():
        [(json_key, doc)] = world.docs(ref)
        assert doc["status"] == "error" and doc["checked"]["in_full"] is False
        assert doc["checked"]["not_run"] == ["antivirus"] and doc["checked"]["next_try_after"]
        tags = world.tags(ref)
        assert (tags["proofcheck-status"], tags["proofcheck-checked"]) == ("error", "incomplete")
        assert evaluate(policy, INSTRUCTORS, "s3:GetObject", ref.key, tags) == "deny"
        row = world.row(ref)
        assert (row.json_key, row.checked_in_full) == (json_key, False)
        assert row.not_run == "antivirus (system.check-not-run)"
        assert package_link(world.store, row) is None
    page = world.page()
    assert page.count("pas encore vérifié entièrement / not yet checked in full</span>") == 2
    assert 'class="package"' not in page and "../inbox/" not in page  # no link to any package's bytes
    assert "attente.zip/" in page  # ... but the reports (masked evidence) are linked

    # Right away: both wait for their backoff; nothing is dispatched.
    assert world.reconcile() == {"retry-waiting": 2} and world.runs == []
    # Past it, clamd still down: the re-run stores a second verdict, still incomplete, still hidden.
    assert world.reconcile(later=61) == {"retry-dispatched": 2}
    assert world.execute_runs() == ["Completed", "Completed"]
    ref = world.refs["toujours.zip"]
    docs = world.docs(ref)
    assert [retry_attempt(k) for k, _ in docs] == [0, 1]
    assert [d["status"] for _, d in docs] == ["error", "error"] and docs[1][1]["checked"]["attempt"] == 1
    assert world.tags(ref)["proofcheck-checked"] == "incomplete" and world.row(ref).versions == 2
    assert package_link(world.store, world.row(ref)) is None
    # The next try is twice as far, counted from the second verdict, and survives a restart.
    assert world.reconcile(later=61) == {"retry-waiting": 2}
    fresh = reconcile(world.store, world.dispatcher, ("inbox",), now=lambda: time.time() + 61)
    assert fresh == {"retry-waiting": 2} and world.runs == []


def test_once_clamd_is_back_the_reconcile_checks_in_full_and_hands_it_out(world: World) -> None:
    clamd_manager.start(world.clamd_dir)
    ref = world.refs["attente.zip"]
    before = world.docs(ref)
    assert world.reconcile(later=3600) == {"retry-dispatched": 2}
    assert world.execute_runs() == ["Completed", "Completed"]
    after = world.docs(ref)
    assert after[:-1] == before  # history kept: the earlier verdicts are untouched
    json_key, doc = after[-1]
    assert retry_attempt(json_key) == len(before)
    assert doc["status"] == "pass" and doc["checked"] == {
        "in_full": True, "not_run": [], "rules": [], "attempt": len(before), "next_try_after": None
    }
    tags = world.tags(ref)
    assert (tags["proofcheck-status"], tags["proofcheck-checked"]) == ("pass", "full")
    assert evaluate(load_policy(), INSTRUCTORS, "s3:GetObject", ref.key, tags) == "allow"
    row = world.row(ref)
    assert (row.json_key, row.status, row.checked_in_full, row.versions) == (json_key, "pass", True, len(after))
    url = package_link(world.store, row)
    assert url is not None and requests.get(url, timeout=10).content == package("journal attente.zip\n")
    page = world.page()
    assert 'href="../inbox/acme/attente.zip"' in page and 'href="../inbox/acme/toujours.zip"' in page
    assert "pas encore vérifié entièrement / not yet checked in full</span>" not in page
    # Settled: the reconcile neither reads nor re-runs them again.
    assert world.reconcile(later=100_000) == {} and world.runs == []
