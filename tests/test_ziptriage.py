"""Zip triage reads structure without extracting: every hostile shape is named, stops early, never raises.

Hostile zips are built here, byte by byte (``build_zip``), because ``zipfile`` refuses to write most of
them; the archive and intake tests import the same builder.
"""

from __future__ import annotations

import io
import struct
import unicodedata
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.zipcraft import BZIP2, DEFLATED, LZMA, STORED, Member, build_zip, many_entries_zip, unicode_path
from validators.model import Severity
from validators.ziptriage import (
    MAX_FINDINGS_PER_RULE,
    MemberError,
    TriageLimits,
    TriageReport,
    display_name,
    read_member,
    safe_path,
    triage,
)

GIB = 1024**3
METHODS = [STORED, DEFLATED, BZIP2, LZMA]
METHOD_IDS = ["stored", "deflate", "bzip2", "lzma"]


def run(data: bytes, **kwargs: object) -> TriageReport:
    return triage(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]


def rules_of(report: TriageReport) -> list[str]:
    return sorted({f.rule for f in report.findings})


def benign() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("INS.41.2.2/capture.png", b"\x89PNG\r\n\x1a\n" + bytes(2000))
        archive.writestr("INS.41.2.2/", b"")
        archive.writestr("DOC.3.1.2/lettre.pdf", b"%PDF-1.7\n" + b"x" * 5000)
    return out.getvalue()


# --- ordinary archives ----------------------------------------------------------------------------


def test_an_ordinary_zip_gives_no_finding_and_all_its_entries() -> None:
    report = run(benign())
    assert report.is_zip and report.complete and not report.structural
    assert report.findings == []
    assert [e.path for e in report.extractable()] == ["INS.41.2.2/capture.png", "DOC.3.1.2/lettre.pdf"]
    assert report.total_declared == 8 + 2000 + 9 + 5000


def test_an_empty_zip_is_a_zip_without_entries() -> None:
    report = run(build_zip([]))
    assert report.is_zip and report.entries == [] and report.findings == []


@pytest.mark.parametrize(
    "data", [b"", b"%PDF-1.7\n%%EOF\n", b"PK\x03\x04" + bytes(40)], ids=["empty", "pdf", "truncated"]
)
def test_bytes_without_an_end_record_are_not_a_zip(data: bytes) -> None:
    report = run(data)
    assert not report.is_zip and report.findings == []


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", "parent-folder component"),
        ("a/../../evil.txt", "parent-folder component"),
        ("..\\..\\evil.txt", "parent-folder component"),
        ("/etc/cron.d/evil", "absolute path"),
        ("\\\\server\\share\\evil", "absolute path"),
        ("C:/Windows/evil.dll", "absolute path"),
        ("c:evil.dll", "absolute path"),
    ],
    ids=["dotdot", "nested-dotdot", "backslash-dotdot", "absolute", "unc", "drive", "drive-relative"],
)
def test_names_that_escape_the_target_folder_are_traversal(name: str, reason: str) -> None:
    report = run(build_zip([Member(name, b"x"), Member("ok.txt", b"y")]))
    traversal = [f for f in report.findings if f.rule == "ssi.archive.traversal"]
    assert len(traversal) == 1 and reason in traversal[0].message
    assert traversal[0].severity is Severity.ERROR
    assert [e.name for e in report.extractable()] == ["ok.txt"]


@pytest.mark.parametrize("name", ["a/./b.txt", "dossier/preuve.pdf", "..preuve.pdf", "a..b/c.txt"])
def test_names_with_dots_that_stay_inside_are_not_traversal(name: str) -> None:
    assert safe_path(name)[1] is None
    assert "ssi.archive.traversal" not in rules_of(run(build_zip([Member(name, b"x")])))


@pytest.mark.parametrize(
    "name",
    ["facture\u202efdp.exe", "log\x1b[31m.txt", "a\u200bb.pdf", "nul\x00byte.txt"],
    ids=["rlo", "escape", "zero-width", "nul"],
)
def test_hidden_characters_in_names_are_deceptive_and_shown_escaped(name: str) -> None:
    report = run(build_zip([Member(name, b"x")]))
    found = [f for f in report.findings if f.rule == "ssi.archive.deceptive-name"]
    assert found and found[0].severity is Severity.ERROR
    entry = found[0].location.entry
    assert entry is not None and entry.isprintable() and "\\u" in entry


