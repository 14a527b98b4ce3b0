"""Value sets (JDV) as the NOS publishes them: IHE SVS XML or FHIR JSON, loaded into one shape.

J66 (JDV_J66-TypeCode-DMP) ships with the project (``jdv/`` in the repository, mirrored as package data
in ``validators/cda/data/``) so that the document type is checked even before any ruleset sync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from validators.safexml import parse_xml

J66_NAME = "JDV_J66-TypeCode-DMP"
J66_OID = "1.2.250.1.213.1.1.5.7"
SVS_NS = "urn:ihe:iti:svs:2008"
MAX_VALUESET_BYTES = 32 * 1024 * 1024

# FHIR code system URLs of the NOS and their CDA codeSystem identifiers.
FHIR_SYSTEMS = {
    "http://loinc.org": "2.16.840.1.113883.6.1",
    "https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire": (
        "1.2.250.1.213.1.1.4.12"
    ),
    "https://mos.esante.gouv.fr/NOS/TRE_A12-NomenclatureASTM/FHIR/TRE-A12-NomenclatureASTM": "ASTM",
}


class ValueSetError(ValueError):
    """A value-set file that cannot be read as SVS XML or FHIR JSON."""


@dataclass(frozen=True)
class ValueSet:
    oid: str
    version: str
    name: str
    concepts: dict[tuple[str, str], str] = field(default_factory=dict)  # (codeSystem, code) -> display

    def __contains__(self, key: object) -> bool:
        return key in self.concepts

    def display(self, code_system: str, code: str) -> str | None:
        return self.concepts.get((code_system, code))

    def codes(self) -> frozenset[str]:
        return frozenset(code for _, code in self.concepts)


def _system_oid(system: str) -> str:
    if system in FHIR_SYSTEMS:
        return FHIR_SYSTEMS[system]
    return system.removeprefix("urn:oid:")


def parse_svs(data: bytes) -> ValueSet:
    parsed = parse_xml(data, max_bytes=MAX_VALUESET_BYTES)
    if not parsed.ok:
        reason = parsed.problem.reason if parsed.problem else "unreadable"
        raise ValueSetError(f"not a readable SVS file: {reason}")
    node = parsed.root.find(f"{{{SVS_NS}}}ValueSet")
    if node is None:
        raise ValueSetError("no SVS ValueSet element")
    concepts = {
        (c.get("codeSystem", ""), c.get("code", "")): c.get("displayName", "")
        for c in node.iter(f"{{{SVS_NS}}}Concept")
    }
    version = node.get("version") or node.get("dateMaj") or node.get("revisionDate") or ""
    return ValueSet(node.get("id", ""), version, node.get("displayName", ""), concepts)


def parse_fhir(data: bytes) -> ValueSet:
    try:
        resource: Any = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueSetError(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(resource, dict) or resource.get("resourceType") != "ValueSet":
        raise ValueSetError("not a FHIR ValueSet resource")
    concepts: dict[tuple[str, str], str] = {}
    for include in (resource.get("compose") or {}).get("include") or []:
        system = _system_oid(str(include.get("system", "")))
        for concept in include.get("concept") or []:
            concepts[(system, str(concept.get("code", "")))] = str(concept.get("display", ""))
    # An expansion lists the same concepts flat; it is what some servers return instead of compose.
    for item in (resource.get("expansion") or {}).get("contains") or []:
        key = (_system_oid(str(item.get("system", ""))), str(item.get("code", "")))
        concepts.setdefault(key, str(item.get("display", "")))
    oid = ""
    for identifier in resource.get("identifier") or []:
        value = str(identifier.get("value", ""))
        if value.startswith("urn:oid:"):
            oid = value.removeprefix("urn:oid:")
    return ValueSet(
        oid, str(resource.get("version", "")), str(resource.get("name") or resource.get("id", "")), concepts
    )


def load(path: Path) -> ValueSet:
    """A value set from an SVS XML or a FHIR JSON file (chosen by content, not by name)."""
    if path.stat().st_size > MAX_VALUESET_BYTES:
        raise ValueSetError(f"{path.name} is over {MAX_VALUESET_BYTES} bytes")
    data = path.read_bytes()
    return parse_fhir(data) if data.lstrip()[:1] == b"{" else parse_svs(data)


def shipped_j66_path() -> Path:
    """Where the J66 snapshot is: the ``j66`` setting, else the repository's jdv/, else the package data."""
    from validators.settings import EngineSettings

    return EngineSettings.load().j66 or bundled_j66_path()


def bundled_j66_path() -> Path:
    """The J66 snapshot the project ships: the repository's jdv/, else the package data."""
    repo_copy = Path(__file__).resolve().parents[2] / "jdv" / f"{J66_NAME}.xml"
    if repo_copy.is_file():
        return repo_copy
    return Path(__file__).resolve().parent / "data" / f"{J66_NAME}.xml"


@cache
def _load_cached(path: str, mtime_ns: int) -> ValueSet:
    return load(Path(path))


def j66(path: Path | None = None) -> ValueSet:
    """The J66 value set (cached per file version)."""
    target = path or shipped_j66_path()
    return _load_cached(str(target), target.stat().st_mtime_ns)
