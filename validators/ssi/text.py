"""Text that attacks its reader: CSV formula injection (``formulas.py``), terminal escape sequences, bidi
controls, and names that hide characters (on every file, whatever its type).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator
from typing import ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, FileTooLargeError, ProofFile, Validator
from validators.model import CheckState, Finding, Location
from validators.ssi.formulas import DELIMITERS, scan, tab_separated

MAX_TEXT_BYTES = 64 * 1024 * 1024
MAX_FINDINGS_PER_RULE = 20
_TEXT_EXTENSIONS = frozenset(
    {
        "txt",
        "log",
        "csv",
        "tsv",
        "json",
        "ini",
        "conf",
        "cfg",
        "properties",
        "yaml",
        "yml",
        "hl7",
        "out",
        "err",
        "md",
    }
)
_CSV_EXTENSIONS = frozenset({"csv", "tsv"})
_CSV_TYPES = ("text/csv", "text/tab-separated-values", "application/csv")
# Bidi embeddings, overrides and isolates (marks such as U+200E/U+200F are harmless and left alone).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.)|[\x80-\x9f]",
    re.DOTALL,
)


def _escape_kind(sequence: str) -> str:
    if sequence.startswith("\x1b]"):
        return "OSC (window title, clipboard, hyperlinks)"
    if sequence.startswith("\x1b["):
        return "CSI (cursor, screen, device reports)"
    if sequence[:2] in ("\x1bP", "\x1bX", "\x1b^", "\x1b_"):
        return "DCS/APC string"
    if sequence.startswith("\x1b"):
        return "ESC sequence"
    return "C1 control"


def escape_findings(text: str) -> Iterator[Finding]:
    colours = reported = 0
    for match in _ESCAPE.finditer(text):
        sequence = match.group()
        if _SGR.fullmatch(sequence):
            colours += 1
        elif reported < MAX_FINDINGS_PER_RULE:
            reported += 1
            line = text.count("\n", 0, match.start()) + 1
            yield rules.finding(
                "ssi.text.terminal-escape",
                Location(line=line),
                kind=_escape_kind(sequence),
                evidence=repr(sequence[:12]),
            )
    if colours:
        yield rules.finding("ssi.text.terminal-colour", count=str(colours))


def bidi_findings(text: str) -> Iterator[Finding]:
    for count, match in enumerate(_BIDI.finditer(text)):
        if count >= MAX_FINDINGS_PER_RULE:
            return
        line = text.count("\n", 0, match.start()) + 1
        yield rules.finding(
            "ssi.text.bidi-control", Location(line=line), codepoint=f"U+{ord(match.group()):04X}"
        )


def name_findings(name: str) -> Iterator[Finding]:
    for char in name:
        if char in BIDI_CONTROLS:
            yield rules.finding(
                "ssi.filename", kind="a bidirectional override", codepoint=f"U+{ord(char):04X}"
            )
        elif unicodedata.category(char) == "Cc":
            yield rules.finding("ssi.filename", kind="a control character", codepoint=f"U+{ord(char):04X}")


def _decode(data: bytes) -> str:
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Logs from Windows tools are often cp1252 (its 0x80-0x9F are printable there, not C1 controls).
        return data.decode("cp1252", "replace")


class TextValidator(Validator):
    name: ClassVar[str] = "ssi-text"
    rules: ClassVar[tuple[str, ...]] = (
        "ssi.text.formula-injection",
        "ssi.text.terminal-escape",
        "ssi.text.terminal-colour",
        "ssi.text.bidi-control",
        "ssi.filename",
        "system.check-not-run",
    )
    reads_settings: ClassVar[tuple[str, ...]] = ()
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 60.0

    def applies_to(self, file: ProofFile) -> bool:
        return True  # every name is checked; content only for text files (see check)

    @staticmethod
    def is_text(file: ProofFile) -> bool:
        media = file.media_type
        return media.startswith("text/") or media == "application/json" or file.extension in _TEXT_EXTENSIONS

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        findings = list(name_findings(file.name))
        if not self.is_text(file) or file.media_type in ("text/html", "text/xml"):
            return CheckResult(findings=findings)
        try:
            text = _decode(file.read(MAX_TEXT_BYTES))
        except FileTooLargeError:
            return CheckResult(
                findings=findings,
                state=CheckState.NOT_RUN,
                detail="over the size limit: content not inspected",
            )
        ctx.check_time()
        findings += escape_findings(text)
        findings += bidi_findings(text)
        delimiters: tuple[str, ...] = ()
        if file.extension in _CSV_EXTENSIONS or file.media_type in _CSV_TYPES:
            delimiters = tuple(DELIMITERS)
        elif tab_separated(text):
            delimiters = ("\t",)  # a .txt table opens in a spreadsheet split on tabs
        if delimiters:
            formulas = scan(text, ctx.check_time, delimiters=delimiters)
            findings += formulas.findings
            if not formulas.complete:
                return CheckResult(
                    findings=findings,
                    state=CheckState.NOT_RUN,
                    detail="too many cells or not readable as CSV: formulas not all inspected",
                )
        return CheckResult(findings=findings)
