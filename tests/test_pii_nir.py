"""The NIR recognizer: structure rules, the key (with Corsica), layouts, context, masking."""

from __future__ import annotations

import pytest

from fixtures.pii_snippets import FICTITIOUS_NESSI, FICTITIOUS_PAT_TROIS, grouped, key_of
from validators.pii.allowlist import AllowlistError, load_allowlist
from validators.pii.context import NO_CONTEXT, ContextHit, context_of
from validators.pii.ins import Authority, authority_near
from validators.pii.mask import mask_nir
from validators.pii.nir import KeyStatus, find_nirs, nir_key, structure_problem

BODY = "1850578006084"
NIR = BODY + key_of(BODY)


def statuses(text: str, lenient: bool = False) -> list[KeyStatus]:
    return [m.key_status for m in find_nirs(text, lenient=lenient)]


def test_key_is_97_minus_n_mod_97_with_corsica_substituted() -> None:
    assert nir_key(BODY) == 97 - int(BODY) % 97
    assert nir_key("285052A006084") == 97 - int("2850519006084") % 97
    assert nir_key("285052B006084") == 97 - int("2850518006084") % 97
    assert int(FICTITIOUS_NESSI[13:]) == nir_key(FICTITIOUS_NESSI[:13])
    assert int(FICTITIOUS_PAT_TROIS[13:]) == nir_key(FICTITIOUS_PAT_TROIS[:13])


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("1850578006084", None),
        ("3850578006084", None),  # NIR-like sex digits are kept (3, 4, 7, 8)
        ("8850578006084", None),
        ("5850578006084", "sex digit"),
        ("1851378006084", "month"),
        ("1854378006084", "month"),
        ("1852078006084", None),  # fictitious months 20-42 and 50-99
        ("1854278006084", None),
        ("1855078006084", None),
        ("1850500006084", "department"),
        ("1850596006084", "department"),
        ("185052A006084", None),
        ("185052C006084", "department"),
        ("1850597106084", None),  # 97x overseas
        ("1850598806084", None),
        ("1850599123084", None),  # 99 + country
    ],
    ids=[f"structure-{i:02d}" for i in range(16)],
)
def test_structure_rules(body: str, problem: str | None) -> None:
    assert structure_problem(body) == problem


LAYOUTS = [
    (NIR, [KeyStatus.VALID]),
    (grouped(NIR), [KeyStatus.VALID]),
    (grouped(NIR, "."), [KeyStatus.VALID]),
    (grouped(NIR, "-"), [KeyStatus.VALID]),
    (grouped(NIR, "\u00a0"), [KeyStatus.VALID]),
    (grouped(NIR, "\u202f"), [KeyStatus.VALID]),
    (f"{BODY}    Clé : {NIR[13:]}", [KeyStatus.VALID]),
    (f"{BODY};{NIR[13:]}", [KeyStatus.VALID]),
    (f"{BODY} ({NIR[13:]})", [KeyStatus.VALID]),
    (" ".join(grouped(NIR).split()[:4]) + "\n" + " ".join(grouped(NIR).split()[4:]), [KeyStatus.VALID]),
    (NIR[:7] + "\r\n" + NIR[7:], [KeyStatus.VALID]),
    (f"{NIR}@patient.mssante.fr", [KeyStatus.VALID]),
    (f"https://x.example/p/{NIR}?a=1", [KeyStatus.VALID]),
    (f"PID|1||{NIR}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS", [KeyStatus.VALID]),
    (BODY, [KeyStatus.ABSENT]),
    (BODY + f"{(int(NIR[13:]) % 97) + 1:02d}", [KeyStatus.INVALID]),
    ("185 05 78 006 084 " + NIR[13:], [KeyStatus.VALID]),  # irregular grouping proved by the key
    ("1.2.250.1.213.1.4.8", []),
    ("1.2.250." + grouped(NIR, ".") + ".1", []),  # a dotted NIR inside an OID
    ("FR76 3000 6000 0112 3456 7890 189", []),
    ("123 456 789 00012", []),
    ("1234567890121", []),  # ANS examples' local patient id: month 45 does not exist
    ("0" + NIR, []),
    (NIR + "0", []),
    ("A" + NIR, [KeyStatus.VALID]),  # glued to letters ("NIR185...", "ID185..."): still a NIR
]


@pytest.mark.parametrize(("text", "expected"), LAYOUTS, ids=[f"layout-{i:02d}" for i in range(len(LAYOUTS))])
def test_layouts(text: str, expected: list[KeyStatus]) -> None:
    assert statuses(text) == expected


