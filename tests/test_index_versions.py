"""The verdict index's current verdict of a key follows the upload order of its versions."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from conftest_verdicts import stored_verdict

from flows.index import VerdictIndex
from validators.verdict_io import StoredVerdict


def _doc(version: str, status: str, *, uploaded_at: str | None, stored_at: str) -> StoredVerdict:
    return stored_verdict("inbox/acme/p.zip", status, version_id=version, uploaded_at=uploaded_at,
                          stored_at=stored_at)


def _key(version: str, n: int = 1) -> str:
    return f"reports/inbox/acme/p.zip/v-{version}/rs-{n}.json"


def test_a_late_verdict_of_a_replaced_version_does_not_become_current(tmp_path: Path) -> None:
    index = VerdictIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    index.record(_doc("v2", "pass", uploaded_at="2026-11-27T05:00:01+00:00", stored_at="2026-11-27T05:00:03+00:00"),
                 _key("v2"))
    # v1 was uploaded first, its event lost; the reconcile found it and its verdict is stored last.
    index.record(_doc("v1", "fail", uploaded_at="2026-11-27T05:00:00+00:00", stored_at="2026-11-27T05:01:00+00:00"),
                 _key("v1"))
    [row] = index.latest()
    assert (row.json_key, row.status, row.versions) == (_key("v2"), "pass", 2)
    # A re-validation of v2 (same upload time, stored later) becomes current.
    index.record(_doc("v2", "fail", uploaded_at="2026-11-27T05:00:01+00:00", stored_at="2026-11-27T06:00:00+00:00"),
                 _key("v2", 2))
    [row] = index.latest()
    assert (row.status, row.json_key) == ("fail", _key("v2", 2))


def test_verdicts_without_upload_time_keep_the_storage_order(tmp_path: Path) -> None:
    index = VerdictIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    index.record(_doc("v1", "pass", uploaded_at=None, stored_at="2026-11-27T05:00:00+00:00"), _key("v1"))
    index.record(_doc("v2", "fail", uploaded_at=None, stored_at="2026-11-27T05:01:00+00:00"), _key("v2"))
    assert [(r.json_key, r.status) for r in index.latest()] == [(_key("v2"), "fail")]


def test_an_index_made_before_upload_times_gets_the_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the verdicts table as an older proofcheck created it
        conn.execute(sa.text(
            "CREATE TABLE verdicts (id INTEGER PRIMARY KEY AUTOINCREMENT, json_key VARCHAR(1024) NOT NULL UNIQUE, "
            "html_key VARCHAR(1024) NOT NULL, package_key VARCHAR(1024) NOT NULL, version_id VARCHAR(1024), "
            "etag VARCHAR(256), package_name VARCHAR(1024) NOT NULL, package_sha256 VARCHAR(64) NOT NULL, "
            "publisher VARCHAR(256), software VARCHAR(256), software_version VARCHAR(128), "
            "status VARCHAR(16) NOT NULL, quarantine BOOLEAN NOT NULL, ruleset_version VARCHAR(256) NOT NULL, "
            "engine_version VARCHAR(64), proofs INTEGER NOT NULL, files INTEGER NOT NULL, "
            "errors INTEGER NOT NULL, warnings INTEGER NOT NULL, stored_at VARCHAR(40) NOT NULL)"
        ))
    engine.dispose()
    index = VerdictIndex(url)
    index.record(_doc("v1", "pass", uploaded_at="2026-11-27T05:00:00+00:00", stored_at="2026-11-27T05:00:02+00:00"),
                 _key("v1"))
    [row] = index.latest()
    assert row.uploaded_at == "2026-11-27T05:00:00+00:00"
