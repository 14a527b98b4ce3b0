"""Value-set sync: new versions stored beside the old ones, and every bad input leaves the ruleset in force.

Sources: a folder, a local HTTP server on 127.0.0.1 (``http.server`` in a thread), the NOS URL (not
reachable here: fails cleanly). J66 versions are generated from ``jdv/`` (see the support module).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from test_valuesets_sync_support import (
    J07_NAME,
    RETIRED,
    VERSION_A,
    VERSION_B,
    VERSION_C,
    as_fhir,
    http_folder,
    j07,
    j66,
    latest,
    minimal_base,
    publish,
    serve,
    shipped_j66,
)

from validators.base import CheckContext, ProofFile
from validators.cda import CdaValidator, ruleset_info
from validators.cda.store import RulesetStore, version_name
from validators.cda.valueset_sync import (
    ValueSetSyncError,
    j66_file,
    j66_in_force,
    sync_lock,
    sync_valuesets,
    tree_valueset_file,
)
from validators.cda.valuesets import J66_NAME, load
from validators.valueset_source import (
    NOS_BASE,
    ValueSetSourceError,
    content_digest,
    parse,
    to_svs,
    version_key,
)

CDA = b"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <code code="11369-6" codeSystem="2.16.840.1.113883.6.1" displayName="Historique des vaccinations"/>
</ClinicalDocument>
"""


@pytest.fixture
def store(tmp_path: Path) -> RulesetStore:
    return minimal_base(tmp_path / "rulesets")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return tmp_path / "source"


def versions(store: RulesetStore) -> list[str]:
    return [v.version for v in store.versions()]


def test_a_new_j66_is_a_new_ruleset_version_beside_the_old_one(store: RulesetStore, source: Path) -> None:
    base = latest(store)
    publish(source, j66(VERSION_A))
    result = sync_valuesets(str(source), store)
    assert result.outcome == "new" and result.previous == base.version
    assert versions(store) == [base.version, result.version.version]
    assert result.version.components["J66"] == VERSION_A
    assert result.version.manifest["base"] == base.version
    assert result.version.manifest["valuesets"][J66_NAME]["digest"] == content_digest(j66(VERSION_A))
    assert [c.to_dict() for c in result.changes] == [
        {"name": J66_NAME, "oid": shipped_j66().oid, "from": shipped_j66().version, "to": VERSION_A,
         "added": 0, "removed": 0}
    ]
    assert j66_in_force(result.version).version == VERSION_A
    # The old version is untouched: it still uses the snapshot shipped in jdv/.
    assert j66_in_force(base).version == shipped_j66().version
    assert not j66_file(base).exists()


def test_the_same_content_again_makes_no_version(store: RulesetStore, source: Path) -> None:
    publish(source, j66(VERSION_A))
    first = sync_valuesets(str(source), store)
    publish(source, j66(VERSION_A), fhir=True)  # the same content in the other format
    again = sync_valuesets(str(source), store)
    assert again.outcome == "unchanged" and again.version.version == first.version.version
    assert len(store.versions()) == 2


def test_fhir_json_over_a_local_http_server_retires_a_type(store: RulesetStore, source: Path) -> None:
    publish(source, j66(VERSION_A))
    sync_valuesets(str(source), store)
    publish(source, j66(VERSION_B, drop=(RETIRED,)), fhir=True)
    with http_folder(source) as url:
        result = sync_valuesets(url, store)
    assert result.outcome == "new"
    assert [(c.old_version, c.new_version, c.added, c.removed) for c in result.changes] == [
        (VERSION_A, VERSION_B, 0, 1)
    ]
    in_force = j66_in_force(result.version)
    assert RETIRED not in in_force and len(in_force.concepts) == len(shipped_j66().concepts) - 1
    stored = j66_file(result.version).read_bytes()
    assert stored.lstrip().startswith(b"<?xml")  # stored as SVS whatever the source served
    assert result.version.manifest["valuesets"][J66_NAME]["fetched_from"].startswith(url)


def test_versions_sort_in_the_order_they_were_synced(store: RulesetStore, source: Path) -> None:
    made = []
    for version, drop in ((VERSION_A, ()), (VERSION_B, (RETIRED,)), (VERSION_C, ())):
        publish(source, j66(version, drop=drop))
        made.append(sync_valuesets(str(source), store).version.version)  # all within a second or two
    assert versions(store)[1:] == made
    assert j66_in_force(latest(store)).version == VERSION_C


