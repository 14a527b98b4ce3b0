"""The verdict as SARIF 2.1.0, for publishers' CI (one run, tool ``proofcheck``).

Rendered from the typed verdict (as computed, or read back by ``validators.verdict_io``); the run's
properties carry the contract's sections as ``json_report`` writes them. Messages are the English ones
(CI tools show one text); each result's properties keep ``message_fr`` and ``params``. Files are
artifacts (children point to their container through ``parentIndex``); proof IDs and XPaths are logical
locations; what SARIF has no field for (page, time in a video, pixel region, archive entry, masked
evidence) goes into property bags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from validators import rules
from validators.model import FileVerdict, Finding, Location, PackageVerdict, ProofVerdict
from validators.report import json_report

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
PACKAGE_ROOT = "PACKAGEROOT"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def artifact_uri(path: str) -> str:
    """A relative URI reference for a package path (spaces, '!' and ':' of child paths percent-encoded)."""
    return quote(path, safe="/")


def rule_name(rule_id: str) -> str:
    """SARIF's identifier-like rule name: ``format.extension-mismatch`` -> ``FormatExtensionMismatch``."""
    words = rule_id.replace("-", ".").split(".")
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def _utc(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    return timestamp[: -len("+00:00")] + "Z" if timestamp.endswith("+00:00") else timestamp


def _descriptor(rule_id: str) -> dict[str, Any]:
    try:
        rule = rules.get(rule_id)
    except rules.UnknownRuleError:
        return {
            "id": rule_id,
            "name": rule_name(rule_id),
            "shortDescription": {"text": f"{rule_id} (not catalogued in this version)"},
            "properties": {"family": rule_id.split(".", 1)[0]},
        }
    return {
        "id": rule.id,
        "name": rule_name(rule.id),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": LEVELS[rule.severity.value]},
        "properties": {"family": rule.family},
    }


def _region(location: Location) -> dict[str, Any] | None:
    region: dict[str, Any] = {}
    if location.line is not None:
        region["startLine"] = max(1, location.line)
        if location.column is not None:
            region["startColumn"] = max(1, location.column)
    if location.span:
        start, end = location.span
        region["charOffset"] = max(0, start)
        region["charLength"] = max(0, end - start)
    return region or None


def _location_extras(location: Location) -> dict[str, Any]:
    """Location fields SARIF has no place for, kept in the location's property bag."""
    extras = {
        "page": location.page,
        "time": location.time,
        "entry": location.entry,
        "region": list(location.region) if location.region else None,
    }
    return {key: value for key, value in extras.items() if value is not None}


class _Run:
    """Accumulates one SARIF run: artifacts, rules used and results, in document order."""

    def __init__(self, verdict: PackageVerdict) -> None:
        self.verdict = verdict
        self.artifacts: list[dict[str, Any]] = []
        self.rule_index: dict[str, int] = {}
        self.descriptors: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []

    def _rule(self, rule_id: str) -> int:
        if rule_id not in self.rule_index:
            self.rule_index[rule_id] = len(self.descriptors)
            self.descriptors.append(_descriptor(rule_id))
        return self.rule_index[rule_id]

    def _artifact(self, file: FileVerdict, parent: int | None) -> int:
        artifact: dict[str, Any] = {
            "location": {"uri": artifact_uri(file.path), "uriBaseId": PACKAGE_ROOT},
            "length": file.size,
            "mimeType": file.media_type,
            "hashes": {"sha-256": file.sha256},
            "properties": {"status": file.status.value, "checks": [c.to_dict() for c in file.checks]},
        }
        if parent is not None:
            artifact["parentIndex"] = parent
        self.artifacts.append(artifact)
        return len(self.artifacts) - 1

    def add_finding(
        self,
        finding: Finding,
        *,
        file: FileVerdict | None = None,
        artifact: int | None = None,
        proof: ProofVerdict | None = None,
    ) -> None:
        where = finding.location
        location: dict[str, Any] = {}
        if file is not None and artifact is not None:
            target = {"uri": artifact_uri(file.path), "uriBaseId": PACKAGE_ROOT, "index": artifact}
            physical: dict[str, Any] = {"artifactLocation": target}
            region = _region(where)
            if region:
                physical["region"] = region
            location["physicalLocation"] = physical
        else:
            # Package and proof findings are about the package itself: point at it, so CI tools that
            # require a location still show them.
            package_uri = artifact_uri(self.verdict.package.name)
            location["physicalLocation"] = {"artifactLocation": {"uri": package_uri}}
        logical = []
        if proof is not None:
            logical.append({"name": proof.id, "fullyQualifiedName": proof.id, "kind": "module"})
        if where.xpath:
            logical.append({"fullyQualifiedName": where.xpath, "kind": "element"})
        if logical:
            location["logicalLocations"] = logical
        extras = _location_extras(where)
        if extras:
            location["properties"] = extras
        properties: dict[str, Any] = {"severity": finding.severity.value}
        if finding.message_fr is not None:
            properties["message_fr"] = finding.message_fr
        if finding.params:
            properties["params"] = dict(finding.params)
        if finding.evidence:
            properties["evidence"] = finding.evidence  # already masked by the validator
        if proof is not None:
            properties["proof"] = proof.id
        self.results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": self._rule(finding.rule),
                "level": LEVELS.get(finding.severity.value, "warning"),
                "message": {"text": finding.message},
                "locations": [location],
                "partialFingerprints": {"proofcheck/v1": _fingerprint(finding, file)},
                "properties": properties,
            }
        )

    def add_files(self, files: Iterable[FileVerdict], proof: ProofVerdict | None, parent: int | None = None) -> None:
        for file in files:
            index = self._artifact(file, parent)
            for finding in file.findings:
                self.add_finding(finding, file=file, artifact=index, proof=proof)
            self.add_files(file.children, proof, index)


