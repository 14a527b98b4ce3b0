"""Find: the package list, search, a proof across packages, a package's verdicts, versions and diffs,
re-validations, the stored reports, and the one way to a package's bytes (``flows.access``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flows import access as package_access
from flows.index import IndexRow
from flows.storage import StorageError
from flows.web import carry, queries
from flows.web import verdicts as stored
from flows.web.auth import User
from flows.web.common import (
    current_user,
    instructors_only,
    not_found,
    refused,
    render,
    sign_in_redirect,
    signed_in,
    unreadable,
    workbench,
)
from flows.web.verdicts import where as stored_where
from validators.verdict_diff import diff_verdicts
from validators.verdict_io import read_verdict

_FIELDS = set(IndexRow.__dataclass_fields__)
MAX_DRY_RUNS = 100
# Stored pages are served as they are, inside a sandbox: even a value that slipped through unescaped
# could neither run nor load anything.
_REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
               "sandbox")


def visible(request: Request, user: User) -> str | None:
    """None: every submission (instructors); else the publisher's own key prefix."""
    if user.instructor:
        return None
    return f"{workbench(request).store.layout.inbox}{user.publisher}/"


def index_row(row: dict[str, Any]) -> IndexRow:
    return IndexRow(**{k: v for k, v in row.items() if k in _FIELDS})


def _param(request: Request, name: str, limit: int = 2048) -> str:
    return (request.query_params.get(name) or "").strip()[:limit]


def _page_number(request: Request) -> int:
    try:
        return max(1, min(int(_param(request, "page", 6) or 1), 100_000))
    except ValueError:
        return 1