def _wrapped(mark: str, cut: int, where: str) -> str:
    groups = grouped(NIR).split()
    head, tail = mark.join(groups[:cut]), mark.join(groups[cut:])
    return {"end": f"{head}{mark}\n{tail}", "start": f"{head}\n{mark}{tail}", "dropped": f"{head}\n{tail}",
            "crlf": f"{head}{mark}\r\n{tail}"}[where]


@pytest.mark.parametrize("mark", ["-", ".", "/", "\u2011"])
@pytest.mark.parametrize("where", ["end", "start", "dropped", "crlf"])
def test_a_number_grouped_by_a_mark_is_read_across_the_line_it_wraps_at(mark: str, where: str) -> None:
    for cut in range(1, 7):  # at every group boundary, the key alone on the next line included
        (match,) = find_nirs("NIR : " + _wrapped(mark, cut, where) + "\nsuite")
        assert match.value == NIR and match.key_status is KeyStatus.VALID


def test_wrapped_groups_stay_one_layout() -> None:
    groups = grouped(NIR).split()
    # Two line breaks, marks mixed, or table-cell marks (two CSV rows) are not one wrapped number.
    assert statuses("-".join(groups[:2]) + "-\n" + "-".join(groups[2:4]) + "\n-" + "-".join(groups[4:6])) == []
    assert statuses("-".join(groups[:3]) + "-\n" + ".".join(groups[3:6])) == []
    assert statuses(";".join(groups[:3]) + ";\n" + ";".join(groups[3:6])) == []


def test_glued_and_grouped_mix_is_refused_unless_ocr_or_key_valid() -> None:
    mixed_body = "185 05 78 006 084"
    assert statuses(mixed_body) == []
    assert statuses(mixed_body, lenient=True) == [KeyStatus.ABSENT]


def test_match_offsets_cover_the_number() -> None:
    text = f"NIR : {grouped(NIR)} fin"
    (match,) = find_nirs(text)
    assert text[match.start : match.end] == grouped(NIR)
    assert match.value == NIR and not match.nir_like


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("N° de sécurité sociale : ", "", ContextHit(label="sécurité sociale")),
        ("n° SS ", "", ContextHit(label="n° ss")),
        ("Matricule INS ", "", ContextHit(label="matricule")),
        ("Facture n° ", "", ContextHit(lowering="facture")),
        ("Commande ", "", ContextHit(lowering="commande")),
        ("SIRET ", "", ContextHit(lowering="siret")),
        ("Le patient ", "", ContextHit(person="patient")),
        ("Suivi patient DUPONT Marie ", "", ContextHit(person="patient", lowering="suivi")),
        ("NIR (commande) ", "", ContextHit(label="nir", lowering="commande")),
        ("Numéro ", " (fictif)", ContextHit(declared="fictif")),
        ("Patient test ", "", ContextHit(person="patient", declared="test")),
        # A declaration belongs to the value beside it, not to a neighbour or a host name.
        ("", " et patient test 279035121518989", ContextHit(person="patient")),
        ("https://dpi.example.fr/p/", "", NO_CONTEXT),
        ("test du 12/03 : ", "", NO_CONTEXT),
        ("Le ", "", NO_CONTEXT),
    ],
    ids=[f"context-{i:02d}" for i in range(15)],
)
def test_context_words(before: str, after: str, expected: ContextHit) -> None:
    text = before + NIR + after
    assert context_of(text, len(before), len(before) + len(NIR)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'<id root="1.2.250.1.213.1.4.8" extension="{NIR}"/>', Authority.PRODUCTION),
        (f'<id extension="{NIR}" root="1.2.250.1.213.1.4.9"/>', Authority.PRODUCTION),
        (f'<id root="1.2.250.1.213.1.4.10" extension="{NIR}"/>', Authority.TEST),
        (f"{NIR}^^^ASIP-SANTE-INS-NIR-DEMO&1.2.250.1.213.1.4.11&ISO^INS", Authority.TEST),
        (f"{NIR}^^^X&1.2.250.1.213.1.4.13&ISO^NH", Authority.SOCIAL_SECURITY),
        (f'<id root="1.2.250.1.213.1.4.8"/><id extension="{NIR}" root="1.2.3"/>', None),  # another tag
        (f"A&1.2.250.1.213.1.4.8&ISO^INS~{NIR}^^^B&1.2.3&ISO^PI", None),  # another repetition
    ],
    ids=[f"authority-{i}" for i in range(7)],
)
def test_authority_is_read_within_the_same_tag_or_field(text: str, expected: Authority | None) -> None:
    start = text.index(NIR)
    found = authority_near(text, start, start + len(NIR))
    assert (found.authority if found else None) is expected


