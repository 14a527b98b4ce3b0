"""Office and friends: VBA/XLM macros, remote templates and external OLE links, DDE fields, RTF embedded
objects, SYLK files and encrypted documents.

OLE2 files (.doc, .xls, .ppt) go through oletools' olevba in memory (nothing written, nothing run);
OOXML and OpenDocument are zips whose member names and relationship parts tell macros and external
targets apart without parsing the macros themselves; RTF goes through oletools' rtfobj.
"""

from __future__ import annotations

import io
import logging
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, FileTooLargeError, ProofFile, Validator
from validators.model import CheckState, Finding, Location
from validators.safexml import parse_xml

MAX_OFFICE_BYTES = 128 * 1024 * 1024
MAX_PART_BYTES = 8 * 1024 * 1024  # a relationships or document part read for links and fields
MAX_MEMBERS = 10_000
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OFFICE_EXTENSIONS = frozenset(
    {
        "doc",
        "dot",
        "docx",
        "docm",
        "dotx",
        "dotm",
        "xls",
        "xlt",
        "xlsx",
        "xlsm",
        "xlsb",
        "xltm",
        "xla",
        "xlam",
        "ppt",
        "pot",
        "pps",
        "pptx",
        "pptm",
        "potm",
        "ppsm",
        "ppam",
        "odt",
        "ods",
        "odp",
        "ott",
        "rtf",
        "slk",
        "msg",
    }
)
# External relationship types that make the application fetch something when the document opens
# (hyperlinks, which wait for a click, are left alone).
_EXTERNAL_RELATIONSHIPS = {
    "attachedTemplate": ("ssi.office.remote-template", "template"),
    "subDocument": ("ssi.office.remote-template", "sub-document"),
    "frame": ("ssi.office.remote-template", "frame"),
    "oleObject": ("ssi.office.external-link", "OLE"),
    "package": ("ssi.office.external-link", "package"),
    "image": ("ssi.office.external-link", "image"),
    "externalLinkPath": ("ssi.office.external-link", "workbook"),
}
_DDE = re.compile(rb"(?:instrText[^>]*>|instr=\"|ddeService=\")\s*(DDEAUTO|DDE)\b", re.IGNORECASE)
_RTF_OBJECT = re.compile(rb"\\object\b|\\objdata\b|\\objemb\b|\\objlink\b|\\objautlink\b", re.IGNORECASE)

for _name in ("olevba", "rtfobj", "oletools", "olefile", "crypto", "msoffcrypto"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)  # oletools logs document details at WARNING


def office_kind(file: ProofFile) -> str | None:
    head = file.head(16)
    if head.startswith(OLE_MAGIC):
        return "ole"
    if head.startswith(b"{\\rt"):
        return "rtf"
    if head.startswith(b"ID;") or file.extension == "slk":
        return "sylk"
    if head.startswith(b"PK\x03\x04") and (
        file.extension in _OFFICE_EXTENSIONS
        or "officedocument" in file.media_type
        or "opendocument" in file.media_type
        or "ms-" in file.media_type
    ):
        return "zip"
    return None


def _ole(data: bytes, name: str) -> Iterator[Finding]:
    import olefile
    from oletools import crypto
    from oletools.olevba import VBA_Parser

    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        encrypted = crypto.is_encrypted(ole)  # bytes would be taken for a file name: pass the parsed file
    if encrypted:
        yield rules.finding("ssi.office.encrypted")
        return
    parser = VBA_Parser(name or "document", data=data)
    try:
        if parser.detect_vba_macros():
            yield rules.finding("ssi.office.macro", kind="VBA")
        if parser.detect_xlm_macros():
            yield rules.finding("ssi.office.macro", kind="Excel 4 (XLM)")
    finally:
        parser.close()


def _relationships(xml: bytes) -> Iterator[tuple[str, str]]:
    """(relationship type suffix, target) of each external relationship of a .rels part."""
    parsed = parse_xml(xml, max_bytes=MAX_PART_BYTES)
    if not parsed.ok:
        return
    for element in parsed.root.iter("{*}Relationship"):
        if (element.get("TargetMode") or "").lower() == "external":
            yield (element.get("Type") or "").rsplit("/", 1)[-1], element.get("Target") or ""


