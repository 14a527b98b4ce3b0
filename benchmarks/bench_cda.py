"""CDA check timings on the ANS examples (run on demand, never in CI): ``python benchmarks/bench_cda.py``.

Prints: full sync + compile time; per document warm XSD + J66 vs raw lxml on the same files (goal
<= 1.5x); all checks (XSD + J66 + volet + 5 profiles) median and p95 warm (goal median <= 0.3 s); the cold
first run of a one-shot process with the compiled cache present.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchjson import Results, add_json_option  # noqa: E402

from fixtures.ans import ANS_TREE  # noqa: E402  ($PROOFCHECK_ANS_TREE, else ../shared beside the clone)
from validators.base import CheckContext, ProofFile  # noqa: E402
from validators.cda import CdaSchematronValidator, CdaValidator, ruleset_info  # noqa: E402
from validators.cda.store import RulesetStore  # noqa: E402
from validators.cda.sync import sync  # noqa: E402

COLD_SCRIPT = """
import sys, time
started = time.monotonic()
from validators.base import CheckContext, ProofFile
from validators.cda import CdaSchematronValidator, CdaValidator, ruleset_info
settings = {"rulesets_dir": sys.argv[1]}
data = open(sys.argv[2], "rb").read()
file = ProofFile(path="doc.xml", size=len(data), sha256="", media_type="text/xml", data=data)
ctx = CheckContext(ruleset=ruleset_info(settings).handle)
CdaValidator(settings).check(file, ctx)
CdaSchematronValidator(settings).check(file, ctx)
print(f"{time.monotonic() - started:.2f}")
"""


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def proof(path: Path) -> ProofFile:
    data = path.read_bytes()
    return ProofFile(path=path.name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="text/xml", data=data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_json_option(parser)
    args = parser.parse_args()
    results = Results(args.json)
    goals = {"CDA XSD + J66 per document, warm": "<= 1.5x raw",
             "CDA all checks (XSD + J66 + volet + 5 profiles) per document, warm": "median <= 0.3 s"}
    for name, goal in goals.items():
        results.expect(name, goal)
    if not ANS_TREE.is_dir():
        for name, goal in goals.items():  # the goals stay in the table, not met, with the reason
            results.missing(name, goal, f"ANS reference tree absent ({ANS_TREE})")
        sys.exit(f"ANS tree absent: {ANS_TREE}")
    store_root = Path(tempfile.mkdtemp(prefix="bench-cda-"))
    result = sync(str(ANS_TREE), RulesetStore(store_root))
    manifest = result.version.manifest
    slowest = sorted(((e.get("compile_seconds", 0.0), e["name"]) for e in manifest["schematrons"].values()),
                     reverse=True)[:3]
    print(f"sync (copy + repair + compile 64 schematrons): {result.seconds:.1f} s; "
          f"compile {manifest['compile_seconds']:.1f} s; slowest: "
          + ", ".join(f"{name} {sec:.2f} s" for sec, name in slowest))
    results.add("CDA ruleset sync + compile", result.seconds, note=f"compile {manifest['compile_seconds']:.1f} s")

    settings = {"rulesets_dir": str(store_root)}
    info = ruleset_info(settings)
    ctx = CheckContext(ruleset=info.handle)
    files = [proof(p) for p in sorted((ANS_TREE / "ExemplesCDA").glob("*.xml"))]
    cda = CdaValidator(settings)
    schema = info.handle.xsd()

    raw, ours = [], []
    for _ in range(3):  # warm: the third pass is measured
        raw, ours = [], []
        for file in files:
            data = file.data or b""
            started = time.perf_counter()
            tree = etree.ElementTree(etree.fromstring(data, etree.XMLParser(resolve_entities=False)))
            schema.validate(tree)
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            cda.check(file, ctx)
            ours.append(time.perf_counter() - started)
    print(f"XSD + J66 per document (warm, {len(files)} docs): median {statistics.median(ours) * 1000:.2f} ms "
          f"vs raw lxml {statistics.median(raw) * 1000:.2f} ms -> ratio "
          f"{statistics.median(ours) / statistics.median(raw):.2f}x (total {sum(ours) / sum(raw):.2f}x)")
    ratio = statistics.median(ours) / statistics.median(raw)
    results.add_timings("CDA XSD + J66 per document, warm", ours, ratio=ratio, reference="raw lxml parse + XSD",
                        goal="<= 1.5x raw", met=ratio <= 1.5, note=f"{len(files)} ANS examples")
    results.add_timings("raw lxml parse + XSD per document (reference)", raw)

    everything = CdaSchematronValidator(settings)
    started = time.perf_counter()
    for file in files:  # first pass loads every stylesheet the examples need
        everything.check(file, ctx)
    print(f"first pass over the examples (loads stylesheets): {time.perf_counter() - started:.1f} s")
    timings = []
    for file in files:
        started = time.perf_counter()
        cda.check(file, ctx)
        everything.check(file, ctx)
        timings.append(time.perf_counter() - started)
    print(f"all checks (XSD + J66 + volet + 5 profiles), warm: median {statistics.median(timings):.3f} s, "
          f"p95 {p95(timings):.3f} s, max {max(timings):.3f} s")
    results.add_timings("CDA all checks (XSD + J66 + volet + 5 profiles) per document, warm", timings,
                        ratio=statistics.median(timings) / statistics.median(raw), reference="raw lxml parse + XSD",
                        goal="median <= 0.3 s", met=statistics.median(timings) <= 0.3)
    volet_only = CdaSchematronValidator({**settings, "cda_profiles": ()})
    volet = []
    for file in files:
        started = time.perf_counter()
        volet_only.check(file, ctx)
        volet.append(time.perf_counter() - started)
    print(f"volet only, warm: median {statistics.median(volet) * 1000:.1f} ms, p95 {p95(volet) * 1000:.1f} ms")
    results.add_timings("CDA volet Schematron only per document, warm", volet,
                        ratio=statistics.median(volet) / statistics.median(raw), reference="raw lxml parse + XSD")

    sample = ANS_TREE / "ExemplesCDA" / "BIO-CR-BIO_2024.01_TSH_1.xml"
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", COLD_SCRIPT, str(store_root), str(sample)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    whole = time.perf_counter() - started
    print(f"cold one-shot process, compiled cache present, one document, all checks: "
          f"{out.stdout.strip()} s in-process ({whole:.1f} s with interpreter start)")
    results.add("CDA cold one-shot process, one document, all checks", float(out.stdout.strip()),
                note=f"{whole:.1f} s with interpreter start; compiled cache present")
    results.write(args.json)


if __name__ == "__main__":
    main()
