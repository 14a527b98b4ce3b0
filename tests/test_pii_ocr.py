"""Screenshots through OCR: found with a region, unreadable images reported, a missing OCR is not run."""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import dataclass, field

import pytest
from PIL import Image, ImageFilter

from fixtures.pii_snippets import NirFactory, screenshot
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import CheckState, FileVerdict
from validators.pii import make_validators, ocr

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None or ocr.tesseract_problem() is not None,
    reason="tesseract with French data is not installed (make setup installs tesseract-ocr-fra)",
)


def proof_file(path: str, data: bytes) -> ProofFile:
    return ProofFile(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=sniff.media_type(data),
        data=data,
    )


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(make_validators({}))


@dataclass(frozen=True)
class Shot:
    # Kept out of repr: a failing assertion must not print the identifiers.
    png: bytes = field(repr=False)
    values: tuple[str, ...] = field(repr=False)


@pytest.fixture(scope="module")
def shot() -> Shot:
    factory = NirFactory(3)
    values = (factory.nir(), factory.nir())
    return Shot(screenshot(list(values), 14, seed=1, size=(1366, 300)), values)


def state(verdict: FileVerdict) -> CheckState:
    return next(c.state for c in verdict.checks if c.name == "pii")


def test_a_nir_in_a_screenshot_is_found_with_its_region(engine: Engine, shot: Shot) -> None:
    data, values = shot.png, shot.values
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", data))
    found = [f for f in verdict.findings if f.rule == "pii.nir"]
    assert len(found) == len(values)
    for finding in found:
        assert finding.location.region is not None and finding.location.span is None
        x, y, w, h = finding.location.region
        assert 0 <= x < 1366 and 0 <= y < 300 and w > 50 and 5 < h < 60
    assert {f.evidence for f in found} == {f"{v[0]} ** ** ** *** *** {v[13:]}" for v in values}
    assert state(verdict) is CheckState.RAN


def test_a_tiny_image_is_not_readable_never_clean(engine: Engine) -> None:
    verdict = engine.check_file(proof_file("mini.png", png(Image.new("RGB", (60, 18), "white"))))
    assert [f.rule for f in verdict.findings] == ["pii.not-readable"]
    assert state(verdict) is CheckState.PARTIAL


def test_a_blurred_screenshot_is_not_readable(engine: Engine, shot: Shot) -> None:
    blurred = Image.open(io.BytesIO(shot.png)).filter(ImageFilter.GaussianBlur(4))
    verdict = engine.check_file(proof_file("flou.png", png(blurred)))
    assert "pii.not-readable" in {f.rule for f in verdict.findings}
    assert state(verdict) is CheckState.PARTIAL


def test_a_blank_screen_is_clean(engine: Engine) -> None:
    verdict = engine.check_file(proof_file("vide.png", png(Image.new("RGB", (800, 600), "white"))))
    assert verdict.findings == ()
    assert state(verdict) is CheckState.RAN


def test_missing_ocr_makes_the_check_not_run(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "tesseract_problem", lambda: "tesseract is not installed")
    verdict = engine.check_file(proof_file("capture.png", png(Image.new("RGB", (800, 600), "white"))))
    assert state(verdict) is CheckState.NOT_RUN
    assert [f.rule for f in verdict.findings] == ["system.check-not-run"]


def test_an_undecodable_image_is_not_inspected(engine: Engine) -> None:
    data = png(Image.new("RGB", (800, 600), "white"))[:60]
    verdict = engine.check_file(proof_file("cassee.png", data))
    assert "pii.not-inspected" in {f.rule for f in verdict.findings}
