"""Intake and zip-triage benchmarks: wall time and peak memory, printed (run on demand, never in CI).

    .venv/bin/python benchmarks/bench_intake.py [--skip-1gb] [--workdir DIR]

Each measurement runs in a fresh child process so that its peak RSS (``resource.getrusage``) is its own,
not the builder's. Measured:
  - intake of a 200-file package of small files (and the dry run through the archive check);
  - intake of a 1 GB package, streamed member by member (peak memory must stay small);
  - triage of a 100 000-entry zip (refused from its end record; then fully parsed with the limit raised);
  - triage and intake of a 1 GiB ZIP64 decompression bomb (about 1 MB on disk).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


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
    if kind == "intake":
        with open_package(Path(path)) as contents:
            out["files"] = len(contents.files)
            out["bytes"] = sum(f.size for f in contents.files)
            out["findings"] = sorted({f.rule for f in contents.package_findings})
    elif kind == "dry-run-archive":
        with open_package(Path(path)) as contents:
            verdict = Engine([ArchiveValidator()]).run(contents)
            out["status"] = verdict.status.value
    elif kind in ("triage", "triage-unlimited"):
        limits = TriageLimits(max_entries=10**6) if kind == "triage-unlimited" else TriageLimits()
        with open(path, "rb") as stream:
            report = triage(stream, limits=limits)
        out["entries_parsed"] = len(report.entries)
        out["findings"] = sorted({f.rule for f in report.findings})
    out["seconds"] = round(time.perf_counter() - started, 4)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def in_child(kind: str, path: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path)], capture_output=True, text=True, check=True
    )
    measured: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def baseline() -> float:
    """Peak RSS of a child that only imports the engine: what every measurement starts from."""
    code = (
        f"import sys, resource; sys.path.insert(0, {str(ROOT)!r}); import validators.package, "
        "validators.archive; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(float(result.stdout.strip()), 1)


def report(label: str, built: float, size: int, measured: dict[str, object]) -> None:
    print(f"{label}: {size / MiB:.1f} MiB on disk (built in {built:.1f} s)")
    for key, value in measured.items():
        print(f"    {key}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-1gb", action="store_true", help="skip the 1 GB streamed intake")
    parser.add_argument("--workdir", help="where to build the test packages (default: a temp dir)")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; baseline child RSS {baseline()} MiB")
        cases: list[tuple[str, str, object, list[str]]] = [
            ("200-file package", "small.zip", build_small_package, ["intake", "dry-run-archive"]),
            ("100 000-entry zip", "many.zip", build_many_entries, ["triage", "triage-unlimited", "intake"]),
            ("1 GiB ZIP64 bomb", "bomb.zip", build_zip64_bomb, ["triage", "intake"]),
        ]
        if not args.skip_1gb:
            cases.append(("1 GB package, streamed", "large.zip", build_large_package, ["intake"]))
        for label, name, builder, kinds in cases:
            path = work / name
            started = time.perf_counter()
            builder(path)  # type: ignore[operator]
            built = time.perf_counter() - started
            for kind in kinds:
                report(f"{label} [{kind}]", built, path.stat().st_size, in_child(kind, path))
            path.unlink()


if __name__ == "__main__":
    main()
