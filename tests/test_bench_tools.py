"""The tools the published numbers rest on (benchmarks/): peak memory per process, the synthetic ClamAV
set, goals that cannot vanish from "N of M met", and documents that quote BENCHMARKS.json exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import clamav_synth  # noqa: E402  (benchmarks/ is not a package)
import peakmem  # noqa: E402
import quote  # noqa: E402
import run_all  # noqa: E402
from benchjson import NOT_MEASURED, Results  # noqa: E402

ALLOCATE = (
    "import sys; sys.path.insert(0, {path!r}); import peakmem; block = bytearray({size}); "
    "block[::4096] = b'x' * len(block[::4096]); print(peakmem.vm_hwm_mib())"
)


def test_a_child_peak_is_its_own_not_its_parents() -> None:
    """ru_maxrss of a child started from a big process reports the parent's peak; the launcher and VmHWM don't."""
    parent_peak = bytearray(300 * 2**20)
    parent_peak[::4096] = b"y" * len(parent_peak[::4096])
    code = ALLOCATE.format(path=str(BENCHMARKS), size=60 * 2**20)
    launched = peakmem.launch([sys.executable, "-c", code])
    own_hwm = float(launched.stdout.strip())
    assert 60 < own_hwm < 200, own_hwm  # the child's 60 MiB and an interpreter, not the parent's 300 MiB
    assert abs(launched.child_maxrss_mib - own_hwm) <= 2
    assert launched.launcher_hwm_mib < 40
    direct = subprocess.run([sys.executable, "-c", code.replace("print(peakmem.vm_hwm_mib())",
                             "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")],
                            capture_output=True, text=True, check=True)
    assert float(direct.stdout) > 300  # the artefact this replaces: the parent's peak, inherited
    del parent_peak


def test_synthetic_clamav_set_loads_detects_its_canaries_and_passes_benign_bytes(tmp_path: Path) -> None:
    from validators.ssi import clamd_manager
    from validators.ssi.clamd_client import ClamdAddress, ClamdClient

    if clamd_manager.clamd_binary() is None:
        pytest.skip("ClamAV is not installed")
    folder, facts = clamav_synth.ensure(scale=0.001, root=tmp_path / "db")
    assert facts["total"] == sum(clamav_synth.counts(0.001).values()) + 3  # + the canaries
    assert {p.suffix for p in folder.iterdir() if p.suffix} == {".hdb", ".hsb", ".mdb", ".ndb", ".ldb"}
    with clamd_manager.private_clamd(tmp_path / "clamd", folder) as settings:
        client = ClamdClient(ClamdAddress.parse(settings["clamd"]))
        for data, name in clamav_synth.canary_files().values():
            assert client.scan_bytes(data).signatures[0].startswith(name)
        assert client.scan_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" * 200).clean
    again, facts = clamav_synth.ensure(scale=0.001, root=tmp_path / "db")
    assert again == folder and facts["reused"]


def _run(name: str, status: str, rows: dict[str, dict[str, Any]]) -> run_all.ScriptRun:
    return run_all.ScriptRun(name, [], status=status, rows=rows)


def test_goals_not_measured_or_lost_with_their_script_count_as_not_met(tmp_path: Path) -> None:
    results = Results(str(tmp_path / "rows.json"))
    results.expect("stage overhead", "<= 1.15x")
    results.missing("OCR recall", ">= 0.95", "tesseract is not installed")
    results.add("intake", 0.1, goal="<= 1 s", met=True)
    written = json.loads((tmp_path / "rows.json").read_text())  # written as they come: a crash keeps them
    assert written["stage overhead"]["note"] == NOT_MEASURED
    runs = [_run("bench_a.py", "timed out after 900 s", written),
            _run("bench_b.py", "failed (exit 1)", {}),  # died before declaring anything
            _run("bench_c.py", "ok", {"x": {"median": 1.0, "met": True}})]
    assert run_all.goal_count(runs) == (2, 5, 3)
    page = run_all.render(runs, {"commit": "abc"}, "now", 60.0)
    assert "Goals met: 2 of 5 (3 not measured" in page
    assert "did not finish: failed (exit 1); its goals count as not met" in page


def test_a_figure_typed_by_hand_or_naming_no_row_is_caught() -> None:
    data = {"machine": {"commit": "abc", "CPU": "x", "cores": "2", "memory": "1 GiB", "load average at start": "1",
                        "load average at end": "2"}, "generated": "today", "wall_seconds": 600,
            "scripts": {"bench_x.py": {"rows": {"row": {"median": 0.5, "unit": "s", "ratio": 1.2}}}}}
    assert quote.render("a <!-- bench bench_x.py / row / median -->9 s<!-- /bench --> b", data) == (
        "a <!-- bench bench_x.py / row / median -->500.0 ms<!-- /bench --> b")
    assert "1.20x" in quote.render("<!-- bench bench_x.py / row / ratio -->?<!-- /bench -->", data)
    assert "commit abc" in quote.render("<!-- bench provenance --><!-- /bench -->", data)
    with pytest.raises(quote.QuoteError):
        quote.render("<!-- bench bench_x.py / renamed row / median -->1 s<!-- /bench -->", data)
    data["scripts"]["bench_x.py (variant)"] = {"rows": {"row": {"median": 2.0, "unit": "s"}}}
    assert "2.00 s" in quote.render("<!-- bench bench_x.py (variant) / row / median -->?<!-- /bench -->", data)


def test_every_figure_the_documents_quote_is_the_published_one() -> None:
    """README, docs, REVALIDATION and docker/README say what BENCHMARKS.json says: `quote.py --check`."""
    data = json.loads(quote.SOURCE.read_text("utf-8"))
    quoted = 0
    for path in quote.documents():
        text = path.read_text("utf-8")
        quoted += len(quote.MARKER.findall(text))
        assert quote.render(text, data) == text, f"{path.name} differs from BENCHMARKS.json: run benchmarks/quote.py"
        assert "-->?<!-- /bench -->" not in text, f"{path.name} quotes a figure no run has measured yet"
    assert quoted >= 20  # the README's, SCALING's, REVALIDATION's and docker/README's figures


def test_the_workbench_benchmark_indexes_every_verdict_it_stores(tmp_path: Path) -> None:
    """bench_workbench once wrote documents the reader refuses: its page times were of an empty index."""
    import bench_workbench

    from flows.index import VerdictIndex
    from validators.verdict_io import read_verdict

    store = bench_workbench.MemoryStore()
    packages = bench_workbench.fill(store, 12, proofs=4)
    assert packages == 5 and len(store.objects) == 12
    first = read_verdict(next(iter(store.objects.values())))
    assert first.area == "inbox" and first.verdict.status.value == "fail"  # a NIR on proof 0
    index = VerdictIndex(f"sqlite:///{tmp_path}/index.sqlite3")
    assert index.rebuild(store) == 12  # type: ignore[arg-type]  (the two read methods of a Store)
    assert len(index.latest()) == 5
    index.close()
