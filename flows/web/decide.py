"""Decide: instructors confirm or dismiss a finding and accept or reject a proof; the audit trail.

A decision is made on the package's *current* verdict only, and names the decision it supersedes (the
one the instructor saw, ``attendu``). Whatever goes wrong, nothing is recorded by halves and nothing
typed is lost: the form comes back with the text as it was and the reason in words (the verdict no
longer exists, a newer verdict exists, another instructor decided meanwhile).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flows.decisions import FINDING, MAX_COMMENT, PROOF, DecisionConflict, DecisionError, NewDecision
from flows.web import carry, queries, reasons
from flows.web import verdicts as stored
from flows.web.auth import User
from flows.web.common import (
    checked_form,
    current_user,
    field,
    instructors_only,
    not_found,
    render,
    sign_in_redirect,
    workbench,
)
from flows.web.verdicts import where as stored_where

FINDING_ACTION = "/decider/constat"
PROOF_ACTION = "/decider/preuve"


def _target(request: Request, json_key: str, kind: str, subject: str) -> dict[str, Any] | str:
    """The verdict row, its view and the finding or proof decided on; or why not (a problem code)."""
    bench = workbench(request)
    with bench.index.engine.connect() as conn:
        row = queries.verdict_row(conn, json_key, None)
        latest = queries.current(conn, row["package_key"], None) if row is not None else None
    if row is None:
        return "gone"
    try:
        doc = stored.load(bench.store, json_key)
    except stored.VerdictUnavailable:
        return "gone"
    verdict = stored.view(doc, json_key)
    item: Any = verdict.finding(subject) if kind == FINDING else verdict.proof(subject)
    if item is None:
        return "no-subject"
    history = bench.decisions.of_package(row["package_key"])
    states = carry.states(verdict, history)
    state = states.findings.get(subject) if kind == FINDING else states.proofs.get(subject)
    trail = [d for d in history if d.kind == kind and (
        d.subject == subject or (kind == FINDING and (d.proof_id, d.rule) == (item.proof_id, item.rule)))]
    return {"row": row, "verdict": verdict, "item": item, "state": state, "trail": list(reversed(trail)),
            "latest": latest, "stale": latest is None or latest["json_key"] != json_key,
            "latest_seq": bench.decisions.latest(row["package_key"], kind, subject)}


PROBLEMS = {
    "gone": ("Ce verdict n'existe plus (l'index a été reconstruit ou le verdict a disparu du stockage) : votre "
             "décision n'a pas été enregistrée. Votre texte est repris ci-dessous.",
             "This verdict no longer exists: your decision was not recorded."),
    "no-subject": ("Ce constat ou cette preuve ne figure pas dans ce verdict : votre décision n'a pas été "
                   "enregistrée. Votre texte est repris ci-dessous.",
                   "This finding or proof is not in this verdict: your decision was not recorded."),
    "stale": ("Un verdict plus récent de ce paquet existe (nouvelle version ou revalidation) : décidez sur le "
              "verdict en vigueur. Votre décision n'a pas été enregistrée ; votre texte est repris ci-dessous.",
              "A newer verdict of this package exists: decide on the current one. Nothing was recorded."),
    "conflict": ("Un autre instructeur a enregistré une décision sur ce point pendant que vous rédigiez la vôtre "
                 "(ci-dessous). La vôtre n'a pas été enregistrée ; votre texte est conservé : relisez sa décision, "
                 "puis renvoyez la vôtre si elle doit la remplacer.",
                 "Another instructor recorded a decision meanwhile; yours was not recorded and is kept below."),
    "invalid": ("Décision incomplète : {why}. Rien n'a été enregistré.", "Incomplete decision: nothing recorded."),
}
_INVALID = {
    "a comment is mandatory": "le commentaire est obligatoire",
    "a dismissal needs one reason": "choisissez le motif pour écarter le constat",
    "a rejection needs a reason or a comment": "donnez au moins un motif de rejet ou un commentaire",
    "say which information is requested": "précisez en commentaire l'information demandée",
    "comment too long": f"le commentaire dépasse {MAX_COMMENT} caractères",
    "unknown decision": "choisissez une décision",
}


def _form_page(request: Request, kind: str, context: dict[str, Any], problem: str | None = None,
               typed: dict[str, Any] | None = None, why: str = "", status_code: int = 200) -> Response:
    message = None
    if problem:
        text, text_en = PROBLEMS[problem]
        message = (text.format(why=why), text_en)
    template = "decide_finding.html" if kind == FINDING else "decide_proof.html"
    return render(request, template, {**context, "problem": message, "typed": typed or {},
                                       "where": stored_where}, status_code=status_code)


def _lost_page(request: Request, problem: str, typed: dict[str, Any], status_code: int) -> Response:
    text, text_en = PROBLEMS[problem]
    return render(request, "message.html", {"title": "Décision non enregistrée", "title_en": "Decision not recorded",
                                            "text": text, "text_en": text_en, "kept": typed.get("comment")},
                  status_code=status_code)


@instructors_only
def finding_form(request: Request, user: User) -> Response:
    return _form(request, FINDING)


@instructors_only
def proof_form(request: Request, user: User) -> Response:
    return _form(request, PROOF)


def _form(request: Request, kind: str) -> Response:
    subject_param = "empreinte" if kind == FINDING else "preuve"
    found = _target(request, request.query_params.get("verdict", "")[:1024],
                    kind, request.query_params.get(subject_param, "")[:256])
    if isinstance(found, str):
        return not_found(request)
    return _form_page(request, kind, found)


async def decide_finding(request: Request) -> Response:
    return await _decide(request, FINDING)


async def decide_proof(request: Request) -> Response:
    return await _decide(request, PROOF)


def _typed(fields: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "decision": field(fields, "decision", 32),
        "reasons": [r[:32] for r in (fields.get("motif") or []) if r][:20],
        "comment": field(fields, "commentaire", MAX_COMMENT + 1),
        "expected": field(fields, "attendu", 12),
    }


async def _decide(request: Request, kind: str) -> Response:
    user = current_user(request)
    if user is None:
        return sign_in_redirect(request)
    if not user.instructor:
        return not_found(request)
    fields, refusal = await checked_form(request, FINDING_ACTION if kind == FINDING else PROOF_ACTION)
    if refusal is not None or fields is None:
        return refusal or not_found(request)
    typed = _typed(fields, kind)
    json_key = field(fields, "verdict", 1024)
    subject = field(fields, "empreinte" if kind == FINDING else "preuve", 256)
    found = _target(request, json_key, kind, subject)
    if isinstance(found, str):
        return _lost_page(request, found, typed, 410 if found == "gone" else 409)
    if found["stale"]:
        return _form_page(request, kind, found, "stale", typed, status_code=409)
    allowed = reasons.DISMISS_REASONS if kind == FINDING else reasons.REJECTION_REASONS
    if any(r not in allowed for r in typed["reasons"]):
        return _form_page(request, kind, found, "invalid", typed, why="motif inconnu", status_code=400)
    expected = int(typed["expected"]) if typed["expected"].isdigit() else None
    item = found["item"]
    new = NewDecision(
        kind=kind, package_key=found["row"]["package_key"], subject=subject, json_key=json_key,
        decision=typed["decision"], comment=typed["comment"], author=user.username,
        reasons=tuple(typed["reasons"]), proof_id=item.proof_id if kind == FINDING else item.id,
        rule=item.rule if kind == FINDING else None, path=item.path if kind == FINDING else None,
        digest=item.digest if kind == PROOF else None,
    )
    try:
        workbench(request).decisions.append(new, expected)
    except DecisionConflict as conflict:
        found = _target(request, json_key, kind, subject)
        if isinstance(found, str):
            return _lost_page(request, found, typed, 409)
        typed["expected"] = str(conflict.current.seq) if conflict.current else ""
        return _form_page(request, kind, found, "conflict", typed, status_code=409)
    except DecisionError as exc:
        return _form_page(request, kind, found, "invalid", typed, why=_INVALID.get(str(exc), str(exc)),
                          status_code=400)
    anchor = f"f-{subject[:16]}" if kind == FINDING else f"p-{subject}"
    target = "/paquet?" + _query({"cle": found["row"]["package_key"]})
    return RedirectResponse(f"{target}#{_anchor(anchor)}", status_code=303)


def _query(params: dict[str, str]) -> str:
    import urllib.parse

    return urllib.parse.urlencode(params)


def _anchor(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


@instructors_only
def journal(request: Request, user: User) -> Response:
    """Every decision on one package, newest first: the audit trail (never edited)."""
    key = (request.query_params.get("cle") or "")[:1024]
    with workbench(request).index.engine.connect() as conn:
        rows = queries.history(conn, key, None)
    if not rows:
        return not_found(request)
    trail = list(reversed(workbench(request).decisions.of_package(key)))
    return render(request, "journal.html", {"key": key, "name": rows[-1]["package_name"], "trail": trail})


__all__ = ["decide_finding", "decide_proof", "finding_form", "journal", "proof_form"]
