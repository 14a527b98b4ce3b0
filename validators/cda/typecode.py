"""The document type: ClinicalDocument/code (@code + @codeSystem) must be in JDV_J66-TypeCode-DMP.

A displayName different from J66 is a warning (the ANS examples themselves differ in apostrophes and
plurals). Where the proof's expectations name the document types it expects (``document_types``: codes,
or ``codeSystem|code`` pairs), a document of another type is reported.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from validators import rules
from validators.cda.document import HL7_NS, CdaDocument, line_of
from validators.cda.valuesets import ValueSet
from validators.model import Finding, Location

RULES = ("cda.typecode", "cda.typecode-display", "cda.typecode-missing", "cda.typecode-unexpected")


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("’", "'")
    return " ".join(text.split()).casefold()


def _expected(expectations: Mapping[str, Any]) -> list[str]:
    raw = expectations.get("document_types")
    if not raw:
        return []
    if isinstance(raw, str):
        return [raw]
    return [str(item) for item in raw] if isinstance(raw, Iterable) else []


def check_code(
    code: str,
    code_system: str,
    display: str | None,
    j66: ValueSet,
    expectations: Mapping[str, Any],
    location: Location,
) -> list[Finding]:
    """Findings for one type code (used for the CDA itself and for XDM metadata)."""
    findings: list[Finding] = []
    if not code or not code_system:
        return [rules.finding("cda.typecode-missing", location)]
    known = j66.display(code_system, code)
    if known is None:
        findings.append(
            rules.finding("cda.typecode", location, code=code, code_system=code_system, version=j66.version)
        )
    elif display is not None and _normal(display) != _normal(known):
        findings.append(rules.finding("cda.typecode-display", location, code=code, expected=known))
    expected = _expected(expectations)
    if expected and code not in expected and f"{code_system}|{code}" not in expected:
        findings.append(
            rules.finding("cda.typecode-unexpected", location, code=code, expected=" or ".join(expected))
        )
    return findings


def check(document: CdaDocument, j66: ValueSet, expectations: Mapping[str, Any]) -> list[Finding]:
    node = document.root.find(f"{{{HL7_NS}}}code")
    if node is None:
        return [rules.finding("cda.typecode-missing", Location(xpath="/ClinicalDocument/code"))]
    location = Location(line=line_of(node), xpath="/ClinicalDocument/code")
    return check_code(
        node.get("code", ""), node.get("codeSystem", ""), node.get("displayName"), j66, expectations, location
    )
