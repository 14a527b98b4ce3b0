"""The ``proofcheck`` command: dry run on local files, the rule catalogue, and the sub-commands of
the other layers (``rulesets`` from the CDA checks, ``serve``/``demo`` from the pipeline).

Exit codes (docs/architecture.md §3.3): 0 pass (or warnings without --strict), 1 fail or error verdict,
2 usage error, 3 warnings under --strict, 4 internal failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from validators import __version__, rules
from validators.settings import EngineSettings
from validators.settingslib import SettingsError

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_STRICT_WARNINGS = 3
EXIT_INTERNAL = 4

REPORT_FORMATS = ("json", "html", "sarif", "junit")

# Modules that add their own sub-commands through ``register(subparsers)``.
EXTENSION_MODULES = (
    "validators.config_cli",
    "validators.cda.cli",
    "validators.attest.cli",
    "validators.report.cli",
    "flows.cli",
)
# Top-level modules of the ``pipeline`` extra (tests/test_environment.py checks them against pyproject).
PIPELINE_MODULES = frozenset({"prefect", "boto3", "botocore", "psycopg", "sqlalchemy",
                              "starlette", "jinja2", "uvicorn", "argon2", "authlib", "httpx"})

log = logging.getLogger("proofcheck")


class UsageError(Exception):
    """A bad argument: one line to stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage; we want one clear line
        raise UsageError(message)


def _renderer(fmt: str) -> Callable[[Any], str]:
    module = importlib.import_module(f"validators.report.{'json_report' if fmt == 'json' else fmt}")
    render: Callable[[Any], str] = module.render
    return render


def _progress_bar(stream: Any) -> Callable[[int, int, str], None] | None:
    if not stream.isatty():
        return None

    def show(done: int, total: int, _path: str) -> None:
        if total < 20:
            return
        width = 30
        filled = int(width * done / total)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


def exit_code_for(status: str, strict: bool) -> int:
    if status in ("fail", "error"):
        return EXIT_FAIL
    if status == "warning" and strict:
        return EXIT_STRICT_WARNINGS
    return EXIT_PASS


def cmd_dry_run(args: argparse.Namespace) -> int:
    from validators.dryrun import dry_run

    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"no such file or folder: {args.path}")
    if args.output and Path(args.output).is_dir():
        raise UsageError(f"--output is a folder, expected a file path: {args.output}")
    verdict = dry_run(
        path, profiles=args.profile or None, settings=args.settings, progress=_progress_bar(sys.stderr)
    )
    text = _renderer(args.format)(verdict)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{verdict.package.name} {verdict.status.value} {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return exit_code_for(verdict.status.value, args.strict)


def cmd_rules(args: argparse.Namespace) -> int:
    from validators.report.catalogue_doc import render_markdown, render_text

    print(render_markdown() if args.format == "markdown" else render_text(), end="")
    return EXIT_PASS


def cmd_explain(args: argparse.Namespace) -> int:
    from validators.report.catalogue_doc import explain

    try:
        rule = rules.get(args.rule)
    except rules.UnknownRuleError:
        raise UsageError(f"unknown rule: {args.rule} (see `proofcheck rules`)") from None
    print(explain(rule), end="")
    return EXIT_PASS


def _settings_at_start() -> EngineSettings:
    from validators.config_cli import check_at_start

    return check_at_start()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="proofcheck", description="Machine checks of Ségur proof packages.")
    parser.add_argument("--version", action="version", version=f"proofcheck {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    dry = sub.add_parser("dry-run", help="check a proof package (zip or folder) locally, as the pipeline would")
    dry.add_argument("path", help="the package: a .zip file or a folder")
    dry.add_argument("--format", choices=REPORT_FORMATS, default="json")
    dry.add_argument("--output", "-o", help="write the report to this file instead of standard output")
    dry.add_argument(
        "--profile", action="append", metavar="NAME",
        help="a profile applied for (repeatable); overrides the manifest's",
    )
    dry.add_argument("--strict", action="store_true", help="exit 3 when the verdict has warnings")
    dry.set_defaults(handler=cmd_dry_run)

    rules_cmd = sub.add_parser("rules", help="list the rule catalogue")
    rules_cmd.add_argument("--format", choices=("text", "markdown"), default="text")
    rules_cmd.set_defaults(handler=cmd_rules)

    explain = sub.add_parser("explain", help="explain one rule")
    explain.add_argument("rule", help="a rule id, e.g. pii.nir")
    explain.set_defaults(handler=cmd_explain)

    for module_name in EXTENSION_MODULES:  # by name: the engine's source never imports the pipeline
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        # Every setting is read and checked once, here: a wrong one stops the command before it starts.
        args.settings = _settings_at_start() if getattr(args, "checks_settings", True) else None
        code: int = args.handler(args)
        return code
    except UsageError as exc:
        print(f"proofcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SettingsError as exc:
        print(f"proofcheck: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("proofcheck: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # never a traceback for a user; the type only (the text may quote content)
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in PIPELINE_MODULES:
            print(
                f"proofcheck: error: this command needs the pipeline install ({exc.name} is missing): "
                "pip install 'proofcheck[pipeline]'",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if log.isEnabledFor(logging.DEBUG):
            # Frames only: an exception's text may quote document content.
            sys.stderr.write("".join(traceback.format_tb(exc.__traceback__)))
        print(f"proofcheck: internal error ({type(exc).__name__}); re-run with -v for details", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
