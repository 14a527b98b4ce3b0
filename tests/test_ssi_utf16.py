"""The ``ssi-utf16`` check: formulas in tables written in UTF-16 without a byte-order mark."""

from __future__ import annotations

import hashlib

import pytest

from fixtures.triggers_settings import UTF16_TABLE
from validators import sniff
from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.registry import default_validators
from validators.ssi.utf16 import Utf16TableValidator, utf16_without_bom


def proof(name: str, data: bytes) -> ProofFile:
    return ProofFile(name, len(data), hashlib.sha256(data).hexdigest(), sniff.media_type(data[:4096]), data=data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (UTF16_TABLE.encode("utf-16-le"), "utf-16-le"),
        (UTF16_TABLE.encode("utf-16-be"), "utf-16-be"),
        ("résumé;état\r\nélève;=1+1\r\n".encode("utf-16-le"), "utf-16-le"),  # accents keep a NUL high byte
        (UTF16_TABLE.encode("utf-16"), None),  # a byte-order mark: ssi-text decodes it
        (UTF16_TABLE.encode("utf-8"), None),
        (bytes(range(256)) * 4, None),  # binary
        (b"\x00" * 64, None),  # NULs on both sides: not text
    ],
    ids=["le", "be", "accents", "bom", "utf8", "binary", "nuls"],
)
def test_utf16_without_a_byte_order_mark_is_recognised(data: bytes, expected: str | None) -> None:
    assert utf16_without_bom(data) == expected


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_formula_in_such_a_table_is_found_with_its_line_and_column(encoding: str) -> None:
    file = proof("export.csv", UTF16_TABLE.encode(encoding))
    validator = Utf16TableValidator()
    assert validator.applies_to(file)
    result = validator.check(file, CheckContext())
    rows = [(f.rule, f.location.line, f.location.column) for f in result.findings]
    assert rows == [("ssi.text.utf16-formula", 2, 2)]  # the DDE call; 12,5 is a number
    assert dict(result.findings[0].params)["encoding"] == encoding.upper()


def test_a_tab_separated_txt_is_a_table_and_plain_text_is_not() -> None:
    table = "nom\tmontant\r\nDupont\t=HYPERLINK(\"http://x\")\r\nMartin\t3\r\n".encode("utf-16-le")
    prose = "Compte rendu fictif.\r\n=== fin ===\r\n".encode("utf-16-le")
    assert [f.rule for f in Utf16TableValidator().check(proof("t.txt", table), CheckContext()).findings] == [
        "ssi.text.utf16-formula"
    ]
    result = Utf16TableValidator().check(proof("notes.txt", prose), CheckContext())
    assert result.findings == [] and "not a table" in (result.detail or "")


def test_the_text_check_alone_misses_it_and_the_registry_adds_the_new_check() -> None:
    """Why the check exists: before it, a BOM-less UTF-16 CSV had no ssi finding (no quarantine)."""
    file = proof("DOC.3.1.2/export.csv", UTF16_TABLE.encode("utf-16-le"))
    validators = default_validators({"antivirus_test_signatures": "accept", "clamd": "unix:/nonexistent.sock"})
    without = [v for v in validators if v.name not in ("ssi-utf16", "antivirus")]
    assert not [f for f in Engine(without).check_file(file).findings if f.family == "ssi"]
    found = Engine([v for v in validators if v.name != "antivirus"]).check_file(file)
    assert "ssi.text.utf16-formula" in {f.rule for f in found.findings}
    assert "ssi-utf16" in {c.name for c in found.checks}
