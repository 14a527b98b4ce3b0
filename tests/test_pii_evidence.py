"""Words lower a key-valid NIR, never erase it; only positive evidence (allow-list, structure) clears it.

Every case goes through the real engine; ids and words only in test names, never a value.
"""

from __future__ import annotations

import json

import pytest
from pii_support import check, pii_engine, pii_level, rules_of, value_findings

from fixtures.pii_generator import LOWERING, nir_of, nir_shaped_idnat_struct
from fixtures.pii_snippets import FICTITIOUS_NESSI, FICTITIOUS_PAT_TROIS, NirFactory, grouped
from validators.engine import Engine

FACTORY = NirFactory(1313)
NIR = FACTORY.nir()
OTHER = FACTORY.nir()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return pii_engine()


# The issue's phrases, as a new user wrote them: each was a silent pass.
ISSUE_PHRASES = [
    ("suivi-patient", f"Suivi patient DUPONT Marie {grouped(NIR)}", "error"),
    ("bon-retour", f"Bon retour {grouped(NIR)}", "warning"),
    ("tel-domicile-patient", f"Tel domicile {NIR} patient", "error"),
    ("app-version-patient", f"app version 4.2 patient={NIR}", "error"),
    # the same words, labelled: an error whatever else is around
    ("bon-retour-labelled", f"Bon retour, NIR {grouped(NIR)}", "error"),
    ("tel-domicile-labelled", f"Tel domicile, n° SS {NIR}", "error"),
    ("version-labelled", f"app version 4.2 assuré={NIR}", "error"),
]


@pytest.mark.parametrize(("text", "expected"), [p[1:] for p in ISSUE_PHRASES], ids=[p[0] for p in ISSUE_PHRASES])
def test_the_issue_phrases_are_reported_and_labelled_ones_are_errors(engine: Engine, text: str, expected: str) -> None:
    verdict = check(engine, "trace.txt", text)
    assert pii_level(verdict) == expected, rules_of(verdict)


@pytest.mark.parametrize("word", LOWERING)
def test_a_word_naming_another_number_lowers_to_a_warning_never_clears(engine: Engine, word: str) -> None:
    verdict = check(engine, "trace.txt", f"{word} {grouped(NIR)}")
    assert rules_of(verdict) == [("pii.nir-unconfirmed", "warning")]
    (finding,) = value_findings(verdict)
    # The explanation reads in French first, then in English (labels only, never the value).
    assert "mot « " in finding.message and "[context word '" in finding.message
    assert NIR[:13] not in finding.message


@pytest.mark.parametrize(
    ("before", "after"),
    [("Numéro fictif :", ""), ("patient test", ""), ("NIR de démo", ""), ("", "(fictif)"), ("exemple :", "")],
    ids=["fictif", "patient-test", "demo", "after-fictif", "exemple"],
)
def test_a_declaration_lowers_to_a_warning(engine: Engine, before: str, after: str) -> None:
    verdict = check(engine, "fiche.txt", f"{before} {grouped(NIR)} {after}")
    assert rules_of(verdict) == [("pii.nir-unconfirmed", "warning")]


def test_a_declaration_lowers_only_the_value_beside_it(engine: Engine) -> None:
    text = f"Identité fictive : {grouped(OTHER)}\nNIR de la patiente : {grouped(NIR)}\nNIR : {grouped(OTHER)}\n"
    verdict = check(engine, "fiche.txt", text)
    # OTHER is a warning where it is declared fictitious and an error where it is simply labelled.
    assert rules_of(verdict) == [("pii.nir", "error"), ("pii.nir", "error"), ("pii.nir-unconfirmed", "warning")]
    lines = sorted(f.location.line for f in value_findings(verdict))
    assert lines == [1, 2, 3]


def test_a_bare_valid_nir_is_an_error(engine: Engine) -> None:
    verdict = check(engine, "liste.txt", f"{NIR}\n")
    assert rules_of(verdict) == [("pii.nir", "error")]
    assert "no context word" in value_findings(verdict)[0].message


def test_the_test_ins_oid_in_hl7_does_not_silence_the_value_in_a_note(engine: Engine) -> None:
    message = (
        "MSH|^~\\&|LGC|CAB|DMP|ANS|20240315120000||ADT^A28|M1|P|2.5\r"
        f"PID|1||{NIR}^^^ASIP-SANTE-INS-NIR-TEST&1.2.250.1.213.1.4.10&ISO^INS||DUPONT^MARIE\r"
        f"NTE|1||Assuré {grouped(NIR)} rappelé\r"
    )
    verdict = check(engine, "message.hl7", message)
    assert rules_of(verdict) == [("pii.ins-test", "warning"), ("pii.nir", "error")]


# --- positive evidence ---------------------------------------------------------------------------------


