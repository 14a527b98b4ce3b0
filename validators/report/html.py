"""The instructors' HTML report: one self-contained page, in French, rendered from the typed verdict.

Rendered from the model (a verdict just computed, or a stored one read back by ``validators.verdict_io``),
so it says exactly what the contract says. Messages, rule titles and explanations are the catalogue's
French ones; a rule not translated yet shows its English text marked ``lang="en"``. No script, no
external resource (a Content-Security-Policy forbids both), every value escaped: file names, proof IDs
and messages come from the publisher's package and are hostile by default. Status is always spelled
out in words and a symbol, never conveyed by colour alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from validators import rules
from validators.model import CheckRun, FileVerdict, Finding, Location, PackageVerdict, Severity, Status
from validators.report import json_report
from validators.report.entries import entry_in_french

STATUS_LABELS = {
    "pass": ("✔", "Conforme", "pass"),
    "warning": ("⚠", "À examiner", "warning"),
    "error": ("⊘", "Vérification incomplète", "error"),
    "fail": ("✖", "Non conforme", "fail"),
}
STATUS_MEANINGS = {
    "pass": "aucun constat bloquant ; toutes les vérifications ont pu s'exécuter.",
    "warning": "des points à examiner (avertissements), ou une vérification partielle.",
    "error": "une vérification n'a pas pu s'exécuter : le fichier n'est pas entièrement vérifié.",
    "fail": "au moins une erreur constatée : la preuve ne peut pas être acceptée en l'état.",
}
SEVERITY_LABELS = {
    "error": ("✖", "Erreur", "error"),
    "warning": ("⚠", "Avertissement", "warning"),
    "info": ("ℹ", "Information", "info"),
}
CHECK_STATES = {"ran": "exécuté", "partial": "partiel", "not_run": "non exécuté"}

_CSS = """
:root { --fg:#1b1b1b; --muted:#555; --line:#c8c8c8; --bg-soft:#f4f4f2; }
* { box-sizing:border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color:var(--fg); background:#fff; margin:0; line-height:1.45; font-size:15px; }
main, header.top, footer { max-width:1180px; margin:0 auto; padding:0 24px; }
header.top { padding-top:20px; }
h1 { font-size:1.6em; margin:0 0 4px; }
h2 { font-size:1.3em; border-bottom:2px solid var(--fg); padding-bottom:4px; margin-top:32px; }
h3 { font-size:1.1em; margin:0; display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
.en { color:var(--muted); font-weight:normal; font-size:0.85em; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:0.92em;
  overflow-wrap:anywhere; }
.badge { display:inline-block; border:2px solid; border-radius:4px; padding:1px 8px; font-weight:bold;
  white-space:nowrap; font-size:0.9em; }
.st-pass { color:#0b5d1e; background:#e3f4e6; }
.st-warning { color:#6b4a00; background:#fff4d1; }
.st-error { color:#5a2a82; background:#efe5f7; }
.st-fail { color:#a01010; background:#fde8e8; }
.sev { font-weight:bold; white-space:nowrap; }
.sev-error { color:#a01010; } .sev-warning { color:#6b4a00; } .sev-info { color:#1d4f91; }
.banner { border:3px solid #a01010; background:#fde8e8; color:#5c0000; padding:12px 16px; margin:16px 0;
  font-size:1.05em; }
.banner strong { font-size:1.15em; letter-spacing:0.05em; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; margin:8px 0; }
dl.facts dt { font-weight:bold; } dl.facts dd { margin:0; }
table { border-collapse:collapse; width:100%; margin:8px 0; }
th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:var(--bg-soft); }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
section.proof { border:1px solid var(--line); border-left-width:6px; margin:16px 0; padding:12px 16px; }
section.proof.st-pass { border-left-color:#0b5d1e; } section.proof.st-warning { border-left-color:#b58100; }
section.proof.st-error { border-left-color:#5a2a82; } section.proof.st-fail { border-left-color:#a01010; }
section.proof { background:#fff; color:var(--fg); }
.written { color:var(--muted); font-weight:normal; }
ul.files { list-style:none; padding-left:0; margin:8px 0; }
ul.files ul.files { padding-left:24px; border-left:2px dotted var(--line); }
.file { border-top:1px solid var(--line); border-left:4px solid transparent; padding:8px 0 8px 10px; }
.file.status-pass { border-left-color:#0b5d1e; } .file.status-warning { border-left-color:#b58100; }
.file.status-error { border-left-color:#5a2a82; } .file.status-fail { border-left-color:#a01010; }
table.counts { width:auto; min-width:420px; }
table.findings { table-layout:fixed; }
table.findings th:nth-child(1) { width:13%; } table.findings th:nth-child(2) { width:21%; }
table.findings th:nth-child(3) { width:36%; } table.findings th:nth-child(4) { width:18%; }
.file-head { margin:0; display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
.meta { color:var(--muted); margin:2px 0 4px; font-size:0.9em; }
.none { color:var(--muted); font-style:italic; margin:4px 0; }
details > summary { cursor:pointer; font-weight:bold; margin:6px 0; }
.children-label { font-size:0.9em; color:var(--muted); margin:6px 0 0; }
footer { color:var(--muted); font-size:0.85em; margin-top:40px; padding-bottom:24px; }
@media print { .badge, .banner { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
  section.proof { break-inside:avoid-page; } }
"""

# A strict policy: even if a value slipped through unescaped, nothing could run or be fetched.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def rule_title(rule_id: str, language: str = "fr") -> str | None:
    """The catalogued title of a rule (French first), or None for a rule this version does not know."""
    try:
        return rules.get(rule_id).text("title", language)
    except rules.UnknownRuleError:
        return None


def describe_location(location: Location) -> str:
    """A location in words ("page 2, ligne 14, XPath /a/b"), or "" when it has no field set."""
    parts: list[str] = []
    if location.entry is not None:
        parts.append(f"élément « {entry_in_french(location.entry)} »")
    if location.page is not None:
        parts.append(f"page {location.page}")
    if location.line is not None:
        parts.append(f"ligne {location.line}")
    if location.column is not None:
        parts.append(f"colonne {location.column}")
    if location.span:
        start, end = location.span
        parts.append(f"caractères {start}–{end}")
    if location.time is not None:
        parts.append(f"à {location.time} s")
    if location.region:
        x, y, width, height = location.region
        parts.append(f"zone {width}×{height} px en ({x}, {y})")
    if location.xpath:
        parts.append(f"XPath {location.xpath}")
    return ", ".join(parts)


def _section(anchor: str, french: str, english: str, body: str) -> str:
    """A top-level section; ``body`` is already-escaped HTML."""
    heading = f'<h2 id="h-{anchor}">{e(french)} <span class="en">{e(english)}</span></h2>'
    return f'<section aria-labelledby="h-{anchor}">{heading}{body}</section>'


def _table(headers: Iterable[str], rows: Iterable[str], css_class: str = "") -> str:
    """A table with column headers; ``rows`` are already-built ``<tr>`` elements."""
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in headers)
    opening = f'<table class="{e(css_class)}">' if css_class else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _status_badge(status: Status) -> str:
    symbol, label, english = STATUS_LABELS.get(status.value, ("?", status.value, status.value))
    return (
        f'<span class="badge st-{e(status.value)}">'
        f'<span aria-hidden="true">{symbol}</span> {e(label)} <span class="en">({e(english)})</span></span>'
    )


def _severity(severity: Severity) -> str:
    symbol, label, _ = SEVERITY_LABELS.get(severity.value, ("?", severity.value, severity.value))
    return (
        f'<span class="sev sev-{e(severity.value)}"><span aria-hidden="true">{symbol}</span> {e(label)}</span>'
    )


def _size(size: int) -> str:
    return f"{size:,}".replace(",", "\u202f") + " octets"


_FINDING_HEADERS = ("Sévérité", "Règle", "Constat", "Emplacement", "Indice (masqué)")
# Beyond this many information rows (e.g. every missing proof of a partial package), they fold away
# in a <details> element, which needs no script, so that errors and warnings stay in view.
FOLD_INFO_ABOVE = 10


def _message(finding: Finding) -> str:
    """The finding's French message; the English one, marked as such, when it has none."""
    if finding.message_fr is not None:
        return e(finding.message_fr)
    return f'<span lang="en">{e(finding.message)}</span>'


def _finding_row(finding: Finding) -> str:
    title = rule_title(finding.rule)
    rule_cell = f"<code>{e(finding.rule)}</code>" + (f"<br>{e(title)}" if title else "")
    evidence = finding.evidence
    return (
        "<tr>"
        f"<td>{_severity(finding.severity)}</td>"
        f"<td>{rule_cell}</td>"
        f"<td>{_message(finding)}</td>"
        f"<td>{e(describe_location(finding.location))}</td>"
        f"<td>{f'<code>{e(evidence)}</code>' if evidence else ''}</td>"
        "</tr>"
    )


def _findings_table(findings: Iterable[Finding]) -> str:
    ordered = sorted(findings, key=lambda f: -f.severity.rank)  # errors first
    if not ordered:
        return '<p class="none">Aucun constat.</p>'
    infos = [f for f in ordered if f.severity is Severity.INFO]
    if len(infos) <= FOLD_INFO_ABOVE:
        return _table(_FINDING_HEADERS, map(_finding_row, ordered), "findings")
    others = [f for f in ordered if f.severity is not Severity.INFO]
    shown = _table(_FINDING_HEADERS, map(_finding_row, others), "findings") if others else ""
    folded = _table(_FINDING_HEADERS, map(_finding_row, infos), "findings")
    return f"{shown}<details><summary>{len(infos)} informations</summary>{folded}</details>"


def _checks(checks: Iterable[CheckRun]) -> str:
    parts = []
    for check in checks:
        state = CHECK_STATES.get(check.state.value, check.state.value)
        detail = f" : {check.detail}" if check.detail else ""
        parts.append(f"{check.name} ({state}{detail})")
    return ", ".join(parts) if parts else "aucun"


def _file_block(file: FileVerdict) -> str:
    status = file.status
    out = [
        f'<div class="file status-{e(status.value)}">',
        f'<p class="file-head">{_status_badge(status)} <code>{e(file.path)}</code></p>',
        f'<p class="meta">{e(file.media_type)} · {e(_size(file.size))} · '
        f'sha256 <span class="mono">{e(file.sha256)}</span><br>'
        f"Contrôles : {e(_checks(file.checks))}</p>",
        _findings_table(file.findings),
    ]
    if file.children:
        out.append(f'<p class="children-label">Fichiers contenus ({len(file.children)}) :</p>')
        out.append(_file_list(file.children))
    out.append("</div>")
    return "".join(out)


def _file_list(files: Iterable[FileVerdict]) -> str:
    return '<ul class="files">' + "".join(f"<li>{_file_block(f)}</li>" for f in files) + "</ul>"


def _summary(verdict: PackageVerdict) -> str:
    package = verdict.package
    counts = json_report.summary(verdict)
    software = " ".join(p for p in (package.software, package.software_version) if p)
    facts = [
        ("Paquet", f"<code>{e(package.name)}</code>"),
        ("Statut", _status_badge(verdict.status)),
        ("Référentiel", e(package.referential)),
        ("Profils", e(", ".join(package.profiles)) or '<span class="none">non déclarés</span>'),
        ("Éditeur", e(package.publisher or "—")),
        ("Logiciel", e(software or "—")),
        ("Source", e(package.source)),
        ("sha256 du paquet", f'<span class="mono">{e(package.sha256)}</span>'),
    ]
    count_rows = [
        ("Preuves", counts["proofs"]),
        ("Fichiers (y compris contenus)", counts["files"]),
        ("Fichiers non rattachés à une preuve", counts["unmapped_files"]),
        ("Erreurs", counts["findings"]["error"]),
        ("Avertissements", counts["findings"]["warning"]),
        ("Informations", counts["findings"]["info"]),
    ]
    rows = "".join(f'<tr><th scope="row">{e(k)}</th><td class="num">{e(n)}</td></tr>' for k, n in count_rows)
    counts_table = f'<table class="counts"><tbody>{rows}</tbody></table>'
    return _section("summary", "Synthèse", "Summary", _facts(facts) + counts_table)


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already-escaped HTML."""
    return '<dl class="facts">' + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _pairs_table(caption: str, pairs: Iterable[tuple[str, str]]) -> str:
    ordered = sorted(pairs)
    if not ordered:
        return f'<p class="none">{e(caption)} : aucun.</p>'
    rows = "".join(f'<tr><th scope="row">{e(k)}</th><td class="mono">{e(v)}</td></tr>' for k, v in ordered)
    return f"<table><caption>{e(caption)}</caption><tbody>{rows}</tbody></table>"


def _provenance(verdict: PackageVerdict) -> str:
    prov = verdict.provenance
    facts = [
        ("Version du jeu de règles", f'<span class="mono">{e(prov.ruleset_version)}</span>'),
        ("Version du moteur proofcheck", e(prov.engine_version)),
        ("Début / fin", f"{e(prov.started_at)} → {e(prov.finished_at)}"),
    ]
    body = (
        _facts(facts)
        + _pairs_table("Composants du jeu de règles", prov.components)
        + _pairs_table("Base antivirus (hors jeu de règles)", prov.antivirus)
    )
    return _section("provenance", "Provenance", "Provenance", body)


def _quarantine_banner(verdict: PackageVerdict) -> str:
    if not verdict.quarantine:
        return ""
    return (
        '<div class="banner" role="alert"><strong><span aria-hidden="true">⚠</span> QUARANTAINE</strong> — '
        "Ce paquet présente un risque pour la sécurité des systèmes d'information "
        "(constats <code>ssi.*</code>). "
        "N'ouvrez pas les fichiers signalés avant l'avis de l'équipe SSI. "
        '<span class="en">Quarantined: a security risk was found; do not open flagged files.</span></div>'
    )


def _files_in(files: Iterable[FileVerdict]) -> list[FileVerdict]:
    return [entry for top in files for entry in top.iter_files()]


def _overview(verdict: PackageVerdict) -> str:
    rows = []
    for index, proof in enumerate(verdict.proofs, start=1):
        files = _files_in(proof.files)
        rows.append(
            "<tr>"
            f'<td><a href="#proof-{index}"><code>{e(proof.id)}</code></a></td>'
            f"<td>{e(proof.id_as_written)}</td>"
            f"<td>{_status_badge(proof.status)}</td>"
            f'<td class="num">{len(files)}</td>'
            f'<td class="num">{len(proof.findings) + sum(len(f.findings) for f in files)}</td>'
            "</tr>"
        )
    if not rows:
        body = '<p class="none">Aucune preuve identifiée dans ce paquet.</p>'
    else:
        body = _table(("Preuve", "Écrite", "Statut", "Fichiers", "Constats"), rows)
    return _section("overview", "Vue d'ensemble des preuves", "Proofs at a glance", body)


def _proofs(verdict: PackageVerdict) -> str:
    blocks = []
    for index, proof in enumerate(verdict.proofs, start=1):
        written = ""
        if proof.id_as_written != proof.id:
            written = f'<span class="written">écrite « {e(proof.id_as_written)} »</span>'
        anchor = f"proof-{index}"
        blocks.append(
            f'<section class="proof st-{e(proof.status.value)}" id="{anchor}" aria-labelledby="{anchor}-h">'
            f'<h3 id="{anchor}-h">{_status_badge(proof.status)} Preuve <code>{e(proof.id)}</code> '
            f"{written}</h3>"
            + (_findings_table(proof.findings) if proof.findings else "")
            + _file_list(proof.files)
            + "</section>"
        )
    return _section("proofs", "Détail par preuve", "Proof details", "".join(blocks)) if blocks else ""


def _unmapped(verdict: PackageVerdict) -> str:
    files = verdict.unmapped_files
    body = _file_list(files) if files else '<p class="none">Aucun.</p>'
    return _section("unmapped", "Fichiers non rattachés à une preuve", "Unmapped files", body)


def _package_findings(verdict: PackageVerdict) -> str:
    body = _findings_table(verdict.package_findings)
    return _section("package", "Constats sur le paquet", "Package findings", body)


def _legend(verdict: PackageVerdict) -> str:
    statuses = "".join(
        f"<li>{_status_badge(Status(s))} : {e(text)}</li>" for s, text in STATUS_MEANINGS.items()
    )
    severities = "".join(f"<li>{_severity(s)}</li>" for s in Severity)
    rule_rows = []
    for rule_id in sorted({f.rule for f in verdict.iter_findings()}):
        try:
            rule = rules.get(rule_id)
        except rules.UnknownRuleError:
            rule_rows.append(
                f'<tr><td><code>{e(rule_id)}</code></td><td colspan="3">Règle non cataloguée.</td></tr>'
            )
            continue
        cells = "".join(f"<td>{_in_french(rule, name)}</td>" for name in ("title", "why", "fix"))
        rule_rows.append(f"<tr><td><code>{e(rule.id)}</code></td>{cells}</tr>")
    rules_table = (
        _table(("Règle", "Titre", "Pourquoi", "Comment corriger"), rule_rows)
        if rule_rows
        else '<p class="none">Aucune règle citée.</p>'
    )
    body = (
        f"<h3>Statuts</h3><ul>{statuses}</ul>"
        "<p>Un fichier, une preuve et le paquet prennent le statut le plus grave de ce qu'ils contiennent "
        "(non conforme &gt; vérification incomplète &gt; à examiner &gt; conforme). "
        "Les indices sont masqués : aucun identifiant personnel complet ni contenu de document "
        "n'est reproduit.</p>"
        f"<h3>Sévérités des constats</h3><ul>{severities}</ul>"
        f"<h3>Règles citées dans ce rapport</h3>{rules_table}"
    )
    return _section("legend", "Légende", "Legend", body)


def _in_french(rule: rules.Rule, name: str) -> str:
    """A catalogue text in French; the English one, marked as such, for a rule not yet translated."""
    text = rule.text(name, "fr")
    return e(text) if dict(rule.fr).get(name) is not None else f'<span lang="en">{e(text)}</span>'


def render(verdict: PackageVerdict) -> str:
    """The HTML page for a verdict (computed now, or read back with ``validators.verdict_io``)."""
    package_name = verdict.package.name
    return "".join(
        [
            "<!DOCTYPE html>\n",
            '<html lang="fr"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{e(_CSP)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>Rapport proofcheck — {e(package_name)}</title>",
            f"<style>{_CSS}</style></head><body>",
            '<header class="top"><h1>Rapport de vérification des preuves '
            '<span class="en">Proof check report</span></h1>',
            f"<p><code>{e(package_name)}</code> — {_status_badge(verdict.status)}</p>",
            _quarantine_banner(verdict),
            "</header><main>",
            _summary(verdict),
            _provenance(verdict),
            _overview(verdict),
            _package_findings(verdict),
            _proofs(verdict),
            _unmapped(verdict),
            _legend(verdict),
            "</main>",
            f"<footer>Généré par proofcheck {e(verdict.provenance.engine_version)} à partir du verdict JSON "
            f"(schéma {e(json_report.SCHEMA_VERSION)}). Ce rapport ne contient aucun script.</footer>",
            "</body></html>\n",
        ]
    )
