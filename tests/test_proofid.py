"""The proof-id parser: every real written form, and the look-alikes it must not read as ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validators.proofid import IdSyntax, canonical_id, find_ids
from validators.referential import load_referential

SYNTAX = load_referential().syntax


def keys(text: str) -> list[str]:
    return [m.key for m in find_ids(text, SYNTAX)]


@pytest.mark.parametrize(
    ("text", "key", "written"),
    [
        ("INS.41.2.2", "INS.41.2.2", "INS.41.2.2"),
        ("INS 41.2.2", "INS.41.2.2", "INS 41.2.2"),
        ("DOC 3.1.2", "DOC.3.1.2", "DOC 3.1.2"),
        ("ANN.1.1.1", "ANN.1.1.1", "ANN.1.1.1"),
        ("ins.41.2.2", "INS.41.2.2", "ins.41.2.2"),
        ("INS.41.02.02", "INS.41.2.2", "INS.41.02.02"),
        ("DMP/AIRS.03.01.01", "DMP/AIRS.3.1.1", "DMP/AIRS.03.01.01"),
        ("INS/va1.35.02.02", "INS/VA1.35.2.2", "INS/va1.35.02.02"),
        ("LGC.INS.41", "INS.41", "LGC.INS.41"),
        ("SC.INS/va1.35", "INS/VA1.35", "SC.INS/va1.35"),
        ("LGC.DOC. 3", "DOC.3", "LGC.DOC. 3"),
        ("INS_41_2_2_capture.png", "INS.41.2.2", "INS_41_2_2"),
        ("preuve INS.41.2.2.pdf", "INS.41.2.2", "INS.41.2.2"),
        ("ins-41.2.2/", "INS.41.2.2", "ins-41.2.2"),
        ("INS.41.2.2_1.png", "INS.41.2.2", "INS.41.2.2"),
        ("ePresc.1.1.1 autorisation.pdf", "EPRESC.1.1.1", "ePresc.1.1.1"),
        ("ins/va1.35.02.02/video_export.png", "INS/VA1.35.2.2", "ins/va1.35.02.02"),
        ("INS/INS.41.2.2_capture.png", "INS.41.2.2", "INS.41.2.2"),
    ],
)
def test_real_forms_are_read_and_kept_as_written(text: str, key: str, written: str) -> None:
    matches = find_ids(text, SYNTAX)
    assert [(m.key, m.written, m.malformed) for m in matches] == [(key, written, None)]
    assert text[slice(*matches[0].span)] == written


@pytest.mark.parametrize(
    "text",
    [
        "v2.1.3",
        "IMG_2024.01.3.png",
        "1920x1080.png",
        "2024-01-03 export.mp4",
        "notes-de-version 4.2.1.pdf",
        "INSi 1.2.3.log",
        "documents 3.1.2.pdf",
        "PORT 443.txt",
        "INS_2024-01-03.png",
        "DOC_v2.1.3.pdf",
        "XYZ.1.2.3",
        "",
    ],
)
def test_look_alikes_are_not_ids(text: str) -> None:
    assert keys(text) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [("INS.41.2.2.1.png", "more than three numbers"), ("INS.0.1.1", "a number is zero")],
)
def test_malformed_ids_are_reported_as_such(text: str, reason: str) -> None:
    [match] = find_ids(text, SYNTAX)
    assert match.malformed == reason


@pytest.mark.parametrize(
    ("text", "level"), [("LGC.INS.41", "requirement"), ("INS.41.2", "scenario"), ("INS.41.2.2", "proof")]
)
def test_level_follows_the_count_of_numbers(text: str, level: str) -> None:
    [match] = find_ids(text, SYNTAX)
    assert match.level == level


def test_several_ids_in_one_path_come_in_order() -> None:
    assert keys("INS.41/INS.41.2.2_et_INS.41.2.1.png") == ["INS.41", "INS.41.2.2", "INS.41.2.1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INS 41.2.1 et 41.2.2.png", ["INS.41.2.1", "INS.41.2.2"]),
        ("INS.41.2.1, 41.2.2 & 41.2.3", ["INS.41.2.1", "INS.41.2.2", "INS.41.2.3"]),
        ("DOC 3.1.2 and 3.1.3", ["DOC.3.1.2", "DOC.3.1.3"]),
        # Not a conjunction, or not a proof-shaped number after it: nothing more is read.
        ("INS.41.2.1 v4.2.1.png", ["INS.41.2.1"]),
        ("INS.41.2.1 et 2024.01.15.png", ["INS.41.2.1"]),
        ("INS.41.2.1 et 1.2.3.4.png", ["INS.41.2.1"]),
        ("INS.41.2.1/41.2.1_capture.png", ["INS.41.2.1"]),
    ],
)
def test_further_proofs_joined_by_a_conjunction_are_read(text: str, expected: list[str]) -> None:
    assert keys(text) == expected


def test_hostile_length_is_cut() -> None:
    assert keys("INS.1.1.1 " * 100_000)[:1] == ["INS.1.1.1"]
    assert len(keys("INS.1.1.1 " * 100_000)) < 1000


def test_canonical_padding() -> None:
    assert canonical_id("INS", (41, 2, 2)) == "INS.41.2.2"
    assert canonical_id("DMP/AIRS", (3, 1, 1), zero_pad=2) == "DMP/AIRS.03.01.01"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parser_never_crashes_on_any_text(text: str) -> None:
    for match in find_ids(text, SYNTAX):
        assert 1 <= len(match.numbers) <= 3
        assert text[slice(*match.span)] == match.written


_sections = st.sampled_from(sorted(SYNTAX.sections))
_numbers = st.tuples(*(st.integers(min_value=1, max_value=99) for _ in range(3)))


@settings(max_examples=300, deadline=None)
@given(_sections, _numbers, st.sampled_from([".", " ", "_", "-"]), st.booleans())
def test_every_written_form_of_an_id_reads_back_to_its_canonical_form(
    section: str, numbers: tuple[int, int, int], sep: str, pad: bool
) -> None:
    canonical = canonical_id(section, numbers)
    written = section.lower() + sep + sep.join(str(n).zfill(2 if pad else 1) for n in numbers)
    for text in (canonical, written, f"preuve {written}_capture.png", f"{written}/video.mp4"):
        [match] = find_ids(text, SYNTAX)
        assert match.key == canonical.upper()
        # idempotent: the canonical form of the key parses to itself
        [again] = find_ids(canonical_id(match.section, match.numbers), SYNTAX)
        assert again.key == match.key


def test_a_referential_with_sub_sections_reads_them_whole() -> None:
    va2 = IdSyntax(sections=("DMP", "DMP/AIRS", "INS", "INS/PSC"), crosswalk_marker="va1")
    assert [m.key for m in find_ids("DMP/AIRS.03.01.01", va2)] == ["DMP/AIRS.3.1.1"]
    assert [m.key for m in find_ids("INS/PSC.01.01.01", va2)] == ["INS/PSC.1.1.1"]