def test_the_allow_list_clears_a_published_identity_whatever_the_words(engine: Engine) -> None:
    text = f"NIR : {FICTITIOUS_NESSI}\nFacture {grouped(FICTITIOUS_PAT_TROIS)}\nNuméro fictif {FICTITIOUS_NESSI}\n"
    verdict = check(engine, "fiche.txt", text)
    assert rules_of(verdict) == [("pii.fictitious-identity", "info"), ("pii.fictitious-identity", "info")]


def _idnat_struct_cda(value: str, patient: str) -> str:
    return (
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
        f'<id root="1.2.250.1.213.1.4.8" extension="{patient}"/></patientRole></recordTarget>'
        f'<author><assignedAuthor><representedOrganization><id root="1.2.250.1.71.4.2.2" extension="{value}"/>'
        "</representedOrganization></assignedAuthor></author></ClinicalDocument>"
    )


def test_an_idnat_struct_identifier_is_cleared_and_the_patient_next_to_it_is_not(engine: Engine) -> None:
    import random

    siret_based = nir_shaped_idnat_struct(random.Random(7))  # 3 + SIRET, NIR-shaped with a valid key
    verdict = check(engine, "doc.xml", _idnat_struct_cda(siret_based, NIR))
    assert rules_of(verdict) == [("pii.ins-production", "error"), ("pii.other-identifier", "info")]
    other = next(f for f in value_findings(verdict) if f.rule == "pii.other-identifier")
    assert "IdNat_Struct" in other.message


@pytest.mark.parametrize(
    "template",
    [
        '{{"identifier": [{{"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "{v}"}}]}}',
        '{{"identifier": [{{"value": "{v}", "system": "https://finess.esante.gouv.fr"}}]}}',
        '<Organization xmlns="http://hl7.org/fhir"><identifier><system value="urn:oid:1.2.250.1.71.4.2.2"/>'
        '<value value="{v}"/></identifier></Organization>',
        "PRD|RP||||||{v}^^^ASIP-SANTE-ST&1.2.250.1.71.4.2.2&ISO^IDNST\r",
        "ORC|1|||||||||||{v}^^^^^^^^^IDNPS\r",
        "Étiquette (01)03400930000120(17)271231(10){v}",
        "GS1 (01) 03400930000120 (21) {v}",
    ],
    ids=["fhir-oid", "fhir-finess-url", "fhir-xml", "hl7-idnat-struct", "hl7-type-idnps", "gs1-lot", "gs1-serial"],
)
def test_identifier_structures_clear(engine: Engine, template: str) -> None:
    import random

    value = nir_shaped_idnat_struct(random.Random(11))
    names = {"{": "id.json", "<": "id.xml"}
    name = names.get(template[0], "msg.hl7" if "|" in template else "etiquette.txt")
    verdict = check(engine, name, template.format(v=value))
    assert rules_of(verdict) == [("pii.other-identifier", "info")]


@pytest.mark.parametrize(
    "text",
    [
        "FINESS 1.2.250.1.71.4.2.2 : {v}",  # an organisation OID in the same line is not a structure
        '<id root="1.2.250.1.71.4.2.2" extension="1120456789"/><id root="1.2.3.4" extension="{v}"/>',
        "SIRET {v}",  # a word is not evidence
        '{{"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1120456789"}}, {{"value": "{v}"}}',
        "PRD|RP||||||1120456789^^^ST&1.2.250.1.71.4.2.2&ISO^IDNST|{v}\r",
        "(10){v}",  # a lot field without its GTIN is not a GS1 element string
        '<identifier><system value="urn:oid:1.2.250.1.71.4.2.2"/><value value="1120456789"/></identifier>'
        '<identifier><value value="{v}"/></identifier>',
    ],
    ids=["oid-in-prose", "next-element", "siret-word", "next-json-object", "next-hl7-field", "lone-ai",
         "next-fhir-xml-identifier"],
)
def test_evidence_next_to_a_nir_does_not_clear_it(engine: Engine, text: str) -> None:
    ext = "xml" if text.startswith("<") else ("json" if text.startswith("{") else "txt")
    verdict = check(engine, f"doc.{ext}", text.format(v=NIR))
    assert pii_level(verdict) in ("warning", "error"), rules_of(verdict)
    assert "pii.other-identifier" not in {f.rule for f in verdict.findings}


def test_every_kind_of_nir_is_reported_without_its_digits(engine: Engine) -> None:
    import random

    rng = random.Random(5)
    for kind in ("nir", "nia", "corsica", "overseas", "abroad", "odd-month"):
        value = nir_of(rng, kind)
        verdict = check(engine, "trace.log", f"suivi {value}")
        assert pii_level(verdict) == "warning", kind
        rendered = json.dumps(verdict.to_dict(), ensure_ascii=False)
        assert value[:13] not in rendered and grouped(value) not in rendered