def test_the_cda_check_reads_the_j66_in_force(store: RulesetStore, source: Path) -> None:
    settings = {"rulesets_dir": str(store.root)}
    file = ProofFile("doc.xml", len(CDA), hashlib.sha256(CDA).hexdigest(), "text/xml", data=CDA)

    def rules_now() -> set[str]:
        info = ruleset_info(settings)
        return {f.rule for f in CdaValidator(settings).check(file, CheckContext(ruleset=info.handle)).findings}

    publish(source, j66(VERSION_A))
    sync_valuesets(str(source), store)
    assert "cda.typecode" not in rules_now()
    assert ruleset_info(settings).components["J66"] == VERSION_A
    publish(source, j66(VERSION_B, drop=(RETIRED,)))
    sync_valuesets(str(source), store)
    assert "cda.typecode" in rules_now()
    assert CdaValidator(settings).components()["J66"] == VERSION_B


def test_a_later_tree_sync_keeps_the_synced_j66_in_force(store: RulesetStore, source: Path) -> None:
    publish(source, j66(VERSION_B, drop=(RETIRED,)))
    synced = sync_valuesets(str(source), store).version
    # What `proofcheck rulesets sync` publishes: a tree of its own, without valuesets/.
    staging = store.new_staging()
    (staging / "tree").mkdir()
    digest = hashlib.sha256(b"tree re-synced").hexdigest()
    imported = datetime.now(UTC) + timedelta(seconds=5)
    later = store.publish(staging, {"version": version_name(digest, imported), "digest": digest})
    assert latest(store).version == later.version != synced.version
    assert j66_in_force(later).version == VERSION_B


def test_another_value_set_replaces_its_file_in_the_tree_only_in_the_new_version(
    store: RulesetStore, source: Path
) -> None:
    base = latest(store)
    publish(source, j66(VERSION_A))
    publish(source, j07("20250101000000", codes=("11488-4",)), name=J07_NAME)
    result = sync_valuesets(str(source), store, names=(J66_NAME, J07_NAME))
    new_file = tree_valueset_file(result.version.tree, J07_NAME)
    old_file = tree_valueset_file(base.tree, J07_NAME)
    assert new_file is not None and old_file is not None and new_file.name == "JDV_J07_XdsTypeCode_CISIS.xml"
    assert set(load(new_file).codes()) == {"11488-4"}
    assert set(load(old_file).codes()) == {"11488-4", "11369-6"}  # hard links never written through
    assert result.version.components["JDV:" + J07_NAME] == "20250101000000"


# --- bad input: the ruleset in force stays, the failure says why ------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<html><body>Maintenance</body></html>", "SVS"),
        (b'{"resourceType": "CodeSystem"}', "not a FHIR ValueSet"),
        (b"PK\x03\x04 not a value set", "neither SVS XML nor FHIR JSON"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "entities"),
    ],
    ids=["html", "fhir-codesystem", "binary", "xml-entity"],
)
def test_a_file_that_is_not_svs_or_fhir_is_refused(
    store: RulesetStore, source: Path, payload: bytes, message: str
) -> None:
    source.mkdir()
    (source / f"{J66_NAME}.xml").write_bytes(payload)
    before = versions(store)
    with pytest.raises(ValueSetSourceError, match=message):
        sync_valuesets(str(source), store)
    assert versions(store) == before
    assert not list(store.root.glob(".staging-*"))


@pytest.mark.parametrize(
    ("valueset", "message"),
    [
        (j66(VERSION_A, drop=tuple(shipped_j66().concepts)), "holds no concept"),
        (j66(VERSION_A, oid="1.2.250.1.213.1.1.5.471"), "OID"),
        (j66(""), "no declared version"),
        (j66("20200101000000"), "older than"),
        (j66(shipped_j66().version, drop=(RETIRED,)), "content differs"),
    ],
    ids=["empty", "other-oid", "no-version", "backwards", "same-version-other-content"],
)
def test_a_value_set_that_must_not_replace_the_one_in_force_is_refused(
    store: RulesetStore, source: Path, valueset: Any, message: str
) -> None:
    publish(source, valueset)
    before = versions(store)
    with pytest.raises(ValueSetSourceError, match=message):
        sync_valuesets(str(source), store)
    assert versions(store) == before
    assert j66_in_force(latest(store)).version == shipped_j66().version


def test_a_version_going_backwards_after_a_sync_is_refused(store: RulesetStore, source: Path) -> None:
    publish(source, j66(VERSION_B, drop=(RETIRED,)))
    in_force = sync_valuesets(str(source), store).version.version
    publish(source, j66(VERSION_A), fhir=True)
    with pytest.raises(ValueSetSourceError, match=f"{VERSION_A} is older than {VERSION_B}"):
        sync_valuesets(str(source), store)
    assert latest(store).version == in_force


