"""Instructors' decisions: validated, append-only, hash-chained, conflict-safe, carried over by fingerprint."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from test_web_support import Proof, nir, verdict

from flows import verdicts as vd
from flows.decisions import (
    FINDING,
    PROOF,
    DecisionConflict,
    DecisionError,
    DecisionStore,
    NewDecision,
    check_decisions,
    decisions,
)
from flows.index import _engine
from flows.revalidate import carry_over
from flows.storage import PackageRef
from flows.web import carry
from flows.web.verdicts import fingerprint, view
from validators.verdict_io import read_verdict

KEY = "inbox/acme/lgc.zip"


def store_at(tmp_path: Path) -> DecisionStore:
    return DecisionStore(_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}"))


def doc_of(proofs: list[Proof], version: str = "v1", ruleset: str = "rs-1") -> dict[str, Any]:
    ref = PackageRef("b", KEY, "etag", version)
    return vd.document(verdict("lgc.zip", proofs, ruleset=ruleset), ref, area="inbox", publisher="acme")


def dismissal(subject: str, json_key: str = "reports/v1.json", author: str = "alice", **changes: Any) -> NewDecision:
    new = NewDecision(kind=FINDING, package_key=KEY, subject=subject, json_key=json_key, decision="dismiss",
                      reasons=("false_positive",), comment="NIR de test publié par l'ANS", author=author,
                      proof_id="INS.41.2.2", rule="pii.nir", path="INS.41.2.2/capture.txt")
    return replace(new, **changes)


@pytest.mark.parametrize(("changes", "why"), [
    ({"comment": "  "}, "a comment is mandatory"),
    ({"reasons": ()}, "a dismissal needs one reason"),
    ({"reasons": ("because",)}, "a dismissal needs one reason"),
    ({"decision": "ignore"}, "unknown decision"),
    ({"decision": "confirm"}, "a confirmation has no reason"),
    ({"comment": "x" * 4001}, "comment too long"),
    ({"kind": PROOF, "decision": "rejected", "reasons": (), "comment": ""}, "a rejection needs a reason or a comment"),
    ({"kind": PROOF, "decision": "info_requested", "reasons": (), "comment": ""}, "say which information is requested"),
    ({"kind": PROOF, "decision": "accepted", "reasons": ("naming",)}, "only a rejection has reasons"),
], ids=["no-comment", "no-reason", "bad-reason", "bad-decision", "confirm-reason", "long", "reject-empty",
        "info-empty", "accept-reasons"])
def test_invalid_decisions_are_refused_and_nothing_is_recorded(tmp_path: Path, changes: dict[str, Any],
                                                               why: str) -> None:
    store = store_at(tmp_path)
    with pytest.raises(DecisionError, match=why):
        store.append(dismissal("f1", **changes), None)
    assert store.all() == [] and store.head()[0] == 0


def test_a_second_decision_must_name_the_one_it_supersedes(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    first = store.append(dismissal("f1"), None)
    with pytest.raises(DecisionConflict) as conflict:
        store.append(dismissal("f1", author="bob", decision="confirm", reasons=()), None)
    assert conflict.value.current == first
    second = store.append(dismissal("f1", author="bob", decision="confirm", reasons=()), first.seq)
    assert (second.supersedes, store.latest(KEY, FINDING, "f1")) == (first.seq, second)
    assert [d.author for d in store.of_package(KEY)] == ["alice", "bob"]  # nothing overwritten
    assert check_decisions(store.all(), store.head()) == []


def test_two_instructors_at_once_one_wins_the_other_gets_a_conflict(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def decide(i: int) -> None:
        own = DecisionStore(_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}"))
        barrier.wait()
        try:
            own.append(dismissal("f1", author=f"instructeur{i}"), None)
            outcomes.append("recorded")
        except DecisionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["recorded"]
    assert len(store.all()) == 1 and check_decisions(store.all(), store.head()) == []


def test_the_chain_shows_an_edited_a_removed_or_a_truncated_record(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for subject in ("f1", "f2", "f3"):
        store.append(dismissal(subject), None)
    assert check_decisions(store.all(), store.head()) == []
    with store.engine.begin() as conn:
        conn.execute(decisions.update().where(decisions.c.seq == 2).values(comment="réécrit après coup"))
    assert [p.code for p in check_decisions(store.all(), store.head())] == ["decision-altered"]
    with store.engine.begin() as conn:
        conn.execute(decisions.delete().where(decisions.c.seq == 2))
    assert [p.code for p in check_decisions(store.all(), store.head())] == ["decision-removed"]
    (tmp_path / "other").mkdir()
    fresh = store_at(tmp_path / "other")
    for subject in ("f1", "f2"):
        fresh.append(dismissal(subject), None)
    with fresh.engine.begin() as conn:
        conn.execute(decisions.delete().where(decisions.c.seq == 2))  # the last one: only the head tells
    assert [p.code for p in check_decisions(fresh.all(), fresh.head())] == ["decision-head"]


# --- fingerprints and carry-over -----------------------------------------------------------------------------

CAPTURE = "INS.41.2.2/capture.txt"


def proofs(text: str = "capture v1", masked: str = "1 ** ** ** *** *** 96", line: int = 3, path: str = CAPTURE,
           extra: bool = False) -> list[Proof]:
    findings = [nir(masked, line)]
    files = {path: text}
    if extra:
        files["INS.41.2.2/journal.txt"] = "journal"
    return [Proof("INS.41.2.2", files, {path: findings}), Proof("DOC.3.1.2", {"DOC.3.1.2/a.txt": "ok"})]


def test_the_fingerprint_is_rule_content_location_and_evidence_not_the_path() -> None:
    base = view(doc_of(proofs()), "k1")
    [finding] = [f for f in base.findings()]
    renamed = view(doc_of(proofs(path="INS.41.2.2/renommee.txt")), "k2")
    assert [f.fingerprint for f in renamed.findings()] == [finding.fingerprint]
    for changed in (proofs(text="capture v2"), proofs(masked="2 ** ** ** *** *** 11"), proofs(line=9)):
        assert [f.fingerprint for f in view(doc_of(changed), "k3").findings()] != [finding.fingerprint]
    # A field a later engine adds empty, and key order, change nothing.
    assert fingerprint("pii.nir", "a" * 64, {"line": 3, "xpath": None}, "x", None) == fingerprint(
        "pii.nir", "a" * 64, {"line": 3}, "x", None)


def decide_all(store: DecisionStore, json_key: str, doc: dict[str, Any]) -> None:
    current = view(doc, json_key)
    for finding in current.findings():
        store.append(dismissal(finding.fingerprint, json_key=json_key), None)
    for proof in current.proofs:
        store.append(NewDecision(kind=PROOF, package_key=KEY, subject=proof.id, json_key=json_key,
                                 decision="accepted", comment="", author="alice", digest=proof.digest), None)


def test_decisions_carry_over_a_revalidation_that_changed_nothing(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    old = doc_of(proofs())
    decide_all(store, "reports/v1.json", old)
    assert {s.state for s in carry.states(view(old, "reports/v1.json"), store.of_package(KEY)).findings.values()} \
        == {carry.DECIDED}
    new = carry_over(read_verdict(old), "rs-2", {"J66": "B"}).to_document()  # stored when nothing it checks changed
    states = carry.states(view(new, "reports/v1-rs2.json"), store.of_package(KEY))
    assert {s.state for s in (*states.findings.values(), *states.proofs.values())} == {carry.CARRIED}
    assert states.gone == () and states.count(carry.CARRIED) == 3


def test_a_changed_finding_or_proof_is_to_review_again_and_a_cleared_one_is_listed_as_gone(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    old = doc_of(proofs())
    decide_all(store, "reports/v1.json", old)
    changed = view(doc_of(proofs(text="capture v2"), version="v2"), "reports/v2.json")  # a new upload
    states = carry.states(changed, store.of_package(KEY))
    [finding] = list(changed.findings())
    assert states.findings[finding.fingerprint].state == carry.REVIEW
    assert states.findings[finding.fingerprint].decision is not None
    assert states.proofs["INS.41.2.2"].state == carry.REVIEW  # its file changed
    assert states.proofs["DOC.3.1.2"].state == carry.CARRIED  # untouched
    assert states.gone == ()
    cleared = copy.deepcopy(doc_of(proofs(), version="v3"))
    cleared["proofs"][0]["files"][0]["findings"] = []
    states = carry.states(view(cleared, "reports/v3.json"), store.of_package(KEY))
    assert [d.rule for d in states.gone] == ["pii.nir"]
    # Deciding again on the changed finding: it is decided, and the old decision is not "gone" either.
    store.append(dismissal(finding.fingerprint, json_key="reports/v2.json", decision="confirm", reasons=()), None)
    states = carry.states(changed, store.of_package(KEY))
    assert states.findings[finding.fingerprint].state == carry.DECIDED and states.gone == ()


def test_a_nir_pasted_into_a_comment_is_never_recorded(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    decided = store.append(dismissal("f1", comment="le patient 1 85 05 78 006 084 36 est fictif"), None)
    assert "006 084" not in decided.comment and "** ** **" in decided.comment
    assert check_decisions(store.all(), store.head()) == []


def test_the_decision_record_keeps_what_it_was_made_on(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    decided = store.append(dismissal("f1", json_key="reports/inbox/acme/lgc.zip/v-1/rs-1.json"), None)
    assert (decided.json_key, decided.author, decided.reasons) == (
        "reports/inbox/acme/lgc.zip/v-1/rs-1.json", "alice", ("false_positive",))
    assert decided.created_at.endswith("+00:00")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar() == 1


def test_verify_history_checks_the_decisions_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest_flows import mocked_store

    from flows.history import history_problems
    from flows.sealing import ledger_for
    from flows.settings import PipelineSettings

    settings = replace(PipelineSettings(), index_url=f"sqlite:///{tmp_path / 'index.sqlite3'}", work_dir=tmp_path)
    decided = DecisionStore(ledger_for(settings).engine)  # the same database as the verdict ledger
    decided.append(dismissal("f1"), None)
    with mocked_store(monkeypatch, "proofcheck-web-history") as store:
        assert [p.code for _, p in history_problems(store, settings, None)[0]] == []
        with decided.engine.begin() as conn:
            conn.execute(decisions.update().values(author="quelqu'un d'autre"))
        assert [(where, p.code) for where, p in history_problems(store, settings, None)[0]] == [
            ("decisions", "decision-altered")]
