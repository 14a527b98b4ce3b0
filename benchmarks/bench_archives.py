"""Archives beyond zip: time to read each format into memory (the archive check's path), against the
stdlib or py7zr reading the same bytes with no limits, and time to refuse bombs and hostile headers.

    .venv/bin/python benchmarks/bench_archives.py [--mib 32] [--rounds 3]
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
    options = parser.parse_args()
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
        if reference is not None:
            ref_s = median_time(reference(data), options.rounds)
            line += f" {ref_s:.3f} | {ours_s / ref_s:.2f}x |"
        else:
            line += " - | - |"
        print(line)
    print()
    print("| refusal | seconds | finding |")
    print("|---|---|---|")
    hostile = [
        ("1 GiB gzip bomb (1 MiB)", gzip.compress(bytes(1 << 30), 9), "x.gz"),
        ("1 GiB bzip2 bomb", bz2.compress(bytes(1 << 28)) , "x.bz2"),
        ("xz bomb", lzma.compress(bytes(1 << 28)), "x.xz"),
        ("7z header declaring 2^40 files", build_7z([SevenMember("a", b"x")], declared_files=1 << 40), "x.7z"),
        ("7z with a 4 GiB dictionary", build_7z([SevenMember("a", b"x", coder=LZMA, dictionary=0xFFFFFFFF)]), "x.7z"),
        ("tar.gz of 100 000 entries", files({f"f{i}": b"" for i in range(100_000)}, "gz"), "x.tgz"),
    ]
    for label, data, name in hostile:
        kind = detect(data[:512])
        assert kind is not None
        started = time.perf_counter()
        listing = read_archive(io.BytesIO(data), kind, file_name=name, limits=TriageLimits(max_entries=1000),
                               sink=MemoryCollector(64 << 20, 256 << 20))
        elapsed = time.perf_counter() - started
        print(f"| {label} | {elapsed:.3f} | {', '.join(sorted({f.rule for f in listing.findings}))} |")


def _seven(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return out.getvalue()


if __name__ == "__main__":
    main()
