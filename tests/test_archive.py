"""The ``archive`` check: triage findings on the file, safe members handed to the engine as children."""

from __future__ import annotations

import hashlib

import pytest
from test_ziptriage import PNG, benign

from fixtures.zipcraft import STORED, Member, build_zip
from validators import rules
from validators.archive import ArchiveValidator, make_validators
from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.model import CheckState, FileVerdict, Severity, Status
from validators.registry import FAMILIES
from validators.ziptriage import TriageLimits

ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def proof(data: bytes, media_type: str = ZIP, path: str = "DOC.1.1.1/archive.zip") -> ProofFile:
    return ProofFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=media_type, data=data)


def check(data: bytes, media_type: str = ZIP, validator: ArchiveValidator | None = None,
          path: str = "DOC.1.1.1/archive.zip") -> FileVerdict:
    return Engine([validator or ArchiveValidator()]).check_file(proof(data, media_type, path))


def rules_of(verdict: FileVerdict) -> list[str]:
    return sorted({f.rule for f in verdict.findings})


def test_members_of_an_ordinary_zip_become_children() -> None:
    verdict = check(benign())
    assert verdict.findings == () and verdict.status is Status.PASS
    assert [c.path for c in verdict.children] == [
        "DOC.1.1.1/archive.zip!1:INS.41.2.2/capture.png",
        "DOC.1.1.1/archive.zip!2:DOC.3.1.2/lettre.pdf",
    ]
    assert verdict.children[1].media_type == "application/pdf"
    assert verdict.checks[0].state is CheckState.RAN


def test_dangerous_members_are_reported_and_not_handed_on() -> None:
    data = build_zip([Member("../../evil.sh", b"#!/bin/sh\n"), Member("lien", b"/etc", unix_mode=0o120777),
                      Member("ok.txt", b"fine")])
    verdict = check(data)
    assert rules_of(verdict) == ["ssi.archive.symlink", "ssi.archive.traversal"]
    assert verdict.status is Status.FAIL
    assert [c.path.rsplit(":", 1)[1] for c in verdict.children] == ["ok.txt"]


def test_an_archive_with_unsafe_structure_yields_no_child() -> None:
    data = build_zip([Member(f"k{i}", bytes(1000)) for i in range(3)], overlap_all_with_first=True)
    verdict = check(data)
    assert "ssi.archive.overlapping-entries" in rules_of(verdict)
    assert verdict.children == ()


def test_a_member_that_lies_about_its_size_is_a_bomb_finding() -> None:
    data = build_zip([Member("bomb.bin", bytes(2_000_000), declared_size=100), Member("ok.txt", b"ok")])
    verdict = check(data)
    (bomb,) = [f for f in verdict.findings if f.rule == "ssi.archive.size-mismatch"]
    assert bomb.location.entry == "bomb.bin" and bomb.severity is Severity.ERROR
    assert len(verdict.children) == 1


def test_members_over_the_memory_limits_are_left_unchecked_and_said_so() -> None:
    data = build_zip([Member("a.bin", bytes(3000)), Member("b.bin", bytes(3000)), Member("c.bin", bytes(10))])
    verdict = check(data, validator=ArchiveValidator(max_member_bytes=2000))
    assert rules_of(verdict) == ["ssi.archive.member-not-checked"]
    assert verdict.checks[0].state is CheckState.PARTIAL and verdict.status is Status.WARNING
    assert len(verdict.children) == 1
    # The total budget is shared by all members of one archive.
    total = check(data, validator=ArchiveValidator(max_total_bytes=4000))
    assert len(total.children) == 2 and rules_of(total) == ["ssi.archive.member-not-checked"]


def test_a_zip_hidden_behind_an_image_is_a_polyglot_and_its_members_are_checked() -> None:
    data = build_zip([Member("payload.exe", b"MZ" + bytes(100))], prefix=PNG)
    verdict = check(data, "image/png", path="INS.1.1.1/ecran.png")
    assert rules_of(verdict) == ["ssi.archive.polyglot"] and verdict.status is Status.FAIL
    assert [c.path for c in verdict.children] == ["INS.1.1.1/ecran.png!1:payload.exe"]


def test_an_ordinary_image_has_no_archive() -> None:
    verdict = check(PNG, "image/png", path="INS.1.1.1/ecran.png")
    assert verdict.findings == () and verdict.children == ()
    assert verdict.checks[0].detail == "no archive found"


def test_a_file_typed_zip_without_an_end_record_is_malformed() -> None:
    verdict = check(b"PK\x03\x04" + bytes(100))
    assert rules_of(verdict) == ["ssi.archive.malformed"] and verdict.status is Status.FAIL


def test_office_documents_are_triaged_but_their_parts_are_not_children() -> None:
    data = build_zip([Member("word/document.xml", b"<w/>"), Member("../evil", b"x")])
    verdict = check(data, DOCX, path="DOC.1.1.1/lettre.docx")
    assert rules_of(verdict) == ["ssi.archive.traversal"] and verdict.children == ()


def test_too_many_entries_is_refused_before_reading_any_member() -> None:
    data = build_zip([Member(f"f{i}.txt", b"", method=STORED) for i in range(1001)])
    verdict = check(data)
    assert rules_of(verdict) == ["ssi.archive.too-many-entries"]
    assert verdict.children == () and verdict.checks[0].state is CheckState.PARTIAL


def test_archives_nested_past_the_depth_limit_are_refused_through_the_engine() -> None:
    data = build_zip([Member("preuve.txt", b"fond")])
    for level in range(4):
        data = build_zip([Member(f"niveau-{level}.zip", data)])
    verdict = check(data, validator=ArchiveValidator(limits=TriageLimits(max_entries=10, max_depth=3)))
    depths = {f.rule: f for v in verdict.iter_files() for f in v.findings}
    assert "ssi.archive.nesting-depth" in depths
    assert depths["ssi.archive.nesting-depth"].location.entry == "niveau-1.zip"
    assert verdict.status is Status.FAIL


def test_settings_override_the_nested_limits() -> None:
    validator = ArchiveValidator.from_settings({"archive": {"max_entries": 2, "max_member_bytes": 10}})
    assert validator.limits.max_entries == 2 and validator.max_member_bytes == 10
    assert validator.limits.max_depth == ArchiveValidator().limits.max_depth
    verdict = check(build_zip([Member(f"f{i}", b"x") for i in range(3)]), validator=validator)
    assert rules_of(verdict) == ["ssi.archive.too-many-entries"]


def test_the_check_cooperates_with_its_deadline() -> None:
    ctx = CheckContext(deadline=0.0)
    with pytest.raises(Exception, match="time limit"):
        ArchiveValidator().check(proof(benign()), ctx)


def test_the_registry_loads_the_archive_family() -> None:
    assert [v.name for v in make_validators({})] == ["archive"]
    assert "validators.archive" in FAMILIES
    catalogued = {r for r in rules.catalogue() if r.startswith("ssi.archive.")}
    assert set(ArchiveValidator.rules) == catalogued
