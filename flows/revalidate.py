"""Re-validation: packages whose latest verdict used an older ruleset get a new verdict, beside the old one.

Triggered by the sync's ``proofcheck.ruleset.updated`` event (deployment in ``flows/deployments.py``) or
by hand (``proofcheck revalidate [--since RULESET] [--dry-run]``). For each package the verdict index
lists with another ruleset than the one in force:

- **carried**: no check that ran on any of its files (children included) reads a component that changed
  (each check's ``reads_ruleset``, ``validators/base.py``): the verdict is the same by construction; it is stored again
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

import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
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
from validators.model import CheckState
from validators.resultcache import ResultCache, affected, with_cache
from validators.verdict_diff import changed_components, diff_verdicts
from validators.verdict_io import StoredVerdict, read_verdict, thaw

log = logging.getLogger(__name__)

CHANGES = "changes/"
PARALLEL_PACKAGES = 8
ValidatorsFactory = Callable[[Mapping[str, Any]], list[Validator]]
# Tests narrow the checks here (as they set flows.pipeline._ENGINE); None: every family of the registry.
VALIDATORS_FACTORY: ValidatorsFactory | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def result_cache_dir(settings: PipelineSettings) -> Path:
    """The ``result_cache`` setting (a volume shared by workers), else ``<work dir>/resultcache``."""
    return settings.result_cache_dir


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


@dataclass(frozen=True)
class Plan:
    mode: str  # "carried" or "rerun"
    changed: tuple[str, ...] | None  # component names that changed (None: unknown, everything re-runs)
    reason: str


def plan(stored: StoredVerdict, version: str, components: Mapping[str, str]) -> Plan:
    """Whether the stored verdict can be carried over to the ruleset in force, and why."""
    verdict = stored.verdict
    if verdict.provenance.engine_version != __version__:
        return Plan("rerun", None, "computed by another engine version")
    checks = [c for f in verdict.iter_file_verdicts() for c in f.checks]
    if any(f.is_system for f in verdict.package_findings) or any(c.state is CheckState.NOT_RUN for c in checks):
        return Plan("rerun", None, "a check did not run when it was computed")
    changed = {name for name, _a, _b in changed_components(dict(verdict.provenance.components), components)}
    hit = sorted({c.name for c in checks if affected(c.name, changed, components)})
    if hit:
        return Plan("rerun", tuple(sorted(changed)), "checks that read what changed: " + ", ".join(hit))
    return Plan("carried", tuple(sorted(changed)), "no check of this package reads what changed")


def carry_over(stored: StoredVerdict, version: str, components: Mapping[str, str]) -> StoredVerdict:
    """The same verdict, stated under the ruleset in force (same findings, same statuses): a new document.

    The old document's ``object`` section comes along (stored now); its ``revalidation`` does not, and
    ``checked``, ``attestation`` and ``chain`` are written again when the new document is stored.
    """
    now = _now()
    verdict = stored.verdict
    provenance = replace(
        verdict.provenance,
        ruleset_version=version,
        components=tuple(components.items()),
        started_at=now,
        finished_at=now,
    )
    previous = stored.sections.get("object")
    section = {**thaw(previous), "stored_at": now} if previous is not None else None
    return StoredVerdict.new(replace(verdict, provenance=provenance), object=section)


def ref_of(stored: StoredVerdict, bucket: str) -> PackageRef:
    """The package version a stored verdict was computed from (KeyError when it names none)."""
    obj = stored.object
    if obj is None:
        raise KeyError("object")
    return PackageRef(
        bucket=obj.bucket or bucket,
        key=obj.key,
        etag=obj.etag or "",
        version_id=obj.version_id,
        size=obj.size if obj.size is not None else -1,
        last_modified=obj.uploaded_at,
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

    def _rerun(self, ref: PackageRef, old: StoredVerdict) -> StoredVerdict:
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
        previous = old.object
        publisher = previous.publisher if previous else None
        return StoredVerdict.new(verdict, object=vd.object_section(ref, area="inbox", publisher=publisher))

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
            old = read_verdict(self.store.get_bytes(row.json_key))
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
        diff = diff_verdicts(old.verdict, new.verdict)
        broken = sorted({f.rule for p in diff.proofs for f in p.added if f.rule.startswith("system.")})
        if broken:
            # A check that could not run now (scanner down, timeout) must not replace a verdict that was
            # computed in full: keep it, say so, and let the next run try again.
            outcome.update(mode="failed", reason=f"{', '.join(broken)} this time: the previous verdict stays")
            return outcome
        new = new.with_section(
            "revalidation",
            {
                "run": self.run_id,
                "mode": decision.mode,
                "reason": decision.reason,
                "previous": {"json_key": row.json_key, "status": diff.old_status, "ruleset": diff.old_ruleset},
                "diff": diff.to_dict(),
                "report": self.page_key,
            },
        )
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

    def _store(self, ref: PackageRef, new: StoredVerdict) -> str | None:
        verdict = new.verdict
        version = verdict.provenance.ruleset_version
        doc = new.to_document()
        # Whether every check ran, for the index and the tags; a gap is re-run by the reconcile (its
        # schedule comes from the version's stored verdicts: no attempt number known here).
        vd.mark_checked(doc, verdict=verdict)
        html = vd.render_html(verdict).encode("utf-8")
        json_key = seal_and_store(self.store, ref, version, doc, html, self.settings)
        if json_key is None:
            return None
        tags = {TAG_STATUS: verdict.status.value, TAG_RULESET: version, TAG_CHECKED: gaps_of(verdict).tag}
        try:
            if verdict.quarantine:
                self.store.quarantine_package(ref, {**tags, TAG_QUARANTINE: "true"})
                return json_key
            if self.store.layout.is_marker(ref.key):
                # Each proof object of a folder package carries its proof's status, as the intake tags it.
                statuses = vd.object_statuses(verdict)
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
                [(o["doc"], o["new_json_key"]) for o in stored if o["doc"].area == "inbox"]
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
                    pages.append((key, f"{run.removesuffix('.html')} : jeu de règles {ruleset}"))
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
