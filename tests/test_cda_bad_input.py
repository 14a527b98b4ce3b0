"""Bad input through the CDA paths (issue 3): a hostile PDF inside a level-1 CDA, a Schematron that throws,
hostile or broken IHE_XDM archives. Each gives findings, no crash, in bounded time."""

from __future__ import annotations

import hashlib
import io
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from fixtures import cda_docs, hostile
from validators.archive import ArchiveValidator
from validators.base import CheckContext, ProofFile
from validators.cda import CdaSchematronValidator, CdaValidator, ruleset_info
from validators.cda.xdm import XdmValidator
from validators.engine import Engine
from validators.model import CheckState
from validators.ssi.pdf import PdfValidator

BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>"""


def proof_file(data: bytes, name: str = "doc.xml", media_type: str = "text/xml") -> ProofFile:
    return ProofFile(
        path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), media_type=media_type, data=data
    )


def test_hostile_pdf_inside_a_level1_document_is_reported_on_the_child(ruleset_settings: dict[str, Any]) -> None:
    pdf = hostile.pdf("/OpenAction 7 0 R", ("<< /S /JavaScript /JS (app.alert(1)) >>",))
    engine = Engine([CdaValidator(ruleset_settings), PdfValidator()], ruleset=ruleset_info(ruleset_settings))
    verdict = engine.check_file(proof_file(cda_docs.level1_document(pdf)))
    assert len(verdict.children) == 1
    child = verdict.children[0]
    assert child.media_type == "application/pdf"
    assert any(f.rule.startswith("ssi.pdf") for f in child.findings), child.findings
    # The CDA document itself is fine: XSD and type pass, only the embedded file is hostile.
    assert not any(f.rule.startswith(("cda.", "system.")) for f in verdict.findings), verdict.findings


def test_schematron_that_throws_is_a_ruleset_gap_not_a_pass(synced_rulesets: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(synced_rulesets, store)
    xsl = next(store.glob("*/tree")) / "schematrons/profils/CI-SIS_Modeles_ANS.xsl"
    xsl.write_text(
        '<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
        '<xsl:template match="/"><xsl:sequence select="error((), \'broken rule\')"/></xsl:template>'
        "</xsl:stylesheet>",
        "utf-8",
    )
    settings = {"rulesets_dir": str(store), "cda_profiles": ("Modeles_ANS",)}
    data = cda_docs.vaccination_history()
    started = time.monotonic()
    result = CdaSchematronValidator(settings).check(proof_file(data), CheckContext())
    assert time.monotonic() - started < 120
    gaps = [f for f in result.findings if f.rule == "system.ruleset-gap"]
    assert gaps and "failed on this document" in gaps[0].message
    assert result.state is CheckState.PARTIAL  # the volet ran; the profile is named as not run
    assert result.detail is not None and "Modeles_ANS" in result.detail


def xdm(metadata: bytes, document: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata)
        archive.writestr("IHE_XDM/SUBSET01/DOC0001.XML", document)
    return buffer.getvalue()


def test_xdm_with_hostile_metadata_is_an_ssi_error() -> None:
    file = proof_file(xdm(BILLION_LAUGHS, b"<x/>"), "export.zip", "application/zip")
    result = XdmValidator({}).check(file, CheckContext())
    assert [f.rule for f in result.findings] == ["ssi.xml.entity"]
    assert result.children == []


def test_truncated_document_in_an_xdm_archive_is_reported_once(ruleset_settings: dict[str, Any]) -> None:
    metadata = (
        b'<r xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:ExtrinsicObject>'
        b'<rim:Slot name="URI"><rim:ValueList><rim:Value>DOC0001.XML</rim:Value></rim:ValueList></rim:Slot>'
        b"</rim:ExtrinsicObject></r>"
    )
    truncated = cda_docs.vaccination_history()[:5000]
    engine = Engine(
        [ArchiveValidator.from_settings({}), CdaValidator(ruleset_settings), XdmValidator({})],
        ruleset=ruleset_info(ruleset_settings),
    )
    verdict = engine.check_file(proof_file(xdm(metadata, truncated), "export.zip", "application/zip"))
    members = [f for f in verdict.iter_files() if f.path.endswith("DOC0001.XML")]
    assert len(members) == 1
    assert [f.rule for f in members[0].findings] == ["cda.xml"]
    # The archive's own check: no typeCode in the metadata.
    assert any(f.rule == "cda.xdm" and "typeCode" in f.message for f in verdict.findings)
