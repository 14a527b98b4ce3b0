"""Videos: frames sampled with ffmpeg (subprocess, bounded), what each shows anew read by OCR.

ffmpeg decodes the whole stream and hands over ``SAMPLE_RATE`` grey frames per second. Screen
recordings are mostly still, so a frame is read only where it differs from what was last read: the
changed bands of the screen (full width, so that a label stays with its value), or the whole frame
when much changed (a new screen, a scroll). A change is read once the screen has settled (nothing
word-sized moved between two samples: a pointer may) or after ``SETTLE_WAIT`` at most, so that a
value shown for one second is read while it is shown; changes smaller than a word (a caret, the
pointer) wait until they persist. On top of that a bounded regular sample reads the whole frame every
``REGULAR_INTERVAL`` seconds if anything at all moved, for changes too faint for the detector.

What could not be looked at is said with how much was covered: a video that cannot be decoded at all
is not inspected (the check did not run: an error), a stream that ends early or a time budget spent
before the end leave a partial coverage (a warning naming the seconds sampled).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from validators.model import Location
from validators.pii import ink, metatext
from validators.pii.barcodes import code_segments
from validators.pii.ocr import Placement, ocr_frame, tesseract_problem
from validators.pii.segments import Extraction
from validators.pii.videometa import video_metadata

SAMPLE_RATE = 4.0  # frames handed over per second: a value shown for 1 s is seen settled at least twice
MAX_WIDTH = 1920  # larger videos are decoded at this width
MAX_SOURCE_PIXELS = 36_000_000  # 8K; a larger frame is refused before ffmpeg allocates it
MAX_VIDEO_BYTES = 2 * 1024 * 1024 * 1024
PROBE_TIMEOUT = 20.0
OCR_RESERVE = 8.0  # seconds kept back at the end of the budget to report cleanly
CHANGE_LEVEL = 24  # grey difference that counts as a change (compression noise stays under it)
FAINT_LEVEL = 8  # ... and the one the regular sample looks for
CELL = 8  # change cells, in pixels of the half-size comparison image (16 px of a full frame)
CELL_PIXELS = 3  # changed pixels that make a cell changed
WORD_CELLS = 3  # a change this many cells wide is a word or more: read as soon as the screen settles
SETTLE_WAIT = 1.0  # seconds a change waits for the screen to settle before it is read anyway
FULL_FRAME_SHARE = 0.4  # bands taller than this share of the frame: the whole frame is read
REGULAR_INTERVAL = 30.0
MAX_REGULAR_READS = 20
MAX_UNREAD_AREAS = 5
MIN_DECODED = 1.0  # seconds: a video decoded for less than this (or its whole length) was not seen

CheckTime = Callable[[], None]
TimeLeft = Callable[[], float]


def ffmpeg_problem() -> str | None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        return "ffmpeg is not installed (Debian: ffmpeg)"
    return tesseract_problem()


@dataclass(frozen=True)
class Probe:
    duration: float
    width: int
    height: int
    audio: bool


def _probe(path: Path) -> Probe:
    """Duration (s), size of the first video stream, and whether there is an audio track."""
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
    return Probe(duration, int(videos[0]["width"]), int(videos[0]["height"]), audio)


def _frame_size(width: int, height: int) -> tuple[int, int]:
    if width <= MAX_WIDTH:
        return width - width % 2, height - height % 2
    scaled = round(height * MAX_WIDTH / width)
    return MAX_WIDTH, scaled - scaled % 2


def video_text(
    source: bytes | Path, base: Location, check_time: CheckTime, time_left: TimeLeft
) -> Extraction:
    problem = ffmpeg_problem()
    if problem is not None:
        return Extraction(not_run=problem)
    if isinstance(source, Path):
        return _video_file(source, base, check_time, time_left)
    if len(source) > MAX_VIDEO_BYTES:
        return Extraction(not_run="the video is over the size limit for frame sampling")
    with tempfile.TemporaryDirectory(prefix="proofcheck-pii-") as folder:
        path = Path(folder) / "video"
        path.write_bytes(source)
        return _video_file(path, base, check_time, time_left)


def _half(frame: np.ndarray) -> np.ndarray:
    """The frame at half size (sums of 2x2 pixels, halved), in a type that differences do not wrap."""
    rows, columns = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    cut = frame[:rows, :columns].astype(np.int16)
    return (cut[0::2, 0::2] + cut[1::2, 0::2] + cut[0::2, 1::2] + cut[1::2, 1::2]) // 4


def changed_cells(before: np.ndarray, after: np.ndarray, level: int = CHANGE_LEVEL) -> np.ndarray:
    """Cells of the half-size frames where a few pixels changed by more than ``level`` grey levels."""
    moved = np.abs(after - before) > level
    rows, columns = moved.shape[0] // CELL, moved.shape[1] // CELL
    counts = moved[: rows * CELL, : columns * CELL].reshape(rows, CELL, columns, CELL).sum(axis=(1, 3))
    return counts >= CELL_PIXELS


@dataclass
class _Reader:
    """The frame loop's state: what was last read, what is waiting, what it cost, what it found."""

    base: Location
    factor: float  # frame pixels per video pixel
    time_left: TimeLeft
    out: Extraction = field(default_factory=Extraction)
    reference: np.ndarray | None = None  # half-size frame as last read
    regular_reference: np.ndarray | None = None  # half-size frame at the last whole-frame read
    previous: np.ndarray | None = None  # the sample before this one
    waiting_since: float | None = None
    last_whole: float = 0.0
    regular_reads: int = 0
    reads: int = 0
    unreadable: list[float] = field(default_factory=list)
    skipped_from: float | None = None

    def sample(self, frame: np.ndarray, at: float) -> None:
        half = _half(frame)
        previous, self.previous = self.previous, half
        if self.reference is None:
            self._read(frame, half, at, None)
            return
        changed = changed_cells(self.reference, half)
        if not changed.any():
            self.waiting_since = None
            self._regular(frame, half, at)
            return
        if self.waiting_since is None:
            self.waiting_since = at
        groups = ink.areas(changed, 1)
        word_sized = any(width >= WORD_CELLS for _c, _r, width, _h in groups)
        # Settled: nothing word-sized moved since the last sample (a pointer or a caret may have).
        moving = ink.areas(changed_cells(previous, half), WORD_CELLS) if previous is not None else [(0, 0, 0, 0)]
        settled = not moving
        waited = at - self.waiting_since >= SETTLE_WAIT
        if (settled and (word_sized or waited)) or (word_sized and waited):
            self._read(frame, half, at, groups)
        else:
            self._regular(frame, half, at)

    def _regular(self, frame: np.ndarray, half: np.ndarray, at: float) -> None:
        if at - self.last_whole < REGULAR_INTERVAL or self.regular_reads >= MAX_REGULAR_READS:
            return
        if self.regular_reference is not None and not changed_cells(self.regular_reference, half, FAINT_LEVEL).any():
            self.last_whole = at
            return
        self.regular_reads += 1
        self._read(frame, half, at, None)

    def _read(self, frame: np.ndarray, half: np.ndarray, at: float, groups: list[tuple[int, int, int, int]] | None
              ) -> None:
        if self.time_left() < OCR_RESERVE:
            if self.skipped_from is None:
                self.skipped_from = at
            return
        height = frame.shape[0]
        bands = _bands(groups, height) if groups is not None else [(0, height)]
        if sum(bottom - top for top, bottom in bands) > FULL_FRAME_SHARE * height:
            bands = [(0, height)]
        where = replace(self.base, time=at)
        unreadable = False
        for top, bottom in bands:
            timeout = max(1.0, self.time_left() - OCR_RESERVE)
            found = ocr_frame(Image.fromarray(frame[top:bottom]), where, timeout, Placement((0, top), self.factor))
            self.out.segments.extend(found.segments)
            room = MAX_UNREAD_AREAS - len(self.out.unread_areas)
            self.out.unread_areas.extend(found.unread_areas[: max(0, room)])
            unreadable = unreadable or bool(found.not_readable)
            if found.not_run:
                self.out.not_inspected.append(f"frame at {at:.1f} s ({found.not_run})")
        if bands == [(0, height)]:  # a whole new screen: the codes it shows (a DataMatrix, a QR code) too
            codes, problem = code_segments(Image.fromarray(frame), where, self.factor)
            self.out.segments.extend(codes)
            if problem and problem not in self.out.not_inspected:
                self.out.not_inspected.append(problem)
        self.reads += 1
        if unreadable:
            self.unreadable.append(at)
        self.reference = half
        self.waiting_since = None
        if bands == [(0, height)]:
            self.last_whole = at
            self.regular_reference = half


