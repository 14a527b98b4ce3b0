"""The verdict index's parts the workbench reads: the current verdict of each key, the search rows."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("moto")

import sqlalchemy as sa
from conftest_flows import mocked_store

from flows.index import VerdictIndex, verdicts
from flows.index_items import items
from validators import rules
from validators.model import (
    CheckRun,
    CheckState,
    FileVerdict,
    PackageInfo,
    PackageVerdict,
    ProofVerdict,
    Provenance,
)
from validators.verdict_io import StoredVerdict

# Catalogued findings standing for "some rule" in these tests: the index only reads rule and severity.
_FINDINGS = {
    "format.empty": lambda: rules.finding("format.empty"),
    "ssi.malware": lambda: rules.finding("ssi.malware", signature="Eicar-Test-Signature"),
    "cda.typecode": lambda: rules.finding("cda.typecode", code="X", code_system="1.2.3", version="1"),
}


def doc(
    key: str, version: str, *, uploaded: str | None, rule: str = "format.empty", proof: str = "INS.41.2.2"
) -> StoredVerdict:
    finding = _FINDINGS[rule]()
    checks = (CheckRun("filetype", CheckState.RAN),)
    file = FileVerdict(f"{proof}/Capture.PNG", "a" * 64, 10, "image/png", checks, (finding,))
    verdict = PackageVerdict(
        package=PackageInfo(key.rsplit("/", 1)[-1], "0" * 64, "dry-run", "REM-MDV-LGC-SF-Va1", publisher="acme"),
        provenance=Provenance("rs-1", (("J66", "rs-1"),), "0", "2026-12-01T00:00:00+00:00",
                              "2026-12-01T00:00:01+00:00"),
        proofs=(ProofVerdict(proof, proof, (file,)),),
    )
    obj = {"bucket": "proofcheck", "key": key, "area": "inbox", "version_id": version, "etag": "e", "size": 10,
           "stored_at": "2026-12-01T00:00:00+00:00", "uploaded_at": uploaded, "publisher": "acme"}
    return StoredVerdict.new(verdict, object=obj)


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
    index.record(doc(key, "v1", uploaded="2026-12-01T09:00:00+00:00", rule="ssi.malware"), f"reports/{key}/v1/rs.json")
    assert current_rows(index) == {key: "v2"}
    assert {r for _, _, r in searched(index)} == {None, "format.empty"}
    index.record(doc(key, "v3", uploaded="2026-12-01T11:00:00+00:00", rule="cda.typecode"), f"reports/{key}/v3/rs.json")
    assert current_rows(index) == {key: "v3"}
    assert [r for _, kind, r in searched(index) if kind == "finding"] == ["cda.typecode"]
    assert {v for v, _, _ in searched(index)} == {"v3"}
    assert [r.version_id for r in index.latest()] == ["v3"]
    index.close()


def test_a_rebuild_gives_the_same_current_verdicts_and_search_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = VerdictIndex(f"sqlite:///{tmp_path / 'i.sqlite3'}")
    with mocked_store(monkeypatch, "proofcheck-web-index") as store:
        for name, version, uploaded in (("a.zip", "v1", "1"), ("a.zip", "v2", "2"), ("b.zip", "v1", None)):
            key = f"inbox/acme/{name}"
            json_key = f"reports/{key}/{version}/rs.json"
            document = doc(key, version, uploaded=uploaded)
            store.put_bytes(json_key, document.to_bytes(), "application/json")
            index.record(document, json_key)
        before = (current_rows(index), sorted(searched(index), key=str))
        assert index.rebuild(store) == 3
        assert (current_rows(index), sorted(searched(index), key=str)) == before
        assert before[0] == {"inbox/acme/a.zip": "v2", "inbox/acme/b.zip": "v1"}
    index.close()
