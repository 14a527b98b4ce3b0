"""The archive corpus through the real dry run with a private clamd, as the issue checks it: each hostile
archive, as the only proof of a package and as the package itself, must be caught (``fail`` or ``error``
with an error-severity ``ssi.``/``format.``/``system.`` finding); each benign twin must raise no error."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.hostile_archives import ArchiveCase, benign_cases, hostile_cases
from validators.dryrun import build_engine, dry_run
from validators.engine import Engine
from validators.model import PackageVerdict, Severity, Status

HOSTILE = hostile_cases()
BENIGN = benign_cases()
CAUGHT_FAMILIES = ("ssi", "format", "system")


@pytest.fixture(scope="module")
def engine(clamd_settings: dict[str, str]) -> Engine:
    return build_engine({**clamd_settings, "antivirus_test_signatures": "accept"})


def as_proof(engine: Engine, name: str, data: bytes, tmp_path: Path) -> PackageVerdict:
    folder = tmp_path / "package" / "DOC.1.1.1"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    return dry_run(tmp_path / "package", engine=engine)


def as_package(engine: Engine, name: str, data: bytes, tmp_path: Path) -> PackageVerdict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_bytes(data)
    return dry_run(path, engine=engine)


def caught(verdict: PackageVerdict) -> bool:
    errors = [f for f in verdict.iter_findings() if f.severity is Severity.ERROR and f.family in CAUGHT_FAMILIES]
    return verdict.status in (Status.FAIL, Status.ERROR) and bool(errors)


def test_the_corpus_covers_every_format_and_name_source() -> None:
    names = [case.name for case in HOSTILE]
    for suffix in (".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zip"):
        assert any(name.endswith(suffix) for name in names), suffix
    assert len(HOSTILE) >= 80 and len(BENIGN) >= 12


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name.encode("unicode_escape").decode() for c in HOSTILE])
def test_every_hostile_archive_is_caught_as_a_proof_and_as_the_package(
    engine: Engine, case: ArchiveCase, tmp_path: Path
) -> None:
    data = case.data
    proof = as_proof(engine, case.name, data, tmp_path / "proof")
    assert caught(proof), proof.flatten(["rule", "severity"])
    package = as_package(engine, case.name, data, tmp_path / "package")
    assert caught(package), package.flatten(["rule", "severity"])
    if "eicar" in case.name:
        assert proof.quarantine and package.quarantine


@pytest.mark.parametrize("case", BENIGN, ids=[c.name for c in BENIGN])
def test_benign_twins_raise_no_error(engine: Engine, case: ArchiveCase, tmp_path: Path) -> None:
    data = case.data
    for verdict in (as_proof(engine, case.name, data, tmp_path / "proof"),
                    as_package(engine, case.name, data, tmp_path / "package")):
        errors = [row for row in verdict.flatten(["rule", "severity", "path"]) if row[1] == "error"]
        assert errors == [] and not verdict.quarantine
