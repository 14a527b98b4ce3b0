"""The embedded demo (``python -m flows.devharness.demo``, ``make demo``): the real event path, end to end, locally.

Obtains a CDA ruleset as an operator would (``validators/cda/obtain.py``: the ANS repository, then
``$PROOFCHECK_RULESET_SOURCE``, then the ANS tree beside the clone; cached in ``var/rulesets``, never in
the user's home) while it starts moto (S3 + SQS), a Prefect server, clamd and ``proofcheck serve``;
uploads the fixture packages (CDA proofs among them); waits for each verdict to be stored through S3
event -> queue -> bridge -> flow run; prints one line per package ``<package> <status> <report> (ruleset
<version>)``; copies the reports next to the index page so they open from disk; stops every process it
started by its PID. Exit 0 when every package got a verdict. It ends by starting the instructors'
workbench (``proofcheck web``) over the same index and bucket and printing its URL and two accounts;
with ``DEMO_KEEP=1`` (``make workbench``) it keeps everything running until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flows.devharness.local import LocalPipeline, local_pipeline
from flows.storage import PackageRef, StorageError, Store
from validators.cda.obtain import Obtained, default_sources, obtain
from validators.cda.store import RulesetStore

PUBLISHER = "editeur-demo"
RULESETS = Path("var/rulesets")  # the demo's own ruleset store (relative to where it runs: the clone)
# Compiled at sync: what the demo's documents use (volet VAC_2023.01 and the five transverse profiles);
# the other volets compile on first use, as `proofcheck rulesets sync --only` does.
DEMO_SCHEMATRONS = ("VAC_2023.01", "IHE", "ModelesDeContenusCDA", "Modeles_ANS", "StructurationMinimale",
                    "terminologies")


def obtain_ruleset(store_root: Path) -> Obtained:
    """The ruleset the demo runs with, and its one line (fixtures.ans knows where the clone's ANS tree is)."""
    try:
        from fixtures.ans import ANS_TREE

        beside: Path | None = ANS_TREE
    except ModuleNotFoundError:  # an install without the repository: no tree beside it
        beside = None
    # A short timeout: a demo says in one line that the repository did not answer, and goes on.
    return obtain(RulesetStore(store_root), default_sources(beside), only=DEMO_SCHEMATRONS, timeout=5,
                  total_timeout=30)


def _packages(out_dir: Path) -> list[Path]:
    try:
        from fixtures.packages import build_all
    except ModuleNotFoundError:  # an install without the repository's fixtures: one tiny package
        import zipfile

        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "demo.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("INS.41.2.2/journal.txt", "journal de test\n")
        return [path]
    return build_all(out_dir)


def _copy_reports(store: Store, json_keys: list[str], dest: Path) -> None:
    """Mirror the reports and the index page under ``dest`` (same relative layout as in the bucket)."""
    from validators.attest.seal import ATTESTATION_SUFFIX

    wanted = [store.layout.index_html]
    for key in json_keys:
        wanted += [key, key[: -len(".json")] + ".html"]
    for key in wanted:
        target = dest / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.get_bytes(key))
    for key in json_keys:  # the signed attestation, when there is one, so that `proofcheck verify` works offline
        envelope = key[: -len(".json")] + ATTESTATION_SUFFIX
        try:
            data = store.get_bytes(envelope)
        except StorageError:
            continue
        (dest / envelope).write_bytes(data)


def demo_signing_key(private_dir: Path, public_dir: Path) -> Path:
    """A throwaway Ed25519 key for the demo's verdicts (never a production key): the private half in
    ``private_dir`` (the demo's temporary folder), the public half copied to ``public_dir`` so that the
    copied verdicts can be verified after the demo."""
    from validators.attest.keys import init_key

    files = init_key(private_dir, "demo")
    public_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files.public, public_dir / files.public.name)
    return files.private