def _fingerprint(finding: Finding, file: FileVerdict | None) -> str:
    """Stable across runs on the same bytes and ruleset, so CI can tell a new result from a known one."""
    where = [file.sha256, file.path] if file else [None, None]
    key = json.dumps([finding.rule, *where, finding.location.to_dict(), finding.message], sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def to_sarif(verdict: PackageVerdict) -> dict[str, Any]:
    """The SARIF log for a verdict."""
    run = _Run(verdict)
    for finding in verdict.package_findings:
        run.add_finding(finding)
    for proof in verdict.proofs:
        for finding in proof.findings:
            run.add_finding(finding, proof=proof)
        run.add_files(proof.files, proof)
    run.add_files(verdict.unmapped_files, None)
    doc = json_report.to_document(verdict)
    prov = verdict.provenance
    invocation: dict[str, Any] = {"executionSuccessful": True}
    for key, value in (("startTimeUtc", prov.started_at), ("endTimeUtc", prov.finished_at)):
        utc = _utc(value)
        if utc:
            invocation[key] = utc
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "proofcheck",
                        "version": prov.engine_version or "unknown",
                        "rules": run.descriptors,
                    }
                },
                "invocations": [invocation],
                "originalUriBaseIds": {
                    PACKAGE_ROOT: {"description": {"text": "The root of the proof package (zip or folder)."}}
                },
                "artifacts": run.artifacts,
                "results": run.results,
                "properties": {
                    "package": doc["package"],
                    "status": doc["status"],
                    "quarantine": doc["quarantine"],
                    "summary": doc["summary"],
                    "ruleset": doc["ruleset"],
                    "antivirus": doc["antivirus"],
                    "verdictSchemaVersion": doc["schema_version"],
                },
            }
        ],
    }


def render(verdict: PackageVerdict) -> str:
    return json.dumps(to_sarif(verdict), ensure_ascii=False, indent=2) + "\n"
