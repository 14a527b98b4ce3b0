"""The instruction report: a verdict and the human decisions side by side, as JSON or one HTML page.

JSON: the stored verdict document unchanged, plus an ``instruction`` section: per finding (by
fingerprint) and per proof, the decision state (``decided``, ``carried``, ``review``, ``none``) and the
decision that applies or is to review; decisions whose finding is gone; the package's whole audit
trail. HTML: a self-contained page (inline CSS, no script) with the same content, to file or print.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flows.decisions import Decision
from flows.web import carry, queries
from flows.web import verdicts as stored
from flows.web.auth import User
from flows.web.carry import State
from flows.web.common import instructors_only, not_found, render, unreadable, workbench
from flows.web.verdicts import where as stored_where

_EXPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _state(state: State | None) -> dict[str, Any]:
    if state is None:
        return {"state": carry.NONE, "decision": None}
    return {"state": state.state, "decision": state.decision.to_dict() if state.decision else None}


def instruction(verdict: stored.VerdictView, states: carry.States, trail: list[Decision]) -> dict[str, Any]:
    findings = [
        {"fingerprint": f.fingerprint, "proof": f.proof_id, "path": f.path, "rule": f.rule, "severity": f.severity,
         **_state(states.findings.get(f.fingerprint))}
        for f in verdict.findings()
    ]
    proofs = [{"id": p.id, "status": p.status, "digest": p.digest, **_state(states.proofs.get(p.id))}
              for p in verdict.proofs]
    return {
        "verdict": verdict.json_key,
        "counts": {s: states.count(s) for s in (carry.DECIDED, carry.CARRIED, carry.REVIEW, carry.NONE)},
        "findings": findings,
        "proofs": proofs,
        "gone": [d.to_dict() for d in states.gone],
        "trail": [d.to_dict() for d in trail],
    }


@instructors_only
def export(request: Request, user: User) -> Response:
    bench = workbench(request)
    json_key = (request.query_params.get("verdict") or "")[:1024]
    with bench.index.engine.connect() as conn:
        row = queries.verdict_row(conn, json_key, None)
    if row is None:
        return not_found(request)
    try:
        doc = stored.load(bench.store, json_key)
    except stored.VerdictUnavailable:
        return unreadable(request)
    verdict = stored.view(doc, json_key)
    trail = bench.decisions.of_package(row["package_key"])
    states = carry.states(verdict, trail)
    section = instruction(verdict, states, trail)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(row["package_name"]))[:80] or "paquet"
    if request.query_params.get("format") == "json":
        body = json.dumps({**doc, "instruction": section}, ensure_ascii=False, indent=2) + "\n"
        return Response(body, media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}.instruction.json"'})
    response = render(request, "export.html", {"row": row, "doc": doc, "verdict": verdict, "states": states,
                                               "section": section, "where": stored_where})
    response.headers["Content-Security-Policy"] = _EXPORT_CSP
    return response


__all__ = ["export", "instruction"]
