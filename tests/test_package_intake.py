"""Package intake: zips and folders in, ProofFiles out; every bad input is a finding, never a traceback."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ziptriage import PNG, STORED, Member, benign, build_zip, many_entries_zip

from validators import package
from validators.archive import ArchiveValidator
from validators.engine import Engine, PackageContents
from validators.model import Status
from validators.package import open_package


def write(tmp_path: Path, data: bytes, name: str = "preuves.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rules_of(contents: PackageContents) -> list[str]:
    return sorted({f.rule for f in contents.package_findings})


@pytest.fixture(autouse=True)
def no_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Intake is tested on its own: the proof mapping (a colleague's module) is stubbed out."""
    monkeypatch.setattr(package, "_mapper", lambda: None)


# --- zips -----------------------------------------------------------------------------------------


def test_a_zip_becomes_proof_files_in_a_private_work_dir_removed_on_exit(tmp_path: Path) -> None:
    data = benign()
    with open_package(write(tmp_path, data)) as contents:
        assert contents.package_findings == []
        assert contents.info.sha256 == hashlib.sha256(data).hexdigest()
        assert contents.info.name == "preuves.zip" and contents.info.referential == "REM-MDV-LGC-SF-Va1"
        files = {f.path: f for f in contents.files}
        assert sorted(files) == ["DOC.3.1.2/lettre.pdf", "INS.41.2.2/capture.png"]
        pdf = files["DOC.3.1.2/lettre.pdf"]
        expected = b"%PDF-1.7\n" + b"x" * 5000
        assert (pdf.size, pdf.sha256, pdf.media_type) == (len(expected), hashlib.sha256(expected).hexdigest(),
                                                           "application/pdf")
        assert pdf.disk_path is not None and pdf.read() == expected
        workdir = pdf.disk_path.parents[1]
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    assert not workdir.exists()


def test_members_are_stored_under_generated_names_only(tmp_path: Path) -> None:
    data = build_zip([Member("a/b/c/tr\u00e8s long nom.pdf", b"%PDF-1.4 x"), Member("CON", b"x")])
    with open_package(write(tmp_path, data)) as contents:
        names = sorted(f.disk_path.name for f in contents.files if f.disk_path)
        assert names == ["000000.pdf", "000001"]


def test_the_work_dir_is_removed_even_when_the_caller_fails(tmp_path: Path) -> None:
    seen: list[Path] = []
    with pytest.raises(RuntimeError), open_package(write(tmp_path, benign())) as contents:
        seen.extend(f.disk_path for f in contents.files if f.disk_path)
        raise RuntimeError("caller failure")
    assert seen and not any(p.exists() for p in seen)