@pytest.mark.parametrize("name", ["a\\b.txt", "what?.txt", "Capture 10:12:33.png"])
def test_names_windows_reads_differently_are_suspicious_only(name: str) -> None:
    report = run(build_zip([Member(name, b"x")]))
    assert rules_of(report) == ["ssi.archive.suspicious-name"]
    assert all(f.severity is Severity.WARNING for f in report.findings)


@pytest.mark.parametrize("name", ["CON.txt", "dossier/aux", "LPT1", "preuve.pdf.", "rapport.exe ", "dossier./a.png"])
def test_names_windows_writes_as_another_file_are_errors(name: str) -> None:
    """A device name or a trailing dot or space: Windows writes another file than the one judged."""
    report = run(build_zip([Member(name, b"x")]))
    assert rules_of(report) == ["ssi.archive.suspicious-name"]
    assert {f.severity for f in report.findings} == {Severity.ERROR}


@pytest.mark.parametrize(
    "name",
    [
        "\uff0e\uff0e\uff0fevil.png",
        "a/\uff0e\uff0e/\uff0e\uff0e/b.png",
        "..\u2215..\u2215evil.png",
        "\uff0fetc\uff0fpasswd",
    ],
    ids=["fullwidth", "fullwidth-segments", "division-slash", "fullwidth-absolute"],
)
def test_look_alike_dots_and_slashes_are_traversal_once_folded(name: str) -> None:
    """Extractors that fold compatibility forms (NFKC, Windows best fit) write `../` for `．．／`."""
    report = run(build_zip([Member(name, b"x"), Member("ok.txt", b"y")]))
    by_rule = {f.rule: f for f in report.findings}
    assert "look-alike" in by_rule["ssi.archive.traversal"].message
    assert by_rule["ssi.archive.deceptive-name"].severity is Severity.ERROR
    assert [e.name for e in report.extractable()] == ["ok.txt"]


def test_a_utf8_flagged_name_with_overlong_dots_is_deceptive() -> None:
    """`C0 AE` is an overlong '.': strict decoders refuse it, lenient ones write `../`."""
    report = run(build_zip([Member(b"\xc0\xae\xc0\xae/evil.png", b"x", flags=0x800)]))
    found = [f for f in report.findings if f.rule == "ssi.archive.deceptive-name"]
    assert found and "not valid in its declared encoding" in found[0].message
    assert found[0].severity is Severity.ERROR


def test_duplicate_names_and_case_collisions_are_errors() -> None:
    report = run(build_zip([Member("a.txt", b"1"), Member("a.txt", b"2"), Member("A.TXT", b"3"),
                            Member("caf\u00e9.txt", b"4"), Member("cafe\u0301.txt", b"5")]))
    by_rule = {f.rule: [] for f in report.findings}  # type: dict[str, list[str | None]]
    for f in report.findings:
        by_rule[f.rule].append(f.location.entry)
    assert by_rule == {
        "ssi.archive.duplicate-name": ["a.txt"],
        "ssi.archive.case-collision": ["A.TXT", "cafe\u0301.txt"],
    }
    assert {f.severity for f in report.findings} == {Severity.ERROR}


def test_display_name_leaves_plain_names_alone() -> None:
    assert display_name("INS.41.2.2/écran d'accueil.png") == "INS.41.2.2/écran d'accueil.png"
    assert display_name("a\u202eb") == "a\\u202eb"


@pytest.mark.parametrize(
    ("raw", "flags", "encoding", "decoded"),
    [
        (b"plain.txt", 0, "ascii", "plain.txt"),
        ("écran.png".encode(), 0x800, "utf-8", "écran.png"),
        ("écran.png".encode(), 0, "utf-8 unflagged", "écran.png"),
        ("écran.png".encode("cp437"), 0, "cp437", "écran.png"),
        (b"\xff\xfe.png", 0x800, "undecodable", "\ufffd\ufffd.png"),
    ],
)
def test_names_are_decoded_as_readers_would_and_the_encoding_recorded(
    raw: bytes, flags: int, encoding: str, decoded: str
) -> None:
    (entry,) = run(build_zip([Member(raw, b"x", flags=flags)])).entries
    assert (entry.name_encoding, entry.name) == (encoding, decoded)


