"""Outlook's TNEF (``winmail.dat``, ``application/ms-tnef``): its body and attachments, read bounded.

TNEF is a flat list of attributes (level, id, length, data, checksum); attachments are the attributes
between two ``attAttachRendData``; MAPI property blocks carry the long file names, the HTML and RTF
bodies and embedded objects. The one maintained-looking library (tnefparse, last release 2021) slices the
input once per attribute (quadratic on a hostile file) and crashes on files without a code page, so this
reader is ours: one pass, offsets only, every length checked against what is left.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

SIGNATURE = 0x223E9F78
LEVEL_MESSAGE, LEVEL_ATTACHMENT = 1, 2
ATT_BODY = 0x800C
ATT_ATTACH_DATA = 0x800F
ATT_ATTACH_TITLE = 0x8010
ATT_ATTACH_REND_DATA = 0x9002
ATT_MAPI_PROPS = 0x9003
ATT_ATTACHMENT = 0x9005
ATT_OEM_CODEPAGE = 0x9007

PR_ATTACH_DATA = 0x3701
PR_ATTACH_LONG_FILENAME = 0x3707
PR_BODY = 0x1000
PR_RTF_COMPRESSED = 0x1009
PR_HTML = 0x1013
_VARIABLE = {0x001E, 0x001F, 0x0102, 0x000D, 0x0048}
_FIXED = {0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 4, 0x0014: 8, 0x0040: 8}
_MULTI = 0x1000
MAX_PROPERTIES = 10_000
IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")


class TnefError(ValueError):
    """The bytes are not a readable TNEF stream (the reason quotes no content)."""


@dataclass
class TnefAttachment:
    title: str = ""
    long_name: str = ""
    data: bytes | None = None
    embedded_message: bool = False  # an attached Outlook item, itself TNEF-encoded: not unpacked here

    @property
    def name(self) -> str:
        return self.long_name or self.title


@dataclass
class Tnef:
    body: bytes | None = None
    html: bytes | None = None
    rtf_compressed: bytes | None = None
    attachments: list[TnefAttachment] = field(default_factory=list)
    codepage: str = "cp1252"
    problems: list[str] = field(default_factory=list)


def _text(raw: bytes, prop_type: int, codepage: str) -> str:
    if prop_type == 0x001F:
        return raw.decode("utf-16-le", "replace").rstrip("\0")
    return raw.decode(codepage, "replace").rstrip("\0")


def _properties(data: bytes, start: int, end: int) -> list[tuple[int, int, list[bytes]]]:
    """(id, type, values) of a MAPI property block."""
    out: list[tuple[int, int, list[bytes]]] = []
    pos = start

    def take(count: int) -> bytes:
        nonlocal pos
        if count < 0 or pos + count > end:
            raise TnefError("a MAPI property runs past its attribute")
        chunk = data[pos : pos + count]
        pos += count
        return chunk

    (count,) = struct.unpack("<I", take(4))
    if count > MAX_PROPERTIES:
        raise TnefError("too many MAPI properties")
    for _ in range(count):
        prop_type, prop_id = struct.unpack("<HH", take(4))
        if prop_id >= 0x8000:  # named property: GUID, kind, then an id or a name
            take(16)
            (kind,) = struct.unpack("<I", take(4))
            if kind == 0:
                take(4)
            else:
                (length,) = struct.unpack("<I", take(4))
                take((length + 3) & ~3)
        base = prop_type & ~_MULTI
        values: list[bytes] = []
        if base in _VARIABLE or prop_type & _MULTI:
            (n,) = struct.unpack("<I", take(4))
            if n > MAX_PROPERTIES:
                raise TnefError("too many values in a MAPI property")
        else:
            n = 1
        for _ in range(n):
            if base in _VARIABLE:
                (length,) = struct.unpack("<I", take(4))
                values.append(take(length))
                take(-length % 4)
            elif base in _FIXED:
                values.append(take(_FIXED[base]))
            else:
                raise TnefError(f"unknown MAPI property type 0x{base:04X}")
        out.append((prop_id, prop_type, values))
    return out


def read_tnef(data: bytes, check_time: Callable[[], None]) -> Tnef:
    """Parse a TNEF stream; raises TnefError when its framing is broken."""
    if len(data) < 6 or struct.unpack("<I", data[:4])[0] != SIGNATURE:
        raise TnefError("no TNEF signature")
    out = Tnef()
    current: TnefAttachment | None = None
    pos = 6
    count = 0
    while pos < len(data):
        count += 1
        if count % 1000 == 0:
            check_time()
        if pos + 9 > len(data):
            raise TnefError("cut short inside an attribute header")
        level, attribute, length = struct.unpack("<BII", data[pos : pos + 9])
        start, end = pos + 9, pos + 9 + length
        if end + 2 > len(data):
            raise TnefError("an attribute runs past the end of the stream")
        (checksum,) = struct.unpack("<H", data[end : end + 2])
        if checksum != sum(data[start:end]) & 0xFFFF:
            out.problems.append("an attribute checksum is wrong")
        pos = end + 2
        attr_id = attribute & 0xFFFF
        if attr_id == ATT_OEM_CODEPAGE and length >= 4:
            out.codepage = f"cp{struct.unpack('<I', data[start : start + 4])[0]}"
            try:
                "".encode(out.codepage)
            except LookupError:
                out.codepage = "cp1252"
        elif level == LEVEL_MESSAGE and attr_id == ATT_BODY:
            out.body = data[start:end]
        elif level == LEVEL_MESSAGE and attr_id == ATT_MAPI_PROPS:
            for prop_id, _, values in _properties(data, start, end):
                if prop_id == PR_BODY and values:
                    out.body = values[0]
                elif prop_id == PR_HTML and values:
                    out.html = values[0]
                elif prop_id == PR_RTF_COMPRESSED and values:
                    out.rtf_compressed = values[0]
        elif level == LEVEL_ATTACHMENT:
            if attr_id == ATT_ATTACH_REND_DATA or current is None:
                current = TnefAttachment()
                out.attachments.append(current)
            if attr_id == ATT_ATTACH_TITLE:
                current.title = data[start:end].decode(out.codepage, "replace").rstrip("\0")
            elif attr_id == ATT_ATTACH_DATA:
                current.data = data[start:end]
            elif attr_id == ATT_ATTACHMENT:
                for prop_id, prop_type, values in _properties(data, start, end):
                    if prop_id == PR_ATTACH_LONG_FILENAME and values:
                        current.long_name = _text(values[0], prop_type & ~_MULTI, out.codepage)
                    elif prop_id == PR_ATTACH_DATA and values and prop_type & ~_MULTI == 0x000D:
                        current.embedded_message = values[0][:16] == IID_IMESSAGE
                        current.data = values[0][16:]
    return out
