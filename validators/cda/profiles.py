"""Which Schematrons a ruleset holds: the CI-SIS volets and the five transverse ANS profiles.

Volets are ``schematrons/CI-SIS_<volet>_<version>.sch``. The profiles are those the ANS applies to every
document besides its volet (its TestContenuCDA scripts and Gazelle): IHE, ModelesDeContenusCDA,
Modeles_ANS, StructurationMinimale, terminologies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILE_FILES: dict[str, str] = {
    "IHE": "schematrons/profils/IHE.sch",
    "ModelesDeContenusCDA": "schematrons/profils/CI-SIS_ModelesDeContenusCDA.sch",
    "Modeles_ANS": "schematrons/profils/CI-SIS_Modeles_ANS.sch",
    "StructurationMinimale": "schematrons/profils/structurationMinimale/ASIP-STRUCT-MIN-StrucMin.sch",
    "terminologies": "schematrons/profils/terminologies/schematron/terminologie.sch",
}
TERMINOLOGY_DIR = "schematrons/profils/terminologies/terminologie"
UCUM_OID = "2.16.840.1.113883.6.8"
_TERMINOLOGY_LINE = re.compile(r"^\s*([0-9][0-9.]*)\s*==>\s*(.+?)\s*$")


@dataclass(frozen=True)
class SchematronRoot:
    name: str
    kind: str  # "volet" or "profile"
    sch: str  # path relative to the ruleset tree


def discover(tree: Path) -> list[SchematronRoot]:
    roots = [
        SchematronRoot(path.stem.removeprefix("CI-SIS_"), "volet", path.relative_to(tree).as_posix())
        for path in sorted((tree / "schematrons").glob("CI-SIS_*.sch"))
        if path.is_file()
    ]
    roots += [
        SchematronRoot(name, "profile", rel) for name, rel in PROFILE_FILES.items() if (tree / rel).is_file()
    ]
    return roots


def terminology_systems(tree: Path) -> dict[str, str]:
    """Code systems the terminology profile knows (OID -> name), from its Terminologies.txt."""
    listing = tree / TERMINOLOGY_DIR / "Terminologies.txt"
    if not listing.is_file():
        return {}
    systems = {}
    for line in listing.read_text("utf-8", errors="replace").splitlines():
        match = _TERMINOLOGY_LINE.match(line)
        if match:
            systems[match.group(1)] = match.group(2)
    return systems


def terminology_file(tree: Path, oid: str) -> Path:
    return tree / TERMINOLOGY_DIR / (f"{oid}.xml" if oid == UCUM_OID else f"{oid}.rdf")


def global_gaps(tree: Path, entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Gaps that are not one schematron's: absent profiles, terminology files absent."""
    gaps: list[dict[str, Any]] = []
    present = {entry["name"] for entry in entries.values() if entry["kind"] == "profile"}
    for name in PROFILE_FILES:
        if name not in present:
            gaps.append(
                {
                    "scope": name,
                    "kind": "missing-profile",
                    "detail": PROFILE_FILES[name],
                    "effect": "cannot-run",
                }
            )
    for oid, name in sorted(terminology_systems(tree).items()):
        if not terminology_file(tree, oid).is_file():
            # The profile passes codes silently when the file is absent: the checker must say so.
            gaps.append(
                {
                    "scope": "terminologies",
                    "kind": "missing-terminology",
                    "detail": f"{name} ({oid})",
                    "oid": oid,
                    "effect": "partial",
                }
            )
    for entry in entries.values():
        for gap in entry.get("gaps", []):
            gaps.append({"scope": entry["name"], **gap})
        if entry.get("status") == "failed":
            gaps.append(
                {
                    "scope": entry["name"],
                    "kind": "compile-failed",
                    "detail": entry.get("error", ""),
                    "effect": "cannot-run",
                }
            )
    return gaps
