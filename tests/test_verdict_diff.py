"""Verdict diffs on stored documents: statuses per package and proof, findings added and cleared."""

from __future__ import annotations

import copy
from typing import Any

from validators.verdict_diff import changed_components, diff_documents


def finding(
    rule: str, message: str = "m", severity: str = "error", line: int | None = 3, evidence: str | None = None
) -> dict[str, Any]:
    return {"rule": rule, "severity": severity, "message": message, "location": {"line": line}, "evidence": evidence}


def doc(
    status: str, proof_status: str, findings: list[dict[str, Any]], j66: str = "A", child: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "status": status,
        "package": {"name": "paquet.zip"},
        "ruleset": {"version": f"v-{j66}", "components": {"J66": j66, "cda_xsd": "x"}},
        "proofs": [
            {
                "id": "DOC.3.1.2",
                "status": proof_status,
                "findings": [],
                "files": [{"path": "DOC.3.1.2/cr.xml", "findings": findings, "children": child or []}],
            },
            {
                "id": "INS.41.2.2",
                "status": "pass",
                "findings": [],
                "files": [{"path": "INS.41.2.2/a.png", "findings": []}],
            },
        ],
        "unmapped_files": [],
        "package_findings": [],
    }


def test_a_retired_type_shows_as_a_status_change_and_an_added_finding() -> None:
    old = doc("pass", "pass", [])
    new = doc("fail", "fail", [finding("cda.typecode", "11369-6 not in JDV_J66 version B")], j66="B")
    diff = diff_documents(old, new)
    assert (diff.old_status, diff.new_status, diff.status_changed) == ("pass", "fail", True)
    assert (diff.old_ruleset, diff.new_ruleset) == ("v-A", "v-B")
    assert diff.components == (("J66", "A", "B"),)
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and (proof.old_status, proof.new_status) == ("pass", "fail")
    assert [(f.rule, f.path) for f in proof.added] == [("cda.typecode", "DOC.3.1.2/cr.xml")] and proof.cleared == ()
    unchanged = diff.proof("INS.41.2.2")
    assert unchanged is not None and not unchanged.changed
    assert [p["id"] for p in diff.to_dict()["proofs"]] == ["DOC.3.1.2"]  # only what changed is listed


def test_the_reverse_change_clears_the_finding() -> None:
    diff = diff_documents(doc("fail", "fail", [finding("cda.typecode")], j66="B"), doc("pass", "pass", [], j66="C"))
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and [f.rule for f in proof.cleared] == ["cda.typecode"] and proof.added == ()


def test_a_message_naming_another_version_is_the_same_finding() -> None:
    old = doc("warning", "warning", [finding("cda.typecode-display", "J66 version A says X", "warning")])
    new = doc("warning", "warning", [finding("cda.typecode-display", "J66 version B says X", "warning")], j66="B")
    diff = diff_documents(old, new)
    assert not diff.changed and diff.components == (("J66", "A", "B"),)


def test_findings_are_told_apart_by_place_and_evidence() -> None:
    old = doc("fail", "fail", [finding("pii.nir", line=3, evidence="1 ** ** ** *** *** 36")])
    moved = doc("fail", "fail", [finding("pii.nir", line=9, evidence="1 ** ** ** *** *** 36")])
    diff = diff_documents(old, moved)
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and len(proof.added) == len(proof.cleared) == 1 and not diff.status_changed


def test_children_and_package_level_findings_are_compared() -> None:
    child = [{"path": "DOC.3.1.2/cr.xml!1:body.pdf", "findings": [finding("ssi.pdf.javascript")], "children": []}]
    old = doc("fail", "fail", [], child=child)
    new = copy.deepcopy(doc("fail", "fail", []))
    new["package_findings"] = [finding("package.missing-proof", line=None)]
    diff = diff_documents(old, new)
    proof = diff.proof("DOC.3.1.2")
    assert proof is not None and [(f.rule, f.path) for f in proof.cleared] == [
        ("ssi.pdf.javascript", "DOC.3.1.2/cr.xml!1:body.pdf")
    ]
    rest = diff.proof(None)
    assert rest is not None and [f.rule for f in rest.added] == ["package.missing-proof"]


def test_a_proof_present_on_one_side_only() -> None:
    old = doc("pass", "pass", [])
    new = copy.deepcopy(old)
    new["proofs"] = new["proofs"][:1]
    proof = diff_documents(old, new).proof("INS.41.2.2")
    assert proof is not None and (proof.old_status, proof.new_status) == ("pass", None) and proof.status_changed


def test_changed_components_lists_added_removed_and_changed() -> None:
    assert changed_components({"J66": "A", "x": "1"}, {"J66": "B", "y": "2"}) == (
        ("J66", "A", "B"),
        ("x", "1", None),
        ("y", None, "2"),
    )
