"""CI-SIS schema validation (lxml/libxml2 against CDA_extended.xsd): ``cda.xsd`` findings with line and path.

libxml2 messages quote the offending value; values are masked (they may be personal data), names of
elements, attributes, types and facets are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

from lxml import etree

from validators import rules
from validators.model import Finding, Location

MAX_XSD_FINDINGS = 50
_QUOTED = re.compile(r"'([^']*)'")
# Words after which a quoted string is a schema name, not a document value.
_NAME_CONTEXT = ("Element", "attribute", "facet", "type", "pattern", "Expected is", "Expected is (", "one of")


def mask_values(message: str) -> str:
    """Keep schema names, replace quoted document values by '…'."""
    out: list[str] = []
    last = 0
    for match in _QUOTED.finditer(message):
        before = message[last : match.start()]
        out.append(before)
        keep = before.rstrip().endswith(_NAME_CONTEXT) or match.group(1).startswith("{")
        out.append(match.group(0) if keep else "'…'")
        last = match.end()
    out.append(message[last:])
    return " ".join("".join(out).split())[:300]


def _simplify_path(path: str | None) -> str | None:
    if not path:
        return None
    # libxml2 writes /*[local-name()='x' ...]; the prefix form is what readers of CDA expect.
    path = re.sub(r"\*\[local-name\(\)\s*=\s*'([^']+)'[^\]]*\]", r"\1", path)
    return path.replace("/*:", "/")


def validate(schema: etree.XMLSchema, tree: etree._ElementTree) -> list[Finding]:
    if schema.validate(tree):
        return []
    findings = []
    for error in list(cast(Iterable[Any], schema.error_log))[:MAX_XSD_FINDINGS]:
        findings.append(
            rules.finding(
                "cda.xsd",
                Location(
                    line=error.line or None, column=error.column or None, xpath=_simplify_path(error.path)
                ),
                reason=mask_values(error.message),
            )
        )
    return findings
