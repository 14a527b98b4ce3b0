"""The CDA documents the project generates (fixtures/cda_docs.py) get the verdicts they are built for.

With the ANS ruleset synced (skipped where the tree is absent): the conformant document passes XSD, J66,
its volet and the five transverse profiles; each variant fails in its own family. Without any ruleset
(runs everywhere): what needs no ruleset is still checked, and nothing passes by omission.
"""

from __future__ import annotations

import hashlib
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from fixtures import cda_docs as docs
from validators.base import CheckContext, CheckResult, ProofFile
from validators.cda import CdaSchematronValidator, CdaValidator, ruleset_info
from validators.cda.xdm import XdmValidator
from validators.model import CheckState, Severity


def proof_file(data: bytes, name: str = "document.xml", media_type: str = "text/xml") -> ProofFile:
    return ProofFile(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), media_type=media_type,
                     data=data)


def rules_of(result: CheckResult, severity: Severity = Severity.ERROR) -> list[str]:
    return [f.rule for f in result.findings if f.severity is severity]


@pytest.fixture(scope="module")
def ctx(ruleset_settings: dict[str, Any]) -> CheckContext:
    info = ruleset_info(ruleset_settings)
    assert info is not None
    return CheckContext(ruleset=info.handle)


def check_both(data: bytes, settings: dict[str, Any], ctx: CheckContext) -> tuple[CheckResult, CheckResult]:
    return CdaValidator(settings).check(proof_file(data), ctx), CdaSchematronValidator(settings).check(
        proof_file(data), ctx
    )


def test_conformant_document_passes_every_ans_profile(ruleset_settings: dict[str, Any], ctx: CheckContext) -> None:
    cda, schematron = check_both(docs.vaccination_history(), ruleset_settings, ctx)
    assert cda.findings == [] and cda.state is CheckState.RAN
    assert rules_of(schematron) == [], [f.message for f in schematron.findings]
    assert rules_of(schematron, Severity.WARNING) == ["cda.partial-coverage"]  # no LOINC file in the tree
    volet = [f.message for f in schematron.findings if f.rule == "cda.volet"]
    assert len(volet) == 1 and docs.VAC_VOLET in volet[0] and "1.2.250.1.213.1.1.1.37" in volet[0]
    assert schematron.detail is None  # every profile ran


def test_document_type_outside_j66_is_cda_typecode(ruleset_settings: dict[str, Any], ctx: CheckContext) -> None:
    cda, _ = check_both(docs.vaccination_history(docs.OUTSIDE_J66), ruleset_settings, ctx)
    assert rules_of(cda) == ["cda.typecode"]


def test_document_breaking_its_volet_fails_only_its_volet(ruleset_settings: dict[str, Any], ctx: CheckContext) -> None:
    cda, schematron = check_both(docs.vaccination_breaking_its_volet(), ruleset_settings, ctx)
    assert rules_of(cda) == []
    failed = [f for f in schematron.findings if f.rule == "cda.schematron" and f.severity is Severity.ERROR]
    assert failed and all(f.message.startswith(f"volet {docs.VAC_VOLET}:") for f in failed), failed


def test_level1_document_passes_and_carries_its_pdf(ruleset_settings: dict[str, Any], ctx: CheckContext) -> None:
    pdf = docs.consultation_pdf()
    cda, schematron = check_both(docs.level1_document(pdf), ruleset_settings, ctx)
    assert rules_of(cda) == [] and [c.data for c in cda.children] == [pdf]
    assert rules_of(schematron) == [] and "cda.volet" not in rules_of(schematron, Severity.INFO)


def test_unknown_volet_is_said(ruleset_settings: dict[str, Any], ctx: CheckContext) -> None:
    _, schematron = check_both(docs.unknown_volet_document(), ruleset_settings, ctx)
    unknown = [f.message for f in schematron.findings if f.rule == "cda.volet-unknown"]
    assert unknown and docs.UNKNOWN_VOLET_TEMPLATE[0] in unknown[0]
    assert schematron.state is CheckState.PARTIAL


# --- without a ruleset --------------------------------------------------------------------------------


def test_without_a_ruleset_type_code_and_body_are_still_checked(tmp_path: Path) -> None:
    empty = {"rulesets_dir": str(tmp_path)}
    outside = CdaValidator(empty).check(proof_file(docs.vaccination_history(docs.OUTSIDE_J66)), CheckContext())
    assert rules_of(outside) == ["cda.typecode", "system.ruleset-missing"]
    level1 = CdaValidator(empty).check(proof_file(docs.level1_document(docs.consultation_pdf())), CheckContext())
    assert rules_of(level1) == ["system.ruleset-missing"] and len(level1.children) == 1
    volet = CdaSchematronValidator(empty).check(proof_file(docs.vaccination_history()), CheckContext())
    assert rules_of(volet) == ["system.ruleset-missing"] and volet.state is CheckState.NOT_RUN


def test_generated_xdm_archive_is_conformant_and_its_metadata_is_checked() -> None:
    archive = docs.xdm_archive(docs.vaccination_history())
    with zipfile.ZipFile(BytesIO(archive)) as opened:
        assert {"IHE_XDM/SUBSET01/METADATA.XML", "IHE_XDM/SUBSET01/DOC0001.XML"} <= set(opened.namelist())
    ok = XdmValidator({}).check(proof_file(archive, "export.zip", "application/zip"), CheckContext())
    assert ok.findings == []
    differs = docs.xdm_archive(docs.vaccination_history(), code=docs.CONSULTATION_REPORT.code)
    bad = XdmValidator({}).check(proof_file(differs, "export.zip", "application/zip"), CheckContext())
    assert rules_of(bad) == ["cda.xdm"]


def test_generated_documents_carry_only_the_published_test_identity() -> None:
    for data in (docs.vaccination_history(), docs.level1_document(docs.consultation_pdf())):
        assert docs.b.ANS_TEST_PATIENT_NIR.encode() in data and docs.b.ANS_TEST_OID.encode() in data
        assert docs.b.PRODUCTION_INS_NIR_OID.encode() + b'"' not in data
