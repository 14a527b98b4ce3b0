"""Screenshots through OCR: found with a region whatever the theme, unreadable images and areas reported,
hostile images bounded, a missing OCR is not run."""

from __future__ import annotations

import hashlib
import io
import shutil
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from fixtures import hostile
from fixtures.pii_snippets import NirFactory, grouped, screenshot
from fixtures.screens import Screen, available_fonts, screen
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import CheckState, FileVerdict, Severity
from validators.pii import ink, make_validators, ocr, tesseract
from validators.pii.ocrtext import Word, segment_of

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


def errors(verdict: FileVerdict) -> list[str]:
    return [f.rule for f in verdict.findings if f.severity is Severity.ERROR]


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


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


# One case per difficulty the issue names; each screen is generated (seeded) and its truth known.
THEMED = {
    "dark theme, form": dict(theme="dark", layout="form", form="grouped", font_px=13),
    "coloured banner, light text": dict(theme="coloured", layout="banner", form="grouped", font_px=12),
    "selected table row, light on colour": dict(theme="coloured", layout="table", form="grouped", font_px=13),
    "dark terminal log": dict(theme="dark", layout="terminal", form="compact", font_px=12),
    "dialog over a dimmed screen": dict(theme="light", layout="dialog", form="grouped", font_px=14),
    "HiDPI 2x capture": dict(theme="light", layout="form", form="grouped", font_px=12, scale=2),
    "HiDPI 2x, dark": dict(theme="dark", layout="banner", form="grouped", font_px=14, scale=2),
    "JPEG quality 60": dict(theme="light", layout="letter", form="grouped", font_px=13, quality=60),
    "10 px text": dict(theme="light", layout="form", form="grouped", font_px=10),
    "digits set apart by thin spaces": dict(theme="light", layout="form", form="tight", font_px=12),
    "digits in a segmented input": dict(theme="light", layout="form", form="boxes", font_px=14),
    "key in its own field": dict(theme="dark", layout="form", form="key-apart", font_px=14),
}


@pytest.mark.parametrize("case", list(THEMED), ids=list(THEMED))
def test_a_nir_is_found_whatever_the_theme_and_layout(engine: Engine, case: str) -> None:
    params = THEMED[case]
    shown: Screen = screen(13, list(THEMED).index(case), positive=True, quality=params.pop("quality", False),
                           **params)  # type: ignore[arg-type]
    verdict = engine.check_file(proof_file(f"INS.1.1.1/capture.{shown.extension}", shown.data))
    personal = [f for f in verdict.findings if f.rule in ("pii.nir", "pii.nia")]
    assert personal, f"no NIR found ({shown.layout}, {shown.theme}, {shown.font}, {shown.font_px} px)"
    (value,) = shown.values
    assert personal[0].evidence == f"{value[0]} ** ** ** *** *** {value[13:]}"
    region = personal[0].location.region
    assert region is not None and overlaps(region, shown.boxes[0])


# A sidebar beside a notes pane, rows aligned: read across the screen, a menu word falls between the two
# lines of a wrapped NIR; read column by column, they follow each other.
PANES = {
    "light, grouped, wrapped": dict(theme="light", form="grouped", font_px=14),
    "dark, compact, wrapped": dict(theme="dark", form="compact", font_px=13),
    "coloured, hyphens, wrapped": dict(theme="coloured", form="hyphens", font_px=12),
    "HiDPI 2x, mono, wrapped": dict(theme="light", form="grouped", font_px=17, scale=2, font="dejavu-mono"),
}


