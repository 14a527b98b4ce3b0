"""CDA documents carrying media (issue 12 item 2), run on demand: `.venv/bin/python benchmarks/bench_cda_media.py`.

1. Seconds per CDA document with 20 observationMedia screenshots (PNG, base64, each a child checked like a
   file): the payload extraction alone, the engine without the personal-data check (its OCR of each image
   dominates), and every check as the dry run applies them (clamd when installed, OCR; the CDA ruleset when
   ``--rulesets`` names a synced store).
2. The bound: a CDA with 10 000 observationMedia gets its verdict (how long, how many children, the finding)
   without decoding them all.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchjson import Results, add_json_option  # noqa: E402
from peakmem import vm_hwm_mib  # noqa: E402

from fixtures import builders, hostile  # noqa: E402
from fixtures.hostile_content import cda, observation_media  # noqa: E402
from validators.base import ProofFile  # noqa: E402
from validators.cda import embedded  # noqa: E402
from validators.cda.document import load  # noqa: E402
from validators.dryrun import build_engine  # noqa: E402
from validators.engine import Engine  # noqa: E402
from validators.registry import default_validators  # noqa: E402
from validators.ssi import clamd_manager  # noqa: E402


def cda_with_media(count: int, seed: int) -> bytes:
    entries = [
        observation_media(f"img-{i}", "image/png", builders.make_screenshot(
            [f"Examen {seed}-{i}", "Compte rendu de démonstration", "Patient fictif PAT-TROIS Dominique"],
            size=(1024, 576)))
        for i in range(count)
    ]
    narrative = "".join(f'<renderMultiMedia referencedObject="img-{i}"/>' for i in range(count))
    return cda(narrative, entries)


def proof(data: bytes) -> ProofFile:
    return ProofFile(path="DOC.1.1.1/compte-rendu.xml", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="text/xml", data=data, proof_id="DOC.1.1.1")


@contextlib.contextmanager
def services(rulesets: str | None) -> Iterator[dict[str, Any]]:
    settings: dict[str, Any] = {"antivirus_test_signatures": "accept"}
    settings["rulesets_dir"] = rulesets or "/nonexistent/proofcheck-rulesets"
    if clamd_manager.clamd_binary() is None:
        print("ClamAV not installed: the antivirus is reported as not run (its time is not counted)")
        yield settings
        return
    with tempfile.TemporaryDirectory() as folder, clamd_manager.private_clamd(Path(folder)) as clamd:
        yield {**settings, **clamd}


def per_document(label: str, engine: Engine, documents: list[bytes], results: Results, note: str) -> None:
    timings = []
    for data in documents:
        started = time.perf_counter()
        verdict = engine.check_file(proof(data))
        timings.append(time.perf_counter() - started)
        assert len(verdict.children) == 20, len(verdict.children)
    results.add_timings(f"CDA with 20 media: {label}", timings, note=note)
    print(f"{label}: median {sorted(timings)[len(timings) // 2]:.2f} s, max {max(timings):.2f} s "
          f"over {len(timings)} documents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=5, help="documents measured per configuration")
    parser.add_argument("--rulesets", help="a synced ruleset store (XSD and Schematron then run too)")
    add_json_option(parser)
    args = parser.parse_args()
    results = Results()
    documents = [cda_with_media(20, seed) for seed in range(args.documents)]
    size = sum(map(len, documents)) / len(documents) / 2**20
    print(f"{args.documents} CDA documents with 20 PNG screenshots (1024x576) each, {size:.1f} MiB on average")

    timings = []
    for data in documents:
        loaded = load(data, max_bytes=64 * 2**20, max_depth=256)
        assert loaded.document is not None
        started = time.perf_counter()
        children, _ = embedded.extract(loaded.document)
        timings.append(time.perf_counter() - started)
        assert len(children) == 20
    results.add_timings("CDA with 20 media: payload extraction", timings, note="decode 20 base64 PNGs")
    print(f"payload extraction alone: median {sorted(timings)[len(timings) // 2] * 1000:.0f} ms")

    with services(args.rulesets) as settings:
        without_pii = [v for v in default_validators(settings) if v.name != "pii"]
        engine = Engine(without_pii, settings=settings)
        per_document("every check but personal data (no OCR)", engine, documents, results,
                     "format, archive, SSI (clamd), CDA on the document and its 20 children")
        full = build_engine(settings)
        per_document("every check (dry run: OCR of each screenshot included)", full, documents[:2], results,
                     "what `proofcheck dry-run` does with this proof")

        tiny = hostile.png(1, 1)
        bomb = cda("", [observation_media(f"m{i}", "image/png", tiny) for i in range(10_000)])
        started = time.perf_counter()
        verdict = full.check_file(proof(bomb))
        elapsed = time.perf_counter() - started
        found = sorted({f.rule for f in verdict.findings if f.rule.startswith("ssi.cda")})
        # VmHWM of this process (ru_maxrss would start from the peak of the process that started it).
        peak = vm_hwm_mib()
        results.add("CDA with 10 000 observationMedia: verdict", elapsed, peak_mib=peak,
                    note=f"{len(verdict.children)} children checked, {found}, {len(bomb) / 2**20:.1f} MiB; peak = "
                         "VmHWM of the benchmark's process over the whole script (documents, engines, this one)")
        print(f"10 000 observationMedia ({len(bomb) / 2**20:.1f} MiB): verdict in {elapsed:.1f} s, "
              f"{len(verdict.children)} children checked, findings {found}; peak RSS {peak:.0f} MiB")
    results.write(args.json)


if __name__ == "__main__":
    main()