def _bands(groups: list[tuple[int, int, int, int]], height: int) -> list[tuple[int, int]]:
    """Full-width bands (frame rows) around groups of changed cells, with a margin, merged."""
    margin = CELL * 2 * 2  # two cells of the half-size image, in frame pixels
    spans = sorted((row * CELL * 2 - margin, (row + rows) * CELL * 2 + margin) for _c, row, _w, rows in groups)
    merged: list[tuple[int, int]] = []
    for top, bottom in spans:
        top, bottom = max(0, top), min(height, bottom)
        if merged and top <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], bottom))
        else:
            merged.append((top, bottom))
    return merged


def _video_file(path: Path, base: Location, check_time: CheckTime, time_left: TimeLeft) -> Extraction:
    """The frames' text, and the text the video carries beside them (tags, chapters, subtitles)."""
    found = _frames(path, base, check_time, time_left)
    return metatext.merge(found, video_metadata(path))


def _frames(path: Path, base: Location, check_time: CheckTime, time_left: TimeLeft) -> Extraction:
    try:
        probe = _probe(path)
    except (ValueError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return Extraction(not_run="the video could not be decoded (no video stream could be read)")
    if probe.width * probe.height > MAX_SOURCE_PIXELS:
        size = f"{probe.width}x{probe.height}"
        return Extraction(not_run=f"the video's frames ({size}) are too large to be decoded safely")
    frame_w, frame_h = _frame_size(probe.width, probe.height)
    reader = _Reader(base, frame_w / probe.width, time_left)
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-i", str(path),
        "-vf", f"fps={SAMPLE_RATE},scale={frame_w}:{frame_h}", "-pix_fmt", "gray", "-f", "rawvideo", "-",
    ]
    frame_bytes = frame_w * frame_h
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # A stalled decoder would block the read below for good: it is killed when the budget is spent.
    watchdog = threading.Timer(max(1.0, time_left()), process.kill)
    watchdog.daemon = True
    watchdog.start()
    frames = 0
    decoded_until = 0.0
    try:
        assert process.stdout is not None
        while reader.skipped_from is None:
            check_time()
            raw = process.stdout.read(frame_bytes)
            if len(raw) < frame_bytes:
                break
            at = frames / SAMPLE_RATE
            if time_left() < OCR_RESERVE:  # decoding alone can outlast the budget on a long video
                reader.skipped_from = at
                break
            frames += 1
            decoded_until = at + 1 / SAMPLE_RATE
            reader.sample(np.frombuffer(raw, dtype=np.uint8).reshape(frame_h, frame_w), at)
    finally:
        watchdog.cancel()
        process.kill()
        process.wait(timeout=10)
    out = reader.out
    total = max(probe.duration, decoded_until)
    if reader.skipped_from is None and decoded_until < min(MIN_DECODED, total):
        # Nothing, or a frame or two of error concealment: the video was not seen, whatever was read.
        read = "no frame could be read" if frames == 0 else f"only {decoded_until:.1f} s of {total:.0f} s could be read"
        return Extraction(not_run=f"the video could not be decoded ({read})")
    if probe.audio:
        out.not_inspected.append("the audio track (speech is not transcribed)")
    # Transitions and scrolling blur some frames; only a mostly unreadable video is reported as such.
    if reader.unreadable and len(reader.unreadable) * 2 > reader.reads:
        out.not_readable.append(f"{len(reader.unreadable)} of {reader.reads} frames read could not be read reliably")
    if reader.skipped_from is not None:
        out.not_inspected.append(
            f"frames from {reader.skipped_from:.0f} s on: {reader.skipped_from:.0f} s of {total:.0f} s were "
            "sampled before the check's time limit"
        )
    elif total - decoded_until > 1.0:
        out.not_inspected.append(
            f"frames after {decoded_until:.0f} s could not be decoded (stream damaged or cut short): "
            f"{decoded_until:.0f} s of {total:.0f} s were sampled"
        )
    return out


__all__ = ["SAMPLE_RATE", "changed_cells", "ffmpeg_problem", "video_text"]
