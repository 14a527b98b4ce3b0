"""Run every benchmark of the project and publish their numbers in ``BENCHMARKS.md`` (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--output BENCHMARKS.md] [--timeout S]

Each ``benchmarks/bench_*.py`` script runs in its own process, with the options of ``OPTIONS`` below,
and ``BENCH_JSON`` pointing at a file where it writes its numbers (see ``benchmarks/benchjson.py``). Its
human output is echoed and kept in ``var/bench/<name>.log`` and in the published file. A script that
fails, times out or writes no JSON still gets its line in the table, saying so: nothing is dropped.

A new benchmark (e.g. ``bench_pipeline.py``, upload -> verdict latency and Prefect overhead) is picked up
by its name alone; to appear in the table with numbers it writes the same JSON to ``$BENCH_JSON``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from benchjson import ENV, number, ratio_text  # noqa: E402

# Options per script. Every script runs at its full documented sizes; a smaller size put here is shown in
# the table. bench_load.py is the long one (a burst of 100 realistic packages: about an hour on 2 shared
# cores); the others keep to minutes.
OPTIONS: dict[str, list[str]] = {
    "bench_intake.py": ["--repeat", "3"],
    "bench_pii.py": ["--log-mb", "50", "--ocr-images", "3"],
    "bench_ssi.py": ["--rounds", "5", "--video-mb", "10", "--bomb-gib", "1"],
    # Issue 6 asks for a burst of 50 (the script's default, run by hand); 25 keeps it short. The steady
    # state on realistic packages is bench_load.py's burst of 100.
    "bench_pipeline.py": ["--burst", "25"],
    "bench_load.py": ["--packages", "100", "--warm", "5", "--limit", "2"],
}
# Scripts run more than once, each time with other inputs: {script: {label: options}}. The label names
# the run in the tables and in BENCHMARKS.json ("bench_revalidate.py (captures)").
VARIANTS: dict[str, dict[str, list[str]]] = {
    "bench_revalidate.py": {
        "": [],  # 1000 light packages: what is left is the S3 round trips, the floor of any re-validation
        "captures": ["--packages", "200", "--screenshot", "1366x768"],  # captures with text: OCR runs
    },
}
DEFAULT_TIMEOUT = 900.0
# Scripts that need longer than DEFAULT_TIMEOUT (clamd loads the production-size set in ~2 minutes here).
TIMEOUTS: dict[str, float] = {"bench_load.py": 5 * 3600.0, "bench_ssi.py": 2400.0, "bench_scale.py": 1800.0}
JSON_NAME = "BENCHMARKS.json"  # the same numbers, for the documents that quote them (benchmarks/quote.py)


@dataclass
class ScriptRun:
    name: str
    args: list[str]
    seconds: float = 0.0
    status: str = "not run"
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    output: str = ""
    load: tuple[str, str] = ("", "")  # load average (1, 5, 15 min) when it started and when it ended

    @property
    def finished(self) -> bool:
        return self.status.startswith("ok")


SHOWN_LINES = 200  # per script in BENCHMARKS.md; the whole output stays in var/bench/<name>.log


def shown_output(output: str) -> str:
    """A script's output as the published file shows it: its last ``SHOWN_LINES`` lines."""
    lines = output.rstrip().splitlines()
    if len(lines) <= SHOWN_LINES:
        return "\n".join(lines)
    return "\n".join([f"[… {len(lines) - SHOWN_LINES} earlier lines in var/bench/, not shown …]",
                      *lines[-SHOWN_LINES:]])


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def discover(only: list[str]) -> list[Path]:
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        wanted = {n if n.endswith(".py") else f"{n}.py" for n in only}
        wanted |= {f"bench_{n}" for n in list(wanted) if not n.startswith("bench_")}
        scripts = [s for s in scripts if s.name in wanted]
    return scripts


def _echo(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"  {line}", end="", flush=True)
        lines.append(line)


