"""Coverage-guided fuzzing (atheris / libFuzzer) of the zip triage and the NIR scan, for a bounded time.

    .venv/bin/pip install -e '.[fuzz]'            # atheris; never needed by CI or the pipeline
    .venv/bin/python benchmarks/fuzz_atheris.py zip --seconds 300
    .venv/bin/python benchmarks/fuzz_atheris.py nir --seconds 300 [--corpus DIR]

Each target checks the same properties as the hypothesis tests (``tests/test_fuzz_*.py``): no exception,
every finding catalogued, NIR evidence masked. libFuzzer writes a failing input as ``crash-<sha1>`` in the
current folder and stops; turn it into a regression test. Not run in CI (``make bench`` does not run it).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MASKED = re.compile(r"[1-8*] \*\* \*\* \*\* \*\*\* \*\*\* (?:\d\d|--)")


def zip_target() -> Callable[[bytes], None]:
    from validators import rules
    from validators.ziptriage import MemberError, TriageLimits, read_member, triage

    catalogue = rules.catalogue()
    tight = TriageLimits(max_entries=6, max_total_size=4096, max_entry_size=2048, max_ratio=5.0, ratio_floor=64)

    def one(data: bytes) -> None:
        for limits in (None, tight):
            report = triage(io.BytesIO(data), limits=limits)
            assert all(f.rule in catalogue for f in report.findings)
            for entry in report.extractable():
                assert entry.path is not None and ".." not in entry.path.split("/")
                try:
                    produced = sum(len(p) for p in read_member(io.BytesIO(data), entry, max_bytes=1 << 20))
                    assert produced <= entry.declared_size
                except MemberError as exc:
                    assert exc.rule in catalogue

    return one


def nir_target() -> Callable[[bytes], None]:
    from validators.pii.allowlist import load_allowlist
    from validators.pii.nir import KeyStatus, find_nirs, nir_key
    from validators.pii.scan import scan_segments
    from validators.pii.segments import TextSegment
    from validators.pii.textsources import decode_text

    allowlist = load_allowlist({})

    def one(data: bytes) -> None:
        text = decode_text(data)
        for lenient in (False, True):
            for match in find_nirs(text, lenient=lenient):
                assert 0 <= match.start < match.end <= len(text)
                assert (match.key_status is KeyStatus.VALID) == (
                    match.key is not None and int(match.key) == nir_key(match.body))
        for finding in scan_segments([TextSegment(text)], allowlist):
            assert finding.evidence is None or MASKED.fullmatch(finding.evidence)

    return one


TARGETS = {"zip": zip_target, "nir": nir_target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=120, help="total fuzzing time")
    parser.add_argument("--corpus", help="libFuzzer corpus folder (grows with what it finds)")
    args, extra = parser.parse_known_args()
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: .venv/bin/pip install -e '.[fuzz]'")
    with atheris.instrument_imports():
        one = TARGETS[args.target]()
    libfuzzer = [sys.argv[0], f"-max_total_time={args.seconds}", "-max_len=65536", "-timeout=10", "-rss_limit_mb=2048",
                 *extra]
    if args.corpus:
        Path(args.corpus).mkdir(parents=True, exist_ok=True)
        libfuzzer.append(args.corpus)
    atheris.Setup(libfuzzer, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
