"""What 2D codes encode: a NIR in a DataMatrix (fields glued as 2D-Doc writes them), in a QR code, in a
screenshot, a PDF page or a screen recording is found and placed; a code without one raises nothing."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pii_support import proof_file
from PIL import Image

from fixtures.pii_snippets import NirFactory, screenshot
from validators.engine import Engine
from validators.model import FileVerdict
from validators.pii import barcodes, make_validators
from validators.report.html import describe_location

zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed (make setup)")
NIRS = NirFactory(4122026)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(make_validators({}))


def code(text: str, kind: str = "DataMatrix", scale: int = 5) -> Image.Image:
    made = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, kind))
    return Image.fromarray(np.asarray(made.to_image(scale=scale))).convert("RGB")


def on_screen(picture: Image.Image, at: tuple[int, int] = (900, 420)) -> Image.Image:
    screen = Image.open(io.BytesIO(screenshot([], 13, seed=9, size=(1366, 768)))).convert("RGB")
    screen.paste(picture, at)
    return screen


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def nir_findings(verdict: FileVerdict) -> list[tuple[str | None, tuple[int, int, int, int] | None]]:
    return [(f.location.entry, f.location.region) for f in verdict.findings if f.rule == "pii.nir"]


def test_a_nir_glued_in_a_2d_doc_datamatrix_on_a_screen_is_found_where_the_code_is(engine: Engine) -> None:
    content = f"DC04FR0000011E8A1E8AB201\x1dS1{NIRS.nir()}\x1dS2DUPONT\x1dS3JEAN"
    verdict = engine.check_file(proof_file("INS.4.1.2/capture.png", png(on_screen(code(content)))))
    [(entry, region)] = nir_findings(verdict)
    assert entry == "DataMatrix code"
    assert region is not None and abs(region[0] - 900) < 30 and abs(region[1] - 420) < 30


def test_a_qr_code_and_a_code_inside_a_pdf_page_are_read(engine: Engine) -> None:
    qr = engine.check_file(proof_file("INS.1.1.1/qr.png", png(on_screen(code(f"NIR {NIRS.nir()}", "QRCode", 4)))))
    assert [entry for entry, _ in nir_findings(qr)] == ["QRCode code"]
    page = io.BytesIO()
    on_screen(code(f"S1{NIRS.nir()}")).save(page, "PDF", resolution=96)
    verdict = engine.check_file(proof_file("ANN.1.1.1/courrier.pdf", page.getvalue()))
    assert [entry for entry, _ in nir_findings(verdict.children[0])] == ["DataMatrix code"]


def test_a_code_without_a_nir_raises_nothing_and_the_place_reads_in_french(engine: Engine) -> None:
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", png(on_screen(code("https://esante.gouv.fr/",
                                                                                        "QRCode", 4)))))
    assert [f.rule for f in verdict.findings if f.rule.startswith("pii.") and f.rule != "pii.not-readable"] == []
    from validators.model import Location

    assert describe_location(Location(entry="DataMatrix code")) == "élément « code DataMatrix »"


def test_a_qr_code_without_a_declared_character_set_is_read_as_utf8(engine: Engine) -> None:
    # zxing-cpp guesses Shift_JIS for undeclared bytes: UTF-8 "n°" became "nｰ" and the label was lost.
    qr = code(f"n°SS : {NIRS.nir()[:13]}", "QRCode", 4)
    verdict = engine.check_file(proof_file("INS.1.1.1/qr.png", png(on_screen(qr))))
    assert [f.rule for f in verdict.findings if f.rule.startswith("pii.nir")] == ["pii.nir-body"]


def test_only_runs_longer_than_a_nir_are_cut_into_windows() -> None:
    assert barcodes._windows("S1" + "1" * 15) == ["1" * 15]  # a 17-character field: "S1" + 15 digits
    assert barcodes._windows("A" + "1234567890123456") == ["123456789012345", "234567890123456"]
    assert barcodes._windows("123456789012345 and 42") == []  # a NIR-long run is scanned as it is


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make setup)")
def test_a_code_shown_in_a_screen_recording_is_read(engine: Engine, tmp_path: Path) -> None:
    still = tmp_path / "screen.png"
    still.write_bytes(png(on_screen(code(f"S1{NIRS.nir()}"))))
    clip = tmp_path / "recording.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-loop", "1", "-i", str(still), "-t", "2", "-r", "4",
                    "-pix_fmt", "yuv420p", "-crf", "18", "-y", str(clip)], check=True, timeout=120)
    verdict = engine.check_file(proof_file("DOC.1.1.1/recording.mp4", clip.read_bytes(), disk=clip))
    assert [entry for entry, _ in nir_findings(verdict)] == ["DataMatrix code"]
