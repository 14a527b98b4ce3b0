"""The verdict as JUnit XML, for publishers' CI: one test suite per proof, one test case per file.

A file that fails is a ``<failure>``, a file whose check could not run is an ``<error>``: ``<skipped>``
is never used, so a check that did not run can never pass for a skipped test. Warnings and notes do
not fail a test case; they are listed in its ``<system-out>``. Rendered from
``json_report.to_document`` so it says exactly what the JSON contract says.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from validators.model import CheckRun, CheckState, Finding, Location, PackageVerdict, Severity, status_of
from validators.report import json_report
from validators.report.html import describe_location, rule_title

Document = Mapping[str, Any]

# Characters XML 1.0 cannot hold at all; a hostile file name may carry them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def own_status(findings: Iterable[Mapping[str, Any]], checks: Iterable[Mapping[str, Any]] = ()) -> str:
    """A test case's status from its own findings and checks, by the model's one roll-up rule."""
    as_findings = [Finding(f["rule"], Severity(f["severity"]), f["message"], Location()) for f in findings]
    as_checks = [CheckRun(c["name"], CheckState(c["status"])) for c in checks]
    return status_of(as_findings, as_checks).value


def _finding_line(finding: Mapping[str, Any]) -> str:
    title = rule_title(finding["rule"])
    rule = f"[{finding['severity']}] {finding['rule']}" + (f" ({title})" if title else "")
    parts = [rule, finding["message"]]
    where = describe_location(finding.get("location"))
    if where:
        parts.append(f"emplacement : {where}")
    if finding.get("evidence"):
        parts.append(f"indice (masqué) : {finding['evidence']}")
    return " | ".join(parts)


def _not_run_lines(checks: Iterable[Mapping[str, Any]]) -> list[str]:
    return [
        f"[check not run] {c['name']}" + (f": {c['detail']}" if c.get("detail") else "")
        for c in checks
        if c["status"] == CheckState.NOT_RUN.value
    ]


def _testcase(
    suite: ET.Element, name: str, classname: str, findings: list[Mapping[str, Any]],
    checks: list[Mapping[str, Any]] | None = None,
) -> str:
    checks = checks or []
    status = own_status(findings, checks)
    case = ET.SubElement(suite, "testcase", {"name": _clean(name), "classname": _clean(classname)})
    lines = [_finding_line(f) for f in findings] + _not_run_lines(checks)
    if status in ("fail", "error"):
        tag = "failure" if status == "fail" else "error"
        # The finding that decided the status names the failure; the text lists every finding.
        deciding = [
            f for f in findings
            if f["severity"] == "error" and (status == "error") == f["rule"].startswith("system.")
        ]
        first = deciding[0] if deciding else None
        attributes = {
            "message": _clean(first["message"] if first else "a check did not run"),
            "type": _clean(first["rule"] if first else "system.check-not-run"),
        }
        ET.SubElement(case, tag, attributes).text = _clean("\n".join(lines))
    elif lines:
        ET.SubElement(case, "system-out").text = _clean("\n".join(lines))
    return status


def _iter_files(files: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for file in files:
        yield file
        yield from _iter_files(file.get("children") or [])


def _properties(suite: ET.Element, doc: Document, extra: Iterable[tuple[str, Any]] = ()) -> None:
    props = ET.SubElement(suite, "properties")
    package = doc["package"]
    ruleset = doc.get("ruleset", {})
    pairs: list[tuple[str, Any]] = [
        ("ruleset.version", ruleset.get("version")),
        *((f"ruleset.component.{k}", v) for k, v in sorted((ruleset.get("components") or {}).items())),
        *((f"antivirus.{k}", v) for k, v in sorted((doc.get("antivirus") or {}).items())),
        ("engine.version", doc.get("engine", {}).get("version")),
        ("package.name", package["name"]),
        ("package.sha256", package["sha256"]),
        ("package.referential", package["referential"]),
        ("package.status", doc["status"]),
        ("package.quarantine", str(bool(doc.get("quarantine"))).lower()),
        *extra,
    ]
    for name, value in pairs:
        ET.SubElement(props, "property", {"name": _clean(name), "value": _clean(value)})


def _finish(suite: ET.Element, statuses: list[str]) -> None:
    suite.set("tests", str(len(statuses)))
    suite.set("failures", str(statuses.count("fail")))
    suite.set("errors", str(statuses.count("error")))
    suite.set("skipped", "0")


def to_element(doc: Document) -> ET.Element:
    """The ``<testsuites>`` tree for a verdict document."""
    root = ET.Element("testsuites", {"name": _clean(f"proofcheck {doc['package']['name']}")})
    timestamp = doc.get("engine", {}).get("started_at") or ""
    all_statuses: list[str] = []

    def new_suite(name: str, extra: Iterable[tuple[str, Any]] = ()) -> ET.Element:
        suite = ET.SubElement(root, "testsuite", {"name": _clean(name)})
        if timestamp:
            suite.set("timestamp", _clean(timestamp))
        _properties(suite, doc, extra)
        return suite

    package_suite = new_suite("package")
    statuses = [_testcase(package_suite, "package", "package", list(doc.get("package_findings") or []))]
    _finish(package_suite, statuses)
    all_statuses += statuses

    for proof in doc["proofs"]:
        suite = new_suite(
            proof["id"], (("proof.id_as_written", proof["id_as_written"]), ("proof.status", proof["status"]))
        )
        statuses = []
        if proof.get("findings"):
            statuses.append(_testcase(suite, "(proof)", proof["id"], list(proof["findings"])))
        for file in _iter_files(proof["files"]):
            findings, checks = list(file.get("findings", [])), list(file.get("checks", []))
            statuses.append(_testcase(suite, file["path"], proof["id"], findings, checks))
        _finish(suite, statuses)
        all_statuses += statuses

    unmapped = doc.get("unmapped_files") or []
    if unmapped:
        suite = new_suite("unmapped files")
        statuses = [
            _testcase(suite, f["path"], "unmapped", list(f.get("findings", [])), list(f.get("checks", [])))
            for f in _iter_files(unmapped)
        ]
        _finish(suite, statuses)
        all_statuses += statuses

    _finish(root, all_statuses)
    return root


def render_document(doc: Document) -> str:
    root = to_element(doc)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render(verdict: PackageVerdict) -> str:
    return render_document(json_report.to_document(verdict))
