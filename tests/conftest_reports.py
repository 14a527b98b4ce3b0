"""Hand-built verdicts for the report tests (no validator involved), with every status and shape.

Findings carry already-masked evidence, as validators produce it. ``hostile_verdict`` puts markup and
quotes in every place a publisher controls (file names, proof IDs as written, messages) to test escaping.
"""

from __future__ import annotations

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
)

RAN = CheckState.RAN
SHA = "ab" * 32


def file_verdict(
    path: str,
    media_type: str = "image/png",
    findings: tuple[Finding, ...] = (),
    checks: tuple[CheckRun, ...] = (CheckRun("filetype", RAN),),
    children: tuple[FileVerdict, ...] = (),
) -> FileVerdict:
    return FileVerdict(
        path=path, sha256=SHA, size=1234, media_type=media_type, checks=checks, findings=findings,
        children=children,
    )


NIR_FINDING = Finding(
    rule="pii.nir",
    severity=Severity.ERROR,
    message="A French social security number (NIR) with a valid key appears in the document.",
    location=Location(page=2, line=14, span=(120, 135)),
    evidence="2 ** ** ** *** *** 96",
)
XSD_FINDING = Finding(
    rule="cda.xsd",
    severity=Severity.ERROR,
    message="Element 'code': attribute 'codeSystem' is required.",
    location=Location(line=42, column=7, xpath="/ClinicalDocument/component[1]/section/code"),
)
MISMATCH_WARNING = Finding(
    rule="format.extension-mismatch",
    severity=Severity.WARNING,
    message="The content is image/png (PNG image) but its name (.jpg) announces JPEG image.",
)
TIMEOUT = Finding(
    rule="system.timeout",
    severity=Severity.ERROR,
    message="The pii check exceeded its 60 s time limit on this file; it was not checked by it.",
)
NOT_ACCEPTED = Finding(
    rule="format.not-accepted",
    severity=Severity.ERROR,
    message="The content is application/vnd.microsoft.portable-executable (Windows executable), "
    "which is not an accepted proof format.",
)
MALWARE = Finding(
    rule="ssi.malware",
    severity=Severity.ERROR,
    message="The antivirus detected a known test signature.",
    evidence="Eicar-Test-Signature",
)
MISSING_PROOF = Finding(
    rule="package.missing-proof",
    severity=Severity.INFO,
    message="Expected proof INS.41.3.1 is not in the package.",
)


TIMED_OUT_CHECKS = (CheckRun("filetype", RAN), CheckRun("pii", CheckState.NOT_RUN, "time limit"))


def sample_verdict(*, quarantine: bool = True) -> PackageVerdict:
    """Four proofs (fail, warning, error, pass), a nested XDM archive, an unmapped executable."""
    xdm = file_verdict(
        "DMP.3.1.1/xdm.zip",
        "application/zip",
        children=(
            file_verdict(
                "DMP.3.1.1/xdm.zip!1:METADATA.XML", "text/xml",
                checks=(CheckRun("filetype", RAN), CheckRun("cda", CheckState.PARTIAL, "terminology absent")),
            ),
            file_verdict("DMP.3.1.1/xdm.zip!2:DOC0001.XML", "text/xml"),
        ),
    )
    proofs = (
        ProofVerdict(
            id="INS.41.2.2",
            id_as_written="INS 41.2.2",
            files=(
                file_verdict("INS 41.2.2/capture.png"),
                file_verdict("INS 41.2.2/attestation.pdf", "application/pdf", findings=(NIR_FINDING,)),
                file_verdict("INS 41.2.2/cda.xml", "text/xml", findings=(XSD_FINDING,)),
            ),
        ),
        ProofVerdict(id="DOC.3.1.2", id_as_written="DOC 3.1.2",
                     files=(file_verdict("DOC 3.1.2/ecran.jpg", findings=(MISMATCH_WARNING,)),)),
        ProofVerdict(
            id="DMP.3.1.1",
            id_as_written="DMP.3.1.1",
            files=(
                xdm,
                file_verdict("DMP.3.1.1/trace.log", "text/plain", (TIMEOUT,), TIMED_OUT_CHECKS),
            ),
        ),
        ProofVerdict(id="ANN.1.1.1", id_as_written="ANN.1.1.1",
                     files=(file_verdict("ANN.1.1.1/video.mp4", "video/mp4"),)),
    )
    unmapped_findings = (NOT_ACCEPTED, MALWARE) if quarantine else (NOT_ACCEPTED,)
    return PackageVerdict(
        package=PackageInfo(
            name="editeur-lgc-preuves.zip", sha256="cd" * 32, source="dry-run",
            referential="REM-MDV-LGC-SF-Va1", profiles=("Général", "Médecin traitant"),
            publisher="Éditeur Fictif", software="LGC Démo", software_version="4.2",
        ),
        provenance=Provenance(
            ruleset_version="sha256:0123456789ab@2025-01-02T03:04:05Z",
            components=(("J66", "20240927120000"), ("cda_xsd", "ef" * 32)),
            engine_version="0.1.0",
            started_at="2025-01-02T10:00:00+00:00",
            finished_at="2025-01-02T10:00:07+00:00",
            antivirus=(("engine", "ClamAV 1.4.6"), ("database", "daily 27000")),
        ),
        proofs=proofs,
        unmapped_files=(file_verdict("outil.exe", "application/vnd.microsoft.portable-executable",
                                     findings=unmapped_findings),),
        package_findings=(MISSING_PROOF,),
    )


HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>\'"'


def hostile_verdict() -> PackageVerdict:
    """Publisher-controlled text full of markup, in every field a report shows."""
    finding = Finding(
        rule="format.extension-mismatch",
        severity=Severity.ERROR,
        message=f"bad {HOSTILE}",
        location=Location(xpath=f"/a[{HOSTILE}]", entry=HOSTILE),
        evidence=HOSTILE,
    )
    return PackageVerdict(
        package=PackageInfo(name=f"pkg{HOSTILE}.zip", sha256="00" * 32, source=HOSTILE,
                            referential="REM-MDV-LGC-SF-Va1", profiles=(HOSTILE,)),
        provenance=Provenance(ruleset_version=HOSTILE, components=((HOSTILE, HOSTILE),)),
        proofs=(ProofVerdict(id="INS.1.1.1", id_as_written=HOSTILE,
                             files=(file_verdict(f"INS.1.1.1/{HOSTILE}.pdf", findings=(finding,)),)),),
        package_findings=(Finding(rule=f"package.{HOSTILE}", severity=Severity.WARNING, message=HOSTILE),),
    )


def empty_verdict() -> PackageVerdict:
    """A package with nothing in it (every report must still be well-formed)."""
    return PackageVerdict(
        package=PackageInfo(name="vide.zip", sha256="00" * 32, source="dry-run",
                            referential="REM-MDV-LGC-SF-Va1"),
        provenance=Provenance(ruleset_version="none"),
    )
