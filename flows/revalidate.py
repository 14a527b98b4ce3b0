"""Re-validation: packages whose latest verdict used an older ruleset get a new verdict, beside the old one.

Triggered by the sync's ``proofcheck.ruleset.updated`` event (deployment in ``flows/deployments.py``) or
by hand (``proofcheck revalidate [--since RULESET] [--dry-run]``). For each package the verdict index
lists with another ruleset than the one in force:

- **carried**: no check that ran on any of its files (children included) reads a component that changed
  (``validators.resultcache.DEPENDENCIES``): the verdict is the same by construction; it is stored again
  under the new ruleset without downloading or re-scanning the package.
- **rerun**: the package is downloaded and the engine runs with every check behind the per-file result
  cache, so only the checks that read what changed do any work. Unknown engine version, a check that did
  not run, or a check whose dependencies are unknown: everything is re-run ("all of it if unsure").

The new verdict carries a ``revalidation`` section (previous verdict, mode, diff, change report); the
old verdict is never touched. Then tags, the verdict index and the instructors' pages are updated, and
the run's change report is written under ``reports/changes/<ruleset>/<run>.html`` (+ ``.json``).
A package that fails keeps its previous verdict and is listed as such in the report.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows import verdicts as vd
from flows.change_report import render_change_report, render_runs_index
from flows.completeness import gaps_of
from flows.index import IndexRow, VerdictIndex
from flows.index_report import render_index
from flows.sealing import seal_and_store
from flows.semaphore import slot
from flows.settings import PipelineSettings
from flows.storage import (
    TAG_CHECKED,
    TAG_QUARANTINE,
    TAG_RULESET,
    TAG_STATUS,
    PackageRef,
    StorageError,
    Store,
    safe_segment,
)
from validators import __version__
from validators.base import Validator
from validators.engine import Engine, RulesetInfo
from validators.resultcache import ResultCache, affected, with_cache
from validators.verdict_diff import changed_components, diff_documents, walk_files

log = logging.getLogger(__name__)

CHANGES = "changes/"
PARALLEL_PACKAGES = 8
ValidatorsFactory = Callable[[Mapping[str, Any]], list[Validator]]
# Tests narrow the checks here (as they set flows.pipeline._ENGINE); None: every family of the registry.
VALIDATORS_FACTORY: ValidatorsFactory | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def result_cache_dir(settings: PipelineSettings) -> Path:
    """``$PROOFCHECK_RESULT_CACHE`` (a volume shared by workers), else ``<work dir>/resultcache``."""
    return Path(os.environ.get("PROOFCHECK_RESULT_CACHE") or settings.work_dir / "resultcache")


def _default_validators(settings: Mapping[str, Any]) -> list[Validator]:
    from validators.registry import default_validators

    return default_validators(settings)


def cached_engine(
    settings: PipelineSettings, validators: Sequence[Validator] | None = None, *, read: bool = True
) -> Engine:
    """An engine for the intake flow whose checks fill the per-file result cache re-validation reads.

    With it, the first re-validation after a change already reuses the unaffected checks of the packages
    it re-runs. ``engine_is_current`` tells a warm worker when to build it again.
    """
    from validators.dryrun import current_ruleset

    info = current_ruleset(settings.engine_settings)
    chosen = list(validators) if validators is not None else _default_validators(settings.engine_settings)
    components = dict(info.components)
    for validator in chosen:
        components.update(validator.components())
    wrapped = with_cache(
        chosen,
        ResultCache(result_cache_dir(settings)),
        ruleset_version=info.version,
        components=components,
        settings=settings.engine_settings,
        read=read,
    )
    return Engine(wrapped, ruleset=info, settings=settings.engine_settings)


def engine_is_current(engine: Engine, settings: PipelineSettings) -> bool:
    """False once a sync made a newer ruleset than the one ``engine`` was built with (rebuild it then)."""
    from validators.dryrun import current_ruleset

    return engine.ruleset.version == current_ruleset(settings.engine_settings).version


# -- pure decisions --------------------------------------------------------------------------------------


def _order(version: str) -> str:
    """Ruleset versions sort by import time; "none" (no ruleset synced) comes before all of them."""
    return "" if version in ("", "none") else version


def select(rows: Sequence[IndexRow], current: str, since: str | None) -> list[IndexRow]:
    """Latest verdicts computed under another ruleset (and, with ``since``, under ``since`` or later)."""
    chosen = []
    for row in rows:
        if row.ruleset_version == current or row.quarantine:
            continue  # a quarantined package is out of the inbox and keeps its ssi verdict
        if since is not None and _order(row.ruleset_version) < _order(since):
            continue
        chosen.append(row)
    return sorted(chosen, key=lambda r: r.package_key)


def all_files(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for proof in doc.get("proofs") or []:
        yield from walk_files(proof.get("files"))
    yield from walk_files(doc.get("unmapped_files"))


@dataclass(frozen=True)
class Plan:
    mode: str  # "carried" or "rerun"
    changed: tuple[str, ...] | None  # component names that changed (None: unknown, everything re-runs)
    reason: str


def plan(doc: Mapping[str, Any], version: str, components: Mapping[str, str]) -> Plan:
    """Whether the stored verdict ``doc`` can be carried over to the ruleset in force, and why."""
    if (doc.get("engine") or {}).get("version") != __version__:
        return Plan("rerun", None, "computed by another engine version")
    findings = [f for f in doc.get("package_findings") or [] if str(f.get("rule", "")).startswith("system.")]
    checks = [c for f in all_files(doc) for c in f.get("checks") or []]
    if findings or any(c.get("status") == "not_run" for c in checks):
        return Plan("rerun", None, "a check did not run when it was computed")
    old = (doc.get("ruleset") or {}).get("components") or {}
    changed = {name for name, _a, _b in changed_components(old, components)}
    hit = sorted({c["name"] for c in checks if affected(str(c.get("name")), changed, components)})
    if hit:
        return Plan("rerun", tuple(sorted(changed)), "checks that read what changed: " + ", ".join(hit))
    return Plan("carried", tuple(sorted(changed)), "no check of this package reads what changed")


def carry_over(doc: Mapping[str, Any], version: str, components: Mapping[str, str]) -> dict[str, Any]:
    """The same verdict, stated under the ruleset in force (same findings, same statuses)."""
    out = copy.deepcopy(dict(doc))
    out.pop("revalidation", None)
    now = _now()
    out["ruleset"] = {"version": version, "components": dict(components)}
    out["engine"] = {**(out.get("engine") or {}), "started_at": now, "finished_at": now}
    out["object"] = {**(out.get("object") or {}), "stored_at": now}
    return out


def ref_of(doc: Mapping[str, Any], bucket: str) -> PackageRef:
    obj = doc.get("object") or {}
    return PackageRef(
        bucket=obj.get("bucket") or bucket,
        key=str(obj["key"]),
        etag=str(obj.get("etag") or ""),
        version_id=obj.get("version_id"),
        size=int(obj["size"]) if obj.get("size") is not None else -1,
        last_modified=obj.get("uploaded_at"),
    )


# -- the run --------------------------------------------------------------------------------------------


@dataclass
class Revalidation:
    """One re-validation run over a bucket (the flow and the CLI both drive it)."""

    store: Store
    settings: PipelineSettings
    validators_factory: ValidatorsFactory | None = None  # None: the registry's (looked up at run time)
    full: bool = False  # re-run every check of every stale package, cache bypassed (after an engine fix...)
    run_id: str = field(default_factory=lambda: f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")
    _engine: Engine | None = None
    _cache: ResultCache | None = None
    _info: RulesetInfo | None = None
    _engine_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what is in force -------------------------------------------------------------------------------

    def ruleset(self) -> RulesetInfo:
        """The ruleset in force (loaded once per run: a sync during the run waits for the next one)."""
        with self._engine_lock:
            return self._ruleset()

    def _ruleset(self) -> RulesetInfo:
        if self._info is None:
            from validators.dryrun import current_ruleset

            info = current_ruleset(self.settings.engine_settings)
            components = dict(info.components)
            for validator in self.validators():
                components.update(validator.components())
            self._info = RulesetInfo(version=info.version, components=components, handle=info.handle)
        return self._info

    def validators(self) -> list[Validator]:
        factory = self.validators_factory or VALIDATORS_FACTORY or _default_validators
        return factory(self.settings.engine_settings)

    def engine(self) -> Engine:
        """The engine of this run (callers hold ``_engine_lock``)."""
        if self._engine is None:
            info = self._ruleset()
            validators = self.validators()
            if not self.full:
                self._cache = ResultCache(result_cache_dir(self.settings))
                validators = with_cache(
                    validators,
                    self._cache,
                    ruleset_version=info.version,
                    components=info.components,
                    settings=self.settings.engine_settings,
                )
            self._engine = Engine(validators, ruleset=info, settings=self.settings.engine_settings)
        return self._engine

    @property
    def page_key(self) -> str:
        folder = f"{self.store.layout.reports}{CHANGES}{safe_segment(self.ruleset().version)}/"
        return f"{folder}{self.run_id}.html"

    # -- one package ------------------------------------------------------------------------------------

    def _rerun(self, ref: PackageRef, old: Mapping[str, Any]) -> dict[str, Any]:
        from validators.package import open_package

        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.settings.work_dir, prefix="reval-") as tmp:
            path = Path(tmp) / safe_segment(vd.package_name(ref.key))
            if self.store.layout.is_marker(ref.key):  # a folder package: its proof objects, not the marker
                self.store.download_folder(ref, path, self.settings.max_package_bytes)
            else:
                self.store.download(ref, path, self.settings.max_package_bytes)
            # One package in the engine at a time (its checks are not shared between threads), then the
            # machine-wide slot the pipeline also takes (protects clamd and the CPU).
            with (
                self._engine_lock,
                slot(self.settings.work_dir / "slots", self.settings.check_slots),
                open_package(path, settings=self.settings.engine_settings) as contents,
            ):
                verdict = self.engine().run(contents)
        verdict = vd.with_source(verdict, ref)
        publisher = (old.get("object") or {}).get("publisher")
        return vd.document(verdict, ref, area="inbox", publisher=publisher)

    def revalidate(self, row: IndexRow, *, dry_run: bool = False) -> dict[str, Any]:
        """Re-validate one package; the outcome as the run's record lists it (never raises)."""
        outcome: dict[str, Any] = {
            "package_key": row.package_key,
            "name": row.package_name,
            "publisher": row.publisher,
            "old_json_key": row.json_key,
            "old_html": row.html_key,
        }
        info = self.ruleset()
        try:
            old = json.loads(self.store.get_bytes(row.json_key))
            decision = (
                Plan("rerun", None, "full re-run asked") if self.full else plan(old, info.version, info.components)
            )
            outcome.update(mode=decision.mode, reason=decision.reason, changed=decision.changed)
            if dry_run:
                return outcome
            ref = ref_of(old, self.store.bucket)
            new = (
                carry_over(old, info.version, info.components) if decision.mode == "carried" else self._rerun(ref, old)
            )
        except (StorageError, OSError, ValueError, KeyError) as exc:
            log.warning("package not re-validated: %s", type(exc).__name__)
            outcome.update(mode="failed", reason=f"{type(exc).__name__}: the previous verdict stays in force")
            return outcome
        diff = diff_documents(old, new)
        broken = sorted({f.rule for p in diff.proofs for f in p.added if f.rule.startswith("system.")})
        if broken:
            # A check that could not run now (scanner down, timeout) must not replace a verdict that was
            # computed in full: keep it, say so, and let the next run try again.
            outcome.update(mode="failed", reason=f"{', '.join(broken)} this time: the previous verdict stays")
            return outcome
        new["revalidation"] = {
            "run": self.run_id,
            "mode": decision.mode,
            "reason": decision.reason,
            "previous": {"json_key": row.json_key, "status": old.get("status"), "ruleset": diff.old_ruleset},
            "diff": diff.to_dict(),
            "report": self.page_key,
        }
        outcome["diff"] = diff.to_dict()
        try:
            stored = self._store(ref, new)
        except StorageError as exc:
            outcome.update(mode="failed", reason=f"{type(exc).__name__} while storing: the previous verdict stays")
            outcome.pop("diff")
            return outcome
        if stored is None:
            outcome.update(mode="already", reason="a verdict under this ruleset was already stored")
        outcome.update(new_json_key=stored, new_html=stored[: -len(".json")] + ".html" if stored else None)
        outcome["doc"] = new
        return outcome

    def _store(self, ref: PackageRef, doc: dict[str, Any]) -> str | None:
        from validators.report.html import render_document

        version = doc["ruleset"]["version"]
        # Whether every check ran, for the index and the tags; a gap is re-run by the reconcile (its
        # schedule comes from the version's stored verdicts: no attempt number known here).
        vd.mark_checked(doc)
        json_key = seal_and_store(self.store, ref, version, doc, render_document(doc).encode("utf-8"), self.settings)
        if json_key is None:
            return None
        tags = {TAG_STATUS: str(doc["status"]), TAG_RULESET: version, TAG_CHECKED: gaps_of(doc).tag}
        try:
            if doc.get("quarantine"):
                self.store.quarantine_package(ref, {**tags, TAG_QUARANTINE: "true"})
                return json_key
            if self.store.layout.is_marker(ref.key):
                # Each proof object of a folder package carries its proof's status, as the intake tags it.
                statuses = vd.object_statuses(doc)
                for member in self.store.members(ref):
                    member_ref = PackageRef(ref.bucket, member.key, member.etag, member.version_id, member.size)
                    self.store.tag(member_ref, {**tags, TAG_STATUS: statuses.get(member.path, "error")})
            self.store.tag(ref, tags)
        except StorageError as exc:
            # The verdict is the record; the tags follow at the next verdict of this package.
            log.warning("tags not updated after re-validation: %s", type(exc).__name__)
        return json_key

    # -- the whole run ----------------------------------------------------------------------------------

    def candidates(self, since: str | None) -> list[IndexRow]:
        index = VerdictIndex(self.settings.index_url)
        try:
            index.ensure(self.store)
            return select(index.latest(), self.ruleset().version, since)
        finally:
            index.close()

    def run(self, *, since: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Re-validate every stale package; returns the run record (also stored unless ``dry_run``)."""
        started, clock = _now(), time.monotonic()
        info = self.ruleset()
        rows = self.candidates(since)
        # Packages in parallel: carried ones are S3 round trips; the engine itself runs one package at a time.
        with ThreadPoolExecutor(max_workers=PARALLEL_PACKAGES) as pool:
            outcomes = list(pool.map(lambda row: self.revalidate(row, dry_run=dry_run), rows))
        previous = sorted({row.ruleset_version for row in rows})
        components: dict[str, tuple[str | None, str | None]] = {}
        for outcome in outcomes:
            diff = outcome.get("diff") or {}
            for change in diff.get("components", []):
                components[change["name"]] = (change["from"], change["to"])
        stats = self._cache.stats if self._cache is not None else None
        record = {
            "run_id": self.run_id,
            "started_at": started,
            "finished_at": _now(),
            "seconds": round(time.monotonic() - clock, 3),
            "dry_run": dry_run,
            "since": since,
            "ruleset_version": info.version,
            "ruleset_components": dict(info.components),
            "previous_rulesets": previous,
            "components": [{"name": n, "from": a, "to": b} for n, (a, b) in sorted(components.items())],
            "reports_prefix": self.store.layout.reports,
            "report": None if dry_run or not rows else self.page_key,
            "cache": {"hits": stats.hits, "misses": stats.misses, "stored": stats.stored} if stats else None,
            "packages": [{k: v for k, v in o.items() if k != "doc"} for o in outcomes],
        }
        if not dry_run and rows:
            self._publish(record, [o for o in outcomes if o.get("doc") is not None and o.get("new_json_key")])
        return record

    def _publish(self, record: dict[str, Any], stored: list[dict[str, Any]]) -> None:
        """Change report, the runs' list, the verdict index and the instructors' index page."""
        page = self.page_key
        self.store.put_bytes(page[: -len(".html")] + ".json", vd.document_bytes(record), "application/json")
        self.store.put_bytes(page, render_change_report(record, page).encode("utf-8"), "text/html; charset=utf-8")
        self._publish_runs_index()
        index = VerdictIndex(self.settings.index_url)
        try:
            index.record_revalidated(
                [(o["doc"], o["new_json_key"]) for o in stored if o["doc"]["object"]["area"] == "inbox"]
            )
            rows = index.latest()
        finally:
            index.close()
        page_html = render_index(rows, self.store.layout.reports)
        self.store.put_bytes(self.store.layout.index_html, page_html.encode("utf-8"), "text/html; charset=utf-8")

    def _publish_runs_index(self) -> None:
        prefix = f"{self.store.layout.reports}{CHANGES}"
        index_key = prefix + "index.html"
        pages = []
        paginator = self.store.client.get_paginator("list_objects_v2")
        for answer in paginator.paginate(Bucket=self.store.bucket, Prefix=prefix):
            for item in answer.get("Contents", []):
                key = item["Key"]
                if key.endswith(".html") and key != index_key:
                    ruleset, run = key[len(prefix) :].rsplit("/", 1)
                    pages.append((key, f"{run.removesuffix('.html')}: ruleset {ruleset}"))
        pages.sort(key=lambda p: p[0].rsplit("/", 1)[-1], reverse=True)
        self.store.put_bytes(index_key, render_runs_index(pages, index_key).encode("utf-8"), "text/html; charset=utf-8")


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of a run record, for logs, the CLI and the flow's return value."""
    modes: dict[str, int] = {}
    for outcome in record.get("packages", []):
        modes[str(outcome.get("mode"))] = modes.get(str(outcome.get("mode")), 0) + 1
    changed = [o["package_key"] for o in record.get("packages", []) if (o.get("diff") or {}).get("status_changed")]
    return {
        "run_id": record.get("run_id"),
        "ruleset": record.get("ruleset_version"),
        "packages": len(record.get("packages", [])),
        "modes": modes,
        "status_changed": changed,
        "report": record.get("report"),
        "seconds": record.get("seconds"),
        "cache": record.get("cache"),
    }


def _artifacts(record: Mapping[str, Any]) -> None:
    """Markdown summary and a table of status changes in the Prefect UI (display only)."""
    try:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        counts = summary(record)
        lines = [
            f"# Re-validation under `{record['ruleset_version']}`",
            "",
            f"- packages: {counts['packages']} ({', '.join(f'{n} {m}' for m, n in sorted(counts['modes'].items()))})",
            f"- status changed: {len(counts['status_changed'])}",
            f"- components changed: {', '.join(c['name'] for c in record['components']) or 'none'}",
            f"- change report: `{record.get('report') or '(none)'}`",
            f"- per-file result cache: {record.get('cache')}",
            f"- {record['seconds']} s",
        ]
        create_markdown_artifact(key="revalidation", markdown="\n".join(lines), description="proofcheck re-validation")
        rows = [
            {
                "package": o["package_key"],
                "mode": o.get("mode"),
                "from": (o.get("diff") or {}).get("old_status"),
                "to": (o.get("diff") or {}).get("new_status"),
                "verdict": o.get("new_json_key") or "",
            }
            for o in record.get("packages", [])
            if (o.get("diff") or {}).get("status_changed") or o.get("mode") == "failed"
        ]
        create_table_artifact(key="revalidation-changes", table=rows or [{"package": "(no status change)"}])
    except Exception as exc:  # display only: never fail a run for it
        log.warning("artifact not created: %s", type(exc).__name__)


@flow(name="revalidate", persist_result=False)
def revalidate(
    since: str | None = None, dry_run: bool = False, bucket: str | None = None, full: bool = False
) -> dict[str, Any]:
    """Re-validate the packages whose latest verdict was computed under another ruleset than the one in force."""
    settings = PipelineSettings.from_env()
    record = Revalidation(Store.connect(settings, bucket), settings, full=full).run(since=since, dry_run=dry_run)
    _artifacts(record)
    get_run_logger().info("re-validation %s", json.dumps(summary(record)))
    return summary(record)
