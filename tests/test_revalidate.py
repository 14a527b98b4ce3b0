"""Re-validation, the pure parts: which packages, carried or re-run, the per-file result cache, the pages."""

from __future__ import annotations

import hashlib
import html.parser
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("prefect")

from conftest_verdicts import stored_verdict

from flows.change_report import render_change_report
from flows.index import IndexRow, VerdictIndex, revalidation_row
from flows.index_report import render_index
from flows.revalidate import carry_over, plan, select
from validators import __version__, rules
from validators.base import CheckContext, CheckResult, Embedded, ProofFile, Validator
from validators.engine import Engine
from validators.model import (
    CheckRun,
    CheckState,
    FileVerdict,
    Finding,
    PackageInfo,
    PackageVerdict,
    ProofVerdict,
    Provenance,
)
from validators.resultcache import ResultCache, cache_key, depends_on, with_cache
from validators.verdict_io import StoredVerdict, read_verdict

COMPONENTS = {"J66": "B", "cda_xsd": "x", "TestContenuCDA": "t"}
SHA = "ab" * 32


def stored(
    checks: list[str], *, j66: str = "A", engine: str = __version__, state: str = "ran",
    findings: tuple[Finding, ...] = (), **sections: Any,
) -> StoredVerdict:
    """A stored verdict whose archive holds one member checked by ``checks`` (in state ``state``)."""
    runs = tuple(CheckRun(c, CheckState(state)) for c in checks)
    member = FileVerdict("DOC.3.1.2/a.zip!1:x", SHA, 1, "text/plain", runs)
    archive = FileVerdict("DOC.3.1.2/a.zip", SHA, 2, "application/zip", (CheckRun("archive", CheckState.RAN),),
                          findings, (member,))
    verdict = PackageVerdict(
        PackageInfo("p.zip", SHA, "s3://b/inbox/acme/p.zip", "REM-MDV-LGC-SF-Va1"),
        Provenance(f"v-{j66}", tuple({**COMPONENTS, "J66": j66}.items()), engine, "then", "then"),
        proofs=(ProofVerdict("DOC.3.1.2", "DOC.3.1.2", (archive,)),),
    )
    doc = StoredVerdict.new(verdict, object={"key": "inbox/acme/p.zip", "stored_at": "then"}, **sections)
    return read_verdict(doc.to_bytes())  # as re-validation reads it


def test_a_package_without_cda_checks_is_carried_when_only_j66_changed() -> None:
    decision = plan(stored(["filetype", "pii", "antivirus"]), "v-B", COMPONENTS)
    assert (decision.mode, decision.changed) == ("carried", ("J66",))


@pytest.mark.parametrize("check", ["cda", "cda-xdm"])
def test_a_check_that_reads_j66_anywhere_in_the_package_makes_it_rerun(check: str) -> None:
    decision = plan(stored(["filetype", check]), "v-B", COMPONENTS)
    assert decision.mode == "rerun" and check in decision.reason


def test_the_schematron_check_does_not_read_j66_but_reads_the_tree() -> None:
    assert plan(stored(["cda-schematron"]), "v-B", COMPONENTS).mode == "carried"
    tree_changed = {**COMPONENTS, "J66": "A", "TestContenuCDA": "t2"}
    assert plan(stored(["cda-schematron"]), "v-t2", tree_changed).mode == "rerun"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (stored(["pii"], engine="0.0.0-old"), "another engine version"),
        (stored(["pii"], state="not_run"), "did not run"),
        (stored(["some-new-check"]), "some-new-check"),
    ],
    ids=["engine", "not-run", "unknown-check"],
)
def test_when_unsure_everything_is_rerun(doc: StoredVerdict, reason: str) -> None:
    decision = plan(doc, "v-B", COMPONENTS)
    assert decision.mode == "rerun" and reason in decision.reason


def row(key: str, ruleset: str, quarantine: bool = False) -> IndexRow:
    return IndexRow(
        json_key=f"reports/{key}/e/{ruleset}.json", html_key=f"reports/{key}/e/{ruleset}.html", package_key=key,
        package_name=key, publisher="acme", software=None, software_version=None, status="pass",
        quarantine=quarantine, ruleset_version=ruleset, proofs=1, files=1, errors=0, warnings=0, stored_at="t",
    )  # fmt: skip