def test_mask_keeps_only_sex_and_key() -> None:
    assert mask_nir("2", "96") == "2 ** ** ** *** *** 96"
    assert mask_nir("1", None) == "1 ** ** ** *** *** --"
    assert mask_nir("x", "9") == "* ** ** ** *** *** --"


def test_allowlist_has_the_ans_test_identities_and_is_extensible(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    default = load_allowlist()
    assert default.allows(FICTITIOUS_NESSI[:13], FICTITIOUS_NESSI[13:])
    assert default.allows(FICTITIOUS_PAT_TROIS[:13], None)
    assert not default.allows(BODY, NIR[13:])
    extra = tmp_path / "more.yaml"
    extra.write_text(f'identities:\n  - label: ours\n    nir: "{grouped(NIR)}"\n', "utf-8")
    assert load_allowlist({"pii": {"allowlist": [str(extra)]}}).allows(BODY, NIR[13:])
    monkeypatch.setenv("PROOFCHECK_PII_ALLOWLIST", str(extra))
    assert load_allowlist().allows(BODY, NIR[13:])


def test_a_broken_allowlist_is_refused_without_quoting_its_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    wrong = BODY + f"{(int(NIR[13:]) % 97) + 1:02d}"
    bad.write_text(f'identities:\n  - nir: "{wrong}"\n', "utf-8")
    with pytest.raises(AllowlistError) as caught:
        load_allowlist({"pii": {"allowlist": [str(bad)]}})
    assert BODY not in str(caught.value) and "entry 1" in str(caught.value)


def test_ocr_marks_beside_blanks_or_changed_are_read_when_the_key_proves_the_number() -> None:
    groups = grouped(NIR).split()
    misread = groups[0] + " ." + ".".join(groups[1:6]) + "," + groups[6]  # "1 .85.05.78.006.084,KK"
    assert statuses(misread, lenient=True) == [KeyStatus.VALID]
    assert statuses(misread) == []  # typed text keeps one layout
    wrong_key = misread[:-2] + f"{(int(NIR[13:]) % 97) + 1:02d}"
    assert KeyStatus.VALID not in statuses(wrong_key, lenient=True)


def test_ocr_reads_a_number_wrapped_at_a_line_whatever_blanks_ocr_left_in_the_rest() -> None:
    groups = grouped(NIR).split()
    text = f"Commande {groups[0]} {groups[1]}\n{groups[2]} {''.join(groups[3:])}\n"  # "03 2317677911"
    (match,) = find_nirs(text, lenient=True, ocr=True)
    assert match.value == NIR and match.key_status is KeyStatus.VALID
    assert statuses(text) == []  # typed text: one layout per number
    wrong = text[:-3] + f"{(int(NIR[13:]) % 97) + 1:02d}\n"
    assert KeyStatus.VALID not in [m.key_status for m in find_nirs(wrong, lenient=True, ocr=True)]


def test_a_look_alike_in_a_department_starting_with_2_is_read() -> None:
    # "21" typed as "2I" was taken for Corsica's 2A/2B and dropped (bench_pii generated case, seed 350361356).
    body = "1855021006084"  # department 21
    value = body + key_of(body)
    typed = grouped(value).replace(" 21 ", " 2I ")
    assert "2I" in typed
    (match,) = find_nirs(f"Sécurité sociale : {typed}")
    assert match.value == value and match.key_status is KeyStatus.VALID and match.lookalikes == 1


@pytest.mark.parametrize("compact", [True, False])
def test_a_28_written_2b_is_read_both_as_corsica_and_as_a_look_alike(compact: bool) -> None:
    # "28" typed "2B": read as Corsica only, its key was wrong and the labelled NIR only a warning
    # (bench_pii generated case, seed 548333778).
    body = "1855028006084"  # department 28 (Eure-et-Loir)
    value = body + key_of(body)
    typed = value[:5] + "2B" + value[7:] if compact else grouped(value).replace(" 28 ", " 2B ")
    (match,) = find_nirs(f"Carte Vitale n° {typed}")
    assert match.value == value and match.key_status is KeyStatus.VALID and match.lookalikes == 1
    corsica = "185502B060084"  # a real 2B: its own key, read as Corsica
    (real,) = find_nirs(f"NIR {corsica}{key_of(corsica)}")
    assert real.key_status is KeyStatus.VALID and real.lookalikes == 0
