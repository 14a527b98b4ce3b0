"""Benchmark of the personal-data check (run on demand: `make bench` or `python benchmarks/bench_pii.py`).

Prints: precision and recall on the labelled snippet set (goal >= 0.98 each); text throughput in MB/s
on generated logs of 12.5, 25 and 50 MB (goal >= 20 MB/s, linear); OCR recall by font size on
generated 1366x768 screenshots (goal >= 95 % at 11 px and above) and the time per screenshot.
Options: --skip-ocr, --log-mb N (largest log size), --ocr-images N (screenshots per font size).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchjson import Results, add_json_option

from fixtures.pii_snippets import NirFactory, grouped, screenshots, snippets
from validators import sniff
from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.model import Severity
from validators.pii import PiiValidator, make_validators
from validators.pii.nir import KeyStatus, find_nirs
from validators.pii.ocr import ocr_image, tesseract_problem


def proof_file(path: str, data: bytes) -> ProofFile:
    return ProofFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(data), data=data)


def precision_recall(results: Results) -> None:
    engine = Engine(make_validators({}))
    tp = fp = fn = tn = 0
    misses: list[str] = []
    for snippet in snippets():
        verdict = engine.check_file(proof_file(snippet.filename, snippet.content))
        flagged = any(f.rule.startswith("pii.") and f.severity is Severity.ERROR for f in verdict.findings)
        if flagged and snippet.positive:
            tp += 1
        elif flagged:
            fp += 1
            misses.append(f"false positive {snippet.case_id} ({snippet.kind})")
        elif snippet.positive:
            fn += 1
            misses.append(f"false negative {snippet.case_id} ({snippet.kind})")
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    print(f"snippets: {tp + fp + fn + tn} ({tp + fn} positive)  precision {precision:.3f}  recall {recall:.3f}")
    note = f"{tp + fp + fn + tn} labelled snippets, {tp + fn} positive"
    results.add("PII precision on labelled snippets", precision, unit="fraction", goal=">= 0.98",
                met=precision >= 0.98, note=note)
    results.add("PII recall on labelled snippets", recall, unit="fraction", goal=">= 0.98", met=recall >= 0.98,
                note=note)
    for line in misses:
        print("  " + line)


def make_log(megabytes: float, seed: int = 1) -> tuple[bytes, int]:
    """A realistic application log (timestamps, ids, HTTP lines, HL7 traces) with a few NIRs in it."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible test log, not a secret
    factory = NirFactory(seed)
    target = int(megabytes * 1_000_000)
    lines: list[str] = []
    size = planted = 0
    messages = [
        "GET /api/v1/patients/{id}/documents HTTP/1.1 200 {ms}ms",
        "appel INSi terminé statut=OK durée={ms} ms",
        "envoi MSSanté message-id=<{id}@cabinet.mssante.fr> taille={ms}",
        "PID|1||{id}^^^HOPITAL&1.2.250.1.71.4.2.2&ISO^PI||DUPONT^MARIE||19790328|F",
        "utilisateur {id} connecté depuis 10.0.{ms}.12",
        "synchronisation DMP terminée: {ms} documents, lot {id}",
    ]
    while size < target:
        stamp = f"2024-03-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:" \
                f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}"
        text = rng.choice(messages).format(id=rng.randint(10_000, 99_999_999), ms=rng.randint(1, 999))
        if rng.random() < 0.0005:
            text += f" assuré {grouped(factory.nir())}"
            planted += 1
        line = f"{stamp} INFO [worker-{rng.randint(1, 8)}] {text}\n"
        lines.append(line)
        size += len(line.encode())
    return "".join(lines).encode(), planted


def throughput(max_mb: float, results: Results) -> None:
    validator = PiiValidator({})
    rows = []
    for mb in (max_mb / 4, max_mb / 2, max_mb):
        data, planted = make_log(mb)
        file = proof_file("trace.log", data)
        seconds = float("inf")
        for _ in range(2):  # best of two: the machine is shared, the slower run measures the neighbours
            start = time.perf_counter()
            result = validator.check(file, CheckContext(deadline=time.monotonic() + 600))
            seconds = min(seconds, time.perf_counter() - start)
        found = sum(int(f.message.split("(", 1)[1].split(" ", 1)[0]) for f in result.findings if f.rule == "pii.nir")
        rows.append((len(data) / 1e6, seconds))
        print(f"log {len(data) / 1e6:6.1f} MB: {seconds:6.2f} s  {len(data) / 1e6 / seconds:6.1f} MB/s  "
              f"({found} of {planted} planted NIR occurrences found)")
    (small_mb, small_s), (big_mb, big_s) = rows[0], rows[-1]
    print(f"linearity: time ratio {big_s / small_s:.2f} for a size ratio {big_mb / small_mb:.2f}")
    linearity = (big_s / small_s) / (big_mb / small_mb)
    results.add("PII linearity (time ratio / size ratio)", linearity, unit="x", goal="about 1 (<= 1.2)",
                met=linearity <= 1.2, note=f"{small_mb:.1f} MB vs {big_mb:.1f} MB logs")
    text = make_log(max_mb)[0].decode()
    start = time.perf_counter()
    count = sum(1 for _ in find_nirs(text))
    seconds = time.perf_counter() - start
    print(f"recognizer alone on {len(text) / 1e6:.1f} M characters: {len(text) / 1e6 / seconds:.1f} M chars/s "
          f"({count} candidates)")
    rate = big_mb / big_s
    results.add(f"PII text scan of a {big_mb:.0f} MB log", rate, unit="MB/s", ratio=big_s / seconds,
                reference="NIR recognizer alone on the same text", goal=">= 20 MB/s", met=rate >= 20,
                note=f"best of 2 runs, {big_s:.2f} s; ratio is time over the recognizer's time")
    results.add("NIR recognizer alone (reference)", len(text) / 1e6 / seconds, unit="M chars/s")


def ocr_recall(per_size: int, results: Results) -> None:
    problem = tesseract_problem()
    if problem is not None:
        print(f"OCR: skipped ({problem})")
        return
    per_image = 8
    times: list[float] = []
    for shot_set in [screenshots(range(size, size + 1), per_image, per_size, seed=11 + size) for size in range(9, 17)]:
        found = total = 0
        for shot in shot_set:
            start = time.perf_counter()
            extraction = ocr_image(shot.png)
            times.append(time.perf_counter() - start)
            read = {m.value for s in extraction.segments for m in find_nirs(s.text, lenient=True)
                    if m.key_status is KeyStatus.VALID}
            found += sum(1 for value in shot.nirs if value in read)
            total += len(shot.nirs)
        print(f"OCR {shot_set[0].font_px:2d} px: recall {found / total:.3f} ({found}/{total})")
        size_px = shot_set[0].font_px
        goal = ">= 0.95" if size_px >= 11 else None
        results.add(f"OCR recall at {size_px} px", found / total, unit="fraction", goal=goal,
                    met=found / total >= 0.95 if goal else None, note=f"{found}/{total} NIRs")
    times.sort()
    print(f"OCR time per 1366x768 screenshot: median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s "
          f"({len(times)} images)")
    results.add_timings("OCR time per 1366x768 screenshot", times, note=f"{len(times)} images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-ocr", action="store_true")
    parser.add_argument("--log-mb", type=float, default=50.0)
    parser.add_argument("--ocr-images", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results()
    precision_recall(results)
    throughput(args.log_mb, results)
    if not args.skip_ocr:
        ocr_recall(args.ocr_images, results)
    results.write(args.json)


if __name__ == "__main__":
    main()
