"""Benchmark of screenshots and videos through the personal-data check (`python benchmarks/bench_ocr.py`).

Screens are generated at bench time by ``fixtures/screens.py`` from a seed (printed; random unless
``--seed``), never the tests' screens: themes, layouts, fonts, 10-18 px, JPEG, HiDPI, NIR forms and
near-misses. Each goes through the engine's pii check as the dry run would, and counts as flagged
"at error" when a pii.* error is reported, "at warning" when any pii.* error or warning is. Prints:
precision and recall per category (goal >= 0.98 at error), key-valid NIRs with no finding at all
(goal 0), NIR digits in a verdict (goal 0), OCR seconds per capture (1366x768 and 1920x1080, light and
dark, wall and CPU), and the video figures: seconds per minute of a generated 1080p30 screen recording
(screens switching, a form filled in, a pointer always moving, NIRs shown, one for exactly 1 s) and NIRs found.
Options: --count N (screens), --seed S, --timing N (captures per size and theme), --skip-video.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchjson import Results, add_json_option

from fixtures.pii_snippets import grouped
from fixtures.screens import Screen, screen
from validators import sniff
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import FileVerdict, Location, Severity
from validators.pii import make_validators
from validators.pii.nir import KeyStatus, find_nirs
from validators.pii.ocr import ocr_image, tesseract_problem
from validators.pii.video import ffmpeg_problem, video_text


def proof_file(path: str, data: bytes) -> ProofFile:
    return ProofFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(data), data=data)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (Tesseract, ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def leaks(verdict: FileVerdict, values: tuple[str, ...]) -> int:
    text = json.dumps(verdict.to_dict(), ensure_ascii=False)
    return sum(1 for v in values if v in text or v[:13] in text or grouped(v) in text)


class Tally:
    """Confusion counts per category value, at error and at warning."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # tp fp fn tn

    def add(self, categories: dict[str, str], level: str, positive: bool, flagged: bool) -> None:
        index = 0 if positive and flagged else 1 if flagged else 2 if positive else 3
        for name, value in [("all", "all"), *categories.items()]:
            self.counts[(level, name, value)][index] += 1

    def rates(self, level: str, name: str, value: str) -> tuple[float, float, list[int]]:
        tp, fp, fn, tn = self.counts[(level, name, value)]
        return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0), [tp, fp, fn, tn]