def test_the_unicode_path_field_is_used_when_its_checksum_matches() -> None:
    raw = "écran.png".encode("cp437")
    wanted = "écran-ü.png".encode()
    extra = struct.pack("<HHBL", 0x7075, 5 + len(wanted), 1, zlib.crc32(raw)) + wanted
    (entry,) = run(build_zip([Member(raw, b"x", extra=extra)])).entries
    assert (entry.name, entry.name_encoding) == ("écran-ü.png", "unicode-path")


def test_a_unicode_path_that_only_restates_a_legacy_name_is_not_a_disagreement() -> None:
    raw = "Écran résumé.png".encode("cp850")
    report = run(build_zip([Member(raw, b"x", extra=unicode_path("Écran résumé.png", raw))]))
    assert report.findings == [] and report.entries[0].name == "Écran résumé.png"
    assert [e.path for e in report.extractable()] == ["Écran résumé.png"]


def test_a_unicode_path_in_another_normal_form_is_the_same_name() -> None:
    raw = unicodedata.normalize("NFD", "écran.png").encode()
    report = run(build_zip([Member(raw, b"x", flags=0x800, extra=unicode_path("écran.png", raw))]))
    assert report.findings == []


def _name_findings(report: TriageReport) -> list[tuple[str, str | None, str | None]]:
    return sorted((f.rule, f.location.entry, f.evidence) for f in report.findings)


@pytest.mark.parametrize(
    ("raw", "field_name", "rules"),
    [
        # What Info-ZIP and 7-Zip write (the field) is judged as the name; the raw name is the other one.
        (b"rapport.pdf", "../../.bashrc", ["ssi.archive.name-mismatch", "ssi.archive.traversal"]),
        (b"rapport.pdf", "rapport.pdf.exe", ["ssi.archive.name-mismatch"]),
        (b"rapport.pdf", "facture\u202efdp.exe", ["ssi.archive.deceptive-name", "ssi.archive.name-mismatch"]),
        (b"rapport.pdf", "CON.pdf", ["ssi.archive.name-mismatch", "ssi.archive.suspicious-name"]),
        ("\u00e9cran.png".encode("cp437"), "../\u00e9cran.png", ["ssi.archive.name-mismatch", "ssi.archive.traversal"]),
    ],
)
def test_a_unicode_path_field_naming_another_file_is_a_disagreement(
    raw: bytes, field_name: str, rules: list[str]
) -> None:
    report = run(build_zip([Member(raw, b"x", extra=unicode_path(field_name, raw)), Member("ok.txt", b"y")]))
    assert rules_of(report) == rules
    assert [e.path for e in report.extractable()] == ["ok.txt"]  # the disputed member is never extracted
    mismatch = next(f for f in report.findings if f.rule == "ssi.archive.name-mismatch")
    assert mismatch.severity is Severity.ERROR and mismatch.evidence == display_name(raw.decode("cp437"))


def test_a_stale_unicode_path_field_is_judged_too() -> None:
    # A CRC over other bytes: Info-ZIP ignores the field, tools that do not check the CRC write it.
    report = run(build_zip([Member("rapport.pdf", b"x", extra=unicode_path("../evil.sh", b"autre"))]))
    assert report.entries[0].name == "rapport.pdf"
    assert _name_findings(report) == [
        ("ssi.archive.name-mismatch", "rapport.pdf", "../evil.sh"),
        ("ssi.archive.traversal", "rapport.pdf", "../evil.sh"),  # the name that escapes, in the evidence
    ]
    assert "stale" in report.findings[0].message


