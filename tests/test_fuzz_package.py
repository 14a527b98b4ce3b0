"""Fuzzing of the package intake (``open_package``) and of a whole dry run on random zips.

``open_package`` and the engine turn their own crashes into ``system.*`` findings, so "never raises" alone
would prove little here: the property is that no example ever produces one of those internal-error
findings, that every file handed to the checks lives in the private work dir (removed on exit), and that
the verdict serialises with masked evidence only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import (
    assert_catalogued,
    assert_evidence_masked,
    assert_no_nir_leak,
    digits_only,
    fuzz_settings,
    mutated,
    nirs,
    written_forms,
)
from test_fuzz_zip import SEED_ZIP, ZIP_TOKENS, members

from fixtures.zipcraft import DEFLATED, STORED, Member, build_zip
from validators.dryrun import build_engine
from validators.engine import Engine, PackageContents
from validators.model import Finding
from validators.package import open_package
from validators.report import json_report

INTERNAL_ERRORS = ("system.check-crashed",)


def internal_errors(findings: list[Finding]) -> list[str]:
    crashed = [f.rule for f in findings if f.rule in INTERNAL_ERRORS]
    crashed += [f.rule for f in findings if f.rule == "system.package-unreadable" and "internal error" in f.message]
    return crashed


def all_findings(contents: PackageContents) -> list[Finding]:
    found = list(contents.package_findings)
    for values in contents.file_findings.values():
        found.extend(values)
    for values in contents.proof_findings.values():
        found.extend(values)
    return found


def intake(data: bytes, name: str = "paquet.zip") -> list[Path]:
    """Open ``data`` as a package and check the intake's properties; returns the work files it used."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        with open_package(path) as contents:
            findings = all_findings(contents)
            assert_catalogued(findings)
            assert internal_errors(findings) == []
            disk = [f.disk_path for f in contents.files if f.disk_path is not None]
            assert len(disk) == len(contents.files)
            workdirs = {p.parents[1] for p in disk}
            assert len(workdirs) <= 1 and all(p.is_file() for p in disk)
            assert all(Path(folder) not in p.parents for p in disk)  # never extracted beside the package
    assert not any(p.exists() for p in disk)
    return disk


_manifests = st.one_of(
    st.binary(max_size=64),
    st.dictionaries(st.sampled_from(["proofs", "profiles", "complete", "referential", "x"]),
                    st.one_of(st.text(max_size=10), st.lists(st.text(max_size=10), max_size=3),
                              st.dictionaries(st.text(max_size=12), st.lists(st.text(max_size=12), max_size=2),
                                              max_size=3)), max_size=4).map(
        lambda d: yaml.safe_dump(d, allow_unicode=True).encode()),
)


@st.composite
def packages(draw: st.DrawFn) -> bytes:
    listed = draw(st.lists(members(), max_size=6))
    if draw(st.booleans()):
        listed.append(Member(draw(st.sampled_from(["manifest.yaml", "manifest.json", "Paquet/manifest.yml"])),
                             draw(_manifests), method=DEFLATED))
    return build_zip(listed)


@fuzz_settings(deadline_ms=5000)
@given(packages())
def test_random_packages(data: bytes) -> None:
    intake(data)


@fuzz_settings(deadline_ms=5000)
@given(st.one_of(st.binary(max_size=2048), mutated(SEED_ZIP, ZIP_TOKENS)))
def test_random_bytes_and_mutated_packages(data: bytes) -> None:
    intake(data)


# --- a whole dry run --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Every check, with no clamd and no CDA ruleset (those checks report themselves as not run)."""
    yield build_engine({"rulesets_dir": str(tmp_path_factory.mktemp("no-ruleset"))})


@st.composite
def packages_with_nirs(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    planted = draw(st.lists(nirs(), min_size=1, max_size=3))
    text = "".join(f"ligne {i} assuré NIR {draw(written_forms(v))} fin\n" for i, v in enumerate(planted))
    listed = [Member("INS.41.2.2/trace.log", text.encode(), method=DEFLATED),
              Member("INS.41.2.2/cda.xml", f"<doc><p>{text}</p></doc>".encode(), method=STORED)]
    listed += draw(st.lists(members(), max_size=3))
    return build_zip(listed), planted


@fuzz_settings(deadline_ms=20000, share=0.4)
@given(case=packages_with_nirs())
def test_dry_run_of_random_packages(engine: Engine, case: tuple[bytes, list[str]]) -> None:
    data, planted = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "paquet.zip"
        path.write_bytes(data)
        with open_package(path) as contents:
            verdict = engine.run(contents)
    findings = list(verdict.iter_findings())
    assert_catalogued(findings)
    assert internal_errors(findings) == []
    assert_evidence_masked(findings)
    assert_no_nir_leak(findings, planted)
    document = json_report.render(verdict)  # the contract document: it must serialise, and leak nothing
    assert not any(v[:13] in digits_only(document) for v in planted)
