"""The verdict index's parts the workbench reads: the current verdict of each key, the search rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("moto")

import sqlalchemy as sa
from conftest_flows import mocked_store

from flows.index import VerdictIndex, verdicts
from flows.index_items import items


def doc(
    key: str, version: str, *, uploaded: str | None, rule: str = "pii.nir", proof: str = "INS.41.2.2"
) -> dict[str, Any]:
    return {
        "status": "fail",
        "quarantine": False,
        "package": {"name": key.rsplit("/", 1)[-1], "sha256": "0" * 64},
        "ruleset": {"version": "rs-1"},
        "engine": {"version": "0"},
        "object": {"key": key, "area": "inbox", "version_id": version, "stored_at": "2026-12-01T00:00:00+00:00",
                   "uploaded_at": uploaded, "publisher": "acme"},
        "summary": {"proofs": 1, "files": 1, "findings": {"error": 1, "warning": 0}},
        "proofs": [{"id": proof, "status": "fail", "findings": [], "files": [
            {"path": f"{proof}/Capture.PNG", "sha256": "a" * 64, "status": "fail", "checks": [],
             "findings": [{"rule": rule, "severity": "error", "location": {}, "evidence": "1 ** ** 96"}],
             "children": []}]}],
        "unmapped_files": [],
        "package_findings": [],
    }


def current_rows(index: VerdictIndex) -> dict[str, str]:
    with index.engine.connect() as conn:
        rows = conn.execute(sa.select(verdicts.c.package_key, verdicts.c.version_id).where(verdicts.c.current))
        return {r.package_key: r.version_id for r in rows}


def searched(index: VerdictIndex) -> list[tuple[str, str | None, str | None]]:
    with index.engine.connect() as conn:
        rows = conn.execute(
            sa.select(verdicts.c.version_id, items.c.kind, items.c.rule)
            .join(verdicts, verdicts.c.id == items.c.verdict_id)
            .order_by(items.c.id)
        )
        return [(r.version_id, r.kind, r.rule) for r in rows]


def test_current_follows_the_rule_of_latest_and_search_rows_follow_current(tmp_path: Path) -> None:
    index = VerdictIndex(f"sqlite:///{tmp_path / 'i.sqlite3'}")
    key = "inbox/acme/a.zip"
    index.record(doc(key, "v2", uploaded="2026-12-01T10:00:00+00:00"), "reports/inbox/acme/a.zip/v2/rs.json")
    assert current_rows(index) == {key: "v2"}
    # A late verdict of a version uploaded *before* v2 (its event was lost): v2 stays current.
    index.record(doc(key, "v1", uploaded="2026-12-01T09:00:00+00:00", rule="ssi.x"), f"reports/{key}/v1/rs.json")
    assert current_rows(index) == {key: "v2"}
    assert {r for _, _, r in searched(index)} == {None, "pii.nir"}
    index.record(doc(key, "v3", uploaded="2026-12-01T11:00:00+00:00", rule="cda.xsd"), f"reports/{key}/v3/rs.json")
    assert current_rows(index) == {key: "v3"}
    assert [r for _, kind, r in searched(index) if kind == "finding"] == ["cda.xsd"]
    assert {v for v, _, _ in searched(index)} == {"v3"}
    assert [r.version_id for r in index.latest()] == ["v3"]
    index.close()


def test_a_rebuild_gives_the_same_current_verdicts_and_search_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    index = VerdictIndex(f"sqlite:///{tmp_path / 'i.sqlite3'}")
    with mocked_store(monkeypatch, "proofcheck-web-index") as store:
        for name, version, uploaded in (("a.zip", "v1", "1"), ("a.zip", "v2", "2"), ("b.zip", "v1", None)):
            key = f"inbox/acme/{name}"
            json_key = f"reports/{key}/{version}/rs.json"
            document = doc(key, version, uploaded=uploaded)
            store.put_bytes(json_key, json.dumps(document).encode(), "application/json")
            index.record(document, json_key)
        before = (current_rows(index), sorted(searched(index), key=str))
        assert index.rebuild(store) == 3
        assert (current_rows(index), sorted(searched(index), key=str)) == before
        assert before[0] == {"inbox/acme/a.zip": "v2", "inbox/acme/b.zip": "v1"}
    index.close()