@pytest.mark.parametrize("case", list(PANES), ids=list(PANES))
def test_a_nir_wrapped_in_a_pane_beside_a_sidebar_is_found(engine: Engine, case: str) -> None:
    params = dict(PANES[case])
    params.setdefault("scale", 1)
    if params.get("font", "dejavu") not in available_fonts():
        pytest.skip(f"font {params['font']} is not installed")
    shown = screen(29, list(PANES).index(case), positive=True, layout="pane", quality=False,
                   **params)  # type: ignore[arg-type]
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", shown.data))
    personal = [f for f in verdict.findings if f.rule in ("pii.nir", "pii.nia")]
    assert len(personal) == 1, f"{len(personal)} NIR findings ({shown.theme}, {shown.font}, {shown.font_px} px)"
    (value,) = shown.values
    assert personal[0].evidence == f"{value[0]} ** ** ** *** *** {value[13:]}"
    region = personal[0].location.region
    assert region is not None and any(overlaps(region, box) for box in shown.boxes)


def test_a_wrong_key_wrapped_in_a_pane_is_no_error(engine: Engine) -> None:
    shown = screen(29, 9, positive=False, form="wrong-key", layout="pane", quality=False, scale=1)
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", shown.data))
    assert not [r for r in errors(verdict) if r.startswith("pii.")]


NEAR_MISSES = ("wrong-key", "masked", "fictitious", "phone", "siret", "iban", "local-id")


@pytest.mark.parametrize("form", NEAR_MISSES)
def test_near_misses_on_screen_are_not_errors(engine: Engine, form: str) -> None:
    shown = screen(17, NEAR_MISSES.index(form), positive=False, form=form, layout="form", quality=False, scale=1)
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", shown.data))
    assert not [r for r in errors(verdict) if r.startswith("pii.")]


def test_digit_groups_ocr_cuts_anywhere_are_rejoined() -> None:
    # Tesseract reading "1 85 05 78 006 084 36" as "18505 78006 08436": the cluster is NIR-long.
    value = NirFactory(4).nir()
    pieces = [value[:5], value[5:11], value[11:]]
    words, x = [], 100
    for piece in pieces:
        words.append(Word(piece, x, 50, len(piece) * 10, 14, 90.0))
        x += len(piece) * 10 + 8
    text = segment_of([Word("NIR", 20, 50, 40, 14, 95.0), *words], 1.0, ocr.NO_LOCATION).text
    assert value in text
    # Two numbers far apart on a line stay apart.
    apart = [Word(value[:7], 100, 50, 70, 14, 90.0), Word(value[7:], 400, 50, 80, 14, 90.0)]
    assert value not in segment_of(apart, 1.0, ocr.NO_LOCATION).text


def test_ink_is_dark_on_white_whatever_the_polarity() -> None:
    light = Image.new("L", (200, 60), 245)
    ImageDraw.Draw(light).text((10, 20), "1 85 05 78", fill=20)
    dark = Image.eval(light, lambda v: 255 - v)
    coloured = Image.new("L", (200, 60), 110)  # a mid-grey banner with white text
    ImageDraw.Draw(coloured).text((10, 20), "1 85 05 78", fill=255)
    masks = []
    for image in (light, dark, coloured):
        page = ink.normalised(ink.ink_map(np.asarray(image), 5), 8)
        assert page[0:10].min() > 200  # flat ground comes out white
        masks.append(page < 128)
    assert (masks[0] == masks[1]).mean() > 0.99 and (masks[0] == masks[2]).mean() > 0.99


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_a_picture_on_its_side_is_read_turned_and_placed_in_its_own_pixels(engine: Engine, shot: Shot,
                                                                           angle: int) -> None:
    upright = engine.check_file(proof_file("INS.1.1.1/capture.png", shot.png))
    regions = sorted(f.location.region for f in upright.findings if f.rule == "pii.nir" and f.location.region)
    picture = Image.open(io.BytesIO(shot.png))
    turned = engine.check_file(proof_file("INS.1.1.1/photo.png", png(picture.rotate(angle, expand=True))))
    found = [f.location.region for f in turned.findings if f.rule == "pii.nir"]
    assert len(found) == len(regions) == len(shot.values)
    width, height = picture.size
    for x, y, w, h in regions:  # where each value is once the picture is turned (counter-clockwise)
        expected = {90: (y, width - x - w, h, w), 180: (width - x - w, height - y - h, w, h),
                    270: (height - y - h, x, h, w)}[angle]
        assert any(region is not None and overlaps(region, expected) for region in found)


