"""Issue 7 end to end on real services: moto's S3 server and a real Prefect server (one per module).

The scenario of the issue: a package passes under J66 version A; version B retires its document type;
after the sync and the re-validation flow its proof fails with ``cda.typecode`` and the diff says so;
version C restores it: pass again, three verdicts in the history. The value sets are served by a local
HTTP server, generated from ``jdv/``; the CDA is the ANS vaccination example with its displayName
aligned on J66 (tests skip when ``../shared`` is absent). Checks are narrowed to filetype + CDA (volet
only) so that no clamd is needed and the run stays short; a second package holds no CDA and is carried
over without being downloaded. A last test checks that the sync's event starts a revalidation run
through the deployment's trigger on the Prefect server.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("prefect")

from conftest_flows import s3_and_prefect
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.events.worker import EventsWorker
from test_valuesets_sync_support import RETIRED, VERSION_A, VERSION_B, VERSION_C, http_folder, j66, publish

from fixtures import cda_docs
from fixtures.ans import ANS_TREE, ans_tree_absent
from flows import pipeline as pipeline_module
from flows import revalidate as revalidate_module
from flows.devharness.local import LocalPipeline
from flows.index import VerdictIndex
from flows.settings import PipelineSettings
from flows.storage import TAG_RULESET, TAG_STATUS, PackageRef, Store
from flows.valueset_sync import SyncOutcome, emit, sync_rulesets
from validators import cda, filetype
from validators.base import Validator
from validators.cda.store import RulesetStore
from validators.cda.sync import sync
from validators.dryrun import current_ruleset
from validators.engine import Engine

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(ans_tree_absent() is not None, reason=ans_tree_absent() or ""),
]


def narrowed(settings: Mapping[str, Any]) -> list[Validator]:
    return [*filetype.make_validators(settings), *cda.make_validators(settings)]


def cda_package() -> bytes:
    document = cda_docs.vaccination_history()  # generated; its displayName is J66's
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("DOC.3.1.2/vaccination.xml", document)
        archive.writestr("INS.41.2.2/journal.txt", "journal de test fictif\n")
    return out.getvalue()


def text_package() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("INS.41.2.2/journal.txt", "journal de test fictif, sans document CDA\n")
    return out.getvalue()


@dataclass
class World:
    local: LocalPipeline
    settings: PipelineSettings
    store: Store
    source: Path
    source_url: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("revalidate")
    rulesets = root / "rulesets"
    sync(str(ANS_TREE), RulesetStore(rulesets), only=["VAC_2023.01"])  # ~2 s: one volet compiled
    source = root / "valuesets"
    publish(source, j66(VERSION_A))
    engine_settings = {"rulesets_dir": str(rulesets), "cda_profiles": []}
    with s3_and_prefect(root, "proofcheck-revalidate", engine_settings) as servers, http_folder(source) as url:
        servers.patch.setattr(revalidate_module, "VALIDATORS_FACTORY", narrowed)
        yield World(servers.local, servers.settings, servers.store, source, url)


def synced(world: World) -> dict[str, Any]:
    result: dict[str, Any] = sync_rulesets(source=world.source_url)
    return result


def validated(world: World, ref: PackageRef, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The pipeline's own flow, with the engine narrowed like the re-validation's."""
    es = world.settings.engine_settings
    monkeypatch.setattr(pipeline_module, "_ENGINE", Engine(narrowed(es), ruleset=current_ruleset(es), settings=es))
    outcome: dict[str, Any] = asyncio.run(
        pipeline_module.validate_package(bucket=ref.bucket, key=ref.key, version_id=ref.version_id, etag=ref.etag)
    )
    return outcome


def docs(world: World, ref: PackageRef) -> list[dict[str, Any]]:
    return [json.loads(world.store.get_bytes(k)) for k in world.store.verdict_keys_of(ref)]


def latest_doc(world: World, ref: PackageRef, ruleset: str) -> dict[str, Any]:
    found = [d for d in docs(world, ref) if d["ruleset"]["version"] == ruleset]
    assert len(found) == 1, [d["ruleset"]["version"] for d in docs(world, ref)]
    return found[0]


def tags(world: World, ref: PackageRef) -> dict[str, str]:
    answer = world.store.client.get_object_tagging(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version_id)
    return {t["Key"]: t["Value"] for t in answer["TagSet"]}


