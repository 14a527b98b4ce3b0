"""Soak test: hundreds of packages through the real event path while faults are injected; then the invariants.

    .venv/bin/python benchmarks/soak.py                       # 200 packages, bounded by --minutes 15
    .venv/bin/python benchmarks/soak.py --packages 10 --quick # the CI smoke variant (< 60 s)

Loopback only. Starts moto (S3 + SQS), a Prefect server, a private clamd and ``proofcheck serve`` (as the
embedded demo does), with the pipeline's S3 endpoint behind ``faults.S3FaultProxy`` and its queue fed by
``faults.EventChaos``. Uploads a mix of packages (clean, hostile, personal data, broken zips, MB-sized, new
versions of earlier ones, a few dry runs) straight to moto, paced then in a final burst, while a scheduler
kills clamd, SIGKILLs the serving process and opens S3 error windows. At the end it reads the bucket and
the verdict index and checks: every uploaded version has exactly one verdict (more only as the reconcile's
re-runs of a verdict where a check did not run, flows/retry.py), no verdict belongs to no
upload, no ``pass`` where a check did not run, no package built to fail passes, the index holds each
submission verdict once and no dry run, and no process is left behind. Prints a table, writes ``--json``,
exits 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import faults  # beside this script, not a package

from fixtures.hostile import zip_of
from flows.completeness import checked_in_full
from flows.storage import retry_attempt

SYSTEM_FAULT_KINDS = ("clamd-kill", "serve-kill", "s3-503", "s3-reset", "s3-500")


# -- packages -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoakPackage:
    key: str
    data: bytes
    kind: str
    must_not_pass: bool  # built to fail: malware, hostile content, personal data, a broken zip


class PackageFactory:
    """Builds the soak's mix from the project's fixtures; ``seed`` makes the mix reproducible."""

    KINDS: tuple[tuple[str, float], ...] = (
        ("clean", 0.34),
        ("clean-screenshot", 0.04),
        ("pii", 0.10),
        ("malware", 0.10),
        ("hostile", 0.24),
        ("broken", 0.08),
        ("fixture", 0.06),
        ("large", 0.04),
    )

    def __init__(self, seed: int) -> None:
        from fixtures import builders, hostile, packages

        self.rng = random.Random(seed)  # noqa: S311 (a reproducible mix, not a secret)
        self.b = builders
        cases = hostile.hostile_cases()
        self.hostile = [c for c in cases if c.name != "many-entries.zip"]
        self.many_entries = next(c for c in cases if c.name == "many-entries.zip")
        self.specs = packages.specs()
        self._screenshot = packages.good_package().zip_bytes()
        self._nonce = 0

    def _nonce_line(self) -> str:
        self._nonce += 1
        return f"soak run entry {self._nonce} {self.rng.getrandbits(48):012x}"

    def _clean(self) -> bytes:
        from fixtures.packages import manifest

        pdf = self.b.make_pdf(["Rapport de recette (fictif)", self._nonce_line()])
        log = self.b.make_log(["Appel INSi OK", "Envoi DMP OK", self._nonce_line()])
        return zip_of({
            "manifest.yaml": manifest({"ANN.1.1.1": ["ANN.1.1.1/rapport.pdf"], "DMP.3.1.1": ["DMP.3.1.1/trace.log"]}),
            "ANN.1.1.1/rapport.pdf": pdf,
            "DMP.3.1.1/trace.log": log,
        })

    def _pii(self) -> bytes:
        nir = self.b.make_nir(self.rng.choice((1, 2)), self.rng.randint(40, 99), self.rng.randint(1, 12),
                              f"{self.rng.randint(1, 95):02d}", f"{self.rng.randint(1, 999):03d}",
                              f"{self.rng.randint(1, 999):03d}")
        log = self.b.make_log(["Recherche INSi", f"matricule {nir} retrouve", self._nonce_line()])
        return zip_of({"INS.41.2.2/trace.log": log})

    def _malware(self) -> bytes:
        from fixtures.hostile import MARKER

        payload = self.b.eicar() if self.rng.random() < 0.5 else b"journal\n" + MARKER + b"\n"
        return zip_of({"MSS.1.1.1/piece-jointe.txt": payload, "DMP.3.1.1/trace.log": self._nonce_line().encode()})

    def _hostile(self) -> bytes:
        case = self.rng.choice(self.hostile)
        return zip_of({f"INS.1.1.1/{case.name}": case.data, "DMP.3.1.1/trace.log": self._nonce_line().encode()})

    def _broken(self) -> bytes:
        whole = self._clean()
        return self.rng.choice((
            lambda: whole[: len(whole) // 2],  # truncated upload
            lambda: self.rng.randbytes(4096),  # not a zip at all
            lambda: b"%PDF-1.7\n" + self._nonce_line().encode(),  # a PDF named .zip
            lambda: whole[:30] + bytes(64) + whole[94:],  # a corrupted local header
        ))()

    def _fixture(self) -> tuple[bytes, bool]:
        spec = self.rng.choice(self.specs)
        data = spec.zip_bytes()
        # Fixture packages are identical each time: one appended member makes each upload its own content.
        if spec.raw_zip is None:
            data = zip_of({**spec.files, "DMP.3.1.1/soak.log": self._nonce_line().encode()})
        return data, spec.expected_status == "fail"

    def _large(self) -> tuple[bytes, bool]:
        if self.rng.random() < 0.25:  # the 8.7 MB, 100 000-entry hostile archive inside a package
            return zip_of({"INS.1.1.1/archive.zip": self.many_entries.data}, zipfile.ZIP_STORED), True
        megabytes = self.rng.randint(2, 6)
        lines = (f"2026-03-02 10:{i % 60:02d}:00 requete {self.rng.getrandbits(64):016x} OK\n" for i in range(10**9))
        text = bytearray()
        for line in lines:
            text += line.encode()
            if len(text) > megabytes * 1024 * 1024:
                break
        return zip_of({"DMP.3.1.1/journal-volumineux.log": bytes(text)}, zipfile.ZIP_STORED), False

    def make(self, kind: str) -> tuple[bytes, bool]:
        makers: dict[str, Callable[[], tuple[bytes, bool]]] = {
            "clean": lambda: (self._clean(), False),
            "clean-screenshot": lambda: (self._screenshot_variant(), False),
            "pii": lambda: (self._pii(), True),
            "malware": lambda: (self._malware(), True),
            "hostile": lambda: (self._hostile(), True),
            "broken": lambda: (self._broken(), True),
            "fixture": self._fixture,
            "large": self._large,
        }
        return makers[kind]()

    def _screenshot_variant(self) -> bytes:
        with zipfile.ZipFile(io.BytesIO(self._screenshot)) as source:
            files = {name: source.read(name) for name in source.namelist()}
        files["DMP.3.1.1/soak.log"] = self._nonce_line().encode()
        return zip_of(files)

    def pick_kind(self) -> str:
        kinds, weights = zip(*self.KINDS, strict=True)
        return self.rng.choices(kinds, weights)[0]

    def plan(self, count: int, *, new_versions: float, dryrun: float, quick: bool) -> list[SoakPackage]:
        """``count`` package keys (a few as dry runs), then new versions of some of them."""
        planned: list[SoakPackage] = []
        forced = ["malware", "hostile", "pii", "broken", "clean"] if quick else ["large"] * 4
        for i in range(count):
            kind = forced[i] if i < len(forced) else self.pick_kind()
            if quick and kind in ("large", "clean-screenshot"):
                kind = "clean"  # the smoke run stays light
            area = "dryrun" if self.rng.random() < dryrun else "inbox"
            publisher = f"editeur-{i % 7}"
            data, bad = self.make(kind)
            planned.append(SoakPackage(f"{area}/{publisher}/{kind}-{i:03d}.zip", data, kind, bad))
        for earlier in self.rng.sample(planned, max(1 if count >= 5 else 0, round(count * new_versions))):
            data, bad = self.make(earlier.kind)
            planned.append(SoakPackage(earlier.key, data, earlier.kind + "-v2", bad))
        return planned


# -- the run --------------------------------------------------------------------------------------------------


@dataclass
class SoakOptions:
    packages: int = 200
    quick: bool = False
    minutes: float = 15.0  # the whole run, services included
    seed: int = 8
    limit: int = 2
    upload_seconds: float = 240.0
    fault_every: float = 35.0
    stale_after: float = 120.0
    reconcile_every: float = 15.0
    new_versions: float = 0.05
    dryrun: float = 0.05
    settle: float = 20.0
    chaos: faults.EventChaosOptions = field(default_factory=faults.EventChaosOptions)

    @classmethod
    def quick_defaults(cls, packages: int = 10) -> SoakOptions:
        return cls(packages=packages, quick=True, minutes=3.0, upload_seconds=8.0, fault_every=4.0,
                   stale_after=20.0, reconcile_every=3.0, settle=4.0,
                   chaos=faults.EventChaosOptions(delay=0.2, replay_every=4.0))


@dataclass
class Upload:
    package: SoakPackage
    etag: str
    version_id: str | None
    at: float
    verdict_seen: float | None = None


class FaultScheduler:
    """Cycles through the system faults at a fixed pace until told to stop; counts what it injected."""

    def __init__(self, run: SoakRun, every: float, quick: bool) -> None:
        self.run = run
        self.every = every
        self.quick = quick
        self.counts: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="faults", daemon=True)
        self.log: list[str] = []

    def _loop(self) -> None:
        index = 0
        while not self.stopping.wait(self.every):
            kind = SYSTEM_FAULT_KINDS[index % len(SYSTEM_FAULT_KINDS)]
            index += 1
            try:
                self.inject(kind)
            except Exception as exc:  # a fault that could not be injected is reported, never fatal
                self.counts[f"{kind}-failed"] += 1
                self.log.append(f"{kind} failed: {type(exc).__name__}")

    def inject(self, kind: str) -> None:
        down = 4.0 if self.quick else 15.0
        at = f"{time.monotonic() - self.run.started:.0f}s"
        if kind == "clamd-kill":
            assert self.run.pipeline.clamd_dir is not None
            if faults.kill_clamd(self.run.pipeline.clamd_dir):
                self.counts[kind] += 1
                self.stopping.wait(down)
                faults.restart_clamd(self.run.pipeline.clamd_dir)
        elif kind == "serve-kill":
            serve = self.run.pipeline.serve_process
            if serve is not None and faults.kill_group(serve.pid):
                self.counts[kind] += 1
                self.run.pipeline.stop_serve()
                self.stopping.wait(2.0 if self.quick else 5.0)
                self.run.start_serve()
        else:
            self.run.proxy.fail_for(kind, 4.0 if self.quick else 12.0)
            self.counts[kind + "-window"] += 1
        self.log.append(f"{at} {kind}")


class SoakRun:
    """One soak run: services up, uploads and faults, wait, invariants, everything stopped by PID."""

    def __init__(self, options: SoakOptions, root: Path) -> None:
        from flows.devharness.local import LocalPipeline

        self.options = options
        self.root = root
        self.pipeline = LocalPipeline(root)
        self.started = time.monotonic()
        self.deadline = self.started + options.minutes * 60
        self.uploads: list[Upload] = []
        self.errors: list[str] = []

    # -- services -------------------------------------------------------------------------------------------

    def start(self) -> None:
        from flows.queue import EventQueue
        from flows.storage import Store, make_client

        o = self.options
        self.direct = self.pipeline.start_s3(notifications=True)  # events go to "proofcheck-events"
        moto_url = self.pipeline.settings.s3_endpoint
        assert moto_url and self.pipeline.settings.queue_url
        bridge_url, _ = EventQueue.create(self.pipeline.settings, "proofcheck-bridge")
        self.sqs = make_client(self.pipeline.settings, "sqs")
        self.chaos = faults.EventChaos(self.sqs, self.pipeline.settings.queue_url, bridge_url, o.chaos)
        self.proxy = faults.S3FaultProxy(moto_url, self.pipeline.settings.bucket).start()
        self.pipeline.start_prefect()
        if not self.pipeline.start_clamd():
            raise SystemExit("soak: ClamAV is not installed (tools/install-system-deps.sh); the soak needs clamd")
        self.pipeline.settings = replace(
            self.pipeline.settings,
            s3_endpoint=self.proxy.url,
            queue_url=bridge_url,
            stale_after=o.stale_after,
            reconcile_every=o.reconcile_every,
        )
        self.direct = Store(self.direct.client, self.direct.bucket)
        # As the demo does: the test signature set is acknowledged, so a clean package can pass, and the
        # "no pass where a check did not run" invariant has passes to check.
        self.pipeline.env["PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES"] = "accept"
        self.chaos.start()
        self.start_serve()

    def start_serve(self) -> None:
        self.pipeline.start_serve(limit=self.options.limit)

    def stop(self) -> list[int]:
        """Stop everything by PID; returns the PIDs of flow runs that outlived their runner (then killed)."""
        with_marker = ("PROOFCHECK_WORK_DIR", str(self.pipeline.settings.work_dir))
        for stopper in (lambda: self.chaos.stop(flush=False), self.proxy.stop, self.pipeline.stop):
            try:
                stopper()
            except Exception as exc:
                self.errors.append(f"stop: {type(exc).__name__}")
        leftovers = faults.processes_with_env(*with_marker)
        for pid in leftovers:
            if not faults.kill_group(pid):
                faults.kill_pid(pid)
        return leftovers

    # -- uploads --------------------------------------------------------------------------------------------

    def upload_all(self, planned: list[SoakPackage]) -> None:
        """Three quarters paced over ``upload_seconds``, the last quarter at once (the deadline rush)."""
        paced = planned[: len(planned) * 3 // 4]
        rush = planned[len(paced):]
        gap = self.options.upload_seconds / max(1, len(paced))
        for package in paced:
            self._upload(package)
            time.sleep(gap)
        for package in rush:
            self._upload(package)

    def _upload(self, package: SoakPackage) -> None:
        ref = self.pipeline.upload(self.direct, package.key, package.data)
        self.uploads.append(Upload(package, ref.etag, ref.version_id, time.monotonic()))

    def wait_verdicts(self, until: float) -> None:
        """Poll the reports prefix until every upload has a verdict (by version id or by ETag)."""
        while time.monotonic() < until:
            tokens = self.verdict_tokens()
            now = time.monotonic()
            for upload in self.uploads:
                if upload.verdict_seen is None and _tokens_of(upload) & tokens.get(upload.package.key, set()):
                    upload.verdict_seen = now
            if self.uploads and all(u.verdict_seen is not None for u in self.uploads) and self.uploader_done:
                return
            time.sleep(1.0)

    uploader_done = False

    def verdict_tokens(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for key in self.direct.iter_verdict_keys():
            package_key, token = _split_verdict_key(key, self.direct.layout.reports)
            out.setdefault(package_key, set()).add(token)
        return out


def _tokens_of(upload: Upload) -> set[str]:
    from flows.storage import PackageRef

    ref = PackageRef("", upload.package.key, upload.etag, upload.version_id)
    return {ref.token, replace(ref, version_id=None).token}


def _split_verdict_key(key: str, reports: str) -> tuple[str, str]:
    """``reports/<package key>/<token>/<ruleset>.json`` -> (package key, token)."""
    parts = key[len(reports):].split("/")
    return "/".join(parts[:-2]), parts[-2]


# -- invariants -----------------------------------------------------------------------------------------------


@dataclass
class Invariant:
    name: str
    ok: bool
    detail: str = ""


def iter_file_entries(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every file entry of a verdict document, embedded children included."""
    stack = [f for proof in doc.get("proofs", []) for f in proof.get("files", [])]
    stack += list(doc.get("unmapped_files", []))
    while stack:
        entry = stack.pop()
        yield entry
        stack.extend(entry.get("children") or [])


