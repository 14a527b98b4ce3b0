"""Fail closed down to storage: "checked in full", the access rule, the retry backoff, the index.

Real engine documents (a dead clamd socket, then a real private clamd), moto in-process for S3. The
end-to-end path through Prefect is in ``test_flows_retry_e2e.py``.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
import requests

pytest.importorskip("moto")
pytest.importorskip("prefect")

from conftest_flows import fixed_zip, mocked_store

from fixtures.builders import make_nir
from flows import verdicts as vd
from flows.access import access, access_of, decide, package_href, package_link
from flows.completeness import Gaps, checked_in_full, gaps_of
from flows.dispatch import Dispatcher, reconcile, verdict_tags
from flows.index import IndexRow, VerdictIndex, row_from_stored
from flows.retry import Backoff, RetryState
from flows.settings import PipelineSettings
from flows.storage import PackageRef, Store, retry_attempt
from validators import filetype, pii
from validators.engine import Engine
from validators.model import CheckRun, CheckState, FileVerdict, PackageInfo, PackageVerdict, Provenance
from validators.package import open_package
from validators.report import json_report
from validators.ssi.antivirus import AntivirusValidator
from validators.verdict_io import StoredVerdict, read_verdict

CLEAN = fixed_zip({"INS.41.2.2/journal.txt": "journal de test fictif\n"})
WITH_NIR = fixed_zip({"INS.41.2.2/journal.txt": f"patient NIR {make_nir()}\n"})


def _engine_run(data: bytes, settings: dict[str, Any], tmp: Path) -> PackageVerdict:
    """A real engine run (filetype, personal data, antivirus)."""
    path = tmp / "package.zip"
    path.write_bytes(data)
    engine = Engine(
        [*filetype.make_validators(settings), *pii.make_validators(settings), AntivirusValidator(settings)],
        settings=settings,
    )
    with open_package(path, settings=settings) as contents:
        return engine.run(contents)


@pytest.fixture(scope="module")
def verdicts(clamd_settings: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, PackageVerdict]:
    """The same two packages checked with clamd down (a socket nobody listens on), then with clamd up."""
    tmp = tmp_path_factory.mktemp("verdicts")
    dead = {"clamd": f"unix:{tmp / 'no-clamd.sock'}", "antivirus_test_signatures": "accept"}
    live = {**clamd_settings, "antivirus_test_signatures": "accept"}
    return {
        "clean-down": _engine_run(CLEAN, dead, tmp),
        "nir-down": _engine_run(WITH_NIR, dead, tmp),
        "clean-up": _engine_run(CLEAN, live, tmp),
        "nir-up": _engine_run(WITH_NIR, live, tmp),
    }


@pytest.fixture(scope="module")
def docs(verdicts: dict[str, PackageVerdict]) -> dict[str, dict[str, Any]]:
    return {name: json_report.to_document(verdict) for name, verdict in verdicts.items()}


# -- what "checked in full" means ---------------------------------------------------------------------------


def test_a_check_that_did_not_run_makes_the_verdict_incomplete(docs: dict[str, dict[str, Any]]) -> None:
    down = gaps_of(docs["clean-down"])
    assert docs["clean-down"]["status"] == "error"
    assert down == Gaps(("antivirus",), ("system.check-not-run",))
    assert not down.in_full and down.tag == "incomplete"
    assert down.label() == "antivirus (system.check-not-run)"


def test_a_fail_with_a_check_not_run_is_still_not_checked_in_full(docs: dict[str, dict[str, Any]]) -> None:
    doc = docs["nir-down"]
    assert doc["status"] == "fail"  # the NIR was found ...
    assert not checked_in_full(doc)  # ... but clamd did not scan: not checked in full
    assert not access_of(read_verdict(doc)).allowed


def test_every_check_ran_is_checked_in_full(docs: dict[str, dict[str, Any]]) -> None:
    assert (docs["clean-up"]["status"], docs["nir-up"]["status"]) == ("pass", "fail")
    assert checked_in_full(docs["clean-up"]) and checked_in_full(docs["nir-up"])
    assert gaps_of(docs["clean-up"]).tag == "full"
    assert access_of(read_verdict(docs["clean-up"])).allowed and access_of(read_verdict(docs["nir-up"])).allowed


def _archive(*checks: CheckRun) -> PackageVerdict:
    child = FileVerdict("a.zip!1:b.txt", "ab" * 32, 1, "text/plain", checks)
    archive = FileVerdict("a.zip", "ab" * 32, 2, "application/zip", (CheckRun("archive", CheckState.RAN),),
                          children=(child,))
    return PackageVerdict(PackageInfo("p.zip", "cd" * 32, "dry-run", "REM-MDV-LGC-SF-Va1"), Provenance("none"),
                          unmapped_files=(archive,))


def test_gaps_are_found_in_embedded_children_and_an_unreadable_document_is_a_gap() -> None:
    verdict = _archive(CheckRun("pii", CheckState.NOT_RUN))
    assert gaps_of(verdict) == gaps_of(json_report.to_document(verdict)) == Gaps(("pii",), ())
    # A document the reader refuses (here: says error, holds nothing) is never checked in full.
    assert gaps_of({"schema_version": "1", "status": "error"}) == Gaps((), ("verdict:unreadable",))
    partial = _archive(CheckRun("antivirus", CheckState.PARTIAL))
    assert checked_in_full(partial)  # reduced coverage is a warning by contract, not a gap


# -- the access rule, in one place ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "quarantine", "in_full", "allowed"),
    [
        ("pass", False, True, True),
        ("warning", False, True, True),
        ("fail", False, True, True),
        ("fail", False, False, False),  # a NIR found while clamd was down
        ("error", False, False, False),
        ("pass", True, True, False),  # quarantine wins
        ("pass", False, None, False),  # an index row from before the column: unknown is no
        ("error", False, True, False),
    ],
)
def test_the_access_rule(status: str, quarantine: bool, in_full: bool | None, allowed: bool) -> None:
    assert decide(status, quarantine, in_full).allowed is allowed


def test_the_refusal_says_what_did_not_run_french_first() -> None:
    decision = decide("error", False, False, "antivirus (system.check-not-run)")
    assert decision.reason_fr == "pas encore vérifié entièrement : antivirus (system.check-not-run)"
    assert decision.reason_en == "not yet checked in full: antivirus (system.check-not-run)"


def _row(doc: dict[str, Any] | StoredVerdict, json_key: str) -> IndexRow:
    fields = set(IndexRow.__dataclass_fields__)
    stored = doc if isinstance(doc, StoredVerdict) else read_verdict(doc)
    return IndexRow(**{k: v for k, v in row_from_stored(stored, json_key).items() if k in fields})


def test_the_index_link_to_the_package_follows_the_rule(verdicts: dict[str, PackageVerdict]) -> None:
    ref = PackageRef("proofcheck", "inbox/acme/paquet 1.zip", "e", "v1")
    json_key = "reports/inbox/acme/paquet 1.zip/v-v1/none.json"
    full = _row(vd.document(verdicts["clean-up"], ref, area="inbox", publisher="acme"), json_key)
    assert package_href(full) == "../inbox/acme/paquet%201.zip"
    assert package_href(full, folder=True) is None  # a folder package has no single object
    hidden = _row(vd.document(verdicts["clean-down"], ref, area="inbox", publisher="acme"), json_key)
    assert (hidden.checked_in_full, hidden.not_run) == (False, "antivirus (system.check-not-run)")
    assert package_href(hidden) is None and not access(hidden).allowed


# -- the backoff -----------------------------------------------------------------------------------------------


def test_the_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    backoff = Backoff(60.0, 3600.0)
    assert [backoff.delay(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff.delay(10_000) == 3600
    assert backoff.next_try(1000.0, 2) == 1240.0
    with pytest.raises(ValueError):
        backoff.delay(-1)


def test_the_backoff_is_configured_by_the_environment() -> None:
    settings = PipelineSettings.from_env({"PROOFCHECK_RETRY_FIRST": "30", "PROOFCHECK_RETRY_MAX": "600"})
    assert Backoff.of(settings) == Backoff(30.0, 600.0)
    assert PipelineSettings.from_env(settings.to_env()) == settings
    for bad in ({"PROOFCHECK_RETRY_FIRST": "0"}, {"PROOFCHECK_RETRY_FIRST": "100", "PROOFCHECK_RETRY_MAX": "10"}):
        with pytest.raises(ValueError):
            PipelineSettings.from_env(bad)


# -- the reconcile re-runs incomplete submissions, on a schedule read from S3 ---------------------------------


class _Recorder:
    """Stands for the Prefect dispatcher: records what the reconcile asks for."""

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self.asked: list[tuple[str, int]] = []

    def ensure(self, ref: PackageRef, store: Store, retry: int = 0) -> str:
        self.asked.append((ref.key, retry))
        return "dispatched"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    with mocked_store(monkeypatch, "proofcheck-retry-test") as store:
        yield store


def _upload(store: Store, key: str, data: bytes = CLEAN) -> PackageRef:
    answer = store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
    return PackageRef(store.bucket, key, str(answer["ETag"]).strip('"'), answer.get("VersionId"), len(data))


def _put(
    store: Store, ref: PackageRef, verdict: PackageVerdict, attempt: int, area: str = "inbox", *, tagged: bool = True
) -> str:
    """What a run stores: the verdict document as the pipeline writes it, under the attempt's key, then tags."""
    doc = vd.document(verdict, ref, area=area, publisher="acme")
    vd.mark_checked(doc, attempt)
    key = store.put_verdict(ref, "none", json.dumps(doc).encode(), b"<html></html>", attempt)
    assert key is not None
    if tagged:
        store.tag(ref, verdict_tags(doc))
    return key


