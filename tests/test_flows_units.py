"""Pure parts of the pipeline: deployments table, settings, semaphore, error verdicts, the index page."""

from __future__ import annotations

import inspect
import multiprocessing
import shutil
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

pytest.importorskip("prefect")

import schemas
from flows import verdicts as vd
from flows.deployments import DEPLOYMENTS, runner_deployments
from flows.index import IndexRow, row_from_stored
from flows.index_report import render_index
from flows.semaphore import SlotTimeoutError, slot
from flows.settings import PipelineSettings
from flows.storage import PackageRef
from validators.verdict_io import read_verdict


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda s: s.name)
def test_deployment_parameters_match_the_flow_signature(spec: object) -> None:
    flow = spec.flow  # type: ignore[attr-defined]
    signature = inspect.signature(flow.fn)
    params = dict(spec.parameters)  # type: ignore[attr-defined]
    assert set(params) <= set(signature.parameters), f"unknown parameters {set(params) - set(signature.parameters)}"
    signature.bind_partial(**params)
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    if spec.interval is not None:  # type: ignore[attr-defined]
        # A scheduled run gets only these parameters: every required one must be there.
        assert required <= set(params)


def test_deployment_names_are_unique_and_module_entrypoints() -> None:
    deployments = runner_deployments()
    assert len({d.name for d in deployments}) == len(deployments) == len(DEPLOYMENTS)
    assert all(d.entrypoint and d.entrypoint.startswith("flows.") for d in deployments)


def test_settings_survive_the_environment_round_trip(tmp_path: Path) -> None:
    settings = PipelineSettings(
        bucket="b", s3_endpoint="http://127.0.0.1:1", queue_url="http://q", index_url="sqlite:///x",
        work_dir=tmp_path, max_package_bytes=10, check_slots=3, engine_retries=0, stale_after=5.0,
        max_attempts=2, reconcile_every=7.0, engine_settings={"clamd": "unix:/tmp/s"},
    )
    assert PipelineSettings.from_env(settings.to_env()) == settings


def _hold(directory: str, seconds: float) -> None:
    with slot(Path(directory), 1):
        (Path(directory) / "held").touch()  # the lock is taken: only now may the test try its own
        time.sleep(seconds)


def test_the_check_slot_is_shared_between_processes_and_freed_on_exit(tmp_path: Path) -> None:
    holder = multiprocessing.get_context("spawn").Process(target=_hold, args=(str(tmp_path), 30))
    holder.start()
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "held").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(SlotTimeoutError), slot(tmp_path, 1, timeout=0.5):
            pass
    finally:
        holder.kill()  # killed, not released: the kernel frees the lock
        holder.join()
    with slot(tmp_path, 1, timeout=2) as index:
        assert index == 0


def test_an_error_verdict_names_the_reason_and_is_status_error() -> None:
    ref = PackageRef("proofcheck", "inbox/acme/p.zip", "etag", "v1", 12)
    verdict = vd.error_verdict(ref, "the package was deleted before it could be read")
    assert verdict.status.value == "error"
    assert verdict.flatten(["rule", "message"]) == [
        ["system.package-unreadable", "The package could not be read: the package was deleted before it could be read"]
    ]
    doc = vd.document(verdict, ref, area="inbox", publisher="acme")
    assert doc["package"]["source"] == "s3://proofcheck/inbox/acme/p.zip"
    assert doc["object"]["version_id"] == "v1"
    jsonschema.validate(doc, schemas.load("verdict.schema.json"))  # the stored document keeps the contract
    row = row_from_stored(read_verdict(doc), "reports/inbox/acme/p.zip/v-v1/none.json")
    assert (row["status"], row["publisher"], row["html_key"]) == (
        "error", "acme", "reports/inbox/acme/p.zip/v-v1/none.html"
    )


def _row(name: str, status: str, *, in_full: bool = True, not_run: str | None = None) -> IndexRow:
    return IndexRow(
        json_key=f"reports/inbox/acme/{name}/v-1/none.json", html_key=f"reports/inbox/acme/{name}/v-1/none.html",
        package_key=f"inbox/acme/{name}", package_name=name, publisher="Éditeur <b>Démo</b>",
        software="CabinetDémo", software_version="4.2", status=status, quarantine=status == "fail",
        ruleset_version="none", proofs=3, files=5, errors=1, warnings=2, stored_at="2026-03-02T10:00:00+00:00",
        checked_in_full=in_full, not_run=not_run, next_try_at=None if in_full else "2026-03-02T10:01:00+00:00",
    )


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (tools/install-system-deps.sh)")
def test_the_index_page_reads_from_disk_in_headless_chromium(tmp_path: Path) -> None:
    rows = [
        _row("ok.zip", "pass"),
        _row("risque.zip", "fail"),
        _row("attente.zip", "error", in_full=False, not_run="antivirus (system.check-not-run)"),
    ]
    (tmp_path / "index.html").write_text(render_index(rows), encoding="utf-8")
    for row in rows:  # the package reports, where the relative links point
        target = tmp_path / row.html_key.removeprefix("reports/")
        target.parent.mkdir(parents=True)
        target.write_text(f"<html><body><h1>report of {row.package_name}</h1></body></html>")
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         (tmp_path / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "3 paquet(s) / package(s) : 1 error, 1 fail, 1 pass; 1 pas encore vérifié(s) entièrement" in dom
    assert "Éditeur &lt;b&gt;Démo&lt;/b&gt;" in dom  # escaped, never markup
    # Package bytes: linked only when checked in full and not quarantined; the others say why not.
    assert dom.count('class="package"') == 1 and 'href="../inbox/acme/ok.zip"' in dom
    assert "pas encore vérifié entièrement / not yet checked in full" in dom
    assert "did not run : antivirus (system.check-not-run)" in dom
    assert "en quarantaine (risque SSI)" in dom
    linked = (tmp_path / "inbox/acme/risque.zip/v-1/none.html").as_uri()
    followed = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", linked],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "report of risque.zip" in followed
    assert 'href="inbox/acme/risque.zip/v-1/none.html"' in dom