async def home(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return sign_in_redirect(request)
    return RedirectResponse("/paquets", status_code=303)


async def health(request: Request) -> Response:
    return Response("ok\n", media_type="text/plain")


@signed_in
def package_list(request: Request, user: User) -> Response:
    bench = workbench(request)
    filters = queries.Filters.of(request.query_params, request.query_params.getlist("statut"))
    scope = visible(request, user)
    with bench.index.engine.connect() as conn:
        page = queries.packages(conn, filters, scope)
        options = queries.choices(conn, scope)
    rows = []
    for row in page.rows:
        decision = package_access.access(index_row(row))
        rows.append({**row, "access": decision})
    return render(request, "packages.html", {"page": page, "rows": rows, "filters": filters, "options": options,
                                              "statuses": queries.STATUSES, "sorts": queries.SORTS})


@signed_in
def search_page(request: Request, user: User) -> Response:
    text = _param(request, "q", 200)
    page = None
    if text:
        with workbench(request).index.engine.connect() as conn:
            page = queries.search(conn, text, visible(request, user), _page_number(request))
    return render(request, "search.html", {"q": text, "page": page})


@signed_in
def proof_view(request: Request, user: User) -> Response:
    proof_id = _param(request, "id", 256)
    page = None
    if proof_id:
        with workbench(request).index.engine.connect() as conn:
            page = queries.proof_across(conn, proof_id, visible(request, user), _page_number(request))
    return render(request, "proof.html", {"proof_id": proof_id, "page": page})


@signed_in
def package_view(request: Request, user: User) -> Response:
    bench = workbench(request)
    key, wanted = _param(request, "cle"), _param(request, "verdict")
    scope = visible(request, user)
    with bench.index.engine.connect() as conn:
        row = queries.verdict_row(conn, wanted, scope) if wanted else queries.current(conn, key, scope)
        latest = queries.current(conn, key, scope) if row is not None else None
    if row is None or row["package_key"] != key:
        return not_found(request)
    try:
        doc = stored.load(bench.store, row["json_key"])
    except stored.VerdictUnavailable:
        return unreadable(request)
    verdict = stored.view(doc, row["json_key"])
    history = bench.decisions.of_package(key) if user.instructor else []
    states = carry.states(verdict, history) if user.instructor else None
    context = {
        "row": row, "doc": doc, "verdict": verdict, "states": states, "key": key,
        "is_current": latest is not None and latest["json_key"] == row["json_key"],
        "current_key": latest["json_key"] if latest else None,
        "access": package_access.access(index_row(row)), "where": stored_where,
        "decision_count": len(history),
    }
    return render(request, "package.html", context)


@signed_in
def versions(request: Request, user: User) -> Response:
    key = _param(request, "cle")
    with workbench(request).index.engine.connect() as conn:
        rows = queries.history(conn, key, visible(request, user))
    if not rows:
        return not_found(request)
    return render(request, "versions.html", {"key": key, "rows": rows, "name": rows[-1]["package_name"]})


@signed_in
def diff_view(request: Request, user: User) -> Response:
    bench = workbench(request)
    key, old_key, new_key = _param(request, "cle"), _param(request, "de"), _param(request, "a")
    scope = visible(request, user)
    with bench.index.engine.connect() as conn:
        old_row = queries.verdict_row(conn, old_key, scope)
        new_row = queries.verdict_row(conn, new_key, scope)
    if old_row is None or new_row is None or old_row["package_key"] != key or new_row["package_key"] != key:
        return not_found(request)
    try:
        old, new = stored.load(bench.store, old_key), stored.load(bench.store, new_key)
    except stored.VerdictUnavailable:
        return unreadable(request)
    section = new.get("revalidation") or {}
    if (section.get("previous") or {}).get("json_key") == old_key and isinstance(section.get("diff"), dict):
        diff, source = section["diff"], "revalidation"  # the diff the re-validation computed and stored
    else:
        diff, source = diff_verdicts(read_verdict(old).verdict, read_verdict(new).verdict).to_dict(), "computed"
    return render(request, "diff.html", {"key": key, "old": old_row, "new": new_row, "diff": diff,
                                          "source": source, "report": section.get("report")})


@instructors_only
def revalidation_list(request: Request, user: User) -> Response:
    with workbench(request).index.engine.connect() as conn:
        page = queries.revalidation_runs(conn, _page_number(request))
    return render(request, "revalidations.html", {"page": page})


def _report_allowed(request: Request, user: User, key: str) -> bool:
    """Whether ``key`` is a stored page this user may read: a verdict report of a package they see, a dry
    run report of their own, or (instructors) a re-validation change report the index knows."""
    bench = workbench(request)
    layout = bench.store.layout
    if not key.startswith(layout.reports) or ".." in key.split("/") or not key.endswith(".html"):
        return False
    if user.instructor and key.startswith(f"{layout.reports}changes/"):
        with bench.index.engine.connect() as conn:
            return queries.report_known(conn, key)
    if not user.instructor and key.startswith(f"{layout.reports}{layout.dryrun}{user.publisher}/"):
        return True
    with bench.index.engine.connect() as conn:
        return queries.verdict_row(conn, key[: -len(".html")] + ".json", visible(request, user)) is not None


@signed_in
def report(request: Request, user: User) -> Response:
    """A stored HTML page (package report or change report), as stored: reports are always served."""
    key = _param(request, "cle")
    if not _report_allowed(request, user, key):
        return not_found(request)
    try:
        body = workbench(request).store.get_bytes(key, limit=256 * 1024 * 1024)
    except StorageError:
        return not_found(request)
    return Response(body, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": _REPORT_CSP})


@instructors_only
def download(request: Request, user: User) -> Response:
    """A presigned link to the package's exact version, only when ``flows.access`` allows it."""
    bench = workbench(request)
    with bench.index.engine.connect() as conn:
        row = queries.current(conn, _param(request, "cle"), None)
    if row is None:
        return not_found(request)
    rule = package_access.access(index_row(row))
    if not rule.allowed:
        return refused(request, f"Paquet non délivré : {rule.reason_fr}.", f"Package not served: {rule.reason_en}.")
    link = package_access.package_link(bench.store, index_row(row))
    if link is None:
        return refused(request, "Paquet non délivré : son verdict stocké ne le permet pas ou il a changé depuis.",
                       "Package not served: its stored verdict does not allow it, or it changed since.")
    return RedirectResponse(link, status_code=303)


@signed_in
def dry_runs(request: Request, user: User) -> Response:
    """A publisher's own dry runs (never in the instructors' index): the newest stored verdicts."""
    if user.instructor:
        return not_found(request)
    bench = workbench(request)
    rows = []
    try:
        keys = list(bench.store.iter_verdict_keys(f"{bench.store.layout.dryrun}{user.publisher}/"))
    except StorageError:
        return unreadable(request)
    for key in sorted(keys, reverse=True)[:MAX_DRY_RUNS]:
        try:
            doc = stored.load(bench.store, key)
        except stored.VerdictUnavailable:
            continue
        obj = doc.get("object") or {}
        rows.append({"name": (doc.get("package") or {}).get("name"), "status": doc.get("status"),
                     "stored_at": obj.get("stored_at"), "html_key": key[: -len(".json")] + ".html",
                     "quarantine": doc.get("quarantine")})
    rows.sort(key=lambda r: str(r["stored_at"] or ""), reverse=True)
    return render(request, "dryruns.html", {"rows": rows, "limit": MAX_DRY_RUNS})


__all__ = ["diff_view", "download", "dry_runs", "health", "home", "package_list", "package_view", "proof_view",
           "report", "revalidation_list", "search_page", "versions"]
