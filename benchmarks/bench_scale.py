"""Scaling in simulation: packages per hour with 1, 2, 3 Prefect process workers in one work pool, clamd shared or not.

    .venv/bin/python benchmarks/bench_scale.py                     # 1s,2s,3s,3p,1w x 16 packages: ~9 min
    .venv/bin/python benchmarks/bench_scale.py --configs 1s,2s --packages 10
    .venv/bin/python benchmarks/bench_scale.py --topology production --configs 2p,1w   # the stack's parts

Loopback only, as production runs it: moto (S3 + SQS), a Prefect server, ``proofcheck deploy`` on a
process work pool, ``proofcheck serve --no-runner`` as the bridge, and N ``prefect worker start``
processes. Each worker stands for one machine: its own work folder (so its own check slots) and either
the one shared clamd (``Ns``) or a clamd of its own (``Np``). For each configuration a burst of light
packages (the soak's mix: clean, hostile, personal data, broken) is uploaded at once and the time to
the last verdict is measured; the CPU seconds each component used in that window (flow-run processes,
Prefect server, moto, clamd, bridge) and the Prefect API's answer time say what saturates first. The
numbers go to ``--json`` like the other bench scripts (``make bench``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchjson import Results, add_json_option, p95
from soak import PackageFactory

from flows.devharness import services
from flows.devharness.local import LocalPipeline
from flows.storage import PackageRef, Store

POOL = "proofcheck-scale"
TICKS = os.sysconf("SC_CLK_TCK")
WORKER_LIMIT = 2  # flow runs at once per worker (= the per-machine check slots)


def cpu_seconds(pid: int) -> float:
    """CPU used by a process and by its children it has reaped (flow runs of a worker)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def tree_cpu_seconds(pid: int) -> float:
    """A process's CPU with its live children's (the warm pool's processes are never reaped mid-run)."""
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in children(pid))


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot: other people's work included."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def start_clamd(directory: Path) -> str | None:
    """A private clamd in ``directory``; its PROOFCHECK_CLAMD address (None: ClamAV not installed)."""
    try:
        return services.start_private_clamd(directory)
    except services.ServiceError:
        return None


stop_clamd = services.stop_private_clamd


def clamd_pid(directory: Path) -> int | None:
    import faults

    return faults.clamd_pid(directory)


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


@dataclass
class ApiProbe:
    """Answer time of the Prefect API's health endpoint, and memory of the executors, while a config runs."""

    url: str
    executors: list[int] = field(default_factory=list)  # workers (or the serving process)
    times: list[float] = field(default_factory=list)
    peak_run_mib: float = 0.0  # the largest flow-run (or warm pool) process seen
    peak_executor_mib: float = 0.0  # the largest worker/serving process itself
    stopping: threading.Event = field(default_factory=threading.Event)

    def sample_memory(self) -> None:
        for pid in self.executors:
            self.peak_executor_mib = max(self.peak_executor_mib, rss_mib(pid))
            for child in children(pid):
                self.peak_run_mib = max(self.peak_run_mib, rss_mib(child))

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            self.sample_memory()
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=30) as answer:  # noqa: S310 (loopback)
                    answer.read()
                self.times.append(time.monotonic() - started)
            except OSError:
                self.times.append(30.0)


@dataclass
class Measure:
    config: str
    workers: int
    clamd_per_worker: bool
    packages: int
    verdicts: int
    first_verdict_s: float
    last_verdict_s: float
    cpu: dict[str, float]
    machine_busy_cores: float
    api_median_s: float
    api_p95_s: float
    load_avg: float
    peak_run_mib: float = 0.0
    peak_executor_mib: float = 0.0
    warm_limit: int = WORKER_LIMIT

    @property
    def per_hour(self) -> float:
        """Packages per hour over the whole burst (upload of the first -> verdict of the last)."""
        return self.verdicts / self.last_verdict_s * 3600 if self.last_verdict_s else 0.0

    @property
    def steady_per_hour(self) -> float:
        """Packages per hour once the first verdict is out (startup of the first run excluded)."""
        span = self.last_verdict_s - self.first_verdict_s
        return (self.verdicts - 1) / span * 3600 if span > 0 and self.verdicts > 1 else 0.0


