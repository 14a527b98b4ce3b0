"""The instructors' index page: every submitted package, its latest verdict and a link to its report.

A single static HTML file with relative links, inline CSS and no JavaScript: it reads the same from
S3, from a synced folder opened as ``file://``, or behind any static web server. French first.

The link to a package's bytes comes from ``flows.access`` only: a package whose verdict is not checked
in full (a check did not run) gets no link but "pas encore vérifié entièrement / not yet checked in
full", what did not run and when it is tried again; its report stays linked (masked evidence only).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

from flows.access import access, package_href
from flows.index import IndexRow
from flows.storage import MARKER

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}
th{background:#f0f0f0}.pass{background:#e3f4e3}.warning{background:#fff4d6}
.fail{background:#fbe0e0}.error{background:#eee0f5}.num{text-align:right}
.incomplete{font-weight:bold;color:#6b2c91}
"""


def _cell(value: object, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<td{cls}>{html.escape('' if value is None else str(value))}</td>"


def _change_cell(row: IndexRow, reports_prefix: str) -> str:
    """A link to the re-validation report that produced this verdict, if one did (flows/revalidate.py)."""
    if not row.change_report:
        return "<td></td>"
    key = row.change_report
    href = key[len(reports_prefix) :] if key.startswith(reports_prefix) else key
    return f'<td><a class="change" href="{html.escape(href, quote=True)}">revalidé / re-validated</a></td>'


def _changes_link(rows: Sequence[IndexRow]) -> str:
    if not any(row.change_report for row in rows):
        return ""
    return (
        '<p id="changes"><a href="changes/index.html">Revalidations après changement de règles / '
        "Re-validations after ruleset changes</a></p>"
    )


def _package_cell(row: IndexRow, reports_prefix: str) -> str:
    """The way to the package bytes, or why there is none (``flows.access`` decides)."""
    folder = row.package_key.endswith("/" + MARKER)
    href = package_href(row, reports_prefix, folder=folder)
    if href is not None:
        return (
            f'<td><a class="package" href="{html.escape(href, quote=True)}">'
            "télécharger le paquet / download the package</a></td>"
        )
    decision = access(row)
    if decision.allowed:  # a folder package: its proof objects are read one by one
        return "<td>dossier : objets de preuve un par un / folder: proof objects one by one</td>"
    if row.quarantine or row.checked_in_full is True:
        return f"<td>{html.escape(decision.reason_fr)} / {html.escape(decision.reason_en)}</td>"
    parts = ['<span class="incomplete">pas encore vérifié entièrement / not yet checked in full</span>']
    if row.not_run:
        parts.append(f"n'a pas pu s'exécuter / did not run : {html.escape(row.not_run)}")
    after = f" après / after {html.escape(row.next_try_at)}" if row.next_try_at else ""
    parts.append(f"nouvel essai automatique{after} / tried again automatically")
    return "<td>" + " — ".join(parts) + "</td>"


def render_index(rows: Sequence[IndexRow], reports_prefix: str = "reports/") -> str:
    """The page for ``reports/index.html``; links are relative to that folder."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    totals = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "aucun paquet / no package yet"
    hidden = sum(1 for row in rows if row.checked_in_full is not True and not row.quarantine)
    if hidden:
        totals += f"; {hidden} pas encore vérifié(s) entièrement / not yet checked in full"
    body = []
    for row in rows:
        href = (
            row.html_key[len(reports_prefix) :] if row.html_key.startswith(reports_prefix) else row.html_key
        )
        link = f'<td><a href="{html.escape(href, quote=True)}">{html.escape(row.package_name)}</a></td>'
        body.append(
            f'<tr class="{html.escape(row.status)}">'
            + link
            + _cell(row.status)
            + _package_cell(row, reports_prefix)
            + _cell("oui / yes" if row.quarantine else "")
            + _cell(row.publisher)
            + _cell(" ".join(p for p in (row.software, row.software_version) if p))
            + _cell(row.proofs, "num")
            + _cell(row.files, "num")
            + _cell(row.errors, "num")
            + _cell(row.warnings, "num")
            + _cell(row.ruleset_version)
            + _cell(row.versions, "num")
            + _cell(row.stored_at)
            + _change_cell(row, reports_prefix)
            + "</tr>"
        )
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        "<title>proofcheck : paquets déposés / packages submitted</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Paquets de preuves déposés / Proof packages submitted</h1>"
        f'<p id="totals">{len(rows)} paquet(s) / package(s) : {html.escape(totals)}. '
        f"Généré le / generated {generated}.</p>"
        + _changes_link(rows)
        + "<table><thead><tr><th>paquet (rapport) / package (report)</th><th>statut / status</th>"
        "<th>paquet / package</th><th>quarantaine / quarantine</th><th>éditeur / publisher</th>"
        "<th>logiciel / software</th><th>preuves / proofs</th><th>fichiers / files</th>"
        "<th>erreurs / errors</th><th>avertissements / warnings</th><th>règles / ruleset</th>"
        "<th>verdicts</th><th>stocké / stored</th><th>changements / changes</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></body></html>\n"
    )