def _short_target(target: str) -> str:
    scheme, sep, rest = target.partition("://")
    host = rest.split("/", 1)[0] if sep else ""
    return f"{scheme}://{host}/…" if sep else target[:40]


def _zip(stream: Any) -> Iterator[Finding]:
    with zipfile.ZipFile(stream) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            return  # the archive check refuses it (ssi.archive.too-many-entries)
        names = [info.filename for info in infos]
        lowered = [name.lower() for name in names]
        if any(name.endswith("vbaproject.bin") or name.endswith("vbadata.xml") for name in lowered):
            yield rules.finding("ssi.office.macro", kind="VBA")
        if any("/macrosheets/" in name or name.startswith("xl/macrosheets") for name in lowered):
            yield rules.finding("ssi.office.macro", kind="Excel 4 (XLM)")
        if any(name.startswith(("basic/", "scripts/")) for name in lowered):
            yield rules.finding("ssi.office.macro", kind="OpenDocument (Basic/script)")
        for info in infos:
            name = info.filename
            if info.file_size > MAX_PART_BYTES:
                continue
            where = Location(entry=name)
            if name.lower().endswith(".rels"):
                for kind, target in _relationships(archive.read(info)):
                    if kind in _EXTERNAL_RELATIONSHIPS:
                        rule_id, label = _EXTERNAL_RELATIONSHIPS[kind]
                        yield rules.finding(rule_id, where, kind=label, target=_short_target(target))
            elif name.lower().endswith(".xml") and not name.lower().startswith("customxml/"):
                match = _DDE.search(archive.read(info))
                if match is not None:
                    yield rules.finding("ssi.office.dde", where, field=match[1].decode().upper())


def _rtf(data: bytes) -> Iterator[Finding]:
    from oletools.rtfobj import RtfObjParser

    parser = RtfObjParser(data)
    parser.parse()
    kinds = sorted(
        {
            (obj.class_name or b"?").decode("latin-1", "replace").strip("\0") or "?"
            for obj in parser.objects
            if obj.is_ole
        }
        | {"package" for obj in parser.objects if obj.is_package}
    )
    count = len(parser.objects)
    if count == 0 and _RTF_OBJECT.search(data):
        count, kinds = 1, ["unparsed object"]
    if count:
        yield rules.finding("ssi.office.rtf-object", count=str(count), kind=", ".join(kinds) or "raw data")


def _sylk(data: bytes) -> Iterator[Finding]:
    formulas = re.search(rb"^C;[^\r\n]*;E", data, re.MULTILINE) is not None
    macro = re.search(rb"EXEC\(|CALL\(|REGISTER\(|auto_open", data, re.IGNORECASE) is not None
    detail = " with macro functions" if macro else (" with formulas" if formulas else "")
    yield rules.finding("ssi.office.sylk", detail=detail)


class OfficeValidator(Validator):
    name: ClassVar[str] = "ssi-office"
    rules: ClassVar[tuple[str, ...]] = (
        "ssi.office.macro",
        "ssi.office.remote-template",
        "ssi.office.external-link",
        "ssi.office.dde",
        "ssi.office.rtf-object",
        "ssi.office.sylk",
        "ssi.office.encrypted",
        "system.check-not-run",
    )
    reads_settings: ClassVar[tuple[str, ...]] = ()
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 90.0

    def applies_to(self, file: ProofFile) -> bool:
        return office_kind(file) is not None

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        kind = office_kind(file)
        try:
            data = file.read(MAX_OFFICE_BYTES)
        except FileTooLargeError:
            return CheckResult(
                state=CheckState.NOT_RUN, detail="over the size limit: not inspected"
            )
        try:
            if kind == "ole":
                findings = list(_ole(data, file.name))
            elif kind == "rtf":
                findings = list(_rtf(data))
            elif kind == "sylk":
                findings = list(_sylk(data))
            else:
                findings = list(_zip(io.BytesIO(data)))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error, lzma.LZMAError, NotImplementedError,
                RuntimeError):  # zipfile: corrupt deflate/LZMA data, unknown method, encrypted member
            # The structure is broken for the parser: macros and links were not inspected.
            return CheckResult(state=CheckState.NOT_RUN, detail="the document could not be parsed")
        return CheckResult(findings=findings)
