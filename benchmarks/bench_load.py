"""Latency and throughput on realistic packages through the whole pipeline (run on demand; `make bench`).

    .venv/bin/python benchmarks/bench_load.py [--packages 100] [--warm 5] [--limit 2] [--min-mb 5] [--max-mb 50]

Real components on loopback, as the demo runs them: moto (S3 + SQS events), a Prefect server, ``proofcheck
serve`` with its warm executor (``--limit`` pool processes), the CDA ruleset synced from the ANS tree, and
a clamd loaded with the production-size synthetic signature set (``benchmarks/clamav_synth.py``; the
official one cannot be downloaded here). Packages come from ``benchmarks/realistic.py``: screenshots read
by OCR, PDFs with text, a structured and a level-1 CDA document, an e-mail with attachments and a screen
recording, 5 to 50 MB (log-uniform), all new bytes.

1. Warm-up: ``2 x --limit`` packages, so that every pool process has loaded the Schematrons and clamd's
   connection before anything is timed.
2. Latency: ``--warm`` packages uploaded one at a time on the idle pipeline, upload -> stored verdict.
   Goal (issue 6, now on realistic packages): median <= 5 s.
3. Throughput: a burst of ``--packages`` uploaded at once. Steady state = verdicts per hour between the
   10th and the 90th percentile of the verdicts (start-up and tail left out); also the time to the last
   verdict, each package's latency in the burst (its wait in the queue included) and the statuses given.
4. CPU seconds per package of each component (pool processes, clamd, Prefect server, moto) over the
   burst, from /proc/<pid>/stat; peak memory (VmHWM, /proc/<pid>/status) of each pool process and of
   clamd, read while they run; the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import clamav_synth  # noqa: E402
import realistic  # noqa: E402
from bench_scale import children, cpu_seconds  # noqa: E402
from benchjson import Results, add_json_option  # noqa: E402
from peakmem import vm_hwm_mib  # noqa: E402

from flows.devharness.local import LocalPipeline  # noqa: E402
from flows.storage import PackageRef, Store  # noqa: E402
from validators.ssi import clamd_manager  # noqa: E402

LATENCY_GOAL = "median <= 5 s (issue 6)"
RULESETS = ROOT / "var" / "bench" / "rulesets"
# The burst stops (and says so) when the disk holding the temporary files has less than this left: moto
# keeps objects in temporary files, and a burst of 2 GB of packages must never fill a shared disk.
MIN_FREE_BYTES = 8 * 10**9
# moto copies every object version on each ListObjectVersions and keeps the copies (unlinked temporary
# files): the reconcile lists versions every minute, which leaked 58 GB over 30 minutes of a 2 GB burst
# here. Events dispatch every run of this benchmark; the reconcile (the safety net) runs once an hour.
RECONCILE_EVERY = 3600.0


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def pool_processes(serve_pid: int) -> list[int]:
    """The warm pool's processes: spawned children of the serving process (not its resource tracker)."""
    out = []
    for pid in children(serve_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.append(pid)
    return out


@dataclass
class Watcher:
    """Samples CPU and peak memory of the pipeline's processes every 2 s while a phase runs."""

    groups: dict[str, list[int]]
    serve_pid: int
    peaks: dict[int, float] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    member: dict[int, str] = field(default_factory=dict)  # every process seen, and its group
    stopping: threading.Event = field(default_factory=threading.Event)
    disk_low: str | None = None  # why the burst was stopped, if the disk ran low
    moto_held: int = 0  # the most bytes of unlinked temporary files moto held open at once

    def held_by(self, pid: int) -> int:
        total = 0
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                if os.readlink(fd).endswith("(deleted)"):
                    total += fd.stat().st_size
            except OSError:
                continue
        return total

    def check_disk(self) -> None:
        for pid in self.groups.get("moto (S3+SQS)", []):
            self.moto_held = max(self.moto_held, self.held_by(pid))
        free = shutil.disk_usage(tempfile.gettempdir()).free
        if free < MIN_FREE_BYTES and self.disk_low is None:
            self.disk_low = f"stopped: {free / 1e9:.1f} GB left on the disk of {tempfile.gettempdir()}"
            self.stopping.set()

    def sample(self) -> None:
        for name, group in {**self.groups, "pool processes": pool_processes(self.serve_pid)}.items():
            for pid in group:
                self.member[pid] = name
                hwm = vm_hwm_mib(pid)
                if hwm is not None:
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu_seconds(pid))

    def cpu_since(self, before: dict[int, float]) -> dict[str, float]:
        """CPU seconds per group since ``before`` (a copy of ``cpu``); processes born since count whole."""
        out: dict[str, float] = {}
        for pid, name in self.member.items():
            out[name] = out.get(name, 0.0) + self.cpu.get(pid, 0.0) - before.get(pid, 0.0)
        return out

    def run(self) -> None:
        while not self.stopping.wait(2.0):
            self.sample()
            self.check_disk()


