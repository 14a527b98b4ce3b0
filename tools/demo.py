"""`make dry-run-demo`: generate the fixture packages and dry-run each one (no S3, no Prefect).

Obtains the CDA ruleset as `make demo` does (flows/devharness/demo.py: the ANS repository, then
$PROOFCHECK_RULESET_SOURCE, then the ANS tree beside the clone; cached in var/rulesets). Prints one line
per package: `<package> <status> <report> (ruleset <version>)`. Starts a private clamd when ClamAV is
installed (and stops it by PID), so the antivirus check runs; without it that check says "not run".
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fixtures.packages import build_all  # noqa: E402
from flows.devharness.demo import RULESETS, obtain_ruleset  # noqa: E402
from validators.dryrun import build_engine, dry_run  # noqa: E402
from validators.report import html  # noqa: E402


@contextlib.contextmanager
def private_clamd(work: Path) -> Iterator[dict[str, str]]:
    try:
        manager = importlib.import_module("validators.ssi.clamd_manager")
    except ModuleNotFoundError:
        yield {}
        return
    with manager.private_clamd(work / "clamd") as settings:
        yield settings


def main() -> int:
    work = ROOT / "var" / "demo"
    packages = build_all(work / "packages")
    reports = work / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    store = ROOT / RULESETS
    obtained = obtain_ruleset(store)
    print(f"dry-run-demo: {obtained.line}", flush=True)
    with private_clamd(work) as settings:
        # The demo knowingly runs on the project's test signatures: the verdicts' provenance says so.
        engine = build_engine({**settings, "antivirus_test_signatures": "accept", "rulesets_dir": str(store)})
        for package in packages:
            verdict = dry_run(package, engine=engine)
            report = reports / f"{package.stem}.html"
            report.write_text(html.render(verdict), encoding="utf-8")
            used = verdict.provenance.ruleset_version
            print(f"{package.stem} {verdict.status.value} {report.relative_to(ROOT)} (ruleset {used})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