def not_run_anywhere(doc: dict[str, Any]) -> bool:
    """A check did not run, or a system.* finding says the pipeline could not do its job."""
    findings = list(doc.get("package_findings", []))
    for entry in iter_file_entries(doc):
        findings += entry.get("findings", [])
        if any(isinstance(c, dict) and c.get("status") == "not_run" for c in entry.get("checks", [])):
            return True
    return any(str(f.get("rule", "")).startswith("system.") for f in findings)


def only_re_runs(json_keys: list[str], docs: dict[str, dict[str, Any]]) -> bool:
    """A version's verdicts are one first verdict, then re-runs each following one not checked in full."""
    ordered = sorted(json_keys, key=retry_attempt)
    firsts = [k for k in ordered if retry_attempt(k) == 0]
    return len(firsts) == 1 and not any(checked_in_full(docs[k]) for k in ordered[:-1])


def check_invariants(uploads: list[Upload], docs: dict[str, dict[str, Any]],
                     index_rows: list[dict[str, Any]]) -> list[Invariant]:
    """The soak's promises, from the stored verdicts (``docs`` by JSON key) and the index rows."""
    by_version: dict[tuple[str, str], list[str]] = {}
    for json_key, doc in docs.items():
        obj = doc.get("object", {})
        by_version.setdefault((str(obj.get("key")), str(obj.get("etag"))), []).append(json_key)
    uploaded = {(u.package.key, u.etag): u for u in uploads}
    missing = [k for k in uploaded if k not in by_version]
    # The last upload of a key is its current version; earlier ones were replaced (still submissions).
    current = {u.package.key: (u.package.key, u.etag) for u in uploads}
    missing_current = [k for k in missing if current[k[0]] == k]
    missing_replaced = [k for k in missing if current[k[0]] != k]
    doubled = {k: v for k, v in by_version.items() if k in uploaded and len(v) > 1 and not only_re_runs(v, docs)}
    stray = [k for k in by_version if k not in uploaded]
    pass_not_run = [k for k, d in docs.items() if d.get("status") == "pass" and not_run_anywhere(d)]
    must_fail_passed = [
        k for (version, json_keys) in by_version.items()
        if version in uploaded and uploaded[version].package.must_not_pass
        for k in json_keys if docs[k].get("status") == "pass"
    ]
    inbox_verdicts = {k for k, d in docs.items() if d.get("object", {}).get("area") == "inbox"}
    indexed = Counter(str(r["json_key"]) for r in index_rows)
    index_missing = sorted(inbox_verdicts - set(indexed))
    index_doubled = [k for k, n in indexed.items() if n > 1]
    index_dryrun = [k for k in indexed if k in docs and docs[k].get("object", {}).get("area") != "inbox"]

    def names(items: Any) -> str:
        """Package names: of a (key, etag) version, or of a verdict key ``reports/<key>/<token>/<rs>.json``."""
        shown = [i[0].rsplit("/", 1)[-1] if isinstance(i, tuple) else str(i).split("/")[-3]
                 for i in list(items)[:5]]
        return ", ".join(shown) + (" ..." if len(items) > 5 else "")

    return [
        Invariant("every current version has a verdict", not missing_current,
                  f"{len(missing_current)} without: {names(missing_current)}"),
        Invariant("every replaced version has a verdict", not missing_replaced,
                  f"{len(missing_replaced)} without: {names(missing_replaced)}"),
        Invariant("exactly one verdict per version (more only as re-runs of an incomplete one)", not doubled,
                  f"{len(doubled)} doubled: {names(doubled)}"),
        Invariant("no verdict for a version never uploaded", not stray, f"{len(stray)} stray: {names(stray)}"),
        Invariant("no pass where a check did not run", not pass_not_run, f"{len(pass_not_run)}: {names(pass_not_run)}"),
        Invariant("no package built to fail passes", not must_fail_passed,
                  f"{len(must_fail_passed)}: {names(must_fail_passed)}"),
        Invariant("index holds every submission verdict once", not index_missing and not index_doubled,
                  f"{len(index_missing)} missing, {len(index_doubled)} doubled: {names(index_missing)}"),
        Invariant("no dry-run verdict in the index", not index_dryrun, f"{len(index_dryrun)}: {names(index_dryrun)}"),
    ]


