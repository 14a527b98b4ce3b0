"""Pipeline benchmark (run on demand: `python benchmarks/bench_pipeline.py [--burst 50] [--warm 10]`).

Real components as in the demo: moto (S3 + SQS events), a Prefect server, clamd, `proofcheck serve`.
Prints: upload -> stored verdict latency for a small package, warm (goal: median <= 5 s), split into
its parts from the run's own states and task runs (``PARTS``); time to the last verdict for a burst of
packages uploaded at once; Prefect's overhead per package (latency minus the engine's check task).
``--executor process`` measures the Prefect runner (a new process per run) instead of the warm pool.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchjson import Results, add_json_option
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterIdempotencyKey
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.devharness.local import LocalPipeline
from flows.storage import PackageRef, Store

# Where one warm package's latency goes, in the order it happens.
PARTS = {
    "delivery": "upload -> flow run created (S3 event, queue, bridge, dispatch)",
    "scheduling": "run created -> claimed (Pending: runner poll or warm-pool hand-off)",
    "start": "claimed -> Running (process start, imports, engine build; ~0 when warm)",
    "flow": "Running -> verdict written, minus the check (flow engine, tasks, S3 reads/writes)",
    "check": "the engine's check task (filetype, antivirus, pii...)",
    "seen": "verdict written -> seen by this script (its 0.2 s poll)",
}


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


def wait_all(store: Store, refs: list[PackageRef], timeout: float) -> dict[PackageRef, str]:
    """Like ``LocalPipeline.wait_verdicts`` with one listing per poll instead of one per package: 50
    packages polled one by one every 0.2 s keep moto busy with 250 requests a second, which slows
    the very runs being measured."""
    prefixes = {store.layout.reports_prefix(ref.key, ref.token): ref for ref in refs}
    found: dict[PackageRef, str] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(refs) and time.monotonic() < deadline:
        for key in store.iter_verdict_keys():
            ref = prefixes.get(key.rsplit("/", 1)[0] + "/")
            if ref is not None and ref not in found:
                found[ref] = key
        if len(found) < len(refs):
            time.sleep(0.5)
    return found


def parts_of(client: SyncPrefectClient, ref: PackageRef, uploaded: datetime, seen: datetime) -> dict[str, float]:
    """One package's latency, split by the timestamps Prefect recorded for its run and tasks."""
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=[ref.idempotency_key(0)]))
    )
    if not runs:
        return {}
    run = runs[0]
    states = {s.type.value: s.timestamp for s in client.read_flow_run_states(run.id)}
    tasks = {
        t.name.split("-")[0]: t
        for t in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    }
    check, written = tasks.get("check"), tasks.get("write_verdict")
    if run.created is None or check is None or written is None or written.end_time is None:
        return {}
    pending, running = states.get("PENDING"), states.get("RUNNING")
    if pending is None or running is None:
        return {}
    check_s = check.total_run_time.total_seconds()
    return {
        "delivery": (run.created - uploaded).total_seconds(),
        "scheduling": (pending - run.created).total_seconds(),
        "start": (running - pending).total_seconds(),
        "flow": (written.end_time - running).total_seconds() - check_s,
        "check": check_s,
        "seen": (seen - written.end_time).total_seconds(),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--executor", choices=("warm", "process"), default="warm")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, Prefect database)")
    add_json_option(parser)
    args = parser.parse_args()
    results = Results()
    root = Path(tempfile.mkdtemp(prefix="proofcheck-bench-"))
    pipeline = LocalPipeline(root)
    try:
        store = pipeline.start_s3(notifications=True)
        prefect = pipeline.start_prefect()
        clamd = pipeline.start_clamd()
        pipeline.settings = replace(pipeline.settings, engine_retries=0, executor=args.executor)
        with temporary_settings(updates={PREFECT_API_URL: prefect.url}):
            pipeline.start_serve(limit=args.limit)
            first = pipeline.upload(store, "inbox/bench/warmup.zip", small_package(-1))
            pipeline.wait_verdicts(store, [first], 180)
            latencies: list[float] = []
            split: list[dict[str, float]] = []
            with get_client(sync_client=True) as client:
                for i in range(args.warm):
                    uploaded, started = datetime.now(UTC), time.monotonic()
                    ref = pipeline.upload(store, f"inbox/bench/warm-{i}.zip", small_package(i))
                    if ref in pipeline.wait_verdicts(store, [ref], 120):
                        latencies.append(time.monotonic() - started)
                        time.sleep(0.5)  # the run finishes its tags and index before the next upload
                        seen = uploaded + timedelta(seconds=latencies[-1])
                        split.append(parts_of(client, ref, uploaded, seen))
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
            found = wait_all(store, refs, 1800)
            burst_time = time.monotonic() - started
            print(
                f"burst of {args.burst}: {len(found)}/{len(refs)} verdicts, last after {burst_time:.1f} s", flush=True
            )
            overheads, checks, queued, running = [], [], [], []
            with get_client(sync_client=True) as client:
                tasks = {}
                for task_run in _all(client.read_task_runs):
                    if task_run.name.startswith("check") and task_run.flow_run_id:
                        tasks[task_run.flow_run_id] = task_run.total_run_time.total_seconds()
                for run in _all(client.read_flow_runs):
                    if run.end_time and run.created and run.start_time and run.id in tasks:
                        total = (run.end_time - run.created).total_seconds()
                        checks.append(tasks[run.id])
                        overheads.append(total - tasks[run.id])
                        # In a burst most of that is waiting for a free slot, not Prefect's own cost.
                        queued.append((run.start_time - run.created).total_seconds())
                        running.append((run.end_time - run.start_time).total_seconds() - tasks[run.id])
        print(f"clamd: {'running' if clamd else 'not installed (antivirus not run)'}; "
              f"executor {args.executor}, limit {args.limit}")
        if latencies:
            median = statistics.median(latencies)
            print(
                f"warm latency upload->verdict ({len(latencies)} packages): median {median:.2f} s, "
                f"min {min(latencies):.2f} s, max {max(latencies):.2f} s (goal median <= 5 s)"
            )
            results.add_timings(
                "upload->verdict, small package, warm", latencies, goal="median <= 5 s", met=median <= 5.0,
                note=f"executor {args.executor}",
            )
        split = [s for s in split if s]
        if split:
            print(f"where the warm latency goes (median of {len(split)} packages):")
            for part, meaning in PARTS.items():
                values = [s[part] for s in split]
                print(f"  {part:<10} {statistics.median(values):6.2f} s  {meaning}")
                results.add_timings(f"warm latency part: {part}", values, note=meaning)
        results.add(
            f"burst of {args.burst} uploads: time to last verdict",
            burst_time,
            note=f"{len(found)}/{len(refs)} verdicts, executor {args.executor}, limit {args.limit}",
        )
        if overheads:
            print(
                f"per package: engine check median {statistics.median(checks):.2f} s; Prefect overhead "
                f"(flow run created -> finished, minus the check) median {statistics.median(overheads):.2f} s"
            )
            results.add_timings("Prefect overhead per package (run created->finished minus check)", overheads)
            print(
                f"  of which waiting to start (burst queue) median {statistics.median(queued):.2f} s; "
                f"run Running->finished minus the check (flow engine, S3, tags, index page) median "
                f"{statistics.median(running):.2f} s"
            )
            results.add_timings("per package: waiting to start (created->Running)", queued)
            results.add_timings("per package: Running->finished minus check", running)
        results.write(args.json)
        return 0 if len(found) == len(refs) else 1
    finally:
        pipeline.stop()
        if args.keep:
            print(f"logs and Prefect database kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