def screenshots(count: int, seed: int, results: Results) -> None:
    engine = Engine(make_validators({}))
    tally = Tally()
    silent = leaked = dropped = 0
    misses: list[str] = []
    seconds: list[float] = []
    for index in range(count):
        shot = screen(seed, index)
        started = time.perf_counter()
        verdict = engine.check_file(proof_file(f"INS.1.1.1/{shot.name}.{shot.extension}", shot.data))
        seconds.append(time.perf_counter() - started)
        pii = [f for f in verdict.findings if f.rule.startswith("pii.")]
        at_error = any(f.severity is Severity.ERROR for f in pii)
        at_warning = any(f.severity in (Severity.ERROR, Severity.WARNING) for f in pii)
        tally.add(shot.categories, "error", shot.positive, at_error)
        tally.add(shot.categories, "warning", shot.positive, at_warning)
        leaked += leaks(verdict, shot.values)
        if shot.positive and not at_warning:
            silent += 1
        if at_error != shot.positive:
            kind = "missed" if shot.positive else "false alarm"
            rules = sorted({f.rule for f in pii})
            cause = ""
            if shot.positive:
                read = was_read(shot)
                dropped += read
                cause = "; OCR read it, the scan's rules dropped it" if read else "; OCR did not read it"
            misses.append(f"{kind}: {shot.name} {describe(shot)} {rules}{cause}")
    positives = sum(tally.rates("error", "all", "all")[2][i] for i in (0, 2))
    print(f"screens: {count} generated with seed {seed} ({positives} with a NIR), "
          f"{statistics.median(seconds):.2f} s median each")
    for level in ("error", "warning"):
        precision, recall, counts = tally.rates(level, "all", "all")
        print(f"at {level}: precision {precision:.3f} recall {recall:.3f}  (tp fp fn tn {counts})")
        note = f"{count} screens, seed {seed}, {positives} with a NIR"
        goal = ">= 0.98" if level == "error" else None
        results.add(f"screenshots precision at {level}", precision, unit="fraction", goal=goal,
                    met=precision >= 0.98 if goal else None, note=note)
        results.add(f"screenshots recall at {level}", recall, unit="fraction", goal=goal,
                    met=recall >= 0.98 if goal else None, note=note)
    print(f"NIRs with no finding at all: {silent}; NIR digits in a verdict: {leaked}")
    _, recall, counts = tally.rates("error", "all", "all")
    read_recall = (counts[0] + dropped) / positives if positives else 1.0
    print(f"NIRs read by OCR (found at error, or read and then dropped by the scan's rules): {read_recall:.3f}")
    results.add("screenshots: NIR read by OCR", read_recall, unit="fraction", goal=">= 0.98",
                met=read_recall >= 0.98, note="found at error, or read but dropped by the scan's context rules")
    results.add("screenshots: NIR with no finding at all", silent, unit="screens", goal="0", met=silent == 0)
    results.add("screenshots: NIR digits in a verdict", leaked, unit="verdicts", goal="0", met=leaked == 0)
    print("per category (at error: precision recall | at warning: precision recall | tp fp fn tn at error)")
    for name in ("theme", "layout", "size", "font", "form", "dpi", "encoding"):
        for level_key in sorted({k[2] for k in tally.counts if k[1] == name and k[0] == "error"}):
            p_err, r_err, counts = tally.rates("error", name, level_key)
            p_warn, r_warn, _ = tally.rates("warning", name, level_key)
            print(f"  {name:8} {level_key:18} {p_err:.3f} {r_err:.3f} | {p_warn:.3f} {r_warn:.3f} | {counts}")
    for line in misses:
        print("  " + line)


def was_read(shot: Screen) -> bool:
    """Whether OCR alone reads the screen's NIR, key valid (whatever the scan's rules then make of it)."""
    found = ocr_image(shot.data)
    return any(m.value in shot.values for s in found.segments for m in find_nirs(s.text, lenient=True)
               if m.key_status is KeyStatus.VALID)


def describe(shot: Screen) -> str:
    return (f"({shot.layout}, {shot.theme}, {shot.font} {shot.font_px} px, {shot.form}, "
            f"x{shot.scale}, {shot.extension}{shot.quality or ''})")


