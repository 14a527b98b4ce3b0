"""The forms real proofs use: overseas groupings, any separator, table cells, OCR look-alikes, bodies
without key, and the raw-strings reading of a huge PDF page."""

from __future__ import annotations

import pytest
from pii_support import check, pii_engine, pii_level, rules_of

from fixtures import builders as b
from fixtures.pii_generator import groups_of
from fixtures.pii_snippets import NirFactory, grouped, key_of
from validators.engine import Engine
from validators.pii.allowlist import load_allowlist
from validators.pii.nir import KeyStatus, find_nirs, ocr_deconfused
from validators.pii.pdfraw import strings_text
from validators.pii.scan import scan_segments
from validators.pii.segments import TextSegment

FACTORY = NirFactory(4242)
NIR = FACTORY.nir()
OVERSEAS = FACTORY.nir(place="97105")
CORSICA_B = FACTORY.nir(place="2B123")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return pii_engine()


def statuses(text: str, **options: bool) -> list[KeyStatus]:
    return [m.key_status for m in find_nirs(text, **options)]


def test_the_issue_overseas_form_with_a_two_digit_commune() -> None:
    body = "2210997105889"
    value = body + key_of(body)
    assert value[13:] == "20"  # the issue's own example, 2 21 09 971 05 889 20
    assert statuses("2 21 09 971 05 889 20") == [KeyStatus.VALID]
    assert statuses(" ".join(groups_of(OVERSEAS, "overseas-3-2"))) == [KeyStatus.VALID]
    assert statuses(" ".join(groups_of(OVERSEAS))) == [KeyStatus.VALID]  # the metropolitan grouping too


SEPARATORS = {
    "space": " ", "nbsp": "\u00a0", "narrow-nbsp": "\u202f", "thin-space": "\u2009", "figure-space": "\u2007",
    "dot": ".", "hyphen": "-", "non-breaking-hyphen": "\u2011", "en-dash": "\u2013", "minus": "\u2212",
    "slash": "/", "underscore": "_", "semicolon": ";", "comma": ",", "pipe": "|", "tab": "\t",
    "semicolon-spaced": " ; ", "newline": "\n",
}


@pytest.mark.parametrize("sep", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_any_separator_used_throughout(sep: str) -> None:
    assert statuses(sep.join(groups_of(NIR))) == [KeyStatus.VALID]


def test_mixed_marks_are_not_a_nir_layout() -> None:
    g = groups_of(NIR)
    dots_and_hyphens = ".".join(g[:3]) + "-" + "-".join(g[3:])
    dots_and_blanks = ".".join(g[:3]) + " " + " ".join(g[3:])
    glued_and_dots = g[0] + g[1] + "." + ".".join(g[2:])
    for text in (dots_and_hyphens, dots_and_blanks, glued_and_dots):
        assert statuses(text) == [], text.count(".")


def test_html_table_cells(engine: Engine) -> None:
    cells = "\n      ".join(f"<td>{g}</td>" for g in groups_of(NIR))
    page = f"<html><body><table>\n  <tr><th>Nom</th><th>NIR</th></tr>\n  <tr><td>DUPONT</td>\n      {cells}</tr>\n"
    verdict = check(engine, "export.html", page + "</table></body></html>\n")
    assert rules_of(verdict) == [("pii.nir", "error")]
    (finding,) = [f for f in verdict.findings if f.rule == "pii.nir"]
    assert finding.location.line == 4  # the line of the first cell, as in the source


def test_html_attributes_are_read_too(engine: Engine) -> None:
    verdict = check(engine, "form.html", f'<form><input name="nir" value="{NIR}"></form>')
    assert rules_of(verdict) == [("pii.nir", "error")]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("cells.csv", "nom;nir\nDUPONT;" + ";".join(groups_of(NIR)) + "\n"),
        ("cells.tsv", "nom\tnir\nDUPONT\t" + "\t".join(groups_of(NIR)) + "\n"),
        ("key-column.csv", f"nom;nir;cle\nDUPONT;{NIR[:13]};{NIR[13:]}\n"),
    ],
    ids=["semicolon-cells", "tab-cells", "key-column"],
)
def test_csv_cells(engine: Engine, name: str, text: str) -> None:
    assert rules_of(check(engine, name, text)) == [("pii.nir", "error")]


def test_pdf_table_with_one_group_per_cell(engine: Engine) -> None:
    # pypdf gives a table read cell by cell as one line per cell.
    pdf = b.make_pdf(["Tableau des assurés\nDUPONT\n" + "\n".join(groups_of(NIR))])
    assert rules_of(check(engine, "tableau.pdf", pdf)) == [("pii.nir", "error")]


def test_file_names_with_underscores(engine: Engine) -> None:
    verdict = check(engine, "INS.1.1.1/DUPONT_" + "_".join(groups_of(NIR)) + ".txt", "rien")
    assert rules_of(verdict) == [("pii.nir", "error")]


