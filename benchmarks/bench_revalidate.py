"""Re-validation benchmark (on demand: `python benchmarks/bench_revalidate.py [--packages 1000] [--cda-share 0.1]`).

Issue 7's measure: re-validating N stored packages when only J66 changed, against a full re-run.
Real components: moto's S3 server, the verdict index (SQLite), the engine with every check family but
the antivirus (no clamd needed: it reads no ruleset component, so it is carried or cached like pii),
the CI-SIS ruleset synced from ``../shared`` (one volet compiled). No Prefect: a re-validation is one
flow run whatever N is, so Prefect's cost (~1 s) is per run, not per package.

Each package holds a text log and a screenshot-like PNG, and a share of them (``--cda-share``) a CDA
document. Steps: N verdicts stored under J66 version A (the pipeline's way, timed as the reference
"first validation"); then J66 B -> re-validation with a cold result cache; J66 C -> ``--full`` re-run
(every package downloaded, every check run, no cache); J66 D -> re-validation with a warm cache.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from benchjson import Results, add_json_option
from test_valuesets_sync_support import RETIRED, http_folder, j66, publish

from fixtures.ans import ANS_TREE  # $PROOFCHECK_ANS_TREE, else ../shared beside the clone
from flows import verdicts as vd
from flows.devharness.local import LocalPipeline
from flows.index import VerdictIndex
from flows.revalidate import Revalidation
from flows.settings import PipelineSettings
from flows.storage import PackageRef, Store
from flows.valueset_sync import run_sync, store_of
from validators.base import Validator
from validators.cda.store import RulesetStore
from validators.cda.sync import sync
from validators.dryrun import current_ruleset
from validators.engine import Engine
from validators.package import open_package
from validators.registry import default_validators
from validators.verdict_io import StoredVerdict

VACCINATION = ANS_TREE / "ExemplesCDA" / "VAC_2023.01.xml"


def no_antivirus(settings: Mapping[str, Any]) -> list[Validator]:
    return [v for v in default_validators(settings) if v.name != "antivirus"]


def png(shade: int, width: int = 64, height: int = 24) -> bytes:
    """A small valid grey PNG, one per package (no text: the OCR pass runs and finds nothing)."""
    raw = b"".join(b"\x00" + bytes([shade % 256]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def screenshot(i: int, size: tuple[int, int]) -> bytes:
    """A screen-sized PNG with a few lines of text, as publishers' captures are (the OCR pass reads it)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for line in range(12):
        draw.text((40, 40 + 50 * line), f"Paquet {i} - dossier patient fictif - ligne {line}", fill="black")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def package(i: int, with_cda: bool, document: bytes, screen: tuple[int, int] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("INS.41.2.2/journal.txt", f"journal de test fictif du paquet {i}\n" * 20)
        image = screenshot(i, screen) if screen else png(i, 64 + i // 256)
        archive.writestr("ERGO.1.1.1/capture.png", image)
        if with_cda:  # unique bytes per package: no cache hit between packages
            archive.writestr("DOC.3.1.2/vaccination.xml", document + f"<!-- paquet {i} -->\n".encode())
    return out.getvalue()


def first_validation(store: Store, settings: PipelineSettings, refs: list[PackageRef], work: Path) -> float:
    """Verdicts as the pipeline stores them (engine, verdict JSON + HTML, index), without Prefect."""
    es = settings.engine_settings
    engine = Engine(no_antivirus(es), ruleset=current_ruleset(es), settings=es)
    index = VerdictIndex(settings.index_url)
    index.ensure(store)
    started = time.monotonic()
    for ref in refs:
        path = work / "pkg.zip"
        store.download(ref, path, settings.max_package_bytes)
        with open_package(path, settings=es) as contents:
            verdict = vd.with_source(engine.run(contents), ref)
        stored = StoredVerdict.new(verdict, object=vd.object_section(ref, area="inbox", publisher="acme"))
        key = store.put_verdict(ref, verdict.provenance.ruleset_version, stored.to_bytes(), b"<html></html>")
        assert key is not None
        index.record(stored, key)
    index.close()
    return time.monotonic() - started


def timed_revalidation(store: Store, settings: PipelineSettings, *, full: bool) -> tuple[float, dict[str, Any]]:
    revalidation = Revalidation(store, settings, validators_factory=no_antivirus, full=full)
    started = time.monotonic()
    record = revalidation.run()
    return time.monotonic() - started, record


def modes(record: Mapping[str, Any]) -> str:
    counts: dict[str, int] = {}
    for outcome in record["packages"]:
        counts[outcome["mode"]] = counts.get(outcome["mode"], 0) + 1
    return ", ".join(f"{n} {m}" for m, n in sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--cda-share", type=float, default=0.1, help="share of packages holding a CDA document")
    parser.add_argument(
        "--screenshot", metavar="WxH", help="captures of this size with text (OCR runs on them), e.g. 1366x768"
    )
    add_json_option(parser)
    args = parser.parse_args()
    if not VACCINATION.is_file():
        print(f"ANS reference tree absent ({ANS_TREE}): nothing measured")
        return 2
    results = Results()
    document = VACCINATION.read_bytes()
    with tempfile.TemporaryDirectory(prefix="bench-revalidate-") as tmp:
        root = Path(tmp)
        rulesets = RulesetStore(root / "rulesets")
        sync(str(ANS_TREE), rulesets, only=["VAC_2023.01"])
        local = LocalPipeline(root)
        try:
            local.start_s3(notifications=False)
            settings = replace(
                local.settings,
                engine_settings={"rulesets_dir": str(rulesets.root), "cda_profiles": []},
                check_slots=4,
            )
            store = Store.connect(settings)
            settings.work_dir.mkdir(parents=True, exist_ok=True)
            source = root / "valuesets"
            every = max(1, round(1 / args.cda_share)) if args.cda_share > 0 else 0
            with http_folder(source) as url:

                def new_j66(version: str, drop: tuple[tuple[str, str], ...] = ()) -> None:
                    publish(source, j66(version, drop=drop))
                    outcome = run_sync(store_of(settings.engine_settings), url, timeout=10)
                    assert outcome.outcome == "new", outcome

                new_j66("20250115120000")
                started = time.monotonic()
                screen = tuple(int(n) for n in args.screenshot.split("x")) if args.screenshot else None
                refs = [
                    local.upload(
                        store,
                        f"inbox/acme/paquet-{i:05d}.zip",
                        package(i, bool(every) and i % every == 0, document, screen),  # type: ignore[arg-type]
                    )
                    for i in range(args.packages)
                ]
                print(f"{len(refs)} packages uploaded in {time.monotonic() - started:.1f} s")
                first = first_validation(store, settings, refs, root)
                print(f"first validation (reference, no cache):     {first:8.1f} s")
                new_j66("20250215120000", drop=(RETIRED,))
                cold, record_b = timed_revalidation(store, settings, full=False)
                print(f"J66 changed, result cache cold:            {cold:8.1f} s  ({modes(record_b)})")
                print(f"    result cache: {record_b['cache']}")
                new_j66("20250315120000")
                full, record_c = timed_revalidation(store, settings, full=True)
                print(f"full re-run (--full, no carry-over/cache): {full:8.1f} s  ({modes(record_c)})")
                new_j66("20250415120000", drop=(RETIRED,))
                warm, record_d = timed_revalidation(store, settings, full=False)
                print(f"J66 changed, result cache warm:            {warm:8.1f} s  ({modes(record_d)})")
                print(f"    result cache: {record_d['cache']}")
            n = args.packages
            per = {name: value / n * 1000 for name, value in (("cold", cold), ("warm", warm), ("full", full))}
            print("per package: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in per.items()))
            print(f"speed-up vs full re-run: cold {full / cold:.1f}x, warm {full / warm:.1f}x")
            note = (
                f"{n} packages, {args.cda_share:.0%} with a CDA, captures {args.screenshot or '64x24 blank'};"
                " checks: all families but antivirus"
            )
            results.add("revalidate_j66_cold", cold, ratio=cold / full, reference="full re-run", note=note)
            results.add("revalidate_j66_warm", warm, ratio=warm / full, reference="full re-run",
                        goal="well under a full re-run", met=warm < full / 2, note=note)  # fmt: skip
            results.add("revalidate_full", full, ratio=full / first, reference="first validation", note=note)
        finally:
            local.stop()
    if args.json:
        results.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
