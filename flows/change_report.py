"""The instructors' change report of a re-validation run: which packages and proofs changed, and why.

Rendered from the run's JSON record (``reports/changes/<ruleset>/<run>.json``, written by
``flows.revalidate``) into one static page: inline CSS, relative links, no JavaScript, every value
escaped (package names, proof IDs and messages come from publishers). Evidence is shown as the verdicts
store it, already masked. ``render_runs_index`` lists every run for ``reports/changes/index.html``.
"""

from __future__ import annotations

import html
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:75rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f0f0f0}.pass{background:#e3f4e3}.warning{background:#fff4d6}
.fail{background:#fbe0e0}.error{background:#eee0f5}.added{color:#8a1010}.cleared{color:#105a10}
code{font-size:.9em}
"""


def e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def relative(target: str, page_key: str) -> str:
    """``target`` (a bucket key) as a link from the page stored at ``page_key``."""
    return posixpath.relpath(target, posixpath.dirname(page_key) or ".")


def _status(value: str | None) -> str:
    return f'<span class="{e(value)}">{e(value or "—")}</span>'


def _components(changes: Sequence[Mapping[str, Any]]) -> str:
    if not changes:
        return "<p>No ruleset component changed (the run re-checked verdicts computed under another version).</p>"
    rows = "".join(
        f"<tr><td><code>{e(c['name'])}</code></td><td>{e(c.get('from'))}</td><td>{e(c.get('to'))}</td></tr>"
        for c in changes
    )
    return f"<table><tr><th>component</th><th>from</th><th>to</th></tr>{rows}</table>"


def _findings(kind: str, findings: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        f'<li class="{kind}">{"+" if kind == "added" else "−"} <code>{e(f["rule"])}</code> ({e(f["severity"])})'
        + (f" in <code>{e(f['path'])}</code>" if f.get("path") else "")
        + f": {e(f['message'])}"
        + (f" <code>{e(f['evidence'])}</code>" if f.get("evidence") else "")
        + "</li>"
        for f in findings
    )


def _package_block(outcome: Mapping[str, Any], page_key: str) -> str:
    diff = outcome.get("diff") or {}
    links = []
    for label, key in (("new report", outcome.get("new_html")), ("previous report", outcome.get("old_html"))):
        if key:
            links.append(f'<a href="{e(relative(key, page_key))}">{label}</a>')
    rows = []
    for proof in diff.get("proofs", []):
        items = _findings("added", proof.get("added", [])) + _findings("cleared", proof.get("cleared", []))
        rows.append(
            f"<tr><td>{e(proof['id'] or '(package / unmapped files)')}</td>"
            f"<td>{_status(proof.get('old_status'))} → {_status(proof.get('new_status'))}</td>"
            f"<td><ul>{items}</ul></td></tr>"
        )
    proofs = (
        "<table><tr><th>proof</th><th>status</th><th>findings added (+) and cleared (−)</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>No proof changed.</p>"
    )
    return (
        f"<section><h3>{e(outcome.get('name'))} {_status(diff.get('old_status'))} → "
        f"{_status(diff.get('new_status'))}</h3>"
        f"<p>{e(outcome.get('publisher') or '')} <code>{e(outcome.get('package_key'))}</code> · "
        f"ruleset <code>{e(diff.get('old_ruleset'))}</code> → <code>{e(diff.get('new_ruleset'))}</code> · "
        f"{' · '.join(links)}</p>{proofs}</section>"
    )


def _summary_row(outcome: Mapping[str, Any]) -> str:
    diff = outcome.get("diff") or {}
    proofs = diff.get("proofs", [])
    moved = ", ".join(p["id"] or "(package)" for p in proofs if p.get("old_status") != p.get("new_status"))
    rules = sorted({f["rule"] for p in proofs for f in [*p.get("added", []), *p.get("cleared", [])]})
    return (
        f'<tr class="{e(diff.get("new_status"))}"><td>{e(outcome.get("name"))}</td>'
        f"<td>{e(outcome.get('publisher') or '')}</td>"
        f"<td>{_status(diff.get('old_status'))} → {_status(diff.get('new_status'))}</td>"
        f"<td>{e(moved)}</td><td>{e(', '.join(rules))}</td></tr>"
    )


def render_change_report(run: Mapping[str, Any], page_key: str) -> str:
    """The page for one run's JSON record, to be stored at ``page_key``."""
    outcomes: list[Mapping[str, Any]] = list(run.get("packages", []))
    status_changed = [o for o in outcomes if (o.get("diff") or {}).get("status_changed")]
    findings_only = [
        o for o in outcomes if o.get("diff") and not o["diff"].get("status_changed") and o["diff"].get("proofs")
    ]
    failed = [o for o in outcomes if o.get("mode") == "failed"]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[str(outcome.get("mode"))] = counts.get(str(outcome.get("mode")), 0) + 1
    failures = "".join(
        f"<li><code>{e(o.get('package_key'))}</code>: {e(o.get('reason'))}</li>" for o in failed
    )
    tallies = ", ".join(f"{n} {mode}" for mode, n in sorted(counts.items())) or "no package to re-validate"
    index_href = relative(str(run.get("reports_prefix", "reports/")) + "index.html", page_key)
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>proofcheck: re-validation under {e(run.get('ruleset_version'))}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Re-validation under ruleset <code>{e(run.get('ruleset_version'))}</code></h1>"
        f'<p id="run">Run <code>{e(run.get("run_id"))}</code>, '
        f"{e(run.get('started_at'))} → {e(run.get('finished_at'))}. "
        f"Verdicts re-checked from rulesets: {e(', '.join(run.get('previous_rulesets', [])) or '—')}. "
        f'Packages: {e(tallies)}. <a href="{e(index_href)}">All packages</a> · '
        '<a href="../index.html">All re-validations</a></p>'
        "<h2>Why: what changed in the ruleset</h2>"
        + _components(run.get("components", []))
        + f'<h2 id="status-changes">Packages whose status changed ({len(status_changed)})</h2>'
        + (
            "<table><tr><th>package</th><th>publisher</th><th>status</th><th>proofs that changed status</th>"
            f"<th>rules</th></tr>{''.join(_summary_row(o) for o in status_changed)}</table>"
            if status_changed
            else "<p>None: every re-validated package kept its status.</p>"
        )
        + "".join(_package_block(o, page_key) for o in status_changed)
        + f"<h2>Findings changed, status kept ({len(findings_only)})</h2>"
        + "".join(_package_block(o, page_key) for o in findings_only)
        + (f"<h2>Not re-validated ({len(failed)})</h2><ul>{failures}</ul>" if failed else "")
        + "<p>Modes: <em>carried</em> = no check of the package reads what changed, verdict carried over "
        "without downloading it; <em>rerun</em> = checks re-run (results of unaffected checks reused).</p>"
        + "</body></html>\n"
    )


def render_runs_index(pages: Sequence[tuple[str, str]], index_key: str) -> str:
    """``reports/changes/index.html``: one link per run page, newest first (``(key, label)`` pairs)."""
    items = "".join(f'<li><a href="{e(relative(key, index_key))}">{e(label)}</a></li>' for key, label in pages)
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        f"<title>proofcheck: re-validations</title><style>{_STYLE}</style></head><body>"
        '<h1>Re-validations</h1><p><a href="../index.html">All packages</a></p>'
        f"<ul>{items or '<li>none yet</li>'}</ul></body></html>\n"
    )