class _CutShort(BaseHTTPRequestHandler):
    """Announces the whole file, sends a tenth of it, closes: a network error mid-download."""

    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 10])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Broken(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(503, "down for maintenance")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_download_cut_short_is_refused(store: RulesetStore) -> None:
    _CutShort.body = to_svs(j66(VERSION_A))
    before = versions(store)
    with serve(_CutShort) as url, pytest.raises(ValueSetSourceError, match=r"cut short|IncompleteRead"):
        sync_valuesets(url, store)
    assert versions(store) == before


def test_a_server_error_is_refused_without_trying_other_paths(store: RulesetStore) -> None:
    with serve(_Broken) as url, pytest.raises(ValueSetSourceError, match="HTTP 503"):
        sync_valuesets(url, store)
    assert len(store.versions()) == 1


def test_unreachable_sources_fail_cleanly(store: RulesetStore, tmp_path: Path) -> None:
    with serve(_Broken) as url:
        closed = url  # the server is shut down when the block ends: nothing listens there any more
    with pytest.raises(ValueSetSourceError, match="URLError"):
        sync_valuesets(closed, store, timeout=3)
    started = time.monotonic()
    with pytest.raises(ValueSetSourceError):
        sync_valuesets("http://10.255.255.1/NOS", store, timeout=1)  # nothing answers: the timeout ends it
    assert time.monotonic() - started < 30
    # The NOS itself: unreachable on this machine, so a clean failure; where it answers, a real sync.
    try:
        outcome = sync_valuesets(NOS_BASE, store, timeout=5).outcome
    except ValueSetSourceError:
        outcome = "failed cleanly"
    assert outcome in ("failed cleanly", "new", "unchanged")
    with pytest.raises(ValueSetSourceError, match="no such folder"):
        sync_valuesets(str(tmp_path / "absent"), store)
    with pytest.raises(ValueSetSourceError, match="not published"):
        sync_valuesets(str(tmp_path), store)
    assert len(store.versions()) == (2 if outcome == "new" else 1)


def test_without_a_synced_cda_ruleset_the_sync_refuses(tmp_path: Path, source: Path) -> None:
    publish(source, j66(VERSION_A))
    with pytest.raises(ValueSetSyncError, match="no CDA ruleset"):
        sync_valuesets(str(source), RulesetStore(tmp_path / "empty"))


def test_a_second_sync_while_one_runs_is_refused(store: RulesetStore, source: Path) -> None:
    publish(source, j66(VERSION_A))
    with sync_lock(store), pytest.raises(ValueSetSyncError, match="another value-set sync"):
        sync_valuesets(str(source), store)
    assert len(store.versions()) == 1


class _Slow(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_two_syncs_at_once_make_one_version(store: RulesetStore) -> None:
    _Slow.body = to_svs(j66(VERSION_A))
    outcomes: list[str] = []

    def one(url: str) -> None:
        try:
            outcomes.append(sync_valuesets(url, store).outcome)
        except ValueSetSyncError:
            outcomes.append("refused")

    with serve(_Slow) as url:
        threads = [threading.Thread(target=one, args=(url,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(outcomes) == ["new", "refused"]
    assert len(store.versions()) == 2


# --- pure parts ---------------------------------------------------------------------------------------------


def test_svs_and_fhir_of_the_same_value_set_have_one_digest() -> None:
    valueset = j66(VERSION_A)
    assert content_digest(parse(to_svs(valueset))) == content_digest(parse(as_fhir(valueset)))
    assert content_digest(valueset) != content_digest(j66(VERSION_A, drop=(RETIRED,)))


@pytest.mark.parametrize(
    ("older", "newer"),
    [("20240927120000", "20250115120000"), ("1.9.0", "1.14.0"), ("1.14.0", "1.14.1"), ("", "1")],
)
def test_declared_versions_compare_by_their_numbers(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)


def test_the_cli_syncs_and_says_why_it_failed(
    store: RulesetStore, source: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from validators.cli import main

    monkeypatch.setenv("PROOFCHECK_ENGINE_SETTINGS", json.dumps({"rulesets_dir": str(store.root)}))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    publish(source, j66(VERSION_A))
    assert main(["valuesets", "sync", "--from", str(source)]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["outcome"] == "new" and said["changes"][0]["to"] == VERSION_A
    publish(source, j66("20200101000000"))
    assert main(["valuesets", "sync", "--from", str(source)]) == 1
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["outcome"] == "failed" and "older than" in said["reason"]
    assert said["version"] == latest(store).version


def test_the_flow_body_reports_a_bad_tree_source_and_changes_nothing(
    store: RulesetStore, source: Path, tmp_path: Path
) -> None:
    from flows.valueset_sync import run_sync

    publish(source, j66(VERSION_A))
    before = versions(store)
    outcome = run_sync(store, str(source), tree_source=str(tmp_path / "not-a-tree"))
    assert outcome.outcome == "failed" and outcome.reason is not None and "CI-SIS tree" in outcome.reason
    assert versions(store) == before
    ok = run_sync(store, str(source))
    assert (ok.outcome, ok.previous, ok.reason) == ("new", before[-1], None)
    assert ok.changes == [{"name": J66_NAME, "oid": shipped_j66().oid, "from": shipped_j66().version,
                           "to": VERSION_A, "added": 0, "removed": 0}]  # fmt: skip
    assert run_sync(store, str(source)).outcome == "unchanged"
