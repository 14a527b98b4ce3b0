"""S/MIME and PKCS #7 (CMS) containers: what kind they are and, for signed data, the content they carry.

A minimal BER reader (definite and indefinite lengths, constructed OCTET STRINGs as S/MIME agents write
them), bounded in depth, element count and output size. Nothing is verified: the signature does not make
the content safe; the content is handed to every check like any other part. Enveloped (encrypted) data
cannot be inspected, and says so.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_DEPTH = 32
MAX_ELEMENTS = 100_000
_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.DOTALL)
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


def _oid(dotted: str) -> bytes:
    numbers = [int(n) for n in dotted.split(".")]
    out = bytearray([numbers[0] * 40 + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


KINDS = {
    _oid("1.2.840.113549.1.7.1"): "data",
    _oid("1.2.840.113549.1.7.2"): "signed",
    _oid("1.2.840.113549.1.7.3"): "enveloped",
    _oid("1.2.840.113549.1.7.6"): "encrypted",
    _oid("1.2.840.113549.1.9.16.1.23"): "auth-enveloped",
    _oid("1.2.840.113549.1.9.16.1.9"): "compressed",
}
ENCRYPTED_KINDS = frozenset({"enveloped", "encrypted", "auth-enveloped"})


class CmsError(ValueError):
    """The bytes are not a readable CMS structure (the reason is safe to show: no content quoted)."""


@dataclass(frozen=True)
class Cms:
    kind: str  # data, signed, enveloped, encrypted, auth-enveloped, compressed or unknown
    content: bytes | None = None  # the signed content (None: detached signature or not signed data)


@dataclass(frozen=True)
class _Element:
    tag: int
    start: int  # first content byte
    end: int  # one past the last content byte
    next: int  # first byte after the element (after the end-of-contents octets when indefinite)

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


class _Reader:
    def __init__(self, data: bytes, check_time: Callable[[], None]) -> None:
        self.data = data
        self.check_time = check_time
        self.elements = 0

    def element(self, pos: int, depth: int = 0) -> _Element:
        data = self.data
        self.elements += 1
        if self.elements % 1000 == 0:
            self.check_time()
        if self.elements > MAX_ELEMENTS or depth > MAX_DEPTH:
            raise CmsError("too many or too deeply nested elements")
        if pos + 2 > len(data):
            raise CmsError("cut short")
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise CmsError("multi-byte tags are not used by CMS")
        first = data[pos + 1]
        pos += 2
        if first < 0x80:
            length: int | None = first
        elif first == 0x80:
            length = None
        else:
            count = first & 0x7F
            if count > 8 or pos + count > len(data):
                raise CmsError("bad length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if length is not None:
            if pos + length > len(data):
                raise CmsError("an element runs past the end")
            return _Element(tag, pos, pos + length, pos + length)
        if not tag & 0x20:
            raise CmsError("indefinite length on a primitive element")
        cursor = pos
        while True:
            if data[cursor : cursor + 2] == b"\0\0":
                return _Element(tag, pos, cursor, cursor + 2)
            cursor = self.element(cursor, depth + 1).next

    def children(self, parent: _Element, depth: int = 0) -> list[_Element]:
        out = []
        pos = parent.start
        while pos < parent.end:
            child = self.element(pos, depth + 1)
            out.append(child)
            pos = child.next
        return out

    def octets(self, element: _Element, limit: int, depth: int = 0) -> bytes:
        """The value of an OCTET STRING, primitive or constructed from chunks."""
        if not element.constructed:
            if element.end - element.start > limit:
                raise CmsError("content over the size limit")
            return self.data[element.start : element.end]
        out = bytearray()
        for chunk in self.children(element, depth):
            out += self.octets(chunk, limit - len(out), depth + 1)
        return bytes(out)


def der_bytes(data: bytes) -> bytes:
    """DER/BER bytes of a PKCS #7 file written raw, in base64 or as PEM."""
    if data[:1] == b"\x30":
        return data
    pem = _PEM.search(data[: 1024 * 1024 * 64])
    text = pem.group(1) if pem else data
    if not _BASE64_TEXT.match(text.strip() or b"!"):
        raise CmsError("neither binary nor base64")
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CmsError("bad base64") from None


def read_cms(data: bytes, max_bytes: int, check_time: Callable[[], None]) -> Cms:
    """The kind of a CMS ContentInfo and, for signed data, its encapsulated content."""
    reader = _Reader(der_bytes(data), check_time)
    try:
        top = reader.element(0)
        if top.tag != 0x30:
            raise CmsError("not a SEQUENCE")
        fields = reader.children(top)
        if len(fields) < 1 or fields[0].tag != 0x06:
            raise CmsError("no content type")
        kind = KINDS.get(reader.data[fields[0].start : fields[0].end], "unknown")
        if kind != "signed":
            return Cms(kind)
        if len(fields) < 2 or fields[1].tag != 0xA0:
            raise CmsError("signed data without content")
        (signed,) = reader.children(fields[1])[:1]
        parts = reader.children(signed)
        if len(parts) < 3 or parts[2].tag != 0x30:
            raise CmsError("no encapsulated content info")
        encapsulated = reader.children(parts[2])
        if len(encapsulated) < 2:
            return Cms("signed")  # detached: the content travels beside the signature
        if encapsulated[1].tag != 0xA0:
            raise CmsError("bad encapsulated content")
        wrapped = reader.children(encapsulated[1])
        if not wrapped or wrapped[0].tag not in (0x04, 0x24):
            raise CmsError("encapsulated content is not an OCTET STRING")
        return Cms("signed", reader.octets(wrapped[0], max_bytes))
    except (IndexError, ValueError) as exc:
        if isinstance(exc, CmsError):
            raise
        raise CmsError("malformed structure") from None
