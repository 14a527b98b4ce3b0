"""What a file carries beside what it shows: a NIR in an image's metadata (PNG text chunks, JPEG comment,
EXIF, XMP, GIF comment, WebP chunks, TIFF tags, bytes after the end marker), in a PDF's notes, bookmarks
and earlier revisions, in a video's tags and subtitles, is found; ordinary metadata raises nothing; what
cannot be read is said."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from pii_support import proof_file
from PIL import Image, PngImagePlugin

from fixtures.pii_snippets import NirFactory, grouped
from validators.engine import Engine
from validators.model import FileVerdict
from validators.pii import make_validators, metatext
from validators.report.html import describe_location

NIRS = NirFactory(20261203)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(make_validators({}))


def nir_places(verdict: FileVerdict) -> list[str | None]:
    """Where the pii.nir errors are (the location's entry), the values themselves never shown."""
    return [f.location.entry for f in verdict.findings if f.rule == "pii.nir"]


def gaps(verdict: FileVerdict) -> list[str]:
    return [str(dict(f.params).get("what", "")) for f in verdict.findings if f.rule == "pii.not-inspected"]


def blank() -> Image.Image:
    return Image.new("RGB", (240, 80), "white")


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png_with(kind: str, keyword: str, text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    if kind == "tEXt":
        info.add_text(keyword, text)
    elif kind == "zTXt":
        info.add_text(keyword, text, zip=True)
    else:
        info.add_itxt(keyword, text, zip=kind == "iTXt-compressed")
    return saved(blank(), "PNG", pnginfo=info)


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt", "iTXt-compressed"])
def test_a_nir_in_a_png_text_chunk_is_found_and_placed(engine: Engine, kind: str) -> None:
    data = png_with(kind, "Comment", f"Patient : DUPONT Jean, NIR {grouped(NIRS.nir())}")
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", data))
    chunk = "iTXt" if kind.startswith("iTXt") else kind
    assert nir_places(verdict) == [f"PNG {chunk} chunk"]


def _exif(tag: int, value: bytes, type_code: int) -> bytes:
    """A little-endian EXIF block with one IFD0 entry whose value is stored after the IFD."""
    ifd_at = 8
    data_at = ifd_at + 2 + 12 + 4
    entry = struct.pack("<HHII", tag, type_code, len(value), data_at)
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", ifd_at) + struct.pack("<H", 1) + entry + b"\0\0\0\0" + value


@pytest.mark.parametrize("form", ["comment", "exif-ascii", "exif-xp-utf16", "xmp"])
def test_a_nir_in_jpeg_metadata_is_found(engine: Engine, form: str) -> None:
    nir = NIRS.nir()
    text = f"Assuré NIR {grouped(nir)}"
    if form == "comment":
        data = saved(blank(), "JPEG", comment=text.encode("utf-8"))
    elif form == "exif-ascii":
        data = saved(blank(), "JPEG", exif=_exif(0x010E, text.encode("latin-1") + b"\0", 2)[6:])
    elif form == "exif-xp-utf16":  # Windows' XPComment: UTF-16LE in a BYTE array
        data = saved(blank(), "JPEG", exif=_exif(0x9C9C, text.encode("utf-16-le") + b"\0\0", 1)[6:])
    else:
        xmp = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               f'<rdf:Description><dc:description xmlns:dc="http://purl.org/dc/elements/1.1/">{text}'
               f"</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>")
        data = saved(blank(), "JPEG", xmp=xmp.encode("utf-8"))
    verdict = engine.check_file(proof_file("INS.1.1.1/photo.jpg", data))
    assert nir_places(verdict) == ["JPEG comment" if form == "comment" else "JPEG APP1 segment"]


def test_a_nir_in_a_gif_comment_webp_chunk_or_tiff_tag_is_found(engine: Engine) -> None:
    text = f"NIR {NIRS.nir()}"
    gif = saved(blank().convert("P"), "GIF", comment=text.encode())
    webp = saved(blank(), "WEBP", exif=_exif(0x010E, text.encode() + b"\0", 2)[6:])
    tiff = saved(blank(), "TIFF", tiffinfo={270: text})
    assert nir_places(engine.check_file(proof_file("INS.1.1.1/a.gif", gif))) == ["GIF comment"]
    assert nir_places(engine.check_file(proof_file("INS.1.1.1/a.webp", webp))) == ["WebP EXIF chunk"]
    assert nir_places(engine.check_file(proof_file("INS.1.1.1/a.tif", tiff))) == ["TIFF metadata (EXIF)"]


def test_a_nir_after_the_end_marker_is_found(engine: Engine) -> None:
    data = saved(blank(), "PNG") + f"\nnir={NIRS.nir()}\n".encode()
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", data))
    assert nir_places(verdict) == [metatext.AFTER_END]


def test_an_image_whose_structure_breaks_is_read_raw_and_said(engine: Engine) -> None:
    nir = NIRS.nir()
    chunk = b"tEXt" + b"Comment\0NIR " + nir.encode()
    data = saved(blank(), "PNG")
    cut = data.index(b"IEND") - 4
    broken = data[:cut] + struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", broken))  # no IEND: not walkable
    assert nir_places(verdict) == ["image bytes"]
    assert any("compressed metadata" in what for what in gaps(verdict))


def test_ordinary_screenshot_metadata_raises_nothing(engine: Engine) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "gnome-screenshot 41.0")
    info.add_text("Creation Time", "2026-03-02 10:15:31")
    info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
                  'exif:PixelXDimension="1366" exif:PixelYDimension="768" tiff:Orientation="1"/></rdf:RDF>'
                  "</x:xmpmeta>")
    png = saved(blank(), "PNG", pnginfo=info, dpi=(144, 144))
    exif = Image.Exif()
    exif[0x0132] = "2026:03:02 10:15:31"  # DateTime
    exif[0x0131] = "Medilogic 2.1 (build 20260302101531)"  # Software
    jpeg = saved(blank(), "JPEG", exif=exif.tobytes())
    for name, data in (("capture.png", png), ("capture.jpg", jpeg)):
        verdict = engine.check_file(proof_file(f"INS.1.1.1/{name}", data))
        assert [f.rule for f in verdict.findings if f.rule.startswith("pii.") and f.rule != "pii.not-inspected"] == []


