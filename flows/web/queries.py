"""The workbench's reads of the verdict index: one indexed, paged SQL query per page, never a full scan in Python.

Every query takes ``visible``: None for instructors (every submission), or a publisher's own key
prefix ``inbox/<publisher>/``; rows outside it are never returned, so a publisher cannot tell another
publisher's package from one that does not exist. User text only ever reaches SQL as bound parameters,
with the ``LIKE`` metacharacters escaped.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from flows.index import revalidations, verdicts
from flows.index_items import items

PAGE_SIZE = 50
SEARCH_CAP = 1000  # results counted at most; the pages go as far
STATUSES = ("fail", "error", "warning", "pass")
SORTS = {
    "stocke": verdicts.c.stored_at,
    "paquet": verdicts.c.package_name,
    "statut": verdicts.c.status,
    "editeur": verdicts.c.publisher,
    "logiciel": verdicts.c.software,
    "erreurs": verdicts.c.errors,
    "avertissements": verdicts.c.warnings,
    "regles": verdicts.c.ruleset_version,
}


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(text: str) -> str:
    return f"%{like_escape(text.lower())}%"


def _visible(query: Any, visible: str | None) -> Any:
    if visible is None:
        return query
    return query.where(verdicts.c.package_key.like(like_escape(visible) + "%", escape="\\"))


@dataclass(frozen=True)
class Filters:
    status: tuple[str, ...] = ()
    publisher: str = ""
    software: str = ""
    ruleset: str = ""
    since: str = ""  # ISO date: stored on or after
    until: str = ""  # ISO date: stored on or before
    quarantine: str = ""  # "oui" | "non" | ""
    incomplete: bool = False  # not yet checked in full (and not quarantined)
    name: str = ""
    rule: str = ""  # packages whose current verdict has a finding of this rule ("which still have a pii.nir?")
    sort: str = "stocke"
    descending: bool = True
    page: int = 1

    @classmethod
    def of(cls, params: Mapping[str, Any], statuses: Sequence[str]) -> Filters:
        def text(name: str, limit: int = 200) -> str:
            return str(params.get(name) or "").strip()[:limit]

        try:
            page = max(1, min(int(text("page", 6) or 1), 100_000))
        except ValueError:
            page = 1
        sort = text("tri", 20)
        return cls(
            status=tuple(s for s in statuses if s in STATUSES),
            publisher=text("editeur"),
            software=text("logiciel"),
            ruleset=text("regles", 256),
            since=text("depuis", 10),
            until=text("jusqua", 10),
            quarantine=text("quarantaine", 3) if text("quarantaine", 3) in ("oui", "non") else "",
            incomplete=text("incomplet", 3) == "oui",
            name=text("nom"),
            rule=text("regle", 128),
            sort=sort if sort in SORTS else "stocke",
            descending=text("ordre", 4) != "asc",
            page=page,
        )

    def params(self, **changes: Any) -> dict[str, Any]:
        """Query parameters giving these filters (with ``changes``), for links that keep them."""
        out: dict[str, Any] = {
            "statut": list(self.status), "editeur": self.publisher, "logiciel": self.software,
            "regles": self.ruleset, "depuis": self.since, "jusqua": self.until, "quarantaine": self.quarantine,
            "incomplet": "oui" if self.incomplete else "", "nom": self.name, "regle": self.rule, "tri": self.sort,
            "ordre": "desc" if self.descending else "asc", "page": self.page,
        }
        out.update(changes)
        return {k: v for k, v in out.items() if v not in ("", [], None)}


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    size: int = PAGE_SIZE
    more: bool = False  # the count stopped at its cap: there are more than ``total``

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def _page(conn: sa.Connection, query: Any, page: int, size: int = PAGE_SIZE, cap: int | None = None) -> Page:
    """One page of ``query`` and how many rows it has (counted up to ``cap`` + 1 when given: a search
    for a common word must not scan the whole index to say "more than 1 000")."""
    counted = query.order_by(None)
    if cap is not None:
        counted = counted.limit(cap + 1)
    total = int(conn.execute(sa.select(sa.func.count()).select_from(counted.subquery())).scalar() or 0)
    more = cap is not None and total > cap
    total = min(total, cap) if cap is not None else total
    last = max(1, -(-total // size))
    page = min(page, last)
    rows = [dict(r._mapping) for r in conn.execute(query.limit(size).offset((page - 1) * size))]
    return Page(rows, total, page, size, more)


def packages(conn: sa.Connection, filters: Filters, visible: str | None) -> Page:
    """The current verdict of every package key the user may see, filtered, sorted, one page."""
    query = _visible(sa.select(verdicts).where(verdicts.c.current.is_(True)), visible)
    if filters.status:
        query = query.where(verdicts.c.status.in_(filters.status))
    if filters.publisher:
        query = query.where(verdicts.c.publisher == filters.publisher)
    if filters.software:
        query = query.where(verdicts.c.software == filters.software)
    if filters.ruleset:
        query = query.where(verdicts.c.ruleset_version == filters.ruleset)
    if filters.since:
        query = query.where(verdicts.c.stored_at >= filters.since)
    if filters.until:
        query = query.where(verdicts.c.stored_at < filters.until + "T99")  # the whole last day
    if filters.quarantine:
        query = query.where(verdicts.c.quarantine.is_(filters.quarantine == "oui"))
    if filters.incomplete:
        query = query.where(sa.or_(verdicts.c.checked_in_full.is_(None), verdicts.c.checked_in_full.is_(False)),
                            verdicts.c.quarantine.is_(False))
    if filters.name:
        query = query.where(sa.func.lower(verdicts.c.package_name).like(contains(filters.name), escape="\\"))
    if filters.rule:
        found = sa.select(items.c.verdict_id).where(items.c.rule == filters.rule, items.c.kind == "finding")
        query = query.where(verdicts.c.id.in_(found))
    column = SORTS[filters.sort]
    order = column.desc() if filters.descending else column.asc()
    return _page(conn, query.order_by(order, verdicts.c.id.desc()), filters.page)


def choices(conn: sa.Connection, visible: str | None) -> dict[str, list[str]]:
    """Values offered in the filters: publishers, software and rulesets of the current verdicts."""
    out: dict[str, list[str]] = {}
    for name, column in (("publishers", verdicts.c.publisher), ("software", verdicts.c.software),
                         ("rulesets", verdicts.c.ruleset_version)):
        query = _visible(sa.select(column).where(verdicts.c.current.is_(True), column.is_not(None)), visible)
        out[name] = [r[0] for r in conn.execute(query.distinct().order_by(column).limit(500))]
    out["rules"] = list(catalogued_rules())
    return out


@functools.cache
def catalogued_rules() -> tuple[str, ...]:
    """The rules offered by the rule filter: the catalogue's (a distinct over every finding row would read
    the whole search index on each page)."""
    from validators import rules

    return tuple(sorted(rules.catalogue()))


def search(conn: sa.Connection, text: str, visible: str | None, page: int) -> Page:
    """Proofs, files and findings of current verdicts whose proof id, file name or rule contain ``text``."""
    pattern = contains(text)
    query = _visible(
        sa.select(
            verdicts.c.package_key, verdicts.c.package_name, verdicts.c.publisher, verdicts.c.json_key,
            verdicts.c.status.label("package_status"), items.c.kind, items.c.proof_id, items.c.path, items.c.rule,
            items.c.severity, items.c.status,
        )
        .join(verdicts, verdicts.c.id == items.c.verdict_id)
        .where(
            verdicts.c.current.is_(True),
            sa.or_(
                items.c.proof_key.like(pattern, escape="\\"),
                items.c.name_key.like(pattern, escape="\\"),
                items.c.rule.like(pattern, escape="\\"),
            ),
        ),
        visible,
    )
    # In index order (no sort): the first page is found as soon as 50 rows match, whatever the total.
    return _page(conn, query.order_by(items.c.id), page, cap=SEARCH_CAP)


def proof_across(conn: sa.Connection, proof_id: str, visible: str | None, page: int) -> Page:
    """One proof id in every current verdict: its status there and the rules found on it."""
    key = proof_id.strip().lower()
    query = _visible(
        sa.select(
            verdicts.c.id, verdicts.c.package_key, verdicts.c.package_name, verdicts.c.publisher,
            verdicts.c.software, verdicts.c.json_key, verdicts.c.stored_at, items.c.proof_id, items.c.status,
        )
        .join(verdicts, verdicts.c.id == items.c.verdict_id)
        .where(verdicts.c.current.is_(True), items.c.kind == "proof", items.c.proof_key == key),
        visible,
    )
    result = _page(conn, query.order_by(verdicts.c.package_name, verdicts.c.id), page)
    ids = [r["id"] for r in result.rows]
    rules: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        found = conn.execute(
            sa.select(items.c.verdict_id, items.c.rule, items.c.severity)
            .where(items.c.verdict_id.in_(ids), items.c.kind == "finding", items.c.proof_key == key)
            .order_by(items.c.id)
        )
        for r in found:
            label = f"{r.rule} ({r.severity})"
            if label not in rules[r.verdict_id]:
                rules[r.verdict_id].append(label)
    for row in result.rows:
        row["rules"] = rules.get(row["id"], [])
    return result


def current(conn: sa.Connection, package_key: str, visible: str | None) -> dict[str, Any] | None:
    query = _visible(sa.select(verdicts).where(verdicts.c.package_key == package_key,
                                               verdicts.c.current.is_(True)), visible)
    row = conn.execute(query.limit(1)).first()
    return dict(row._mapping) if row is not None else None


def verdict_row(conn: sa.Connection, json_key: str, visible: str | None) -> dict[str, Any] | None:
    row = conn.execute(_visible(sa.select(verdicts).where(verdicts.c.json_key == json_key), visible)).first()
    return dict(row._mapping) if row is not None else None


def history(conn: sa.Connection, package_key: str, visible: str | None) -> list[dict[str, Any]]:
    """Every indexed verdict of a package key, oldest first, with the re-validation that made it."""
    query = _visible(
        sa.select(verdicts, revalidations.c.report_key, revalidations.c.previous_json_key,
                  revalidations.c.run_id)
        .outerjoin(revalidations, revalidations.c.json_key == verdicts.c.json_key)
        .where(verdicts.c.package_key == package_key),
        visible,
    )
    return [dict(r._mapping) for r in conn.execute(query.order_by(verdicts.c.id))]


def revalidation_runs(conn: sa.Connection, page: int) -> Page:
    """Re-validation runs, newest first: ruleset, counts of packages and of status changes, the report."""
    changed = sa.func.sum(sa.case((revalidations.c.previous_status != revalidations.c.status, 1), else_=0))
    query = sa.select(
        revalidations.c.run_id, revalidations.c.report_key, revalidations.c.ruleset_version,
        sa.func.min(revalidations.c.previous_ruleset).label("previous_ruleset"),
        sa.func.min(revalidations.c.created_at).label("created_at"),
        sa.func.count().label("packages"), changed.label("status_changed"),
    ).group_by(revalidations.c.run_id, revalidations.c.report_key, revalidations.c.ruleset_version)
    return _page(conn, query.order_by(sa.desc("created_at")), page)


def report_known(conn: sa.Connection, report_key: str) -> bool:
    """Whether a change report key is one the index knows (the only ones served)."""
    found = conn.execute(sa.select(revalidations.c.id).where(revalidations.c.report_key == report_key).limit(1))
    return found.first() is not None


__all__ = ["PAGE_SIZE", "SORTS", "STATUSES", "Filters", "Page", "choices", "current", "history", "packages",
           "proof_across", "revalidation_runs", "search", "verdict_row"]