def _stored_at(store: Store, ref: PackageRef) -> float:
    return store.verdict_listing(ref)[-1][1]


def test_an_incomplete_submission_is_re_run_after_its_backoff_then_settled(
    store: Store, verdicts: dict[str, PackageVerdict]
) -> None:
    settings = PipelineSettings(retry_first=60.0, retry_max=3600.0)
    dispatcher = _Recorder(settings)
    ref = _upload(store, "inbox/acme/attente.zip")
    first = _put(store, ref, verdicts["clean-down"], 0)
    t0 = _stored_at(store, ref)
    settled: set[tuple[str, str]] = set()
    retries: dict[tuple[str, str], RetryState] = {}

    def run(at: float) -> dict[str, int]:
        return reconcile(store, cast(Dispatcher, dispatcher), settled=settled, retries=retries, now=lambda: at)

    assert run(t0 + 59) == {"retry-waiting": 1} and dispatcher.asked == []
    assert retries[(ref.key, ref.token)] == RetryState(1, t0 + 60)
    assert run(t0 + 61) == {"retry-dispatched": 1}
    assert dispatcher.asked == [(ref.key, 1)]  # the run that stores the version's second verdict
    # The re-run is still incomplete (clamd still down): a new verdict beside the first, twice the wait.
    second = _put(store, ref, verdicts["clean-down"], 1)
    assert retry_attempt(second) == 1 and second != first and store.get_bytes(first)
    t1 = _stored_at(store, ref)
    assert run(t1 + 119) == {"retry-waiting": 1}
    assert run(t1 + 121) == {"retry-dispatched": 1} and dispatcher.asked[-1] == (ref.key, 2)
    # clamd is back: the third verdict is checked in full; the version is settled, never re-run again.
    _put(store, ref, verdicts["clean-up"], 2)
    assert run(t1 + 10_000) == {} and (ref.key, ref.token) in settled
    assert run(t1 + 20_000) == {} and len(dispatcher.asked) == 2
    assert [retry_attempt(k) for k, _ in store.verdict_listing(ref)] == [0, 1, 2]  # history kept


