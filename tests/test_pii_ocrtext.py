"""OCR words to text without Tesseract: column-wise reading of a screen, and a re-reading that never
doubles a finding."""

from __future__ import annotations

from fixtures.pii_snippets import NirFactory, grouped
from validators.model import NO_LOCATION, Finding, Severity
from validators.pii.allowlist import Allowlist
from validators.pii.ocrtext import Word, column_lines, segment_of
from validators.pii.scan import scan_segments
from validators.pii.segments import TextSegment

NO_ALLOWLIST = Allowlist(frozenset())


def _row(y: int, x: int, text: str, height: int = 20) -> list[Word]:
    words = []
    for token in text.split():
        words.append(Word(token, x, y, len(token) * 11, height, 95.0))
        x += len(token) * 11 + 8
    return words


def _sidebar_screen(value: str) -> list[Word]:
    groups = grouped(value).split()
    menu = ["Agenda", "Dossiers", "Ordonnances", "Messagerie", "DMP", "Paramètres"]
    notes = ["Notes de consultation", "Tension 12/8 mmHg", "NIR : " + " ".join(groups[:3]),
             " ".join(groups[3:]), "Export réalisé", "Résultat conforme"]
    words: list[Word] = []
    for row, (item, note) in enumerate(zip(menu, notes, strict=True)):
        words += _row(100 + row * 40, 30, item) + _row(100 + row * 40, 400, note)
    return words


def test_a_screen_with_a_sidebar_is_also_read_column_by_column() -> None:
    value = NirFactory(11).nir()
    words = _sidebar_screen(value)
    rows = segment_of(words, 1.0, NO_LOCATION)
    assert "Messagerie" in rows.text.splitlines()[3] and not rows.rereading
    lines = column_lines(words)
    assert lines is not None
    text = segment_of(words, 1.0, NO_LOCATION, lines=lines).text
    assert text.splitlines()[:6] == ["Agenda", "Dossiers", "Ordonnances", "Messagerie", "DMP", "Paramètres"]
    groups = grouped(value).split()
    assert "NIR : " + " ".join(groups[:3]) + "\n" + " ".join(groups[3:]) + "\n" in text


def test_a_screen_without_columns_has_one_reading() -> None:
    words = _row(100, 30, "Tension artérielle normale") + _row(140, 30, "Examen clinique sans particularité")
    assert column_lines(words) is None


def test_digit_groups_a_little_apart_are_not_columns() -> None:
    value = NirFactory(12).nir()
    x, words = 80, _row(100, 20, "NIR")
    for group in grouped(value).split():  # a segmented input: boxes 1.5 text heights apart
        words.append(Word(group, x, 100, len(group) * 11, 20, 90.0))
        x += len(group) * 11 + 30
    assert column_lines(words) is None


def test_the_wrapped_nir_beside_a_sidebar_is_found_once() -> None:
    value = NirFactory(13).nir()
    words = _sidebar_screen(value)
    lines = column_lines(words)
    segments = [segment_of(words, 1.0, NO_LOCATION), segment_of(words, 1.0, NO_LOCATION, lines=lines)]
    assert not scan_segments(segments[:1], NO_ALLOWLIST)  # read across, a menu word cuts it
    (finding,) = scan_segments(segments, NO_ALLOWLIST)
    assert finding.rule == "pii.nir" and finding.severity is Severity.ERROR


def _occurrences(finding: Finding) -> object:
    return dict(finding.params).get("occurrences")


def _reading(text: str, rereading: bool) -> TextSegment:
    return TextSegment(text, NO_LOCATION, [], ocr=True, rereading=rereading)


def test_a_rereading_adds_no_second_finding_and_raises_a_lower_one() -> None:
    value = NirFactory(14).nir()
    labelled, declared = f"NIR : {grouped(value)}\n", f"fictif {grouped(value)}\n"
    # The same value read twice: one finding, counted once.
    (once,) = scan_segments([_reading(labelled, False), _reading(labelled, True)], NO_ALLOWLIST)
    assert _occurrences(once) == 1 and once.severity is Severity.ERROR
    # Rated lower by the first reading ("fictif" beside it), higher by the second: raised, not doubled.
    (low,) = scan_segments([_reading(declared, False)], NO_ALLOWLIST)
    assert low.severity is Severity.WARNING
    (raised,) = scan_segments([_reading(declared, False), _reading(labelled, True)], NO_ALLOWLIST)
    (kept,) = scan_segments([_reading(labelled, False), _reading(declared, True)], NO_ALLOWLIST)
    assert raised.rule == kept.rule == once.rule
    assert raised.severity is kept.severity is Severity.ERROR
    # Not a re-reading: two places are two occurrences.
    (twice,) = scan_segments([_reading(labelled, False), _reading(labelled, False)], NO_ALLOWLIST)
    assert _occurrences(twice) == 2
