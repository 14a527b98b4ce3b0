"""Pipeline benchmark (run on demand: `python benchmarks/bench_pipeline.py [--burst 50] [--warm 10]`).

Real components as in the demo: moto (S3 + SQS events), a Prefect server, clamd, `proofcheck serve`.
Prints: upload -> stored verdict latency for a small package, warm (goal: median <= 5 s); time to the
last verdict for a burst of packages uploaded at once; Prefect's overhead per package (latency minus
the time spent in the engine's check task).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchjson import Results, add_json_option
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.local import LocalPipeline


def small_package(i: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("INS.41.2.2/journal.txt", f"journal de test fictif {i}\n")
    return out.getvalue()


def _all(read: Any) -> list[Any]:
    """Every item of a Prefect listing (the API pages by 200 at most)."""
    out: list[Any] = []
    while True:
        page = read(limit=200, offset=len(out))
        out.extend(page)
        if len(page) < 200:
            return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--limit", type=int, default=2)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results()
    root = Path(tempfile.mkdtemp(prefix="proofcheck-bench-"))
    pipeline = LocalPipeline(root)
    try:
        store = pipeline.start_s3(notifications=True)
        prefect = pipeline.start_prefect()
        clamd = pipeline.start_clamd()
        pipeline.settings = replace(pipeline.settings, engine_retries=0)
        with temporary_settings(updates={PREFECT_API_URL: prefect.url}):
            pipeline.start_serve(limit=args.limit)
            first = pipeline.upload(store, "inbox/bench/warmup.zip", small_package(-1))
            pipeline.wait_verdicts(store, [first], 180)
            latencies = []
            for i in range(args.warm):
                started = time.monotonic()
                ref = pipeline.upload(store, f"inbox/bench/warm-{i}.zip", small_package(i))
                if ref in pipeline.wait_verdicts(store, [ref], 120):
                    latencies.append(time.monotonic() - started)
            if latencies:
                print(f"warm latencies: {[round(x, 2) for x in latencies]}", flush=True)
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                refs = list(
                    pool.map(
                        lambda i: pipeline.upload(store, f"inbox/bench/burst-{i}.zip", small_package(1000 + i)),
                        range(args.burst),
                    )
                )
            found = pipeline.wait_verdicts(store, refs, 1800)
            burst_time = time.monotonic() - started
            print(
                f"burst of {args.burst}: {len(found)}/{len(refs)} verdicts, last after {burst_time:.1f} s", flush=True
            )
            overheads, checks = [], []
            with get_client(sync_client=True) as client:
                tasks = {}
                for task_run in _all(client.read_task_runs):
                    if task_run.name.startswith("check") and task_run.flow_run_id:
                        tasks[task_run.flow_run_id] = task_run.total_run_time.total_seconds()
                for run in _all(client.read_flow_runs):
                    if run.end_time and run.created and run.id in tasks:
                        total = (run.end_time - run.created).total_seconds()
                        checks.append(tasks[run.id])
                        overheads.append(total - tasks[run.id])
        print(f"clamd: {'running' if clamd else 'not installed (antivirus not run)'}; runner limit {args.limit}")
        if latencies:
            median = statistics.median(latencies)
            print(
                f"warm latency upload->verdict ({len(latencies)} packages): median {median:.2f} s, "
                f"min {min(latencies):.2f} s, max {max(latencies):.2f} s (goal median <= 5 s)"
            )
            results.add_timings(
                "upload->verdict, small package, warm", latencies, goal="median <= 5 s", met=median <= 5.0
            )
        results.add(
            f"burst of {args.burst} uploads: time to last verdict",
            burst_time,
            note=f"{len(found)}/{len(refs)} verdicts, runner limit {args.limit}",
        )
        if overheads:
            print(
                f"per package: engine check median {statistics.median(checks):.2f} s; Prefect overhead "
                f"(flow run created -> finished, minus the check) median {statistics.median(overheads):.2f} s"
            )
            results.add_timings("Prefect overhead per package (run created->finished minus check)", overheads)
        results.write(args.json)
        return 0 if len(found) == len(refs) else 1
    finally:
        pipeline.stop()


if __name__ == "__main__":
    sys.exit(main())