class ScaleBench:
    def __init__(self, root: Path, packages: int, warm_limit: int = WORKER_LIMIT) -> None:
        self.warm_limit = warm_limit
        self.root = root
        self.packages = packages
        self.pipeline = LocalPipeline(root)
        self.clamd_dirs: list[Path] = []
        self.workers: list[services.Service] = []
        self.batch = 0

    def start(self) -> None:
        self.store = self.pipeline.start_s3(notifications=True)
        prefect = self.pipeline.start_prefect()
        self.pipeline.settings = replace(self.pipeline.settings, reconcile_every=30.0)
        self.shared_clamd = self.add_clamd()
        env = {**os.environ, **self.pipeline.child_env()}
        prefect_bin = str(Path(sys.executable).parent / "prefect")
        subprocess.run([prefect_bin, "work-pool", "create", POOL, "--type", "process"], env=env,
                       capture_output=True, timeout=120, check=True)
        subprocess.run([sys.executable, "-m", "validators.cli", "deploy", "--work-pool", POOL], env=env,
                       capture_output=True, timeout=180, check=True)
        self.pipeline.env["PROOFCHECK_CLAMD"] = self.shared_clamd
        self.pipeline.env["PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES"] = "accept"  # as the demo: clean can pass
        self.pipeline.start_serve(extra=["--no-runner"])
        self.api_url = prefect.url

    def add_clamd(self) -> str:
        directory = self.root / f"clamd-{len(self.clamd_dirs)}"
        address = start_clamd(directory)
        if address is None:
            raise SystemExit("bench_scale: ClamAV is not installed; the benchmark needs clamd")
        self.clamd_dirs.append(directory)
        return address

    def start_workers(self, count: int, per_worker_clamd: bool) -> None:
        prefect_bin = str(Path(sys.executable).parent / "prefect")
        for n in range(count):
            clamd = self.shared_clamd
            if per_worker_clamd:
                while len(self.clamd_dirs) <= n:
                    self.add_clamd()
                clamd = start_clamd(self.clamd_dirs[n]) or self.shared_clamd  # already running: its address
            work_dir = self.root / f"worker-{n}"
            settings = replace(self.pipeline.settings, work_dir=work_dir)
            env = {**self.pipeline.child_env(), **settings.to_env(), "PROOFCHECK_CLAMD": clamd,
                   "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
            argv = [prefect_bin, "worker", "start", "--pool", POOL, "--type", "process", "--limit",
                    str(WORKER_LIMIT), "--name", f"worker-{n}-{self.batch}"]
            self.workers.append(services.start_process(f"worker-{n}", argv, url="", log_dir=self.root / "logs",
                                                       env=env))

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def component_pids(self) -> dict[str, list[int]]:
        by_name = {s.name: s.pid for s in self.pipeline.started}
        return {
            "flow runs (workers or warm pool)": [w.pid for w in self.workers] or [by_name["serve"]],
            "Prefect server": [by_name["prefect-server"]],
            "moto (S3+SQS)": [by_name["moto"]],
            "clamd": [p for d in self.clamd_dirs if (p := clamd_pid(d)) is not None],
            "bridge": [by_name["serve"]] if self.workers else [],  # warm: the bridge is in the serving process
        }

    def executor_pids(self) -> list[int]:
        """The processes that run flow runs: the workers, else the serving process and its warm pool."""
        return [w.pid for w in self.workers] or [self.pipeline.serve_process.pid]  # type: ignore[union-attr]

    def upload(self, key: str, data: bytes) -> PackageRef:
        return self.pipeline.upload(self.store, key, data)

    def use_warm_serve(self) -> None:
        """Replace the bridge by ``proofcheck serve`` with its warm executor (no work-pool workers)."""
        self.pipeline.stop_serve()
        self.pipeline.env["PROOFCHECK_EXECUTOR"] = "warm"  # an environment variable: older settings lack it
        self.pipeline.start_serve(limit=self.warm_limit)
        time.sleep(20.0)  # the pool's processes import everything and build the engine first

    def measure(self, workers: int, per_worker_clamd: bool, warm: bool = False) -> Measure:
        config = f"{workers}{'w' if warm else 'p' if per_worker_clamd else 's'}"
        self.batch += 1
        if warm:
            self.use_warm_serve()
        else:
            self.start_workers(workers, per_worker_clamd)
            time.sleep(3.0)  # workers register and start polling
        planned = PackageFactory(100 + self.batch).plan(self.packages, new_versions=0, dryrun=0, quick=True)
        pids = self.component_pids()
        cpu_before = {name: sum(tree_cpu_seconds(p) for p in group) for name, group in pids.items()}
        busy_before = machine_busy()
        probe = ApiProbe(self.api_url, self.executor_pids())
        threading.Thread(target=probe.run, daemon=True).start()
        started = time.monotonic()
        refs: list[PackageRef] = []
        for i, package in enumerate(planned):
            key = f"inbox/scale-{config}/{i:03d}-{package.kind}.zip"
            refs.append(self.upload(key, package.data))
        seen = self.wait(refs, started, timeout=600)
        probe.stopping.set()
        time.sleep(2.0)  # the last flow-run processes exit and are reaped by their worker
        # Workers' flow runs are reaped children: their CPU is in the worker's counters once they exit.
        cpu_after = {name: sum(tree_cpu_seconds(p) for p in group) for name, group in pids.items()}
        busy_after = machine_busy()
        elapsed = max(seen.values(), default=time.monotonic() - started)
        self.stop_workers()
        jiffies = busy_after[1] - busy_before[1]
        return Measure(
            config=config,
            workers=workers,
            clamd_per_worker=per_worker_clamd,
            packages=len(refs),
            verdicts=len(seen),
            first_verdict_s=min(seen.values(), default=0.0),
            last_verdict_s=elapsed,
            cpu={k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_before},
            machine_busy_cores=(busy_after[0] - busy_before[0]) / jiffies * (os.cpu_count() or 1) if jiffies else 0.0,
            api_median_s=statistics.median(probe.times) if probe.times else 0.0,
            api_p95_s=p95(probe.times) if probe.times else 0.0,
            load_avg=os.getloadavg()[0],
            peak_run_mib=round(probe.peak_run_mib),
            peak_executor_mib=round(probe.peak_executor_mib),
            warm_limit=self.warm_limit,
        )

    def wait(self, refs: list[PackageRef], started: float, timeout: float) -> dict[PackageRef, float]:
        """Seconds from the burst's start to each version's verdict."""
        seen: dict[PackageRef, float] = {}
        prefix = self.store.layout.reports + refs[0].key.rsplit("/", 1)[0] + "/"
        deadline = started + timeout
        while len(seen) < len(refs) and time.monotonic() < deadline:
            keys = set(_list(self.store, prefix))
            now = time.monotonic() - started
            for ref in refs:
                if ref not in seen and any(k.startswith(self.store.layout.reports_prefix(ref.key, ref.token))
                                           for k in keys):
                    seen[ref] = now
            time.sleep(0.5)
        return seen

    def stop(self) -> None:
        self.stop_workers()
        self.pipeline.stop()
        for directory in self.clamd_dirs:
            stop_clamd(directory)


class ProductionBench(ScaleBench):
    """The same bursts on the stack's topology (``flows.devharness.topology``): SeaweedFS (no events: the bridge
    lists every 2 s), a Prefect server on Postgres, Postgres holding the verdict index, one clamd per
    machine. ``Np``: N machines of work-pool workers; ``1w``: ``proofcheck serve`` with its warm pool."""

    def start(self) -> None:
        from flows.devharness.topology import Topology

        self.topology = Topology(self.root, stale_after=600.0)
        self.topology.start_postgres()
        self.topology.start_seaweedfs()
        self.topology.start_prefect()
        self.topology.deploy()
        self.topology.start_bridge()
        self.store = self.topology.store()
        assert self.topology.prefect is not None
        self.api_url = self.topology.prefect.url

    def start_workers(self, count: int, per_worker_clamd: bool) -> None:
        for n in range(count):
            name = f"machine-{n + 1}"
            machine = self.topology.machines.get(name) or self.topology.add_machine(name)
            if machine.worker is None or not machine.worker.alive():
                self.topology.start_worker(machine)
            assert machine.worker is not None
            self.workers.append(machine.worker)

    def stop_workers(self) -> None:
        super().stop_workers()
        for machine in self.topology.machines.values():
            machine.worker = None

    def use_warm_serve(self) -> None:
        topology = self.topology
        if topology.bridge is not None:
            topology.bridge.stop()
        machine = topology.machines.get("machine-1") or topology.add_machine("machine-1")
        env = {**topology.pipeline_env("serve"), "PROOFCHECK_EXECUTOR": "warm", "PROOFCHECK_CLAMD": machine.clamd}
        topology.bridge = services.start_process(
            "serve", [sys.executable, "-m", "validators.cli", "serve", "--limit", str(self.warm_limit)],
            url="", log_dir=topology.logs, env=env,
        )
        time.sleep(20.0)  # the pool's processes import everything and build the engine first

    def executor_pids(self) -> list[int]:
        assert self.topology.bridge is not None
        return [w.pid for w in self.workers] or [self.topology.bridge.pid]

    def component_pids(self) -> dict[str, list[int]]:
        topology = self.topology
        assert topology.prefect and topology.seaweedfs and topology.pg and topology.pg.process and topology.bridge
        return {
            "flow runs (workers or warm pool)": self.executor_pids(),
            "Prefect server": [topology.prefect.pid],
            "Postgres": [topology.pg.process.pid],
            "SeaweedFS": [topology.seaweedfs.pid],
            "clamd": [p for m in topology.machines.values() if (p := clamd_pid(m.clamd_dir)) is not None],
            "bridge": [topology.bridge.pid] if self.workers else [],
        }

    def upload(self, key: str, data: bytes) -> PackageRef:
        return self.topology.upload(self.store, key, data)

    def stop(self) -> None:
        self.workers.clear()
        self.topology.stop()


def _list(store: Store, prefix: str) -> list[str]:
    pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"].endswith(".json")]


def parse_configs(text: str) -> list[tuple[int, str]]:
    """``1s,2s,3p,1w`` -> [(1, "s"), (2, "s"), (3, "p"), (1, "w")].

    ``s``: work-pool workers sharing one clamd; ``p``: one clamd per worker; ``w``: no workers, the
    serving process's warm executor (last: it takes the deployment off the work pool).
    """
    out = []
    for item in text.split(","):
        item = item.strip()
        if len(item) < 2 or not item[:-1].isdigit() or item[-1] not in "spw":
            raise argparse.ArgumentTypeError(f"bad configuration {item!r} (e.g. 2s, 3p, 1w)")
        out.append((int(item[:-1]), item[-1]))
    out.sort(key=lambda c: c[1] == "w")
    return out


def label(m: Measure, topology: str = "local") -> str:
    """The row's name: what ran the flow runs, on which topology."""
    if m.config.endswith("w"):
        what = f"1 machine, serve's warm executor ({m.warm_limit} processes), no workers"
        if topology == "local":
            what = f"1 worker(s), serve's warm executor ({m.warm_limit} processes), no workers"
    elif topology == "local":
        what = f"{m.workers} worker(s), " + ("one clamd per worker" if m.clamd_per_worker else "one shared clamd")
    else:
        what = f"{m.workers} machine(s) of work-pool workers, one clamd each"
    return what + (" (production topology)" if topology != "local" else "")


def report(measures: list[Measure], results: Results, topology: str = "local") -> None:
    header = (f"{'config':7}{'verdicts':>9}{'last s':>8}{'pkg/h':>8}{'steady/h':>9}{'busy cores':>11}"
              f"{'API p50':>9}{'API p95':>9}{'load':>6}{'run MiB':>8}  CPU s per package")
    print(header)
    base = measures[0].per_hour if measures else 0.0
    for m in measures:
        per_pkg = ", ".join(f"{k} {v / max(1, m.verdicts):.2f}" for k, v in m.cpu.items())
        print(f"{m.config:7}{m.verdicts:>5}/{m.packages:<3}{m.last_verdict_s:>8.1f}{m.per_hour:>8.0f}"
              f"{m.steady_per_hour:>9.0f}{m.machine_busy_cores:>11.2f}{m.api_median_s * 1000:>7.0f}ms"
              f"{m.api_p95_s * 1000:>7.0f}ms{m.load_avg:>6.1f}{m.peak_run_mib:>8.0f}  {per_pkg}")
        note = (f"{m.verdicts}/{m.packages} verdicts in {m.last_verdict_s:.0f} s; steady {m.steady_per_hour:.0f}/h; "
                f"machine busy {m.machine_busy_cores:.2f} cores; Prefect API p95 {m.api_p95_s * 1000:.0f} ms; "
                f"peak MiB: flow run {m.peak_run_mib:.0f}, worker {m.peak_executor_mib:.0f}; CPU s/package: " + per_pkg)
        results.add(f"packages per hour, {label(m, topology)}", m.per_hour, unit="packages/h",
                    peak_mib=m.peak_run_mib or None,
                    ratio=m.per_hour / base if base else None, reference=label(measures[0], topology), note=note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=parse_configs, default=parse_configs("1s,2s,3s,3p,1w"),
                        help="workers and clamd mode per run: Ns shared clamd, Np one clamd per worker")
    parser.add_argument("--packages", type=int, default=16, help="burst size per configuration")
    parser.add_argument("--warm-limit", type=int, default=WORKER_LIMIT, help="processes of the warm pool (1w)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, Prefect database)")
    parser.add_argument("--topology", choices=("local", "production"), default="local",
                        help="local: moto + SQLite Prefect; production: the stack's parts (SeaweedFS, Postgres...)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="proofcheck-scale-"))
    bench_class = ProductionBench if args.topology == "production" else ScaleBench
    bench = bench_class(root, args.packages, args.warm_limit)
    results = Results()
    measures: list[Measure] = []
    try:
        bench.start()
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: bench.api_url}):
            for workers, mode in args.configs:
                measure = bench.measure(workers, mode == "p", warm=mode == "w")
                measures.append(measure)
                print(f"{measure.config}: {measure.verdicts}/{measure.packages} verdicts, last after "
                      f"{measure.last_verdict_s:.1f} s", flush=True)
    finally:
        bench.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nmachine: {os.cpu_count()} cores; worker limit {WORKER_LIMIT} flow runs; burst of {args.packages}; "
          f"topology {args.topology}")
    report(measures, results, args.topology)
    results.write(args.json)
    return 0 if measures and all(m.verdicts == m.packages for m in measures) else 1


if __name__ == "__main__":
    sys.exit(main())