def build_packages(count: int, rng: random.Random, low: float, high: float, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(realistic.package_sizes(rng, count, low, high)):
        path = folder / f"paquet-{i:03d}.zip"
        path.write_bytes(realistic.package(rng, size))
        paths.append(path)
    return paths


def upload(pipeline: LocalPipeline, store: Store, phase: str, path: Path) -> PackageRef:
    # inbox/<publisher>/<package>.zip: a deeper key would be read as a folder package (held for its grace).
    return pipeline.upload(store, f"{store.layout.inbox}editeur-bench/{phase}-{path.name}", path.read_bytes())


def wait_times(
    store: Store, refs: list[PackageRef], started: float, timeout: float, stop: threading.Event | None = None
) -> dict[PackageRef, tuple[float, str]]:
    """Seconds from ``started`` to each version's first stored verdict, and that verdict's key."""
    wanted = {f"{ref.key}/{ref.token}/": ref for ref in refs}
    seen: dict[PackageRef, tuple[float, str]] = {}
    deadline = started + timeout
    while len(seen) < len(refs) and time.monotonic() < deadline and not (stop and stop.is_set()):
        now = time.monotonic() - started
        for key in store.iter_verdict_keys():
            for marker, ref in wanted.items():
                if ref not in seen and marker in key:
                    seen[ref] = (now, key)
        if len(seen) < len(refs):
            time.sleep(1.0)
    return seen


def statuses(store: Store, keys: list[str]) -> Counter[str]:
    return Counter(json.loads(store.get_bytes(key))["status"] for key in keys)


def run(args: argparse.Namespace, root: Path, results: Results) -> int:
    rng = random.Random(args.seed)  # noqa: S311 (test data, not secrets)
    started = time.perf_counter()
    warm_ups = build_packages(2 * args.limit, rng, args.min_mb, args.min_mb + 1, root / "packages-warm-up")
    singles = build_packages(args.warm, rng, args.min_mb, args.max_mb, root / "packages-latency")
    burst = build_packages(args.packages, rng, args.min_mb, args.max_mb, root / "packages-burst")
    sizes = [p.stat().st_size / 1e6 for p in burst]
    print(f"built {len(warm_ups) + len(singles) + len(burst)} packages in {time.perf_counter() - started:.0f} s; "
          f"burst: {sum(sizes):.0f} MB, median {statistics.median(sizes):.1f} MB, {min(sizes):.1f}-{max(sizes):.1f} MB",
          flush=True)

    from flows.devharness.demo import obtain_ruleset

    obtained = obtain_ruleset(RULESETS)
    print(f"ruleset: {obtained.line}", flush=True)
    pipeline = LocalPipeline(root / "pipeline")
    clamd_dir = root / "clamd"
    try:
        store = pipeline.start_s3(notifications=True)
        prefect = pipeline.start_prefect()
        folder, facts = clamav_synth.ensure(args.db_scale) if args.database == "synthetic" else (None, {})
        loading = time.perf_counter()
        endpoint = clamd_manager.start(clamd_dir, folder, timeout=args.load_timeout)
        loaded = time.perf_counter() - loading
        clamd_pid = _clamd_pid(clamd_dir)
        db = (f"synthetic production-size set, {int(facts['total']) / 1e6:.2f} M signatures" if folder
              else "the 2 test signatures")
        print(f"clamd with {db}: loaded in {loaded:.0f} s (load {load_average()})", flush=True)
        pipeline.env.update({"PROOFCHECK_CLAMD": str(endpoint.address), "PROOFCHECK_RULESETS": str(RULESETS),
                             # The synthetic set has no official version: clamd reports none, as with test
                             # signatures; acknowledged as the demo does, so that clean packages can pass.
                             "PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES": "accept"})
        pipeline.settings = replace(pipeline.settings, executor="warm", reconcile_every=RECONCILE_EVERY)
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: prefect.url}):
            serve = pipeline.start_serve(limit=args.limit)
            t0 = time.monotonic()
            refs = [upload(pipeline, store, "warm-up", p) for p in warm_ups]
            found = wait_times(store, refs, t0, 1800)
            print(f"warm-up: {len(found)}/{len(refs)} verdicts in {time.monotonic() - t0:.0f} s "
                  f"(pool processes load the Schematrons on their first CDA document)", flush=True)
            latencies, single_status = [], []
            for path in singles:
                t0 = time.monotonic()
                ref = upload(pipeline, store, "latency", path)
                got = wait_times(store, [ref], t0, 900)
                if ref in got:
                    latencies.append(got[ref][0])
                    single_status.append(json.loads(store.get_bytes(got[ref][1]))["status"])
                    time.sleep(1.0)  # the run finishes its tags and index page before the next upload
            print(f"latency, one at a time: {[round(x, 1) for x in latencies]} s, statuses {single_status} "
                  f"(load {load_average()})", flush=True)
            groups = {"clamd": [clamd_pid] if clamd_pid else [],
                      "Prefect server": [prefect.pid],
                      "moto (S3+SQS)": [s.pid for s in pipeline.started if s.name == "moto"],
                      "serving process (bridge)": [serve.pid]}
            watcher = Watcher(groups, serve.pid)
            watcher.sample()
            cpu_before = dict(watcher.cpu)
            load_start = load_average()
            t0 = time.monotonic()
            with ThreadPoolExecutor(4) as uploads:
                burst_refs = list(uploads.map(lambda p: upload(pipeline, store, "burst", p), burst))
            uploaded = time.monotonic() - t0
            threading.Thread(target=watcher.run, daemon=True).start()
            seen = wait_times(store, burst_refs, t0, args.timeout, watcher.stopping)
            watcher.stopping.set()
            if watcher.disk_low:
                print(f"burst {watcher.disk_low}", flush=True)
            watcher.sample()
            load_end = load_average()
            cpu = watcher.cpu_since(cpu_before)
            burst_status = statuses(store, [key for _, key in seen.values()])
        report(args, results, latencies, single_status, seen, len(burst_refs), uploaded, sizes, burst_status,
               watcher, cpu, (load_start, load_end), db, loaded)
        if watcher.disk_low:
            results.missing(f"burst of {len(burst_refs)} realistic packages: steady state", None, watcher.disk_low,
                            unit="packages/h")
        return 0 if len(seen) == len(burst_refs) else 1
    finally:
        pipeline.stop()
        clamd_manager.stop(clamd_dir)