def variants(script: Path) -> list[tuple[str, list[str]]]:
    """(run name, options) of each run of ``script``."""
    if script.name in VARIANTS:
        return [(f"{script.name} ({label})" if label else script.name, options)
                for label, options in VARIANTS[script.name].items()]
    return [(script.name, OPTIONS.get(script.name, []))]


def run_script(script: Path, timeout: float, logs: Path, name: str = "", options: list[str] | None = None
               ) -> ScriptRun:
    """Run one benchmark in its own process, echoing its output; never raises for the script's failures."""
    run = ScriptRun(name or script.name, OPTIONS.get(script.name, []) if options is None else options)
    timeout = max(timeout, TIMEOUTS.get(script.name, 0.0))
    start_load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-json-") as tmp:
        json_path = Path(tmp) / "numbers.json"
        env = {**os.environ, ENV: str(json_path), "PYTHONUNBUFFERED": "1"}
        started = time.perf_counter()
        lines: list[str] = []
        with subprocess.Popen([sys.executable, str(script), *run.args], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True) as proc:
            # A reader thread echoes the output, so that a script that hangs silently still times out.
            reader = threading.Thread(target=_echo, args=(proc, lines), daemon=True)
            reader.start()
            try:
                code = proc.wait(timeout=timeout)
                run.status = "ok" if code == 0 else f"failed (exit {code})"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the script and what it started (clamd)
                proc.wait()
                run.status = f"timed out after {timeout:.0f} s"
            reader.join(timeout=10)
        run.seconds = time.perf_counter() - started
        run.load = (start_load, load_average())
        run.output = "".join(lines)
        if json_path.is_file():
            try:
                run.rows = json.loads(json_path.read_text("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                run.status += f"; its JSON is unreadable ({type(exc).__name__})"
        elif run.status == "ok":
            run.status = "ok, but no machine-readable output (see its log)"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{re.sub(r'[^A-Za-z0-9_]+', '-', run.name.replace('.py', '')).strip('-')}.log").write_text(
        run.output, "utf-8")
    return run


# --- the machine -------------------------------------------------------------------------------------------


def _first(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1).strip() if found else None


def _read(path: str) -> str:
    try:
        return Path(path).read_text("utf-8", "replace")
    except OSError:
        return ""


def _command(*args: str) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else None


def machine() -> dict[str, str]:
    memory_kib = _first(r"^MemTotal:\s+(\d+)", _read("/proc/meminfo"))
    commit = _command("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD") or "unknown"
    dirty = _command("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return {
        "CPU": _first(r"^model name\s*:(.*)$", _read("/proc/cpuinfo")) or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory_kib) / 1024 / 1024:.1f} GiB" if memory_kib else "unknown",
        "system": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "ClamAV": _command("clamd", "--version") or _command("clamscan", "--version") or "not installed",
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


