"""What every page of the workbench shares: the signed-in user, rendering, refusals, form tokens."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from flows.decisions import DecisionStore
from flows.index import VerdictIndex
from flows.storage import Store
from flows.web import reasons
from flows.web.auth import Auth, User
from flows.web.config import WebConfig

SESSION_COOKIE = "proofcheck_session"
PRE_COOKIE = "proofcheck_pre"  # binds the sign-in form's token before there is a session
TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Workbench:
    """The application's state: one per process."""

    store: Store
    index: VerdictIndex
    auth: Auth
    decisions: DecisionStore
    config: WebConfig
    templates: Jinja2Templates

    def cookie_name(self, base: str) -> str:
        # __Host- cookies are sent only over HTTPS, to this host, path /: what production wants.
        return f"__Host-{base}" if self.config.secure_cookies else base


def workbench(request: Request) -> Workbench:
    bench: Workbench = request.app.state.workbench
    return bench


def make_templates() -> Jinja2Templates:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    templates = Jinja2Templates(env=env)
    env.globals.update(
        STATUS=reasons.STATUS, SEVERITY=reasons.SEVERITY, STATES=reasons.STATES,
        FINDING_DECISIONS=reasons.FINDING_DECISIONS, DISMISS_REASONS=reasons.DISMISS_REASONS,
        PROOF_DECISIONS=reasons.PROOF_DECISIONS, REJECTION_REASONS=reasons.REJECTION_REASONS,
        decision_label=reasons.decision_label, reason_label=reasons.reason_label, rule_text=reasons.rule_text,
    )
    env.filters["q"] = lambda params: urllib.parse.urlencode(params, doseq=True)
    env.filters["day"] = lambda text: (text or "")[:10]
    env.filters["when"] = lambda text: (text or "").replace("T", " ")[:16]
    return templates


def current_user(request: Request) -> User | None:
    cached = request.scope.get("proofcheck.user")
    if cached is not None:
        return cached if isinstance(cached, User) else None
    bench = workbench(request)
    user = bench.auth.session_user(request.cookies.get(bench.cookie_name(SESSION_COOKIE)))
    request.scope["proofcheck.user"] = user or False
    return user


def binding(request: Request) -> str:
    """What this request's form tokens are bound to: the session, else the pre-session cookie."""
    bench = workbench(request)
    token = request.cookies.get(bench.cookie_name(SESSION_COOKIE))
    if token and current_user(request) is not None:
        return bench.auth.binding(token)
    return "pre:" + (request.cookies.get(bench.cookie_name(PRE_COOKIE)) or "")


PageHandler = Callable[[Request, User], Response]


def signed_in(handler: PageHandler) -> Callable[[Request], Response]:
    """A page for signed-in users: anyone else is sent to the sign-in page (and back after it)."""

    @functools.wraps(handler)
    def endpoint(request: Request) -> Response:
        user = current_user(request)
        return sign_in_redirect(request) if user is None else handler(request, user)

    return endpoint


def instructors_only(handler: PageHandler) -> Callable[[Request], Response]:
    """A page for instructors: a publisher gets the "not found" page, as for anything not theirs."""

    @functools.wraps(handler)
    def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return sign_in_redirect(request)
        return handler(request, user) if user.instructor else not_found(request)

    return endpoint


def unreadable(request: Request) -> Response:
    return refused(request, "Le verdict stocké ne peut pas être lu pour l'instant (stockage injoignable ou verdict "
                   "illisible). Réessayez plus tard.", "The stored verdict cannot be read right now.", 503)


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    bench = workbench(request)
    user = current_user(request)

    def form_token(action: str) -> str:
        return bench.auth.form_token(binding(request), action)

    full = {"user": user, "form_token": form_token, "oidc": bench.config.oidc is not None,
            "local_accounts": bench.config.local_accounts, **context}
    return bench.templates.TemplateResponse(request, template, full, status_code=status_code)


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/connexion?" + urllib.parse.urlencode({"suite": target}), status_code=303)


def not_found(request: Request) -> Response:
    """The one answer for "does not exist" and "not yours": nothing tells them apart."""
    return render(request, "message.html", {
        "title": "Introuvable", "title_en": "Not found",
        "text": "Cette page n'existe pas ou ne vous est pas accessible.",
        "text_en": "This page does not exist or is not available to you.",
    }, status_code=404)


def refused(request: Request, text: str, text_en: str, status_code: int = 403) -> Response:
    return render(request, "message.html", {"title": "Refusé", "title_en": "Refused", "text": text,
                                            "text_en": text_en}, status_code=status_code)


def safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no host, no protocol-relative ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/paquets"
    return target


FORM_REFUSALS = {
    "forged": ("Ce formulaire n'a pas été émis par le poste de travail pour votre session : rien n'a été "
               "enregistré. Rechargez la page et recommencez.",
               "This form was not issued to your session: nothing was recorded."),
    "expired": ("Ce formulaire a expiré : rien n'a été enregistré. Rechargez la page et recommencez.",
                "This form expired: nothing was recorded."),
    "replayed": ("Ce formulaire a déjà été envoyé une fois : le second envoi n'a pas été enregistré.",
                 "This form was already sent: the second post was not recorded."),
}


async def checked_form(request: Request, action: str) -> tuple[dict[str, Any] | None, Response | None]:
    """The posted form if its token is good, else the refusal to send (nothing done)."""
    form = await request.form(max_files=0, max_fields=200, max_part_size=64 * 1024)
    fields: dict[str, Any] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(name, []).append(value)
    token = (fields.get("jeton") or [""])[0]
    why = workbench(request).auth.check_form_token(binding(request), action, token)
    if why is not None:
        text, text_en = FORM_REFUSALS[why]
        return None, refused(request, text, text_en, status_code=403)
    return fields, None


def field(fields: dict[str, Any], name: str, limit: int = 4000) -> str:
    values = fields.get(name) or [""]
    return str(values[0])[:limit]


def html_page(text: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status_code)


__all__ = ["PRE_COOKIE", "SESSION_COOKIE", "Workbench", "checked_form", "current_user", "field", "make_templates",
           "not_found", "refused", "render", "safe_next", "sign_in_redirect", "workbench"]