def test_a_restarted_bridge_keeps_the_schedule(store: Store, verdicts: dict[str, PackageVerdict]) -> None:
    settings = PipelineSettings(retry_first=60.0, retry_max=3600.0)
    ref = _upload(store, "inbox/acme/redemarrage.zip")
    for attempt in range(4):  # four incomplete verdicts already: the next wait is 60 * 2**3 = 480 s
        _put(store, ref, verdicts["clean-down"], attempt)
    last = _stored_at(store, ref)
    for _ in range(3):  # three restarts: nothing remembered in memory, nothing dispatched early
        dispatcher = _Recorder(settings)
        assert reconcile(store, cast(Dispatcher, dispatcher), now=lambda: last + 300) == {"retry-waiting": 1}
        assert dispatcher.asked == []
    dispatcher = _Recorder(settings)
    assert reconcile(store, cast(Dispatcher, dispatcher), now=lambda: last + 481) == {"retry-dispatched": 1}
    assert dispatcher.asked == [(ref.key, 4)]


def test_dry_runs_and_complete_verdicts_are_not_re_run(store: Store, verdicts: dict[str, PackageVerdict]) -> None:
    dispatcher = _Recorder(PipelineSettings())
    dry = _upload(store, "dryrun/acme/essai.zip")
    _put(store, dry, verdicts["clean-down"], 0, area="dryrun")
    full = _upload(store, "inbox/acme/complet.zip")
    _put(store, full, verdicts["nir-up"], 0)
    settled: set[tuple[str, str]] = set()
    far = _stored_at(store, full) + 100_000
    assert reconcile(store, cast(Dispatcher, dispatcher), settled=settled, now=lambda: far) == {}
    assert dispatcher.asked == [] and len(settled) == 2


# -- presigned URLs: only through flows.access.package_link -------------------------------------------------