# --- the published table ---------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def table_rows(runs: list[ScriptRun]) -> list[str]:
    out = ["| benchmark | median | p95 | ratio | reference (same run) | goal | met | peak MiB | note |",
           "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        status = "" if run.finished else f"did not finish: {run.status}; its goals count as not met"
        out.append(f"| **{run.name}** | | | | | | | | {_cell(status)} |")
        for name, row in run.rows.items():
            unit = row.get("unit") or "s"
            median = number(row["median"], unit) if row.get("median") is not None else ""
            p95 = number(row["p95"], unit) if row.get("p95") is not None else ""
            ratio = ratio_text(row["ratio"]) if row.get("ratio") is not None else ""
            met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
            peak = f"{row['peak_mib']:.0f}" if row.get("peak_mib") is not None else ""
            cells = [name, median, p95, ratio, row.get("reference"), row.get("goal"), met, peak, row.get("note")]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return out


def goal_count(runs: list[ScriptRun]) -> tuple[int, int, int]:
    """(met, goals, not measured). A goal not measured (tool or input absent, script stopped) is not met;
    a script that did not finish and declared no goal counts as one goal not met, so it cannot vanish."""
    goals = [r for run in runs for r in run.rows.values() if r.get("met") is not None]
    met = sum(1 for r in goals if r["met"])
    unmeasured = sum(1 for r in goals if r.get("median") is None)
    silent = sum(1 for run in runs if not run.finished and not any(r.get("met") is not None for r in run.rows.values()))
    return met, len(goals) + silent, unmeasured + silent


def render(runs: list[ScriptRun], facts: dict[str, str], started: str, total: float) -> str:
    met, goals, unmeasured = goal_count(runs)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`benchmarks/run_all.py`) on {started}, in {total / 60:.1f} minutes "
        f"(wall time of the whole run). Do not edit by hand: run it again. The same numbers are in "
        f"`{JSON_NAME}`, which the README and the documents quote (`benchmarks/quote.py`).",
        "",
        "**Read the ratios first.** The machine is shared: two cores used at the same time by other work "
        "(see the load average), so absolute times are noisy from run to run; a ratio compares our code "
        "with its reference measured in the same run, on the same data, under the same noise. "
        "Goals come from the issues (#2 intake, #3 CDA, #4 SSI, #5 personal data, #6 pipeline); where an "
        "issue says only \"bounded\" or \"milliseconds\", the goal written here is our reading of it.",
        "",
        f"Goals met: {met} of {goals}" + (f" ({unmeasured} not measured: counted as not met, reason in the "
                                           "note)." if unmeasured else "."),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {_cell(value)} |" for key, value in facts.items()],
        "",
        "## Scripts",
        "",
        "| script | options | wall time | load average at start -> end | status |",
        "|---|---|---|---|---|",
        *[f"| {run.name} | {_cell(' '.join(run.args)) or '(defaults)'} | {run.seconds:.0f} s | "
          f"{run.load[0]} -> {run.load[1]} | {_cell(run.status)} |" for run in runs],
        "",
        "## Numbers",
        "",
        "median: the measured value (a single measurement when there is no p95); ratio: ours / reference, "
        "both measured in this run; peak MiB: how the script measured it is in the note: VmHWM of the "
        "process itself (a fresh interpreter, or a process read from /proc while it runs), or Python's peak "
        "allocations (filetype and reports). A row with no median was not measured: the note says why.",
        "",
        *table_rows(runs),
        "",
        "## Output of each script",
        "",
    ]
    for run in runs:
        lines += [f"<details><summary>{run.name} ({run.status})</summary>", "", "```", shown_output(run.output), "```",
                  "", "</details>", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], help="run only this script (repeatable)")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="where to write the table")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds allowed per script")
    parser.add_argument("--logs", default=str(ROOT / "var" / "bench"), help="folder of each script's log")
    args = parser.parse_args()
    scripts = discover(args.only)
    if not scripts:
        print("no benchmark script matches", file=sys.stderr)
        return 2
    facts = machine()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    began = time.perf_counter()
    runs = []
    for script in scripts:
        for name, options in variants(script):
            print(f"== {name} {' '.join(options)}", flush=True)
            run = run_script(script, args.timeout, Path(args.logs), name, options)
            print(f"== {name}: {run.status}, {run.seconds:.0f} s", flush=True)
            runs.append(run)
    facts["load average at end"] = load_average()
    total = time.perf_counter() - began
    output = Path(args.output)
    output.write_text(render(runs, facts, started, total) + "\n", "utf-8")
    met, goals, unmeasured = goal_count(runs)
    document = {"generated": started, "wall_seconds": round(total, 1), "machine": facts,
                "goals": {"met": met, "total": goals, "not_measured": unmeasured},
                "scripts": {run.name: {"options": run.args, "seconds": round(run.seconds, 1), "status": run.status,
                                       "load_start": run.load[0], "load_end": run.load[1], "rows": run.rows}
                            for run in runs}}
    (output.parent / JSON_NAME).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.output} and {JSON_NAME}: {met} of {goals} goals met, wall time {total / 60:.1f} min")
    if output.resolve() == (ROOT / "BENCHMARKS.md").resolve():
        # The README and the documents quote these numbers: rewrite their figures from the new file.
        subprocess.run([sys.executable, str(HERE / "quote.py")], cwd=ROOT, check=False)
    return 0 if all(run.finished for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
