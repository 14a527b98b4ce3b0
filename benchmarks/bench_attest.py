"""Cost of signed verdicts (issue 18): sealing (chain section, serialisation, in-toto statement, DSSE
Ed25519 signature) and offline verification, per verdict, and the bytes the attestation adds.

    .venv/bin/python benchmarks/bench_attest.py [--files N] [--rounds R] [--json PATH]

Goal: signing and verifying each under 5 ms per verdict (negligible next to a check). Verdicts are built
from the report fixtures with N files (default 160: the largest packages instructors see).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from benchjson import Results, add_json_option, p95  # noqa: E402

from tests.conftest_reports import sample_verdict  # noqa: E402
from validators.attest.keys import Ed25519Signer, Keyring  # noqa: E402
from validators.attest.seal import seal, verdict_bytes  # noqa: E402
from validators.attest.verify import verify  # noqa: E402
from validators.report.json_report import to_document  # noqa: E402


def _document(files: int) -> dict[str, object]:
    verdict = sample_verdict()
    proof = verdict.proofs[0]
    template = proof.files[0]
    many = tuple(replace(template, path=f"{proof.id}/capture-{i:03d}.png", sha256=f"{i:064x}") for i in range(files))
    return to_document(replace(verdict, proofs=(replace(proof, files=many),)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=200)
    add_json_option(parser)
    args = parser.parse_args()
    signer = Ed25519Signer.generate()
    keyring = Keyring.of([signer.private_key.public_key()])
    base = _document(args.files)
    plain = len(verdict_bytes(dict(base)))
    sign_times, verify_times, plain_times = [], [], []
    sealed = None
    for _ in range(args.rounds):
        doc = dict(base)
        start = time.perf_counter()
        verdict_bytes(doc)
        plain_times.append(time.perf_counter() - start)
        doc = dict(base)
        start = time.perf_counter()
        sealed = seal(doc, signer, previous_sha256="0" * 64, previous_key="reports/x/v-1/r.json")
        sign_times.append(time.perf_counter() - start)
        assert sealed.attestation is not None
        start = time.perf_counter()
        result = verify(sealed.verdict, sealed.attestation, keyring)
        verify_times.append(time.perf_counter() - start)
        assert result.ok
    assert sealed is not None and sealed.attestation is not None
    added = len(sealed.verdict) - plain + len(sealed.attestation)
    ms = 1000.0
    seal_median = statistics.median(sign_times)
    print(f"verdict with {args.files} files: {plain} bytes unsigned")
    print(f"seal (serialise + statement + sign): median {seal_median * ms:.2f} ms, p95 {p95(sign_times) * ms:.2f} ms"
          f" (plain serialisation {statistics.median(plain_times) * ms:.2f} ms)")
    print(f"verify: median {statistics.median(verify_times) * ms:.2f} ms, p95 {p95(verify_times) * ms:.2f} ms")
    print(f"bytes added: {added} ({len(sealed.attestation)} attestation + {len(sealed.verdict) - plain} in the "
          f"verdict: key, chain)")
    added_times = [s - p for s, p in zip(sign_times, plain_times, strict=True)]
    print(f"added by signing (seal minus the serialisation done anyway): median "
          f"{statistics.median(added_times) * ms:.2f} ms, p95 {p95(added_times) * ms:.2f} ms")
    results = Results()
    results.add("attest: signing added per verdict", statistics.median(added_times) * ms, unit="ms",
                p95=p95(added_times) * ms, goal="< 5 ms", met=statistics.median(added_times) * ms < 5,
                note=f"{args.files} files, Ed25519; seal in all {seal_median * ms:.2f} ms, {args.rounds} rounds")
    results.add("attest: verify one verdict", statistics.median(verify_times) * ms, unit="ms",
                p95=p95(verify_times) * ms, goal="< 5 ms", met=statistics.median(verify_times) * ms < 5)
    results.add("attest: bytes added", float(added), unit="B", note="attestation + key and chain sections")
    results.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
