"""`proofcheck dry-run` end to end on the generated fixture packages: contract, exit codes, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fixtures.packages import PackageSpec, specs
from validators import schemas
from validators.cli import main
from validators.dryrun import build_engine, dry_run
from validators.engine import Engine
from validators.report.json_report import to_document

SPECS = {spec.name: spec for spec in specs()}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("packages")
    out = {}
    for name, spec in SPECS.items():
        path = folder / f"{name}.zip"
        path.write_bytes(spec.zip_bytes())
        out[name] = path
    return out


ACCEPT_TEST_SIGNATURES = {"antivirus_test_signatures": "accept"}


@pytest.fixture(scope="module")
def engine(clamd_settings: dict[str, str]) -> Engine:
    return build_engine({**clamd_settings, **ACCEPT_TEST_SIGNATURES})


def rules_in(document: dict[str, Any]) -> set[str]:
    found = {f["rule"] for f in document["package_findings"]}

    def walk(files: list[dict[str, Any]]) -> None:
        for file in files:
            found.update(f["rule"] for f in file["findings"])
            walk(file.get("children", []))

    for proof in document["proofs"]:
        found.update(f["rule"] for f in proof["findings"])
        walk(proof["files"])
    walk(document["unmapped_files"])
    return found


@pytest.fixture(scope="module")
def cda_engine(clamd_settings: dict[str, str], ruleset_settings: dict[str, Any]) -> Engine:
    """With the ANS ruleset synced (skipped where the tree is absent)."""
    return build_engine({**clamd_settings, **ACCEPT_TEST_SIGNATURES, **ruleset_settings})


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fixture_package_verdict_matches_its_spec_and_the_schema(
    name: str, packages: dict[str, Path], engine: Engine, request: pytest.FixtureRequest
) -> None:
    spec: PackageSpec = SPECS[name]
    if spec.status_without_ruleset is not None:
        engine = request.getfixturevalue("cda_engine")
    document = to_document(dry_run(packages[name], engine=engine))
    jsonschema.validate(document, schemas.load("verdict.schema.json"))
    assert document["status"] == spec.expected_status
    assert set(spec.expected_rules) <= rules_in(document)
    assert document["quarantine"] == any(r.startswith("ssi.") for r in spec.expected_rules)


@pytest.mark.parametrize("name", sorted(n for n, spec in SPECS.items() if spec.status_without_ruleset))
def test_cda_package_without_a_ruleset_says_what_did_not_run(
    name: str, packages: dict[str, Path], engine: Engine
) -> None:
    document = to_document(dry_run(packages[name], engine=engine))  # the session's ruleset store is empty
    assert document["status"] == SPECS[name].status_without_ruleset != "pass"
    assert document["ruleset"]["version"] == "none"
    assert "system.ruleset-missing" in rules_in(document)


def test_same_bytes_same_verdict(packages: dict[str, Path], engine: Engine) -> None:
    first = to_document(dry_run(packages["lgc-demo-risque"], engine=engine))
    second = to_document(dry_run(packages["lgc-demo-risque"], engine=engine))
    first.pop("engine")
    second.pop("engine")
    assert first == second


@pytest.mark.parametrize("fmt", ["json", "html", "sarif", "junit"])
def test_every_format_through_the_command(fmt: str, packages: dict[str, Path], tmp_path: Path,
                                          clamd_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROOFCHECK_CLAMD", clamd_settings["clamd"])
    monkeypatch.setenv("PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES", "accept")
    out = tmp_path / f"report.{fmt}"
    code = main(["dry-run", str(packages["lgc-demo-risque"]), "--format", fmt, "--output", str(out)])
    assert code == 1
    text = out.read_text(encoding="utf-8")
    assert text.strip()
    if fmt in ("json", "sarif"):
        json.loads(text)


def test_exit_codes(packages: dict[str, Path], clamd_settings: dict[str, str], tmp_path: Path) -> None:
    env = {"PROOFCHECK_CLAMD": clamd_settings["clamd"], "PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES": "accept",
           "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "validators.cli", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    assert run("dry-run", str(packages["lgc-demo-conforme"])).returncode == 0
    warning = run("dry-run", str(packages["lgc-demo-identifiants"]))
    assert warning.returncode == 0 and json.loads(warning.stdout)["status"] == "warning"
    assert run("dry-run", str(packages["lgc-demo-identifiants"]), "--strict").returncode == 3
    failing = run("dry-run", str(packages["lgc-demo-risque"]))
    assert failing.returncode == 1 and "Traceback" not in failing.stderr
    usage = run("dry-run", str(tmp_path / "absent.zip"))
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    assert run("dry-run", str(packages["lgc-demo-conforme"]), "--format", "pdf").returncode == 2
    assert run("explain", "pas.une-regle").returncode == 2