@pytest.mark.parametrize(
    ("data", "name", "rule"),
    [
        (b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n", "preuves.pdf", "package.not-a-package"),
        (b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n", "preuves.zip", "package.corrupt"),
        (benign()[:200], "preuves.zip", "package.corrupt"),
        (build_zip([]), "preuves.zip", "package.empty"),
        (build_zip([Member("dossier/", b"")]), "preuves.zip", "package.empty"),
    ],
    ids=["pdf", "pdf-named-zip", "truncated", "empty-zip", "only-folders"],
)
def test_unusable_packages_are_one_clear_finding(tmp_path: Path, data: bytes, name: str, rule: str) -> None:
    with open_package(write(tmp_path, data, name)) as contents:
        assert rules_of(contents) == [rule] and contents.files == []
        if rule == "package.not-a-package":
            assert "application/pdf" in contents.package_findings[0].message


def test_an_intake_bug_is_an_error_finding_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise IndexError("content that must not be reported")

    monkeypatch.setattr(package, "triage", broken)
    with open_package(write(tmp_path, benign())) as contents:
        (finding,) = contents.package_findings
        assert finding.rule == "system.package-unreadable" and "IndexError" in finding.message
        assert "content" not in finding.message and contents.files == []


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_mutated_packages_never_raise(data: st.DataObject) -> None:
    members = [Member("INS.1.1.1/a.txt", b"trace " * 200), Member("b.png", PNG, method=STORED)]
    original = bytearray(build_zip(members))
    for _ in range(data.draw(st.integers(1, 6))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.zip"
        path.write_bytes(bytes(original[: data.draw(st.integers(1, len(original)))]))
        with open_package(path) as contents:
            assert all(f.disk_path is not None and f.disk_path.exists() for f in contents.files)


def test_a_missing_path_is_a_system_finding(tmp_path: Path) -> None:
    with open_package(tmp_path / "absent.zip") as contents:
        assert rules_of(contents) == ["system.package-unreadable"] and contents.files == []


def test_100000_entries_are_refused_without_unpacking(tmp_path: Path) -> None:
    with open_package(write(tmp_path, many_entries_zip(100_000))) as contents:
        assert rules_of(contents) == ["package.not-unpacked", "ssi.archive.too-many-entries"]
        assert contents.files == []


def test_one_gib_declared_in_a_small_zip_is_refused_without_unpacking(tmp_path: Path) -> None:
    bomb = build_zip([Member("bombe.bin", bytes(1024 * 1024), declared_size=1024**3, zip64=True)])
    with open_package(write(tmp_path, bomb)) as contents:
        assert {"ssi.archive.ratio", "package.not-unpacked"} <= set(rules_of(contents))
        assert contents.files == []


def test_a_member_bigger_than_it_declares_is_cut_off_and_removed(tmp_path: Path) -> None:
    data = build_zip([Member("bombe.bin", bytes(5_000_000), declared_size=10), Member("ok.txt", b"ok")])
    with open_package(write(tmp_path, data)) as contents:
        assert rules_of(contents) == ["ssi.archive.size-mismatch"]
        assert [f.path for f in contents.files] == ["ok.txt"]
        (kept,) = contents.files
        assert kept.disk_path is not None
        assert sorted(p.name for p in kept.disk_path.parent.iterdir()) == ["000001.txt"]


def test_unsafe_members_are_reported_and_never_written(tmp_path: Path) -> None:
    target = tmp_path / "outside" / "evil.txt"
    data = build_zip([
        Member("../outside/evil.txt", b"x"),
        Member(str(target), b"x"),
        Member("lien", b"/etc/passwd", unix_mode=0o120777),
        Member("secret.pdf", b"x", flags=0x1),
        Member("INS.41.2.2/ok.txt", b"ok"),
    ])
    with open_package(write(tmp_path, data)) as contents:
        assert rules_of(contents) == ["ssi.archive.encrypted", "ssi.archive.symlink", "ssi.archive.traversal"]
        assert [f.path for f in contents.files] == ["INS.41.2.2/ok.txt"]
    assert not target.exists() and not (tmp_path / "outside").exists()


def test_duplicate_names_are_all_checked_under_distinct_paths(tmp_path: Path) -> None:
    data = build_zip([Member("a.txt", b"first"), Member("a.txt", b"second")])
    with open_package(write(tmp_path, data)) as contents:
        assert rules_of(contents) == ["ssi.archive.duplicate-name"]
        assert sorted((f.path, f.read()) for f in contents.files) == [("a.txt", b"first"),
                                                                      ("a.txt (copy 2)", b"second")]


def test_names_in_odd_encodings_are_a_file_finding(tmp_path: Path) -> None:
    data = build_zip([Member("écran.png".encode("cp437"), PNG), Member("ok.png", PNG)])
    with open_package(write(tmp_path, data)) as contents:
        assert [f.path for f in contents.files] == ["écran.png", "ok.png"]
        assert {p: [f.rule for f in fs] for p, fs in contents.file_findings.items()} == {
            "écran.png": ["package.name-encoding"]
        }


def test_hidden_characters_never_reach_a_path(tmp_path: Path) -> None:
    data = build_zip([Member("facture\u202efdp.exe", b"MZ")])
    with open_package(write(tmp_path, data)) as contents:
        assert rules_of(contents) == ["ssi.archive.deceptive-name"]
        assert [f.path for f in contents.files] == ["facture\\u202efdp.exe"]


def test_a_zip_behind_an_image_is_unpacked_but_quarantined(tmp_path: Path) -> None:
    data = build_zip([Member("INS.1.1.1/a.txt", b"x")], prefix=PNG)
    with open_package(write(tmp_path, data)) as contents:
        assert rules_of(contents) == ["ssi.archive.polyglot"]
        assert [f.path for f in contents.files] == ["INS.1.1.1/a.txt"]


def test_package_limits_come_from_settings(tmp_path: Path) -> None:
    settings = {"package": {"max_entries": 2}, "source": "s3://inbox/preuves.zip"}
    with open_package(write(tmp_path, many_entries_zip(3)), settings=settings) as contents:
        assert "ssi.archive.too-many-entries" in rules_of(contents)
        assert contents.info.source == "s3://inbox/preuves.zip"


def test_a_zip64_local_header_with_an_ordinary_directory_is_read(tmp_path: Path) -> None:
    out = io.BytesIO()
    archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
    with archive, archive.open("big.txt", "w", force_zip64=True) as member:
        member.write(b"line\n" * 1000)
    with open_package(write(tmp_path, out.getvalue())) as contents:
        assert [f.read() for f in contents.files] == [b"line\n" * 1000]


# --- folders --------------------------------------------------------------------------------------


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_a_folder_is_read_in_place_with_a_documented_digest(tmp_path: Path) -> None:
    files = {"INS.41.2.2/capture.png": PNG, "DOC.3.1.2/lettre.pdf": b"%PDF-1.4\n"}
    root = make_folder(tmp_path / "preuves", files)
    with open_package(root) as contents:
        assert contents.package_findings == []
        kept = {f.path: f for f in contents.files}
        assert sorted(kept) == sorted(files)
        assert kept["DOC.3.1.2/lettre.pdf"].disk_path == root / "DOC.3.1.2/lettre.pdf"
        lines = "".join(f"{p}\0{hashlib.sha256(files[p]).hexdigest()}\n" for p in sorted(files))
        assert contents.info.sha256 == hashlib.sha256(lines.encode()).hexdigest()
    assert (root / "DOC.3.1.2/lettre.pdf").exists()  # never removed: not ours


def test_links_in_a_folder_are_never_followed(tmp_path: Path) -> None:
    secret = make_folder(tmp_path / "ailleurs", {"secret.txt": b"not part of the package"}) / "secret.txt"
    root = make_folder(tmp_path / "preuves", {"INS.1.1.1/a.txt": b"x"})
    (root / "dehors").symlink_to(secret)
    (root / "dossier-dehors").symlink_to(secret.parent, target_is_directory=True)
    (root / "dedans").symlink_to(root / "INS.1.1.1" / "a.txt")
    with open_package(root) as contents:
        found = sorted((f.rule, f.location.entry) for f in contents.package_findings)
        assert found == [("package.symlink", "dedans"), ("ssi.archive.symlink", "dehors"),
                         ("ssi.archive.symlink", "dossier-dehors")]
        assert [f.path for f in contents.files] == ["INS.1.1.1/a.txt"]


def test_special_files_in_a_folder_are_unreadable_not_opened(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "preuves", {"a.txt": b"x"})
    os.mkfifo(root / "tube")  # opening it for reading would block forever
    with open_package(root) as contents:
        assert [(f.rule, f.location.entry) for f in contents.package_findings] == [
            ("package.file-unreadable", "tube")
        ]


def test_each_unreadable_file_gets_its_own_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "preuves", {"a.txt": b"x", "b.txt": b"y", "c.txt": b"z"})
    if os.geteuid() != 0:
        for name in ("a.txt", "c.txt"):
            (root / name).chmod(0)
    else:  # root reads everything: simulate the permission error the file system would give
        real_open = os.open

        def refusing_open(path: Any, flags: int, *args: Any) -> int:
            if str(path).endswith(("a.txt", "c.txt")):
                raise PermissionError(13, "Permission denied")
            return real_open(path, flags, *args)

        monkeypatch.setattr(package.os, "open", refusing_open)
    with open_package(root) as contents:
        found = sorted((f.rule, f.location.entry) for f in contents.package_findings)
        assert found == [("package.file-unreadable", "a.txt"), ("package.file-unreadable", "c.txt")]
        assert [f.path for f in contents.files] == ["b.txt"]


def test_undecodable_folder_names_are_kept_escaped(tmp_path: Path) -> None:
    root = tmp_path / "preuves"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"x")
    with open_package(root) as contents:
        (kept,) = contents.files
        assert kept.path == "caf\\udce9.txt" and kept.read() == b"x"
        assert [f.rule for f in contents.file_findings[kept.path]] == ["package.name-encoding"]


def test_an_empty_folder_is_empty(tmp_path: Path) -> None:
    (tmp_path / "vide").mkdir()
    with open_package(tmp_path / "vide") as contents:
        assert rules_of(contents) == ["package.empty"]


def test_a_folder_over_the_limits_stops_and_says_so(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "preuves", {f"f{i}.txt": b"x" for i in range(5)})
    with open_package(root, settings={"package": {"max_entries": 3}}) as contents:
        assert rules_of(contents) == ["package.limit-exceeded"] and len(contents.files) == 3


# --- manifest and proof mapping -------------------------------------------------------------------

MapCall = tuple[list[str], str | None, bytes | None, Sequence[str] | None]


@dataclass
class FakeMapping:
    """The shape of ``validators.mapping.MappingResult``, filled with recognisable values."""

    proof_of: dict[str, str | None]
    info_overrides: dict[str, Any] = field(
        default_factory=lambda: {"publisher": "Éditeur", "profiles": ["Général"], "complete": True}
    )
    ids_as_written: dict[str, str] = field(default_factory=lambda: {"INS.41.2.2": "INS 41.2.2"})
    package_findings: list[Any] = field(default_factory=list)
    proof_findings: dict[str, list[Any]] = field(default_factory=dict)
    file_findings: dict[str, list[Any]] = field(default_factory=dict)
    expectations: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"INS.41.2.2": {"nature": "screenshot"}}
    )


