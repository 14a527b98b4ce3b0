"""The verdict as SARIF 2.1.0, for publishers' CI (one run, tool ``proofcheck``).

Rendered from ``json_report.to_document`` so it says exactly what the JSON contract says. Files are
artifacts (children point to their container through ``parentIndex``); proof IDs and XPaths are logical
locations; what SARIF has no field for (page, time in a video, pixel region, archive entry, masked
evidence) goes into property bags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from validators import rules
from validators.model import PackageVerdict
from validators.report import json_report

Document = Mapping[str, Any]

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


def _region(location: Mapping[str, Any]) -> dict[str, Any] | None:
    region: dict[str, Any] = {}
    if location.get("line") is not None:
        region["startLine"] = max(1, int(location["line"]))
        if location.get("column") is not None:
            region["startColumn"] = max(1, int(location["column"]))
    if location.get("span"):
        start, end = (int(v) for v in location["span"])
        region["charOffset"] = max(0, start)
        region["charLength"] = max(0, end - start)
    return region or None


def _location_extras(location: Mapping[str, Any]) -> dict[str, Any]:
    """Location fields SARIF has no place for, kept in the location's property bag."""
    extras = {key: location.get(key) for key in ("page", "time", "entry", "region")}
    return {key: value for key, value in extras.items() if value is not None}


class _Run:
    """Accumulates one SARIF run: artifacts, rules used and results, in document order."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.artifacts: list[dict[str, Any]] = []
        self.rule_index: dict[str, int] = {}
        self.descriptors: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []

    def _rule(self, rule_id: str) -> int:
        if rule_id not in self.rule_index:
            self.rule_index[rule_id] = len(self.descriptors)
            self.descriptors.append(_descriptor(rule_id))
        return self.rule_index[rule_id]

    def _artifact(self, file: Mapping[str, Any], parent: int | None) -> int:
        artifact: dict[str, Any] = {
            "location": {"uri": artifact_uri(file["path"]), "uriBaseId": PACKAGE_ROOT},
            "length": file["size"],
            "mimeType": file["media_type"],
            "hashes": {"sha-256": file["sha256"]},
            "properties": {"status": file["status"], "checks": file.get("checks", [])},
        }
        if parent is not None:
            artifact["parentIndex"] = parent
        self.artifacts.append(artifact)
        return len(self.artifacts) - 1

    def add_finding(
        self,
        finding: Mapping[str, Any],
        *,
        file: Mapping[str, Any] | None = None,
        artifact: int | None = None,
        proof: Mapping[str, Any] | None = None,
    ) -> None:
        location_fields = finding.get("location") or {}
        location: dict[str, Any] = {}
        if file is not None and artifact is not None:
            target = {"uri": artifact_uri(file["path"]), "uriBaseId": PACKAGE_ROOT, "index": artifact}
            physical: dict[str, Any] = {"artifactLocation": target}
            region = _region(location_fields)
            if region:
                physical["region"] = region
            location["physicalLocation"] = physical
        else:
            # Package and proof findings are about the package itself: point at it, so CI tools that
            # require a location still show them.
            package_uri = artifact_uri(self.doc["package"]["name"])
            location["physicalLocation"] = {"artifactLocation": {"uri": package_uri}}
        logical = []
        if proof is not None:
            logical.append({"name": proof["id"], "fullyQualifiedName": proof["id"], "kind": "module"})
        if location_fields.get("xpath"):
            logical.append({"fullyQualifiedName": location_fields["xpath"], "kind": "element"})
        if logical:
            location["logicalLocations"] = logical
        extras = _location_extras(location_fields)
        if extras:
            location["properties"] = extras
        properties: dict[str, Any] = {"severity": finding["severity"]}
        if finding.get("evidence"):
            properties["evidence"] = finding["evidence"]  # already masked by the validator
        if proof is not None:
            properties["proof"] = proof["id"]
        self.results.append(
            {
                "ruleId": finding["rule"],
                "ruleIndex": self._rule(finding["rule"]),
                "level": LEVELS.get(finding["severity"], "warning"),
                "message": {"text": finding["message"]},
                "locations": [location],
                "partialFingerprints": {"proofcheck/v1": _fingerprint(finding, file)},
                "properties": properties,
            }
        )

    def add_files(
        self, files: Iterable[Mapping[str, Any]], proof: Mapping[str, Any] | None, parent: int | None = None
    ) -> None:
        for file in files:
            index = self._artifact(file, parent)
            for finding in file.get("findings", []):
                self.add_finding(finding, file=file, artifact=index, proof=proof)
            self.add_files(file.get("children") or [], proof, index)


def _fingerprint(finding: Mapping[str, Any], file: Mapping[str, Any] | None) -> str:
    """Stable across runs on the same bytes and ruleset, so CI can tell a new result from a known one."""
    where = [file["sha256"], file["path"]] if file else [None, None]
    key = json.dumps([finding["rule"], *where, finding.get("location"), finding["message"]], sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def to_sarif(doc: Document) -> dict[str, Any]:
    """The SARIF log for a verdict document."""
    run = _Run(doc)
    for finding in doc.get("package_findings") or []:
        run.add_finding(finding)
    for proof in doc["proofs"]:
        for finding in proof.get("findings") or []:
            run.add_finding(finding, proof=proof)
        run.add_files(proof["files"], proof)
    run.add_files(doc.get("unmapped_files") or [], None)
    engine = doc.get("engine", {})
    invocation: dict[str, Any] = {"executionSuccessful": True}
    for key, field in (("startTimeUtc", "started_at"), ("endTimeUtc", "finished_at")):
        value = _utc(engine.get(field))
        if value:
            invocation[key] = value
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "proofcheck",
                        "version": str(engine.get("version") or "unknown"),
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
                    "quarantine": doc.get("quarantine", False),
                    "summary": doc.get("summary", {}),
                    "ruleset": doc.get("ruleset", {}),
                    "antivirus": doc.get("antivirus", {}),
                    "verdictSchemaVersion": doc.get("schema_version"),
                },
            }
        ],
    }


def render_document(doc: Document) -> str:
    return json.dumps(to_sarif(doc), ensure_ascii=False, indent=2) + "\n"


def render(verdict: PackageVerdict) -> str:
    return render_document(json_report.to_document(verdict))