def proof(doc: Mapping[str, Any], proof_id: str) -> Mapping[str, Any]:
    return next(p for p in doc["proofs"] if p["id"] == proof_id)


def rules_in(item: Mapping[str, Any]) -> set[str]:
    return {f["rule"] for file in item["files"] for f in file["findings"]}


def test_a_retired_document_type_fails_then_passes_again(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    first = synced(world)
    assert first["outcome"] == "new" and first["changes"][0]["to"] == VERSION_A
    version_a = first["version"]
    p = world.local.upload(world.store, "inbox/acme/vaccination.zip", cda_package())
    q = world.local.upload(world.store, "inbox/acme/journal.zip", text_package())
    for ref in (p, q):
        assert validated(world, ref, monkeypatch)["outcome"] == "stored"
    assert latest_doc(world, p, version_a)["status"] == "pass"
    assert latest_doc(world, p, version_a)["ruleset"]["components"]["J66"] == VERSION_A

    # B retires the vaccination type (served as FHIR JSON this time).
    publish(world.source, j66(VERSION_B, drop=(RETIRED,)), fhir=True)
    second = synced(world)
    version_b = second["version"]
    assert second["outcome"] == "new" and second["previous"] == version_a
    run_b = revalidate_module.revalidate()
    assert run_b["ruleset"] == version_b and run_b["packages"] == 2
    assert run_b["modes"] == {"carried": 1, "rerun": 1} and run_b["status_changed"] == [p.key]

    failed = latest_doc(world, p, version_b)
    assert failed["status"] == "fail" and proof(failed, "DOC.3.1.2")["status"] == "fail"
    assert "cda.typecode" in rules_in(proof(failed, "DOC.3.1.2"))
    assert proof(failed, "INS.41.2.2")["status"] == "pass"
    diff = failed["revalidation"]["diff"]
    assert (diff["old_status"], diff["new_status"], diff["status_changed"]) == ("pass", "fail", True)
    assert diff["components"] == [{"name": "J66", "from": VERSION_A, "to": VERSION_B}]
    assert [(d["id"], d["old_status"], d["new_status"]) for d in diff["proofs"]] == [("DOC.3.1.2", "pass", "fail")]
    assert [f["rule"] for f in diff["proofs"][0]["added"]] == ["cda.typecode"] and diff["proofs"][0]["cleared"] == []
    assert failed["revalidation"]["previous"]["status"] == "pass"
    # History: the verdict under A is still there, untouched.
    assert latest_doc(world, p, version_a)["status"] == "pass" and len(docs(world, p)) == 2
    assert tags(world, p)[TAG_STATUS] == "fail" and tags(world, p)[TAG_RULESET] == version_b

    carried = latest_doc(world, q, version_b)
    assert carried["revalidation"]["mode"] == "carried" and carried["status"] == "pass"
    assert carried["revalidation"]["diff"]["proofs"] == []
    assert tags(world, q)[TAG_RULESET] == version_b

    # The change report, linked from the index page; the artifacts of the run.
    report_key = failed["revalidation"]["report"]
    page = world.store.get_bytes(report_key).decode()
    assert "vaccination.zip" in page and "cda.typecode" in page and VERSION_B in page and "<script" not in page
    index_page = world.store.get_bytes(world.store.layout.index_html).decode()
    assert report_key.removeprefix(world.store.layout.reports) in index_page
    runs_page = world.store.get_bytes(world.store.layout.reports + "changes/index.html").decode()
    assert report_key.rsplit("/", 1)[-1] in runs_page
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["revalidation", "revalidation-changes"]))
        )
    assert {a.key for a in artifacts} == {"revalidation", "revalidation-changes"}

    # C restores the type: pass again, three verdicts; unchanged checks come from the result cache.
    publish(world.source, j66(VERSION_C))
    version_c = synced(world)["version"]
    run_c = revalidate_module.revalidate()
    assert run_c["status_changed"] == [p.key] and run_c["modes"] == {"carried": 1, "rerun": 1}
    assert run_c["cache"]["hits"] >= 3  # filetype x2 and the volet Schematron: not re-run for a J66 change
    restored = latest_doc(world, p, version_c)
    assert restored["status"] == "pass"
    assert [f["rule"] for f in restored["revalidation"]["diff"]["proofs"][0]["cleared"]] == ["cda.typecode"]
    assert [d["status"] for d in docs(world, p)] == ["pass", "fail", "pass"]  # keys sort by ruleset version
    assert tags(world, p)[TAG_STATUS] == "pass"
    index = VerdictIndex(world.settings.index_url)
    try:
        assert [r["status"] for r in index.history(p.key)] == ["pass", "fail", "pass"]
    finally:
        index.close()

    # Nothing is stale any more: a new run does nothing; the same value sets again make no version.
    assert revalidate_module.revalidate()["packages"] == 0
    assert synced(world)["outcome"] == "unchanged"


