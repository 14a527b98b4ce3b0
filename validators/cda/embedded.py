"""Every file a CDA document carries, decoded in memory and handed to the engine as a child.

A CDA document carries files as ED values: the level-1 body (``component/nonXMLBody/text``), pictures and
documents in ``observationMedia/value``, any ``value xsi:type="ED"``, ``text`` or ``thumbnail`` with
``representation="B64"``, and inline markup (an ED of type text/html or image/svg+xml) written as text.
Each becomes an ``Embedded`` child named after its place and media type (``observationMedia-3.png``),
checked like any proof file (format, SSI, personal data). ``compression`` is honoured: DF (raw deflate;
a zlib or gzip stream declared DF is read too), GZ, ZL and BZ.

Bounded: the number of payloads, the encoded size before decoding, the inflated size of each and of all
together. A payload that is not decoded (over a limit, invalid base64, broken or unknown compression) is
an ``ssi.cda.payload-not-inspected`` error, never silence; an invalid level-1 body is also ``cda.embedded``
(the recipient cannot read the document).
"""

from __future__ import annotations

import base64
import binascii
import bz2
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from validators import rules
from validators.base import Embedded
from validators.cda.document import HL7_NS, CdaDocument, line_of
from validators.model import Finding, Location
from validators.safexml import local_name

MAX_EMBEDDED_BYTES = 64 * 1024 * 1024  # one payload, decoded and inflated
MAX_TOTAL_BYTES = 256 * 1024 * 1024  # all payloads of one document
MAX_PAYLOADS = 100
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what rb"\s" matches, deleted by bytes.translate (C, no regex)
_EXTENSIONS = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
    "image/svg+xml": "svg",
    "text/plain": "txt",
    "text/rtf": "rtf",
    "text/html": "html",
    "application/xhtml+xml": "xhtml",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/csv": "csv",
    "application/dicom": "dcm",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
    "application/zip": "zip",
}
# Inline (TXT) ED content worth a check of its own: markup a viewer renders. Plain text and XML
# (references) stay part of the document, which the other checks read whole.
_INLINE_ACTIVE = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/rtf")
RULES = ("cda.embedded", "ssi.cda.payload-not-inspected")


class _NotInspected(Exception):
    """The payload was not decoded: the reason is the message, in fixed words (the French report maps them);
    what varies (a limit, an attribute) is the evidence. No content in either."""

    def __init__(self, reason: str, evidence: str | None = None) -> None:
        super().__init__(reason)
        self.evidence = evidence


@dataclass
class _Budget:
    max_bytes: int
    total_left: int
    counts: dict[str, int] = field(default_factory=dict)

    def name(self, owner: str, media: str) -> str:
        self.counts[owner] = self.counts.get(owner, 0) + 1
        return f"{owner}-{self.counts[owner]}.{_EXTENSIONS.get(media, 'bin')}"


def _path(element: etree._Element) -> str:
    parts = [local_name(node.tag) for node in (element, *element.iterancestors()) if isinstance(node.tag, str)]
    return "/" + "/".join(reversed(parts))


def _own_text(element: etree._Element) -> str:
    """The element's own character data: an ED's thumbnail and reference children are not its content."""
    return (element.text or "") + "".join(child.tail or "" for child in element)


def _owner(element: etree._Element) -> str:
    parent = element.getparent()
    parent_name = local_name(parent.tag) if parent is not None else ""
    name = local_name(element.tag)
    if parent_name in ("nonXMLBody", "observationMedia") or name == "thumbnail":
        return parent_name if name != "thumbnail" else "thumbnail"
    return f"{parent_name}-{name}" if parent_name else name


def _is_payload(element: etree._Element) -> bool:
    """An ED carrying a file: base64, the level-1 body, or inline markup of an active type."""
    if not isinstance(element.tag, str):
        return False
    if (element.get("representation") or "").upper() == "B64":
        return True  # in any namespace: extension elements (lab:, pharm:...) are rendered too
    if not element.tag.startswith(f"{{{HL7_NS}}}"):
        return False
    parent = element.getparent()
    if local_name(element.tag) == "text" and parent is not None and parent.tag == f"{{{HL7_NS}}}nonXMLBody":
        return True
    media = (element.get("mediaType") or "").lower()
    typed_ed = (element.get(XSI_TYPE) or "").rsplit(":", 1)[-1] == "ED" or local_name(element.tag) in ("text", "value")
    return typed_ed and media.startswith(_INLINE_ACTIVE) and _own_text(element).strip() != ""