def fake_proof_id(path: str) -> str | None:
    return "INS.41.2.2" if path.startswith("INS") else None


def recording_mapper(calls: list[MapCall]) -> Callable[..., Any]:
    def map_package(paths: Sequence[str], manifest_path: str | None, read_file: Callable[[str], bytes],
                    profiles: Sequence[str] | None) -> FakeMapping:
        manifest = read_file(manifest_path) if manifest_path else None
        calls.append((list(paths), manifest_path, manifest, profiles))
        return FakeMapping(proof_of={p: fake_proof_id(p) for p in paths})

    return map_package


@pytest.mark.parametrize("manifest", ["manifest.yaml", "manifest.json", "preuves/manifest.yaml"])
def test_the_manifest_is_passed_to_the_mapping_and_is_not_a_proof(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: str
) -> None:
    calls: list[MapCall] = []
    monkeypatch.setattr(package, "_mapper", lambda: recording_mapper(calls))
    prefix = "preuves/" if manifest.startswith("preuves/") else ""
    root = make_folder(
        tmp_path / "pkg",
        {manifest: b"publisher: x\n", f"{prefix}INS 41.2.2/ecran.png": PNG, f"{prefix}notes.txt": b"n"},
    )
    with open_package(root, profiles=["Général"]) as contents:
        ((paths, manifest_path, manifest_bytes, profiles),) = calls
        assert manifest_path == manifest and manifest_bytes == b"publisher: x\n"
        assert sorted(paths) == sorted([f"{prefix}INS 41.2.2/ecran.png", f"{prefix}notes.txt"])
        assert profiles == ["Général"]
        assert {f.path: f.proof_id for f in contents.files} == {p: fake_proof_id(p) for p in paths}
        assert contents.info.publisher == "Éditeur" and contents.info.complete
        assert contents.ids_as_written == {"INS.41.2.2": "INS 41.2.2"}
        assert contents.expectations == {"INS.41.2.2": {"nature": "screenshot"}}


