"""Survive the known defects of the published ANS Schematron tree, and record what cannot be fixed.

Fixed: include paths that differ from file names only in case (written on Windows); value-set files
referenced under a name that differs only in case or ``-``/``_``; the ART-DECOR ``voc-<OID>-DYNAMIC.xml``
files of the structuration-minimale profile, derived from the SVS file of the same OID.
Recorded as gaps: includes whose target is missing or not a file (the include is dropped, so the rest of
the schematron still runs: partial coverage), value sets that are nowhere in the tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from validators.safexml import parse_xml

SCH_NS = "http://purl.oclc.org/dsdl/schematron"
SVS_NS = "urn:ihe:iti:svs:2008"
MAX_SCH_BYTES = 32 * 1024 * 1024

# A literal file path to a value set (or an ART-DECOR vocabulary) inside a rule, quoted in XPath.
_VALUESET_LITERAL = re.compile(
    r"""['"]((?:\.\./|include/)[^'"<>]*?(?:jeuxDeValeurs/[^'"<>]+|voc-[^'"<>]+\.xml))['"]"""
)
_VOC_OID = re.compile(r"voc-([0-9.]+)-DYNAMIC\.xml$")


@dataclass
class RepairReport:
    fixes: list[dict[str, str]] = field(default_factory=list)
    missing_includes: dict[str, list[str]] = field(default_factory=dict)  # sch file -> missing hrefs
    includes: dict[str, list[str]] = field(default_factory=dict)  # sch file -> included sch files


def _rel(path: Path, tree: Path) -> str:
    return path.relative_to(tree).as_posix()


def _inside(path: Path, tree: Path) -> bool:
    try:
        path.resolve().relative_to(tree.resolve())
    except ValueError:
        return False
    return True


def resolve_case_insensitive(base: Path, href: str, tree: Path) -> Path | None:
    """The existing file ``href`` names relative to ``base``, matching each segment without case."""
    current = base
    for part in Path(href).parts:
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        exact = current / part
        if exact.exists():
            current = exact
            continue
        if not current.is_dir():
            return None
        wanted = _norm(part)
        matches = [entry for entry in current.iterdir() if _norm(entry.name) == wanted]
        if len(matches) != 1:
            return None
        current = matches[0]
    if not current.is_file() or current.stat().st_size == 0 or not _inside(current, tree):
        return None
    return current


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def _relative_href(target: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(target, base)).as_posix()


def _repair_includes(sch: Path, tree: Path, report: RepairReport) -> None:
    parsed = parse_xml(sch.read_bytes(), max_bytes=MAX_SCH_BYTES)
    if not parsed.ok or parsed.tree is None:
        return
    changed = False
    included: list[str] = []
    for node in list(parsed.root.iter(f"{{{SCH_NS}}}include")):
        href = node.get("href") or ""
        target = sch.parent / href
        if target.is_file() and target.stat().st_size > 0 and _inside(target, tree):
            included.append(_rel(target.resolve(), tree.resolve()))
            continue
        found = resolve_case_insensitive(sch.parent, href, tree)
        if found is not None:
            node.set("href", _relative_href(found, sch.parent))
            included.append(_rel(found.resolve(), tree.resolve()))
            report.fixes.append({"kind": "include-case", "file": _rel(sch, tree), "detail": href})
        else:
            # Dropping it lets the rest of the schematron compile; the gap is recorded per root.
            parent = node.getparent()
            if parent is not None:
                parent.remove(node)
            report.missing_includes.setdefault(_rel(sch, tree), []).append(href)
        changed = True
    report.includes[_rel(sch, tree)] = included
    if changed:
        parsed.tree.write(str(sch), xml_declaration=True, encoding="UTF-8")


def closure(root: str, report: RepairReport) -> list[str]:
    """Every schematron file ``root`` includes, directly or not (root first)."""
    seen: list[str] = []
    stack = [root]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        stack.extend(report.includes.get(current, []))
    return seen


def _svs_by_oid(tree: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for svs in (tree / "jeuxDeValeurs").glob("*.xml"):
        head = svs.read_bytes()[:4096]
        match = re.search(rb'<ValueSet[^>]*\sid="([0-9.]+)"', head)
        if match:
            found.setdefault(match.group(1).decode(), svs)
    return found


def _artdecor_from_svs(svs: Path, oid: str) -> bytes:
    """The ART-DECOR vocabulary layout the structuration-minimale rules read, from an SVS file."""
    parsed = parse_xml(svs.read_bytes(), max_bytes=MAX_SCH_BYTES)
    # A prefixed root keeps the children in no namespace, as ART-DECOR writes them (xmlns="").
    root = etree.Element("{urn:hl7-org:v3}valueSets", nsmap={"hl7": "urn:hl7-org:v3"})
    value_set = etree.SubElement(root, "valueSet", id=oid)
    concept_list = etree.SubElement(value_set, "conceptList")
    if parsed.ok:
        for concept in parsed.root.iter(f"{{{SVS_NS}}}Concept"):
            etree.SubElement(
                concept_list,
                "concept",
                code=concept.get("code", ""),
                codeSystem=concept.get("codeSystem", ""),
                displayName=concept.get("displayName", ""),
            )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _valueset_gaps(
    root_sch: str, files: Iterable[str], tree: Path, svs_by_oid: dict[str, Path], report: RepairReport
) -> list[str]:
    """Value-set paths the root's rules name that are missing: derive what can be, list the rest."""
    base = (tree / root_sch).parent
    missing: list[str] = []
    for name in files:
        text = (tree / name).read_text("utf-8", errors="replace")
        for literal in sorted(set(_VALUESET_LITERAL.findall(text))):
            target = base / literal
            if target.suffix == ".sch" or target.is_file() or not _inside(target, tree):
                continue
            voc = _VOC_OID.search(literal)
            source = svs_by_oid.get(voc.group(1)) if voc else None
            if voc and source is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_artdecor_from_svs(source, voc.group(1)))
                report.fixes.append({"kind": "valueset-derived", "file": literal, "detail": source.name})
                continue
            alike = resolve_case_insensitive(tree / "jeuxDeValeurs", Path(literal).name, tree)
            if alike is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(alike.read_bytes())
                report.fixes.append({"kind": "valueset-renamed", "file": literal, "detail": alike.name})
                continue
            missing.append(Path(literal).name)
    return sorted(set(missing))


def repair_tree(tree: Path, roots: Iterable[str]) -> tuple[RepairReport, dict[str, list[dict[str, Any]]]]:
    """Repair the schematron tree in place; return what was fixed and each root's gaps."""
    report = RepairReport()
    for sch in sorted((tree / "schematrons").rglob("*.sch")):
        if sch.is_file():
            _repair_includes(sch, tree, report)
    svs_by_oid = _svs_by_oid(tree)
    gaps: dict[str, list[dict[str, Any]]] = {}
    for root in roots:
        files = closure(root, report)
        root_gaps: list[dict[str, Any]] = []
        for name in files:
            for href in report.missing_includes.get(name, []):
                root_gaps.append({"kind": "missing-include", "detail": href, "effect": "partial"})
        present = [f for f in files if (tree / f).is_file()]
        for missing in _valueset_gaps(root, present, tree, svs_by_oid, report):
            root_gaps.append({"kind": "missing-valueset", "detail": missing, "effect": "on-use"})
        gaps[root] = root_gaps
    return report, gaps
