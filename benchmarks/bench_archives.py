"""Archives beyond zip: time to read each format into memory (the archive check's path), against the
stdlib or py7zr reading the same bytes with no limits, and time to refuse bombs and hostile headers.

    .venv/bin/python benchmarks/bench_archives.py [--mib 32] [--rounds 3] [--json PATH]

Goal for the refusals (issue 12 #3 says "bounded"; our reading): each hostile input ends with the finding
that names it, in the time printed beside.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import lzma
import os
import statistics
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import py7zr
from benchjson import Results, add_json_option

from fixtures.sevenzipcraft import LZMA, SevenMember, build_7z
from fixtures.tarcraft import files
from validators.archives import detect, read_archive
from validators.archives.members import MemoryCollector
from validators.ziptriage import TriageLimits

LIMITS = TriageLimits(max_total_size=1 << 30, max_entry_size=1 << 30)


def median_time(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ours(data: bytes, name: str) -> Callable[[], object]:
    def run() -> object:
        kind = detect(data[:512])
        assert kind is not None
        sink = MemoryCollector(1 << 30, 1 << 30)
        listing = read_archive(io.BytesIO(data), kind, file_name=name, limits=LIMITS, sink=sink)
        assert not listing.structural, listing.findings
        return sink.kept

    return run


def stdlib_tar(data: bytes) -> Callable[[], object]:
    def run() -> object:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            return [archive.extractfile(m).read() for m in archive.getmembers() if m.isreg()]  # type: ignore[union-attr]

    return run


def reference_7z(data: bytes) -> Callable[[], object]:
    def run() -> object:
        with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
            factory = py7zr.io.BytesIOFactory(1 << 30)
            archive.extract(factory=factory)  # py7zr, into memory: the unbounded reference
            return factory

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    add_json_option(parser)
    options = parser.parse_args()
    results = Results(options.json)
    payload = os.urandom(options.mib * 1024 * 1024 // 4)  # four members of fresh (incompressible) bytes
    members = {f"m{i}.bin": payload for i in range(4)}
    cases: list[tuple[str, bytes, Callable[[bytes], Callable[[], object]] | None]] = [
        ("tar", files(members), stdlib_tar),
        ("tar.gz", files(members, "gz"), stdlib_tar),
        ("tar.xz", files(members, "xz"), stdlib_tar),
        ("gz", gzip.compress(payload * 4, 1), None),
        ("7z (py7zr-written LZMA2)", _seven(members), reference_7z),
    ]
    print(f"reading {options.mib} MiB of incompressible members, median of {options.rounds}")
    print("| format | ours s | MiB/s | reference s | ratio |")
    print("|---|---|---|---|---|")
    for label, data, reference in cases:
        ours_s = median_time(ours(data, "x"), options.rounds)
        line = f"| {label} | {ours_s:.3f} | {options.mib / ours_s:.0f} |"
        ratio = None
        if reference is not None:
            ref_s = median_time(reference(data), options.rounds)
            ratio = ours_s / ref_s
            line += f" {ref_s:.3f} | {ratio:.2f}x |"
        else:
            line += " - | - |"
        print(line)
        results.add(f"archive read: {label}, {options.mib} MiB", ours_s, ratio=ratio,
                    reference="tarfile / py7zr, no limits" if ratio is not None else None,
                    note=f"{options.mib / ours_s:.0f} MiB/s; median of {options.rounds}")
    print()
    print("| refusal | seconds | finding |")
    print("|---|---|---|")
    hostile = [  # (label, bytes, file name, the finding that must name it)
        ("1 GiB gzip bomb (1 MiB)", gzip.compress(bytes(1 << 30), 9), "x.gz", "ssi.archive.ratio"),
        ("1 GiB bzip2 bomb", bz2.compress(bytes(1 << 28)), "x.bz2", "ssi.archive.ratio"),
        ("xz bomb", lzma.compress(bytes(1 << 28)), "x.xz", "ssi.archive.ratio"),
        ("7z header declaring 2^40 files", build_7z([SevenMember("a", b"x")], declared_files=1 << 40), "x.7z",
         "ssi.archive.too-many-entries"),
        ("7z with a 4 GiB dictionary", build_7z([SevenMember("a", b"x", coder=LZMA, dictionary=0xFFFFFFFF)]),
         "x.7z", "ssi.archive.dictionary"),
        ("tar.gz of 100 000 entries", files({f"f{i}": b"" for i in range(100_000)}, "gz"), "x.tgz",
         "ssi.archive.too-many-entries"),
    ]
    for label, data, name, expected in hostile:
        kind = detect(data[:512])
        assert kind is not None
        started = time.perf_counter()
        listing = read_archive(io.BytesIO(data), kind, file_name=name, limits=TriageLimits(max_entries=1000),
                               sink=MemoryCollector(64 << 20, 256 << 20))
        elapsed = time.perf_counter() - started
        found = sorted({f.rule for f in listing.findings})
        print(f"| {label} | {elapsed:.3f} | {', '.join(found)} |")
        results.add(f"archive refusal: {label}", elapsed, goal=f"refused with {expected}", met=expected in found,
                    note=f"findings: {', '.join(found) or 'none'}")


def _seven(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return out.getvalue()


if __name__ == "__main__":
    main()
