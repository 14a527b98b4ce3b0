"""Archives beyond zip as proof files: tar (plain, gz, bz2, xz), single gz/bz2/xz files, 7z and RAR.

Each hostile shape is built by a generator in ``fixtures/`` and must give an error-severity finding; each
benign twin must pass with its members handed to the engine as children.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

import py7zr
import pytest

from fixtures.rarcraft import RarMember, build_rar4, build_rar5
from fixtures.sevenzipcraft import AES, LZMA, UNIX_EXTENSION, SevenMember, build_7z
from fixtures.tarcraft import TarMember, build_tar, files
from validators.archive import ArchiveValidator
from validators.archives import detect, read_archive
from validators.archives.bounded import gzip_header
from validators.archives.members import MemoryCollector
from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.model import FileVerdict, Severity, Status
from validators.ziptriage import TriageLimits

PDF = b"%PDF-1.7\n" + b"x" * 5000 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(3000)


def check(data: bytes, name: str, validator: ArchiveValidator | None = None) -> FileVerdict:
    file = ProofFile(path=f"DOC.1.1.1/{name}", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="application/octet-stream", data=data)
    return Engine([validator or ArchiveValidator()]).check_file(file)


def rules_of(verdict: FileVerdict) -> list[str]:
    return sorted({f.rule for f in verdict.findings})


def children(verdict: FileVerdict) -> list[str]:
    return [c.path.split("!", 1)[1] for c in verdict.children]


def errors(verdict: FileVerdict) -> list[str]:
    return sorted({f.rule for f in verdict.findings if f.severity is Severity.ERROR})


def seven(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return out.getvalue()


# --- benign twins: members become children, nothing is reported -------------------------------------


@pytest.mark.parametrize("compression", [None, "gz", "bz2", "xz"])
def test_a_tar_of_two_images_passes_with_its_members_as_children(compression: str | None) -> None:
    data = files({"INS.41.2.2/écran-1.png": PNG, "INS.41.2.2/écran-2.png": PNG}, compression)
    verdict = check(data, "captures.tar" + (f".{compression}" if compression else ""))
    assert verdict.status is Status.PASS and verdict.findings == ()
    assert children(verdict) == ["1:INS.41.2.2/écran-1.png", "2:INS.41.2.2/écran-2.png"]
    assert verdict.children[0].sha256 == hashlib.sha256(PNG).hexdigest()


def test_long_names_in_pax_and_gnu_records_are_not_a_disagreement() -> None:
    long_name = "dossier-" + "x" * 120 + "/écran.png"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        verdict = check(build_tar([TarMember(long_name, PNG)], fmt=fmt), "a.tar")
        assert verdict.findings == () and children(verdict) == [f"1:{long_name}"]


@pytest.mark.parametrize(
    "header",
    [
        "a" * 99 + "\udcc3",  # GNU: the 100-byte field cut inside the UTF-8 "é"
        "captures/\udce9cran.png",  # a Windows tar writing its code page where the pax path has UTF-8
        "captures/?cran.png",  # Python's tarfile: ASCII with "?"
        "captu.../écran.png",  # libarchive: folders elided, file name kept
    ],
)
def test_stand_in_header_names_writers_make_are_not_disagreements(header: str) -> None:
    real = "a" * 99 + "éb.png" if header.startswith("aaa") else "captures/écran.png"
    verdict = check(build_tar([TarMember(header, PNG, pax={"path": real})]), "a.tar")
    assert verdict.findings == () and children(verdict) == [f"1:{real}"]


def test_a_stand_in_header_name_that_escapes_is_still_judged() -> None:
    verdict = check(build_tar([TarMember("../../captures/?cran.png", PNG, pax={"path": "captures/écran.png"})]),
                    "a.tar")
    assert errors(verdict) == ["ssi.archive.name-mismatch", "ssi.archive.traversal"]


@pytest.mark.parametrize("name", ["lettre.pdf.gz", "lettre.pdf.bz2", "lettre.pdf.xz"])
def test_a_single_compressed_file_is_its_content(name: str) -> None:
    import bz2
    import gzip
    import lzma

    compress = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[name.rsplit(".", 1)[1]]
    verdict = check(compress(PDF), name)
    assert verdict.findings == () and children(verdict) == ["1:lettre.pdf"]
    assert verdict.children[0].media_type == "application/pdf"


def test_a_7z_made_by_a_real_writer_passes() -> None:
    verdict = check(seven({"DOC.3.1.2/lettre.pdf": PDF, "DOC.3.1.2/capture.png": PNG}), "preuve.7z")
    assert verdict.status is Status.PASS and verdict.findings == ()
    assert sorted(children(verdict)) == ["1:DOC.3.1.2/lettre.pdf", "2:DOC.3.1.2/capture.png"]


@pytest.mark.parametrize("encode_header", [False, True])
def test_crafted_7z_headers_are_read_like_7zip_writes_them(encode_header: bool) -> None:
    data = build_7z([SevenMember("a/lettre.pdf", PDF, coder=LZMA), SevenMember("a", directory=True),
                     SevenMember("vide.txt")], encode_header=encode_header)
    verdict = check(data, "a.7z")
    assert verdict.findings == () and children(verdict) == ["1:a/lettre.pdf", "2:vide.txt"]


@pytest.mark.parametrize("build", [build_rar4, build_rar5])
def test_a_stored_rar_is_read_and_its_members_checked(build: object) -> None:
    assert callable(build)
    verdict = check(build([RarMember("DOC/lettre.pdf", PDF), RarMember("DOC", directory=True)]), "a.rar")
    assert verdict.findings == () and children(verdict) == ["1:DOC/lettre.pdf"]


def test_rar4_windows_names_use_forward_slashes_and_unicode_names_decode() -> None:
    # RAR 4's Unicode name: the OEM name, a NUL, then the high byte 0 and mode-2 (two-byte) characters.
    name = "é.pdf"
    encoded = b"\x00" + b"\xaa" + b"".join(c.encode("utf-16-le") for c in name[:4]) + b"\x80" + b"f\x00"
    member = RarMember("x", PDF, raw_name=b"?.pdf\0" + encoded, unicode_flag=True)
    verdict = check(build_rar4([member, RarMember("DOC\\sub\\a.pdf", PDF)]), "a.rar")
    assert children(verdict) == ["1:é.pdf", "2:DOC/sub/a.pdf"]


# --- hostile: every class gets an error finding --------------------------------------------------


@pytest.mark.parametrize(
    ("members", "rule"),
    [
        ([TarMember("../../etc/cron.d/x", b"x")], "ssi.archive.traversal"),
        ([TarMember("/etc/passwd", b"x")], "ssi.archive.traversal"),
        ([TarMember("C:/Windows/x.dll", b"x")], "ssi.archive.traversal"),
        ([TarMember("lien", kind=tarfile.SYMTYPE, linkname="/etc/passwd")], "ssi.archive.symlink"),
        ([TarMember("dur", kind=tarfile.LNKTYPE, linkname="/etc/shadow")], "ssi.archive.symlink"),
        ([TarMember("tty", kind=tarfile.CHRTYPE)], "ssi.archive.symlink"),
        ([TarMember("pipe", kind=tarfile.FIFOTYPE)], "ssi.archive.symlink"),
        ([TarMember("a.pdf", b"1"), TarMember("a.pdf", b"2")], "ssi.archive.duplicate-name"),
        ([TarMember("a.pdf", b"1"), TarMember("A.PDF", b"2")], "ssi.archive.case-collision"),
        ([TarMember("facture\u202efdp.exe", b"x")], "ssi.archive.deceptive-name"),
        ([TarMember("safe.txt", b"x", pax={"path": "../../evil.txt"})], "ssi.archive.traversal"),
        ([TarMember("safe.txt", b"x", pax={"path": "rapport.pdf.exe"})], "ssi.archive.name-mismatch"),
        ([TarMember("safe.txt", b"x", gnu_long_name="/etc/cron.d/evil")], "ssi.archive.name-mismatch"),
        ([TarMember("a", b"x" * 10, pax={"size": "100000"})], "ssi.archive.malformed"),
        ([TarMember("a", b"x", pax={"comment": "z" * (5 * 1024 * 1024)})], "ssi.archive.malformed"),
    ],
)
def test_hostile_tar_members_are_errors_and_never_children(members: list[TarMember], rule: str) -> None:
    for compression in (None, "gz"):
        verdict = check(build_tar(members, compression=compression), "preuve.tar")
        assert rule in errors(verdict), rules_of(verdict)
        assert verdict.status is Status.FAIL
        assert not any(c.path.endswith((":x", ":evil.txt")) for c in verdict.children)


def test_a_tar_cut_short_or_without_its_end_blocks_is_malformed() -> None:
    whole, compressed = files({"a.pdf": PDF}), files({"a.pdf": PDF}, "gz")
    for data in (whole[:1500], build_tar([TarMember("a.pdf", PDF)], end_blocks=0), compressed[: len(compressed) // 2]):
        verdict = check(data, "a.tar.gz")
        assert errors(verdict) == ["ssi.archive.malformed"] and verdict.children == ()


def test_data_hidden_after_the_tar_end_blocks_is_a_polyglot() -> None:
    verdict = check(build_tar([TarMember("a.pdf", PDF)], trailing=files({"cache.exe": b"MZ"})), "a.tar")
    assert "ssi.archive.polyglot" in errors(verdict)


def test_a_gzip_bomb_stops_at_the_ratio_after_bounded_work() -> None:
    import gzip

    verdict = check(gzip.compress(bytes(64 * 1024 * 1024)), "preuve.log.gz")
    assert errors(verdict) == ["ssi.archive.ratio"] and verdict.children == ()
    tgz = files({"zeros.bin": bytes(64 * 1024 * 1024)}, "gz")
    assert errors(check(tgz, "a.tgz")) == ["ssi.archive.ratio"]


def test_the_gzip_file_name_field_is_judged() -> None:
    import gzip

    data = gzip.compress(PDF)
    named = data[:3] + bytes([data[3] | 0x08]) + data[4:10] + b"../../.bashrc\0" + data[10:]
    assert gzip_header(named).name == b"../../.bashrc"
    verdict = check(named, "lettre.pdf.gz")
    assert errors(verdict) == ["ssi.archive.traversal"] and verdict.children == ()


def test_too_many_members_and_too_much_content_stop_the_read() -> None:
    validator = ArchiveValidator(TriageLimits(max_entries=5, max_total_size=10_000))
    many = files({f"f{i}.txt": b"x" for i in range(10)}, "gz")
    assert errors(check(many, "a.tgz", validator)) == ["ssi.archive.too-many-entries"]
    large = files({"a.bin": b"x" * 20_000}, "gz")
    assert "ssi.archive.too-large" in errors(check(large, "a.tgz", validator))


@pytest.mark.parametrize(
    ("members", "rule"),
    [
        ([SevenMember("../../evil.pdf", PDF), SevenMember("ok.pdf", PDF)], "ssi.archive.traversal"),
        ([SevenMember("lien", b"/etc/passwd", attributes=UNIX_EXTENSION | (0o120777 << 16))], "ssi.archive.symlink"),
        ([SevenMember("junction", b"x", attributes=0x400)], "ssi.archive.symlink"),
        ([SevenMember("a.pdf", anti=True)], "ssi.archive.symlink"),
        ([SevenMember("a.pdf", PDF, coder=AES)], "ssi.archive.encrypted"),
        ([SevenMember("a.pdf", PDF, coder=b"\x0a")], "ssi.archive.content-not-inspected"),
        ([SevenMember("a.pdf", PDF, coder=LZMA, dictionary=0xFFFFFFFF)], "ssi.archive.dictionary"),
        ([SevenMember("a.pdf", PDF, declared_size=10)], "ssi.archive.malformed"),
        ([SevenMember("a.pdf", PDF, coder=LZMA, declared_size=10**6)], "ssi.archive.malformed"),
        ([SevenMember("a.bin", bytes(4 * 1024 * 1024), coder=LZMA)], "ssi.archive.ratio"),
    ],
)
def test_hostile_7z_members_are_errors(members: list[SevenMember], rule: str) -> None:
    verdict = check(build_7z(members), "preuve.7z")
    assert rule in errors(verdict), rules_of(verdict)
    assert not any("evil" in c.path or c.path.endswith((":lien", ":a.pdf")) for c in verdict.children)


def test_7z_header_lies_are_caught_before_py7zr_reads_anything() -> None:
    pdf = [SevenMember("a.pdf", PDF)]
    assert errors(check(build_7z(pdf, encode_header=True, header_dictionary=0xFFFFFFFF), "a.7z")) == [
        "ssi.archive.dictionary"
    ]
    assert errors(check(build_7z(pdf, declared_files=1 << 40), "a.7z")) == ["ssi.archive.too-many-entries"]
    assert errors(check(build_7z(pdf, encode_header=True, header_coder=AES), "a.7z")) == ["ssi.archive.encrypted"]
    assert errors(check(build_7z(pdf, truncate=30), "a.7z")) == ["ssi.archive.malformed"]


@pytest.mark.parametrize("build", [build_rar4, build_rar5])
@pytest.mark.parametrize(
    ("member", "rule"),
    [
        (RarMember("a.pdf", PDF, compressed=True), "ssi.archive.content-not-inspected"),
        (RarMember("a.pdf", PDF, encrypted=True), "ssi.archive.encrypted"),
        (RarMember("../../a.pdf", PDF), "ssi.archive.traversal"),
        (RarMember("lien", b"/etc/passwd", unix_mode=0o120777), "ssi.archive.symlink"),
        (RarMember("a.pdf", PDF, bad_crc=True), "ssi.archive.malformed"),
        (RarMember("a.pdf", PDF, split=True), "ssi.archive.content-not-inspected"),
    ],
)
def test_hostile_rar_members_are_errors_and_never_children(build: object, member: RarMember, rule: str) -> None:
    assert callable(build)
    verdict = check(build([member]), "preuve.rar")
    assert rule in errors(verdict), rules_of(verdict)
    assert verdict.children == ()


@pytest.mark.parametrize("build", [build_rar4, build_rar5])
def test_rar_archives_that_cannot_be_listed_are_refused(build: object) -> None:
    assert callable(build)
    member = [RarMember("a.pdf", PDF)]
    assert errors(check(build(member, encrypted_headers=True), "a.rar")) == ["ssi.archive.encrypted"]
    whole = build(member)
    for data in (build(member, end=False), whole[: len(whole) - 200]):
        assert errors(check(data, "a.rar")) == ["ssi.archive.malformed"]


def test_rar5_links_and_copies_are_special_members() -> None:
    for redirection in (1, 2, 3, 4, 5):
        assert errors(check(build_rar5([RarMember("lien", redirection=redirection)]), "a.rar")) == [
            "ssi.archive.symlink"
        ]


def test_nested_archives_past_the_depth_limit_are_not_opened() -> None:
    inner = files({"a.pdf": PDF}, "gz")
    validator = ArchiveValidator(TriageLimits(max_depth=1))
    verdict = check(files({"inner.tgz": inner}, "gz"), "outer.tgz", validator)
    assert errors(verdict) == ["ssi.archive.nesting-depth"] and verdict.children == ()


def test_members_over_the_memory_budget_are_named_not_passed() -> None:
    validator = ArchiveValidator(max_member_bytes=1000)
    verdict = check(files({"big.pdf": PDF, "small.txt": b"ok"}, "gz"), "a.tgz", validator)
    assert rules_of(verdict) == ["ssi.archive.member-not-checked"]
    assert verdict.status is Status.WARNING and children(verdict) == ["1:small.txt"]


def test_detection_reads_magic_not_names() -> None:
    assert detect(files({"a": b"x"})[:512]) == "tar"
    assert detect(seven({"a": b"x"})) == "7z"
    assert detect(build_rar4([])) == detect(build_rar5([])) == "rar"
    assert detect(b"BZh9") == "bzip2" and detect(b"BZh only text") is None
    assert detect(PDF) is None and detect(bytes(1024)) is None


def test_the_check_stops_on_its_deadline() -> None:
    from validators.base import DeadlineExceededError

    def late() -> None:
        raise DeadlineExceededError("time")

    with pytest.raises(DeadlineExceededError):
        read_archive(io.BytesIO(files({"a": b"x"})), "tar", file_name="a.tar", limits=TriageLimits(),
                     check_time=late)
    assert CheckContext  # the engine turns it into system.timeout (tests/test_engine.py)


def test_7z_numbers_read_back_as_written() -> None:
    from fixtures.sevenzipcraft import number
    from validators.archives.sevenzip import _Buffer

    for value in (0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, 1 << 21, (1 << 22) + 5, 1 << 40, (1 << 64) - 1):
        assert _Buffer(number(value)).number() == value


_SAMPLES = {
    "tar": files({"a/b.pdf": PDF[:600], "c.txt": b"ok"}),
    "tar.gzip": files({"a/b.pdf": PDF[:600]}, "gz"),
    "tar.xz": files({"a/b.pdf": PDF[:600]}, "xz"),
    "7z": build_7z([SevenMember("a.pdf", PDF[:600], coder=LZMA), SevenMember("d", directory=True)], encode_header=True),
    "7z-plain": build_7z([SevenMember("a.pdf", PDF[:600]), SevenMember("b.txt", b"ok")]),
    "rar4": build_rar4([RarMember("a.pdf", PDF[:600]), RarMember("b.pdf", PDF[:300], compressed=True)]),
    "rar5": build_rar5([RarMember("a.pdf", PDF[:600]), RarMember("l", redirection=1)]),
}


@pytest.mark.parametrize("sample", sorted(_SAMPLES))
def test_mutated_archives_give_findings_never_exceptions(sample: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    original = _SAMPLES[sample]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=6),
           st.integers(0, len(original)))
    def mutated(changes: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(original)
        for position, value in changes:
            data[position] = value
        data = data[: max(cut, 1)]
        kind = detect(bytes(data[:512]))
        if kind is None:
            return
        listing = read_archive(io.BytesIO(bytes(data)), kind, file_name="x", limits=TriageLimits(),
                               sink=MemoryCollector(1 << 20, 1 << 22))
        assert listing.kind.endswith(kind) or listing.kind.startswith(kind)

    mutated()


def _with_header(archive: bytes, header: bytes) -> bytes:
    """The 7z ``archive`` with its (plain) header replaced and every checksum made right again."""
    import struct
    import zlib

    offset, _, _ = struct.unpack_from("<QQL", archive, 12)
    body = archive[32 : 32 + offset]
    tail = struct.pack("<QQL", len(body), len(header), zlib.crc32(header))
    return archive[:8] + struct.pack("<L", zlib.crc32(tail)) + tail + body + header


def test_7z_headers_with_valid_checksums_and_random_fields_never_raise() -> None:
    import struct

    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    original = _SAMPLES["7z-plain"]
    offset, size, _ = struct.unpack_from("<QQL", original, 12)
    header = original[32 + offset : 32 + offset + size]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, len(header) - 1), st.integers(0, 255)), min_size=1, max_size=4),
           st.integers(1, len(header)))
    @example(changes=[(38, 0)], cut=39)  # more substreams than files with data: was a StopIteration
    def mutated(changes: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(header)
        for position, value in changes:
            data[position] = value
        archive = _with_header(original, bytes(data[:cut]))
        listing = read_archive(io.BytesIO(archive), "7z", file_name="x", limits=TriageLimits(),
                               sink=MemoryCollector(1 << 20, 1 << 22))
        assert listing.kind == "7z"

    mutated()
