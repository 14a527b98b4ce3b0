"""Verdict diffs on typed verdicts (a stored one read back): statuses per package and proof, findings added
and cleared."""

from __future__ import annotations

from dataclasses import replace

from validators import rules
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
)
from validators.report.json_report import render
from validators.verdict_diff import changed_components, diff_verdicts
from validators.verdict_io import read_verdict

SHA = "ab" * 32
RAN = (CheckRun("cda", CheckState.RAN),)


def typecode(version: str = "A", line: int | None = 3) -> Finding:
    return rules.finding(
        "cda.typecode", Location(line=line), code="11369-6", code_system="2.16.840.1.113883.6.1", version=version
    )


def nir(line: int) -> Finding:
    return rules.finding("pii.nir", Location(line=line), evidence="1 ** ** ** *** *** 36")


def verdict(findings: tuple[Finding, ...] = (), j66: str = "A", children: tuple[FileVerdict, ...] = (),
            package_findings: tuple[Finding, ...] = ()) -> PackageVerdict:
    """Two proofs; the findings go to the CDA document of DOC.3.1.2."""
    cda = FileVerdict("DOC.3.1.2/cr.xml", SHA, 10, "text/xml", RAN, findings, children)
    return PackageVerdict(
        package=PackageInfo("paquet.zip", SHA, "dry-run", "REM-MDV-LGC-SF-Va1"),
        provenance=Provenance(f"v-{j66}", (("J66", j66), ("cda_xsd", "x"))),
        proofs=(
            ProofVerdict("DOC.3.1.2", "DOC.3.1.2", (cda,)),
            ProofVerdict("INS.41.2.2", "INS.41.2.2", (FileVerdict("INS.41.2.2/a.png", SHA, 10, "image/png", RAN),)),
        ),
        package_findings=package_findings,
    )


def stored(value: PackageVerdict) -> PackageVerdict:
    """The verdict as the diff meets it in re-validation: stored, then read back."""
    return read_verdict(render(value)).verdict


def test_a_retired_type_shows_as_a_status_change_and_an_added_finding() -> None:
    diff = diff_verdicts(stored(verdict()), verdict((typecode("B"),), j66="B"))
    assert (diff.old_status, diff.new_status, diff.status_changed) == ("pass", "fail", True)
    assert (diff.old_ruleset, diff.new_ruleset) == ("v-A", "v-B")
    assert diff.components == (("J66", "A", "B"),)
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and (proof.old_status, proof.new_status) == ("pass", "fail")
    assert [(f.rule, f.path) for f in proof.added] == [("cda.typecode", "DOC.3.1.2/cr.xml")] and proof.cleared == ()
    unchanged = diff.proof("INS.41.2.2")
    assert unchanged is not None and not unchanged.changed
    assert [p["id"] for p in diff.to_dict()["proofs"]] == ["DOC.3.1.2"]  # only what changed is listed


def test_an_added_finding_keeps_its_french_message_for_the_change_report() -> None:
    diff = diff_verdicts(stored(verdict()), verdict((typecode("B"),), j66="B"))
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None
    [added] = proof.to_dict()["added"]
    assert added["message_fr"] == typecode("B").message_fr and added["message_fr"] != added["message"]


def test_the_reverse_change_clears_the_finding() -> None:
    diff = diff_verdicts(stored(verdict((typecode("B"),), j66="B")), verdict(j66="C"))
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and [f.rule for f in proof.cleared] == ["cda.typecode"] and proof.added == ()


def test_a_message_naming_another_version_is_the_same_finding() -> None:
    diff = diff_verdicts(stored(verdict((typecode("A"),))), verdict((typecode("B"),), j66="B"))
    assert not diff.changed and diff.components == (("J66", "A", "B"),)


def test_findings_are_told_apart_by_place_and_evidence() -> None:
    diff = diff_verdicts(stored(verdict((nir(3),))), verdict((nir(9),)))
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and len(proof.added) == len(proof.cleared) == 1 and not diff.status_changed


def test_children_and_package_level_findings_are_compared() -> None:
    pdf = FileVerdict("DOC.3.1.2/cr.xml!1:body.pdf", SHA, 5, "application/pdf", RAN,
                      (rules.finding("ssi.pdf.javascript"),))
    missing = rules.finding("package.missing-proof", proof="INS.41.3.1")
    diff = diff_verdicts(stored(verdict(children=(pdf,))), verdict(package_findings=(missing,)))
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and [(f.rule, f.path) for f in proof.cleared] == [
        ("ssi.pdf.javascript", "DOC.3.1.2/cr.xml!1:body.pdf")
    ]
    rest = diff.proof(None)
    assert rest is not None and [f.rule for f in rest.added] == ["package.missing-proof"]


def test_a_proof_present_on_one_side_only() -> None:
    old = verdict()
    new = replace(old, proofs=old.proofs[:1])
    proof = diff_verdicts(stored(old), new).proof("INS.41.2.2")
    assert proof is not None and (proof.old_status, proof.new_status) == ("pass", None) and proof.status_changed


def test_changed_components_lists_added_removed_and_changed() -> None:
    assert changed_components({"J66": "A", "x": "1"}, {"J66": "B", "y": "2"}) == (
        ("J66", "A", "B"),
        ("x", "1", None),
        ("y", None, "2"),
    )
