"""Personal data in Office documents: read where each format keeps its text, pictures handed to OCR.

A NIR typed into a Word report, an Excel extraction or a slide passed as `pass` before (the pii check did
not read Office formats at all): every case here is a file an instructor would open.
"""

from __future__ import annotations

import shutil

import pytest

from fixtures.builders import make_nir, make_screenshot
from fixtures.office_docs import docx, legacy_doc, ods, odt, pptx, xlsx
from tests.pii_support import check, pii_engine, rules_of
from validators.engine import Engine

NIR = make_nir(2, 85, 5, "78", "006", "084")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return pii_engine()


def grouped(nir: str) -> str:
    return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"


def test_a_nir_split_across_word_runs_is_found_in_the_body(engine: Engine) -> None:
    runs = ["N° de sécurité sociale : ", NIR[:6], NIR[6:11], NIR[11:]]
    verdict = check(engine, "INS.41.2.2/compte-rendu.docx", docx([["Compte rendu de consultation"], runs]))
    assert ("pii.nir", "error") in rules_of(verdict)
    nir = next(f for f in verdict.findings if f.rule == "pii.nir")
    assert nir.location.entry == "word/document.xml"
    assert NIR not in repr(verdict.to_dict())  # masked


@pytest.mark.parametrize("where", ["header", "author", "deleted"])
def test_headers_properties_and_tracked_deletions_are_read(engine: Engine, where: str) -> None:
    text = f"Assuré {grouped(NIR)}"
    data = {"header": lambda: docx([["Compte rendu"]], header=text),
            "author": lambda: docx([["Compte rendu"]], creator=text),
            "deleted": lambda: docx([["Compte rendu"]], deleted=text)}[where]()
    verdict = check(engine, "INS.41.2.2/cr.docx", data)
    assert any(rule == "pii.nir" for rule, _ in rules_of(verdict)), rules_of(verdict)


def test_a_nir_stored_as_a_spreadsheet_number_is_found(engine: Engine) -> None:
    # Excel keeps a 15-digit number typed in a cell as 1.85057800608497E+14: the digits a reader sees.
    data = xlsx([["Nom", "NIR"], ["DUPONT", float(int(NIR))]])
    assert ("pii.nir", "error") in rules_of(check(engine, "INS.41.2.2/extraction.xlsx", data))


def test_shared_strings_of_a_workbook_are_read(engine: Engine) -> None:
    data = xlsx([["Patient", "Numéro INS"], ["DUPONT", grouped(NIR)]])
    assert any(rule == "pii.nir" for rule, _ in rules_of(check(engine, "INS.41.2.2/extraction.xlsx", data)))


def test_slides_and_speaker_notes_are_read(engine: Engine) -> None:
    assert any(r == "pii.nir" for r, _ in rules_of(check(engine, "x/demo.pptx", pptx([f"NIR {grouped(NIR)}"]))))
    notes = pptx(["Démonstration"], notes=f"patient {NIR}")
    assert any(r == "pii.nir" for r, _ in rules_of(check(engine, "x/demo.pptx", notes)))


def test_opendocument_text_and_spreadsheet_values_are_read(engine: Engine) -> None:
    assert any(r == "pii.nir" for r, _ in rules_of(check(engine, "x/cr.odt", odt([f"N° SS : {grouped(NIR)}"]))))
    # the cell shows 1.85058E+14; its value, which the application copies and exports, is the NIR
    sheet = ods([["Bénéficiaire", "NIR"], ["DUPONT", int(NIR)]])
    assert any(r == "pii.nir" for r, _ in rules_of(check(engine, "x/extraction.ods", sheet)))


def test_a_legacy_word_file_is_read_as_strings_and_says_so(engine: Engine) -> None:
    verdict = check(engine, "INS.41.2.2/cr.doc", legacy_doc(f"Compte rendu. Patient NIR {NIR}."))
    assert any(r == "pii.nir" for r, _ in rules_of(verdict))
    assert any(f.rule == "pii.not-inspected" and "legacy" in f.message for f in verdict.findings)


def test_an_office_document_without_personal_data_gets_no_pii_finding(engine: Engine) -> None:
    data = docx([["Compte rendu de test, patient fictif."], ["SIRET 732 829 320 00074, tél. 01 23 45 67 89"],
                 ["Version 4.2.0 du 03/12/2026"]])
    verdict = check(engine, "INS.41.2.2/cr.docx", data)
    assert rules_of(verdict) == []
    assert [f.rule for f in verdict.findings if f.rule.startswith("pii.")] == []


def test_a_picture_in_a_document_is_a_child_file_read_by_ocr(engine: Engine) -> None:
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed (tools/install-system-deps.sh installs it)")
    picture = make_screenshot(["Dossier patient", f"NIR : {grouped(NIR)}"], size=(900, 200), font_px=18)
    verdict = check(engine, "INS.41.2.2/cr.docx", docx([["Capture ci-dessous"]], picture=picture))
    [child] = verdict.children
    assert child.path.endswith("word/media/image1.png")
    assert any(f.rule == "pii.nir" for f in child.findings), child.findings


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", "bomb"])
def test_a_broken_or_hostile_office_file_is_named_not_inspected_never_passed(engine: Engine, damage: str) -> None:
    import io
    import zipfile

    good = docx([["Compte rendu"]])
    if damage == "truncated":
        data = good[: len(good) // 2]
    elif damage == "not-a-zip":
        data = b"PK\x03\x04" + bytes(200)
    else:  # a document part of 300 MB of spaces (compresses to ~300 KB)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            with archive.open("word/document.xml", "w", force_zip64=True) as part:
                chunk = b" " * (1 << 20)
                for _ in range(300):
                    part.write(chunk)
        data = buffer.getvalue()
    verdict = check(engine, "INS.41.2.2/cr.docx", data)
    assert any(f.rule == "pii.not-inspected" for f in verdict.findings), verdict.findings
