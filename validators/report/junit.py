"""The verdict as JUnit XML, for publishers' CI: one test suite per proof, one test case per file.

A file that fails is a ``<failure>``, a file whose check could not run is an ``<error>``: ``<skipped>``
is never used, so a check that did not run can never pass for a skipped test. Warnings and notes do
not fail a test case; they are listed in its ``<system-out>``. Rendered from the typed verdict (as
computed, or read back by ``validators.verdict_io``), by the model's one roll-up rule.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Any

from validators.model import CheckRun, CheckState, Finding, PackageVerdict, Severity, Status, status_of
from validators.report.html import describe_location, rule_title

# Characters XML 1.0 cannot hold at all; a hostile file name may carry them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def _finding_line(finding: Finding) -> str:
    title = rule_title(finding.rule, "en")
    rule = f"[{finding.severity.value}] {finding.rule}" + (f" ({title})" if title else "")
    parts = [rule, finding.message]
    if finding.message_fr is not None:
        parts.append(f"fr : {finding.message_fr}")
    where = describe_location(finding.location)
    if where:
        parts.append(f"emplacement : {where}")
    if finding.evidence:
        parts.append(f"indice (masqué) : {finding.evidence}")
    return " | ".join(parts)


def _not_run_lines(checks: Iterable[CheckRun]) -> list[str]:
    return [
        f"[check not run] {c.name}" + (f": {c.detail}" if c.detail else "")
        for c in checks
        if c.state is CheckState.NOT_RUN
    ]


def _testcase(
    suite: ET.Element, name: str, classname: str, findings: Sequence[Finding], checks: Sequence[CheckRun] = ()
) -> Status:
    status = status_of(findings, checks)
    case = ET.SubElement(suite, "testcase", {"name": _clean(name), "classname": _clean(classname)})
    lines = [_finding_line(f) for f in findings] + _not_run_lines(checks)
    if status in (Status.FAIL, Status.ERROR):
        tag = "failure" if status is Status.FAIL else "error"
        # The finding that decided the status names the failure; the text lists every finding.
        deciding = [
            f for f in findings if f.severity is Severity.ERROR and (status is Status.ERROR) == f.is_system
        ]
        first = deciding[0] if deciding else None
        attributes = {
            "message": _clean(first.message if first else "a check did not run"),
            "type": _clean(first.rule if first else "system.check-not-run"),
        }
        ET.SubElement(case, tag, attributes).text = _clean("\n".join(lines))
    elif lines:
        ET.SubElement(case, "system-out").text = _clean("\n".join(lines))
    return status


def _properties(suite: ET.Element, verdict: PackageVerdict, extra: Iterable[tuple[str, Any]] = ()) -> None:
    props = ET.SubElement(suite, "properties")
    package, prov = verdict.package, verdict.provenance
    pairs: list[tuple[str, Any]] = [
        ("ruleset.version", prov.ruleset_version),
        *((f"ruleset.component.{k}", v) for k, v in sorted(prov.components)),
        *((f"antivirus.{k}", v) for k, v in sorted(prov.antivirus)),
        ("engine.version", prov.engine_version),
        ("package.name", package.name),
        ("package.sha256", package.sha256),
        ("package.referential", package.referential),
        ("package.status", verdict.status.value),
        ("package.quarantine", str(verdict.quarantine).lower()),
        *extra,
    ]
    for name, value in pairs:
        ET.SubElement(props, "property", {"name": _clean(name), "value": _clean(value)})


def _finish(suite: ET.Element, statuses: list[Status]) -> None:
    suite.set("tests", str(len(statuses)))
    suite.set("failures", str(statuses.count(Status.FAIL)))
    suite.set("errors", str(statuses.count(Status.ERROR)))
    suite.set("skipped", "0")


def to_element(verdict: PackageVerdict) -> ET.Element:
    """The ``<testsuites>`` tree for a verdict."""
    root = ET.Element("testsuites", {"name": _clean(f"proofcheck {verdict.package.name}")})
    timestamp = verdict.provenance.started_at
    all_statuses: list[Status] = []

    def new_suite(name: str, extra: Iterable[tuple[str, Any]] = ()) -> ET.Element:
        suite = ET.SubElement(root, "testsuite", {"name": _clean(name)})
        if timestamp:
            suite.set("timestamp", _clean(timestamp))
        _properties(suite, verdict, extra)
        return suite

    package_suite = new_suite("package")
    statuses = [_testcase(package_suite, "package", "package", verdict.package_findings)]
    _finish(package_suite, statuses)
    all_statuses += statuses

    for proof in verdict.proofs:
        suite = new_suite(
            proof.id, (("proof.id_as_written", proof.id_as_written), ("proof.status", proof.status.value))
        )
        statuses = []
        if proof.findings:
            statuses.append(_testcase(suite, "(proof)", proof.id, proof.findings))
        for top in proof.files:
            for file in top.iter_files():
                statuses.append(_testcase(suite, file.path, proof.id, file.findings, file.checks))
        _finish(suite, statuses)
        all_statuses += statuses

    if verdict.unmapped_files:
        suite = new_suite("unmapped files")
        statuses = [
            _testcase(suite, f.path, "unmapped", f.findings, f.checks)
            for top in verdict.unmapped_files
            for f in top.iter_files()
        ]
        _finish(suite, statuses)
        all_statuses += statuses

    _finish(root, all_statuses)
    return root


def render(verdict: PackageVerdict) -> str:
    root = to_element(verdict)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