def _clamd_pid(directory: Path) -> int | None:
    import faults

    return faults.clamd_pid(directory)


def steady_per_hour(times: list[float]) -> tuple[float, int, int]:
    """Verdicts per hour between the 10th and 90th percentile of the verdict times (and those two ranks)."""
    ordered = sorted(times)
    low, high = round(0.1 * (len(ordered) - 1)), round(0.9 * (len(ordered) - 1))
    span = ordered[high] - ordered[low]
    return ((high - low) / span * 3600 if span > 0 else 0.0), low + 1, high + 1


def report(args: argparse.Namespace, results: Results, latencies: list[float], single_status: list[str],
           seen: dict[PackageRef, tuple[float, str]], sent: int, uploaded: float, sizes: list[float],
           burst_status: Counter[str], watcher: Watcher, cpu: dict[str, float], loads: tuple[str, str], db: str,
           loaded: float) -> None:
    setup = (f"warm executor, {args.limit} pool processes; clamd with {db} (SYNTHETIC: the official set cannot "
             f"be downloaded here); ANS ruleset synced")
    if latencies:
        median = statistics.median(latencies)
        results.add_timings("upload->verdict, realistic package, warm, one at a time", latencies, goal=LATENCY_GOAL,
                            met=median <= 5.0, note=f"{len(latencies)} packages of {args.min_mb:g}-{args.max_mb:g} MB; "
                            f"statuses {dict(Counter(single_status))}; {setup}")
    times = [t for t, _ in seen.values()]
    if not times:
        results.missing("burst of realistic packages: steady state", None, "no verdict came back")
        return
    per_hour, low, high = steady_per_hour(times)
    last = max(times)
    megabytes = sum(sizes)
    note = (f"{len(seen)}/{sent} verdicts; steady = verdicts {low}-{high} of {len(times)}; last verdict after "
            f"{last:.0f} s; uploads took {uploaded:.0f} s; {megabytes:.0f} MB, median package "
            f"{statistics.median(sizes):.1f} MB; statuses {dict(burst_status)}; load {loads[0]} -> {loads[1]}; "
            f"{setup}; moto held at most {watcher.moto_held / 1e9:.1f} GB of temporary files")
    print(f"burst of {sent}: {note}")
    results.add(f"burst of {sent} realistic packages: steady state", per_hour, unit="packages/h", note=note)
    results.add(f"burst of {sent} realistic packages: time to the last verdict", last,
                note=f"{len(seen)}/{sent} verdicts, {megabytes / last * 3.6:.0f} GB/h over the whole burst")
    results.add_timings(f"burst of {sent}: upload->verdict per package (queue included)", times,
                        note="each package's wait for a free pool process is part of it")
    verdicts = max(1, len(seen))
    per_package = {name: value / verdicts for name, value in cpu.items()}
    print("CPU s per package: " + ", ".join(f"{name} {value:.2f}" for name, value in per_package.items()))
    total = sum(per_package.values())
    results.add("CPU seconds per realistic package, all components", total, unit="CPU s",
                note="; ".join(f"{name} {value:.2f}" for name, value in per_package.items())
                + " (from /proc/<pid>/stat over the burst)")
    for name, value in per_package.items():
        results.add(f"CPU seconds per realistic package: {name}", value, unit="CPU s")
    pool_peaks = [watcher.peaks[p] for p, name in watcher.member.items()
                  if name == "pool processes" and p in watcher.peaks]
    clamd_peak = max((watcher.peaks.get(p, 0.0) for p in watcher.groups["clamd"]), default=0.0)
    if pool_peaks:
        results.add("peak memory of a warm pool process, realistic burst", max(pool_peaks), unit="MiB",
                    peak_mib=max(pool_peaks), note=f"VmHWM of each pool process (/proc/<pid>/status, spawned "
                    f"processes: their own), sampled every 2 s: {sorted(round(p) for p in pool_peaks)}")
    if clamd_peak:
        results.add("peak memory of clamd, realistic burst", clamd_peak, unit="MiB", peak_mib=clamd_peak,
                    note=f"VmHWM of the clamd process with {db}; loaded in {loaded:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=100, help="burst size (>= 100 for a steady state)")
    parser.add_argument("--warm", type=int, default=5, help="packages timed one at a time")
    parser.add_argument("--limit", type=int, default=2, help="warm pool processes (check slots)")
    parser.add_argument("--min-mb", type=float, default=5.0)
    parser.add_argument("--max-mb", type=float, default=50.0)
    parser.add_argument("--database", choices=("synthetic", "test"), default="synthetic")
    parser.add_argument("--db-scale", type=float, default=1.0)
    parser.add_argument("--load-timeout", type=float, default=900.0)
    parser.add_argument("--timeout", type=float, default=4 * 3600.0, help="seconds allowed for the burst")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    add_json_option(parser)
    args = parser.parse_args()
    results = Results(args.json)
    results.expect("upload->verdict, realistic package, warm, one at a time", LATENCY_GOAL)
    if clamd_manager.clamd_binary() is None:
        results.missing("upload->verdict, realistic package, warm, one at a time", LATENCY_GOAL,
                        "ClamAV is not installed (apt-get install clamav-daemon)")
        print("ClamAV is not installed: the realistic load needs clamd")
        return 1
    root = Path(tempfile.mkdtemp(prefix="proofcheck-load-"))
    # A TERM (run_all's timeout, a user) unwinds through the finally blocks: every service stopped by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args, root, results)
    finally:
        if args.keep:
            print(f"work folder kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
