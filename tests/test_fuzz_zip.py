"""Fuzzing of the zip triage: random bytes, mutated archives and random member lists (``fixtures.zipcraft``).

Properties: triage never raises and stays within its deadline; every finding is catalogued; what triage
lets through (``extractable``) is never a link, an encrypted member or a path that leaves the package;
reading an extractable member either yields at most its declared size or raises ``MemberError`` naming
a catalogued rule.
"""

from __future__ import annotations

import io
import struct

from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import assert_catalogued, fuzz_settings, mutated

from fixtures.zipcraft import BZIP2, DEFLATED, LZMA, STORED, Member, build_zip
from validators import rules
from validators.ziptriage import MemberError, TriageLimits, TriageReport, read_member, triage

MAX_MEMBER = 1 << 20
# Small limits so that the limit paths (entries, ratio, depth, sizes) are reached by small inputs too.
TIGHT = TriageLimits(max_entries=6, max_total_size=4096, max_entry_size=2048, max_ratio=5.0, ratio_floor=64,
                     max_depth=1)


def check_archive(data: bytes, limits: TriageLimits | None = None, depth: int = 0) -> TriageReport:
    """Triage ``data``, read every member it allows, and check the properties of both."""
    report = triage(io.BytesIO(data), limits=limits, depth=depth)
    assert_catalogued(report.findings)
    for entry in report.extractable():
        assert entry.path is not None and not entry.path.startswith("/")
        assert ".." not in entry.path.split("/")
        assert not entry.is_link and not entry.is_special and not entry.encrypted
        produced = 0
        try:
            for piece in read_member(io.BytesIO(data), entry, max_bytes=MAX_MEMBER):
                produced += len(piece)
        except MemberError as exc:
            rules.get(exc.rule)
        assert produced <= entry.declared_size
    return report


# --- random bytes --------------------------------------------------------------------------------------


@fuzz_settings(deadline_ms=1000)
@given(st.binary(max_size=4096), st.booleans())
def test_random_bytes(data: bytes, strict_end: bool) -> None:
    report = triage(io.BytesIO(data), require_end_at_eof=strict_end)
    assert_catalogued(report.findings)
    if not report.is_zip:
        assert report.extractable() == []


_U16 = st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0, 1, 0xFFFE, 0xFFFF]))
_U32 = st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 1, 22, 46, 0x7FFFFFFF, 0xFFFFFFFF]))
_U64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**63, 2**64 - 1]))


@fuzz_settings(deadline_ms=1000)
@given(
    st.binary(max_size=2048),
    st.tuples(_U16, _U16, _U16, _U16, _U32, _U32, _U16),
    st.one_of(st.none(), st.tuples(_U32, _U32, _U64, _U64, _U64, _U64)),
    st.binary(max_size=64),
)
def test_random_bytes_before_a_random_end_record(
    body: bytes,
    end: tuple[int, int, int, int, int, int, int],
    zip64: tuple[int, int, int, int, int, int] | None,
    comment: bytes,
) -> None:
    """Random end records (ZIP64 ones too) send triage into the central directory at random places."""
    disk, cd_disk, count_disk, count, cd_size, cd_offset, _ = end
    tail = b""
    if zip64 is not None:
        d64, cd_disk64, count_disk64, count64, size64, offset64 = zip64
        record_pos = len(body)
        tail += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, d64, cd_disk64, count_disk64, count64,
                            size64, offset64)
        tail += struct.pack("<4sLQL", b"PK\x06\x07", 0, record_pos, 1)
    tail += struct.pack("<4s4H2LH", b"PK\x05\x06", disk, cd_disk, count_disk, count, cd_size, cd_offset,
                        len(comment))
    check_archive(body + tail + comment)


# --- mutated valid archives ----------------------------------------------------------------------------

