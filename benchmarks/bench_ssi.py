"""SSI stage benchmark (run on demand: `.venv/bin/python benchmarks/bench_ssi.py`, never in CI).

1. Throughput of the whole SSI stage (archive triage + every ssi check, clamd included) against raw
   clamd INSTREAM in the same run, each on fresh random bytes of the same size (clamd caches what it has
   seen), alternated. Goal: overhead <= 15 %.
2. Time of the SSI stage on a 100 000-entry zip and on a 1 GiB ZIP64 bomb.
3. PDF walk time on a 200-page PDF.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchjson import Results, add_json_option  # noqa: E402

from fixtures import builders, hostile  # noqa: E402
from validators import archive, ssi  # noqa: E402
from validators.base import CheckContext, ProofFile  # noqa: E402
from validators.engine import Engine  # noqa: E402
from validators.ssi import clamd_manager  # noqa: E402
from validators.ssi.clamd_client import ClamdClient  # noqa: E402
from validators.ssi.pdf import PdfValidator  # noqa: E402


def proof_file(path: Path, media_type: str) -> ProofFile:
    return ProofFile(
        path=path.name, size=path.stat().st_size, sha256="0" * 64, media_type=media_type, disk_path=path
    )


def ssi_stage(settings: dict[str, str]) -> Engine:
    return Engine([*archive.make_validators(settings), *ssi.make_validators(settings)], settings=settings)


def throughput(engine: Engine, client: ClamdClient, work: Path, size: int, rounds: int, results: Results) -> None:
    raw, stage = [], []
    for _ in range(rounds):
        sample = work / "random.bin"
        sample.write_bytes(os.urandom(size))
        start = time.perf_counter()
        with sample.open("rb") as stream:
            client.instream_file(stream)
        raw.append(time.perf_counter() - start)
        sample.write_bytes(os.urandom(size))  # fresh bytes: clamd must not answer from its cache
        start = time.perf_counter()
        verdict = engine.check_file(proof_file(sample, "application/octet-stream"))
        stage.append(time.perf_counter() - start)
        assert all(c.state.value != "not_run" for c in verdict.checks), verdict.checks
    mib = size / 2**20
    raw_median, stage_median = statistics.median(raw), statistics.median(stage)
    print(
        f"{mib:.0f} MiB x {rounds}: raw INSTREAM {mib / raw_median:.1f} MiB/s, "
        f"SSI stage {mib / stage_median:.1f} MiB/s, overhead {100 * (stage_median / raw_median - 1):+.1f} %"
    )
    ratio = stage_median / raw_median
    note = f"{mib:.0f} MiB fresh random bytes, {rounds} alternated rounds; {mib / stage_median:.1f} MiB/s"
    results.add_timings(f"SSI stage on {mib:.0f} MiB", stage, ratio=ratio, reference="raw clamd INSTREAM",
                        goal="overhead <= 15 % (ratio <= 1.15)", met=ratio <= 1.15, note=note)
    results.add_timings(f"raw clamd INSTREAM on {mib:.0f} MiB (reference)", raw,
                        note=f"{mib / raw_median:.1f} MiB/s")


def timed(label: str, engine: Engine, path: Path, media_type: str) -> float:
    start = time.perf_counter()
    verdict = engine.check_file(proof_file(path, media_type))
    elapsed = time.perf_counter() - start
    rules = sorted({f.rule for f in verdict.findings if f.severity.value == "error"})
    print(f"{label}: {elapsed * 1000:.0f} ms ({path.stat().st_size / 2**20:.1f} MiB file) -> {rules}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bomb-gib", type=float, default=1.0)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results()
    if clamd_manager.clamd_binary() is None:
        print("ClamAV is not installed: nothing to measure (apt-get install clamav-daemon)")
        return 1
    with tempfile.TemporaryDirectory() as tmp, clamd_manager.private_clamd(Path(tmp) / "clamd") as settings:
        work = Path(tmp)
        engine = ssi_stage(settings)
        client = ClamdClient(clamd_manager.ClamdAddress.parse(settings["clamd"]))
        engine.check_file(proof_file(Path(__file__), "text/x-python"))  # warm-up: clamd connection, imports
        print("== throughput (median of alternated rounds)")
        throughput(engine, client, work, args.size_mib * 2**20, args.rounds, results)
        print("== archives")
        many = work / "many.zip"
        many.write_bytes(hostile.zip_many_entries(100_000))
        elapsed = timed("100 000-entry zip", engine, many, "application/zip")
        results.add("SSI stage on a 100 000-entry zip", elapsed, goal="refused in milliseconds (<= 1 s)",
                    met=elapsed <= 1.0)
        bomb = work / "bomb.zip"
        start = time.perf_counter()
        bomb.write_bytes(hostile.zip64_bomb(int(args.bomb_gib * 2**30)))
        print(f"(built the {args.bomb_gib:g} GiB ZIP64 bomb in {time.perf_counter() - start:.1f} s)")
        elapsed = timed(f"{args.bomb_gib:g} GiB ZIP64 bomb", engine, bomb, "application/zip")
        results.add(f"SSI stage on a {args.bomb_gib:g} GiB ZIP64 bomb", elapsed, goal="refused (<= 1 s)",
                    met=elapsed <= 1.0)
        print("== PDF walk")
        document = work / "200-pages.pdf"
        document.write_bytes(builders.make_pdf([f"Page {i}\n" + "ligne de texte " * 20 for i in range(200)]))
        walker = PdfValidator()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            walker.check(proof_file(document, "application/pdf"), CheckContext())
            times.append(time.perf_counter() - start)
        digest = hashlib.sha256(document.read_bytes()).hexdigest()[:12]
        print(
            f"200-page PDF ({document.stat().st_size / 1024:.0f} KiB, {digest}): walk median "
            f"{statistics.median(times) * 1000:.0f} ms"
        )
        results.add_timings("SSI PDF walk of a 200-page PDF", times, note=f"{document.stat().st_size / 1024:.0f} KiB")
    results.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
