"""Intake and zip-triage benchmarks: wall time and peak memory, printed (run on demand, never in CI).

    .venv/bin/python benchmarks/bench_intake.py [--skip-1gb] [--workdir DIR] [--repeat N] [--json PATH]

Each measurement runs in a fresh interpreter started by a small launcher (``benchmarks/peakmem.py``), and
its peak memory is its own: VmHWM of that process (``/proc/self/status``, read at the end of the work and
after the imports), confirmed by the child's ru_maxrss that wait4() gives the launcher. (``ru_maxrss`` read
by a child this script forks directly starts from this script's own peak, which is how "+0 MiB over the
imports" used to be printed for the bomb and the 1 GB intake; that old reading is printed beside.) Measured:
  - intake of a 200-file package of small files (and the dry run through the archive check);
  - intake of a 1 GB package, streamed member by member (peak memory must stay small);
  - triage of a 100 000-entry zip (refused from its end record; then fully parsed with the limit raised);
  - triage and intake of a 1 GiB ZIP64 decompression bomb (about 1 MB on disk).
References, measured on the same files in the same run: ``zipfile`` extracting everything (for intakes)
and ``zipfile`` opening the archive, i.e. reading its central directory (for triage and refusals).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchjson import Results, add_json_option  # noqa: E402
from peakmem import METHOD, launch, vm_hwm_mib  # noqa: E402


def build_small_package(path: Path, count: int = 200) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            section = ("INS", "DOC", "DMP", "MSS")[i % 4]
            body = (f"Trace de test fictive {i}\n" * 400).encode() + os.urandom(2048)
            archive.writestr(f"{section}.{i % 40 + 1}.1.1/preuve-{i:03d}.log", body)


def build_large_package(path: Path, total: int = 1000 * MiB, members: int = 8) -> None:
    """Stored random members: 1 GB that neither compresses nor fits a small memory budget."""
    chunk = os.urandom(MiB)  # rotating one random MiB keeps building fast; content is never inspected
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for m in range(members):
            with archive.open(f"DOC.{m + 1}.1.1/video-{m}.bin", "w", force_zip64=True) as out:
                for _ in range(total // members // MiB):
                    out.write(chunk)


def build_many_entries(path: Path, count: int = 100_000) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(zipfile.ZipInfo(f"f{i:06d}.txt"), b"")


def build_zip64_bomb(path: Path, declared: int = 1024 * MiB) -> None:
    zeros = bytes(MiB)
    archive = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
    with archive, archive.open("bombe.bin", "w", force_zip64=True) as out:
        for _ in range(declared // MiB):
            out.write(zeros)


# --- measurements (each runs in its own child process) ----------------------------------------------


def measure(kind: str, path: str) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from validators.archive import ArchiveValidator
    from validators.engine import Engine
    from validators.package import open_package
    from validators.ziptriage import TriageLimits, triage

    started = time.perf_counter()
    out: dict[str, object] = {}
    # What the imports already hold: the measurement's own memory is the peak above this.
    after_imports = round(vm_hwm_mib() or 0.0, 1)
    if kind == "intake":
        with open_package(Path(path)) as contents:
            out["files"] = len(contents.files)
            out["bytes"] = sum(f.size for f in contents.files)
            out["findings"] = sorted({f.rule for f in contents.package_findings})
    elif kind == "dry-run-archive":
        with open_package(Path(path)) as contents:
            verdict = Engine([ArchiveValidator()]).run(contents)
            out["status"] = verdict.status.value
    elif kind == "raw-extract":
        target = Path(tempfile.mkdtemp(prefix="bench-raw-"))
        try:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(target)  # our own generated archive: what plain zipfile costs
        finally:
            shutil.rmtree(target, ignore_errors=True)
    elif kind == "raw-open":
        with zipfile.ZipFile(path) as archive:
            out["entries_parsed"] = len(archive.infolist())
    elif kind in ("triage", "triage-unlimited"):
        limits = TriageLimits(max_entries=10**6) if kind == "triage-unlimited" else TriageLimits()
        with open(path, "rb") as stream:
            report = triage(stream, limits=limits)
        out["entries_parsed"] = len(report.entries)
        out["findings"] = sorted({f.rule for f in report.findings})
    out["seconds"] = round(time.perf_counter() - started, 4)
    out["peak_rss_mib"] = round(vm_hwm_mib() or 0.0, 1)
    out["rss_after_imports_mib"] = after_imports
    out["ru_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def in_child(kind: str, path: Path) -> dict[str, object]:
    """The measurement in a fresh interpreter, through the small launcher: its VmHWM and wait4's maxrss."""
    launched = launch([sys.executable, __file__, "--measure", kind, str(path)])
    if launched.returncode != 0:
        raise RuntimeError(f"measurement {kind} failed: {launched.stderr[-2000:]}")
    measured: dict[str, object] = json.loads(launched.stdout.strip().splitlines()[-1])
    measured["wait4_maxrss_mib"] = round(launched.child_maxrss_mib, 1)
    measured["launcher_mib"] = round(launched.launcher_hwm_mib, 1)
    return measured