def _wait_index(store: Store, names: list[str], timeout: float) -> None:
    """The index page follows each verdict by a moment: wait for it to list every package."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            page = store.get_bytes(store.layout.index_html).decode("utf-8")
        except StorageError:
            page = ""
        if all(name in page for name in names):
            return
        time.sleep(0.3)


def run_demo(
    *, keep: bool = False, timeout: float = 300.0, out: Path | None = None, rulesets: Path | None = None
) -> int:
    root = Path(tempfile.mkdtemp(prefix="proofcheck-demo-"))
    report_dir = out or Path("var/demo").resolve()
    store_root = (rulesets or RULESETS).resolve()
    started = time.monotonic()
    try:
        # The ruleset is synced (a Schematron compile: seconds) while the services start.
        with ThreadPoolExecutor(1) as background, local_pipeline(root) as pipeline:
            ruleset = background.submit(obtain_ruleset, store_root)
            return _run(pipeline, root, report_dir, timeout, started, ruleset, store_root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _run(
    pipeline: LocalPipeline,
    root: Path,
    report_dir: Path,
    timeout: float,
    started: float,
    ruleset: Future[Obtained],
    store_root: Path,
) -> int:
    store = pipeline.start_s3(notifications=True)
    pipeline.start_prefect()
    clamd = pipeline.start_clamd()
    # The demo knowingly runs on the project's test signatures (no download here): the verdicts'
    # provenance says so, and the notice is info rather than a warning on every package.
    pipeline.env["PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES"] = "accept"
    # Its own store, always: a ruleset synced by hand into the user's home never changes the demo.
    pipeline.env["PROOFCHECK_RULESETS"] = str(store_root)
    obtained = ruleset.result()
    tag = f"(ruleset {obtained.name})"
    print(f"demo: {obtained.line}", flush=True)
    if not clamd:
        print(f"demo: ClamAV is not installed: the antivirus check will report itself as not run {tag}",
              file=sys.stderr)
    # Verdicts are signed as in production, with a throwaway key: its public half is printed with the
    # command that checks a verdict's signature.
    keys_dir = report_dir.parent / (report_dir.name + "-keys")
    shutil.rmtree(keys_dir, ignore_errors=True)
    private_key = demo_signing_key(root / "signing", keys_dir)
    pipeline.env["PROOFCHECK_SIGNING_KEY"] = str(private_key)
    pipeline.start_serve()
    refs: list[PackageRef] = []
    for path in _packages(root / "packages"):
        refs.append(pipeline.upload(store, f"{store.layout.inbox}{PUBLISHER}/{path.name}", path.read_bytes()))
    found = pipeline.wait_verdicts(store, refs, timeout)
    _wait_index(store, [Path(ref.key).name for ref in found], 30.0)
    if report_dir.exists():
        shutil.rmtree(report_dir)
    _copy_reports(store, sorted(found.values()), report_dir)
    for ref in refs:
        key = found.get(ref)
        if key is None:
            print(f"{Path(ref.key).name} missing (no verdict after {timeout:.0f} s) {tag}")
            continue
        doc = json.loads(store.get_bytes(key))
        report = report_dir / (key[: -len(".json")] + ".html")
        print(f"{Path(ref.key).name} {doc['status']} {report} (ruleset {doc['ruleset']['version']})")
    print(f"index: {report_dir / store.layout.index_html} ({time.monotonic() - started:.0f} s) {tag}")
    signed = sorted(found.values())
    if signed:
        print(f"signature: .venv/bin/proofcheck verify {report_dir / signed[0]} --key {keys_dir}"
              "  (clé de démonstration jetable / throwaway demo key)")
    if len(found) < len(refs) and pipeline.serve_process is not None:
        print(pipeline.serve_process.log_tail(3000), file=sys.stderr)
    start_workbench(pipeline, keep=os.environ.get("DEMO_KEEP", "") not in ("", "0"))
    return 0 if len(found) == len(refs) else 1


def start_workbench(pipeline: LocalPipeline, *, keep: bool) -> None:
    """The instructors' workbench over the demo's index and bucket: its URL, two accounts, and (``keep``)
    running until Ctrl-C. Started like every demo process: recorded, stopped by its PID."""
    from flows.devharness import services
    from flows.web.auth import Auth

    secret = secrets.token_urlsafe(32)
    passwords = {"instructeur": secrets.token_urlsafe(9), PUBLISHER: secrets.token_urlsafe(9)}
    auth = Auth(_index_engine(pipeline), secret.encode(), 8 * 3600, 3600)
    auth.add_account("instructeur", "instructor", password=passwords["instructeur"] + "-demo",
                     display_name="Instructeur démo")
    auth.add_account(PUBLISHER, "publisher", password=passwords[PUBLISHER] + "-demo", publisher=PUBLISHER,
                     display_name="Éditeur démo")
    port = services.free_port()
    web = services.start_process(
        "workbench", [sys.executable, "-m", "validators.cli", "web", "--port", str(port)],
        url=f"http://127.0.0.1:{port}", log_dir=pipeline.root / "logs",
        env={**pipeline.child_env(), "PROOFCHECK_WEB_SECRET": secret}, cwd=Path(__file__).resolve().parents[2],
    )
    pipeline.started.append(web)
    services.wait_http(web, "/sante", 60)
    print(f"workbench: {web.url}/paquets?editeur={PUBLISHER} — instructeur / {passwords['instructeur']}-demo ; "
          f"éditeur {PUBLISHER} / {passwords[PUBLISHER]}-demo", flush=True)
    if not keep:
        print("workbench: stopped with the demo; to keep it open: DEMO_KEEP=1 make demo (or make workbench)")
        return
    print("workbench: running until Ctrl-C", flush=True)
    try:
        while web.alive():
            time.sleep(1)
        print(web.log_tail(2000), file=sys.stderr)
    except KeyboardInterrupt:
        print("workbench: stopping", flush=True)


def _index_engine(pipeline: LocalPipeline) -> Any:
    from flows.index import VerdictIndex

    pipeline.settings.work_dir.mkdir(parents=True, exist_ok=True)  # the index's SQLite file lives there
    return VerdictIndex(pipeline.settings.index_url).engine


def main() -> None:
    sys.exit(run_demo(keep="--keep" in sys.argv))


if __name__ == "__main__":
    main()
