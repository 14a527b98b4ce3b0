"""Signing in and out: local accounts (password form) and OpenID Connect (production)."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flows.web import oidc
from flows.web.common import (
    PRE_COOKIE,
    SESSION_COOKIE,
    checked_form,
    current_user,
    field,
    render,
    safe_next,
    workbench,
)


def _set_session(request: Request, response: Response, token: str) -> None:
    bench = workbench(request)
    response.set_cookie(bench.cookie_name(SESSION_COOKIE), token, max_age=bench.config.session_seconds,
                        httponly=True, secure=bench.config.secure_cookies, samesite="lax", path="/")


def open_session(request: Request, user: oidc.User, target: str) -> Response:
    bench = workbench(request)
    old = request.cookies.get(bench.cookie_name(SESSION_COOKIE))
    bench.auth.close_session(old)  # a new session at each sign-in: no session fixation
    response = RedirectResponse(safe_next(target), status_code=303)
    _set_session(request, response, bench.auth.open_session(user))
    response.delete_cookie(bench.cookie_name(PRE_COOKIE), path="/")
    return response


async def sign_in_form(request: Request) -> Response:
    bench = workbench(request)
    if current_user(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("suite")), status_code=303)
    pre_name = bench.cookie_name(PRE_COOKIE)
    pre = request.cookies.get(pre_name)
    fresh = None
    if not pre:
        fresh = secrets.token_urlsafe(24)
        request.cookies[pre_name] = fresh  # the token below binds to it
    response = render(request, "signin.html", {"suite": safe_next(request.query_params.get("suite")),
                                               "error": None})
    if fresh:
        response.set_cookie(pre_name, fresh, max_age=3600, httponly=True, secure=bench.config.secure_cookies,
                            samesite="lax", path="/")
    return response


async def sign_in(request: Request) -> Response:
    bench = workbench(request)
    if not bench.config.local_accounts:
        return RedirectResponse("/connexion", status_code=303)
    fields, refusal = await checked_form(request, "/connexion")
    if refusal is not None or fields is None:
        return refusal or RedirectResponse("/connexion", status_code=303)
    target = safe_next(field(fields, "suite", 2000))
    user = bench.auth.check_password(field(fields, "identifiant", 128), field(fields, "mot_de_passe", 1024))
    if user is None:
        return render(request, "signin.html", {"suite": target, "error": True}, status_code=401)
    return open_session(request, user, target)


async def sign_out(request: Request) -> Response:
    bench = workbench(request)
    _fields, refusal = await checked_form(request, "/deconnexion")
    if refusal is not None:
        return refusal
    bench.auth.close_session(request.cookies.get(bench.cookie_name(SESSION_COOKIE)))
    response = RedirectResponse("/connexion", status_code=303)
    response.delete_cookie(bench.cookie_name(SESSION_COOKIE), path="/")
    return response


__all__ = ["open_session", "sign_in", "sign_in_form", "sign_out"]
