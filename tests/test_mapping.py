"""Mapping a package's files to proofs: manifest over names, folders over file names, never a guess."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from validators.mapping import MappingResult, map_package
from validators.referential import load_referential
from validators.rules import catalogue


def run(files: Mapping[str, bytes], *, manifest: object | None = None, profiles: list[str] | None = None,
        manifest_name: str = "manifest.yaml") -> MappingResult:
    contents = dict(files)
    manifest_path = None
    if manifest is not None:
        raw = manifest if isinstance(manifest, bytes) else yaml.safe_dump(manifest).encode()
        contents[manifest_name] = raw
        manifest_path = manifest_name
    return map_package(list(contents), manifest_path, contents.__getitem__, profiles)


def rules_of(result: MappingResult) -> list[tuple[str, str]]:
    """(rule, where) for every finding except the (many) missing proofs."""
    out = [(f.rule, "package") for f in result.package_findings
           if f.rule not in ("package.missing-proof", "package.partial-submission")]
    out += [(f.rule, proof) for proof, found in result.proof_findings.items() for f in found]
    out += [(f.rule, path) for path, found in result.file_findings.items() for f in found]
    return sorted(out)


PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("path", "proof"),
    [
        ("INS.41.2.2/capture.png", "INS.41.2.2"),
        ("INS 41.2.2/capture.png", "INS.41.2.2"),
        ("ins-41.2.2/capture.png", "INS.41.2.2"),
        ("INS_41_2_2_capture.png", "INS.41.2.2"),
        ("preuve INS.41.2.2.png", "INS.41.2.2"),
        ("ins/va1.35.02.02/capture.png", "INS.41.2.2"),
        ("Editeur_v4.2/INS/INS.41.2.2_capture.png", "INS.41.2.2"),
        ("INS.41/INS.41.2.2_capture.png", "INS.41.2.2"),
        ("DOC 3.1.2.png", "DOC.3.1.2"),
        ("IMG_2024.01.3.png", None),
        ("screens/1920x1080 v2.1.3.png", None),
    ],
)
def test_ids_come_from_names(path: str, proof: str | None) -> None:
    result = run({path: PNG})
    assert result.proof_of == {path: proof}
    assert not result.file_findings


def test_ids_as_written_keep_the_first_form() -> None:
    result = run({"INS 41.2.2/a.png": PNG, "INS 41.2.2/b.png": PNG})
    assert result.ids_as_written == {"INS.41.2.2": "INS 41.2.2"}
    assert result.expectations["INS.41.2.2"]["nature"] == "screenshot"
    assert not result.proof_findings  # one folder, two files: no duplicate


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("PSC.99.9.9/capture.png", "package.unknown-proof"),
        ("DMP/AIRS.03.01.01/capture.png", "package.unknown-proof"),
        ("LGC.INS.41/capture.png", "package.ambiguous-proof-id"),
        ("INS/va1.60.01.01/capture.png", "package.ambiguous-proof-id"),
        ("INS.41.2.1 et INS.41.2.2.png", "package.ambiguous-proof-id"),
        ("INS 41.2.1 et 41.2.2.png", "package.ambiguous-proof-id"),
        ("capture INS.41.2.1, 41.2.2.png", "package.ambiguous-proof-id"),
        ("INS.41.2.2.1.png", "package.malformed-proof-id"),
    ],
)
def test_names_that_map_to_no_single_proof_are_findings_and_stay_unmapped(path: str, rule: str) -> None:
    result = run({path: PNG})
    assert result.proof_of == {path: None}
    assert rules_of(result) == [(rule, path)]


def test_folder_wins_over_file_name_with_a_conflict_finding() -> None:
    path = "INS.41.2.2/INS.41.2.1_capture.png"
    result = run({path: PNG})
    assert result.proof_of[path] == "INS.41.2.2"
    assert rules_of(result) == [("package.conflicting-proof-id", path)]


def test_the_same_proof_in_two_forms_is_a_duplicate() -> None:
    result = run({"INS 41.2.2/capture.png": PNG, "ins/va1.35.02.02/capture.png": PNG})
    assert set(result.proof_of.values()) == {"INS.41.2.2"}
    assert rules_of(result) == [("package.duplicate-proof", "INS.41.2.2")]


def test_manifest_wins_over_names() -> None:
    manifest = {"proofs": {"INS 41.2.2": ["captures/traits.png", "INS.41.2.1/x.png"]}, "publisher": "Démo",
                "software": "Cab", "version": "1.0"}
    result = run({"captures/traits.png": PNG, "INS.41.2.1/x.png": PNG, "ANN.1.1.1.pdf": b"%PDF"},
                 manifest=manifest)
    assert result.proof_of == {"captures/traits.png": "INS.41.2.2", "INS.41.2.1/x.png": "INS.41.2.2",
                               "ANN.1.1.1.pdf": "ANN.1.1.1"}  # not listed: read from its name
    assert result.ids_as_written["INS.41.2.2"] == "INS 41.2.2"
    assert rules_of(result) == [("package.conflicting-proof-id", "INS.41.2.1/x.png")]
    assert result.info_overrides == {"referential": "REM-MDV-LGC-SF-Va1", "profiles": ["Général"],
                                     "complete": False, "publisher": "Démo", "software": "Cab",
                                     "software_version": "1.0"}


def test_manifest_paths_are_relative_to_its_folder_and_folders_expand() -> None:
    files = {"pkg/captures/a.png": PNG, "pkg/captures/b.png": PNG, "pkg/x.png": PNG}
    manifest = yaml.safe_dump({"proofs": {"INS.1.4.1": ["captures/"], "INS.2.1.1": ["x.png"]}}).encode()
    files["pkg/manifest.yaml"] = manifest
    result = map_package(list(files), "pkg/manifest.yaml", files.__getitem__, None)
    assert result.proof_of == {"pkg/captures/a.png": "INS.1.4.1", "pkg/captures/b.png": "INS.1.4.1",
                               "pkg/x.png": "INS.2.1.1"}


def test_manifest_problems() -> None:
    manifest = {
        "profiles": ["Général", "Centres de sante", "Pharmacie"],
        "proofs": {
            "INS.1.4.1": [],
            "INS.2.1.1": ["absent.png"],
            "INS.41.2.2": ["shared.png"],
            "INS.41.2.1": ["shared.png"],
            "PSC.9.9.9": ["other.png"],
        },
    }
    result = run({"shared.png": PNG, "other.png": PNG}, manifest=manifest)
    assert rules_of(result) == [
        ("package.file-claimed-twice", "package"),
        ("package.manifest-empty-proof", "package"),
        ("package.manifest-file-missing", "package"),
        ("package.unknown-profile", "package"),
        ("package.unknown-proof", "package"),
    ]
    # the first listing in manifest order wins (safe_dump sorts the keys: INS.41.2.1 first)
    assert result.proof_of == {"other.png": None, "shared.png": "INS.41.2.1"}
    assert result.info_overrides["profiles"] == ["Général", "Centres de santé"]


def test_an_invalid_manifest_falls_back_to_names_with_an_error() -> None:
    result = run({"INS.41.2.2.png": PNG}, manifest=b"proofs: [", profiles=["Médecin traitant"])
    assert result.proof_of == {"INS.41.2.2.png": "INS.41.2.2"}
    assert rules_of(result) == [("package.manifest-invalid", "package")]
    assert result.info_overrides["profiles"] == ["Général", "Médecin traitant"]  # the caller's profiles


def test_an_unknown_referential_is_an_error_and_va1_is_used() -> None:
    result = run({"INS.41.2.2.png": PNG}, manifest={"referential": "REM-XYZ-Va9"})
    assert rules_of(result) == [("package.unknown-referential", "package")]
    assert result.proof_of == {"INS.41.2.2.png": "INS.41.2.2"}


def _missing(result: MappingResult) -> dict[str, str]:
    return {f.location.entry or "": f.severity.value for f in result.package_findings
            if f.rule == "package.missing-proof"}


def test_a_partial_package_gets_one_reminder_and_a_complete_one_a_warning_per_missing_proof() -> None:
    partial = run({"INS.41.2.2.png": PNG})
    assert _missing(partial) == {}
    [reminder] = [f for f in partial.package_findings if f.rule == "package.partial-submission"]
    assert reminder.severity.value == "info"
    expected = len(load_referential().expected_proofs(["Général"]))
    assert reminder.message.startswith(f"{expected - 1} of the {expected} proofs expected for Général")
    assert "INS " in reminder.message
    complete = run({"INS.41.2.2.png": PNG}, manifest={"complete": True, "profiles": ["Médecin traitant"],
                                                       "proofs": {"INS.41.2.2": ["INS.41.2.2.png"]}})
    assert _missing(complete)["DOC.7.1.1"] == "warning"
    assert "INS.41.2.2" not in _missing(complete)
    assert set(_missing(complete).values()) == {"warning"}
    assert not [f for f in complete.package_findings if f.rule == "package.partial-submission"]


def test_a_proof_of_a_profile_not_applied_for() -> None:
    result = run({"INS.52.1.1_chiffrement.pdf": b"%PDF"})
    assert rules_of(result) == [("package.out-of-profile-proof", "INS.52.1.1")]
    declared = run({"INS.52.1.1_chiffrement.pdf": b"%PDF"},
                   profiles=["Stockage des copies de titres d'identité"])
    assert rules_of(declared) == []


def test_a_nature_mismatch_is_only_an_info() -> None:
    result = run({"INS.41.2.2/trace.log": b"log", "INS.41.2.2/bundle.zip": b"PK"})
    [finding] = result.file_findings["INS.41.2.2/trace.log"]
    assert (finding.rule, finding.severity.value) == ("package.unexpected-nature", "info")
    assert "INS.41.2.2/bundle.zip" not in result.file_findings  # a zip may bundle any proof


def test_expectations_of_a_cda_proof_name_its_document_type() -> None:
    result = run({"DOC.7.1.1/vsm.xml": b"<x/>"}, profiles=["Médecin traitant"])
    assert result.expectations["DOC.7.1.1"]["document_types"][0]["label"] == "VSM"


def test_every_rule_this_module_emits_is_catalogued() -> None:
    emitted = {
        "package.manifest-invalid", "package.unknown-referential", "package.unknown-profile",
        "package.unknown-proof", "package.ambiguous-proof-id", "package.malformed-proof-id",
        "package.conflicting-proof-id", "package.duplicate-proof", "package.file-claimed-twice",
        "package.manifest-empty-proof", "package.manifest-file-missing", "package.out-of-profile-proof",
        "package.missing-proof", "package.partial-submission", "package.unexpected-nature",
    }
    assert emitted <= set(catalogue())


def test_the_id_forms_fixture_package() -> None:
    from fixtures.packages import id_forms_package

    spec = id_forms_package()
    result = run(spec.files)
    assert result.proof_of["INS 41.2.2/capture.png"] == "INS.41.2.2"
    assert result.proof_of["ins/va1.35.02.02/video_export.png"] == "INS.41.2.2"
    assert result.proof_of["DOC_3_1_2_document.pdf"] == "DOC.3.1.2"
    assert result.proof_of["ANN.1.1.1.pdf"] == "ANN.1.1.1"
    assert result.proof_of["notes-de-version.pdf"] is None
    assert ("package.unknown-proof", "PSC.99.9.9/capture.png") in rules_of(result)


def test_hostile_names_cost_nothing() -> None:
    names = {f"{'INS.1.1.1_' * 2000}{i}.png": PNG for i in range(50)}
    result = run(names)
    assert set(result.proof_of.values()) == {"INS.1.1.1"}


_segment = st.text(alphabet=st.sampled_from(list("INSDOCPSvaMm1234567890._- /")), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(_segment, min_size=1, max_size=8, unique=True))
def test_mapping_never_crashes_and_maps_every_path(paths: list[str]) -> None:
    result = map_package(paths, None, lambda _: b"", None)
    assert set(result.proof_of) == set(paths)
    for proof_id in result.proof_of.values():
        assert proof_id is None or proof_id in result.expectations
