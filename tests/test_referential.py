"""The referential catalogue: LGC Va1 data, reading ids through it, profiles, a second referential as data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from fixtures.ans import REM
from validators.referential import (
    ReferentialError,
    available_referentials,
    load_referential,
    load_referential_file,
)

CROSSWALK = REM / "lgc_va1_proof_id_crosswalk.csv"

VA1 = load_referential("REM-MDV-LGC-SF-Va1")


def test_shipped_referentials_load_by_case_insensitive_name() -> None:
    assert "REM-MDV-LGC-SF-Va1" in available_referentials()
    assert load_referential("rem-mdv-lgc-sf-va1") is VA1
    with pytest.raises(ReferentialError):
        load_referential("REM-XYZ")


def test_va1_sections_and_profiles() -> None:
    assert set(VA1.sections) == {"ANN", "APCV", "BIO", "DMP", "DOC", "ERGO", "INS", "MSS", "PORT", "PSC",
                                 "TBB", "ePresc"}
    assert VA1.mandatory_profiles == ("Général",)
    assert {s for p in VA1.proofs.values() for s in [p.section]} == set(VA1.sections)


@pytest.mark.skipif(not CROSSWALK.exists(), reason=f"ANS facts absent ({CROSSWALK}); set PROOFCHECK_SHARED")
def test_every_inferred_crosswalk_proof_is_in_the_catalogue_with_its_alias() -> None:
    rows = list(csv.DictReader(CROSSWALK.open(encoding="utf-8")))
    inferred = [r for r in rows if r["statut"] == "inferred"]
    for row in inferred:
        proof = VA1.proofs[row["va1_preuve_inferee"]]
        assert row["va2_reprise_preuve"] in proof.aliases
        assert row["profil"] in proof.profiles
    # titles are our own short words, never the ANS's proof texts
    texts = {r["preuve_texte"].strip().lower() for r in rows}
    assert all(p.title.lower() not in texts and len(p.title) <= 90 for p in VA1.proofs.values())


@pytest.mark.parametrize(
    ("written", "state", "proof"),
    [
        ("INS.41.2.2", "proof", "INS.41.2.2"),
        ("INS 41.2.2", "proof", "INS.41.2.2"),
        ("INS/va1.35.02.02", "proof", "INS.41.2.2"),
        ("DOC 3.1.2", "proof", "DOC.3.1.2"),
        ("ANN.1.1.1", "proof", "ANN.1.1.1"),
        ("apcv.1.1.1", "proof", "APCV.1.1.1"),
        ("PSC 1.4.1", "proof", "PSC.1.4.1"),
        ("LGC.INS.41", "ambiguous", None),
        ("SC.INS/va1.35", "ambiguous", None),
        ("INS/va1.60.01.01", "ambiguous", None),
        ("INS.41.2", "ambiguous", None),
        ("DMP/AIRS.03.01.01", "unknown", None),
        ("PSC.99.9.9", "unknown", None),
        ("INS.41.2.2.1", "malformed", None),
    ],
)
def test_reading_ids_through_the_catalogue(written: str, state: str, proof: str | None) -> None:
    [reading] = VA1.find(written)
    assert (reading.state, reading.proof_id) == (state, proof)
    assert reading.written == written


def test_ambiguous_readings_name_their_candidates() -> None:
    [reading] = VA1.find("LGC.INS.41")
    assert set(reading.candidates) == {"INS.41.1.1", "INS.41.1.2", "INS.41.2.1", "INS.41.2.2"}
    [republished] = VA1.find("INS/va1.60")
    assert "INS.32" in republished.candidates


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ([], ("Général",)),
        (["medecin-traitant"], ("Général", "Médecin traitant")),
        (["MÉDECIN TRAITANT", "centres de santé"], ("Général", "Centres de santé", "Médecin traitant")),
        (["no such profile"], ("Général",)),
    ],
)
def test_profiles_are_matched_without_accents_or_case(declared: list[str], expected: tuple[str, ...]) -> None:
    assert VA1.applied_profiles(declared) == expected


def test_expected_proofs_follow_the_profiles() -> None:
    general = {p.id for p in VA1.expected_proofs()}
    with_mt = {p.id for p in VA1.expected_proofs(["Médecin traitant"])}
    assert "INS.41.2.2" in general and "DOC.7.1.1" not in general
    assert with_mt - general == {"DOC.7.1.1", "DOC.8.1.1", "DOC.9.1.1"}
    # INS.38.1.1 belongs to two profiles: expected as soon as one applies
    assert "INS.38.1.1" in general


def test_expectations_carry_nature_and_document_types() -> None:
    vsm = VA1.expectations("DOC.7.1.1")
    assert vsm["document_types"][0]["code"] == "60591-5"
    assert vsm["natures"] == ["evs-link", "cda"] and "xml" in vsm["extensions"]
    assert VA1.expectations("INS.41.2.2")["nature"] == "screenshot"


VA2_SAMPLE = {
    "format": 1,
    "id": "REM-TEST-Va2",
    "id_style": {"zero_pad": 2},
    "crosswalk_marker": "",
    "squash_prefixes": ["SC"],
    "profiles": [{"name": "Général", "mandatory": True}],
    "sections": {"DMP/AIRS": {"title": "Air simplifié"}, "DMP": {"title": "DMP"}},
    "natures": {"video": {"extensions": ["mp4"]}},
    "proofs": {
        "DMP/AIRS.03.01.01": {"title": "t", "profiles": ["Général"], "nature": ["video"]},
        "DMP.01.01.01": {"title": "t", "profiles": ["Général"], "nature": ["video"]},
    },
}


def test_another_referential_is_a_data_file(tmp_path: Path) -> None:
    path = tmp_path / "REM-TEST-Va2.yaml"
    path.write_text(yaml.safe_dump(VA2_SAMPLE), encoding="utf-8")
    va2 = load_referential_file(path)
    [reading] = va2.find("dmp/airs 3.1.1")
    assert reading.proof_id == "DMP/AIRS.03.01.01"
    [direct] = va2.find("DMP/AIRS.03.01.01")
    assert direct.proof_id == "DMP/AIRS.03.01.01"
    assert va2.canonical("dmp/airs", (3, 1, 1)) == "DMP/AIRS.03.01.01"


@pytest.mark.parametrize(
    "broken",
    [
        {"id": "X"},
        {**VA2_SAMPLE, "proofs": {"NOPE.1.1.1": {"title": "t"}}},
        {**VA2_SAMPLE, "proofs": {"DMP.1.1": {"title": "t"}}},
    ],
)
def test_an_invalid_data_file_is_refused(tmp_path: Path, broken: dict[str, object]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    with pytest.raises(ReferentialError):
        load_referential_file(path)
