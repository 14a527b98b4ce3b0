"""Text a video carries beside its frames: container and stream tags (title, comment, description...),
chapter titles, and text subtitle tracks.

Read with ffprobe and ffmpeg (subprocesses, bounded in time and output). A subtitle track drawn as
pictures (DVD, Blu-ray, DVB) or an attached file (Matroska attachments) is not read: it is said.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from validators.model import Location
from validators.pii.segments import Extraction, TextSegment

PROBE_TIMEOUT = 20.0
SUBTITLE_TIMEOUT = 30.0
MAX_SUBTITLE_BYTES = 8 * 1024 * 1024
MAX_TAG_CHARS = 64 * 1024
MAX_STREAMS = 64
TAGS = "video metadata"
SUBTITLES = "video subtitles"
# Subtitle codecs that are text (ffmpeg converts them to SubRip); the others are pictures.
_TEXT_SUBTITLES = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text", "microdvd", "mpl2",
                             "jacosub", "sami", "realtext", "subviewer", "subviewer1", "vplayer", "pjs", "stl",
                             "eia_608", "ttml"})
# Tags every muxer writes: no person writes them.
_TECHNICAL = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name",
                        "vendor_id", "language", "creation_time", "duration", "_statistics_tags",
                        "_statistics_writing_app", "_statistics_writing_date_utc", "number_of_frames",
                        "number_of_bytes", "bps", "duration-eng", "bps-eng", "number_of_frames-eng",
                        "number_of_bytes-eng"})


def _tag_lines(tags: object) -> list[str]:
    if not isinstance(tags, dict):
        return []
    return [f"{key}: {str(value)[:MAX_TAG_CHARS]}" for key, value in tags.items()
            if str(key).lower() not in _TECHNICAL and str(value).strip()]


def _subtitles(path: Path, index: int) -> str:
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:{index}", "-f", "srt", "-"],
        capture_output=True, timeout=SUBTITLE_TIMEOUT, check=False,
    )
    if done.returncode != 0 and not done.stdout:
        raise ValueError("not converted")
    return done.stdout[:MAX_SUBTITLE_BYTES].decode("utf-8", "replace")


def video_metadata(path: Path) -> Extraction:
    """Tags, chapter titles and text subtitles of the video at ``path``; what was not read, said."""
    out = Extraction()
    try:
        done = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries",
             "format_tags:stream=index,codec_type,codec_name:stream_tags:chapter_tags", "-of", "json", str(path)],
            capture_output=True, timeout=PROBE_TIMEOUT, check=False,
        )
        info = json.loads(done.stdout or b"{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        out.not_inspected.append("the video's tags and subtitle tracks (not readable by ffprobe)")
        return out
    lines = _tag_lines(info.get("format", {}).get("tags"))
    for chapter in info.get("chapters", [])[:MAX_STREAMS]:
        lines += _tag_lines(chapter.get("tags"))
    streams = info.get("streams", [])
    if len(streams) > MAX_STREAMS:
        out.not_inspected.append(f"streams after the first {MAX_STREAMS}")
    for stream in streams[:MAX_STREAMS]:
        lines += _tag_lines(stream.get("tags"))
        kind, codec, index = stream.get("codec_type"), str(stream.get("codec_name", "")), stream.get("index")
        if kind == "subtitle" and codec in _TEXT_SUBTITLES:
            try:
                text = _subtitles(path, int(index))
            except (OSError, subprocess.TimeoutExpired, ValueError, TypeError):
                out.not_inspected.append(f"subtitle track {index} ({codec}: not converted to text)")
                continue
            out.segments.append(TextSegment(text, Location(entry=SUBTITLES), fields=True))
        elif kind == "subtitle":
            out.not_inspected.append(f"subtitle track {index} ({codec or 'unknown'}: pictures, not OCR'd)")
        elif kind == "attachment":
            out.not_inspected.append(f"file attached to the video (stream {index}: not extracted)")
    if lines:
        out.segments.append(TextSegment("\n".join(lines), Location(entry=TAGS), fields=True))
    return out


__all__ = ["SUBTITLES", "TAGS", "video_metadata"]
