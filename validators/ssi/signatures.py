"""Where a format starts inside bytes: executables, archives and documents, each validated on its header.

A signature alone is a few bytes that compressed pixels or video frames contain by chance every few
megabytes; each candidate is kept only when the fields after it make sense (a PE signature where the DOS
header points, a Mach-O CPU type that exists, a class-file version, a zip local header with a known method
and a printable name, a 7-Zip or RAR header whose CRC matches, a cabinet's version and reserved fields).

Mach-O universal binaries and Java class files share the magic 0xCAFEBABE: the next word is the number
of architectures in a fat header (a handful) and the class-file version in a class (major 45 and up).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_LNK_HEADER = b"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_SHEBANG = re.compile(rb"^#![ \t]*/[\x21-\x7e]+")
# Mach-O CPU types (mach/machine.h): x86, x86_64, arm, arm64, arm64_32, ppc, ppc64.
_MACHO_CPUS = frozenset({7, 0x01000007, 12, 0x0100000C, 0x0200000C, 18, 0x01000012})
_MACHO_THIN = {
    b"\xfe\xed\xfa\xce": ">",
    b"\xfe\xed\xfa\xcf": ">",
    b"\xce\xfa\xed\xfe": "<",
    b"\xcf\xfa\xed\xfe": "<",
}
_CLASS_POOL_TAGS = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20})
_ZIP_METHODS = frozenset({0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 96, 97, 98, 99})


@dataclass(frozen=True)
class Hidden:
    kind: str  # what is hidden, for the message: "Mach-O executable", "7-Zip archive"
    family: str  # one report per family and file: "macho", "zip"...
    executable: bool

    @property
    def executable_kind(self) -> str:
        """The kind as ssi.executable words it ("a {kind} executable"): "Mach-O", "Java class"."""
        return self.kind.removesuffix(" executable")


def pe_at(data: bytes, at: int) -> bool:
    """A DOS header whose e_lfanew points at a PE/NE/LE signature."""
    if len(data) < at + 0x40:
        return False
    pointer = struct.unpack_from("<I", data, at + 0x3C)[0]
    if not 0x40 <= pointer <= 0x10000 or len(data) < at + pointer + 4:
        return False
    signature = data[at + pointer : at + pointer + 4]
    return signature == b"PE\0\0" or signature[:2] in (b"NE", b"LE", b"LX")


def elf_at(data: bytes, at: int) -> bool:
    head = data[at : at + 20]
    if len(head) < 20 or head[4] not in (1, 2) or head[5] not in (1, 2) or head[6] != 1:
        return False
    e_type = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 16)[0]
    return e_type in (1, 2, 3, 4)


def macho_at(data: bytes, at: int) -> bool:
    order = _MACHO_THIN.get(data[at : at + 4])
    if order is None or len(data) < at + 28:
        return False
    cpu, _, filetype, ncmds, sizeofcmds = struct.unpack_from(order + "iiIII", data, at + 4)
    return (cpu & 0xFFFFFFFF) in _MACHO_CPUS and 1 <= filetype <= 12 and ncmds <= 4096 and sizeofcmds <= 1 << 24


def fat_macho_at(data: bytes, at: int) -> bool:
    """A universal header: a few architectures, each with a known CPU, an offset past the header, an alignment."""
    if len(data) < at + 8:
        return False
    wide = data[at + 3] == 0xBF
    count = struct.unpack_from(">I", data, at + 4)[0]
    entry = 32 if wide else 20
    if not 1 <= count <= 30 or len(data) < at + 8 + count * entry:
        return False
    for index in range(count):
        base = at + 8 + index * entry
        cpu = struct.unpack_from(">I", data, base)[0]
        if wide:
            offset, _, align = struct.unpack_from(">QQI", data, base + 8)
        else:
            offset, _, align = struct.unpack_from(">III", data, base + 8)
        if cpu not in _MACHO_CPUS or offset < 8 + count * entry or align > 16:
            return False
    return True


def java_class_at(data: bytes, at: int) -> bool:
    if len(data) < at + 11:
        return False
    _, major, pool = struct.unpack_from(">HHH", data, at + 4)
    return 45 <= major <= 80 and pool >= 2 and data[at + 10] in _CLASS_POOL_TAGS


def zip_member_at(data: bytes, at: int) -> str | None:
    """The member name of a plausible zip local file header at ``at``, or None."""
    if len(data) < at + 30:
        return None
    version, flags, method = struct.unpack_from("<HHH", data, at + 4)
    name_length = struct.unpack_from("<H", data, at + 26)[0]
    if (version & 0xFF) > 63 or flags & 0xD780 or method not in _ZIP_METHODS or not 1 <= name_length <= 1024:
        return None
    name = data[at + 30 : at + 30 + name_length]
    if len(name) < name_length or any(byte < 0x20 or byte == 0x7F for byte in name):
        return None
    return name.decode("utf-8", "replace")


def seven_zip_at(data: bytes, at: int) -> bool:
    head = data[at : at + 32]
    return len(head) == 32 and head[6] == 0 and struct.unpack_from("<I", head, 8)[0] == zlib.crc32(head[12:32])


def _vint(data: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    for index in range(at, min(at + 10, len(data))):
        value |= (data[index] & 0x7F) << shift
        shift += 7
        if data[index] < 0x80:
            return value, index + 1
    return None


def rar_at(data: bytes, at: int) -> bool:
    """RAR 5 (header CRC32 over its size and body) or RAR 1.5-4 (main header type 0x73, CRC16)."""
    if data[at + 6 : at + 8] == b"\x01\x00":
        start = at + 8
        if len(data) < start + 5:
            return False
        sized = _vint(data, start + 4)
        if sized is None or not 2 <= sized[0] <= 1 << 21 or len(data) < sized[1] + sized[0]:
            return False
        return struct.unpack_from("<I", data, start)[0] == zlib.crc32(data[start + 4 : sized[1] + sized[0]])
    if data[at + 6 : at + 7] == b"\x00" and len(data) >= at + 20:
        crc, kind, _, size = struct.unpack_from("<HBHH", data, at + 7)
        return kind == 0x73 and 13 <= size <= 4096 and crc == zlib.crc32(data[at + 9 : at + 7 + size]) & 0xFFFF
    return False


def cab_at(data: bytes, at: int) -> bool:
    if len(data) < at + 36:
        return False
    total, reserved2, files_at, reserved3, minor, major, folders, files = struct.unpack_from(
        "<IIIIBBHH", data, at + 8
    )
    return (
        reserved2 == reserved3 == 0
        and (major, minor) == (1, 3)
        and 36 <= files_at < total
        and folders >= 1
        and files >= 1
    )


def executable_kind(head: bytes) -> str | None:
    """The kind of executable ``head`` starts with, or None."""
    if head[:2] == b"MZ" and pe_at(head, 0):
        return "Windows (PE/MZ)"
    if head[:4] == b"\x7fELF" and elf_at(head, 0):
        return "ELF"
    if head[:4] in _MACHO_THIN:
        return "Mach-O"
    if head[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"):
        if fat_macho_at(head, 0):
            return "Mach-O universal (fat)"
        if java_class_at(head, 0):
            return "Java class"
        return "Mach-O universal or Java class"  # truncated or damaged: dangerous either way
    if head.startswith(_LNK_HEADER):
        return "Windows shortcut (LNK)"
    if _SHEBANG.match(head[:256]):
        return "script (shebang)"
    return None


def jar_kind(names: list[str]) -> str | None:
    """A zip that runs as Java or Android code, from its member names."""
    lowered = [name.lower() for name in names]
    if any(name == "classes.dex" for name in lowered):
        return "Android package (APK)"
    if any(name.endswith(".class") for name in lowered) or "meta-inf/manifest.mf" in lowered:
        return "Java archive (JAR)"
    return None


def _zip(data: bytes, at: int) -> Hidden | None:
    name = zip_member_at(data, at)
    if name is None:
        return None
    jar = jar_kind([name])
    return Hidden(jar, "jar", True) if jar else Hidden("zip archive", "zip", False)


def _fat_or_class(data: bytes, at: int) -> Hidden | None:
    if data[at + 3 : at + 4] not in (b"\xbe", b"\xbf"):
        return None
    if fat_macho_at(data, at):
        return Hidden("Mach-O universal executable", "macho", True)
    if data[at + 3] == 0xBE and java_class_at(data, at):
        return Hidden("Java class", "java", True)
    return None


def _pdf(data: bytes, at: int) -> Hidden | None:
    return Hidden("PDF document", "pdf", False)


def _simple(check: Callable[[bytes, int], bool], hidden: Hidden) -> Callable[[bytes, int], Hidden | None]:
    return lambda data, at: hidden if check(data, at) else None


# Token searched with bytes.find (memchr speed: one alternation regex cost 0.5 s on 32 MiB), the offset of
# the format's start from the token, and the validator. Mach-O magics share 3 bytes; so do fat and class.
_TOKENS: tuple[tuple[bytes, int, Callable[[bytes, int], Hidden | None]], ...] = (
    (b"MZ", 0, _simple(pe_at, Hidden("Windows executable", "pe", True))),
    (b"\x7fELF", 0, _simple(elf_at, Hidden("ELF executable", "elf", True))),
    (b"\xfe\xed\xfa", 0, _simple(macho_at, Hidden("Mach-O executable", "macho", True))),
    (b"\xfa\xed\xfe", -1, _simple(macho_at, Hidden("Mach-O executable", "macho", True))),
    (b"\xca\xfe\xba", 0, _fat_or_class),
    (b"PK\x03\x04", 0, _zip),
    (b"7z\xbc\xaf\x27\x1c", 0, _simple(seven_zip_at, Hidden("7-Zip archive", "7z", False))),
    (b"Rar!\x1a\x07", 0, _simple(rar_at, Hidden("RAR archive", "rar", False))),
    (b"MSCF\0\0\0\0", 0, _simple(cab_at, Hidden("Microsoft cabinet (CAB)", "cab", False))),
    (b"%PDF-", 0, _pdf),
)


def hidden_formats(
    data: bytes, base: int, *, outer_is_pdf: bool = False, zips: bool = True
) -> Iterator[tuple[Hidden, int]]:
    """(what, absolute offset) of every validated format starting after offset 0 of the file.

    ``base`` is the file offset of ``data``; a PDF inside a PDF (or in its first KiB) is the PDF itself, and
    ``zips=False`` leaves zips to the archive check (one that ends the file is its polyglot finding).
    """
    found: list[tuple[int, Callable[[bytes, int], Hidden | None]]] = []
    for token, shift, validate in _TOKENS:
        if (token == b"PK\x03\x04" and not zips) or (token == b"%PDF-" and outer_is_pdf):
            continue
        at = data.find(token)
        while at != -1:
            start = at + shift
            if start >= 0 and base + start > 0:
                found.append((start, validate))
            at = data.find(token, at + 1)
    for start, validate in sorted(found, key=lambda item: item[0]):
        hidden = validate(data, start)
        if hidden is not None and not (hidden.family == "pdf" and base + start <= 1024):
            yield hidden, base + start