def test_a_tiny_image_is_not_readable_never_clean(engine: Engine) -> None:
    verdict = engine.check_file(proof_file("mini.png", png(Image.new("RGB", (60, 18), "white"))))
    assert [f.rule for f in verdict.findings] == ["pii.not-readable"]
    assert state(verdict) is CheckState.PARTIAL


def test_a_blurred_screenshot_is_not_readable(engine: Engine, shot: Shot) -> None:
    blurred = Image.open(io.BytesIO(shot.png)).filter(ImageFilter.GaussianBlur(4))
    verdict = engine.check_file(proof_file("flou.png", png(blurred)))
    assert "pii.not-readable" in {f.rule for f in verdict.findings}
    assert state(verdict) is CheckState.PARTIAL


def test_text_ocr_could_not_read_is_reported_with_its_area(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = screen(21, 0, positive=True, layout="form", theme="light", form="grouped", font_px=14, scale=1,
                   quality=False)
    box = shown.boxes[0]
    real = tesseract.read_words

    def blind_over_the_value(image: Image.Image, psm: int, timeout: float) -> list[Word]:
        # OCR failing on one area (a font, a glare, a pattern it cannot read): it returns nothing there.
        found = real(image, psm, timeout)
        if psm != 11:  # the second look: only the blind area is read there
            return [w for w in found if not any(c.isalnum() for c in w.text)]
        scale = image.width / Image.open(io.BytesIO(shown.data)).width
        return [w for w in found if not overlaps((round(w.left / scale), round(w.top / scale),
                                                  round(w.width / scale), round(w.height / scale)), box)]

    monkeypatch.setattr(ocr, "read_words", blind_over_the_value)
    monkeypatch.setattr(tesseract, "read_words", blind_over_the_value)
    verdict = engine.check_file(proof_file("capture.png", shown.data))
    unread = [f for f in verdict.findings if f.rule == "pii.not-readable"]
    assert unread and unread[0].severity is Severity.WARNING
    assert any(f.location.region is not None and overlaps(f.location.region, box) for f in unread)
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


def test_an_undecodable_image_could_not_be_checked(engine: Engine) -> None:
    data = png(Image.new("RGB", (800, 600), "white"))[:60]
    verdict = engine.check_file(proof_file("cassee.png", data))
    assert [f.rule for f in verdict.findings] == ["system.check-not-run"]
    assert state(verdict) is CheckState.NOT_RUN


def test_a_30000_pixel_square_image_is_refused_quickly(engine: Engine) -> None:
    bomb = hostile.png(30000, 30000, pixels=b"\0" * 64)  # the header declares 900 megapixels
    started = time.monotonic()
    verdict = engine.check_file(proof_file("geante.png", bomb))
    assert time.monotonic() - started < 5
    assert [f.rule for f in verdict.findings] == ["system.check-not-run"]
    assert "pixels" in verdict.findings[0].message
    assert state(verdict) is CheckState.NOT_RUN


def test_an_image_over_the_ocr_limit_is_not_decoded(engine: Engine) -> None:
    big = hostile.png(8000, 6000, pixels=b"\0" * 64)  # 48 MP: under Pillow's bomb limit, over OCR's
    verdict = engine.check_file(proof_file("grande.png", big))
    assert [f.rule for f in verdict.findings] == ["system.check-not-run"]
    assert "8000x6000" in verdict.findings[0].message


def test_no_digits_of_a_found_nir_reach_the_report(engine: Engine) -> None:
    shown = screen(23, 0, positive=True, layout="banner", theme="coloured", form="compact", font_px=14,
                   quality=False)
    verdict = engine.check_file(proof_file("INS.1.1.1/capture.png", shown.data))
    (value,) = shown.values
    assert any(f.rule in ("pii.nir", "pii.nia") for f in verdict.findings)
    text = repr(verdict.findings)
    assert value not in text and value[1:13] not in text and grouped(value) not in text
