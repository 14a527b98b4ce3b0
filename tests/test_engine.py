"""The engine fails closed: crashes and overruns become system findings, never a pass."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import ClassVar

import pytest

from validators import rules
from validators.base import CheckContext, CheckResult, Embedded, ProofFile, Validator
from validators.engine import Engine, PackageContents, RulesetInfo
from validators.model import CheckState, Finding, PackageInfo, Severity, Status


def proof_file(path: str, data: bytes, proof_id: str | None = "INS.1.1.1") -> ProofFile:
    return ProofFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="text/plain", data=data, proof_id=proof_id)


def contents(*files: ProofFile) -> PackageContents:
    return PackageContents(
        info=PackageInfo(name="pkg", sha256="0" * 64, source="test", referential="REM-MDV-LGC-SF-Va1"),
        files=list(files),
        ids_as_written={"INS.1.1.1": "INS 1.1.1"},
    )


class Crashing(Validator):
    name = "crashing"
    rules: ClassVar[tuple[str, ...]] = ()

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        raise ValueError("boom with content that must not be reported")


class Sleeping(Validator):
    name = "sleeping"
    rules: ClassVar[tuple[str, ...]] = ()
    timeout = 0.2

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        while True:
            ctx.check_time()
            time.sleep(0.01)


class HangingUncooperative(Validator):
    name = "hanging"
    rules: ClassVar[tuple[str, ...]] = ()
    timeout = 0.2

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        time.sleep(2)
        return CheckResult()


class NotRunQuietly(Validator):
    name = "quiet"
    rules: ClassVar[tuple[str, ...]] = ()

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        return CheckResult(state=CheckState.NOT_RUN, detail="tool missing")


class Unpacking(Validator):
    """Finds an embedded file in files named *.box; flags files whose content is 'bad'."""

    name = "unpacking"
    rules: ClassVar[tuple[str, ...]] = ("system.nesting-limit",)

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        data = file.read()
        if data.startswith(b"box:"):
            return CheckResult(children=[Embedded("inner.txt", data[4:], "test box")])
        if data == b"bad":
            return CheckResult(findings=[rules.finding("system.nesting-limit", depth=0, count=0)])
        return CheckResult()


class Undeclared(Validator):
    name = "undeclared"
    rules: ClassVar[tuple[str, ...]] = ()

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        return CheckResult(findings=[Finding("pii.something", Severity.ERROR, "m")])


def test_crash_becomes_system_error_without_message() -> None:
    verdict = Engine([Crashing()]).run(contents(proof_file("a.txt", b"x")))
    [row] = verdict.flatten(["rule", "severity", "message"])
    assert row[:2] == ["system.check-crashed", "error"]
    assert "boom" not in row[2] and "ValueError" in row[2]
    assert verdict.status is Status.ERROR
    file = verdict.proofs[0].files[0]
    assert [(c.name, c.state) for c in file.checks] == [("crashing", CheckState.NOT_RUN)]


@pytest.mark.parametrize("validator", [Sleeping(), HangingUncooperative()], ids=["cooperative", "uncooperative"])
def test_timeout_becomes_system_error(validator: Validator) -> None:
    start = time.monotonic()
    verdict = Engine([validator]).run(contents(proof_file("a.txt", b"x")))
    assert time.monotonic() - start < 1.5
    assert verdict.flatten(["rule"]) == [["system.timeout"]]
    assert verdict.status is Status.ERROR


def test_not_run_without_system_finding_gets_one() -> None:
    verdict = Engine([NotRunQuietly()]).run(contents(proof_file("a.txt", b"x")))
    assert verdict.flatten(["rule"]) == [["system.check-not-run"]]
    assert verdict.status is Status.ERROR


def test_children_are_checked_recursively_and_roll_up() -> None:
    verdict = Engine([Unpacking()]).run(contents(proof_file("a.box", b"box:bad")))
    parent = verdict.proofs[0].files[0]
    assert parent.own_status is Status.PASS
    [child] = parent.children
    assert child.path == "a.box!1:inner.txt"
    assert child.sha256 == hashlib.sha256(b"bad").hexdigest()
    assert child.findings[0].rule == "system.nesting-limit"
    assert verdict.status is Status.ERROR


def test_nesting_is_bounded() -> None:
    data = b"box:" * 50 + b"ok"
    verdict = Engine([Unpacking()]).run(contents(proof_file("deep.box", data)))
    rules_found = [r[0] for r in verdict.flatten(["rule"])]
    assert rules_found == ["system.nesting-limit"]
    assert verdict.status is Status.ERROR


def test_undeclared_rule_fails_closed() -> None:
    verdict = Engine([Undeclared()]).run(contents(proof_file("a.txt", b"x")))
    assert verdict.flatten(["rule"]) == [["system.check-crashed"]]
    assert verdict.status is Status.ERROR


def test_engine_refuses_uncatalogued_declarations() -> None:
    class Bad(Unpacking):
        rules: ClassVar[tuple[str, ...]] = ("pii.does-not-exist",)

    with pytest.raises(rules.UnknownRuleError):
        Engine([Bad()])


def test_same_input_same_verdict_except_timestamps() -> None:
    from validators.report.json_report import to_document

    files = [proof_file(f"f{i}.txt", b"bad" if i % 2 else b"ok", None) for i in range(5)]
    engine = Engine([Unpacking()], ruleset=RulesetInfo(version="v1", components={"J66": "1"}))
    first = to_document(engine.run(contents(*files)))
    second = to_document(engine.run(contents(*reversed(files))))
    for doc in (first, second):
        doc.pop("engine")
    assert first == second
    assert first["ruleset"] == {"version": "v1", "components": {"J66": "1"}}
    assert [f["path"] for f in first["unmapped_files"]] == [f"f{i}.txt" for i in range(5)]


def test_severity_override() -> None:
    finding = rules.finding("system.timeout", severity=Severity.WARNING, check="c", seconds=1)
    assert finding.severity is Severity.WARNING


class CrashingApplies(Unpacking):
    name = "crashing-applies"

    def applies_to(self, file: ProofFile) -> bool:
        raise RuntimeError("bad")


def test_crash_in_applies_to_fails_closed() -> None:
    verdict = Engine([CrashingApplies()]).run(contents(proof_file("a.txt", b"x")))
    assert verdict.flatten(["rule"]) == [["system.check-crashed"]]
    assert verdict.status is Status.ERROR


def test_child_keeps_its_relative_path_but_never_escapes() -> None:
    from validators.engine import make_child

    parent = proof_file("a.zip", b"zip")
    child = make_child(parent, Embedded("../../etc/dir/capture.png", b"x", "zip member"), 1)
    assert child.path == "a.zip!1:etc/dir/capture.png"
    assert child.name == "capture.png" and child.extension == "png"
    assert make_child(parent, Embedded("/", b"x", "zip member"), 2).path == "a.zip!2:embedded-2"


class Flagging(Unpacking):
    """Unpacks like its parent; flags content 'virus' as malware and 'nir' as personal data."""

    name = "flagging"
    rules: ClassVar[tuple[str, ...]] = ("ssi.malware", "pii.nir", "format.truncated")

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        data = file.read()
        if data.startswith(b"box:"):
            return CheckResult(children=[Embedded(f"level/{file.depth}.bin", data[4:], "test box")])
        found = {b"virus": "ssi.malware", b"nir": "pii.nir", b"cut": "format.truncated"}.get(data)
        if found:
            return CheckResult(findings=[Finding(found, Severity.ERROR, "m")])
        return CheckResult()


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"virus", ["ssi.embedded-risk"]), (b"nir", ["pii.embedded"]), (b"cut", []), (b"fine", [])],
    ids=["ssi", "pii", "format-not-propagated", "clean"],
)
def test_errors_inside_are_carried_by_every_enclosing_file(content: bytes, expected: list[str]) -> None:
    verdict = Engine([Flagging()]).run(contents(proof_file("outer.box", b"box:box:" + content)))
    outer = verdict.proofs[0].files[0]
    [middle] = outer.children
    assert [f.rule for f in outer.findings] == expected
    assert [f.rule for f in middle.findings] == expected
    if expected:
        assert outer.findings[0].location.entry == "level/1.bin"
        assert "1 " in outer.findings[0].message


class WaitsForOthers(Validator):
    """Like clamd: waits on something outside; here, on a check that runs after it in the list."""

    name = "waits"
    rules: ClassVar[tuple[str, ...]] = ()
    timeout = 10.0
    overlaps = True

    def __init__(self, overlaps: bool) -> None:
        self.overlaps = overlaps  # type: ignore[misc]
        self.released = threading.Event()

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        while not self.released.wait(0.01):
            ctx.check_time()
        return CheckResult()


class Releases(Validator):
    name = "releases"
    rules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, other: WaitsForOthers) -> None:
        self.other = other

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        self.other.released.set()
        return CheckResult()


def test_an_overlapping_check_runs_beside_the_next_ones() -> None:
    waiting = WaitsForOthers(overlaps=True)
    verdict = Engine([waiting, Releases(waiting)]).run(contents(proof_file("a.txt", b"x")))
    assert verdict.status is Status.PASS
    assert [(c.name, c.state) for c in verdict.proofs[0].files[0].checks] == [
        ("releases", CheckState.RAN), ("waits", CheckState.RAN)
    ]


def test_a_check_that_does_not_overlap_runs_alone_and_times_out_closed() -> None:
    waiting = WaitsForOthers(overlaps=False)
    verdict = Engine([waiting, Releases(waiting)], settings={"timeouts": {"waits": 0.3}}).run(
        contents(proof_file("a.txt", b"x"))
    )
    assert verdict.flatten(["rule"]) == [["system.timeout"]]
    assert verdict.status is Status.ERROR


def test_an_overlapping_check_that_overruns_is_still_a_timeout() -> None:
    waiting = WaitsForOthers(overlaps=True)
    verdict = Engine([waiting], settings={"timeouts": {"waits": 0.3}}).run(contents(proof_file("a.txt", b"x")))
    assert verdict.flatten(["rule"]) == [["system.timeout"]]