def forked_directly(kind: str, path: Path) -> float:
    """The old reading: ru_maxrss of a child this script starts itself (it starts from this script's peak)."""
    result = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path)], capture_output=True, text=True, check=True
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["ru_maxrss_mib"])


def baseline() -> float:
    """VmHWM of a fresh interpreter that only imports the engine: what every measurement starts from."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import validators.package, validators.archive, peakmem; print(peakmem.vm_hwm_mib())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(float(result.stdout.strip()), 1)


def report(label: str, built: float, size: int, measured: dict[str, object]) -> None:
    print(f"{label}: {size / MiB:.1f} MiB on disk (built in {built:.1f} s)")
    for key, value in measured.items():
        print(f"    {key}: {value}")


# (kind, reference kind, goal, test of the goal on (median seconds, peak RSS growth during the work in MiB))
_ROWS: dict[str, list[tuple[str, str | None, str | None, Any]]] = {
    "200-file package": [("intake", "raw-extract", None, None),
                         ("dry-run-archive", "raw-extract", None, None)],
    "100 000-entry zip": [("triage", "raw-open", "refused in milliseconds (<= 1 s)", lambda s, m: s <= 1.0),
                          ("triage-unlimited", "raw-open", None, None),
                          ("intake", "raw-open", "refused in milliseconds (<= 1 s)", lambda s, m: s <= 1.0)],
    "1 GiB ZIP64 bomb": [("triage", "raw-open", "refused (<= 1 s)", lambda s, m: s <= 1.0),
                         ("intake", "raw-open", "refused, memory flat (<= 1 s, <= +64 MiB)",
                          lambda s, m: s <= 1.0 and m <= 64)],
    "1 GB package, streamed": [("intake", "raw-extract", "streamed: peak memory <= +64 MiB over the imports",
                                lambda s, m: m <= 64)],
}


def record(results: Results, label: str, measured: dict[str, list[dict[str, Any]]],
           old: dict[str, tuple[float, float]]) -> None:
    for kind, reference, goal, met in _ROWS[label]:
        runs = measured[kind]
        seconds = [float(r["seconds"]) for r in runs]
        peak = max(float(r["peak_rss_mib"]) for r in runs)
        growth = max(float(r["peak_rss_mib"]) - float(r["rss_after_imports_mib"]) for r in runs)
        wait4 = max(float(r["wait4_maxrss_mib"]) for r in runs)
        launcher = max(float(r["launcher_mib"]) for r in runs)
        ratio = None
        if reference in measured:
            ratio = statistics.median(seconds) / statistics.median(float(r["seconds"]) for r in measured[reference])
        agree = "agrees" if abs(wait4 - peak) <= 2 else "DISAGREES"
        note = (f"peak VmHWM {peak:.0f} MiB, +{growth:.0f} MiB over the imports; wait4 via launcher {wait4:.0f} MiB "
                f"({agree}; launcher {launcher:.0f} MiB); {len(runs)} run(s); method: {METHOD}")
        if kind in old:
            note += (f"; old reading (ru_maxrss of a child this script forked, which had peaked at "
                     f"{old[kind][1]:.0f} MiB): {old[kind][0]:.0f} MiB")
        if "findings" in runs[0]:
            note += f"; findings {', '.join(map(str, runs[0]['findings'])) or 'none'}"
        results.add_timings(f"intake: {label} [{kind}]", seconds, peak_mib=peak, ratio=ratio,
                            reference=f"zipfile {reference.split('-')[1]}" if reference else None, goal=goal,
                            met=met(statistics.median(seconds), growth) if met else None, note=note)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-1gb", action="store_true", help="skip the 1 GB streamed intake")
    parser.add_argument("--workdir", help="where to build the test packages (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement on the small archives")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    add_json_option(parser)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; baseline fresh interpreter VmHWM "
              f"{baseline()} MiB; load {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        cases: list[tuple[str, str, object, list[str]]] = [
            ("200-file package", "small.zip", build_small_package, ["intake", "dry-run-archive", "raw-extract"]),
            ("100 000-entry zip", "many.zip", build_many_entries,
             ["triage", "triage-unlimited", "intake", "raw-open"]),
            ("1 GiB ZIP64 bomb", "bomb.zip", build_zip64_bomb, ["triage", "intake", "raw-open"]),
        ]
        if not args.skip_1gb:
            cases.append(("1 GB package, streamed", "large.zip", build_large_package, ["intake", "raw-extract"]))
        results = Results(args.json)
        for label, name, builder, kinds in cases:
            path = work / name
            started = time.perf_counter()
            builder(path)  # type: ignore[operator]
            built = time.perf_counter() - started
            runs = 1 if name == "large.zip" else max(1, args.repeat)
            measured = {kind: [in_child(kind, path) for _ in range(runs)] for kind in kinds}
            # Before/after in the same run, for the two figures issue 17 found inherited.
            old = {"intake": (forked_directly("intake", path), vm_hwm_mib() or 0.0)} if name in (
                "bomb.zip", "large.zip") else {}
            for kind in kinds:
                report(f"{label} [{kind}]", built, path.stat().st_size, measured[kind][0])
            record(results, label, measured, old)
            path.unlink()
        results.write(args.json)


if __name__ == "__main__":
    main()