def read_index(index_url: str) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from flows.index import verdicts

    engine = sa.create_engine(index_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(verdicts))]
    except sa.exc.OperationalError:  # never created: every verdict is then missing from it
        return []
    finally:
        engine.dispose()


def flow_run_states(api_url: str) -> dict[str, int]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    counts: Counter[str] = Counter()
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_flow_runs(limit=200, offset=offset)
            counts.update(r.state_name or "?" for r in page)
            offset += len(page)
            if len(page) < 200:
                return dict(counts)


# -- driver ---------------------------------------------------------------------------------------------------


def run_soak(options: SoakOptions, root: Path | None = None) -> dict[str, Any]:
    """Run one soak; returns the summary (``summary["ok"]`` is False when an invariant failed)."""
    root = root or Path(tempfile.mkdtemp(prefix="proofcheck-soak-"))
    factory = PackageFactory(options.seed)
    planned = factory.plan(options.packages, new_versions=options.new_versions, dryrun=options.dryrun,
                           quick=options.quick)
    run = SoakRun(options, root)
    summary: dict[str, Any] = {"options": {k: v for k, v in vars(options).items() if k != "chaos"},
                               "chaos_options": vars(options.chaos), "root": str(root)}
    leftovers: list[int] = []
    try:
        run.start()
        summary["services_ready_s"] = round(time.monotonic() - run.started, 1)
        scheduler = FaultScheduler(run, options.fault_every, options.quick)
        scheduler.thread.start()
        first_upload = time.monotonic()
        uploader = threading.Thread(target=run.upload_all, args=(planned,), name="uploader", daemon=True)
        uploader.start()
        # Faults stop once the last upload is in and one more round has passed: the pipeline must converge.
        waiting = threading.Thread(target=run.wait_verdicts, args=(run.deadline - 60,), daemon=True)
        waiting.start()
        uploader.join()
        run.uploader_done = True
        # Every kind of fault at least once (quick: clamd and the serving process), then let it converge.
        wanted = 2 if options.quick else len(SYSTEM_FAULT_KINDS)
        while len(scheduler.log) < wanted and time.monotonic() < run.deadline - 120:
            time.sleep(0.5)
        scheduler.stopping.set()
        scheduler.thread.join(60)
        run.chaos.stop(flush=True)
        waiting.join()
        last_verdict = max((u.verdict_seen for u in run.uploads if u.verdict_seen), default=None)
        time.sleep(options.settle)  # replays and late duplicates still in flight would double a verdict now
        docs = {k: json.loads(run.direct.get_bytes(k)) for k in run.direct.iter_verdict_keys()}
        index_rows = read_index(run.pipeline.settings.index_url)
        invariants = check_invariants(run.uploads, docs, index_rows)
        assert run.pipeline.prefect is not None
        try:
            summary["flow_runs"] = flow_run_states(run.pipeline.prefect.url)
        except Exception as exc:
            summary["flow_runs"] = {"unreadable": type(exc).__name__}
        statuses = Counter(str(d.get("status")) for d in docs.values())
        summary.update({
            "packages": len({u.package.key for u in run.uploads}),
            "versions": len(run.uploads),
            "kinds": dict(Counter(u.package.kind for u in run.uploads)),
            "bytes_uploaded": sum(len(u.package.data) for u in run.uploads),
            "verdicts": len(docs),
            "verdicts_by_status": dict(statuses),
            "not_run_verdicts": sum(1 for d in docs.values() if not_run_anywhere(d)),
            "faults": {**dict(scheduler.counts), **{k: v for k, v in run.chaos.counts.items() if k != "delivered"},
                       **{f"{k}-requests": v for k, v in run.proxy.faulted.items()}},
            "events_delivered": run.chaos.counts.get("delivered", 0),
            "fault_log": scheduler.log,
            "time_to_last_verdict_s": round(last_verdict - first_upload, 1) if last_verdict else None,
            "invariants": [vars(i) for i in invariants],
        })
    finally:
        leftovers = run.stop()
    left = Invariant("no process left behind", not leftovers, f"{len(leftovers)} flow-run process(es) outlived it")
    summary["invariants"] = [*summary.get("invariants", []), vars(left)]
    summary["errors"] = run.errors
    summary["wall_s"] = round(time.monotonic() - run.started, 1)
    summary["ok"] = all(i["ok"] for i in summary["invariants"]) and "verdicts" in summary
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = [
        ("packages / versions", f"{summary.get('packages')} / {summary.get('versions')}"),
        ("kinds", ", ".join(f"{k} {v}" for k, v in sorted(summary.get("kinds", {}).items()))),
        ("MB uploaded", f"{summary.get('bytes_uploaded', 0) / 1e6:.1f}"),
        ("verdicts by status", ", ".join(f"{k} {v}" for k, v in sorted(summary.get("verdicts_by_status", {}).items()))),
        ("verdicts with a check not run", str(summary.get("not_run_verdicts"))),
        ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(summary.get("faults", {}).items()))),
        ("events delivered to the bridge", str(summary.get("events_delivered"))),
        ("flow runs by state", ", ".join(f"{k} {v}" for k, v in sorted(summary.get("flow_runs", {}).items()))),
        ("services ready after", f"{summary.get('services_ready_s')} s"),
        ("first upload -> last verdict", f"{summary.get('time_to_last_verdict_s')} s"),
        ("wall time", f"{summary.get('wall_s')} s"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    lines.append("")
    lines.append("invariant".ljust(52) + "result")
    for inv in summary.get("invariants", []):
        lines.append(f"{inv['name'].ljust(52)}{'ok' if inv['ok'] else 'FAILED  ' + inv['detail']}")
    lines.append("")
    lines.append("SOAK " + ("OK" if summary.get("ok") else "FAILED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="the smoke variant: short windows, light packages")
    parser.add_argument("--minutes", type=float, help="bound on the whole run (default 15, quick 3)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--limit", type=int, default=2, help="flow runs at once in the serving process")
    parser.add_argument("--upload-seconds", type=float, help="how long the paced uploads last (default 240)")
    parser.add_argument("--fault-every", type=float, help="seconds between system faults (default 35)")
    parser.add_argument("--stale-after", type=float, help="PROOFCHECK_STALE_AFTER for the run (default 120)")
    parser.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, Prefect DB)")
    args = parser.parse_args(argv)
    options = SoakOptions.quick_defaults(args.packages) if args.quick else SoakOptions(packages=args.packages)
    options.seed, options.limit = args.seed, args.limit
    for name in ("minutes", "upload_seconds", "fault_every", "stale_after"):
        if getattr(args, name) is not None:
            setattr(options, name, getattr(args, name))
    root = Path(tempfile.mkdtemp(prefix="proofcheck-soak-"))
    summary = run_soak(options, root)
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"work folder kept: {root}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