def test_blob_text_reads_utf8_xmp_and_binary_runs_in_both_utf16_orders() -> None:
    assert metatext.blob_text(b"<x:xmpmeta><a>un</a><b>deux</b></x:xmpmeta>").split() == ["un", "deux"]
    binary = b"\x00\x01\x02" + "Marie NIR".encode("utf-16-le") + b"\xff\xfe\x00" + "Paul NSS".encode("utf-16-be")
    assert set(metatext.blob_text(binary).splitlines()) >= {"Marie NIR", "Paul NSS"}
    assert metatext.blob_text(b"\x01\x02abc\x03") == ""  # runs under 4 characters are noise
    accented = "Num. sécu : 1 23".encode("utf-16-le")  # UTF-16 bytes in an ASCII tag, as some tools write
    assert "Num. sécu : 1 23" in metatext.blob_text(b"\x00\x00" + accented + b"\x00\x00").splitlines()


def test_the_french_report_names_the_place_in_french() -> None:
    from validators.model import Location

    assert describe_location(Location(entry="PNG tEXt chunk")) == "élément « bloc PNG tEXt »"
    assert describe_location(Location(entry="PDF annotations", page=2)) == "élément « annotations du PDF », page 2"
    assert describe_location(Location(entry="INS.1.1.1/capture.png")) == "élément « INS.1.1.1/capture.png »"


# -- PDF notes and bookmarks ---------------------------------------------------------------------------------


def test_a_nir_in_a_pdf_note_or_bookmark_is_found(engine: Engine) -> None:
    from pypdf import PdfWriter
    from pypdf.annotations import FreeText, Text

    writer = PdfWriter()
    writer.add_blank_page(300, 300)
    writer.add_blank_page(300, 300)
    writer.add_annotation(1, Text(text=f"Vérifier le NIR {grouped(NIRS.nir())}", rect=(10, 10, 40, 40)))
    writer.add_annotation(0, FreeText(text="Relu", rect=(10, 10, 200, 40)))
    writer.add_outline_item(title=f"Patient n° SS {NIRS.nir()}", page_number=0)
    out = io.BytesIO()
    writer.write(out)
    verdict = engine.check_file(proof_file("ANN.1.1.1/rapport.pdf", out.getvalue()))
    found = sorted((f.location.entry or "", f.location.page or 0) for f in verdict.findings if f.rule == "pii.nir")
    assert found == [("PDF annotations", 2), ("PDF bookmarks", 0)]


def test_a_nir_removed_by_an_incremental_save_is_still_found(engine: Engine) -> None:
    from fixtures.builders import make_pdf, pdf_updated

    nir = NIRS.nir()
    original = make_pdf([f"Patient DUPONT Jean NIR : {grouped(nir)}"])
    redacted = pdf_updated(original, "Patient DUPONT Jean NIR : [masque]")
    verdict = engine.check_file(proof_file("ANN.1.1.1/rapport.pdf", redacted))
    assert [(f.location.entry, f.location.page) for f in verdict.findings if f.rule == "pii.nir"] == [
        ("PDF earlier revision 1", 1)]
    kept = pdf_updated(make_pdf([f"NIR : {grouped(nir)}"]), f"NIR : {grouped(nir)}")
    verdict = engine.check_file(proof_file("ANN.1.1.1/rapport.pdf", kept))
    assert [(f.location.entry, f.location.page) for f in verdict.findings if f.rule == "pii.nir"] == [(None, 1)]


needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def _pdf_of(image: Image.Image, text: str | None) -> bytes:
    """A one-page PDF showing ``image`` (Pillow's writer), with a text layer of ``text`` merged on it."""
    from pypdf import PdfReader, PdfWriter

    from fixtures.builders import make_pdf

    out = io.BytesIO()
    image.save(out, "PDF", resolution=96)
    if text is None:
        return out.getvalue()
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(out.getvalue())))
    writer.pages[0].merge_page(PdfReader(io.BytesIO(make_pdf([text]))).pages[0])
    merged = io.BytesIO()
    writer.write(merged)
    return merged.getvalue()


@needs_tesseract
@pytest.mark.parametrize("text", [None, "Compte rendu de test INS : capture ci-dessous"])
def test_a_nir_in_a_screenshot_inside_a_pdf_is_read(engine: Engine, text: str | None) -> None:
    from fixtures.pii_snippets import screenshot

    shot = Image.open(io.BytesIO(screenshot([NIRS.nir()], 14, seed=2, size=(900, 300)))).convert("RGB")
    verdict = engine.check_file(proof_file("ANN.1.1.1/rapport.pdf", _pdf_of(shot, text)))
    assert [child.path.rsplit(":", 1)[-1] for child in verdict.children] == ["page-1-image-1.jpg"]
    assert "pii.nir" in [f.rule for f in verdict.children[0].findings]
    assert "pii.embedded" in [f.rule for f in verdict.findings]


def test_icons_are_left_and_an_image_on_every_page_is_read_once(engine: Engine) -> None:
    from pypdf import PdfReader, PdfWriter

    logo = _pdf_of(Image.new("RGB", (300, 60), "navy"), None)
    icon = _pdf_of(Image.new("RGB", (16, 16), "red"), None)
    writer = PdfWriter()
    for source in (logo, logo, icon):
        writer.append(PdfReader(io.BytesIO(source)))
    out = io.BytesIO()
    writer.write(out)
    verdict = engine.check_file(proof_file("ANN.1.1.1/rapport.pdf", out.getvalue()))
    assert [child.path.rsplit(":", 1)[-1] for child in verdict.children] == ["page-1-image-1.jpg"]


# -- videos ------------------------------------------------------------------------------------------------------

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make setup)")


def _clip(tmp_path: Path, name: str, *options: str, inputs: tuple[str, ...] = ()) -> Path:
    target = tmp_path / name
    command = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=white:s=160x120:d=1"]
    for extra in inputs:
        command += ["-i", extra]
    subprocess.run([*command, *options, "-pix_fmt", "yuv420p", "-y", str(target)], check=True, timeout=60)
    return target


@needs_ffmpeg
def test_a_nir_in_a_video_tag_or_subtitle_track_is_found(engine: Engine, tmp_path: Path) -> None:
    tagged = _clip(tmp_path, "tagged.mp4", "-metadata", f"title=Dossier NIR {grouped(NIRS.nir())}")
    subtitles = tmp_path / "s.srt"
    subtitles.write_text(f"1\n00:00:00,000 --> 00:00:00,900\nAssuré : {grouped(NIRS.nir())}\n", encoding="utf-8")
    subtitled = _clip(tmp_path, "subtitled.mp4", "-map", "0:v", "-map", "1:s", "-c:s", "mov_text",
                      inputs=(str(subtitles),))
    for clip, place in ((tagged, "video metadata"), (subtitled, "video subtitles")):
        data = clip.read_bytes()
        verdict = engine.check_file(proof_file(f"DOC.1.1.1/{clip.name}", data, disk=clip))
        assert nir_places(verdict) == [place]


@needs_ffmpeg
def test_a_file_attached_to_a_video_is_said_not_extracted(engine: Engine, tmp_path: Path) -> None:
    attached = tmp_path / "notes.txt"
    attached.write_text("rien", encoding="utf-8")
    clip = _clip(tmp_path, "with-attachment.mkv", "-attach", str(attached), "-metadata:s:t", "mimetype=text/plain")
    verdict = engine.check_file(proof_file("DOC.1.1.1/with-attachment.mkv", clip.read_bytes(), disk=clip))
    assert any("attached to the video" in what for what in gaps(verdict))


def test_a_linearised_pdfs_first_section_is_no_earlier_revision(engine: Engine) -> None:
    from fixtures.builders import make_pdf

    body = make_pdf(["Rapport de test"]).split(b"\n", 1)[1]
    first_section = b"%PDF-1.7\n99 0 obj\n<< /Linearized 1 /L 1000 /N 1 >>\nendobj\ntrailer\n<< /Size 1 >>\n%%EOF\n"
    verdict = engine.check_file(proof_file("ANN.1.1.1/rapport.pdf", first_section + body))
    assert [f.rule for f in verdict.findings if f.rule.startswith("pii.")] == []
