"""Videos: sampled frames are OCR'd (finding with a time), what is not inspected is said."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.pii_snippets import NirFactory, screenshot
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import CheckState, FileVerdict
from validators.pii import make_validators
from validators.pii.video import ffmpeg_problem

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or ffmpeg_problem() is not None,
    reason="ffmpeg and tesseract (Debian packages ffmpeg, tesseract-ocr-fra) are needed for video frames",
)


def make_video(folder: Path, frames: list[bytes], seconds_each: float, audio: bool = False) -> bytes:
    """An H.264/MPEG-4 video showing each PNG for ``seconds_each`` seconds."""
    inputs: list[str] = []
    for index, png in enumerate(frames):
        path = folder / f"frame{index}.png"
        path.write_bytes(png)
        inputs += ["-loop", "1", "-t", str(seconds_each), "-i", str(path)]
    concat = "".join(f"[{i}:v]" for i in range(len(frames))) + f"concat=n={len(frames)}:v=1:a=0[v]"
    extra = ["-f", "lavfi", "-t", str(seconds_each * len(frames)), "-i", "anullsrc"] if audio else []
    out = folder / "video.mp4"
    command = ["ffmpeg", "-v", "error", "-y", *inputs, *extra, "-filter_complex", concat, "-map", "[v]"]
    if audio:
        command += ["-map", f"{len(frames)}:a", "-shortest"]
    command += ["-r", "5", "-pix_fmt", "yuv420p", "-c:v", "mpeg4", "-q:v", "2", str(out)]
    subprocess.run(command, check=True, timeout=120)
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
    data = make_video(tmp_path, [blank, shown, blank], seconds_each=4)
    verdict = engine.check_file(proof_file("INS.1.1.1/demo.mp4", data))
    (finding,) = [f for f in verdict.findings if f.rule == "pii.nir"]
    assert finding.location.time is not None and 3.0 <= finding.location.time <= 8.0
    assert finding.location.region is not None
    assert state(verdict) is CheckState.RAN


def test_an_audio_track_is_named_as_not_inspected(engine: Engine, tmp_path: Path) -> None:
    data = make_video(tmp_path, [screenshot([], 14, size=(640, 360))], seconds_each=2, audio=True)
    verdict = engine.check_file(proof_file("son.mp4", data))
    assert [f.rule for f in verdict.findings] == ["pii.not-inspected"]
    assert "audio" in verdict.findings[0].message
    assert state(verdict) is CheckState.PARTIAL


def test_an_undecodable_video_is_not_inspected(engine: Engine, tmp_path: Path) -> None:
    data = make_video(tmp_path, [screenshot([], 14, size=(640, 360))], seconds_each=2)
    verdict = engine.check_file(proof_file("cassee.mp4", data[:2000]))
    assert "pii.not-inspected" in {f.rule for f in verdict.findings}
    assert state(verdict) is CheckState.PARTIAL
