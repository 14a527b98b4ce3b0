"""``proofcheck report VERDICT.json``: a stored verdict rendered again (the French HTML report by default).

The verdict is read with ``validators.verdict_io`` (schema checked, an older document upgraded, a broken
one refused with one line saying where and why), so a report is only ever made from a whole verdict.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from validators.verdict_io import VerdictDocumentError, read_verdict_file


def cmd_report(args: argparse.Namespace) -> int:
    from validators.cli import EXIT_PASS, EXIT_USAGE, UsageError, _renderer

    if args.output and Path(args.output).is_dir():
        raise UsageError(f"--output is a folder, expected a file path: {args.output}")
    try:
        stored = read_verdict_file(args.verdict)
    except OSError as exc:
        raise UsageError(f"cannot read {args.verdict}: {exc.strerror or type(exc).__name__}") from None
    except VerdictDocumentError as exc:
        print(f"proofcheck: {args.verdict}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if stored.upgraded:
        print(f"proofcheck: {args.verdict}: older document read ({', '.join(stored.upgraded)})", file=sys.stderr)
    # JSON is the stored document itself (its pipeline sections kept); the others render the verdict.
    text = stored.to_bytes().decode("utf-8") if args.format == "json" else _renderer(args.format)(stored.verdict)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_PASS


def register(sub: Any) -> None:
    from validators.cli import REPORT_FORMATS

    report = sub.add_parser("report", help="render a stored verdict again (French HTML report by default)")
    report.add_argument("verdict", help="a verdict document (.json) as the pipeline or dry-run stored it")
    report.add_argument("--format", choices=REPORT_FORMATS, default="html")
    report.add_argument("--output", "-o", help="write the report to this file instead of standard output")
    report.set_defaults(handler=cmd_report)