def test_select_takes_older_rulesets_never_quarantined_and_honours_since() -> None:
    rows = [
        row("inbox/a.zip", "none"),
        row("inbox/b.zip", "20250101T000000Z-aa"),
        row("inbox/c.zip", "20250201T000000Z-bb"),
        row("inbox/d.zip", "20250301T000000Z-cc"),
        row("inbox/e.zip", "20250101T000000Z-aa", quarantine=True),
    ]
    current = "20250301T000000Z-cc"
    assert [r.package_key for r in select(rows, current, None)] == ["inbox/a.zip", "inbox/b.zip", "inbox/c.zip"]
    assert [r.package_key for r in select(rows, current, "20250201T000000Z-bb")] == ["inbox/c.zip"]


def test_a_carried_verdict_names_the_new_ruleset_and_keeps_every_finding() -> None:
    earlier = {"run": "earlier", "mode": "rerun", "reason": "r", "report": "reports/changes/x.html"}
    old = stored(["pii"], findings=(rules.finding("pii.nir", evidence="1 ** ** ** *** *** 36"),), revalidation=earlier)
    new = carry_over(old, "v-B", COMPONENTS).to_document()
    assert new["ruleset"] == {"version": "v-B", "components": COMPONENTS}
    before = old.to_document()
    assert new["proofs"] == before["proofs"] and new["status"] == before["status"] == "fail"
    assert "revalidation" not in new and old.revalidation is not None
    assert new["object"]["stored_at"] != "then" and old.verdict.provenance.ruleset_version == "v-A"


# --- the per-file result cache -------------------------------------------------------------------------------


class Counting(Validator):
    rules: ClassVar[tuple[str, ...]] = ("pii.nir", "cda.typecode")

    def __init__(self, name: str, *, state: CheckState = CheckState.RAN, system: bool = False) -> None:
        self.name = name  # type: ignore[misc]
        self.calls = 0
        self.state = state
        self.system = system

    def applies_to(self, file: ProofFile) -> bool:
        return True

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        self.calls += 1
        rule = "system.check-not-run" if self.system else ("cda.typecode" if self.name == "cda" else "pii.nir")
        return CheckResult(
            findings=[rules.finding(rule, evidence="1 ** ** ** *** *** 36")],
            state=self.state,
            detail="partial" if self.state is CheckState.PARTIAL else None,
            children=[Embedded("body.pdf", b"%PDF-1.7 child", "cda:nonXMLBody")]
            if self.name == "cda" and file.depth == 0
            else [],
        )


def proof_file(data: bytes = b"<ClinicalDocument/>") -> ProofFile:
    return ProofFile("DOC.3.1.2/cr.xml", len(data), hashlib.sha256(data).hexdigest(), "text/xml", data=data)


def run_twice(tmp_path: Path, components_second: dict[str, str]) -> tuple[Counting, Counting, ResultCache]:
    pii, cda = Counting("pii"), Counting("cda")
    cache = ResultCache(tmp_path / "cache")
    for components in (COMPONENTS, components_second):
        engine = Engine(with_cache([pii, cda], cache, ruleset_version="v", components=components, settings={}))
        verdict = engine.check_file(proof_file())
        assert [c.path for c in verdict.children] == ["DOC.3.1.2/cr.xml!1:body.pdf"]
        assert {"pii.nir", "cda.typecode"} <= {f.rule for f in verdict.findings}
    return pii, cda, cache


def test_cached_results_are_reused_for_the_same_bytes_and_versions(tmp_path: Path) -> None:
    pii, cda, cache = run_twice(tmp_path, COMPONENTS)
    # The child (body.pdf) is checked too: two files per run, each check once per file and per key.
    assert (pii.calls, cda.calls) == (2, 2)
    assert cache.stats.hits == 4 and cache.stats.stored == 4


def test_a_new_j66_reruns_only_the_check_that_reads_it(tmp_path: Path) -> None:
    pii, cda, _cache = run_twice(tmp_path, {**COMPONENTS, "J66": "C"})
    assert (pii.calls, cda.calls) == (2, 4)


