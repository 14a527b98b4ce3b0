"""``proofcheck config``: the effective configuration, and the check every ``proofcheck`` command runs first.

The engine's settings are always there; the pipeline adds its own (``flows.cli`` calls
``register_settings``, as it plugs ``verify`` into S3). Each setting is printed with its value and where
it came from (``default``, ``env VARIABLE``, ``file PATH``), secrets masked. A setting that is wrong
stops every other command at start with one line naming it (exit 2); ``config`` lists them all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from validators.settings import EngineSettings
from validators.settingslib import CONFIG_ENV, SettingsBase, SettingsError

EXIT_OK, EXIT_USAGE = 0, 2
PREFIX = "PROOFCHECK_"

# Settings objects by section, in the order they are shown; the pipeline registers its own.
_LOADERS: dict[str, Callable[[], SettingsBase]] = {"engine": EngineSettings.load}
_CLASSES: dict[str, type[SettingsBase]] = {"engine": EngineSettings}


def register_settings(section: str, cls: type[SettingsBase], loader: Callable[[], SettingsBase]) -> None:
    """Another layer's settings, checked at start and shown by ``proofcheck config``."""
    _LOADERS[section] = loader
    _CLASSES[section] = cls


def load_all() -> dict[str, SettingsBase]:
    """Every registered settings object from this process's environment; SettingsError with every problem."""
    loaded: dict[str, SettingsBase] = {}
    problems: list[str] = []
    for section, loader in _LOADERS.items():
        try:
            loaded[section] = loader()
        except SettingsError as exc:
            problems.extend(p for p in exc.problems if p not in problems)  # the pipeline re-reads the engine's
    if problems:
        raise SettingsError(problems)
    return loaded


def known_variables() -> set[str]:
    from validators.config_doc import OTHER_VARIABLES

    names = {variable for cls in _CLASSES.values() for _, variable, _ in cls.variables()}
    names |= {cls.json_env for cls in _CLASSES.values() if cls.json_env}
    return names | {CONFIG_ENV} | {v.name for v in OTHER_VARIABLES}


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """``PROOFCHECK_*`` variables no setting reads: a typo is otherwise silently ignored."""
    env = os.environ if env is None else env
    return sorted(name for name in env if name.startswith(PREFIX) and name not in known_variables())


def check_at_start() -> EngineSettings:
    """What every command but ``config`` runs first: SettingsError stops it (one line, exit 2).

    Returns the engine's settings, which the command passes down.
    """
    loaded = load_all()
    for name in unknown_variables():
        print(f"proofcheck: warning: {name} is not a proofcheck setting (ignored; see `proofcheck config`)",
              file=sys.stderr)
    engine = loaded["engine"]
    assert isinstance(engine, EngineSettings)
    return engine


def _rows(loaded: Mapping[str, SettingsBase]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for section, settings in loaded.items():
        rows.extend(r for r in settings.rows() if r["setting"].startswith(f"{section}."))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def cmd_config(args: argparse.Namespace) -> int:
    try:
        loaded = load_all()
        problems: list[str] = []
    except SettingsError as exc:
        loaded, problems = {}, exc.problems
    unknown = unknown_variables()
    if args.format == "json":
        print(json.dumps({"settings": _rows(loaded), "problems": problems, "unknown_variables": unknown},
                         ensure_ascii=False, indent=2))
        return EXIT_USAGE if problems else EXIT_OK
    for problem in problems:
        print(f"proofcheck config: {problem}", file=sys.stderr)
    table = [("setting", "value", "source", "variable")]
    table += [(r["setting"], _text(r["value"]), r["source"], r["variable"] or "") for r in _rows(loaded)]
    if len(table) > 1:
        widths = [min(max(len(row[i]) for row in table), 48) for i in range(3)]
        for row in table:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    for name in unknown:
        print(f"{name}: not a proofcheck setting (ignored)", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


def register(sub: Any) -> None:
    config = sub.add_parser(
        "config", help="the effective configuration: every setting, its value and where it came from"
    )
    config.add_argument("--format", choices=("text", "json"), default="text")
    config.set_defaults(handler=cmd_config, checks_settings=False)


__all__ = ["check_at_start", "load_all", "register", "register_settings", "unknown_variables"]
