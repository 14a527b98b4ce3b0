"""A CDA document as the checks see it: parsed safely, unwrapped from an auto-présentable stylesheet."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from lxml import etree

from validators.safexml import SafeParseResult, parse_xml

HL7_NS = "urn:hl7-org:v3"
XSL_NS = "http://www.w3.org/1999/XSL/Transform"
CLINICAL_DOCUMENT = f"{{{HL7_NS}}}ClinicalDocument"
XDS_SD_TEMPLATE = "1.3.6.1.4.1.19376.1.2.20"  # CDA R2 level 1 (XDS-SD): no volet


def line_of(element: etree._Element) -> int | None:
    """The element's line in the file (lxml-stubs type sourceline loosely)."""
    value: Any = element.sourceline
    return int(value) if value else None


def text_of(element: etree._Element) -> str:
    return "".join(str(part) for part in element.itertext())


@dataclass(frozen=True)
class CdaDocument:
    """The ClinicalDocument element in its own tree (line numbers are those of the file)."""

    tree: etree._ElementTree
    wrapped: bool  # found inside an auto-présentable xsl:stylesheet

    @property
    def root(self) -> etree._Element:
        return self.tree.getroot()

    def template_ids(self) -> list[tuple[str, str]]:
        return [
            (node.get("root", ""), node.get("extension", ""))
            for node in self.root.findall(f"{{{HL7_NS}}}templateId")
        ]

    @property
    def is_level1(self) -> bool:
        return any(root == XDS_SD_TEMPLATE for root, _ in self.template_ids())

    def serialize(self) -> bytes:
        return bytes(etree.tostring(self.tree, encoding="UTF-8", xml_declaration=True))


@dataclass(frozen=True)
class Loaded:
    parsed: SafeParseResult
    document: CdaDocument | None
    root_name: str  # local name of the file's root element, for findings


def find_clinical_document(parsed: SafeParseResult) -> CdaDocument | None:
    root = parsed.root
    if root.tag == CLINICAL_DOCUMENT:
        return CdaDocument(parsed.tree, wrapped=False)  # type: ignore[arg-type]
    if root.tag.startswith(f"{{{XSL_NS}}}"):
        inner = next(root.iter(CLINICAL_DOCUMENT), None)
        if inner is not None:
            # deepcopy keeps libxml2 line numbers, so findings point into the original file.
            return CdaDocument(etree.ElementTree(copy.deepcopy(inner)), wrapped=True)
    return None


def load(data: bytes, *, max_bytes: int, max_depth: int) -> Loaded:
    parsed = parse_xml(data, max_bytes=max_bytes, max_depth=max_depth)
    if not parsed.ok:
        return Loaded(parsed, None, "")
    root = parsed.root
    local = etree.QName(root).localname if isinstance(root.tag, str) else ""
    return Loaded(parsed, find_clinical_document(parsed), local)