def test_a_dry_run_lists_what_would_be_done_and_stores_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from validators.cli import main

    publish(world.source, j66("20250415120000", drop=(RETIRED,)))
    assert synced(world)["outcome"] == "new"
    before = sorted(world.store.iter_verdict_keys())
    assert main(["revalidate", "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    planned = sorted(line.split(" ", 2)[:2] for line in lines[:-1])
    assert planned == [["inbox/acme/journal.zip", "carried"], ["inbox/acme/vaccination.zip", "rerun"]]
    assert json.loads(lines[-1])["packages"] == 2 and json.loads(lines[-1])["report"] is None
    assert sorted(world.store.iter_verdict_keys()) == before


def test_a_folder_package_has_its_proof_objects_tagged_again(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.storage import MARKER

    folder = "inbox/acme/dossier/"
    with zipfile.ZipFile(io.BytesIO(cda_package())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    uploaded = {name: world.local.upload(world.store, folder + name, data) for name, data in members.items()}
    marker = world.local.upload(world.store, folder + MARKER, b"")
    # J66 in force retires the vaccination type (the dry-run test synced it): the folder fails.
    assert validated(world, marker, monkeypatch)["outcome"] == "stored"
    assert docs(world, marker)[-1]["status"] == "fail"
    assert tags(world, uploaded["DOC.3.1.2/vaccination.xml"])[TAG_STATUS] == "fail"

    publish(world.source, j66("20250515120000"))
    version = synced(world)["version"]
    run = revalidate_module.revalidate()
    assert marker.key in run["status_changed"]
    restored = latest_doc(world, marker, version)
    assert restored["status"] == "pass" and restored["revalidation"]["mode"] == "rerun"
    assert {name: tags(world, ref)[TAG_STATUS] for name, ref in uploaded.items()} == {
        "DOC.3.1.2/vaccination.xml": "pass",
        "INS.41.2.2/journal.txt": "pass",
    }
    assert tags(world, uploaded["INS.41.2.2/journal.txt"])[TAG_RULESET] == version
    assert tags(world, marker)[TAG_STATUS] == "pass"


def test_a_failed_sync_keeps_the_ruleset_and_fails_the_run(world: World) -> None:
    before = RulesetStore(Path(world.settings.engine_settings["rulesets_dir"])).latest()
    (world.source / "JDV_J66-TypeCode-DMP.xml").write_text("<html>maintenance</html>")
    state = sync_rulesets(source=world.source_url, return_state=True)
    assert state.is_failed()
    after = RulesetStore(Path(world.settings.engine_settings["rulesets_dir"])).latest()
    assert before is not None and after is not None and after.version == before.version


def test_the_sync_event_starts_a_revalidation_run(world: World) -> None:
    from flows.deployments import REVALIDATE, runner_deployments

    deployment = runner_deployments((REVALIDATE,))[0]
    deployment_id = deployment.apply()
    assert isinstance(deployment_id, UUID)  # apply() is synchronous outside an event loop
    # The server loads a new automation into its triggers service some time after apply() (seconds, more
    # on a busy machine), and an event that arrives before is not matched: emit until one is, bounded.
    deadline = time.monotonic() + 90
    runs: list[Any] = []
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and not runs:
            emit(SyncOutcome("new", "20990101T000000Z-test", "20980101T000000Z-test"))
            EventsWorker.drain_all(timeout=10)
            wait_until = time.monotonic() + 10
            while time.monotonic() < wait_until and not runs:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
                )
                time.sleep(1)
        for run in runs:  # no runner serves it here: leave nothing scheduled behind
            client.delete_flow_run(run.id)
    assert runs, "the proofcheck.ruleset.updated event created no run of the revalidate deployment"
