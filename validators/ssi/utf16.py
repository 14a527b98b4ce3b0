"""The ``ssi-utf16`` check: formulas in a table written in UTF-16 without a byte-order mark.

Such a file reads two ways. Tools that look for a byte-order mark see a NUL byte beside every
character (file type ``application/octet-stream``; the ``ssi-text`` check then sees no formula in it),
while the spreadsheets and editors that guess the encoding (LibreOffice's text import, Notepad, pandas)
show the table, formulas included. Here such a file is decoded as UTF-16 (the byte order read from
where the NULs fall) and its cells judged as ``ssi-text`` judges CSV cells (``formulas.py``).
"""

from __future__ import annotations

import codecs
from typing import ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, FileTooLargeError, ProofFile, Validator
from validators.model import CheckState
from validators.ssi.formulas import DELIMITERS, MAX_CELLS, scan, tab_separated

MAX_TEXT_BYTES = 64 * 1024 * 1024
SAMPLE_BYTES = 4096
# Share of the high bytes that are NUL (and of the low bytes that are not) in UTF-16 text written in a
# Latin script: ASCII and Latin-1 letters (é is E9 00) all have a NUL high byte.
NUL_SHARE = 0.7
TABLE_EXTENSIONS = frozenset({"csv", "tsv", "txt", "tab"})


def utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` when ``head`` is UTF-16 text without a byte-order mark, else None."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or len(head) < 8:
        return None
    sample = head[: len(head) // 2 * 2]
    pairs = len(sample) // 2
    even_nuls = sample[0::2].count(0) / pairs
    odd_nuls = sample[1::2].count(0) / pairs
    if odd_nuls >= NUL_SHARE and even_nuls <= 1 - NUL_SHARE:
        return "utf-16-le"
    if even_nuls >= NUL_SHARE and odd_nuls <= 1 - NUL_SHARE:
        return "utf-16-be"
    return None


class Utf16TableValidator(Validator):
    name: ClassVar[str] = "ssi-utf16"
    rules: ClassVar[tuple[str, ...]] = ("ssi.text.utf16-formula", "system.check-not-run")
    reads_settings: ClassVar[tuple[str, ...]] = ()  # nothing: its results depend on the bytes alone
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 60.0

    def applies_to(self, file: ProofFile) -> bool:
        table = file.extension in TABLE_EXTENSIONS or file.media_type.startswith("text/")
        return table and file.size >= 8 and utf16_without_bom(file.head(SAMPLE_BYTES)) is not None

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        encoding = utf16_without_bom(file.head(SAMPLE_BYTES)) or "utf-16-le"
        try:
            text = file.read(MAX_TEXT_BYTES).decode(encoding, "replace")
        except FileTooLargeError:
            return CheckResult(state=CheckState.NOT_RUN, detail="over the size limit: not inspected")
        ctx.check_time()
        if file.extension in ("csv", "tsv"):
            delimiters = tuple(DELIMITERS)
        elif tab_separated(text):
            delimiters = ("\t",)
        else:
            return CheckResult(detail=f"{encoding} text without byte-order mark, not a table")
        formulas = scan(text, ctx.check_time, delimiters=delimiters)
        findings = [
            rules.finding(
                "ssi.text.utf16-formula",
                found.location,
                encoding=encoding.upper(),
                kind=dict(found.params).get("kind", "a formula"),
                evidence=found.evidence,
            )
            for found in formulas.findings
        ]
        if not formulas.complete:
            detail = f"over {MAX_CELLS} cells or not readable as CSV: formulas not all inspected"
            return CheckResult(findings=findings, state=CheckState.NOT_RUN, detail=detail)
        return CheckResult(findings=findings, detail=f"{encoding} table without byte-order mark")