_SEED_MEMBERS = [
    Member("INS.41.2.2/capture.png", b"\x89PNG\r\n\x1a\n" + bytes(300), method=STORED),
    Member("DOC.3.1.2/trace.log", b"INFO appel ok\n" * 40, method=DEFLATED),
    Member("b.txt", b"bzip2 " * 30, method=BZIP2),
    Member("l.txt", b"lzma " * 30, method=LZMA),
    Member("z.bin", bytes(500), method=DEFLATED, zip64=True),
    Member("dossier/", b"", method=STORED),
]
SEED_ZIP = build_zip(_SEED_MEMBERS)
ZIP_TOKENS = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK")
@fuzz_settings(deadline_ms=2000, share=2.0)
@given(mutated(SEED_ZIP, ZIP_TOKENS), st.booleans())
def test_mutated_archives(data: bytes, tight: bool) -> None:
    check_archive(data, TIGHT if tight else None)


@fuzz_settings(deadline_ms=2000)
@given(mutated(build_zip([Member("inner.zip", SEED_ZIP, method=STORED), Member("a.txt", b"x" * 100)]), ZIP_TOKENS))
def test_mutated_nested_archives(data: bytes) -> None:
    check_archive(data, TriageLimits(max_depth=1), depth=1)


# --- random member lists -------------------------------------------------------------------------------

_NAME_PIECES = st.one_of(
    st.sampled_from(["INS.41.2.2", "a", "A", "dossier", "..", ".", "", "C:", "\\", "con", "nul.txt", "x. ",
                     "\u202egnp.exe", "\u200b", "é", "e\u0301", "\x00", "\x7f", "\n", "*?", "PK"]),
    st.text(max_size=8),
)
_names = st.one_of(
    st.lists(_NAME_PIECES, max_size=6).map("/".join),
    st.lists(_NAME_PIECES, max_size=6).map("".join),
    st.binary(max_size=24),
)
_UNIX_MODES = [0o100644, 0o040755, 0o120777, 0o010644, 0o140755, 0o020644, 0o060644, 0]


@st.composite
def members(draw: st.DrawFn) -> Member:
    data = draw(st.one_of(st.binary(max_size=256), st.integers(0, 4096).map(bytes),
                          st.just(SEED_ZIP), st.just(b"\x89PNG\r\n\x1a\n" + bytes(64))))
    name = draw(_names)
    declared_size = draw(st.one_of(st.none(), st.integers(0, 2**33)))
    return Member(
        # Lone surrogates cannot be written as UTF-8 by the builder: their bytes are written as they are.
        name=name.encode("utf-8", "surrogatepass") if isinstance(name, str) else name,
        data=data,
        method=draw(st.sampled_from([STORED, DEFLATED, BZIP2, LZMA, STORED, DEFLATED, 1, 99])),
        declared_size=declared_size,
        flags=draw(st.sampled_from([0, 0, 0x0800, 0x0001, 0x0008, 0x0040, 0x0801])),
        unix_mode=draw(st.sampled_from(_UNIX_MODES)),
        zip64=draw(st.booleans()) or (declared_size or 0) > 0xFFFFFFFF,  # only ZIP64 can declare that much
        local_name=draw(st.one_of(st.none(), st.none(), _names.map(lambda n: n if isinstance(n, bytes) else
                                                                   n.encode("utf-8", "surrogatepass")))),
        extra=draw(st.one_of(st.just(b""), st.binary(max_size=24),
                             st.binary(max_size=12).map(lambda b: struct.pack("<HHB", 0x7075, len(b) + 5, 1)
                                                        + b"\0\0\0\0" + b))),
    )


@fuzz_settings(deadline_ms=2000, share=2.0)
@given(
    st.lists(members(), max_size=8),
    st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"%PDF-1.7\n", b"MZ" + bytes(62)]),
    st.booleans(),
    st.sampled_from([b"", b"tail", b"PK\x05\x06"]),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 0x1FFFF)),
    st.booleans(),
)
def test_random_member_lists(
    listed: list[Member],
    prefix: bytes,
    offsets_include_prefix: bool,
    trailing: bytes,
    overlap: bool,
    declared_count: int | None,
    tight: bool,
) -> None:
    data = build_zip(listed, prefix=prefix, offsets_include_prefix=offsets_include_prefix, trailing=trailing,
                     overlap_all_with_first=overlap, declared_count=declared_count)
    check_archive(data, TIGHT if tight else None)
