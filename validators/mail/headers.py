"""Header fields that attack their reader: terminal escapes, bidi overrides and control characters.

The escape and bidi detection is the text check's (``validators.ssi.text``), applied to each header
value once decoded (RFC 2047 encoded-words hide ``ESC`` from a check of the raw bytes) and to the raw
value; findings are relocated to the header's name. Counts and lengths are bounded before anything is
decoded, because decoding a hostile header is where the stdlib parser spends its time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from email.header import decode_header, make_header

from validators import rules
from validators.mail.harvest import Harvest
from validators.model import Finding, Location
from validators.ssi.text import bidi_findings, escape_findings

# C0 controls other than tab, line feed and carriage return, and DEL (ESC is the text check's).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")


def decoded(value: str) -> str:
    """A header value with its encoded-words decoded (the raw value if they are broken)."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, AssertionError):
        return value


def raw_8bit(value: str) -> str:
    """A raw header value whose 8-bit bytes (kept by the parser as surrogates) are read as UTF-8.

    Read as Latin-1, the continuation bytes 0x80-0x9F of plain UTF-8 text would look like C1 controls.
    """
    if value.isascii():
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def control_findings(text: str) -> Iterator[Finding]:
    for match in _CONTROL.finditer(text):
        yield rules.finding("ssi.email.header-control", codepoint=f"U+{ord(match.group()):04X}")
        return  # one is enough per value: the header is unsafe to print


def check_headers(items: Iterable[tuple[str, str]], harvest: Harvest, where: str) -> bool:
    """Check raw (name, value) pairs; False when a limit was passed (the part is then not read)."""
    limits = harvest.limits
    for count, (name, raw) in enumerate(items, start=1):
        if count > limits.max_headers:
            harvest.add(rules.finding("ssi.email.header-limit", Location(entry=where or None),
                                      limit="the number of fields allowed", evidence=f"{limits.max_headers} fields"))
            return False
        if len(raw) > limits.max_header_bytes:
            harvest.add(
                rules.finding(
                    "ssi.email.header-limit",
                    Location(entry=f"{where}en-tête {name}"),
                    limit="the size allowed for one field",
                    evidence=f"{limits.max_header_bytes} bytes",
                )
            )
            return False
        raw_text = f"{name}: {raw_8bit(raw)}"
        entry = Location(entry=f"{where}en-tête {name}")
        texts = {raw_text, f"{name}: {decoded(raw)}"} if "=?" in raw else {raw_text}
        for text in texts:
            harvest.ctx.check_time()
            for finding in (*escape_findings(text), *bidi_findings(text), *control_findings(text)):
                if finding.rule != "ssi.text.terminal-colour" or text == raw_text:
                    harvest.add(replace(finding, location=entry))
    return True
