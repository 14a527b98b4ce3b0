"""Benchmark of the personal-data check (run on demand: `make bench` or `python benchmarks/bench_pii.py`).

Prints: precision and recall on the labelled snippet set (the hand-written cases the rules were written
against); precision and recall per category on adversarial cases generated at bench time with a printed
seed (``fixtures/pii_generator.py``: never the tests' cases), at error and at warning-or-worse; text
throughput in MB/s on generated logs of 12.5, 25 and 50 MB (goal >= 20 MB/s, linear); bad inputs (a
50 MB log of numbers, a 50 MB digit run, 50 MB of short numeric CSV lines, 50 MB of digits mixed with
the letters OCR confuses with them, a PDF page of 10 M characters: time and peak memory, each in its own
process); OCR recall by font size on generated 1366x768 screenshots (goal >= 95 % at 11 px and
above) and the time per screenshot.
Options: --seed N (default: random), --cases N, --skip-ocr, --skip-bad-input, --log-mb N (largest log
size), --bad-mb N, --pdf-chars N, --ocr-images N (screenshots per font size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchjson import Results, add_json_option

from fixtures import builders as build
from fixtures.pii_generator import EXPECTED, LEVELS, generate
from fixtures.pii_snippets import NirFactory, grouped, screenshots, snippets
from validators import sniff
from validators.base import CheckContext, ProofFile
from validators.engine import Engine
from validators.model import FileVerdict, Finding, Severity
from validators.pii import PiiValidator, make_validators
from validators.pii.nir import KeyStatus, find_nirs
from validators.pii.ocr import ocr_image, tesseract_problem


def proof_file(path: str, data: bytes) -> ProofFile:
    return ProofFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(data), data=data)


def precision_recall(results: Results) -> None:
    engine = pii_engine()
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
    print(f"hand-written snippets: {tp + fp + fn + tn} ({tp + fn} positive, at error)  precision {precision:.3f}  "
          f"recall {recall:.3f}")
    note = f"{tp + fp + fn + tn} labelled snippets, {tp + fn} positive"
    results.add("PII precision on labelled snippets", precision, unit="fraction", goal=">= 0.98",
                met=precision >= 0.98, note=note)
    results.add("PII recall on labelled snippets", recall, unit="fraction", goal=">= 0.98", met=recall >= 0.98,
                note=note)
    for line in misses:
        print("  " + line)


_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}
_GAPS = ("pii.not-inspected", "pii.not-readable", "pii.embedded")


def _level(verdict: FileVerdict) -> int:
    """The highest pii severity about a value, in the file and in its children (an e-mail's bodies)."""
    findings: list[Finding] = [f for file in verdict.iter_files() for f in file.findings]
    return max((_RANK[f.severity] for f in findings if f.rule.startswith("pii.") and f.rule not in _GAPS), default=0)


def pii_engine() -> Engine:
    """The pii check with the e-mail check, as in a dry run: an e-mail's bodies and attachments are its
    children, each read by the pii check."""
    from validators.mail.check import MailValidator

    return Engine([*make_validators({}), MailValidator()])


@dataclass
class Tally:
    """Counts of one group of generated cases, at error (level 3) and at warning-or-worse (level >= 2)."""

    cases: int = 0
    exact: int = 0
    tp: dict[int, int] = field(default_factory=lambda: {2: 0, 3: 0})
    fp: dict[int, int] = field(default_factory=lambda: {2: 0, 3: 0})
    fn: dict[int, int] = field(default_factory=lambda: {2: 0, 3: 0})

    def add(self, expected: int, got: int) -> None:
        self.cases += 1
        self.exact += expected == got
        for at in (2, 3):
            if expected >= at and got >= at:
                self.tp[at] += 1
            elif got >= at:
                self.fp[at] += 1
            elif expected >= at:
                self.fn[at] += 1

    def precision(self, at: int) -> float | None:
        flagged = self.tp[at] + self.fp[at]
        return self.tp[at] / flagged if flagged else None

    def recall(self, at: int) -> float | None:
        positive = self.tp[at] + self.fn[at]
        return self.tp[at] / positive if positive else None


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def generated(seed: int, count: int, results: Results) -> None:
    """Precision/recall on adversarial cases drawn now, per category and per template."""
    engine = pii_engine()
    by_category: dict[str, Tally] = defaultdict(Tally)
    by_template: dict[str, Tally] = defaultdict(Tally)
    by_family: dict[str, Tally] = defaultdict(Tally)
    total = Tally()
    silent_valid = 0
    misses: list[str] = []
    start = time.perf_counter()
    for case in generate(seed, count):
        verdict = engine.check_file(proof_file(case.filename, case.content))
        expected, got = LEVELS[case.expected], _level(verdict)
        for tally in (by_category[case.category], by_template[case.template],
                      by_family[case.category.split("/")[0]], total):
            tally.add(expected, got)
        # "No key-valid NIR without a finding": every category whose value has a valid key and structure.
        if expected >= 1 and case.category != "body/labelled" and got == 0:
            silent_valid += 1
        if expected != got:
            misses.append(f"{case.case_id} {case.category} {case.template} {case.form}: expected {case.expected}, "
                          f"got {['none', 'info', 'warning', 'error'][got]}")
    seconds = time.perf_counter() - start
    print(f"generated cases: {count} with seed {seed} ({seconds:.1f} s); exact outcome {total.exact}/{total.cases}")
    header = (f"  {'':28} {'cases':>5} {'exact':>5} {'expected':>8}  {'P@error':>7} {'R@error':>7}  {'P@warn+':>7} "
              f"{'R@warn+':>7} {'FP@warn+':>8}")
    for title, table in (("per category", by_category), ("per template", by_template)):
        print(f" {title}:")
        print(header)
        for name in sorted(table):
            t = table[name]
            expected = EXPECTED.get(name, "mixed")
            print(f"  {name:28} {t.cases:5d} {t.exact:5d} {expected:>8}  {_fmt(t.precision(3)):>7} "
                  f"{_fmt(t.recall(3)):>7}  {_fmt(t.precision(2)):>7} {_fmt(t.recall(2)):>7} {t.fp[2]:8d}")
    for line in misses[:30]:
        print("  " + line)
    note = f"{count} cases generated with seed {seed} (fixtures/pii_generator.py)"
    for at, label in ((3, "at error"), (2, "at warning or worse")):
        precision, recall = total.precision(at) or 0.0, total.recall(at) or 0.0
        results.add(f"PII generated cases: precision {label}", precision, unit="fraction", goal=">= 0.98",
                    met=precision >= 0.98, note=note)
        results.add(f"PII generated cases: recall {label}", recall, unit="fraction", goal=">= 0.98",
                    met=recall >= 0.98, note=note)
    for family in sorted(by_family):
        t = by_family[family]
        def short(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        results.add(f"PII generated {family}/*: exact outcome", t.exact / t.cases, unit="fraction",
                    note=f"{t.cases} cases; P/R at error {short(t.precision(3))}/{short(t.recall(3))}, "
                         f"at warning+ {short(t.precision(2))}/{short(t.recall(2))}; "
                         f"false positives at warning+: {t.fp[2]}")
    results.add("PII generated: key-valid NIRs without any finding", silent_valid, unit="cases", goal="0",
                met=silent_valid == 0, note=note)


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
    # The floor of any regular-expression scan here: 13 digits in a row, nothing else. On a shared machine
    # the ratio to it says more than the absolute rate.
    start = time.perf_counter()
    floor_count = sum(1 for _ in re.finditer(r"\d{13}", text))
    floor = time.perf_counter() - start
    print(f"13-digit regex alone on the same text: {len(text) / 1e6 / floor:.1f} M chars/s ({floor_count} runs); "
          f"recognizer / floor time ratio {seconds / floor:.2f}")
    results.add("NIR recognizer vs a bare 13-digit regex", len(text) / 1e6 / seconds, unit="M chars/s",
                ratio=seconds / floor, reference="a bare 13-digit regex on the same text")


def ocr_recall(per_size: int, results: Results) -> None:
    problem = tesseract_problem()
    if problem is not None:
        print(f"OCR: not measured ({problem})")
        for size_px in range(11, 17):  # the goals stay in the table, not met, with the reason
            results.missing(f"OCR recall at {size_px} px", ">= 0.95", problem, unit="fraction")
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


def _bad_input_data(name: str, megabytes: float, pdf_chars: int) -> tuple[str, bytes]:
    rng = random.Random(7)  # noqa: S311 - reproducible hostile input, not a secret
    size = int(megabytes * 1_000_000)
    if name == "digit-run":
        block = "".join(rng.choice("0123456789") for _ in range(1_000_000)).encode()
        return "dump.txt", (block * (size // len(block) + 1))[:size]
    if name == "short-number-lines":  # every line starts with a number: each is a possible cut NIR's tail
        block = ("\n".join(f"{rng.randint(1, 999)};{rng.randint(1, 99_999)};{rng.randint(1, 9)}"
                           for _ in range(100_000)) + "\n").encode()
        return "cells.csv", (block * (size // len(block) + 1))[:size]
    if name == "lookalike-soup":  # digits and the letters OCR confuses with them, grouped like NIRs
        block = " ".join("".join(rng.choice("0123456789OolISBZ|") for _ in range(rng.choice([1, 2, 3, 15])))
                         for _ in range(200_000)).encode()
        return "soup.txt", (block * (size // len(block) + 1))[:size]
    if name == "number-lines":
        block = ("\n".join("".join(rng.choice("0123456789") for _ in range(15)) for _ in range(62_500)) + "\n").encode()
        return "numbers.log", (block * (size // len(block) + 1))[:size]
    line = "Ligne de journal 0123456789 valeur 42 statut ok "
    lines = [line] * (pdf_chars // len(line))
    lines[len(lines) // 2] = f"Assuré {NirFactory(7).nir()}"
    return "journal.pdf", build.make_pdf(["\n".join(lines)])


def _peak_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image (ru_maxrss would carry
    over the peak of the parent that forked it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bad_input_one(path: str) -> None:
    """One hostile input, read from ``path`` in this fresh process: prints a JSON line (seconds, peak RSS
    over the process's size once the input is read, findings)."""
    data = Path(path).read_bytes()
    before = _peak_mib()
    file = proof_file(Path(path).name, data)
    start = time.perf_counter()
    result = PiiValidator({}).check(file, CheckContext(deadline=time.monotonic() + 600))
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    rules = sorted({f"{f.rule} {f.severity.value}" for f in result.findings})
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "before_mib": before, "bytes": len(data),
                      "rules": rules, "findings": len(result.findings), "state": result.state.value}))


def bad_inputs(megabytes: float, pdf_chars: int, results: Results) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pii-") as folder:
        for name in ("digit-run", "number-lines", "short-number-lines", "lookalike-soup", "pdf-page"):
            file_name, data = _bad_input_data(name, megabytes, pdf_chars)
            path = Path(folder) / file_name
            path.write_bytes(data)
            del data
            done = subprocess.run([sys.executable, __file__, "--bad-input-one", str(path)],
                                  capture_output=True, text=True, timeout=900, check=False)
            if done.returncode != 0:
                print(f"bad input {name}: failed ({done.stderr.strip()[-300:]})")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            what = f"{pdf_chars / 1e6:.0f} M-character PDF page" if name == "pdf-page" else \
                f"{row['bytes'] / 1e6:.0f} MB {name.replace('-', ' ')}"
            print(f"bad input {what}: {row['seconds']:.1f} s, peak RSS {row['peak_mib']:.0f} MiB "
                  f"({row['before_mib']:.0f} once read), {row['findings']} finding(s): "
                  f"{', '.join(row['rules']) or 'none'}")
            no_nir = name in ("digit-run", "short-number-lines")  # no NIR is written in these
            found = ", ".join(row["rules"]) or "none (no NIR written in it)"
            results.add(f"PII bad input: {what}", row["seconds"], peak_mib=row["peak_mib"],
                        goal="bounded, a verdict with findings", met=bool(row["rules"]) or no_nir,
                        note=f"{row['findings']} finding(s): {found}; {row['before_mib']:.0f} MiB once read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="seed of the generated cases (default: random)")
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--skip-ocr", action="store_true")
    parser.add_argument("--skip-bad-input", action="store_true")
    parser.add_argument("--log-mb", type=float, default=50.0)
    parser.add_argument("--bad-mb", type=float, default=50.0)
    parser.add_argument("--pdf-chars", type=int, default=10_000_000)
    parser.add_argument("--ocr-images", type=int, default=3)
    parser.add_argument("--bad-input-one", help=argparse.SUPPRESS)
    add_json_option(parser)
    args = parser.parse_args()
    if args.bad_input_one:
        bad_input_one(args.bad_input_one)
        return
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average at start: {load} ({os.cpu_count()} cores); rerun one part with --seed {seed}")
    results = Results()
    precision_recall(results)
    generated(seed, args.cases, results)
    throughput(args.log_mb, results)
    if not args.skip_bad_input:
        bad_inputs(args.bad_mb, args.pdf_chars, results)
    if not args.skip_ocr:
        ocr_recall(args.ocr_images, results)
    results.write(args.json)


if __name__ == "__main__":
    main()
