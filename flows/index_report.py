"""The instructors' index page: every submitted package, its latest verdict and a link to its report.

A single static HTML file with relative links, inline CSS and no JavaScript: it reads the same from
S3, from a synced folder opened as ``file://``, or behind any static web server.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

from flows.index import IndexRow

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}
th{background:#f0f0f0}.pass{background:#e3f4e3}.warning{background:#fff4d6}
.fail{background:#fbe0e0}.error{background:#eee0f5}.num{text-align:right}
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
    return f'<td><a class="change" href="{html.escape(href, quote=True)}">re-validated</a></td>'


def _changes_link(rows: Sequence[IndexRow]) -> str:
    if not any(row.change_report for row in rows):
        return ""
    return '<p id="changes"><a href="changes/index.html">Re-validations after ruleset changes</a></p>'


def render_index(rows: Sequence[IndexRow], reports_prefix: str = "reports/") -> str:
    """The page for ``reports/index.html``; links are relative to that folder."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    totals = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no package yet"
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
            + _cell("yes" if row.quarantine else "")
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
        "<title>proofcheck: packages submitted</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Proof packages submitted</h1>"
        f'<p id="totals">{len(rows)} package(s): {html.escape(totals)}. Generated {generated}.</p>'
        + _changes_link(rows)
        + "<table><thead><tr><th>package</th><th>status</th><th>quarantine</th><th>publisher</th>"
        "<th>software</th><th>proofs</th><th>files</th><th>errors</th><th>warnings</th>"
        "<th>ruleset</th><th>verdicts</th><th>stored</th><th>changes</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></body></html>\n"
    )
