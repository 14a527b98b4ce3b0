"""Hidden content anywhere (issue 12 item 5): executables, Java, archives inside any file, scripts at the
start of embedded regions, PNG compressed chunks inflated under a bound; and no alarm on real media."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from fixtures import hostile, hostile_content
from fixtures.hostile_content import (
    SHEBANG,
    box,
    cab,
    chunk_bomb,
    jar,
    java_class,
    jpeg_with_segment,
    macho_fat,
    mp4,
    mp4_with_free,
    png_with,
    rar5,
    seven_zip,
    webp_with_chunk,
)
from validators import imagefacts
from validators.base import CheckContext, ProofFile
from validators.ssi import executables, images, signatures


def _file(name: str, data: bytes, media_type: str = "application/octet-stream") -> ProofFile:
    return ProofFile(path=name, size=len(data), sha256="0" * 64, media_type=media_type, data=data)


def rar4() -> bytes:
    body = bytes([0x73]) + struct.pack("<HH", 0, 13) + bytes(6)
    return b"Rar!\x1a\x07\x00" + struct.pack("<H", zlib.crc32(body) & 0xFFFF) + body


NOISE = random.Random(20).randbytes(4096)


@pytest.mark.parametrize(
    ("payload", "family", "executable"),
    [
        (hostile.pe(), "pe", True),
        (hostile.elf(), "elf", True),
        (hostile.macho(), "macho", True),
        (macho_fat(), "macho", True),
        (java_class(), "java", True),
        (jar(), "jar", True),
        (hostile.zip_of({"outil.js": b"x"}), "zip", False),
        (seven_zip(), "7z", False),
        (rar5(), "rar", False),
        (rar4(), "rar", False),
        (cab(), "cab", False),
    ],
)
def test_a_format_hidden_in_noise_is_found_with_its_family(payload: bytes, family: str, executable: bool) -> None:
    found = list(signatures.hidden_formats(NOISE + payload + NOISE, 0))
    assert [(hidden.family, offset) for hidden, offset in found][:1] == [(family, len(NOISE))]
    assert found[0][0].executable is executable


def test_damaged_headers_are_not_formats() -> None:
    broken = [
        seven_zip()[:8] + b"\0\0\0\0" + seven_zip()[12:],  # start-header CRC wrong
        rar5()[:8] + b"\0\0\0\0" + rar5()[12:],  # header CRC wrong
        b"MSCF\0\0\0\0" + bytes(28),  # no version, no folder
        b"\xca\xfe\xba\xbe" + struct.pack(">I", 2) + bytes(40),  # fat header with unknown CPUs
        b"\xfe\xed\xfa\xcf" + struct.pack(">iiIII", 99, 0, 2, 1, 8),  # unknown CPU type
        b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 77, 0, 0, 0, 0, 0, 3, 0) + b"abc",  # unknown method
        b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, 0, 0, 0, 0, 3, 0) + b"a\x01c",  # control in name
    ]
    for data in broken:
        assert list(signatures.hidden_formats(NOISE + data + NOISE, 0)) == [], data[:8]


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (macho_fat(), "Mach-O universal (fat)"),
        (java_class(), "Java class"),
        (b"\xca\xfe\xba\xbe\x00\x00", "Mach-O universal or Java class"),
        (b"#!/usr/bin/env bash\n", "script (shebang)"),
    ],
)
def test_fat_mach_o_and_java_class_are_told_apart(head: bytes, kind: str) -> None:
    assert signatures.executable_kind(head) == kind


def test_jar_and_apk_are_executables_and_a_plain_zip_is_not() -> None:
    assert signatures.jar_kind(["META-INF/MANIFEST.MF", "A.class"]) == "Java archive (JAR)"
    assert signatures.jar_kind(["AndroidManifest.xml", "classes.dex"]) == "Android package (APK)"
    assert signatures.jar_kind(["META-INF/container.xml", "OEBPS/a.xhtml"]) is None
    result = executables.ExecutablesValidator().check(_file("app.zip", jar(), "application/zip"), CheckContext())
    assert [(f.rule, "JAR" in f.message) for f in result.findings] == [("ssi.executable", True)]
    plain = hostile.zip_of({"capture.png": hostile.png(2, 2)})
    assert _executable_rules("a.zip", plain, "application/zip") == []


def _executable_rules(name: str, data: bytes, media_type: str) -> list[str]:
    result = executables.ExecutablesValidator().check(_file(name, data, media_type), CheckContext())
    return sorted(f.rule for f in result.findings)


@pytest.mark.parametrize(
    ("name", "data", "media_type"),
    [
        ("a.png", png_with([(b"prVt", SHEBANG)]), "image/png"),
        ("a.jpg", jpeg_with_segment(0xE9, SHEBANG), "image/jpeg"),
        ("a.mp4", mp4_with_free(SHEBANG), "video/mp4"),
        ("a.pdf", hostile.pdf() + SHEBANG, "application/pdf"),
        ("a.pdf", hostile.pdf() + SHEBANG + b"%%EOF\n", "application/pdf"),  # a fake end after the script
        ("a.gif", hostile.gif(comment=SHEBANG), "image/gif"),
        ("a.webp", webp_with_chunk(b"XTRA", SHEBANG), "image/webp"),
    ],
)
def test_a_script_at_the_start_of_an_embedded_region_is_an_executable(name: str, data: bytes, media_type: str) -> None:
    assert _executable_rules(name, data, media_type) == ["ssi.executable"]


def test_text_that_merely_quotes_a_shebang_is_not_a_script() -> None:
    png = png_with([(b"tEXt", b"Comment\0voir #!/bin/sh dans la doc")])
    assert _executable_rules("a.gif", hostile.gif(comment=b"#!bonjour"), "image/gif") == []
    assert _executable_rules("a.webp", webp_with_chunk(b"EXIF", b"#!"), "image/webp") == []
    update = hostile.pdf() + b"1 0 obj\n<< /Type /Catalog >>\nendobj\nstartxref\n0\n%%EOF\n"
    assert _executable_rules("a.png", png, "image/png") == []
    assert _executable_rules("a.pdf", update, "application/pdf") == []


def test_a_zip_ending_the_file_is_left_to_the_archive_check_and_one_inside_it_is_not() -> None:
    inner = hostile.zip_of({"outil.js": b"x"})
    assert _executable_rules("a.png", hostile.png(4, 4) + inner, "image/png") == []
    assert _executable_rules("a.png", png_with([(b"prVt", inner)]), "image/png") == ["ssi.polyglot"]
    assert _executable_rules("a.mp4", mp4_with_free(inner) + box(b"free", bytes(8)), "video/mp4") == ["ssi.polyglot"]


def test_a_zip_comment_is_searched_and_an_empty_one_is_not_a_finding() -> None:
    commented = hostile_content.zip_commented({"capture.png": hostile.png(4, 4)}, b"notes " + hostile.pe())
    assert _executable_rules("a.zip", commented, "application/zip") == ["ssi.executable", "ssi.polyglot"]
    plain = hostile_content.zip_commented({"capture.png": hostile.png(4, 4)}, b"export du 2 mars")
    assert _executable_rules("a.zip", plain, "application/zip") == []


def test_an_archive_s_members_are_not_hidden_formats_of_the_archive() -> None:
    """A tar holds its members' bytes as they are: a PDF or a zip member is the archive check's child,
    not a polyglot of the tar."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in (("rapport.pdf", hostile.pdf()), ("captures.zip", hostile.zip_of({"a.png": b"x"}))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    assert _executable_rules("preuves.tar", out.getvalue(), "application/x-tar") == []
    assert _executable_rules("preuves.bin", out.getvalue(), "application/octet-stream") == []  # "ustar" header
    ole = hostile.compound_file({"__substg1.0_37010102": hostile.pdf().ljust(4096, b"\0")})
    assert _executable_rules("message.msg", ole, "application/vnd.ms-outlook") == []


