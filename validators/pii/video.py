"""Videos: frames sampled with ffmpeg (subprocess, bounded) and read by OCR.

Screen recordings are mostly still: a frame is OCR'd only when it differs from the last one read,
which keeps a 10-minute recording within the time budget. One frame every ``FRAME_INTERVAL`` seconds
counts as full coverage (a value shown for less time could not be read by a viewer either); whatever
falls outside that (longer videos, frames past the time budget, the audio track, an undecodable
stream) is named in ``Extraction.not_inspected``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops

from validators.model import Location
from validators.pii.ocr import ocr_frame, tesseract_problem
from validators.pii.segments import Extraction

FRAME_INTERVAL = 2.0
MAX_FRAMES = 300
MAX_WIDTH = 1920
MAX_VIDEO_BYTES = 2 * 1024 * 1024 * 1024
PROBE_TIMEOUT = 20.0
OCR_RESERVE = 8.0  # seconds kept back at the end of the budget to report cleanly
# Two frames are "the same screen" when no pixel of their thumbnails differs by more than this: a new
# line of text changes a few thumbnail pixels strongly, compression noise changes many a little.
SAME_FRAME = 40
THUMBNAIL = (320, 180)

CheckTime = Callable[[], None]
TimeLeft = Callable[[], float]


def ffmpeg_problem() -> str | None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        return "ffmpeg is not installed (Debian: ffmpeg)"
    return tesseract_problem()


def _probe(path: Path) -> tuple[float, int, int, bool]:
    """Duration (s), width, height of the first video stream, and whether there is an audio track."""
    done = subprocess.run(
        [
            "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height",
            "-of", "json", str(path),
        ],
        capture_output=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )
    info = json.loads(done.stdout or b"{}")
    streams = info.get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video" and s.get("width")]
    if not videos:
        raise ValueError("no decodable video stream")
    duration = float(info.get("format", {}).get("duration") or 0.0)
    audio = any(s.get("codec_type") == "audio" for s in streams)
    return duration, int(videos[0]["width"]), int(videos[0]["height"]), audio


def _frame_size(width: int, height: int) -> tuple[int, int]:
    if width <= MAX_WIDTH:
        return width - width % 2, height - height % 2
    scaled = round(height * MAX_WIDTH / width)
    return MAX_WIDTH, scaled - scaled % 2


def _thumbnail(frame: Image.Image) -> Image.Image:
    return frame.resize(THUMBNAIL, Image.Resampling.BOX)


def _changed(previous: Image.Image | None, current: Image.Image) -> bool:
    if previous is None:
        return True
    changed = ImageChops.difference(previous, current).point(lambda v: 255 if v > SAME_FRAME else 0)
    return changed.getbbox() is not None


def video_text(
    source: bytes | Path, base: Location, check_time: CheckTime, time_left: TimeLeft
) -> Extraction:
    problem = ffmpeg_problem()
    if problem is not None:
        return Extraction(not_run=problem)
    if isinstance(source, Path):
        return _video_file(source, base, check_time, time_left)
    if len(source) > MAX_VIDEO_BYTES:
        return Extraction(not_inspected=["the video is over the size limit for frame sampling"])
    with tempfile.TemporaryDirectory(prefix="proofcheck-pii-") as folder:
        path = Path(folder) / "video"
        path.write_bytes(source)
        return _video_file(path, base, check_time, time_left)


def _video_file(path: Path, base: Location, check_time: CheckTime, time_left: TimeLeft) -> Extraction:
    out = Extraction()
    try:
        duration, width, height, audio = _probe(path)
    except (ValueError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        out.not_inspected.append("the video stream could not be decoded (no frame was inspected)")
        return out
    if audio:
        out.not_inspected.append("the audio track (speech is not transcribed)")
    frame_w, frame_h = _frame_size(width, height)
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-i", str(path),
        "-vf", f"fps=1/{FRAME_INTERVAL},scale={frame_w}:{frame_h}",
        "-frames:v", str(MAX_FRAMES), "-pix_fmt", "gray", "-f", "rawvideo", "-",
    ]
    frame_bytes = frame_w * frame_h
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    previous: Image.Image | None = None
    frames = read = 0
    unreadable: list[float] = []
    skipped_from: float | None = None
    try:
        assert process.stdout is not None
        while True:
            check_time()
            raw = process.stdout.read(frame_bytes)
            if len(raw) < frame_bytes:
                break
            at = frames * FRAME_INTERVAL
            frames += 1
            frame = Image.frombytes("L", (frame_w, frame_h), raw)
            thumb = _thumbnail(frame)
            if not _changed(previous, thumb):
                continue
            if time_left() < OCR_RESERVE:
                skipped_from = at if skipped_from is None else skipped_from
                continue
            found = ocr_frame(frame, Location(time=at), timeout=max(1.0, time_left() - OCR_RESERVE))
            read += 1
            previous = thumb
            for segment in found.segments:
                segment.base = Location(entry=base.entry, time=at)
            out.segments.extend(found.segments)
            if found.not_readable:
                unreadable.append(at)
            if found.not_run:
                out.not_inspected.append(f"frame at {at:.0f} s ({found.not_run})")
    finally:
        process.kill()
        process.wait(timeout=10)
    # Transitions and scrolling blur some frames; only a mostly unreadable video is reported as such.
    if unreadable and len(unreadable) * 2 > read:
        out.not_readable.append(f"{len(unreadable)} of {read} distinct frames could not be read reliably")
    if frames == 0:
        out.not_inspected.append("no frame could be decoded from the video")
    if skipped_from is not None:
        out.not_inspected.append(f"frames from {skipped_from:.0f} s on (time limit of the check)")
    if duration > MAX_FRAMES * FRAME_INTERVAL:
        out.not_inspected.append(f"frames after {MAX_FRAMES * FRAME_INTERVAL:.0f} s (frame limit)")
    return out


__all__ = ["FRAME_INTERVAL", "MAX_FRAMES", "ffmpeg_problem", "video_text"]