def test_the_local_header_name_and_its_own_unicode_path_are_judged() -> None:
    # Streaming extractors read the local header: its Unicode Path field differs from the directory's.
    raw = b"rapport.pdf"
    member = Member(raw, b"x", extra=unicode_path("rapport.pdf", raw), local_extra=unicode_path("../x.pdf", raw))
    report = run(build_zip([member]))
    assert rules_of(report) == ["ssi.archive.name-mismatch", "ssi.archive.traversal"]
    assert "local header" in report.findings[0].message and report.extractable() == []
    # The same raw bytes read as UTF-8 in the local header and as CP437 in the directory.
    flagged = Member("\u00e9t\u00e9.txt".encode("cp437"), b"x", local_flags=0x800)
    # ... which is no valid UTF-8 there: the local name is also judged deceptive.
    assert rules_of(run(build_zip([flagged]))) == ["ssi.archive.deceptive-name", "ssi.archive.name-mismatch"]


def test_the_unicode_comment_field_is_not_a_name() -> None:
    raw = b"rapport.pdf"
    body = struct.pack("<BL", 1, zlib.crc32(b"")) + b"../commentaire"
    comment = struct.pack("<HH", 0x6375, len(body)) + body
    assert run(build_zip([Member(raw, b"x", extra=comment)])).findings == []


# --- members that must not be extracted -----------------------------------------------------------


@pytest.mark.parametrize(("mode", "kind"), [(0o120777, "symbolic link"), (0o010644, "special file")])
def test_links_and_special_files_are_never_extracted(mode: int, kind: str) -> None:
    report = run(build_zip([Member("lien", b"/etc/passwd", unix_mode=mode)]))
    (finding,) = report.findings
    assert finding.rule == "ssi.archive.symlink" and kind in finding.message
    assert report.extractable() == []


@pytest.mark.parametrize(
    ("flags", "method"), [(0x1, DEFLATED), (0x41, DEFLATED), (0x1, 99)], ids=["zipcrypto", "strong", "aes"]
)
def test_encrypted_members_are_an_error(flags: int, method: int) -> None:
    report = run(build_zip([Member("secret.pdf", b"x", flags=flags, method=method)]))
    assert "ssi.archive.encrypted" in rules_of(report)
    assert report.extractable() == []


def test_an_unsupported_compression_method_leaves_the_member_unchecked() -> None:
    member = Member("a.bin", b"xyz", method=STORED)
    data = bytearray(build_zip([member]))
    data[8:10] = struct.pack("<H", 9)  # deflate64, in both headers
    cd = data.index(b"PK\x01\x02")
    data[cd + 10 : cd + 12] = struct.pack("<H", 9)
    report = run(bytes(data))
    assert rules_of(report) == ["ssi.archive.member-not-checked"]
    assert report.extractable() == []


# --- limits and bombs -----------------------------------------------------------------------------


def test_too_many_entries_stops_at_the_end_record() -> None:
    report = run(many_entries_zip(100_000))
    assert rules_of(report) == ["ssi.archive.too-many-entries"]
    assert report.entries == [] and not report.complete and report.structural  # not a single entry read


def test_limits_come_from_settings() -> None:
    limits = TriageLimits.from_settings({"package": {"max_entries": 2, "unknown": 1}}, "package")
    assert limits.max_entries == 2 and limits.max_ratio == TriageLimits().max_ratio
    assert "ssi.archive.too-many-entries" in rules_of(run(many_entries_zip(3), limits=limits))
    assert rules_of(run(many_entries_zip(2), limits=limits)) == []


def test_a_one_gib_zip64_bomb_is_caught_from_its_headers() -> None:
    bomb = Member("bombe.bin", bytes(1024), declared_size=GIB, zip64=True)
    report = run(build_zip([bomb]))
    assert report.zip64 and report.total_declared == GIB
    assert {"ssi.archive.ratio", "ssi.archive.zip64"} <= set(rules_of(report))
    assert report.structural and report.extractable() == []


def test_declared_size_over_the_limit_is_too_large() -> None:
    limits = TriageLimits(max_total_size=10_000)
    report = run(build_zip([Member("a", bytes(6000)), Member("b", bytes(6000))]), limits=limits)
    assert rules_of(report) == ["ssi.archive.too-large"] and report.structural


def test_a_single_member_with_a_bomb_ratio_is_named() -> None:
    report = run(build_zip([Member("ok.txt", b"fine"), Member("zeros.bin", bytes(4 * 1024 * 1024))]))
    ratio = [f for f in report.findings if f.rule == "ssi.archive.ratio"]
    assert {f.location.entry for f in ratio} >= {"zeros.bin"}


