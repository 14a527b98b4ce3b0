"""The verdict index on a real Postgres (production), beside SQLite (local): same answers, and what only
Postgres enforces (column lengths, concurrent writers on one table) handled.

A private cluster is started for this module (``flows.devharness.services.PostgresCluster``: Debian's ``initdb``
and ``postgres``, on PATH or under ``/usr/lib/postgresql/*/bin``), reached on its unix socket, stopped by
its PID at the end. Skipped, with the reason, when Postgres or psycopg is not installed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("moto")

from conftest_verdicts import stored_verdict
from moto import mock_aws

from flows.index import VerdictIndex
from flows.storage import Store
from validators.verdict_io import StoredVerdict


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    from flows.devharness.services import PostgresCluster, ServiceError

    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[pipeline]')")
    try:
        cluster = PostgresCluster()  # as the postgres account when root (setpriv), like the topology's
    except ServiceError as exc:
        pytest.skip(str(exc))
    try:
        try:
            cluster.init()
        except (ServiceError, OSError, subprocess.SubprocessError) as exc:
            pytest.fail(f"Postgres did not start ({type(exc).__name__}): " + cluster.log_tail(800))
        yield cluster.url("postgres", socket=True)
    finally:
        cluster.remove()


_databases = iter(range(1, 1000))


@pytest.fixture
def index(pg_url: str) -> Iterator[VerdictIndex]:
    """A fresh database of the private cluster for each test."""
    import sqlalchemy as sa

    name = f"idx{next(_databases)}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    index = VerdictIndex(pg_url.replace("/postgres?", f"/{name}?"))
    try:
        yield index
    finally:
        index.close()


def _doc(key: str, status: str, ruleset: str = "rs-1", *, stored_at: str = "2026-11-27T03:00:00+00:00",
         name: str | None = None) -> StoredVerdict:
    return stored_verdict(key, status, ruleset, stored_at=stored_at, name=name, quarantine=status == "fail")


def _key(package: str, version: str = "v-1") -> str:
    return f"reports/inbox/acme/{package}/{version}/rs-1.json"


def test_records_latest_history_and_stale_on_postgres(index: VerdictIndex) -> None:
    index.record(_doc("inbox/acme/a.zip", "pass", stored_at="2026-11-27T01:00:00+00:00"), _key("a.zip"))
    index.record(_doc("inbox/acme/b.zip", "fail", stored_at="2026-11-27T02:00:00+00:00"), _key("b.zip"))
    index.record(
        _doc("inbox/acme/a.zip", "warning", "rs-2", stored_at="2026-11-27T03:00:00+00:00"), _key("a.zip", "v-2")
    )
    index.record(_doc("inbox/acme/a.zip", "warning", "rs-2"), _key("a.zip", "v-2"))  # idempotent
    latest = index.latest()
    assert [(r.package_key, r.status, r.versions, r.quarantine) for r in latest] == [
        ("inbox/acme/a.zip", "warning", 2, False),
        ("inbox/acme/b.zip", "fail", 1, True),
    ]
    assert [h["status"] for h in index.history("inbox/acme/a.zip")] == ["pass", "warning"]
    assert [r.package_key for r in index.stale("rs-2")] == ["inbox/acme/b.zip"]


def test_dry_run_verdicts_are_never_indexed_on_postgres(index: VerdictIndex) -> None:
    doc = stored_verdict("dryrun/acme/essai.zip", "pass", area="dryrun")
    index.record(doc, "reports/dryrun/acme/essai.zip/v-1/rs-1.json")
    assert index.latest() == []


def test_values_longer_than_their_column_are_indexed(index: VerdictIndex) -> None:
    """SQLite ignores VARCHAR lengths, Postgres refuses the row: a 1000-character name must not lose it."""
    long_name = "p" * 1000
    index.record(_doc(f"inbox/acme/{long_name}.zip", "pass", name=long_name), _key(f"{long_name}.zip"))
    [row] = index.latest()
    assert row.package_name.startswith("ppp") and row.status == "pass"


def test_concurrent_first_writers_on_a_new_database(index: VerdictIndex) -> None:
    """Flow runs of several workers index at once, on a database whose tables do not exist yet."""
    url = index.url

    def record(i: int) -> None:
        own = VerdictIndex(url)  # each run opens its own index, as the flow does
        try:
            own.record(_doc("inbox/acme/same.zip", "pass"), _key("same.zip"))  # the same verdict, twice
            own.record(_doc(f"inbox/acme/p{i}.zip", "pass"), _key(f"p{i}.zip"))
        finally:
            own.close()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(record, range(12)))
    assert sorted(r.package_key for r in index.latest()) == sorted(
        ["inbox/acme/same.zip", *(f"inbox/acme/p{i}.zip" for i in range(12))]
    )


def _stored(store: Store, docs: dict[str, StoredVerdict | dict[str, Any]]) -> None:
    for key, doc in docs.items():
        body = doc.to_bytes() if isinstance(doc, StoredVerdict) else json.dumps(doc).encode()
        store.client.put_object(Bucket=store.bucket, Key=key, Body=body)


def test_rebuilt_from_the_stored_verdicts_like_sqlite(
    index: VerdictIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "proofcheck-test")
    docs: dict[str, StoredVerdict | dict[str, Any]] = {
        _key("a.zip"): _doc("inbox/acme/a.zip", "pass", stored_at="2026-11-27T01:00:00+00:00"),
        _key("b.zip"): _doc("inbox/acme/b.zip", "fail", stored_at="2026-11-27T02:00:00+00:00"),
        "reports/inbox/acme/c.zip/v-1/rs-1.json": {"not": "a verdict"},
    }

    def summary(idx: VerdictIndex) -> list[tuple[str, str]]:
        return [(r.package_key, r.status) for r in idx.latest()]

    with mock_aws():
        store = Store(boto3.client("s3", region_name="us-east-1"), "proofcheck-index-pg")
        store.ensure_bucket(versioning=False)
        _stored(store, docs)
        assert index.ensure(store) is True
        assert index.ensure(store) is False  # built once
        sqlite = VerdictIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
        try:
            assert sqlite.rebuild(store) == index.rebuild(store) == 2
            assert summary(index) == summary(sqlite) == [("inbox/acme/b.zip", "fail"), ("inbox/acme/a.zip", "pass")]
        finally:
            sqlite.close()
