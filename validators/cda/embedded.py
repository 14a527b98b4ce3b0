"""The file a level-1 CDA document carries in ``component/nonXMLBody/text`` (base64), decoded in memory.

It becomes an ``Embedded`` child, checked like any proof file (format, SSI, personal data). Bounded: the
encoded size is checked before decoding; base64 that does not decode is a ``cda.embedded`` finding.
"""

from __future__ import annotations

import base64
import binascii
import re

from validators import rules
from validators.base import Embedded
from validators.cda.document import HL7_NS, CdaDocument, line_of, text_of
from validators.model import Finding, Location

MAX_EMBEDDED_BYTES = 64 * 1024 * 1024
_WHITESPACE = re.compile(rb"\s+")
_EXTENSIONS = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tiff",
    "text/plain": "txt",
    "text/rtf": "rtf",
    "text/html": "html",
    "application/xml": "xml",
    "text/xml": "xml",
}
RULES = ("cda.embedded",)


def extract(
    document: CdaDocument, max_bytes: int = MAX_EMBEDDED_BYTES
) -> tuple[list[Embedded], list[Finding]]:
    children: list[Embedded] = []
    findings: list[Finding] = []
    for index, text in enumerate(document.root.iter(f"{{{HL7_NS}}}text"), start=1):
        parent = text.getparent()
        if parent is None or parent.tag != f"{{{HL7_NS}}}nonXMLBody":
            continue
        media = (text.get("mediaType") or "application/octet-stream").lower()
        representation = (text.get("representation") or "TXT").upper()
        location = Location(line=line_of(text), xpath="/ClinicalDocument/component/nonXMLBody/text")
        raw = text_of(text).encode("utf-8")
        if representation == "B64":
            compact = _WHITESPACE.sub(b"", raw)
            if len(compact) * 3 // 4 > max_bytes:
                findings.append(
                    rules.finding(
                        "cda.embedded", location, reason=f"it is larger than the {max_bytes}-byte limit"
                    )
                )
                continue
            try:
                data = base64.b64decode(compact, validate=True)
            except (binascii.Error, ValueError):
                findings.append(
                    rules.finding("cda.embedded", location, reason="the body is not valid base64")
                )
                continue
        else:
            data = raw
            if len(data) > max_bytes:
                findings.append(
                    rules.finding(
                        "cda.embedded", location, reason=f"it is larger than the {max_bytes}-byte limit"
                    )
                )
                continue
        if not data:
            findings.append(rules.finding("cda.embedded", location, reason="the body is empty"))
            continue
        name = f"nonXMLBody-{index}.{_EXTENSIONS.get(media, 'bin')}"
        children.append(Embedded(name=name, data=data, origin="cda:nonXMLBody"))
    return children, findings
