"""The instructors' change report of a re-validation run: which packages and proofs changed, and why.

Rendered from the run's JSON record (``reports/changes/<ruleset>/<run>.json``, written by
``flows.revalidate``: its diffs are ``validators.verdict_diff`` of typed verdicts) into one static page in
French: inline CSS, relative links, no JavaScript, every value escaped (package names, proof IDs and
messages come from publishers). Findings show their French message (the English one, marked, when the
rule has none). Evidence is shown as the verdicts store it, already masked. ``render_runs_index`` lists
every run for ``reports/changes/index.html``.
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


# The words of the HTML report (validators/report/html.py) for statuses and severities.
_STATUSES = {"pass": "conforme", "warning": "à examiner", "error": "vérification incomplète", "fail": "non conforme"}
_SEVERITIES = {"error": "erreur", "warning": "avertissement", "info": "information"}
_MODES = {"carried": "reporté", "rerun": "revérifié", "failed": "non revalidé", "already": "déjà revalidé"}


def _status(value: str | None) -> str:
    word = _STATUSES.get(value or "", value or "—")
    return f'<span class="{e(value)}">{e(word)}</span>'


def _components(changes: Sequence[Mapping[str, Any]]) -> str:
    if not changes:
        return (
            "<p>Aucun composant du jeu de règles n'a changé (la revalidation a repris des verdicts calculés "
            "sous une autre version).</p>"
        )
    rows = "".join(
        f"<tr><td><code>{e(c['name'])}</code></td><td>{e(c.get('from'))}</td><td>{e(c.get('to'))}</td></tr>"
        for c in changes
    )
    return f"<table><tr><th>composant</th><th>avant</th><th>après</th></tr>{rows}</table>"


def _message(finding: Mapping[str, Any]) -> str:
    french = finding.get("message_fr")
    if french is not None:
        return e(french)
    return f'<span lang="en">{e(finding.get("message"))}</span>'


def _findings(kind: str, findings: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        f'<li class="{kind}">{"+" if kind == "added" else "−"} <code>{e(f["rule"])}</code> '
        f"({e(_SEVERITIES.get(f['severity'], f['severity']))})"
        + (f" dans <code>{e(f['path'])}</code>" if f.get("path") else "")
        + f" : {_message(f)}"
        + (f" <code>{e(f['evidence'])}</code>" if f.get("evidence") else "")
        + "</li>"
        for f in findings
    )


def _package_block(outcome: Mapping[str, Any], page_key: str) -> str:
    diff = outcome.get("diff") or {}
    links = []
    for label, key in (("nouveau rapport", outcome.get("new_html")), ("rapport précédent", outcome.get("old_html"))):
        if key:
            links.append(f'<a href="{e(relative(key, page_key))}">{label}</a>')
    rows = []
    for proof in diff.get("proofs", []):
        items = _findings("added", proof.get("added", [])) + _findings("cleared", proof.get("cleared", []))
        rows.append(
            f"<tr><td>{e(proof['id'] or '(paquet / fichiers non rattachés)')}</td>"
            f"<td>{_status(proof.get('old_status'))} → {_status(proof.get('new_status'))}</td>"
            f"<td><ul>{items}</ul></td></tr>"
        )
    proofs = (
        "<table><tr><th>preuve</th><th>statut</th><th>constats ajoutés (+) et levés (−)</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>Aucune preuve n'a changé.</p>"
    )
    return (
        f"<section><h3>{e(outcome.get('name'))} {_status(diff.get('old_status'))} → "
        f"{_status(diff.get('new_status'))}</h3>"
        f"<p>{e(outcome.get('publisher') or '')} <code>{e(outcome.get('package_key'))}</code> · "
        f"jeu de règles <code>{e(diff.get('old_ruleset'))}</code> → <code>{e(diff.get('new_ruleset'))}</code> · "
        f"{' · '.join(links)}</p>{proofs}</section>"
    )


def _summary_row(outcome: Mapping[str, Any]) -> str:
    diff = outcome.get("diff") or {}
    proofs = diff.get("proofs", [])
    moved = ", ".join(p["id"] or "(paquet)" for p in proofs if p.get("old_status") != p.get("new_status"))
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
        f"<li><code>{e(o.get('package_key'))}</code> : <span lang=\"en\">{e(o.get('reason'))}</span></li>"
        for o in failed
    )
    tallies = (
        ", ".join(f"{n} {_MODES.get(mode, mode)}" for mode, n in sorted(counts.items()))
        or "aucun paquet à revalider"
    )
    index_href = relative(str(run.get("reports_prefix", "reports/")) + "index.html", page_key)
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>proofcheck : revalidation sous {e(run.get('ruleset_version'))}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Revalidation sous le jeu de règles <code>{e(run.get('ruleset_version'))}</code></h1>"
        f'<p id="run">Exécution <code>{e(run.get("run_id"))}</code>, '
        f"{e(run.get('started_at'))} → {e(run.get('finished_at'))}. "
        f"Verdicts revérifiés depuis les jeux de règles : {e(', '.join(run.get('previous_rulesets', [])) or '—')}. "
        f'Paquets : {e(tallies)}. <a href="{e(index_href)}">Tous les paquets</a> · '
        '<a href="../index.html">Toutes les revalidations</a></p>'
        "<h2>Pourquoi : ce qui a changé dans le jeu de règles</h2>"
        + _components(run.get("components", []))
        + f'<h2 id="status-changes">Paquets dont le statut a changé ({len(status_changed)})</h2>'
        + (
            "<table><tr><th>paquet</th><th>éditeur</th><th>statut</th><th>preuves dont le statut a changé</th>"
            f"<th>règles</th></tr>{''.join(_summary_row(o) for o in status_changed)}</table>"
            if status_changed
            else "<p>Aucun : chaque paquet revalidé a gardé son statut.</p>"
        )
        + "".join(_package_block(o, page_key) for o in status_changed)
        + f"<h2>Constats modifiés, statut inchangé ({len(findings_only)})</h2>"
        + "".join(_package_block(o, page_key) for o in findings_only)
        + (f"<h2>Non revalidés ({len(failed)})</h2><ul>{failures}</ul>" if failed else "")
        + "<p>Modes : <em>reporté</em> = aucune vérification du paquet ne lit ce qui a changé, le verdict est "
        "reporté sans télécharger le paquet ; <em>revérifié</em> = les vérifications sont relancées (les "
        "résultats de celles que le changement ne touche pas sont réutilisés).</p>"
        + "</body></html>\n"
    )


def render_runs_index(pages: Sequence[tuple[str, str]], index_key: str) -> str:
    """``reports/changes/index.html``: one link per run page, newest first (``(key, label)`` pairs)."""
    items = "".join(f'<li><a href="{e(relative(key, index_key))}">{e(label)}</a></li>' for key, label in pages)
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        f"<title>proofcheck : revalidations</title><style>{_STYLE}</style></head><body>"
        '<h1>Revalidations</h1><p><a href="../index.html">Tous les paquets</a></p>'
        f"<ul>{items or '<li>aucune pour l’instant</li>'}</ul></body></html>\n"
    )
