"""The figures the README and the documents quote, rewritten from ``BENCHMARKS.json`` (one source).

    .venv/bin/python benchmarks/quote.py           # rewrite every quoted figure from BENCHMARKS.json
    .venv/bin/python benchmarks/quote.py --check   # exit 1 if a figure differs or names no measured row

A figure is written in a document between two HTML comments that name the row of ``BENCHMARKS.json`` it
comes from (invisible once rendered)::

    <!-- bench bench_ssi.py / clamd load, the 2 test signatures / median -->0.12 s<!-- /bench -->

``median``, ``p95``, ``ratio`` and ``peak`` (MiB) print as ``BENCHMARKS.md`` prints them. Where a document
quotes figures, ``<!-- bench provenance --><!-- /bench -->`` says which run they come from: commit,
date, machine and load average. ``run_all.py`` calls this after each full run, and a test checks that
the documents agree with the file, so no figure is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from benchjson import number, ratio_text  # noqa: E402

SOURCE = ROOT / "BENCHMARKS.json"
DOCUMENTS = ("README.md", "docs/*.md", "flows/REVALIDATION.md", "docker/README.md", "benchmarks/README.md")
MARKER = re.compile(
    r"<!-- bench (?:(?P<provenance>provenance)|(?P<script>\S+(?: \([^)]*\))?) / (?P<row>.+?) / "
    r"(?P<field>median|p95|ratio|peak)) -->"
    r"(?P<value>.*?)<!-- /bench -->",
    re.DOTALL,
)


class QuoteError(ValueError):
    """A marker names no row, or no value, of BENCHMARKS.json."""


def provenance(data: dict[str, Any]) -> str:
    machine = data["machine"]
    return (f"`BENCHMARKS.md`: `make bench` at commit {machine['commit']} on {data['generated']}, "
            f"{data['wall_seconds'] / 60:.0f} minutes ({machine['CPU']}, {machine['cores']} cores, "
            f"{machine['memory']}, shared; load average {machine['load average at start']} at start, "
            f"{machine['load average at end']} at end)")


def figure(data: dict[str, Any], script: str, row_name: str, field: str) -> str:
    try:
        row = data["scripts"][script]["rows"][row_name]
    except KeyError:
        raise QuoteError(f"{script} / {row_name}: no such row in {SOURCE.name}") from None
    if field == "ratio":
        value = row.get("ratio")
        if value is None:
            raise QuoteError(f"{script} / {row_name}: no ratio")
        return ratio_text(value)
    if field == "peak":
        if row.get("peak_mib") is None:
            raise QuoteError(f"{script} / {row_name}: no peak memory")
        return f"{row['peak_mib']:.0f} MiB"
    value = row.get(field)
    if value is None:
        return "not measured" if field == "median" else "n/a"
    return number(value, row.get("unit") or "s")


def render(text: str, data: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        quoted = match["provenance"] is None
        value = figure(data, match["script"], match["row"], match["field"]) if quoted else provenance(data)
        return match[0][: match.start("value") - match.start()] + value + "<!-- /bench -->"

    return MARKER.sub(replace, text)


def documents(root: Path = ROOT) -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in root.glob(pattern)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on any difference")
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()
    data = json.loads(args.source.read_text("utf-8"))
    stale = []
    for path in documents():
        text = path.read_text("utf-8")
        try:
            rendered = render(text, data)
        except QuoteError as exc:
            print(f"{path.relative_to(ROOT)}: {exc}", file=sys.stderr)
            return 1
        if rendered != text:
            stale.append(path)
            if not args.check:
                path.write_text(rendered, "utf-8")
    for path in stale:
        print(f"{'differs' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
