"""The verdict index: one row per stored verdict (SQLite locally, Postgres in production).

The index is a cache of the verdicts stored in S3, never the record: if it is lost (or new), it is
rebuilt by listing the stored verdicts. Dry-run verdicts are never indexed (instructors do not see them).
Re-validation (issue 7) queries it for packages whose latest verdict used an older ruleset.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from flows import index_items
from flows.completeness import gaps_of
from flows.storage import StorageError, Store
from validators.report import json_report
from validators.verdict_io import StoredVerdict, VerdictDocumentError, read_verdict

log = logging.getLogger(__name__)

_meta = sa.MetaData()
verdicts = sa.Table(
    "verdicts",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("json_key", sa.String(1024), nullable=False, unique=True),
    sa.Column("html_key", sa.String(1024), nullable=False),
    sa.Column("package_key", sa.String(1024), nullable=False, index=True),
    sa.Column("version_id", sa.String(256)),
    sa.Column("etag", sa.String(256)),
    sa.Column("package_name", sa.String(512), nullable=False),
    sa.Column("package_sha256", sa.String(64)),
    sa.Column("publisher", sa.String(512)),
    sa.Column("software", sa.String(512)),
    sa.Column("software_version", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("quarantine", sa.Boolean, nullable=False),
    sa.Column("ruleset_version", sa.String(256), nullable=False, index=True),
    sa.Column("engine_version", sa.String(64)),
    sa.Column("proofs", sa.Integer, nullable=False),
    sa.Column("files", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("warnings", sa.Integer, nullable=False),
    sa.Column("stored_at", sa.String(40), nullable=False),
    sa.Column("uploaded_at", sa.String(40)),  # the package version's S3 LastModified, where known
    # Every check ran (flows/completeness.py); NULL only in rows of an index made before the column.
    sa.Column("checked_in_full", sa.Boolean),
    sa.Column("not_run", sa.String(512)),  # what did not run: check names (system.* rule ids)
    sa.Column("next_try_at", sa.String(40)),  # when the reconcile re-runs a version not checked in full
    # The package key's current verdict (the rule of ``latest``), kept on write so the workbench pages
    # and filters stay one indexed query over 10 000 versions.
    sa.Column("current", sa.Boolean),
)
# The workbench's filters and sorts, always on the current verdicts.
_INDEXES = (
    sa.Index("ix_verdicts_current_stored", verdicts.c.current, verdicts.c.stored_at),
    sa.Index("ix_verdicts_current_publisher", verdicts.c.current, verdicts.c.publisher),
    sa.Index("ix_verdicts_current_software", verdicts.c.current, verdicts.c.software),
    sa.Index("ix_verdicts_current_name", verdicts.c.current, verdicts.c.package_name),
)
# Columns added after the first release, with their SQL type: added to an older index on open.
_LATER_COLUMNS = {
    "uploaded_at": "VARCHAR(40)",
    "checked_in_full": "BOOLEAN",
    "not_run": "VARCHAR(512)",
    "next_try_at": "VARCHAR(40)",
    "current": "BOOLEAN",
}
# A column whose values only the stored verdicts can give: adding it asks for a rebuild of the index.
_REBUILD_FOR = {"checked_in_full", "current"}
# One row per verdict stored by a re-validation (flows/revalidate.py): links it to its change report.
revalidations = sa.Table(
    "revalidations",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("json_key", sa.String(1024), nullable=False, unique=True),
    sa.Column("package_key", sa.String(1024), nullable=False, index=True),
    sa.Column("previous_json_key", sa.String(1024)),
    sa.Column("previous_status", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("previous_ruleset", sa.String(256)),
    sa.Column("ruleset_version", sa.String(256), nullable=False),
    sa.Column("report_key", sa.String(1024), nullable=False),
    sa.Column("run_id", sa.String(128), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)
index_meta = sa.Table(
    "index_meta",
    _meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)


@dataclass(frozen=True)
class IndexRow:
    json_key: str
    html_key: str
    package_key: str
    package_name: str
    publisher: str | None
    software: str | None
    software_version: str | None
    status: str
    quarantine: bool
    ruleset_version: str
    proofs: int
    files: int
    errors: int
    warnings: int
    stored_at: str
    uploaded_at: str | None = None
    versions: int = 1  # verdicts stored for this package key (history)
    change_report: str | None = None  # key of the re-validation report that produced this verdict
    version_id: str | None = None
    etag: str | None = None
    # None: unknown (a row from before the column): never taken as checked in full (flows/access.py).
    checked_in_full: bool | None = None
    not_run: str | None = None
    next_try_at: str | None = None


def _older_version(row: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether ``row`` (stored later) is the verdict of a version uploaded before ``current``'s.

    A late verdict of a replaced version (its event lost, found by the reconcile) must not become the
    key's current one. Without both upload times, the verdict stored last wins (re-validations too).
    """
    mine, theirs = row.get("uploaded_at"), current.get("uploaded_at")
    return bool(mine and theirs and mine < theirs)