def _bunzip(data: bytes, limit: int) -> bytes:
    unpacker = bz2.BZ2Decompressor()
    try:
        out = unpacker.decompress(data, max_length=limit + 1)
    except (OSError, ValueError) as exc:
        raise _NotInspected("its bzip2 data is corrupt") from exc
    if len(out) > limit or (not unpacker.eof and not unpacker.needs_input):
        raise _NotInspected("it inflates past the size limit (decompression bomb)", f"{limit} bytes")
    if not unpacker.eof:
        raise _NotInspected("its bzip2 data is truncated")
    return out


def _inflate(data: bytes, compression: str, limit: int) -> bytes:
    if compression == "BZ":
        return _bunzip(data, limit)
    # DF is raw deflate (RFC 1951); producers also write zlib or gzip streams under it (47: either).
    attempts = {"DF": (-15, 47), "ZL": (15, -15), "GZ": (31, -15)}[compression]
    for wbits in attempts:
        unpacker = zlib.decompressobj(wbits)
        try:
            out = unpacker.decompress(data, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or unpacker.unconsumed_tail:
            raise _NotInspected("it inflates past the size limit (decompression bomb)", f"{limit} bytes")
        if unpacker.eof:
            return out
    raise _NotInspected(f"its {compression}-compressed data is corrupt or truncated")


def _decode(element: etree._Element, budget: _Budget) -> bytes:
    raw = _own_text(element).encode("utf-8")
    if (element.get("representation") or "TXT").upper() == "B64":
        compact = raw.translate(None, _WHITESPACE)
        if len(compact) * 3 // 4 > budget.max_bytes:
            raise _NotInspected("it is larger than the size limit", f"{budget.max_bytes} bytes")
        try:
            data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _NotInspected("its base64 is not valid") from exc
    else:
        data = raw
        if len(data) > budget.max_bytes:
            raise _NotInspected("it is larger than the size limit", f"{budget.max_bytes} bytes")
    compression = (element.get("compression") or "").upper()
    if compression and data:
        if compression not in ("DF", "GZ", "ZL", "BZ"):
            raise _NotInspected("its compression is not supported", f"compression={compression[:8]!r}")
        data = _inflate(data, compression, min(budget.max_bytes, budget.total_left))
    if len(data) > budget.total_left:
        raise _NotInspected("the document's embedded files are over the total limit")
    budget.total_left -= len(data)
    return data


# Every element that could be a payload, found in C: those with a representation or media type, and the
# level-1 body's text. _is_payload decides on these few (walking all elements in Python cost 3x the XSD;
# taking every narrative <text> as a candidate, as this did, cost a quarter of the XSD).
_CANDIDATES = etree.XPath(
    "descendant-or-self::*[@representation or @mediaType] | descendant-or-self::h:nonXMLBody/h:text",
    namespaces={"h": HL7_NS},
)


def _payloads(document: CdaDocument) -> Iterator[etree._Element]:
    found = _CANDIDATES(document.root)
    assert isinstance(found, list)
    return (element for element in found if isinstance(element, etree._Element) and _is_payload(element))


def extract(
    document: CdaDocument,
    max_bytes: int = MAX_EMBEDDED_BYTES,
    *,
    max_payloads: int = MAX_PAYLOADS,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    check_time: Callable[[], None] = lambda: None,
) -> tuple[list[Embedded], list[Finding]]:
    children: list[Embedded] = []
    findings: list[Finding] = []
    budget = _Budget(max_bytes=max_bytes, total_left=max_total_bytes)
    count = 0
    for element in _payloads(document):
        count += 1
        if count > max_payloads:
            continue  # counted below, never decoded
        check_time()
        media = (element.get("mediaType") or "application/octet-stream").split(";")[0].strip().lower()
        owner = _owner(element)
        name = budget.name(owner, media)
        location = Location(line=line_of(element), xpath=_path(element))
        level1 = owner == "nonXMLBody"
        try:
            data = _decode(element, budget)
        except _NotInspected as exc:
            findings.append(rules.finding("ssi.cda.payload-not-inspected", location, where=name, reason=str(exc),
                                          evidence=exc.evidence))
            if level1:
                findings.append(rules.finding("cda.embedded", location, reason=str(exc), evidence=exc.evidence))
            continue
        if not data:
            if level1:
                findings.append(rules.finding("cda.embedded", location, reason="the body is empty"))
            continue
        children.append(Embedded(name=name, data=data, origin=f"cda:{owner}"))
    if count > max_payloads:
        findings.append(rules.finding(
            "ssi.cda.payload-not-inspected", where="ED values",
            reason="the document carries more embedded files than the limit; those past it were not decoded",
            evidence=f"{count} embedded files, limit {max_payloads}",
        ))
    return children, findings