def test_mapped_files_carry_their_proof_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "_mapper", lambda: recording_mapper([]))
    data = build_zip([Member("INS.41.2.2/a.png", PNG), Member("divers.txt", b"x")])
    with open_package(write(tmp_path, data)) as contents:
        assert {f.path: f.proof_id for f in contents.files} == {"INS.41.2.2/a.png": "INS.41.2.2",
                                                                "divers.txt": None}


def test_a_crashing_mapping_is_a_system_finding_and_files_stay(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> Any:
        raise KeyError("content that must not be reported")

    monkeypatch.setattr(package, "_mapper", lambda: broken)
    with open_package(write(tmp_path, benign())) as contents:
        (finding,) = contents.package_findings
        assert finding.rule == "system.check-crashed" and "content" not in finding.message
        assert len(contents.files) == 2 and all(f.proof_id is None for f in contents.files)


def test_the_real_mapping_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    data = build_zip([Member("INS 41.2.2/capture.png", PNG)])
    with open_package(write(tmp_path, data)) as contents:
        assert [f.proof_id for f in contents.files] == ["INS.41.2.2"]
        assert contents.ids_as_written.get("INS.41.2.2") == "INS 41.2.2"


def test_an_unreadable_package_is_not_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[MapCall] = []
    monkeypatch.setattr(package, "_mapper", lambda: recording_mapper(calls))
    with open_package(write(tmp_path, b"%PDF-1.7\n", "p.pdf")) as contents:
        assert rules_of(contents) == ["package.not-a-package"] and calls == []


# --- through the engine ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        many_entries_zip(100_000),
        build_zip([Member("../evil", b"x"), Member("ok.txt", b"y")]),
        build_zip([Member("a", bytes(1000), method=STORED)], prefix=b"MZ" + bytes(64)),
    ],
    ids=["100k-entries", "traversal", "sfx-polyglot"],
)
def test_hostile_packages_fail_and_are_quarantined(tmp_path: Path, data: bytes) -> None:
    with open_package(write(tmp_path, data)) as contents:
        verdict = Engine([ArchiveValidator()]).run(contents)
    assert verdict.status is Status.FAIL and verdict.quarantine
