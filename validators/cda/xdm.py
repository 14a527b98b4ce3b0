"""IHE_XDM archives: ``IHE_XDM/<SUBSET>/METADATA.XML`` parsed safely, the archive's metadata checked.

Every document URI must stay inside its subset folder and name a member of the archive; the XDS typeCode
must be in J66 and equal to the CDA document's own ClinicalDocument/code. This check returns no children:
the ``archive`` check already hands every zip member to the engine as an ``Embedded`` child, so each CDA
document of the archive gets every check a proof file gets (cda, cda-schematron, pii, ssi...) exactly
once; returning them here as well checked (and reported) each document twice. Members are read with a
decompressed-size limit, only to read their ClinicalDocument/code; nothing is written to disk.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, ClassVar

from lxml import etree

from validators import rules
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.cda import valuesets
from validators.cda.document import HL7_NS, load
from validators.cda.valueset_sync import j66_of
from validators.model import CheckState, Finding, Location
from validators.safexml import parse_xml
from validators.settings import EngineSettings

RIM_NS = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
TYPE_CODE_SCHEME = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_DOCUMENTS = 200
_METADATA = re.compile(r"^IHE_XDM/([^/]+)/METADATA\.XML$", re.IGNORECASE)


@dataclass(frozen=True)
class XdsDocument:
    uri: str
    type_code: str
    type_system: str


class _MemberTooLargeError(Exception):
    pass


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int = MAX_MEMBER_BYTES) -> bytes:
    if info.file_size > limit:
        raise _MemberTooLargeError(info.filename)
    with archive.open(info) as stream:
        data = stream.read(limit + 1)  # the declared size may lie: count what really comes out
    if len(data) > limit:
        raise _MemberTooLargeError(info.filename)
    return data


def metadata_members(names: list[str]) -> list[tuple[str, str]]:
    """(metadata member name, subset folder) for each IHE_XDM subset of the archive."""
    out = []
    for name in names:
        match = _METADATA.match(name)
        if match:
            out.append((name, f"IHE_XDM/{match.group(1)}"))
    return out


def parse_metadata(root: etree._Element) -> list[XdsDocument]:
    documents = []
    for extrinsic in root.iter(f"{{{RIM_NS}}}ExtrinsicObject"):
        uri = ""
        for slot in extrinsic.findall(f"{{{RIM_NS}}}Slot"):
            if slot.get("name") == "URI":
                uri = "".join(v.text or "" for v in slot.iter(f"{{{RIM_NS}}}Value")).strip()
        code = system = ""
        for classification in extrinsic.findall(f"{{{RIM_NS}}}Classification"):
            if classification.get("classificationScheme") == TYPE_CODE_SCHEME:
                code = classification.get("nodeRepresentation", "")
                for slot in classification.findall(f"{{{RIM_NS}}}Slot"):
                    if slot.get("name") == "codingScheme":
                        system = "".join(v.text or "" for v in slot.iter(f"{{{RIM_NS}}}Value")).strip()
        documents.append(XdsDocument(uri, code, system))
    return documents


def _escapes(uri: str) -> bool:
    path = PurePosixPath(uri)
    return (
        not uri
        or "\\" in uri
        or ":" in uri
        or path.is_absolute()
        or ".." in path.parts
        or uri.startswith("/")
    )


def _cda_code(data: bytes) -> tuple[str, str] | None:
    loaded = load(data, max_bytes=MAX_MEMBER_BYTES, max_depth=256)
    if loaded.document is None:
        return None
    node = loaded.document.root.find(f"{{{HL7_NS}}}code")
    return (node.get("code", ""), node.get("codeSystem", "")) if node is not None else ("", "")


def check_archive(archive: zipfile.ZipFile, j66: valuesets.ValueSet | None = None) -> list[Finding]:
    findings: list[Finding] = []
    infos = {info.filename: info for info in archive.infolist()}
    lower = {name.lower(): name for name in infos}
    j66 = j66 or valuesets.j66()
    for metadata_name, subset in metadata_members(list(infos)):
        where = Location(entry=metadata_name)
        try:
            parsed = parse_xml(_read_member(archive, infos[metadata_name]))
        except _MemberTooLargeError:
            findings.append(rules.finding("cda.xdm", where, reason="METADATA.XML is over the size limit"))
            continue
        if parsed.problem is not None:
            rule = parsed.problem.rule if parsed.problem.rule.startswith("ssi.") else "cda.xdm"
            findings.append(rules.finding(rule, where, reason=f"METADATA.XML: {parsed.problem.reason}"))
            continue
        documents = parse_metadata(parsed.root)
        if not documents:
            findings.append(rules.finding("cda.xdm", where, reason="METADATA.XML lists no document"))
        for document in documents[:MAX_DOCUMENTS]:
            findings.extend(_check_document(archive, infos, lower, subset, document, j66))
    return findings


def _check_document(
    archive: zipfile.ZipFile,
    infos: Mapping[str, zipfile.ZipInfo],
    lower: Mapping[str, str],
    subset: str,
    document: XdsDocument,
    j66: valuesets.ValueSet,
) -> list[Finding]:
    where = Location(entry=f"{subset}/{document.uri}" if document.uri else subset)
    if _escapes(document.uri):
        return [
            rules.finding("cda.xdm", where, reason="a document URI is empty or points outside the archive")
        ]
    findings = []
    if not document.type_code:
        findings.append(rules.finding("cda.xdm", where, reason="a document has no XDS typeCode"))
    elif j66.display(document.type_system, document.type_code) is None:
        findings.append(
            rules.finding(
                "cda.xdm",
                where,
                reason="the XDS typeCode is not in JDV_J66",
                evidence=f"{document.type_code} ({document.type_system}), JDV_J66 version {j66.version}",
            )
        )
    member = infos.get(f"{subset}/{document.uri}") or infos.get(
        lower.get(f"{subset}/{document.uri}".lower(), "")
    )
    if member is None:
        findings.append(
            rules.finding("cda.xdm", where, reason="the document METADATA.XML lists is not in the archive")
        )
        return findings
    try:
        data = _read_member(archive, member)
    except _MemberTooLargeError:
        findings.append(rules.finding("cda.xdm", where, reason="the document is over the size limit"))
        return findings
    own = _cda_code(data)
    if own is not None and document.type_code and own != (document.type_code, document.type_system):
        findings.append(
            rules.finding(
                "cda.xdm",
                where,
                reason="the XDS typeCode differs from the document's own code",
                evidence=f"{document.type_code} / {own[0]}",
            )
        )
    return findings


class XdmValidator(Validator):
    name: ClassVar[str] = "cda-xdm"
    rules: ClassVar[tuple[str, ...]] = ("cda.xdm", "ssi.xml.entity", "ssi.xml.external-dtd", "ssi.xml.limit")
    reads_settings: ClassVar[tuple[str, ...]] = ("rulesets_dir", "j66")
    reads_ruleset: ClassVar[tuple[str, ...]] = ("J66",)
    timeout: ClassVar[float] = 60.0

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        typed = EngineSettings.coerce(settings)
        self.store_root = typed.ruleset_store
        self.j66_snapshot = typed.j66 or valuesets.bundled_j66_path()  # resolved once, not per archive

    def applies_to(self, file: ProofFile) -> bool:
        if file.head(4)[:2] != b"PK":
            return False
        try:
            with file.open() as stream, zipfile.ZipFile(stream) as archive:
                return bool(metadata_members(archive.namelist()))
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):  # "zip file version 25.5" (unknown)
            return False  # not readable as a zip: the archive check reports why

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        try:
            with file.open() as stream, zipfile.ZipFile(stream) as archive:
                findings = check_archive(archive, j66_of(ctx.ruleset, self.store_root, self.j66_snapshot))
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
            return CheckResult(
                findings=[
                    rules.finding("cda.xdm", reason="the archive cannot be read", evidence=type(exc).__name__)
                ],
                state=CheckState.RAN,
            )
        return CheckResult(findings=findings)
