"""``proofcheck rulesets sync --from DIR_OR_URL | list | show [VERSION]``: the CDA ruleset store."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from validators.cda.store import RulesetNotFoundError, RulesetStore, RulesetVersion
from validators.cda.sync import DEFAULT_URL, TOTAL_DOWNLOAD_TIMEOUT, SyncError, sync

EXIT_OK = 0
EXIT_FAIL = 1


def _store(args: argparse.Namespace) -> RulesetStore:
    return RulesetStore(Path(args.store) if args.store else None)


def _summary(version: RulesetVersion) -> str:
    statuses = Counter(entry.get("status", "?") for entry in version.schematrons.values())
    counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    return (
        f"{version.version}  imported {version.manifest.get('imported_at', '?')}  "
        f"schematrons: {counts}  gaps: {len(version.gaps)}"
    )


def cmd_sync(args: argparse.Namespace) -> int:
    only = args.only.split(",") if args.only else None
    store = _store(args)
    try:
        result = sync(args.source, store, only=only, timeout=args.timeout, total_timeout=args.total_timeout)
    except SyncError as exc:
        print(f"proofcheck: rulesets sync failed: {exc}; {in_force(store)}", file=sys.stderr)
        return EXIT_FAIL
    state = "already present" if result.reused else "imported"
    print(f"{state}: {_summary(result.version)}")
    print(f"compile: {result.version.manifest.get('compile_seconds', 0)} s; total {result.seconds:.1f} s")
    print(_coverage_line(result.version))
    return EXIT_OK


def _coverage_line(version: RulesetVersion) -> str:
    found = (version.manifest.get("volet_map") or {}).get("coverage")
    if not found:
        return "volet map: not learned (a store synced before it existed: run `proofcheck rulesets sync` again)"
    line = (
        f"volet map: {found['found']} of {found['named_structured']} structured reference examples named after a "
        f"volet get it ({found['found_without_own_example']} without their own example); "
        f"{found['examples']} examples read"
    )
    if found["missed"]:
        line += f"; missed: {', '.join(found['missed'])}"
    return line


def _volet_line(name: str, facts: dict[str, Any]) -> str:
    parts = [
        f"templateIds {', '.join(facts.get('template_ids') or []) or '-'}",
        f"types {', '.join(facts.get('type_codes') or []) or '-'}",
        f"names {', '.join(facts.get('names') or []) or '-'}",
        f"examples {len(facts.get('examples') or [])}",
    ]
    return f"  {name}: {'; '.join(parts)}"


def in_force(store: RulesetStore) -> str:
    """What stays in use after a failed sync, in words."""
    current = store.latest()
    if current is None:
        return "no ruleset in force (CDA schema and Schematron checks report themselves not run)"
    return f"the ruleset in force stays {current.version}"


def cmd_list(args: argparse.Namespace) -> int:
    versions = _store(args).versions()
    if not versions:
        print("no ruleset synced yet: run `proofcheck rulesets sync --from DIR_OR_URL`", file=sys.stderr)
        return EXIT_FAIL
    for version in versions:
        print(_summary(version))
    return EXIT_OK


def _gap_line(gap: dict[str, Any]) -> str:
    effect, scope, kind = gap.get("effect", "?"), gap.get("scope", "?"), gap.get("kind", "?")
    return f"  [{effect}] {scope}: {kind} {gap.get('detail', '')}"


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        version = store.get(args.version) if args.version else store.latest()
    except RulesetNotFoundError:
        print(f"proofcheck: no ruleset {args.version} in {store.root}", file=sys.stderr)
        return EXIT_FAIL
    if version is None:
        print("no ruleset synced yet: run `proofcheck rulesets sync --from DIR_OR_URL`", file=sys.stderr)
        return EXIT_FAIL
    print(_summary(version))
    print(f"source: {version.manifest.get('source')}")
    for name, value in sorted(version.components.items()):
        print(f"component {name}: {value}")
    fixes = version.manifest.get("fixes") or []
    print(f"fixed on import: {len(fixes)}")
    for fix in fixes:
        print(f"  {fix['kind']}: {fix['file']} ({fix['detail']})")
    print(
        f"gaps: {len(version.gaps)} (cannot-run: a system error on affected documents; partial: a warning; "
        "on-use: a system error if a document reaches the rule)"
    )
    for gap in version.gaps:
        print(_gap_line(gap))
    print(_coverage_line(version))
    for name, facts in sorted(((version.manifest.get("volet_map") or {}).get("volets") or {}).items()):
        print(_volet_line(name, facts))
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``rulesets`` and its sub-commands to the ``proofcheck`` command."""
    parser = subparsers.add_parser(
        "rulesets", help="sync, list and inspect the CDA rulesets (ANS TestContenuCDA)"
    )
    parser.add_argument(
        "--store",
        help="ruleset store folder (default: $PROOFCHECK_RULESETS or "
        "${PROOFCHECK_HOME:-~/.local/share/proofcheck}/rulesets)",
    )
    sub = parser.add_subparsers(dest="rulesets_command", metavar="ACTION", required=True)
    sync_cmd = sub.add_parser(
        "sync", help="import a TestContenuCDA tree (folder or zip URL) as a new version"
    )
    sync_cmd.add_argument(
        "--from",
        dest="source",
        default=DEFAULT_URL,
        help=f"a folder or an http(s) URL of a zip archive (default: {DEFAULT_URL})",
    )
    sync_cmd.add_argument(
        "--only",
        help="compile only these schematrons now (comma-separated names); the others compile on first use",
    )
    sync_cmd.add_argument("--timeout", type=float, default=60.0, help="timeout of each network operation, seconds")
    sync_cmd.add_argument(
        "--total-timeout", type=float, default=TOTAL_DOWNLOAD_TIMEOUT, help="timeout of the whole download, seconds"
    )
    sync_cmd.set_defaults(handler=cmd_sync)
    list_cmd = sub.add_parser("list", help="list the synced versions, oldest first")
    list_cmd.set_defaults(handler=cmd_list)
    show_cmd = sub.add_parser("show", help="components, fixes and gaps of a version (default: the newest)")
    show_cmd.add_argument("version", nargs="?", help="a version name or digest prefix")
    show_cmd.set_defaults(handler=cmd_show)