def test_bodies_without_key_need_a_label(engine: Engine) -> None:
    assert rules_of(check(engine, "a.txt", f"N° SS : {grouped(NIR[:13])}")) == [("pii.nir-body", "error")]
    assert rules_of(check(engine, "b.txt", f"Dossier {NIR[:13]} archivé")) == []
    # A person word names a body as the issue's positive context does (a local id of 13 digits whose
    # structure is a NIR body is reported too: a false alarm beats a silent miss).
    assert rules_of(check(engine, "c.txt", f"patient {NIR[:13]}")) == [("pii.nir-body", "error")]
    assert rules_of(check(engine, "e.txt", f"patient {NIR[:13]}{int(NIR[13:]) % 97 + 1:02d}")) == []
    assert rules_of(check(engine, "d.txt", f"NIR (fictif) {NIR[:13]}")) == [("pii.nir-unconfirmed", "warning")]
    # Labels whose accented letters a bad conversion lost still name the number.
    for mangled in ("B?n?ficiaire", "S\ufffdcurit\ufffd sociale", "N? SS"):
        assert rules_of(check(engine, "g.txt", f"{mangled} : {grouped(NIR[:13])}")) == [("pii.nir-body", "error")]
    # The NIR's own name is its label ("numéro d'inscription au répertoire").
    named = f"Numéro d'inscription au répertoire : {grouped(NIR[:13])}"
    assert rules_of(check(engine, "f.txt", named)) == [("pii.nir-body", "error")]


def test_a_wrong_key_written_like_the_groups_is_a_wrong_key(engine: Engine) -> None:
    wrong = NIR[:13] + f"{int(NIR[13:]) % 97 + 1:02d}"
    assert rules_of(check(engine, "a.txt", f"NIR {grouped(wrong, '.')}")) == [("pii.nir-lookalike", "warning")]
    assert rules_of(check(engine, "b.txt", f"NIR {NIR[:13]}    Clé : {wrong[13:]}")) == [
        ("pii.nir-lookalike", "warning")
    ]
    # In its own CSV field a wrong "key" may be the next column: the labelled body is what is reported.
    assert rules_of(check(engine, "c.csv", f"nir;x\n{NIR[:13]};{wrong[13:]}\n")) == [("pii.nir-body", "error")]


# --- OCR look-alike letters --------------------------------------------------------------------------


def _ocr_confused(value: str) -> str:
    out = value.replace("0", "O", 1).replace("1", "l", 1).replace("5", "S", 1).replace("8", "B", 1)
    return grouped(out) if len(out) == 15 else out


def test_ocr_look_alikes_are_read_as_digits_in_any_text() -> None:
    confused = _ocr_confused(NIR)
    assert confused != grouped(NIR)
    for options in ({}, {"lenient": True, "ocr": True}):
        (match,) = find_nirs(confused, **options)
        letters = sum(a != b for a, b in zip(confused, grouped(NIR), strict=True))
        assert match.value == NIR and match.key_status is KeyStatus.VALID and match.lookalikes == letters
        assert "look-alike letters read as digits" in match.explanation


def test_typed_text_reads_look_alikes_narrowly() -> None:
    wrong = NIR[:13] + f"{int(NIR[13:]) % 97 + 1:02d}"
    assert statuses(_ocr_confused(wrong)) == []  # typed text: only a valid key makes letters digits
    assert statuses(_ocr_confused(wrong), lenient=True, ocr=True) == [KeyStatus.INVALID]
    assert statuses("ref" + _ocr_confused(NIR).replace(" ", "")) == []  # glued to a word: a code
    too_many = NIR.replace("0", "O").replace("1", "l").replace("5", "S").replace("8", "B")
    assert too_many.count("O") + too_many.count("l") + too_many.count("S") + too_many.count("B") > 4
    assert statuses(too_many) == []


def test_ocr_reading_keeps_words_and_corsica() -> None:
    assert ocr_deconfused("SOLO Il BOZ") == "SOLO Il BOZ"  # no digit: words stay words
    assert ocr_deconfused("I2O") == "120"
    (match,) = find_nirs(grouped(CORSICA_B), lenient=True, ocr=True)
    assert match.value == CORSICA_B and match.key_status is KeyStatus.VALID


def test_an_ocr_segment_with_look_alikes_gives_a_finding() -> None:
    segments = [TextSegment(f"N° de sécurité sociale : {_ocr_confused(NIR)}", ocr=True)]
    findings = scan_segments(segments, load_allowlist())
    assert [(f.rule, f.severity.value) for f in findings] == [("pii.nir", "error")]


# --- a huge PDF page ---------------------------------------------------------------------------------


def test_raw_strings_reader() -> None:
    content = (
        b"BT /F1 11 Tf 50 780 Td (Assur\\351 :) Tj T* [(1 85) -250 (05 78)] TJ "
        b"<3030362030383420> Tj (\\(x\\)) Tj ET"
    )
    assert strings_text(content) == "Assuré :\n1 85 05 78006 084 (x)\n"


def test_a_page_too_large_for_layout_extraction_is_read_from_its_strings(engine: Engine) -> None:
    lines = ["Ligne de journal sans donnée personnelle, valeur 42"] * 30_000
    lines[20_000] = f"Assuré {grouped(NIR)}"
    pdf = b.make_pdf(["\n".join(lines)])
    verdict = check(engine, "journal.pdf", pdf)
    assert rules_of(verdict) == [("pii.nir", "error")]
    gaps = [f for f in verdict.findings if f.rule == "pii.not-inspected"]
    assert len(gaps) == 1 and "raw strings" in gaps[0].message and pii_level(verdict) == "error"


def test_line_numbers_in_any_order_of_findings() -> None:
    segment = TextSegment("a\nb\nc\nd")
    assert [segment.locate(o, o + 1).line for o in (4, 6, 0, 2, 6)] == [3, 4, 1, 2, 4]