def test_a_fill_only_cache_stores_but_never_answers(tmp_path: Path) -> None:
    pii = Counting("pii")
    cache = ResultCache(tmp_path / "cache")
    for _ in range(2):  # the intake: the same bytes uploaded twice are checked twice
        fill_only = with_cache([pii], cache, ruleset_version="v", components=COMPONENTS, settings={}, read=False)
        Engine(fill_only).check_file(proof_file())
    assert pii.calls == 2 and cache.stats.hits == 0 and cache.stats.stored == 2
    Engine(with_cache([pii], cache, ruleset_version="v", components=COMPONENTS, settings={})).check_file(proof_file())
    assert pii.calls == 2 and cache.stats.hits == 1  # what the intake stored, re-validation reuses


def test_a_warm_process_rebuilds_its_engine_after_a_sync(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from flows import pipeline
    from flows.settings import PipelineSettings
    from validators import dryrun
    from validators.engine import RulesetInfo

    in_force = {"version": "20260101T000000Z-aaaaaaaaaaaa"}
    monkeypatch.setattr(dryrun, "current_ruleset", lambda settings=None: RulesetInfo(version=in_force["version"]))
    monkeypatch.setattr(pipeline, "_ENGINE", None)
    settings = PipelineSettings.from_env({"PROOFCHECK_WORK_DIR": str(tmp_path)})
    first = pipeline._engine(settings)
    assert pipeline._engine(settings) is first  # warm: built once
    in_force["version"] = "20260301T000000Z-bbbbbbbbbbbb"  # a sync made a newer ruleset
    second = pipeline._engine(settings)
    assert second is not first and second.ruleset.version == in_force["version"]


def test_a_check_that_did_not_run_or_said_system_is_never_cached(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    for validator in (Counting("pii", state=CheckState.NOT_RUN), Counting("antivirus", system=True)):
        wrapped = with_cache([validator], cache, ruleset_version="v", components=COMPONENTS, settings={})[0]
        wrapped.check(proof_file(), CheckContext())
        wrapped.check(proof_file(), CheckContext())
        assert validator.calls == 2
    partial = Counting("pii", state=CheckState.PARTIAL)
    wrapped = with_cache([partial], cache, ruleset_version="v", components=COMPONENTS, settings={})[0]
    first, second = (wrapped.check(proof_file(), CheckContext()) for _ in range(2))
    assert partial.calls == 1 and second.state is CheckState.PARTIAL and second.detail == "partial"
    assert second.findings == first.findings


def test_a_damaged_cache_entry_is_a_miss(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    cda = Counting("cda")
    wrapped = with_cache([cda], cache, ruleset_version="v", components=COMPONENTS, settings={})[0]
    wrapped.check(proof_file(), CheckContext())
    for blob in (tmp_path / "cache" / "blobs").rglob("*"):
        if blob.is_file():
            blob.write_bytes(b"tampered")
    result = wrapped.check(proof_file(), CheckContext())
    assert cda.calls == 2 and result.children[0].data == b"%PDF-1.7 child"


def test_keys_depend_on_what_each_check_reads() -> None:
    def key(check: str, **changes: str) -> str:
        return cache_key("ab" * 32, check, "v1", {**COMPONENTS, **changes}, {"x": 1})

    assert key("pii") == key("pii", J66="Z", TestContenuCDA="t9")
    assert key("cda") != key("cda", J66="Z")
    assert key("cda-schematron") == key("cda-schematron", J66="Z")
    assert key("cda-schematron") != key("cda-schematron", **{"JDV:JDV_J07-XdsTypeCode-CISIS": "2025"})
    assert cache_key("ab" * 32, "pii", "v", COMPONENTS, {"x": 1}) != cache_key(
        "ab" * 32, "pii", "v", COMPONENTS, {"x": 2}
    )
    assert depends_on("unknown-check", COMPONENTS) is None


# --- pages -----------------------------------------------------------------------------------------------------


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links.extend(v or "" for k, v in attrs if k == "href")


HOSTILE = '<script>alert("x")</script>'


def test_the_change_report_escapes_what_publishers_wrote_and_links_relatively() -> None:
    page_key = "reports/changes/v-B/run1.html"
    diff = {
        "old_status": "pass", "new_status": "fail", "old_ruleset": "v-A", "new_ruleset": "v-B",
        "status_changed": True, "components": [{"name": "J66", "from": "A", "to": "B"}],
        "proofs": [{"id": HOSTILE, "old_status": "pass", "new_status": "fail", "cleared": [],
                    "added": [{"rule": "cda.typecode", "severity": "error", "path": HOSTILE,
                               "message": HOSTILE, "evidence": None, "location": {}}]}],
    }  # fmt: skip
    record = {
        "run_id": "run1", "ruleset_version": "v-B", "previous_rulesets": ["v-A"],
        "components": diff["components"], "reports_prefix": "reports/",
        "packages": [{"package_key": "inbox/acme/p.zip", "name": HOSTILE, "publisher": HOSTILE, "mode": "rerun",
                      "diff": diff, "new_html": "reports/inbox/acme/p.zip/e-1/v-B.html",
                      "old_html": "reports/inbox/acme/p.zip/e-1/v-A.html"},
                     {"package_key": "inbox/acme/q.zip", "name": "q", "mode": "failed", "reason": "PackageGoneError"}],
    }  # fmt: skip
    page = render_change_report(record, page_key)
    assert "<script" not in page and "&lt;script&gt;" in page
    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert "../../inbox/acme/p.zip/e-1/v-B.html" in parsed.links and "../../index.html" in parsed.links
    assert "cda.typecode" in page and "PackageGoneError" in page and "J66" in page


def test_the_index_links_a_revalidated_verdict_to_its_change_report(tmp_path: Path) -> None:
    index = VerdictIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    doc = stored_verdict(
        "inbox/acme/p.zip", "fail", "v-B", stored_at="2026-01-01T00:00:00+00:00",
        revalidation={"run": "run1", "mode": "rerun", "reason": "r", "report": "reports/changes/v-B/run1.html",
                      "previous": {"json_key": "reports/inbox/acme/p.zip/e-1/v-A.json", "status": "pass",
                                   "ruleset": "v-A"}},
    )  # fmt: skip
    key = "reports/inbox/acme/p.zip/e-1/v-B.json"
    index.record(doc, key)
    index.record_revalidation(doc, key)
    index.record_revalidation(doc, key)  # idempotent
    rows = index.latest()
    assert [(r.status, r.change_report) for r in rows] == [("fail", "reports/changes/v-B/run1.html")]
    assert revalidation_row(stored_verdict("inbox/acme/p.zip"), key) is None
    page = render_index(rows, "reports/")
    parsed = _Collect()
    parsed.feed(page)
    assert "changes/v-B/run1.html" in parsed.links and "changes/index.html" in parsed.links
    index.close()


class _Bucket:
    """What VerdictIndex.rebuild reads of a Store: the verdict keys and their bytes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def iter_verdict_keys(self) -> Any:
        return iter(sorted(k for k in self.objects if k.endswith(".json")))

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]


def test_a_lost_index_is_rebuilt_with_its_change_report_links(tmp_path: Path) -> None:
    def verdict(status: str, ruleset: str, report: str | None) -> bytes:
        section = {"run": "r", "mode": "rerun", "reason": "r", "report": report, "previous": {"status": "pass"}}
        return stored_verdict(
            "inbox/acme/p.zip", status, ruleset, stored_at=ruleset, revalidation=section if report else None
        ).to_bytes()

    bucket = _Bucket(
        {
            "reports/inbox/acme/p.zip/e-1/v1.json": verdict("pass", "v1", None),
            "reports/inbox/acme/p.zip/e-1/v2.json": verdict("fail", "v2", "reports/changes/v2/r.html"),
            "reports/changes/v2/r.json": b'{"run_id": "r", "packages": []}',  # a run record: not a verdict
        }
    )
    index = VerdictIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    assert index.rebuild(bucket) == 2  # type: ignore[arg-type]
    assert [(r.status, r.change_report) for r in index.latest()] == [("fail", "reports/changes/v2/r.html")]
    assert [h["status"] for h in index.history("inbox/acme/p.zip")] == ["pass", "fail"]
    index.close()


def test_an_intake_engine_fills_the_cache_and_knows_when_a_sync_made_it_stale(tmp_path: Path) -> None:
    from test_valuesets_sync_support import VERSION_A, j66, minimal_base, publish

    from flows.revalidate import cached_engine, engine_is_current
    from flows.settings import PipelineSettings
    from validators.cda.valueset_sync import sync_valuesets

    store = minimal_base(tmp_path / "rulesets")
    settings = PipelineSettings(work_dir=tmp_path / "work", engine_settings={"rulesets_dir": str(store.root)})
    pii = Counting("pii")
    engine = cached_engine(settings, [pii])
    engine.check_file(proof_file())
    cached_engine(settings, [pii]).check_file(proof_file())
    assert pii.calls == 1 and list((tmp_path / "work" / "resultcache" / "entries").rglob("*.json"))
    assert engine_is_current(engine, settings)
    publish(tmp_path / "source", j66(VERSION_A))
    sync_valuesets(str(tmp_path / "source"), store)
    assert not engine_is_current(engine, settings)


class _Store:
    """The few Store calls a re-validation makes, in memory (S3 itself is covered by the e2e test)."""

    def __init__(self, package: bytes) -> None:
        from flows.storage import Layout

        self.bucket = "b"
        self.layout = Layout()
        self.package = package
        self.objects: dict[str, bytes] = {}
        self.tags: dict[str, dict[str, str]] = {}

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]

    def download(self, ref: Any, dest: Path, limit: int) -> str:
        dest.write_bytes(self.package)
        return hashlib.sha256(self.package).hexdigest()

    def put_verdict(self, ref: Any, ruleset: str, document: bytes, page: bytes) -> str | None:
        key = f"reports/{ref.key}/{ref.token}/{ruleset}.json"
        if key in self.objects:
            return None
        self.objects[key] = document
        return key

    def tag(self, ref: Any, tags: dict[str, str], key: str | None = None) -> bool:
        self.tags[ref.key] = dict(tags)
        return True


def test_a_check_that_cannot_run_now_never_replaces_a_full_verdict(tmp_path: Path) -> None:
    import io
    import json
    import zipfile

    from flows import verdicts as vd
    from flows.revalidate import Revalidation
    from flows.settings import PipelineSettings
    from flows.storage import PackageRef
    from validators.package import open_package
    from validators.report import json_report

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("INS.41.2.2/journal.txt", "journal de test fictif\n")
    store = _Store(buffer.getvalue())
    (tmp_path / "p.zip").write_bytes(store.package)
    ref = PackageRef("b", "inbox/acme/p.zip", "etag1", None, len(store.package))
    with open_package(tmp_path / "p.zip") as contents:
        verdict = Engine([Counting("pii")]).run(contents)
    old = vd.document(verdict, ref, area="inbox", publisher="acme")
    store.objects["reports/inbox/acme/p.zip/e-etag1/none.json"] = json_report.document_bytes(old)
    settings = PipelineSettings(work_dir=tmp_path / "work")
    down = Counting("pii", state=CheckState.NOT_RUN)
    revalidation = Revalidation(store, settings, validators_factory=lambda _s: [down], full=True)  # type: ignore[arg-type]
    old_key = "reports/inbox/acme/p.zip/e-etag1/none.json"
    outcome = revalidation.revalidate(replace(row("inbox/acme/p.zip", "none"), json_key=old_key))
    assert down.calls == 1 and outcome["mode"] == "failed" and "system.check-not-run" in outcome["reason"]
    assert list(store.objects) == [old_key] and store.tags == {}
    assert json.loads(store.objects[old_key])["status"] == old["status"]


def test_the_cache_wrapper_keeps_what_the_engine_reads_of_a_check(tmp_path: Path) -> None:
    from validators.ssi.antivirus import AntivirusValidator

    inner = AntivirusValidator({})
    wrapped = with_cache([inner], ResultCache(tmp_path), ruleset_version="v", components={}, settings={})[0]
    assert (wrapped.name, wrapped.rules, wrapped.timeout, wrapped.overlaps) == (
        inner.name, inner.rules, inner.timeout, True,
    )  # fmt: skip
