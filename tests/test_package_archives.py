"""tar, 7z, RAR and gzip packages: unpacked with the zip rules, and the package file scanned by clamd whole.

The end-to-end cases run the real dry run with a private clamd (``clamd_settings``): an EICAR inside a
tar.gz, a 7z or a RAR package must give ``fail`` and ``quarantine: true``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from fixtures import builders
from fixtures.rarcraft import RarMember, build_rar4, build_rar5
from fixtures.sevenzipcraft import LZMA, SevenMember, build_7z
from fixtures.tarcraft import TarMember, build_tar, files
from fixtures.zipcraft import Member, build_zip
from validators import package
from validators.dryrun import dry_run
from validators.model import PackageVerdict, Severity, Status
from validators.package import open_package

PNG = builders.make_screenshot(["Écran de démonstration (données fictives)"])


def write(tmp_path: Path, data: bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def package_rules(verdict: PackageVerdict) -> list[str]:
    return sorted({f.rule for f in verdict.package_findings})


def ssi_errors(verdict: PackageVerdict) -> list[str]:
    return sorted({f.rule for f in verdict.iter_findings() if f.family == "ssi" and f.severity is Severity.ERROR})


@pytest.fixture
def no_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "_mapper", lambda: None)


# --- intake alone ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("preuves.tar", files({"INS.41.2.2/a.png": PNG, "INS.41.2.2/b.png": PNG})),
        ("preuves.tar.gz", files({"INS.41.2.2/a.png": PNG, "INS.41.2.2/b.png": PNG}, "gz")),
        ("preuves.tar.xz", files({"INS.41.2.2/a.png": PNG, "INS.41.2.2/b.png": PNG}, "xz")),
        ("preuves.7z", build_7z([SevenMember("INS.41.2.2/a.png", PNG, coder=LZMA),
                                 SevenMember("INS.41.2.2/b.png", PNG)], encode_header=True)),
        ("preuves.rar", build_rar5([RarMember("INS.41.2.2/a.png", PNG), RarMember("INS.41.2.2/b.png", PNG)])),
    ],
)
def test_archive_packages_are_unpacked_under_generated_names(
    tmp_path: Path, no_mapping: None, name: str, data: bytes
) -> None:
    with open_package(write(tmp_path, data, name)) as contents:
        assert contents.package_findings == []
        assert sorted(f.path for f in contents.files) == ["INS.41.2.2/a.png", "INS.41.2.2/b.png"]
        for file in contents.files:
            assert file.disk_path is not None and file.disk_path.read_bytes() == PNG
            assert file.sha256 == hashlib.sha256(PNG).hexdigest() and file.media_type == "image/png"
            assert file.disk_path.name[:6].isdigit()  # never the member's own name
        workdir = contents.files[0].disk_path.parents[1]  # type: ignore[union-attr]
        assert contents.container is not None and contents.container.sha256 == hashlib.sha256(data).hexdigest()
        assert contents.info.sha256 == hashlib.sha256(data).hexdigest()
    assert not workdir.exists()


def test_dangerous_members_of_a_tar_package_are_not_written(tmp_path: Path, no_mapping: None) -> None:
    data = build_tar([TarMember("../../evil.sh", b"#!/bin/sh\n"), TarMember("INS.1.1.1/a.txt", b"ok"),
                      TarMember("INS.1.1.1/lien", kind=b"2", linkname="/etc/passwd")], compression="gz")
    with open_package(write(tmp_path, data, "p.tgz")) as contents:
        assert {"ssi.archive.traversal", "ssi.archive.symlink"} <= {f.rule for f in contents.package_findings}
        assert [f.path for f in contents.files] == ["INS.1.1.1/a.txt"]
        written = os.listdir(contents.files[0].disk_path.parent)  # type: ignore[union-attr]
        assert len(written) == 1
    assert not (tmp_path.parent / "evil.sh").exists() and not (tmp_path / "evil.sh").exists()


def test_a_bomb_package_is_not_unpacked(tmp_path: Path, no_mapping: None) -> None:
    data = files({"INS.1.1.1/zeros.bin": bytes(64 * 1024 * 1024)}, "gz")
    with open_package(write(tmp_path, data, "p.tar.gz")) as contents:
        assert {"ssi.archive.ratio", "package.not-unpacked"} <= {f.rule for f in contents.package_findings}
        assert contents.files == []


def test_a_zip_package_fully_unpacked_is_not_scanned_twice(tmp_path: Path, no_mapping: None) -> None:
    data = build_zip([Member("INS.1.1.1/a.txt", b"trace")])
    with open_package(write(tmp_path, data, "p.zip")) as contents:
        assert contents.container is None
    partial = build_zip([Member("INS.1.1.1/a.txt", b"trace"), Member("INS.1.1.1/b.txt", b"x", flags=0x1)])
    with open_package(write(tmp_path, partial, "q.zip")) as contents:
        assert contents.container is not None  # a member was left out: clamd sees the whole zip


# --- end to end with clamd ------------------------------------------------------------------------


def run(tmp_path: Path, data: bytes, name: str, settings: dict[str, Any]) -> PackageVerdict:
    return dry_run(write(tmp_path, data, name), settings=settings)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("eicar.tar.gz", lambda e: files({"INS.41.2.2/trace.txt": e}, "gz")),
        ("eicar.tar.bz2", lambda e: files({"INS.41.2.2/trace.txt": e}, "bz2")),
        ("eicar.7z", lambda e: build_7z([SevenMember("INS.41.2.2/trace.txt", e, coder=LZMA)], encode_header=True)),
        ("eicar.rar", lambda e: build_rar4([RarMember("INS.41.2.2/trace.txt", e)])),
        ("eicar.txt.gz", lambda e: __import__("gzip").compress(e)),
    ],
)
def test_eicar_in_an_archive_package_fails_and_quarantines(
    tmp_path: Path, clamd_settings: dict[str, Any], name: str, make: Any
) -> None:
    verdict = run(tmp_path, make(builders.eicar()), name, clamd_settings)
    assert verdict.status is Status.FAIL and verdict.quarantine
    assert "ssi.malware" in package_rules(verdict)  # the package file itself, scanned whole


def test_packages_proofcheck_refuses_are_still_scanned_by_clamd(
    tmp_path: Path, clamd_settings: dict[str, Any]
) -> None:
    eicar = builders.eicar()
    refused = build_7z([SevenMember("INS.1.1.1/a.txt", eicar, coder=LZMA, dictionary=0xFFFFFFFF)])
    verdict = run(tmp_path, refused, "p.7z", clamd_settings)
    assert {"ssi.archive.dictionary", "ssi.malware"} <= set(ssi_errors(verdict)) and verdict.quarantine


def test_a_compressed_rar_package_is_refused_as_not_inspected(tmp_path: Path, clamd_settings: dict[str, Any]) -> None:
    verdict = run(tmp_path, build_rar5([RarMember("INS.41.2.2/a.png", PNG, compressed=True)]), "p.rar",
                  clamd_settings)
    assert verdict.status is Status.FAIL and "ssi.archive.content-not-inspected" in ssi_errors(verdict)


def test_a_benign_tgz_package_has_no_error(tmp_path: Path, clamd_settings: dict[str, Any]) -> None:
    settings = {**clamd_settings, "antivirus_test_signatures": "accept"}
    verdict = run(tmp_path, files({"INS.41.2.2/a.png": PNG, "INS.41.2.2/b.png": PNG}, "gz"), "p.tgz", settings)
    assert ssi_errors(verdict) == [] and not verdict.quarantine
    assert verdict.status in (Status.PASS, Status.WARNING)
    assert not any(f.severity is Severity.ERROR for f in verdict.iter_findings())


def test_without_clamd_the_package_scan_is_reported_not_run(tmp_path: Path) -> None:
    settings = {"clamd": "unix:/nonexistent/clamd.sock"}
    verdict = run(tmp_path, files({"INS.41.2.2/a.png": PNG}, "gz"), "p.tgz", settings)
    assert "system.check-not-run" in package_rules(verdict)
    assert verdict.status in (Status.ERROR, Status.FAIL) and verdict.status is not Status.PASS


def test_an_engine_without_an_antivirus_says_the_package_was_not_scanned(tmp_path: Path, no_mapping: None) -> None:
    from validators.archive import ArchiveValidator
    from validators.engine import Engine

    with open_package(write(tmp_path, files({"INS.1.1.1/a.txt": b"trace"}, "gz"), "p.tgz")) as contents:
        verdict = Engine([ArchiveValidator()]).run(contents)
    assert package_rules(verdict) == ["system.check-not-run"] and verdict.status is Status.ERROR
