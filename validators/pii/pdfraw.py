"""The text of a PDF page read straight from the string operands of its content stream, in linear time.

pypdf's layout-aware extraction runs in Python per text operator: a page holding millions of characters
takes minutes. Past a size, a page is read this way instead: every literal ``(...)`` and hex ``<...>``
string in order, a line break at each operator that moves to a new line (``T*``, ``Td``, ``TD``,
``Tm``, ``'``, ``"``, ``ET``). Strings shown with a font that has its own encoding (CID fonts, subsets)
come out as their raw codes, so the caller reports the page as read this way, never as fully covered.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    rb"\((?P<literal>(?:\\.|[^\\()]|\((?:\\.|[^\\()])*\))*)\)"  # one level of balanced parentheses
    rb"|<(?P<hex>[0-9A-Fa-f\s]*)>"
    rb"|(?<![A-Za-z*'\"])(?P<newline>T\*|Td|TD|Tm|ET|'|\")(?![A-Za-z*])"
    rb"|(?<![\d.])(?P<gap>-\d{3,}(?:\.\d*)?)(?![\d.])",  # a wide kerning gap in a TJ array: a blank
    re.DOTALL,
)
_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|(.))", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"\n": b"", b"\r": b""}


def _unescape(literal: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        if match.group(1) is not None:
            return bytes([int(match.group(1), 8) & 0xFF])
        char = match.group(2)
        return _ESCAPES.get(char, char)

    return _ESCAPE.sub(one, literal) if b"\\" in literal else literal


def strings_text(content: bytes) -> str:
    """The text shown by ``content`` (a decoded content stream), one line per text line."""
    parts: list[bytes] = []
    for token in _TOKEN.finditer(content):
        literal, hex_string = token.group("literal"), token.group("hex")
        if literal is not None:
            parts.append(_unescape(literal))
        elif hex_string is not None:
            digits = bytes(c for c in hex_string if c not in b" \t\r\n\f")
            if len(digits) % 2:
                digits += b"0"
            parts.append(bytes.fromhex(digits.decode("ascii")))
        elif token.group("gap") is not None:
            if parts and parts[-1] not in (b"\n", b" "):
                parts.append(b" ")
        elif parts and parts[-1] != b"\n":
            parts.append(b"\n")
    return b"".join(parts).decode("latin-1")


__all__ = ["strings_text"]
