"""Benchmark (run on demand, never in CI): the filetype check and the report renderers.

    .venv/bin/python benchmarks/bench_filetype_reports.py

Prints: filetype time per small file, on large files on disk (end checks read a bounded amount or
stream), the time to render each report format for a large verdict, and to read it back
(``validators.verdict_io``: schema, model, consistency).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import struct
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from benchjson import Results, add_json_option
from PIL import Image

from validators import sniff
from validators.base import CheckContext, ProofFile
from validators.filetype import FiletypeValidator
from validators.model import (
    CheckRun,
    CheckState,
    FileVerdict,
    Finding,
    Location,
    PackageInfo,
    PackageVerdict,
    ProofVerdict,
    Provenance,
    Severity,
)
from validators.report import html, json_report, junit, sarif
from validators.verdict_io import read_verdict


def _png(size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _noise_png(size: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((size, size), 100).convert("RGB").save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _jpeg(size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 120, 10)).save(out, format="JPEG")
    return out.getvalue()


def _mp4_on_disk(path: Path, payload: int) -> None:
    with path.open("wb") as out:
        out.write(struct.pack(">I4s", 24, b"ftyp") + b"isom\x00\x00\x02\x00isommp41")
        out.write(struct.pack(">I4s", 16, b"moov") + struct.pack(">I4s", 8, b"free"))
        out.write(struct.pack(">I4s", 8 + payload, b"mdat"))
        out.truncate(out.tell() + payload)  # sparse: no need to write the bytes


RESULTS = Results()


def _timed(
    label: str,
    action: Callable[[], object],
    repeat: int = 3,
    reference: str | None = None,
    reference_seconds: float | None = None,
) -> float:
    """Best wall time of ``repeat`` runs; peak Python allocations measured on a separate run.

    The JSON row holds the median and p95 of the runs; its ratio compares best times with the reference's."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    elapsed = min(timings)
    tracemalloc.start()
    action()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{label:<58} {elapsed * 1000:9.2f} ms   peak {peak / 1e6:7.1f} MB")
    RESULTS.add_timings(" ".join(label.split()), timings, peak_mib=round(peak / 2**20, 1), reference=reference,
                        ratio=elapsed / reference_seconds if reference_seconds else None,
                        note=f"best of {repeat}: {elapsed * 1000:.2f} ms; peak = Python allocations")
    return elapsed


def _proof_file(path: str, data: bytes | None = None, disk: Path | None = None) -> ProofFile:
    size = len(data) if data is not None else (disk.stat().st_size if disk else 0)
    return ProofFile(path=path, size=size, sha256="0" * 64, media_type="", data=data, disk_path=disk)


def bench_filetype() -> None:
    check = FiletypeValidator()
    png, jpeg = _png(), _jpeg()
    small = [
        _proof_file(f"P.1.1.{i}/f{i}.{ext}", data)
        for i in range(50)
        for ext, data in (("png", png), ("jpg", jpeg), ("log", b"INFO ok\n" * 200), ("xml", b"<a/>" * 50))
    ]
    sniffed = _timed(f"libmagic sniff alone on the same {len(small)} files (reference)",
                     lambda: [sniff.media_type(f.data or b"") for f in small])
    label = f"filetype on {len(small)} small files (total)"
    _timed(label, lambda: [check.check(f, CheckContext()) for f in small], reference="libmagic sniff alone",
           reference_seconds=sniffed)
    with tempfile.TemporaryDirectory() as folder:
        big_png = Path(folder) / "big.png"
        big_png.write_bytes(_noise_png(3000))
        _timed(f"filetype on a {big_png.stat().st_size / 1e6:.0f} MB PNG on disk",
               lambda: check.check(_proof_file("big.png", disk=big_png), CheckContext()))
        big_jpeg = Path(folder) / "big.jpg"
        noise = io.BytesIO()
        Image.effect_noise((4000, 4000), 100).convert("RGB").save(noise, format="JPEG", quality=95)
        big_jpeg.write_bytes(noise.getvalue())
        _timed(f"filetype on a {big_jpeg.stat().st_size / 1e6:.1f} MB JPEG on disk (streamed)",
               lambda: check.check(_proof_file("big.jpg", disk=big_jpeg), CheckContext()))
        video = Path(folder) / "video.mp4"
        _mp4_on_disk(video, 2 * 1024**3)
        _timed("filetype on a 2 GiB MP4 on disk (box walk)",
               lambda: check.check(_proof_file("video.mp4", disk=video), CheckContext()))


def _big_verdict(proofs: int, files_per_proof: int) -> PackageVerdict:
    finding = Finding("format.extension-mismatch", Severity.WARNING, "The content is image/png but ...",
                      Location(page=1, line=3))
    nir = Finding("pii.nir", Severity.ERROR, "A NIR appears.", Location(page=2, span=(1, 16)),
                  "1 ** ** ** *** *** 42")
    files = lambda p: tuple(  # noqa: E731
        FileVerdict(f"INS.{p}.1.1/capture-{i}.png", hashlib.sha256(b"%d" % i).hexdigest(), 1000, "image/png",
                    (CheckRun("filetype", CheckState.RAN),), (finding, nir) if i % 3 == 0 else ())
        for i in range(files_per_proof)
    )
    return PackageVerdict(
        package=PackageInfo("big.zip", "0" * 64, "bench", "REM-MDV-LGC-SF-Va1"),
        provenance=Provenance("bench"),
        proofs=tuple(ProofVerdict(f"INS.{p}.1.1", f"INS {p}.1.1", files(p)) for p in range(proofs)),
    )


def bench_reports() -> None:
    html.render(_big_verdict(1, 1))  # load the rule catalogue once, outside the timings
    for proofs, per_proof in ((20, 10), (200, 50)):
        verdict = _big_verdict(proofs, per_proof)
        label = f"{proofs * per_proof} files"
        json_seconds: float | None = None
        for name, module in (("json", json_report), ("html", html), ("sarif", sarif), ("junit", junit)):
            best = _timed(f"render {name:<5} for {label}", lambda m=module, v=verdict: m.render(v),  # type: ignore[misc]
                          reference="JSON render" if json_seconds else None, reference_seconds=json_seconds)
            json_seconds = json_seconds or best
        print(f"{'':<58} html size {len(html.render(verdict)) / 1e6:.1f} MB")
        stored = json_report.render(verdict).encode("utf-8")
        _timed(f"read back {len(stored) / 1e6:.1f} MB ({label})", lambda s=stored: read_verdict(s),  # type: ignore[misc]
               reference="JSON render", reference_seconds=json_seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_json_option(parser)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}")
    bench_filetype()
    bench_reports()
    RESULTS.write(args.json)
