"""Roll-up of statuses and determinism of the verdict tree."""

from __future__ import annotations

import pytest

from validators.model import (
    CheckRun,
    CheckState,
    FileVerdict,
    Finding,
    Location,
    PackageInfo,
    PackageVerdict,
    ProofVerdict,
    Provenance,
    Severity,
    Status,
    sorted_findings,
    status_of,
)


def f(rule: str, severity: Severity) -> Finding:
    return Finding(rule=rule, severity=severity, message="m")


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ([], Status.PASS),
        ([f("pii.nir", Severity.INFO)], Status.PASS),
        ([f("format.mismatch", Severity.WARNING)], Status.WARNING),
        ([f("system.timeout", Severity.ERROR)], Status.ERROR),
        ([f("system.timeout", Severity.ERROR), f("format.mismatch", Severity.WARNING)], Status.ERROR),
        ([f("system.timeout", Severity.ERROR), f("pii.nir", Severity.ERROR)], Status.FAIL),
        ([f("ssi.malware", Severity.ERROR)], Status.FAIL),
        ([f("system.timeout", Severity.WARNING)], Status.WARNING),
    ],
    ids=["empty", "info", "warning", "system", "system+warning", "system+error", "error", "system-warning"],
)
def test_status_precedence(findings: list[Finding], expected: Status) -> None:
    assert status_of(findings) is expected


def test_not_run_check_alone_is_error() -> None:
    assert status_of([], [CheckRun("antivirus", CheckState.NOT_RUN)]) is Status.ERROR
    assert status_of([], [CheckRun("antivirus", CheckState.PARTIAL)]) is Status.PASS


def file_verdict(path: str, *findings: Finding, children: tuple[FileVerdict, ...] = ()) -> FileVerdict:
    return FileVerdict(path=path, sha256="0" * 64, size=1, media_type="text/plain",
                       findings=tuple(findings), children=children)


def package(proofs: tuple[ProofVerdict, ...], unmapped: tuple[FileVerdict, ...] = (),
            package_findings: tuple[Finding, ...] = ()) -> PackageVerdict:
    return PackageVerdict(
        package=PackageInfo(name="p", sha256="0" * 64, source="test", referential="REM-MDV-LGC-SF-Va1"),
        provenance=Provenance(ruleset_version="none"),
        proofs=proofs,
        unmapped_files=unmapped,
        package_findings=package_findings,
    )


def test_child_status_rolls_up_to_file_proof_and_package() -> None:
    child = file_verdict("a.xml!1:doc.pdf", f("ssi.pdf-javascript", Severity.ERROR))
    parent = file_verdict("a.xml", children=(child,))
    proof = ProofVerdict(id="DOC.1.1.1", id_as_written="DOC 1.1.1", files=(parent,))
    verdict = package((proof,))
    assert parent.own_status is Status.PASS
    assert parent.status is Status.FAIL
    assert proof.status is Status.FAIL
    assert verdict.status is Status.FAIL
    assert verdict.quarantine is True
    assert verdict.flatten(["rule", "path", "proof"]) == [["ssi.pdf-javascript", "a.xml!1:doc.pdf", "DOC.1.1.1"]]


def test_unmapped_and_package_findings_count() -> None:
    verdict = package((), unmapped=(file_verdict("x.txt", f("format.mismatch", Severity.WARNING)),),
                      package_findings=(f("package.missing-proof", Severity.INFO),))
    assert verdict.status is Status.WARNING
    assert verdict.quarantine is False
    assert verdict.flatten(["rule"]) == [["package.missing-proof"], ["format.mismatch"]]


def test_pii_error_does_not_quarantine() -> None:
    verdict = package((), unmapped=(file_verdict("x.txt", f("pii.nir", Severity.ERROR)),))
    assert verdict.status is Status.FAIL
    assert verdict.quarantine is False


def test_sorted_findings_is_deterministic_and_deduplicated() -> None:
    a = Finding("pii.nir", Severity.ERROR, "m", Location(line=3))
    b = Finding("pii.nir", Severity.ERROR, "m", Location(line=1))
    c = Finding("cda.xsd", Severity.ERROR, "m")
    assert sorted_findings([a, b, c, a]) == (c, b, a)
    assert sorted_findings([c, a, b]) == sorted_findings([b, c, a])
