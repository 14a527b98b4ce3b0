"""The workbench application: routes, security headers, and its state (store, index, accounts, decisions).

``create_app`` builds it from explicit parts (tests pass theirs); ``from_env`` from the pipeline's and
the workbench's environment (``proofcheck web``). No JavaScript is served: every page works with the
keyboard and a screen reader, and the Content-Security-Policy forbids scripts outright.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from flows.decisions import DecisionStore
from flows.index import VerdictIndex
from flows.storage import Store
from flows.web import decide, export, oidc, pages, signin
from flows.web.auth import Auth
from flows.web.common import Workbench, make_templates, not_found
from flows.web.config import WebConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
STATIC = Path(__file__).parent / "static"
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'")
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # keys and presigned links never leave in a Referer
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


MAX_BODY = 256 * 1024  # a decision form is a few KiB; nothing else is posted


class SecurityHeaders:
    """Headers on every answer (a page's own Content-Security-Policy, stored reports', is kept), and
    posts without a length or larger than ``MAX_BODY`` refused before they are read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "POST":
            length = dict(scope.get("headers") or []).get(b"content-length", b"")
            if not length.isdigit() or int(length) > MAX_BODY:
                await send({"type": "http.response.start", "status": 413,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *_HEADERS]})
                await send({"type": "http.response.body", "body": b"Envoi trop grand / too large\n"})
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in _HEADERS if h[0] not in names)
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", _CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def _not_found(request: Request, exc: Exception) -> Response:
    return not_found(request)


def routes() -> list[Route | Mount]:
    return [
        Route("/", pages.home),
        Route("/sante", pages.health),
        Route("/connexion", signin.sign_in_form, methods=["GET"]),
        Route("/connexion", signin.sign_in, methods=["POST"]),
        Route("/deconnexion", signin.sign_out, methods=["POST"]),
        Route("/oidc/connexion", oidc.start, methods=["GET"]),
        Route("/oidc/retour", oidc.callback, methods=["GET"], name="oidc_callback"),
        Route("/paquets", pages.package_list),
        Route("/paquet", pages.package_view),
        Route("/paquet/versions", pages.versions),
        Route("/paquet/diff", pages.diff_view),
        Route("/preuve", pages.proof_view),
        Route("/recherche", pages.search_page),
        Route("/revalidations", pages.revalidation_list),
        Route("/rapport", pages.report),
        Route("/telecharger", pages.download),
        Route("/mes-essais", pages.dry_runs),
        Route("/export", export.export),
        Route("/journal", decide.journal),
        Route(decide.FINDING_ACTION, decide.finding_form, methods=["GET"]),
        Route(decide.FINDING_ACTION, decide.decide_finding, methods=["POST"]),
        Route(decide.PROOF_ACTION, decide.proof_form, methods=["GET"]),
        Route(decide.PROOF_ACTION, decide.decide_proof, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]


def create_app(store: Store, index: VerdictIndex, config: WebConfig, *, hasher: PasswordHasher | None = None
               ) -> Starlette:
    """The application over ``store`` and ``index`` (built from the bucket first when it never was).

    ``hasher``: the Argon2 parameters (the library's defaults unless given: tests use cheaper ones).
    """
    index.ensure(store)
    bench = Workbench(
        store=store,
        index=index,
        auth=Auth(index.engine, config.secret, config.session_seconds, config.idle_seconds, hasher),
        decisions=DecisionStore(index.engine),
        config=config,
        templates=make_templates(),
    )
    middleware = [Middleware(SecurityHeaders)]
    if config.oidc is not None:
        # Only the OpenID Connect handshake (state, nonce, PKCE verifier) lives in this signed cookie.
        middleware.append(Middleware(SessionMiddleware, secret_key=config.secret.hex(),
                                     session_cookie="proofcheck_oidc", max_age=600, same_site="lax",
                                     https_only=config.secure_cookies))
    app = Starlette(routes=routes(), middleware=middleware, exception_handlers={404: _not_found})
    app.state.workbench = bench
    app.state.oidc_client = oidc.client(config.oidc) if config.oidc is not None else None
    return app


def from_env() -> Starlette:
    from flows.settings import PipelineSettings

    settings = PipelineSettings.from_env()
    return create_app(Store.connect(settings), VerdictIndex(settings.index_url), WebConfig.from_env())


__all__ = ["SecurityHeaders", "create_app", "from_env", "routes"]