def test_small_compressible_members_are_not_judged_by_ratio() -> None:
    assert rules_of(run(build_zip([Member("trace.log", b"a" * 500_000)]))) == []


def test_overlapping_entries_are_a_better_zip_bomb() -> None:
    members = [Member(f"k{i}.bin", bytes(1000)) for i in range(3)]
    report = run(build_zip(members, overlap_all_with_first=True))
    assert "ssi.archive.overlapping-entries" in rules_of(report)
    assert report.structural and report.extractable() == []


def test_a_local_header_name_that_disagrees_with_the_directory_is_a_name_mismatch() -> None:
    report = run(build_zip([Member("visible.pdf", b"x", local_name=b"hidden.exe")]))
    assert rules_of(report) == ["ssi.archive.name-mismatch"] and report.structural
    assert [(f.location.entry, f.evidence) for f in report.findings] == [("visible.pdf", "hidden.exe")]


def test_a_local_header_method_that_disagrees_with_the_directory_is_inconsistent() -> None:
    report = run(build_zip([Member("visible.pdf", b"x" * 100, local_method=STORED)]))
    assert rules_of(report) == ["ssi.archive.inconsistent"] and report.structural


def test_lying_local_sizes_are_inconsistent() -> None:
    data = bytearray(build_zip([Member("a.txt", b"hello")]))
    data[22:26] = struct.pack("<L", 99)  # the local header's uncompressed size
    assert "ssi.archive.inconsistent" in rules_of(run(bytes(data)))


@pytest.mark.parametrize("count", [3, 1], ids=["more-declared", "fewer-declared"])
def test_an_entry_count_that_does_not_match_the_directory_is_malformed(count: int) -> None:
    report = run(build_zip([Member("a", b"1"), Member("b", b"2")], declared_count=count))
    assert rules_of(report) == ["ssi.archive.malformed"] and report.structural


def test_a_truncated_central_directory_is_malformed() -> None:
    data = build_zip([Member("a", b"1"), Member("b", b"2")])
    cd = data.index(b"PK\x01\x02")
    report = run(data[:cd] + data[cd + 30 :])
    assert "ssi.archive.malformed" in rules_of(report)


def test_findings_are_capped_per_rule_and_the_rest_counted() -> None:
    report = run(build_zip([Member(f"../e{i}", b"x") for i in range(MAX_FINDINGS_PER_RULE + 7)]))
    assert sum(f.rule == "ssi.archive.traversal" for f in report.findings) == MAX_FINDINGS_PER_RULE
    (more,) = [f for f in report.findings if f.rule == "ssi.archive.more-findings"]
    assert "7 more" in more.message and "ssi.archive.traversal" in more.message


# --- polyglots ------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


@pytest.mark.parametrize("adjusted", [False, True], ids=["cat", "crafted-offsets"])
def test_a_zip_behind_an_image_is_a_polyglot(adjusted: bool) -> None:
    data = build_zip([Member("payload.txt", b"x")], prefix=PNG, offsets_include_prefix=adjusted)
    report = run(data, require_end_at_eof=True)
    (finding,) = report.findings
    assert finding.rule == "ssi.archive.polyglot" and "PNG image" in finding.message
    assert [e.name for e in report.extractable()] == ["payload.txt"]


@pytest.mark.parametrize("marker", [b"PK\x07\x08", b"PK00"])
def test_a_spanning_marker_before_the_first_entry_is_not_foreign_data(marker: bytes) -> None:
    report = run(build_zip([Member("a.txt", b"x")], prefix=marker, offsets_include_prefix=True))
    assert report.findings == [] and len(report.extractable()) == 1


def test_data_after_the_end_record_is_a_polyglot() -> None:
    report = run(build_zip([Member("a.txt", b"x")], trailing=b"MZ" + bytes(100)))
    assert rules_of(report) == ["ssi.archive.polyglot"]
    assert "after" in report.findings[0].message


def test_an_end_record_inside_other_data_is_ignored_for_non_zip_files() -> None:
    stray = PNG + b"PK\x05\x06" + bytes(18) + b"more image data"
    assert not run(stray, require_end_at_eof=True).is_zip