def _current_id(rows: Sequence[Any]) -> int | None:
    """The id of the current verdict among one key's rows (ordered by id): the rule of ``latest``."""
    chosen: Any = None
    for row in rows:
        if chosen is None or not _older_version(row._mapping, chosen._mapping):
            chosen = row
    return None if chosen is None else int(chosen.id)


def _insert(conn: sa.Connection, row: Mapping[str, Any]) -> int:
    key = conn.execute(verdicts.insert().values(**row)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _refresh_current(conn: sa.Connection, package_key: str, docs: Mapping[int, Mapping[str, Any]]) -> None:
    """Mark the key's current verdict; its search rows replace the previous current's.

    ``docs``: documents of the rows just inserted (by id), for their search rows. The key's rows are
    locked first (Postgres; SQLite holds the database lock) so two writers of one key agree.
    """
    rows = conn.execute(
        sa.select(verdicts.c.id, verdicts.c.uploaded_at, verdicts.c.current)
        .where(verdicts.c.package_key == package_key)
        .order_by(verdicts.c.id)
        .with_for_update()
    ).all()
    chosen = _current_id(rows)
    before = [int(r.id) for r in rows if r.current]
    if chosen is None or before == [chosen]:
        return
    conn.execute(
        verdicts.update().where(verdicts.c.package_key == package_key).values(current=verdicts.c.id == chosen)
    )
    conn.execute(index_items.items.delete().where(index_items.items.c.verdict_id.in_(before)))
    found = index_items.items_of(docs[chosen], chosen) if chosen in docs else []
    if found:
        conn.execute(index_items.items.insert(), found)


def row_from_stored(stored: StoredVerdict, json_key: str) -> dict[str, Any]:
    """The index columns of one stored verdict."""
    verdict, obj = stored.verdict, stored.object
    package, prov = verdict.package, verdict.provenance
    counts = json_report.summary(verdict)
    gaps = gaps_of(verdict)  # from the findings and checks, whatever the "checked" section says
    checked = stored.checked
    return {
        "json_key": json_key,
        "html_key": json_key[: -len(".json")] + ".html",
        "package_key": obj.key if obj else json_key,
        "version_id": obj.version_id if obj else None,
        "etag": obj.etag if obj else None,
        "package_name": package.name,
        "package_sha256": package.sha256,
        "publisher": package.publisher or (obj.publisher if obj else None),
        "software": package.software,
        "software_version": package.software_version,
        "status": verdict.status.value,
        "quarantine": verdict.quarantine,
        "ruleset_version": prov.ruleset_version,
        "engine_version": prov.engine_version,
        "proofs": counts["proofs"],
        "files": counts["files"],
        "errors": counts["findings"]["error"],
        "warnings": counts["findings"]["warning"],
        "stored_at": (obj.stored_at if obj else None) or prov.finished_at or "",
        "uploaded_at": obj.uploaded_at if obj else None,
        "checked_in_full": gaps.in_full,
        "not_run": None if gaps.in_full else gaps.label(),
        "next_try_at": None if gaps.in_full or checked is None else checked.next_try_after,
    }


def revalidation_row(stored: StoredVerdict, json_key: str) -> dict[str, Any] | None:
    """The ``revalidations`` row of a verdict stored by a re-validation (None for any other verdict)."""
    section, obj = stored.revalidation, stored.object
    if section is None:
        return None
    return {
        "json_key": json_key,
        "package_key": obj.key if obj else json_key,
        "previous_json_key": section.previous_json_key,
        "previous_status": section.previous_status,
        "status": stored.verdict.status.value,
        "previous_ruleset": section.previous_ruleset,
        "ruleset_version": stored.verdict.provenance.ruleset_version,
        "report_key": section.report,
        "run_id": section.run,
        "created_at": (obj.stored_at if obj else None) or "",
    }


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        # Several flow-run processes write: wait for the lock instead of failing at once.
        return sa.create_engine(url, connect_args={"timeout": 30})
    return sa.create_engine(url, pool_pre_ping=True)


def _fit(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with each text cut to its column's length: Postgres refuses longer values (SQLite keeps
    them), and a long package name must not keep its verdict out of the index."""
    out = dict(row)
    for column in table.columns:
        length = getattr(column.type, "length", None)
        value = out.get(column.name)
        if length and isinstance(value, str) and len(value) > length:
            out[column.name] = value[:length]
    return out


class VerdictIndex:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self._created = False

    def close(self) -> None:
        self.engine.dispose()

    def _ready(self) -> None:
        """Create the tables once per instance; several first writers at once may race on Postgres."""
        if self._created:
            return
        for attempt in range(3):
            try:
                _meta.create_all(self.engine)
                index_items.create(self.engine)
                break
            except sa.exc.DBAPIError:  # another process created them between the check and the CREATE
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
        self._add_missing_columns()
        self._created = True

    def _add_missing_columns(self) -> None:
        """Add the columns an index made by an older version lacks.

        ``uploaded_at`` NULL: ordered by storage. ``checked_in_full`` can only come from the stored
        verdicts: adding it forgets ``built_at``, so ``ensure`` rebuilds the index from the bucket (until
        then a NULL is never read as checked in full).
        """
        present = {c["name"] for c in sa.inspect(self.engine).get_columns("verdicts")}
        for name, sql_type in _LATER_COLUMNS.items():
            if name in present:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.text(f"ALTER TABLE verdicts ADD COLUMN {name} {sql_type}"))
                    if name in _REBUILD_FOR:
                        conn.execute(index_meta.delete().where(index_meta.c.name == "built_at"))
            except sa.exc.DBAPIError:  # another process added it first
                present = {c["name"] for c in sa.inspect(self.engine).get_columns("verdicts")}
                if name not in present:
                    raise
        for index in _INDEXES:  # an older index has the columns now, maybe not these indexes
            with contextlib.suppress(sa.exc.DBAPIError):  # created by another process meanwhile
                index.create(self.engine, checkfirst=True)

    def ensure(self, store: Store) -> bool:
        """Create the tables; rebuild from the stored verdicts if never built. True if it rebuilt."""
        self._ready()
        with self.engine.connect() as conn:
            built = conn.execute(
                sa.select(index_meta.c.value).where(index_meta.c.name == "built_at")
            ).scalar()
        if built is not None:
            return False
        self.rebuild(store)
        return True

    def rebuild(self, store: Store) -> int:
        """Drop every row and re-read every stored submission verdict. Returns how many were indexed."""
        self._ready()
        rows = []
        changes = []
        docs: list[dict[str, Any]] = []
        for key in store.iter_verdict_keys():
            try:
                stored = read_verdict(store.get_bytes(key))
            except (StorageError, VerdictDocumentError) as exc:
                # A refused document is named in the log (the reason has no package content) and left out.
                log.warning("verdict %s not indexed: %s", key.rsplit("/", 1)[-1], exc)
                continue
            if stored.area == "inbox":
                rows.append(_fit(verdicts, row_from_stored(stored, key)))
                docs.append(stored.to_document())
                change = revalidation_row(stored, key)
                if change is not None:
                    changes.append(change)
        with self.engine.begin() as conn:
            conn.execute(index_items.items.delete())
            conn.execute(verdicts.delete())
            if rows:
                conn.execute(verdicts.insert(), rows)
                self._mark_all_current(conn, {row["json_key"]: doc for row, doc in zip(rows, docs, strict=True)})
            conn.execute(revalidations.delete())
            if changes:
                conn.execute(revalidations.insert(), changes)
            conn.execute(index_meta.delete().where(index_meta.c.name == "built_at"))
            conn.execute(index_meta.insert().values(name="built_at", value=datetime.now(UTC).isoformat()))
        return len(rows)

    @staticmethod
    def _mark_all_current(conn: sa.Connection, docs: Mapping[str, Mapping[str, Any]]) -> None:
        """After a rebuild: the current verdict of every key, and the search rows of those (``docs`` by key)."""
        by_key: dict[str, list[Any]] = {}
        for r in conn.execute(
            sa.select(verdicts.c.id, verdicts.c.json_key, verdicts.c.package_key, verdicts.c.uploaded_at)
            .order_by(verdicts.c.id)
        ):
            by_key.setdefault(r.package_key, []).append(r)
        chosen = {_current_id(rows) for rows in by_key.values()}
        ids = sorted(i for i in chosen if i is not None)
        conn.execute(verdicts.update().values(current=False))
        found: list[dict[str, Any]] = []
        keys = {int(r.id): r.json_key for rows in by_key.values() for r in rows}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            conn.execute(verdicts.update().where(verdicts.c.id.in_(part)).values(current=True))
            for verdict_id in part:
                found.extend(index_items.items_of(docs[keys[verdict_id]], verdict_id))
        for start in range(0, len(found), 5000):
            conn.execute(index_items.items.insert(), found[start : start + 5000])

    def record(self, stored: StoredVerdict, json_key: str) -> None:
        """Add one verdict (idempotent: a verdict already indexed is left as it is)."""
        if stored.area != "inbox":
            return
        self._ready()
        row = _fit(verdicts, row_from_stored(stored, json_key))
        try:
            with self.engine.begin() as conn:
                exists = conn.execute(sa.select(verdicts.c.id).where(verdicts.c.json_key == row["json_key"])).first()
                if exists is None:
                    _refresh_current(conn, row["package_key"], {_insert(conn, row): stored.to_document()})
        except sa.exc.IntegrityError:
            pass  # indexed by a concurrent run between our check and our insert: the same row

    def record_revalidation(self, stored: StoredVerdict, json_key: str) -> None:
        """Link a verdict stored by a re-validation to its change report (idempotent)."""
        row = revalidation_row(stored, json_key)
        if row is None or stored.area != "inbox":
            return
        _meta.create_all(self.engine)
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(revalidations.c.id).where(revalidations.c.json_key == json_key)
            ).first()
            if exists is None:
                conn.execute(revalidations.insert().values(**row))

    def record_revalidated(self, stored: Sequence[tuple[StoredVerdict, str]]) -> None:
        """Index verdicts stored by a re-validation run and their change report links, in one transaction."""
        _meta.create_all(self.engine)
        with self.engine.begin() as conn:
            known = {r.json_key for r in conn.execute(sa.select(verdicts.c.json_key))}
            linked = {r.json_key for r in conn.execute(sa.select(revalidations.c.json_key))}
            new = [
                (verdict, _fit(verdicts, row_from_stored(verdict, key))) for verdict, key in stored if key not in known
            ]
            links = [
                link
                for verdict, key in stored
                if key not in linked and (link := revalidation_row(verdict, key)) is not None
            ]
            for verdict, row in new:
                _refresh_current(conn, row["package_key"], {_insert(conn, row): verdict.to_document()})
            if links:
                conn.execute(revalidations.insert(), links)

    def change_reports(self) -> dict[str, str]:
        """Verdict key -> change report key, for verdicts stored by a re-validation."""
        _meta.create_all(self.engine)
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(revalidations.c.json_key, revalidations.c.report_key))
            return {r.json_key: r.report_key for r in result}

    def history(self, package_key: str) -> list[dict[str, Any]]:
        self._ready()
        with self.engine.connect() as conn:
            result = conn.execute(
                sa.select(verdicts).where(verdicts.c.package_key == package_key).order_by(verdicts.c.id)
            )
            return [dict(r._mapping) for r in result]

    def latest(self) -> list[IndexRow]:
        """The latest verdict of every package key, newest first."""
        self._ready()
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(verdicts).order_by(verdicts.c.id))
            by_key: dict[str, dict[str, Any]] = {}
            counts: dict[str, int] = {}
            for r in result:
                row = dict(r._mapping)
                key = row["package_key"]
                if key not in by_key or not _older_version(row, by_key[key]):
                    by_key[key] = row
                counts[key] = counts.get(key, 0) + 1
        fields = set(IndexRow.__dataclass_fields__)
        reports = self.change_reports()
        rows = [
            IndexRow(
                **{k: v for k, v in row.items() if k in fields},
                versions=counts[key],
                change_report=reports.get(row["json_key"]),
            )
            for key, row in by_key.items()
        ]
        return sorted(rows, key=lambda r: r.stored_at, reverse=True)

    def stale(self, ruleset_version: str) -> Iterator[IndexRow]:
        """Packages whose latest verdict was computed under another ruleset (for re-validation)."""
        return (row for row in self.latest() if row.ruleset_version != ruleset_version)