def test_random_and_compressed_bytes_hold_no_hidden_format() -> None:
    rng = random.Random(4)
    for _ in range(4):
        block = rng.randbytes(8 * 1024 * 1024)
        assert list(signatures.hidden_formats(block, 1)) == []
        assert list(signatures.hidden_formats(zlib.compress(block[:2_000_000]), 1)) == []


@pytest.mark.parametrize(
    ("name", "data", "media_type"),
    [
        ("video.mp4", mp4(4, "320x240"), "video/mp4"),
        ("photo.jpg", hostile_content.noisy_jpeg((1600, 1200), seed=5), "image/jpeg"),
        ("capture.png", hostile_content.png_with_metadata(), "image/png"),
        ("rapport.pdf", hostile.pdf(), "application/pdf"),
    ],
)
def test_real_media_raise_nothing(name: str, data: bytes, media_type: str) -> None:
    file = _file(name, data, media_type)
    found = executables.ExecutablesValidator().check(file, CheckContext()).findings
    if images.ImagesValidator().applies_to(file):
        found += images.ImagesValidator().check(file, CheckContext()).findings
    assert found == []


def _image_rules(data: bytes) -> list[str]:
    result = images.ImagesValidator().check(_file("a.png", data, "image/png"), CheckContext())
    return sorted(f.rule for f in result.findings)


@pytest.mark.parametrize("kind", [b"iCCP", b"zTXt", b"iTXt"])
def test_a_compressed_chunk_bomb_is_an_error(kind: bytes) -> None:
    assert _image_rules(chunk_bomb(kind, imagefacts.MAX_CHUNK_INFLATE + 1024)) == ["ssi.image.chunk-bomb"]


def test_many_compressed_chunks_share_one_bound() -> None:
    part = b"Comment\0\0" + zlib.compress(bytes(imagefacts.MAX_CHUNK_INFLATE - 1024), 9)
    data = png_with([(b"zTXt", part)] * (imagefacts.MAX_IMAGE_INFLATE // imagefacts.MAX_CHUNK_INFLATE + 1))
    assert _image_rules(data) == ["ssi.image.chunk-bomb"]


def test_what_a_compressed_chunk_hides_is_searched() -> None:
    exe = png_with([(b"zTXt", b"Comment\0\0" + zlib.compress(hostile.pe() + bytes(64)))])
    archive = png_with([(b"iCCP", b"profil\0\0" + zlib.compress(seven_zip()))])
    script = png_with([(b"iTXt", b"XML:com.adobe.xmp\0\1\0fr\0\0" + zlib.compress(b"<script>alert(1)</script>"))])
    assert _image_rules(exe) == ["ssi.executable"]
    assert _image_rules(archive) == ["ssi.polyglot"]
    assert _image_rules(script) == ["ssi.image.markup"]


def test_a_broken_compressed_chunk_is_not_a_crash() -> None:
    assert _image_rules(png_with([(b"zTXt", b"Comment\0\0" + b"\x78\x9c\xff\xff\xff")])) == []