# --- nesting --------------------------------------------------------------------------------------


def test_nested_archives_are_recognised_and_limited_by_depth() -> None:
    inner = build_zip([Member("x.txt", b"x")])
    gzip_member = Member("log.gz", b"\x1f\x8b\x08" + bytes(20), method=STORED)
    outer = build_zip([Member("inner.zip", inner), gzip_member])
    shallow = run(outer, depth=1)
    assert {e.name: e.nested for e in shallow.entries} == {"inner.zip": "zip", "log.gz": "gzip"}
    assert shallow.findings == []
    deep = run(outer, depth=3, limits=TriageLimits(max_depth=3))
    assert rules_of(deep) == ["ssi.archive.nesting-depth"]
    assert deep.extractable() == []


# --- reading members ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
def test_members_read_back_exactly(method: int) -> None:
    content = b"preuve " * 50_000
    data = build_zip([Member("a.txt", content, method=method)])
    report = run(data)
    (entry,) = report.extractable()
    pieces = list(read_member(io.BytesIO(data), entry, max_bytes=10**7, chunk_size=64 * 1024))
    assert b"".join(pieces) == content
    assert max(len(p) for p in pieces) <= 64 * 1024


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
def test_a_member_inflating_past_its_declared_size_is_stopped(method: int) -> None:
    data = build_zip([Member("bomb.bin", bytes(3_000_000), method=method, declared_size=1000)])
    (entry,) = run(data).extractable()
    produced = 0
    with pytest.raises(MemberError) as caught:
        for piece in read_member(io.BytesIO(data), entry, max_bytes=10**9, chunk_size=4096):
            produced += len(piece)
    assert caught.value.rule == "ssi.archive.size-mismatch"
    assert produced <= 1000 + 4096


def test_a_member_over_the_byte_limit_is_not_read() -> None:
    data = build_zip([Member("big.bin", bytes(5000))])
    (entry,) = run(data).extractable()
    with pytest.raises(MemberError) as caught:
        list(read_member(io.BytesIO(data), entry, max_bytes=4999))
    assert caught.value.rule == "ssi.archive.member-not-checked"


def test_a_wrong_checksum_is_malformed() -> None:
    data = bytearray(build_zip([Member("a.txt", b"hello world", method=STORED)]))
    data[30 + 5 : 30 + 6] = b"J"  # one byte of the stored content
    (entry,) = run(bytes(data)).extractable()
    with pytest.raises(MemberError) as caught:
        list(read_member(io.BytesIO(bytes(data)), entry, max_bytes=100))
    assert caught.value.rule == "ssi.archive.malformed" and "checksum" in caught.value.reason


def test_corrupt_deflate_data_is_malformed() -> None:
    data = bytearray(build_zip([Member("a.txt", b"hello world" * 100)]))
    data[30 + 5 : 30 + 12] = b"\xff" * 7
    (entry,) = run(bytes(data)).extractable()
    with pytest.raises(MemberError) as caught:
        list(read_member(io.BytesIO(bytes(data)), entry, max_bytes=10**6))
    assert caught.value.rule == "ssi.archive.malformed"


def test_a_real_file_is_read_through_a_memory_map(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "p.zip"  # type: ignore[operator]
    path.write_bytes(benign())
    with path.open("rb") as stream:
        report = triage(stream)
        assert report.findings == [] and len(report.extractable()) == 2
        assert b"".join(read_member(stream, report.extractable()[1], max_bytes=10**6)).startswith(b"%PDF")


# --- never a traceback ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_archives_never_raise(data: st.DataObject) -> None:
    members = [Member("a/b.txt", b"hello" * 50), Member("c.bin", bytes(300), method=STORED),
               Member("z.txt", b"z" * 900, zip64=True)]
    original = bytearray(build_zip(members))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(original)))
    mutated = bytes(original[:cut]) if data.draw(st.booleans()) else bytes(original)
    report = run(mutated)
    for entry in report.extractable():
        try:
            for _ in read_member(io.BytesIO(mutated), entry, max_bytes=10**6):
                pass
        except MemberError:
            pass
