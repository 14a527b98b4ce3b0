"""Issue 13, round 2: the forms that still got through. Look-alike letters in typed text, labels in table
headers, compact date-times, numbers cut over two lines anywhere, PDF metadata, bilingual explanations,
and the words of a previous record. Each mechanism with its near misses beside it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pii_support import check, pii_engine, pii_level, rules_of, value_findings
from test_fuzz_support import fuzz_settings

from fixtures import builders as b
from fixtures import pii_hardforms as hard
from fixtures.pii_snippets import NirFactory, grouped, key_of
from validators.engine import Engine
from validators.pii.datetimes import compact_datetime
from validators.pii.nir import KeyStatus, Layout, find_nirs

FACTORY = NirFactory(2031)
NIR = FACTORY.nir(sex="1")
NIA = FACTORY.nir(sex="7")
CORSICA = FACTORY.nir(place="2B417")
WRONG = FACTORY.wrong_key(NIR)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return pii_engine()


def _letters(value: str, *positions: int) -> str:
    """``value`` with the digits at ``positions`` written as the letters OCR confuses them with."""
    chars = list(value)
    for i in positions:
        chars[i] = {"0": "O", "1": "l", "2": "Z", "5": "S", "8": "B"}.get(chars[i], chars[i])
    return "".join(chars)


def _confusable_positions(value: str, count: int) -> list[int]:
    return [i for i, c in enumerate(value) if c in "01258"][:count]


# --- 1. look-alike letters in typed text ------------------------------------------------------------


@pytest.mark.parametrize("value", [NIR, NIA, CORSICA], ids=["nir", "nia", "corsica"])
@pytest.mark.parametrize("spaced", [False, True], ids=["compact", "grouped"])
def test_look_alike_letters_are_read_in_typed_text(value: str, spaced: bool) -> None:
    written = _letters(value, *_confusable_positions(value, 2))
    assert written != value
    text = f"Dossier : {grouped(written) if spaced else written} fin"
    (match,) = find_nirs(text)
    assert match.value == value and match.key_status is KeyStatus.VALID and match.lookalikes >= 1


def test_look_alikes_labelled_are_an_error_unlabelled_a_warning(engine: Engine) -> None:
    written = grouped(_letters(NIR, *_confusable_positions(NIR, 2)))
    assert rules_of(check(engine, "a.txt", f"N° SS : {written}")) == [("pii.nir", "error")]
    assert rules_of(check(engine, "b.txt", f"{written}\n")) == [("pii.nir-unconfirmed", "warning")]
    assert rules_of(check(engine, "c.txt", f"Commande {written}")) == [("pii.nir-unconfirmed", "warning")]
    (finding,) = value_findings(check(engine, "d.txt", f"{written}\n"))
    assert "dans un texte saisi" in finding.message and "look-alike letters read as digits" in finding.message


def test_a_bar_reads_as_one_inside_a_number_or_where_it_starts_a_group() -> None:
    ones = [i for i, c in enumerate(NIR) if c == "1"]
    assert ones, "the factory's NIR has a 1"
    chars = list(grouped(NIR))
    spot = next(i for i, c in enumerate(chars) if c == "1")
    chars[spot] = "|"
    (match,) = find_nirs("x= " + "".join(chars) + " y")
    assert match.value == NIR and match.lookalikes == 1
    # An HL7 field boundary ("||") is never read as a 1.
    assert [m.key_status for m in find_nirs("PID|1||" + "|" + NIR[1:] + "^^^X")] == []


NEAR_LOOKALIKES = {
    "wrong-key": grouped(_letters(WRONG, *_confusable_positions(WRONG, 2))),
    "glued-to-a-word": "ref" + _letters(NIR, *_confusable_positions(NIR, 2)),
    "too-many-letters": _letters(NIR, *_confusable_positions(NIR, 5)),
    "iso-norm": "norme ISO 8601 et ISO 27001, SOLS, BOZ 2024",
    "upper-hex": "sha1 3F2B0O1D5A8C9E7B6A1S0Z2B4C8D0E1F2A3B4C",
    "base64": "jeton " + "T1o5SBZl" * 5,
    "iso-time": "reçu 2026-03-15T12:30:45Z puis 2026-03-15T12:31:02.120Z",
    "hl7": "PID|1||" + NIR[:13] + "||DUPONT^MARIE||19791231|F|||1 RUE X^^LYON^^69001||0472000000",
}


@pytest.mark.parametrize("text", NEAR_LOOKALIKES.values(), ids=NEAR_LOOKALIKES.keys())
def test_letters_that_do_not_make_a_key_valid_nir_stay_letters(text: str) -> None:
    assert not [m for m in find_nirs(text) if m.lookalikes]


def test_too_many_letters_are_too_many() -> None:
    assert len(_confusable_positions(NIR, 5)) == 5  # the near miss above really has five letters


# --- 2. labels in table headers ------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"], ids=["semicolon", "comma", "tab", "pipe"])
def test_a_csv_header_labels_its_column(engine: Engine, delimiter: str) -> None:
    rows = [["Nom", "N° SS", "Commentaire"], ["DUPONT", "-", "suivi"], ["MARTIN", grouped(NIR), "RAS"]]
    text = "\r\n".join(delimiter.join(r) for r in rows) + "\r\n"
    # The previous row's "suivi" is no context of this value, and the header names it: an error.
    assert rules_of(check(engine, "export.csv", text)) == [("pii.nir", "error")]
    (finding,) = value_findings(check(engine, "export.csv", text))
    assert "libellé « n° ss »" in finding.message


def test_a_csv_header_makes_a_body_without_key_reportable(engine: Engine) -> None:
    text = f"nom;matricule;x\nDUPONT;{NIR[:13]};1\nMARTIN;;2\n"
    assert rules_of(check(engine, "export.csv", text)) == [("pii.nir-body", "error")]
    wrong = f"nom;NIR;x\nDUPONT;{WRONG};1\n"
    assert rules_of(check(engine, "wrong.csv", wrong)) == [("pii.nir-lookalike", "warning")]


def test_a_header_that_names_nothing_labels_nothing(engine: Engine) -> None:
    text = f"nom;référence;x\nDUPONT;Commande {NIR};1\n"
    assert rules_of(check(engine, "export.csv", text)) == [("pii.nir-unconfirmed", "warning")]
    # A first line with a label but rows of another shape is no table header.
    log = f"Export NIR; version 2\n2024-01-01 12:00:00.000 INFO [worker-1] envoi de la Commande {NIR}\n"
    assert rules_of(check(engine, "trace.log", log)) == [("pii.nir-unconfirmed", "warning")]


@pytest.mark.parametrize("head", ["th", "td", "thead"])
def test_an_html_header_labels_its_column(engine: Engine, head: str) -> None:
    tag = "td" if head == "td" else "th"
    first = f"<tr><{tag}>Nom</{tag}><{tag}>Numéro de sécurité sociale</{tag}></tr>"
    if head == "thead":
        first = f"<thead>{first}</thead>"
    page = (f"<html><body><table>{first}\n<tr><td>DUPONT</td><td>RAS</td></tr>\n"
            f"<tr><td>Facture 12</td>\n  <td>{NIR}</td></tr></table></body></html>")
    assert rules_of(check(engine, "liste.html", page)) == [("pii.nir", "error")]


def test_a_cda_narrative_table_header_labels_its_column(engine: Engine) -> None:
    cda = ('<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><component><section><text>'
           "<table><thead><tr><th>Patient</th><th>Référence</th><th>INS</th></tr></thead><tbody>"
           f"<tr><td>DUPONT</td><td>Commande 4</td><td><content>{NIR[:13]}</content></td></tr>"
           "</tbody></table></text></section></component></ClinicalDocument>")
    assert rules_of(check(engine, "cr.xml", cda)) == [("pii.nir-body", "error")]


def test_table_generator_cases_are_errors(engine: Engine) -> None:
    rng = random.Random(5)
    for _ in range(12):
        template, ext, content = hard.column_table(rng, grouped(NIR, rng.choice([" ", ".", ""])))
        assert pii_level(check(engine, f"t.{ext}", content)) == "error", template


# --- 3. compact date-times -----------------------------------------------------------------------------


def test_compact_datetime_shapes() -> None:
    assert compact_datetime("202403151230455") and compact_datetime("19991231235959")
    assert not compact_datetime("202402301230455")  # 30 February
    assert not compact_datetime("202413151230455")  # month 13
    assert not compact_datetime("198912311230455")  # before 1990
    assert not compact_datetime("202403152430455")  # hour 24
    assert not compact_datetime("2024031512304")  # 13 digits


STAMP = hard.keyed_datetime(random.Random(44))


def test_a_keyed_date_time_is_a_warning_unless_labelled(engine: Engine) -> None:
    assert key_of(STAMP[:13]) == STAMP[13:] and compact_datetime(STAMP)
    assert rules_of(check(engine, "a.log", f"horodatage {STAMP}\n")) == [("pii.nir-unconfirmed", "warning")]
    assert rules_of(check(engine, "b.log", f"{STAMP}\n")) == [("pii.nir-unconfirmed", "warning")]
    assert rules_of(check(engine, "c.log", f"patient {STAMP}\n")) == [("pii.nir-unconfirmed", "warning")]
    assert rules_of(check(engine, "d.log", f"NIR : {STAMP}\n")) == [("pii.nir", "error")]
    (finding,) = value_findings(check(engine, "e.log", f"ts={STAMP}\n"))
    assert "date-heure compacte" in finding.message and "compact date-time" in finding.message


def test_a_nir_that_is_no_date_time_is_not_lowered(engine: Engine) -> None:
    # Month 13 in the date reading: a bare key-valid number stays an error.
    body = "2024131512304"
    value = body + key_of(body)
    assert not compact_datetime(value)
    assert rules_of(check(engine, "a.log", f"{value}\n")) == [("pii.nir", "error")]


# --- 4. numbers cut over two lines anywhere -------------------------------------------------------------


@pytest.mark.parametrize("cut", [3, 6, 9, 12])
@pytest.mark.parametrize("spaced", [False, True], ids=["compact", "grouped"])
def test_a_number_cut_inside_a_group(engine: Engine, cut: int, spaced: bool) -> None:
    shown = grouped(NIR) if spaced else NIR
    head, tail = shown[:cut].rstrip(), shown[cut:].lstrip()
    text = f"N° de sécurité sociale : {head}\n{tail}\n"
    assert rules_of(check(engine, "a.txt", text)) == [("pii.nir", "error")], cut


def test_a_number_whose_parts_are_apart_is_at_least_a_warning(engine: Engine) -> None:
    g = grouped(NIR)
    text = f"Consultation {g[:7]} revu le 12/03\n{g[8:]} RAS\n"
    assert rules_of(check(engine, "a.txt", text)) == [("pii.nir-unconfirmed", "warning")]
    labelled = f"NIR : {g[:7]} revu le 12/03\n{g[8:]} RAS\n"
    assert rules_of(check(engine, "b.txt", labelled)) == [("pii.nir", "error")]
    (match,) = find_nirs(text)
    assert match.layout is Layout.SPLIT_APART


def test_cut_numbers_in_html_blocks_and_cda_paragraphs(engine: Engine) -> None:
    g = grouped(CORSICA)
    page = f"<html><body><div>Assuré {g[:9]}</div><p>{g[9:]}</p></body></html>"
    assert rules_of(check(engine, "p.html", page)) == [("pii.nir", "error")]
    cda = ('<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><component><section><text>'
           f"<paragraph>Bénéficiaire {g[:4]} vu</paragraph><paragraph>{g[4:]}</paragraph>"
           "</text></section></component></ClinicalDocument>")
    assert rules_of(check(engine, "cr.xml", cda)) == [("pii.nir", "error")]


def test_two_numbers_on_two_lines_that_make_no_nir_stay_apart() -> None:
    wrong = grouped(WRONG)
    assert [m.key_status for m in find_nirs(f"lot {wrong[:9]}\n{wrong[9:]}\n")] == []
    assert [m for m in find_nirs(f"valeur {NIR[:6]}\n2024-03-15 {NIR[6:]}\n") if m.layout is Layout.SPLIT] == []


# --- 5. PDF metadata -------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["info", "xmp"])
def test_pdf_metadata_is_read(engine: Engine, where: str) -> None:
    rng = random.Random(1 if where == "info" else 2)
    while True:
        template, pdf = hard.pdf_metadata(rng, f"Assuré : {grouped(NIR)}")
        if template == f"pdf-{where}":
            break
    verdict = check(engine, "cr.pdf", pdf)
    assert rules_of(verdict) == [("pii.nir", "error")]
    (finding,) = value_findings(verdict)
    assert finding.location.entry == ("PDF metadata" if where == "info" else "PDF XMP metadata")


def test_an_oversized_xmp_packet_is_reported_not_read(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from validators.pii import textsources

    monkeypatch.setattr(textsources, "MAX_XMP_BYTES", 64)
    rng = random.Random(2)
    while (made := hard.pdf_metadata(rng, "rien"))[0] != "pdf-xmp":
        pass
    gaps = [f for f in check(engine, "cr.pdf", made[1]).findings if f.rule == "pii.not-inspected"]
    assert len(gaps) == 1 and "XMP" in gaps[0].message


def test_a_pdf_without_metadata_packet_is_fine(engine: Engine) -> None:
    assert rules_of(check(engine, "cr.pdf", b.make_pdf(["Compte rendu"]))) == []


# --- 6. explanations and records ------------------------------------------------------------------------


def test_explanations_are_french_then_english_and_never_hold_the_value(engine: Engine) -> None:
    verdict = check(engine, "a.txt", f"Assuré : {grouped(NIR)}\n")
    (finding,) = value_findings(verdict)
    french, english = finding.message.split("(", 1)[1].split("[", 1)
    assert "libellé « assuré »" in french and "écrit par groupes" in french and "clé valide" in french
    assert "labelled 'assuré'" in english and "valid key" in english
    assert NIR[:13] not in finding.message and grouped(NIR)[:9] not in finding.message


def test_a_word_of_the_previous_record_does_not_lower(engine: Engine) -> None:
    assert rules_of(check(engine, "a.log", f"Facture {NIR}\n")) == [("pii.nir-unconfirmed", "warning")]
    assert rules_of(check(engine, "b.log", f"Facture envoyée\n{NIR}\n")) == [("pii.nir", "error")]
    # In HTML, markup indentation is no record end: the cell before still describes the value.
    page = f"<table><tr><td>Facture</td>\n   <td>{NIR}</td></tr></table>"
    assert rules_of(check(engine, "a.html", page)) == [("pii.nir-unconfirmed", "warning")]


# --- the property: look-alikes in any key-valid NIR, any separator --------------------------------------


@st.composite
def confused_nirs(draw: st.DrawFn) -> tuple[str, str]:
    factory = NirFactory(draw(st.integers(0, 2**32)))
    value = factory.nir(sex=draw(st.sampled_from("123478")))
    places = [i for i, c in enumerate(value) if c in "01258"]
    chosen = draw(st.lists(st.sampled_from(places), min_size=1, max_size=3, unique=True)) if places else []
    written = _letters(value, *chosen)
    sep = draw(st.sampled_from(["", " ", ".", "-", "\u00a0"]))
    return (grouped(written, sep) if sep else written), value


@fuzz_settings(deadline_ms=2000, share=0.5)
@given(confused_nirs(), st.sampled_from(["NIR :", "Dossier", "", "Facture n°", "patient", "="]))
def test_any_key_valid_nir_written_with_look_alikes_is_found(case: tuple[str, str], before: str) -> None:
    written, value = case
    found = [m.value for m in find_nirs(f"{before} {written} ok") if m.key_status is KeyStatus.VALID]
    assert found == [value]


def test_a_proof_folder_is_no_label_but_a_prefix_before_a_nir_is(engine: Engine) -> None:
    from validators.pii.names import name_text

    assert name_text("INS.41.2.2/a.txt") == "   .41.2.2/a.txt"
    assert name_text("INS_41_2_2_capture.png").startswith("   _41_2_2")
    kept = "INS.41.2.2/INS_" + grouped(NIR, "_") + ".txt"
    assert name_text(kept).endswith("INS_" + grouped(NIR, "_") + ".txt")
    stamp_name = f"INS.41.2.2/export_{STAMP}.txt"
    assert rules_of(check(engine, stamp_name, "rien")) == [("pii.nir-unconfirmed", "warning")]
    assert rules_of(check(engine, kept, "rien")) == [("pii.nir", "error")]


def test_a_declaration_in_another_metadata_field_does_not_lower(engine: Engine) -> None:
    rng = random.Random(2)
    while (made := hard.pdf_metadata(rng, f"INS : {grouped(NIR[:13])}"))[0] != "pdf-xmp":
        pass
    packet = made[1].replace(b"</rdf:Description>", b"<dc:creator>Dr Demo</dc:creator></rdf:Description>")
    # The stream length changed: the PDF is still read (pypdf recovers), and "Demo" is another field.
    verdict = check(engine, "cr.pdf", packet)
    assert rules_of(verdict) == [("pii.nir-body", "error")]


def test_a_first_line_of_prose_is_no_table_header(engine: Engine) -> None:
    text = (f"Bonjour, voici le NIR du patient de ce dossier, merci\n"
            f"{'x' * 60}\nFacture du 12/03, montant {grouped(NIR)}, payée\n")
    assert rules_of(check(engine, "lettre.txt", text)) == [("pii.nir-unconfirmed", "warning")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_cut_numbers_with_any_line_break(newline: str) -> None:
    g = grouped(NIR)
    text = f"NIR patient : {g[:14]} - DUPONT Marie{newline}{g[15:]}{newline}suite"
    (match,) = find_nirs(text)
    assert match.value == NIR and match.layout is Layout.SPLIT_APART


@pytest.mark.parametrize("label", ["NIA :", "N° d'immatriculation", "Bénéficiaire", "num_ss="])
def test_the_body_of_a_nia_labelled_as_such(engine: Engine, label: str) -> None:
    assert NIA[0] == "7"
    assert rules_of(check(engine, "a.txt", f"{label} {NIA[:13]}\n")) == [("pii.nir-body", "error")]
    assert rules_of(check(engine, "b.txt", f"{label} {grouped(NIA[:13])}\n")) == [("pii.nir-body", "error")]


def test_a_form_field_value_reads_after_its_label(engine: Engine) -> None:
    page = f'<form><label>N° SS</label> <input type="text" value="{grouped(NIR)}"></form>'
    assert ("pii.nir", "error") in rules_of(check(engine, "form.html", page))
    overseas = FACTORY.nir(place="98812")
    v = overseas
    written = " ".join([v[0], v[1:3], v[3:5], "9B8", v[8:10], v[10:13], v[13:]])
    assert v[5:8] == "988"
    page = f"<form><label>Assuré</label><input value='{written}'/></form>"
    assert ("pii.nir", "error") in rules_of(check(engine, "form2.html", page))


@pytest.mark.parametrize("lost", ["?", "\ufffd"], ids=["question-mark", "replacement-character"])
def test_a_no_break_space_lost_in_a_legacy_encoding_still_separates(engine: Engine, lost: str) -> None:
    text = f"Bénéficiaire DUPONT : réf {grouped(NIR, lost)}\n".encode("cp1252", errors="replace")
    assert pii_level(check(engine, "journal.log", text)) in ("warning", "error")
    (match,) = find_nirs(f"x {grouped(NIR, lost)} y")
    assert match.value == NIR and match.key_status is KeyStatus.VALID
