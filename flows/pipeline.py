"""The Prefect flows: one run validates one package version and stores exactly one verdict for it.

Thin on purpose: each task is one storage step or the engine call; the decisions live in pure code
(``flows.verdicts``, ``flows.storage``) that tests call directly. Whatever happens, the run ends with a
stored verdict (possibly ``error``), except when the storage itself is down: then the run fails and the
inbox reconcile dispatches it again.

A verdict where a check did not run (``flows.completeness``) tags the package ``proofcheck-checked=
incomplete`` (the bucket policy then keeps it from instructors); the reconcile re-runs it with backoff
(``flows.retry``) through this same flow, with ``retry`` = the number of verdicts the version has: the
re-run stores a new verdict beside the old ones and the tags and the index follow it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import verdicts as vd
from flows.completeness import checked_in_full, gaps_of
from flows.index import VerdictIndex
from flows.index_report import render_index
from flows.retry import Backoff
from flows.sealing import seal_and_store
from flows.semaphore import slot
from flows.settings import PipelineSettings
from flows.storage import (
    TAG_CHECKED,
    TAG_QUARANTINE,
    TAG_RULESET,
    TAG_STATUS,
    Member,
    PackageGoneError,
    PackageRef,
    PackageTooLargeError,
    StorageError,
    Store,
    TransientStorageError,
    UnsafeMemberError,
    make_client,
    safe_segment,
)
from validators.model import PackageVerdict
from validators.verdict_io import StoredVerdict, VerdictDocumentError, read_verdict

log = logging.getLogger(__name__)

_ENGINE: Any = None  # built once per process: loaded rulesets stay warm between packages of a worker
_CLIENTS: dict[tuple[str | None, str], Any] = {}  # boto3 clients are thread-safe: one per endpoint
STORAGE_RETRIES = 3
STORAGE_RETRY_DELAYS: list[float] = [1.0, 2.0, 4.0]


def _transient(_task: Any, _run: Any, state: Any) -> bool:
    """Retry a storage task only on errors a retry can fix."""
    try:
        state.result()
    except TransientStorageError:
        return True
    except Exception:
        return False
    return False


# A storage step: retried on transient S3 errors only, never cached (its inputs are live objects).
storage_task = task(
    retries=STORAGE_RETRIES,
    retry_delay_seconds=STORAGE_RETRY_DELAYS,
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)


def _store(settings: PipelineSettings, bucket: str | None) -> Store:
    """The bucket through an S3 client made once per process and endpoint (making one costs ~0.1 s)."""
    endpoint = (settings.s3_endpoint, settings.s3_region)
    client = _CLIENTS.get(endpoint)
    if client is None:
        client = _CLIENTS[endpoint] = make_client(settings)
    return Store(client, bucket or settings.bucket)


def _engine(settings: PipelineSettings) -> Any:
    """The process's engine, rebuilt when a sync made a newer ruleset (a warm process lives for days).

    Its checks fill the per-file result cache (never read it: a new upload is checked afresh), so the
    first re-validation after a value-set change already reuses what the change does not touch.
    """
    global _ENGINE
    from flows.revalidate import cached_engine, engine_is_current

    if _ENGINE is None or not engine_is_current(_ENGINE, settings):
        _ENGINE = cached_engine(settings, read=False)
    return _ENGINE


def _not_run_somewhere(verdict: PackageVerdict) -> bool:
    """A check reported it could not run (e.g. clamd restarting): worth one more engine run."""
    return any(f.rule == "system.check-not-run" for f in verdict.iter_findings())


def _drop_engine_if_incomplete(verdict: PackageVerdict) -> None:
    """Build a fresh engine for the next run when a check did not run in this one.

    A check may keep the reason it could not run for the life of its engine (the antivirus keeps an
    unreachable clamd's, validators/ssi/antivirus.py): in a warm process every later run, retries of
    the reconcile included, would then report it not run again even once clamd is back.
    """
    global _ENGINE
    if not gaps_of(verdict).in_full:
        _ENGINE = None


@storage_task
def locate(store: Store, key: str, version_id: str | None, etag: str | None) -> PackageRef:
    return store.resolve(key, version_id, etag)


@storage_task
def fetch(store: Store, ref: PackageRef, dest: Path, limit: int) -> str:
    return store.download(ref, dest, limit)


@storage_task
def fetch_folder(store: Store, ref: PackageRef, dest: Path, limit: int) -> list[Member]:
    """A folder package: every member under ``dest`` (the members as read, for their tags)."""
    dest.mkdir()
    return store.download_folder(ref, dest, limit)


@task(cache_policy=NO_CACHE, persist_result=False)
def check(path: Path, ref: PackageRef, sha256: str, settings: PipelineSettings) -> PackageVerdict:
    """The pure engine, under a machine-wide slot (protects clamd and the CPU from a burst)."""
    from validators.package import open_package

    verdict: PackageVerdict | None = None
    for attempt in range(settings.engine_retries + 1):
        if attempt:
            time.sleep(settings.engine_retry_delay)
        engine = _engine(settings)
        with (
            slot(settings.work_dir / "slots", settings.check_slots),
            open_package(path, settings=settings.engine_settings) as contents,
        ):
            verdict = engine.run(contents)
        _drop_engine_if_incomplete(verdict)
        if not _not_run_somewhere(verdict):
            break
    assert verdict is not None
    return vd.with_source(verdict, ref)


@storage_task
def write_verdict(
    store: Store,
    ref: PackageRef,
    verdict: PackageVerdict,
    doc: dict[str, Any],
    settings: PipelineSettings | None,
    attempt: int = 0,
) -> str | None:
    """The verdict JSON (sealed: chained, signed, in the ledger) and HTML, written once (None: this version
    already has one for this attempt)."""
    return seal_and_store(
        store, ref, verdict.provenance.ruleset_version, doc, vd.render_html(verdict).encode("utf-8"), settings,
        attempt,
    )


@storage_task
def attach(
    store: Store,
    ref: PackageRef,
    tags: dict[str, str],
    quarantine: bool,
    members: list[tuple[Member, str]] | None = None,
) -> None:
    """Tags on the proof objects and the package, then the quarantine move: after the verdict, repeatable.

    ``members`` (folder packages): each object with the status of its proof.
    """
    for member, status in [] if quarantine else members or []:
        member_ref = PackageRef(store.bucket, member.key, member.etag, member.version_id, member.size)
        with contextlib.suppress(PackageGoneError):  # replaced or deleted since it was read
            store.tag(member_ref, {**tags, TAG_STATUS: status})
    try:
        store.tag(ref, tags)
        if quarantine:
            store.quarantine_package(ref, tags)
    except PackageGoneError:
        pass  # deleted since it was read: the verdict stands, there is nothing left to tag or move


def _pre_quarantine(store: Store, ref: PackageRef, members: list[Member]) -> None:
    """The quarantine tag on every object of a risky package, before its verdict exists.

    The bucket policy denies reads on this tag, so a run that dies before the move still leaves the
    package out of the instructors' reach.
    """
    refs = [PackageRef(store.bucket, m.key, m.etag, m.version_id, m.size) for m in members]
    for target in [*refs, ref]:
        with contextlib.suppress(StorageError):
            store.tag(target, {TAG_QUARANTINE: "true"})


def store_verdict(
    store: Store,
    ref: PackageRef,
    verdict: PackageVerdict,
    area: str,
    members: list[Member] | None = None,
    *,
    attempt: int = 0,
    backoff: Backoff | None = None,
    settings: PipelineSettings | None = None,
) -> dict[str, Any]:
    """Write the verdict once, then tag and quarantine (retried apart: a tag failure never rewrites it).

    ``attempt``: verdicts this version already has (0 for its first run, n for the reconcile's re-run).
    """
    logger = get_run_logger()
    doc = vd.document(verdict, ref, area=area, publisher=store.layout.publisher_of(ref.key))
    next_try = (backoff or Backoff()).next_try_iso(datetime.now(UTC), attempt)
    vd.mark_checked(doc, attempt, next_try, verdict=verdict)
    tags = {
        TAG_STATUS: verdict.status.value,
        TAG_RULESET: verdict.provenance.ruleset_version,
        TAG_CHECKED: gaps_of(verdict).tag,
    }
    if verdict.quarantine:
        tags[TAG_QUARANTINE] = "true"
        _pre_quarantine(store, ref, members or [])
    json_key = write_verdict(store, ref, verdict, doc, settings, attempt)
    if json_key is None:
        return {"stored": False, "json_key": None, "doc": None}
    statuses = vd.object_statuses(verdict)
    # A member the verdict does not name was not checked: never tagged as if it had passed.
    tagged = [(m, statuses.get(m.path, "error")) for m in members or []]
    try:
        attach(store, ref, tags, verdict.quarantine, tagged)
    except StorageError as exc:
        # The verdict is stored (the record); a later run of this version completes the move.
        logger.error("tags or quarantine not applied: %s", type(exc).__name__)
    return {"stored": True, "json_key": json_key, "doc": doc}


@task(cache_policy=NO_CACHE, persist_result=False)
def publish_index(store: Store, settings: PipelineSettings, doc: dict[str, Any], json_key: str) -> None:
    """Record the verdict in the index and regenerate the instructors' index page."""
    republish_index(store, settings, record=(doc, json_key))


def _artifact(ref: PackageRef, summary: dict[str, Any], json_key: str | None) -> None:
    """A table in the Prefect UI: display only, Prefect deletes it with old runs."""
    try:
        from prefect.artifacts import create_table_artifact

        slug = hashlib.sha256(ref.key.encode()).hexdigest()[:16]
        create_table_artifact(
            key=f"verdict-{slug}",
            table=[{"package": ref.key, "version": ref.token, **summary, "verdict": json_key or ""}],
            description=f"proofcheck verdict of {vd.package_name(ref.key)}",
            _sync=True,  # type: ignore[call-arg]  # the flow is async, this body is not
        )
    except Exception as exc:  # display only: never fail a run for it
        log.warning("artifact not created: %s", type(exc).__name__)


def _finish_existing(store: Store, ref: PackageRef, json_key: str) -> None:
    """A previous run stored the verdict: complete the quarantine move if it died before it."""
    with contextlib.suppress(PackageGoneError):  # moved or deleted meanwhile
        store.complete_quarantine(ref, json_key)


def _retry_refused(store: Store, ref: PackageRef, retry: int) -> str | None:
    """Why the re-run that would store this version's ``retry``-th verdict must not run (None: it may).

    The reconcile asks with the number of verdicts it saw; a different number means another run stored
    one since, and a latest verdict checked in full (or quarantined) leaves nothing to re-run.
    """
    listing = store.verdict_listing(ref)
    if len(listing) != retry:
        return f"the version has {len(listing)} verdict(s), this re-run was for {retry}"
    try:
        latest = read_verdict(store.get_bytes(listing[-1][0]))
    except VerdictDocumentError:
        return None  # unreadable: re-running it is the safe side
    if latest.verdict.quarantine:
        return "its latest verdict quarantined it"
    if checked_in_full(latest):
        return "its latest verdict is checked in full"
    return None


def validate(
    store: Store,
    settings: PipelineSettings,
    key: str,
    version_id: str | None = None,
    etag: str | None = None,
    retry: int = 0,
) -> dict[str, Any]:
    """The body of the flow (kept callable from the flow only: the tasks need a run context).

    ``retry`` > 0: the reconcile's re-run of a version whose latest verdict is not checked in full; it
    stores the version's ``retry``-th verdict (history kept) unless another run already did.
    """
    logger = get_run_logger()
    area = store.layout.area_of(key)
    if area is None:
        return {"outcome": "skipped", "reason": "not a package key"}
    verdict: PackageVerdict | None = None
    try:
        ref = locate(store, key, version_id, etag)
    except PackageGoneError:
        if retry:  # deleted or moved since its first verdict, which stays the record
            return {"outcome": "skipped", "reason": "the package is gone"}
        ref = PackageRef(store.bucket, key, etag or "", version_id)
        verdict = vd.error_verdict(ref, "the package was deleted before it could be read")
    if etag and not ref.version_id and ref.etag != etag:
        logger.info("asked for an overwritten version of an unversioned bucket; validating the current one")
    if retry:
        refused = _retry_refused(store, ref, retry)
        if refused is not None:
            return {"outcome": "already", "reason": refused}
    existing = [] if retry else store.verdict_keys_of(ref)
    if existing:
        _finish_existing(store, ref, existing[-1])
        return {"outcome": "already", "json_key": existing[-1]}
    if verdict is not None and not version_id and etag:
        # A late event without a version id (moto) for a version moved to quarantine since: its verdict
        # is under the version id it had. Without this the soak stored a second, error verdict (46 of 210).
        judged = store.verdict_keys_for_content(key, etag)
        if judged:
            return {"outcome": "already", "json_key": judged[-1]}
    members: list[Member] = []
    if verdict is None:
        verdict, members = _checked(store, settings, ref)
    result = store_verdict(
        store, ref, verdict, area, members, attempt=retry, backoff=Backoff.of(settings), settings=settings
    )
    summary = vd.summary(verdict)
    if not result["stored"]:
        return {"outcome": "already", **summary}
    if area == "inbox":
        try:
            publish_index(store, settings, result["doc"], result["json_key"])
        except Exception as exc:  # the verdict is stored; the index is rebuilt from it if needed
            logger.warning("index not updated: %s", type(exc).__name__)
    _artifact(ref, summary, result["json_key"])
    logger.info("verdict %s stored for %s (verdict %d of this version)", summary["status"], ref.token, retry + 1)
    return {"outcome": "stored", "json_key": result["json_key"], **summary}


def _checked(store: Store, settings: PipelineSettings, ref: PackageRef) -> tuple[PackageVerdict, list[Member]]:
    """Fetch and check; any failure here becomes an ``error`` verdict naming what went wrong.

    Returns the verdict and, for a folder package, the members that were read.
    """
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    folder = store.layout.is_marker(ref.key)
    members: list[Member] = []
    with tempfile.TemporaryDirectory(dir=settings.work_dir, prefix="pkg-") as tmp:
        name = safe_segment(vd.package_name(ref.key))
        path = Path(tmp) / name
        sha256 = ""
        try:
            if folder:
                members = fetch_folder(store, ref, path, settings.max_package_bytes)
            else:
                sha256 = fetch(store, ref, path, settings.max_package_bytes)
        except PackageGoneError:
            return vd.error_verdict(ref, "the package was deleted or replaced before it could be read"), []
        except PackageTooLargeError:
            return vd.error_verdict(
                ref, f"the package is over the {settings.max_package_bytes} byte limit and was not read"
            ), []
        except UnsafeMemberError:
            return vd.error_verdict(ref, "an object of the folder has a name that is not a plain path"), []
        except StorageError as exc:
            return vd.error_verdict(ref, f"the storage failed while reading it ({type(exc).__name__})"), []
        try:
            return check(path, ref, sha256, settings), members
        except Exception as exc:  # the engine is fail-closed per check; this is the intake or a bug
            log.warning("package check failed: %s", type(exc).__name__)
            return vd.error_verdict(
                ref, f"the checks could not complete ({type(exc).__name__})", sha256=sha256
            ), members


@flow(name="validate-package", persist_result=False, log_prints=False)
async def validate_package(
    bucket: str, key: str, version_id: str | None = None, etag: str | None = None, retry: int = 0
) -> dict[str, Any]:
    """Validate one uploaded package version and store its verdict next to it.

    ``retry``: set by the reconcile to re-run a version whose latest verdict is not checked in full
    (the number of verdicts it has); 0 for an upload.

    Asynchronous only for Prefect's sake (a synchronous flow run costs about 1 s more, docs/domain.md §6):
    the body and its tasks are synchronous and run one after the other.
    """
    settings = PipelineSettings.from_env()
    return validate(_store(settings, bucket), settings, key, version_id, etag, retry)


@flow(name="rebuild-index", persist_result=False)
def rebuild_index(bucket: str | None = None) -> int:
    """Rebuild the verdict index and the index page from the stored verdicts."""
    settings = PipelineSettings.from_env()
    return republish_index(_store(settings, bucket), settings)


def republish_index(
    store: Store,
    settings: PipelineSettings,
    record: tuple[StoredVerdict | Mapping[str, Any], str] | None = None,
) -> int:
    """Index one new verdict (or rebuild the whole index when ``record`` is None) and rewrite the page.

    ``record``: the verdict as stored (a document is read back first) and its key. Returns the number
    of packages on the page.
    """
    stored: tuple[StoredVerdict, str] | None = None
    if record is not None:
        verdict, json_key = record
        try:
            stored = (verdict if isinstance(verdict, StoredVerdict) else read_verdict(verdict), json_key)
        except VerdictDocumentError as exc:  # a bug of ours: index what the store holds, from scratch
            log.error("stored verdict not readable, index rebuilt: %s", exc)
    index = VerdictIndex(settings.index_url)
    try:
        if stored is None:
            index.rebuild(store)
        elif not index.ensure(store):
            index.record(*stored)
        rows = index.latest()
    finally:
        index.close()
    page = render_index(rows, store.layout.reports)
    store.put_bytes(store.layout.index_html, page.encode("utf-8"), "text/html; charset=utf-8")
    return len(rows)