def test_a_presigned_url_only_for_the_current_verdict_checked_in_full(
    store: Store, verdicts: dict[str, PackageVerdict]
) -> None:
    ref = _upload(store, "inbox/acme/lien.zip")
    first = _put(store, ref, verdicts["clean-down"], 0)
    incomplete = _row(read_verdict(store.get_bytes(first)), first)
    assert package_link(store, incomplete) is None
    second = _put(store, ref, verdicts["clean-up"], 1)
    complete = _row(read_verdict(store.get_bytes(second)), second)
    url = package_link(store, complete)
    assert url is not None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["versionId"] == [ref.version_id] and ("Signature" in query or "X-Amz-Signature" in query)
    assert urllib.parse.urlsplit(url).path.endswith("/inbox/acme/lien.zip")
    assert requests.get(url, timeout=10).content == CLEAN  # the exact version checked, downloadable
    # A row that is not the version's latest verdict (the index lagging) gets nothing, even if it passed.
    _put(store, ref, verdicts["clean-down"], 2)
    assert package_link(store, complete) is None
    # The index row claims "checked in full" but the stored record says otherwise: the record wins.
    forged = replace(_row(read_verdict(store.get_bytes(first)), first), checked_in_full=True, status="pass")
    assert access(forged).allowed and package_link(store, forged) is None


def test_no_presigned_url_once_the_package_left_the_inbox(store: Store, verdicts: dict[str, PackageVerdict]) -> None:
    ref = _upload(store, "inbox/acme/parti.zip")
    key = _put(store, ref, verdicts["clean-up"], 0)
    row = _row(read_verdict(store.get_bytes(key)), key)
    assert package_link(store, row) is not None
    store.quarantine(ref, {"proofcheck-quarantine": "true"})
    assert package_link(store, row) is None


# -- the index --------------------------------------------------------------------------------------------------


def test_the_index_keeps_history_and_shows_the_re_run_as_current(
    store: Store, verdicts: dict[str, PackageVerdict], tmp_path: Path
) -> None:
    ref = _upload(store, "inbox/acme/histoire.zip")
    index = VerdictIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        index.ensure(store)
        for attempt, name in enumerate(("clean-down", "nir-up")):
            key = _put(store, ref, verdicts[name], attempt)
            index.record(read_verdict(store.get_bytes(key)), key)
        [row] = index.latest()
        assert (row.status, row.checked_in_full, row.not_run, row.versions) == ("fail", True, None, 2)
        assert retry_attempt(row.json_key) == 1
        assert [h["checked_in_full"] for h in index.history(ref.key)] == [False, True]
    finally:
        index.close()


def test_an_index_older_than_the_column_is_rebuilt_from_the_verdicts(
    store: Store, verdicts: dict[str, PackageVerdict], tmp_path: Path
) -> None:
    ref = _upload(store, "inbox/acme/ancien.zip")
    _put(store, ref, verdicts["clean-down"], 0)
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    index = VerdictIndex(url)
    try:
        index.ensure(store)
    finally:
        index.close()
    with sqlite3.connect(tmp_path / "old.sqlite3") as conn:  # as an index made before the columns
        for column in ("checked_in_full", "not_run", "next_try_at"):
            conn.execute(f"ALTER TABLE verdicts DROP COLUMN {column}")
    index = VerdictIndex(url)
    try:
        assert index.ensure(store) is True  # the new column can only come from the stored verdicts
        [row] = index.latest()
        assert (row.checked_in_full, row.not_run) == (False, "antivirus (system.check-not-run)")
    finally:
        index.close()


def test_the_reconcile_gives_a_package_the_tags_of_its_verdict(
    store: Store, verdicts: dict[str, PackageVerdict]
) -> None:
    """A run that died before tagging, or a package tagged before ``proofcheck-checked`` existed."""
    untagged = _upload(store, "inbox/acme/sans-tags.zip")
    _put(store, untagged, verdicts["nir-up"], 0, tagged=False)
    old = _upload(store, "inbox/acme/ancien-tag.zip")
    _put(store, old, verdicts["clean-down"], 0, tagged=False)
    store.tag(old, {"proofcheck-status": "pass"})  # says more than its verdict
    dispatcher = _Recorder(PipelineSettings())
    assert reconcile(store, cast(Dispatcher, dispatcher), now=lambda: 0.0) == {"retagged": 2, "retry-waiting": 1}
    assert store.tags_of(untagged) == {
        "proofcheck-status": "fail", "proofcheck-ruleset": "none", "proofcheck-checked": "full"
    }
    assert store.tags_of(old) == {
        "proofcheck-status": "error", "proofcheck-ruleset": "none", "proofcheck-checked": "incomplete"
    }
    # A restarted bridge reads them again and finds nothing to change.
    assert reconcile(store, cast(Dispatcher, _Recorder(PipelineSettings())), now=lambda: 0.0) == {"retry-waiting": 1}
