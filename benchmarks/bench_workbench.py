"""The instructors' workbench (issue 15): page times over 10 000 indexed package versions, on SQLite and on
Postgres, and the carry-over of decisions across a re-validation of 1 000 packages.

- **Pages**: the verdict index is filled (through ``VerdictIndex.rebuild``, as ``proofcheck reindex`` does)
  with ``--versions`` verdicts of ``--versions / 2.5`` package keys, each of ``--proofs`` proofs (two files
  each, a finding on one proof in three). Each page is asked ``--repeat`` times through the application
  (Starlette's TestClient: routing, session, SQL, template): the package list (first page, a filtered
  and sorted one, a far page), a search, a proof across every package. Reference in the same run: the
  index's own ``latest()`` (the static index page's query), which reads every row.
- **Carry-over**: 1 000 packages (``--carry-proofs`` proofs each) get a verdict and decisions on every
  finding and on three proofs (appended one by one through the decisions' chain); then a re-validation
  stores a new verdict of each (``flows.revalidate.carry_over`` for nine in ten, a changed capture for one
  in ten) and the states of every finding and proof are
  computed as the package page does. Checked: carried where nothing changed, "to review" where it did.

Stored verdicts are served from memory (a stand-in with the Store's two read methods): the numbers are
the workbench's, not S3's. Postgres: a private cluster on a unix socket (Debian's ``postgresql``), stopped
by its PID; skipped with a line when absent. ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchjson import Results, add_json_option, p95

from validators.model import Finding
from validators.verdict_io import StoredVerdict

PUBLISHERS = [f"editeur-{i:02d}" for i in range(40)]
SOFTWARE = ["Medilogic", "CabinetPro", "DocSanté", "Praticien+"]
GOAL_SECONDS = 0.5  # our reading of "fast": a page in half a second on the shared 2-core machine


class MemoryStore:
    """What the index rebuild and the workbench read from a bucket: keys and bytes."""

    def __init__(self, bucket: str = "bench") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        from flows.storage import Layout

        self.layout = Layout()

    def iter_verdict_keys(self, under: str = "") -> Iterator[str]:
        prefix = self.layout.reports + under
        return iter(sorted(k for k in self.objects if k.startswith(prefix) and k.endswith(".json")))

    def get_bytes(self, key: str, limit: int = 0) -> bytes:
        from flows.storage import StorageError

        if key not in self.objects:
            raise StorageError(key)
        return self.objects[key]

    def put(self, key: str, stored: StoredVerdict) -> None:
        self.objects[key] = stored.to_bytes()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def verdict_doc(package: int, version: int, proofs: int, *, changed: bool = False) -> tuple[str, StoredVerdict]:
    """A stored verdict as the pipeline writes it: ``proofs`` proofs of two captures, a NIR on one in three.

    Built with the model and the catalogue (``rules.finding``), so ``read_verdict`` takes it back, as the
    index rebuild and the workbench do with every stored document.
    """
    from validators import rules
    from validators.model import (
        CheckRun,
        CheckState,
        FileVerdict,
        Location,
        PackageInfo,
        PackageVerdict,
        ProofVerdict,
        Provenance,
    )

    publisher = PUBLISHERS[package % len(PUBLISHERS)]
    key = f"inbox/{publisher}/lgc-{package:05d}.zip"
    checks = (CheckRun("pii", CheckState.RAN),)
    proof_list = []
    for p in range(proofs):
        proof_id = f"INS.{40 + p // 4}.{1 + p % 4}.{1 + p % 3}"
        files = []
        for f in range(2):
            content = f"{package}-{p}-{f}" + ("-v2" if changed and p == 0 else "")
            findings: tuple[Finding, ...] = ()
            if f == 0 and p % 3 == 0:
                findings = (rules.finding("pii.nir", Location(line=3 + p), evidence="1 ** ** ** *** *** 96",
                                          occurrences=1, explanation="named by its label"),)
            files.append(FileVerdict(f"{proof_id}/capture-{p}-{f}.png", _sha(content), 1000, "image/png",
                                     checks, findings))
        proof_list.append(ProofVerdict(proof_id, proof_id, tuple(files)))
    stored = f"2026-{1 + version % 12:02d}-{1 + package % 28:02d}T10:{package % 60:02d}:00+00:00"
    ruleset = f"2026{version:02d}01T000000Z-rs"
    verdict = PackageVerdict(
        package=PackageInfo(key.rsplit("/", 1)[-1], _sha(key), "s3", "REM-MDV-LGC-SF-Va1", ("Général",),
                            publisher=publisher, software=SOFTWARE[package % 4], software_version="2.1"),
        provenance=Provenance(ruleset, (("J66", str(version)),), "bench", stored, stored),
        proofs=tuple(proof_list),
    )
    obj = {"bucket": "bench", "key": key, "area": "inbox", "version_id": f"v{version}",
           "etag": _sha(f"{key}{version}")[:32], "size": 1000 * proofs, "stored_at": stored, "uploaded_at": stored,
           "publisher": publisher}
    return f"reports/{key}/v-v{version}/{ruleset}.json", StoredVerdict.new(verdict, object=obj)


def fill(store: MemoryStore, versions: int, proofs: int) -> int:
    packages = max(1, round(versions / 2.5))
    count = 0
    version = 0
    while count < versions:
        version += 1
        for package in range(packages):
            if count >= versions:
                break
            if version > 1 and package % 3 == 0:
                continue  # not every package has as many versions
            key, doc = verdict_doc(package, version, proofs)
            store.put(key, doc)
            count += 1
    return packages


def _app(store: MemoryStore, url: str) -> Any:
    import warnings

    from argon2 import PasswordHasher

    with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; the httpx transport works the same
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from flows.index import VerdictIndex
    from flows.web.app import create_app
    from flows.web.config import WebConfig

    index = VerdictIndex(url)
    app = create_app(store, index, WebConfig.from_env({"PROOFCHECK_WEB_SECRET": "b" * 40}),  # type: ignore[arg-type]
                     hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    auth = app.state.workbench.auth
    auth.add_account("bench", "instructor", password="bench-password-1234")  # noqa: S106 (a throwaway index)
    client = TestClient(app, follow_redirects=False)
    page = client.get("/connexion").text
    token = page.split('name="jeton" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/connexion", data={"jeton": token, "identifiant": "bench",
                                             "mot_de_passe": "bench-password-1234"})
    assert answer.status_code == 303, answer.status_code
    return index, client


PAGES = {
    "package list, first page": "/paquets",
    "package list, filtered and sorted": "/paquets?statut=fail&editeur=editeur-07&tri=paquet&ordre=asc",
    "package list, page 60 by errors": "/paquets?tri=erreurs&page=60",
    "search 'pii.nir'": "/recherche?q=pii.nir",
    "search 'capture-17'": "/recherche?q=capture-17",
    "proof INS.41.2.2 across packages": "/preuve?id=INS.41.2.2",
}


def pages(results: Results, label: str, url: str, versions: int, proofs: int, repeat: int) -> None:
    import sqlalchemy as sa

    from flows.index import verdicts as verdicts_table

    store = MemoryStore()
    started = time.perf_counter()
    packages = fill(store, versions, proofs)
    index, client = _app(store, url)  # create_app rebuilds the index from the stored verdicts
    built = time.perf_counter() - started
    with index.engine.connect() as conn:  # the rebuild refuses documents it cannot read: count what it kept
        indexed = conn.execute(sa.select(sa.func.count()).select_from(verdicts_table)).scalar_one()
    if indexed != versions:
        raise SystemExit(f"[{label}] the index holds {indexed} of the {versions} stored verdicts: "
                         "the benchmark's documents are not read as verdicts")
    print(f"[{label}] {versions} versions of {packages} packages indexed (rebuild) in {built:.1f} s")
    results.add(f"{label}: index rebuild, {versions} versions", built, note=f"{packages} package keys, "
                f"{proofs} proofs each; search rows for current verdicts only")
    reference = []
    for _ in range(max(3, repeat // 4)):
        start = time.perf_counter()
        index.latest()
        reference.append(time.perf_counter() - start)
    ref = statistics.median(reference)
    results.add_timings(f"{label}: index.latest() over {versions} versions (reference)", reference)
    print(f"[{label}] reference index.latest(): median {ref * 1000:.0f} ms")
    for name, path in PAGES.items():
        timings = []
        for _ in range(repeat):
            start = time.perf_counter()
            answer = client.get(path)
            timings.append(time.perf_counter() - start)
            assert answer.status_code == 200, (path, answer.status_code)
        median = statistics.median(timings)
        results.add_timings(f"{label}: {name}", timings, ratio=median / ref, reference="index.latest()",
                            goal=f"median <= {GOAL_SECONDS} s", met=median <= GOAL_SECONDS)
        print(f"[{label}] {name}: median {median * 1000:.0f} ms, p95 {p95(timings) * 1000:.0f} ms")
    index.close()


def carry_over_run(results: Results, label: str, url: str, packages: int, proofs: int) -> None:
    from flows.decisions import FINDING, PROOF, DecisionStore, NewDecision
    from flows.index import VerdictIndex
    from flows.revalidate import carry_over
    from flows.web import carry
    from flows.web import verdicts as web_verdicts

    store = MemoryStore("bench-carry")
    index = VerdictIndex(url)
    index.ensure(store)  # type: ignore[arg-type]
    decisions = DecisionStore(index.engine)
    first: dict[str, tuple[str, StoredVerdict]] = {}
    for package in range(packages):
        key, verdict = verdict_doc(package, 1, proofs)
        store.put(key, verdict)
        index.record(verdict, key)
        first[f"inbox/{PUBLISHERS[package % len(PUBLISHERS)]}/lgc-{package:05d}.zip"] = (key, verdict)
    appended = []
    for package_key, (json_key, verdict) in first.items():
        view = web_verdicts.view(verdict.to_document(), json_key)
        for finding in view.findings():
            start = time.perf_counter()
            decisions.append(NewDecision(kind=FINDING, package_key=package_key, subject=finding.fingerprint,
                                         json_key=json_key, decision="dismiss", reasons=("false_positive",),
                                         comment="identité fictive", author="bench", proof_id=finding.proof_id,
                                         rule=finding.rule, path=finding.path), None)
            appended.append(time.perf_counter() - start)
        for proof in view.proofs[:3]:
            decisions.append(NewDecision(kind=PROOF, package_key=package_key, subject=proof.id, json_key=json_key,
                                         decision="accepted", comment="", author="bench", digest=proof.digest), None)
    total = len(decisions.all())
    results.add_timings(f"{label}: decision append (chained, conflict-checked)", appended,
                        note=f"{total} decisions on {packages} packages")
    print(f"[{label} carry] {total} decisions recorded; append median {statistics.median(appended) * 1000:.1f} ms")
    start = time.perf_counter()
    changed = set()
    for number, (package_key, (json_key, verdict)) in enumerate(first.items()):
        if number % 10 == 0:  # a new upload whose first capture changed
            new_key, new = verdict_doc(number, 2, proofs, changed=True)
            changed.add(package_key)
        else:  # what re-validation stores when no check reads what changed
            new = carry_over(verdict, "20260201T000000Z-rs2", {"J66": "2"})
            new_key = json_key.rsplit("/", 1)[0] + "/20260201T000000Z-rs2.json"
        store.put(new_key, new)
        index.record(new, new_key)
    stored_seconds = time.perf_counter() - start
    print(f"[{label} carry] re-validation of {packages} packages stored and indexed in {stored_seconds:.1f} s")
    start = time.perf_counter()
    from flows.web import queries

    counts = {carry.CARRIED: 0, carry.REVIEW: 0, carry.DECIDED: 0, carry.NONE: 0}
    with index.engine.connect() as conn:
        rows = {k: queries.current(conn, k, None) for k in first}
    trails = decisions.of_packages(first)
    per_package = []
    wrong = 0
    for package_key, row in rows.items():
        assert row is not None
        one = time.perf_counter()
        view = web_verdicts.view(web_verdicts.load(store, row["json_key"]), row["json_key"])  # type: ignore[arg-type]
        states = carry.states(view, trails[package_key])
        per_package.append(time.perf_counter() - one)
        for state in (*states.findings.values(), *states.proofs.values()):
            counts[state.state] += 1
        expected_review = package_key in changed
        review = states.count(carry.REVIEW) > 0
        wrong += review != expected_review
    elapsed = time.perf_counter() - start
    results.add(f"{label}: carry-over of decisions across a re-validation of {packages} packages", elapsed,
                note=f"{counts[carry.CARRIED]} carried, {counts[carry.REVIEW]} to review, "
                     f"{counts[carry.NONE]} without decision; {wrong} package(s) wrong")
    results.add_timings(f"{label}: carry-over states per package (page's computation)", per_package,
                        goal="correct: carried unless changed", met=wrong == 0)
    print(f"[{label} carry] states of {packages} packages in {elapsed:.2f} s: {counts}; wrong: {wrong}")
    index.close()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextmanager
def private_postgres() -> Iterator[str | None]:
    """A private Postgres on a unix socket, stopped by its PID; None when Postgres is not installed."""
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if initdb is None or postgres is None:
        yield None
        return
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="proofcheck-bench-pg-"))
    if os.geteuid() == 0:  # Postgres refuses root: run it as the postgres account
        pwd.getpwnam("postgres")
        prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        shutil.chown(root, "postgres", "postgres")
    subprocess.run([*prefix, initdb, "-D", str(root / "data"), "-A", "trust", "-U", "proofcheck", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    with (root / "log").open("ab") as log:
        server = subprocess.Popen([*prefix, postgres, "-D", str(root / "data"), "-k", str(root), "-c",
                                   "listen_addresses=", "-F"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (root / ".s.PGSQL.5432").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Postgres did not start")
            time.sleep(0.1)
        yield f"postgresql+psycopg://proofcheck@/postgres?host={root}"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)


def _fresh_database(url: str, name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return url.replace("/postgres?", f"/{name}?")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--proofs", type=int, default=30)
    parser.add_argument("--packages", type=int, default=1000, help="packages of the carry-over measure")
    parser.add_argument("--carry-proofs", type=int, default=12, help="proofs per package of the carry-over measure")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="1 000 versions, 100 packages, 5 repeats")
    parser.add_argument("--no-postgres", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.versions, args.packages, args.repeat = 1000, 100, 5
    results = Results()
    with tempfile.TemporaryDirectory(prefix="proofcheck-bench-web-") as tmp:
        pages(results, "SQLite", f"sqlite:///{tmp}/pages.sqlite3", args.versions, args.proofs, args.repeat)
        carry_over_run(results, "SQLite", f"sqlite:///{tmp}/carry.sqlite3", args.packages, args.carry_proofs)
    if not args.no_postgres:
        with private_postgres() as url:
            if url is None:
                print("[Postgres] not installed: Postgres numbers skipped")
            else:
                pages(results, "Postgres", _fresh_database(url, "pages"), args.versions, args.proofs, args.repeat)
                carry_over_run(results, "Postgres", _fresh_database(url, "carry"), args.packages, args.carry_proofs)
    results.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
