"""JUnit XML report: a suite per proof, a case per file, failures and errors that never hide as skips."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from conftest_reports import HOSTILE, empty_verdict, hostile_verdict, sample_verdict
from lxml import etree

from validators.model import FileVerdict, Finding, PackageVerdict, ProofVerdict, Severity
from validators.report import junit


def parse(verdict: PackageVerdict) -> Any:
    text = junit.render(verdict)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    # lxml is strict XML 1.0: it rejects what a lenient parser might let through
    return etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))


def cases(root: Any) -> dict[str, Any]:
    return {case.get("name"): case for case in root.iter("testcase")}


def test_one_suite_per_proof_and_one_case_per_file() -> None:
    verdict = sample_verdict()
    root = parse(verdict)
    assert root.tag == "testsuites"
    suites = [s.get("name") for s in root.findall("testsuite")]
    assert suites == ["package", "INS.41.2.2", "DOC.3.1.2", "DMP.3.1.1", "ANN.1.1.1", "unmapped files"]
    file_cases = [c.get("name") for c in root.iter("testcase") if c.get("name") != "package"]
    assert sorted(file_cases) == sorted(f.path for f in verdict.iter_file_verdicts())
    dmp = root.find("testsuite[@name='DMP.3.1.1']")
    assert [c.get("name") for c in dmp.findall("testcase")] == [
        "DMP.3.1.1/xdm.zip", "DMP.3.1.1/xdm.zip!1:METADATA.XML", "DMP.3.1.1/xdm.zip!2:DOC0001.XML",
        "DMP.3.1.1/trace.log",
    ]
    assert all(c.get("classname") == "DMP.3.1.1" for c in dmp.findall("testcase"))


def test_fail_is_failure_error_is_error_and_nothing_is_skipped() -> None:
    root = parse(sample_verdict())
    by_name = cases(root)
    failure = by_name["INS 41.2.2/attestation.pdf"].find("failure")
    assert failure is not None and failure.get("type") == "pii.nir"
    assert "page 2, ligne 14" in failure.text and "2 ** ** ** *** *** 96" in failure.text
    error = by_name["DMP.3.1.1/trace.log"].find("error")
    assert error is not None and error.get("type") == "system.timeout"
    assert "[check not run] pii: time limit" in error.text
    assert list(by_name["INS 41.2.2/capture.png"]) == []  # a pass is an empty test case
    warning = by_name["DOC 3.1.2/ecran.jpg"]
    assert warning.find("failure") is None and "format.extension-mismatch" in warning.find("system-out").text
    assert root.find(".//skipped") is None
    assert all(s.get("skipped") == "0" for s in root.iter("testsuite"))


def test_counts_add_up() -> None:
    root = parse(sample_verdict())
    total = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root.findall("testsuite"):
        suite_cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(suite_cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in suite_cases)
        assert int(suite.get("errors")) == sum(c.find("error") is not None for c in suite_cases)
        for key in total:
            total[key] += int(suite.get(key))
    assert {key: int(root.get(key)) for key in total} == total
    # attestation.pdf, cda.xml, outil.exe fail; trace.log is an error
    assert (total["failures"], total["errors"]) == (3, 1)


def test_container_case_does_not_fail_for_its_child() -> None:
    child = FileVerdict("P/a.zip!1:x.png", "0" * 64, 1, "image/png",
                        findings=(Finding("format.empty", Severity.ERROR, "empty"),))
    parent = FileVerdict("P/a.zip", "0" * 64, 1, "application/zip", children=(child,))
    verdict = PackageVerdict(package=empty_verdict().package, provenance=empty_verdict().provenance,
                             proofs=(ProofVerdict("P.1.1.1", "P.1.1.1", files=(parent,)),))
    by_name = cases(parse(verdict))
    assert list(by_name["P/a.zip"]) == []
    assert by_name["P/a.zip!1:x.png"].find("failure").get("type") == "format.empty"


def test_properties_carry_the_ruleset_version() -> None:
    root = parse(sample_verdict())
    for suite in root.findall("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props["ruleset.version"] == "sha256:0123456789ab@2025-01-02T03:04:05Z"
        assert props["ruleset.component.J66"] == "20240927120000"
        assert props["package.quarantine"] == "true"
    ins = root.find("testsuite[@name='INS.41.2.2']/properties")
    assert {p.get("name"): p.get("value") for p in ins}["proof.id_as_written"] == "INS 41.2.2"


def test_package_findings_have_their_case() -> None:
    package_case = cases(parse(sample_verdict()))["package"]
    assert "package.missing-proof" in package_case.find("system-out").text
    errored = PackageVerdict(
        package=empty_verdict().package, provenance=empty_verdict().provenance,
        package_findings=(Finding("system.package-unreadable", Severity.ERROR, "unreadable"),),
    )
    root = parse(errored)
    assert cases(root)["package"].find("error").get("type") == "system.package-unreadable"
    assert root.get("errors") == "1"


def test_empty_package_is_a_valid_report() -> None:
    root = parse(empty_verdict())
    assert [s.get("name") for s in root.findall("testsuite")] == ["package"]
    assert root.get("tests") == "1" and root.get("failures") == "0"


@pytest.mark.parametrize("control", ["\x00", "\x1b[31m", "\x0b"])
def test_hostile_text_stays_well_formed(control: str) -> None:
    verdict = hostile_verdict()
    proof = verdict.proofs[0]
    renamed = FileVerdict(f"INS.1.1.1/{control}x.pdf", "0" * 64, 1, "application/pdf",
                          findings=(Finding("format.empty", Severity.ERROR, f"bad{control}{HOSTILE}"),))
    proofs = (ProofVerdict(proof.id, proof.id_as_written, files=(*proof.files, renamed)),)
    verdict = PackageVerdict(package=verdict.package, provenance=verdict.provenance, proofs=proofs)
    root = parse(verdict)
    messages = [f.get("message") for f in root.iter("failure")]
    assert f"bad {HOSTILE}" in messages  # markup kept as text, escaped by the serializer
    # control characters XML cannot hold are replaced
    assert f"bad\ufffd{HOSTILE}" in messages or f"bad\ufffd[31m{HOSTILE}" in messages
    assert ET.fromstring(junit.render(verdict)).tag == "testsuites"
