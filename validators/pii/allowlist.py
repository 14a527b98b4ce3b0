"""The allow-list of published fictitious identities, by value (project data, extensible by settings).

The OID alone does not tell a test patient from a real one (the ANS's own examples put a fictitious
NIR under the production OID), so known fictitious values are recognised one by one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from validators.pii.nir import nir_key, structure_problem

log = logging.getLogger(__name__)

ENV_VAR = "PROOFCHECK_PII_ALLOWLIST"
_MAX_FILE_BYTES = 1024 * 1024


class AllowlistError(ValueError):
    """An allow-list file that cannot be used (the check then reports itself as not run)."""


@dataclass(frozen=True)
class Allowlist:
    values: frozenset[str]  # normalised 15-character NIRs

    @property
    def bodies(self) -> frozenset[str]:
        return frozenset(v[:13] for v in self.values)

    def allows(self, body: str, key: str | None) -> bool:
        if key is None:
            return body.upper() in self.bodies
        return (body + key).upper() in self.values


def _entries(text: str, origin: str) -> list[str]:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise AllowlistError(f"{origin}: not valid YAML") from exc
    items = document.get("identities", []) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise AllowlistError(f"{origin}: expected a list under 'identities'")
    values = []
    for index, item in enumerate(items):
        raw = str(item.get("nir", "")) if isinstance(item, dict) else ""
        value = "".join(raw.split()).upper()
        # The message names the entry's position only: the value itself is personal-data shaped.
        if len(value) != 15 or structure_problem(value[:13]) or not value[13:].isdigit():
            raise AllowlistError(f"{origin}: entry {index + 1} is not a 15-character NIR")
        if int(value[13:]) != nir_key(value[:13]):
            raise AllowlistError(f"{origin}: entry {index + 1} has a wrong key")
        values.append(value)
    return values


@cache
def _builtin() -> tuple[str, ...]:
    text = resources.files("validators").joinpath("data/fictitious_identities.yaml").read_text("utf-8")
    return tuple(_entries(text, "fictitious_identities.yaml"))


def _extra_paths(settings: Mapping[str, Any]) -> list[Path]:
    pii = settings.get("pii") if isinstance(settings.get("pii"), Mapping) else {}
    configured = pii.get("allowlist", []) if isinstance(pii, Mapping) else []
    if isinstance(configured, (str, Path)):
        configured = [configured]
    paths = [Path(p) for p in configured]
    env = os.environ.get(ENV_VAR, "")
    paths.extend(Path(p) for p in env.split(os.pathsep) if p)
    return paths


def load_allowlist(settings: Mapping[str, Any] | None = None, extra: Iterable[str] = ()) -> Allowlist:
    """The built-in list plus the files named in settings/env and ``extra`` values."""
    values = set(_builtin())
    for path in _extra_paths(settings or {}):
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise AllowlistError(f"{path.name}: allow-list file over {_MAX_FILE_BYTES} bytes")
        values.update(_entries(path.read_text("utf-8"), path.name))
    values.update("".join(v.split()).upper() for v in extra)
    return Allowlist(frozenset(values))


__all__ = ["ENV_VAR", "Allowlist", "AllowlistError", "load_allowlist"]
