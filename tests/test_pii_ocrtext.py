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


def test_a_nir_body_under_a_labelled_column_header_is_named_by_it() -> None:
    body = NirFactory(15).nir()[:13]
    spaced = [body[0], body[1:3], body[3:5], body[5:7], body[7:10], body[10:13]]
    words = _row(100, 300, "Nom") + _row(100, 620, "NIR de l'assuré") + _row(100, 1130, "Dernière visite")
    for row, name in enumerate(["FONTAINE Nathalie", "MARTIN Léa", "ROUSSEAU Manon"], start=1):
        words += _row(100 + row * 60, 300, name) + _row(100 + row * 60, 624, "_") + _row(100 + row * 60, 1130,
                                                                                         "10/02/2014")
    words += _row(340, 300, "DUPONT Jean") + _row(340, 625, " ".join(spaced)) + _row(340, 1130, "23/03/2002")
    segment = segment_of(words, 1.0, NO_LOCATION)
    # Row by row, a cell boundary is written as one: the date's first digits are no key of the body.
    assert " | 23/03/2002" in segment.text
    (finding,) = scan_segments([segment], NO_ALLOWLIST)
    assert finding.rule == "pii.nir-body" and finding.severity is Severity.ERROR
    # Without the header's label, a bare 13-digit number in a table is not reported.
    unlabelled = [w for w in words if w.text not in ("NIR", "de", "l'assuré")]
    assert not scan_segments([segment_of(unlabelled, 1.0, NO_LOCATION)], NO_ALLOWLIST)


def test_a_header_is_only_what_stands_above_the_value_in_its_column() -> None:
    body = NirFactory(16).nir()[:13]
    # "NIR" over another column, a sentence with letters in between: no header for the value.
    words = _row(100, 1130, "NIR") + _row(160, 300, "Examen clinique sans particularité ce jour")
    words += _row(220, 300, body)
    assert not segment_of(words, 1.0, NO_LOCATION).column_labels


def test_a_label_ocr_read_with_digits_for_letters_still_names_the_number() -> None:
    body = NirFactory(17).nir()[:13]
    spaced = " ".join([body[0], body[1:3], body[3:5], body[5:7], body[7:10], body[10:13]])
    for garbled in ("num _55=", "N1R :", "N° 5écu :"):
        (finding,) = scan_segments([_reading(f"app version 4.4 {garbled}{spaced}\n", False)], NO_ALLOWLIST)
        assert finding.rule == "pii.nir-body" and finding.severity is Severity.ERROR, garbled
    # Typed text is read as written; a number token stays a number ("N° 55" is no "N° ss").
    assert not scan_segments([TextSegment(f"num _55={spaced}\n", NO_LOCATION)], NO_ALLOWLIST)
    assert not scan_segments([_reading(f"Chambre n° 55 {spaced}\n", False)], NO_ALLOWLIST)


def test_a_wrong_key_next_to_a_person_word_is_a_warning_in_ocr_text_only() -> None:
    value = NirFactory(18).nir()
    misread = value[:11] + str((int(value[11]) + 1) % 10) + value[12:]  # one order digit misread
    line = f"Patient : {misread}\n"
    (finding,) = scan_segments([_reading(line, False)], NO_ALLOWLIST)
    assert finding.rule == "pii.nir-lookalike" and finding.severity is Severity.WARNING
    assert "OCR" in (finding.message_fr or "")
    assert not scan_segments([TextSegment(line, NO_LOCATION)], NO_ALLOWLIST)  # typed: a person word is no label