def capture_times(per_case: int, seed: int, results: Results) -> None:
    engine = Engine(make_validators({}))
    for size in ((1366, 768), (1920, 1080)):
        for theme in ("light", "dark"):
            walls, cpus = [], []
            for index in range(per_case):
                shot = screen(seed + 7, index, theme=theme, size=size, scale=1, quality=False,
                              layout=("form", "table", "banner", "dialog", "letter")[index % 5])
                file = proof_file(f"capture.{shot.extension}", shot.data)
                started, cpu = time.perf_counter(), cpu_seconds()
                engine.check_file(file)
                walls.append(time.perf_counter() - started)
                cpus.append(cpu_seconds() - cpu)
            name = f"OCR CPU per {size[0]}x{size[1]} capture, {theme}"
            print(f"{name}: median {statistics.median(cpus):.2f} s (max {max(cpus):.2f}); wall median "
                  f"{statistics.median(walls):.2f} s (max {max(walls):.2f})")
            # CPU time is what a worker of its own would take; wall time on this shared machine shows the load.
            results.add_timings(name, cpus, goal="about 1-3 s", met=statistics.median(cpus) <= 3.0,
                                note=f"{per_case} captures; wall median {statistics.median(walls):.2f} s "
                                     f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def recording(folder: Path, seed: int) -> tuple[Path, list[str], float]:
    """A 60 s 1080p30 H.264 screen recording: its path, the NIRs shown, and the seconds the 1 s one starts."""
    size = (1920, 1080)

    def still(index: int, **kw: object) -> Screen:
        return screen(seed, index, size=size, scale=1, quality=False, **kw)  # type: ignore[arg-type]

    form = dict(layout="form", theme="light", form="grouped", font_px=14, positive=True)
    typed = still(2, **form)
    blank = still(2, **form, blank=True)
    dialog = still(4, layout="dialog", theme="dark", form="grouped", font_px=14, positive=True)
    terminal = still(6, layout="terminal", theme="dark", form="compact", font_px=13, positive=True)
    timeline: list[tuple[bytes, float]] = [
        (still(1, layout="table", theme="light", positive=False, form="masked").data, 8.0),
        (blank.data, 8.0), (typed.data, 10.0),
        (still(3, layout="letter", theme="light", positive=False, form="rpps").data, 8.0),
        (dialog.data, 1.0),
        (still(5, layout="banner", theme="dark", positive=False, form="phone").data, 9.0),
        *[(still(10 + i, layout="letter", theme="light", positive=False, form="siret").data, 1.0) for i in range(8)],
        (terminal.data, 8.0),
    ]
    lines = []
    for index, (data, duration) in enumerate(timeline):
        path = folder / f"still{index}.png"
        path.write_bytes(data)
        lines += [f"file '{path}'", f"duration {duration}"]
    lines.append(f"file '{folder / f'still{len(timeline) - 1}.png'}'")  # the concat demuxer's last-frame rule
    (folder / "list.txt").write_text("\n".join(lines) + "\n")
    out = folder / "recording.mp4"
    pointer = "drawbox=x='mod(t*240,1800)':y='300+200*sin(t*1.3)':w=14:h=22:color=black:t=fill"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(folder / "list.txt"),
         "-vf", f"fps=30,format=yuv420p,{pointer}", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23",
         "-t", "60", str(out)],
        check=True, timeout=600,
    )
    dialog_at = sum(d for _, d in timeline[:4])
    return out, [typed.values[0], dialog.values[0], terminal.values[0]], dialog_at


def videos(seed: int, results: Results) -> None:
    problem = ffmpeg_problem()
    if problem is not None:
        print(f"video: skipped ({problem})")
        return
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        path, shown, dialog_at = recording(Path(tmp), seed)
        engine_budget = 600.0
        started, cpu = time.perf_counter(), cpu_seconds()
        deadline = time.monotonic() + engine_budget
        found = video_text(path, Location(), lambda: None, lambda: deadline - time.monotonic())
        wall, used = time.perf_counter() - started, cpu_seconds() - cpu
    read = {m.value: s.base.time for s in found.segments for m in find_nirs(s.text, lenient=True)
            if m.key_status is KeyStatus.VALID}
    hits = sum(1 for v in shown if v in read)
    one_second = shown[1] in read
    print(f"video: 60 s of 1080p30 read in {wall:.1f} s wall, {used:.1f} s CPU; {hits} of {len(shown)} NIRs found "
          f"(the one shown for 1 s at {dialog_at:.0f} s: {'found' if one_second else 'MISSED'}); "
          f"gaps: {found.not_inspected + found.not_readable}")
    results.add("video: CPU seconds per minute of 1080p30 screen recording", used, unit="s",
                goal="bounded (< 60 s)", met=used < 60,
                note=f"wall {wall:.1f} s (load average {os.getloadavg()[0]:.1f}); 16 screen changes; seed {seed}")
    results.add("video: NIRs found (one shown for exactly 1 s)", hits / len(shown), unit="fraction", goal="1.0",
                met=hits == len(shown), note=f"{hits}/{len(shown)}; the 1 s one {'found' if one_second else 'missed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=60, help="screens generated for precision and recall")
    parser.add_argument("--seed", type=int, default=None, help="generator seed (default: random, printed)")
    parser.add_argument("--timing", type=int, default=5, help="captures per size and theme for the timings")
    parser.add_argument("--skip-video", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    results = Results()
    problem = tesseract_problem()
    if problem is not None:
        print(f"OCR: skipped ({problem})")
        results.write(args.json)
        return
    print(f"seed {seed} (run again with --seed {seed} to see the same screens)")
    screenshots(args.count, seed, results)
    capture_times(args.timing, seed, results)
    if not args.skip_video:
        videos(seed, results)
    results.write(args.json)


if __name__ == "__main__":
    main()
