"""Videos: frames chosen by change are OCR'd (finding with a time), what is not inspected is said with
how much was covered, an undecodable video could not be checked."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fixtures.pii_snippets import NirFactory, screenshot
from fixtures.screens import screen
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import CheckState, FileVerdict, Location
from validators.pii import make_validators
from validators.pii.video import changed_cells, ffmpeg_problem, video_text

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or ffmpeg_problem() is not None,
    reason="ffmpeg and tesseract (Debian packages ffmpeg, tesseract-ocr-fra) are needed for video frames",
)


def make_video(
    folder: Path, frames: list[bytes], seconds: list[float] | float, audio: bool = False, fps: int = 5,
    codec: tuple[str, ...] = ("-c:v", "mpeg4", "-q:v", "2"),
) -> bytes:
    """A video showing each PNG for its number of seconds (``-movflags +faststart``: index first)."""
    durations = seconds if isinstance(seconds, list) else [seconds] * len(frames)
    inputs: list[str] = []
    for index, (png, duration) in enumerate(zip(frames, durations, strict=True)):
        path = folder / f"frame{index}.png"
        path.write_bytes(png)
        inputs += ["-loop", "1", "-framerate", str(fps), "-t", str(duration), "-i", str(path)]
    concat = "".join(f"[{i}:v]" for i in range(len(frames))) + f"concat=n={len(frames)}:v=1:a=0[v]"
    extra = ["-f", "lavfi", "-t", str(sum(durations)), "-i", "anullsrc"] if audio else []
    out = folder / "video.mp4"
    command = ["ffmpeg", "-v", "error", "-y", *inputs, *extra, "-filter_complex", concat, "-map", "[v]"]
    if audio:
        command += ["-map", f"{len(frames)}:a", "-shortest"]
    command += ["-r", str(fps), "-pix_fmt", "yuv420p", *codec, "-movflags", "+faststart", str(out)]
    subprocess.run(command, check=True, timeout=300)
    return out.read_bytes()


def proof_file(path: str, data: bytes) -> ProofFile:
    return ProofFile(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=sniff.media_type(data),
        data=data,
    )


def state(verdict: FileVerdict) -> CheckState:
    return next(c.state for c in verdict.checks if c.name == "pii")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(make_validators({}))


def test_a_nir_shown_in_the_middle_of_a_video_is_found_with_its_time(engine: Engine, tmp_path: Path) -> None:
    blank = screenshot([], 14, size=(1280, 720))
    shown = screenshot([NirFactory(8).nir()], 14, seed=2, size=(1280, 720))
    data = make_video(tmp_path, [blank, shown, blank], seconds=4)
    verdict = engine.check_file(proof_file("INS.1.1.1/demo.mp4", data))
    (finding,) = [f for f in verdict.findings if f.rule == "pii.nir"]
    assert finding.location.time is not None and 3.0 <= finding.location.time <= 8.0
    assert finding.location.region is not None
    assert state(verdict) is CheckState.RAN


def test_a_nir_visible_for_one_second_of_a_1080p_recording_is_found(engine: Engine, tmp_path: Path) -> None:
    # The identity form of a screen recording: the NIR field is filled for exactly 1 s, then emptied.
    before = screen(31, 0, positive=True, layout="form", theme="light", form="grouped", font_px=14,
                    size=(1920, 1080), scale=1, quality=False, blank=True)
    during = screen(31, 0, positive=True, layout="form", theme="light", form="grouped", font_px=14,
                    size=(1920, 1080), scale=1, quality=False)
    data = make_video(tmp_path, [before.data, during.data, before.data], [2.6, 1.0, 2.4], fps=30,
                      codec=("-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage"))
    verdict = engine.check_file(proof_file("INS.1.1.1/enregistrement.mp4", data))
    (finding,) = [f for f in verdict.findings if f.rule in ("pii.nir", "pii.nia")]
    (value,) = during.values
    assert finding.evidence == f"{value[0]} ** ** ** *** *** {value[13:]}"
    assert finding.location.time is not None and 2.5 <= finding.location.time <= 3.6
    x, y, w, h = finding.location.region or (0, 0, 0, 0)
    bx, by, bw, bh = during.boxes[0]
    assert x < bx + bw and bx < x + w and y < by + bh and by < y + h
    assert state(verdict) is CheckState.RAN


def test_an_audio_track_is_named_as_not_inspected(engine: Engine, tmp_path: Path) -> None:
    data = make_video(tmp_path, [screenshot([], 14, size=(640, 360))], seconds=2, audio=True)
    verdict = engine.check_file(proof_file("son.mp4", data))
    assert [f.rule for f in verdict.findings] == ["pii.not-inspected"]
    assert "audio" in verdict.findings[0].message
    assert state(verdict) is CheckState.PARTIAL


def test_an_undecodable_video_could_not_be_checked(engine: Engine, tmp_path: Path) -> None:
    data = make_video(tmp_path, [screenshot([], 14, size=(640, 360))], seconds=2)
    verdict = engine.check_file(proof_file("cassee.mp4", data[:2000]))
    assert [f.rule for f in verdict.findings] == ["system.check-not-run"]
    assert "decoded" in verdict.findings[0].message
    assert state(verdict) is CheckState.NOT_RUN


def test_random_bytes_named_as_a_video_could_not_be_checked(engine: Engine) -> None:
    noise = np.random.default_rng(3).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    file = ProofFile(path="bruit.mp4", size=len(noise), sha256=hashlib.sha256(noise).hexdigest(),
                     media_type="video/mp4", data=noise)
    verdict = engine.check_file(file)
    assert [f.rule for f in verdict.findings] == ["system.check-not-run"]


def test_a_video_cut_short_says_how_much_was_sampled(engine: Engine, tmp_path: Path) -> None:
    frames = [screenshot([], 14, seed=i, size=(640, 360)) for i in range(4)]
    data = make_video(tmp_path, frames, seconds=3)  # 12 s, index first: the cut loses the end only
    verdict = engine.check_file(proof_file("coupee.mp4", data[: len(data) // 2]))
    gaps = [f for f in verdict.findings if f.rule == "pii.not-inspected"]
    assert gaps and "of 12 s were sampled" in gaps[0].message
    assert state(verdict) is CheckState.PARTIAL


def test_a_time_budget_spent_says_how_much_was_sampled(tmp_path: Path) -> None:
    frames = [screenshot([], 14, seed=i, size=(640, 360)) for i in range(3)]
    path = tmp_path / "longue.mp4"
    path.write_bytes(make_video(tmp_path, frames, seconds=4))
    budget = iter([60.0] * 40 + [1.0] * 1000)  # the check's time runs out after the first reads
    found = video_text(path, Location(), lambda: None, lambda: next(budget))
    assert any("sampled before the check's time limit" in gap and "of 12 s" in gap for gap in found.not_inspected)


def test_changes_are_told_from_compression_noise() -> None:
    rng = np.random.default_rng(5)
    before = np.full((270, 480), 240, dtype=np.int16)
    noisy = before + rng.integers(-10, 11, before.shape).astype(np.int16)
    assert not changed_cells(before, noisy).any()
    typed = before.copy()
    typed[100:108, 200:260] = 30  # a word appears
    cells = changed_cells(before, typed)
    assert cells.any() and cells.sum() >= 3

