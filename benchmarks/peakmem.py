"""Peak memory of one process, measured so that nothing of the process that started it is counted.

``resource.getrusage(...).ru_maxrss`` is not that: Linux keeps a process's maxrss across ``exec`` and
starts a forked child's from its parent's resident size, so a measurement run from a benchmark that had
built a 1 GB file reports the benchmark's peak, not its own ("+0 MiB" over the imports). Two readings
that are per process instead, used together so that one confirms the other:

- **VmHWM** (resident high-water mark) from ``/proc/<pid>/status``, read by the measured process at the
  end of its work (``vm_hwm_mib()``), or by a watcher while the process is alive. It belongs to the address
  space, which ``exec`` creates anew: a fresh interpreter starts from zero.
- **ru_maxrss reported by wait4() to a small launcher**: ``python -S -I benchmarks/peakmem.py --report F
  -- CMD...`` imports almost nothing, spawns CMD and writes CMD's ru_maxrss and its own VmHWM to F. What
  CMD inherits is at most the launcher's own peak (~10 MiB), which is written beside the figure.

``launch(argv)`` runs a command through the launcher and returns both its output and the readings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

METHOD = ("VmHWM of the measuring process itself (/proc/self/status, fresh interpreter); confirmed by "
          "wait4() ru_maxrss through a small launcher")


def _status_kib(field: str, pid: int | str = "self") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident memory of a live process (this one by default), in MiB; None where /proc is absent."""
    kib = _status_kib("VmHWM", pid)
    return None if kib is None else kib / 1024


def vm_rss_mib(pid: int | str = "self") -> float | None:
    kib = _status_kib("VmRSS", pid)
    return None if kib is None else kib / 1024


@dataclass(frozen=True)
class Launched:
    returncode: int
    stdout: str
    stderr: str
    child_maxrss_mib: float  # wait4() of the child, by the launcher
    launcher_hwm_mib: float  # the most the child's figure can hold of someone else


def launch(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
           timeout: float | None = None) -> Launched:
    """Run ``argv`` through the small launcher; its output and the launcher's readings."""
    with tempfile.TemporaryDirectory(prefix="peakmem-") as folder:
        report = Path(folder) / "report.json"
        done = subprocess.run([sys.executable, "-S", "-I", __file__, "--report", str(report), "--", *argv],
                              capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False)
        facts = json.loads(report.read_text("utf-8"))
    return Launched(done.returncode, done.stdout, done.stderr, facts["maxrss_kib"] / 1024,
                    facts["launcher_hwm_kib"] / 1024)


def _launcher(argv: list[str]) -> int:
    """The launcher's own body: spawn, wait4, write the readings (nothing imported beyond os and json)."""
    report, command = argv[argv.index("--report") + 1], argv[argv.index("--") + 1:]
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    with open(report, "w", encoding="utf-8") as out:
        json.dump({"maxrss_kib": usage.ru_maxrss, "launcher_hwm_kib": _status_kib("VmHWM") or 0}, out)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(_launcher(sys.argv))
