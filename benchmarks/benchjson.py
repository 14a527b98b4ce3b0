"""The machine-readable side of a benchmark script: rows collected while it runs, written as JSON at the end.

Every ``benchmarks/bench_*.py`` script keeps its human output and, when given ``--json PATH`` or the
environment variable ``BENCH_JSON`` (set by ``benchmarks/run_all.py``), also writes::

    {"<benchmark>": {"median": 0.12, "p95": 0.15, "unit": "s", "ratio": 1.2, "reference": "<what>",
                     "goal": "<= 1.5x raw lxml", "met": true, "peak_mib": 80.5, "note": "..."}}

``median`` is the measured value in ``unit`` (for a single measurement, that value and no ``p95``);
``ratio`` is ours / ``reference``, both measured in the same run; ``met`` is None when there is no goal.

A goal that was not measured is never dropped: ``missing(name, goal, reason)`` records it as not met with
its reason (a tool or an input absent), and ``expect(name, goal)`` declares a goal before measuring it, so
that a script stopped half-way still leaves it, not met, in the table. With ``Results(path)`` the file
is rewritten after every row, so what was measured before a crash or a timeout is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENV = "BENCH_JSON"


def p95(values: Sequence[float]) -> float:
    """The 95th percentile as bench_cda.py computes it (the value at rank round(0.95 * (n - 1)))."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", default=os.environ.get(ENV),
                        help=f"also write the numbers as JSON to PATH (default: ${ENV})")


NOT_MEASURED = "not measured: the script stopped before this measurement"


def number(value: float, unit: str) -> str:
    """A measured value as BENCHMARKS.md prints it (and as the documents quoting it must)."""
    if unit == "s":
        if value * 1e6 < 999.5:
            return f"{value * 1e6:.0f} µs"
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "fraction":
        return f"{value:.3f}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("packages/h", "MiB"):
        return f"{value:.0f} {unit}"
    return f"{value:.1f} {unit}"


def ratio_text(value: float) -> str:
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"  # 0.00036x, not 0.00x


class Results:
    """Rows of one benchmark script, in the order they were measured (or declared)."""

    def __init__(self, path: str | None = None) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.path = path

    def expect(self, name: str, goal: str, *, unit: str = "s") -> None:
        """Declare a goal before measuring it: until ``add`` replaces it, it counts as not met."""
        if name not in self.rows:
            self.add(name, None, unit=unit, goal=goal, met=False, note=NOT_MEASURED)

    def missing(self, name: str, goal: str | None, reason: str, *, unit: str = "s") -> None:
        """A measurement that could not be made (tool or input absent): its goal counts as not met."""
        self.add(name, None, unit=unit, goal=goal, met=False if goal else None, note=f"not measured: {reason}")

    def add(
        self,
        name: str,
        median: float | None,
        *,
        unit: str = "s",
        p95: float | None = None,
        ratio: float | None = None,
        reference: str | None = None,
        goal: str | None = None,
        met: bool | None = None,
        peak_mib: float | None = None,
        note: str | None = None,
    ) -> None:
        self.rows[name] = {
            "median": median, "p95": p95, "unit": unit, "ratio": ratio, "reference": reference,
            "goal": goal, "met": met, "peak_mib": peak_mib, "note": note,
        }
        if self.path:
            self.write(self.path)

    def add_timings(self, name: str, timings: Sequence[float], **fields: Any) -> None:
        """A row from repeated timings in seconds: their median and p95."""
        self.add(name, statistics.median(timings), p95=p95(timings) if len(timings) > 1 else None, **fields)

    def write(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps(self.rows, indent=2, ensure_ascii=False) + "\n", "utf-8")


__all__ = ["ENV", "NOT_MEASURED", "Results", "add_json_option", "number", "p95", "ratio_text"]
